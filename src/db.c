/* db.c — PostgreSQL through libpq.
 *
 * Design notes:
 * - One connection per worker process, opened lazily after fork (libpq
 *   connections must not cross fork) and kept. Before each statement the
 *   connection's state is checked; a broken one is reset once. A statement
 *   that fails on the wire is not retried: for a write we could not know
 *   whether it committed, and the client is better served by a 503 it can
 *   retry than by a duplicate. The exception is the audit rows written on
 *   their own (db_audit_flush): they are sent again on fresh connections
 *   for up to audit_retry_ms by a statement that skips rows already
 *   written (ST_AUDIT_ONCE), and then kept in the spool (spool.h), which
 *   is written to image_events, in order, once the database answers.
 * - Every statement is a row of stmts[] and is prepared on first use per
 *   connection (PQprepare), so SQL text is parsed and planned once, and
 *   parameters never meet the SQL text.
 * - The session runs in UTC with a statement timeout; timestamps come back
 *   as epoch seconds and are formatted in C.
 * - Writes that must agree (an image row and its audit row) share one
 *   transaction.
 * - Names (an uploader's, a case's patient and hospital number) come from
 *   columns only a PolaCare database has: they are read as
 *   to_jsonb(row) ->> 'column', NULL where the column is missing, in the
 *   statement that reads the rows anyway (sql/005_people.sql).
 * - Durability: every transaction (DB_BEGIN) commits with the server's
 *   configured synchronous_commit. The session default is off, which only
 *   the statements outside a transaction see: the audit rows of reads and
 *   refusals (proxy, list, view, download URL, denied, failed). Those are
 *   the one write of most requests, and waiting for their WAL flush was
 *   most of a proxy request (0.3-3 ms of about 1 ms on the bench machine;
 *   0.42x instead of 0.21x of nginx's static rate with off). PostgreSQL
 *   flushes them within wal_writer_delay (200 ms by default), in order;
 *   a crash of polaimg loses none, a crash of PostgreSQL or of its machine
 *   can lose the last fraction of a second of them, never part of one and
 *   never an image change or the audit row written with it.
 *   audit_read_commit = sync makes them durable too, at that cost.
 */
#include "db.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "common.h"
#include "log.h"
#include "spool.h"

enum stmt {
	ST_PING, ST_USER, ST_CASE, ST_AUDIT, ST_IMAGE_GET, ST_CASE_LOCK,
	ST_IMAGE_INSERT, ST_IMAGE_READY, ST_LIST, ST_COUNT, ST_DELETE,
	ST_RESTORE, ST_SWEEP, ST_PURGED_DELETED, ST_PURGED_PENDING,
	ST_KEY_KNOWN, ST_LIVE_PAGE, ST_AUDIT_BATCH, ST_USER_CASE,
	ST_USER_IMAGE, ST_AUDIT_ONCE, ST_IMAGE_DICOM, ST_SOP_FIND, ST_CASE_HN,
	ST_DICOM_FIND, ST__COUNT
};

/* The columns of an image, in the order row_to_image() reads them. */
#define IMG_COLS \
	"i.id::text, i.case_id::text, i.status, " \
	"coalesce(lower(i.storage_type::text), 'local'), " \
	"coalesce(lower(i.image_type::text), 'slit_lamp'), " \
	"coalesce(lower(i.eye_side::text), 'unknown'), " \
	"extract(epoch from coalesce(i.captured_at, i.created_at))::bigint, " \
	"i.description, coalesce(i.\"order\", 0), i.file_size, i.mime_type, " \
	"i.width, i.height, i.sha256, i.uploaded_by, " \
	"extract(epoch from i.created_at)::bigint, " \
	"extract(epoch from coalesce(i.updated_at, i.created_at))::bigint, " \
	"i.storage_key, i.display_mime, i.display_size, i.display_sha256, " \
	"i.thumb_mime, i.thumb_size, i.thumb_sha256, " \
	"extract(epoch from i.upload_expires_at)::bigint, " \
	"(i.deleted_at IS NOT NULL), " \
	"CASE WHEN i.captured_at IS NULL THEN 'upload' " \
	"ELSE coalesce(i.captured_source, 'client') END, " \
	"up.name, up.role, " \
	"i.frames, i.modality, i.manufacturer, i.manufacturer_model_name, " \
	"i.study_instance_uid, i.series_instance_uid, i.sop_instance_uid, " \
	"i.sop_class_uid"
#define IMG_NCOLS 37
/* The uploader's name and role, up.name and up.role of IMG_COLS
 * (sql/005_people.sql): every statement that selects IMG_COLS joins it. A
 * lookup on users' primary key; OFFSET 0 keeps the subquery whole, so
 * that PostgreSQL (14 and later) memoizes it per uploader and computes
 * to_jsonb() of each users row once, not once per image (100 images of 3
 * uploaders, 100,000 users: 0.12 ms for the join, against 0.9 ms for
 * to_jsonb() per row). */
#define IMG_UPLOADER \
	" LEFT JOIN LATERAL (SELECT to_jsonb(u) ->> 'name' AS name, " \
	"lower(u.role::text) AS role FROM users u " \
	"WHERE u.id = polaimg_user_ref(i.uploaded_by) OFFSET 0) up ON true "

/* The name and role of the uploader of the row t, for a RETURNING. */
#define UPLOADER_OF(t) \
	"(SELECT to_jsonb(up) ->> 'name' FROM users up " \
	"WHERE up.id = polaimg_user_ref(" t ".uploaded_by)), " \
	"(SELECT lower(up.role::text) FROM users up " \
	"WHERE up.id = polaimg_user_ref(" t ".uploaded_by))"

/* The patient's name and hospital number of case c (its patient's users
 * row p): the case's own columns, else (missing or empty) the patient's;
 * NULL where neither table has them (sql/005_people.sql). */
#define CASE_PEOPLE \
	"coalesce(nullif(to_jsonb(c) ->> 'patient_name', ''), " \
	"to_jsonb(p) ->> 'name'), " \
	"coalesce(nullif(to_jsonb(c) ->> 'hn', ''), to_jsonb(p) ->> 'hn') "

