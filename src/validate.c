/* validate.c — typed validators for untrusted strings.
 *
 * Every field a client sends passes through exactly one of these before a
 * handler uses it, so each validator is strict and says no rather than
 * guessing: no leading spaces, no trailing garbage, no "almost" formats.
 * None allocates, none depends on the locale or the TZ environment.
 *
 * Time.  val_rfc3339() accepts the RFC 3339 section 5.6 date-time grammar
 * (full-date "T" full-time, time-offset "Z" or +hh:mm / -hh:mm) and checks
 * every range, including the day against the month and leap years.  A leap
 * second (ss = 60) is refused rather than clamped: the service stores POSIX
 * time, which has no leap seconds, and no client we serve produces them, so
 * such a value is far more likely an error than a real instant.  Fractional
 * seconds (1 to 9 digits) are accepted and dropped, which rounds the instant
 * down.  The conversion to epoch seconds uses the days-from-civil
 * algorithm of the proleptic Gregorian calendar (H. Hinnant, common.c's
 * pi_days_from_civil()), because timegm() is non-standard and mktime()
 * depends on TZ.  Both the written date
 * and the resulting UTC instant must lie in the years 1900 to 9999, so
 * val_format_rfc3339() can print every value val_rfc3339() returns.
 *
 * Text.  val_text() decodes UTF-8 by the table of well-formed byte sequences
 * in the Unicode standard (3.9, table 3-7): overlong forms, surrogates
 * (U+D800..U+DFFF) and values above U+10FFFF are refused.  Control characters
 * are refused too — C0 other than TAB, LF and CR, DEL and the C1 range
 * U+0080..U+009F — since they have no business in a description or file name
 * and make log and terminal injection possible.  val_utf8() is the same
 * decoder without the control-character rule, for every text field a client
 * sends (form fields, JSON strings, query values): a NUL or a malformed
 * sequence there is refused rather than cut off or passed on, so "A\0B" can
 * never be stored as "A".
 */
#include "validate.h"

#include "common.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

/* Seconds of 1900-01-01T00:00:00Z and 9999-12-31T23:59:59Z. */
#define VAL_T_1900 (-2208988800LL)
#define VAL_T_9999 (253402300799LL)
/* Seconds of 0000-01-01T00:00:00Z, the earliest time we format. */
#define VAL_T_0000 (-62167219200LL)

bool
val_uuid(const char *s, char canon[37])
{
	static const char hex[] = "0123456789abcdef";
	char tmp[37];
	int v;

	if (s == NULL)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
			tmp[i] = '-';
		} else if ((v = pi_hexval((unsigned char)c)) >= 0) {
			tmp[i] = hex[v];    /* upper case made lower */
		} else {
			return false;   /* also stops at a NUL: no overread */
		}
	}
	if (s[36] != '\0')
		return false;
	tmp[36] = '\0';
	if (canon != NULL)
		memcpy(canon, tmp, sizeof(tmp));
	return true;
}

int
val_enum(const char *s, const char *const *allowed)
{
	if (s == NULL || allowed == NULL)
		return -1;
	for (int i = 0; allowed[i] != NULL; i++)
		if (strcmp(s, allowed[i]) == 0)
			return i;
	return -1;
}

/* Reads exactly n decimal digits at *pp, advancing it. -1 if not digits;
 * stops at the first non-digit, so it never reads past a NUL. */
static int
val_digits(const char **pp, int n)
{
	int v;

	if (pi_digits(*pp, (size_t)n, &v) != 0)
		return -1;
	*pp += n;
	return v;
}

/* Consumes the character c at *pp; 0 if something else is there. */
static bool
val_expect(const char **pp, char c)
{
	if (**pp != c)
		return false;
	(*pp)++;
	return true;
}

bool
val_rfc3339(const char *s, int64_t *out)
{
	const char *p = s;
	int year, mon, day, hour, min, sec, off = 0;
	int64_t t;

	if (s == NULL)
		return false;
	if ((year = val_digits(&p, 4)) < 0 || !val_expect(&p, '-') ||
	    (mon = val_digits(&p, 2)) < 0 || !val_expect(&p, '-') ||
	    (day = val_digits(&p, 2)) < 0)
		return false;
	if (*p != 'T' && *p != 't')
		return false;
	p++;
	if ((hour = val_digits(&p, 2)) < 0 || !val_expect(&p, ':') ||
	    (min = val_digits(&p, 2)) < 0 || !val_expect(&p, ':') ||
	    (sec = val_digits(&p, 2)) < 0)
		return false;
	if (*p == '.') {
		int n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++)
			n++;
		if (n < 1 || n > 9)
			return false;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;

		if ((oh = val_digits(&p, 2)) < 0 || !val_expect(&p, ':') ||
		    (om = val_digits(&p, 2)) < 0)
			return false;
		if (oh > 23 || om > 59)
			return false;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	if (year < 1900 || year > 9999 || mon < 1 || mon > 12 || day < 1 ||
	    day > pi_days_in_month(year, mon) || hour > 23 || min > 59 ||
	    sec > 59)
		return false;
	t = pi_days_from_civil(year, mon, day) * 86400 +
	    hour * 3600 + min * 60 + sec - off;
	if (t < VAL_T_1900 || t > VAL_T_9999)
		return false;
	if (out != NULL)
		*out = t;
	return true;
}

