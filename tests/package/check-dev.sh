#!/usr/bin/env bash
# check-dev.sh — ./dev leaves the host's own services alone (as root):
#
#   1. pl_need_pkgs (tests/lib.sh, which ./dev and the run.sh scripts use to
#      install what is missing) with apt-get replaced by a stand-in that
#      records what it sees: no service, systemctl or invoke-rc.d call is
#      made; while apt-get runs, /usr/sbin/policy-rc.d exists and exits 101
#      (packages may not start their services); afterwards it is gone, also
#      when apt-get fails, and one that was there before is put back;
#   2. ./dev run with 127.0.0.1:8080 taken: it picks another port, prints
#      it, serves there, and the holder of 8080 is untouched; Ctrl-C stops
#      what it started.
#
# Usage: tests/package/check-dev.sh   (./dev run builds build/ when it
# needs to). Prints TAP. tests/package/run.sh runs it.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 0; }

TMP=$(mktemp -d /tmp/polaimg-devcheck.XXXXXX)
HOLD_PID="" DEV_PID=""
PRC=/usr/sbin/policy-rc.d
PRC_SAVED=""
if [ -e "$PRC" ]; then PRC_SAVED="$TMP/policy-rc.d.host"; cp -p "$PRC" "$PRC_SAVED"; fi
cleanup() {
	[ -n "$DEV_PID" ] && kill -INT -- "-$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null
	[ -n "$HOLD_PID" ] && kill "$HOLD_PID" 2>/dev/null
	if [ -n "$PRC_SAVED" ]; then cp -p "$PRC_SAVED" "$PRC"; else rm -f "$PRC"; fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# ---- 1. pl_need_pkgs ----------------------------------------------------------
mkdir -p "$TMP/bin"
for c in service systemctl invoke-rc.d deb-systemd-invoke; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$c" "$TMP" >"$TMP/bin/$c"
done
{
	echo '#!/bin/sh'
	echo "echo \"apt-get \$*\" >>'$TMP/calls'"
	echo '[ "$1" = update ] && exit 0'
	echo "if [ -x $PRC ]; then $PRC nginx start; echo \"policy \$?\" >>'$TMP/calls'; else echo 'policy none' >>'$TMP/calls'; fi"
	echo 'exit ${FAKE_APT_RC:-0}'
} >"$TMP/bin/apt-get"
chmod 755 "$TMP"/bin/*
run_need() { # run_need RC: pl_need_pkgs of a package that is not installed
	: >"$TMP/calls"
	PATH="$TMP/bin:$PATH" FAKE_APT_RC=$1 bash -c \
		'. "$1/tests/lib.sh"; pl_need_pkgs polaimg-devcheck-not-a-package' sh "$ROOT" >/dev/null 2>&1
}
rm -f "$PRC"
run_need 0
check "pl_need_pkgs ran apt-get install" grep -q '^apt-get install' "$TMP/calls"
check "no service was stopped or started ($(grep -vE '^(apt-get|policy) ' "$TMP/calls" | tr '\n' ';'))" \
	sh -c "! grep -qE '^(service|systemctl|invoke-rc.d|deb-systemd-invoke) ' '$TMP/calls'"
check "while apt-get ran, policy-rc.d refused service starts (101)" grep -qx 'policy 101' "$TMP/calls"
check "policy-rc.d is removed afterwards" test ! -e "$PRC"
run_need 100
check "policy-rc.d is removed after a failed apt-get too" test ! -e "$PRC"
printf '#!/bin/sh\n# the host policy\nexit 0\n' >"$PRC"
chmod 755 "$PRC"
cp -p "$PRC" "$TMP/host-prc"
run_need 0
check "a policy-rc.d of the host's is put back as it was" cmp -s "$PRC" "$TMP/host-prc"
rm -f "$PRC"

# ---- 2. ./dev run with 8080 taken ------------------------------------------------
node -e 'require("net").createServer(c => c.end("held\n")).listen(8080, "127.0.0.1")' &
HOLD_PID=$!
sleep 1
setsid bash -c 'cd "$1" && exec ./dev run' sh "$ROOT" >"$TMP/dev.log" 2>&1 &
DEV_PID=$!
port=""
for _ in $(seq 1 1200); do
	port=$(sed -n 's/^polaimg is running behind nginx at http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/dev.log")
	[ -n "$port" ] && break
	kill -0 "$DEV_PID" 2>/dev/null || break
	sleep 0.5
done
check "./dev run came up with 8080 taken ($(tail -n 2 "$TMP/dev.log" | tr '\n' ' '))" test -n "$port"
check "it says which port it chose instead of 8080" grep -q "8080 is in use; nginx listens on $port" "$TMP/dev.log"
check "polaimg answers through nginx on port $port" \
	sh -c "curl -fsS http://127.0.0.1:$port/api/v1/images/health | grep -q '\"status\":\"ok\"'"
check "the curl lines it prints use port $port" grep -q "curl -s http://127.0.0.1:$port/api/v1/images/health" "$TMP/dev.log"
check "the holder of 8080 still runs" kill -0 "$HOLD_PID"
kill -INT -- "-$DEV_PID" 2>/dev/null
for _ in $(seq 1 150); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.2; done
check "Ctrl-C stops ./dev run" sh -c "! kill -0 $DEV_PID 2>/dev/null"
DEV_PID=""
check "and what it started (port $port is free again)" bash -c ". '$ROOT/tests/lib.sh'; pl_port_free $port"
check "the holder of 8080 still runs afterwards" kill -0 "$HOLD_PID"

echo "1..$n"
[ "$failed" -eq 0 ]
