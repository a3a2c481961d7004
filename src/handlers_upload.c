/* handlers_upload.c — the endpoints that receive an original.
 *
 * POST /upload (a multipart form: the image and its fields in one
 * request), PUT /:id/upload?token= (the bytes for an upload URL of local
 * storage) and POST /:id/complete (the bytes a client sent to S3 or
 * Supabase through a presigned URL). Each one admits the upload against
 * max_uploads_per_user first (handlers_ingest_admit), receives or fetches the
 * original into a temp file while hashing it (ingest.h's sink), sniffs its
 * type, and hands it to ingest(), which stores the three objects; then the
 * row is written, or marked ready, with its audit row in one transaction.
 *
 * Consistency: storage first, database second; when the database write
 * fails the objects just stored are deleted again, so a ready row always
 * has its objects and a refused upload leaves nothing behind. Temp files
 * are removed on every path. A completed upload whose checks fail loses
 * its object and stays pending, so the client may send it again.
 */
#include "handlers.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "db.h"
#include "dicom.h"
#include "imaging.h"
#include "ingest.h"
#include "log.h"
#include "master.h"
#include "multipart.h"
#include "storage.h"
#include "urltoken.h"
#include "validate.h"

/* Seconds a client refused by max_uploads_per_user is told to wait: about
 * what decoding a large upload takes. */
#define INGEST_RETRY_AFTER "5"

#define FIELD_MAX 8192            /* bytes of one text form field */
/* What a multipart upload may carry besides its image: part headers, text
 * fields, boundaries. The shipped web server limits leave the same room
 * (client_max_body_size 52m, LimitRequestBody 52 MiB for the default 50 MiB). */
#define UPLOAD_OVERHEAD (2LL * 1024 * 1024)

/* --- POST /upload -------------------------------------------------------- */

enum { FLD_CASE, FLD_EYE, FLD_TYPE, FLD_DESC, FLD_CAPTURED, FLD_FORCE,
	FLD__N };
static const char *const form_fields[FLD__N] = {
	"caseId", "eyeSide", "imageType", "description", "capturedAt", "force",
};

struct form {
	struct ctx *c;
	struct ingest_sink sink;
	int in_image, have_image, second_image;
	int field;                     /* FLD_* being read, or -1 */
	char *val[FLD__N];
	size_t len[FLD__N];
	int too_long;
};

/* The largest original POST /upload takes: a DICOM file has its own
 * limit (max_dicom_bytes), every other image max_upload_bytes. */
static long long
upload_max(const struct config *cfg)
{
	return cfg->max_dicom_bytes > cfg->max_upload_bytes ?
	    cfg->max_dicom_bytes : cfg->max_upload_bytes;
}

static int
form_begin(void *ud, const struct mp_part *part)
{
	struct form *f = ud;

	f->in_image = 0;
	f->field = -1;
	if (strcmp(part->name, "image") == 0) {
		if (f->have_image) {
			f->second_image = 1;
			return 1;
		}
		f->have_image = f->in_image = 1;
		return 0;
	}
	for (int i = 0; i < FLD__N; i++)
		if (strcmp(part->name, form_fields[i]) == 0) {
			f->field = i;
			if (f->val[i] == NULL) {
				f->val[i] = arena_alloc(f->c->req->arena, FIELD_MAX + 1);
				if (f->val[i] == NULL)
					return 1;
			}
			f->len[i] = 0;   /* a repeated field: the last one wins */
		}
	return 0;
}

static int
form_data(void *ud, const char *data, size_t len)
{
	struct form *f = ud;

	if (f->in_image)
		return ingest_sink_write(&f->sink, data, len) != 0;
	if (f->field >= 0) {
		if (len > FIELD_MAX - f->len[f->field]) {
			f->too_long = 1;
			return 1;
		}
		memcpy(f->val[f->field] + f->len[f->field], data, len);
		f->len[f->field] += len;
		f->val[f->field][f->len[f->field]] = '\0';
	}
	return 0;
}

static int
form_end(void *ud)
{
	struct form *f = ud;

	f->in_image = 0;
	f->field = -1;
	return 0;
}

