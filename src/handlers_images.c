/* handlers_images.c — the endpoints of docs/api.md.
 *
 * Each handler reads top to bottom as its endpoint's description: validate
 * → authorize (acl_allowed) → act (db_, storage_, img_) → respond. The steps
 * several endpoints share are functions here, not copies: authenticate a
 * request, load an image and check access (writing the denied audit row),
 * receive an original into a temp file while hashing it, turn an original
 * into the three stored objects, serve an object's bytes.
 *
 * Consistency: storage first, database second; when the database write
 * fails the objects just stored are deleted again, so a ready row always has
 * its objects and a refused upload leaves nothing behind. Temp files are
 * removed on every path.
 */
#include "handlers.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common.h"
#include "authcache.h"
#include "config.h"
#include "db.h"
#include "imaging.h"
#include "listcache.h"
#include "log.h"
#include "master.h"
#include "multipart.h"
#include "storage.h"
#include "urltoken.h"
#include "validate.h"

/* Seconds a client refused by max_uploads_per_user is told to wait: about
 * what decoding a large upload takes. */
#define INGEST_RETRY_AFTER "5"

#define API_PREFIX "/api/v1/images/"
#define JSON_BODY_MAX (64 * 1024)
#define FIELD_MAX 8192            /* bytes of one text form field */
#define DESCRIPTION_MAX 2000      /* characters */
/* What a multipart upload may carry besides its image: part headers, text
 * fields, boundaries. The shipped web server limits leave the same room
 * (client_max_body_size 52m, LimitRequestBody 52 MiB for the default 50 MiB). */
#define UPLOAD_OVERHEAD (2LL * 1024 * 1024)
static const char *const eye_sides[] = { "left", "right", "both", "unknown", NULL };
static const char *const image_types[] = { "slit_lamp", "fundus", "oct", "other", NULL };
static const char *const variants[] = { "original", "display", "thumbnail", NULL };
enum variant { V_ORIGINAL = 0, V_DISPLAY, V_THUMBNAIL };

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

static const char *
fmt_time(struct arena *a, int64_t t)
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

/* The image resource of docs/api.md. */
static json_object *
image_json(struct arena *a, const struct image *img)
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
	    json_object_new_string(fmt_time(a, img->captured_at)) : NULL);
	json_object_object_add(o, "description", jstr_or_null(img->description));
	json_object_object_add(o, "order", json_object_new_int64(img->order));
	json_object_object_add(o, "fileSize", jint_or_null(img->file_size));
	json_object_object_add(o, "mimeType", jstr_or_null(img->mime_type));
	json_object_object_add(o, "width", jint_or_null(img->width));
	json_object_object_add(o, "height", jint_or_null(img->height));
	json_object_object_add(o, "sha256", jstr_or_null(img->sha256));
	json_object_object_add(o, "status", json_object_new_string(img->status));
	json_object_object_add(o, "uploadedBy", jstr_or_null(img->uploaded_by));
	json_object_object_add(o, "createdAt",
	    json_object_new_string(fmt_time(a, img->created_at)));
	json_object_object_add(o, "updatedAt",
	    json_object_new_string(fmt_time(a, img->updated_at)));
	return o;
}

