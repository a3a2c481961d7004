/* config.c — the settings table and its parser.
 *
 * Like redis's config.c, every setting is one row of config_table[]: name,
 * type, default, bounds, flags and a one-line description. Loading walks the
 * table three times — defaults, the file, the environment — so a new setting
 * is one new row and one struct field, and check-config and the manual list
 * it automatically.
 *
 * The file format is deliberately small: "key = value" lines, '#' comments,
 * optional double quotes around a value. Unknown keys and bad values are
 * refused with a message naming the key: a typo in a hospital's config must
 * stop the service at start, not silently fall back to a default.
 *
 * Secrets (flag CFG_SECRET) may also be given as <key>_file, a path whose
 * contents (trailing newline removed) are the value, so they need not sit in
 * the config file or the environment. They are masked by cfg_print().
 */
#include "config.h"
#include "auth.h"
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "validate.h"

enum cfg_type { CFG_STR, CFG_INT, CFG_SIZE, CFG_BOOL, CFG_ENUM };
enum cfg_origin { ORIGIN_DEFAULT = 0, ORIGIN_FILE, ORIGIN_ENV };

#define CFG_SECRET 0x1   /* masked in output; <key>_file accepted */

struct cfg_entry {
	const char *name;
	enum cfg_type type;
	size_t offset;
	const char *def;          /* default, as it would be written in the file */
	long long min, max;       /* for CFG_INT / CFG_SIZE */
	const char *const *values;/* for CFG_ENUM, NULL-terminated */
	unsigned flags;
	const char *alias;        /* PolaCare environment name, or NULL */
	const char *help;
};

static const char *const offload_values[] = { "nginx", "apache", "none", NULL };
static const char *const provider_values[] = { "local", "s3", "supabase", NULL };
static const char *const commit_values[] = { "async", "sync", NULL };
static const char *const level_values[] = { "debug", "info", "warn", "error", NULL };
static const char *const alg_values[] = { "HS256", "HS384", "HS512", "RS256",
	"RS384", "RS512", "ES256", "ES384", "ES512", NULL };

#define F(field) offsetof(struct config, field)
#define MiB (1024LL * 1024)

