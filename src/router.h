/* router.h — the route table: method and path pattern → handler. */
#ifndef POLAIMG_ROUTER_H
#define POLAIMG_ROUTER_H

#include "handlers.h"

/* Finds the route for c->req, authenticates when the route needs it, and
 * runs the handler; answers 404/405 itself. Returns as a handler does
 * (docs/design.md, Style): 0 once answered, PI_ERR_ANSWERED when
 * authentication refused and answered, else a pi_err to answer with. */
int router_dispatch(struct ctx *c);

/* What router_match() answers when no route is the request's. */
enum router_miss {
	ROUTER_NO_PATH = -1,   /* no path matches: 404 */
	ROUTER_NO_METHOD = -2  /* the path matches, not the method: 405 */
};
/* Pure matching, for tests: the index (>= 0) of the route for method and
 * path, ROUTER_NO_PATH if no path matches, ROUTER_NO_METHOD if the path
 * matches but not the method (allow then lists the methods, e.g. "GET,
 * DELETE"). *id gets the :id segment. */
int router_match(const char *method, const char *path, const char **id,
    size_t *idlen, char *allow, size_t allowsz);

#endif
