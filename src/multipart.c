/* multipart.c — a streaming, bounded multipart/form-data parser (RFC 7578).
 *
 * The body is a byte stream that arrives in chunks of any size, so the parser
 * is a byte-driven state machine that never looks back further than what it
 * holds in its own struct: it allocates once in mp_new() and never again.
 *
 * Finding the delimiter.  A part ends at CRLF "--" boundary (RFC 2046 5.1.1),
 * so the parser searches for the string D = "\r\n--" boundary.  Boundary
 * characters never include CR (mp_new() refuses such a boundary), so CR
 * occurs in D only at index 0: when a partial match of k bytes fails, no
 * proper suffix of the matched bytes can start a new match, and the k bytes
 * were exactly D[0..k).  The "lookbehind" of a match split across two feed()
 * calls is therefore the delimiter itself: on a mismatch the parser hands
 * D[0..k) to the data callback and re-examines the current byte.  Body bytes
 * that cannot start a delimiter are passed straight from the caller's buffer
 * (memchr for CR), so a large upload costs one callback per chunk, not per
 * byte.  A "--boundary" that does not follow CRLF is plain data.
 *
 * The first delimiter may open the body without a preceding CRLF, so the
 * preamble is scanned as if "\r\n" had already been seen; anything before the
 * first delimiter line is ignored, as RFC 2046 requires.
 *
 * The delimiter line.  As RFC 2046 says, a line that starts with the
 * delimiter is a delimiter line even when more follows: after it come either
 * "--" (the close delimiter; everything after it is epilogue and ignored) or
 * optional transport padding (SP / HTAB) and CRLF.  Anything else is
 * MP_ERR_SYNTAX rather than data, so a crafted body cannot make the parser and
 * a downstream proxy disagree about where a part ends.  on_part_end() is
 * called only once the delimiter line that ends the part is known to be well
 * formed.
 *
 * Headers.  A part's header lines are collected into a fixed buffer (CRLF
 * required; the CR is dropped when storing), at most MP_MAX_HEADER_BYTES raw
 * bytes for all lines of one part together, the CRLFs included and the
 * empty line that ends the block excluded.  Control characters other than HTAB
 * and obsolete line folding are refused.  Only Content-Disposition (which
 * must be form-data and carry a non-empty name) and Content-Type are
 * interpreted; other headers are checked for form and ignored.  A header
 * given twice, a parameter given twice, or a value over MP_MAX_NAME - 1 bytes
 * are errors rather than first-wins or last-wins guesses.  Quoted strings
 * take backslash escapes (RFC 7230 quoted-pair).  filename* (RFC 5987) is
 * ignored, as RFC 7578 4.2 says senders must not use it.
 *
 * A body that consists only of the close delimiter (no parts) is accepted:
 * the caller checks its required fields anyway.
 */
#include "multipart.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum mp_state {
	ST_PREAMBLE,     /* before the first delimiter; bytes ignored */
	ST_TAIL,         /* just after a delimiter: "--", padding or CR */
	ST_TAIL_DASH,    /* saw one '-' after the delimiter */
	ST_TAIL_PAD,     /* transport padding after the delimiter */
	ST_TAIL_LF,      /* saw CR ending the delimiter line */
	ST_HDR_START,    /* at the start of a header line */
	ST_HDR_LINE,     /* inside a header line */
	ST_HDR_LF,       /* saw CR ending a header line */
	ST_HDR_END_LF,   /* saw CR of the empty line ending the headers */
	ST_BODY,         /* inside a part's body */
	ST_DONE,         /* close delimiter seen; the rest is epilogue */
	ST_ERROR
};

#define MP_DELIM_MAX (4 + MP_MAX_BOUNDARY_RELATED)

struct mp_parser {
	const struct mp_callbacks *cb;
	void *ud;
	int related;                   /* multipart/related: no Content-Disposition */
	enum mp_state state;
	int err;                       /* sticky status once ST_ERROR */
	char delim[MP_DELIM_MAX + 1];  /* "\r\n--" boundary */
	size_t dlen;
	size_t match;                  /* bytes of delim matched so far */
	int in_part;                   /* a part's body is open */
	int nparts;
	size_t hdr_len;                /* bytes stored in hdr[] */
	size_t hdr_raw;                /* raw header bytes, CRLFs counted */
	struct mp_part part;
	char hdr[MP_MAX_HEADER_BYTES];
};

