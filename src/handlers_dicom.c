/* handlers_dicom.c — the checks POST /upload makes on a DICOM file.
 *
 * A DICOM file says whom and what it shows: the patient (PatientID), the
 * eye (ImageLaterality), when (AcquisitionDateTime), and which object it is
 * (SOP Instance UID, unique the world over). Before anything is stored the
 * upload handler asks handlers_dicom_check() to read the header
 * (dicom_probe: no pixel is decoded) and hold those against the request and
 * the database:
 *
 * - eye: the file's laterality becomes eyeSide when the client sent none
 *   (or "unknown"); a different eyeSide is a conflict, 409
 *   LATERALITY_MISMATCH, since one of the two is wrong;
 * - time: the file's acquisition time becomes capturedAt when the client
 *   sent none;
 * - the same object twice: a SOP Instance UID already held by a live or
 *   deleted (not purged) image is 409 DUPLICATE_INSTANCE naming that image
 *   to a caller who may see it (to anyone else, only that it is stored);
 * - the wrong patient: when the case's patient has a hospital number
 *   (PolaCare's hn) and the file's PatientID is another, 409
 *   PATIENT_MISMATCH; a doctor or admin may send force=true to store it
 *   anyway, which the upload handler audits as "patient_override" once
 *   the image is stored. A file without a
 *   PatientID is not checked (anonymised exports have none).
 *
 * Refusals that are DICOM's own: a JPEG 2000 (or other undecoded) transfer
 * syntax is 415 UNSUPPORTED_TRANSFER_SYNTAX, a SOP class that is not an
 * ophthalmic, VL photographic or secondary capture image 415
 * UNSUPPORTED_SOP_CLASS; a header over the limits or malformed is 422 like
 * any undecodable image.
 */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "common.h"
#include "db.h"
#include "dicom.h"
#include "log.h"

/*
 * Answers 409 DUPLICATE_INSTANCE for the image h holding the instance. The
 * image is named ("existing") only to a caller who may see it: a SOP
 * Instance UID is unique the world over, so the conflict itself cannot be
 * hidden, but which image of which case holds it is the other patient's.
 */
static int
dicom_duplicate(struct ctx *c, const struct db_sop_holder *h)
{
	json_object *o = NULL;

	if (!acl_allowed(&c->who, ACL_VIEW, h->case_patient_id)) {
		(void)http_error(c->req, 409, "DUPLICATE_INSTANCE",
		    "This DICOM instance (SOP Instance UID) is already stored, "
		    "in a case you cannot see");
		return PI_ERR_ANSWERED;
	}
	if ((o = json_object_new_object()) != NULL) {
		json_object_object_add(o, "imageId",
		    json_object_new_string(h->id));
		json_object_object_add(o, "deleted",
		    json_object_new_boolean(h->deleted));
	}
	(void)http_error_field(c->req, 409, "DUPLICATE_INSTANCE", h->deleted ?
	    "This DICOM instance (SOP Instance UID) is already stored, in a "
	    "deleted image" : "This DICOM instance (SOP Instance UID) is "
	    "already stored", "existing", o);
	return PI_ERR_ANSWERED;
}

/* The eyeSide value of a DICOM laterality. */
static const char *
dicom_eye(char lat)
{
	switch (lat) {
	case 'R': return "right";
	case 'L': return "left";
	case 'B': return "both";
	default: return NULL;
	}
}

/* The refusals of a DICOM file: the API's status and code, and the
 * DICOM failure reason a STOW-RS answer gives (PS3.18 Table 10.5.3-1:
 * C122 transfer syntax not supported, 0122 SOP class not supported, 0111
 * duplicate SOP instance, 0110 processing failure). */
enum dicom_refusal { DR_TS, DR_SOP, DR_LATERALITY, DR_DUPLICATE, DR_PATIENT };
static const struct {
	int status;
	const char *code;
	unsigned reason;
} dicom_refusals[] = {
	[DR_TS] =         { 415, "UNSUPPORTED_TRANSFER_SYNTAX", 0xC122 },
	[DR_SOP] =        { 415, "UNSUPPORTED_SOP_CLASS", 0x0122 },
	[DR_LATERALITY] = { 409, "LATERALITY_MISMATCH", 0x0110 },
	[DR_DUPLICATE] =  { 409, "DUPLICATE_INSTANCE", 0x0111 },
	[DR_PATIENT] =    { 409, "PATIENT_MISMATCH", 0x0110 },
};

