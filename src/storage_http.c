/* storage_http.c — the HTTP plumbing the remote storage back ends share.
 *
 * storage_s3.c and storage_supabase.c speak different protocols (SigV4 and
 * XML errors there, a service key and JSON errors here) but move bytes the
 * same way: one libcurl easy handle per worker, reset before each request
 * so that its connection cache survives; uploads streamed from the temp
 * file's descriptor by a read callback, with a seek callback so that
 * libcurl can resend the body when a kept-alive connection was closed
 * under it; downloads handed to a sink as they arrive, where a sink that
 * can start over (a file is truncated, a memory buffer emptied) makes a
 * retried download possible; error answers kept in a bounded buffer for
 * the log. This file holds those pieces and nothing protocol-specific:
 * what to sign, which status means what and when to retry stay with each
 * back end, which decides its own policy from the same few parts (the
 * attempt count and the pause between attempts are shared so that the two
 * back ends cannot drift apart).
 *
 * Nothing here logs: the callers know which key, method and back end a
 * failure concerns, and what must never be logged (URLs carry signatures,
 * headers carry service keys).
 */
#include "storage_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static const long shttp_backoff[SHTTP_ATTEMPTS - 1] = { 100, 400 };

/* ------------------------------------------------------------------------ */
/* The bounded buffer. */

int
shttp_buf_add(struct shttp_buf *b, const char *s, size_t n)
{
	size_t want;
	char *np;
	int dropped = 0;

	if (n > b->max - b->len) {
		n = b->max - b->len;
		b->overflow = 1;
		dropped = PI_ERR_TOO_LARGE;
	}
	if (b->len + n + 1 > b->cap) {
		want = b->cap != 0 ? b->cap : 1024;
		while (want < b->len + n + 1)
			want *= 2;
		if (want > b->max + 1)
			want = b->max + 1;
		np = realloc(b->p, want);
		if (np == NULL) {
			b->overflow = 1;
			return PI_ERR_NOMEM;
		}
		b->p = np;
		b->cap = want;
	}
	if (n > 0)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return dropped;
}

void
shttp_buf_clear(struct shttp_buf *b)
{
	b->len = 0;
	b->overflow = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

void
shttp_buf_free(struct shttp_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->overflow = 0;
}

/* ------------------------------------------------------------------------ */
/* Headers. */

int
shttp_header_add(struct curl_slist **list, const char *line)
{
	struct curl_slist *nl;

	nl = curl_slist_append(*list, line);
	if (nl == NULL)
		return PI_ERR_NOMEM;
	*list = nl;
	return 0;
}

int
shttp_header_addf(struct curl_slist **list, const char *name,
    const char *value)
{
	char line[SHTTP_MAX_HLINE];
	int n;

	n = snprintf(line, sizeof(line), "%s: %s", name, value);
	if (n < 0 || (size_t)n >= sizeof(line))
		return PI_ERR_INVALID;
	return shttp_header_add(list, line);
}

bool
shttp_header_value(const char *line, size_t n, const char *name,
    const char **val, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *v;
	size_t vn;

	if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return false;
	v = line + nl + 1;
	vn = n - nl - 1;
	while (vn > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vn--;
	}
	while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n' ||
	    v[vn - 1] == ' ' || v[vn - 1] == '\t'))
		vn--;
	*val = v;
	*vlen = vn;
	return true;
}

/* ------------------------------------------------------------------------ */
/* The handle and its callbacks. */

#define SHTTP_SETOPT(h, opt, val) do { \
	if (cc == CURLE_OK) \
		cc = curl_easy_setopt((h), (opt), (val)); \
} while (0)

CURLcode
shttp_setup(CURL *h, const char *url, struct curl_slist *hdrs, char *errbuf,
    shttp_data_cb on_body, shttp_data_cb on_header, void *ud)
{
	CURLcode cc = CURLE_OK;

	curl_easy_reset(h);
	SHTTP_SETOPT(h, CURLOPT_URL, url);
	SHTTP_SETOPT(h, CURLOPT_HTTPHEADER, hdrs);
	SHTTP_SETOPT(h, CURLOPT_PROTOCOLS_STR, "http,https");
	SHTTP_SETOPT(h, CURLOPT_NOSIGNAL, 1L);
	SHTTP_SETOPT(h, CURLOPT_TCP_KEEPALIVE, 1L);
	SHTTP_SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
	SHTTP_SETOPT(h, CURLOPT_USERAGENT, "polaimg");
	SHTTP_SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
	SHTTP_SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
	SHTTP_SETOPT(h, CURLOPT_WRITEDATA, ud);
	SHTTP_SETOPT(h, CURLOPT_HEADERFUNCTION, on_header);
	SHTTP_SETOPT(h, CURLOPT_HEADERDATA, ud);
	return cc;
}

size_t
shttp_read_fd(char *buf, size_t size, size_t nitems, void *ud)
{
	const int *fd = ud;
	ssize_t n;

	do
		n = read(*fd, buf, size * nitems);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return CURL_READFUNC_ABORT;
	return (size_t)n;
}

int
shttp_seek_fd(void *ud, curl_off_t offset, int origin)
{
	const int *fd = ud;

	if (origin != SEEK_SET || offset < 0 ||
	    lseek(*fd, (off_t)offset, SEEK_SET) != (off_t)offset)
		return CURL_SEEKFUNC_FAIL;
	return CURL_SEEKFUNC_OK;
}

/* ------------------------------------------------------------------------ */
/* Sinks. */

int
shttp_file_write(void *ud, const char *buf, size_t n)
{
	const struct shttp_file_sink *f = ud;

	while (n > 0) {
		ssize_t w = write(f->fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return PI_ERR_IO;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

int
shttp_file_rewind(void *ud)
{
	const struct shttp_file_sink *f = ud;

	if (ftruncate(f->fd, 0) != 0 || lseek(f->fd, 0, SEEK_SET) != 0)
		return PI_ERR_IO;
	return 0;
}

int
shttp_mem_write(void *ud, const char *buf, size_t n)
{
	return shttp_buf_add(ud, buf, n);
}

int
shttp_mem_rewind(void *ud)
{
	shttp_buf_clear(ud);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Time. */

long
shttp_backoff_ms(int retry)
{
	if (retry < 1)
		retry = 1;
	if (retry > SHTTP_ATTEMPTS - 1)
		retry = SHTTP_ATTEMPTS - 1;
	return shttp_backoff[retry - 1];
}

void
shttp_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

long
shttp_now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
