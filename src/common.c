/* common.c — names of the shared error codes, for log lines. */
#include "common.h"

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
