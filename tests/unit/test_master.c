/* test_master.c — drives master_run() with real processes.
 *
 * The test forks a child that runs master_run() with test hooks. The test
 * workers report what they do as fixed-size records on a pipe (writes of a
 * record are atomic) and take orders from a MAP_SHARED control block: exit 0,
 * abort, hang in a request that looks 100 s old, or handle a "request" that
 * lasts a while. The master's stderr goes to a log file in a mkdtemp()
 * directory, which the test reads for the lines it must have written. All
 * waits are polls with generous deadlines so a loaded machine only slows the
 * test down.
 */
#include "master.h"
#include "common.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { ACT_NONE, ACT_EXIT0, ACT_ABORT, ACT_STUCK, ACT_BUSY, ACT_CLAIM,
	ACT_RELEASE };
enum { EV_START = 1, EV_BUSY, EV_DONE, EV_RELOAD, EV_REOPEN, EV_WREOPEN,
	EV_CLAIM };

/* Shared with the master and the workers (MAP_SHARED, made before fork). */
struct ctl {
	int target;          /* pid that should perform action; 0 = none */
	int action;
	int crash_all;       /* new workers abort at once */
	int busy_ms;         /* how long ACT_BUSY's request lasts */
	int reload_workers;  /* workers after a successful reload */
	int reload_fail;     /* the reload hook returns -1 */
	int claim_limit;     /* ACT_CLAIM: max_uploads_per_user */
	int fds_ok;          /* workers saw their pool's fd: bit per pool */
};

/* The listen fds the pools are given (pipes: only their numbers matter). */
static int pool_fd[MASTER_MAX_POOLS] = { -1, -1 };

struct ev {
	int type;
	int pid;
	int arg;
	int pad;
	int64_t t_ms;
};

#define MAX_EVENTS 4096

static struct ctl *ctl;
static int ev_r = -1, ev_w = -1;
static struct ev evs[MAX_EVENTS];
static size_t nev;
static char tmpdir[] = "/tmp/polaimg-master-XXXXXX";

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) ==
	    EINTR)
		;
}

static void
emit(int type, int arg)
{
	struct ev e;

	memset(&e, 0, sizeof(e));
	e.type = type;
	e.pid = (int)getpid();
	e.arg = arg;
	e.t_ms = now_ms();
	if (write(ev_w, &e, sizeof(e)) != (ssize_t)sizeof(e))
		_exit(99);
}

