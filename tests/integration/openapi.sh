#!/bin/sh
# The control API's contract, docs/openapi.yaml, against the real daemon:
# the document is valid OpenAPI 3.1 (a maintained validator says so); the
# daemon serves it byte for byte at GET /v1/openapi.yaml, without the token;
# every path the routing of src/control.c knows is in the document and
# every documented path and method is served (each probed with every
# method, with and without the token); the eight event types, as the JSONL
# file and a webhook receive them, match the document's Event schema; and
# the checker itself fails on an answer or an event that drifts. Every
# answer received is checked against the document at the end (pass).
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl python3
openapi_tools || skip "needs node and npm (Debian: nodejs npm)"

TOKEN=contract-t0ken
OUT=$T/events.jsonl
HOOKS=$T/hooks.jsonl
RECV_PID=
at_exit '[ -z "$RECV_PID" ] || kill "$RECV_PID" 2>/dev/null'
KEY_TEXT='reconciled openapi test key'
SECRET=whsec_$(printf '%s' "$KEY_TEXT" | "${OPENSSL:-openssl}" base64 -A)
PROBE_ID=o-grant

# http METHOD PATH [CURL_ARG...]: one request to $BASE, recorded; sets CODE
# and BODY.
http()
{
	api_request "$@"
}

# authed METHOD PATH [CURL_ARG...]: http with the bearer token.
authed()
{
	_am=$1
	_ap=$2
	shift 2
	http "$_am" "$_ap" -H "Authorization: Bearer $TOKEN" "$@"
}

# One order for each event type; refunds once after a grant, once alone.
cat >"$T/scenario.json" <<'EOF'
{
  "orders": {
    "o-grant": {"sku": "ait.sku-1", "timeline": [{"status": "PAYMENT_COMPLETED",
        "reason": "결제가 완료되었어요.", "determinedAt": "2025-09-25T16:30:26"}]},
    "o-refund-after": {"timeline": [{"status": "PURCHASED"},
        {"after": "800ms", "status": "REFUNDED", "determinedAt": "2025-09-26T10:00:00Z"}]},
    "o-refund": {"timeline": [{"status": "REFUNDED"}]},
    "o-failed": {"timeline": [{"status": "FAILED"}]},
    "o-notfound": {"timeline": [{"status": "NOT_FOUND", "determinedAt": null}]},
    "o-mismatch": {"timeline": [{"status": "MINIAPP_MISMATCH"}]},
    "o-expired": {"timeline": [{"status": "ORDER_IN_PROGRESS"}]},
    "o-held": {"timeline": [{"status": "PAYMENT_PENDING_REVIEW"}]},
    "o-anomaly": {"timeline": [{"status": "PURCHASED"},
        {"after": "800ms", "status": "FAILED"}]}
  }
}
EOF

record_exchanges
step "docs/openapi.yaml is a valid OpenAPI 3.1 document"
openapi_check doc || fail "docs/openapi.yaml is not valid OpenAPI 3.1"
ops=$(openapi_check operations) || fail "cannot list the operations"
echo "$ops"

start_sim "$T/scenario.json"
python3 "$top_srcdir/tests/integration/webhook-recv.py" --secret "$SECRET" \
    --log "$HOOKS" --port-file "$T/hook.port" 2>>"$T/recv.err" &
RECV_PID=$!
wait_until 10 "webhook-recv.py writes its port file" test -s "$T/hook.port"
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
CFG_NOT_FOUND_GRACE=1s CFG_GIVE_UP_AFTER=2s CFG_REFUND_CHECK_MIN=200ms \
    CFG_REFUND_CHECK_MAX=500ms write_daemon_config "token = $TOKEN" \
    "[events]" "jsonl = $OUT" \
    "webhook_url = http://127.0.0.1:$(cat "$T/hook.port")/hook" \
    "webhook_secret = $SECRET"
sed -e "s|^listen =.*|listen = 127.0.0.1:$PORT|" "$CONF" >"$CONF.new"
mv "$CONF.new" "$CONF"
start_daemon

