#!/bin/sh
# Crash consistency: a few hundred orders across every status path (grants,
# refunds before and after grants, failures, mismatches, NOT_FOUND for good
# and NOT_FOUND that later appears, unknown statuses held and held then
# paid, anomalies, expiry) while the daemon, with a JSONL file and a webhook
# as sinks, is killed with SIGKILL at random moments and restarted. At the
# end: every order in the state its path implies, exactly one event row per
# (order, type) the path implies and no other, a sound ledger, and the JSONL
# file and the webhook receiver hold every event (duplicates only identical).
#
# CRASH_KILLS (default 5) kills, CRASH_ORDERS (default 300) orders,
# CRASH_SEED picks the moments (printed, to replay a run).
. "$top_srcdir/tests/integration/crash-lib.sh"

KILLS=${CRASH_KILLS:-5}
NORDERS=${CRASH_ORDERS:-300}
SEED=${CRASH_SEED:-$(($(date +%s) % 100000))}
echo "CRASH_KILLS=$KILLS CRASH_ORDERS=$NORDERS CRASH_SEED=$SEED"

NKINDS=$(printf '%s\n' "$CRASH_KINDS" | wc -l)

start_sim "$SCENARIOS/crash.json" --latency 30
start_webhook
# NOT_FOUND (c-late-) and ORDER_IN_PROGRESS (c-prog-) answers last 1-2 s
# from an order's first request; the grace and give-up times are far
# beyond that even when kills delay a first request by a lease or two.
# Each kill can strand an order's claim for a lease (timeouts + 5 s: 9 s
# here) and a sanitizer build on a busy machine starts slowly: five kills
# have delayed a first request by more than 40 s, so give-up and grace are
# 60 s. The timeouts
# leave room for a slow (sanitizer) build: with 1 s, answers timed out and
# an order's first clean answer came after its 30 s switch.
CFG_TIMEOUT=2s
CFG_CONNECT_TIMEOUT=2s
CFG_NOT_FOUND_GRACE=60s
CFG_GIVE_UP_AFTER=60s
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=1s
write_crash_config

step "import $NORDERS orders, $NKINDS kinds"
per=$(((NORDERS + NKINDS - 1) / NKINDS))
make_orders 100000 $(kind_prefixes "$CRASH_KINDS" | sed "s/\$/:$per/")
import_orders <"$T/orders.jsonl"
write_expected
total=$(wc -l <"$T/ids" | tr -d ' ')
assert_eq "$total" "$(count_state pending)" "orders pending after the import"

step "$KILLS SIGKILLs at random moments, each followed by a restart"
awk -v seed="$SEED" -v n="$KILLS" 'BEGIN { srand(seed);
    for (i = 0; i < n; i++) printf "%.2f\n", 0.05 + rand() * 1.45 }' >"$T/delays"
start_daemon
k=0
while read -r d; do
	sleep "$d"
	k=$((k + 1))
	daemon_alive || fail "the daemon died by itself before kill $k"
	kill -KILL "$DAEMON_PID"
	_ld_reap "$DAEMON_PID" 10 || fail "the daemon survived SIGKILL"
	DAEMON_PID=
	echo "kill $k after ${d}s: $(event_count) events, $(count_state pending) pending"
	start_daemon
done <"$T/delays"
assert_eq "$KILLS" "$k" "kills"
assert_eq "$((KILLS + 1))" "$(log_count 'info: polling ')" "daemon starts"

step "run until everything settles and both sinks have caught up"
wait_settled 120
wait_until 30 "the sinks catch up" sinks_caught_up
stop_daemon_ok

step "exact states, exactly the implied events, every event in both sinks"
assert_run_sound "$T/events.jsonl"
assert_eq "" "$(events_json | jq -c 'select(.type == "refund" and
    (.granted != (.orderId | startswith("c-grref-"))))' | head -n 3)" \
    "refund events say granted: true exactly after a grant"
assert_eq "" "$(events_json | jq -c 'select(.type == "grant" and
    .tossStatus != "PAYMENT_COMPLETED" and .tossStatus != "PURCHASED")' | head -n 3)" \
    "every grant carries a paid status"
assert_eq "" "$(events_json | jq -c 'select(.type == "held" and
    .tossStatus != "PAYMENT_ON_HOLD" and .tossStatus != "WAITING_FOR_REVIEW")' | head -n 3)" \
    "held events carry the unknown status"
pass