static void
crash(void)
{
	/* No core file, whatever the machine's core_pattern says. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	abort();
}

/* The worker_main hook: a worker that takes orders instead of requests. */
static int
test_worker(void *ud, int pool, int listen_fd, struct scoreboard_slot *slot)
{
	(void)ud;
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (master_signals_init(slot) != 0)
		return 3;
	if (pool >= 0 && pool < MASTER_MAX_POOLS && listen_fd == pool_fd[pool])
		__atomic_or_fetch(&ctl->fds_ok, 1 << pool, __ATOMIC_SEQ_CST);
	emit(EV_START, pool);
	if (__atomic_load_n(&ctl->crash_all, __ATOMIC_SEQ_CST))
		crash();
	slot->ready = 1;
	for (;;) {
		int action;

		if (master_should_reopen_logs())
			emit(EV_WREOPEN, 0);
		if (__atomic_load_n(&ctl->target, __ATOMIC_SEQ_CST) !=
		    (int)getpid()) {
			sleep_ms(10);
			continue;
		}
		action = __atomic_load_n(&ctl->action, __ATOMIC_SEQ_CST);
		__atomic_store_n(&ctl->target, 0, __ATOMIC_SEQ_CST);
		switch (action) {
		case ACT_EXIT0:
			return 0;
		case ACT_ABORT:
			crash();
			break;
		case ACT_STUCK:
			snprintf(slot->request_id, sizeof(slot->request_id),
			    "req-stuck-%d", (int)getpid());
			slot->request_started = now_ms() / 1000 - 100;
			slot->busy = 1;
			for (;;)
				pause();
		case ACT_CLAIM:
			emit(EV_CLAIM, master_ingest_claim("user-1",
			    __atomic_load_n(&ctl->claim_limit,
			    __ATOMIC_SEQ_CST)) != 0);
			break;
		case ACT_RELEASE:
			master_ingest_release();
			emit(EV_CLAIM, -1);
			break;
		case ACT_BUSY:
			snprintf(slot->request_id, sizeof(slot->request_id),
			    "req-busy-%d", (int)getpid());
			slot->request_started = now_ms() / 1000;
			slot->busy = 1;
			emit(EV_BUSY, 0);
			sleep_ms(__atomic_load_n(&ctl->busy_ms,
			    __ATOMIC_SEQ_CST));
			emit(EV_DONE, master_should_stop());
			slot->requests++;
			slot->busy = 0;
			if (master_should_stop())
				return 0;
			break;
		default:
			break;
		}
	}
}

static int
hook_reload(void *ud, struct master_settings *s)
{
	(void)ud;
	emit(EV_RELOAD, s->pool[0].workers);
	if (__atomic_load_n(&ctl->reload_fail, __ATOMIC_SEQ_CST))
		return PI_ERR_INVALID;
	s->pool[0].workers = __atomic_load_n(&ctl->reload_workers,
	    __ATOMIC_SEQ_CST);
	return 0;
}

static void
hook_reopen(void *ud)
{
	(void)ud;
	emit(EV_REOPEN, 0);
}

static const struct master_hooks hooks = {
	.ud = NULL,
	.worker_main = test_worker,
	.reload = hook_reload,
	.reopen_logs = hook_reopen,
};

/* Reads every record available within timeout_ms into evs[]. */
static void
collect(int timeout_ms)
{
	struct pollfd pfd = { .fd = ev_r, .events = POLLIN };

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return;
	while (nev < MAX_EVENTS) {
		ssize_t r = read(ev_r, &evs[nev], sizeof(evs[0]));

		if (r != (ssize_t)sizeof(evs[0]))
			break;
		nev++;
	}
}

/* Events of type (from pid, unless pid is 0) at index >= from. */
static int
count_ev(int type, size_t from, int pid)
{
	int n = 0;

	for (size_t i = from; i < nev; i++)
		if (evs[i].type == type && (pid == 0 || evs[i].pid == pid))
			n++;
	return n;
}

static const struct ev *
find_ev(int type, size_t from, int pid)
{
	for (size_t i = from; i < nev; i++)
		if (evs[i].type == type && (pid == 0 || evs[i].pid == pid))
			return &evs[i];
	return NULL;
}

/* Waits until at least n such events have arrived. */
static int
wait_ev(int type, size_t from, int pid, int n, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	for (;;) {
		int64_t left;

		if (count_ev(type, from, pid) >= n)
			return 1;
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		collect(left > 100 ? 100 : (int)left);
	}
}

/* Orders pid to act; waits until the order is taken. */
static int
command(int pid, int action)
{
	int64_t deadline = now_ms() + 5000;

	__atomic_store_n(&ctl->action, action, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ctl->target, pid, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&ctl->target, __ATOMIC_SEQ_CST) != 0) {
		if (now_ms() > deadline) {
			__atomic_store_n(&ctl->target, 0, __ATOMIC_SEQ_CST);
			return 0;
		}
		sleep_ms(5);
	}
	return 1;
}

static int
pid_gone(int pid)
{
	return kill(pid, 0) != 0 && errno == ESRCH;
}

static int
wait_gone(int pid, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!pid_gone(pid)) {
		if (now_ms() > deadline)
			return 0;
		sleep_ms(10);
	}
	return 1;
}

static void
log_path(char *buf, size_t size, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", tmpdir, name);

	if (n < 0 || (size_t)n >= size)
		abort();
}

/* The whole log file as a string (static buffer), "" if unreadable. */
static const char *
read_log(const char *path)
{
	static char buf[256 * 1024];
	size_t len = 0;
	int fd = open(path, O_RDONLY);

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	while (len < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

static int
wait_log(const char *path, const char *needle, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (strstr(read_log(path), needle) == NULL) {
		if (now_ms() > deadline)
			return 0;
		sleep_ms(20);
	}
	return 1;
}

static void
diag_log(const char *path)
{
	const char *s = read_log(path);

	printf("# --- %s\n", path);
	while (*s != '\0') {
		const char *nl = strchr(s, '\n');
		int n = nl ? (int)(nl - s) : (int)strlen(s);

		printf("#   %.*s\n", n, s);
		s += n + (nl != NULL);
	}
	fflush(stdout);
}

/* Starts a master with one pool (ingest 0) or two. */
static pid_t
start_pools(int workers, int ingest, int timeout, const char *logfile)
{
	struct master_settings s = { .npools = ingest > 0 ? 2 : 1,
	    .pool = { { pool_fd[0], workers, timeout },
	    { pool_fd[1], ingest, timeout } } };
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid != 0)
		return pid;
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	close(ev_r);
	{
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(97);
		close(fd);
	}
	exit(master_run(&s, &hooks));
}

static pid_t
start_master(int workers, int timeout, const char *logfile)
{
	return start_pools(workers, 0, timeout, logfile);
}

/* Waits for the master to exit; SIGKILLs it after timeout_ms. Returns the
 * wait status, or -1 if it had to be killed. */
static int
wait_master(pid_t pid, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_ms(10);
	}
}

