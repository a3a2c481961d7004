/* fuzz_imghdr_tiff.c — libFuzzer harness for imghdr_tiff(), polaimg's own
 * reader of the TIFF header, which runs on every uploaded TIFF before
 * ImageMagick sees it.
 *
 * Build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I src \
 *       tests/fuzz/fuzz_imghdr_tiff.c src/imghdr.c -lz -o fuzz_imghdr_tiff
 *   ./fuzz_imghdr_tiff -max_total_time=60 tests/fuzz/corpus/imghdr_tiff
 * (or `make fuzz`, which builds and runs every harness).
 *
 * Input: the file's bytes. The contract checked is in fuzz_imghdr.h.
 */
#include "fuzz_imghdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_imghdr_check(imghdr_tiff, data, size);
	return 0;
}
