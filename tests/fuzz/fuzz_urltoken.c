/* fuzz_urltoken.c — libFuzzer harness for the upload-token parser.
 *
 * The upload token arrives in a query string from anyone on the network, so
 * urltoken_upload_verify() parses untrusted bytes. Each input is used twice:
 *
 * 1. As a token, verbatim. Besides memory safety (ASan, UBSan) the harness
 *    checks the contract: the result is one of the three enum values, and a
 *    token that is not refused as BAD is byte for byte the one
 *    urltoken_upload_token() issues for its expiry — the parser accepts one
 *    canonical form only (no sign, leading zero, trailing byte, wrap-around).
 * 2. As the recipe for a genuine token: an expiry from the first 8 bytes, a
 *    position and a byte from the next two. The genuine token must verify
 *    (VALID or EXPIRED as the clock says); with that one byte changed it
 *    must be refused.
 * 3. As the query of a signed download URL (GET /:id/file?variant&expires
 *    &sig): split at the first two '\n' into a variant and a signature,
 *    with an expiry from the first bytes. urltoken_verify() must refuse it
 *    unless the signature is byte for byte the one urltoken_sign() makes
 *    for that variant and expiry; the signature of the upload token for the
 *    same id and expiry must never pass as a download signature, nor a
 *    download signature for another id.
 *
 * Build and run (clang with libFuzzer):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *       tests/fuzz/fuzz_urltoken.c src/urltoken.c -lcrypto -o fuzz_urltoken
 *   ./fuzz_urltoken -max_total_time=60 corpus/
 * Every crasher becomes a case in tests/unit/test_urltoken.c.
 */
#include "urltoken.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW INT64_C(1700000000)

static const unsigned char fuzz_key[] = "polaimg-fuzz-key-0123456789abcdef";
static const char fuzz_id[] = "7d444840-9dc0-11d1-b245-5ffdce74fad2";

/* The expiry the token claims, parsed with no regard to strictness; only
 * used to regenerate the canonical token for a token that was accepted. */
static int64_t
loose_expiry(const char *tok)
{
	int64_t v = 0;

	for (; *tok >= '0' && *tok <= '9'; tok++) {
		int d = *tok - '0';

		if (v > (INT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	return v;
}

static void
check_verbatim(const uint8_t *data, size_t size)
{
	char canon[URLTOKEN_UPLOAD_MAX + 1];
	char *tok;
	int r;

	tok = malloc(size + 1);
	if (tok == NULL)
		return;
	memcpy(tok, data, size);
	tok[size] = '\0';
	r = urltoken_upload_verify(fuzz_key, sizeof(fuzz_key) - 1, fuzz_id, tok,
	    FUZZ_NOW);
	if (r != URLTOKEN_VALID && r != URLTOKEN_BAD && r != URLTOKEN_EXPIRED)
		abort();
	if (r != URLTOKEN_BAD) {
		int64_t e = loose_expiry(tok);

		if (e < 0 || urltoken_upload_token(fuzz_key,
		    sizeof(fuzz_key) - 1, fuzz_id, e, canon, sizeof(canon)) != 0 ||
		    strcmp(canon, tok) != 0)
			abort();
		if ((r == URLTOKEN_VALID) != (FUZZ_NOW <= e))
			abort();
	}
	free(tok);
}

static void
check_genuine(const uint8_t *data, size_t size)
{
	char tok[URLTOKEN_UPLOAD_MAX + 1];
	uint64_t u = 0;
	int64_t e;
	size_t len, pos;
	char c;
	int r;

	if (size < 10)
		return;
	for (int i = 0; i < 8; i++)
		u = u << 8 | data[i];
	e = (int64_t)(u >> 1);                 /* 0 .. INT64_MAX */
	if (urltoken_upload_token(fuzz_key, sizeof(fuzz_key) - 1, fuzz_id, e,
	    tok, sizeof(tok)) != 0)
		abort();
	r = urltoken_upload_verify(fuzz_key, sizeof(fuzz_key) - 1, fuzz_id,
	    tok, FUZZ_NOW);
	if (r != (FUZZ_NOW <= e ? URLTOKEN_VALID : URLTOKEN_EXPIRED))
		abort();
	len = strlen(tok);
	pos = data[8] % len;
	c = (char)data[9];
	if (tok[pos] == c)
		return;
	tok[pos] = c;
	if (urltoken_upload_verify(fuzz_key, sizeof(fuzz_key) - 1, fuzz_id,
	    tok, FUZZ_NOW) != URLTOKEN_BAD)
		abort();
}

static void
check_download(const uint8_t *data, size_t size)
{
	static const char other_id[] = "7d444840-9dc0-11d1-b245-5ffdce74fad3";
	char *buf, *variant, *sig, *nl, good[URLTOKEN_SIG_LEN + 1];
	char up[URLTOKEN_UPLOAD_MAX + 1];
	uint64_t u = 0;
	int64_t e;
	int r, signable;

	if (size < 8)
		return;
	for (int i = 0; i < 8; i++)
		u = u << 8 | data[i];
	e = (int64_t)(u >> 1);
	buf = malloc(size - 8 + 1);
	if (buf == NULL)
		return;
	memcpy(buf, data + 8, size - 8);
	buf[size - 8] = '\0';
	variant = buf;
	nl = strchr(buf, '\n');
	sig = nl != NULL ? nl + 1 : buf + strlen(buf);
	if (nl != NULL)
		*nl = '\0';
	r = urltoken_verify(fuzz_key, sizeof(fuzz_key) - 1, URLTOKEN_DOWNLOAD,
	    fuzz_id, variant, e, sig, FUZZ_NOW);
	if (r != URLTOKEN_VALID && r != URLTOKEN_BAD && r != URLTOKEN_EXPIRED)
		abort();
	signable = urltoken_sign(fuzz_key, sizeof(fuzz_key) - 1,
	    URLTOKEN_DOWNLOAD, fuzz_id, variant, e, good, sizeof(good)) == 0;
	if (r != URLTOKEN_BAD && (!signable || strcmp(sig, good) != 0))
		abort();
	if (signable) {
		/* The genuine signature verifies, for this id only. */
		r = urltoken_verify(fuzz_key, sizeof(fuzz_key) - 1,
		    URLTOKEN_DOWNLOAD, fuzz_id, variant, e, good, FUZZ_NOW);
		if (r != (FUZZ_NOW <= e ? URLTOKEN_VALID : URLTOKEN_EXPIRED))
			abort();
		if (urltoken_verify(fuzz_key, sizeof(fuzz_key) - 1,
		    URLTOKEN_DOWNLOAD, other_id, variant, e, good,
		    FUZZ_NOW) != URLTOKEN_BAD)
			abort();
	}
	/* An upload token's signature is no download signature. */
	if (urltoken_upload_token(fuzz_key, sizeof(fuzz_key) - 1, fuzz_id, e,
	    up, sizeof(up)) == 0) {
		const char *usig = strchr(up, '.');

		if (usig == NULL || urltoken_verify(fuzz_key,
		    sizeof(fuzz_key) - 1, URLTOKEN_DOWNLOAD, fuzz_id,
		    "original", e, usig + 1, FUZZ_NOW) != URLTOKEN_BAD)
			abort();
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	check_verbatim(data, size);
	check_genuine(data, size);
	check_download(data, size);
	return 0;
}
