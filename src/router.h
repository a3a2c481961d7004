/* router.h — the route table: method and path pattern → handler. */
#ifndef POLAIMG_ROUTER_H
#define POLAIMG_ROUTER_H

#include "handlers.h"

/* Finds the route for c->req, authenticates when the route needs it, and
 * runs the handler; answers 404/405 itself. Returns the handler's result. */
int router_dispatch(struct ctx *c);

/* Pure matching, for tests: the index of the route for method and path,
 * -1 if no path matches, -2 if the path matches but not the method (allow
 * then lists the methods, e.g. "GET, DELETE"). *id gets the :id segment. */
int router_match(const char *method, const char *path, const char **id,
    size_t *idlen, char *allow, size_t allowsz);

#endif
