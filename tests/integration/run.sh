#!/usr/bin/env bash
# polaimg HTTP integration tests.
#
# Usage (from the repository root, with src/polaimg built; build/src/polaimg
# of an out-of-tree build or POLAIMG_BIN=/path/to/polaimg also do):
#
#     tests/integration/run.sh [--offload nginx|none] [--storage local|s3|supabase]
#                              [--keep] [--nginx-snippet FILE] [--single-pool]
#                              [-- test-file.test.mjs ...]
#
# Starts a throw-away PostgreSQL cluster (unix socket only; the newest
# server installed), polaimg
# (master + 2 read workers on a unix FastCGI socket and 2 ingest workers on a
# second one, ingest_listen) and nginx in front of it with
# conf/nginx/polaimg.conf, which routes the upload routes to the ingest
# socket, all under one mktemp directory, then runs the
# node:test files in tests/integration/ one file at a time against
# http://127.0.0.1:<port>. Everything it started is stopped on exit, also on
# failure. --keep leaves the temp directory in place for inspection;
# --nginx-snippet tries another version of conf/nginx/polaimg.conf.
# --single-pool runs polaimg without ingest_listen (one pool serves every
# route, as source builds and old configuration files do); the snippet's
# ingest location then points at the one socket. Behind mod_fcgid there is
# no master and so always a single pool.
#
# Also: [--server nginx|apache-proxy-fcgi|apache-fcgid] [--installed].
# --server puts Apache 2.4 in front instead of nginx: run as root in the
# foreground on 127.0.0.1 with a generated httpd.conf (its own pid file,
# mutexes and logs in the temp directory) that includes
# conf/apache/polaimg.conf (apache-proxy-fcgi: mod_proxy_fcgi to polaimg's
# socket) or conf/apache/polaimg-fcgid.conf (apache-fcgid: mod_fcgid starts
# polaimg itself, one worker per process), both with mod_xsendfile and
# offload = apache (--offload none also works). polaimg then runs as
# www-data, so that Apache's workers can read the files it stores.
# --installed tests the installed Debian package instead of the build tree:
# /usr/sbin/polaimg with its migrations and ImageMagick policy from
# /usr/share/polaimg, the nginx snippet and Apache configurations from /etc,
# polaimg started the way polaimg.service starts it (its ExecStart as its
# User, Group and SupplementaryGroups, with its UMask and Environment, via
# setpriv: systemd need not run) and nginx's workers as www-data.
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
SERVER=nginx
INSTALLED=0
POOLS=2
SUPA_SIGN=jwt
TEST_FILES=()

usage() {
	echo "usage: $0 [--offload nginx|none] [--storage local|s3|supabase] [--keep] [--nginx-snippet FILE] [-- files...]" >&2
	echo "       [--server nginx|apache-proxy-fcgi|apache-fcgid] [--installed] [--supabase-sign jwt|api]" >&2
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
	--server) [ $# -ge 2 ] || usage; SERVER="$2"; shift 2 ;;
	--server=*) SERVER="${1#*=}"; shift ;;
	--installed) INSTALLED=1; shift ;;
	--single-pool) POOLS=1; shift ;;
	--supabase-sign) [ $# -ge 2 ] || usage; SUPA_SIGN="$2"; shift 2 ;;
	--) shift; TEST_FILES=("$@"); break ;;
	-h|--help) usage ;;
	*) echo "unknown argument: $1" >&2; usage ;;
	esac
done

case "$SERVER" in nginx|apache-proxy-fcgi|apache-fcgid) ;; *) echo "--server must be nginx, apache-proxy-fcgi or apache-fcgid" >&2; exit 2 ;; esac
# Behind Apache, offload by the web server is X-Sendfile: the default
# --offload nginx means offload = apache there.
if [ "$SERVER" != nginx ] && [ "$OFFLOAD" = nginx ]; then OFFLOAD=apache; fi
case "$SERVER:$OFFLOAD" in
nginx:nginx|nginx:none|apache-*:apache|apache-*:none) ;;
*) echo "--offload must be nginx or none (behind Apache: apache or none)" >&2; exit 2 ;;
esac
case "$STORAGE" in local|s3|supabase) ;; *) echo "--storage must be local, s3 or supabase" >&2; exit 2 ;; esac

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_ROOT"
# shellcheck source=../lib.sh
. "$REPO_ROOT/tests/lib.sh"

# The binary: $POLAIMG_BIN, else an in-tree build, else build/ (out of tree).
if [ -n "${POLAIMG_BIN:-}" ]; then
	SRC_BIN="$POLAIMG_BIN"
