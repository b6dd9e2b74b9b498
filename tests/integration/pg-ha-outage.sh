#!/bin/sh
# Two instances on one PostgreSQL ledger, and the database stops under
# them mid-run (pg_ctl stop -m immediate) and starts again: both keep
# running and answering /healthz through the outage, the leader steps
# down, both recover by themselves and one leads again; every order
# settles with exactly its events (none lost or doubled), event ids have
# no gap, and both sinks hold every event.
LEDGER_BACKEND=pg
. "$top_srcdir/tests/integration/crash-lib.sh"
. "$top_srcdir/tests/integration/lib-ha.sh"

start_sim "$SCENARIOS/crash.json" --latency 30
start_webhook
CFG_TIMEOUT=2s
CFG_CONNECT_TIMEOUT=2s
CFG_NOT_FOUND_GRACE=40s
CFG_GIVE_UP_AFTER=40s
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=1s
CFG_RATE_LIMIT=40/s
write_crash_config
inst_configs

step "112 orders, both instances up"
make_orders 100000 $(kind_prefixes "$CRASH_KINDS" | sed 's/$/:8/')
import_orders <"$T/orders.jsonl"
inst_start a
wait_until 15 "a leads" role_is a leader
inst_start b
wait_until 15 "b stands by" role_is b standby
sleep 1.5

step "the database stops under both"
t0=$(now_ms)
pg_stop
wait_until 10 "a steps down" grep -q 'role: standby: stepped down' "$T/daemon-a.log"
echo "a stepped down $(($(grep 'role: standby: stepped down' "$T/daemon-a.log" |
    head -n 1 | log_ms) - t0)) ms after the stop"
sleep 2
for x in a b; do
	kill -0 "$(inst_pid "$x")" || fail "$x exited during the outage"
	assert_eq standby "$(inst_role "$x")" "$x's /healthz during the outage"
done

step "the database is back: both recover by themselves, one leads"
pg_restart
wait_until 20 "one instance leads" eval '[ "$(leaders)" = 1 ]'
# A ledger connection whose reconnection failed during the outage waits
# up to 5 s before the next try: intake answers 500 until then (clients
# retry), and takes the order after.
wait_until 10 "b takes intake again" inst_try_post b c-paid-after 500001
wait_until 10 "a takes intake again" inst_try_post a c-refund-after 500002
write_expected
wait_settled 120
wait_until 30 "the sinks catch up" sinks_caught_up
assert_eq 1 "$(leaders)" "leaders at the end"
inst_stop_all

step "exact states and events, ids without a gap, every event in both sinks"
assert_run_sound "$T/events.jsonl"
assert_eq true "$(events_json | jq -s '[.[].id] == [range(1; length + 1)]')" \
    "event ids are 1..N in the feed"
assert_rate_held 40
assert_no_password "$T/daemon-a.log" "$T/daemon-b.log"
pass
