/* master.c — the pre-fork supervisor: keep N workers running.
 *
 * The model is PHP-FPM's static pool with nginx's signal discipline
 * (ngx_process_cycle.c): the signal handlers only set sig_atomic_t flags, and
 * the master spends its life in sigsuspend() with those signals blocked, so
 * every action (fork, kill, reload, logging) happens in ordinary code, one
 * wake-up at a time. A one-shot ITIMER_REAL (SIGALRM) bounds each sleep: at
 * most a second, less when a respawn back-off or the stop deadline is due
 * sooner. On each wake-up the master reaps children (waitpid WNOHANG in a
 * loop, after SIGCHLD), acts on the signal flags, starts the workers that
 * are due, retires an old generation once the new one is complete, and kills
 * workers whose request ran past request_timeout.
 *
 * Scoreboard. One MAP_SHARED|MAP_ANONYMOUS mapping, created before the first
 * fork, of 2 × MASTER_MAX_WORKERS slots (112 bytes each, 56 KiB). A worker
 * owns one slot from its fork until the master reaps it; the master zeroes
 * the slot before the fork and reads the request id from it after the exit.
 * Sizing it for two full generations once means a reload to another worker
 * count never remaps memory that live workers point into. Should reloads
 * come faster than old workers drain, a position with no free slot simply
 * waits (it is retried with back-off) until the old workers exit, which
 * request_timeout bounds.
 *
 * Pools. Each pool (the read pool; the ingest pool when ingest_listen is
 * set) has its own listening socket, worker count and request_timeout; a
 * position belongs to one pool and its worker is handed that pool's socket.
 * Respawn, reload, timeouts and stopping below work per position, so the
 * pools share this one loop but never each other's workers.
 *
 * Positions and generations. The current generation has `workers`
 * positions per pool; each has at most one worker and its own respawn
 * state. A worker that exits 0 (recycled after max_requests) or was killed for a timeout is
 * replaced at once. One that crashed or exited non-zero is replaced after a
 * back-off that starts at 100 ms and doubles up to 10 s, so a crash loop
 * costs a few forks a second at first and one every 10 s later; a worker
 * that lived more than 10 s resets its position's back-off. SIGHUP calls the
 * reload hook, turns every live worker into the previous generation and
 * empties the positions: the new generation is forked in the same wake-up,
 * and only once all of a pool's positions hold a ready worker are that pool's old
 * workers sent SIGTERM — they finish their current request first, so
 * capacity never drops below N during a reload. A failed reload keeps everything as it is.
 *
 * Failing at start. A worker that exits non-zero before it set its slot's
 * ready flag (it could not load what it needs: a policy, a key, the
 * storage) failed at start. When, before any worker of this master was
 * ever ready, every position has failed at start MASTER_START_TRIES times
 * in a row (about 1.5 s of back-off), the configuration cannot work: the
 * master stops and master_run() returns 1, so that `serve` exits non-zero
 * and its supervisor (systemd) shows it failed, instead of a master
 * respawning workers for ever while the web server times out every
 * request. `serve` runs the same checks before it forks (preflight.c), so
 * this is the net under them. After the first ready worker it never
 * applies: a new generation (SIGHUP) that fails at start retires nothing,
 * since a pool's old workers are asked to stop only once every position of
 * the new generation holds a ready worker, and keeps being retried with
 * back-off while the old generation serves.
 *
 * Stopping. SIGTERM/SIGINT forwards SIGTERM to every worker (an idle worker
 * exits at once, a busy one after its request; see master_signals_init()),
 * stops respawning, and waits; workers still alive request_timeout + 5 s
 * later are SIGKILLed. SIGQUIT SIGKILLs every worker at once. Either way
 * master_run() returns only after every worker has been reaped.
 *
 * Logging is one line per event through master_log() and the log module.
 */
#include "master.h"
#include "common.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MASTER_SLOTS (2 * MASTER_MAX_WORKERS)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define BACKOFF_RESET_MS 10000  /* a worker that lived longer resets back-off */
#define STOP_GRACE_S 5          /* added to request_timeout on SIGTERM */
#define TICK_MS 1000            /* longest sleep between two checks */
#define MASTER_START_TRIES 5    /* failures at start of every position */

