/* test_http.c — the pure parts of http.c, and request set-up, without a server.
 *
 * The query decoder (bounds, escapes, encoded NUL), the strict JSON body
 * parser, Range and If-None-Match parsing, the validation details, and
 * http_request_init() on a FastCGI request whose parameters are made here
 * (libfcgi reads them from envp): method, raw path and query, lengths, and
 * the rule that a body file handed over by nginx is opened only when it
 * lies directly in body_file_dir.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "common.h"
#include "http.h"
#include "tap.h"

static void
test_query(struct arena *a)
{
	struct http_param p[HTTP_MAX_PARAMS + 1];
	char big[HTTP_QUERY_MAX + 2], many[HTTP_MAX_PARAMS * 4 + 8];
	int n = -1;

	is_int(http_parse_query(a, "", p, HTTP_MAX_PARAMS, &n), 0, "empty query");
	is_int(n, 0, "no pairs");
	is_int(http_parse_query(a, "variant=thumb&limit=20", p, HTTP_MAX_PARAMS, &n),
	    0, "two pairs");
	is_int(n, 2, "two decoded");
	is_str(p[0].name, "variant", "first name");
	is_str(p[0].value, "thumb", "first value");
	is_str(p[1].name, "limit", "second name");
	is_str(p[1].value, "20", "second value");
	is_int(http_parse_query(a, "a=%41%2f%2F+b&c&&=v&d=", p, HTTP_MAX_PARAMS, &n),
	    0, "escapes, bare names, empty pairs");
	is_int(n, 4, "empty pairs skipped");
	is_str(p[0].value, "A// b", "%XX either case, + is space");
	is_str(p[1].name, "c", "bare name");
	is_str(p[1].value, "", "bare name has an empty value");
	is_str(p[2].name, "", "empty name kept");
	is_str(p[2].value, "v", "its value");
	is_str(p[3].value, "", "empty value");
	is_int(http_parse_query(a, "a=1=2", p, HTTP_MAX_PARAMS, &n), 0,
	    "second '=' belongs to the value");
	is_str(p[0].value, "1=2", "value 1=2");
	is_int(http_parse_query(a, "k%3Dx=y%26z", p, HTTP_MAX_PARAMS, &n), 0,
	    "encoded = and & are data");
	is_str(p[0].name, "k=x", "decoded name");
	is_str(p[0].value, "y&z", "decoded value");

	is_int(http_parse_query(a, "a=%00", p, HTTP_MAX_PARAMS, &n), PI_ERR_INVALID,
	    "encoded NUL refused");
	is_int(http_parse_query(a, "a%00=1", p, HTTP_MAX_PARAMS, &n), PI_ERR_INVALID,
	    "encoded NUL in a name refused");
	is_int(http_parse_query(a, "a=%4", p, HTTP_MAX_PARAMS, &n), PI_ERR_INVALID,
	    "short escape refused");
	is_int(http_parse_query(a, "a=%", p, HTTP_MAX_PARAMS, &n), PI_ERR_INVALID,
	    "bare % refused");
	is_int(http_parse_query(a, "a=%zz", p, HTTP_MAX_PARAMS, &n), PI_ERR_INVALID,
	    "non-hex escape refused");
	is_int(http_parse_query(a, "a=1&b=%g0", p, HTTP_MAX_PARAMS, &n), PI_ERR_INVALID,
	    "bad escape in the second pair refused");
	is_int(n, 1, "the pairs before the bad one stay valid");
	is_str(p[0].name, "a", "and readable");

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	is_int(http_parse_query(a, big, p, HTTP_MAX_PARAMS, &n), PI_ERR_INVALID,
	    "one byte over HTTP_QUERY_MAX refused");
	big[HTTP_QUERY_MAX] = '\0';
	is_int(http_parse_query(a, big, p, HTTP_MAX_PARAMS, &n), 0,
	    "exactly HTTP_QUERY_MAX accepted");
	is_int(n, 1, "one long bare name");

	many[0] = '\0';
	for (int i = 0; i < HTTP_MAX_PARAMS; i++)
		strcat(many, i == 0 ? "a=1" : "&a=1");
	is_int(http_parse_query(a, many, p, HTTP_MAX_PARAMS, &n), 0,
	    "HTTP_MAX_PARAMS pairs accepted");
	is_int(n, HTTP_MAX_PARAMS, "all decoded");
	strcat(many, "&b=2");
	is_int(http_parse_query(a, many, p, HTTP_MAX_PARAMS, &n), PI_ERR_INVALID,
	    "one pair more refused");
	is_int(n, HTTP_MAX_PARAMS, "out[] not overrun");
	is_int(http_parse_query(a, "a=1&b=2&c=3", p, 2, &n), PI_ERR_INVALID,
	    "max is the caller's bound");
}

static int
json_ok(const char *text)
{
	json_object *o = http_parse_json_object(text, strlen(text));
	int r = o != NULL;

	json_object_put(o);
	return r;
}

static void
test_json(void)
{
	char deep[200];
	size_t k = 0;
	json_object *o;

	ok(json_ok("{}"), "empty object");
	ok(json_ok("{\"fileName\":\"a.jpg\",\"n\":1,\"x\":[true,null]}"),
	    "object with members");
	ok(json_ok(" {\"a\":\"\\u00e9\"} "), "whitespace around, escapes");
	ok(json_ok("{\"a\":\"\xc3\xa9\"}"), "raw UTF-8");
	ok(!json_ok(""), "empty body refused");
	ok(!json_ok("[]"), "an array is no object");
	ok(!json_ok("\"s\""), "a string is no object");
	ok(!json_ok("1"), "a number is no object");
	ok(!json_ok("{} {}"), "two objects refused");
	ok(!json_ok("{}x"), "trailing junk refused");
	ok(!json_ok("{\"a\":1,}"), "trailing comma refused (strict)");
	/* json-c 0.16's JSON_TOKENER_STRICT still takes single-quoted strings
	 * and NaN/Infinity: http.c refuses them before the tokenizer. */
	ok(!json_ok("{'a':1}"), "single quotes refused (strict)");
	ok(!json_ok("{\"a\":NaN}"), "NaN refused (strict)");
	ok(!json_ok("{\"a\":Infinity}"), "Infinity refused (strict)");
	ok(!json_ok("{\"a\":-Infinity}"), "-Infinity refused (strict)");
	ok(!json_ok("{\"a\":nan}"), "nan refused (strict)");
	ok(json_ok("{\"a\":\"it's NaN \\\" {'x'}\",\"b\":[true,false,null,-1.5e3]}"),
	    "quotes, letters and escapes inside strings are text");
	ok(!json_ok("{\"a\":01}"), "leading zero refused (strict)");
	ok(!json_ok("{\"a\":-nan}"), "-nan refused");
	ok(!json_ok("{\"a\":\"\xff\"}"), "invalid UTF-8 refused");
	ok(!json_ok("{\"a\":\"\xc3\"}"), "truncated UTF-8 refused");
	ok(!json_ok("{\"a\":1"), "unterminated object refused");
	o = http_parse_json_object("{\"a\":1}\0{", 9);
	ok(o == NULL, "bytes after a NUL count: refused");
	json_object_put(o);
	o = http_parse_json_object("{\"a\":1}xyz", 7);
	ok(o != NULL, "only len bytes are read");
	json_object_put(o);

	/* HTTP_JSON_DEPTH levels of nesting are accepted, one more is not. */
	for (int i = 0; i < HTTP_JSON_DEPTH - 1; i++)
		k += (size_t)snprintf(deep + k, sizeof(deep) - k, "{\"a\":");
	k += (size_t)snprintf(deep + k, sizeof(deep) - k, "{}");
	for (int i = 0; i < HTTP_JSON_DEPTH - 1; i++)
		deep[k++] = '}';
	deep[k] = '\0';
	ok(json_ok(deep), "HTTP_JSON_DEPTH levels accepted");
	k = 0;
	for (int i = 0; i < HTTP_JSON_DEPTH; i++)
		k += (size_t)snprintf(deep + k, sizeof(deep) - k, "{\"a\":");
	k += (size_t)snprintf(deep + k, sizeof(deep) - k, "{}");
	for (int i = 0; i < HTTP_JSON_DEPTH; i++)
		deep[k++] = '}';
	deep[k] = '\0';
	ok(!json_ok(deep), "HTTP_JSON_DEPTH + 1 levels refused");
}

