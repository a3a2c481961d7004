#!/usr/bin/env bash
# tests/fuzz/run.sh — build every libFuzzer harness with ASan+UBSan and run
# each for a fixed time with its seed corpus. `make fuzz` calls this.
#
# Usage (from anywhere):
#     tests/fuzz/run.sh [--seconds N] [--out DIR] [target ...]
#
# Targets (default: all): multipart auth urltoken json range etag query
# config imghdr_jpeg imghdr_png imghdr_webp imghdr_tiff router sniff dicom — one
# harness tests/fuzz/fuzz_<target>.c each, seeds in
# tests/fuzz/corpus/<target>/. Environment: FUZZ_SECONDS (default 60; CI
# runs 60), FUZZ_CC (default clang), FUZZ_OUT (default /tmp/polaimg-fuzz),
# FUZZ_SUMMARY (a file to append "fuzz <target> <executions> <seconds>
# <status>" lines to), FUZZ_CXX (default clang++: src/dicom.cc, the one C++
# file, is compiled apart and linked with DCMTK).
#
# New inputs libFuzzer finds go to $FUZZ_OUT/corpus/<target>/ (the seed
# corpus in the tree is only read). A crash stops the run of that target;
# the crasher is kept in $FUZZ_OUT/crashers/ and the script exits 1. Fix the
# bug, then add the crasher to tests/fuzz/corpus/<target>/ (and a unit test
# case): every seed is run again at the start of every fuzzing run, so it
# stays a regression input.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SECONDS_EACH="${FUZZ_SECONDS:-60}"
OUT="${FUZZ_OUT:-/tmp/polaimg-fuzz}"
CC="${FUZZ_CC:-clang}"
CXX="${FUZZ_CXX:-clang++}"
ALL_TARGETS="multipart auth urltoken json range etag query config imghdr_jpeg imghdr_png imghdr_webp imghdr_tiff router sniff dicom"
TARGETS=()

while [ $# -gt 0 ]; do
	case "$1" in
	--seconds) SECONDS_EACH="$2"; shift 2 ;;
	--out) OUT="$2"; shift 2 ;;
	-h|--help) sed -n '2,21p' "$0"; exit 0 ;;
	-*) echo "unknown option $1" >&2; exit 2 ;;
	*) TARGETS+=("$1"); shift ;;
	esac
done
[ ${#TARGETS[@]} -gt 0 ] || read -r -a TARGETS <<<"$ALL_TARGETS"
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (apt-get install clang)" >&2; exit 2; }

SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-std=gnu11 -g -O1 -D_GNU_SOURCE -DPACKAGE_VERSION=\"0.1.0\" \
-DPOLAIMG_SYSCONFDIR=\"/etc\" -DPOLAIMG_DATADIR=\"/usr/share/polaimg\" \
-DPOLAIMG_TREE_SRCDIR=\"$ROOT\" -DPOLAIMG_TREE_BUILDDIR=\"$ROOT/build\" \
-I$ROOT/src -Wall -Wno-unused-command-line-argument"
# ImageMagick's headers as system headers (they do not pass our warnings).
PKG_CFLAGS="$(pkg-config --cflags json-c libcrypto libjwt libpq libcurl MagickWand-6.Q16 libpng16 | sed 's/-I/-isystem /g')"

# Every module of the library (the list Makefile.am builds), for harnesses
# that reach into the handlers.
lib_sources() {
	sed -n '/^src_libpolaimg_a_SOURCES/,/^$/p' "$ROOT/Makefile.am" |
		tr ' \t\\' '\n\n\n' | grep '\.c$' | sed "s#^#$ROOT/#"
}

# src/dicom.cc as an object for the C harnesses (once per run), and the
# libraries it needs (the list configure.ac links).
DCMTK_LIBS="-ldcmjpls -ldcmjpeg -ldcmimage -ldcmimgle -ldcmdata -loflog -lofstd -lijg8 -lijg12 -lijg16 -ldcmtkcharls -lstdc++"
dicom_obj() {
	local o="$OUT/obj/dicom.o"
	if [ ! -f "$o" ]; then
		mkdir -p "$OUT/obj"
		$CXX -std=c++17 -g -O1 -D_GNU_SOURCE -I"$ROOT/src" \
			-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize=vptr \
			-fno-sanitize-recover=undefined \
			-c "$ROOT/src/dicom.cc" -o "$o" >"$OUT/logs/build-dicom.o.log" 2>&1 || return 1
	fi
	echo "$o $DCMTK_LIBS"
}

# The sources and libraries of each harness besides its own file.
deps() {
	case "$1" in
	multipart) echo "$ROOT/src/multipart.c" ;;
	auth) echo "$ROOT/src/auth.c $ROOT/src/common.c $ROOT/src/validate.c $(pkg-config --libs libjwt libcrypto)" ;;
	urltoken) echo "$ROOT/src/urltoken.c $(pkg-config --libs libcrypto)" ;;
	range|etag|query) echo "$ROOT/src/http.c $ROOT/src/arena.c $ROOT/src/common.c $ROOT/src/validate.c $(pkg-config --libs json-c) -lfcgi" ;;
	config) echo "$ROOT/src/config.c $ROOT/src/validate.c $ROOT/src/auth.c $ROOT/src/common.c $(pkg-config --libs libjwt libcrypto)" ;;
	imghdr_*) echo "$ROOT/src/imghdr.c $(pkg-config --libs zlib)" ;;
	json|router) echo "$(lib_sources | tr '
