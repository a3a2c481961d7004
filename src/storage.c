/* storage.c — choosing and opening a back end, and the pieces all back ends
 * share: the scratch directory and temp files.
 *
 * Temp files live in <storage_dir>/.tmp so that the local back end can
 * publish an object with one rename on the same file system; remote back
 * ends use the same directory as scratch space for uploads and derived
 * copies. A crash leaves at most stray temp files, which `polaimg sweep`
 * removes; it never leaves a half object under a final key. Because every
 * back end stages its uploads there, the health check looks at the scratch
 * directory first, whichever back end is configured: a store that answers
 * is no help when no upload can be staged.
 */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
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

int
storage_tmpfile(struct storage *st, char *path, size_t pathsz)
{
	int fd;

	if ((size_t)snprintf(path, pathsz, "%s/up-XXXXXX", st->tmp_dir) >= pathsz)
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
