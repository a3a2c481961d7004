/* db.h — everything polaimg asks PostgreSQL, as typed functions.
 *
 * One connection per worker, kept open, re-opened when it is found broken;
 * every statement is prepared once per connection and run with parameters
 * (never built by concatenation). Strings in results live in the arena given.
 * Failures are PI_ERR_DB (unavailable or failed), PI_ERR_NOT_FOUND.
 */
#ifndef POLAIMG_DB_H
#define POLAIMG_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "auditbuf.h"

struct db;

/* A handle for conninfo (libpq keyword/value string or URI). Does not
 * connect yet. NULL on OOM. */
struct db *db_new(const char *conninfo);
void db_free(struct db *db);
/* sync = 1: the audit rows of reads are committed durably like every
 * other write (audit_read_commit = sync); 0 (the default): asynchronously. */
void db_set_sync_reads(struct db *db, int sync);
/* on = 1: every connection LISTENs for the change notifications of
 * sql/003_change_notify.sql (see authcache.h). */
void db_set_listen(struct db *db, int on);
/* A counter in memory shared by the workers of one master: every write
 * transaction of any of them adds one after its COMMIT, before its answer
 * is sent (see db_copies_valid). */
void db_set_change_counter(struct db *db, uint64_t *changes);
/* Whether copies of rows (authcache.h) may be used now: false if not (no
 * listening connection, the triggers are missing, or no shared change
 * counter); else true with *epoch, a number that grows with every notification
 * received, every new connection and every write by a worker of this
 * master — copies made at another epoch must be dropped. Reads what the
 * server sent without waiting. */
bool db_copies_valid(struct db *db, unsigned long *epoch);

/* Connects now (or checks the connection): 0 or PI_ERR_DB. */
int db_ping(struct db *db);

/* Applies sql/NNN_*.sql from dir in order, each once, in a transaction
 * under an advisory lock. Prints what it did to stdout. 0, PI_ERR_IO (dir
 * or a file in it cannot be read) or PI_ERR_DB (any other step failed). */
int db_migrate(struct db *db, const char *dir);

struct db_user {
	char role[16];       /* lower-case */
	int is_active;
	int found;           /* db_auth_*: the row exists */
};
int db_user_get(struct db *db, const char *user_id, struct db_user *out);

/* A case as the API shows it. patient_name and hn are the case's own
 * columns (patient_cases.patient_name, .hn), else its patient's users row
 * (name, hn), NULL where neither exists (the stand-in tables of
 * sql/001_base.sql have none); strings in the arena given. */
struct db_case {
	int found;
	char patient_id[64];       /* text, "" when NULL */
	long long version;         /* list version; -1 none (db_auth_case) */
	const char *patient_name;  /* NULL or arena string */
	const char *hn;            /* NULL or arena string */
};

/* The user and a case in one statement (the case-list request's reads).
 * u->found and kase->found say whether each exists; kase->version is the
 * case's list version (polaimg_case_versions; -1 when it has none yet): it
 * changes with every change to the case's images. 0 or PI_ERR_DB. */
int db_auth_case(struct db *db, struct arena *a, const char *user_id,
    const char *case_id, struct db_user *u, struct db_case *kase);

/* The user and an image (as db_image_get, deleted ones not found) in one
 * statement. u->found and *image_found say whether each exists. 0 or
 * PI_ERR_DB. */
struct image;
int db_auth_image(struct db *db, struct arena *a, const char *user_id,
    const char *image_id, struct db_user *u, struct image *img,
    int *image_found);

/* The case (kase->version is -1). PI_ERR_NOT_FOUND if there is none. */
int db_case_get(struct db *db, struct arena *a, const char *case_id,
    struct db_case *kase);

