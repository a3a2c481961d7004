#!/usr/bin/env bash
# bench/run.sh — polaimg against named references, side by side, one command.
#
#     bench/run.sh [--rounds N] [--net-rounds N] [--duration S] [--keep]
#     bench/run.sh --hold     start the services only, print how to reach
#                             them (for perf or callgrind), wait for Ctrl-C
#
# Installs its references with apt-get (libvips, libjpeg-turbo's TurboJPEG,
# wrk, spawn-fcgi), builds polaimg (build/, as ./dev does) and the two bench
# programs (imgbench.c linked against build/src/libpolaimg.a, the very
# objects the service runs; trivial_fcgi.c), generates its inputs (cached in
# /tmp/polaimg-bench-inputs-<version>), starts a private PostgreSQL, polaimg
# and nginx with tests/lib.sh as tests/integration/run.sh does, runs its seven cases
# (the last: uploads of every camera size against a libvips peer of the
# whole upload) and writes bench/results.md. polaimg runs with its
# default of 4 workers and max_requests = 0 (the memory case follows the
# same workers across all its requests).
#
# Every case alternates polaimg and its reference (A B A B ...) for
# --rounds (in-process imaging, default 7) or --net-rounds (through nginx,
# default 7, 4 s of wrk each) rounds and reports medians; ratios are
# polaimg / reference.
# Timings are reported, never asserted: this is not part of ./dev test.
# Takes about 8 minutes on 2 cores (the first run also makes the inputs).
set -euo pipefail

ROUNDS=7
NET_ROUNDS=7
DURATION=4
KEEP=0
HOLD=0
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS="$2"; shift 2 ;;
	--net-rounds) NET_ROUNDS="$2"; shift 2 ;;
	--duration) DURATION="$2"; shift 2 ;;
	--keep) KEEP=1; shift ;;
	--hold) HOLD=1; shift ;;
	*) echo "usage: $0 [--rounds N] [--net-rounds N] [--duration S] [--keep] | --hold" >&2; exit 2 ;;
	esac
done
[ "$ROUNDS" -ge 5 ] && [ "$NET_ROUNDS" -ge 5 ] || { echo "at least 5 rounds" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=../tests/lib.sh
. "$ROOT/tests/lib.sh"
say() { printf "bench [%3ds]: %s\n" "$SECONDS" "$*" >&2; }

# ---- packages ---------------------------------------------------------------
DEPS="build-essential autoconf automake pkg-config libfcgi-dev libpq-dev
 libmagickwand-6.q16-dev libcurl4-openssl-dev libssl-dev libjson-c-dev libjwt-dev libdcmtk-dev libpng-dev
 postgresql nginx-light imagemagick openssl curl spawn-fcgi
 libvips-dev libturbojpeg0-dev libjpeg62-turbo-dev wrk libgs-common"
# shellcheck disable=SC2086
pl_need_pkgs $DEPS

# ---- build --------------------------------------------------------------------
say "building polaimg"
pl_build "$ROOT/build"

TMP="$(mktemp -d /tmp/polaimg-bench.XXXXXX)"
chmod 755 "$TMP"
PG_DIR="$TMP/pg"; STORE="$TMP/store"; NGX="$TMP/nginx"
SOCK="$TMP/polaimg.sock"; TSOCK="$TMP/trivial.sock"; CONF="$TMP/polaimg.conf"
PLOG="$TMP/polaimg.log"; BODYDIR="$NGX/body"
POLAIMG_PID=""; NGINX_PID=""; PG_STARTED=0; TRIVIAL_PIDS=""; HOLD_SLEEP=""
cleanup() {
	local rc=$?
	set +e
	for p in $TRIVIAL_PIDS $HOLD_SLEEP; do kill -TERM "$p" 2>/dev/null; done
	pl_stop "$NGINX_PID" QUIT 5 nginx
	pl_stop "$POLAIMG_PID" TERM 10 "polaimg master"
	[ "$PG_STARTED" = 1 ] && pl_pg_stop "$PG_DIR"
	if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
		echo "bench: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
BIN="$TMP/bin"
mkdir -p "$BIN" "$TMP/out"
cp "$ROOT/build/src/polaimg" "$BIN/polaimg"
CFLAGS_B="-std=gnu11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror"
# shellcheck disable=SC2046
gcc $CFLAGS_B -I"$ROOT/src" bench/imgbench.c "$ROOT/build/src/libpolaimg.a" \
	$(pkg-config --cflags --libs vips libturbojpeg MagickWand libpq libcurl \
	libcrypto json-c libjwt zlib libpng16) -lfcgi -ljpeg -lm -o "$BIN/imgbench"
gcc $CFLAGS_B bench/trivial_fcgi.c -lfcgi -o "$BIN/trivial_fcgi"

# ---- inputs -----------------------------------------------------------------
# Photograph-like: a plasma fractal (smooth colour fields), slightly blurred,
# upscaled, with sensor-like Gaussian noise, an sRGB ICC profile, q92 4:2:0.
INPUTS_VERSION=1
IN="/tmp/polaimg-bench-inputs-$INPUTS_VERSION"
ICC=/usr/share/color/icc/ghostscript/srgb.icc
gen() { # name WxH seed noise  (JPEG)
	local half
	half="$(echo "$2" | awk -Fx '{printf "%dx%d", $1/2, $2/2}')"
	/usr/bin/convert -size "$half" -seed "$3" plasma:fractal -blur 0x1.2 -resize "$2!" \
		-attenuate "$4" +noise Gaussian -profile "$ICC" -quality 92 \
		-sampling-factor 2x2 "$IN/$1.part.jpg" && mv "$IN/$1.part.jpg" "$IN/$1"
}
if [ ! -f "$IN/done" ]; then
	say "generating inputs in $IN (once)"
	mkdir -p "$IN"
	gen p10.jpg 3651x2738 1 0.4 &
	gen p20.jpg 5163x3872 2 0.22 &
	wait
	gen p24.jpg 6000x4000 3 0.22 &
	/usr/bin/convert -size 1155x866 -seed 4 plasma:fractal -blur 0x0.8 -attenuate 0.5 \
		+noise Gaussian -quality 92 -sampling-factor 2x2 "$IN/p1.jpg" &
	/usr/bin/convert -size 1000x1000 -seed 5 plasma:fractal -blur 0x1 -resize '2000x2000!' \
		-depth 16 "$IN/deep16.png" &
	wait
	touch "$IN/done"
fi
for f in p10.jpg p20.jpg p24.jpg p1.jpg deep16.png; do [ -s "$IN/$f" ] || { echo "missing input $IN/$f" >&2; exit 1; }; done

# The camera set of case 7: what an eye clinic's devices produce.
# Fundus cameras frame the retina in a bright disc on black; phones write
# 4:2:0 with an EXIF orientation (6: turn 90° clockwise); OCT B-scans are
# small 16-bit grey PNGs; exports are 16-bit RGB PNGs.
CAM="$IN/camera-1"
fundus() { # name WxH seed sampling quality
	local w h half
	w="${2%x*}"; h="${2#*x}"; half="$((w / 2))x$((h / 2))"
	/usr/bin/convert -size "$half" -seed "$3" plasma:'#a02810-#f09040' -blur 0x1.2 -resize "$2!" \
		\( -size "$2" xc:black -fill white \
		-draw "circle $((w / 2)),$((h / 2)) $((w / 2)),$((h / 40))" -blur 0x6 \) \
		-compose multiply -composite -attenuate 0.25 +noise Gaussian -profile "$ICC" \
		-sampling-factor "$4" -quality "$5" "$CAM/$1.part.jpg" && mv "$CAM/$1.part.jpg" "$CAM/$1"
}
# An EXIF APP1 segment holding Orientation = 6 (big-endian TIFF, one IFD
# entry), spliced in after the JPEG's SOI marker.
exif_orient6() { # in out
	{
		head -c 2 "$1"
		printf '\xff\xe1\x00\x22Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08'
		printf '\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00'
		tail -c +3 "$1"
	} >"$2.part" && mv "$2.part" "$2"
}
if [ ! -f "$CAM/done" ]; then
	say "generating the camera set in $CAM (once)"
	mkdir -p "$CAM"
	fundus widefield12.jpg 3900x3072 11 2x1 92 &
	fundus tabletop12.jpg 4288x2848 12 2x2 92 &
	wait
	fundus fundus18.jpg 5184x3456 13 2x2 92 &
	/usr/bin/convert -size 3000x2000 -seed 14 plasma:fractal -blur 0x1.2 -resize '6000x4000!' \
		-attenuate 0.22 +noise Gaussian -profile "$ICC" -sampling-factor 2x2 -quality 92 \
		"$CAM/slitlamp24.jpg" &
	wait
	/usr/bin/convert -size 2016x1512 -seed 15 plasma:fractal -blur 0x1 -resize '4032x3024!' \
		-attenuate 0.3 +noise Gaussian -sampling-factor 2x2 -quality 90 "$CAM/phone.raw.jpg"
	exif_orient6 "$CAM/phone.raw.jpg" "$CAM/phone12.jpg"
	rm -f "$CAM/phone.raw.jpg"
	/usr/bin/convert -size 512x248 -seed 16 plasma:grey20-grey60 -colorspace Gray -resize '1024x496!' \
		-attenuate 0.6 +noise Multiplicative -depth 16 -define png:color-type=0 \
		-define png:bit-depth=16 "$CAM/oct16.png"
	cp "$IN/deep16.png" "$CAM/export16.png"
	touch "$CAM/done"
fi
CAM_SET="widefield12.jpg phone12.jpg tabletop12.jpg fundus18.jpg slitlamp24.jpg oct16.png export16.png"
cam_label() {
	case "$1" in
	widefield12.jpg) echo "widefield fundus camera, q92 4:2:2" ;;
	phone12.jpg) echo "phone, q90 4:2:0, EXIF orientation 6" ;;
	tabletop12.jpg) echo "tabletop fundus camera, q92 4:2:0" ;;
	fundus18.jpg) echo "18 MP fundus camera" ;;
	slitlamp24.jpg) echo "24 MP slit-lamp camera" ;;
	oct16.png) echo "OCT B-scan, 16-bit grey PNG" ;;
	export16.png) echo "export, 16-bit RGB PNG" ;;
	esac
}
for f in $CAM_SET; do [ -s "$CAM/$f" ] || { echo "missing input $CAM/$f" >&2; exit 1; }; done
fsize() { stat -c %s "$1"; }
human() { awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.1f MB", b/1048576; else printf "%.0f KB", b/1024 }'; }
dims() { identify -format '%wx%h' "$1"; }

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "nan"; exit} if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k/1024 }'; }
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
T0=$SECONDS

