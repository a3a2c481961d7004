#!/bin/sh
# check-design.sh — the rules of the map at the top of docs/design.md, as far
# as includes and calls can show them:
#
# - only the files that own a library include it (libpq: db.c; MagickWand:
#   imaging.c; libjpeg: jpegdec.c; libpng: pngenc.c; libcurl: the HTTP back ends; libfcgi: http and the worker);
# - imaging knows no rows or requests: imaging.[ch], jpegdec.[ch],
#   pngenc.[ch] and bigmem.[ch] include no project header but their own,
#   imghdr.h, jpegdec.h, pngenc.h, bigmem.h, common.h and log.h;
# - the handlers reach the back ends only through storage.h: no back end's
#   header, no signer, no libcurl in any handlers*.c nor in ingest.c;
# - ingest knows no requests: ingest.[ch] include neither http.h nor
#   handlers.h;
# - signers and parsers do no I/O: acl.c, sigv4.c, urltoken.c, multipart.c,
#   validate.c and imghdr.c include no project header but their own and common.h,
#   and call no I/O function.
#
# Usage: tests/package/check-design.sh [SRCDIR]. Prints TAP; `make check` runs it.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${1:-$(cd "$here/../.." && pwd)}
cd "$srcdir/src" 2>/dev/null || { echo "Bail out! $srcdir/src not found"; exit 1; }

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }

# only_in HEADER-REGEX "ALLOWED FILES" DESCRIPTION
only_in() {
	bad=""
	for f in $(grep -lE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($1)[>\"]" -- *.c *.h); do
		case " $2 " in *" $f "*) ;; *) bad="$bad $f" ;; esac
	done
	if [ -z "$bad" ]; then ok "$3"; else not_ok "$3: also included by$bad"; fi
}
only_in 'libpq-fe\.h' "db.c" "libpq is db.c's alone"
only_in 'wand/MagickWand\.h|MagickWand/MagickWand\.h' "imaging.c" "MagickWand is imaging.c's alone"
only_in 'jpeglib\.h|jerror\.h' "jpegdec.c" "libjpeg is jpegdec.c's alone"
only_in 'png\.h|pngconf\.h' "pngenc.c" "libpng is pngenc.c's alone"
only_in 'curl/curl\.h' "storage_http.h storage_s3.c storage_supabase.c" "libcurl is the HTTP back ends' alone"
only_in 'fcgiapp\.h|fcgi_stdio\.h' "http.h worker.c" "libfcgi is http's and the worker's alone"

# project_includes FILE: the project headers FILE includes.
project_includes() { sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1"; }

# allowed FILE "HEADERS" DESCRIPTION
allowed() {
	bad=""
	for h in $(project_includes "$1"); do
		case " $2 " in *" $h "*) ;; *) bad="$bad $h" ;; esac
	done
	if [ -z "$bad" ]; then ok "$3"; else not_ok "$3: $1 includes$bad"; fi
}
for f in imaging.c imaging.h; do
	allowed "$f" "imaging.h imghdr.h jpegdec.h pngenc.h bigmem.h common.h log.h" "imaging knows no rows or requests ($f)"
done
for f in jpegdec.c jpegdec.h; do
	allowed "$f" "jpegdec.h bigmem.h common.h log.h" "the JPEG decoder knows no rows or requests ($f)"
done
for f in pngenc.c pngenc.h; do
	allowed "$f" "pngenc.h common.h log.h" "the PNG writer knows no rows or requests ($f)"
done
for f in bigmem.c bigmem.h; do
	allowed "$f" "bigmem.h" "bigmem depends on no other module ($f)"
done
for f in acl sigv4 urltoken multipart validate imghdr; do
	allowed "$f.c" "$f.h common.h" "$f.c depends on no other module"
	# imghdr.h names its types with imaging.h's enum img_type.
	if [ "$f" = imghdr ]; then
		allowed "$f.h" "common.h imaging.h" "$f.h depends on no other module"
	else
		allowed "$f.h" "common.h" "$f.h depends on no other module"
	fi
	calls=$(perl -0777 -pe 's{/\*.*?\*/}{}gs; s{//[^\n]*}{}g' "$f.c" | grep -nE '\b(open|openat|fopen|read|write|pread|pwrite|recv|send|socket|connect|unlink|rename|getrandom|time|clock_gettime|curl_[a-z_]+|PQ[a-zA-Z]+|FCGX_[A-Za-z]+)[[:space:]]*\(' | head -3)
	if [ -z "$calls" ]; then
		ok "$f.c does no I/O"
	else
		not_ok "$f.c does no I/O: it calls $(echo "$calls" | tr '\n' ' ')"
	fi
done
for f in handlers*.c ingest.c; do
	bad=""
	for h in $(project_includes "$f"); do
		case "$h" in
		storage_http.h|sigv4.h|presign.h|storage_local.h|storage_s3.h|storage_supabase.h) bad="$bad $h" ;;
		esac
	done
	grep -qE 'curl/curl\.h|storage_(local|s3|supabase)\.c' "$f" && bad="$bad (a back end directly)"
	if [ -z "$bad" ]; then
		ok "handlers reach the back ends only through storage.h ($f)"
	else
		not_ok "handlers reach the back ends only through storage.h: $f includes$bad"
	fi
done
for f in ingest.c ingest.h; do
	bad=""
	for h in $(project_includes "$f"); do
		case "$h" in http.h|handlers.h) bad="$bad $h" ;; esac
	done
	if [ -z "$bad" ]; then ok "ingest knows no requests ($f)"; else not_ok "ingest knows no requests: $f includes$bad"; fi
done

echo "1..$n"
if [ "$failed" -gt 0 ]; then
	echo "# $failed rule(s) of the map in docs/design.md broken: change the code, or the map and this test together"
	exit 1
fi
exit 0
