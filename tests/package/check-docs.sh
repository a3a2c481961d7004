#!/bin/sh
# check-docs.sh — the sample configuration, the manual page and the README
# follow the binary: every key that `polaimg config-keys` lists appears in
# conf/polaimg.conf as a commented "#key = <its default>" line and in
# docs/polaimg.8; every verb of `polaimg --help` is described in the manual;
# and the sample, with every line uncommented, is a valid configuration.
# README.md: its settings table has exactly the keys of config-keys, each
# with its default and, for a key with a fixed set of values, every one of
# them; its command synopsis and verb list match `polaimg --help` (arguments
# included); the PolaCare environment names it lists are the aliases of
# src/config.c; the fuzz targets it lists are those of tests/fuzz/run.sh;
# no command runs through sudo.
# conf/: every path of the package (one naming polaimg) that a comment
# names is one the package installs or creates, or a key's default.
#
# Usage: tests/package/check-docs.sh [path/to/polaimg]
# (default: $POLAIMG_BIN, else src/polaimg of the current directory, which
# is where `make check` runs it). Prints TAP.
set -u

here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
bin=${1:-${POLAIMG_BIN:-./src/polaimg}}
conf="$srcdir/conf/polaimg.conf"
man="$srcdir/docs/polaimg.8"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { # check DESCRIPTION COMMAND...
	desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

if ! [ -x "$bin" ]; then
	echo "1..0 # SKIP $bin not built"
	exit 0
fi
tmp=$(mktemp -d /tmp/polaimg-docs.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# Run the binary with no configuration file and no POLAIMG_ variables.
clean_env() { env -i PATH=/usr/bin:/bin POLAIMG_CONFIG="$tmp/none" "$@"; }

clean_env "$bin" config-keys >"$tmp/keys" 2>&1
keys=$(cut -f1 "$tmp/keys")
[ -n "$keys" ] || { echo "Bail out! $bin config-keys printed no key"; exit 1; }

# A man page word: '-' is written '\-'.
man_word() { printf '%s' "$1" | sed 's/-/\\\\-/g'; }

while IFS="$(printf '\t')" read -r key type def help; do
	# The sample's value as the parser reads it: quotes around "" only.
	line=$(grep -E "^#$key = " "$conf" | head -n 1)
	check "conf/polaimg.conf has a commented line for $key" test -n "$line"
	val=${line#"#$key = "}
	case "$key" in
	imaging_policy_dir)
		# The default follows the install prefix (POLAIMG_DATADIR); the
		# sample shows the package's.
		check "$key: the sample shows the package's default" \
			test "$val" = /usr/share/polaimg ;;
	*)
		check "$key: the sample shows the default ($def)" test "$val" = "$def" ;;
	esac
	check "docs/polaimg.8 describes $key" \
		grep -q -E "^\\.B $(man_word "$key")( |\$)" "$man"
done <"$tmp/keys"

verbs=$(clean_env "$bin" --help | sed -n 's/^  \([a-z-][a-z-]*\).*/\1/p')
[ -n "$verbs" ] || { echo "Bail out! $bin --help lists no verb"; exit 1; }
for verb in $verbs; do
	check "docs/polaimg.8 describes the verb $verb" \
		grep -q -E "^\\.(B|BR|BI) (.* )?$(man_word "$verb")( |\$)" "$man"
done

# Every line uncommented (plus the three required secrets) must load;
# check-config also loads the policy and opens the storage, so those two
# point into this tree and the test's directory.
sed -n 's/^#\([a-z_]* = \)/\1/p' "$conf" >"$tmp/all.conf"
{
	echo 'database_url = host=/nonexistent dbname=x'
	echo 'jwt_secret = 0123456789abcdef0123456789abcdef'
	echo 'url_signing_key = 0123456789abcdef0123456789abcdef'
	echo "imaging_policy_dir = $srcdir/conf"
	echo "storage_dir = $tmp/store"
} >>"$tmp/all.conf"
if env -i PATH=/usr/bin:/bin "$bin" -c "$tmp/all.conf" check-config >"$tmp/out" 2>&1; then
	ok "conf/polaimg.conf, every line uncommented, is a valid configuration"
else
	not_ok "conf/polaimg.conf, every line uncommented, is a valid configuration"
	sed 's/^/# /' "$tmp/out"
fi
# A unit whose service exits at start (a broken configuration) must end
# failed, not restart for ever: 5 starts of RestartSec=2 fit in 60 s.
unit="$srcdir/conf/polaimg.service"
check "polaimg.service: StartLimitIntervalSec=60 and StartLimitBurst=5 in [Unit]" \
	sh -c "sed -n '/^\[Unit\]/,/^\[/p' '$unit' | grep -qx StartLimitIntervalSec=60 &&
		sed -n '/^\[Unit\]/,/^\[/p' '$unit' | grep -qx StartLimitBurst=5"
count=$(grep -c -E '^#[a-z_]+ = ' "$conf")
check "conf/polaimg.conf has no key that polaimg does not know ($count lines)" \
	test "$count" -eq "$(printf '%s\n' "$keys" | wc -l)"

# ---- README.md ----------------------------------------------------------------
readme="$srcdir/README.md"
# The settings table: "| `key` | default | meaning |" rows.
sed -n 's/^| `\([a-z_]*\)` | \(.*\)$/\1\t\2/p' "$readme" >"$tmp/rows"
while IFS="$(printf '\t')" read -r key type def help; do
	row=$(grep -E "^$key	" "$tmp/rows" | head -n 1)
	check "README.md's settings table has $key" test -n "$row"
	[ -n "$row" ] || continue
	rdef=$(printf '%s' "$row" | cut -f2 | sed 's/ |.*//')
	# The default as README writes it: — for "", backticks optional; a
	# default the package's file overrides is noted after it.
	case "$def" in
	'""') want='—' ;;
	*) want=$def ;;
	esac
	case "$key" in
	imaging_policy_dir) want=/usr/share/polaimg ;;
	esac
	got=$(printf '%s' "$rdef" | sed 's/ (the package.s file: .*)$//; s/`//g')
	check "README.md: $key defaults to $want (README: $rdef)" test "$got" = "$want"
	case "$type" in
	"one of "*)
		for v in $(printf '%s' "${type#one of }" | tr '|' ' '); do
			check "README.md: $key lists its value $v" \
				sh -c 'printf "%s" "$1" | grep -qE "(^|[^A-Za-z0-9])$2([^A-Za-z0-9]|\$)"' sh "$row" "$v"
		done ;;
	esac