/* A live worker, indexed by its scoreboard slot; pid 0 = slot free. */
struct proc {
	pid_t pid;
	int pool;            /* MASTER_POOL_READ or MASTER_POOL_INGEST */
	int pos;             /* position in the current generation; -1: older */
	int64_t started_ms;  /* monotonic */
	int term_sent;       /* SIGTERM sent (retired or stopping) */
	int timeout_killed;  /* SIGKILLed for request_timeout */
};

/* A place for one worker of the current generation. */
struct position {
	int slot;              /* the worker holding it, or -1 */
	int64_t backoff_ms;    /* last back-off applied, 0 = none */
	int64_t not_before_ms; /* monotonic; when slot < 0, spawn from then */
	int start_fails;       /* workers in a row that failed at start */
};

struct master {
	struct master_settings set;
	const struct master_hooks *hooks;
	struct scoreboard_slot *sb;          /* MASTER_SLOTS, shared */
	struct proc procs[MASTER_SLOTS];
	struct position pos[MASTER_MAX_POOLS][MASTER_MAX_WORKERS];
	sigset_t waitmask;                   /* the mask during sigsuspend() */
	int stopping;                        /* SIGTERM/SIGINT/SIGQUIT seen */
	int killed_all;                      /* stragglers were SIGKILLed */
	int64_t kill_at_ms;                  /* when stopping: SIGKILL then */
	int ever_ready;                      /* a worker was ready once */
	int start_failed;                    /* gave up: every worker fails */
};

/* Signals the master catches; SIGPIPE is ignored besides. */
static const int master_signals[] = {
	SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGCHLD, SIGALRM,
};

/* Set by the handler, read and cleared by the loop (signals are blocked
 * outside sigsuspend(), so a flag never changes under the loop's feet). */
static volatile sig_atomic_t sig_stop, sig_quit, sig_reload, sig_reopen,
    sig_child;

/* In the master's shared mapping (master_run), inherited by its workers. */
static uint64_t *shared_changes;
static struct scoreboard_slot *shared_sb;   /* MASTER_SLOTS slots */

/* Worker side: see master_signals_init(). */
static struct scoreboard_slot *worker_slot;
static volatile sig_atomic_t worker_stop, worker_reopen, worker_unwritten;

