#!/bin/sh
# The control API of the real daemon against toss-sim: every endpoint's
# answers (201/200/409/400/413/404/405 and their JSON), POST /v1/orders
# refusing exactly what `reconcilectl import` refuses, the event feed (limit
# cap, bad numbers, a long poll that wakes within a second of an order
# settling, one that expires, a client that hangs up), /metrics agreeing
# with `reconcilectl stats --json`, /healthz going 503 while a 429 pauses
# the poller. The TCP listener needs a token (sent by http() below). Then a
# unix socket (mode 0660, removed on exit) with a bearer token: order data
# needs it, /healthz and /metrics do not. Every answer is checked against
# docs/openapi.yaml (pass).
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl python3

# use_listen ADDR [TOKEN]: sets [control] in $CONF (write_daemon_config
# leaves "listen =" empty).
use_listen()
{
	sed -e "s|^listen =.*|listen = $1|" -e '/^token =/d' "$CONF" >"$CONF.new"
	if [ -n "${2:-}" ]; then
		printf 'token = %s\n' "$2" >>"$CONF.new"
	fi
	mv "$CONF.new" "$CONF"
}

# control_up: fails unless the daemon answers on its control address soon
# after start_daemon (any HTTP answer will do).
control_up()
{
	_c_deadline=$(($(now_ms) + 5000))
	until [ "$(curl_to -s -o /dev/null -w '%{http_code}' "$BASE/healthz" 2>/dev/null)" != 000 ]; do
		[ "$(now_ms)" -lt "$_c_deadline" ] ||
		    fail "reconciled does not answer on $BASE${SOCK:+ ($SOCK)}: is the control API wired into the daemon?"
		sleep 0.05
	done
}

# http METHOD PATH [CURL_ARG...]: one request to $BASE (a POST as JSON, with
# the token $AUTH when set); sets CODE, BODY and keeps the headers in
# $EX_HDRS, the body in $EX_BODY: the files of the exchange checked against
# docs/openapi.yaml at the end (pass).
http()
{
	_m=$1
	_p=$2
	shift 2
	set -- ${AUTH:+-H "Authorization: Bearer $AUTH"} "$@"
	[ "$_m" != POST ] || set -- -H 'Content-Type: application/json' "$@"
	api_request "$_m" "$_p" "$@"
}

# expect CODE CONTENT_TYPE WHAT: checks the last answer's status and type.
expect()
{
	assert_eq "$1" "$CODE" "$3: HTTP status (body: $BODY)"
	assert_eq "$2" "$(hdr Content-Type)" "$3: Content-Type"
}

# expect_error CODE ERROR_CODE WHAT: a JSON error answer.
expect_error()
{
	expect "$1" application/json "$3"
	assert_eq "$2" "$(printf '%s' "$BODY" | jq -r .error.code)" \
	    "$3: error code"
}

# metric NAME_AND_LABELS: the value of one sample of /metrics ($T/metrics).
metric()
{
	awk -v k="$1" '$1 == k { print $2 }' "$T/metrics"
}

scrape()
{
	http GET /metrics
	expect 200 "text/plain; version=0.0.4; charset=utf-8" "GET /metrics"
	cp "$EX_BODY" "$T/metrics"
}

# last_event_id: the newest event id in the ledger.
last_event_id()
{
	ctl stats --json | jq -r .lastEventId
}

# to_ms RFC3339: unix milliseconds (GNU date).
to_ms()
{
	date -d "$1" +%s%3N
}

cat >"$T/scenario.json" <<'EOF'
{
  "orders": {
    "c-late": {"timeline": [{"status": "ORDER_IN_PROGRESS"},
        {"after": "1500ms", "status": "PURCHASED"}]},
    "c-fail": {"timeline": [{"status": "FAILED"}]},
    "c-429": {"timeline": [{"fault": "rate429", "retryAfter": 3},
        {"after": "1s", "status": "PURCHASED"}]}
  },
  "templates": [
    {"prefix": "c-paid-", "timeline": [{"status": "PAYMENT_COMPLETED",
        "determinedAt": "2025-09-25T16:30:26"}]},
    {"prefix": "c-bulk-", "timeline": [{"status": "PURCHASED"}]}
  ]
}
EOF

