/* test_multipart.c — the multipart/form-data parser: boundaries, headers,
 * bounds, errors, and the same result for every way a body can be split.
 *
 * A recorder turns the callbacks into a text log ("[name|filename|type]"
 * begins a part, body bytes follow verbatim, "{/}" ends it), so one string
 * comparison checks the whole event stream.
 */
#include "common.h"
#include "multipart.h"
#include "tap.h"
#include "validate.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B "AaB03x"
#define B_PART "AaB03"     /* a proper prefix of the boundary */
#define B_LOWER "aab03x"   /* boundaries compare case-sensitively */

struct rec {
	char log[65536];
	size_t len;
	int overflow;
	int zero_len_data;      /* on_part_data called with len 0 */
	int data_calls;
	size_t data_bytes;
	int stop_at_begin;      /* return non-zero from the n-th begin (1-based) */
	int stop_at_data;
	int stop_at_end;
	int begins, ends;
	int calls_after_stop;
	int stopped;
	int count_only;         /* do not log body bytes (large bodies) */
	uint32_t sum;           /* rolling checksum of body bytes */
};

static void
rec_put(struct rec *r, const char *s, size_t n)
{
	if (r->len + n >= sizeof(r->log)) {
		r->overflow = 1;
		return;
	}
	memcpy(r->log + r->len, s, n);
	r->len += n;
	r->log[r->len] = '\0';
}

static int
on_begin(void *ud, const struct mp_part *part)
{
	struct rec *r = ud;
	char buf[3 * MP_MAX_NAME + 16];
	int n;

	if (r->stopped)
		r->calls_after_stop++;
	r->begins++;
	n = snprintf(buf, sizeof(buf), "[%s|%s%s|%s]", part->name,
	    part->has_filename ? "=" : "", part->filename,
	    part->content_type);
	if (n > 0 && (size_t)n < sizeof(buf))
		rec_put(r, buf, (size_t)n);
	if (r->stop_at_begin == r->begins) {
		r->stopped = 1;
		return 1;
	}
	return 0;
}

static int
on_data(void *ud, const char *data, size_t len)
{
	struct rec *r = ud;

	if (r->stopped)
		r->calls_after_stop++;
	if (len == 0)
		r->zero_len_data++;
	r->data_calls++;
	r->data_bytes += len;
	for (size_t i = 0; i < len; i++)
		r->sum = r->sum * 31 + (unsigned char)data[i];
	if (!r->count_only)
		rec_put(r, data, len);
	if (r->stop_at_data == r->data_calls) {
		r->stopped = 1;
		return 1;
	}
	return 0;
}

static int
on_end(void *ud)
{
	struct rec *r = ud;

	if (r->stopped)
		r->calls_after_stop++;
	r->ends++;
	rec_put(r, "{/}", 3);
	if (r->stop_at_end == r->ends) {
		r->stopped = 1;
		return 1;
	}
	return 0;
}

static const struct mp_callbacks cbs = { on_begin, on_data, on_end };

/* Parses body[0..len) fed in chunks: cuts[] (ncuts ascending offsets)
 * split it. Returns the first non-OK status of feed/finish, else MP_OK. */
static int
run_cuts(const char *boundary, const char *body, size_t len,
    const size_t *cuts, size_t ncuts, struct rec *r)
{
	struct mp_parser *p = mp_new(boundary, &cbs, r);
	size_t at = 0;
	int rc = MP_OK;

	if (p == NULL)
		return 99;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t to = i < ncuts ? cuts[i] : len;

		rc = mp_feed(p, body + at, to - at);
		at = to;
		if (rc != MP_OK)
			break;
	}
	if (rc == MP_OK)
		rc = mp_finish(p);
	mp_free(p);
	return rc;
}

static int
run(const char *boundary, const char *body, size_t len, struct rec *r)
{
	return run_cuts(boundary, body, len, NULL, 0, r);
}

/* Parses in chunks of step bytes. */
static int
run_step(const char *boundary, const char *body, size_t len, size_t step,
    struct rec *r)
{
	struct mp_parser *p = mp_new(boundary, &cbs, r);
	int rc = MP_OK;

	if (p == NULL)
		return 99;
	for (size_t at = 0; at < len; at += step) {
		size_t n = len - at < step ? len - at : step;

		rc = mp_feed(p, body + at, n);
		if (rc != MP_OK)
			break;
	}
	if (rc == MP_OK)
		rc = mp_finish(p);
	mp_free(p);
	return rc;
}

static struct rec *
rec_new(void)
{
	struct rec *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	return r;
}

/* Parses s whole; checks the status and, if want_log is non-NULL, the log. */
static void
check(const char *name, const char *boundary, const char *s, size_t len,
    int want_rc, const char *want_log)
{
	struct rec *r = rec_new();
	char label[256];

	snprintf(label, sizeof(label), "%s: status", name);
	is_int(run(boundary, s, len, r), want_rc, label);
	if (want_log != NULL) {
		snprintf(label, sizeof(label), "%s: events", name);
		is_str(r->log, want_log, label);
	}
	free(r);
}

#define CHECK(name, body, rc, log) \
	check((name), B, (body), sizeof(body) - 1, (rc), (log))

/* Every split of s — one byte at a time and every 2-way cut — must give the
 * status and events of the whole-body parse. Also checks that 3-way cuts
 * around each position agree when s is short. */
