/* storage_supabase.c — the Supabase Storage back end.
 *
 * Objects live in one bucket of a Supabase project and are reached through
 * the Storage REST API under <supabase_url>/storage/v1, always with the
 * service-role key (sent as "Authorization: Bearer" and as "apikey", which
 * the project's API gateway wants too). The routes used:
 *
 *   put_file  POST   /object/<bucket>/<key>       x-upsert: false, body streamed
 *   stat      GET    /object/info/authenticated/<bucket>/<key>   JSON
 *   fetch     GET    /object/authenticated/<bucket>/<key>
 *   stream    GET    /object/authenticated/<bucket>/<key>        with Range
 *   del       DELETE /object/<bucket>/<key>
 *   list      POST   /object/list/<bucket>        one folder level per call
 *   presign   POST   /object/sign/<bucket>/<key>, /object/upload/sign/...
 *             (only when supabase_jwt_secret is empty; see below)
 *   check     GET    /bucket/<bucket>
 *
 * The server answers most errors with HTTP 400 and names the real status in
 * the JSON body ({"statusCode": "404", "code", "error", "message"}); an
 * upload onto an existing key is {"statusCode": "409", "error":
 * "Duplicate"}. So the status we act on is the body's statusCode when there
 * is one, the HTTP status otherwise: 404 → PI_ERR_NOT_FOUND, 409 →
 * PI_ERR_EXISTS, anything else → PI_ERR_STORAGE (a missing bucket is a
 * storage failure, not a missing object). The server's message is logged;
 * keys and tokens never are.
 *
 * Never overwriting: uploads send x-upsert: false, so the server refuses to
 * replace an object, and a put is not retried once its body may have left
 * (a retry could find its own first attempt and report EXISTS). Only a
 * refused connection is retried for a put (and libcurl itself may resend
 * it, rewinding the file, when a kept-alive connection was closed under
 * it). Reads, deletes, lists and the sign calls are idempotent and are
 * retried twice with back-off on a transport error, a 5xx or a 429. A
 * stream that breaks after some bytes were handed on resumes with a Range
 * from the first byte not yet sent.
 *
 * Transfers: the upload is read from the temp file by a libcurl read
 * callback and downloads are written as they arrive, so no object is ever
 * held in memory. Small JSON requests have a total timeout of
 * storage_timeout; data transfers instead give up when nothing moved for
 * storage_timeout seconds (a large image on a slow link must not be cut
 * off, a dead server must).
 *
 * One libcurl easy handle per worker, reset before each request
 * (curl_easy_reset keeps the connection cache, so the connection to the
 * project stays alive between requests). The plumbing shared with the S3
 * back end — the bounded buffer, the upload and download callbacks, the
 * file sink, the pause between attempts — is in storage_http.c; this file
 * keeps what is Supabase's own: the service-key headers, the JSON errors,
 * the retry policy above, token signing and the folder-by-folder listing.
 *
 * Signed URLs follow supabase/storage as of 2026 (the server that adds the
 * "scope" claim, src/internal/auth/jwt.ts and src/storage/object.ts): an
 * HS256 JWT signed with the project's JWT secret, verified with jose,
 *   download  {"url": "<bucket>/<key>", "scope": "download", "iat", "exp"}
 *             at /object/sign/<bucket>/<key>?token=<jwt>
 *   upload    {"url": "<bucket>/<key>", "upsert": false, "scope": "upload",
 *             "iat", "exp"} at /object/upload/sign/<bucket>/<key>?token=<jwt>
 *             (PUT, the bytes as the body, Content-Type as the object's type)
 * with exp = iat + expires, and the url claim compared with the decoded
 * object path of the request. No "owner" claim: the service role has no
 * user id, and the server's own service-role signing leaves it out too.
 * Servers from before scoping accept these tokens as well (they ignore the
 * extra claim; "upsert" is what marked an upload token then). When
 * supabase_jwt_secret is empty the tokens come from the sign endpoints
 * instead (the URL around a token is built the same way; a key is sent to
 * them encodeURI-style, as supabase-js does, because the server signs
 * decodeURI() of the request path). The server then picks an upload URL's
 * lifetime itself (uploadSignedUrlExpirationTime, 2 h by default). In both
 * cases Content-Type is not part of a Supabase signature, so the type of a
 * direct upload is checked when the upload is completed, not by the URL.
 */
#include "sigv4.h"
#include "storage.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <jwt.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "log.h"
#include "storage_http.h"

#define SUPA_TRIES SHTTP_ATTEMPTS        /* attempts of an idempotent request */
#define SUPA_MAX_BODY (8 * 1024 * 1024)  /* JSON answers kept in memory */
#define SUPA_MAX_KEY 1024
#define SUPA_LIST_LIMIT 1000             /* entries per list call */
#define SUPA_LIST_MAX_PAGES 10000
#define SUPA_LIST_DEPTH 8
#define SUPA_URL_MAX 8192
#define SUPA_MAX_EXPIRES (7LL * 24 * 3600)

/* Worker-lifetime state, in st->impl. */
struct supa {
	CURL *curl;
	char *base;            /* "<supabase_url>/storage/v1", no trailing '/' */
	char *bucket;          /* as configured */
	char *bucket_enc;      /* percent-encoded for paths */
	char *hdr_auth;        /* "Authorization: Bearer <service key>" */
	char *hdr_apikey;      /* "apikey: <service key>" */
	const char *jwt_secret;/* cfg->supabase_jwt_secret; "" = use the API */
	long timeout;          /* storage_timeout, seconds */
	char errbuf[CURL_ERROR_SIZE];
};

/* One request. path starts with '/' and is already percent-encoded. */
struct supa_req {
	const char *method;        /* "GET", "POST", "DELETE" */
	const char *what;          /* for logs: the key or bucket concerned */
	char path[SUPA_URL_MAX];
	const char *json;          /* request body (JSON), or NULL */
	int in_fd;                 /* streamed request body, or -1 */
	curl_off_t in_size;
	const char *content_type;  /* of the streamed body */
	const char *range;         /* Range header value, or NULL */
	int upsert_false;          /* send x-upsert: false */
	int data;                  /* a data transfer: stall timeout only */
	/* Receives a 2xx body instead of the buffer; non-zero stops. */
	int (*sink)(void *ud, const char *buf, size_t n, long long off);
	void *sink_ud;
};

