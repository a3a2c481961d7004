/* dicom.h — DICOM Part 10 files in, 8-bit display pixels out (DCMTK).
 *
 * The one C++ file of polaimg (dicom.cc) behind a C interface: no
 * exception and no DCMTK type crosses it. Functions return 0 or a negative
 * enum pi_err. See dicom.cc for the design.
 */
#ifndef POLAIMG_DICOM_H
#define POLAIMG_DICOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes at the start of a Part 10 file that tell it: a 128-byte preamble,
 * then "DICM". */
#define DICOM_SNIFF_LEN 132

/* The deepest nesting of sequences and items (each counts one level)
 * dicom_probe() lets DCMTK read: DCMTK reads nested items recursively. */
#define DICOM_MAX_DEPTH 64

/* Per-worker limits, set by dicom_init(). */
struct dicom_limits {
	uint64_t max_pixels;   /* Rows x Columns of one frame */
	uint64_t max_frames;   /* NumberOfFrames */
	uint64_t max_bytes;    /* the data set as read, inflated when deflated
	                        * (max_dicom_bytes) */
};

/* What the header says (dicom_probe). Strings are NUL-terminated, empty
 * when the element is absent; no patient name is ever read. */
struct dicom_info {
	uint32_t rows, cols, frames, samples, bits_allocated;
	char transfer_syntax[65];
	char sop_class[65];
	char study_uid[65], series_uid[65], sop_uid[65];
	char modality[17];
	char manufacturer[65], model[65];
	char laterality;       /* 'R', 'L', 'B', or 0 */
	char patient_id[65];
	int64_t captured_at;   /* UTC seconds, -1 when absent or malformed */
	int refused_ts;        /* 1: a transfer syntax polaimg does not decode
	                        * (JPEG 2000 …); rc PI_ERR_UNSUPPORTED */
	int refused_sop;       /* 1: not one of the image SOP classes taken */
};

/* Once per worker, after fork: registers the decoders, silences DCMTK's
 * logger (its messages go nowhere; failures are logged by polaimg) and
 * sets the limits. Calling it again only re-applies the limits. 0. */
int dicom_init(const struct dicom_limits *lim);

/* At a worker's exit: unregisters the decoders dicom_init() registered (so
 * that nothing it allocated outlives the process's last free). */
void dicom_shutdown(void);

/* Whether buf (len bytes) begins like a Part 10 file. Pure. */
bool dicom_sniff(const unsigned char *buf, size_t len);

/* Reads the header of the Part 10 file at path, leaving every long value
 * (the pixel data) on disk, and checks it before any pixel is decoded.
 * First the structure alone (dicom.cc, dicom_walk): every element's length
 * within its item, sequence and the file (a deflated data set inflated,
 * at most max_bytes), sequences and items nested at most DICOM_MAX_DEPTH
 * levels; then the values:
 * an image SOP with Rows, Columns, SamplesPerPixel 1 or 3, BitsAllocated
 * 8 or 16, Rows x Columns within max_pixels, NumberOfFrames within
 * max_frames and, for a native transfer syntax, pixel data as long as the
 * header says. Fills info. Returns 0, PI_ERR_UNSUPPORTED for a transfer
 * syntax polaimg does not decode (info->refused_ts set) or a SOP class it
 * does not take (info->refused_sop set),
 * PI_ERR_UNPROCESSABLE for anything else wrong, PI_ERR_INTERNAL before
 * dicom_init(). */
int dicom_probe(const char *path, struct dicom_info *info);

/* Decodes the middle frame of the file at path (frames / 2, 0-based) and
 * renders it to 8-bit pixels: photometric interpretation (MONOCHROME1/2,
 * RGB, YBR_*, PALETTE COLOR), bit depth, and for monochrome the file's
 * first VOI LUT or window, else a min-max window. *pixels is malloc'd
 * (caller frees), *w x *h x *channels (1 grey, 3 RGB interleaved) bytes.
 * Returns 0, PI_ERR_UNPROCESSABLE (corrupt, truncated, undecodable),
 * PI_ERR_UNSUPPORTED (transfer syntax), PI_ERR_NOMEM. */
int dicom_render(const char *path, const struct dicom_info *info,
    unsigned char **pixels, uint32_t *w, uint32_t *h, int *channels);

/* Pure helpers, exported for the unit test. */

/* 'R', 'L', 'B' for a Laterality / ImageLaterality value ("R", "L", "B",
 * trailing spaces allowed), 0 for anything else ("U", empty). */
char dicom_laterality(const char *v);
/* UTC seconds for a DICOM time: dt a DT value (YYYYMMDDHHMMSS.FFFFFF&ZZXX,
 * precision may stop after any part of the date or time), else date (DA
 * YYYYMMDD) with time (TM HHMMSS.FFFFFF, may be NULL or empty); tz an
 * offset "&ZZXX" (TimezoneOffsetFromUTC) used when dt has none; no offset
 * at all: the clock is the local time of the process's TZ (local_timezone,
 * as for EXIF times). -1 when absent, malformed or before 1970. */
int64_t dicom_time(const char *dt, const char *date, const char *tm,
    const char *tz);

#ifdef __cplusplus
}
#endif

#endif
