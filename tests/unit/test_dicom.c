/* test_dicom.c — dicom.cc: the header limits, the laterality and date
 * mappings, the middle frame of a volume, and the structure walker
 * (lengths, nesting, deflated data sets) before DCMTK reads a file.
 *
 * Files are built byte by byte here (explicit VR little endian Part 10:
 * preamble, "DICM", the meta group, the data set), so each header field
 * is exactly what the case needs; DCMTK then reads them from a temp file.
 * Valid files of every transfer syntax are the fuzz seeds made with
 * DCMTK's tools (tests/fuzz/corpus/dicom/op-*); the hostile shapes are
 * built here, deflated with zlib where the case needs it.
 */
#include "common.h"
#include "dicom.h"
#include "bytebuf.h"
#include "slurp.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

/* One explicit VR little endian element with a value of n bytes. */
static void
el(struct buf *b, unsigned g, unsigned e, const char *vr, const void *v,
    size_t n)
{
	b_le16(b, g);
	b_le16(b, e);
	b_put(b, vr, 2);
	if (strcmp(vr, "OB") == 0 || strcmp(vr, "OW") == 0) {
		b_le16(b, 0);
		b_le32(b, (uint32_t)n);
	} else {
		b_le16(b, (unsigned)n);
	}
	b_put(b, v, n);
}

/* A string element padded to even length (UI with NUL, others space). */
static void
el_str(struct buf *b, unsigned g, unsigned e, const char *vr, const char *s)
{
	char tmp[256];
	size_t n = strlen(s);

	memcpy(tmp, s, n);
	if (n % 2)
		tmp[n++] = strcmp(vr, "UI") == 0 ? '\0' : ' ';
	el(b, g, e, vr, tmp, n);
}

static void
el_us(struct buf *b, unsigned g, unsigned e, unsigned v)
{
	unsigned char x[2] = { (unsigned char)(v & 0xff), (unsigned char)(v >> 8) };

	el(b, g, e, "US", x, 2);
}

#define TS_EXPLICIT "1.2.840.10008.1.2.1"
#define TS_J2K "1.2.840.10008.1.2.4.90"
#define SOP_OP "1.2.840.10008.5.1.4.1.1.77.1.5.1"
#define SOP_OCT "1.2.840.10008.5.1.4.1.1.77.1.5.4"
#define SOP_CT "1.2.840.10008.5.1.4.1.1.2"

struct spec {
	const char *ts, *sop, *frames, *lat, *image_lat, *acq, *cdate, *ctime;
	const char *patient;
	unsigned rows, cols, bits;
	uint32_t pixel_len;           /* declared PixelData length */
	size_t pixel_have;            /* bytes of it actually written */
	const unsigned char *pixels;  /* NULL: a repeating pattern */
	const unsigned char *extra;   /* elements after Modality */
	size_t extra_len;
};

