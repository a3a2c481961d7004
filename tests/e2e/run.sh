#!/usr/bin/env bash
# polaimg browser tests: the clinic page (www/) in headless Chromium against
# the real service, nginx and PostgreSQL.
#
# Usage (from anywhere, as root, with polaimg built):
#
#     tests/e2e/run.sh [--offload nginx|none] [--keep] [-- tests/e2e/FILE.e2e.mjs ...]
#
# Installs what is missing (Debian's chromium with apt-get; playwright-core
# and axe-core with `npm ci` from package-lock.json into
# tests/e2e/node_modules), then
# hands over to tests/integration/run.sh, which starts a throw-away
# PostgreSQL, polaimg and nginx (with conf/nginx/polaimg.conf, whose
# /images/ location is pointed at this repository's www/) and runs
# tests/e2e/*.e2e.mjs (or the files given after --) with Node's test runner. Screenshots of every step go to
# $E2E_OUT/screenshots (default tests/e2e/out/, emptied first).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
	echo "e2e: installing Debian's chromium" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if [ ! -f "$HERE/node_modules/playwright-core/package.json" ] || [ ! -f "$HERE/node_modules/axe-core/axe.min.js" ]; then
	echo "e2e: npm ci (playwright-core, axe-core)" >&2
	(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

export E2E_OUT="${E2E_OUT:-$HERE/out}"
rm -rf "$E2E_OUT"
mkdir -p "$E2E_OUT/screenshots"

ARGS=()
FILES=()
while [ $# -gt 0 ]; do
	if [ "$1" = "--" ]; then
		shift
		FILES=("$@")
		break
	fi
	ARGS+=("$1")
	shift
done
if [ ${#FILES[@]} -eq 0 ]; then
	FILES=(tests/e2e/clinic.e2e.mjs tests/e2e/clinician.e2e.mjs)
fi
cd "$ROOT"
exec "$ROOT/tests/integration/run.sh" "${ARGS[@]}" -- "${FILES[@]}"
