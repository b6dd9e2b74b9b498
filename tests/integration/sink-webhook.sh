#!/bin/sh
# The webhook sink of the real daemon against toss-sim and webhook-recv.py:
# every event of a mixed scenario arrives signed, with the stored payload as
# its body, in event-id order (at most SINK_WEBHOOK_INFLIGHT ahead); a 500
# streak is retried (same key, same body, one probe at a time, 5 s doubling)
# until the receiver recovers; a SIGTERM and a kill -9 restart lose nothing
# (a cursor set back sends whole identical bodies again);
# a 410 disables the sink loudly (/healthz 503) until SIGHUP; a stalled and
# a reset connection are retried; every body matches the Event schema of
# docs/openapi.yaml (when node is installed). Last, examples/consumer-webhook.js takes
# real deliveries, dedupes a replay and refuses bad signatures (when node is
# installed).
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl python3

RECV=$top_srcdir/tests/integration/webhook-recv.py
HOOKS=$T/hooks.jsonl		# webhook-recv.py's log, one line per request
MODE=$T/hook.mode
INFLIGHT=8			# SINK_WEBHOOK_INFLIGHT
RECV_PID=
CONSUMER_PID=
at_exit '[ -z "$RECV_PID" ] || kill "$RECV_PID" 2>/dev/null'
at_exit '[ -z "$CONSUMER_PID" ] || kill "$CONSUMER_PID" 2>/dev/null'
: >"$HOOKS"

KEY_TEXT='reconciled sink-webhook test key'
SECRET=whsec_$(printf '%s' "$KEY_TEXT" | "${OPENSSL:-openssl}" base64 -A)

# set_mode [LINE...]: the receiver's mode file, replaced atomically (an
# empty file means ok).
set_mode()
{
	printf '%s\n' "$@" >"$MODE.tmp"
	mv "$MODE.tmp" "$MODE"
}

start_recv()
{
	python3 "$RECV" --secret "$SECRET" --log "$HOOKS" \
	    --port-file "$T/hook.port" --mode-file "$MODE" --stall-max 30 \
	    2>>"$T/recv.err" &
	RECV_PID=$!
	wait_until 10 "webhook-recv.py writes its port file" test -s "$T/hook.port"
	HOOK_PORT=$(cat "$T/hook.port")
}

# answers KEY: the receiver's answers to KEY's deliveries, in order.
answers()
{
	jq -r --arg k "$1" 'select(.id == $k) | .answer' "$HOOKS" |
	    tr '\n' ' ' | sed 's/ $//'
}

# n_delivered PREFIX: number of distinct keys starting with PREFIX that
# were answered 2xx.
n_delivered()
{
	jq -r --arg p "$1" 'select((.id | startswith($p)) and (.answer | startswith("2"))) | .id' \
	    "$HOOKS" | sort -u | wc -l | tr -d ' '
}

# post_orders: JSON Lines of orders on stdin, each POSTed to /v1/orders
# (which wakes the poller at once; reconcilectl import waits for its tick).
post_orders()
{
	while IFS= read -r _o; do
		_c=$(curl -sS -o "$T/post.out" -w '%{http_code}' \
		    -H "Authorization: Bearer $TOKEN" \
		    -H 'Content-Type: application/json' -d "$_o" \
		    "$BASE/v1/orders") ||
		    fail "POST /v1/orders $_o"
		[ "$_c" = 201 ] || fail "POST /v1/orders $_o: $_c $(cat "$T/post.out")"
	done
}

last_event_id()
{
	ctl stats --json | jq -r .lastEventId
}

webhook_cursor()
{
	ctl stats --json | jq -r '.sinks.webhook.deliveredId // 0'
}

# all_delivered: every event of the ledger was answered 2xx and the sink's
# cursor reached the last event.
all_delivered()
{
	events_json >"$T/ev.jsonl"
	jq -r .key "$T/ev.jsonl" | sort -u >"$T/ev.keys"
	jq -r 'select(.answer | startswith("2")) | .id' "$HOOKS" | sort -u \
	    >"$T/ok.keys"
	[ -z "$(comm -23 "$T/ev.keys" "$T/ok.keys")" ] &&
	    [ "$(webhook_cursor)" = "$(last_event_id)" ]
}

