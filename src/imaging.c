/* imaging.c — sniff, probe and derive images, over MagickWand 6.
 *
 * ImageMagick decodes dozens of formats, some of them small programs (MVG,
 * MSL, SVG, PostScript), so nothing reaches it that polaimg has not already
 * identified from magic bytes as JPEG, PNG, TIFF or WebP. Every read names
 * its coder in the file name ("JPEG:/path[0]"), which makes ImageMagick
 * trust that coder instead of guessing from the data, and asks for the first
 * frame only, so a 10000-page TIFF costs one page. conf/policy.xml denies
 * every other coder, module, delegate and filter as a second wall.
 *
 * Work is bounded before it starts. img_probe() first has polaimg's own
 * header reader (imghdr.c) look at the file's bytes: the stored size, read
 * from the header, is held to max_pixels, and PNG text and ICC chunks may
 * inflate only so far, before ImageMagick opens the file at all, because
 * ImageMagick's ping is not always a header read (its WebP coder decodes
 * the whole bitstream, and libpng inflates every zTXt, iTXt and iCCP chunk
 * while reading the header). Only then does img_probe() ping the file
 * (orientation, capture time), and the size the ping finds must be the
 * header's. img_init() sets the resource limits (memory, map, disk, area, width, height, time) and one
 * thread, because the pre-forked workers already use the cores and OpenMP
 * inside each worker only adds contention.
 *
 * img_derive() decodes once. A camera JPEG (8-bit, grey or YCbCr/RGB,
 * Huffman-coded) is decoded by jpegdec.c through libjpeg's own API at the
 * smallest k/8 scale whose result still covers the display size, and its
 * 8-bit pixels, turned upright for the EXIF orientation the probe read
 * as they are decoded (an eighth of the bytes ImageMagick's turn of the
 * Q16 image moves) and reduced to the display size there (jd_shrink(), an
 * area average by less than 2, see "Last step after a scaled decode"),
 * and its ICC profile are handed to MagickWand (MagickConstituteImage),
 * which encodes. Any other
 * JPEG (CMYK, YCCK, arithmetic coding, 12-bit) is read by ImageMagick with
 * a jpeg:size hint chosen so that libjpeg decodes at the smallest 1/n scale
 * whose result is still at least the display size (computed from the real
 * aspect ratio, never above the image's own size: a larger hint makes
 * libjpeg upscale). Then the image is auto-oriented, stripped of every
 * profile and property but the ICC profile, resized to the display size
 * (computed from the stored size, not from whatever the decoder returned)
 * and written as the display copy. A reduction of more than
 * IMG_SHRINK_RATIO is done in two steps: a cheap area average
 * (MagickScaleImage) to IMG_SHRINK_RATIO times the target, then the good
 * filter for the last step only. The thumbnail is one area average of that
 * same in-memory display copy.
 *
 * Metadata: EXIF (GPS, serial numbers, dates), XMP, IPTC, comments and PNG
 * text chunks can all carry patient data, so derived copies keep nothing but
 * the pixels and the ICC profile (needed to show colours right). The
 * original is stored untouched by the caller.
 *
 * Corrupt input: ImageMagick reports a truncated JPEG as a CorruptImageWarning
 * and still hands back an image whose missing part is grey. Every
 * CorruptImage* report, warning or error, makes the image unprocessable:
 * a half-grey copy of a clinical photograph is worse than a refusal. Other
 * warnings (unknown TIFF tags, odd PNG chunks) are logged and tolerated.
 * jpegdec.c refuses on every libjpeg warning, which is what ImageMagick
 * turns into CorruptImageWarning, and holds libjpeg to ImageMagick's memory
 * limit, the same time limit and the same scan count.
 *
 * ImageMagick 6 facts this file relies on (6.9.11, Debian 12, checked):
 * - the time limit runs from the first pixel-cache use in the process, not
 *   per image, and running past it is fatal, so it is re-armed at the start
 *   of every call (SetMagickResourceLimit resets the epoch);
 * - the area limit counts pixels and admits only images strictly below it;
 *   a Q16 pixel cache takes 8 bytes a pixel, and without a disk cache an
 *   image that does not fit the memory limit is refused (the map limit
 *   alone does not help);
 * - coders report some problems on the image, not the wand;
 * - MagickStripImage also excludes the PNG iCCP chunk, so profiles and
 *   properties are removed one by one instead;
 * - policy rules are read in file order, the last match wins, and
 *   $HOME/.config/ImageMagick/policy.xml is read after ours, so img_init()
 *   checks that the dangerous coders really are denied;
 * - the JPEG writer takes progressive mode from the wand's interlace scheme
 *   and the quality from the image.
 */
#include "imaging.h"

#include "bigmem.h"
#include "common.h"
#include "imghdr.h"
#include "jpegdec.h"
#include "log.h"
#include "pngenc.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ImageMagick 6's opencl.h declares GetDefaultOpenCLEnv() without a
 * prototype; the warning is theirs, not ours. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <wand/MagickWand.h>
#pragma GCC diagnostic pop

#define IMG_DISPLAY_QUALITY 85
#define IMG_THUMB_QUALITY 82
/* PNG "quality" is zlib level * 10 + filter: level 1, adaptive filters.
 * Measured on a 2000x2000 photograph-like copy (one thread): level 1
 * 0.24 s and 3.60 MB, level 4 0.42 s and 3.06 MB, ImageMagick's default
 * (level 7) 2.0 s and 2.87 MB; libvips's default (level 6, no filter)
 * writes 8.99 MB. Any single fixed filter ("sub": 9.9 MB) loses more than
 * the levels differ. PNG stays lossless at every level. */
#define IMG_PNG_QUALITY 15
#define IMG_MMAP_THRESHOLD (1024 * 1024)  /* bytes; see img_init() */
#define IMG_PNG_BAND 64         /* rows exported at a time, img_write_png() */
#define IMG_NAME_MAX 4096       /* "CODER:" + path + "[0]" */
#define IMG_FATAL_STATUS 70     /* EX_SOFTWARE */

/*
 * Shrink-on-load: libjpeg can decode a JPEG at k/8 of its size, and
 * ImageMagick asks it for 1/n with n = floor(size / jpeg:size hint);
 * libjpeg-turbo (like libjpeg 8 and later) then decodes at k/8 with
 * k = ceil(8/n), so n = 3 gives 3/8 and n = 4..7 give 2/8; libjpeg 6b
 * knows fewer scales and picks a larger one, which is only slower.
 * img_jpeg_hint() takes the largest n whose result is still at least the
 * target size, so the resize after it always shrinks, by less than 2
 * (less than 1.34 after a 1/2 decode).
 *
 * Why not leave the customary margin of 2 (libvips does): there is then no
 * DCT shrink at all below 4 x IMG_DISPLAY_MAX = 8192 px on the long side,
 * i.e. for nearly every camera, and the full decode needs 8 bytes a pixel.
 * Measured here (one thread, q92 photographs, display 2048): 20 MP 0.95 s /
 * 247 MB peak RSS with 2, 0.42 s / 100 MB without; 48 MP 1.6 s / 506 MB
 * against 0.62 s / 124 MB; with a 256 MiB memory limit a 24 MP JPEG is
 * refused with 2 and made without. The cost is detail: against a full
 * decode, on synthetic fine high-contrast noise, 2 dB lower PSNR (30.8
 * against 32.7 dB); on smooth content no difference (36.12 against
 * 36.11 dB), both well inside what q85 JPEG itself loses. 3/8 instead of
 * 1/2 for a 24 MP (6000x4000) photograph: display PSNR against a full
 * decode 39.37 against 39.38 dB, 0.27 s of CPU against 0.32 s.
 */

