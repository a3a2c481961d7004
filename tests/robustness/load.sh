#!/usr/bin/env bash
# tests/robustness/load.sh — the load test on its own, for as long as asked.
#
# Usage: tests/robustness/load.sh [SECONDS]        (default LOAD_SECONDS or 120)
#
# Starts the integration harness (PostgreSQL, nginx) and runs
# load.test.mjs: wrk with 64 connections mixing list, proxy, download-url and
# upload against one polaimg (4 workers) for SECONDS, then the scale-out run
# (two masters behind one nginx upstream, one SIGKILLed halfway). Needs wrk
# (apt-get install wrk). Figures are printed at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export LOAD_SECONDS="${1:-${LOAD_SECONDS:-120}}"
export POLAIMG_BIN="${POLAIMG_BIN:-$ROOT/build/src/polaimg}"
WORK="$(mktemp -d /tmp/polaimg-load.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
export ROBUST_RESULTS_DIR="$WORK"
rc=0
"$ROOT/tests/integration/run.sh" -- "$ROOT/tests/robustness/load.test.mjs" || rc=$?
for f in load scaleout; do
	[ -f "$WORK/$f.json" ] && { echo "== $f"; cat "$WORK/$f.json"; echo; }
done
exit "$rc"
