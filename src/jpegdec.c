/* jpegdec.c — JPEG decoding through libjpeg's own API, at any k/8 scale.
 *
 * Why not ImageMagick's JPEG coder: it asks libjpeg for 1/n of the size
 * (jpeg:size), and libjpeg-turbo then picks k/8 with k = ceil(8/n), so a
 * 3900-pixel photograph that must become 2048 pixels wide (n = 1) is
 * decoded whole, at 16 bits a sample, and ImageMagick's resize filters
 * then spend several times libvips's whole job on 12 MP. libjpeg-turbo
 * decodes at any k/8 (k = 1..16; we use 1..8): 5/8 gives 2438 pixels,
 * and what is left for MagickWand is a reduction by less than 1.25.
 * libjpeg-turbo 2.1 has SIMD inverse DCTs for 8/8, 4/8, 2/8 (and 1/8 is
 * a DC-only copy); 3/8, 5/8, 6/8 and 7/8 use its plain C reduced IDCTs.
 * Measured on a 3900x3072 q92 photograph, one thread: 8/8 100 ms,
 * 5/8 45 ms, 4/8 29 ms: the C scales still win, because the IDCT is
 * smaller and colour conversion and upsampling see fewer pixels (for
 * 4:2:0 and 4:2:2, libjpeg scales the chroma IDCT up instead of
 * upsampling, so a scaled decode has no separate upsampling step).
 *
 * The guards ImageMagick gave the old path, here:
 * - every libjpeg warning is a refusal (ImageMagick's CorruptImageWarning,
 *   which imaging.c refuses): "Premature end of JPEG file" (a truncated
 *   upload; libjpeg would fill the rest with grey), corrupt entropy-coded
 *   data, extraneous bytes, inconsistent progression;
 * - errors longjmp out of libjpeg to the one cleanup path, which destroys
 *   the decompressor and frees the pixels and the profile, so nothing
 *   leaks whatever fails;
 * - libjpeg's own memory is capped (max_memory_to_use; there is no backing
 *   store, so a progressive image whose coefficients do not fit is refused),
 *   the output buffer is the scaled size of a picture the caller has
 *   already held to max_pixels from its header;
 * - a deadline is checked from libjpeg's progress monitor, which libjpeg
 *   calls for every row of MCUs in every pass, the input passes of a
 *   progressive file included, and so is the scan count (a file of
 *   thousands of tiny scans costs seconds of CPU).
 *
 * What is left to ImageMagick (jd_decode answers "fallback"): CMYK and
 * YCCK (Adobe) JPEGs, which need ImageMagick's colour conversion;
 * arithmetic coding (rare; ImageMagick's libjpeg is the same library, so
 * its answer is the same, but it stays in one well-trodden path); other
 * than 8-bit samples (12-bit: libjpeg62-turbo refuses them, and so the
 * old path decides as before); anything but 1 or 3 components, and 3
 * components in an unknown colour space.
 */
#include "jpegdec.h"

#include "bigmem.h"
#include "common.h"
#include "log.h"

#include <limits.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jpeglib.h>
#include <jerror.h>

/* libjpeg's error manager, its progress monitor and our bounds, in one
 * block so the callbacks reach them all from cinfo. */
struct jd_ctx {
	struct jpeg_error_mgr err;     /* first: cinfo->err points here */
	struct jpeg_progress_mgr prog; /* cinfo->progress */
	jmp_buf jb;
	struct timespec deadline;      /* tv_sec 0: none */
	unsigned max_scans;            /* 0: no limit */
	int quiet;                     /* warnings now are not refusals */
	int unsupported;               /* the error means "fallback" */
	char msg[JMSG_LENGTH_MAX];
};

unsigned
jd_scale_for(uint64_t w, uint64_t h, uint64_t tw, uint64_t th)
{
	for (unsigned k = 1; k < 8; k++)
		if ((w * k + 7) / 8 >= tw && (h * k + 7) / 8 >= th)
			return k;
	return 8;
}

/* libjpeg's fatal errors: keep the message, leave through the jmp_buf. */
static void
jd_error_exit(j_common_ptr cinfo)
{
	struct jd_ctx *c = (struct jd_ctx *)(void *)cinfo->err;

	(*cinfo->err->format_message)(cinfo, c->msg);
	if (cinfo->err->msg_code == JERR_BAD_PRECISION)
		c->unsupported = 1;
	longjmp(c->jb, 1);
}

