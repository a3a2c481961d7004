/* dicom.cc — DICOM Part 10 files in, 8-bit display pixels out, over DCMTK.
 *
 * polaimg stores a DICOM file as it came (the original, byte-exact) and
 * shows it through a display copy and a thumbnail made from its pixel data.
 * This file does the DICOM part of that: it reads the header, checks it
 * against the limits before a pixel is decoded, and renders one frame to
 * 8-bit grey or RGB pixels, which imaging.c (img_derive_pixels) resizes and
 * encodes like any other image. It is polaimg's only C++: DCMTK is a C++
 * library, and keeping it behind dicom.h's C functions means no exception,
 * template or DCMTK type reaches the rest of the program. Every function
 * catches everything at its edge and answers with a pi_err.
 *
 * Why DCMTK (measured on a 3900x3072 RGB ophthalmic photograph, CPU time to
 * 8-bit display pixels): its DicomImage renders what a viewer must (the
 * photometric interpretation, MONOCHROME1 inverted, YBR converted, any bit
 * depth, the VOI LUT or window), which GDCM leaves to the caller; raw 113 ms,
 * deflated 345, RLE 179, JPEG baseline 248, JPEG lossless 496, JPEG-LS
 * 1420. DCMTK has no JPEG 2000 decoder, so JPEG 2000 files are refused with
 * their own error (UNSUPPORTED_TRANSFER_SYNTAX) rather than half-supported.
 *
 * Bounded work: dicom_probe() first walks the file meta group itself
 * (DCMTK reads its values whole: see dicom_meta_ok), refuses a transfer
 * syntax it does not decode, then walks the structure of the whole data
 * set (dicom_walk: tag, VR and length of every element, each length
 * proved against its items, sequences and the file, a deflated data set
 * inflated as it is walked, at most max_bytes, nesting at most
 * DICOM_MAX_DEPTH), because DCMTK recurses per level without a bound and
 * allocates whatever length it cannot skip. Only then does it load the
 * file with a small maxReadLength,
 * so every value longer than that (the pixel data above all) stays on disk
 * and only the header is in memory; it checks the SOP class, the transfer
 * syntax, Rows x Columns against max_pixels, NumberOfFrames against
 * max_frames, samples and bits, and for a native (uncompressed) transfer
 * syntax that the pixel data holds every frame the header announces and
 * that the file really has that many bytes (a value is skipped, not read,
 * so a truncated file would otherwise pass). dicom_render() then asks
 * DicomImage for one frame with partial access to the pixel data: only
 * that frame is read (native) or decompressed (encapsulated, one fragment
 * per frame), so a 500-frame OCT volume costs one frame.
 *
 * Patient data: the header is read into memory in this process only; the
 * only identifying value handed out is PatientID (for the wrong-patient
 * guard), never logged. The rendered pixels carry no metadata at all.
 *
 * DCMTK's own logger (oflog) is switched off: its messages would carry
 * file contents to stderr; failures are reported by polaimg's log with the
 * DCMTK condition text only.
 */
#include "dicom.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <sys/stat.h>
#include <zlib.h>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmimage/diregist.h>
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

extern "C" {
#include "common.h"
#include "log.h"
}

/* Values longer than this stay on disk when the header is read. */
#define DICOM_MAX_READ 4096u
/* Bytes a pixel the inflated pixel data of a deflated file may take, per
 * pixel of max_pixels (all its frames together). */
#define DICOM_DEFLATED_PIXEL 16u
/* The longest value of an element read here (a string or a US). */
#define DICOM_VALUE_MAX 1024u

static int dicom_ready;
static struct dicom_limits dicom_lim;

/* The SOP classes polaimg takes: ophthalmic photography (8 and 16 bit),
 * ophthalmic tomography, VL photographic, secondary capture (single- and
 * multi-frame). */
static const char *const dicom_sop_classes[] = {
	"1.2.840.10008.5.1.4.1.1.77.1.5.1",   /* Ophthalmic Photography 8 Bit */
	"1.2.840.10008.5.1.4.1.1.77.1.5.2",   /* Ophthalmic Photography 16 Bit */
	"1.2.840.10008.5.1.4.1.1.77.1.5.4",   /* Ophthalmic Tomography */
	"1.2.840.10008.5.1.4.1.1.77.1.4",     /* VL Photographic */
	"1.2.840.10008.5.1.4.1.1.7",          /* Secondary Capture */
	"1.2.840.10008.5.1.4.1.1.7.1",        /* MF Single Bit SC (refused below) */
	"1.2.840.10008.5.1.4.1.1.7.2",        /* MF Grayscale Byte SC */
	"1.2.840.10008.5.1.4.1.1.7.3",        /* MF Grayscale Word SC */
	"1.2.840.10008.5.1.4.1.1.7.4",        /* MF True Color SC */
};

/* The transfer syntaxes polaimg decodes. */
static int
dicom_ts_ok(E_TransferSyntax ts)
{
	switch (ts) {
	case EXS_LittleEndianImplicit:
	case EXS_LittleEndianExplicit:
	case EXS_DeflatedLittleEndianExplicit:
	case EXS_RLELossless:
	case EXS_JPEGProcess1:
	case EXS_JPEGProcess2_4:
	case EXS_JPEGProcess14:
	case EXS_JPEGProcess14SV1:
	case EXS_JPEGLSLossless:
	case EXS_JPEGLSLossy:
		return 1;
	default:
		return 0;
	}
}

extern "C" int
dicom_init(const struct dicom_limits *lim)
{
	if (lim != NULL)
		dicom_lim = *lim;
	if (dicom_ready)
		return 0;
	try {
		OFLog::configure(OFLogger::OFF_LOG_LEVEL);
		DJDecoderRegistration::registerCodecs();
		DJLSDecoderRegistration::registerCodecs();
		DcmRLEDecoderRegistration::registerCodecs();
	} catch (...) {
		return PI_ERR_INTERNAL;
	}
	dicom_ready = 1;
	return 0;
}

