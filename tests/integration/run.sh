#!/usr/bin/env bash
# polaimg HTTP integration tests.
#
# Usage (from the repository root, with src/polaimg built; build/src/polaimg
# of an out-of-tree build or POLAIMG_BIN=/path/to/polaimg also do):
#
#     tests/integration/run.sh [--offload nginx|none] [--storage local|s3|supabase]
#                              [--keep] [--nginx-snippet FILE] [-- test-file.test.mjs ...]
#
# Starts a throw-away PostgreSQL 15 cluster (unix socket only), polaimg
# (master + 2 workers on a unix FastCGI socket) and nginx in front of it with
# conf/nginx/polaimg.conf, all under one mktemp directory, then runs the
# node:test files in tests/integration/ one file at a time against
# http://127.0.0.1:<port>. Everything it started is stopped on exit, also on
# failure. --keep leaves the temp directory in place for inspection;
# --nginx-snippet tries another version of conf/nginx/polaimg.conf.
#
# --storage s3 starts the S3-compatible test server (s3rver behind the
# SigV4-verifying front, tests/servers/s3/start.sh), --storage supabase the
# Supabase Storage stand-in (tests/servers/supabase/start.sh); polaimg.conf
# gets the server's storage lines instead of "storage_provider = local"
# (storage_dir stays: it is the scratch space for temp files), and nginx
# includes conf/nginx/polaimg-s3.conf or conf/nginx/polaimg-supabase.conf
# (uncommented) with the server's port. The same test files run against
# every back end; lib.mjs reads the objects where the server keeps them.
#
# Environment handed to the tests (see lib.mjs): BASE_URL, JWT_SECRET,
# URL_SIGNING_KEY, PGHOST, PGDATABASE, PGUSER, STORAGE_DIR, MAX_UPLOAD_BYTES,
# OFFLOAD, POLAIMG_LOG, POLAIMG_BIN, POLAIMG_CONF, PG_CTL_STOP, PG_CTL_START,
# IMAGE_CACHE_DIR, TEST_TMP; and for the back end: ITEST_STORAGE (local, s3
# or supabase), ITEST_OBJECT_ROOT (the directory holding the objects: the
# storage_dir, s3rver's bucket directory, the stand-in's bucket directory),
# ITEST_OBJECT_LAYOUT (plain: one file per key; s3rver: <key>._S3rver_object),
# ITEST_STORE_URL (the remote store's origin) and ITEST_FAULT_URL (its
# /__fault switch), empty for local storage.
set -euo pipefail

OFFLOAD=nginx
STORAGE=local
KEEP=0
SNIPPET=conf/nginx/polaimg.conf
TEST_FILES=()

usage() {
	echo "usage: $0 [--offload nginx|none] [--storage local|s3|supabase] [--keep] [--nginx-snippet FILE] [-- files...]" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--offload) [ $# -ge 2 ] || usage; OFFLOAD="$2"; shift 2 ;;
	--offload=*) OFFLOAD="${1#*=}"; shift ;;
	--storage) [ $# -ge 2 ] || usage; STORAGE="$2"; shift 2 ;;
	--storage=*) STORAGE="${1#*=}"; shift ;;
	--keep) KEEP=1; shift ;;
	--nginx-snippet) [ $# -ge 2 ] || usage; SNIPPET="$2"; shift 2 ;;
	--) shift; TEST_FILES=("$@"); break ;;
	-h|--help) usage ;;
	*) echo "unknown argument: $1" >&2; usage ;;
	esac
done

case "$OFFLOAD" in nginx|none) ;; *) echo "--offload must be nginx or none" >&2; exit 2 ;; esac
case "$STORAGE" in local|s3|supabase) ;; *) echo "--storage must be local, s3 or supabase" >&2; exit 2 ;; esac

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"

# The binary: $POLAIMG_BIN, else an in-tree build, else build/ (out of tree).
if [ -n "${POLAIMG_BIN:-}" ]; then
	SRC_BIN="$POLAIMG_BIN"
elif [ -x "$REPO_ROOT/src/polaimg" ] || ! [ -x "$REPO_ROOT/build/src/polaimg" ]; then
	SRC_BIN="$REPO_ROOT/src/polaimg"
