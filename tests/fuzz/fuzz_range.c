/* fuzz_range.c — libFuzzer harness for http_parse_range(), the Range
 * header parser (used when polaimg streams bytes itself, offload = none).
 *
 * Build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I src \
 *       tests/fuzz/fuzz_range.c src/http.c src/arena.c src/common.c src/validate.c \
 *       $(pkg-config --cflags --libs json-c) -lfcgi -o fuzz_range
 *   ./fuzz_range -max_total_time=60 tests/fuzz/corpus/range
 * (or `make fuzz`, which builds and runs every harness).
 *
 * Input: 8 bytes of object size (any value from 0 to 2^62), then the header
 * value. Contract checked for every input: the result is -1, 0 or 1; on 1
 * the range lies inside the object (0 <= start <= end < size); -1 (416) only
 * for a well-formed request no byte of which exists, never for an object
 * that has bytes at the requested start; the answer does not depend on
 * anything after a NUL. Violations abort; crashers become corpus inputs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	long long start = -7, end = -7, size_obj;
	uint64_t u = 0;
	char *h;
	int r;

	if (size < 8 || size > 4096)
		return 0;
	for (int i = 0; i < 8; i++)
		u = u << 8 | data[i];
	/* Small sizes are the interesting ones: favour them. */
	size_obj = (long long)(data[0] & 0x80 ? u >> 2 : (u & 0xffff));
	h = malloc(size - 8 + 1);
	if (h == NULL)
		return 0;
	memcpy(h, data + 8, size - 8);
	h[size - 8] = '\0';
	r = http_parse_range(h, size_obj, &start, &end);
	if (r == HTTP_RANGE_OK) {
		if (start < 0 || start > end || end >= size_obj)
			abort();
	} else if (r == HTTP_RANGE_NONE || r == HTTP_RANGE_UNSATISFIABLE) {
		if (start != -7 || end != -7)
			abort();    /* outputs are written only for a range */
	} else {
		abort();
	}
	/* Unsatisfiable means: no byte of the object is asked for. A suffix
	 * range (bytes=-N) of a non-empty object is always satisfiable. */
	if (r == HTTP_RANGE_UNSATISFIABLE && size_obj > 0 && strncmp(h, "bytes=", 6) == 0) {
		const char *p = h + 6;

		while (*p == ' ')
			p++;
		if (*p == '-' && p[1] != '0')
			abort();
		if (*p >= '0' && *p <= '9' && strtoll(p, NULL, 10) < size_obj)
			abort();
	}
	if (http_parse_range(NULL, size_obj, &start, &end) != HTTP_RANGE_NONE)
		abort();
	free(h);
	return 0;
}
