/* common.h — things every polaimg module shares: the error codes, and the
 * few small pure helpers more than one module needs (hex, a hash, calendar
 * arithmetic), kept here once so that no module carries its own copy.
 *
 * Functions return 0 on success or a negative enum pi_err. The mapping from an
 * error to an HTTP status and a JSON code lives in exactly one place
 * (http_error_for() in http.c); modules below the handlers never speak HTTP.
 */
#ifndef POLAIMG_COMMON_H
#define POLAIMG_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum pi_err {
	PI_OK = 0,
	PI_ERR_NOMEM = -1,        /* allocation failed */
	PI_ERR_INVALID = -2,      /* malformed input from the client */
	PI_ERR_TOO_LARGE = -3,    /* body or part over a configured limit */
	PI_ERR_UNSUPPORTED = -4,  /* media type not accepted */
	PI_ERR_UNPROCESSABLE = -5,/* image corrupt, undecodable or over max_pixels */
	PI_ERR_STORAGE = -6,      /* storage back end failed */
	PI_ERR_DB = -7,           /* database unavailable or failed */
	PI_ERR_NOT_FOUND = -8,
	PI_ERR_FORBIDDEN = -9,
	PI_ERR_CONFLICT = -10,
	PI_ERR_INTERNAL = -11,
	PI_ERR_IO = -12,          /* local I/O (temp files, client stream) */
	PI_ERR_EXISTS = -13,      /* conditional create found an object */
	PI_ERR_EXPIRED = -14,     /* a token or URL past its expiry */
	PI_ERR_STORAGE_FULL = -15,/* storage has no space (ENOSPC, EROFS) */
	PI_ERR_BUSY = -16,        /* a limit on work in flight is reached: retry later */
	PI_ERR_ANSWERED = -17     /* refused, and the request is answered already */
};

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void pi_hex(const unsigned char *in, size_t n, char *out);

/* The value 0..15 of the hex digit c, upper or lower case alike; -1 for any
 * other byte (NUL included, so a caller stepping through a string stops
 * there). Callers that want only one case check that themselves. */
int pi_hexval(int c);

/* The n (at most 9) decimal digits at s into *v: 0, or PI_ERR_INVALID
 * unless all n are digits. Stops at the first byte that is not a digit,
 * so it never reads past a NUL. */
int pi_digits(const char *s, size_t n, int *v);

/* Dates.  Proleptic Gregorian calendar, UTC, POSIX seconds (no leap
 * seconds); H. Hinnant's public-domain days-from-civil algorithms. Pure: no
 * time_t range, locale or TZ environment is involved (timegm() is not
 * standard C and mktime() reads TZ, hence these). Any year an int64_t
 * holds without overflow of the day count works, negative years included
 * (year 0 is 1 BC). */

/* Whether y is a leap year (every 4th, except centuries not divisible by
 * 400). */
bool pi_is_leap(int64_t y);

/* Days in month m (1..12) of year y: 28..31. m must be in range. */
int pi_days_in_month(int64_t y, int m);

/* Days from 1970-01-01 to y-m-d (negative before it). m must be 1..12; d is
 * not checked against the month and counts on linearly (February 30 is
 * March 1 or 2), as timegm() does: validate first where that matters. */
int64_t pi_days_from_civil(int64_t y, int m, int d);

/* The inverse of pi_days_from_civil(): the date of day z after 1970-01-01,
 * with m in 1..12 and d in 1..31. */
void pi_civil_from_days(int64_t z, int64_t *y, int *m, int *d);

/* Seconds since 1970-01-01T00:00:00Z of the broken-down UTC time *tm, like
 * timegm() but pure and without the -1 ambiguity: tm_year + 1900, tm_mon
 * (any value; outside 0..11 it carries into the year), tm_mday, tm_hour,
 * tm_min and tm_sec count on linearly, so out-of-range fields normalise as
 * timegm() does (tm_sec = 60 is the next minute). tm_wday, tm_yday and
 * tm_isdst are ignored and *tm is not changed. */
int64_t pi_timegm(const struct tm *tm);

/* The broken-down time y-mo-d h:mi:s (mo the calendar month, 1..12) with
 * tm_isdst -1 (mktime() decides) and every other field 0: what
 * pi_timegm() and mktime() take. */
struct tm pi_tm(int y, int mo, int d, int h, int mi, int s);

/* 32-bit FNV-1a of n bytes: the slot of a key in the workers' caches. */
uint32_t pi_fnv1a(const void *data, size_t n);

/* A short English name for an error, for logs. Never NULL. */
const char *pi_strerror(int err);

#define PI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
