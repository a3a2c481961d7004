/* imgbench.c — polaimg's imaging code against libvips and libjpeg-turbo,
 * in one process, on the same files.
 *
 * Three implementations of the same three jobs:
 *   thumb    fit 400x400, baseline JPEG q82, metadata stripped
 *   display  long side 2048, progressive JPEG q85, auto-oriented, stripped
 *            but for the ICC profile (PNG input: 8-bit PNG)
 *   derive   both, from one decode (polaimg's real upload path)
 *   upload   the whole work of an upload but HTTP and the database: read
 *            the file, SHA-256 it, write the original, derive both copies,
 *            fsync all three (polaimg and vips only)
 * by
 *   polaimg  img_probe() + img_derive() from build/src/libpolaimg.a, the very
 *            objects the service runs (one thread, the worker's limits)
 *   vips     vips_thumbnail() + vips_jpegsave(), one thread, no cache
 *   tj       the floor: tjDecompress2() with the largest DCT scaling that
 *            stays at or above the target, an area-average resize, then
 *            tjCompress2(); no orientation, no metadata
 *
 *   imgbench time OP INPUT ROUNDS OUTDIR [IMPL...]
 *       one warm-up each, then ROUNDS rounds of A B C A B C ...; prints
 *       "impl op median_ms min_ms max_ms cpu_median_ms" (tab-separated)
 *       per implementation; cpu is the process's CPU time, steadier than
 *       the wall clock on a busy machine
 *   imgbench rss IMPL OP INPUT OUTDIR
 *       one job in this fresh process; prints "rss<TAB>peak_kib<TAB>base_kib"
 *       (base: after the library's initialisation, before the job)
 *
 * The environment variable POLAIMG_POLICY_DIR names polaimg's conf/ (its
 * ImageMagick policy), as imaging_policy_dir does in the service.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <turbojpeg.h>
#include <vips/vips.h>

#include "imaging.h"
#include "../tests/slurp.h"

enum op { OP_THUMB, OP_DISPLAY, OP_DERIVE, OP_UPLOAD };
enum impl { IM_POLAIMG, IM_VIPS, IM_TJ, IM__N };
static const char *const impl_names[IM__N] = { "polaimg", "vips", "tj" };
static const char *const op_names[] = { "thumb", "display", "derive",
    "upload" };
#define OP_N 4

static char outdir[1024];

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double
cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long
peak_kib(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return ru.ru_maxrss;
}

static int
out_path(char *buf, size_t size, const char *impl, const char *what)
{
	int n = snprintf(buf, size, "%s/%s.%s", outdir, impl, what);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}


/* ---- the upload's own work: read, hash, store, fsync ------------------ */

static int
sha256(const unsigned char *buf, size_t len, unsigned char *md)
{
	unsigned int mdlen = 0;

	return EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) == 1 &&
	    mdlen == 32 ? 0 : -1;
}

/* Writes buf to path and fsyncs it, as polaimg stores an original. */
static int
store(const char *path, const unsigned char *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);

		if (w <= 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) != 0) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static int
fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	return close(fd) != 0 ? -1 : r;
}

/* Read, hash and store the original as an upload does: the bytes, in
 * *buf (the caller frees it), and the stored copy at opath. */
static int
upload_prologue(const char *impl, const char *in, unsigned char **buf,
    size_t *len, char *opath, size_t osize)
{
	unsigned char md[32];

	if (out_path(opath, osize, impl, "original") != 0 ||
	    (*buf = slurp(in, len)) == NULL)
		return -1;
	if (sha256(*buf, *len, md) != 0 || store(opath, *buf, *len) != 0) {
		free(*buf);
		*buf = NULL;
		return -1;
	}
	return 0;
}

/* ---- polaimg ---------------------------------------------------------- */

static int
polaimg_init(void)
{
	uint64_t max_pixels = 100000000;
	/* The worker's limits (worker.c) for the default max_pixels. */
	struct img_limits lim = {
		.max_pixels = max_pixels,
		.memory_bytes = 8 * max_pixels + (128ULL << 20),
		.map_bytes = 16 * max_pixels + (256ULL << 20),
		.disk_bytes = 0,
		.max_dimension = 65500,
		.time_seconds = 120,
		.policy_dir = getenv("POLAIMG_POLICY_DIR"),
	};

	return img_init(&lim);
}

