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
 *   deleted (not purged) image is 409 DUPLICATE_INSTANCE naming that image;
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

/* Answers 409 DUPLICATE_INSTANCE naming image id (deleted: soft-deleted). */
static int
dicom_duplicate(struct ctx *c, const char *id, int deleted)
{
	json_object *o = json_object_new_object();

	if (o != NULL) {
		json_object_object_add(o, "imageId", json_object_new_string(id));
		json_object_object_add(o, "deleted", json_object_new_boolean(deleted));
	}
	(void)http_error_field(c->req, 409, "DUPLICATE_INSTANCE", deleted ?
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

int
handlers_dicom_check(struct ctx *c, struct image *img, const char *path,
    int eye_given, int *force)
{
	struct dicom_info info;
	const char *eye;
	char other[64], hn[128];
	int rc, deleted = 0;

	rc = dicom_probe(path, &info);
	if (rc == PI_ERR_UNSUPPORTED && info.refused_ts) {
		char msg[200];

		(void)snprintf(msg, sizeof(msg), "DICOM transfer syntax %s is "
		    "not supported (JPEG 2000 is not); send it uncompressed, "
		    "deflated, RLE, JPEG or JPEG-LS", info.transfer_syntax);
		(void)http_error(c->req, 415, "UNSUPPORTED_TRANSFER_SYNTAX", msg);
		return PI_ERR_ANSWERED;
	}
	if (rc == PI_ERR_UNSUPPORTED && info.refused_sop) {
		(void)http_error(c->req, 415, "UNSUPPORTED_SOP_CLASS",
		    "Only ophthalmic photography and tomography, VL photographic "
		    "and secondary capture DICOM images are accepted");
		return PI_ERR_ANSWERED;
	}
	if (rc != 0)
		return rc;

	/* The eye. */
	eye = dicom_eye(info.laterality);
	if (eye != NULL) {
		if (eye_given && strcmp(img->eye_side, "unknown") != 0 &&
		    strcmp(img->eye_side, eye) != 0) {
			(void)http_error(c->req, 409, "LATERALITY_MISMATCH",
			    "eyeSide differs from the file's laterality");
			return PI_ERR_ANSWERED;
		}
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
		rc = db_sop_find(c->w->db, info.sop_uid, other, sizeof(other),
		    &deleted);
		if (rc == 0)
			return dicom_duplicate(c, other, deleted);
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
		    c->who.role != ROLE_ADMIN)) {
			(void)http_error(c->req, 409, "PATIENT_MISMATCH",
			    *force ? "The file's PatientID is not the case "
			    "patient's hospital number; only a doctor may store "
			    "it anyway" : "The file's PatientID is not the case "
			    "patient's hospital number (a doctor may send "
			    "force=true to store it anyway)");
			return PI_ERR_ANSWERED;
		}
		return 0;
	}
	*force = 0;
	return 0;
}

int
handlers_dicom_duplicate(struct ctx *c, const struct image *img)
{
	char other[64];
	int deleted = 0, rc;

	rc = db_sop_find(c->w->db, img->sop_uid, other, sizeof(other), &deleted);
	if (rc != 0)
		return rc == PI_ERR_NOT_FOUND ? PI_ERR_CONFLICT : rc;
	return dicom_duplicate(c, other, deleted);
}
