#!/bin/sh
# reconcilectl sinks and replay against the running daemon, with a JSONL file
# and a webhook (webhook-recv.py): sinks shows each cursor, lag, state and
# last error (retrying after a 500, off after a 410, ok again); replay moves
# a cursor back while the daemon runs, and the events after it are
# delivered again with the same keys and byte-identical bodies; a replay
# past the last event or of an unknown sink is refused
# and changes nothing; a replay in the middle of a burst skips no event.
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl python3

RECV=$top_srcdir/tests/integration/webhook-recv.py
HOOKS=$T/hooks.jsonl
MODE=$T/hook.mode
OUT=$T/events.jsonl
RECV_PID=
at_exit '[ -z "$RECV_PID" ] || kill "$RECV_PID" 2>/dev/null'
: >"$HOOKS"
SECRET=whsec_$(printf '%s' 'reconciled sink-replay test key' | "${OPENSSL:-openssl}" base64 -A)
# Who reconcilectl says replayed: the user, and the terminal's login name
# when it differs (logname(1) reads it as getlogin(3) does).
ME=$(id -un)
LOGIN=$(logname 2>/dev/null || true)
[ -z "$LOGIN" ] || [ "$LOGIN" = "$ME" ] || ME="$ME (login $LOGIN)"
ME_RE=$(printf '%s' "$ME" | sed 's/[()]/\\&/g')

set_mode()
{
	printf '%s\n' "$@" >"$MODE.tmp"
	mv "$MODE.tmp" "$MODE"
}

last_event_id()
{
	ctl stats --json | jq -r .lastEventId
}

# sink FIELD NAME: a field of `reconcilectl sinks --json` for sink NAME.
sink()
{
	ctl sinks --json | jq -r --arg n "$2" ".[\$n].$1"
}

# caught_up: both cursors at the last event.
caught_up()
{
	_l=$(last_event_id)
	[ "$(sink deliveredId jsonl)" = "$_l" ] && [ "$(sink deliveredId webhook)" = "$_l" ]
}

# hooks_2xx KEY: number of 2xx answers to deliveries of KEY.
hooks_2xx()
{
	jq -r --arg k "$1" 'select(.id == $k and (.answer | startswith("2"))) | .id' \
	    "$HOOKS" | wc -l | tr -d ' '
}

post_n()
{
	for _i in $(seq "$2" "$3"); do
		post_order "$1-$_i" 5
	done
}

start_sim "$SCENARIOS/paid.json"
python3 "$RECV" --secret "$SECRET" --log "$HOOKS" --port-file "$T/hook.port" \
    --mode-file "$MODE" --stall-max 10 2>>"$T/recv.err" &
RECV_PID=$!
wait_until 10 "webhook-recv.py writes its port file" test -s "$T/hook.port"
HOOK_PORT=$(cat "$T/hook.port")
set_mode
write_daemon_config "[events]" "jsonl = $OUT" \
    "webhook_url = http://127.0.0.1:$HOOK_PORT/hook" \
    "webhook_secret = $SECRET" "webhook_timeout = 2s"
use_control_sock

# ---------------------------------------------------------------------------
step "before any event: both configured sinks listed, ok, at 0"
start_daemon
assert_eq "SINK       STATE         CURSOR      LAG  LAST ERROR
jsonl      ok                 0        0  -
webhook    ok                 0        0  -" "$(ctl sinks)" "reconcilectl sinks"

# ---------------------------------------------------------------------------
step "five grants delivered to both sinks"
post_n paid-rp 1 3
wait_until 10 "three events delivered to both" eval '[ "$(last_event_id)" = 3 ] && caught_up'
sleep 1.1
MID=$(date -u +%Y-%m-%dT%H:%M:%SZ)
post_n paid-rp 4 5
wait_until 10 "five events delivered to both" eval '[ "$(last_event_id)" = 5 ] && caught_up'
assert_eq 5 "$(wc -l <"$OUT" | tr -d ' ')" "five lines in the file"
assert_eq '{"configured":true,"state":"ok","deliveredId":5,"lag":0,"replays":0,"lastError":null,"lastErrorAt":null}' \
    "$(ctl sinks --json | jq -c .webhook)" "sinks --json"
cp "$OUT" "$T/first.jsonl"
cp "$HOOKS" "$T/first.hooks"

