/* fuzz_router.c — libFuzzer harness for router_match(), the route table
 * every request path goes through before any handler runs.
 *
 * Build and run (or `make fuzz`, which builds and runs every harness; the
 * router pulls in the handlers, so the whole library is linked):
 *   tests/fuzz/run.sh router
 *
 * Input: the first byte picks the method (GET, HEAD, POST, PUT, DELETE,
 * PATCH, OPTIONS, "", "get"), the rest is the raw path (cut at a NUL, as
 * REQUEST_URI is a C string). Contract checked for every input, against a
 * matcher of its own written from docs/api.md's route list below:
 * - the result is -1 (404), -2 (405) or the index of a route;
 * - a route is returned only when its pattern matches the path and its
 *   method is the request's (GET for HEAD), and no literal pattern (one
 *   without ":id") matching the path loses to an ":id" one;
 * - :id, when the route has one, is one whole non-empty segment of the
 *   path: it lies inside the path, follows a '/', holds no '/', and ends
 *   at a '/' or the end; a route without ":id" sets no id;
 * - -1 only when no pattern matches the path, -2 only when one does; the
 *   Allow list of a 405 is a terminated string inside its buffer that
 *   names only methods of the routes matching the path;
 * - the answer is the same when asked twice.
 * A new route in router.c must be added to `known` here (the harness
 * aborts on an index it does not know).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define API "/api/v1/images"

/* router.c's table, in its order (the index router_match returns). */
static const struct {
	const char *method, *pattern;
} known[] = {
	{ "GET", API "/health" },
	{ "POST", API "/upload" },
	{ "POST", API "/upload-url" },
	{ "GET", API "/cases/:id" },
	{ "POST", API "/:id/complete" },
	{ "PUT", API "/:id/upload" },
	{ "GET", API "/:id/file" },
	{ "GET", API "/:id/download-url" },
	{ "GET", API "/:id/proxy" },
	{ "GET", API "/:id" },
	{ "DELETE", API "/:id" },
};
#define NKNOWN ((int)(sizeof(known) / sizeof(known[0])))

static const char *const methods[] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "", "get",
};

/* 2: path matches pattern with literals only, 1: using ":id", 0: no.
 * Written separately from router.c: both split at every '/'. */
static int
oracle(const char *pattern, const char *path)
{
	const char *p = pattern, *s = path;
	int used = 0;

	for (;;) {
		size_t pl, sl;

		if (*p == '\0' || *s == '\0')
			return *p == '\0' && *s == '\0' ? 2 - used : 0;
		if (*p != '/' || *s != '/')
			return 0;
		p++;
		s++;
		pl = strcspn(p, "/");
		sl = strcspn(s, "/");
		if (sl == 0)
			return 0;
		if (pl == 3 && memcmp(p, ":id", 3) == 0)
			used = 1;
		else if (pl != sl || memcmp(p, s, pl) != 0)
			return 0;
		p += pl;
		s += sl;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *m, *rm, *id = NULL, *id2 = NULL;
	size_t idlen = 0, idlen2 = 0, plen;
	char allow[128], allow2[128], *path;
	int r, r2, best = 0;

	if (size < 1 || size > 4096)
		return 0;
	m = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];
	path = malloc(size);
	if (path == NULL)
		return 0;
	memcpy(path, data + 1, size - 1);
	path[size - 1] = '\0';
	plen = strlen(path);
	rm = strcmp(m, "HEAD") == 0 ? "GET" : m;

	memset(allow, 'x', sizeof(allow));
	r = router_match(m, path, &id, &idlen, allow, sizeof(allow));
	r2 = router_match(m, path, &id2, &idlen2, allow2, sizeof(allow2));
	if (r != r2 || (r >= 0 && (id != id2 || idlen != idlen2)))
		abort();    /* not stable */
	for (int i = 0; i < NKNOWN; i++) {
		int q = oracle(known[i].pattern, path);

		if (q > best)
			best = q;
	}
	if (r == ROUTER_NO_PATH) {
		if (best != 0)
			abort();    /* 404 for a path some route matches */
	} else if (r == ROUTER_NO_METHOD) {
		size_t alen;

		if (best == 0)
			abort();    /* 405 for a path no route matches */
		if (memchr(allow, '\0', sizeof(allow)) == NULL)
			abort();
		alen = strlen(allow);
		if (alen == 0)
			abort();
		for (int i = 0; i < NKNOWN; i++)
			if (oracle(known[i].pattern, path) == best &&
			    strcmp(known[i].method, rm) == 0)
				abort();    /* 405 although a route has the method */
		/* Every name in Allow is a method of a route of this path. */
		for (char *tok = allow; *tok != '\0';) {
			size_t n = strcspn(tok, ",");
			int found = n == 4 && memcmp(tok, "HEAD", 4) == 0;

			for (int i = 0; i < NKNOWN && !found; i++)
				found = oracle(known[i].pattern, path) == best &&
				    strlen(known[i].method) == n &&
				    memcmp(known[i].method, tok, n) == 0;
			if (!found)
				abort();
			tok += n;
			while (*tok == ',' || *tok == ' ')
				tok++;
		}
	} else if (r >= 0 && r < NKNOWN) {
		int q = oracle(known[r].pattern, path);
		int has_id = strstr(known[r].pattern, ":id") != NULL;

		if (q == 0 || q != best)
			abort();    /* not the route's path, or a literal lost */
		if (strcmp(known[r].method, rm) != 0)
			abort();    /* another method's route */
		if (has_id) {
			if (id == NULL || idlen == 0 || id <= path ||
			    id + idlen > path + plen || id[-1] != '/' ||
			    memchr(id, '/', idlen) != NULL ||
			    (id[idlen] != '\0' && id[idlen] != '/'))
				abort();    /* :id is not one segment of the path */
		} else if (id != NULL || idlen != 0) {
			abort();
		}
	} else {
		abort();            /* an index the table does not have */
	}
	free(path);
	return 0;
}
