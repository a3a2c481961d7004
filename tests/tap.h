/* tap.h — a tiny Test Anything Protocol helper for the unit tests.
 *
 * ok(cond, name), is_int(got, want, name), is_str(got, want, name),
 * survives(fn) (fn run in a child returns normally), then done_testing()
 * prints the plan and returns the exit status. A name ending in
 * "# TODO reason" marks a known bug: its failure is reported, not counted. Automake's TAP
 * driver reports every assertion.
 */
#ifndef POLAIMG_TAP_H
#define POLAIMG_TAP_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int tap_n, tap_failed;

static inline int
tap_ok(int cond, const char *name, const char *file, int line)
{
	tap_n++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, name);
	if (!cond) {
		/* "name # TODO why": a known bug, reported (automake: XFAIL,
		 * XPASS once fixed), not failing the exit status. */
		if (strstr(name, " # TODO") == NULL)
			tap_failed++;
		printf("#   failed at %s:%d\n", file, line);
	}
	fflush(stdout);
	return cond;
}

#define ok(cond, name) tap_ok(!!(cond), (name), __FILE__, __LINE__)
#define is_int(got, want, name) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	if (!tap_ok(g_ == w_, (name), __FILE__, __LINE__)) \
		printf("#   got %lld, want %lld\n", g_, w_); \
} while (0)
#define is_str(got, want, name) do { \
	const char *g_ = (got), *w_ = (want); \
	int c_ = (g_ == NULL || w_ == NULL) ? g_ == w_ : strcmp(g_, w_) == 0; \
	if (!tap_ok(c_, (name), __FILE__, __LINE__)) \
		printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", \
		    w_ ? w_ : "(null)"); \
} while (0)

/* 1 if fn, run in a child process, returns normally (the child then exits
 * 0); 0 if the child dies of a signal (a crash, an abort of the sanitizers)
 * or exits otherwise. For "this call is harmless" assertions. */
static inline int
survives(void (*fn)(void))
{
	pid_t pid, w;
	int st = 0;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0) {
		fn();
		_exit(0);
	}
	do
		w = waitpid(pid, &st, 0);
	while (w < 0 && errno == EINTR);
	return w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static inline int
done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
