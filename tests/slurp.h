/* slurp.h — a whole file into memory, for the unit tests and the image
 * benchmark (bench/imgbench.c). Header-only, like tap.h.
 */
#ifndef POLAIMG_SLURP_H
#define POLAIMG_SLURP_H

#include <stdio.h>
#include <stdlib.h>

/* The whole file, malloc'd (caller frees; one byte more than *len, so a
 * caller may NUL-terminate it), or NULL with *len 0. */
static inline unsigned char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long size;

	*len = 0;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto out;
	if ((buf = malloc((size_t)size + 1)) == NULL)
		goto out;
	if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
		free(buf);
		buf = NULL;
		goto out;
	}
	*len = (size_t)size;
out:
	fclose(f);
	return buf;
}

#endif
