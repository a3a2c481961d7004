/* test_auth.c — auth.c against tokens made here with libjwt and OpenSSL.
 *
 * HS256 tokens use a 32-byte secret; RS256 and ES256 keys are generated in
 * process and their public halves written to a mkdtemp() directory, removed
 * at the end. Some tokens are assembled by hand (alg "none", algorithm
 * confusion, fractional exp, crit header) because libjwt will not make them.
 */
#include "auth.h"
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "tap.h"

#define NOW INT64_C(1900000000)
#define UID "0f8fad5b-d9cb-469f-a165-70867728950e"
#define UID2 "7c9e6679-7425-40de-944b-e07fc1f90ae7"
#define AUTH_SECRET_MAX_TEST 4096    /* the limit auth_config_load() states */

static const char secret[] = "0123456789abcdef0123456789abcdef";   /* 32 */
static char tmpdir[] = "/tmp/polaimg-test-auth-XXXXXX";
static char made[16][256];
static int nmade;

/* A path in tmpdir, remembered for removal. */
static const char *
tmp_path(const char *name)
{
	int n;

	if (nmade >= (int)(sizeof(made) / sizeof(made[0])))
		abort();
	n = snprintf(made[nmade], sizeof(made[0]), "%s/%s", tmpdir, name);
	if (n < 0 || (size_t)n >= sizeof(made[0]))
		abort();
	return made[nmade++];
}

static const char *
write_file(const char *name, const void *data, size_t len)
{
	const char *path = tmp_path(name);
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		abort();
	return path;
}

/* Notes on what libjwt itself does, for whoever reads the test log: the
 * assertions do not depend on them. */
static void
diag_libjwt(const char *what)
{
	printf("# note: libjwt %s\n", what);
}

static void
diag_sizes(size_t lo, size_t hi)
{
	printf("# token sizes around the limit: %zu and %zu\n", lo, hi);
}

/* PEM of a key into a malloc'd NUL-terminated string. */
static char *
pem_of(EVP_PKEY *k, int private)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s;
	long n;

	if (b == NULL)
		abort();
	if ((private ? PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL,
	    NULL) : PEM_write_bio_PUBKEY(b, k)) != 1)
		abort();
	n = BIO_get_mem_data(b, &data);
	if (n <= 0 || (s = malloc((size_t)n + 1)) == NULL)
		abort();
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	BIO_free(b);
	return s;
}

/* A token signed by libjwt: grants as a JSON object. malloc'd. */
static char *
mk(jwt_alg_t alg, const void *key, size_t keylen, const char *grants)
{
	jwt_t *j = NULL;
	char *t;

	if (jwt_new(&j) != 0 || jwt_add_grants_json(j, grants) != 0 ||
	    jwt_set_alg(j, alg, key, (int)keylen) != 0)
		abort();
	t = jwt_encode_str(j);
	if (t == NULL)
		abort();
	jwt_free(j);
	return t;
}

static char *
mk_hs(const char *grants)
{
	return mk(JWT_ALG_HS256, secret, strlen(secret), grants);
}

static void
b64url(const unsigned char *in, size_t len, char *out, size_t outsz)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i;
	unsigned v;

	for (i = 0; i < len; i += 3) {
		v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		if (o + 5 > outsz)
			abort();
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		if (i + 1 < len)
			out[o++] = tab[(v >> 6) & 63];
		if (i + 2 < len)
			out[o++] = tab[v & 63];
	}
	out[o] = '\0';
}

/* A token assembled by hand: header and payload JSON as given, signed with
 * HMAC-SHA256 under key, or with the signature text sig when key is NULL. */
static char *
mk_raw(const char *header, const char *payload, const void *key,
    size_t keylen, const char *sig)
{
	char h[1024], p[12000], s[128], *t;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	size_t n;

	b64url((const unsigned char *)header, strlen(header), h, sizeof(h));
	b64url((const unsigned char *)payload, strlen(payload), p, sizeof(p));
	n = strlen(h) + strlen(p) + 200;
	if ((t = malloc(n)) == NULL)
		abort();
	if (snprintf(t, n, "%s.%s", h, p) < 0)
		abort();
	if (key != NULL) {
		if (HMAC(EVP_sha256(), key, (int)keylen,
		    (const unsigned char *)t, strlen(t), mac, &maclen) == NULL)
			abort();
		b64url(mac, maclen, s, sizeof(s));
		sig = s;
	}
	if (snprintf(t + strlen(t), n - strlen(t), ".%s", sig) < 0)
		abort();
	return t;
}

/* auth_verify at NOW, the user id and role it found into *claims. */
static int
verify(const struct auth_config *cfg, const char *tok, struct auth_claims *c)
{
	return auth_verify(cfg, tok, NOW, c);
}