/* Fills r for refusal k with message msg; PI_ERR_CONFLICT. */
static int
dicom_refuse(struct handlers_dicom_refusal *r, enum dicom_refusal k,
    const char *msg)
{
	r->status = dicom_refusals[k].status;
	r->code = dicom_refusals[k].code;
	r->reason = dicom_refusals[k].reason;
	(void)snprintf(r->message, sizeof(r->message), "%s", msg);
	return PI_ERR_CONFLICT;
}

int
handlers_dicom_verdict(struct ctx *c, struct image *img, const char *path,
    int eye_given, int *force, struct handlers_dicom_refusal *r)
{
	struct dicom_info info;
	const char *eye;
	char hn[128];
	int rc;

	memset(r, 0, sizeof(*r));
	memset(&info, 0, sizeof(info));
	rc = dicom_probe(path, &info);
	(void)snprintf(r->sop_class, sizeof(r->sop_class), "%s", info.sop_class);
	(void)snprintf(r->sop_uid, sizeof(r->sop_uid), "%s", info.sop_uid);
	if (rc == PI_ERR_UNSUPPORTED && info.refused_ts) {
		char msg[200];

		(void)snprintf(msg, sizeof(msg), "DICOM transfer syntax %s is "
		    "not supported (JPEG 2000 is not); send it uncompressed, "
		    "deflated, RLE, JPEG or JPEG-LS", info.transfer_syntax);
		return dicom_refuse(r, DR_TS, msg);
	}
	if (rc == PI_ERR_UNSUPPORTED && info.refused_sop)
		return dicom_refuse(r, DR_SOP, "Only ophthalmic photography and "
		    "tomography, VL photographic and secondary capture DICOM "
		    "images are accepted");
	if (rc != 0)
		return rc;

	/* The eye. */
	eye = dicom_eye(info.laterality);
	if (eye != NULL) {
		if (eye_given && strcmp(img->eye_side, "unknown") != 0 &&
		    strcmp(img->eye_side, eye) != 0)
			return dicom_refuse(r, DR_LATERALITY,
			    "eyeSide differs from the file's laterality");
		(void)snprintf(img->eye_side, sizeof(img->eye_side), "%s", eye);
	}
	/* The time. */
	if (img->captured_at < 0 && info.captured_at >= 0) {
		img->captured_at = info.captured_at;
		(void)snprintf(img->captured_source,
		    sizeof(img->captured_source), "dicom");
	}

	/* The same object again. */
	if (info.sop_uid[0] != '\0') {
		rc = db_sop_find(c->w->db, info.sop_uid, &r->existing);
		if (rc == 0)
			return dicom_refuse(r, DR_DUPLICATE, r->existing.deleted ?
			    "This DICOM instance (SOP Instance UID) is already "
			    "stored, in a deleted image" : "This DICOM instance "
			    "(SOP Instance UID) is already stored");
		memset(&r->existing, 0, sizeof(r->existing));
		if (rc != PI_ERR_NOT_FOUND)
			return rc;
	}

	/* The patient. */
	rc = db_case_hn(c->w->db, img->case_id, hn, sizeof(hn));
	if (rc != 0)
		return rc;
	if (hn[0] != '\0' && info.patient_id[0] != '\0' &&
	    strcmp(hn, info.patient_id) != 0) {
		if (!*force || (c->who.role != ROLE_DOCTOR &&
		    c->who.role != ROLE_ADMIN))
			return dicom_refuse(r, DR_PATIENT, *force ?
			    "The file's PatientID is not the case patient's "
			    "hospital number; only a doctor may store it anyway" :
			    "The file's PatientID is not the case patient's "
			    "hospital number (a doctor may send force=true to "
			    "store it anyway)");
		return 0;
	}
	*force = 0;
	return 0;
}

int
handlers_dicom_check(struct ctx *c, struct image *img, const char *path,
    int eye_given, int *force)
{
	struct handlers_dicom_refusal r;
	int rc = handlers_dicom_verdict(c, img, path, eye_given, force, &r);

	if (rc != PI_ERR_CONFLICT)
		return rc;
	if (r.existing.id[0] != '\0')
		return dicom_duplicate(c, &r.existing);
	(void)http_error(c->req, r.status, r.code, r.message);
	return PI_ERR_ANSWERED;
}

int
handlers_dicom_duplicate(struct ctx *c, const struct image *img)
{
	struct db_sop_holder h;
	int rc = db_sop_find(c->w->db, img->sop_uid, &h);

	if (rc != 0)
		return rc == PI_ERR_NOT_FOUND ? PI_ERR_CONFLICT : rc;
	return dicom_duplicate(c, &h);
}
