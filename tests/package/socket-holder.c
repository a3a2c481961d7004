/* socket-holder.c — what systemd does with polaimg.socket, for the package
 * test on a machine without a running systemd.
 *
 *     socket-holder PATH[,PATH2] USER GROUP PIDFILE -- COMMAND [ARG...]
 *
 * Listens on the unix socket PATH (mode 0660, owned USER:GROUP), and on
 * PATH2 too when given (polaimg-ingest.socket), and keeps them open for its
 * whole life. SIGUSR1 starts COMMAND with the sockets as fds 3 and 4 (the
 * command sets LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID itself, as the last
 * shell before exec knows its pid) and writes the command's pid to PIDFILE; when
 * the command exits, PIDFILE is removed and "<status>" written to
 * PIDFILE.status. Meanwhile connections queue on the socket, exactly as they
 * do while systemd restarts polaimg.service. SIGTERM: stop, remove the
 * sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t want_start, want_stop, got_child;

static void on_usr1(int s) { (void)s; want_start = 1; }
static void on_term(int s) { (void)s; want_stop = 1; }
static void on_chld(int s) { (void)s; got_child = 1; }

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		perror(path);
}

/* A listening unix socket at path, mode 0660, owned uid:gid; -1 on error. */
static int
listen_at(const char *path, uid_t uid, gid_t gid)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -1;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	(void)unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    chown(path, uid, gid) != 0 || chmod(path, 0660) != 0 ||
	    listen(fd, 1024) != 0) {
		perror(path);
		return -1;
	}
	return fd;
}

int
main(int argc, char **argv)
{
	struct passwd *pw;
	struct group *gr;
	char statpath[4096], buf[32], *path2;
	sigset_t block, old;
	pid_t child = 0;
	int fd, fd2 = -1;

	if (argc < 7 || strcmp(argv[5], "--") != 0) {
		fprintf(stderr, "usage: socket-holder PATH[,PATH2] USER GROUP PIDFILE -- CMD...\n");
		return 2;
	}
	pw = getpwnam(argv[2]);
	gr = getgrnam(argv[3]);
	if (pw == NULL || gr == NULL) {
		fprintf(stderr, "socket-holder: unknown user or group\n");
		return 2;
	}
	snprintf(statpath, sizeof(statpath), "%s.status", argv[4]);
	path2 = strchr(argv[1], ',');
	if (path2 != NULL)
		*path2++ = '\0';
	fd = listen_at(argv[1], pw->pw_uid, gr->gr_gid);
	if (fd < 0 || (path2 != NULL &&
	    (fd2 = listen_at(path2, pw->pw_uid, gr->gr_gid)) < 0))
		return 1;
	/* Out of the way of 3 and 4, where the child gets them. */
	if ((fd = fcntl(fd, F_DUPFD, 10)) < 0 ||
	    (fd2 >= 0 && (fd2 = fcntl(fd2, F_DUPFD, 10)) < 0)) {
		perror("socket-holder: dup");
		return 1;
	}
	signal(SIGUSR1, on_usr1);
	signal(SIGTERM, on_term);
	signal(SIGCHLD, on_chld);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &old);
	write_file(statpath, "ready\n");
	for (;;) {
		while (!want_start && !want_stop && !got_child)
			sigsuspend(&old);
		if (got_child) {
			int status;
			pid_t p;

			got_child = 0;
			while ((p = waitpid(-1, &status, WNOHANG)) > 0)
				if (p == child) {
					child = 0;
					(void)unlink(argv[4]);
					snprintf(buf, sizeof(buf), "%d\n", WIFEXITED(status) ?
					    WEXITSTATUS(status) : 128 + WTERMSIG(status));
					write_file(statpath, buf);
				}
		}
		if (want_stop) {
			if (child > 0)
				kill(child, SIGTERM);
			(void)unlink(argv[1]);
			if (path2 != NULL)
				(void)unlink(path2);
			return 0;
		}
		if (want_start) {
			want_start = 0;
			if (child > 0)
				continue;
			child = fork();
			if (child == 0) {
				sigprocmask(SIG_SETMASK, &old, NULL);
				signal(SIGUSR1, SIG_DFL);
				signal(SIGTERM, SIG_DFL);
				signal(SIGCHLD, SIG_DFL);
				if (dup2(fd, 3) != 3 || close(fd) != 0 ||
				    (fd2 >= 0 && (dup2(fd2, 4) != 4 ||
				    close(fd2) != 0)))
					_exit(127);
				execvp(argv[6], argv + 6);
				_exit(127);
			}
			snprintf(buf, sizeof(buf), "%ld\n", (long)child);
			write_file(argv[4], buf);
		}
	}
}
