/* handlers.c — what every endpoint shares.
 *
 * The pieces each handler file (handlers.h lists them) would otherwise
 * copy: the image resource of docs/api.md and the {"data": …} envelope,
 * the audit row of a request, the validation of the image fields both
 * upload ways take, a new image's server-side fields, and the two answers
 * upload-url and download-url share: how long a signed URL lives
 * (expiresIn bounded by a maximum, with a default) and who signs it (the
 * object store's presigned URL when the back end makes them, else
 * polaimg's own, urltoken.c). And GET /health, which belongs to no image.
 *
 * Nothing here decides access (handlers_auth.c) or touches bytes
 * (ingest.c, handlers_read.c).
 */
#include "handlers.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common.h"
#include "config.h"
#include "db.h"
#include "storage.h"
#include "urltoken.h"
#include "validate.h"

#define DESCRIPTION_MAX 2000      /* characters */

const char *const handlers_eye_sides[5] = { "left", "right", "both", "unknown",
	NULL };
const char *const handlers_variants[4] = { "original", "display", "thumbnail",
	NULL };
static const char *const image_types[] = { "slit_lamp", "fundus", "oct", "other", NULL };

/* --- small shared pieces ---------------------------------------------- */

static void
new_uuid(char out[37])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		/* getrandom on Linux >= 3.17 does not fail for 16 bytes once
		 * the pool is initialised; never hand out a predictable id. */
		abort();
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	(void)snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5], b[6],
	    b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

const char *
handlers_fmt_time(struct arena *a, int64_t t)
{
	char buf[21];

	val_format_rfc3339(t, buf);
	return arena_strdup(a, buf);
}

static json_object *
jstr_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_object_new_string(s) : NULL;
}

static json_object *
jint_or_null(long long v)
{
	return v >= 0 ? json_object_new_int64(v) : NULL;
}

/* {"id", "name", "role"} of the image's uploader; null without one (a
 * legacy row). name and role are null when polaimg cannot know them (no
 * name column, no such user, or a role outside the three). */
static json_object *
uploader_json(const struct image *img)
{
	json_object *o;

	if (img->uploaded_by[0] == '\0')
		return NULL;
	if ((o = json_object_new_object()) == NULL)
		return NULL;
	json_object_object_add(o, "id", json_object_new_string(img->uploaded_by));
	json_object_object_add(o, "name", jstr_or_null(img->uploader_name));
	json_object_object_add(o, "role",
	    acl_role_parse(img->uploader_role) != ROLE_NONE ?
	    json_object_new_string(img->uploader_role) : NULL);
	return o;
}

/* The image resource of docs/api.md. */
/* The "dicom" member of an image: its DICOM identifiers, or NULL (JSON
 * null) for an image that is not a DICOM file. */
static json_object *
handlers_dicom_json(const struct image *img)
{
	json_object *d;

	if (img->sop_uid[0] == '\0' || (d = json_object_new_object()) == NULL)
		return NULL;
	json_object_object_add(d, "modality", jstr_or_null(img->modality));
	json_object_object_add(d, "manufacturer", jstr_or_null(img->manufacturer));
	json_object_object_add(d, "manufacturerModelName",
	    jstr_or_null(img->model_name));
	json_object_object_add(d, "studyInstanceUid", jstr_or_null(img->study_uid));
	json_object_object_add(d, "seriesInstanceUid",
	    jstr_or_null(img->series_uid));
	json_object_object_add(d, "sopInstanceUid", jstr_or_null(img->sop_uid));
	return d;
}

