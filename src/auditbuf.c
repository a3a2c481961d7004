/* auditbuf.c — see auditbuf.h. */
#include "auditbuf.h"
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct audit_row {
	int64_t unix_us;
	unsigned null_mask;                /* bit f: field f is NULL */
	char f[AUDIT_NFIELDS][AUDIT_FIELD_MAX];
};

int
auditbuf_init(struct auditbuf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	if (cap == 0 || cap > AUDITBUF_MAX_ROWS)
		return PI_ERR_INVALID;
	b->rows = calloc(cap, sizeof(*b->rows));
	if (b->rows == NULL)
		return PI_ERR_NOMEM;
	b->cap = cap;
	return 0;
}

void
auditbuf_free(struct auditbuf *b)
{
	free(b->rows);
	memset(b, 0, sizeof(*b));
}

/* Every value polaimg records is printable ASCII (ids, names, addresses);
 * anything else is replaced by '?', so that no byte of a value can make
 * the batch invalid UTF-8 and lose the rows with it. */
static void
copy_ascii(char dst[AUDIT_FIELD_MAX], const char *src)
{
	size_t i = 0;

	for (; src[i] != '\0' && i < AUDIT_FIELD_MAX - 1; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

int
auditbuf_add(struct auditbuf *b, const struct audit *ev, int64_t unix_us,
    int64_t now_ms)
{
	const char *v[AUDIT_NFIELDS] = { ev->user_id, ev->role, ev->action,
		ev->image_id, ev->case_id, ev->variant, ev->outcome,
		ev->remote_addr, ev->request_id };
	struct audit_row *r;

	if (b->n >= b->cap)
		return PI_ERR_TOO_LARGE;
	r = &b->rows[b->n];
	r->unix_us = unix_us;
	r->null_mask = 0;
	for (int i = 0; i < AUDIT_NFIELDS; i++) {
		if (v[i] == NULL) {
			r->null_mask |= 1u << i;
			r->f[i][0] = '\0';
		} else {
			copy_ascii(r->f[i], v[i]);
		}
	}
	if (b->n == 0)
		b->oldest_ms = now_ms;
	b->n++;
	return 0;
}

const char *
auditbuf_field(const struct auditbuf *b, size_t i, int f)
{
	if (i >= b->n || f < 0 || f >= AUDIT_NFIELDS ||
	    (b->rows[i].null_mask & (1u << f)))
		return NULL;
	return b->rows[i].f[f];
}

int64_t
auditbuf_time(const struct auditbuf *b, size_t i)
{
	return i < b->n ? b->rows[i].unix_us : 0;
}

void
auditbuf_clear(struct auditbuf *b)
{
	b->n = 0;
}

/* Appends "ts" (quoted) for created_at; p has room (see the bound below). */
static size_t
put_time(char *p, int64_t unix_us)
{
	time_t s = (time_t)(unix_us / 1000000);
	long us = (long)(unix_us % 1000000);
	struct tm tm;
	char t[32];

	if (us < 0) {
		s--;
		us += 1000000;
	}
	if (gmtime_r(&s, &tm) == NULL || strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		(void)snprintf(t, sizeof(t), "1970-01-01 00:00:00");
	return (size_t)sprintf(p, "\"%s.%06ld+00\"", t, us);
}

int
auditbuf_literals(const struct auditbuf *b, char *out[AUDIT_NCOLS])
{
	/* Per element at most 2 * (AUDIT_FIELD_MAX - 1) escaped bytes, two
	 * quotes and a comma; a time is under 40; plus the braces and NUL. */
	size_t room = b->n * (2 * AUDIT_FIELD_MAX + 4) + 4;

	for (int c = 0; c < AUDIT_NCOLS; c++)
		out[c] = NULL;
	for (int c = 0; c < AUDIT_NCOLS; c++) {
		char *p = malloc(room);

		if (p == NULL)
			goto fail;
		out[c] = p;
		*p++ = '{';
		for (size_t i = 0; i < b->n; i++) {
			const struct audit_row *r = &b->rows[i];

			if (i > 0)
				*p++ = ',';
			if (c == 0) {
				p += put_time(p, r->unix_us);
				continue;
			}
			if (r->null_mask & (1u << (c - 1))) {
				memcpy(p, "NULL", 4);
				p += 4;
				continue;
			}
			*p++ = '"';
			for (const char *s = r->f[c - 1]; *s != '\0'; s++) {
				if (*s == '"' || *s == '\\')
					*p++ = '\\';
				*p++ = *s;
			}
			*p++ = '"';
		}
		*p++ = '}';
		*p = '\0';
	}
	return 0;
fail:
	for (int c = 0; c < AUDIT_NCOLS; c++) {
		free(out[c]);
		out[c] = NULL;
	}
	return PI_ERR_NOMEM;
}
