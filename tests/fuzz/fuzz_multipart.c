/* fuzz_multipart.c — libFuzzer harness for the multipart parser.
 *
 * Build and run (clang):
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *       tests/fuzz/fuzz_multipart.c src/multipart.c -o fuzz_multipart
 *   ./fuzz_multipart -max_total_time=60 tests/fuzz/corpus/multipart
 *
 * Input: the first byte seeds the chunk sizes, the rest is the body, parsed
 * with the boundary "AaB03x". Besides memory errors the harness checks what
 * must hold for any input: the body parsed whole and the body parsed in
 * random chunks give the same status and the same event stream (compared by
 * hash); data only arrives inside a part and never with length 0; begins
 * and ends pair up; a part has a non-empty NUL-terminated name. The input is
 * also tried as a Content-Type header for mp_boundary(). Any violation
 * aborts, so libFuzzer keeps the input as a crasher; every crasher becomes a
 * case in tests/unit/test_multipart.c.
 */
#include "multipart.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_BOUNDARY "AaB03x"

struct fz {
	uint64_t hash;
	int in_part;
	int parts;
};

static void
fz_mix(struct fz *f, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		f->hash = (f->hash ^ b[i]) * 0x100000001b3ULL;
}

static void
fz_check_str(const char *s)
{
	if (memchr(s, '\0', MP_MAX_NAME) == NULL)
		abort();
}

static int
fz_begin(void *ud, const struct mp_part *part)
{
	struct fz *f = ud;

	if (f->in_part || part->name[0] == '\0')
		abort();
	fz_check_str(part->name);
	fz_check_str(part->filename);
	fz_check_str(part->content_type);
	if (!part->has_filename && part->filename[0] != '\0')
		abort();
	if (++f->parts > MP_MAX_PARTS)
		abort();
	f->in_part = 1;
	fz_mix(f, "B", 1);
	fz_mix(f, part->name, strlen(part->name) + 1);
	fz_mix(f, part->filename, strlen(part->filename) + 1);
	fz_mix(f, part->content_type, strlen(part->content_type) + 1);
	fz_mix(f, &part->has_filename, sizeof(part->has_filename));
	return 0;
}

static int
fz_data(void *ud, const char *data, size_t len)
{
	struct fz *f = ud;

	if (!f->in_part || len == 0)
		abort();
	fz_mix(f, data, len);
	return 0;
}

static int
fz_end(void *ud)
{
	struct fz *f = ud;

	if (!f->in_part)
		abort();
	f->in_part = 0;
	fz_mix(f, "E", 1);
	return 0;
}

static const struct mp_callbacks fz_cbs = { fz_begin, fz_data, fz_end };

/* Parses body in chunks drawn from seed (0: all at once). */
static int
fz_parse(const char *body, size_t len, uint32_t seed, struct fz *f)
{
	struct mp_parser *p = mp_new(FUZZ_BOUNDARY, &fz_cbs, f);
	size_t at = 0;
	int rc = MP_OK;

	if (p == NULL)
		abort();
	while (at < len) {
		size_t n = len - at;

		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			/* Mostly tiny chunks, sometimes larger ones. */
			n = (seed >> 16) & 0x80 ? 1 + ((seed >> 8) & 63) :
			    1 + ((seed >> 20) & 3);
			if (n > len - at)
				n = len - at;
		}
		rc = mp_feed(p, body + at, n);
		at += n;
		if (rc != MP_OK)
			break;
	}
	if (rc == MP_OK)
		rc = mp_finish(p);
	if (mp_finish(p) != rc || mp_feed(p, "x", 1) != (rc == MP_OK ?
	    MP_OK : rc))
		abort();
	if (rc == MP_OK && f->in_part)
		abort();
	mp_free(p);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz whole = { 0 }, split = { 0 };
	char out[MP_MAX_BOUNDARY + 1];
	char *str;
	int rc1, rc2;

	if (size == 0)
		return 0;
	rc1 = fz_parse((const char *)data + 1, size - 1, 0, &whole);
	rc2 = fz_parse((const char *)data + 1, size - 1, 1u + data[0], &split);
	if (rc1 != rc2 || whole.hash != split.hash ||
	    whole.parts != split.parts)
		abort();

	/* The same bytes as a Content-Type header value. */
	str = malloc(size + 1);
	if (str == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	if (mp_boundary(str, out, sizeof(out)) == MP_OK) {
		size_t n = strlen(out);

		if (n == 0 || n > MP_MAX_BOUNDARY || out[n - 1] == ' ' ||
		    strpbrk(out, "\r\n\"\\\t") != NULL)
			abort();
		/* A boundary mp_boundary() accepts, mp_new() accepts. */
		struct mp_parser *p = mp_new(out, &fz_cbs, &whole);

		if (p == NULL)
			abort();
		mp_free(p);
	}
	free(str);
	return 0;
}
