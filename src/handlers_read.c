/* handlers_read.c — the endpoints that read: rows, bytes, links; and delete.
 *
 * GET /:id and GET /cases/:caseId answer rows (a case list from the
 * worker's copy when the case's version has not moved, listcache.h; the
 * copy holds the images and the total, the same for every caller, and the
 * case row and the caller's viewer, what the access table lets them do,
 * are put around it per request);
 * GET /:id/proxy and GET /:id/file (a signed link of polaimg's) answer an
 * object's bytes; GET /:id/download-url answers a link to them; DELETE /:id
 * marks an image deleted (sweep purges it later). Each reads top to bottom
 * as its endpoint in docs/api.md: validate → authorize → act → respond.
 *
 * Bytes: serve() answers If-None-Match (304) and an unsatisfiable Range
 * (416) itself, because the web servers' validators are not the SHA-256;
 * then it hands the sending to the web server when it can (X-Accel-Redirect
 * to a file or, for S3 and Supabase, to a presigned URL nginx fetches;
 * X-Sendfile for Apache), and otherwise streams the object through the
 * worker with a single Range. Headers of a streamed answer go out with the
 * first bytes, so a storage failure before them is still a clean 503.
 */
#include "handlers.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "config.h"
#include "db.h"
#include "imaging.h"
#include "listcache.h"
#include "log.h"
#include "storage.h"
#include "urltoken.h"
#include "validate.h"

/* The detail for a query string http_request_init() refused: the parameter
 * whose value held a NUL or malformed UTF-8 when it knows one. */
static json_object *
query_detail(struct ctx *c, json_object *details)
{
	if (c->req->query_bad != NULL)
		return http_detail_add(details, c->req->query_bad,
		    "must be valid UTF-8 text without NUL characters");
	return http_detail_add(details, "query", "malformed query string");
}

/* --- GET /:id ------------------------------------------------------------ */

int
h_get(struct ctx *c)
{
	char id[37];
	struct image img;
	int rc;

	if (handlers_path_id(c, id) != 0)
		return 0;
	rc = handlers_load_image(c, id, ACL_VIEW, "view", &img);
	if (rc != 0)
		return rc;
	handlers_audit(c, "view", img.id, img.case_id, NULL, "ok");
	return http_json(c->req, 200, handlers_envelope(
	    handlers_image_json(c->req->arena, &img), NULL));
}

/* --- GET /cases/:caseId -------------------------------------------------- */

/* {"id", "patientId", "patientName", "hn"} of the case. */
static json_object *
case_json(const char *case_id, const struct db_case *k)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	json_object_object_add(o, "id", json_object_new_string(case_id));
	json_object_object_add(o, "patientId", k->patient_id[0] != '\0' ?
	    json_object_new_string(k->patient_id) : NULL);
	json_object_object_add(o, "patientName", k->patient_name != NULL ?
	    json_object_new_string(k->patient_name) : NULL);
	json_object_object_add(o, "hn", k->hn != NULL ?
	    json_object_new_string(k->hn) : NULL);
	return o;
}

/* {"id", "role", "canUpload", "canDelete"}: what the access table allows
 * the caller on this case (docs/api.md, "Access rules"). */
static json_object *
viewer_json(const struct ctx *c, const struct db_case *k)
{
	static const char *const roles[] = {
		[ROLE_PATIENT] = "patient", [ROLE_DOCTOR] = "doctor",
		[ROLE_ADMIN] = "admin",
	};
	json_object *o;

	if (c->who.role <= ROLE_NONE || c->who.role > ROLE_ADMIN ||
	    (o = json_object_new_object()) == NULL)
		return NULL;
	json_object_object_add(o, "id", json_object_new_string(c->who.user_id));
	json_object_object_add(o, "role", json_object_new_string(
	    roles[c->who.role]));
	json_object_object_add(o, "canUpload", json_object_new_boolean(
	    acl_allowed(&c->who, ACL_UPLOAD, k->patient_id)));
	json_object_object_add(o, "canDelete", json_object_new_boolean(
	    acl_allowed(&c->who, ACL_DELETE, k->patient_id)));
	return o;
}