static const struct {
	const char *sql;
	int nparams;
	int read_only;     /* safe to send again after a lost connection */
} stmts[ST__COUNT] = {
	[ST_PING] = { "SELECT 1", 0, 1 },
	[ST_USER] = { "SELECT lower(role::text), coalesce(is_active, false) "
	    "FROM users WHERE id = $1", 1, 1 },
	[ST_CASE] = { "SELECT c.patient_id::text, " CASE_PEOPLE
	    "FROM patient_cases c LEFT JOIN users p ON p.id = c.patient_id "
	    "WHERE c.id = $1", 1, 1 },
	[ST_AUDIT] = { "INSERT INTO image_events (user_id, role, action, "
	    "image_id, case_id, variant, outcome, remote_addr, request_id) "
	    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", 9 },
	[ST_IMAGE_GET] = { "SELECT " IMG_COLS ", c.patient_id::text "
	    "FROM case_images i JOIN patient_cases c ON c.id = i.case_id "
	    IMG_UPLOADER "WHERE i.id = $1 AND i.purged_at IS NULL "
	    "AND ($2::boolean OR i.deleted_at IS NULL)", 2, 1 },
	/* An advisory lock, not FOR UPDATE: polaimg needs no UPDATE right on a
	 * table it does not own. */
	[ST_CASE_LOCK] = { "SELECT pg_advisory_xact_lock(7244012, hashtext($1::text))", 1 },
	[ST_IMAGE_INSERT] = { "INSERT INTO case_images AS i (id, case_id, status, "
	    "storage_type, image_type, eye_side, captured_at, description, "
	    "\"order\", file_size, mime_type, width, height, sha256, uploaded_by, "
	    "storage_key, display_mime, display_size, display_sha256, thumb_mime, "
	    "thumb_size, thumb_sha256, upload_expires_at, image_url, "
	    "thumbnail_url, captured_source, created_at, updated_at) "
	    "VALUES ($1, $2, $3, "
	    "polaimg_storage_type($4), polaimg_image_type($5), "
	    "polaimg_eye_side($6), to_timestamp($7::bigint), $8, "
	    "(SELECT coalesce(max(\"order\"), 0) + 1 FROM case_images "
	    "WHERE case_id = $2), $9, $10, $11, $12, $13, $14, $15, $16, $17, "
	    "$18, $19, $20, $21, to_timestamp($22::bigint), "
	    "$23, $24, $25, now(), now()) "
	    "RETURNING coalesce(\"order\", 0), "
	    "extract(epoch from created_at)::bigint, " UPLOADER_OF("i"), 25 },
	[ST_IMAGE_READY] = { "UPDATE case_images SET status = 'ready', "
	    "captured_at = coalesce(captured_at, to_timestamp($2::bigint)), "
	    "captured_source = CASE WHEN captured_at IS NULL THEN $14 "
	    "ELSE captured_source END, "
	    "file_size = $3, mime_type = $4, width = $5, height = $6, "
	    "sha256 = $7, display_mime = $8, display_size = $9, "
	    "display_sha256 = $10, thumb_mime = $11, thumb_size = $12, "
	    "thumb_sha256 = $13, upload_expires_at = NULL, updated_at = now(), "
	    "eye_side = coalesce(polaimg_eye_side($15), eye_side) "
	    "WHERE id = $1 AND status = 'pending' AND deleted_at IS NULL "
	    "RETURNING extract(epoch from captured_at)::bigint, "
	    "extract(epoch from updated_at)::bigint, "
	    "coalesce(captured_source, 'client'), " UPLOADER_OF("case_images"), 15 },
	[ST_LIST] = { "SELECT " IMG_COLS ", count(*) OVER () "
	    "FROM case_images i" IMG_UPLOADER "WHERE i.case_id = $1 AND i.status = 'ready' "
	    "AND i.deleted_at IS NULL AND i.purged_at IS NULL "
	    "AND ($2::text IS NULL OR lower(i.eye_side::text) = $2) "
	    "ORDER BY i.\"order\", i.created_at, i.id LIMIT $3 OFFSET $4", 4, 1 },
	[ST_COUNT] = { "SELECT count(*) FROM case_images i WHERE i.case_id = $1 "
	    "AND i.status = 'ready' AND i.deleted_at IS NULL "
	    "AND i.purged_at IS NULL "
	    "AND ($2::text IS NULL OR lower(i.eye_side::text) = $2)", 2, 1 },
	[ST_DELETE] = { "UPDATE case_images SET deleted_at = now(), "
	    "deleted_by = $2, updated_at = now() WHERE id = $1 "
	    "AND deleted_at IS NULL AND purged_at IS NULL", 2 },
	[ST_RESTORE] = { "UPDATE case_images SET deleted_at = NULL, "
	    "deleted_by = NULL, updated_at = now() WHERE id = $1 "
	    "AND deleted_at IS NOT NULL AND purged_at IS NULL", 1 },
	[ST_SWEEP] = { "SELECT " IMG_COLS ", '' FROM case_images i "
	    IMG_UPLOADER "WHERE i.purged_at IS NULL AND ("
	    "(i.deleted_at IS NOT NULL AND "
	    "i.deleted_at <= now() - make_interval(days => $1::int)) OR "
	    "(i.status = 'pending' AND i.upload_expires_at < now())) "
	    "ORDER BY i.created_at LIMIT 1000", 1, 1 },
	[ST_PURGED_DELETED] = { "UPDATE case_images SET purged_at = now() "
	    "WHERE id = $1 AND deleted_at IS NOT NULL AND purged_at IS NULL", 1 },
	[ST_PURGED_PENDING] = { "DELETE FROM case_images WHERE id = $1 "
	    "AND status = 'pending'", 1 },
	[ST_KEY_KNOWN] = { "SELECT 1 FROM case_images WHERE storage_key = $1 "
	    "AND purged_at IS NULL LIMIT 1", 1, 1 },
	/* Keyset pages of the images whose objects must exist (`polaimg
	 * verify`): ready and not purged, deleted ones included. */
	[ST_LIVE_PAGE] = { "SELECT " IMG_COLS ", i.id::text FROM case_images i "
	    IMG_UPLOADER "WHERE i.status = 'ready' AND i.purged_at IS NULL "
	    "AND i.id::text COLLATE \"C\" > $1 "
	    "ORDER BY i.id::text COLLATE \"C\" LIMIT $2", 2, 1 },
	/* Gathered audit rows of reads (auditbuf.h): one array a column. */
	[ST_AUDIT_BATCH] = { "INSERT INTO image_events (created_at, user_id, "
	    "role, action, image_id, case_id, variant, outcome, remote_addr, "
	    "request_id) SELECT * FROM unnest($1::timestamptz[], $2::text[], "
	    "$3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
	    "$8::text[], $9::text[], $10::text[])", 10 },
	/* The same rows, each unless image_events has it already: what is sent
	 * again after a lost connection, and what the spool replays, so that
	 * a batch that did commit before the connection broke (or a replay
	 * that committed just before a crash) is not written twice. A row is
	 * known by its request id (an index lookup, sql/004), microsecond
	 * created_at, action, image and user; a row without a request id (none
	 * is, in use) is always written. */
	[ST_AUDIT_ONCE] = { "INSERT INTO image_events (created_at, user_id, "
	    "role, action, image_id, case_id, variant, outcome, remote_addr, "
	    "request_id) SELECT * FROM unnest($1::timestamptz[], $2::text[], "
	    "$3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
	    "$8::text[], $9::text[], $10::text[]) AS u(created_at, user_id, "
	    "role, action, image_id, case_id, variant, outcome, remote_addr, "
	    "request_id) WHERE NOT EXISTS (SELECT 1 FROM image_events e "
	    "WHERE e.request_id = u.request_id "
	    "AND e.created_at = u.created_at AND e.action = u.action "
	    "AND e.image_id IS NOT DISTINCT FROM u.image_id "
	    "AND e.user_id IS NOT DISTINCT FROM u.user_id)", 10 },
	/* The reads of an authenticated request in one statement: the user
	 * with the case (list) or with the image (view, proxy, download URL,
	 * delete). The one-row FROM keeps a row when either is missing. */
	[ST_USER_CASE] = { "SELECT lower(u.role::text), "
	    "coalesce(u.is_active, false), u.id IS NOT NULL, "
	    "c.patient_id::text, c.id IS NOT NULL, v.version, " CASE_PEOPLE
	    "FROM (SELECT 1) AS one "
	    "LEFT JOIN users u ON u.id = $1 "
	    "LEFT JOIN patient_cases c ON c.id = $2 "
	    "LEFT JOIN users p ON p.id = c.patient_id "
	    "LEFT JOIN polaimg_case_versions v ON v.case_id = c.id::text", 2, 1 },
	[ST_USER_IMAGE] = { "SELECT lower(u.role::text), "
	    "coalesce(u.is_active, false), u.id IS NOT NULL, i.id IS NOT NULL, "
	    IMG_COLS ", c.patient_id::text "
	    "FROM (SELECT 1) AS one "
	    "LEFT JOIN users u ON u.id = $1 "
	    "LEFT JOIN (case_images i JOIN patient_cases c ON c.id = i.case_id) "
	    "ON i.id = $2 AND i.purged_at IS NULL AND i.deleted_at IS NULL"
	    IMG_UPLOADER, 2, 1 },
	/* DICOM originals (sql/006_dicom.sql, sql/007_dicom_class.sql). */
	[ST_IMAGE_DICOM] = { "UPDATE case_images SET frames = $2, "
	    "modality = $3, manufacturer = $4, manufacturer_model_name = $5, "
	    "study_instance_uid = $6, series_instance_uid = $7, "
	    "sop_instance_uid = $8, sop_class_uid = $9 WHERE id = $1", 9 },
	[ST_SOP_FIND] = { "SELECT i.id::text, i.deleted_at IS NOT NULL, "
	    "c.patient_id::text "
	    "FROM case_images i JOIN patient_cases c ON c.id = i.case_id "
	    "WHERE i.sop_instance_uid = $1 "
	    "AND i.purged_at IS NULL ORDER BY i.created_at LIMIT 1", 1, 1 },
	[ST_CASE_HN] = { "SELECT polaimg_case_hn($1)", 1, 1 },
	/* DICOMweb searches and retrievals (db_dicom_find): ready, live
	 * DICOM images, with their case's patient and hospital number. */
	[ST_DICOM_FIND] = { "SELECT " IMG_COLS ", c.patient_id::text, "
	    "polaimg_case_hn(i.case_id::text) "
	    "FROM case_images i JOIN patient_cases c ON c.id = i.case_id "
	    IMG_UPLOADER "WHERE i.status = 'ready' AND i.deleted_at IS NULL "
	    "AND i.purged_at IS NULL AND i.sop_instance_uid IS NOT NULL "
	    "AND ($1::text IS NULL OR lower(c.patient_id::text) = $1) "
	    "AND ($2::text IS NULL OR i.study_instance_uid = $2) "
	    "AND ($3::text IS NULL OR i.series_instance_uid = $3) "
	    "AND ($4::text IS NULL OR i.sop_instance_uid = $4) "
	    "AND ($5::text IS NULL OR i.modality = $5) "
	    "AND ($6::text IS NULL OR polaimg_case_hn(i.case_id::text) = $6) "
	    "AND ($7::bigint IS NULL OR coalesce(i.captured_at, i.created_at) "
	    ">= to_timestamp($7::bigint)) "
	    "AND ($8::bigint IS NULL OR coalesce(i.captured_at, i.created_at) "
	    "< to_timestamp($8::bigint)) "
	    "ORDER BY i.study_instance_uid, i.series_instance_uid, "
	    "i.\"order\", i.created_at, i.id LIMIT $9", 9, 1 },
};

struct db {
	char *conninfo;
	PGconn *conn;
	unsigned char prepared[ST__COUNT];
	int sync_reads;
	struct auditbuf reads;     /* cap 1 (the default): written at once */
	int listen;                /* LISTEN polaimg_changes on every connection */
	int notify_ok;             /* the connection listens, the triggers exist */
	unsigned long epoch;       /* + 1 per connection and per notification */
	uint64_t *changes;         /* shared by the workers of one master, or NULL */
	int server_spoke;          /* a notice or error arrived (quiet_notice) */
	char *spool_path;          /* <audit_spool_dir>/audit.spool, or NULL */
	long retry_ms;             /* audit_retry_ms */
	int spooled;               /* the spool held rows when last looked at */
	int64_t replay_after_ms;   /* no replay before (after a failed one) */
};

struct db *
db_new(const char *conninfo)
{
	struct db *db = calloc(1, sizeof(*db));

	if (db == NULL)
		return NULL;
	db->conninfo = strdup(conninfo);
	if (db->conninfo == NULL || auditbuf_init(&db->reads, 1) != 0) {
		free(db->conninfo);
		free(db);
		return NULL;
	}
	return db;
}

void
db_set_sync_reads(struct db *db, int sync)
{
	db->sync_reads = sync;
}

void
db_free(struct db *db)
{
	if (db == NULL)
		return;
	(void)db_audit_flush(db);
	auditbuf_free(&db->reads);
	free(db->spool_path);
	if (db->conn != NULL)
		PQfinish(db->conn);
	explicit_bzero(db->conninfo, strlen(db->conninfo));
	free(db->conninfo);
	free(db);
}

/* libpq would print notices (e.g. "relation exists, skipping") to stderr.
 * Between statements a message from the server is most likely the FATAL
 * it sends before it closes the connection (a shutdown, a terminated
 * backend), which libpq hands to this function: db_copies_valid() then
 * trusts no copy. */
static void
quiet_notice(void *arg, const char *message)
{
	struct db *db = arg;

	(void)message;
	db->server_spoke = 1;
}

static int
session_setup(struct db *db)
{
	PGresult *res = PQexec(db->conn, db->sync_reads ?
	    "SET TIME ZONE 'UTC'; SET statement_timeout = '30s'; "
	    "SET application_name = 'polaimg'" :
	    "SET TIME ZONE 'UTC'; SET statement_timeout = '30s'; "
	    "SET application_name = 'polaimg'; SET synchronous_commit = off");
	int ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;

	PQclear(res);
	return ok ? 0 : -1;
}

/* LISTEN for the change notifications of sql/003, and check that the
 * three triggers that send them and the case-version trigger of sql/002
 * exist and are enabled (a view in place of users or patient_cases has
 * none): 0 if copies may be kept, -1 if not. Writes that skip triggers
 * (session_replication_role = replica, as restores and logical
 * replication use) cannot be seen: auth_cache_ttl bounds them. */
static int
listen_setup(struct db *db)
{
	static int warned;
	PGresult *res = PQexec(db->conn, "LISTEN polaimg_changes; "
	    "SELECT count(*) FROM pg_trigger WHERE tgenabled <> 'D' AND ("
	    "(tgname = 'polaimg_notify' AND tgrelid IN "
	    "(to_regclass('users'), to_regclass('patient_cases'), "
	    "to_regclass('case_images'))) OR "
	    "(tgname = 'polaimg_case_changed' AND "
	    "tgrelid = to_regclass('case_images')))");
	int ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "4") == 0;

	PQclear(res);
	if (!ok && !warned) {
		warned = 1;
		log_warn("database: no change notifications (sql/002 or 003 not "
		    "applied, a trigger disabled, or users or patient_cases is a "
		    "view): every request reads its rows");
	}
	return ok ? 0 : -1;
}

