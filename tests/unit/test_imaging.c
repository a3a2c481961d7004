/* test_imaging.c — imaging.c against real files made at test time.
 *
 * Inputs are generated into a mkdtemp() directory by MagickWand in a child
 * process (ImageMagick starts once per process, and this one then runs under
 * polaimg's restrictive policy, which forbids the "xc:" and "gradient:"
 * generators); EXIF and ICC segments are written into the JPEGs byte by byte
 * here, so the test needs no command-line tool, no exiftool and no ICC file
 * from the system. Outputs are read back with MagickWand and by walking
 * their bytes. When run by `make check`, top_srcdir is set and the
 * test runs under conf/policy.xml, which also checks that the policy lets
 * polaimg's own formats through and nothing else.
 */
#include "bigmem.h"
#include "common.h"
#include "imaging.h"
#include "jpegdec.h"
#include "slurp.h"
#include "tap.h"

#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ImageMagick 6's opencl.h declares GetDefaultOpenCLEnv() without a
 * prototype; the warning is theirs, not ours. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <wand/MagickWand.h>
#pragma GCC diagnostic pop

static char dir[64];

/* A real ICC profile (Debian's libgs-common). */
#define PNG_TEST_ICC "/usr/share/color/icc/ghostscript/srgb.icc"

/* dir + "/" + name into a static ring of buffers. */
static const char *
tpath(const char *name)
{
	static char ring[8][256];
	static int next;
	char *p = ring[next++ % 8];
	int n = snprintf(p, sizeof(ring[0]), "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= sizeof(ring[0])) {
		fprintf(stderr, "path too long\n");
		exit(2);
	}
	return p;
}

static int
spit(const char *path, const void *a, size_t alen, const void *b, size_t blen)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = fwrite(a, 1, alen, f) == alen &&
	    (blen == 0 || fwrite(b, 1, blen, f) == blen);
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int
spit_str(const char *path, const char *s)
{
	return spit(path, s, strlen(s), NULL, 0);
}

static int
contains(const unsigned char *buf, size_t len, const void *needle, size_t n)
{
	return memmem(buf, len, needle, n) != NULL;
}

static int
file_contains(const char *path, const char *needle)
{
	size_t len;
	unsigned char *buf = slurp(path, &len);
	int r = buf != NULL && contains(buf, len, needle, strlen(needle));

	free(buf);
	return r;
}

/* ---- bytes of EXIF, ICC and PNG headers ---- */

struct bytes {
	unsigned char b[1024];
	size_t n;
};

static void
put8(struct bytes *b, unsigned v)
{
	if (b->n < sizeof(b->b))
		b->b[b->n++] = (unsigned char)v;
}

static void
put16(struct bytes *b, unsigned v)
{
	put8(b, v >> 8);
	put8(b, v);
}

static void
put32(struct bytes *b, uint32_t v)
{
	put16(b, v >> 16);
	put16(b, v & 0xffff);
}

static void
putn(struct bytes *b, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put8(b, ((const unsigned char *)p)[i]);
}

/* One 12-byte IFD entry whose value (or offset) is the 4 bytes v. */
static void
ifd_entry(struct bytes *b, unsigned tag, unsigned type, uint32_t count,
    const unsigned char v[4])
{
	put16(b, tag);
	put16(b, type);
	put32(b, count);
	putn(b, v, 4);
}

static void
ifd_entry32(struct bytes *b, unsigned tag, unsigned type, uint32_t count,
    uint32_t v)
{
	unsigned char x[4] = { v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff,
	    v & 0xff };

	ifd_entry(b, tag, type, count, x);
}

static void
rationals(struct bytes *b, uint32_t a, uint32_t c, uint32_t d)
{
	put32(b, a);
	put32(b, 1);
	put32(b, c);
	put32(b, 1);
	put32(b, d);
	put32(b, 100);
}

/*
 * An APP1 "Exif" segment, big-endian TIFF: IFD0 with Orientation, an Exif
 * IFD with DateTimeOriginal (and OffsetTimeOriginal when offset is set), and
 * a GPS IFD with latitude and longitude.
 */
static void
exif_app1(struct bytes *out, unsigned orientation, const char *date,
    const char *offset)
{
	struct bytes t = { .n = 0 };
	uint32_t ifd0 = 8, exif, exif_data, gps, gps_data;
	unsigned ne = offset != NULL ? 2 : 1;
	unsigned char v[4];

	exif = ifd0 + 2 + 12 * 3 + 4;
	exif_data = exif + 2 + 12 * ne + 4;
	gps = exif_data + 20 + (offset != NULL ? 8 : 0);
	gps_data = gps + 2 + 12 * 5 + 4;

	putn(&t, "MM\0\x2a", 4);
	put32(&t, ifd0);
	put16(&t, 3);
	v[0] = 0; v[1] = (unsigned char)orientation; v[2] = v[3] = 0;
	ifd_entry(&t, 0x0112, 3, 1, v);           /* Orientation, SHORT */
	ifd_entry32(&t, 0x8769, 4, 1, exif);      /* ExifIFDPointer */
	ifd_entry32(&t, 0x8825, 4, 1, gps);       /* GPSInfoIFDPointer */
	put32(&t, 0);
	put16(&t, (unsigned)ne);                  /* Exif IFD */
	ifd_entry32(&t, 0x9003, 2, 20, exif_data);
	if (offset != NULL)
		ifd_entry32(&t, 0x9011, 2, 7, exif_data + 20);
	put32(&t, 0);
	putn(&t, date, 19);
	put8(&t, 0);
	if (offset != NULL) {
		putn(&t, offset, 6);
		put8(&t, 0);
		put8(&t, 0);                      /* pad to even */
	}
	put16(&t, 5);                             /* GPS IFD */
	v[0] = 2; v[1] = 2; v[2] = 0; v[3] = 0;
	ifd_entry(&t, 0x0000, 1, 4, v);           /* GPSVersionID */
	v[0] = 'N'; v[1] = 0;
	ifd_entry(&t, 0x0001, 2, 2, v);
	ifd_entry32(&t, 0x0002, 5, 3, gps_data);
	v[0] = 'E';
	ifd_entry(&t, 0x0003, 2, 2, v);
	ifd_entry32(&t, 0x0004, 5, 3, gps_data + 24);
	put32(&t, 0);
	rationals(&t, 48, 51, 2400);
	rationals(&t, 2, 21, 700);

	out->n = 0;
	put16(out, 0xffe1);
	put16(out, (unsigned)(2 + 6 + t.n));
	putn(out, "Exif\0\0", 6);
	putn(out, t.b, t.n);
}

/* A structurally valid 132-byte RGB display ICC profile (header, no tags). */
static void
icc_profile(struct bytes *p)
{
	p->n = 0;
	put32(p, 132);
	putn(p, "poli", 4);                       /* CMM */
	put32(p, 0x02100000);                     /* version 2.1 */
	putn(p, "mntrRGB XYZ ", 12);
	put16(p, 2024); put16(p, 1); put16(p, 2);
	put16(p, 3); put16(p, 4); put16(p, 5);
	putn(p, "acsp", 4);
	while (p->n < 68)
		put8(p, 0);
	put32(p, 0x0000f6d6);                     /* D50 */
	put32(p, 0x00010000);
	put32(p, 0x0000d32d);
	putn(p, "poli", 4);                       /* creator */
	while (p->n < 128)
		put8(p, 0);
	put32(p, 0);                              /* tag count */
}

static void
icc_app2(struct bytes *out, const struct bytes *icc)
{
	out->n = 0;
	put16(out, 0xffe2);
	put16(out, (unsigned)(2 + 12 + 2 + icc->n));
	putn(out, "ICC_PROFILE\0", 12);
	put8(out, 1);
	put8(out, 1);
	putn(out, icc->b, icc->n);
}

/* Writes src with the segments a and b inserted right after SOI. */
static int
jpeg_insert(const char *src, const char *dst, const struct bytes *a,
    const struct bytes *b)
{
	size_t len;
	unsigned char *buf = slurp(src, &len);
	unsigned char *all;
	size_t n = 0;
	int r = -1;

	if (buf == NULL || len < 4 || buf[0] != 0xff || buf[1] != 0xd8)
		goto out;
	if ((all = malloc(len + a->n + (b ? b->n : 0))) == NULL)
		goto out;
	memcpy(all, buf, 2);
	n = 2;
	memcpy(all + n, a->b, a->n);
	n += a->n;
	if (b != NULL) {
		memcpy(all + n, b->b, b->n);
		n += b->n;
	}
	memcpy(all + n, buf + 2, len - 2);
	n += len - 2;
	r = spit(dst, all, n, NULL, 0);
	free(all);
out:
	free(buf);
	return r;
}

static uint32_t
crc32_png(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return c ^ 0xffffffffu;
}

/* Copies a PNG, claiming w x h in its IHDR (CRC fixed), pixels unchanged. */
static int
png_patch(const char *src, const char *dst, uint32_t w, uint32_t h)
{
	size_t len;
	unsigned char *buf = slurp(src, &len);
	uint32_t crc;
	int r = -1;

	if (buf == NULL || len < 33 || memcmp(buf + 12, "IHDR", 4) != 0)
		goto out;
	for (int i = 0; i < 4; i++) {
		buf[16 + i] = (unsigned char)(w >> (24 - 8 * i));
		buf[20 + i] = (unsigned char)(h >> (24 - 8 * i));
	}
	crc = crc32_png(buf + 12, 17);
	for (int i = 0; i < 4; i++)
		buf[29 + i] = (unsigned char)(crc >> (24 - 8 * i));
	r = spit(dst, buf, len, NULL, 0);
out:
	free(buf);
	return r;
}

