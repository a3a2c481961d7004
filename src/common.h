/* common.h — things every polaimg module shares: the error codes.
 *
 * Functions return 0 on success or a negative enum pi_err. The mapping from an
 * error to an HTTP status and a JSON code lives in exactly one place
 * (http_error_for() in http.c); modules below the handlers never speak HTTP.
 */
#ifndef POLAIMG_COMMON_H
#define POLAIMG_COMMON_H

#include <stddef.h>
#include <stdint.h>

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
	PI_ERR_STORAGE_FULL = -15 /* storage has no space (ENOSPC, EROFS) */
};

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void pi_hex(const unsigned char *in, size_t n, char *out);

/* 32-bit FNV-1a of n bytes: the slot of a key in the workers' caches. */
uint32_t pi_fnv1a(const void *data, size_t n);

/* A short English name for an error, for logs. Never NULL. */
const char *pi_strerror(int err);

#define PI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
