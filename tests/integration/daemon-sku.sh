#!/bin/sh
# Toss decides what was bought, end to end: the real daemon polls toss-sim
# (scenarios/sku.json). An answer's sku becomes the order's and its events'
# (skuConfirmed true); an answer without one leaves the intake's (false);
# an intake sku Toss contradicts is never granted: mismatch, with both
# skus in the event, a warning and reconciled_sku_mismatches_total, which
# survives a restart. A grant keeps its sku when Toss later names another.
. "$top_srcdir/tests/integration/lib-daemon.sh"

start_sim "$SCENARIOS/sku.json"
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=400ms
write_daemon_config
use_control_sock

step "import: what the buyer's client claimed"
import_orders <<'JSON'
{"orderId":"sku-same","userKey":"2001","sku":"ait.CHEAP"}
{"orderId":"sku-wrong","userKey":"2002","sku":"ait.EXPENSIVE"}
{"orderId":"sku-old-answer","userKey":"2003","sku":"ait.CHEAP"}
{"orderId":"sku-from-toss","userKey":"2004"}
{"orderId":"sku-refund","userKey":"2005","sku":"ait.CHEAP"}
{"orderId":"sku-changed","userKey":"2006","sku":"ait.CHEAP"}
JSON

EXPECTED_STATES="sku-changed granted
sku-from-toss granted
sku-old-answer granted
sku-refund refunded
sku-same granted
sku-wrong mismatch"

states()
{
	orders_json | jq -r '.orderId + " " + .state' | LC_ALL=C sort
}

settled()
{
	[ "$(states)" = "$EXPECTED_STATES" ] && has_event sku-changed anomaly
}

step "run the daemon until every order has settled"
start_daemon
wait_until 20 "every order is in its expected state" settled
sleep 1
assert_eq "$EXPECTED_STATES" "$(states)" "final states"

step "events"
assert_events_unique
assert_eq "grant" "$(event_types sku-same)" "sku-same events"
assert_eq "mismatch" "$(event_types sku-wrong)" "a contradicted sku is never granted"
assert_eq "grant" "$(event_types sku-old-answer)" "sku-old-answer events"
assert_eq "grant" "$(event_types sku-from-toss)" "sku-from-toss events"
assert_eq "grant refund" "$(event_types sku-refund)" "sku-refund events"
assert_eq "grant anomaly" "$(event_types sku-changed)" "sku-changed events"
assert_eq 8 "$(event_count)" "8 events in all"

payload()
{
	events_json | jq -c --arg id "$1" --arg t "$2" \
	    'select(.orderId == $id and .type == $t) | del(.id, .at)'
}
assert_eq '{"key":"sku-same:grant","type":"grant","orderId":"sku-same","userKey":"2001","sku":"ait.CHEAP","ref":null,"tossStatus":"PAYMENT_COMPLETED","reason":"결제가 완료되었어요.","statusDeterminedAt":"2025-09-25T16:30:00+09:00","skuConfirmed":true}' \
    "$(payload sku-same grant)" "Toss confirmed the intake's sku"
assert_eq '{"key":"sku-wrong:mismatch","type":"mismatch","orderId":"sku-wrong","userKey":"2002","sku":"ait.CHEAP","ref":null,"tossStatus":"PAYMENT_COMPLETED","reason":"결제가 완료되었어요.","statusDeterminedAt":"2025-09-25T16:31:00+09:00","skuConfirmed":true,"intakeSku":"ait.EXPENSIVE"}' \
    "$(payload sku-wrong mismatch)" "the mismatch names Toss's sku and the intake's"
assert_eq '{"key":"sku-old-answer:grant","type":"grant","orderId":"sku-old-answer","userKey":"2003","sku":"ait.CHEAP","ref":null,"tossStatus":"PURCHASED","reason":"구매가 완료되었어요.","statusDeterminedAt":"2025-09-25T16:32:00+09:00","skuConfirmed":false}' \
    "$(payload sku-old-answer grant)" "no sku from Toss: the intake's, unconfirmed"
assert_eq "ait.CHEAP true" "$(event_field sku-from-toss grant 'sku + " " + (.skuConfirmed | tostring)')" \
    "no sku at intake: Toss's"
assert_eq "ait.CHEAP true" "$(event_field sku-refund grant 'sku + " " + (.skuConfirmed | tostring)')" \
    "sku-refund grant"
assert_eq "ait.CHEAP true true" "$(event_field sku-refund refund 'sku + " " + (.skuConfirmed | tostring) + " " + (.granted | tostring)')" \
    "a refund keeps the sku of the grant"
assert_eq "ait.CHEAP PAYMENT_COMPLETED" "$(event_field sku-changed anomaly 'sku + " " + .tossStatus')" \
    "Toss naming another sku after the grant: an anomaly, the grant's sku kept"
assert_eq "" "$(events_json | jq -c 'select(has("skuConfirmed") | not)')" \
    "every event carries skuConfirmed"
assert_eq "" "$(events_json | jq -c 'select(.type != "mismatch" and has("intakeSku"))')" \
    "only mismatch events carry intakeSku"

step "orders"
assert_eq "mismatch ait.CHEAP ait.EXPENSIVE true null null" \
    "$(order_jq sku-wrong '"\(.state) \(.sku) \(.intakeSku) \(.skuConfirmed) \(.grantedAt) \(.nextPollAt)"')" \
    "sku-wrong: Toss's sku, the intake's kept apart, nothing left to do"
assert_eq "granted ait.CHEAP true" "$(order_jq sku-changed '"\(.state) \(.sku) \(.skuConfirmed)"')" \
    "sku-changed keeps its grant and its sku"
assert_eq "ait.CHEAP null true" "$(order_jq sku-from-toss '"\(.sku) \(.intakeSku) \(.skuConfirmed)"')" \
    "sku-from-toss order"
assert_eq "ait.CHEAP false" "$(order_jq sku-old-answer '"\(.sku) \(.skuConfirmed)"')" \
    "sku-old-answer order"

step "log lines and the metric"
assert_log 'warning: order sku-wrong: sku mismatch: Toss says "ait.CHEAP", the intake said "ait.EXPENSIVE"; not granted, pending -> mismatch$'
assert_log 'warning: order sku-changed: Toss now says sku "ait.OTHER" for an order granted under "ait.CHEAP"; it keeps that sku, a human should look$'
assert_log 'warning: order sku-refund: Toss now says sku "ait.OTHER" for an order granted under "ait.CHEAP"'
assert_no_log 'order sku-wrong: pending -> granted' "sku-wrong was never granted"
assert_eq 200 "$(control GET /metrics)" "GET /metrics"
assert_eq 3 "$(awk '$1 == "reconciled_sku_mismatches_total" { print $2 }' "$T/control.body")" \
    "sku-wrong, sku-refund and sku-changed counted once each"

stop_st=0
stop_daemon || stop_st=$?
assert_eq 0 "$stop_st" "SIGTERM: exit 0"

step "the count survives a restart"
start_daemon
wait_until 10 "the control API answers" eval '[ "$(control GET /metrics)" = 200 ]'
assert_eq 3 "$(awk '$1 == "reconciled_sku_mismatches_total" { print $2 }' "$T/control.body")" \
    "reconciled_sku_mismatches_total after a restart"
stop_st=0
stop_daemon || stop_st=$?
assert_eq 0 "$stop_st" "SIGTERM: exit 0"
events_json >"$T/ev-all.jsonl"
check_events "$T/ev-all.jsonl"
head -n 3 "$T/ev-all.jsonl"; grep intakeSku "$T/ev-all.jsonl" | head -n 2
pass