static int
in_list(int pid, const int *list, int n)
{
	for (int i = 0; i < n; i++)
		if (list[i] == pid)
			return 1;
	return 0;
}

/* Pids of the START events at index >= from, up to max. */
static int
started_pids(size_t from, int *out, int max)
{
	int n = 0;

	for (size_t i = from; i < nev && n < max; i++)
		if (evs[i].type == EV_START)
			out[n++] = evs[i].pid;
	return n;
}

static void
test_settings(void)
{
	struct master_settings bad = { 1, { { -1, 0, 5 } } };
	struct master_settings many = { 1, { { -1, MASTER_MAX_WORKERS + 1, 5 } } };
	struct master_settings notime = { 1, { { -1, 1, 0 } } };
	struct master_settings good = { 1, { { -1, 1, 5 } } };
	struct master_settings nopool = { 0, { { -1, 1, 5 } } };
	struct master_settings sum = { 2, { { -1, MASTER_MAX_WORKERS - 1, 5 },
	    { -1, 2, 5 } } };
	struct master_settings itime = { 2, { { -1, 1, 5 }, { -1, 1, 0 } } };
	struct master_hooks nomain = { .worker_main = NULL };
	int saved = dup(STDERR_FILENO), devnull = open("/dev/null", O_WRONLY);

	/* These return before anything is forked; hide their log lines. */
	if (saved >= 0 && devnull >= 0)
		dup2(devnull, STDERR_FILENO);
	is_int(master_run(&bad, &hooks), 1, "workers = 0 is refused");
	is_int(master_run(&many, &hooks), 1,
	    "workers > MASTER_MAX_WORKERS is refused");
	is_int(master_run(&notime, &hooks), 1,
	    "request_timeout = 0 is refused");
	is_int(master_run(&good, &nomain), 1, "no worker_main is refused");
	is_int(master_run(NULL, &hooks), 1, "NULL settings are refused");
	is_int(master_run(&nopool, &hooks), 1, "no pool is refused");
	is_int(master_run(&sum, &hooks), 1,
	    "more than MASTER_MAX_WORKERS in all pools is refused");
	is_int(master_run(&itime, &hooks), 1,
	    "an ingest pool without request_timeout is refused");
	is_int(master_ingest_claim("user-1", 1), 0,
	    "without a master, an upload claim is never refused");
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	if (devnull >= 0)
		close(devnull);
}

/* Respawn after exit 0 and after a crash, request timeout, graceful stop
 * that waits for a busy worker. */
