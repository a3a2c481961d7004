/* worker.c — the life of a worker process.
 *
 * Everything that must not cross fork() is created here, after it: the
 * PostgreSQL connection, MagickWand, the storage back end (and its curl
 * handle). They live in one struct worker_ctx for the process's lifetime;
 * everything a request allocates comes from the request arena, reset after
 * each response, so a worker's memory does not grow with the requests it
 * serves. A worker serves max_requests requests and exits; the master starts
 * a fresh one.
 */
#include "worker.h"

#include <poll.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "common.h"
#include "authcache.h"
#include "config.h"
#include "db.h"
#include "handlers.h"
#include "http.h"
#include "imaging.h"
#include "listcache.h"
#include "log.h"
#include "router.h"
#include "storage.h"

static int
worker_ctx_init(struct worker_ctx *w, const struct config *cfg)
{
	/* Pixels cost ImageMagick 8 bytes each (Q16 RGBA): room for the
	 * largest image max_pixels allows, plus working space. Shrink-on-load
	 * keeps ordinary JPEGs far below this; the limit is a ceiling. */
	struct img_limits lim = {
		.max_pixels = (uint64_t)cfg->max_pixels,
		.memory_bytes = 8 * (uint64_t)cfg->max_pixels + (128ULL << 20),
		.map_bytes = 16 * (uint64_t)cfg->max_pixels + (256ULL << 20),
		.disk_bytes = 0,
		.max_dimension = 65500,
		.time_seconds = (unsigned)cfg->request_timeout,
		.policy_dir = cfg->imaging_policy_dir,
	};
	enum auth_alg alg;
	const char *why = NULL;
	char err[512];

	memset(w, 0, sizeof(*w));
	w->cfg = cfg;
	if (img_init(&lim) != 0) {
		log_error("worker: imaging initialisation failed");
		return -1;
	}
	w->arena = arena_new();
	w->db = db_new(cfg->database_url);
	if (w->arena == NULL || w->db == NULL) {
		log_error("worker: out of memory");
		return -1;
	}
	db_set_sync_reads(w->db, strcmp(cfg->audit_read_commit, "sync") == 0);
	/* Copies of rows need the counter the workers of one master share
	 * (read-your-writes); a lone worker (spawn-fcgi, mod_fcgid) keeps none. */
	if (cfg->auth_cache_ttl > 0 && worker_shared_changes() != NULL) {
		db_set_change_counter(w->db, worker_shared_changes());
		w->rows = authcache_new();
		if (w->rows == NULL) {
			log_error("worker: out of memory");
			return -1;
		}
		db_set_listen(w->db, 1);
	}
	w->tokens = tokencache_new();
	w->lists = listcache_new((size_t)cfg->list_cache_size);
	if (w->lists == NULL || w->tokens == NULL ||
	    db_set_read_batch(w->db, (size_t)cfg->audit_read_batch) != 0) {
		log_error("worker: out of memory");
		return -1;
	}
	w->storage = storage_open(cfg, err, sizeof(err));
	if (w->storage == NULL) {
		log_error("worker: storage: %s", err);
		return -1;
	}
	if (auth_alg_parse(cfg->jwt_algorithm, &alg) != 0 ||
	    auth_config_load(&w->auth, alg, cfg->jwt_secret,
	    strlen(cfg->jwt_secret), cfg->jwt_public_key_file,
	    cfg->jwt_require_exp, &why) != 0) {
		log_error("worker: jwt: %s", why != NULL ? why : "invalid settings");
		return -1;
	}
	/* Connect now so the first request does not pay for it; a database
	 * that is down is not fatal: requests answer 503 until it is back. */
	(void)db_ping(w->db);
	return 0;
}

static void
worker_ctx_free(struct worker_ctx *w)
{
	auth_config_free(&w->auth);
	storage_close(w->storage);
	db_free(w->db);          /* writes the audit rows it still holds */
	listcache_free(w->lists);
	authcache_free(w->rows);
	tokencache_free(w->tokens);
	arena_free(w->arena);
	img_shutdown();
}

static void
serve_one(struct worker_ctx *w, FCGX_Request *fcgx, struct scoreboard_slot *slot)
{
	struct http_request req;
	struct ctx c;
	int rc;

	if (http_request_init(&req, fcgx, w->arena, w->cfg->body_file_dir) != 0) {
		rc = http_validation_error(&req, http_detail_add(NULL, "request",
		    "malformed request"));
		goto done;
	}
	(void)snprintf(slot->request_id, sizeof(slot->request_id), "%s",
	    req.request_id);
	memset(&c, 0, sizeof(c));
	c.w = w;
	c.req = &req;
	rc = router_dispatch(&c);
	if (rc < 0 && !req.headers_done)
		(void)http_error_for(&req, rc);
	else if (rc < 0)
		log_warn("request %s: %s after the response began", req.request_id,
		    pi_strerror(rc));
done:
	/* The web server may still be sending a body we did not need. */
	http_body_drain(&req, w->cfg->max_upload_bytes * 2 + (16 << 20));
	log_info("%s %s %d %lld %ldms rid=%s user=%s", req.method, req.path,
	    req.status, req.bytes_out, http_elapsed_ms(&req), req.request_id,
	    c.who.user_id[0] != '\0' ? c.who.user_id : "-");
	http_request_done(&req);
}

