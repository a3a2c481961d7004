/* test_config.c — the settings table: defaults, file, environment, errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define BASE "database_url = host=/tmp dbname=x\njwt_secret = " SECRET \
	"\nurl_signing_key = " SECRET "\n"

static int
load(struct config *c, const char *text, char *const *env, char *err, size_t n)
{
	return cfg_load_string(c, text, "test.conf", env, err, n);
}

int
main(void)
{
	struct config c;
	char err[512];
	char *env0[] = { NULL };

	is_int(load(&c, BASE, env0, err, sizeof(err)), 0, "minimal config loads");
	is_int(c.workers, 4, "default workers");
	is_int(c.max_upload_bytes, 52428800, "default max_upload_bytes");
	is_int(c.max_pixels, 50000000, "default max_pixels");
	is_str(c.offload, "nginx", "default offload");
	is_int(c.offload_mode, OFFLOAD_NGINX, "offload mode derived");
	is_int(c.jwt_require_exp, 1, "jwt_require_exp defaults to true");
	is_int(c.jwt_trust_role_claim, 0, "jwt_trust_role_claim defaults to false");
	is_int(c.delete_retention_days, 30, "default retention");
	is_str(c.database_url, "host=/tmp dbname=x", "value with spaces kept");
	is_str(c.ingest_listen, "", "no ingest pool by default (older files)");
	is_int(c.ingest_workers, 2, "default ingest_workers");
	is_int(c.ingest_max_requests, 100, "default ingest_max_requests");
	is_int(c.ingest_request_timeout, 120, "default ingest_request_timeout");
	is_int(c.ingest_memory_limit, 0, "ingest_memory_limit derived by default");
	is_int(c.max_uploads_per_user, 2, "default max_uploads_per_user");
	is_str(c.local_timezone, "", "local_timezone: the host's zone by default");
	cfg_free(&c);

	is_int(load(&c, BASE "local_timezone = Asia/Bangkok\n", env0, err, sizeof(err)),
	    0, "local_timezone = Asia/Bangkok");
	is_str(c.local_timezone, "Asia/Bangkok", "local_timezone from file");
	cfg_free(&c);
	{
		static const char *const bad[] = { "Bangkok", "Mars/Olympus",
			"../../etc/passwd", "/usr/share/zoneinfo/UTC", "Asia//Bangkok",
			"Asia/", "Asia/../UTC", "UTC ", "Asia/Bangkok\x01" };

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char text[256], name[96];

			(void)snprintf(text, sizeof(text), BASE "local_timezone = \"%s\"\n", bad[i]);
			(void)snprintf(name, sizeof(name), "local_timezone \"%s\" refused", bad[i]);
			ok(load(&c, text, env0, err, sizeof(err)) != 0 &&
			    strstr(err, "local_timezone") != NULL, name);
		}
		ok(cfg_zone_valid("UTC") && cfg_zone_valid("America/Argentina/Buenos_Aires") &&
		    cfg_zone_valid("Etc/GMT+7"), "zone names of the database are valid");
	}
	is_int(load(&c, BASE, env0, err, sizeof(err)), 0, "minimal config again");
	cfg_free(&c);

	is_int(load(&c, BASE "ingest_listen = unix:/run/x/ingest.sock\ningest_workers = 3\n"
	    "ingest_memory_limit = 900m\nmax_uploads_per_user = 0\n", env0, err,
	    sizeof(err)), 0, "ingest pool keys");
	is_str(c.ingest_listen, "unix:/run/x/ingest.sock", "ingest_listen from file");
	is_int(c.ingest_memory_limit, 900LL << 20, "ingest_memory_limit size");
	is_int(c.max_uploads_per_user, 0, "max_uploads_per_user 0 = no limit");
	cfg_free(&c);
	ok(load(&c, BASE "ingest_listen = unix:/run/polaimg/polaimg.sock\n", env0, err,
	    sizeof(err)) != 0, "ingest_listen equal to listen refused");
	ok(strstr(err, "ingest_listen") != NULL, "message names ingest_listen");
	ok(load(&c, BASE "ingest_listen = nowhere\n", env0, err, sizeof(err)) != 0,
	    "ingest_listen that is neither unix: nor host:port refused");
	ok(load(&c, BASE "ingest_listen = 127.0.0.1:9001\nworkers = 200\n"
	    "ingest_workers = 100\n", env0, err, sizeof(err)) != 0,
	    "more than 256 workers in both pools refused");
	ok(strstr(err, "ingest_workers") != NULL, "message names ingest_workers");

	is_int(load(&c, BASE "workers = 8\n# comment\n  max_upload_bytes = 10m  # inline\n"
	    "offload = \"none\"\njwt_require_exp = no\n", env0, err, sizeof(err)), 0,
	    "file values");
	is_int(c.workers, 8, "workers from file");
	is_int(c.max_upload_bytes, 10 * 1024 * 1024, "size suffix m");
	is_int(c.offload_mode, OFFLOAD_NONE, "quoted enum value");
	is_int(c.jwt_require_exp, 0, "boolean 'no'");
	cfg_free(&c);

	ok(load(&c, BASE "wokers = 8\n", env0, err, sizeof(err)) != 0, "unknown key refused");
	ok(strstr(err, "wokers") != NULL, "message names the unknown key");
	ok(load(&c, BASE "workers = 0\n", env0, err, sizeof(err)) != 0, "out of range refused");
	ok(strstr(err, "workers") != NULL, "message names the key");
	ok(load(&c, BASE "workers = 4x\n", env0, err, sizeof(err)) != 0, "trailing garbage refused");
	ok(load(&c, BASE "max_upload_bytes = 22222222222249m\n", env0, err, sizeof(err)) != 0,
	    "a size whose suffix overflows is refused (fuzz regression)");
	ok(strstr(err, "max_upload_bytes") != NULL, "message names max_upload_bytes");
	ok(load(&c, BASE "offload = ftp\n", env0, err, sizeof(err)) != 0, "bad enum refused");
	ok(strstr(err, "offload") != NULL, "message names offload");
	ok(load(&c, BASE "jwt_require_exp = maybe\n", env0, err, sizeof(err)) != 0,
	    "bad boolean refused");
	ok(load(&c, BASE "just a line\n", env0, err, sizeof(err)) != 0, "syntax error refused");
	ok(strstr(err, "test.conf:4") != NULL, "syntax error names file and line");
	ok(load(&c, "jwt_secret = short\nurl_signing_key = " SECRET
	    "\ndatabase_url = x\n", env0, err, sizeof(err)) != 0, "short jwt_secret refused");
	ok(strstr(err, "jwt_secret") != NULL, "message names jwt_secret");
	ok(load(&c, "jwt_secret = " SECRET "\nurl_signing_key = " SECRET "\n", env0,
	    err, sizeof(err)) != 0, "missing database_url refused");
	ok(load(&c, BASE "storage_dir = relative/path\n", env0, err, sizeof(err)) != 0,
	    "relative storage_dir refused");
	ok(load(&c, BASE "audit_spool_dir = spool\n", env0, err, sizeof(err)) != 0 &&
	    strstr(err, "audit_spool_dir") != NULL, "relative audit_spool_dir refused, named");
	ok(load(&c, BASE "public_base_url = http://x/\n", env0, err, sizeof(err)) != 0,
	    "public_base_url with trailing slash refused");
	ok(load(&c, BASE "jwt_algorithm = RS256\n", env0, err, sizeof(err)) != 0,
	    "RS256 without a public key file refused");

	{
		char *env[] = { "POLAIMG_WORKERS=3", "POLAIMG_OFFLOAD=apache",
			"DATABASE_URL=dbname=fromenv", "HOME=/root", NULL };

		is_int(load(&c, BASE "workers = 8\n", env, err, sizeof(err)), 0,
		    "environment overrides");
		is_int(c.workers, 3, "POLAIMG_WORKERS wins over the file");
		is_int(c.offload_mode, OFFLOAD_APACHE, "POLAIMG_OFFLOAD");
		is_str(c.database_url, "dbname=fromenv", "PolaCare DATABASE_URL");
		cfg_free(&c);
	}
	{
		char *env[] = { "POLAIMG_DATABASE_URL=dbname=mine",
			"DATABASE_URL=dbname=theirs", NULL };

		is_int(load(&c, BASE, env, err, sizeof(err)), 0, "both names");
		is_str(c.database_url, "dbname=mine", "POLAIMG_ name beats the PolaCare name");
		cfg_free(&c);
	}
	{
		char *env[] = { "POLAIMG_NOPE=1", NULL };

		/* Someone else's variable (a script's POLAIMG_BIN): a warning
		 * on stderr, not a refusal; the file stays strict (above). */
		is_int(load(&c, BASE, env, err, sizeof(err)), 0,
		    "unknown POLAIMG_ variable is ignored");
		is_int(c.workers, 4, "and changes nothing");
		cfg_free(&c);
	}
	/* Every problem of the combination at once, one a line. */
	ok(load(&c, "database_url = x\njwt_algorithm = HS512\njwt_secret = " SECRET
	    "\nurl_signing_key = short\nstorage_dir = relative\n", env0, err,
	    sizeof(err)) != 0, "three problems refused");
	ok(strstr(err, "jwt_secret: must be at least 64 bytes for HS512") != NULL &&
	    strstr(err, "\nurl_signing_key") != NULL &&
	    strstr(err, "\nstorage_dir") != NULL, "all three reported");
	{
		char *env[] = { "POLAIMG_JWT_SECRET_FILE=/nonexistent", NULL };

		ok(load(&c, BASE, env, err, sizeof(err)) != 0,
		    "a known POLAIMG_ variable with a bad value is still refused");
		ok(strstr(err, "POLAIMG_JWT_SECRET_FILE") != NULL,
		    "message names the variable");
	}
	{
		char path[] = "/tmp/polaimg-secret-XXXXXX";
		int fd = mkstemp(path);
		char text[512];
		char *env[] = { NULL };

		ok(fd >= 0 && write(fd, "abcdefghijklmnopqrstuvwxyz0123456789\n", 37) == 37,
		    "secret file written");
		close(fd);
		(void)snprintf(text, sizeof(text), "database_url = x\nurl_signing_key = "
		    SECRET "\njwt_secret_file = %s\n", path);
		is_int(load(&c, text, env, err, sizeof(err)), 0, "jwt_secret_file");
		is_str(c.jwt_secret, "abcdefghijklmnopqrstuvwxyz0123456789",
		    "secret read from file, newline removed");
		{
			char buf[4096] = "";
			FILE *f = fmemopen(buf, sizeof(buf), "w");

			cfg_print(&c, f);
			fclose(f);
			ok(strstr(buf, "abcdefghij") == NULL, "check-config masks secrets");
			ok(strstr(buf, "jwt_secret = ********") != NULL, "masked line present");
			ok(strstr(buf, "workers = 4") != NULL, "plain values printed");
		}
		cfg_free(&c);
		(void)snprintf(text, sizeof(text), "database_url = x\nurl_signing_key = "
		    SECRET "\nworkers_file = %s\n", path);
		ok(load(&c, text, env, err, sizeof(err)) != 0, "_file only for secrets");
		unlink(path);
		(void)snprintf(text, sizeof(text), BASE "jwt_secret_file = %s\n", path);
		ok(load(&c, text, env, err, sizeof(err)) != 0, "missing secret file refused");
	}
	{
		struct config d;

		ok(cfg_load(&d, "/nonexistent/polaimg.conf", env0, err, sizeof(err)) != 0,
		    "an explicit missing file is an error");
	}
	return done_testing();
}
