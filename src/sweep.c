/* sweep.c — `polaimg sweep` and `polaimg restore`: the storage's upkeep.
 *
 * A delete is soft (the row is marked, the objects stay); an upload stores
 * its objects a moment before its row; an upload URL may never be used; a
 * crash may leave a temp file. sweep, run from a timer (cron, the systemd
 * unit), settles all of these, each step safe to repeat and to run on any
 * host of the deployment:
 *
 * - images deleted more than delete_retention_days ago, and pending images
 *   whose upload URL expired, lose their objects; the row is kept, marked
 *   purged_at, with a "purge" audit row (db_sweep_candidates,
 *   db_image_purged). An image whose objects could not all be removed is
 *   left for the next run.
 * - objects older than an hour under a key prefix no row knows are orphans
 *   of an upload whose database write never happened, and are removed; a
 *   database error stops the walk, so nothing is removed on a guess.
 * - files in storage's temp directory older than a day are removed.
 *
 * restore undoes a delete while the image's objects exist (not after a
 * purge). Both print one line per action on standard output and exit 1
 * when anything failed — a store that could not be listed included, since
 * its orphans were then not looked for. Their audit rows name the operator
 * as "cli:<user>" (the effective user running the verb), so that the audit
 * trail says who purged or restored.
 */
#include "sweep.h"

#include <dirent.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "common.h"
#include "config.h"
#include "db.h"
#include "report.h"
#include "storage.h"
#include "validate.h"

/* --- sweep ------------------------------------------------------------- */

struct sweep {
	struct db *db;
	struct storage *st;
	struct arena *arena;
	struct report *rep;
	const char *operator;      /* "cli:<user>", the audit rows' user */
	long purged_deleted, purged_pending, orphans, temps, errors;
	time_t now;
};

/* The operator running a verb, for its audit rows: "cli:<user name>" of the
 * effective user, "cli:uid<N>" when it has no name. Fills buf; returns it. */
static const char *
sweep_operator(char *buf, size_t size)
{
	const struct passwd *pw = getpwuid(geteuid());
	int n;

	if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0')
		n = snprintf(buf, size, "cli:%s", pw->pw_name);
	else
		n = snprintf(buf, size, "cli:uid%lu", (unsigned long)geteuid());
	if (n < 0 || (size_t)n >= size)
		(void)snprintf(buf, size, "cli:uid%lu", (unsigned long)geteuid());
	return buf;
}

static const char *const object_names[] = { "original", "display.jpg",
	"display.png", "thumb.jpg", "thumb.png" };

static int
sweep_image(void *ud, const struct image *img)
{
	struct sweep *sw = ud;
	char key[300];
	struct audit ev = { .user_id = sw->operator, .action = "purge",
		.image_id = img->id, .case_id = img->case_id, .outcome = "ok",
		.request_id = "sweep" };
	int failed = 0;

	for (size_t i = 0; i < PI_ARRAY_LEN(object_names); i++) {
		if ((size_t)snprintf(key, sizeof(key), "%s/%s", img->storage_key,
		    object_names[i]) >= sizeof(key) || img->storage_key[0] == '\0')
			continue;
		if (storage_del(sw->st, key) != 0)
			failed = 1;
	}
	if (failed || db_image_purged(sw->db, img, &ev) != 0) {
		sw->errors++;
		report_problem(sw->rep, "could not purge image %s", img->id);
		return 0;
	}
	if (img->deleted)
		sw->purged_deleted++;
	else
		sw->purged_pending++;
	fprintf(sw->rep->out, "purged %s image %s\n", img->deleted ? "deleted" : "expired pending",
	    img->id);
	return 0;
}

/* Objects with no live row, older than an hour (an upload stores its
 * objects a moment before its row), are orphans. */
static int
sweep_orphan(void *ud, const char *key, time_t mtime)
{
	struct sweep *sw = ud;
	char prefix[300];
	const char *slash;
	bool known;

	slash = strrchr(key, '/');
	if (slash == NULL || (size_t)(slash - key) >= sizeof(prefix))
		return 0;
	memcpy(prefix, key, (size_t)(slash - key));
	prefix[slash - key] = '\0';
	if (sw->now - mtime < 3600)
		return 0;
	if (db_storage_key_known(sw->db, prefix, &known) != 0) {
		sw->errors++;
		report_problem(sw->rep, "database error during the orphan walk");
		return 1;    /* database gone: stop, delete nothing more */
	}
	if (!known) {
		if (storage_del(sw->st, key) == 0) {
			sw->orphans++;
			fprintf(sw->rep->out, "removed orphan object %s\n", key);
		} else {
			sw->errors++;
			report_problem(sw->rep, "could not remove orphan object %s",
			    key);
		}
	}
	return 0;
}