static void
test_alg_parse(void)
{
	enum auth_alg a = AUTH_ES512;

	is_int(auth_alg_parse("hs256", &a), 0, "alg hs256 parses");
	is_int(a, AUTH_HS256, "alg hs256 is HS256");
	is_int(auth_alg_parse("RS512", &a), 0, "alg RS512 parses");
	is_int(a, AUTH_RS512, "alg RS512 is RS512");
	is_int(auth_alg_parse("ES256", &a), 0, "alg ES256 parses");
	is_int(a, AUTH_ES256, "alg ES256 is ES256");
	is_int(auth_alg_parse("none", &a), PI_ERR_INVALID, "alg none refused");
	is_int(auth_alg_parse("PS256", &a), PI_ERR_INVALID, "alg PS256 refused");
	is_int(auth_alg_parse("HS256 ", &a), PI_ERR_INVALID, "alg with a space refused");
	is_int(auth_alg_parse(NULL, &a), PI_ERR_INVALID, "alg NULL refused");
	is_str(auth_alg_name(AUTH_ES384), "ES384", "alg name ES384");
	is_str(auth_alg_name((enum auth_alg)42), "?", "alg name unknown");
}

static void
test_config(void)
{
	struct auth_config cfg;
	const char *why = NULL;
	char big[AUTH_SECRET_MAX_TEST + 1];

	memset(big, 'k', sizeof(big));
	is_int(auth_config_load(&cfg, AUTH_HS256, secret, 31, NULL, 1, &why),
	    PI_ERR_INVALID, "HS256 secret of 31 bytes refused");
	ok(why != NULL && strstr(why, "7518") != NULL,
	    "short secret refusal cites RFC 7518");
	ok(cfg.key == NULL && cfg.keylen == 0, "config zeroed after refusal");
	is_int(auth_config_load(&cfg, AUTH_HS256, "", 0, NULL, 1, &why), PI_ERR_INVALID,
	    "empty HS256 secret refused");
	is_int(auth_config_load(&cfg, AUTH_HS256, NULL, 32, NULL, 1, &why), PI_ERR_INVALID,
	    "NULL HS256 secret refused");
	is_int(auth_config_load(&cfg, AUTH_HS512, secret, 32, NULL, 1, &why),
	    PI_ERR_INVALID, "HS512 with a 32-byte secret refused");
	is_int(auth_config_load(&cfg, AUTH_HS256, big, sizeof(big), NULL, 1,
	    &why), PI_ERR_INVALID, "HS256 secret over 4096 bytes refused");
	is_int(auth_config_load(&cfg, AUTH_HS256, big, 64, NULL, 0, NULL), 0,
	    "64-byte HS256 secret accepted, why may be NULL");
	ok(cfg.keylen == 64 && memcmp(cfg.key, big, 64) == 0 &&
	    cfg.require_exp == 0 && cfg.leeway == 0, "config holds the secret");
	auth_config_free(&cfg);
	ok(cfg.key == NULL, "auth_config_free clears the key");
	auth_config_free(&cfg);
	auth_config_free(NULL);
	is_int(auth_config_load(&cfg, (enum auth_alg)99, secret, 32, NULL, 1,
	    &why), PI_ERR_INVALID, "unknown algorithm refused");
	is_int(auth_config_load(&cfg, AUTH_RS256, NULL, 0, NULL, 1, &why), PI_ERR_INVALID,
	    "RS256 without a key file refused");
	is_int(auth_config_load(&cfg, AUTH_RS256, NULL, 0, tmp_path("absent"),
	    1, &why), PI_ERR_INVALID, "RS256 with a missing key file refused");
	is_int(auth_config_load(&cfg, AUTH_RS256, NULL, 0, tmpdir, 1, &why),
	    PI_ERR_INVALID, "RS256 with a directory as key file refused");
}

