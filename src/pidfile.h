/* pidfile.h — the master's pid file (pid_file): one live master per file. */
#ifndef POLAIMG_PIDFILE_H
#define POLAIMG_PIDFILE_H

#include <sys/types.h>

/*
 * Opens (creating it, mode 0644) and locks path with flock(LOCK_EX|LOCK_NB)
 * before the master opens its sockets. On success *fd is the locked file,
 * still empty; the caller writes its pid with pidfile_write() once its
 * sockets are open and releases it with pidfile_remove(). When another
 * process holds the lock, returns PI_ERR_CONFLICT and sets *holder to the pid
 * in the file (0 if it cannot be read); other failures PI_ERR_IO (errno
 * kept). A file left by a master that died holds no lock and is taken over.
 */
int pidfile_lock(const char *path, int *fd, pid_t *holder);

/* Writes "<pid>\n" of the calling process into the locked file: 0 or
 * PI_ERR_IO. */
int pidfile_write(int fd);

/* At a clean exit: removes path and closes fd (fd < 0: nothing). */
void pidfile_remove(const char *path, int fd);

/* In a worker after fork: closes its inherited copy of fd (fd < 0: no-op).
 * The master's lock stays: it belongs to the master's descriptor too. */
void pidfile_close(int fd);

#endif