struct image {
	char id[64];
	char case_id[64];
	char status[16];           /* pending | ready */
	char storage_type[16];
	char image_type[16];
	char eye_side[16];
	int64_t captured_at;       /* UTC seconds; -1 unknown */
	const char *description;   /* NULL or arena string */
	long order;
	long long file_size;       /* -1 unknown */
	char mime_type[32];
	long width, height;        /* -1 unknown */
	char sha256[65];
	char uploaded_by[64];
	/* The uploader's users row (sql/005_people.sql): name NULL when the
	 * table has no name column or no such row; role "" when no row. */
	const char *uploader_name; /* NULL or arena string */
	char uploader_role[16];
	/* What captured_at is: "client", "exif" or "upload". */
	char captured_source[8];
	int64_t created_at, updated_at;
	char storage_key[160];     /* cases/<case>/<image> */
	char display_mime[32];
	long long display_size;
	char display_sha256[65];
	char thumb_mime[32];
	long long thumb_size;
	char thumb_sha256[65];
	int64_t upload_expires_at; /* -1 if none */
	int deleted;
	char case_patient_id[64];  /* filled by db_image_get */
	/* DICOM originals (sql/006_dicom.sql); frames 0 and empty strings
	 * for every other image. */
	long frames;
	char modality[17];
	char manufacturer[65];
	char model_name[65];
	char study_uid[65], series_uid[65], sop_uid[65];
	char sop_class[65];        /* sql/007_dicom_class.sql; "" before it */
};

/* The live (not purged) image holding a DICOM SOP Instance UID. */
struct db_sop_holder {
	char id[64];               /* the image */
	char case_patient_id[64];  /* its case's patient (for acl_allowed) */
	bool deleted;              /* soft-deleted */
};
/* The image holding sop_uid into *h. 0, PI_ERR_NOT_FOUND, PI_ERR_DB. */
int db_sop_find(struct db *db, const char *sop_uid, struct db_sop_holder *h);
/* The hospital number of case_id's patient (sql/006_dicom.sql,
 * polaimg_case_hn) into hn (n bytes), empty when there is none. 0 or
 * PI_ERR_DB. */
int db_case_hn(struct db *db, const char *case_id, char *hn, size_t n);

/* A DICOMweb search (QIDO-RS) or the lookup of one instance (WADO-RS):
 * every member NULL (or -1) matches anything. */
struct db_dicom_query {
	const char *patient;   /* only cases of this patient (lower-case UUID) */
	const char *study_uid, *series_uid, *sop_uid, *modality;
	const char *hn;        /* the case's hospital number (PatientID) */
	int64_t from, to;      /* capturedAt in [from, to), UTC seconds */
	long limit;            /* rows at most */
};
struct db_dicom_row {
	struct image img;      /* with case_patient_id */
	const char *hn;        /* polaimg_case_hn(), NULL for none */
};
/* The ready, live DICOM images q matches, ordered by study, series,
 * order: *out (n rows) from arena a. 0, PI_ERR_DB, PI_ERR_NOMEM. */
int db_dicom_find(struct db *db, struct arena *a, const struct db_dicom_query *q,
    struct db_dicom_row **out, size_t *n);

/* Writes one audit row (image_events) now. */
int db_audit(struct db *db, const struct audit *ev);

/* Audit rows of reads, gathered (see auditbuf.h). rows = 1 (the default)
 * writes each at once, as db_audit; more gathers up to rows and writes them
 * in one statement. 0, PI_ERR_NOMEM or PI_ERR_INVALID (rows out of
 * range). */
int db_set_read_batch(struct db *db, size_t rows);
/* Records ev: at once, or gathered (written now if that fills the batch).
 * A batch whose connection broke is sent again on fresh connections for
 * up to audit_retry_ms, then kept in the spool (db_set_spool); rows that
 * cannot be spooled either are logged in full at error level, never
 * dropped silently. */
void db_audit_read(struct db *db, const struct audit *ev);
/* Writes the spooled rows (if any, and if the database answers), then the
 * gathered rows. 0 when every row is in image_events or in the spool
 * (also when there were none), PI_ERR_DB when rows were logged and
 * dropped. */
