#!/bin/sh
# reconciled --once (the batch mode behind reconciled-once.timer): asks
# about every order due now, waits for the answers, writes them and exits
# 0. Paid orders are granted, a failed one failed; an order still in
# progress stays pending with its next poll in the future, and a second run
# right after finds nothing due.
. "$top_srcdir/tests/integration/lib-daemon.sh"

start_sim "$SCENARIOS/once.json"
# A long backoff puts the next poll of a waiting order well past the run.
CFG_BACKOFF_MIN=30s
CFG_BACKOFF_MAX=1m
write_daemon_config
import_orders <<'EOF'
{"orderId":"once-paid","userKey":"4001"}
{"orderId":"once-purchased","userKey":"4002"}
{"orderId":"once-progress","userKey":"4003"}
{"orderId":"once-failed","userKey":"4004"}
EOF

step "one --once run"
start_daemon --once
st=0
wait_daemon 15 || st=$?
assert_eq 0 "$st" "--once exit status"
assert_log 'info: --once: 4 attempts, 4 answers, 0 errors, 0 rescheduled by a pause$'
assert_eq 4 "$(sim_count)" "requests: one per due order"
for id in once-paid once-purchased once-progress once-failed; do
	assert_eq 1 "$(sim_requests $id)" "$id asked once"
done
assert_eq "toss-sim client" "$(jq -r .client "$SIM_LOG" | sort -u)" \
    "the client certificate's CN in the simulator's log"

step "what it settled and what it left"
assert_eq granted "$(order_state once-paid)" "once-paid"
assert_eq granted "$(order_state once-purchased)" "once-purchased"
assert_eq failed "$(order_state once-failed)" "once-failed"
assert_eq "pending ORDER_IN_PROGRESS 1 0" \
    "$(order_jq once-progress '"\(.state) \(.tossStatus) \(.polls) \(.errors)"')" "once-progress"
next=$(order_jq once-progress '.nextPollAt | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601')
now=$(date +%s)
assert_ge $((now + 10)) "$next" "once-progress: next poll (unix s) after now ($now)"
assert_eq grant "$(event_types once-paid)" "once-paid events"
assert_eq grant "$(event_types once-purchased)" "once-purchased events"
assert_eq failed "$(event_types once-failed)" "once-failed events"
assert_eq "" "$(event_types once-progress)" "once-progress has no event"
assert_eq "PAYMENT_COMPLETED 2025-09-25T16:30:26+09:00" \
    "$(event_field once-paid grant 'tossStatus + " " + .statusDeterminedAt')" "once-paid grant payload"
assert_events_unique
assert_eq 0 "$(ctl stats --json | jq .due)" "nothing due after the run"

step "a second run finds nothing due"
start_daemon --once
st=0
wait_daemon 10 || st=$?
assert_eq 0 "$st" "second --once exit status"
assert_eq 4 "$(sim_count)" "no new request"
assert_log 'info: --once: 0 attempts, 0 answers, 0 errors, 0 rescheduled by a pause$'
assert_eq 3 "$(event_count)" "no new event"

step "a run with the second certificate: the simulator's log names it"
CFG_CERT=$T/certs/client-b.crt CFG_KEY=$T/certs/client-b.key write_daemon_config
ctl recheck once-progress >/dev/null ||
    fail "reconcilectl recheck once-progress: $(tail -n 2 "$CTL_ERR")"
start_daemon --once
st=0
wait_daemon 10 || st=$?
assert_eq 0 "$st" "--once exit status with client-b.crt"
assert_log 'info: --once: 1 attempt, 1 answer, 0 errors, 0 rescheduled by a pause$'
assert_eq "toss-sim client
toss-sim client b" "$(jq -r 'select(.orderId == "once-progress") | .client' "$SIM_LOG")" \
    "once-progress: asked with client.crt, then with client-b.crt"
assert_eq 5 "$(sim_count)" "one new request"
pass
