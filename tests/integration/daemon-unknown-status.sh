#!/bin/sh
# The forum story (UPSTREAM.md): Toss starts answering a status nobody has
# mapped. The order must be held (one held event, a warning naming the
# status), never dropped or guessed; once the operator maps the status and
# sends SIGHUP, held orders are re-evaluated at once and granted. A bad
# configuration on SIGHUP keeps the old one running.
. "$top_srcdir/tests/integration/lib-daemon.sh"

# next_poll_in ID: seconds from now to the order's nextPollAt.
next_poll_in()
{
	_np=$(order_jq "$1" '.nextPollAt | sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601')
	echo $((_np - $(date +%s)))
}

start_sim "$SCENARIOS/unknown-status.json"
write_daemon_config
add_order us-new 3001
add_order us-paid 3002

step "an unknown status holds the order, with one held event and a warning"
start_daemon
wait_until 10 "us-new is held and us-paid granted" \
    eval 'state_is us-new held && state_is us-paid granted'
# Held orders are polled every backoff_max (1s): let it answer again.
wait_until 10 "us-new is asked three times" \
    eval '[ "$(sim_requests us-new)" -ge 3 ]'
assert_eq held "$(order_state us-new)" "us-new stays held"
assert_eq PAYMENT_PENDING_REVIEW "$(order_field us-new tossStatus)" "the status is recorded verbatim"
assert_eq held "$(event_types us-new)" "exactly one held event for us-new"
assert_eq grant "$(event_types us-paid)" "us-paid granted"
assert_eq '{"key":"us-new:held","type":"held","orderId":"us-new","userKey":"3001","sku":"ait.0000010000.af647449.3bd55cfd00.0000000999","ref":null,"tossStatus":"PAYMENT_PENDING_REVIEW","reason":"검토 중이에요.","statusDeterminedAt":"2025-09-25T16:30:26+09:00","skuConfirmed":true}' \
    "$(events_json | jq -c 'select(.type == "held") | del(.id, .at)')" "held payload"
assert_log 'warning: order us-new: unknown status "PAYMENT_PENDING_REVIEW" from Toss'
assert_eq 1 "$(log_count 'warning: order us-new: unknown status')" \
    "one warning however often the held order is polled"
assert_log 'info: order us-new: unknown status "PAYMENT_PENDING_REVIEW" from Toss'
assert_no_log 'unknown status "PURCHASED"'

step "SIGHUP re-evaluates held orders at once (still unmapped: held again)"
CFG_BACKOFF_MAX=30s
write_daemon_config
n=$(sim_requests us-new)
hup_daemon
assert_log 'info: configuration reloaded$'
wait_until 3 "us-new is asked again right after the reload" \
    eval '[ "$(sim_requests us-new)" -gt '"$n"' ]'
wait_until 3 "us-new is held until the new backoff_max" \
    eval '[ "$(next_poll_in us-new)" -ge 20 ]'
assert_eq held "$(order_state us-new)" "us-new still held"
assert_eq held "$(event_types us-new)" "still exactly one held event"
assert_log 'info: poller: 1 held order due for re-evaluation$'

step "map the status, SIGHUP: the held order is granted within a couple of seconds"
write_daemon_config "[status]" "PAYMENT_PENDING_REVIEW = grant"
t0=$(now_ms)
hup_daemon
assert_log 'info: configuration reloaded$'
wait_until 3 "us-new is granted after the reload" state_is us-new granted
elapsed=$(($(now_ms) - t0))
assert_le 2500 "$elapsed" "ms from SIGHUP to the grant"
assert_eq "held grant" "$(event_types us-new)" "one held, then one grant event"
assert_eq '{"key":"us-new:grant","type":"grant","orderId":"us-new","userKey":"3001","sku":"ait.0000010000.af647449.3bd55cfd00.0000000999","ref":null,"tossStatus":"PAYMENT_PENDING_REVIEW","reason":"검토 중이에요.","statusDeterminedAt":"2025-09-25T16:30:26+09:00","skuConfirmed":true}' \
    "$(events_json | jq -c 'select(.orderId == "us-new" and .type == "grant") | del(.id, .at)')" \
    "grant payload"
assert_log 'info: order us-new: held -> granted \(PAYMENT_PENDING_REVIEW\)$'
cp "$CONF" "$T/good.conf"
CTL_CONF=$T/good.conf

step "a bad configuration on SIGHUP is refused and the old one keeps running"
{
	cat "$T/good.conf"
	echo "[api]"
	echo "timout = 5s"
} >"$CONF"
bad_line=$(wc -l <"$CONF" | tr -d ' ')
hup_daemon
assert_log "reload failed, keeping the old configuration: $CONF:$bad_line: unknown key \"timout\" in section \\[api\\]"
daemon_alive || fail "reconciled died on a bad reload"

sed "s|^cert = .*|cert = $T/certs/missing.crt|" "$T/good.conf" >"$CONF"
hup_daemon
assert_log "reload failed, keeping the old configuration: .*$T/certs/missing.crt"
daemon_alive || fail "reconciled died on a reload naming a missing certificate"
assert_eq 2 "$(log_count 'info: configuration reloaded$')" \
    "only the two good reloads took effect"

# The old configuration (with the mapping) still runs: a new order with the
# once unknown status is granted straight away, never held.
add_order us-after 3003
add_order us-new2 3004
wait_until 5 "orders added after the bad reloads are settled" \
    eval 'state_is us-after granted && state_is us-new2 granted'
assert_eq grant "$(event_types us-after)" "us-after events"
assert_eq grant "$(event_types us-new2)" "us-new2 granted by the kept mapping, never held"
assert_events_unique

stop_st=0
stop_daemon || stop_st=$?
assert_eq 0 "$stop_st" "SIGTERM: exit 0"
pass