static void master_log(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void bfmt(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * One log line on stderr, in a single write(2) so that lines from the master
 * and the workers never interleave:
 * "2026-11-25T08:30:00Z polaimg[<pid>] master: <message>". A message longer
 * than the buffer is cut and ends in "...".
 */
static void
master_log(const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("master: %s", msg);
}

/* snprintf into a log fragment; on an encoding error the fragment is
 * empty, on truncation it is cut (both harmless for a log line). */
static void
bfmt(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0)
		buf[0] = '\0';
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 pool or 2, each with at least one worker and a timeout, and at most
 * MASTER_MAX_WORKERS workers in all. */
static int
settings_valid(const struct master_settings *s)
{
	int total = 0;

	if (s->npools < 1 || s->npools > MASTER_MAX_POOLS)
		return 0;
	for (int i = 0; i < s->npools; i++) {
		if (s->pool[i].workers < 1 ||
		    s->pool[i].workers > MASTER_MAX_WORKERS ||
		    s->pool[i].request_timeout < 1)
			return 0;
		total += s->pool[i].workers;
	}
	return total <= MASTER_MAX_WORKERS;
}

static const char *
pool_name(int pool)
{
	return pool == MASTER_POOL_INGEST ? "ingest" : "read";
}

/* The longest request_timeout of the pools (for the stop deadline). */
static int
longest_timeout(const struct master_settings *s)
{
	int t = 0;

	for (int i = 0; i < s->npools; i++)
		if (s->pool[i].request_timeout > t)
			t = s->pool[i].request_timeout;
	return t;
}

static void
slot_clear(struct scoreboard_slot *s)
{
	s->busy = 0;
	s->ingesting = 0;
	s->request_started = 0;
	memset(s->ingest_user, 0, sizeof(s->ingest_user));
	s->requests = 0;
	memset(s->request_id, 0, sizeof(s->request_id));
}

/*
 * Copies the slot's request id into buf (size > 1) as printable ASCII: the
 * worker writes it without a lock, so the copy is bounded, NUL-terminated and
 * anything else is replaced by '?'. An empty id becomes "-".
 */
static void
slot_request_id(const struct scoreboard_slot *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; i + 1 < size && i < sizeof(s->request_id); i++) {
		char c = s->request_id[i];

		if (c == '\0')
			break;
		buf[i] = (c > ' ' && c < 0x7f) ? c : '?';
	}
	buf[i] = '\0';
	if (i == 0 && size > 1)
		buf[0] = '-', buf[1] = '\0';
}

static void
master_on_signal(int signo)
{
	switch (signo) {
	case SIGTERM:
	case SIGINT:
		sig_stop = 1;
		break;
	case SIGQUIT:
		sig_quit = 1;
		break;
	case SIGHUP:
		sig_reload = 1;
		break;
	case SIGUSR1:
		sig_reopen = 1;
		break;
	case SIGCHLD:
		sig_child = 1;
		break;
	default:
		/* SIGALRM: the wake-up itself is the point. */
		break;
	}
}

static int
master_live(const struct master *m)
{
	int n = 0;

	for (int i = 0; i < MASTER_SLOTS; i++)
		if (m->procs[i].pid > 0)
			n++;
	return n;
}

/* Sends signo to every live worker; with only_new_term, skips the ones that
 * already had SIGTERM and marks the others. Returns how many were sent. */
static int
master_signal_all(struct master *m, int signo, int only_new_term)
{
	int n = 0;

	for (int i = 0; i < MASTER_SLOTS; i++) {
		struct proc *p = &m->procs[i];

		if (p->pid <= 0 || (only_new_term && p->term_sent))
			continue;
		if (kill(p->pid, signo) != 0) {
			if (errno != ESRCH)
				master_log("kill(%ld, %d): %s", (long)p->pid,
				    signo, strerror(errno));
			continue;
		}
		if (signo == SIGTERM)
			p->term_sent = 1;
		n++;
	}
	return n;
}

/*
 * In the child after fork(): give the worker a clean signal state (default
 * dispositions, empty mask; SIGPIPE stays ignored, and SIGHUP and SIGUSR1 are
 * ignored so that a forwarded SIGUSR1 cannot kill a worker that has not yet
 * reached master_signals_init()), run worker_main, and _exit() with its
 * status. Never returns; _exit() skips the master's atexit handlers and stdio
 * buffers, which belong to the master.
 */
static void
master_child(struct master *m, int pool, int slot)
{
	struct sigaction sa;
	sigset_t empty;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < PI_ARRAY_LEN(master_signals); i++) {
		int signo = master_signals[i];

		sa.sa_handler = signo == SIGHUP || signo == SIGUSR1 ?
		    SIG_IGN : SIG_DFL;
		if (sigaction(signo, &sa, NULL) != 0)
			_exit(1);
	}
	sigemptyset(&empty);
	if (sigprocmask(SIG_SETMASK, &empty, NULL) != 0)
		_exit(1);
	/* The other pool's socket is not this worker's to accept on. */
	for (int i = 0; i < m->set.npools; i++)
		if (i != pool && m->set.pool[i].listen_fd >= 0 &&
		    m->set.pool[i].listen_fd != m->set.pool[pool].listen_fd)
			(void)close(m->set.pool[i].listen_fd);
	rc = m->hooks->worker_main(m->hooks->ud, pool,
	    m->set.pool[pool].listen_fd, &m->sb[slot]);
	_exit(rc >= 0 && rc <= 255 ? rc : 1);
}

/* Forks the worker for position pos of pool. Returns 0, or -1 (logged) when
 * there is no free slot or fork() failed. */