static void
test_respawn_timeout_stop(const char *logfile)
{
	size_t base = nev, mark = nev;
	int pids[8], n, p0, p1, p2, q, status;
	int64_t t_term, t_exit;
	const struct ev *e;
	char needle[160];
	pid_t m;

	__atomic_store_n(&ctl->busy_ms, 1000, __ATOMIC_SEQ_CST);
	m = start_master(3, 3, logfile);
	ok(m > 0, "master forked");
	ok(wait_ev(EV_START, mark, 0, 3, 10000), "three workers started");
	n = started_pids(mark, pids, 8);
	is_int(n, 3, "exactly three workers started");
	if (n < 3)
		goto stop;
	p0 = pids[0], p1 = pids[1], p2 = pids[2];
	ok(p0 != p1 && p1 != p2 && p0 != p2, "three distinct pids");
	ok(kill(p0, 0) == 0 && kill(p1, 0) == 0 && kill(p2, 0) == 0,
	    "all three are alive");

	/* The log line format. */
	{
		const char *l = read_log(logfile);

		ok(strlen(l) > 30 && l[4] == '-' && l[7] == '-' &&
		    l[10] == 'T' && l[13] == ':' && l[19] == 'Z' &&
		    strncmp(l + 20, " polaimg[", 9) == 0 &&
		    strstr(l, "] info: master: started: 3 workers, "
		    "request_timeout 3s\n") != NULL,
		    "log lines: UTC timestamp, polaimg[pid] info: master: message");
	}

	/* A worker that exits 0 (recycled) is replaced at once. */
	mark = nev;
	ok(command(p0, ACT_EXIT0), "worker took the exit order");
	ok(wait_ev(EV_START, mark, 0, 1, 5000),
	    "a worker that exited 0 is replaced");
	e = find_ev(EV_START, mark, 0);
	ok(e != NULL && !in_list(e->pid, pids, 3), "the replacement is new");
	ok(wait_gone(p0, 5000), "the recycled worker is reaped");
	snprintf(needle, sizeof(needle),
	    "worker %d exited with status 0 after 0 requests; respawning\n",
	    p0);
	ok(wait_log(logfile, needle, 3000),
	    "the clean exit is logged and respawned without back-off");

	/* A worker that crashes is replaced after the first back-off. */
	mark = nev;
	ok(command(p1, ACT_ABORT), "worker took the abort order");
	ok(wait_ev(EV_START, mark, 0, 1, 5000),
	    "a worker that crashed is replaced");
	e = find_ev(EV_START, mark, 0);
	ok(e != NULL && !in_list(e->pid, pids, 3), "the replacement is new");
	snprintf(needle, sizeof(needle), "worker %d killed by signal %d", p1,
	    SIGABRT);
	ok(wait_log(logfile, needle, 3000), "the crash is logged with the signal");
	ok(strstr(read_log(logfile), "respawning in 100 ms\n") != NULL,
	    "the crash respawn waits 100 ms");

	/* A request older than request_timeout gets its worker SIGKILLed. */
	mark = nev;
	ok(command(p2, ACT_STUCK), "worker took the stuck order");
	ok(wait_ev(EV_START, mark, 0, 1, 8000),
	    "a worker stuck past request_timeout is replaced");
	ok(wait_gone(p2, 5000), "the stuck worker is gone");
	snprintf(needle, sizeof(needle), "request req-stuck-%d exceeded "
	    "request_timeout (3s); worker %d killed\n", p2, p2);
	ok(wait_log(logfile, needle, 3000), "the timeout kill is logged");
	snprintf(needle, sizeof(needle), "worker %d killed by signal %d "
	    "(Killed) for request_timeout after 0 requests while handling "
	    "request req-stuck-%d; respawning\n", p2, SIGKILL, p2);
	ok(wait_log(logfile, needle, 3000),
	    "its exit is logged with the request id");

	/* SIGTERM: the busy worker finishes its request before the master
	 * returns. */
	n = started_pids(base, pids, 8);
	q = pids[n - 1];
	mark = nev;
	ok(command(q, ACT_BUSY), "worker took the busy order");
	ok(wait_ev(EV_BUSY, mark, q, 1, 5000), "worker is busy");
	t_term = now_ms();
	kill(m, SIGTERM);
	status = wait_master(m, 15000);
	t_exit = now_ms();
	m = 0;
	ok(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "graceful stop: master_run returned 0");
	collect(0);
	e = find_ev(EV_DONE, mark, q);
	ok(e != NULL, "the busy worker finished its request");
	ok(e != NULL && e->arg == 1,
	    "master_should_stop() was true after the request");
	ok(e != NULL && t_exit >= e->t_ms,
	    "the master exited after the request completed");
	e = find_ev(EV_BUSY, mark, q);
	ok(e != NULL && t_exit >= e->t_ms + 1000 && t_exit >= t_term,
	    "the master waited for the whole 1 s request");
	ok(pid_gone(q), "the busy worker has exited");
	snprintf(needle, sizeof(needle),
	    "worker %d exited with status 0 after 1 request\n", q);
	ok(strstr(read_log(logfile), needle) != NULL,
	    "the busy worker exited 0 after its request");
	ok(strstr(read_log(logfile), "] master: killed ") == NULL,
	    "nobody needed SIGKILL");
	ok(strstr(read_log(logfile), "all workers stopped\n") != NULL,
	    "stop logged");
stop:
	if (m > 0) {
		kill(m, SIGQUIT);
		(void)wait_master(m, 10000);
	}
}

