/* listcache.h — a worker's copies of recent case-list answers.
 *
 * GET /cases/:id is the most frequent request and its 20-100 rows are the
 * most expensive database work polaimg does per request. A worker keeps the
 * JSON bytes of the lists it answered (the images and the total, which are
 * the same for every caller; handlers_read.c adds the case and the viewer
 * per request), each under its key (case, filter, page) and the case's
 * version: a number the database changes, in the same
 * transaction, with every change to any image of the case (a trigger,
 * sql/002_case_versions.sql). A cached list is used only when the version
 * read in this request equals the one it was made at, so an answer is never
 * older than the database at the start of the request; there is no expiry
 * to tune and nothing to invalidate.
 *
 * Bounded: at most LISTCACHE_SLOTS entries and max_bytes of copies; an entry
 * larger than a quarter of max_bytes is not kept. Pure: no I/O.
 */
#ifndef POLAIMG_LISTCACHE_H
#define POLAIMG_LISTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LISTCACHE_SLOTS 64
#define LISTCACHE_KEY_MAX 128

struct listcache;

/* NULL on OOM. max_bytes 0 makes a cache that keeps nothing. */
struct listcache *listcache_new(size_t max_bytes);
void listcache_free(struct listcache *lc);

/* The bytes cached for key at version, made at most ttl_ms before now_ms
 * (a bound for writes that skip the trigger), or NULL (*len untouched).
 * The pointer is valid until the next listcache_put or listcache_clear. */
const char *listcache_get(struct listcache *lc, const char *key,
    long long version, int64_t now_ms, int64_t ttl_ms, size_t *len);

/* Keeps a copy of data under key and version, made at now_ms, replacing
 * what the slot held. Returns true if kept, false if not (too large, key
 * too long, out of memory). */
bool listcache_put(struct listcache *lc, const char *key, long long version,
    int64_t now_ms, const char *data, size_t len);

void listcache_clear(struct listcache *lc);

/* Entries and bytes held now. */
size_t listcache_entries(const struct listcache *lc);
size_t listcache_bytes(const struct listcache *lc);

#endif