record_exchanges
start_sim "$T/scenario.json"
write_daemon_config
PORT=$(free_port)
AUTH=tcp-t0k3n
use_listen "127.0.0.1:$PORT" "$AUTH"
BASE=http://127.0.0.1:$PORT
SOCK=
start_daemon
control_up

# ---------------------------------------------------------------------------
step "POST /v1/orders: 201 new, 200 known, 409 another userKey"
http POST /v1/orders -d '{"orderId":"c-paid-1","userKey":"443731104","sku":"s-1","ref":"r-1"}'
expect 201 application/json "new order"
assert_eq "c-paid-1 443731104 s-1 r-1 pending" \
    "$(printf '%s' "$BODY" | jq -r '"\(.orderId) \(.userKey) \(.sku) \(.ref) \(.state)"')" \
    "the new order's JSON"
assert_eq "/v1/orders/c-paid-1" "$(hdr Location)" "Location of a new order"
assert_eq "orderId userKey sku ref state tossStatus reason statusDeterminedAt polls errors addedAt updatedAt grantedAt nextPollAt intakeSku skuConfirmed" \
    "$(printf '%s' "$BODY" | jq -r 'keys_unsorted | join(" ")')" "order JSON members"

http POST /v1/orders -d '{"orderId":"c-paid-1","userKey":443731104}'
expect 200 application/json "known order, userKey as a number"
assert_eq "c-paid-1 443731104 s-1" \
    "$(printf '%s' "$BODY" | jq -r '"\(.orderId) \(.userKey) \(.sku)"')" \
    "a known order answers the stored order"

http POST /v1/orders -d '{"orderId":"c-paid-1","userKey":"999"}'
expect_error 409 user_key_conflict "another userKey"
assert_eq 443731104 "$(order_field c-paid-1 userKey)" "the first userKey stays"

step "POST /v1/orders refuses exactly what an import line refuses"
long=$(printf '%0129d' 0)
for line in '{"orderId":"c-x"}' \
    '{"orderId":"c-x","userKey":-1}' \
    '{"orderId":"","userKey":"1"}' \
    "{\"orderId\":\"$long\",\"userKey\":\"1\"}" \
    '{"orderId":"c-x","userKey":"1","sku":5}' \
    '{"orderId":"c-\u0001","userKey":"1"}' \
    '[1,2]' 'null'; do
	printf '%s\n' "$line" >"$T/line"
	st=0
	"$RECONCILECTL" -c "$CONF" import "$T/line" >/dev/null 2>"$T/import.err" ||
	    st=$?
	assert_eq 1 "$st" "reconcilectl import refuses $line"
	want=$(sed -n 's/^line 1: //p' "$T/import.err")
	http POST /v1/orders --data-binary "@$T/line"
	expect_error 400 invalid_order "POST $line"
	assert_eq "$want" "$(printf '%s' "$BODY" | jq -r .error.message)" \
	    "the reason for $line is the import's"
done
for line in '{"orderId":"c-x",' '{"orderId":"c-x","userKey":"1"} x' ''; do
	http POST /v1/orders --data-binary "$line"
	expect_error 400 invalid_json "malformed JSON \"$line\""
done
assert_eq 0 "$(ctl list --json | jq -r 'select(.orderId == "c-x")' | wc -l | tr -d ' ')" \
    "nothing refused was added"

python3 -c 'print("{\"orderId\":\"c-big\",\"userKey\":\"1\",\"ref\":\"" + "x" * 17000 + "\"}")' >"$T/big.json"
http POST /v1/orders --data-binary "@$T/big.json"
expect_error 413 body_too_large "a 17 kB body"