int
handlers_feed_multipart(struct ctx *c, struct mp_parser *mp, int *mrc)
{
	char *buf = malloc(65536);
	ssize_t n;

	*mrc = MP_OK;
	if (buf == NULL)
		return PI_ERR_NOMEM;
	while ((n = http_body_read(c->req, buf, 65536)) > 0)
		if ((*mrc = mp_feed(mp, buf, (size_t)n)) != MP_OK)
			break;
	free(buf);
	if (n < 0)
		return PI_ERR_IO;
	if (*mrc == MP_OK)
		*mrc = mp_finish(mp);
	return 0;
}

/* Reads the multipart body into f. Returns 0 or a pi_err; answers 400 for
 * syntax problems itself (returning 1). */
static int
read_form(struct ctx *c, struct form *f, const char *boundary)
{
	static const struct mp_callbacks cb = { form_begin, form_data, form_end };
	struct mp_parser *mp = mp_new(boundary, &cb, f);
	int mrc = MP_OK, rc = 0;

	if (mp == NULL)
		return PI_ERR_NOMEM;
	if ((rc = handlers_feed_multipart(c, mp, &mrc)) != 0 || mrc == MP_OK)
		goto out;
	if (mrc == MP_ERR_CALLBACK && f->sink.err != 0) {
		rc = f->sink.err;
		goto out;
	}
	if (mrc == MP_ERR_CALLBACK && f->too_long) {
		http_validation_error(c->req, http_detail_add(NULL, "body",
		    "a form field is too long"));
		rc = 1;
	} else if (mrc == MP_ERR_CALLBACK && f->second_image) {
		http_validation_error(c->req, http_detail_add(NULL, "image",
		    "only one image per request"));
		rc = 1;
	} else if (mrc == MP_ERR_CALLBACK) {
		rc = PI_ERR_NOMEM;
	} else {
		http_validation_error(c->req, http_detail_add(NULL, "body",
		    mrc == MP_ERR_TRUNCATED ? "truncated multipart body" :
		    "malformed multipart body"));
		rc = 1;
	}
out:
	mp_free(mp);
	return rc;
}

int
handlers_record_ready(struct ctx *c, struct image *img, const char *action)
{
	struct audit ev = handlers_audit_for(c, action, img->id, img->case_id,
	    NULL);
	int rc;

	(void)snprintf(img->status, sizeof(img->status), "ready");
	rc = db_image_insert(c->w->db, c->req->arena, img, &ev);
	if (rc != 0) {
		ingest_delete_objects(c->w->storage, c->req->arena, img, 3);
		return rc == PI_ERR_NOT_FOUND || rc == PI_ERR_CONFLICT ? rc :
		    PI_ERR_DB;
	}
	return 0;
}

/* The per-user upload limit (handlers.h). */
int
handlers_ingest_admit(struct ctx *c, const char *user)
{
	if (master_ingest_claim(user,
	    (int)c->w->cfg->max_uploads_per_user) == 0)
		return 0;
	log_info("request %s: user %s has %lld uploads in flight; refused",
	    c->req->request_id, user, c->w->cfg->max_uploads_per_user);
	(void)http_error_hdr(c->req, 429, "TOO_MANY_UPLOADS",
	    "Too many uploads in progress for this user; retry later",
	    "Retry-After", INGEST_RETRY_AFTER);
	return PI_ERR_ANSWERED;
}