else
	SRC_BIN="$REPO_ROOT/build/src/polaimg"
fi
# polaimg reads POLAIMG_<KEY> (and a few other names) from the environment as
# configuration overrides: start it with none of the caller's.
unset DATABASE_URL JWT_SECRET STORAGE_PROVIDER || true
for v in $(env | sed -n 's/^\(POLAIMG_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
PG_BINDIR=/usr/lib/postgresql/15/bin
NGINX_BIN=/usr/sbin/nginx
CONVERT=/usr/bin/convert

[ -x "$SRC_BIN" ] || { echo "$SRC_BIN not found: build polaimg first" >&2; exit 2; }
[ -x "$PG_BINDIR/initdb" ] || { echo "PostgreSQL 15 server binaries missing in $PG_BINDIR" >&2; exit 2; }
[ -x "$NGINX_BIN" ] || { echo "$NGINX_BIN missing (apt-get install nginx-light)" >&2; exit 2; }
[ -x "$CONVERT" ] || { echo "$CONVERT missing (apt-get install imagemagick)" >&2; exit 2; }
if ! command -v node >/dev/null 2>&1; then
	echo "node not found; installing Debian's nodejs" >&2
	apt-get install -y nodejs >&2
fi

TMP="$(mktemp -d /tmp/polaimg-itest.XXXXXX)"
chmod 755 "$TMP"
PG_DIR="$TMP/pg"
PG_DATA="$PG_DIR/data"
STORE="$TMP/store"
NGX="$TMP/nginx"
SOCK="$TMP/polaimg.sock"
CONF="$TMP/polaimg.conf"
PLOG="$TMP/polaimg.log"
POLAIMG_PID=""
NGINX_PID=""
PG_STARTED=0
STORE_STARTED=""

as_pg() { runuser -u postgres -- "$@"; }

cleanup() {
	local rc=$?
	set +e
	if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
		kill -QUIT "$NGINX_PID" 2>/dev/null
		for _ in $(seq 1 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$NGINX_PID" 2>/dev/null
		wait "$NGINX_PID" 2>/dev/null
	fi
	if [ -n "$POLAIMG_PID" ] && kill -0 "$POLAIMG_PID" 2>/dev/null; then
		kill -TERM "$POLAIMG_PID" 2>/dev/null
		for _ in $(seq 1 100); do kill -0 "$POLAIMG_PID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$POLAIMG_PID" 2>/dev/null; then
			echo "polaimg master $POLAIMG_PID did not stop on SIGTERM within 10 s; killing it" >&2
			kill -KILL "$POLAIMG_PID" 2>/dev/null
		fi
		wait "$POLAIMG_PID" 2>/dev/null
	fi
	if [ "$PG_STARTED" = 1 ] && [ -f "$PG_DATA/postmaster.pid" ]; then
		as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1
	fi
	case "$STORE_STARTED" in
	s3) s3_stop ;;
	supabase) supabase_stop ;;
	esac
	if [ "$KEEP" = 1 ]; then
		echo "kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rand48() { head -c 36 /dev/urandom | base64 | tr '+/' 'xy' | head -c 48; }

show_logs() {
	echo "----- tail of polaimg.log -----" >&2
	tail -n 60 "$PLOG" >&2 2>/dev/null || true
	echo "----- tail of nginx error.log -----" >&2
	tail -n 30 "$NGX/logs/error.log" >&2 2>/dev/null || true
	case "$STORAGE" in
	s3)
		echo "----- tail of the S3 front's log -----" >&2
		tail -n 30 "$TMP/s3/front.log" >&2 2>/dev/null || true
		;;
	supabase)
		echo "----- tail of the Supabase stand-in's log -----" >&2
		tail -n 30 "$TMP/supabase/server.log" >&2 2>/dev/null || true
		;;
	esac
}

# ---- PostgreSQL ---------------------------------------------------------
mkdir -p "$PG_DIR"
chown postgres: "$PG_DIR"
as_pg "$PG_BINDIR/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
	>"$TMP/initdb.log" 2>&1 || { cat "$TMP/initdb.log" >&2; exit 1; }