/* {"data": data[, "message": message]} */
static json_object *
envelope(json_object *data, const char *message)
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
static void
audit(struct ctx *c, const char *action, const char *image_id,
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

static struct audit
audit_for(struct ctx *c, const char *action, const char *image_id,
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

/* --- authentication and access ---------------------------------------- */

/* What handlers_authenticate() read with the user (see handlers.h). */
struct prefetch {
	enum prefetch_kind kind;
	char id[37];               /* canonical :id */
	int found;
	struct image img;          /* PF_IMAGE */
	char patient[64];          /* PF_CASE */
	long long version;         /* PF_CASE: the case's list version, -1 none */
};

/* Copies of rows may be used for this request (authcache.h): drops them
 * all when anything changed since they were made. Returns 1 with *now_ms. */
static int
copies_usable(struct worker_ctx *w, int64_t *now_ms)
{
	unsigned long epoch;

	if (w->rows == NULL || !db_copies_valid(w->db, &epoch))
		return 0;
	if (epoch != w->rows_epoch) {
		authcache_clear(w->rows);
		w->rows_epoch = epoch;
	}
	*now_ms = db_now_ms();
	return 1;
}

/* The user alone, from a copy or the database. */
static int
read_user_only(struct ctx *c, int copies, int64_t now, struct db_user *user)
{
	struct worker_ctx *w = c->w;
	int64_t ttl = w->cfg->auth_cache_ttl * 1000;
	int rc;

	if (copies && authcache_user_get(w->rows, c->who.user_id, now, ttl, user))
		return user->found ? 0 : PI_ERR_NOT_FOUND;
	memset(user, 0, sizeof(*user));
	rc = db_user_get(w->db, c->who.user_id, user);
	if (copies && rc != PI_ERR_DB)
		authcache_user_put(w->rows, c->who.user_id, now, user);
	return rc;
}

/* The user, and with prefetch the route's image or case, into *user and
 * c->pf: from copies when there are (authcache.h), else in one statement.
 * 0, PI_ERR_NOT_FOUND (no such user) or PI_ERR_DB. */
static int
read_user(struct ctx *c, enum prefetch_kind prefetch, struct db_user *user)
{
	struct worker_ctx *w = c->w;
	int64_t now = 0, ttl = w->cfg->auth_cache_ttl * 1000;
	int copies = copies_usable(w, &now);
	struct prefetch *pf;
	char id[37];
	int rc;

	if (prefetch == PF_NONE || c->id == NULL || !val_uuid(c->id, id) ||
	    (pf = arena_alloc(c->req->arena, sizeof(*pf))) == NULL)
		return read_user_only(c, copies, now, user);
	pf->kind = prefetch;
	memcpy(pf->id, id, sizeof(pf->id));
	if (copies && authcache_user_get(w->rows, c->who.user_id, now, ttl, user) &&
	    (prefetch == PF_IMAGE ?
	    authcache_image_get(w->rows, id, now, ttl, c->req->arena, &pf->found,
	    &pf->img) :
	    authcache_case_get(w->rows, id, now, ttl, &pf->found, pf->patient,
	    sizeof(pf->patient), &pf->version))) {
		c->pf = pf;
		return user->found ? 0 : PI_ERR_NOT_FOUND;
	}
	if (prefetch == PF_IMAGE)
		rc = db_auth_image(w->db, c->req->arena, c->who.user_id, id,
		    user, &pf->img, &pf->found);
	else
		rc = db_auth_case(w->db, c->who.user_id, id, user,
		    pf->patient, sizeof(pf->patient), &pf->found, &pf->version);
	if (rc != 0)
		return rc;
	if (copies) {
		authcache_user_put(w->rows, c->who.user_id, now, user);
		if (prefetch == PF_IMAGE)
			authcache_image_put(w->rows, id, now, pf->found, &pf->img);
		else
			authcache_case_put(w->rows, id, now, pf->found, pf->patient,
			    pf->version);
	}
	c->pf = pf;
	return user->found ? 0 : PI_ERR_NOT_FOUND;
}

/* s, or dflt when s is NULL (for log lines). */
static const char *
str_or(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

/* A request authenticated by the polacare_token cookie: 1 if it is safe
 * (GET, HEAD, OPTIONS) or comes from an allowed origin (auth_origin_ok:
 * Origin, else Referer, against allowed_origins, or when that is empty the
 * request's own origin). A browser sends the cookie along with a form or a
 * fetch from any site, never an Authorization header, so bearer requests
 * need no such check. The request's own scheme is what the web server says
 * (HTTPS, REQUEST_SCHEME), never X-Forwarded-Proto, which a client can send:
 * behind a TLS-terminating proxy, list the public origin in
 * allowed_origins. */
static int
csrf_ok(struct ctx *c)
{
	const char *m = c->req->method, *https = http_param(c->req, "HTTPS"),
	    *scheme = http_param(c->req, "REQUEST_SCHEME");

	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
	    strcmp(m, "OPTIONS") == 0)
		return 1;
	return auth_origin_ok(c->w->cfg->allowed_origins,
	    http_param(c->req, "HTTP_ORIGIN"), http_param(c->req, "HTTP_REFERER"),
	    (https != NULL && https[0] != '\0' && strcasecmp(https, "off") != 0) ||
	    (scheme != NULL && strcasecmp(scheme, "https") == 0),
	    http_param(c->req, "HTTP_HOST"), http_param(c->req, "SERVER_PORT"));
}

int
handlers_authenticate(struct ctx *c, enum prefetch_kind prefetch)
{
	char token[8200];
	struct auth_claims claims;
	struct db_user user;
	const char *t;
	int64_t now;
	int rc;

	t = auth_token_from_headers(http_param(c->req, "HTTP_AUTHORIZATION"),
	    http_param(c->req, "HTTP_COOKIE"), token, sizeof(token));
	if (t == NULL) {
		const char *h = http_param(c->req, "HTTP_AUTHORIZATION");

		/* A header that is there but unusable is an invalid token. */
		if (h != NULL && h[0] != '\0') {
			http_error(c->req, 401, "INVALID_TOKEN", "Invalid token");
			return 1;
		}
		http_error(c->req, 401, "AUTH_REQUIRED", "Authentication required");
		return 1;
	}
	now = (int64_t)time(NULL);
	if (tokencache_get(c->w->tokens, t, now, &claims)) {
		rc = AUTH_OK;
	} else {
		rc = auth_verify(&c->w->auth, t, now, &claims);
		if (rc == AUTH_OK)
			tokencache_put(c->w->tokens, t, &claims);
	}
	explicit_bzero(token, sizeof(token));
	if (rc == AUTH_EXPIRED) {
		http_error(c->req, 401, "TOKEN_EXPIRED", "Token expired");
		return 1;
	}
	if (rc != AUTH_OK) {
		http_error(c->req, 401, "INVALID_TOKEN", "Invalid token");
		return 1;
	}
	if (!auth_is_bearer(http_param(c->req, "HTTP_AUTHORIZATION")) &&
	    !csrf_ok(c)) {
		log_debug("csrf: refused %s %s: Origin \"%.200s\" Referer "
		    "\"%.200s\" Host \"%.200s\" rid=%s", c->req->method, c->req->path,
		    str_or(http_param(c->req, "HTTP_ORIGIN"), "-"),
		    str_or(http_param(c->req, "HTTP_REFERER"), "-"),
		    str_or(http_param(c->req, "HTTP_HOST"), "-"),
		    c->req->request_id);
		http_error(c->req, 403, "CSRF_REJECTED",
		    "Cross-site request refused: the Origin is not allowed");
		return 1;
	}
	memcpy(c->who.user_id, claims.user_id, sizeof(c->who.user_id));
	if (c->w->cfg->jwt_trust_role_claim && claims.role[0] != '\0') {
		c->who.role = acl_role_parse(claims.role);
	} else {
		rc = read_user(c, prefetch, &user);
		if (rc == PI_ERR_DB) {
			http_error_for(c->req, rc);
			c->who.user_id[0] = '\0';
			return 1;
		}
		c->who.role = rc == 0 && user.is_active ?
		    acl_role_parse(user.role) : ROLE_NONE;
	}
	if (c->who.role == ROLE_NONE) {
		c->who.user_id[0] = '\0';
		http_error(c->req, 401, "INVALID_TOKEN", "Invalid token");
		return 1;
	}
	return 0;
}

/* A signed URL of this service (download link, local upload URL) being
 * redeemed: the user it was issued to is checked again now, as a bearer
 * token would be on every request — the row read as handlers_authenticate()
 * reads it (copies dropped on a change, auth_cache_ttl at most), the role
 * from that row. Returns 0 with c->who set to the issuer; 1 after
 * answering 401 when the issuer is no longer an active user (removed,
 * deactivated, no known role); PI_ERR_FORBIDDEN after writing the denied
 * audit row when the issuer may no longer do action to the image's case (a
 * patient whose case went to another patient); or PI_ERR_DB. */
static int
redeem_check(struct ctx *c, const char *issuer, enum acl_action action,
    const struct image *img, const char *audit_action, const char *variant)
{
	struct db_user user;
	int64_t now = 0;
	int copies, rc;

	if (!val_uuid(issuer, c->who.user_id)) {
		c->who.user_id[0] = '\0';
		http_error(c->req, 401, "INVALID_TOKEN", "Invalid token");
		return 1;
	}
	copies = copies_usable(c->w, &now);
	rc = read_user_only(c, copies, now, &user);
	if (rc == PI_ERR_DB) {
		c->who.user_id[0] = '\0';
		return rc;
	}
	c->who.role = rc == 0 && user.is_active ? acl_role_parse(user.role) :
	    ROLE_NONE;
	if (c->who.role == ROLE_NONE) {
		c->who.user_id[0] = '\0';
		http_error(c->req, 401, "INVALID_TOKEN", "Invalid token");
		return 1;
	}
	if (!acl_allowed(&c->who, action, img->case_patient_id)) {
		audit(c, audit_action, img->id, img->case_id, variant, "denied");
		return PI_ERR_FORBIDDEN;
	}
	return 0;
}

/* Validates the :id segment. Answers 400 and returns 1 when it is not a
 * UUID; else writes the canonical form to out. */
static int
path_id(struct ctx *c, char out[37])
{
	if (c->id == NULL || !val_uuid(c->id, out)) {
		http_validation_error(c->req, http_detail_add(NULL, "id",
		    "must be a UUID"));
		return 1;
	}
	return 0;
}

/* Loads image id and checks that c->who may do action to it. Returns 0, or
 * a pi_err to answer with (the denied audit row is written here). */
static int
load_image(struct ctx *c, const char *id, enum acl_action action,
    const char *audit_action, struct image *img)
{
	int rc;

	if (c->pf != NULL && c->pf->kind == PF_IMAGE &&
	    strcmp(c->pf->id, id) == 0) {
		if (!c->pf->found)
			return PI_ERR_NOT_FOUND;
		*img = c->pf->img;
	} else if ((rc = db_image_get(c->w->db, c->req->arena, id, 0, img)) != 0) {
		return rc;
	}
	if (!acl_allowed(&c->who, action, img->case_patient_id)) {
		audit(c, audit_action, img->id, img->case_id, NULL, "denied");
		return PI_ERR_FORBIDDEN;
	}
	return 0;
}

/* The same for a case. */
static int
check_case(struct ctx *c, const char *case_id, enum acl_action action,
    const char *audit_action)
{
	char patient[64];
	int rc;

	if (c->pf != NULL && c->pf->kind == PF_CASE &&
	    strcmp(c->pf->id, case_id) == 0) {
		if (!c->pf->found)
			return PI_ERR_NOT_FOUND;
		(void)snprintf(patient, sizeof(patient), "%s", c->pf->patient);
	} else if ((rc = db_case_patient(c->w->db, case_id, patient,
	    sizeof(patient))) != 0) {
		return rc;
	}
	if (!acl_allowed(&c->who, action, patient)) {
		audit(c, audit_action, NULL, case_id, NULL, "denied");
		return PI_ERR_FORBIDDEN;
	}
	return 0;
}

/* --- receiving bytes ---------------------------------------------------- */

/* A temp file being filled with an original, hashed and measured on the
 * way, refusing to grow past max bytes. Bytes are gathered in buf first:
 * the multipart parser hands over binary data in pieces that end at every
 * CR, about one in 256 bytes, and a write(2) and a hash update each would
 * be some 12,000 system calls for a 3 MB photograph. */
#define SINK_BUF (16 * 1024)
struct sink {
	int fd;
	char path[1100];
	EVP_MD_CTX *md;
	long long size, max;      /* size: bytes accepted, buffered included */
	unsigned char head[16];
	size_t headlen;
	char *buf;                /* SINK_BUF bytes in the request arena */
	size_t buffered;
	int err;                  /* first error, sticky */
};

static int
sink_open(struct ctx *c, struct sink *s)
{
	memset(s, 0, sizeof(*s));
	s->max = c->w->cfg->max_upload_bytes;
	s->md = EVP_MD_CTX_new();
	if (s->md == NULL || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(s->md);
		s->md = NULL;
		s->fd = -1;
		return PI_ERR_INTERNAL;
	}
	s->fd = storage_tmpfile(c->w->storage, s->path, sizeof(s->path));
	if (s->fd < 0) {
		log_error("upload: cannot create a temp file: %s", strerror(errno));
		return PI_ERR_STORAGE;
	}
	if ((s->buf = arena_alloc(c->req->arena, SINK_BUF)) == NULL)
		return PI_ERR_NOMEM;
	return 0;
}

/* Hashes and writes len bytes to the file. */
static int
sink_put(struct sink *s, const char *data, size_t len)
{
	if (EVP_DigestUpdate(s->md, data, len) != 1) {
		s->err = PI_ERR_INTERNAL;
		return s->err;
	}
	while (len > 0) {
		ssize_t n = write(s->fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("upload: temp file write failed: %s", strerror(errno));
			s->err = errno == ENOSPC || errno == EDQUOT ?
			    PI_ERR_STORAGE_FULL : PI_ERR_STORAGE;
			return s->err;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Hashes and writes what buf holds. */
static int
sink_flush(struct sink *s)
{
	int rc = s->buffered > 0 ? sink_put(s, s->buf, s->buffered) : 0;

	s->buffered = 0;
	return rc;
}

static int
sink_write(struct sink *s, const char *data, size_t len)
{
	if (s->err != 0)
		return s->err;
	if ((long long)len > s->max - s->size) {
		s->err = PI_ERR_TOO_LARGE;
		return s->err;
	}
	if (s->headlen < sizeof(s->head)) {
		size_t k = sizeof(s->head) - s->headlen;

		if (k > len)
			k = len;
		memcpy(s->head + s->headlen, data, k);
		s->headlen += k;
	}
	s->size += (long long)len;
	if (len > SINK_BUF - s->buffered) {
		if (sink_flush(s) != 0)
			return s->err;
		if (len >= SINK_BUF)
			return sink_put(s, data, len);
	}
	memcpy(s->buf + s->buffered, data, len);
	s->buffered += len;
	return 0;
}

/* Finishes the hash into hexout (65 bytes) and closes the file. */
static int
sink_finish(struct sink *s, char hexout[65])
{
	unsigned char digest[32];
	unsigned int dlen = 0;

	if (s->err != 0 || sink_flush(s) != 0)
		return s->err;
	if (EVP_DigestFinal_ex(s->md, digest, &dlen) != 1 || dlen != 32)
		return PI_ERR_INTERNAL;
	pi_hex(digest, 32, hexout);
	if (close(s->fd) != 0) {
		s->fd = -1;
		return PI_ERR_STORAGE;
	}
	s->fd = -1;
	return 0;
}

/* Closes and removes whatever is left. */
static void
sink_discard(struct sink *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->path[0] != '\0')
		(void)unlink(s->path);
	s->path[0] = '\0';
	EVP_MD_CTX_free(s->md);
	s->md = NULL;
}

/* SHA-256 and size of a local file. */
static int
file_sha256(const char *path, char hexout[65], long long *size)
{
	unsigned char buf[65536], digest[32];
	unsigned int dlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int fd = -1, rc = PI_ERR_IO;
	ssize_t n;

	*size = 0;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			goto out;
		*size += n;
	}
	if (n < 0 || EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32)
		goto out;
	pi_hex(digest, 32, hexout);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(md);
	return rc;
}

/* --- turning an original into stored objects ---------------------------- */

static const char *
object_name(enum variant v, const char *mime)
{
	int png = mime != NULL && strcmp(mime, "image/png") == 0;

	switch (v) {
	case V_ORIGINAL: return "original";
	case V_DISPLAY: return png ? "display.png" : "display.jpg";
	case V_THUMBNAIL: default: return png ? "thumb.png" : "thumb.jpg";
	}
}

static const char *
object_key(struct arena *a, const struct image *img, enum variant v)
{
	const char *mime = v == V_DISPLAY ? img->display_mime :
	    v == V_THUMBNAIL ? img->thumb_mime : img->mime_type;

	return arena_printf(a, "%s/%s", img->storage_key, object_name(v, mime));
}

static void
delete_objects(struct ctx *c, const struct image *img, int n)
{
	for (int v = 0; v < n; v++) {
		const char *key = object_key(c->req->arena, img, (enum variant)v);

		if (key != NULL && storage_del(c->w->storage, key) != 0)
			log_error("storage: could not remove %s after a failed "
			    "upload; sweep will", key);
	}
}

/* Probes the original at orig_path (sniffed type t), makes the display copy
 * and the thumbnail, and stores the objects: the original too when
 * store_original (it is consumed then). Fills img's measurements. On
 * failure nothing of it remains in storage. */
static int
ingest(struct ctx *c, struct image *img, const char *orig_path,
    enum img_type t, int store_original)
{
	struct img_info info;
	struct img_outputs out;
	char dpath[1100] = "", tpath[1100] = "";
	int fd, rc, stored = 0;

	rc = img_probe(orig_path, t, (uint64_t)c->w->cfg->max_pixels, &info);
	if (rc != 0)
		goto out;
	img->width = (long)info.width;
	img->height = (long)info.height;
	if (img->captured_at < 0 && info.captured_at >= 0)
		img->captured_at = info.captured_at;
	(void)snprintf(img->mime_type, sizeof(img->mime_type), "%s", img_mime(t));

	rc = PI_ERR_STORAGE;
	if ((fd = storage_tmpfile(c->w->storage, dpath, sizeof(dpath))) < 0)
		goto out;
	close(fd);
	if ((fd = storage_tmpfile(c->w->storage, tpath, sizeof(tpath))) < 0)
		goto out;
	close(fd);
	memset(&out, 0, sizeof(out));
	out.display_path = dpath;
	out.thumb_path = tpath;
	rc = img_derive(orig_path, &info, &out);
	if (rc != 0)
		goto out;
	(void)snprintf(img->display_mime, sizeof(img->display_mime), "%s",
	    img_mime(out.display_type));
	(void)snprintf(img->thumb_mime, sizeof(img->thumb_mime), "%s",
	    img_mime(out.thumb_type));
	if ((rc = file_sha256(dpath, img->display_sha256, &img->display_size)) != 0 ||
	    (rc = file_sha256(tpath, img->thumb_sha256, &img->thumb_size)) != 0) {
		rc = PI_ERR_STORAGE;
		goto out;
	}
	if (store_original) {
		rc = storage_put_file(c->w->storage,
		    object_key(c->req->arena, img, V_ORIGINAL), orig_path, img->mime_type);
		if (rc != 0)
			goto out;
	}
	stored = 1;
	rc = storage_put_file(c->w->storage,
	    object_key(c->req->arena, img, V_DISPLAY), dpath, img->display_mime);
	if (rc != 0)
		goto out;
	stored = 2;
	rc = storage_put_file(c->w->storage,
	    object_key(c->req->arena, img, V_THUMBNAIL), tpath, img->thumb_mime);
	if (rc != 0)
		goto out;
	stored = 3;
out:
	if (rc != 0 && stored > 0) {
		/* Keep the original when it was stored before this call. */
		if (!store_original) {
			for (int v = 1; v < stored; v++)
				(void)storage_del(c->w->storage,
				    object_key(c->req->arena, img, (enum variant)v));
		} else {
			delete_objects(c, img, stored);
		}
	}
	/* Every file ingest writes lives in storage's temp directory: a write
	 * that fails there (ENOSPC while ImageMagick writes a copy) is a
	 * storage failure, not an internal error. */
	if (rc == PI_ERR_EXISTS || rc == PI_ERR_NOT_FOUND || rc == PI_ERR_INVALID ||
	    rc == PI_ERR_IO)
		rc = PI_ERR_STORAGE;
	if (dpath[0] != '\0')
		(void)unlink(dpath);
	if (tpath[0] != '\0')
		(void)unlink(tpath);
	return rc;
}

/* --- validation of the image fields ------------------------------------ */

struct image_fields {
	const char *case_id_raw, *eye_side, *image_type, *description, *captured_at;
	int has_case_id;
};

/* Validates the fields shared by both upload ways into img; adds
 * details for every bad one. */
static json_object *
validate_image_fields(const struct image_fields *f, struct image *img,
    json_object *details)
{
	if (f->case_id_raw == NULL || f->case_id_raw[0] == '\0')
		details = http_detail_add(details, "caseId", "is required");
	else if (!val_uuid(f->case_id_raw, img->case_id))
		details = http_detail_add(details, "caseId", "must be a UUID");
	if (f->eye_side != NULL && val_enum(f->eye_side, eye_sides) < 0)
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
	if (f->captured_at != NULL && f->captured_at[0] != '\0' &&
	    !val_rfc3339(f->captured_at, &img->captured_at)) {
		img->captured_at = -1;
		details = http_detail_add(details, "capturedAt",
		    "must be an RFC 3339 date-time");
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
static void
image_new(struct ctx *c, struct image *img)
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

/* --- POST /upload -------------------------------------------------------- */

enum { FLD_CASE, FLD_EYE, FLD_TYPE, FLD_DESC, FLD_CAPTURED, FLD__N };
static const char *const form_fields[FLD__N] = {
	"caseId", "eyeSide", "imageType", "description", "capturedAt",
};

struct form {
	struct ctx *c;
	struct sink sink;
	int in_image, have_image, second_image;
	int field;                     /* FLD_* being read, or -1 */
	char *val[FLD__N];
	size_t len[FLD__N];
	int too_long;
};

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
		return sink_write(&f->sink, data, len) != 0;
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

/* Reads the multipart body into f. Returns 0 or a pi_err; answers 400 for
 * syntax problems itself (returning 1). */
static int
read_form(struct ctx *c, struct form *f, const char *boundary)
{
	static const struct mp_callbacks cb = { form_begin, form_data, form_end };
	struct mp_parser *mp = mp_new(boundary, &cb, f);
	char *buf = NULL;
	ssize_t n;
	int mrc = MP_OK, rc = 0;

	if (mp == NULL)
		return PI_ERR_NOMEM;
	buf = malloc(65536);
	if (buf == NULL) {
		mp_free(mp);
		return PI_ERR_NOMEM;
	}
	while ((n = http_body_read(c->req, buf, 65536)) > 0) {
		mrc = mp_feed(mp, buf, (size_t)n);
		if (mrc != MP_OK)
			break;
	}
	if (n < 0) {
		rc = PI_ERR_IO;
		goto out;
	}
	if (mrc == MP_OK)
		mrc = mp_finish(mp);
	if (mrc == MP_OK)
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
	free(buf);
	mp_free(mp);
	return rc;
}

/* Records a ready image (row + audit) after its objects were stored; on
 * failure removes the objects. */
static int
record_ready(struct ctx *c, struct image *img, const char *action)
{
	struct audit ev = audit_for(c, action, img->id, img->case_id, NULL);
	int rc;

	(void)snprintf(img->status, sizeof(img->status), "ready");
	rc = db_image_insert(c->w->db, img, &ev);
	if (rc != 0) {
		delete_objects(c, img, 3);
		return rc == PI_ERR_NOT_FOUND ? PI_ERR_NOT_FOUND : PI_ERR_DB;
	}
	return 0;
}

/*
 * The per-user upload limit, at the start of each handler that decodes an
 * upload (after authentication): max_uploads_per_user of one user's
 * uploads may be in flight on this host (counted in the master's
 * scoreboard, worker_ingest_claim; the claim ends after the request).
 * Returns 0 to go on, or 1 after answering 429 TOO_MANY_UPLOADS with
 * Retry-After.
 */
static int
ingest_admit(struct ctx *c, const char *user)
{
	if (worker_ingest_claim(user,
	    (int)c->w->cfg->max_uploads_per_user) == 0)
		return 0;
	log_info("request %s: user %s has %lld uploads in flight; refused",
	    c->req->request_id, user, c->w->cfg->max_uploads_per_user);
	(void)http_error_hdr(c->req, 429, "TOO_MANY_UPLOADS",
	    "Too many uploads in progress for this user; retry later",
	    "Retry-After", INGEST_RETRY_AFTER);
	return 1;
}

int
h_upload(struct ctx *c)
{
	char boundary[MP_MAX_BOUNDARY + 1];
	struct form f;
	struct image img;
	struct image_fields fields;
	json_object *details = NULL;
	enum img_type t;
	int rc;

	if (ingest_admit(c, c->who.user_id))
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
	if (c->req->content_length > c->w->cfg->max_upload_bytes + UPLOAD_OVERHEAD)
		return PI_ERR_TOO_LARGE;
	if (mp_boundary(c->req->content_type, boundary, sizeof(boundary)) != 0) {
		http_validation_error(c->req, http_detail_add(NULL, "body",
		    "multipart boundary missing or invalid"));
		return 0;
	}
	rc = sink_open(c, &f.sink);
	if (rc != 0)
		goto out;
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
	details = validate_image_fields(&fields, &img, NULL);
	if (!f.have_image)
		details = http_detail_add(details, "image", "is required");
	if (details != NULL) {
		http_validation_error(c->req, details);
		rc = 0;
		goto out;
	}
	img.file_size = f.sink.size;
	rc = sink_finish(&f.sink, img.sha256);
	if (rc != 0)
		goto out;
	t = img_sniff(f.sink.head, f.sink.headlen);
	if (t == IMG_UNKNOWN) {
		rc = PI_ERR_UNSUPPORTED;
		goto out;
	}
	rc = check_case(c, img.case_id, ACL_UPLOAD, "upload");
	if (rc != 0)
		goto out;
	image_new(c, &img);
	img.file_size = f.sink.size;
	rc = ingest(c, &img, f.sink.path, t, 1);
	if (rc != 0)
		goto out;
	rc = record_ready(c, &img, "upload");
	if (rc != 0)
		goto out;
	rc = http_json(c->req, 201, envelope(image_json(c->req->arena, &img),
	    "Image uploaded successfully"));
out:
	sink_discard(&f.sink);
	/* A refused or failed upload is on the record too (a denied one was
	 * recorded by check_case). */
	if (rc < 0 && rc != PI_ERR_FORBIDDEN)
		audit(c, "upload", img.id[0] ? img.id : NULL,
		    img.case_id[0] ? img.case_id : NULL, NULL, "error");
	return rc;
}

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
	struct image_fields fields;
	json_object *details = NULL;
	int bad[9] = { 0 };

	memset(img, 0, sizeof(*img));
	f->file_size = -1;
	f->expires_in = 900;
	f->file_name = jget_str(body, "fileName", &bad[0]);
	f->content_type = jget_str(body, "contentType", &bad[1]);
	fields.case_id_raw = jget_str(body, "caseId", &bad[2]);
	fields.eye_side = jget_str(body, "eyeSide", &bad[3]);
	fields.image_type = jget_str(body, "imageType", &bad[4]);
	fields.description = jget_str(body, "description", &bad[5]);
	fields.captured_at = jget_str(body, "capturedAt", &bad[6]);
	(void)jget_int(body, "fileSize", &f->file_size, &bad[7]);
	f->has_expires = jget_int(body, "expiresIn", &f->expires_in, &bad[8]);

	if (bad[0] || f->file_name == NULL || f->file_name[0] == '\0' ||
	    !val_text(f->file_name, strlen(f->file_name), 255))
		details = http_detail_add(details, "fileName",
		    "is required: text of 1 to 255 characters");
	if (bad[1] || f->content_type == NULL || f->content_type[0] == '\0')
		details = http_detail_add(details, "contentType", "is required");
	if (bad[2] || bad[3] || bad[4] || bad[5] || bad[6])
		details = http_detail_add(details, "body", "fields must be strings");
	details = validate_image_fields(&fields, img, details);
	if (bad[7] || (f->file_size < 0 && f->file_size != -1))
		details = http_detail_add(details, "fileSize",
		    "must be a non-negative integer");
	if (bad[8] || (f->has_expires && (f->expires_in < 1 ||
	    f->expires_in > max_ttl)))
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
	int rc, has_expires;
	int64_t now = (int64_t)time(NULL);
	char token[128];
	const char *url;

	body = read_json_body(c);
	if (body == NULL)
		return 0;
	details = handlers_upload_url_fields(body, c->w->cfg->max_upload_url_ttl,
	    &f, &img);
	if (details != NULL) {
		json_object_put(body);
		return http_validation_error(c->req, details);
	}
	content_type = f.content_type;
	file_size = f.file_size;
	expires_in = f.expires_in;
	has_expires = f.has_expires;
	if (img_type_from_mime(content_type) == IMG_UNKNOWN) {
		rc = PI_ERR_UNSUPPORTED;
		goto out;
	}
	if (file_size > c->w->cfg->max_upload_bytes) {
		rc = PI_ERR_TOO_LARGE;
		goto out;
	}
	if (!has_expires && expires_in > c->w->cfg->max_upload_url_ttl)
		expires_in = c->w->cfg->max_upload_url_ttl;
	rc = check_case(c, img.case_id, ACL_UPLOAD, "upload_url");
	if (rc != 0)
		goto out;
	image_new(c, &img);
	(void)snprintf(img.status, sizeof(img.status), "pending");
	/* The declared type is kept until the bytes are measured. */
	(void)snprintf(img.mime_type, sizeof(img.mime_type), "%s",
	    img_mime(img_type_from_mime(content_type)));
	img.upload_expires_at = now + expires_in;
	if (c->w->storage->ops->presign != NULL) {
		/* S3 / Supabase: the client sends the bytes to the store. */
		char *u = c->w->storage->ops->presign(c->w->storage, "PUT",
		    object_key(c->req->arena, &img, V_ORIGINAL), img.mime_type, expires_in);

		url = u != NULL ? arena_strdup(c->req->arena, u) : NULL;
		free(u);
		if (url == NULL) {
			rc = PI_ERR_STORAGE;
			goto out;
		}
	} else {
		if (urltoken_upload_token_by((const unsigned char *)c->w->cfg->url_signing_key,
		    strlen(c->w->cfg->url_signing_key), img.id, img.upload_expires_at,
		    c->who.user_id, token, sizeof(token)) != 0) {
			rc = PI_ERR_INTERNAL;
			goto out;
		}
		url = public_url(c, arena_printf(c->req->arena,
		    API_PREFIX "%s/upload?token=%s", img.id, token));
	}
	if (url == NULL) {
		rc = PI_ERR_NOMEM;
		goto out;
	}
	/* The row only once its URL exists: a failure above leaves nothing. */
	{
		struct audit ev = audit_for(c, "upload_url", img.id, img.case_id, NULL);

		rc = db_image_insert(c->w->db, &img, &ev);
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
	    fmt_time(c->req->arena, img.upload_expires_at)));
	rc = http_json(c->req, 200, envelope(data, "Upload URL generated successfully"));
out:
	json_object_put(body);
	return rc;
}

/* --- PUT /:id/upload?token= (local direct upload) ----------------------- */

int
h_put_upload(struct ctx *c)
{
	char id[37], digest[65], issuer[URLTOKEN_ISSUER_LEN + 1] = "";
	const char *token = http_query(c->req, "token");
	struct image img;
	struct sink sink;
	enum img_type t;
	char buf[65536];
	ssize_t n;
	int rc;

	sink.fd = -1;
	sink.path[0] = '\0';
	sink.md = NULL;
	if (path_id(c, id) != 0)
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
	rc = redeem_check(c, img.uploaded_by, ACL_UPLOAD, &img, "complete", NULL);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	if (strcasecmp(c->req->content_type, img.mime_type) != 0)
		return http_error(c->req, 403, "FORBIDDEN",
		    "Content-Type differs from the one the upload URL was issued for");
	if (c->req->content_length > c->w->cfg->max_upload_bytes)
		return PI_ERR_TOO_LARGE;
	/* The upload URL was issued to this user (c->who, redeem_check): the
	 * audit row is theirs, and so is the upload in the per-user count. */
	if (ingest_admit(c, c->who.user_id))
		return 0;
	rc = sink_open(c, &sink);
	if (rc != 0)
		goto out;
	while ((n = http_body_read(c->req, buf, sizeof(buf))) > 0)
		if ((rc = sink_write(&sink, buf, (size_t)n)) != 0)
			goto out;
	if (n < 0) {
		rc = PI_ERR_IO;
		goto out;
	}
	img.file_size = sink.size;
	rc = sink_finish(&sink, digest);
	if (rc != 0)
		goto out;
	memcpy(img.sha256, digest, sizeof(img.sha256));
	t = img_sniff(sink.head, sink.headlen);
	if (t == IMG_UNKNOWN || strcmp(img_mime(t), img.mime_type) != 0) {
		rc = PI_ERR_UNSUPPORTED;
		goto out;
	}
	rc = ingest(c, &img, sink.path, t, 1);
	if (rc != 0)
		goto out;
	{
		struct audit ev = audit_for(c, "complete", img.id, img.case_id, NULL);

		rc = db_image_mark_ready(c->w->db, &img, &ev);
	}
	if (rc != 0) {
		delete_objects(c, &img, 3);
		goto out;
	}
	rc = http_json(c->req, 201, envelope(image_json(c->req->arena, &img), NULL));
out:
	sink_discard(&sink);
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
	unsigned char head[16];
	enum img_type t;
	int fd = -1, rc;
	ssize_t got;

	if (path_id(c, id) != 0)
		return 0;
	rc = load_image(c, id, ACL_UPLOAD, "complete", &img);
	if (rc != 0)
		return rc;
	if (strcmp(img.status, "ready") == 0) {
		audit(c, "complete", img.id, img.case_id, NULL, "ok");
		return http_json(c->req, 200, envelope(image_json(c->req->arena, &img), NULL));
	}
	if (ingest_admit(c, c->who.user_id))
		return 0;
	/* Pending: the bytes must be in storage under the original's key. */
	rc = storage_stat(c->w->storage, object_key(c->req->arena, &img, V_ORIGINAL), &st);
	if (rc == PI_ERR_NOT_FOUND)
		return http_error(c->req, 409, "CONFLICT",
		    "The upload has not been received");
	if (rc != 0)
		return rc;
	if (st.size > c->w->cfg->max_upload_bytes) {
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
	rc = storage_fetch(c->w->storage, object_key(c->req->arena, &img, V_ORIGINAL), tmp);
	if (rc != 0)
		goto out;
	rc = file_sha256(tmp, img.sha256, &img.file_size);
	if (rc != 0)
		goto out;
	fd = open(tmp, O_RDONLY | O_CLOEXEC);
	got = fd >= 0 ? read(fd, head, sizeof(head)) : -1;
	t = got > 0 ? img_sniff(head, (size_t)got) : IMG_UNKNOWN;
	if (t == IMG_UNKNOWN || strcmp(img_mime(t), img.mime_type) != 0) {
		rc = PI_ERR_UNSUPPORTED;
		goto reject;
	}
	rc = ingest(c, &img, tmp, t, 0);
	if (rc == PI_ERR_UNPROCESSABLE)
		goto reject;
	if (rc != 0)
		goto out;
	{
		struct audit ev = audit_for(c, "complete", img.id, img.case_id, NULL);

		rc = db_image_mark_ready(c->w->db, &img, &ev);
	}
	if (rc == PI_ERR_CONFLICT) {
		/* Completed concurrently: answer with what is recorded. */
		rc = db_image_get(c->w->db, c->req->arena, id, 0, &img);
		if (rc != 0)
			goto out;
	} else if (rc != 0) {
		for (int v = V_DISPLAY; v <= V_THUMBNAIL; v++)
			(void)storage_del(c->w->storage,
			    object_key(c->req->arena, &img, (enum variant)v));
		goto out;
	}
	rc = http_json(c->req, 200, envelope(image_json(c->req->arena, &img), NULL));
	goto out;
reject:
	/* The object failed the checks: delete it; the image stays pending. */
	(void)storage_del(c->w->storage, object_key(c->req->arena, &img, V_ORIGINAL));
	audit(c, "complete", img.id, img.case_id, NULL, "error");
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0] != '\0')
		(void)unlink(tmp);
	return rc;
}

/* --- GET /:id ------------------------------------------------------------ */

int
h_get(struct ctx *c)
{
	char id[37];
	struct image img;
	int rc;

	if (path_id(c, id) != 0)
		return 0;
	rc = load_image(c, id, ACL_VIEW, "view", &img);
	if (rc != 0)
		return rc;
	audit(c, "view", img.id, img.case_id, NULL, "ok");
	return http_json(c->req, 200, envelope(image_json(c->req->arena, &img), NULL));
}

/* --- GET /cases/:caseId -------------------------------------------------- */

int
h_list(struct ctx *c)
{
	char case_id[37];
	const char *eye = http_query(c->req, "eyeSide");
	const char *lim = http_query(c->req, "limit");
	const char *off = http_query(c->req, "offset");
	long long limit = 100, offset = 0, total = 0;
	json_object *details = NULL, *arr, *data, *body;
	struct image *imgs;
	const char *key, *cached;
	long long version;
	size_t n, clen;
	int rc;

	if (c->id == NULL || !val_uuid(c->id, case_id))
		return http_validation_error(c->req, http_detail_add(NULL,
		    "caseId", "must be a UUID"));
	if (c->req->query_invalid)
		details = query_detail(c, details);
	if (eye != NULL && val_enum(eye, eye_sides) < 0)
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
	rc = check_case(c, case_id, ACL_VIEW, "list");
	if (rc != 0)
		return rc;
	/* The case's version was read with the user (c->pf): a copy made at
	 * the same version is this very answer (listcache.h). */
	version = c->pf != NULL && c->pf->kind == PF_CASE ? c->pf->version : -1;
	key = arena_printf(c->req->arena, "%s|%s|%lld|%lld", case_id,
	    eye != NULL ? eye : "", limit, offset);
	if (version >= 0 && key != NULL &&
	    (cached = listcache_get(c->w->lists, key, version, db_now_ms(),
	    c->w->cfg->auth_cache_ttl * 1000, &clen)) != NULL) {
		audit(c, "list", NULL, case_id, NULL, "ok");
		return http_json_bytes(c->req, 200, cached, clen);
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
		json_object_array_add(arr, image_json(c->req->arena, &imgs[i]));
	json_object_object_add(data, "images", arr);
	json_object_object_add(data, "total", json_object_new_int64(total));
	audit(c, "list", NULL, case_id, NULL, "ok");
	body = envelope(data, NULL);
	if (body != NULL && version >= 0 && key != NULL) {
		size_t blen;
		const char *b = json_object_to_json_string_length(body,
		    HTTP_JSON_FLAGS, &blen);

		if (b != NULL)
			(void)listcache_put(c->w->lists, key, version,
			    db_now_ms(), b, blen);
	}
	return http_json(c->req, 200, body);
}

/* --- variants and serving bytes ----------------------------------------- */

/* The variant asked for by ?thumbnail=true or ?variant=; dflt if neither.
 * -1 when invalid. */
static int
variant_param(struct ctx *c, enum variant dflt)
{
	const char *v = http_query(c->req, "variant");
	const char *th = http_query(c->req, "thumbnail");
	int i;

	if (v != NULL) {
		/* val_enum() answers an index of variants[] or -1; the bound
		 * is said again here, where callers index variants[] with it. */
		i = val_enum(v, variants);
		return i >= 0 && (size_t)i < PI_ARRAY_LEN(variants) ? i : -1;
	}
	if (th != NULL) {
		i = val_bool(th);
		if (i < 0)
			return -1;
		return i ? V_THUMBNAIL : (int)dflt;
	}
	return (int)dflt;
}

/* The headers every response with an object's bytes carries. */
static int
object_headers(struct ctx *c, const struct image *img, enum variant v,
    const char *mime, const char *etag, const char *ext)
{
	if (http_header(c->req, "Content-Type", mime) != 0 ||
	    http_header(c->req, "ETag", etag) != 0 ||
	    http_headerf(c->req, "Cache-Control", "private, max-age=%lld",
	    c->w->cfg->cache_max_age) != 0 ||
	    http_header(c->req, "X-Content-Type-Options", "nosniff") != 0 ||
	    http_headerf(c->req, "Content-Disposition",
	    "inline; filename=\"%s-%s.%s\"", img->id, variants[v], ext) != 0)
		return -1;
	return 0;
}

/* Headers of a streamed answer, sent when the first bytes are ready, so
 * that a storage failure before that is still a clean 503. */
struct stream_ctx {
	struct ctx *c;
	const struct image *img;
	enum variant v;
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
stream_object(struct ctx *c, const struct image *img, enum variant v,
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
	    &s.start, &s.end) > 0;
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
remote_accel(struct ctx *c, const struct image *img, enum variant v,
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
	    &start, &end) >= 0)
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
serve(struct ctx *c, const struct image *img, enum variant v)
{
	const struct config *cfg = c->w->cfg;
	const char *key = object_key(c->req->arena, img, v);
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

/* --- GET /:id/proxy ------------------------------------------------------ */

int
h_proxy(struct ctx *c)
{
	char id[37];
	struct image img;
	int v, rc;

	if (path_id(c, id) != 0)
		return 0;
	v = variant_param(c, V_DISPLAY);
	if (c->req->query_invalid)
		return http_validation_error(c->req, query_detail(c, NULL));
	if (v < 0)
		return http_validation_error(c->req, http_detail_add(NULL, "variant",
		    "must be original, display or thumbnail"));
	rc = load_image(c, id, ACL_VIEW, "proxy", &img);
	if (rc != 0)
		return rc;
	if (strcmp(img.status, "ready") != 0)
		return PI_ERR_NOT_FOUND;
	rc = serve(c, &img, (enum variant)v);
	audit(c, "proxy", img.id, img.case_id, variants[v], rc == 0 ? "ok" : "error");
	return rc;
}

/* --- GET /:id/download-url ----------------------------------------------- */

int
h_download_url(struct ctx *c)
{
	char id[37], sig[64];
	struct image img;
	const char *ei = http_query(c->req, "expiresIn");
	long long expires_in = 3600;
	int64_t expires;
	json_object *details = NULL, *data;
	const char *url;
	int v, rc;

	if (path_id(c, id) != 0)
		return 0;
	v = variant_param(c, V_ORIGINAL);
	if (v < 0)
		details = http_detail_add(details, "variant",
		    "must be original, display or thumbnail");
	if (ei != NULL && !val_int(ei, 1, c->w->cfg->max_download_url_ttl, &expires_in))
		details = http_detail_add(details, "expiresIn",
		    "must be an integer from 1 to max_download_url_ttl");
	if (ei == NULL && expires_in > c->w->cfg->max_download_url_ttl)
		expires_in = c->w->cfg->max_download_url_ttl;
	if (c->req->query_invalid)
		details = query_detail(c, details);
	if (details != NULL)
		return http_validation_error(c->req, details);
	if (v < 0)    /* http_detail_add() could not allocate */
		return PI_ERR_NOMEM;
	rc = load_image(c, id, ACL_VIEW, "download_url", &img);
	if (rc != 0)
		return rc;
	if (strcmp(img.status, "ready") != 0)
		return PI_ERR_NOT_FOUND;
	expires = (int64_t)time(NULL) + expires_in;
	if (c->w->storage->ops->presign != NULL) {
		char *u = c->w->storage->ops->presign(c->w->storage, "GET",
		    object_key(c->req->arena, &img, (enum variant)v), NULL, expires_in);

		url = u != NULL ? arena_strdup(c->req->arena, u) : NULL;
		free(u);
		if (url == NULL)
			return PI_ERR_STORAGE;
	} else {
		if (urltoken_sign_by((const unsigned char *)c->w->cfg->url_signing_key,
		    strlen(c->w->cfg->url_signing_key), URLTOKEN_DOWNLOAD, img.id,
		    variants[v], expires, c->who.user_id, sig, sizeof(sig)) != 0)
			return PI_ERR_INTERNAL;
		url = public_url(c, arena_printf(c->req->arena,
		    API_PREFIX "%s/file?variant=%s&expires=%" PRId64 "&uid=%s&sig=%s",
		    img.id, variants[v], expires, c->who.user_id, sig));
	}
	data = json_object_new_object();
	if (data == NULL || url == NULL) {
		json_object_put(data);
		return PI_ERR_NOMEM;
	}
	json_object_object_add(data, "downloadUrl", json_object_new_string(url));
	json_object_object_add(data, "expiresIn", json_object_new_int64(expires_in));
	json_object_object_add(data, "expiresAt", json_object_new_string(
	    fmt_time(c->req->arena, expires)));
	audit(c, "download_url", img.id, img.case_id, variants[v], "ok");
	return http_json(c->req, 200, envelope(data, NULL));
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

	if (path_id(c, id) != 0)
		return 0;
	v = variant != NULL ? val_enum(variant, variants) : -1;
	if (c->req->query_invalid || v < 0 || exp == NULL || sig == NULL ||
	    !val_int(exp, 0, INT64_MAX / 2, &expires) ||
	    urltoken_verify_by((const unsigned char *)c->w->cfg->url_signing_key,
	    strlen(c->w->cfg->url_signing_key), URLTOKEN_DOWNLOAD, id, variant,
	    expires, uid, sig, (int64_t)time(NULL)) != URLTOKEN_VALID) {
		audit(c, "file", id, NULL, variant != NULL && v >= 0 ? variant : NULL,
		    "denied");
		return http_error(c->req, 403, "FORBIDDEN",
		    "Invalid or expired download link");
	}
	rc = db_image_get(c->w->db, c->req->arena, id, 0, &img);
	if (rc != 0)
		return rc;
	if (strcmp(img.status, "ready") != 0)
		return PI_ERR_NOT_FOUND;
	if (uid != NULL) {
		rc = redeem_check(c, uid, ACL_VIEW, &img, "file", variants[v]);
		if (rc != 0)
			return rc > 0 ? 0 : rc;
	}
	rc = serve(c, &img, (enum variant)v);
	audit(c, "file", img.id, img.case_id, variants[v], rc == 0 ? "ok" : "error");
	return rc;
}

/* --- DELETE /:id ----------------------------------------------------------- */

int
h_delete(struct ctx *c)
{
	char id[37];
	struct image img;
	struct audit ev;
	int rc;

	if (path_id(c, id) != 0)
		return 0;
	rc = load_image(c, id, ACL_DELETE, "delete", &img);
	if (rc != 0)
		return rc;
	ev = audit_for(c, "delete", img.id, img.case_id, NULL);
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