/*
 * Last step after a scaled decode (jpegdec.c): the k/8 decode leaves a
 * reduction by less than 8/7 .. 2 (less than 5/4 for 4096 px and more),
 * from 8-bit pixels. ImageMagick 6's resize filters cost about the same
 * whatever their support (2438x1920 -> 2048x1613, one thread, CPU ms:
 * Lanczos2 278, Catrom 250, Box 230, Triangle 223, Hermite 207): its
 * horizontal pass walks the image column by column through the pixel
 * cache, copying a strip of every row for every output column. The area
 * average (MagickScaleImage) works row by row: 70 ms; MagickSampleImage
 * 57 ms. Display copies (q85) against a full decode resized with Lanczos3,
 * camera set: area average within 0.16 dB of libvips (widefield 40.96
 * against 41.12 dB, phone 38.95 / 39.03, 24 MP 39.50 / 39.55), Lanczos2
 * no better (40.95, 38.96, 39.48: the DCT scaling already filtered),
 * Sample 0.6 dB worse. So: area average. It is done by jd_shrink() on the
 * 8-bit rows before MagickWand sees them (the same filter: 75-87 dB PSNR
 * against MagickScaleImage's result, i.e. equal but for a rounding here
 * and there), 17 ms instead of 70, and without the Q16 pixel cache of the
 * image before the reduction (12 MP upload CPU 0.77 -> 0.68 x libvips).
 */

/*
 * The filter of the last reduction step (other formats). Measured (20 MP photograph with
 * thin dark lines like retinal vessels, display copy after a 1/2 decode,
 * one thread, PSNR of the q85 copy against a full decode resized with
 * Lanczos): Lanczos 0.34 s of CPU, 33.75 dB; Lanczos2 (two lobes) 0.30 s,
 * 33.66 dB; Triangle 0.25 s, 33.18 dB, visibly softer lines. Lanczos2
 * keeps thin structures, which is what the display copy is looked at for,
 * at a quarter less resize time than Lanczos.
 */
#define IMG_FILTER Lanczos2Filter

/* A camera's progressive JPEG has about ten scans; thousands of tiny ones
 * make libjpeg spend seconds of CPU. Both decoders refuse past this. */
#define IMG_JPEG_MAX_SCANS 100
#define IMG_JPEG_MAX_SCANS_S "100"

/*
 * A reduction by more than this is done in two steps: an area average
 * (MagickScaleImage, a few times cheaper than any filter) down to this many
 * times the target, then IMG_FILTER. Used for the thumbnail made from the
 * display copy (2048 to 400: a third of the time of Lanczos in one step,
 * PSNR within 0.1 dB) and for non-JPEG input, which has no shrink-on-load.
 */
#define IMG_SHRINK_RATIO 2

/* PNG chunks never written to derived copies: text and EXIF can carry
 * patient data, dates and times add nothing. iCCP, gAMA, cHRM and sRGB
 * (colour) and tRNS (transparency) are kept. */
#define IMG_PNG_EXCLUDE "eXIf,iTXt,tEXt,zTXt,zCCP,date,tIME,caNv,vpAg,oFFs"

static const struct img_format {
	const char *coder;        /* ImageMagick coder, forced on every read */
	const char *mime;
	const char *ext;
} img_formats[] = {
	[IMG_UNKNOWN] = { NULL, NULL, NULL },
	[IMG_JPEG] = { "JPEG", "image/jpeg", "jpg" },
	[IMG_PNG] = { "PNG", "image/png", "png" },
	[IMG_TIFF] = { "TIFF", "image/tiff", "tif" },
	[IMG_WEBP] = { "WEBP", "image/webp", "webp" },
	[IMG_DICOM] = { NULL, "application/dicom", "dcm" },  /* see dicom.cc */
};

/* Magic bytes: data at offset 0, and for WebP a second run further on. */
static const struct img_magic {
	enum img_type type;
	const char *m1;
	size_t n1;
	size_t off2;
	const char *m2;
	size_t n2;
} img_magics[] = {
	{ IMG_JPEG, "\xff\xd8\xff", 3, 0, NULL, 0 },
	{ IMG_PNG, "\x89PNG\r\n\x1a\n", 8, 0, NULL, 0 },
	{ IMG_TIFF, "II*\0", 4, 0, NULL, 0 },
	{ IMG_TIFF, "MM\0*", 4, 0, NULL, 0 },
	{ IMG_WEBP, "RIFF", 4, 8, "WEBP", 4 },
	/* Last: a file that begins like one of the above is that (a DICOM
	 * preamble may hold a TIFF header), so a type told from a prefix
	 * never changes with more bytes. */
	{ IMG_DICOM, "", 0, 0x80 /* after the preamble */, "DICM", 4 },
};

static const struct {
	const char *mime;
	enum img_type type;
} img_mimes[] = {
	{ "image/jpeg", IMG_JPEG },
	{ "image/jpg", IMG_JPEG },
	{ "image/png", IMG_PNG },
	{ "image/tiff", IMG_TIFF },
	{ "image/webp", IMG_WEBP },
	{ "application/dicom", IMG_DICOM },
};

/* Coders a loaded polaimg policy must deny (a sample of conf/policy.xml's
 * "deny everything"); img_init() fails closed if one is still readable. */
static const char *const img_must_deny[] = {
	"MVG", "MSL", "SVG", "MSVG", "TEXT", "PS", "EPS", "PDF", "XPS", "URL",
	"HTTP", "HTTPS", "FTP", "EPHEMERAL", "MIFF", "GIF",
};

static int img_ready;           /* MagickWandGenesis has run */
static unsigned img_time_limit; /* seconds, re-armed per call; 0: none */

enum img_type
img_sniff(const unsigned char *buf, size_t len)
{
	if (buf == NULL)
		return IMG_UNKNOWN;
	for (size_t i = 0; i < PI_ARRAY_LEN(img_magics); i++) {
		const struct img_magic *m = &img_magics[i];

		if (len < m->n1 || memcmp(buf, m->m1, m->n1) != 0)
			continue;
		if (m->m2 != NULL && (len < m->off2 + m->n2 ||
		    memcmp(buf + m->off2, m->m2, m->n2) != 0))
			continue;
		return m->type;
	}
	return IMG_UNKNOWN;
}

static const struct img_format *
img_format(enum img_type t)
{
	if (t <= IMG_UNKNOWN || t > IMG_DICOM)
		return NULL;
	return &img_formats[t];
}

const char *
img_mime(enum img_type t)
{
	const struct img_format *f = img_format(t);

	return f != NULL ? f->mime : NULL;
}

const char *
img_ext(enum img_type t)
{
	const struct img_format *f = img_format(t);

	return f != NULL ? f->ext : NULL;
}

enum img_type
img_type_from_mime(const char *mime)
{
	if (mime == NULL)
		return IMG_UNKNOWN;
	for (size_t i = 0; i < PI_ARRAY_LEN(img_mimes); i++)
		if (strcasecmp(mime, img_mimes[i].mime) == 0)
			return img_mimes[i].type;
	return IMG_UNKNOWN;
}