cat >>"$PG_DATA/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
PG_START_CMD="runuser -u postgres -- $PG_BINDIR/pg_ctl -D $PG_DATA -l $PG_DIR/server.log -w -t 30 start"
PG_STOP_CMD="runuser -u postgres -- $PG_BINDIR/pg_ctl -D $PG_DATA -m fast -w -t 30 stop"
$PG_START_CMD >/dev/null || { cat "$PG_DIR/server.log" >&2; exit 1; }
PG_STARTED=1
export PGHOST="$PG_DIR" PGUSER=postgres PGDATABASE=polaimg_test
psql -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE polaimg_test' >/dev/null

# ---- nginx port -----------------------------------------------------------
port_free() {
	node -e '
		const s = require("net").createServer();
		s.once("error", () => process.exit(1));
		s.listen(+process.argv[1], "127.0.0.1", () => s.close(() => process.exit(0)));
	' "$1"
}
PORT=""
for p in $(seq 18080 18179); do
	if port_free "$p"; then PORT="$p"; break; fi
done
[ -n "$PORT" ] || { echo "no free port in 18080..18179" >&2; exit 1; }

# ---- the storage back end ---------------------------------------------------
# STORAGE_CONF replaces "storage_provider = local" in polaimg.conf; REMOTE_SNIPPET
# is the nginx location that fetches presigned URLs for offload = nginx.
STORAGE_CONF="storage_provider = local"
REMOTE_SNIPPET=""
ITEST_OBJECT_ROOT="$STORE"
ITEST_OBJECT_LAYOUT=plain
ITEST_STORE_URL=""
ITEST_FAULT_URL=""
case "$STORAGE" in
s3)
	# shellcheck source=../servers/s3/start.sh
	. "$REPO_ROOT/tests/servers/s3/start.sh"
	STORE_STARTED=s3
	s3_start "$TMP" || exit 1
	STORAGE_CONF="$S3_CONF_LINES"
	ITEST_OBJECT_ROOT="$S3_DIR/data/$S3_BUCKET"
	ITEST_OBJECT_LAYOUT=s3rver
	ITEST_STORE_URL="$S3_ENDPOINT"
	ITEST_FAULT_URL="$S3_ENDPOINT/__fault"
	# The snippet's defaults are a MinIO at 127.0.0.1:9000 (path style).
	grep -q '127\.0\.0\.1:9000' "$REPO_ROOT/conf/nginx/polaimg-s3.conf" ||
		{ echo "conf/nginx/polaimg-s3.conf no longer names 127.0.0.1:9000" >&2; exit 1; }
	REMOTE_SNIPPET="$(sed -e "s#127\.0\.0\.1:9000#127.0.0.1:$S3_PORT#g" "$REPO_ROOT/conf/nginx/polaimg-s3.conf")"
	;;
supabase)
	# shellcheck source=../servers/supabase/start.sh
	. "$REPO_ROOT/tests/servers/supabase/start.sh"
	STORE_STARTED=supabase
	supabase_start "$TMP" || exit 1
	STORAGE_CONF="$SUPA_CONF_LINES"
	ITEST_OBJECT_ROOT="$SUPA_STORAGE_DIR"
	ITEST_STORE_URL="$SUPA_URL"
	ITEST_FAULT_URL="$SUPA_URL/__fault"
	# The snippet ships commented out: uncomment its location blocks (from
	# the first "#location" on, lines "#location", "#}", "#" and "#    …";
	# the prose between the blocks starts with "# " and stays), point it at
	# the stand-in (plain http: no proxy_ssl_* lines).
	grep -q '^#location /_polaimg_remote/' "$REPO_ROOT/conf/nginx/polaimg-supabase.conf" ||
		{ echo "conf/nginx/polaimg-supabase.conf: no commented-out location to enable" >&2; exit 1; }
	REMOTE_SNIPPET="$(sed -e '/^#location /,$ s/^#\(location \|}\|    \|$\)/\1/' \
		-e "s#https://PROJECT\.supabase\.co/#$SUPA_URL/#" \
		-e "s#Host PROJECT\.supabase\.co;#Host 127.0.0.1:$SUPA_PORT;#" \
		-e '/^ *proxy_ssl_/d' "$REPO_ROOT/conf/nginx/polaimg-supabase.conf")"
	;;
