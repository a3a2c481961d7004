/* test_listcache.c — the worker's case-list copies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "listcache.h"
#include "tap.h"

static int
same(const char *got, size_t len, const char *want)
{
	return got != NULL && len == strlen(want) && memcmp(got, want, len) == 0;
}

int
main(void)
{
	struct listcache *lc = listcache_new(4096), *off;
	const char *p;
	size_t len = 0;
	char key[LISTCACHE_KEY_MAX + 8], big[2048];
	int kept, found;

	ok(lc != NULL, "listcache_new");
	ok(listcache_get(lc, "a|", 1, 100, 10000, &len) == NULL, "an empty cache has nothing");
	ok(listcache_put(lc, "a|", 7, 100, "[1,2]", 5) == 1, "put keeps a copy");
	p = listcache_get(lc, "a|", 7, 100, 10000, &len);
	ok(same(p, len, "[1,2]"), "get at the same version returns the bytes");
	ok(listcache_get(lc, "a|", 8, 100, 10000, &len) == NULL,
	    "a newer version of the case misses");
	ok(listcache_get(lc, "a|", 6, 100, 10000, &len) == NULL, "an older version misses");
	ok(listcache_get(lc, "a|", 7, 10099, 10000, &len) != NULL, "a copy younger than the ttl is used");
	ok(listcache_get(lc, "a|", 7, 10100, 10000, &len) == NULL, "one as old as the ttl is not");
	ok(listcache_get(lc, "a|", 7, 99, 10000, &len) == NULL, "a clock before the copy: not used");
	ok(listcache_get(lc, "a|x", 7, 100, 10000, &len) == NULL, "another key misses");
	ok(listcache_get(lc, "a", 7, 100, 10000, &len) == NULL, "a prefix of the key misses");
	ok(listcache_put(lc, "a|", 8, 100, "[1,2,3]", 7) == 1, "put at a new version");
	p = listcache_get(lc, "a|", 8, 100, 10000, &len);
	ok(same(p, len, "[1,2,3]"), "the new bytes replace the old");
	ok(listcache_get(lc, "a|", 7, 100, 10000, &len) == NULL, "the old version is gone");
	is_int(listcache_entries(lc), 1, "one entry for one key");
	is_int(listcache_bytes(lc), 7, "bytes count the copy");

	/* The bound: nothing over a quarter, never over the total. */
	memset(big, 'x', sizeof(big));
	ok(listcache_put(lc, "big", 1, 100, big, 1025) == 0,
	    "an entry over a quarter of the bound is not kept");
	ok(listcache_get(lc, "big", 1, 100, 10000, &len) == NULL, "and is not found");
	ok(listcache_put(lc, "k", 1, 100, "", 0) == 0, "an empty answer is not kept");
	memset(key, 'k', sizeof(key));
	key[LISTCACHE_KEY_MAX] = '\0';
	ok(listcache_put(lc, key, 1, 100, "[]", 2) == 0, "a key too long is not kept");
	kept = 0;
	for (int i = 0; i < 200; i++) {
		char k[32];

		(void)snprintf(k, sizeof(k), "case-%d|", i);
		kept += listcache_put(lc, k, i, 100, big, 1000);
		ok(listcache_bytes(lc) <= 4096, "bytes stay within the bound");
	}
	is_int(kept, 200, "every put within the bounds is kept (evicting)");
	ok(listcache_entries(lc) <= 4, "at most bound / size entries remain");
	found = 0;
	for (int i = 0; i < 200; i++) {
		char k[32];

		(void)snprintf(k, sizeof(k), "case-%d|", i);
		if (listcache_get(lc, k, i, 100, 10000, &len) != NULL) {
			found++;
			ok(len == 1000 && memcmp(listcache_get(lc, k, i, 100, 10000, &len), big,
			    1000) == 0, "a surviving entry has its own bytes");
		}
	}
	is_int(found, listcache_entries(lc), "every counted entry is found");
	ok(listcache_get(lc, "case-199|", 199, 100, 10000, &len) != NULL,
	    "the last one put is there");
	listcache_clear(lc);
	is_int(listcache_entries(lc), 0, "clear empties");
	is_int(listcache_bytes(lc), 0, "clear frees the bytes");
	ok(listcache_get(lc, "case-199|", 199, 100, 10000, &len) == NULL, "nothing after clear");

	/* Slot collisions: many keys, each either found with its own bytes
	 * or missing, never another key's. */
	for (int i = 0; i < 500; i++) {
		char k[32], v[32];

		(void)snprintf(k, sizeof(k), "c%d|left|100|0", i);
		(void)snprintf(v, sizeof(v), "v%d", i);
		(void)listcache_put(lc, k, 1, 100, v, strlen(v));
	}
	found = 0;
	for (int i = 0; i < 500; i++) {
		char k[32], v[32];

		(void)snprintf(k, sizeof(k), "c%d|left|100|0", i);
		(void)snprintf(v, sizeof(v), "v%d", i);
		p = listcache_get(lc, k, 1, 100, 10000, &len);
		if (p != NULL) {
			found++;
			if (!same(p, len, v))
				found = -10000;
		}
	}
	ok(found > 0 && found <= LISTCACHE_SLOTS,
	    "colliding keys: only own bytes, at most one entry a slot");

	/* Large copies (their own pages) behave the same. */
	{
		struct listcache *large = listcache_new(1 << 20);
		static char blob[200000];
		int good = 1;

		ok(large != NULL, "a cache of 1 MiB");
		for (int i = 0; i < 40; i++) {
			char k[32];

			memset(blob, 'a' + i % 26, sizeof(blob));
			(void)snprintf(k, sizeof(k), "big-%d|", i % 5);
			good &= listcache_put(large, k, i, 100, blob, 100000 + (size_t)i * 1000) == 1;
			p = listcache_get(large, k, i, 100, 10000, &len);
			good &= p != NULL && len == 100000 + (size_t)i * 1000 &&
			    p[0] == 'a' + i % 26 && p[len - 1] == 'a' + i % 26;
			good &= listcache_bytes(large) <= (1 << 20);
		}
		ok(good, "large copies are kept, replaced and bounded");
		listcache_free(large);
	}

	off = listcache_new(0);
	ok(off != NULL, "a cache of 0 bytes");
	ok(listcache_put(off, "a|", 1, 100, "[]", 2) == 0, "keeps nothing");
	ok(listcache_get(off, "a|", 1, 100, 10000, &len) == NULL, "and finds nothing");
	ok(listcache_get(NULL, "a|", 1, 100, 10000, &len) == NULL, "NULL cache: get misses");
	ok(listcache_put(NULL, "a|", 1, 100, "[]", 2) == 0, "NULL cache: put keeps nothing");
	listcache_free(off);
	listcache_free(lc);
	listcache_free(NULL);
	return done_testing();
}