# ---- cases 1 and 2: imaging in-process ---------------------------------------
export POLAIMG_POLICY_DIR="$ROOT/conf"
if [ "$HOLD" = 0 ]; then
IMG="$TMP/img.tsv"     # input op impl wall_ms min max cpu_ms
: >"$IMG"
imgtime() { # input op [rounds]
	local r=${3:-$ROUNDS}
	say "imaging: $2 of $1 ($r rounds, A B C A B C ...)"
	"$BIN/imgbench" time "$2" "$IN/$1" "$r" "$TMP/out" 2>>"$TMP/imgbench.log" |
		awk -v f="$1" '{print f "\t" $0}' >>"$IMG"
}
RSS="$TMP/rss.tsv"     # input op impl peak_kib
: >"$RSS"
imgrss() { # input op impl...
	local f=$1 op=$2 im
	shift 2
	for im in "$@"; do
		"$BIN/imgbench" rss "$im" "$op" "$IN/$f" "$TMP/out" 2>>"$TMP/imgbench.log" |
			awk -v f="$f" -v o="$op" -v i="$im" '{print f "\t" o "\t" i "\t" $2}' >>"$RSS"
	done
}
# Thumbnails take tens of milliseconds: three times the rounds.
imgtime p10.jpg thumb $((3 * ROUNDS))
imgtime p20.jpg thumb $((3 * ROUNDS))
imgtime p20.jpg display
imgtime p24.jpg display
imgtime p10.jpg display
imgtime p10.jpg derive
imgtime deep16.png derive
say "imaging: peak RSS, one job per fresh process"
imgrss p10.jpg thumb polaimg vips tj
imgrss p20.jpg thumb polaimg vips tj
imgrss p20.jpg display polaimg vips tj
imgrss p24.jpg display polaimg vips tj
imgrss p24.jpg derive polaimg vips tj
say "imaging: quality of the 20 MP display copies against a full decode + Lanczos"
/usr/bin/convert "$IN/p20.jpg" -filter Lanczos -resize 2048x2048 "$TMP/ref20.png"
"$BIN/imgbench" time display "$IN/p20.jpg" 1 "$TMP/out" polaimg vips tj >/dev/null 2>>"$TMP/imgbench.log"
psnr() { { compare -metric PSNR "$1" "$TMP/ref20.png" null: 2>&1 || true; } | awk '{printf "%.2f", $1}'; }
PSNR_P="$(psnr "$TMP/out/polaimg.display")"
PSNR_V="$(psnr "$TMP/out/vips.display")"
PSNR_T="$(psnr "$TMP/out/tj.display")"
img() { # input op impl field(4=wall 7=cpu)
	awk -F'\t' -v f="$1" -v o="$2" -v i="$3" -v c="$4" \
		'$1==f && $3==o && $2==i {print $c}' "$IMG"
}
rss() { awk -F'\t' -v f="$1" -v o="$2" -v i="$3" '$1==f && $2==o && $3==i {print $4}' "$RSS"; }
fi

# ---- the service: PostgreSQL, polaimg, nginx (as tests/integration/run.sh) ---
pl_unset_polaimg_env

say "starting PostgreSQL (default durability: fsync and synchronous_commit on)"
PG_STARTED=1
pl_pg_start "$PG_DIR"
export PGHOST="$PG_DIR" PGUSER=postgres PGDATABASE=polaimg_bench
psql -q -d postgres -c 'CREATE DATABASE polaimg_bench' >/dev/null