/* Writes v as exactly n decimal digits at p (v must fit). */
static void
val_put_digits(char *p, int64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

void
val_format_rfc3339(int64_t t, char buf[21])
{
	int64_t days, secs, year;
	int mon, day;

	/* Years outside 0000..9999 do not fit the format: clamp. */
	if (t < VAL_T_0000)
		t = VAL_T_0000;
	if (t > VAL_T_9999)
		t = VAL_T_9999;
	days = t / 86400;
	secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	pi_civil_from_days(days, &year, &mon, &day);
	memcpy(buf, "0000-00-00T00:00:00Z", 21);
	val_put_digits(buf, year, 4);
	val_put_digits(buf + 5, mon, 2);
	val_put_digits(buf + 8, day, 2);
	val_put_digits(buf + 11, secs / 3600, 2);
	val_put_digits(buf + 14, secs / 60 % 60, 2);
	val_put_digits(buf + 17, secs % 60, 2);
}

bool
val_int(const char *s, long long min, long long max, long long *out)
{
	unsigned long long v = 0;
	const char *p = s;
	int neg = 0, n = 0;
	long long r;

	if (s == NULL || min > max)
		return false;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	for (; *p >= '0' && *p <= '9'; p++) {
		if (++n > 19)
			return false;
		/* 19 digits stay below 10^19 < 2^64: no overflow here. */
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (n == 0 || *p != '\0')
		return false;
	if (neg) {
		if (v > (unsigned long long)LLONG_MAX + 1)
			return false;
		r = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN :
		    -(long long)v;
	} else {
		if (v > (unsigned long long)LLONG_MAX)
			return false;
		r = (long long)v;
	}
	if (r < min || r > max)
		return false;
	if (out != NULL)
		*out = r;
	return true;
}

/* The decoder of val_text() and val_utf8(): 1 if s[0..len) is well-formed
 * UTF-8 of at most max_chars code points without NUL and, when controls is
 * 0, without the control characters val_text() refuses. */
static bool
val_utf8_scan(const char *s, size_t len, size_t max_chars, int controls)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, chars = 0;

	if (s == NULL)
		return len == 0;
	while (i < len) {
		unsigned char c = p[i];
		unsigned char lo = 0x80, hi = 0xbf;
		size_t need;
		uint32_t cp;

		if (c < 0x80) {
			if (c == 0)
				return false;
			if (!controls && ((c < 0x20 && c != '\t' &&
			    c != '\n' && c != '\r') || c == 0x7f))
				return false;
			need = 0;
			cp = c;
		} else if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
			if (c == 0xe0)
				lo = 0xa0;      /* no overlongs */
			else if (c == 0xed)
				hi = 0x9f;      /* no surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
			if (c == 0xf0)
				lo = 0x90;      /* no overlongs */
			else if (c == 0xf4)
				hi = 0x8f;      /* nothing above U+10FFFF */
		} else {
			return false;   /* 80..C1 (stray or overlong), F5..FF */
		}
		if (len - i - 1 < need)
			return false;   /* truncated sequence */
		for (size_t k = 1; k <= need; k++) {
			unsigned char cc = p[i + k];

			if (cc < lo || cc > hi)
				return false;
			lo = 0x80;
			hi = 0xbf;
			cp = (cp << 6) | (cc & 0x3f);
		}
		if (!controls && cp >= 0x80 && cp <= 0x9f)
			return false;   /* C1 controls */
		i += need + 1;
		if (++chars > max_chars)
			return false;
	}
	return true;
}

bool
val_text(const char *s, size_t len, size_t max_chars)
{
	return val_utf8_scan(s, len, max_chars, 0);
}

bool
val_utf8(const char *s, size_t len)
{
	return val_utf8_scan(s, len, SIZE_MAX, 1);
}

bool
val_bool(const char *s, bool *out)
{
	if (s == NULL || strcmp(s, "false") == 0) {
		*out = false;
		return true;
	}
	if (strcmp(s, "true") == 0) {
		*out = true;
		return true;
	}
	return false;
}
