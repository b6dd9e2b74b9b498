#!/bin/sh
# Fault matrix: truncated bodies. The simulator sends the headers (with the
# full Content-Length) and half of a SUCCESS body saying PAYMENT_COMPLETED,
# then closes. Half an answer is no answer: the order is never granted (it
# fails once on its clean FAILED answer after 2 s), an order only ever
# answered that way stays pending; each attempt is one "reset: ..." error
# line, retried on docs/DESIGN.md's backoff; nothing pauses.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
write_daemon_config
fault_add xt-burst xt-forever

step "run until the burst is over and the truncated answers have piled up"
start_daemon
wait_until 20 "xt-burst failed, xt-forever 5 errors" eval \
    'state_is xt-burst failed && [ "$(order_field xt-forever errors)" -ge 5 ]'
stop_daemon_ok

step "half a paid answer never grants: failed once, on the clean answer"
assert_settled xt-burst failed failed FAILED
assert_ge 1 "$(sim_count 'select(.orderId == "xt-burst" and .outcome == "fault:truncated" and .http == 200)')" \
    "truncated answers served to xt-burst"
assert_errors_served xt-burst
assert_error_lines xt-burst 'reset: transfer closed with [0-9]+ bytes remaining to read'
assert_backoff xt-burst

step "only truncated answers: pending, untouched, backing off"
assert_untouched xt-forever
assert_errors_served xt-forever
assert_error_lines xt-forever 'reset: transfer closed with [0-9]+ bytes remaining to read'
assert_backoff xt-forever

step "no pause, no grant"
assert_no_log 'poller: paused' "a truncated answer is an error of one order, not a pause"
assert_eq 0 "$(event_count grant)" "grants"
assert_events_unique
assert_eq 1 "$(event_count)" "events in all"
pass