int
h_upload(struct ctx *c)
{
	char boundary[MP_MAX_BOUNDARY + 1];
	struct form f;
	struct image img;
	struct handlers_image_fields fields;
	json_object *details = NULL;
	enum img_type t;
	int rc, force = 0;

	if (handlers_ingest_admit(c, c->who.user_id))
		return 0;
	memset(&f, 0, sizeof(f));
	memset(&img, 0, sizeof(img));
	f.c = c;
	f.field = -1;
	f.sink.fd = -1;
	if (strncasecmp(c->req->content_type, "multipart/form-data", 19) != 0)
		return PI_ERR_UNSUPPORTED;
	/* A declared length no image within max_upload_bytes can have is
	 * refused before a byte is read: a web server that does not enforce
	 * its own limit on a proxied body (Apache's mod_proxy_fcgi) would
	 * otherwise stream it all, or wait for bytes that never come. */
	if (c->req->content_length > upload_max(c->w->cfg) + UPLOAD_OVERHEAD)
		return PI_ERR_TOO_LARGE;
	if (mp_boundary(c->req->content_type, boundary, sizeof(boundary)) != 0) {
		http_validation_error(c->req, http_detail_add(NULL, "body",
		    "multipart boundary missing or invalid"));
		return 0;
	}
	rc = ingest_sink_open(&f.sink, c->w->storage, c->req->arena,
	    c->w->cfg->max_upload_bytes);
	if (rc != 0)
		goto out;
	ingest_sink_dicom_max(&f.sink, c->w->cfg->max_dicom_bytes);
	rc = read_form(c, &f, boundary);
	if (rc != 0)
		goto out;
	/* A field is C text from here on: a NUL or malformed UTF-8 in it is
	 * refused, never cut off ("A\0B" is not "A"). */
	for (int i = 0; i < FLD__N; i++)
		if (f.val[i] != NULL && !val_utf8(f.val[i], f.len[i]))
			details = http_detail_add(details, form_fields[i],
			    "must be valid UTF-8 text without NUL characters");
	if (details != NULL) {
		http_validation_error(c->req, details);
		rc = 0;
		goto out;
	}

	fields.case_id_raw = f.val[FLD_CASE];
	fields.eye_side = f.val[FLD_EYE];
	fields.image_type = f.val[FLD_TYPE];
	fields.description = f.val[FLD_DESC];
	fields.captured_at = f.val[FLD_CAPTURED];
	details = handlers_image_fields(&fields, &img, NULL);
	if (f.val[FLD_FORCE] != NULL) {
		force = strcmp(f.val[FLD_FORCE], "true") == 0;
		if (!force && strcmp(f.val[FLD_FORCE], "false") != 0)
			details = http_detail_add(details, "force",
			    "must be true or false");
	}
	if (!f.have_image)
		details = http_detail_add(details, "image", "is required");
	if (details != NULL) {
		http_validation_error(c->req, details);
		rc = 0;
		goto out;
	}
	img.file_size = f.sink.size;
	rc = ingest_sink_finish(&f.sink, img.sha256);
	if (rc != 0)
		goto out;
	t = img_sniff(f.sink.head, f.sink.headlen);
	if (t == IMG_UNKNOWN) {
		rc = PI_ERR_UNSUPPORTED;
		goto out;
	}
	rc = handlers_check_case(c, img.case_id, ACL_UPLOAD, "upload", NULL);
	if (rc != 0)
		goto out;
	handlers_image_new(c, &img);
	img.file_size = f.sink.size;
	if (t == IMG_DICOM) {
		rc = handlers_dicom_check(c, &img, f.sink.path,
		    f.val[FLD_EYE] != NULL, &force);
		if (rc == PI_ERR_ANSWERED) {
			/* Refused (409, 415): on the record like any failure. */
			handlers_audit(c, "upload", NULL, img.case_id, NULL,
			    "error");
			rc = 0;
			goto out;
		}
		if (rc != 0)
			goto out;
	}
	rc = ingest(c->w->storage, c->req->arena, c->w->cfg->max_pixels,
	    &img, f.sink.path, t, 1);
	if (rc != 0)
		goto out;
	rc = handlers_record_ready(c, &img, "upload");
	if (rc == PI_ERR_CONFLICT && t == IMG_DICOM) {
		/* The same instance, stored concurrently. */
		rc = handlers_dicom_duplicate(c, &img);
		rc = rc == PI_ERR_ANSWERED ? 0 : rc;
		goto out;
	}
	if (rc != 0)
		goto out;
	if (force)
		handlers_audit(c, "patient_override", img.id, img.case_id,
		    NULL, "ok");
	rc = http_json(c->req, 201, handlers_envelope(
	    handlers_image_json(c->req->arena, &img),
	    "Image uploaded successfully"));
out:
	ingest_sink_discard(&f.sink);
	/* A refused or failed upload is on the record too (a denied one was
	 * recorded by check_case). */
	if (rc < 0 && rc != PI_ERR_FORBIDDEN)
		handlers_audit(c, "upload", img.id[0] ? img.id : NULL,
		    img.case_id[0] ? img.case_id : NULL, NULL, "error");
	return rc;
}