/* Warnings (level -1) refuse the image, as ImageMagick's
 * CorruptImageWarning does; traces (level >= 0) are ignored. */
static void
jd_emit_message(j_common_ptr cinfo, int level)
{
	struct jd_ctx *c = (struct jd_ctx *)(void *)cinfo->err;

	if (level >= 0)
		return;
	if (c->quiet) {
		cinfo->err->num_warnings++;
		return;
	}
	(*cinfo->err->format_message)(cinfo, c->msg);
	longjmp(c->jb, 1);
}

/* Called by libjpeg for every row of MCUs in every pass: the deadline and
 * the scan count. */
static void
jd_progress(j_common_ptr cinfo)
{
	struct jd_ctx *c = (struct jd_ctx *)(void *)cinfo->err;
	struct timespec now;

	if (c->max_scans != 0 && cinfo->is_decompressor &&
	    ((j_decompress_ptr)(void *)cinfo)->input_scan_number >
	    (int)c->max_scans) {
		(void)snprintf(c->msg, sizeof(c->msg),
		    "more than %u progressive scans", c->max_scans);
		longjmp(c->jb, 1);
	}
	if (c->deadline.tv_sec != 0 &&
	    clock_gettime(CLOCK_MONOTONIC, &now) == 0 &&
	    (now.tv_sec > c->deadline.tv_sec ||
	    (now.tv_sec == c->deadline.tv_sec &&
	    now.tv_nsec > c->deadline.tv_nsec))) {
		(void)snprintf(c->msg, sizeof(c->msg), "time limit reached");
		longjmp(c->jb, 1);
	}
}

/*
 * Orientation. The display copy is made upright; ImageMagick's quarter
 * turn of the reduced Q16 image (MagickAutoOrientImage, 2048x1536) took
 * 17-25 ms of a phone photograph's upload, and turning the whole decoded
 * 8-bit image into a second buffer 10 ms. So the decoder turns as it goes:
 * libjpeg writes JD_STRIP rows into a strip, and jd_place() puts them
 * where they belong in the upright output. For a quarter turn the strip's
 * rows become JD_STRIP columns of the output: each output row gets a run
 * of JD_STRIP pixels read down one column of the strip, whose rows stay
 * in the cache from one output row to the next. Measured (4032x3024 at
 * 5/8, one thread, CPU of the decode with a quarter turn minus without):
 * strips of 8, 16, 32, 64, 128, 256 rows 15, 15, 12, 9, 7, 7 ms; copying
 * a pixel as one 4-byte word (the next pixel overwrites the fourth byte)
 * 5.5 ms at 256. Longer runs write whole cache lines of the output.
 */
#define JD_STRIP 256

/* n pixels of ch bytes from s, stepping by step bytes, to d, packed. A
 * 3-byte pixel but the last is moved as 4 bytes: the fourth is read from
 * the source's next pixel or row (a strip has 4 bytes of slack at its
 * end) and written where the next pixel of the run goes. */
static void
jd_copy_run(unsigned char *restrict d, const unsigned char *restrict s,
    ptrdiff_t step, uint32_t n, unsigned ch)
{
	if (ch == 3) {
		uint32_t i = 0;

		for (; i + 1 < n; i++, d += 3, s += step) {
			uint32_t v;

			memcpy(&v, s, 4);
			memcpy(d, &v, 4);
		}
		for (; i < n; i++, d += 3, s += step) {
			d[0] = s[0];
			d[1] = s[1];
			d[2] = s[2];
		}
	} else {
		for (uint32_t i = 0; i < n; i++, d++, s += step)
			d[0] = s[0];
	}
}

/*
 * Puts n rows of the stored image (w x h, ch bytes a pixel), rows y0 ..
 * y0 + n - 1 in strip, into the upright image dst for EXIF orientation o
 * (2..8; dst is h x w for 5..8).
 */
