/* worker.h — a worker process: accept one FastCGI request at a time. */
#ifndef POLAIMG_WORKER_H
#define POLAIMG_WORKER_H

#include "master.h"

struct config;

/* Runs the accept loop on listen_fd until max_requests, SIGTERM or a fatal
 * error. slot may be a private struct when there is no master (spawn-fcgi,
 * mod_fcgid). Returns the process exit status. */
int worker_run(const struct config *cfg, int listen_fd,
    struct scoreboard_slot *slot);

#endif