/*
 * ImageMagick's fatal errors (time limit, failed allocation of its own
 * bookkeeping) leave it in a state it cannot continue from; its default
 * handler calls exit(). Log one line and leave without running atexit
 * handlers inherited from the master; the master respawns the worker.
 */
static void
img_fatal(const ExceptionType severity, const char *reason,
    const char *description)
{
	log_error("imaging: fatal ImageMagick error %d: %s %s; worker exits",
	    (int)severity, reason != NULL ? reason : "",
	    description != NULL ? description : "");
	_exit(IMG_FATAL_STATUS);
}

static int
img_set_limit(ResourceType type, uint64_t value, const char *name)
{
	if (SetMagickResourceLimit(type, (MagickSizeType)value) == MagickFalse) {
		log_error("imaging: cannot set the %s resource limit", name);
		return PI_ERR_INTERNAL;
	}
	return 0;
}

/* ImageMagick's AcquireAlignedMemory() handler: bigmem.c's blocks. */
static void *
img_aligned_alloc(const size_t size, const size_t align)
{
	return bm_alloc(size, align);
}

int
img_init(const struct img_limits *lim)
{
	int err;

	if (lim == NULL)
		return PI_ERR_INTERNAL;
	if (!img_ready) {
		/* Pixel buffers come and go with every image. From mmap they
		 * go back to the system when freed; glibc's default threshold
		 * slides up to the largest block freed so far, and past that
		 * such blocks come from the heap, which keeps up to twice that
		 * much resident between requests. Measured: after making
		 * copies of 1 and 10 MP photographs a process stayed at 45 MB,
		 * 11 MB with this fixed threshold, for some 13 ms more system
		 * time (page faults) per 10-20 MP image. The setting is the
		 * process's: img_init() runs in each worker. */
		if (mallopt(M_MMAP_THRESHOLD, IMG_MMAP_THRESHOLD) != 1)
			log_debug("imaging: the allocator keeps its own mmap "
			    "threshold (sanitizers)");
		if (lim->policy_dir != NULL &&
		    setenv("MAGICK_CONFIGURE_PATH", lim->policy_dir, 1) != 0) {
			log_error("imaging: cannot set MAGICK_CONFIGURE_PATH");
			return PI_ERR_INTERNAL;
		}
		/* ImageMagick's pixel caches from huge pages (bigmem.c). */
		SetMagickAlignedMemoryMethods(img_aligned_alloc, bm_free);
		MagickWandGenesis();
		(void)SetFatalErrorHandler(img_fatal);
		img_ready = 1;
		for (size_t i = 0; i < PI_ARRAY_LEN(img_must_deny); i++) {
			if (IsRightsAuthorized(CoderPolicyDomain,
			    ReadPolicyRights, img_must_deny[i]) == MagickFalse)
				continue;
			if (lim->policy_dir != NULL) {
				log_error("imaging: the ImageMagick policy in %s "
				    "is not in force (%s is readable)",
				    lim->policy_dir, img_must_deny[i]);
				img_shutdown();
				return PI_ERR_INTERNAL;
			}
			log_warn("imaging: no restrictive ImageMagick policy "
			    "is loaded (%s is readable)", img_must_deny[i]);
			break;
		}
	}
	/* One thread: also caps OpenMP in this process. */
	if ((err = img_set_limit(ThreadResource, 1, "thread")) != 0)
		return err;
	if (lim->memory_bytes != 0 && (err = img_set_limit(MemoryResource,
	    lim->memory_bytes, "memory")) != 0)
		return err;
	if (lim->map_bytes != 0 && (err = img_set_limit(MapResource,
	    lim->map_bytes, "map")) != 0)
		return err;
	if ((err = img_set_limit(DiskResource, lim->disk_bytes, "disk")) != 0)
		return err;
	/* ImageMagick 6 admits a pixel cache only if its area is strictly
	 * below the limit; an image of exactly max_pixels passes img_probe. */
	if (lim->max_pixels != 0 && (err = img_set_limit(AreaResource,
	    lim->max_pixels < UINT64_MAX ? lim->max_pixels + 1 :
	    lim->max_pixels, "area")) != 0)
		return err;
	if (lim->max_dimension != 0) {
		if ((err = img_set_limit(WidthResource, lim->max_dimension,
		    "width")) != 0)
			return err;
		if ((err = img_set_limit(HeightResource, lim->max_dimension,
		    "height")) != 0)
			return err;
	}
	/* No list of frames longer than one: only the first frame is read. */
	if ((err = img_set_limit(ListLengthResource, 16, "list-length")) != 0)
		return err;
	/* Q16 pixels take 8 bytes (10 for CMYK); without a disk cache an
	 * image whose pixels do not fit in memory is refused. */
	if (lim->max_pixels != 0 && lim->disk_bytes == 0 &&
	    GetMagickResourceLimit(MemoryResource) / 8 < lim->max_pixels)
		log_warn("imaging: the memory limit (%llu bytes) holds fewer "
		    "than max_pixels (%llu) pixels at 8 bytes each and there "
		    "is no disk cache: such images will be refused",
		    (unsigned long long)GetMagickResourceLimit(MemoryResource),
		    (unsigned long long)lim->max_pixels);
	img_time_limit = lim->time_seconds;
	return 0;
}

void
img_shutdown(void)
{
	if (!img_ready)
		return;
	MagickWandTerminus();
	img_ready = 0;
}

/*
 * Starts one probe or derive: re-arms the time limit, whose clock
 * ImageMagick 6 otherwise runs from the first image the process touched.
 */
static int
img_begin(void)
{
	if (!img_ready) {
		log_error("imaging: img_init() has not run");
		return PI_ERR_INTERNAL;
	}
	if (img_time_limit != 0 && SetMagickResourceLimit(TimeResource,
	    (MagickSizeType)img_time_limit) == MagickFalse) {
		log_error("imaging: cannot re-arm the time limit");
		return PI_ERR_INTERNAL;
	}
	return 0;
}

/*
 * Builds "CODER:path" (plus "[0]", the first frame, when first is set) into
 * buf. The path must be absolute, so it can never be read as "|command",
 * "@list" or "-", and free of the characters ImageMagick parses in file
 * names. Returns 0 or PI_ERR_INTERNAL.
 */
static int
img_name(char *buf, size_t size, const char *coder, const char *path,
    int first)
{
	int n;

	if (path == NULL || path[0] != '/' || strpbrk(path, "[]%") != NULL) {
		log_error("imaging: refusing unusable file name");
		return PI_ERR_INTERNAL;
	}
	n = snprintf(buf, size, "%s:%s%s", coder, path, first ? "[0]" : "");
	if (n < 0 || (size_t)n >= size) {
		log_error("imaging: file name too long");
		return PI_ERR_INTERNAL;
	}
	return 0;
}

/*
 * Reads and clears what the last Magick call reported, and decides: 0 if
 * the call (which returned ok) worked and reported at most a tolerated
 * warning, else a pi_err (fail for a failure of the call itself, or the more
 * specific code below). Logs one line for anything reported. Coders report
 * on the wand (errors) or on the image itself (a libjpeg "Premature end of
 * JPEG file" is a CorruptImageWarning on the image, and the read returns
 * MagickTrue), so both are read.
 */
