/* sigv4.c — AWS Signature Version 4 for S3, over OpenSSL.
 *
 * Both kinds of S3 request polaimg makes go through this one signer: the
 * presigned URLs handed to clients (query-string authentication, the payload
 * is UNSIGNED-PAYLOAD) and the requests storage_s3.c sends itself
 * (Authorization header, x-amz-content-sha256 carries the body's SHA-256).
 * Each follows the published algorithm literally:
 *
 *   canonical request = method \n canonical URI \n canonical query \n
 *                       canonical headers \n signed headers \n payload hash
 *   string to sign    = "AWS4-HMAC-SHA256" \n amz-date \n scope \n
 *                       hex(SHA-256(canonical request))
 *   signature         = hex(HMAC(signing key, string to sign))
 *
 * S3 differs from the other AWS services in one point that matters here: the
 * canonical URI is the object key with every path segment RFC 3986-encoded
 * once ('/' kept), not encoded twice. The URL we hand out carries exactly the
 * encoded path and query we signed, so no client or proxy has to reproduce
 * our encoding — it only has to pass the URL through.
 *
 * The Host value is host[:port] of the endpoint, the port written only when
 * it is not the scheme's default (80 for http, 443 for https), which is what
 * the AWS SDKs send; with virtual-host addressing it is "<bucket>.<host>".
 *
 * The signing key depends on the secret, the day, the region and the service
 * only, so it is derived once per day and kept in a small static cache (four
 * HMACs saved per request). The cache is per process and needs no lock:
 * polaimg workers are single-threaded, and an entry inherited across fork()
 * is still correct because it is looked up by all four inputs. The secret
 * itself is not stored; entries are keyed by its SHA-256.
 *
 * Pure: no I/O, and the clock is an argument, so every output is
 * reproducible and the unit tests pin them to AWS's published examples.
 */
#include "sigv4.h"

#include "common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIGV4_ALGORITHM     "AWS4-HMAC-SHA256"
#define SIGV4_UNSIGNED      "UNSIGNED-PAYLOAD"
#define SIGV4_MAX_EXPIRES   604800          /* seven days, S3's limit */
#define SIGV4_MAX_KEY       1024            /* S3's object key limit */
#define SIGV4_MAX_SECRET    1024
#define SIGV4_MAX_AKID      128
#define SIGV4_MAX_SCOPE     64              /* region, service */
#define SIGV4_MAX_HOST      253             /* DNS name */
#define SIGV4_MAX_PREFIX    255             /* endpoint path prefix */
#define SIGV4_MAX_PARAMS    64              /* query parameters */
#define SIGV4_MAX_EXTRA     32              /* extra signed headers */
#define SIGV4_MAX_HNAME     64
#define SIGV4_MAX_HVALUE    4096
#define SIGV4_CACHE_SLOTS   4

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what "YYYYMMDD" can say. */
#define SIGV4_TIME_MIN      INT64_C(-62167219200)
#define SIGV4_TIME_MAX      INT64_C(253402300799)

/* ------------------------------------------------------------------------ */
/* A growing, always NUL-terminated string. Any failure sets err and turns
 * every later call into a no-op, so builders check once at the end. */

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	int err;
};

static int
sb_reserve(struct sbuf *b, size_t n)
{
	size_t want;
	char *np;

	if (b->err)
		return -1;
	if (n > SIZE_MAX - b->len - 1) {
		b->err = 1;
		return -1;
	}
	if (b->len + n + 1 <= b->cap)
		return 0;
	want = b->cap ? b->cap : 256;
	while (want < b->len + n + 1) {
		if (want > SIZE_MAX / 2) {
			want = b->len + n + 1;
			break;
		}
		want *= 2;
	}
	np = realloc(b->p, want);
	if (np == NULL) {
		b->err = 1;
		return -1;
	}
	b->p = np;
	b->cap = want;
	return 0;
}

static void
sb_addn(struct sbuf *b, const char *s, size_t n)
{
	if (sb_reserve(b, n) != 0)
		return;
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_adds(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

static void
sb_addc(struct sbuf *b, char c)
{
	sb_addn(b, &c, 1);
}

static void
sb_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* Hands the string to the caller (who frees it), or NULL after any error;
 * either way b is empty afterwards. */
static char *
sb_take(struct sbuf *b)
{
	char *p;

	if (b->err || sb_reserve(b, 0) != 0) {
		sb_free(b);
		return NULL;
	}
	b->p[b->len] = '\0';
	p = b->p;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

/* ------------------------------------------------------------------------ */
/* Character classes and encoding. */

static int
is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	    c == '~';
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static const char hex_upper[] = "0123456789ABCDEF";

/* Appends the SigV4 percent-encoding of in[0..n) to b. */
static void
sb_encode(struct sbuf *b, const char *in, size_t n, int keep_slash)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		char esc[3];

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			sb_addc(b, (char)c);
			continue;
		}
		esc[0] = '%';
		esc[1] = hex_upper[c >> 4];
		esc[2] = hex_upper[c & 0x0f];
		sb_addn(b, esc, 3);
	}
}

