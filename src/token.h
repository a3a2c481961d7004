/* token.h — `polaimg token`: a long-lived token for a service account. */
#ifndef POLAIMG_TOKEN_H
#define POLAIMG_TOKEN_H

struct config;

/* The verb: argv[0] is "token". Prints the JWT on stdout and returns the
 * exit status (0 minted, 1 refused or failed, 2 usage). */
int token_main(const struct config *cfg, int argc, char **argv);

#endif