/* What came back. */
struct supa_resp {
	CURLcode cc;               /* CURLE_OK: an HTTP answer arrived */
	long http;                 /* HTTP status, 0 without an answer */
	long status;               /* the body's statusCode, else http */
	int bucket_missing;        /* the answer said the bucket is missing */
	int sink_stop;             /* the sink asked to stop */
	long long range_start;     /* first byte of a 206 body (Content-Range) */
	struct shttp_buf body;     /* non-2xx bodies, and 2xx without a sink */
};

/* Transfer context of the libcurl callbacks. */
struct supa_xfer {
	struct supa *s;
	const struct supa_req *req;
	struct supa_resp *resp;
	long long body_off;        /* bytes of the body seen so far */
};

/* ---- small helpers ------------------------------------------------------ */

/* A malloc'd formatted string, or NULL. */
static char *supa_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *
supa_strdupf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	p = malloc((size_t)n + 1);
	if (p == NULL)
		return NULL;
	va_start(ap, fmt);
	if (vsnprintf(p, (size_t)n + 1, fmt, ap) != n) {
		free(p);
		p = NULL;
	}
	va_end(ap);
	return p;
}

/* Frees a string that held a secret, wiping it first. */
static void
supa_free_secret(char *p)
{
	if (p != NULL) {
		explicit_bzero(p, strlen(p));
		free(p);
	}
}

/* 1 if v is non-empty printable ASCII without spaces (safe in a header). */
static int
supa_token_ok(const char *v)
{
	if (v[0] == '\0')
		return 0;
	for (const char *p = v; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~')
			return 0;
	return 1;
}

/* 1 if key is an object key Supabase accepts (ASCII letters, digits and
 * _/!.*'() &$=@;:+,?- per its mustBeValidKey), and a well-formed path:
 * no leading or trailing '/', no empty, "." or ".." segment. */
static int
supa_key_ok(const char *key)
{
	static const char extra[] = "_/!.*'() &$=@;:+,?-";
	size_t n = strlen(key);
	const char *seg = key;

	if (n == 0 || n > SUPA_MAX_KEY)
		return 0;
	for (const char *p = key;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t sl = (size_t)(p - seg);

			if (sl == 0 || (sl == 1 && seg[0] == '.') ||
			    (sl == 2 && seg[0] == '.' && seg[1] == '.'))
				return 0;
			if (*p == '\0')
				return 1;
			seg = p + 1;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr(extra, *p) != NULL))
			return 0;
	}
}

/* Encodes key for the path of a sign request the way supabase-js sends
 * it (encodeURI: the reserved characters stay as they are). The server
 * signs decodeURI() of the request path, which leaves %2B, %26 and the like
 * encoded, so a key sent strictly encoded would be signed under the wrong
 * name. '?' and '#' cannot be sent raw and are refused. Returns 0 or -1. */
static int
supa_uri(const char *src, char *out, size_t outsz)
{
	static const char keep[] = ";,/:@&=+$-_.!~*'()";
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)src; *p != '\0'; p++) {
		unsigned char c = *p;
		int k = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr(keep, c) != NULL;

		if (c == '?' || c == '#' || o + (k ? 1 : 3) >= outsz)
			return -1;
		if (k) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (o >= outsz)
		return -1;
	out[o] = '\0';
	return 0;
}

/* Writes "/<route>/<bucket>/<key>" (key percent-encoded) to req->path.
 * Returns 0, PI_ERR_INVALID for a key Supabase would refuse. */
static int
supa_object_path(struct supa *s, struct supa_req *req, const char *route,
    const char *key)
{
	char enc[SUPA_MAX_KEY * 3 + 1];

	if (!supa_key_ok(key) || sigv4_uri_encode(key, strlen(key), 1, enc, sizeof(enc)) < 0)
		return PI_ERR_INVALID;
	if ((size_t)snprintf(req->path, sizeof(req->path), "/%s/%s/%s", route,
	    s->bucket_enc, enc) >= sizeof(req->path))
		return PI_ERR_INVALID;
	return 0;
}

/* An empty request: method, a name for the logs, no body. */
static void
supa_req_init(struct supa_req *req, const char *method, const char *what)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->what = what;
	req->in_fd = -1;
}

/* Parses an RFC 3339 / ISO 8601 UTC or offset time ("2026-01-02T03:04:05.678Z",
 * "...+00:00"); returns 0 when it is not one. */
static time_t
supa_parse_time(const char *s)
{
	struct tm tm;
	const char *p;
	time_t t;
	long off = 0;

	if (s == NULL)
		return 0;
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return 0;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if ((*p == '+' || *p == '-') && p[1] >= '0' && p[1] <= '9' &&
	    p[2] >= '0' && p[2] <= '9') {
		long h = (p[1] - '0') * 10 + (p[2] - '0'), m = 0;
		const char *q = p + 3;

		if (*q == ':')
			q++;
		if (q[0] >= '0' && q[0] <= '9' && q[1] >= '0' && q[1] <= '9')
			m = (q[0] - '0') * 10 + (q[1] - '0');
		off = (h * 3600 + m * 60) * (*p == '-' ? -1 : 1);
	}
	t = (time_t)pi_timegm(&tm);
	return t - off;
}

