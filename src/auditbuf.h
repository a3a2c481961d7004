/* auditbuf.h — audit rows of reads, gathered to be written together.
 *
 * Every request writes one row to image_events. For reads (list, view,
 * proxy, download URL, refusals) a worker gathers them here and writes them
 * as one INSERT of up to audit_read_batch rows (db_audit_flush): one
 * statement instead of one per request. Each row keeps the time of its
 * request, which becomes its created_at. This module only holds the rows and
 * renders them as the PostgreSQL array literals of that INSERT's
 * parameters; it does no I/O.
 */
#ifndef POLAIMG_AUDITBUF_H
#define POLAIMG_AUDITBUF_H

#include <stddef.h>
#include <stdint.h>

/* One audit row (image_events); any field may be NULL. */
struct audit {
	const char *user_id, *role, *action, *image_id, *case_id, *variant,
	    *outcome, *remote_addr, *request_id;
};

#define AUDIT_NFIELDS 9        /* the strings of struct audit, in order */
#define AUDIT_NCOLS 10         /* created_at, then the nine */
#define AUDIT_FIELD_MAX 128    /* longer values are cut (none is, in use) */
#define AUDITBUF_MAX_ROWS 1024

struct audit_row;

struct auditbuf {
	struct audit_row *rows;
	size_t cap, n;
	int64_t oldest_ms;         /* caller's clock at the first row */
};

/* cap rows (1..AUDITBUF_MAX_ROWS). 0, PI_ERR_NOMEM or PI_ERR_INVALID (bad
 * cap). */
int auditbuf_init(struct auditbuf *b, size_t cap);
void auditbuf_free(struct auditbuf *b);

/* Adds ev, stamped with the wall-clock time unix_us (microseconds);
 * now_ms is the caller's monotonic clock, kept for the oldest row.
 * 0, or PI_ERR_TOO_LARGE when the buffer is full. */
int auditbuf_add(struct auditbuf *b, const struct audit *ev, int64_t unix_us,
    int64_t now_ms);

/* The AUDIT_NCOLS array literals ("{...}") of the rows, column by column:
 * created_at as "YYYY-MM-DD HH:MM:SS.uuuuuu+00", then the fields; NULL
 * fields are unquoted NULL, others double-quoted with " and \ escaped.
 * out[i] are malloc'd (the caller frees each). 0 or PI_ERR_NOMEM. */
int auditbuf_literals(const struct auditbuf *b, char *out[AUDIT_NCOLS]);

/* Row i's field f (0..AUDIT_NFIELDS-1) or NULL, for logging. */
const char *auditbuf_field(const struct auditbuf *b, size_t i, int f);
/* Row i's time (unix microseconds), or 0 past the end. */
int64_t auditbuf_time(const struct auditbuf *b, size_t i);

void auditbuf_clear(struct auditbuf *b);

#endif
