#!/usr/bin/env bash
# tests/robustness/valgrind.sh — the unit tests under valgrind memcheck.
#
# Usage: tests/robustness/valgrind.sh [BUILD_DIR] [--all]
#
# Runs every unit test binary of BUILD_DIR (default build/; it must be built
# without sanitizers: ASan and valgrind do not mix) under memcheck with
# --leak-check=full. A test fails when valgrind reports any error or any
# definitely or indirectly lost block; suppressions (valgrind.supp beside
# this script) cover only documented library-internal reports. test_imaging
# takes about two minutes under valgrind and runs only with --all (or
# VALGRIND_ALL=1). Prints one line per test and "valgrind: N passed, M failed".
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$ROOT/build"
ALL="${VALGRIND_ALL:-0}"
for a in "$@"; do
	case "$a" in
	--all) ALL=1 ;;
	*) BUILD="$a" ;;
	esac
done
command -v valgrind >/dev/null || { echo "valgrind: not installed (apt-get install valgrind)" >&2; exit 2; }
LOGS="${VALGRIND_LOGS:-$(mktemp -d /tmp/polaimg-valgrind.XXXXXX)}"
mkdir -p "$LOGS"
pass=0 fail=0
# test_imaging finds conf/policy.xml through top_srcdir, as under make check.
export top_srcdir="$ROOT"
for t in "$BUILD"/tests/unit/test_*; do
	case "$t" in *.log|*.trs|*.o) continue ;; esac
	[ -x "$t" ] || continue
	name="$(basename "$t")"
	if [ "$name" = test_imaging ] && [ "$ALL" != 1 ]; then
		echo "valgrind $name: skipped (--all runs it)"
		continue
	fi
	s=$SECONDS
	valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		--suppressions="$ROOT/tests/robustness/valgrind.supp" --quiet \
		--log-file="$LOGS/$name.%p.log" "$t" >"$LOGS/$name.out" 2>&1
	rc=$?
	lost="$(cat "$LOGS/$name".*.log 2>/dev/null | grep -c 'definitely lost\|indirectly lost' || true)"
	errs="$(cat "$LOGS/$name".*.log 2>/dev/null | grep -c '^==[0-9]*== [A-Z]' || true)"
	if [ "$rc" -eq 0 ] && [ "$lost" -eq 0 ]; then
		pass=$((pass + 1))
		echo "valgrind $name: ok ($((SECONDS - s)) s)"
	else
		fail=$((fail + 1))
		echo "valgrind $name: FAILED (exit $rc, $errs error lines, $lost leak reports; logs in $LOGS)"
		cat "$LOGS/$name".*.log | head -40
	fi
done
echo "valgrind: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
