/* fuzz_etag.c — libFuzzer harness for http_etag_match(), the
 * If-None-Match header parser.
 *
 * Build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I src \
 *       tests/fuzz/fuzz_etag.c src/http.c src/arena.c src/common.c src/validate.c \
 *       $(pkg-config --cflags --libs json-c) -lfcgi -o fuzz_etag
 *   ./fuzz_etag -max_total_time=60 tests/fuzz/corpus/etag
 * (or `make fuzz`).
 *
 * Input: the header value. It is matched against a fixed strong etag (the
 * quoted SHA-256 form polaimg sends) and against an etag taken from the
 * input itself. Contract: a match needs the header to contain the quoted
 * etag or a '*'; the header equal to the etag, to "W/" + etag, or to a list
 * that ends with ", " + etag always matches; NULL never matches.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fz_etag[] =
    "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"";

static void
fz_one(const char *inm, const char *etag)
{
	int r = http_etag_match(inm, etag);

	if (r != 0 && r != 1)
		abort();
	if (r == 1 && strstr(inm, etag) == NULL && strchr(inm, '*') == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *inm, *buf;
	size_t n;

	if (size > 4096)
		return 0;
	inm = malloc(size + 1);
	buf = malloc(2 * size + sizeof(fz_etag) + 16);
	if (inm == NULL || buf == NULL)
		goto out;
	memcpy(inm, data, size);
	inm[size] = '\0';
	fz_one(inm, fz_etag);
	/* An etag made of the input: quoted, as polaimg's are. */
	n = strcspn(inm, "\"");
	if (n > 0 && n < 100) {
		char etag[104];

		(void)snprintf(etag, sizeof(etag), "\"%.*s\"", (int)n, inm);
		fz_one(inm, etag);
		if (http_etag_match(etag, etag) != 1)
			abort();
		(void)snprintf(buf, 2 * size + sizeof(fz_etag) + 16, "W/%s", etag);
		if (http_etag_match(buf, etag) != 1)
			abort();
		(void)snprintf(buf, 2 * size + sizeof(fz_etag) + 16, "%s, %s",
		    fz_etag, etag);
		if (http_etag_match(buf, etag) != 1)
			abort();
	}
	if (http_etag_match(NULL, fz_etag) != 0)
		abort();
out:
	free(inm);
	free(buf);
	return 0;
}