struct range_case {
	const char *h;
	long long size;
	int want;
	long long start, end;
};

static void
test_range(void)
{
	static const struct range_case cases[] = {
		{ "bytes=0-99", 1000, 1, 0, 99 },
		{ "bytes=0-0", 1000, 1, 0, 0 },
		{ "bytes=500-", 1000, 1, 500, 999 },
		{ "bytes=999-", 1000, 1, 999, 999 },
		{ "bytes=-100", 1000, 1, 900, 999 },
		{ "bytes=-5000", 1000, 1, 0, 999 },
		{ "bytes=900-5000", 1000, 1, 900, 999 },
		{ "bytes= 10-20 ", 1000, 1, 10, 20 },
		{ "bytes=1000-", 1000, -1, 0, 0 },
		{ "bytes=1000-2000", 1000, -1, 0, 0 },
		{ "bytes=-0", 1000, -1, 0, 0 },
		{ "bytes=0-", 0, -1, 0, 0 },
		{ "bytes=-1", 0, -1, 0, 0 },
		{ NULL, 1000, 0, 0, 0 },
		{ "", 1000, 0, 0, 0 },
		{ "bytes=", 1000, 0, 0, 0 },
		{ "bytes=-", 1000, 0, 0, 0 },
		{ "bytes=20-10", 1000, 0, 0, 0 },
		{ "bytes=0-1,5-6", 1000, 0, 0, 0 },
		{ "bytes=a-b", 1000, 0, 0, 0 },
		{ "bytes=1-2x", 1000, 0, 0, 0 },
		{ "bytes=+1-2", 1000, 0, 0, 0 },
		{ "bytes=--1", 1000, 0, 0, 0 },
		{ "Bytes=0-1", 1000, 0, 0, 0 },
		{ "items=0-1", 1000, 0, 0, 0 },
		{ "bytes=1234567890123456789-", 1000, 0, 0, 0 },
		{ "bytes=0-1234567890123456789", 1000, 0, 0, 0 },
		{ "bytes=123456789012345678-", LLONG_MAX, 1, 123456789012345678LL,
		    LLONG_MAX - 1 },
	};
	char what[160];

	for (size_t i = 0; i < PI_ARRAY_LEN(cases); i++) {
		const struct range_case *c = &cases[i];
		long long s = -7, e = -7;
		int r = http_parse_range(c->h, c->size, &s, &e);

		(void)snprintf(what, sizeof(what), "Range \"%s\" of %lld bytes: %d",
		    c->h != NULL ? c->h : "(none)", c->size, c->want);
		is_int(r, c->want, what);
		if (c->want == 1) {
			(void)snprintf(what, sizeof(what), "Range \"%s\": %lld-%lld",
			    c->h, c->start, c->end);
			ok(s == c->start && e == c->end, what);
		} else {
			(void)snprintf(what, sizeof(what), "Range \"%s\": start and "
			    "end untouched", c->h != NULL ? c->h : "(none)");
			ok(s == -7 && e == -7, what);
		}
	}
}

