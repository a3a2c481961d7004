/* test_auditbuf.c — gathered audit rows and their array literals. */
#include <stdlib.h>
#include <string.h>

#include "auditbuf.h"
#include "tap.h"

static void
free_all(char *lit[AUDIT_NCOLS])
{
	for (int c = 0; c < AUDIT_NCOLS; c++)
		free(lit[c]);
}

int
main(void)
{
	struct auditbuf b;
	struct audit ev = { "u1", "doctor", "proxy", "img-1", "case-1",
		"display", "ok", "127.0.0.1", "rid1" };
	struct audit odd = { NULL, NULL, "list", NULL, "ca\"se\\x", NULL, "denied",
		"a,b{c}", "r\xc3\xa9\n\t" };
	char *lit[AUDIT_NCOLS];
	char longv[400];

	ok(auditbuf_init(&b, 0) != 0, "a capacity of 0 is refused");
	ok(auditbuf_init(&b, AUDITBUF_MAX_ROWS + 1) != 0, "over the maximum is refused");
	ok(auditbuf_init(&b, 3) == 0, "auditbuf_init(3)");
	is_int(b.n, 0, "starts empty");
	ok(auditbuf_literals(&b, lit) == 0, "literals of no rows");
	is_str(lit[0], "{}", "no rows: empty array");
	is_str(lit[9], "{}", "every column empty");
	free_all(lit);

	ok(auditbuf_add(&b, &ev, 1764072000123456LL, 500) == 0, "add a row");
	is_int(b.oldest_ms, 500, "the first row sets the oldest time");
	ok(auditbuf_add(&b, &odd, 1764072001000007LL, 900) == 0, "add a second");
	is_int(b.oldest_ms, 500, "a later row keeps the oldest time");
	ok(auditbuf_literals(&b, lit) == 0, "literals of two rows");
	is_str(lit[0], "{\"2025-11-25 12:00:00.123456+00\",\"2025-11-25 12:00:01.000007+00\"}",
	    "created_at: UTC with microseconds");
	is_str(lit[1], "{\"u1\",NULL}", "a NULL field is an unquoted NULL");
	is_str(lit[2], "{\"doctor\",NULL}", "role");
	is_str(lit[3], "{\"proxy\",\"list\"}", "action");
	is_str(lit[5], "{\"case-1\",\"ca\\\"se\\\\x\"}", "quotes and backslashes are escaped");
	is_str(lit[6], "{\"display\",NULL}", "variant");
	is_str(lit[7], "{\"ok\",\"denied\"}", "outcome");
	is_str(lit[8], "{\"127.0.0.1\",\"a,b{c}\"}", "commas and braces stay inside quotes");
	is_str(lit[9], "{\"rid1\",\"r????\"}",
	    "bytes outside printable ASCII (UTF-8, control) become ?");
	free_all(lit);
	is_str(auditbuf_field(&b, 0, 2), "proxy", "field of a row");
	ok(auditbuf_field(&b, 1, 0) == NULL, "a NULL field reads NULL");
	ok(auditbuf_field(&b, 2, 0) == NULL, "no row 2");
	ok(auditbuf_field(&b, 0, AUDIT_NFIELDS) == NULL, "no such field");

	memset(longv, 'a', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	ev.request_id = longv;
	ok(auditbuf_add(&b, &ev, 0, 1000) == 0, "a third row (long value)");
	is_int(strlen(auditbuf_field(&b, 2, 8)), AUDIT_FIELD_MAX - 1,
	    "a long value is cut to the field's size");
	ok(auditbuf_add(&b, &ev, 0, 1000) != 0, "a full buffer refuses a row");
	ok(auditbuf_literals(&b, lit) == 0, "literals of a full buffer");
	{
		const char *tail = ",\"1970-01-01 00:00:00.000000+00\"}";

		ok(strlen(lit[0]) > strlen(tail) &&
		    strcmp(lit[0] + strlen(lit[0]) - strlen(tail), tail) == 0,
		    "time 0 is the epoch");
	}
	free_all(lit);
	ok(auditbuf_add(&b, &ev, -1, 1000) != 0, "still full");
	auditbuf_clear(&b);
	is_int(b.n, 0, "clear empties");
	ok(auditbuf_add(&b, &ev, -1, 2000) == 0, "add after clear");
	is_int(b.oldest_ms, 2000, "the oldest time restarts");
	ok(auditbuf_literals(&b, lit) == 0, "literals");
	is_str(lit[0], "{\"1969-12-31 23:59:59.999999+00\"}", "a negative time rounds down");
	free_all(lit);

	/* The worst case fits: every byte escaped in every field. */
	{
		struct auditbuf w;
		char q[AUDIT_FIELD_MAX + 10];
		struct audit all;
		int fits = 1;

		memset(q, '"', sizeof(q) - 1);
		q[sizeof(q) - 1] = '\0';
		all = (struct audit){ q, q, q, q, q, q, q, q, q };
		ok(auditbuf_init(&w, AUDITBUF_MAX_ROWS) == 0, "a buffer of the maximum");
		for (int i = 0; i < AUDITBUF_MAX_ROWS; i++)
			fits &= auditbuf_add(&w, &all, 4102444800000000LL, 0) == 0;
		ok(fits, "fills to the maximum");
		ok(auditbuf_literals(&w, lit) == 0, "literals of the worst case");
		is_int(strlen(lit[1]), 2 + AUDITBUF_MAX_ROWS * (2 * (AUDIT_FIELD_MAX - 1) + 2) +
		    (AUDITBUF_MAX_ROWS - 1), "every quote escaped, within the bound");
		free_all(lit);
		auditbuf_free(&w);
	}
	auditbuf_free(&b);
	return done_testing();
}
