/* listcache.c — see listcache.h.
 *
 * Direct-mapped: a key's slot is its FNV-1a hash modulo LISTCACHE_SLOTS, and
 * a new entry replaces whatever the slot held. When the bytes would exceed
 * the bound, entries are dropped in slot order from a rotating hand until
 * they fit. No recency bookkeeping: a clinic works on a few cases at a time
 * per worker, and a miss costs one database query, not a wrong answer.
 *
 * Copies of LISTCACHE_MMAP_MIN bytes or more get pages of their own (mmap):
 * a long-lived copy among the request's short-lived allocations would pin
 * heap memory that glibc could not give back, and a worker's memory would
 * creep up as lists are replaced; unmapped, a replaced copy is gone.
 */
#define LISTCACHE_MMAP_MIN (16 * 1024)
#include "listcache.h"
#include "common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct entry {
	char key[LISTCACHE_KEY_MAX];
	long long version;
	int64_t at_ms;
	char *data;            /* NULL: the slot is empty */
	size_t len;
};

struct listcache {
	struct entry slots[LISTCACHE_SLOTS];
	size_t max_bytes, bytes, entries;
	size_t hand;
};

struct listcache *
listcache_new(size_t max_bytes)
{
	struct listcache *lc = calloc(1, sizeof(*lc));

	if (lc != NULL)
		lc->max_bytes = max_bytes;
	return lc;
}

static char *
copy_alloc(size_t len)
{
	void *p;

	if (len < LISTCACHE_MMAP_MIN)
		return malloc(len);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	    -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void
copy_free(char *p, size_t len)
{
	if (len < LISTCACHE_MMAP_MIN)
		free(p);
	else
		(void)munmap(p, len);
}

static void
drop(struct listcache *lc, struct entry *e)
{
	if (e->data == NULL)
		return;
	lc->bytes -= e->len;
	lc->entries--;
	copy_free(e->data, e->len);
	e->data = NULL;
	e->len = 0;
	e->key[0] = '\0';
}

void
listcache_clear(struct listcache *lc)
{
	if (lc == NULL)
		return;
	for (size_t i = 0; i < LISTCACHE_SLOTS; i++)
		drop(lc, &lc->slots[i]);
}

void
listcache_free(struct listcache *lc)
{
	listcache_clear(lc);
	free(lc);
}

static struct entry *
slot_of(struct listcache *lc, const char *key)
{
	return &lc->slots[pi_fnv1a(key, strlen(key)) % LISTCACHE_SLOTS];
}

const char *
listcache_get(struct listcache *lc, const char *key, long long version,
    int64_t now_ms, int64_t ttl_ms, size_t *len)
{
	struct entry *e;

	if (lc == NULL)
		return NULL;
	e = slot_of(lc, key);
	if (e->data == NULL || e->version != version || strcmp(e->key, key) != 0 ||
	    now_ms < e->at_ms || now_ms - e->at_ms >= ttl_ms)
		return NULL;
	*len = e->len;
	return e->data;
}

bool
listcache_put(struct listcache *lc, const char *key, long long version,
    int64_t now_ms, const char *data, size_t len)
{
	struct entry *e;
	char *copy;
	size_t klen;

	if (lc == NULL || len == 0 || len > lc->max_bytes / 4)
		return false;
	klen = strlen(key);
	if (klen >= LISTCACHE_KEY_MAX)
		return false;
	e = slot_of(lc, key);
	drop(lc, e);
	while (lc->bytes + len > lc->max_bytes) {
		drop(lc, &lc->slots[lc->hand]);
		lc->hand = (lc->hand + 1) % LISTCACHE_SLOTS;
	}
	copy = copy_alloc(len);
	if (copy == NULL)
		return false;
	memcpy(copy, data, len);
	memcpy(e->key, key, klen + 1);
	e->version = version;
	e->at_ms = now_ms;
	e->data = copy;
	e->len = len;
	lc->bytes += len;
	lc->entries++;
	return true;
}

size_t
listcache_entries(const struct listcache *lc)
{
	return lc != NULL ? lc->entries : 0;
}

size_t
listcache_bytes(const struct listcache *lc)
{
	return lc != NULL ? lc->bytes : 0;
}
