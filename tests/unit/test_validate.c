/* test_validate.c — the typed validators: UUIDs, enums, RFC 3339 times,
 * bounded integers, UTF-8 text and booleans, with hostile inputs.
 *
 * The calendar math is checked against known instants (computed with an
 * independent implementation) and, day by day over 1900..9999, against the C
 * library's gmtime_r(); the UTF-8 decoder against a second, differently
 * written decoder over every 1-, 2- and 3-byte input and every 4-byte lead.
 */
#include "common.h"
#include "validate.h"
#include "tap.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
test_uuid(void)
{
	char canon[37];
	static const char *const bad[] = {
		"",
		"0b7f3c2e-1111-4222-8333-94445555666",     /* 35 */
		"0b7f3c2e-1111-4222-8333-9444555566667",   /* 37 */
		"0b7f3c2e11114222833394445555666600000",
		"0b7f3c2e-1111-4222-8333_944455556666",
		"0b7f3c2e-11114-222-8333-944455556666",
		"0b7f3c2g-1111-4222-8333-944455556666",
		"{0b7f3c2e-1111-4222-8333-944455556666}",
		"urn:uuid:0b7f3c2e-1111-4222-8333-944455556666",
		" 0b7f3c2e-1111-4222-8333-944455556666",
		"0b7f3c2e-1111-4222-8333-944455556666 ",
		"0b7f3c2e-1111-4222-8333-94445555666\n",
		"0b7f3c2e-1111-4222-8333-9444555566\xc3\xa9",
		"0b7f3c2e-1111-4222-8333+944455556666",
		"0b7f3c2e--111-4222-8333-944455556666",
		"------------------------------------",
		"0b7f3c2e 1111 4222 8333 944455556666",
	};
	char label[96];

	ok(val_uuid("0b7f3c2e-1111-4222-8333-944455556666", canon),
	    "uuid: lower case");
	is_str(canon, "0b7f3c2e-1111-4222-8333-944455556666",
	    "uuid: lower canon");
	ok(val_uuid("0B7F3C2E-ABCD-EF12-8333-944455556666", canon),
	    "uuid: upper case");
	is_str(canon, "0b7f3c2e-abcd-ef12-8333-944455556666",
	    "uuid: upper canon lowered");
	ok(val_uuid("00000000-0000-0000-0000-000000000000", NULL),
	    "uuid: nil uuid, NULL canon");
	ok(val_uuid("ffffffff-FFFF-ffff-FFFF-ffffffffffff", canon),
	    "uuid: max, mixed case");
	is_str(canon, "ffffffff-ffff-ffff-ffff-ffffffffffff", "uuid: max canon");
	ok(!val_uuid(NULL, canon), "uuid: NULL");
	for (size_t i = 0; i < PI_ARRAY_LEN(bad); i++) {
		memcpy(canon, "untouched", 10);
		snprintf(label, sizeof(label), "uuid: bad %zu refused", i);
		ok(!val_uuid(bad[i], canon), label);
		snprintf(label, sizeof(label), "uuid: bad %zu leaves canon", i);
		is_str(canon, "untouched", label);
	}
	/* Every prefix of a valid UUID, in an exact-size heap copy (ASan
	 * catches a read past the NUL). */
	{
		static const char good[] = "0b7f3c2e-1111-4222-8333-944455556666";
		int bad_prefix = 0;

		for (size_t n = 0; n < sizeof(good) - 1; n++) {
			char *s = malloc(n + 1);

			if (s == NULL)
				break;
			memcpy(s, good, n);
			s[n] = '\0';
			if (val_uuid(s, NULL))
				bad_prefix++;
			free(s);
		}
		is_int(bad_prefix, 0, "uuid: no proper prefix accepted");
	}
}

