#!/bin/sh
# make bench, scenario 4: grant latency. Orders answer ORDER_IN_PROGRESS
# until toss-sim switches them to PAYMENT_COMPLETED 3 s, 10 s or 30 s after
# their first ask (templates gl-3s-, gl-10s-, gl-30s- of bench.json); the
# daemon polls with the default schedule (backoff_min 2s, backoff_max 5m,
# jitter), no rate limit, a JSONL sink and a webhook sink
# (tests/integration/webhook-recv.py). Switch = the first ask in toss-sim's
# log + the delay; durable = when the event's line appeared in the JSONL
# file (watch-lines.py, 2 ms polling; the sink appends after the commit and
# fsyncs); webhook = when webhook-recv.py read the delivery. The schedule's
# own prediction (Monte Carlo of policy_backoff) is printed next to it.
# LEDGER_BACKEND=pg (run.sh's grant-pg): the same with the ledger on a
# throwaway PostgreSQL server (lib-bench.sh).
# Knobs: BENCH_GRANT_ORDERS (orders per delay, 100), BENCH_GRANT_TIMEOUT (150 s).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$(pwd)}"
export top_srcdir top_builddir
. "$top_srcdir/tests/bench/lib-bench.sh"

N=${BENCH_GRANT_ORDERS:-100}
TIMEOUT=${BENCH_GRANT_TIMEOUT:-150}
DELAYS="3 10 30"
RECV=$top_srcdir/tests/integration/webhook-recv.py
SECRET=whsec_$(printf '%s' "reconciled bench webhook key" | "${OPENSSL:-openssl}" base64 -A)
RECV_PID=
WATCH_PID=
at_exit '[ -z "$RECV_PID" ] || kill "$RECV_PID" 2>/dev/null'
at_exit '[ -z "$WATCH_PID" ] || kill "$WATCH_PID" 2>/dev/null'

SCEN=grant
if [ "$LEDGER_BACKEND" = pg ]; then
	SCEN=grant-pg
	bench_header "scenario 4b: grant latency with the ledger on PostgreSQL"
else
	bench_header "scenario 4: grant latency"
fi
echo "$N orders each paid 3 s, 10 s and 30 s after their first ask;" \
    "backoff_min 2s, backoff_max 5m (defaults), rate_limit 0, toss-sim --latency 20"
echo "ledger: $(ledger_desc)"

python3 "$RECV" --secret "$SECRET" --log "$T/hooks.jsonl" \
    --port-file "$T/hook.port" 2>>"$T/recv.err" &
RECV_PID=$!
wait_until 10 "webhook-recv.py writes its port file" test -s "$T/hook.port"
: >"$T/lines"
python3 "$BENCH_DIR/watch-lines.py" "$T/events.jsonl" "$T/lines" &
WATCH_PID=$!

SIM_LOG=$T/sim-grant.log
: >"$SIM_LOG"
start_sim "$BENCH_SCENARIO" --latency 20
CFG_BACKOFF_MIN=2s CFG_BACKOFF_MAX=5m CFG_RATE_LIMIT=0 CFG_TIMEOUT=10s \
    CFG_CONNECT_TIMEOUT=3s write_daemon_config "[events]" \
    "jsonl = $T/events.jsonl" \
    "webhook_url = http://127.0.0.1:$(cat "$T/hook.port")/hook" \
    "webhook_secret = $SECRET"
for d in $DELAYS; do
	gen "gl-${d}s-" "$N"
done >"$T/orders.jsonl"
total=$(wc -l <"$T/orders.jsonl")
ctl import "$T/orders.jsonl" >/dev/null || fail "import failed: $(tail -n 3 "$CTL_ERR")"
DAEMON_LOG=$T/daemon-grant.log
start_daemon
echo "waiting for $total grants (up to ${TIMEOUT}s)..." >&2
deadline=$(($(now_ms) + TIMEOUT * 1000))
while [ "$(grep -c '"type":"grant"' "$T/lines" || true)" -lt "$total" ] ||
    [ "$(grep -c '"answer": "204"' "$T/hooks.jsonl" || true)" -lt "$total" ]; do
	[ "$(now_ms)" -lt "$deadline" ] || { echo "note: timed out; figures cover what arrived"; break; }
	sleep 0.5
done
st=0
stop_daemon || st=$?
[ "$st" = 0 ] || fail "reconciled exited $st on SIGTERM"
stop_sim || true
kill "$WATCH_PID" "$RECV_PID" 2>/dev/null || true
wait "$WATCH_PID" "$RECV_PID" 2>/dev/null || true
WATCH_PID= RECV_PID=

# Per order: first ask (sim), delay, grant poll (sim), event "at" (daemon),
# JSONL line seen, webhook received; all unix ms.
python3 - "$SIM_LOG" "$T/lines" "$T/hooks.jsonl" >"$T/per-order" <<'PY'
import json, sys, datetime
sim, lines, hooks = sys.argv[1:4]
first, grant_poll = {}, {}
for l in open(sim):
    r = json.loads(l)
    o = r.get("orderId")
    if not o or not o.startswith("gl-"):
        continue
    first.setdefault(o, r["t"])
    if r.get("outcome") == "status:PAYMENT_COMPLETED":
        grant_poll.setdefault(o, r["t"])
