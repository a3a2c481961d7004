/* test_imghdr.c — imghdr.c, the header reader that runs before ImageMagick.
 *
 * Every input is built byte by byte here: minimal but well-formed headers
 * of each format, hostile sizes, every truncation of each header, and PNG
 * files whose zTXt, iTXt and iCCP chunks are real zlib streams (made with
 * zlib), small ones that must pass and bombs that must be refused after
 * inflating no more than the caps.
 */
#include "common.h"
#include "imghdr.h"
#include "bytebuf.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define MP 100000000ULL         /* the default max_pixels */

/* --- JPEG ---------------------------------------------------------------- */

/* SOI, an APP0, app_bytes of APP1 segments (each at most 65533 bytes of
 * payload), then SOF marker sof with w x h, DHT, SOS. */
static void
make_jpeg(struct buf *b, unsigned sof, uint32_t w, uint32_t h,
    size_t app_bytes)
{
	static unsigned char zero[65533];

	b_put(b, "\xff\xd8", 2);
	b_put(b, "\xff\xe0\x00\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0", 18);
	while (app_bytes > 0) {
		size_t n = app_bytes < sizeof(zero) ? app_bytes : sizeof(zero);

		b_put(b, "\xff\xe1", 2);
		b_be16(b, (uint32_t)n + 2);
		b_put(b, zero, n);
		app_bytes -= n;
	}
	b_put(b, "\xff\xff", 2);        /* a fill byte before the marker */
	b_byte(b, sof);
	b_be16(b, 17);
	b_byte(b, 8);
	b_be16(b, h);
	b_be16(b, w);
	b_put(b, "\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01", 10);
	b_put(b, "\xff\xc4\x00\x03\x00", 5);
	b_put(b, "\xff\xda\x00\x02", 4);
}

