/* test_acl.c — every cell of docs/api.md's access table. */
#include <string.h>

#include "acl.h"
#include "tap.h"

static struct principal
who(enum role r, const char *id)
{
	struct principal p;

	memset(&p, 0, sizeof(p));
	p.role = r;
	strncpy(p.user_id, id, sizeof(p.user_id) - 1);
	return p;
}

int
main(void)
{
	const char *me = "11111111-1111-4111-8111-111111111111";
	const char *other = "22222222-2222-4222-8222-222222222222";
	struct principal patient = who(ROLE_PATIENT, me);
	struct principal doctor = who(ROLE_DOCTOR, other);
	struct principal admin = who(ROLE_ADMIN, other);
	struct principal nobody = who(ROLE_NONE, me);

	is_int(acl_role_parse("patient"), ROLE_PATIENT, "parse patient");
	is_int(acl_role_parse("DOCTOR"), ROLE_DOCTOR, "parse DOCTOR (Prisma enum)");
	is_int(acl_role_parse("Admin"), ROLE_ADMIN, "parse Admin");
	is_int(acl_role_parse("superuser"), ROLE_NONE, "unknown role");
	is_int(acl_role_parse(""), ROLE_NONE, "empty role");
	is_int(acl_role_parse(NULL), ROLE_NONE, "NULL role");
	is_str(acl_role_name(ROLE_DOCTOR), "doctor", "role name");

	/* patient: own cases for upload and view, never delete */
	ok(acl_allowed(&patient, ACL_VIEW, me), "patient views own case");
	ok(acl_allowed(&patient, ACL_UPLOAD, me), "patient uploads to own case");
	ok(!acl_allowed(&patient, ACL_DELETE, me), "patient never deletes, own case");
	ok(!acl_allowed(&patient, ACL_VIEW, other), "patient cannot view other case");
	ok(!acl_allowed(&patient, ACL_UPLOAD, other), "patient cannot upload to other case");
	ok(!acl_allowed(&patient, ACL_DELETE, other), "patient cannot delete other case");
	{
		/* Ids with hex letters: the comparison ignores case (PolaCare
		 * may hand either), and any other difference denies. */
		struct principal hexpat = who(ROLE_PATIENT,
		    "abcdef12-3456-4abc-8def-0123456789ab");

		ok(acl_allowed(&hexpat, ACL_VIEW,
		    "ABCDEF12-3456-4ABC-8DEF-0123456789AB"),
		    "case comparison: the upper-case spelling of the own id");
		ok(acl_allowed(&hexpat, ACL_UPLOAD,
		    "AbCdEf12-3456-4aBc-8DeF-0123456789aB"),
		    "case comparison: mixed case, upload");
		ok(!acl_allowed(&hexpat, ACL_VIEW,
		    "abcdef12-3456-4abc-8def-0123456789ac"),
		    "case comparison: last character differs, denied");
		ok(!acl_allowed(&hexpat, ACL_VIEW,
		    "abcdef12-3456-4abc-8def-0123456789a"),
		    "case comparison: a prefix of the own id, denied");
		ok(!acl_allowed(&hexpat, ACL_VIEW,
		    "abcdef12-3456-4abc-8def-0123456789abc"),
		    "case comparison: the own id plus a character, denied");
		ok(!acl_allowed(&hexpat, ACL_DELETE,
		    "ABCDEF12-3456-4ABC-8DEF-0123456789AB"),
		    "case comparison: still never delete");
	}
	ok(!acl_allowed(&patient, ACL_VIEW, NULL), "no patient id: denied");
	ok(!acl_allowed(&patient, ACL_VIEW, ""), "empty patient id: denied");
	/* doctor and admin: any case, any action */
	for (int a = ACL_VIEW; a <= ACL_DELETE; a++) {
		ok(acl_allowed(&doctor, (enum acl_action)a, me), "doctor, any action");
		ok(acl_allowed(&admin, (enum acl_action)a, me), "admin, any action");
		ok(!acl_allowed(&nobody, (enum acl_action)a, me), "no role, nothing");
	}
	ok(!acl_allowed(NULL, ACL_VIEW, me), "no principal, nothing");
	{
		struct principal anon = who(ROLE_PATIENT, "");

		ok(!acl_allowed(&anon, ACL_VIEW, ""), "patient without id never matches");
	}
	return done_testing();
}
