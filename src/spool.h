/* spool.h — audit rows that could not be written, kept on local disk.
 *
 * When an audit row written on its own (a read, a refusal: db_audit_read)
 * cannot reach image_events — PostgreSQL restarted, stopped, or polaimg's
 * session was terminated, and a fresh connection did not work within
 * audit_retry_ms — the worker appends it to <audit_spool_dir>/audit.spool
 * instead of dropping it, and a worker whose connection works again
 * writes the file's rows to image_events and empties it (db.c).
 *
 * The file: one file for all workers of all masters using the directory,
 * opened O_APPEND and written under flock(LOCK_EX), fsync'd before the
 * append returns (a row in the spool survives a crash of polaimg or of the
 * machine). Records follow each other with no other framing:
 *
 *   "PIA1"  u32 payload length  u32 CRC-32 of the payload   payload
 *   payload: i64 created_at (unix microseconds), u32 NULL mask,
 *            then the AUDIT_NFIELDS fields, each u8 length + bytes
 *
 * all integers little-endian. Each record carries its own length and
 * checksum, so a record torn by a crash (the last one, or one that later
 * appends followed) is found and skipped: the reader looks for the next
 * "PIA1" whose record checks. A damaged record is counted and reported,
 * never written to image_events. This module does the bytes and the file
 * operations only; it knows no SQL.
 */
#ifndef POLAIMG_SPOOL_H
#define POLAIMG_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auditbuf.h"

#define SPOOL_FILE "audit.spool"
#define SPOOL_MAGIC "PIA1"
#define SPOOL_HDR 12
/* The largest payload: time, mask, and every field at its longest. */
#define SPOOL_PAYLOAD_MAX (8 + 4 + AUDIT_NFIELDS * AUDIT_FIELD_MAX)
#define SPOOL_REC_MAX (SPOOL_HDR + SPOOL_PAYLOAD_MAX)

/* One decoded record; ev's strings point into f (NULL for NULL fields). */
struct spool_row {
	int64_t unix_us;
	struct audit ev;
	char f[AUDIT_NFIELDS][AUDIT_FIELD_MAX];
};

/* A record's place in the file, for replay in order. */
struct spool_entry {
	int64_t unix_us;
	size_t off, len;
};

enum spool_dec { SPOOL_OK = 0, SPOOL_SHORT = -1, SPOOL_BAD = -2 };

/* The record of row i of b into out (room for SPOOL_REC_MAX): its length. */
size_t spool_encode(const struct auditbuf *b, size_t i, unsigned char *out);

/* Decodes the record at p (len bytes available). SPOOL_OK with *used and
 * *row; SPOOL_SHORT when the bytes end inside it (a torn tail); SPOOL_BAD
 * when it is not a valid record (magic, length or checksum). row may be
 * NULL (check only). */
int spool_decode(const unsigned char *p, size_t len, size_t *used,
    struct spool_row *row);

/* The valid records of buf, sorted by created_at then by place in the file
 * (the order they were appended): *out is malloc'd (the caller frees it),
 * *n entries; *damaged counts the stretches that were skipped (a torn or
 * corrupt record each). 0 or PI_ERR_NOMEM. */
int spool_index(const unsigned char *buf, size_t len,
    struct spool_entry **out, size_t *n, size_t *damaged);

/* Appends the rows of b to path (created 0600 if missing), under
 * flock(LOCK_EX), and fsyncs it (and the directory when the file is new)
 * before returning. 0, PI_ERR_NOMEM, or PI_ERR_IO (errno set; nothing is
 * reported as written). */
int spool_append(const char *path, const struct auditbuf *b);

/* Records in path: 0 with *n and *damaged (a missing file has none), or
 * PI_ERR_IO (errno) or PI_ERR_NOMEM. Takes a shared lock, so an append or a replay is never seen
 * half done. */
int spool_count(const char *path, size_t *n, size_t *damaged);

/* Whether path holds bytes: 0 with *nonempty (false when empty or
 * missing), or PI_ERR_IO (errno). */
int spool_nonempty(const char *path, bool *nonempty);

/* For replay: opens path and takes its exclusive lock without waiting.
 * 0 with *fd (>= 0), *map and *len (the file's bytes, read-only); 0 with
 * *fd = -1 when the file is missing or empty, or another process holds the
 * lock (it is being appended to or replayed: try later); PI_ERR_IO (errno)
 * on error. */
int spool_take(const char *path, int *fd, unsigned char **map, size_t *len);
/* Ends spool_take: empties the file (ftruncate, fsync) when clear, then
 * unmaps, unlocks and closes. 0 or PI_ERR_IO (the file could not be
 * emptied). */
int spool_release(int fd, unsigned char *map, size_t len, int clear);

#endif
