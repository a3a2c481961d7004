/* http.c — requests in, responses out, over libfcgi.
 *
 * Design notes:
 * - Routing uses the raw path of REQUEST_URI, not a decoded SCRIPT_NAME or
 *   PATH_INFO: nginx, Apache mod_proxy_fcgi and mod_fcgid disagree on how
 *   they split and decode those, but all pass REQUEST_URI verbatim. Ids in
 *   paths must be UUIDs, so nothing percent-encoded can ever reach storage.
 * - The query string is decoded once into an array of at most
 *   HTTP_MAX_PARAMS pairs, bounded by HTTP_QUERY_MAX; anything odd marks the
 *   query invalid and the handler answers 400.
 * - A body nginx has already written to a file (REQUEST_BODY_FILE) is read
 *   from that file, but only when it lies directly in the configured
 *   body_file_dir: a FastCGI parameter is trusted no further than the
 *   directory the operator named.
 * - Errors have exactly one shape and one mapping from internal codes
 *   (http_error_for); a 5xx body never says more than its code's message.
 */
#include "http.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common.h"

static const char *
status_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

/* Decodes a query component (%XX, '+' = space) into arena memory. NULL on a
 * bad escape, an encoded NUL or a result that is not well-formed UTF-8. */
static const char *
query_decode(struct arena *a, const char *s, size_t n)
{
	char *out = arena_alloc(a, n + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*o++ = ' ';
		} else if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return NULL;
			hi = pi_hexval((unsigned char)s[i + 1]);
			lo = pi_hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return NULL;
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	/* %00 is refused above; malformed UTF-8 is refused here. */
	if (!val_utf8(out, (size_t)(o - out)))
		return NULL;
	return out;
}

int
http_parse_query(struct arena *a, const char *query, struct http_param *out,
    int max, int *n)
{
	const char *q = query, *end;

	*n = 0;
	if (strlen(q) > HTTP_QUERY_MAX)
		return PI_ERR_INVALID;
	while (*q != '\0') {
		const char *eq, *amp = strchr(q, '&');

		end = amp != NULL ? amp : q + strlen(q);
		if (end > q) {
			if (*n == max)
				return PI_ERR_INVALID;
			eq = memchr(q, '=', (size_t)(end - q));
			out[*n].name = query_decode(a, q,
			    (size_t)((eq != NULL ? eq : end) - q));
			out[*n].value = eq != NULL ?
			    query_decode(a, eq + 1, (size_t)(end - eq - 1)) : "";
			/* On failure out[*n] (not counted) keeps the name
			 * when only the value was bad: http_request_init()
			 * names the parameter in its answer. */
			if (out[*n].name == NULL || out[*n].value == NULL)
				return PI_ERR_INVALID;
			(*n)++;
		}
		q = *end == '\0' ? end : end + 1;
	}
	return 0;
}

