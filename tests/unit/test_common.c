/* test_common.c — the shared helpers of common.c: hex, FNV-1a, error names
 * and the calendar arithmetic (days from civil, its inverse, pi_timegm). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "tap.h"

static struct tm
mk_tm(int y, int mon, int d, int h, int mi, int s)
{
	return pi_tm(y, mon, d, h, mi, s);
}

static void
test_digits(void)
{
	int v = -7;

	is_int(pi_digits("2024", 4, &v), 0, "digits: four");
	is_int(v, 2024, "digits: their value");
	is_int(pi_digits("0912x", 2, &v), 0, "digits: only the n asked for");
	is_int(v, 9, "digits: leading zero");
	v = -7;
	is_int(pi_digits("12x4", 4, &v), PI_ERR_INVALID, "digits: a letter");
	is_int(v, -7, "digits: *v untouched when refused");
	is_int(pi_digits("1", 2, &v), PI_ERR_INVALID,
	    "digits: stops at the NUL");
	is_int(pi_digits("-1", 2, &v), PI_ERR_INVALID, "digits: no sign");
	is_int(pi_digits("", 0, &v), 0, "digits: none asked, none read");
	is_int(v, 0, "digits: none is 0");
	is_int(pi_digits("999999999", 9, &v), 0, "digits: nine fit an int");
	is_int(v, 999999999, "digits: nine");
	is_int(pi_digits("1234567890", 10, &v), PI_ERR_INVALID,
	    "digits: ten refused (could overflow)");
}

static void
test_hex(void)
{
	static const unsigned char bytes[] = { 0x00, 0x0f, 0xa5, 0xff };
	char out[2 * sizeof(bytes) + 1];
	int valid = 0, same_as_ctype = 1;

	pi_hex(bytes, sizeof(bytes), out);
	is_str(out, "000fa5ff", "pi_hex writes lower case, NUL-terminated");
	pi_hex(bytes, 0, out);
	is_str(out, "", "pi_hex of nothing is the empty string");

	is_int(pi_hexval('0'), 0, "hexval '0'");
	is_int(pi_hexval('9'), 9, "hexval '9'");
	is_int(pi_hexval('a'), 10, "hexval 'a'");
	is_int(pi_hexval('f'), 15, "hexval 'f'");
	is_int(pi_hexval('A'), 10, "hexval 'A' (upper case accepted)");
	is_int(pi_hexval('F'), 15, "hexval 'F'");
	is_int(pi_hexval('g'), -1, "hexval 'g' refused");
	is_int(pi_hexval('G'), -1, "hexval 'G' refused");
	is_int(pi_hexval('/'), -1, "hexval '/' (below '0') refused");
	is_int(pi_hexval(':'), -1, "hexval ':' (above '9') refused");
	is_int(pi_hexval('@'), -1, "hexval '@' (below 'A') refused");
	is_int(pi_hexval('`'), -1, "hexval '`' (below 'a') refused");
	is_int(pi_hexval('\0'), -1, "hexval NUL refused");
	is_int(pi_hexval(0xe0), -1, "hexval of a high byte refused");
	is_int(pi_hexval(-1), -1, "hexval of EOF refused");
	for (int c = 0; c < 256; c++) {
		int v = pi_hexval(c);

		if (v >= 0)
			valid++;
		if ((v >= 0) != (strchr("0123456789abcdefABCDEF", c) != NULL &&
		    c != 0))
			same_as_ctype = 0;
	}
	is_int(valid, 22, "exactly 22 of the 256 bytes are hex digits");
	ok(same_as_ctype, "the accepted bytes are 0-9, a-f and A-F");
	/* Every byte survives pi_hex then pi_hexval. */
	{
		int all = 1;

		for (int b = 0; b < 256; b++) {
			unsigned char in = (unsigned char)b;
			char h[3];

			pi_hex(&in, 1, h);
			if (pi_hexval(h[0]) * 16 + pi_hexval(h[1]) != b)
				all = 0;
		}
		ok(all, "pi_hexval decodes what pi_hex writes, for every byte");
	}
}