/* RFC 2046 bcharsnospace: DIGIT / ALPHA / "'" / "(" / ")" / "+" / "_" /
 * "," / "-" / "." / "/" / ":" / "=" / "?" */
static int
mp_is_bchar_nospace(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("'()+_,-./:=?", c) != NULL;
}

/* RFC 7230 tchar. */
static int
mp_is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
mp_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* 1 if b[0..len) is a boundary RFC 2046 allows: 1 to max (70) bchars, not
 * ending in a space. */
static int
mp_boundary_valid(const char *b, size_t len, size_t max)
{
	if (len == 0 || len > max || b[len - 1] == ' ')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (b[i] != ' ' && !mp_is_bchar_nospace((unsigned char)b[i]))
			return 0;
	return 1;
}

/* Reads a token at *pp (end at end) into out (outsz bytes, NUL-terminated)
 * and advances *pp. Returns 0, MP_ERR_SYNTAX if there is no token, or
 * MP_ERR_HEADERS if it does not fit. out may be NULL to skip the token. */
static int
mp_read_token(const char **pp, const char *end, char *out, size_t outsz)
{
	const char *p = *pp;
	size_t n = 0;

	while (p < end && mp_is_tchar((unsigned char)*p)) {
		if (out != NULL) {
			if (n + 1 >= outsz)
				return MP_ERR_HEADERS;
			out[n] = *p;
		}
		n++;
		p++;
	}
	if (n == 0)
		return MP_ERR_SYNTAX;
	if (out != NULL)
		out[n] = '\0';
	*pp = p;
	return 0;
}

/* Reads a token or a quoted-string (with backslash escapes) at *pp, like
 * mp_read_token(). The value of a quoted string may be empty. */
static int
mp_read_value(const char **pp, const char *end, char *out, size_t outsz)
{
	const char *p = *pp;
	size_t n = 0;

	if (p >= end || *p != '"')
		return mp_read_token(pp, end, out, outsz);
	p++;
	for (;;) {
		char c;

		if (p >= end)
			return MP_ERR_SYNTAX;   /* unterminated */
		c = *p++;
		if (c == '"')
			break;
		if (c == '\\') {
			if (p >= end)
				return MP_ERR_SYNTAX;
			c = *p++;
		}
		if (out != NULL) {
			if (n + 1 >= outsz)
				return MP_ERR_HEADERS;
			out[n] = c;
		}
		n++;
	}
	if (out != NULL)
		out[n] = '\0';
	*pp = p;
	return 0;
}

static const char *
mp_skip_ows(const char *p, const char *end)
{
	while (p < end && mp_is_ows(*p))
		p++;
	return p;
}

/* The parameters a caller of mp_parse_params() wants: names[i] (NULL for an
 * unused slot) is stored in bufs[i] (sizes[i] bytes) and marks seen[i]. */
#define MP_PARAM_SLOTS 2
struct mp_param_sink {
	const char *names[MP_PARAM_SLOTS];
	char *bufs[MP_PARAM_SLOTS];
	size_t sizes[MP_PARAM_SLOTS];
	int seen[MP_PARAM_SLOTS];
};

/* Walks the parameters of a header value ("; a=b; c="d"", p just after the
 * type) up to end, storing the ones sink names (case-insensitive) and
 * checking the form of the others. Returns 0, MP_ERR_SYNTAX (bad form, or a
 * wanted parameter given twice) or MP_ERR_HEADERS (a wanted value does not
 * fit). A final ';' followed by nothing is tolerated: some senders emit it. */
static int
mp_parse_params(const char *p, const char *end, struct mp_param_sink *sink)
{
	char pname[32];
	int rc;

	for (;;) {
		char *out = NULL;
		size_t outsz = 0;

		p = mp_skip_ows(p, end);
		if (p >= end)
			return 0;
		if (*p != ';')
			return MP_ERR_SYNTAX;
		p = mp_skip_ows(p + 1, end);
		if (p >= end)
			return 0;
		rc = mp_read_token(&p, end, pname, sizeof(pname));
		if (rc == MP_ERR_HEADERS) {
			/* A long parameter name is none of ours: skip it. */
			rc = mp_read_token(&p, end, NULL, 0);
			pname[0] = '\0';
		}
		if (rc != 0)
			return rc;
		for (size_t i = 0; i < MP_PARAM_SLOTS; i++) {
			if (sink->names[i] != NULL &&
			    strcasecmp(pname, sink->names[i]) == 0) {
				if (sink->seen[i])
					return MP_ERR_SYNTAX;
				sink->seen[i] = 1;
				out = sink->bufs[i];
				outsz = sink->sizes[i];
			}
		}
		p = mp_skip_ows(p, end);
		if (p >= end || *p != '=')
			return MP_ERR_SYNTAX;
		p = mp_skip_ows(p + 1, end);
		rc = mp_read_value(&p, end, out, outsz);
		if (rc != 0)
			return rc;
	}
}

