/* spool.c — see spool.h. */
#include "spool.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* CRC-32 (IEEE 802.3, reflected), bit by bit: the spool is written only
 * when the database is away, so speed does not matter here. */
static uint32_t
spool_crc32(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

static void
put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

size_t
spool_encode(const struct auditbuf *b, size_t i, unsigned char *out)
{
	unsigned char *p = out + SPOOL_HDR;
	uint64_t t = (uint64_t)auditbuf_time(b, i);
	uint32_t mask = 0;
	size_t plen;

	for (int k = 0; k < 8; k++)
		p[k] = (unsigned char)(t >> (8 * k));
	p += 12;
	for (int f = 0; f < AUDIT_NFIELDS; f++) {
		const char *v = auditbuf_field(b, i, f);
		size_t n = v != NULL ? strlen(v) : 0;

		if (v == NULL)
			mask |= 1u << f;
		if (n > AUDIT_FIELD_MAX - 1)
			n = AUDIT_FIELD_MAX - 1;
		*p++ = (unsigned char)n;
		memcpy(p, v != NULL ? v : "", n);
		p += n;
	}
	put32(out + SPOOL_HDR + 8, mask);
	plen = (size_t)(p - (out + SPOOL_HDR));
	memcpy(out, SPOOL_MAGIC, 4);
	put32(out + 4, (uint32_t)plen);
	put32(out + 8, spool_crc32(out + SPOOL_HDR, plen));
	return SPOOL_HDR + plen;
}

int
spool_decode(const unsigned char *p, size_t len, size_t *used,
    struct spool_row *row)
{
	const unsigned char *q, *end;
	uint32_t plen, mask;
	uint64_t t = 0;

	if (len < 4)
		return memcmp(p, SPOOL_MAGIC, len) == 0 ? SPOOL_SHORT : SPOOL_BAD;
	if (memcmp(p, SPOOL_MAGIC, 4) != 0)
		return SPOOL_BAD;
	if (len < SPOOL_HDR)
		return SPOOL_SHORT;
	plen = get32(p + 4);
	if (plen < 12 + AUDIT_NFIELDS || plen > SPOOL_PAYLOAD_MAX)
		return SPOOL_BAD;
	if (len - SPOOL_HDR < plen)
		return SPOOL_SHORT;
	q = p + SPOOL_HDR;
	end = q + plen;
	if (spool_crc32(q, plen) != get32(p + 8))
		return SPOOL_BAD;
	for (int k = 0; k < 8; k++)
		t |= (uint64_t)q[k] << (8 * k);
	mask = get32(q + 8);
	if (mask >> AUDIT_NFIELDS != 0)
		return SPOOL_BAD;
	q += 12;
	if (row != NULL) {
		memset(&row->ev, 0, sizeof(row->ev));
		row->unix_us = (int64_t)t;
	}
	for (int f = 0; f < AUDIT_NFIELDS; f++) {
		size_t n;

		if (q >= end || (n = *q++) > AUDIT_FIELD_MAX - 1 ||
		    n > (size_t)(end - q))
			return SPOOL_BAD;
		for (size_t k = 0; k < n; k++)
			if (q[k] < 0x20 || q[k] >= 0x7f)
				return SPOOL_BAD;
		if (row != NULL) {
			const char **slot[AUDIT_NFIELDS] = { &row->ev.user_id,
				&row->ev.role, &row->ev.action, &row->ev.image_id,
				&row->ev.case_id, &row->ev.variant,
				&row->ev.outcome, &row->ev.remote_addr,
				&row->ev.request_id };

			memcpy(row->f[f], q, n);
			row->f[f][n] = '\0';
			*slot[f] = (mask & (1u << f)) ? NULL : row->f[f];
		}
		q += n;
	}
	if (q != end)
		return SPOOL_BAD;
	*used = SPOOL_HDR + plen;
	return SPOOL_OK;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct spool_entry *x = a, *y = b;

	if (x->unix_us != y->unix_us)
		return x->unix_us < y->unix_us ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

int
spool_index(const unsigned char *buf, size_t len, struct spool_entry **out,
    size_t *n, size_t *damaged)
{
	struct spool_entry *v = NULL;
	size_t cap = 0, off = 0;
	int skipping = 0;
	struct spool_row row;

	*out = NULL;
	*n = *damaged = 0;
	while (off < len) {
		size_t used = 0;
		int rc = spool_decode(buf + off, len - off, &used, &row);

		if (rc != SPOOL_OK) {
			/* A torn or corrupt stretch: counted once, then the
			 * next magic that starts a valid record. */
			if (!skipping)
				(*damaged)++;
			skipping = 1;
			off++;
			continue;
		}
		skipping = 0;
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct spool_entry *nv = realloc(v, nc * sizeof(*v));

			if (nv == NULL) {
				free(v);
				*n = 0;
				return PI_ERR_NOMEM;
			}
			v = nv;
			cap = nc;
		}
		v[*n].unix_us = row.unix_us;
		v[*n].off = off;
		v[*n].len = used;
		(*n)++;
		off += used;
	}
	if (*n > 1)
		qsort(v, *n, sizeof(*v), entry_cmp);
	*out = v;
	return 0;
}

/* fsyncs the directory that holds path (a new name is durable then). */
static int
sync_dir(const char *path)
{
	char d[PATH_MAX];
	int fd, rc;

	if (snprintf(d, sizeof(d), "%s", path) >= (int)sizeof(d))
		return -1;
	fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	(void)close(fd);
	return rc;
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int
spool_append(const char *path, const struct auditbuf *b)
{
	unsigned char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int fd, rc = PI_ERR_IO, saved;

	if (b->n == 0)
		return 0;
	buf = malloc(b->n * SPOOL_REC_MAX);
	if (buf == NULL)
		return PI_ERR_NOMEM;
	for (size_t i = 0; i < b->n; i++)
		len += spool_encode(b, i, buf + len);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	while (flock(fd, LOCK_EX) != 0)
		if (errno != EINTR)
			goto out;
	if (fstat(fd, &st) != 0 || write_all(fd, buf, len) != 0 ||
	    fsync(fd) != 0)
		goto out;
	/* A new file: its directory entry must be durable too. */
	rc = st.st_size == 0 && sync_dir(path) != 0 ? PI_ERR_IO : 0;
out:
	saved = errno;
	if (fd >= 0)
		(void)close(fd);       /* releases the lock */
	free(buf);
	errno = saved;
	return rc;
}

/* Maps fd's len bytes (len > 0) read-only: the pointer, or NULL. */
static unsigned char *
map_file(int fd, size_t len)
{
	void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);

	return m == MAP_FAILED ? NULL : m;
}

int
spool_count(const char *path, size_t *n, size_t *damaged)
{
	struct spool_entry *v = NULL;
	unsigned char *m = NULL;
	struct stat st;
	int fd, rc = PI_ERR_IO, saved;

	*n = *damaged = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : PI_ERR_IO;
	while (flock(fd, LOCK_SH) != 0)
		if (errno != EINTR)
			goto out;
	if (fstat(fd, &st) != 0)
		goto out;
	if (st.st_size == 0) {
		rc = 0;
		goto out;
	}
	m = map_file(fd, (size_t)st.st_size);
	if (m == NULL)
		goto out;
	rc = spool_index(m, (size_t)st.st_size, &v, n, damaged);
	free(v);
out:
	saved = errno;
	if (m != NULL)
		(void)munmap(m, (size_t)st.st_size);
	(void)close(fd);
	errno = saved;
	return rc;
}

int
spool_nonempty(const char *path, bool *nonempty)
{
	struct stat st;

	*nonempty = false;
	if (stat(path, &st) != 0)
		return errno == ENOENT ? 0 : PI_ERR_IO;
	*nonempty = st.st_size > 0;
	return 0;
}

int
spool_take(const char *path, int *fd, unsigned char **map, size_t *len)
{
	struct stat st;
	int f;

	*fd = -1;
	*map = NULL;
	*len = 0;
	f = open(path, O_RDWR | O_CLOEXEC);
	if (f < 0)
		return errno == ENOENT ? 0 : PI_ERR_IO;
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int busy = errno == EWOULDBLOCK || errno == EINTR;

		(void)close(f);
		return busy ? 0 : PI_ERR_IO;
	}
	if (fstat(f, &st) != 0) {
		(void)close(f);
		return PI_ERR_IO;
	}
	if (st.st_size == 0) {
		(void)close(f);
		return 0;
	}
	*map = map_file(f, (size_t)st.st_size);
	if (*map == NULL) {
		(void)close(f);
		return PI_ERR_IO;
	}
	*fd = f;
	*len = (size_t)st.st_size;
	return 0;
}

int
spool_release(int fd, unsigned char *map, size_t len, int clear)
{
	int rc = 0;

	if (map != NULL)
		(void)munmap(map, len);
	if (fd < 0)
		return 0;
	if (clear && (ftruncate(fd, 0) != 0 || fsync(fd) != 0))
		rc = PI_ERR_IO;
	(void)close(fd);
	return rc;
}
