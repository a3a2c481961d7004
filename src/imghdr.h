/* imghdr.h — polaimg's own bounded reader of image headers.
 *
 * Reads the stored width and height of a JPEG, PNG, WebP or TIFF from its
 * bytes, refuses width*height over a limit, and bounds what a decoder would
 * inflate from the file's compressed metadata, before ImageMagick sees the
 * file. Pure: works on a buffer the caller gives (the whole file, e.g. a
 * read-only mapping); no I/O, no global state, no allocation but zlib's
 * inflate state (about 40 KB, freed before returning) for a PNG with
 * compressed metadata.
 */
#ifndef POLAIMG_IMGHDR_H
#define POLAIMG_IMGHDR_H

#include <stddef.h>
#include <stdint.h>

#include "imaging.h"

/* JPEG: the start-of-frame marker must begin within this many bytes. The
 * walk jumps from segment to segment by their lengths, so the cost is the
 * number of segments, not bytes; the bound leaves room for the largest
 * metadata real cameras put before the frame (extended XMP with a depth
 * map or the original image of a portrait shot, several MB; an ICC profile
 * split over APP2 segments). */
#define IMGHDR_JPEG_SOF_WITHIN (16u << 20)
/* PNG: at most this many bytes inflated from one zTXt or compressed iTXt
 * chunk (libpng's own default cap on a chunk is 8 MB; real text such as
 * a hex-encoded EXIF or XMP packet is a few KB), ... */
#define IMGHDR_PNG_TEXT_MAX (1u << 20)
/* ... from one iCCP chunk (real ICC profiles: 0.5 KB for a matrix profile,
 * a few hundred KB for printer profiles with large tables; the ICC format
 * itself has no limit), ... */
#define IMGHDR_PNG_ICCP_MAX (4u << 20)
/* ... and from all of them together. */
#define IMGHDR_PNG_INFLATE_MAX (8u << 20)

struct imghdr_info {
	uint32_t width, height;   /* stored size, both > 0 on success */
	uint64_t inflated;        /* PNG: bytes its metadata chunks inflate to */
	const char *why;          /* on refusal: a static English reason */
};

/* Reads the header of the file of type t in buf[0..len) (the whole file:
 * PNG chunks and WebP and TIFF structures are checked up to its end) and
 * fills info. Returns 0 when the header is well formed, both sides are
 * non-zero, width*height <= max_pixels and, for PNG, no metadata chunk
 * inflates past the caps above; PI_ERR_UNPROCESSABLE otherwise (info->why
 * says why); PI_ERR_NOMEM if zlib cannot allocate its state;
 * PI_ERR_INTERNAL for a NULL info or an unknown type. Never reads outside
 * buf. */
int imghdr_read(enum img_type t, const unsigned char *buf, size_t len,
    uint64_t max_pixels, struct imghdr_info *info);

/* The same for one format each (imghdr_read dispatches to them). */
int imghdr_jpeg(const unsigned char *buf, size_t len, uint64_t max_pixels,
    struct imghdr_info *info);
int imghdr_png(const unsigned char *buf, size_t len, uint64_t max_pixels,
    struct imghdr_info *info);
int imghdr_webp(const unsigned char *buf, size_t len, uint64_t max_pixels,
    struct imghdr_info *info);
int imghdr_tiff(const unsigned char *buf, size_t len, uint64_t max_pixels,
    struct imghdr_info *info);

#endif
