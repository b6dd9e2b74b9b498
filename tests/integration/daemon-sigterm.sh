#!/bin/sh
# SIGTERM with requests in flight: with every answer 1.5 s late and ten of
# twenty orders on the wire, the daemon must stop claiming, let the ten
# finish and commit them, and exit 0 within timeout + 5 s. Nothing is lost:
# after a restart the other ten settle, every order was asked exactly once
# and each has exactly one grant event.
. "$top_srcdir/tests/integration/lib-daemon.sh"

start_sim "$SCENARIOS/paid.json" --latency 1500
CFG_TIMEOUT=4s
CFG_MAX_INFLIGHT=10
write_daemon_config
i=1
while [ $i -le 20 ]; do
	printf '{"orderId":"paid-t%02d","userKey":"%d"}\n' $i $((8000 + i))
	i=$((i + 1))
done | import_orders

step "SIGTERM while ten requests are in flight"
start_daemon
wait_until 5 "ten requests reached the simulator" \
    eval '[ "$(sim_count)" -ge 10 ]'
kill -TERM "$DAEMON_PID"
t0=$(now_ms)
st=0
wait_daemon 15 || st=$?
elapsed=$(($(now_ms) - t0))
assert_eq 0 "$st" "exit status after SIGTERM"
assert_le 9000 "$elapsed" "ms to exit (timeout 4s + 5s)"
assert_eq 10 "$(sim_count)" "requests sent: max_inflight, nothing claimed after SIGTERM"
assert_log 'info: received SIGTERM: stopping; waiting up to 9s for 10 requests in flight$'
assert_log 'info: no request in flight: shutting down$'
assert_no_log 'abandoning'

step "the ten answers in flight were committed before the exit"
assert_eq 10 "$(count_state granted)" "granted at exit"
assert_eq 10 "$(count_state pending)" "pending at exit"
assert_eq 10 "$(event_count grant)" "grant events at exit"
for id in $(jq -r '.orderId' "$SIM_LOG"); do
	assert_eq granted "$(order_state "$id")" "$id (answered before the exit)"
done

step "restart: the rest settles, nothing twice"
start_daemon
wait_until 10 "all twenty orders are granted" \
    eval '[ "$(count_state granted)" = 20 ]'
assert_events_unique
assert_eq 20 "$(event_count grant)" "one grant per order"
assert_eq 20 "$(event_count)" "no other events"
assert_eq "" "$(jq -r .orderId "$SIM_LOG" | sort | uniq -d)" "no order asked twice"
assert_eq 20 "$(sim_count)" "requests in all"
assert_eq "" "$(orders_json | jq -c 'select(.errors != 0 or .polls != 1)')" \
    "every order: one answer, no error"

st=0
stop_daemon || st=$?
assert_eq 0 "$st" "second SIGTERM (nothing in flight): exit 0"
pass
