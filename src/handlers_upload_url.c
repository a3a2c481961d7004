/* handlers_upload_url.c — POST /upload-url: an upload in two steps.
 *
 * The client asks for a URL, sends the bytes there, then calls
 * POST /:id/complete (handlers_upload.c). This endpoint reads and checks
 * the JSON body (json-c, plus what json-c lets through: malformed UTF-8,
 * \u0000 in names and values), checks access to the case, records a
 * pending image and answers with a URL the client may PUT the original to
 * until it expires: the store's presigned URL on S3 and Supabase, polaimg's
 * own on local storage (handlers_signed_url). The row is written only once
 * its URL exists, so a failure leaves nothing; sweep removes pending
 * images whose URL expired.
 *
 * handlers_upload_url_fields() is the pure half, fuzzed by
 * tests/fuzz/fuzz_json.c.
 */
#include "handlers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "config.h"
#include "db.h"
#include "imaging.h"
#include "validate.h"

#define JSON_BODY_MAX (64 * 1024)

/* --- POST /upload-url ---------------------------------------------------- */

/* 1 if every string in v (values, and member names, at any depth) is
 * well-formed UTF-8 without NUL (val_utf8). json-c checks UTF-8 only loosely
 * (an overlong C0 80 passes) and turns \u0000 into a NUL inside the
 * string, which strlen() would silently cut off. */
static int
json_text_ok(json_object *v, int depth)
{
	if (depth > 64)
		return 0;
	switch (json_object_get_type(v)) {
	case json_type_string:
		return val_utf8(json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(v); i++)
			if (!json_text_ok(json_object_array_get_idx(v, i), depth + 1))
				return 0;
		return 1;
	case json_type_object: {
		json_object_object_foreach(v, k, m) {
			if (!val_utf8(k, strlen(k)) || !json_text_ok(m, depth + 1))
				return 0;
		}
		return 1;
	}
	default:
		return 1;
	}
}

/* 1 if the JSON text holds a \u0000 escape (an odd run of backslashes
 * before "u0000"). A member name with one is cut at the NUL by json-c
 * ("caseId\u0000x" becomes "caseId"), so this is refused from the text. */
static int
json_has_nul_escape(const char *buf, size_t len)
{
	for (size_t i = 0; i + 6 <= len; i++) {
		size_t k = 0;

		if (buf[i] != '\\')
			continue;
		while (i + k < len && buf[i + k] == '\\')
			k++;
		if (k % 2 == 1 && i + k + 5 <= len &&
		    strncmp(buf + i + k, "u0000", 5) == 0)
			return 1;
		i += k - 1;
	}
	return 0;
}

/* Answers 400 naming the first member of the object body whose strings are
 * not clean text (json_text_ok), or "body" for a bad member name or a
 * \u0000 escape found elsewhere; returns 1 then, else 0. */
static int
json_body_text_check(struct ctx *c, json_object *obj, const char *buf,
    size_t len)
{
	const char *bad = NULL;

	json_object_object_foreach(obj, k, m) {
		if (!val_utf8(k, strlen(k))) {
			bad = "body";
			break;
		}
		if (!json_text_ok(m, 1)) {
			bad = k;
			break;
		}
	}
	if (bad == NULL && json_has_nul_escape(buf, len))
		bad = "body";
	if (bad == NULL)
		return 0;
	http_validation_error(c->req, http_detail_add(NULL, bad,
	    "must be valid UTF-8 text without NUL characters"));
	return 1;
}

/* Reads a JSON object body (at most JSON_BODY_MAX). Answers 400/413 itself
 * and returns NULL when it is not one (also when a string in it is not
 * clean UTF-8 text: json_body_text_check). */
static json_object *
read_json_body(struct ctx *c)
{
	char *buf = arena_alloc(c->req->arena, JSON_BODY_MAX + 1);
	size_t len = 0;
	ssize_t n;
	json_object *obj;

	if (buf == NULL) {
		http_error_for(c->req, PI_ERR_NOMEM);
		return NULL;
	}
	while (len < JSON_BODY_MAX &&
	    (n = http_body_read(c->req, buf + len, JSON_BODY_MAX - len)) > 0)
		len += (size_t)n;
	if (len == JSON_BODY_MAX) {
		char extra;

		if (http_body_read(c->req, &extra, 1) > 0) {
			http_error_for(c->req, PI_ERR_TOO_LARGE);
			return NULL;
		}
	}
	obj = http_parse_json_object(buf, len);
	if (obj == NULL) {
		http_validation_error(c->req, http_detail_add(NULL, "body",
		    "must be a JSON object"));
		return NULL;
	}
	if (json_body_text_check(c, obj, buf, len)) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* A string member, "" → NULL; *bad set when present but not a string. */
static const char *
jget_str(json_object *o, const char *name, int *bad)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*bad = 1;
		return NULL;
	}
	return json_object_get_string(v);
}

static int
jget_int(json_object *o, const char *name, long long *out, int *bad)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int)) {
		*bad = 1;
		return 0;
	}
	errno = 0;
	*out = json_object_get_int64(v);
	if (errno != 0) {
		*bad = 1;
		return 0;
	}
	return 1;
}

json_object *
handlers_upload_url_fields(json_object *body, long long max_ttl,
    struct upload_url_fields *f, struct image *img)
{
	struct handlers_image_fields fields;
	json_object *details = NULL;
	long long asked = 0;
	int bad[9] = { 0 };