static void
new_request_id(char out[33])
{
	static unsigned long long counter;
	unsigned char raw[16];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
		/* Unique enough within a worker; never fails the request. */
		unsigned long long v = ++counter ^ ((unsigned long long)getpid() << 40);

		memcpy(raw, &v, sizeof(v));
		memset(raw + sizeof(v), 0, sizeof(raw) - sizeof(v));
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		(void)snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* Opens nginx's body file if it lies directly inside dir. */
static int
open_body_file(const char *path, const char *dir)
{
	size_t dn = strlen(dir);

	if (dn == 0 || strncmp(path, dir, dn) != 0 || path[dn] != '/' ||
	    strchr(path + dn + 1, '/') != NULL || strstr(path, "..") != NULL)
		return -1;
	return open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

int
http_request_init(struct http_request *r, FCGX_Request *fcgx,
    struct arena *arena, const char *body_file_dir)
{
	const char *uri, *q, *cl, *bf;

	memset(r, 0, sizeof(*r));
	r->fcgx = fcgx;
	r->arena = arena;
	r->body_fd = -1;
	r->content_length = -1;
	(void)clock_gettime(CLOCK_MONOTONIC, &r->started);
	new_request_id(r->request_id);

	r->method = http_param(r, "REQUEST_METHOD");
	if (r->method == NULL)
		r->method = "";
	r->is_head = strcmp(r->method, "HEAD") == 0;
	uri = http_param(r, "REQUEST_URI");
	if (uri == NULL)
		uri = http_param(r, "DOCUMENT_URI");
	if (uri == NULL)
		uri = "";
	q = strchr(uri, '?');
	r->path = q != NULL ? arena_strndup(arena, uri, (size_t)(q - uri)) : uri;
	r->query = q != NULL ? q + 1 : "";
	if (r->path == NULL)
		return PI_ERR_NOMEM;
	if (http_parse_query(arena, r->query, r->params, HTTP_MAX_PARAMS,
	    &r->nparams) != 0) {
		r->query_invalid = 1;
		if (r->nparams < HTTP_MAX_PARAMS &&
		    r->params[r->nparams].value == NULL)
			r->query_bad = r->params[r->nparams].name;
	}
	r->content_type = http_param(r, "CONTENT_TYPE");
	if (r->content_type == NULL)
		r->content_type = "";
	cl = http_param(r, "CONTENT_LENGTH");
	if (cl != NULL && cl[0] != '\0') {
		char *end;

		errno = 0;
		r->content_length = strtoll(cl, &end, 10);
		if (errno != 0 || *end != '\0' || r->content_length < 0)
			return PI_ERR_INVALID;
	}
	r->remote_addr = http_param(r, "REMOTE_ADDR");
	if (r->remote_addr == NULL)
		r->remote_addr = "";
	bf = http_param(r, "REQUEST_BODY_FILE");
	if (bf != NULL && bf[0] != '\0') {
		r->body_fd = open_body_file(bf, body_file_dir != NULL ? body_file_dir : "");
		if (r->body_fd < 0)
			return PI_ERR_INVALID;
		r->body_file = bf;
	}
	return 0;
}

/*
 * 1 if buf holds nothing outside its strings that RFC 8259 does not allow:
 * white space, the structural characters, numbers and the three literals.
 * json-c 0.16's JSON_TOKENER_STRICT still takes single-quoted strings and
 * NaN/Infinity; this refuses them before the tokenizer sees them (the
 * tokenizer checks the order of what is left). Pure.
 */
static int
json_bytes_strict(const char *buf, size_t len)
{
	int in_string = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = 0;
			continue;
		}
		if (c == '"') {
			in_string = 1;
			continue;
		}
		if (strchr(" \t\r\n{}[],:0123456789+-.eE" "truefalsn", c) == NULL ||
		    c == '\0')
			return 0;
	}
	return 1;
}