static int
img_check(MagickWand *wand, MagickBooleanType ok, const char *what, int fail)
{
	ExceptionType sev = UndefinedException, isev = UndefinedException;
	char *desc;
	char idesc[512];
	const char *text;
	Image *image = NULL;
	int err = 0;

	idesc[0] = '\0';
	desc = MagickGetException(wand, &sev);
	text = desc != NULL && desc[0] != '\0' ? desc :
	    "no detail (the decoder gave up)";
	if (MagickGetNumberImages(wand) > 0)
		image = GetImageFromMagickWand(wand);
	if (image != NULL && image->exception.severity != UndefinedException) {
		const char *r = image->exception.reason;
		const char *d = image->exception.description;

		isev = image->exception.severity;
		if (snprintf(idesc, sizeof(idesc), "%s%s%s%s",
		    r != NULL ? r : "no detail",
		    d != NULL && d[0] != '\0' ? " (" : "",
		    d != NULL ? d : "", d != NULL && d[0] != '\0' ? ")" : "") < 0)
			idesc[0] = '\0';
		ClearMagickException(&image->exception);
	}
	if (isev > sev) {
		sev = isev;
		text = idesc;
	}
	if (ok == MagickFalse || sev >= ErrorException ||
	    sev == CorruptImageWarning) {
		if (sev == PolicyError)
			err = PI_ERR_UNSUPPORTED;
		else if (sev == ResourceLimitError || sev == CorruptImageError ||
		    sev == CorruptImageWarning)
			err = PI_ERR_UNPROCESSABLE;
		else
			err = fail;
		log_warn("imaging: %s failed (%d): %s", what, (int)sev, text);
	} else if (sev != UndefinedException) {
		log_info("imaging: %s: tolerated warning (%d): %s", what,
		    (int)sev, text);
	}
	if (desc != NULL)
		(void)MagickRelinquishMemory(desc);
	MagickClearException(wand);
	return err;
}

/* Frees a list returned by MagickGetImageProfiles/Properties. */
static void
img_free_list(char **list, size_t n)
{
	if (list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if (list[i] != NULL)
			(void)MagickRelinquishMemory(list[i]);
	(void)MagickRelinquishMemory(list);
}

/* Orientation as the EXIF values 1..8; anything else is 1 (top-left). */
static int
img_orientation(MagickWand *wand)
{
	OrientationType o = MagickGetImageOrientation(wand);

	if (o >= TopLeftOrientation && o <= LeftBottomOrientation)
		return (int)o;
	return 1;
}

/* True if only NULs and spaces follow. */
static int
img_blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s != ' ')
			return 0;
	return 1;
}

/*
 * Parses EXIF "YYYY:MM:DD HH:MM:SS" and the optional OffsetTime "+HH:MM"
 * into UTC seconds. Without an offset (most cameras write none) the clock
 * is the local time of local_timezone, which main() made the process's TZ
 * (the host's zone when unset): mktime() with tm_isdst = -1 lets the zone's
 * rules decide summer time; a time in a spring-forward gap is moved past
 * it, and one that occurs twice takes whichever mktime() picks. Returns -1
 * for anything malformed, out of range or before 1970 (an all-zero date is
 * the usual "unset"). Pure but for the TZ it reads.
 */
static int64_t
img_exif_time(const char *date, const char *offset)
{
	int y, mo, d, h, mi, s, oh, om;
	int64_t t;

	if (date == NULL || strlen(date) < 19 || !img_blank(date + 19))
		return -1;
	if (date[4] != ':' || date[7] != ':' || date[10] != ' ' ||
	    date[13] != ':' || date[16] != ':')
		return -1;
	if (pi_digits(date, 4, &y) || pi_digits(date + 5, 2, &mo) ||
	    pi_digits(date + 8, 2, &d) || pi_digits(date + 11, 2, &h) ||
	    pi_digits(date + 14, 2, &mi) || pi_digits(date + 17, 2, &s))
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 ||
	    s > 60)
		return -1;
	if (d > pi_days_in_month(y, mo))
		return -1;
	if (offset != NULL && strlen(offset) >= 6 && img_blank(offset + 6) &&
	    (offset[0] == '+' || offset[0] == '-') && offset[3] == ':' &&
	    pi_digits(offset + 1, 2, &oh) == 0 &&
	    pi_digits(offset + 4, 2, &om) == 0 && oh <= 14 && om <= 59) {
		int64_t off = (int64_t)oh * 3600 + om * 60;

		t = pi_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
		t -= offset[0] == '+' ? off : -off;
	} else {
		struct tm tm = pi_tm(y, mo, d, h, mi, s);
		time_t lt = mktime(&tm);
		if (lt == (time_t)-1)
			return -1;
		t = (int64_t)lt;
	}
	return t >= 0 ? t : -1;
}

/* The image's EXIF capture time (see img_exif_time), or -1. */
static int64_t
img_captured_at(MagickWand *wand)
{
	char *date, *offset;
	int64_t t;

	date = MagickGetImageProperty(wand, "exif:DateTimeOriginal");
	offset = MagickGetImageProperty(wand, "exif:OffsetTimeOriginal");
	t = img_exif_time(date, offset);
	if (date != NULL)
		(void)MagickRelinquishMemory(date);
	if (offset != NULL)
		(void)MagickRelinquishMemory(offset);
	return t;
}

/*
 * Prepares to read path as fmt's coder: the per-call limits (img_begin),
 * the name "CODER:/path[0]" for the read, and a new wand whose format is
 * set to the coder, so nothing in the data can choose another. *wand is
 * the caller's to destroy (also when an error is returned after it was
 * made). Returns 0 or a pi_err.
 */
static int
img_open(const struct img_format *fmt, const char *path, char *name,
    size_t namesz, MagickWand **wand)
{
	int err;

	if ((err = img_begin()) != 0 ||
	    (err = img_name(name, namesz, fmt->coder, path, 1)) != 0)
		return err;
	if ((*wand = NewMagickWand()) == NULL)
		return PI_ERR_NOMEM;
	return img_check(*wand, MagickSetFormat(*wand, fmt->coder), "set format",
	    PI_ERR_INTERNAL);
}

/*
 * Reads the header of the file at path with imghdr (type t, max_pixels)
 * before ImageMagick may open it; fills *hdr. The file is mapped
 * read-only, so only the pages the reader looks at are read. Returns 0,
 * PI_ERR_UNPROCESSABLE (logged with the reason; also for a file that
 * cannot be opened) or PI_ERR_NOMEM.
 */
static int
img_header(const char *path, enum img_type t, uint64_t max_pixels,
    struct imghdr_info *hdr)
{
	struct stat st;
	void *map = MAP_FAILED;
	int fd, err;

