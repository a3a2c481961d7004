# shellcheck shell=bash
# tests/lib.sh — the shell harness that ./dev, tests/integration/run.sh,
# tests/package/run.sh and bench/run.sh share. Sourced (bash), never run:
#
#     . "$ROOT/tests/lib.sh"
#
# Everything here is a pl_ function (or a PL_ variable); none of them
# changes the caller's options or traps. Each one that can fail prints what
# failed, with the tail of the log that says why, and returns 1: callers
# write `pl_x ... || exit 1` (or rely on set -e), so that their cleanup
# trap stops what was started.
#
#   pl_need_pkgs PKG...          install the missing Debian packages
#   pl_build DIR [CONFIGURE...]  autoreconf if stale, configure once, make
#   pl_unset_polaimg_env         drop the caller's POLAIMG_* overrides
#   pl_rand48                    48 random URL-safe characters
#   pl_mint_token USER SECRET [TTL]   an HS256 token (TTL s, default a day)
#   pl_pg_bindir                 PostgreSQL's server binaries (any version)
#   pl_pg_start DIR [LINE...]    cluster DIR/data, socket in DIR, started
#   pl_pg_ctl_cmd DIR start|stop the pg_ctl command line (for the tests)
#   pl_pg_stop DIR               stop it (fast), if running
#   pl_port_free PORT            true if 127.0.0.1:PORT can be listened on
#   pl_free_port FIRST LAST      print the first free port of the range
#   pl_wait_socket PATH DEADLINE_S WHAT [PID] [LOG]   wait for a socket
#   pl_wait_port PORT DEADLINE_S WHAT [PID] [LOG]     wait for a listener
#   pl_stop PID SIGNAL DEADLINE_S WHAT   signal, wait, then SIGKILL
#   pl_nginx_snippet SRC OUT SOCK ISOCK STORE WWW [BODYDIR]
#                                the shipped snippet with local paths
#   pl_nginx_conf DIR WORKERS [USER] [LEVEL] < server blocks   nginx.conf
#   pl_nginx_start DIR           nginx -t, then nginx in the foreground
#                                (background job; sets PL_NGINX_PID)
#
# Machine facts it relies on: Debian's PostgreSQL server packages
# (/usr/lib/postgresql/<major>/bin, any major), nginx at /usr/sbin/nginx,
# runuser and the postgres user.

PL_NGINX_BIN=/usr/sbin/nginx

# pl_need_pkgs PKG... — installs with apt-get those of the Debian packages
# that are not installed. No service is started or stopped meanwhile: a
# temporary /usr/sbin/policy-rc.d exiting 101 keeps the packages it installs
# (nginx, Apache, PostgreSQL) from starting theirs (the harness runs private
# instances), and a service that was running before stays running. The
# policy file is removed afterwards, also on failure or interruption, and
# one that was there before is put back as it was.
pl_need_pkgs() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	echo "installing ${missing[*]}" >&2
	(
		prc=/usr/sbin/policy-rc.d saved=""
		if [ -e "$prc" ] || [ -L "$prc" ]; then
			saved=$(mktemp /usr/sbin/.policy-rc.d.XXXXXX)
			mv "$prc" "$saved"
		fi
		restore() {
			rm -f "$prc"
			if [ -n "$saved" ]; then mv "$saved" "$prc"; fi
		}
		trap restore EXIT
		trap 'exit 130' INT TERM HUP
		printf '#!/bin/sh\n# written by polaimg tests/lib.sh while it installs packages\nexit 101\n' >"$prc"
		chmod 755 "$prc"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			"${missing[@]}" >/dev/null
	)
}

# pl_build DIR [CONFIGURE-ARG...] — builds polaimg out of tree in DIR:
# autoreconf when configure is missing or older than its sources, configure
# (with the arguments) when DIR has no Makefile yet, then make.
pl_build() {
	local dir=$1 root
	shift
	root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
	if [ ! -x "$root/configure" ] || [ "$root/configure.ac" -nt "$root/configure" ] ||
		[ "$root/Makefile.am" -nt "$root/Makefile.in" ]; then
		(cd "$root" && autoreconf -fi >/dev/null)
	fi
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ]; then
		(cd "$dir" && "$root/configure" -q "$@")
	fi
	make -C "$dir" -j"$(nproc)" >/dev/null
}

