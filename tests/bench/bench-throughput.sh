#!/bin/sh
# make bench, scenario 1: throughput against the raw HTTP ceiling. In one
# run: tests/bench/ceiling (libcurl multi with the daemon's TLS settings,
# keep-alive, HTTP/2 offered, 256 concurrent requests, no ledger) POSTs
# BENCH_CEIL_REQUESTS status requests to toss-sim --latency 20 and counts
# completed 200 SUCCESS answers; then the daemon (max_inflight 256, no rate
# limit, synchronous=FULL, its group commit) drains BENCH_TP_ORDERS orders
# that answer ORDER_IN_PROGRESS once and PAYMENT_COMPLETED on the next poll.
# Polls and their span come from the ledger; CPU from
# /proc/PID/stat, peak RSS from VmHWM. BENCH_PERF=FILE also records the
# daemon with perf record -g into FILE.
# LEDGER_BACKEND=pg (run.sh's throughput-pg): the same daemon run with its
# ledger on a throwaway PostgreSQL server (lib-bench.sh), without the
# ceiling (the ledger does not enter it: the SQLite scenario measures it);
# the server's CPU (every process of the cluster, pg_cpu_ms) is measured
# over the drain too, and the target is 1,000 polls/s (20 times Toss's
# default budget of 50/s) for one instance.
# Knobs: BENCH_TP_ORDERS (100000), BENCH_CEIL_REQUESTS (2 x orders),
# BENCH_CONCURRENCY (256).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
export top_srcdir top_builddir
. "$top_srcdir/tests/bench/lib-bench.sh"

CEILING=$top_builddir/tests/bench/ceiling
require_file "$CEILING"
N=${BENCH_TP_ORDERS:-100000}
CONC=${BENCH_CONCURRENCY:-256}
CEIL_N=${BENCH_CEIL_REQUESTS:-$((2 * N))}
PG=0
SCEN=throughput
if [ "$LEDGER_BACKEND" = pg ]; then
	PG=1
	SCEN=throughput-pg
fi

if [ $PG = 1 ]; then
	bench_header "scenario 1b: throughput with the ledger on PostgreSQL"
	echo "toss-sim --latency 20; concurrency $CONC; daemon $N orders x 2 polls"
	echo "ledger: $(ledger_desc)," \
	    "one transaction per loop turn for results and claims (poller)"
else
	bench_header "scenario 1: throughput vs the raw HTTP ceiling"
	echo "toss-sim --latency 20; concurrency $CONC; ceiling $CEIL_N requests;" \
	    "daemon $N orders x 2 polls"
	# synchronous is not a configuration key: ledger_open() sets it.
	sync=$(grep -o 'PRAGMA synchronous = [A-Z]*' "$top_srcdir/src/ledger-sqlite.c" |
	    head -n 1 | sed 's/PRAGMA //')
	echo "ledger: $(ledger_desc), $sync (src/ledger-sqlite.c sq_open, not" \
	    "configurable), one transaction per loop turn for results and claims (poller)"
fi

SIM_LOG=/dev/null	# 200,000 log lines would cost the simulator
start_sim "$BENCH_SCENARIO" --latency 20
sim_cpu0=$(cpu_ms "$SIM_PID")

if [ $PG = 1 ]; then
	ceil="0 0 0 0 0 0 0"
else
	echo "ceiling run: $CEIL_N requests..." >&2
	ceil=$("$CEILING" --url "https://127.0.0.1:$SIM_PORT" \
	    --cert "$T/certs/client.crt" --key "$T/certs/client.key" \
	    --ca "$T/certs/ca.crt" --concurrency "$CONC" --requests "$CEIL_N" \
	    --prefix cl- 2>"$T/ceiling.err") || true
	[ -n "$ceil" ] ||
	    fail "the ceiling client printed nothing: $(cat "$T/ceiling.err")"