/* Makes sure there is a working connection. */
static int
db_connect(struct db *db)
{
	static const char *const keys[] = { "connect_timeout", "dbname", NULL };
	const char *vals[] = { "5", db->conninfo, NULL };

	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		return 0;
	if (db->conn != NULL) {
		PQreset(db->conn);
	} else {
		db->conn = PQconnectdbParams(keys, vals, 1);
		if (db->conn == NULL)
			return PI_ERR_NOMEM;
		PQsetNoticeProcessor(db->conn, quiet_notice, db);
	}
	memset(db->prepared, 0, sizeof(db->prepared));
	if (PQstatus(db->conn) != CONNECTION_OK) {
		/* The message may name hosts, never passwords. */
		char msg[256];
		const char *e = PQerrorMessage(db->conn);

		(void)snprintf(msg, sizeof(msg), "%s", e != NULL ? e : "");
		msg[strcspn(msg, "\n")] = '\0';
		log_warn("database: cannot connect: %s", msg);
		return PI_ERR_DB;
	}
	if (session_setup(db) != 0) {
		log_warn("database: session setup failed: %s",
		    PQerrorMessage(db->conn));
		PQfinish(db->conn);
		db->conn = NULL;
		return PI_ERR_DB;
	}
	db->epoch++;
	db->notify_ok = db->listen && listen_setup(db) == 0;
	return 0;
}

static void
log_pq_error(const char *what, PGresult *res, PGconn *conn)
{
	const char *m = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn);
	char msg[512];

	(void)snprintf(msg, sizeof(msg), "%s", m != NULL ? m : "");
	msg[strcspn(msg, "\n")] = '\0';
	log_error("database: %s: %s", what, msg);
}

/* Runs statement s with params. Returns the result (caller PQclear()s) when
 * its status is want, else NULL (logged). */