static void
jd_place(unsigned char *dst, const unsigned char *strip, uint32_t y0,
    uint32_t n, uint32_t w, uint32_t h, unsigned ch, int o)
{
	size_t row = (size_t)w * ch, orow;

	if (o < 5) {
		/* 2 mirror, 3 half turn, 4 flip: stored row y is output row
		 * y (2) or h - 1 - y (3, 4), reversed for 2 and 3. */
		for (uint32_t i = 0; i < n; i++) {
			uint32_t y = y0 + i, dy = o == 2 ? y : h - 1 - y;
			const unsigned char *src = strip + i * row;

			if (o == 4)
				memcpy(dst + dy * row, src, row);
			else
				jd_copy_run(dst + dy * row, src + (w - 1) * ch,
				    -(ptrdiff_t)ch, w, ch);
		}
		return;
	}
	/* 5 transpose, 6 quarter turn clockwise, 7 transverse, 8 quarter
	 * turn anticlockwise: stored (x, y) goes to output column y (5, 8)
	 * or h - 1 - y (6, 7), output row x (5, 6) or w - 1 - x (7, 8). */
	orow = (size_t)h * ch;
	for (uint32_t dy = 0; dy < w; dy++) {
		uint32_t x = o == 5 || o == 6 ? dy : w - 1 - dy;

		if (o == 5 || o == 8)
			jd_copy_run(dst + dy * orow + (size_t)y0 * ch,
			    strip + (size_t)x * ch, (ptrdiff_t)row, n, ch);
		else
			jd_copy_run(dst + dy * orow +
			    (size_t)(h - y0 - n) * ch,
			    strip + (n - 1) * row + (size_t)x * ch,
			    -(ptrdiff_t)row, n, ch);
	}
}

/*
 * The last reduction. After the k/8 decode the display size is less than
 * 8/7 .. 2 times smaller (any factor for a thumbnail alone). ImageMagick's
 * area average (MagickScaleImage) of the Q16 image took 30 % of a 12 MP
 * upload's CPU (2438x1920 -> 2048x1613: 70 ms), and the Q16 copy of the
 * image before it another pixel cache to fault in. The same area average
 * here, on the 8-bit rows: every output pixel is the mean of the source
 * area it covers, source pixels cut by its edges weighted by the part
 * inside (12-bit fixed-point weights, each output's summing to exactly
 * 4096). Each source row is reduced across once and added to the one or
 * two output rows it reaches.
 */
#define JD_WBITS 12
#define JD_WONE (1u << JD_WBITS)

struct jd_span {
	uint32_t first, n;      /* source pixels first .. first + n - 1 */
	uint32_t w_at;          /* their weights' offset in the weight table */
};

/* How many source pixels at most an output of an area average from sn to
 * tn samples reaches (sn > tn): ceil(sn / tn) + 1, no more than sn. */
static uint32_t
jd_taps(uint32_t sn, uint32_t tn)
{
	uint64_t t = ((uint64_t)sn + tn - 1) / tn + 1;

	return t > sn ? sn : (uint32_t)t;
}

/* Spans and weights of an area average from sn to tn samples (sn > tn),
 * into span[tn] and wt. taps 0: each span covers just its area, wt holds
 * tn + sn entries. Otherwise every span is taps pixels long (the same
 * count for every output keeps the loops across free of unpredictable
 * branches), its weights outside the area 0, a span that would pass the
 * end starting earlier instead; wt holds tn * taps entries. */
static void
jd_spans(uint32_t sn, uint32_t tn, uint32_t taps, struct jd_span *span,
    uint16_t *wt)
{
	uint32_t at = 0;

	for (uint32_t t = 0; t < tn; t++) {
		/* Output t covers [t * sn / tn, (t + 1) * sn / tn), in units
		 * of 1/tn of a source pixel: [t * sn, (t + 1) * sn). */
		uint64_t lo = (uint64_t)t * sn, hi = lo + sn;
		uint32_t first = (uint32_t)(lo / tn), last =
		    (uint32_t)((hi - 1) / tn), left = JD_WONE, start, len;
		uint16_t *w = wt + at;

		len = taps != 0 ? taps : last - first + 1;
		start = first + len > sn ? sn - len : first;
		span[t].first = start;
		span[t].n = len;
		span[t].w_at = at;
		at += len;
		for (uint32_t i = first; i <= last && i - start < len; i++) {
			uint64_t a = (uint64_t)i * tn, b = a + tn;
			uint64_t in = (b < hi ? b : hi) - (a > lo ? a : lo);
			uint32_t v = i == last ? left :
			    (uint32_t)((in * JD_WONE + sn / 2) / sn);

			if (v > left)
				v = left;
			w[i - start] = (uint16_t)v;
			left -= v;
		}
	}
}

#define JD_VEC 16

