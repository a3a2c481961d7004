/* authcache.c — see authcache.h. */
#include "authcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "common.h"

#define ID_MAX 64

struct user_entry {
	char id[ID_MAX];           /* "" = empty slot */
	int64_t at_ms;
	struct db_user u;
};

struct case_entry {
	char id[ID_MAX];
	int64_t at_ms;
	struct db_case kase;       /* its strings point at name and hn */
	char *name;                /* malloc'd copies, or NULL */
	char *hn;
};

struct image_entry {
	char id[ID_MAX];
	int64_t at_ms;
	int found;
	struct image img;          /* its strings point at desc and uploader */
	char *desc;                /* malloc'd copies, or NULL */
	char *uploader;
};

struct authcache {
	struct user_entry users[AUTHCACHE_SLOTS];
	struct case_entry cases[AUTHCACHE_SLOTS];
	struct image_entry images[AUTHCACHE_SLOTS];
};

static size_t
slot(const char *id)
{
	return pi_fnv1a(id, strlen(id)) % AUTHCACHE_SLOTS;
}

/* 1 if an entry with key id, made at at_ms, may answer at now_ms. */
static int
usable(const char *key, const char *id, int64_t at_ms, int64_t now_ms,
    int64_t ttl_ms)
{
	return key[0] != '\0' && strcmp(key, id) == 0 && now_ms >= at_ms &&
	    now_ms - at_ms < ttl_ms;
}

static int
set_key(char key[ID_MAX], const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n >= ID_MAX)
		return -1;
	memcpy(key, id, n + 1);
	return 0;
}

/* The caches are allocated whole and touched at once, so that a worker's
 * resident memory does not creep up as their slots fill. */
struct authcache *
authcache_new(void)
{
	struct authcache *ac = malloc(sizeof(*ac));

	if (ac != NULL)
		explicit_bzero(ac, sizeof(*ac));   /* not turned into calloc */
	return ac;
}

void
authcache_clear(struct authcache *ac)
{
	if (ac == NULL)
		return;
	for (size_t i = 0; i < AUTHCACHE_SLOTS; i++) {
		ac->users[i].id[0] = '\0';
		ac->cases[i].id[0] = '\0';
		ac->images[i].id[0] = '\0';
		free(ac->images[i].desc);
		ac->images[i].desc = NULL;
		free(ac->images[i].uploader);
		ac->images[i].uploader = NULL;
		free(ac->cases[i].name);
		ac->cases[i].name = NULL;
		free(ac->cases[i].hn);
		ac->cases[i].hn = NULL;
	}
}

void
authcache_free(struct authcache *ac)
{
	authcache_clear(ac);
	free(ac);
}

bool
authcache_user_get(struct authcache *ac, const char *user_id, int64_t now_ms,
    int64_t ttl_ms, struct db_user *out)
{
	struct user_entry *e;

	if (ac == NULL)
		return false;
	e = &ac->users[slot(user_id)];
	if (!usable(e->id, user_id, e->at_ms, now_ms, ttl_ms))
		return false;
	*out = e->u;
	return true;
}

void
authcache_user_put(struct authcache *ac, const char *user_id, int64_t now_ms,
    const struct db_user *u)
{
	struct user_entry *e;

	if (ac == NULL)
		return;
	e = &ac->users[slot(user_id)];
	if (set_key(e->id, user_id) != 0)
		return;
	e->at_ms = now_ms;
	e->u = *u;
}

/* A malloc'd copy of s into *out (NULL stays NULL). 0, or PI_ERR_NOMEM. */
static int
dup_or_null(const char *s, char **out)
{
	*out = NULL;
	if (s != NULL && (*out = strdup(s)) == NULL)
		return PI_ERR_NOMEM;
	return 0;
}

/* An arena copy of s into *out (NULL stays NULL). 0, or PI_ERR_NOMEM. */
static int
arena_dup_or_null(struct arena *a, const char *s, const char **out)
{
	*out = NULL;
	if (s != NULL && (*out = arena_strdup(a, s)) == NULL)
		return PI_ERR_NOMEM;
	return 0;
}

bool
authcache_case_get(struct authcache *ac, const char *case_id, int64_t now_ms,
    int64_t ttl_ms, struct arena *a, struct db_case *out)
{
	struct case_entry *e;

	if (ac == NULL)
		return false;
	e = &ac->cases[slot(case_id)];
	if (!usable(e->id, case_id, e->at_ms, now_ms, ttl_ms))
		return false;
	*out = e->kase;
	if (arena_dup_or_null(a, e->name, &out->patient_name) != 0 ||
	    arena_dup_or_null(a, e->hn, &out->hn) != 0)
		return false;
	return true;
}

