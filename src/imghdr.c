/* imghdr.c — read image headers before any decoder does.
 *
 * ImageMagick's "ping" is not a header read for every coder: its WebP coder
 * decodes the whole bitstream to answer it (a 34-byte lossless WebP that
 * declares 16383x16383 costs a GB and seconds before polaimg could compare
 * the size with max_pixels), and libpng, under the PNG coder, inflates every
 * zTXt, compressed iTXt and iCCP chunk in full while the header is read (a
 * 509 KB file with a zTXt chunk of zeros inflates to 512 MiB). So polaimg
 * reads the four formats it accepts itself, from the bytes, and ImageMagick
 * only sees files that passed:
 *
 * - JPEG: segments are walked by their lengths from SOI to the first
 *   start-of-frame marker (SOF0..SOF15 but DHT, JPG and DAC), which must
 *   begin within IMGHDR_JPEG_SOF_WITHIN bytes; a scan, EOI or the end of
 *   the data before it refuses the file. Fill bytes (0xFF) before a marker
 *   are skipped; anything else between segments is corrupt (libjpeg warns,
 *   and imaging.c refuses every corrupt-image report anyway).
 * - PNG: IHDR must be the first chunk; then every chunk up to IEND is
 *   walked, each must lie inside the file, IEND must come, and the zlib streams of zTXt,
 *   compressed iTXt and iCCP are inflated into a small discard buffer,
 *   counting bytes, until a per-chunk cap (1 MiB text, 4 MiB ICC profile)
 *   or the per-file cap (8 MiB) is passed, which refuses the file. This is
 *   the only decompression done here; it never produces more than the caps
 *   plus one buffer, whatever the input. IDAT needs no such bound: libpng
 *   stops inflating it when the rows IHDR declares are complete. A stream
 *   that zlib finds corrupt stops the count (libpng drops such a chunk with
 *   a warning). CRCs are left to libpng.
 * - WebP: the RIFF size must fit the file, every chunk must fit the RIFF
 *   payload (so EXIF, XMP, ICCP and ALPH sizes are bounded by the file);
 *   the size comes from the VP8 key frame header (14-bit sides), the VP8L
 *   header (14-bit sides) or the VP8X canvas (24-bit sides), and every VP8,
 *   VP8L and ANMF frame inside a VP8X file is held to max_pixels too.
 * - TIFF: classic TIFF in both byte orders (BigTIFF is refused); the first
 *   IFD must lie in the file, every entry's data too, and ImageWidth (256)
 *   and ImageLength (257) must be there as one BYTE, SHORT or LONG.
 *
 * width*height is compared with max_pixels by division, never multiplied,
 * so no size overflows. Everything here is pure and bounded by the buffer
 * the caller gives (the whole file): the caller maps it read-only, so the
 * JPEG walk touches only the pages it jumps to.
 */
#include "imghdr.h"

#include "common.h"

#include <string.h>
#include <zlib.h>

static uint32_t
hdr_be16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t
hdr_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

static uint32_t
hdr_le16(const unsigned char *p)
{
	return (uint32_t)p[1] << 8 | p[0];
}