static void
test_enum(void)
{
	static const char *const sides[] = { "left", "right", "both", NULL };
	static const char *const none[] = { NULL };

	is_int(val_enum("left", sides), 0, "enum: first");
	is_int(val_enum("both", sides), 2, "enum: last");
	is_int(val_enum("Left", sides), -1, "enum: case-sensitive");
	is_int(val_enum("lef", sides), -1, "enum: prefix");
	is_int(val_enum("leftx", sides), -1, "enum: longer");
	is_int(val_enum("", sides), -1, "enum: empty");
	is_int(val_enum(" left", sides), -1, "enum: leading space");
	is_int(val_enum(NULL, sides), -1, "enum: NULL value");
	is_int(val_enum("left", NULL), -1, "enum: NULL list");
	is_int(val_enum("left", none), -1, "enum: empty list");
}

struct tcase {
	const char *s;
	int valid;
	int64_t t;
};

static void
test_rfc3339(void)
{
	static const struct tcase cases[] = {
		{ "1970-01-01T00:00:00Z", 1, 0 },
		{ "2026-11-20T10:15:00Z", 1, 1795169700 },
		{ "2026-11-20t10:15:00z", 1, 1795169700 },
		{ "2026-11-20T12:15:00+02:00", 1, 1795169700 },
		{ "2026-11-20T08:15:00-02:00", 1, 1795169700 },
		{ "2026-11-20T10:15:00-00:00", 1, 1795169700 },
		{ "2026-11-20T10:15:00.999999999Z", 1, 1795169700 },
		{ "2026-11-20T10:15:00.5+00:00", 1, 1795169700 },
		{ "2026-01-01T00:00:00-09:30", 1, 1767259800 },
		{ "2026-01-01T00:00:00+14:00", 1, 1767175200 },
		{ "2000-01-01T00:00:00+23:59", 1, 946598460 },
		{ "2000-02-29T23:59:59Z", 1, 951868799 },
		{ "2024-02-29T12:00:00Z", 1, 1709208000 },
		{ "1969-12-31T23:59:59Z", 1, -1 },
		{ "1969-12-31T23:59:59.9Z", 1, -1 },
		{ "1900-01-01T00:00:00Z", 1, -2208988800LL },
		{ "1900-03-01T00:00:00Z", 1, -2203891200LL },
		{ "2038-01-19T03:14:08Z", 1, 2147483648LL },
		{ "2026-03-29T01:30:00Z", 1, 1774747800 },
		{ "9999-12-31T23:59:59Z", 1, 253402300799LL },
		{ "1900-01-01T01:00:00+01:00", 1, -2208988800LL },
		{ "9999-12-31T22:59:59-01:00", 1, 253402300799LL },

		{ "1900-02-29T00:00:00Z", 0, 0 },   /* 1900 is not leap */
		{ "2100-02-29T00:00:00Z", 0, 0 },
		{ "2023-02-29T00:00:00Z", 0, 0 },
		{ "2026-02-30T00:00:00Z", 0, 0 },
		{ "2026-04-31T00:00:00Z", 0, 0 },
		{ "2026-06-31T00:00:00Z", 0, 0 },
		{ "2026-09-31T00:00:00Z", 0, 0 },
		{ "2026-11-31T00:00:00Z", 0, 0 },
		{ "2026-12-32T00:00:00Z", 0, 0 },
		{ "2026-00-10T00:00:00Z", 0, 0 },
		{ "2026-13-10T00:00:00Z", 0, 0 },
		{ "2026-01-00T00:00:00Z", 0, 0 },
		{ "2026-01-01T24:00:00Z", 0, 0 },
		{ "2026-01-01T23:60:00Z", 0, 0 },
		{ "2026-01-01T23:59:60Z", 0, 0 },   /* leap second refused */
		{ "2016-12-31T23:59:60Z", 0, 0 },   /* even a real one */
		{ "2026-01-01T23:59:61Z", 0, 0 },
		{ "2026-01-01T99:99:99Z", 0, 0 },
		{ "1899-12-31T23:59:59Z", 0, 0 },
		{ "0000-01-01T00:00:00Z", 0, 0 },
		{ "1900-01-01T00:00:00+00:01", 0, 0 },  /* UTC before 1900 */
		{ "9999-12-31T23:59:59-00:01", 0, 0 },  /* UTC after 9999 */
		{ "10000-01-01T00:00:00Z", 0, 0 },
		{ "2026-11-20T10:15:00+24:00", 0, 0 },
		{ "2026-11-20T10:15:00+02:60", 0, 0 },
		{ "2026-11-20T10:15:00+0200", 0, 0 },
		{ "2026-11-20T10:15:00+02", 0, 0 },
		{ "2026-11-20T10:15:00+2:00", 0, 0 },
		{ "2026-11-20T10:15:00", 0, 0 },
		{ "2026-11-20T10:15Z", 0, 0 },
		{ "2026-11-20", 0, 0 },
		{ "2026-11-20 10:15:00Z", 0, 0 },
		{ "2026-11-20_10:15:00Z", 0, 0 },
		{ "2026-11-20T10:15:00Z ", 0, 0 },
		{ " 2026-11-20T10:15:00Z", 0, 0 },
		{ "2026-11-20T10:15:00ZZ", 0, 0 },
		{ "2026-11-20T10:15:00.Z", 0, 0 },
		{ "2026-11-20T10:15:00.1234567890Z", 0, 0 },
		{ "2026-11-20T10:15:00,5Z", 0, 0 },
		{ "2026-11-20T10:15:00.5", 0, 0 },
		{ "2026-1-20T10:15:00Z", 0, 0 },
		{ "2026-11-2T10:15:00Z", 0, 0 },
		{ "2026/11/20T10:15:00Z", 0, 0 },
		{ "20261120T101500Z", 0, 0 },
		{ "+2026-11-20T10:15:00Z", 0, 0 },
		{ "-2026-11-20T10:15:00Z", 0, 0 },
		{ "2026-11-20T10:15:00\xef\xbc\xba", 0, 0 },   /* fullwidth Z */
		{ "\xef\xbc\x92" "026-11-20T10:15:00Z", 0, 0 },  /* fullwidth 2 */
		{ "2026-11-20T10:15:00UTC", 0, 0 },
		{ "2026-11-20T10:15:00GMT+1", 0, 0 },
		{ "2026-11-20T10:15:00-", 0, 0 },
		{ "", 0, 0 },
		{ "T", 0, 0 },
		{ "now", 0, 0 },
		{ "1795169700", 0, 0 },
	};
	char label[128];
	int64_t t;

	for (size_t i = 0; i < PI_ARRAY_LEN(cases); i++) {
		t = 12345;
		snprintf(label, sizeof(label), "rfc3339: \"%s\" %s", cases[i].s,
		    cases[i].valid ? "valid" : "refused");
		is_int(val_rfc3339(cases[i].s, &t), cases[i].valid, label);
		snprintf(label, sizeof(label), "rfc3339: \"%s\" %s", cases[i].s,
		    cases[i].valid ? "seconds" : "out untouched");
		is_int(t, cases[i].valid ? cases[i].t : 12345, label);
	}
	ok(!val_rfc3339(NULL, &t), "rfc3339: NULL");
	ok(val_rfc3339("2026-11-20T10:15:00Z", NULL), "rfc3339: NULL out");

	/* No proper prefix of a valid time is valid, and none is read past its
	 * end (exact-size heap copies under ASan). */
	{
		static const char good[] = "2026-11-20T10:15:00.123+02:00";
		int bad_prefix = 0;

		for (size_t n = 0; n < sizeof(good) - 1; n++) {
			char *s = malloc(n + 1);

			if (s == NULL)
				break;
			memcpy(s, good, n);
			s[n] = '\0';
			if (val_rfc3339(s, &t))
				bad_prefix++;
			free(s);
		}
		is_int(bad_prefix, 0, "rfc3339: no proper prefix accepted");
	}
	/* Every day of every month of a leap and a common year. */
	{
		static const int mdays[12] = {
			31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
		};
		int wrong = 0;

		for (int y = 2023; y <= 2024; y++) {
			for (int m = 1; m <= 12; m++) {
				int last = mdays[m - 1] + (m == 2 && y == 2024);

				for (int d = 1; d <= 31; d++) {
					char s[64];

					snprintf(s, sizeof(s),
					    "%04d-%02d-%02dT00:00:00Z", y, m, d);
					if (val_rfc3339(s, &t) != (d <= last))
						wrong++;
				}
			}
		}
		is_int(wrong, 0, "rfc3339: days per month, leap and common year");
	}
}

