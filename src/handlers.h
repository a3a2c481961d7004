/* handlers.h — the endpoints of docs/api.md and what they share.
 *
 * A handler answers its request itself and returns 0, or returns a negative
 * pi_err without having answered, and the worker answers with the matching
 * documented error (http_error_for).
 *
 * The handlers live in one file per job, all behind this header:
 * handlers.c (what every endpoint shares: the image resource, audit rows,
 * signed URLs, /health), handlers_auth.c (who is asking and may they:
 * authentication, CSRF, signed URLs redeemed, loading an image or case with
 * its access check), handlers_upload.c (POST /upload, PUT /:id/upload,
 * POST /:id/complete), handlers_upload_url.c (POST /upload-url and its JSON
 * body) and handlers_read.c (reads, deletes and the bytes of objects). The
 * turning of an original into stored objects, which knows no HTTP, is
 * ingest.c. Functions shared between these files carry the prefix
 * handlers_; the endpoints themselves are h_*.
 */
#ifndef POLAIMG_HANDLERS_H
#define POLAIMG_HANDLERS_H

#include <stdint.h>

#include "acl.h"
#include "auditbuf.h"
#include "auth.h"
#include "db.h"
#include "http.h"
#include "ingest.h"

struct authcache;
struct config;
struct db;
struct listcache;
struct storage;

/* What a worker keeps for its whole life. */
struct worker_ctx {
	const struct config *cfg;
	struct db *db;
	struct storage *storage;
	struct auth_config auth;
	struct arena *arena;
	struct listcache *lists;     /* case-list answers (listcache.h) */
	struct authcache *rows;      /* users, cases, images (authcache.h); NULL: off */
	struct tokencache *tokens;   /* verified tokens (authcache.h) */
	unsigned long rows_epoch;    /* db_copies_valid() epoch of rows */
};

/* The most path parameters a route has (the DICOMweb instance URLs'
 * :study, :series, :instance). */
#define ROUTER_MAX_PARAMS 3

/* One request. */
struct ctx {
	struct worker_ctx *w;
	struct http_request *req;
	const char *id;              /* the first path parameter (:id), raw */
	const char *seg[ROUTER_MAX_PARAMS]; /* every path parameter, raw; NULL
	                              * past the route's last */
	struct principal who;        /* set when the route needs authentication */
	struct prefetch *pf;         /* what authentication read with the user */
};

/* What a route's authentication may read in the same statement as the
 * user: the image or the case its :id names. */
enum prefetch_kind { PF_NONE, PF_IMAGE, PF_CASE };

/* What handlers_authenticate() read with the user (c->pf). */
struct prefetch {
	enum prefetch_kind kind;
	char id[37];               /* canonical :id */
	int found;
	struct image img;          /* PF_IMAGE */
	struct db_case kase;       /* PF_CASE, with the case's list version */
};

/* The path every resource URL of the API starts with. */
#define API_PREFIX "/api/v1/images/"

/* The values of eyeSide, and of ?variant= (indexed by enum
 * ingest_variant); NULL-terminated for val_enum(). */
extern const char *const handlers_eye_sides[5];
extern const char *const handlers_variants[4];

/* A handler returns 0 once it has answered, PI_ERR_ANSWERED when a helper
 * refused and answered, or a pi_err for the worker to answer with
 * (http_error_for). */
typedef int (*handler_fn)(struct ctx *c);

/* The endpoints, by the file that holds them. */
int h_health(struct ctx *c);           /* handlers.c */
int h_upload(struct ctx *c);           /* handlers_upload.c */
int h_put_upload(struct ctx *c);
int h_complete(struct ctx *c);
int h_upload_url(struct ctx *c);       /* handlers_upload_url.c */
int h_get(struct ctx *c);              /* handlers_read.c */
int h_list(struct ctx *c);
int h_download_url(struct ctx *c);
int h_file(struct ctx *c);
int h_proxy(struct ctx *c);
int h_delete(struct ctx *c);
int h_qido_studies(struct ctx *c);     /* handlers_dicomweb.c */
int h_qido_series(struct ctx *c);
int h_qido_instances(struct ctx *c);
int h_wado_study(struct ctx *c);
int h_wado_series(struct ctx *c);
int h_wado_instance(struct ctx *c);
int h_wado_metadata(struct ctx *c);
int h_wado_rendered(struct ctx *c);
int h_stow(struct ctx *c);

/* --- handlers_upload_url.c --- */

/* The fields of a POST /upload-url body besides the image's own. */
struct upload_url_fields {
	const char *file_name, *content_type;   /* point into the body */
	long long file_size;                    /* -1 when absent */
	long long expires_in;  /* absent: 900 bounded by max_ttl
	                        * (handlers_url_ttl) */
	int has_expires;
};