# ---------------------------------------------------------------------------
step "GET /v1/orders/{id}: the order as reconcilectl shows it; 404; 400"
wait_until 10 "c-paid-1 is granted" state_is c-paid-1 granted
http GET /v1/orders/c-paid-1
expect 200 application/json "GET a known order"
assert_eq "$(order_json c-paid-1 | jq -S .)" "$(printf '%s' "$BODY" | jq -S .)" \
    "GET /v1/orders/c-paid-1 is reconcilectl show --json"

http POST /v1/orders -d '{"orderId":"c-paid-a/b %é","userKey":"7"}'
expect 201 application/json "an orderId with /, space, % and UTF-8"
assert_eq "/v1/orders/c-paid-a%2Fb%20%25%C3%A9" "$(hdr Location)" \
    "Location is %-encoded"
http GET "/v1/orders/c-paid-a%2Fb%20%25%C3%A9"
expect 200 application/json "GET a %-encoded orderId"
assert_eq "c-paid-a/b %é" "$(printf '%s' "$BODY" | jq -r .orderId)" "decoded orderId"

http GET /v1/orders/c-nope
expect_error 404 not_found "an unknown order"
http GET "/v1/orders/c-%01"
expect_error 400 invalid_order_id "a control character in the orderId"
http GET "/v1/orders/$long"
expect_error 400 invalid_order_id "a 129-byte orderId"

step "POST /v1/orders/{id}/recheck: due at once and polled again"
wait_until 10 "c-paid-a/b %é is granted" state_is "c-paid-a/b %é" granted
http POST /v1/orders -d '{"orderId":"c-fail","userKey":"8"}'
expect 201 application/json "c-fail"
wait_until 10 "c-fail failed" state_is c-fail failed
assert_eq "null 1" "$(order_jq c-fail '"\(.nextPollAt) \(.polls)"')" "a failed order is not due"
http POST /v1/orders/c-fail/recheck
expect 200 application/json "recheck"
assert_eq "c-fail failed" "$(printf '%s' "$BODY" | jq -r '"\(.orderId) \(.state)"')" \
    "recheck answers the order"
[ "$(printf '%s' "$BODY" | jq -r .nextPollAt)" != null ] ||
    fail "recheck: nextPollAt is null: $BODY"
wait_until 5 "c-fail is asked again" eval '[ "$(order_field c-fail polls)" = 2 ]'
assert_eq failed "$(order_state c-fail)" "c-fail stays failed"
http POST /v1/orders/c-nope/recheck
expect_error 404 not_found "recheck of an unknown order"

step "405 with Allow, 404 for unknown paths"
http GET /v1/orders
expect_error 405 method_not_allowed "GET /v1/orders"
assert_eq POST "$(hdr Allow)" "Allow for /v1/orders"
http DELETE /v1/orders/c-fail
expect_error 405 method_not_allowed "DELETE an order"
assert_eq GET "$(hdr Allow)" "Allow for /v1/orders/{id}"
http GET /v1/orders/c-fail/recheck
expect_error 405 method_not_allowed "GET recheck"
assert_eq POST "$(hdr Allow)" "Allow for recheck"
http POST /v1/events
expect_error 405 method_not_allowed "POST /v1/events"
assert_eq GET "$(hdr Allow)" "Allow for /v1/events"
for p in /metrics /healthz; do
	http POST "$p"
	expect_error 405 method_not_allowed "POST $p"
	assert_eq "GET, HEAD" "$(hdr Allow)" "Allow for $p"
done
for p in / /v1 /v1/orders/ /v1/orders/c-fail/x /v1/events/1 /metricsx; do
	http GET "$p"
	expect_error 404 not_found "GET $p"
done

# ---------------------------------------------------------------------------
step "GET /v1/events: payloads as stored, limit, lastId, bad numbers"
http GET /v1/events
expect 200 application/json "events"
assert_eq "$(events_json | jq -c . | head -n 100)" \
    "$(printf '%s' "$BODY" | jq -c '.events[]')" "the feed is the ledger's payloads"
