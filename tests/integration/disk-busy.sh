#!/bin/sh
# Ledger faults: SQLITE_BUSY from a long writer. Another process (the
# sqlite3 shell, fed through a fifo) holds the ledger's write lock with
# BEGIN IMMEDIATE for 12 s, longer than the daemon's busy timeout (5 s),
# just as Toss's verdicts are on their way (the simulator answers after
# 1 s). The daemon must keep what it has, say why in its log, keep serving
# readers, retry, and once the lock is gone settle every order exactly once
# with every event in the JSONL file and at the webhook (duplicates only as
# identical copies).
. "$top_srcdir/tests/integration/crash-lib.sh"

require_cmd sqlite3

start_sim "$SCENARIOS/fault-disk.json" --latency 1000
start_webhook
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=1s
write_daemon_config "[events]" "jsonl = $T/events.jsonl" \
    "webhook_url = $WEBHOOK_URL" "webhook_secret = $WEBHOOK_SECRET"

step "30 orders; the early ones settle and are delivered"
make_orders 8200 d-early-:10 d-paid-:10 d-fail-:5 d-refund-:5
import_orders <"$T/orders.jsonl"
write_expected
start_daemon
wait_until 10 "the early grants are delivered" eval \
    '[ "$(event_count grant)" -ge 15 ] && sinks_caught_up'

step "a long writer takes the write lock while the verdicts are on their way"
wait_until 10 "the simulator takes the first PAYMENT_COMPLETED request for d-paid" eval \
    '[ "$(sim_count '"'"'select(.outcome == "status:PAYMENT_COMPLETED" and (.orderId | startswith("d-paid-")))'"'"')" -ge 1 ]'
mkfifo "$T/writer.fifo"
sqlite3 "$LEDGER" <"$T/writer.fifo" >"$T/writer.out" 2>"$T/writer.err" &
WRITER_PID=$!
at_exit 'kill "$WRITER_PID" 2>/dev/null'
exec 3>"$T/writer.fifo"
printf '%s\n' '.timeout 10000' 'BEGIN IMMEDIATE;' "SELECT 'locked';" >&3
wait_until 10 "the writer holds the lock" grep -q '^locked$' "$T/writer.out"
tlock=$(now_ms)
events_locked=$(event_count)
states_locked=$(actual_states)

step "while it holds the lock: nothing lost, nothing written, readers served"
wait_until 15 "the daemon reports the busy ledger" \
    grep -Eq 'database is locked' "$DAEMON_LOG"
# Hold it 12 s in all.
sleep $(((tlock + 12000 - $(now_ms)) / 1000))
daemon_alive || fail "the daemon died on a busy ledger"
assert_eq "$events_locked" "$(event_count)" "events while the ledger is locked"
assert_eq "$states_locked" "$(actual_states)" "states while the ledger is locked"

step "the writer commits: everything settles exactly once"
printf '%s\n' 'COMMIT;' "SELECT 'released';" '.quit' >&3
exec 3>&-
wait_until 10 "the writer lets go" grep -q '^released$' "$T/writer.out"
_ld_reap "$WRITER_PID" 10 || fail "sqlite3 did not exit"
assert_eq 0 "$_ld_status" "sqlite3 exit status ($(cat "$T/writer.err"))"
WRITER_PID=
wait_settled 40
wait_until 20 "the sinks catch up" sinks_caught_up
stop_daemon_ok
assert_run_sound "$T/events.jsonl"
assert_log 'error: poller: (commit of [0-9]+ results failed|cannot begin a ledger transaction|cannot claim due orders): database is locked'
pass
