/* auth.h — bearer token → claims, with the algorithm pinned by configuration.
 *
 * libjwt 1.10 decodes whatever algorithm a token names and checks neither
 * exp nor nbf, so this module pins the algorithm itself (jwt_get_alg() must
 * equal the configured one, alg "none" never passes), checks exp/nbf against
 * the clock passed in, and extracts the user id (claim userId, else sub; a
 * UUID). Looking the user up in the database is the caller's job. No I/O
 * except reading the public key file in auth_config_load().
 */
#ifndef POLAIMG_AUTH_H
#define POLAIMG_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest compact JWS auth_verify() accepts; a buffer for
 * auth_token_from_headers() needs AUTH_TOKEN_MAX + 1 bytes. */
#define AUTH_TOKEN_MAX 8192

enum auth_alg { AUTH_HS256 = 0, AUTH_HS384, AUTH_HS512, AUTH_RS256,
	AUTH_RS384, AUTH_RS512, AUTH_ES256, AUTH_ES384, AUTH_ES512 };

struct auth_config {
	enum auth_alg alg;
	unsigned char *key;      /* HMAC secret, or the public key PEM; malloc'd */
	size_t keylen;
	int require_exp;         /* jwt_require_exp */
	int leeway;              /* seconds of clock skew allowed for exp/nbf;
	                          * 0 after auth_config_load(), the caller may
	                          * set it; negative counts as 0 */
};

/* Parses an algorithm name ("HS256", case-insensitive); 0 ok,
 * PI_ERR_INVALID unknown. */
int auth_alg_parse(const char *name, enum auth_alg *out);
/* The canonical name of alg ("HS256" …), or "?" for an unknown value. */
const char *auth_alg_name(enum auth_alg alg);

/* Fills cfg. For HS* the key is a copy of secret (secretlen bytes), which
 * must be at least as long as the hash (32, 48, 64 bytes for HS256/384/512,
 * RFC 7518 §3.2) and at most 4096 bytes. For RS* and ES* pubkey_path names
 * a PEM file (at most 64 KiB) holding a public key of the right type: RSA of
 * at least 2048 bits for RS*, EC on P-256/P-384/P-521 for ES256/384/512; the
 * key kept in cfg is that public key re-encoded as PEM (nothing else from the
 * file is kept). Returns 0, or PI_ERR_INVALID with *why a static message
 * (why may be NULL) and cfg zeroed. Free with auth_config_free(). */
int auth_config_load(struct auth_config *cfg, enum auth_alg alg,
    const char *secret, size_t secretlen, const char *pubkey_path,
    int require_exp, const char **why);
/* Wipes and frees the key; cfg may be NULL or already freed. */
void auth_config_free(struct auth_config *cfg);

enum auth_result {
	AUTH_OK = 0,
	AUTH_INVALID = -1,   /* bad signature, wrong alg, malformed, no/invalid user id, nbf in future, missing exp */
	AUTH_EXPIRED = -2    /* signature and everything else valid but exp <= now */
};

struct auth_claims {
	char user_id[37];    /* lower-case canonical UUID */
	char role[16];       /* the "role" claim if present, a string of 1..15
	                      * printable ASCII characters, else "" */
	int64_t valid_from;  /* the token is good while valid_from <= now < */
	int64_t valid_until; /* valid_until (nbf, exp and the leeway applied;
	                      * INT64_MIN / INT64_MAX when absent) */
};

/* Verifies token (the compact JWS, at most AUTH_TOKEN_MAX bytes) at time now
 * (seconds since the epoch). Returns an enum auth_result; out is filled on
 * AUTH_OK and zeroed otherwise. The role is reported as the token states it:
 * whether to trust it is the caller's decision. */
int auth_verify(const struct auth_config *cfg, const char *token, int64_t now,
    struct auth_claims *out);

/* The token of a request: "Authorization: Bearer <t>" (scheme
 * case-insensitive) when present, else the cookie polacare_token from the
 * Cookie header. Copies it into buf (NUL-terminated) and returns buf, or
 * NULL if there is none or it does not fit. Either header may be NULL.
 * An Authorization header with the Bearer scheme decides on its own (a
 * malformed one yields NULL, not the cookie); another scheme is ignored. Only
 * base64url characters and '.' are accepted in a token. */
const char *auth_token_from_headers(const char *authorization,
    const char *cookie, char *buf, size_t bufsz);

/* Whether the Authorization header uses the Bearer scheme (then it, not the
 * polacare_token cookie, carries the request's token). */
bool auth_is_bearer(const char *authorization);

/*
 * The Origin check for unsafe requests authenticated by the cookie (a
 * browser attaches cookies to cross-site requests; it never attaches an
 * Authorization header). True if the request's origin — the Origin header, or
 * without one the scheme://host[:port] of the Referer — is one of allowed
 * (origins separated by commas or blanks) or, when allowed is empty, the
 * request's own origin: https or http (https != 0), the Host header and,
 * when host carries no port, port (the server's, SERVER_PORT; may be NULL).
 * Origins are compared with scheme and host in lower case and the default
 * port dropped. False when neither header is there, or Origin is "null" or not
 * an http(s) origin. Pure.
 */
bool auth_origin_ok(const char *allowed, const char *origin,
    const char *referer, int https, const char *host, const char *port);

/* Whether every entry of an allowed_origins value is an http(s) origin
 * without path; if not, *bad / *badlen point at the first bad entry. */
bool auth_origins_valid(const char *allowed, const char **bad, size_t *badlen);

#endif
