/* handlers_dicomweb.c — DICOMweb (PS3.18): QIDO-RS searches and WADO-RS
 * retrievals of the DICOM originals polaimg holds.
 *
 * A PACS, an Orthanc or a viewer speaks DICOMweb, not polaimg's API; these
 * routes give it the same images behind the same authentication, access
 * table and audit trail. Everything under /api/v1/images/dicom-web/ is a
 * route of router.c like any other, so nginx and Apache route it with the
 * rest and nothing is reachable without a bearer token.
 *
 * Searches are answered from the columns sql/006_dicom.sql and 007 keep
 * (no original is opened): StudyInstanceUID, SeriesInstanceUID,
 * SOPInstanceUID, SOPClassUID, Modality, the frame count and size. Two attributes are
 * polaimg's own reading: PatientID is the hospital number of the case's
 * patient (polaimg_case_hn; POST /upload refuses a file whose PatientID
 * differs, unless forced), and StudyDate is the local_timezone date of the
 * image's capturedAt (a DICOM file's acquisition time). A patient sees only
 * the images of their own cases; doctors and admins all (docs/api.md,
 * "Access rules"). One search reads at most DW_MAX_ROWS instances.
 *
 * Retrievals send the original's bytes exactly as stored, whatever
 * transfer syntax the client asks for (polaimg never transcodes), as
 * multipart/related; type="application/dicom" streamed through the worker
 * (a multipart body cannot be handed to nginx's X-Accel-Redirect); the
 * rendered view is the display copy (JPEG), served like /proxy.
 *
 * Audit: a search writes one "qido" row per case it answers with (variant
 * the level: studies, series, instances), or one without a case when it
 * found nothing; a retrieval one "wado" row per instance sent (variant
 * original), "wado_metadata" and "wado_rendered" (variant display) one each;
 * a patient refused an instance a "denied" row, as the API does.
 */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "common.h"
#include "config.h"
#include "imaging.h"
#include "log.h"
#include "multipart.h"
#include "storage.h"
#include "validate.h"

#define DW_MAX_ROWS 5000          /* instances one search or retrieval reads */
#define DW_DEFAULT_LIMIT 1000     /* results a search answers without ?limit */
#define DW_BOUNDARY "polaimg-dicomweb-7b1e3c"

/* The level of a search. */
enum dw_level { DW_STUDIES, DW_SERIES, DW_INSTANCES };
static const char *const dw_level_names[] = { "studies", "series", "instances" };

/* 1 when s is a DICOM UID: 1..64 characters, digits and dots. Pure. */
static bool
dw_uid_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; s[n] != '\0'; n++)
		if (n >= 64 || !((s[n] >= '0' && s[n] <= '9') || s[n] == '.'))
			return false;
	return true;
}

/* The value of query key by keyword or by tag (hex), or NULL. */
static const char *
dw_key(struct ctx *c, const char *keyword, const char *tag)
{
	const char *v = http_query(c->req, keyword);

	return v != NULL ? v : http_query(c->req, tag);
}

/* Local midnight (local_timezone, the process's TZ) starting date d
 * (YYYYMMDD), plus days; -1 when d is not such a date. */
static int64_t
dw_day(const char *d, size_t len, int days)
{
	struct tm tm;
	int y, m, dd;

	if (len != 8 || pi_digits(d, 4, &y) != 0 ||
	    pi_digits(d + 4, 2, &m) != 0 || pi_digits(d + 6, 2, &dd) != 0 ||
	    y < 1970 || m < 1 || m > 12 || dd < 1 || dd > 31)
		return -1;
	tm = pi_tm(y, m, dd + days, 0, 0, 0);
	return (int64_t)mktime(&tm);
}

/* Parses a StudyDate match: "YYYYMMDD", "YYYYMMDD-YYYYMMDD", "-YYYYMMDD"
 * or "YYYYMMDD-" into [from, to). false when malformed. */
static bool
dw_date_range(const char *v, int64_t *from, int64_t *to)
{
	const char *dash = strchr(v, '-');

	*from = *to = -1;
	if (dash == NULL) {
		*from = dw_day(v, strlen(v), 0);
		*to = dw_day(v, strlen(v), 1);
		return *from >= 0 && *to >= 0;
	}
	if (dash == v && dash[1] == '\0')
		return false;
	if (dash > v && (*from = dw_day(v, (size_t)(dash - v), 0)) < 0)
		return false;
	if (dash[1] != '\0' && (*to = dw_day(dash + 1, strlen(dash + 1), 1)) < 0)
		return false;
	return true;
}

