/* test_spool.c — the audit spool's records and file: append, read back in
 * order, a torn tail, a checksum mismatch, bounds, replay's lock. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "tap.h"

/* spool_nonempty as 1 (bytes), 0 (empty or missing) or -1 (error). */
static int
nonempty(const char *path)
{
	bool b;

	return spool_nonempty(path, &b) != 0 ? -1 : b;
}

/* spool_take as 1 (taken), 0 (nothing to take) or -1 (error). */
static int
take(const char *path, int *fd, unsigned char **map, size_t *len)
{
	return spool_take(path, fd, map, len) != 0 ? -1 : *fd >= 0;
}

static unsigned char *
slurp(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *b;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0)
		return NULL;
	b = malloc((size_t)st.st_size + 1);
	*len = b != NULL && read(fd, b, (size_t)st.st_size) == st.st_size ?
	    (size_t)st.st_size : 0;
	close(fd);
	return b;
}

static void
put(const char *path, const unsigned char *b, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, b, n) != (ssize_t)n)
		abort();
	close(fd);
}

int
main(void)
{
	char dir[] = "/tmp/test_spool.XXXXXX", path[256];
	struct audit a = { "u1", "doctor", "file", "img-1", NULL, "display",
		"denied", "127.0.0.1", "rid-a" };
	struct audit b = { NULL, NULL, "file", "img-2", "case-2", NULL, "denied",
		"10.0.0.1", "rid-b" };
	struct auditbuf w1, w2;
	struct spool_entry *idx = NULL;
	struct spool_row row;
	unsigned char rec[SPOOL_REC_MAX], *buf, *map;
	size_t n, damaged, len, used;
	char longv[300];
	int fd;

	if (mkdtemp(dir) == NULL)
		return 1;
	(void)snprintf(path, sizeof(path), "%s/%s", dir, SPOOL_FILE);

	/* one record: encode, decode */
	ok(auditbuf_init(&w1, 8) == 0 && auditbuf_init(&w2, 8) == 0, "buffers");
	ok(auditbuf_add(&w1, &a, 2000000, 0) == 0, "row a");
	len = spool_encode(&w1, 0, rec);
	ok(len > SPOOL_HDR && len <= SPOOL_REC_MAX, "a record fits SPOOL_REC_MAX");
	is_int(spool_decode(rec, len, &used, &row), SPOOL_OK, "decodes");
	is_int(used, len, "self-delimiting: its own length");
	is_int(row.unix_us, 2000000, "created_at kept to the microsecond");
	is_str(row.ev.user_id, "u1", "user");
	is_str(row.ev.case_id, NULL, "a NULL field stays NULL");
	is_str(row.ev.request_id, "rid-a", "request id");
	is_int(spool_decode(rec, len - 1, &used, &row), SPOOL_SHORT, "one byte short: torn");
	is_int(spool_decode(rec, 7, &used, &row), SPOOL_SHORT, "inside the header: torn");
	rec[len - 2] ^= 0x01;
	is_int(spool_decode(rec, len, &used, &row), SPOOL_BAD, "a flipped bit: checksum mismatch");
	rec[len - 2] ^= 0x01;
	rec[0] = 'X';
	is_int(spool_decode(rec, len, &used, &row), SPOOL_BAD, "bad magic");
	rec[0] = 'P';
	rec[4] = 0xff; rec[5] = 0xff; rec[6] = 0xff; rec[7] = 0x7f;
	is_int(spool_decode(rec, len, &used, &row), SPOOL_BAD,
	    "a length past SPOOL_PAYLOAD_MAX is refused before reading");

	/* longest fields are cut to AUDIT_FIELD_MAX - 1 and still decode */
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	{
		struct audit l = { longv, longv, longv, longv, longv, longv, longv,
			longv, longv };
		struct auditbuf lb;

		ok(auditbuf_init(&lb, 1) == 0 && auditbuf_add(&lb, &l, 1, 0) == 0, "long row");
		len = spool_encode(&lb, 0, rec);
		is_int(len, SPOOL_REC_MAX, "the longest row is exactly SPOOL_REC_MAX");
		is_int(spool_decode(rec, len, &used, &row), SPOOL_OK, "and decodes");
		is_int(strlen(row.ev.request_id), AUDIT_FIELD_MAX - 1, "cut to the field bound");
		auditbuf_free(&lb);
	}

	/* the file: absent, then two appends out of time order */
	is_int(nonempty(path), 0, "no file: empty");
	ok(spool_count(path, &n, &damaged) == 0 && n == 0, "no file: 0 records");
	ok(auditbuf_add(&w1, &b, 1000000, 0) == 0, "row b (older than a)");
	ok(spool_append(path, &w1) == 0, "append a, b");
	auditbuf_clear(&w2);
	ok(auditbuf_add(&w2, &a, 1000000, 0) == 0 && auditbuf_add(&w2, &b, 3000000, 0) == 0,
	    "a second writer: same time as b, then later");
	ok(spool_append(path, &w2) == 0, "append c, d");
	is_int(nonempty(path), 1, "non-empty");
	ok(spool_count(path, &n, &damaged) == 0, "count");
	is_int(n, 4, "4 records");
	is_int(damaged, 0, "none damaged");
	{
		struct stat st;

		ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600");
	}

	buf = slurp(path, &len);
	ok(buf != NULL && spool_index(buf, len, &idx, &n, &damaged) == 0 && n == 4,
	    "index of 4");
	is_int(idx[0].unix_us, 1000000, "first: the oldest");
	ok(idx[0].off < idx[1].off && idx[1].unix_us == 1000000,
	    "equal times keep the order of the file");
	is_int(idx[2].unix_us, 2000000, "third");
	is_int(idx[3].unix_us, 3000000, "last: the newest");
	ok(spool_decode(buf + idx[0].off, idx[0].len, &used, &row) == SPOOL_OK &&
	    strcmp(row.ev.request_id, "rid-b") == 0, "the oldest is b of the first append");
	free(idx);

	/* a torn tail: the last record cut short */
	put(path, buf, len - 5);
	ok(spool_count(path, &n, &damaged) == 0, "count a torn file");
	is_int(n, 3, "the torn record is skipped");
	is_int(damaged, 1, "and counted as damaged");

	/* a torn record followed by later appends: found again after it */
	ok(spool_append(path, &w2) == 0, "append after the torn record");
	ok(spool_count(path, &n, &damaged) == 0 && n == 5 && damaged == 1,
	    "the records after a torn one are read (5, 1 damaged)");

	/* a checksum mismatch in the middle */
	buf[20] ^= 0x20;        /* inside the first record's payload */
	put(path, buf, len);
	ok(spool_count(path, &n, &damaged) == 0 && n == 3 && damaged == 1,
	    "a corrupt record in the middle: the other 3 read, 1 damaged");
	free(buf);

	/* garbage only */
	put(path, (const unsigned char *)"PIA1PIA1garbage", 15);
	ok(spool_count(path, &n, &damaged) == 0 && n == 0 && damaged == 1,
	    "garbage: no records, 1 damaged stretch");

	/* replay: take locks out a second taker, release empties */
	put(path, (const unsigned char *)"", 0);
	ok(spool_append(path, &w1) == 0, "append for replay");
	is_int(take(path, &fd, &map, &len), 1, "take");
	{
		int fd2;
		unsigned char *m2;
		size_t l2;

		is_int(take(path, &fd2, &m2, &l2), 0,
		    "a second taker finds it held (another worker replays)");
	}
	ok(spool_index(map, len, &idx, &n, &damaged) == 0 && n == 2, "2 to replay");
	free(idx);
	ok(spool_release(fd, map, len, 0) == 0, "release without clearing");
	is_int(nonempty(path), 1, "kept (the rows were not written)");
	is_int(take(path, &fd, &map, &len), 1, "take again");
	ok(spool_release(fd, map, len, 1) == 0, "release, clearing");
	is_int(nonempty(path), 0, "empty after the replay");
	is_int(take(path, &fd, &map, &len), 0, "nothing to take");

	/* an unwritable place */
	ok(spool_append("/nonexistent-dir/audit.spool", &w1) != 0,
	    "append to a missing directory fails (the caller logs the rows)");

	auditbuf_free(&w1);
	auditbuf_free(&w2);
	(void)unlink(path);
	(void)rmdir(dir);
	return done_testing();
}
