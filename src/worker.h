/* worker.h — a worker process: accept one FastCGI request at a time. */
#ifndef POLAIMG_WORKER_H
#define POLAIMG_WORKER_H

#include <stdint.h>

#include "master.h"

struct config;

/* Runs the accept loop on listen_fd until max_requests (ingest_max_requests
 * in the ingest pool), SIGTERM or a fatal error. pool is MASTER_POOL_READ or
 * MASTER_POOL_INGEST (address-space limit, lower priority). slot may be a
 * private struct when there is no master (spawn-fcgi, mod_fcgid). Returns
 * the process exit status. */
int worker_run(const struct config *cfg, int pool, int listen_fd,
    struct scoreboard_slot *slot);

/* ImageMagick's memory limit for max_pixels: what decoding and deriving an
 * image of that many pixels allocates (worker.c). */
uint64_t worker_img_memory(long long max_pixels);
/* The RLIMIT_AS of an ingest worker: worker_img_memory() plus what a worker
 * maps besides pixels. The memory an ingest worker may use. */
uint64_t worker_ingest_memory(long long max_pixels);

#endif