/* Copies the first num/den of a file. */
static int
truncate_copy(const char *src, const char *dst, size_t num, size_t den)
{
	size_t len;
	unsigned char *buf = slurp(src, &len);
	int r = -1;

	if (buf != NULL)
		r = spit(dst, buf, len * num / den, NULL, 0);
	free(buf);
	return r;
}

/* ---- reading outputs back ---- */

struct jpeg_facts {
	int sof;             /* 0xc0, 0xc2 … or 0 */
	int h0, v0, h1, v1;  /* sampling of the first two components */
	int app1_exif, app2_icc;
	int app1, com;       /* any APP1 (EXIF, XMP), any comment */
};

/* Walks the JPEG markers up to SOS. Returns 0 if the structure is sound. */
static int
jpeg_scan(const unsigned char *b, size_t len, struct jpeg_facts *f)
{
	size_t i = 2;

	memset(f, 0, sizeof(*f));
	if (len < 4 || b[0] != 0xff || b[1] != 0xd8)
		return -1;
	while (i + 4 <= len) {
		unsigned m, seg;

		if (b[i] != 0xff)
			return -1;
		m = b[i + 1];
		if (m == 0xff) {
			i++;
			continue;
		}
		seg = (unsigned)b[i + 2] << 8 | b[i + 3];
		if (i + 2 + seg > len)
			return -1;
		if (m == 0xe1)
			f->app1 = 1;
		if (m == 0xfe)
			f->com = 1;
		if (m == 0xe1 && seg >= 8 && memcmp(b + i + 4, "Exif\0\0", 6) == 0)
			f->app1_exif = 1;
		if (m == 0xe2 && seg >= 14 && memcmp(b + i + 4, "ICC_PROFILE", 11) == 0)
			f->app2_icc = 1;
		if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 &&
		    m != 0xcc && f->sof == 0 && seg >= 14) {
			f->sof = (int)m;
			f->h0 = b[i + 11] >> 4;
			f->v0 = b[i + 11] & 15;
			f->h1 = b[i + 14] >> 4;
			f->v1 = b[i + 14] & 15;
		}
		if (m == 0xda)
			return 0;
		i += 2 + seg;
	}
	return -1;
}

/* Whether a PNG file has a chunk of the given type (walks the chunks). */
static int
png_has_chunk(const char *path, const char *type)
{
	size_t len, i = 8;
	unsigned char *b = slurp(path, &len);
	int found = 0;

	while (b != NULL && i + 12 <= len) {
		size_t n = (size_t)b[i] << 24 | (size_t)b[i + 1] << 16 |
		    (size_t)b[i + 2] << 8 | b[i + 3];

		if (memcmp(b + i + 4, type, 4) == 0)
			found = 1;
		if (n > len - i - 12)
			break;
		i += 12 + n;
	}
	free(b);
	return found;
}

struct out_facts {
	int ok;
	char format[16];
	unsigned long w, h, depth;
	int alpha;
	size_t exif_props, exif_profile, icc_len;
	unsigned char icc[256];
	int orientation;
	ColorspaceType colorspace;
};

/* Reads an output back with MagickWand (coder named, as polaimg does). */
static void
out_read(const char *coder, const char *path, struct out_facts *o)
{
	MagickWand *w = NewMagickWand();
	char name[512];
	char **props;
	unsigned char *p;
	size_t n = 0;
	char *fmt;

	memset(o, 0, sizeof(*o));
	snprintf(name, sizeof(name), "%s:%s", coder, path);
	if (MagickReadImage(w, name) == MagickFalse)
		goto out;
	o->ok = 1;
	fmt = MagickGetImageFormat(w);
	snprintf(o->format, sizeof(o->format), "%s", fmt ? fmt : "");
	MagickRelinquishMemory(fmt);
	o->w = MagickGetImageWidth(w);
	o->h = MagickGetImageHeight(w);
	o->depth = MagickGetImageDepth(w);
	o->alpha = MagickGetImageAlphaChannel(w) != MagickFalse;
	o->orientation = (int)MagickGetImageOrientation(w);
	o->colorspace = MagickGetImageColorspace(w);
	props = MagickGetImageProperties(w, "exif:*", &n);
	o->exif_props = n;
	for (size_t i = 0; props != NULL && i < n; i++)
		MagickRelinquishMemory(props[i]);
	MagickRelinquishMemory(props);
	p = MagickGetImageProfile(w, "exif", &n);
	o->exif_profile = p != NULL ? n : 0;
	MagickRelinquishMemory(p);
	p = MagickGetImageProfile(w, "icc", &n);
	if (p != NULL && n <= sizeof(o->icc)) {
		memcpy(o->icc, p, n);
		o->icc_len = n;
	} else if (p != NULL) {
		o->icc_len = n;
	}
	MagickRelinquishMemory(p);
out:
	DestroyMagickWand(w);
}

/* The colour at x,y of an output as 0..1 values. */
static int
out_pixel(const char *coder, const char *path, long x, long y, double rgba[4])
{
	MagickWand *w = NewMagickWand();
	PixelWand *px = NewPixelWand();
	char name[512];
	int r = -1;

	snprintf(name, sizeof(name), "%s:%s", coder, path);
	if (MagickReadImage(w, name) != MagickFalse &&
	    MagickGetImagePixelColor(w, x, y, px) != MagickFalse) {
		rgba[0] = PixelGetRed(px);
		rgba[1] = PixelGetGreen(px);
		rgba[2] = PixelGetBlue(px);
		rgba[3] = PixelGetAlpha(px);
		r = 0;
	}
	DestroyPixelWand(px);
	DestroyMagickWand(w);
	return r;
}

static int
is_red(const double c[4])
{
	return c[0] > 0.8 && c[1] < 0.2 && c[2] < 0.2;
}

static int
is_blue(const double c[4])
{
	return c[0] < 0.2 && c[1] < 0.2 && c[2] > 0.8;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the tests ---- */

/*
 * In a child process (ImageMagick starts once per process) whose pixel
 * caches may hold 80 MiB and never go to disk, derives hint.jpg (4200x2800):
 * 94 MB of pixels decoded in full, 24 MB when jpeg:size makes libjpeg
 * decode at half size (the resize then holds about 69 MB at its peak).
 * Returns 0 if the display copy came out 2048x1365.
 */
static int
derive_small_memory(const char *policy_dir, const char *file, uint64_t mib,
    uint64_t dw, uint64_t dh)
{
	int status;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		struct img_limits l = { .max_pixels = 100000000,
		    .memory_bytes = mib << 20, .map_bytes = mib << 20,
		    .disk_bytes = 0, .policy_dir = policy_dir };
		struct img_outputs out = { .display_path = tpath("mem.display"),
		    .thumb_path = tpath("mem.thumb") };
		struct img_info info;

		if (img_init(&l) != 0 ||
		    img_probe(tpath(file), IMG_JPEG, 100000000, &info) != 0 ||
		    img_derive(tpath(file), &info, &out) != 0)
			_exit(1);
		_exit(out.display_width == dw && out.display_height == dh ?
		    0 : 2);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * img_init() in a child process (ImageMagick starts once per process), with
 * policy_dir and, if home is set, HOME. Returns img_init's result.
 */
static int
init_in_child(const char *policy_dir, const char *home)
{
	int status;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) < 0)
		return 1;
	if (pid == 0) {
		struct img_limits l = { .max_pixels = 1000, .disk_bytes = 0,
		    .policy_dir = policy_dir };
		int r;

		if (home != NULL)
			setenv("HOME", home, 1);
		r = img_init(&l);
		_exit(r == 0 ? 0 : r == PI_ERR_INTERNAL ? 11 : 1);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status) == 0 ? 0 :
	    WEXITSTATUS(status) == 11 ? PI_ERR_INTERNAL : 1;
}