extern "C" void
dicom_shutdown(void)
{
	if (!dicom_ready)
		return;
	try {
		DJDecoderRegistration::cleanup();
		DJLSDecoderRegistration::cleanup();
		DcmRLEDecoderRegistration::cleanup();
	} catch (...) {
		/* Nothing to do at exit. */
	}
	dicom_ready = 0;
}

extern "C" bool
dicom_sniff(const unsigned char *buf, size_t len)
{
	return buf != NULL && len >= DICOM_SNIFF_LEN &&
	    memcmp(buf + 128, "DICM", 4) == 0;
}

/* --- pure helpers ------------------------------------------------------- */

extern "C" char
dicom_laterality(const char *v)
{
	size_t n;

	if (v == NULL)
		return 0;
	while (*v == ' ')
		v++;
	n = strlen(v);
	while (n > 0 && v[n - 1] == ' ')
		n--;
	if (n != 1)
		return 0;
	return v[0] == 'R' || v[0] == 'L' || v[0] == 'B' ? v[0] : 0;
}

/* An offset "&ZZXX" (& is + or -) in seconds into *off; 0 or -1. */
static int
dicom_offset(const char *s, long *off)
{
	int hh, mm;

	if (strlen(s) != 5 || (s[0] != '+' && s[0] != '-') ||
	    pi_digits(s + 1, 2, &hh) != 0 || pi_digits(s + 3, 2, &mm) != 0 ||
	    hh > 14 || mm > 59)
		return -1;
	*off = (hh * 3600L + mm * 60L) * (s[0] == '-' ? -1 : 1);
	return 0;
}

/* Parses YYYYMMDD then HHMMSS(.F*) (each part optional after the date)
 * from s, up to end; -1 when malformed. */
static int64_t
dicom_clock(const char *d, size_t dn, const char *t, size_t tn, long off,
    bool local)
{
	struct tm tm;
	int y, mo, da, h = 0, mi = 0, se = 0;
	time_t secs;

	if (dn != 8 || pi_digits(d, 4, &y) != 0 ||
	    pi_digits(d + 4, 2, &mo) != 0 || pi_digits(d + 6, 2, &da) != 0)
		return -1;
	/* Time: HH, HHMM, HHMMSS, HHMMSS.F{1,6}. */
	if (tn > 0) {
		size_t whole = tn;
		const char *dot = (const char *)memchr(t, '.', tn);

		if (dot != NULL) {
			whole = (size_t)(dot - t);
			if (whole != 6 || tn - whole < 2 || tn - whole > 7)
				return -1;
			for (size_t i = whole + 1; i < tn; i++)
				if (t[i] < '0' || t[i] > '9')
					return -1;
		}
		if ((whole != 2 && whole != 4 && whole != 6) ||
		    pi_digits(t, 2, &h) != 0 ||
		    (whole >= 4 && pi_digits(t + 2, 2, &mi) != 0) ||
		    (whole >= 6 && pi_digits(t + 4, 2, &se) != 0))
			return -1;
	}
	if (y < 1970 || mo < 1 || mo > 12 || da < 1 || da > 31 || h > 23 ||
	    mi > 59 || se > 60)
		return -1;
	tm = pi_tm(y, mo, da, h, mi, se);
	/* A clock without an offset is the clinic's: the local time of
	 * local_timezone, which main() made the process's TZ (as imaging.c
	 * reads EXIF times). mktime() and pi_timegm() both normalise 31
	 * February into March: refuse that. */
	if (local) {
		secs = mktime(&tm);
		if (secs == (time_t)-1 || tm.tm_mday != da ||
		    tm.tm_mon != mo - 1)
			return -1;
		return secs < 0 ? -1 : (int64_t)secs;
	}
	if (da > pi_days_in_month(y, mo))
		return -1;
	secs = (time_t)pi_timegm(&tm) - off;
	return secs < 0 ? -1 : (int64_t)secs;
}

/* The length of s without trailing spaces. */
static size_t
dicom_trimmed(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == ' ')
		n--;
	return n;
}

extern "C" int64_t
dicom_time(const char *dt, const char *date, const char *tm, const char *tz)
{
	long off = 0;
	bool local = true;
	char zone[8] = "";

	if (tz != NULL && dicom_trimmed(tz) > 0) {
		size_t n = dicom_trimmed(tz);

		if (n < sizeof(zone)) {
			memcpy(zone, tz, n);
			zone[n] = '\0';
			if (dicom_offset(zone, &off) == 0)
				local = false;
			else
				off = 0;
		}
	}
	if (dt != NULL && dicom_trimmed(dt) > 0) {
		size_t n = dicom_trimmed(dt);
		const char *z = NULL;

		for (size_t i = 0; i < n; i++)
			if (dt[i] == '+' || dt[i] == '-') {
				z = dt + i;
				break;
			}
		if (z != NULL) {
			size_t zn = n - (size_t)(z - dt);

			if (zn >= sizeof(zone))
				return -1;
			memcpy(zone, z, zn);
			zone[zn] = '\0';
			if (dicom_offset(zone, &off) != 0)
				return -1;
			local = false;
			n = (size_t)(z - dt);
		}
		/* Only a full date is a capture time. */
		if (n < 8)
			return -1;
		return dicom_clock(dt, 8, dt + 8, n - 8, off, local);
	}
	if (date != NULL && dicom_trimmed(date) > 0)
		return dicom_clock(date, dicom_trimmed(date), tm != NULL ? tm : "",
		    tm != NULL ? dicom_trimmed(tm) : 0, off, local);
	return -1;
}

/* --- the header --------------------------------------------------------- */

/* The string value of tag in ds into out (size n), trimmed of spaces at
 * both ends; empty when absent. -1 when the value does not fit. */
