#!/usr/bin/env bash
# polaimg browser tests: the clinic page (www/) in headless Chromium against
# the real service, nginx and PostgreSQL.
#
# Usage (from anywhere, as root, with polaimg built):
#
#     tests/e2e/run.sh [--offload nginx|none] [--keep]
#
# Installs what is missing (Debian's chromium with apt-get; playwright-core
# with `npm ci` from package-lock.json into tests/e2e/node_modules), then
# hands over to tests/integration/run.sh, which starts a throw-away
# PostgreSQL, polaimg and nginx (with conf/nginx/polaimg.conf, whose
# /images/ location is pointed at this repository's www/) and runs
# clinic.e2e.mjs with Node's test runner. Screenshots of every step go to
# $E2E_OUT/screenshots (default tests/e2e/out/, emptied first).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
	echo "e2e: installing Debian's chromium" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
if [ ! -f "$HERE/node_modules/playwright-core/package.json" ]; then
	echo "e2e: npm ci (playwright-core)" >&2
	(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

export E2E_OUT="${E2E_OUT:-$HERE/out}"
rm -rf "$E2E_OUT"
mkdir -p "$E2E_OUT/screenshots"

exec "$ROOT/tests/integration/run.sh" "$@" -- tests/e2e/clinic.e2e.mjs