# check [MAX_DUPS]: what every phase must leave behind. Every
# request was signed validly with webhook-id = the event key, its body is
# exactly the stored payload of that key (`reconcilectl events --json`), so
# a key never had two bodies; every event was answered 2xx; the first
# deliveries come in event-id order, an event never sent while one
# $INFLIGHT or more places before it was still undelivered; at most
# MAX_DUPS (default 0) keys were answered 2xx more than once with no failed
# attempt logged for them.
check()
{
	jq -s . "$HOOKS" >"$T/hooks.all"
	events_json >"$T/ev.jsonl"
	# key -> payload, verbatim
	jq -R -s 'split("\n") | map(select(. != "")) |
	    map({key: (fromjson.key), value: .}) | from_entries' \
	    "$T/ev.jsonl" >"$T/ev.map"
	bad=$(jq -c 'select(.valid != true) | {id, answer, timestamp}' "$HOOKS")
	assert_eq "" "$bad" "every request carries a valid signature"
	bad=$(jq -c --slurpfile m "$T/ev.map" \
	    'select($m[0][.id] != .body) | {id, body}' "$HOOKS")
	assert_eq "" "$bad" "each body is the stored payload of its webhook-id (the key)"
	bad=$(jq -c 'select(.content_type != "application/json" or
	    (.user_agent | startswith("reconciled/") | not) or .path != "/hook" or
	    (.timestamp - .at | fabs) > 10) | {id, content_type, user_agent, path, timestamp, at}' \
	    "$HOOKS")
	assert_eq "" "$bad" "Content-Type, User-Agent, path and a current webhook-timestamp"
	all_delivered || {
		echo "--- keys never answered 2xx:" >&2
		comm -23 "$T/ev.keys" "$T/ok.keys" >&2
		fail "every event is delivered (cursor $(webhook_cursor), last event $(last_event_id))"
	}
	# The rank of each key in id order, then the ranks in order of first
	# arrival: rank r may arrive only after every rank <= r - INFLIGHT.
	bad=$(jq -n --slurpfile ev "$T/ev.jsonl" --slurpfile h "$T/hooks.all" \
	    --argjson w "$INFLIGHT" '
	    ($ev | to_entries | map({key: .value.key, value: .key}) |
	        from_entries) as $rank |
	    reduce ($h[0][] | $rank[.id]) as $r ([];
	        if any(.[]; . == $r) then . else . + [$r] end) |
	    . as $f |
	    [range(0; length) as $i | $f[$i] as $r |
	        select(([$f[0:$i][] | select(. <= $r - $w)] | length) !=
	            ([$r - $w + 1, 0] | max)) |
	        {rank: $r, before: $f[0:$i]}]') || fail "jq failed on the order check"
	assert_eq "[]" "$(printf '%s' "$bad" | jq -c .)" "first deliveries in event-id order (window $INFLIGHT)"
	# A key answered 2xx twice is fine after a failed attempt (a timeout
	# on a loaded machine); otherwise only a restart may cause it.
	dups=
	ndups=0
	for k in $(jq -r 'select(.answer | startswith("2")) | .id' "$HOOKS" | sort | uniq -d); do
		grep -q "webhook http://127.0.0.1:$HOOK_PORT: event $k: " "$DAEMON_LOG" &&
		    continue
		dups="$dups $k"
		ndups=$((ndups + 1))
	done
	assert_le "${1:-0}" "$ndups" "keys delivered (2xx) more than once without a failed attempt:$dups"
}

# Orders: one for each kind of event, a late payment and a refund after the
# grant (refund re-checks every 300 ms to 1 s during a 3 s watch); w-b-*
# are granted at once; w-r-NN pay NN*100 ms after their first poll.
{
	cat <<'EOF'
{
  "orders": {
    "w-paid": {"timeline": [{"status": "PURCHASED", "determinedAt": "2025-09-25T16:30:26"}]},
    "w-completed": {"timeline": [{"status": "PAYMENT_COMPLETED"}]},
    "w-late": {"timeline": [{"status": "ORDER_IN_PROGRESS"}, {"after": "600ms", "status": "PURCHASED"}]},
    "w-later-refund": {"timeline": [{"status": "PAYMENT_COMPLETED"}, {"after": "1s", "status": "REFUNDED"}]},
    "w-refunded": {"timeline": [{"status": "REFUNDED"}]},
    "w-failed": {"timeline": [{"status": "FAILED"}]},
EOF
	for i in $(seq 1 30); do
		printf '    "w-r-%02d": {"timeline": [{"status": "ORDER_IN_PROGRESS"}, {"after": "%dms", "status": "PURCHASED"}]},\n' \
		    "$i" $((i * 100))
	done
	cat <<'EOF'
    "w-held": {"timeline": [{"status": "SOMETHING_NEW"}]}
  },
  "templates": [{"prefix": "w-b-", "timeline": [{"status": "PURCHASED"}]}]
}
EOF
} >"$T/scenario.json"

start_sim "$T/scenario.json"
start_recv
set_mode
CFG_REFUND_WATCH=3s CFG_REFUND_CHECK_MIN=300ms CFG_REFUND_CHECK_MAX=1s \
    write_daemon_config "[events]" \
    "webhook_url = http://127.0.0.1:$HOOK_PORT/hook" \
    "webhook_secret = $SECRET" \
    "webhook_timeout = 1s"
CPORT=$(free_port)
TOKEN=wh-t0ken
sed -e "s|^listen =.*|listen = 127.0.0.1:$CPORT\ntoken = $TOKEN|" "$CONF" >"$CONF.new"
mv "$CONF.new" "$CONF"
BASE=http://127.0.0.1:$CPORT
start_daemon
wait_until 5 "the control API answers" \
    eval '[ "$(curl -s -o /dev/null -w "%{http_code}" "$BASE/healthz")" = 200 ]'

# ---------------------------------------------------------------------------
step "(a) every event of a mixed scenario arrives once, signed, as stored"
for o in w-paid w-completed w-late w-later-refund w-refunded w-failed w-held; do
	printf '{"orderId":"%s","userKey":"42"}\n' "$o"
done | import_orders
wait_until 10 "w-later-refund is refunded" state_is w-later-refund refunded
wait_until 10 "w-late is granted" state_is w-late granted
wait_until 10 "every event is delivered" all_delivered
assert_eq "w-completed:grant
w-failed:failed
w-held:held
w-late:grant
w-later-refund:grant
w-later-refund:refund
w-paid:grant
w-refunded:refund" "$(jq -r .id "$HOOKS" | LC_ALL=C sort -u)" \
    "a request for each event, no other"
assert_eq "w-later-refund:refund true
w-refunded:refund false" \
    "$(jq -r 'select(.id | endswith(":refund")) | "\(.id) \(.body | fromjson | .granted)"' "$HOOKS" | LC_ALL=C sort)" \
    "refund bodies: granted true after a grant, false without"
check 0

# ---------------------------------------------------------------------------
step "(b) a 500 streak: the first undelivered event is retried alone, 5 s doubling, then all arrive"
before=$(last_event_id)
set_mode 500
for i in 1 2 3 4; do
	printf '{"orderId":"w-b-5xx-%d","userKey":"5"}\n' "$i"
done | post_orders
wait_until 5 "four grants" eval \
    '[ "$(ctl events --json --after '"$before"' | wc -l)" = 4 ]'
K1=$(ctl events --json --after "$before" | head -n 1 | jq -r .key)
wait_until 9 "$K1 is refused twice" eval '[ "$(answers "$K1")" = "500 500" ]'
set_mode
wait_until 14 "$K1 and the others are delivered after the receiver recovers" \
    eval '[ "$(n_delivered w-b-5xx-)" = 4 ]'
assert_eq "500 500 204" "$(answers "$K1")" "$K1: refused twice, then delivered"
gaps=$(jq -r --arg k "$K1" 'select(.id == $k) | .at' "$HOOKS" |
    awk 'NR > 1 { printf "%d ", ($1 - prev) * 1000 } { prev = $1 }')
set -- $gaps
assert_ge 2400 "$1" "ms before the first retry (5 s with jitter: 2.5 to 5 s)"
assert_le 6000 "$1" "ms before the first retry (5 s with jitter: 2.5 to 5 s)"
assert_ge 4900 "$2" "ms before the second retry (10 s with jitter: 5 to 10 s)"
assert_le 11000 "$2" "ms before the second retry (10 s with jitter: 5 to 10 s)"
others=$(jq -r --arg k "$K1" 'select((.id | startswith("w-b-5xx-")) and .id != $k and .answer == "500") | .id' \
    "$HOOKS" | sort | uniq -d)
assert_eq "" "$others" "while probing, only $K1 is retried (others at most one 500 each)"
assert_log "webhook http://127.0.0.1:$HOOK_PORT: event w-b-5xx-[0-9]:grant: answered HTTP 500; retrying with backoff" \
    "one warning names the endpoint, the event and the answer"
assert_log "webhook http://127.0.0.1:$HOOK_PORT: delivering again after [0-9]+ failed attempts"
check 0

# ---------------------------------------------------------------------------
step "(c) a SIGTERM and a kill -9 while 30 events trickle in: nothing missing"
seq 1 30 | awk '{ printf "{\"orderId\":\"w-r-%02d\",\"userKey\":\"7\"}\n", $1 }' |
    post_orders
wait_until 10 "5 of the w-r orders are delivered" eval '[ "$(n_delivered w-r-)" -ge 5 ]'
st=0
stop_daemon || st=$?
assert_eq 0 "$st" "SIGTERM: exit 0"
n=$(n_delivered w-r-)
assert_le 29 "$n" "w-r events delivered before the SIGTERM (the stop must come mid-stream)"
echo "stopped with $n of 30 w-r events delivered"
start_daemon
wait_until 10 "15 of the w-r orders are delivered" eval '[ "$(n_delivered w-r-)" -ge 15 ]'
# The drain stores the cursor: an event is sent twice only when an attempt
# failed (here: an answer slower than webhook_timeout on a loaded machine).
for k in $(jq -r 'select(.answer == "204") | .id' "$HOOKS" | sort | uniq -d); do
	assert_log "webhook http://127.0.0.1:$HOOK_PORT: event $k: " \
	    "$k was delivered twice across a SIGTERM restart without a failed attempt"
done
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=
echo "killed with $(n_delivered w-r-) of 30 w-r events delivered"
# A crash between a 2xx and the cursor's commit, simulated while the daemon
# is down: the cursor goes back three events, which are sent again.
back=$(events_json | jq -r .id | awk -v c="$(webhook_cursor)" '$1 <= c' | tail -n 4 | head -n 1)
python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE sinks SET delivered_id = ? WHERE name = ?", (int(sys.argv[2]), "webhook"))
db.commit()' "$LEDGER" "$back" || fail "cannot set the webhook cursor back"
start_daemon
wait_until 20 "all w-r orders are granted" eval '[ "$(ctl list --state granted | grep -c "^w-r-")" = 30 ]'
wait_until 10 "every event is delivered after the restarts" all_delivered
check $((INFLIGHT + 3))
assert_ge 3 "$(jq -r 'select(.answer == "204") | .id' "$HOOKS" | sort | uniq -d | wc -l)" \
    "the three events after the set-back cursor were sent again"

# ---------------------------------------------------------------------------
step "(d) 410 Gone: the sink stops loudly, /healthz says why, SIGHUP resumes"
set_mode 410
printf '{"orderId":"w-b-gone-1","userKey":"8"}\n' | post_orders
wait_until 5 "the 410 is logged" \
    grep -q "webhook http://127.0.0.1:$HOOK_PORT answered 410 Gone: webhook delivery disabled" "$DAEMON_LOG"
code=$(curl -sS -o "$T/health" -w '%{http_code}' "$BASE/healthz") || fail "curl /healthz"
assert_eq 503 "$code" "/healthz while the webhook is disabled"
assert_eq '{"status":"unhealthy","reason":"webhook sink disabled (410 Gone)","role":"leader"}' \
    "$(jq -c 'del(.roleSince)' "$T/health")" "/healthz names the reason"
printf '{"orderId":"w-b-gone-2","userKey":"8"}\n' | post_orders
wait_until 5 "w-b-gone-2 is granted" state_is w-b-gone-2 granted
sleep 0.5
assert_eq 410 "$(answers w-b-gone-1:grant)" "w-b-gone-1: one attempt, answered 410"
assert_eq "" "$(answers w-b-gone-2:grant)" "nothing is sent while disabled"
assert_eq "$(events_json | jq -r -s 'map(select(.key == "w-b-gone-1:grant") | .id)[0] as $g |
    map(select(.id < $g) | .id) | max')" \
    "$(webhook_cursor)" "the cursor stops at the event before the refused one"
set_mode
hup_daemon
assert_log "webhook http://127.0.0.1:$HOOK_PORT: delivery enabled again by the new configuration"
wait_until 5 "both are delivered after SIGHUP" all_delivered
assert_eq "410 204" "$(answers w-b-gone-1:grant)" "w-b-gone-1 after SIGHUP"
assert_eq 204 "$(answers w-b-gone-2:grant)" "w-b-gone-2 after SIGHUP"
code=$(curl -sS -o "$T/health" -w '%{http_code}' "$BASE/healthz") || fail "curl /healthz"
assert_eq "200 {\"status\":\"ok\",\"role\":\"leader\"}" \
    "$code $(jq -c 'del(.roleSince)' "$T/health")" "/healthz after SIGHUP"
check $((INFLIGHT + 3))

# ---------------------------------------------------------------------------
step "(e) a stalled (timeout 1 s) and a reset connection are retried"
set_mode "stall w-b-stall:grant" "reset w-b-reset:grant"
printf '{"orderId":"w-b-stall","userKey":"9"}\n{"orderId":"w-b-reset","userKey":"9"}\n' |
    post_orders
# Whichever comes first: once w-b-stall stalled, it may pass (so w-b-reset
# is sent even if it came after the backoff started).
wait_until 8 "w-b-stall stalls" eval '[ -n "$(answers w-b-stall:grant)" ]'
set_mode "reset w-b-reset:grant"
wait_until 12 "w-b-reset is reset" eval '[ -n "$(answers w-b-reset:grant)" ]'
set_mode
wait_until 12 "both are delivered" all_delivered
assert_match '^stall( stall)* 204$' "$(answers w-b-stall:grant)" "w-b-stall: stalled, then delivered"
# libcurl itself sends a request again (up to 5 times) when a reused
# connection dies before any answer: one sink attempt may show as several.
assert_match '^(reset ){1,6}204$' "$(answers w-b-reset:grant)" \
    "w-b-reset: reset, then delivered"
assert_log "webhook http://127.0.0.1:$HOOK_PORT: event w-b-(stall|reset):grant: .*retrying with backoff"
check $((INFLIGHT + 3))
daemon_alive || fail "reconciled died"

step "every body delivered is an Event as docs/openapi.yaml describes it"
jq -r 'select(.body != null and .body != "") | .body' "$HOOKS" >"$T/bodies.jsonl"
check_events "$T/bodies.jsonl"

# ---------------------------------------------------------------------------
step "(f) a 2xx with a body past 64 KiB is a delivery, not a failure"
set_mode big
printf '{"orderId":"w-b-big","userKey":"9"}\n' | post_orders
wait_until 8 "w-b-big is delivered" all_delivered
sleep 1
assert_eq "200" "$(answers w-b-big:grant)" "w-b-big: sent once, answered 200"
assert_no_log "event w-b-big:grant: .*retrying" "no retry for a 2xx"
set_mode
check $((INFLIGHT + 3))

# ---------------------------------------------------------------------------
step "examples/consumer-webhook.js takes real deliveries, dedupes a replay, refuses bad signatures"
if ! command -v node >/dev/null 2>&1; then
	echo "node is not installed: examples/consumer-webhook.js not tested"
else
	NPORT=$(free_port)
	PORT=$NPORT WEBHOOK_SECRET=$SECRET SEEN_FILE=$T/seen.json \
	    node "$top_srcdir/examples/consumer-webhook.js" >"$T/consumer.out" \
	    2>"$T/consumer.err" &
	CONSUMER_PID=$!
	wait_until 5 "consumer-webhook.js listens" \
	    eval 'curl -s -o /dev/null "http://127.0.0.1:$NPORT/"'
	sed -e "s|^webhook_url =.*|webhook_url = http://127.0.0.1:$NPORT/webhook|" \
	    "$CONF" >"$CONF.new"
	mv "$CONF.new" "$CONF"
	hup_daemon
	before=$(last_event_id)
	printf '{"orderId":"w-b-node-1","userKey":"11"}\n{"orderId":"w-b-node-2","userKey":"12"}\n' |
	    post_orders
	wait_until 10 "the consumer took both" eval \
	    '[ "$(webhook_cursor)" = "$(last_event_id)" ] && [ "$(last_event_id)" -gt '"$before"' ]'
	assert_eq "grant w-b-node-1 to user 11
grant w-b-node-2 to user 12" \
	    "$(grep '^grant ' "$T/consumer.out" | sed 's/ (sku.*//' | LC_ALL=C sort)" \
	    "consumer-webhook.js granted each order once"
	assert_eq "w-b-node-1:grant w-b-node-2:grant" \
	    "$(jq -r '.[]' "$T/seen.json" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')" \
	    "the seen keys are persisted"

	# A replay, signed as the daemon signs (HMAC-SHA256 of id.ts.body).
	body=$(ctl events --json | grep -F '"key":"w-b-node-1:grant"')
	hexkey=$(printf '%s' "$KEY_TEXT" | od -An -tx1 | tr -d ' \n')
	post()	# post TIMESTAMP SIGNATURE_KEY_HEX: prints the status code
	{
		sig=$(printf '%s.%s.%s' w-b-node-1:grant "$1" "$body" |
		    "${OPENSSL:-openssl}" dgst -sha256 -mac HMAC -macopt "hexkey:$2" -binary |
		    "${OPENSSL:-openssl}" base64 -A)
		curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
		    -H 'webhook-id: w-b-node-1:grant' -H "webhook-timestamp: $1" \
		    -H "webhook-signature: v1,$sig" --data-binary "$body" \
		    "http://127.0.0.1:$NPORT/webhook"
	}
	now=$(date +%s)
	assert_eq 204 "$(post "$now" "$hexkey")" "a replayed delivery is acknowledged"
	assert_eq 1 "$(grep -c '^grant w-b-node-1 ' "$T/consumer.out")" "a replay grants nothing"
	assert_file_contains "$T/consumer.out" "duplicate w-b-node-1:grant: already processed"
	assert_eq 401 "$(post "$now" "00${hexkey#??}")" "a wrong key (first byte changed)"
	assert_eq 401 "$(post $((now - 400)) "$hexkey")" "a timestamp 400 s old"
	assert_eq 401 "$(curl -sS -o /dev/null -w '%{http_code}' --data-binary "$body" \
	    "http://127.0.0.1:$NPORT/webhook")" "no signature headers"
	kill "$CONSUMER_PID"
	wait "$CONSUMER_PID" 2>/dev/null || true
	CONSUMER_PID=
fi

pass