# pl_unset_polaimg_env — polaimg reads POLAIMG_<KEY> (and a few other
# names) from the environment as configuration overrides: a harness starts
# it with none of the caller's.
pl_unset_polaimg_env() {
	local v
	unset DATABASE_URL JWT_SECRET STORAGE_PROVIDER || true
	for v in $(env | sed -n 's/^\(POLAIMG_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
}

pl_rand48() { head -c 36 /dev/urandom | base64 | tr '+/' 'xy' | head -c 48; }

pl_b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# pl_mint_token USER SECRET [TTL] — prints an HS256 JWT for user id USER
# (claim userId, as the API expects), issued now and valid TTL seconds
# (default 86400), signed with SECRET.
pl_mint_token() {
	local now h p s
	now=$(date +%s)
	h=$(printf '{"alg":"HS256","typ":"JWT"}' | pl_b64url)
	p=$(printf '{"userId":"%s","iat":%d,"exp":%d}' "$1" "$now" $((now + ${3:-86400})) | pl_b64url)
	s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$2" -binary | pl_b64url)
	printf '%s.%s.%s' "$h" "$p" "$s"
}

# pl_pg_bindir — prints the directory of PostgreSQL's server programs: the
# newest /usr/lib/postgresql/<major>/bin that has initdb, else what
# `pg_config --bindir` says. Fails when neither has initdb.
pl_pg_bindir() {
	local d best=""
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n); do
		[ -x "$d/initdb" ] && best=$d
	done
	if [ -z "$best" ] && command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir)
		[ -x "$d/initdb" ] && best=$d
	fi
	if [ -z "$best" ]; then
		echo "no PostgreSQL server found (no /usr/lib/postgresql/*/bin/initdb; apt-get install postgresql)" >&2
		return 1
	fi
	printf '%s\n' "$best"
}

# pl_pg_start DIR [CONF-LINE...] — a PostgreSQL cluster of its own in
# DIR/data, owned by and run as the postgres user, reached only over its
# unix socket in DIR (listen_addresses = ''), logging to DIR/server.log.
# initdb runs when DIR/data has no cluster yet (CONF-LINEs are then
# appended to its postgresql.conf); a cluster of another major version than
# the installed server is refused with a clear message. Waits (pg_ctl -w,
# 30 s at most) until it accepts connections. Sets PL_PG_BINDIR.
pl_pg_start() {
	local dir=$1 line major
	shift
	PL_PG_BINDIR=$(pl_pg_bindir) || return 1
	if [ ! -f "$dir/data/PG_VERSION" ]; then
		mkdir -p "$dir"
		chown postgres: "$dir"
		runuser -u postgres -- "$PL_PG_BINDIR/initdb" -D "$dir/data" -A trust -U postgres \
			-E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
			{ echo "initdb of $dir/data failed:" >&2; tail -n 20 "$dir/initdb.log" >&2; return 1; }
		{
			echo "listen_addresses = ''"
			echo "unix_socket_directories = '$dir'"
			for line in "$@"; do echo "$line"; done
		} >>"$dir/data/postgresql.conf"
	fi
	major=$("$PL_PG_BINDIR/postgres" -V | sed 's/[^0-9]*\([0-9]*\).*/\1/')
	if [ "$(cat "$dir/data/PG_VERSION")" != "$major" ]; then
		echo "$dir/data is a PostgreSQL $(cat "$dir/data/PG_VERSION") cluster, the server is $major ($PL_PG_BINDIR): remove $dir" >&2
		return 1
	fi
	sh -c "$(pl_pg_ctl_cmd "$dir" start)" >/dev/null 2>&1 || {
		echo "PostgreSQL in $dir did not start within 30 s; tail of $dir/server.log:" >&2
		tail -n 20 "$dir/server.log" >&2
		return 1
	}
}