/* Builds the file of s; the caller frees b.p. */
static void
build(struct buf *b, const struct spec *s)
{
	struct buf meta = { 0 };
	unsigned char zero[128] = { 0 };
	char n[16];

	memset(b, 0, sizeof(*b));
	b_put(b, zero, sizeof(zero));
	b_put(b, "DICM", 4);
	el_str(&meta, 0x0002, 0x0010, "UI", s->ts ? s->ts : TS_EXPLICIT);
	{
		unsigned char len[4] = { (unsigned char)meta.n, 0, 0, 0 };

		el(b, 0x0002, 0x0000, "UL", len, 4);
	}
	b_put(b, meta.p, meta.n);
	free(meta.p);
	el_str(b, 0x0008, 0x0016, "UI", s->sop ? s->sop : SOP_OP);
	el_str(b, 0x0008, 0x0018, "UI", "1.2.3.4.5.6.7.8");
	if (s->acq)
		el_str(b, 0x0008, 0x002a, "DT", s->acq);
	if (s->cdate)
		el_str(b, 0x0008, 0x0023, "DA", s->cdate);
	if (s->ctime)
		el_str(b, 0x0008, 0x0033, "TM", s->ctime);
	el_str(b, 0x0008, 0x0060, "CS", "OP");
	if (s->extra_len > 0)
		b_put(b, s->extra, s->extra_len);
	if (s->patient)
		el_str(b, 0x0010, 0x0020, "LO", s->patient);
	el_str(b, 0x0020, 0x000d, "UI", "1.2.3");
	el_str(b, 0x0020, 0x000e, "UI", "1.2.3.4");
	if (s->lat)
		el_str(b, 0x0020, 0x0060, "CS", s->lat);
	if (s->image_lat)
		el_str(b, 0x0020, 0x0062, "CS", s->image_lat);
	el_us(b, 0x0028, 0x0002, 1);
	el_str(b, 0x0028, 0x0004, "CS", "MONOCHROME2");
	if (s->frames)
		el_str(b, 0x0028, 0x0008, "IS", s->frames);
	el_us(b, 0x0028, 0x0010, s->rows);
	el_us(b, 0x0028, 0x0011, s->cols);
	el_us(b, 0x0028, 0x0100, s->bits ? s->bits : 8);
	el_us(b, 0x0028, 0x0101, s->bits ? s->bits : 8);
	el_us(b, 0x0028, 0x0102, (s->bits ? s->bits : 8) - 1);
	el_us(b, 0x0028, 0x0103, 0);
	el_str(b, 0x0028, 0x1050, "DS", "128");
	el_str(b, 0x0028, 0x1051, "DS", "256");
	(void)n;
	b_le16(b, 0x7fe0);
	b_le16(b, 0x0010);
	b_put(b, "OW", 2);
	b_le16(b, 0);
	b_le32(b, s->pixel_len);
	for (size_t i = 0; i < s->pixel_have; i++) {
		unsigned char v = s->pixels ? s->pixels[i] : (unsigned char)(i * 7);

		b_put(b, &v, 1);
	}
}

static char tmpdir[] = "/tmp/test_dicom.XXXXXX";

/* Writes b to a temp file; returns its path (static buffer). */
static const char *
to_file(const struct buf *b)
{
	static char path[256];
	static int seq;
	FILE *f;

	(void)snprintf(path, sizeof(path), "%s/f%d.dcm", tmpdir, ++seq);
	if ((f = fopen(path, "wb")) == NULL || fwrite(b->p, 1, b->n, f) != b->n ||
	    fclose(f) != 0) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(2);
	}
	return path;
}

/* Probes the file of s. */
static int
probe(const struct spec *s, struct dicom_info *info)
{
	struct buf b;
	const char *p;
	int rc;

	build(&b, s);
	p = to_file(&b);
	rc = dicom_probe(p, info);
	(void)unlink(p);
	free(b.p);
	return rc;
}

/* An otherwise valid w x h x frames 8-bit spec. */
static struct spec
good(unsigned w, unsigned h, unsigned frames)
{
	struct spec s;

	memset(&s, 0, sizeof(s));
	s.rows = h;
	s.cols = w;
	s.pixel_len = w * h * frames;
	s.pixel_len += s.pixel_len % 2;
	s.pixel_have = s.pixel_len;
	return s;
}