static int
polaimg_run(enum op op, const char *in)
{
	unsigned char head[16], *buf = NULL;
	char dpath[1100], tpath[1100], opath[1100];
	struct img_info info;
	struct img_outputs out;
	enum img_type t;
	FILE *f;
	size_t n, len;
	int err;

	if (op == OP_UPLOAD) {
		/* The worker probes and derives from the stored original. */
		if (upload_prologue("polaimg", in, &buf, &len, opath,
		    sizeof(opath)) != 0)
			return -1;
		t = img_sniff(buf, len);
		free(buf);
		in = opath;
	} else {
		if ((f = fopen(in, "rb")) == NULL)
			return -1;
		n = fread(head, 1, sizeof(head), f);
		fclose(f);
		t = img_sniff(head, n);
	}
	if (out_path(dpath, sizeof(dpath), "polaimg", "display") != 0 ||
	    out_path(tpath, sizeof(tpath), "polaimg", "thumb") != 0)
		return -1;
	if ((err = img_probe(in, t, 100000000, &info)) != 0)
		return err;
	memset(&out, 0, sizeof(out));
	out.display_path = dpath;
	out.thumb_path = tpath;
#ifdef IMG_SKIP_DISPLAY
	out.skip = op == OP_THUMB ? IMG_SKIP_DISPLAY : op == OP_DISPLAY ?
	    IMG_SKIP_THUMB : 0;
#else
	/* an older imaging.c: it always makes both */
	if (op != OP_DERIVE && op != OP_UPLOAD)
		return -1;
#endif
	if ((err = img_derive(in, &info, &out)) != 0)
		return err;
	if (op == OP_UPLOAD && (fsync_path(dpath) != 0 ||
	    fsync_path(tpath) != 0))
		return -1;
	return 0;
}

/* ---- libvips ---------------------------------------------------------- */

/* Drops every metadata field vips would write but the ICC profile. */
static void *
vips_strip_field(VipsImage *im, const char *name, GValue *value, void *a)
{
	static const char *const drop[] = { "exif-", "xmp-", "iptc-",
	    "jpeg-comment", "jpeg-thumbnail", "png-comment", "orientation" };

	(void)value;
	(void)a;
	for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		if (strncmp(name, drop[i], strlen(drop[i])) == 0)
			(void)vips_image_remove(im, name);
	return NULL;
}

static int
vips_save(VipsImage *im, const char *path, int png, int q, int progressive,
    int keep_icc)
{
	VipsImage *c = NULL;
	int r;

	if (vips_copy(im, &c, NULL) != 0)
		return -1;
	if (keep_icc)
		(void)vips_image_map(c, vips_strip_field, NULL);
	if (png)
		r = vips_pngsave(c, path, "strip", keep_icc ? FALSE : TRUE,
		    NULL);
	else
		r = vips_jpegsave(c, path, "Q", q, "interlace",
		    progressive ? TRUE : FALSE, "strip", keep_icc ? FALSE : TRUE,
		    "optimize_coding", TRUE, NULL);
	g_object_unref(c);
	return r;
}

/* 16-bit input becomes 8-bit, as polaimg's copies are. */
static int
vips_8bit(VipsImage **im)
{
	VipsImage *x = NULL;
	VipsInterpretation to = (*im)->Type == VIPS_INTERPRETATION_GREY16 ?
	    VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB;

	if ((*im)->BandFmt == VIPS_FORMAT_UCHAR)
		return 0;
	if (vips_colourspace(*im, &x, to, NULL) != 0)
		return -1;
	g_object_unref(*im);
	*im = x;
	return 0;
}

