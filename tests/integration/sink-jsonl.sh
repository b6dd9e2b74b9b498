#!/bin/sh
# The JSONL sink of the real daemon against toss-sim: a missing directory
# (or a directory as the path) is a startup error, exit 78, also with -n; a
# clean run writes every event once, byte for byte the stored payload, in id
# order; a torn last line is cut on start; a cursor commit lost after the
# fsync repeats whole identical lines; kill -9 at random moments while
# 60 staggered orders settle loses nothing, duplicates only whole identical
# lines, and the "jsonl" cursor ends at the last event; every line matches
# the Event schema of docs/openapi.yaml (when node is installed). Last, the pull
# examples (examples/pull-events.sh, and examples/consumer-pull.js when node
# is installed) read the same events through GET /v1/events with a token.
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl python3

OUT=$T/events.jsonl
TOKEN=pull-t0ken
PULL_PID=
at_exit '[ -z "$PULL_PID" ] || kill -TERM "-$PULL_PID" 2>/dev/null'

# use_jsonl PATH: a daemon config with [events] jsonl = PATH and the
# control API on $CPORT with $TOKEN.
use_jsonl()
{
	CFG_REFUND_WATCH=20s CFG_REFUND_CHECK_MIN=200ms CFG_REFUND_CHECK_MAX=1s \
	    write_daemon_config "token = $TOKEN" "[events]" "jsonl = $1"
	sed -e "s|^listen =.*|listen = 127.0.0.1:$CPORT|" "$CONF" >"$CONF.new"
	mv "$CONF.new" "$CONF"
}

jsonl_cursor()
{
	ctl stats --json | jq -r '.sinks.jsonl.deliveredId // 0'
}

last_event_id()
{
	ctl stats --json | jq -r .lastEventId
}

# caught_up N: the ledger holds N events, no order is pending and the
# file's cursor reached the last event.
caught_up()
{
	ctl stats --json >"$T/stats.json" || return 1
	[ "$(jq -r '"\(.events) \(.orders.pending) \(.sinks.jsonl.deliveredId // 0)"' "$T/stats.json")" = \
	    "$1 0 $(jq -r .lastEventId "$T/stats.json")" ]
}

# set_cursor NAME ID: sets a sink's cursor in the ledger (daemon stopped).
set_cursor()
{
	if [ "$LEDGER_BACKEND" = pg ]; then
		[ "$(pg_sql reconciled "UPDATE sinks SET delivered_id = $2
		    WHERE name = '$1' RETURNING 1")" = 1 ] ||
		    fail "cannot set the $1 cursor"
		return
	fi
	python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = db.execute("UPDATE sinks SET delivered_id = ? WHERE name = ?",
    (int(sys.argv[3]), sys.argv[2])).rowcount
db.commit()
sys.exit(0 if n == 1 else 1)' "$LEDGER" "$1" "$2" || fail "cannot set the $1 cursor"
}

# settled: the 60 orders reached their last state (30 + 4 granted, 20
# refunded, 10 + 1 failed) and the file's cursor reached the last event.
settled()
{
	ctl stats --json >"$T/stats.json" || return 1
	[ "$(jq -r '"\(.orders.pending) \(.orders.granted) \(.orders.refunded) \(.orders.failed) \(.sinks.jsonl.deliveredId // 0)"' "$T/stats.json")" = \
	    "0 34 20 11 $(jq -r .lastEventId "$T/stats.json")" ]
}

# 60 orders whose outcome comes 50 to 3000 ms after their first poll: by
# NN mod 6 a grant (0-2), failed (3), a grant then a refund (4), a refund
# without a grant (5): 70 events. j-c-* are granted at once.
{
	echo '{"orders": {'
	for i in $(seq 1 60); do
		case $((i % 6)) in
		0|1|2) tl="{\"status\": \"ORDER_IN_PROGRESS\"}, {\"after\": \"$((i * 50))ms\", \"status\": \"PURCHASED\"}" ;;
		3) tl="{\"status\": \"ORDER_IN_PROGRESS\"}, {\"after\": \"$((i * 50))ms\", \"status\": \"FAILED\"}" ;;
		4) tl="{\"status\": \"PAYMENT_COMPLETED\"}, {\"after\": \"$((i * 50))ms\", \"status\": \"REFUNDED\"}" ;;
		5) tl="{\"status\": \"ORDER_IN_PROGRESS\"}, {\"after\": \"$((i * 50))ms\", \"status\": \"REFUNDED\"}" ;;
		esac
		[ "$i" = 60 ] && sep= || sep=,
		printf '  "j-%02d": {"timeline": [%s]}%s\n' "$i" "$tl" "$sep"
	done
	echo '}, "templates": [{"prefix": "j-c-", "timeline": [{"status": "PURCHASED"}]},'
	echo '  {"prefix": "j-f-", "timeline": [{"status": "FAILED"}]}]}'
} >"$T/scenario.json"
start_sim "$T/scenario.json"
CPORT=$(free_port)
BASE=http://127.0.0.1:$CPORT