/* mp_boundary() for a multipart type whose subtype is subtype. */
static int
mp_boundary_of(const char *content_type, const char *subtype, size_t max,
    char *out, size_t outsz)
{
	const char *p, *end, *slash;
	char type[32];
	char b[MP_MAX_BOUNDARY_RELATED + 2];
	struct mp_param_sink sink = {
		.names = { "boundary", NULL },
		.bufs = { b, NULL },
		.sizes = { sizeof(b), 0 },
	};
	size_t len;
	int rc;

	if (content_type == NULL || out == NULL || outsz == 0)
		return MP_ERR_SYNTAX;
	out[0] = '\0';
	p = content_type;
	end = p + strlen(p);
	p = mp_skip_ows(p, end);
	/* type "/" subtype, each a token. */
	slash = memchr(p, '/', (size_t)(end - p));
	if (slash == NULL || (size_t)(slash - p) >= sizeof(type))
		return MP_ERR_SYNTAX;
	memcpy(type, p, (size_t)(slash - p));
	type[slash - p] = '\0';
	if (strcasecmp(type, "multipart") != 0)
		return MP_ERR_SYNTAX;
	p = slash + 1;
	if (mp_read_token(&p, end, type, sizeof(type)) != 0 ||
	    strcasecmp(type, subtype) != 0)
		return MP_ERR_SYNTAX;
	b[0] = '\0';
	rc = mp_parse_params(p, end, &sink);
	if (rc != 0 || !sink.seen[0])
		return MP_ERR_SYNTAX;
	len = strlen(b);
	if (!mp_boundary_valid(b, len, max) || len + 1 > outsz)
		return MP_ERR_SYNTAX;
	memcpy(out, b, len + 1);
	return MP_OK;
}

int
mp_boundary(const char *content_type, char *out, size_t outsz)
{
	return mp_boundary_of(content_type, "form-data", MP_MAX_BOUNDARY, out,
	    outsz);
}

int
mp_boundary_related(const char *content_type, char *out, size_t outsz)
{
	return mp_boundary_of(content_type, "related", MP_MAX_BOUNDARY_RELATED,
	    out, outsz);
}

/* A parser for boundaries up to max characters. */
static struct mp_parser *
mp_new_max(const char *boundary, size_t max, const struct mp_callbacks *cb,
    void *ud)
{
	struct mp_parser *p;
	size_t blen;

	if (boundary == NULL || cb == NULL)
		return NULL;
	blen = strnlen(boundary, max + 1);
	if (!mp_boundary_valid(boundary, blen, max))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->cb = cb;
	p->ud = ud;
	memcpy(p->delim, "\r\n--", 4);
	memcpy(p->delim + 4, boundary, blen);
	p->dlen = 4 + blen;
	p->delim[p->dlen] = '\0';
	p->state = ST_PREAMBLE;
	p->match = 2;   /* the body start counts as a line start */
	return p;
}

struct mp_parser *
mp_new(const char *boundary, const struct mp_callbacks *cb, void *ud)
{
	return mp_new_max(boundary, MP_MAX_BOUNDARY, cb, ud);
}

struct mp_parser *
mp_new_related(const char *boundary, const struct mp_callbacks *cb, void *ud)
{
	struct mp_parser *p = mp_new_max(boundary, MP_MAX_BOUNDARY_RELATED, cb,
	    ud);

	if (p != NULL)
		p->related = 1;
	return p;
}

void
mp_free(struct mp_parser *p)
{
	free(p);
}

static int
mp_fail(struct mp_parser *p, int err)
{
	p->state = ST_ERROR;
	p->err = err;
	return err;
}

static int
mp_emit(struct mp_parser *p, const char *data, size_t len)
{
	if (len == 0 || p->cb->on_part_data == NULL)
		return 0;
	if (p->cb->on_part_data(p->ud, data, len) != 0)
		return mp_fail(p, MP_ERR_CALLBACK);
	return 0;
}

static int
mp_end_part(struct mp_parser *p)
{
	if (!p->in_part)
		return 0;
	p->in_part = 0;
	if (p->cb->on_part_end != NULL && p->cb->on_part_end(p->ud) != 0)
		return mp_fail(p, MP_ERR_CALLBACK);
	return 0;
}