/* Walks every day of 1900..9999 at a varying time of day: the formatter
 * must agree with gmtime_r() and the parser must read its output back. */
static void
test_calendar_sweep(void)
{
	int64_t start = -2208988800LL, end = 253402300799LL;
	int fmt_bad = 0, parse_bad = 0, days = 0;

	for (int64_t day = start; day <= end; day += 86400) {
		char buf[21], want[80];
		struct tm tm;
		int64_t t = day + (days * 37LL) % 86400, back;
		time_t tt = (time_t)t;

		days++;
		val_format_rfc3339(t, buf);
		if (gmtime_r(&tt, &tm) == NULL)
			continue;
		snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		if (strcmp(buf, want) != 0) {
			if (!fmt_bad)
				printf("# format %lld: got %s want %s\n",
				    (long long)t, buf, want);
			fmt_bad++;
		}
		if (!val_rfc3339(buf, &back) || back != t) {
			if (!parse_bad)
				printf("# parse %s failed\n", buf);
			parse_bad++;
		}
	}
	ok(days > 2900000, "calendar: swept every day of 1900..9999");
	is_int(fmt_bad, 0, "calendar: format agrees with gmtime_r");
	is_int(parse_bad, 0, "calendar: parse reads format back");
}

static void
test_format(void)
{
	char buf[21];

	val_format_rfc3339(0, buf);
	is_str(buf, "1970-01-01T00:00:00Z", "format: epoch");
	val_format_rfc3339(1795169700, buf);
	is_str(buf, "2026-11-20T10:15:00Z", "format: 2026");
	val_format_rfc3339(-1, buf);
	is_str(buf, "1969-12-31T23:59:59Z", "format: one before epoch");
	val_format_rfc3339(951868799, buf);
	is_str(buf, "2000-02-29T23:59:59Z", "format: leap day");
	val_format_rfc3339(951868800, buf);
	is_str(buf, "2000-03-01T00:00:00Z", "format: day after leap day");
	val_format_rfc3339(-2208988800LL, buf);
	is_str(buf, "1900-01-01T00:00:00Z", "format: 1900");
	val_format_rfc3339(253402300799LL, buf);
	is_str(buf, "9999-12-31T23:59:59Z", "format: end of 9999");
	val_format_rfc3339(253402300800LL, buf);
	is_str(buf, "9999-12-31T23:59:59Z", "format: past 9999 clamps");
	val_format_rfc3339(INT64_MAX, buf);
	is_str(buf, "9999-12-31T23:59:59Z", "format: INT64_MAX clamps");
	val_format_rfc3339(-62167219200LL, buf);
	is_str(buf, "0000-01-01T00:00:00Z", "format: year 0");
	val_format_rfc3339(INT64_MIN, buf);
	is_str(buf, "0000-01-01T00:00:00Z", "format: INT64_MIN clamps");
	val_format_rfc3339(-62135596801LL, buf);
	is_str(buf, "0000-12-31T23:59:59Z", "format: end of year 0");
	is_int((long long)strlen(buf), 20, "format: 20 characters");
}

