/* bigmem.h — pixel-sized blocks from huge pages, given back when freed. */
#ifndef POLAIMG_BIGMEM_H
#define POLAIMG_BIGMEM_H

#include <stddef.h>

/* Blocks of at least this many bytes come from their own mapping. */
#define BM_HUGE_MIN ((size_t)2 * 1024 * 1024)

/*
 * Returns size bytes aligned to align (a power of two, at least
 * sizeof(void *)), or NULL. A block of BM_HUGE_MIN bytes or more is its own
 * anonymous mapping, 2 MiB-aligned and marked for transparent huge pages;
 * a smaller one comes from posix_memalign(). Free with bm_free() only.
 */
void *bm_alloc(size_t size, size_t align);

/* Frees a block of bm_alloc(), or one of posix_memalign()/malloc() (it is
 * then handed to free()); NULL is ignored. */
void bm_free(void *p);

/* How many mappings are live now (for the tests). */
size_t bm_live(void);

#endif