# pl_pg_ctl_cmd DIR start|stop — prints the command line (words split by
# spaces: DIR must have none) that starts or stops the cluster of
# pl_pg_start, waiting 30 s at most, for sh -c: tests run it to restart
# PostgreSQL.
pl_pg_ctl_cmd() {
	local bindir=${PL_PG_BINDIR:-}
	[ -n "$bindir" ] || bindir=$(pl_pg_bindir) || return 1
	case "$2" in
	start) echo "runuser -u postgres -- $bindir/pg_ctl -D $1/data -l $1/server.log -w -t 30 start" ;;
	stop) echo "runuser -u postgres -- $bindir/pg_ctl -D $1/data -m fast -w -t 30 stop" ;;
	esac
}

# pl_pg_stop DIR — stops the cluster of pl_pg_start (fast shutdown) if it
# runs; never fails.
pl_pg_stop() {
	[ -f "$1/data/postmaster.pid" ] || return 0
	sh -c "$(pl_pg_ctl_cmd "$1" stop)" >/dev/null 2>&1 || true
}

# pl_port_free PORT — true when a listener can be bound to 127.0.0.1:PORT
# (with node: tried for real; without: nothing answers a connection).
pl_port_free() {
	if command -v node >/dev/null 2>&1; then
		node -e '
			const s = require("net").createServer();
			s.once("error", () => process.exit(1));
			s.listen(+process.argv[1], "127.0.0.1", () => s.close(() => process.exit(0)));
		' "$1"
	else
		! pl__connects "$1" 2>/dev/null
	fi
}

# pl_free_port FIRST LAST — prints the first free port of FIRST..LAST, or
# fails with a message.
pl_free_port() {
	local p
	for p in $(seq "$1" "$2"); do
		if pl_port_free "$p"; then echo "$p"; return 0; fi
	done
	echo "no free port in $1..$2" >&2
	return 1
}

# pl__until DEADLINE_S WHAT PID LOG GOAL COMMAND... — runs COMMAND every
# 0.1 s until it succeeds. Fails, saying that WHAT did not GOAL (naming
# process PID when it is gone, then the tail of LOG), when DEADLINE_S
# seconds pass first, or at once when process PID ends.
pl__until() {
	local deadline=$1 end=$((SECONDS + $1)) what=$2 pid=$3 log=$4 goal=$5 why=""
	shift 5
	until "$@" 2>/dev/null; do
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			why="exited (process $pid) before it could $goal"
		elif [ "$SECONDS" -ge "$end" ]; then
			why="did not $goal within $deadline s"
		fi
		if [ -n "$why" ]; then
			echo "$what $why" >&2
			if [ -n "$log" ] && [ -f "$log" ]; then
				echo "----- tail of $log -----" >&2
				tail -n 30 "$log" >&2
			fi
			return 1
		fi
		sleep 0.1
	done
}

pl__connects() { (exec 3<>"/dev/tcp/127.0.0.1/$1"); }

# pl_wait_socket PATH DEADLINE_S WHAT [PID] [LOG] — waits until PATH is a
# socket. Fails (message naming WHAT, tail of LOG) when DEADLINE_S seconds
# pass first, or at once when process PID ends.
pl_wait_socket() {
	pl__until "$2" "$3" "${4:-}" "${5:-}" "create $1" test -S "$1"
}

# pl_wait_port PORT DEADLINE_S WHAT [PID] [LOG] — waits until something
# accepts connections on 127.0.0.1:PORT; fails as pl_wait_socket does.
pl_wait_port() {
	pl__until "$2" "$3" "${4:-}" "${5:-}" "listen on 127.0.0.1:$1" pl__connects "$1"
}

