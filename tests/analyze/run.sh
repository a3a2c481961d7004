#!/bin/sh
# run.sh — the clang static analyzer over every source file of polaimg, with
# the flags configure chose; no finding is allowed.
#
# Usage: tests/analyze/run.sh SRCDIR [COMPILER FLAGS...]
# (`make analyze` in a build directory runs it with the configured flags).
# Every finding is printed with clang's path notes; a finding clang gets
# wrong is listed in tests/analyze/suppressions with its reason (one line:
# file|checker|text of the flagged source line|why it is not a defect),
# matched by the text of the line, not its number, so unrelated edits do
# not invalidate it. A suppression that matches nothing any more fails the
# run too: delete it. Exit 0 when clean, 1 on findings, 2 on usage errors.
set -u

srcdir=${1:?usage: run.sh SRCDIR [FLAGS...]}
shift
CLANG=${CLANG:-clang}
here=$(cd "$(dirname "$0")" && pwd)
supp="$here/suppressions"
command -v "$CLANG" >/dev/null 2>&1 || { echo "analyze: $CLANG not found" >&2; exit 2; }

tmp=$(mktemp -d /tmp/polaimg-analyze.XXXXXX) || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# -Werror would turn clang's own compiler warnings into errors, and clang
# need not link OpenMP to analyze: both are dropped.
n_args=$#
i=0
for f in "$@"; do
	i=$((i + 1))
	[ "$i" -le "$n_args" ] || break
	shift
	case "$f" in
	-Werror|-fopenmp) ;;
	*) set -- "$@" "$f" ;;
	esac
done

cd "$srcdir" || exit 2
analyze_one() { # analyze_one FILE FLAGS...
	f=$1
	shift
	"$CLANG" --analyze --analyzer-output text "$@" -o /dev/null "$f" \
		>"$tmp/$(basename "$f").log" 2>&1
	echo $? >"$tmp/$(basename "$f").rc"
}
# Two at a time: the machines that run ./dev test have few cores.
jobs=${ANALYZE_JOBS:-2}
running=0
for f in src/*.c; do
	analyze_one "$f" "$@" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait
		running=0
	fi
done
wait

status=0
for rcf in "$tmp"/*.rc; do
	if [ "$(cat "$rcf")" != 0 ]; then
		echo "analyze: clang failed on src/$(basename "$rcf" .rc):"
		sed 's/^/    /' "${rcf%.rc}.log"
		status=1
	fi
done

# file:line:col: warning: message [checker]
cat "$tmp"/*.log | grep -E '^src/[^:]+:[0-9]+:[0-9]+: warning: .*\[[a-zA-Z.]+\]$' |
	sort -u >"$tmp/findings"
: >"$tmp/used"
n=0
while IFS= read -r w; do
	file=${w%%:*}
	rest=${w#*:}
	line=${rest%%:*}
	checker=$(printf '%s' "$w" | sed 's/.*\[\([a-zA-Z.]*\)\]$/\1/')
	text=$(sed -n "${line}p" "$file")
	hit=""
	if [ -f "$supp" ]; then
		hit=$(grep -v '^#' "$supp" | while IFS='|' read -r sf sc st sr; do
			[ -n "$sf" ] || continue
			if [ "$sf" = "$file" ] && [ "$sc" = "$checker" ]; then
				case "$text" in *"$st"*) echo "$sf|$sc|$st"; break ;; esac
			fi
		done)
	fi
	if [ -n "$hit" ]; then
		echo "$hit" >>"$tmp/used"
		continue
	fi
	n=$((n + 1))
	echo "analyze: FINDING $w"
	echo "    $text"
	# clang's explanation: the notes printed for this file.
	grep -E "^$file:[0-9]+:[0-9]+: note:" "$tmp/$(basename "$file").log" | head -20 | sed 's/^/    /'
done <"$tmp/findings"

stale=0
if [ -f "$supp" ]; then
	grep -v '^#' "$supp" | while IFS='|' read -r sf sc st sr; do
		[ -n "$sf" ] || continue
		grep -qxF "$sf|$sc|$st" "$tmp/used" ||
			echo "analyze: STALE suppression (matches no finding; delete it): $sf|$sc|$st"
	done >"$tmp/stale"
	stale=$(wc -l <"$tmp/stale")
	cat "$tmp/stale"
fi

total=$(wc -l <"$tmp/findings")
used=$(sort -u "$tmp/used" | wc -l)
echo "analyze: $(ls src/*.c | wc -l) files, $total findings, $used suppressed with a reason, $n unexplained, $stale stale suppressions"
if [ "$n" -gt 0 ] || [ "$stale" -gt 0 ] || [ "$status" -ne 0 ]; then
	echo "analyze: FAILED — fix each finding, or if clang is wrong list it in tests/analyze/suppressions with the reason"
	exit 1
fi
exit 0