esac
if [ "$STORAGE" != local ] && [ "$OFFLOAD" = nginx ]; then
	grep -qE '^[^#]*PROJECT|^#location' <<<"$REMOTE_SNIPPET" &&
		{ echo "the $STORAGE nginx snippet was not fully rewritten" >&2; exit 1; }
fi

# ---- polaimg ------------------------------------------------------------
# Run a private copy, so that a rebuild during the run cannot mix binaries.
mkdir -p "$TMP/bin"
cp "$SRC_BIN" "$TMP/bin/polaimg"
POLAIMG_BIN="$TMP/bin/polaimg"
JWT_SECRET="$(rand48)"
URL_SIGNING_KEY="$(rand48)"
MAX_UPLOAD_BYTES=4194304
mkdir -p "$STORE"
cat >"$CONF" <<EOF
# generated by tests/integration/run.sh
listen = unix:$SOCK
workers = 2
$STORAGE_CONF
storage_dir = $STORE
database_url = host=$PG_DIR dbname=polaimg_test user=postgres
jwt_secret = $JWT_SECRET
url_signing_key = $URL_SIGNING_KEY
offload = $OFFLOAD
public_base_url = http://127.0.0.1:$PORT
max_upload_bytes = $MAX_UPLOAD_BYTES
delete_retention_days = 0
log_level = debug
imaging_policy_dir = $REPO_ROOT/conf
EOF

echo "polaimg: migrate (twice, must be idempotent)"
"$POLAIMG_BIN" -c "$CONF" migrate >"$TMP/migrate1.log" 2>&1 ||
	{ echo "first migrate failed:" >&2; cat "$TMP/migrate1.log" >&2; exit 1; }
"$POLAIMG_BIN" -c "$CONF" migrate >"$TMP/migrate2.log" 2>&1 ||
	{ echo "second migrate failed (not idempotent):" >&2; cat "$TMP/migrate2.log" >&2; exit 1; }

"$POLAIMG_BIN" -c "$CONF" serve >"$PLOG" 2>&1 &
POLAIMG_PID=$!
for _ in $(seq 1 100); do
	[ -S "$SOCK" ] && break
	kill -0 "$POLAIMG_PID" 2>/dev/null || break
	sleep 0.1
done
if ! [ -S "$SOCK" ] || ! kill -0 "$POLAIMG_PID" 2>/dev/null; then
	echo "polaimg serve did not come up (socket $SOCK)" >&2
	show_logs
	exit 1
fi

# ---- nginx ----------------------------------------------------------------
mkdir -p "$NGX/logs" "$NGX/tmp"
cp /etc/nginx/fastcgi_params /etc/nginx/mime.types "$NGX/"
sed -e "s#/run/polaimg/polaimg.sock#$SOCK#g" \
	-e "s#/var/lib/polaimg/store/#$STORE/#g" \
	-e "s#/usr/share/polaimg/www/#$REPO_ROOT/www/#g" \
	"$SNIPPET" >"$NGX/polaimg-snippet.conf"
# Remote storage with offload = nginx: the location that fetches presigned URLs.
if [ "$STORAGE" != local ] && [ "$OFFLOAD" = nginx ]; then
	printf '%s\n' "$REMOTE_SNIPPET" >"$NGX/polaimg-remote.conf"
else
	echo "# no remote storage location (storage=$STORAGE, offload=$OFFLOAD)" >"$NGX/polaimg-remote.conf"
fi
cat >"$NGX/nginx.conf" <<EOF
# generated by tests/integration/run.sh
user root;
worker_processes 1;
error_log $NGX/logs/error.log info;
pid $NGX/nginx.pid;
events { worker_connections 256; }
http {
	include mime.types;
	default_type application/octet-stream;
	access_log $NGX/logs/access.log;
	client_body_temp_path $NGX/tmp/body;
	proxy_temp_path $NGX/tmp/proxy;
	fastcgi_temp_path $NGX/tmp/fastcgi;
	uwsgi_temp_path $NGX/tmp/uwsgi;
	scgi_temp_path $NGX/tmp/scgi;
	sendfile on;
	server {
		listen 127.0.0.1:$PORT;
		server_name localhost;
		root $NGX/html;
		include $NGX/polaimg-snippet.conf;
		include $NGX/polaimg-remote.conf;
	}
}
EOF
mkdir -p "$NGX/html"
"$NGINX_BIN" -t -p "$NGX" -e "$NGX/logs/error.log" -c "$NGX/nginx.conf" >"$TMP/nginx-t.log" 2>&1 ||
	{ cat "$TMP/nginx-t.log" >&2; exit 1; }