static void
check_splits(const char *name, const char *boundary, const char *s,
    size_t len)
{
	struct rec *whole = rec_new(), *r;
	int rc0, rc, bad2 = 0, bad3 = 0;
	char label[256];

	rc0 = run(boundary, s, len, whole);
	r = rec_new();
	rc = run_step(boundary, s, len, 1, r);
	snprintf(label, sizeof(label), "%s: byte at a time, same status", name);
	is_int(rc, rc0, label);
	snprintf(label, sizeof(label), "%s: byte at a time, same events", name);
	is_str(r->log, whole->log, label);
	snprintf(label, sizeof(label), "%s: no empty data callbacks", name);
	ok(r->zero_len_data == 0 && !r->overflow, label);
	free(r);
	for (size_t cut = 0; cut <= len; cut++) {
		r = rec_new();
		rc = run_cuts(boundary, s, len, &cut, 1, r);
		if (rc != rc0 || strcmp(r->log, whole->log) != 0 ||
		    r->zero_len_data) {
			if (!bad2)
				printf("# 2-way split at %zu differs\n", cut);
			bad2++;
		}
		free(r);
	}
	snprintf(label, sizeof(label), "%s: every 2-way split agrees", name);
	ok(bad2 == 0, label);
	if (len <= 200) {
		for (size_t a = 0; a <= len; a++) {
			for (size_t b = a; b <= len; b++) {
				size_t cuts[2] = { a, b };

				r = rec_new();
				rc = run_cuts(boundary, s, len, cuts, 2, r);
				if (rc != rc0 ||
				    strcmp(r->log, whole->log) != 0)
					bad3++;
				free(r);
			}
		}
		snprintf(label, sizeof(label),
		    "%s: every 3-way split agrees", name);
		ok(bad3 == 0, label);
	}
	free(whole);
}

static void
free_null(void)
{
	mp_free(NULL);
}