static uint32_t
hdr_le24(const unsigned char *p)
{
	return (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint32_t
hdr_le32(const unsigned char *p)
{
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[1] << 8 | p[0];
}

/* Records a refusal in info and returns PI_ERR_UNPROCESSABLE. */
static int
hdr_refuse(struct imghdr_info *info, const char *why)
{
	info->why = why;
	return PI_ERR_UNPROCESSABLE;
}

/* 0 if w x h is a size polaimg takes (both sides > 0, w*h <= max_pixels,
 * no multiplication), else a refusal. */
static int
hdr_size_ok(uint64_t w, uint64_t h, uint64_t max_pixels,
    struct imghdr_info *info)
{
	if (w == 0 || h == 0)
		return hdr_refuse(info, "a side of zero pixels");
	if (w > max_pixels / h)
		return hdr_refuse(info, "width*height over max_pixels");
	return 0;
}

/* Fills info with w x h after hdr_size_ok(). */
static int
hdr_set_size(uint64_t w, uint64_t h, uint64_t max_pixels,
    struct imghdr_info *info)
{
	int err;

	if ((err = hdr_size_ok(w, h, max_pixels, info)) != 0)
		return err;
	if (w > UINT32_MAX || h > UINT32_MAX)
		return hdr_refuse(info, "a side over 2^32-1 pixels");
	info->width = (uint32_t)w;
	info->height = (uint32_t)h;
	return 0;
}

static void
hdr_clear(struct imghdr_info *info)
{
	memset(info, 0, sizeof(*info));
}

/* --- JPEG ----------------------------------------------------------------- */

/* Start-of-frame markers: 0xC0..0xCF but DHT (C4), JPG (C8), DAC (CC). */
static int
hdr_jpeg_is_sof(unsigned m)
{
	return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
}

int
imghdr_jpeg(const unsigned char *buf, size_t len, uint64_t max_pixels,
    struct imghdr_info *info)
{
	size_t pos, limit;
	unsigned m;
	uint32_t seglen;

	if (info == NULL)
		return PI_ERR_INTERNAL;
	hdr_clear(info);
	if (buf == NULL || len < 2 || buf[0] != 0xff || buf[1] != 0xd8)
		return hdr_refuse(info, "no JPEG SOI marker");
	limit = len < IMGHDR_JPEG_SOF_WITHIN ? len : IMGHDR_JPEG_SOF_WITHIN;
	pos = 2;
	for (;;) {
		/* A marker: 0xFF, any fill 0xFFs, then the code. */
		if (pos >= limit)
			return hdr_refuse(info, len > limit ?
			    "no JPEG frame header within the first 16 MiB" :
			    "JPEG ends before its frame header");
		if (buf[pos] != 0xff)
			return hdr_refuse(info, "JPEG data between segments");
		while (pos < limit && buf[pos] == 0xff)
			pos++;
		if (pos >= limit)
			continue;       /* refused at the top */
		m = buf[pos++];
		if (m == 0x01 || (m >= 0xd0 && m <= 0xd7))
			continue;       /* TEM, RSTn: no length */
		if (m == 0x00 || m == 0xd8 || m == 0xd9 || m == 0xda)
			return hdr_refuse(info, m == 0xda ?
			    "JPEG scan before its frame header" :
			    "JPEG marker out of place before the frame header");
		if (pos + 2 > limit)
			return hdr_refuse(info, "JPEG ends in a segment length");
		seglen = hdr_be16(buf + pos);
		if (seglen < 2)
			return hdr_refuse(info, "JPEG segment length under 2");
		if (hdr_jpeg_is_sof(m)) {
			/* length, precision, height, width, components */
			if (seglen < 8 || pos + 8 > len)
				return hdr_refuse(info, "JPEG frame header "
				    "truncated");
			return hdr_set_size(hdr_be16(buf + pos + 5),
			    hdr_be16(buf + pos + 3), max_pixels, info);
		}
		pos += seglen;
	}
}

/* --- PNG ------------------------------------------------------------------ */

#define HDR_PNG_SIG "\x89PNG\r\n\x1a\n"
#define HDR_PNG_DISCARD 16384

/* Inflates the zlib stream in[0..n) into a discard buffer, counting the
 * bytes it gives, until the stream ends, zlib finds it corrupt, or the count
 * passes cap (the count is then over cap by less than the discard buffer).
 * Adds the count to *total. Returns 0, or PI_ERR_NOMEM if zlib could not
 * reset the stream. */
static int
hdr_inflate_count(z_stream *zs, const unsigned char *in, size_t n,
    uint64_t cap, uint64_t *total)
{
	unsigned char out[HDR_PNG_DISCARD];
	uint64_t got = 0;
	int zr;

	if (inflateReset(zs) != Z_OK)
		return PI_ERR_NOMEM;
	zs->next_in = (unsigned char *)(uintptr_t)in;
	zs->avail_in = (uInt)n;     /* n < 2^31: a PNG chunk length */
	do {
		zs->next_out = out;
		zs->avail_out = sizeof(out);
		zr = inflate(zs, Z_NO_FLUSH);
		got += sizeof(out) - zs->avail_out;
		if (zr != Z_OK)
			break;          /* end, corrupt, or no progress */
	} while (got <= cap);
	*total += got;
	return 0;
}

/* Where the zlib stream of a metadata chunk starts (an offset into data),
 * or 0 when the chunk carries none (iTXt not compressed) or is malformed
 * (libpng then drops it without inflating anything). */
static size_t
hdr_png_zstart(const unsigned char *type, const unsigned char *d, size_t n)
{
	const unsigned char *nul;
	size_t p;

	/* keyword or profile name, NUL */
	if ((nul = memchr(d, 0, n < 80 ? n : 80)) == NULL)
		return 0;
	p = (size_t)(nul - d) + 1;
	if (memcmp(type, "iTXt", 4) != 0)
		return p + 1 <= n ? p + 1 : 0;  /* compression method byte */
	/* iTXt: compression flag, method, language tag NUL, translated
	 * keyword NUL, text. */
	if (p + 2 > n || d[p] != 1)
		return 0;
	p += 2;
	for (int i = 0; i < 2; i++) {
		if ((nul = memchr(d + p, 0, n - p)) == NULL)
			return 0;
		p = (size_t)(nul - d) + 1;
	}
	return p;
}

int
imghdr_png(const unsigned char *buf, size_t len, uint64_t max_pixels,
    struct imghdr_info *info)
{
	z_stream zs;
	int zinit = 0, err;
	size_t pos;
	uint64_t total = 0, before, cap;

	if (info == NULL)
		return PI_ERR_INTERNAL;
	hdr_clear(info);
	if (buf == NULL || len < 8 || memcmp(buf, HDR_PNG_SIG, 8) != 0)
		return hdr_refuse(info, "no PNG signature");
	/* IHDR first: length 13, width, height (each 1..2^31-1). */
	if (len < 8 + 8 + 13 || hdr_be32(buf + 8) != 13 ||
	    memcmp(buf + 12, "IHDR", 4) != 0)
		return hdr_refuse(info, "PNG does not start with IHDR");
	if (hdr_be32(buf + 16) > 0x7fffffffu || hdr_be32(buf + 20) > 0x7fffffffu)
		return hdr_refuse(info, "PNG side over 2^31-1");
	if ((err = hdr_set_size(hdr_be32(buf + 16), hdr_be32(buf + 20),
	    max_pixels, info)) != 0)
		return err;

	memset(&zs, 0, sizeof(zs));
	pos = 8;
	while (pos < len) {
		const unsigned char *type, *data;
		uint32_t n;
		size_t z;

		if (len - pos < 12) {
			err = hdr_refuse(info, "PNG chunk header truncated");
			goto out;
		}
		n = hdr_be32(buf + pos);
		type = buf + pos + 4;
		data = buf + pos + 8;
		if (n > 0x7fffffffu || n > len - pos - 12) {
			err = hdr_refuse(info, "PNG chunk runs past the end");
			goto out;
		}
		if (memcmp(type, "IEND", 4) == 0) {
			err = 0;
			goto out;
		}
		if (memcmp(type, "zTXt", 4) == 0 || memcmp(type, "iTXt", 4) == 0 ||
		    memcmp(type, "iCCP", 4) == 0) {
			cap = type[1] == 'C' ? IMGHDR_PNG_ICCP_MAX :
			    IMGHDR_PNG_TEXT_MAX;
			if ((z = hdr_png_zstart(type, data, n)) != 0 && z < n) {
				if (!zinit) {
					if (inflateInit(&zs) != Z_OK) {
						err = PI_ERR_NOMEM;
						goto out;
					}
					zinit = 1;
				}
				before = total;
				if ((err = hdr_inflate_count(&zs, data + z,
				    n - z, cap, &total)) != 0)
					goto out;
				info->inflated = total;
				if (total - before > cap) {
					err = hdr_refuse(info, "PNG metadata chunk "
					    "inflates past its cap");
					goto out;
				}
				if (total > IMGHDR_PNG_INFLATE_MAX) {
					err = hdr_refuse(info, "PNG metadata inflates "
					    "past the per-file cap");
					goto out;
				}
			}
		}
		pos += 12 + (size_t)n;
	}
	err = hdr_refuse(info, "PNG ends before IEND");
out:
	if (zinit)
		(void)inflateEnd(&zs);
	if (err != 0) {
		info->width = 0;
		info->height = 0;
	}
	return err;
}

/* --- WebP ----------------------------------------------------------------- */

/* The size in the VP8 (lossy) bitstream d[0..n): a key frame's 3-byte tag,
 * the start code 9D 01 2A, then 14-bit width and height (2 scale bits). */
static int
hdr_webp_vp8(const unsigned char *d, size_t n, uint64_t *w, uint64_t *h)
{
	if (n < 10 || (d[0] & 1) != 0 || d[3] != 0x9d || d[4] != 0x01 ||
	    d[5] != 0x2a)
		return -1;
	*w = hdr_le16(d + 6) & 0x3fff;
	*h = hdr_le16(d + 8) & 0x3fff;
	return 0;
}

/* The size in the VP8L (lossless) bitstream d[0..n): signature 0x2F, then
 * 14 bits width-1, 14 bits height-1, alpha, 3 bits version (0). */
static int
hdr_webp_vp8l(const unsigned char *d, size_t n, uint64_t *w, uint64_t *h)
{
	uint32_t v;

	if (n < 5 || d[0] != 0x2f)
		return -1;
	v = hdr_le32(d + 1);
	if ((v >> 29) != 0)
		return -1;
	*w = (v & 0x3fff) + 1;
	*h = ((v >> 14) & 0x3fff) + 1;
	return 0;
}

/* Holds one chunk p (payload size n, known to lie in the buffer) of an
 * extended WebP to max_pixels: a VP8 or VP8L bitstream, or an ANMF frame
 * and the bitstreams inside it (depth 0 only: frames do not nest). Other
 * chunks pass. Returns 0 or a refusal. */
static int
hdr_webp_frame(const unsigned char *p, size_t n, uint64_t max_pixels,
    int depth, struct imghdr_info *info)
{
	const unsigned char *d = p + 8;
	uint64_t fw, fh;
	size_t pos, m;
	int err;

	if (memcmp(p, "VP8 ", 4) == 0) {
		if (hdr_webp_vp8(d, n, &fw, &fh) != 0)
			return hdr_refuse(info, "WebP VP8 key frame header "
			    "malformed");
		return hdr_size_ok(fw, fh, max_pixels, info);
	}
	if (memcmp(p, "VP8L", 4) == 0) {
		if (hdr_webp_vp8l(d, n, &fw, &fh) != 0)
			return hdr_refuse(info, "WebP VP8L header malformed");
		return hdr_size_ok(fw, fh, max_pixels, info);
	}
	if (memcmp(p, "ANMF", 4) != 0 || depth > 0)
		return 0;
	if (n < 16)
		return hdr_refuse(info, "WebP ANMF chunk too short");
	fw = (uint64_t)hdr_le24(d + 6) + 1;
	fh = (uint64_t)hdr_le24(d + 9) + 1;
	if ((err = hdr_size_ok(fw, fh, max_pixels, info)) != 0)
		return err;
	for (pos = 16; pos + 8 <= n; pos += 8 + m + (m & 1)) {
		m = hdr_le32(d + pos + 4);
		if (m > n - pos - 8)
			return hdr_refuse(info, "WebP chunk runs past its ANMF "
			    "frame");
		if ((err = hdr_webp_frame(d + pos, m, max_pixels, 1,
		    info)) != 0)
			return err;
	}
	return 0;
}

int
imghdr_webp(const unsigned char *buf, size_t len, uint64_t max_pixels,
    struct imghdr_info *info)
{
	const unsigned char *p, *d;
	size_t end, pos, n;
	uint64_t w, h;
	int vp8x = 0, err;

	if (info == NULL)
		return PI_ERR_INTERNAL;
	hdr_clear(info);
	if (buf == NULL || len < 20 || memcmp(buf, "RIFF", 4) != 0 ||
	    memcmp(buf + 8, "WEBP", 4) != 0)
		return hdr_refuse(info, "no WebP RIFF header");
	/* The RIFF payload (from "WEBP" on) must fit the file; bytes after it
	 * are ignored, as libwebp does. */
	n = hdr_le32(buf + 4);
	if (n < 4 + 8 || n > len - 8)
		return hdr_refuse(info, "WebP RIFF size does not fit the file");
	end = 8 + n;
	w = h = 0;
	for (pos = 12; pos < end; ) {
		if (end - pos < 8)
			return hdr_refuse(info, "WebP chunk header truncated");
		p = buf + pos;
		d = p + 8;
		n = hdr_le32(p + 4);
		if (n > end - pos - 8)
			return hdr_refuse(info, "WebP chunk runs past the RIFF "
			    "payload");
		if (pos == 12) {
			/* The first chunk says what the file is. */
			if (memcmp(p, "VP8X", 4) == 0) {
				if (n < 10)
					return hdr_refuse(info, "WebP VP8X chunk "
					    "too short");
				vp8x = 1;
				w = (uint64_t)hdr_le24(d + 4) + 1;
				h = (uint64_t)hdr_le24(d + 7) + 1;
			} else if (memcmp(p, "VP8 ", 4) == 0) {
				if (hdr_webp_vp8(d, n, &w, &h) != 0)
					return hdr_refuse(info, "WebP VP8 key "
					    "frame header malformed");
			} else if (memcmp(p, "VP8L", 4) == 0) {
				if (hdr_webp_vp8l(d, n, &w, &h) != 0)
					return hdr_refuse(info, "WebP VP8L header "
					    "malformed");
			} else {
				return hdr_refuse(info, "WebP starts with an "
				    "unknown chunk");
			}
			if ((err = hdr_size_ok(w, h, max_pixels, info)) != 0)
				return err;
		} else if (vp8x && (err = hdr_webp_frame(p, n, max_pixels, 0,
		    info)) != 0) {
			return err;
		}
		/* Chunks are padded to an even size; the padding of the
		 * last one may be missing. */
		pos += 8 + n + (n & 1);
	}
	return hdr_set_size(w, h, max_pixels, info);
}

/* --- TIFF ----------------------------------------------------------------- */

/* Bytes of one value of TIFF field type t (1..13), 0 if unknown. */
static unsigned
hdr_tiff_type_size(uint32_t t)
{
	static const unsigned size[] = {
		0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4
	};

	return t < PI_ARRAY_LEN(size) ? size[t] : 0;
}

int
imghdr_tiff(const unsigned char *buf, size_t len, uint64_t max_pixels,
    struct imghdr_info *info)
{
	uint32_t (*u16)(const unsigned char *), (*u32)(const unsigned char *);
	uint64_t w = 0, h = 0, off, cnt, sz;
	uint32_t ifd, type, v;
	int le;

	if (info == NULL)
		return PI_ERR_INTERNAL;
	hdr_clear(info);
	if (buf == NULL || len < 8)
		return hdr_refuse(info, "TIFF header truncated");
	if (buf[0] == 'I' && buf[1] == 'I')
		le = 1;
	else if (buf[0] == 'M' && buf[1] == 'M')
		le = 0;
	else
		return hdr_refuse(info, "no TIFF byte order mark");
	u16 = le ? hdr_le16 : hdr_be16;
	u32 = le ? hdr_le32 : hdr_be32;
	if (u16(buf + 2) == 43)
		return hdr_refuse(info, "BigTIFF is not accepted");
	if (u16(buf + 2) != 42)
		return hdr_refuse(info, "no TIFF magic number");
	ifd = u32(buf + 4);
	if (ifd < 8 || ifd > len || len - ifd < 2)
		return hdr_refuse(info, "TIFF first IFD outside the file");
	cnt = u16(buf + ifd);
	if (cnt == 0 || (len - ifd - 2) / 12 < cnt)
		return hdr_refuse(info, "TIFF first IFD runs past the end");
	for (uint64_t i = 0; i < cnt; i++) {
		const unsigned char *e = buf + ifd + 2 + 12 * i;
		uint32_t tag = u16(e);

		type = u16(e + 2);
		sz = (uint64_t)hdr_tiff_type_size(type) * u32(e + 4);
		if (sz > 4) {
			off = u32(e + 8);
			if (off > len || sz > len - off)
				return hdr_refuse(info, "TIFF field data outside "
				    "the file");
		}
		if (tag != 256 && tag != 257)
			continue;
		if (u32(e + 4) != 1)
			return hdr_refuse(info, "TIFF image size is not one value");
		switch (type) {
		case 1:                 /* BYTE */
			v = e[8];
			break;
		case 3:                 /* SHORT */
			v = u16(e + 8);
			break;
		case 4:                 /* LONG */
			v = u32(e + 8);
			break;
		default:
			return hdr_refuse(info, "TIFF image size of a wrong "
			    "type");
		}
		if (tag == 256)
			w = v;
		else
			h = v;
	}
	if (w == 0 || h == 0)
		return hdr_refuse(info, "TIFF without ImageWidth and "
		    "ImageLength");
	return hdr_set_size(w, h, max_pixels, info);
}

int
imghdr_read(enum img_type t, const unsigned char *buf, size_t len,
    uint64_t max_pixels, struct imghdr_info *info)
{
	if (info == NULL)
		return PI_ERR_INTERNAL;
	switch (t) {
	case IMG_JPEG: return imghdr_jpeg(buf, len, max_pixels, info);
	case IMG_PNG: return imghdr_png(buf, len, max_pixels, info);
	case IMG_WEBP: return imghdr_webp(buf, len, max_pixels, info);
	case IMG_TIFF: return imghdr_tiff(buf, len, max_pixels, info);
	case IMG_UNKNOWN: default:
		hdr_clear(info);
		info->why = "not an accepted image type";
		return PI_ERR_INTERNAL;
	}
}