	memset(hdr, 0, sizeof(*hdr));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) != 0) {
		/* As ImageMagick's ping answered for a file it cannot
		 * read. */
		log_error("imaging: %s: %s", path, strerror(errno));
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}
	if (st.st_size > 0 && (map = mmap(NULL, (size_t)st.st_size, PROT_READ,
	    MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
		log_error("imaging: mmap %s: %s", path, strerror(errno));
		err = PI_ERR_NOMEM;
		goto out;
	}
	err = imghdr_read(t, map == MAP_FAILED ? NULL : map,
	    map == MAP_FAILED ? 0 : (size_t)st.st_size, max_pixels, hdr);
	if (err == PI_ERR_UNPROCESSABLE)
		log_warn("imaging: header refused before decoding: %s",
		    hdr->why != NULL ? hdr->why : "malformed");
out:
	if (map != MAP_FAILED)
		(void)munmap(map, (size_t)st.st_size);
	if (fd >= 0)
		(void)close(fd);
	return err;
}

int
img_probe(const char *path, enum img_type type, uint64_t max_pixels,
    struct img_info *info)
{
	struct imghdr_info hdr;
	const struct img_format *fmt = img_format(type);
	char name[IMG_NAME_MAX];
	MagickWand *wand = NULL;
	MagickBooleanType ok;
	uint64_t w, h;
	int err;

	if (info == NULL || fmt == NULL || fmt->coder == NULL)
		return PI_ERR_INTERNAL;
	memset(info, 0, sizeof(*info));
	info->type = type;
	info->orientation = 1;
	info->captured_at = -1;
	/* polaimg's own header reader first: ImageMagick's ping decodes
	 * WebP, and libpng inflates PNG text while reading the header. */
	if ((err = img_begin()) != 0 ||
	    (err = img_name(name, sizeof(name), fmt->coder, path, 1)) != 0 ||
	    (err = img_header(path, type, max_pixels, &hdr)) != 0)
		goto out;
	if ((err = img_open(fmt, path, name, sizeof(name), &wand)) != 0)
		goto out;
	ok = MagickPingImage(wand, name);
	if ((err = img_check(wand, ok, "ping", PI_ERR_UNPROCESSABLE)) != 0)
		goto out;
	if (MagickGetNumberImages(wand) < 1) {
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}
	MagickSetFirstIterator(wand);
	w = MagickGetImageWidth(wand);
	h = MagickGetImageHeight(wand);
	if (w == 0 || h == 0) {
		log_warn("imaging: image has no pixels");
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}
	if (w > max_pixels / h) {
		log_warn("imaging: %llux%llu is over max_pixels %llu",
		    (unsigned long long)w, (unsigned long long)h,
		    (unsigned long long)max_pixels);
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}
	if (w != hdr.width || h != hdr.height) {
		log_warn("imaging: header says %lux%lu, ImageMagick %llux%llu",
		    (unsigned long)hdr.width, (unsigned long)hdr.height,
		    (unsigned long long)w, (unsigned long long)h);
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}
	info->width = w;
	info->height = h;
	info->orientation = img_orientation(wand);
	info->captured_at = img_captured_at(wand);
	err = 0;
out:
	if (wand != NULL)
		wand = DestroyMagickWand(wand);
	return err;
}

/* Fits w x h into a box x box square, keeping the aspect ratio, never
 * enlarging; every side at least 1. */
static void
img_fit(uint64_t w, uint64_t h, uint64_t box, uint64_t *fw, uint64_t *fh)
{
	if (w <= box && h <= box) {
		*fw = w;
		*fh = h;
		return;
	}
	if (w >= h) {
		*fw = box;
		*fh = (h * box + w / 2) / w;
	} else {
		*fh = box;
		*fw = (w * box + h / 2) / h;
	}
	if (*fw == 0)
		*fw = 1;
	if (*fh == 0)
		*fh = 1;
}

/* The size libjpeg decodes v pixels to when asked for 1/n (n >= 1):
 * k/8 with k = ceil(8/n), rounded up (see "Shrink-on-load" above). */
static uint64_t
img_jpeg_scaled(uint64_t v, unsigned n)
{
	uint64_t k = (8 + n - 1) / n;

	return (v * k + 7) / 8;
}

/*
 * Sets the jpeg:size hint for a w x h JPEG (as stored) whose result must
 * be at least tw x th: the largest n (up to 8) for which libjpeg's 1/n
 * decode is still that large, as the hint w/n x h/n, from which
 * ImageMagick computes n back. No hint (a full decode) when n would be 1
 * or the hint would not round-trip to n. Only this option shrinks on load;
 * MagickSetSize does not.
 */
static int
img_jpeg_hint(MagickWand *wand, uint64_t w, uint64_t h, uint64_t tw,
    uint64_t th)
{
	uint64_t hw, hh;
	unsigned n = 1;
	double back;
	char hint[64];
	int len;

	for (unsigned d = 8; d >= 2; d--)
		if (img_jpeg_scaled(w, d) >= tw && img_jpeg_scaled(h, d) >= th) {
			n = d;
			break;
		}
	if (n < 2)
		return 0;
	hw = w / n;
	hh = h / n;
	if (hw == 0 || hh == 0)
		return 0;
	/* ImageMagick's own arithmetic: floor(min(w / hw, h / hh)). */
	back = (double)w / (double)hw;
	if ((double)h / (double)hh < back)
		back = (double)h / (double)hh;
	if ((unsigned)back != n)
		return 0;
	len = snprintf(hint, sizeof(hint), "%llux%llu", (unsigned long long)hw,
	    (unsigned long long)hh);
	if (len < 0 || (size_t)len >= sizeof(hint))
		return PI_ERR_INTERNAL;
	return img_check(wand, MagickSetOption(wand, "jpeg:size", hint),
	    "jpeg:size", PI_ERR_INTERNAL);
}

/*
 * Removes every profile but "icc" (when keep_icc) and every property
 * (EXIF, comments, PNG text, dates): nothing but pixels and colour survive.
 */
static int
img_strip(MagickWand *wand, int keep_icc)
{
	char **names;
	size_t n = 0;
	int err;

	names = MagickGetImageProfiles(wand, "*", &n);
	for (size_t i = 0; names != NULL && i < n; i++) {
		unsigned char *p;
		size_t len = 0;

		if (keep_icc && strcasecmp(names[i], "icc") == 0)
			continue;
		p = MagickRemoveImageProfile(wand, names[i], &len);
		if (p != NULL)
			(void)MagickRelinquishMemory(p);
	}
	img_free_list(names, n);
	if ((err = img_check(wand, MagickTrue, "strip profiles",
	    PI_ERR_UNPROCESSABLE)) != 0)
		return err;
	n = 0;
	names = MagickGetImageProperties(wand, "*", &n);
	for (size_t i = 0; names != NULL && i < n; i++)
		(void)MagickDeleteImageProperty(wand, names[i]);
	img_free_list(names, n);
	return img_check(wand, MagickTrue, "strip properties",
	    PI_ERR_UNPROCESSABLE);
}

/*
 * Brings the pixels to 8-bit sRGB or grey: a CMYK, Lab or other exotic
 * image is converted (and its ICC profile, which described the old space,
 * dropped); 16-bit becomes 8-bit, which is what screens show.
 */
static int
img_normalize(MagickWand *wand)
{
	ColorspaceType cs = MagickGetImageColorspace(wand);
	MagickBooleanType ok;
	int err;

	if (cs != sRGBColorspace && cs != RGBColorspace &&
	    cs != GRAYColorspace && cs != LinearGRAYColorspace &&
	    cs != UndefinedColorspace) {
		unsigned char *p;
		size_t len = 0;

		p = MagickRemoveImageProfile(wand, "icc", &len);
		if (p != NULL)
			(void)MagickRelinquishMemory(p);
		ok = MagickTransformImageColorspace(wand, sRGBColorspace);
		if ((err = img_check(wand, ok, "colorspace",
		    PI_ERR_UNPROCESSABLE)) != 0)
			return err;
	}
	ok = MagickSetImageDepth(wand, 8);
	return img_check(wand, ok, "depth", PI_ERR_UNPROCESSABLE);
}

/*
 * Resizes to exactly tw x th (the caller's fit of the stored size; the
 * decoded image may differ by the shrink-on-load and its rounding). A
 * reduction by more than IMG_SHRINK_RATIO in both directions is first
 * area-averaged to IMG_SHRINK_RATIO times the target; IMG_FILTER makes the
 * last step. With area set (the thumbnail), such a reduction is one area
 * average straight to the target instead (see IMG_THUMB_AREA). A no-op
 * when the image already has that size.
 */
static int
img_resize(MagickWand *wand, uint64_t tw, uint64_t th, int area)
{
	uint64_t cw = MagickGetImageWidth(wand), ch = MagickGetImageHeight(wand);
	MagickBooleanType ok;
	int err;

	if (cw == tw && ch == th)
		return 0;
	if (area && cw >= tw * IMG_SHRINK_RATIO && ch >= th * IMG_SHRINK_RATIO) {
		ok = MagickScaleImage(wand, (size_t)tw, (size_t)th);
		return img_check(wand, ok, "shrink", PI_ERR_UNPROCESSABLE);
	}
	if (cw / IMG_SHRINK_RATIO > tw && ch / IMG_SHRINK_RATIO > th) {
		ok = MagickScaleImage(wand, (size_t)(tw * IMG_SHRINK_RATIO),
		    (size_t)(th * IMG_SHRINK_RATIO));
		if ((err = img_check(wand, ok, "shrink",
		    PI_ERR_UNPROCESSABLE)) != 0)
			return err;
	}
	ok = MagickResizeImage(wand, (size_t)tw, (size_t)th, IMG_FILTER, 1.0);
	return img_check(wand, ok, "resize", PI_ERR_UNPROCESSABLE);
}

/* Flattens transparency onto white (JPEG has no alpha channel). */
static int
img_flatten(MagickWand *wand)
{
	PixelWand *white;
	MagickBooleanType ok;
	int err;

	if (MagickGetImageAlphaChannel(wand) == MagickFalse)
		return 0;
	if ((white = NewPixelWand()) == NULL)
		return PI_ERR_NOMEM;
	ok = PixelSetColor(white, "white");
	if (ok != MagickFalse)
		ok = MagickSetImageBackgroundColor(wand, white);
	if (ok != MagickFalse)
		ok = MagickSetImageAlphaChannel(wand, RemoveAlphaChannel);
	white = DestroyPixelWand(white);
	err = img_check(wand, ok, "flatten", PI_ERR_UNPROCESSABLE);
	return err;
}

/*
 * The PNG colour type ("0" grey, "2" RGB, "4" grey + alpha, "6" RGBA) for
 * the wand's 8-bit image, or NULL to let ImageMagick choose (a colormapped
 * image, which it may keep as a palette).
 */
static const char *
img_png_type(MagickWand *wand)
{
	Image *im = GetImageFromMagickWand(wand);
	ColorspaceType cs = MagickGetImageColorspace(wand);
	int grey = cs == GRAYColorspace || cs == LinearGRAYColorspace;
	int alpha = MagickGetImageAlphaChannel(wand) != MagickFalse;

	if (im == NULL || im->storage_class != DirectClass)
		return NULL;
	return grey ? (alpha ? "4" : "0") : (alpha ? "6" : "2");
}

/*
 * Writes the wand's 8-bit DirectClass image as PNG through pngenc.c (see
 * there why not ImageMagick's writer): its pixels exported as grey (the red
 * channel of a grey image), grey + alpha, RGB or RGBA, made 8-bit as
 * ImageMagick's writer makes them, its ICC profile, else its gamma. 0 or a
 * pi_err.
 */
static int
img_write_png(MagickWand *wand, const char *path, const char *ctype)
{
	static const char *const maps[] = { "R", "RA", "RGB", "RGBA" };
	struct pe_image pi;
	unsigned char *pixels = NULL, *icc = NULL;
	unsigned short *band = NULL;
	size_t w = MagickGetImageWidth(wand), h = MagickGetImageHeight(wand);
	size_t len = 0;
	unsigned ch;
	int err;

	memset(&pi, 0, sizeof(pi));
	ch = ctype[0] == '0' ? 1 : ctype[0] == '4' ? 2 : ctype[0] == '2' ? 3 : 4;
	if (w == 0 || h == 0 || w > UINT32_MAX || h > UINT32_MAX ||
	    w > SIZE_MAX / h / ch)
		return PI_ERR_UNPROCESSABLE;
	if ((pixels = bm_alloc(w * h * ch, 64)) == NULL)
		return PI_ERR_NOMEM;
	/* ImageMagick's PNG writer makes 8 bits of Q16 by truncation
	 * (v / 257, rounded down; MagickExportImagePixels' CharPixel rounds
	 * to nearest): 16-bit samples, a band of rows at a time, truncated
	 * here, so the copies keep exactly the pixels they had. */
	if ((band = malloc(sizeof(*band) * w * ch * IMG_PNG_BAND)) == NULL) {
		err = PI_ERR_NOMEM;
		goto out;
	}
	for (size_t y = 0; y < h; y += IMG_PNG_BAND) {
		size_t n = h - y < IMG_PNG_BAND ? h - y : IMG_PNG_BAND;
		unsigned char *d = pixels + y * w * ch;

		if ((err = img_check(wand, MagickExportImagePixels(wand, 0,
		    (ssize_t)y, w, n, maps[ch - 1], ShortPixel, band),
		    "export", PI_ERR_UNPROCESSABLE)) != 0)
			goto out;
		for (size_t i = 0; i < n * w * ch; i++)
			d[i] = (unsigned char)(band[i] / 257);
	}
	icc = MagickGetImageProfile(wand, "icc", &len);
	pi.pixels = pixels;
	pi.width = (uint32_t)w;
	pi.height = (uint32_t)h;
	pi.channels = ch;
	pi.icc = icc;
	pi.icc_len = icc != NULL ? len : 0;
	pi.gamma = MagickGetImageGamma(wand);
	err = pe_write(path, &pi);
out:
	if (icc != NULL)
		(void)MagickRelinquishMemory(icc);
	free(band);
	bm_free(pixels);
	return err;
}

/*
 * Writes the wand's image to path as type (IMG_JPEG with quality and
 * progressive, or IMG_PNG, never interlaced: ImageMagick takes the same
 * scheme as Adam7, a third bigger and slower to write), naming the coder so
 * the path's extension cannot choose another.
 */
static int
img_write(MagickWand *wand, enum img_type type, const char *path,
    size_t quality, int progressive)
{
	static const double sampling_420[] = { 2.0, 1.0, 1.0 };
	const char *coder = img_formats[type].coder;
	InterlaceType il = progressive && type == IMG_JPEG ? PlaneInterlace :
	    NoInterlace;
	char name[IMG_NAME_MAX];
	MagickBooleanType ok;
	int err;

	if (type == IMG_PNG && img_png_type(wand) != NULL)
		return img_write_png(wand, path, img_png_type(wand));
	if ((err = img_name(name, sizeof(name), coder, path, 0)) != 0)
		return err;
	ok = MagickSetImageFormat(wand, coder);
	if (ok != MagickFalse)
		ok = MagickSetInterlaceScheme(wand, il);
	if (ok != MagickFalse)
		ok = MagickSetImageInterlaceScheme(wand, il);
	if (ok != MagickFalse && type == IMG_JPEG) {
		ok = MagickSetCompressionQuality(wand, quality);
		if (ok != MagickFalse)
			ok = MagickSetImageCompressionQuality(wand, quality);
		if (ok != MagickFalse)
			ok = MagickSetSamplingFactors(wand,
			    PI_ARRAY_LEN(sampling_420), sampling_420);
	}
	if (ok != MagickFalse && type == IMG_PNG) {
		ok = MagickSetCompressionQuality(wand, IMG_PNG_QUALITY);
		if (ok != MagickFalse)
			ok = MagickSetImageCompressionQuality(wand,
			    IMG_PNG_QUALITY);
		/* Naming the colour type spares ImageMagick part of its
		 * palette search (measured: 1024x496 grey, 104 -> 75 ms);
		 * an image with a colormap keeps its palette. */
		if (ok != MagickFalse && img_png_type(wand) != NULL)
			ok = MagickSetOption(wand, "png:color-type",
			    img_png_type(wand));
		if (ok != MagickFalse && img_png_type(wand) != NULL)
			ok = MagickSetOption(wand, "png:bit-depth", "8");
		/* StripImage-style exclusion, but keeping iCCP. */
		if (ok != MagickFalse)
			ok = MagickSetOption(wand, "png:exclude-chunk",
			    IMG_PNG_EXCLUDE);
		if (ok != MagickFalse)
			ok = MagickSetImageArtifact(wand, "png:exclude-chunk",
			    IMG_PNG_EXCLUDE);
	}
	if ((err = img_check(wand, ok, "encoder options",
	    PI_ERR_INTERNAL)) != 0)
		return err;
	ok = MagickWriteImage(wand, name);
	return img_check(wand, ok, "write", PI_ERR_IO);
}

/*
 * Makes wand's image from 8-bit pixels, channels 1 (grey, kept grey) or 3
 * (RGB), as jpegdec.c and dicom.cc hand them over. 0 or a pi_err.
 */
static int
img_constitute(MagickWand *wand, const unsigned char *pixels, uint64_t w,
    uint64_t h, int channels)
{
	MagickBooleanType ok;
	int err;

	ok = MagickConstituteImage(wand, (size_t)w, (size_t)h,
	    channels == 1 ? "I" : "RGB", CharPixel, pixels);
	if ((err = img_check(wand, ok, "constitute",
	    PI_ERR_UNPROCESSABLE)) != 0 || channels != 1)
		return err;
	ok = MagickSetImageColorspace(wand, GRAYColorspace);
	return img_check(wand, ok, "grey", PI_ERR_UNPROCESSABLE);
}

/*
 * Decodes the JPEG at path (probed as info) through jpegdec.c at the
 * smallest k/8 scale that covers sw x sh (as stored), into *wand as 8-bit
 * pixels with the ICC profile, turned upright for the probed EXIF
 * orientation and reduced to exactly sw x sh (sh x sw for a quarter turn).
 * The decoded size must be the probed size at that scale. Sets *done to 0 (and leaves *wand
 * NULL) for a JPEG jpegdec leaves to ImageMagick. *wand is the caller's to
 * destroy. Returns 0 or a pi_err.
 */
static int
img_jpeg_read(const char *path, const struct img_info *info, uint64_t sw,
    uint64_t sh, MagickWand **wand, int *done)
{
	struct jd_limits lim;
	struct jd_image img;
	struct stat st;
	void *map = MAP_FAILED;
	MagickBooleanType ok;
	int fd, err, turned = info->orientation >= 5 && info->orientation <= 8;

	*done = 0;
	memset(&img, 0, sizeof(img));
	memset(&lim, 0, sizeof(lim));
	if ((err = img_begin()) != 0)
		return err;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0 ||
	    st.st_size <= 0) {
		log_error("imaging: %s: %s", path, strerror(errno));
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}
	if ((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
	    0)) == MAP_FAILED) {
		log_error("imaging: mmap %s: %s", path, strerror(errno));
		err = PI_ERR_NOMEM;
		goto out;
	}
	lim.memory_bytes = GetMagickResourceLimit(MemoryResource);
	lim.time_seconds = img_time_limit;
	lim.max_scans = IMG_JPEG_MAX_SCANS;
	/* Upright before ImageMagick sees it (see jpegdec.c). */
	lim.orientation = info->orientation;
	if ((err = jd_decode(map, (size_t)st.st_size, sw, sh, &lim,
	    &img)) != 0)
		goto out;
	if (img.fallback != NULL) {
		log_debug("imaging: %s left to ImageMagick: %s", path,
		    img.fallback);
		goto out;
	}
	if ((turned ? img.height : img.width) !=
	    (info->width * img.scale_num + 7) / 8 ||
	    (turned ? img.width : img.height) !=
	    (info->height * img.scale_num + 7) / 8) {
		log_warn("imaging: decoded %ux%u at %u/8, probed %llux%llu",
		    (unsigned)img.width, (unsigned)img.height, img.scale_num,
		    (unsigned long long)info->width,
		    (unsigned long long)info->height);
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}
	(void)munmap(map, (size_t)st.st_size);
	map = MAP_FAILED;
	if (turned) {
		uint64_t x = sw;

		sw = sh;
		sh = x;
	}
	/* The last reduction, on the 8-bit rows (see jpegdec.c). */
	if (sw > img.width || sh > img.height) {
		log_warn("imaging: decoded %ux%u, short of %llux%llu",
		    (unsigned)img.width, (unsigned)img.height,
		    (unsigned long long)sw, (unsigned long long)sh);
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}
	if ((err = jd_shrink(&img, (uint32_t)sw, (uint32_t)sh)) != 0)
		goto out;
	if ((*wand = NewMagickWand()) == NULL) {
		err = PI_ERR_NOMEM;
		goto out;
	}
	if ((err = img_constitute(*wand, img.pixels, img.width, img.height,
	    img.channels)) != 0)
		goto out;
	bm_free(img.pixels);
	img.pixels = NULL;
	if (img.icc != NULL) {
		ok = MagickSetImageProfile(*wand, "icc", img.icc, img.icc_len);
		if ((err = img_check(*wand, ok, "icc", PI_ERR_UNPROCESSABLE)) != 0)
			goto out;
	}
	*done = 1;