static void
test_calendar(void)
{
	int64_t y;
	int m, d, round = 1, monotone = 1;

	is_int(pi_days_from_civil(1970, 1, 1), 0, "1970-01-01 is day 0");
	is_int(pi_days_from_civil(1969, 12, 31), -1, "1969-12-31 is day -1");
	is_int(pi_days_from_civil(2000, 1, 1), 10957, "2000-01-01");
	is_int(pi_days_from_civil(2000, 2, 29), 11016, "2000-02-29 (leap)");
	is_int(pi_days_from_civil(2000, 3, 1), 11017, "2000-03-01");
	is_int(pi_days_from_civil(1900, 1, 1), -25567, "1900-01-01");
	is_int(pi_days_from_civil(9999, 12, 31), 2932896, "9999-12-31");
	is_int(pi_days_from_civil(0, 1, 1), -719528, "0000-01-01");
	is_int(pi_days_from_civil(0, 3, 1), -719468, "0000-03-01");
	is_int(pi_days_from_civil(-1, 12, 31), -719529,
	    "-0001-12-31 (negative years)");
	is_int(pi_days_from_civil(-400, 1, 1), -719528 - 146097,
	    "-0400-01-01 is one 400-year era before 0000-01-01");
	/* The 1600/2400 rules: a century is leap only when divisible by 400. */
	is_int(pi_days_from_civil(1600, 3, 1) - pi_days_from_civil(1600, 2, 28),
	    2, "1600 has a 29 February");
	is_int(pi_days_from_civil(1700, 3, 1) - pi_days_from_civil(1700, 2, 28),
	    1, "1700 has none");
	is_int(pi_days_from_civil(1900, 3, 1) - pi_days_from_civil(1900, 2, 28),
	    1, "1900 has none");
	is_int(pi_days_from_civil(2100, 3, 1) - pi_days_from_civil(2100, 2, 28),
	    1, "2100 has none");
	is_int(pi_days_from_civil(2400, 3, 1) - pi_days_from_civil(2400, 2, 28),
	    2, "2400 has a 29 February");
	is_int(pi_days_from_civil(2001, 2, 31), pi_days_from_civil(2001, 3, 3),
	    "a day past the month's end counts on (2001-02-31 = 03-03)");

	ok(pi_is_leap(2000) && pi_is_leap(1600) && pi_is_leap(2400) &&
	    pi_is_leap(2024) && pi_is_leap(0) && pi_is_leap(-4) &&
	    pi_is_leap(-400), "leap years");
	ok(!pi_is_leap(1900) && !pi_is_leap(2100) && !pi_is_leap(2023) &&
	    !pi_is_leap(-100) && !pi_is_leap(-1), "common years");
	is_int(pi_days_in_month(2024, 2), 29, "February 2024");
	is_int(pi_days_in_month(2023, 2), 28, "February 2023");
	is_int(pi_days_in_month(1900, 2), 28, "February 1900");
	is_int(pi_days_in_month(2000, 2), 29, "February 2000");
	is_int(pi_days_in_month(2023, 4), 30, "April");
	is_int(pi_days_in_month(2023, 12), 31, "December");
	is_int(pi_days_in_month(2023, 1), 31, "January");

	pi_civil_from_days(0, &y, &m, &d);
	ok(y == 1970 && m == 1 && d == 1, "civil of day 0 is 1970-01-01");
	pi_civil_from_days(11016, &y, &m, &d);
	ok(y == 2000 && m == 2 && d == 29, "civil of day 11016 is 2000-02-29");
	pi_civil_from_days(-719529, &y, &m, &d);
	ok(y == -1 && m == 12 && d == 31, "civil of day -719529 is -0001-12-31");

	/* Round trip over 0000..9999 and some years before: each day once,
	 * each date valid, consecutive days one apart. */
	for (int64_t z = -1000000; z <= 2932896; z++) {
		pi_civil_from_days(z, &y, &m, &d);
		if (m < 1 || m > 12 || d < 1 || d > pi_days_in_month(y, m) ||
		    pi_days_from_civil(y, m, d) != z)
			round = 0;
	}
	ok(round, "civil_from_days and days_from_civil are inverses, "
	    "-0768..9999");
	for (int yy = -800; yy <= 10000 && monotone; yy++)
		for (int mm = 1; mm <= 12; mm++)
			if (pi_days_from_civil(yy, mm, 1) +
			    pi_days_in_month(yy, mm) !=
			    (mm == 12 ? pi_days_from_civil(yy + 1, 1, 1) :
			    pi_days_from_civil(yy, mm + 1, 1)))
				monotone = 0;
	ok(monotone, "each month starts where the previous one ended");
}