json_object *
handlers_image_json(struct arena *a, const struct image *img)
{
	json_object *o = json_object_new_object();
	char url[160];

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "id", json_object_new_string(img->id));
	json_object_object_add(o, "caseId", json_object_new_string(img->case_id));
	(void)snprintf(url, sizeof(url), API_PREFIX "%s/proxy", img->id);
	json_object_object_add(o, "imageUrl", json_object_new_string(url));
	(void)snprintf(url, sizeof(url), API_PREFIX "%s/proxy?thumbnail=true", img->id);
	json_object_object_add(o, "thumbnailUrl", json_object_new_string(url));
	json_object_object_add(o, "storageType", json_object_new_string(img->storage_type));
	json_object_object_add(o, "imageType", json_object_new_string(img->image_type));
	json_object_object_add(o, "eyeSide", json_object_new_string(img->eye_side));
	json_object_object_add(o, "capturedAt", img->captured_at >= 0 ?
	    json_object_new_string(handlers_fmt_time(a, img->captured_at)) :
	    NULL);
	json_object_object_add(o, "description", jstr_or_null(img->description));
	json_object_object_add(o, "order", json_object_new_int64(img->order));
	json_object_object_add(o, "fileSize", jint_or_null(img->file_size));
	json_object_object_add(o, "mimeType", jstr_or_null(img->mime_type));
	json_object_object_add(o, "width", jint_or_null(img->width));
	json_object_object_add(o, "height", jint_or_null(img->height));
	json_object_object_add(o, "sha256", jstr_or_null(img->sha256));
	json_object_object_add(o, "status", json_object_new_string(img->status));
	json_object_object_add(o, "uploadedBy", jstr_or_null(img->uploaded_by));
	json_object_object_add(o, "uploader", uploader_json(img));
	json_object_object_add(o, "capturedAtSource", json_object_new_string(
	    img->captured_source[0] != '\0' ? img->captured_source : "upload"));
	json_object_object_add(o, "createdAt",
	    json_object_new_string(handlers_fmt_time(a, img->created_at)));
	json_object_object_add(o, "updatedAt",
	    json_object_new_string(handlers_fmt_time(a, img->updated_at)));
	json_object_object_add(o, "frames", img->frames > 0 ?
	    json_object_new_int64(img->frames) : NULL);
	json_object_object_add(o, "dicom", handlers_dicom_json(img));
	return o;
}

/* {"data": data[, "message": message]} */
json_object *
handlers_envelope(json_object *data, const char *message)
{
	json_object *o = json_object_new_object();

	if (o == NULL || data == NULL) {
		json_object_put(o);
		json_object_put(data);
		return NULL;
	}
	json_object_object_add(o, "data", data);
	if (message != NULL)
		json_object_object_add(o, "message", json_object_new_string(message));
	return o;
}

/* An audit row for this request. */
void
handlers_audit(struct ctx *c, const char *action, const char *image_id,
    const char *case_id, const char *variant, const char *outcome)
{
	struct audit ev = {
		.user_id = c->who.user_id[0] != '\0' ? c->who.user_id : NULL,
		.role = c->who.role != ROLE_NONE ? acl_role_name(c->who.role) : NULL,
		.action = action, .image_id = image_id, .case_id = case_id,
		.variant = variant, .outcome = outcome,
		.remote_addr = c->req->remote_addr, .request_id = c->req->request_id,
	};

	db_audit_read(c->w->db, &ev);
}

struct audit
handlers_audit_for(struct ctx *c, const char *action, const char *image_id,
    const char *case_id, const char *variant)
{
	struct audit ev = {
		.user_id = c->who.user_id[0] != '\0' ? c->who.user_id : NULL,
		.role = c->who.role != ROLE_NONE ? acl_role_name(c->who.role) : NULL,
		.action = action, .image_id = image_id, .case_id = case_id,
		.variant = variant, .outcome = "ok",
		.remote_addr = c->req->remote_addr, .request_id = c->req->request_id,
	};

	return ev;
}

static const char *
public_url(struct ctx *c, const char *path_and_query)
{
	return arena_printf(c->req->arena, "%s%s", c->w->cfg->public_base_url,
	    path_and_query);
}


/* --- validation of the image fields ------------------------------------ */

/* Validates the fields shared by both upload ways into img; adds
 * details for every bad one. */
json_object *
handlers_image_fields(const struct handlers_image_fields *f, struct image *img,
    json_object *details)
{
	if (f->case_id_raw == NULL || f->case_id_raw[0] == '\0')
		details = http_detail_add(details, "caseId", "is required");
	else if (!val_uuid(f->case_id_raw, img->case_id))
		details = http_detail_add(details, "caseId", "must be a UUID");
	if (f->eye_side != NULL &&
	    val_enum(f->eye_side, handlers_eye_sides) < 0)
		details = http_detail_add(details, "eyeSide",
		    "must be one of left, right, both, unknown");
	else
		(void)snprintf(img->eye_side, sizeof(img->eye_side), "%s",
		    f->eye_side != NULL ? f->eye_side : "unknown");
	if (f->image_type != NULL && val_enum(f->image_type, image_types) < 0)
		details = http_detail_add(details, "imageType",
		    "must be one of slit_lamp, fundus, oct, other");
	else
		(void)snprintf(img->image_type, sizeof(img->image_type), "%s",
		    f->image_type != NULL ? f->image_type : "slit_lamp");
	img->captured_at = -1;
	img->captured_source[0] = '\0';
	if (f->captured_at != NULL && f->captured_at[0] != '\0' &&
	    !val_rfc3339(f->captured_at, &img->captured_at)) {
		img->captured_at = -1;
		details = http_detail_add(details, "capturedAt",
		    "must be an RFC 3339 date-time");
	} else if (img->captured_at >= 0) {
		(void)snprintf(img->captured_source,
		    sizeof(img->captured_source), "client");
	}
	img->description = NULL;
	if (f->description != NULL) {
		if (!val_text(f->description, strlen(f->description), DESCRIPTION_MAX))
			details = http_detail_add(details, "description",
			    "must be text of at most 2000 characters");
		else if (f->description[0] != '\0')
			img->description = f->description;
	}
	return details;
}

