/* fuzz_imghdr.h — the contract every imghdr harness checks (one harness
 * per format: fuzz_imghdr_jpeg.c, _png, _webp, _tiff include this).
 *
 * Each input is read twice, with the default max_pixels (10^8) and with no
 * limit. Contract checked for every input: the answer is 0 or
 * PI_ERR_UNPROCESSABLE (never anything else for a non-NULL info); on 0
 * both sides are > 0 and width*height is within the limit (computed in 128
 * bits); a refusal carries a reason; an input accepted under 10^8 is
 * accepted with the same size under no limit, and one accepted under no
 * limit with width*height over 10^8 is refused under 10^8; a PNG never
 * inflates past the per-file cap. Reads outside the input (ASan) and
 * undefined behaviour (UBSan) abort; crashers become corpus inputs.
 */
#ifndef POLAIMG_FUZZ_IMGHDR_H
#define POLAIMG_FUZZ_IMGHDR_H

#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "imghdr.h"

#define FUZZ_MP 100000000ULL

typedef int (*fuzz_imghdr_fn)(const unsigned char *, size_t, uint64_t,
    struct imghdr_info *);

static void
fuzz_imghdr_check(fuzz_imghdr_fn fn, const uint8_t *data, size_t size)
{
	struct imghdr_info a, b;
	int ra, rb;

	ra = fn(data, size, FUZZ_MP, &a);
	rb = fn(data, size, UINT64_MAX, &b);
	if ((ra != 0 && ra != PI_ERR_UNPROCESSABLE) ||
	    (rb != 0 && rb != PI_ERR_UNPROCESSABLE))
		abort();
	if (ra == 0 && (a.width == 0 || a.height == 0 ||
	    (unsigned __int128)a.width * a.height > FUZZ_MP))
		abort();
	if (rb == 0 && (b.width == 0 || b.height == 0))
		abort();
	if ((ra != 0 && a.why == NULL) || (rb != 0 && b.why == NULL))
		abort();
	if (ra == 0 && (rb != 0 || a.width != b.width || a.height != b.height))
		abort();
	if (rb == 0 && (uint64_t)b.width * b.height > FUZZ_MP && ra == 0)
		abort();
	if ((ra == 0 && a.inflated > IMGHDR_PNG_INFLATE_MAX) ||
	    (rb == 0 && b.inflated > IMGHDR_PNG_INFLATE_MAX))
		abort();
}

#endif
