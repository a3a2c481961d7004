/* worker.c — the life of a worker process.
 *
 * Everything that must not cross fork() is created here, after it: the
 * PostgreSQL connection, MagickWand, the storage back end (and its curl
 * handle). They live in one struct worker_ctx for the process's lifetime;
 * everything a request allocates comes from the request arena, reset after
 * each response, so a worker's memory does not grow with the requests it
 * serves. A worker serves max_requests requests and exits; the master starts
 * a fresh one.
 *
 * Pools. A worker of the ingest pool (ingest_listen) serves the uploads the
 * web server routes to it, and runs under a kernel-enforced address-space
 * limit (RLIMIT_AS, worker_ingest_memory()) at a lower CPU priority
 * (nice INGEST_NICE), so that a decoder that runs away costs one answer
 * for that upload (ImageMagick's own limits refuse first, with a 422; past
 * them an allocation fails, or the worker dies and is respawned) and the
 * read pool keeps the cores. The read pool has no RLIMIT_AS: it decodes
 * nothing when there is an ingest pool, and in single-pool mode (no
 * ingest_listen) nothing changes from a plain worker.
 *
 * Memory of one decode (ImageMagick 6.9.11 Q16, measured): the pixel cache
 * of the full decode takes 8 bytes a pixel, 10 for a palette or CMYK image
 * (an index channel), and the PNG reader holds the decoded rows besides
 * (a palette PNG needed 13.5 bytes a pixel in all, a 16-bit RGBA one 10);
 * then the area-average step makes an intermediate of at most 2 x the
 * display size (4096 x 4096 x 8 bytes = 128 MiB), the resize the display
 * copy (2048 x 2048 x 8 = 32 MiB), and the encoders and the thumbnail take
 * the rest. worker_img_memory() is that sum with 16 bytes a pixel; it is
 * ImageMagick's memory limit (and map limit), so an image of exactly
 * max_pixels is processed and one pixel more is refused by img_probe.
 * Measured against it: a 7071 x 7071 palette PNG (50 MP) is refused at
 * 760 MiB and made at 820 MiB (VmHWM 793 MB); the limit for 50 MP is
 * 987 MiB.
 */
#include "worker.h"
#include "dicom.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/epoll.h>
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

#define INGEST_NICE 10
/* Bytes a pixel of the full decode may take (see above). */
#define IMG_CACHE_PIXEL 16ULL
/* The scaled intermediate and the display copy (see above), and the
 * encoders' buffers with the thumbnail. */
#define IMG_STEPS_BYTES ((128ULL + 32ULL) << 20)
#define IMG_CODER_BYTES (64ULL << 20)
/* What a worker maps besides the pixels: the program and its libraries,
 * heap, stacks, libpq, libcurl, ImageMagick's configuration. Measured
 * VmPeak of an idle worker 180-200 MB with glibc's 64 MB arena reserves. */
#define WORKER_BASE_BYTES (384ULL << 20)

uint64_t
worker_img_memory(long long max_pixels)
{
	return IMG_CACHE_PIXEL * (uint64_t)max_pixels + IMG_STEPS_BYTES +
	    IMG_CODER_BYTES;
}

uint64_t
worker_ingest_memory(long long max_pixels)
{
	return worker_img_memory(max_pixels) + WORKER_BASE_BYTES;
}

/* DCMTK's decoders and the DICOM header limits (dicom.h), once per
 * worker next to img_init(). 0 or -1 (logged). */
static int
worker_dicom_init(const struct config *cfg)
{
	struct dicom_limits lim = {
		.max_pixels = (uint64_t)cfg->max_pixels,
		.max_frames = (uint64_t)cfg->max_frames,
		.max_bytes = (uint64_t)cfg->max_dicom_bytes,
	};

	if (dicom_init(&lim) != 0) {
		log_error("worker: DICOM initialisation failed");
		return -1;
	}
	return 0;
}