int
sigv4_uri_encode(const char *in, size_t inlen, int keep_slash, char *out,
    size_t outsz)
{
	size_t o = 0;

	if (out == NULL || outsz == 0 || (in == NULL && inlen > 0))
		return -1;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];

		if (is_unreserved(c) || (keep_slash && c == '/')) {
			if (outsz - o < 2)
				goto toolong;
			out[o++] = (char)c;
		} else {
			if (outsz - o < 4)
				goto toolong;
			out[o++] = '%';
			out[o++] = hex_upper[c >> 4];
			out[o++] = hex_upper[c & 0x0f];
		}
	}
	if (o > INT32_MAX)
		goto toolong;
	out[o] = '\0';
	return (int)o;
toolong:
	out[0] = '\0';
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Dates: proleptic Gregorian, UTC, no leap seconds (like SigV4 itself).
 * The calendar arithmetic is common.c's (pi_days_from_civil and its
 * inverse): it needs neither time_t nor the C library's time zone. */

static void
put_digits(char *out, int64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		out[i] = (char)('0' + (int)(v % 10));
		v /= 10;
	}
}

/* t outside 0000-01-01 .. 9999-12-31 is clamped to the nearest bound: the
 * format has four year digits. Signers refuse such times before formatting. */
void
sigv4_amz_date(int64_t t, char out[17])
{
	int64_t days, secs, y;
	int m, d;

	if (t < SIGV4_TIME_MIN)
		t = SIGV4_TIME_MIN;
	if (t > SIGV4_TIME_MAX)
		t = SIGV4_TIME_MAX;
	days = (t >= 0 ? t : t - 86399) / 86400;
	secs = t - days * 86400;
	pi_civil_from_days(days, &y, &m, &d);
	put_digits(out, y, 4);
	put_digits(out + 4, m, 2);
	put_digits(out + 6, d, 2);
	out[8] = 'T';
	put_digits(out + 9, secs / 3600, 2);
	put_digits(out + 11, secs / 60 % 60, 2);
	put_digits(out + 13, secs % 60, 2);
	out[15] = 'Z';
	out[16] = '\0';
}

static int
get_digits(const char *s, int n, unsigned *v)
{
	unsigned r = 0;

	for (int i = 0; i < n; i++) {
		if (!is_digit((unsigned char)s[i]))
			return -1;
		r = r * 10 + (unsigned)(s[i] - '0');
	}
	*v = r;
	return 0;
}

int
sigv4_parse_amz_date(const char *s, int64_t *t)
{
	unsigned y, mo, d, h, mi, se;

	if (s == NULL || t == NULL || strnlen(s, 17) != 16 || s[8] != 'T' ||
	    s[15] != 'Z')
		return PI_ERR_INVALID;
	if (get_digits(s, 4, &y) != 0 || get_digits(s + 4, 2, &mo) != 0 ||
	    get_digits(s + 6, 2, &d) != 0 || get_digits(s + 9, 2, &h) != 0 ||
	    get_digits(s + 11, 2, &mi) != 0 || get_digits(s + 13, 2, &se) != 0)
		return PI_ERR_INVALID;
	if (mo < 1 || mo > 12 || h > 23 || mi > 59 || se > 59)
		return PI_ERR_INVALID;
	if (d < 1 || d > (unsigned)pi_days_in_month(y, (int)mo))
		return PI_ERR_INVALID;
	*t = pi_days_from_civil(y, (int)mo, (int)d) * 86400 + (int64_t)h * 3600 +
	    (int64_t)mi * 60 + se;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Digests. */

static int
sha256_hex(const void *data, size_t n, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return -1;
	pi_hex(md, 32, out);
	return 0;
}

static int
hmac256(const void *key, size_t keylen, const void *data, size_t n,
    unsigned char out[32])
{
	unsigned int mdlen = 0;

	if (keylen > INT32_MAX)
		return -1;
	if (HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &mdlen) ==
	    NULL || mdlen != 32)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Input checks. */

static int
scope_part_ok(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strnlen(s, SIGV4_MAX_SCOPE + 1);
	if (n == 0 || n > SIGV4_MAX_SCOPE)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    is_digit(c) || c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* The access key id is written raw into the Authorization header's
 * Credential=<id>/<scope>, so it may not hold '/', ',', space or controls. */
static int
cred_ok(const struct sigv4_cred *cred)
{
	size_t n;

	if (cred == NULL || cred->access_key_id == NULL ||
	    cred->secret_access_key == NULL)
		return 0;
	n = strnlen(cred->access_key_id, SIGV4_MAX_AKID + 1);
	if (n == 0 || n > SIGV4_MAX_AKID)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)cred->access_key_id[i];

		if (c <= ' ' || c >= 0x7f || c == '/' || c == ',')
			return 0;
	}
	n = strnlen(cred->secret_access_key, SIGV4_MAX_SECRET + 1);
	if (n == 0 || n > SIGV4_MAX_SECRET)
		return 0;
	return scope_part_ok(cred->region) && scope_part_ok(cred->service);
}

