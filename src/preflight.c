/* preflight.c — the checks a worker makes at start, made once before.
 *
 * A worker refuses to start when the ImageMagick policy is not in force,
 * the JWT key does not load or the storage cannot be opened (worker.c,
 * worker_ctx_init). Found only there, such a setting makes every worker exit
 * at start and the master respawn them for ever while the web server times
 * out every request; so `check-config` and `serve` (before it forks) run
 * the same checks here and report every failure at once, one line each.
 *
 * The checks run in a child process: MagickWandGenesis(), the curl handle
 * and the OpenSSL key must not be made in the master, whose state every
 * worker inherits (worker.c: created after fork). The child writes its
 * lines on a pipe and exits; the parent reads them until EOF. The database
 * is not checked: a worker starts without it (requests answer 503 until it
 * is back), and so may the service.
 *
 * `check-config` must not create anything (run as root, it would leave
 * root-owned directories the service cannot write): with create = 0 a
 * missing storage_dir/.tmp is only checked to be creatable, and the
 * storage back end is opened only when it exists.
 */
#include "preflight.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "common.h"
#include "imaging.h"
#include "log.h"
#include "storage.h"
#include "worker.h"

/* One line on the pipe (the child's side). */
static void
preflight_say(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
preflight_say(int fd, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;
	size_t len, off = 0;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	len = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 2;
	line[len++] = '\n';
	while (off < len) {
		ssize_t w = write(fd, line + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

/* The policy: present, and in force once MagickWand has loaded it. */
static int
preflight_policy(const struct config *cfg, int fd)
{
	char path[PATH_MAX];
	struct stat sb;
	struct img_limits lim = {
		.max_pixels = (uint64_t)cfg->max_pixels,
		.memory_bytes = worker_img_memory(cfg->max_pixels),
		.map_bytes = worker_img_memory(cfg->max_pixels),
		.max_dimension = 65500,
		.policy_dir = cfg->imaging_policy_dir,
	};

	if ((size_t)snprintf(path, sizeof(path), "%s/policy.xml",
	    cfg->imaging_policy_dir) >= sizeof(path)) {
		preflight_say(fd, "imaging_policy_dir: path too long");
		return PI_ERR_INVALID;
	}
	if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		const char *why = stat(path, &sb) != 0 ? strerror(errno) :
		    "not a regular file";
		char tree[PATH_MAX], file[PATH_MAX + 16];

		/* The path that would work: the installed one, or this
		 * build's source tree when it has one. */
		if (stat(POLAIMG_DATADIR "/policy.xml", &sb) != 0 &&
		    realpath(POLAIMG_TREE_SRCDIR "/conf", tree) != NULL &&
		    (size_t)snprintf(file, sizeof(file), "%s/policy.xml", tree) <
		    sizeof(file) && stat(file, &sb) == 0) {
			preflight_say(fd, "imaging_policy_dir: %s: %s (set "
			    "imaging_policy_dir = %s, the source tree's, or "
			    "`make install` it to %s)", path, why, tree,
			    POLAIMG_DATADIR);
		} else
			preflight_say(fd, "imaging_policy_dir: %s: %s (set "
			    "imaging_policy_dir to the directory of polaimg's "
			    "policy.xml: %s after `make install`)", path, why,
			    POLAIMG_DATADIR);
		return PI_ERR_INVALID;
	}
	if (img_init(&lim) != 0) {
		preflight_say(fd, "imaging_policy_dir: the ImageMagick policy in "
		    "%s is not in force (is it polaimg's policy.xml?)",
		    cfg->imaging_policy_dir);
		return PI_ERR_INVALID;
	}
	img_shutdown();
	return 0;
}

/* The JWT key, loaded as a worker loads it. */
static int
preflight_jwt(const struct config *cfg, int fd)
{
	struct auth_config ac;
	enum auth_alg alg;
	const char *why = NULL;

	if (auth_alg_parse(cfg->jwt_algorithm, &alg) != 0 ||
	    auth_config_load(&ac, alg, cfg->jwt_secret, strlen(cfg->jwt_secret),
	    cfg->jwt_public_key_file, cfg->jwt_require_exp, &why) != 0) {
		preflight_say(fd, "jwt: %s%s%s", why != NULL ? why : "invalid "
		    "settings", cfg->jwt_public_key_file[0] != '\0' &&
		    cfg->jwt_algorithm[0] != 'H' ? "; jwt_public_key_file = " :
		    "", cfg->jwt_algorithm[0] != 'H' ? cfg->jwt_public_key_file :
		    "");
		return PI_ERR_INVALID;
	}
	auth_config_free(&ac);
	return 0;
}

/* storage_dir/.tmp without creating it: the nearest existing ancestor must
 * be a directory this user may write. */
static int
preflight_creatable(const char *dir, int fd)
{
	char path[PATH_MAX];
	struct stat sb;
	char *slash;

	if ((size_t)snprintf(path, sizeof(path), "%s", dir) >= sizeof(path))
		return PI_ERR_INVALID;
	while ((slash = strrchr(path, '/')) != NULL) {
		if (slash == path)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(path, &sb) != 0)
			continue;
		if (!S_ISDIR(sb.st_mode) || access(path, W_OK | X_OK) != 0) {
			preflight_say(fd, "storage_dir: %s does not exist and "
			    "cannot be created (%s is not a writable directory)",
			    dir, path);
			return PI_ERR_INVALID;
		}
		return 0;
	}
	return 0;
}

/* The storage back end, opened as a worker opens it. */
static int
preflight_storage(const struct config *cfg, int create, int fd)
{
	char tmp[PATH_MAX], err[512];
	struct storage *st;
	struct stat sb;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.tmp", cfg->storage_dir) >=
	    sizeof(tmp)) {
		preflight_say(fd, "storage_dir: path too long");
		return PI_ERR_INVALID;
	}
	if (!create && stat(tmp, &sb) != 0)
		return preflight_creatable(tmp, fd);
	if (!create && (!S_ISDIR(sb.st_mode) ||
	    access(tmp, W_OK | X_OK) != 0)) {
		preflight_say(fd, "storage_dir: %s is not a writable directory",
		    tmp);
		return PI_ERR_INVALID;
	}
	err[0] = '\0';
	st = storage_open(cfg, err, sizeof(err));
	if (st == NULL) {
		preflight_say(fd, "storage: %s", err);
		return PI_ERR_INVALID;
	}
	storage_close(st);
	return 0;
}

/* The child: every check, each failure one line on fd. */
static void
preflight_child(const struct config *cfg, int create, int fd)
{
	int bad = 0;

	/* The checks' own log lines would repeat what goes on the pipe. */
	(void)log_init("error", "");
	bad |= preflight_policy(cfg, fd) != 0;
	bad |= preflight_jwt(cfg, fd) != 0;
	bad |= preflight_storage(cfg, create, fd) != 0;
	_exit(bad ? 1 : 0);
}

int
preflight_run(const struct config *cfg, int create, char *out, size_t outsz)
{
	int pfd[2], status, rc = 0;
	size_t len = 0;
	pid_t pid;

	if (outsz == 0)
		return PI_ERR_INTERNAL;
	out[0] = '\0';
	if (pipe(pfd) != 0) {
		(void)snprintf(out, outsz, "preflight: pipe: %s", strerror(errno));
		return PI_ERR_INTERNAL;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		(void)snprintf(out, outsz, "preflight: fork: %s", strerror(errno));
		(void)close(pfd[0]);
		(void)close(pfd[1]);
		return PI_ERR_INTERNAL;
	}
	if (pid == 0) {
		(void)close(pfd[0]);
		preflight_child(cfg, create, pfd[1]);
	}
	(void)close(pfd[1]);
	for (;;) {
		char buf[512];
		ssize_t n = read(pfd[0], buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		/* What does not fit is dropped; the lines before it stay. */
		for (ssize_t i = 0; i < n && len + 1 < outsz; i++)
			out[len++] = buf[i];
		out[len] = '\0';
	}
	(void)close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = -1;
			break;
		}
	while (len > 0 && out[len - 1] == '\n')
		out[--len] = '\0';
	if (status == -1 || !WIFEXITED(status)) {
		(void)snprintf(out + len, outsz - len, "%spreflight: the check "
		    "process died%s%s", len > 0 ? "\n" : "",
		    status != -1 && WIFSIGNALED(status) ? ": " : "",
		    status != -1 && WIFSIGNALED(status) ?
		    strsignal(WTERMSIG(status)) : "");
		rc = PI_ERR_INTERNAL;
	} else if (WEXITSTATUS(status) != 0 || len > 0)
		rc = PI_ERR_INVALID;
	return rc;
}