static int
vips_run(enum op op, const char *in)
{
	char dpath[1100], tpath[1100], opath[1100];
	VipsImage *d = NULL, *t = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	int png = strstr(in, ".png") != NULL;
	int r = -1;

	if (out_path(dpath, sizeof(dpath), "vips", "display") != 0 ||
	    out_path(tpath, sizeof(tpath), "vips", "thumb") != 0)
		return -1;
	if (op == OP_THUMB) {
		if (vips_thumbnail(in, &t, IMG_THUMB_MAX, "height",
		    IMG_THUMB_MAX, "size", VIPS_SIZE_DOWN, NULL) != 0)
			goto out;
		if (png && vips_8bit(&t) != 0)
			goto out;
		r = vips_save(t, tpath, png, 82, 0, 0);
		goto out;
	}
	if (op == OP_UPLOAD) {
		/* The bytes are in memory once read and hashed: decode them
		 * from there, as a program holding the request body would. */
		if (upload_prologue("vips", in, &buf, &len, opath,
		    sizeof(opath)) != 0)
			goto out;
		if (vips_thumbnail_buffer(buf, len, &d, IMG_DISPLAY_MAX,
		    "height", IMG_DISPLAY_MAX, "size", VIPS_SIZE_DOWN,
		    NULL) != 0)
			goto out;
	} else if (vips_thumbnail(in, &d, IMG_DISPLAY_MAX, "height",
	    IMG_DISPLAY_MAX, "size", VIPS_SIZE_DOWN, NULL) != 0) {
		goto out;
	}
	if (png && vips_8bit(&d) != 0)
		goto out;
	if (op == OP_DERIVE || op == OP_UPLOAD) {
		/* Hold the display copy in memory, then thumbnail from it. */
		VipsImage *m = vips_image_copy_memory(d);

		if (m == NULL)
			goto out;
		g_object_unref(d);
		d = m;
	}
	if (vips_save(d, dpath, png, 85, 1, 1) != 0)
		goto out;
	if (op == OP_DERIVE || op == OP_UPLOAD) {
		if (vips_thumbnail_image(d, &t, IMG_THUMB_MAX, "height",
		    IMG_THUMB_MAX, "size", VIPS_SIZE_DOWN, NULL) != 0 ||
		    vips_save(t, tpath, png, 82, 0, 1) != 0)
			goto out;
	}
	if (op == OP_UPLOAD && (fsync_path(dpath) != 0 ||
	    fsync_path(tpath) != 0))
		goto out;
	r = 0;
out:
	free(buf);
	if (d != NULL)
		g_object_unref(d);
	if (t != NULL)
		g_object_unref(t);
	if (r != 0)
		fprintf(stderr, "vips: %s\n", vips_error_buffer());
	vips_error_clear();
	return r;
}

/* ---- libjpeg-turbo: the floor ----------------------------------------- */

static void
fit(int w, int h, int box, int *fw, int *fh)
{
	if (w <= box && h <= box) {
		*fw = w;
		*fh = h;
	} else if (w >= h) {
		*fw = box;
		*fh = (int)(((int64_t)h * box + w / 2) / w);
	} else {
		*fh = box;
		*fw = (int)(((int64_t)w * box + h / 2) / h);
	}
	if (*fw < 1)
		*fw = 1;
	if (*fh < 1)
		*fh = 1;
}

/* One axis of an area-average resize: for output pixel i, the input range
 * [lo, hi) with fractional weights at both ends, in 1/65536ths. */
struct span {
	int lo, hi;
	uint32_t wlo, whi, wmid, inv;
};

static struct span *
spans(int in, int out)
{
	struct span *s = calloc((size_t)out, sizeof(*s));
	double scale = (double)in / out;

	if (s == NULL)
		return NULL;
	for (int i = 0; i < out; i++) {
		double a = i * scale, b = (i + 1) * scale;
		int lo = (int)floor(a), hi = (int)ceil(b);

		if (hi > in)
			hi = in;
		s[i].lo = lo;
		s[i].hi = hi;
		s[i].wlo = (uint32_t)lround((lo + 1 - a) * 256);
		s[i].whi = (uint32_t)lround((b - (hi - 1)) * 256);
		if (hi - lo == 1)
			s[i].wlo = s[i].whi = (uint32_t)lround((b - a) * 256);
		s[i].wmid = 256;
		s[i].inv = (uint32_t)lround(65536.0 / (scale * 256));
	}
	return s;
}

/* Area-average resize of packed RGB. */
static int
resize_area(const unsigned char *src, int sw, int sh, unsigned char *dst,
    int dw, int dh)
{
	struct span *sx = spans(sw, dw), *sy = spans(sh, dh);
	uint32_t *row = calloc((size_t)dw * 3, sizeof(uint32_t));
	int r = -1;

	if (sx == NULL || sy == NULL || row == NULL)
		goto out;
	for (int y = 0; y < dh; y++) {
		memset(row, 0, (size_t)dw * 3 * sizeof(uint32_t));
		for (int yy = sy[y].lo; yy < sy[y].hi; yy++) {
			uint32_t wy = yy == sy[y].lo ? sy[y].wlo :
			    yy == sy[y].hi - 1 ? sy[y].whi : 256;
			const unsigned char *p = src + (size_t)yy * sw * 3;

			for (int x = 0; x < dw; x++) {
				uint32_t acc[3] = { 0, 0, 0 };

				for (int xx = sx[x].lo; xx < sx[x].hi; xx++) {
					uint32_t wx = xx == sx[x].lo ? sx[x].wlo :
					    xx == sx[x].hi - 1 ? sx[x].whi : 256;

					acc[0] += wx * p[xx * 3];
					acc[1] += wx * p[xx * 3 + 1];
					acc[2] += wx * p[xx * 3 + 2];
				}
				for (int c = 0; c < 3; c++)
					row[x * 3 + c] += (uint32_t)(((uint64_t)
					    acc[c] * sx[x].inv) >> 16) * wy;
			}
		}
		for (int x = 0; x < dw * 3; x++) {
			uint32_t v = (uint32_t)(((uint64_t)row[x] * sy[y].inv)
			    >> 16);

			dst[(size_t)y * dw * 3 + x] = (unsigned char)(v > 255 ?
			    255 : v);
		}
	}
	r = 0;
out:
	free(sx);
	free(sy);
	free(row);
	return r;
}