/* Copies the header value v[0..n) into out (MP_MAX_NAME bytes). */
static int
mp_copy_value(char *out, const char *v, size_t n)
{
	if (n >= MP_MAX_NAME)
		return MP_ERR_HEADERS;
	memcpy(out, v, n);
	out[n] = '\0';
	return 0;
}

/* Interprets a Content-Disposition value into p->part. */
static int
mp_parse_disposition(struct mp_parser *p, const char *v, const char *end)
{
	char type[16];
	struct mp_param_sink sink = {
		.names = { "name", "filename" },
		.bufs = { p->part.name, p->part.filename },
		.sizes = { sizeof(p->part.name), sizeof(p->part.filename) },
	};
	int rc;

	rc = mp_read_token(&v, end, type, sizeof(type));
	if (rc != 0 || strcasecmp(type, "form-data") != 0)
		return MP_ERR_SYNTAX;
	rc = mp_parse_params(v, end, &sink);
	if (rc != 0)
		return rc;
	if (!sink.seen[0] || p->part.name[0] == '\0')
		return MP_ERR_SYNTAX;
	p->part.has_filename = sink.seen[1];
	return 0;
}

/* Parses the stored header block (lines ending in '\n') into p->part. */
static int
mp_parse_headers(struct mp_parser *p)
{
	const char *line = p->hdr, *hend = p->hdr + p->hdr_len;
	int seen_cd = 0, seen_ct = 0;
	int rc;

	memset(&p->part, 0, sizeof(p->part));
	while (line < hend) {
		const char *eol = memchr(line, '\n', (size_t)(hend - line));
		const char *colon, *v, *vend;
		size_t nlen;

		if (eol == NULL)
			return MP_ERR_SYNTAX;   /* cannot happen: lines end in \n */
		colon = memchr(line, ':', (size_t)(eol - line));
		if (colon == NULL || colon == line)
			return MP_ERR_SYNTAX;
		for (const char *c = line; c < colon; c++)
			if (!mp_is_tchar((unsigned char)*c))
				return MP_ERR_SYNTAX;
		nlen = (size_t)(colon - line);
		v = mp_skip_ows(colon + 1, eol);
		vend = eol;
		while (vend > v && mp_is_ows(vend[-1]))
			vend--;
		if (nlen == 19 && !p->related &&
		    strncasecmp(line, "content-disposition", 19) == 0) {
			if (seen_cd++)
				return MP_ERR_SYNTAX;
			rc = mp_parse_disposition(p, v, vend);
			if (rc != 0)
				return rc;
		} else if (nlen == 12 &&
		    strncasecmp(line, "content-type", 12) == 0) {
			if (seen_ct++ || vend == v)
				return MP_ERR_SYNTAX;
			rc = mp_copy_value(p->part.content_type, v,
			    (size_t)(vend - v));
			if (rc != 0)
				return rc;
		}
		line = eol + 1;
	}
	if (!seen_cd && !p->related)
		return MP_ERR_SYNTAX;
	return 0;
}

/* Stores one header byte, counting raw bytes against the bound. */
static int
mp_hdr_put(struct mp_parser *p, char c, size_t raw)
{
	p->hdr_raw += raw;
	if (p->hdr_raw > MP_MAX_HEADER_BYTES || p->hdr_len >= sizeof(p->hdr))
		return mp_fail(p, MP_ERR_HEADERS);
	p->hdr[p->hdr_len++] = c;
	return 0;
}

