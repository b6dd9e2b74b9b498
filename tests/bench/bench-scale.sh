#!/bin/sh
# make bench, scenario 2: ledger scale. For each size: a ledger built with
# the sqlite3 CLI from schema/001-ledger.sql (mk_ledger: granted orders under
# refund watch, next check in the future, with their grant events and
# transitions, plus BENCH_SCALE_DUE pending orders due now); the EXPLAIN
# QUERY PLAN and time of every statement of src/ledger-sqlite.c that finds due
# orders or counts (read from ledger-sqlite.c), a timed claim; then the daemon:
# start to READY=1 (NOTIFY_SOCKET, tests/integration/sdnotify-recv.py), and
# VmRSS/VmHWM once the due orders are drained (toss-sim pays them at once).
# The smallest size is the reference: RSS must not follow the ledger.
# Knobs: BENCH_SCALE_SIZES ("10000 1000000 5000000"), BENCH_SCALE_DUE (1000),
# BENCH_HISTORY (1; 0 leaves events and transitions out of the ledgers).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
export top_srcdir top_builddir
. "$top_srcdir/tests/bench/lib-bench.sh"

SIZES=${BENCH_SCALE_SIZES:-10000 1000000 5000000}
DUE=${BENCH_SCALE_DUE:-1000}
STMTS="S_CLAIM S_NEXT_DUE S_DUE_COUNT S_STATE_COUNTS S_EVENT_COUNT S_EVENT_TYPE_COUNTS S_LAST_EVENT S_OLDEST_PENDING"
RSS_FLAT_KB=4096
NOTIFY_RECV=$top_srcdir/tests/integration/sdnotify-recv.py
RECV_PID=
at_exit '[ -z "$RECV_PID" ] || kill "$RECV_PID" 2>/dev/null'

bench_header "scenario 2: ledger scale"
echo "sizes: $SIZES granted orders (next refund check within 6 days) + $DUE pending due now;" \
    "SQLite $(sqlite3 --version | cut -d' ' -f1) (CLI)," \
    "$(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)') (python, query timing)"
echo "disk before: $(df -h /tmp | awk 'NR == 2 { print $4 " free of " $2 " on " $6 }')"

for s in $STMTS; do
	printf '%s\t%s\n' "$s" "$(awk -v name="$s" -f "$BENCH_DIR/ledger-sql.awk" \
	    "$top_srcdir/src/ledger-sqlite.c")"
done >"$T/stmts"
awk -F'\t' '$2 == "" { print "cannot find " $1 " in src/ledger-sqlite.c"; exit 1 }' "$T/stmts" >&2 ||
    fail "src/ledger-sqlite.c changed shape; update ledger-sql.awk"

# The daemon is started through stamp-exec.py (CLOCK_MONOTONIC just before
# exec, same pid) so READY=1 minus the stamp is its start-up time.
cat >"$T/stamped" <<EOS
#!/bin/sh
exec python3 "$BENCH_DIR/stamp-exec.py" "$T/t0" "$RECONCILED" "\$@"
EOS
chmod +x "$T/stamped"