static int
dicom_str(DcmItem *ds, const DcmTagKey &tag, char *out, size_t n)
{
	OFString v;
	DcmElement *el = NULL;
	size_t b = 0, e;

	out[0] = '\0';
	/* A value longer than DICOM_MAX_READ was left on disk and would be
	 * read now, at whatever length it claims: none of these values is
	 * ever that long. */
	if (ds->findAndGetElement(tag, el, OFFalse).bad() || el == NULL)
		return 0;
	if (el->getLength() > DICOM_VALUE_MAX)
		return -1;
	if (ds->findAndGetOFString(tag, v).bad())
		return 0;
	e = v.length();
	while (b < e && v[b] == ' ')
		b++;
	while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\0'))
		e--;
	if (e - b >= n)
		return -1;
	memcpy(out, v.c_str() + b, e - b);
	out[e - b] = '\0';
	return 0;
}

/* The US value of tag in ds into *v, its length checked first (see
 * dicom_str). 0, or -1 when absent or malformed. */
static int
dicom_u16(DcmItem *ds, const DcmTagKey &tag, Uint16 *v)
{
	DcmElement *el = NULL;

	if (ds->findAndGetElement(tag, el, OFFalse).bad() || el == NULL ||
	    el->getLength() > DICOM_VALUE_MAX || el->getUint16(*v).bad())
		return -1;
	return 0;
}

/* The size of the file at path, or -1. */
static long long
dicom_file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/*
 * Checks the file meta group (0002,xxxx: always explicit VR little endian,
 * right after "DICM") before DCMTK reads it: DCMTK reads meta values whole,
 * whatever maxReadLength says, so a 300-byte file whose meta element
 * claims 3 GB would have it allocate 3 GB (found by tests/fuzz/fuzz_dicom.c).
 * Every meta element must lie within the first DICOM_META_MAX bytes of the
 * file and inside the file. On 0, *start is the offset of the data set
 * (where DCMTK stops reading the meta group) and ts (size tsn) the
 * transfer syntax UID, trimmed, empty when absent. Returns 0 or
 * PI_ERR_UNPROCESSABLE.
 */
#define DICOM_META_MAX 65536u
static int
dicom_meta_ok(const char *path, uint64_t *start, char *ts, size_t tsn)
{
	static const char *const long_vrs[] = {
		"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR",
		"UT", "UV",
	};
	unsigned char *b;
	size_t n = 0, pos = DICOM_SNIFF_LEN, meta_end = 0;
	FILE *f;
	int rc = PI_ERR_UNPROCESSABLE;

	ts[0] = '\0';
	if ((b = (unsigned char *)malloc(DICOM_META_MAX)) == NULL)
		return PI_ERR_NOMEM;
	if ((f = fopen(path, "rb")) != NULL) {
		n = fread(b, 1, DICOM_META_MAX, f);
		(void)fclose(f);
	}
	if (n < DICOM_SNIFF_LEN || memcmp(b + 128, "DICM", 4) != 0)
		goto out;
	/* DCMTK reads as many bytes as (0002,0000) says, whatever their
	 * group, then every further element of group 0002. */
	if (n >= pos + 12 && memcmp(b + pos, "\x02\x00\x00\x00UL\x04\x00", 8) == 0)
		meta_end = pos + 12 + ((size_t)b[pos + 8] | (size_t)b[pos + 9] << 8 |
		    (size_t)b[pos + 10] << 16 | (size_t)b[pos + 11] << 24);
	while (pos + 8 <= n && ((b[pos] | b[pos + 1] << 8) == 0x0002 ||
	    pos < meta_end)) {
		size_t hdr = 8, len = (size_t)(b[pos + 6] | b[pos + 7] << 8);

		for (size_t i = 0; i < PI_ARRAY_LEN(long_vrs); i++)
			if (memcmp(b + pos + 4, long_vrs[i], 2) == 0) {
				if (pos + 12 > n)
					goto out;
				hdr = 12;
				len = (size_t)b[pos + 8] | (size_t)b[pos + 9] << 8 |
				    (size_t)b[pos + 10] << 16 |
				    (size_t)b[pos + 11] << 24;
				break;
			}
		if (len > n - pos - hdr)
			goto out;     /* past the file or past DICOM_META_MAX */
		if (memcmp(b + pos, "\x02\x00\x10\x00", 4) == 0 && len < tsn) {
			/* TransferSyntaxUID, less its padding. */
			size_t k = len;

			while (k > 0 && (b[pos + hdr + k - 1] == '\0' ||
			    b[pos + hdr + k - 1] == ' '))
				k--;
			memcpy(ts, b + pos + hdr, k);
			ts[k] = '\0';
		}
		pos += hdr + len;
	}
	rc = pos > DICOM_SNIFF_LEN ? 0 : PI_ERR_UNPROCESSABLE;
out:
	if (rc == 0 && meta_end > pos)
		rc = PI_ERR_UNPROCESSABLE;   /* the group length points past it */
	if (rc != 0)
		log_info("dicom: file meta information malformed or too long");
	*start = pos;
	free(b);
	return rc;
}

