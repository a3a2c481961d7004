/* verify.h — `polaimg verify`: are the stored images the ones recorded?
 *
 * Re-reads every stored object of every image whose objects must exist and
 * compares it with the database; changes nothing.
 */
#ifndef POLAIMG_VERIFY_H
#define POLAIMG_VERIFY_H

struct config;

/* Runs the verb with argv[0] = "verify" and its options ("--quiet": print
 * only problems and the summary). Prints one line per problem and a summary
 * to standard output. Returns the exit status: 0 when every object is
 * present with the recorded size and SHA-256, 1 when one is missing, differs
 * or could not be read (or the database or storage is unavailable), 2 for a
 * usage error. */
int verify_main(const struct config *cfg, int argc, char **argv);

#endif