# ---------------------------------------------------------------------------
step "refused: past the last event, after the last event by time, an unknown sink, bad options"
assert_exit 1 "$RECONCILECTL" -c "$CONF" replay webhook --from 6
assert_eq "reconcilectl: replay: event 6 is past the last event (5); the cursor of webhook stays at 5" \
    "$(err)" "past the last event"
assert_exit 1 "$RECONCILECTL" -c "$CONF" replay jsonl --since 2099-01-01T09:00:00+09:00
assert_eq "reconcilectl: replay: no event was written at or after 2099-01-01T09:00:00+09:00; nothing to deliver again" \
    "$(err)" "--since with an offset"
assert_exit 1 "$RECONCILECTL" -c "$CONF" replay jsonl --since 2099-01-01T00:00:00Z
assert_eq "reconcilectl: replay: no event was written at or after 2099-01-01T00:00:00Z; nothing to deliver again" \
    "$(err)" "--since after the last event"
assert_exit 1 "$RECONCILECTL" -c "$CONF" replay smtp --from 1
assert_eq 'reconcilectl: replay: "smtp" is not a sink of this configuration (jsonl and webhook are, when set)' \
    "$(err)" "an unknown sink"
assert_exit 64 "$RECONCILECTL" -c "$CONF" replay webhook
assert_match "give --from ID or --since TIME" "$(err)" "neither --from nor --since"
assert_exit 64 "$RECONCILECTL" -c "$CONF" replay webhook --from 1 --since "$MID"
for bad in yesterday 2026-12-04T09:00:00 2026-12-04T09:00:00+9:00 2026-12-04T09:00:00+09:00x; do
	assert_exit 64 "$RECONCILECTL" -c "$CONF" replay webhook --since "$bad"
	assert_match 'RFC 3339' "$(err)" "--since $bad is no RFC 3339 time"
done
assert_eq "5 5 0 0" "$(sink deliveredId webhook) $(sink deliveredId jsonl) $(sink replays webhook) $(sink replays jsonl)" \
    "nothing moved"

# ---------------------------------------------------------------------------
step "replay webhook --from 3: events 3..5 arrive again, same keys, same bytes"
assert_exit 0 "$RECONCILECTL" -c "$CONF" replay webhook --from 3
assert_eq "webhook: cursor moved from 5 to 2 by $ME; events from 3 on are delivered again" \
    "$(out)" "replay says what it did"
wait_until 10 "events 3..5 are delivered again" eval \
    '[ "$(hooks_2xx paid-rp-3:grant)$(hooks_2xx paid-rp-4:grant)$(hooks_2xx paid-rp-5:grant)" = 222 ]'
assert_eq "1 1" "$(hooks_2xx paid-rp-1:grant) $(hooks_2xx paid-rp-2:grant)" \
    "events before the replay's start are not sent again"
for k in 3 4 5; do
	first=$(jq -c --arg k "paid-rp-$k:grant" 'select(.id == $k) | .body' "$T/first.hooks")
	again=$(jq -c --arg k "paid-rp-$k:grant" 'select(.id == $k) | .body' "$HOOKS" | tail -n 1)
	assert_eq "$first" "$again" "paid-rp-$k:grant: the body delivered again is byte-identical"
done
assert_eq 0 "$(jq -r 'select(.valid != true) | .id' "$HOOKS" | wc -l | tr -d ' ')" \
    "every redelivery is signed validly"
assert_log "webhook http://127.0.0.1:$HOOK_PORT: cursor moved from 5 to 2 by a replay \\(by $ME_RE\\)"
wait_until 5 "the webhook cursor is back at 5" eval '[ "$(sink deliveredId webhook)" = 5 ]'
assert_eq 1 "$(sink replays webhook)" "the replay is counted"
assert_eq "5 5" "$(wc -l <"$OUT" | tr -d ' ') $(sink deliveredId jsonl)" \
    "the JSONL sink did not move"

# ---------------------------------------------------------------------------
step "replay jsonl --since: events 4 and 5 are appended again, byte-identical"
assert_exit 0 "$RECONCILECTL" -c "$CONF" replay jsonl --since "$MID"
assert_eq "jsonl: cursor moved from 5 to 3 by $ME; events from 4 on are delivered again" \
    "$(out)" "replay --since finds event 4"
