#!/bin/sh
# make bench: runs the benchmark scenarios one after the other, each printing
# its table and one "SUMMARY <scenario>: ..." line with PASS/MISS per target,
# then repeats the summary lines. Exits 0 once the figures are printed (a
# scenario that could not run is reported, not fatal).
#   BENCH_SCENARIOS   which, in order (default "throughput throughput-pg
#                     scale rate grant grant-pg takeover-pg import"; the -pg
#                     ones run with the ledger on a throwaway PostgreSQL
#                     server, and say so when it is not installed:
#                     throughput-pg and grant-pg the same scenario as
#                     without -pg, takeover-pg two instances whose leader
#                     is SIGKILLed again and again)
#   BENCH_QUICK=1     small sizes for a smoke run (about 2 minutes)
# Each scenario's own knobs are listed at the top of its script and in
# BENCHMARKS.md.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
export top_srcdir top_builddir

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	: "${BENCH_TP_ORDERS:=10000}" "${BENCH_SCALE_SIZES:=10000 100000}"
	: "${BENCH_RATE_RECHECKS:=10000}" "${BENCH_RATE_SECS:=20}"
	: "${BENCH_GRANT_ORDERS:=20}" "${BENCH_IMPORT_LINES:=100000 10000}"
	: "${BENCH_TAKEOVER_KILLS:=5}"
	export BENCH_TP_ORDERS BENCH_SCALE_SIZES BENCH_RATE_RECHECKS \
	    BENCH_RATE_SECS BENCH_GRANT_ORDERS BENCH_TAKEOVER_KILLS
fi
BENCH_SUMMARY=$(mktemp "${TMPDIR:-/tmp}/reconciled-bench-summary.XXXXXX")
export BENCH_SUMMARY
trap 'rm -f "$BENCH_SUMMARY"' EXIT
trap 'exit 1' HUP INT TERM

echo "reconciled make bench: $(date -u +%Y-%m-%dT%H:%M:%SZ)," \
    "commit $(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "$(git -C "$top_srcdir" diff --quiet HEAD 2>/dev/null || echo '(with local changes)')"
echo "build $top_builddir, CFLAGS: $(sed -n "s/^CFLAGS='\(.*\)'$/\1/p" "$top_builddir/config.log" 2>/dev/null | head -n 1)"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg);" \
    "$(curl-config --version 2>/dev/null || echo 'libcurl ?');" \
    "SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1)"
echo

for s in ${BENCH_SCENARIOS:-throughput throughput-pg scale rate grant grant-pg takeover-pg import}; do
	t0=$(date +%s)
	st=0
	case $s in
	throughput|scale|rate|grant)
		sh "$top_srcdir/tests/bench/bench-$s.sh" || st=$? ;;
	throughput-pg|grant-pg)
		LEDGER_BACKEND=pg sh "$top_srcdir/tests/bench/bench-${s%-pg}.sh" ||
		    st=$? ;;
	takeover-pg)
		sh "$top_srcdir/tests/bench/bench-takeover.sh" || st=$? ;;
	import)
		echo "== import: reconcilectl import (tests/bench/import-bench.sh)"
		sh "$top_srcdir/tests/bench/import-bench.sh" ${BENCH_IMPORT_LINES:-} \
		    >"$BENCH_SUMMARY.import" || st=$?
		cat "$BENCH_SUMMARY.import"
		awk 'NF == 5 && $1 ~ /^[0-9]+$/ {
			s = s (s ? "; " : "") sprintf("%d lines %.0f lines/s, peak RSS %.1f MB", $1, $4, $5)
		} END { if (s) print "SUMMARY import: " s " (no target)" }' \
		    "$BENCH_SUMMARY.import" | tee -a "$BENCH_SUMMARY"
		rm -f "$BENCH_SUMMARY.import"
		echo ;;
	*)
		echo "unknown scenario \"$s\" (throughput throughput-pg scale rate" \
		    "grant grant-pg takeover-pg import)" >&2
		st=64 ;;
	esac
	[ "$st" = 0 ] || echo "SUMMARY $s: did not complete (exit $st)" | tee -a "$BENCH_SUMMARY"
	echo "($s took $(( $(date +%s) - t0 )) s; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
	echo
done

echo "== summary"
cat "$BENCH_SUMMARY"
exit 0