/* The local date of t as DA (YYYYMMDD) into buf[9]. */
static void
dw_da(int64_t t, char buf[9])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, 9, "%Y%m%d", &tm) != 8)
		buf[0] = '\0';
}

/* Adds the DICOM JSON attribute tag {"vr": vr, "Value": [v]} to o; with v
 * NULL or empty, {"vr": vr} (present, no value). */
static void
dw_attr_str(json_object *o, const char *tag, const char *vr, const char *v)
{
	json_object *a = json_object_new_object(), *arr;

	if (a == NULL)
		return;
	json_object_object_add(a, "vr", json_object_new_string(vr));
	if (v != NULL && v[0] != '\0' && (arr = json_object_new_array()) != NULL) {
		json_object_array_add(arr, json_object_new_string(v));
		json_object_object_add(a, "Value", arr);
	}
	json_object_object_add(o, tag, a);
}

/* The same with a number (IS, US). */
static void
dw_attr_int(json_object *o, const char *tag, const char *vr, long long v)
{
	json_object *a = json_object_new_object(), *arr = json_object_new_array();

	if (a == NULL || arr == NULL) {
		json_object_put(a);
		json_object_put(arr);
		return;
	}
	json_object_object_add(a, "vr", json_object_new_string(vr));
	json_object_array_add(arr, json_object_new_int64(v));
	json_object_object_add(a, "Value", arr);
	json_object_object_add(o, tag, a);
}

/* RetrieveURL (0008,1190): the study, its series b (NULL: none), its
 * instance d (NULL: none), under public_base_url. */
static void
dw_retrieve_url(struct ctx *c, json_object *o, const char *a, const char *b,
    const char *d)
{
	char path[400], url[700];
	const char *base = c->w->cfg->public_base_url;
	size_t bl = strlen(base);

	(void)snprintf(path, sizeof(path), "/studies/%s%s%s%s%s", a,
	    b != NULL ? "/series/" : "", b != NULL ? b : "",
	    d != NULL ? "/instances/" : "", d != NULL ? d : "");
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	(void)snprintf(url, sizeof(url), "%.*s" API_PREFIX "dicom-web%s",
	    (int)bl, base, path);
	dw_attr_str(o, "00081190", "UR", url);
}

/* Answers a DICOM JSON value (array or object) with status. Takes arr. */
static int
dw_json_status(struct ctx *c, int status, json_object *arr)
{
	const char *body;
	size_t len;
	int rc;

	if (arr == NULL)
		return PI_ERR_NOMEM;
	body = json_object_to_json_string_length(arr, HTTP_JSON_FLAGS, &len);
	if (body == NULL) {
		json_object_put(arr);
		return PI_ERR_NOMEM;
	}
	if ((rc = http_begin(c->req, status)) == 0 &&
	    (rc = http_header(c->req, "Content-Type", "application/dicom+json")) == 0 &&
	    (rc = http_headerf(c->req, "Content-Length", "%zu", len)) == 0 &&
	    (rc = http_header(c->req, "Cache-Control", "no-store")) == 0 &&
	    (rc = http_header(c->req, "X-Content-Type-Options", "nosniff")) == 0 &&
	    (rc = http_end_headers(c->req)) == 0 && !c->req->is_head)
		rc = http_write(c->req, body, len);
	json_object_put(arr);
	if (rc != 0)
		log_error("dicomweb: the answer broke off: %s", pi_strerror(rc));
	return 0;
}

/* dw_json_status() with 200. */
static int
dw_json(struct ctx *c, json_object *arr)
{
	return dw_json_status(c, 200, arr);
}

/* The path parameters :study, :series, :instance as far as the route has
 * them; 400 (answered, PI_ERR_ANSWERED) when one is not a UID. */
static int
dw_path_uids(struct ctx *c, int n)
{
	static const char *const names[] = { "study", "series", "instance" };
	json_object *details = NULL;

	for (int i = 0; i < n; i++)
		if (!dw_uid_ok(c->seg[i]))
			details = http_detail_add(details, names[i],
			    "must be a DICOM UID (digits and dots, at most 64)");
	if (details != NULL) {
		(void)http_validation_error(c->req, details);
		return PI_ERR_ANSWERED;
	}
	return 0;
}

