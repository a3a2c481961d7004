/* router.c — a declarative route table instead of a chain of strcmp()s.
 *
 * Patterns are split at '/'; a segment ":name" matches any one non-empty
 * segment (the handler validates it: ":id" as a UUID, the DICOMweb
 * ":study", ":series", ":instance" as DICOM UIDs), every other segment must
 * match exactly. A literal segment wins over a parameter (so /upload is
 * never an image id). The first parameter is c->id, all of them (at most
 * ROUTER_MAX_PARAMS) c->seg[]. When the path matches a route but not its method, the answer is
 * 405 with an Allow header listing the methods that would match. HEAD is
 * served by the GET route without a body.
 */
#include "router.h"

#include <stdio.h>
#include <string.h>

#include "common.h"

struct route {
	const char *method;
	const char *pattern;
	handler_fn handler;
	int needs_auth;
	enum prefetch_kind prefetch;
};

#define API "/api/v1/images"

static const struct route routes[] = {
	{ "GET",    API "/health",            h_health,       0, PF_NONE },
	{ "POST",   API "/upload",            h_upload,       1, PF_NONE },
	{ "POST",   API "/upload-url",        h_upload_url,   1, PF_NONE },
	{ "GET",    API "/cases/:id",         h_list,         1, PF_CASE },
	{ "POST",   API "/:id/complete",      h_complete,     1, PF_NONE },
	{ "PUT",    API "/:id/upload",        h_put_upload,   0, PF_NONE },
	{ "GET",    API "/:id/file",          h_file,         0, PF_NONE },
	{ "GET",    API "/:id/download-url",  h_download_url, 1, PF_IMAGE },
	{ "GET",    API "/:id/proxy",         h_proxy,        1, PF_IMAGE },
	{ "GET",    API "/:id",               h_get,          1, PF_IMAGE },
	{ "DELETE", API "/:id",               h_delete,       1, PF_IMAGE },
	{ "GET",    API "/dicom-web/studies", h_qido_studies, 1, PF_NONE },
	{ "POST",   API "/dicom-web/cases/:id/studies", h_stow, 1, PF_NONE },
	{ "GET",    API "/dicom-web/studies/:study", h_wado_study, 1, PF_NONE },
	{ "GET",    API "/dicom-web/studies/:study/series", h_qido_series, 1, PF_NONE },
	{ "GET",    API "/dicom-web/studies/:study/series/:series", h_wado_series, 1, PF_NONE },
	{ "GET",    API "/dicom-web/studies/:study/series/:series/instances", h_qido_instances, 1, PF_NONE },
	{ "GET",    API "/dicom-web/studies/:study/series/:series/instances/:instance", h_wado_instance, 1, PF_NONE },
	{ "GET",    API "/dicom-web/studies/:study/series/:series/instances/:instance/metadata", h_wado_metadata, 1, PF_NONE },
	{ "GET",    API "/dicom-web/studies/:study/series/:series/instances/:instance/rendered", h_wado_rendered, 1, PF_NONE },
};

/* Matches path against pattern: 2 = exact literal match, 1 = match using
 * a parameter, 0 = no match. The parameters' segments go to seg[] and
 * seglen[] (ROUTER_MAX_PARAMS of each; may be NULL), the first also to
 * *id and *idlen. */
static int
pattern_match(const char *pattern, const char *path, const char **id,
    size_t *idlen, const char **seg, size_t *seglen)
{
	const char *p = pattern, *s = path;
	int used_param = 0;

	while (*p != '\0' && *s != '\0') {
		const char *pe, *se;
		size_t pl, sl;

		/* Both point at a '/'; compare the segments that follow. */
		if (*p != '/' || *s != '/')
			return 0;
		p++;
		s++;
		pe = strchr(p, '/');
		se = strchr(s, '/');
		pl = pe != NULL ? (size_t)(pe - p) : strlen(p);
		sl = se != NULL ? (size_t)(se - s) : strlen(s);
		if (sl == 0)
			return 0;
		if (pl > 1 && *p == ':') {
			if (used_param == 0) {
				*id = s;
				*idlen = sl;
			}
			if (used_param >= ROUTER_MAX_PARAMS)
				return 0;
			if (seg != NULL) {
				seg[used_param] = s;
				seglen[used_param] = sl;
			}
			used_param++;
		} else if (pl != sl || strncmp(p, s, pl) != 0) {
			return 0;
		}
		p += pl;
		s += sl;
	}
	if (*p != '\0' || *s != '\0')
		return 0;
	return used_param ? 1 : 2;
}

int
router_match(const char *method, const char *path, const char **id,
    size_t *idlen, char *allow, size_t allowsz)
{
	int best = 0, found = -1;
	const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
	size_t alen = 0;

	/* The most specific pattern that matches the path decides the family. */
	for (size_t i = 0; i < PI_ARRAY_LEN(routes); i++) {
		const char *pid = NULL;
		size_t plen = 0;
		int q = pattern_match(routes[i].pattern, path, &pid, &plen, NULL,
		    NULL);

		if (q > best)
			best = q;
	}
	if (best == 0)
		return ROUTER_NO_PATH;
	if (allow != NULL && allowsz > 0)
		allow[0] = '\0';
	for (size_t i = 0; i < PI_ARRAY_LEN(routes); i++) {
		const char *pid = NULL;
		size_t plen = 0;

		if (pattern_match(routes[i].pattern, path, &pid, &plen, NULL,
		    NULL) != best)
			continue;
		if (strcmp(routes[i].method, m) == 0 && found < 0) {
			found = (int)i;
			*id = pid;
			*idlen = plen;
		}
		if (allow != NULL && alen < allowsz) {
			int n = snprintf(allow + alen, allowsz - alen, "%s%s",
			    alen > 0 ? ", " : "", routes[i].method);

			if (n > 0)
				alen += (size_t)n;
			if (strcmp(routes[i].method, "GET") == 0 && alen < allowsz) {
				n = snprintf(allow + alen, allowsz - alen, ", HEAD");
				if (n > 0)
					alen += (size_t)n;
			}
		}
	}
	return found >= 0 ? found : ROUTER_NO_METHOD;
}

int
router_dispatch(struct ctx *c)
{
	const char *id = NULL;
	size_t idlen = 0;
	char allow[128];
	int i = router_match(c->req->method, c->req->path, &id, &idlen, allow,
	    sizeof(allow));

	if (i == ROUTER_NO_PATH)
		return http_error(c->req, 404, "NOT_FOUND", "Not found");
	if (i == ROUTER_NO_METHOD)
		return http_error_hdr(c->req, 405, "METHOD_NOT_ALLOWED",
		    "Method not allowed", "Allow", allow);
	if (id != NULL) {
		const char *seg[ROUTER_MAX_PARAMS] = { NULL };
		size_t seglen[ROUTER_MAX_PARAMS] = { 0 };

		c->id = arena_strndup(c->req->arena, id, idlen);
		if (c->id == NULL)
			return PI_ERR_NOMEM;
		(void)pattern_match(routes[i].pattern, c->req->path, &id, &idlen,
		    seg, seglen);
		for (int k = 0; k < ROUTER_MAX_PARAMS && seg[k] != NULL; k++) {
			c->seg[k] = arena_strndup(c->req->arena, seg[k], seglen[k]);
			if (c->seg[k] == NULL)
				return PI_ERR_NOMEM;
		}
	}
	if (routes[i].needs_auth) {
		int rc = handlers_authenticate(c, routes[i].prefetch);

		if (rc != 0)
			return rc;
	}
	return routes[i].handler(c);
}
