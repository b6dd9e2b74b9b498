#!/bin/sh
# reconciled --once on a PostgreSQL ledger: alone it wins leadership,
# polls what is due and exits 0; while another instance leads, a --once run
# asks Toss nothing and exits 0 ("another instance leads this ledger").
LEDGER_BACKEND=pg
. "$top_srcdir/tests/integration/lib-daemon.sh"

start_sim "$SCENARIOS/once.json"
write_daemon_config
import_orders <<'EOF2'
{"orderId":"once-paid","userKey":"4001"}
{"orderId":"once-failed","userKey":"4004"}
EOF2

step "alone: the run leads and polls"
start_daemon --once
st=0
wait_daemon 20 || st=$?
assert_eq 0 "$st" "--once exit status"
assert_log 'info: role: leader \(epoch 1\)$'
assert_log 'info: --once: 2 attempts, 2 answers, 0 errors, 0 rescheduled by a pause$'
assert_eq "granted failed" "$(order_state once-paid) $(order_state once-failed)" \
    "what it settled"

step "another instance leads: the run does nothing"
"$RECONCILED" -c "$CONF" -v >>"$T/daemon-other.log" 2>&1 &
OTHER=$!
at_exit 'kill -9 $OTHER 2>/dev/null'
wait_until 15 "the other instance leads" grep -q 'info: role: leader (epoch 2)' \
    "$T/daemon-other.log"
add_order once-purchased 4002
n=$(sim_count)
kill -STOP "$OTHER"
at_exit 'kill -CONT $OTHER 2>/dev/null'
start_daemon --once
st=0
wait_daemon 20 || st=$?
assert_eq 0 "$st" "--once exit status beside a leader"
assert_log 'info: role: standby \(another instance leads\)$'
assert_log 'info: --once: another instance leads this ledger; nothing to do$'
assert_eq "$n" "$(sim_count)" "requests made by that run"
assert_eq pending "$(order_state once-purchased)" "once-purchased left to the leader"
kill -CONT "$OTHER"
wait_until 20 "the leader polls once-purchased" state_is once-purchased granted
kill -TERM "$OTHER"
_ld_reap "$OTHER" 20 || fail "the other instance did not stop"
assert_eq 0 "$_ld_status" "the other instance exits 0"
assert_no_password "$T/daemon-other.log"
pass
