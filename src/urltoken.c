/* urltoken.c — HMAC-SHA256 tokens for polaimg's own signed URLs.
 *
 * With local storage the service hands out its own URLs instead of S3
 * presigned ones, and these tokens are what makes such a URL work without a
 * bearer token. The MAC covers, one per line,
 *
 *     polaimg-v1 \n <purpose> \n <id> \n <variant> \n <expires>
 *
 * so a token is bound to one image, one variant, one expiry and one purpose:
 * a download signature is never an upload token and vice versa, and changing
 * any part of the URL breaks it. The version tag lets the format change
 * without old signatures verifying under new rules. id and variant may not
 * contain a newline (nor any other control character), so no two different
 * (id, variant) pairs produce the same message.
 *
 * Signatures are compared as their base64url text with CRYPTO_memcmp, in
 * time independent of where they differ; only a signature of the wrong
 * length is refused early, and the length is public anyway. The expiry is
 * looked at only after the signature matched, so the answer "expired" is
 * given only for tokens we issued. A token is valid while now <= expires:
 * expires is the last second at which it works.
 *
 * The upload token carries its expiry, "<expires>.<sig>", and is parsed
 * strictly: decimal digits without sign or leading zeros, no overflow, one
 * '.', then exactly URLTOKEN_SIG_LEN signature characters. Pure: no I/O, the
 * clock is an argument.
 */
#include "urltoken.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define URLTOKEN_MAX_FIELD  256     /* bytes of id or variant */
#define URLTOKEN_MAX_KEY    4096    /* bytes of the signing key */
#define URLTOKEN_UPLOAD_VARIANT "original"

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url of in[0..n), no padding, NUL-terminated; out holds
 * (4n + 2) / 3 + 1 bytes. */
static void
b64url_encode(const unsigned char *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 3 <= n; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16 |
		    (unsigned long)in[i + 1] << 8 | in[i + 2];

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	if (n - i == 1) {
		unsigned long v = (unsigned long)in[i] << 16;

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
	} else if (n - i == 2) {
		unsigned long v = (unsigned long)in[i] << 16 |
		    (unsigned long)in[i + 1] << 8;

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
	}
	out[o] = '\0';
}

/* 1 if s is 1..URLTOKEN_MAX_FIELD bytes without control characters. */
static int
field_ok(const char *s)
{
	size_t n;

	if (s == NULL)
		return 0;
	n = strnlen(s, URLTOKEN_MAX_FIELD + 1);
	if (n == 0 || n > URLTOKEN_MAX_FIELD)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/* Computes the signature text into sig (URLTOKEN_SIG_LEN + 1 bytes).
 * 0, or -1 on invalid arguments or a library failure. */
static int
compute(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, char sig[URLTOKEN_SIG_LEN + 1])
{
	char msg[64 + 2 * URLTOKEN_MAX_FIELD];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	const char *pname;
	int n, rc = -1;

	if (key == NULL || keylen == 0 || keylen > URLTOKEN_MAX_KEY ||
	    !field_ok(id) || !field_ok(variant) || expires < 0)
		goto out;
	switch (purpose) {
	case URLTOKEN_DOWNLOAD:
		pname = "download";
		break;
	case URLTOKEN_UPLOAD:
		pname = "upload";
		break;
	default:
		goto out;
	}
	n = snprintf(msg, sizeof(msg), "polaimg-v1\n%s\n%s\n%s\n%" PRId64,
	    pname, id, variant, expires);
	if (n < 0 || (size_t)n >= sizeof(msg))
		goto out;
	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	    (size_t)n, mac, &maclen) == NULL || maclen != 32)
		goto out;
	b64url_encode(mac, 32, sig);
	rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

int
urltoken_sign(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, char *out, size_t outsz)
{
	char sig[URLTOKEN_SIG_LEN + 1];

	if (out == NULL || outsz < sizeof(sig))
		return -1;
	if (compute(key, keylen, purpose, id, variant, expires, sig) != 0) {
		out[0] = '\0';
		return -1;
	}
	memcpy(out, sig, sizeof(sig));
	return 0;
}

int
urltoken_verify(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, const char *sig, int64_t now)
{
	char want[URLTOKEN_SIG_LEN + 1];
	int rc = URLTOKEN_BAD;

	if (sig == NULL || strnlen(sig, URLTOKEN_SIG_LEN + 1) !=
	    URLTOKEN_SIG_LEN)
		goto out;
	if (compute(key, keylen, purpose, id, variant, expires, want) != 0)
		goto out;
	if (CRYPTO_memcmp(want, sig, URLTOKEN_SIG_LEN) != 0)
		goto out;
	rc = now <= expires ? URLTOKEN_VALID : URLTOKEN_EXPIRED;
out:
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}

int
urltoken_upload_token(const unsigned char *key, size_t keylen,
    const char *id, int64_t expires, char *out, size_t outsz)
{
	char sig[URLTOKEN_SIG_LEN + 1];
	int n;

	if (out == NULL || outsz == 0)
		return -1;
	out[0] = '\0';
	if (compute(key, keylen, URLTOKEN_UPLOAD, id, URLTOKEN_UPLOAD_VARIANT,
	    expires, sig) != 0)
		return -1;
	n = snprintf(out, outsz, "%" PRId64 ".%s", expires, sig);
	if (n < 0 || (size_t)n >= outsz) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

/* Parses "<expires>.<sig>": expires is 1..19 decimal digits, no leading
 * zero unless it is "0", at most INT64_MAX; *sig points into token. */
static int
upload_parse(const char *token, int64_t *expires, const char **sig)
{
	const char *p = token;
	int64_t v = 0;

	if (token == NULL || *p < '0' || *p > '9')
		return -1;
	if (*p == '0' && p[1] != '.')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		int d = *p - '0';

		if (v > (INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (*p != '.')
		return -1;
	*expires = v;
	*sig = p + 1;
	return 0;
}

int
urltoken_upload_verify(const unsigned char *key, size_t keylen,
    const char *id, const char *token, int64_t now)
{
	const char *sig;
	int64_t expires;

	if (upload_parse(token, &expires, &sig) != 0)
		return URLTOKEN_BAD;
	/* urltoken_verify() insists on exactly URLTOKEN_SIG_LEN characters,
	 * which also refuses anything after the signature. */
	return urltoken_verify(key, keylen, URLTOKEN_UPLOAD, id,
	    URLTOKEN_UPLOAD_VARIANT, expires, sig, now);
}
