/* auth.c — JWT verification with the algorithm pinned by configuration.
 *
 * libjwt 1.10 is used for what it does well — splitting the compact JWS,
 * decoding the JSON and checking the signature — and for nothing it decides
 * by itself. Three of its behaviours would be holes if trusted (docs/design.md,
 * "Facts checked on this platform"):
 * it verifies with whatever algorithm the token's header names, so an HS256
 * token whose HMAC key is the RSA public key PEM passes when the
 * configuration is RS256 (algorithm confusion); with no key it accepts any
 * HS* token unverified (and then reports alg none); and it checks neither exp
 * nor nbf. (It does refuse alg "none" when given a key; nothing here relies
 * on that.) So auth_verify() always passes the configured key, compares
 * jwt_get_alg() with the configured algorithm exactly after decoding (alg
 * "none" can never equal it), and checks exp and nbf itself against the
 * clock its caller passes. libjwt also reads the header's alg name
 * case-insensitively, so the raw header text is compared with the
 * configured name byte for byte as well ("hs256" is not HS256, RFC 7515).
 *
 * Before libjwt sees a token, its shape is checked cheaply: at most 8 KiB,
 * three non-empty base64url segments separated by exactly two dots. That
 * keeps arbitrary client bytes away from the library's base64 and JSON
 * parsers and refuses alg "none" tokens (empty signature) early.
 *
 * Claims are read with jwt_get_grants_json(), which returns a claim's JSON
 * text and tells "absent" from "present with another type" without relying
 * on errno: libjwt's jwt_get_grant_int() returns 0 with errno 0 for a real
 * number, and jwt_get_grant() NULL with errno 0 for a JSON null.
 *
 * The configuration is checked when it is loaded, not per request: an HMAC
 * secret shorter than the hash is refused (RFC 7518 §3.2 requires a key at
 * least as long as the hash output, since a shorter one lowers the work of
 * guessing it below the security level of the algorithm), and a public key
 * must parse with OpenSSL and be of the type and size the algorithm needs.
 * The key kept is the public key re-encoded, never other bytes of the file.
 */
#include "auth.h"

#include "common.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define AUTH_PEM_MAX (64 * 1024)      /* largest public key file read */
#define AUTH_SECRET_MAX 4096          /* largest HMAC secret accepted */
#define AUTH_RSA_MIN_BITS 2048        /* RFC 7518 §3.3 */
/* NumericDates are clamped to this magnitude (year ~31.7 million) so that
 * adding a leeway or comparing with any clock value cannot overflow. */
#define AUTH_TIME_CLAMP INT64_C(1000000000000000)

enum auth_keytype { AUTH_KEY_HMAC, AUTH_KEY_RSA, AUTH_KEY_EC };

/* One row per algorithm: its name, libjwt's id, the key it needs and, for
 * HMAC, the shortest secret; for EC, the curve's OpenSSL group name. */
static const struct auth_alg_info {
	const char *name;
	jwt_alg_t jwt;
	enum auth_keytype keytype;
	size_t min_secret;
	const char *curve;
} auth_algs[] = {
	[AUTH_HS256] = { "HS256", JWT_ALG_HS256, AUTH_KEY_HMAC, 32, NULL },
	[AUTH_HS384] = { "HS384", JWT_ALG_HS384, AUTH_KEY_HMAC, 48, NULL },
	[AUTH_HS512] = { "HS512", JWT_ALG_HS512, AUTH_KEY_HMAC, 64, NULL },
	[AUTH_RS256] = { "RS256", JWT_ALG_RS256, AUTH_KEY_RSA, 0, NULL },
	[AUTH_RS384] = { "RS384", JWT_ALG_RS384, AUTH_KEY_RSA, 0, NULL },
	[AUTH_RS512] = { "RS512", JWT_ALG_RS512, AUTH_KEY_RSA, 0, NULL },
	[AUTH_ES256] = { "ES256", JWT_ALG_ES256, AUTH_KEY_EC, 0, "prime256v1" },
	[AUTH_ES384] = { "ES384", JWT_ALG_ES384, AUTH_KEY_EC, 0, "secp384r1" },
	[AUTH_ES512] = { "ES512", JWT_ALG_ES512, AUTH_KEY_EC, 0, "secp521r1" },
};