static int
worker_ctx_init(struct worker_ctx *w, const struct config *cfg)
{
	/* ImageMagick's memory limit is what the pipeline allocates for an
	 * image of max_pixels (see above); no disk cache, so an image that
	 * does not fit is refused with a 422. */
	struct img_limits lim = {
		.max_pixels = (uint64_t)cfg->max_pixels,
		.memory_bytes = worker_img_memory(cfg->max_pixels),
		.map_bytes = worker_img_memory(cfg->max_pixels),
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
	if (worker_dicom_init(cfg) != 0)
		return -1;
	w->arena = arena_new();
	w->db = db_new(cfg->database_url);
	if (w->arena == NULL || w->db == NULL) {
		log_error("worker: out of memory");
		return -1;
	}
	db_set_sync_reads(w->db, strcmp(cfg->audit_read_commit, "sync") == 0);
	/* Copies of rows need the counter the workers of one master share
	 * (read-your-writes); a lone worker (spawn-fcgi, mod_fcgid) keeps none. */
	db_set_change_counter(w->db, master_shared_changes());
	if (cfg->auth_cache_ttl > 0 && master_shared_changes() != NULL) {
		w->rows = authcache_new();
		if (w->rows == NULL) {
			log_error("worker: out of memory");
			return -1;
		}
		db_set_listen(w->db, 1);
	}
	w->tokens = tokencache_new();
	w->lists = listcache_new(cfg->auth_cache_ttl > 0 ?
	    (size_t)cfg->list_cache_size : 0);
	if (w->lists == NULL || w->tokens == NULL ||
	    db_set_read_batch(w->db, strcmp(cfg->audit_read_commit, "sync") == 0 ?
	    1 : (size_t)cfg->audit_read_batch) != 0 ||
	    db_set_spool(w->db, cfg->audit_spool_dir, (long)cfg->audit_retry_ms) != 0) {
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
	dicom_shutdown();
}

static void
serve_one(struct worker_ctx *w, FCGX_Request *fcgx, struct scoreboard_slot *slot)
{
	struct http_request req;
	struct ctx c = { 0 };   /* read by the log line even when init fails */
	int rc;

	if (http_request_init(&req, fcgx, w->arena, w->cfg->body_file_dir) != 0) {
		(void)http_validation_error(&req, http_detail_add(NULL, "request",
		    "malformed request"));
		goto done;
	}
	(void)snprintf(slot->request_id, sizeof(slot->request_id), "%s",
	    req.request_id);
	memset(&c, 0, sizeof(c));
	c.w = w;
	c.req = &req;
	rc = router_dispatch(&c);
	if (rc == PI_ERR_ANSWERED)
		rc = 0;
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
 *   is audit_read_delay ms old (see wait_for_connection: an idle worker
 *   holds nothing for longer); before a request that may run long (a
 *   write, or bytes polaimg streams itself: flush_before), so that a
 *   request_timeout kill never takes rows with it;
 * - when the worker stops (SIGTERM, max_requests).
 * Rows the database cannot take go to the spool (db_set_spool); while it
 * holds rows, every flush tries them first, and an idle worker does so
 * every second.
 * A worker that crashes or is SIGKILLed loses what it holds: at most
 * audit_read_batch rows of its last fraction of a second, and they are
 * then missing, not wrong. audit_read_batch = 1 writes every row at once.
 */
static void
flush_if(struct worker_ctx *w, int force)
{
	int64_t oldest;

	if (db_audit_pending(w->db, &oldest) == 0) {
		/* Spooled rows (the database was away) are tried again. */
		if (force && db_spool_waiting(w->db))
			(void)db_audit_flush(w->db);
		master_set_unwritten(0);
		return;
	}
	if (force || db_now_ms() - oldest >= w->cfg->audit_read_delay)
		(void)db_audit_flush(w->db);
	master_set_unwritten(db_audit_pending(w->db, NULL) > 0);
}

/*
 * Waiting for the next request. The listening socket is non-blocking and
 * each worker waits in epoll_wait with EPOLLEXCLUSIVE (the kernel wakes one
 * waiter a connection, as a blocking accept would); a worker that loses
 * the race for a connection gets EAGAIN from accept and waits again, never
 * blocked in accept. A worker holding gathered audit rows waits only until
 * they are due, then writes them: an idle worker holds nothing longer than
 * audit_read_delay. Connections accepted on Linux do not inherit
 * O_NONBLOCK, so libfcgi reads and writes them blocking as before. A
 * signal ends the wait (epoll_wait is never restarted), so SIGTERM is seen
 * at once.
 */
static int
waiter_open(int listen_fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };
	int flags, ep;

	flags = fcntl(listen_fd, F_GETFL);
	if (flags < 0 || ((flags & O_NONBLOCK) == 0 &&
	    fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) != 0))
		return -1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -1;
	ev.data.fd = listen_fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
		(void)close(ep);
		return -1;
	}
	return ep;
}

/* 1 when a connection may be waiting, 0 when the wait ended without one
 * (rows due, or a signal). */
static int
wait_for_connection(struct worker_ctx *w, int ep)
{
	struct epoll_event ev;
	int64_t oldest, due;
	int timeout = -1, n;

	if (db_audit_pending(w->db, &oldest) > 0) {
		due = oldest + w->cfg->audit_read_delay - db_now_ms();
		timeout = due > 0 ? (int)due : 0;
	}
	/* While rows wait in the spool, an idle worker tries them every
	 * second (a replay that failed waits that long anyway). */
	if (db_spool_waiting(w->db) && (timeout < 0 || timeout > 1000))
		timeout = 1000;
	n = epoll_wait(ep, &ev, 1, timeout);
	if (n == 0)
		flush_if(w, 1);
	return n > 0;
}