/* 1 for bytes a header line may not contain: CTLs but HTAB, and DEL. */
static int
mp_hdr_bad(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* Scans body or preamble bytes from data[*ip..len) for the delimiter.
 * Emits body bytes when emit is set. On a full match moves to ST_TAIL. */
static int
mp_scan(struct mp_parser *p, const char *data, size_t len, size_t *ip,
    int emit)
{
	size_t i = *ip;
	int rc = 0;

	while (i < len) {
		if (p->match > 0) {
			if (data[i] == p->delim[p->match]) {
				i++;
				if (++p->match == p->dlen) {
					p->match = 0;
					p->state = ST_TAIL;
					break;
				}
				continue;
			}
			/* The held bytes were D[0..match): data after all. */
			if (emit && (rc = mp_emit(p, p->delim, p->match)) != 0)
				goto out;
			p->match = 0;
			continue;   /* re-examine data[i] */
		}
		const char *cr = memchr(data + i, '\r', len - i);
		size_t stop = cr != NULL ? (size_t)(cr - data) : len;

		if (emit && (rc = mp_emit(p, data + i, stop - i)) != 0)
			goto out;
		i = stop;
		if (cr != NULL) {
			p->match = 1;
			i++;
		}
	}
out:
	*ip = i;
	return rc;
}

/* Advances the state machine by one byte outside the body and preamble. */
static int
mp_step(struct mp_parser *p, char c)
{
	int rc;

	switch (p->state) {
	case ST_TAIL:
		if (c == '-')
			p->state = ST_TAIL_DASH;
		else if (mp_is_ows(c))
			p->state = ST_TAIL_PAD;
		else if (c == '\r')
			p->state = ST_TAIL_LF;
		else
			return mp_fail(p, MP_ERR_SYNTAX);
		return 0;
	case ST_TAIL_DASH:
		if (c != '-')
			return mp_fail(p, MP_ERR_SYNTAX);
		if ((rc = mp_end_part(p)) != 0)
			return rc;
		p->state = ST_DONE;
		return 0;
	case ST_TAIL_PAD:
		if (c == '\r')
			p->state = ST_TAIL_LF;
		else if (!mp_is_ows(c))
			return mp_fail(p, MP_ERR_SYNTAX);
		return 0;
	case ST_TAIL_LF:
		if (c != '\n')
			return mp_fail(p, MP_ERR_SYNTAX);
		if ((rc = mp_end_part(p)) != 0)
			return rc;
		if (p->nparts >= MP_MAX_PARTS)
			return mp_fail(p, MP_ERR_PARTS);
		p->nparts++;
		p->hdr_len = 0;
		p->hdr_raw = 0;
		p->state = ST_HDR_START;
		return 0;
	case ST_HDR_START:
		if (c == '\r') {
			p->state = ST_HDR_END_LF;
			return 0;
		}
		/* Obsolete line folding is refused, as is an empty name. */
		if (mp_is_ows(c) || c == ':' || mp_hdr_bad((unsigned char)c))
			return mp_fail(p, MP_ERR_SYNTAX);
		p->state = ST_HDR_LINE;
		return mp_hdr_put(p, c, 1);
	case ST_HDR_LINE:
		if (c == '\r') {
			p->state = ST_HDR_LF;
			return 0;
		}
		if (mp_hdr_bad((unsigned char)c))
			return mp_fail(p, MP_ERR_SYNTAX);
		return mp_hdr_put(p, c, 1);
	case ST_HDR_LF:
		if (c != '\n')
			return mp_fail(p, MP_ERR_SYNTAX);
		p->state = ST_HDR_START;
		return mp_hdr_put(p, '\n', 2);
	case ST_HDR_END_LF:
		if (c != '\n')
			return mp_fail(p, MP_ERR_SYNTAX);
		if ((rc = mp_parse_headers(p)) != 0)
			return mp_fail(p, rc);
		if (p->cb->on_part_begin != NULL &&
		    p->cb->on_part_begin(p->ud, &p->part) != 0)
			return mp_fail(p, MP_ERR_CALLBACK);
		p->in_part = 1;
		p->match = 0;
		p->state = ST_BODY;
		return 0;
	case ST_PREAMBLE:
	case ST_BODY:
	case ST_DONE:
	case ST_ERROR:
	default:
		break;
	}
	return mp_fail(p, MP_ERR_SYNTAX);   /* not reached */
}

int
mp_feed(struct mp_parser *p, const char *data, size_t len)
{
	size_t i = 0;
	int rc;

	if (p == NULL)
		return MP_ERR_SYNTAX;
	if (p->state == ST_ERROR)
		return p->err;
	if (len > 0 && data == NULL)
		return mp_fail(p, MP_ERR_SYNTAX);
	while (i < len && p->state != ST_DONE) {
		switch (p->state) {
		case ST_PREAMBLE:
		case ST_BODY:
			rc = mp_scan(p, data, len, &i, p->state == ST_BODY);
			break;
		default:
			rc = mp_step(p, data[i++]);
			break;
		}
		if (rc != 0)
			return rc;
	}
	return MP_OK;
}

int
mp_finish(struct mp_parser *p)
{
	if (p == NULL)
		return MP_ERR_SYNTAX;
	if (p->state == ST_ERROR)
		return p->err;
	if (p->state != ST_DONE)
		return mp_fail(p, MP_ERR_TRUNCATED);
	return MP_OK;
}