out:
	jd_free(&img);
	if (map != MAP_FAILED)
		(void)munmap(map, (size_t)st.st_size);
	if (fd >= 0)
		(void)close(fd);
	return err;
}

int
img_derive(const char *path, const struct img_info *info,
    struct img_outputs *out)
{
	const struct img_format *fmt;
	enum img_type otype;
	char name[IMG_NAME_MAX];
	MagickWand *wand = NULL, *first;
	MagickBooleanType ok;
	uint64_t dw, dh, tw, th, hw, hh, cw, ch;
	int err, turned, display, thumb, jpeg_done;

	if (info == NULL || out == NULL)
		return PI_ERR_INTERNAL;
	display = !(out->skip & IMG_SKIP_DISPLAY);
	thumb = !(out->skip & IMG_SKIP_THUMB);
	if ((!display && !thumb) || (display && out->display_path == NULL) ||
	    (thumb && out->thumb_path == NULL) || info->width == 0 ||
	    info->height == 0 || (fmt = img_format(info->type)) == NULL ||
	    fmt->coder == NULL)
		return PI_ERR_INTERNAL;
	otype = info->type == IMG_PNG ? IMG_PNG : IMG_JPEG;
	/* The sizes as displayed (EXIF orientations 5..8 turn the image by a
	 * quarter), from the stored size; the thumbnail fits the display
	 * copy. */
	turned = info->orientation >= 5 && info->orientation <= 8;
	img_fit(turned ? info->height : info->width,
	    turned ? info->width : info->height, IMG_DISPLAY_MAX, &dw, &dh);
	img_fit(dw, dh, IMG_THUMB_MAX, &tw, &th);
	/* What the decode must at least deliver, as stored. */
	hw = display ? dw : tw;
	hh = display ? dh : th;
	if (turned) {
		uint64_t x = hw;

		hw = hh;
		hh = x;
	}
	jpeg_done = 0;
	if (info->type == IMG_JPEG && (err = img_jpeg_read(path, info, hw,
	    hh, &wand, &jpeg_done)) != 0)
		goto out;
	if (jpeg_done) {
		/* Pixels only, already upright (img_jpeg_read()): auto-orient
		 * below has nothing to do. */
		ok = MagickSetImageOrientation(wand, TopLeftOrientation);
		if ((err = img_check(wand, ok, "orientation",
		    PI_ERR_UNPROCESSABLE)) != 0)
			goto out;
		goto decoded;
	}
	if ((err = img_open(fmt, path, name, sizeof(name), &wand)) != 0)
		goto out;
	if (info->type == IMG_JPEG && (err = img_jpeg_hint(wand, info->width,
	    info->height, hw, hh)) != 0)
		goto out;
	/* A camera's progressive JPEG has about ten scans; thousands of tiny
	 * ones make libjpeg spend seconds of CPU where ImageMagick's time limit
	 * cannot interrupt it. libjpeg refuses the file past this count. */
	if (info->type == IMG_JPEG &&
	    (err = img_check(wand, MagickSetOption(wand, "jpeg:max-scan-number",
	    IMG_JPEG_MAX_SCANS_S), "jpeg:max-scan-number", PI_ERR_INTERNAL)) != 0)
		goto out;