static const struct cfg_entry config_table[] = {
	{ "listen", CFG_STR, F(listen), "unix:/run/polaimg/polaimg.sock", 0, 0, NULL, 0, NULL,
	  "FastCGI socket: unix:/path or 127.0.0.1:port; empty = the socket inherited on fd 0" },
	{ "workers", CFG_INT, F(workers), "4", 1, 256, NULL, 0, NULL,
	  "worker processes, each serving one request at a time" },
	{ "max_requests", CFG_INT, F(max_requests), "1000", 0, 100000000, NULL, 0, NULL,
	  "requests a worker serves before it is replaced; 0 = never" },
	{ "request_timeout", CFG_INT, F(request_timeout), "120", 1, 86400, NULL, 0, NULL,
	  "seconds a request may run before the master kills its worker" },
	{ "ingest_listen", CFG_STR, F(ingest_listen), "", 0, 0, NULL, 0, NULL,
	  "FastCGI socket of the ingest pool (uploads); empty = one pool serves everything" },
	{ "ingest_workers", CFG_INT, F(ingest_workers), "2", 1, 255, NULL, 0, NULL,
	  "ingest worker processes (with ingest_listen); each decodes one upload at a time" },
	{ "ingest_max_requests", CFG_INT, F(ingest_max_requests), "100", 0, 100000000, NULL, 0, NULL,
	  "requests an ingest worker serves before it is replaced; 0 = never" },
	{ "ingest_request_timeout", CFG_INT, F(ingest_request_timeout), "120", 1, 86400, NULL, 0, NULL,
	  "seconds an upload may run before the master kills its ingest worker" },
	{ "ingest_memory_limit", CFG_SIZE, F(ingest_memory_limit), "0", 0, 1024 * 1024 * MiB, NULL, 0, NULL,
	  "address space (RLIMIT_AS) of an ingest worker; 0 = 16 bytes a pixel of max_pixels + 608 MiB" },
	{ "max_uploads_per_user", CFG_INT, F(max_uploads_per_user), "2", 0, 1024, NULL, 0, NULL,
	  "uploads one user may have in flight on this host (needs the master); 0 = no limit" },
	{ "pid_file", CFG_STR, F(pid_file), "", 0, 0, NULL, 0, NULL,
	  "the master's pid, written once its sockets are open, removed at a clean exit; a live master's file refuses a second; empty = none" },
	{ "database_url", CFG_STR, F(database_url), "", 0, 0, NULL, CFG_SECRET, "DATABASE_URL",
	  "PostgreSQL connection string (libpq keyword/value or postgresql:// URI)" },
	{ "jwt_secret", CFG_STR, F(jwt_secret), "", 0, 0, NULL, CFG_SECRET, "JWT_SECRET",
	  "HMAC secret for HS256/384/512 tokens, at least 32 bytes" },
	{ "jwt_algorithm", CFG_ENUM, F(jwt_algorithm), "HS256", 0, 0, alg_values, 0, NULL,
	  "the only JWT algorithm accepted" },
	{ "jwt_public_key_file", CFG_STR, F(jwt_public_key_file), "", 0, 0, NULL, 0, NULL,
	  "PEM public key for RS*/ES* algorithms" },
	{ "jwt_require_exp", CFG_BOOL, F(jwt_require_exp), "true", 0, 0, NULL, 0, NULL,
	  "refuse tokens without an exp claim" },
	{ "jwt_trust_role_claim", CFG_BOOL, F(jwt_trust_role_claim), "false", 0, 0, NULL, 0, NULL,
	  "take the role from the token's role claim instead of the users table" },
	{ "storage_provider", CFG_ENUM, F(storage_provider), "local", 0, 0, provider_values, 0,
	  "STORAGE_PROVIDER", "where images are stored" },
	{ "storage_dir", CFG_STR, F(storage_dir), "/var/lib/polaimg/store", 0, 0, NULL, 0, NULL,
	  "local storage root (storage_provider = local)" },
	{ "url_signing_key", CFG_STR, F(url_signing_key), "", 0, 0, NULL, CFG_SECRET, NULL,
	  "HMAC key for this service's own signed URLs, at least 32 bytes" },
	{ "offload", CFG_ENUM, F(offload), "nginx", 0, 0, offload_values, 0, NULL,
	  "who sends image bytes: nginx (X-Accel-Redirect), apache (X-Sendfile) or none" },
	{ "offload_prefix", CFG_STR, F(offload_prefix), "/_polaimg/", 0, 0, NULL, 0, NULL,
	  "the internal nginx location that maps to storage_dir" },
	{ "public_base_url", CFG_STR, F(public_base_url), "", 0, 0, NULL, 0, NULL,
	  "scheme://host[:port] put in front of the URLs this service hands out" },
	{ "allowed_origins", CFG_STR, F(allowed_origins), "", 0, 0, NULL, 0, NULL,
	  "origins (scheme://host[:port], comma/space separated) whose pages may send unsafe requests with the cookie; empty = the request's own" },
	{ "body_file_dir", CFG_STR, F(body_file_dir), "", 0, 0, NULL, 0, NULL,
	  "directory of request bodies nginx hands over by path; empty = off" },
	{ "storage_bucket", CFG_STR, F(storage_bucket), "", 0, 0, NULL, 0, "STORAGE_BUCKET",
	  "bucket name (s3, supabase)" },
	{ "storage_region", CFG_STR, F(storage_region), "us-east-1", 0, 0, NULL, 0, "STORAGE_REGION",
	  "S3 region" },
	{ "storage_endpoint", CFG_STR, F(storage_endpoint), "", 0, 0, NULL, 0, "STORAGE_ENDPOINT",
	  "S3-compatible endpoint URL; empty = AWS" },
	{ "storage_access_key_id", CFG_STR, F(storage_access_key_id), "", 0, 0, NULL, CFG_SECRET,
	  "STORAGE_ACCESS_KEY_ID", "S3 access key id" },
	{ "storage_secret_access_key", CFG_STR, F(storage_secret_access_key), "", 0, 0, NULL,
	  CFG_SECRET, "STORAGE_SECRET_ACCESS_KEY", "S3 secret access key" },
	{ "storage_force_path_style", CFG_BOOL, F(storage_force_path_style), "false", 0, 0, NULL, 0,
	  NULL, "address the bucket as <endpoint>/<bucket> instead of <bucket>.<host>" },
	{ "storage_timeout", CFG_INT, F(storage_timeout), "30", 1, 3600, NULL, 0, NULL,
	  "seconds: S3, one operation with its retries; Supabase, each attempt (up to 3) and a transfer's longest stall" },
	{ "supabase_url", CFG_STR, F(supabase_url), "", 0, 0, NULL, 0, "SUPABASE_URL",
	  "Supabase project URL (storage_provider = supabase)" },
	{ "supabase_service_key", CFG_STR, F(supabase_service_key), "", 0, 0, NULL, CFG_SECRET,
	  "SUPABASE_SERVICE_KEY", "Supabase service-role key" },
	{ "supabase_jwt_secret", CFG_STR, F(supabase_jwt_secret), "", 0, 0, NULL, CFG_SECRET, NULL,
	  "Supabase JWT secret: sign URLs locally; empty = ask the Storage API" },
	{ "imaging_policy_dir", CFG_STR, F(imaging_policy_dir), POLAIMG_DATADIR, 0, 0, NULL, 0, NULL,
	  "directory of polaimg's restrictive ImageMagick policy.xml" },
	{ "local_timezone", CFG_STR, F(local_timezone), "", 0, 0, NULL, 0, NULL,
	  "IANA zone (Asia/Bangkok) of EXIF capture times without an offset; empty = the host's (TZ, /etc/localtime)" },
	{ "max_upload_bytes", CFG_SIZE, F(max_upload_bytes), "52428800", 1024, 16384 * MiB, NULL, 0, NULL,
	  "largest image file accepted (suffixes k, m, g allowed)" },
	{ "max_pixels", CFG_INT, F(max_pixels), "50000000", 1, 4000000000LL, NULL, 0, NULL,
	  "largest width*height accepted, checked before decoding; sets the memory limits (16 bytes a pixel)" },
	{ "max_dicom_bytes", CFG_SIZE, F(max_dicom_bytes), "536870912", 1024, 16384 * MiB, NULL, 0, NULL,
	  "largest DICOM file accepted by POST /upload or a direct upload, streamed to disk, and largest inflated data set of a deflated one (suffixes k, m, g allowed)" },
	{ "max_frames", CFG_INT, F(max_frames), "1024", 1, 100000, NULL, 0, NULL,
	  "most frames (NumberOfFrames) of a DICOM file, checked before decoding" },
	{ "cache_max_age", CFG_INT, F(cache_max_age), "300", 0, 31536000, NULL, 0, NULL,
	  "max-age of Cache-Control: private on image bytes" },
	{ "max_download_url_ttl", CFG_INT, F(max_download_url_ttl), "86400", 1, 604800, NULL, 0, NULL,
	  "longest lifetime of a signed download URL, seconds" },
	{ "max_upload_url_ttl", CFG_INT, F(max_upload_url_ttl), "3600", 1, 604800, NULL, 0, NULL,
	  "longest lifetime of a signed upload URL, seconds" },
	{ "delete_retention_days", CFG_INT, F(delete_retention_days), "30", 0, 36500, NULL, 0, NULL,
	  "days a deleted image's objects are kept before sweep purges them" },
	{ "audit_read_commit", CFG_ENUM, F(audit_read_commit), "async", 0, 0, commit_values, 0,
	  NULL, "audit rows of reads: async (PostgreSQL flushes them within 200 ms) or sync" },
	{ "audit_read_batch", CFG_INT, F(audit_read_batch), "32", 1, 1024, NULL, 0, NULL,
	  "audit rows of reads a worker gathers into one INSERT; 1 = each at once" },
	{ "audit_read_delay", CFG_INT, F(audit_read_delay), "100", 0, 10000, NULL, 0, NULL,
	  "ms: a worker writes its gathered audit rows once the oldest is this old, busy or idle" },
	{ "audit_retry_ms", CFG_INT, F(audit_retry_ms), "1000", 0, 60000, NULL, 0, NULL,
	  "ms a worker keeps reconnecting to write audit rows whose connection broke, before it spools them" },
	{ "audit_spool_dir", CFG_STR, F(audit_spool_dir), "/var/lib/polaimg/spool", 0, 0, NULL, 0, NULL,
	  "directory of audit.spool: audit rows kept on disk while the database is away, written once it is back" },
	{ "auth_cache_ttl", CFG_INT, F(auth_cache_ttl), "10", 0, 3600, NULL, 0, NULL,
	  "seconds a worker may keep a user, case or image it read; dropped at once on a change (NOTIFY); 0 = off" },
	{ "list_cache_size", CFG_SIZE, F(list_cache_size), "4m", 0, 1024 * MiB, NULL, 0, NULL,
	  "bytes of case-list answers a worker keeps, checked against the case's version; 0 = off" },
	{ "log_level", CFG_ENUM, F(log_level), "info", 0, 0, level_values, 0, NULL,
	  "debug, info, warn or error" },
	{ "log_file", CFG_STR, F(log_file), "", 0, 0, NULL, 0, NULL,
	  "append logs to this file (reopened on SIGUSR1); empty = standard error" },
};