elif [ -x "$REPO_ROOT/src/polaimg" ] || ! [ -x "$REPO_ROOT/build/src/polaimg" ]; then
	SRC_BIN="$REPO_ROOT/src/polaimg"
else
	SRC_BIN="$REPO_ROOT/build/src/polaimg"
fi
UNIT=/lib/systemd/system/polaimg.service
# The clinic web page: the tree's, or the package's when testing the package.
WWW_DIR="$REPO_ROOT/www"
if [ "$INSTALLED" = 1 ]; then
	WWW_DIR=/usr/share/polaimg/www
	SRC_BIN=/usr/sbin/polaimg
	[ -f "$UNIT" ] || { echo "$UNIT missing: install the polaimg package first" >&2; exit 2; }
	if [ "$SNIPPET" = conf/nginx/polaimg.conf ]; then SNIPPET=/etc/nginx/snippets/polaimg.conf; fi
fi
APACHE_BIN=/usr/sbin/apache2
if [ "$SERVER" != nginx ] && ! [ -x "$APACHE_BIN" ]; then
	echo "$APACHE_BIN missing (apt-get install apache2 libapache2-mod-fcgid libapache2-mod-xsendfile)" >&2
	exit 2
fi
pl_unset_polaimg_env
CONVERT=/usr/bin/convert

[ -x "$SRC_BIN" ] || { echo "$SRC_BIN not found: build polaimg first" >&2; exit 2; }
pl_pg_bindir >/dev/null || exit 2
[ -x "$PL_NGINX_BIN" ] || { echo "$PL_NGINX_BIN missing (apt-get install nginx-light)" >&2; exit 2; }
[ -x "$CONVERT" ] || { echo "$CONVERT missing (apt-get install imagemagick)" >&2; exit 2; }
if ! command -v node >/dev/null 2>&1; then
	echo "node not found; installing Debian's nodejs" >&2
	apt-get install -y nodejs >&2
fi

TMP="$(mktemp -d /tmp/polaimg-itest.XXXXXX)"
chmod 755 "$TMP"
PG_DIR="$TMP/pg"
STORE="$TMP/store"
NGX="$TMP/nginx"
SOCK="$TMP/polaimg.sock"
ISOCK="$TMP/ingest.sock"
CONF="$TMP/polaimg.conf"
PLOG="$TMP/polaimg.log"
POLAIMG_PID=""
NGINX_PID=""
PG_STARTED=0
APACHE_PID=""
APX="$TMP/apache"
STORE_STARTED=""