/* Everything an HS256 configuration must decide. */
static void
test_hs256(void)
{
	struct auth_config cfg, nocfg;
	struct auth_claims c;
	char grants[512], *t;
	jwt_t *j = NULL;

	if (auth_config_load(&cfg, AUTH_HS256, secret, strlen(secret), NULL, 1,
	    NULL) != 0)
		abort();

	/* The plain case, made with the individual grant calls. */
	if (jwt_new(&j) != 0 || jwt_add_grant(j, "userId", UID) != 0 ||
	    jwt_add_grant_int(j, "exp", (long)NOW + 60) != 0 ||
	    jwt_add_grant_int(j, "iat", (long)NOW) != 0 ||
	    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret,
	    (int)strlen(secret)) != 0 || (t = jwt_encode_str(j)) == NULL)
		abort();
	jwt_free(j);
	is_int(verify(&cfg, t, &c), AUTH_OK, "valid HS256 token accepted");
	is_str(c.user_id, UID, "user id from userId");
	is_str(c.role, "", "no role claim gives empty role");
	free(t);

	t = mk_hs("{\"sub\":\"" UID2 "\",\"exp\":1900000060}");
	is_int(verify(&cfg, t, &c), AUTH_OK, "token with sub only accepted");
	is_str(c.user_id, UID2, "user id from sub");
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\",\"sub\":\"" UID2 "\","
	    "\"exp\":1900000060}");
	is_int(verify(&cfg, t, &c), AUTH_OK, "token with userId and sub");
	is_str(c.user_id, UID, "userId wins over sub");
	free(t);

	t = mk_hs("{\"userId\":\"0F8FAD5B-D9CB-469F-A165-70867728950E\","
	    "\"exp\":1900000060}");
	is_int(verify(&cfg, t, &c), AUTH_OK, "upper-case UUID accepted");
	is_str(c.user_id, UID, "upper-case UUID canonicalised");
	free(t);

	t = mk_hs("{\"userId\":\"12345\",\"sub\":\"" UID2 "\","
	    "\"exp\":1900000060}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID,
	    "non-UUID userId refused, sub not used instead");
	is_str(c.user_id, "", "claims zeroed on failure");
	free(t);

	t = mk_hs("{\"userId\":42,\"sub\":\"" UID2 "\",\"exp\":1900000060}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "numeric userId refused");
	free(t);

	t = mk_hs("{\"userId\":\"" UID "x\",\"exp\":1900000060}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "UUID with a tail refused");
	free(t);

	t = mk_hs("{\"userId\":\"0f8fad5b-d9cb-469f-a165_70867728950e\","
	    "\"exp\":1900000060}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "UUID with '_' refused");
	free(t);

	t = mk_hs("{\"exp\":1900000060,\"name\":\"x\"}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "token without a user id");
	free(t);

	/* exp */
	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1899999999}");
	is_int(verify(&cfg, t, &c), AUTH_EXPIRED, "expired token: AUTH_EXPIRED");
	is_str(c.user_id, "", "no user id for an expired token");
	cfg.leeway = 10;
	is_int(verify(&cfg, t, &c), AUTH_OK, "expired by 1 s within leeway 10");
	cfg.leeway = -5;
	is_int(verify(&cfg, t, &c), AUTH_EXPIRED, "negative leeway counts as 0");
	cfg.leeway = 0;
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000000}");
	is_int(verify(&cfg, t, &c), AUTH_EXPIRED, "exp == now is expired");
	is_int(auth_verify(&cfg, t, NOW - 1, &c), AUTH_OK,
	    "one second before exp is valid");
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\"}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "missing exp refused");
	cfg.require_exp = 0;
	is_int(verify(&cfg, t, &c), AUTH_OK,
	    "missing exp accepted when require_exp = 0");
	cfg.require_exp = 1;
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":\"1900000060\"}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "string exp refused");
	cfg.require_exp = 0;
	is_int(verify(&cfg, t, &c), AUTH_INVALID,
	    "string exp refused even when exp is optional");
	cfg.require_exp = 1;
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":null}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "null exp refused");
	free(t);

	/* Fractional NumericDates are legal (RFC 7519 §2). */
	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000000.5}");
	is_int(verify(&cfg, t, &c), AUTH_OK, "exp now + 0.5 is valid");
	is_int(auth_verify(&cfg, t, NOW + 1, &c), AUTH_EXPIRED,
	    "exp now + 0.5 expired a second later");
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1.9e9}");
	is_int(verify(&cfg, t, &c), AUTH_EXPIRED, "exp 1.9e9 == now expired");
	is_int(auth_verify(&cfg, t, NOW - 1, &c), AUTH_OK,
	    "exp 1.9e9 valid a second before");
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1e300}");
	is_int(verify(&cfg, t, &c), AUTH_OK, "exp 1e300 clamped, valid");
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":-1e300}");
	is_int(verify(&cfg, t, &c), AUTH_EXPIRED, "exp -1e300 expired");
	free(t);

	/* nbf */
	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000600,"
	    "\"nbf\":1900000100}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "nbf in the future refused");
	is_int(auth_verify(&cfg, t, NOW + 99, &c), AUTH_INVALID,
	    "nbf a second later refused");
	cfg.leeway = 100;
	is_int(verify(&cfg, t, &c), AUTH_OK, "nbf within the leeway accepted");
	cfg.leeway = 0;
	is_int(auth_verify(&cfg, t, NOW + 100, &c), AUTH_OK,
	    "nbf == now accepted");
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000060,"
	    "\"nbf\":\"soon\"}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "string nbf refused");
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1899999000,"
	    "\"nbf\":1900000100}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID,
	    "expired and not yet valid: invalid, not expired");
	free(t);

	t = mk_hs("{\"userId\":\"nope\",\"exp\":1899999000}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID,
	    "expired with a bad user id: invalid, not expired");
	free(t);

	/* Signatures. */
	snprintf(grants, sizeof(grants), "{\"userId\":\"%s\",\"exp\":%lld}",
	    UID, (long long)NOW - 10);
	t = mk(JWT_ALG_HS256, "another secret, also 32 bytes lo", 32, grants);
	is_int(verify(&cfg, t, &c), AUTH_INVALID,
	    "expired token under a wrong secret: invalid, not expired");
	free(t);

	t = mk(JWT_ALG_HS256, "another secret, also 32 bytes lo", 32,
	    "{\"userId\":\"" UID "\",\"exp\":1900000060}");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "wrong secret refused");
	free(t);

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000060}");
	t[strlen(t) - 3] = t[strlen(t) - 3] == 'A' ? 'B' : 'A';
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "altered signature refused");
	free(t);

	{
		/* Another payload spliced onto a good header and signature. */
		char *good = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000060}");
		char *evil = mk_hs("{\"userId\":\"" UID2 "\",\"exp\":1900000060}");
		char *g2 = strchr(good, '.'), *e2 = strchr(evil, '.');
		char *gs = strchr(g2 + 1, '.'), *es = strchr(e2 + 1, '.');
		char splice[1024];

		snprintf(splice, sizeof(splice), "%.*s%.*s%s",
		    (int)(g2 - good), good, (int)(es - e2), e2, gs);
		is_int(verify(&cfg, splice, &c), AUTH_INVALID,
		    "payload swapped under a valid signature refused");
		free(good);
		free(evil);
	}

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000060}");
	if (jwt_decode(&j, t, NULL, 0) == 0) {
		diag_libjwt(jwt_get_alg(j) == JWT_ALG_NONE ?
		    "accepts an HS256 token unverified when given no key, "
		    "reporting alg none" :
		    "accepts an HS256 token unverified when given no key");
		jwt_free(j);
	}
	j = NULL;
	nocfg = cfg;
	nocfg.key = NULL;
	nocfg.keylen = 0;
	is_int(verify(&nocfg, t, &c), AUTH_INVALID,
	    "a configuration without a key accepts nothing");
	free(t);

	/* alg none, hand-built. */
	t = mk_raw("{\"alg\":\"none\",\"typ\":\"JWT\"}",
	    "{\"userId\":\"" UID "\",\"exp\":1900000060}", NULL, 0, "");
	if (jwt_decode(&j, t, (const unsigned char *)secret,
	    (int)strlen(secret)) == 0) {
		diag_libjwt("accepts alg none when given a key");
		jwt_free(j);
	} else {
		diag_libjwt("refuses alg none when given a key");
	}
	j = NULL;
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "alg none, no signature");
	free(t);
	t = mk_raw("{\"alg\":\"none\",\"typ\":\"JWT\"}",
	    "{\"userId\":\"" UID "\",\"exp\":1900000060}", NULL, 0, "c2ln");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "alg none with a signature");
	free(t);
	t = mk_raw("{\"alg\":\"None\"}",
	    "{\"userId\":\"" UID "\",\"exp\":1900000060}", NULL, 0, "c2ln");
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "alg None refused");
	free(t);

	/* Algorithm names are case-sensitive (RFC 7515 §4.1.1), though
	 * libjwt maps them case-insensitively. */
	t = mk_raw("{\"alg\":\"hs256\",\"typ\":\"JWT\"}",
	    "{\"userId\":\"" UID "\",\"exp\":1900000060}", secret,
	    strlen(secret), NULL);
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "alg hs256 (lower case) refused");
	free(t);
	t = mk_raw("{\"alg\":\"Hs256\"}",
	    "{\"userId\":\"" UID "\",\"exp\":1900000060}", secret,
	    strlen(secret), NULL);
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "alg Hs256 (mixed case) refused");
	free(t);
	t = mk_raw("{\"alg\":\"HS\\u0032\\u0035\\u0036\"}",
	    "{\"userId\":\"" UID "\",\"exp\":1900000060}", secret,
	    strlen(secret), NULL);
	is_int(verify(&cfg, t, &c), AUTH_OK, "alg HS256 written with escapes accepted");
	free(t);

	/* Hand-built HS256 tokens: the builder itself is right, and a crit
	 * header we cannot honour is refused. */
	t = mk_raw("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
	    "{\"userId\":\"" UID "\",\"exp\":1900000060}", secret,
	    strlen(secret), NULL);
	is_int(verify(&cfg, t, &c), AUTH_OK, "hand-built HS256 token accepted");
	free(t);
	t = mk_raw("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}",
	    "{\"userId\":\"" UID "\",\"exp\":1900000060}", secret,
	    strlen(secret), NULL);
	is_int(verify(&cfg, t, &c), AUTH_INVALID, "crit header refused");
	free(t);

	/* Role: exposed as stated; trusting it is the caller's choice. */
	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000060,"
	    "\"role\":\"admin\"}");
	is_int(verify(&cfg, t, &c), AUTH_OK, "token with a role claim");
	is_str(c.role, "admin", "role claim exposed");
	free(t);
	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000060,"
	    "\"role\":\"administrator12\"}");
	is_int(verify(&cfg, t, &c), AUTH_OK, "token with a 15-char role");
	is_str(c.role, "administrator12", "15-char role kept");
	free(t);
	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000060,"
	    "\"role\":\"administrator123\"}");
	is_int(verify(&cfg, t, &c), AUTH_OK, "token with a 16-char role");
	is_str(c.role, "", "16-char role dropped");
	free(t);
	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000060,"
	    "\"role\":[\"admin\"]}");
	is_int(verify(&cfg, t, &c), AUTH_OK, "token with an array role");
	is_str(c.role, "", "non-string role dropped");
	free(t);
	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000060,"
	    "\"role\":\"ad min\\n\"}");
	is_int(verify(&cfg, t, &c), AUTH_OK, "token with a spaced role");
	is_str(c.role, "", "role with white space dropped");
	free(t);

	auth_config_free(&cfg);
}