/*
 * Sends {"data": {<images and total>, "case": …, "viewer": …}}. part is
 * the serialized {"images": […], "total": N} (the worker's copy, or just
 * made): the same for every caller at the case's version, whereas the case
 * row and the viewer are this request's, so they are added around it.
 */
static int
list_answer(struct ctx *c, const char *case_id, const struct db_case *k,
    const char *part, size_t plen)
{
	json_object *kj = case_json(case_id, k), *vj = viewer_json(c, k);
	const char *ks, *vs;
	size_t kl, vl, n;
	char *body, *p;
	int rc = PI_ERR_NOMEM;

	if (kj == NULL || vj == NULL || plen < 2 || part[plen - 1] != '}')
		goto out;
	ks = json_object_to_json_string_length(kj, HTTP_JSON_FLAGS, &kl);
	vs = json_object_to_json_string_length(vj, HTTP_JSON_FLAGS, &vl);
	if (ks == NULL || vs == NULL)
		goto out;
	/* Copied, not printed: printf's "%.*s" moved part (16 KB for a list
	 * of 20) through stdio in 64-byte pieces, measuring it first, which
	 * was a third of a worker's CPU under list load. */
#define LIST_PIECE(s) (s), sizeof(s) - 1
	n = plen - 1 + kl + vl + sizeof("{\"data\":,\"case\":,\"viewer\":}}") - 1;
	if ((body = p = arena_alloc(c->req->arena, n)) == NULL)
		goto out;
	p = mempcpy(p, LIST_PIECE("{\"data\":"));
	p = mempcpy(p, part, plen - 1);
	p = mempcpy(p, LIST_PIECE(",\"case\":"));
	p = mempcpy(p, ks, kl);
	p = mempcpy(p, LIST_PIECE(",\"viewer\":"));
	p = mempcpy(p, vs, vl);
	p = mempcpy(p, LIST_PIECE("}}"));
#undef LIST_PIECE
	rc = http_json_bytes(c->req, 200, body, (size_t)(p - body));
out:
	json_object_put(kj);
	json_object_put(vj);
	return rc;
}

int
h_list(struct ctx *c)
{
	char case_id[37];
	const char *eye = http_query(c->req, "eyeSide");
	const char *lim = http_query(c->req, "limit");
	const char *off = http_query(c->req, "offset");
	long long limit = 100, offset = 0, total = 0;
	json_object *details = NULL, *arr, *data;
	struct image *imgs;
	struct db_case kase;
	const char *key, *cached, *part;
	size_t n, clen, plen;
	int rc;

	if (c->id == NULL || !val_uuid(c->id, case_id))
		return http_validation_error(c->req, http_detail_add(NULL,
		    "caseId", "must be a UUID"));
	if (c->req->query_invalid)
		details = query_detail(c, details);
	if (eye != NULL && val_enum(eye, handlers_eye_sides) < 0)
		details = http_detail_add(details, "eyeSide",
		    "must be one of left, right, both, unknown");
	if (lim != NULL && !val_int(lim, 1, 500, &limit))
		details = http_detail_add(details, "limit",
		    "must be an integer from 1 to 500");
	if (off != NULL && !val_int(off, 0, 1000000000, &offset))
		details = http_detail_add(details, "offset",
		    "must be a non-negative integer");
	if (details != NULL)
		return http_validation_error(c->req, details);
	rc = handlers_check_case(c, case_id, ACL_VIEW, "list", &kase);
	if (rc != 0)
		return rc;
	/* The case's version was read with the user (c->pf): a copy made at
	 * the same version is this very list (listcache.h). The uploaders'
	 * names in it may be older than the version: a copy is used for
	 * auth_cache_ttl at most. */
	key = arena_printf(c->req->arena, "%s|%s|%lld|%lld", case_id,
	    eye != NULL ? eye : "", limit, offset);
	if (kase.version >= 0 && key != NULL &&
	    (cached = listcache_get(c->w->lists, key, kase.version, db_now_ms(),
	    c->w->cfg->auth_cache_ttl * 1000, &clen)) != NULL) {
		handlers_audit(c, "list", NULL, case_id, NULL, "ok");
		return list_answer(c, case_id, &kase, cached, clen);
	}
	rc = db_images_list(c->w->db, c->req->arena, case_id, eye, (long)limit,
	    (long)offset, &imgs, &n, &total);
	if (rc != 0)
		return rc;
	arr = json_object_new_array_ext((int)n);
	data = json_object_new_object();
	if (arr == NULL || data == NULL) {
		json_object_put(arr);
		json_object_put(data);
		return PI_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr,
		    handlers_image_json(c->req->arena, &imgs[i]));
	json_object_object_add(data, "images", arr);
	json_object_object_add(data, "total", json_object_new_int64(total));
	handlers_audit(c, "list", NULL, case_id, NULL, "ok");
	part = json_object_to_json_string_length(data, HTTP_JSON_FLAGS, &plen);
	if (part == NULL) {
		json_object_put(data);
		return PI_ERR_NOMEM;
	}
	if (kase.version >= 0 && key != NULL)
		(void)listcache_put(c->w->lists, key, kase.version, db_now_ms(),
		    part, plen);
	rc = list_answer(c, case_id, &kase, part, plen);
	json_object_put(data);   /* part was its string */
	return rc;
}