/* The query of c->who: a patient's only their own cases. */
static void
dw_query_init(struct ctx *c, struct db_dicom_query *q)
{
	memset(q, 0, sizeof(*q));
	q->from = q->to = -1;
	q->limit = DW_MAX_ROWS;
	q->patient = c->who.role == ROLE_PATIENT ? c->who.user_id : NULL;
}

/* One "qido" audit row per distinct case of rows (n), or one without a
 * case for none. */
static void
dw_audit_cases(struct ctx *c, const struct db_dicom_row *rows, size_t n,
    const char *action, const char *variant)
{
	size_t i, j;

	if (n == 0 || rows == NULL) {
		handlers_audit(c, action, NULL, NULL, variant, "ok");
		return;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++)
			if (strcmp(rows[j].img.case_id, rows[i].img.case_id) == 0)
				break;
		if (j == i)
			handlers_audit(c, action, NULL, rows[i].img.case_id, variant,
			    "ok");
	}
}

/* GET …/studies, …/studies/{study}/series, …/series/{series}/instances. */
static int
dw_search(struct ctx *c, enum dw_level level)
{
	struct db_dicom_query q;
	struct db_dicom_row *rows;
	json_object *details = NULL, *arr, *o = NULL;
	const char *v;
	long long limit = DW_DEFAULT_LIMIT, offset = 0, count = 0;
	size_t n, i;
	int rc;

	if ((rc = dw_path_uids(c, level == DW_STUDIES ? 0 :
	    level == DW_SERIES ? 1 : 2)) != 0)
		return rc;
	dw_query_init(c, &q);
	if (level >= DW_SERIES)
		q.study_uid = c->seg[0];
	if (level == DW_INSTANCES)
		q.series_uid = c->seg[1];
	if ((v = dw_key(c, "StudyInstanceUID", "0020000D")) != NULL) {
		if (!dw_uid_ok(v))
			details = http_detail_add(details, "StudyInstanceUID",
			    "must be a DICOM UID");
		else if (q.study_uid == NULL)
			q.study_uid = v;
		else if (strcmp(v, q.study_uid) != 0)
			q.limit = 0;    /* both cannot match */
	}
	if ((v = dw_key(c, "SeriesInstanceUID", "0020000E")) != NULL) {
		if (!dw_uid_ok(v))
			details = http_detail_add(details, "SeriesInstanceUID",
			    "must be a DICOM UID");
		else if (q.series_uid == NULL)
			q.series_uid = v;
		else if (strcmp(v, q.series_uid) != 0)
			q.limit = 0;
	}
	if ((v = dw_key(c, "SOPInstanceUID", "00080018")) != NULL) {
		if (!dw_uid_ok(v))
			details = http_detail_add(details, "SOPInstanceUID",
			    "must be a DICOM UID");
		else
			q.sop_uid = v;
	}
	if ((v = dw_key(c, "Modality", "00080060")) != NULL ||
	    (v = dw_key(c, "ModalitiesInStudy", "00080061")) != NULL) {
		if (v[0] == '\0' || strlen(v) > 16)
			details = http_detail_add(details, "Modality",
			    "must be a modality code (1 to 16 characters)");
		else
			q.modality = v;
	}
	if ((v = dw_key(c, "PatientID", "00100020")) != NULL) {
		if (v[0] == '\0' || strlen(v) > 64)
			details = http_detail_add(details, "PatientID",
			    "must be 1 to 64 characters");
		else
			q.hn = v;
	}
	if ((v = dw_key(c, "StudyDate", "00080020")) != NULL &&
	    !dw_date_range(v, &q.from, &q.to))
		details = http_detail_add(details, "StudyDate",
		    "must be YYYYMMDD or a range YYYYMMDD-YYYYMMDD");
	if ((v = http_query(c->req, "limit")) != NULL &&
	    !val_int(v, 1, DW_MAX_ROWS, &limit))
		details = http_detail_add(details, "limit", "must be 1 to 5000");
	if ((v = http_query(c->req, "offset")) != NULL &&
	    !val_int(v, 0, DW_MAX_ROWS, &offset))
		details = http_detail_add(details, "offset", "must be 0 to 5000");
	if (c->req->query_invalid)
		details = http_detail_add(details, "query", "malformed query string");
	if (details != NULL)
		return http_validation_error(c->req, details);
	rows = NULL;
	n = 0;
	if (q.limit > 0 && (rc = db_dicom_find(c->w->db, c->req->arena, &q,
	    &rows, &n)) != 0)
		return rc;
	if ((arr = json_object_new_array()) == NULL)
		return PI_ERR_NOMEM;
	for (i = 0; rows != NULL && i < n; i++) {
		const struct image *img = &rows[i].img;
		const struct image *prev = i > 0 ? &rows[i - 1].img : NULL;
		int fresh = prev == NULL ||
		    strcmp(prev->study_uid, img->study_uid) != 0 ||
		    (level != DW_STUDIES &&
		    strcmp(prev->series_uid, img->series_uid) != 0) ||
		    level == DW_INSTANCES;
		char da[9];

		if (!fresh) {
			json_object *a;
			long long k;

			/* One more instance (and maybe series, modality) of o. */
			if (o == NULL)
				continue;
			if (level == DW_STUDIES) {
				if (strcmp(prev->series_uid, img->series_uid) != 0 &&
				    json_object_object_get_ex(o, "00201206", &a)) {
					k = json_object_get_int64(json_object_array_get_idx(
					    json_object_object_get(a, "Value"), 0));
					json_object_array_put_idx(json_object_object_get(a,
					    "Value"), 0, json_object_new_int64(k + 1));
				}
				if (img->modality[0] != '\0' &&
				    json_object_object_get_ex(o, "00080061", &a)) {
					json_object *vals = json_object_object_get(a, "Value");
					size_t m, found = 0;

					if (vals == NULL) {
						vals = json_object_new_array();
						json_object_object_add(a, "Value", vals);
					}
					m = vals != NULL ? json_object_array_length(vals) : 0;
					for (size_t j = 0; j < m; j++)
						if (strcmp(json_object_get_string(
						    json_object_array_get_idx(vals, j)),
						    img->modality) == 0)
							found = 1;
					if (!found && vals != NULL)
						json_object_array_add(vals,
						    json_object_new_string(img->modality));
				}
			}
			if (json_object_object_get_ex(o, level == DW_STUDIES ?
			    "00201208" : "00201209", &a)) {
				k = json_object_get_int64(json_object_array_get_idx(
				    json_object_object_get(a, "Value"), 0));
				json_object_array_put_idx(json_object_object_get(a,
				    "Value"), 0, json_object_new_int64(k + 1));
			}
			continue;
		}
		o = NULL;
		if (count++ < offset || (long long)json_object_array_length(arr) >= limit)
			continue;
		if ((o = json_object_new_object()) == NULL)
			break;
		json_object_array_add(arr, o);
		dw_da(img->captured_at, da);
		dw_attr_str(o, "00080020", "DA", da);
		dw_attr_str(o, "00100020", "LO", rows[i].hn);
		dw_attr_str(o, "0020000D", "UI", img->study_uid);
		if (level == DW_STUDIES) {
			dw_attr_str(o, "00080061", "CS", img->modality);
			dw_attr_int(o, "00201206", "IS", 1);
			dw_attr_int(o, "00201208", "IS", 1);
			dw_retrieve_url(c, o, img->study_uid, NULL, NULL);
			continue;
		}
		dw_attr_str(o, "00080060", "CS", img->modality);
		dw_attr_str(o, "0020000E", "UI", img->series_uid);
		if (level == DW_SERIES) {
			dw_attr_int(o, "00201209", "IS", 1);
			dw_retrieve_url(c, o, img->study_uid, img->series_uid,
			    NULL);
			continue;
		}
		dw_attr_str(o, "00080016", "UI", img->sop_class);
		dw_attr_str(o, "00080018", "UI", img->sop_uid);
		if (img->frames > 0)
			dw_attr_int(o, "00280008", "IS", img->frames);
		dw_retrieve_url(c, o, img->study_uid, img->series_uid,
		    img->sop_uid);
	}
	dw_audit_cases(c, rows, n, "qido", dw_level_names[level]);
	return dw_json(c, arr);
}

