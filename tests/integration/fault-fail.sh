#!/bin/sh
# Fault matrix: FAIL envelopes. {"resultType":"FAIL"} answers with HTTP 200,
# 400, 500 and 404 (errorCode ORDER_NOT_FOUND, which sounds like a verdict)
# are errors, never verdicts: an order answered FAIL for its first 4.8 s
# and then REFUNDED is refunded (granted: false) after exactly one real
# answer; an order only ever answered FAIL stays pending with one error per
# FAIL. Each error is one log line naming the errorCode and the HTTP code,
# retried on docs/DESIGN.md's backoff; nothing pauses.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
write_daemon_config
fault_add xf-burst xf-forever

step "run until the burst is over and the FAILs have piled up"
start_daemon
wait_until 25 "xf-burst refunded, xf-forever 5 errors" eval \
    'state_is xf-burst refunded && [ "$(order_field xf-forever errors)" -ge 5 ]'
stop_daemon_ok

step "the burst order: refunded once, on its one clean answer"
assert_settled xf-burst refunded refund REFUNDED
assert_eq "2025-09-26T10:00:00+09:00 false" \
    "$(event_field xf-burst refund 'statusDeterminedAt + " " + (.granted | tostring)')" \
    "xf-burst refund payload"
assert_ge 3 "$(sim_count 'select(.orderId == "xf-burst" and .outcome == "fault:fail")' )" \
    "FAIL answers served to xf-burst"
assert_errors_served xf-burst
assert_error_lines xf-burst 'FAIL answer (INTERNAL_ERROR \(HTTP (200|500)\)|INVALID_PARAMETER \(HTTP 400\)|ORDER_NOT_FOUND \(HTTP 404\))'
assert_log 'info: order xf-burst \(userKey [^)]*\): FAIL answer INTERNAL_ERROR \(HTTP 200\); next try in ' \
    "a FAIL envelope with HTTP 200 is logged as such"
assert_backoff xf-burst

step "only FAILs (ORDER_NOT_FOUND, HTTP 404): pending, untouched, backing off"
assert_untouched xf-forever
assert_errors_served xf-forever
assert_error_lines xf-forever 'FAIL answer ORDER_NOT_FOUND \(HTTP 404\)'
assert_backoff xf-forever

step "no pause, nothing else"
assert_no_log 'poller: paused' "a FAIL envelope is an error of one order, not a pause"
assert_events_unique
assert_eq 1 "$(event_count)" "events in all"
pass