static const struct auth_alg_info *
auth_alg_info(enum auth_alg alg)
{
	if ((unsigned)alg >= sizeof(auth_algs) / sizeof(auth_algs[0]))
		return NULL;
	return &auth_algs[alg];
}

int
auth_alg_parse(const char *name, enum auth_alg *out)
{
	if (name == NULL || out == NULL)
		return PI_ERR_INVALID;
	for (size_t i = 0; i < sizeof(auth_algs) / sizeof(auth_algs[0]); i++)
		if (strcasecmp(name, auth_algs[i].name) == 0) {
			*out = (enum auth_alg)i;
			return 0;
		}
	return PI_ERR_INVALID;
}

const char *
auth_alg_name(enum auth_alg alg)
{
	const struct auth_alg_info *ai = auth_alg_info(alg);

	return ai != NULL ? ai->name : "?";
}

/*
 * Reads at most AUTH_PEM_MAX bytes of the regular file at path into a
 * malloc'd buffer (*out, *outlen; the caller frees). 0, or -1 with *why set.
 */
static int
auth_read_file(const char *path, unsigned char **out, size_t *outlen,
    const char **why)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd, rc = -1;

	*out = NULL;
	*outlen = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*why = "cannot open the public key file";
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		*why = "the public key file is not a regular file";
		goto out;
	}
	if (st.st_size > AUTH_PEM_MAX) {
		*why = "the public key file is larger than 64 KiB";
		goto out;
	}
	/* One spare byte to notice a file that grew past the limit. */
	buf = malloc(AUTH_PEM_MAX + 1);
	if (buf == NULL) {
		*why = "out of memory";
		goto out;
	}
	for (;;) {
		n = read(fd, buf + len, AUTH_PEM_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = "cannot read the public key file";
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > AUTH_PEM_MAX) {
			*why = "the public key file is larger than 64 KiB";
			goto out;
		}
	}
	if (len == 0) {
		*why = "the public key file is empty";
		goto out;
	}
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/*
 * Parses pem as a public key that suits ai and stores its canonical PEM
 * encoding in a malloc'd buffer (*out, *outlen). 0, or -1 with *why set.
 */
static int
auth_load_pubkey(const struct auth_alg_info *ai, const unsigned char *pem,
    size_t pemlen, unsigned char **out, size_t *outlen, const char **why)
{
	BIO *in = NULL, *mem = NULL;
	EVP_PKEY *pkey = NULL;
	char group[64];
	size_t glen = 0;
	char *data;
	long dlen;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	if (pemlen > AUTH_PEM_MAX) {
		*why = "the public key file is larger than 64 KiB";
		goto out;
	}
	in = BIO_new_mem_buf(pem, (int)pemlen);
	if (in == NULL) {
		*why = "out of memory";
		goto out;
	}
	pkey = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
	if (pkey == NULL) {
		*why = "the public key file holds no PEM public key";
		goto out;
	}
	switch (ai->keytype) {
	case AUTH_KEY_RSA:
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
			*why = "RS* needs an RSA public key";
			goto out;
		}
		if (EVP_PKEY_get_bits(pkey) < AUTH_RSA_MIN_BITS) {
			*why = "the RSA key is shorter than 2048 bits";
			goto out;
		}
		break;
	case AUTH_KEY_EC:
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
			*why = "ES* needs an EC public key";
			goto out;
		}
		if (EVP_PKEY_get_group_name(pkey, group, sizeof(group),
		    &glen) != 1 || strcmp(group, ai->curve) != 0) {
			*why = "the EC key is not on the curve the algorithm "
			    "needs (ES256 P-256, ES384 P-384, ES512 P-521)";
			goto out;
		}
		break;
	case AUTH_KEY_HMAC:
	default:
		*why = "internal error: not a public key algorithm";
		goto out;
	}
	mem = BIO_new(BIO_s_mem());
	if (mem == NULL || PEM_write_bio_PUBKEY(mem, pkey) != 1) {
		*why = "cannot encode the public key";
		goto out;
	}
	dlen = BIO_get_mem_data(mem, &data);
	if (dlen <= 0 || data == NULL) {
		*why = "cannot encode the public key";
		goto out;
	}
	*out = malloc((size_t)dlen);
	if (*out == NULL) {
		*why = "out of memory";
		goto out;
	}
	memcpy(*out, data, (size_t)dlen);
	*outlen = (size_t)dlen;
	rc = 0;
