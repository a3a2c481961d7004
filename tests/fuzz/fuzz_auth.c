/* fuzz_auth.c — libFuzzer harness for auth_verify() and
 * auth_token_from_headers().
 *
 * Build and run (from the source tree):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -fno-sanitize-recover=undefined -Isrc tests/fuzz/fuzz_auth.c \
 *       src/auth.c src/common.c $(pkg-config --cflags --libs libjwt libcrypto) \
 *       -o fuzz_auth
 *   ./fuzz_auth -max_total_time=60 corpus/
 *
 * The first input byte picks what the rest is:
 *   0  a token, verified under an HS256 and an ES256 configuration — the
 *      shape check and libjwt's parsers on client bytes;
 *   1  a JWT payload, signed here with the HS256 secret so that it reaches
 *      the claim checks (user id, role, exp, nbf) behind the signature;
 *   2  the text of an exp claim (with an 8-byte clock and a leeway byte
 *      first), signed likewise — the NumericDate parser and time arithmetic;
 *   3  an Authorization and a Cookie header separated by '\n' (a byte before
 *      them sets the buffer size) — the header parsers.
 * Every crasher found becomes a case in tests/unit/test_auth.c.
 */
#include "auth.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#define FUZZ_NOW INT64_C(1900000000)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char secret[] = "fuzzing secret, exactly 32 bytes";
static struct auth_config hs_cfg, es_cfg;

/* An ES256 configuration from a key made here, through a temporary file as
 * auth_config_load() wants; the file is removed at once. */
static void
fuzz_load_es(void)
{
	char dir[] = "/tmp/polaimg-fuzz-auth-XXXXXX", path[64];
	EVP_PKEY *k;
	FILE *f;
	int n;

	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (k == NULL || mkdtemp(dir) == NULL)
		abort();
	n = snprintf(path, sizeof(path), "%s/ec.pem", dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		abort();
	f = fopen(path, "w");
	if (f == NULL || PEM_write_PUBKEY(f, k) != 1 || fclose(f) != 0)
		abort();
	if (auth_config_load(&es_cfg, AUTH_ES256, NULL, 0, path, 1, NULL) != 0)
		abort();
	unlink(path);
	rmdir(dir);
	EVP_PKEY_free(k);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (auth_config_load(&hs_cfg, AUTH_HS256, secret, strlen(secret), NULL,
	    1, NULL) != 0)
		abort();
	fuzz_load_es();
	return 0;
}

/* base64url without padding of in into out; returns the length written.
 * out must hold 4 * ceil(len / 3) + 1 bytes. */
static size_t
fuzz_b64url(const unsigned char *in, size_t len, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	unsigned v;

	for (size_t i = 0; i < len; i += 3) {
		v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		if (i + 1 < len)
			out[o++] = tab[(v >> 6) & 63];
		if (i + 2 < len)
			out[o++] = tab[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* Signs payload as an HS256 JWT with the harness secret and verifies it. */
static void
fuzz_signed(const unsigned char *payload, size_t len, int64_t now, int leeway)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	struct auth_config cfg = hs_cfg;
	struct auth_claims claims;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	size_t n, cap;
	char *tok;

	if (len > AUTH_TOKEN_MAX)
		return;
	cap = 4 * (sizeof(hdr) + len + EVP_MAX_MD_SIZE) / 3 + 16;
	tok = malloc(cap);
	if (tok == NULL)
		return;
	n = fuzz_b64url((const unsigned char *)hdr, sizeof(hdr) - 1, tok);
	tok[n++] = '.';
	n += fuzz_b64url(payload, len, tok + n);
	if (HMAC(EVP_sha256(), secret, (int)strlen(secret),
	    (const unsigned char *)tok, n, mac, &maclen) == NULL)
		goto out;
	tok[n++] = '.';
	fuzz_b64url(mac, maclen, tok + n);
	cfg.leeway = leeway;
	(void)auth_verify(&cfg, tok, now, &claims);
	cfg.require_exp = 0;
	(void)auth_verify(&cfg, tok, now, &claims);
out:
	free(tok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_claims claims;
	char *s, *nl, buf[AUTH_TOKEN_MAX + 1], pl[512];
	int64_t now = 0;
	int n, leeway;

	if (size < 1)
		return 0;
	/* Every mode wants the rest as a C string. */
	s = malloc(size);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] & 3) {
	case 0:
		(void)auth_verify(&hs_cfg, s, FUZZ_NOW, &claims);
		(void)auth_verify(&es_cfg, s, FUZZ_NOW, &claims);
		break;
	case 1:
		fuzz_signed(data + 1, size - 1, FUZZ_NOW, 0);
		break;
	case 2:
		if (size < 10 || size - 10 > 256)
			break;
		memcpy(&now, data + 1, sizeof(now));
		leeway = data[9] == 255 ? INT_MAX : data[9] - 128;
		n = snprintf(pl, sizeof(pl), "{\"sub\":\"0f8fad5b-d9cb-469f-"
		    "a165-70867728950e\",\"nbf\":%s,\"exp\":%s}", s + 9, s + 9);
		if (n < 0 || (size_t)n >= sizeof(pl))
			break;
		fuzz_signed((const unsigned char *)pl, (size_t)n, now, leeway);
		break;
	case 3:
		if (size < 2)
			break;
		nl = strchr(s + 1, '\n');
		if (nl != NULL)
			*nl = '\0';
		/* Buffer sizes 0..255, or the full one. */
		(void)auth_token_from_headers(s + 1, nl != NULL ? nl + 1 : NULL,
		    buf, s[0] == 0 ? sizeof(buf) : (unsigned char)s[0]);
		(void)auth_token_from_headers(NULL, s + 1, buf, sizeof(buf));
		break;
	}
	free(s);
	return 0;
}