static void
test_etag(void)
{
	const char *e = "\"abc123\"";

	ok(http_etag_match("\"abc123\"", e), "exact");
	ok(http_etag_match("W/\"abc123\"", e), "weak comparison");
	ok(http_etag_match("\"x\", \"abc123\"", e), "in a list");
	ok(http_etag_match("\"x\",W/\"abc123\"", e), "weak in a list, no space");
	ok(http_etag_match("*", e), "*");
	ok(http_etag_match(" \t*", e), "* after whitespace");
	ok(!http_etag_match(NULL, e), "no header");
	ok(!http_etag_match("", e), "empty header");
	ok(!http_etag_match("\"abc12\"", e), "prefix");
	ok(!http_etag_match("\"abc1234\"", e), "longer");
	ok(!http_etag_match("\"ABC123\"", e), "case matters");
	ok(!http_etag_match("abc123", e), "unquoted");
	ok(!http_etag_match("\"abc123", e), "unterminated");
	ok(!http_etag_match("\"x\", abc123", e), "unquoted after a valid one");
	ok(!http_etag_match("w/\"abc123\"", e), "lower-case w/ is no weak prefix");
}

static void
test_details(void)
{
	json_object *d = http_detail_add(NULL, "caseId", "must be a UUID");
	json_object *x, *f, *m;

	ok(d != NULL && json_object_is_type(d, json_type_array),
	    "details: a new array");
	ok(http_detail_add(d, "file", "required") == d, "details: appended in place");
	is_int(json_object_array_length(d), 2, "two details");
	x = json_object_array_get_idx(d, 1);
	ok(json_object_object_get_ex(x, "field", &f) &&
	    json_object_object_get_ex(x, "message", &m), "field and message");
	is_str(json_object_get_string(f), "file", "field");
	is_str(json_object_get_string(m), "required", "message");
	is_int(json_object_object_length(x), 2, "nothing else");
	json_object_put(d);
}