static PGresult *
db_run(struct db *db, enum stmt s, const char *const *params,
    ExecStatusType want)
{
	char name[16];
	PGresult *res;
	int attempt = 0;

	(void)snprintf(name, sizeof(name), "pi%d", (int)s);
again:
	if (db_connect(db) != 0)
		return NULL;
	/* Outside a transaction, a connection the server dropped (a restart,
	 * a failover) is found only by the next statement. A prepare, or a
	 * statement that only reads, is safe to send again on a new
	 * connection; a write is not (it may have committed). */
	if (!db->prepared[s]) {
		res = PQprepare(db->conn, name, stmts[s].sql, stmts[s].nparams, NULL);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			log_pq_error("prepare", res, db->conn);
			PQclear(res);
			if (attempt++ == 0 && PQstatus(db->conn) == CONNECTION_BAD)
				goto again;
			return NULL;
		}
		PQclear(res);
		db->prepared[s] = 1;
	}
	res = PQexecPrepared(db->conn, name, stmts[s].nparams, params, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != want) {
		log_pq_error(name, res, db->conn);
		PQclear(res);
		if (attempt++ == 0 && stmts[s].read_only &&
		    PQstatus(db->conn) == CONNECTION_BAD)
			goto again;
		return NULL;
	}
	return res;
}

static int
db_simple(struct db *db, const char *sql)
{
	PGresult *res = PQexec(db->conn, sql);
	int ok = res != NULL && (PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK);

	if (!ok)
		log_pq_error(sql, res, db->conn);
	PQclear(res);
	return ok ? 0 : PI_ERR_DB;
}

/* Opens a transaction that commits as durably as the server is configured
 * to (DEFAULT: the value from before the session's own SET). */
#define DB_BEGIN "BEGIN; SET LOCAL synchronous_commit TO DEFAULT"

static int
db_begin(struct db *db)
{
	int rc = db_connect(db);

	if (rc == 0 && (rc = db_simple(db, DB_BEGIN)) != 0 &&
	    PQstatus(db->conn) == CONNECTION_BAD) {
		/* Nothing was done yet: a dropped connection may be replaced. */
		rc = db_connect(db);
		if (rc == 0)
			rc = db_simple(db, DB_BEGIN);
	}
	return rc;
}

static void
db_rollback(struct db *db)
{
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		(void)db_simple(db, "ROLLBACK");
}

void
db_set_listen(struct db *db, int on)
{
	db->listen = on != 0;
	if (!db->listen)
		db->notify_ok = 0;
	else if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
		db->notify_ok = listen_setup(db) == 0;
}

void
db_set_change_counter(struct db *db, uint64_t *changes)
{
	db->changes = changes;
}

bool
db_copies_valid(struct db *db, unsigned long *epoch)
{
	PGnotify *n;

	if (!db->notify_ok || db->changes == NULL || db->conn == NULL ||
	    PQstatus(db->conn) != CONNECTION_OK)
		return false;
	db->server_spoke = 0;
	if (PQconsumeInput(db->conn) == 0 || db->server_spoke ||
	    PQstatus(db->conn) != CONNECTION_OK) {
		/* The server went away, or is about to: nothing kept may be
		 * trusted, and the next statement finds out. */
		db->epoch++;
		return false;
	}
	while ((n = PQnotifies(db->conn)) != NULL) {
		PQfreemem(n);
		db->epoch++;
	}
	*epoch = db->epoch + (unsigned long)__atomic_load_n(db->changes,
	    __ATOMIC_SEQ_CST);
	return true;
}

int
db_ping(struct db *db)
{
	PGresult *res = db_run(db, ST_PING, NULL, PGRES_TUPLES_OK);

	if (res == NULL)
		return PI_ERR_DB;
	PQclear(res);
	return 0;
}

static void
copy_field(char *dst, size_t n, PGresult *res, int row, int col)
{
	const char *v = PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col);

	(void)snprintf(dst, n, "%s", v);
}

/* The value as an arena string, or NULL (SQL NULL, no arena, no memory). */
static const char *
str_field(PGresult *res, int row, int col, struct arena *a)
{
	if (a == NULL || PQgetisnull(res, row, col))
		return NULL;
	return arena_strdup(a, PQgetvalue(res, row, col));
}

static long long
int_field(PGresult *res, int row, int col, long long dflt)
{
	if (PQgetisnull(res, row, col))
		return dflt;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

int
db_user_get(struct db *db, const char *user_id, struct db_user *out)
{
	const char *params[1] = { user_id };
	PGresult *res = db_run(db, ST_USER, params, PGRES_TUPLES_OK);

	if (res == NULL)
		return PI_ERR_DB;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return PI_ERR_NOT_FOUND;
	}
	copy_field(out->role, sizeof(out->role), res, 0, 0);
	out->is_active = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	out->found = 1;
	PQclear(res);
	return 0;
}

int
db_case_get(struct db *db, struct arena *a, const char *case_id,
    struct db_case *kase)
{
	const char *params[1] = { case_id };
	PGresult *res = db_run(db, ST_CASE, params, PGRES_TUPLES_OK);

	if (res == NULL)
		return PI_ERR_DB;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return PI_ERR_NOT_FOUND;
	}
	memset(kase, 0, sizeof(*kase));
	kase->found = 1;
	kase->version = -1;
	copy_field(kase->patient_id, sizeof(kase->patient_id), res, 0, 0);
	kase->patient_name = str_field(res, 0, 1, a);
	kase->hn = str_field(res, 0, 2, a);
	PQclear(res);
	return 0;
}

int
db_audit(struct db *db, const struct audit *ev)
{
	const char *params[9] = { ev->user_id, ev->role, ev->action, ev->image_id,
		ev->case_id, ev->variant, ev->outcome, ev->remote_addr,
		ev->request_id };
	PGresult *res = db_run(db, ST_AUDIT, params, PGRES_COMMAND_OK);

	if (res == NULL)
		return PI_ERR_DB;
	PQclear(res);
	return 0;
}

/* Reads the IMG_COLS that start at column base. */
int64_t
db_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
db_set_read_batch(struct db *db, size_t rows)
{
	(void)db_audit_flush(db);
	auditbuf_free(&db->reads);
	return auditbuf_init(&db->reads, rows > 1 ? rows : 1);
}

size_t
db_audit_pending(const struct db *db, int64_t *oldest_ms)
{
	if (oldest_ms != NULL)
		*oldest_ms = db->reads.oldest_ms;
	return db->reads.n;
}

int
db_set_spool(struct db *db, const char *dir, long retry_ms)
{
	size_t n;
	bool r;

	free(db->spool_path);
	db->spool_path = NULL;
	db->retry_ms = retry_ms > 0 ? retry_ms : 0;
	db->spooled = 0;
	if (dir == NULL || dir[0] == '\0')
		return 0;
	n = strlen(dir) + sizeof("/" SPOOL_FILE);
	db->spool_path = malloc(n);
	if (db->spool_path == NULL)
		return PI_ERR_NOMEM;
	(void)snprintf(db->spool_path, n, "%s/%s", dir, SPOOL_FILE);
	if (access(dir, W_OK | X_OK) != 0)
		log_warn("audit: spool directory %s: %s (rows the database "
		    "cannot take will only be logged)", dir, strerror(errno));
	/* Left by an earlier worker: written once the database answers. */
	db->spooled = spool_nonempty(db->spool_path, &r) == 0 && r;
	return 0;
}

bool
db_spool_waiting(const struct db *db)
{
	return db->spooled != 0;
}

static int
conn_broken(const struct db *db)
{
	return db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK;
}

/* Writes the rows of b with statement s (ST_AUDIT_BATCH or ST_AUDIT_ONCE):
 * alone, or in a transaction committed durably when durable. */