static int
master_spawn(struct master *m, int pool, int pos, int64_t now)
{
	struct proc *p;
	pid_t pid;
	int slot;

	for (slot = 0; slot < MASTER_SLOTS; slot++)
		if (m->procs[slot].pid == 0)
			break;
	if (slot == MASTER_SLOTS) {
		master_log("no free scoreboard slot for a new worker; "
		    "waiting for old workers to exit");
		return -1;
	}
	slot_clear(&m->sb[slot]);
	pid = fork();
	if (pid < 0) {
		master_log("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		master_child(m, pool, slot);
	p = &m->procs[slot];
	p->pid = pid;
	p->pool = pool;
	p->pos = pos;
	p->started_ms = now;
	p->term_sent = 0;
	p->timeout_killed = 0;
	m->pos[pool][pos].slot = slot;
	if (m->set.npools > 1)
		master_log("worker %ld started (%s pool)", (long)pid,
		    pool_name(pool));
	else
		master_log("worker %ld started", (long)pid);
	return 0;
}

/* Next back-off for a position after a crash: 100 ms, doubling to 10 s. */
static int64_t
backoff_next(int64_t prev)
{
	if (prev <= 0)
		return BACKOFF_MIN_MS;
	return prev >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS : prev * 2;
}

/* Forks the workers whose positions are empty and due. */
static void
master_spawn_due(struct master *m, int64_t now)
{
	for (int k = 0; k < m->set.npools; k++)
		for (int i = 0; i < m->set.pool[k].workers; i++) {
			struct position *q = &m->pos[k][i];

			if (q->slot >= 0 || now < q->not_before_ms)
				continue;
			if (master_spawn(m, k, i, now) != 0) {
				q->backoff_ms = backoff_next(q->backoff_ms);
				q->not_before_ms = now + q->backoff_ms;
			}
		}
}

/* Once every position of a pool's current generation holds a ready worker
 * (one that failed at start retires nothing), asks
 * that pool's previous generation to stop (gracefully). */
static void
master_retire_old(struct master *m)
{
	int n = 0, full[MASTER_MAX_POOLS] = { 0 };

	for (int k = 0; k < m->set.npools; k++) {
		full[k] = 1;
		for (int i = 0; i < m->set.pool[k].workers; i++)
			if (m->pos[k][i].slot < 0 ||
			    !m->sb[m->pos[k][i].slot].ready)
				full[k] = 0;
	}
	for (int i = 0; i < MASTER_SLOTS; i++) {
		struct proc *p = &m->procs[i];

		if (p->pid <= 0 || p->pos >= 0 || p->term_sent ||
		    !full[p->pool])
			continue;
		if (kill(p->pid, SIGTERM) != 0 && errno != ESRCH)
			master_log("kill(%ld, SIGTERM): %s", (long)p->pid,
			    strerror(errno));
		p->term_sent = 1;
		n++;
	}
	if (n > 0)
		master_log("new generation running; %d old worker%s asked to "
		    "stop", n, n == 1 ? "" : "s");
}

/*
 * Bookkeeping for a reaped worker: log how it ended (with the request it was
 * handling, read from its slot before the slot is reused), free its slot and,
 * unless stopping or it belonged to an older generation, schedule its
 * replacement: at once after a clean exit or a timeout kill, after the
 * position's back-off after a crash.
 */
static void
master_exited(struct master *m, int slot, int status, int64_t now)
{
	struct proc *p = &m->procs[slot];
	struct scoreboard_slot *s = &m->sb[slot];
	char rid[sizeof(s->request_id) + 1], how[96], next[64];
	unsigned long long requests = s->requests;
	int crashed, busy = s->busy, ready = s->ready;
	int64_t lived = now - p->started_ms;

	rid[0] = '\0';
	if (busy)
		slot_request_id(s, rid, sizeof(rid));
	if (WIFEXITED(status)) {
		bfmt(how, sizeof(how), "exited with status %d",
		    WEXITSTATUS(status));
		crashed = WEXITSTATUS(status) != 0;
	} else if (WIFSIGNALED(status)) {
		bfmt(how, sizeof(how), "killed by signal %d (%s)%s",
		    WTERMSIG(status), strsignal(WTERMSIG(status)),
		    p->timeout_killed ? " for request_timeout" : "");
		crashed = !p->timeout_killed;
	} else {
		bfmt(how, sizeof(how), "ended with wait status %#x",
		    (unsigned)status);
		crashed = 1;
	}
	next[0] = '\0';
	if (!m->stopping && p->pos >= 0) {
		struct position *q = &m->pos[p->pool][p->pos];

		q->slot = -1;
		if (lived > BACKOFF_RESET_MS)
			q->backoff_ms = 0;
		q->start_fails = crashed && !ready ? q->start_fails + 1 : 0;
		if (crashed) {
			q->backoff_ms = backoff_next(q->backoff_ms);
			q->not_before_ms = now + q->backoff_ms;
			bfmt(next, sizeof(next), "; respawning in %lld ms",
			    (long long)q->backoff_ms);
		} else {
			q->not_before_ms = now;
			bfmt(next, sizeof(next), "; respawning");
		}
	} else if (!m->stopping)
		bfmt(next, sizeof(next), " (previous generation)");
	master_log("worker %ld %s after %llu request%s%s%s%s", (long)p->pid,
	    how, requests, requests == 1 ? "" : "s",
	    busy ? " while handling request " : "", busy ? rid : "", next);
	if (ready)
		m->ever_ready = 1;
	memset(p, 0, sizeof(*p));
	slot_clear(s);
}

/*
 * Whether to give up (see "Failing at start" above): no worker was ever
 * ready, and every position has failed at start MASTER_START_TRIES times in
 * a row. Notes a live ready worker on the way.
 */
static int
master_start_hopeless(struct master *m)
{
	for (int i = 0; i < MASTER_SLOTS && !m->ever_ready; i++)
		if (m->procs[i].pid > 0 && m->sb[i].ready)
			m->ever_ready = 1;
	if (m->ever_ready || m->stopping)
		return 0;
	for (int k = 0; k < m->set.npools; k++)
		for (int i = 0; i < m->set.pool[k].workers; i++)
			if (m->pos[k][i].start_fails < MASTER_START_TRIES)
				return 0;
	return 1;
}

/* Gives up on a configuration no worker can start with: stop like SIGTERM
 * (no worker is serving), and master_run() returns 1. */
static void
master_give_up(struct master *m, int64_t now)
{
	master_log("every worker failed at start %d times in a row: giving "
	    "up (their log lines above say why; `polaimg check-config` "
	    "checks the same)", MASTER_START_TRIES);
	m->start_failed = 1;
	m->stopping = 1;
	m->kill_at_ms = now + (int64_t)STOP_GRACE_S * 1000;
	(void)master_signal_all(m, SIGTERM, 1);
}

/* Reaps every child that has exited. */
static void
master_reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int slot;

		for (slot = 0; slot < MASTER_SLOTS; slot++)
			if (m->procs[slot].pid == pid)
				break;
		if (slot == MASTER_SLOTS) {
			master_log("reaped unknown child %ld", (long)pid);
			continue;
		}
		master_exited(m, slot, status, mono_ms());
		if (m->hooks->worker_gone != NULL)
			m->hooks->worker_gone(m->hooks->ud, pid);
	}
	if (pid < 0 && errno != ECHILD && errno != EINTR)
		master_log("waitpid: %s", strerror(errno));
}

