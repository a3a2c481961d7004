/* test_router.c — the route table through router_match(), without a server.
 *
 * Every route of docs/api.md reaches its own entry; HEAD is served by the
 * GET route; a literal segment beats ":id" ("/upload" is never an image
 * id); a path that matches with the wrong method is 405 with the methods
 * that would match; everything else is 404, including near misses (a
 * trailing slash, an empty segment, other case, a longer path). The ":id"
 * handed to the handler is exactly the segment, inside the path.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "router.h"
#include "tap.h"

#define API "/api/v1/images"
#define ID "0b6e1a52-5c3d-4d8e-9f10-1a2b3c4d5e6f"
#define NROUTES 11              /* the routes of docs/api.md */

struct want {
	const char *method, *path, *id;   /* id NULL: the route has none */
};

/* One request of every route, in no particular order. */
static const struct want routes[NROUTES] = {
	{ "GET", API "/health", NULL },
	{ "POST", API "/upload", NULL },
	{ "POST", API "/upload-url", NULL },
	{ "GET", API "/cases/" ID, ID },
	{ "POST", API "/" ID "/complete", ID },
	{ "PUT", API "/" ID "/upload", ID },
	{ "GET", API "/" ID "/file", ID },
	{ "GET", API "/" ID "/download-url", ID },
	{ "GET", API "/" ID "/proxy", ID },
	{ "GET", API "/" ID, ID },
	{ "DELETE", API "/" ID, ID },
};

static int
match(const char *method, const char *path, const char **id, size_t *idlen,
    char *allow, size_t allowsz)
{
	*id = NULL;
	*idlen = 0;
	return router_match(method, path, id, idlen, allow, allowsz);
}

static void
test_every_route(void)
{
	int seen[NROUTES];
	char what[200];

	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < NROUTES; i++) {
		const char *id;
		size_t idlen;
		int r = match(routes[i].method, routes[i].path, &id, &idlen, NULL, 0);

		(void)snprintf(what, sizeof(what), "%s %s: a route", routes[i].method,
		    routes[i].path);
		if (!ok(r >= 0 && r < NROUTES, what))
			continue;
		(void)snprintf(what, sizeof(what), "%s %s: its own route",
		    routes[i].method, routes[i].path);
		ok(seen[r]++ == 0, what);
		(void)snprintf(what, sizeof(what), "%s %s: id", routes[i].method,
		    routes[i].path);
		if (routes[i].id == NULL) {
			ok(id == NULL && idlen == 0, what);
		} else {
			ok(id != NULL && idlen == strlen(routes[i].id) &&
			    strncmp(id, routes[i].id, idlen) == 0 &&
			    id > routes[i].path &&
			    id + idlen <= routes[i].path + strlen(routes[i].path),
			    what);
		}
	}
	for (int i = 0; i < NROUTES; i++) {
		(void)snprintf(what, sizeof(what), "route %d reached by one request", i);
		is_int(seen[i], 1, what);
	}
}