cleanup() {
	local rc=$?
	set +e
	pl_stop "$APACHE_PID" TERM 10 apache
	pl_stop "$NGINX_PID" QUIT 5 nginx
	pl_stop "$POLAIMG_PID" TERM 10 "polaimg master"
	[ "$PG_STARTED" = 1 ] && pl_pg_stop "$PG_DIR"
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

show_logs() {
	echo "----- tail of polaimg.log -----" >&2
	tail -n 60 "$PLOG" >&2 2>/dev/null || true
	echo "----- tail of nginx error.log -----" >&2
	tail -n 30 "$NGX/logs/error.log" >&2 2>/dev/null || true
	if [ "$SERVER" != nginx ]; then
		echo "----- tail of apache error.log -----" >&2
		tail -n 30 "$APX/logs/error.log" >&2 2>/dev/null || true
	fi
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

# ---- --server and --installed -------------------------------------------
# A key of polaimg.service (the last one if repeated).
unit_get() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }

# Replaces this (background) shell with polaimg serve, run as RUN_USER.
start_polaimg() {
	if [ "$INSTALLED" = 1 ]; then
		# As polaimg.service does: its environment only (plus the test
		# configuration), its user and groups, its umask, its ExecStart.
		local -a envs=() groups=(--clear-groups)
		local e supp
		while IFS= read -r e; do [ -n "$e" ] && envs+=("$e"); done \
			< <(sed -n 's/^Environment=//p' "$UNIT")
		supp=$(unit_get SupplementaryGroups)
		if [ -n "$supp" ]; then groups=(--groups="${supp// /,}"); fi
		# shellcheck disable=SC2046 # ExecStart is split into words, as systemd does
		exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${envs[@]}" POLAIMG_CONFIG="$CONF" \
			setpriv --reuid="$(unit_get User)" --regid="$(unit_get Group)" \
			"${groups[@]}" --no-new-privs -- \
			sh -c 'umask "$0"; exec "$@"' "$(unit_get UMask)" $(unit_get ExecStart)
	elif [ "$RUN_USER" != root ]; then
		exec setpriv --reuid="$RUN_USER" --regid="$RUN_USER" --clear-groups -- \
			"$POLAIMG_BIN" -c "$CONF" serve
	else
		exec "$POLAIMG_BIN" -c "$CONF" serve
	fi
}

# Starts Apache in the foreground on 127.0.0.1:$PORT with polaimg's Apache
# configuration (the source tree's, or the installed one) and waits for it.
start_apache() {
	local src mods m
	if [ "$SERVER" = apache-fcgid ]; then
		src=conf/apache/polaimg-fcgid.conf mods="fcgid xsendfile headers"
	else
		src=conf/apache/polaimg.conf mods="proxy proxy_fcgi xsendfile headers"
	fi
	if [ "$INSTALLED" = 1 ]; then src=/etc/apache2/conf-available/${src##*/}; fi
	mkdir -p "$APX/logs" "$APX/run" "$APX/html" "$APX/fcgid"
	chown www-data:www-data "$APX/fcgid"
	sed -e "s#/run/polaimg/polaimg.sock#$SOCK#g" \
		-e "s#/run/polaimg/ingest.sock#$ISOCK#g" \
		-e "s#/var/lib/polaimg/store#$STORE#g" \
		-e "s#/usr/sbin/polaimg#$POLAIMG_BIN#g" \
		-e "s#/etc/polaimg/polaimg.conf#$CONF#g" \
		-e "s#/usr/share/polaimg/www#$WWW_DIR#g" \
		-e "s#\${APACHE_LOG_DIR}#$APX/logs#g" \
		"$src" >"$APX/polaimg.conf"
	{
		cat <<EOF
# generated by tests/integration/run.sh
ServerRoot /etc/apache2
ServerName localhost
Listen 127.0.0.1:$PORT
PidFile $APX/run/apache2.pid
DefaultRuntimeDir $APX/run
Mutex file:$APX/run default
User www-data
Group www-data
ErrorLog $APX/logs/error.log
LogLevel warn
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
EOF
		# Debian's default modules, and the ones polaimg's configuration names.
		for m in authz_core authz_host mime dir alias env setenvif filter deflate reqtimeout $mods; do
			echo "LoadModule ${m}_module /usr/lib/apache2/modules/mod_$m.so"
		done
		cat <<EOF
TypesConfig /etc/mime.types
LogFormat "%h %t \"%r\" %>s %b %D" short
# As README's step 5b/5c has it: the site's own log leaves polaimg's
# requests to polaimg's (their query strings carry signatures and tokens).
CustomLog $APX/logs/access.log short env=!polaimg_private
DocumentRoot $APX/html
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory $APX/html>
    Require all granted
</Directory>
EOF
		if [ "$SERVER" = apache-fcgid ]; then
			echo "FcgidIPCDir $APX/fcgid"
			echo "FcgidProcessTableFile $APX/fcgid/shm"
		fi
		echo "Include $APX/polaimg.conf"
	} >"$APX/httpd.conf"
	"$APACHE_BIN" -t -f "$APX/httpd.conf" >"$TMP/apache-t.log" 2>&1 ||
		{ cat "$TMP/apache-t.log" >&2; exit 1; }
	"$APACHE_BIN" -f "$APX/httpd.conf" -DFOREGROUND >"$APX/logs/stdout.log" 2>&1 &
	APACHE_PID=$!
	BASE_URL="http://127.0.0.1:$PORT"
	pl_wait_port "$PORT" 10 apache "$APACHE_PID" "$APX/logs/stdout.log" ||
		{ show_logs; exit 1; }
	# With mod_fcgid, Apache is polaimg's supervisor: the checks of the
	# master below watch Apache.
	if [ "$SERVER" = apache-fcgid ]; then POLAIMG_PID=$APACHE_PID; fi
}

# ---- PostgreSQL ---------------------------------------------------------
PG_STARTED=1
pl_pg_start "$PG_DIR" "fsync = off" "synchronous_commit = off" "full_page_writes = off" || exit 1
PG_START_CMD=$(pl_pg_ctl_cmd "$PG_DIR" start)
PG_STOP_CMD=$(pl_pg_ctl_cmd "$PG_DIR" stop)
export PGHOST="$PG_DIR" PGUSER=postgres PGDATABASE=polaimg_test
psql -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE polaimg_test' >/dev/null

# ---- nginx port -----------------------------------------------------------
PORT=$(pl_free_port 18080 18179) || exit 1

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
	# --supabase-sign api: no supabase_jwt_secret, polaimg asks the sign
	# endpoints, and the stand-in signs upload URLs for 60 s whatever is
	# asked, like a self-hosted server's default
	# (UPLOAD_SIGNED_URL_EXPIRATION_TIME).
	if [ "$SUPA_SIGN" = api ]; then
		SUPA_UPLOAD_URL_TTL=60 supabase_start "$TMP" api || exit 1
	else
		supabase_start "$TMP" || exit 1
	fi
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
# Who runs polaimg: root for the build tree behind nginx; www-data behind
# Apache (its workers must read the files polaimg stores; mod_fcgid starts
# polaimg as www-data anyway); with --installed, polaimg.service's user. A
# user other than root gets a socket directory of its own, like the unit's
# RuntimeDirectory, in the web server's group.
RUN_USER=root CONF_GROUP=root
if [ "$SERVER" = apache-fcgid ]; then
	RUN_USER=www-data CONF_GROUP=www-data
elif [ "$INSTALLED" = 1 ]; then
	RUN_USER=$(unit_get User) CONF_GROUP=polaimg
elif [ "$SERVER" != nginx ]; then
	RUN_USER=www-data CONF_GROUP=www-data
fi
if [ "$INSTALLED" = 1 ]; then POLAIMG_BIN=/usr/sbin/polaimg; fi
if [ "$RUN_USER" != root ]; then
	install -d -o "$RUN_USER" -g www-data -m 0750 "$TMP/run" "$STORE"
	SOCK="$TMP/run/polaimg.sock"
	ISOCK="$TMP/run/ingest.sock"
fi
# mod_fcgid starts single workers itself: no master, no ingest pool.
if [ "$SERVER" = apache-fcgid ]; then POOLS=1; fi
# With one pool the web server's ingest routes go to the one socket.
if [ "$POOLS" = 1 ]; then ISOCK="$SOCK"; fi
# The host's zone is polaimg's local_timezone by default (EXIF times
# without an offset); the tests expect UTC wherever they run.
export TZ=UTC
JWT_SECRET="$(pl_rand48)"
URL_SIGNING_KEY="$(pl_rand48)"
MAX_UPLOAD_BYTES=4194304
mkdir -p "$STORE"
# The audit spool (audit_spool_dir): polaimg's user alone writes it.
install -d -o "$RUN_USER" -m 0700 "$TMP/spool"
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
audit_spool_dir = $TMP/spool
EOF

if [ "$INSTALLED" = 1 ]; then
	echo "imaging_policy_dir = /usr/share/polaimg" >>"$CONF"
fi
if [ "$POOLS" = 2 ]; then
	printf 'ingest_listen = unix:%s\ningest_workers = 2\n' "$ISOCK" >>"$CONF"
fi
if [ "$SERVER" = apache-fcgid ]; then
	# polaimg's standard error goes to Apache's error log there.
	echo "log_file = $PLOG" >>"$CONF"
	: >"$PLOG"
	chown www-data "$PLOG"
fi
chgrp "$CONF_GROUP" "$CONF"
chmod 0640 "$CONF"

echo "polaimg: migrate (twice, must be idempotent)"
"$POLAIMG_BIN" -c "$CONF" migrate >"$TMP/migrate1.log" 2>&1 ||
	{ echo "first migrate failed:" >&2; cat "$TMP/migrate1.log" >&2; exit 1; }
"$POLAIMG_BIN" -c "$CONF" migrate >"$TMP/migrate2.log" 2>&1 ||
	{ echo "second migrate failed (not idempotent):" >&2; cat "$TMP/migrate2.log" >&2; exit 1; }

if [ "$SERVER" != apache-fcgid ]; then
start_polaimg >"$PLOG" 2>&1 &
POLAIMG_PID=$!
{ pl_wait_socket "$SOCK" 10 "polaimg serve" "$POLAIMG_PID" &&
	pl_wait_socket "$ISOCK" 10 "polaimg serve (ingest pool)" "$POLAIMG_PID"; } ||
	{ show_logs; exit 1; }
fi # not apache-fcgid

# ---- nginx (or Apache) ------------------------------------------------------
if [ "$SERVER" = nginx ]; then
mkdir -p "$NGX"
pl_nginx_snippet "$SNIPPET" "$NGX/polaimg-snippet.conf" "$SOCK" "$ISOCK" "$STORE" "$WWW_DIR"
# Remote storage with offload = nginx: the location that fetches presigned URLs.
if [ "$STORAGE" != local ] && [ "$OFFLOAD" = nginx ]; then
	printf '%s\n' "$REMOTE_SNIPPET" |
		sed "s#/var/log/nginx/access.log#$NGX/logs/access.log#g" >"$NGX/polaimg-remote.conf"
else
	echo "# no remote storage location (storage=$STORAGE, offload=$OFFLOAD)" >"$NGX/polaimg-remote.conf"
fi
# With --installed, workers as www-data, as the nginx package runs them.
NGX_USER=root
if [ "$INSTALLED" = 1 ]; then NGX_USER=www-data; fi
pl_nginx_conf "$NGX" 1 "$NGX_USER" info <<EOF
	server {
		listen 127.0.0.1:$PORT;
		server_name localhost;
		root $NGX/html;
		include $NGX/polaimg-snippet.conf;
		include $NGX/polaimg-remote.conf;
	}
EOF
pl_nginx_start "$NGX" || exit 1
NGINX_PID=$PL_NGINX_PID
BASE_URL="http://127.0.0.1:$PORT"
pl_wait_port "$PORT" 10 nginx "$NGINX_PID" "$NGX/logs/error.log" || { show_logs; exit 1; }
else
	start_apache
fi

# ---- tests ------------------------------------------------------------------
mkdir -p "$TMP/images"
export BASE_URL JWT_SECRET URL_SIGNING_KEY STORAGE_DIR="$STORE" MAX_UPLOAD_BYTES OFFLOAD
export POLAIMG_LOG="$PLOG" POLAIMG_BIN POLAIMG_CONF="$CONF"
export PG_CTL_STOP="$PG_STOP_CMD" PG_CTL_START="$PG_START_CMD"
export IMAGE_CACHE_DIR="$TMP/images" TEST_TMP="$TMP" NGINX_ERROR_LOG="$NGX/logs/error.log"
export ITEST_POOLS="$POOLS" ITEST_SERVER="$SERVER"
# The binary as built (the copy above runs elsewhere), for the test of a
# build tree's own conf/policy.xml; empty with --installed.
ITEST_BUILT_BIN=; [ "$INSTALLED" = 1 ] || ITEST_BUILT_BIN=$(realpath "$SRC_BIN")
export ITEST_BUILT_BIN
export ITEST_SUPABASE_SIGN="$SUPA_SIGN"
export ITEST_STORAGE="$STORAGE" ITEST_OBJECT_ROOT ITEST_OBJECT_LAYOUT ITEST_STORE_URL ITEST_FAULT_URL

if [ ${#TEST_FILES[@]} -eq 0 ]; then
	TEST_FILES=(tests/integration/*.test.mjs)
fi

echo "polaimg up (offload=$OFFLOAD, storage=$STORAGE, pools=$POOLS) behind $SERVER at $BASE_URL; temp dir $TMP"
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

# Signed links are bearer credentials: no signature, token or JWT may
# reach a log: polaimg's own, the web server's access logs, and its error
# log at the levels a server runs it (error and above; nginx's warn and info
# lines, which this test turns on, quote the request line by design:
# README, "Logs"). An nginx error line about a failed object store names
# the upstream URL it was fetching (upstream: "…"): the one-minute
# presigned URL of the object, which README states; nothing else may
# carry a signature or a token.
leak_re='[?&](sig|token|X-Amz-Signature)=[^ &"]{6}|eyJ[A-Za-z0-9_-]{10,}'
leaks=$({
	grep -HnoE "$leak_re" "$PLOG" "$NGX"/logs/access.log "$APX"/logs/*access*.log 2>/dev/null
	grep -HnE '\[(error|crit|alert|emerg)\]|:(error|crit|alert|emerg)\]' "$NGX"/logs/error.log "$APX"/logs/error.log 2>/dev/null |
		sed 's/upstream: "[^"]*"/upstream: "…"/g' |
		grep -oE "^[^:]*:[0-9]+:|$leak_re" | grep -B1 -vE '^[^:]*:[0-9]+:$' | grep -v '^--$'
} | head -n 6 || true)
if [ -n "$leaks" ]; then
	echo "a signed link's signature or a token reached a log:" >&2
	echo "$leaks" >&2
	rc=1
else
	echo "logs: no signature, token or JWT in $(ls "$PLOG" "$NGX"/logs/*.log "$APX"/logs/*.log 2>/dev/null | wc -l) log files" \
		"($(cat "$PLOG" "$NGX"/logs/*.log "$APX"/logs/*.log 2>/dev/null | wc -l) lines)"
fi

echo
echo "==== polaimg integration tests (offload=$OFFLOAD, storage=$STORAGE): $pass passed, $fail failed, $skip skipped, $todo todo ===="
if [ "$rc" -ne 0 ] || [ "$fail" -ne 0 ]; then
	show_logs
	exit 1
fi
exit 0