PORT=$(pl_free_port 18280 18378)
PORT_BF=$(pl_free_port $((PORT + 1)) 18379)
BASE="http://127.0.0.1:$PORT"; BASE_BF="http://127.0.0.1:$PORT_BF"
# polaimg's default worker count; the reference responder gets as many.
WORKERS=4
JWT_SECRET="$(pl_rand48)"
mkdir -p "$STORE" "$NGX" "$BODYDIR"
cat >"$CONF" <<EOF
# generated by bench/run.sh
listen = unix:$SOCK
workers = $WORKERS
max_requests = 0
storage_provider = local
storage_dir = $STORE
database_url = host=$PG_DIR dbname=polaimg_bench user=postgres
jwt_secret = $JWT_SECRET
url_signing_key = $(pl_rand48)
offload = nginx
public_base_url = $BASE
body_file_dir = $BODYDIR
log_file = $PLOG
imaging_policy_dir = $ROOT/conf
audit_spool_dir = $TMP/spool
EOF
mkdir -p "$TMP/spool"
"$BIN/polaimg" -c "$CONF" migrate --dir "$ROOT/sql" >"$TMP/migrate.log" 2>&1 ||
	{ cat "$TMP/migrate.log" >&2; exit 1; }
ADMIN=00000000-0000-4000-8000-00000000000a DOCTOR=00000000-0000-4000-8000-00000000000d
PATIENT=00000000-0000-4000-8000-00000000000e OTHER=00000000-0000-4000-8000-00000000000f
CASE_UP=00000000-0000-4000-8000-0000000000c1 CASE_LIST=00000000-0000-4000-8000-0000000000c2
CASE_MIX=00000000-0000-4000-8000-0000000000c3 CASE_OTHER=00000000-0000-4000-8000-0000000000c4
psql -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO users (id, role) VALUES ('$ADMIN', 'admin'), ('$DOCTOR', 'doctor'),
  ('$PATIENT', 'patient'), ('$OTHER', 'patient');
INSERT INTO patient_cases (id, patient_id) VALUES ('$CASE_UP', '$PATIENT'),
  ('$CASE_LIST', '$PATIENT'), ('$CASE_MIX', '$PATIENT'), ('$CASE_OTHER', '$OTHER');
SQL
"$BIN/polaimg" -c "$CONF" serve 2>>"$PLOG" &
POLAIMG_PID=$!
pl_wait_socket "$SOCK" 10 "polaimg serve" "$POLAIMG_PID" "$PLOG"

# The reference responder for case 5 (its JSON is written once the list
# exists; it starts then).
# One pool (no ingest_listen): the snippet's ingest routes go to the one socket.
pl_nginx_snippet conf/nginx/polaimg.conf "$NGX/polaimg.conf" "$SOCK" "$SOCK" "$STORE" "$ROOT/www"
# The same snippet with its "faster uploads" lines switched on.
pl_nginx_snippet conf/nginx/polaimg.conf "$NGX/polaimg-bodyfile.conf" "$SOCK" "$SOCK" "$STORE" \
	"$ROOT/www" "$BODYDIR"
pl_nginx_conf "$NGX" 2 <<EOF
	server {
		listen 127.0.0.1:$PORT;
		access_log off;
		include $NGX/polaimg.conf;
		# references: the same files served statically, a trivial responder
		location /static/ { alias $STORE/; }
		location /trivial/ {
			include fastcgi_params;
			fastcgi_pass unix:$TSOCK;
		}
	}
	server {
		listen 127.0.0.1:$PORT_BF;
		access_log off;
		include $NGX/polaimg-bodyfile.conf;
	}
EOF
pl_nginx_start "$NGX"
NGINX_PID=$PL_NGINX_PID
pl_wait_port "$PORT" 10 nginx "$NGINX_PID" "$NGX/logs/error.log"

TD="$(pl_mint_token "$DOCTOR" "$JWT_SECRET")"
TP="$(pl_mint_token "$PATIENT" "$JWT_SECRET")"
API=/api/v1/images
# upload BASE FILE CASE [TYPE] -> prints "http_code seconds id"
upload() { # BASE FILE CASE [TYPE]
	curl -s -o "$TMP/up.json" -w '%{http_code} %{time_total}' -H "Authorization: Bearer $TD" \
		-F "image=@$2;type=${4:-image/jpeg}" -F "caseId=$3" -F eyeSide=left "$1$API/upload"
	# The image's own id, the first in the answer (the uploader has one too).
	printf ' %s\n' "$(sed -n 's/^{"data":{"id":"\([0-9a-f-]*\)".*/\1/p' "$TMP/up.json")"
}
up_ok() { # BASE FILE CASE [TYPE] -> id, or fail
	local r
	r="$(upload "$@")"
	[ "${r%% *}" = 201 ] || { echo "upload of $2 failed: $r $(cat "$TMP/up.json")" >&2; exit 1; }
	echo "${r##* }"
}
worker_pids() { ps -o pid= --ppid "$POLAIMG_PID" | tr -d ' '; }
status_kib() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
# SIGHUP, then wait until none of the workers before it is left and all
# $WORKERS of the new generation run (cases 6 and 7 measure fresh workers).
fresh_workers() {
	local old now fresh
	old="$(worker_pids | sort | tr '\n' ' ')"
	kill -HUP "$POLAIMG_PID"
	for _ in $(seq 1 100); do
		now="$(worker_pids | sort | tr '\n' ' ')"
		fresh=1
		for p in $old; do case " $now " in *" $p "*) fresh=0 ;; esac; done
		[ "$fresh" = 1 ] && [ "$(echo "$now" | wc -w)" = "$WORKERS" ] && break
		sleep 0.1
	done
	[ "$fresh" = 1 ] || { echo "workers were not replaced after SIGHUP" >&2; exit 1; }
	sleep 0.5
}

if [ "$HOLD" = 1 ]; then
	cat <<TXT >&2
bench: services up in $TMP (logs: $PLOG, $NGX/logs); Ctrl-C stops them.
  streamed uploads: $BASE   body-file uploads: $BASE_BF
  master $POLAIMG_PID, workers $(worker_pids | tr '\n' ' ')
  DOCTOR=$TD
  PATIENT=$TP
  case $CASE_UP; inputs in $IN
TXT
	trap 'exit 0' INT TERM
	sleep infinity &
	HOLD_SLEEP=$!
	wait "$HOLD_SLEEP"
	exit 0
fi

# ---- case 3: upload end to end -------------------------------------------------
say "case 3: POST /upload of p10.jpg, streamed and body-file, $NET_ROUNDS rounds"
up_ok "$BASE" "$IN/p10.jpg" "$CASE_UP" >/dev/null      # warm-up, both workers
up_ok "$BASE_BF" "$IN/p10.jpg" "$CASE_UP" >/dev/null
up_ok "$BASE" "$IN/p10.jpg" "$CASE_UP" >/dev/null
: >"$TMP/up_stream"; : >"$TMP/up_file"
for _ in $(seq 1 "$NET_ROUNDS"); do
	r="$(upload "$BASE" "$IN/p10.jpg" "$CASE_UP")"
	[ "${r%% *}" = 201 ] || { echo "upload failed: $r" >&2; exit 1; }
	echo "$r" | awk '{print $2 * 1000}' >>"$TMP/up_stream"
	r="$(upload "$BASE_BF" "$IN/p10.jpg" "$CASE_UP")"
	[ "${r%% *}" = 201 ] || { echo "upload failed: $r" >&2; exit 1; }
	echo "$r" | awk '{print $2 * 1000}' >>"$TMP/up_file"