/* Once a worker was ready, one that crashes at start is respawned with
 * exponential back-off (for ever: a database or disk may come back). */
static void
test_crash_loop(const char *logfile)
{
	size_t mark = nev;
	int64_t first, t0;
	int status, spawns, pid;
	const struct ev *e;
	pid_t m;

	m = start_master(1, 3, logfile);
	ok(wait_ev(EV_START, mark, 0, 1, 10000), "a worker started");
	e = find_ev(EV_START, mark, 0);
	pid = e != NULL ? e->pid : 0;
	sleep_ms(300);   /* it is ready, and the master has seen it */
	__atomic_store_n(&ctl->crash_all, 1, __ATOMIC_SEQ_CST);
	mark = nev;
	ok(command(pid, ACT_ABORT), "the ready worker crashes");
	ok(wait_ev(EV_START, mark, 0, 1, 10000), "crashing worker started");
	e = find_ev(EV_START, mark, 0);
	first = e != NULL ? e->t_ms : now_ms();
	/* Back-offs 100, 200, 400, 800 ms: spawns at about 0, 0.1, 0.3, 0.7,
	 * 1.5 s — five in the two seconds after the first. */
	while (now_ms() < first + 2200)
		collect(100);
	spawns = 0;
	for (size_t i = mark; i < nev; i++)
		if (evs[i].type == EV_START && evs[i].t_ms < first + 2000)
			spawns++;
	printf("# %d spawns in 2 s of crash loop\n", spawns);
	ok(spawns >= 3, "a crash loop keeps respawning");
	ok(spawns <= 8, "a crash loop is throttled");
	ok(strstr(read_log(logfile), "respawning in 200 ms\n") != NULL &&
	    strstr(read_log(logfile), "respawning in 400 ms\n") != NULL,
	    "the back-off doubles");
	t0 = now_ms();
	kill(m, SIGQUIT);
	status = wait_master(m, 10000);
	ok(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "SIGQUIT during back-off: master_run returned 0");
	ok(now_ms() - t0 < 5000, "at once");
	__atomic_store_n(&ctl->crash_all, 0, __ATOMIC_SEQ_CST);
}

/* When no worker was ever ready and every position failed at start five
 * times in a row, the master gives up: master_run() returns 1 (serve exits
 * non-zero) instead of respawning for ever. */
static void
test_start_fails(const char *logfile)
{
	size_t mark = nev;
	int status;
	pid_t m;

	__atomic_store_n(&ctl->crash_all, 1, __ATOMIC_SEQ_CST);
	m = start_pools(2, 1, 3, logfile);
	/* Back-offs 100..800 ms: some 1.5 s; 30 s is the ceiling. */
	status = wait_master(m, 30000);
	ok(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
	    "workers that all fail at start: master_run returned 1");
	for (size_t before = (size_t)-1; before != nev;) {
		before = nev;
		collect(200);
	}
	is_int(count_ev(EV_START, mark, 0), 3 * 5,
	    "each of the 3 positions (both pools) was tried 5 times");
	ok(strstr(read_log(logfile), "every worker failed at start 5 times in "
	    "a row: giving up") != NULL, "the master says why it stopped");
	__atomic_store_n(&ctl->crash_all, 0, __ATOMIC_SEQ_CST);
}

/* A new generation (SIGHUP) whose workers fail at start replaces nothing:
 * the running workers keep serving, the master keeps trying (no giving up
 * once a worker was ready), and the old generation retires only once the
 * new one is ready. */