/* A string member of o, or NULL. */
static const char *
supa_json_str(json_object *o, const char *name)
{
	json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Parses a whole buffer as JSON; NULL if it is not (or was truncated).
 * The caller owns the result (json_object_put). */
static json_object *
supa_json_parse(const struct shttp_buf *b)
{
	json_tokener *tok;
	json_object *o;

	if (b->p == NULL || b->len == 0 || b->overflow || b->len > INT_MAX)
		return NULL;
	tok = json_tokener_new();
	if (tok == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, b->p, (int)b->len);
	if (o != NULL && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* ---- the request engine --------------------------------------------------- */

/* libcurl write callback: a 2xx body goes to the request's sink (with the
 * object offset of its first byte), anything else into the buffer. */
static size_t
supa_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct supa_xfer *x = ud;
	size_t n = size * nmemb;
	long code = 0;

	if (curl_easy_getinfo(x->s->curl, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		code = 0;
	if (x->req->sink != NULL && code >= 200 && code < 300) {
		long long off = (code == 206 ? x->resp->range_start : 0) + x->body_off;

		x->body_off += (long long)n;
		if (x->req->sink(x->req->sink_ud, ptr, n, off) != 0) {
			x->resp->sink_stop = 1;
			return 0;
		}
		return n;
	}
	if (shttp_buf_add(&x->resp->body, ptr, n) == PI_ERR_NOMEM)
		return 0;
	return n;
}

/* libcurl header callback: notes where a 206 body starts
 * ("Content-Range: bytes a-b/size"). */
static size_t
supa_header_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	struct supa_xfer *x = ud;
	size_t n = size * nitems;
	const char *p, *end;
	size_t vn;
	long long v = 0;
	int digits = 0;

	if (shttp_header_value(buf, n, "content-range", &p, &vn) &&
	    vn >= 6 && strncasecmp(p, "bytes ", 6) == 0) {
		for (end = p + vn, p += 6; p < end && *p >= '0' && *p <= '9' &&
		    v < LLONG_MAX / 10 - 10; p++, digits++)
			v = v * 10 + (*p - '0');
		if (digits > 0)
			x->resp->range_start = v;
	}
	return n;
}

/* Reads the status an answer names: the JSON body's statusCode when there
 * is one (the server answers most errors with HTTP 400), else the HTTP
 * status. A "Duplicate" error is 409 whatever the number says. */
static void
supa_classify(struct supa_resp *resp)
{
	json_object *o, *v;
	const char *err, *code;

	resp->status = resp->http;
	if (resp->http >= 200 && resp->http < 300)
		return;
	o = supa_json_parse(&resp->body);
	if (o == NULL)
		return;
	if (json_object_object_get_ex(o, "statusCode", &v)) {
		long n = 0;

		if (json_object_is_type(v, json_type_string)) {
			const char *sc = json_object_get_string(v);
			char *end;

			n = strtol(sc, &end, 10);
			if (end == sc || *end != '\0')
				n = 0;
		} else if (json_object_is_type(v, json_type_int)) {
			n = (long)json_object_get_int64(v);
		}
		if (n >= 100 && n <= 599)
			resp->status = n;
	}
	err = supa_json_str(o, "error");
	code = supa_json_str(o, "code");
	if ((err != NULL && strcmp(err, "Duplicate") == 0) ||
	    (code != NULL && (strcmp(code, "KeyAlreadyExists") == 0 ||
	    strcmp(code, "ResourceAlreadyExists") == 0)))
		resp->status = 409;
	if ((code != NULL && strcmp(code, "NoSuchBucket") == 0) ||
	    (err != NULL && strcmp(err, "Bucket not found") == 0))
		resp->bucket_missing = 1;
	json_object_put(o);
}

/* Logs a failed request with the server's own words, never a secret. */
static void
supa_log_failure(struct supa *s, const struct supa_req *req,
    const struct supa_resp *resp)
{
	json_object *o;
	const char *msg = NULL, *err = NULL;

	if (resp->cc != CURLE_OK) {
		log_error("storage: supabase %s %s: %s", req->method, req->what,
		    s->errbuf[0] != '\0' ? s->errbuf : curl_easy_strerror(resp->cc));
		return;
	}
	o = supa_json_parse(&resp->body);
	if (o != NULL) {
		msg = supa_json_str(o, "message");
		err = supa_json_str(o, "error");
		if (err == NULL)
			err = supa_json_str(o, "code");
	}
	log_error("storage: supabase %s %s: HTTP %ld (status %ld) %s%s%s",
	    req->method, req->what, resp->http, resp->status,
	    err != NULL ? err : "", err != NULL && msg != NULL ? ": " : "",
	    msg != NULL ? msg : "");
	if (o != NULL)
		json_object_put(o);
}

#define SUPA_SETOPT(h, opt, val) do {                                   \
	if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK)                \
		goto out;                                                   \
} while (0)

/* One attempt of req. Fills resp (its body buffer is emptied first).
 * Returns 0 when an HTTP answer arrived (whatever its status), PI_ERR_IO
 * when the sink stopped the transfer, PI_ERR_STORAGE on a transport
 * failure (resp->cc says which) or a setup error. */
static int
supa_perform_once(struct supa *s, const struct supa_req *req,
    struct supa_resp *resp)
{
	CURL *h = s->curl;
	struct curl_slist *hdrs = NULL;
	struct supa_xfer x = { .s = s, .req = req, .resp = resp, .body_off = 0 };
	char url[SUPA_URL_MAX + 512];
	int rc = PI_ERR_STORAGE;

	shttp_buf_free(&resp->body);
	resp->body.max = SUPA_MAX_BODY;
	resp->cc = CURLE_FAILED_INIT;
	resp->http = resp->status = 0;
	resp->bucket_missing = resp->sink_stop = 0;
	resp->range_start = 0;
	s->errbuf[0] = '\0';
	if ((size_t)snprintf(url, sizeof(url), "%s%s", s->base, req->path) >= sizeof(url))
		return PI_ERR_INVALID;

	/* Headers: the service key twice, then what this request needs. */
	const char *fixed[] = { s->hdr_auth, s->hdr_apikey, "Expect:", NULL };
	for (int i = 0; fixed[i] != NULL; i++)
		if (shttp_header_add(&hdrs, fixed[i]) != 0)
			goto out;
	if (req->json != NULL &&
	    shttp_header_add(&hdrs, "Content-Type: application/json") != 0)
		goto out;
	/* Patients' images: no shared cache may keep them. */
	if (req->in_fd >= 0 && (shttp_header_addf(&hdrs, "Content-Type",
	    req->content_type != NULL ? req->content_type :
	    "application/octet-stream") != 0 ||
	    shttp_header_add(&hdrs, "Cache-Control: private, max-age=0") != 0))
		goto out;
	if (req->upsert_false && shttp_header_add(&hdrs, "x-upsert: false") != 0)
		goto out;
	if (req->range != NULL && shttp_header_addf(&hdrs, "Range", req->range) != 0)
		goto out;

	if (shttp_setup(h, url, hdrs, s->errbuf, supa_write_cb, supa_header_cb,
	    &x) != CURLE_OK)
		goto out;
	SUPA_SETOPT(h, CURLOPT_CONNECTTIMEOUT, s->timeout < 10 ? s->timeout : 10L);
	if (req->data) {
		SUPA_SETOPT(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		SUPA_SETOPT(h, CURLOPT_LOW_SPEED_TIME, s->timeout);
	} else {
		SUPA_SETOPT(h, CURLOPT_TIMEOUT, s->timeout);
	}
	if (strcmp(req->method, "GET") == 0) {
		SUPA_SETOPT(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(req->method, "DELETE") == 0) {
		SUPA_SETOPT(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	} else if (strcmp(req->method, "POST") == 0 && req->in_fd >= 0) {
		SUPA_SETOPT(h, CURLOPT_POST, 1L);
		SUPA_SETOPT(h, CURLOPT_READFUNCTION, shttp_read_fd);
		SUPA_SETOPT(h, CURLOPT_READDATA, (void *)&req->in_fd);
		SUPA_SETOPT(h, CURLOPT_SEEKFUNCTION, shttp_seek_fd);
		SUPA_SETOPT(h, CURLOPT_SEEKDATA, (void *)&req->in_fd);
		SUPA_SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, req->in_size);
	} else if (strcmp(req->method, "POST") == 0) {
		const char *body = req->json != NULL ? req->json : "";

		SUPA_SETOPT(h, CURLOPT_POSTFIELDS, body);
		SUPA_SETOPT(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	} else {
		goto out;
	}

	resp->cc = curl_easy_perform(h);
	if (resp->sink_stop) {
		rc = PI_ERR_IO;
		goto out;
	}
	if (resp->cc != CURLE_OK)
		goto out;
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->http) != CURLE_OK ||
	    resp->http == 0) {
		resp->cc = CURLE_RECV_ERROR;
		goto out;
	}
	supa_classify(resp);
	rc = 0;
out:
	/* Unhook everything that pointed at this stack frame. */
	if (curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL) != CURLE_OK)
		curl_easy_reset(h);
	curl_slist_free_all(hdrs);
	explicit_bzero(url, sizeof(url));
	return rc;
}

/* Is a failed attempt worth repeating? Transport failures (except a
 * stopped sink), 5xx and 429. */
static int
supa_transient(int rc, const struct supa_resp *resp)
{
	if (rc == PI_ERR_IO || rc == PI_ERR_INVALID)
		return 0;
	if (rc != 0)
		return 1;
	return resp->status >= 500 || resp->status == 429 || resp->http >= 500 ||
	    resp->http == 429;
}

/* Runs an idempotent request, retrying transient failures (tries in all).
 * rewind, when not NULL, is called before each retry and may refuse it
 * (non-zero). Returns as supa_perform_once; failures are logged. */
static int
supa_perform(struct supa *s, struct supa_req *req, struct supa_resp *resp,
    int tries, int (*rewind)(struct supa_req *req, void *ud), void *ud)
{
	int rc = PI_ERR_STORAGE;

	for (int attempt = 1; attempt <= tries; attempt++) {
		if (attempt > 1) {
			if (rewind != NULL && rewind(req, ud) != 0)
				break;
			shttp_sleep_ms(shttp_backoff_ms(attempt - 1));
		}
		rc = supa_perform_once(s, req, resp);
		if (!supa_transient(rc, resp))
			break;
		if (attempt < tries)
			log_warn("storage: supabase %s %s failed (%s, HTTP %ld); retrying",
			    req->method, req->what, rc != 0 ?
			    curl_easy_strerror(resp->cc) : "server error", resp->http);
	}
	return rc;
}

/* The pi_err of an answer that arrived: 0 for 2xx. Logs unexpected ones. */
static int
supa_result(struct supa *s, const struct supa_req *req, struct supa_resp *resp)
{
	if (resp->status >= 200 && resp->status < 300 &&
	    resp->http >= 200 && resp->http < 300)
		return 0;
	if (resp->bucket_missing) {
		supa_log_failure(s, req, resp);
		return PI_ERR_STORAGE;
	}
	if (resp->status == 404)
		return PI_ERR_NOT_FOUND;
	if (resp->status == 409)
		return PI_ERR_EXISTS;
	supa_log_failure(s, req, resp);
	if (resp->status == 413)
		return PI_ERR_TOO_LARGE;
	return PI_ERR_STORAGE;
}

/* ---- operations --------------------------------------------------------- */

/* put_file: POST with x-upsert: false, the body read from src_path as it
 * goes out. An existing object is PI_ERR_EXISTS; src_path is unlinked only
 * when the server has stored the object. */
static int
supa_put_file(struct storage *st, const char *key, const char *src_path,
    const char *content_type)
{
	struct supa *s = st->impl;
	struct supa_req req;
	struct supa_resp resp = { 0 };
	struct stat sb;
	int fd = -1, rc;

	supa_req_init(&req, "POST", key);
	rc = supa_object_path(s, &req, "object", key);
	if (rc != 0)
		goto out;
	if (content_type != NULL && (!supa_token_ok(content_type) ||
	    strlen(content_type) > 200)) {
		rc = PI_ERR_INVALID;
		goto out;
	}
	fd = open(src_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		log_error("storage: supabase put %s: cannot read the temp file: %s",
		    key, strerror(errno));
		rc = PI_ERR_STORAGE;
		goto out;
	}
	req.in_fd = fd;
	req.in_size = (curl_off_t)sb.st_size;
	req.content_type = content_type;
	req.upsert_false = 1;
	req.data = 1;
	/* Not idempotent: repeated only when the connection was refused, so
	 * that no byte of the first attempt can have reached the server. */
	for (int attempt = 1;; attempt++) {
		rc = supa_perform_once(s, &req, &resp);
		if (rc == 0 || attempt == SUPA_TRIES ||
		    (resp.cc != CURLE_COULDNT_CONNECT &&
		    resp.cc != CURLE_COULDNT_RESOLVE_HOST))
			break;
		if (lseek(fd, 0, SEEK_SET) != 0)
			break;
		shttp_sleep_ms(shttp_backoff_ms(attempt));
	}
	if (rc != 0) {
		supa_log_failure(s, &req, &resp);
		rc = PI_ERR_STORAGE;
		goto out;
	}
	rc = supa_result(s, &req, &resp);
	if (rc == PI_ERR_NOT_FOUND)
		rc = PI_ERR_STORAGE;
	if (rc == 0 && unlink(src_path) != 0)
		log_warn("storage: supabase put %s: stored, but the temp file stays: %s",
		    key, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	shttp_buf_free(&resp.body);
	return rc;
}

/* stat: the object's size, last change and media type from its info
 * record. The type matters: a signed upload URL does not cover it, and the
 * store serves its own download URLs with it. */
static int
supa_stat(struct storage *st, const char *key, struct storage_stat *out)
{
	struct supa *s = st->impl;
	struct supa_req req;
	struct supa_resp resp = { 0 };
	json_object *o = NULL, *v;
	const char *t;
	int rc;

	supa_req_init(&req, "GET", key);
	rc = supa_object_path(s, &req, "object/info/authenticated", key);
	if (rc != 0)
		goto out;
	rc = supa_perform(s, &req, &resp, SUPA_TRIES, NULL, NULL);
	if (rc != 0) {
		supa_log_failure(s, &req, &resp);
		rc = PI_ERR_STORAGE;
		goto out;
	}
	rc = supa_result(s, &req, &resp);
	if (rc != 0)
		goto out;
	o = supa_json_parse(&resp.body);
	if (o == NULL || !json_object_object_get_ex(o, "size", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
		log_error("storage: supabase info %s: no size in the answer", key);
		rc = PI_ERR_STORAGE;
		goto out;
	}
	out->size = json_object_get_int64(v);
	t = supa_json_str(o, "content_type");
	if (t == NULL && json_object_object_get_ex(o, "metadata", &v))
		t = supa_json_str(v, "mimetype");
	if (t != NULL && (size_t)snprintf(out->content_type,
	    sizeof(out->content_type), "%s", t) >= sizeof(out->content_type))
		(void)snprintf(out->content_type, sizeof(out->content_type),
		    "application/octet-stream");
	t = supa_json_str(o, "last_modified");
	if (t == NULL)
		t = supa_json_str(o, "updated_at");
	if (t == NULL)
		t = supa_json_str(o, "created_at");
	out->mtime = supa_parse_time(t);
out:
	if (o != NULL)
		json_object_put(o);
	shttp_buf_free(&resp.body);
	return rc;
}

/* Writes a piece of the body to the fetch's file; -1 on a write error. */
static int
supa_fetch_sink(void *ud, const char *buf, size_t n, long long off)
{
	(void)off;
	return shttp_file_write(ud, buf, n);
}

/* Before a retry: the file starts over. */
static int
supa_fetch_rewind(struct supa_req *req, void *ud)
{
	(void)req;
	return shttp_file_rewind(ud);
}

/* fetch: the object into dst_path (created 0600, truncated on a retry). */
static int
supa_fetch(struct storage *st, const char *key, const char *dst_path)
{
	struct supa *s = st->impl;
	struct supa_req req;
	struct supa_resp resp = { 0 };
	struct shttp_file_sink f = { -1 };
	int rc;

	supa_req_init(&req, "GET", key);
	rc = supa_object_path(s, &req, "object/authenticated", key);
	if (rc != 0)
		goto out;
	f.fd = open(dst_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (f.fd < 0) {
		log_error("storage: supabase fetch %s: cannot create the temp file: %s",
		    key, strerror(errno));
		rc = PI_ERR_IO;
		goto out;
	}
	req.data = 1;
	req.sink = supa_fetch_sink;
	req.sink_ud = &f;
	rc = supa_perform(s, &req, &resp, SUPA_TRIES, supa_fetch_rewind, &f);
	if (rc == PI_ERR_IO) {
		log_error("storage: supabase fetch %s: cannot write the temp file: %s",
		    key, strerror(errno));
		goto out;
	}
	if (rc != 0) {
		supa_log_failure(s, &req, &resp);
		rc = PI_ERR_STORAGE;
		goto out;
	}
	rc = supa_result(s, &req, &resp);
out:
	if (f.fd >= 0 && close(f.fd) != 0 && rc == 0)
		rc = PI_ERR_IO;
	shttp_buf_free(&resp.body);
	return rc;
}

/* stream: hands bytes start..end on, in order, whatever the server sends
 * (206 from the asked offset, or a 200 of the whole object). */
struct supa_stream {
	long long next;          /* first byte not yet handed on */
	long long end;           /* last byte wanted */
	int (*cb)(void *ud, const char *buf, size_t n);
	void *ud;
	int cb_failed;           /* the consumer refused bytes */
	int gap;                 /* the server skipped bytes */
	char range[64];
};

/* Hands on the part of a piece that is still wanted; stops the transfer
 * (-1) when everything was sent, the consumer refused, or bytes are
 * missing. */
static int
supa_stream_sink(void *ud, const char *buf, size_t n, long long off)
{
	struct supa_stream *x = ud;
	long long last = off + (long long)n - 1;

	if (n == 0)
		return 0;
	if (off > x->next) {
		x->gap = 1;
		return -1;
	}
	if (last < x->next)
		return 0;                 /* before what is still wanted */
	if (x->next > x->end)
		return -1;                /* all sent; stop the transfer */
	{
		long long from = x->next - off;
		long long upto = (last < x->end ? last : x->end) - off;

		if (x->cb(x->ud, buf + from, (size_t)(upto - from + 1)) != 0) {
			x->cb_failed = 1;
			return -1;
		}
		x->next = off + upto + 1;
	}
	return x->next > x->end ? -1 : 0;
}

/* Before an attempt: asks for the bytes not yet handed on. */
static int
supa_stream_rewind(struct supa_req *req, void *ud)
{
	struct supa_stream *x = ud;

	if (x->next > x->end || x->gap || x->cb_failed)
		return -1;
	if ((size_t)snprintf(x->range, sizeof(x->range), "bytes=%lld-%lld",
	    x->next, x->end) >= sizeof(x->range))
		return -1;
	req->range = x->range;
	return 0;
}

/* stream: bytes start..end to cb through a Range request, resumed from
 * the first byte not yet handed on if the connection breaks. PI_ERR_IO
 * when cb refuses bytes (the client went away). */
static int
supa_stream(struct storage *st, const char *key, long long start,
    long long end, int (*cb)(void *ud, const char *buf, size_t n), void *ud)
{
	struct supa *s = st->impl;
	struct supa_req req;
	struct supa_resp resp = { 0 };
	struct supa_stream x = { .next = start, .end = end, .cb = cb, .ud = ud };
	int rc;

	if (start < 0 || end < start)
		return PI_ERR_INVALID;
	supa_req_init(&req, "GET", key);
	rc = supa_object_path(s, &req, "object/authenticated", key);
	if (rc != 0)
		return rc;
	if (supa_stream_rewind(&req, &x) != 0)
		return PI_ERR_INVALID;
	req.data = 1;
	req.sink = supa_stream_sink;
	req.sink_ud = &x;
	rc = supa_perform(s, &req, &resp, SUPA_TRIES, supa_stream_rewind, &x);
	if (rc == PI_ERR_IO && x.cb_failed) {
		rc = PI_ERR_IO;                  /* the client went away */
	} else if (rc == PI_ERR_IO && x.next > x.end) {
		rc = 0;                          /* we stopped it: all sent */
	} else if (rc != 0) {
		if (x.gap)
			log_error("storage: supabase stream %s: the server skipped bytes",
			    key);
		else
			supa_log_failure(s, &req, &resp);
		rc = PI_ERR_STORAGE;
	} else {
		rc = supa_result(s, &req, &resp);
		if (rc == 0 && x.next <= x.end) {
			log_error("storage: supabase stream %s: %lld bytes short", key,
			    x.end - x.next + 1);
			rc = PI_ERR_STORAGE;
		}
	}
	shttp_buf_free(&resp.body);
	return rc;
}

/* del: an object that is already absent is success. */
static int
supa_del(struct storage *st, const char *key)
{
	struct supa *s = st->impl;
	struct supa_req req;
	struct supa_resp resp = { 0 };
	int rc;

	supa_req_init(&req, "DELETE", key);
	rc = supa_object_path(s, &req, "object", key);
	if (rc != 0)
		goto out;
	rc = supa_perform(s, &req, &resp, SUPA_TRIES, NULL, NULL);
	if (rc != 0) {
		supa_log_failure(s, &req, &resp);
		rc = PI_ERR_STORAGE;
		goto out;
	}
	rc = supa_result(s, &req, &resp);
	if (rc == PI_ERR_NOT_FOUND)
		rc = 0;
out:
	shttp_buf_free(&resp.body);
	return rc;
}

/* One entry of a folder level. */
struct supa_entry {
	char *name;
	int folder;
	time_t mtime;
};

/* Frees n entries and the array. */
static void
supa_entries_free(struct supa_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/* Reads every entry of folder dir ("" = the bucket's root) into *out, all
 * pages first, so that a callback deleting objects cannot shift the
 * offsets of pages still to come. */
static int
supa_list_level(struct supa *s, const char *dir, struct supa_entry **out,
    size_t *nout)
{
	struct supa_entry *ents = NULL;
	size_t n = 0, cap = 0, seen = 0;
	struct supa_req req;
	struct supa_resp resp = { 0 };
	json_object *body = NULL, *arr = NULL;
	int rc = PI_ERR_STORAGE;

	supa_req_init(&req, "POST", dir[0] != '\0' ? dir : "(root)");
	if ((size_t)snprintf(req.path, sizeof(req.path), "/object/list/%s",
	    s->bucket_enc) >= sizeof(req.path))
		goto out;
	for (int page = 0; page < SUPA_LIST_MAX_PAGES; page++) {
		json_object *sort;
		size_t count;

		body = json_object_new_object();
		sort = json_object_new_object();
		if (body == NULL || sort == NULL ||
		    json_object_object_add(sort, "column", json_object_new_string("name")) != 0 ||
		    json_object_object_add(sort, "order", json_object_new_string("asc")) != 0 ||
		    json_object_object_add(body, "prefix", json_object_new_string(dir)) != 0 ||
		    json_object_object_add(body, "limit",
		    json_object_new_int(SUPA_LIST_LIMIT)) != 0 ||
		    json_object_object_add(body, "offset",
		    json_object_new_int64((int64_t)seen)) != 0 ||
		    json_object_object_add(body, "sortBy", sort) != 0) {
			json_object_put(sort);
			rc = PI_ERR_NOMEM;
			goto out;
		}
		req.json = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
		if (req.json == NULL) {
			rc = PI_ERR_NOMEM;
			goto out;
		}
		rc = supa_perform(s, &req, &resp, SUPA_TRIES, NULL, NULL);
		if (rc != 0) {
			supa_log_failure(s, &req, &resp);
			rc = PI_ERR_STORAGE;
			goto out;
		}
		rc = supa_result(s, &req, &resp);
		if (rc != 0) {
			rc = PI_ERR_STORAGE;
			goto out;
		}
		rc = PI_ERR_STORAGE;
		arr = supa_json_parse(&resp.body);
		if (arr == NULL || !json_object_is_type(arr, json_type_array)) {
			log_error("storage: supabase list %s: the answer is not a JSON array",
			    req.what);
			goto out;
		}
		count = json_object_array_length(arr);
		seen += count;
		for (size_t i = 0; i < count; i++) {
			json_object *e = json_object_array_get_idx(arr, i), *id;
			const char *name = supa_json_str(e, "name");

			if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL)
				continue;
			if (n == cap) {
				size_t ncap = cap != 0 ? cap * 2 : 64;
				struct supa_entry *p = realloc(ents, ncap * sizeof(*ents));

				if (p == NULL) {
					rc = PI_ERR_NOMEM;
					goto out;
				}
				ents = p;
				cap = ncap;
			}
			ents[n].name = strdup(name);
			if (ents[n].name == NULL) {
				rc = PI_ERR_NOMEM;
				goto out;
			}
			ents[n].folder = !json_object_object_get_ex(e, "id", &id) ||
			    json_object_is_type(id, json_type_null);
			{
				const char *t = supa_json_str(e, "updated_at");

				ents[n].mtime = supa_parse_time(t != NULL ? t :
				    supa_json_str(e, "created_at"));
			}
			n++;
		}
		json_object_put(arr);
		arr = NULL;
		json_object_put(body);
		body = NULL;
		req.json = NULL;
		if (count < SUPA_LIST_LIMIT) {
			rc = 0;
			goto out;
		}
	}
	log_error("storage: supabase list %s: more than %d pages", req.what,
	    SUPA_LIST_MAX_PAGES);
out:
	if (arr != NULL)
		json_object_put(arr);
	if (body != NULL)
		json_object_put(body);
	shttp_buf_free(&resp.body);
	if (rc != 0) {
		supa_entries_free(ents, n);
		ents = NULL;
		n = 0;
	}
	*out = ents;
	*nout = n;
	return rc;
}

/* Calls cb for every object below dir; returns 0, 1 when cb stopped, or a
 * pi_err. */
static int
supa_walk(struct supa *s, const char *dir, storage_list_cb cb, void *ud, int depth)
{
	struct supa_entry *ents = NULL;
	size_t n = 0;
	int rc;

	if (depth > SUPA_LIST_DEPTH)
		return 0;
	rc = supa_list_level(s, dir, &ents, &n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char full[SUPA_MAX_KEY + 1];

		if (ents[i].name[0] == '.')
			continue;   /* placeholders such as .emptyFolderPlaceholder */
		if ((size_t)snprintf(full, sizeof(full), "%s%s%s", dir,
		    dir[0] != '\0' ? "/" : "", ents[i].name) >= sizeof(full))
			continue;
		if (ents[i].folder)
			rc = supa_walk(s, full, cb, ud, depth + 1);
		else if (cb(ud, full, ents[i].mtime) != 0)
			rc = 1;
	}
	supa_entries_free(ents, n);
	return rc;
}

/* list: every object below prefix, folder by folder (Supabase lists one
 * level per call). cb gets full keys. */
static int
supa_list(struct storage *st, const char *prefix, storage_list_cb cb, void *ud)
{
	char dir[SUPA_MAX_KEY + 1];
	size_t n = strlen(prefix);
	int rc;

	if (n >= sizeof(dir))
		return PI_ERR_INVALID;
	memcpy(dir, prefix, n + 1);
	while (n > 0 && dir[n - 1] == '/')
		dir[--n] = '\0';
	if (n > 0 && !supa_key_ok(dir))
		return PI_ERR_INVALID;
	rc = supa_walk(st->impl, dir, cb, ud, 0);
	return rc < 0 ? rc : 0;
}

/* An HS256 token with the claims supabase/storage verifies (see the file
 * comment). Returns a malloc'd token, or NULL. */
static char *
supa_sign_token(struct supa *s, const char *url_claim, int upload, int64_t expires)
{
	jwt_t *jwt = NULL;
	char *tok = NULL, *res = NULL;
	size_t klen = strlen(s->jwt_secret);
	time_t now = time(NULL);

	if (now == (time_t)-1 || klen == 0 || klen > INT_MAX || jwt_new(&jwt) != 0)
		goto out;
	if (jwt_add_grant(jwt, "url", url_claim) != 0 ||
	    (upload && jwt_add_grant_bool(jwt, "upsert", 0) != 0) ||
	    jwt_add_grant(jwt, "scope", upload ? "upload" : "download") != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)(now + expires)) != 0)
		goto out;
	if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)s->jwt_secret,
	    (int)klen) != 0)
		goto out;
	tok = jwt_encode_str(jwt);
	if (tok != NULL)
		res = strdup(tok);
