#!/usr/bin/env bash
# tests/package/run.sh — the Debian package, end to end, on this machine (as
# root; it installs and purges the package):
#
#   1. builds polaimg_*.deb with dpkg-buildpackage -us -uc -b in a scratch
#      copy of the tree (the repository stays clean), and runs lintian
#      (its output is printed; an error fails the test);
#   2. installs it with apt-get and checks what went where: files, modes,
#      owners, the system user, the conffiles, the manual, and every unit
#      with `systemd-analyze verify` (systemd need not run);
#   3. runs the HTTP integration suite against the installed copy three
#      times: behind nginx (the installed snippet), behind Apache with
#      mod_proxy_fcgi and mod_xsendfile, and behind Apache with mod_fcgid
#      starting polaimg (tests/integration/run.sh --installed --server ...);
#   4. upgrades the package with the service running: polaimg is started the
#      way polaimg.service starts it, with the installed configuration and
#      the real paths (/run/polaimg, /var/lib/polaimg/store) behind nginx
#      with the installed snippet; an upload trickles into a worker over
#      several seconds while version -2 is installed and the service is
#      restarted the way systemd restarts it (SIGTERM to the master, wait,
#      ExecStart again); the upload must end 201, the new master must serve,
#      and the image must be downloadable;
#   5. without systemd (README, step 5d): the master started by hand as the
#      README says, its pid file, a second master refused; signed downloads
#      and token uploads through nginx, and no signature, token or JWT in any
#      log (nginx's, polaimg's); logrotate with the installed file (SIGUSR1
#      through the pid file: the master writes to the new file); backup,
#      restore into an emptied database and store, `verify` clean;
#   6. removal with the master running and no systemd: `apt-get remove`
#      stops it through its pid file, disables the Apache configuration and
#      names the nginx site that includes the snippet; then the README's
#      removal step (the include goes, `nginx -t` passes) and the purge: the
#      configuration must be gone, the image store and the system user
#      must remain, nginx's configuration still tests clean.
#   Also: tests/package/check-dev.sh (./dev leaves the host's services
#   alone and finds a free port).
#
# The README's install, upgrade and removal steps are run from README.md
# itself: each block marked <!-- package-test: NAME --> is extracted and run
# as written (readme_run below), with PGHOST and the socket directory of this
# test's PostgreSQL; a `systemctl` in them is carried out the way systemd
# would carry it out here.
#
# Usage: tests/package/run.sh [--keep] [--check] [--no-suite]
#   --keep      keep the temp directory (build tree, logs)
#   --check     run the unit tests during the package build too (make check;
#               skipped by default: ./dev test has just run them)
#   --no-suite  skip step 3 (a quicker check of the packaging itself)
#
# Installs what it needs with apt-get. Everything it starts is stopped on
# exit, pass or fail. Takes about five minutes on two cores.
set -euo pipefail

KEEP=0
CHECK=0
SUITE=1
for a in "$@"; do
	case "$a" in
	--keep) KEEP=1 ;;
	--check) CHECK=1 ;;
	--no-suite) SUITE=0 ;;
	*) echo "usage: $0 [--keep] [--check] [--no-suite]" >&2; exit 2 ;;
	esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=../lib.sh
. "$ROOT/tests/lib.sh"
T0=$SECONDS
step() { printf '\n== [%3d s] %s\n' $((SECONDS - T0)) "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (it installs the package)"

# ---- what it needs ---------------------------------------------------------
PKGS="build-essential autoconf automake pkg-config libfcgi-dev libpq-dev
 libmagickwand-6.q16-dev libcurl4-openssl-dev libssl-dev libjson-c-dev libjwt-dev libdcmtk-dev
 debhelper dh-autoreconf dpkg-dev fakeroot lintian rsync systemd man-db
 postgresql nginx-light imagemagick openssl curl spawn-fcgi libfcgi-bin
 apache2 libapache2-mod-fcgid libapache2-mod-xsendfile logrotate postgresql-client"
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
# shellcheck disable=SC2086
pl_need_pkgs $PKGS

TMP="$(mktemp -d /tmp/polaimg-pkg.XXXXXX)"
chmod 755 "$TMP"
PG="$TMP/pg"
NGX="$TMP/nginx"
UNIT=/lib/systemd/system/polaimg.service
MAINPID=""
MANUAL_PID=""
NGINX_PID=""
PG_UP=0
SLOW_PID=""
PROBE_PID=""
CASE=""

# ---- polaimg.service without systemd ------------------------------------------
# A key of the unit (the last one if repeated).
unit_get() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }

# polaimg.socket and polaimg-ingest.socket without systemd:
# tests/package/socket-holder.c holds /run/polaimg/polaimg.sock and
# /run/polaimg/ingest.sock as the socket units say (owner, group, mode) for
# the whole test and starts polaimg on SIGUSR1 with the sockets as fds 3 and
# 4, named as their FileDescriptorName says.
SOCKET_UNIT=/lib/systemd/system/polaimg.socket
INGEST_UNIT=/lib/systemd/system/polaimg-ingest.socket
socket_get() { sed -n "s/^$1=//p" "$SOCKET_UNIT" | tail -n 1; }
ingest_get() { sed -n "s/^$1=//p" "$INGEST_UNIT" | tail -n 1; }
HOLDER_PID=""