def ms(iso):
    d = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
seen, at = {}, {}
for l in open(lines):
    t, _, body = l.partition(" ")
    e = json.loads(body)
    if e.get("type") == "grant":
        seen.setdefault(e["orderId"], int(t))
        at[e["orderId"]] = ms(e["at"])
hook = {}
for l in open(hooks):
    r = json.loads(l)
    if r.get("answer") != "204":
        continue
    e = json.loads(r["body"])
    if e.get("type") == "grant":
        hook.setdefault(e["orderId"], int(r["at"] * 1000))
for o in sorted(first):
    d = int(o.split("-")[1][:-1]) * 1000
    sw = first[o] + d
    print(o, d // 1000, first[o], sw, grant_poll.get(o, -1), at.get(o, -1),
          seen.get(o, -1), hook.get(o, -1))
PY

# The schedule's prediction: poll k+1 comes policy_backoff(k) after poll k
# (min(5m, 2s * 2^k) * U[0.5, 1]) plus one answer (20 ms latency + ~5 ms).
predict()
{
	python3 - "$1" <<'PY'
import random, sys
d = int(sys.argv[1]) * 1000
random.seed(7)
lat = []
for _ in range(20000):
    t, k = 0.0, 0
    while t < d:
        base = min(300000, 2000 * 2 ** k)
        t += base * (0.5 + 0.5 * random.random()) + 25
        k += 1
    lat.append(t - d)
lat.sort()
print("%.0f %.0f" % (lat[len(lat) // 2], lat[int(len(lat) * 0.99)]))
PY
}

printf '%-7s %6s | %-23s | %-23s | %-23s | %-15s\n' "paid" "orders" \
    "switch->grant poll" "switch->JSONL line" "switch->webhook" "schedule says"
printf '%-7s %6s | %11s %11s | %11s %11s | %11s %11s | %7s %7s\n' "after" "" \
    "p50 ms" "p99 ms" "p50 ms" "p99 ms" "p50 ms" "p99 ms" "p50" "p99"
for d in $DELAYS all; do
	if [ "$d" = all ]; then f='1'; else f="\$2 == $d"; fi
	awk "$f" "$T/per-order" >"$T/sel"
	n=$(awk '$5 >= 0' "$T/sel" | wc -l)
	gp50=$(awk '$5 >= 0 { print $5 - $4 }' "$T/sel" | pctl 50)
	gp99=$(awk '$5 >= 0 { print $5 - $4 }' "$T/sel" | pctl 99)
	jp50=$(awk '$7 >= 0 { print $7 - $4 }' "$T/sel" | pctl 50)
	jp99=$(awk '$7 >= 0 { print $7 - $4 }' "$T/sel" | pctl 99)
	wp50=$(awk '$8 >= 0 { print $8 - $4 }' "$T/sel" | pctl 50)
	wp99=$(awk '$8 >= 0 { print $8 - $4 }' "$T/sel" | pctl 99)
	if [ "$d" = all ]; then pr="- -"; else pr=$(predict "$d"); fi
	set -- $pr
	printf '%-7s %6s | %11s %11s | %11s %11s | %11s %11s | %7s %7s\n' \
	    "$( [ "$d" = all ] && echo all || echo "${d}s")" "$n" \
	    "$gp50" "$gp99" "$jp50" "$jp99" "$wp50" "$wp99" "$1" "$2"
	[ "$d" != all ] || { all_j50=$jp50 all_j99=$jp99 all_w50=$wp50 all_w99=$wp99; }
done
# What the daemon adds after the grant poll reached the simulator.
post_j=$(awk '$7 >= 0 && $5 >= 0 { print $7 - $5 }' "$T/per-order" | pctl 50)
post_j99=$(awk '$7 >= 0 && $5 >= 0 { print $7 - $5 }' "$T/per-order" | pctl 99)
post_w=$(awk '$8 >= 0 && $7 >= 0 { print $8 - $7 }' "$T/per-order" | pctl 50)
post_w99=$(awk '$8 >= 0 && $7 >= 0 { print $8 - $7 }' "$T/per-order" | pctl 99)
echo "grant poll -> JSONL line: p50 $post_j ms, p99 $post_j99 ms (answer latency 20 ms," \
    "parse, commit with fsync, sink append + fsync);"
echo "JSONL line -> webhook: p50 $post_w ms, p99 $post_w99 ms"
granted=$(awk '$7 >= 0' "$T/per-order" | wc -l)
hooked=$(awk '$8 >= 0' "$T/per-order" | wc -l)
echo "(grants in the JSONL file: $granted of $total; delivered by webhook: $hooked of $total)"
echo
verdict "switch -> durable grant (JSONL) p50 / p99" "$all_j50 / $all_j99 ms" -
verdict "switch -> webhook delivery p50 / p99" "$all_w50 / $all_w99 ms" -
verdict "every grant durable and delivered" "$granted, $hooked of $total" \
    "$( [ "$granted" = "$total" ] && [ "$hooked" = "$total" ] && echo 1 || echo 0)"
summary "$SCEN"
check_sanitizers
exit 0
