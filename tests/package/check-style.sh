#!/bin/sh
# check-style.sh — the symbol rule of docs/design.md's "Style" section: every
# extern symbol an object of src/ defines (nm) is its file's prefix alone or
# starts with it, the prefixes of each file being those of the table there.
#
# Usage: tests/package/check-style.sh [BUILDDIR [SRCDIR]]. The objects are
# BUILDDIR/src/*.o (make check runs it in the build tree, after the build).
# Prints TAP.
set -u

here=$(cd "$(dirname "$0")" && pwd)
builddir=${1:-.}
srcdir=${2:-$(cd "$here/../.." && pwd)}
design=$srcdir/docs/design.md
[ -r "$design" ] || { echo "Bail out! $design not found"; exit 1; }
command -v nm >/dev/null 2>&1 || { echo "1..0 # SKIP nm not installed"; exit 0; }

# "FILE-GLOB PREFIX..." per row of the table headed "| File | Prefixes |":
# | `acl.c` | `acl_` |
table=$(awk '/^ *\| File \| Prefixes \|/ { t = 1; next }
	t && !/^ *\|/ { exit }
	t && /^ *\| `/ { gsub(/[`|]/, " "); $1 = $1; print }' "$design")
[ -n "$table" ] || { echo "Bail out! no prefix table in $design"; exit 1; }

objs=$(ls "$builddir"/src/*.o 2>/dev/null)
[ -n "$objs" ] || { echo "Bail out! no objects in $builddir/src (build first)"; exit 1; }

n=0
failed=0
for o in $objs; do
	f=${o##*/}
	f=${f##*-}
	f=${f%.o}
	# The one C++ file (dicom.cc) is named with its own extension.
	if [ -f "$srcdir/src/$f.cc" ]; then f=$f.cc; else f=$f.c; fi
	prefixes=$(echo "$table" | while read -r glob rest; do
		# shellcheck disable=SC2254
		case $f in $glob) echo "$rest"; break ;; esac
	done)
	n=$((n + 1))
	if [ -z "$prefixes" ]; then
		failed=$((failed + 1))
		echo "not ok $n - $f: not in the prefix table of docs/design.md"
		continue
	fi
	bad=""
	# Names the compiler makes (sanitizers: __odr_asan.x, __asan_*) are
	# not the code's: reserved (__) or not C identifiers (a dot); nor are
	# the weak (W, V) copies of C++ inline functions and templates that
	# a C++ file's headers instantiate.
	for sym in $(nm -g --defined-only "$o" |
	    awk 'NF == 3 && $2 !~ /^[WVwv]$/ && $3 !~ /^__/ && $3 !~ /\./ \
	    { print $3 }'); do
		good=0
		for p in $prefixes; do
			case $sym in "${p%_}" | "$p"*) good=1; break ;; esac
		done
		[ "$good" = 1 ] || bad="$bad $sym"
	done
	if [ -z "$bad" ]; then
		echo "ok $n - $f: every extern symbol starts with $prefixes"
	else
		failed=$((failed + 1))
		echo "not ok $n - $f: symbols without the prefix ($prefixes):$bad"
	fi
done
echo "1..$n"
[ "$failed" -eq 0 ]