# What `systemctl start polaimg` does: the socket unit first (once), then
# RuntimeDirectory and LogsDirectory, then ExecStart with the unit's
# environment, user, groups and umask, and the socket passed as systemd
# passes it (LISTEN_FDS=1, LISTEN_PID the pid that runs polaimg).
service_start() {
	local user group supp e
	local -a envs=() groups=(--clear-groups)
	user=$(unit_get User) group=$(unit_get Group) supp=$(unit_get SupplementaryGroups)
	[ -n "$supp" ] && groups=(--groups="${supp// /,}")
	while IFS= read -r e; do [ -n "$e" ] && envs+=("$e"); done < <(sed -n 's/^Environment=//p' "$UNIT")
	install -d -o "$user" -g "$group" -m "$(unit_get RuntimeDirectoryMode)" "/run/$(unit_get RuntimeDirectory)"
	install -d -o "$user" -g "$group" -m "$(unit_get LogsDirectoryMode)" "/var/log/$(unit_get LogsDirectory)"
	if [ -z "$HOLDER_PID" ]; then
		cc -O -o "$TMP/socket-holder" "$ROOT/tests/package/socket-holder.c" ||
			fail "building the socket holder"
		rm -f "$TMP/main.pid" "$TMP/main.pid.status"
		local socks names nfds=1
		socks=$(socket_get ListenStream) names=$(socket_get FileDescriptorName)
		if [ -f "$INGEST_UNIT" ]; then
			socks="$socks,$(ingest_get ListenStream)"
			names="$names:$(ingest_get FileDescriptorName)"
			nfds=2
		fi
		# shellcheck disable=SC2046,SC2016 # ExecStart is split into words, as systemd does
		"$TMP/socket-holder" "$socks" "$(socket_get SocketUser)" \
			"$(socket_get SocketGroup)" "$TMP/main.pid" -- \
			env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${envs[@]}" \
			LISTEN_FDNAMES="$names" NFDS="$nfds" \
			setpriv --reuid="$user" --regid="$group" "${groups[@]}" --no-new-privs -- \
			sh -c 'umask "$0"; export LISTEN_FDS=$NFDS LISTEN_PID=$$; unset NFDS; exec "$@"' \
			"$(unit_get UMask)" $(unit_get ExecStart) >>"$TMP/service.log" 2>&1 &
		HOLDER_PID=$!
		for _ in $(seq 1 50); do [ -f "$TMP/main.pid.status" ] && break; sleep 0.1; done
		[ "$(stat -c '%U:%G %a' "$(socket_get ListenStream)")" = \
			"$(socket_get SocketUser):$(socket_get SocketGroup) $(socket_get SocketMode | sed 's/^0//')" ] ||
			fail "the socket does not have the owner and mode of polaimg.socket"
	fi
	kill -USR1 "$HOLDER_PID"
	for _ in $(seq 1 100); do
		if [ -s "$TMP/main.pid" ]; then
			MAINPID=$(cat "$TMP/main.pid")
			# Up once its first worker runs.
			pgrep -P "$MAINPID" >/dev/null && return 0
		fi
		sleep 0.1
	done
	tail -n 20 "$TMP/service.log" >&2
	fail "polaimg.service did not come up"
}

# What `systemctl stop polaimg` does: KillSignal to the main process only
# (KillMode=mixed), TimeoutStopSec, then SIGKILL. The socket stays
# (polaimg.socket) and so does /run/polaimg (RuntimeDirectoryPreserve).
# service_signal sends the signal; service_stop sends it unless that was
# done, and waits. Sets STOP_SECONDS (from the signal) and STOP_STATUS.
STOP_T0=""
service_signal() {
	STOP_T0=$SECONDS
	kill -"$(unit_get KillSignal | sed 's/^SIG//')" "$MAINPID"
}
service_stop() {
	local limit
	limit=$(unit_get TimeoutStopSec)
	STOP_STATUS=0
	[ -n "$STOP_T0" ] || service_signal
	for _ in $(seq 1 $((limit * 10))); do [ -e "$TMP/main.pid" ] || break; sleep 0.1; done
	if [ -e "$TMP/main.pid" ]; then
		echo "polaimg did not stop within TimeoutStopSec=$limit s: SIGKILL" >&2
		pkill -KILL -P "$MAINPID" || true
		kill -KILL "$MAINPID" || true
		for _ in $(seq 1 50); do [ -e "$TMP/main.pid" ] || break; sleep 0.1; done
	fi
	STOP_STATUS=$(cat "$TMP/main.pid.status" 2>/dev/null || echo unknown)
	STOP_SECONDS=$((SECONDS - STOP_T0))
	STOP_T0=""
	MAINPID=""
}

