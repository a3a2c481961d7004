/* unit_util.h — set-up shared by the unit tests that need real local
 * storage (test_storage_local.c, test_ingest.c). Header-only, like tap.h,
 * whose counters it reports to: include tap.h first.
 */
#ifndef POLAIMG_UNIT_UTIL_H
#define POLAIMG_UNIT_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "storage.h"
#include "tap.h"

/* A key of 32 bytes for jwt_secret and url_signing_key. */
#define UNIT_SECRET "0123456789abcdef0123456789abcdef"

/* Loads into cfg a configuration with local storage under storage_dir (and
 * a database that is never reached) and opens the storage: one ok() named
 * cfg_name for the configuration, one named open_name for storage_open().
 * Returns the storage (storage_close(), then cfg_free(cfg)), or NULL after
 * printing the reason as a TAP comment, cfg then freed or never loaded. */
static inline struct storage *
unit_local_storage(struct config *cfg, const char *storage_dir,
    const char *cfg_name, const char *open_name)
{
	char *env0[] = { NULL };
	char text[1024], err[256];
	struct storage *st;

	(void)snprintf(text, sizeof(text), "database_url = host=/tmp dbname=x\n"
	    "jwt_secret = " UNIT_SECRET "\nurl_signing_key = " UNIT_SECRET "\n"
	    "storage_provider = local\nstorage_dir = %s\n", storage_dir);
	if (!ok(cfg_load_string(cfg, text, "test.conf", env0, err,
	    sizeof(err)) == 0, cfg_name)) {
		printf("# %s\n", err);
		return NULL;
	}
	st = storage_open(cfg, err, sizeof(err));
	if (!ok(st != NULL, open_name)) {
		printf("# %s\n", err);
		cfg_free(cfg);
		return NULL;
	}
	return st;
}

/* The number of entries of dir besides . and .., or -1. */
static inline int
unit_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

#endif
