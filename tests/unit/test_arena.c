/* test_arena.c — the request arena. */
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "tap.h"

static void
free_null(void)
{
	arena_free(NULL);
}

int
main(void)
{
	struct arena *a = arena_new();
	char *s, *big;
	void *p;

	ok(a != NULL, "arena_new");
	p = arena_alloc(a, 10);
	ok(p != NULL && ((uintptr_t)p % 16) == 0, "allocation is 16-byte aligned");
	ok(((unsigned char *)p)[9] == 0, "allocation is zeroed");
	s = arena_strdup(a, "hello");
	is_str(s, "hello", "strdup");
	s = arena_strndup(a, "hello world", 5);
	is_str(s, "hello", "strndup cuts and terminates");
	s = arena_printf(a, "%s-%d", "x", 42);
	is_str(s, "x-42", "printf");
	big = arena_alloc(a, 1 << 20);
	ok(big != NULL, "a 1 MiB allocation gets its own block");
	memset(big, 0xab, 1 << 20);
	s = arena_strdup(a, "after big");
	is_str(s, "after big", "small allocations continue after a big one");
	ok(arena_used(a) >= (1 << 20), "used counts the big block");
	arena_reset(a);
	is_int(arena_used(a), 0, "reset releases everything");
	for (int i = 0; i < 10000; i++)
		if (arena_alloc(a, 100) == NULL) {
			ok(0, "many small allocations");
			break;
		}
	ok(arena_used(a) >= 1000000, "many small allocations span blocks");
	arena_reset(a);
	ok(arena_alloc(a, SIZE_MAX - 4) == NULL, "overflowing size is refused");
	ok(arena_alloc(a, 0) != NULL, "zero-size allocation gives a valid pointer");
	arena_free(a);
	ok(survives(free_null), "arena_free(NULL) is harmless (a child "
	    "calling it exits normally)");
	return done_testing();
}
