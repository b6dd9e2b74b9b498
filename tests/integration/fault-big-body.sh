#!/bin/sh
# Fault matrix: a 10 MB body. The simulator answers a valid SUCCESS envelope
# saying PAYMENT_COMPLETED whose reason is 10 MB long. The daemon must stop
# reading past its cap (64 KiB) and treat it as an error: never a grant
# (the order fails once on its clean answer after 2 s), an order only ever
# answered so stays pending, one "too_big" line per attempt, docs/DESIGN.md's
# backoff, no pause, and the daemon's memory never holds the body.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
write_daemon_config
fault_add xb-burst xb-forever

step "run until the burst is over and the big answers have piled up"
start_daemon
rss0=$(awk '/^VmRSS:/ { print $2 }' "/proc/$DAEMON_PID/status")
wait_until 25 "xb-burst failed, xb-forever 5 errors" eval \
    'state_is xb-burst failed && [ "$(order_field xb-forever errors)" -ge 5 ]'
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$DAEMON_PID/status")
echo "VmRSS at start ${rss0} kB, VmHWM after the big answers ${hwm} kB"
stop_daemon_ok

step "a 10 MB paid answer never grants: failed once, on the clean answer"
assert_settled xb-burst failed failed FAILED
assert_ge 1 "$(fault_served xb-burst)" "big answers served to xb-burst"
assert_errors_served xb-burst
assert_error_lines xb-burst 'too_big: answer larger than 65536 bytes'
assert_backoff xb-burst

step "only big answers: pending, untouched, backing off"
assert_untouched xb-forever
assert_errors_served xb-forever
assert_error_lines xb-forever 'too_big: answer larger than 65536 bytes'
assert_backoff xb-forever

step "the body was never held whole: peak memory grew by less than 8 MB"
if grep -q __asan_init "$RECONCILED"; then
	# ASan keeps freed memory in quarantine: RSS says nothing there.
	echo "note: an ASan build: the peak memory check is skipped"
else
	assert_le $((rss0 + 8192)) "$hwm" "peak RSS in kB (10 MB answers, 64 KiB cap)"
fi

step "no pause, no grant"
assert_no_log 'poller: paused' "a big answer is an error of one order, not a pause"
assert_eq 0 "$(event_count grant)" "grants"
assert_events_unique
assert_eq 1 "$(event_count)" "events in all"
pass