SIM_LOG=/dev/null
start_sim "$BENCH_SCENARIO" --latency 20
CFG_MAX_INFLIGHT=64 CFG_RATE_LIMIT=0 write_daemon_config
LEASE_MS=$((2000 + 1000))	# timeout + connect_timeout of that config
: >"$T/rows"
: >"$T/plans"
for n in $SIZES; do
	echo "ledger of $n orders: building..." >&2
	t0=$(now_ms)
	mk_ledger "$LEDGER" "$n" future "$DUE"
	build_s=$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
	size_kb=$(du -k "$LEDGER" | cut -f1)
	free_after=$(df -h /tmp | awk 'NR == 2 { print $4 }')

	echo "ledger of $n orders: queries..." >&2
	python3 "$BENCH_DIR/ledger-queries.py" "$LEDGER" "$(now_ms)" "$LEASE_MS" 256 \
	    <"$T/stmts" >"$T/q" || fail "ledger-queries.py failed"
	sed -n "s/^PLAN /$n /p" "$T/q" >>"$T/plans"
	scans=$(awk '$1 == "TIME" && $6 != "-" { print $2 "(" $6 ")" }' "$T/q" | tr '\n' ' ')
	claim=$(awk '$1 == "TIME" && $2 == "S_CLAIM" { print $3 " " $4 " " $5 }' "$T/q")
	worst=$(awk '$1 == "TIME" && $2 != "S_CLAIM" && $4 > m { m = $4; w = $2 } END { print w " " m }' "$T/q")

	echo "ledger of $n orders: daemon..." >&2
	rm -f "$T/notify.sock" "$T/notify.log" "$T/t0"
	python3 "$NOTIFY_RECV" "$T/notify.sock" "$T/notify.log" &
	RECV_PID=$!
	wait_until 10 "sdnotify-recv.py binds its socket" test -S "$T/notify.sock"
	DAEMON_LOG=$T/daemon-scale-$n.log
	NOTIFY_SOCKET=$T/notify.sock RECONCILED=$T/stamped start_daemon
	t_poll=$(now_ms)
	wait_until 20 "READY=1 arrives" grep -q '"READY": "1"' "$T/notify.log"
	ready_ms=$(awk -v s="$(cat "$T/t0")" 'index($0, "\"READY\": \"1\"") && !done {
		match($0, /"t": [0-9]+/); t = substr($0, RSTART + 5, RLENGTH - 5)
		printf "%.1f", (t - s) / 1000; done = 1 }' "$T/notify.log")
	deadline=$((t_poll + 300000))
	while [ "$(ctl stats --json | jq -r .orders.pending)" != 0 ]; do
		[ "$(now_ms)" -lt "$deadline" ] || fail "$n: due orders not drained in 5 minutes"
		sleep 0.1
	done
	drain_s=$(awk -v a="$t_poll" -v b="$(now_ms)" 'BEGIN { printf "%.2f", (b - a) / 1000 }')
	sleep 1		# let the group commit and any sink settle
	rss=$(proc_kb "$DAEMON_PID" VmRSS)
	hwm=$(proc_kb "$DAEMON_PID" VmHWM)
	cpu=$(cpu_ms "$DAEMON_PID")
	st=0
	stop_daemon || st=$?
	[ "$st" = 0 ] || fail "$n: reconciled exited $st on SIGTERM"
	kill "$RECV_PID" 2>/dev/null || true
	wait "$RECV_PID" 2>/dev/null || true
	RECV_PID=
	granted=$(sql "$LEDGER" "SELECT count(*) FROM orders WHERE order_id LIKE 'due-%' AND state = 'granted'")
	rm -f "$LEDGER" "$LEDGER-wal" "$LEDGER-shm"
	echo "$n $build_s $size_kb $free_after $ready_ms $drain_s $granted $rss $hwm $cpu $claim $worst ${scans:--}" >>"$T/rows"
done
stop_sim || true

echo "EXPLAIN QUERY PLAN of the daemon's statements (largest ledger; 'SCAN' of"
echo "orders/events/transitions would be a full scan; state_counts and event_counts"
echo "are 8-row tables kept by triggers):"
big=$(echo "$SIZES" | tr ' ' '\n' | sort -n | tail -n 1)
awk -v n="$big" '$1 == n { $1 = ""; sub(/^ /, ""); print "  " $0 }' "$T/plans"
echo

awk -v due="$DUE" 'BEGIN {
	printf "%9s %7s %8s %8s %8s %7s %6s %8s %8s %7s %9s %9s %s\n", "orders",
	    "build s", "file", "df free", "READY ms", "drain s", "due ok",
	    "VmRSS", "VmHWM", "CPU ms", "claim us", "(first)", "slowest other (us)"
} {
	printf "%9d %7.1f %7.0fM %8s %8.1f %7.2f %6s %6.1fMi %6.1fMi %7d %9d %9d %s %s\n",
	    $1, $2, $3 / 1024, $4, $5, $6, $7 "/" due, $8 / 1024, $9 / 1024, $10,
	    $12, $11, $14, $15
	if ($16 != "-")
		printf "  full scans at %d orders: %s\n", $1, $16
}' "$T/rows"
echo "(claim: BEGIN IMMEDIATE + the claim statement for prio 0 then 1, up to 256"
echo "rows, median of 21 runs; READY from exec to READY=1 with a warm page cache;"
echo "drain: from the 'polling' log line until no order is pending)"

ref_rss=$(head -n 1 "$T/rows" | cut -d' ' -f8)
ref_n=$(head -n 1 "$T/rows" | cut -d' ' -f1)
max_row=$(sort -n -k1,1 "$T/rows" | tail -n 1)
set -- $max_row
grow=$(( $8 - ref_rss ))
verdict "RSS after drain, $1 vs $ref_n orders (<= +4 MiB)" \
    "$(mib "$8") vs $(mib "$ref_rss") MiB" "$( [ "$grow" -le $RSS_FLAT_KB ] && echo 1 || echo 0)"
verdict "start to READY=1 at $1 orders (< 1 s)" "$5 ms" "$(cmp_ok "$5" '<' 1000)"
verdict "claim of 256 due orders at $1 orders (< 10 ms)" "$(( ${12} )) us" "$(cmp_ok "${12}" '<' 10000)"
nscan=$(awk '$16 != "-"' "$T/rows" | wc -l)
verdict "no full scan in the due/stats statements" \
    "$(echo "$STMTS" | wc -w) statements, $nscan sizes with scans" "$( [ "$nscan" = 0 ] && echo 1 || echo 0)"
summary scale
echo "disk after: $(df -h /tmp | awk 'NR == 2 { print $4 " free" }')"
check_sanitizers
exit 0
