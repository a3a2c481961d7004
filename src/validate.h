/* validate.h — typed validators for untrusted strings (query, JSON, form).
 *
 * One validator per type, each with explicit bounds, used for every field a
 * client sends; a handler sees a typed value or a clean rejection carrying the
 * message that goes into the VALIDATION_FAILED "details" list. Pure.
 */
#ifndef POLAIMG_VALIDATE_H
#define POLAIMG_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Whether s is a UUID in 8-4-4-4-12 hex form (any case, any version).
 * When canon is non-NULL (37 bytes) the lower-case form is written there. */
bool val_uuid(const char *s, char canon[37]);

/* Index of s in the NULL-terminated list, or -1. Exact, case-sensitive. */
int val_enum(const char *s, const char *const *allowed);

/* Parses an RFC 3339 date-time ("2026-11-20T10:15:00Z", "…+02:00",
 * fractional seconds allowed, 'T' or 't', 'Z' or 'z'). On success stores
 * seconds since the epoch (UTC) and returns true; false if invalid (including
 * impossible dates like Feb 30, or years < 1900 or > 9999). Fractional
 * seconds take 1 to 9 digits and are dropped (the time is rounded down); a
 * leap second (ss = 60) is invalid; the UTC instant after applying the offset
 * must also lie in the years 1900..9999. out may be NULL. */
bool val_rfc3339(const char *s, int64_t *out);

/* Formats t (UTC seconds) as "YYYY-MM-DDTHH:MM:SSZ" into buf (>= 21 bytes).
 * t outside years 0000..9999 is clamped to the nearest end of that range. */
void val_format_rfc3339(int64_t t, char buf[21]);

/* Parses a decimal integer in [min, max] with no sign other than a leading
 * '-', no spaces, no trailing garbage, at most 19 digits: true, or false
 * if invalid.
 * out may be NULL; it is written only on success. */
bool val_int(const char *s, long long min, long long max, long long *out);

/* Whether s (length len) is valid UTF-8 without NUL or control characters
 * (C0 other than \t \n \r, DEL, C1 U+0080..U+009F), and has at most
 * max_chars code points. s may be NULL only when len is 0. */
bool val_text(const char *s, size_t len, size_t max_chars);

/* Whether s (length len, which may include NUL bytes) is well-formed UTF-8
 * (no overlongs, surrogates or code points above U+10FFFF) without any NUL
 * byte. Control characters are left to the field's own validator.
 * s may be NULL only when len is 0. */
bool val_utf8(const char *s, size_t len);

/* Whether s is a boolean: true with *out = true for "true", *out = false
 * for "false" or NULL; false for anything else (*out untouched). */
bool val_bool(const char *s, bool *out);

#endif
