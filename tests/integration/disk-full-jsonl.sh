#!/bin/sh
# Disk faults: the JSONL event file on a full filesystem (a 1 MB tmpfs the
# test mounts, with one page left, so a batch of events is cut mid-write;
# skipped where mounting is not allowed). The ledger is elsewhere, so orders
# keep settling and their events are committed; the sink must say why it
# cannot write, make /healthz report it, keep retrying, never leave a torn
# line, and once space is back deliver every event: the file then holds
# each event's payload (duplicates only as identical lines) after the lines
# it held before.
. "$top_srcdir/tests/integration/crash-lib.sh"

mount_tmpfs 1m
JSONL=$MNT/events.jsonl

# The d-paid orders must still be waiting when the disk fills: their switch
# to PAYMENT_COMPLETED comes 12 s after their first request here (3 s in
# the scenario, which a sanitizer build had passed before the fill).
jq '.templates[] |= (if .prefix == "d-paid-" then .timeline[1].after = "12s" else . end)' \
    "$SCENARIOS/fault-disk.json" >"$T/fault-disk.json"
start_sim "$T/fault-disk.json"
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=1s
CFG_CONNECT_TIMEOUT=3s
write_daemon_config "[events]" "jsonl = $JSONL"
use_control_sock

step "the early events reach the file before it fills"
# After the fill, one page and the file's last block are free (up to 8 KiB):
# the 40 d-paid grants (about 14 KiB of lines) cannot all fit.
make_orders 8100 d-early-:5 d-paid-:40 d-refund-:5
import_orders <"$T/orders.jsonl"
write_expected
start_daemon
wait_until 30 "the early grants are in the JSONL file" eval \
    '[ "$(event_count grant)" -ge 10 ] && sinks_caught_up'
cp "$JSONL" "$T/jsonl.before"
assert_eq 0 "$(event_count grant d-paid-0001)" "d-paid-0001 still waits for its payment when the disk fills"

step "fill the filesystem, leaving one page"
dd if=/dev/zero of="$MNT/spacer" bs=4096 count=1 2>/dev/null
dd if=/dev/zero of="$MNT/filler" bs=4096 2>/dev/null || true
rm -f "$MNT/spacer"

step "the orders settle; the sink cannot write them and says so"
wait_settled 40
wait_until 20 "the sink reports the full disk" \
    grep -q "events jsonl $JSONL: .*No space left on device" "$DAEMON_LOG"
assert_eq "503 {\"status\":\"unhealthy\",\"reason\":\"jsonl sink failing (see the log)\",\"role\":\"leader\"}" \
    "$(healthz)" "/healthz while the sink fails"
sleep 2
daemon_alive || fail "the daemon died on a full disk"
# A batch cut short by the full disk is taken back at once: the file holds
# whole lines only, even while the sink fails.
assert_eq "" "$(tail -c 1 "$JSONL" | tr -d '\n')" "the JSONL file ends with a whole line while the disk is full"
assert_eq "" "$(jq -R -c 'fromjson? // "torn" | select(type != "object" or .key == null)' "$JSONL")" \
    "lines of the JSONL file while the disk is full"
assert_ge 1 "$(ctl stats --json | jq '.sinks.jsonl.lag')" "events waiting for the sink"

step "space comes back: every event delivered, no torn line"
rm -f "$MNT/filler"
wait_until 40 "the JSONL file catches up" sinks_caught_up
assert_eq '200 {"status":"ok","role":"leader"}' "$(healthz)" "/healthz once the sink writes again"
stop_daemon_ok
assert_run_sound "$JSONL"
assert_starts_with "$T/jsonl.before" "$JSONL"
assert_log "events jsonl $JSONL: writing again after [0-9]+ failed"
pass