#define NKEYS (sizeof(config_table) / sizeof(config_table[0]))
_Static_assert(NKEYS <= CFG_MAX_KEYS, "config.origin[] is too small");

#define SECRET_FILE_MAX 65536

static void
set_err(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

/* Appends one line (a '\n' before it unless first) to err and counts it;
 * a line that does not fit is cut, the count stays right. */
static void
add_err(char *err, size_t errsz, int *nerr, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
add_err(char *err, size_t errsz, int *nerr, const char *fmt, ...)
{
	va_list ap;
	size_t used;

	(*nerr)++;
	if (err == NULL || errsz == 0)
		return;
	used = strnlen(err, errsz - 1);
	if (used > 0 && used + 1 < errsz) {
		err[used++] = '\n';
		err[used] = '\0';
	}
	if (used + 1 >= errsz)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err + used, errsz - used, fmt, ap);
	va_end(ap);
}

static const struct cfg_entry *
cfg_find(const char *name, size_t len)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strlen(config_table[i].name) == len &&
		    strncmp(config_table[i].name, name, len) == 0)
			return &config_table[i];
	return NULL;
}

/* 1 if key (keylen bytes) names a setting, or <setting>_file of a secret. */
static int
cfg_known(const char *key, size_t keylen)
{
	const struct cfg_entry *e = cfg_find(key, keylen);

	if (e == NULL && keylen > 5 && strncmp(key + keylen - 5, "_file", 5) == 0) {
		e = cfg_find(key, keylen - 5);
		return e != NULL && (e->flags & CFG_SECRET) != 0;
	}
	return e != NULL;
}

