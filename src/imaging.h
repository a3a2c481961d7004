/* imaging.h — everything polaimg does to pixels, over MagickWand 6.
 *
 * Sniff the real type from magic bytes, ping the header before decoding,
 * refuse oversize images, then one decode (shrink-on-load for JPEG, at any
 * k/8 through libjpeg's own API: jpegdec.h) feeds the display copy, and the
 * thumbnail is made from the display copy.
 * img_init() runs once per worker process, after fork.
 */
#ifndef POLAIMG_IMAGING_H
#define POLAIMG_IMAGING_H

#include <stddef.h>
#include <stdint.h>

/* IMG_DICOM (a Part 10 file, application/dicom) is never opened by
 * ImageMagick: dicom.c renders its pixels and img_derive_pixels() makes
 * its copies; img_probe() and img_derive() refuse it. */
enum img_type { IMG_UNKNOWN = 0, IMG_JPEG, IMG_PNG, IMG_TIFF, IMG_WEBP,
	IMG_DICOM };

/* Longest side of the display copy and of the thumbnail, in pixels. */
#define IMG_DISPLAY_MAX 2048
#define IMG_THUMB_MAX 400

/* The type named by the first bytes (at least 12 are needed to tell WebP,
 * 132 to tell DICOM: "DICM" after the 128-byte preamble),
 * IMG_UNKNOWN for anything else (GIF, SVG, PDF, MVG, HTML …). Pure. */
enum img_type img_sniff(const unsigned char *buf, size_t len);
/* "image/jpeg" …; NULL for IMG_UNKNOWN. */
const char *img_mime(enum img_type t);
/* "jpg", "png", "tif", "webp", "dcm"; NULL for IMG_UNKNOWN. */
const char *img_ext(enum img_type t);
/* The type for a MIME type ("image/jpeg", "image/jpg", "image/png",
 * "image/tiff", "image/webp", "application/dicom", case-insensitive),
 * IMG_UNKNOWN otherwise. */
enum img_type img_type_from_mime(const char *mime);

/* A zero field leaves ImageMagick's default (capped by policy.xml) alone,
 * except disk_bytes, where 0 means no pixel cache on disk at all. */
struct img_limits {
	uint64_t max_pixels;      /* refuse width*height above this; area limit */
	uint64_t memory_bytes;    /* ImageMagick memory resource */
	uint64_t map_bytes;
	uint64_t disk_bytes;      /* 0: no pixel cache on disk */
	uint64_t max_dimension;   /* width and height resource */
	unsigned time_seconds;    /* per img_probe/img_derive call; 0: none.
	                           * ImageMagick 6 treats running past it as a
	                           * fatal error: the worker exits (logged). */
	const char *policy_dir;   /* directory with polaimg's policy.xml, made
	                           * MAGICK_CONFIGURE_PATH before genesis; img_init
	                           * then fails unless the policy denies MVG. NULL:
	                           * environment and system policy only. */
};

/* Once per worker: MagickWandGenesis, one thread, the resource limits.
 * Calling it again only re-applies the limits. Returns 0 or
 * PI_ERR_INTERNAL. */
int img_init(const struct img_limits *lim);
/* MagickWandTerminus; img_init() may be called again afterwards. */
void img_shutdown(void);

struct img_info {
	enum img_type type;
	uint64_t width, height;   /* as stored (before orientation) */
	int orientation;          /* EXIF orientation 1..8, 1 if absent */
	int64_t captured_at;      /* EXIF DateTimeOriginal as UTC seconds
	                           * (OffsetTimeOriginal applied when present,
	                           * else the clock is taken as UTC), or -1 if
	                           * absent, malformed or before 1970 */
};

/* Pings the file at path (type must be its sniffed type; the coder is forced
 * to it so data can never pick another coder; only the first frame counts).
 * Fills info. path must be absolute and free of '[', ']' and '%' (ImageMagick
 * would read those as frame, size or scene syntax). The header is read by
 * imghdr_read() before ImageMagick opens the file. Returns 0,
 * PI_ERR_UNPROCESSABLE if the header is unreadable, width*height exceeds
 * max_pixels (checked before any decode), PNG metadata inflates past
 * imghdr's caps, or the ping's size differs from the header's,
 * PI_ERR_UNSUPPORTED if the
 * ImageMagick policy denies the type's coder, PI_ERR_INTERNAL on bad
 * arguments or before img_init(). */
int img_probe(const char *path, enum img_type type, uint64_t max_pixels,
    struct img_info *info);

/* img_outputs.skip: leave one copy out (benchmarks, re-making one). */
#define IMG_SKIP_DISPLAY 1u
#define IMG_SKIP_THUMB 2u

struct img_outputs {
	const char *display_path;  /* where to write the display copy */
	const char *thumb_path;    /* where to write the thumbnail */
	unsigned skip;             /* 0 (make both), IMG_SKIP_DISPLAY or
	                            * IMG_SKIP_THUMB; the skipped path is not
	                            * used and may be NULL */
	enum img_type display_type;/* set: IMG_PNG for PNG input, else IMG_JPEG */
	enum img_type thumb_type;  /* same rule */
	uint64_t display_width, display_height; /* set: as displayed */
	uint64_t thumb_width, thumb_height;     /* set (0 x 0 when skipped) */
};

/* Decodes path once (info from img_probe(); a camera JPEG through jpegdec.c
 * at the smallest k/8 scale covering the display size, any other JPEG with a
 * jpeg:size hint from the real aspect ratio, never above the image's size),
 * auto-orients, strips metadata
 * but keeps the ICC profile, writes the display copy (long side <=
 * IMG_DISPLAY_MAX, progressive JPEG q85 4:2:0, or 8-bit PNG with alpha) and
 * from it the thumbnail (fits IMG_THUMB_MAX square, baseline JPEG q82 or
 * PNG). Never upscales. Transparency in non-PNG input is flattened on white.
 * With out->skip, only the other copy is made, from a decode sized for it
 * (the thumbnail has the same size either way).
 * Writes to the given paths (same rules as img_probe's path; the caller
 * renames them into place, and removes them if this fails). Returns 0 or
 * PI_ERR_UNPROCESSABLE (corrupt, truncated, over the resource limits) /
 * PI_ERR_IO (cannot write) / PI_ERR_UNSUPPORTED (coder denied by policy) /
 * PI_ERR_NOMEM / PI_ERR_INTERNAL (bad arguments). */
int img_derive(const char *path, const struct img_info *info,
    struct img_outputs *out);

/* Makes the display copy and the thumbnail, as img_derive() does (same
 * sizes, JPEG quality, never upscaling), from w x h 8-bit pixels already
 * decoded by someone else (dicom.c): channels 1 (grey) or 3 (RGB,
 * interleaved), w * h * channels bytes. Both copies are JPEG; they carry
 * no metadata. Returns 0, PI_ERR_UNPROCESSABLE, PI_ERR_IO, PI_ERR_NOMEM or
 * PI_ERR_INTERNAL (bad arguments). */
int img_derive_pixels(const unsigned char *pixels, uint64_t w, uint64_t h,
    int channels, struct img_outputs *out);

#endif