/* --- variants and serving bytes ----------------------------------------- */

/* The variant asked for by ?thumbnail=true or ?variant=; dflt if neither.
 * -1 when invalid. */
static int
variant_param(struct ctx *c, enum ingest_variant dflt)
{
	const char *v = http_query(c->req, "variant");
	const char *th = http_query(c->req, "thumbnail");
	int i;

	if (v != NULL) {
		/* val_enum() answers an index of handlers_variants[] or
		 * -1; the bound is said again where callers index with it. */
		i = val_enum(v, handlers_variants);
		return i >= 0 && (size_t)i < PI_ARRAY_LEN(handlers_variants) ?
		    i : -1;
	}
	if (th != NULL) {
		bool thumb;

		if (!val_bool(th, &thumb))
			return -1;
		return thumb ? V_THUMBNAIL : (int)dflt;
	}
	return (int)dflt;
}

/* The headers every response with an object's bytes carries. */
static int
object_headers(struct ctx *c, const struct image *img, enum ingest_variant v,
    const char *mime, const char *etag, const char *ext)
{
	if (http_header(c->req, "Content-Type", mime) != 0 ||
	    http_header(c->req, "ETag", etag) != 0 ||
	    http_headerf(c->req, "Cache-Control", "private, max-age=%lld",
	    c->w->cfg->cache_max_age) != 0 ||
	    http_header(c->req, "X-Content-Type-Options", "nosniff") != 0 ||
	    http_headerf(c->req, "Content-Disposition",
	    "inline; filename=\"%s-%s.%s\"", img->id, handlers_variants[v],
	    ext) != 0)
		return -1;
	return 0;
}

/* Headers of a streamed answer, sent when the first bytes are ready, so
 * that a storage failure before that is still a clean 503. */
struct stream_ctx {
	struct ctx *c;
	const struct image *img;
	enum ingest_variant v;
	const char *mime, *etag, *ext;
	long long start, end, size;
	int ranged, started;
};

static int
stream_headers(struct stream_ctx *s)
{
	struct http_request *r = s->c->req;

	s->started = 1;
	if (http_begin(r, s->ranged ? 206 : 200) != 0 ||
	    object_headers(s->c, s->img, s->v, s->mime, s->etag, s->ext) != 0 ||
	    http_header(r, "Accept-Ranges", "bytes") != 0 ||
	    http_headerf(r, "Content-Length", "%lld", s->end - s->start + 1) != 0 ||
	    (s->ranged && http_headerf(r, "Content-Range", "bytes %lld-%lld/%lld",
	    s->start, s->end, s->size) != 0) ||
	    http_end_headers(r) != 0)
		return -1;
	return 0;
}

static int
stream_cb(void *ud, const char *buf, size_t n)
{
	struct stream_ctx *s = ud;

	if (!s->started && stream_headers(s) != 0)
		return -1;
	return http_write(s->c->req, buf, n);
}

/* The bytes of an object through this worker (offload = none, or a remote
 * back end without nginx), with a single Range. The size comes from the
 * database, which measured every object when it was stored. */