static int
method_ok(const char *m)
{
	size_t n;

	if (m == NULL)
		return 0;
	n = strnlen(m, 17);
	if (n == 0 || n > 16)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return 0;
	return 1;
}

/* A key is 1..1024 bytes of anything; only the segments "." and ".." are
 * refused, because URL clients (curl, browsers) would remove them from the
 * path and the request would no longer match its signature. */
static int
key_ok(const char *key)
{
	size_t n, seg;

	if (key == NULL)
		return 0;
	n = strnlen(key, SIGV4_MAX_KEY + 1);
	if (n == 0 || n > SIGV4_MAX_KEY)
		return 0;
	seg = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || key[i] == '/') {
			size_t len = i - seg;

			if ((len == 1 && key[seg] == '.') ||
			    (len == 2 && key[seg] == '.' && key[seg + 1] == '.'))
				return 0;
			seg = i + 1;
		}
	}
	return 1;
}

/* Path style puts the bucket in the path (legacy names of up to 255 bytes
 * with upper case and '_' still work there); virtual-host style puts it in
 * a DNS label. Never fewer than 3 bytes, so never "." or "..". */
static int
bucket_ok(const char *b, int path_style)
{
	size_t n;

	if (b == NULL)
		return 0;
	n = strnlen(b, 256);
	if (n < 3 || n > (path_style ? 255u : 63u))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];

		if ((c >= 'a' && c <= 'z') || is_digit(c) || c == '.' ||
		    c == '-')
			continue;
		if (path_style && ((c >= 'A' && c <= 'Z') || c == '_'))
			continue;
		return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Endpoint. */

struct endpoint {
	const char *scheme;                       /* "http" or "https" */
	char host[SIGV4_MAX_HOST + 64 + 8];       /* [bucket.]host[:port] */
	char prefix[SIGV4_MAX_PREFIX + 1];        /* "" or "/a/b" */
};

/* Splits tgt->endpoint ("" or NULL: AWS for cred->region) into scheme, the
 * Host value and a path prefix. Only http and https are accepted, without
 * user info, query or fragment; the host is lower-cased as URL parsers do;
 * the port is dropped when it is the scheme's default. A path prefix (such
 * as "/storage/v1/s3") may hold only unreserved characters and '/'.
 * Returns 0, or -1 for anything else. */
static int
endpoint_parse(const struct sigv4_cred *cred, const struct sigv4_target *tgt,
    struct endpoint *ep)
{
	char host[SIGV4_MAX_HOST + 1 + 1 + 5 + 2 + 1];
	const char *s, *auth, *path, *colon = NULL;
	size_t hn = 0, an, pn;
	unsigned long port = 0;
	int n;

