/* arena.h — request-scoped memory: allocate freely, free everything at once.
 *
 * Each worker owns one arena; the request's own data (the parsed request,
 * ids, object keys, URLs, formatted strings, I/O buffers of known size) comes
 * from it and arena_reset() releases all of it when the response is written,
 * so none of it can outlive the request or leak across requests.
 *
 * Not everything a request touches is in the arena: what libraries allocate
 * (json-c objects, libpq results, MagickWand wands, OpenSSL digest contexts,
 * the multipart parser) and the few buffers handed over with malloc (a
 * presigned URL from a storage back end's presign(), read_form's body
 * buffer) are freed by the function that obtained them, on every path,
 * before the request ends — usually after copying what must survive into
 * the arena (arena_strdup of a presigned URL).
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