static void
test_reload_failing(const char *logfile)
{
	size_t mark = nev;
	int old[2], status;
	pid_t m;

	__atomic_store_n(&ctl->crash_all, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ctl->reload_workers, 2, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ctl->reload_fail, 0, __ATOMIC_SEQ_CST);
	m = start_master(2, 5, logfile);
	ok(wait_ev(EV_START, mark, 0, 2, 10000), "two workers started");
	if (started_pids(mark, old, 2) < 2)
		goto stop;
	sleep_ms(300);   /* ready, and seen so by the master */
	__atomic_store_n(&ctl->crash_all, 1, __ATOMIC_SEQ_CST);
	mark = nev;
	kill(m, SIGHUP);
	ok(wait_ev(EV_RELOAD, mark, 0, 1, 5000), "SIGHUP calls the reload hook");
	/* Two positions, six failures each: past the five of giving up. */
	ok(wait_ev(EV_START, mark, 0, 12, 20000),
	    "the new generation keeps failing at start, with back-off");
	ok(!pid_gone(old[0]) && !pid_gone(old[1]),
	    "the running generation keeps serving");
	ok(waitpid(m, &status, WNOHANG) == 0,
	    "the master does not give up after a worker was ready");
	ok(strstr(read_log(logfile), "new generation running") == NULL,
	    "no old worker was asked to stop");
	__atomic_store_n(&ctl->crash_all, 0, __ATOMIC_SEQ_CST);
	ok(wait_gone(old[0], 30000) && wait_gone(old[1], 30000),
	    "once the new generation is ready, the old one retires");
stop:
	__atomic_store_n(&ctl->crash_all, 0, __ATOMIC_SEQ_CST);
	kill(m, SIGTERM);
	status = wait_master(m, 20000);
	ok(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "SIGTERM: master_run returned 0");
	/* Every record of this test's workers is read here, none later. */
	for (size_t before = (size_t)-1; before != nev;) {
		before = nev;
		collect(200);
	}
}

/* SIGHUP rolls every worker (new generation first), SIGUSR1 reaches the
 * hook and the workers, a failed reload changes nothing, SIGQUIT kills a
 * busy worker. */
static void
test_reload(const char *logfile)
{
	size_t mark = nev;
	int old[2], fresh[8], n, o0, o1, q, status, all_new;
	char needle[128];
	pid_t m;

	__atomic_store_n(&ctl->busy_ms, 2000, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ctl->reload_workers, 3, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ctl->reload_fail, 0, __ATOMIC_SEQ_CST);
	m = start_master(2, 5, logfile);
	ok(wait_ev(EV_START, mark, 0, 2, 10000), "two workers started");
	if (started_pids(mark, old, 2) < 2)
		goto stop;
	o0 = old[0], o1 = old[1];

	mark = nev;
	ok(command(o0, ACT_BUSY), "old worker took the busy order");
	ok(wait_ev(EV_BUSY, mark, o0, 1, 5000), "old worker is busy");
	kill(m, SIGHUP);
	ok(wait_ev(EV_RELOAD, mark, 0, 1, 5000), "SIGHUP calls the reload hook");
	ok(wait_ev(EV_START, mark, 0, 3, 8000),
	    "the new generation (3 workers, from reload) started");
	n = started_pids(mark, fresh, 8);
	is_int(n, 3, "exactly three new workers");
	all_new = 1;
	for (int i = 0; i < n; i++)
		if (in_list(fresh[i], old, 2))
			all_new = 0;
	ok(all_new, "all pids changed");
	ok(wait_gone(o1, 5000), "the idle old worker exited");
	/* The master's log is in the order it acted: the new generation was
	 * forked before any old worker was asked to stop. */
	snprintf(needle, sizeof(needle), "worker %d exited", o1);
	ok(wait_log(logfile, needle, 3000), "the idle old worker's exit logged");
	{
		const char *l = read_log(logfile);
		const char *retire = strstr(l, "new generation running; 2 old "
		    "workers asked to stop\n");
		const char *o1_exit = strstr(l, needle);
		int before = retire != NULL && o1_exit != NULL &&
		    retire < o1_exit;

		for (int i = 0; i < n && before; i++) {
			char started[64];
			const char *at;

			snprintf(started, sizeof(started), "worker %d started\n",
			    fresh[i]);
			at = strstr(l, started);
			before = at != NULL && at < retire;
		}
		ok(before, "new workers were started before the old ones "
		    "were stopped");
	}
	ok(wait_ev(EV_DONE, mark, o0, 1, 8000),
	    "the busy old worker finished its request");
	{
		const struct ev *e = find_ev(EV_DONE, mark, o0);

		ok(e != NULL && e->arg == 1,
		    "and was told to stop after it");
	}
	ok(wait_gone(o0, 5000), "the busy old worker exited");
	ok(strstr(read_log(logfile), "reloading: workers 2 -> 3, "
	    "request_timeout 5s\n") != NULL, "reload logged");
	snprintf(needle, sizeof(needle), "worker %d exited with status 0 "
	    "after 1 request (previous generation)\n", o0);
	ok(wait_log(logfile, needle, 3000), "old worker's exit logged");

	/* SIGUSR1 reaches the hook and every worker. */
	mark = nev;
	kill(m, SIGUSR1);
	ok(wait_ev(EV_REOPEN, mark, 0, 1, 5000),
	    "SIGUSR1 calls the reopen_logs hook");
	ok(wait_ev(EV_WREOPEN, mark, 0, 3, 5000),
	    "SIGUSR1 is forwarded to the three workers");

	/* A failed reload keeps the workers: once the reload hook ran and a
	 * later SIGUSR1 came back from all three, no worker was started. */
	__atomic_store_n(&ctl->reload_fail, 1, __ATOMIC_SEQ_CST);
	mark = nev;
	kill(m, SIGHUP);
	ok(wait_ev(EV_RELOAD, mark, 0, 1, 5000), "reload hook called again");
	kill(m, SIGUSR1);
	ok(wait_ev(EV_WREOPEN, mark, 0, 3, 5000), "workers still answer");
	is_int(count_ev(EV_START, mark, 0), 0,
	    "a failed reload does not roll the workers");
	for (int i = 0; i < 3; i++)
		ok(count_ev(EV_WREOPEN, mark, fresh[i]) == 1,
		    "the same workers are running");
	ok(strstr(read_log(logfile), "reload failed; keeping the current "
	    "configuration and workers\n") != NULL, "failed reload logged");

	/* SIGQUIT kills a busy worker without waiting for its request. */
	q = fresh[0];
	mark = nev;
	ok(command(q, ACT_BUSY), "worker took the busy order");
	ok(wait_ev(EV_BUSY, mark, q, 1, 5000), "worker is busy");
	kill(m, SIGQUIT);
	status = wait_master(m, 10000);
	m = 0;
	ok(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "SIGQUIT: master_run returned 0");
	collect(0);
	ok(find_ev(EV_DONE, mark, q) == NULL,
	    "the busy worker was killed before it finished");
	for (int i = 0; i < 3; i++)
		ok(pid_gone(fresh[i]), "worker reaped before master_run returned");
stop:
	if (m > 0) {
		kill(m, SIGQUIT);
		(void)wait_master(m, 10000);
	}
}