/* --- the structure walker ------------------------------------------------
 *
 * DCMTK reads a data set recursively (an item holds elements, a sequence
 * holds items) without a depth limit, and it allocates a value at the
 * length its header claims wherever it cannot skip (in a deflated data
 * set, every value). So before DCMTK sees a data set, dicom_walk() reads
 * the tag, VR and length of every element in it, in one streaming pass
 * with an explicit stack of open containers (no recursion, bounded
 * memory), and refuses the file unless each length fits in its enclosing
 * items and sequences of defined length and in the data set itself. A
 * value is skipped, never read, but the skip is proved: in a file against
 * its size, in a deflated data set by inflating and discarding that many
 * bytes. It reads values nowhere except a private element's first four
 * bytes (below).
 *
 * It decides what is a container the way DCMTK 3.6.7 does
 * (DcmItem::newDicomElement): an explicit VR "SQ"; in implicit VR an
 * element whose dictionary VR is SQ (DcmTag's lookup); any element of
 * undefined length with VR SQ, UN or unknown (a UN one holds implicit VR
 * items, CP-246); Pixel Data of undefined length is a sequence of opaque
 * fragments, never walked as data sets. DCMTK also gives a private
 * element of implicit VR the VR its private creator names; the walker
 * does not read creators, so such an element of defined length whose
 * value opens with an item tag is walked as a sequence (over-counting is
 * safe). What DCMTK refuses or reads some other way (an undefined-length
 * OB, a stray delimiter, an unknown VR code) is refused here.
 */

/* One open container: a sequence, an item, or encapsulated pixel data. */
enum dicom_kind { DICOM_SEQ, DICOM_ITEM, DICOM_FRAGMENTS };

struct dicom_open {
	uint64_t end;          /* its own end, UINT64_MAX: undefined length */
	uint64_t limit;        /* the nearest defined end around it */
	enum dicom_kind kind;
	bool implicit;         /* its elements are implicit VR */
};

/* The reader: the data set's bytes, from the file or inflated, through one
 * buffer; off counts bytes of the data set consumed. */
#define DICOM_RD_BUF 65536u
struct dicom_rd {
	FILE *f;
	bool deflated, zlive, zeof, zend;  /* zeof: the file is read;
	                                    * zend: so is the stream */
	z_stream z;
	unsigned char in[DICOM_RD_BUF];
	unsigned char buf[DICOM_RD_BUF];
	size_t pos, len;       /* unread bytes: buf[pos..len) */
	uint64_t off;          /* data set offset of buf[pos] */
	uint64_t size;         /* the data set's bytes in the file (not
	                        * deflated), or max_bytes (deflated) */
	const char *why;       /* why a read failed */
};

/* Reads more bytes into rd->buf after what is left unread. Returns the
 * number added, 0 at the end of the data set, -1 on an error (rd->why). */
static long
dicom_rd_fill(struct dicom_rd *rd)
{
	size_t room;

	if (rd->pos > 0) {
		memmove(rd->buf, rd->buf + rd->pos, rd->len - rd->pos);
		rd->len -= rd->pos;
		rd->pos = 0;
	}
	room = sizeof(rd->buf) - rd->len;
	if (!rd->deflated) {
		size_t got = fread(rd->buf + rd->len, 1, room, rd->f);

		if (got == 0 && ferror(rd->f)) {
			rd->why = "read error";
			return -1;
		}
		rd->len += got;
		return (long)got;
	}
	while (!rd->zend) {
		size_t before = room;
		int zr;

		if (rd->z.avail_in == 0 && !rd->zeof) {
			size_t got = fread(rd->in, 1, sizeof(rd->in), rd->f);

			if (got == 0 && ferror(rd->f)) {
				rd->why = "read error";
				return -1;
			}
			rd->zeof = got == 0;
			rd->z.next_in = rd->in;
			rd->z.avail_in = (uInt)got;
		}
		/* With no input left, inflate() still hands out what it holds;
		 * then Z_BUF_ERROR: the file ends the stream (DCMTK's end too). */
		rd->z.next_out = rd->buf + rd->len;
		rd->z.avail_out = (uInt)room;
		zr = inflate(&rd->z, Z_NO_FLUSH);
		if (zr == Z_STREAM_END || (zr == Z_BUF_ERROR && rd->zeof))
			rd->zend = true;
		else if (zr != Z_OK) {
			rd->why = "deflated data set corrupt";
			return -1;
		}
		room = rd->z.avail_out;
		rd->len += before - room;
		if (rd->off + rd->len - rd->pos > rd->size) {
			rd->why = "inflated data set larger than max_dicom_bytes";
			return -1;
		}
		if (before != room)
			return (long)(before - room);
	}
	return 0;
}

/* Makes n (<= DICOM_RD_BUF) bytes readable at rd->buf + rd->pos. Returns
 * 0, 1 when the data set ends first (rd->len - rd->pos bytes are left),
 * -1 on an error. */
static int
dicom_rd_need(struct dicom_rd *rd, size_t n)
{
	while (rd->len - rd->pos < n) {
		long got = dicom_rd_fill(rd);

		if (got < 0)
			return -1;
		if (got == 0)
			return 1;
	}
	return 0;
}

/* Consumes n bytes already made readable by dicom_rd_need(). */
static void
dicom_rd_take(struct dicom_rd *rd, size_t n)
{
	rd->pos += n;
	rd->off += n;
}

/* Skips n bytes of value, proving they are there: a file must be that
 * long, a deflated stream must inflate that many. 0, or -1 (rd->why). */
static int
dicom_rd_skip(struct dicom_rd *rd, uint64_t n)
{
	while (n > 0) {
		size_t have = rd->len - rd->pos;
		long got;

		if (have > 0) {
			size_t k = n < have ? (size_t)n : have;

			dicom_rd_take(rd, k);
			n -= k;
			continue;
		}
		if (!rd->deflated) {
			/* The buffer is empty: seek, the file size is the proof. */
			if (n > rd->size - rd->off) {
				rd->why = "a value runs past the end of the file";
				return -1;
			}
			if (fseeko(rd->f, (off_t)n, SEEK_CUR) != 0) {
				rd->why = "seek error";
				return -1;
			}
			rd->off += n;
			return 0;
		}
		rd->pos = rd->len = 0;
		if ((got = dicom_rd_fill(rd)) < 0)
			return -1;
		if (got == 0) {
			rd->why = "a value runs past the end of the inflated data set";
			return -1;
		}
	}
	return 0;
}