out:
	if (tok != NULL) {
		explicit_bzero(tok, strlen(tok));
		free(tok);
	}
	if (jwt != NULL)
		jwt_free(jwt);
	return res;
}

/* The URL of a token: base/object/[upload/]sign/<bucket>/<key>?token=…,
 * the key percent-encoded (the server compares the token's url claim with
 * the decoded path). Returns a malloc'd URL, or NULL. */
static char *
supa_signed_url(struct supa *s, const char *key, int upload, const char *tok)
{
	char enc[SUPA_MAX_KEY * 3 + 1];

	for (const char *p = tok; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return NULL;
	if (tok[0] == '\0' || sigv4_uri_encode(key, strlen(key), 1, enc, sizeof(enc)) < 0)
		return NULL;
	return supa_strdupf("%s/object/%ssign/%s/%s?token=%s", s->base,
	    upload ? "upload/" : "", s->bucket_enc, enc, tok);
}

/* A signed URL through the Storage API's sign endpoints: the server makes
 * the token, the URL around it is ours (the same form as a local one). */
static char *
supa_presign_api(struct supa *s, const char *key, int upload, int64_t expires)
{
	struct supa_req req;
	struct supa_resp resp = { 0 };
	json_object *o = NULL;
	char body[64], enc[SUPA_MAX_KEY * 3 + 1], tok[4096];
	const char *rel, *t;
	char *url = NULL;
	size_t tl;
	int rc;

	supa_req_init(&req, "POST", key);
	if (supa_uri(key, enc, sizeof(enc)) != 0) {
		log_error("storage: supabase sign %s: the Storage API cannot sign "
		    "a key with '?' or '#'", key);
		goto out;
	}
	if ((size_t)snprintf(req.path, sizeof(req.path), "/object/%ssign/%s/%s",
	    upload ? "upload/" : "", s->bucket_enc, enc) >= sizeof(req.path))
		goto out;
	if (upload) {
		req.json = "{}";
		req.upsert_false = 1;
	} else {
		if ((size_t)snprintf(body, sizeof(body), "{\"expiresIn\":%lld}",
		    (long long)expires) >= sizeof(body))
			goto out;
		req.json = body;
	}
	rc = supa_perform(s, &req, &resp, SUPA_TRIES, NULL, NULL);
	if (rc != 0) {
		supa_log_failure(s, &req, &resp);
		goto out;
	}
	if (supa_result(s, &req, &resp) != 0) {
		if (resp.status == 404 || resp.status == 409)
			supa_log_failure(s, &req, &resp);
		goto out;
	}
	o = supa_json_parse(&resp.body);
	rel = supa_json_str(o, upload ? "url" : "signedURL");
	if (rel == NULL)
		rel = supa_json_str(o, "signedUrl");
	t = rel != NULL ? strstr(rel, "?token=") : NULL;
	if (t == NULL) {
		log_error("storage: supabase sign %s: no URL in the answer", key);
		goto out;
	}
	t += strlen("?token=");
	tl = strcspn(t, "&#");
	if (tl == 0 || tl >= sizeof(tok))
		goto out;
	memcpy(tok, t, tl);
	tok[tl] = '\0';
	url = supa_signed_url(s, key, upload, tok);
	explicit_bzero(tok, sizeof(tok));
	if (url == NULL)
		log_error("storage: supabase sign %s: a malformed token in the answer", key);
out:
	if (o != NULL)
		json_object_put(o);
	if (resp.body.p != NULL)
		explicit_bzero(resp.body.p, resp.body.len);
	shttp_buf_free(&resp.body);
	return url;
}

/* presign: a signed download (GET) or upload (PUT) URL for key, made
 * locally when supabase_jwt_secret is set, else by the Storage API.
 * content_type is not part of a Supabase signature. malloc'd, or NULL. */
static char *
supa_presign(struct storage *st, const char *method, const char *key,
    const char *content_type, int64_t expires)
{
	struct supa *s = st->impl;
	char claim[SUPA_MAX_KEY + 256];
	char *tok, *url;
	int upload;

	(void)content_type;   /* Supabase signatures do not cover it */
	if (strcmp(method, "GET") == 0)
		upload = 0;
	else if (strcmp(method, "PUT") == 0)
		upload = 1;
	else
		return NULL;
	if (expires < 1 || expires > SUPA_MAX_EXPIRES || !supa_key_ok(key))
		return NULL;
	if (s->jwt_secret[0] == '\0')
		return supa_presign_api(s, key, upload, expires);
	if ((size_t)snprintf(claim, sizeof(claim), "%s/%s", s->bucket, key) >=
	    sizeof(claim))
		return NULL;
	tok = supa_sign_token(s, claim, upload, expires);
	if (tok == NULL) {
		log_error("storage: supabase sign %s: cannot make the token", key);
		return NULL;
	}
	url = supa_signed_url(s, key, upload, tok);
	explicit_bzero(tok, strlen(tok));
	free(tok);
	return url;
}

/* check: the bucket answers to the service key (one attempt, no retry:
 * it says whether storage is usable now). */
static int
supa_check(struct storage *st)
{
	struct supa *s = st->impl;
	struct supa_req req;
	struct supa_resp resp = { 0 };
	int rc;

	supa_req_init(&req, "GET", s->bucket);
	if ((size_t)snprintf(req.path, sizeof(req.path), "/bucket/%s",
	    s->bucket_enc) >= sizeof(req.path))
		return PI_ERR_STORAGE;
	rc = supa_perform_once(s, &req, &resp);
	if (rc != 0) {
		supa_log_failure(s, &req, &resp);
		rc = PI_ERR_STORAGE;
	} else if (supa_result(s, &req, &resp) != 0) {
		if (resp.status == 404 && !resp.bucket_missing)
			supa_log_failure(s, &req, &resp);
		rc = PI_ERR_STORAGE;
	}
	shttp_buf_free(&resp.body);
	return rc;
}

/* destroy: frees st->impl, wiping the copies of the service key. */
static void
supa_destroy(struct storage *st)
{
	struct supa *s = st->impl;

	if (s == NULL)
		return;
	if (s->curl != NULL) {
		curl_easy_cleanup(s->curl);
		curl_global_cleanup();
	}
	free(s->base);
	free(s->bucket);
	free(s->bucket_enc);
	supa_free_secret(s->hdr_auth);
	supa_free_secret(s->hdr_apikey);
	free(s);
	st->impl = NULL;
}

/* Checks the Supabase settings, builds the headers and the libcurl handle
 * of this worker. On failure nothing is left in st->impl. */
int
storage_supabase_init(struct storage *st, char *err, size_t errsz)
{
	const struct config *cfg = st->cfg;
	struct supa *s;
	char enc[256];
	size_t ul;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		(void)snprintf(err, errsz, "out of memory");
		return PI_ERR_NOMEM;
	}
	st->impl = s;
	ul = strlen(cfg->supabase_url);
	while (ul > 0 && cfg->supabase_url[ul - 1] == '/')
		ul--;
	if ((strncmp(cfg->supabase_url, "http://", 7) != 0 &&
	    strncmp(cfg->supabase_url, "https://", 8) != 0) ||
	    !supa_token_ok(cfg->supabase_url) || ul > 1024 ||
	    strchr(cfg->supabase_url, '?') != NULL || strchr(cfg->supabase_url, '#') != NULL) {
		(void)snprintf(err, errsz, "supabase_url: must be an http:// or https:// URL");
		goto fail;
	}
	if (!supa_token_ok(cfg->supabase_service_key)) {
		(void)snprintf(err, errsz, "supabase_service_key: must be set, without spaces");
		goto fail;
	}
	if (cfg->storage_bucket[0] == '\0' || strlen(cfg->storage_bucket) > 100 ||
	    strchr(cfg->storage_bucket, '/') != NULL ||
	    sigv4_uri_encode(cfg->storage_bucket, strlen(cfg->storage_bucket), 0, enc, sizeof(enc)) < 0) {
		(void)snprintf(err, errsz, "storage_bucket: must be a Supabase bucket name");
		goto fail;
	}
	s->jwt_secret = cfg->supabase_jwt_secret;
	s->timeout = cfg->storage_timeout > 0 && cfg->storage_timeout < LONG_MAX ?
	    (long)cfg->storage_timeout : 30L;
	s->base = supa_strdupf("%.*s/storage/v1", (int)ul, cfg->supabase_url);
	s->bucket = strdup(cfg->storage_bucket);
	s->bucket_enc = strdup(enc);
	s->hdr_auth = supa_strdupf("Authorization: Bearer %s", cfg->supabase_service_key);
	s->hdr_apikey = supa_strdupf("apikey: %s", cfg->supabase_service_key);
	if (s->base == NULL || s->bucket == NULL || s->bucket_enc == NULL ||
	    s->hdr_auth == NULL || s->hdr_apikey == NULL) {
		(void)snprintf(err, errsz, "out of memory");
		goto fail;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		(void)snprintf(err, errsz, "storage: libcurl cannot start");
		goto fail;
	}
	s->curl = curl_easy_init();
	if (s->curl == NULL) {
		curl_global_cleanup();
		(void)snprintf(err, errsz, "storage: libcurl cannot start");
		goto fail;
	}
	return 0;
fail:
	supa_destroy(st);
	return PI_ERR_STORAGE;
}

