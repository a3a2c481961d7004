/* sweep.h — the verbs that keep storage and rows in step: sweep and
 * restore (see sweep.c).
 */
#ifndef POLAIMG_SWEEP_H
#define POLAIMG_SWEEP_H

struct config;

/* `polaimg sweep`: purges the objects of images deleted more than
 * delete_retention_days ago and of expired pending uploads (rows kept,
 * marked purged), removes orphan objects older than an hour and temp files
 * older than a day. Prints what it did (argv: "sweep" [--json], see
 * report.h). Returns the exit status: 0, or 1 when the database or storage
 * is unavailable or anything failed, 2 for a bad argument. */
int sweep_main(const struct config *cfg, int argc, char **argv);

/* `polaimg restore ID`: undoes the deletion of image id while its objects
 * exist. Returns the exit status, 0 or 1. */
int sweep_restore(const struct config *cfg, const char *id);

#endif