struct icase {
	const char *s;
	long long min, max;
	int valid;
	long long v;
};

static void
test_int(void)
{
	static const struct icase cases[] = {
		{ "0", 0, 10, 1, 0 },
		{ "-0", 0, 10, 1, 0 },
		{ "7", 0, 10, 1, 7 },
		{ "007", 0, 10, 1, 7 },
		{ "10", 0, 10, 1, 10 },
		{ "11", 0, 10, 0, 0 },
		{ "-1", 0, 10, 0, 0 },
		{ "-5", -5, 5, 1, -5 },
		{ "-6", -5, 5, 0, 0 },
		{ "9223372036854775807", LLONG_MIN, LLONG_MAX, 1, LLONG_MAX },
		{ "-9223372036854775808", LLONG_MIN, LLONG_MAX, 1, LLONG_MIN },
		{ "9223372036854775808", LLONG_MIN, LLONG_MAX, 0, 0 },
		{ "-9223372036854775809", LLONG_MIN, LLONG_MAX, 0, 0 },
		{ "9999999999999999999", LLONG_MIN, LLONG_MAX, 0, 0 },
		{ "-9999999999999999999", LLONG_MIN, LLONG_MAX, 0, 0 },
		{ "18446744073709551616", LLONG_MIN, LLONG_MAX, 0, 0 },
		{ "18446744073709551617", LLONG_MIN, LLONG_MAX, 0, 0 },
		{ "0000000000000000001", 0, 10, 1, 1 },     /* 19 digits */
		{ "00000000000000000001", 0, 10, 0, 0 },    /* 20 digits */
		{ "", 0, 10, 0, 0 },
		{ "-", 0, 10, 0, 0 },
		{ "--1", -10, 10, 0, 0 },
		{ "+1", 0, 10, 0, 0 },
		{ " 1", 0, 10, 0, 0 },
		{ "1 ", 0, 10, 0, 0 },
		{ "1\n", 0, 10, 0, 0 },
		{ "1a", 0, 10, 0, 0 },
		{ "0x10", 0, 100, 0, 0 },
		{ "1e3", 0, 10000, 0, 0 },
		{ "1.0", 0, 10, 0, 0 },
		{ "1,000", 0, 10000, 0, 0 },
		{ "1-", 0, 10, 0, 0 },
		{ "\xd9\xa3", 0, 10, 0, 0 },   /* Arabic-Indic digit three */
		{ "5", 10, 0, 0, 0 },          /* empty range */
	};
	char label[96];
	long long v;

	for (size_t i = 0; i < PI_ARRAY_LEN(cases); i++) {
		v = 4242;
		snprintf(label, sizeof(label), "int: \"%s\" in [%lld, %lld] %s",
		    cases[i].s, cases[i].min, cases[i].max,
		    cases[i].valid ? "valid" : "refused");
		is_int(val_int(cases[i].s, cases[i].min, cases[i].max, &v),
		    cases[i].valid, label);
		snprintf(label, sizeof(label), "int: \"%s\" %s", cases[i].s,
		    cases[i].valid ? "value" : "out untouched");
		is_int(v, cases[i].valid ? cases[i].v : 4242, label);
	}
	ok(!val_int(NULL, 0, 10, &v), "int: NULL");
	ok(val_int("3", 0, 10, NULL), "int: NULL out");
	/* A long run of digits is refused without overflow (UBSan). */
	{
		char big[4096];

		memset(big, '9', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		ok(!val_int(big, LLONG_MIN, LLONG_MAX, &v), "int: 4095 digits");
	}
}

/* A second UTF-8 decoder, written differently from val_text(): decode by the
 * lead byte's length, then refuse overlongs, surrogates and values past
 * U+10FFFF by value. Returns the code point count, or -1. */
static long
ref_utf8(const unsigned char *s, size_t len)
{
	static const uint32_t min_for_len[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	size_t i = 0;
	long n = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t l;
		uint32_t cp;

		if (c < 0x80) {
			l = 1;
			cp = c;
		} else if ((c & 0xe0) == 0xc0) {
			l = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			l = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			l = 4;
			cp = c & 0x07;
		} else {
			return -1;
		}
		if (i + l > len)
			return -1;
		for (size_t k = 1; k < l; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min_for_len[l] || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		if ((cp < 0x20 && cp != 9 && cp != 10 && cp != 13) ||
		    (cp >= 0x7f && cp <= 0x9f))
			return -1;
		i += l;
		n++;
	}
	return n;
}

/* val_utf8: what a client's text field must be — no NUL anywhere (also
 * not in the middle, where a C string would end), no malformed UTF-8. */
static void
test_utf8(void)
{
	static const struct { const char *s; size_t len; int ok; const char *what; } t[] = {
		{ "visible", 7, 1, "plain ASCII" },
		{ "", 0, 1, "empty" },
		{ "A\0B", 3, 0, "NUL in the middle" },
		{ "visible\0hidden", 14, 0, "NUL before hidden text" },
		{ "A\0", 2, 0, "trailing NUL" },
		{ "tab\there\x01", 9, 1, "controls left to the field's validator" },
		{ "caf\xc3\xa9", 5, 1, "two-byte sequence" },
		{ "\xf0\x9f\x91\x81", 4, 1, "four-byte sequence (U+1F441)" },
		{ "\xc0\x80", 2, 0, "overlong NUL (C0 80)" },
		{ "\xc1\xbf", 2, 0, "overlong two-byte" },
		{ "\xe0\x80\xaf", 3, 0, "overlong three-byte '/'" },
		{ "\xf0\x80\x80\xaf", 4, 0, "overlong four-byte" },
		{ "\xed\xa0\x80", 3, 0, "surrogate U+D800" },
		{ "\xed\xbf\xbf", 3, 0, "surrogate U+DFFF" },
		{ "\xf4\x90\x80\x80", 4, 0, "U+110000, above U+10FFFF" },
		{ "\xf5\x80\x80\x80", 4, 0, "lead byte F5" },
		{ "\xc3", 1, 0, "truncated sequence" },
		{ "\x80", 1, 0, "stray continuation byte" },
		{ "\xff", 1, 0, "byte FF" },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		is_int(val_utf8(t[i].s, t[i].len), t[i].ok, t[i].what);
	is_int(val_utf8(NULL, 0), 1, "utf8: NULL with length 0");
	is_int(val_utf8(NULL, 1), 0, "utf8: NULL with length 1");
	is_int(val_text("A\0B", 3, 10), 0, "text: NUL in the middle refused");
}

static void
test_text_exhaustive(void)
{
	unsigned char b[4];
	long mism = 0;

	/* All 1- and 2-byte strings. */
	for (unsigned x = 0; x < 256; x++) {
		b[0] = (unsigned char)x;
		if (val_text((char *)b, 1, 10) != (ref_utf8(b, 1) >= 0))
			mism++;
	}
	for (unsigned x = 0; x < 65536; x++) {
		b[0] = (unsigned char)(x >> 8);
		b[1] = (unsigned char)x;
		if (val_text((char *)b, 2, 10) != (ref_utf8(b, 2) >= 0))
			mism++;
	}
	is_int(mism, 0, "text: every 1- and 2-byte string agrees");
	/* All 3-byte strings whose lead byte starts a multi-byte sequence. */
	mism = 0;
	for (unsigned x = 0xc0 << 16; x < (1u << 24); x++) {
		b[0] = (unsigned char)(x >> 16);
		b[1] = (unsigned char)(x >> 8);
		b[2] = (unsigned char)x;
		if (val_text((char *)b, 3, 10) != (ref_utf8(b, 3) >= 0))
			mism++;
	}
	is_int(mism, 0, "text: every 3-byte string from C0 on agrees");
	/* 4-byte strings: every lead and second byte, sampled tails. */
	mism = 0;
	for (unsigned x = 0xf0 << 8; x < 0x10000; x++) {
		for (unsigned t = 0; t < 256; t += 5) {
			b[0] = (unsigned char)(x >> 8);
			b[1] = (unsigned char)x;
			b[2] = (unsigned char)(0x80 + (t & 0x3f));
			b[3] = (unsigned char)t;
			if (val_text((char *)b, 4, 10) !=
			    (ref_utf8(b, 4) >= 0))
				mism++;
		}
	}
	is_int(mism, 0, "text: 4-byte strings agree");
	/* Every code point, encoded: refused exactly when it is a surrogate or
	 * a control character. */
	mism = 0;
	for (uint32_t cp = 0; cp <= 0x10ffff; cp++) {
		size_t n;
		int want;

		if (cp < 0x80) {
			b[0] = (unsigned char)cp;
			n = 1;
		} else if (cp < 0x800) {
			b[0] = (unsigned char)(0xc0 | cp >> 6);
			b[1] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			b[0] = (unsigned char)(0xe0 | cp >> 12);
			b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
			b[2] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			b[0] = (unsigned char)(0xf0 | cp >> 18);
			b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
			b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
			b[3] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		want = !((cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp < 0x20 && cp != 9 && cp != 10 && cp != 13) ||
		    (cp >= 0x7f && cp <= 0x9f));
		if (val_text((char *)b, n, 1) != want)
			mism++;
	}
	is_int(mism, 0, "text: every code point encoded");
}

struct xcase {
	const char *s;
	size_t len;     /* 0: strlen */
	size_t max;
	int valid;
	const char *what;
};

static void
test_text(void)
{
	static const struct xcase cases[] = {
		{ "hello", 0, 5, 1, "ASCII at the limit" },
		{ "hello", 0, 4, 0, "ASCII over the limit" },
		{ "line1\r\nline2\ttab", 0, 100, 1, "CR LF TAB" },
		{ "caf\xc3\xa9", 0, 4, 1, "2-byte counts once" },
		{ "\xc3\xa9\xc3\xa9\xc3\xa9", 0, 3, 1, "three e-acute, max 3" },
		{ "\xc3\xa9\xc3\xa9\xc3\xa9", 0, 2, 0, "three e-acute, max 2" },
		{ "\xe2\x82\xac", 0, 1, 1, "euro sign" },
		{ "\xf0\x9f\x91\x81", 0, 1, 1, "4-byte eye emoji" },
		{ "\xf4\x8f\xbf\xbf", 0, 1, 1, "U+10FFFF" },
		{ "\xed\x9f\xbf", 0, 1, 1, "U+D7FF" },
		{ "\xee\x80\x80", 0, 1, 1, "U+E000" },
		{ "\xef\xbf\xbf", 0, 1, 1, "U+FFFF" },
		{ "\xc2\xa0", 0, 1, 1, "U+00A0" },
		{ "a\0b", 3, 10, 0, "embedded NUL" },
		{ "\0", 1, 10, 0, "lone NUL" },
		{ "a\x01", 0, 10, 0, "SOH" },
		{ "\x1b[2J", 0, 10, 0, "ESC" },
		{ "\x7f", 0, 10, 0, "DEL" },
		{ "\x0b", 0, 10, 0, "VT" },
		{ "\x0c", 0, 10, 0, "FF" },
		{ "\xc2\x80", 0, 10, 0, "C1 U+0080" },
		{ "\xc2\x85", 0, 10, 0, "C1 NEL" },
		{ "\xc2\x9b", 0, 10, 0, "C1 CSI" },
		{ "\xc2\x9f", 0, 10, 0, "C1 U+009F" },
		{ "\xc0\x80", 0, 10, 0, "overlong NUL" },
		{ "\xc0\xaf", 0, 10, 0, "overlong slash (2)" },
		{ "\xc1\xbf", 0, 10, 0, "overlong C1 lead" },
		{ "\xe0\x80\xaf", 0, 10, 0, "overlong slash (3)" },
		{ "\xe0\x9f\xbf", 0, 10, 0, "overlong U+07FF" },
		{ "\xf0\x80\x80\xaf", 0, 10, 0, "overlong slash (4)" },
		{ "\xf0\x8f\xbf\xbf", 0, 10, 0, "overlong U+FFFF" },
		{ "\xed\xa0\x80", 0, 10, 0, "surrogate U+D800" },
		{ "\xed\xbf\xbf", 0, 10, 0, "surrogate U+DFFF" },
		{ "\xed\xa0\xbd\xed\xb2\x81", 0, 10, 0, "CESU-8 pair" },
		{ "\xf4\x90\x80\x80", 0, 10, 0, "U+110000" },
		{ "\xf5\x80\x80\x80", 0, 10, 0, "F5 lead" },
		{ "\xf8\x88\x80\x80\x80", 0, 10, 0, "5-byte form" },
		{ "\xfc\x84\x80\x80\x80\x80", 0, 10, 0, "6-byte form" },
		{ "\xfe", 0, 10, 0, "FE" },
		{ "\xff", 0, 10, 0, "FF byte" },
		{ "\x80", 0, 10, 0, "stray continuation" },
		{ "a\xbf" "b", 0, 10, 0, "stray continuation inside" },
		{ "\xc3", 0, 10, 0, "truncated 2-byte at end" },
		{ "\xe2\x82", 0, 10, 0, "truncated 3-byte at end" },
		{ "\xf0\x9f\x91", 0, 10, 0, "truncated 4-byte at end" },
		{ "\xc3\x28", 0, 10, 0, "bad continuation" },
		{ "\xe2\x28\xa1", 0, 10, 0, "bad 2nd of 3" },
		{ "\xe2\x82\x28", 0, 10, 0, "bad 3rd of 3" },
		{ "\xf0\x9f\x91\x28", 0, 10, 0, "bad 4th of 4" },
		{ "\xe2\x82\xac", 2, 10, 0, "len cuts a sequence" },
		{ "ab\xff", 2, 10, 1, "len stops before bad byte" },
		{ "", 0, 0, 1, "empty, max 0" },
		{ "a", 0, 0, 0, "one char, max 0" },
	};
	char label[96];

	for (size_t i = 0; i < PI_ARRAY_LEN(cases); i++) {
		size_t len = cases[i].len ? cases[i].len : strlen(cases[i].s);

		snprintf(label, sizeof(label), "text: %s %s", cases[i].what,
		    cases[i].valid ? "accepted" : "refused");
		is_int(val_text(cases[i].s, len, cases[i].max), cases[i].valid,
		    label);
	}
	ok(val_text(NULL, 0, 10), "text: NULL with len 0");
	ok(!val_text(NULL, 1, 10), "text: NULL with len 1");
	/* A 1 MiB valid string; the count bound at exactly its length. */
	{
		size_t n = 1 << 20;
		char *big = malloc(n);

		if (big != NULL) {
			for (size_t i = 0; i < n; i += 2)
				memcpy(big + i, "\xc3\xa9", 2);
			ok(val_text(big, n, n / 2), "text: 1 MiB at the bound");
			ok(!val_text(big, n, n / 2 - 1),
			    "text: 1 MiB one over the bound");
			big[n - 1] = '\x01';
			ok(!val_text(big, n, n), "text: bad last byte found");
			free(big);
		} else {
			ok(0, "text: allocation");
		}
	}
	test_text_exhaustive();
}

/* val_bool as 1 (true), 0 (false) or -1 (not a boolean). */
static int
tri(const char *s)
{
	bool b;

	return val_bool(s, &b) ? b : -1;
}

static void
test_bool(void)
{
	is_int(tri("true"), 1, "bool: true");
	is_int(tri("false"), 0, "bool: false");
	is_int(tri(NULL), 0, "bool: NULL is false");
	is_int(tri("TRUE"), -1, "bool: TRUE");
	is_int(tri("True"), -1, "bool: True");
	is_int(tri("1"), -1, "bool: 1");
	is_int(tri("0"), -1, "bool: 0");
	is_int(tri("yes"), -1, "bool: yes");
	is_int(tri(""), -1, "bool: empty");
	is_int(tri("true "), -1, "bool: trailing space");
	is_int(tri(" false"), -1, "bool: leading space");
	is_int(tri("truex"), -1, "bool: longer");
	is_int(tri("tru"), -1, "bool: prefix");
}

int
main(void)
{
	test_uuid();
	test_enum();
	test_rfc3339();
	test_format();
	test_calendar_sweep();
	test_int();
	test_text();
	test_utf8();
	test_bool();
	return done_testing();
}
