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
	out->width = cinfo.output_width;
	out->height = cinfo.output_height;
	out->channels = (unsigned)cinfo.output_components;
	out->scale_num = cinfo.scale_num;
	stride = (size_t)out->width * out->channels;
	if ((out->pixels = bm_alloc(stride * out->height, 64)) == NULL ||
	    (rows = malloc(sizeof(JSAMPROW) * out->height)) == NULL) {
		err = PI_ERR_NOMEM;
		goto out;
	}
	for (uint32_t y = 0; y < out->height; y++)
		rows[y] = out->pixels + (size_t)y * stride;
	while (cinfo.output_scanline < cinfo.output_height) {
		JDIMENSION got = jpeg_read_scanlines(&cinfo,
		    rows + cinfo.output_scanline,
		    cinfo.output_height - cinfo.output_scanline);

		if (got == 0) {
			/* Only a suspending source returns nothing. */
			log_warn("jpegdec: refused: no progress");
			err = PI_ERR_UNPROCESSABLE;
			goto out;
		}
	}
	/* Reads up to EOI: a file cut in its last scan warns here. */
	(void)jpeg_finish_decompress(&cinfo);
	err = 0;
out:
	free(rows);
	if (made)
		jpeg_destroy_decompress(&cinfo);
	if (err != 0 || out->fallback != NULL) {
		const char *why = err == 0 ? out->fallback : NULL;

		jd_free(out);
		out->fallback = why;
	}
	return err;
}
