#!/bin/sh
# Every row of docs/DESIGN.md's status table, end to end: the real daemon polls
# toss-sim (scenarios/status-paths.json) and each order must end in its
# state with exactly its events, payloads as delivered (tossStatus, granted,
# statusDeterminedAt normalised to an offset), polls/errors counted as the
# policy says, and the log lines an operator relies on.
. "$top_srcdir/tests/integration/lib-daemon.sh"

WRONG_KEY=443731104

start_sim "$SCENARIOS/status-paths.json"
CFG_NOT_FOUND_GRACE=3s
CFG_GIVE_UP_AFTER=4s
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=1s
write_daemon_config

# The grace and give_up_after count from each order's addedAt and the
# simulator's timelines from its first request: the orders come in while
# the daemon already claims (on PostgreSQL it must win the election first),
# so their first requests follow within a tick.
step "start the daemon, then import one order per status path"
start_daemon
wait_claiming
import_orders <<EOF
{"orderId":"sp-purchased","userKey":"1001"}
{"orderId":"sp-completed","userKey":1002}
{"orderId":"sp-progress","userKey":"1003"}
{"orderId":"sp-error","userKey":"1004"}
{"orderId":"sp-failed","userKey":"1005"}
{"orderId":"sp-refunded","userKey":"1006"}
{"orderId":"sp-later-refund","userKey":"1007"}
{"orderId":"sp-notfound","userKey":"1008"}
{"orderId":"sp-absent","userKey":"1009"}
{"orderId":"sp-late","userKey":"1010"}
{"orderId":"sp-mismatch","userKey":"1011"}
{"orderId":"sp-anomaly","userKey":"1012"}
{"orderId":"sp-expire","userKey":"1013"}
{"orderId":"sp-wrongkey","userKey":"$WRONG_KEY"}
EOF
assert_eq "14 added, 0 known, 0 rejected" "$(cat "$T/import.out")" "import"

EXPECTED_STATES="sp-absent not_found
sp-anomaly granted
sp-completed granted
sp-error granted
sp-expire expired
sp-failed failed
sp-late granted
sp-later-refund refunded
sp-mismatch mismatch
sp-notfound not_found
sp-progress granted
sp-purchased granted
sp-refunded refunded
sp-wrongkey pending"

states()
{
	orders_json | jq -r '.orderId + " " + .state' | LC_ALL=C sort
}

settled()
{
	[ "$(states)" = "$EXPECTED_STATES" ] && has_event sp-anomaly anomaly
}

step "run the daemon until every order has settled"
WAIT_SHOW='echo "--- states (expected: $EXPECTED_STATES)"; states'
wait_until 25 "every order is in its expected state" settled
WAIT_SHOW=
# Granted orders keep being re-checked (200ms..1s); give duplicates, wrong
# transitions and late events a chance to show before looking.
sleep 1.5
assert_eq "$EXPECTED_STATES" "$(states)" "final states"

step "exactly the expected events, one row per (order, type)"
assert_events_unique
assert_eq "grant" "$(event_types sp-purchased)" "sp-purchased events"
assert_eq "grant" "$(event_types sp-completed)" "sp-completed events"
assert_eq "grant" "$(event_types sp-progress)" "sp-progress events"
assert_eq "grant" "$(event_types sp-error)" "sp-error events"
assert_eq "failed" "$(event_types sp-failed)" "sp-failed events"
assert_eq "refund" "$(event_types sp-refunded)" "sp-refunded events"
assert_eq "grant refund" "$(event_types sp-later-refund)" "sp-later-refund events"
assert_eq "not_found" "$(event_types sp-notfound)" "sp-notfound events"
assert_eq "not_found" "$(event_types sp-absent)" "sp-absent events"
assert_eq "grant" "$(event_types sp-late)" "sp-late events"
assert_eq "mismatch" "$(event_types sp-mismatch)" "sp-mismatch events"
assert_eq "grant anomaly" "$(event_types sp-anomaly)" "sp-anomaly events"
assert_eq "expired" "$(event_types sp-expire)" "sp-expire events"
assert_eq "" "$(event_types sp-wrongkey)" "sp-wrongkey has no event"
assert_eq 15 "$(event_count)" "15 events in all"

step "event payloads"
# payload ID TYPE: the event without its id and time.
payload()
{
	events_json | jq -c --arg id "$1" --arg t "$2" \
	    'select(.orderId == $id and .type == $t) | del(.id, .at)'
}
assert_eq '{"key":"sp-purchased:grant","type":"grant","orderId":"sp-purchased","userKey":"1001","sku":"ait.0000010000.af647449.3bd55cfd00.0000000475","ref":null,"tossStatus":"PURCHASED","reason":"구매가 완료되었어요.","statusDeterminedAt":"2025-09-25T16:30:26+09:00","skuConfirmed":true}' \
    "$(payload sp-purchased grant)" "sp-purchased grant payload"