static void
test_sniff(void)
{
	static const struct {
		const char *bytes;
		size_t len;
		enum img_type want;
		const char *name;
	} cases[] = {
		{ "\xff\xd8\xff\xe0\0\x10JFIF", 10, IMG_JPEG, "JPEG" },
		{ "\xff\xd8\xff", 3, IMG_JPEG, "JPEG, 3 bytes" },
		{ "\xff\xd8", 2, IMG_UNKNOWN, "JPEG cut to 2 bytes" },
		{ "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16, IMG_PNG, "PNG" },
		{ "\x89PNG\r\n\x1a\x0a", 8, IMG_PNG, "PNG, 8 bytes" },
		{ "\x89PNG\r\n\x1a", 7, IMG_UNKNOWN, "PNG cut to 7 bytes" },
		{ "\x89PNG\n\n\x1a\n", 8, IMG_UNKNOWN, "PNG with a bad byte" },
		{ "II*\0\x08\0\0\0", 8, IMG_TIFF, "TIFF little-endian" },
		{ "MM\0*\0\0\0\x08", 8, IMG_TIFF, "TIFF big-endian" },
		{ "II*", 3, IMG_UNKNOWN, "TIFF cut to 3 bytes" },
		{ "II+\0", 4, IMG_UNKNOWN, "BigTIFF is not accepted" },
		{ "RIFF\x24\0\0\0WEBPVP8 ", 16, IMG_WEBP, "WebP" },
		{ "RIFF\x24\0\0\0WEBP", 12, IMG_WEBP, "WebP, 12 bytes" },
		{ "RIFF\x24\0\0\0WEB", 11, IMG_UNKNOWN, "WebP cut to 11 bytes" },
		{ "RIFF\x24\0\0\0WAVEfmt ", 16, IMG_UNKNOWN, "RIFF WAVE" },
		{ "GIF89a\x01\0\x01\0", 10, IMG_UNKNOWN, "GIF89a" },
		{ "GIF87a\x01\0\x01\0", 10, IMG_UNKNOWN, "GIF87a" },
		{ "<svg xmlns=\"http://www.w3.org/2000/svg\">", 40, IMG_UNKNOWN,
		  "SVG" },
		{ "<?xml version=\"1.0\"?><svg>", 26, IMG_UNKNOWN, "SVG with XML "
		  "declaration" },
		{ "%PDF-1.7\n", 9, IMG_UNKNOWN, "PDF" },
		{ "%!PS-Adobe-3.0", 14, IMG_UNKNOWN, "PostScript" },
		{ "push graphic-context\nviewbox 0 0 1 1\n", 37, IMG_UNKNOWN,
		  "MVG" },
		{ "viewbox 0 0 640 480\n", 20, IMG_UNKNOWN, "MVG viewbox" },
		{ "<!DOCTYPE html>", 15, IMG_UNKNOWN, "HTML" },
		{ "BM\x36\0\0\0", 6, IMG_UNKNOWN, "BMP" },
		{ "", 0, IMG_UNKNOWN, "empty" },
	};

	for (size_t i = 0; i < PI_ARRAY_LEN(cases); i++)
		is_int(img_sniff((const unsigned char *)cases[i].bytes,
		    cases[i].len), cases[i].want, cases[i].name);
	is_int(img_sniff(NULL, 12), IMG_UNKNOWN, "NULL buffer");
}

static void
test_names(void)
{
	is_str(img_mime(IMG_JPEG), "image/jpeg", "mime jpeg");
	is_str(img_mime(IMG_PNG), "image/png", "mime png");
	is_str(img_mime(IMG_TIFF), "image/tiff", "mime tiff");
	is_str(img_mime(IMG_WEBP), "image/webp", "mime webp");
	ok(img_mime(IMG_UNKNOWN) == NULL, "mime unknown is NULL");
	ok(img_mime((enum img_type)99) == NULL, "mime out of range is NULL");
	is_str(img_ext(IMG_JPEG), "jpg", "ext jpg");
	is_str(img_ext(IMG_PNG), "png", "ext png");
	is_str(img_ext(IMG_TIFF), "tif", "ext tif");
	is_str(img_ext(IMG_WEBP), "webp", "ext webp");
	ok(img_ext(IMG_UNKNOWN) == NULL, "ext unknown is NULL");
	is_int(img_type_from_mime("image/jpeg"), IMG_JPEG, "from image/jpeg");
	is_int(img_type_from_mime("IMAGE/JPG"), IMG_JPEG, "from IMAGE/JPG");
	is_int(img_type_from_mime("image/png"), IMG_PNG, "from image/png");
	is_int(img_type_from_mime("Image/Tiff"), IMG_TIFF, "from Image/Tiff");
	is_int(img_type_from_mime("image/webp"), IMG_WEBP, "from image/webp");
	is_int(img_type_from_mime("image/gif"), IMG_UNKNOWN, "gif refused");
	is_int(img_type_from_mime("image/svg+xml"), IMG_UNKNOWN, "svg refused");
	is_int(img_type_from_mime("image/jpeg2"), IMG_UNKNOWN, "no prefix match");
	is_int(img_type_from_mime(""), IMG_UNKNOWN, "empty mime");
	is_int(img_type_from_mime(NULL), IMG_UNKNOWN, "NULL mime");
}

/* A new wand holding spec ("xc:red", "gradient:red-blue") at w x h. */
static MagickWand *
gen_new(size_t w, size_t h, const char *spec)
{
	MagickWand *m = NewMagickWand();

	if (MagickSetSize(m, w, h) == MagickFalse ||
	    MagickReadImage(m, spec) == MagickFalse)
		m = DestroyMagickWand(m);
	return m;
}

/* Pastes spec at w x h over m's top-left corner. */
static int
gen_paste(MagickWand *m, size_t w, size_t h, const char *spec)
{
	MagickWand *p = gen_new(w, h, spec);
	int r = p != NULL && MagickCompositeImage(m, p, OverCompositeOp, 0, 0)
	    != MagickFalse ? 0 : -1;

	if (p != NULL)
		DestroyMagickWand(p);
	return r;
}

/* Writes every image of m (and destroys m) as coder:dir/file. */
static int
gen_write(MagickWand *m, const char *coder, const char *file, size_t quality)
{
	char name[512];
	int r = -1;

	if (m == NULL)
		return -1;
	snprintf(name, sizeof(name), "%s:%s", coder, tpath(file));
	MagickResetIterator(m);
	if ((quality == 0 || MagickSetImageCompressionQuality(m, quality)) &&
	    MagickWriteImages(m, name, MagickTrue) != MagickFalse)
		r = 0;
	DestroyMagickWand(m);
	return r;
}

/* In the generator child: every input that MagickWand makes. */
static int
gen_images(void)
{
	MagickWand *m;
	int r = 0;

	r |= gen_write(gen_new(3000, 2000, "gradient:red-blue"), "JPEG",
	    "land.jpg", 90);
	r |= gen_write(gen_new(2000, 3000, "gradient:green-yellow"), "JPEG",
	    "port.jpg", 90);
	r |= gen_write(gen_new(4200, 2800, "gradient:orange-purple"), "JPEG",
	    "hint.jpg", 90);
	/* Blue with a red marker in the stored top-left corner. */
	if ((m = gen_new(600, 400, "xc:blue")) == NULL ||
	    gen_paste(m, 120, 80, "xc:red") != 0 ||
	    MagickCommentImage(m, "patient Jane Roe") == MagickFalse)
		r = -1;
	r |= gen_write(m, "JPEG", "marker.jpg", 95);
	/* Transparent, left half half-transparent red, a text chunk. */
	if ((m = gen_new(2500, 1000, "xc:none")) == NULL ||
	    gen_paste(m, 1250, 1000, "xc:rgba(255,0,0,0.5)") != 0 ||
	    MagickCommentImage(m, "patient Jane Roe") == MagickFalse)
		r = -1;
	r |= gen_write(m, "PNG32", "alpha.png", 0);
	if ((m = gen_new(2000, 2000, "gradient:red-blue")) == NULL ||
	    MagickSetImageDepth(m, 16) == MagickFalse)
		r = -1;
	r |= gen_write(m, "PNG48", "deep.png", 0);
	/* Two pages: 640x480 green, then 100x100 red. */
	if ((m = gen_new(640, 480, "xc:green")) == NULL ||
	    MagickSetSize(m, 100, 100) == MagickFalse ||
	    MagickReadImage(m, "xc:red") == MagickFalse)
		r = -1;
	r |= gen_write(m, "TIFF", "multi.tif", 0);
	if ((m = gen_new(200, 100, "xc:none")) == NULL ||
	    gen_paste(m, 100, 100, "xc:blue") != 0)
		r = -1;
	r |= gen_write(m, "TIFF", "alpha.tif", 0);
	r |= gen_write(gen_new(800, 600, "gradient:yellow-blue"), "WEBP",
	    "pic.webp", 80);
	r |= gen_write(gen_new(50, 50, "xc:red"), "GIF", "pic.gif", 0);
	if ((m = gen_new(500, 300, "gradient:cyan-magenta")) == NULL ||
	    MagickTransformImageColorspace(m, CMYKColorspace) == MagickFalse)
		r = -1;
	r |= gen_write(m, "JPEG", "cmyk.jpg", 90);
	r |= gen_write(gen_new(100, 100, "xc:white"), "PNG", "small.png", 0);
	/* A wide-field fundus camera's size: no 1/n decode covers 2048. */
	r |= gen_write(gen_new(3900, 3072, "gradient:red-blue"), "JPEG",
	    "wide.jpg", 90);
	if ((m = gen_new(800, 600, "gradient:black-white")) == NULL ||
	    MagickTransformImageColorspace(m, GRAYColorspace) == MagickFalse)
		r = -1;
	r |= gen_write(m, "JPEG", "grey.jpg", 90);
	if ((m = gen_new(1200, 900, "gradient:yellow-blue")) == NULL ||
	    MagickSetInterlaceScheme(m, PlaneInterlace) == MagickFalse ||
	    MagickSetImageInterlaceScheme(m, PlaneInterlace) == MagickFalse)
		r = -1;
	r |= gen_write(m, "JPEG", "prog.jpg", 90);
	/* Detail everywhere, odd sizes, more rows than one strip of
	 * jpegdec's turn (256): for the orientation tests. */
	r |= gen_write(gen_new(601, 403, "plasma:fractal"), "JPEG",
	    "plasma.jpg", 92);
	if ((m = gen_new(333, 517, "plasma:fractal")) == NULL ||
	    MagickTransformImageColorspace(m, GRAYColorspace) == MagickFalse)
		r = -1;
	r |= gen_write(m, "JPEG", "plasmagrey.jpg", 92);
	return r;
}

/* Runs gen_images() in a child with its own ImageMagick, no policy. */
static int
gen_in_child(void)
{
	int status;
	pid_t pid;

	fflush(stdout);
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		int r;

		MagickWandGenesis();
		r = gen_images();
		MagickWandTerminus();
		_exit(r == 0 ? 0 : 1);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* Makes every input; returns 0 if all were made. */
static int
make_inputs(const struct bytes *icc)
{
	struct bytes app1, app2;
	int r = 0;

	if (gen_in_child() != 0)
		return -1;
	if (!file_contains(tpath("marker.jpg"), "Jane Roe") ||
	    !file_contains(tpath("multi.tif"), "II*") ||
	    !file_contains(tpath("pic.webp"), "WEBP"))
		return -1;

	/* Orientation 6 with GPS, capture time and offset, and an ICC. */
	exif_app1(&app1, 6, "2021:06:15 10:30:00", "+02:00");
	icc_app2(&app2, icc);
	r |= jpeg_insert(tpath("marker.jpg"), tpath("orient6.jpg"), &app1,
	    &app2);
	/* Orientation 8, a capture time without offset (leap day). */
	exif_app1(&app1, 8, "2020:02:29 23:59:59", NULL);
	r |= jpeg_insert(tpath("marker.jpg"), tpath("orient8.jpg"), &app1,
	    NULL);
	/* The usual "unset" date. */
	exif_app1(&app1, 1, "0000:00:00 00:00:00", NULL);
	r |= jpeg_insert(tpath("marker.jpg"), tpath("nodate.jpg"), &app1,
	    NULL);
	/* Headers claiming far more pixels than the file holds. */
	r |= png_patch(tpath("small.png"), tpath("bomb.png"), 30000, 30000);
	r |= png_patch(tpath("small.png"), tpath("big.png"), 12000, 12000);
	r |= truncate_copy(tpath("land.jpg"), tpath("trunc.jpg"), 1, 2);
	r |= truncate_copy(tpath("deep.png"), tpath("trunc.png"), 1, 2);
	r |= spit_str(tpath("junk.jpg"), "\xff\xd8\xff\xe0 not a JPEG at all");
	r |= spit_str(tpath("x.mvg"), "push graphic-context\n"
	    "viewbox 0 0 10 10\nfill red rectangle 0 0 5 5\n"
	    "pop graphic-context\n");
	r |= spit_str(tpath("x.svg"), "<svg xmlns=\"http://www.w3.org/2000/svg\" "
	    "width=\"10\" height=\"10\"></svg>\n");
	r |= spit_str(tpath("x.txt"), "hello\n");
	return r;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
test_probe(void)
{
	struct img_info info;
	double t0, t;

	is_int(img_probe(tpath("land.jpg"), IMG_JPEG, 100000000, &info), 0,
	    "probe landscape JPEG");
	is_int(info.width, 3000, "landscape width");
	is_int(info.height, 2000, "landscape height");
	is_int(info.orientation, 1, "no EXIF: orientation 1");
	is_int(info.captured_at, -1, "no EXIF: no capture time");
	is_int(info.type, IMG_JPEG, "type recorded");

	is_int(img_probe(tpath("orient6.jpg"), IMG_JPEG, 100000000, &info), 0,
	    "probe EXIF JPEG");
	is_int(info.width, 600, "stored width (before orientation)");
	is_int(info.height, 400, "stored height");
	is_int(info.orientation, 6, "EXIF orientation 6");
	is_int(info.captured_at, 1623745800,
	    "DateTimeOriginal 10:30 at +02:00 is 08:30Z");

	is_int(img_probe(tpath("orient8.jpg"), IMG_JPEG, 100000000, &info), 0,
	    "probe orientation-8 JPEG");
	is_int(info.orientation, 8, "EXIF orientation 8");
	is_int(info.captured_at, 1583020799,
	    "DateTimeOriginal without offset: local time, here TZ=UTC (leap day)");
	/* local_timezone = Asia/Bangkok (main() sets TZ from it). */
	setenv("TZ", "Asia/Bangkok", 1);
	tzset();
	is_int(img_probe(tpath("orient8.jpg"), IMG_JPEG, 100000000, &info), 0,
	    "probe orientation-8 JPEG in Bangkok");
	is_int(info.captured_at, 1583020799 - 7 * 3600,
	    "DateTimeOriginal without offset read as Bangkok time (UTC+7)");
	is_int(img_probe(tpath("orient6.jpg"), IMG_JPEG, 100000000, &info), 0,
	    "probe EXIF JPEG in Bangkok");
	is_int(info.captured_at, 1623745800, "an OffsetTimeOriginal wins over TZ");
	setenv("TZ", "America/New_York", 1);
	tzset();
	is_int(img_probe(tpath("orient6.jpg"), IMG_JPEG, 100000000, &info) == 0 &&
	    img_probe(tpath("orient8.jpg"), IMG_JPEG, 100000000, &info) == 0 ?
	    info.captured_at : -2, 1583020799 + 5 * 3600,
	    "in New York in February (EST, UTC-5)");
	setenv("TZ", "UTC", 1);
	tzset();

	is_int(img_probe(tpath("nodate.jpg"), IMG_JPEG, 100000000, &info), 0,
	    "probe all-zero date");
	is_int(info.captured_at, -1, "all-zero DateTimeOriginal is absent");

	is_int(img_probe(tpath("deep.png"), IMG_PNG, 100000000, &info), 0,
	    "probe 16-bit PNG");
	ok(info.width == 2000 && info.height == 2000, "16-bit PNG 2000x2000");
	is_int(img_probe(tpath("multi.tif"), IMG_TIFF, 100000000, &info), 0,
	    "probe multi-page TIFF");
	ok(info.width == 640 && info.height == 480, "TIFF: first page's size");
	is_int(img_probe(tpath("pic.webp"), IMG_WEBP, 100000000, &info), 0,
	    "probe WebP");
	ok(info.width == 800 && info.height == 600, "WebP 800x600");

	t0 = now();
	is_int(img_probe(tpath("bomb.png"), IMG_PNG, 100000000, &info),
	    PI_ERR_UNPROCESSABLE, "30000x30000 PNG header refused");
	t = now() - t0;
	ok(t < 1.0, "refused without decoding (fast)");
	if (t >= 1.0)
		printf("# took %.2f s\n", t);
	is_int(img_probe(tpath("big.png"), IMG_PNG, 100000000, &info),
	    PI_ERR_UNPROCESSABLE, "12000x12000 is over max_pixels 100M");
	is_int(img_probe(tpath("big.png"), IMG_PNG, 200000000, &info), 0,
	    "12000x12000 is under max_pixels 200M (header only, no decode)");
	ok(info.width == 12000 && info.height == 12000, "header size reported");
	is_int(img_probe(tpath("land.jpg"), IMG_JPEG, 6000000, &info), 0,
	    "exactly max_pixels is allowed");
	is_int(img_probe(tpath("land.jpg"), IMG_JPEG, 5999999, &info),
	    PI_ERR_UNPROCESSABLE, "one pixel over max_pixels is refused");

	is_int(img_probe(tpath("pic.gif"), IMG_JPEG, 100000000, &info),
	    PI_ERR_UNPROCESSABLE, "a GIF probed as JPEG: coder is forced");
	is_int(img_probe(tpath("small.png"), IMG_JPEG, 100000000, &info),
	    PI_ERR_UNPROCESSABLE, "a PNG probed as JPEG: coder is forced");
	is_int(img_probe(tpath("x.mvg"), IMG_PNG, 100000000, &info),
	    PI_ERR_UNPROCESSABLE, "MVG text probed as PNG fails");
	is_int(img_probe(tpath("junk.jpg"), IMG_JPEG, 100000000, &info),
	    PI_ERR_UNPROCESSABLE, "JPEG magic then junk fails");
	is_int(img_probe(tpath("missing.jpg"), IMG_JPEG, 100000000, &info),
	    PI_ERR_UNPROCESSABLE, "missing file fails");
	is_int(img_probe("land.jpg", IMG_JPEG, 100000000, &info),
	    PI_ERR_INTERNAL, "relative path refused");
	is_int(img_probe(tpath("land[0].jpg"), IMG_JPEG, 100000000, &info),
	    PI_ERR_INTERNAL, "path with [ refused");
	is_int(img_probe(tpath("land.jpg"), IMG_UNKNOWN, 100000000, &info),
	    PI_ERR_INTERNAL, "IMG_UNKNOWN refused");
	is_int(img_probe(tpath("land.jpg"), IMG_JPEG, 100000000, NULL),
	    PI_ERR_INTERNAL, "NULL info refused");
}

/* Probes and derives one input into <stem>.display / <stem>.thumb. */
static int
derive(const char *in, enum img_type type, const char *stem,
    struct img_outputs *out)
{
	struct img_info info;
	char d[64], t[64];
	int err;

	memset(out, 0, sizeof(*out));
	snprintf(d, sizeof(d), "%s.display", stem);
	snprintf(t, sizeof(t), "%s.thumb", stem);
	out->display_path = strdup(tpath(d));
	out->thumb_path = strdup(tpath(t));
	if ((err = img_probe(tpath(in), type, 100000000, &info)) != 0)
		return err;
	return img_derive(tpath(in), &info, out);
}

static void
free_outputs(struct img_outputs *out)
{
	free((char *)out->display_path);
	free((char *)out->thumb_path);
	out->display_path = out->thumb_path = NULL;
}

static void
check_jpeg_bytes(const char *path, int want_sof, const char *what)
{
	struct jpeg_facts f;
	size_t len;
	unsigned char *b = slurp(path, &len);
	char name[128];

	ok(b != NULL && jpeg_scan(b, len, &f) == 0, what);
	if (b == NULL)
		return;
	snprintf(name, sizeof(name), "%s: SOF marker 0x%02x", what, want_sof);
	is_int(f.sof, want_sof, name);
	snprintf(name, sizeof(name), "%s: 4:2:0 sampling", what);
	ok(f.h0 == 2 && f.v0 == 2 && f.h1 == 1 && f.v1 == 1, name);
	snprintf(name, sizeof(name), "%s: no APP1 (EXIF, XMP) segment", what);
	ok(!f.app1 && !f.app1_exif && !contains(b, len, "Exif\0\0", 6), name);
	snprintf(name, sizeof(name), "%s: no comment segment", what);
	ok(!f.com && !contains(b, len, "Jane Roe", 8), name);
	free(b);
}

/* The resident set of this process, KiB, from /proc/self/statm. */
static long
rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = -1;
	fclose(f);
	return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* bigmem.c: ImageMagick's pixel caches and jpegdec's rows come from it,
 * and every block goes back; many images leave the process no bigger. */
static void
test_bigmem(void)
{
	struct img_outputs out;
	unsigned char *p, *q;
	long rss2 = -1, rss20 = -1;
	int fails = 0, leaks = 0;

	p = bm_alloc(5u << 20, 64);
	ok(p != NULL && ((uintptr_t)p & ((2u << 20) - 1)) == 0,
	    "bigmem: a 5 MiB block is 2 MiB-aligned");
	is_int((int)bm_live(), 1, "bigmem: one mapping live");
	if (p != NULL) {
		memset(p, 0x5a, 5u << 20);
		ok(p[(5u << 20) - 1] == 0x5a, "bigmem: the whole block is usable");
	}
	bm_free(p);
	is_int((int)bm_live(), 0, "bigmem: freed block unmapped");
	q = bm_alloc(1000, 64);
	ok(q != NULL && ((uintptr_t)q & 63) == 0, "bigmem: small block aligned");
	bm_free(q);
	bm_free(malloc(100));   /* a heap block goes to free() */
	bm_free(NULL);
	ok(1, "bigmem: heap block and NULL freed");

	for (int i = 0; i < 20; i++) {
		if (derive("wide.jpg", IMG_JPEG, "bm", &out) != 0)
			fails++;
		else
			free_outputs(&out);
		if (bm_live() != 0)
			leaks++;
		if (i == 1)
			rss2 = rss_kib();
	}
	rss20 = rss_kib();
	is_int(fails, 0, "bigmem: 20 derives of a 12 MP JPEG");
	is_int(leaks, 0, "bigmem: no mapping outlives its derive");
	printf("# RSS after 2 derives %ld KiB, after 20 %ld KiB\n", rss2, rss20);
#if defined(__SANITIZE_ADDRESS__)
	/* AddressSanitizer's allocator keeps freed heap blocks in
	 * quarantine: the resident set says nothing there. */
	ok(rss2 > 0 && rss20 > 0, "bigmem: RSS read (not judged under "
	    "AddressSanitizer)");
	ok(1, "bigmem: RSS not judged under AddressSanitizer");
#else
	ok(rss2 > 0 && rss20 > 0 && rss20 <= rss2 + 4096,
	    "bigmem: RSS does not grow over 18 more derives (4 MiB slack)");
	ok(rss20 > 0 && rss20 < 64 * 1024,
	    "bigmem: the pixel buffers are given back between derives");
#endif
}

static void
test_derive_jpeg(void)
{
	struct img_outputs out;
	struct out_facts o;

	is_int(derive("land.jpg", IMG_JPEG, "land", &out), 0,
	    "derive landscape JPEG");
	is_int(out.display_type, IMG_JPEG, "display type JPEG");
	is_int(out.thumb_type, IMG_JPEG, "thumb type JPEG");
	ok(out.display_width == 2048 && out.display_height == 1365,
	    "display 2048x1365 reported");
	ok(out.thumb_width == 400 && out.thumb_height == 267,
	    "thumb 400x267 reported");
	out_read("JPEG", out.display_path, &o);
	ok(o.ok && strcmp(o.format, "JPEG") == 0, "display is a JPEG");
	ok(o.w == 2048 && o.h == 1365, "display long side 2048, aspect kept");
	check_jpeg_bytes(out.display_path, 0xc2, "display");
	out_read("JPEG", out.thumb_path, &o);
	ok(o.ok && o.w == 400 && o.h == 267, "thumb fits 400x400");
	check_jpeg_bytes(out.thumb_path, 0xc0, "thumb (baseline)");
	free_outputs(&out);

	is_int(derive("port.jpg", IMG_JPEG, "port", &out), 0,
	    "derive portrait JPEG");
	out_read("JPEG", out.display_path, &o);
	ok(o.w == 1365 && o.h == 2048, "portrait display 1365x2048");
	out_read("JPEG", out.thumb_path, &o);
	ok(o.w == 267 && o.h == 400, "portrait thumb 267x400");
	free_outputs(&out);
}

static void
test_derive_orientation(const struct bytes *icc)
{
	struct img_outputs out;
	struct out_facts o;
	double c[4];

	ok(file_contains(tpath("orient6.jpg"), "Exif") &&
	    file_contains(tpath("orient6.jpg"), "ICC_PROFILE") &&
	    file_contains(tpath("orient6.jpg"), "Jane Roe"),
	    "input carries EXIF, ICC and a comment");
	is_int(derive("orient6.jpg", IMG_JPEG, "o6", &out), 0,
	    "derive orientation-6 JPEG");
	ok(out.display_width == 400 && out.display_height == 600,
	    "reported upright size 400x600");
	out_read("JPEG", out.display_path, &o);
	ok(o.w == 400 && o.h == 600, "display is upright: width and height "
	    "swapped");
	ok(o.orientation == TopLeftOrientation ||
	    o.orientation == UndefinedOrientation, "no orientation left to apply");
	is_int(o.exif_props, 0, "display: no exif:* properties");
	is_int(o.exif_profile, 0, "display: no EXIF profile");
	ok(o.icc_len == icc->n && memcmp(o.icc, icc->b, icc->n) == 0,
	    "display: ICC profile kept byte for byte");
	ok(!file_contains(out.display_path, "GPS") &&
	    !file_contains(out.display_path, "2021:06:15"),
	    "display: no GPS or date bytes");
	ok(out_pixel("JPEG", out.display_path, 379, 20, c) == 0 && is_red(c),
	    "marker from stored top-left is now top-right");
	ok(out_pixel("JPEG", out.display_path, 20, 20, c) == 0 && is_blue(c),
	    "top-left is background");
	ok(out_pixel("JPEG", out.display_path, 379, 579, c) == 0 && is_blue(c),
	    "bottom-right is background");
	out_read("JPEG", out.thumb_path, &o);
	ok(o.w == 267 && o.h == 400, "thumb upright 267x400");
	is_int(o.exif_props + o.exif_profile, 0, "thumb: no EXIF");
	ok(o.icc_len == icc->n, "thumb: ICC profile kept");
	ok(out_pixel("JPEG", out.thumb_path, 255, 10, c) == 0 && is_red(c),
	    "thumb: marker top-right");
	check_jpeg_bytes(out.display_path, 0xc2, "oriented display");
	free_outputs(&out);

	is_int(derive("orient8.jpg", IMG_JPEG, "o8", &out), 0,
	    "derive orientation-8 JPEG");
	out_read("JPEG", out.display_path, &o);
	ok(o.w == 400 && o.h == 600, "orientation 8 upright 400x600");
	ok(out_pixel("JPEG", out.display_path, 20, 579, c) == 0 && is_red(c),
	    "orientation 8: marker ends bottom-left");
	ok(out_pixel("JPEG", out.display_path, 379, 20, c) == 0 && is_blue(c),
	    "orientation 8: top-right is background");
	free_outputs(&out);
}

/* PSNR in dB of two equal-sized 8-bit buffers (1e9 when equal). */
static double
psnr8(const unsigned char *a, const unsigned char *b, size_t n)
{
	double se = 0;

	for (size_t i = 0; i < n; i++)
		se += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
	if (se == 0)
		return 1e9;
	return 10 * log10(255.0 * 255.0 * (double)n / se);
}

/* The file at path read by ImageMagick, auto-oriented, as 8-bit map
 * pixels (malloc'd), or NULL. */
static unsigned char *
im_upright(const char *path, const char *map, size_t *w, size_t *h)
{
	MagickWand *m = NewMagickWand();
	unsigned char *p = NULL;
	char name[512];

	snprintf(name, sizeof(name), "JPEG:%s", path);
	if (MagickReadImage(m, name) != MagickFalse &&
	    MagickAutoOrientImage(m) != MagickFalse) {
		*w = MagickGetImageWidth(m);
		*h = MagickGetImageHeight(m);
		if ((p = malloc(*w * *h * strlen(map))) != NULL &&
		    MagickExportImagePixels(m, 0, 0, *w, *h, map, CharPixel, p)
		    == MagickFalse) {
			free(p);
			p = NULL;
		}
	}
	DestroyMagickWand(m);
	return p;
}

/* jpegdec.c turns the rows upright as it decodes: for every EXIF
 * orientation, the same pixels as ImageMagick's own auto-orient of the
 * same file; and img_derive's display copy within JPEG's loss of it. */
static void
test_orientations(void)
{
	static const struct { const char *in, *map; unsigned ch; } src[] = {
		{ "plasma.jpg", "RGB", 3 }, { "plasmagrey.jpg", "R", 1 },
	};
	char file[64], what[160];

	for (size_t k = 0; k < PI_ARRAY_LEN(src); k++) {
		for (unsigned o = 1; o <= 8; o++) {
			struct bytes app1;
			struct jd_limits lim = { .orientation = (int)o };
			struct jd_image im;
			struct img_outputs out;
			unsigned char *buf, *ref, *disp;
			size_t len, w = 0, h = 0, dw = 0, dh = 0;
			double db = 0, ddb = 0;
			int same = 0;

			snprintf(file, sizeof(file), "o%u-%s", o, src[k].in);
			exif_app1(&app1, o, "2021:06:15 10:30:00", NULL);
			if (jpeg_insert(tpath(src[k].in), tpath(file), &app1,
			    NULL) != 0) {
				ok(0, "orientation input made");
				continue;
			}
			ref = im_upright(tpath(file), src[k].map, &w, &h);
			buf = slurp(tpath(file), &len);
			memset(&im, 0, sizeof(im));
			if (ref != NULL && buf != NULL &&
			    jd_decode(buf, len, 4000, 4000, &lim, &im) == 0 &&
			    im.pixels != NULL && im.width == w &&
			    im.height == h && im.channels == src[k].ch) {
				db = psnr8(im.pixels, ref, w * h * src[k].ch);
				same = memcmp(im.pixels, ref,
				    w * h * src[k].ch) == 0;
			}
			snprintf(what, sizeof(what), "jpegdec orientation %u "
			    "(%s): ImageMagick's auto-orient, pixel for pixel "
			    "(%s%.1f dB)", o, src[k].in, same ? "equal, " : "",
			    same ? 0.0 : db);
			ok(same, what);
			jd_free(&im);
			free(buf);

			if (derive(file, IMG_JPEG, file, &out) == 0 &&
			    (disp = im_upright(out.display_path, src[k].map,
			    &dw, &dh)) != NULL) {
				if (ref != NULL && dw == w && dh == h)
					ddb = psnr8(disp, ref,
					    w * h * src[k].ch);
				free(disp);
				free_outputs(&out);
			}
			snprintf(what, sizeof(what), "derive orientation %u "
			    "(%s): display upright, %.1f dB against "
			    "ImageMagick's auto-orient", o, src[k].in, ddb);
			ok(ddb > 30, what);
			free(ref);
		}
	}
}

/* jd_shrink(): the area average of MagickScaleImage, on 8-bit rows. */
static void
test_shrink(void)
{
	/* 12-bit weights: a 601-to-1 average rounds each a little. */
	static const struct { uint32_t w, h; double min_db; } to[] = {
		{ 500, 335, 50 }, { 601, 300, 50 }, { 250, 100, 50 },
		{ 1, 1, 40 },
	};
	struct jd_limits lim = { .orientation = 0 };
	struct jd_image im, cp;
	size_t len;
	unsigned char *buf = slurp(tpath("plasma.jpg"), &len);
	char what[128];

	memset(&im, 0, sizeof(im));
	if (!ok(buf != NULL && jd_decode(buf, len, 4000, 4000, &lim, &im) == 0 &&
	    im.width == 601 && im.height == 403, "shrink: decoded 601x403")) {
		free(buf);
		jd_free(&im);
		return;
	}
	for (size_t k = 0; k < PI_ARRAY_LEN(to); k++) {
		MagickWand *m = NewMagickWand();
		size_t n = (size_t)to[k].w * to[k].h * 3;
		unsigned char *ref = malloc(n);
		double db = 0;

		cp = im;
		cp.icc = NULL;
		cp.pixels = bm_alloc((size_t)im.width * im.height * 3, 64);
		if (ref != NULL && cp.pixels != NULL) {
			memcpy(cp.pixels, im.pixels,
			    (size_t)im.width * im.height * 3);
			if (MagickConstituteImage(m, im.width, im.height, "RGB",
			    CharPixel, im.pixels) != MagickFalse &&
			    MagickScaleImage(m, to[k].w, to[k].h) != MagickFalse &&
			    MagickExportImagePixels(m, 0, 0, to[k].w, to[k].h,
			    "RGB", CharPixel, ref) != MagickFalse &&
			    jd_shrink(&cp, to[k].w, to[k].h) == 0 &&
			    cp.width == to[k].w && cp.height == to[k].h)
				db = psnr8(cp.pixels, ref, n);
		}
		snprintf(what, sizeof(what), "shrink 601x403 -> %ux%u: "
		    "MagickScaleImage's result within rounding (%.1f dB)",
		    (unsigned)to[k].w, (unsigned)to[k].h, db > 999 ? 999 : db);
		ok(db >= to[k].min_db, what);
		bm_free(cp.pixels);
		free(ref);
		DestroyMagickWand(m);
	}
	is_int(jd_shrink(&im, 602, 403), PI_ERR_INTERNAL,
	    "shrink: no enlargement");
	is_int(jd_shrink(&im, 0, 10), PI_ERR_INTERNAL, "shrink: no empty size");
	is_int(jd_shrink(&im, 601, 403), 0, "shrink: same size is a no-op");
	ok(im.width == 601 && im.height == 403, "shrink: size kept");
	jd_free(&im);
	free(buf);
}

static void
test_derive_png(void)
{
	struct img_outputs out;
	struct out_facts o;
	double c[4];

	ok(file_contains(tpath("alpha.png"), "Jane Roe"),
	    "PNG input carries a text chunk");
	is_int(derive("alpha.png", IMG_PNG, "alpha", &out), 0,
	    "derive PNG with alpha");
	is_int(out.display_type, IMG_PNG, "PNG stays PNG (display)");
	is_int(out.thumb_type, IMG_PNG, "PNG stays PNG (thumb)");
	ok(img_sniff((const unsigned char *)"\x89PNG\r\n\x1a\n", 8) == IMG_PNG,
	    "sanity");
	out_read("PNG", out.display_path, &o);
	ok(o.ok && strcmp(o.format, "PNG") == 0, "display file is a PNG");
	ok(o.w == 2048 && o.h == 819, "PNG display 2048x819");
	ok(o.alpha, "display keeps the alpha channel");
	ok(out_pixel("PNG", out.display_path, 1900, 400, c) == 0 && c[3] < 0.01,
	    "transparent area stays transparent");
	ok(out_pixel("PNG", out.display_path, 100, 400, c) == 0 &&
	    c[3] > 0.4 && c[3] < 0.6 && c[0] > 0.9,
	    "half-transparent red stays half-transparent red");
	ok(!file_contains(out.display_path, "Jane Roe"),
	    "display: text chunk gone");
	ok(png_has_chunk(tpath("alpha.png"), "tEXt"), "input has tEXt chunks");
	ok(!png_has_chunk(out.display_path, "tEXt") &&
	    !png_has_chunk(out.display_path, "zTXt") &&
	    !png_has_chunk(out.display_path, "iTXt") &&
	    !png_has_chunk(out.display_path, "tIME") &&
	    !png_has_chunk(out.display_path, "eXIf"),
	    "display: no text, time or EXIF chunk at all");
	ok(png_has_chunk(out.display_path, "IDAT") &&
	    png_has_chunk(out.display_path, "IEND"), "chunk walker sanity");
	out_read("PNG", out.thumb_path, &o);
	ok(o.ok && o.w == 400 && o.h == 160 && o.alpha,
	    "PNG thumb 400x160 with alpha");
	ok(!file_contains(out.thumb_path, "Jane Roe"), "thumb: text chunk gone");
	free_outputs(&out);

	is_int(derive("deep.png", IMG_PNG, "deep", &out), 0,
	    "derive 16-bit PNG 2000x2000");
	out_read("PNG", out.display_path, &o);
	ok(o.ok && o.w == 2000 && o.h == 2000, "16-bit: display not upscaled "
	    "nor shrunk (2000 <= 2048)");
	is_int(o.depth, 8, "16-bit: display reduced to 8 bits");
	out_read("PNG", out.thumb_path, &o);
	ok(o.ok && o.w == 400 && o.h == 400, "16-bit: thumb 400x400");
	free_outputs(&out);
}

/* The IHDR colour type and bit depth of a PNG file, or -1. */
static int
png_ihdr(const char *path, int *depth)
{
	size_t len;
	unsigned char *b = slurp(path, &len);
	int t = -1;

	if (b != NULL && len > 26 && memcmp(b + 12, "IHDR", 4) == 0) {
		*depth = b[24];
		t = b[25];
	}
	free(b);
	return t;
}

/* Whether two image files hold the same 8-bit pixels (map "R", "RGB",
 * "RGBA"...), read by ImageMagick as coder. */
static int
same_pixels(const char *coder, const char *a, const char *b, const char *map)
{
	MagickWand *wa = NewMagickWand(), *wb = NewMagickWand();
	unsigned char *pa = NULL, *pb = NULL;
	char na[512], nb[512];
	size_t w, h, n;
	int same = 0;

	snprintf(na, sizeof(na), "%s:%s", coder, a);
	snprintf(nb, sizeof(nb), "%s:%s", coder, b);
	if (MagickReadImage(wa, na) == MagickFalse ||
	    MagickReadImage(wb, nb) == MagickFalse)
		goto out;
	w = MagickGetImageWidth(wa);
	h = MagickGetImageHeight(wa);
	if (w != MagickGetImageWidth(wb) || h != MagickGetImageHeight(wb))
		goto out;
	n = w * h * strlen(map);
	if ((pa = malloc(n)) == NULL || (pb = malloc(n)) == NULL)
		goto out;
	if (MagickExportImagePixels(wa, 0, 0, w, h, map, CharPixel, pa) !=
	    MagickFalse && MagickExportImagePixels(wb, 0, 0, w, h, map,
	    CharPixel, pb) != MagickFalse)
		same = memcmp(pa, pb, n) == 0;
out:
	free(pa);
	free(pb);
	DestroyMagickWand(wa);
	DestroyMagickWand(wb);
	return same;
}

/* The input written by ImageMagick's own PNG writer at 8 bits (what the
 * copies were before pngenc.c), as ref. */
static int
im_png8(const char *in, const char *ref)
{
	MagickWand *m = NewMagickWand();
	char name[512];
	int r;

	snprintf(name, sizeof(name), "PNG:%s", in);
	r = MagickReadImage(m, name) != MagickFalse &&
	    MagickSetImageDepth(m, 8) != MagickFalse &&
	    MagickWriteImage(m, ref) != MagickFalse ? 0 : -1;
	DestroyMagickWand(m);
	return r;
}

/* pngenc.c: PNG copies written through libpng hold ImageMagick's own
 * 8-bit rounding of the input, the right colour type, the ICC profile as
 * iCCP, and no other metadata. */
static void
test_derive_png_libpng(void)
{
	struct img_outputs out;
	struct out_facts o;
	MagickWand *m = NewMagickWand();
	char name[512];
	int depth = 0;
	size_t icc_len = 0, got_len = 0;
	/* libpng checks an iCCP profile on reading and writing (the
	 * hand-made one of the JPEG tests is "too short" for it): a real
	 * one, the one the integration tests use (libgs-common). */
	unsigned char *icc = slurp(PNG_TEST_ICC, &icc_len), *got = NULL;
	unsigned char *gone = NULL;

	if (!ok(icc != NULL, "png: read " PNG_TEST_ICC))
		icc_len = 0;

	/* Inputs: the 16-bit RGB gradient with the ICC profile, and a
	 * 16-bit grey 1024x496 (an OCT B-scan's shape). */
	snprintf(name, sizeof(name), "PNG:%s", tpath("deep.png"));
	ok(MagickReadImage(m, name) != MagickFalse &&
	    icc != NULL &&
	    MagickSetImageProfile(m, "icc", icc, icc_len) != MagickFalse &&
	    MagickWriteImage(m, tpath("deepicc.png")) != MagickFalse &&
	    MagickCropImage(m, 1024, 496, 100, 200) != MagickFalse &&
	    MagickSetImagePage(m, 1024, 496, 0, 0) != MagickFalse &&
	    (gone = MagickRemoveImageProfile(m, "icc", &(size_t){ 0 })) !=
	    NULL &&
	    MagickTransformImageColorspace(m, GRAYColorspace) != MagickFalse &&
	    MagickSetImageDepth(m, 16) != MagickFalse &&
	    MagickSetOption(m, "png:color-type", "0") != MagickFalse &&
	    MagickSetOption(m, "png:bit-depth", "16") != MagickFalse &&
	    MagickWriteImage(m, tpath("grey16.png")) != MagickFalse,
	    "png: made a 16-bit RGB PNG with ICC and a 16-bit grey PNG");
	DestroyMagickWand(m);
	if (gone != NULL)
		MagickRelinquishMemory(gone);
	ok(png_ihdr(tpath("grey16.png"), &depth) == 0 && depth == 16,
	    "png: the grey input is colour type 0, 16 bits");

	is_int(derive("grey16.png", IMG_PNG, "g16", &out), 0,
	    "png: derive 16-bit grey 1024x496");
	ok(png_ihdr(out.display_path, &depth) == 0 && depth == 8,
	    "png: grey display is colour type 0, 8 bits");
	ok(im_png8(tpath("grey16.png"), tpath("grey8ref.png")) == 0 &&
	    same_pixels("PNG", tpath("grey8ref.png"), out.display_path, "R"),
	    "png: grey display holds the pixels ImageMagick's writer made");
	ok(!png_has_chunk(out.display_path, "tEXt") &&
	    !png_has_chunk(out.display_path, "tIME") &&
	    !png_has_chunk(out.display_path, "bKGD") &&
	    png_has_chunk(out.display_path, "gAMA"),
	    "png: grey display has gAMA and no text, time or bKGD chunk");
	out_read("PNG", out.thumb_path, &o);
	ok(o.ok && o.w == 400 && o.h == 194 && o.depth == 8 &&
	    png_ihdr(out.thumb_path, &depth) == 0, "png: grey thumb 400x194");
	free_outputs(&out);

	is_int(derive("deepicc.png", IMG_PNG, "dicc", &out), 0,
	    "png: derive 16-bit RGB with ICC");
	ok(png_ihdr(out.display_path, &depth) == 2 && depth == 8,
	    "png: RGB display is colour type 2, 8 bits");
	ok(im_png8(tpath("deepicc.png"), tpath("rgb8ref.png")) == 0 &&
	    same_pixels("PNG", tpath("rgb8ref.png"), out.display_path, "RGB"),
	    "png: RGB display holds the pixels ImageMagick's writer made");
	ok(png_has_chunk(out.display_path, "iCCP"),
	    "png: RGB display keeps the ICC profile (iCCP)");
	m = NewMagickWand();
	snprintf(name, sizeof(name), "PNG:%s", out.display_path);
	if (MagickReadImage(m, name) != MagickFalse)
		got = MagickGetImageProfile(m, "icc", &got_len);
	ok(got != NULL && icc != NULL && got_len == icc_len &&
	    memcmp(got, icc, icc_len) == 0,
	    "png: the ICC profile read back is the input's");
	if (got != NULL)
		MagickRelinquishMemory(got);
	DestroyMagickWand(m);
	ok(png_has_chunk(out.thumb_path, "iCCP"), "png: thumb keeps iCCP");
	free_outputs(&out);
	free(icc);

	is_int(derive("alpha.png", IMG_PNG, "pa", &out), 0,
	    "png: derive RGBA");
	ok(png_ihdr(out.display_path, &depth) == 6 && depth == 8,
	    "png: RGBA display is colour type 6, 8 bits");
	free_outputs(&out);
}

static void
test_derive_other(void)
{
	struct img_outputs out;
	struct out_facts o;
	double c[4];

	is_int(derive("multi.tif", IMG_TIFF, "tif", &out), 0,
	    "derive multi-page TIFF");
	is_int(out.display_type, IMG_JPEG, "TIFF display is JPEG");
	out_read("JPEG", out.display_path, &o);
	ok(o.ok && o.w == 640 && o.h == 480, "TIFF: first page only");
	ok(out_pixel("JPEG", out.display_path, 320, 240, c) == 0 &&
	    c[1] > 0.4 && c[0] < 0.2, "TIFF: first page's green");
	out_read("JPEG", out.thumb_path, &o);
	ok(o.ok && o.w == 400 && o.h == 300, "TIFF thumb 400x300");
	free_outputs(&out);

	is_int(derive("alpha.tif", IMG_TIFF, "atif", &out), 0,
	    "derive TIFF with transparency");
	out_read("JPEG", out.display_path, &o);
	ok(o.ok && o.w == 200 && o.h == 100 && !o.alpha, "JPEG has no alpha");
	ok(out_pixel("JPEG", out.display_path, 150, 50, c) == 0 &&
	    c[0] > 0.95 && c[1] > 0.95 && c[2] > 0.95,
	    "transparent area flattened on white");
	ok(out_pixel("JPEG", out.display_path, 50, 50, c) == 0 && is_blue(c),
	    "opaque area unchanged");
	free_outputs(&out);

	is_int(derive("pic.webp", IMG_WEBP, "webp", &out), 0, "derive WebP");
	is_int(out.display_type, IMG_JPEG, "WebP display is JPEG");
	out_read("JPEG", out.display_path, &o);
	ok(o.ok && o.w == 800 && o.h == 600, "WebP display 800x600");
	check_jpeg_bytes(out.display_path, 0xc2, "WebP display");
	free_outputs(&out);

	is_int(derive("cmyk.jpg", IMG_JPEG, "cmyk", &out), 0, "derive CMYK JPEG");
	out_read("JPEG", out.display_path, &o);
	ok(o.ok && o.colorspace == sRGBColorspace, "CMYK converted to sRGB");
	free_outputs(&out);
}

static void
test_derive_errors(void)
{
	struct img_outputs out;
	struct img_info info;

	is_int(img_probe(tpath("trunc.jpg"), IMG_JPEG, 100000000, &info), 0,
	    "truncated JPEG: header still pings");
	is_int(derive("trunc.jpg", IMG_JPEG, "trunc", &out),
	    PI_ERR_UNPROCESSABLE, "truncated JPEG refused by derive");
	free_outputs(&out);
	is_int(derive("trunc.png", IMG_PNG, "truncp", &out),
	    PI_ERR_UNPROCESSABLE, "truncated PNG refused");
	free_outputs(&out);

	is_int(img_probe(tpath("land.jpg"), IMG_JPEG, 100000000, &info), 0,
	    "probe for error cases");
	out.display_path = "/nonexistent-polaimg-dir/d";
	out.thumb_path = "/nonexistent-polaimg-dir/t";
	is_int(img_derive(tpath("land.jpg"), &info, &out), PI_ERR_IO,
	    "unwritable output is an I/O error");
	out.display_path = "relative/d";
	is_int(img_derive(tpath("land.jpg"), &info, &out), PI_ERR_INTERNAL,
	    "relative output path refused");
	out.display_path = NULL;
	is_int(img_derive(tpath("land.jpg"), &info, &out), PI_ERR_INTERNAL,
	    "NULL output path refused");
	is_int(img_derive(tpath("land.jpg"), NULL, &out), PI_ERR_INTERNAL,
	    "NULL info refused");
}

/* jpegdec.c directly: the scale, the profile, the refusals, the fallback. */
static void
test_jpegdec(const struct bytes *icc)
{
	struct jd_limits lim = { .memory_bytes = 256ull << 20,
	    .time_seconds = 60, .max_scans = 100 };
	struct jd_image im;
	unsigned char *buf;
	size_t len;

	is_int(jd_scale_for(3900, 3072, 2048, 1613), 5, "3900 -> 2048: 5/8");
	is_int(jd_scale_for(4032, 3024, 2048, 1536), 5, "4032 -> 2048: 5/8");
	is_int(jd_scale_for(6000, 4000, 2048, 1365), 3, "6000 -> 2048: 3/8");
	is_int(jd_scale_for(4096, 3072, 2048, 1536), 4, "exactly half: 4/8");
	is_int(jd_scale_for(2000, 1500, 2048, 1536), 8, "smaller: 8/8");
	is_int(jd_scale_for(16000, 100, 400, 3), 1, "1/8 rounds up");
	is_int(jd_scale_for(2047, 1000, 2048, 1000), 8, "never upscales");

	buf = slurp(tpath("wide.jpg"), &len);
	is_int(jd_decode(buf, len, 2048, 1613, &lim, &im), 0, "decode wide");
	ok(im.pixels != NULL && im.width == 2438 && im.height == 1920 &&
	    im.channels == 3 && im.scale_num == 5 && im.fallback == NULL,
	    "wide decoded at 5/8 to 2438x1920 RGB");
	ok(im.pixels != NULL && im.pixels[0] > 200 && im.pixels[2] < 60,
	    "wide: red at the top");
	jd_free(&im);
	ok(im.pixels == NULL && im.icc == NULL, "jd_free clears");
	is_int(jd_decode(buf, len / 2, 2048, 1613, &lim, &im),
	    PI_ERR_UNPROCESSABLE, "a JPEG cut in half is refused");
	ok(im.pixels == NULL && im.fallback == NULL, "nothing left after it");
	jd_free(&im);
	free(buf);

	buf = slurp(tpath("orient6.jpg"), &len);
	is_int(jd_decode(buf, len, 600, 400, &lim, &im), 0, "decode orient6");
	ok(im.icc != NULL && im.icc_len == icc->n &&
	    memcmp(im.icc, icc->b, icc->n) == 0, "ICC read from APP2");
	ok(im.width == 600 && im.height == 400 && im.scale_num == 8,
	    "stored size, orientation left to the caller");
	jd_free(&im);
	free(buf);

	buf = slurp(tpath("grey.jpg"), &len);
	is_int(jd_decode(buf, len, 400, 300, &lim, &im), 0, "decode grey");
	ok(im.channels == 1 && im.width == 400 && im.height == 300,
	    "grey: one channel at 4/8");
	jd_free(&im);
	free(buf);

	buf = slurp(tpath("cmyk.jpg"), &len);
	is_int(jd_decode(buf, len, 500, 300, &lim, &im), 0, "decode CMYK");
	ok(im.pixels == NULL && im.fallback != NULL,
	    "CMYK left to ImageMagick");
	jd_free(&im);
	free(buf);

	buf = slurp(tpath("prog.jpg"), &len);
	is_int(jd_decode(buf, len, 1200, 900, &lim, &im), 0,
	    "decode progressive");
	jd_free(&im);
	lim.max_scans = 2;
	is_int(jd_decode(buf, len, 1200, 900, &lim, &im),
	    PI_ERR_UNPROCESSABLE, "progressive over the scan limit refused");
	jd_free(&im);
	lim.max_scans = 100;
	lim.memory_bytes = 100000;
	is_int(jd_decode(buf, len, 1200, 900, &lim, &im),
	    PI_ERR_UNPROCESSABLE, "progressive over libjpeg's memory refused");
	jd_free(&im);
	free(buf);

	buf = slurp(tpath("junk.jpg"), &len);
	is_int(jd_decode(buf, len, 10, 10, &lim, &im), PI_ERR_UNPROCESSABLE,
	    "not a JPEG refused");
	jd_free(&im);
	free(buf);
	is_int(jd_decode(NULL, 0, 10, 10, &lim, &im), PI_ERR_INTERNAL,
	    "no buffer refused");
}

/* Under conf/policy.xml: polaimg's coders work (above), others do not. */
static void
test_policy(int loaded)
{
	static const struct {
		const char *coder, *file;
	} denied[] = {
		{ "MVG", "x.mvg" }, { "SVG", "x.svg" }, { "MSVG", "x.svg" },
		{ "TEXT", "x.txt" }, { "GIF", "pic.gif" }, { "MSL", "x.txt" },
		{ "PS", "x.txt" }, { "PDF", "x.txt" }, { "EPHEMERAL", "x.txt" },
	};
	char name[512], what[128];

	if (!loaded)
		return;    /* main() has already failed "conf/policy.xml found" */
	for (size_t i = 0; i < PI_ARRAY_LEN(denied); i++) {
		MagickWand *w = NewMagickWand();
		ExceptionType sev = UndefinedException;
		MagickBooleanType r;
		char *d;

		snprintf(name, sizeof(name), "%s:%s", denied[i].coder,
		    tpath(denied[i].file));
		r = MagickReadImage(w, name);
		d = MagickGetException(w, &sev);
		MagickRelinquishMemory(d);
		snprintf(what, sizeof(what), "policy denies the %s coder",
		    denied[i].coder);
		ok(r == MagickFalse && sev == PolicyError, what);
		DestroyMagickWand(w);
	}
	ok(!IsRightsAuthorized(PathPolicyDomain, ReadPolicyRights, "@list"),
	    "policy denies @file indirection");
	ok(!IsRightsAuthorized(DelegatePolicyDomain, ExecutePolicyRights,
	    "gs"), "policy denies delegates");
	ok(IsRightsAuthorized(CoderPolicyDomain, ReadPolicyRights |
	    WritePolicyRights, "JPEG"), "policy allows JPEG");
	ok(GetMagickResourceLimit(ThreadResource) == 1, "one thread");
}

int
main(void)
{
	struct img_limits lim = {
		.max_pixels = 100000000,
		.memory_bytes = 1024ull << 20,
		.map_bytes = 1024ull << 20,
		.disk_bytes = 0,
		.max_dimension = 32768,
		.time_seconds = 60,
	};
	char policy_dir[512], policy_file[600];
	const char *top = getenv("top_srcdir");
	struct bytes icc;
	struct stat st;
	int loaded = 0;

	/* EXIF times without an offset are local time (local_timezone). */
	setenv("TZ", "UTC", 1);
	tzset();
	test_sniff();
	test_names();

	is_int(img_probe("/tmp/x.jpg", IMG_JPEG, 1, &(struct img_info){ 0 }),
	    PI_ERR_INTERNAL, "probe before img_init refused");

	snprintf(dir, sizeof(dir), "/tmp/polaimg-img-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	icc_profile(&icc);
	ok(make_inputs(&icc) == 0, "inputs generated");

	if (top != NULL &&
	    snprintf(policy_dir, sizeof(policy_dir), "%s/conf", top) <
	    (int)sizeof(policy_dir) &&
	    snprintf(policy_file, sizeof(policy_file), "%s/policy.xml",
	    policy_dir) < (int)sizeof(policy_file) &&
	    stat(policy_file, &st) == 0) {
		lim.policy_dir = policy_dir;
		loaded = 1;
	}
	/* The policy tests are not optional: without top_srcdir they cannot
	 * run, and that is a failure, not a skip. */
	if (!ok(loaded, "conf/policy.xml found under $top_srcdir (make check "
	    "sets it; by hand: top_srcdir=. build/tests/unit/test_imaging)"))
		printf("#   top_srcdir=%s\n", top != NULL ? top : "(unset)");
	if (loaded) {
		char home[128];

		is_int(init_in_child(policy_dir, NULL), 0,
		    "policy loads in a fresh process");
		is_int(init_in_child(dir, NULL), PI_ERR_INTERNAL,
		    "policy_dir without policy.xml: img_init fails closed");
		snprintf(home, sizeof(home), "%s/home", dir);
		ok(mkdir(home, 0700) == 0 &&
		    mkdir(tpath("home/.config"), 0700) == 0 &&
		    mkdir(tpath("home/.config/ImageMagick"), 0700) == 0 &&
		    spit_str(tpath("home/.config/ImageMagick/policy.xml"),
		    "<policymap><policy domain=\"coder\" rights=\"read|write\" "
		    "pattern=\"*\"/></policymap>\n") == 0,
		    "made a user policy that allows all");
		is_int(init_in_child(policy_dir, home), PI_ERR_INTERNAL,
		    "a user policy re-allowing coders is detected");
	}
	is_int(derive_small_memory(lim.policy_dir, "hint.jpg", 80, 2048, 1365),
	    0, "12 MP JPEG made within 80 MiB: shrink-on-load works");
	/* ImageMagick's 1/n cannot shrink 3900 to 2048 (a 96 MB Q16
	 * decode); libjpeg's 5/8 gives 2438x1920. */
	is_int(derive_small_memory(lim.policy_dir, "wide.jpg", 72, 2048, 1613),
	    0, "3900x3072 JPEG made within 72 MiB: k/8 decode");
	is_int(img_init(&lim), 0, "img_init");
	is_int(img_init(&lim), 0, "img_init again only re-applies limits");

	test_probe();
	test_derive_jpeg();
	test_derive_orientation(&icc);
	test_orientations();
	test_shrink();
	test_derive_png();
	test_derive_png_libpng();
	test_derive_other();
	test_derive_errors();
	test_jpegdec(&icc);
	test_bigmem();
	test_policy(loaded);

	img_shutdown();
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		printf("# could not remove %s\n", dir);
	return done_testing();
}
