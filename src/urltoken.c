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
 *
 * The issuer.  Since format v2 a token also names the user it was issued
 * to, so that whoever redeems it can check that user again (still active,
 * still allowed the case) instead of trusting a decision made when the URL
 * was handed out. The MAC then covers
 *
 *     polaimg-v2 \n <purpose> \n <id> \n <variant> \n <expires> \n <issuer>
 *
 * and the upload token is "<expires>.<issuer>.<sig>". The issuer is a
 * lower-case canonical UUID (36 characters of [0-9a-f-]), and a v1
 * signature is base64url (no '.'), so the two upload forms cannot be
 * mistaken for each other, and a v2 signature never verifies as v1 (nor
 * the reverse): removing the issuer from a URL breaks it. Tokens of format
 * v1 (issued before v2 existed) still verify, without an issuer, until they
 * expire; the *_by functions say which form they saw.
 */
#include "urltoken.h"
#include "common.h"

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

/* 1 if s is a lower-case canonical UUID: 36 characters of [0-9a-f] with
 * '-' at 8, 13, 18 and 23. */
static int
issuer_ok(const char *s)
{
	for (int i = 0; i < URLTOKEN_ISSUER_LEN; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return 0;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return 0;    /* also stops at a NUL */
		}
	}
	return s[URLTOKEN_ISSUER_LEN] == '\0';
}

/* Computes the signature text into sig (URLTOKEN_SIG_LEN + 1 bytes): format
 * v1 when issuer is NULL, else v2 with the issuer. 0, or -1 on invalid
 * arguments or a library failure. */
static int
compute(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, const char *issuer, char sig[URLTOKEN_SIG_LEN + 1])
{
	char msg[128 + 2 * URLTOKEN_MAX_FIELD];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	const char *pname;
	int n, rc = -1;

	if (key == NULL || keylen == 0 || keylen > URLTOKEN_MAX_KEY ||
	    !field_ok(id) || !field_ok(variant) || expires < 0 ||
	    (issuer != NULL && !issuer_ok(issuer)))
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
	if (issuer == NULL)
		n = snprintf(msg, sizeof(msg), "polaimg-v1\n%s\n%s\n%s\n%" PRId64,
		    pname, id, variant, expires);
	else
		n = snprintf(msg, sizeof(msg), "polaimg-v2\n%s\n%s\n%s\n%" PRId64
		    "\n%s", pname, id, variant, expires, issuer);
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
urltoken_sign_by(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, const char *issuer, char *out, size_t outsz)
{
	char sig[URLTOKEN_SIG_LEN + 1];

	if (out == NULL || outsz < sizeof(sig))
		return PI_ERR_INVALID;
	if (compute(key, keylen, purpose, id, variant, expires, issuer,
	    sig) != 0) {
		out[0] = '\0';
		return PI_ERR_INVALID;
	}
	memcpy(out, sig, sizeof(sig));
	return 0;
}

int
urltoken_sign(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, char *out, size_t outsz)
{
	return urltoken_sign_by(key, keylen, purpose, id, variant, expires,
	    NULL, out, outsz);
}

int
urltoken_verify_by(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, const char *issuer, const char *sig, int64_t now)
{
	char want[URLTOKEN_SIG_LEN + 1];
	int rc = URLTOKEN_BAD;

	if (sig == NULL || strnlen(sig, URLTOKEN_SIG_LEN + 1) !=
	    URLTOKEN_SIG_LEN)
		goto out;
	if (compute(key, keylen, purpose, id, variant, expires, issuer,
	    want) != 0)
		goto out;
	if (CRYPTO_memcmp(want, sig, URLTOKEN_SIG_LEN) != 0)
		goto out;
	rc = now <= expires ? URLTOKEN_VALID : URLTOKEN_EXPIRED;
out:
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}

int
urltoken_verify(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, const char *sig, int64_t now)
{
	return urltoken_verify_by(key, keylen, purpose, id, variant, expires,
	    NULL, sig, now);
}

int
urltoken_upload_token_by(const unsigned char *key, size_t keylen,
    const char *id, int64_t expires, const char *issuer, char *out,
    size_t outsz)
{
	char sig[URLTOKEN_SIG_LEN + 1];
	int n;

	if (out == NULL || outsz == 0)
		return PI_ERR_INVALID;
	out[0] = '\0';
	if (compute(key, keylen, URLTOKEN_UPLOAD, id, URLTOKEN_UPLOAD_VARIANT,
	    expires, issuer, sig) != 0)
		return PI_ERR_INVALID;
	if (issuer == NULL)
		n = snprintf(out, outsz, "%" PRId64 ".%s", expires, sig);
	else
		n = snprintf(out, outsz, "%" PRId64 ".%s.%s", expires, issuer,
		    sig);
	if (n < 0 || (size_t)n >= outsz) {
		out[0] = '\0';
		return PI_ERR_INVALID;
	}
	return 0;
}

int
urltoken_upload_token(const unsigned char *key, size_t keylen,
    const char *id, int64_t expires, char *out, size_t outsz)
{
	return urltoken_upload_token_by(key, keylen, id, expires, NULL, out,
	    outsz);
}

/* Parses "<expires>.<sig>" or "<expires>.<issuer>.<sig>": expires is 1..19
 * decimal digits, no leading zero unless it is "0", at most INT64_MAX; the
 * issuer, when there, is copied into issuer (else issuer is ""); *sig
 * points into token. */
static int
upload_parse(const char *token, int64_t *expires,
    char issuer[URLTOKEN_ISSUER_LEN + 1], const char **sig)
{
	const char *p = token;
	int64_t v = 0;

	issuer[0] = '\0';
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
	p++;
	/* A v1 signature holds no '.', so a '.' after 36 characters is the
	 * v2 form (and those 36 must be an issuer). */
	if (strnlen(p, URLTOKEN_ISSUER_LEN + 1) > URLTOKEN_ISSUER_LEN &&
	    p[URLTOKEN_ISSUER_LEN] == '.') {
		memcpy(issuer, p, URLTOKEN_ISSUER_LEN);
		issuer[URLTOKEN_ISSUER_LEN] = '\0';
		if (!issuer_ok(issuer)) {
			issuer[0] = '\0';
			return -1;
		}
		p += URLTOKEN_ISSUER_LEN + 1;
	}
	*expires = v;
	*sig = p;
	return 0;
}

int
urltoken_upload_verify_by(const unsigned char *key, size_t keylen,
    const char *id, const char *token, int64_t now,
    char issuer[URLTOKEN_ISSUER_LEN + 1])
{
	const char *sig;
	int64_t expires;
	int rc;

	if (upload_parse(token, &expires, issuer, &sig) != 0)
		return URLTOKEN_BAD;
	/* urltoken_verify_by() insists on exactly URLTOKEN_SIG_LEN characters,
	 * which also refuses anything after the signature. */
	rc = urltoken_verify_by(key, keylen, URLTOKEN_UPLOAD, id,
	    URLTOKEN_UPLOAD_VARIANT, expires, issuer[0] != '\0' ? issuer : NULL,
	    sig, now);
	if (rc == URLTOKEN_BAD)
		issuer[0] = '\0';
	return rc;
}

int
urltoken_upload_verify(const unsigned char *key, size_t keylen,
    const char *id, const char *token, int64_t now)
{
	char issuer[URLTOKEN_ISSUER_LEN + 1];

	return urltoken_upload_verify_by(key, keylen, id, token, now, issuer);
}
