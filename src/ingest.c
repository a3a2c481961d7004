/* ingest.c — an original in, the three stored objects out.
 *
 * The part of an upload that knows no HTTP and no rows: a sink that receives
 * the original's bytes into a temp file while hashing and measuring them,
 * and ingest(), which probes the original, makes the display copy and the
 * thumbnail (imaging.c), hashes them and publishes the objects through the
 * storage interface. The upload handlers (handlers_upload.c) feed it; the
 * unit test (tests/unit/test_ingest.c) runs it on real images with local
 * storage and no database.
 *
 * Bytes are gathered in the sink's buffer before they are hashed and
 * written: the multipart parser hands over binary data in pieces that end
 * at every CR, about one in 256 bytes, and a write(2) and a hash update each
 * would be some 12,000 system calls for a 3 MB photograph.
 *
 * Consistency: every file ingest writes lives in storage's temp directory
 * and is removed on every path; an object it stored is deleted again when a
 * later step fails, so a failed ingest leaves nothing (the caller then
 * records nothing either: storage first, database second).
 */
#include "ingest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common.h"
#include "arena.h"
#include "db.h"
#include "dicom.h"
#include "imaging.h"
#include "log.h"
#include "storage.h"

/* --- receiving bytes ---------------------------------------------------- */

/* The sink's buffer (see the top of this file). */
#define INGEST_SINK_BUF (16 * 1024)

int
ingest_sink_open(struct ingest_sink *s, struct storage *st, struct arena *a,
    long long max)
{
	memset(s, 0, sizeof(*s));
	s->max = max;
	s->md = EVP_MD_CTX_new();
	if (s->md == NULL || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(s->md);
		s->md = NULL;
		s->fd = -1;
		return PI_ERR_INTERNAL;
	}
	s->fd = storage_tmpfile(st, s->path, sizeof(s->path));
	if (s->fd < 0) {
		log_error("upload: cannot create a temp file: %s", strerror(errno));
		return PI_ERR_STORAGE;
	}
	if ((s->buf = arena_alloc(a, INGEST_SINK_BUF)) == NULL)
		return PI_ERR_NOMEM;
	return 0;
}