wait_until 10 "seven lines in the file" eval '[ "$(wc -l <"$OUT")" -ge 7 ]'
wait_until 5 "the jsonl cursor is back at 5" eval '[ "$(sink deliveredId jsonl)" = 5 ]'
assert_eq 7 "$(wc -l <"$OUT" | tr -d ' ')" "exactly events 4 and 5 again"
head -n 5 "$OUT" | cmp -s - "$T/first.jsonl" || fail "the first five lines changed"
sed -n '4,5p' "$T/first.jsonl" >"$T/want"
tail -n 2 "$OUT" | cmp - "$T/want" || fail "lines 6-7 are not events 4-5 byte for byte"
assert_log "events jsonl $OUT: cursor moved from 5 to 3 by a replay \\(by $ME_RE\\)"
assert_eq "$ME jsonl 5 3
$ME webhook 5 2" "$(python3 -c 'import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
for r in db.execute("SELECT by_user, sink, from_id, to_id FROM replays ORDER BY sink"):
    print(*r)' "$LEDGER")" "the ledger keeps who replayed what"

# ---------------------------------------------------------------------------
step "a replay in the middle of a burst skips nothing"
before=$(last_event_id)
post_n paid-burst 1 30 &
burst=$!
wait_until 10 "the burst has begun" eval '[ "$(last_event_id)" -ge $((before + 3)) ]'
assert_exit 0 "$RECONCILECTL" -c "$CONF" replay jsonl --from 1
assert_exit 0 "$RECONCILECTL" -c "$CONF" replay webhook --from 1
wait "$burst" || fail "posting the burst failed"
wait_until 20 "35 events delivered to both" eval '[ "$(last_event_id)" = 35 ] && caught_up'
# When the webhook sink took the replay, by the daemon's log.
noticed=$(grep -E "webhook http://127.0.0.1:$HOOK_PORT: cursor moved from [0-9]+ to 0 by a replay" \
    "$DAEMON_LOG" | tail -n 1 | cut -d' ' -f1)
[ -n "$noticed" ] || fail "the daemon did not log the webhook replay to 0"
REPLAYED_AT=$(date -d "$noticed" +%s.%N)
# From the last line of event 1 on, the file holds every event once, in
# order: what the sink wrote after it took the replay.
ctl events --json --limit 1000 >"$T/all.jsonl"
first1=$(head -n 1 "$T/all.jsonl")
n=$(grep -nxF "$first1" "$OUT" | tail -n 1 | cut -d: -f1)
tail -n +"$n" "$OUT" | cmp - "$T/all.jsonl" ||
    fail "after the replay the file does not hold events 1..35 exactly"
# Every event got a 2xx after the sink took the replay.
jq -r .key "$T/all.jsonl" | sort -u >"$T/keys"
jq -r --argjson t "$REPLAYED_AT" 'select(.at > $t and (.answer | startswith("2"))) | .id' \
    "$HOOKS" | sort -u >"$T/got"
missing=$(comm -23 "$T/keys" "$T/got")
assert_eq "" "$missing" "every event is delivered to the webhook after the replay"

# ---------------------------------------------------------------------------
step "sinks shows retrying after a 500, off after a 410, ok after a reload"
set_mode 500
post_order paid-state-1 5
wait_until 10 "the webhook is retrying" eval '[ "$(sink state webhook)" = retrying ]'
assert_eq "answered HTTP 500" "$(sink lastError webhook)" "the last error"
assert_eq 1 "$(sink lag webhook)" "one event waits"
assert_match "^webhook    retrying          35        1  20[0-9-]+T[0-9:.]+Z answered HTTP 500$" \
    "$(ctl sinks | grep '^webhook')" "the text line"
set_mode 410
wait_until 15 "the webhook is off" eval '[ "$(sink state webhook)" = off ]'
assert_eq "answered 410 Gone" "$(sink lastError webhook)" "the 410 is the last error"
set_mode
hup_daemon
wait_until 10 "the webhook delivers again" eval '[ "$(sink state webhook)" = ok ] && caught_up'
assert_eq "answered 410 Gone" "$(sink lastError webhook)" "the last error is kept once ok"
assert_eq "ok" "$(sink state jsonl)" "the JSONL sink never failed"
pass
