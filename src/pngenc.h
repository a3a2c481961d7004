/* pngenc.h — 8-bit PNG copies through libpng's own API. */
#ifndef POLAIMG_PNGENC_H
#define POLAIMG_PNGENC_H

#include <stddef.h>
#include <stdint.h>

struct pe_image {
	const unsigned char *pixels;  /* rows top down, channels bytes a pixel */
	uint32_t width, height;
	unsigned channels;            /* 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA */
	const unsigned char *icc;     /* ICC profile to keep as iCCP, or NULL */
	size_t icc_len;
	double gamma;                 /* gAMA without an ICC profile; 0: none */
};

/*
 * Writes img to path (created or truncated, mode 0644 less the umask) as
 * an 8-bit, non-interlaced PNG of colour type 0, 4, 2 or 6, zlib level 1
 * (run-length strategy), filter "up",
 * with no chunk but IHDR, iCCP or gAMA, IDAT and IEND. Returns 0,
 * PI_ERR_INTERNAL for a bad argument, PI_ERR_NOMEM, or PI_ERR_IO (the
 * file may then be partly written: the caller owns the path).
 */
int pe_write(const char *path, const struct pe_image *img);

#endif