/* Parses a size: digits with an optional k/m/g suffix (binary). */
static int
parse_size(const char *s, long long *out)
{
	char buf[32];
	size_t n = strlen(s);
	long long mult = 1, v;

	if (n == 0 || n >= sizeof(buf))
		return 0;
	memcpy(buf, s, n + 1);
	switch (tolower((unsigned char)buf[n - 1])) {
	case 'k': mult = 1024; break;
	case 'm': mult = 1024 * 1024; break;
	case 'g': mult = 1024LL * 1024 * 1024; break;
	default: break;
	}
	if (mult != 1)
		buf[n - 1] = '\0';
	/* The bound applies to the product: "22222222222249m" must not
	 * overflow (found by tests/fuzz/fuzz_config.c). */
	if (!val_int(buf, 0, ((long long)1 << 50) / mult, &v))
		return 0;
	*out = v * mult;
	return 1;
}

/*
 * 1 if name is a zone of the system's time zone database: an IANA name
 * ("Asia/Bangkok", "UTC") of letters, digits, '_', '+', '-' and '/' (no
 * '.', so never outside the directory), whose file under $TZDIR (default
 * /usr/share/zoneinfo) is a TZif file. glibc would take any other TZ value
 * for a POSIX rule ("Bangkok" is UTC with the abbreviation "Ban") and say
 * nothing: a misspelt zone must stop the service instead.
 */
int
cfg_zone_valid(const char *name)
{
	const char *dir = getenv("TZDIR");
	char path[512], magic[4];
	size_t n = strlen(name);
	int fd, ok;
	ssize_t got;

	if (n == 0 || n > 200 || name[0] == '/' || name[n - 1] == '/' ||
	    strstr(name, "//") != NULL)
		return 0;
	for (const char *p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("_+-/", *p) == NULL)
			return 0;
	if (dir == NULL || dir[0] != '/')
		dir = "/usr/share/zoneinfo";
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ELOOP)   /* zoneinfo links, e.g. UTC -> Etc/UTC */
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	got = read(fd, magic, sizeof(magic));
	ok = got == (ssize_t)sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
	(void)close(fd);
	return ok;
}

/* Stores value into the field of e, validated. 0 ok, -1 with err set. */
static int
cfg_set(struct config *cfg, const struct cfg_entry *e, const char *value,
    const char *where, char *err, size_t errsz)
{
	void *field = (char *)cfg + e->offset;
	long long v;
	int b;
	bool t;
	char *copy;

	switch (e->type) {
	case CFG_STR:
	case CFG_ENUM:
		if (e->type == CFG_ENUM) {
			int found = 0;
			for (const char *const *p = e->values; *p != NULL; p++)
				if (strcasecmp(*p, value) == 0) {
					value = *p;  /* canonical spelling */
					found = 1;
				}
			if (!found) {
				set_err(err, errsz, "%s: %s: invalid value \"%s\"",
				    where, e->name, value);
				return -1;
			}
		}
		if (strlen(value) > 4096) {
			set_err(err, errsz, "%s: %s: value too long", where, e->name);
			return -1;
		}
		copy = strdup(value);
		if (copy == NULL) {
			set_err(err, errsz, "out of memory");
			return -1;
		}
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	case CFG_INT:
	case CFG_SIZE:
		if (e->type == CFG_INT ? !val_int(value, e->min, e->max, &v) :
		    !parse_size(value, &v) || v < e->min || v > e->max) {
			set_err(err, errsz, "%s: %s: \"%s\" is not a whole number "
			    "from %lld to %lld", where, e->name, value, e->min, e->max);
			return -1;
		}
		*(long long *)field = v;
		return 0;
	case CFG_BOOL:
		b = val_bool(value, &t) ? t : -1;
		if (b < 0) {
			if (strcmp(value, "1") == 0 || strcasecmp(value, "yes") == 0 ||
			    strcasecmp(value, "on") == 0)
				b = 1;
			else if (strcmp(value, "0") == 0 || strcasecmp(value, "no") == 0 ||
			    strcasecmp(value, "off") == 0)
				b = 0;
			else {
				set_err(err, errsz, "%s: %s: \"%s\" is not true or false",
				    where, e->name, value);
				return -1;
			}
		}
		*(int *)field = b;
		return 0;
	}
	return -1;
}

