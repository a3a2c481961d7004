/* handlers.h — the endpoints of api.md and what they share.
 *
 * A handler answers its request itself and returns 0, or returns a negative
 * pi_err without having answered, and the worker answers with the matching
 * documented error (http_error_for).
 */
#ifndef POLAIMG_HANDLERS_H
#define POLAIMG_HANDLERS_H

#include "acl.h"
#include "auth.h"
#include "http.h"

struct config;
struct db;
struct storage;

/* What a worker keeps for its whole life. */
struct worker_ctx {
	const struct config *cfg;
	struct db *db;
	struct storage *storage;
	struct auth_config auth;
	struct arena *arena;
};

/* One request. */
struct ctx {
	struct worker_ctx *w;
	struct http_request *req;
	const char *id;              /* the :id path segment, raw */
	struct principal who;        /* set when the route needs authentication */
};

typedef int (*handler_fn)(struct ctx *c);

int h_health(struct ctx *c);
int h_upload(struct ctx *c);
int h_upload_url(struct ctx *c);
int h_put_upload(struct ctx *c);
int h_complete(struct ctx *c);
int h_get(struct ctx *c);
int h_list(struct ctx *c);
int h_download_url(struct ctx *c);
int h_file(struct ctx *c);
int h_proxy(struct ctx *c);
int h_delete(struct ctx *c);

/* Authenticates the request (bearer token or cookie, then the users table)
 * into c->who. Returns 0, or answers 401/503 itself and returns 1. */
int handlers_authenticate(struct ctx *c);

#endif
