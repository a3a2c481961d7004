/* test_authcache.c — a worker's copies of users, cases and images. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "authcache.h"
#include "tap.h"

static void
test_tokens(void)
{
	struct tokencache *tc = tokencache_new();
	struct auth_claims c = { "0b3c2e6e-4d0f-4c55-9d5b-1a2b3c4d5e6f", "doctor", 1000, 2000 }, got;
	char tok[TOKENCACHE_TOKEN_MAX + 10], other[64];

	ok(tc != NULL, "tokencache_new");
	ok(!tokencache_get(tc, "a.b.c", 1500, &got), "empty: no token");
	tokencache_put(tc, "a.b.c", &c);
	ok(tokencache_get(tc, "a.b.c", 1500, &got), "a token put is found");
	is_str(got.user_id, c.user_id, "with its user id");
	is_str(got.role, "doctor", "and role");
	ok(tokencache_get(tc, "a.b.c", 1000, &got), "good from valid_from on");
	ok(!tokencache_get(tc, "a.b.c", 999, &got), "not before valid_from (nbf)");
	ok(!tokencache_get(tc, "a.b.c", 2000, &got), "not at valid_until (exp)");
	ok(!tokencache_get(tc, "a.b.d", 1500, &got), "one byte different: not found");
	ok(!tokencache_get(tc, "a.b.", 1500, &got), "a prefix: not found");
	ok(!tokencache_get(tc, "a.b.cc", 1500, &got), "longer: not found");
	ok(!tokencache_get(tc, "", 1500, &got), "the empty token: not found");
	memset(tok, 'x', sizeof(tok) - 1);
	tok[sizeof(tok) - 1] = '\0';
	tokencache_put(tc, tok, &c);
	ok(!tokencache_get(tc, tok, 1500, &got), "a token too long is not kept");
	for (int i = 0; i < 500; i++) {
		struct auth_claims x = c;

		(void)snprintf(other, sizeof(other), "h.p.sig%d", i);
		(void)snprintf(x.role, sizeof(x.role), "r%d", i);
		tokencache_put(tc, other, &x);
	}
	{
		int own = 1, hits = 0;

		for (int i = 0; i < 500; i++) {
			char want[16];

			(void)snprintf(other, sizeof(other), "h.p.sig%d", i);
			(void)snprintf(want, sizeof(want), "r%d", i);
			if (tokencache_get(tc, other, 1500, &got)) {
				hits++;
				own &= strcmp(got.role, want) == 0;
			}
		}
		ok(own && hits > 0 && hits <= TOKENCACHE_SLOTS,
		    "colliding tokens: only their own claims, at most one a slot");
	}
	ok(!tokencache_get(NULL, "a.b.c", 1500, &got), "NULL cache: nothing");
	tokencache_put(NULL, "a.b.c", &c);
	tokencache_free(tc);
	tokencache_free(NULL);
}

int
main(void)
{
	struct authcache *ac = authcache_new();
	struct arena *a = arena_new();
	struct db_user u = { "doctor", 1, 1 }, got;
	struct image img, out;
	struct db_case kase, kout;
	char longid[100];
	int found = -1;

	ok(ac != NULL && a != NULL, "authcache_new");
	ok(!authcache_user_get(ac, "u1", 1000, 10000, &got), "empty: no user");
	authcache_user_put(ac, "u1", 1000, &u);
	ok(authcache_user_get(ac, "u1", 1500, 10000, &got), "a user put is found");
	is_str(got.role, "doctor", "with its role");
	ok(got.is_active && got.found, "active and found");
	ok(!authcache_user_get(ac, "u2", 1500, 10000, &got), "another user is not");
	ok(!authcache_user_get(ac, "u1", 11000, 10000, &got), "a copy as old as the ttl is not used");
	ok(authcache_user_get(ac, "u1", 10999, 10000, &got), "one just younger is");
	ok(!authcache_user_get(ac, "u1", 999, 10000, &got), "a clock before the copy: not used");
	ok(!authcache_user_get(ac, "u1", 1000, 0, &got), "ttl 0: nothing is used");
	u = (struct db_user){ "", 0, 0 };
	authcache_user_put(ac, "gone", 1000, &u);
	ok(authcache_user_get(ac, "gone", 1000, 10000, &got) && !got.found,
	    "a kept 'no such user'");
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	authcache_user_put(ac, longid, 1000, &u);
	ok(!authcache_user_get(ac, longid, 1000, 10000, &got), "an id too long is not kept");
	ok(!authcache_user_get(ac, "", 1000, 10000, &got), "the empty id is never found");

	memset(&kase, 0, sizeof(kase));
	kase.found = 1;
	(void)snprintf(kase.patient_id, sizeof(kase.patient_id), "p1");
	kase.version = 42;
	kase.patient_name = "Somchai Jaidee";
	kase.hn = "HN-0001";
	authcache_case_put(ac, "c1", 1000, &kase);
	kase.patient_name = "changed after the put";
	ok(authcache_case_get(ac, "c1", 1000, 10000, a, &kout), "a case put is found");
	ok(kout.found == 1 && strcmp(kout.patient_id, "p1") == 0 && kout.version == 42,
	    "with its patient and version");
	is_str(kout.patient_name, "Somchai Jaidee", "and the patient's name, the cache's own copy");
	is_str(kout.hn, "HN-0001", "and the hospital number");
	(void)snprintf(kase.patient_id, sizeof(kase.patient_id), "p2");
	kase.version = 43;
	kase.patient_name = kase.hn = NULL;
	authcache_case_put(ac, "c1", 2000, &kase);
	ok(authcache_case_get(ac, "c1", 2000, 10000, a, &kout) &&
	    strcmp(kout.patient_id, "p2") == 0 && kout.version == 43 &&
	    kout.patient_name == NULL && kout.hn == NULL, "a newer copy replaces it, NULLs kept");
	memset(&kase, 0, sizeof(kase));
	kase.version = -1;
	authcache_case_put(ac, "c0", 2000, &kase);
	ok(authcache_case_get(ac, "c0", 2000, 10000, a, &kout) &&
	    kout.found == 0, "a kept 'no such case'");

	memset(&img, 0, sizeof(img));
	(void)snprintf(img.id, sizeof(img.id), "i1");
	(void)snprintf(img.case_id, sizeof(img.case_id), "c1");
	(void)snprintf(img.case_patient_id, sizeof(img.case_patient_id), "p2");
	img.description = "left eye, dilated";
	img.uploader_name = "Dr Somchai";
	img.file_size = 1234;
	authcache_image_put(ac, "i1", 3000, 1, &img);
	img.description = "changed after the put";
	ok(authcache_image_get(ac, "i1", 3000, 10000, a, &found, &out) && found,
	    "an image put is found");
	is_str(out.description, "left eye, dilated", "its description is the cache's own copy");
	ok(out.description != NULL && out.description != img.description,
	    "copied into the arena");
	is_str(out.uploader_name, "Dr Somchai", "and the uploader's name");
	ok(out.file_size == 1234 && strcmp(out.case_patient_id, "p2") == 0, "with its fields");
	img.description = NULL;
	authcache_image_put(ac, "i1", 3000, 1, &img);
	ok(authcache_image_get(ac, "i1", 3000, 10000, a, &found, &out) &&
	    out.description == NULL, "a NULL description stays NULL");
	authcache_image_put(ac, "i0", 3000, 0, NULL);
	ok(authcache_image_get(ac, "i0", 3000, 10000, a, &found, &out) && found == 0,
	    "a kept 'no such image'");

	authcache_clear(ac);
	ok(!authcache_user_get(ac, "u1", 3000, 10000, &got), "clear drops users");
	ok(!authcache_case_get(ac, "c1", 3000, 10000, a, &kout), "clear drops cases");
	ok(!authcache_image_get(ac, "i1", 3000, 10000, a, &found, &out), "clear drops images");

	/* Many ids: each found one is its own. */
	{
		int own = 1, hits = 0;

		for (int i = 0; i < 1000; i++) {
			char id[32];
			struct db_user x = { "patient", i % 2, 1 };

			(void)snprintf(id, sizeof(id), "user-%d", i);
			(void)snprintf(x.role, sizeof(x.role), "r%d", i);
			authcache_user_put(ac, id, 5000, &x);
		}
		for (int i = 0; i < 1000; i++) {
			char id[32], want[16];

			(void)snprintf(id, sizeof(id), "user-%d", i);
			(void)snprintf(want, sizeof(want), "r%d", i);
			if (authcache_user_get(ac, id, 5000, 10000, &got)) {
				hits++;
				own &= strcmp(got.role, want) == 0 && got.is_active == i % 2;
			}
		}
		ok(own && hits > 0 && hits <= AUTHCACHE_SLOTS,
		    "colliding ids: only their own copies, at most one a slot");
	}
	ok(!authcache_user_get(NULL, "u1", 0, 1, &got), "NULL cache: nothing");
	authcache_user_put(NULL, "u1", 0, &u);
	authcache_free(ac);
	authcache_free(NULL);
	arena_free(a);
	test_tokens();
	return done_testing();
}
