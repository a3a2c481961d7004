/* storage_http.h — the HTTP plumbing shared by the remote storage back ends
 * (storage_s3.c, storage_supabase.c): a bounded byte buffer, the libcurl
 * callbacks that stream an upload from a file descriptor, body sinks that
 * can start over for a retried download, header helpers, and the pause
 * between attempts. See storage_http.c for the design. */
#ifndef POLAIMG_STORAGE_HTTP_H
#define POLAIMG_STORAGE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

/* Attempts of a retried request (see shttp_backoff_ms()). */
#define SHTTP_ATTEMPTS 3
/* The longest "name: value" header line shttp_header_addf() makes. */
#define SHTTP_MAX_HLINE (64 + 4096 + 4)

/* A growing byte buffer with a hard cap of max bytes (set max before the
 * first add; a zeroed struct with max set is an empty buffer). Past the cap
 * it keeps what it has and sets overflow. Always NUL-terminated when p is
 * not NULL. The buffer owns p; shttp_buf_free() releases it. */
struct shttp_buf {
	char *p;
	size_t len;
	size_t cap;
	size_t max;
	int overflow;           /* bytes were dropped (cap reached, or no memory) */
};

/* Appends n bytes of s to b, as many as the cap allows. Returns 0 when all
 * were kept, PI_ERR_TOO_LARGE when some were dropped at the cap
 * (b->overflow is set), PI_ERR_NOMEM when out of memory (b->overflow is
 * set, b keeps its old contents). */
int shttp_buf_add(struct shttp_buf *b, const char *s, size_t n);

/* Empties b, keeping its memory and max; clears overflow. */
void shttp_buf_clear(struct shttp_buf *b);

/* Frees b's memory; b is empty (max kept) and usable again afterwards. */
void shttp_buf_free(struct shttp_buf *b);

/* Appends line (copied by libcurl) to *list, which the caller owns and
 * frees with curl_slist_free_all(). Returns 0, or PI_ERR_NOMEM (*list is
 * then unchanged). */
int shttp_header_add(struct curl_slist **list, const char *line);

/* Appends "name: value" to *list as shttp_header_add() does. Returns 0,
 * PI_ERR_INVALID when the line would not fit SHTTP_MAX_HLINE bytes, or
 * PI_ERR_NOMEM (*list is unchanged on failure). */
int shttp_header_addf(struct curl_slist **list, const char *name,
    const char *value);

/* If the response header line [line, line + n) is "name: value" (name
 * matched without regard to case, name given without the colon), points
 * *val at the value with surrounding blanks and the CRLF trimmed and sets
 * *vlen; returns true. Returns false for another header. Nothing is copied: *val
 * points into line. */
bool shttp_header_value(const char *line, size_t n, const char *name,
    const char **val, size_t *vlen);

/* libcurl's callback types, so that shttp_setup() can take them. */
typedef size_t (*shttp_data_cb)(char *ptr, size_t size, size_t nmemb,
    void *ud);

/* Resets h (curl_easy_reset: the options go, the connection cache stays)
 * and sets what every storage request wants: url, the header list, http and
 * https only, no signals, TCP keep-alive, no redirects, the user agent
 * "polaimg", errbuf (CURL_ERROR_SIZE bytes) for libcurl's messages, and the
 * body and header callbacks with ud. url, hdrs, errbuf and ud stay the
 * caller's and must outlive the transfer. Returns CURLE_OK or the first
 * failure. */
CURLcode shttp_setup(CURL *h, const char *url, struct curl_slist *hdrs,
    char *errbuf, shttp_data_cb on_body, shttp_data_cb on_header, void *ud);

/* libcurl read callback (CURLOPT_READFUNCTION) for an upload streamed from
 * a file descriptor: ud points at the int fd. Retries EINTR; a read error
 * aborts the transfer. */
size_t shttp_read_fd(char *buf, size_t size, size_t nitems, void *ud);

/* libcurl seek callback (CURLOPT_SEEKFUNCTION) for the same upload, so
 * that libcurl can resend the body on a kept-alive connection that turned
 * out to be closed: ud points at the int fd. Only SEEK_SET to a
 * non-negative offset is allowed. */
int shttp_seek_fd(void *ud, curl_off_t offset, int origin);

/* A body sink writing to a file: ud points at a struct shttp_file_sink,
 * whose fd stays the caller's. shttp_file_write() writes all n bytes
 * (retrying EINTR and short writes) and returns 0, or PI_ERR_IO with errno
 * set; shttp_file_rewind() truncates the file to nothing so that a retry
 * can start over, 0 or PI_ERR_IO. */
struct shttp_file_sink {
	int fd;
};
int shttp_file_write(void *ud, const char *buf, size_t n);
int shttp_file_rewind(void *ud);

/* A body sink collecting into memory: ud points at a struct shttp_buf.
 * shttp_mem_write() returns 0, or PI_ERR_TOO_LARGE or PI_ERR_NOMEM when the
 * bytes did not all fit (the cap was reached or memory is short), which
 * stops the transfer;
 * shttp_mem_rewind() empties the buffer and returns 0. */
int shttp_mem_write(void *ud, const char *buf, size_t n);
int shttp_mem_rewind(void *ud);

/* The pause before retry number retry (1: 100 ms, 2 and later: 400 ms). */
long shttp_backoff_ms(int retry);

/* Sleeps ms milliseconds; a signal does not shorten the pause. */
void shttp_sleep_ms(long ms);

/* A monotonic clock in milliseconds (0 if the clock cannot be read). */
long shttp_now_ms(void);

#endif