static void
test_pure(void)
{
	is_int(dicom_laterality("R"), 'R', "laterality R");
	is_int(dicom_laterality("L "), 'L', "laterality L with padding");
	is_int(dicom_laterality("B"), 'B', "laterality B");
	is_int(dicom_laterality("U"), 0, "laterality U (unpaired) is none");
	is_int(dicom_laterality("RL"), 0, "laterality RL is none");
	is_int(dicom_laterality(""), 0, "empty laterality");
	is_int(dicom_laterality(NULL), 0, "NULL laterality");

	/* A clock without an offset is local_timezone's (the process's TZ). */
	ok(setenv("TZ", "Asia/Bangkok", 1) == 0, "TZ Asia/Bangkok");
	tzset();
	ok(dicom_time("20240131143015", NULL, NULL, NULL) ==
	    1706711415 - 7 * 3600, "DT without offset is Bangkok's local time");
	ok(dicom_time("20240131143015+0000", NULL, NULL, NULL) == 1706711415,
	    "DT with +0000 is UTC whatever the zone");
	ok(setenv("TZ", "UTC", 1) == 0, "TZ UTC");
	tzset();
	ok(dicom_time("20240131143015", NULL, NULL, NULL) == 1706711415,
	    "DT without offset in UTC");
	ok(dicom_time("20240131143015.123456+0700", NULL, NULL, NULL) ==
	    1706711415 - 7 * 3600, "DT with its offset");
	ok(dicom_time("20240131143015-0130", NULL, NULL, NULL) ==
	    1706711415 + 90 * 60, "DT with a negative offset");
	ok(dicom_time("202401311430", NULL, NULL, NULL) == 1706711400,
	    "DT to the minute");
	ok(dicom_time("20240131", NULL, NULL, NULL) == 1706659200,
	    "DT of a date alone");
	ok(dicom_time("2024", NULL, NULL, NULL) == -1, "DT of a year alone: no time");
	ok(dicom_time("20240231120000", NULL, NULL, NULL) == -1, "31 February");
	ok(dicom_time("20241301", NULL, NULL, NULL) == -1, "month 13");
	ok(dicom_time("19691231235959", NULL, NULL, NULL) == -1, "before 1970");
	ok(dicom_time("2024013114301x", NULL, NULL, NULL) == -1, "not digits");
	ok(dicom_time("20240131143015+99", NULL, NULL, NULL) == -1, "bad offset");
	ok(dicom_time(NULL, "20230405", "081500", NULL) == 1680682500,
	    "ContentDate with ContentTime");
	ok(dicom_time(NULL, "20230405", "081500.5", "+0200") ==
	    1680682500 - 7200, "ContentDate/Time with TimezoneOffsetFromUTC");
	ok(dicom_time(NULL, "20230405", NULL, NULL) == 1680652800,
	    "ContentDate alone is midnight");
	ok(dicom_time(NULL, "20230405", "0815", NULL) == 1680682500 - 0,
	    "ContentTime HHMM");
	ok(dicom_time(NULL, "2023.04.05", NULL, NULL) == -1, "old dotted DA refused");
	ok(dicom_time(NULL, "20230405", "25", NULL) == -1, "hour 25");
	ok(dicom_time("", "", "", "") == -1, "all empty");

	{
		unsigned char h[132] = { 0 };

		memcpy(h + 128, "DICM", 4);
		ok(dicom_sniff(h, sizeof(h)), "sniff: DICM at 128");
		ok(!dicom_sniff(h, 131), "sniff: too short");
		h[128] = 'X';
		ok(!dicom_sniff(h, sizeof(h)), "sniff: not DICM");
	}
}

