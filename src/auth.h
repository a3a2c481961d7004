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

#include <stddef.h>
#include <stdint.h>

enum auth_alg { AUTH_HS256 = 0, AUTH_HS384, AUTH_HS512, AUTH_RS256,
	AUTH_RS384, AUTH_RS512, AUTH_ES256, AUTH_ES384, AUTH_ES512 };

struct auth_config {
	enum auth_alg alg;
	unsigned char *key;      /* HMAC secret, or the public key PEM; malloc'd */
	size_t keylen;
	int require_exp;         /* jwt_require_exp */
	int leeway;              /* seconds of clock skew allowed for exp/nbf (default 0) */
};

/* Parses an algorithm name ("HS256", case-insensitive); 0 ok, -1 unknown. */
int auth_alg_parse(const char *name, enum auth_alg *out);

/* Fills cfg: for HS* the key is secret (secretlen bytes, must be >= 32 for
 * HS256 — shorter secrets are refused with -1 and *why set); for RS*/ES* the
 * key is the PEM read from pubkey_path. Returns 0 or -1 with *why a static
 * message. Free with auth_config_free(). */
int auth_config_load(struct auth_config *cfg, enum auth_alg alg,
    const char *secret, size_t secretlen, const char *pubkey_path,
    int require_exp, const char **why);
void auth_config_free(struct auth_config *cfg);

enum auth_result {
	AUTH_OK = 0,
	AUTH_INVALID = -1,   /* bad signature, wrong alg, malformed, no/invalid user id, nbf in future, missing exp */
	AUTH_EXPIRED = -2    /* signature valid but exp <= now */
};

struct auth_claims {
	char user_id[37];    /* lower-case canonical UUID */
	char role[16];       /* the "role" claim if present and short, else "" */
};

/* Verifies token (the compact JWS, at most 8 KiB) at time now. */
int auth_verify(const struct auth_config *cfg, const char *token, int64_t now,
    struct auth_claims *out);

/* The token of a request: "Authorization: Bearer <t>" (scheme
 * case-insensitive) when present, else the cookie polacare_token from the
 * Cookie header. Copies it into buf (NUL-terminated) and returns buf, or
 * NULL if there is none or it does not fit. Either header may be NULL. */
const char *auth_token_from_headers(const char *authorization,
    const char *cookie, char *buf, size_t bufsz);

#endif