# ---------------------------------------------------------------------------
step "GET /v1/openapi.yaml: the document as built, with or without the token"
http GET /v1/openapi.yaml
assert_eq 200 "$CODE" "GET /v1/openapi.yaml without a token"
assert_eq application/yaml "$(hdr Content-Type)" "its Content-Type"
cmp -s "$EX_BODY" "$OPENAPI_DOC" ||
    fail "the served document is not docs/openapi.yaml: $(diff "$OPENAPI_DOC" "$EX_BODY" | head -n 5)"
authed GET /v1/openapi.yaml
assert_eq 200 "$CODE" "GET /v1/openapi.yaml with the token"
http GET /v1/openapi.yaml -H 'Authorization: Bearer wrong'
assert_eq 200 "$CODE" "GET /v1/openapi.yaml with a wrong token"
http HEAD /v1/openapi.yaml
assert_eq "200 application/yaml" "$CODE $(hdr Content-Type)" "HEAD /v1/openapi.yaml"
http POST /v1/openapi.yaml
assert_eq "405 GET, HEAD" "$CODE $(hdr Allow)" "POST /v1/openapi.yaml"

# ---------------------------------------------------------------------------
step "one order for each event type, through the documented endpoints"
for o in o-grant o-refund-after o-refund o-failed o-notfound o-mismatch \
    o-expired o-held o-anomaly; do
	if [ "$o" = o-grant ]; then
		authed POST /v1/orders -H 'Content-Type: application/json' \
		    -d '{"orderId":"o-grant","userKey":"101","sku":"ait.sku-1","ref":"r-1"}'
	else
		authed POST /v1/orders -H 'Content-Type: application/json' \
		    -d "{\"orderId\":\"$o\",\"userKey\":102}"
	fi
	assert_eq 201 "$CODE" "POST $o: $BODY"
done
all_types()
{
	[ "$(events_json | jq -r .type | LC_ALL=C sort -u | tr '\n' ' ')" = \
	    "anomaly expired failed grant held mismatch not_found refund " ] &&
	    [ "$(event_count refund)" = 2 ] &&
	    [ "$(ctl stats --json | jq -r '"\(.sinks.jsonl.deliveredId) \(.sinks.webhook.deliveredId)"')" = \
	    "$(ctl stats --json | jq -r '"\(.lastEventId) \(.lastEventId)"')" ]
}
wait_until 20 "every event type is written and delivered to both sinks" all_types
for o in o-grant o-refund-after o-expired o-held; do
	authed GET "/v1/orders/$o"
	assert_eq 200 "$CODE" "GET /v1/orders/$o"
done
authed GET "/v1/events?after=0&limit=1000"
assert_eq 200 "$CODE" "GET /v1/events"
assert_eq "$(events_json | jq -c .)" "$(printf '%s' "$BODY" | jq -c '.events[]')" \
    "the feed holds every event"
authed POST /v1/orders/o-held/recheck
assert_eq 200 "$CODE" "recheck o-held"
authed GET /healthz
assert_eq 200 "$CODE" "GET /healthz"

# ---------------------------------------------------------------------------
step "every route of src/control.c is documented, every documented one served"
# The paths the routing compares against, from the source; a prefix (ends
# in /) also gets an id and each other literal as a tail.
lits=$(grep -o '"/[^"%]*"' "$top_srcdir/src/control.c" | tr -d '"' | LC_ALL=C sort -u)
[ -n "$lits" ] || fail "no path literal found in src/control.c"
cands=$(echo "$ops" | awk '{ print $2 }' | sed -e "s|{orderId}|$PROBE_ID|g")
for p in $lits; do
	cands="$cands
$p"
	case $p in
	/ui/)
		# The console's files: no id, no tails; an unknown name is 404.
		cands="$cands
/ui/$PROBE_ID" ;;
	*/)
		[ "$p" = / ] && continue
		cands="$cands
$p$PROBE_ID"
		for q in $lits; do
			cands="$cands
$p$PROBE_ID$q"
		done ;;
	esac