/* The pid of the n-th START event of pool at index >= from, or 0. */
static int
pool_pid(size_t from, int pool, int n)
{
	for (size_t i = from; i < nev; i++)
		if (evs[i].type == EV_START && evs[i].arg == pool && n-- == 0)
			return evs[i].pid;
	return 0;
}

/* Orders pid to claim (or release) and returns what the claim answered
 * (0 admitted, 1 refused, -1 released), or -2 without an answer. */
static int
claim(int pid, int action)
{
	size_t mark = nev;
	const struct ev *e;

	if (!command(pid, action) || !wait_ev(EV_CLAIM, mark, pid, 1, 5000))
		return -2;
	e = find_ev(EV_CLAIM, mark, pid);
	return e != NULL ? e->arg : -2;
}

/* Two pools: each worker gets its pool and its pool's socket; the
 * per-user upload count spans both pools and ends with a killed worker;
 * a reload changes the read pool and keeps the ingest pool. */
static void
test_pools(const char *logfile)
{
	size_t mark = nev;
	int r0, r1, i0, i1, status;
	pid_t m;

	__atomic_store_n(&ctl->fds_ok, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ctl->claim_limit, 2, __ATOMIC_SEQ_CST);
	m = start_pools(2, 2, 5, logfile);
	ok(m > 0, "two-pool master forked");
	ok(wait_ev(EV_START, mark, 0, 4, 10000), "four workers started");
	r0 = pool_pid(mark, MASTER_POOL_READ, 0);
	r1 = pool_pid(mark, MASTER_POOL_READ, 1);
	i0 = pool_pid(mark, MASTER_POOL_INGEST, 0);
	i1 = pool_pid(mark, MASTER_POOL_INGEST, 1);
	ok(r0 && r1 && i0 && i1, "two read and two ingest workers");
	is_int(count_ev(EV_START, mark, 0), 4, "no more than four");
	is_int(__atomic_load_n(&ctl->fds_ok, __ATOMIC_SEQ_CST), 3,
	    "each worker was handed its own pool's socket");
	ok(wait_log(logfile, "ingest pool: 2 workers", 3000),
	    "the master logs the ingest pool");
	if (!(r0 && r1 && i0 && i1))
		goto stop;

	is_int(claim(i0, ACT_CLAIM), 0, "first upload of a user admitted");
	is_int(claim(i1, ACT_CLAIM), 0, "second upload admitted (limit 2)");
	is_int(claim(r0, ACT_CLAIM), 1,
	    "third upload refused, counted across the pools");
	is_int(claim(r1, ACT_CLAIM), 1, "and again: the refusal holds no claim");
	is_int(claim(i1, ACT_RELEASE), -1, "one upload ends");
	is_int(claim(r0, ACT_CLAIM), 0, "a new upload is admitted");
	mark = nev;
	kill(i0, SIGKILL);
	ok(wait_gone(i0, 5000), "the ingest worker holding a claim is killed");
	ok(wait_ev(EV_START, mark, 0, 1, 5000), "and replaced");
	is_int(pool_pid(mark, MASTER_POOL_INGEST, 0) != 0, 1,
	    "the replacement is an ingest worker");
	is_int(claim(r1, ACT_CLAIM), 0,
	    "the killed worker's claim was cleared by the master");
	is_int(claim(i1, ACT_CLAIM), 1, "the limit still holds");

	mark = nev;
	__atomic_store_n(&ctl->reload_fail, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&ctl->reload_workers, 1, __ATOMIC_SEQ_CST);
	kill(m, SIGHUP);
	ok(wait_ev(EV_START, mark, 0, 3, 10000),
	    "reload: a new generation of both pools");
	ok(pool_pid(mark, MASTER_POOL_READ, 0) != 0 &&
	    pool_pid(mark, MASTER_POOL_READ, 1) == 0,
	    "reload: the read pool has the new worker count (1)");
	ok(pool_pid(mark, MASTER_POOL_INGEST, 1) != 0,
	    "reload: the ingest pool keeps its two workers");
stop:
	kill(m, SIGQUIT);
	status = wait_master(m, 10000);
	ok(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "two-pool master stopped");
}

