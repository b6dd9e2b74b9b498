#!/bin/sh
# 401/403 from Toss (credentials refused) pause the whole poller (docs/DESIGN.md),
# they are no verdict: a FAIL envelope with HTTP 401 and a SUCCESS envelope
# saying PAYMENT_COMPLETED with HTTP 403 both pause it, for 30 s, in one log
# line; nothing is asked, nothing counted as an error, /healthz names the
# pause. A SIGHUP (new credentials) probes at once; the orders then settle
# on their clean answers (the 403 one fails: it was never paid).
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
write_daemon_config
use_control_sock
fault_add xa-401 xa-403

step "401 and 403: one pause, nothing asked, nothing counted"
start_daemon
wait_until 10 "the daemon pauses" grep -q 'poller: paused' "$DAEMON_LOG"
assert_log 'warning: poller: paused for 30s: HTTP 40[13] from Toss: credentials refused$'
tpause=$(first_log_ms 'poller: paused')
assert_eq '503 {"status":"unhealthy","reason":"polling paused: auth","role":"leader"}' \
    "$(healthz)" "/healthz during the pause"
sleep 6
assert_quiet $((tpause + 100)) "$(now_ms)" "requests during the auth pause"
for id in xa-401 xa-403; do
	assert_untouched $id "during the auth pause"
	assert_eq 0 "$(order_field $id errors)" "$id: a paused attempt is not an error"
done
assert_eq 1 "$(log_count 'poller: paused')" "pause lines"

step "SIGHUP (new credentials): a probe at once, then everything settles"
hup_daemon
assert_log 'poller: configuration changed during the auth pause: probing now$'
wait_until 10 "xa-401 granted, xa-403 failed" eval \
    'state_is xa-401 granted && state_is xa-403 failed'
assert_log 'poller: resumed after the auth pause \(probe answered\)$'
assert_eq '200 {"status":"ok","role":"leader"}' "$(healthz)" "/healthz after the pause"
stop_daemon_ok
assert_ge 1 "$(sim_count 'select(.orderId == "xa-401" and .http == 401)')" "401s served"
assert_ge 1 "$(sim_count 'select(.orderId == "xa-403" and .http == 403)')" "403s served"
assert_settled xa-401 granted grant PURCHASED
assert_settled xa-403 failed failed FAILED
for id in xa-401 xa-403; do
	assert_eq 0 "$(order_field $id errors)" "$id: errors"
done
assert_events_unique
assert_eq 2 "$(event_count)" "events in all"
pass