assert_eq "$(last_event_id)" "$(printf '%s' "$BODY" | jq -r .lastId)" "lastId"
first=$(events_json | head -n 1 | jq -r .id)
http GET "/v1/events?after=0&limit=1"
assert_eq "1 $first" "$(printf '%s' "$BODY" | jq -r '"\(.events | length) \(.lastId)"')" \
    "limit=1: one event, lastId is its id"
http GET "/v1/events?after=$first"
assert_eq "$(events_json | jq -c "select(.id > $first)")" \
    "$(printf '%s' "$BODY" | jq -c '.events[]')" "after=$first"
http GET "/v1/events?after=1000000&wait=0"
assert_eq '{"events":[],"lastId":1000000}' "$(printf '%s' "$BODY" | jq -c .)" \
    "nothing after: empty list, lastId echoes after"
for q in after=-1 after=x after=99999999999999999999 limit=0 limit=-5 \
    limit=1.5 wait=-1 wait=abc 'after=1&limit=' 'after=%zz'; do
	http GET "/v1/events?$q"
	expect_error 400 invalid_query "?$q"
done

step "a long poll expires with an empty list"
last=$(last_event_id)
t0=$(now_ms)
http GET "/v1/events?after=$last&wait=1"
el=$(($(now_ms) - t0))
expect 200 application/json "expired long poll"
assert_eq "{\"events\":[],\"lastId\":$last}" "$(printf '%s' "$BODY" | jq -c .)" "expired poll"
assert_ge 900 "$el" "ms an expired wait=1 poll took"
assert_le 3000 "$el" "ms an expired wait=1 poll took"

step "a long poll wakes within a second of the order settling"
last=$(last_event_id)
t0=$(now_ms)
http POST /v1/orders -d '{"orderId":"c-late","userKey":"9"}'
expect 201 application/json "c-late"
http GET "/v1/events?after=$last&wait=30"
woke=$(now_ms)
expect 200 application/json "woken long poll"
assert_eq "grant c-late" "$(printf '%s' "$BODY" | jq -r '.events[] | "\(.type) \(.orderId)"')" \
    "the poll answers with c-late's grant"
at=$(to_ms "$(printf '%s' "$BODY" | jq -r '.events[0].at')")
assert_le 1000 $((woke - at)) "ms from the grant to the long poll's answer"
assert_ge 1400 $((woke - t0)) "c-late settled only after its 1.5 s (ms since the first poll began)"

step "new orders are polled at once (the kick), the feed wakes for each"
for i in 1 2 3; do
	last=$(last_event_id)
	t0=$(now_ms)
	http POST /v1/orders -d "{\"orderId\":\"c-paid-k$i\",\"userKey\":\"$i\"}"
	expect 201 application/json "c-paid-k$i"
	http GET "/v1/events?after=$last&wait=10"
	el=$(($(now_ms) - t0))
	assert_eq "grant c-paid-k$i" "$(printf '%s' "$BODY" | jq -r '.events[] | "\(.type) \(.orderId)"')" \
	    "c-paid-k$i's grant"
	# The kick, on the daemon's own clock: without it the order would wait
	# for the poller's next look at the ledger (up to 1 s).
	added=$(first_log_ms "control: order c-paid-k$i added")
	asked=$(first_log_ms "order c-paid-k$i: asking Toss")
	assert_le 200 $((asked - added)) "ms from c-paid-k$i's intake to asking Toss"
	assert_le 5000 "$el" "ms from POST c-paid-k$i to its grant in the feed"
done

step "a connection kept alive after a long poll serves the next request"
last=$(last_event_id)
out=$(curl_to -sS -H "Authorization: Bearer $AUTH" \
    "$BASE/v1/events?after=$last&wait=1" "$BASE/healthz") ||
    fail "two requests on one connection"