	/* The one decode. */
	ok = MagickReadImage(wand, name);
	if ((err = img_check(wand, ok, "read", PI_ERR_UNPROCESSABLE)) != 0)
		goto out;
	if (MagickGetNumberImages(wand) < 1) {
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}
	MagickSetFirstIterator(wand);
	if (MagickGetNumberImages(wand) > 1) {
		/* "[0]" should have left one frame; keep only the first. */
		if ((first = MagickGetImage(wand)) == NULL) {
			err = img_check(wand, MagickFalse, "first frame",
			    PI_ERR_NOMEM);
			goto out;
		}
		wand = DestroyMagickWand(wand);
		wand = first;
	}

decoded:
	/* Upright, then nothing but pixels and the ICC profile. */
	ok = MagickAutoOrientImage(wand);
	if ((err = img_check(wand, ok, "auto-orient",
	    PI_ERR_UNPROCESSABLE)) != 0)
		goto out;
	ok = MagickSetImageOrientation(wand, TopLeftOrientation);
	if ((err = img_check(wand, ok, "orientation",
	    PI_ERR_UNPROCESSABLE)) != 0 ||
	    (err = img_strip(wand, 1)) != 0 ||
	    (err = img_normalize(wand)) != 0)
		goto out;
	/* The sizes below come from the probe; the decoded image (only
	 * scaled on load) must have their shape, up to rounding, or the
	 * resize would distort it. */
	cw = MagickGetImageWidth(wand);
	ch = MagickGetImageHeight(wand);
	if (cw == 0 || ch == 0 || (cw * dh > ch * dw ? cw * dh - ch * dw :
	    ch * dw - cw * dh) > 2 * (cw + ch + dw + dh)) {
		log_warn("imaging: decoded %llux%llu does not match the probed "
		    "shape %llux%llu", (unsigned long long)cw,
		    (unsigned long long)ch, (unsigned long long)dw,
		    (unsigned long long)dh);
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}