static void
sweep_temps(struct sweep *sw)
{
	char path[1200];
	DIR *d = opendir(sw->st->tmp_dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		struct stat sb;

		if (de->d_name[0] == '.')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", sw->st->tmp_dir,
		    de->d_name) >= sizeof(path) || lstat(path, &sb) != 0 ||
		    !S_ISREG(sb.st_mode) || sw->now - sb.st_mtime < 86400)
			continue;
		if (unlink(path) == 0)
			sw->temps++;
	}
	closedir(d);
}

int
sweep_main(const struct config *cfg, int argc, char **argv)
{
	struct sweep sw;
	struct report rep;
	char err[512], op[96];
	int rc = 1, json = 0, lrc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else {
			fprintf(stderr, "usage: polaimg sweep [--json]\n");
			return 2;
		}
	}
	memset(&sw, 0, sizeof(sw));
	if (report_init(&rep, "sweep", json) != 0) {
		fprintf(stderr, "polaimg: sweep: out of memory\n");
		return 1;
	}
	sw.rep = &rep;
	sw.operator = sweep_operator(op, sizeof(op));
	sw.now = time(NULL);
	sw.db = db_new(cfg->database_url);
	sw.arena = arena_new();
	sw.st = storage_open(cfg, err, sizeof(err));
	if (sw.st == NULL) {
		report_error(&rep, "%s", err);
		goto out;
	}
	if (sw.db == NULL || sw.arena == NULL || db_ping(sw.db) != 0) {
		report_error(&rep, "database unavailable");
		goto out;
	}
	if (db_sweep_candidates(sw.db, sw.arena, (long)cfg->delete_retention_days,
	    sweep_image, &sw) != 0) {
		report_error(&rep, "database error");
		goto out;
	}
	/* A store that cannot be listed is a failure: its orphans were not
	 * looked for (a callback's stop is counted by the callback). */
	lrc = storage_list(sw.st, "cases", sweep_orphan, &sw);
	if (lrc < 0) {
		sw.errors++;
		report_problem(&rep, "could not list the store for orphan "
		    "objects: %s", pi_strerror(lrc));
	}
	sweep_temps(&sw);
	fprintf(rep.out, "sweep: %ld deleted images purged, %ld expired pending "
	    "uploads removed, %ld orphan objects removed, %ld stale temp files "
	    "removed, %ld errors\n", sw.purged_deleted, sw.purged_pending,
	    sw.orphans, sw.temps, sw.errors);
	rc = sw.errors > 0 ? 1 : 0;
out:
	report_count(&rep, "purged_deleted", sw.purged_deleted);
	report_count(&rep, "purged_pending", sw.purged_pending);
	report_count(&rep, "orphans", sw.orphans);
	report_count(&rep, "temps", sw.temps);
	report_finish(&rep, rc == 0);
	storage_close(sw.st);
	arena_free(sw.arena);
	db_free(sw.db);
	return rc;
}

int
sweep_restore(const struct config *cfg, const char *id)
{
	struct db *db = NULL;
	struct storage *st = NULL;
	struct arena *a = arena_new();
	struct image img;
	struct storage_stat sst;
	char err[512], key[300];
	struct audit ev = { .action = "restore", .image_id = id, .outcome = "ok",
		.request_id = "restore" };
	char op[96], canon[37];
	int rc = 1, grc;

	ev.user_id = sweep_operator(op, sizeof(op));

	if (a == NULL)
		goto out;
	db = db_new(cfg->database_url);
	st = storage_open(cfg, err, sizeof(err));
	if (db == NULL || st == NULL) {
		fprintf(stderr, "polaimg: restore: %s\n", st == NULL ? err : "out of memory");
		goto out;
	}
	grc = val_uuid(id, canon) ? db_image_get(db, a, canon, 1, &img) :
	    PI_ERR_INVALID;
	if (grc == 0 && !img.deleted) {
		fprintf(stderr, "polaimg: restore: image %s is live (not deleted): "
		    "nothing to restore\n", id);
		goto out;
	}
	if (grc == PI_ERR_NOT_FOUND || grc == PI_ERR_INVALID) {
		fprintf(stderr, "polaimg: restore: no deleted image %s (purged images "
		    "cannot be restored)\n", id);
		goto out;
	}
	if (grc != 0) {
		fprintf(stderr, "polaimg: restore: database error\n");
		goto out;
	}
	(void)snprintf(key, sizeof(key), "%s/original", img.storage_key);
	if (strcmp(img.status, "ready") == 0 && storage_stat(st, key, &sst) != 0) {
		fprintf(stderr, "polaimg: restore: the objects of %s are gone\n", id);
		goto out;
	}
	ev.case_id = img.case_id;
	if (db_image_restore(db, img.id, &ev) != 0) {
		fprintf(stderr, "polaimg: restore: database error\n");
		goto out;
	}
	printf("restored image %s\n", img.id);
	rc = 0;
out:
	storage_close(st);
	db_free(db);
	arena_free(a);
	return rc;
}