void
authcache_case_put(struct authcache *ac, const char *case_id, int64_t now_ms,
    const struct db_case *kase)
{
	struct case_entry *e;
	char *name = NULL, *hn = NULL;

	if (ac == NULL)
		return;
	e = &ac->cases[slot(case_id)];
	if (dup_or_null(kase->patient_name, &name) != 0 ||
	    dup_or_null(kase->hn, &hn) != 0) {
		free(name);
		e->id[0] = '\0';
		return;
	}
	free(e->name);
	free(e->hn);
	e->name = e->hn = NULL;
	if (set_key(e->id, case_id) != 0) {
		free(name);
		free(hn);
		return;
	}
	e->at_ms = now_ms;
	e->kase = *kase;
	e->kase.patient_name = e->name = name;
	e->kase.hn = e->hn = hn;
}

bool
authcache_image_get(struct authcache *ac, const char *image_id,
    int64_t now_ms, int64_t ttl_ms, struct arena *a, int *found,
    struct image *img)
{
	struct image_entry *e;

	if (ac == NULL)
		return false;
	e = &ac->images[slot(image_id)];
	if (!usable(e->id, image_id, e->at_ms, now_ms, ttl_ms))
		return false;
	*found = e->found;
	if (!e->found)
		return true;
	*img = e->img;
	if (arena_dup_or_null(a, e->desc, &img->description) != 0 ||
	    arena_dup_or_null(a, e->uploader, &img->uploader_name) != 0)
		return false;
	return true;
}

void
authcache_image_put(struct authcache *ac, const char *image_id,
    int64_t now_ms, int found, const struct image *img)
{
	struct image_entry *e;
	char *desc = NULL, *uploader = NULL;

	if (ac == NULL)
		return;
	e = &ac->images[slot(image_id)];
	if (found && (dup_or_null(img->description, &desc) != 0 ||
	    dup_or_null(img->uploader_name, &uploader) != 0)) {
		free(desc);
		e->id[0] = '\0';
		return;
	}
	free(e->desc);
	free(e->uploader);
	e->desc = e->uploader = NULL;
	if (set_key(e->id, image_id) != 0) {
		free(desc);
		free(uploader);
		return;
	}
	e->at_ms = now_ms;
	e->found = found;
	if (found) {
		e->img = *img;
		e->img.description = NULL;
		e->img.uploader_name = NULL;
		e->desc = desc;
		e->uploader = uploader;
	}
}

/* --- tokens ----------------------------------------------------------- */

struct token_entry {
	size_t len;                /* 0 = empty */
	char token[TOKENCACHE_TOKEN_MAX];
	struct auth_claims claims;
};

struct tokencache {
	struct token_entry slots[TOKENCACHE_SLOTS];
};

struct tokencache *
tokencache_new(void)
{
	struct tokencache *tc = malloc(sizeof(*tc));

	if (tc != NULL)
		explicit_bzero(tc, sizeof(*tc));
	return tc;
}

void
tokencache_free(struct tokencache *tc)
{
	if (tc == NULL)
		return;
	explicit_bzero(tc, sizeof(*tc));
	free(tc);
}

static struct token_entry *
token_slot(struct tokencache *tc, const char *token, size_t len)
{
	size_t from = len > 64 ? len - 64 : 0;

	/* The signature, at the end, differs most between tokens. */
	return &tc->slots[pi_fnv1a(token + from, len - from) % TOKENCACHE_SLOTS];
}

bool
tokencache_get(struct tokencache *tc, const char *token, int64_t now,
    struct auth_claims *out)
{
	struct token_entry *e;
	size_t len;

	if (tc == NULL)
		return false;
	len = strlen(token);
	if (len == 0 || len >= TOKENCACHE_TOKEN_MAX)
		return false;
	e = token_slot(tc, token, len);
	if (e->len != len || memcmp(e->token, token, len) != 0 ||
	    now < e->claims.valid_from || now >= e->claims.valid_until)
		return false;
	*out = e->claims;
	return true;
}

void
tokencache_put(struct tokencache *tc, const char *token,
    const struct auth_claims *claims)
{
	struct token_entry *e;
	size_t len;

	if (tc == NULL)
		return;
	len = strlen(token);
	if (len == 0 || len >= TOKENCACHE_TOKEN_MAX)
		return;
	e = token_slot(tc, token, len);
	explicit_bzero(e, sizeof(*e));
	memcpy(e->token, token, len);
	e->len = len;
	e->claims = *claims;
}
