/* storage.c — choosing and opening a back end, and the pieces all back ends
 * share: the scratch directory and temp files.
 *
 * Temp files live in <storage_dir>/.tmp so that the local back end can
 * publish an object with one rename on the same file system; remote back
 * ends use the same directory as scratch space for uploads and derived
 * copies. A crash leaves at most stray temp files; it never leaves a half
 * object under a final key. Each host cleans its own: a temp file's name
 * carries its host and writer pid (up-<host>-<pid>-XXXXXX), and the master
 * removes the files of a worker it reaped and, at start, those of every
 * writer of this host that is gone (storage_tmp_reap) — never another
 * host's, whose uploads may be in flight on a shared mount. `polaimg sweep`
 * still removes any temp file older than a day (a host that never came
 * back). Because every
 * back end stages its uploads there, the health check looks at the scratch
 * directory first, whichever back end is configured: a store that answers
 * is no help when no upload can be staged.
 */
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "config.h"

/* mkdir -p for an absolute path, mode 0750. */
static int
mkdir_p(const char *path)
{
	char buf[1024];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] == '/' || buf[i] == '\0') {
			char c = buf[i];

			buf[i] = '\0';
			if (mkdir(buf, 0750) != 0 && errno != EEXIST)
				return -1;
			buf[i] = c;
		}
	}
	return 0;
}

struct storage *
storage_open(const struct config *cfg, char *err, size_t errsz)
{
	struct storage *st = calloc(1, sizeof(*st));

	if (st == NULL) {
		(void)snprintf(err, errsz, "out of memory");
		return NULL;
	}
	st->cfg = cfg;
	if ((size_t)snprintf(st->tmp_dir, sizeof(st->tmp_dir), "%s/.tmp",
	    cfg->storage_dir) >= sizeof(st->tmp_dir)) {
		(void)snprintf(err, errsz, "storage_dir: path too long");
		goto fail;
	}
	if (mkdir_p(st->tmp_dir) != 0) {
		(void)snprintf(err, errsz, "storage_dir: cannot create %s: %s",
		    st->tmp_dir, strerror(errno));
		goto fail;
	}
	if (strcmp(cfg->storage_provider, "s3") == 0) {
		st->ops = &storage_s3_ops;
		if (storage_s3_init(st, err, errsz) != 0)
			goto fail;
	} else if (strcmp(cfg->storage_provider, "supabase") == 0) {
		st->ops = &storage_supabase_ops;
		if (storage_supabase_init(st, err, errsz) != 0)
			goto fail;
	} else {
		st->ops = &storage_local_ops;
	}
	return st;
fail:
	free(st);
	return NULL;
}

void
storage_close(struct storage *st)
{
	if (st == NULL)
		return;
	if (st->ops != NULL && st->ops->destroy != NULL)
		st->ops->destroy(st);
	free(st);
}

/* This host's part of temp names (see storage.h); "" if it has no name. */
static const char *
storage_tmp_host(void)
{
	static char host[65];
	static int done;

	if (!done) {
		char raw[256];

		if (gethostname(raw, sizeof(raw)) != 0)
			raw[0] = '\0';
		raw[sizeof(raw) - 1] = '\0';
		for (size_t i = 0; raw[i] != '\0' && i < sizeof(host) - 1; i++) {
			char ch = raw[i];

			host[i] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			    (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ? ch : '_';
			host[i + 1] = '\0';
		}
		done = 1;
	}
	return host;
}

int
storage_tmp_reap(const char *storage_dir, long pid)
{
	char dir[1100], path[1400], prefix[80];
	const char *host = storage_tmp_host();
	size_t plen;
	DIR *d;
	struct dirent *de;
	int removed = 0;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/.tmp", storage_dir) >=
	    sizeof(dir) || host[0] == '\0')
		return 0;
	plen = (size_t)snprintf(prefix, sizeof(prefix), "up-%s-", host);
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : PI_ERR_IO;
	while ((de = readdir(d)) != NULL) {
		const char *p = de->d_name;
		char *end;
		long writer;

		if (strncmp(p, prefix, plen) != 0)
			continue;
		errno = 0;
		writer = strtol(p + plen, &end, 10);
		if (errno != 0 || end == p + plen || *end != '-' || writer <= 0)
			continue;
		if (pid > 0 ? writer != pid :
		    kill((pid_t)writer, 0) == 0 || errno != ESRCH)
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, p) <
		    sizeof(path) && unlink(path) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

int
storage_tmpfile(struct storage *st, char *path, size_t pathsz)
{
	int fd;

	if ((size_t)snprintf(path, pathsz, "%s/up-%s-%ld-XXXXXX", st->tmp_dir,
	    storage_tmp_host(), (long)getpid()) >= pathsz)
		return -1;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		path[0] = '\0';
		return -1;
	}
	/* mkostemp makes 0600; objects published from temp files must be
	 * readable by the group (the web server's, for X-Accel-Redirect and
	 * X-Sendfile), never by others. */
	if (fchmod(fd, 0640) != 0) {
		close(fd);
		(void)unlink(path);
		path[0] = '\0';
		return -1;
	}
	return fd;
}

int
storage_scratch_check(const struct storage *st)
{
	struct stat sb;

	if (stat(st->tmp_dir, &sb) != 0 || !S_ISDIR(sb.st_mode) ||
	    access(st->tmp_dir, W_OK | X_OK) != 0)
		return PI_ERR_STORAGE;
	return 0;
}