/* Reads a secret from a file: bounded, trailing newlines removed. */
static int
read_secret_file(const char *path, char **out)
{
	int fd = -1, rc = -1;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	buf = malloc(SECRET_FILE_MAX + 1);
	if (buf == NULL)
		goto out;
	while ((n = read(fd, buf + len, SECRET_FILE_MAX - len)) > 0) {
		len += (size_t)n;
		if (len == SECRET_FILE_MAX)
			goto out;   /* too large to be a secret */
	}
	if (n < 0)
		goto out;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Applies "key" or "key_file" = value from a file line or the environment. */
static int
cfg_apply(struct config *cfg, const char *key, size_t keylen, const char *value,
    enum cfg_origin origin, const char *where, char *err, size_t errsz)
{
	const struct cfg_entry *e = cfg_find(key, keylen);
	char *secret = NULL;
	int rc;

	if (e == NULL && keylen > 5 && strncmp(key + keylen - 5, "_file", 5) == 0) {
		e = cfg_find(key, keylen - 5);
		if (e == NULL || !(e->flags & CFG_SECRET)) {
			set_err(err, errsz, "%s: unknown key \"%.*s\"", where,
			    (int)keylen, key);
			return -1;
		}
		if (read_secret_file(value, &secret) != 0) {
			set_err(err, errsz, "%s: %.*s: cannot read \"%s\" (or it is "
			    "over 64 KiB)", where, (int)keylen, key, value);
			return -1;
		}
		rc = cfg_set(cfg, e, secret, where, err, errsz);
		explicit_bzero(secret, strlen(secret));
		free(secret);
	} else if (e == NULL) {
		set_err(err, errsz, "%s: unknown key \"%.*s\"", where, (int)keylen, key);
		return -1;
	} else {
		rc = cfg_set(cfg, e, value, where, err, errsz);
	}
	if (rc == 0)
		cfg->origin[e - config_table] = (unsigned char)origin;
	return rc;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Parses the text of a config file. */
static int
cfg_parse_text(struct config *cfg, const char *text, const char *name,
    char *err, size_t errsz)
{
	const char *line = text;
	int lineno = 0;
	char where[300], value[4100];

	while (*line != '\0') {
		const char *end = strchr(line, '\n');
		const char *p = line, *key, *keyend, *v, *vend;
		size_t vlen;

		if (end == NULL)
			end = line + strlen(line);
		lineno++;
		(void)snprintf(where, sizeof(where), "%s:%d", name, lineno);
		while (p < end && is_space(*p))
			p++;
		if (p == end || *p == '#')
			goto next;
		key = p;
		while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
			p++;
		keyend = p;
		while (p < end && is_space(*p))
			p++;
		if (keyend == key || p == end || *p != '=') {
			set_err(err, errsz, "%s: expected \"key = value\"", where);
			return -1;
		}
		p++;
		while (p < end && is_space(*p))
			p++;
		v = p;
		vend = end;
		while (vend > v && is_space(vend[-1]))
			vend--;
		if (vend - v >= 2 && *v == '"' && vend[-1] == '"') {
			v++;
			vend--;
		} else {
			/* An unquoted value ends at a " #" comment. */
			for (const char *q = v; q < vend; q++)
				if (*q == '#' && q > v && is_space(q[-1])) {
					vend = q;
					while (vend > v && is_space(vend[-1]))
						vend--;
					break;
				}
		}
		vlen = (size_t)(vend - v);
		if (vlen >= sizeof(value)) {
			set_err(err, errsz, "%s: value too long", where);
			return -1;
		}
		memcpy(value, v, vlen);
		value[vlen] = '\0';
		if (memchr(value, '\0', vlen) != NULL) {
			set_err(err, errsz, "%s: NUL byte in value", where);
			return -1;
		}
		if (cfg_apply(cfg, key, (size_t)(keyend - key), value, ORIGIN_FILE,
		    where, err, errsz) != 0)
			return -1;
next:
		line = *end == '\0' ? end : end + 1;
	}
	return 0;
}

/* Environment overrides: POLAIMG_<KEY>[_FILE], then the PolaCare aliases
 * for keys not set by a POLAIMG_ variable. POLAIMG_CONFIG names the file. */
static int
cfg_apply_env(struct config *cfg, char *const *envp, char *err, size_t errsz)
{
	char key[128], where[160];

	if (envp == NULL)
		return 0;
	for (char *const *ep = envp; *ep != NULL; ep++) {
		const char *eq = strchr(*ep, '=');
		size_t klen;

		if (eq == NULL || strncmp(*ep, "POLAIMG_", 8) != 0)
			continue;
		klen = (size_t)(eq - *ep) - 8;
		if (klen == 0 || klen >= sizeof(key))
			continue;
		for (size_t i = 0; i < klen; i++)
			key[i] = (char)tolower((unsigned char)(*ep)[8 + i]);
		key[klen] = '\0';
		if (strcmp(key, "config") == 0)
			continue;
		(void)snprintf(where, sizeof(where), "environment %.*s",
		    (int)(eq - *ep), *ep);
		/* A POLAIMG_ variable that names no key is someone else's
		 * (a script's POLAIMG_BIN): warned about, not fatal. The
		 * file stays strict: a typo there is ours. */
		if (!cfg_known(key, klen)) {
			fprintf(stderr, "polaimg: warning: %s: not a polaimg "
			    "key; ignored\n", where);
			continue;
		}
		if (cfg_apply(cfg, key, klen, eq + 1, ORIGIN_ENV, where, err,
		    errsz) != 0)
			return -1;
	}
	for (size_t i = 0; i < NKEYS; i++) {
		const struct cfg_entry *e = &config_table[i];
		size_t alen;

		if (e->alias == NULL || cfg->origin[i] == ORIGIN_ENV)
			continue;
		alen = strlen(e->alias);
		for (char *const *ep = envp; *ep != NULL; ep++) {
			if (strncmp(*ep, e->alias, alen) != 0 || (*ep)[alen] != '=')
				continue;
			(void)snprintf(where, sizeof(where), "environment %s", e->alias);
			if (cfg_set(cfg, e, *ep + alen + 1, where, err, errsz) != 0)
				return -1;
			cfg->origin[i] = ORIGIN_ENV;
		}
	}
	return 0;
}

/* Checks the combination of values once everything is loaded. Every
 * problem is reported, one line each in err (an operator fixes them all in
 * one go); returns 0 or PI_ERR_INVALID. */
static int
cfg_check(struct config *cfg, char *err, size_t errsz)
{
	size_t n;
	int nerr = 0;

	if (errsz > 0)
		err[0] = '\0';

	if (strcmp(cfg->offload, "nginx") == 0)
		cfg->offload_mode = OFFLOAD_NGINX;
	else if (strcmp(cfg->offload, "apache") == 0)
		cfg->offload_mode = OFFLOAD_APACHE;
	else
		cfg->offload_mode = OFFLOAD_NONE;
	if (cfg->database_url[0] == '\0') {
		add_err(err, errsz, &nerr, "database_url: not set (or DATABASE_URL)");
	}
	if (cfg->jwt_algorithm[0] == 'H') {
		/* RFC 7518 §3.2: at least the hash's length (auth.c checks
		 * the same when a worker loads it). */
		size_t min = strcmp(cfg->jwt_algorithm, "HS512") == 0 ? 64 :
		    strcmp(cfg->jwt_algorithm, "HS384") == 0 ? 48 : 32;

		if (strlen(cfg->jwt_secret) < min)
			add_err(err, errsz, &nerr, "jwt_secret: must be at least "
			    "%zu bytes for %s (it has %zu)", min,
			    cfg->jwt_algorithm, strlen(cfg->jwt_secret));
	}
	if (cfg->jwt_algorithm[0] != 'H' && cfg->jwt_public_key_file[0] == '\0') {
		add_err(err, errsz, &nerr, "jwt_public_key_file: required for %s",
		    cfg->jwt_algorithm);
	}
	if (strlen(cfg->url_signing_key) < 32) {
		add_err(err, errsz, &nerr, "url_signing_key: must be at least 32 bytes");
	}
	if (strcmp(cfg->storage_provider, "local") == 0 &&
	    cfg->storage_dir[0] != '/') {
		add_err(err, errsz, &nerr, "storage_dir: must be an absolute path");
	}
	if (strcmp(cfg->storage_provider, "s3") == 0 &&
	    (cfg->storage_bucket[0] == '\0' || cfg->storage_access_key_id[0] == '\0' ||
	    cfg->storage_secret_access_key[0] == '\0')) {
		add_err(err, errsz, &nerr, "storage_bucket, storage_access_key_id and "
		    "storage_secret_access_key: required for storage_provider = s3");
	}
	if (strcmp(cfg->storage_provider, "supabase") == 0 &&
	    (cfg->storage_bucket[0] == '\0' || cfg->supabase_url[0] == '\0' ||
	    cfg->supabase_service_key[0] == '\0')) {
		add_err(err, errsz, &nerr, "storage_bucket, supabase_url and supabase_service_key: "
		    "required for storage_provider = supabase");
	}
	n = strlen(cfg->offload_prefix);
	if (n < 2 || cfg->offload_prefix[0] != '/' || cfg->offload_prefix[n - 1] != '/') {
		add_err(err, errsz, &nerr, "offload_prefix: must start and end with '/'");
	}
	n = strlen(cfg->public_base_url);
	if (n > 0 && ((strncmp(cfg->public_base_url, "http://", 7) != 0 &&
	    strncmp(cfg->public_base_url, "https://", 8) != 0) ||
	    cfg->public_base_url[n - 1] == '/')) {
		add_err(err, errsz, &nerr, "public_base_url: must be http(s)://host[:port] "
		    "without a trailing '/'");
	}
	if (cfg->local_timezone[0] != '\0' && !cfg_zone_valid(cfg->local_timezone)) {
		set_err(err, errsz, "local_timezone: \"%.100s\" is not a time zone "
		    "of the system's database (an IANA name such as Asia/Bangkok)",
		    cfg->local_timezone);
		return -1;
	}
	{
		const char *bad = NULL;
		size_t badlen = 0;

		if (!auth_origins_valid(cfg->allowed_origins, &bad, &badlen)) {
			add_err(err, errsz, &nerr, "allowed_origins: '%.*s' is not "
			    "http(s)://host[:port]", (int)(badlen > 200 ? 200 : badlen),
			    bad);
		}
	}
	if (cfg->body_file_dir[0] != '\0' && cfg->body_file_dir[0] != '/') {
		add_err(err, errsz, &nerr, "body_file_dir: must be an absolute path");
	}
	if (cfg->audit_spool_dir[0] != '\0' && (cfg->audit_spool_dir[0] != '/' ||
	    strlen(cfg->audit_spool_dir) > 1024)) {
		add_err(err, errsz, &nerr, "audit_spool_dir: must be an absolute path "
		    "(at most 1024 bytes) or empty");
	}
	if (cfg->listen[0] != '\0' && strncmp(cfg->listen, "unix:/", 6) != 0 &&
	    strchr(cfg->listen, ':') == NULL) {
		add_err(err, errsz, &nerr, "listen: must be unix:/path or host:port");
	}
	if (cfg->ingest_listen[0] != '\0' &&
	    strncmp(cfg->ingest_listen, "unix:/", 6) != 0 &&
	    strchr(cfg->ingest_listen, ':') == NULL) {
		add_err(err, errsz, &nerr, "ingest_listen: must be unix:/path or host:port");
	}
	if (cfg->ingest_listen[0] != '\0' &&
	    strcmp(cfg->ingest_listen, cfg->listen) == 0) {
		add_err(err, errsz, &nerr, "ingest_listen: must differ from listen");
	}
	if (cfg->ingest_listen[0] != '\0' &&
	    cfg->workers + cfg->ingest_workers > 256) {
		add_err(err, errsz, &nerr, "ingest_workers: workers + ingest_workers "
		    "must be at most 256");
	}
	return nerr > 0 ? PI_ERR_INVALID : 0;
}

static int
cfg_defaults(struct config *cfg, char *err, size_t errsz)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++)
		if (cfg_set(cfg, &config_table[i], config_table[i].def, "default",
		    err, errsz) != 0)
			return -1;
	return 0;
}

