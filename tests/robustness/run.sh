#!/usr/bin/env bash
# tests/robustness/run.sh — polaimg under faults, hostile input and load, in
# one command (the issue "keep serving, lose nothing, let no one in").
#
# Usage (from anywhere, as root, with polaimg built in build/):
#
#     tests/robustness/run.sh [--full] [--storage local] [--skip-fuzz]
#                             [--skip-valgrind]
#
# Default run, the one CI makes (about eight minutes on two cores): every
# libFuzzer harness for FUZZ_SECONDS (default 60) each, two at a time; the
# robustness node:test files (image
# attacks, authentication attacks, faults, load and scale-out with
# LOAD_SECONDS, default 20) through tests/integration/run.sh's harness; the
# unit tests under valgrind memcheck (test_imaging only with --full).
# --full: LOAD_SECONDS=120 and valgrind on every unit test.
# --storage is handed to tests/integration/run.sh (the instances the tests
# start inherit the harness's storage settings; local-disk scenarios skip
# themselves on other back ends).
#
# Environment: POLAIMG_BIN (default build/src/polaimg), BUILD_DIR (default
# build; a build without sanitizers, for valgrind), FUZZ_SECONDS,
# LOAD_SECONDS. Ends with a summary of the figures (fuzz executions per
# target, faults survived, load requests/s, p99 and errors, worker RSS,
# verify losses) and "robustness: N passed, M failed" (one per step).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
FULL=0 SKIP_FUZZ=0 SKIP_VG=0
STORAGE=local
while [ $# -gt 0 ]; do
	case "$1" in
	--full) FULL=1; shift ;;
	--storage) STORAGE="$2"; shift 2 ;;
	--skip-fuzz) SKIP_FUZZ=1; shift ;;
	--skip-valgrind) SKIP_VG=1; shift ;;
	-h|--help) sed -n '2,25p' "$0"; exit 0 ;;
	*) echo "unknown argument $1" >&2; exit 2 ;;
	esac
done
if [ "$FULL" = 1 ]; then
	: "${FUZZ_SECONDS:=60}" "${LOAD_SECONDS:=120}"
	VG_ARGS=(--all)
else
	: "${FUZZ_SECONDS:=60}" "${LOAD_SECONDS:=20}"
	VG_ARGS=()
fi
export FUZZ_SECONDS LOAD_SECONDS
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
export POLAIMG_BIN="${POLAIMG_BIN:-$BUILD_DIR/src/polaimg}"
[ -x "$POLAIMG_BIN" ] || { echo "robustness: $POLAIMG_BIN not found: build polaimg first" >&2; exit 2; }

WORK="$(mktemp -d /tmp/polaimg-robust.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export ROBUST_RESULTS_DIR="$WORK/results"
mkdir -p "$ROBUST_RESULTS_DIR"
steps_ok=0 steps_failed=0
step() {   # name, command...
	local name=$1 t0=$SECONDS
	shift
	echo "== robustness: $name"
	if "$@"; then
		steps_ok=$((steps_ok + 1))
		echo "== $name: ok ($((SECONDS - t0)) s)"
	else
		steps_failed=$((steps_failed + 1))
		echo "== $name: FAILED ($((SECONDS - t0)) s)"
	fi
}

# Two lanes of fuzzers at once, one per core: every target still gets its
# full FUZZ_SECONDS, in half the wall time. The targets are tests/fuzz/run.sh's
# own list (every harness it knows), dealt alternately to the two lanes.
fuzz_lanes() {
	local rc=0 all lane1="" lane2="" i=0 t
	all=$(sed -n 's/^ALL_TARGETS="\(.*\)"$/\1/p' tests/fuzz/run.sh)
	[ -n "$all" ] || { echo "no ALL_TARGETS in tests/fuzz/run.sh" >&2; return 1; }
	for t in $all; do
		if [ $((i % 2)) = 0 ]; then lane1="$lane1 $t"; else lane2="$lane2 $t"; fi
		i=$((i + 1))
	done
	# shellcheck disable=SC2086 # the lanes are lists of words
	env FUZZ_OUT="$WORK/fuzz1" FUZZ_SUMMARY="$WORK/fuzz.sum" \
		tests/fuzz/run.sh $lane1 >"$WORK/fuzz1.log" 2>&1 &
	local p1=$!
	# shellcheck disable=SC2086
	env FUZZ_OUT="$WORK/fuzz2" FUZZ_SUMMARY="$WORK/fuzz.sum" \
		tests/fuzz/run.sh $lane2 >"$WORK/fuzz2.log" 2>&1 &
	local p2=$!
	wait "$p1" || rc=1
	wait "$p2" || rc=1
	[ "$rc" = 0 ] || tail -n 40 "$WORK/fuzz1.log" "$WORK/fuzz2.log"
	return "$rc"
}
if [ "$SKIP_FUZZ" = 0 ]; then
	step "fuzz (${FUZZ_SECONDS} s per target, ASan+UBSan, two at a time)" fuzz_lanes