done
UP_S="$(median <"$TMP/up_stream")"; UP_F="$(median <"$TMP/up_file")"
# The worker's own time for the same requests, from its log lines.
UP_W="$(grep ' POST /api/v1/images/upload 201 ' "$PLOG" | tail -n $((2 * NET_ROUNDS)) |
	sed -n 's/.* \([0-9]*\)ms rid=.*/\1/p' | median)"
UP_ID="$(up_ok "$BASE" "$IN/p10.jpg" "$CASE_UP")"
BF_LEFT="$(find "$BODYDIR" -type f | wc -l)"

# ---- case 4: proxy ------------------------------------------------------------------
BIG_ID="$(up_ok "$BASE" "$IN/p20.jpg" "$CASE_UP")"
KEY_SMALL="cases/$CASE_UP/$UP_ID/display.jpg"
KEY_BIG="cases/$CASE_UP/$BIG_ID/original"
SIZE_SMALL="$(fsize "$STORE/$KEY_SMALL")"; SIZE_BIG="$(fsize "$STORE/$KEY_BIG")"
WRK="$TMP/wrk.tsv"    # name rps p50_ms p99_ms requests errors
: >"$WRK"
wrk_run() { # name url [token]
	local out
	out="$(wrk -t2 -c32 -d"${DURATION}s" --latency ${3:+-H "Authorization: Bearer $3"} "$2")"
	echo "$out" >>"$TMP/wrk.log"
	echo "$out" | awk -v n="$1" '
		function ms(s) { if (s ~ /us$/) return s / 1000; if (s ~ /ms$/) return s + 0;
			if (s ~ /s$/) return s * 1000; return s }
		$1 == "50.000%" || $1 == "50%" { p50 = ms($2) }
		$1 == "99.000%" || $1 == "99%" { p99 = ms($2) }
		/requests in/ { req = $1 }
		/Non-2xx or 3xx/ { err += $NF }
		/Socket errors/ { err += 1 }
		/^Requests\/sec/ { rps = $2 }
		END { printf "%s\t%s\t%s\t%s\t%s\t%d\n", n, rps, p50, p99, req, err }' >>"$WRK"
}
say "case 4: GET /proxy ($(human "$SIZE_SMALL") display, $(human "$SIZE_BIG") original) vs nginx static, $NET_ROUNDS rounds x ${DURATION}s each"
curl -sf -o /dev/null -H "Authorization: Bearer $TP" "$BASE$API/$UP_ID/proxy" ||
	{ echo "proxy does not answer" >&2; exit 1; }
curl -sf -o /dev/null "$BASE/static/$KEY_BIG" || { echo "static does not answer" >&2; exit 1; }
for _ in $(seq 1 "$NET_ROUNDS"); do
	wrk_run proxy_small "$BASE$API/$UP_ID/proxy" "$TP"
	wrk_run static_small "$BASE/static/$KEY_SMALL"
	wrk_run proxy_big "$BASE$API/$BIG_ID/proxy?variant=original" "$TP"
	wrk_run static_big "$BASE/static/$KEY_BIG"
done

# ---- case 5: list of 20 -----------------------------------------------------------
say "case 5: 20 images into a case, GET /cases/:id vs a trivial libfcgi responder"
for _ in $(seq 1 20); do up_ok "$BASE" "$IN/p1.jpg" "$CASE_LIST" >/dev/null; done
curl -sf -H "Authorization: Bearer $TP" -o "$TMP/list.json" "$BASE$API/cases/$CASE_LIST"
N_LIST="$(grep -o '"imageUrl":' "$TMP/list.json" | wc -l)"   # one per image
[ "$N_LIST" = 20 ] || { echo "list has $N_LIST images, not 20" >&2; exit 1; }
TRIVIAL_PIDS="$(spawn-fcgi -s "$TSOCK" -F "$WORKERS" -- "$BIN/trivial_fcgi" "$TMP/list.json" 2>&1 |
	sed -n 's/.*PID: *\([0-9]*\).*/\1/p' | tr '\n' ' ')"
[ -n "$TRIVIAL_PIDS" ] || { echo "spawn-fcgi failed" >&2; exit 1; }
cmp -s "$TMP/list.json" <(curl -sf "$BASE/trivial/x") ||
	{ echo "the trivial responder does not return the same bytes" >&2; exit 1; }
for _ in $(seq 1 "$NET_ROUNDS"); do
	wrk_run list "$BASE$API/cases/$CASE_LIST" "$TP"
	wrk_run trivial "$BASE/trivial/cases/$CASE_LIST" "$TP"
done

# ---- case 6: memory ----------------------------------------------------------------
say "case 6: fresh workers (SIGHUP), $NET_ROUNDS uploads of p24.jpg, peak RSS"
fresh_workers
WPIDS="$(worker_pids | tr '\n' ' ')"
HWM0=""; for p in $WPIDS; do HWM0="$HWM0 $(status_kib "$p" VmHWM)"; done
: >"$TMP/up24"
for _ in $(seq 1 "$NET_ROUNDS"); do
	r="$(upload "$BASE" "$IN/p24.jpg" "$CASE_MIX")"
	[ "${r%% *}" = 201 ] || { echo "24 MP upload failed: $r $(cat "$TMP/up.json")" >&2; exit 1; }
	echo "$r" | awk '{print $2 * 1000}' >>"$TMP/up24"
done
HWM=""; for p in $WPIDS; do HWM="$HWM $(status_kib "$p" VmHWM)"; done
HWM_MAX="$(echo "$HWM" | tr ' ' '\n' | sort -g | tail -1)"