static uint16_t
dicom_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
dicom_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* The bytes of one value of a binary VR whose length must be a multiple
 * of it (US, SS: 2; UL, SL, FL, AT: 4; FD: 8), else 0. */
static unsigned
dicom_vr_width(DcmEVR evr)
{
	switch (evr) {
	case EVR_US: case EVR_SS: case EVR_xs:
		return 2;
	case EVR_UL: case EVR_SL: case EVR_FL: case EVR_AT:
		return 4;
	case EVR_FD:
		return 8;
	default:
		return 0;
	}
}

#define DICOM_UNDEFINED 0xffffffffu

/*
 * The walk itself over rd, which is at the start of the data set;
 * implicit: the transfer syntax is implicit VR little endian (else
 * explicit VR little endian, deflated or not). Returns 0, or
 * PI_ERR_UNPROCESSABLE with *why set to the reason (no file contents).
 */
static int
dicom_walk_rd(struct dicom_rd *rd, bool implicit, const char **why)
{
	struct dicom_open st[DICOM_MAX_DEPTH];
	size_t depth = 0;

	for (;;) {
		const unsigned char *h;
		uint64_t limit, end;
		uint32_t len;
		uint16_t g, e;
		size_t hdr;
		bool impl;
		DcmEVR evr;
		int r;

		/* Containers of defined length close where they end. */
		while (depth > 0 && st[depth - 1].end == rd->off)
			depth--;
		limit = depth > 0 ? st[depth - 1].limit : rd->size;
		impl = depth > 0 ? st[depth - 1].implicit : implicit;
		if ((r = dicom_rd_need(rd, 8)) < 0) {
			*why = rd->why;
			return PI_ERR_UNPROCESSABLE;
		}
		if (r == 1) {
			if (depth == 0 && rd->len == rd->pos)
				return 0;       /* the end, between elements */
			*why = "the data set ends inside an element or a sequence";
			return PI_ERR_UNPROCESSABLE;
		}
		h = rd->buf + rd->pos;
		g = dicom_le16(h);
		e = dicom_le16(h + 2);
		if (g == 0xfffe) {
			/* Items and delimiters: tag and a 4-byte length. */
			struct dicom_open *top = depth > 0 ? &st[depth - 1] : NULL;

			len = dicom_le32(h + 4);
			if (8 > limit - rd->off) {
				*why = "an item runs past its container";
				return PI_ERR_UNPROCESSABLE;
			}
			dicom_rd_take(rd, 8);
			if (e == 0xe0dd && top != NULL && top->kind != DICOM_ITEM &&
			    top->end == UINT64_MAX && len == 0) {
				depth--;                     /* sequence ends */
				continue;
			}
			if (e == 0xe00d && top != NULL && top->kind == DICOM_ITEM &&
			    top->end == UINT64_MAX && len == 0) {
				depth--;                     /* item ends */
				continue;
			}
			if (e != 0xe000 || top == NULL || top->kind == DICOM_ITEM) {
				*why = "an item or delimiter out of place";
				return PI_ERR_UNPROCESSABLE;
			}
			if (len != DICOM_UNDEFINED && len > limit - rd->off) {
				*why = "an item longer than its container";
				return PI_ERR_UNPROCESSABLE;
			}
			if (top->kind == DICOM_FRAGMENTS) {
				if (len == DICOM_UNDEFINED) {
					*why = "a pixel data fragment of undefined length";
					return PI_ERR_UNPROCESSABLE;
				}
				if (dicom_rd_skip(rd, len) != 0) {
					*why = rd->why;
					return PI_ERR_UNPROCESSABLE;
				}
				continue;
			}
			if (depth == DICOM_MAX_DEPTH) {
				*why = "sequences nested too deep";
				return PI_ERR_UNPROCESSABLE;
			}
			end = len == DICOM_UNDEFINED ? UINT64_MAX : rd->off + len;
			st[depth].end = end;
			st[depth].limit = end < limit ? end : limit;
			st[depth].kind = DICOM_ITEM;
			st[depth].implicit = top->implicit;
			depth++;
			continue;
		}
		if (depth > 0 && st[depth - 1].kind != DICOM_ITEM) {
			*why = "an element where a sequence holds only items";
			return PI_ERR_UNPROCESSABLE;
		}
		/* An element: its VR from the file (explicit) or from DCMTK's
		 * dictionary (implicit), then its length. */
		if (impl) {
			evr = DcmTag(g, e).getEVR();
			len = dicom_le32(h + 4);
			hdr = 8;
		} else {
			char code[3] = { (char)h[4], (char)h[5], '\0' };
			DcmVR vr(code);

			if (!vr.isStandard() || vr.getEVR() == EVR_UNKNOWN) {
				*why = "an unknown VR";
				return PI_ERR_UNPROCESSABLE;
			}
			evr = vr.getEVR();
			if (vr.usesExtendedLengthEncoding()) {
				if ((r = dicom_rd_need(rd, 12)) != 0) {
					*why = r < 0 ? rd->why :
					    "the data set ends inside an element";
					return PI_ERR_UNPROCESSABLE;
				}
				h = rd->buf + rd->pos;
				len = dicom_le32(h + 8);
				hdr = 12;
			} else {
				len = dicom_le16(h + 6);
				hdr = 8;
			}
		}
		if (hdr > limit - rd->off ||
		    (len != DICOM_UNDEFINED && len > limit - rd->off - hdr)) {
			*why = "an element longer than its item or the data set";
			return PI_ERR_UNPROCESSABLE;
		}
		if (len != DICOM_UNDEFINED && dicom_vr_width(evr) != 0 &&
		    len % dicom_vr_width(evr) != 0) {
			*why = "a binary value of a length its VR cannot have";
			return PI_ERR_UNPROCESSABLE;
		}
		if (len == DICOM_UNDEFINED) {
			enum dicom_kind kind;

			if (g == 0x7fe0 && e == 0x0010 && (evr == EVR_OB ||
			    evr == EVR_OW || evr == EVR_ox || evr == EVR_px))
				kind = DICOM_FRAGMENTS;
			else if (evr == EVR_SQ || evr == EVR_UN ||
			    evr == EVR_UNKNOWN || evr == EVR_UNKNOWN2B)
				kind = DICOM_SEQ;
			else {
				*why = "an undefined length DCMTK does not read";
				return PI_ERR_UNPROCESSABLE;
			}
			if (depth == DICOM_MAX_DEPTH) {
				*why = "sequences nested too deep";
				return PI_ERR_UNPROCESSABLE;
			}
			dicom_rd_take(rd, hdr);
			st[depth].end = UINT64_MAX;
			st[depth].limit = limit;
			st[depth].kind = kind;
			/* A UN sequence's items are implicit VR (CP-246). */
			st[depth].implicit = impl || evr != EVR_SQ;
			depth++;
			continue;
		}
		if (evr != EVR_SQ && impl && (g & 1) != 0 && e >= 0x1000 &&
		    len >= 8) {
			/* A private element DCMTK may read as a sequence. */
			if ((r = dicom_rd_need(rd, hdr + 4)) != 0) {
				*why = r < 0 ? rd->why :
				    "the data set ends inside an element";
				return PI_ERR_UNPROCESSABLE;
			}
			if (memcmp(rd->buf + rd->pos + hdr, "\xfe\xff\x00\xe0", 4) == 0)
				evr = EVR_SQ;
		}
		dicom_rd_take(rd, hdr);
		if (evr == EVR_SQ && len > 0) {
			if (depth == DICOM_MAX_DEPTH) {
				*why = "sequences nested too deep";
				return PI_ERR_UNPROCESSABLE;
			}
			st[depth].end = rd->off + len;
			st[depth].limit = rd->off + len;
			st[depth].kind = DICOM_SEQ;
			st[depth].implicit = impl;
			depth++;
			continue;
		}
		if (dicom_rd_skip(rd, len) != 0) {
			*why = rd->why;
			return PI_ERR_UNPROCESSABLE;
		}
	}
}

