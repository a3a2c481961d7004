/* handlers_auth.c — who is asking, and may they.
 *
 * Every bearer route starts in handlers_authenticate() (the router calls
 * it): the token from the Authorization header or the polacare_token
 * cookie, verified (auth.c) or found in the worker's copy of verified
 * tokens; a cookie request that changes something must come from an
 * allowed origin (the CSRF check); then the user's row, and with it, in
 * the same statement, the image or case the path names (the prefetch), so
 * the common request costs one round trip to PostgreSQL. Rows come from
 * the worker's copies when they are still valid (authcache.h: dropped on
 * any change notification, auth_cache_ttl at most).
 *
 * A signed URL of polaimg's (a download link, a local upload URL) carries
 * no token: handlers_redeem_check() reads its issuer's row the same way
 * and asks the access table again, so a deactivated user's links die with
 * their tokens.
 *
 * The handlers then ask handlers_load_image() or handlers_check_case(),
 * which use the prefetched row when it is the one they need and write the
 * denied audit row when acl_allowed() says no. Nothing here answers with
 * bytes or changes a row.
 */
#include "handlers.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "authcache.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "validate.h"

/* --- authentication and access ---------------------------------------- */

/* Copies of rows may be used for this request (authcache.h): drops them
 * all when anything changed since they were made. Returns 1 with *now_ms. */
static int
copies_usable(struct worker_ctx *w, int64_t *now_ms)
{
	unsigned long epoch;

	if (w->rows == NULL || !db_copies_valid(w->db, &epoch))
		return 0;
	if (epoch != w->rows_epoch) {
		authcache_clear(w->rows);
		w->rows_epoch = epoch;
	}
	*now_ms = db_now_ms();
	return 1;
}

/* The user alone, from a copy or the database. */
static int
read_user_only(struct ctx *c, int copies, int64_t now, struct db_user *user)
{
	struct worker_ctx *w = c->w;
	int64_t ttl = w->cfg->auth_cache_ttl * 1000;
	int rc;

	if (copies && authcache_user_get(w->rows, c->who.user_id, now, ttl, user))
		return user->found ? 0 : PI_ERR_NOT_FOUND;
	memset(user, 0, sizeof(*user));
	rc = db_user_get(w->db, c->who.user_id, user);
	if (copies && rc != PI_ERR_DB)
		authcache_user_put(w->rows, c->who.user_id, now, user);
	return rc;
}

/* The user, and with prefetch the route's image or case, into *user and
 * c->pf: from copies when there are (authcache.h), else in one statement.
 * 0, PI_ERR_NOT_FOUND (no such user) or PI_ERR_DB. */
static int
read_user(struct ctx *c, enum prefetch_kind prefetch, struct db_user *user)
{
	struct worker_ctx *w = c->w;
	int64_t now = 0, ttl = w->cfg->auth_cache_ttl * 1000;
	int copies = copies_usable(w, &now);
	struct prefetch *pf;
	char id[37];
	int rc;

	if (prefetch == PF_NONE || c->id == NULL || !val_uuid(c->id, id) ||
	    (pf = arena_alloc(c->req->arena, sizeof(*pf))) == NULL)
		return read_user_only(c, copies, now, user);
	pf->kind = prefetch;
	memcpy(pf->id, id, sizeof(pf->id));
	if (copies && authcache_user_get(w->rows, c->who.user_id, now, ttl, user) &&
	    (prefetch == PF_IMAGE ?
	    authcache_image_get(w->rows, id, now, ttl, c->req->arena, &pf->found,
	    &pf->img) :
	    authcache_case_get(w->rows, id, now, ttl, c->req->arena, &pf->kase))) {
		if (prefetch == PF_CASE)
			pf->found = pf->kase.found;
		c->pf = pf;
		return user->found ? 0 : PI_ERR_NOT_FOUND;
	}
	if (prefetch == PF_IMAGE)
		rc = db_auth_image(w->db, c->req->arena, c->who.user_id, id,
		    user, &pf->img, &pf->found);
	else
		rc = db_auth_case(w->db, c->req->arena, c->who.user_id, id,
		    user, &pf->kase);
	if (rc != 0)
		return rc;
	if (prefetch == PF_CASE)
		pf->found = pf->kase.found;
	if (copies) {
		authcache_user_put(w->rows, c->who.user_id, now, user);
		if (prefetch == PF_IMAGE)
			authcache_image_put(w->rows, id, now, pf->found, &pf->img);
		else
			authcache_case_put(w->rows, id, now, &pf->kase);
	}
	c->pf = pf;
	return user->found ? 0 : PI_ERR_NOT_FOUND;
}

