/* fuzz_sniff.c — libFuzzer harness for img_sniff(), which decides from an
 * upload's first bytes whether ImageMagick is ever asked to look at it.
 *
 * Build and run (or `make fuzz`):
 *   tests/fuzz/run.sh sniff
 *
 * Input: the bytes, as the first bytes of an upload. Each call gets a heap
 * copy of exactly len bytes, so a read past the end is an ASan report.
 * Contract checked for every input, against the signatures written out
 * here from imaging.h (JPEG FF D8 FF, PNG's 8-byte signature, TIFF "II*\0"
 * or "MM\0*", WebP "RIFF" <4 bytes> "WEBP", and only then DICOM, "DICM"
 * after a 128-byte preamble):
 * - the result is one of enum img_type and equals the oracle's;
 * - IMG_UNKNOWN for fewer than 3 bytes (no signature is shorter), and
 *   WebP only from 12 bytes on;
 * - it depends only on the first 12 bytes (132 for DICOM), and once a
 *   prefix is known every longer prefix gives the same type;
 * - the same answer when asked twice; a known type has a MIME type and an
 *   extension, and img_type_from_mime() maps the MIME type back to it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imaging.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum img_type
oracle(const uint8_t *b, size_t n)
{
	if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
		return IMG_JPEG;
	if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
		return IMG_PNG;
	if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0))
		return IMG_TIFF;
	if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
		return IMG_WEBP;
	if (n >= 132 && memcmp(b + 128, "DICM", 4) == 0)
		return IMG_DICOM;
	return IMG_UNKNOWN;
}

/* img_sniff on a heap copy of exactly n bytes (NULL buffer for n == 0, as
 * an empty upload may have none). */
static enum img_type
sniff(const uint8_t *b, size_t n)
{
	unsigned char *c;
	enum img_type t;

	if (n == 0)
		return img_sniff(NULL, 0);
	c = malloc(n);
	if (c == NULL)
		abort();
	memcpy(c, b, n);
	t = img_sniff(c, n);
	free(c);
	return t;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum img_type t, first = IMG_UNKNOWN;
	size_t lim = size < 136 ? size : 136;

	if (size > 4096)
		return 0;
	t = sniff(data, size);
	if ((int)t < IMG_UNKNOWN || (int)t > IMG_DICOM)
		abort();
	if (t != sniff(data, size) || t != oracle(data, size))
		abort();
	if (size < 3 && t != IMG_UNKNOWN)
		abort();
	if (t == IMG_WEBP && size < 12)
		abort();
	if (size > 12 && t != IMG_DICOM && t != sniff(data, 12))
		abort();    /* looked past the first 12 bytes */
	if (size > 132 && t != sniff(data, 132))
		abort();    /* looked past the first 132 bytes */
	if (t == IMG_DICOM && size < 132)
		abort();
	for (size_t k = 0; k <= lim; k++) {
		enum img_type tk = sniff(data, k);

		if (first != IMG_UNKNOWN && tk != first)
			abort();    /* a longer prefix changed a known type */
		if (first == IMG_UNKNOWN)
			first = tk;
	}
	if (first != t)
		abort();
	if (t != IMG_UNKNOWN) {
		const char *mime = img_mime(t);

		if (mime == NULL || img_ext(t) == NULL ||
		    img_type_from_mime(mime) != t)
			abort();
	} else if (img_mime(t) != NULL || img_ext(t) != NULL) {
		abort();
	}
	return 0;
}
