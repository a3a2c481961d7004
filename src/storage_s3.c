/* storage_s3.c — the S3-compatible back end (AWS S3, MinIO, Ceph RGW,
 * Wasabi …) of the storage interface.
 *
 * Every request is made by this worker's one libcurl easy handle, created
 * after fork and kept for the worker's life: curl_easy_reset() between
 * requests clears the options but keeps the connection cache, so requests
 * to the same endpoint reuse one kept-alive (TLS) connection. Each request
 * is signed by sigv4.c, the same signer that makes the presigned URLs handed
 * to clients; libcurl's own CURLOPT_AWS_SIGV4 is not used (docs/design.md,
 * "Facts checked on this platform").
 * The plumbing shared with the Supabase back end — the bounded buffer, the
 * upload and download callbacks, the sinks, the pause between attempts —
 * is in storage_http.c; this file keeps what is S3's own: signing, the
 * retry policy below, the XML of errors and listings.
 *
 * Uploads. put_file reads the temp file twice: once to compute its SHA-256
 * (sent and signed as x-amz-content-sha256, so S3 rejects a body that was
 * damaged on the way) and its MD5 (see retries below), then again while
 * curl streams it from the file descriptor — no whole-file buffer. The PUT
 * carries a signed "If-None-Match: *": S3 creates the object only if the key
 * is free, so an upload can never overwrite an object (412 → PI_ERR_EXISTS),
 * matching the local back end's RENAME_NOREPLACE. S3 writes are atomic: an
 * object is absent or complete, never half-written under its key.
 *
 * Retries. Connection errors, timeouts, 5xx and 429 are retried twice,
 * after 100 ms and 400 ms, for the idempotent operations (GET, HEAD,
 * DELETE, list). storage_timeout bounds an operation with all its
 * attempts: each attempt gets what is left, and none starts with less than
 * a second, so a storage that hangs costs one timeout, not three (a
 * worker's request_timeout must still cover the few storage operations of
 * a request). The conditional PUT is retried too, because If-None-Match
 * makes a repeat harmless: it can never overwrite anything. The one
 * ambiguity — the first attempt did land but its answer was lost, so the
 * retry meets our own object and gets 412 — is settled by a HEAD: if the
 * object there has our size and an ETag equal to the MD5 of our bytes (what
 * S3 returns for a single-part PUT), the upload succeeded; otherwise
 * PI_ERR_EXISTS. A 409 (S3's answer to two conditional writes racing) is
 * retried as S3 documents. A download is retried only before any byte
 * reached the caller (fetch truncates its file and starts over; stream,
 * whose bytes are already on their way to a client, does not retry after
 * the first byte). check (the health probe: HEAD on the bucket) makes one
 * attempt of at most five seconds: it should answer quickly, not well.
 *
 * Permissions: the credentials need s3:GetObject, s3:PutObject and
 * s3:DeleteObject on the keys, and s3:ListBucket on the bucket (check,
 * `polaimg sweep`, and S3 answers 404 rather than 403 for a missing key only
 * with it).
 *
 * Errors. 404 is PI_ERR_NOT_FOUND for stat, fetch and stream and success for
 * del; every other failure — connection, timeout, 5xx, 403 and the other
 * 4xx — is PI_ERR_STORAGE, logged with the method, the key and S3's <Code>
 * element. Keys carry no patient data; the URL, the signature and the
 * credentials are never logged.
 *
 * Listing uses ListObjectsV2 with continuation tokens; the XML is read with
 * a small bounded scanner that only looks for the few elements it needs
 * (Contents/Key/LastModified, IsTruncated, NextContinuationToken) and
 * decodes XML character references; anything malformed fails the listing
 * rather than being guessed at.
 */
#include "storage.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "common.h"
#include "config.h"
#include "log.h"
#include "sigv4.h"
#include "storage_http.h"
#include "storage_s3.h"

#define S3_ATTEMPTS        SHTTP_ATTEMPTS
#define S3_ERRBODY_MAX     8192                 /* kept of an error answer */
#define S3_LISTBODY_MAX    (16 * 1024 * 1024)   /* one ListObjectsV2 page */
#define S3_MAX_KEY         1024
#define S3_MAX_TOKEN       4096
#define S3_MAX_EXTRA       4
#define S3_CONNECT_TIMEOUT_MS 10000L            /* at most, per attempt */
#define S3_CHECK_TIMEOUT_MS   5000L             /* the health probe */
#define S3_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The worker-lifetime state of the back end (st->impl). */
struct s3 {
	CURL *curl;
	struct sigv4_cred cred;     /* points into the configuration */
	struct sigv4_target tgt;
	long timeout_ms;            /* one operation, all attempts */
	long connect_timeout_ms;
	char errbuf[CURL_ERROR_SIZE];
	int curl_global;            /* curl_global_init() succeeded */
};

/* Where a 2xx answer's body goes: write() gets the bytes in order and
 * returns 0, or non-zero to abort; rewind(), when not NULL, lets a retry
 * start over after bytes were written. */
struct s3_sink {
	int (*write)(void *ud, const char *buf, size_t n);
	int (*rewind)(void *ud);
	void *ud;
};