int db_audit_flush(struct db *db);
/* The spool of rows the database could not take (spool.h), in dir (empty
 * or NULL: none), and how long a broken connection is retried before rows
 * go there (ms). Notes a spool left with rows by an earlier worker. 0 or
 * PI_ERR_NOMEM. */
int db_set_spool(struct db *db, const char *dir, long retry_ms);
/* Whether rows wait in the spool (as last seen): db_audit_flush writes them
 * once the database answers, even with no row gathered. */
bool db_spool_waiting(const struct db *db);
/* How many rows are gathered; *oldest_ms (may be NULL) is the monotonic
 * time in ms at which the oldest was added. */
size_t db_audit_pending(const struct db *db, int64_t *oldest_ms);
/* CLOCK_MONOTONIC in milliseconds, the clock of db_audit_pending(). */
int64_t db_now_ms(void);

/* The image with its case's patient id. Deleted images are not found unless
 * include_deleted. */
int db_image_get(struct db *db, struct arena *a, const char *id,
    int include_deleted, struct image *out);

/* Inserts img (status as set), assigning order = 1 + the case's highest,
 * and writes ev in the same transaction. Fills img->order, timestamps and
 * the uploader's name (in a) and role. A DICOM image (sop_uid set) gets its
 * DICOM columns in the same transaction; PI_ERR_CONFLICT when a live row
 * already has its SOP Instance UID (nothing written). */
int db_image_insert(struct db *db, struct arena *a, struct image *img,
    const struct audit *ev);

/* pending → ready with the measured fields of img (its eyeSide too, when
 * set), its DICOM columns when img has a SOP Instance UID, and ev, in one
 * transaction. PI_ERR_CONFLICT if the image was not pending any more, or
 * when another image holds the SOP Instance UID (the row stays pending).
 * Fills what was recorded: captured_at and its source, the uploader. */
int db_image_mark_ready(struct db *db, struct arena *a, struct image *img,
    const struct audit *ev);

/* Ready, undeleted images of a case (eye_side NULL = all), ordered by order
 * then created_at. *out is an arena array of *n images; *total counts all. */
int db_images_list(struct db *db, struct arena *a, const char *case_id,
    const char *eye_side, long limit, long offset, struct image **out,
    size_t *n, long long *total);

/* Soft delete / undo, each with its audit row. PI_ERR_NOT_FOUND if there is
 * nothing to delete (or restore). */
int db_image_delete(struct db *db, const char *id, const char *by,
    const struct audit *ev);
int db_image_restore(struct db *db, const char *id, const struct audit *ev);

/* For `polaimg sweep`: calls cb for each image to purge — deleted longer
 * than retention_days ago (and not purged), or pending past its expiry. */
typedef int (*db_sweep_cb)(void *ud, const struct image *img);
int db_sweep_candidates(struct db *db, struct arena *a, long retention_days,
    db_sweep_cb cb, void *ud);
/* After the objects are gone: deleted → purged (the row stays, for the
 * record); pending → row removed. Writes ev. */
int db_image_purged(struct db *db, const struct image *img, const struct audit *ev);
/* Whether a live (not purged) row has this storage_key: 0 with *known, or
 * PI_ERR_DB when the database cannot answer (callers must then treat the
 * key as known: sweep and verify stop rather than call an object an
 * orphan). */
int db_storage_key_known(struct db *db, const char *storage_key, bool *known);

/* For `polaimg verify`: calls cb for every image whose objects must exist —
 * ready and not purged, deleted ones included — in id order, reading
 * DB_LIVE_PAGE rows at a time (memory stays flat however many images there
 * are). img->description is NULL. Returns 0, PI_ERR_DB, or the first
 * non-zero value cb returned (which stops the walk). */
#define DB_LIVE_PAGE 500
typedef int (*db_image_cb)(void *ud, const struct image *img);
int db_live_images(struct db *db, db_image_cb cb, void *ud);

#endif