/* An output sample from its 8.8 x 12-bit sum, rounded. */
static inline unsigned char
jd_out(uint32_t acc)
{
	uint32_t v = (acc + (1u << (JD_WBITS + 7))) >> (JD_WBITS + 8);

	return (unsigned char)(v > 255 ? 255 : v);
}

/* One source row reduced across: 8-bit * 12-bit weights, kept at 16 bits
 * (8.8 fixed point) in h[tw * ch]. */
static void
jd_across(uint16_t *restrict h, const unsigned char *restrict src,
    const struct jd_span *xs, const uint16_t *xw, uint32_t tw, unsigned ch,
    uint32_t taps)
{
	const uint32_t half = 1u << (JD_WBITS - 9);

	if (ch == 3 && taps == 3) {
		/* Every camera: a reduction by less than 2. */
		for (uint32_t x = 0; x < tw; x++, h += 3) {
			const unsigned char *p = src + (size_t)xs[x].first * 3;
			const uint16_t *w = xw + (size_t)x * 3;

			h[0] = (uint16_t)((half + w[0] * p[0] + w[1] * p[3] +
			    w[2] * p[6]) >> (JD_WBITS - 8));
			h[1] = (uint16_t)((half + w[0] * p[1] + w[1] * p[4] +
			    w[2] * p[7]) >> (JD_WBITS - 8));
			h[2] = (uint16_t)((half + w[0] * p[2] + w[1] * p[5] +
			    w[2] * p[8]) >> (JD_WBITS - 8));
		}
		return;
	}
	for (uint32_t x = 0; x < tw; x++) {
		const unsigned char *p = src + (size_t)xs[x].first * ch;
		const uint16_t *w = xw + xs[x].w_at;

		for (unsigned c = 0; c < ch; c++, h++) {
			uint32_t v = half;

			for (uint32_t i = 0; i < taps; i++)
				v += (uint32_t)w[i] * p[(size_t)i * ch + c];
			h[0] = (uint16_t)(v >> (JD_WBITS - 8));
		}
	}
}

int
jd_shrink(struct jd_image *img, uint32_t tw, uint32_t th)
{
	uint32_t sw, sh, y, xtaps;
	unsigned ch;
	size_t srow, trow, trowv;
	struct jd_span *xs = NULL, *ys = NULL;
	uint16_t *xw = NULL, *yw = NULL, *hrow = NULL;
	uint32_t *acc = NULL;
	unsigned char *dst = NULL;
	int err = PI_ERR_NOMEM;

	if (img == NULL || img->pixels == NULL || tw == 0 || th == 0 ||
	    tw > img->width || th > img->height)
		return PI_ERR_INTERNAL;
	if (tw == img->width && th == img->height)
		return 0;
	sw = img->width;
	sh = img->height;
	ch = img->channels;
	srow = (size_t)sw * ch;
	trow = (size_t)tw * ch;
	trowv = (trow + JD_VEC - 1) / JD_VEC * JD_VEC;  /* zero-padded */
	/* acc: the sums of output rows y and y + 1 (a source row, no taller
	 * than an output row, reaches at most two). */
	/* Zeroed: jd_spans() fills what is read, but no weight may ever be
	 * garbage. */
	xtaps = jd_taps(sw, tw);
	if ((xs = calloc(tw, sizeof(*xs))) == NULL ||
	    (ys = calloc(th, sizeof(*ys))) == NULL ||
	    (xw = calloc((size_t)tw * xtaps, sizeof(*xw))) == NULL ||
	    (yw = calloc((size_t)th + sh, sizeof(*yw))) == NULL ||
	    (hrow = calloc(trowv, sizeof(*hrow))) == NULL ||
	    (acc = calloc(2 * trowv, sizeof(*acc))) == NULL ||
	    (dst = bm_alloc(trow * th, 64)) == NULL)
		goto out;
	jd_spans(sw, tw, xtaps, xs, xw);
	/* Down: each span just its area (a source row reaches one or two
	 * output rows, see below). */
	jd_spans(sh, th, 0, ys, yw);
	/* Each source row is reduced across once and added, weighted, to
	 * the output rows it reaches; an output row is written when its
	 * last source row is in. */
	y = 0;
	for (uint32_t sy = 0; sy < sh && y < th; sy++) {
		jd_across(hrow, img->pixels + (size_t)sy * srow, xs, xw, tw, ch,
		    xtaps);
		for (uint32_t k = 0; k < 2 && y + k < th; k++) {
			const struct jd_span *sp = &ys[y + k];
			uint32_t *a = acc + (size_t)k * trowv, wy;

			if (sy < sp->first || sy >= sp->first + sp->n)
				continue;
			wy = yw[sp->w_at + (sy - sp->first)];
			/* Blocks of JD_VEC: loops the compiler vectorizes at
			 * -O2 (27 -> 17 ms for a 12 MP shrink). */
			for (size_t i = 0; i < trowv; i += JD_VEC)
				for (unsigned j = 0; j < JD_VEC; j++)
					a[i + j] += wy * hrow[i + j];
		}
		if (sy + 1 == ys[y].first + ys[y].n) {
			unsigned char *d = dst + (size_t)y * trow;
			size_t i = 0;

			for (; i + JD_VEC <= trow; i += JD_VEC)
				for (unsigned j = 0; j < JD_VEC; j++)
					d[i + j] = jd_out(acc[i + j]);
			for (; i < trow; i++)
				d[i] = jd_out(acc[i]);
			/* Row y + 1 becomes row y. */
			memcpy(acc, acc + trowv, sizeof(*acc) * trowv);
			memset(acc + trowv, 0, sizeof(*acc) * trowv);
			y++;
		}
	}
	if (y != th) {
		err = PI_ERR_INTERNAL;
		goto out;
	}
	bm_free(img->pixels);
	img->pixels = dst;
	dst = NULL;
	img->width = tw;
	img->height = th;
	err = 0;
out:
	bm_free(dst);
	free(acc);
	free(hrow);
	free(yw);
	free(xw);
	free(ys);
	free(xs);
	return err;
}