static int
audit_insert(struct db *db, enum stmt s, const struct auditbuf *b,
    int durable)
{
	char *lit[AUDIT_NCOLS];
	PGresult *res = NULL;
	int rc = PI_ERR_DB;

	if (auditbuf_literals(b, lit) != 0)
		return PI_ERR_NOMEM;
	if (durable && db_begin(db) != 0)
		goto out;
	res = db_run(db, s, (const char *const *)lit, PGRES_COMMAND_OK);
	if (res != NULL)
		rc = durable ? db_simple(db, "COMMIT") : 0;
	if (durable && rc != 0)
		db_rollback(db);
out:
	PQclear(res);
	for (int c = 0; c < AUDIT_NCOLS; c++)
		free(lit[c]);
	return rc;
}

/* The rows of a batch whose connection broke, sent again (ST_AUDIT_ONCE)
 * on a fresh connection: once at once, then every 100 ms until retry_ms
 * have passed (each attempt can take up to libpq's connect_timeout, 5 s,
 * when the server's host does not answer at all). Stops early when the
 * connection works and the server refuses the rows: reconnecting cannot
 * help then. */
static int
audit_retry(struct db *db, const struct auditbuf *b)
{
	int64_t until = db_now_ms() + db->retry_ms, left;
	int rc;

	for (;;) {
		rc = db_connect(db);
		if (rc == 0) {
			rc = audit_insert(db, ST_AUDIT_ONCE, b, 0);
			if (rc == 0 || !conn_broken(db))
				return rc;
		}
		left = until - db_now_ms();
		if (left <= 0)
			return PI_ERR_DB;
		{
			struct timespec ts = { 0, (left < 100 ? left : 100) * 1000000L };

			(void)nanosleep(&ts, NULL);
		}
	}
}

/* Rows that could not be written go to the error log in full: the trail
 * is kept there instead, and an operator sees what is missing. */
static void
log_unwritten(const struct auditbuf *b)
{
	static const char *const names[AUDIT_NFIELDS] = { "user", "role",
		"action", "image", "case", "variant", "outcome", "addr", "rid" };

	for (size_t i = 0; i < b->n; i++) {
		char line[900];
		size_t len = 0;

		for (int f = 0; f < AUDIT_NFIELDS && len < sizeof(line); f++) {
			const char *v = auditbuf_field(b, i, f);
			int k = snprintf(line + len, sizeof(line) - len, " %s=%s",
			    names[f], v != NULL ? v : "-");

			if (k < 0)
				break;
			len += (size_t)k;
		}
		log_error("audit: not recorded:%s", line);
	}
}

/* Keeps the rows of b in the spool (fsync'd), or, without one or when it
 * cannot be written, in the error log. 0 when spooled. */
static int
spool_rows(struct db *db, const struct auditbuf *b)
{
	if (db->spool_path != NULL && spool_append(db->spool_path, b) == 0) {
		if (!db->spooled)
			log_warn("audit: database unavailable: %zu row(s) kept "
			    "in %s until it is back", b->n, db->spool_path);
		db->spooled = 1;
		return 0;
	}
	if (db->spool_path != NULL)
		log_error("audit: cannot append to %s: %s", db->spool_path,
		    strerror(errno));
	log_unwritten(b);
	return PI_ERR_DB;
}

#define REPLAY_ROWS 256
#define REPLAY_PAUSE_MS 1000

/* Writes the spool's rows to image_events, in the order they were made
 * (created_at, then the order they were appended), REPLAY_ROWS a
 * transaction committed durably, and empties the file only after the last
 * COMMIT. A crash in between leaves the file: the next replay skips the
 * rows already written (ST_AUDIT_ONCE). The file's lock keeps two workers
 * from replaying it at once and appends out while it is read. 0 when the
 * spool is empty (now or already); PI_ERR_DB when rows wait in it still
 * (the database is away, another worker holds it, or a replay failed in
 * the last REPLAY_PAUSE_MS). */
static int
spool_replay(struct db *db)
{
	struct spool_entry *idx = NULL;
	struct auditbuf rb = { NULL, 0, 0, 0 };
	unsigned char *map = NULL;
	size_t len = 0, n = 0, damaged = 0, done = 0;
	int fd = -1, r, rc = PI_ERR_DB;
	bool held;

	if (spool_nonempty(db->spool_path, &held) != 0 || !held) {
		/* Missing, empty, or not even stat()able (then it cannot be
		 * appended to either, and rows go to the log). */
		db->spooled = 0;
		return 0;
	}
	db->spooled = 1;
	if (db_now_ms() < db->replay_after_ms)
		return PI_ERR_DB;
	/* The database first: the file is not read for nothing. */
	if (db_connect(db) != 0) {
		db->replay_after_ms = db_now_ms() + REPLAY_PAUSE_MS;
		return PI_ERR_DB;
	}
	r = spool_take(db->spool_path, &fd, &map, &len);
	if (r == 0 && fd < 0) {
		/* Emptied meanwhile, or another worker holds it. */
		db->spooled = spool_nonempty(db->spool_path, &held) == 0 && held;
		return db->spooled ? PI_ERR_DB : 0;
	}
	if (r < 0) {
		log_error("audit: cannot read %s: %s", db->spool_path,
		    strerror(errno));
		goto out;
	}
	if (spool_index(map, len, &idx, &n, &damaged) != 0 ||
	    auditbuf_init(&rb, REPLAY_ROWS) != 0)
		goto out;
	while (done < n) {
		size_t k = 0;

		auditbuf_clear(&rb);
		for (; k < REPLAY_ROWS && done + k < n; k++) {
			struct spool_row row;
			size_t used;

			if (spool_decode(map + idx[done + k].off, idx[done + k].len,
			    &used, &row) != SPOOL_OK ||
			    auditbuf_add(&rb, &row.ev, row.unix_us, 0) != 0)
				goto out;
		}
		if (audit_insert(db, ST_AUDIT_ONCE, &rb, 1) != 0)
			goto out;
		done += k;
	}
	if (damaged > 0)
		log_error("audit: %s: %zu damaged record(s) skipped (a write "
		    "torn by a crash, or the file altered)", db->spool_path,
		    damaged);
	if (spool_release(fd, map, len, 1) != 0) {
		/* Written, but still in the file: the next replay skips them. */
		log_error("audit: cannot empty %s: %s", db->spool_path,
		    strerror(errno));
		fd = -1;
		map = NULL;
		goto out;
	}
	fd = -1;
	map = NULL;
	log_info("audit: %zu spooled row(s) written to image_events", n);
	db->spooled = 0;
	rc = 0;
out:
	if (rc != 0) {
		if (done > 0)
			log_warn("audit: %s: %zu of %zu spooled row(s) written; "
			    "the rest waits", db->spool_path, done, n);
		db->replay_after_ms = db_now_ms() + REPLAY_PAUSE_MS;
	}
	(void)spool_release(fd, map, len, 0);
	auditbuf_free(&rb);
	free(idx);
	return rc;
}

int
db_audit_flush(struct db *db)
{
	int rc;

	if (db->reads.n == 0 && !db->spooled)
		return 0;
	/* Rows in the spool are older: they go first, and while they wait,
	 * new rows go behind them. */
	if (db->spool_path != NULL && spool_replay(db) != 0) {
		rc = db->reads.n > 0 ? spool_rows(db, &db->reads) : 0;
		auditbuf_clear(&db->reads);
		return rc;
	}
	if (db->reads.n == 0)
		return 0;
	rc = audit_insert(db, ST_AUDIT_BATCH, &db->reads, 0);
	if (rc != 0 && conn_broken(db))
		rc = audit_retry(db, &db->reads);
	if (rc != 0)
		rc = spool_rows(db, &db->reads);
	auditbuf_clear(&db->reads);
	return rc;
}