static void
test_header(void)
{
	struct dicom_info info;
	struct spec s;

	s = good(64, 48, 1);
	s.image_lat = "L";
	s.acq = "20240131143015";
	s.patient = "HN-0042";
	is_int(probe(&s, &info), 0, "a good header");
	is_int((int)info.rows, 48, "rows");
	is_int((int)info.cols, 64, "columns");
	is_int((int)info.frames, 1, "no NumberOfFrames is one frame");
	is_int(info.laterality, 'L', "ImageLaterality");
	ok(info.captured_at == 1706711415, "AcquisitionDateTime");
	is_str(info.patient_id, "HN-0042", "PatientID");
	is_str(info.sop_uid, "1.2.3.4.5.6.7.8", "SOP Instance UID");
	is_str(info.study_uid, "1.2.3", "Study Instance UID");
	is_str(info.modality, "OP", "Modality");

	s = good(16, 16, 1);
	s.lat = "R";
	s.cdate = "20230405";
	s.ctime = "081500";
	is_int(probe(&s, &info), 0, "Laterality and ContentDate/Time");
	is_int(info.laterality, 'R', "Laterality when ImageLaterality is absent");
	ok(info.captured_at == 1680682500, "ContentDate/Time");

	s = good(16, 16, 1);
	s.image_lat = "U";
	s.lat = "B";
	is_int(probe(&s, &info), 0, "ImageLaterality U, Laterality B");
	is_int(info.laterality, 'B', "an unpaired ImageLaterality falls back to Laterality");

	/* The limits, from the header alone. */
	s = good(1000, 1000, 1);
	s.pixel_have = 0;           /* never read */
	s.pixel_len = 1000000;
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE,
	    "1000x1000 over max_pixels 500000 (before the pixel data)");
	s = good(16, 16, 1);
	s.rows = 65535;
	s.cols = 65535;
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE, "65535x65535");
	s = good(16, 16, 4);
	s.frames = "5";
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE, "5 frames over max_frames 4");
	s = good(16, 16, 4);
	s.frames = "4";
	is_int(probe(&s, &info), 0, "4 frames is max_frames");
	is_int((int)info.frames, 4, "frames read");
	s = good(16, 16, 1);
	s.frames = "2147483647";
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE, "2^31-1 frames");
	s = good(16, 16, 1);
	s.frames = "-3";
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE, "negative frames");
	s = good(16, 16, 1);
	s.frames = "0";
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE, "zero frames");
	s = good(16, 16, 1);
	s.rows = 0;
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE, "zero rows");
	s = good(16, 16, 1);
	s.bits = 32;
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE, "32 bits allocated");

	/* Truncated pixel data: the value says more than the file has. */
	s = good(64, 64, 1);
	s.pixel_have = 1000;
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE, "pixel data cut short");
	s = good(64, 64, 2);
	s.frames = "2";
	s.pixel_len = 64 * 64;      /* one frame's worth for two */
	s.pixel_have = s.pixel_len;
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE,
	    "pixel data shorter than its frames");

	/* What is refused by kind. */
	s = good(16, 16, 1);
	s.ts = TS_J2K;
	is_int(probe(&s, &info), PI_ERR_UNSUPPORTED, "JPEG 2000");
	ok(info.refused_ts && !info.refused_sop, "refused for its transfer syntax");
	is_str(info.transfer_syntax, TS_J2K, "the transfer syntax is named");
	s = good(16, 16, 1);
	s.sop = SOP_CT;
	is_int(probe(&s, &info), PI_ERR_UNSUPPORTED, "a CT image");
	ok(info.refused_sop && !info.refused_ts, "refused for its SOP class");

	/* Not DICOM at all, or a header cut at any byte. */
	{
		struct buf b;
		const char *p;
		int bad = 0;

		s = good(8, 8, 1);
		build(&b, &s);
		for (size_t cut = 0; cut < b.n - 64; cut += 7) {
			size_t keep = b.n;

			b.n = cut;
			p = to_file(&b);
			if (dicom_probe(p, &info) == 0)
				bad++;
			(void)unlink(p);
			b.n = keep;
		}
		is_int(bad, 0, "every truncation of a header is refused");
		memcpy(b.p + 128, "DICX", 4);
		p = to_file(&b);
		is_int(dicom_probe(p, &info), PI_ERR_UNPROCESSABLE, "no DICM");
		(void)unlink(p);
		free(b.p);
	}
}

static void
test_render(void)
{
	struct dicom_info info;
	struct spec s;
	struct buf b;
	unsigned char px[3 * 8 * 8], *out = NULL;
	const char *p;
	uint32_t w = 0, h = 0;
	int ch = 0;

	/* Three frames of 10, 120, 240: the middle one is shown (window
	 * 128/256 keeps the values). */
	memset(px, 10, 64);
	memset(px + 64, 120, 64);
	memset(px + 128, 240, 64);
	s = good(8, 8, 3);
	s.sop = SOP_OCT;
	s.frames = "3";
	s.pixels = px;
	build(&b, &s);
	p = to_file(&b);
	is_int(dicom_probe(p, &info), 0, "a 3-frame volume");
	is_int(dicom_render(p, &info, &out, &w, &h, &ch), 0, "rendered");
	ok(w == 8 && h == 8 && ch == 1, "8x8 grey");
	ok(out != NULL && abs((int)out[27] - 120) <= 2,
	    "the middle frame (120) is shown");
	free(out);
	out = NULL;
	(void)unlink(p);
	free(b.p);
}

/* --- the structure walker (dicom_walk) ----------------------------------- */

#define TS_IMPLICIT "1.2.840.10008.1.2"
#define TS_DEFLATED "1.2.840.10008.1.2.1.99"
#define SEQ_TAG 0x0008, 0x1115   /* ReferencedSeriesSequence */

