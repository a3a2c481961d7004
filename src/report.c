/* report.c — the outcome of an operator verb, as text or one JSON object.
 *
 * check-config, verify and sweep are run by people and by monitoring
 * scripts. For people they print lines; with --json they print exactly one
 * JSON object on standard output when they end, whatever happened:
 *
 *   { "ok": true|false, "errors": [ "...", ... ], "counts": { "name": n } }
 *
 * ok is false exactly when the exit status is not 0; errors[] holds the
 * problems found (the first REPORT_MAX_ERRORS; counts.errors counts all),
 * counts what the verb counted. The per-item lines the verb prints in text
 * go to standard error instead, so that stdout is the object alone.
 */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "common.h"

int
report_init(struct report *r, const char *verb, int json)
{
	memset(r, 0, sizeof(*r));
	r->json = json;
	r->verb = verb;
	r->out = json ? stderr : stdout;
	if (!json)
		return 0;
	r->errors = json_object_new_array();
	r->counts = json_object_new_object();
	if (r->errors == NULL || r->counts == NULL) {
		json_object_put(r->errors);
		json_object_put(r->counts);
		r->errors = r->counts = NULL;
		return PI_ERR_NOMEM;
	}
	return 0;
}

/* One error: text to out (prefixed with the verb on stderr), or JSON. */
static void
report_add(struct report *r, int problem, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void
report_add(struct report *r, int problem, const char *fmt, va_list ap)
{
	char msg[1024];
	struct json_object *s;

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	r->nerrors++;
	if (!r->json) {
		if (problem)
			printf("%s\n", msg);
		else
			fprintf(stderr, "polaimg: %s: %s\n", r->verb, msg);
		return;
	}
	if (r->nerrors > REPORT_MAX_ERRORS)
		return;
	s = json_object_new_string(msg);
	if (s != NULL && json_object_array_add(r->errors, s) != 0)
		json_object_put(s);
}

void
report_error(struct report *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_add(r, 0, fmt, ap);
	va_end(ap);
}

void
report_problem(struct report *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_add(r, 1, fmt, ap);
	va_end(ap);
}

void
report_count(struct report *r, const char *name, long long value)
{
	struct json_object *v;

	if (!r->json)
		return;
	v = json_object_new_int64(value);
	if (v != NULL && json_object_object_add(r->counts, name, v) != 0)
		json_object_put(v);
}

void
report_finish(struct report *r, int ok)
{
	struct json_object *o;

	if (!r->json)
		return;
	report_count(r, "errors", r->nerrors);
	o = json_object_new_object();
	if (o == NULL || json_object_object_add(o, "ok",
	    json_object_new_boolean(ok)) != 0 ||
	    json_object_object_add(o, "errors", r->errors) != 0) {
		json_object_put(r->errors);
		json_object_put(r->counts);
		/* Still one object: monitoring must read a verdict. */
		printf("{\"ok\":false,\"errors\":[\"out of memory\"],"
		    "\"counts\":{}}\n");
		json_object_put(o);
		goto out;
	}
	if (json_object_object_add(o, "counts", r->counts) != 0)
		json_object_put(r->counts);
	printf("%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
out:
	fflush(stdout);
	r->errors = r->counts = NULL;
}
