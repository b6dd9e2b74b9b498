#!/bin/sh
# Fault matrix: a server that accepts TCP but never completes the TLS
# handshake (toss-sim --tls-stall). That is no TLS failure (nothing was
# refused) but a timeout: each attempt ends after connect_timeout (1 s; the
# request timeout is 3 s), is one "timeout: ..." log line, counts as an error
# and is retried on docs/DESIGN.md's backoff; the poller does not pause and the
# order stays pending, untouched.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "" --tls-stall
CFG_TIMEOUT=3s
CFG_CONNECT_TIMEOUT=1s
write_daemon_config
add_order xts-1 6301

step "run until five handshakes have timed out"
start_daemon
wait_until 20 "five errors" eval '[ "$(order_field xts-1 errors)" -ge 5 ]'
stop_daemon_ok

step "each attempt: one connection, cut at the connect timeout"
assert_untouched xts-1
errors=$(order_field xts-1 errors)
assert_eq "$errors" "$(sim_count 'select(.outcome == "tls:stall")')" \
    "connections taken by the stalling server (one per attempt)"
assert_error_lines xts-1 'timeout: (SSL connection timeout|Connection timed out after 1[0-9]{3} milliseconds)'
jq -c 'select(.outcome == "tls:stall") | .t' "$SIM_LOG" >"$T/accepted"
error_lines xts-1 | log_ms >"$T/failed"
bad=$(paste -d' ' "$T/accepted" "$T/failed" | awk 'NF == 2 && ($2 - $1 < 900 || $2 - $1 > 1900) { print "attempt took " $2 - $1 " ms" }')
assert_eq "" "$bad" "stalled handshakes end after connect_timeout (1 s), not timeout (3 s)"

step "backoff between attempts, no pause"
# The simulator logs an accepted connection, not a request: the schedule
# is checked against those.
jq -c 'select(.outcome == "tls:stall") | .orderId = "xts-1"' "$SIM_LOG" >"$T/sim-conns.log"
SIM_LOG=$T/sim-conns.log assert_backoff xts-1
assert_no_log 'poller: paused' "a handshake that never completes is a timeout, not a pause"
assert_eq 0 "$(event_count)" "events"
pass
