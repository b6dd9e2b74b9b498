#!/bin/sh
# Fault matrix: stalls past the timeout. The simulator takes the request and
# never answers, for an order's first 2.5 s (then FAILED) and for another
# order forever; the daemon's timeout is 1 s. Every stalled attempt must end
# at the timeout (not earlier, not much later) as one "timeout: ..." error
# line, be retried on docs/DESIGN.md's backoff, and never settle anything: the
# first order fails once on its clean answer, the other stays pending.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
CFG_TIMEOUT=1s
CFG_CONNECT_TIMEOUT=1s
write_daemon_config
fault_add xs-burst xs-forever

step "run until the burst is over and the timeouts have piled up"
start_daemon
wait_until 25 "xs-burst failed, xs-forever 4 errors" eval \
    'state_is xs-burst failed && [ "$(order_field xs-forever errors)" -ge 4 ]'
stop_daemon_ok

step "the burst order: failed once, on its one clean answer"
assert_settled xs-burst failed failed FAILED
assert_ge 1 "$(fault_served xs-burst)" "stalls served to xs-burst"
assert_errors_served xs-burst
assert_error_lines xs-burst 'timeout: Operation timed out after 1[0-9]{3} milliseconds with 0 bytes received'
# The sim logs a request when it arrives, the daemon its error when the
# timeout fires: the next request comes after timeout + backoff.
assert_backoff xs-burst 2500

step "only stalls: pending, untouched, each attempt ends at the timeout"
assert_untouched xs-forever
assert_errors_served xs-forever
assert_error_lines xs-forever 'timeout: Operation timed out after 1[0-9]{3} milliseconds with 0 bytes received'
assert_backoff xs-forever 2500
jq -c 'select(.orderId == "xs-forever") | .t' "$SIM_LOG" >"$T/asked"
error_lines xs-forever | log_ms >"$T/failed"
# Each attempt: from the request's arrival to its timeout line. The 1 s
# deadline starts before the request reaches the server (connect, TLS).
bad=$(paste -d' ' "$T/asked" "$T/failed" | awk 'NF == 2 && ($2 - $1 < 700 || $2 - $1 > 1800) { print "attempt took " $2 - $1 " ms" }')
assert_eq "" "$bad" "stalled attempts end after the 1 s timeout"

step "no pause, nothing else"
assert_no_log 'poller: paused' "a stall is an error of one order, not a pause"
assert_events_unique
assert_eq 1 "$(event_count)" "events in all"
pass
