/* urltoken.h — HMAC-SHA256 tokens for polaimg's own signed URLs.
 *
 * Local storage hands out URLs of this service instead of S3 presigned URLs:
 *   GET /api/v1/images/<id>/file?variant=V&expires=E&sig=S    (download)
 *   PUT /api/v1/images/<id>/upload?token=T                    (direct upload)
 * The signature is HMAC-SHA256 over "polaimg-v1\n<purpose>\n<id>\n<variant>\n
 * <expires>" with url_signing_key, base64url without padding. The purpose
 * ("download" / "upload") is part of the MAC, so an upload token is never a
 * download token and vice versa. Pure: no I/O (the clock is passed in).
 *
 * Format v2 adds the issuer, the user the URL was handed to: the MAC is over
 * "polaimg-v2\n<purpose>\n<id>\n<variant>\n<expires>\n<issuer>", the
 * download URL carries "&uid=<issuer>" and the upload token is
 * "<expires>.<issuer>.<sig>". The *_by functions take or report the issuer
 * (NULL or "" = format v1, still accepted until such a token expires); the
 * plain ones are format v1.
 */
#ifndef POLAIMG_URLTOKEN_H
#define POLAIMG_URLTOKEN_H

#include <stddef.h>
#include <stdint.h>

#define URLTOKEN_SIG_LEN 43   /* base64url of 32 bytes, no padding */
#define URLTOKEN_ISSUER_LEN 36 /* a lower-case canonical UUID */
/* Longest upload token: 19 digits of expiry, '.', issuer, '.', signature
 * (add 1 for NUL). */
#define URLTOKEN_UPLOAD_MAX (19 + 1 + URLTOKEN_ISSUER_LEN + 1 + URLTOKEN_SIG_LEN)

enum urltoken_purpose { URLTOKEN_DOWNLOAD, URLTOKEN_UPLOAD };

/* Writes the signature (URLTOKEN_SIG_LEN chars + NUL) into out (outsz >= 44).
 * Returns 0, or PI_ERR_INVALID if an argument is invalid (NULL, empty key, expires < 0,
 * id or variant empty, over 256 bytes or holding a control character). */
int urltoken_sign(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, char *out, size_t outsz);

enum urltoken_result {
	URLTOKEN_VALID = 0,
	URLTOKEN_BAD = -1,     /* malformed or signature mismatch */
	URLTOKEN_EXPIRED = -2  /* signature fine, now > expires */
};

/* Checks sig for (purpose, id, variant, expires) at time now, in constant
 * time. The expiry is checked only after the signature matched; a token is
 * valid while now <= expires (expires is the last valid second). */
int urltoken_verify(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, const char *sig, int64_t now);

/* The upload token carries its expiry: "<expires>.<sig>". These build and
 * check that form (variant is "original"). The token is written into out
 * (outsz > URLTOKEN_UPLOAD_MAX is always enough); 0 or PI_ERR_INVALID.
 * The verifier parses strictly — decimal expiry without sign or leading zeros, no
 * overflow, exactly URLTOKEN_SIG_LEN signature characters — and returns an
 * enum urltoken_result. */
int urltoken_upload_token(const unsigned char *key, size_t keylen,
    const char *id, int64_t expires, char *out, size_t outsz);
int urltoken_upload_verify(const unsigned char *key, size_t keylen,
    const char *id, const char *token, int64_t now);

/* The same with an issuer (a lower-case canonical UUID; NULL = format v1,
 * and an issuer of another shape makes signing fail). verify_by checks a
 * signature of the form issuer says; upload_verify_by accepts both upload
 * forms and copies the issuer it found into issuer ("" for format v1 and
 * for any token that is not URLTOKEN_VALID or URLTOKEN_EXPIRED). */
int urltoken_sign_by(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, const char *issuer, char *out, size_t outsz);
int urltoken_verify_by(const unsigned char *key, size_t keylen,
    enum urltoken_purpose purpose, const char *id, const char *variant,
    int64_t expires, const char *issuer, const char *sig, int64_t now);
int urltoken_upload_token_by(const unsigned char *key, size_t keylen,
    const char *id, int64_t expires, const char *issuer, char *out,
    size_t outsz);
int urltoken_upload_verify_by(const unsigned char *key, size_t keylen,
    const char *id, const char *token, int64_t now,
    char issuer[URLTOKEN_ISSUER_LEN + 1]);

#endif