static int
stream_object(struct ctx *c, const struct image *img, enum ingest_variant v,
    const char *key, const char *mime, const char *etag, const char *ext)
{
	struct stream_ctx s = { .c = c, .img = img, .v = v, .mime = mime,
		.etag = etag, .ext = ext };
	int rc;

	s.size = v == V_ORIGINAL ? img->file_size :
	    v == V_DISPLAY ? img->display_size : img->thumb_size;
	if (s.size < 0)
		return PI_ERR_NOT_FOUND;
	s.end = s.size - 1;
	/* serve() has answered an unsatisfiable Range already. */
	s.ranged = http_parse_range(http_param(c->req, "HTTP_RANGE"), s.size,
	    &s.start, &s.end) == HTTP_RANGE_OK;
	if (!s.ranged) {
		s.start = 0;
		s.end = s.size - 1;
	}
	if (c->req->is_head || s.size == 0) {
		(void)stream_headers(&s);
		return 0;
	}
	rc = c->w->storage->ops->stream(c->w->storage, key, s.start, s.end,
	    stream_cb, &s);
	if (rc != 0 && !s.started)
		return rc == PI_ERR_NOT_FOUND ? PI_ERR_STORAGE : rc;
	if (rc != 0)
		log_error("serve: streaming %s broke off after the headers: %s", key,
		    pi_strerror(rc));
	return 0;
}

/* For a back end with URLs of its own (S3, Supabase) and offload = nginx:
 * nginx fetches a presigned URL valid for a minute through its internal
 * location /_polaimg_remote/ and sends the bytes on. */
static int
remote_accel(struct ctx *c, const struct image *img, enum ingest_variant v,
    const char *key, const char *mime, const char *etag, const char *ext)
{
	char *url = c->w->storage->ops->presign(c->w->storage, "GET", key, NULL, 60);
	const char *p = url != NULL ? strstr(url, "://") : NULL;

	p = p != NULL ? strchr(p + 3, '/') : NULL;
	if (p == NULL) {
		free(url);
		return PI_ERR_STORAGE;
	}
	if (http_begin(c->req, 200) == 0 &&
	    object_headers(c, img, v, mime, etag, ext) == 0 &&
	    http_headerf(c->req, "X-Accel-Redirect", "/_polaimg_remote%s", p) == 0)
		(void)http_end_headers(c->req);
	free(url);
	return 0;
}

/* 1 (and a 416 with "Content-Range: bytes * /size" sent) if the request's
 * Range cannot be satisfied for an object of size bytes, else 0. Answered
 * here before any offload, so that every web server gives the same 416. */
static int
range_unsatisfiable(struct ctx *c, long long size)
{
	long long start, end;

	if (size < 0 || http_parse_range(http_param(c->req, "HTTP_RANGE"), size,
	    &start, &end) != HTTP_RANGE_UNSATISFIABLE)
		return 0;
	if (http_begin(c->req, 416) == 0 &&
	    http_headerf(c->req, "Content-Range", "bytes */%lld", size) == 0 &&
	    http_header(c->req, "Content-Length", "0") == 0)
		(void)http_end_headers(c->req);
	return 1;
}

/* Sends object v of img: 304 for a matching If-None-Match, else the
 * offload header (the web server then sends the file, with Range), else the
 * bytes themselves with Range. Returns 0, or a pi_err before anything was
 * written. */
