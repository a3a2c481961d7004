/* fuzz_imghdr_png.c — libFuzzer harness for imghdr_png(), polaimg's own
 * reader of the PNG header, which runs on every uploaded PNG before
 * ImageMagick sees it.
 *
 * Build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I src \
 *       tests/fuzz/fuzz_imghdr_png.c src/imghdr.c -lz -o fuzz_imghdr_png
 *   ./fuzz_imghdr_png -max_total_time=60 tests/fuzz/corpus/imghdr_png
 * (or `make fuzz`, which builds and runs every harness).
 *
 * Input: the file's bytes. The contract checked is in fuzz_imghdr.h.
 */
#include "fuzz_imghdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_imghdr_check(imghdr_png, data, size);
	return 0;
}
