/* sigv4.h — AWS Signature Version 4 for S3: presigned URLs and header signing.
 *
 * One signer serves both presigned URLs (handed to clients) and server-side
 * requests (made by storage_s3.c through libcurl). Pure C over OpenSSL: no
 * I/O, the time is an argument, so every output is reproducible and tested
 * against AWS's published examples and the AWS SDK.
 */
#ifndef POLAIMG_SIGV4_H
#define POLAIMG_SIGV4_H

#include <stddef.h>
#include <stdint.h>

struct sigv4_cred {
	const char *access_key_id;
	const char *secret_access_key;
	const char *region;      /* e.g. "us-east-1" */
	const char *service;     /* "s3" */
};

/* Where the bucket lives. endpoint is "" or NULL for AWS
 * (https://s3.<region>.amazonaws.com), else a base URL such as
 * "http://127.0.0.1:9000" or "https://minio.example.org". */
struct sigv4_target {
	const char *endpoint;
	const char *bucket;
	int path_style;          /* 1: <endpoint>/<bucket>/<key>; 0: <bucket>.<host>/<key> */
};

/* RFC 3986 percent-encoding as SigV4 requires: unreserved A-Z a-z 0-9 - _ . ~
 * kept, everything else %XX (upper-case hex); '/' kept when keep_slash.
 * Writes at most outsz bytes including NUL; returns the length, or -1 if it
 * would not fit. */
int sigv4_uri_encode(const char *in, size_t inlen, int keep_slash,
    char *out, size_t outsz);

/* Formats t as the SigV4 timestamp "YYYYMMDDTHHMMSSZ" (17 bytes with NUL). */
void sigv4_amz_date(int64_t t, char out[17]);
/* Parses "YYYYMMDDTHHMMSSZ"; 0 ok, PI_ERR_INVALID invalid. */
int sigv4_parse_amz_date(const char *s, int64_t *t);

/* A presigned URL for method ("GET", "PUT", "HEAD", "DELETE") on key, valid
 * for expires seconds (1..604800) from now. When content_type is non-NULL it
 * becomes a signed header (the client must send exactly it). Returns a
 * malloc'd NUL-terminated URL the caller frees, or NULL on invalid input/OOM.
 * key is 1..1024 bytes, '/' kept, every other byte outside A-Z a-z 0-9 -_.~
 * percent-encoded; keys with a "." or ".." segment are refused (clients
 * would rewrite the path). An empty content_type is refused. */
char *sigv4_presign(const struct sigv4_cred *cred, const struct sigv4_target *tgt,
    const char *method, const char *key, const char *content_type,
    int64_t expires, int64_t now);

/* A header to send with a server-side request. */
struct sigv4_header {
	const char *name;   /* lower-case */
	const char *value;
};

/* Signs a server-side request. payload_sha256_hex is the lower-case hex
 * SHA-256 of the body (or "UNSIGNED-PAYLOAD"); extra headers (e.g.
 * content-type, if-none-match, range, date; names are lower-cased, values
 * trimmed; at most 32) are signed too and the caller sends them itself —
 * host, x-amz-date, x-amz-content-sha256 and authorization are refused there,
 * as is a name given twice or a value with a control character. key NULL or
 * "" addresses the bucket itself ("/" virtual-host, "/<bucket>" path style).
 * query is NULL, "" or an encoded query such as "list-type=2&prefix=cases%2F"
 * or "uploads"; it is normalised (%XX decoded and encoded again, sorted) and
 * the URL carries the normalised form. On success writes the full URL
 * (malloc'd, *url_out), and malloc'd header lines "Name: value" for
 * Authorization, x-amz-date, x-amz-content-sha256 and host into
 * hdr_out[0..3] — the caller frees all five. Returns 0, or PI_ERR_INVALID
 * (invalid input, or memory ran out) with *url_out and hdr_out[] set to
 * NULL. */
int sigv4_sign_request(const struct sigv4_cred *cred,
    const struct sigv4_target *tgt, const char *method, const char *key,
    const char *query, const struct sigv4_header *extra, size_t nextra,
    const char *payload_sha256_hex, int64_t now, char **url_out,
    char *hdr_out[4]);

/* The signing key for (secret, date "YYYYMMDD", region, service) into key.
 * Keys are cached in a small per-process table (keyed by the SHA-256 of the
 * secret, not the secret); safe because workers are single-threaded — not
 * thread-safe. Returns 0, or PI_ERR_INVALID on invalid input. */
int sigv4_signing_key(const struct sigv4_cred *cred, const char *date,
    unsigned char key[32]);
/* Wipes and empties the signing-key cache (tests; secret rotation). */
void sigv4_key_cache_clear(void);

#endif
