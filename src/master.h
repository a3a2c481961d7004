/* master.h — the pre-fork supervisor (`polaimg serve`).
 *
 * The master owns the listen socket and a shared scoreboard, forks N workers
 * and keeps N running: respawn with back-off, recycle, kill stuck requests,
 * graceful stop and reload. Workers share nothing but the socket and their
 * own scoreboard slot.
 */
#ifndef POLAIMG_MASTER_H
#define POLAIMG_MASTER_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* One per worker, in MAP_SHARED memory the master creates before fork. The
 * worker writes, the master reads. */
struct scoreboard_slot {
	volatile sig_atomic_t busy;       /* 1 while a request is handled */
	volatile int64_t request_started; /* CLOCK_MONOTONIC seconds, when busy */
	volatile uint64_t requests;       /* handled since the worker started */
	char request_id[40];              /* of the current request, for the kill log */
};

struct master_settings {
	int workers;              /* how many to keep running (>= 1) */
	int request_timeout;      /* seconds; a request busy longer gets SIGKILL */
};

struct master_hooks {
	void *ud;
	/* Runs in the child after fork; returns its exit status. The worker
	 * itself exits after max_requests (the master then respawns it). */
	int (*worker_main)(void *ud, int listen_fd, struct scoreboard_slot *slot);
	/* SIGHUP: re-read the configuration; fills *s with the new values.
	 * Returns 0, or -1 to keep the old configuration (logged). */
	int (*reload)(void *ud, struct master_settings *s);
	/* SIGUSR1: reopen log files. */
	void (*reopen_logs)(void *ud);
};

/* Runs the supervisor until SIGTERM/SIGINT (graceful: workers finish their
 * current request) or SIGQUIT (immediate). Returns the process exit status. */
int master_run(int listen_fd, const struct master_settings *s,
    const struct master_hooks *hooks);

/* In a worker: install the worker's signal handling. SIGTERM while idle
 * exits at once; while busy it is remembered and worker_should_stop()
 * becomes true after the request. */
void worker_signals_init(struct scoreboard_slot *slot);
int worker_should_stop(void);

#endif