/*
 * A binary run from its build tree (`make` without `make install`) has no
 * $prefix/share/polaimg/policy.xml; with imaging_policy_dir at its default
 * and that file absent, the tree's own conf/ is used when this program is
 * the one built in POLAIMG_TREE_BUILDDIR (an installed copy never is). An
 * explicit imaging_policy_dir is always taken as it is.
 */
static int
cfg_tree_policy(struct config *cfg, char *err, size_t errsz)
{
	static const char tree[] = POLAIMG_TREE_BUILDDIR "/";
	char exe[4096];
	ssize_t n;
	struct stat sb;
	const struct cfg_entry *e = cfg_find("imaging_policy_dir",
	    strlen("imaging_policy_dir"));

	if (e == NULL || cfg->origin[e - config_table] != ORIGIN_DEFAULT ||
	    stat(POLAIMG_DATADIR "/policy.xml", &sb) == 0 ||
	    stat(POLAIMG_TREE_SRCDIR "/conf/policy.xml", &sb) != 0)
		return 0;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || (size_t)n >= sizeof(exe) - 1)
		return 0;
	exe[n] = '\0';
	if (strncmp(exe, tree, sizeof(tree) - 1) != 0)
		return 0;
	if (realpath(POLAIMG_TREE_SRCDIR "/conf", exe) == NULL)
		return 0;
	return cfg_set(cfg, e, exe, "build tree", err, errsz);
}