/*
 * The structure check of the data set of the file at path, which starts
 * at offset start (after the meta group, see dicom_meta_ok), in transfer
 * syntax ts (one dicom_ts_ok() takes: implicit VR little endian, explicit
 * VR little endian, deflated explicit VR little endian = a raw deflate
 * stream after the meta group, and the encapsulated ones, explicit VR
 * little endian). Walks the whole data set, the pixel data and anything
 * after it included (dicom_render reads all of it). Bounded: memory is
 * one reader and DICOM_MAX_DEPTH stack entries; time is one pass over
 * the file, or the inflation of at most max_bytes. Returns 0,
 * PI_ERR_UNPROCESSABLE (logged with the reason), PI_ERR_NOMEM or
 * PI_ERR_IO.
 */
static int
dicom_walk(const char *path, uint64_t start, E_TransferSyntax ts)
{
	struct dicom_rd *rd;
	const char *why = NULL;
	long long fsize = dicom_file_size(path);
	int rc = PI_ERR_IO;

	if ((rd = (struct dicom_rd *)calloc(1, sizeof(*rd))) == NULL)
		return PI_ERR_NOMEM;
	if (fsize < 0 || (uint64_t)fsize < start ||
	    (rd->f = fopen(path, "rb")) == NULL ||
	    fseeko(rd->f, (off_t)start, SEEK_SET) != 0)
		goto out;
	rd->deflated = ts == EXS_DeflatedLittleEndianExplicit;
	rd->size = rd->deflated ? dicom_lim.max_bytes : (uint64_t)fsize - start;
	if (rd->deflated) {
		if (inflateInit2(&rd->z, -MAX_WBITS) != Z_OK) {
			rc = PI_ERR_NOMEM;
			goto out;
		}
		rd->zlive = true;
	}
	rc = dicom_walk_rd(rd, ts == EXS_LittleEndianImplicit, &why);
	if (rc == PI_ERR_UNPROCESSABLE)
		log_info("dicom: data set refused: %s", why != NULL ? why : "?");
out:
	if (rd->zlive)
		(void)inflateEnd(&rd->z);
	if (rd->f != NULL)
		(void)fclose(rd->f);
	free(rd);
	return rc;
}

