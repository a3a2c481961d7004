/* token.c — `polaimg token`: a long-lived bearer token for a service
 * account.
 *
 * The PolaCare application hands its users tokens that live a day; a PACS
 * or an Orthanc pushing and pulling DICOMweb cannot renew one. The operator
 * makes such a client a users row of its own (role doctor, or admin) and
 * mints it a token here: signed with the configured key (jwt_secret for
 * HS256/384/512; for RS* and ES*, where polaimg holds only the public key,
 * the private key file given with --key), claims sub = userId = the user's
 * id, iat, exp = now + --days. The token is checked like every other on
 * every request, the users row included, so deactivating the user revokes
 * it at once (within auth_cache_ttl); there is no other revocation list.
 *
 * The verb refuses an unknown or inactive user, and writes one audit row
 * (action "token", user cli:<unix user>, variant the service account's id,
 * request id "token") before it prints anything: a token nobody can account
 * for is never handed out.
 */
#include "token.h"

#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>

#include "auth.h"
#include "common.h"
#include "config.h"
#include "db.h"
#include "validate.h"

#define TOKEN_MAX_DAYS 3650      /* ten years */
#define TOKEN_KEY_MAX  65536     /* a PEM private key file */

static void
token_usage(FILE *out)
{
	fprintf(out,
	    "usage: polaimg [-c FILE] token --user ID [--days N] [--key FILE]\n"
	    "  Prints a bearer token for the active user ID (a service account),\n"
	    "  valid N days (1..%d, default 365). --key: the PEM private key for\n"
	    "  RS*/ES* jwt_algorithm (HS* sign with jwt_secret). Revoke it by\n"
	    "  deactivating the user (users.is_active = false).\n", TOKEN_MAX_DAYS);
}

/* "cli:<unix user>" into buf. */
static const char *
token_operator(char *buf, size_t size)
{
	const struct passwd *pw = getpwuid(geteuid());
	int n = -1;

	if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0')
		n = snprintf(buf, size, "cli:%s", pw->pw_name);
	if (n < 0 || (size_t)n >= size)
		(void)snprintf(buf, size, "cli:uid%lu", (unsigned long)geteuid());
	return buf;
}

/* Reads the file at path (at most TOKEN_KEY_MAX bytes) into a malloc'd
 * buffer, *len its length. NULL on failure (reported). */
static unsigned char *
token_read_key(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "polaimg: token: cannot open %s\n", path);
		return NULL;
	}
	buf = malloc(TOKEN_KEY_MAX + 1);
	if (buf == NULL)
		goto fail;
	n = fread(buf, 1, TOKEN_KEY_MAX + 1, f);
	if (ferror(f) || n == 0 || n > TOKEN_KEY_MAX) {
		fprintf(stderr, "polaimg: token: cannot read a key from %s\n", path);
		goto fail;
	}
	(void)fclose(f);
	*len = n;
	return buf;
fail:
	free(buf);
	(void)fclose(f);
	return NULL;
}

/* Signs the token of user (canonical UUID) valid until exp with alg and
 * key; the malloc'd compact JWS, or NULL. */
static char *
token_sign(enum auth_alg alg, const unsigned char *key, size_t keylen,
    const char *user, int64_t now, int64_t exp)
{
	static const jwt_alg_t algs[] = {
		[AUTH_HS256] = JWT_ALG_HS256, [AUTH_HS384] = JWT_ALG_HS384,
		[AUTH_HS512] = JWT_ALG_HS512, [AUTH_RS256] = JWT_ALG_RS256,
		[AUTH_RS384] = JWT_ALG_RS384, [AUTH_RS512] = JWT_ALG_RS512,
		[AUTH_ES256] = JWT_ALG_ES256, [AUTH_ES384] = JWT_ALG_ES384,
		[AUTH_ES512] = JWT_ALG_ES512,
	};
	jwt_t *jwt = NULL;
	char *out = NULL;

	if ((unsigned)alg >= PI_ARRAY_LEN(algs) || jwt_new(&jwt) != 0)
		return NULL;
	if (jwt_add_grant(jwt, "sub", user) != 0 ||
	    jwt_add_grant(jwt, "userId", user) != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)exp) != 0 ||
	    jwt_set_alg(jwt, algs[alg], key, (int)keylen) != 0)
		goto out;
	out = jwt_encode_str(jwt);
