/* test_pidfile.c — the master's pid file: the lock refuses a second holder
 * and names the first, a file left by a dead holder is taken over, the
 * content is the writer's pid, and removal unlinks it. Real processes: the
 * "other master" is a forked child holding the lock. */
#include "pidfile.h"
#include "common.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int
read_pid(const char *path)
{
	char buf[32] = { 0 };
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	return atoi(buf);
}

int
main(void)
{
	char dir[] = "/tmp/polaimg-pidfile.XXXXXX", path[128];
	int fd = -1, fd2 = -1, p[2];
	pid_t holder = -1, child;
	char c;

	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/polaimg.pid", dir);

	/* A stale file (a master that was SIGKILLed): no lock, taken over. */
	{
		FILE *f = fopen(path, "w");

		fputs("999999\n", f);
		fclose(f);
	}
	is_int(pidfile_lock(path, &fd, &holder), 0, "a stale pid file is taken over");
	is_int(read_pid(path), 0, "and emptied until the sockets are open");
	is_int(pidfile_write(fd), 0, "pidfile_write");
	is_int(read_pid(path), (int)getpid(), "the file holds the writer's pid");
	pidfile_remove(path, fd);
	ok(access(path, F_OK) != 0, "pidfile_remove unlinks it");

	/* A live holder: another process with the lock. */
	if (pipe(p) != 0)
		return 1;
	child = fork();
	if (child == 0) {
		int cfd;
		pid_t h;

		close(p[0]);
		if (pidfile_lock(path, &cfd, &h) != 0 || pidfile_write(cfd) != 0)
			_exit(1);
		/* A worker's copy closed: the lock must stay. */
		if (fork() == 0) {
			pidfile_close(cfd);
			_exit(0);
		}
		(void)wait(NULL);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	ok(read(p[0], &c, 1) == 1, "the other master holds the file");
	holder = 0;
	is_int(pidfile_lock(path, &fd2, &holder), PI_ERR_CONFLICT,
	    "a second master is refused while the first lives");
	is_int((int)holder, (int)child, "and told the first one's pid");
	is_int(fd2, -1, "and holds nothing");
	is_int(read_pid(path), (int)child, "the first one's file is untouched");
	kill(child, SIGKILL);
	(void)waitpid(child, NULL, 0);
	is_int(pidfile_lock(path, &fd2, &holder), 0,
	    "once it is dead, its file is taken over");
	pidfile_remove(path, fd2);
	rmdir(dir);
	return done_testing();
}