/* The body of dicom_probe(); may throw. */
static int
dicom_probe_ff(const char *path, DcmFileFormat &ff, struct dicom_info *info)
{
	DcmDataset *ds;
	DcmMetaInfo *meta;
	E_TransferSyntax ts;
	Uint16 rows = 0, cols = 0, samples = 0, bits = 0;
	Sint32 frames = 1;
	char when[3][40], tz[16];
	OFCondition st;
	uint64_t start = 0;
	int bad = 0, rc;

	memset(info, 0, sizeof(*info));
	info->captured_at = -1;
	/* The structure first, in the file's own transfer syntax: DCMTK
	 * reads nothing of a data set the walker has not proved. */
	if ((rc = dicom_meta_ok(path, &start, info->transfer_syntax,
	    sizeof(info->transfer_syntax))) != 0)
		return rc;
	if (info->transfer_syntax[0] == '\0') {
		log_info("dicom: no transfer syntax in the file meta information");
		return PI_ERR_UNPROCESSABLE;
	}
	if (!dicom_ts_ok(DcmXfer(info->transfer_syntax).getXfer())) {
		log_info("dicom: transfer syntax %s is not decoded",
		    info->transfer_syntax);
		info->refused_ts = 1;
		return PI_ERR_UNSUPPORTED;
	}
	if ((rc = dicom_walk(path, start,
	    DcmXfer(info->transfer_syntax).getXfer())) != 0)
		return rc;
	/* Up to the pixel data only: a deflated data set is one zlib
	 * stream, which DCMTK cannot skip in, so there maxReadLength leaves
	 * nothing on disk and the pixel data would be inflated here. */
	st = ff.loadFileUntilTag(path, EXS_Unknown, EGL_noChange,
	    DICOM_MAX_READ, ERM_fileOnly, DCM_PixelData);
	if (st.bad()) {
		/* A transfer syntax polaimg does not decode is named as such
		 * even when DCMTK could not read the data set that follows
		 * (the meta group was read first). */
		meta = ff.getMetaInfo();
		if (meta != NULL && dicom_str(meta, DCM_TransferSyntaxUID,
		    info->transfer_syntax, sizeof(info->transfer_syntax)) == 0 &&
		    info->transfer_syntax[0] != '\0' &&
		    !dicom_ts_ok(DcmXfer(info->transfer_syntax).getXfer())) {
			log_info("dicom: transfer syntax %s is not decoded",
			    info->transfer_syntax);
			info->refused_ts = 1;
			return PI_ERR_UNSUPPORTED;
		}
		log_info("dicom: header unreadable: %s", st.text());
		return PI_ERR_UNPROCESSABLE;
	}
	ds = ff.getDataset();
	meta = ff.getMetaInfo();
	if (ds == NULL || meta == NULL)
		return PI_ERR_UNPROCESSABLE;
	ts = ds->getOriginalXfer();
	bad |= dicom_str(meta, DCM_TransferSyntaxUID, info->transfer_syntax,
	    sizeof(info->transfer_syntax));
	bad |= dicom_str(ds, DCM_SOPClassUID, info->sop_class,
	    sizeof(info->sop_class));
	bad |= dicom_str(ds, DCM_StudyInstanceUID, info->study_uid,
	    sizeof(info->study_uid));
	bad |= dicom_str(ds, DCM_SeriesInstanceUID, info->series_uid,
	    sizeof(info->series_uid));
	bad |= dicom_str(ds, DCM_SOPInstanceUID, info->sop_uid,
	    sizeof(info->sop_uid));
	if (bad) {
		log_info("dicom: a UID is longer than 64 characters");
		return PI_ERR_UNPROCESSABLE;
	}
	/* Descriptive values are cut to fit, never refused. */
	if (dicom_str(ds, DCM_Modality, info->modality, sizeof(info->modality)))
		info->modality[0] = '\0';
	if (dicom_str(ds, DCM_Manufacturer, info->manufacturer,
	    sizeof(info->manufacturer)))
		info->manufacturer[0] = '\0';
	if (dicom_str(ds, DCM_ManufacturerModelName, info->model,
	    sizeof(info->model)))
		info->model[0] = '\0';
	if (dicom_str(ds, DCM_PatientID, info->patient_id,
	    sizeof(info->patient_id)))
		return PI_ERR_UNPROCESSABLE;
	{
		char lat[17];

		if (dicom_str(ds, DCM_ImageLaterality, lat, sizeof(lat)) == 0 &&
		    lat[0] != '\0')
			info->laterality = dicom_laterality(lat);
		if (info->laterality == 0 &&
		    dicom_str(ds, DCM_Laterality, lat, sizeof(lat)) == 0)
			info->laterality = dicom_laterality(lat);
	}
	if (dicom_str(ds, DCM_AcquisitionDateTime, when[0], sizeof(when[0])))
		when[0][0] = '\0';
	if (dicom_str(ds, DCM_ContentDate, when[1], sizeof(when[1])))
		when[1][0] = '\0';
	if (dicom_str(ds, DCM_ContentTime, when[2], sizeof(when[2])))
		when[2][0] = '\0';
	if (dicom_str(ds, DCM_TimezoneOffsetFromUTC, tz, sizeof(tz)))
		tz[0] = '\0';
	info->captured_at = dicom_time(when[0], when[1], when[2], tz);
	if (info->captured_at < 0 && when[0][0] != '\0')
		info->captured_at = dicom_time(NULL, when[1], when[2], tz);

	/* What kind of file. */
	{
		int known = 0;

		for (size_t i = 0; i < PI_ARRAY_LEN(dicom_sop_classes); i++)
			if (strcmp(info->sop_class, dicom_sop_classes[i]) == 0)
				known = 1;
		if (!known) {
			log_info("dicom: SOP class %s is not an image polaimg "
			    "takes", info->sop_class);
			info->refused_sop = 1;
			return PI_ERR_UNSUPPORTED;
		}
	}
	if (!dicom_ts_ok(ts)) {
		log_info("dicom: transfer syntax %s is not decoded",
		    info->transfer_syntax);
		info->refused_ts = 1;
		return PI_ERR_UNSUPPORTED;
	}

	/* The size, before any pixel. */
	if (dicom_u16(ds, DCM_Rows, &rows) != 0 ||
	    dicom_u16(ds, DCM_Columns, &cols) != 0 ||
	    dicom_u16(ds, DCM_SamplesPerPixel, &samples) != 0 ||
	    dicom_u16(ds, DCM_BitsAllocated, &bits) != 0)
		return PI_ERR_UNPROCESSABLE;
	if (ds->tagExists(DCM_NumberOfFrames)) {
		char nf[16];
		char *end = NULL;
		long long v;

		if (dicom_str(ds, DCM_NumberOfFrames, nf, sizeof(nf)) != 0 ||
		    nf[0] == '\0')
			return PI_ERR_UNPROCESSABLE;
		v = strtoll(nf, &end, 10);
		if (end == nf || *end != '\0' || v < -1 || v > INT32_MAX)
			return PI_ERR_UNPROCESSABLE;
		frames = (Sint32)v;
	}
	info->rows = rows;
	info->cols = cols;
	info->samples = samples;
	info->bits_allocated = bits;
	info->frames = frames > 0 ? (uint32_t)frames : 0;
	if (rows == 0 || cols == 0 || frames < 1 ||
	    (samples != 1 && samples != 3) || (bits != 8 && bits != 16)) {
		log_info("dicom: unusable image header (%ux%u, %d frames, "
		    "%u samples, %u bits)", (unsigned)cols, (unsigned)rows,
		    (int)frames, (unsigned)samples, (unsigned)bits);
		return PI_ERR_UNPROCESSABLE;
	}
	if ((uint64_t)rows * cols > dicom_lim.max_pixels ||
	    (uint64_t)frames > dicom_lim.max_frames) {
		log_info("dicom: %ux%u x %d frames is over the limits",
		    (unsigned)cols, (unsigned)rows, (int)frames);
		return PI_ERR_UNPROCESSABLE;
	}
	if (ts == EXS_DeflatedLittleEndianExplicit &&
	    (uint64_t)rows * cols * samples * (bits / 8) * (uint64_t)frames >
	    DICOM_DEFLATED_PIXEL * dicom_lim.max_pixels) {
		/* Inflated whole to be rendered: held to what one image of
		 * max_pixels may take. */
		log_info("dicom: deflated pixel data of %d frames too large",
		    (int)frames);
		return PI_ERR_UNPROCESSABLE;
	}
	if (ts == EXS_LittleEndianImplicit || ts == EXS_LittleEndianExplicit) {
		/* Native pixel data: every frame must be there, in the value
		 * and in the file. Read again past the pixel data, whose value
		 * stays on disk (DICOM_MAX_READ; no deflate here). */
		DcmFileFormat full;
		DcmElement *pd = NULL;
		uint64_t need = (uint64_t)rows * cols * samples * (bits / 8) *
		    (uint64_t)frames;
		uint64_t have;
		long long fsize = dicom_file_size(path);

		if (full.loadFile(path, EXS_Unknown, EGL_noChange,
		    DICOM_MAX_READ, ERM_fileOnly).bad() ||
		    full.getDataset()->findAndGetElement(DCM_PixelData, pd,
		    OFFalse).bad() || pd == NULL)
			return PI_ERR_UNPROCESSABLE;
		have = pd->getLength();
		if (have == DCM_UndefinedLength || have < need || fsize < 0 ||
		    (uint64_t)fsize < need) {
			log_info("dicom: pixel data shorter than the header says");
			return PI_ERR_UNPROCESSABLE;
		}
	}
	return 0;
}