static void
test_methods(void)
{
	const char *id;
	size_t idlen;
	char allow[128];
	int get = match("GET", API "/" ID, &id, &idlen, NULL, 0);
	int get_file = match("GET", API "/" ID "/file", &id, &idlen, NULL, 0);

	is_int(match("HEAD", API "/" ID, &id, &idlen, NULL, 0), get,
	    "HEAD uses the GET route");
	is_int(match("HEAD", API "/" ID "/file", &id, &idlen, NULL, 0), get_file,
	    "HEAD of /file uses its GET route");
	ok(id != NULL && idlen == strlen(ID), "HEAD: id too");
	is_int(match("HEAD", API "/upload", &id, &idlen, allow, sizeof(allow)), -2,
	    "HEAD of a POST-only path: 405");

	is_int(match("PATCH", API "/" ID, &id, &idlen, allow, sizeof(allow)), -2,
	    "PATCH /:id: 405");
	is_str(allow, "GET, HEAD, DELETE", "Allow of /:id");
	is_int(match("POST", API "/" ID, &id, &idlen, allow, sizeof(allow)), -2,
	    "POST /:id: 405");
	is_int(match("GET", API "/" ID "/complete", &id, &idlen, allow,
	    sizeof(allow)), -2, "GET /:id/complete: 405");
	is_str(allow, "POST", "Allow of /:id/complete");
	is_int(match("GET", API "/" ID "/upload", &id, &idlen, allow,
	    sizeof(allow)), -2, "GET /:id/upload: 405");
	is_str(allow, "PUT", "Allow of /:id/upload");
	is_int(match("DELETE", API "/health", &id, &idlen, allow, sizeof(allow)), -2,
	    "DELETE /health: 405");
	is_str(allow, "GET, HEAD", "Allow of /health");
	is_int(match("get", API "/health", &id, &idlen, allow, sizeof(allow)), -2,
	    "methods are case-sensitive: get is not GET");
	is_int(match("", API "/health", &id, &idlen, allow, sizeof(allow)), -2,
	    "empty method: 405");

	/* A literal segment beats ":id", also for the method check. */
	is_int(match("GET", API "/upload", &id, &idlen, allow, sizeof(allow)), -2,
	    "GET /upload is not GET /:id");
	is_str(allow, "POST", "Allow of /upload names only POST");
	is_int(match("DELETE", API "/health", &id, &idlen, NULL, 0), -2,
	    "DELETE /health is not DELETE /:id");
	{
		int get_id = match("GET", API "/" ID, &id, &idlen, NULL, 0);

		is_int(match("GET", API "/cases", &id, &idlen, NULL, 0), get_id,
		    "/cases alone is an image id (the handler refuses it as no UUID)");
		ok(id != NULL && idlen == 5 && strncmp(id, "cases", 5) == 0,
		    "id is \"cases\"");
	}

	/* The Allow buffer is bounded and stays a string. */
	memset(allow, 'x', sizeof(allow));
	is_int(match("PATCH", API "/" ID, &id, &idlen, allow, 6), -2,
	    "405 with a 6-byte Allow buffer");
	ok(memchr(allow, '\0', 6) != NULL && allow[6] == 'x',
	    "Allow truncated inside its buffer");
	is_int(match("PATCH", API "/" ID, &id, &idlen, NULL, 0), -2,
	    "405 without an Allow buffer");
}

static void
test_not_found(void)
{
	static const char *const paths[] = {
		"", "/", "/api", "/api/v1", API, API "/", "api/v1/images/health",
		"//api/v1/images/health", API "/health/", API "//health",
		API "/" ID "/", API "/" ID "//file", API "//" ID, API "/" ID "/file/",
		API "/" ID "/file/x", API "/" ID "/files", API "/" ID "/FILE",
		API "/cases/", API "/cases/" ID "/x", "/API/v1/images/health",
		"/api/v2/images/health", "/api/v1/imagesx/health",
		"/api/v1/image/health", "/x" API "/health", API "/a/b/c/d",
		API "/health?x=1x/y",
	};
	char what[200], allow[128];
	const char *id;
	size_t idlen;

	for (size_t i = 0; i < PI_ARRAY_LEN(paths); i++) {
		(void)snprintf(what, sizeof(what), "GET \"%s\": 404", paths[i]);
		is_int(match("GET", paths[i], &id, &idlen, allow, sizeof(allow)), -1,
		    what);
	}
	is_int(match("DELETE", "/etc/passwd", &id, &idlen, allow, sizeof(allow)),
	    -1, "an unknown path is 404 for every method");
}

static void
test_id_segment(void)
{
	static const char *const ids[] = {
		"x", "..", "%2e%2e", "a%2Fb", "NOT-A-UUID", ID "extra", "0",
	};
	char path[256], what[200];
	const char *id;
	size_t idlen;

	/* The router takes any one non-empty segment as :id; the handler
	 * validates it as a UUID. It never spans a '/'. */
	for (size_t i = 0; i < PI_ARRAY_LEN(ids); i++) {
		(void)snprintf(path, sizeof(path), API "/%s/proxy", ids[i]);
		(void)snprintf(what, sizeof(what), "/%s/proxy: the id is exactly "
		    "the segment", ids[i]);
		ok(match("GET", path, &id, &idlen, NULL, 0) >= 0 && id != NULL &&
		    idlen == strlen(ids[i]) && strncmp(id, ids[i], idlen) == 0 &&
		    id == path + strlen(API "/") && memchr(id, '/', idlen) == NULL,
		    what);
	}
	is_int(match("GET", API "/a/b/proxy", &id, &idlen, NULL, 0), -1,
	    "an id of two segments is no route");
}

int
main(void)
{
	test_every_route();
	test_methods();
	test_not_found();
	test_id_segment();
	return done_testing();
}
