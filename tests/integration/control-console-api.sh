#!/bin/sh
# The control API endpoints the console uses (scripts may too), on TCP with
# a token: GET /v1/overview agreeing with `reconcilectl stats --json`,
# /v1/attention grouping held orders by status with the configuration line
# that maps them, /v1/history counting events per hour, /v1/search by
# orderId, userKey or ref, /v1/orders/{id}/history with transitions and
# events; each refused without the token, bad queries 400. The console's
# files under /ui/ load without the token, with a strict CSP.
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl jq python3

PORT=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
AUTH=c0ns0le-t0k3n

# req METHOD PATH [CURL_ARG...]: one request without the token, recorded
# for the check against docs/openapi.yaml (pass); sets CODE and BODY.
req()
{
	api_request "$@"
}

# get PATH [CURL_ARG...]: GET with the token (another method with -X).
get()
{
	_gp=$1
	_gm=GET
	shift
	[ "${1:-}" != -X ] || { _gm=$2; shift 2; }
	req "$_gm" "$_gp" -H "Authorization: Bearer $AUTH" "$@"
}

start_sim "$SCENARIOS/unknown-status.json"
write_daemon_config
sed -e "s|^listen =.*|listen = 127.0.0.1:$PORT|" "$CONF" >"$CONF.new"
printf 'token = %s\n' "$AUTH" >>"$CONF.new"
mv "$CONF.new" "$CONF"
add_order us-new 3001
add_order us-paid 3002
ctl add us-other 3001 --ref shop-42 >/dev/null || fail "reconcilectl add failed"
record_exchanges
start_daemon
wait_until 10 "us-new is held and us-paid granted" \
    eval 'state_is us-new held && state_is us-paid granted'

step "without the token: 401 for every new endpoint"
for p in /v1/overview /v1/attention /v1/history /v1/search?q=us-new \
    /v1/orders/us-new/history; do
	req GET "$p"
	assert_eq 401 "$CODE" "GET $p without the token"
done

step "GET /v1/overview agrees with reconcilectl stats --json"
get /v1/overview
assert_eq 200 "$CODE" "overview: status ($BODY)"
ctl stats --json >"$T/stats.json" || fail "reconcilectl stats failed"
for s in pending granted refunded failed not_found mismatch expired held; do
	assert_eq "$(jq -r ".orders.$s" "$T/stats.json")" \
	    "$(printf '%s' "$BODY" | jq -r ".orders.$s")" "overview: $s"
done
assert_eq "$(jq -r .events "$T/stats.json")" \
    "$(printf '%s' "$BODY" | jq -r .events)" "overview: events"
assert_eq "$(jq -r .lastEventId "$T/stats.json")" \
    "$(printf '%s' "$BODY" | jq -r .lastEventId)" "overview: lastEventId"
assert_eq leader "$(printf '%s' "$BODY" | jq -r .role)" "overview: role"

step "GET /v1/attention: the held group with its configuration line"
get /v1/attention
assert_eq 200 "$CODE" "attention: status ($BODY)"
assert_eq '{"tossStatus":"PAYMENT_PENDING_REVIEW","count":1,"example":"us-new","section":"[status]","configLine":"PAYMENT_PENDING_REVIEW = grant"}' \
    "$(printf '%s' "$BODY" | jq -c '.held[0] | del(.firstSeen, .lastSeen)')" \
    "attention: held group"
assert_eq 1 "$(printf '%s' "$BODY" | jq '.held | length')" "one held group"
first=$(printf '%s' "$BODY" | jq -r '.held[0].firstSeen')
[ "$first" != null ] || fail "attention: firstSeen is null"
assert_eq '[]' "$(printf '%s' "$BODY" | jq -c .mismatch)" "no mismatch"

step "GET /v1/history: events per hour, all in the last bucket"
get '/v1/history?hours=24'
assert_eq 200 "$CODE" "history: status ($BODY)"
assert_eq 24 "$(printf '%s' "$BODY" | jq '.counts | length')" "24 buckets"
assert_eq "$(jq -r .events "$T/stats.json")" \
    "$(printf '%s' "$BODY" | jq '.counts | add')" "history sums to the events"
assert_eq "$(jq -r .events "$T/stats.json")" \
    "$(printf '%s' "$BODY" | jq '.counts[23]')" "all in the last hour"