static void
test_timegm(void)
{
	struct tm tm;
	int same = 1;

	tm = mk_tm(1970, 1, 1, 0, 0, 0);
	is_int(pi_timegm(&tm), 0, "epoch");
	tm = mk_tm(1969, 12, 31, 23, 59, 59);
	is_int(pi_timegm(&tm), -1, "one second before the epoch is -1, "
	    "not an error");
	tm = mk_tm(2000, 2, 29, 12, 0, 0);
	is_int(pi_timegm(&tm), 951825600, "2000-02-29T12:00:00Z");
	tm = mk_tm(2038, 1, 19, 3, 14, 8);
	is_int(pi_timegm(&tm), 2147483648LL, "2038-01-19T03:14:08Z (past 2^31)");
	tm = mk_tm(1900, 1, 1, 0, 0, 0);
	is_int(pi_timegm(&tm), -2208988800LL, "1900-01-01T00:00:00Z");
	tm = mk_tm(9999, 12, 31, 23, 59, 59);
	is_int(pi_timegm(&tm), 253402300799LL, "9999-12-31T23:59:59Z");
	tm = mk_tm(2024, 5, 1, 12, 0, 60);
	is_int(pi_timegm(&tm), 1714564860, "second 60 is the next minute");
	tm = mk_tm(2024, 2, 30, 0, 0, 0);
	is_int(pi_timegm(&tm), 1709251200, "2024-02-30 is 2024-03-01");
	tm = mk_tm(2024, 13, 1, 0, 0, 0);
	is_int(pi_timegm(&tm), 1735689600, "month 13 is January of the next "
	    "year");
	tm = mk_tm(2024, 0, 1, 0, 0, 0);
	is_int(pi_timegm(&tm), 1701388800, "month 0 is December of the year "
	    "before");
	tm = mk_tm(2024, 5, 1, 12, 0, 0);
	tm.tm_wday = 6;
	tm.tm_yday = 300;
	tm.tm_isdst = 1;
	is_int(pi_timegm(&tm), 1714564800, "tm_wday, tm_yday and tm_isdst are "
	    "ignored");

	/* The same answers as the C library's timegm(), which two back ends
	 * used, under a TZ that mktime() would follow; including the
	 * out-of-range fields the back ends' parsers can pass on. */
	if (setenv("TZ", "America/St_Johns", 1) != 0)
		same = 0;
	tzset();
	for (int yy = 1901; yy <= 2200; yy += 7)
		for (int mm = -1; mm <= 13; mm++)
			for (int dd = 0; dd <= 32; dd += 4)
				for (int ss = 0; ss <= 61; ss += 61) {
					struct tm a = mk_tm(yy, mm, dd, 23,
					    59, ss), b = a;
					time_t want = timegm(&b);

					if (pi_timegm(&a) != (int64_t)want)
						same = 0;
				}
	ok(same, "pi_timegm agrees with timegm() for 1901..2200, "
	    "out-of-range months, days and seconds included");
	tm = mk_tm(2026, 7, 1, 0, 0, 0);
	is_int(pi_timegm(&tm), 1782864000, "does not follow TZ "
	    "(2026-07-01T00:00:00Z)");
}

int
main(void)
{
	test_hex();
	test_digits();
	test_calendar();
	test_timegm();
	is_int(pi_fnv1a("", 0), 2166136261u, "FNV-1a of nothing is the "
	    "offset basis");
	is_int(pi_fnv1a("a", 1), 0xe40c292cu, "FNV-1a of \"a\"");
	is_str(pi_strerror(PI_ERR_EXPIRED), "expired", "pi_strerror names a code");
	is_str(pi_strerror(12345), "unknown error", "and any other number");
	return done_testing();
}
