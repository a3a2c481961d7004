/* ingest.h — an original in, the three stored objects out.
 *
 * No requests and no rows are read here: the caller hands over the storage,
 * the request arena, the limits and the struct image it is filling (db.h's
 * type, used as a plain record). See ingest.c.
 */
#ifndef POLAIMG_INGEST_H
#define POLAIMG_INGEST_H

#include <stddef.h>

#include "imaging.h"

struct arena;
struct evp_md_ctx_st;
struct image;
struct storage;

/* The three objects of an image (docs/design.md, "Storage layout"). */
enum ingest_variant { V_ORIGINAL = 0, V_DISPLAY, V_THUMBNAIL };

/* A temp file in storage's scratch space being filled with an original,
 * hashed (SHA-256) and measured on the way, refusing to grow past max
 * bytes. Fields are read by the caller after ingest_sink_finish(): path
 * (the file), size, head/headlen (the first bytes, for img_sniff). */
struct ingest_sink {
	int fd;
	char path[1100];
	struct evp_md_ctx_st *md;
	long long size, max;      /* size: bytes accepted, buffered included */
	unsigned char head[132];  /* a DICOM file is told at byte 128 */
	size_t headlen;
	long long max_dicom;      /* 0, or the limit once head shows DICOM */
	char *buf;                /* INGEST_SINK_BUF bytes in the arena */
	size_t buffered;
	int err;                  /* first error, sticky */
};

/* Makes s a fresh sink: a temp file of st (storage_tmpfile), its buffer in
 * arena a. Returns 0, or PI_ERR_INTERNAL / PI_ERR_STORAGE / PI_ERR_NOMEM;
 * ingest_sink_discard() is safe after any of them. */
int ingest_sink_open(struct ingest_sink *s, struct storage *st,
    struct arena *a, long long max);
/* A DICOM file may grow to max_dicom bytes instead of max (the sink's
 * limit is the larger of the two until its first 132 bytes tell). */
void ingest_sink_dicom_max(struct ingest_sink *s, long long max_dicom);
/* Appends len bytes. 0, or the sink's first error (sticky): PI_ERR_TOO_LARGE
 * past max, PI_ERR_STORAGE / PI_ERR_STORAGE_FULL on a failed write. */
int ingest_sink_write(struct ingest_sink *s, const char *data, size_t len);
/* Writes what is buffered, finishes the hash into hexout (64 hex digits and
 * a NUL) and closes the file, which stays at s->path. 0 or a pi_err. */
int ingest_sink_finish(struct ingest_sink *s, char hexout[65]);
/* Closes and removes whatever of the sink is left (the file too). */
void ingest_sink_discard(struct ingest_sink *s);

/* SHA-256 (hex into hexout) and size of the file at path. 0 or PI_ERR_IO. */
int ingest_file_sha256(const char *path, char hexout[65], long long *size);

/* The storage key of object v of img ("<storage_key>/display.jpg"), named
 * after the object's type; from arena a, NULL when it cannot allocate. */
const char *ingest_object_key(struct arena *a, const struct image *img,
    enum ingest_variant v);

/* Removes the first n objects of img (original, display, thumbnail) after a
 * failed write; a failure is logged (sweep removes what is left). */
void ingest_delete_objects(struct storage *st, struct arena *a,
    const struct image *img, int n);

/* Probes the original at orig_path (sniffed type t) within max_pixels,
 * makes the display copy and the thumbnail, and stores the objects under
 * img->storage_key: the original too when store_original (the file is
 * consumed then). Fills img's mime types, dimensions, sizes and hashes of
 * the copies, and captured_at from the EXIF date when img has none. A
 * DICOM original (t IMG_DICOM) is read by dicom.cc instead of ImageMagick
 * (header limits of dicom_init(); max_pixels unused): its middle frame is
 * rendered, and frames and the DICOM fields of img are filled too.
 * Returns 0, or a pi_err (PI_ERR_UNPROCESSABLE, PI_ERR_TOO_LARGE,
 * PI_ERR_UNSUPPORTED from imaging; PI_ERR_STORAGE / PI_ERR_STORAGE_FULL);
 * on failure nothing of it remains in storage (an original stored before
 * the call, store_original 0, is kept) and its temp files are removed. */
int ingest(struct storage *st, struct arena *a, long long max_pixels,
    struct image *img, const char *orig_path, enum img_type t,
    int store_original);

#endif