json_object *
http_parse_json_object(const char *buf, size_t len)
{
	json_tokener *tok;
	json_object *obj;

	if (len > INT32_MAX || !json_bytes_strict(buf, len))
		return NULL;
	tok = json_tokener_new_ex(HTTP_JSON_DEPTH);
	if (tok == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len ||
	    !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

void
http_request_done(struct http_request *r)
{
	if (r->body_fd >= 0)
		close(r->body_fd);
	r->body_fd = -1;
}

const char *
http_param(const struct http_request *r, const char *name)
{
	return FCGX_GetParam(name, r->fcgx->envp);
}

const char *
http_query(const struct http_request *r, const char *name)
{
	for (int i = 0; i < r->nparams; i++)
		if (strcmp(r->params[i].name, name) == 0)
			return r->params[i].value;
	return NULL;
}

ssize_t
http_body_read(struct http_request *r, void *buf, size_t n)
{
	ssize_t got;

	if (n > (size_t)INT32_MAX)
		n = (size_t)INT32_MAX;
	if (r->body_fd >= 0) {
		do
			got = read(r->body_fd, buf, n);
		while (got < 0 && errno == EINTR);
	} else {
		got = FCGX_GetStr(buf, (int)n, r->fcgx->in);
		if (got == 0 && FCGX_GetError(r->fcgx->in) != 0)
			return -1;
	}
	if (got > 0)
		r->body_read += got;
	return got;
}

int
http_begin(struct http_request *r, int status)
{
	if (r->headers_done)
		return PI_ERR_INTERNAL;
	r->status = status;
	if (FCGX_FPrintF(r->fcgx->out, "Status: %d %s\r\nX-Request-Id: %s\r\n",
	    status, status_reason(status), r->request_id) < 0)
		return PI_ERR_IO;
	return 0;
}

int
http_header(struct http_request *r, const char *name, const char *value)
{
	/* Values are built by polaimg; still, never let one split a header. */
	if (strpbrk(value, "\r\n") != NULL || strpbrk(name, "\r\n:") != NULL)
		return PI_ERR_INTERNAL;
	if (FCGX_FPrintF(r->fcgx->out, "%s: %s\r\n", name, value) < 0)
		return PI_ERR_IO;
	return 0;
}

int
http_headerf(struct http_request *r, const char *name, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return PI_ERR_INTERNAL;
	return http_header(r, name, buf);
}

int
http_end_headers(struct http_request *r)
{
	r->headers_done = 1;
	return FCGX_PutS("\r\n", r->fcgx->out) < 0 ? PI_ERR_IO : 0;
}

int
http_write(struct http_request *r, const void *buf, size_t n)
{
	const char *p = buf;

	if (r->is_head)
		return 0;
	while (n > 0) {
		int chunk = n > 1 << 20 ? 1 << 20 : (int)n;

		if (FCGX_PutStr(p, chunk, r->fcgx->out) != chunk)
			return PI_ERR_IO;
		p += chunk;
		n -= (size_t)chunk;
		r->bytes_out += chunk;
	}
	return 0;
}

int
http_json(struct http_request *r, int status, json_object *obj)
{
	return http_json_hdr(r, status, obj, NULL, NULL);
}

static int
json_response(struct http_request *r, int status, const char *body,
    size_t len, const char *hname, const char *hvalue)
{
	if (http_begin(r, status) != 0 ||
	    http_header(r, "Content-Type", "application/json; charset=utf-8") != 0 ||
	    http_headerf(r, "Content-Length", "%zu", len) != 0 ||
	    http_header(r, "Cache-Control", "no-store") != 0 ||
	    http_header(r, "X-Content-Type-Options", "nosniff") != 0 ||
	    (hname != NULL && http_header(r, hname, hvalue) != 0) ||
	    http_end_headers(r) != 0 || http_write(r, body, len) != 0)
		return PI_ERR_IO;
	return 0;
}

int
http_json_hdr(struct http_request *r, int status, json_object *obj,
    const char *hname, const char *hvalue)
{
	const char *body;
	size_t len;
	int rc = PI_ERR_NOMEM;

	if (obj == NULL)
		return http_error(r, 500, "INTERNAL", "Internal server error");
	body = json_object_to_json_string_length(obj, HTTP_JSON_FLAGS, &len);
	if (body != NULL)
		rc = json_response(r, status, body, len, hname, hvalue);
	json_object_put(obj);
	return rc;
}

int
http_json_bytes(struct http_request *r, int status, const char *body,
    size_t len)
{
	return json_response(r, status, body, len, NULL, NULL);
}

static json_object *
error_body(const struct http_request *r, const char *code, const char *message)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	if (json_object_object_add(o, "error", json_object_new_string(message)) != 0 ||
	    json_object_object_add(o, "code", json_object_new_string(code)) != 0 ||
	    json_object_object_add(o, "requestId",
	    json_object_new_string(r->request_id)) != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int
http_error(struct http_request *r, int status, const char *code,
    const char *message)
{
	return http_json(r, status, error_body(r, code, message));
}

int
http_error_field(struct http_request *r, int status, const char *code,
    const char *message, const char *key, json_object *value)
{
	json_object *o = error_body(r, code, message);

	if (o == NULL) {
		json_object_put(value);
		return http_json(r, 500, NULL);
	}
	json_object_object_add(o, key, value);
	return http_json(r, status, o);
}

int
http_error_hdr(struct http_request *r, int status, const char *code,
    const char *message, const char *hname, const char *hvalue)
{
	return http_json_hdr(r, status, error_body(r, code, message), hname,
	    hvalue);
}

json_object *
http_detail_add(json_object *details, const char *field, const char *message)
{
	json_object *d;

	if (details == NULL && (details = json_object_new_array()) == NULL)
		return NULL;
	d = json_object_new_object();
	if (d == NULL)
		return details;
	json_object_object_add(d, "field", json_object_new_string(field));
	json_object_object_add(d, "message", json_object_new_string(message));
	json_object_array_add(details, d);
	return details;
}

int
http_validation_error(struct http_request *r, json_object *details)
{
	json_object *o = error_body(r, "VALIDATION_FAILED", "Validation failed");

	if (o == NULL) {
		json_object_put(details);
		return http_json(r, 500, NULL);
	}
	json_object_object_add(o, "details",
	    details != NULL ? details : json_object_new_array());
	return http_json(r, 400, o);
}

int
http_error_for(struct http_request *r, int err)
{
	switch (err) {
	case PI_ERR_INVALID:
		return http_validation_error(r, http_detail_add(NULL, "body",
		    "malformed request"));
	case PI_ERR_TOO_LARGE:
		return http_error(r, 413, "PAYLOAD_TOO_LARGE", "Payload too large");
	case PI_ERR_UNSUPPORTED:
		return http_error(r, 415, "UNSUPPORTED_MEDIA_TYPE",
		    "Unsupported media type: JPEG, PNG, TIFF, WebP or DICOM required");
	case PI_ERR_UNPROCESSABLE:
		return http_error(r, 422, "UNPROCESSABLE_IMAGE",
		    "The image could not be processed");
	case PI_ERR_STORAGE:
	case PI_ERR_STORAGE_FULL:
		return http_error(r, 503, "STORAGE_UNAVAILABLE",
		    "Storage unavailable");
	case PI_ERR_DB:
		return http_error(r, 503, "DATABASE_UNAVAILABLE",
		    "Database unavailable");
	case PI_ERR_NOT_FOUND:
		return http_error(r, 404, "NOT_FOUND", "Not found");
	case PI_ERR_FORBIDDEN:
	case PI_ERR_EXPIRED:
		return http_error(r, 403, "FORBIDDEN", "Access denied");
	case PI_ERR_CONFLICT:
	case PI_ERR_EXISTS:
		return http_error(r, 409, "CONFLICT", "Conflict");
	default:
		return http_error(r, 500, "INTERNAL", "Internal server error");
	}
}

long
http_elapsed_ms(const struct http_request *r)
{
	struct timespec now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)((now.tv_sec - r->started.tv_sec) * 1000 +
	    (now.tv_nsec - r->started.tv_nsec) / 1000000);
}

/* Parses a non-negative decimal of at most 18 digits; advances *p. */
static int
parse_pos(const char **p, long long *out)
{
	long long v = 0;
	int digits = 0;

	while (**p >= '0' && **p <= '9') {
		if (++digits > 18)
			return 0;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return digits > 0;
}

enum http_range
http_parse_range(const char *h, long long size, long long *start,
    long long *end)
{
	const char *p;
	long long a, b;

	if (h == NULL || strncmp(h, "bytes=", 6) != 0)
		return HTTP_RANGE_NONE;
	p = h + 6;
	while (*p == ' ')
		p++;
	if (strchr(p, ',') != NULL)
		return HTTP_RANGE_NONE; /* several ranges: send the whole object */
	if (*p == '-') {
		p++;
		if (!parse_pos(&p, &b))
			return HTTP_RANGE_NONE;
		while (*p == ' ')
			p++;
		if (*p != '\0')
			return HTTP_RANGE_NONE;
		if (b == 0 || size == 0)
			return HTTP_RANGE_UNSATISFIABLE;
		*start = b >= size ? 0 : size - b;
		*end = size - 1;
		return HTTP_RANGE_OK;
	}
	if (!parse_pos(&p, &a) || *p != '-')
		return HTTP_RANGE_NONE;
	p++;
	if (*p == '\0' || *p == ' ') {
		b = size - 1;
	} else if (!parse_pos(&p, &b) || b < a) {
		return HTTP_RANGE_NONE;
	}
	while (*p == ' ')
		p++;
	if (*p != '\0')
		return HTTP_RANGE_NONE;
	if (a >= size)
		return HTTP_RANGE_UNSATISFIABLE;
	if (b >= size)
		b = size - 1;
	*start = a;
	*end = b;
	return HTTP_RANGE_OK;
}

bool
http_etag_match(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = inm;

	if (inm == NULL)
		return false;
	while (*p != '\0') {
		const char *q;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (*p != '"')
			return false;
		q = strchr(p + 1, '"');
		if (q == NULL)
			return false;
		if ((size_t)(q - p + 1) == elen && strncmp(p, etag, elen) == 0)
			return true;
		p = q + 1;
	}
	return false;
}

void
http_body_drain(struct http_request *r, long long limit)
{
	char buf[65536];
	long long total = 0;
	ssize_t n;

	if (r->body_fd >= 0)
		return;   /* a handed-over file needs no draining */
	while (total < limit && (n = http_body_read(r, buf, sizeof(buf))) > 0)
		total += n;
}
