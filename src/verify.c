/* verify.c — `polaimg verify`: re-hash what storage holds against the
 * database, and report; never change anything.
 *
 * polaimg's promise is that a ready row always has its three objects and
 * that an object, once published, is never rewritten. This verb checks the
 * promise after the fact — after a crash, a restore from backup, a disk
 * incident, or each fault the robustness suite injects:
 *
 * - Every image whose objects must exist (ready and not purged; deleted
 *   images too, since they can be restored until sweep purges them) is read
 *   from the database in keyset pages (db_live_images), so memory stays flat
 *   with any number of images.
 * - For each of its objects (original, display, thumbnail) the object is
 *   stat'ed and then streamed through SHA-256 with the back end's own
 *   operations (storage_stat, ops->stream), so the same code checks local
 *   disk, S3 and Supabase, needs no temp file and works on read-only
 *   storage. Size and digest are compared with the row (file_size/sha256,
 *   display_size/display_sha256, thumb_size/thumb_sha256). A variant the row
 *   has no digest for (a legacy PolaCare row that predates polaimg) is not
 *   checked and is counted as such.
 * - Then every object under "cases/" is listed; one whose image directory
 *   has no live row is reported as an orphan. Orphans are not losses (an
 *   upload publishes its objects a moment before its row, and `polaimg
 *   sweep` removes orphans older than an hour), so they are reported but do
 *   not make the verb fail.
 *
 * - First of all, the audit spool (<audit_spool_dir>/audit.spool, spool.h)
 *   is read: rows in it are audit rows not yet in image_events (the
 *   database was away when they were made; a worker writes them once it is
 *   back). They are counted, never removed, and make the verb fail, even
 *   when the database cannot be reached.
 *
 * Output is one line per problem, then one summary line; the exit status is
 * 1 when an object is missing, differs, or could not be read (a check that
 * could not be made is not a pass), or the audit spool holds rows.
 */
#include "verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common.h"
#include "config.h"
#include "db.h"
#include "report.h"
#include "spool.h"
#include "storage.h"

struct verify {
	struct db *db;
	struct storage *st;
	int quiet;
	struct report *rep;        /* problems, counts; --json */
	long images, objects, legacy, missing, mismatched, unreadable, orphans;
	size_t spooled;            /* audit rows waiting in the spool */
	int db_failed;             /* the orphan walk lost the database */
	char last_prefix[300];     /* the orphan walk's last image directory */
	int last_known;            /* ... and whether it had a live row */
};

/* Streams object key through SHA-256. */
struct hasher {
	EVP_MD_CTX *md;
	long long bytes;
};

static int
verify_hash_cb(void *ud, const char *buf, size_t n)
{
	struct hasher *h = ud;

	if (EVP_DigestUpdate(h->md, buf, n) != 1)
		return -1;
	h->bytes += (long long)n;
	return 0;
}

/* SHA-256 (lower-case hex, 65 bytes) of the first size bytes of key. 0 or
 * a pi_err (PI_ERR_STORAGE when the object is shorter than size). */
static int
verify_digest(struct storage *st, const char *key, long long size,
    char hexout[65])
{
	struct hasher h = { NULL, 0 };
	unsigned char digest[32];
	unsigned int dlen = 0;
	int rc = PI_ERR_INTERNAL;

	h.md = EVP_MD_CTX_new();
	if (h.md == NULL || EVP_DigestInit_ex(h.md, EVP_sha256(), NULL) != 1)
		goto out;
	if (size > 0) {
		rc = st->ops->stream(st, key, 0, size - 1, verify_hash_cb, &h);
		if (rc != 0)
			goto out;
		if (h.bytes != size) {
			rc = PI_ERR_STORAGE;
			goto out;
		}
	}
	rc = PI_ERR_INTERNAL;
	if (EVP_DigestFinal_ex(h.md, digest, &dlen) != 1 || dlen != 32)
		goto out;
	pi_hex(digest, 32, hexout);
	rc = 0;
out:
	EVP_MD_CTX_free(h.md);
	return rc;
}

/* The object name of a derived copy: PNG stays PNG, everything else is
 * JPEG (the naming ingest.c stores them under). */
static const char *
verify_derived_name(const char *stem, const char *mime, char *buf, size_t n)
{
	int png = strcmp(mime, "image/png") == 0;
	int w = snprintf(buf, n, "%s.%s", stem, png ? "png" : "jpg");

	return w >= 0 && (size_t)w < n ? buf : NULL;
}

/* Checks one object of img against the recorded size and digest. */
static void
verify_object(struct verify *v, const struct image *img, const char *name,
    long long size, const char *sha)
{
	struct storage_stat sst;
	char key[400], got[65];
	int n, rc;

	if (name == NULL || sha[0] == '\0') {
		v->legacy++;
		return;
	}
	n = snprintf(key, sizeof(key), "%s/%s", img->storage_key, name);
	if (n < 0 || (size_t)n >= sizeof(key)) {
		v->unreadable++;
		report_problem(v->rep, "unreadable image %s: storage key too long", img->id);
		return;
	}
	v->objects++;
	rc = storage_stat(v->st, key, &sst);
	if (rc == PI_ERR_NOT_FOUND) {
		v->missing++;
		report_problem(v->rep, "missing %s (image %s)", key, img->id);
		return;
	}
	if (rc != 0) {
		v->unreadable++;
		report_problem(v->rep, "unreadable %s (image %s): %s", key, img->id,
		    pi_strerror(rc));
		return;
	}
	if (size >= 0 && sst.size != size) {
		v->mismatched++;
		report_problem(v->rep, "size mismatch %s (image %s): %lld bytes, recorded %lld",
		    key, img->id, (long long)sst.size, size);
		return;
	}
	rc = verify_digest(v->st, key, (long long)sst.size, got);
	if (rc != 0) {
		v->unreadable++;
		report_problem(v->rep, "unreadable %s (image %s): %s", key, img->id,
		    pi_strerror(rc));
		return;
	}
	if (strcmp(got, sha) != 0) {
		v->mismatched++;
		report_problem(v->rep, "sha256 mismatch %s (image %s): %s, recorded %s", key,
		    img->id, got, sha);
		return;
	}
	if (!v->quiet)
		fprintf(v->rep->out, "ok %s\n", key);
}