/* SIGKILLs every worker whose current request is older than
 * request_timeout (whole seconds, so it ran strictly longer). After a reload
 * the new timeout applies to the old generation's last requests too. */
static void
master_check_timeouts(struct master *m)
{
	struct timespec ts;
	int64_t now_s;
	int limit;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return;
	now_s = (int64_t)ts.tv_sec;
	for (int i = 0; i < MASTER_SLOTS; i++) {
		struct proc *p = &m->procs[i];
		struct scoreboard_slot *s = &m->sb[i];
		char rid[sizeof(s->request_id) + 1];
		int64_t started;

		if (p->pid <= 0 || p->timeout_killed || !s->busy)
			continue;
		started = s->request_started;
		limit = m->set.pool[p->pool].request_timeout;
		if (now_s - started <= limit)
			continue;
		slot_request_id(s, rid, sizeof(rid));
		if (kill(p->pid, SIGKILL) != 0 && errno != ESRCH) {
			master_log("kill(%ld, SIGKILL): %s", (long)p->pid,
			    strerror(errno));
			continue;
		}
		p->timeout_killed = 1;
		master_log("request %s exceeded request_timeout (%ds); "
		    "worker %ld killed", rid, limit, (long)p->pid);
	}
}

/* SIGHUP: new settings from the hook, then a new generation (started by the
 * next master_spawn_due(); the old one retires in master_retire_old()). */