/* Tokens that must be refused before libjwt sees them. */
static void
test_shape(void)
{
	struct auth_config cfg;
	struct auth_claims c;
	char grants[9000], *t, *pad, *lo = NULL, *hi = NULL, *x;
	size_t n, len;

	if (auth_config_load(&cfg, AUTH_HS256, secret, strlen(secret), NULL, 1,
	    NULL) != 0)
		abort();
	is_int(verify(&cfg, "", &c), AUTH_INVALID, "empty token refused");
	is_int(verify(&cfg, "garbage", &c), AUTH_INVALID, "garbage refused");
	is_int(verify(&cfg, "a.b", &c), AUTH_INVALID, "one dot refused");
	is_int(verify(&cfg, "...", &c), AUTH_INVALID, "three dots refused");
	is_int(verify(&cfg, NULL, &c), AUTH_INVALID, "NULL token refused");
	is_int(auth_verify(NULL, "a.b.c", NOW, &c), AUTH_INVALID,
	    "NULL config refused");

	t = mk_hs("{\"userId\":\"" UID "\",\"exp\":1900000060}");
	is_int(auth_verify(&cfg, t, NOW, NULL), AUTH_INVALID,
	    "NULL claims refused");
	len = strlen(t);
	x = malloc(len + 8);
	if (x == NULL)
		abort();
	snprintf(x, len + 8, "%s.AAAA", t);
	is_int(verify(&cfg, x, &c), AUTH_INVALID, "good token + 3rd dot refused");
	snprintf(x, len + 8, "%s=", t);
	is_int(verify(&cfg, x, &c), AUTH_INVALID, "base64 padding refused");
	snprintf(x, len + 8, "%s ", t);
	is_int(verify(&cfg, x, &c), AUTH_INVALID, "trailing space refused");
	snprintf(x, len + 8, "%s", t);
	*strchr(x, '.') = '+';
	is_int(verify(&cfg, x, &c), AUTH_INVALID, "'+' (not base64url) refused");
	snprintf(x, len + 8, "%s", t);
	memmove(strchr(x, '.') + 1, strrchr(x, '.'), strlen(strrchr(x, '.')) + 1);
	is_int(verify(&cfg, x, &c), AUTH_INVALID, "empty payload refused");
	snprintf(x, len + 8, "%s", t);
	*strrchr(x, '.') = '\0';
	snprintf(x + strlen(x), len + 8 - strlen(x), ".");
	is_int(verify(&cfg, x, &c), AUTH_INVALID, "empty signature refused");
	snprintf(x, len + 8, "%sA", t);
	is_int(verify(&cfg, x, &c), AUTH_INVALID,
	    "signature of impossible length refused");
	free(x);
	free(t);

	/* The size limit, on validly signed tokens either side of it. */
	for (n = 5500; n < 6400; n++) {
		pad = malloc(n + 1);
		if (pad == NULL)
			abort();
		memset(pad, 'p', n);
		pad[n] = '\0';
		snprintf(grants, sizeof(grants), "{\"userId\":\"%s\",\"exp\":"
		    "1900000060,\"pad\":\"%s\"}", UID, pad);
		free(pad);
		t = mk_hs(grants);
		len = strlen(t);
		if (len <= AUTH_TOKEN_MAX) {
			free(lo);
			lo = t;
		} else if (hi == NULL) {
			hi = t;
			break;
		} else {
			free(t);
		}
	}
	ok(lo != NULL && hi != NULL, "tokens around the size limit made");
	if (lo != NULL && hi != NULL) {
		diag_sizes(strlen(lo), strlen(hi));
		is_int(verify(&cfg, lo, &c), AUTH_OK,
		    "valid token just under 8 KiB accepted");
		is_int(verify(&cfg, hi, &c), AUTH_INVALID,
		    "valid token just over 8 KiB refused");
	}
	free(lo);
	free(hi);
	auth_config_free(&cfg);
}