get '/v1/history?hours=169'
assert_eq 400 "$CODE" "hours=169"
assert_eq invalid_query "$(printf '%s' "$BODY" | jq -r .error.code)" "hours=169 code"
get '/v1/history?hours=0'
assert_eq 400 "$CODE" "hours=0"

step "GET /v1/search by orderId and userKey; a bad q is 400"
get '/v1/search?q=us-paid'
assert_eq 200 "$CODE" "search: status"
assert_eq '["us-paid"]' "$(printf '%s' "$BODY" | jq -c '[.orders[].orderId]')" "by orderId"
get '/v1/search?q=3001'
assert_eq '["us-new","us-other"]' \
    "$(printf '%s' "$BODY" | jq -c '[.orders[].orderId] | sort')" "by userKey"
get '/v1/search?q=shop-42'
assert_eq '["us-other"]' "$(printf '%s' "$BODY" | jq -c '[.orders[].orderId]')" "by ref"
get '/v1/search?q=nobody'
assert_eq '[]' "$(printf '%s' "$BODY" | jq -c .orders)" "no match"
get '/v1/search'
assert_eq 400 "$CODE" "search without q"
get "/v1/search?q=$(head -c 129 /dev/zero | tr '\0' x)"
assert_eq 400 "$CODE" "search q of 129 bytes"

step "GET /v1/orders/{id}/history: the order, its transitions and events"
get /v1/orders/us-new/history
assert_eq 200 "$CODE" "order history: status ($BODY)"
assert_eq us-new "$(printf '%s' "$BODY" | jq -r .order.orderId)" "order"
assert_eq '[{"from":null,"to":"PAYMENT_PENDING_REVIEW"}]' \
    "$(printf '%s' "$BODY" | jq -c '[.transitions[] | del(.at)]')" "transitions"
assert_eq '["held"]' "$(printf '%s' "$BODY" | jq -c '[.events[].type]')" "events"
get /v1/orders/us-nope/history
assert_eq 404 "$CODE" "unknown order"
get /v1/orders/us-new/history -X POST -H 'Content-Type: application/json'
assert_eq 405 "$CODE" "POST history"
assert_eq GET "$(hdr Allow)" "Allow for history"

step "the console's files: no token needed, CSP and X-Frame-Options"
req GET /ui/
assert_eq 200 "$CODE" "GET /ui/"
cp "$EX_BODY" "$T/page"
assert_eq "text/html; charset=utf-8" "$(hdr Content-Type)" "page type"
assert_eq "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'" \
    "$(hdr Content-Security-Policy)" "CSP"
assert_eq DENY "$(hdr X-Frame-Options)" "X-Frame-Options"
grep -q '<script src="/ui/console.js"' "$T/page" || fail "the page loads console.js"
if grep -q '<script>\|style=' "$T/page"; then
	fail "the page has inline script or style"
fi
req GET /ui/console.js
assert_eq 200 "$CODE" "GET /ui/console.js"
assert_eq "text/javascript; charset=utf-8" "$(hdr Content-Type)" "js type"
req GET /ui/console.css
assert_eq "200 text/css; charset=utf-8" "$CODE $(hdr Content-Type)" "GET /ui/console.css"
req GET /ui/favicon.svg
assert_eq "200 image/svg+xml" "$CODE $(hdr Content-Type)" "GET /ui/favicon.svg"
req HEAD /ui/
assert_eq "200 DENY" "$CODE $(hdr X-Frame-Options)" "HEAD /ui/"
req GET /ui/nope
assert_eq 404 "$CODE" "an unknown file"
req POST /ui/
assert_eq "405 GET, HEAD" "$CODE $(hdr Allow)" "POST /ui/"
step "a same-origin POST (the console's recheck) is accepted"
get /v1/orders/us-new/recheck -X POST -H "Origin: $BASE" \
    -H 'Content-Type: application/json'
assert_eq 200 "$CODE" "recheck with Origin $BASE"
get /v1/orders/us-new/recheck -X POST -H "Origin: http://127.0.0.1:1" \
    -H 'Content-Type: application/json'
assert_eq 403 "$CODE" "recheck from another origin"
get /v1/overview -H "Origin: http://127.0.0.1:1"
assert_eq 403 "$CODE" "overview from another origin"
get /v1/overview -X HEAD
assert_eq "405 GET" "$CODE $(hdr Allow)" "HEAD /v1/overview"

pass
