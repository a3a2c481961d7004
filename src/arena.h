/* arena.h — request-scoped memory: allocate freely, free everything at once.
 *
 * Each worker owns one arena; every allocation that belongs to a request comes
 * from it and arena_reset() releases them all when the response is written, so
 * nothing a request allocates can outlive it or leak across requests.
 */
#ifndef POLAIMG_ARENA_H
#define POLAIMG_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

/* A new empty arena, or NULL. Free with arena_free(). */
struct arena *arena_new(void);
/* Frees every block and the arena itself. NULL is allowed. */
void arena_free(struct arena *a);
/* Releases every allocation; keeps the first block for reuse. */
void arena_reset(struct arena *a);
/* n bytes, aligned for any type, zeroed; NULL on overflow or OOM. */
void *arena_alloc(struct arena *a, size_t n);
/* Copies of strings, NUL-terminated, owned by the arena. */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* printf into arena memory; NULL on error. */
char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Bytes currently handed out (for tests and the memory report). */
size_t arena_used(const struct arena *a);

#endif