out:
	jwt_free(jwt);
	return out;
}

int
token_main(const struct config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "user", required_argument, NULL, 'u' },
		{ "days", required_argument, NULL, 'd' },
		{ "key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *user = NULL, *keyfile = NULL;
	long long days = 365;
	char canon[37], op[96], expbuf[21];
	enum auth_alg alg;
	struct db *db = NULL;
	struct db_user u;
	struct audit ev = { .action = "token", .outcome = "ok",
		.request_id = "token" };
	unsigned char *key = NULL;
	size_t keylen = 0;
	char *tok = NULL;
	int64_t now, exp;
	int opt, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "u:d:k:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u': user = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'd':
			if (!val_int(optarg, 1, TOKEN_MAX_DAYS, &days)) {
				fprintf(stderr, "polaimg: token: --days must be "
				    "1..%d\n", TOKEN_MAX_DAYS);
				return 2;
			}
			break;
		case 'h': token_usage(stdout); return 0;
		default: token_usage(stderr); return 2;
		}
	}
	if (user == NULL || optind != argc) {
		token_usage(stderr);
		return 2;
	}
	if (!val_uuid(user, canon)) {
		fprintf(stderr, "polaimg: token: --user must be a user id (UUID)\n");
		return 2;
	}
	if (auth_alg_parse(cfg->jwt_algorithm, &alg) != 0) {
		fprintf(stderr, "polaimg: token: unknown jwt_algorithm\n");
		return 1;
	}
	if (alg <= AUTH_HS512) {
		if (keyfile != NULL) {
			fprintf(stderr, "polaimg: token: --key is for RS*/ES* "
			    "only; %s signs with jwt_secret\n", cfg->jwt_algorithm);
			return 2;
		}
		keylen = strlen(cfg->jwt_secret);
		key = (unsigned char *)strdup(cfg->jwt_secret);
		if (key == NULL || keylen == 0) {
			fprintf(stderr, "polaimg: token: jwt_secret is not set\n");
			goto out;
		}
	} else {
		if (keyfile == NULL) {
			fprintf(stderr, "polaimg: token: %s needs --key "
			    "PRIVATE_KEY.pem\n", cfg->jwt_algorithm);
			return 2;
		}
		if ((key = token_read_key(keyfile, &keylen)) == NULL)
			goto out;
	}
	db = db_new(cfg->database_url);
	if (db == NULL) {
		fprintf(stderr, "polaimg: token: out of memory\n");
		goto out;
	}
	memset(&u, 0, sizeof(u));
	opt = db_user_get(db, canon, &u);
	if (opt != 0 && opt != PI_ERR_NOT_FOUND) {
		fprintf(stderr, "polaimg: token: database error\n");
		goto out;
	}
	if (!u.found) {
		fprintf(stderr, "polaimg: token: no user %s\n", canon);
		goto out;
	}
	if (!u.is_active || (strcmp(u.role, "patient") != 0 &&
	    strcmp(u.role, "doctor") != 0 && strcmp(u.role, "admin") != 0)) {
		fprintf(stderr, "polaimg: token: user %s is not active\n", canon);
		goto out;
	}
	now = (int64_t)time(NULL);
	exp = now + days * 86400;
	tok = token_sign(alg, key, keylen, canon, now, exp);
	if (tok == NULL) {
		fprintf(stderr, "polaimg: token: cannot sign (a %s key?)\n",
		    cfg->jwt_algorithm);
		goto out;
	}
	ev.user_id = token_operator(op, sizeof(op));
	ev.role = u.role;
	ev.variant = canon;
	if (db_audit(db, &ev) != 0) {
		fprintf(stderr, "polaimg: token: database error (audit row)\n");
		goto out;
	}
	val_format_rfc3339(exp, expbuf);
	printf("%s\n", tok);
	fprintf(stderr, "polaimg: token for %s (%s), expires %s\n", canon,
	    u.role, expbuf);
	rc = 0;
out:
	if (key != NULL) {
		memset(key, 0, keylen);
		free(key);
	}
	free(tok);       /* libjwt 1.10 allocates it with malloc */
	db_free(db);
	return rc;
}