fi
set -- $ceil
ceil_ok=$1 ceil_bad=$2 ceil_wall=$3 ceil_rps=$4 ceil_cpu=$5 ceil_ms1k=$6 ceil_rss=$7
sim_cpu1=$(cpu_ms "$SIM_PID")

echo "daemon run: $N orders..." >&2
CFG_MAX_INFLIGHT=$CONC CFG_RATE_LIMIT=0 CFG_BACKOFF_MIN=100ms \
    CFG_BACKOFF_MAX=1s CFG_TIMEOUT=10s CFG_CONNECT_TIMEOUT=3s \
    write_daemon_config
rm -f "$LEDGER"*
gen tp- "$N" >"$T/orders.jsonl"
if [ $PG = 1 ]; then
	# One import is one transaction with a savepoint and a trigger update
	# of the same state_counts row per line: on PostgreSQL its cost grows
	# with the square of the lines (10,000: 8 s, 20,000: 46 s here), so
	# the orders go in 2,000 at a time.
	split -l 2000 "$T/orders.jsonl" "$T/orders.part."
	t0=$(now_ms)
	for f in "$T"/orders.part.*; do
		ctl import "$f" >/dev/null ||
		    fail "import failed: $(tail -n 3 "$CTL_ERR")"
		rm -f "$f"
	done
	echo "(import of $N orders in parts of 2,000: $(($(now_ms) - t0)) ms)"
else
	ctl import "$T/orders.jsonl" >/dev/null ||
	    fail "import failed: $(tail -n 3 "$CTL_ERR")"
fi
rm -f "$T/orders.jsonl"
DAEMON_LOG=$T/daemon-tp.log
[ $PG = 0 ] || pg_cpu0=$(pg_cpu_ms)
start_daemon
t_start=$(now_ms)
PERF_PID=
if [ -n "${BENCH_PERF:-}" ]; then
	perf record -g -o "$BENCH_PERF" -p "$DAEMON_PID" >"$T/perf.out" 2>&1 &
	PERF_PID=$!
	at_exit '[ -z "$PERF_PID" ] || kill -INT "$PERF_PID" 2>/dev/null'
fi
deadline=$((t_start + 900000))
# drained: true once no order is pending or held. On PostgreSQL every
# reconcilectl (or psql) connection costs the server 30-50 ms of CPU (a
# backend, the ledger's checks): that would be counted as the ledger's, so
# there the daemon's log says it (a line per order granted).
drained()
{
	if [ $PG = 1 ]; then
		[ "$(grep -c -- ' -> granted (' "$DAEMON_LOG" || true)" -ge "$N" ]
	else
		[ "$(ctl stats --json | jq -r '.orders.pending + .orders.held')" = 0 ]
	fi
}
until drained; do
	[ "$(now_ms)" -lt "$deadline" ] || fail "orders still pending after 15 minutes"
	sleep 0.5
done
d_cpu=$(cpu_ms "$DAEMON_PID")
d_hwm=$(proc_kb "$DAEMON_PID" VmHWM)
[ $PG = 0 ] || pg_cpu1=$(pg_cpu_ms)
if [ -n "$PERF_PID" ]; then
	kill -INT "$PERF_PID" 2>/dev/null
	wait "$PERF_PID" 2>/dev/null || true
	PERF_PID=