void
db_audit_read(struct db *db, const struct audit *ev)
{
	struct timespec now;

	(void)clock_gettime(CLOCK_REALTIME, &now);
	/* Never full here: a full batch is written, and emptied, at once. */
	(void)auditbuf_add(&db->reads, ev, (int64_t)now.tv_sec * 1000000 +
	    now.tv_nsec / 1000, db_now_ms());
	if (db->reads.n >= db->reads.cap)
		(void)db_audit_flush(db);
}

/* Runs one of the ST_USER_* statements: the one row, with the user's
 * columns (0-2) read into u; NULL on failure. */
static PGresult *
user_row(struct db *db, enum stmt s, const char *user_id, const char *id,
    struct db_user *u)
{
	const char *params[2] = { user_id, id };
	PGresult *res = db_run(db, s, params, PGRES_TUPLES_OK);

	if (res == NULL)
		return NULL;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return NULL;
	}
	memset(u, 0, sizeof(*u));
	u->found = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	if (u->found) {
		copy_field(u->role, sizeof(u->role), res, 0, 0);
		u->is_active = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	}
	return res;
}

int
db_auth_case(struct db *db, struct arena *a, const char *user_id,
    const char *case_id, struct db_user *u, struct db_case *kase)
{
	PGresult *res = user_row(db, ST_USER_CASE, user_id, case_id, u);

	if (res == NULL)
		return PI_ERR_DB;
	memset(kase, 0, sizeof(*kase));
	kase->found = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
	copy_field(kase->patient_id, sizeof(kase->patient_id), res, 0, 3);
	kase->version = int_field(res, 0, 5, -1);
	kase->patient_name = str_field(res, 0, 6, a);
	kase->hn = str_field(res, 0, 7, a);
	PQclear(res);
	return 0;
}

static void
row_to_image_at(PGresult *res, int row, int base, struct arena *a,
    struct image *img)
{
	memset(img, 0, sizeof(*img));
	copy_field(img->id, sizeof(img->id), res, row, base + 0);
	copy_field(img->case_id, sizeof(img->case_id), res, row, base + 1);
	copy_field(img->status, sizeof(img->status), res, row, base + 2);
	copy_field(img->storage_type, sizeof(img->storage_type), res, row, base + 3);
	copy_field(img->image_type, sizeof(img->image_type), res, row, base + 4);
	copy_field(img->eye_side, sizeof(img->eye_side), res, row, base + 5);
	img->captured_at = int_field(res, row, base + 6, -1);
	img->description = PQgetisnull(res, row, base + 7) || a == NULL ? NULL :
	    arena_strdup(a, PQgetvalue(res, row, base + 7));
	img->order = (long)int_field(res, row, base + 8, 0);
	img->file_size = int_field(res, row, base + 9, -1);
	copy_field(img->mime_type, sizeof(img->mime_type), res, row, base + 10);
	img->width = (long)int_field(res, row, base + 11, -1);
	img->height = (long)int_field(res, row, base + 12, -1);
	copy_field(img->sha256, sizeof(img->sha256), res, row, base + 13);
	copy_field(img->uploaded_by, sizeof(img->uploaded_by), res, row, base + 14);
	img->created_at = int_field(res, row, base + 15, 0);
	img->updated_at = int_field(res, row, base + 16, 0);
	copy_field(img->storage_key, sizeof(img->storage_key), res, row, base + 17);
	copy_field(img->display_mime, sizeof(img->display_mime), res, row, base + 18);
	img->display_size = int_field(res, row, base + 19, -1);
	copy_field(img->display_sha256, sizeof(img->display_sha256), res, row, base + 20);
	copy_field(img->thumb_mime, sizeof(img->thumb_mime), res, row, base + 21);
	img->thumb_size = int_field(res, row, base + 22, -1);
	copy_field(img->thumb_sha256, sizeof(img->thumb_sha256), res, row, base + 23);
	img->upload_expires_at = int_field(res, row, base + 24, -1);
	img->deleted = strcmp(PQgetvalue(res, row, base + 25), "t") == 0;
	copy_field(img->captured_source, sizeof(img->captured_source), res,
	    row, base + 26);
	img->uploader_name = str_field(res, row, base + 27, a);
	copy_field(img->uploader_role, sizeof(img->uploader_role), res, row,
	    base + 28);
	img->frames = (long)int_field(res, row, base + 29, 0);
	copy_field(img->modality, sizeof(img->modality), res, row, base + 30);
	copy_field(img->manufacturer, sizeof(img->manufacturer), res, row, base + 31);
	copy_field(img->model_name, sizeof(img->model_name), res, row, base + 32);
	copy_field(img->study_uid, sizeof(img->study_uid), res, row, base + 33);
	copy_field(img->series_uid, sizeof(img->series_uid), res, row, base + 34);
	copy_field(img->sop_uid, sizeof(img->sop_uid), res, row, base + 35);
	copy_field(img->sop_class, sizeof(img->sop_class), res, row, base + 36);
}

static void
row_to_image(PGresult *res, int row, struct arena *a, struct image *img)
{
	row_to_image_at(res, row, 0, a, img);
}

int
db_image_get(struct db *db, struct arena *a, const char *id,
    int include_deleted, struct image *out)
{
	const char *params[2] = { id, include_deleted ? "true" : "false" };
	PGresult *res = db_run(db, ST_IMAGE_GET, params, PGRES_TUPLES_OK);

	if (res == NULL)
		return PI_ERR_DB;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return PI_ERR_NOT_FOUND;
	}
	row_to_image(res, 0, a, out);
	copy_field(out->case_patient_id, sizeof(out->case_patient_id), res, 0,
	    IMG_NCOLS);
	PQclear(res);
	return 0;
}

int
db_auth_image(struct db *db, struct arena *a, const char *user_id,
    const char *image_id, struct db_user *u, struct image *img,
    int *image_found)
{
	PGresult *res = user_row(db, ST_USER_IMAGE, user_id, image_id, u);

	if (res == NULL)
		return PI_ERR_DB;
	*image_found = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	if (*image_found) {
		row_to_image_at(res, 0, 4, a, img);
		copy_field(img->case_patient_id, sizeof(img->case_patient_id),
		    res, 0, 4 + IMG_NCOLS);
	}
	PQclear(res);
	return 0;
}

/* Decimal text of v into buf, or NULL (SQL NULL) when v is "unknown". */
static const char *
num_or_null(char *buf, size_t n, long long v, long long unknown)
{
	if (v == unknown)
		return NULL;
	(void)snprintf(buf, n, "%lld", v);
	return buf;
}

static const char *
str_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

/* Writes the audit row (if any) in the open transaction and commits. */
static int
commit_with_audit(struct db *db, const struct audit *ev)
{
	int rc;

	if (ev != NULL && db_audit(db, ev) != 0)
		return PI_ERR_DB;
	rc = db_simple(db, "COMMIT");
	/* Before the answer leaves: the other workers of this host drop their
	 * copies before their next request (read-your-writes on one host). A
	 * failed COMMIT may have committed too. */
	if (db->changes != NULL)
		__atomic_add_fetch(db->changes, 1, __ATOMIC_SEQ_CST);
	return rc;
}

/* The common end of a transaction: frees res and rolls back on failure. */
static int
end_tx(struct db *db, PGresult *res, int rc)
{
	PQclear(res);
	if (rc != 0)
		db_rollback(db);
	return rc;
}

/* Writes the DICOM columns of img in the open transaction. 0,
 * PI_ERR_CONFLICT when another live row has its SOP Instance UID (an
 * upload of the same object that committed after the caller's
 * db_sop_find: the advisory lock on the UID serializes the two), PI_ERR_DB. */