/*
 * url_expires: the exp claim of the token in a signed URL. A self-hosted
 * Storage server signs an upload URL for its own lifetime
 * (UPLOAD_SIGNED_URL_EXPIRATION_TIME, 60 s by default; the hosted service
 * 2 h) whatever was asked, so the answer's expiresIn is read from the
 * token. It is the server's own token, handed to the client as it is, so
 * it is decoded, not verified. 0 with *exp, or PI_ERR_NOT_FOUND.
 */
static int
supa_url_expires(const char *url, int64_t *exp)
{
	const char *t = strstr(url, "?token="), *dot1, *dot2;
	unsigned char b64[2048], raw[2048];
	json_object *o = NULL, *e;
	size_t n, padded;
	int len, rc = PI_ERR_NOT_FOUND;

	if (t == NULL)
		return PI_ERR_NOT_FOUND;
	t += strlen("?token=");
	dot1 = strchr(t, '.');
	dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
	if (dot2 == NULL)
		return PI_ERR_NOT_FOUND;
	n = (size_t)(dot2 - dot1 - 1);
	padded = (n + 3) / 4 * 4;
	if (n == 0 || padded >= sizeof(b64))
		return PI_ERR_NOT_FOUND;
	/* base64url without padding -> base64 for EVP_DecodeBlock. */
	for (size_t i = 0; i < padded; i++) {
		char ch = i < n ? dot1[1 + i] : '=';

		b64[i] = (unsigned char)(ch == '-' ? '+' : ch == '_' ? '/' : ch);
	}
	b64[padded] = '\0';
	len = EVP_DecodeBlock(raw, b64, (int)padded);
	if (len <= 0)
		return PI_ERR_NOT_FOUND;
	len -= (int)(padded - n);   /* the padding decodes to NUL bytes */
	{
		struct shttp_buf b = { .p = (char *)raw, .len = (size_t)len };

		o = supa_json_parse(&b);
	}
	if (o != NULL && json_object_object_get_ex(o, "exp", &e) &&
	    json_object_is_type(e, json_type_int) && json_object_get_int64(e) > 0) {
		*exp = json_object_get_int64(e);
		rc = 0;
	}
	if (o != NULL)
		json_object_put(o);
	return rc;
}

const struct storage_ops storage_supabase_ops = {
	.name = "supabase",
	.put_file = supa_put_file,
	.stat = supa_stat,
	.fetch = supa_fetch,
	.del = supa_del,
	.list = supa_list,
	.presign = supa_presign,
	.url_expires = supa_url_expires,
	.stream = supa_stream,
	.check = supa_check,
	.destroy = supa_destroy,
};