# ---------------------------------------------------------------------------
step "a missing directory or a directory as the file: exit 78, with -n too"
use_jsonl "$T/nope/events.jsonl"
assert_exit 78 "$RECONCILED" -c "$CONF" -n
assert_eq "" "$(out)" "-n prints nothing on stdout"
assert_match "events jsonl $T/nope/events.jsonl: cannot open: No such file or directory" \
    "$(err)" "-n names the file and the cause"
assert_exit 78 "$RECONCILED" -c "$CONF"
assert_match "events jsonl $T/nope/events.jsonl: cannot open: No such file or directory" \
    "$(err)" "startup names the file and the cause"
[ ! -e "$T/nope" ] || fail "$T/nope was created"
[ ! -e "$LEDGER" ] || fail "the ledger was created although the config is bad"
[ "$LEDGER_BACKEND" != pg ] ||
    assert_eq "" "$(pg_sql reconciled "SELECT tablename FROM pg_tables
    WHERE schemaname = 'public'")" "no ledger made although the config is bad"
mkdir "$T/adir"
use_jsonl "$T/adir"
assert_exit 78 "$RECONCILED" -c "$CONF" -n
assert_match "events jsonl $T/adir: " "$(err)" "-n refuses a directory"
use_jsonl "$OUT"
assert_exit 0 "$RECONCILED" -c "$CONF" -n
assert_eq "configuration OK" "$(out)" "-n with a good path"
[ ! -e "$OUT" ] || fail "-n left $OUT behind"

# ---------------------------------------------------------------------------
step "a clean run: every event once, the stored payload, in id order"
start_daemon
printf '{"orderId":"j-c-%d","userKey":"%d"}\n' 1 1 2 2 3 3 | import_orders
printf '{"orderId":"j-f-1","userKey":"4"}\n' | import_orders
wait_until 10 "4 events in the file" caught_up 4
events_json >"$T/ev.jsonl"
cmp "$T/ev.jsonl" "$OUT" >/dev/null ||
    fail "$OUT differs from reconcilectl events --json: $(diff "$T/ev.jsonl" "$OUT" | head -n 20)"
assert_eq 640 "$(stat -c %a "$OUT")" "the file's mode"
st=0
stop_daemon || st=$?
assert_eq 0 "$st" "SIGTERM: exit 0"

step "a torn last line is cut at start"
printf '{"id":99999,"key":"torn' >>"$OUT"
start_daemon
# On PostgreSQL the sinks start once the daemon leads, after "polling".
wait_until 10 "the torn line is cut" \
    grep -Eq -- "events jsonl $OUT: dropped 23 bytes of a torn last line" "$DAEMON_LOG"
printf '{"orderId":"j-c-4","userKey":"5"}\n' | import_orders
wait_until 10 "5 events in the file" caught_up 5
events_json >"$T/ev.jsonl"
cmp "$T/ev.jsonl" "$OUT" >/dev/null ||
    fail "after the cut: $(diff "$T/ev.jsonl" "$OUT" | head -n 20)"