extern "C" int
dicom_probe(const char *path, struct dicom_info *info)
{
	if (!dicom_ready || path == NULL || info == NULL)
		return PI_ERR_INTERNAL;
	try {
		DcmFileFormat ff;

		return dicom_probe_ff(path, ff, info);
	} catch (const std::bad_alloc &) {
		return PI_ERR_NOMEM;
	} catch (...) {
		return PI_ERR_UNPROCESSABLE;
	}
}

/* --- the pixels --------------------------------------------------------- */

/* The body of dicom_render(); may throw. The DicomImage is destroyed
 * before ff, which it only borrows (no CIF_TakeOverExternalDataset). */
static int
dicom_render_ff(const char *path, const struct dicom_info *info,
    DcmFileFormat &ff, unsigned char **pixels, uint32_t *w, uint32_t *h,
    int *channels)
{
	DicomImage *im = NULL;
	unsigned long mid, size;
	const void *out;
	OFCondition st;
	int rc = PI_ERR_UNPROCESSABLE;

	st = ff.loadFile(path, EXS_Unknown, EGL_noChange, DICOM_MAX_READ,
	    ERM_fileOnly);
	if (st.bad())
		return PI_ERR_UNPROCESSABLE;
	mid = info->frames > 1 ? info->frames / 2 : 0;
	im = new DicomImage(&ff, EXS_Unknown,
	    CIF_UsePartialAccessToPixelData, mid, 1);
	if (im->getStatus() != EIS_Normal) {
		log_info("dicom: cannot decode: %s",
		    DicomImage::getString(im->getStatus()));
		goto out;
	}
	if (im->getWidth() != info->cols || im->getHeight() != info->rows)
		goto out;
	if (im->isMonochrome()) {
		/* The file's own choice first: a VOI LUT, then a window;
		 * else the full range of the pixels. */
		if (im->getVoiLutCount() > 0)
			(void)im->setVoiLut(0);
		else if (im->getWindowCount() > 0)
			(void)im->setWindow(0);
		else
			(void)im->setMinMaxWindow(0);
	}
	size = im->getOutputDataSize(8);
	out = im->getOutputData(8, 0, 0);
	if (out == NULL || size == 0 ||
	    size != (unsigned long)info->rows * info->cols *
	    (im->isMonochrome() ? 1u : 3u)) {
		log_info("dicom: rendering failed: %s",
		    DicomImage::getString(im->getStatus()));
		goto out;
	}
	if ((*pixels = (unsigned char *)malloc(size)) == NULL) {
		rc = PI_ERR_NOMEM;
		goto out;
	}
	memcpy(*pixels, out, size);
	*w = info->cols;
	*h = info->rows;
	*channels = im->isMonochrome() ? 1 : 3;
	rc = 0;
out:
	delete im;
	return rc;
}

extern "C" int
dicom_render(const char *path, const struct dicom_info *info,
    unsigned char **pixels, uint32_t *w, uint32_t *h, int *channels)
{
	if (!dicom_ready || path == NULL || info == NULL || pixels == NULL ||
	    w == NULL || h == NULL || channels == NULL)
		return PI_ERR_INTERNAL;
	*pixels = NULL;
	try {
		DcmFileFormat ff;

		return dicom_render_ff(path, info, ff, pixels, w, h, channels);
	} catch (const std::bad_alloc &) {
		free(*pixels);
		*pixels = NULL;
		return PI_ERR_NOMEM;
	} catch (...) {
		free(*pixels);
		*pixels = NULL;
		return PI_ERR_UNPROCESSABLE;
	}
}
