#!/bin/sh
# Fault matrix: 429 without Retry-After. The poller pauses for its default
# 30 s (docs/DESIGN.md, "Pauses"; then one probe): one log line, no
# request at all for 30 s, /healthz 503 naming the pause, then exactly one
# probe; its answer resumes polling and both orders settle as their clean
# answers say, with the paused attempt never counted as an error.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
write_daemon_config
use_control_sock
fault_add xn-429 xn-w1

step "one 429 without Retry-After: paused for 30 s"
start_daemon
wait_until 10 "the daemon pauses" grep -q 'poller: paused' "$DAEMON_LOG"
assert_log 'warning: poller: paused for 30s: HTTP 429 rate limited, no Retry-After$'
tpause=$(first_log_ms 'poller: paused')
assert_eq '503 {"status":"unhealthy","reason":"polling paused: rate_limited","role":"leader"}' \
    "$(healthz)" "/healthz during the pause"
sleep 5
assert_untouched xn-429 "5 s into the pause"
assert_eq 0 "$(order_field xn-429 errors)" "xn-429: a paused attempt is not an error"

step "after 30 s: one probe, then everything settles"
wait_until 40 "xn-429 and xn-w1 granted" eval \
    'state_is xn-429 granted && state_is xn-w1 granted'
assert_eq '200 {"status":"ok","role":"leader"}' "$(healthz)" "/healthz after the pause"
stop_daemon_ok

assert_eq 1 "$(sim_count 'select(.outcome == "fault:noRetryAfter429" and .http == 429)')" "429s served"
t429=$(jq 'select(.outcome == "fault:noRetryAfter429") | .t' "$SIM_LOG")
assert_ge "$t429" "$tpause" "the pause follows the 429"
assert_quiet $((tpause + 100)) $((tpause + 29990)) "requests during the 30 s pause"
jq -s -c --argjson a $((tpause + 100)) '[.[] | select(.t > $a)] | sort_by(.t)' \
    "$SIM_LOG" >"$T/after"
first=$(jq '.[0].t' "$T/after")
assert_le $((tpause + 31500)) "$first" "the probe (paused at $tpause)"
assert_log 'poller: resumed after the rate_limited pause \(probe answered\)$'
assert_eq 1 "$(log_count 'poller: paused')" "pause lines"
# The probe answered before anything else was asked: the first request
# after the pause came before the resume line, the second not before it
# (both clocks in ms: a request sent right after the resume can be read in
# the same ms).
tresume=$(first_log_ms 'poller: resumed')
assert_le "$tresume" "$first" "the probe, before the resume at $tresume"
assert_ge "$tresume" "$(jq '.[1].t' "$T/after")" \
    "the request after the probe, not before the resume at $tresume"

for id in xn-429 xn-w1; do
	assert_eq 0 "$(order_field $id errors)" "$id: errors"
done
assert_settled xn-429 granted grant PURCHASED
assert_eq grant "$(event_types xn-w1)" "xn-w1 events"
assert_events_unique
assert_eq 2 "$(event_count)" "events in all"
pass