/* One request and what came back. */
struct s3_req {
	/* what to send */
	const char *method;          /* GET, HEAD, PUT, DELETE */
	const char *key;             /* NULL: the bucket */
	const char *query;           /* NULL or an encoded query */
	struct sigv4_header extra[S3_MAX_EXTRA];
	size_t nextra;
	const char *payload_hash;    /* hex SHA-256 of the body */
	int upload_fd;               /* PUT body, -1 for none */
	int64_t upload_size;
	const struct s3_sink *sink;  /* a 2xx body; NULL: dropped */
	int retry;                   /* may be attempted S3_ATTEMPTS times */
	long budget_ms;              /* 0: the back end's timeout */
	/* what came back (of the last attempt) */
	CURL *curl;
	CURLcode cc;
	long status;
	int64_t content_length;      /* -1 if unknown */
	time_t mtime;                /* Last-Modified, -1 if unknown */
	char etag[80];               /* as sent, quotes included */
	struct shttp_buf err;           /* body of a non-2xx answer */
	int64_t delivered;           /* bytes given to the sink */
	int sink_failed;             /* the sink refused bytes */
	int attempts;
};

/* ------------------------------------------------------------------------ */
/* Small helpers. */

/* Finds the first <name>text</name> in [p, end): *val and *vlen get the
 * raw text, *after points past the closing tag. 0, or -1 if absent. */
static int
xml_elem(const char *p, const char *end, const char *name, const char **val,
    size_t *vlen, const char **after)
{
	char open[48], close[48];
	const char *s, *e;
	size_t on, cn;
	int n;

	n = snprintf(open, sizeof(open), "<%s>", name);
	if (n < 0 || (size_t)n >= sizeof(open))
		return -1;
	on = (size_t)n;
	n = snprintf(close, sizeof(close), "</%s>", name);
	if (n < 0 || (size_t)n >= sizeof(close))
		return -1;
	cn = (size_t)n;
	if (p >= end)
		return -1;
	s = memmem(p, (size_t)(end - p), open, on);
	if (s == NULL)
		return -1;
	s += on;
	e = memmem(s, (size_t)(end - s), close, cn);
	if (e == NULL)
		return -1;
	*val = s;
	*vlen = (size_t)(e - s);
	if (after != NULL)
		*after = e + cn;
	return 0;
}

/* Appends code point cp as UTF-8; 0, or -1 if it is not a character XML
 * allows or does not fit. */
static int
utf8_put(unsigned long cp, char *out, size_t outsz, size_t *o)
{
	unsigned char b[4];
	size_t n;

	if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
		return -1;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xC0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xE0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xF0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (*o + n >= outsz)
		return -1;
	memcpy(out + *o, b, n);
	*o += n;
	return 0;
}

/* Decodes XML text (the five named entities and &#N; / &#xH; references)
 * into out (NUL-terminated). Returns the length, or -1 for a malformed
 * reference, a NUL, or text that does not fit. */
static long
xml_unescape(const char *s, size_t n, char *out, size_t outsz)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' },
		{ "quot;", '"' }, { "apos;", '\'' },
	};
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\0')
			return -1;
		if (s[i] != '&') {
			if (o + 1 >= outsz)
				return -1;
			out[o++] = s[i];
			continue;
		}
		i++;
		if (i < n && s[i] == '#') {
			unsigned long cp = 0;
			int hex = 0, digits = 0;

			i++;
			if (i < n && (s[i] == 'x' || s[i] == 'X')) {
				hex = 1;
				i++;
			}
			for (; i < n && s[i] != ';'; i++) {
				int d;
				char c = s[i];

				d = hex ? pi_hexval((unsigned char)c) :
				    c >= '0' && c <= '9' ? c - '0' : -1;
				if (d < 0)
					return -1;
				cp = cp * (hex ? 16u : 10u) + (unsigned long)d;
				if (cp > 0x10FFFF || ++digits > 8)
					return -1;
			}
			if (i >= n || digits == 0 ||
			    utf8_put(cp, out, outsz, &o) != 0)
				return -1;
			continue;
		}
		{
			size_t k;

			for (k = 0; k < PI_ARRAY_LEN(named); k++) {
				size_t ln = strlen(named[k].name);

				if (n - i >= ln && memcmp(s + i, named[k].name, ln) == 0)
					break;
			}
			if (k == PI_ARRAY_LEN(named) || o + 1 >= outsz)
				return -1;
			out[o++] = named[k].c;
			i += strlen(named[k].name) - 1;
		}
	}
	if (o >= outsz)
		return -1;
	out[o] = '\0';
	return (long)o;
}

/* Parses S3's "2024-05-01T12:00:00.000Z" (fraction optional) into *t.
 * pi_timegm() rolls a day past the month's end (Feb 31) and second 60 over
 * into the next month or minute, as timegm() did. */
static int
parse_iso8601(const char *s, size_t n, time_t *t)
{
	struct tm tm;
	int v[6];
	static const int pos[6] = { 0, 5, 8, 11, 14, 17 };
	static const int len[6] = { 4, 2, 2, 2, 2, 2 };

	if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[n - 1] != 'Z')
		return -1;
	for (int i = 0; i < 6; i++)
		if (pi_digits(s + pos[i], (size_t)len[i], &v[i]) != 0)
			return -1;
	if (n > 20) {
		if (s[19] != '.')
			return -1;
		for (size_t i = 20; i < n - 1; i++)
			if (s[i] < '0' || s[i] > '9')
				return -1;
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return -1;
	tm = pi_tm(v[0], v[1], v[2], v[3], v[4], v[5]);
	*t = (time_t)pi_timegm(&tm);
	return 0;
}