cleanup() {
	local rc=$?
	set +e
	[ -n "$SLOW_PID" ] && kill "$SLOW_PID" 2>/dev/null
	[ -n "$PROBE_PID" ] && kill "$PROBE_PID" 2>/dev/null
	pl_stop "$NGINX_PID" QUIT 5 nginx
	[ -n "$MAINPID" ] && kill -0 "$MAINPID" 2>/dev/null && service_stop
	[ -n "$HOLDER_PID" ] && kill "$HOLDER_PID" 2>/dev/null && wait "$HOLDER_PID" 2>/dev/null
	# The master started by hand (step 5), the test's nginx site and
	# Apache link (step 6), a store moved away mid-restore, the backup.
	if [ -n "$MANUAL_PID" ] && kill -0 "$MANUAL_PID" 2>/dev/null; then
		kill -TERM "$MANUAL_PID"
		for _ in $(seq 1 100); do kill -0 "$MANUAL_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f /etc/nginx/sites-available/polaimg-pkgtest /etc/nginx/sites-enabled/polaimg-pkgtest
	[ -L /etc/apache2/conf-enabled/polaimg.conf ] && a2disconf -q polaimg >/dev/null 2>&1
	[ -d "$TMP/store.lost" ] && [ ! -d /var/lib/polaimg/store ] && mv "$TMP/store.lost" /var/lib/polaimg/store
	rm -rf /var/backups/polaimg
	[ "$PG_UP" = 1 ] && pl_pg_stop "$PG"
	[ -n "$CASE" ] && rm -rf "/var/lib/polaimg/store/cases/$CASE"
	if [ "$KEEP" = 1 ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
	if [ "$rc" -ne 0 ]; then
		echo "package test FAILED after $((SECONDS - T0)) s" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the README's blocks ---------------------------------------------------------
# readme_block NAME — the code of the first ``` block after the line
# "<!-- package-test: NAME -->" of README.md.
readme_block() {
	awk -v tag="<!-- package-test: $1 -->" '
		$0 == tag { found = 1; next }
		found && /^```/ { if (inblock) exit; inblock = 1; next }
		inblock { print }
	' "$ROOT/README.md"
}
# What `systemctl reload nginx` does for the host's nginx here: test its
# configuration (the system nginx does not run during the test).
readme_systemctl() {
	case "$*" in
	"reload nginx") /usr/sbin/nginx -t -q ;;
	*) echo "readme_systemctl: '$*' not emulated" >&2; return 1 ;;
	esac
}
# readme_run NAME — runs that block as written, in bash -e, against this
# test's PostgreSQL (PGHOST; the README's /var/run/postgresql is this
# test's socket directory). Fails the test when it fails.
readme_run() {
	local code
	code=$(readme_block "$1")
	[ -n "$code" ] || fail "README.md has no block marked package-test: $1"
	printf '%s\n' "${code//\/var\/run\/postgresql/$PG}" >"$TMP/readme-$1.sh"
	echo "README block $1:"
	sed 's/^/    | /' "$TMP/readme-$1.sh"
	PGHOST=$PG bash -c "set -euo pipefail; $(declare -f readme_systemctl); systemctl() { readme_systemctl \"\$@\"; }; . '$TMP/readme-$1.sh'" ||
		fail "README block $1"
}

# ---- 1. build and lintian ---------------------------------------------------------
step "build the package in a scratch copy of the tree"
SRC="$TMP/build/polaimg"
mkdir -p "$SRC"
# The working tree without build products, generated autotools files or git.
rsync -a \
	--exclude=/.git --include=/build-aux/ --include=/build-aux/.keep --exclude='/build-aux/*' \
	--exclude='/build*' --exclude=/var --exclude=node_modules --exclude=autom4te.cache \
	--exclude=/configure --exclude='/configure~' --exclude=/Makefile.in --exclude=/aclocal.m4 \
	--exclude=/config.status --exclude=/config.log --exclude=/Makefile \
	--include=/m4/.keep --exclude='/m4/*' --exclude='*.o' --exclude='*.a' --exclude=.deps \
	--exclude=.dirstamp --exclude=/src/polaimg --exclude='/tests/unit/test_*[!c]' \
	--exclude='*.log' --exclude='*.trs' --exclude='/polaimg-*.tar.gz' \
	--exclude=/debian/polaimg --exclude=/debian/.debhelper --exclude=/debian/files \
	--exclude='/debian/*.substvars' --exclude=/debian/debhelper-build-stamp --exclude=/debian/tmp \
	"$ROOT"/ "$SRC"/
opts="parallel=$(nproc)"
[ "$CHECK" = 1 ] || opts="nocheck $opts"
(cd "$SRC" && DEB_BUILD_OPTIONS="$opts" dpkg-buildpackage -us -uc -b) >"$TMP/build1.log" 2>&1 ||
	{ tail -n 40 "$TMP/build1.log" >&2; fail "dpkg-buildpackage"; }
DEB1=$(ls "$TMP"/build/polaimg_*_"$(dpkg --print-architecture)".deb)
V1=$(dpkg-deb -f "$DEB1" Version)
echo "built $(basename "$DEB1")"

step "lintian"
# lintian warns when run as root; run it as nobody on a readable copy.
lint=0
runuser -u nobody -- lintian --fail-on error --display-info --show-overrides \
	"$TMP"/build/polaimg_"${V1}"_*.changes >"$TMP/lintian.txt" 2>&1 || lint=$?
cat "$TMP/lintian.txt"
[ "$lint" = 0 ] || fail "lintian reports errors"
echo "lintian: no errors; $(grep -c '^W: ' "$TMP/lintian.txt" || true) warnings; $(grep -c '^O: ' "$TMP/lintian.txt" || true) tags overridden (reasons above, debian/polaimg.lintian-overrides)"

# ---- 2. install and check the files ----------------------------------------------
step "install $(basename "$DEB1")"
if dpkg-query -W -f='${Status}' polaimg 2>/dev/null | grep -q "ok installed"; then
	DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq polaimg >/dev/null
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$DEB1" >"$TMP/install1.log" 2>&1 ||
	{ cat "$TMP/install1.log" >&2; fail "apt-get install"; }

step "check the installed files"
checks=0
expect() { # expect DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@"; then checks=$((checks + 1)); else fail "$d"; fi
}
mode_of() { stat -c '%U:%G %a' "$1"; }
for f in /usr/sbin/polaimg /etc/polaimg/polaimg.conf /usr/share/polaimg/sql/001_base.sql \
	/usr/share/polaimg/policy.xml /lib/systemd/system/polaimg.service \
	/lib/systemd/system/polaimg.socket /lib/systemd/system/polaimg-ingest.socket \
	/lib/systemd/system/polaimg-sweep.service /lib/systemd/system/polaimg-sweep.timer \
	/etc/nginx/snippets/polaimg.conf /etc/apache2/conf-available/polaimg.conf \
	/etc/apache2/conf-available/polaimg-fcgid.conf /usr/share/man/man8/polaimg.8.gz \
	/usr/share/doc/polaimg/copyright; do
	expect "$f installed" test -f "$f"
done
expect "the API and the design are installed as documentation" sh -c \
	'ls /usr/share/doc/polaimg/api.md* /usr/share/doc/polaimg/design.md* >/dev/null'
expect "polaimg --version" sh -c "/usr/sbin/polaimg --version | grep -q '^polaimg '"
expect "the system user polaimg" sh -c 'id -u polaimg >/dev/null && [ "$(id -u polaimg)" -lt 1000 ]'
expect "polaimg has no login shell" sh -c 'getent passwd polaimg | grep -q ":/usr/sbin/nologin$"'
expect "/etc/polaimg/polaimg.conf is root:polaimg 0640" test "$(mode_of /etc/polaimg/polaimg.conf)" = "root:polaimg 640"
expect "/var/lib/polaimg is polaimg:www-data 0750" test "$(mode_of /var/lib/polaimg)" = "polaimg:www-data 750"
expect "/var/lib/polaimg/store is polaimg:www-data 0750" test "$(mode_of /var/lib/polaimg/store)" = "polaimg:www-data 750"
for f in /etc/polaimg/polaimg.conf /etc/nginx/snippets/polaimg.conf \
	/etc/apache2/conf-available/polaimg.conf /etc/apache2/conf-available/polaimg-fcgid.conf; do
	expect "$f is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' polaimg | grep -q ' $f '"
done
expect "every configuration key is in the installed polaimg.conf" sh -c \
	'for k in $(/usr/sbin/polaimg -c /dev/null config-keys 2>/dev/null | cut -f1); do grep -q "^#$k = " /etc/polaimg/polaimg.conf || exit 1; done'
expect "the installed binary reads /etc/polaimg/polaimg.conf" sh -c \
	'/usr/sbin/polaimg --help | grep -q "/etc/polaimg/polaimg.conf"'
expect "man -w polaimg finds polaimg(8)" sh -c 'man -w 8 polaimg | grep -q /usr/share/man/man8/polaimg.8'
expect "the ImageMagick policy is the one polaimg loads" sh -c \
	'/usr/sbin/polaimg -c /dev/null config-keys | grep -q "^imaging_policy_dir.*/usr/share/polaimg"'
expect "polaimg.service is neither enabled nor started by the installation" \
	test ! -e /etc/systemd/system/multi-user.target.wants/polaimg.service
systemd-analyze verify /lib/systemd/system/polaimg.service /lib/systemd/system/polaimg.socket \
	/lib/systemd/system/polaimg-ingest.socket \
	/lib/systemd/system/polaimg-sweep.service \
	/lib/systemd/system/polaimg-sweep.timer >"$TMP/verify.txt" 2>&1 ||
	{ cat "$TMP/verify.txt" >&2; fail "systemd-analyze verify"; }
if [ -s "$TMP/verify.txt" ]; then cat "$TMP/verify.txt"; fi
checks=$((checks + 1))
echo "$checks checks passed (systemd-analyze verify: the four units are clean)"

# ---- 3. the integration suite, three times -----------------------------------------
declare -A RESULT
for server in nginx apache-proxy-fcgi apache-fcgid; do
	[ "$SUITE" = 1 ] || { RESULT[$server]="skipped (--no-suite)"; continue; }
	step "integration suite against the installed package behind $server"
	log="$TMP/itest-$server.log"
	r=0
	"$ROOT/tests/integration/run.sh" --installed --server "$server" >"$log" 2>&1 || r=$?
	RESULT[$server]=$(grep '^==== polaimg integration tests' "$log" | tail -n 1)
	echo "${RESULT[$server]:-no summary}"
	if [ "$r" -ne 0 ]; then
		grep -E '^✖' "$log" | sort -u | head -n 40 >&2
		tail -n 40 "$log" >&2
		fail "integration suite behind $server"
	fi
done

# ---- 4. upgrade with the service running -------------------------------------------
step "build version 2 (changelog entry only: the binary package is rebuilt)"
V2="${V1%-*}-$(( ${V1##*-} + 1 ))"
{
	printf 'polaimg (%s) unstable; urgency=medium\n\n  * Upgrade test build.\n\n' "$V2"
	printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Maintainer)" "$(date -R)"
	cat "$SRC/debian/changelog"
} >"$TMP/changelog" && mv "$TMP/changelog" "$SRC/debian/changelog"
(cd "$SRC" && DEB_BUILD_OPTIONS="$opts" dpkg-buildpackage -us -uc -b -nc) >"$TMP/build2.log" 2>&1 ||
	{ tail -n 40 "$TMP/build2.log" >&2; fail "dpkg-buildpackage (version 2)"; }
DEB2="$TMP/build/polaimg_${V2}_$(dpkg --print-architecture).deb"
[ -f "$DEB2" ] || fail "$DEB2 not built"
echo "built $(basename "$DEB2")"

step "configure the installed package and start it as polaimg.service does"
# A PostgreSQL cluster of our own, reached over its unix socket.
PG_UP=1
pl_pg_start "$PG" "fsync = off" || fail "PostgreSQL"
# The README's steps 2 to 4: a login role for the service, the database (a
# site without PolaCare), the configuration, the migrations applied by the
# tables' owner, the grants.
readme_run db-role
readme_run createdb
JWT=$(openssl rand -hex 32)
# The administrator's edits of the conffile (kept across the upgrade). The
# file is one of an earlier version: no ingest_listen (the socket
# polaimg-ingest.socket passes must still get the ingest pool, since the
# installed web server configuration sends uploads there).
sed -i '/^ingest_listen = /d' /etc/polaimg/polaimg.conf
cat >>/etc/polaimg/polaimg.conf <<EOF

# set by tests/package/run.sh
database_url = host=$PG dbname=polacare user=polaimg
jwt_secret = $JWT
url_signing_key = $(openssl rand -hex 32)
workers = 2
EOF
/usr/sbin/polaimg check-config >"$TMP/check-config.txt" 2>&1 ||
	{ cat "$TMP/check-config.txt" >&2; fail "polaimg check-config"; }
readme_run migrate
DOCTOR=$(cat /proc/sys/kernel/random/uuid) PATIENT=$(cat /proc/sys/kernel/random/uuid)
CASE=$(cat /proc/sys/kernel/random/uuid)
psql -h "$PG" -U postgres -d polacare -q -v ON_ERROR_STOP=1 <<EOF
INSERT INTO users (id, role) VALUES ('$DOCTOR', 'doctor'), ('$PATIENT', 'patient');
INSERT INTO patient_cases (id, patient_id) VALUES ('$CASE', '$PATIENT');
EOF
TD=$(pl_mint_token "$DOCTOR" "$JWT" 3600) TP=$(pl_mint_token "$PATIENT" "$JWT" 3600)

service_start
echo "polaimg.service (emulated) running: master $MAINPID, $(unit_get User):$(unit_get Group)"

# nginx as Debian runs it (workers as www-data) with the installed snippet,
# unchanged: the real socket and store paths.
PORT=$(pl_free_port 18290 18389) || fail "no port for nginx"
# The installed log format (conf.d/polaimg-log.conf) and the installed
# snippet's access log, /var/log/nginx/access.log: read from here on.
ACCESS_LOG=/var/log/nginx/access.log
ACCESS_LOG_FROM=$(stat -c %s "$ACCESS_LOG" 2>/dev/null || echo 0)
PL_NGINX_LOG_FORMAT=/etc/nginx/conf.d/polaimg-log.conf pl_nginx_conf "$NGX" 1 www-data <<EOF
	server {
		listen 127.0.0.1:$PORT;
		include /etc/nginx/snippets/polaimg.conf;
	}
EOF
pl_nginx_start "$NGX" || fail "nginx -t with the installed snippet"
NGINX_PID=$PL_NGINX_PID
BASE="http://127.0.0.1:$PORT/api/v1/images"
pl_wait_port "$PORT" 10 nginx "$NGINX_PID" "$NGX/logs/error.log" || fail "nginx did not start"
curl -fsS "$BASE/health" | grep -q '"status":"ok"' || fail "health through nginx"

convert -size 1600x1200 plasma:fractal -quality 92 "$TMP/a.jpg"
up=$(curl -fsS -H "Authorization: Bearer $TD" -F "caseId=$CASE" -F "image=@$TMP/a.jpg;type=image/jpeg" "$BASE/upload") ||
	fail "upload through nginx"
ID1=$(printf '%s' "$up" | grep -o '"id":"[0-9a-f-]*"' | head -n 1 | cut -d'"' -f4)
curl -fsS -H "Authorization: Bearer $TP" "$BASE/$ID1/proxy?variant=original" -o "$TMP/a.out" ||
	{ tail -n 5 "$NGX/logs/error.log" >&2; fail "download through nginx (X-Accel-Redirect as www-data)"; }
cmp -s "$TMP/a.jpg" "$TMP/a.out" || fail "the downloaded original differs from the upload"
# The download's row is a read's: written within audit_read_delay (100 ms).
audit_rows=0
for _ in $(seq 1 30); do
	audit_rows=$(psql -h "$PG" -U postgres -d polacare -tAc "SELECT count(*) FROM image_events WHERE image_id = '$ID1'")
	[ "$audit_rows" -ge 2 ] && break
	sleep 0.1
done
[ "$audit_rows" -ge 2 ] || fail "no audit rows for the upload and the download ($audit_rows)"
echo "upload and offloaded download through nginx with the real paths, as database role polaimg: ok"

step "upgrade $V1 -> $V2 while an upload is in flight"
convert -size 2400x1800 plasma:fractal -quality 92 "$TMP/b.jpg"
# The body trickles in over 3 s, then its last slice waits for
# $TMP/release: the request stays in flight until the test lets it end.
node "$ROOT/tests/package/fcgi-slow.mjs" /run/polaimg/polaimg.sock "$TD" "$CASE" "$TMP/b.jpg" 3 \
	"$TMP/release" >"$TMP/slow.json" 2>&1 &
SLOW_PID=$!
# Health through nginx every 0.1 s for the whole upgrade: how many fail.
(
	while :; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$BASE/health" || true)
		echo "$code" >>"$TMP/probe.txt"
		sleep 0.1
	done
) &
PROBE_PID=$!
sleep 2
OLD=$MAINPID
t_up=$SECONDS
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$DEB2" >"$TMP/install2.log" 2>&1 ||
	{ cat "$TMP/install2.log" >&2; fail "apt-get install (upgrade)"; }
# postinst's `deb-systemd-invoke try-restart polaimg.service`, as systemd
# would carry it out (no systemd here, so postinst skipped it): the stop,
# with the upload still in flight; the master must wait for it.
kill -0 "$OLD" || fail "the old master died during the upgrade"
kill -0 "$SLOW_PID" || { cat "$TMP/slow.json" >&2; fail "the upload ended before the restart"; }
service_signal
sleep 2
kill -0 "$OLD" || fail "the old master exited with a request in flight (SIGTERM was not graceful)"
kill -0 "$SLOW_PID" || { cat "$TMP/slow.json" >&2; fail "the upload in flight was cut off by SIGTERM"; }
touch "$TMP/release"
service_stop
stop_seconds=$STOP_SECONDS stop_status=$STOP_STATUS
service_start
echo "old master $OLD: still serving the upload 2 s after SIGTERM, exited $stop_seconds s after it" \
	"(status $stop_status) once the upload was done; new master $MAINPID"
r=0
wait "$SLOW_PID" || r=$?
SLOW_PID=""
cat "$TMP/slow.json"
[ "$r" = 0 ] || fail "the upload in flight during the upgrade did not end with 201"
[ "$stop_status" = 0 ] || fail "the old master exited with status $stop_status"
for _ in $(seq 1 50); do curl -fs "$BASE/health" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 1
kill "$PROBE_PID" 2>/dev/null; wait "$PROBE_PID" 2>/dev/null || true
PROBE_PID=""
probes=$(wc -l <"$TMP/probe.txt")
bad=$(grep -vc '^200$' "$TMP/probe.txt" || true)
echo "health probes through nginx during the upgrade ($((SECONDS - t_up)) s): $probes sent, $bad not 200 ($(grep -v '^200$' "$TMP/probe.txt" | sort | uniq -c | tr -s ' \n' ' '))"
[ "$bad" = 0 ] || fail "requests failed while the service restarted (polaimg.socket should hold them)"
[ "$(dpkg-query -W -f='${Version}' polaimg)" = "$V2" ] || fail "version $V2 not installed"
curl -fsS "$BASE/health" | grep -q '"status":"ok"' || fail "health after the upgrade"
ID2=$(grep -o '\\"id\\":\\"[0-9a-f-]*' "$TMP/slow.json" | head -n 1 | sed 's/.*"//')
curl -fsS -H "Authorization: Bearer $TP" "$BASE/$ID2/proxy?variant=original" -o "$TMP/b.out" ||
	fail "download of the image uploaded during the upgrade"
cmp -s "$TMP/b.jpg" "$TMP/b.out" || fail "the image uploaded during the upgrade differs"
grep -q "^database_url = host=$PG" /etc/polaimg/polaimg.conf || fail "the edited conffile was not kept"
grep -q "^ingest_listen" /etc/polaimg/polaimg.conf && fail "the old conffile gained ingest_listen"
# The administrator's old file, the new package: uploads through the
# installed snippet reach the ingest pool on the socket systemd passes.
grep -q "uploads on the ingest socket passed by systemd" "$TMP/service.log" ||
	{ tail -n 20 "$TMP/service.log" >&2; fail "no ingest pool on the socket of polaimg-ingest.socket"; }
up=$(curl -fsS -H "Authorization: Bearer $TD" -F "caseId=$CASE" -F "image=@$TMP/a.jpg;type=image/jpeg" "$BASE/upload") ||
	{ tail -n 5 "$NGX/logs/error.log" >&2; fail "upload through nginx after the upgrade"; }
ID3=$(printf '%s' "$up" | grep -o '"id":"[0-9a-f-]*"' | head -n 1 | cut -d'"' -f4)
curl -fsS -H "Authorization: Bearer $TP" "$BASE/$ID3/proxy?variant=original" -o "$TMP/c.out" ||
	fail "download after the upgrade"
echo "upgrade: the in-flight upload completed (201), the new master serves, the conffile kept its edits"
echo "upgrade with the old polaimg.conf (no ingest_listen): ingest pool on polaimg-ingest.socket, upload 201 through nginx"

# ---- 5. without systemd ---------------------------------------------------------------
step "without systemd: the README's step 5d, the pid file"
# The emulated units go: no socket is passed any more, polaimg opens its own.
service_stop
kill "$HOLDER_PID" 2>/dev/null; wait "$HOLDER_PID" 2>/dev/null || true
HOLDER_PID=""
PIDFILE=/run/polaimg/polaimg.pid
# The README's 5d: log_file, and the package's ingest_listen (the test's
# file dropped it above to play an old configuration).
cat >>/etc/polaimg/polaimg.conf <<'EOF'
log_file = /var/log/polaimg/polaimg.log
ingest_listen = unix:/run/polaimg/ingest.sock
EOF
grep -q '^pid_file = /run/polaimg/polaimg.pid$' /etc/polaimg/polaimg.conf ||
	fail "the package's polaimg.conf does not set pid_file"
readme_run manual-start
for _ in $(seq 1 100); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
[ -s "$PIDFILE" ] || { tail -n 20 /var/log/polaimg/polaimg.log >&2; fail "no pid file $PIDFILE"; }
MANUAL_PID=$(cat "$PIDFILE")
[ "$(readlink "/proc/$MANUAL_PID/exe")" = /usr/sbin/polaimg ] || fail "the pid file does not name polaimg"
[ "$(ps -o user= -p "$MANUAL_PID")" = polaimg ] || fail "the master does not run as polaimg"
grep -q "^Umask:[[:space:]]*0027$" "/proc/$MANUAL_PID/status" || fail "the master's umask is not 0027"
gid_www=$(getent group www-data | cut -d: -f3) gid_pi=$(getent group polaimg | cut -d: -f3)
[ "$(awk '/^Gid:/ {print $2}' "/proc/$MANUAL_PID/status")" = "$gid_www" ] || fail "the master's group is not www-data"
grep -qE "^Groups:.*\b$gid_pi\b" "/proc/$MANUAL_PID/status" || fail "the master lacks the supplementary group polaimg"
for sock in /run/polaimg/polaimg.sock /run/polaimg/ingest.sock; do
	pl_wait_socket "$sock" 10 "polaimg (started by hand)" "$MANUAL_PID" /var/log/polaimg/polaimg.log ||
		fail "no $sock"
	[ "$(stat -c '%U:%G %a' "$sock")" = "polaimg:www-data 660" ] || fail "$sock: $(stat -c '%U:%G %a' "$sock")"
done
for _ in $(seq 1 50); do curl -fs "$BASE/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "$BASE/health" | grep -q '"status":"ok"' || fail "health through nginx (started by hand)"
r=0
timeout 20 runuser -u polaimg -g www-data -G polaimg -- /usr/sbin/polaimg serve >"$TMP/second.log" 2>&1 || r=$?
[ "$r" != 0 ] && [ "$r" != 124 ] || fail "a second master on the same pid file was not refused ($r)"
grep -q "held by a running master (pid $MANUAL_PID)" "$TMP/second.log" ||
	{ cat "$TMP/second.log" >&2; fail "the second master did not name the first"; }
[ "$(cat "$PIDFILE")" = "$MANUAL_PID" ] || fail "the refused master changed the pid file"
curl -fsS "$BASE/health" | grep -q '"status":"ok"' || fail "health after the refused second master"
echo "started by hand: master $MANUAL_PID as polaimg:www-data (+polaimg), umask 0027, sockets 0660," \
	"pid file $PIDFILE; a second master refused, naming it"
# The README's restart after an upgrade without systemd: stop, start.
readme_run manual-stop
kill -0 "$MANUAL_PID" 2>/dev/null && fail "the master outlived its pid file"
readme_run manual-start
for _ in $(seq 1 100); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
MANUAL_PID=$(cat "$PIDFILE")
pl_wait_socket /run/polaimg/ingest.sock 10 "polaimg (restarted by hand)" "$MANUAL_PID" /var/log/polaimg/polaimg.log ||
	fail "restart by hand"
for _ in $(seq 1 50); do curl -fs "$BASE/health" >/dev/null 2>&1 && break; sleep 0.1; done
echo "restarted by hand (README, Upgrades without systemd): master $MANUAL_PID"

step "signed links and tokens: none in any log"
DL=$(curl -fsS -H "Authorization: Bearer $TP" "$BASE/$ID1/download-url" | grep -o '"downloadUrl":"[^"]*"' | cut -d'"' -f4)
case "$DL" in */file\?*sig=*) ;; *) fail "download-url answered no signed /file URL ($DL)" ;; esac
DL=${DL//\\\//\/}
[ "${DL#/}" != "$DL" ] && DL="http://127.0.0.1:$PORT$DL"
curl -fsS "$DL" -o "$TMP/signed.out" || fail "signed download through nginx"
cmp -s "$TMP/a.jpg" "$TMP/signed.out" || fail "the signed download differs from the upload"
curl -fsS -H "Authorization: Bearer $TP" "$BASE/$ID1/download-url?variant=thumbnail" >/dev/null
UU=$(curl -fsS -H "Authorization: Bearer $TD" -H 'Content-Type: application/json' \
	-d "{\"fileName\":\"d.jpg\",\"contentType\":\"image/jpeg\",\"caseId\":\"$CASE\"}" "$BASE/upload-url") ||
	fail "upload-url"
UURL=$(printf '%s' "$UU" | grep -o '"uploadUrl":"[^"]*"' | cut -d'"' -f4)
case "$UURL" in */upload\?token=*) ;; *) fail "upload-url answered no token URL ($UURL)" ;; esac
UURL=${UURL//\\\//\/}
[ "${UURL#/}" != "$UURL" ] && UURL="http://127.0.0.1:$PORT$UURL"
convert -size 640x480 plasma:fractal -quality 90 "$TMP/d.jpg"
curl -fsS -X PUT -H 'Content-Type: image/jpeg' --data-binary @"$TMP/d.jpg" "$UURL" >/dev/null ||
	fail "direct upload with its token through nginx"
# A bad signature and a bad token too: refused requests are logged as well.
curl -s -o /dev/null "${DL%sig=*}sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" || true
curl -s -o /dev/null -X PUT -H 'Content-Type: image/jpeg' --data-binary @"$TMP/d.jpg" "${UURL%token=*}token=1.2.AAAAAAAAAAAA" || true
sleep 1
tail -c +"$((ACCESS_LOG_FROM + 1))" "$ACCESS_LOG" >"$TMP/access-new.log"
grep -q " /api/v1/images/$ID1/file " "$TMP/access-new.log" ||
	{ tail -n 5 "$TMP/access-new.log" >&2; fail "the signed download is not in $ACCESS_LOG in the polaimg format"; }
leak_re='[?&](sig|token|X-Amz-Signature)=[^ &"]{6}|eyJ[A-Za-z0-9_-]{10,}'
logs=("$TMP/access-new.log" "$NGX"/logs/*.log /var/log/polaimg/polaimg.log "$TMP/service.log")
if grep -HnoE "$leak_re" "${logs[@]}" >"$TMP/leaks.txt"; then
	head -n 5 "$TMP/leaks.txt" >&2
	fail "a signature, token or JWT reached a log"
fi
echo "signed download, direct upload with its token, a bad signature and a bad token: none of them" \
	"in $ACCESS_LOG ($(wc -l <"$TMP/access-new.log") new lines), nginx's other logs or polaimg's"

step "logrotate (the installed /etc/logrotate.d/polaimg)"
lines_before=$(wc -l </var/log/polaimg/polaimg.log)
logrotate -f -s "$TMP/logrotate.state" /etc/logrotate.d/polaimg || fail "logrotate"
[ -s /var/log/polaimg/polaimg.log.1 ] || fail "logrotate left no polaimg.log.1"
curl -fsS "$BASE/health" >/dev/null
for _ in $(seq 1 50); do grep -q "GET /api/v1/images/health" /var/log/polaimg/polaimg.log 2>/dev/null && break; sleep 0.1; done
grep -q "GET /api/v1/images/health" /var/log/polaimg/polaimg.log ||
	fail "after logrotate polaimg does not write to the new polaimg.log (SIGUSR1 through the pid file)"
[ "$(stat -c '%U:%G %a' /var/log/polaimg/polaimg.log)" = "polaimg:www-data 640" ] ||
	fail "the new log file: $(stat -c '%U:%G %a' /var/log/polaimg/polaimg.log)"
echo "rotated: polaimg.log.1 has the $lines_before lines before; the master reopened polaimg.log on SIGUSR1"

step "backup, restore into an emptied database and store, verify"
readme_run backup
images=$(psql -h "$PG" -U postgres -d polacare -tAc "SELECT count(*) FROM case_images WHERE status = 'ready'")
readme_run manual-stop
# A fresh instance: the database and the store are gone.
psql -h "$PG" -U postgres -d postgres -q -c "DROP DATABASE polacare"
mv /var/lib/polaimg/store "$TMP/store.lost"
readme_run restore
[ "$(psql -h "$PG" -U postgres -d polacare -tAc "SELECT count(*) FROM case_images WHERE status = 'ready'")" = "$images" ] ||
	fail "the restored database has not the $images ready images"
[ "$(stat -c '%U:%G %a' /var/lib/polaimg/store)" = "polaimg:www-data 750" ] || fail "the restored store's owner or mode"
readme_run manual-start
for _ in $(seq 1 100); do [ -s "$PIDFILE" ] && break; sleep 0.1; done
MANUAL_PID=$(cat "$PIDFILE")
for _ in $(seq 1 50); do curl -fs "$BASE/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS -H "Authorization: Bearer $TP" "$BASE/$ID1/proxy?variant=original" -o "$TMP/a.restored" ||
	fail "download after the restore"
cmp -s "$TMP/a.jpg" "$TMP/a.restored" || fail "the restored image differs"
rm -rf "$TMP/store.lost" /var/backups/polaimg
echo "restored $images images: verify clean, served again"

# ---- 6. removal ------------------------------------------------------------------------
step "remove with the master running and no systemd, a site including the snippet, Apache's conf enabled"
SITE=/etc/nginx/sites-available/polaimg-pkgtest
printf 'server {\n\tlisten 127.0.0.1:18399;\n\tinclude snippets/polaimg.conf;\n}\n' >"$SITE"
ln -sf "$SITE" /etc/nginx/sites-enabled/polaimg-pkgtest
a2enconf -q polaimg >/dev/null
objects=$(find /var/lib/polaimg/store/cases/"$CASE" -type f | wc -l)
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq polaimg >"$TMP/remove.log" 2>&1 ||
	{ cat "$TMP/remove.log" >&2; fail "apt-get remove"; }
cat "$TMP/remove.log"
kill -0 "$MANUAL_PID" 2>/dev/null && fail "apt-get remove left the master (pid file) running"
for p in $(pgrep -x polaimg); do # the package's, not other polaimg builds'
	case "$(readlink "/proc/$p/exe" 2>/dev/null)" in
	/usr/sbin/polaimg*) fail "polaimg process $p of the package remains after apt-get remove" ;;
	esac
done
[ ! -e "$PIDFILE" ] || fail "the pid file remains (the master did not exit cleanly)"
[ ! -e /etc/apache2/conf-enabled/polaimg.conf ] || fail "apt-get remove left conf-enabled/polaimg.conf"
grep -q "WARNING: $SITE includes snippets/polaimg" "$TMP/remove.log" ||
	fail "apt-get remove did not name $SITE, which includes the snippet"
echo "removed: the master stopped through its pid file, Apache's conf disabled, $SITE named"

step "the README's removal step, then purge"
readme_run removal-nginx
grep -q snippets/polaimg "$SITE" && fail "the README's removal step left the include in $SITE"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq polaimg >"$TMP/purge.log" 2>&1 ||
	{ cat "$TMP/purge.log" >&2; fail "apt-get purge"; }
grep -q WARNING "$TMP/purge.log" && { cat "$TMP/purge.log" >&2; fail "purge warned after the README's removal step"; }
/usr/sbin/nginx -t -q || fail "nginx -t fails after the purge"
rm -f "$SITE" /etc/nginx/sites-enabled/polaimg-pkgtest
[ ! -e /etc/polaimg ] || fail "/etc/polaimg remains after purge"
[ ! -e /usr/sbin/polaimg ] || fail "/usr/sbin/polaimg remains after purge"
[ ! -e "$UNIT" ] || fail "$UNIT remains after purge"
[ ! -e /etc/logrotate.d/polaimg ] || fail "/etc/logrotate.d/polaimg remains after purge"
[ ! -e /etc/nginx/conf.d/polaimg-log.conf ] || fail "conf.d/polaimg-log.conf remains after purge"
[ ! -L /etc/apache2/conf-enabled/polaimg.conf ] || fail "a dangling conf-enabled/polaimg.conf after purge"
[ "$(find /var/lib/polaimg/store/cases/"$CASE" -type f | wc -l)" = "$objects" ] ||
	fail "purge removed images from the store"
id polaimg >/dev/null 2>&1 || fail "the system user polaimg was removed (it owns the store)"
echo "purged: configuration gone, nginx -t clean; the store ($objects objects of the test case) and the user polaimg kept"
# The test's own images go; the store directory stays as purge left it.
rm -rf "/var/lib/polaimg/store/cases/$CASE"
CASE=""

step "./dev leaves the host's services alone (tests/package/check-dev.sh)"
"$ROOT/tests/package/check-dev.sh" >"$TMP/check-dev.tap" 2>&1 || { cat "$TMP/check-dev.tap" >&2; fail "check-dev.sh"; }
echo "check-dev.sh: $(grep -c '^ok' "$TMP/check-dev.tap") checks passed"

step "done"
for server in nginx apache-proxy-fcgi apache-fcgid; do echo "$server: ${RESULT[$server]}"; done
echo "package test passed in $((SECONDS - T0)) s"