/* Hashes and writes len bytes to the file. */
static int
sink_put(struct ingest_sink *s, const char *data, size_t len)
{
	if (EVP_DigestUpdate(s->md, data, len) != 1) {
		s->err = PI_ERR_INTERNAL;
		return s->err;
	}
	while (len > 0) {
		ssize_t n = write(s->fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error("upload: temp file write failed: %s", strerror(errno));
			s->err = errno == ENOSPC || errno == EDQUOT ?
			    PI_ERR_STORAGE_FULL : PI_ERR_STORAGE;
			return s->err;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Hashes and writes what buf holds. */
static int
sink_flush(struct ingest_sink *s)
{
	int rc = s->buffered > 0 ? sink_put(s, s->buf, s->buffered) : 0;

	s->buffered = 0;
	return rc;
}

void
ingest_sink_dicom_max(struct ingest_sink *s, long long max_dicom)
{
	s->max_dicom = max_dicom;
}

/* The size limit in force: the DICOM one for a DICOM file, the larger one
 * while the head cannot tell yet. */
static long long
sink_limit(const struct ingest_sink *s)
{
	if (s->max_dicom <= 0)
		return s->max;
	if (s->headlen < DICOM_SNIFF_LEN)
		return s->max > s->max_dicom ? s->max : s->max_dicom;
	return dicom_sniff(s->head, s->headlen) ? s->max_dicom : s->max;
}

int
ingest_sink_write(struct ingest_sink *s, const char *data, size_t len)
{
	if (s->err != 0)
		return s->err;
	if (s->headlen < sizeof(s->head)) {
		size_t k = sizeof(s->head) - s->headlen;

		if (k > len)
			k = len;
		memcpy(s->head + s->headlen, data, k);
		s->headlen += k;
	}
	if ((long long)len > sink_limit(s) - s->size) {
		s->err = PI_ERR_TOO_LARGE;
		return s->err;
	}
	s->size += (long long)len;
	if (len > INGEST_SINK_BUF - s->buffered) {
		if (sink_flush(s) != 0)
			return s->err;
		if (len >= INGEST_SINK_BUF)
			return sink_put(s, data, len);
	}
	memcpy(s->buf + s->buffered, data, len);
	s->buffered += len;
	return 0;
}

/* Finishes the hash into hexout (65 bytes) and closes the file. */
int
ingest_sink_finish(struct ingest_sink *s, char hexout[65])
{
	unsigned char digest[32];
	unsigned int dlen = 0;

	if (s->err != 0 || sink_flush(s) != 0)
		return s->err;
	if (EVP_DigestFinal_ex(s->md, digest, &dlen) != 1 || dlen != 32)
		return PI_ERR_INTERNAL;
	pi_hex(digest, 32, hexout);
	if (close(s->fd) != 0) {
		s->fd = -1;
		return PI_ERR_STORAGE;
	}
	s->fd = -1;
	return 0;
}

/* Closes and removes whatever is left. */
void
ingest_sink_discard(struct ingest_sink *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->path[0] != '\0')
		(void)unlink(s->path);
	s->path[0] = '\0';
	EVP_MD_CTX_free(s->md);
	s->md = NULL;
}

/* SHA-256 and size of a local file. */
int
ingest_file_sha256(const char *path, char hexout[65], long long *size)
{
	unsigned char buf[65536], digest[32];
	unsigned int dlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int fd = -1, rc = PI_ERR_IO;
	ssize_t n;

	*size = 0;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			goto out;
		*size += n;
	}
	if (n < 0 || EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32)
		goto out;
	pi_hex(digest, 32, hexout);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(md);
	return rc;
}

/* --- turning an original into stored objects ---------------------------- */

static const char *
object_name(enum ingest_variant v, const char *mime)
{
	int png = mime != NULL && strcmp(mime, "image/png") == 0;

	switch (v) {
	case V_ORIGINAL: return "original";
	case V_DISPLAY: return png ? "display.png" : "display.jpg";
	case V_THUMBNAIL: default: return png ? "thumb.png" : "thumb.jpg";
	}
}

const char *
ingest_object_key(struct arena *a, const struct image *img,
    enum ingest_variant v)
{
	const char *mime = v == V_DISPLAY ? img->display_mime :
	    v == V_THUMBNAIL ? img->thumb_mime : img->mime_type;

	return arena_printf(a, "%s/%s", img->storage_key, object_name(v, mime));
}

void
ingest_delete_objects(struct storage *st, struct arena *a,
    const struct image *img, int n)
{
	for (int v = 0; v < n; v++) {
		const char *key = ingest_object_key(a, img, (enum ingest_variant)v);

		if (key != NULL && storage_del(st, key) != 0)
			log_error("storage: could not remove %s after a failed "
			    "upload; sweep will", key);
	}
}

/* The DICOM part of ingest(): reads the header (dicom_probe, the limits of
 * dicom_init), renders the middle frame and makes both copies from its
 * pixels at out's paths. Fills img's size, frames, DICOM fields and
 * captured_at (when img has none). 0 or a pi_err. */
static int
ingest_dicom(struct image *img, const char *orig_path,
    struct img_outputs *out)
{
	struct dicom_info info;
	unsigned char *px = NULL;
	uint32_t w = 0, h = 0;
	int ch = 0, rc;

	rc = dicom_probe(orig_path, &info);
	if (rc != 0)
		goto out;
	img->width = (long)info.cols;
	img->height = (long)info.rows;
	img->frames = (long)info.frames;
	if (img->captured_at < 0 && info.captured_at >= 0) {
		img->captured_at = info.captured_at;
		(void)snprintf(img->captured_source,
		    sizeof(img->captured_source), "dicom");
	}
	(void)snprintf(img->modality, sizeof(img->modality), "%s", info.modality);
	(void)snprintf(img->manufacturer, sizeof(img->manufacturer), "%s",
	    info.manufacturer);
	(void)snprintf(img->model_name, sizeof(img->model_name), "%s", info.model);
	(void)snprintf(img->study_uid, sizeof(img->study_uid), "%s", info.study_uid);
	(void)snprintf(img->series_uid, sizeof(img->series_uid), "%s",
	    info.series_uid);
	(void)snprintf(img->sop_uid, sizeof(img->sop_uid), "%s", info.sop_uid);
	(void)snprintf(img->sop_class, sizeof(img->sop_class), "%s",
	    info.sop_class);
	rc = dicom_render(orig_path, &info, &px, &w, &h, &ch);
	if (rc != 0)
		goto out;
	rc = img_derive_pixels(px, w, h, ch, out);
out:
	free(px);
	return rc;
}

/* Probes the original at orig_path (sniffed type t), makes the display copy
 * and the thumbnail, and stores the objects: the original too when
 * store_original (it is consumed then). Fills img's measurements. On
 * failure nothing of it remains in storage. */
int
ingest(struct storage *st, struct arena *a, long long max_pixels,
    struct image *img, const char *orig_path, enum img_type t,
    int store_original)
{
	struct img_info info;
	struct img_outputs out;
	char dpath[1100] = "", tpath[1100] = "";
	int fd, rc, stored = 0, turned;

	if (t != IMG_DICOM) {
		rc = img_probe(orig_path, t, (uint64_t)max_pixels, &info);
		if (rc != 0)
			goto out;
		/* The size as displayed: EXIF orientations 5..8 turn the
		 * image by a quarter (docs/api.md, "The image resource"). */
		turned = info.orientation >= 5 && info.orientation <= 8;
		img->width = (long)(turned ? info.height : info.width);
		img->height = (long)(turned ? info.width : info.height);
		/* The EXIF date when the client gave none: a new image has no
		 * date yet, a pending one read back shows its upload time as
		 * "upload". */
		if ((img->captured_at < 0 ||
		    strcmp(img->captured_source, "upload") == 0) &&
		    info.captured_at >= 0) {
			img->captured_at = info.captured_at;
			(void)snprintf(img->captured_source,
			    sizeof(img->captured_source), "exif");
		}
	}
	(void)snprintf(img->mime_type, sizeof(img->mime_type), "%s", img_mime(t));

	rc = PI_ERR_STORAGE;
	if ((fd = storage_tmpfile(st, dpath, sizeof(dpath))) < 0)
		goto out;
	close(fd);
	if ((fd = storage_tmpfile(st, tpath, sizeof(tpath))) < 0)
		goto out;
	close(fd);
	memset(&out, 0, sizeof(out));
	out.display_path = dpath;
	out.thumb_path = tpath;
	rc = t == IMG_DICOM ? ingest_dicom(img, orig_path, &out) :
	    img_derive(orig_path, &info, &out);
	if (rc != 0)
		goto out;
	(void)snprintf(img->display_mime, sizeof(img->display_mime), "%s",
	    img_mime(out.display_type));
	(void)snprintf(img->thumb_mime, sizeof(img->thumb_mime), "%s",
	    img_mime(out.thumb_type));
	/* A failed hash of a temp file in storage's directory is a storage
	 * failure, whatever the hash said. */
	if (ingest_file_sha256(dpath, img->display_sha256,
	    &img->display_size) != 0 ||
	    ingest_file_sha256(tpath, img->thumb_sha256, &img->thumb_size) != 0) {
		rc = PI_ERR_STORAGE;
		goto out;
	}
	if (store_original) {
		rc = storage_put_file(st,
		    ingest_object_key(a, img, V_ORIGINAL), orig_path, img->mime_type);
		if (rc != 0)
			goto out;
	}
	stored = 1;
	rc = storage_put_file(st,
	    ingest_object_key(a, img, V_DISPLAY), dpath, img->display_mime);
	if (rc != 0)
		goto out;
	stored = 2;
	rc = storage_put_file(st,
	    ingest_object_key(a, img, V_THUMBNAIL), tpath, img->thumb_mime);
	if (rc != 0)
		goto out;
	stored = 3;
out:
	if (rc != 0 && stored > 0) {
		/* Keep the original when it was stored before this call. */
		if (!store_original) {
			for (int v = 1; v < stored; v++)
				(void)storage_del(st,
				    ingest_object_key(a, img, (enum ingest_variant)v));
		} else {
			ingest_delete_objects(st, a, img, stored);
		}
	}
	/* Every file ingest writes lives in storage's temp directory: a write
	 * that fails there (ENOSPC while ImageMagick writes a copy) is a
	 * storage failure, not an internal error. */
	if (rc == PI_ERR_EXISTS || rc == PI_ERR_NOT_FOUND || rc == PI_ERR_INVALID ||
	    rc == PI_ERR_IO)
		rc = PI_ERR_STORAGE;
	if (dpath[0] != '\0')
		(void)unlink(dpath);
	if (tpath[0] != '\0')
		(void)unlink(tpath);
	return rc;
}
