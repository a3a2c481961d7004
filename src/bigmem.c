/* bigmem.c — pixel-sized blocks from huge pages, given back when freed.
 *
 * Why: a derive allocates a few pixel buffers of 10-40 MB (jpegdec.c's
 * decoded rows, ImageMagick's Q16 pixel caches of the decoded and of the
 * reduced image) and frees them at the end of the request. They come from
 * mmap (imaging.c holds glibc's mmap threshold at 1 MiB so a worker's RSS
 * falls back between requests), and the kernel then faults and zeroes
 * them in 4 KiB pages: a quarter of the CPU of a 12 MP upload went there.
 * This kernel's transparent huge pages are "madvise": a mapping that asks
 * for them (MADV_HUGEPAGE) is faulted in 2 MiB at a time, 512 times fewer
 * faults for the same zeroing. Blocks of BM_HUGE_MIN and more therefore
 * get their own mapping, 2 MiB-aligned (a huge page needs an aligned
 * virtual range), and are unmapped when freed, so idle RSS stays as low
 * as before. Smaller blocks are posix_memalign()/free().
 *
 * ImageMagick reaches this through SetMagickAlignedMemoryMethods()
 * (imaging.c): its pixel caches and nexus buffers are
 * AcquireAlignedMemory() blocks. A block it got before the hook was set
 * comes back here too, so bm_free() tells its own mappings from heap
 * blocks by a table of the live mappings (a handful at a time: one
 * request's images); a pointer not in the table goes to free(). When the
 * table is full, a big block is simply posix_memalign()'d.
 *
 * One thread per worker uses this, but ImageMagick may be given more by a
 * policy file, so the table is behind a mutex (uncontended: nanoseconds
 * against the milliseconds of faulting in the block).
 */
#include "bigmem.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define BM_SLOTS 64
#define BM_HUGE_PAGE ((size_t)2 * 1024 * 1024)

static struct bm_map {
	void *base;     /* what mmap returned */
	size_t len;     /* what was mapped */
	void *user;     /* the aligned block handed out; NULL: free slot */
} bm_maps[BM_SLOTS];
static size_t bm_nlive;
static pthread_mutex_t bm_lock = PTHREAD_MUTEX_INITIALIZER;

/* An aligned mapping of at least size bytes in a free slot, or NULL. */
static void *
bm_map_huge(size_t size)
{
	size_t len, i;
	uintptr_t a;
	void *base, *user = NULL;

	if (size > SIZE_MAX - 2 * BM_HUGE_PAGE)
		return NULL;
	size = (size + BM_HUGE_PAGE - 1) & ~(BM_HUGE_PAGE - 1);
	len = size + BM_HUGE_PAGE;
	if (pthread_mutex_lock(&bm_lock) != 0)
		return NULL;
	for (i = 0; i < BM_SLOTS && bm_maps[i].user != NULL; i++)
		;
	if (i == BM_SLOTS)
		goto out;
	base = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		goto out;
	a = ((uintptr_t)base + BM_HUGE_PAGE - 1) & ~(uintptr_t)(BM_HUGE_PAGE - 1);
	user = (void *)a;
	/* Advice only: without it the block is ordinary pages. */
	(void)madvise(user, size, MADV_HUGEPAGE);
	bm_maps[i].base = base;
	bm_maps[i].len = len;
	bm_maps[i].user = user;
	bm_nlive++;
out:
	(void)pthread_mutex_unlock(&bm_lock);
	return user;
}

void *
bm_alloc(size_t size, size_t align)
{
	void *p = NULL;
	int rc;

	if (size == 0)
		size = 1;
	if (size >= BM_HUGE_MIN && align <= BM_HUGE_PAGE &&
	    (p = bm_map_huge(size)) != NULL)
		return p;
	if (align < sizeof(void *))
		align = sizeof(void *);
	if ((rc = posix_memalign(&p, align, size)) != 0) {
		errno = rc;
		return NULL;
	}
	return p;
}

void
bm_free(void *p)
{
	struct bm_map m = { NULL, 0, NULL };

	if (p == NULL)
		return;
	/* Cannot tell whose block it is: better kept than freed wrongly. */
	if (pthread_mutex_lock(&bm_lock) != 0)
		return;
	for (size_t i = 0; i < BM_SLOTS; i++) {
		if (bm_maps[i].user == p) {
			m = bm_maps[i];
			bm_maps[i].user = NULL;
			bm_nlive--;
			break;
		}
	}
	(void)pthread_mutex_unlock(&bm_lock);
	if (m.user == NULL)
		free(p);
	else
		(void)munmap(m.base, m.len);
}

size_t
bm_live(void)
{
	size_t n;

	if (pthread_mutex_lock(&bm_lock) != 0)
		return 0;
	n = bm_nlive;
	(void)pthread_mutex_unlock(&bm_lock);
	return n;
}