static void
test_jpeg(void)
{
	struct buf b = { 0 };
	struct imghdr_info hi;
	int rc, bad = 0;

	make_jpeg(&b, 0xc0, 640, 480, 0);
	is_int(imghdr_read(IMG_JPEG, b.p, b.n, MP, &hi), 0, "jpeg baseline");
	is_int(hi.width, 640, "jpeg width");
	is_int(hi.height, 480, "jpeg height");
	for (size_t n = 0; n < b.n - 9; n++) {
		/* every prefix that cuts the SOF short is refused */
		rc = imghdr_jpeg(b.p, n, MP, &hi);
		if (n < 2 + 18 + 2 + 1 + 8 && rc != PI_ERR_UNPROCESSABLE)
			bad++;
	}
	is_int(bad, 0, "jpeg: every truncation before the frame header refused");
	b_free(&b);

	make_jpeg(&b, 0xc2, 3000, 2000, 0);
	is_int(imghdr_jpeg(b.p, b.n, MP, &hi), 0, "jpeg progressive (SOF2)");
	is_int(hi.width, 3000, "sof2 width");
	b_free(&b);
	make_jpeg(&b, 0xcf, 7, 9, 0);
	is_int(imghdr_jpeg(b.p, b.n, MP, &hi), 0, "jpeg SOF15");
	is_int(hi.height, 9, "sof15 height");
	b_free(&b);
	/* DHT, JPG and DAC are not frame headers: a file with only those
	 * before the scan has no size. */
	make_jpeg(&b, 0xcc, 7, 9, 0);
	is_int(imghdr_jpeg(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "jpeg DAC is not a SOF");
	b_free(&b);
	make_jpeg(&b, 0xc8, 7, 9, 0);
	is_int(imghdr_jpeg(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "jpeg JPG is not a SOF");
	b_free(&b);

	/* 3 MB of APP1 before the SOF: walked by length. */
	make_jpeg(&b, 0xc0, 4000, 3000, 3u << 20);
	is_int(imghdr_jpeg(b.p, b.n, MP, &hi), 0, "jpeg with 3 MB of APP1");
	is_int(hi.width, 4000, "big-app width");
	b_free(&b);
	/* ... but not more than 16 MiB of them. */
	make_jpeg(&b, 0xc0, 40, 30, 17u << 20);
	rc = imghdr_jpeg(b.p, b.n, MP, &hi);
	is_int(rc, PI_ERR_UNPROCESSABLE, "jpeg with the SOF after 16 MiB refused");
	ok(hi.why != NULL && strstr(hi.why, "16 MiB") != NULL, "reason names it");
	b_free(&b);

	/* Hostile sizes. */
	make_jpeg(&b, 0xc0, 65535, 65535, 0);
	is_int(imghdr_jpeg(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "jpeg 65535x65535 over max_pixels");
	is_int(imghdr_jpeg(b.p, b.n, 65535ULL * 65535, &hi), 0,
	    "jpeg 65535x65535 at exactly the limit");
	is_int(imghdr_jpeg(b.p, b.n, 65535ULL * 65535 - 1, &hi),
	    PI_ERR_UNPROCESSABLE, "jpeg one pixel over the limit");
	b_free(&b);
	make_jpeg(&b, 0xc0, 100, 0, 0);
	is_int(imghdr_jpeg(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "jpeg height 0 (DNL) refused");
	b_free(&b);
	make_jpeg(&b, 0xc0, 0, 100, 0);
	is_int(imghdr_jpeg(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "jpeg width 0 refused");
	b_free(&b);

	/* Structure errors. */
	is_int(imghdr_jpeg((const unsigned char *)"\xff\xd8\xff\xda\0\2", 6,
	    MP, &hi), PI_ERR_UNPROCESSABLE, "jpeg scan before SOF");
	is_int(imghdr_jpeg((const unsigned char *)"\xff\xd8\xff\xd9", 4, MP,
	    &hi), PI_ERR_UNPROCESSABLE, "jpeg EOI before SOF");
	is_int(imghdr_jpeg((const unsigned char *)"\xff\xd8\xff\xe0\0\1", 6,
	    MP, &hi), PI_ERR_UNPROCESSABLE, "jpeg segment length 1");
	is_int(imghdr_jpeg((const unsigned char *)"\xff\xd8\x00\xff\xc0", 5,
	    MP, &hi), PI_ERR_UNPROCESSABLE, "jpeg garbage between segments");
	is_int(imghdr_jpeg((const unsigned char *)"\xff\xd8\xff\xc0\0\x08\x08"
	    "\0\1\0", 10, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "jpeg SOF cut inside its width");
	is_int(imghdr_jpeg((const unsigned char *)"\xff\xd8\xff\xc0\0\x08\x08"
	    "\0\1\0\1\1", 12, MP, &hi), 0, "jpeg minimal SOF");
	is_int(imghdr_jpeg((const unsigned char *)"\x89PNG", 4, MP, &hi),
	    PI_ERR_UNPROCESSABLE, "jpeg reader refuses a PNG");
	is_int(imghdr_jpeg(NULL, 0, MP, &hi), PI_ERR_UNPROCESSABLE, "jpeg NULL");
}

/* --- PNG ----------------------------------------------------------------- */

static void
png_chunk(struct buf *b, const char *type, const void *d, size_t n)
{
	uLong crc = crc32(0, (const Bytef *)type, 4);

	if (n > 0)
		crc = crc32(crc, d, (uInt)n);
	b_be32(b, (uint32_t)n);
	b_put(b, type, 4);
	if (n > 0)
		b_put(b, d, n);
	b_be32(b, (uint32_t)crc);
}

static void
png_start(struct buf *b, uint32_t w, uint32_t h)
{
	struct buf ih = { 0 };

	b_put(b, "\x89PNG\r\n\x1a\n", 8);
	b_be32(&ih, w);
	b_be32(&ih, h);
	b_put(&ih, "\x08\x02\x00\x00\x00", 5);
	png_chunk(b, "IHDR", ih.p, ih.n);
	b_free(&ih);
}

/* zlib stream of n zero bytes into *z (compressed in pieces: the input is
 * never in memory whole). */
static void
zeros_deflated(struct buf *z, uint64_t n)
{
	static unsigned char in[1 << 16];
	unsigned char out[1 << 16];
	z_stream zs;
	int flush;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit(&zs, 9) != Z_OK)
		exit(2);
	do {
		size_t k = n < sizeof(in) ? (size_t)n : sizeof(in);

		n -= k;
		flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
		zs.next_in = in;
		zs.avail_in = (uInt)k;
		do {
			zs.next_out = out;
			zs.avail_out = sizeof(out);
			(void)deflate(&zs, flush);
			b_put(z, out, sizeof(out) - zs.avail_out);
		} while (zs.avail_out == 0);
	} while (flush != Z_FINISH);
	deflateEnd(&zs);
}

/* A chunk with prefix (keyword and the fields before the stream) and a
 * zlib stream of n zeros. */
static void
png_zchunk(struct buf *b, const char *type, const void *prefix, size_t pn,
    uint64_t n)
{
	struct buf c = { 0 };

	b_put(&c, prefix, pn);
	zeros_deflated(&c, n);
	png_chunk(b, type, c.p, c.n);
	b_free(&c);
}

static void
png_end(struct buf *b)
{
	png_chunk(b, "IDAT", "\x78\x9c\x03\x00\x00\x00\x00\x01", 8);
	png_chunk(b, "IEND", NULL, 0);
}

static void
test_png(void)
{
	struct buf b = { 0 };
	struct imghdr_info hi;
	int bad = 0;

	png_start(&b, 64, 48);
	png_chunk(&b, "tEXt", "Comment\0hello", 13);
	png_zchunk(&b, "zTXt", "Comment\0\0", 9, 4000);
	png_zchunk(&b, "iTXt", "XML:com.adobe.xmp\0\1\0en\0\0", 24, 20000);
	png_zchunk(&b, "iCCP", "ICC profile\0\0", 13, 3144);
	png_end(&b);
	is_int(imghdr_read(IMG_PNG, b.p, b.n, MP, &hi), 0,
	    "png with small zTXt, iTXt and iCCP accepted");
	is_int(hi.width, 64, "png width");
	is_int(hi.height, 48, "png height");
	is_int(hi.inflated, 4000 + 20000 + 3144, "png: every byte counted");
	for (size_t n = 0; n < 8 + 25; n++)
		if (imghdr_png(b.p, n, MP, &hi) != PI_ERR_UNPROCESSABLE)
			bad++;
	is_int(bad, 0, "png: every truncation of signature and IHDR refused");
	bad = 0;
	for (size_t n = 8 + 25; n < b.n; n++)
		if (imghdr_png(b.p, n, MP, &hi) != PI_ERR_UNPROCESSABLE)
			bad++;
	is_int(bad, 0, "png: every cut before IEND refused");
	b_free(&b);

	/* An uncompressed iTXt is not inflated. */
	png_start(&b, 1, 1);
	png_chunk(&b, "iTXt", "k\0\0\0\0\0plain", 11);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, MP, &hi), 0, "png plain iTXt");
	is_int(hi.inflated, 0, "plain iTXt not counted");
	b_free(&b);

	/* Bombs: 512 MiB of zeros in zTXt (about 500 KB), 64 MiB in iTXt and
	 * iCCP, and eight text chunks of 1 MiB (each under its cap, together
	 * over the file's). */
	png_start(&b, 64, 64);
	png_zchunk(&b, "zTXt", "Comment\0\0", 9, 512ULL << 20);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "png zTXt bomb refused");
	ok(hi.inflated > IMGHDR_PNG_TEXT_MAX &&
	    hi.inflated < IMGHDR_PNG_TEXT_MAX + 65536,
	    "zTXt bomb: inflated just past the text cap, no further");
	b_free(&b);
	png_start(&b, 64, 64);
	png_zchunk(&b, "iTXt", "k\0\1\0\0\0", 6, 64ULL << 20);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "png compressed iTXt bomb refused");
	b_free(&b);
	png_start(&b, 64, 64);
	png_zchunk(&b, "iCCP", "icc\0\0", 5, 64ULL << 20);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "png iCCP bomb refused");
	ok(hi.inflated > IMGHDR_PNG_ICCP_MAX &&
	    hi.inflated < IMGHDR_PNG_ICCP_MAX + 65536, "iCCP: counted to its cap");
	b_free(&b);
	png_start(&b, 64, 64);
	png_zchunk(&b, "iCCP", "icc\0\0", 5, 3u << 20);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, MP, &hi), 0, "png 3 MiB iCCP accepted");
	b_free(&b);
	png_start(&b, 64, 64);
	for (int i = 0; i < 9; i++)
		png_zchunk(&b, "zTXt", "k\0\0", 3, IMGHDR_PNG_TEXT_MAX);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "png: nine 1 MiB texts over the per-file cap");
	ok(hi.inflated <= IMGHDR_PNG_INFLATE_MAX + IMGHDR_PNG_TEXT_MAX,
	    "per-file cap stops the count");
	b_free(&b);

	/* A corrupt stream stops the count; libpng drops it too. */
	png_start(&b, 2, 2);
	png_chunk(&b, "zTXt", "k\0\0\x78\x9c\xff\xff\xff", 8);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, MP, &hi), 0, "png corrupt zTXt tolerated");
	b_free(&b);

	/* Sizes and structure. */
	png_start(&b, 20000, 20000);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "png 20000x20000 over max_pixels");
	b_free(&b);
	png_start(&b, 0x7fffffffu, 0x7fffffffu);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, UINT64_MAX, &hi), 0,
	    "png 2^31-1 square, no overflow under an unbounded limit");
	is_int(imghdr_png(b.p, b.n, 4000000000ULL, &hi), PI_ERR_UNPROCESSABLE,
	    "png 2^31-1 square over 4e9");
	b_free(&b);
	png_start(&b, 0x80000000u, 1);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, UINT64_MAX, &hi), PI_ERR_UNPROCESSABLE,
	    "png side 2^31 refused");
	b_free(&b);
	png_start(&b, 0, 10);
	png_end(&b);
	is_int(imghdr_png(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "png width 0 refused");
	b_free(&b);
	b_put(&b, "\x89PNG\r\n\x1a\n", 8);
	png_chunk(&b, "tEXt", "a\0b", 3);
	png_start(&b, 1, 1);
	is_int(imghdr_png(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "png IHDR not first refused");
	b_free(&b);
	png_start(&b, 1, 1);
	b_be32(&b, 0x7ffffff0u);
	b_put(&b, "tEXtabc", 7);
	is_int(imghdr_png(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "png chunk length past the end refused");
	b_free(&b);
}

/* --- WebP ---------------------------------------------------------------- */

static void
riff_start(struct buf *b)
{
	b_put(b, "RIFF\0\0\0\0WEBP", 12);
}

static void
riff_end(struct buf *b)
{
	uint32_t n = (uint32_t)b->n - 8;

	memcpy(b->p + 4, (unsigned char[]){ n, n >> 8, n >> 16, n >> 24 }, 4);
}

static void
webp_chunk(struct buf *b, const char *fourcc, const void *d, size_t n)
{
	b_put(b, fourcc, 4);
	b_le32(b, (uint32_t)n);
	b_put(b, d, n);
	if (n & 1)
		b_byte(b, 0);
}

static void
vp8l_payload(struct buf *d, uint32_t w, uint32_t h)
{
	b_byte(d, 0x2f);
	b_le32(d, (w - 1) | (h - 1) << 14);
	b_put(d, "\0\0\0\0", 4);
}

static void
vp8_payload(struct buf *d, uint32_t w, uint32_t h)
{
	b_put(d, "\x50\x02\x00\x9d\x01\x2a", 6);
	b_le16(d, w);
	b_le16(d, h);
	b_put(d, "\0\0\0\0", 4);
}

static void
test_webp(void)
{
	struct buf b = { 0 }, d = { 0 };
	struct imghdr_info hi;
	int bad = 0;

	/* The 34-byte lossless bomb: VP8L declaring 16383x16383. */
	riff_start(&b);
	vp8l_payload(&d, 16383, 16383);
	b_put(&d, "\0\0\0\0\0\0\0\0\0\0\0\0", 5);
	webp_chunk(&b, "VP8L", d.p, d.n);
	riff_end(&b);
	is_int(b.n, 34, "the VP8L bomb is 34 bytes");
	is_int(imghdr_read(IMG_WEBP, b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp VP8L 16383x16383 refused");
	is_int(imghdr_webp(b.p, b.n, 16383ULL * 16383, &hi), 0,
	    "... but read right (16383x16383 at exactly the limit)");
	is_int(hi.width, 16383, "vp8l width");
	b_free(&b);
	b_free(&d);

	riff_start(&b);
	vp8l_payload(&d, 300, 200);
	webp_chunk(&b, "VP8L", d.p, d.n);
	riff_end(&b);
	is_int(imghdr_webp(b.p, b.n, MP, &hi), 0, "webp lossless");
	is_int(hi.width, 300, "vp8l width");
	is_int(hi.height, 200, "vp8l height");
	for (size_t n = 0; n < b.n; n++)
		if (imghdr_webp(b.p, n, MP, &hi) != PI_ERR_UNPROCESSABLE)
			bad++;
	is_int(bad, 0, "webp: every truncation refused (RIFF size)");
	b.p[20] = 0x2e;
	is_int(imghdr_webp(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp VP8L bad signature");
	b.p[20] = 0x2f;
	b.p[24] |= 0x20;        /* version 1 */
	is_int(imghdr_webp(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp VP8L bad version");
	b_free(&b);
	b_free(&d);

	riff_start(&b);
	vp8_payload(&d, 16383, 16383);
	webp_chunk(&b, "VP8 ", d.p, d.n);
	riff_end(&b);
	is_int(imghdr_webp(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp VP8 16383x16383 refused");
	b_free(&b);
	b_free(&d);
	riff_start(&b);
	vp8_payload(&d, 0xc000 | 640, 480);     /* scale bits ignored */
	webp_chunk(&b, "VP8 ", d.p, d.n);
	riff_end(&b);
	is_int(imghdr_webp(b.p, b.n, MP, &hi), 0, "webp lossy");
	is_int(hi.width, 640, "vp8 width (scale bits masked)");
	is_int(hi.height, 480, "vp8 height");
	b.p[20] |= 1;           /* interframe */
	is_int(imghdr_webp(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp VP8 not a key frame");
	b_free(&b);
	b_free(&d);

	/* VP8X: 24-bit canvas; EXIF sizes bounded; every frame checked. */
	riff_start(&b);
	b_put(&d, "\x08\0\0\0", 4);
	b_le24(&d, 16777215);
	b_le24(&d, 16777215);
	webp_chunk(&b, "VP8X", d.p, d.n);
	riff_end(&b);
	is_int(imghdr_webp(b.p, b.n, UINT64_MAX, &hi), 0,
	    "webp VP8X 2^24 canvas read, no overflow");
	is_int(hi.width, 16777216, "vp8x width");
	is_int(imghdr_webp(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp VP8X 2^24 canvas refused");
	b_free(&b);
	b_free(&d);

	riff_start(&b);
	b_put(&d, "\x08\0\0\0", 4);
	b_le24(&d, 99);
	b_le24(&d, 49);
	webp_chunk(&b, "VP8X", d.p, d.n);
	d.n = 0;
	vp8l_payload(&d, 100, 50);
	webp_chunk(&b, "VP8L", d.p, d.n);
	webp_chunk(&b, "EXIF", "Exif\0\0MM", 8);
	riff_end(&b);
	is_int(imghdr_webp(b.p, b.n, MP, &hi), 0, "webp VP8X + VP8L + EXIF");
	is_int(hi.width, 100, "canvas width");
	is_int(hi.height, 50, "canvas height");
	memcpy(b.p + b.n - 12, "\xff\xff\xff\x7f", 4);
	is_int(imghdr_webp(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp EXIF chunk size past the file refused");
	b_free(&b);
	b_free(&d);

	riff_start(&b);
	b_put(&d, "\x08\0\0\0", 4);
	b_le24(&d, 99);
	b_le24(&d, 49);
	webp_chunk(&b, "VP8X", d.p, d.n);
	d.n = 0;
	vp8l_payload(&d, 16000, 16000);
	webp_chunk(&b, "VP8L", d.p, d.n);
	riff_end(&b);
	is_int(imghdr_webp(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp VP8X small canvas, huge VP8L refused");
	b_free(&b);
	b_free(&d);

	riff_start(&b);
	b_put(&d, "\x12\0\0\0", 4);
	b_le24(&d, 99);
	b_le24(&d, 49);
	webp_chunk(&b, "VP8X", d.p, d.n);
	d.n = 0;
	b_put(&d, "\0\0\0\0\0\0", 6);
	b_le24(&d, 99);
	b_le24(&d, 49);
	b_put(&d, "\0\0\0\0", 4);
	{
		struct buf f = { 0 };

		vp8l_payload(&f, 16000, 16000);
		webp_chunk(&d, "VP8L", f.p, f.n);
		b_free(&f);
	}
	webp_chunk(&b, "ANMF", d.p, d.n);
	riff_end(&b);
	is_int(imghdr_webp(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp ANMF frame with a huge VP8L refused");
	b_free(&b);
	b_free(&d);

	riff_start(&b);
	webp_chunk(&b, "ALPH", "\0\0", 2);
	riff_end(&b);
	is_int(imghdr_webp(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp starting with an unknown chunk refused");
	b_free(&b);
	is_int(imghdr_webp((const unsigned char *)"RIFF\xff\xff\xff\xff"
	    "WEBPVP8L\5\0\0\0\x2f\0\0\0\0", 25, MP, &hi), PI_ERR_UNPROCESSABLE,
	    "webp RIFF size past the file refused");
}

/* --- TIFF ---------------------------------------------------------------- */

/* A TIFF with one IFD at offset 8: ImageWidth and ImageLength of the given
 * types, plus a StripOffsets field pointing at data at strip_off with
 * count 2 LONGs. */
static void
make_tiff(struct buf *b, int le, unsigned wtype, uint32_t w, unsigned htype,
    uint32_t h, uint32_t strip_off)
{
	void (*u16)(struct buf *, uint32_t) = le ? b_le16 : b_be16;
	void (*u32)(struct buf *, uint32_t) = le ? b_le32 : b_be32;
	struct { unsigned tag, type; uint32_t v; } e[3] = {
		{ 256, wtype, w }, { 257, htype, h }, { 273, 4, strip_off },
	};

	b_put(b, le ? "II" : "MM", 2);
	u16(b, 42);
	u32(b, 8);
	u16(b, 3);
	for (int i = 0; i < 3; i++) {
		u16(b, e[i].tag);
		u16(b, e[i].type);
		u32(b, i == 2 ? 2 : 1);
		if (e[i].type == 3) {
			u16(b, e[i].v);
			u16(b, 0);
		} else if (e[i].type == 1) {
			b_byte(b, e[i].v);
			b_put(b, "\0\0\0", 3);
		} else {
			u32(b, e[i].v);
		}
	}
	u32(b, 0);
	b_put(b, "\0\0\0\0\0\0\0\0", 8);        /* the strip offsets */
}

static void
test_tiff(void)
{
	struct buf b = { 0 };
	struct imghdr_info hi;
	int bad = 0;

	for (int le = 0; le < 2; le++) {
		const char *o = le ? "II" : "MM";
		char name[80];

		make_tiff(&b, le, 3, 640, 4, 480, 50);
		snprintf(name, sizeof(name), "tiff %s SHORT/LONG", o);
		is_int(imghdr_read(IMG_TIFF, b.p, b.n, MP, &hi), 0, name);
		is_int(hi.width, 640, "tiff width");
		is_int(hi.height, 480, "tiff height");
		bad = 0;
		for (size_t n = 0; n < b.n - 8; n++)
			if (imghdr_tiff(b.p, n, MP, &hi) != PI_ERR_UNPROCESSABLE)
				bad++;
		snprintf(name, sizeof(name), "tiff %s: every truncation refused",
		    o);
		is_int(bad, 0, name);
		b_free(&b);

		make_tiff(&b, le, 4, 100000, 4, 100000, 50);
		snprintf(name, sizeof(name), "tiff %s 100000^2 refused", o);
		is_int(imghdr_tiff(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
		    name);
		b_free(&b);
		make_tiff(&b, le, 4, 0xffffffffu, 4, 0xffffffffu, 50);
		is_int(imghdr_tiff(b.p, b.n, UINT64_MAX, &hi), 0,
		    "tiff 2^32-1 square: no overflow");
		is_int(imghdr_tiff(b.p, b.n, 4000000000ULL, &hi),
		    PI_ERR_UNPROCESSABLE, "tiff 2^32-1 square over 4e9");
		b_free(&b);
		make_tiff(&b, le, 1, 200, 3, 100, 50);
		is_int(imghdr_tiff(b.p, b.n, MP, &hi), 0, "tiff BYTE width");
		is_int(hi.width, 200, "tiff BYTE value");
		b_free(&b);
		make_tiff(&b, le, 2, 200, 3, 100, 50);
		is_int(imghdr_tiff(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
		    "tiff ASCII width refused");
		b_free(&b);
		make_tiff(&b, le, 3, 200, 3, 100, 0x7fffff00u);
		is_int(imghdr_tiff(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
		    "tiff field data outside the file refused");
		b_free(&b);
		make_tiff(&b, le, 3, 0, 3, 100, 50);
		is_int(imghdr_tiff(b.p, b.n, MP, &hi), PI_ERR_UNPROCESSABLE,
		    "tiff width 0 refused");
		b_free(&b);
	}
	is_int(imghdr_tiff((const unsigned char *)"II+\0\x08\0\0\0\0\0\0\0\0\0"
	    "\0\0", 16, MP, &hi), PI_ERR_UNPROCESSABLE, "BigTIFF refused");
	is_int(imghdr_tiff((const unsigned char *)"II*\0\xff\xff\xff\xff", 8,
	    MP, &hi), PI_ERR_UNPROCESSABLE, "tiff IFD offset past the end");
	is_int(imghdr_tiff((const unsigned char *)"II*\0\x08\0\0\0\xff\xff", 10,
	    MP, &hi), PI_ERR_UNPROCESSABLE, "tiff IFD count past the end");
	is_int(imghdr_tiff((const unsigned char *)"II*\0\x04\0\0\0\0\0", 10,
	    MP, &hi), PI_ERR_UNPROCESSABLE, "tiff IFD inside the header");
	is_int(imghdr_tiff((const unsigned char *)"II*\0\x08\0\0\0\0\0\0\0\0\0",
	    14, MP, &hi), PI_ERR_UNPROCESSABLE, "tiff empty IFD");
}

int
main(void)
{
	struct imghdr_info hi;

	test_jpeg();
	test_png();
	test_webp();
	test_tiff();
	is_int(imghdr_read(IMG_UNKNOWN, (const unsigned char *)"x", 1, MP, &hi),
	    PI_ERR_INTERNAL, "unknown type is the caller's error");
	is_int(imghdr_read(IMG_PNG, NULL, 0, MP, NULL), PI_ERR_INTERNAL,
	    "NULL info");
	return done_testing();
}