out:
	EVP_PKEY_free(pkey);
	BIO_free(in);
	BIO_free(mem);
	/* Leave no stale error in this thread's queue for the next user of
	 * OpenSSL (libcurl, libpq) to misread as its own. */
	ERR_clear_error();
	return rc;
}

int
auth_config_load(struct auth_config *cfg, enum auth_alg alg,
    const char *secret, size_t secretlen, const char *pubkey_path,
    int require_exp, const char **why)
{
	const struct auth_alg_info *ai = auth_alg_info(alg);
	unsigned char *pem = NULL;
	size_t pemlen = 0;
	const char *dummy;
	int rc = PI_ERR_INVALID;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (cfg == NULL) {
		*why = "internal error: no configuration";
		return PI_ERR_INVALID;
	}
	memset(cfg, 0, sizeof(*cfg));
	if (ai == NULL) {
		*why = "unknown JWT algorithm";
		goto out;
	}
	if (ai->keytype == AUTH_KEY_HMAC) {
		if (secret == NULL || secretlen == 0) {
			*why = "jwt_secret is not set";
			goto out;
		}
		if (secretlen < ai->min_secret) {
			/* RFC 7518 §3.2: the key must be at least as long as
			 * the hash output. */
			*why = "jwt_secret is shorter than the hash (RFC 7518 "
			    "§3.2: at least 32 bytes for HS256, 48 for HS384, "
			    "64 for HS512)";
			goto out;
		}
		if (secretlen > AUTH_SECRET_MAX) {
			*why = "jwt_secret is longer than 4096 bytes";
			goto out;
		}
		cfg->key = malloc(secretlen);
		if (cfg->key == NULL) {
			*why = "out of memory";
			goto out;
		}
		memcpy(cfg->key, secret, secretlen);
		cfg->keylen = secretlen;
	} else {
		if (pubkey_path == NULL || pubkey_path[0] == '\0') {
			*why = "RS* and ES* need a public key file";
			goto out;
		}
		if (auth_read_file(pubkey_path, &pem, &pemlen, why) != 0)
			goto out;
		if (auth_load_pubkey(ai, pem, pemlen, &cfg->key, &cfg->keylen,
		    why) != 0)
			goto out;
	}
	cfg->alg = alg;
	cfg->require_exp = require_exp != 0;
	cfg->leeway = 0;
	rc = 0;
out:
	if (pem != NULL) {
		OPENSSL_cleanse(pem, pemlen);
		free(pem);
	}
	if (rc != 0)
		auth_config_free(cfg);
	return rc;
}

void
auth_config_free(struct auth_config *cfg)
{
	if (cfg == NULL)
		return;
	if (cfg->key != NULL) {
		OPENSSL_cleanse(cfg->key, cfg->keylen);
		free(cfg->key);
	}
	memset(cfg, 0, sizeof(*cfg));
}

/* 1 for the base64url alphabet (RFC 4648 §5), no padding. */
static int
auth_b64url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * 1 if token has the shape of a compact JWS we could accept: at most
 * AUTH_TOKEN_MAX bytes, three non-empty base64url segments (none of a length
 * that no byte string encodes to) separated by exactly two dots.
 */
static int
auth_token_shape_ok(const char *token)
{
	size_t i, seg = 0, dots = 0;

	for (i = 0; token[i] != '\0'; i++) {
		if (i >= AUTH_TOKEN_MAX)
			return 0;
		if (token[i] == '.') {
			if (seg == 0 || seg % 4 == 1 || ++dots > 2)
				return 0;
			seg = 0;
		} else if (auth_b64url_char((unsigned char)token[i])) {
			seg++;
		} else {
			return 0;
		}
	}
	return dots == 2 && seg != 0 && seg % 4 != 1;
}