assert_eq "{\"events\":[],\"lastId\":$last}
{\"status\":\"ok\",\"role\":\"leader\"}" \
    "$(printf '%s\n' "$out" | jq -c 'del(.roleSince)')" \
    "a long poll, then /healthz on the same connection"

step "a client hanging up during a long poll"
last=$(last_event_id)
st=0
curl -sS -m 1 -o /dev/null -H "Authorization: Bearer $AUTH" \
    "$BASE/v1/events?after=$last&wait=20" 2>/dev/null || st=$?
assert_eq 28 "$st" "curl gave up after 1 s (timeout)"
http GET /healthz
expect 200 application/json "healthz after the hang-up"
daemon_alive || fail "reconciled died after a client left its long poll"

# ---------------------------------------------------------------------------
step "the limit is capped at 1000"
seq 1 1001 | awk '{ printf "{\"orderId\":\"c-bulk-%04d\",\"userKey\":\"%d\"}\n", $1, $1 }' |
    import_orders
http POST /v1/orders -d '{"orderId":"c-bulk-kick","userKey":"1"}'
expect 201 application/json "c-bulk-kick"
wait_until 60 "the 1002 bulk orders are granted" \
    eval '[ "$(ctl list --state granted | grep -c "^c-bulk-")" = 1002 ]'
http GET "/v1/events?after=0&limit=5000"
expect 200 application/json "limit=5000"
assert_eq 1000 "$(printf '%s' "$BODY" | jq '.events | length')" "limit=5000 gives 1000"
assert_eq "$(printf '%s' "$BODY" | jq '.events[999].id')" \
    "$(printf '%s' "$BODY" | jq .lastId)" "lastId is the 1000th event's id"
http GET "/v1/events?after=0&wait=100000"
expect 200 application/json "default limit, wait past the cap"
assert_eq 100 "$(printf '%s' "$BODY" | jq '.events | length')" "the default limit is 100"

# ---------------------------------------------------------------------------
step "/metrics agrees with reconcilectl stats --json"
scrape
ctl stats --json >"$T/stats.json" || fail "reconcilectl stats failed"
for s in pending granted refunded failed not_found mismatch expired held; do
	assert_eq "$(jq -r ".orders.$s" "$T/stats.json")" \
	    "$(metric "reconciled_orders{state=\"$s\"}")" "reconciled_orders $s"
done
assert_eq "$(jq -r .events "$T/stats.json")" "$(metric reconciled_ledger_events)" \
    "reconciled_ledger_events"
assert_eq "$(jq -r .lastEventId "$T/stats.json")" "$(metric reconciled_last_event_id)" \
    "reconciled_last_event_id"
assert_eq "$(jq -r .due "$T/stats.json")" "$(metric reconciled_due_orders)" \
    "reconciled_due_orders"
assert_eq 0 "$(metric reconciled_oldest_pending_seconds)" "no order is pending"
for ty in grant refund failed not_found mismatch expired held anomaly; do
	assert_eq "$(event_count "$ty")" \
	    "$(metric "reconciled_events_total{type=\"$ty\"}")" \
	    "reconciled_events_total $ty (a fresh ledger: since start = all)"
done
# An answer the simulator sent as the daemon's timeout struck (a loaded
# machine) is counted by the simulator only.
for st in PAYMENT_COMPLETED FAILED; do
	sim_n=$(sim_count "select(.outcome == \"status:$st\")")
	n=$(metric "reconciled_polls_total{outcome=\"status\",status=\"$st\"}")
	if [ -z "$(metric 'reconciled_polls_total{outcome="timeout",status=""}')" ]; then
		assert_eq "$sim_n" "$n" "polls answered $st, as the simulator counted them"
	else
		assert_le "$sim_n" "$n" "polls answered $st (some timed out)"
		assert_ge 1 "$n" "polls answered $st (some timed out)"
	fi
done
assert_eq "$(metric reconciled_poll_latency_seconds_count)" \
    "$(metric 'reconciled_poll_latency_seconds_bucket{le="+Inf"}')" \
    "histogram count = +Inf bucket"
polls=$(grep '^reconciled_polls_total{' "$T/metrics" | awk '{ n += $2 } END { print n + 0 }')
assert_ge "$(sim_count)" "$(metric reconciled_poll_latency_seconds_count)" \
    "a latency observed for every request the simulator answered"
assert_le "$polls" "$(metric reconciled_poll_latency_seconds_count)" \
    "latencies observed, at most one per poll"
assert_eq 1 "$(metric reconciled_up)" "reconciled_up"
assert_eq 0 "$(metric 'reconciled_paused{reason="rate_limited"}')" "not paused"
if [ "$LEDGER_BACKEND" = pg ]; then
	assert_eq "" "$(metric reconciled_ledger_bytes)" \
	    "no reconciled_ledger_bytes for a database server"
else
	assert_eq "$(stat -c %s "$LEDGER")" "$(metric reconciled_ledger_bytes)" \
	    "reconciled_ledger_bytes"
fi
assert_eq "$(date -d "$("${OPENSSL:-openssl}" x509 -noout -enddate -in "$T/certs/client.crt" | sed 's/^notAfter=//')" +%s)" \
    "$(metric reconciled_cert_expiry_seconds)" "reconciled_cert_expiry_seconds"
# Every sample line is NAME{LABELS} VALUE or NAME VALUE, every family typed.
bad=$(grep -v '^#' "$T/metrics" | grep -Ev '^reconciled_[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9]+(\.[0-9]+)?$' || true)
assert_eq "" "$bad" "malformed sample lines"

# ---------------------------------------------------------------------------
step "/healthz: 503 while a 429 pauses the poller, 200 after"
http GET /healthz
expect 200 application/json "healthz"
assert_eq '{"status":"ok","role":"leader"}' \
    "$(printf '%s' "$BODY" | jq -c 'del(.roleSince)')" "healthy"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z$' \
    "$(printf '%s' "$BODY" | jq -r .roleSince)" "roleSince: the daemon's start"
# A load balancer may probe with HEAD: the same status, no body.
assert_eq "200 0" "$(curl_to -sS -I -o /dev/null -w '%{http_code} %{size_download}' \
    "$BASE/healthz")" "HEAD /healthz: status and body bytes"
assert_eq "200 0" "$(curl_to -sS -I -o /dev/null -w '%{http_code} %{size_download}' \
    "$BASE/metrics")" "HEAD /metrics: status and body bytes"
for p in /healthz /metrics; do
	http HEAD "$p"
	assert_eq "200 " "$CODE $BODY" "HEAD $p (recorded)"
done
t_post429=$(now_ms)
http POST /v1/orders -d '{"orderId":"c-429","userKey":"10"}'
expect 201 application/json "c-429"
wait_until 5 "/healthz answers 503" \
    eval '[ "$(curl -s -o /dev/null -w "%{http_code}" "$BASE/healthz")" = 503 ]'
http GET /healthz
expect 503 application/json "healthz while paused"
assert_eq unhealthy "$(printf '%s' "$BODY" | jq -r .status)" "status while paused"
assert_match 'rate_limited|429' "$(printf '%s' "$BODY" | jq -r .reason)" \
    "the reason names the 429 pause"
scrape
assert_eq 1 "$(metric 'reconciled_paused{reason="rate_limited"}')" "paused gauge"
# When the pause began: after c-429 was posted, before this scrape.
since_ms=$(metric reconciled_paused_since_timestamp_seconds | awk '{ printf "%.0f", $1 * 1000 }')
[ "$since_ms" -ge "$t_post429" ] && [ "$since_ms" -le "$(now_ms)" ] ||
    fail "reconciled_paused_since_timestamp_seconds: $since_ms not in [$t_post429, now]"
assert_eq 1 "$(metric 'reconciled_polls_total{outcome="rate_limited",status=""}')" \
    "the 429 is counted"
wait_until 10 "c-429 is granted after the pause" state_is c-429 granted
http GET /healthz
expect 200 application/json "healthz after the pause"

stop_st=0
stop_daemon || stop_st=$?
assert_eq 0 "$stop_st" "SIGTERM: exit 0"

# ---------------------------------------------------------------------------
step "a unix socket (0660, a stale one replaced, removed on exit) with a token"
# A short path without spaces: sun_path holds 108 bytes, and [control]
# listen takes no spaces.
sockdir=$(mktemp -d /tmp/reconciled-ctl.XXXXXX)
at_exit 'rm -rf "$sockdir"'
sock=$sockdir/control.sock
python3 -c 'import socket, sys
socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$sock"
[ -S "$sock" ] || fail "no stale socket was planted"
TOKEN='t0k3n;x'
AUTH=
use_listen "unix:$sock" "$TOKEN"
start_daemon
assert_eq 660 "$(stat -c %a "$sock")" "socket mode"
BASE=http://localhost
SOCK=$sock
control_up
for p in /v1/events /v1/orders/c-fail /nope; do
	http GET "$p"
	expect_error 401 unauthorized "GET $p without a token"
	assert_eq 'Bearer realm="reconciled"' "$(hdr WWW-Authenticate)" \
	    "WWW-Authenticate on $p"
done
# Probes and scrapers need no token: neither shows order data or paths.
http GET /healthz
expect 200 application/json "GET /healthz without a token"
http GET /metrics
expect 200 "text/plain; version=0.0.4; charset=utf-8" \
    "GET /metrics without a token"
case $BODY in
*"$T/"* | *c-paid-*) fail "/metrics names a file or an order: $BODY" ;;
esac
http POST /v1/orders -H 'Authorization: Bearer wrong' -d '{"orderId":"c-paid-u","userKey":"1"}'
expect_error 401 unauthorized "a wrong token"
http POST /v1/orders -H "Authorization: Basic $TOKEN" -d '{"orderId":"c-paid-u","userKey":"1"}'
expect_error 401 unauthorized "the token, but not as Bearer"
http POST /v1/orders -H "Authorization: Bearer ${TOKEN}x" -d '{"orderId":"c-paid-u","userKey":"1"}'
expect_error 401 unauthorized "a longer token"
assert_eq 0 "$(ctl list | grep -c '^c-paid-u ' || true)" "nothing unauthorised was added"
http POST /v1/orders -H "Authorization: Bearer $TOKEN" -d '{"orderId":"c-paid-u","userKey":"1"}'
expect 201 application/json "the right token"
http GET /v1/orders/c-paid-u -H "authorization: bearer $TOKEN"
expect 200 application/json "the scheme is case-insensitive"
http GET /metrics -H "Authorization: Bearer $TOKEN"
expect 200 "text/plain; version=0.0.4; charset=utf-8" "metrics with the token"
assert_no_log "$TOKEN" "the token is never logged"

