#!/bin/sh
# 429 with Retry-After pauses the whole poller, not just one order: one
# order answers 429 (Retry-After: 2) while four others are being polled
# every 100ms..1s. The simulator's request log must show silence for the
# Retry-After, the daemon must say it paused and resumed, the paused
# attempt must not count as an error, and everything settles afterwards.
. "$top_srcdir/tests/integration/lib-daemon.sh"

start_sim "$SCENARIOS/pause-429.json"
write_daemon_config
import_orders <<'EOF'
{"orderId":"q-429","userKey":"5000"}
{"orderId":"q-w1","userKey":"5001"}
{"orderId":"q-w2","userKey":"5002"}
{"orderId":"q-w3","userKey":"5003"}
{"orderId":"q-w4","userKey":"5004"}
EOF

step "run until the 429 has been served and everything has settled"
start_daemon
wait_until 15 "every order is granted" \
    eval '[ "$(count_state granted)" = 5 ]'

step "one 429, then silence for its Retry-After"
assert_eq 1 "$(sim_count 'select(.outcome == "fault:rate429")')" "429s served"
assert_eq 1 "$(sim_count 'select(.outcome == "fault:rate429" and .orderId == "q-429" and .http == 429)')" \
    "the 429 went to q-429"
t429=$(jq -r 'select(.outcome == "fault:rate429") | .t' "$SIM_LOG")
# When the daemon paused (its log's clock is the simulator's: one host).
tpause=$(first_log_ms 'poller: paused')
assert_ge "$t429" "$tpause" "the pause follows the 429"
# From the pause until Retry-After is over, nothing may be asked: the
# daemon logs each decision to ask ("asking Toss").
asked=$(grep -F ': asking Toss' "$DAEMON_LOG" | log_ms |
    jq -c --argjson a "$tpause" --argjson b $((tpause + 1900)) 'select(. > $a and . < $b)')
assert_eq "" "$asked" "requests decided during the Retry-After pause (paused at $tpause)"
# A request decided just before the pause may still arrive after it (a slow
# handshake in a sanitizer build takes a few hundred ms); none may arrive
# in the pause's second half.
quiet=$(jq -c --argjson a $((tpause + 1000)) --argjson b $((tpause + 1900)) \
    'select(.t > $a and .t < $b)' "$SIM_LOG")
assert_eq "" "$quiet" "requests arriving late in the Retry-After pause (429 served at $t429, paused at $tpause)"
after=$(sim_count "select(.t >= $((tpause + 1900)) and (.orderId | startswith(\"q-w\")))")
assert_ge 4 "$after" "the waiting orders are polled again after the pause"
before=$(grep -F ': asking Toss' "$DAEMON_LOG" | log_ms |
    jq -c --argjson a "$tpause" 'select(. <= $a)' | wc -l | tr -d ' ')
assert_ge 5 "$before" "requests decided before the pause (all five claimed at once)"
assert_eq 1 "$(sim_count 'select(.orderId == "q-429" and .outcome == "status:PAYMENT_COMPLETED")')" \
    "q-429 is asked once after the pause and granted"

step "log lines"
assert_log 'warning: poller: paused: HTTP 429 rate limited, Retry-After 2s$'
assert_log 'poller: resumed after the rate_limited pause'
assert_eq 1 "$(log_count 'poller: paused')" "one pause"

step "the paused attempt is not an error"
assert_eq "granted 1 0" "$(order_jq q-429 '"\(.state) \(.polls) \(.errors)"')" \
    "q-429: one real answer, no error"
for id in q-w1 q-w2 q-w3 q-w4; do
	assert_eq 0 "$(order_field $id errors)" "$id errors"
	assert_eq grant "$(event_types $id)" "$id events"
done
assert_eq grant "$(event_types q-429)" "q-429 events"
assert_eq "PAYMENT_COMPLETED 2025-09-25T16:30:26+09:00" \
    "$(event_field q-429 grant 'tossStatus + " " + .statusDeterminedAt')" "q-429 grant payload"
assert_events_unique

stop_st=0
stop_daemon || stop_st=$?
assert_eq 0 "$stop_st" "SIGTERM: exit 0"
pass