	memset(img, 0, sizeof(*img));
	f->file_size = -1;
	f->file_name = jget_str(body, "fileName", &bad[0]);
	f->content_type = jget_str(body, "contentType", &bad[1]);
	fields.case_id_raw = jget_str(body, "caseId", &bad[2]);
	fields.eye_side = jget_str(body, "eyeSide", &bad[3]);
	fields.image_type = jget_str(body, "imageType", &bad[4]);
	fields.description = jget_str(body, "description", &bad[5]);
	fields.captured_at = jget_str(body, "capturedAt", &bad[6]);
	(void)jget_int(body, "fileSize", &f->file_size, &bad[7]);
	f->has_expires = jget_int(body, "expiresIn", &asked, &bad[8]);
	f->expires_in = handlers_url_ttl(f->has_expires ? &asked : NULL, 900,
	    max_ttl);

	if (bad[0] || f->file_name == NULL || f->file_name[0] == '\0' ||
	    !val_text(f->file_name, strlen(f->file_name), 255))
		details = http_detail_add(details, "fileName",
		    "is required: text of 1 to 255 characters");
	if (bad[1] || f->content_type == NULL || f->content_type[0] == '\0')
		details = http_detail_add(details, "contentType", "is required");
	if (bad[2] || bad[3] || bad[4] || bad[5] || bad[6])
		details = http_detail_add(details, "body", "fields must be strings");
	details = handlers_image_fields(&fields, img, details);
	if (bad[7] || (f->file_size < 0 && f->file_size != -1))
		details = http_detail_add(details, "fileSize",
		    "must be a non-negative integer");
	if (bad[8] || f->expires_in < 0)
		details = http_detail_add(details, "expiresIn",
		    "must be between 1 and max_upload_url_ttl seconds");
	return details;
}

int
h_upload_url(struct ctx *c)
{
	json_object *body, *details, *data;
	struct upload_url_fields f;
	struct image img;
	const char *content_type;
	long long file_size, expires_in;
	int rc;
	int64_t now = (int64_t)time(NULL);
	const char *url;

	body = read_json_body(c);
	if (body == NULL)
		return 0;
	details = handlers_upload_url_fields(body,
	    c->w->cfg->max_upload_url_ttl, &f, &img);
	if (details != NULL) {
		json_object_put(body);
		return http_validation_error(c->req, details);
	}
	content_type = f.content_type;
	file_size = f.file_size;
	expires_in = f.expires_in;
	if (img_type_from_mime(content_type) == IMG_UNKNOWN) {
		rc = PI_ERR_UNSUPPORTED;
		goto out;
	}
	/* A DICOM file has its own limit; it is checked against its case
	 * (handlers_dicom.c) when its bytes arrive (PUT /:id/upload, or
	 * POST /:id/complete after an object store's PUT). */
	if (file_size > (img_type_from_mime(content_type) == IMG_DICOM ?
	    c->w->cfg->max_dicom_bytes : c->w->cfg->max_upload_bytes)) {
		rc = PI_ERR_TOO_LARGE;
		goto out;
	}
	rc = handlers_check_case(c, img.case_id, ACL_UPLOAD, "upload_url", NULL);
	if (rc != 0)
		goto out;
	handlers_image_new(c, &img);
	(void)snprintf(img.status, sizeof(img.status), "pending");
	/* The declared type is kept until the bytes are measured. */
	(void)snprintf(img.mime_type, sizeof(img.mime_type), "%s",
	    img_mime(img_type_from_mime(content_type)));
	img.upload_expires_at = now + expires_in;
	rc = handlers_signed_url(c, &img, 1, V_ORIGINAL, expires_in,
	    &img.upload_expires_at, &url);
	if (rc != 0)
		goto out;
	/* A self-hosted Supabase signs upload URLs for its own lifetime
	 * (60 s by default), whatever was asked: answer that one. */
	expires_in = img.upload_expires_at > now ? img.upload_expires_at - now : 0;
	/* The row only once its URL exists: a failure above leaves nothing. */
	{
		struct audit ev = handlers_audit_for(c, "upload_url", img.id,
		    img.case_id, NULL);

		rc = db_image_insert(c->w->db, c->req->arena, &img, &ev);
		if (rc != 0)
			goto out;
	}
	data = json_object_new_object();
	if (data == NULL || url == NULL) {
		json_object_put(data);
		rc = PI_ERR_NOMEM;
		goto out;
	}
	json_object_object_add(data, "imageId", json_object_new_string(img.id));
	json_object_object_add(data, "uploadUrl", json_object_new_string(url));
	json_object_object_add(data, "method", json_object_new_string("PUT"));
	{
		json_object *h = json_object_new_object();

		json_object_object_add(h, "Content-Type",
		    json_object_new_string(img.mime_type));
		json_object_object_add(data, "headers", h);
	}
	json_object_object_add(data, "key", json_object_new_string(
	    arena_printf(c->req->arena, "%s/original", img.storage_key)));
	json_object_object_add(data, "expiresIn", json_object_new_int64(expires_in));
	json_object_object_add(data, "expiresAt", json_object_new_string(
	    handlers_fmt_time(c->req->arena, img.upload_expires_at)));
	rc = http_json(c->req, 200, handlers_envelope(data,
	    "Upload URL generated successfully"));
out:
	json_object_put(body);
	return rc;
}
