#!/bin/sh
# check-docs.sh — the sample configuration and the manual page follow the
# binary: every key that `polaimg config-keys` lists appears in
# conf/polaimg.conf as a commented "#key = <its default>" line and in
# docs/polaimg.8; every verb of `polaimg --help` is described in the manual;
# and the sample, with every line uncommented, is a valid configuration.
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

echo "1..$n"
[ "$failed" -eq 0 ]