/* --- PUT /:id/upload?token= (local direct upload) ----------------------- */

/* The force query parameter of the direct upload routes (PUT /:id/upload,
 * POST /:id/complete): store a DICOM file whose PatientID is not the case
 * patient's, as POST /upload's force field. 0 into *force when absent;
 * answers 400 and returns -1 for anything but true or false. */
static int
direct_force(struct ctx *c, int *force)
{
	const char *v = http_query(c->req, "force");

	*force = v != NULL && strcmp(v, "true") == 0;
	if (v == NULL || *force || strcmp(v, "false") == 0)
		return 0;
	http_validation_error(c->req, http_detail_add(NULL, "force",
	    "must be true or false"));
	return -1;
}

/* The checks of a DICOM file at path that POST /upload makes
 * (handlers_dicom_check: header limits, laterality, capture time,
 * duplicate instance, patient) for the pending image img of a direct
 * upload; its eyeSide was given when it is not "unknown", its capturedAt
 * when its source is "client". Returns as
 * handlers_dicom_check, after auditing a refusal as action. */
static int
direct_dicom_check(struct ctx *c, struct image *img, const char *path,
    int *force, const char *action)
{
	int rc;

	/* A pending row reads back its creation time when the client gave
	 * no capturedAt: the file's time is taken then, as by POST /upload. */
	if (strcmp(img->captured_source, "client") != 0)
		img->captured_at = -1;
	rc = handlers_dicom_check(c, img, path,
	    strcmp(img->eye_side, "unknown") != 0, force);

	if (rc == PI_ERR_ANSWERED)
		handlers_audit(c, action, img->id, img->case_id, NULL, "error");
	return rc;
}

