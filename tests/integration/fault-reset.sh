#!/bin/sh
# Fault matrix: connection resets. The simulator resets the TCP connection
# (RST) instead of answering, for an order's first 2 s (then PURCHASED) and
# for another order forever. Resets are errors: the first order is granted
# once after one real answer, the other stays pending; each failed attempt
# is one log line ("reset: ...") and attempts follow docs/DESIGN.md's backoff.
# libcurl resends a request on its own when a reused connection turns out
# dead, so the simulator may see up to 6 requests per attempt (curl's
# limit); the ledger counts attempts.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
write_daemon_config
fault_add xr-burst xr-forever

step "run until the burst is over and the resets have piled up"
start_daemon
wait_until 20 "xr-burst granted, xr-forever 5 errors" eval \
    'state_is xr-burst granted && [ "$(order_field xr-forever errors)" -ge 5 ]'
stop_daemon_ok

# assert_attempts ID: at least one reset per recorded error, at most six.
assert_attempts()
{
	_r_err=$(order_field "$1" errors)
	_r_served=$(sim_count "select(.orderId == \"$1\" and .outcome == \"fault:reset\")")
	assert_ge "$_r_err" "$_r_served" "$1: resets served (errors $_r_err)"
	assert_le $((_r_err * 6)) "$_r_served" "$1: resets served (errors $_r_err)"
}

step "the burst order: granted once, on its one clean answer"
assert_settled xr-burst granted grant PURCHASED
assert_eq "PURCHASED 2025-09-25T16:32:00+09:00" \
    "$(event_field xr-burst grant 'tossStatus + " " + .statusDeterminedAt')" \
    "xr-burst grant payload"
assert_ge 1 "$(order_field xr-burst errors)" "xr-burst errors"
assert_attempts xr-burst
assert_error_lines xr-burst 'reset: .*'
assert_backoff xr-burst

step "only resets: pending, untouched, backing off"
assert_untouched xr-forever
assert_attempts xr-forever
assert_error_lines xr-forever 'reset: (Recv failure: Connection reset by peer|.*(reset|closed|Connection died).*)'
assert_backoff xr-forever

step "no pause, nothing else"
# While running, a reset is an error of one order. A reset that ends while
# the daemon drains cannot be checked over TLS 1.2 any more and takes a
# 1 s pause by design (the gate's stopping rows): only what came before
# the SIGTERM is judged.
assert_eq "" "$(sed '/received SIGTERM/,$d' "$DAEMON_LOG" | grep -F 'poller: paused' || true)" \
    "a reset is an error of one order, not a pause"
assert_events_unique
assert_eq 1 "$(event_count)" "events in all"
pass