"$NGINX_BIN" -p "$NGX" -e "$NGX/logs/error.log" -c "$NGX/nginx.conf" -g 'daemon off;' \
	>"$NGX/logs/stdout.log" 2>&1 &
NGINX_PID=$!
BASE_URL="http://127.0.0.1:$PORT"
up=0
for _ in $(seq 1 50); do
	kill -0 "$NGINX_PID" 2>/dev/null || break
	if node -e 'require("net").connect(+process.argv[1], "127.0.0.1").on("connect", () => process.exit(0)).on("error", () => process.exit(1))' "$PORT"; then
		up=1
		break
	fi
	sleep 0.1
done
[ "$up" = 1 ] || { echo "nginx did not start" >&2; show_logs; exit 1; }

# ---- tests ------------------------------------------------------------------
mkdir -p "$TMP/images"
export BASE_URL JWT_SECRET URL_SIGNING_KEY STORAGE_DIR="$STORE" MAX_UPLOAD_BYTES OFFLOAD
export POLAIMG_LOG="$PLOG" POLAIMG_BIN POLAIMG_CONF="$CONF"
export PG_CTL_STOP="$PG_STOP_CMD" PG_CTL_START="$PG_START_CMD"
export IMAGE_CACHE_DIR="$TMP/images" TEST_TMP="$TMP" NGINX_ERROR_LOG="$NGX/logs/error.log"
export ITEST_STORAGE="$STORAGE" ITEST_OBJECT_ROOT ITEST_OBJECT_LAYOUT ITEST_STORE_URL ITEST_FAULT_URL

if [ ${#TEST_FILES[@]} -eq 0 ]; then
	TEST_FILES=(tests/integration/*.test.mjs)
fi

echo "polaimg up (offload=$OFFLOAD, storage=$STORAGE) behind nginx at $BASE_URL; temp dir $TMP"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
TAP="$TMP/results.tap"
rc=0
if node --help 2>/dev/null | grep -q -- '--test-concurrency'; then
	node --test --test-concurrency=1 \
		--test-reporter=spec --test-reporter-destination=stdout \
		--test-reporter=tap --test-reporter-destination="$TAP" \
		"${TEST_FILES[@]}" || rc=$?
else
	# Node 18: no --test-concurrency; run the files one after the other.
	: >"$TAP"
	for f in "${TEST_FILES[@]}"; do
		if [ "$NODE_MAJOR" -ge 19 ] || node --help 2>/dev/null | grep -q -- '--test-reporter'; then
			node --test --test-reporter=spec --test-reporter-destination=stdout \
				--test-reporter=tap --test-reporter-destination="$TAP.one" "$f" || rc=1
			cat "$TAP.one" >>"$TAP"
		else
			node --test "$f" | tee "$TAP.one" || rc=1
			cat "$TAP.one" >>"$TAP"
		fi
	done
fi

pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$TAP" | awk '{s+=$1} END {print s+0}')
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$TAP" | awk '{s+=$1} END {print s+0}')
skip=$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$TAP" | awk '{s+=$1} END {print s+0}')
todo=$(sed -n 's/^# todo \([0-9]*\)$/\1/p' "$TAP" | awk '{s+=$1} END {print s+0}')

if ! kill -0 "$POLAIMG_PID" 2>/dev/null; then
	echo "polaimg master died during the tests" >&2
	rc=1
fi
crashes="$(grep -E 'master: worker [0-9]+ (killed by signal|exited with status [1-9]|ended with wait status)' "$PLOG" || true)"
if [ -n "$crashes" ]; then
	echo "polaimg workers crashed during the tests:" >&2
	echo "$crashes" >&2
	rc=1
fi

echo
echo "==== polaimg integration tests (offload=$OFFLOAD, storage=$STORAGE): $pass passed, $fail failed, $skip skipped, $todo todo ===="
if [ "$rc" -ne 0 ] || [ "$fail" -ne 0 ]; then
	show_logs
	exit 1
fi
exit 0