	ep->prefix[0] = '\0';
	if (!bucket_ok(tgt->bucket, tgt->path_style))
		return -1;
	s = tgt->endpoint;
	if (s == NULL || s[0] == '\0') {
		ep->scheme = "https";
		n = snprintf(host, sizeof(host), "s3.%s.amazonaws.com",
		    cred->region);
		if (n < 0 || (size_t)n >= sizeof(host))
			return -1;
		goto build;
	}
	if (strncasecmp(s, "https://", 8) == 0) {
		ep->scheme = "https";
		auth = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		ep->scheme = "http";
		auth = s + 7;
	} else
		return -1;
	path = strchr(auth, '/');
	an = path != NULL ? (size_t)(path - auth) : strlen(auth);
	if (an == 0)
		return -1;
	if (auth[0] == '[') {
		/* IPv6 literal: "[" hex digits, ':' and '.' "]". */
		const char *close = memchr(auth, ']', an);

		if (close == NULL)
			return -1;
		for (const char *p = auth + 1; p < close; p++)
			if (pi_hexval((unsigned char)*p) < 0 && *p != ':' &&
			    *p != '.')
				return -1;
		hn = (size_t)(close - auth) + 1;
		if (hn < 3)
			return -1;
		if (hn < an) {
			if (auth[hn] != ':')
				return -1;
			colon = auth + hn;
		}
	} else {
		for (hn = 0; hn < an && auth[hn] != ':'; hn++) {
			unsigned char c = (unsigned char)auth[hn];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    is_digit(c) || c == '.' || c == '-'))
				return -1;
		}
		if (hn == 0)
			return -1;
		if (hn < an)
			colon = auth + hn;
	}
	if (hn > SIGV4_MAX_HOST)
		return -1;
	if (colon != NULL) {
		const char *p = colon + 1, *end = auth + an;

		if (p == end || end - p > 5)
			return -1;
		for (; p < end; p++) {
			if (!is_digit((unsigned char)*p))
				return -1;
			port = port * 10 + (unsigned long)(*p - '0');
		}
		if (port == 0 || port > 65535)
			return -1;
	}
	for (size_t i = 0; i < hn; i++) {
		char c = auth[i];

		host[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	host[hn] = '\0';
	if (port != 0 && !(port == 443 && ep->scheme[4] == 's') &&
	    !(port == 80 && ep->scheme[4] == '\0')) {
		n = snprintf(host + hn, sizeof(host) - hn, ":%lu", port);
		if (n < 0 || (size_t)n >= sizeof(host) - hn)
			return -1;
	}
	if (path != NULL) {
		pn = strlen(path);
		while (pn > 0 && path[pn - 1] == '/')
			pn--;
		if (pn > SIGV4_MAX_PREFIX)
			return -1;
		for (size_t i = 0; i < pn; i++) {
			unsigned char c = (unsigned char)path[i];

			if (!is_unreserved(c) && c != '/')
				return -1;
		}
		memcpy(ep->prefix, path, pn);
		ep->prefix[pn] = '\0';
	}
build:
	if (tgt->path_style)
		n = snprintf(ep->host, sizeof(ep->host), "%s", host);
	else
		n = snprintf(ep->host, sizeof(ep->host), "%s.%s", tgt->bucket,
		    host);
	if (n < 0 || (size_t)n >= sizeof(ep->host))
		return -1;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Signing keys and their cache. */

struct key_slot {
	int used;
	unsigned char secret_sha[32];            /* SHA-256 of the secret */
	char date[9];
	char region[SIGV4_MAX_SCOPE + 1];
	char service[SIGV4_MAX_SCOPE + 1];
	unsigned char key[32];
};

/* Per process, unlocked: see the file comment. Round-robin replacement;
 * four slots hold today and yesterday for two credentials. */
static struct key_slot key_cache[SIGV4_CACHE_SLOTS];
static unsigned key_cache_next;

static int
date_ok(const char *date)
{
	if (date == NULL || strnlen(date, 9) != 8)
		return 0;
	for (int i = 0; i < 8; i++)
		if (!is_digit((unsigned char)date[i]))
			return 0;
	return 1;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service),
 * "aws4_request"), without the cache. Wipes its intermediates. */
static int
derive_key(const struct sigv4_cred *cred, const char *date,
    unsigned char out[32])
{
	unsigned char k[4 + SIGV4_MAX_SECRET];
	unsigned char a[32], b[32];
	size_t sn = strlen(cred->secret_access_key);
	int rc = -1;

	if (sn > SIGV4_MAX_SECRET)
		goto out;
	memcpy(k, "AWS4", 4);
	memcpy(k + 4, cred->secret_access_key, sn);
	if (hmac256(k, 4 + sn, date, 8, a) != 0 ||
	    hmac256(a, 32, cred->region, strlen(cred->region), b) != 0 ||
	    hmac256(b, 32, cred->service, strlen(cred->service), a) != 0 ||
	    hmac256(a, 32, "aws4_request", 12, out) != 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(a, sizeof(a));
	OPENSSL_cleanse(b, sizeof(b));
	return rc;
}

int
sigv4_signing_key(const struct sigv4_cred *cred, const char *date,
    unsigned char key[32])
{
	unsigned char sh[EVP_MAX_MD_SIZE];
	unsigned int shlen = 0;
	struct key_slot *slot;
	int rc = PI_ERR_INVALID;

	if (!cred_ok(cred) || !date_ok(date) || key == NULL)
		goto out;
	if (EVP_Digest(cred->secret_access_key,
	    strlen(cred->secret_access_key), sh, &shlen, EVP_sha256(),
	    NULL) != 1 || shlen != 32)
		goto out;
	for (size_t i = 0; i < SIGV4_CACHE_SLOTS; i++) {
		slot = &key_cache[i];
		if (slot->used && CRYPTO_memcmp(slot->secret_sha, sh, 32) == 0 &&
		    strcmp(slot->date, date) == 0 &&
		    strcmp(slot->region, cred->region) == 0 &&
		    strcmp(slot->service, cred->service) == 0) {
			memcpy(key, slot->key, 32);
			rc = 0;
			goto out;
		}
	}
	if (derive_key(cred, date, key) != 0)
		goto out;
	/* Lengths were bounded by cred_ok() and date_ok(). */
	slot = &key_cache[key_cache_next];
	key_cache_next = (key_cache_next + 1) % SIGV4_CACHE_SLOTS;
	memcpy(slot->secret_sha, sh, 32);
	memcpy(slot->date, date, 9);
	memcpy(slot->region, cred->region, strlen(cred->region) + 1);
	memcpy(slot->service, cred->service, strlen(cred->service) + 1);
	memcpy(slot->key, key, 32);
	slot->used = 1;
	rc = 0;
out:
	OPENSSL_cleanse(sh, sizeof(sh));
	return rc;
}

void
sigv4_key_cache_clear(void)
{
	OPENSSL_cleanse(key_cache, sizeof(key_cache));
	key_cache_next = 0;
}

/* ------------------------------------------------------------------------ */
/* Canonical request pieces. */

/* "<date>/<region>/<service>/aws4_request" into out; 0 or -1. */
static int
make_scope(const struct sigv4_cred *cred, const char *amzdate, char *out,
    size_t outsz)
{
	int n = snprintf(out, outsz, "%.8s/%s/%s/aws4_request", amzdate,
	    cred->region, cred->service);

	return (n < 0 || (size_t)n >= outsz) ? -1 : 0;
}

/* Signs a finished canonical request made at amzdate: writes the
 * signature, 64 hex digits and a NUL, into sig. 0 or -1. */
static int
sign_canonical(const struct sigv4_cred *cred, const char *amzdate,
    const char *scope, const struct sbuf *creq, char sig[65])
{
	struct sbuf sts = { 0 };
	unsigned char key[32], mac[32];
	char chash[65], date[9];
	int rc = -1;

	if (creq->err || sha256_hex(creq->p, creq->len, chash) != 0)
		goto out;
	sb_adds(&sts, SIGV4_ALGORITHM "\n");
	sb_adds(&sts, amzdate);
	sb_addc(&sts, '\n');
	sb_adds(&sts, scope);
	sb_addc(&sts, '\n');
	sb_adds(&sts, chash);
	if (sts.err)
		goto out;
	memcpy(date, amzdate, 8);
	date[8] = '\0';
	if (sigv4_signing_key(cred, date, key) != 0)
		goto out;
	if (hmac256(key, sizeof(key), sts.p, sts.len, mac) != 0)
		goto out;
	pi_hex(mac, sizeof(mac), sig);
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(mac, sizeof(mac));
	sb_free(&sts);
	return rc;
}

/* The path of the object (or of the bucket when key is NULL or ""), as sent
 * and as signed: [prefix][/bucket]/key with each key segment encoded once. */
static void
sb_canonical_uri(struct sbuf *b, const struct endpoint *ep,
    const struct sigv4_target *tgt, const char *key)
{
	sb_adds(b, ep->prefix);
	if (tgt->path_style) {
		sb_addc(b, '/');
		sb_adds(b, tgt->bucket);   /* bucket_ok(): nothing to encode */
	}
	if (key == NULL || key[0] == '\0') {
		if (!tgt->path_style)
			sb_addc(b, '/');
		return;
	}
	sb_addc(b, '/');
	sb_encode(b, key, strlen(key), 1);
}

/* Appends a header value as SigV4 canonicalises it: leading and trailing
 * blanks removed, inner runs of blanks (space, tab) made one space. Values
 * holding CR, LF or another control character are refused (-1): they could
 * only be a header injection. */
static int
sb_header_value(struct sbuf *b, const char *v)
{
	size_t n = strnlen(v, SIGV4_MAX_HVALUE + 1);
	int pending = 0, any = 0;

	if (n > SIGV4_MAX_HVALUE)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == ' ' || c == '\t') {
			pending = any;
			continue;
		}
		if (c < 0x20 || c == 0x7f)
			return -1;
		if (pending)
			sb_addc(b, ' ');
		sb_addc(b, (char)c);
		pending = 0;
		any = 1;
	}
	return b->err ? -1 : 0;
}

