/* master.h — the pre-fork supervisor (`polaimg serve`).
 *
 * The master owns the listen sockets and a shared scoreboard, forks N workers
 * per pool and keeps N running: respawn with back-off, recycle, kill stuck
 * requests, graceful stop and reload. A pool is a listening socket with its
 * own worker count and request_timeout: polaimg runs the read pool (pool 0)
 * and, when ingest_listen is set, the ingest pool (pool 1) that decodes
 * uploads. Workers share nothing but their pool's socket, their own
 * scoreboard slot and the per-user upload count (master_ingest_claim).
 */
#ifndef POLAIMG_MASTER_H
#define POLAIMG_MASTER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The most workers one master runs, all pools together. The scoreboard is
 * allocated once, before the first fork, with room for two full generations
 * (2 × this), so a reload to any worker count up to this bound never needs a
 * new mapping. */
#define MASTER_MAX_WORKERS 256
/* Pools: the read pool, and the ingest pool when there is one. */
#define MASTER_MAX_POOLS 2
enum master_pool_id { MASTER_POOL_READ = 0, MASTER_POOL_INGEST = 1 };
/* Room for a user id (a UUID) in a slot. */
#define MASTER_USER_MAX 40

/* One per worker, in MAP_SHARED memory the master creates before fork. The
 * worker writes, the master reads. The master zeroes a slot before it forks
 * the worker that will own it.
 *
 * A worker starting a request writes request_id and request_started first and
 * sets busy = 1 last, as soon as accept returns (a SIGTERM in between finds
 * the worker idle and drops the connection just accepted, so keep that window
 * short); after the response it sets busy = 0 (and counts it in requests),
 * then asks master_should_stop().
 *
 * ingest_user: the user an upload is being decoded for, published by
 * master_ingest_claim() (ingesting = 1 after the bytes) and withdrawn by
 * master_ingest_release() after the request; every worker reads every
 * slot's pair to count a user's uploads in flight. */
struct scoreboard_slot {
	volatile sig_atomic_t busy;       /* 1 while a request is handled */
	volatile sig_atomic_t ready;      /* 1 once the worker can serve */
	volatile int ingesting;           /* 1 while ingest_user is valid */
	volatile int64_t request_started; /* CLOCK_MONOTONIC seconds, when busy */
	volatile uint64_t requests;       /* handled since the worker started */
	char request_id[40];              /* of the current request, for the kill log */
	char ingest_user[MASTER_USER_MAX];/* see above; NUL-padded */
};

/* One pool: its listening socket and how many workers serve it. */
struct master_pool {
	int listen_fd;            /* fixed for the master's life */
	int workers;              /* how many to keep running, >= 1 */
	int request_timeout;      /* seconds (>= 1); a request busy longer gets SIGKILL */
};

/* npools and the listen_fds are fixed for the master's life (a reload hook
 * that changes them is ignored on those fields); the workers of all pools
 * together are at most MASTER_MAX_WORKERS. */
struct master_settings {
	int npools;               /* 1 or 2 (MASTER_POOL_READ, MASTER_POOL_INGEST) */
	struct master_pool pool[MASTER_MAX_POOLS];
};

struct master_hooks {
	void *ud;
	/* Runs in the child after fork, with the listen socket of its pool
	 * (pool is MASTER_POOL_READ or MASTER_POOL_INGEST) open, an empty
	 * signal mask and default dispositions except SIGPIPE, SIGHUP and
	 * SIGUSR1, which are ignored. It must call master_signals_init(slot)
	 * before it accepts its first connection, set slot->ready = 1 once it
	 * has loaded everything it needs to serve, and returns the exit status
	 * (0..255; anything else exits 1): 0 after max_requests (the master
	 * respawns it at once); non-zero counts as a crash and is respawned
	 * with back-off. */
	int (*worker_main)(void *ud, int pool, int listen_fd,
	    struct scoreboard_slot *slot);
	/* SIGHUP, in the master: re-read the configuration; fills *s (which
	 * holds the current values on entry) with the new values. Returns 0, or
	 * a pi_err (PI_ERR_INVALID) to keep the old configuration and the
	 * running workers (logged).
	 * NULL: SIGHUP rolls the workers with the same settings. */
	int (*reload)(void *ud, struct master_settings *s);
	/* SIGUSR1, in the master: reopen log files. May be NULL. */
	void (*reopen_logs)(void *ud);
	/* In the master, once a worker was reaped, however it ended: clean
	 * up after it (its temp files). May be NULL. */
	void (*worker_gone)(void *ud, pid_t pid);
};

/* Runs the supervisor until SIGTERM/SIGINT (graceful: workers finish their
 * current request; any still running request_timeout + 5 s later are
 * SIGKILLed) or SIGQUIT (immediate SIGKILL). Returns after every worker has
 * been reaped: its exit status, 0, or 1 if the settings are invalid or the
 * master could not set itself up. Uses SIGALRM (setitimer) for its own wake-ups; restores the
 * caller's signal dispositions and mask before it returns. */
int master_run(const struct master_settings *s,
    const struct master_hooks *hooks);

/* In a worker: install the worker's signal handling. slot must not be NULL
 * (a worker started without a master passes a slot of its own). SIGTERM and
 * SIGINT while idle exit at once (_exit(0)) unless the worker holds
 * unwritten audit rows (master_set_unwritten); while busy, or holding rows,
 * they are remembered and master_should_stop() becomes true (the signal
 * ends an idle worker's epoll_wait, which is never restarted, so the rows
 * are written before it exits). SIGHUP is ignored. SIGUSR1 (forwarded by
 * the master) sets the flag read by master_should_reopen_logs(); SIGPIPE is
 * ignored. Handlers use SA_RESTART.
 * Returns 0, or PI_ERR_INTERNAL if a handler could not be installed (errno
 * set). */
int master_signals_init(struct scoreboard_slot *slot);
/* Whether the worker holds audit rows not yet written (see above). */
void master_set_unwritten(int unwritten);
/* The counter of changes shared by the workers of this master (in the
 * scoreboard's mapping), or NULL in a worker started without a master. */
uint64_t *master_shared_changes(void);
/* In a worker, before it decodes an upload for user: publishes the user in
 * its slot, then counts the slots (all pools, both generations) publishing
 * the same user. Returns 0 if at most limit are (the claim stands until
 * master_ingest_release), PI_ERR_BUSY if more are: the claim is withdrawn
 * and the upload must be refused. Two claims racing may both see each other and
 * both be refused; more than limit are never admitted. limit <= 0, an
 * empty user, or a worker without a master (spawn-fcgi, mod_fcgid: no
 * shared scoreboard) always returns 0: no limit. */
int master_ingest_claim(const char *user, int limit);
/* Withdraws this worker's claim, if any (after every request). The master
 * clears the slot of a worker it reaps, so a killed worker's claim ends
 * with it. */
void master_ingest_release(void);
/* In a worker: true once SIGTERM/SIGINT arrived during a request: finish
 * it, then exit 0. */
bool master_should_stop(void);
/* In a worker: true once per SIGUSR1 received since the last call (the flag
 * is cleared). */
bool master_should_reopen_logs(void);

#endif