int
h_qido_studies(struct ctx *c)
{
	return dw_search(c, DW_STUDIES);
}

int
h_qido_series(struct ctx *c)
{
	return dw_search(c, DW_SERIES);
}

int
h_qido_instances(struct ctx *c)
{
	return dw_search(c, DW_INSTANCES);
}

/* The instance the path names, checked against the access table: 0 with
 * *img; PI_ERR_NOT_FOUND, PI_ERR_FORBIDDEN (denied row written, action),
 * PI_ERR_ANSWERED (a bad UID, answered), PI_ERR_DB. */
static int
dw_instance(struct ctx *c, const char *action, struct image *img)
{
	struct db_dicom_query q;
	struct db_dicom_row *rows;
	size_t n;
	int rc;

	if ((rc = dw_path_uids(c, 3)) != 0)
		return rc;
	memset(&q, 0, sizeof(q));
	q.from = q.to = -1;
	q.limit = 1;
	q.study_uid = c->seg[0];
	q.series_uid = c->seg[1];
	q.sop_uid = c->seg[2];
	if ((rc = db_dicom_find(c->w->db, c->req->arena, &q, &rows, &n)) != 0)
		return rc;
	if (n == 0 || rows == NULL)
		return PI_ERR_NOT_FOUND;
	/* The access table and its denied row, as for /:id. */
	return handlers_load_image(c, rows[0].img.id, ACL_VIEW, action, img);
}

