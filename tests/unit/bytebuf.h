/* bytebuf.h — a growable byte buffer for the unit tests that build files
 * byte by byte (test_imghdr.c's JPEG, PNG, WebP and TIFF headers,
 * test_dicom.c's DICOM files). Header-only, like tap.h; out of memory ends
 * the test program (exit 2).
 */
#ifndef POLAIMG_BYTEBUF_H
#define POLAIMG_BYTEBUF_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
	unsigned char *p;
	size_t n, cap;
};

static inline void
b_put(struct buf *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		if ((b->p = realloc(b->p, b->cap)) == NULL) {
			fprintf(stderr, "out of memory\n");
			exit(2);
		}
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static inline void
b_byte(struct buf *b, unsigned v)
{
	unsigned char c = (unsigned char)v;

	b_put(b, &c, 1);
}

static inline void
b_be16(struct buf *b, uint32_t v)
{
	b_byte(b, v >> 8);
	b_byte(b, v);
}

static inline void
b_be32(struct buf *b, uint32_t v)
{
	b_be16(b, v >> 16);
	b_be16(b, v);
}

static inline void
b_le16(struct buf *b, uint32_t v)
{
	b_byte(b, v);
	b_byte(b, v >> 8);
}

static inline void
b_le24(struct buf *b, uint32_t v)
{
	b_le16(b, v);
	b_byte(b, v >> 16);
}

static inline void
b_le32(struct buf *b, uint32_t v)
{
	b_le16(b, v);
	b_le16(b, v >> 16);
}

static inline void
b_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

#endif