/*
 * Parses the JSON text of a NumericDate claim (RFC 7519 §2: a JSON number of
 * seconds, possibly fractional) and stores its ceiling, clamped to
 * ±AUTH_TIME_CLAMP. For a whole "now", now >= x exactly when now >= ceil(x),
 * and now < x exactly when now < ceil(x), so the ceiling loses nothing.
 * Done on the digits, not with strtod(), so that neither the locale nor
 * rounding can change the result. 0, or -1 if s is not a JSON number.
 */
static int
auth_numeric_date(const char *s, int64_t *out)
{
	const char *p = s, *ip, *fp = NULL;
	size_t ilen = 0, flen = 0, ndig, i;
	long e = 0, point;
	int neg = 0, eneg = 0, fracnz = 0;
	int64_t v = 0;
	unsigned char d;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	ip = p;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return -1;
	ilen = (size_t)(p - ip);
	if (*p == '.') {
		fp = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		flen = (size_t)(p - fp);
		if (flen == 0)
			return -1;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			eneg = *p++ == '-';
		if (!(*p >= '0' && *p <= '9'))
			return -1;
		for (; *p >= '0' && *p <= '9'; p++)
			if (e < 1000000)
				e = e * 10 + (*p - '0');
		if (eneg)
			e = -e;
	}
	if (*p != '\0')
		return -1;
	/* The digits int‖frac with the decimal point after "point" of them.
	 * Token size bounds ilen and flen far below LONG_MAX. */
	ndig = ilen + flen;
	point = (long)ilen + e;
	for (i = 0; (long)i < point; i++) {
		d = i < ilen ? (unsigned char)ip[i] :
		    i < ndig ? (unsigned char)fp[i - ilen] : '0';
		if (i >= ndig && v == 0)
			break;		/* only zeros remain */
		v = v * 10 + (d - '0');
		if (v > AUTH_TIME_CLAMP) {
			v = AUTH_TIME_CLAMP;
			break;
		}
	}
	if (v < AUTH_TIME_CLAMP)
		for (i = point > 0 ? (size_t)point : 0; i < ndig; i++) {
			d = i < ilen ? (unsigned char)ip[i] :
			    (unsigned char)fp[i - ilen];
			if (d != '0') {
				fracnz = 1;
				break;
			}
		}
	if (neg)
		*out = -v;		/* ceil(-(v + f)) = -v */
	else
		*out = v < AUTH_TIME_CLAMP && fracnz ? v + 1 : v;
	return 0;
}

/*
 * Reads the NumericDate claim name. 1 and *out if present and a number, 0 if
 * absent, -1 if present but not a number (or on allocation failure).
 */
static int
auth_time_claim(jwt_t *jwt, const char *name, int64_t *out)
{
	char *json;
	int rc;

	errno = 0;
	json = jwt_get_grants_json(jwt, name);
	if (json == NULL)
		return errno == ENOMEM ? -1 : 0;
	rc = auth_numeric_date(json, out) == 0 ? 1 : -1;
	free(json);
	return rc;
}

/*
 * The user id: the claim userId when present, else sub. Whichever is used
 * must be a string holding a UUID; a userId of another type is refused
 * rather than passed over for sub. 0 and canon filled, or -1.
 */
static int
auth_user_id(jwt_t *jwt, char canon[37])
{
	static const char *const names[] = { "userId", "sub" };
	const char *val;
	char *json;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		errno = 0;
		json = jwt_get_grants_json(jwt, names[i]);
		if (json == NULL && errno == ENOMEM)
			return -1;
		if (json == NULL)
			continue;
		free(json);
		val = jwt_get_grant(jwt, names[i]);
		return val_uuid(val, canon) ? 0 : -1;
	}
	return -1;
}

/* The role claim into role (16 bytes) if it is a string of 1..15 printable
 * ASCII characters, else "". */
static void
auth_role(jwt_t *jwt, char role[16])
{
	const char *val = jwt_get_grant(jwt, "role");
	size_t i;

	role[0] = '\0';
	if (val == NULL)
		return;
	for (i = 0; val[i] != '\0'; i++)
		if (i >= 15 || val[i] < 0x21 || val[i] > 0x7e)
			return;
	memcpy(role, val, i + 1);
}