/* The state of a multipart answer streamed from storage. */
struct dw_stream {
	struct ctx *c;
	int failed;
};

static int
dw_stream_cb(void *ud, const char *buf, size_t n)
{
	struct dw_stream *s = ud;

	if (http_write(s->c->req, buf, n) != 0) {
		s->failed = 1;
		return -1;
	}
	return 0;
}

/* Sends imgs (n, every one ready and allowed) as one multipart/related;
 * type="application/dicom" answer, the originals' bytes as stored, and one
 * "wado" audit row each. */
static int
dw_send(struct ctx *c, const struct image *imgs, size_t n)
{
	static const char part_head[] = "--" DW_BOUNDARY "\r\n"
	    "Content-Type: application/dicom\r\n"
	    "Content-Length: %lld\r\n\r\n";
	static const char tail[] = "--" DW_BOUNDARY "--\r\n";
	char head[160];
	long long total = (long long)sizeof(tail) - 1;
	struct dw_stream s = { .c = c };
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		if (imgs[i].file_size < 0)
			return PI_ERR_NOT_FOUND;
		total += snprintf(head, sizeof(head), part_head, imgs[i].file_size) +
		    imgs[i].file_size + 2;
	}
	if ((rc = http_begin(c->req, 200)) != 0 ||
	    (rc = http_headerf(c->req, "Content-Type", "multipart/related; "
	    "type=\"application/dicom\"; boundary=%s", DW_BOUNDARY)) != 0 ||
	    (rc = http_headerf(c->req, "Content-Length", "%lld", total)) != 0 ||
	    (rc = http_header(c->req, "Cache-Control", "no-store")) != 0 ||
	    (rc = http_header(c->req, "X-Content-Type-Options", "nosniff")) != 0 ||
	    (rc = http_end_headers(c->req)) != 0 || c->req->is_head)
		goto audit;
	for (i = 0; i < n && !s.failed; i++) {
		const char *key = ingest_object_key(c->req->arena, &imgs[i],
		    V_ORIGINAL);
		int len = snprintf(head, sizeof(head), part_head, imgs[i].file_size);

		if (key == NULL || http_write(c->req, head, (size_t)len) != 0)
			break;
		if (imgs[i].file_size > 0 && c->w->storage->ops->stream(
		    c->w->storage, key, 0, imgs[i].file_size - 1, dw_stream_cb,
		    &s) != 0)
			break;
		if (http_write(c->req, "\r\n", 2) != 0)
			break;
	}
	if (i == n)
		(void)http_write(c->req, tail, sizeof(tail) - 1);
	else
		log_error("dicomweb: retrieval broke off after %zu of %zu "
		    "instances", i, n);
	rc = i == n ? 0 : PI_ERR_STORAGE;
audit:
	for (i = 0; i < n; i++)
		handlers_audit(c, "wado", imgs[i].id, imgs[i].case_id, "original",
		    rc == 0 ? "ok" : "error");
	return 0;
}