/* Fills the parts of a new image that do not come from the client. */
void
handlers_image_new(struct ctx *c, struct image *img)
{
	new_uuid(img->id);
	(void)snprintf(img->storage_key, sizeof(img->storage_key), "cases/%s/%s",
	    img->case_id, img->id);
	(void)snprintf(img->storage_type, sizeof(img->storage_type), "%s",
	    c->w->storage->ops->name);
	(void)snprintf(img->uploaded_by, sizeof(img->uploaded_by), "%s",
	    c->who.user_id);
	img->file_size = img->width = img->height = -1;
	img->display_size = img->thumb_size = -1;
	img->upload_expires_at = -1;
}

/* --- signed URLs ------------------------------------------------------- */

long long
handlers_url_ttl(const long long *asked, long long dflt, long long max_ttl)
{
	if (asked != NULL)
		return *asked >= 1 && *asked <= max_ttl ? *asked : -1;
	return dflt < max_ttl ? dflt : max_ttl;
}

int
handlers_signed_url(struct ctx *c, const struct image *img, int upload,
    enum ingest_variant v, long long ttl, int64_t *expires, const char **url)
{
	const struct config *cfg = c->w->cfg;
	const unsigned char *key = (const unsigned char *)cfg->url_signing_key;
	size_t keylen = strlen(cfg->url_signing_key);
	char token[128];
	const char *path;

	*url = NULL;
	if (upload)
		v = V_ORIGINAL;
	if (c->w->storage->ops->presign != NULL) {
		/* S3 / Supabase: the client talks to the store itself. */
		char *u = c->w->storage->ops->presign(c->w->storage,
		    upload ? "PUT" : "GET", ingest_object_key(c->req->arena, img, v),
		    upload ? img->mime_type : NULL, ttl);

		int64_t exp;

		*url = u != NULL ? arena_strdup(c->req->arena, u) : NULL;
		free(u);
		if (*url == NULL)
			return PI_ERR_STORAGE;
		if (c->w->storage->ops->url_expires != NULL &&
		    c->w->storage->ops->url_expires(*url, &exp) == 0 &&
		    exp < *expires)
			*expires = exp;
		return 0;
	}
	if (upload) {
		if (urltoken_upload_token_by(key, keylen, img->id, *expires,
		    c->who.user_id, token, sizeof(token)) != 0)
			return PI_ERR_INTERNAL;
		path = arena_printf(c->req->arena, API_PREFIX "%s/upload?token=%s",
		    img->id, token);
	} else {
		if (urltoken_sign_by(key, keylen, URLTOKEN_DOWNLOAD, img->id,
		    handlers_variants[v], *expires, c->who.user_id, token,
		    sizeof(token)) != 0)
			return PI_ERR_INTERNAL;
		path = arena_printf(c->req->arena, API_PREFIX
		    "%s/file?variant=%s&expires=%" PRId64 "&uid=%s&sig=%s", img->id,
		    handlers_variants[v], *expires, c->who.user_id, token);
	}
	*url = path != NULL ? public_url(c, path) : NULL;
	return *url != NULL ? 0 : PI_ERR_NOMEM;
}

/* --- GET /health ------------------------------------------------------------ */

int
h_health(struct ctx *c)
{
	int db_ok = db_ping(c->w->db) == 0;
	int st_ok = storage_check(c->w->storage) == 0;
	json_object *o = json_object_new_object();

	if (o == NULL)
		return PI_ERR_NOMEM;
	json_object_object_add(o, "status",
	    json_object_new_string(db_ok && st_ok ? "ok" : "error"));
	json_object_object_add(o, "database",
	    json_object_new_string(db_ok ? "ok" : "error"));
	json_object_object_add(o, "storage",
	    json_object_new_string(st_ok ? "ok" : "error"));
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	return http_json(c->req, db_ok && st_ok ? 200 : 503, o);
}