/* 1 if the decoded header's "alg" is the JSON string name, compared
 * byte for byte (escapes already resolved by the JSON parser). */
static int
auth_alg_header_is(jwt_t *jwt, const char *name)
{
	char *json = jwt_get_headers_json(jwt, "alg");
	size_t n = strlen(name);
	int ok;

	if (json == NULL)
		return 0;
	ok = strlen(json) == n + 2 && json[0] == '"' && json[n + 1] == '"' &&
	    memcmp(json + 1, name, n) == 0;
	free(json);
	return ok;
}

int
auth_verify(const struct auth_config *cfg, const char *token, int64_t now,
    struct auth_claims *out)
{
	const struct auth_alg_info *ai;
	struct auth_claims claims;
	jwt_t *jwt = NULL;
	char *crit;
	int64_t exp = 0, nbf = 0;
	int have_exp, have_nbf, leeway, expired = 0;
	int rc = AUTH_INVALID;

	memset(&claims, 0, sizeof(claims));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (cfg == NULL || token == NULL || out == NULL)
		goto out;
	ai = auth_alg_info(cfg->alg);
	/* Without a key libjwt skips the HMAC check; never let that happen. */
	if (ai == NULL || cfg->key == NULL || cfg->keylen == 0 ||
	    cfg->keylen > AUTH_PEM_MAX)
		goto out;
	if (!auth_token_shape_ok(token))
		goto out;
	if (jwt_decode(&jwt, token, cfg->key, (int)cfg->keylen) != 0) {
		jwt = NULL;
		goto out;
	}
	/* The signature was checked with whatever alg the token named; it
	 * counts only if that is the configured one. JWT_ALG_NONE never is. */
	if (jwt_get_alg(jwt) != ai->jwt || jwt_get_alg(jwt) == JWT_ALG_NONE)
		goto out;
	/* libjwt maps the name case-insensitively ("hs256" is HS256 to it);
	 * RFC 7515 §4.1.1 names are case-sensitive, so the header's own text
	 * must be exactly the configured name. */
	if (!auth_alg_header_is(jwt, ai->name))
		goto out;
	/* RFC 7515 §4.1.11: extensions marked critical that we do not
	 * understand (we understand none) make the token invalid. */
	crit = jwt_get_headers_json(jwt, "crit");
	if (crit != NULL) {
		free(crit);
		goto out;
	}
	leeway = cfg->leeway > 0 ? cfg->leeway : 0;
	have_exp = auth_time_claim(jwt, "exp", &exp);
	if (have_exp < 0 || (have_exp == 0 && cfg->require_exp))
		goto out;
	have_nbf = auth_time_claim(jwt, "nbf", &nbf);
	if (have_nbf < 0 || (have_nbf == 1 && now < nbf - leeway))
		goto out;
	if (auth_user_id(jwt, claims.user_id) != 0)
		goto out;
	auth_role(jwt, claims.role);
	claims.valid_from = have_nbf == 1 ? nbf - leeway : INT64_MIN;
	claims.valid_until = have_exp == 1 ? exp + leeway : INT64_MAX;
	/* Expiry last: AUTH_EXPIRED tells a client to refresh, which is only
	 * worth it for a token that is otherwise good. */
	if (have_exp == 1 && now >= exp + leeway)
		expired = 1;
	if (expired) {
		rc = AUTH_EXPIRED;
		goto out;
	}
	*out = claims;
	rc = AUTH_OK;
out:
	jwt_free(jwt);
	/* A failed RSA/EC verification leaves errors in OpenSSL's queue. */
	ERR_clear_error();
	return rc;
}

/* 1 for the characters of a compact JWS: base64url and '.'. */
static int
auth_jws_char(unsigned char c)
{
	return auth_b64url_char(c) || c == '.';
}