static int
serve(struct ctx *c, const struct image *img, enum ingest_variant v)
{
	const struct config *cfg = c->w->cfg;
	const char *key = ingest_object_key(c->req->arena, img, v);
	const char *mime = v == V_ORIGINAL ? img->mime_type :
	    v == V_DISPLAY ? img->display_mime : img->thumb_mime;
	const char *sha = v == V_ORIGINAL ? img->sha256 :
	    v == V_DISPLAY ? img->display_sha256 : img->thumb_sha256;
	const char *ext = img_ext(img_type_from_mime(mime));
	char etag[70], path[1200];

	if (key == NULL || mime[0] == '\0' || sha[0] == '\0' || ext == NULL)
		return PI_ERR_NOT_FOUND;   /* a legacy row without its objects */
	(void)snprintf(etag, sizeof(etag), "\"%s\"", sha);
	if (http_etag_match(http_param(c->req, "HTTP_IF_NONE_MATCH"), etag)) {
		if (http_begin(c->req, 304) != 0 ||
		    http_header(c->req, "ETag", etag) != 0 ||
		    http_headerf(c->req, "Cache-Control", "private, max-age=%lld",
		    cfg->cache_max_age) != 0 ||
		    http_end_headers(c->req) != 0)
			return 0;
		return 0;
	}
	if (range_unsatisfiable(c, v == V_ORIGINAL ? img->file_size :
	    v == V_DISPLAY ? img->display_size : img->thumb_size))
		return 0;
	if (c->w->storage->ops->presign != NULL)
		return cfg->offload_mode == OFFLOAD_NGINX ?
		    remote_accel(c, img, v, key, mime, etag, ext) :
		    stream_object(c, img, v, key, mime, etag, ext);
	if (cfg->offload_mode == OFFLOAD_NGINX) {
		if (http_begin(c->req, 200) == 0 &&
		    object_headers(c, img, v, mime, etag, ext) == 0 &&
		    http_headerf(c->req, "X-Accel-Redirect", "%s%s",
		    cfg->offload_prefix, key) == 0)
			(void)http_end_headers(c->req);
		return 0;
	}
	if (cfg->offload_mode == OFFLOAD_APACHE) {
		if (storage_local_path(c->w->storage, key, path, sizeof(path)) != 0)
			return PI_ERR_STORAGE;
		if (http_begin(c->req, 200) == 0 &&
		    object_headers(c, img, v, mime, etag, ext) == 0 &&
		    http_header(c->req, "X-Sendfile", path) == 0)
			(void)http_end_headers(c->req);
		return 0;
	}
	return stream_object(c, img, v, key, mime, etag, ext);
}

/* The tail of every read that sends bytes (/proxy, /file): serve() object v
 * of img, then the audit row of action, "ok" or "error" as serve() went.
 * Returns serve()'s result. */
static int
serve_audited(struct ctx *c, const struct image *img, enum ingest_variant v,
    const char *action)
{
	int rc = serve(c, img, v);

	handlers_audit(c, action, img->id, img->case_id, handlers_variants[v],
	    rc == 0 ? "ok" : "error");
	return rc;
}

int
handlers_serve(struct ctx *c, const struct image *img, enum ingest_variant v,
    const char *action)
{
	return serve_audited(c, img, v, action);
}

/* --- GET /:id/proxy ------------------------------------------------------ */

int
h_proxy(struct ctx *c)
{
	char id[37];
	struct image img;
	int v, rc;

	if (handlers_path_id(c, id) != 0)
		return 0;
	v = variant_param(c, V_DISPLAY);
	if (c->req->query_invalid)
		return http_validation_error(c->req, query_detail(c, NULL));
	if (v < 0)
		return http_validation_error(c->req, http_detail_add(NULL, "variant",
		    "must be original, display or thumbnail"));
	rc = handlers_load_image(c, id, ACL_VIEW, "proxy", &img);
	if (rc != 0)
		return rc;
	if (strcmp(img.status, "ready") != 0)
		return PI_ERR_NOT_FOUND;
	return serve_audited(c, &img, (enum ingest_variant)v, "proxy");
}

/* --- GET /:id/download-url ----------------------------------------------- */