fi
step "image and authentication attacks, faults, load (${LOAD_SECONDS} s) and scale-out" \
	tests/integration/run.sh --storage "$STORAGE" -- tests/robustness/images.test.mjs \
	tests/robustness/auth.test.mjs tests/robustness/faults.test.mjs tests/robustness/load.test.mjs
if [ "$SKIP_VG" = 0 ]; then
	step "unit tests under valgrind memcheck" \
		env VALGRIND_LOGS="$WORK/valgrind" tests/robustness/valgrind.sh "$BUILD_DIR" "${VG_ARGS[@]}"
fi

echo
echo "==== robustness summary ===="
[ -f "$WORK/fuzz.sum" ] && awk '{ printf "fuzz %-10s %12d executions in %s s: %s\n", $2, $3, $4, $5 }' "$WORK/fuzz.sum"
node - "$ROBUST_RESULTS_DIR" <<'JS'
const fs = require('fs');
const path = require('path');
const dir = process.argv[2];
const read = (n) => { try { return JSON.parse(fs.readFileSync(path.join(dir, `${n}.json`), 'utf8')); } catch { return null; } };
const f = read('faults');
if (f) {
	const s = f.survived || {};
	const all = ['workerKill', 'pgOutage', 'diskFull', 'readOnly', 'timeoutKill', 'sweep'];
	console.log(`faults survived: ${all.filter((k) => s[k]).length}/${all.length} (${all.map((k) => `${k} ${s[k] ? 'ok' : 'NOT'}`).join(', ')})`);
	if (f.pgOutage) console.log(`  PostgreSQL outage: ${f.pgOutage.during} requests answered 503 while down, recovered ${f.pgOutage.recoveryMs} ms after restart`);
	if (f.workerKill) console.log(`  worker SIGKILL mid-upload: statuses ${f.workerKill.codes.join(',')}`);
	if (f.timeoutKill) console.log(`  request_timeout kill: answered 502 after ${f.timeoutKill.ms} ms`);
}
const l = read('load');
if (l) {
	console.log(`load: ${l.seconds} s, ${l.connections} connections, ${l.workers} workers: ${l.requests} requests, ${l.rps} req/s, ${l.errors} unexpected errors`);
	for (const [m, x] of Object.entries(l.byMode || {}))
		console.log(`  ${m.padEnd(11)} ${String(x.rps).padStart(7)} req/s  p50 ${x.p50} ms  p90 ${x.p90} ms  p99 ${x.p99} ms  max ${x.max} ms  errors ${x.errors}`);
	const s = l.rssStartKiB || {}, e = l.rssEndKiB || {};
	console.log(`  worker RSS KiB start → end: ${Object.keys(s).map((p) => `${s[p]}→${e[p]}`).join(', ')}`);
	if (l.verify) console.log(`  ${l.verify}`);
}
const so = read('scaleout');
if (so) {
	console.log(`scale-out: 2 masters × ${so.workersEach} workers, ${so.seconds} s, ${so.requests} requests (${so.rps} req/s, p99 ${so.p99} ms); ` +
		`master killed mid-load: ${so.errorsDuringKill} requests failed (${so.errors502} × 502)${so.errorWindow ? ` within ${so.errorWindow[0]}..${so.errorWindow[1]} s of the kill` : ''}, ` +
		`then ${so.afterRequests} requests with ${so.afterErrors} errors`);
	if (so.verify) console.log(`  ${so.verify}`);
}
const im = read('images');
if (im) console.log(`image attacks: ${Object.entries(im.timesMs || {}).map(([k, v]) => `${k} ${v} ms`).join(', ')}`);
JS
echo "robustness: $steps_ok passed, $steps_failed failed"
[ "$steps_failed" -eq 0 ]