/*
 * When gathered audit rows of reads are written (db_audit_read gathers
 * them; a full batch is written at once):
 * - after a request, or while waiting for the next one, once the oldest
 *   is audit_read_delay ms old (see before_accept: an idle worker holds
 *   nothing for longer); before an upload, completion or delete
 *   (requests that may run long are never killed holding rows);
 * - when the worker stops (SIGTERM, max_requests).
 * A worker that crashes or is SIGKILLed loses what it holds: at most
 * audit_read_batch rows of its last fraction of a second, and they are
 * then missing, not wrong. audit_read_batch = 1 writes every row at once.
 */
static void
flush_if(struct worker_ctx *w, int force)
{
	int64_t oldest;

	if (db_audit_pending(w->db, &oldest) == 0) {
		worker_set_unwritten(0);
		return;
	}
	if (force || db_now_ms() - oldest >= w->cfg->audit_read_delay)
		(void)db_audit_flush(w->db);
	worker_set_unwritten(db_audit_pending(w->db, NULL) > 0);
}

/* 1 if a connection is waiting on the listening socket, or comes within
 * timeout_ms. */
static int
connection_waiting(int listen_fd, int timeout_ms)
{
	struct pollfd p = { .fd = listen_fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) > 0 && (p.revents & POLLIN);
}

static void
set_alarm_ms(long ms)
{
	struct itimerval t = { .it_value = { ms / 1000, (ms % 1000) * 1000 } };

	(void)setitimer(ITIMER_REAL, &t, NULL);
}

/*
 * Before waiting for the next request while holding gathered rows: wait
 * for a connection until the oldest row is due (audit_read_delay after it
 * was added); none came: write the rows, then wait as long as it takes (an
 * idle worker holds nothing for longer than that). One came: accept it —
 * but another worker may take it first, and accept() would then block with
 * the rows held, so an alarm (no SA_RESTART) interrupts that accept when
 * the rows are due (HELD_ACCEPT_MS at the soonest) and they are written.
 * The alarm is cancelled as soon as accept returns; the request's
 * parameters, which libfcgi reads before returning, come with the
 * connection (nginx sends them at once), so that read does not wait and
 * the alarm cannot break it.
 */
#define HELD_ACCEPT_MS 10

static void
before_accept(struct worker_ctx *w, int listen_fd)
{
	int64_t oldest, due;

	if (db_audit_pending(w->db, &oldest) == 0)
		return;
	due = oldest + w->cfg->audit_read_delay - db_now_ms();
	if (due < 0)
		due = 0;
	if (!connection_waiting(listen_fd, (int)due)) {
		flush_if(w, 1);
		return;
	}
	set_alarm_ms(due > HELD_ACCEPT_MS ? (long)due : HELD_ACCEPT_MS);
}

static int
is_read_method(const char *m)
{
	return m != NULL && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0);
}

int
worker_run(const struct config *cfg, int listen_fd, struct scoreboard_slot *slot)
{
	struct worker_ctx w;
	FCGX_Request fcgx;
	long long served = 0;
	int status = 0, rc;

	if (worker_signals_init(slot) != 0 || FCGX_Init() != 0 ||
	    worker_ctx_init(&w, cfg) != 0) {
		log_error("worker: cannot start");
		return 1;
	}
	if (FCGX_InitRequest(&fcgx, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error("worker: FCGX_InitRequest failed");
		worker_ctx_free(&w);
		return 1;
	}
	log_debug("worker ready");
	for (;;) {
		struct timespec now;

		if (worker_should_stop())
			break;
		if (worker_should_reopen_logs())
			(void)log_reopen();
		before_accept(&w, listen_fd);
		rc = FCGX_Accept_r(&fcgx);
		set_alarm_ms(0);
		if (rc < 0) {
			if (worker_should_stop())
				break;
			if (worker_alarm_taken()) {
				/* Another worker took the connection. */
				flush_if(&w, 1);
				continue;
			}
			log_error("worker: accept failed");
			status = 1;
			break;
		}
		(void)worker_alarm_taken();     /* a late alarm is void */
		(void)clock_gettime(CLOCK_MONOTONIC, &now);
		slot->request_started = now.tv_sec;
		slot->busy = 1;
		if (!is_read_method(FCGX_GetParam("REQUEST_METHOD", fcgx.envp)))
			flush_if(&w, 1);
		serve_one(&w, &fcgx, slot);
		FCGX_Finish_r(&fcgx);
		arena_reset(w.arena);
		flush_if(&w, 0);
		slot->requests++;
		slot->request_id[0] = '\0';
		slot->busy = 0;
		if (cfg->max_requests > 0 && ++served >= cfg->max_requests)
			break;
	}
	FCGX_Free(&fcgx, 1);
	worker_ctx_free(&w);
	return status;
}