int
h_wado_instance(struct ctx *c)
{
	struct image img;
	int rc = dw_instance(c, "wado", &img);

	return rc != 0 ? rc : dw_send(c, &img, 1);
}

/* GET …/studies/{study} and …/studies/{study}/series/{series}: every
 * instance c->who may see (a patient: of their own cases; none: 404). */
static int
dw_retrieve_many(struct ctx *c, int nuids)
{
	struct db_dicom_query q;
	struct db_dicom_row *rows;
	struct image *imgs;
	size_t n;
	int rc;

	if ((rc = dw_path_uids(c, nuids)) != 0)
		return rc;
	dw_query_init(c, &q);
	q.study_uid = c->seg[0];
	q.series_uid = nuids > 1 ? c->seg[1] : NULL;
	if ((rc = db_dicom_find(c->w->db, c->req->arena, &q, &rows, &n)) != 0)
		return rc;
	if (n == 0 || rows == NULL)
		return PI_ERR_NOT_FOUND;
	imgs = arena_alloc(c->req->arena, sizeof(*imgs) * n);
	if (imgs == NULL)
		return PI_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		imgs[i] = rows[i].img;
	return dw_send(c, imgs, n);
}

int
h_wado_study(struct ctx *c)
{
	return dw_retrieve_many(c, 1);
}

int
h_wado_series(struct ctx *c)
{
	return dw_retrieve_many(c, 2);
}

int
h_wado_metadata(struct ctx *c)
{
	struct image img;
	json_object *arr, *o;
	char da[9];
	int rc = dw_instance(c, "wado_metadata", &img);

	if (rc != 0)
		return rc;
	arr = json_object_new_array();
	o = json_object_new_object();
	if (arr == NULL || o == NULL) {
		json_object_put(arr);
		json_object_put(o);
		return PI_ERR_NOMEM;
	}
	json_object_array_add(arr, o);
	dw_da(img.captured_at, da);
	dw_attr_str(o, "00080016", "UI", img.sop_class);
	dw_attr_str(o, "00080018", "UI", img.sop_uid);
	dw_attr_str(o, "00080020", "DA", da);
	dw_attr_str(o, "00080060", "CS", img.modality);
	dw_attr_str(o, "00080070", "LO", img.manufacturer);
	dw_attr_str(o, "00081090", "LO", img.model_name);
	dw_attr_str(o, "0020000D", "UI", img.study_uid);
	dw_attr_str(o, "0020000E", "UI", img.series_uid);
	if (img.frames > 0)
		dw_attr_int(o, "00280008", "IS", img.frames);
	if (img.height > 0 && img.width > 0) {
		dw_attr_int(o, "00280010", "US", img.height);
		dw_attr_int(o, "00280011", "US", img.width);
	}
	handlers_audit(c, "wado_metadata", img.id, img.case_id, "original", "ok");
	return dw_json(c, arr);
}

int
h_wado_rendered(struct ctx *c)
{
	struct image img;
	int rc = dw_instance(c, "wado_rendered", &img);

	return rc != 0 ? rc : handlers_serve(c, &img, V_DISPLAY, "wado_rendered");
}

/* --- STOW-RS: POST …/dicom-web/cases/{caseId}/studies -------------------- */

#define DW_STOW_OVERHEAD (2LL * 1024 * 1024)  /* part headers, boundaries */

/* One STOW-RS request: the case, the part being received, the answer's
 * sequences. */
struct dw_stow {
	struct ctx *c;
	char case_id[37];
	struct ingest_sink sink;
	int in_part, dicom_part;
	int abort_rc;                 /* a pi_err that ends the request */
	json_object *ok, *failed;     /* ReferencedSOPSequence, FailedSOPSequence */
	char study[65];               /* the one study stored, "" none, "*" many */
};

/* A sequence item with the SOP class and instance (either may be empty). */
static json_object *
dw_sop_item(const char *cls, const char *uid)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	if (cls != NULL && cls[0] != '\0')
		dw_attr_str(o, "00081150", "UI", cls);
	if (uid != NULL && uid[0] != '\0')
		dw_attr_str(o, "00081155", "UI", uid);
	return o;
}

