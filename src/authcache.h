/* authcache.h — a worker's copies of the rows access is decided on.
 *
 * Every authenticated request needs its user (role, active) and the image or
 * case its path names (with the case's patient); reading them costs a
 * PostgreSQL statement, which is most of the work of a list or proxy
 * request. A worker keeps the rows it read here, and drops them all
 * whenever anything they come from may have changed: triggers on users,
 * patient_cases and case_images (sql/003_change_notify.sql) send a
 * NOTIFY in the changing transaction, the worker's connection LISTENs, and
 * the worker looks for notifications before each request (db_changed()).
 * A lost connection, a new one, or a copy older than auth_cache_ttl also
 * drops them. Negative answers (no such user, image, case) are kept too.
 *
 * Bounded: AUTHCACHE_SLOTS entries of each kind, direct-mapped. Pure: no I/O.
 */
#ifndef POLAIMG_AUTHCACHE_H
#define POLAIMG_AUTHCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "db.h"

#define AUTHCACHE_SLOTS 256

struct authcache;

struct authcache *authcache_new(void);
void authcache_free(struct authcache *ac);
/* Drops every copy. */
void authcache_clear(struct authcache *ac);

/* Each get returns true with the copy (made at most ttl_ms before now_ms)
 * or false. found = 0 is a kept "no such row". */
bool authcache_user_get(struct authcache *ac, const char *user_id,
    int64_t now_ms, int64_t ttl_ms, struct db_user *out);
void authcache_user_put(struct authcache *ac, const char *user_id,
    int64_t now_ms, const struct db_user *u);

/* kase's strings are copied into a (NULL stays NULL). */
bool authcache_case_get(struct authcache *ac, const char *case_id,
    int64_t now_ms, int64_t ttl_ms, struct arena *a, struct db_case *kase);
void authcache_case_put(struct authcache *ac, const char *case_id,
    int64_t now_ms, const struct db_case *kase);

/* img->description and img->uploader_name are copied into a (NULL stays
 * NULL). */
bool authcache_image_get(struct authcache *ac, const char *image_id,
    int64_t now_ms, int64_t ttl_ms, struct arena *a, int *found,
    struct image *img);
void authcache_image_put(struct authcache *ac, const char *image_id,
    int64_t now_ms, int found, const struct image *img);

/*
 * Tokens a worker verified. Checking a JWT (base64, JSON, HMAC or a
 * signature) is most of what a worker does itself for a small request; a
 * client sends the same token many times. A token is found only by its
 * exact bytes, so a hit is a token whose signature was verified, and its
 * claims come with it; whether it is good now is decided from its nbf and
 * exp again on every request (auth_claims.valid_from/valid_until). Nothing
 * in the database bears on a token (the user is read separately), so
 * nothing here expires but by time. TOKENCACHE_SLOTS tokens of at most
 * TOKENCACHE_TOKEN_MAX bytes, direct-mapped, wiped when freed.
 */
#define TOKENCACHE_SLOTS 64
#define TOKENCACHE_TOKEN_MAX 1024

struct auth_claims;
struct tokencache;

struct tokencache *tokencache_new(void);
void tokencache_free(struct tokencache *tc);
/* True with *out if token was put and now is within its validity. */
bool tokencache_get(struct tokencache *tc, const char *token, int64_t now,
    struct auth_claims *out);
/* Keeps token (verified, AUTH_OK) with its claims. */
void tokencache_put(struct tokencache *tc, const char *token,
    const struct auth_claims *claims);

#endif