static int
payload_ok(const char *h)
{
	if (h == NULL)
		return 0;
	if (strcmp(h, SIGV4_UNSIGNED) == 0)
		return 1;
	if (strnlen(h, 65) != 64)
		return 0;
	for (int i = 0; i < 64; i++)
		if (!is_digit((unsigned char)h[i]) && !(h[i] >= 'a' && h[i] <= 'f'))
			return 0;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Presigned URLs. */

char *
sigv4_presign(const struct sigv4_cred *cred, const struct sigv4_target *tgt,
    const char *method, const char *key, const char *content_type,
    int64_t expires, int64_t now)
{
	struct endpoint ep;
	struct sbuf uri = { 0 }, q = { 0 }, ct = { 0 }, creq = { 0 };
	struct sbuf url = { 0 };
	char amzdate[17], scope[160], credential[SIGV4_MAX_AKID + 161];
	char num[24], sig[65];
	const char *signed_hdrs;
	char *res = NULL;
	int n;

	if (!cred_ok(cred) || tgt == NULL || !method_ok(method) ||
	    !key_ok(key) || expires < 1 || expires > SIGV4_MAX_EXPIRES ||
	    now < SIGV4_TIME_MIN || now > SIGV4_TIME_MAX)
		goto out;
	if (endpoint_parse(cred, tgt, &ep) != 0)
		goto out;
	if (content_type != NULL &&
	    (sb_header_value(&ct, content_type) != 0 || ct.len == 0))
		goto out;
	sigv4_amz_date(now, amzdate);
	if (make_scope(cred, amzdate, scope, sizeof(scope)) != 0)
		goto out;
	n = snprintf(credential, sizeof(credential), "%s/%s",
	    cred->access_key_id, scope);
	if (n < 0 || (size_t)n >= sizeof(credential))
		goto out;
	n = snprintf(num, sizeof(num), "%" PRId64, expires);
	if (n < 0 || (size_t)n >= sizeof(num))
		goto out;
	signed_hdrs = content_type != NULL ? "content-type;host" : "host";

	sb_canonical_uri(&uri, &ep, tgt, key);
	/* The parameters are written in canonical (sorted) order. */
	sb_adds(&q, "X-Amz-Algorithm=" SIGV4_ALGORITHM "&X-Amz-Credential=");
	sb_encode(&q, credential, strlen(credential), 0);
	sb_adds(&q, "&X-Amz-Date=");
	sb_adds(&q, amzdate);
	sb_adds(&q, "&X-Amz-Expires=");
	sb_adds(&q, num);
	sb_adds(&q, "&X-Amz-SignedHeaders=");
	sb_encode(&q, signed_hdrs, strlen(signed_hdrs), 0);
	if (uri.err || q.err)
		goto out;

	sb_adds(&creq, method);
	sb_addc(&creq, '\n');
	sb_adds(&creq, uri.p);
	sb_addc(&creq, '\n');
	sb_adds(&creq, q.p);
	sb_addc(&creq, '\n');
	if (content_type != NULL) {
		sb_adds(&creq, "content-type:");
		sb_adds(&creq, ct.p);
		sb_addc(&creq, '\n');
	}
	sb_adds(&creq, "host:");
	sb_adds(&creq, ep.host);
	sb_adds(&creq, "\n\n");
	sb_adds(&creq, signed_hdrs);
	sb_adds(&creq, "\n" SIGV4_UNSIGNED);
	if (sign_canonical(cred, amzdate, scope, &creq, sig) != 0)
		goto out;

	sb_adds(&url, ep.scheme);
	sb_adds(&url, "://");
	sb_adds(&url, ep.host);
	sb_adds(&url, uri.p);
	sb_addc(&url, '?');
	sb_adds(&url, q.p);
	sb_adds(&url, "&X-Amz-Signature=");
	sb_adds(&url, sig);
	res = sb_take(&url);
out:
	sb_free(&uri);
	sb_free(&q);
	sb_free(&ct);
	sb_free(&creq);
	sb_free(&url);
	return res;
}

/* ------------------------------------------------------------------------ */
/* Header-signed requests. */

struct qparam {
	char *name;       /* encoded, malloc'd */
	char *value;      /* encoded, malloc'd; "" when absent */
	int has_eq;       /* "name=" or "name=v" rather than "name" */
};

struct hline {
	char name[SIGV4_MAX_HNAME + 1];   /* lower-case */
	char *value;                      /* canonical, malloc'd */
};

/* One query name or value, made canonical: %XX sequences decoded, the bytes
 * then encoded again as SigV4 wants (upper-case hex, unreserved kept, '/'
 * encoded). The caller's encoding thus does not have to match ours exactly:
 * "cases/" and "cases%2f" both become "cases%2F", in the URL sent too.
 * A '%' not followed by two hex digits is refused. */
static int
query_norm(const char *s, size_t n, char **out)
{
	struct sbuf raw = { 0 }, enc = { 0 };
	int rc = -1;

	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (n - i < 3)
				goto out;
			hi = pi_hexval((unsigned char)s[i + 1]);
			lo = pi_hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				goto out;
			sb_addc(&raw, (char)(hi << 4 | lo));
			i += 2;
		} else
			sb_addc(&raw, s[i]);
	}
	sb_addn(&raw, "", 0);
	if (raw.err)
		goto out;
	sb_encode(&enc, raw.p, raw.len, 0);
	sb_addn(&enc, "", 0);
	*out = sb_take(&enc);
	if (*out != NULL)
		rc = 0;
