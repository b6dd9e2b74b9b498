#!/bin/sh
# Fault matrix: an upstream that cannot be reached. base_url names a host
# under .invalid (RFC 6761: never resolves; no request leaves the machine),
# then a local port nothing listens on. Both are errors of each attempt, not
# pauses: one "resolve: ..." / "connect: ..." line per attempt, docs/DESIGN.md's
# backoff, orders pending and untouched. Pointing base_url at the simulator
# and sending SIGHUP settles them on their answers.
. "$top_srcdir/tests/integration/fault-lib.sh"
require_cmd python3

start_sim "$FAULT_SCENARIO"

# attempts_log ID: a request log made of ID's error lines (an attempt that
# cannot resolve or connect ends at once), for assert_backoff.
attempts_log()
{
	error_lines "$1" | log_ms | jq -c --arg id "$1" '{orderId: $id, t: .}' \
	    >"$T/attempts-$1.log"
	echo "$T/attempts-$1.log"
}

step "a name that does not resolve"
CFG_BASE_URL=https://toss-sim.invalid:$SIM_PORT
write_daemon_config
fault_add xc-paid xc-refund
start_daemon
wait_until 20 "five errors each" eval \
    '[ "$(order_field xc-paid errors)" -ge 5 ] && [ "$(order_field xc-refund errors)" -ge 5 ]'
stop_daemon_ok
for id in xc-paid xc-refund; do
	assert_untouched $id "name does not resolve"
	assert_error_lines $id 'resolve: Could not resolve host: toss-sim\.invalid'
	SIM_LOG=$(attempts_log $id) assert_backoff $id
done
assert_no_log 'poller: paused' "a name that does not resolve is an error, not a pause"
assert_eq 0 "$(sim_count)" "requests that reached the simulator"

step "a port nothing listens on"
next_run 1 keep-sim
closed=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
CFG_BASE_URL=https://127.0.0.1:$closed
write_daemon_config
fault_add xc-paid xc-refund
start_daemon
wait_until 20 "five errors each" eval \
    '[ "$(order_field xc-paid errors)" -ge 5 ] && [ "$(order_field xc-refund errors)" -ge 5 ]'
for id in xc-paid xc-refund; do
	assert_untouched $id "connection refused"
	assert_error_lines $id "connect: Failed to connect to 127\\.0\\.0\\.1 port $closed.*"
	SIM_LOG=$(attempts_log $id) assert_backoff $id
done
assert_no_log 'poller: paused' "a refused connection is an error, not a pause"

step "base_url fixed, SIGHUP: the orders settle on their answers"
CFG_BASE_URL=
write_daemon_config
hup_daemon
assert_log 'info: configuration reloaded$'
wait_until 10 "xc-paid granted, xc-refund refunded" eval \
    'state_is xc-paid granted && state_is xc-refund refunded'
stop_daemon_ok
assert_xc_settled
pass