/* A Part 10 file from a corpus seed of tests/fuzz/corpus/dicom/ (the
 * file less its first 132 bytes, made with DCMTK's tools). */
static void
seed_file(struct buf *b, const char *name)
{
	char path[512];
	unsigned char zero[128] = { 0 };
	unsigned char *d;
	size_t n;

	memset(b, 0, sizeof(*b));
	(void)snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/dicom/%s",
	    POLAIMG_TREE_SRCDIR, name);
	if ((d = slurp(path, &n)) == NULL) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	b_put(b, zero, sizeof(zero));
	b_put(b, "DICM", 4);
	b_put(b, d, n);
	free(d);
}

/* The offset of the data set of a Part 10 file built by build() (after
 * its meta group, whose length (0002,0000) gives). */
static size_t
ds_start(const struct buf *b)
{
	return 132 + 12 + (b->p[140] | (size_t)b->p[141] << 8);
}

/* The file of in with its data set deflated (raw deflate, as Part 5
 * A.5 says); in's transfer syntax must already be TS_DEFLATED. */
static void
deflate_ds(const struct buf *in, struct buf *out)
{
	size_t at = ds_start(in);
	z_stream z;
	unsigned char chunk[65536];
	int zr;

	memset(out, 0, sizeof(*out));
	b_put(out, in->p, at);
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 9, Z_DEFLATED, -MAX_WBITS, 9,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		exit(2);
	z.next_in = in->p + at;
	z.avail_in = (uInt)(in->n - at);
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		zr = deflate(&z, Z_FINISH);
		b_put(out, chunk, sizeof(chunk) - z.avail_out);
	} while (zr == Z_OK);
	(void)deflateEnd(&z);
	if (zr != Z_STREAM_END)
		exit(2);
}

/* levels sequences of defined length nested one in the other's item
 * (explicit VR), as one SQ element. */
static void
nest_defined(struct buf *b, unsigned levels)
{
	struct buf in = { 0 }, out;

	for (unsigned i = 0; i < levels; i++) {
		memset(&out, 0, sizeof(out));
		b_le16(&out, 0x0008);
		b_le16(&out, 0x1115);
		b_put(&out, "SQ\0\0", 4);
		b_le32(&out, (uint32_t)(in.n + 8));
		b_le16(&out, 0xfffe);
		b_le16(&out, 0xe000);
		b_le32(&out, (uint32_t)in.n);
		if (in.n > 0)
			b_put(&out, in.p, in.n);
		free(in.p);
		in = out;
	}
	*b = in;
}

/* levels sequences and items of undefined length, nested. */
static void
nest_undefined(struct buf *b, unsigned levels)
{
	memset(b, 0, sizeof(*b));
	for (unsigned i = 0; i < levels; i++) {
		b_le16(b, 0x0008);
		b_le16(b, 0x1115);
		b_put(b, "SQ\0\0", 4);
		b_le32(b, 0xffffffffu);
		b_le16(b, 0xfffe);
		b_le16(b, 0xe000);
		b_le32(b, 0xffffffffu);
	}
	for (unsigned i = 0; i < levels; i++) {
		b_le16(b, 0xfffe);
		b_le16(b, 0xe00d);
		b_le32(b, 0);
		b_le16(b, 0xfffe);
		b_le16(b, 0xe0dd);
		b_le32(b, 0);
	}
}

/* Probes the file b in a forked child, its address space held to what
 * it uses now plus 1 GiB (not under AddressSanitizer, whose shadow
 * memory is already larger): an allocation of gigabytes fails there
 * instead of on the host. Returns the child's answer; *signal the
 * signal that killed it, else 0; log (size logn) what it logged. */