step "a crash between the fsync and the cursor's commit: the same lines again"
# Simulated: while the daemon is stopped its cursor is set back three
# events, as if the last batch had been written but its commit lost.
st=0
stop_daemon || st=$?
assert_eq 0 "$st" "SIGTERM: exit 0"
back=$(jq -r .id "$T/ev.jsonl" | tail -n 4 | head -n 1)
set_cursor jsonl "$back"
start_daemon
wait_until 5 "the cursor is back at the last event" caught_up 5
assert_eq 8 "$(grep -c . "$OUT")" "lines after the replay"
assert_eq "$(tail -n 3 "$T/ev.jsonl")" "$(tail -n 3 "$OUT")" "the last three events again, as stored"
cmp "$T/ev.jsonl" "$(head -n 5 "$OUT" >"$T/head5"; echo "$T/head5")" >/dev/null ||
    fail "the first five lines changed"

# ---------------------------------------------------------------------------
step "kill -9 at random moments while 60 orders settle"
seq 1 60 | awk '{ printf "{\"orderId\":\"j-%02d\",\"userKey\":\"%d\"}\n", $1, 100 + $1 }' |
    import_orders
# The daemon sees the import at its next look at the ledger (1 s at most).
wait_until 5 "the first of the 60 settles" eval '[ "$(ctl stats --json | jq .events)" -gt 5 ]'
# The pauses before each kill: 4 random ones from 0.2 to 1.0 s.
pauses=$(awk -v seed="$$$(date +%N)" 'BEGIN { srand(seed % 2147483647);
    for (i = 0; i < 4; i++) printf "%.2f ", 0.2 + rand() * 0.8 }')
at_kills=
for p in $pauses; do
	sleep "$p"
	kill -9 "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
	n=$(grep -c . "$OUT" || true)
	ev=$(ctl stats --json | jq -r .events)
	echo "killed after ${p}s: $ev events in the ledger, $n lines in the file"
	at_kills="$at_kills $ev"
	start_daemon
done
# Claims of requests in flight at a kill expire after timeout + 5 s.
wait_until 30 "the 60 orders settle and their events are in the file" settled
st=0
stop_daemon || st=$?
assert_eq 0 "$st" "SIGTERM: exit 0"
final=$(ctl stats --json | jq .events)
mid=0
for ev in $at_kills; do
	[ "$ev" -ge "$final" ] || mid=$((mid + 1))
done
assert_ge 1 "$mid" "kills that came while events were still being made (of $final)"