static void
test_pubkey(void)
{
	struct auth_config rs, es, hs, bad;
	struct auth_claims c;
	EVP_PKEY *rsa, *ec, *ec2, *ec384, *rsa1k;
	char *rsa_priv, *rsa_pub, *ec_priv, *ec_pub, *ec2_priv, *p384_pub;
	char *rsa1k_pub, *big, *t;
	const char *rsa_path, *ec_path, *why = NULL;
	const char *grants = "{\"userId\":\"" UID "\",\"exp\":1900000060}";
	jwt_t *j = NULL;

	rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa1k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	if (rsa == NULL || rsa1k == NULL || ec == NULL || ec2 == NULL ||
	    ec384 == NULL)
		abort();
	rsa_priv = pem_of(rsa, 1);
	rsa_pub = pem_of(rsa, 0);
	ec_priv = pem_of(ec, 1);
	ec_pub = pem_of(ec, 0);
	ec2_priv = pem_of(ec2, 1);
	p384_pub = pem_of(ec384, 0);
	rsa1k_pub = pem_of(rsa1k, 0);
	rsa_path = write_file("rsa.pem", rsa_pub, strlen(rsa_pub));
	ec_path = write_file("ec.pem", ec_pub, strlen(ec_pub));

	/* Key files that must be refused. */
	is_int(auth_config_load(&bad, AUTH_RS256, NULL, 0, ec_path, 1, &why),
	    PI_ERR_INVALID, "RS256 with an EC key refused");
	is_int(auth_config_load(&bad, AUTH_ES256, NULL, 0, rsa_path, 1, &why),
	    PI_ERR_INVALID, "ES256 with an RSA key refused");
	is_int(auth_config_load(&bad, AUTH_ES256, NULL, 0,
	    write_file("p384.pem", p384_pub, strlen(p384_pub)), 1, &why), PI_ERR_INVALID,
	    "ES256 with a P-384 key refused");
	is_int(auth_config_load(&bad, AUTH_ES384, NULL, 0, tmp_path("p384.pem"),
	    1, &why), 0, "ES384 with a P-384 key accepted");
	auth_config_free(&bad);
	is_int(auth_config_load(&bad, AUTH_RS256, NULL, 0,
	    write_file("rsa1k.pem", rsa1k_pub, strlen(rsa1k_pub)), 1, &why), PI_ERR_INVALID,
	    "RS256 with a 1024-bit key refused");
	is_int(auth_config_load(&bad, AUTH_RS256, NULL, 0,
	    write_file("junk.pem", "not a key\n", 10), 1, &why), PI_ERR_INVALID,
	    "RS256 with a junk file refused");
	is_int(auth_config_load(&bad, AUTH_RS256, NULL, 0,
	    write_file("empty.pem", "", 0), 1, &why), PI_ERR_INVALID,
	    "RS256 with an empty file refused");
	is_int(auth_config_load(&bad, AUTH_RS256, NULL, 0,
	    write_file("priv.pem", rsa_priv, strlen(rsa_priv)), 1, &why), PI_ERR_INVALID,
	    "RS256 with a private key only refused");
	big = malloc(70000);
	if (big == NULL)
		abort();
	memset(big, '\n', 70000);
	memcpy(big, rsa_pub, strlen(rsa_pub));
	is_int(auth_config_load(&bad, AUTH_RS256, NULL, 0,
	    write_file("big.pem", big, 70000), 1, &why), PI_ERR_INVALID,
	    "RS256 with a key file over 64 KiB refused");
	ok(why != NULL && strstr(why, "64 KiB") != NULL,
	    "refusal names the size limit");
	free(big);

	is_int(auth_config_load(&rs, AUTH_RS256, NULL, 0, rsa_path, 1, &why),
	    0, "RS256 with a 2048-bit RSA key accepted");
	is_int(auth_config_load(&es, AUTH_ES256, NULL, 0, ec_path, 1, &why), 0,
	    "ES256 with a P-256 key accepted");
	if (auth_config_load(&hs, AUTH_HS256, secret, strlen(secret), NULL, 1,
	    NULL) != 0)
		abort();

	t = mk(JWT_ALG_RS256, rsa_priv, strlen(rsa_priv), grants);
	is_int(verify(&rs, t, &c), AUTH_OK, "valid RS256 token accepted");
	is_str(c.user_id, UID, "RS256 user id");
	is_int(verify(&hs, t, &c), AUTH_INVALID,
	    "RS256 token refused when HS256 is configured");
	is_int(verify(&es, t, &c), AUTH_INVALID,
	    "RS256 token refused when ES256 is configured");
	free(t);
	t = mk(JWT_ALG_RS384, rsa_priv, strlen(rsa_priv), grants);
	is_int(verify(&rs, t, &c), AUTH_INVALID,
	    "RS384 token refused when RS256 is configured");
	free(t);

	/* Algorithm confusion: HMAC keyed with the public key's PEM, both as
	 * polaimg holds it and as the file holds it. */
	t = mk(JWT_ALG_HS256, rs.key, rs.keylen, grants);
	if (jwt_decode(&j, t, rs.key, (int)rs.keylen) == 0) {
		diag_libjwt("accepts an HS256 token keyed with the RSA PEM");
		jwt_free(j);
	}
	j = NULL;
	is_int(verify(&rs, t, &c), AUTH_INVALID,
	    "HS256 token keyed with the configured PEM refused (confusion)");
	free(t);
	t = mk_raw("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", grants, rsa_pub,
	    strlen(rsa_pub), NULL);
	is_int(verify(&rs, t, &c), AUTH_INVALID,
	    "HS256 token keyed with the PEM file refused (confusion)");
	free(t);
	t = mk_raw("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", grants, es.key,
	    es.keylen, NULL);
	is_int(verify(&es, t, &c), AUTH_INVALID,
	    "HS256 token keyed with the EC PEM refused (confusion)");
	free(t);

	t = mk(JWT_ALG_ES256, ec_priv, strlen(ec_priv), grants);
	is_int(verify(&es, t, &c), AUTH_OK, "valid ES256 token accepted");
	is_str(c.user_id, UID, "ES256 user id");
	is_int(verify(&rs, t, &c), AUTH_INVALID,
	    "ES256 token refused when RS256 is configured");
	free(t);
	t = mk(JWT_ALG_ES256, ec2_priv, strlen(ec2_priv), grants);
	is_int(verify(&es, t, &c), AUTH_INVALID,
	    "ES256 token from another key refused");
	free(t);
	t = mk(JWT_ALG_ES256, ec_priv, strlen(ec_priv),
	    "{\"userId\":\"" UID "\",\"exp\":1899999999}");
	is_int(verify(&es, t, &c), AUTH_EXPIRED, "expired ES256 token");
	free(t);

	auth_config_free(&rs);
	auth_config_free(&es);
	auth_config_free(&hs);
	free(rsa_priv);
	free(rsa_pub);
	free(ec_priv);
	free(ec_pub);
	free(ec2_priv);
	free(p384_pub);
	free(rsa1k_pub);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa1k);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec2);
	EVP_PKEY_free(ec384);
}

