/* multipart.h — a streaming, bounded multipart/form-data parser (RFC 7578).
 *
 * The parser never buffers a part's body: it hands body bytes to a callback as
 * they arrive, so a 50 MiB upload costs the same memory as a 5 KiB one. Only
 * part headers are buffered, up to a fixed bound. Pure: no I/O, no allocation
 * after mp_new().
 */
#ifndef POLAIMG_MULTIPART_H
#define POLAIMG_MULTIPART_H

#include <stddef.h>

#define MP_MAX_BOUNDARY 70     /* RFC 2046 */
/* multipart/related (DICOMweb STOW-RS) takes longer ones: Orthanc's
 * DICOMweb plugin sends two UUIDs joined, 73 characters. */
#define MP_MAX_BOUNDARY_RELATED 160
#define MP_MAX_HEADER_BYTES 8192 /* all header lines of one part together */
#define MP_MAX_NAME 256        /* form field name / filename / content type */

enum mp_status {
	MP_OK = 0,
	MP_ERR_SYNTAX = -1,   /* not valid multipart (bad boundary line, bad header, ...) */
	MP_ERR_HEADERS = -2,  /* a part's headers exceed MP_MAX_HEADER_BYTES or a value MP_MAX_NAME */
	MP_ERR_TRUNCATED = -3,/* mp_finish() before the closing boundary */
	MP_ERR_CALLBACK = -4, /* a callback returned non-zero: parsing stopped */
	MP_ERR_PARTS = -5     /* more than MP_MAX_PARTS parts */
};

#define MP_MAX_PARTS 64

struct mp_part {
	char name[MP_MAX_NAME];          /* Content-Disposition name="…", required */
	char filename[MP_MAX_NAME];      /* filename="…", "" if absent */
	int has_filename;
	char content_type[MP_MAX_NAME];  /* Content-Type of the part, "" if absent */
};

struct mp_callbacks {
	/* A part's headers are complete. Return 0 to go on, non-zero to stop.
	 * part belongs to the parser and is valid only during the call. */
	int (*on_part_begin)(void *ud, const struct mp_part *part);
	/* Some bytes of the current part's body (any length >= 1). data is
	 * valid only during the call. */
	int (*on_part_data)(void *ud, const char *data, size_t len);
	/* The current part's body ended (its closing delimiter line is well
	 * formed). */
	int (*on_part_end)(void *ud);
};

struct mp_parser;

/* Extracts the boundary parameter from a Content-Type header value
 * ("multipart/form-data; boundary=xyz", quoted or not, case-insensitive
 * names). Writes it NUL-terminated to out. Returns 0, or MP_ERR_SYNTAX if the
 * type is not multipart/form-data or the boundary is missing, empty, over
 * MP_MAX_BOUNDARY or has characters RFC 2046 forbids. */
int mp_boundary(const char *content_type, char *out, size_t outsz);

/* The same for multipart/related (RFC 2387; DICOMweb STOW-RS), with
 * boundaries up to MP_MAX_BOUNDARY_RELATED characters. */
int mp_boundary_related(const char *content_type, char *out, size_t outsz);


/* A new parser for one body. The callbacks and ud must outlive it; any of the
 * three callbacks may be NULL. Returns NULL on OOM, or if boundary is NULL or
 * not a boundary RFC 2046 allows (1 to MP_MAX_BOUNDARY bchars — up to
 * MP_MAX_BOUNDARY_RELATED for mp_boundary_related()'s — no trailing
 * space). Free with mp_free(). */
struct mp_parser *mp_new(const char *boundary, const struct mp_callbacks *cb,
    void *ud);
/* The same for a multipart/related body (boundary up to
 * MP_MAX_BOUNDARY_RELATED): parts need no Content-Disposition (one present
 * is ignored; part->name stays empty). */
struct mp_parser *mp_new_related(const char *boundary,
    const struct mp_callbacks *cb, void *ud);
void mp_free(struct mp_parser *p);

/* Feeds the next len bytes of the body (any split, down to single bytes).
 * Returns MP_OK or a negative mp_status; after an error every further call
 * returns the same error. Bytes after the closing boundary are ignored. */
int mp_feed(struct mp_parser *p, const char *data, size_t len);

/* The body has ended: MP_OK if the closing boundary was seen, else
 * MP_ERR_TRUNCATED (or the earlier error). */
int mp_finish(struct mp_parser *p);

#endif