void
jd_free(struct jd_image *img)
{
	if (img == NULL)
		return;
	bm_free(img->pixels);
	free(img->icc);
	memset(img, 0, sizeof(*img));
}

/* Why this decoder leaves a JPEG whose header is in cinfo to ImageMagick,
 * or NULL if it decodes it. */
static const char *
jd_unusual(const struct jpeg_decompress_struct *cinfo)
{
	if (cinfo->arith_code)
		return "arithmetic coding";
	if (cinfo->data_precision != 8)
		return "not 8-bit samples";
	if (cinfo->jpeg_color_space == JCS_CMYK ||
	    cinfo->jpeg_color_space == JCS_YCCK)
		return "CMYK or YCCK";
	if (cinfo->num_components == 1 &&
	    cinfo->jpeg_color_space == JCS_GRAYSCALE)
		return NULL;
	if (cinfo->num_components == 3 &&
	    (cinfo->jpeg_color_space == JCS_YCbCr ||
	    cinfo->jpeg_color_space == JCS_RGB))
		return NULL;
	return "unusual components";
}

int
jd_decode(const unsigned char *buf, size_t len, uint64_t tw, uint64_t th,
    const struct jd_limits *lim, struct jd_image *out)
{
	struct jpeg_decompress_struct cinfo;
	struct jd_ctx ctx;
	/* volatile: read after a longjmp back into this frame */
	JSAMPROW *volatile rows = NULL;
	unsigned char *volatile strip = NULL;
	uint32_t sw, sh, nrows;
	int turn;
	volatile int made = 0, err = PI_ERR_UNPROCESSABLE;
	unsigned char *icc = NULL;
	unsigned int icc_len = 0;
	size_t stride;

	if (out == NULL || lim == NULL || buf == NULL || len == 0 || tw == 0 ||
	    th == 0 || len > ULONG_MAX)
		return PI_ERR_INTERNAL;
	memset(out, 0, sizeof(*out));
	memset(&ctx, 0, sizeof(ctx));
	cinfo.err = jpeg_std_error(&ctx.err);
	ctx.err.error_exit = jd_error_exit;
	ctx.err.emit_message = jd_emit_message;
	ctx.max_scans = lim->max_scans;
	if (lim->time_seconds != 0 &&
	    clock_gettime(CLOCK_MONOTONIC, &ctx.deadline) == 0)
		ctx.deadline.tv_sec += lim->time_seconds;
	if (setjmp(ctx.jb) != 0) {
		if (ctx.unsupported) {
			out->fallback = "not 8-bit samples";
			err = 0;
		} else {
			log_warn("jpegdec: refused: %s", ctx.msg);
			err = PI_ERR_UNPROCESSABLE;
		}
		goto out;
	}
	jpeg_create_decompress(&cinfo);
	made = 1;
	ctx.prog.progress_monitor = jd_progress;
	cinfo.progress = &ctx.prog;
	if (lim->memory_bytes != 0)
		cinfo.mem->max_memory_to_use = lim->memory_bytes >
		    (uint64_t)LONG_MAX ? LONG_MAX : (long)lim->memory_bytes;
	jpeg_mem_src(&cinfo, buf, (unsigned long)len);
	jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xFFFF);
	(void)jpeg_read_header(&cinfo, TRUE);
	if ((out->fallback = jd_unusual(&cinfo)) != NULL) {
		err = 0;
		goto out;
	}
	/* A malformed ICC chunk sequence loses the profile, not the image
	 * (libjpeg warns; ImageMagick keeps what it can too). */
	ctx.quiet = 1;
	if (jpeg_read_icc_profile(&cinfo, &icc, &icc_len) && icc != NULL) {
		/* out owns it from here, longjmp or not */
		out->icc = icc;
		out->icc_len = icc_len;
	}
	ctx.quiet = 0;
	cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE :
	    JCS_RGB;
	cinfo.scale_num = jd_scale_for(cinfo.image_width, cinfo.image_height,
	    tw, th);
	cinfo.scale_denom = 8;
	cinfo.dct_method = JDCT_ISLOW;
	(void)jpeg_start_decompress(&cinfo);
	if (cinfo.output_width == 0 || cinfo.output_height == 0 ||
	    (cinfo.output_components != 1 && cinfo.output_components != 3)) {
		(void)snprintf(ctx.msg, sizeof(ctx.msg), "odd output %ux%ux%d",
		    cinfo.output_width, cinfo.output_height,
		    cinfo.output_components);
		log_warn("jpegdec: refused: %s", ctx.msg);
		err = PI_ERR_UNPROCESSABLE;
		goto out;
	}
	turn = lim != NULL && lim->orientation >= 2 && lim->orientation <= 8 ?
	    lim->orientation : 1;
	sw = cinfo.output_width;
	sh = cinfo.output_height;
	out->width = turn >= 5 ? sh : sw;
	out->height = turn >= 5 ? sw : sh;
	out->channels = (unsigned)cinfo.output_components;
	out->scale_num = cinfo.scale_num;
	stride = (size_t)sw * out->channels;
	/* Upright already: rows straight into the output; else through a
	 * strip of JD_STRIP rows (see jd_place()). */
	nrows = turn == 1 ? sh : JD_STRIP;
	if ((out->pixels = bm_alloc(stride * sh, 64)) == NULL ||
	    (rows = malloc(sizeof(JSAMPROW) * nrows)) == NULL ||
	    (turn != 1 && (strip = malloc(stride * JD_STRIP + 4)) == NULL)) {
		err = PI_ERR_NOMEM;
		goto out;
	}
	for (uint32_t y = 0; y < nrows; y++)
		rows[y] = (turn == 1 ? out->pixels : strip) + (size_t)y * stride;
	while (cinfo.output_scanline < sh) {
		JDIMENSION y0 = cinfo.output_scanline, at = turn == 1 ? y0 : 0;
		JDIMENSION want = turn == 1 ? sh - y0 :
		    (sh - y0 < JD_STRIP ? sh - y0 : JD_STRIP);

		/* libjpeg gives a few rows a call: fill the strip. */
		while (at < (turn == 1 ? sh : want)) {
			JDIMENSION got = jpeg_read_scanlines(&cinfo, rows + at,
			    (turn == 1 ? sh : want) - at);

			if (got == 0) {
				/* Only a suspending source returns nothing. */
				log_warn("jpegdec: refused: no progress");
				err = PI_ERR_UNPROCESSABLE;
				goto out;
			}
			at += got;
		}
		if (turn != 1)
			jd_place(out->pixels, strip, y0, want, sw, sh,
			    out->channels, turn);
	}
	/* Reads up to EOI: a file cut in its last scan warns here. */
	(void)jpeg_finish_decompress(&cinfo);
	err = 0;
out:
	free(rows);
	free(strip);
	if (made)
		jpeg_destroy_decompress(&cinfo);
	if (err != 0 || out->fallback != NULL) {
		const char *why = err == 0 ? out->fallback : NULL;

		jd_free(out);
		out->fallback = why;
	}
	return err;
}