static void
test_boundary(void)
{
	char out[MP_MAX_BOUNDARY + 1];
	char big[12000];
	char b70[80], b71[80];

	is_int(mp_boundary("multipart/form-data; boundary=AaB03x", out,
	    sizeof(out)), MP_OK, "boundary: plain");
	is_str(out, "AaB03x", "boundary: plain value");
	is_int(mp_boundary("multipart/form-data; boundary=\"a b:c?=/\"", out,
	    sizeof(out)), MP_OK, "boundary: quoted with space and specials");
	is_str(out, "a b:c?=/", "boundary: quoted value");
	is_int(mp_boundary("Multipart/Form-Data; BOUNDARY=xyz", out,
	    sizeof(out)), MP_OK, "boundary: case-insensitive names");
	is_str(out, "xyz", "boundary: case-insensitive value kept");
	is_int(mp_boundary("  multipart/form-data ; charset=utf-8 ;"
	    "boundary = \"----WebKitFormBoundary7MA4YWxkTrZu0gW\";", out,
	    sizeof(out)), MP_OK, "boundary: OWS, other params, trailing ;");
	is_str(out, "----WebKitFormBoundary7MA4YWxkTrZu0gW",
	    "boundary: webkit value");
	is_int(mp_boundary("multipart/form-data; name=\"x;boundary=no\"; "
	    "boundary=yes", out, sizeof(out)), MP_OK,
	    "boundary: inside another quoted param is not the boundary");
	is_str(out, "yes", "boundary: right one taken");
	is_int(mp_boundary("multipart/form-data; boundary=\"a\\\\b\"", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: backslash is no bchar");

	is_int(mp_boundary("multipart/mixed; boundary=x", out, sizeof(out)),
	    MP_ERR_SYNTAX, "boundary: multipart/mixed refused");
	is_int(mp_boundary("text/plain; boundary=x", out, sizeof(out)),
	    MP_ERR_SYNTAX, "boundary: text/plain refused");
	is_int(mp_boundary("multipart/form-datax; boundary=x", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: subtype prefix refused");
	is_int(mp_boundary("multipart /form-data; boundary=x", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: space in type refused");
	is_int(mp_boundary("multipart/form-data", out, sizeof(out)),
	    MP_ERR_SYNTAX, "boundary: missing");
	is_int(mp_boundary("multipart/form-data; boundary=", out, sizeof(out)),
	    MP_ERR_SYNTAX, "boundary: empty token");
	is_int(mp_boundary("multipart/form-data; boundary=\"\"", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: empty quoted");
	is_int(mp_boundary("multipart/form-data; boundary=\"abc", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: unterminated quote");
	is_int(mp_boundary("multipart/form-data; boundary=a!b", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: '!' is no bchar");
	is_int(mp_boundary("multipart/form-data; boundary=\"a\\\"b\"", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: quote char refused");
	is_int(mp_boundary("multipart/form-data; boundary=\"abc \"", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: trailing space refused");
	is_int(mp_boundary("multipart/form-data; boundary=\"a\tb\"", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: tab refused");
	is_int(mp_boundary("multipart/form-data; boundary=\"a\r\nb\"", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: CRLF refused");
	is_int(mp_boundary("multipart/form-data; boundary=\"\xc3\xa9\"", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: non-ASCII refused");
	is_int(mp_boundary("multipart/form-data; boundary=a; boundary=b",
	    out, sizeof(out)), MP_ERR_SYNTAX, "boundary: duplicate refused");
	is_int(mp_boundary("multipart/form-data; boundary=abc junk", out,
	    sizeof(out)), MP_ERR_SYNTAX, "boundary: trailing junk refused");
	is_int(mp_boundary("multipart/form-data; boundary", out, sizeof(out)),
	    MP_ERR_SYNTAX, "boundary: param without value refused");
	is_int(mp_boundary("multipart/form-data boundary=x", out, sizeof(out)),
	    MP_ERR_SYNTAX, "boundary: missing ';' refused");
	is_int(mp_boundary(NULL, out, sizeof(out)), MP_ERR_SYNTAX,
	    "boundary: NULL header");
	is_int(mp_boundary("multipart/form-data; boundary=abcdef", out, 4),
	    MP_ERR_SYNTAX, "boundary: output too small");
	is_str(out, "", "boundary: output cleared on error");

	memset(b70, 'b', 70);
	b70[70] = '\0';
	memset(b71, 'b', 71);
	b71[71] = '\0';
	snprintf(big, sizeof(big), "multipart/form-data; boundary=%s", b70);
	is_int(mp_boundary(big, out, sizeof(out)), MP_OK,
	    "boundary: 70 chars accepted");
	is_int((long long)strlen(out), 70, "boundary: 70 chars copied");
	snprintf(big, sizeof(big), "multipart/form-data; boundary=%s", b71);
	is_int(mp_boundary(big, out, sizeof(out)), MP_ERR_SYNTAX,
	    "boundary: 71 chars refused");
	snprintf(big, sizeof(big), "multipart/form-data; boundary=\"%s\"",
	    b71);
	is_int(mp_boundary(big, out, sizeof(out)), MP_ERR_SYNTAX,
	    "boundary: 71 quoted chars refused");
	memcpy(big, "multipart/form-data; boundary=", 30);
	memset(big + 30, 'x', sizeof(big) - 31);
	big[sizeof(big) - 1] = '\0';
	is_int(mp_boundary(big, out, sizeof(out)), MP_ERR_SYNTAX,
	    "boundary: 12 KB boundary refused");
	memcpy(big, "multipart/form-data; ", 21);
	memset(big + 21, 'p', sizeof(big) - 22);
	big[sizeof(big) - 1] = '\0';
	is_int(mp_boundary(big, out, sizeof(out)), MP_ERR_SYNTAX,
	    "boundary: 12 KB parameter name refused");
}

static void
test_new(void)
{
	struct mp_parser *p;
	char b70[71], b71[72];

	memset(b70, 'z', 70);
	b70[70] = '\0';
	memset(b71, 'z', 71);
	b71[71] = '\0';
	ok(mp_new(NULL, &cbs, NULL) == NULL, "new: NULL boundary");
	ok(mp_new("", &cbs, NULL) == NULL, "new: empty boundary");
	ok(mp_new(b71, &cbs, NULL) == NULL, "new: 71-char boundary");
	ok(mp_new("a\r\nb", &cbs, NULL) == NULL, "new: CRLF in boundary");
	ok(mp_new("a\rb", &cbs, NULL) == NULL, "new: CR in boundary");
	ok(mp_new("abc ", &cbs, NULL) == NULL, "new: trailing space");
	ok(mp_new("a\"b", &cbs, NULL) == NULL, "new: quote in boundary");
	ok(mp_new("ab", NULL, NULL) == NULL, "new: NULL callbacks");
	p = mp_new(b70, &cbs, NULL);
	ok(p != NULL, "new: 70-char boundary");
	mp_free(p);
	p = mp_new("a b", &cbs, NULL);
	ok(p != NULL, "new: inner space allowed");
	mp_free(p);
	ok(survives(free_null), "free: NULL is allowed (a child calling "
	    "mp_free(NULL) exits normally)");
}

static const char basic[] =
    "--" B "\r\n"
    "Content-Disposition: form-data; name=\"caseId\"\r\n"
    "\r\n"
    "0b7f3c2e-1111-4222-8333-944455556666\r\n"
    "--" B "\r\n"
    "Content-Disposition: form-data; name=\"image\"; filename=\"eye.jpg\"\r\n"
    "Content-Type: image/jpeg\r\n"
    "\r\n"
    "\xff\xd8\xff\xe0\0\r\n--" B_PART "y\r--\r\n-" B "\r\n"
    "--" B "--\r\n";

static void
test_basic(void)
{
	static const char want[] =
	    "[caseId||]0b7f3c2e-1111-4222-8333-944455556666{/}"
	    "[image|=eye.jpg|image/jpeg]\xff\xd8\xff\xe0";
	struct rec *r = rec_new();
	int rc = run(B, basic, sizeof(basic) - 1, r);
	/* The log holds a NUL, so compare bytes, not strings. */
	static const char tail[] = "\r\n--" B_PART "y\r--\r\n-" B "{/}";

	is_int(rc, MP_OK, "basic: two parts parse");
	is_int(r->begins, 2, "basic: two begins");
	is_int(r->ends, 2, "basic: two ends");
	is_int((long long)r->len,
	    (long long)(sizeof(want) - 1 + 1 + sizeof(tail) - 1),
	    "basic: log length");
	ok(memcmp(r->log, want, sizeof(want) - 1) == 0,
	    "basic: fields and file header");
	ok(r->log[sizeof(want) - 1] == '\0', "basic: NUL byte in body kept");
	ok(memcmp(r->log + sizeof(want), tail, sizeof(tail) - 1) == 0,
	    "basic: boundary look-alikes kept as data");
	free(r);
	check_splits("basic", B, basic, sizeof(basic) - 1);
}

static void
test_framing(void)
{
	CHECK("delimiter line in preamble with text after it",
	    "this is a preamble\r\n--" B " is not here\r\nmore\r\n"
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "1\r\n--" B "--",
	    MP_ERR_SYNTAX, NULL);
	CHECK("preamble skipped to first delimiter line",
	    "preamble x--" B "\r\n\r\n--" B "\r\n"
	    "Content-Disposition: form-data; name=a\r\n\r\n"
	    "1\r\n--" B "--",
	    MP_OK, "[a||]1{/}");
	CHECK("preamble with a lone CR and LF",
	    "\r\r\n\n\r--" B "\r\n--" B "\r\n"
	    "Content-Disposition: form-data; name=a\r\n\r\n"
	    "1\r\n--" B "--",
	    MP_OK, "[a||]1{/}");
	CHECK("epilogue ignored",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "x\r\n--" B "--\r\ngarbage\r\n--" B "\r\nContent-Disposition: "
	    "form-data; name=b\r\n\r\ny\r\n--" B "--\r\n",
	    MP_OK, "[a||]x{/}");
	CHECK("close without CRLF",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "x\r\n--" B "--",
	    MP_OK, "[a||]x{/}");
	CHECK("no parts", "--" B "--\r\n", MP_OK, "");
	CHECK("empty body part",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "\r\n--" B "--",
	    MP_OK, "[a||]{/}");
	CHECK("body is CRLF",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "\r\n\r\n--" B "--",
	    MP_OK, "[a||]\r\n{/}");
	CHECK("body ends in CR",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "ab\r\r\n--" B "--",
	    MP_OK, "[a||]ab\r{/}");
	CHECK("look-alikes in body",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "--" B "\n--" B "\r--" B "\r\n-" B "\r\n--" B_PART "\r\n--"
	    B_LOWER "\r\n--" B "\r\n"
	    "Content-Disposition: form-data; name=b\r\n\r\n"
	    "\r\n--\r\n--" B "--",
	    MP_OK,
	    "[a||]--" B "\n--" B "\r--" B "\r\n-" B "\r\n--" B_PART
	    "\r\n--" B_LOWER "{/}[b||]\r\n--{/}");
	CHECK("transport padding",
	    "--" B " \t \r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "x\r\n--" B "\t\r\nContent-Disposition: form-data; name=b\r\n"
	    "\r\ny\r\n--" B "--  \r\n",
	    MP_OK, "[a||]x{/}[b||]y{/}");
	CHECK("text after the boundary",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "x\r\n--" B "X\r\n--" B "--",
	    MP_ERR_SYNTAX, "[a||]x");
	CHECK("text after padding",
	    "--" B " x\r\n", MP_ERR_SYNTAX, "");
	CHECK("single dash after boundary",
	    "--" B "-\r\n", MP_ERR_SYNTAX, "");
	CHECK("padding before close dashes",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "x\r\n--" B " --", MP_ERR_SYNTAX, "[a||]x");
	CHECK("bare LF after boundary", "--" B "\nContent-Disposition: "
	    "form-data; name=a\r\n\r\nx\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("CR without LF after boundary", "--" B "\rX", MP_ERR_SYNTAX,
	    "");
	CHECK("bytes after close ignored, even bad ones",
	    "--" B "--\0\xff\r\n--" B "X", MP_OK, "");
}

static void
test_headers(void)
{
	CHECK("case-insensitive names and params",
	    "--" B "\r\nCONTENT-DISPOSITION: FORM-DATA; NAME=Image; "
	    "FileName=\"A.JPG\"\r\ncOnTeNt-TyPe:IMAGE/JPEG\r\n\r\n"
	    "z\r\n--" B "--",
	    MP_OK, "[Image|=A.JPG|IMAGE/JPEG]z{/}");
	CHECK("unquoted tokens and OWS",
	    "--" B "\r\nContent-Disposition:\tform-data ;name = caseId ;"
	    " filename=x.png ; \r\nContent-Type:  image/png; q=1  \r\n\r\n"
	    "z\r\n--" B "--",
	    MP_OK, "[caseId|=x.png|image/png; q=1]z{/}");
	CHECK("backslash escapes",
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\\\"b\\\\c\\d\";"
	    " filename=\"C:\\\\dir\\\\f \\\"q\\\".jpg\"\r\n\r\nz\r\n--" B "--",
	    MP_OK, "[a\"b\\cd|=C:\\dir\\f \"q\".jpg|]z{/}");
	CHECK("semicolon and equals inside quotes",
	    "--" B "\r\nContent-Disposition: form-data; filename=\"a;name=b\";"
	    " name=\"n=1; x\"\r\n\r\nz\r\n--" B "--",
	    MP_OK, "[n=1; x|=a;name=b|]z{/}");
	CHECK("UTF-8 filename",
	    "--" B "\r\nContent-Disposition: form-data; name=f; "
	    "filename=\"\xc3\xa9il.jpg\"\r\n\r\nz\r\n--" B "--",
	    MP_OK, "[f|=\xc3\xa9il.jpg|]z{/}");
	CHECK("empty filename",
	    "--" B "\r\nContent-Disposition: form-data; name=f; filename=\"\""
	    "\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--" B "--",
	    MP_OK, "[f|=|application/octet-stream]{/}");
	CHECK("unknown headers and params ignored",
	    "--" B "\r\nX-Thing: a:b:c\r\nContent-Disposition: form-data; "
	    "name=f; filename*=UTF-8''x%20y; size=3\r\n"
	    "Content-Transfer-Encoding: binary\r\n\r\nz\r\n--" B "--",
	    MP_OK, "[f||]z{/}");
	CHECK("missing name",
	    "--" B "\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("empty name",
	    "--" B "\r\nContent-Disposition: form-data; name=\"\"\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("name= without value",
	    "--" B "\r\nContent-Disposition: form-data; name=\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("no Content-Disposition",
	    "--" B "\r\nContent-Type: text/plain\r\n\r\nz\r\n--" B "--",
	    MP_ERR_SYNTAX, "");
	CHECK("no headers at all",
	    "--" B "\r\n\r\nz\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("attachment disposition",
	    "--" B "\r\nContent-Disposition: attachment; name=a\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("form-data prefix disposition",
	    "--" B "\r\nContent-Disposition: form-datax; name=a\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("duplicate name param",
	    "--" B "\r\nContent-Disposition: form-data; name=a; NAME=b\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("duplicate filename param",
	    "--" B "\r\nContent-Disposition: form-data; name=a; filename=x; "
	    "filename=y\r\n\r\nz\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("duplicate Content-Disposition",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n"
	    "Content-Disposition: form-data; name=b\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("duplicate Content-Type",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n"
	    "Content-Type: image/png\r\nContent-Type: image/jpeg\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("empty Content-Type",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n"
	    "Content-Type:   \r\n\r\nz\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("nested quotes",
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\"b\"\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("doubled quotes",
	    "--" B "\r\nContent-Disposition: form-data; name=\"\"x\"\"\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("unterminated quote",
	    "--" B "\r\nContent-Disposition: form-data; name=\"abc\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("escape at end of value",
	    "--" B "\r\nContent-Disposition: form-data; name=\"abc\\\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("two values without ';'",
	    "--" B "\r\nContent-Disposition: form-data; name=a filename=b\r\n"
	    "\r\nz\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("header without colon",
	    "--" B "\r\nContent-Disposition form-data; name=a\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("second header without colon",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\nbogus\r\n"
	    "\r\nz\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("space before colon",
	    "--" B "\r\nContent-Disposition : form-data; name=a\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("empty header name",
	    "--" B "\r\n: x\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("folded header",
	    "--" B "\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("bare LF in headers",
	    "--" B "\r\nContent-Disposition: form-data; name=a\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("bare LF ends headers",
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("NUL in header",
	    "--" B "\r\nContent-Disposition: form-data; name=a\0b\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("DEL in header",
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\x7f\"\r\n\r\n"
	    "z\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("escape char in header",
	    "--" B "\r\nContent-Disposition: form-data; name=\"\x1b[2J\"\r\n"
	    "\r\nz\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("non-token header name",
	    "--" B "\r\nX(y): 1\r\nContent-Disposition: form-data; name=a\r\n"
	    "\r\nz\r\n--" B "--", MP_ERR_SYNTAX, "");
	CHECK("tab inside quoted value",
	    "--" B "\r\nContent-Disposition: form-data; name=\"a\tb\"\r\n\r\n"
	    "z\r\n--" B "--", MP_OK, "[a\tb||]z{/}");
}

/* Builds a part whose header block is exactly raw bytes (CRLFs counted,
 * the empty line not) and parses it. */
static int
header_block_of(size_t raw, struct rec *r)
{
	static const char cd[] =
	    "Content-Disposition: form-data; name=\"f\"\r\n";
	size_t pad = raw - (sizeof(cd) - 1) - 9;  /* "X-Pad: " + CRLF */
	size_t cap = raw + 256, n = 0;
	char *body = malloc(cap);
	int rc;

	if (body == NULL)
		return 99;
	memcpy(body + n, "--" B "\r\n", 10);
	n += 10;
	memcpy(body + n, cd, sizeof(cd) - 1);
	n += sizeof(cd) - 1;
	memcpy(body + n, "X-Pad: ", 7);
	n += 7;
	memset(body + n, 'p', pad);
	n += pad;
	memcpy(body + n, "\r\n\r\nz\r\n--" B "--", 17);
	n += 17;
	rc = run_step(B, body, n, 1000, r);
	free(body);
	return rc;
}

static void
test_bounds(void)
{
	struct rec *r;
	char *body, name[MP_MAX_NAME + 1];
	size_t n, cap = 1 << 20;
	int rc;

	r = rec_new();
	is_int(header_block_of(MP_MAX_HEADER_BYTES, r), MP_OK,
	    "bounds: header block of exactly the limit");
	is_str(r->log, "[f||]z{/}", "bounds: limit block parsed");
	free(r);
	r = rec_new();
	is_int(header_block_of(MP_MAX_HEADER_BYTES + 1, r), MP_ERR_HEADERS,
	    "bounds: header block one over the limit");
	is_int(r->begins, 0, "bounds: no part begun");
	free(r);

	body = malloc(cap);
	if (body == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	/* One 10 000-byte header line. */
	n = (size_t)snprintf(body, cap, "--" B "\r\nX-Long: ");
	memset(body + n, 'a', 10000);
	n += 10000;
	n += (size_t)snprintf(body + n, cap - n, "\r\nContent-Disposition: "
	    "form-data; name=a\r\n\r\nz\r\n--" B "--");
	r = rec_new();
	is_int(run(B, body, n, r), MP_ERR_HEADERS, "bounds: 10 KB header line");
	free(r);
	r = rec_new();
	is_int(run_step(B, body, n, 1, r), MP_ERR_HEADERS,
	    "bounds: 10 KB header line, byte at a time");
	free(r);
	/* Endless header line without CR: must stop at the bound. */
	memset(body, 'h', cap);
	memcpy(body, "--" B "\r\n", 10);
	r = rec_new();
	is_int(run(B, body, cap, r), MP_ERR_HEADERS,
	    "bounds: 1 MB header line without CRLF");
	free(r);
	/* Many short header lines. */
	n = (size_t)snprintf(body, cap, "--" B "\r\n");
	for (int i = 0; i < 2000; i++)
		n += (size_t)snprintf(body + n, cap - n, "X: %d\r\n", i);
	n += (size_t)snprintf(body + n, cap - n, "\r\n");
	r = rec_new();
	is_int(run(B, body, n, r), MP_ERR_HEADERS,
	    "bounds: 2000 short header lines");
	free(r);

	/* Values: MP_MAX_NAME - 1 bytes fit, MP_MAX_NAME do not. */
	memset(name, 'n', sizeof(name));
	for (int over = 0; over <= 1; over++) {
		static const char *const tmpl[][2] = {
			{ "--" B "\r\nContent-Disposition: form-data; name=\"",
			  "\"\r\n\r\nz\r\n--" B "--" },
			{ "--" B "\r\nContent-Disposition: form-data; name=",
			  "\r\n\r\nz\r\n--" B "--" },
			{ "--" B "\r\nContent-Disposition: form-data; name=a; "
			  "filename=\"", "\"\r\n\r\nz\r\n--" B "--" },
			{ "--" B "\r\nContent-Disposition: form-data; name=a\r\n"
			  "Content-Type: ", "\r\n\r\nz\r\n--" B "--" },
		};
		static const char *const what[] = {
			"quoted name", "token name", "filename", "content type"
		};
		int len = MP_MAX_NAME - 1 + over;

		for (size_t t = 0; t < PI_ARRAY_LEN(tmpl); t++) {
			char label[96];

			n = (size_t)snprintf(body, cap, "%s%.*s%s", tmpl[t][0],
			    len, name, tmpl[t][1]);
			r = rec_new();
			rc = run(B, body, n, r);
			snprintf(label, sizeof(label), "bounds: %s of %d bytes",
			    what[t], len);
			is_int(rc, over ? MP_ERR_HEADERS : MP_OK, label);
			if (!over) {
				char want[MP_MAX_NAME + 1];

				memcpy(want, name, (size_t)len);
				want[len] = '\0';
				snprintf(label, sizeof(label),
				    "bounds: %s of %d bytes reported whole",
				    what[t], len);
				ok(strstr(r->log, want) != NULL, label);
			}
			free(r);
		}
	}

	/* MP_MAX_PARTS parts are fine, one more is not. */
	for (int extra = 0; extra <= 1; extra++) {
		n = 0;
		for (int i = 0; i < MP_MAX_PARTS + extra; i++)
			n += (size_t)snprintf(body + n, cap - n, "--" B "\r\n"
			    "Content-Disposition: form-data; name=p%d\r\n\r\n"
			    "%d\r\n", i, i);
		n += (size_t)snprintf(body + n, cap - n, "--" B "--\r\n");
		r = rec_new();
		rc = run(B, body, n, r);
		if (extra) {
			is_int(rc, MP_ERR_PARTS, "bounds: one part too many");
			is_int(r->begins, MP_MAX_PARTS,
			    "bounds: parts up to the limit were reported");
			is_int(r->ends, MP_MAX_PARTS,
			    "bounds: and all of them ended");
		} else {
			is_int(rc, MP_OK, "bounds: MP_MAX_PARTS parts");
			is_int(r->begins, MP_MAX_PARTS, "bounds: all begun");
		}
		free(r);
	}
	free(body);
}

static void
test_truncated(void)
{
	static const char *const cuts[] = {
		"",
		"preamble only",
		"--" B,
		"--" B "-",
		"--" B "\r",
		"--" B "\r\n",
		"--" B "\r\nContent-Disposition: form-data; name=a",
		"--" B "\r\nContent-Disposition: form-data; name=a\r\n",
		"--" B "\r\nContent-Disposition: form-data; name=a\r\n\r",
		"--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n",
		"--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\nbody",
		"--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n",
		"--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--"
		    B,
		"--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--"
		    B "-",
		"--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--"
		    B "\r\n",
	};
	char label[64];

	for (size_t i = 0; i < PI_ARRAY_LEN(cuts); i++) {
		struct rec *r = rec_new();

		snprintf(label, sizeof(label), "truncated: case %zu", i);
		is_int(run(B, cuts[i], strlen(cuts[i]), r), MP_ERR_TRUNCATED,
		    label);
		free(r);
	}
	{
		struct rec *r = rec_new();
		struct mp_parser *p = mp_new(B, &cbs, r);

		ok(p != NULL, "truncated: parser");
		if (p != NULL) {
			is_int(mp_finish(p), MP_ERR_TRUNCATED,
			    "truncated: finish at once");
			is_int(mp_feed(p, "--" B "--", 10), MP_ERR_TRUNCATED,
			    "truncated: sticky for feed");
			is_int(mp_finish(p), MP_ERR_TRUNCATED,
			    "truncated: sticky for finish");
			mp_free(p);
		}
		free(r);
	}
}

static void
test_errors_sticky(void)
{
	struct rec *r = rec_new();
	struct mp_parser *p = mp_new(B, &cbs, r);
	static const char good[] = "--" B "\r\nContent-Disposition: form-data;"
	    " name=a\r\n\r\nz\r\n--" B "--";

	if (p == NULL) {
		ok(0, "sticky: parser");
		free(r);
		return;
	}
	is_int(mp_feed(p, "--" B "X", 9), MP_ERR_SYNTAX, "sticky: syntax error");
	is_int(mp_feed(p, good, sizeof(good) - 1), MP_ERR_SYNTAX,
	    "sticky: later feed returns the error");
	is_int(mp_finish(p), MP_ERR_SYNTAX, "sticky: finish returns it");
	is_int(r->begins, 0, "sticky: nothing reported after the error");
	mp_free(p);
	free(r);

	r = rec_new();
	p = mp_new(B, &cbs, r);
	if (p != NULL) {
		is_int(mp_feed(p, good, sizeof(good) - 1), MP_OK, "done: feed");
		is_int(mp_feed(p, "\r\n--" B "\r\n\r\n", 14), MP_OK,
		    "done: later bytes ignored");
		is_int(mp_finish(p), MP_OK, "done: finish");
		is_int(mp_finish(p), MP_OK, "done: finish twice");
		is_int(mp_feed(p, NULL, 0), MP_OK, "done: empty feed");
		is_str(r->log, "[a||]z{/}", "done: events");
		mp_free(p);
	}
	free(r);
	r = rec_new();
	p = mp_new(B, &cbs, r);
	if (p != NULL) {
		is_int(mp_feed(p, NULL, 0), MP_OK, "feed: NULL, 0 is a no-op");
		is_int(mp_feed(p, NULL, 3), MP_ERR_SYNTAX, "feed: NULL data");
		mp_free(p);
	}
	free(r);
	is_int(mp_feed(NULL, "x", 1), MP_ERR_SYNTAX, "feed: NULL parser");
	is_int(mp_finish(NULL), MP_ERR_SYNTAX, "finish: NULL parser");
}

static void
test_callbacks(void)
{
	struct rec *r;
	int rc;

	r = rec_new();
	r->stop_at_begin = 1;
	rc = run(B, basic, sizeof(basic) - 1, r);
	is_int(rc, MP_ERR_CALLBACK, "callback: begin stops");
	is_int(r->calls_after_stop, 0, "callback: nothing after begin stop");
	is_str(r->log, "[caseId||]", "callback: begin stop events");
	free(r);

	r = rec_new();
	r->stop_at_begin = 2;
	rc = run_step(B, basic, sizeof(basic) - 1, 1, r);
	is_int(rc, MP_ERR_CALLBACK, "callback: second begin stops (bytewise)");
	is_int(r->calls_after_stop, 0, "callback: nothing after it");
	is_int(r->ends, 1, "callback: first part ended");
	free(r);

	r = rec_new();
	r->stop_at_data = 1;
	rc = run_step(B, basic, sizeof(basic) - 1, 5, r);
	is_int(rc, MP_ERR_CALLBACK, "callback: data stops");
	is_int(r->calls_after_stop, 0, "callback: nothing after data stop");
	is_int(r->data_calls, 1, "callback: one data call");
	is_int(r->ends, 0, "callback: no end after data stop");
	free(r);

	r = rec_new();
	r->stop_at_end = 1;
	rc = run(B, basic, sizeof(basic) - 1, r);
	is_int(rc, MP_ERR_CALLBACK, "callback: end stops");
	is_int(r->calls_after_stop, 0, "callback: nothing after end stop");
	is_int(r->begins, 1, "callback: second part not begun");
	free(r);

	r = rec_new();
	r->stop_at_end = 2;
	rc = run(B, basic, sizeof(basic) - 1, r);
	is_int(rc, MP_ERR_CALLBACK, "callback: end stop on the close line");
	free(r);

	{
		static const struct mp_callbacks none = { NULL, NULL, NULL };
		struct mp_parser *p = mp_new(B, &none, NULL);

		ok(p != NULL, "callback: all NULL allowed");
		if (p != NULL) {
			is_int(mp_feed(p, basic, sizeof(basic) - 1), MP_OK,
			    "callback: NULL callbacks parse");
			is_int(mp_finish(p), MP_OK, "callback: NULL finish");
			mp_free(p);
		}
	}
}

static void
test_splits(void)
{
	static const char withpad[] =
	    "junk\r\n--" B "  \r\n"
	    "content-disposition: form-data; name=\"a\\\"\"\r\n\r\n"
	    "\r\n\r\r\n-\r\n--\r\n--" B_PART "\r\n--" B "\t\r\n"
	    "Content-Disposition: form-data; name=b; filename=\"b.bin\"\r\n"
	    "Content-Type: application/octet-stream\r\n\r\n"
	    "\r\n--" B "--\r\nepilogue";
	static const char bad_tail[] =
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "x\r\r\n--" B "Y\r\n";
	static const char bad_hdr[] =
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "x\r\n--" B "\r\nContent-Disposition: form-data\r\n\r\n";
	static const char trunc[] =
	    "--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\n"
	    "x\r\n--" B;
	char b70[71], body[512];
	int n;

	check_splits("padding", B, withpad, sizeof(withpad) - 1);
	check_splits("bad tail", B, bad_tail, sizeof(bad_tail) - 1);
	check_splits("bad header", B, bad_hdr, sizeof(bad_hdr) - 1);
	check_splits("truncated", B, trunc, sizeof(trunc) - 1);
	/* A boundary of the maximum length, self-overlapping look-alikes. */
	memset(b70, '-', 70);
	b70[69] = 'x';
	b70[70] = '\0';
	n = snprintf(body, sizeof(body), "--%s\r\n"
	    "Content-Disposition: form-data; name=x\r\n\r\n"
	    "\r\n--%.69s\r\n---%s\r\n--%s\r\n"
	    "Content-Disposition: form-data; name=y\r\n\r\n"
	    "\r\n\r\n--%s--", b70, b70, b70, b70, b70);
	ok(n > 0 && (size_t)n < sizeof(body), "splits: long body built");
	check("70-char boundary", b70, body, (size_t)n, MP_OK, NULL);
	check_splits("70-char boundary", b70, body, (size_t)n);
	{
		struct rec *r = rec_new();
		char want[512];

		snprintf(want, sizeof(want),
		    "[x||]\r\n--%.69s\r\n---%s{/}[y||]\r\n{/}", b70, b70);
		is_int(run(b70, body, (size_t)n, r), MP_OK,
		    "70-char boundary: parses");
		is_str(r->log, want, "70-char boundary: events");
		free(r);
	}
}

static void
test_large(void)
{
	size_t size = 4 << 20, n = 0;
	char *body = malloc(size + 512);
	struct rec *r;
	uint32_t want = 0;
	int rc;

	if (body == NULL) {
		printf("Bail out! out of memory\n");
		exit(1);
	}
	n = (size_t)snprintf(body, 512, "--" B "\r\nContent-Disposition: "
	    "form-data; name=image; filename=big.raw\r\n\r\n");
	/* Pseudo-random bytes, dense in CR, LF and '-'. */
	for (size_t i = 0; i < size; i++) {
		static const char pick[] = "\r\n-A\0x";
		uint32_t x = (uint32_t)(i * 2654435761u) >> 13;

		body[n + i] = (x & 3) ? pick[x % 6] : (char)x;
		want = want * 31 + (unsigned char)body[n + i];
	}
	n += size;
	memcpy(body + n, "\r\n--" B "--", 12);
	n += 12;
	r = rec_new();
	r->count_only = 1;
	rc = run_step(B, body, n, 65536, r);
	is_int(rc, MP_OK, "large: 4 MiB part parses");
	is_int((long long)r->data_bytes, (long long)size,
	    "large: every body byte delivered");
	ok(r->sum == want, "large: bytes delivered in order");
	ok(r->data_calls < (int)(size / 2), "large: body not delivered "
	    "byte by byte");
	free(r);
	r = rec_new();
	r->count_only = 1;
	rc = run_step(B, body, n, 7, r);
	is_int(rc, MP_OK, "large: 7-byte chunks parse");
	ok(r->sum == want && r->data_bytes == size,
	    "large: 7-byte chunks deliver the same bytes");
	free(r);
	free(body);
}

/* A text field holding a NUL or malformed UTF-8: the parser hands over
 * every byte (it is data, the parser does not judge it), and what the
 * upload handler then asks of a text field, val_utf8() on the bytes as
 * delivered, refuses it; cut at the NUL it would have passed as "A". */
static void
test_text_fields(void)
{
	static const char body[] =
	    "--" B "\r\nContent-Disposition: form-data; name=\"caseId\"\r\n\r\n"
	    "A\0B\r\n"
	    "--" B "\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n"
	    "visible\0hidden\r\n"
	    "--" B "\r\nContent-Disposition: form-data; name=\"eyeSide\"\r\n\r\n"
	    "\xc0\x80\r\n"
	    "--" B "--\r\n";
	static const char want[] = "[caseId||]A\0B{/}[description||]visible\0hidden{/}"
	    "[eyeSide||]\xc0\x80{/}";
	struct rec *r = rec_new();

	is_int(run(B, body, sizeof(body) - 1, r), MP_OK, "text fields: parse");
	is_int((long long)r->len, (long long)(sizeof(want) - 1),
	    "text fields: every byte delivered, NULs included");
	ok(memcmp(r->log, want, sizeof(want) - 1) == 0, "text fields: events");
	is_int(val_utf8("A\0B", 3), 0, "text fields: caseId A\\0B refused");
	is_int(val_utf8("visible\0hidden", 14), 0,
	    "text fields: description visible\\0hidden refused");
	is_int(val_utf8("\xc0\x80", 2), 0, "text fields: overlong NUL refused");
	is_int(val_utf8("A", 1), 1, "text fields: what a C string would have kept passes");
	free(r);
	check_splits("text fields", B, body, sizeof(body) - 1);
}

/* multipart/related (DICOMweb STOW-RS): no Content-Disposition needed,
 * Orthanc's 73-character boundary, byte-exact bodies in every split. */
static void
test_related(void)
{
	static const char b73[] = "216fd589-ca70-450e-b933-87bc30d3181b-"
	    "216fd589-ca70-450e-b933-87bc30d3181b";
	char out[MP_MAX_BOUNDARY_RELATED + 1], ct[256], body[512];
	static struct rec r;
	size_t bad = 0;
	struct mp_parser *p;
	int n, rc;

	(void)snprintf(ct, sizeof(ct), "multipart/related; "
	    "type=\"application/dicom\"; boundary=%s", b73);
	is_int(mp_boundary_related(ct, out, sizeof(out)), MP_OK,
	    "related: a 73-character boundary accepted");
	is_str(out, b73, "related: the boundary copied");
	is_int(mp_boundary(ct, out, sizeof(out)), MP_ERR_SYNTAX,
	    "related: not form-data for mp_boundary");
	is_int(mp_boundary_related("multipart/form-data; boundary=x", out,
	    sizeof(out)), MP_ERR_SYNTAX, "related: form-data refused");
	ok(mp_new(b73, &cbs, NULL) == NULL, "related: mp_new keeps RFC 2046's 70");
	n = snprintf(body, sizeof(body), "--%s\r\nContent-Type: application/dicom"
	    "\r\nContent-Length: 3\r\n\r\nA\r\n\r\n--%s\r\n"
	    "Content-Type: application/dicom\r\n\r\nB\r\n--%s--\r\n",
	    b73, b73, b73);
	for (size_t step = 1; step <= (size_t)n; step += step < 8 ? 1 : 37) {
		memset(&r, 0, sizeof(r));
		p = mp_new_related(b73, &cbs, &r);
		rc = p != NULL ? MP_OK : 99;
		for (size_t at = 0; rc == MP_OK && at < (size_t)n; at += step)
			rc = mp_feed(p, body + at, (size_t)n - at < step ?
			    (size_t)n - at : step);
		if (rc == MP_OK)
			rc = mp_finish(p);
		mp_free(p);
		if (rc != MP_OK || strcmp(r.log, "[||application/dicom]A\r\n{/}"
		    "[||application/dicom]B{/}") != 0)
			bad = step;
	}
	is_int((long long)bad, 0, "related: two parts without "
	    "Content-Disposition, every split (0: no step failed)");
}

int
main(void)
{
	test_boundary();
	test_related();
	test_new();
	test_basic();
	test_framing();
	test_headers();
	test_bounds();
	test_truncated();
	test_errors_sticky();
	test_callbacks();
	test_splits();
	test_large();
	test_text_fields();
	return done_testing();
}