	/* Display copy (flattened after the resize: fewer pixels; a no-op
	 * the second time). */
	if (display && ((err = img_resize(wand, dw, dh, 0)) != 0 ||
	    (otype == IMG_JPEG && (err = img_flatten(wand)) != 0) ||
	    (err = img_write(wand, otype, out->display_path,
	    IMG_DISPLAY_QUALITY, 1)) != 0))
		goto out;

	/* Thumbnail, from the display copy still in memory. */
	if (thumb && ((err = img_resize(wand, tw, th, 1)) != 0 ||
	    (otype == IMG_JPEG && (err = img_flatten(wand)) != 0) ||
	    (err = img_write(wand, otype, out->thumb_path, IMG_THUMB_QUALITY,
	    0)) != 0))
		goto out;

	out->display_type = otype;
	out->thumb_type = otype;
	out->display_width = display ? dw : 0;
	out->display_height = display ? dh : 0;
	out->thumb_width = thumb ? tw : 0;
	out->thumb_height = thumb ? th : 0;
	err = 0;
out:
	if (wand != NULL)
		wand = DestroyMagickWand(wand);
	return err;
}

int
img_derive_pixels(const unsigned char *pixels, uint64_t w, uint64_t h,
    int channels, struct img_outputs *out)
{
	MagickWand *wand = NULL;
	uint64_t dw, dh, tw, th;
	int err;

	if (pixels == NULL || out == NULL || w == 0 || h == 0 ||
	    (channels != 1 && channels != 3) || out->display_path == NULL ||
	    out->thumb_path == NULL)
		return PI_ERR_INTERNAL;
	img_fit(w, h, IMG_DISPLAY_MAX, &dw, &dh);
	img_fit(dw, dh, IMG_THUMB_MAX, &tw, &th);
	if ((err = img_begin()) != 0)
		goto out;
	if ((wand = NewMagickWand()) == NULL) {
		err = PI_ERR_NOMEM;
		goto out;
	}
	if ((err = img_constitute(wand, pixels, w, h, channels)) != 0 ||
	    (err = img_normalize(wand)) != 0 ||
	    (err = img_resize(wand, dw, dh, 0)) != 0 ||
	    (err = img_write(wand, IMG_JPEG, out->display_path,
	    IMG_DISPLAY_QUALITY, 1)) != 0 ||
	    (err = img_resize(wand, tw, th, 1)) != 0 ||
	    (err = img_write(wand, IMG_JPEG, out->thumb_path, IMG_THUMB_QUALITY,
	    0)) != 0)
		goto out;
	out->display_type = IMG_JPEG;
	out->thumb_type = IMG_JPEG;
	out->display_width = dw;
	out->display_height = dh;
	out->thumb_width = tw;
	out->thumb_height = th;
	err = 0;
out:
	if (wand != NULL)
		wand = DestroyMagickWand(wand);
	return err;
}
