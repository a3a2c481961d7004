/* handlers.h — the endpoints of docs/api.md and what they share.
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

struct authcache;
struct config;
struct db;
struct image;
struct listcache;
struct prefetch;
struct storage;

/* What a worker keeps for its whole life. */
struct worker_ctx {
	const struct config *cfg;
	struct db *db;
	struct storage *storage;
	struct auth_config auth;
	struct arena *arena;
	struct listcache *lists;     /* case-list answers (listcache.h) */
	struct authcache *rows;      /* users, cases, images (authcache.h); NULL: off */
	struct tokencache *tokens;   /* verified tokens (authcache.h) */
	unsigned long rows_epoch;    /* db_copies_valid() epoch of rows */
};

/* One request. */
struct ctx {
	struct worker_ctx *w;
	struct http_request *req;
	const char *id;              /* the :id path segment, raw */
	struct principal who;        /* set when the route needs authentication */
	struct prefetch *pf;         /* what authentication read with the user */
};

/* What a route's authentication may read in the same statement as the
 * user: the image or the case its :id names. */
enum prefetch_kind { PF_NONE, PF_IMAGE, PF_CASE };

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

/* The fields of a POST /upload-url body besides the image's own. */
struct upload_url_fields {
	const char *file_name, *content_type;   /* point into the body */
	long long file_size;                    /* -1 when absent */
	long long expires_in;                   /* 900 when absent */
	int has_expires;
};

/* Extracts and validates the members of an upload-url body (a JSON object)
 * into f and img (caseId, eyeSide, imageType, capturedAt, description; img
 * is zeroed first, its description points into body). max_ttl bounds
 * expiresIn. Returns NULL when every field is valid, else the
 * VALIDATION_FAILED details array (the caller owns it). Pure: no I/O. */
json_object *handlers_upload_url_fields(json_object *body, long long max_ttl,
    struct upload_url_fields *f, struct image *img);

/* Authenticates the request (bearer token or cookie, then the users table)
 * into c->who. An unsafe request (not GET, HEAD, OPTIONS) authenticated by
 * the cookie must come from an allowed origin (allowed_origins), else 403
 * CSRF_REJECTED. Returns 0, or answers 401/403/503 itself and returns 1. With
 * PF_IMAGE or PF_CASE and a UUID in :id, the image or case is read in the
 * same statement as the user and kept in c->pf for the handler (one round
 * trip to PostgreSQL instead of two). */
int handlers_authenticate(struct ctx *c, enum prefetch_kind prefetch);

#endif
