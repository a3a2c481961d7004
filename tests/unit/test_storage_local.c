/* test_storage_local.c — the local-disk back end in a mkdtemp() directory.
 *
 * Through the storage interface, as the handlers use it: put a temp file
 * under a key, stat, fetch, stream ranges, list, delete. Checks what the
 * back end promises (storage.h, storage_local.c): a put consumes its temp
 * file and never replaces an object, nothing is left in .tmp, emptied
 * directories go away, and a key that could leave storage_dir (or reach
 * .tmp) is refused before it touches the file system.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "storage.h"
#include "tap.h"
#include "unit_util.h"


static char root[256];          /* mkdtemp: holds storage/ and outside */
static char sdir[300];          /* storage_dir */

/* base followed by rel, in one of two static buffers (two calls may be
 * used in one expression). */
static const char *
at(const char *base, const char *rel)
{
	static char buf[2][1200];
	static int k;

	k ^= 1;
	(void)snprintf(buf[k], sizeof(buf[k]), "%s%s", base, rel);
	return buf[k];
}

static int
spit(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (f == NULL)
		return -1;
	rc = fputs(text, f) < 0 ? -1 : 0;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

/* The contents of path (at most 4 KiB) in a static buffer, or NULL. */
static const char *
slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A temp file in the scratch space holding text; its path in path. */
static int
tmp_with(struct storage *st, const char *text, char *path, size_t pathsz)
{
	int fd = storage_tmpfile(st, path, pathsz);
	size_t n = strlen(text);

	if (fd < 0)
		return -1;
	if (write(fd, text, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	return close(fd);
}

static int
exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

struct listing {
	char keys[16][128];
	int n;
	int stop_after;             /* 0: never stop */
};

static int
collect(void *ud, const char *key, time_t mtime)
{
	struct listing *l = ud;

	(void)mtime;
	if (l->n < 16)
		(void)snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
	l->n++;
	return l->stop_after > 0 && l->n >= l->stop_after;
}

static int
has_key(const struct listing *l, const char *key)
{
	for (int i = 0; i < l->n && i < 16; i++)
		if (strcmp(l->keys[i], key) == 0)
			return 1;
	return 0;
}

struct sink {
	char buf[256];
	size_t n;
	int calls;
	int fail_at;                /* the call number that returns -1; 0: none */
};

static int
sink_cb(void *ud, const char *buf, size_t n)
{
	struct sink *s = ud;

	s->calls++;
	if (s->fail_at > 0 && s->calls >= s->fail_at)
		return -1;
	if (s->n + n >= sizeof(s->buf))
		return -1;
	memcpy(s->buf + s->n, buf, n);
	s->n += n;
	s->buf[s->n] = '\0';
	return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
test_put_get(struct storage *st)
{
	const char *k = "cases/c1/i1/original";
	char tmp[1200], tmp2[1200], dst[1200];
	struct storage_stat ss;
	struct sink s;
	struct stat sb;

	ok(tmp_with(st, "hello, storage", tmp, sizeof(tmp)) == 0, "temp file made");
	ok(strncmp(tmp, at(sdir, "/.tmp/"), strlen(at(sdir, "/.tmp/"))) == 0,
	    "temp file is in storage_dir/.tmp");
	is_int(storage_put_file(st, k, tmp, "image/jpeg"), 0, "put");
	ok(!exists(tmp), "put consumed the temp file");
	is_str(slurp(at(sdir, "/cases/c1/i1/original")), "hello, storage",
	    "object is at storage_dir/<key> with the bytes");
	ok(stat(at(sdir, "/cases/c1/i1/original"), &sb) == 0 &&
	    (sb.st_mode & 0777) == 0640, "object is 0640 (web server's group reads it)");
	is_int(unit_count_entries(st->tmp_dir), 0, ".tmp is empty after a put");

	memset(&ss, 0, sizeof(ss));
	is_int(storage_stat(st, k, &ss), 0, "stat");
	is_int(ss.size, 14, "stat size");
	ok(ss.mtime > 0, "stat mtime");
	is_str(ss.content_type, "", "local keeps no content type");

	/* A second put under the same key: refused, nothing replaced, the
	 * temp file left to the caller. */
	ok(tmp_with(st, "other bytes", tmp2, sizeof(tmp2)) == 0, "second temp file");
	is_int(storage_put_file(st, k, tmp2, "image/jpeg"), PI_ERR_EXISTS,
	    "put over an existing object: PI_ERR_EXISTS");
	is_str(slurp(at(sdir, "/cases/c1/i1/original")), "hello, storage",
	    "existing object unchanged");
	ok(exists(tmp2), "refused put leaves the temp file in place");
	ok(unlink(tmp2) == 0, "caller removes it");

	/* A put whose source is missing fails and publishes nothing. */
	is_int(storage_put_file(st, "cases/c1/i1/thumb.jpg",
	    at(sdir, "/.tmp/no-such-file"), "image/jpeg"), PI_ERR_STORAGE,
	    "put of a missing temp file: PI_ERR_STORAGE");
	ok(!exists(at(sdir, "/cases/c1/i1/thumb.jpg")), "nothing published");

	(void)snprintf(dst, sizeof(dst), "%s/fetched", root);
	is_int(storage_fetch(st, k, dst), 0, "fetch");
	is_str(slurp(dst), "hello, storage", "fetched bytes");
	ok(stat(dst, &sb) == 0 && (sb.st_mode & 0777) == 0600, "fetched copy is 0600");
	ok(spit(dst, "a longer earlier content that must go") == 0 &&
	    storage_fetch(st, k, dst) == 0 &&
	    strcmp(slurp(dst), "hello, storage") == 0,
	    "fetch truncates an existing destination");
	is_int(storage_fetch(st, "cases/c1/i1/missing", dst), PI_ERR_NOT_FOUND,
	    "fetch of a missing key: PI_ERR_NOT_FOUND");
	is_int(storage_stat(st, "cases/c1/i1/missing", &ss), PI_ERR_NOT_FOUND,
	    "stat of a missing key: PI_ERR_NOT_FOUND");
	is_int(storage_stat(st, "cases/c1/i1", &ss), PI_ERR_NOT_FOUND,
	    "stat of a directory: PI_ERR_NOT_FOUND");

	memset(&s, 0, sizeof(s));
	is_int(st->ops->stream(st, k, 7, 13, sink_cb, &s), 0, "stream bytes 7..13");
	is_str(s.buf, "storage", "streamed range");
	memset(&s, 0, sizeof(s));
	is_int(st->ops->stream(st, k, 0, 0, sink_cb, &s), 0, "stream byte 0");
	is_str(s.buf, "h", "one byte");
	memset(&s, 0, sizeof(s));
	is_int(st->ops->stream(st, k, 10, 20, sink_cb, &s), PI_ERR_STORAGE,
	    "stream past the end: PI_ERR_STORAGE (file shorter than recorded)");
	memset(&s, 0, sizeof(s));
	s.fail_at = 1;
	is_int(st->ops->stream(st, k, 0, 13, sink_cb, &s), PI_ERR_IO,
	    "stream whose client goes away: PI_ERR_IO");
	is_int(st->ops->stream(st, "cases/c1/i1/missing", 0, 1, sink_cb, &s),
	    PI_ERR_NOT_FOUND, "stream of a missing key: PI_ERR_NOT_FOUND");
}

static void
test_list_delete(struct storage *st)
{
	static const char *const keys[] = {
		"cases/c1/i1/display.jpg", "cases/c1/i2/original", "cases/c2/i3/original",
	};
	char tmp[1200];
	struct listing l;

	for (size_t i = 0; i < PI_ARRAY_LEN(keys); i++)
		ok(tmp_with(st, keys[i], tmp, sizeof(tmp)) == 0 &&
		    storage_put_file(st, keys[i], tmp, NULL) == 0, keys[i]);
	/* A temp file in .tmp at the moment of listing is not an object. */
	ok(tmp_with(st, "in flight", tmp, sizeof(tmp)) == 0, "a temp file in flight");

	memset(&l, 0, sizeof(l));
	is_int(storage_list(st, "", collect, &l), 0, "list everything");
	is_int(l.n, 4, "four objects, .tmp not listed");
	ok(has_key(&l, "cases/c1/i1/original") && has_key(&l, keys[0]) &&
	    has_key(&l, keys[1]) && has_key(&l, keys[2]), "every key listed");
	memset(&l, 0, sizeof(l));
	is_int(storage_list(st, "cases/c1/", collect, &l), 0, "list a case");
	is_int(l.n, 3, "three objects in case c1");
	ok(!has_key(&l, keys[2]), "the other case's object not listed");
	memset(&l, 0, sizeof(l));
	is_int(storage_list(st, "cases/c9", collect, &l), 0,
	    "list of an absent prefix succeeds");
	is_int(l.n, 0, "and is empty");
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	is_int(storage_list(st, "cases", collect, &l), 0,
	    "a callback that stops the walk: success");
	/* storage.h: "return non-zero to stop": the walk leaves every
	 * directory it is in (sweep's "database gone: stop"). */
	is_int(l.n, 1, "no key after the stop");
	ok(unlink(tmp) == 0, "temp file in flight removed");

	is_int(storage_del(st, keys[2]), 0, "delete");
	ok(!exists(at(sdir, "/cases/c2/i3/original")), "object gone");
	ok(!exists(at(sdir, "/cases/c2/i3")), "emptied image directory removed");
	ok(!exists(at(sdir, "/cases/c2")), "emptied case directory removed");
	ok(exists(at(sdir, "/cases")), "cases/ itself stays");
	is_int(storage_del(st, keys[2]), 0, "delete of an absent key: success");
	is_int(storage_del(st, keys[1]), 0, "delete in a case with other images");
	ok(!exists(at(sdir, "/cases/c1/i2")), "its image directory removed");
	ok(exists(at(sdir, "/cases/c1/i1/original")),
	    "the other image of the case stays");
	is_int(storage_del(st, keys[0]), 0, "delete one of two objects");
	ok(exists(at(sdir, "/cases/c1/i1")),
	    "directory with an object left stays");
}

static void
test_traversal(struct storage *st)
{
	static const char *const bad[] = {
		"", "../outside/secret", "cases/../../outside/secret",
		"cases/c1/../../../outside/secret", "/etc/passwd", ".tmp/x",
		"cases/.tmp/x", "cases//x", "cases/x/", "/", "Cases/C1/original",
		"cases/c1/i1/original%2f..", "cases/c1/i1/orig\\inal",
		"cases/c1/i1/ori ginal", "cases/c1/i1/.hidden", "..", ".",
	};
	char tmp[1200], dst[1200], longkey[600];
	struct storage_stat ss;
	struct sink s;
	struct listing l;

	(void)snprintf(dst, sizeof(dst), "%s/fetched-bad", root);
	for (size_t i = 0; i < PI_ARRAY_LEN(bad); i++) {
		char what[160];

		(void)snprintf(what, sizeof(what), "key \"%s\" refused by put, "
		    "stat, fetch, stream and delete", bad[i]);
		memset(&s, 0, sizeof(s));
		ok(tmp_with(st, "evil", tmp, sizeof(tmp)) == 0 &&
		    storage_put_file(st, bad[i], tmp, NULL) == PI_ERR_INVALID &&
		    exists(tmp) && unlink(tmp) == 0 &&
		    storage_stat(st, bad[i], &ss) == PI_ERR_INVALID &&
		    storage_fetch(st, bad[i], dst) == PI_ERR_INVALID &&
		    st->ops->stream(st, bad[i], 0, 1, sink_cb, &s) == PI_ERR_INVALID &&
		    storage_del(st, bad[i]) == PI_ERR_INVALID, what);
	}
	is_str(slurp(at(root, "/outside/secret")), "keep me",
	    "the file outside storage_dir is untouched");
	ok(!exists(dst), "nothing fetched through a bad key");
	memset(&l, 0, sizeof(l));
	is_int(storage_list(st, "../outside", collect, &l), PI_ERR_INVALID,
	    "list of ../outside refused");
	is_int(storage_list(st, ".tmp/", collect, &l), PI_ERR_INVALID,
	    "list of .tmp refused");
	is_int(l.n, 0, "nothing listed");

	/* 512 bytes in segments a file system takes (a name is at most 255). */
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	for (size_t i = 100; i < sizeof(longkey) - 1; i += 101)
		longkey[i] = '/';
	longkey[513] = '\0';
	is_int(storage_stat(st, longkey, &ss), PI_ERR_INVALID,
	    "key of 513 bytes refused");
	longkey[512] = '\0';
	is_int(storage_stat(st, longkey, &ss), PI_ERR_NOT_FOUND,
	    "key of 512 bytes is a key (absent)");
}

static void
test_scratch(struct storage *st)
{
	char tmp[1200], path[1200];

	is_int(storage_check(st), 0, "check: scratch space usable");
	is_int(storage_local_path(st, "cases/c1/i1/original", path, sizeof(path)),
	    0, "local path of a key");
	is_str(path, at(sdir, "/cases/c1/i1/original"), "is storage_dir/<key>");
	is_int(storage_local_path(st, "cases/c1/i1/original", path, 10),
	    PI_ERR_INVALID, "local path that does not fit: PI_ERR_INVALID");
	is_int(storage_local_path(st, "../../etc/passwd", path, sizeof(path)),
	    PI_ERR_INVALID, "local path of a traversal: PI_ERR_INVALID");
	is_int(storage_local_path(st, "cases/.tmp/x", path, sizeof(path)),
	    PI_ERR_INVALID,
	    "local path into a dot directory: PI_ERR_INVALID");
	is_int(storage_local_path(st, "/etc/passwd", path, sizeof(path)),
	    PI_ERR_INVALID,
	    "local path of an absolute key: PI_ERR_INVALID");
	ok(rmdir(st->tmp_dir) == 0, "scratch directory removed");
	is_int(storage_check(st), PI_ERR_STORAGE, "check: no scratch space");
	ok(storage_tmpfile(st, tmp, sizeof(tmp)) < 0 && tmp[0] == '\0',
	    "no temp file without scratch space");
	ok(spit(st->tmp_dir, "a file, not a directory") == 0, "scratch is a file");
	is_int(storage_check(st), PI_ERR_STORAGE, "check: scratch not a directory");
	ok(unlink(st->tmp_dir) == 0 && mkdir(st->tmp_dir, 0700) == 0,
	    "scratch directory back");
	is_int(storage_check(st), 0, "check: usable again");
}

int
main(void)
{
	struct config cfg;
	struct storage *st;
	struct stat sb;

	(void)snprintf(root, sizeof(root), "/tmp/polaimg-stl-XXXXXX");
	if (mkdtemp(root) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	(void)snprintf(sdir, sizeof(sdir), "%s/storage", root);
	ok(mkdir(at(root, "/outside"), 0700) == 0 &&
	    spit(at(root, "/outside/secret"), "keep me") == 0,
	    "a file outside storage_dir");
	st = unit_local_storage(&cfg, sdir, "configuration with storage_dir loads",
	    "storage_open");
	if (st == NULL)
		return done_testing();
	is_str(st->ops->name, "local", "local back end");
	ok(st->ops->presign == NULL, "local makes no signed URLs of its own");
	ok(stat(st->tmp_dir, &sb) == 0 && S_ISDIR(sb.st_mode),
	    "storage_open made storage_dir/.tmp");
	is_str(st->tmp_dir, at(sdir, "/.tmp"), "scratch space is storage_dir/.tmp");

	test_put_get(st);
	test_list_delete(st);
	test_traversal(st);
	test_scratch(st);

	storage_close(st);
	cfg_free(&cfg);
	if (nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		perror("cleanup");
	return done_testing();
}