/* S3's <Code> from an error body, reduced to [A-Za-z0-9.] so that a log line
 * can hold nothing else; "-" when there is none. */
static void
s3_error_code(const struct shttp_buf *b, char *out, size_t outsz)
{
	const char *v;
	size_t vn, o = 0;

	if (b->p != NULL &&
	    xml_elem(b->p, b->p + b->len, "Code", &v, &vn, NULL) == 0) {
		for (size_t i = 0; i < vn && o + 1 < outsz; i++) {
			char c = v[i];

			if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '.')
				out[o++] = c;
		}
	}
	if (o == 0 && outsz > 1)
		out[o++] = '-';
	out[o] = '\0';
}

/* ------------------------------------------------------------------------ */
/* curl callbacks. */

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *r = ud;
	size_t n = size * nmemb;

	if (r->status == 0 &&
	    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &r->status) != CURLE_OK)
		return 0;
	if (r->status >= 200 && r->status < 300) {
		if (r->sink == NULL)
			return n;
		if (r->sink->write(r->sink->ud, ptr, n) != 0) {
			r->sink_failed = 1;
			return 0;
		}
		r->delivered += (int64_t)n;
		return n;
	}
	/* An error answer: keep its start for the <Code>, drop the rest. */
	(void)shttp_buf_add(&r->err, ptr, n);
	return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *r = ud;
	size_t n = size * nmemb, vn;
	const char *v;

	if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
		/* A new response (after "100 Continue"): forget the last. */
		r->etag[0] = '\0';
		r->status = 0;
		return n;
	}
	if (shttp_header_value(ptr, n, "etag", &v, &vn) &&
	    vn < sizeof(r->etag)) {
		memcpy(r->etag, v, vn);
		r->etag[vn] = '\0';
	}
	return n;
}

/* ------------------------------------------------------------------------ */
/* Making a request. */

#define SETOPT(h, opt, val) do { \
	if (cc == CURLE_OK) \
		cc = curl_easy_setopt((h), (opt), (val)); \
} while (0)

/* One attempt of r with at most timeout_ms: sign it as of now, send it,
 * fill r's results.
 * Returns 0 when an HTTP answer came back (any status; r->cc is CURLE_OK),
 * PI_ERR_STORAGE for a transfer failure (r->cc says which),
 * PI_ERR_INVALID if the request cannot be signed (bad key), or
 * PI_ERR_NOMEM. */
static int
s3_attempt(struct s3 *s, struct s3_req *r, long timeout_ms)
{
	char *url = NULL, *hdr[4] = { NULL, NULL, NULL, NULL };
	struct curl_slist *list = NULL;
	CURL *h = s->curl;
	CURLcode cc = CURLE_OK;
	curl_off_t clen = -1, ftime = -1;
	int rc = PI_ERR_NOMEM;

	r->curl = h;
	r->status = 0;
	r->content_length = -1;
	r->mtime = -1;
	r->etag[0] = '\0';
	r->sink_failed = 0;
	r->cc = CURLE_OK;
	s->errbuf[0] = '\0';
	shttp_buf_clear(&r->err);

	if (sigv4_sign_request(&s->cred, &s->tgt, r->method, r->key, r->query,
	    r->extra, r->nextra, r->payload_hash, (int64_t)time(NULL), &url,
	    hdr) != 0) {
		rc = PI_ERR_INVALID;
		goto out;
	}
	for (int i = 0; i < 4; i++)
		if ((rc = shttp_header_add(&list, hdr[i])) != 0)
			goto out;
	for (size_t i = 0; i < r->nextra; i++)
		if ((rc = shttp_header_addf(&list, r->extra[i].name,
		    r->extra[i].value)) != 0)
			goto out;

	cc = shttp_setup(h, url, list, s->errbuf, on_body, on_header, r);
	SETOPT(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < s->connect_timeout_ms ?
	    timeout_ms : s->connect_timeout_ms);
	SETOPT(h, CURLOPT_FILETIME, 1L);
	if (strcmp(r->method, "HEAD") == 0) {
		SETOPT(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "PUT") == 0) {
		SETOPT(h, CURLOPT_UPLOAD, 1L);
		SETOPT(h, CURLOPT_READFUNCTION, shttp_read_fd);
		SETOPT(h, CURLOPT_READDATA, &r->upload_fd);
		SETOPT(h, CURLOPT_SEEKFUNCTION, shttp_seek_fd);
		SETOPT(h, CURLOPT_SEEKDATA, &r->upload_fd);
		SETOPT(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->upload_size);
	} else if (strcmp(r->method, "GET") != 0) {
		SETOPT(h, CURLOPT_CUSTOMREQUEST, r->method);
	}
	if (cc != CURLE_OK) {
		log_error("storage: s3: cannot set up a request: %s",
		    curl_easy_strerror(cc));
		rc = PI_ERR_INTERNAL;
		goto out;
	}

	r->cc = curl_easy_perform(h);
	if (r->cc != CURLE_OK) {
		rc = PI_ERR_STORAGE;
		goto out;
	}
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status) != CURLE_OK ||
	    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen) != CURLE_OK ||
	    curl_easy_getinfo(h, CURLINFO_FILETIME_T, &ftime) != CURLE_OK) {
		rc = PI_ERR_STORAGE;
		goto out;
	}
	r->content_length = clen;
	r->mtime = ftime >= 0 ? (time_t)ftime : -1;
	rc = 0;