/* s, or dflt when s is NULL (for log lines). */
static const char *
str_or(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

/* A request authenticated by the polacare_token cookie: 1 if it is safe
 * (GET, HEAD, OPTIONS) or comes from an allowed origin (auth_origin_ok:
 * Origin, else Referer, against allowed_origins, or when that is empty the
 * request's own origin). A browser sends the cookie along with a form or a
 * fetch from any site, never an Authorization header, so bearer requests
 * need no such check. The request's own scheme is what the web server says
 * (HTTPS, REQUEST_SCHEME), never X-Forwarded-Proto, which a client can send:
 * behind a TLS-terminating proxy, list the public origin in
 * allowed_origins. */
static int
csrf_ok(struct ctx *c)
{
	const char *m = c->req->method, *https = http_param(c->req, "HTTPS"),
	    *scheme = http_param(c->req, "REQUEST_SCHEME");

	if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
	    strcmp(m, "OPTIONS") == 0)
		return 1;
	return auth_origin_ok(c->w->cfg->allowed_origins,
	    http_param(c->req, "HTTP_ORIGIN"), http_param(c->req, "HTTP_REFERER"),
	    (https != NULL && https[0] != '\0' && strcasecmp(https, "off") != 0) ||
	    (scheme != NULL && strcasecmp(scheme, "https") == 0),
	    http_param(c->req, "HTTP_HOST"), http_param(c->req, "SERVER_PORT"));
}

int
handlers_authenticate(struct ctx *c, enum prefetch_kind prefetch)
{
	char token[8200];
	struct auth_claims claims;
	struct db_user user;
	const char *t;
	int64_t now;
	int rc;

	t = auth_token_from_headers(http_param(c->req, "HTTP_AUTHORIZATION"),
	    http_param(c->req, "HTTP_COOKIE"), token, sizeof(token));
	if (t == NULL) {
		const char *h = http_param(c->req, "HTTP_AUTHORIZATION");

		/* A header that is there but unusable is an invalid token. */
		if (h != NULL && h[0] != '\0') {
			http_error(c->req, 401, "INVALID_TOKEN", "Invalid token");
			return PI_ERR_ANSWERED;
		}
		http_error(c->req, 401, "AUTH_REQUIRED", "Authentication required");
		return PI_ERR_ANSWERED;
	}
	now = (int64_t)time(NULL);
	if (tokencache_get(c->w->tokens, t, now, &claims)) {
		rc = AUTH_OK;
	} else {
		rc = auth_verify(&c->w->auth, t, now, &claims);
		if (rc == AUTH_OK)
			tokencache_put(c->w->tokens, t, &claims);
	}
	explicit_bzero(token, sizeof(token));
	if (rc == AUTH_EXPIRED) {
		http_error(c->req, 401, "TOKEN_EXPIRED", "Token expired");
		return PI_ERR_ANSWERED;
	}
	if (rc != AUTH_OK) {
		http_error(c->req, 401, "INVALID_TOKEN", "Invalid token");
		return PI_ERR_ANSWERED;
	}
	if (!auth_is_bearer(http_param(c->req, "HTTP_AUTHORIZATION")) &&
	    !csrf_ok(c)) {
		log_debug("csrf: refused %s %s: Origin \"%.200s\" Referer "
		    "\"%.200s\" Host \"%.200s\" rid=%s", c->req->method, c->req->path,
		    str_or(http_param(c->req, "HTTP_ORIGIN"), "-"),
		    str_or(http_param(c->req, "HTTP_REFERER"), "-"),
		    str_or(http_param(c->req, "HTTP_HOST"), "-"),
		    c->req->request_id);
		http_error(c->req, 403, "CSRF_REJECTED",
		    "Cross-site request refused: the Origin is not allowed");
		return PI_ERR_ANSWERED;
	}
	memcpy(c->who.user_id, claims.user_id, sizeof(c->who.user_id));
	if (c->w->cfg->jwt_trust_role_claim && claims.role[0] != '\0') {
		c->who.role = acl_role_parse(claims.role);
	} else {
		rc = read_user(c, prefetch, &user);
		if (rc == PI_ERR_DB) {
			http_error_for(c->req, rc);
			c->who.user_id[0] = '\0';
			return PI_ERR_ANSWERED;
		}
		c->who.role = rc == 0 && user.is_active ?
		    acl_role_parse(user.role) : ROLE_NONE;
	}
	if (c->who.role == ROLE_NONE) {
		c->who.user_id[0] = '\0';
		http_error(c->req, 401, "INVALID_TOKEN", "Invalid token");
		return PI_ERR_ANSWERED;
	}
	return 0;
}