' ' ') $(dicom_obj) $(pkg-config --libs libpq MagickWand-6.Q16 libpng16 libcurl libcrypto json-c libjwt zlib) -ljpeg -lfcgi" ;;
	dicom) echo "$(dicom_obj) $ROOT/src/common.c $ROOT/src/log.c $(pkg-config --libs libcrypto zlib)" ;;
	sniff) echo "$ROOT/src/imaging.c $ROOT/src/jpegdec.c $ROOT/src/pngenc.c $ROOT/src/bigmem.c $ROOT/src/imghdr.c $ROOT/src/common.c $ROOT/src/log.c $(pkg-config --libs MagickWand-6.Q16 libpng16 libcrypto zlib) -ljpeg" ;;
	*) return 1 ;;
	esac
}

mkdir -p "$OUT/bin" "$OUT/crashers" "$OUT/logs"
command -v "$CXX" >/dev/null || { echo "fuzz: $CXX not found (apt-get install clang)" >&2; exit 2; }
status=0
for t in "${TARGETS[@]}"; do
	d="$(deps "$t")" || { echo "fuzz: unknown target $t" >&2; exit 2; }
	bin="$OUT/bin/fuzz_$t"
	# shellcheck disable=SC2086
	if ! $CC $CFLAGS $PKG_CFLAGS $SAN "$ROOT/tests/fuzz/fuzz_$t.c" $d -o "$bin" \
		>"$OUT/logs/build-$t.log" 2>&1; then
		echo "fuzz $t: build failed:" >&2
		tail -20 "$OUT/logs/build-$t.log" >&2
		status=1
		continue
	fi
	mkdir -p "$OUT/corpus/$t" "$ROOT/tests/fuzz/corpus/$t" 2>/dev/null || true
	log="$OUT/logs/run-$t.log"
	rc=0
	(cd "$OUT" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$OUT/crashers/$t-" \
		"$OUT/corpus/$t" "$ROOT/tests/fuzz/corpus/$t" </dev/null >"$log" 2>&1) || rc=$?
	execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)"
	secs="$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)"
	corpus="$(find "$OUT/corpus/$t" "$ROOT/tests/fuzz/corpus/$t" -type f | wc -l)"
	if [ "$rc" -eq 0 ]; then
		res=ok
	else
		res=CRASH
		status=1
	fi
	printf 'fuzz %-9s %10s executions in %3s s, corpus %5s inputs: %s\n' \
		"$t" "${execs:-?}" "${secs:-$SECONDS_EACH}" "$corpus" "$res"
	if [ "$res" != ok ]; then
		grep -E "ERROR|runtime error|SUMMARY|Test unit written|deadly signal" "$log" | head -20 >&2
		echo "  (full log: $log; crasher in $OUT/crashers/)" >&2
	fi
	[ -z "${FUZZ_SUMMARY:-}" ] ||
		echo "fuzz $t ${execs:-0} ${secs:-$SECONDS_EACH} $res" >>"$FUZZ_SUMMARY"
done
exit "$status"