/* Extracts and validates the members of an upload-url body (a JSON object)
 * into f and img (caseId, eyeSide, imageType, capturedAt, description; img
 * is zeroed first, its description points into body). max_ttl bounds
 * expiresIn. Returns NULL when every field is valid, else the
 * VALIDATION_FAILED details array (the caller owns it). Pure: no I/O. */
json_object *handlers_upload_url_fields(json_object *body, long long max_ttl,
    struct upload_url_fields *f, struct image *img);

/* --- handlers.c: what every endpoint shares --- */

/* The fields of an image both upload ways take from the client (NULL:
 * absent). */
struct handlers_image_fields {
	const char *case_id_raw, *eye_side, *image_type, *description, *captured_at;
	int has_case_id;
};

/* Validates f into img (caseId, eyeSide, imageType, capturedAt,
 * description; description points into f's string); adds a detail to
 * details for every bad one and returns details (NULL: all valid). Pure. */
json_object *handlers_image_fields(const struct handlers_image_fields *f,
    struct image *img, json_object *details);
/* Fills the parts of a new image that do not come from the client: a fresh
 * id, the storage key, the back end's name, the uploader (c->who), unknown
 * sizes. */
void handlers_image_new(struct ctx *c, struct image *img);

/* The image resource of docs/api.md, or NULL when it cannot allocate. */
json_object *handlers_image_json(struct arena *a, const struct image *img);
/* {"data": data[, "message": message]}; takes data (freed on failure);
 * NULL when it cannot allocate. */
json_object *handlers_envelope(json_object *data, const char *message);
/* t (UTC seconds) as RFC 3339, from arena a (NULL when it cannot allocate). */
const char *handlers_fmt_time(struct arena *a, int64_t t);

/* Writes (or gathers: db_audit_read) an audit row of this request by
 * c->who with outcome "ok", "denied" or "error". */
void handlers_audit(struct ctx *c, const char *action, const char *image_id,
    const char *case_id, const char *variant, const char *outcome);
/* The audit row of this request with outcome "ok", for a write's
 * transaction; its strings are the caller's. */
struct audit handlers_audit_for(struct ctx *c, const char *action,
    const char *image_id, const char *case_id, const char *variant);

/* The lifetime in seconds of a signed URL a client asks for: *asked (NULL
 * when it named none) if it is from 1 to max_ttl, else -1; when it named
 * none, dflt bounded by max_ttl. Pure. */
long long handlers_url_ttl(const long long *asked, long long dflt,
    long long max_ttl);

/* A URL through which the client may, until *expires (ttl seconds from
 * now), PUT the original of img (upload 1) or GET its object v (upload 0):
 * the back end's own presigned URL when it makes them (st->ops->presign:
 * S3, Supabase), else one of polaimg's signed URLs (urltoken.c) naming
 * c->who as its issuer, under public_base_url. A store whose URL lives less
 * long (a self-hosted Supabase picks an upload URL's lifetime itself)
 * lowers *expires to its own. Returns 0 with *url from the request arena,
 * or PI_ERR_STORAGE (the back end could not sign), PI_ERR_INTERNAL (nor
 * could urltoken) or PI_ERR_NOMEM. */
int handlers_signed_url(struct ctx *c, const struct image *img, int upload,
    enum ingest_variant v, long long ttl, int64_t *expires, const char **url);

/* handlers_upload.c, for every route that ingests (STOW-RS too): */
/* The per-user upload limit, at the start of each handler that decodes an
 * upload (after authentication): max_uploads_per_user of one user's
 * uploads may be in flight on this host (counted in the master's
 * scoreboard, master_ingest_claim; the claim ends after the request).
 * Returns 0 to go on, or PI_ERR_ANSWERED after answering 429
 * TOO_MANY_UPLOADS with Retry-After. */
int handlers_ingest_admit(struct ctx *c, const char *user);

struct mp_parser;
/* handlers_upload.c: feeds the request body to mp, 64 KiB at a time, and
 * finishes it; *mrc is the parser's answer (MP_OK, or the MP_ERR_ that
 * stopped it, a callback's refusal included). Returns 0, PI_ERR_NOMEM or
 * PI_ERR_IO (the body could not be read). */
int handlers_feed_multipart(struct ctx *c, struct mp_parser *mp, int *mrc);
/* Records a ready image (row + audit row action, one transaction) after
 * ingest() stored its objects; on failure removes the objects. 0,
 * PI_ERR_NOT_FOUND (the case went), PI_ERR_CONFLICT (its SOP Instance UID
 * was stored meanwhile), PI_ERR_DB. */