say "case 6: RSS of every worker before and after 10,000 mixed requests"
MIXUP="$TMP/mix-upload.body"
{
	printf -- '--polaimgbench\r\nContent-Disposition: form-data; name="caseId"\r\n\r\n%s\r\n' "$CASE_MIX"
	printf -- '--polaimgbench\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
	printf 'Content-Type: image/jpeg\r\n\r\n'
	cat "$IN/p1.jpg"
	printf -- '\r\n--polaimgbench--\r\n'
} >"$MIXUP"
cat >"$TMP/mix.lua" <<'LUA'
-- Mixed requests, cycled; wrk (one thread) exits after MIX_N responses.
local reqs, i, n = {}, 0, 0
local total = tonumber(os.getenv("MIX_N"))
function init(args)
	local api = "/api/v1/images"
	local auth = { ["Authorization"] = "Bearer " .. os.getenv("MIX_TOKEN") }
	local img, case = os.getenv("MIX_IMG"), os.getenv("MIX_CASE")
	local f = io.open(os.getenv("MIX_UPLOAD"), "rb")
	local body = f:read("*a")
	f:close()
	local list = {
		wrk.format("GET", api .. "/cases/" .. case, auth),
		wrk.format("GET", api .. "/" .. img, auth),
		wrk.format("GET", api .. "/" .. img .. "/proxy", auth),
		wrk.format("GET", api .. "/" .. img .. "/proxy?thumbnail=true", auth),
		wrk.format("GET", api .. "/" .. img .. "/download-url", auth),
		wrk.format("GET", api .. "/health"),
		wrk.format("GET", api .. "/00000000-0000-4000-8000-00000000ffff", auth),
		wrk.format("GET", api .. "/cases/" .. case),
		wrk.format("GET", api .. "/cases/" .. os.getenv("MIX_OTHER"), auth),
		wrk.format("GET", api .. "/cases/" .. case .. "?limit=0", auth),
		wrk.format("GET", api .. "/" .. img .. "/proxy?variant=original", auth),
	}
	local up = wrk.format("POST", api .. "/upload", {
		["Authorization"] = "Bearer " .. os.getenv("MIX_UPLOADER"),
		["Content-Type"] = "multipart/form-data; boundary=polaimgbench" }, body)
	-- 49 light requests, then one upload of a 1 MP JPEG
	for k = 1, 49 do reqs[#reqs + 1] = list[(k - 1) % #list + 1] end
	reqs[#reqs + 1] = up
end
function request()
	i = i % #reqs + 1
	return reqs[i]
end
function response(status, headers, body)
	n = n + 1
	if n >= total then
		io.write("mixed responses: " .. n .. "\n")
		os.exit(0)
	end
end
LUA
mix() { # N
	MIX_N="$1" MIX_TOKEN="$TP" MIX_UPLOADER="$TD" MIX_IMG="$UP_ID" MIX_CASE="$CASE_LIST" \
		MIX_OTHER="$CASE_OTHER" MIX_UPLOAD="$MIXUP" \
		wrk -t1 -c8 -d600s -s "$TMP/mix.lua" "$BASE" >>"$TMP/mix.log"
}
# wrk leaves when it has its count, with requests still in flight (an
# upload holds its pixels for ~100 ms): let the workers finish first.
mix 1000
sleep 2
RSS0=""; for p in $WPIDS; do RSS0="$RSS0 $(status_kib "$p" VmRSS)"; done
MIX_T0=$SECONDS
mix 10000
MIX_SECS=$((SECONDS - MIX_T0))
sleep 2
RSS1=""; for p in $WPIDS; do RSS1="$RSS1 $(status_kib "$p" VmRSS)"; done
MIX_DONE="$(sed -n 's/^mixed responses: //p' "$TMP/mix.log" | tail -1)"
SAME_PIDS="$(worker_pids | tr '\n' ' ')"
[ "$SAME_PIDS" = "$WPIDS" ] || say "warning: the workers changed during the mixed requests ($WPIDS -> $SAME_PIDS)"
CRASHES="$(grep -cE 'master: worker [0-9]+ (killed by signal|exited with status [1-9])' "$PLOG" || true)"
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- case 7: uploads of every camera size against the libvips peer ---------------
# Round by round, A B A B: the libvips peer of the whole upload (imgbench's
# upload op in a fresh process: read, SHA-256, store the original, both
# copies, fsync all three; its own warm-up first), then POST /upload of the
# same file through nginx (curl's total time). CPU: the peer's process CPU
# time; polaimg's, the workers' utime + stime across the request (ticks of
# 10 ms). Peak RSS: VmHWM of workers started fresh (SIGHUP) before the
# input's uploads, and the peer's maximum resident set in a fresh process.
workers_ticks() { # utime + stime of every worker, in clock ticks
	local t=0 p v
	for p in $(worker_pids); do
		v="$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)"
		t=$((t + v))
	done
	echo "$t"
}
CAM_TSV="$TMP/camera.tsv"    # input round polaimg_ms vips_ms polaimg_cpu_ms vips_cpu_ms
: >"$CAM_TSV"
CAM_RSS="$TMP/camera-rss.tsv" # input polaimg_kib vips_kib psnr_polaimg psnr_vips
: >"$CAM_RSS"
TICK_MS=$((1000 / $(getconf CLK_TCK)))
for f in $CAM_SET; do
	say "case 7: $f ($(dims "$CAM/$f")), $NET_ROUNDS rounds against the libvips peer"
	case "$f" in *.png) type=image/png ;; *) type=image/jpeg ;; esac
	fresh_workers
	up_ok "$BASE" "$CAM/$f" "$CASE_UP" "$type" >/dev/null   # warm-up
	for r in $(seq 1 "$NET_ROUNDS"); do
		v="$("$BIN/imgbench" time upload "$CAM/$f" 1 "$TMP/out" vips 2>>"$TMP/imgbench.log")" ||
			{ echo "the libvips peer failed on $f" >&2; exit 1; }
		c0="$(workers_ticks)"
		res="$(upload "$BASE" "$CAM/$f" "$CASE_UP" "$type")"
		c1="$(workers_ticks)"
		[ "${res%% *}" = 201 ] || { echo "upload of $f failed: $res $(cat "$TMP/up.json")" >&2; exit 1; }
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$f" "$r" \
			"$(echo "$res" | awk '{print $2 * 1000}')" "$(echo "$v" | cut -f3)" \
			"$(((c1 - c0) * TICK_MS))" "$(echo "$v" | cut -f6)" >>"$CAM_TSV"
	done
	HWM=0
	for p in $(worker_pids); do
		k="$(status_kib "$p" VmHWM)"; [ "${k:-0}" -gt "$HWM" ] && HWM=$k
	done
	VR="$("$BIN/imgbench" rss vips upload "$CAM/$f" "$TMP/out" 2>>"$TMP/imgbench.log" | cut -f2)"
	# Quality: both display copies against a full decode, upright,
	# resized with Lanczos (three lobes), 8 bits.
	ID="$(echo "$res" | awk '{print $3}')"
	PD="$(ls "$STORE/cases/$CASE_UP/$ID"/display.* 2>/dev/null | head -1)"
	/usr/bin/convert "$CAM/$f" -auto-orient -filter Lanczos -resize '2048x2048>' -depth 8 "$TMP/camref.png"
	cpsnr() { { compare -metric PSNR "$1" "$TMP/camref.png" null: 2>&1 || true; } | awk '{printf "%.2f", $1}'; }
	printf '%s\t%s\t%s\t%s\t%s\n' "$f" "$HWM" "$VR" "$(cpsnr "$PD")" "$(cpsnr "$TMP/out/vips.display")" >>"$CAM_RSS"
done