int
h_put_upload(struct ctx *c)
{
	char id[37], digest[65], issuer[URLTOKEN_ISSUER_LEN + 1] = "";
	const char *token = http_query(c->req, "token");
	struct image img;
	struct ingest_sink sink;
	enum img_type t;
	char buf[65536];
	ssize_t n;
	long long max;
	int rc, force;

	sink.fd = -1;
	sink.path[0] = '\0';
	sink.md = NULL;
	if (handlers_path_id(c, id) != 0)
		return 0;
	if (c->req->query_invalid || token == NULL ||
	    urltoken_upload_verify_by((const unsigned char *)c->w->cfg->url_signing_key,
	    strlen(c->w->cfg->url_signing_key), id, token, (int64_t)time(NULL),
	    issuer) != URLTOKEN_VALID)
		return http_error(c->req, 403, "FORBIDDEN",
		    "Invalid or expired upload URL");
	rc = db_image_get(c->w->db, c->req->arena, id, 0, &img);
	if (rc != 0)
		return rc;
	if (strcmp(img.status, "pending") != 0)
		return http_error(c->req, 409, "CONFLICT", "Image already uploaded");
	/* The uploader recorded with the row is the URL's issuer (a v2 token
	 * names it too, a v1 token does not): checked again now. */
	if (issuer[0] != '\0' && strcmp(issuer, img.uploaded_by) != 0)
		return http_error(c->req, 403, "FORBIDDEN",
		    "Invalid or expired upload URL");
	rc = handlers_redeem_check(c, img.uploaded_by, ACL_UPLOAD, &img,
	    "complete", NULL);
	if (rc != 0)
		return rc;
	if (strcasecmp(c->req->content_type, img.mime_type) != 0)
		return http_error(c->req, 403, "FORBIDDEN",
		    "Content-Type differs from the one the upload URL was issued for");
	if (direct_force(c, &force) != 0)
		return 0;
	max = img_type_from_mime(img.mime_type) == IMG_DICOM ?
	    c->w->cfg->max_dicom_bytes : c->w->cfg->max_upload_bytes;
	if (c->req->content_length > max)
		return PI_ERR_TOO_LARGE;
	/* The upload URL was issued to this user (c->who, redeem_check): the
	 * audit row is theirs, and so is the upload in the per-user count. */
	if (handlers_ingest_admit(c, c->who.user_id))
		return 0;
	rc = ingest_sink_open(&sink, c->w->storage, c->req->arena, max);
	if (rc != 0)
		goto out;
	while ((n = http_body_read(c->req, buf, sizeof(buf))) > 0)
		if ((rc = ingest_sink_write(&sink, buf, (size_t)n)) != 0)
			goto out;
	if (n < 0) {
		rc = PI_ERR_IO;
		goto out;
	}
	img.file_size = sink.size;
	rc = ingest_sink_finish(&sink, digest);
	if (rc != 0)
		goto out;
	memcpy(img.sha256, digest, sizeof(img.sha256));
	t = img_sniff(sink.head, sink.headlen);
	if (t == IMG_UNKNOWN || strcmp(img_mime(t), img.mime_type) != 0) {
		rc = PI_ERR_UNSUPPORTED;
		goto out;
	}
	if (t == IMG_DICOM) {
		rc = direct_dicom_check(c, &img, sink.path, &force, "complete");
		if (rc != 0) {
			rc = rc == PI_ERR_ANSWERED ? 0 : rc;
			goto out;
		}
	}
	rc = ingest(c->w->storage, c->req->arena, c->w->cfg->max_pixels,
	    &img, sink.path, t, 1);
	if (rc != 0)
		goto out;
	{
		struct audit ev = handlers_audit_for(c, "complete", img.id,
		    img.case_id, NULL);

		rc = db_image_mark_ready(c->w->db, c->req->arena, &img, &ev);
	}
	if (rc != 0) {
		ingest_delete_objects(c->w->storage, c->req->arena, &img, 3);
		if (rc == PI_ERR_CONFLICT && t == IMG_DICOM) {
			/* The same instance, stored concurrently. */
			rc = handlers_dicom_duplicate(c, &img);
			rc = rc == PI_ERR_ANSWERED ? 0 : rc;
		}
		goto out;
	}
	if (force)
		handlers_audit(c, "patient_override", img.id, img.case_id,
		    NULL, "ok");
	rc = http_json(c->req, 201, handlers_envelope(
	    handlers_image_json(c->req->arena, &img), NULL));
out:
	ingest_sink_discard(&sink);
	return rc;
}

/* --- POST /:id/complete -------------------------------------------------- */

/* Does the media type a store recorded (maybe with parameters, any case)
 * name the type want? */
static int
same_media_type(const char *stored, const char *want)
{
	size_t n = strcspn(stored, ";");

	while (n > 0 && (stored[n - 1] == ' ' || stored[n - 1] == '\t'))
		n--;
	return n == strlen(want) && strncasecmp(stored, want, n) == 0;
}