assert_eq '{"key":"sp-completed:grant","type":"grant","orderId":"sp-completed","userKey":"1002","sku":null,"ref":null,"tossStatus":"PAYMENT_COMPLETED","reason":"결제가 완료되었어요.","statusDeterminedAt":"2025-09-25T16:30:27+09:00","skuConfirmed":false}' \
    "$(payload sp-completed grant)" "sp-completed grant payload"
assert_eq '{"key":"sp-progress:grant","type":"grant","orderId":"sp-progress","userKey":"1003","sku":null,"ref":null,"tossStatus":"PAYMENT_COMPLETED","reason":"결제가 완료되었어요.","statusDeterminedAt":"2025-09-25T16:31:00+09:00","skuConfirmed":false}' \
    "$(payload sp-progress grant)" "sp-progress grant payload"
assert_eq "PURCHASED 2025-09-25T16:32:00+09:00" \
    "$(event_field sp-error grant 'tossStatus + " " + .statusDeterminedAt')" \
    "sp-error grant payload"
assert_eq '{"key":"sp-failed:failed","type":"failed","orderId":"sp-failed","userKey":"1005","sku":null,"ref":null,"tossStatus":"FAILED","reason":"주문이 실패했어요.","statusDeterminedAt":"2025-09-25T16:33:00+09:00","skuConfirmed":false}' \
    "$(payload sp-failed failed)" "sp-failed payload"
assert_eq '{"key":"sp-refunded:refund","type":"refund","orderId":"sp-refunded","userKey":"1006","sku":null,"ref":null,"tossStatus":"REFUNDED","reason":"환불이 완료되었어요.","statusDeterminedAt":"2025-09-26T00:34:00Z","granted":false,"skuConfirmed":false}' \
    "$(payload sp-refunded refund)" "refund before any grant: granted false"
assert_eq '{"key":"sp-later-refund:grant","type":"grant","orderId":"sp-later-refund","userKey":"1007","sku":null,"ref":null,"tossStatus":"PAYMENT_COMPLETED","reason":"결제가 완료되었어요.","statusDeterminedAt":"2025-09-25T16:35:00+09:00","skuConfirmed":false}' \
    "$(payload sp-later-refund grant)" "sp-later-refund grant payload"
assert_eq '{"key":"sp-later-refund:refund","type":"refund","orderId":"sp-later-refund","userKey":"1007","sku":null,"ref":null,"tossStatus":"REFUNDED","reason":"환불이 완료되었어요.","statusDeterminedAt":"2025-09-26T10:00:00+09:00","granted":true,"skuConfirmed":false}' \
    "$(payload sp-later-refund refund)" "refund after a grant: granted true"
assert_eq '{"key":"sp-notfound:not_found","type":"not_found","orderId":"sp-notfound","userKey":"1008","sku":null,"ref":null,"tossStatus":"NOT_FOUND","reason":"주문을 찾을 수 없어요.","statusDeterminedAt":null,"skuConfirmed":false}' \
    "$(payload sp-notfound not_found)" "sp-notfound payload"
assert_eq '{"key":"sp-absent:not_found","type":"not_found","orderId":"sp-absent","userKey":"1009","sku":null,"ref":null,"tossStatus":"NOT_FOUND","reason":"주문을 찾을 수 없어요.","statusDeterminedAt":null,"skuConfirmed":false}' \
    "$(payload sp-absent not_found)" "sp-absent payload"
assert_eq "PURCHASED 2025-09-25T16:36:00+09:00" \
    "$(event_field sp-late grant 'tossStatus + " " + .statusDeterminedAt')" \
    "sp-late grant payload"
assert_eq '{"key":"sp-mismatch:mismatch","type":"mismatch","orderId":"sp-mismatch","userKey":"1011","sku":null,"ref":null,"tossStatus":"MINIAPP_MISMATCH","reason":"미니앱 정보가 일치하지 않아요.","statusDeterminedAt":null,"skuConfirmed":false,"intakeSku":null}' \
    "$(payload sp-mismatch mismatch)" "sp-mismatch payload"
assert_eq "PURCHASED 2025-09-25T16:37:00+09:00" \
    "$(event_field sp-anomaly grant 'tossStatus + " " + .statusDeterminedAt')" \
    "sp-anomaly grant payload"
assert_eq '{"key":"sp-anomaly:anomaly","type":"anomaly","orderId":"sp-anomaly","userKey":"1012","sku":null,"ref":null,"tossStatus":"FAILED","reason":"주문이 실패했어요.","statusDeterminedAt":"2025-09-25T16:38:00+09:00","skuConfirmed":false}' \
    "$(payload sp-anomaly anomaly)" "sp-anomaly anomaly payload"
