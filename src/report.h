/* report.h — the outcome of an operator verb, as text or one JSON object. */
#ifndef POLAIMG_REPORT_H
#define POLAIMG_REPORT_H

#include <stdio.h>

struct json_object;

struct report {
	int json;                   /* --json: one object on stdout at the end */
	const char *verb;           /* "sweep", for the text lines */
	FILE *out;                  /* where per-item lines go: stdout, or
	                             * stderr with --json (stdout is the object's) */
	struct json_object *errors; /* array of strings (json only) */
	struct json_object *counts; /* object of integers (json only) */
	long nerrors;
};

/* Starts a report for verb; json selects the JSON object. 0, or PI_ERR_NOMEM. */
int report_init(struct report *r, const char *verb, int json);
/* Records one error: in text "polaimg: <verb>: <message>" on stderr; in JSON
 * an element of errors[] (the first REPORT_MAX_ERRORS; nerrors counts all). */
void report_error(struct report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Records one problem the verb found (a missing object): in text a line on
 * standard output; in JSON an element of errors[], like report_error(). */
void report_problem(struct report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Records a count (JSON only; the verb prints its own text summary). */
void report_count(struct report *r, const char *name, long long value);
/* With --json prints {"ok", "errors", "counts"} on stdout; frees the report.
 * ok is the verb's verdict (its exit status 0). */
void report_finish(struct report *r, int ok);

#define REPORT_MAX_ERRORS 1000

#endif
