#!/bin/sh
# Fault matrix: 429 with Retry-After. One 429 pauses the whole poller, not
# just its order, for exactly the Retry-After: in seconds ("2"), as an
# HTTP-date, and capped at an hour when it says a day. During the pause no
# request leaves, /healthz answers 503 naming the pause, the orders involved
# are rescheduled without counting an attempt, and the log says so in one
# line; afterwards one probe goes out, the poller resumes and everything
# settles as its clean answers say. SIGTERM during a long pause exits at once.
. "$top_srcdir/tests/integration/fault-lib.sh"

step "Retry-After: 2 (seconds)"
start_sim "$FAULT_SCENARIO"
write_daemon_config
use_control_sock
fault_add xq-429 xq-w1 xq-w2
start_daemon
wait_until 10 "the daemon pauses" grep -q 'poller: paused' "$DAEMON_LOG"
assert_eq '503 {"status":"unhealthy","reason":"polling paused: rate_limited","role":"leader"}' \
    "$(healthz)" "/healthz during the pause"
wait_until 20 "xq-429 and xq-w1 granted, xq-w2 failed" eval \
    'state_is xq-429 granted && state_is xq-w1 granted && state_is xq-w2 failed'
assert_eq '200 {"status":"ok","role":"leader"}' "$(healthz)" "/healthz after the pause"
stop_daemon_ok

assert_eq 1 "$(sim_count 'select(.outcome == "fault:rate429")')" "429s served"
assert_eq 1 "$(sim_count 'select(.orderId == "xq-429" and .outcome == "fault:rate429" and .http == 429)')" \
    "the 429 went to xq-429"
assert_log 'warning: poller: paused: HTTP 429 rate limited, Retry-After 2s$'
assert_eq 1 "$(log_count 'poller: paused')" "pause lines"
assert_log 'poller: resumed after the rate_limited pause \(probe answered\)$'
assert_eq 1 "$(log_count 'poller: resumed')" "resume lines"
tpause=$(first_log_ms 'poller: paused')
t429=$(jq 'select(.outcome == "fault:rate429") | .t' "$SIM_LOG")
assert_ge "$t429" "$tpause" "the pause follows the 429"
# A request started just before the pause may still arrive a moment after
# it; from then until the Retry-After is over nothing may be asked.
assert_quiet $((tpause + 100)) $((tpause + 1990)) "requests during the 2 s pause"
first=$(jq -s --argjson a $((tpause + 100)) '[.[] | select(.t > $a) | .t] | min' "$SIM_LOG")
assert_le $((tpause + 3500)) "$first" "the first request after the pause (paused at $tpause)"
for id in xq-429 xq-w1 xq-w2; do
	assert_eq 0 "$(order_field $id errors)" "$id: a paused attempt is not an error"
done
assert_settled xq-429 granted grant PURCHASED
assert_eq grant "$(event_types xq-w1)" "xq-w1 events"
assert_eq failed "$(event_types xq-w2)" "xq-w2 events"
assert_events_unique

step "Retry-After as an HTTP-date 4 s ahead"
next_run 1
date=$(LC_ALL=C date -u -d "@$(($(date +%s) + 4))" '+%a, %d %b %Y %H:%M:%S GMT')
cat >"$T/date.json" <<EOF
{"orders": {
  "xq-date": {"userKey": "5905", "timeline": [
    {"fault": "rate429", "retryAfter": "$date"},
    {"after": "1s", "status": "PAYMENT_COMPLETED", "determinedAt": "2025-09-25T16:42:00"}]},
  "xq-dw": {"userKey": "5906", "timeline": [{"status": "ORDER_IN_PROGRESS"},
    {"after": "3s", "status": "PURCHASED"}]}}}
EOF
start_sim "$T/date.json"
write_daemon_config
add_order xq-date 5905
add_order xq-dw 5906
start_daemon
wait_until 10 "the daemon pauses" grep -q 'poller: paused' "$DAEMON_LOG"
assert_log "warning: poller: paused: HTTP 429 rate limited, Retry-After [234]s\$"
pause_s=$(sed -n 's/.*poller: paused: HTTP 429 rate limited, Retry-After \([0-9]*\)s$/\1/p' "$DAEMON_LOG")
tpause=$(first_log_ms 'poller: paused')
wait_until 15 "both orders granted" eval 'state_is xq-date granted && state_is xq-dw granted'
stop_daemon_ok
assert_quiet $((tpause + 100)) $((tpause + pause_s * 1000 - 10)) \
    "requests during the ${pause_s} s pause"
assert_eq "0 0" "$(order_jq xq-date '"\(.errors) \(.polls - 1)"')" "xq-date: no error, one answer"
assert_eq "grant" "$(event_types xq-date)" "xq-date events"

step "Retry-After: 86400 is capped at an hour; SIGTERM still exits at once"
next_run 2
start_sim "$FAULT_SCENARIO"
write_daemon_config
add_order xq-long 5904
start_daemon
wait_until 10 "the daemon pauses" grep -q 'poller: paused' "$DAEMON_LOG"
assert_log 'warning: poller: paused: HTTP 429 rate limited, Retry-After 60m$'
sleep 1.5
assert_eq 1 "$(sim_count 'select(.orderId == "xq-long")')" "requests for xq-long (one 429, then quiet)"
assert_untouched xq-long
assert_eq 0 "$(order_field xq-long errors)" "xq-long: a paused attempt is not an error"
st=0
stop_daemon 5 || st=$?
assert_eq 0 "$st" "SIGTERM during the pause: exit 0"
assert_le 2000 "$STOP_ELAPSED_MS" "ms to exit on SIGTERM during the pause"
pass