int
main(void)
{
	struct rlimit nocore = { 0, 0 };
	char log_a[256], log_b[256], log_c[256], log_d[256], log_e[256], log_f[256];
	int fds[2], pfds[2], failed_before;

	(void)setrlimit(RLIMIT_CORE, &nocore);
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	log_path(log_a, sizeof(log_a), "respawn.log");
	log_path(log_b, sizeof(log_b), "crash.log");
	log_path(log_c, sizeof(log_c), "reload.log");
	log_path(log_d, sizeof(log_d), "pools.log");
	log_path(log_e, sizeof(log_e), "startfail.log");
	log_path(log_f, sizeof(log_f), "reloadfail.log");
	if (pipe(pfds) != 0) {
		perror("pipe");
		return 1;
	}
	pool_fd[0] = pfds[0];
	pool_fd[1] = pfds[1];
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED || pipe(fds) != 0) {
		perror("setup");
		return 1;
	}
	memset(ctl, 0, sizeof(*ctl));
	ev_r = fds[0];
	ev_w = fds[1];
	if (fcntl(ev_r, F_SETFL, O_NONBLOCK) != 0) {
		perror("fcntl");
		return 1;
	}

	test_settings();
	failed_before = tap_failed;
	test_respawn_timeout_stop(log_a);
	if (tap_failed != failed_before)
		diag_log(log_a);
	failed_before = tap_failed;
	test_crash_loop(log_b);
	if (tap_failed != failed_before)
		diag_log(log_b);
	failed_before = tap_failed;
	test_start_fails(log_e);
	if (tap_failed != failed_before)
		diag_log(log_e);
	failed_before = tap_failed;
	test_reload_failing(log_f);
	if (tap_failed != failed_before)
		diag_log(log_f);
	failed_before = tap_failed;
	test_reload(log_c);
	if (tap_failed != failed_before)
		diag_log(log_c);
	failed_before = tap_failed;
	test_pools(log_d);
	if (tap_failed != failed_before)
		diag_log(log_d);

	unlink(log_a);
	unlink(log_b);
	unlink(log_c);
	unlink(log_d);
	unlink(log_e);
	unlink(log_f);
	rmdir(tmpdir);
	munmap(ctl, sizeof(*ctl));
	close(ev_r);
	close(ev_w);
	return done_testing();
}
