#!/bin/sh
# The PostgreSQL server goes away under a running daemon (pg_ctl stop -m
# immediate) and comes back: the daemon keeps running, connects again by
# itself (and says so) and polls on: an order added after the outage is
# granted, and each order has exactly one event.
LEDGER_BACKEND=pg
. "$top_srcdir/tests/integration/lib-daemon.sh"

start_sim "$SCENARIOS/status-paths.json"
write_daemon_config
add_order sp-purchased 1001
start_daemon
wait_until 20 "sp-purchased granted" state_is sp-purchased granted

step "the database stops under the daemon"
pg_stop
sleep 3
daemon_alive || fail "reconciled exited when the database went away"

step "it comes back: the daemon connects again and polls on"
pg_restart
add_order sp-completed 1002
wait_until 30 "sp-completed granted" \
    state_is sp-completed granted
assert_ge 1 "$(log_count 'connected again')" "the reconnection is logged"
assert_eq "1 1" "$(ctl events --json | jq -s -r '[(map(select(.orderId ==
    "sp-purchased")) | length), (map(select(.orderId == "sp-completed")) |
    length)] | map(tostring) | join(" ")')" "one event each"
pass