static void
test_headers(void)
{
	char buf[64], small[5];

	is_str(auth_token_from_headers("Bearer abc.def.ghi", NULL, buf,
	    sizeof(buf)), "abc.def.ghi", "bearer token");
	is_str(auth_token_from_headers("bEaReR    abc.def.ghi", NULL, buf,
	    sizeof(buf)), "abc.def.ghi", "scheme case-insensitive, spaces");
	is_str(auth_token_from_headers("Bearer\tabc  ", NULL, buf,
	    sizeof(buf)), "abc", "tab separator, trailing space");
	is_str(auth_token_from_headers(NULL, "polacare_token=c.o.k", buf,
	    sizeof(buf)), "c.o.k", "cookie token");
	is_str(auth_token_from_headers(NULL,
	    "a=b; polacare_token=c.o.k; c=d", buf, sizeof(buf)), "c.o.k",
	    "cookie among others");
	is_str(auth_token_from_headers(NULL, "a=b;polacare_token=\"q.u.o\"",
	    buf, sizeof(buf)), "q.u.o", "quoted cookie, no space");
	is_str(auth_token_from_headers("Bearer b.e.a", "polacare_token=c.o.k",
	    buf, sizeof(buf)), "b.e.a", "bearer wins over cookie");
	is_str(auth_token_from_headers("Basic dXNlcjpwdw==",
	    "polacare_token=c.o.k", buf, sizeof(buf)), "c.o.k",
	    "other scheme: cookie used");
	is_str(auth_token_from_headers("", "polacare_token=c.o.k", buf,
	    sizeof(buf)), "c.o.k", "empty Authorization: cookie used");
	ok(auth_token_from_headers("Bearer", "polacare_token=c.o.k", buf,
	    sizeof(buf)) == NULL, "empty bearer: no token, cookie not used");
	ok(auth_token_from_headers("Bearer a b", NULL, buf, sizeof(buf)) ==
	    NULL, "two-word bearer refused");
	ok(auth_token_from_headers("Bearerabc", NULL, buf, sizeof(buf)) ==
	    NULL, "no space after the scheme refused");
	ok(auth_token_from_headers("Bearer abc<x>", NULL, buf, sizeof(buf)) ==
	    NULL, "bearer with characters outside the JWS set refused");
	ok(auth_token_from_headers(NULL, "xpolacare_token=c.o.k", buf,
	    sizeof(buf)) == NULL, "prefixed cookie name not matched");
	ok(auth_token_from_headers(NULL, "polacare_token_old=c.o.k", buf,
	    sizeof(buf)) == NULL, "suffixed cookie name not matched");
	ok(auth_token_from_headers(NULL, "POLACARE_TOKEN=c.o.k", buf,
	    sizeof(buf)) == NULL, "cookie name is case-sensitive");
	ok(auth_token_from_headers(NULL, "polacare=c.o.k", buf,
	    sizeof(buf)) == NULL, "shorter cookie name not matched");
	is_str(auth_token_from_headers(NULL,
	    "xpolacare_token=bad; polacare_token=good", buf, sizeof(buf)),
	    "good", "exact name found after a prefixed one");
	ok(auth_token_from_headers(NULL, "polacare_token=a%20b", buf,
	    sizeof(buf)) == NULL, "cookie with '%' refused");
	ok(auth_token_from_headers(NULL, "polacare_token=", buf,
	    sizeof(buf)) == NULL, "empty cookie value refused");
	ok(auth_token_from_headers(NULL, "novalue; other", buf,
	    sizeof(buf)) == NULL, "cookie header without the cookie");
	ok(auth_token_from_headers(NULL, NULL, buf, sizeof(buf)) == NULL,
	    "no headers, no token");
	is_str(buf, "", "buffer emptied when there is no token");
	is_str(auth_token_from_headers("Bearer abcd", NULL, small,
	    sizeof(small)), "abcd", "token that just fits");
	memset(small, 'z', sizeof(small));
	ok(auth_token_from_headers("Bearer abcde", NULL, small,
	    sizeof(small)) == NULL, "oversize bearer token not copied");
	ok(small[0] == '\0' && small[1] == 'z',
	    "nothing but the terminator written");
	ok(auth_token_from_headers(NULL, "polacare_token=abcde", small,
	    sizeof(small)) == NULL, "oversize cookie token not copied");
	ok(auth_token_from_headers("Bearer a", NULL, buf, 0) == NULL,
	    "zero-size buffer");
}

