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

	/* derived after loading */
	enum offload_mode offload_mode;
	char *source;            /* the file read, or "" */
	unsigned char origin[CFG_MAX_KEYS]; /* enum cfg_origin per table row */
};

/* Loads the configuration: defaults, then the file at path (NULL: the
 * POLAIMG_CONFIG environment variable, else CFG_DEFAULT_PATH if it exists),
 * then environment overrides from envp (POLAIMG_<KEY>, POLAIMG_<KEY>_FILE for
 * secrets, and the PolaCare names DATABASE_URL, JWT_SECRET, STORAGE_PROVIDER).
 * Validates every value and the combination. On failure returns -1 with a
 * message naming the key in err; cfg is then empty. Free with cfg_free(). */
int cfg_load(struct config *cfg, const char *path, char *const *envp,
    char *err, size_t errsz);

/* Same, but from a string instead of a file (tests); name is for messages. */
int cfg_load_string(struct config *cfg, const char *text, const char *name,
    char *const *envp, char *err, size_t errsz);

void cfg_free(struct config *cfg);

/* Prints the effective configuration, one "key = value" a line, secrets
 * masked, with where each value came from as a comment. */
void cfg_print(const struct config *cfg, FILE *out);

/* Prints every key with its type, default and description (for the manual). */
void cfg_describe(FILE *out);

#endif