out:
	sb_free(&raw);
	sb_free(&enc);
	return rc;
}

/* Splits query at '&' into ps[0..*np), each "name[=value]" normalised by
 * query_norm(). Empty pieces ("a=1&&b") are skipped; an empty name is
 * refused. The caller frees every name and value, also after a failure. */
static int
query_parse(const char *query, struct qparam *ps, size_t max, size_t *np)
{
	const char *p = query;

	*np = 0;
	if (strnlen(query, 8193) > 8192)
		return -1;
	while (*p != '\0') {
		const char *amp = strchr(p, '&');
		size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p);

		if (n > 0) {
			const char *eq = memchr(p, '=', n);
			size_t nn = eq != NULL ? (size_t)(eq - p) : n;
			struct qparam *qp;

			if (*np == max)
				return -1;
			qp = &ps[(*np)++];
			qp->has_eq = eq != NULL;
			if (nn == 0 || query_norm(p, nn, &qp->name) != 0)
				return -1;
			if (query_norm(eq != NULL ? eq + 1 : p + n,
			    eq != NULL ? n - nn - 1 : 0, &qp->value) != 0)
				return -1;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

static int
qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

static int
hline_cmp(const void *a, const void *b)
{
	const struct hline *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* Copies a header name into h->name lower-cased; refuses anything but an
 * RFC 9110 token, and the headers the signer writes itself. */
static int
hline_name(struct hline *h, const char *name)
{
	static const char *const reserved[] = {
		"authorization", "host", "x-amz-content-sha256", "x-amz-date",
	};
	size_t n;

	if (name == NULL)
		return -1;
	n = strnlen(name, SIGV4_MAX_HNAME + 1);
	if (n == 0 || n > SIGV4_MAX_HNAME)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || is_digit(c) ||
		    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL)))
			return -1;
		h->name[i] = (char)c;
	}
	h->name[n] = '\0';
	for (size_t i = 0; i < PI_ARRAY_LEN(reserved); i++)
		if (strcmp(h->name, reserved[i]) == 0)
			return -1;
	return 0;
}

