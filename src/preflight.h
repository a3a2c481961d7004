/* preflight.h — the checks a worker makes at start, made once before
 * (check-config, serve). */
#ifndef POLAIMG_PREFLIGHT_H
#define POLAIMG_PREFLIGHT_H

#include <stddef.h>

#include "config.h"

/* Runs in a child process the checks of worker_ctx_init(): the ImageMagick
 * policy of imaging_policy_dir in force, the JWT key loaded, the storage
 * opened (create = 0: nothing is created, a missing storage_dir/.tmp is
 * only checked to be creatable). Returns 0, or PI_ERR_INVALID with every
 * failure a line of out ('\n'-separated, NUL-terminated; cut to outsz), or
 * PI_ERR_INTERNAL when the checks could not run (out says why). */
int preflight_run(const struct config *cfg, int create, char *out,
    size_t outsz);

#endif
