#!/bin/sh
# Disk faults: the ledger on a full filesystem (a 4 MB tmpfs the test
# mounts; skipped where mounting is not allowed). The daemon runs while the
# filesystem fills up under it, just as Toss's verdicts (grants, failures,
# refunds after grants) are on their way (the simulator answers after
# 1.5 s), so they arrive when nothing can be written. It must keep
# what it has (nothing committed is lost, nothing half-written), keep
# running, say why in its log, retry, and once space is back settle every
# order exactly as if nothing had happened: exact states, one event each,
# every event in the JSONL file once (or as identical copies). reconcilectl
# add on the full disk fails cleanly and adds nothing.
. "$top_srcdir/tests/integration/crash-lib.sh"

mount_tmpfs 4m

start_sim "$SCENARIOS/fault-disk.json" --latency 1500
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=1s
# 40 handshakes at once, made one at a time by the simulator, overran a 1 s
# connect timeout in a sanitizer build: the d-refund orders' first answers
# then came after their switch (refunded, never granted).
CFG_CONNECT_TIMEOUT=3s
CFG_TIMEOUT=5s
write_daemon_config "[events]" "jsonl = $MNT/events.jsonl"
LEDGER=$MNT/ledger.db
sed "s|^path = .*|path = $LEDGER|" "$CONF" >"$CONF.new" && mv "$CONF.new" "$CONF"

step "40 orders; the early ones settle before the disk fills"
make_orders 8000 d-early-:10 d-paid-:10 d-fail-:10 d-refund-:10
import_orders <"$T/orders.jsonl"
write_expected
start_daemon
wait_until 30 "the early orders are granted and written to the JSONL file" eval \
    '[ "$(event_count grant)" -ge 20 ] && sinks_caught_up'

step "fill the filesystem while the verdicts are on their way"
# The simulator logs a request when it arrives and answers 1.5 s later.
wait_until 10 "the simulator takes the first FAILED request" eval \
    '[ "$(sim_count '"'"'select(.outcome == "status:FAILED")'"'"')" -ge 1 ]'
dd if=/dev/zero of="$MNT/filler" bs=4096 2>/dev/null || true
avail=$(df -P "$MNT" | awk 'NR == 2 { print $4 }')
assert_eq 0 "$avail" "kB left on the filesystem"
cp "$MNT/events.jsonl" "$T/jsonl.before-full"
events_before=$(event_count)
wait_until 10 "the verdicts come back and cannot be written" \
    grep -Eq 'poller: commit of [0-9]+ results failed: database or disk is full' "$DAEMON_LOG"
# Then the next claim of due orders (refund re-checks, retries) must fail
# too and say so; a slow (sanitizer) build takes longer to get there.
wait_until 20 "a claim on the full disk fails and says why" \
    grep -Eq 'error: poller: cannot claim due orders: database or disk is full$' "$DAEMON_LOG"
daemon_alive || fail "the daemon died on a full disk"
# SQLite can still commit a batch now and then on the full disk (a reset
# WAL is rewritten in place, without new blocks), so what was written is
# not known in advance; what must hold is that it was written whole: each
# settled order with its event, no event without its order.
assert_ge "$events_before" "$(event_count)" "events while the disk is full (none lost)"
assert_eq "$(count_state failed)" "$(event_count failed)" \
    "failed orders and failed events agree while the disk is full"
assert_eq "$(count_state refunded)" "$(event_count refund)" \
    "refunded orders and refund events agree while the disk is full"

step "reconcilectl add on the full disk: refused, nothing added"
st=0
"$RECONCILECTL" -c "$CONF" add d-new-01 9001 >"$T/add.out" 2>"$T/add.err" || st=$?
assert_eq 1 "$st" "reconcilectl add exit status on a full disk"
assert_match 'database or disk is full|No space left on device' "$(cat "$T/add.err")" \
    "reconcilectl add says why"

step "space comes back: everything settles exactly once"
rm -f "$MNT/filler"
wait_settled 40
wait_until 15 "the JSONL file catches up" sinks_caught_up
stop_daemon_ok
st=0
"$RECONCILECTL" -c "$CONF" show d-new-01 >/dev/null 2>&1 || st=$?
assert_eq 1 "$st" "d-new-01 (refused on the full disk) is unknown"
assert_run_sound "$MNT/events.jsonl"
assert_starts_with "$T/jsonl.before-full" "$MNT/events.jsonl"
assert_log 'error: poller: commit of [0-9]+ results failed: database or disk is full; those orders are polled again when their leases expire$'
assert_log 'error: poller: cannot claim due orders: database or disk is full$'
pass