step "SIGTERM answers a held long poll before the daemon exits"
wait_until 10 "c-paid-u is granted" state_is c-paid-u granted
last=$(last_event_id)
curl_to -sS -H "Authorization: Bearer $TOKEN" -o "$T/held.body" \
    -w '%{http_code}' "$BASE/v1/events?after=$last&wait=30" >"$T/held.code" \
    2>"$T/held.err" &
held=$!
sleep 0.5
t0=$(now_ms)
stop_st=0
stop_daemon || stop_st=$?
assert_eq 0 "$stop_st" "SIGTERM: exit 0"
st=0
wait "$held" || st=$?
assert_eq 0 "$st" "the held poll's curl: $(cat "$T/held.err")"
assert_eq 200 "$(cat "$T/held.code")" "the held poll is answered"
assert_eq "{\"events\":[],\"lastId\":$last}" "$(jq -c . "$T/held.body")" \
    "the held poll's answer"
assert_le 5000 $(($(now_ms) - t0)) "ms from SIGTERM to the answer"
[ ! -e "$sock" ] || fail "the socket is still there after the daemon exited"

step "a file that is not a socket is never replaced"
echo keep >"$sock"
st=0
"$RECONCILED" -c "$CONF" >>"$DAEMON_LOG" 2>&1 || st=$?
assert_eq 1 "$st" "reconciled refuses to start"
assert_log "control: $sock exists and is not a socket"
assert_eq keep "$(cat "$sock")" "the file is untouched"
rm -f "$sock"

pass