static void
cleanup(void)
{
	for (int i = 0; i < nmade; i++)
		if (unlink(made[i]) != 0 && errno != ENOENT)
			printf("# cannot remove %s\n", made[i]);
	if (rmdir(tmpdir) != 0)
		printf("# cannot remove %s\n", tmpdir);
}

/* The Origin check of unsafe cookie requests (auth_origin_ok). */
static void
test_origin(void)
{
	const char *bad = NULL;
	size_t badlen = 0;

	/* Empty allowed_origins: the request's own origin. */
	is_int(auth_origin_ok("", "https://clinic.example", NULL, 1,
	    "clinic.example", NULL), 1, "origin: own https origin");
	is_int(auth_origin_ok(NULL, "https://Clinic.Example:443", NULL, 1,
	    "clinic.example", NULL), 1, "origin: case and default port ignored");
	is_int(auth_origin_ok("", "http://127.0.0.1:8080", NULL, 0,
	    "127.0.0.1:8080", NULL), 1, "origin: own http origin with a port");
	is_int(auth_origin_ok("", "https://evil.example", NULL, 1,
	    "clinic.example", NULL), 0, "origin: another site refused");
	is_int(auth_origin_ok("", "http://clinic.example", NULL, 1,
	    "clinic.example", NULL), 0, "origin: http page against an https request refused");
	is_int(auth_origin_ok("", "https://clinic.example:8443", NULL, 1,
	    "clinic.example", NULL), 0, "origin: another port refused");
	is_int(auth_origin_ok("", "null", NULL, 1, "clinic.example", NULL), 0,
	    "origin: null refused");
	is_int(auth_origin_ok("", NULL, NULL, 1, "clinic.example", NULL), 0,
	    "origin: neither Origin nor Referer refused");
	is_int(auth_origin_ok("", "https://clinic.example", NULL, 1, NULL, NULL), 0,
	    "origin: no Host, nothing to compare with");
	is_int(auth_origin_ok("", "https://clinic.example.evil.example", NULL, 1,
	    "clinic.example", NULL), 0, "origin: a longer host refused");
	is_int(auth_origin_ok("", "https://clinic.example/", NULL, 1,
	    "clinic.example", NULL), 0, "origin: an Origin with a path refused");
	is_int(auth_origin_ok("", "https://u@clinic.example", NULL, 1,
	    "clinic.example", NULL), 0, "origin: userinfo refused");
	/* Debian's nginx passes Host without the port: SERVER_PORT adds it. */
	is_int(auth_origin_ok("", "http://127.0.0.1:18080", NULL, 0,
	    "127.0.0.1", "18080"), 1, "origin: port from SERVER_PORT");
	is_int(auth_origin_ok("", "http://127.0.0.1:18081", NULL, 0,
	    "127.0.0.1", "18080"), 0, "origin: another port than SERVER_PORT");
	is_int(auth_origin_ok("", "https://clinic.example", NULL, 1,
	    "clinic.example", "443"), 1, "origin: SERVER_PORT 443 is https's default");
	is_int(auth_origin_ok("", "http://clinic.example:8080", NULL, 0,
	    "clinic.example:8080", "80"), 1, "origin: Host's own port wins");
	/* Referer only without Origin. */
	is_int(auth_origin_ok("", NULL, "https://clinic.example/images/?case=1",
	    1, "clinic.example", NULL), 1, "referer: own origin with a path");
	is_int(auth_origin_ok("", NULL, "https://evil.example/clinic.example",
	    1, "clinic.example", NULL), 0, "referer: another site refused");
	is_int(auth_origin_ok("", "https://evil.example",
	    "https://clinic.example/", 1, "clinic.example", NULL), 0,
	    "referer: not consulted when Origin is there");
	/* A list. */
	is_int(auth_origin_ok("https://a.example, https://app.clinic.example:8443",
	    "https://app.clinic.example:8443", NULL, 1, "api.clinic.example", NULL), 1,
	    "allowed: second entry of a list");
	is_int(auth_origin_ok("https://a.example  http://[::1]:8080",
	    "http://[::1]:8080", NULL, 1, "api.clinic.example", NULL), 1,
	    "allowed: IPv6 literal, blank separated");
	is_int(auth_origin_ok("https://a.example", "https://api.clinic.example",
	    NULL, 1, "api.clinic.example", NULL), 0,
	    "allowed: a list replaces the request's own origin");
	is_int(auth_origins_valid("https://a.example, http://b:8080", NULL, NULL), 1,
	    "allowed: valid list");
	is_int(auth_origins_valid("https://a.example,ftp://b", &bad, &badlen), 0,
	    "allowed: ftp entry refused");
	is_int((int)badlen, 7, "allowed: the bad entry is named");
	is_int(auth_origins_valid("https://a.example/path", NULL, NULL), 0,
	    "allowed: entry with a path refused");
	is_int(auth_is_bearer("Bearer abc"), 1, "bearer: Bearer scheme");
	is_int(auth_is_bearer("Basic abc"), 0, "bearer: Basic is not");
	is_int(auth_is_bearer(NULL), 0, "bearer: no header");
}

int
main(void)
{
	if (mkdtemp(tmpdir) == NULL) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	test_alg_parse();
	test_config();
	test_hs256();
	test_shape();
	test_pubkey();
	test_headers();
	test_origin();
	cleanup();
	return done_testing();
}
