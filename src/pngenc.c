/* pngenc.c — 8-bit PNG copies through libpng's own API.
 *
 * Why not ImageMagick's PNG writer (coders/png.c, 6.9.11): before writing
 * anything it looks for a palette by a linear search of up to 256 entries
 * for every pixel (its BUILD_PALETTE loop), and only an image of more than
 * 256 colours stops it early. A grey image never gets there, so the whole
 * image is searched: a 1024x496 OCT B-scan's upload spent about 70 of its
 * 100 ms of CPU in that loop, where libvips's whole upload takes 35 ms.
 * None of its options skips the search but colour type 6 (RGBA, a third
 * bigger); tried: png:color-type 0 with png:bit-depth 8 (kept then: 104 ->
 * 75 ms), png24, png8, png:preserve-colormap, Grayscale and Palette
 * types, zlib levels and filters. So imaging.c exports the wand's 8-bit
 * pixels (MagickExportImagePixels, ImageMagick's own rounding from Q16)
 * and this file writes them, the way ImageMagick's writer would with the
 * options imaging.c gave it: colour type named from the pixels (grey,
 * grey + alpha, RGB, RGBA), depth 8, not interlaced, zlib level 1. An
 * image with a colormap is still written by ImageMagick (it may keep its
 * palette, and it is never a camera's).
 *
 * Chunks: IHDR, the ICC profile as iCCP, or without one the image's gamma
 * as gAMA (what ImageMagick wrote), IDAT, IEND. Nothing else: no text, no
 * time, no EXIF, no background colour (metadata is stripped from every
 * derived copy).
 *
 * Filter: "up" for every row, at zlib level 1. Measured on the camera
 * set's PNGs (upload CPU against the libvips peer, imgbench, 5-7 rounds,
 * busy machine; OCT 1024x496 grey / export 2000x2000 RGB display copy
 * size): libpng's adaptive choice per row (ImageMagick's setting) 0.85-0.89
 * / 0.85-0.86, 407 KB / 3.60 MB; paeth 0.83-0.87 / 0.74-0.83, the same
 * sizes; up 0.78-0.81 / 0.75-0.77, 419 KB / 3.77 MB; sub 0.78 / 0.74,
 * 4.06 MB; none 0.80 / 0.94, 9.09 MB. "up" costs 3-5 % in size for the
 * cheapest write. zlib's run-length strategy (Z_RLE: matches at distance
 * one only, which is what filtered rows offer) instead of its default
 * hash chains: OCT upload CPU 31 -> 22 ms and 419 -> 408 KB, export
 * 465 -> 453 ms and 3.77 -> 3.26 MB (imgbench, 2 x 15 and 3 rounds).
 *
 * Errors: libpng reports through a longjmp to the one cleanup path here;
 * its warnings (an ICC profile it finds odd, say) are logged, and the
 * profile is then dropped by libpng as it would be on reading.
 */
#include "pngenc.h"

#include "common.h"
#include "log.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <zlib.h>

#define PE_ZLIB_LEVEL 1

static void
pe_error(png_structp png, png_const_charp msg)
{
	log_warn("pngenc: libpng: %s", msg != NULL ? msg : "(no message)");
	png_longjmp(png, 1);
}

static void
pe_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	log_debug("pngenc: libpng warning: %s", msg != NULL ? msg : "");
}

int
pe_write(const char *path, const struct pe_image *img)
{
	static const int types[] = { 0, PNG_COLOR_TYPE_GRAY,
	    PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
	    PNG_COLOR_TYPE_RGB_ALPHA };
	png_structp png = NULL;
	png_infop info = NULL;
	FILE *volatile f = NULL;
	png_bytep *volatile rows = NULL;
	volatile int err = PI_ERR_IO;
	size_t stride;

	if (path == NULL || img == NULL || img->pixels == NULL ||
	    img->width == 0 || img->height == 0 || img->channels < 1 ||
	    img->channels > 4 || img->width > PNG_UINT_31_MAX ||
	    img->height > PNG_UINT_31_MAX)
		return PI_ERR_INTERNAL;
	stride = (size_t)img->width * img->channels;
	if ((rows = malloc(sizeof(*rows) * img->height)) == NULL)
		return PI_ERR_NOMEM;
	for (uint32_t y = 0; y < img->height; y++)
		rows[y] = (png_bytep)(uintptr_t)(img->pixels + (size_t)y * stride);
	if ((f = fopen(path, "wb")) == NULL) {
		log_error("pngenc: %s: %s", path, strerror(errno));
		goto out;
	}
	png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, pe_error,
	    pe_warning);
	if (png == NULL || (info = png_create_info_struct(png)) == NULL) {
		err = PI_ERR_NOMEM;
		goto out;
	}
	if (setjmp(png_jmpbuf(png))) {
		err = PI_ERR_IO;
		goto out;
	}
	png_init_io(png, f);
	/* An ICC profile libpng finds odd is a warning, as on reading. */
	png_set_benign_errors(png, 1);
	png_set_compression_level(png, PE_ZLIB_LEVEL);
	png_set_compression_strategy(png, Z_RLE);
	png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_UP);
	png_set_IHDR(png, info, img->width, img->height, 8,
	    types[img->channels], PNG_INTERLACE_NONE,
	    PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (img->icc != NULL && img->icc_len > 0 &&
	    img->icc_len <= PNG_UINT_31_MAX)
		png_set_iCCP(png, info, "icc", PNG_COMPRESSION_TYPE_BASE,
		    img->icc, (png_uint_32)img->icc_len);
	else if (img->gamma > 0.0)
		png_set_gAMA(png, info, img->gamma);
	png_set_rows(png, info, (png_bytepp)rows);
	png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
	err = 0;
out:
	if (png != NULL)
		png_destroy_write_struct(&png, info != NULL ? &info : NULL);
	if (f != NULL && fclose(f) != 0 && err == 0) {
		log_error("pngenc: %s: %s", path, strerror(errno));
		err = PI_ERR_IO;
	}
	free(rows);
	return err;
}
