/* fuzz_dicom.c — libFuzzer harness for dicom_probe(), the DICOM header
 * reader (DCMTK behind src/dicom.h) that runs on every uploaded DICOM file
 * before a pixel is decoded.
 *
 * Build and run (or `make fuzz`):
 *   tests/fuzz/run.sh dicom
 *
 * Input: the bytes after the 128-byte preamble and "DICM" (the harness
 * adds them, so every input reaches DCMTK's parser), written to a memfd
 * and read by path, as an upload's temp file is. Contract checked for
 * every input:
 * - the answer is 0, PI_ERR_UNPROCESSABLE, PI_ERR_UNSUPPORTED or
 *   PI_ERR_NOMEM, never anything else, and no exception escapes (it would
 *   abort);
 * - PI_ERR_UNSUPPORTED carries exactly one reason (transfer syntax or SOP
 *   class);
 * - on 0 the header is within the limits: rows, columns, frames > 0,
 *   rows x columns <= max_pixels, frames <= max_frames, samples 1 or 3,
 *   bits 8 or 16, and every string is NUL-terminated in its field;
 * - the same answer when asked twice.
 * Reads outside memory (ASan) and undefined behaviour (UBSan) in polaimg's
 * code abort; DCMTK itself is not instrumented.
 *
 * Seeds (tests/fuzz/corpus/dicom/, each a file less its first 132 bytes):
 * op-* a 16x12 ophthalmic photograph made with img2dcm -oph from a
 * /usr/bin/convert JPEG, then dcmdjpeg (raw), dcmconv +ti / +td, dcmcrle,
 * dcmcjpls, dcmcjpeg +e1 and gdcmconv --j2k; mono1-16bit a dump2dcm
 * MONOCHROME1 16-bit file with a window; oom-* the inputs that made DCMTK
 * allocate gigabytes before the meta group and value lengths were bounded
 * (oom-deflated-element-length: an element inside a deflated data set
 * claiming 3.9 GB, before dicom_walk proved every length); nest-* 70
 * levels of sequences over op-raw (defined length) and inside op-defl's
 * inflated data set (undefined and defined length): 140 levels of
 * sequences and items, past DICOM_MAX_DEPTH, so the walker's depth and
 * container paths are reached from the start.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"
#include "dicom.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_PIXELS 1000000ULL
#define FUZZ_MAX_FRAMES 16ULL
/* The inflated data set of a deflated input (max_dicom_bytes). */
#define FUZZ_MAX_BYTES (64ULL << 20)

static int fd = -1;
static char path[64];

static int
terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static void
check(const struct dicom_info *i, int rc)
{
	if (rc != 0 && rc != PI_ERR_UNPROCESSABLE && rc != PI_ERR_UNSUPPORTED &&
	    rc != PI_ERR_NOMEM)
		abort();
	if (rc == PI_ERR_UNSUPPORTED && i->refused_ts + i->refused_sop != 1)
		abort();
	if (!terminated(i->transfer_syntax, sizeof(i->transfer_syntax)) ||
	    !terminated(i->sop_class, sizeof(i->sop_class)) ||
	    !terminated(i->sop_uid, sizeof(i->sop_uid)) ||
	    !terminated(i->patient_id, sizeof(i->patient_id)) ||
	    !terminated(i->modality, sizeof(i->modality)) ||
	    !terminated(i->manufacturer, sizeof(i->manufacturer)) ||
	    !terminated(i->model, sizeof(i->model)))
		abort();
	if (rc != 0)
		return;
	if (i->rows == 0 || i->cols == 0 || i->frames == 0 ||
	    (uint64_t)i->rows * i->cols > FUZZ_MAX_PIXELS ||
	    i->frames > FUZZ_MAX_FRAMES || (i->samples != 1 && i->samples != 3) ||
	    (i->bits_allocated != 8 && i->bits_allocated != 16))
		abort();
	if (i->laterality != 0 && i->laterality != 'R' && i->laterality != 'L' &&
	    i->laterality != 'B')
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char zero[128];
	struct dicom_info a, b;
	int ra, rb;

	if (size > 1 << 20)
		return 0;
	if (fd < 0) {
		struct dicom_limits lim = { FUZZ_MAX_PIXELS, FUZZ_MAX_FRAMES,
		    FUZZ_MAX_BYTES };

		/* A refusal's info line per input would be the whole log. */
		if ((fd = memfd_create("fuzz_dicom", 0)) < 0 ||
		    log_init("warn", "") != 0 || dicom_init(&lim) != 0)
			abort();
		(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, zero, 128, 0) != 128 ||
	    pwrite(fd, "DICM", 4, 128) != 4 ||
	    (size > 0 && pwrite(fd, data, size, 132) != (ssize_t)size))
		abort();
	ra = dicom_probe(path, &a);
	check(&a, ra);
	rb = dicom_probe(path, &b);
	if (ra != rb || (ra == 0 && (a.rows != b.rows || a.cols != b.cols ||
	    a.frames != b.frames)))
		abort();
	return 0;
}
