#!/bin/sh
# Measures the daemon against toss-sim and prints figures, not a test (not
# part of make check). Throughput: the simulator at 20 ms latency,
# max_inflight 256, no rate limit, N orders that answer ORDER_IN_PROGRESS
# once and PAYMENT_COMPLETED on the next poll: polls/s, daemon CPU per 1,000
# polls (/proc/PID/stat utime+stime), peak RSS (VmHWM), and VmHWM again with
# a tenth of the orders and with that tenth beside 500,000 granted orders
# that are not due (RSS must not follow the ledger's size). Rate limit:
# 3000/min with orders due for a minute; from the simulator's request log,
# the most requests in any 1 s window and the share of the budget used.
# Build with optimisation (CFLAGS=-O2 configure, no --enable-debug), then:
#   top_builddir=/path/to/build sh tests/bench/daemon-bench.sh
# Knobs (environment): BENCH_ORDERS (50000), BENCH_SMALL (5000),
# BENCH_FILL (500000), BENCH_RATE_SECS (70), BENCH_RATE_ORDERS (6000),
# BENCH_SKIP ("throughput" or "rate"), BENCH_RECONCILED (another binary).
# Exits 0 once it has printed its figures (a missed target says MISS).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
export top_srcdir top_builddir
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd sqlite3 awk getconf
RECONCILED=${BENCH_RECONCILED:-$RECONCILED}
N_BIG=${BENCH_ORDERS:-50000}
N_SMALL=${BENCH_SMALL:-5000}
N_FILL=${BENCH_FILL:-500000}
RATE_SECS=${BENCH_RATE_SECS:-70}
RATE_ORDERS=${BENCH_RATE_ORDERS:-6000}
RATE_PER_S=50			# rate_limit = 3000/min
RSS_FLAT_KB=4096		# "flat": at most this much above the small run
HZ=$(getconf CLK_TCK)
# shellcheck disable=SC2034 # read by lib-daemon.sh's start_daemon
DAEMON_VERBOSE=			# default log level: state changes only

cat >"$T/bench.json" <<'EOF'
{
  "_about": "daemon-bench.sh: tp-* answer ORDER_IN_PROGRESS on the first ask and PAYMENT_COMPLETED from 50 ms later on (the second poll comes after >= 20 ms latency + 50 ms backoff); rl-* stay in progress.",
  "templates": [
    {"prefix": "tp-", "timeline": [{"status": "ORDER_IN_PROGRESS"}, {"after": "50ms", "status": "PAYMENT_COMPLETED"}]},
    {"prefix": "rl-", "timeline": [{"status": "ORDER_IN_PROGRESS"}]}
  ]
}
EOF

# gen PREFIX N: N import lines with ids PREFIX%07d and numeric userKeys.
gen()
{
	awk -v p="$1" -v n="$2" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "{\"orderId\":\"%s%07d\",\"userKey\":%d}\n", p, i, 400000000 + i
	}'
}

# fresh_ledger: a new ledger and daemon config (CFG_* as lib-daemon.sh).
fresh_ledger()
{
	rm -f "$T"/ledger.db*
	write_daemon_config
}

sql()
{
	sqlite3 -batch -bail "$LEDGER" "$1"
}

# fill N: N granted orders whose next refund check is 30 days away.
fill()
{
	_now=$(now_ms)
	sql "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
	    INSERT INTO orders (order_id, user_key, sku, state, toss_status, reason,
	        determined_at, polls, added_at, updated_at, granted_at, next_poll_at)
	    SELECT printf('gr-%07d', i), CAST(500000000 + i AS TEXT),
	        'ait.0000010000.af647449.3bd55cfd00.0000000475', 'granted',
	        'PAYMENT_COMPLETED', '결제가 완료되었어요.', '2025-09-25T16:30:26+09:00', 1,
	        $_now - 86400000, $_now - 86400000, $_now - 86400000,
	        $_now + 30 * 86400000 FROM n;" ||
	    fail "cannot pre-fill the ledger"
}

# cpu_ms PID: utime + stime of PID so far, in ms.
cpu_ms()
{
	sed 's/^.*) //' "/proc/$1/stat" |
	    awk -v hz="$HZ" '{ printf "%d\n", ($12 + $13) * 1000 / hz }'
}

# hwm_kb PID: peak resident set size so far.
hwm_kb()
{
	sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status"
}

unsettled()
{
	ctl stats --json | jq -r '.orders.pending + .orders.held'
}