static int
spit(const char *path, const unsigned char *buf, unsigned long len)
{
	FILE *f = fopen(path, "wb");
	int r;

	if (f == NULL)
		return -1;
	r = fwrite(buf, 1, len, f) == len ? 0 : -1;
	if (fclose(f) != 0)
		r = -1;
	return r;
}

/* Resizes rgb (w x h) to fit box and writes it as JPEG q. */
static int
tj_emit(const unsigned char *rgb, int w, int h, int box, int q, int flags,
    const char *path, unsigned char **dout, int *dw_out, int *dh_out)
{
	tjhandle c = tjInitCompress();
	unsigned char *small = NULL, *jpeg = NULL;
	unsigned long jlen = 0;
	int dw, dh, r = -1;

	fit(w, h, box, &dw, &dh);
	if (c == NULL || (small = malloc((size_t)dw * dh * 3)) == NULL)
		goto out;
	if (dw == w && dh == h)
		memcpy(small, rgb, (size_t)dw * dh * 3);
	else if (resize_area(rgb, w, h, small, dw, dh) != 0)
		goto out;
	if (tjCompress2(c, small, dw, 0, dh, TJPF_RGB, &jpeg, &jlen,
	    TJSAMP_420, q, flags) != 0 || spit(path, jpeg, jlen) != 0)
		goto out;
	if (dout != NULL) {
		*dout = small;
		*dw_out = dw;
		*dh_out = dh;
		small = NULL;
	}
	r = 0;
out:
	free(small);
	tjFree(jpeg);
	if (c != NULL)
		tjDestroy(c);
	return r;
}

static int
tj_run(enum op op, const char *in)
{
	char dpath[1100], tpath[1100];
	unsigned char *jpeg = NULL, *rgb = NULL, *disp = NULL;
	size_t len = 0;
	tjhandle d = tjInitDecompress();
	tjscalingfactor *sf;
	int nsf = 0, w, h, ss, cs, box, sw = 0, sh = 0, tw, th, dw = 0, dh = 0;
	int r = -1;

	if (d == NULL || out_path(dpath, sizeof(dpath), "tj", "display") != 0 ||
	    out_path(tpath, sizeof(tpath), "tj", "thumb") != 0 ||
	    (jpeg = slurp(in, &len)) == NULL ||
	    tjDecompressHeader3(d, jpeg, len, &w, &h, &ss, &cs) != 0 ||
	    (sf = tjGetScalingFactors(&nsf)) == NULL)
		goto out;
	box = op == OP_THUMB ? IMG_THUMB_MAX : IMG_DISPLAY_MAX;
	fit(w, h, box, &tw, &th);
	/* The smallest scaled size still at or above the target. */
	sw = w;
	sh = h;
	for (int i = 0; i < nsf; i++) {
		int x = TJSCALED(w, sf[i]), y = TJSCALED(h, sf[i]);

		if (sf[i].num > sf[i].denom)
			continue;
		if (x >= tw && y >= th && (long)x * y < (long)sw * sh) {
			sw = x;
			sh = y;
		}
	}
	if ((rgb = malloc((size_t)sw * sh * 3)) == NULL ||
	    tjDecompress2(d, jpeg, len, rgb, sw, 0, sh, TJPF_RGB, 0) != 0)
		goto out;
	if (op == OP_THUMB)
		r = tj_emit(rgb, sw, sh, IMG_THUMB_MAX, 82, 0, tpath, NULL,
		    NULL, NULL);
	else if (op == OP_DISPLAY)
		r = tj_emit(rgb, sw, sh, IMG_DISPLAY_MAX, 85, TJFLAG_PROGRESSIVE,
		    dpath, NULL, NULL, NULL);
	else if (tj_emit(rgb, sw, sh, IMG_DISPLAY_MAX, 85, TJFLAG_PROGRESSIVE,
	    dpath, &disp, &dw, &dh) == 0)
		r = tj_emit(disp, dw, dh, IMG_THUMB_MAX, 82, 0, tpath, NULL,
		    NULL, NULL);
out:
	if (r != 0)
		fprintf(stderr, "tj: %s\n", tjGetErrorStr2(d));
	free(disp);
	free(rgb);
	free(jpeg);
	if (d != NULL)
		tjDestroy(d);
	return r;
}

