/* config.h — polaimg's settings: one table, one struct.
 *
 * Every setting is declared once in config_table[] (config.c) with its type,
 * default, bounds and flags; the file parser, the environment overrides,
 * `polaimg check-config` and the man page's list all walk that table.
 */
#ifndef POLAIMG_CONFIG_H
#define POLAIMG_CONFIG_H

#include <stdio.h>

#define CFG_DEFAULT_PATH POLAIMG_SYSCONFDIR "/polaimg/polaimg.conf"

#define CFG_MAX_KEYS 64

enum offload_mode { OFFLOAD_NONE = 0, OFFLOAD_NGINX, OFFLOAD_APACHE };

struct config {
	/* processes */
	char *listen;
	long long workers;
	long long max_requests;
	long long request_timeout;
	char *ingest_listen;         /* "" = no ingest pool */
	long long ingest_workers;
	long long ingest_max_requests;
	long long ingest_request_timeout;
	long long ingest_memory_limit;   /* bytes; 0 = worker_ingest_memory() */
	long long max_uploads_per_user;
	char *pid_file;              /* "" = none */
	/* database */
	char *database_url;
	/* authentication */
	char *jwt_secret;
	char *jwt_algorithm;
	char *jwt_public_key_file;
	int jwt_require_exp;
	int jwt_trust_role_claim;
	/* storage */
	char *storage_provider;
	char *storage_dir;
	char *url_signing_key;
	char *offload;
	char *offload_prefix;
	char *public_base_url;
	char *allowed_origins;
	char *body_file_dir;
	/* S3-compatible storage */
	char *storage_bucket;
	char *storage_region;
	char *storage_endpoint;
	char *storage_access_key_id;
	char *storage_secret_access_key;
	int storage_force_path_style;
	long long storage_timeout;
	/* Supabase storage */
	char *supabase_url;
	char *supabase_service_key;
	char *supabase_jwt_secret;
	/* images */
	char *imaging_policy_dir;
	/* limits */
	long long max_upload_bytes;
	long long max_pixels;
	long long max_dicom_bytes;
	long long max_frames;
	long long cache_max_age;
	long long max_download_url_ttl;
	long long max_upload_url_ttl;
	long long delete_retention_days;
	char *audit_read_commit;
	long long audit_read_batch;
	long long audit_read_delay;
	char *audit_spool_dir;
	long long audit_retry_ms;
	long long list_cache_size;
	long long auth_cache_ttl;
	/* logging */
	char *log_level;
	char *log_file;
	char *local_timezone;        /* "" = the host's zone */

	/* derived after loading */
	enum offload_mode offload_mode;
	char *source;            /* the file read, or "" */
	unsigned char origin[CFG_MAX_KEYS]; /* enum cfg_origin per table row */
};

/* Loads the configuration: defaults, then the file at path (NULL: the
 * POLAIMG_CONFIG environment variable, else CFG_DEFAULT_PATH if it exists),
 * then environment overrides from envp (POLAIMG_<KEY>, POLAIMG_<KEY>_FILE for
 * secrets, and the PolaCare names of config_table[]'s alias column:
 * DATABASE_URL, JWT_SECRET, STORAGE_PROVIDER, STORAGE_BUCKET, STORAGE_REGION,
 * STORAGE_ENDPOINT, STORAGE_ACCESS_KEY_ID, STORAGE_SECRET_ACCESS_KEY,
 * SUPABASE_URL, SUPABASE_SERVICE_KEY; a POLAIMG_ variable wins).
 * Validates every value and the combination. Returns 0, or with a message
 * naming the key in err (every problem of the combination, one a line; cfg
 * is then empty) PI_ERR_INVALID (a value, the combination, a file that is
 * not a text file of at most 1 MiB), PI_ERR_IO (the file cannot be opened)
 * or PI_ERR_NOMEM. Free with cfg_free(). */
int cfg_load(struct config *cfg, const char *path, char *const *envp,
    char *err, size_t errsz);

/* cfg_load(), for check-config: a file that parses is loaded (0; free it
 * with cfg_free()) even when the combination of values is wrong; those
 * problems are the '\n'-separated lines of problems ("" when none).
 * Parse errors fail as in cfg_load(). */
int cfg_load_all(struct config *cfg, const char *path, char *const *envp,
    char *err, size_t errsz, char *problems, size_t psz);

/* Same as cfg_load, but from a string instead of a file (tests); name is
 * for messages. Returns 0, PI_ERR_INVALID or PI_ERR_NOMEM. */
int cfg_load_string(struct config *cfg, const char *text, const char *name,
    char *const *envp, char *err, size_t errsz);

void cfg_free(struct config *cfg);

/* 1 if name is a zone of the system's time zone database (local_timezone):
 * an IANA name whose file under $TZDIR or /usr/share/zoneinfo is TZif. */
int cfg_zone_valid(const char *name);

/* Prints the effective configuration, one "key = value" a line, secrets
 * masked, with where each value came from as a comment. */
void cfg_print(const struct config *cfg, FILE *out);

/* Prints every key with its type, default and description (for the manual). */
void cfg_describe(FILE *out);

#endif
