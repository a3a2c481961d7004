/* storage_local.c — the local-disk back end.
 *
 * An object is published by renaming a fully written, fsync'ed temp file
 * from <storage_dir>/.tmp to its final path with RENAME_NOREPLACE, then
 * fsyncing the directory: after a crash an object is either absent or
 * complete, and an upload can never replace an existing object. Keys are
 * checked against a strict alphabet before they touch the file system, so
 * even a bug upstream cannot walk out of storage_dir.
 */
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "config.h"
#include "log.h"

/* 1 if key is made of [a-z0-9._-] segments separated by '/', none of them
 * starting with '.', so it cannot escape storage_dir or name .tmp. */
static int
key_ok(const char *key)
{
	int seg_start = 1;

	if (key[0] == '\0' || strlen(key) > 512)
		return 0;
	for (const char *p = key; *p != '\0'; p++) {
		char c = *p;

		if (c == '/') {
			if (seg_start)
				return 0;
			seg_start = 1;
			continue;
		}
		if (seg_start && c == '.')
			return 0;
		seg_start = 0;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return !seg_start;
}

static int
errno_to_pi(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EROFS:
		return PI_ERR_STORAGE_FULL;
	case EEXIST:
		return PI_ERR_EXISTS;
	case ENOENT:
		return PI_ERR_NOT_FOUND;
	default:
		return PI_ERR_STORAGE;
	}
}

static int
full_path(struct storage *st, const char *key, char *out, size_t outsz)
{
	if (!key_ok(key))
		return PI_ERR_INVALID;
	if ((size_t)snprintf(out, outsz, "%s/%s", st->cfg->storage_dir, key) >= outsz)
		return PI_ERR_INVALID;
	return 0;
}

static int
fsync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* Creates the directories of path's parent below storage_dir. */
static int
make_parents(const char *storage_dir, char *path)
{
	size_t base = strlen(storage_dir);

	for (char *p = path + base + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0750) != 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return 0;
}

static int
local_put_file(struct storage *st, const char *key, const char *src_path,
    const char *content_type)
{
	char path[1200], dir[1200];
	char *slash;
	int rc;

	(void)content_type;
	rc = full_path(st, key, path, sizeof(path));
	if (rc != 0)
		return rc;
	if (fsync_path(src_path, O_RDONLY) != 0 || make_parents(st->cfg->storage_dir, path) != 0) {
		rc = errno_to_pi(errno);
		log_error("storage: cannot prepare %s: %s", key, strerror(errno));
		return rc == PI_ERR_NOT_FOUND ? PI_ERR_STORAGE : rc;
	}
	if (renameat2(AT_FDCWD, src_path, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
		rc = errno_to_pi(errno);
		log_error("storage: cannot publish %s: %s", key, strerror(errno));
		return rc == PI_ERR_NOT_FOUND ? PI_ERR_STORAGE : rc;
	}
	memcpy(dir, path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash != NULL)
		*slash = '\0';
	if (fsync_path(dir, O_RDONLY | O_DIRECTORY) != 0) {
		log_warn("storage: fsync of the directory of %s failed: %s", key,
		    strerror(errno));
	}
	return 0;
}

static int
local_stat(struct storage *st, const char *key, struct storage_stat *out)
{
	char path[1200];
	struct stat sb;
	int rc = full_path(st, key, path, sizeof(path));

	if (rc != 0)
		return rc;
	if (stat(path, &sb) != 0)
		return errno_to_pi(errno);
	if (!S_ISREG(sb.st_mode))
		return PI_ERR_NOT_FOUND;
	out->size = sb.st_size;
	out->mtime = sb.st_mtime;
	return 0;
}

static int
local_fetch(struct storage *st, const char *key, const char *dst_path)
{
	char path[1200], buf[65536];
	int in = -1, out = -1, rc;
	ssize_t n;

	rc = full_path(st, key, path, sizeof(path));
	if (rc != 0)
		return rc;
	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		rc = errno_to_pi(errno);
		goto out;
	}
	out = open(dst_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = errno_to_pi(errno);
		goto out;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			rc = PI_ERR_STORAGE;
			goto out;
		}
	}
	rc = n < 0 ? PI_ERR_STORAGE : 0;
out:
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0 && rc == 0)
		rc = PI_ERR_STORAGE;
	return rc;
}