static void
master_reload(struct master *m)
{
	struct master_settings ns = m->set;

	if (m->hooks->reload != NULL && m->hooks->reload(m->hooks->ud, &ns) != 0) {
		master_log("reload failed; keeping the current configuration "
		    "and workers");
		return;
	}
	/* The pools and their sockets stay what they were. */
	ns.npools = m->set.npools;
	for (int k = 0; k < MASTER_MAX_POOLS; k++)
		ns.pool[k].listen_fd = m->set.pool[k].listen_fd;
	if (!settings_valid(&ns)) {
		master_log("reload: invalid settings (workers %d, "
		    "request_timeout %d); keeping the current configuration "
		    "and workers", ns.pool[0].workers,
		    ns.pool[0].request_timeout);
		return;
	}
	for (int k = 0; k < ns.npools; k++)
		master_log("reloading: %s%sworkers %d -> %d, request_timeout "
		    "%ds", ns.npools > 1 ? pool_name(k) : "",
		    ns.npools > 1 ? " pool: " : "", m->set.pool[k].workers,
		    ns.pool[k].workers, ns.pool[k].request_timeout);
	for (int i = 0; i < MASTER_SLOTS; i++)
		m->procs[i].pos = -1;
	m->set = ns;
	for (int k = 0; k < MASTER_MAX_POOLS; k++)
		for (int i = 0; i < MASTER_MAX_WORKERS; i++) {
			m->pos[k][i].slot = -1;
			m->pos[k][i].backoff_ms = 0;
			m->pos[k][i].not_before_ms = 0;
			m->pos[k][i].start_fails = 0;
		}
}

/* Sleeps in sigsuspend() until a signal, at most until the next due time
 * (a respawn, the stop deadline, or the one-second tick). */
static void
master_sleep(struct master *m, int64_t now)
{
	struct itimerval it;
	int64_t wake = now + TICK_MS, d;

	if (!m->stopping) {
		for (int k = 0; k < m->set.npools; k++)
			for (int i = 0; i < m->set.pool[k].workers; i++) {
				const struct position *q = &m->pos[k][i];

				if (q->slot < 0 && q->not_before_ms < wake)
					wake = q->not_before_ms;
			}
	} else if (!m->killed_all && m->kill_at_ms < wake)
		wake = m->kill_at_ms;
	d = wake - now;
	if (d < 1)
		d = 1;
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = (time_t)(d / 1000);
	it.it_value.tv_usec = (suseconds_t)(d % 1000) * 1000;
	if (setitimer(ITIMER_REAL, &it, NULL) != 0)
		master_log("setitimer: %s", strerror(errno));
	(void)sigsuspend(&m->waitmask);  /* always -1/EINTR */
}