# pl_stop PID SIGNAL DEADLINE_S WHAT — sends SIGNAL to PID (a child of this
# shell), waits DEADLINE_S seconds for it to end, then says so and sends
# SIGKILL; reaps it. Never fails; nothing happens when PID is empty or gone.
pl_stop() {
	local pid=$1 end=$((SECONDS + $3))
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -"$2" "$pid" 2>/dev/null || true
	while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		echo "$4 ($pid) did not stop on SIG$2 within $3 s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# pl_nginx_snippet SRC OUT SOCK ISOCK STORE WWW [BODYDIR] — writes OUT: the
# nginx snippet SRC (conf/nginx/polaimg.conf, or the installed copy) with
# the Debian package's paths replaced by the harness's: the read pool's
# socket, the ingest pool's (SOCK again when polaimg runs one pool), the
# image store and the web page, and nginx's access log
# (/var/log/nginx/access.log, format "polaimg") by logs/access.log beside
# OUT (pl_nginx_conf's, when OUT is in its DIR). With BODYDIR, its "faster uploads" lines
# (nginx hands the body over as a file) are switched on, nginx writing the
# bodies to BODYDIR.
pl_nginx_snippet() {
	local src=$1 out=$2 sock=$3 isock=$4 store=$5 www=$6 bodydir=${7:-}
	local -a body=()
	if [ -n "$bodydir" ]; then
		body=(-e "s#/var/lib/polaimg/nginx-body#$bodydir#g"
			-e 's/^\( *\)# \(client_body_temp_path\|client_body_in_file_only\|fastcgi_pass_request_body\|fastcgi_param REQUEST_BODY_FILE\)/\1\2/')
	fi
	mkdir -p "$(dirname "$out")"
	sed -e "s#/run/polaimg/polaimg.sock#$sock#g" \
		-e "s#/run/polaimg/ingest.sock#$isock#g" \
		-e "s#/var/lib/polaimg/store/#$store/#g" \
		-e "s#/usr/share/polaimg/www/#$www/#g" \
		-e "s#/var/log/nginx/access.log#$(dirname "$out")/logs/access.log#g" \
		"${body[@]}" "$src" >"$out" || return 1
	if [ -n "$bodydir" ] && ! grep -q '^ *client_body_in_file_only clean;' "$out"; then
		echo "could not switch on the body-file lines of $src" >&2
		return 1
	fi
}

# pl_nginx_conf DIR WORKERS [USER] [LEVEL] — writes DIR/nginx.conf: nginx
# rooted in DIR (pid, logs/error.log at LEVEL, default error, and
# logs/access.log, temp paths under tmp/, Debian's fastcgi_params and
# mime.types copied in), WORKERS worker processes running as USER (default
# root), and in its http block the log format "polaimg" of the snippet
# ($PL_NGINX_LOG_FORMAT: the file that defines it, default
# conf/nginx/polaimg-log.conf of this tree; the package test names the
# installed /etc/nginx/conf.d/polaimg-log.conf) and the server blocks read
# from standard input.
pl_nginx_conf() {
	local dir=$1 workers=$2 user=${3:-root} level=${4:-error} servers logfmt
	logfmt=${PL_NGINX_LOG_FORMAT:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/conf/nginx/polaimg-log.conf"}
	servers=$(cat)
	mkdir -p "$dir/logs" "$dir/tmp" "$dir/html"
	cp /etc/nginx/fastcgi_params /etc/nginx/mime.types "$dir/"
	cat >"$dir/nginx.conf" <<EOF
# generated by tests/lib.sh
user $user;
worker_processes $workers;
error_log $dir/logs/error.log $level;
pid $dir/nginx.pid;
events { worker_connections 1024; }
http {
	include mime.types;
	default_type application/octet-stream;
	access_log $dir/logs/access.log;
	include $logfmt;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	sendfile on;
$servers
}
EOF
}

# pl_nginx_start DIR — checks DIR/nginx.conf (nginx -t; its complaint is
# printed on failure) and starts nginx in the foreground as a background
# job of the caller, its standard output and error in DIR/logs/stdout.log;
# sets PL_NGINX_PID. Does not wait: pl_wait_port does.
pl_nginx_start() {
	local dir=$1
	PL_NGINX_PID=""
	"$PL_NGINX_BIN" -t -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" \
		>"$dir/logs/nginx-t.log" 2>&1 ||
		{ echo "nginx -t failed for $dir/nginx.conf:" >&2; cat "$dir/logs/nginx-t.log" >&2; return 1; }
	"$PL_NGINX_BIN" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" -g 'daemon off;' \
		>"$dir/logs/stdout.log" 2>&1 &
	# shellcheck disable=SC2034 # the caller's
	PL_NGINX_PID=$!
}