static int
local_del(struct storage *st, const char *key)
{
	char path[1200];
	char *slash;
	int rc = full_path(st, key, path, sizeof(path));

	if (rc != 0)
		return rc;
	if (unlink(path) != 0 && errno != ENOENT) {
		log_error("storage: cannot delete %s: %s", key, strerror(errno));
		return errno_to_pi(errno);
	}
	/* Remove the image and case directories once they are empty. */
	for (int i = 0; i < 2; i++) {
		slash = strrchr(path, '/');
		if (slash == NULL || (size_t)(slash - path) <= strlen(st->cfg->storage_dir))
			break;
		*slash = '\0';
		if (rmdir(path) != 0)
			break;
	}
	return 0;
}

/* Walks dir (relative key prefix rel) calling cb for each regular file.
 * Returns 0 when every file was seen, 1 when cb asked to stop (the walk
 * leaves every directory it is in), or a pi_err. */
static int
walk(struct storage *st, const char *rel, storage_list_cb cb, void *ud, int depth)
{
	char path[1200], child[1200];
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > 8)
		return 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", st->cfg->storage_dir, rel) >=
	    sizeof(path))
		return PI_ERR_STORAGE;
	d = opendir(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : PI_ERR_STORAGE;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		struct stat sb;

		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s%s%s", rel,
		    rel[0] != '\0' ? "/" : "", de->d_name) >= sizeof(child))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", st->cfg->storage_dir,
		    child) >= sizeof(path) || lstat(path, &sb) != 0)
			continue;
		if (S_ISDIR(sb.st_mode))
			rc = walk(st, child, cb, ud, depth + 1);
		else if (S_ISREG(sb.st_mode) && cb(ud, child, sb.st_mtime) != 0)
			rc = 1;
	}
	closedir(d);
	return rc;
}

static int
local_list(struct storage *st, const char *prefix, storage_list_cb cb, void *ud)
{
	char rel[600];
	size_t n = strlen(prefix);
	int rc;

	if (n >= sizeof(rel))
		return PI_ERR_INVALID;
	memcpy(rel, prefix, n + 1);
	while (n > 0 && rel[n - 1] == '/')
		rel[--n] = '\0';
	if (n > 0 && !key_ok(rel))
		return PI_ERR_INVALID;
	rc = walk(st, rel, cb, ud, 0);
	return rc < 0 ? rc : 0;
}

static int
local_stream(struct storage *st, const char *key, long long start,
    long long end, int (*cb)(void *ud, const char *buf, size_t n), void *ud)
{
	char path[1200];
	char *buf = NULL;
	int fd, rc = full_path(st, key, path, sizeof(path));

	if (rc != 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno_to_pi(errno);
	buf = malloc(256 * 1024);
	if (buf == NULL) {
		close(fd);
		return PI_ERR_NOMEM;
	}
	for (long long off = start; off <= end;) {
		size_t want = (size_t)(end - off + 1) < 256 * 1024 ?
		    (size_t)(end - off + 1) : 256 * 1024;
		ssize_t n = pread(fd, buf, want, off);

		if (n <= 0) {
			rc = PI_ERR_STORAGE;   /* the file is shorter than recorded */
			break;
		}
		if (cb(ud, buf, (size_t)n) != 0) {
			rc = PI_ERR_IO;        /* the client went away */
			break;
		}
		off += n;
	}
	free(buf);
	close(fd);
	return rc;
}

static int
local_check(struct storage *st)
{
	struct stat sb;

	if (stat(st->tmp_dir, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
	    access(st->tmp_dir, W_OK | X_OK) != 0)
		return PI_ERR_STORAGE;
	return 0;
}

int
storage_local_path(const struct storage *st, const char *key, char *out,
    size_t outsz)
{
	if (st->ops != &storage_local_ops || !key_ok(key))
		return PI_ERR_INVALID;
	if ((size_t)snprintf(out, outsz, "%s/%s", st->cfg->storage_dir, key) >= outsz)
		return PI_ERR_INVALID;
	return 0;
}

const struct storage_ops storage_local_ops = {
	.name = "local",
	.put_file = local_put_file,
	.stat = local_stat,
	.fetch = local_fetch,
	.del = local_del,
	.list = local_list,
	.presign = NULL,
	.stream = local_stream,
	.check = local_check,
	.destroy = NULL,
};
