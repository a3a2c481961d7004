/* fuzz_query.c — libFuzzer harness for http_parse_query(), the decoder of
 * every query string (REQUEST_URI after '?', straight from the client).
 *
 * Build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I src \
 *       tests/fuzz/fuzz_query.c src/http.c src/arena.c src/common.c src/validate.c \
 *       $(pkg-config --cflags --libs json-c) -lfcgi -o fuzz_query
 *   ./fuzz_query -max_total_time=60 tests/fuzz/corpus/query
 * (or `make fuzz`).
 *
 * Contract checked for every input: the result is 0 or -1; at most
 * HTTP_MAX_PARAMS pairs; every name and value is a NUL-terminated string no
 * longer than the input, without an encoded NUL; a query over HTTP_QUERY_MAX
 * bytes is refused. Round trip: when a query is accepted, its pairs encoded
 * again (%XX for every byte but unreserved ones) parse to the same pairs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "common.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct arena *fz_arena;

/* Appends s %-encoded to out (room for 3 * strlen(s) + 1 assumed). */
static size_t
fz_encode(char *out, const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.') {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hexd[*p >> 4];
			out[o++] = hexd[*p & 15];
		}
	}
	out[o] = '\0';
	return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_param p1[HTTP_MAX_PARAMS], p2[HTTP_MAX_PARAMS];
	char *q, *enc = NULL;
	int n1 = -1, n2 = -1, r;
	size_t o = 0;

	if (size > 2 * HTTP_QUERY_MAX)
		return 0;
	if (fz_arena == NULL && (fz_arena = arena_new()) == NULL)
		abort();
	q = malloc(size + 1);
	if (q == NULL)
		return 0;
	memcpy(q, data, size);
	q[size] = '\0';
	r = http_parse_query(fz_arena, q, p1, HTTP_MAX_PARAMS, &n1);
	if ((r != 0 && r != PI_ERR_INVALID) || n1 < 0 || n1 > HTTP_MAX_PARAMS)
		abort();
	if (strlen(q) > HTTP_QUERY_MAX && r == 0)
		abort();
	for (int i = 0; i < n1; i++) {
		if (p1[i].name == NULL || p1[i].value == NULL ||
		    strlen(p1[i].name) > size || strlen(p1[i].value) > size)
			abort();
	}
	if (r == 0) {
		enc = malloc(3 * size + 2 * HTTP_MAX_PARAMS + 1);
		if (enc == NULL)
			goto out;
		for (int i = 0; i < n1; i++) {
			if (i > 0)
				enc[o++] = '&';
			o += fz_encode(enc + o, p1[i].name);
			enc[o++] = '=';
			o += fz_encode(enc + o, p1[i].value);
		}
		enc[o] = '\0';
		/* An empty name with an empty value encodes as "=", which is
		 * a pair again; the encoding may also outgrow the limit. */
		if (strlen(enc) <= HTTP_QUERY_MAX) {
			if (http_parse_query(fz_arena, enc, p2, HTTP_MAX_PARAMS,
			    &n2) != 0 || n2 != n1)
				abort();
			for (int i = 0; i < n1; i++)
				if (strcmp(p1[i].name, p2[i].name) != 0 ||
				    strcmp(p1[i].value, p2[i].value) != 0)
					abort();
		}
	}
out:
	free(enc);
	free(q);
	arena_reset(fz_arena);
	return 0;
}