out:
	curl_slist_free_all(list);
	free(url);
	for (int i = 0; i < 4; i++)
		free(hdr[i]);
	return rc;
}

/* May a failed attempt be repeated? Only for failures that say nothing
 * about the object: no connection, a timeout, a server error, throttling;
 * never after the sink refused bytes or when the request itself was bad. */
static int
s3_transient(const struct s3_req *r, int rc)
{
	if (rc == PI_ERR_STORAGE) {
		switch (r->cc) {
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return 1;
		default:
			return 0;
		}
	}
	if (rc != 0)
		return 0;
	return r->status >= 500 || r->status == 429 ||
	    (r->status == 409 && strcmp(r->method, "PUT") == 0);
}

/* Runs r, with retries when r->retry, within r->budget_ms (or the back
 * end's timeout). Returns as s3_attempt() for the last attempt. */
static int
s3_perform(struct s3 *s, struct s3_req *r)
{
	long budget = r->budget_ms > 0 ? r->budget_ms : s->timeout_ms;
	long start = shttp_now_ms(), left;
	int rc = PI_ERR_STORAGE;

	for (r->attempts = 1;; r->attempts++) {
		if (r->upload_fd >= 0 && lseek(r->upload_fd, 0, SEEK_SET) != 0) {
			log_error("storage: s3: cannot rewind the upload: %s",
			    strerror(errno));
			return PI_ERR_IO;
		}
		if (r->delivered > 0) {
			if (r->sink == NULL || r->sink->rewind == NULL ||
			    r->sink->rewind(r->sink->ud) != 0)
				break;
			r->delivered = 0;
		}
		left = budget - (shttp_now_ms() - start);
		if (left < 1)
			left = 1;
		rc = s3_attempt(s, r, left);
		if (!r->retry || r->attempts >= S3_ATTEMPTS || !s3_transient(r, rc))
			break;
		if (r->delivered > 0 &&
		    (r->sink == NULL || r->sink->rewind == NULL))
			break;
		/* No retry that could not get a second to work in. */
		if (budget - (shttp_now_ms() - start) -
		    shttp_backoff_ms(r->attempts) < 1000)
			break;
		if (rc != 0)
			log_warn("storage: s3 %s %s: %s; retrying in %ld ms",
			    r->method, r->key != NULL ? r->key : "(bucket)",
			    s->errbuf[0] != '\0' ? s->errbuf :
			    curl_easy_strerror(r->cc), shttp_backoff_ms(r->attempts));
		else
			log_warn("storage: s3 %s %s: HTTP %ld; retrying in %ld ms",
			    r->method, r->key != NULL ? r->key : "(bucket)",
			    r->status, shttp_backoff_ms(r->attempts));
		shttp_sleep_ms(shttp_backoff_ms(r->attempts));
	}
	return rc;
}

/* Logs why r failed (rc from s3_perform, or 0 with an unexpected status). */
static void
s3_log_failure(const struct s3 *s, const struct s3_req *r, int rc)
{
	char code[64];
	const char *key = r->key != NULL ? r->key : "(bucket)";

	if (rc == PI_ERR_INVALID) {
		log_error("storage: s3 %s %s: the request cannot be signed "
		    "(invalid key?)", r->method, key);
	} else if (rc != 0) {
		log_error("storage: s3 %s %s failed after %d attempt%s: %s",
		    r->method, key, r->attempts, r->attempts == 1 ? "" : "s",
		    r->sink_failed ? "the receiver stopped" :
		    s->errbuf[0] != '\0' ? s->errbuf : curl_easy_strerror(r->cc));
	} else {
		s3_error_code(&r->err, code, sizeof(code));
		log_error("storage: s3 %s %s: HTTP %ld %s (after %d attempt%s)",
		    r->method, key, r->status, code, r->attempts,
		    r->attempts == 1 ? "" : "s");
	}
}

static void
req_init(struct s3_req *r, const char *method, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->key = key;
	r->payload_hash = S3_EMPTY_SHA256;
	r->upload_fd = -1;
	r->retry = 1;
	r->err.max = S3_ERRBODY_MAX;
}

static int
status_ok(const struct s3_req *r)
{
	return r->status >= 200 && r->status < 300;
}

/* ------------------------------------------------------------------------ */
/* The operations. */

/* SHA-256 and MD5 of the file behind fd, read from its start, as lower-case
 * hex; its size in *size. 0, or PI_ERR_IO. */