int handlers_record_ready(struct ctx *c, struct image *img, const char *action);

/* handlers_read.c: sends object v of img as /proxy does (304, offload,
 * Range) and writes the audit row of action ("ok" or "error"). Returns 0,
 * or a pi_err before anything was written. */
int handlers_serve(struct ctx *c, const struct image *img,
    enum ingest_variant v, const char *action);

/* --- handlers_auth.c: who is asking, and may they --- */

/* Authenticates the request (bearer token or cookie, then the users table)
 * into c->who. An unsafe request (not GET, HEAD, OPTIONS) authenticated by
 * the cookie must come from an allowed origin (allowed_origins), else 403
 * CSRF_REJECTED. Returns 0, or answers 401/403/503 itself and returns
 * PI_ERR_ANSWERED. With PF_IMAGE or PF_CASE and a UUID in :id, the image or
 * case is read in the same statement as the user and kept in c->pf for the
 * handler (one round trip to PostgreSQL instead of two). */
int handlers_authenticate(struct ctx *c, enum prefetch_kind prefetch);

/* A signed URL of this service (download link, local upload URL) being
 * redeemed: the user it was issued to is checked again now, as a bearer
 * token would be on every request — the row read as handlers_authenticate()
 * reads it (copies dropped on a change, auth_cache_ttl at most), the role
 * from that row. Returns 0 with c->who set to the issuer; PI_ERR_ANSWERED
 * after answering 401 when the issuer is no longer an active user
 * (removed, deactivated, no known role); PI_ERR_FORBIDDEN after writing the
 * denied audit row (audit_action, variant) when the issuer may no longer do
 * action to the image's case (a patient whose case went to another
 * patient); or PI_ERR_DB. */
int handlers_redeem_check(struct ctx *c, const char *issuer,
    enum acl_action action, const struct image *img, const char *audit_action,
    const char *variant);

/* Validates the :id segment. Answers 400 and returns PI_ERR_ANSWERED when
 * it is not a UUID; else writes the canonical form to out and returns 0. */
int handlers_path_id(struct ctx *c, char out[37]);

/* Loads image id (from c->pf when authentication read it) and checks that
 * c->who may do action to it. Returns 0 with *img (its strings in the
 * request arena), or a pi_err to answer with: PI_ERR_NOT_FOUND, PI_ERR_DB,
 * PI_ERR_FORBIDDEN after writing the denied audit row (audit_action). */
int handlers_load_image(struct ctx *c, const char *id, enum acl_action action,
    const char *audit_action, struct image *img);

/* The same for case case_id (its patient), into *kase (may be NULL; its
 * strings in the request arena, version -1 unless prefetched). */
int handlers_check_case(struct ctx *c, const char *case_id,
    enum acl_action action, const char *audit_action, struct db_case *kase);

/* handlers_dicom.c: the checks of a DICOM upload at path before it is
 * stored (header limits, laterality, capture time, duplicate instance,
 * wrong patient); sets img's eyeSide and capturedAt from the file where
 * the client gave none (eye_given: the form had eyeSide). *force: in, the
 * form asked to store a PatientID mismatch anyway; out, 1 when it was a
 * mismatch so stored (to be audited). Returns 0 to go on,
 * PI_ERR_ANSWERED after answering (409, 415), or a pi_err. */
int handlers_dicom_check(struct ctx *c, struct image *img, const char *path,
    int eye_given, int *force);
/* A refusal of handlers_dicom_verdict(). */
struct handlers_dicom_refusal {
	int status;             /* the API's: 409, 415 */
	const char *code;       /* its error code (static) */
	unsigned reason;        /* the DICOM failure reason (STOW-RS) */
	char message[200];
	struct db_sop_holder existing; /* DUPLICATE_INSTANCE: the image
	                                * holding it (id "" otherwise) */
	char sop_class[65], sop_uid[65]; /* the file's, "" until read */
};
/* handlers_dicom_check() without answering: 0 to go on, PI_ERR_CONFLICT
 * with *r filled when the file is refused (415, 409), or a pi_err
 * (PI_ERR_UNPROCESSABLE for a header over the limits or malformed,
 * PI_ERR_DB). r->sop_class and r->sop_uid are set whenever the header was
 * read. */
int handlers_dicom_verdict(struct ctx *c, struct image *img, const char *path,
    int eye_given, int *force, struct handlers_dicom_refusal *r);
/* Answers 409 DUPLICATE_INSTANCE for img's SOP Instance UID after an insert
 * lost the race for it: PI_ERR_ANSWERED, or a pi_err. */
int handlers_dicom_duplicate(struct ctx *c, const struct image *img);

#endif