/* Adds a FailedSOPSequence item with failure reason reason. */
static void
dw_stow_failed(struct dw_stow *s, const char *cls, const char *uid,
    unsigned reason)
{
	json_object *o = dw_sop_item(cls, uid);

	if (o == NULL)
		return;
	dw_attr_int(o, "00081197", "US", (long long)reason);
	json_object_array_add(s->failed, o);
	handlers_audit(s->c, "stow", NULL, s->case_id, NULL, "error");
}

/* The received part in s->sink through the checks and ingest of POST
 * /upload (handlers_dicom_verdict, ingest, handlers_record_ready): an item
 * of one of the two sequences, or s->abort_rc for a failure of polaimg's
 * own (database, storage). */
static void
dw_stow_one(struct dw_stow *s)
{
	struct ctx *c = s->c;
	struct handlers_dicom_refusal r;
	struct handlers_image_fields f = { .case_id_raw = s->case_id,
		.has_case_id = 1, .image_type = "other" };
	struct image img;
	json_object *details, *o;
	int rc, force = 0;

	memset(&img, 0, sizeof(img));
	memset(&r, 0, sizeof(r));
	rc = ingest_sink_finish(&s->sink, img.sha256);
	if (rc == PI_ERR_TOO_LARGE) {
		dw_stow_failed(s, NULL, NULL, 0xA700);   /* out of resources */
		return;
	}
	if (rc != 0)
		goto abort;
	if (!s->dicom_part || img_sniff(s->sink.head, s->sink.headlen) !=
	    IMG_DICOM) {
		dw_stow_failed(s, NULL, NULL, 0xC000);   /* cannot understand */
		return;
	}
	details = handlers_image_fields(&f, &img, NULL);
	if (details != NULL) {
		json_object_put(details);
		rc = PI_ERR_INTERNAL;
		goto abort;
	}
	handlers_image_new(c, &img);
	img.file_size = s->sink.size;
	rc = handlers_dicom_verdict(c, &img, s->sink.path, 0, &force, &r);
	if (rc == PI_ERR_CONFLICT) {
		dw_stow_failed(s, r.sop_class, r.sop_uid, r.reason);
		return;
	}
	if (rc == 0) {
		if (strcmp(img.modality, "OPT") == 0)
			(void)snprintf(img.image_type, sizeof(img.image_type), "oct");
		rc = ingest(c->w->storage, c->req->arena, c->w->cfg->max_pixels,
		    &img, s->sink.path, IMG_DICOM, 1);
	}
	if (rc == PI_ERR_UNPROCESSABLE || rc == PI_ERR_UNSUPPORTED ||
	    rc == PI_ERR_TOO_LARGE) {
		dw_stow_failed(s, r.sop_class, r.sop_uid, 0xC000);
		return;
	}
	if (rc == 0)
		rc = handlers_record_ready(c, &img, "stow");
	if (rc == PI_ERR_CONFLICT) {      /* the same instance, concurrently */
		dw_stow_failed(s, r.sop_class, r.sop_uid, 0x0111);
		return;
	}
	if (rc != 0)
		goto abort;
	if ((o = dw_sop_item(r.sop_class, img.sop_uid)) != NULL) {
		dw_retrieve_url(c, o, img.study_uid, img.series_uid, img.sop_uid);
		json_object_array_add(s->ok, o);
	}
	if (s->study[0] == '\0')
		(void)snprintf(s->study, sizeof(s->study), "%s", img.study_uid);
	else if (strcmp(s->study, img.study_uid) != 0)
		(void)snprintf(s->study, sizeof(s->study), "*");
	return;
abort:
	s->abort_rc = rc;
	handlers_audit(c, "stow", img.id[0] ? img.id : NULL, s->case_id, NULL,
	    "error");
}

static int
dw_stow_begin(void *ud, const struct mp_part *part)
{
	struct dw_stow *s = ud;
	int rc;

	ingest_sink_discard(&s->sink);
	s->dicom_part = strncasecmp(part->content_type, "application/dicom",
	    17) == 0 && (part->content_type[17] == '\0' ||
	    part->content_type[17] == ';' || part->content_type[17] == ' ');
	rc = ingest_sink_open(&s->sink, s->c->w->storage, s->c->req->arena,
	    s->c->w->cfg->max_upload_bytes);
	if (rc != 0) {
		s->abort_rc = rc;
		return 1;
	}
	ingest_sink_dicom_max(&s->sink, s->c->w->cfg->max_dicom_bytes);
	s->in_part = 1;
	return 0;
}

