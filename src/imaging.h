/* imaging.h — everything polaimg does to pixels, over MagickWand 6.
 *
 * Sniff the real type from magic bytes, ping the header before decoding,
 * refuse oversize images, then one decode (shrink-on-load for JPEG) feeds
 * the display copy, and the thumbnail is made from the display copy.
 * img_init() runs once per worker process, after fork.
 */
#ifndef POLAIMG_IMAGING_H
#define POLAIMG_IMAGING_H

#include <stddef.h>
#include <stdint.h>

enum img_type { IMG_UNKNOWN = 0, IMG_JPEG, IMG_PNG, IMG_TIFF, IMG_WEBP };

/* The type named by the first bytes (at least 12 are needed to tell WebP),
 * IMG_UNKNOWN for anything else (GIF, SVG, PDF, MVG, HTML …). Pure. */
enum img_type img_sniff(const unsigned char *buf, size_t len);
/* "image/jpeg" …; NULL for IMG_UNKNOWN. */
const char *img_mime(enum img_type t);
/* "jpg", "png", "tif", "webp"; NULL for IMG_UNKNOWN. */
const char *img_ext(enum img_type t);
/* The type for a MIME type ("image/jpeg", "image/jpg", "image/png",
 * "image/tiff", "image/webp", case-insensitive), IMG_UNKNOWN otherwise. */
enum img_type img_type_from_mime(const char *mime);

struct img_limits {
	uint64_t max_pixels;      /* refuse width*height above this */
	uint64_t memory_bytes;    /* ImageMagick memory resource */
	uint64_t map_bytes;
	uint64_t disk_bytes;      /* 0: no pixel cache on disk */
	uint64_t max_dimension;   /* width and height resource */
	unsigned time_seconds;    /* ImageMagick time resource */
};

/* Once per worker: MagickWandGenesis, one thread, the resource limits.
 * Returns 0 or PI_ERR_INTERNAL. */
int img_init(const struct img_limits *lim);
void img_shutdown(void);

struct img_info {
	enum img_type type;
	uint64_t width, height;   /* as stored (before orientation) */
	int orientation;          /* EXIF orientation 1..8, 1 if absent */
	int64_t captured_at;      /* EXIF DateTimeOriginal as UTC seconds, or -1 */
};

/* Pings the file at path (type must be its sniffed type; the coder is forced
 * to it so data can never pick another coder). Fills info. Returns 0,
 * PI_ERR_UNPROCESSABLE if the header is unreadable or width*height exceeds
 * max_pixels (checked before any decode). */
int img_probe(const char *path, enum img_type type, uint64_t max_pixels,
    struct img_info *info);

struct img_outputs {
	const char *display_path;  /* where to write the display copy */
	const char *thumb_path;    /* where to write the thumbnail */
	enum img_type display_type;/* set: IMG_PNG for PNG input, else IMG_JPEG */
	enum img_type thumb_type;  /* same rule */
	uint64_t display_width, display_height;
};

/* Decodes path once (jpeg:size hint from the real aspect ratio, never above
 * the image's size), auto-orients, strips metadata but keeps the ICC profile,
 * writes the display copy (long side <= 2048, progressive JPEG q85, or PNG)
 * and from it the thumbnail (fits 400x400, JPEG q82 or PNG). Writes to the
 * given paths (the caller renames them into place). Returns 0 or
 * PI_ERR_UNPROCESSABLE / PI_ERR_IO / PI_ERR_NOMEM. */
int img_derive(const char *path, const struct img_info *info,
    struct img_outputs *out);

#endif