fi
sim_cpu2=$(cpu_ms "$SIM_PID")
st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "reconciled exited $st on SIGTERM"
stop_sim || true
if [ $PG = 1 ]; then
	set -- $(pg_sql reconciled "SELECT sum(polls + errors), sum(errors),
	    (SELECT min(at) FROM transitions), max(updated_at),
	    sum((state = 'granted')::int) FROM orders")
else
	set -- $(sql "$LEDGER" "SELECT sum(polls + errors), sum(errors),
	    (SELECT min(at) FROM transitions), max(updated_at), sum(state = 'granted')
	    FROM orders;" | tr '|' ' ')
fi
polls=$1 errors=$2 first=$3 last=$4 granted=$5
rm -f "$LEDGER"*

awk -v c_ok="$ceil_ok" -v c_bad="$ceil_bad" -v c_wall="$ceil_wall" \
    -v c_rps="$ceil_rps" -v c_cpu="$ceil_cpu" -v c_1k="$ceil_ms1k" \
    -v c_rss="$ceil_rss" -v polls="$polls" -v errors="$errors" \
    -v first="$first" -v last="$last" -v cpu="$d_cpu" -v hwm="$d_hwm" \
    -v s_ceil="$((sim_cpu1 - sim_cpu0))" -v s_d="$((sim_cpu2 - sim_cpu1))" \
    -v pg=$PG -v pg_cpu="$((${pg_cpu1:-0} - ${pg_cpu0:-0}))" 'BEGIN {
	wall = (last - first) / 1000
	printf "%-9s %9s %7s %8s %9s %9s %8s %8s %9s\n", "client", "answers",
	    "errors", "wall s", "req/s", "CPU ms", "ms/1k", "peakRSS", "sim CPU"
	if (!pg)
		printf "%-9s %9d %7d %8.2f %9.0f %9.0f %8.1f %6.1fMi %8.1fs\n",
		    "ceiling", c_ok, c_bad, c_wall, c_rps, c_cpu, c_1k,
		    c_rss / 1024, s_ceil / 1000
	printf "%-9s %9d %7d %8.2f %9.0f %9d %8.1f %6.1fMi %8.1fs\n", "daemon",
	    polls, errors, wall, (wall > 0 ? polls / wall : 0), cpu,
	    (polls > 0 ? cpu * 1000 / polls : 0), hwm / 1024, s_d / 1000
	if (pg)
		printf "%-9s %9s %7s %8s %9s %9d %8.1f\n", "postgres", "",
		    "", "", "", pg_cpu, (polls > 0 ? pg_cpu * 1000 / polls : 0)
}'
[ "$granted" = "$N" ] || echo "note: only $granted of $N orders were granted"
[ "$ceil_bad" = 0 ] || echo "note: the ceiling client saw $ceil_bad failed requests (not counted)"
echo "(daemon polls from the ledger: polls + errors; span from the first" \
    "transition to the last update. Its CPU includes start-up and 256 handshakes;" \
    "so does the ceiling's.)"
[ $PG = 0 ] || echo "(postgres: utime + stime of every process of the cluster" \
    "from the daemon's start to the drain, reaped ones included.)"

tp=$(awk -v p="$polls" -v f="$first" -v l="$last" 'BEGIN { printf "%.0f", (l > f ? p * 1000 / (l - f) : 0) }')
frac=$(awk -v a="$tp" -v b="$ceil_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
ms1k=$(awk -v c="$d_cpu" -v p="$polls" 'BEGIN { printf "%.1f", (p > 0 ? c * 1000 / p : 0) }')
if [ $PG = 1 ]; then
	pg1k=$(awk -v c="$((pg_cpu1 - pg_cpu0))" -v p="$polls" 'BEGIN { printf "%.1f", (p > 0 ? c * 1000 / p : 0) }')
	verdict "daemon polls/s on PostgreSQL >= 1,000" "$tp" "$(cmp_ok "$tp" '>=' 1000)"
	verdict "daemon CPU per 1,000 polls" "$ms1k ms" -
	verdict "postgres CPU per 1,000 polls" "$pg1k ms" -
	verdict "daemon peak RSS (VmHWM)" "$(mib "$d_hwm") MiB" -
else
	verdict "daemon polls/s / ceiling req/s >= 0.8" "$tp/$ceil_rps = $frac" "$(cmp_ok "$frac" '>=' 0.8)"
	verdict "daemon CPU per 1,000 polls < 60 ms" "$ms1k ms" "$(cmp_ok "$ms1k" '<' 60)"
	verdict "daemon peak RSS (VmHWM) < 48 MiB" "$(mib "$d_hwm") MiB" "$(cmp_ok "$d_hwm" '<' 49152)"
fi
summary "$SCEN"
check_sanitizers
exit 0