static int
probe_child(const struct buf *b, int *signal, char *log, size_t logn)
{
	struct dicom_info info;
	const char *p = to_file(b);
	char logpath[256];
	int status = 0, rc, fd;
	pid_t pid;
	FILE *lf;

	*signal = 0;
	(void)snprintf(logpath, sizeof(logpath), "%s/child.log", tmpdir);
	if ((fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		exit(2);
	if ((pid = fork()) < 0)
		exit(2);
	if (pid == 0) {
		if (dup2(fd, STDERR_FILENO) < 0)
			_exit(100);
#if !defined(__SANITIZE_ADDRESS__)
		long pages = 0, rss;
		FILE *f = fopen("/proc/self/statm", "r");
		struct rlimit rl;

		if (f == NULL || fscanf(f, "%ld %ld", &pages, &rss) != 2)
			_exit(100);
		(void)fclose(f);
		rl.rlim_cur = rl.rlim_max = (rlim_t)pages *
		    (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(100);
#endif
		rc = dicom_probe(p, &info);
		_exit(-rc & 0x7f);
	}
	(void)close(fd);
	if (waitpid(pid, &status, 0) != pid)
		exit(2);
	(void)unlink(p);
	log[0] = '\0';
	if ((lf = fopen(logpath, "r")) != NULL) {
		size_t n = fread(log, 1, logn - 1, lf);

		log[n] = '\0';
		(void)fclose(lf);
	}
	(void)unlink(logpath);
	if (WIFSIGNALED(status)) {
		*signal = WTERMSIG(status);
		return 1;
	}
	return -WEXITSTATUS(status);
}

/* A spec of 8x8 pixels with extra elements (explicit VR bytes) after
 * Modality. */
static struct spec
with_extra(const struct buf *extra)
{
	struct spec s = good(8, 8, 1);

	s.extra = extra->p;
	s.extra_len = extra->n;
	return s;
}

/* A deflated file holding an OB of n zeros (a few KB deflated) probes
 * to want. */
static void
deflated_zeros(size_t n, int want, const char *name)
{
	struct dicom_info info;
	struct buf x = { 0 }, b, d;
	struct spec s;
	unsigned char *zeros = calloc(1, n);
	const char *p;

	if (zeros == NULL)
		exit(2);
	el(&x, 0x0042, 0x0011, "OB", zeros, n);
	free(zeros);
	s = with_extra(&x);
	s.ts = TS_DEFLATED;
	build(&b, &s);
	deflate_ds(&b, &d);
	ok(d.n < 100000, "  (deflated to under 100 KB)");
	p = to_file(&d);
	is_int(dicom_probe(p, &info), want, name);
	(void)unlink(p);
	free(b.p);
	free(d.p);
	free(x.p);
}

static void
test_walk(void)
{
	static const struct {
		const char *seed;
		int rc;
	} seeds[] = {
		{ "op-raw", 0 }, { "op-impl", 0 }, { "op-defl", 0 },
		{ "op-rle", 0 }, { "op-jpeg", 0 }, { "op-jll", 0 },
		{ "op-jls", 0 }, { "mono1-16bit", 0 },
		{ "op-j2k", PI_ERR_UNSUPPORTED },
	};
	struct dicom_info info;
	struct buf b, x, d;
	struct spec s;
	char log[4096];
	int sig;

	/* Files made by DCMTK's tools still pass. */
	for (size_t i = 0; i < PI_ARRAY_LEN(seeds); i++) {
		const char *p;
		char name[64];

		(void)snprintf(name, sizeof(name), "DCMTK-made %s",
		    seeds[i].seed);
		seed_file(&b, seeds[i].seed);
		p = to_file(&b);
		is_int(dicom_probe(p, &info), seeds[i].rc, name);
		(void)unlink(p);
		free(b.p);
	}

	/* The fuzzer's 538-byte file: inside its deflated data set an OW
	 * claims 3,948,107,009 bytes, which DCMTK allocated. */
	seed_file(&b, "oom-deflated-element-length");
	is_int(probe_child(&b, &sig, log, sizeof(log)), PI_ERR_UNPROCESSABLE,
	    "a deflated element claiming 3.9 GB: refused, under 1 GiB");
	is_int(sig, 0, "  the probe was not killed");
	ok(strstr(log, "dicom: data set refused: an element longer") != NULL &&
	    strstr(log, "header unreadable") == NULL,
	    "  by the structure check, before DCMTK allocates it");
	free(b.p);

	/* Nesting of defined length, which the old byte scan did not see. */
	nest_defined(&x, 10000);
	s = with_extra(&x);
	build(&b, &s);
	is_int(probe_child(&b, &sig, log, sizeof(log)), PI_ERR_UNPROCESSABLE,
	    "10,000 sequences of defined length nested: refused");
	is_int(sig, 0, "  no stack overflow");
	free(b.p);
	free(x.p);
	nest_defined(&x, DICOM_MAX_DEPTH / 2);
	s = with_extra(&x);
	is_int(probe(&s, &info), 0, "32 sequences (64 levels) nested: taken");
	free(x.p);
	nest_defined(&x, DICOM_MAX_DEPTH / 2 + 1);
	s = with_extra(&x);
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE,
	    "33 sequences (66 levels): refused");
	free(x.p);
	nest_undefined(&x, DICOM_MAX_DEPTH / 2);
	s = with_extra(&x);
	is_int(probe(&s, &info), 0, "32 of undefined length: taken");
	free(x.p);

	/* An item longer than its sequence. */
	nest_defined(&x, 2);
	x.p[16] = 0x7f;             /* the outer item's length, 0x7f.. */
	s = with_extra(&x);
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE,
	    "an item longer than its sequence");
	free(x.p);
	/* A non-item tag inside a sequence. */
	nest_defined(&x, 1);
	x.p[12] = 0x08;             /* the item tag becomes (0008,e000) */
	x.p[13] = 0x00;
	s = with_extra(&x);
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE,
	    "an element where a sequence holds items");
	free(x.p);
	/* An unknown VR. */
	memset(&x, 0, sizeof(x));
	el(&x, 0x0008, 0x1030, "Q7", "AB", 2);
	s = with_extra(&x);
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE, "an unknown VR");
	free(x.p);
	/* A 3-byte US. */
	memset(&x, 0, sizeof(x));
	el(&x, 0x0028, 0x0006, "US", "\1\0\0", 3);
	s = with_extra(&x);
	is_int(probe(&s, &info), PI_ERR_UNPROCESSABLE, "a 3-byte US");
	free(x.p);

	/* Deflated: the same shapes inside the zlib stream. */
	s = good(8, 8, 1);
	s.ts = TS_DEFLATED;
	build(&x, &s);
	deflate_ds(&x, &d);
	{
		const char *p = to_file(&d);

		is_int(dicom_probe(p, &info), 0, "a deflated file built here");
		(void)unlink(p);
	}
	free(x.p);
	free(d.p);

	nest_undefined(&x, 10000);
	s = with_extra(&x);
	s.ts = TS_DEFLATED;
	build(&b, &s);
	deflate_ds(&b, &d);
	is_int(probe_child(&d, &sig, log, sizeof(log)), PI_ERR_UNPROCESSABLE,
	    "10,000 levels nested inside a deflated data set: refused");
	is_int(sig, 0, "  no stack overflow");
	free(b.p);
	free(d.p);
	free(x.p);

	/* Pixel data claiming 64 bytes; the stream holds 10. */
	s = good(8, 8, 1);
	s.ts = TS_DEFLATED;
	s.pixel_have = 10;
	build(&b, &s);
	deflate_ds(&b, &d);
	{
		const char *p = to_file(&d);

		is_int(dicom_probe(p, &info), PI_ERR_UNPROCESSABLE,
		    "deflated pixel data longer than the inflated data set");
		(void)unlink(p);
	}
	free(b.p);
	free(d.p);

	/* A deflate bomb: 16 MiB of zeros (16 KB deflated) over max_bytes
	 * (8 MiB here); 4 MiB, under it, is inflated to the end and taken. */
	deflated_zeros(16u << 20, PI_ERR_UNPROCESSABLE,
	    "a deflated data set inflating past max_bytes: refused");
	deflated_zeros(4u << 20, 0,
	    "a deflated data set of 4 MiB, under max_bytes: taken");
}

int
main(void)
{
	struct dicom_limits lim = { .max_pixels = 500000, .max_frames = 4,
	    .max_bytes = 8u << 20 };

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	is_int(dicom_init(&lim), 0, "dicom_init");
	is_int(dicom_init(&lim), 0, "dicom_init again");
	test_pure();
	test_header();
	test_render();
	test_walk();
	dicom_shutdown();
	(void)rmdir(tmpdir);
	return done_testing();
}