/* db_live_images callback: the three objects of one image. */
static int
verify_image(void *ud, const struct image *img)
{
	struct verify *v = ud;
	char dname[32], tname[32];

	v->images++;
	if (img->storage_key[0] == '\0') {
		/* A PolaCare row from before polaimg: its bytes live elsewhere. */
		v->legacy += 3;
		return 0;
	}
	verify_object(v, img, "original", img->file_size, img->sha256);
	verify_object(v, img, verify_derived_name("display", img->display_mime,
	    dname, sizeof(dname)), img->display_size, img->display_sha256);
	verify_object(v, img, verify_derived_name("thumb", img->thumb_mime,
	    tname, sizeof(tname)), img->thumb_size, img->thumb_sha256);
	return 0;
}

/* storage_list callback: an object whose image directory has no live row
 * is an orphan. Keys of one image come together, so the answer for the
 * last directory is reused. */
static int
verify_orphan(void *ud, const char *key, time_t mtime)
{
	struct verify *v = ud;
	const char *slash = strrchr(key, '/');
	size_t n;

	(void)mtime;
	if (slash == NULL || (n = (size_t)(slash - key)) >= sizeof(v->last_prefix))
		return 0;
	if (strlen(v->last_prefix) != n || strncmp(v->last_prefix, key, n) != 0) {
		bool known;

		memcpy(v->last_prefix, key, n);
		v->last_prefix[n] = '\0';
		if (db_storage_key_known(v->db, v->last_prefix, &known) != 0) {
			v->db_failed = 1;
			return 1;
		}
		v->last_known = known;
	}
	if (!v->last_known) {
		v->orphans++;
		fprintf(v->rep->out, "orphan %s (no live row; sweep removes it "
		    "after an hour)\n", key);
	}
	return 0;
}

/* Counts the audit spool's records (and prints a line when there are
 * any); 0, or -1 when it cannot be read. */
static int
verify_spool(const struct config *cfg, struct verify *v)
{
	char path[4096];
	size_t damaged = 0;

	if (cfg->audit_spool_dir[0] == '\0')
		return 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", cfg->audit_spool_dir,
	    SPOOL_FILE) >= sizeof(path) ||
	    spool_count(path, &v->spooled, &damaged) != 0) {
		report_problem(v->rep, "audit spool %s: cannot read: %s", path,
		    strerror(errno));
		return -1;
	}
	if (v->spooled > 0 || damaged > 0)
		report_problem(v->rep, "audit spool %s: %zu audit row(s) not yet in image_events "
		    "(%zu damaged record(s)); a worker writes them once the "
		    "database answers", path, v->spooled, damaged);
	if (damaged > 0 && v->spooled == 0)
		v->spooled = damaged;
	return 0;
}

int
verify_main(const struct config *cfg, int argc, char **argv)
{
	struct verify v;
	struct report rep;
	char err[512];
	int rc = 1, json = 0;

	memset(&v, 0, sizeof(v));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quiet") == 0) {
			v.quiet = 1;
		} else if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else {
			fprintf(stderr, "usage: polaimg verify [--quiet] [--json]\n");
			return 2;
		}
	}
	if (report_init(&rep, "verify", json) != 0) {
		fprintf(stderr, "polaimg: verify: out of memory\n");
		return 1;
	}
	v.rep = &rep;
	/* With --json, stdout is the object's; the per-object lines are
	 * progress, not the report, and a monitor needs none of them. */
	if (json)
		v.quiet = 1;
	if (verify_spool(cfg, &v) != 0)
		v.unreadable++;
	v.db = db_new(cfg->database_url);
	v.st = storage_open(cfg, err, sizeof(err));
	if (v.st == NULL) {
		report_error(&rep, "%s", err);
		goto out;
	}
	if (v.db == NULL || db_ping(v.db) != 0) {
		report_error(&rep, "database unavailable");
		goto out;
	}
	if (db_live_images(v.db, verify_image, &v) != 0) {
		report_error(&rep, "database error");
		goto out;
	}
	if (storage_list(v.st, "cases", verify_orphan, &v) != 0 || v.db_failed) {
		report_error(&rep, "could not list storage for orphans");
		v.unreadable++;
	}
	fprintf(rep.out, "verify: %ld images, %ld objects checked, %ld missing, "
	    "%ld mismatched, %ld unreadable, %ld not recorded (legacy), "
	    "%ld orphan objects, %zu spooled audit rows\n", v.images,
	    v.objects, v.missing, v.mismatched, v.unreadable, v.legacy,
	    v.orphans, v.spooled);
	rc = v.missing + v.mismatched + v.unreadable > 0 || v.spooled > 0 ?
	    1 : 0;
out:
	report_count(&rep, "images", v.images);
	report_count(&rep, "objects", v.objects);
	report_count(&rep, "missing", v.missing);
	report_count(&rep, "mismatched", v.mismatched);
	report_count(&rep, "unreadable", v.unreadable);
	report_count(&rep, "legacy", v.legacy);
	report_count(&rep, "orphans", v.orphans);
	report_count(&rep, "spooled", (long long)v.spooled);
	report_finish(&rep, rc == 0);
	storage_close(v.st);
	db_free(v.db);
	return rc;
}