done
cands=$(echo "$cands" | LC_ALL=C sort -u)
echo "probing:" $cands
for p in $cands; do
	for m in GET HEAD POST PUT DELETE PATCH OPTIONS; do
		# Under /ui/ any other method is refused before the name is looked
		# up (405): only GET and HEAD can tell an unknown file (404).
		case $p:$m in
		/ui/"$PROBE_ID":GET | /ui/"$PROBE_ID":HEAD) ;;
		/ui/"$PROBE_ID":*) continue ;;
		esac
		authed "$m" "$p"
		[ "$CODE" != 000 ] || fail "$m $p: no answer"
	done
done
# Without the token: order data answers 401; probes, scrapers, the
# document itself and the console's files (which hold no data: the page
# asks for the token) are open.
echo "$ops" | sed -e "s|{orderId}|$PROBE_ID|g" >"$T/ops"
while read -r m p; do
	http "$m" "$p"
	case $p in
	/v1/openapi.yaml | /healthz | /metrics | /ui/*)
		assert_eq 200 "$CODE" "$m $p without the token" ;;
	*)
		assert_eq 401 "$CODE" "$m $p without the token" ;;
	esac
done <"$T/ops"
for p in /ui/ /ui/console.css /ui/console.js /ui/favicon.svg; do
	http GET "$p"
	assert_eq DENY "$(hdr X-Frame-Options)" "X-Frame-Options of $p"
	[ -n "$(hdr Content-Security-Policy)" ] || fail "$p has no Content-Security-Policy"
	[ -s "$EX_BODY" ] || fail "GET $p: an empty body"
done
http GET "/ui/$PROBE_ID"
assert_eq 404 "$CODE" "GET an unknown file of the console"
http POST /ui/
assert_eq "405 GET, HEAD" "$CODE $(hdr Allow)" "POST /ui/"

# ---------------------------------------------------------------------------
step "every event, as the JSONL file and the webhook receive it, is an Event"
jq -r 'select(.answer | startswith("2")) | .body' "$HOOKS" >"$T/bodies.jsonl"
assert_eq "$(events_json | jq -r .key | LC_ALL=C sort -u)" \
    "$(jq -r .key "$T/bodies.jsonl" | LC_ALL=C sort -u)" "the webhook got every event"
check_events "$OUT" "$T/bodies.jsonl" >"$T/check-events.out"
cat "$T/check-events.out"
assert_match 'types: anomaly expired failed grant held mismatch not_found refund' \
    "$(cat "$T/check-events.out")" "all eight types were checked"

# ---------------------------------------------------------------------------
step "the checks fail on drift"
# An answer with a status the operation does not list, a path the document
# lacks that the daemon would serve, an undocumented member of an event.
drift=$T/drift
mkdir "$drift"
printf 'GET /v1/orders/o-grant\n' >"$drift/1.req"
sed -e '1s/ 200 OK/ 202 Accepted/' "$API_LOG/1.hdrs" >"$drift/1.hdrs"
printf '{}' >"$drift/1.body"
printf 'GET /v1/secret\n' >"$drift/2.req"
cp "$API_LOG/1.hdrs" "$drift/2.hdrs"
printf '{}' >"$drift/2.body"
st=0
openapi_check exchanges "$drift" >"$T/drift.out" 2>&1 || st=$?
assert_eq 1 "$st" "the exchange check fails on drift: $(cat "$T/drift.out")"
assert_file_contains "$T/drift.out" "status 202 is not documented for GET /v1/orders/{orderId}"
assert_file_contains "$T/drift.out" "the daemon serves /v1/secret, which the document lacks"
head -n 1 "$OUT" | jq -c '. + {"extra": 1}' >"$T/drift.jsonl"
head -n 1 "$OUT" | jq -c 'del(.at)' >>"$T/drift.jsonl"
st=0
openapi_check events "$T/drift.jsonl" >"$T/drift.out" 2>&1 || st=$?
assert_eq 1 "$st" "the event check fails on drift: $(cat "$T/drift.out")"
assert_match "drift.jsonl:1: .*must NOT have additional properties" \
    "$(cat "$T/drift.out")" "an extra member is refused"
assert_match "drift.jsonl:2: .*must have required property 'at'" \
    "$(cat "$T/drift.out")" "a missing member is refused"

pass
