/* acl.h — who may do what to which case. Pure functions, the access table of
 * docs/api.md in code: patients act on their own cases only and never delete;
 * doctors and admins act on any case.
 */
#ifndef POLAIMG_ACL_H
#define POLAIMG_ACL_H

#include <stdbool.h>

enum role { ROLE_NONE = 0, ROLE_PATIENT, ROLE_DOCTOR, ROLE_ADMIN };
enum acl_action { ACL_VIEW, ACL_UPLOAD, ACL_DELETE };

struct principal {
	char user_id[37];
	enum role role;
};

/* The role for a name ("patient", "DOCTOR" …, case-insensitive), or ROLE_NONE. */
enum role acl_role_parse(const char *name);
const char *acl_role_name(enum role r);   /* "patient" …, "none" */

/* Whether p may perform action on a case whose patient is
 * case_patient_id. */
bool acl_allowed(const struct principal *p, enum acl_action action,
    const char *case_patient_id);

#endif
