#!/bin/sh
# make bench, scenario 3: the rate budget. rate_limit = 3000/min (50/s),
# max_inflight 256, a ledger (mk_ledger) with BENCH_RATE_RECHECKS granted
# orders whose refund re-check is due now, and new orders arriving at
# BENCH_RATE_NEW_PER_S through POST /v1/orders (post-orders.py, with a
# control token) for BENCH_RATE_SECS. From toss-sim's request log (t = when
# it read the request): the most requests in any 1 s window, the share of
# the budget used in the steady part (first and last second left out), and
# for each new order its first poll minus the moment it was posted.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
export top_srcdir top_builddir
. "$top_srcdir/tests/bench/lib-bench.sh"

N=${BENCH_RATE_RECHECKS:-100000}
NEW_RATE=${BENCH_RATE_NEW_PER_S:-10}
SECS=${BENCH_RATE_SECS:-60}
RATE_PER_S=50
TOKEN=bench-token-$$

bench_header "scenario 3: rate budget"
echo "rate_limit = 3000/min, max_inflight 256, toss-sim --latency 20;" \
    "$N refund re-checks due now; new orders at $NEW_RATE/s via POST /v1/orders for ${SECS}s"

PORT=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
SIM_LOG=$T/sim-rate.log
: >"$SIM_LOG"
start_sim "$BENCH_SCENARIO" --latency 20
CFG_MAX_INFLIGHT=256 CFG_RATE_LIMIT=3000/min CFG_TIMEOUT=10s \
    CFG_CONNECT_TIMEOUT=3s write_daemon_config
sed -e "s|^listen =.*|listen = 127.0.0.1:$PORT|" "$CONF" >"$CONF.new"
printf 'token = %s\n' "$TOKEN" >>"$CONF.new"
mv "$CONF.new" "$CONF"
echo "building the ledger..." >&2
mk_ledger "$LEDGER" "$N" due 0
DAEMON_LOG=$T/daemon-rate.log
start_daemon
wait_until 10 "the control API answers" \
    eval '[ "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer '"$TOKEN"'" http://127.0.0.1:'"$PORT"'/healthz)" = 200 ]'
echo "posting new orders for ${SECS}s..." >&2
python3 "$BENCH_DIR/post-orders.py" "127.0.0.1:$PORT" "$TOKEN" new- \
    "$NEW_RATE" "$SECS" "$T/posted" || fail "post-orders.py failed"
sleep 2		# the last orders' first polls
due=$(ctl stats --json | jq -r .due)
cpu=$(cpu_ms "$DAEMON_PID")
st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "reconciled exited $st on SIGTERM"
stop_sim || true

set -- $(window_stats "$SIM_LOG")
max1s=$1 total=$2 first=$3 last=$4 steady=$5 steady_ms=$6
pct=$(awk -v s="$steady" -v ms="$steady_ms" -v r=$RATE_PER_S \
    'BEGIN { printf "%.1f", (ms > 0 ? 100 * s / (r * ms / 1000) : 0) }')
# first poll of each new order minus its posting
jq -r 'select(.orderId != null and (.orderId | startswith("new-"))) | "\(.orderId) \(.t)"' \
    "$SIM_LOG" | sort -k1,1 -k2,2n | awk '!seen[$1]++' >"$T/firstpoll"
sort -k1,1 "$T/posted" | join - "$T/firstpoll" |
    awk '{ print $5 - $2 }' >"$T/lat"
posted=$(wc -l <"$T/posted")
created=$(awk '$3 == 201' "$T/posted" | wc -l)
polled=$(wc -l <"$T/lat")
p50=$(pctl 50 <"$T/lat")
p99=$(pctl 99 <"$T/lat")
pmax=$(pctl 100 <"$T/lat")
post_p99=$(awk '{ print $4 }' "$T/posted" | pctl 99)
rechecks=$(jq -r 'select(.orderId != null and (.orderId | startswith("rc-"))) | .orderId' "$SIM_LOG" | wc -l)

printf '%-46s %s\n' \
    "requests the simulator logged" "$total ($rechecks re-checks, $((total - rechecks)) new-order polls)" \
    "span (first to last request)" "$(( (last - first) / 1000 )) s" \
    "most requests in any 1 s window" "$max1s" \
    "steady part (first, last second left out)" "$steady requests in $((steady_ms / 1000)).$((steady_ms % 1000 / 100)) s" \
    "budget used in the steady part" "$pct% of $RATE_PER_S/s" \
    "new orders posted / 201 / polled" "$posted / $created / $polled" \
    "POST answer time p99" "$post_p99 ms" \
    "first poll - arrival p50 / p99 / max" "$p50 / $p99 / $pmax ms" \
    "re-checks still due at the end" "$due" \
    "daemon CPU" "$cpu ms"
echo
verdict "<= $RATE_PER_S requests in any 1 s window" "$max1s" "$(cmp_ok "$max1s" '<=' $RATE_PER_S)"
verdict ">= 95% of the budget used" "$pct%" "$(cmp_ok "$pct" '>=' 95)"
verdict "new order first poll - arrival p50 < 1 s" "$p50 ms" "$(cmp_ok "$p50" '<' 1000)"
verdict "new order first poll - arrival p99 < 1 s" "$p99 ms" "$(cmp_ok "$p99" '<' 1000)"
[ "$polled" = "$posted" ] || verdict "every new order polled" "$polled of $posted" 0
summary rate
rm -f "$LEDGER"*
check_sanitizers
exit 0