/* A malloc'd copy of s, or NULL. */
static char *
dup_str(const char *s)
{
	struct sbuf b = { 0 };

	sb_adds(&b, s);
	return sb_take(&b);
}

int
sigv4_sign_request(const struct sigv4_cred *cred,
    const struct sigv4_target *tgt, const char *method, const char *key,
    const char *query, const struct sigv4_header *extra, size_t nextra,
    const char *payload_sha256_hex, int64_t now, char **url_out,
    char *hdr_out[4])
{
	struct endpoint ep;
	struct qparam ps[SIGV4_MAX_PARAMS];
	struct hline hs[SIGV4_MAX_EXTRA + 3];
	struct sbuf uri = { 0 }, cq = { 0 }, uq = { 0 }, sh = { 0 };
	struct sbuf creq = { 0 }, b = { 0 };
	char amzdate[17], scope[160], sig[65];
	char *out[5] = { NULL, NULL, NULL, NULL, NULL };
	size_t np = 0, nh = 0;
	int rc = PI_ERR_INVALID;

	memset(ps, 0, sizeof(ps));
	memset(hs, 0, sizeof(hs));
	if (url_out != NULL)
		*url_out = NULL;
	if (hdr_out != NULL)
		for (int i = 0; i < 4; i++)
			hdr_out[i] = NULL;
	if (url_out == NULL || hdr_out == NULL || !cred_ok(cred) ||
	    tgt == NULL || !method_ok(method) ||
	    (key != NULL && key[0] != '\0' && !key_ok(key)) ||
	    (nextra > 0 && extra == NULL) || nextra > SIGV4_MAX_EXTRA ||
	    !payload_ok(payload_sha256_hex) ||
	    now < SIGV4_TIME_MIN || now > SIGV4_TIME_MAX)
		goto out;
	if (endpoint_parse(cred, tgt, &ep) != 0)
		goto out;
	sigv4_amz_date(now, amzdate);
	if (make_scope(cred, amzdate, scope, sizeof(scope)) != 0)
		goto out;

	/* Query: canonical form sorted by name then value; the URL carries
	 * the same encoding, keeping "name" without '=' as given. */
	if (query != NULL &&
	    query_parse(query, ps, SIGV4_MAX_PARAMS, &np) != 0)
		goto out;
	qsort(ps, np, sizeof(ps[0]), qparam_cmp);
	for (size_t i = 0; i < np; i++) {
		if (i > 0) {
			sb_addc(&cq, '&');
			sb_addc(&uq, '&');
		}
		sb_adds(&cq, ps[i].name);
		sb_addc(&cq, '=');
		sb_adds(&cq, ps[i].value);
		sb_adds(&uq, ps[i].name);
		if (ps[i].has_eq) {
			sb_addc(&uq, '=');
			sb_adds(&uq, ps[i].value);
		}
	}

	/* Headers: ours plus the caller's, sorted, no name twice. */
	memcpy(hs[nh].name, "host", 5);
	hs[nh++].value = dup_str(ep.host);
	memcpy(hs[nh].name, "x-amz-content-sha256", 21);
	hs[nh++].value = dup_str(payload_sha256_hex);
	memcpy(hs[nh].name, "x-amz-date", 11);
	hs[nh++].value = dup_str(amzdate);
	for (size_t i = 0; i < nh; i++)
		if (hs[i].value == NULL)
			goto out;
	for (size_t i = 0; i < nextra; i++) {
		struct hline *h = &hs[nh++];

		if (hline_name(h, extra[i].name) != 0 ||
		    extra[i].value == NULL ||
		    sb_header_value(&b, extra[i].value) != 0)
			goto out;
		sb_addn(&b, "", 0);
		h->value = sb_take(&b);
		if (h->value == NULL)
			goto out;
	}
	qsort(hs, nh, sizeof(hs[0]), hline_cmp);
	for (size_t i = 1; i < nh; i++)
		if (strcmp(hs[i - 1].name, hs[i].name) == 0)
			goto out;
	for (size_t i = 0; i < nh; i++) {
		if (i > 0)
			sb_addc(&sh, ';');
		sb_adds(&sh, hs[i].name);
	}

	sb_canonical_uri(&uri, &ep, tgt, key);
	sb_addn(&cq, "", 0);
	sb_addn(&uq, "", 0);
	if (uri.err || cq.err || uq.err || sh.err)
		goto out;
	sb_adds(&creq, method);
	sb_addc(&creq, '\n');
	sb_adds(&creq, uri.p);
	sb_addc(&creq, '\n');
	sb_adds(&creq, cq.p);
	sb_addc(&creq, '\n');
	for (size_t i = 0; i < nh; i++) {
		sb_adds(&creq, hs[i].name);
		sb_addc(&creq, ':');
		sb_adds(&creq, hs[i].value);
		sb_addc(&creq, '\n');
	}
	sb_addc(&creq, '\n');
	sb_adds(&creq, sh.p);
	sb_addc(&creq, '\n');
	sb_adds(&creq, payload_sha256_hex);
	if (sign_canonical(cred, amzdate, scope, &creq, sig) != 0)
		goto out;

	sb_adds(&b, ep.scheme);
	sb_adds(&b, "://");
	sb_adds(&b, ep.host);
	sb_adds(&b, uri.p);
	if (uq.len > 0) {
		sb_addc(&b, '?');
		sb_adds(&b, uq.p);
	}
	if ((out[0] = sb_take(&b)) == NULL)
		goto out;
	sb_adds(&b, "Authorization: " SIGV4_ALGORITHM " Credential=");
	sb_adds(&b, cred->access_key_id);
	sb_addc(&b, '/');
	sb_adds(&b, scope);
	sb_adds(&b, ", SignedHeaders=");
	sb_adds(&b, sh.p);
	sb_adds(&b, ", Signature=");
	sb_adds(&b, sig);
	if ((out[1] = sb_take(&b)) == NULL)
		goto out;
	sb_adds(&b, "x-amz-date: ");
	sb_adds(&b, amzdate);
	if ((out[2] = sb_take(&b)) == NULL)
		goto out;
	sb_adds(&b, "x-amz-content-sha256: ");
	sb_adds(&b, payload_sha256_hex);
	if ((out[3] = sb_take(&b)) == NULL)
		goto out;
	sb_adds(&b, "Host: ");
	sb_adds(&b, ep.host);
	if ((out[4] = sb_take(&b)) == NULL)
		goto out;
	*url_out = out[0];
	for (int i = 0; i < 4; i++)
		hdr_out[i] = out[i + 1];
	rc = 0;
out:
	if (rc != 0)
		for (int i = 0; i < 5; i++)
			free(out[i]);
	for (size_t i = 0; i < PI_ARRAY_LEN(ps); i++) {
		free(ps[i].name);
		free(ps[i].value);
	}
	for (size_t i = 0; i < PI_ARRAY_LEN(hs); i++)
		free(hs[i].value);
	sb_free(&uri);
	sb_free(&cq);
	sb_free(&uq);
	sb_free(&sh);
	sb_free(&creq);
	sb_free(&b);
	return rc;
}