done <"$tmp/keys"
for key in $(cut -f1 "$tmp/rows"); do
	check "README.md's settings table: $key is a key polaimg knows" \
		sh -c 'cut -f1 "$1" | grep -qx "$2"' sh "$tmp/keys" "$key"
done

# The command synopsis (the block after "## The command") names every verb
# with the arguments --help gives it, and a bullet describes each.
sed -n '/^## The command/,/^## /p' "$readme" >"$tmp/cmd"
clean_env "$bin" --help | sed -n 's/^  \([a-z-][a-z-]*\)\( [^ ].*\)\{0,1\}$/\1\2/p' |
	sed 's/  .*//' >"$tmp/usage"
while read -r verb args; do
	case "$verb" in
	presign) args="" ;; # its options span two lines of --help
	esac
	check "README.md's synopsis has '$verb${args:+ $args}'" \
		grep -qF -- "$verb${args:+ $args}" "$tmp/cmd"
	[ "$verb" = config-keys ] && continue
	check "README.md describes the verb $verb" grep -qE -- "^- \`$verb[ \`]" "$tmp/cmd"
done <"$tmp/usage"

# Commands run as another user with runuser (util-linux, on every Debian),
# never sudo (not on a minimal one).
check "README.md's commands use runuser, not sudo" sh -c "! grep -nE '^[[:space:]]*sudo[[:space:]]' '$readme'"

# The PolaCare environment names.
aliases=$(sed -n '/config_table\[\] = {/,/^};/p' "$srcdir/src/config.c" | grep -oE '"[A-Z][A-Z_]+"' | tr -d '"')
for a in $aliases; do
	check "README.md names the environment alias $a" grep -qE "\`$a\`" "$readme"
done

# The fuzz targets.
targets=$(sed -n 's/^ALL_TARGETS="\(.*\)"$/\1/p' "$srcdir/tests/fuzz/run.sh")
for t in $targets; do
	check "README.md lists the fuzz target $t" grep -qE "^\| \`tests/fuzz/\` \|.*\b$t\b" "$readme"
done

# ---- paths named in conf/ comments ------------------------------------------
# (Only in a git tree: debian/ is not in the release tarball.)
if [ -d "$srcdir/debian" ]; then
# Known: what debian/polaimg.install and .links put in place, the
# directories postinst and the units create, the keys' defaults and the
# values the package's polaimg.conf sets.
{
	while read -r from to; do
		echo "/${to%/}"
		echo "/${to%/}/$(basename "$from")"
	done <"$srcdir/debian/polaimg.install"
	sed 's/^[^ ]* /\//' "$srcdir/debian/polaimg.links"
	grep -oE 'install -d [^/]*(/[^ ]+)' "$srcdir/debian/polaimg.postinst" | grep -oE '/[^ ]+$'
	echo /usr/sbin/polaimg
	echo "/run/$(sed -n 's/^RuntimeDirectory=//p' "$srcdir/conf/polaimg.service")"
	echo "/var/log/$(sed -n 's/^LogsDirectory=//p' "$srcdir/conf/polaimg.service")"
	sed -n 's/^ListenStream=//p' "$srcdir"/conf/*.socket
	cut -f3 "$tmp/keys" | grep '^/'
	sed -n 's/^[a-z_]* = \(unix:\)\{0,1\}\(\/.*\)$/\2/p' "$conf"
} | sed 's#/$##' | sort -u >"$tmp/known"
for f in "$srcdir"/conf/*.conf "$srcdir"/conf/*/*.conf "$srcdir"/conf/*.service \
	"$srcdir"/conf/*.socket "$srcdir"/conf/*.timer; do
	grep -E '^[[:space:]]*#' "$f" | grep -oE '/(etc|usr|lib|var|run)/[A-Za-z0-9_./-]*polaimg[A-Za-z0-9_./-]*' |
		sed 's/[.,;:)]*$//; s#/$##' | sort -u | while read -r path; do
		case "$path" in
		/var/lib/polaimg/*|/var/log/polaimg/*) # the state and log
			# directories: an administrator's places too
			grep -qx "${path%/polaimg/*}/polaimg" "$tmp/known" && echo "ok $f $path" && continue ;;
		esac
		if grep -qx -- "$path" "$tmp/known"; then echo "ok $f $path"; else echo "bad $f $path"; fi
	done
done >"$tmp/paths"
while read -r verdict f path; do
	check "${f#"$srcdir"/}: its comment names $path, which the package provides" test "$verdict" = ok
done <"$tmp/paths"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