/* A FastCGI request carrying only the parameters envp (libfcgi looks them
 * up there). */
static int
init(struct http_request *r, FCGX_Request *f, struct arena *a, char **envp,
    const char *bdir)
{
	memset(f, 0, sizeof(*f));
	f->envp = envp;
	f->ipcFd = -1;
	return http_request_init(r, f, a, bdir);
}

static void
test_request_init(struct arena *a)
{
	FCGX_Request f;
	struct http_request r;
	char dir[64], file[128], other[160], buf[16];
	int fd;
	char *env1[] = {
		"REQUEST_METHOD=HEAD", "REQUEST_URI=/api/v1/images/%2e%2e/x?variant=thumb&a=%20b",
		"CONTENT_TYPE=image/jpeg", "CONTENT_LENGTH=1234", "REMOTE_ADDR=10.0.0.9",
		"HTTP_AUTHORIZATION=Bearer t", NULL,
	};
	char *env2[] = { NULL };
	char *env3[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/p?a=%zz", NULL };
	char *env4[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/p", "CONTENT_LENGTH=-1", NULL };
	char *env5[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/p", "CONTENT_LENGTH=12x", NULL };
	char *env6[] = { "REQUEST_METHOD=GET", "DOCUMENT_URI=/doc", "CONTENT_LENGTH=", NULL };
	char bf_env[256];
	char *env7[] = { "REQUEST_METHOD=POST", "REQUEST_URI=/p", bf_env, NULL };

	is_int(init(&r, &f, a, env1, ""), 0, "request init");
	is_str(r.method, "HEAD", "method kept as HEAD");
	is_int(r.is_head, 1, "is_head");
	is_str(r.path, "/api/v1/images/%2e%2e/x", "raw path, not decoded, no query");
	is_str(r.query, "variant=thumb&a=%20b", "raw query");
	is_int(r.query_invalid, 0, "query valid");
	is_str(http_query(&r, "variant"), "thumb", "query parameter");
	is_str(http_query(&r, "a"), " b", "decoded query parameter");
	ok(http_query(&r, "nope") == NULL, "absent query parameter");
	is_str(r.content_type, "image/jpeg", "content type");
	is_int(r.content_length, 1234, "content length");
	is_str(r.remote_addr, "10.0.0.9", "remote address");
	is_str(http_param(&r, "HTTP_AUTHORIZATION"), "Bearer t", "FastCGI parameter");
	ok(http_param(&r, "HTTP_COOKIE") == NULL, "absent FastCGI parameter");
	is_int(strlen(r.request_id), 32, "request id: 32 characters");
	ok(strspn(r.request_id, "0123456789abcdef") == 32, "request id: hex");
	is_int(r.body_fd, -1, "no body file");
	ok(http_elapsed_ms(&r) >= 0, "elapsed time");
	{
		char first[33];

		memcpy(first, r.request_id, sizeof(first));
		is_int(init(&r, &f, a, env1, ""), 0, "request init again");
		ok(strcmp(first, r.request_id) != 0, "request ids differ");
	}
	http_request_done(&r);

	is_int(init(&r, &f, a, env2, ""), 0, "no parameters at all");
	is_str(r.method, "", "method empty");
	is_str(r.path, "", "path empty");
	is_str(r.query, "", "query empty");
	is_int(r.content_length, -1, "content length absent: -1");
	is_str(r.content_type, "", "content type empty");

	is_int(init(&r, &f, a, env3, ""), 0, "bad query: init succeeds");
	is_int(r.query_invalid, 1, "but the query is marked invalid");
	is_int(init(&r, &f, a, env4, ""), PI_ERR_INVALID, "negative Content-Length refused");
	is_int(init(&r, &f, a, env5, ""), PI_ERR_INVALID, "Content-Length with junk refused");
	is_int(init(&r, &f, a, env6, ""), 0, "DOCUMENT_URI when no REQUEST_URI");
	is_str(r.path, "/doc", "path from DOCUMENT_URI");
	is_int(r.content_length, -1, "empty Content-Length: absent");

	/* Body files: only directly inside body_file_dir. */
	(void)snprintf(dir, sizeof(dir), "/tmp/polaimg-http-XXXXXX");
	if (!ok(mkdtemp(dir) != NULL, "body_file_dir made"))
		return;
	(void)snprintf(file, sizeof(file), "%s/0000000001", dir);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok(fd >= 0 && write(fd, "body bytes", 10) == 10 && close(fd) == 0,
	    "a body file");
	(void)snprintf(bf_env, sizeof(bf_env), "REQUEST_BODY_FILE=%s", file);
	is_int(init(&r, &f, a, env7, dir), 0, "body file in body_file_dir");
	ok(r.body_fd >= 0, "opened");
	is_str(r.body_file, file, "its path kept");
	memset(buf, 0, sizeof(buf));
	is_int(http_body_read(&r, buf, 4), 4, "body read from the file");
	is_str(buf, "body", "its bytes");
	is_int(http_body_read(&r, buf, sizeof(buf)), 6, "the rest");
	is_int(http_body_read(&r, buf, sizeof(buf)), 0, "then the end");
	is_int(r.body_read, 10, "bytes counted");
	http_request_done(&r);
	is_int(r.body_fd, -1, "done closes it");

	is_int(init(&r, &f, a, env7, ""), PI_ERR_INVALID,
	    "body file refused without body_file_dir");
	is_int(init(&r, &f, a, env7, "/tmp"), PI_ERR_INVALID,
	    "body file refused when not directly in body_file_dir");
	(void)snprintf(other, sizeof(other), "%s/x", dir);
	is_int(init(&r, &f, a, env7, other), PI_ERR_INVALID,
	    "body file refused for another directory");
	(void)snprintf(other, sizeof(other), "%s/..0000000001", dir);
	fd = open(other, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok(fd >= 0 && close(fd) == 0, "a body file named ..0000000001");
	(void)snprintf(bf_env, sizeof(bf_env), "REQUEST_BODY_FILE=%s", other);
	is_int(init(&r, &f, a, env7, dir), PI_ERR_INVALID, "body file with .. in its name refused");
	(void)unlink(other);
	(void)snprintf(bf_env, sizeof(bf_env), "REQUEST_BODY_FILE=%s/../%s/0000000001",
	    dir, dir + 5);
	is_int(init(&r, &f, a, env7, dir), PI_ERR_INVALID, "body file through .. refused");
	(void)snprintf(bf_env, sizeof(bf_env), "REQUEST_BODY_FILE=%sx/0000000001", dir);
	is_int(init(&r, &f, a, env7, dir), PI_ERR_INVALID,
	    "body file in a directory that only starts like it refused");
	(void)snprintf(other, sizeof(other), "%s/link", dir);
	ok(symlink("/etc/passwd", other) == 0, "a symlink in body_file_dir");
	(void)snprintf(bf_env, sizeof(bf_env), "REQUEST_BODY_FILE=%s", other);
	is_int(init(&r, &f, a, env7, dir), PI_ERR_INVALID, "symlinked body file refused");
	(void)snprintf(bf_env, sizeof(bf_env), "REQUEST_BODY_FILE=%s/missing", dir);
	is_int(init(&r, &f, a, env7, dir), PI_ERR_INVALID, "missing body file refused");
	(void)snprintf(bf_env, sizeof(bf_env), "REQUEST_BODY_FILE=");
	is_int(init(&r, &f, a, env7, dir), 0, "empty REQUEST_BODY_FILE: none");
	is_int(r.body_fd, -1, "no file opened");
	(void)unlink(other);
	(void)unlink(file);
	(void)rmdir(dir);
}

int
main(void)
{
	struct arena *a = arena_new();

	if (!ok(a != NULL, "arena"))
		return done_testing();
	test_query(a);
	test_json();
	test_range();
	test_etag();
	test_details();
	test_request_init(a);
	arena_free(a);
	return done_testing();
}
