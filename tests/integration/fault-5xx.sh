#!/bin/sh
# Fault matrix: 5xx bursts. An order answered 503, 500, 502, 504 for its
# first 4.8 s and then PAYMENT_COMPLETED is granted once, after exactly one
# real answer; a SUCCESS envelope saying "paid" with HTTP 500 is an error,
# not a grant (the order later fails and is never granted); an order that
# only ever gets 503 stays pending with one error per 503. Every error is
# one log line and is retried on docs/DESIGN.md's backoff; nothing pauses.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
write_daemon_config
fault_add x5-burst x5-success500 x5-forever

step "run until the burst is over and the 503s have piled up"
start_daemon
wait_until 25 "x5-burst granted, x5-success500 failed, x5-forever 5 errors" eval \
    'state_is x5-burst granted && state_is x5-success500 failed &&
    [ "$(order_field x5-forever errors)" -ge 5 ]'
stop_daemon_ok

step "the burst order: granted once, on its one clean answer"
assert_settled x5-burst granted grant PAYMENT_COMPLETED
assert_eq "PAYMENT_COMPLETED 2025-09-25T16:30:26+09:00" \
    "$(event_field x5-burst grant 'tossStatus + " " + .statusDeterminedAt')" \
    "x5-burst grant payload"
for code in 503 500 502 504; do
	assert_ge 1 "$(sim_count "select(.orderId == \"x5-burst\" and .outcome == \"fault:http5xx\" and .http == $code)")" \
	    "x5-burst was answered $code"
done
assert_errors_served x5-burst
assert_error_lines x5-burst 'HTTP 50[0234] \(not_json\)'
assert_backoff x5-burst

step "a SUCCESS envelope with HTTP 500 is an error, never a grant"
assert_ge 1 "$(sim_count 'select(.orderId == "x5-success500" and .outcome == "status:PAYMENT_COMPLETED" and .http == 500)')" \
    "x5-success500 was answered PAYMENT_COMPLETED with HTTP 500"
assert_settled x5-success500 failed failed FAILED
assert_eq "$(sim_count 'select(.orderId == "x5-success500" and .http == 500)')" \
    "$(order_field x5-success500 errors)" "x5-success500: one error per HTTP 500"
assert_error_lines x5-success500 'HTTP 500 \([a-z_]+\)'
assert_backoff x5-success500

step "only 503s: pending, untouched, one error per 503, on the backoff"
assert_untouched x5-forever
assert_errors_served x5-forever
assert_error_lines x5-forever 'HTTP 503 \(not_json\)'
assert_backoff x5-forever

step "errors back off; they never pause the poller"
assert_no_log 'poller: paused' "a 5xx is an error of one order, not a pause"
assert_events_unique
assert_eq 2 "$(event_count)" "events in all"
pass
