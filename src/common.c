/* common.c — names of the shared error codes, for log lines, and the small
 * pure helpers of common.h (hex, FNV-1a, calendar arithmetic). Nothing here
 * allocates, does I/O or reads the environment. */
#include "common.h"

#include <string.h>

const char *
pi_strerror(int err)
{
	switch (err) {
	case PI_OK: return "ok";
	case PI_ERR_NOMEM: return "out of memory";
	case PI_ERR_INVALID: return "invalid input";
	case PI_ERR_TOO_LARGE: return "too large";
	case PI_ERR_UNSUPPORTED: return "unsupported media type";
	case PI_ERR_UNPROCESSABLE: return "unprocessable image";
	case PI_ERR_STORAGE: return "storage failure";
	case PI_ERR_DB: return "database failure";
	case PI_ERR_NOT_FOUND: return "not found";
	case PI_ERR_FORBIDDEN: return "forbidden";
	case PI_ERR_CONFLICT: return "conflict";
	case PI_ERR_INTERNAL: return "internal error";
	case PI_ERR_IO: return "I/O error";
	case PI_ERR_EXISTS: return "already exists";
	case PI_ERR_EXPIRED: return "expired";
	case PI_ERR_STORAGE_FULL: return "storage full or read-only";
	case PI_ERR_BUSY: return "busy";
	case PI_ERR_ANSWERED: return "answered";
	default: return "unknown error";
	}
}

void
pi_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

uint32_t
pi_fnv1a(const void *data, size_t n)
{
	const unsigned char *p = data;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

int
pi_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
pi_digits(const char *s, size_t n, int *v)
{
	int x = 0;

	if (n > 9)
		return PI_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PI_ERR_INVALID;
		x = x * 10 + (s[i] - '0');
	}
	*v = x;
	return 0;
}

bool
pi_is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
pi_days_in_month(int64_t y, int m)
{
	static const int days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};

	if (m == 2 && pi_is_leap(y))
		return 29;
	return days[m - 1];
}

/* The year is counted from March, so that the leap day is the last day of
 * a year; an era is 400 years = 146097 days; 719468 is the day number of
 * 1970-01-01 counted from 0000-03-01. */
int64_t
pi_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (int64_t)(m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
pi_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

struct tm
pi_tm(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	tm.tm_isdst = -1;
	return tm;
}

int64_t
pi_timegm(const struct tm *tm)
{
	int64_t y = (int64_t)tm->tm_year + 1900, mon = tm->tm_mon;

	/* Carry the month into the year, flooring for negative months. */
	y += (mon >= 0 ? mon : mon - 11) / 12;
	mon -= ((mon >= 0 ? mon : mon - 11) / 12) * 12;
	return (pi_days_from_civil(y, (int)mon + 1, 1) + tm->tm_mday - 1) *
	    86400 + (int64_t)tm->tm_hour * 3600 + (int64_t)tm->tm_min * 60 +
	    tm->tm_sec;
}