static int
auth_ows(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * If authorization uses the Bearer scheme, returns 1 and points *tok and *len
 * at its credentials ("Bearer <t>", one or more spaces or tabs, optional
 * surrounding whitespace); *tok is NULL when they are missing or more than
 * one word. Returns 0 for any other scheme.
 */
static int
auth_bearer(const char *h, const char **tok, size_t *len)
{
	const char *p = h, *t;

	*tok = NULL;
	*len = 0;
	while (auth_ows(*p))
		p++;
	if (strncasecmp(p, "Bearer", 6) != 0 || !(auth_ows(p[6]) ||
	    p[6] == '\0'))
		return 0;
	p += 6;
	while (auth_ows(*p))
		p++;
	t = p;
	while (*p != '\0' && !auth_ows(*p))
		p++;
	*len = (size_t)(p - t);
	while (auth_ows(*p))
		p++;
	if (*p != '\0' || *len == 0) {
		*len = 0;
		return 1;
	}
	*tok = t;
	return 1;
}

/*
 * Finds the first cookie named exactly polacare_token in a Cookie header
 * ("a=b; polacare_token=<t>; c=d", RFC 6265 §5.4) and points *tok and *len at
 * its value, without surrounding double quotes. *tok is NULL if there is none.
 */
static void
auth_cookie(const char *h, const char **tok, size_t *len)
{
	static const char name[] = "polacare_token";
	const char *p = h, *n, *v, *end;
	size_t nlen;

	*tok = NULL;
	*len = 0;
	while (*p != '\0') {
		while (auth_ows(*p) || *p == ';')
			p++;
		n = p;
		while (*p != '\0' && *p != '=' && *p != ';')
			p++;
		if (*p != '=')
			continue;
		nlen = (size_t)(p - n);
		while (nlen > 0 && auth_ows(n[nlen - 1]))
			nlen--;
		v = ++p;
		while (*p != '\0' && *p != ';')
			p++;
		if (nlen != sizeof(name) - 1 || memcmp(n, name, nlen) != 0)
			continue;
		while (auth_ows(*v))
			v++;
		end = p;
		while (end > v && auth_ows(end[-1]))
			end--;
		if (end - v >= 2 && *v == '"' && end[-1] == '"') {
			v++;
			end--;
		}
		*tok = v;
		*len = (size_t)(end - v);
		return;
	}
}

const char *
auth_token_from_headers(const char *authorization, const char *cookie,
    char *buf, size_t bufsz)
{
	const char *tok = NULL;
	size_t len = 0;

	if (buf == NULL || bufsz == 0)
		return NULL;
	buf[0] = '\0';
	if (authorization == NULL || !auth_bearer(authorization, &tok, &len)) {
		if (cookie != NULL)
			auth_cookie(cookie, &tok, &len);
	}
	if (tok == NULL || len == 0 || len >= bufsz)
		return NULL;
	for (size_t i = 0; i < len; i++)
		if (!auth_jws_char((unsigned char)tok[i]))
			return NULL;
	memcpy(buf, tok, len);
	buf[len] = '\0';
	return buf;
}

/* --- cross-site request forgery: the Origin check ------------------------ */

#define AUTH_ORIGIN_MAX 300   /* bytes of a normalized origin */

/*
 * Normalizes the origin at the start of s (n bytes) into out
 * (AUTH_ORIGIN_MAX bytes): "scheme://host[:port]" with the scheme http or
 * https, scheme and host in lower case, the scheme's default port dropped.
 * When url is 1, s may go on with a path, query or fragment (a Referer);
 * when 0 it must end after the port (an Origin, or an allowed_origins
 * entry). Userinfo ('@'), an empty host or a bad port is refused. 0 or -1.
 */
static int
auth_origin_norm(const char *s, size_t n, int url, char *out)
{
	const char *p, *end = s + n, *host, *hend, *port = NULL;
	size_t o, hl, pl = 0;
	int https;

	if (n > 7 && strncasecmp(s, "http://", 7) == 0) {
		https = 0;
		p = s + 7;
	} else if (n > 8 && strncasecmp(s, "https://", 8) == 0) {
		https = 1;
		p = s + 8;
	} else {
		return -1;
	}
	host = p;
	if (p < end && *p == '[') {
		/* An IPv6 literal: hex digits, ':' and '.' up to ']'. */
		while (++p < end && *p != ']')
			if (!(*p == ':' || *p == '.' || (*p >= '0' && *p <= '9') ||
			    ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')))
				return -1;
		if (p == end)
			return -1;
		p++;
	} else {
		while (p < end && *p != '/' && *p != '?' && *p != '#' &&
		    *p != ':') {
			unsigned char c = (unsigned char)*p;

			/* A name or an IPv4 address. */
			if (!(c == '-' || c == '.' || c == '_' ||
			    (c >= '0' && c <= '9') ||
			    ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')))
				return -1;
			p++;
		}
	}
	hend = p;
	if (p < end && *p == ':') {
		port = ++p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		pl = (size_t)(p - port);
		if (pl == 0 || pl > 5)
			return -1;
	}
	if (p < end && (!url || (*p != '/' && *p != '?' && *p != '#')))
		return -1;
	hl = (size_t)(hend - host);
	if (hl == 0 || hl > 255)
		return -1;
	if (port != NULL && ((https && pl == 3 && memcmp(port, "443", 3) == 0) ||
	    (!https && pl == 2 && memcmp(port, "80", 2) == 0)))
		port = NULL;
	o = (size_t)snprintf(out, AUTH_ORIGIN_MAX, "%s://", https ? "https" : "http");
	for (size_t i = 0; i < hl; i++) {
		char c = host[i];

		out[o++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
	}
	if (port != NULL) {
		out[o++] = ':';
		memcpy(out + o, port, pl);
		o += pl;
	}
	out[o] = '\0';
	return 0;
}

bool
auth_origin_ok(const char *allowed, const char *origin, const char *referer,
    int https, const char *host, const char *port)
{
	char want[AUTH_ORIGIN_MAX], self[AUTH_ORIGIN_MAX + 16];
	const char *p;
	int n;

	if (origin != NULL && origin[0] != '\0') {
		if (auth_origin_norm(origin, strlen(origin), 0, want) != 0)
			return false;   /* also "null" */
	} else if (referer != NULL && referer[0] != '\0') {
		if (auth_origin_norm(referer, strlen(referer), 1, want) != 0)
			return false;
	} else {
		return false;
	}
	if (allowed == NULL || allowed[0] == '\0') {
		char norm[AUTH_ORIGIN_MAX];

		if (host == NULL || host[0] == '\0')
			return false;
		/* nginx's Debian fastcgi_params pass HTTP_HOST as $host, without
		 * the port: then the port is the one the server listens on. */
		if (port != NULL && port[0] != '\0' && (host[0] == '[' ?
		    strstr(host, "]:") == NULL : strchr(host, ':') == NULL))
			n = snprintf(self, sizeof(self), "%s://%s:%s",
			    https ? "https" : "http", host, port);
		else
			n = snprintf(self, sizeof(self), "%s://%s",
			    https ? "https" : "http", host);
		if (n < 0 || (size_t)n >= sizeof(self) ||
		    auth_origin_norm(self, (size_t)n, 0, norm) != 0)
			return false;
		return strcmp(norm, want) == 0;
	}
	for (p = allowed; *p != '\0';) {
		char norm[AUTH_ORIGIN_MAX];
		size_t len;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		len = strcspn(p, ", \t");
		if (len > 0 && auth_origin_norm(p, len, 0, norm) == 0 &&
		    strcmp(norm, want) == 0)
			return true;
		p += len;
	}
	return false;
}

bool
auth_origins_valid(const char *allowed, const char **bad, size_t *badlen)
{
	char norm[AUTH_ORIGIN_MAX];

	for (const char *p = allowed != NULL ? allowed : ""; *p != '\0';) {
		size_t len;

		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		len = strcspn(p, ", \t");
		if (len > 0 && auth_origin_norm(p, len, 0, norm) != 0) {
			if (bad != NULL)
				*bad = p;
			if (badlen != NULL)
				*badlen = len;
			return false;
		}
		p += len;
	}
	return true;
}

bool
auth_is_bearer(const char *authorization)
{
	const char *tok;
	size_t len;

	return authorization != NULL && auth_bearer(authorization, &tok, &len);
}