/* Whether the gathered rows are written before this request: before one
 * that may run long (writes; bytes streamed by polaimg itself), so that a
 * request_timeout kill never takes rows with it. */
static int
flush_before(const struct config *cfg, FCGX_Request *fcgx)
{
	const char *m = FCGX_GetParam("REQUEST_METHOD", fcgx->envp);
	const char *uri = FCGX_GetParam("REQUEST_URI", fcgx->envp);

	if (m == NULL || (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0))
		return 1;
	return cfg->offload_mode == OFFLOAD_NONE && uri != NULL &&
	    (strstr(uri, "/proxy") != NULL || strstr(uri, "/file") != NULL);
}

/*
 * An ingest worker, once everything it needs is loaded: the address-space
 * limit (worker_ingest_memory) and a lower priority. Returns 0, or -1 if
 * the limit could not be set (the worker must not serve without it).
 */
static int
ingest_limits(const struct config *cfg)
{
	struct rlimit rl;
	uint64_t as = cfg->ingest_memory_limit > 0 ?
	    (uint64_t)cfg->ingest_memory_limit :
	    worker_ingest_memory(cfg->max_pixels);

	if (getrlimit(RLIMIT_AS, &rl) != 0)
		return -1;
	if (rl.rlim_max == RLIM_INFINITY || (uint64_t)rl.rlim_max > as)
		rl.rlim_max = (rlim_t)as;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_AS, &rl) != 0) {
		log_error("worker: setrlimit(RLIMIT_AS, %llu): %s",
		    (unsigned long long)as, strerror(errno));
		return -1;
	}
	errno = 0;
	if (nice(INGEST_NICE) == -1 && errno != 0)
		log_warn("worker: nice(%d): %s", INGEST_NICE, strerror(errno));
	log_info("ingest worker: address space limited to %llu MiB",
	    (unsigned long long)(rl.rlim_max >> 20));
	return 0;
}

int
worker_run(const struct config *cfg, int pool, int listen_fd,
    struct scoreboard_slot *slot)
{
	struct worker_ctx w;
	FCGX_Request fcgx;
	long long served = 0, max_requests = cfg->max_requests;
	int status = 0, rc, ep;

	if (master_signals_init(slot) != 0 || FCGX_Init() != 0 ||
	    worker_ctx_init(&w, cfg) != 0) {
		log_error("worker: cannot start");
		return 1;
	}
	if (pool == MASTER_POOL_INGEST) {
		max_requests = cfg->ingest_max_requests;
		if (ingest_limits(cfg) != 0) {
			worker_ctx_free(&w);
			return 1;
		}
	}
	if (FCGX_InitRequest(&fcgx, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error("worker: FCGX_InitRequest failed");
		worker_ctx_free(&w);
		return 1;
	}
	ep = waiter_open(listen_fd);
	if (ep < 0) {
		log_error("worker: cannot wait on the listening socket: %s",
		    strerror(errno));
		FCGX_Free(&fcgx, 1);
		worker_ctx_free(&w);
		return 1;
	}
	slot->ready = 1;   /* the master counts failures at start until now */
	log_debug("worker ready");
	for (;;) {
		struct timespec now;

		if (master_should_stop())
			break;
		if (master_should_reopen_logs())
			(void)log_reopen();
		if (!wait_for_connection(&w, ep))
			continue;
		rc = FCGX_Accept_r(&fcgx);
		if (rc < 0) {
			if (master_should_stop())
				break;
			/* Another worker took it, or a signal came. */
			if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -EINTR ||
			    rc == -ECONNABORTED)
				continue;
			log_error("worker: accept failed: %s", strerror(-rc));
			status = 1;
			break;
		}
		(void)clock_gettime(CLOCK_MONOTONIC, &now);
		slot->request_started = now.tv_sec;
		slot->busy = 1;
		if (flush_before(cfg, &fcgx))
			flush_if(&w, 1);
		serve_one(&w, &fcgx, slot);
		master_ingest_release();
		FCGX_Finish_r(&fcgx);
		arena_reset(w.arena);
		flush_if(&w, 0);
		slot->requests++;
		slot->request_id[0] = '\0';
		slot->busy = 0;
		if (max_requests > 0 && ++served >= max_requests)
			break;
	}
	(void)close(ep);
	FCGX_Free(&fcgx, 1);
	worker_ctx_free(&w);
	return status;
}
