#!/bin/sh
# Fault matrix: answers for another orderId. Asked about xo-burst, the
# simulator answers SUCCESS/PAYMENT_COMPLETED for "xo-burst-other" (an order
# the ledger also holds, whose own answer is ORDER_IN_PROGRESS). Such an
# answer settles neither order: xo-burst ends in mismatch on its clean
# answer after 2 s and is never granted, xo-burst-other is never granted
# and only ever took its own answers, and an order only ever answered for
# another id (REFUNDED) stays pending. One error line each ("malformed
# answer: order_id"), retried on docs/DESIGN.md's backoff; nothing pauses.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
write_daemon_config
fault_add xo-burst xo-burst-other xo-forever

step "run until the burst is over and the wrong answers have piled up"
start_daemon
wait_until 20 "xo-burst mismatched, xo-forever 5 errors" eval \
    'state_is xo-burst mismatch && [ "$(order_field xo-forever errors)" -ge 5 ]'
stop_daemon_ok

step "the asked order: never granted, mismatch on its one clean answer"
assert_settled xo-burst mismatch mismatch MINIAPP_MISMATCH
assert_errors_served xo-burst
assert_error_lines xo-burst 'malformed answer: order_id \(HTTP 200\)'
assert_backoff xo-burst

step "the order the wrong answers named: untouched by them"
asked=$(sim_count 'select(.orderId == "xo-burst-other")')
assert_ge 1 "$asked" "requests for xo-burst-other"
assert_eq "pending $asked 0 ORDER_IN_PROGRESS null" \
    "$(order_jq xo-burst-other '"\(.state) \(.polls) \(.errors) \(.tossStatus) \(.grantedAt)"')" \
    "xo-burst-other took only its own answers"
assert_eq 0 "$(event_count "" xo-burst-other)" "xo-burst-other events"

step "only answers for another id: pending, untouched, backing off"
assert_untouched xo-forever
assert_errors_served xo-forever
assert_error_lines xo-forever 'malformed answer: order_id \(HTTP 200\)'
assert_backoff xo-forever

step "no pause, no grant"
assert_no_log 'poller: paused' "a wrong orderId is an error of one order, not a pause"
assert_eq 0 "$(event_count grant)" "grants"
assert_events_unique
assert_eq 1 "$(event_count)" "events in all"
pass