static int
image_dicom(struct db *db, const struct image *img)
{
	const char *uid[1] = { img->sop_uid };
	char frames[24];
	const char *params[9] = {
		img->id, num_or_null(frames, sizeof(frames), img->frames, 0),
		str_or_null(img->modality), str_or_null(img->manufacturer),
		str_or_null(img->model_name), str_or_null(img->study_uid),
		str_or_null(img->series_uid), str_or_null(img->sop_uid),
		str_or_null(img->sop_class),
	};
	PGresult *res = db_run(db, ST_CASE_LOCK, uid, PGRES_TUPLES_OK);
	int found;

	if (res == NULL)
		return PI_ERR_DB;
	PQclear(res);
	if ((res = db_run(db, ST_SOP_FIND, uid, PGRES_TUPLES_OK)) == NULL)
		return PI_ERR_DB;
	found = PQntuples(res) > 0;
	PQclear(res);
	if (found)
		return PI_ERR_CONFLICT;
	if ((res = db_run(db, ST_IMAGE_DICOM, params, PGRES_COMMAND_OK)) == NULL)
		return PI_ERR_DB;
	PQclear(res);
	return 0;
}

int
db_sop_find(struct db *db, const char *sop_uid, struct db_sop_holder *h)
{
	const char *params[1] = { sop_uid };
	PGresult *res = db_run(db, ST_SOP_FIND, params, PGRES_TUPLES_OK);

	if (res == NULL)
		return PI_ERR_DB;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return PI_ERR_NOT_FOUND;
	}
	copy_field(h->id, sizeof(h->id), res, 0, 0);
	h->deleted = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	copy_field(h->case_patient_id, sizeof(h->case_patient_id), res, 0, 2);
	PQclear(res);
	return 0;
}

int
db_dicom_find(struct db *db, struct arena *a, const struct db_dicom_query *q,
    struct db_dicom_row **out, size_t *n)
{
	char from[24], to[24], lim[24];
	const char *params[9] = {
		q->patient, q->study_uid, q->series_uid, q->sop_uid, q->modality,
		q->hn, num_or_null(from, sizeof(from), q->from, -1),
		num_or_null(to, sizeof(to), q->to, -1), lim,
	};
	PGresult *res;
	int rows;

	(void)snprintf(lim, sizeof(lim), "%ld", q->limit);
	*out = NULL;
	*n = 0;
	res = db_run(db, ST_DICOM_FIND, params, PGRES_TUPLES_OK);
	if (res == NULL)
		return PI_ERR_DB;
	rows = PQntuples(res);
	if (rows > 0) {
		*out = arena_alloc(a, sizeof(**out) * (size_t)rows);
		if (*out == NULL) {
			PQclear(res);
			return PI_ERR_NOMEM;
		}
	}
	for (int i = 0; i < rows; i++) {
		struct db_dicom_row *r = &(*out)[i];

		row_to_image(res, i, a, &r->img);
		copy_field(r->img.case_patient_id, sizeof(r->img.case_patient_id),
		    res, i, IMG_NCOLS);
		r->hn = PQgetisnull(res, i, IMG_NCOLS + 1) ? NULL :
		    arena_strdup(a, PQgetvalue(res, i, IMG_NCOLS + 1));
	}
	*n = (size_t)rows;
	PQclear(res);
	return 0;
}

int
db_case_hn(struct db *db, const char *case_id, char *hn, size_t n)
{
	const char *params[1] = { case_id };
	PGresult *res = db_run(db, ST_CASE_HN, params, PGRES_TUPLES_OK);

	hn[0] = '\0';
	if (res == NULL)
		return PI_ERR_DB;
	if (PQntuples(res) == 1)
		copy_field(hn, n, res, 0, 0);
	PQclear(res);
	return 0;
}

int
db_image_insert(struct db *db, struct arena *a, struct image *img,
    const struct audit *ev)
{
	char cap[24], fs[24], w[24], h[24], ds[24], ts[24], exp[24];
	char url[128], thumb_url[128];
	const char *params[25] = {
		img->id, img->case_id, img->status, img->storage_type,
		img->image_type, img->eye_side,
		num_or_null(cap, sizeof(cap), img->captured_at, -1),
		img->description,
		num_or_null(fs, sizeof(fs), img->file_size, -1),
		str_or_null(img->mime_type),
		num_or_null(w, sizeof(w), img->width, -1),
		num_or_null(h, sizeof(h), img->height, -1),
		str_or_null(img->sha256), str_or_null(img->uploaded_by),
		img->storage_key, str_or_null(img->display_mime),
		num_or_null(ds, sizeof(ds), img->display_size, -1),
		str_or_null(img->display_sha256), str_or_null(img->thumb_mime),
		num_or_null(ts, sizeof(ts), img->thumb_size, -1),
		str_or_null(img->thumb_sha256),
		num_or_null(exp, sizeof(exp), img->upload_expires_at, -1),
		url, thumb_url,
		img->captured_at >= 0 ? str_or_null(img->captured_source) : NULL,
	};
	const char *lock[1] = { img->case_id };
	PGresult *res = NULL;
	int rc;

	(void)snprintf(url, sizeof(url), "/api/v1/images/%s/proxy", img->id);
	(void)snprintf(thumb_url, sizeof(thumb_url),
	    "/api/v1/images/%s/proxy?thumbnail=true", img->id);
	rc = db_begin(db);
	if (rc != 0)
		return rc;
	rc = PI_ERR_DB;
	/* Serializes uploads to one case so that orders are unique. */
	res = db_run(db, ST_CASE_LOCK, lock, PGRES_TUPLES_OK);
	if (res == NULL)
		goto out;
	PQclear(res);
	res = db_run(db, ST_IMAGE_INSERT, params, PGRES_TUPLES_OK);
	if (res == NULL || PQntuples(res) != 1)
		goto out;
	img->order = (long)int_field(res, 0, 0, 0);
	img->created_at = img->updated_at = int_field(res, 0, 1, 0);
	img->uploader_name = str_field(res, 0, 2, a);
	copy_field(img->uploader_role, sizeof(img->uploader_role), res, 0, 3);
	if (img->captured_at < 0) {
		img->captured_at = img->created_at;
		(void)snprintf(img->captured_source,
		    sizeof(img->captured_source), "upload");
	}
	if (img->sop_uid[0] != '\0') {
		PQclear(res);
		res = NULL;
		if ((rc = image_dicom(db, img)) != 0)
			goto out;
	}
	rc = commit_with_audit(db, ev);
out:
	return end_tx(db, res, rc);
}

int
db_image_mark_ready(struct db *db, struct arena *a, struct image *img,
    const struct audit *ev)
{
	char cap[24], fs[24], w[24], h[24], ds[24], ts[24];
	const char *params[15] = {
		img->id, num_or_null(cap, sizeof(cap), img->captured_at, -1),
		num_or_null(fs, sizeof(fs), img->file_size, -1),
		str_or_null(img->mime_type),
		num_or_null(w, sizeof(w), img->width, -1),
		num_or_null(h, sizeof(h), img->height, -1),
		str_or_null(img->sha256), str_or_null(img->display_mime),
		num_or_null(ds, sizeof(ds), img->display_size, -1),
		str_or_null(img->display_sha256), str_or_null(img->thumb_mime),
		num_or_null(ts, sizeof(ts), img->thumb_size, -1),
		str_or_null(img->thumb_sha256),
		img->captured_source[0] != '\0' ? img->captured_source : "upload",
		str_or_null(img->eye_side),
	};
	PGresult *res = NULL;
	int rc;

	rc = db_begin(db);
	if (rc != 0)
		return rc;
	rc = PI_ERR_DB;
	res = db_run(db, ST_IMAGE_READY, params, PGRES_TUPLES_OK);
	if (res == NULL)
		goto out;
	if (PQntuples(res) != 1) {
		rc = PI_ERR_CONFLICT;
		goto out;
	}
	img->captured_at = int_field(res, 0, 0, -1);
	img->updated_at = int_field(res, 0, 1, 0);
	copy_field(img->captured_source, sizeof(img->captured_source), res, 0, 2);
	img->uploader_name = str_field(res, 0, 3, a);
	copy_field(img->uploader_role, sizeof(img->uploader_role), res, 0, 4);
	(void)snprintf(img->status, sizeof(img->status), "ready");
	img->upload_expires_at = -1;
	if (img->sop_uid[0] != '\0') {
		PQclear(res);
		res = NULL;
		if ((rc = image_dicom(db, img)) != 0)
			goto out;
	}
	rc = commit_with_audit(db, ev);
out:
	return end_tx(db, res, rc);
}

