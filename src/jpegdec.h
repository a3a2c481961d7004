/* jpegdec.h — JPEG decoding through libjpeg's own API, at any k/8 scale.
 *
 * ImageMagick only asks libjpeg for 1/n of the size; libjpeg-turbo decodes
 * at any k/8 (k = 1..8). imaging.c decodes camera JPEGs here at the
 * smallest k/8 that still covers the display size and hands the 8-bit
 * pixels to MagickWand for the last reduction and the encode.
 */
#ifndef POLAIMG_JPEGDEC_H
#define POLAIMG_JPEGDEC_H

#include <stddef.h>
#include <stdint.h>

struct jd_limits {
	uint64_t memory_bytes;    /* libjpeg's max_memory_to_use; 0: its own */
	unsigned time_seconds;    /* deadline for the whole decode; 0: none */
	unsigned max_scans;       /* progressive scans allowed; 0: no limit */
	int orientation;          /* EXIF orientation 2..8 to turn the output
	                           * upright; 0 or 1: as stored */
};

struct jd_image {
	unsigned char *pixels;    /* width*height*channels bytes, rows top
	                           * down; bigmem.c's, free with jd_free() */
	uint32_t width, height;   /* as decoded (scaled), turned upright for
	                           * lim->orientation (5..8 swap them) */
	unsigned channels;        /* 3 (RGB) or 1 (grey) */
	unsigned scale_num;       /* the k of k/8 used */
	unsigned char *icc;       /* ICC profile from APP2, or NULL;
	                           * malloc'd, freed by jd_free() */
	size_t icc_len;
	const char *fallback;     /* set (a static reason) when the file is
	                           * a JPEG this decoder leaves to ImageMagick:
	                           * then pixels is NULL and 0 was returned */
};

/* The k (1..8) of the smallest k/8 scale at which a w x h JPEG decodes to
 * at least tw x th (libjpeg rounds the scaled size up); 8 when none
 * smaller does. Pure. */
unsigned jd_scale_for(uint64_t w, uint64_t h, uint64_t tw, uint64_t th);

/* Decodes the JPEG in buf (len bytes, e.g. a read-only mapping of the file)
 * at the smallest k/8 scale that covers tw x th, to 8-bit RGB (grey for a
 * one-component JPEG), keeping its ICC profile. Every libjpeg warning
 * (truncated data, corrupt entropy-coded data, extraneous bytes) is a
 * refusal, as is running past lim. CMYK and YCCK, arithmetic coding, other
 * than 8-bit samples and component counts other than 1 and 3 are not
 * decoded: 0 with out->fallback set. Fills *out (zeroed first; the caller
 * owns it and calls jd_free() in every case). Returns 0,
 * PI_ERR_UNPROCESSABLE (corrupt, truncated, over the limits; logged) or
 * PI_ERR_NOMEM / PI_ERR_INTERNAL. */
int jd_decode(const unsigned char *buf, size_t len, uint64_t tw, uint64_t th,
    const struct jd_limits *lim, struct jd_image *out);

/*
 * Reduces img to tw x th (each no larger than img's) by an area average of
 * its 8-bit pixels, into a new buffer that replaces the old one. Returns
 * 0, PI_ERR_INTERNAL (bad sizes) or PI_ERR_NOMEM (img unchanged).
 */
int jd_shrink(struct jd_image *img, uint32_t tw, uint32_t th);

/* Frees what jd_decode() put in img and zeroes it; NULL is fine. */
void jd_free(struct jd_image *img);

#endif
