/* storage.h — the storage back-end interface.
 *
 * Handlers never know which back end is configured: they call the storage_*
 * functions below, which dispatch through a struct storage_ops (like redis's
 * ConnectionType). Keys are "cases/<case>/<image>/<object>" and never carry
 * patient data. Every back end guarantees: a put never overwrites an
 * existing object (PI_ERR_EXISTS), and an object is either absent or
 * complete — never half-written under its final key.
 */
#ifndef POLAIMG_STORAGE_H
#define POLAIMG_STORAGE_H

#include <stdint.h>
#include <time.h>

struct config;
struct storage;

struct storage_stat {
	int64_t size;
	time_t mtime;
	/* The media type the store keeps with the object and serves it with
	 * ("" when the back end keeps none, or when the upload URL signs it so
	 * that it cannot differ from the one it was issued for: local, S3). */
	char content_type[128];
};

/* Called for each object key by storage_list(); return non-zero to stop. */
typedef int (*storage_list_cb)(void *ud, const char *key, time_t mtime);

struct storage_ops {
	const char *name;            /* "local", "s3", "supabase" */
	/* Stores the local file src_path under key; src_path is consumed
	 * (moved or deleted) on success and left in place on failure. */
	int (*put_file)(struct storage *st, const char *key, const char *src_path,
	    const char *content_type);
	int (*stat)(struct storage *st, const char *key, struct storage_stat *out);
	/* Copies the object to the local file dst_path (created, 0600). */
	int (*fetch)(struct storage *st, const char *key, const char *dst_path);
	/* Removes key; an absent key is success. */
	int (*del)(struct storage *st, const char *key);
	/* Lists keys under prefix. */
	int (*list)(struct storage *st, const char *prefix, storage_list_cb cb,
	    void *ud);
	/* A URL a client can use directly: method "GET" or "PUT" on key for
	 * expires seconds (content_type, when not NULL, is signed and must be
	 * sent as is). malloc'd; the caller frees it. NULL for a back end that
	 * has no URLs of its own (local: polaimg signs its own). */
	char *(*presign)(struct storage *st, const char *method, const char *key,
	    const char *content_type, int64_t expires);
	/* When a URL made by presign lives less long than asked (a store
	 * that picks the lifetime itself): 0 with *exp, the unix time it
	 * expires; PI_ERR_NOT_FOUND when the URL says nothing. NULL: the URL
	 * lives as asked. */
	int (*url_expires)(const char *url, int64_t *exp);
	/* Sends bytes start..end (inclusive) of key to cb, in order. */
	int (*stream)(struct storage *st, const char *key, long long start,
	    long long end, int (*cb)(void *ud, const char *buf, size_t n), void *ud);
	/* Is the back end usable now? 0 or PI_ERR_STORAGE. */
	int (*check)(struct storage *st);
	void (*destroy)(struct storage *st);
};

struct storage {
	const struct storage_ops *ops;
	const struct config *cfg;
	char tmp_dir[1024];          /* scratch space on the same file system */
	void *impl;
};

/* Creates the configured back end (once per worker, after fork). Makes
 * storage_dir and its .tmp directory if missing. Returns NULL with a
 * message in err. */
struct storage *storage_open(const struct config *cfg, char *err, size_t errsz);
void storage_close(struct storage *st);

/* A new empty temp file in st->tmp_dir (named as below); writes its path
 * to path (>= 1100 bytes) and returns an fd open for writing, or -1. */
int storage_tmpfile(struct storage *st, char *path, size_t pathsz);

/* Temp files are named up-<host>-<pid>-XXXXXX: the host (gethostname,
 * characters other than [A-Za-z0-9.-] as '_') and the process that writes
 * it, so that a host sharing storage_dir/.tmp (local storage on a shared
 * mount) can tell its own files, and whether their writer is gone.
 *
 * Removes from <storage_dir>/.tmp this host's temp files whose writer is
 * gone: that of process pid (pid > 0; the master, once it reaped a worker)
 * or of every process that no longer exists (pid 0; the master at start).
 * Never another host's files, nor those of a live process. Returns how many
 * were removed (>= 0), or PI_ERR_IO when the directory cannot be read
 * (absent is 0). */
int storage_tmp_reap(const char *storage_dir, long pid);

/* Is the scratch directory (st->tmp_dir) usable: a directory polaimg may
 * write to? 0 or PI_ERR_STORAGE. Every back end writes its uploads and
 * derived copies there first. */
int storage_scratch_check(const struct storage *st);

/* For local storage, the absolute path of key (for X-Sendfile and streaming).
 * Returns 0, or PI_ERR_INVALID if the back end is not local, the key is
 * not one the local back end accepts (the same check as every other
 * operation), or the path does not fit. */
int storage_local_path(const struct storage *st, const char *key, char *out,
    size_t outsz);

static inline int
storage_put_file(struct storage *st, const char *key, const char *src,
    const char *ct)
{
	return st->ops->put_file(st, key, src, ct);
}
static inline int
storage_stat(struct storage *st, const char *key, struct storage_stat *out)
{
	out->content_type[0] = '\0';
	return st->ops->stat(st, key, out);
}
static inline int
storage_fetch(struct storage *st, const char *key, const char *dst)
{
	return st->ops->fetch(st, key, dst);
}
static inline int
storage_del(struct storage *st, const char *key)
{
	return st->ops->del(st, key);
}
static inline int
storage_list(struct storage *st, const char *prefix, storage_list_cb cb, void *ud)
{
	return st->ops->list(st, prefix, cb, ud);
}
/* Health: the scratch directory, then the back end itself. */
static inline int
storage_check(struct storage *st)
{
	int rc = storage_scratch_check(st);

	return rc != 0 ? rc : st->ops->check(st);
}

extern const struct storage_ops storage_local_ops;
extern const struct storage_ops storage_s3_ops;
/* Sets up the S3 back end in st (st->cfg set; state in st->impl, freed by
 * .destroy). 0, or with a message in err PI_ERR_INVALID (the settings),
 * PI_ERR_INTERNAL (libcurl) or PI_ERR_NOMEM. */
int storage_s3_init(struct storage *st, char *err, size_t errsz);
extern const struct storage_ops storage_supabase_ops;
/* Sets up the Supabase back end in st->impl (st->cfg set, st->tmp_dir made);
 * freed by its destroy op. Returns 0, or a pi_err with a message in err. */
int storage_supabase_init(struct storage *st, char *err, size_t errsz);

#endif
