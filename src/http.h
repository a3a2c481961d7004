/* http.h — one FastCGI request: parsed input, and the response writer.
 *
 * The request is read from the FastCGI parameters (REQUEST_METHOD,
 * REQUEST_URI, CONTENT_TYPE, HTTP_* …) and the body stream (or the file nginx
 * hands over). Every response goes through this module: JSON bodies, the
 * documented error shape, offload headers, streamed bytes. All strings it
 * returns live in the request arena.
 */
#ifndef POLAIMG_HTTP_H
#define POLAIMG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "arena.h"

#define HTTP_QUERY_MAX 4096      /* longest query string accepted */
#define HTTP_MAX_PARAMS 32
#define HTTP_JSON_DEPTH 32       /* deepest nesting of a JSON body */

struct http_param {
	const char *name;
	const char *value;
};

struct http_request {
	FCGX_Request *fcgx;
	struct arena *arena;
	const char *method;        /* "GET" …; HEAD is kept as "HEAD" */
	int is_head;
	const char *path;          /* raw path of REQUEST_URI, without the query */
	const char *query;         /* raw query string, "" if none */
	struct http_param params[HTTP_MAX_PARAMS];
	int nparams;
	int query_invalid;         /* too long, too many params or bad escapes */
	const char *query_bad;     /* the parameter whose value was refused (a
	                            * NUL or malformed UTF-8), or NULL */
	const char *content_type;  /* "" if none */
	long long content_length;  /* -1 if absent */
	const char *remote_addr;
	char request_id[33];
	const char *body_file;     /* REQUEST_BODY_FILE handed over by nginx, or NULL */
	int body_fd;               /* open body_file, or -1 */
	long long body_read;       /* bytes consumed so far */
	/* response state */
	int status;
	int headers_done;
	long long bytes_out;
	struct timespec started;
};

/* Fills r from the FastCGI request. body_file_dir is the configured
 * directory of handed-over bodies ("" = refuse them). Returns 0, or
 * PI_ERR_INVALID or PI_ERR_NOMEM (the request is then answered with 400 by
 * the caller). */
int http_request_init(struct http_request *r, FCGX_Request *fcgx,
    struct arena *arena, const char *body_file_dir);
/* Decodes a raw query string ("a=1&b=%20x", '+' = space) into at most max
 * pairs in out, strings in arena memory; *n is the number decoded. Returns
 * 0, or PI_ERR_INVALID when the query is longer than HTTP_QUERY_MAX, has more than max
 * pairs, a bad %-escape, an encoded NUL or malformed UTF-8 (out[0..*n)
 * stay valid; out[*n].name is the pair's name when only its value was bad
 * and *n < max). Pure. */
int http_parse_query(struct arena *a, const char *query, struct http_param *out,
    int max, int *n);
/* Parses buf (len bytes) as exactly one JSON object: strict JSON, valid
 * UTF-8, nesting at most HTTP_JSON_DEPTH, nothing after it. Returns the
 * object (the caller puts it) or NULL. Pure. */
json_object *http_parse_json_object(const char *buf, size_t len);
/* Closes what the request opened (the body file). */
void http_request_done(struct http_request *r);

/* A FastCGI parameter ("HTTP_AUTHORIZATION") or NULL. */
const char *http_param(const struct http_request *r, const char *name);
/* The first query parameter called name, decoded, or NULL. */
const char *http_query(const struct http_request *r, const char *name);

/* Reads up to n body bytes; returns the count, 0 at the end, -1 on error. */
ssize_t http_body_read(struct http_request *r, void *buf, size_t n);

/* Response, piecewise: status line, headers, then the body. X-Request-Id is
 * added by http_begin. Each returns 0, PI_ERR_IO when the client stream
 * fails, or PI_ERR_INTERNAL for polaimg's own mistake (headers begun twice,
 * a CR or LF in a header, a value over 2 KiB). The JSON and error answers
 * below return the same, or PI_ERR_NOMEM when obj could not be
 * serialized. */
int http_begin(struct http_request *r, int status);
int http_header(struct http_request *r, const char *name, const char *value);
int http_headerf(struct http_request *r, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int http_end_headers(struct http_request *r);
int http_write(struct http_request *r, const void *buf, size_t n);

/* A complete JSON response; takes ownership of obj (put). */
int http_json(struct http_request *r, int status, json_object *obj);
/* The same answer from JSON text already serialized with HTTP_JSON_FLAGS. */
int http_json_bytes(struct http_request *r, int status, const char *body,
    size_t len);
#define HTTP_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* The same with one more member of the body, key: value (value is
 * consumed, may be NULL for JSON null). */
int http_error_field(struct http_request *r, int status, const char *code,
    const char *message, const char *key, json_object *value);
/* The same with one extra header (hname NULL for none). */
int http_json_hdr(struct http_request *r, int status, json_object *obj,
    const char *hname, const char *hvalue);

/* The documented error body {"error","code","requestId"}. */
int http_error(struct http_request *r, int status, const char *code,
    const char *message);
/* The same with one extra header (Allow, WWW-Authenticate …). */
int http_error_hdr(struct http_request *r, int status, const char *code,
    const char *message, const char *hname, const char *hvalue);

/* What a Range header asks for; see http_parse_range(). */
enum http_range {
	HTTP_RANGE_UNSATISFIABLE = -1, /* no byte of the object: answer 416 */
	HTTP_RANGE_NONE = 0,           /* absent, malformed, several: send all */
	HTTP_RANGE_OK = 1              /* one satisfiable range */
};
/* Parses a Range header for an object of size bytes. Returns HTTP_RANGE_OK
 * with [*start, *end] (inclusive) for one satisfiable range,
 * HTTP_RANGE_NONE when the header should be ignored (absent, malformed,
 * several ranges: send everything), HTTP_RANGE_UNSATISFIABLE when it is
 * unsatisfiable (416); start and end are written only for HTTP_RANGE_OK.
 * Pure. */
enum http_range http_parse_range(const char *h, long long size, long long *start,
    long long *end);
/* Whether an If-None-Match header value matches the strong etag (quoted),
 * with weak comparison as RFC 9110 requires for If-None-Match. Pure. */
bool http_etag_match(const char *inm, const char *etag);
/* Reads and discards the rest of the request body (so the web server is
 * never cut off mid-send); bounded by limit bytes. */
void http_body_drain(struct http_request *r, long long limit);
/* 400 VALIDATION_FAILED with details [{field, message}…]; takes details. */
int http_validation_error(struct http_request *r, json_object *details);
/* Adds {"field": f, "message": m} to a details array (created if NULL). */
json_object *http_detail_add(json_object *details, const char *field,
    const char *message);
/* Answers the error for a pi_err code (common.h). */
int http_error_for(struct http_request *r, int err);

/* Milliseconds since the request began. */
long http_elapsed_ms(const struct http_request *r);

#endif