static int
hash_file(int fd, char sha_hex[65], char md5_hex[33], int64_t *size)
{
	EVP_MD_CTX *sha = EVP_MD_CTX_new(), *md5 = EVP_MD_CTX_new();
	unsigned char buf[65536], d[EVP_MAX_MD_SIZE];
	unsigned int dn = 0;
	int64_t total = 0;
	ssize_t n;
	int rc = PI_ERR_IO;

	if (sha == NULL || md5 == NULL ||
	    EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestInit_ex(md5, EVP_md5(), NULL) != 1)
		goto out;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (EVP_DigestUpdate(sha, buf, (size_t)n) != 1 ||
		    EVP_DigestUpdate(md5, buf, (size_t)n) != 1)
			goto out;
		total += n;
	}
	if (EVP_DigestFinal_ex(sha, d, &dn) != 1 || dn != 32)
		goto out;
	pi_hex(d, 32, sha_hex);
	if (EVP_DigestFinal_ex(md5, d, &dn) != 1 || dn != 16)
		goto out;
	pi_hex(d, 16, md5_hex);
	*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(sha);
	EVP_MD_CTX_free(md5);
	return rc;
}

/* After a retried conditional PUT met 412: is the object at key the one we
 * sent (size and single-part ETag = MD5)? 1 yes, 0 no or unknown. */
static int
s3_is_our_object(struct s3 *s, const char *key, int64_t size,
    const char *md5_hex)
{
	struct s3_req r;
	char want[40];
	int rc, same = 0;

	req_init(&r, "HEAD", key);
	rc = s3_perform(s, &r);
	if (rc == 0 && status_ok(&r) && r.content_length == size &&
	    snprintf(want, sizeof(want), "\"%s\"", md5_hex) == 34 &&
	    strcasecmp(r.etag, want) == 0)
		same = 1;
	shttp_buf_free(&r.err);
	return same;
}

static int
s3_put_file(struct storage *st, const char *key, const char *src_path,
    const char *content_type)
{
	struct s3 *s = st->impl;
	struct s3_req r;
	char sha_hex[65], md5_hex[33];
	int64_t size = 0;
	int fd, rc;

	req_init(&r, "PUT", key);
	fd = open(src_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("storage: s3 PUT %s: cannot open the source: %s", key,
		    strerror(errno));
		return PI_ERR_IO;
	}
	rc = hash_file(fd, sha_hex, md5_hex, &size);
	if (rc != 0) {
		log_error("storage: s3 PUT %s: cannot read the source: %s", key,
		    strerror(errno));
		goto out;
	}
	if (content_type != NULL && content_type[0] != '\0') {
		r.extra[r.nextra].name = "content-type";
		r.extra[r.nextra++].value = content_type;
	}
	r.extra[r.nextra].name = "if-none-match";
	r.extra[r.nextra++].value = "*";
	r.payload_hash = sha_hex;
	r.upload_fd = fd;
	r.upload_size = size;
	rc = s3_perform(s, &r);
	if (rc == 0 && status_ok(&r)) {
		rc = 0;
	} else if (rc == 0 && r.status == 412) {
		if (r.attempts > 1 && s3_is_our_object(s, key, size, md5_hex)) {
			log_info("storage: s3 PUT %s: an earlier attempt had "
			    "stored it", key);
			rc = 0;
		} else
			rc = PI_ERR_EXISTS;
	} else {
		s3_log_failure(s, &r, rc);
		rc = rc == PI_ERR_IO || rc == PI_ERR_INVALID ? rc : PI_ERR_STORAGE;
	}
	if (rc == 0 && unlink(src_path) != 0)
		log_warn("storage: s3 PUT %s: stored, but the temp file stays: %s",
		    key, strerror(errno));
out:
	close(fd);
	shttp_buf_free(&r.err);
	return rc;
}

static int
s3_stat(struct storage *st, const char *key, struct storage_stat *out)
{
	struct s3 *s = st->impl;
	struct s3_req r;
	int rc;

	req_init(&r, "HEAD", key);
	rc = s3_perform(s, &r);
	if (rc == 0 && status_ok(&r) && r.content_length >= 0) {
		out->size = r.content_length;
		out->mtime = r.mtime >= 0 ? r.mtime : 0;
	} else if (rc == 0 && r.status == 404) {
		rc = PI_ERR_NOT_FOUND;
	} else {
		s3_log_failure(s, &r, rc);
		rc = rc == PI_ERR_INVALID ? rc : PI_ERR_STORAGE;
	}
	shttp_buf_free(&r.err);
	return rc;
}