assert_eq '{"key":"sp-expire:expired","type":"expired","orderId":"sp-expire","userKey":"1013","sku":null,"ref":null,"tossStatus":"ORDER_IN_PROGRESS","reason":"주문이 진행 중이에요.","statusDeterminedAt":"2025-09-25T16:39:00+09:00","skuConfirmed":false}' \
    "$(payload sp-expire expired)" "sp-expire payload"
assert_eq "" "$(events_json | jq -c 'select(.type != "refund" and has("granted"))')" \
    "only refund events carry \"granted\""
assert_eq "" "$(events_json | jq -c 'select((.id | type) != "number" or (.at | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$") | not))')" \
    "every event has a numeric id and an RFC 3339 UTC time"
assert_eq "true" "$(events_json | jq -s '[.[] | select(.orderId == "sp-later-refund")] | .[0].id < .[1].id and .[0].type == "grant"')" \
    "the grant comes before the refund"

step "polls and errors as the policy counts them"
assert_eq 0 "$(order_field sp-progress errors)" "ORDER_IN_PROGRESS is a snooze, not an error"
assert_ge 2 "$(order_field sp-progress polls)" "sp-progress was asked at least twice"
assert_ge 1 "$(order_field sp-error errors)" "status ERROR counts as an error"
assert_eq 0 "$(order_field sp-purchased errors)" "sp-purchased errors"
for id in sp-failed sp-refunded sp-mismatch; do
	assert_eq 1 "$(sim_requests $id)" "$id is asked once and never again"
	assert_eq null "$(order_field $id nextPollAt)" "$id has nothing left to do"
	assert_eq "1 0" "$(order_jq $id '"\(.polls) \(.errors)"')" "$id polls and errors"
done
assert_eq null "$(order_field sp-expire nextPollAt)" "an expired order is not polled"
# settle_age ID TYPE: ms from the order's addedAt to its TYPE event.
settle_age()
{
	_added=$(order_field "$1" addedAt)
	event_field "$1" "$2" at | jq -R --arg a "$_added" \
	    'def ms: (.[0:19] + "Z" | fromdateiso8601) * 1000 + (.[20:23] | tonumber);
	    ms - ($a | ms)'
}
for id in sp-notfound sp-absent; do
	assert_ge 3000 "$(settle_age $id not_found)" "$id: ms before not_found (grace 3s)"
	assert_ge 2 "$(order_field $id polls)" "$id was asked again during the grace"
done
assert_ge 4000 "$(settle_age sp-expire expired)" "sp-expire: ms before expired (give_up_after 4s)"
for id in sp-purchased sp-completed sp-progress sp-anomaly; do
	assert_match '^[0-9-]+T[0-9:.]+Z$' "$(order_field $id grantedAt)" "$id grantedAt"
	assert_match '^[0-9-]+T[0-9:.]+Z$' "$(order_field $id nextPollAt)" \
	    "$id is still watched for refunds"
done
assert_eq "granted FAILED" "$(order_jq sp-anomaly '.state + " " + .tossStatus')" \
    "an anomaly keeps the grant and records the status"
assert_ge 2 "$(sim_count 'select(.orderId == "sp-anomaly" and .outcome == "status:FAILED")')" \
    "sp-anomaly answered FAILED more than once (still one anomaly event)"

step "a FAIL envelope (wrong userKey) never settles the order"
assert_eq "pending 0 null" "$(order_jq sp-wrongkey '"\(.state) \(.polls) \(.tossStatus)"')" \
    "sp-wrongkey stays pending without an answer"
e1=$(order_field sp-wrongkey errors)
assert_ge 2 "$e1" "sp-wrongkey errors"
assert_ge 2 "$(sim_count 'select(.orderId == "sp-wrongkey" and .outcome == "fail:USER_KEY_MISMATCH")')" \
    "the simulator refused the wrong userKey"
wait_until 5 "sp-wrongkey keeps being retried" \
    eval '[ "$(order_field sp-wrongkey errors)" -gt '"$e1"' ]'
assert_eq pending "$(order_state sp-wrongkey)" "sp-wrongkey still pending"

step "log lines"
assert_log 'info: order sp-purchased: pending -> granted \(PURCHASED\)$'
assert_log 'info: order sp-failed: pending -> failed \(FAILED\)$'
assert_log 'info: order sp-later-refund: granted -> refunded \(REFUNDED\)$'
assert_log 'info: order sp-expire: pending -> expired \(ORDER_IN_PROGRESS\)$'
assert_log 'warning: order sp-anomaly: anomaly: granted order answered "FAILED"'
assert_log 'order sp-wrongkey \(userKey [^)]*\): FAIL answer USER_KEY_MISMATCH \(HTTP 400\); next try in '
assert_no_log "$WRONG_KEY" "a full userKey is never logged"

stop_st=0
stop_daemon || stop_st=$?
assert_eq 0 "$stop_st" "SIGTERM: exit 0"
pass