static int
dw_stow_data(void *ud, const char *data, size_t len)
{
	struct dw_stow *s = ud;

	/* An error (too large) is sticky in the sink; the part is read to
	 * its end and refused then. */
	(void)ingest_sink_write(&s->sink, data, len);
	return 0;
}

static int
dw_stow_end(void *ud)
{
	struct dw_stow *s = ud;

	s->in_part = 0;
	dw_stow_one(s);
	ingest_sink_discard(&s->sink);
	return s->abort_rc != 0;
}

int
h_stow(struct ctx *c)
{
	static const struct mp_callbacks cb = { dw_stow_begin, dw_stow_data,
		dw_stow_end };
	char boundary[MP_MAX_BOUNDARY_RELATED + 1];
	struct dw_stow s;
	char case_id[37];
	struct mp_parser *mp = NULL;
	json_object *ans = NULL;
	size_t nok, nfail;
	int mrc = MP_OK, rc;

	if (handlers_path_id(c, case_id) != 0)
		return 0;
	if (handlers_ingest_admit(c, c->who.user_id))
		return 0;
	memset(&s, 0, sizeof(s));
	memcpy(s.case_id, case_id, sizeof(s.case_id));
	s.c = c;
	s.sink.fd = -1;
	if (mp_boundary_related(c->req->content_type, boundary,
	    sizeof(boundary)) != 0) {
		if (strncasecmp(c->req->content_type, "multipart/related", 17) != 0)
			return PI_ERR_UNSUPPORTED;
		return http_validation_error(c->req, http_detail_add(NULL, "body",
		    "multipart boundary missing or invalid"));
	}
	if (c->req->content_length > c->w->cfg->max_dicom_bytes +
	    DW_STOW_OVERHEAD)
		return PI_ERR_TOO_LARGE;
	rc = handlers_check_case(c, s.case_id, ACL_UPLOAD, "stow", NULL);
	if (rc != 0)
		return rc;
	s.ok = json_object_new_array();
	s.failed = json_object_new_array();
	mp = mp_new_related(boundary, &cb, &s);
	if (s.ok == NULL || s.failed == NULL || mp == NULL) {
		rc = PI_ERR_NOMEM;
		goto out;
	}
	if ((rc = handlers_feed_multipart(c, mp, &mrc)) != 0)
		goto out;
	if (s.abort_rc != 0) {
		rc = s.abort_rc;
		goto out;
	}
	nok = json_object_array_length(s.ok);
	nfail = json_object_array_length(s.failed);
	if (mrc != MP_OK && nok == 0) {
		rc = http_validation_error(c->req, http_detail_add(NULL, "body",
		    mrc == MP_ERR_TRUNCATED ? "truncated multipart body" :
		    mrc == MP_ERR_PARTS ? "more than 64 instances" :
		    "malformed multipart body"));
		goto out;
	}
	if (nok + nfail == 0) {
		rc = http_validation_error(c->req, http_detail_add(NULL, "body",
		    "no instance in the body"));
		goto out;
	}
	if ((ans = json_object_new_object()) == NULL) {
		rc = PI_ERR_NOMEM;
		goto out;
	}
	if (s.study[0] != '\0' && strcmp(s.study, "*") != 0)
		dw_retrieve_url(c, ans, s.study, NULL, NULL);
	if (nfail > 0) {
		json_object *sq = json_object_new_object();

		if (sq != NULL) {
			json_object_object_add(sq, "vr", json_object_new_string("SQ"));
			json_object_object_add(sq, "Value", s.failed);
			s.failed = NULL;
			json_object_object_add(ans, "00081198", sq);
		}
	}
	if (nok > 0) {
		json_object *sq = json_object_new_object();

		if (sq != NULL) {
			json_object_object_add(sq, "vr", json_object_new_string("SQ"));
			json_object_object_add(sq, "Value", s.ok);
			s.ok = NULL;
			json_object_object_add(ans, "00081199", sq);
		}
	}
	rc = dw_json_status(c, nfail == 0 ? 200 : nok == 0 ? 409 : 202, ans);
	ans = NULL;
out:
	ingest_sink_discard(&s.sink);
	json_object_put(s.ok);
	json_object_put(s.failed);
	json_object_put(ans);
	mp_free(mp);
	return rc;
}