step "the file: every event, valid JSON, duplicates only whole identical lines"
events_json >"$T/ev.jsonl"
# By NN mod 6: grant, grant, grant, failed, grant + refund (or a refund
# alone when a kill swallowed the answer that would have granted it and the
# next poll came after the refund), refund.
bad=$(jq -r 'select(.orderId | test("^j-[0-9]+$")) | "\(.orderId) \(.type)"' "$T/ev.jsonl" |
    awk '{ t[$1] = t[$1] " " $2 }
    END { for (i = 1; i <= 60; i++) {
	o = sprintf("j-%02d", i); m = i % 6
	want = m <= 2 ? " grant" : m == 3 ? " failed" : m == 5 ? " refund" : " grant refund"
	if (t[o] != want && !(m == 4 && t[o] == " refund")) print o ":" t[o] " (want" want ")"
    } }')
assert_eq "" "$bad" "the events of the 60 orders"
assert_eq "" "$(tail -c 1 "$OUT" | tr -d '\n')" "the file ends with a newline"
bad=$(jq -R -r '. as $l | try (fromjson | empty) catch "line: \($l)"' "$OUT")
assert_eq "" "$bad" "every line is JSON"
jq -R -s 'split("\n") | map(select(. != "")) |
    map({key: (fromjson.key), value: .}) | from_entries' "$T/ev.jsonl" >"$T/ev.map"
bad=$(jq -R -r --slurpfile m "$T/ev.map" \
    'select(. != $m[0][fromjson.key]) | "not as stored: \(.)"' "$OUT")
assert_eq "" "$bad" "every line is its key's stored payload, byte for byte"
missing=$(LC_ALL=C sort -u "$OUT" | LC_ALL=C comm -13 - "$(LC_ALL=C sort "$T/ev.jsonl" >"$T/ev.sorted"; echo "$T/ev.sorted")")
assert_eq "" "$missing" "no event is missing from the file"
assert_eq "$(jq -r .id "$T/ev.jsonl" | tr '\n' ' ')" \
    "$(jq -r .id "$OUT" | awk '!seen[$0]++' | tr '\n' ' ')" \
    "first appearances in id order"
# Lines go up one event at a time; a step back is a replay after a kill.
bad=$(jq -r .id "$OUT" | jq -n -r --slurpfile ev "$T/ev.jsonl" '
    ($ev | to_entries | map({key: (.value.id | tostring), value: .key}) |
        from_entries) as $rank |
    [inputs | $rank[tostring]] | . as $r |
    range(1; length) | select($r[.] > $r[. - 1] and $r[.] != $r[. - 1] + 1) |
    "line \(. + 1): rank \($r[.]) after rank \($r[. - 1])"')
assert_eq "" "$bad" "no event skipped within a run of lines"
dups=$(($(grep -c . "$OUT") - $(LC_ALL=C sort -u "$OUT" | grep -c .)))
echo "$dups duplicate lines (3 from the cursor set back, any more from a kill -9)"
assert_eq "$(last_event_id)" "$(jsonl_cursor)" "the jsonl cursor is the last event id"

step "every line of the file is an Event as docs/openapi.yaml describes it"
check_events "$OUT"

# ---------------------------------------------------------------------------
step "examples/pull-events.sh reads the same events through GET /v1/events"
start_daemon
wait_claiming
wait_until 5 "the control API answers" \
    eval '[ "$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $TOKEN" "$BASE/healthz")" = 200 ]'
jq -c . "$T/ev.jsonl" >"$T/ev.norm"
RECONCILED_URL=$BASE RECONCILED_TOKEN=$TOKEN CURSOR_FILE=$T/sh.cursor \
    sh "$top_srcdir/examples/pull-events.sh" --once cat >"$T/sh.out" 2>"$T/sh.err" ||
    fail "pull-events.sh --once failed: $(cat "$T/sh.err")"
cmp "$T/ev.norm" "$T/sh.out" >/dev/null ||
    fail "pull-events.sh handed other events: $(diff "$T/ev.norm" "$T/sh.out" | head -n 10)"
assert_eq "$(last_event_id)" "$(cat "$T/sh.cursor")" "pull-events.sh stored the last id"
RECONCILED_URL=$BASE RECONCILED_TOKEN=$TOKEN CURSOR_FILE=$T/sh.cursor \
    sh "$top_srcdir/examples/pull-events.sh" --once >"$T/sh.out2" 2>>"$T/sh.err" ||
    fail "pull-events.sh --once (again) failed: $(cat "$T/sh.err")"
assert_eq "" "$(cat "$T/sh.out2")" "a second run starts from the cursor: nothing new"
RECONCILED_URL=$BASE RECONCILED_TOKEN=wrong CURSOR_FILE=$T/bad.cursor \
    timeout 3 sh "$top_srcdir/examples/pull-events.sh" --once >/dev/null 2>"$T/bad.err" || true
assert_match 'HTTP 401' "$(cat "$T/bad.err")" "a wrong token is reported"
[ ! -e "$T/bad.cursor" ] || fail "a refused poll wrote a cursor"
# The token never is on curl's command line (ps shows it to every user).
mkdir -p "$T/spy"
cat >"$T/spy/curl" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >>"$T/curl.argv"
exec "$(command -v curl)" "\$@"
EOF
chmod +x "$T/spy/curl"
PATH=$T/spy:$PATH RECONCILED_URL=$BASE RECONCILED_TOKEN=$TOKEN \
    CURSOR_FILE=$T/spy.cursor sh "$top_srcdir/examples/pull-events.sh" \
    --once >/dev/null 2>>"$T/sh.err" || fail "pull-events.sh through the spy"
[ -s "$T/curl.argv" ] || fail "pull-events.sh did not run curl"
assert_eq "" "$(grep -F -- "$TOKEN" "$T/curl.argv")" \
    "pull-events.sh keeps the token off curl's command line"
assert_eq "$(last_event_id)" "$(cat "$T/spy.cursor")" \
    "pull-events.sh through the spy took every event"

step "pull-events.sh long-polls: a new grant is handed over within a second"
RECONCILED_URL=$BASE RECONCILED_TOKEN=$TOKEN CURSOR_FILE=$T/sh.cursor \
    setsid sh "$top_srcdir/examples/pull-events.sh" >"$T/sh.live" 2>>"$T/sh.err" &
PULL_PID=$!
sleep 0.3
printf '{"orderId":"j-c-live","userKey":"77"}\n' | import_orders
wait_until 5 "pull-events.sh prints the grant" \
    grep -q "^grant j-c-live 77 (event [0-9]*)$" "$T/sh.live"
wait_until 5 "the cursor moves past the new grant" \
    eval '[ "$(cat "$T/sh.cursor")" = "$(last_event_id)" ]'
kill -TERM "-$PULL_PID"
wait "$PULL_PID" 2>/dev/null || true
PULL_PID=

if ! command -v node >/dev/null 2>&1; then
	echo "node is not installed: examples/consumer-pull.js not tested"
else
	step "examples/consumer-pull.js: the same, in order, cursor stored after processing"
	RECONCILED_URL=$BASE RECONCILED_TOKEN=$TOKEN CURSOR_FILE=$T/node.cursor \
	    node "$top_srcdir/examples/consumer-pull.js" --once >"$T/node.out" \
	    2>"$T/node.err" || fail "consumer-pull.js --once failed: $(cat "$T/node.err")"
	events_json | jq -r 'if .type == "grant" then
	    "grant \(.orderId) to user \(.userKey) (sku \(.sku), confirmed \(.skuConfirmed), event \(.id), \(.key))"
	    elif .type == "refund" then
	    "refund \(.orderId) of user \(.userKey) (event \(.id), granted \(.granted))"
	    elif .type == "mismatch" and .intakeSku != null and .intakeSku != .sku then
	    "mismatch \(.orderId): Toss says \(.sku), the intake said \(.intakeSku): not granted (event \(.id))"
	    else "\(.type) \(.orderId) (event \(.id), Toss status \(.tossStatus))" end' \
	    >"$T/node.want"
	cmp "$T/node.want" "$T/node.out" >/dev/null ||
	    fail "consumer-pull.js output: $(diff "$T/node.want" "$T/node.out" | head -n 10)"
	assert_eq "$(last_event_id)" "$(cat "$T/node.cursor")" "consumer-pull.js stored the last id"

	RECONCILED_URL=$BASE RECONCILED_TOKEN=$TOKEN CURSOR_FILE=$T/node.cursor \
	    node "$top_srcdir/examples/consumer-pull.js" >"$T/node.live" \
	    2>>"$T/node.err" &
	PULL_NODE=$!
	sleep 0.5
	printf '{"orderId":"j-c-live2","userKey":"78"}\n' | import_orders
	wait_until 5 "consumer-pull.js prints the grant" \
	    grep -q "^grant j-c-live2 to user 78 " "$T/node.live"
	t0=$(now_ms)
	kill -TERM "$PULL_NODE"
	st=0
	wait "$PULL_NODE" || st=$?
	assert_eq 0 "$st" "consumer-pull.js exits 0 on SIGTERM during a long poll"
	assert_le 2000 $(($(now_ms) - t0)) "ms consumer-pull.js took to exit"
	assert_eq 1 "$(grep -c . "$T/node.live")" "only the new grant was processed"
	assert_eq "$(last_event_id)" "$(cat "$T/node.cursor")" \
	    "the cursor moved past it (stored before the next long poll)"
fi

pass