static int
s3_fetch(struct storage *st, const char *key, const char *dst_path)
{
	struct s3 *s = st->impl;
	struct s3_req r;
	struct shttp_file_sink f;     /* a retry truncates the copy */
	struct s3_sink sink = { shttp_file_write, shttp_file_rewind, &f };
	int rc;

	req_init(&r, "GET", key);
	f.fd = open(dst_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (f.fd < 0) {
		log_error("storage: s3 GET %s: cannot create the copy: %s", key,
		    strerror(errno));
		return PI_ERR_IO;
	}
	r.sink = &sink;
	rc = s3_perform(s, &r);
	if (rc == 0 && status_ok(&r)) {
		rc = 0;
	} else if (rc == 0 && r.status == 404) {
		rc = PI_ERR_NOT_FOUND;
	} else if (r.sink_failed) {
		log_error("storage: s3 GET %s: cannot write the copy: %s", key,
		    strerror(errno));
		rc = PI_ERR_IO;
	} else {
		s3_log_failure(s, &r, rc);
		rc = rc == PI_ERR_INVALID ? rc : PI_ERR_STORAGE;
	}
	/* Never leave a partial copy that could pass for the object. */
	if (rc != 0)
		(void)shttp_file_rewind(&f);
	if (close(f.fd) != 0 && rc == 0)
		rc = PI_ERR_IO;
	shttp_buf_free(&r.err);
	return rc;
}

static int
s3_del(struct storage *st, const char *key)
{
	struct s3 *s = st->impl;
	struct s3_req r;
	int rc;

	req_init(&r, "DELETE", key);
	rc = s3_perform(s, &r);
	if (rc == 0 && (status_ok(&r) || r.status == 404)) {
		rc = 0;
	} else {
		s3_log_failure(s, &r, rc);
		rc = rc == PI_ERR_INVALID ? rc : PI_ERR_STORAGE;
	}
	shttp_buf_free(&r.err);
	return rc;
}

/* Calls cb for every <Contents> of one ListObjectsV2 page; sets *stop when
 * cb asked to stop, and copies the continuation token (decoded) into token
 * when the page is truncated (token[0] = '\0' otherwise). 0, or
 * PI_ERR_STORAGE for XML that is not what S3 sends. */
static int
list_page(const char *p, size_t n, storage_list_cb cb, void *ud, int *stop,
    char *token, size_t tokensz)
{
	const char *end = p + n, *cur = p, *v, *after, *cv, *cafter;
	size_t vn, cvn;
	char key[S3_MAX_KEY + 1], when[64];
	time_t mtime;
	int truncated = 0;

	token[0] = '\0';
	while (xml_elem(cur, end, "Contents", &cv, &cvn, &cafter) == 0) {
		const char *ce = cv + cvn;

		if (xml_elem(cv, ce, "Key", &v, &vn, NULL) != 0 ||
		    xml_unescape(v, vn, key, sizeof(key)) <= 0)
			return PI_ERR_STORAGE;
		/* An unreadable date counts as "just now": sweep then leaves
		 * the object alone rather than calling it an old orphan. */
		mtime = time(NULL);
		if (xml_elem(cv, ce, "LastModified", &v, &vn, NULL) == 0 &&
		    xml_unescape(v, vn, when, sizeof(when)) > 0)
			(void)parse_iso8601(when, strlen(when), &mtime);
		if (cb(ud, key, mtime) != 0) {
			*stop = 1;
			return 0;
		}
		cur = cafter;
	}
	if (xml_elem(p, end, "IsTruncated", &v, &vn, &after) == 0 &&
	    vn == 4 && memcmp(v, "true", 4) == 0)
		truncated = 1;
	if (truncated) {
		if (xml_elem(p, end, "NextContinuationToken", &v, &vn, NULL) != 0 ||
		    xml_unescape(v, vn, token, tokensz) <= 0)
			return PI_ERR_STORAGE;
	}
	return 0;
}

static int
s3_list(struct storage *st, const char *prefix, storage_list_cb cb, void *ud)
{
	struct s3 *s = st->impl;
	struct s3_req r;
	struct shttp_buf body = { .max = S3_LISTBODY_MAX };   /* one page */
	struct s3_sink sink = { shttp_mem_write, shttp_mem_rewind, &body };
	char dir[S3_MAX_KEY + 2], enc_prefix[3 * (S3_MAX_KEY + 2) + 1];
	char *token = NULL, *enc_token = NULL, *query = NULL;
	size_t pn = strlen(prefix), qsz;
	int stop = 0, rc = PI_ERR_NOMEM, n;

	req_init(&r, "GET", NULL);
	/* Like the local back end, prefix names a directory: "cases" lists
	 * "cases/…", not "cases-old/…". */
	while (pn > 0 && prefix[pn - 1] == '/')
		pn--;
	if (pn > S3_MAX_KEY) {
		rc = PI_ERR_INVALID;
		goto out;
	}
	memcpy(dir, prefix, pn);
	if (pn > 0)
		dir[pn++] = '/';
	dir[pn] = '\0';
	if (sigv4_uri_encode(dir, pn, 0, enc_prefix, sizeof(enc_prefix)) < 0) {
		rc = PI_ERR_INVALID;
		goto out;
	}
	token = malloc(S3_MAX_TOKEN + 1);
	enc_token = malloc(3 * S3_MAX_TOKEN + 1);
	qsz = 64 + strlen(enc_prefix) + 3 * S3_MAX_TOKEN;
	query = malloc(qsz);
	if (token == NULL || enc_token == NULL || query == NULL)
		goto out;
	token[0] = '\0';
	for (int page = 0;; page++) {
		if (token[0] == '\0')
			n = snprintf(query, qsz, "list-type=2&prefix=%s", enc_prefix);
		else if (sigv4_uri_encode(token, strlen(token), 0, enc_token,
		    3 * S3_MAX_TOKEN + 1) < 0) {
			rc = PI_ERR_STORAGE;
			goto out;
		} else
			n = snprintf(query, qsz,
			    "list-type=2&prefix=%s&continuation-token=%s",
			    enc_prefix, enc_token);
		if (n < 0 || (size_t)n >= qsz) {
			rc = PI_ERR_STORAGE;
			goto out;
		}
		req_init(&r, "GET", NULL);
		r.query = query;
		r.sink = &sink;
		shttp_buf_clear(&body);
		rc = s3_perform(s, &r);
		if (rc != 0 || !status_ok(&r)) {
			s3_log_failure(s, &r, rc);
			rc = PI_ERR_STORAGE;
			goto out;
		}
		if (body.overflow || body.p == NULL) {
			log_error("storage: s3 list %s: page %d: %s", dir, page,
			    body.p == NULL ? "empty answer" : "answer too large");
			rc = PI_ERR_STORAGE;
			goto out;
		}
		shttp_buf_free(&r.err);
		rc = list_page(body.p, body.len, cb, ud, &stop, token,
		    S3_MAX_TOKEN + 1);
		if (rc != 0) {
			log_error("storage: s3 list %s: page %d: unexpected XML",
			    dir, page);
			goto out;
		}
		if (stop || token[0] == '\0')
			break;
	}
	rc = 0;
out:
	shttp_buf_free(&r.err);
	shttp_buf_free(&body);
	free(token);
	free(enc_token);
	free(query);
	return rc;
}

static char *
s3_presign(struct storage *st, const char *method, const char *key,
    const char *content_type, int64_t expires)
{
	struct s3 *s = st->impl;

	return sigv4_presign(&s->cred, &s->tgt, method, key, content_type,
	    expires, (int64_t)time(NULL));
}

/* stream's sink: passes on bytes start..end of the object. With a 206 the
 * answer is the range already; a server that ignored Range (200) sends the
 * whole object, so bytes before start and after end are dropped. */
struct range_sink {
	struct s3_req *r;
	long long start;
	long long want;          /* bytes to pass on; -1: to the end */
	long long pos;           /* offset in the object of the next byte */
	long long passed;
	int (*cb)(void *ud, const char *buf, size_t n);
	void *ud;
};

static int
range_write(void *ud, const char *buf, size_t n)
{
	struct range_sink *g = ud;

	if (g->pos < 0)
		g->pos = g->r->status == 206 ? g->start : 0;
	while (n > 0) {
		size_t take = n;

		if (g->pos < g->start) {
			long long skip = g->start - g->pos;

			if ((long long)take > skip)
				take = (size_t)skip;
			g->pos += (long long)take;
			buf += take;
			n -= take;
			continue;
		}
		if (g->want >= 0) {
			if (g->passed >= g->want)
				return 0;       /* surplus: dropped */
			if ((long long)take > g->want - g->passed)
				take = (size_t)(g->want - g->passed);
		}
		if (g->cb(g->ud, buf, take) != 0)
			return -1;
		g->pos += (long long)take;
		g->passed += (long long)take;
		buf += take;
		n -= take;
		if (g->want >= 0 && g->passed >= g->want)
			return 0;
	}
	return 0;
}

static int
s3_stream(struct storage *st, const char *key, long long start,
    long long end, int (*cb)(void *ud, const char *buf, size_t n), void *ud)
{
	struct s3 *s = st->impl;
	struct s3_req r;
	struct range_sink g;
	struct s3_sink sink = { range_write, NULL, &g };
	char range[64];
	int n, rc;

	if (start < 0 || (end >= 0 && end < start) || (end < 0 && end != -1))
		return PI_ERR_INVALID;
	req_init(&r, "GET", key);
	if (end >= 0)
		n = snprintf(range, sizeof(range), "bytes=%lld-%lld", start, end);
	else
		n = snprintf(range, sizeof(range), "bytes=%lld-", start);
	if (n < 0 || (size_t)n >= sizeof(range))
		return PI_ERR_INVALID;
	r.extra[r.nextra].name = "range";
	r.extra[r.nextra++].value = range;
	g.r = &r;
	g.start = start;
	g.want = end >= 0 ? end - start + 1 : -1;
	g.pos = -1;
	g.passed = 0;
	g.cb = cb;
	g.ud = ud;
	r.sink = &sink;
	rc = s3_perform(s, &r);
	if (rc == 0 && status_ok(&r)) {
		if (g.want >= 0 && g.passed != g.want) {
			log_error("storage: s3 GET %s: %lld of %lld bytes of the "
			    "range arrived", key, g.passed, g.want);
			rc = PI_ERR_STORAGE;
		} else
			rc = 0;
	} else if (rc == 0 && r.status == 404) {
		rc = PI_ERR_NOT_FOUND;
	} else if (rc == 0 && r.status == 416) {
		rc = PI_ERR_INVALID;
	} else if (r.sink_failed) {
		rc = PI_ERR_IO;       /* the client went away */
	} else {
		s3_log_failure(s, &r, rc);
		rc = rc == PI_ERR_INVALID ? rc : PI_ERR_STORAGE;
	}
	shttp_buf_free(&r.err);
	return rc;
}

static int
s3_check(struct storage *st)
{
	struct s3 *s = st->impl;
	struct s3_req r;
	int rc;

	/* The health probe: one quick attempt. */
	req_init(&r, "HEAD", NULL);
	r.retry = 0;
	r.budget_ms = s->timeout_ms < S3_CHECK_TIMEOUT_MS ? s->timeout_ms :
	    S3_CHECK_TIMEOUT_MS;
	rc = s3_perform(s, &r);
	if (rc == 0 && status_ok(&r)) {
		rc = 0;
	} else {
		s3_log_failure(s, &r, rc);
		rc = PI_ERR_STORAGE;
	}
	shttp_buf_free(&r.err);
	return rc;
}

static void
s3_destroy(struct storage *st)
{
	struct s3 *s = st->impl;

	if (s == NULL)
		return;
	if (s->curl != NULL)
		curl_easy_cleanup(s->curl);
	if (s->curl_global)
		curl_global_cleanup();
	free(s);
	st->impl = NULL;
}

/* --- settings to signer ------------------------------------------------ */

/*
 * Path style ("<endpoint>/<bucket>/<key>") is used when
 * storage_force_path_style is set, when the endpoint is an IP literal or
 * localhost (no DNS name can carry the bucket; MinIO and friends expect
 * path style there), and when the bucket is not a single DNS label (a
 * dotted bucket would not match the endpoint's wildcard TLS certificate —
 * the AWS SDKs fall back to path style for the same reason). Otherwise
 * virtual-host style ("<bucket>.<host>/<key>"), which AWS prefers.
 */

/* 1 if the host of endpoint ("scheme://host[:port][/path]") is an IPv4 or
 * IPv6 literal or "localhost"; 0 otherwise, also for "" (AWS). */
static int
endpoint_is_local_literal(const char *endpoint)
{
	char host[256];
	struct in_addr a;
	const char *p;
	size_t n;

	if (endpoint == NULL || endpoint[0] == '\0')
		return 0;
	p = strstr(endpoint, "://");
	p = p != NULL ? p + 3 : endpoint;
	if (*p == '[')
		return 1;
	n = strcspn(p, ":/?#");
	if (n == 0 || n >= sizeof(host))
		return 0;
	memcpy(host, p, n);
	host[n] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, host, &a) == 1;
}

