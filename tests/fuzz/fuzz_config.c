/* fuzz_config.c — libFuzzer harness for the configuration parser,
 * cfg_load_string(): "key = value" lines, comments, quoting, suffixed
 * sizes, booleans, bounds, and the checks of the combination.
 *
 * Build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I src \
 *       tests/fuzz/fuzz_config.c src/config.c src/validate.c src/auth.c src/common.c \
 *       $(pkg-config --libs libjwt libcrypto) \
 *       -o fuzz_config
 *   ./fuzz_config -max_total_time=60 tests/fuzz/corpus/config </dev/null
 * (or `make fuzz`).
 *
 * A configuration file is written by an operator, not a client, but it is
 * parsed by the same kind of hand-written code and a mistake in it must end
 * in a message naming the key, never a crash. The input is the file's text;
 * on success the effective configuration is printed (to a memory stream) as
 * `polaimg check-config` would, and freed; on failure the message must be a
 * non-empty string. Keys ending in _file read the named file (bounded to
 * 64 KiB by config.c): run with standard input from /dev/null.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *const no_env[] = { NULL };
	struct config cfg;
	char err[512], *text, *out = NULL;
	size_t outlen = 0;
	FILE *f;

	if (size > 16 * 1024)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
	if (cfg_load_string(&cfg, text, "fuzz.conf", no_env, err,
	    sizeof(err)) == 0) {
		f = open_memstream(&out, &outlen);
		if (f == NULL)
			abort();
		cfg_print(&cfg, f);
		if (fclose(f) != 0 || out == NULL || outlen == 0)
			abort();
		free(out);
		cfg_free(&cfg);
	} else if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL) {
		abort();
	}
	free(text);
	return 0;
}
