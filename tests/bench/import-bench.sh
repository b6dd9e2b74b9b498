#!/bin/sh
# Times `reconcilectl import` on a generated 1,000,000-line file and on a
# 100,000-line one, each into a fresh ledger, and prints wall time and peak
# RSS: the peak must not grow with the file (import streams it through a
# fixed buffer and one transaction). Not part of make check. Run from a
# build tree, or say where it is:
#   top_builddir=/path/to/build sh tests/bench/import-bench.sh [LINES...]
# Peak RSS comes from GNU time (/usr/bin/time -v), else (or with BENCH_POLL=1)
# from polling /proc/PID/status.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
export top_srcdir top_builddir
. "$top_srcdir/tests/integration/lib.sh"

require_file "$RECONCILECTL"
[ $# -gt 0 ] || set -- 1000000 100000

# gen N FILE: N valid lines, integer userKeys, with a sku.
gen()
{
	awk -v n="$1" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "{\"orderId\":\"bench-%09d\",\"userKey\":%d,\"sku\":\"ait.0000010000.af647449\"}\n", i, 400000000 + i
	}' >"$2"
}

# measure FILE CONF: sets WALL (seconds) and RSS_KB (peak) for one import.
measure()
{
	if [ -z "${BENCH_POLL:-}" ] && [ -x /usr/bin/time ] &&
	    /usr/bin/time -v true >/dev/null 2>&1; then
		/usr/bin/time -v -o "$T/time.out" "$RECONCILECTL" -c "$2" import "$1" \
		    >"$T/stdout" 2>"$T/stderr" || fail "import failed: $(cat "$T/stderr")"
		RSS_KB=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$T/time.out")
		WALL=$(sed -n 's/^[[:space:]]*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$T/time.out" |
		    awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; printf "%.2f", s }')
		HOW="/usr/bin/time -v"
		return
	fi
	# No GNU time: poll the kernel's high-water mark while it runs.
	_t0=$(date +%s.%N)
	"$RECONCILECTL" -c "$2" import "$1" >"$T/stdout" 2>"$T/stderr" &
	_pid=$!
	RSS_KB=0
	while _hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$_pid/status" 2>/dev/null) &&
	    [ -n "$_hwm" ]; do
		[ "$_hwm" -gt "$RSS_KB" ] && RSS_KB=$_hwm
		sleep 0.05
	done
	wait "$_pid" || fail "import failed: $(cat "$T/stderr")"
	WALL=$(echo "$_t0 $(date +%s.%N)" | awk '{ printf "%.2f", $2 - $1 }')
	HOW="/proc/PID/status VmHWM, polled every 50 ms"
}

rows=
for n in "$@"; do
	f=$T/import-$n.jsonl
	echo "generating $n lines..." >&2
	gen "$n" "$f"
	size=$(wc -c <"$f")
	CONF=$T/bench-$n.conf
	printf '[ledger]\npath = %s\n' "$T/ledger-$n.db" >"$CONF"
	echo "importing $n lines..." >&2
	measure "$f" "$CONF"
	assert_eq "$n added, 0 known, 0 rejected" "$(cat "$T/stdout")" "import summary"
	pending=$("$RECONCILECTL" -c "$CONF" stats | awk '$1 == "pending" { print $2 }')
	assert_eq "$n" "$pending" "orders in the ledger"
	rows="$rows$n $size $WALL $RSS_KB
"
	rm -f "$f" "$T/ledger-$n.db"*
done

echo "reconcilectl import ($RECONCILECTL; peak RSS by $HOW)"
printf '%s' "$rows" | awk 'BEGIN {
	printf "%10s %10s %9s %12s %12s\n", "lines", "file MB", "wall s", "lines/s", "peak RSS MB"
} {
	printf "%10d %10.1f %9.2f %12d %12.1f\n", $1, $2 / 1048576, $3, ($3 > 0 ? $1 / $3 : 0), $4 / 1024
}'