/* 1 if bucket can be a DNS label in front of the endpoint's host. */
static int
bucket_is_dns_label(const char *bucket)
{
	size_t n = strlen(bucket);

	if (n < 3 || n > 63 || bucket[0] == '-' || bucket[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = bucket[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
	}
	return 1;
}

int
storage_s3_target(const struct config *cfg, struct sigv4_cred *cred,
    struct sigv4_target *tgt)
{
	if (cfg->storage_bucket == NULL || cfg->storage_bucket[0] == '\0' ||
	    cfg->storage_access_key_id == NULL ||
	    cfg->storage_access_key_id[0] == '\0' ||
	    cfg->storage_secret_access_key == NULL ||
	    cfg->storage_secret_access_key[0] == '\0' ||
	    cfg->storage_region == NULL || cfg->storage_region[0] == '\0')
		return PI_ERR_INVALID;
	cred->access_key_id = cfg->storage_access_key_id;
	cred->secret_access_key = cfg->storage_secret_access_key;
	cred->region = cfg->storage_region;
	cred->service = "s3";
	tgt->endpoint = cfg->storage_endpoint != NULL ? cfg->storage_endpoint : "";
	tgt->bucket = cfg->storage_bucket;
	tgt->path_style = cfg->storage_force_path_style ||
	    endpoint_is_local_literal(tgt->endpoint) ||
	    !bucket_is_dns_label(tgt->bucket);
	return 0;
}

int
storage_s3_init(struct storage *st, char *err, size_t errsz)
{
	struct s3 *s = calloc(1, sizeof(*s));
	char *probe = NULL;
	int rc = PI_ERR_INVALID;

	if (s == NULL) {
		(void)snprintf(err, errsz, "out of memory");
		rc = PI_ERR_NOMEM;
		goto out;
	}
	if (storage_s3_target(st->cfg, &s->cred, &s->tgt) != 0) {
		(void)snprintf(err, errsz, "storage_bucket, storage_region, "
		    "storage_access_key_id and storage_secret_access_key: "
		    "required for storage_provider = s3");
		goto out;
	}
	/* Sign once now, so a bad endpoint or bucket name stops the start
	 * instead of failing every request. */
	probe = sigv4_presign(&s->cred, &s->tgt, "GET", "probe", NULL, 60,
	    (int64_t)time(NULL));
	if (probe == NULL) {
		(void)snprintf(err, errsz, "storage_endpoint / storage_bucket: "
		    "not usable (endpoint must be http(s)://host[:port][/path], "
		    "bucket 3..63 characters)");
		goto out;
	}
	s->timeout_ms = (long)st->cfg->storage_timeout * 1000;
	s->connect_timeout_ms = S3_CONNECT_TIMEOUT_MS;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		(void)snprintf(err, errsz, "libcurl: initialisation failed");
		rc = PI_ERR_INTERNAL;
		goto out;
	}
	s->curl_global = 1;
	s->curl = curl_easy_init();
	if (s->curl == NULL) {
		(void)snprintf(err, errsz, "libcurl: cannot create a handle");
		rc = PI_ERR_INTERNAL;
		goto out;
	}
	st->impl = s;
	s = NULL;
	rc = 0;
out:
	free(probe);
	if (s != NULL) {
		if (s->curl_global)
			curl_global_cleanup();
		free(s);
	}
	return rc;
}

const struct storage_ops storage_s3_ops = {
	.name = "s3",
	.put_file = s3_put_file,
	.stat = s3_stat,
	.fetch = s3_fetch,
	.del = s3_del,
	.list = s3_list,
	.presign = s3_presign,
	.stream = s3_stream,
	.check = s3_check,
	.destroy = s3_destroy,
};