int
master_run(const struct master_settings *s, const struct master_hooks *hooks)
{
	struct sigaction sa, old[PI_ARRAY_LEN(master_signals)], old_pipe;
	struct itimerval off;
	sigset_t block, oldmask;
	struct master *m = NULL;
	size_t installed = 0;
	int pipe_set = 0, masked = 0, rc = 1;

	if (s == NULL || hooks == NULL || hooks->worker_main == NULL ||
	    !settings_valid(s)) {
		master_log("invalid settings (1 or 2 pools, workers 1..%d in "
		    "all, request_timeout >= 1)", MASTER_MAX_WORKERS);
		return 1;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		master_log("out of memory");
		goto out;
	}
	m->set = *s;
	m->hooks = hooks;
	for (int k = 0; k < MASTER_MAX_POOLS; k++)
		for (int i = 0; i < MASTER_MAX_WORKERS; i++)
			m->pos[k][i].slot = -1;
	m->sb = mmap(NULL, MASTER_SLOTS * sizeof(*m->sb) + sizeof(uint64_t),
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m->sb == MAP_FAILED) {
		m->sb = NULL;
		master_log("mmap scoreboard: %s", strerror(errno));
		goto out;
	}
	/* After the slots: the change counter the workers share. */
	shared_changes = (uint64_t *)(void *)(m->sb + MASTER_SLOTS);
	shared_sb = m->sb;

	sig_stop = sig_quit = sig_reload = sig_reopen = sig_child = 0;
	sigemptyset(&block);
	for (size_t i = 0; i < PI_ARRAY_LEN(master_signals); i++)
		sigaddset(&block, master_signals[i]);
	if (sigprocmask(SIG_BLOCK, &block, &oldmask) != 0) {
		master_log("sigprocmask: %s", strerror(errno));
		goto out;
	}
	masked = 1;
	m->waitmask = oldmask;
	for (size_t i = 0; i < PI_ARRAY_LEN(master_signals); i++)
		sigdelset(&m->waitmask, master_signals[i]);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = master_on_signal;
	sa.sa_mask = block;
	for (installed = 0; installed < PI_ARRAY_LEN(master_signals);
	    installed++) {
		int signo = master_signals[installed];

		sa.sa_flags = signo == SIGCHLD ? SA_NOCLDSTOP : 0;
		if (sigaction(signo, &sa, &old[installed]) != 0) {
			master_log("sigaction(%d): %s", signo, strerror(errno));
			goto out;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, &old_pipe) != 0) {
		master_log("sigaction(SIGPIPE): %s", strerror(errno));
		goto out;
	}
	pipe_set = 1;

	for (int k = 0; k < m->set.npools; k++)
		master_log("started: %s%s%d worker%s, request_timeout %ds",
		    m->set.npools > 1 ? pool_name(k) : "",
		    m->set.npools > 1 ? " pool: " : "", m->set.pool[k].workers,
		    m->set.pool[k].workers == 1 ? "" : "s",
		    m->set.pool[k].request_timeout);
	for (;;) {
		int64_t now;

		if (sig_child) {
			sig_child = 0;
			master_reap(m);
		}
		now = mono_ms();
		if (sig_quit) {
			sig_quit = 0;
			master_log("SIGQUIT: killing all workers");
			m->stopping = 1;
			m->kill_at_ms = now;
			m->killed_all = 0;
		}
		if (sig_stop) {
			sig_stop = 0;
			if (!m->stopping) {
				m->stopping = 1;
				m->kill_at_ms = now + ((int64_t)
				    longest_timeout(&m->set) + STOP_GRACE_S) *
				    1000;
				master_log("stopping: %d workers asked to finish "
				    "(SIGKILL after %ds)",
				    master_signal_all(m, SIGTERM, 1),
				    longest_timeout(&m->set) + STOP_GRACE_S);
			}
		}
		if (sig_reload) {
			sig_reload = 0;
			if (!m->stopping)
				master_reload(m);
		}
		if (sig_reopen) {
			sig_reopen = 0;
			master_log("SIGUSR1: reopening logs");
			if (hooks->reopen_logs != NULL)
				hooks->reopen_logs(hooks->ud);
			(void)master_signal_all(m, SIGUSR1, 0);
		}
		if (m->stopping) {
			if (master_live(m) == 0)
				break;
			if (!m->killed_all && now >= m->kill_at_ms) {
				int n = master_signal_all(m, SIGKILL, 0);

				m->killed_all = 1;
				if (n > 0)
					master_log("killed %d worker%s", n,
					    n == 1 ? "" : "s");
			}
		} else if (master_start_hopeless(m)) {
			master_give_up(m, now);
		} else {
			master_spawn_due(m, now);
			master_retire_old(m);
		}
		master_check_timeouts(m);
		master_sleep(m, now);
	}
	master_log("all workers stopped");
	rc = m->start_failed ? 1 : 0;
out:
	memset(&off, 0, sizeof(off));
	(void)setitimer(ITIMER_REAL, &off, NULL);
	/* Setting SIG_IGN first discards a signal still pending (a late
	 * SIGALRM or a second SIGTERM), which the restored disposition would
	 * otherwise act on when the mask is restored. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	while (installed > 0) {
		installed--;
		(void)sigaction(master_signals[installed], &sa, NULL);
		(void)sigaction(master_signals[installed], &old[installed],
		    NULL);
	}
	if (pipe_set)
		(void)sigaction(SIGPIPE, &old_pipe, NULL);
	if (masked)
		(void)sigprocmask(SIG_SETMASK, &oldmask, NULL);
	if (m != NULL && m->sb != NULL)
		(void)munmap(m->sb, MASTER_SLOTS * sizeof(*m->sb) +
		    sizeof(uint64_t));
	shared_changes = NULL;
	shared_sb = NULL;
	free(m);
	return rc;
}

/* Worker: SIGTERM/SIGINT. Idle: leave now (async-signal-safe _exit). Busy:
 * remember, the request loop stops after the response. */
static void
worker_on_stop(int signo)
{
	(void)signo;
	if (worker_slot == NULL || (worker_slot->busy == 0 && !worker_unwritten))
		_exit(0);
	/* Busy, or idle with audit rows to write: the request loop stops (a
	 * signal ends its wait for a connection, see worker.c). */
	worker_stop = 1;
}

uint64_t *
master_shared_changes(void)
{
	return shared_changes;
}

/*
 * The per-user upload count. Publish first, count second: the user is
 * written, then ingesting is set (sequentially consistent), then every slot
 * is read. Of two claims racing, each sees the other's flag, so the limit
 * can refuse one too many but never admit one too many. The slots of both
 * pools and of an older generation all count: an upload a retiring worker
 * is still decoding is still in flight.
 */
int
master_ingest_claim(const char *user, int limit)
{
	size_t len;
	int n = 0;

	if (shared_sb == NULL || worker_slot == NULL || limit <= 0 ||
	    user == NULL || user[0] == '\0')
		return 0;
	len = strlen(user);
	if (len >= sizeof(worker_slot->ingest_user))
		len = sizeof(worker_slot->ingest_user) - 1;
	master_ingest_release();
	memcpy(worker_slot->ingest_user, user, len);
	__atomic_store_n(&worker_slot->ingesting, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < MASTER_SLOTS; i++) {
		const struct scoreboard_slot *s = &shared_sb[i];

		if (__atomic_load_n(&s->ingesting, __ATOMIC_SEQ_CST) &&
		    strncmp(s->ingest_user, worker_slot->ingest_user,
		    sizeof(s->ingest_user)) == 0)
			n++;
	}
	if (n <= limit)
		return 0;
	master_ingest_release();
	return PI_ERR_BUSY;
}

void
master_ingest_release(void)
{
	if (worker_slot == NULL)
		return;
	__atomic_store_n(&worker_slot->ingesting, 0, __ATOMIC_SEQ_CST);
	memset(worker_slot->ingest_user, 0, sizeof(worker_slot->ingest_user));
}


void
master_set_unwritten(int unwritten)
{
	worker_unwritten = unwritten != 0;
}

static void
worker_on_reopen(int signo)
{
	(void)signo;
	worker_reopen = 1;
}

int
master_signals_init(struct scoreboard_slot *slot)
{
	static const struct {
		int signo;
		void (*handler)(int);
	} table[] = {
		{ SIGTERM, worker_on_stop },
		{ SIGINT, worker_on_stop },
		{ SIGUSR1, worker_on_reopen },
		{ SIGHUP, SIG_IGN },
		{ SIGPIPE, SIG_IGN },
	};
	struct sigaction sa;

	worker_slot = slot;
	worker_stop = 0;
	worker_reopen = 0;
	worker_unwritten = 0;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGUSR1);
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < PI_ARRAY_LEN(table); i++) {
		sa.sa_handler = table[i].handler;
		if (sigaction(table[i].signo, &sa, NULL) != 0)
			return PI_ERR_INTERNAL;
	}
	return 0;
}

bool
master_should_stop(void)
{
	return worker_stop != 0;
}

bool
master_should_reopen_logs(void)
{
	if (!worker_reopen)
		return false;
	worker_reopen = 0;
	return true;
}
