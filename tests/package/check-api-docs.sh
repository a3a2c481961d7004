#!/bin/sh
# check-api-docs.sh — docs/api.md lists exactly what the code serves:
#
# - routes: every row of the route table in src/router.c (method, path,
#   whether it needs a bearer token) is a row of the "Routes" table of
#   docs/api.md, and every row there is a route of router.c;
# - error codes: every JSON error code the C sources can send — each
#   `<status>, "<CODE>"` pair given to http_error()/http_error_hdr() or kept
#   in a table, and the code given to error_body() — is a row of the codes
#   table of docs/api.md with that status, and every row there is sent by
#   some source with exactly the statuses the row names.
#
# Both directions fail, each mismatch on a line of its own. Needs perl only.
# Usage: tests/package/check-api-docs.sh [SRCDIR]   (default: this tree).
# Prints TAP; `make check` runs it.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${1:-$(cd "$here/../.." && pwd)}
doc="$srcdir/docs/api.md"
router="$srcdir/src/router.c"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }

for f in "$doc" "$router"; do
	[ -f "$f" ] || { echo "Bail out! $f not found"; exit 1; }
done
command -v perl >/dev/null 2>&1 || { echo "Bail out! perl not found"; exit 1; }
tmp=$(mktemp -d /tmp/polaimg-apidocs.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# --- routes ---------------------------------------------------------------
# router.c: `#define API "/api/v1/images"` and rows
# `{ "GET", API "/:id/proxy", h_proxy, 1, PF_IMAGE },` inside routes[].
# Any :name parameter is written :id on both sides.
perl -0777 -ne '
	my ($prefix) = /#define\s+API\s+"([^"]*)"/ or die "no #define API\n";
	my ($tab) = /\broutes\[\]\s*=\s*\{(.*?)\n\};/s or die "no routes[] table\n";
	my $rows = () = $tab =~ /^\s*\{/mg;
	my $got = 0;
	while ($tab =~ /^\s*\{\s*"([A-Z]+)"\s*,\s*API\s*"([^"]*)"\s*,\s*\w+\s*,\s*([01])\b/mg) {
		my ($m, $p, $a) = ($1, "$prefix$2", $3 ? "bearer" : "own");
		$p =~ s/:\w+/:id/g;
		print "$m $p $a\n";
		$got++;
	}
	die "router.c: $rows rows in routes[], $got understood\n" if $got != $rows || $got == 0;
' "$router" >"$tmp/code-routes" 2>"$tmp/err" || {
	echo "Bail out! cannot read the route table of src/router.c: $(cat "$tmp/err")"; exit 1; }

# docs/api.md: the table under "## Routes": | `GET` | `/path` | auth | what |
perl -ne '
	if (/^## /) { $in = /^## Routes\s*$/; next }
	next unless $in && /^\|\s*`([A-Z]+)`\s*\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|/;
	my ($m, $p, $a) = ($1, $2, $3);
	$p =~ s/:\w+/:id/g;
	print "$m $p ", ($a eq "bearer" ? "bearer" : "own"), "\n";
' "$doc" >"$tmp/doc-routes"
[ -s "$tmp/doc-routes" ] || { echo "Bail out! docs/api.md has no \"## Routes\" table"; exit 1; }

sort -u "$tmp/code-routes" >"$tmp/a"
sort -u "$tmp/doc-routes" >"$tmp/b"
while read -r m p a; do
	if grep -qx "$m $p $a" "$tmp/b"; then
		ok "route $m $p ($a) is in docs/api.md"
	elif grep -q "^$m $p " "$tmp/b"; then
		not_ok "route $m $p: src/router.c says authentication '$a' (bearer = needs_auth 1), docs/api.md says otherwise"
	else
		not_ok "route $m $p of src/router.c is MISSING from the Routes table of docs/api.md"
	fi
done <"$tmp/a"
while read -r m p a; do
	grep -q "^$m $p " "$tmp/a" ||
		not_ok "docs/api.md documents $m $p, which src/router.c does NOT serve"
done <"$tmp/b"
if [ "$(sort "$tmp/doc-routes" | uniq -d | wc -l)" -gt 0 ]; then
	not_ok "docs/api.md lists a route twice: $(sort "$tmp/doc-routes" | uniq -d | tr '\n' ' ')"
fi

# --- error codes -------------------------------------------------------------
# Every `NNN, "CODE"` in src/*.c (a call's status and code, or a table row),
# and error_body(r, "CODE") whose status its caller sets.
cat "$srcdir"/src/*.c | perl -0777 -ne '
	s{/\*.*?\*/}{}gs;
	while (/\b([1-5][0-9][0-9])\s*,\s*"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)"/g) { print "$2 $1\n" }
	while (/\berror_body\s*\(\s*[^,()]+,\s*"([A-Z][A-Z0-9_]*)"/g) { print "$1 -\n" }
' | sort -u >"$tmp/code-errors"
[ -s "$tmp/code-errors" ] || { echo "Bail out! no error code found in src/*.c"; exit 1; }

# docs/api.md: the table with a "| code | status |" header: | `CODE` | 403 | …
perl -ne '
	if (/^\|\s*code\s*\|\s*status\s*\|/) { $in = 1; next }
	if ($in && !/^\|/) { $in = 0 }
	next unless $in && /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|\s*([0-9, ]+?)\s*\|/;
	my $c = $1;
	print "$c $_\n" for split /\s*,\s*/, $2;
' "$doc" | sort -u >"$tmp/doc-errors"
[ -s "$tmp/doc-errors" ] || { echo "Bail out! docs/api.md has no \"| code | status |\" table"; exit 1; }

for code in $(cut -d' ' -f1 "$tmp/code-errors" | sort -u); do
	if ! grep -q "^$code " "$tmp/doc-errors"; then
		not_ok "error code $code (src/*.c) is MISSING from the codes table of docs/api.md"
		continue
	fi
	bad=""
	for st in $(grep "^$code " "$tmp/code-errors" | cut -d' ' -f2); do
		[ "$st" = - ] && continue
		grep -qx "$code $st" "$tmp/doc-errors" || bad="$bad $st"
	done
	for st in $(grep "^$code " "$tmp/doc-errors" | cut -d' ' -f2); do
		# A code sent through error_body() alone: its status is not in
		# the call; the documented one is taken as it is.
		grep -q "^$code [0-9]" "$tmp/code-errors" || continue
		grep -qx "$code $st" "$tmp/code-errors" || bad="$bad doc:$st"
	done
	if [ -z "$bad" ]; then
		ok "error code $code is documented with its status"
	else
		not_ok "error code $code: statuses differ between src/*.c and docs/api.md ($bad; doc:N = documented, never sent)"
	fi
done
for code in $(cut -d' ' -f1 "$tmp/doc-errors" | sort -u); do
	grep -q "^$code " "$tmp/code-errors" ||
		not_ok "docs/api.md documents error code $code, which NO source in src/*.c sends"
done

echo "1..$n"
if [ "$failed" -gt 0 ]; then
	echo "# $failed mismatch(es) between docs/api.md and the code: update docs/api.md (or the code) so that both say the same"
	exit 1
fi
exit 0