int
h_download_url(struct ctx *c)
{
	char id[37];
	struct image img;
	const char *ei = http_query(c->req, "expiresIn");
	long long expires_in, asked = 0;
	int64_t expires;
	json_object *details = NULL, *data;
	const char *url;
	int v, rc;

	if (handlers_path_id(c, id) != 0)
		return 0;
	v = variant_param(c, V_ORIGINAL);
	if (v < 0)
		details = http_detail_add(details, "variant",
		    "must be original, display or thumbnail");
	expires_in = ei != NULL && !val_int(ei, LLONG_MIN, LLONG_MAX, &asked) ?
	    -1 : handlers_url_ttl(ei != NULL ? &asked : NULL, 3600,
	    c->w->cfg->max_download_url_ttl);
	if (expires_in < 0)
		details = http_detail_add(details, "expiresIn",
		    "must be an integer from 1 to max_download_url_ttl");
	if (c->req->query_invalid)
		details = query_detail(c, details);
	if (details != NULL)
		return http_validation_error(c->req, details);
	if (v < 0)    /* http_detail_add() could not allocate */
		return PI_ERR_NOMEM;
	rc = handlers_load_image(c, id, ACL_VIEW, "download_url", &img);
	if (rc != 0)
		return rc;
	if (strcmp(img.status, "ready") != 0)
		return PI_ERR_NOT_FOUND;
	expires = (int64_t)time(NULL) + expires_in;
	rc = handlers_signed_url(c, &img, 0, (enum ingest_variant)v, expires_in,
	    &expires, &url);
	if (rc != 0)
		return rc;
	/* The store's own lifetime, when shorter (handlers_signed_url). */
	expires_in = expires - (int64_t)time(NULL);
	if (expires_in < 0)
		expires_in = 0;
	data = json_object_new_object();
	if (data == NULL || url == NULL) {
		json_object_put(data);
		return PI_ERR_NOMEM;
	}
	json_object_object_add(data, "downloadUrl", json_object_new_string(url));
	json_object_object_add(data, "expiresIn", json_object_new_int64(expires_in));
	json_object_object_add(data, "expiresAt", json_object_new_string(
	    handlers_fmt_time(c->req->arena, expires)));
	handlers_audit(c, "download_url", img.id, img.case_id,
	    handlers_variants[v], "ok");
	return http_json(c->req, 200, handlers_envelope(data, NULL));
}

/* --- GET /:id/file?variant&expires&sig (local signed URL) --------------- */

int
h_file(struct ctx *c)
{
	char id[37];
	const char *variant = http_query(c->req, "variant");
	const char *exp = http_query(c->req, "expires");
	const char *sig = http_query(c->req, "sig");
	/* The issuer (format v2); a link without one is of format v1, issued
	 * before issuers were recorded, and works until it expires. */
	const char *uid = http_query(c->req, "uid");
	long long expires;
	struct image img;
	int v, rc;

	if (handlers_path_id(c, id) != 0)
		return 0;
	v = variant != NULL ? val_enum(variant, handlers_variants) : -1;
	if (c->req->query_invalid || v < 0 || exp == NULL || sig == NULL ||
	    !val_int(exp, 0, INT64_MAX / 2, &expires) ||
	    urltoken_verify_by((const unsigned char *)c->w->cfg->url_signing_key,
	    strlen(c->w->cfg->url_signing_key), URLTOKEN_DOWNLOAD, id, variant,
	    expires, uid, sig, (int64_t)time(NULL)) != URLTOKEN_VALID) {
		handlers_audit(c, "file", id, NULL,
		    variant != NULL && v >= 0 ? variant : NULL, "denied");
		return http_error(c->req, 403, "FORBIDDEN",
		    "Invalid or expired download link");
	}
	rc = db_image_get(c->w->db, c->req->arena, id, 0, &img);
	if (rc != 0)
		return rc;
	if (strcmp(img.status, "ready") != 0)
		return PI_ERR_NOT_FOUND;
	if (uid != NULL) {
		rc = handlers_redeem_check(c, uid, ACL_VIEW, &img, "file",
		    handlers_variants[v]);
		if (rc != 0)
			return rc;
	}
	return serve_audited(c, &img, (enum ingest_variant)v, "file");
}

/* --- DELETE /:id ----------------------------------------------------------- */

int
h_delete(struct ctx *c)
{
	char id[37];
	struct image img;
	struct audit ev;
	int rc;

	if (handlers_path_id(c, id) != 0)
		return 0;
	rc = handlers_load_image(c, id, ACL_DELETE, "delete", &img);
	if (rc != 0)
		return rc;
	ev = handlers_audit_for(c, "delete", img.id, img.case_id, NULL);
	rc = db_image_delete(c->w->db, img.id, c->who.user_id, &ev);
	if (rc != 0)
		return rc;
	{
		json_object *o = json_object_new_object();

		if (o == NULL)
			return PI_ERR_NOMEM;
		json_object_object_add(o, "message",
		    json_object_new_string("Image deleted successfully"));
		return http_json(c->req, 200, o);
	}
}