/* See handlers.h. The issuer\'s row is read like the bearer user\'s. */
int
handlers_redeem_check(struct ctx *c, const char *issuer, enum acl_action action,
    const struct image *img, const char *audit_action, const char *variant)
{
	struct db_user user;
	int64_t now = 0;
	int copies, rc;

	if (!val_uuid(issuer, c->who.user_id)) {
		c->who.user_id[0] = '\0';
		http_error(c->req, 401, "INVALID_TOKEN", "Invalid token");
		return PI_ERR_ANSWERED;
	}
	copies = copies_usable(c->w, &now);
	rc = read_user_only(c, copies, now, &user);
	if (rc == PI_ERR_DB) {
		c->who.user_id[0] = '\0';
		return rc;
	}
	c->who.role = rc == 0 && user.is_active ? acl_role_parse(user.role) :
	    ROLE_NONE;
	if (c->who.role == ROLE_NONE) {
		c->who.user_id[0] = '\0';
		http_error(c->req, 401, "INVALID_TOKEN", "Invalid token");
		return PI_ERR_ANSWERED;
	}
	if (!acl_allowed(&c->who, action, img->case_patient_id)) {
		handlers_audit(c, audit_action, img->id, img->case_id, variant,
		    "denied");
		return PI_ERR_FORBIDDEN;
	}
	return 0;
}

/* Validates the :id segment. Answers 400 and returns PI_ERR_ANSWERED when
 * it is not a UUID; else writes the canonical form to out. */
int
handlers_path_id(struct ctx *c, char out[37])
{
	if (c->id == NULL || !val_uuid(c->id, out)) {
		http_validation_error(c->req, http_detail_add(NULL, "id",
		    "must be a UUID"));
		return PI_ERR_ANSWERED;
	}
	return 0;
}

/* Loads image id and checks that c->who may do action to it. Returns 0, or
 * a pi_err to answer with (the denied audit row is written here). */
int
handlers_load_image(struct ctx *c, const char *id, enum acl_action action,
    const char *audit_action, struct image *img)
{
	int rc;

	if (c->pf != NULL && c->pf->kind == PF_IMAGE &&
	    strcmp(c->pf->id, id) == 0) {
		if (!c->pf->found)
			return PI_ERR_NOT_FOUND;
		*img = c->pf->img;
	} else if ((rc = db_image_get(c->w->db, c->req->arena, id, 0, img)) != 0) {
		return rc;
	}
	if (!acl_allowed(&c->who, action, img->case_patient_id)) {
		handlers_audit(c, audit_action, img->id, img->case_id, NULL,
		    "denied");
		return PI_ERR_FORBIDDEN;
	}
	return 0;
}

/* The same for a case. */
int
handlers_check_case(struct ctx *c, const char *case_id, enum acl_action action,
    const char *audit_action, struct db_case *kase)
{
	struct db_case k;
	int rc;

	if (c->pf != NULL && c->pf->kind == PF_CASE &&
	    strcmp(c->pf->id, case_id) == 0) {
		if (!c->pf->found)
			return PI_ERR_NOT_FOUND;
		k = c->pf->kase;
	} else if ((rc = db_case_get(c->w->db, c->req->arena, case_id,
	    &k)) != 0) {
		return rc;
	}
	if (kase != NULL)
		*kase = k;
	if (!acl_allowed(&c->who, action, k.patient_id)) {
		handlers_audit(c, audit_action, NULL, case_id, NULL, "denied");
		return PI_ERR_FORBIDDEN;
	}
	return 0;
}