# throughput NAME ORDERS FILL: one run; appends a row to $T/rows.
throughput()
{
	_name=$1
	_prefix=tp-$1-
	echo "throughput run \"$1\": $2 orders due, $3 granted not due..." >&2
	CFG_MAX_INFLIGHT=256 CFG_RATE_LIMIT=0 CFG_BACKOFF_MIN=100ms \
	    CFG_BACKOFF_MAX=1s CFG_TIMEOUT=10s CFG_CONNECT_TIMEOUT=3s \
	    fresh_ledger
	gen "$_prefix" "$2" >"$T/orders.jsonl"
	ctl import "$T/orders.jsonl" >/dev/null ||
	    fail "import failed: $(tail -n 3 "$CTL_ERR")"
	[ "$3" -eq 0 ] || fill "$3"
	DAEMON_LOG=$T/daemon-$_name.log
	start_daemon
	_deadline=$(($(now_ms) + 900000))
	while [ "$(unsettled)" != 0 ]; do
		[ "$(now_ms)" -lt "$_deadline" ] ||
		    fail "run $_name: orders still pending after 15 minutes"
		sleep 0.5
	done
	_cpu=$(cpu_ms "$DAEMON_PID")
	_hwm=$(hwm_kb "$DAEMON_PID")
	_st=0
	stop_daemon || _st=$?
	[ "$_st" = 0 ] || fail "run $_name: reconciled exited $_st on SIGTERM"
	# Polls and their span from the ledger: the first status change of
	# each order is its first poll, updated_at its last.
	_q=$(sql "SELECT sum(polls + errors), sum(errors),
	        (SELECT min(at) FROM transitions WHERE order_id LIKE '$_prefix%'),
	        max(updated_at), sum(state = 'granted')
	    FROM orders WHERE order_id LIKE '$_prefix%';")
	echo "$_name $2 $3 $_cpu $_hwm $_q" | tr '|' ' ' >>"$T/rows"
}

# window_stats LOG: "max_in_1s requests first_t last_t steady_requests
# steady_ms" from the simulator's log (steady: its first and last second
# left out). Sends come in bursts of up to 50, so a short run can show
# more than 100% of the budget: run for a minute or more.
window_stats()
{
	jq -r 'select(.orderId != null) | .t' "$1" | sort -n | awk '
	{ t[NR] = $1 }
	END {
		j = 1; best = 0
		for (i = 1; i <= NR; i++) {
			while (t[i] - t[j] >= 1000)
				j++
			if (i - j + 1 > best)
				best = i - j + 1
		}
		a = t[1] + 1000; b = t[NR] - 1000; s = 0
		for (i = 1; i <= NR; i++)
			if (t[i] >= a && t[i] < b)
				s++
		# %d would clamp unix ms to 32 bits in some awks
		printf "%d %d %.0f %.0f %d %.0f\n", best, NR, t[1], t[NR], s, b - a
	}'
}

verdicts=
missed=0
# verdict WHAT MEASURED OK: one line of the verdict table.
verdict()
{
	if [ "$3" = 1 ]; then
		_v=PASS
	else
		_v=MISS
		missed=1
	fi
	verdicts="$verdicts$(printf '%-46s %-16s %s' "$1" "$2" "$_v")
"
}

echo "reconciled daemon bench: $(date -u +%Y-%m-%dT%H:%M:%SZ)," \
    "commit $(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "$(git -C "$top_srcdir" diff --quiet HEAD 2>/dev/null || echo '(with local changes)')"
echo "binary $RECONCILED; CFLAGS: $(sed -n "s/^CFLAGS='\(.*\)'$/\1/p" "$top_builddir/config.log" 2>/dev/null | head -n 1)"
echo "$(nproc) cores; $(curl-config --version 2>/dev/null || echo 'libcurl ?'); $(sqlite3 --version | cut -d' ' -f1 | sed 's/^/SQLite /')"
echo

if [ "${BENCH_SKIP:-}" != throughput ]; then
	SIM_LOG=/dev/null	# 100,000 log lines would cost the simulator, not us
	start_sim "$T/bench.json" --latency 20
	: >"$T/rows"
	throughput big "$N_BIG" 0
	throughput small "$N_SMALL" 0
	throughput filled "$N_SMALL" "$N_FILL"
	stop_sim || true

	echo "Throughput: toss-sim --latency 20, max_inflight 256, no rate limit, backoff_min 100ms;"
	echo "each order answers ORDER_IN_PROGRESS, then PAYMENT_COMPLETED (2 polls an order)."
	awk '
	BEGIN {
		printf "%-7s %7s %8s %8s %7s %8s %8s %9s %8s %8s\n", "run", "due", \
		    "not due", "polls", "errors", "wall s", "polls/s", "CPU ms", \
		    "ms/1k", "VmHWM"
	}
	{
		wall = ($9 - $8) / 1000
		printf "%-7s %7d %8d %8d %7d %8.2f %8.0f %9d %8.1f %6.1fMi\n", $1, $2, \
		    $3, $6, $7, wall, (wall > 0 ? $6 / wall : 0), $4, \
		    ($6 > 0 ? $4 * 1000 / $6 : 0), $5 / 1024
		if ($10 != $2)
			printf "  (run %s: only %d of %d orders granted)\n", $1, $10, $2
	}' "$T/rows"
	echo

	big_cpu=$(awk '$1 == "big" { printf "%.1f", ($6 > 0 ? $4 * 1000 / $6 : 0) }' "$T/rows")
	verdict "daemon CPU per 1,000 polls < 100 ms" "$big_cpu ms" \
	    "$(awk -v v="$big_cpu" 'BEGIN { print (v < 100) ? 1 : 0 }')"
	max_hwm=$(awk '$5 > m { m = $5 } END { print m }' "$T/rows")
	verdict "peak RSS (VmHWM, every run) < 64 MiB" \
	    "$(awk -v k="$max_hwm" 'BEGIN { printf "%.1f MiB", k / 1024 }')" \
	    "$(awk -v k="$max_hwm" 'BEGIN { print (k < 65536) ? 1 : 0 }')"
	# Same work, a ledger 100 times larger: the peak must not follow.
	small_hwm=$(awk '$1 == "small" { print $5 }' "$T/rows")
	grow=$(awk -v s="$small_hwm" '$1 == "filled" { print $5 - s }' "$T/rows")
	verdict "RSS flat vs ledger size (filled-small <= 4 MiB)" \
	    "$(awk -v k="$grow" 'BEGIN { printf "%+.1f MiB", k / 1024 }')" \
	    "$( [ "$grow" -le $RSS_FLAT_KB ] && echo 1 || echo 0)"
	bad=$(awk '$7 != 0 || $10 != $2' "$T/rows")
	[ -z "$bad" ] || echo "note: a throughput run had errors or unsettled orders (see the table)"
fi

if [ "${BENCH_SKIP:-}" != rate ]; then
	echo "rate-limit run: $RATE_ORDERS orders in progress, ${RATE_SECS}s..." >&2
	SIM_LOG=$T/sim-rate.log
	: >"$SIM_LOG"
	start_sim "$T/bench.json" --latency 20
	CFG_MAX_INFLIGHT=256 CFG_RATE_LIMIT=3000/min CFG_BACKOFF_MIN=100ms \
	    CFG_BACKOFF_MAX=1s CFG_TIMEOUT=10s CFG_CONNECT_TIMEOUT=3s \
	    fresh_ledger
	gen rl- "$RATE_ORDERS" >"$T/orders.jsonl"
	ctl import "$T/orders.jsonl" >/dev/null ||
	    fail "import failed: $(tail -n 3 "$CTL_ERR")"
	# shellcheck disable=SC2034 # read by lib-daemon.sh
	DAEMON_LOG=$T/daemon-rate.log
	start_daemon
	sleep "$RATE_SECS"
	due=$(ctl stats --json | jq -r .due)
	rate_cpu=$(cpu_ms "$DAEMON_PID")
	_st=0
	stop_daemon || _st=$?
	[ "$_st" = 0 ] || fail "rate run: reconciled exited $_st on SIGTERM"
	stop_sim || true
	set -- $(window_stats "$SIM_LOG")
	max1s=$1
	steady_pct=$(awk -v s="$5" -v ms="$6" -v r=$RATE_PER_S \
	    'BEGIN { printf "%.1f", (ms > 0 ? 100 * s / (r * ms / 1000) : 0) }')
	echo "Rate limit: rate_limit = 3000/min, max_inflight 256, toss-sim --latency 20;"
	echo "$RATE_ORDERS orders staying ORDER_IN_PROGRESS ($due still due at the end)."
	printf '%-40s %s\n' "requests the simulator logged" "$2" \
	    "span (first to last request)" "$(( ($4 - $3) / 1000 )) s" \
	    "most requests in any 1 s window" "$max1s" \
	    "steady part (first, last second left out)" "$5 requests in $(($6 / 1000)).$(($6 % 1000 / 100)) s" \
	    "budget used in the steady part" "$steady_pct% of $RATE_PER_S/s" \
	    "daemon CPU" "$rate_cpu ms"
	echo
	verdict "<= $RATE_PER_S requests in any 1 s window" "$max1s" \
	    "$( [ "$max1s" -le $RATE_PER_S ] && echo 1 || echo 0)"
	verdict ">= 95% of the budget used while orders are due" "$steady_pct%" \
	    "$(awk -v v="$steady_pct" 'BEGIN { print (v >= 95) ? 1 : 0 }')"
	[ "$due" -gt 0 ] || echo "note: orders ran out before the end: budget use is understated"
fi

check_sanitizers	# an ASan build may be benched too
printf '%-46s %-16s %s\n' "target" "measured" "verdict"
printf '%s' "$verdicts"
[ $missed = 0 ] && echo "every target met" || echo "some target MISSED"
# A bench, not a test: a missed target is a figure, not a failure.
exit 0