int
db_images_list(struct db *db, struct arena *a, const char *case_id,
    const char *eye_side, long limit, long offset, struct image **out,
    size_t *n, long long *total)
{
	char lim[24], off[24];
	const char *params[4] = { case_id, eye_side, lim, off };
	PGresult *res;
	int rows;

	(void)snprintf(lim, sizeof(lim), "%ld", limit);
	(void)snprintf(off, sizeof(off), "%ld", offset);
	res = db_run(db, ST_LIST, params, PGRES_TUPLES_OK);
	if (res == NULL)
		return PI_ERR_DB;
	rows = PQntuples(res);
	*n = 0;
	*out = NULL;
	if (rows > 0) {
		*out = arena_alloc(a, sizeof(**out) * (size_t)rows);
		if (*out == NULL) {
			PQclear(res);
			return PI_ERR_NOMEM;
		}
		for (int i = 0; i < rows; i++)
			row_to_image(res, i, a, &(*out)[i]);
		*n = (size_t)rows;
		*total = int_field(res, 0, IMG_NCOLS, 0);
		PQclear(res);
		return 0;
	}
	PQclear(res);
	/* Past the end (or empty): the window function saw no row; count. */
	res = db_run(db, ST_COUNT, params, PGRES_TUPLES_OK);
	if (res == NULL)
		return PI_ERR_DB;
	*total = int_field(res, 0, 0, 0);
	PQclear(res);
	return 0;
}

/* Runs an UPDATE/DELETE statement and the audit row in one transaction;
 * PI_ERR_NOT_FOUND if it touched no row. */
static int
change_with_audit(struct db *db, enum stmt s, const char *const *params,
    const struct audit *ev)
{
	PGresult *res = NULL;
	int rc = db_begin(db);

	if (rc != 0)
		return rc;
	rc = PI_ERR_DB;
	res = db_run(db, s, params, PGRES_COMMAND_OK);
	if (res == NULL)
		goto out;
	if (strcmp(PQcmdTuples(res), "0") == 0) {
		rc = PI_ERR_NOT_FOUND;
		goto out;
	}
	rc = commit_with_audit(db, ev);
out:
	return end_tx(db, res, rc);
}

int
db_image_delete(struct db *db, const char *id, const char *by,
    const struct audit *ev)
{
	const char *params[2] = { id, by };

	return change_with_audit(db, ST_DELETE, params, ev);
}

int
db_image_restore(struct db *db, const char *id, const struct audit *ev)
{
	const char *params[1] = { id };

	return change_with_audit(db, ST_RESTORE, params, ev);
}

int
db_sweep_candidates(struct db *db, struct arena *a, long retention_days,
    db_sweep_cb cb, void *ud)
{
	char days[24];
	const char *params[1] = { days };
	PGresult *res;
	struct image img;
	int rows, rc = 0;

	(void)snprintf(days, sizeof(days), "%ld", retention_days);
	res = db_run(db, ST_SWEEP, params, PGRES_TUPLES_OK);
	if (res == NULL)
		return PI_ERR_DB;
	rows = PQntuples(res);
	for (int i = 0; i < rows && rc == 0; i++) {
		row_to_image(res, i, a, &img);
		rc = cb(ud, &img);
	}
	PQclear(res);
	return rc;
}

int
db_image_purged(struct db *db, const struct image *img, const struct audit *ev)
{
	const char *params[1] = { img->id };

	return change_with_audit(db, img->deleted ? ST_PURGED_DELETED :
	    ST_PURGED_PENDING, params, ev);
}

int
db_storage_key_known(struct db *db, const char *storage_key, bool *known)
{
	const char *params[1] = { storage_key };
	PGresult *res = db_run(db, ST_KEY_KNOWN, params, PGRES_TUPLES_OK);

	if (res == NULL)
		return PI_ERR_DB;
	*known = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

int
db_live_images(struct db *db, db_image_cb cb, void *ud)
{
	char after[64] = "", lim[24];
	const char *params[2] = { after, lim };
	struct image img;
	int rows, rc = 0;

	(void)snprintf(lim, sizeof(lim), "%d", DB_LIVE_PAGE);
	do {
		PGresult *res = db_run(db, ST_LIVE_PAGE, params, PGRES_TUPLES_OK);

		if (res == NULL)
			return PI_ERR_DB;
		rows = PQntuples(res);
		for (int i = 0; i < rows && rc == 0; i++) {
			row_to_image(res, i, NULL, &img);
			rc = cb(ud, &img);
		}
		if (rows > 0)
			copy_field(after, sizeof(after), res, rows - 1, IMG_NCOLS);
		PQclear(res);
	} while (rc == 0 && rows == DB_LIVE_PAGE);
	return rc;
}

/* --- migrations ------------------------------------------------------- */

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *
read_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || st.st_size > 4 * 1024 * 1024)
		goto out;
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		goto out;
	while (len < (size_t)st.st_size &&
	    (n = read(fd, buf + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
out:
	close(fd);
	return buf;
}

int
db_migrate(struct db *db, const char *dir)
{
	DIR *d = NULL;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, applied = 0;
	int rc = PI_ERR_DB;

	if (db_connect(db) != 0) {
		fprintf(stderr, "polaimg: migrate: cannot connect to the database\n");
		return PI_ERR_DB;
	}
	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "polaimg: migrate: %s: %s\n", dir, strerror(errno));
		return PI_ERR_IO;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 5 || strcmp(de->d_name + len - 4, ".sql") != 0 ||
		    de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(*names));

			if (nn == NULL)
				goto out;
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (names[n] == NULL)
			goto out;
		n++;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	if (db_simple(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    "version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())") != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		const char *params[1] = { names[i] };
		char *sql = NULL;
		PGresult *res;
		int done;

		if (db_simple(db, DB_BEGIN) != 0 ||
		    db_simple(db, "SELECT pg_advisory_xact_lock(7244011)") != 0)
			goto fail;
		res = PQexecParams(db->conn, "SELECT 1 FROM schema_migrations "
		    "WHERE version = $1", 1, NULL, params, NULL, NULL, 0);
		if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
			log_pq_error("schema_migrations", res, db->conn);
			PQclear(res);
			goto fail;
		}
		done = PQntuples(res) > 0;
		PQclear(res);
		if (done) {
			(void)db_simple(db, "COMMIT");
			continue;
		}
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >=
		    sizeof(path) || (sql = read_file(path)) == NULL) {
			fprintf(stderr, "polaimg: migrate: cannot read %s/%s\n", dir, names[i]);
			rc = PI_ERR_IO;
			goto fail;
		}
		res = PQexec(db->conn, sql);
		free(sql);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			fprintf(stderr, "polaimg: migrate: %s failed: %s", names[i],
			    res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
			PQclear(res);
			goto fail;
		}
		PQclear(res);
		res = PQexecParams(db->conn, "INSERT INTO schema_migrations (version) "
		    "VALUES ($1)", 1, NULL, params, NULL, NULL, 0);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			PQclear(res);
			goto fail;
		}
		PQclear(res);
		if (db_simple(db, "COMMIT") != 0)
			goto fail;
		printf("applied %s\n", names[i]);
		applied++;
		continue;
fail:
		db_rollback(db);
		goto out;
	}
	printf("migrations: %zu applied, %zu already present\n", applied, n - applied);
	rc = 0;
out:
	if (d != NULL)
		closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}
