/* pidfile.c — the master's pid file.
 *
 * Hosts without systemd as PID 1 (containers, appliances) need a way to find
 * the master: the package's prerm stops it through this file, logrotate's
 * postrotate sends it SIGUSR1, and an administrator's `kill -HUP`. So
 * `polaimg serve` with pid_file set writes its pid there once its sockets
 * are open (a reader that finds a pid may connect) and removes the file when
 * it exits cleanly.
 *
 * Liveness is a lock, not a guess: the file is locked with flock() for the
 * master's whole life, before the sockets are opened, so a second master on
 * the same file is refused before it can unlink or steal the first one's
 * unix socket. A pid read from a file is never trusted on its own (the pid
 * may have been reused since a crash): a file without a lock is stale, and
 * is taken over. flock() locks belong to the open file description, which
 * the workers inherit across fork(); they close their copy at once, so the
 * lock lives exactly as long as the master does.
 *
 * The file is written in place (truncate, write): a reader may see it empty
 * between the lock and the write, while the sockets are being opened, and
 * must treat that as "starting".
 */
#include "pidfile.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* The pid in the file fd, or 0 when there is none. */
static pid_t
pidfile_read(int fd)
{
	char buf[32];
	ssize_t n;
	long v;
	char *end;

	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || end == buf || v <= 0 || v > 0x7fffffffL)
		return 0;
	return (pid_t)v;
}

int
pidfile_lock(const char *path, int *fd, pid_t *holder)
{
	int f, rc;

	*fd = -1;
	*holder = 0;
	f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (f < 0)
		return PI_ERR_IO;
	if (flock(f, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;

		rc = e == EWOULDBLOCK ? PI_ERR_CONFLICT : PI_ERR_IO;
		if (rc == PI_ERR_CONFLICT)
			*holder = pidfile_read(f);
		(void)close(f);
		errno = e;
		return rc;
	}
	/* Ours now: whatever a dead master left goes. */
	if (ftruncate(f, 0) != 0) {
		int e = errno;

		(void)close(f);
		errno = e;
		return PI_ERR_IO;
	}
	*fd = f;
	return 0;
}

int
pidfile_write(int fd)
{
	char buf[32];
	int n;

	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (n <= 0 || (size_t)n >= sizeof(buf))
		return PI_ERR_INTERNAL;
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
		return PI_ERR_IO;
	return 0;
}

void
pidfile_remove(const char *path, int fd)
{
	if (fd < 0)
		return;
	/* Unlinked while still locked: a new master that starts now creates
	 * a new file rather than lock this one. */
	(void)unlink(path);
	(void)close(fd);
}

void
pidfile_close(int fd)
{
	if (fd >= 0)
		(void)close(fd);
}
