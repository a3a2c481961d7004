/* acl.c — the access table of docs/api.md as pure functions.
 *
 * Kept separate from the handlers so that every cell of the table is one unit
 * test and a handler cannot express an access rule of its own: handlers ask
 * acl_allowed() and act on the answer.
 */
#include "acl.h"

#include <string.h>
#include <strings.h>

static const char *const role_names[] = {
	[ROLE_NONE] = "none", [ROLE_PATIENT] = "patient",
	[ROLE_DOCTOR] = "doctor", [ROLE_ADMIN] = "admin",
};

enum role
acl_role_parse(const char *name)
{
	if (name == NULL)
		return ROLE_NONE;
	for (int r = ROLE_PATIENT; r <= ROLE_ADMIN; r++)
		if (strcasecmp(name, role_names[r]) == 0)
			return (enum role)r;
	return ROLE_NONE;
}

const char *
acl_role_name(enum role r)
{
	if (r < ROLE_NONE || r > ROLE_ADMIN)
		return role_names[ROLE_NONE];
	return role_names[r];
}

bool
acl_allowed(const struct principal *p, enum acl_action action,
    const char *case_patient_id)
{
	if (p == NULL)
		return false;
	switch (p->role) {
	case ROLE_ADMIN:
	case ROLE_DOCTOR:
		return true;
	case ROLE_PATIENT:
		if (action == ACL_DELETE)
			return false;
		/* Ids are compared as canonical lower-case UUID text. */
		return case_patient_id != NULL && p->user_id[0] != '\0' &&
		    strcasecmp(p->user_id, case_patient_id) == 0;
	case ROLE_NONE:
	default:
		return false;
	}
}
