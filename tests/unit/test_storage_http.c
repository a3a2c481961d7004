/* test_storage_http.c — the pure parts of the plumbing the remote storage
 * back ends share: the bounded buffer and its cap, the memory and file
 * sinks (a rewind must leave nothing that could pass for an object), the
 * header helpers, the back-off schedule and the hex encoder. The transfers
 * themselves are covered by tests/integration against S3 and Supabase.
 */
#include "storage_http.h"
#include "common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "tap.h"

static void
test_buf(void)
{
	struct shttp_buf b = { .max = 8 };

	is_int(shttp_buf_add(&b, "abc", 3), 0, "buf: add within the cap");
	is_str(b.p, "abc", "buf: NUL-terminated contents");
	is_int(shttp_buf_add(&b, "defghij", 7), PI_ERR_TOO_LARGE, "buf: add past the cap drops");
	is_int((long)b.len, 8, "buf: kept up to the cap");
	is_str(b.p, "abcdefgh", "buf: the first bytes are kept");
	ok(b.overflow, "buf: overflow is set");
	is_int(shttp_buf_add(&b, "x", 1), PI_ERR_TOO_LARGE, "buf: a full buffer drops more");
	shttp_buf_clear(&b);
	ok(b.len == 0 && !b.overflow && b.p != NULL && b.p[0] == '\0',
	    "buf: clear empties and resets overflow");
	is_int(shttp_mem_write(&b, "12345678", 8), 0, "mem sink: fits");
	is_int(shttp_mem_write(&b, "9", 1), PI_ERR_TOO_LARGE, "mem sink: past the cap stops");
	is_int(shttp_mem_rewind(&b), 0, "mem sink: rewind");
	ok(b.len == 0 && !b.overflow, "mem sink: rewind empties");
	shttp_buf_free(&b);
	ok(b.p == NULL && b.len == 0 && b.cap == 0 && b.max == 8,
	    "buf: free releases, keeps max");
	is_int(shttp_buf_add(&b, "", 0), 0, "buf: empty add after free");
	is_str(b.p, "", "buf: empty add gives an empty string");
	shttp_buf_free(&b);
}

static void
test_headers(void)
{
	struct curl_slist *l = NULL;
	const char *v = NULL;
	size_t vn = 0;
	char big[SHTTP_MAX_HLINE + 10];

	ok(shttp_header_value("ETag: \"abc\"\r\n", 13, "etag", &v, &vn) == 1 &&
	    vn == 5 && memcmp(v, "\"abc\"", 5) == 0,
	    "header value: case-blind name, trimmed value");
	ok(shttp_header_value("Content-Range:\tbytes 5-9/10\r\n", 29,
	    "content-range", &v, &vn) == 1 && vn == 12 &&
	    memcmp(v, "bytes 5-9/10", 12) == 0, "header value: tab, CRLF");
	is_int(shttp_header_value("ETagX: 1\r\n", 10, "etag", &v, &vn), 0,
	    "header value: a longer name is another header");
	is_int(shttp_header_value("ETag", 4, "etag", &v, &vn), 0,
	    "header value: no colon");
	ok(shttp_header_value("etag:\r\n", 7, "etag", &v, &vn) == 1 && vn == 0,
	    "header value: empty value");

	is_int(shttp_header_add(&l, "A: 1"), 0, "header add");
	is_int(shttp_header_addf(&l, "Range", "bytes=0-1"), 0, "header addf");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	is_int(shttp_header_addf(&l, "X", big), PI_ERR_INVALID,
	    "header addf: too long is refused");
	ok(l != NULL && strcmp(l->data, "A: 1") == 0 && l->next != NULL &&
	    strcmp(l->next->data, "Range: bytes=0-1") == 0 &&
	    l->next->next == NULL, "header list: in order, nothing else");
	curl_slist_free_all(l);
}

static void
test_file_sink(void)
{
	char dir[] = "/tmp/polaimg-shttp-XXXXXX", path[64], rb[16];
	struct shttp_file_sink f = { -1 };
	struct stat sb;
	int fd;

	if (mkdtemp(dir) == NULL) {
		ok(0, "file sink: mkdtemp");
		return;
	}
	(void)snprintf(path, sizeof(path), "%s/copy", dir);
	f.fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ok(f.fd >= 0, "file sink: open");
	is_int(shttp_file_write(&f, "hello", 5), 0, "file sink: write");
	is_int(shttp_file_rewind(&f), 0, "file sink: rewind");
	ok(fstat(f.fd, &sb) == 0 && sb.st_size == 0, "file sink: rewind truncates");
	is_int(shttp_file_write(&f, "abc", 3), 0, "file sink: write again");
	ok(pread(f.fd, rb, sizeof(rb), 0) == 3 && memcmp(rb, "abc", 3) == 0,
	    "file sink: the second attempt starts at offset 0");
	is_int((long)lseek(f.fd, 0, SEEK_SET), 0, "read fd: rewound");
	fd = f.fd;
	memset(rb, 0, sizeof(rb));
	is_int((long)shttp_read_fd(rb, 1, sizeof(rb), &fd), 3, "read fd: reads");
	is_int(shttp_seek_fd(&fd, 1, SEEK_SET), CURL_SEEKFUNC_OK, "seek fd: SEEK_SET");
	is_int((long)shttp_read_fd(rb, 1, sizeof(rb), &fd), 2, "read fd: from the offset");
	is_int(shttp_seek_fd(&fd, 0, SEEK_END), CURL_SEEKFUNC_FAIL,
	    "seek fd: other origins refused");
	is_int(shttp_seek_fd(&fd, -1, SEEK_SET), CURL_SEEKFUNC_FAIL,
	    "seek fd: negative offset refused");
	close(f.fd);
	f.fd = -1;
	is_int(shttp_file_write(&f, "x", 1), PI_ERR_IO, "file sink: a bad fd fails");
	(void)unlink(path);
	(void)rmdir(dir);
}

static void
test_misc(void)
{
	static const unsigned char in[] = { 0x00, 0x9f, 0xa0, 0xff };
	char out[9];
	long t0, t1;

	is_int(shttp_backoff_ms(1), 100, "backoff: first retry");
	is_int(shttp_backoff_ms(2), 400, "backoff: second retry");
	is_int(shttp_backoff_ms(7), 400, "backoff: later retries");
	pi_hex(in, sizeof(in), out);
	is_str(out, "009fa0ff", "hex: lower case");
	t0 = shttp_now_ms();
	shttp_sleep_ms(20);
	t1 = shttp_now_ms();
	ok(t1 - t0 >= 20, "sleep: at least the pause");
}

int
main(void)
{
	test_buf();
	test_headers();
	test_file_sink();
	test_misc();
	return done_testing();
}