/* cfg_load_string(), and with problems != NULL: the checks of the
 * combination (cfg_check) write their lines into problems instead of
 * failing the load. */
static int
cfg_load_text(struct config *cfg, const char *text, const char *name,
    char *const *envp, char *err, size_t errsz, char *problems, size_t psz)
{
	int rc = PI_ERR_INVALID;

	if (cfg_defaults(cfg, err, errsz) != 0)
		goto fail;
	cfg->source = strdup(name != NULL ? name : "");
	if (cfg->source == NULL) {
		set_err(err, errsz, "out of memory");
		rc = PI_ERR_NOMEM;
		goto fail;
	}
	if (text != NULL && cfg_parse_text(cfg, text, name, err, errsz) != 0)
		goto fail;
	if (cfg_apply_env(cfg, envp, err, errsz) != 0)
		goto fail;
	if (cfg_tree_policy(cfg, err, errsz) != 0)
		goto fail;
	if (problems != NULL)
		(void)cfg_check(cfg, problems, psz);
	else if (cfg_check(cfg, err, errsz) != 0)
		goto fail;
	return 0;
fail:
	cfg_free(cfg);
	return rc;
}

int
cfg_load_string(struct config *cfg, const char *text, const char *name,
    char *const *envp, char *err, size_t errsz)
{
	return cfg_load_text(cfg, text, name, envp, err, errsz, NULL, 0);
}