/* ---- driver ----------------------------------------------------------- */

static int
run(enum impl im, enum op op, const char *in)
{
	switch (im) {
	case IM_POLAIMG: return polaimg_run(op, in);
	case IM_VIPS: return vips_run(op, in);
	case IM_TJ: return tj_run(op, in);
	default: return -1;
	}
}

static int
init(enum impl im, const char *argv0)
{
	if (im == IM_POLAIMG)
		return polaimg_init();
	if (im == IM_VIPS) {
		if (VIPS_INIT(argv0) != 0)
			return -1;
		vips_concurrency_set(1);
		vips_cache_set_max(0);
		vips_cache_set_max_mem(0);
		vips_cache_set_max_files(0);
	}
	return 0;
}

static int
parse(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int
main(int argc, char **argv)
{
	int op, rounds, nimpl = 0, impls[IM__N];
	double *t[IM__N], *c[IM__N];

	if (argc >= 6 && strcmp(argv[1], "rss") == 0) {
		int im = parse(argv[2], impl_names, IM__N);
		long base;

		op = parse(argv[3], op_names, OP_N);
		snprintf(outdir, sizeof(outdir), "%s", argv[5]);
		if (im < 0 || op < 0 || init((enum impl)im, argv[0]) != 0)
			return 2;
		base = peak_kib();
		if (run((enum impl)im, (enum op)op, argv[4]) != 0) {
			fprintf(stderr, "%s %s failed\n", argv[2], argv[3]);
			return 1;
		}
		printf("rss\t%ld\t%ld\n", peak_kib(), base);
		return 0;
	}
	if (argc < 6 || strcmp(argv[1], "time") != 0) {
		fprintf(stderr, "usage: %s time OP INPUT ROUNDS OUTDIR [IMPL...]\n"
		    "       %s rss IMPL OP INPUT OUTDIR\n", argv[0], argv[0]);
		return 2;
	}
	op = parse(argv[2], op_names, OP_N);
	rounds = atoi(argv[4]);
	snprintf(outdir, sizeof(outdir), "%s", argv[5]);
	if (op < 0 || rounds < 1)
		return 2;
	for (int i = 6; i < argc && nimpl < IM__N; i++)
		if ((impls[nimpl] = parse(argv[i], impl_names, IM__N)) >= 0)
			nimpl++;
	if (nimpl == 0)
		for (nimpl = 0; nimpl < IM__N; nimpl++)
			impls[nimpl] = nimpl;
	for (int k = 0; k < nimpl; k++) {
		if (impls[k] == IM_TJ && (strstr(argv[3], ".png") != NULL ||
		    op == OP_UPLOAD)) {
			/* no PNG floor, no upload floor */
			impls[k--] = impls[--nimpl];
			continue;
		}
		if (init((enum impl)impls[k], argv[0]) != 0 ||
		    run((enum impl)impls[k], (enum op)op, argv[3]) != 0) {
			fprintf(stderr, "%s %s %s failed\n",
			    impl_names[impls[k]], argv[2], argv[3]);
			return 1;
		}
		if ((t[k] = calloc((size_t)rounds, sizeof(double))) == NULL ||
		    (c[k] = calloc((size_t)rounds, sizeof(double))) == NULL)
			return 1;
	}
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < nimpl; k++) {
			double t0 = now_ms(), c0 = cpu_ms();

			if (run((enum impl)impls[k], (enum op)op, argv[3]) != 0)
				return 1;
			t[k][r] = now_ms() - t0;
			c[k][r] = cpu_ms() - c0;
		}
	for (int k = 0; k < nimpl; k++) {
		double mt = median(t[k], rounds), mc = median(c[k], rounds);

		printf("%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\n", impl_names[impls[k]],
		    op_names[op], mt, t[k][0], t[k][rounds - 1], mc);
		free(t[k]);
		free(c[k]);
	}
	return 0;
}
