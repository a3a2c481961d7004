/* db.h — everything polaimg asks PostgreSQL, as typed functions.
 *
 * One connection per worker, kept open, re-opened when it is found broken;
 * every statement is prepared once per connection and run with parameters
 * (never built by concatenation). Strings in results live in the arena given.
 * Failures are PI_ERR_DB (unavailable or failed), PI_ERR_NOT_FOUND.
 */
#ifndef POLAIMG_DB_H
#define POLAIMG_DB_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

struct db;

/* A handle for conninfo (libpq keyword/value string or URI). Does not
 * connect yet. NULL on OOM. */
struct db *db_new(const char *conninfo);
void db_free(struct db *db);
/* sync = 1: the audit rows of reads are committed durably like every
 * other write (audit_read_commit = sync); 0 (the default): asynchronously. */
void db_set_sync_reads(struct db *db, int sync);
/* Connects now (or checks the connection): 0 or PI_ERR_DB. */
int db_ping(struct db *db);

/* Applies sql/NNN_*.sql from dir in order, each once, in a transaction
 * under an advisory lock. Prints what it did to stdout. 0 or -1. */
int db_migrate(struct db *db, const char *dir);

struct db_user {
	char role[16];       /* lower-case */
	int is_active;
};
int db_user_get(struct db *db, const char *user_id, struct db_user *out);

/* The case's patient id (text). PI_ERR_NOT_FOUND if there is no case. */
int db_case_patient(struct db *db, const char *case_id, char *patient_id,
    size_t n);

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
};

/* One audit row (image_events); any field may be NULL. */
struct audit {
	const char *user_id, *role, *action, *image_id, *case_id, *variant,
	    *outcome, *remote_addr, *request_id;
};
int db_audit(struct db *db, const struct audit *ev);

/* The image with its case's patient id. Deleted images are not found unless
 * include_deleted. */
int db_image_get(struct db *db, struct arena *a, const char *id,
    int include_deleted, struct image *out);

/* Inserts img (status as set), assigning order = 1 + the case's highest,
 * and writes ev in the same transaction. Fills img->order and timestamps. */
int db_image_insert(struct db *db, struct image *img, const struct audit *ev);

/* pending → ready with the measured fields of img, and ev, in one
 * transaction. PI_ERR_CONFLICT if the image was not pending any more. */
int db_image_mark_ready(struct db *db, struct image *img, const struct audit *ev);

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
/* 1 if a live (not purged) row has this storage_key, 0 if none. */
int db_storage_key_known(struct db *db, const char *storage_key);

/* For `polaimg verify`: calls cb for every image whose objects must exist —
 * ready and not purged, deleted ones included — in id order, reading
 * DB_LIVE_PAGE rows at a time (memory stays flat however many images there
 * are). img->description is NULL. Returns 0, PI_ERR_DB, or the first
 * non-zero value cb returned (which stops the walk). */
#define DB_LIVE_PAGE 500
typedef int (*db_image_cb)(void *ud, const struct image *img);
int db_live_images(struct db *db, db_image_cb cb, void *ud);

#endif