int
cfg_load(struct config *cfg, const char *path, char *const *envp, char *err,
    size_t errsz)
{
	return cfg_load_all(cfg, path, envp, err, errsz, NULL, 0);
}

int
cfg_load_all(struct config *cfg, const char *path, char *const *envp,
    char *err, size_t errsz, char *problems, size_t psz)
{
	int fd = -1, rc = PI_ERR_IO, optional = 0;
	char *text = NULL;
	struct stat st;
	size_t len = 0;
	ssize_t n;

	if (path == NULL && envp != NULL)
		for (char *const *ep = envp; *ep != NULL; ep++)
			if (strncmp(*ep, "POLAIMG_CONFIG=", 15) == 0)
				path = *ep + 15;
	if (path == NULL) {
		path = CFG_DEFAULT_PATH;
		optional = 1;  /* an environment-only setup needs no file */
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (optional && errno == ENOENT) {
			rc = cfg_load_text(cfg, NULL, "", envp, err, errsz,
			    problems, psz);
			goto out;
		}
		set_err(err, errsz, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 1024 * 1024) {
		set_err(err, errsz, "%s: not a regular file of at most 1 MiB", path);
		rc = PI_ERR_INVALID;
		goto out;
	}
	text = malloc((size_t)st.st_size + 1);
	if (text == NULL) {
		set_err(err, errsz, "out of memory");
		rc = PI_ERR_NOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size &&
	    (n = read(fd, text + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	text[len] = '\0';
	if (strlen(text) != len) {
		set_err(err, errsz, "%s: contains a NUL byte", path);
		rc = PI_ERR_INVALID;
		goto out;
	}
	rc = cfg_load_text(cfg, text, path, envp, err, errsz, problems,
	    psz);
out:
	free(text);
	if (fd >= 0)
		close(fd);
	return rc;
}

void
cfg_free(struct config *cfg)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct cfg_entry *e = &config_table[i];

		if (e->type == CFG_STR || e->type == CFG_ENUM) {
			char **f = (char **)((char *)cfg + e->offset);

			if (*f != NULL && (e->flags & CFG_SECRET))
				explicit_bzero(*f, strlen(*f));
			free(*f);
			*f = NULL;
		}
	}
	free(cfg->source);
	cfg->source = NULL;
}

static const char *const origin_names[] = { "default", "file", "environment" };

void
cfg_print(const struct config *cfg, FILE *out)
{
	fprintf(out, "# polaimg effective configuration (file: %s)\n",
	    cfg->source != NULL && cfg->source[0] != '\0' ? cfg->source : "none");
	for (size_t i = 0; i < NKEYS; i++) {
		const struct cfg_entry *e = &config_table[i];
		const void *f = (const char *)cfg + e->offset;
		const char *from = origin_names[cfg->origin[i] % 3];

		switch (e->type) {
		case CFG_STR:
		case CFG_ENUM: {
			const char *s = *(char *const *)f;

			if ((e->flags & CFG_SECRET) && s[0] != '\0')
				fprintf(out, "%s = ******** (%zu bytes)  # %s\n",
				    e->name, strlen(s), from);
			else
				fprintf(out, "%s = %s  # %s\n", e->name, s, from);
			break;
		}
		case CFG_INT:
		case CFG_SIZE:
			fprintf(out, "%s = %lld  # %s\n", e->name,
			    *(const long long *)f, from);
			break;
		case CFG_BOOL:
			fprintf(out, "%s = %s  # %s\n", e->name,
			    *(const int *)f ? "true" : "false", from);
			break;
		}
	}
}

void
cfg_describe(FILE *out)
{
	static const char *const types[] = { "string", "integer", "size",
		"boolean", "one of" };

	for (size_t i = 0; i < NKEYS; i++) {
		const struct cfg_entry *e = &config_table[i];

		fprintf(out, "%s\t%s", e->name, types[e->type]);
		if (e->type == CFG_ENUM)
			for (const char *const *p = e->values; *p != NULL; p++)
				fprintf(out, "%s%s", p == e->values ? " " : "|", *p);
		fprintf(out, "\t%s\t%s%s%s%s\n", e->def[0] ? e->def : "\"\"", e->help,
		    (e->flags & CFG_SECRET) ? " (secret; also <key>_file)" : "",
		    e->alias ? "; env " : "", e->alias ? e->alias : "");
	}
}