# ---- results.md ------------------------------------------------------------------
wmed() { awk -F'\t' -v n="$1" -v c="$2" '$1==n {print $c}' "$WRK" | median; }
# The req/s ratios of $1 to $2 round by round (each pair ran back to back,
# so a change of the machine's load between rounds cancels out).
wratios() {
	paste <(awk -F'\t' -v n="$1" '$1==n {print $2}' "$WRK") \
		<(awk -F'\t' -v n="$2" '$1==n {print $2}' "$WRK") |
		awk '$2 > 0 {printf "%.4f\n", $1 / $2}'
}
wratio() { wratios "$1" "$2" | median | awk '{printf "%.2f", $1}'; }
wspread() { wratios "$1" "$2" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f–%.2f", lo, hi}'; }
# Case 7: per-round ratios polaimg / peer, their median, spread, geomean.
cam_ratios() { awk -F'\t' -v f="$1" '$1==f && $4 > 0 {printf "%.4f\n", $3 / $4}' "$CAM_TSV"; }
cam_ratio() { cam_ratios "$1" | median | awk '{printf "%.2f", $1}'; }
cam_spread() { cam_ratios "$1" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f–%.2f", lo, hi}'; }
cam_col() { awk -F'\t' -v f="$1" -v c="$2" '$1==f {print $c}' "$CAM_TSV" | median | awk '{printf "%.0f", $1}'; }
cam_rss() { awk -F'\t' -v f="$1" -v c="$2" '$1==f {print $c}' "$CAM_RSS"; }
cam_geomean() {
	for f in $CAM_SET; do cam_ratio "$f"; echo; done |
		awk 'NF {s += log($1); n++} END {if (n) printf "%.2f", exp(s / n); else print "n/a"}'
}
cam_psnr_worst() {
	awk -F'\t' '{d = $4 - $5; if (NR == 1 || d < m) m = d} END {printf "%.2f", m}' "$CAM_RSS"
}
R="$TMP/results.md"
verdict() { # value op target
	awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == "<=") ? (v <= t) : (op == "<") ? (v < t) : (v >= t);
		print (v == "n/a") ? "?" : ok ? "met" : "**missed**" }'
}
{
	echo "# polaimg benchmarks"
	echo
	echo "Written by \`bench/run.sh\` on $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) cores" \
		"($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM," \
		"load average $LOAD_START at the start, $LOAD_END at the end; $((SECONDS - T0)) s."
	echo "Versions: ImageMagick $(/usr/bin/convert -version | sed -n 's/^Version: ImageMagick \([^ ]*\).*/\1/p'), libvips $(pkg-config --modversion vips)," \
		"libjpeg-turbo $(pkg-config --modversion libturbojpeg), nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///')," \
		"PostgreSQL $(psql -tAc 'SHOW server_version' | cut -d' ' -f1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)."
	echo
	echo "Medians of A B A B … rounds ($ROUNDS in-process, $((3 * ROUNDS)) for thumbnails, $NET_ROUNDS through nginx); ratio ="
	echo "polaimg / reference. Wall-clock milliseconds; in-process cases also give the"
	echo "process CPU time, steadier when the machine is busy. One thread everywhere:"
	echo "polaimg's workers use one each, libvips is run with concurrency 1 and no cache."
	echo "Everything (wrk, nginx, polaimg, PostgreSQL) shares the same cores. PostgreSQL runs"
	echo "with its default durability; polaimg runs with its defaults: image changes committed"
	echo "synchronously, the audit rows of reads gathered (32 a batch, at most 100 ms) and"
	echo "committed asynchronously, copies of the rows access is decided on kept until a change"
	echo "is notified (auth_cache_ttl = 10), case lists kept by case version (list_cache_size = 4m)."
	echo "The machine may be shared with other work (the load averages above say how busy it was):"
	echo "absolute times move with it, the ratios of the same round much less, so ratios are"
	echo "medians of round-by-round ratios where the table gives a range (rounds lo–hi)."
	echo
	echo "Inputs (made by the script): $(dims "$IN/p10.jpg") $(human "$(fsize "$IN/p10.jpg")"), $(dims "$IN/p20.jpg") $(human "$(fsize "$IN/p20.jpg")")," \
		"$(dims "$IN/p24.jpg") $(human "$(fsize "$IN/p24.jpg")") JPEGs (q92, 4:2:0, sRGB ICC), a 16-bit" \
		"$(dims "$IN/deep16.png") PNG ($(human "$(fsize "$IN/deep16.png")")), a $(dims "$IN/p1.jpg") JPEG ($(human "$(fsize "$IN/p1.jpg")"))."
	echo
	echo "## Summary against the targets"
	echo
	echo "| case | ratio | target | |"
	echo "|---|---|---|---|"
	for f in p10.jpg p20.jpg; do
		rr="$(ratio "$(img $f thumb polaimg 4)" "$(img $f thumb vips 4)")"
		rc="$(ratio "$(img $f thumb polaimg 7)" "$(img $f thumb vips 7)")"
		echo "| thumbnail $(dims "$IN/$f") | $rr × libvips (CPU time $rc) | ≤ 1.0 | $(verdict "$rr" "<=" 1.0) |"
	done
	rr="$(ratio "$(img p20.jpg display polaimg 4)" "$(img p20.jpg display vips 4)")"
	rc="$(ratio "$(img p20.jpg display polaimg 7)" "$(img p20.jpg display vips 7)")"
	echo "| display copy 20 MP | $rr × libvips (CPU time $rc) | ≤ 1.3 | $(verdict "$rr" "<=" 1.3) |"
	IMGWORK="$(img p10.jpg derive polaimg 4)"
	rr="$(ratio "$UP_S" "$IMGWORK")"
	echo "| upload end to end (streamed body) | $rr × the imaging work | ≤ 1.25 | $(verdict "$rr" "<=" 1.25) |"
	rr="$(ratio "$UP_F" "$IMGWORK")"
	echo "| upload end to end (body file) | $rr × the imaging work | ≤ 1.25 | $(verdict "$rr" "<=" 1.25) |"
	rr="$(wratio proxy_big static_big)"
	echo "| proxy $(human "$SIZE_BIG") | $rr × nginx static (rounds $(wspread proxy_big static_big)) | ≥ 0.9 | $(verdict "$rr" ">=" 0.9) |"
	rr="$(wratio proxy_small static_small)"
	echo "| proxy $(human "$SIZE_SMALL") | $rr × nginx static (rounds $(wspread proxy_small static_small)) | ≥ 0.5 | $(verdict "$rr" ">=" 0.5) |"
	rr="$(wratio list trivial)"
	echo "| list of 20 | $rr × trivial responder (rounds $(wspread list trivial)) | ≥ 0.6 | $(verdict "$rr" ">=" 0.6) |"
	echo "| worker peak RSS, 24 MP upload | $(mib "$HWM_MAX") MiB | ≤ 128 MiB | $(verdict "$(mib "$HWM_MAX")" "<=" 128) |"
	drift="$(paste -d' ' <(echo "$RSS0" | tr ' ' '\n' | sed '/^$/d') <(echo "$RSS1" | tr ' ' '\n' | sed '/^$/d') |
		awk '{d = ($2 - $1) * 100 / $1; if (d > m) m = d} END {printf "%.1f", m}')"
	# A leak grows: a worker that gave memory back (its RSS fell) counts 0.
	echo "| worker RSS growth, 10,000 requests | $drift % (largest; shrinking counts 0) | < 5 % | $(verdict "$drift" "<" 5) |"
	for f in $CAM_SET; do
		cr="$(cam_ratio "$f")"
		echo "| upload $(dims "$CAM/$f") ($(cam_label "$f")) | $cr × libvips peer (rounds $(cam_spread "$f")) | ≤ 1.0 | $(verdict "$cr" "<=" 1.0) |"
	done
	echo "| upload, geometric mean of the camera set | $(cam_geomean) × libvips peer | ≤ 0.85 | $(verdict "$(cam_geomean)" "<=" 0.85) |"
	echo "| display copy quality, camera set | worst $(cam_psnr_worst) dB against libvips | ≥ −0.2 dB | $(verdict "$(cam_psnr_worst)" ">=" -0.2) |"
	echo "| worker peak RSS, upload of the 24 MP camera file | $(mib "$(cam_rss slitlamp24.jpg 2)") MiB | ≤ 128 MiB | $(verdict "$(mib "$(cam_rss slitlamp24.jpg 2)")" "<=" 128) |"
	echo
	echo "## 1. Thumbnail (fit 400×400, baseline JPEG q82, stripped), in-process"
	echo
	echo "| input | polaimg ms (cpu) | libvips ms (cpu) | libjpeg-turbo ms (cpu) | polaimg / libvips | floor / libvips | peak RSS polaimg / libvips / turbo |"
	echo "|---|---|---|---|---|---|---|"
	for f in p10.jpg p20.jpg; do
		echo "| $(dims "$IN/$f") | $(img $f thumb polaimg 4) ($(img $f thumb polaimg 7)) | $(img $f thumb vips 4) ($(img $f thumb vips 7)) |" \
			"$(img $f thumb tj 4) ($(img $f thumb tj 7)) | $(ratio "$(img $f thumb polaimg 4)" "$(img $f thumb vips 4)") |" \
			"$(ratio "$(img $f thumb tj 4)" "$(img $f thumb vips 4)") |" \
			"$(mib "$(rss $f thumb polaimg)") / $(mib "$(rss $f thumb vips)") / $(mib "$(rss $f thumb tj)") MiB |"
	done
	echo
	echo "## 2. Display copy (long side 2048, progressive JPEG q85, auto-oriented, stripped, ICC kept), in-process"
	echo
	echo "| input | polaimg ms (cpu) | libvips ms (cpu) | libjpeg-turbo ms (cpu) | polaimg / libvips | floor / libvips | peak RSS polaimg / libvips / turbo |"
	echo "|---|---|---|---|---|---|---|"
	for f in p20.jpg p24.jpg p10.jpg; do
		echo "| $(dims "$IN/$f") | $(img $f display polaimg 4) ($(img $f display polaimg 7)) | $(img $f display vips 4) ($(img $f display vips 7)) |" \
			"$(img $f display tj 4) ($(img $f display tj 7)) | $(ratio "$(img $f display polaimg 4)" "$(img $f display vips 4)") |" \
			"$(ratio "$(img $f display tj 4)" "$(img $f display vips 4)") |" \
			"$( [ -n "$(rss $f display polaimg)" ] && echo "$(mib "$(rss $f display polaimg)") / $(mib "$(rss $f display vips)") / $(mib "$(rss $f display tj)") MiB" || echo "—")|"
	done
	echo
	echo "Both copies from one decode (polaimg's upload path: display, then the thumbnail from it;"
	echo "libvips: vips_thumbnail to 2048 kept in memory, then vips_thumbnail_image to 400):"
	echo
	echo "| input | polaimg ms (cpu) | libvips ms (cpu) | libjpeg-turbo ms (cpu) | polaimg / libvips |"
	echo "|---|---|---|---|---|"
	for f in p10.jpg deep16.png; do
		echo "| $(dims "$IN/$f") $(echo "$f" | sed 's/.*\.//') | $(img $f derive polaimg 4) ($(img $f derive polaimg 7)) |" \
			"$(img $f derive vips 4) ($(img $f derive vips 7)) | $( [ -n "$(img $f derive tj 4)" ] && echo "$(img $f derive tj 4) ($(img $f derive tj 7))" || echo "—") |" \
			"$(ratio "$(img $f derive polaimg 4)" "$(img $f derive vips 4)") |"
	done
	echo
	echo "Peak RSS of one 24 MP derive (both copies) in a fresh process: polaimg $(mib "$(rss p24.jpg derive polaimg)") MiB," \
		"libvips $(mib "$(rss p24.jpg derive vips)") MiB, libjpeg-turbo $(mib "$(rss p24.jpg derive tj)") MiB."
	echo "Quality of the 20 MP display copies (q85 output) against a full decode resized with Lanczos:"
	echo "PSNR polaimg $PSNR_P dB, libvips $PSNR_V dB, libjpeg-turbo floor $PSNR_T dB."
	echo
	echo "## 3. Upload end to end: POST /upload of the $(dims "$IN/p10.jpg") JPEG through nginx"
	echo
	echo "Original + display + thumbnail + SHA-256 + database row + audit row, one client, curl's total time."
	echo
	echo "| | ms | / imaging work | / (thumbnail + display) |"
	echo "|---|---|---|---|"
	SUM12="$(awk -v a="$(img p10.jpg thumb polaimg 4)" -v b="$(img p10.jpg display polaimg 4)" 'BEGIN {print a + b}')"
	echo "| body streamed over FastCGI | $UP_S | $(ratio "$UP_S" "$IMGWORK") | $(ratio "$UP_S" "$SUM12") |"
	echo "| body file handed over (\`client_body_in_file_only\`) | $UP_F | $(ratio "$UP_F" "$IMGWORK") | $(ratio "$UP_F" "$SUM12") |"
	echo "| in the worker (its log), both modes | $UP_W | $(ratio "$UP_W" "$IMGWORK") | $(ratio "$UP_W" "$SUM12") |"
	echo
	echo "Imaging work = polaimg's in-process probe + derive of the same file (case 2's last table): $IMGWORK ms;"
	echo "thumbnail + display made separately (cases 1 and 2): $SUM12 ms. Body files left behind by nginx: $BF_LEFT."
	echo
	echo "## 4. Proxy: GET /proxy with offload = nginx vs nginx serving the same file, wrk 32 connections"
	echo
	echo "Ratio: the median of the round-by-round ratios (each pair ran back to back)."
	echo
	echo "| object | polaimg req/s | static req/s | ratio (rounds) | polaimg p50 / p99 ms | static p50 / p99 ms |"
	echo "|---|---|---|---|---|---|"
	for s in small big; do
		sz=$SIZE_SMALL; [ $s = big ] && sz=$SIZE_BIG
		echo "| $(human "$sz") | $(wmed proxy_$s 2) | $(wmed static_$s 2) | $(wratio proxy_$s static_$s) ($(wspread proxy_$s static_$s)) |" \
			"$(wmed proxy_$s 3) / $(wmed proxy_$s 4) | $(wmed static_$s 3) / $(wmed static_$s 4) |"
	done
	echo
	echo "## 5. List of 20 images: GET /cases/:id vs a trivial libfcgi responder with the same $(fsize "$TMP/list.json") bytes"
	echo
	echo "| | req/s | p50 / p99 ms |"
	echo "|---|---|---|"
	echo "| polaimg ($WORKERS workers) | $(wmed list 2) | $(wmed list 3) / $(wmed list 4) |"
	echo "| trivial_fcgi.c ($WORKERS processes) | $(wmed trivial 2) | $(wmed trivial 3) / $(wmed trivial 4) |"
	echo "| ratio (rounds) | $(wratio list trivial) ($(wspread list trivial)) | |"
	echo
	echo "## 6. Memory"
	echo
	echo "Peak RSS (VmHWM) of each worker, started fresh by SIGHUP, across $NET_ROUNDS uploads of the" \
		"$(dims "$IN/p24.jpg") JPEG (median $(median <"$TMP/up24") ms each):" \
		"$(for k in $HWM; do printf '%s MiB, ' "$(mib "$k")"; done | sed 's/, $//') (before: $(for k in $HWM0; do printf '%s MiB, ' "$(mib "$k")"; done | sed 's/, $//'))."
	echo
	echo "RSS of every worker after 1,000 mixed requests and after $MIX_DONE more in total" \
		"(10,000 asked; $MIX_SECS s; list, metadata, proxy of each variant, download-url, health," \
		"404, 401, 403, 400, and an upload of the 1 MP JPEG every 50th):"
	echo
	echo "| worker | before KiB | after KiB | drift |"
	echo "|---|---|---|---|"
	paste -d' ' <(echo "$WPIDS" | tr ' ' '\n' | sed '/^$/d') <(echo "$RSS0" | tr ' ' '\n' | sed '/^$/d') \
		<(echo "$RSS1" | tr ' ' '\n' | sed '/^$/d') |
		awk '{printf "| %s | %s | %s | %+.1f %% |\n", $1, $2, $3, ($3 - $2) * 100 / $2}'
	echo
	echo "Workers that crashed during the run: $CRASHES."
	echo
	echo "## 7. Uploads of every camera size: POST /upload through nginx against the libvips peer"
	echo
	echo "The peer (bench/imgbench.c, op upload) does the upload's own work in one process and one"
	echo "thread: read the file, SHA-256, write the original, display copy (fit 2048, progressive"
	echo "q85, auto-oriented, metadata stripped but ICC) and from it the thumbnail (fit 400, q82),"
	echo "8-bit PNG copies for PNG input, fsync of all three. polaimg does that plus HTTP, the"
	echo "database row and the audit row. Medians of $NET_ROUNDS A B rounds; ratio = median of the"
	echo "round-by-round ratios. PSNR: each display copy against a full decode, upright, resized"
	echo "with Lanczos (three lobes)."
	echo
	echo "| input | polaimg ms (cpu) | libvips peer ms (cpu) | ratio (rounds) | peak RSS polaimg / peer | PSNR polaimg / peer |"
	echo "|---|---|---|---|---|---|"
	for f in $CAM_SET; do
		echo "| $(dims "$CAM/$f") $(cam_label "$f") | $(cam_col "$f" 3) ($(cam_col "$f" 5)) |" \
			"$(cam_col "$f" 4) ($(cam_col "$f" 6)) | $(cam_ratio "$f") ($(cam_spread "$f")) |" \
			"$(mib "$(cam_rss "$f" 2)") / $(mib "$(cam_rss "$f" 3)") MiB | $(cam_rss "$f" 4) / $(cam_rss "$f" 5) dB |"
	done
	echo
	echo "## Notes on the targets"
	echo
	echo "- **List and proxy: what made the difference.** Before this work each request ran three"
	echo "  or four PostgreSQL statements (user, image or case, the list, the audit row): list"
	echo "  0.16, proxy 370 KB 0.41, 3.7 MB 0.84 (earlier runs of this script). Reading the user"
	echo "  with the image or case in one statement, writing the audit rows of reads in batches"
	echo "  (audit_read_batch = 32) and keeping case-list answers under the case's version took"
	echo "  them to 0.42, 0.57 and 0.85 (perf under list load: polaimg 34 % of all CPU, PostgreSQL"
	echo "  26 %, nginx 25 %, wrk 9 %; PostgreSQL's time spread over executor start-up, locks"
	echo "  and protocol for one three-join statement a request, about 45 µs of its own CPU)."
	echo "  Keeping the users, cases and images a worker read (auth_cache_ttl, dropped on every"
	echo "  change by NOTIFY from triggers and by a counter the workers share, see README"
	echo "  \"Reads per request\") removed that statement: 0.66, 0.64, 0.87. An idle worker then"
	echo "  wrote its gathered audit rows after every request when requests came slower than"
	echo "  the workers (the 3.7 MB case: about one insert a request, PostgreSQL 4.9 % of the"
	echo "  CPU); writing them when due (100 ms) instead: 3.7 MB 0.92. Verified tokens are kept"
	echo "  by their exact bytes (the JWT check was 6 % of all CPU under list load)."
	echo "- **Where the CPU goes now** (perf, list of 20, before the token cache: 11,776 req/s):"
	echo "  polaimg 36 %, nginx 34 %, wrk 12 %, PostgreSQL 10 % (the batched audit inserts),"
	echo "  idle 8 %. The 3.7 MB proxy is bound by wrk receiving the bytes (81 % of the CPU for"
	echo "  /proxy, 91 % for the static file): what polaimg and PostgreSQL take is what the"
	echo "  ratio loses, so it moves with the machine's load between rounds."
	echo "- **Camera uploads: what changed.** ImageMagick's jpeg:size only asks libjpeg for 1/N,"
	echo "  so a 3900- or 4032-pixel photograph (N = 1) was decoded whole into a 16-bit pixel"
	echo "  cache and resized from 12 MP (ratios 1.2–4.9 before). JPEGs are now decoded by"
	echo "  src/jpegdec.c through libjpeg at the smallest k/8 that covers the display size"
	echo "  (3900 → 5/8 = 2438, 4032 → 5/8, 4288 → 4/8, 5184 → 4/8, 6000 → 3/8), turned upright"
	echo "  there as the rows arrive (strips of 256 rows; a phone's quarter turn 5.5 ms against"
	echo "  17–25 ms for MagickAutoOrientImage on the 16-bit image) and reduced there by an area"
	echo "  average of the 8-bit rows (jd_shrink: the filter of MagickScaleImage, equal within"
	echo "  rounding, 17 ms for 2438×1920 → 2048×1613 against 70 ms; every MagickResizeImage"
	echo "  filter 207–278 ms), then handed to MagickWand (MagickConstituteImage) to encode; the"
	echo "  thumbnail is one area average of the display copy. Pixel buffers of 2 MiB and more"
	echo "  (ImageMagick's pixel caches through SetMagickAlignedMemoryMethods, jpegdec's rows)"
	echo "  are their own huge-page mappings (src/bigmem.c), unmapped when freed: a 12 MP upload"
	echo "  took 182,000 page faults, 30,000 now. CPU against the peer, in-process (imgbench"
	echo "  upload, 5 rounds) widefield 0.89 → 0.77 (huge pages) → 0.68 (8-bit reduction),"
	echo "  phone 1.03 → 0.86 → 0.69 (the orientation step alone: −5 % of its CPU, A/B)."
	echo "- **PNG.** Written through libpng (src/pngenc.c), not ImageMagick's PNG writer, which"
	echo "  searched a palette for every pixel of a grey image (a linear search of up to 256"
	echo "  entries, 70 of the OCT upload's 100 ms; naming the colour type, png:format, preserving"
	echo "  or setting the colormap and zlib levels were tried: 67–108 ms). Same 8-bit pixels (16"
	echo "  to 8 bits by truncation, as ImageMagick's writer did), the ICC profile as iCCP, else"
	echo "  gAMA. zlib level 1, run-length strategy, filter up on every row: 2000×2000 3.26 MB"
	echo "  (3.6 MB before; libvips's own default writes 9.0 MB, which its fsync pays for); OCT"
	echo "  upload CPU 2.4–2.9 × the peer before, 0.8 now."
} >"$R"
cp "$R" "$ROOT/bench/results.md"
cat "$R"
say "done in $((SECONDS - T0)) s; bench/results.md written"