int
h_complete(struct ctx *c)
{
	char id[37], tmp[1100] = "";
	struct image img;
	struct storage_stat st;
	unsigned char head[DICOM_SNIFF_LEN];
	enum img_type t;
	int fd = -1, rc, force;
	ssize_t got;

	if (handlers_path_id(c, id) != 0)
		return 0;
	if (direct_force(c, &force) != 0)
		return 0;
	rc = handlers_load_image(c, id, ACL_UPLOAD, "complete", &img);
	if (rc != 0)
		return rc;
	if (strcmp(img.status, "ready") == 0) {
		handlers_audit(c, "complete", img.id, img.case_id, NULL, "ok");
		return http_json(c->req, 200, handlers_envelope(
		    handlers_image_json(c->req->arena, &img), NULL));
	}
	if (handlers_ingest_admit(c, c->who.user_id))
		return 0;
	/* Pending: the bytes must be in storage under the original's key. */
	rc = storage_stat(c->w->storage, ingest_object_key(c->req->arena, &img, V_ORIGINAL), &st);
	if (rc == PI_ERR_NOT_FOUND)
		return http_error(c->req, 409, "CONFLICT",
		    "The upload has not been received");
	if (rc != 0)
		return rc;
	if (st.size > (img_type_from_mime(img.mime_type) == IMG_DICOM ?
	    c->w->cfg->max_dicom_bytes : c->w->cfg->max_upload_bytes)) {
		rc = PI_ERR_TOO_LARGE;
		goto reject;
	}
	/* The object must carry the Content-Type the URL was issued for, as
	 * the client was told: a Supabase signed upload URL does not sign it,
	 * and the store serves the object's own download URLs with it. */
	if (st.content_type[0] != '\0' &&
	    !same_media_type(st.content_type, img.mime_type)) {
		rc = PI_ERR_UNSUPPORTED;
		goto reject;
	}
	fd = storage_tmpfile(c->w->storage, tmp, sizeof(tmp));
	if (fd < 0)
		return PI_ERR_STORAGE;
	close(fd);
	fd = -1;
	rc = storage_fetch(c->w->storage, ingest_object_key(c->req->arena, &img, V_ORIGINAL), tmp);
	if (rc != 0)
		goto out;
	rc = ingest_file_sha256(tmp, img.sha256, &img.file_size);
	if (rc != 0)
		goto out;
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	got = fd >= 0 ? read(fd, head, sizeof(head)) : -1;
	t = got > 0 ? img_sniff(head, (size_t)got) : IMG_UNKNOWN;
	if (t == IMG_UNKNOWN || strcmp(img_mime(t), img.mime_type) != 0) {
		rc = PI_ERR_UNSUPPORTED;
		goto reject;
	}
	if (t == IMG_DICOM) {
		rc = direct_dicom_check(c, &img, tmp, &force, "complete");
		if (rc == PI_ERR_ANSWERED) {
			/* Refused and audited: the object goes, as below. */
			(void)storage_del(c->w->storage, ingest_object_key(
			    c->req->arena, &img, V_ORIGINAL));
			rc = 0;
			goto out;
		}
		if (rc == PI_ERR_UNPROCESSABLE)
			goto reject;
		if (rc != 0)
			goto out;
	}
	rc = ingest(c->w->storage, c->req->arena, c->w->cfg->max_pixels,
	    &img, tmp, t, 0);
	if (rc == PI_ERR_UNPROCESSABLE)
		goto reject;
	if (rc != 0)
		goto out;
	{
		struct audit ev = handlers_audit_for(c, "complete", img.id,
		    img.case_id, NULL);

		rc = db_image_mark_ready(c->w->db, c->req->arena, &img, &ev);
	}
	if (rc == PI_ERR_CONFLICT) {
		/* Completed concurrently: answer with what is recorded; or,
		 * still pending, another image took the DICOM instance. */
		struct image now;

		rc = db_image_get(c->w->db, c->req->arena, id, 0, &now);
		if (rc != 0)
			goto out;
		if (t == IMG_DICOM && strcmp(now.status, "pending") == 0) {
			for (int v = V_ORIGINAL; v <= V_THUMBNAIL; v++)
				(void)storage_del(c->w->storage, ingest_object_key(
				    c->req->arena, &img, (enum ingest_variant)v));
			handlers_audit(c, "complete", img.id, img.case_id,
			    NULL, "error");
			rc = handlers_dicom_duplicate(c, &img);
			rc = rc == PI_ERR_ANSWERED ? 0 : rc;
			goto out;
		}
		img = now;
		force = 0;
	} else if (rc != 0) {
		for (int v = V_DISPLAY; v <= V_THUMBNAIL; v++)
			(void)storage_del(c->w->storage,
			    ingest_object_key(c->req->arena, &img, (enum ingest_variant)v));
		goto out;
	}
	if (force)
		handlers_audit(c, "patient_override", img.id, img.case_id,
		    NULL, "ok");
	rc = http_json(c->req, 200, handlers_envelope(
	    handlers_image_json(c->req->arena, &img), NULL));
	goto out;
reject:
	/* The object failed the checks: delete it; the image stays pending. */
	(void)storage_del(c->w->storage, ingest_object_key(c->req->arena, &img, V_ORIGINAL));
	handlers_audit(c, "complete", img.id, img.case_id, NULL, "error");
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0] != '\0')
		(void)unlink(tmp);
	return rc;
}
