#!/bin/sh
# Fault matrix: the client certificate rejected. With a client certificate
# of another CA the server refuses every handshake: the poller pauses (TLS,
# 30 s; when the refusal is only suspected, first for 1 s until one probe
# confirms it) with a log line naming it, /healthz says so, and after 30 s
# exactly one probe handshake goes out; refused again, the pause goes on
# without a new warning. A reload with an expired certificate is refused (the old one is
# kept, the pause goes on). No order is touched and no attempt is an error;
# with the right certificate and SIGHUP the orders settle at once.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
CFG_CERT=$T/certs/other-client.crt
CFG_KEY=$T/certs/other-client.key
write_daemon_config
use_control_sock
fault_add xc-paid xc-refund

step "a client certificate of another CA: refused, paused for 30 s"
start_daemon
# The refusal is certain when the server's alert is read ("alert unknown
# ca"); when its reset overtakes the alert, the daemon suspects it, pauses
# 1 s and lets one probe confirm it before the 30 s pause.
wait_until 10 "the daemon pauses for 30 s" grep -q 'poller: paused for 30s' "$DAEMON_LOG"
grep 'poller: paused' "$DAEMON_LOG" >"$T/pauses"
assert_le 2 "$(wc -l <"$T/pauses")" "pause lines until the 30 s pause"
assert_eq "" "$(grep -v 'warning: poller: paused for 30s: TLS handshake failed: ' "$T/pauses" |
    grep -v 'warning: poller: paused for 1s: TLS handshake failed: connection closed right after the TLS handshake, before any answer (client certificate refused?)')" \
    "pause lines: a suspected refusal (1 s), then the 30 s pause"
assert_match 'paused for 30s: TLS handshake failed: .*([Aa]lert unknown ca|certificate required|bad certificate|certificate unknown|client certificate refused)' \
    "$(tail -n 1 "$T/pauses")" "the 30 s pause names the refusal"
npauses=$(wc -l <"$T/pauses")
tpause=$(first_log_ms 'poller: paused for 30s')
assert_eq '503 {"status":"unhealthy","reason":"polling paused: tls","role":"leader"}' \
    "$(healthz)" "/healthz during the pause"
refused=$(sim_count 'select(.outcome == "tls:refused")')
assert_ge 1 "$refused" "handshakes the simulator refused"
assert_le 3 "$refused" "handshakes before the 30 s pause (one per connection in flight, and a probe)"

step "30 s later: exactly one probe handshake, refused, still paused"
wait_until 40 "the probe handshake" eval \
    '[ "$(sim_count '"'"'select(.outcome == "tls:refused")'"'"')" -gt '"$refused"' ]'
tprobe=$(jq -s --argjson a $((tpause + 100)) '[.[] | select(.t > $a) | .t] | min' "$SIM_LOG")
assert_ge $((tpause + 29900)) "$tprobe" "the probe (paused at $tpause)"
assert_le $((tpause + 31500)) "$tprobe" "the probe (paused at $tpause)"
assert_eq $((refused + 1)) "$(sim_count 'select(.outcome == "tls:refused")')" \
    "refused handshakes: one probe after 30 s"
assert_eq "$npauses" "$(log_count 'poller: paused')" "pause lines (a failed probe stays quiet)"
assert_no_log 'poller: resumed' "resumed while the certificate is refused"
assert_eq '503 {"status":"unhealthy","reason":"polling paused: tls","role":"leader"}' \
    "$(healthz)" "/healthz after the failed probe"
for id in xc-paid xc-refund; do
	assert_untouched $id "certificate of another CA"
	assert_eq 0 "$(order_field $id errors)" "$id: a paused attempt is not an error"
done
assert_eq 0 "$(sim_count 'select(.orderId != null)')" "requests that reached the API"
assert_eq null "$(jq -r .client "$SIM_LOG" | sort -u)" \
    "the client of refused handshakes in the simulator's log"

step "an expired client certificate (SIGHUP): the reload is refused, still paused"
# Still the one probe a second after the reload: no handshake since.
n=$((refused + 1))
CFG_CERT=$T/certs/expired-client.crt
CFG_KEY=$T/certs/expired-client.key
write_daemon_config
use_control_sock
hup_daemon
assert_log 'reload failed, keeping the old configuration: client certificate [^ ]*expired-client\.crt expired on 2020-12-31T23:59:59\.000Z'
sleep 1
assert_eq "$n" "$(sim_count 'select(.outcome == "tls:refused")')" \
    "refused handshakes after the probe and the refused reload"
assert_no_log 'probing now' "a probe for a configuration that was not taken"
assert_no_log 'poller: resumed' "resumed with an expired certificate"
assert_eq '503 {"status":"unhealthy","reason":"polling paused: tls","role":"leader"}' \
    "$(healthz)" "/healthz after the refused reload"
for id in xc-paid xc-refund; do
	assert_untouched $id "expired certificate"
	assert_eq 0 "$(order_field $id errors)" "$id: a paused attempt is not an error"
done

step "the right certificate (SIGHUP): the orders settle at once"
CFG_CERT=$T/certs/client.crt
CFG_KEY=$T/certs/client.key
write_daemon_config
use_control_sock
hup_daemon
wait_until 10 "xc-paid granted, xc-refund refunded" eval \
    'state_is xc-paid granted && state_is xc-refund refunded'
assert_log 'poller: configuration changed during the tls pause: probing now$'
assert_log 'poller: resumed after the tls pause \(probe answered\)$'
assert_eq '200 {"status":"ok","role":"leader"}' "$(healthz)" "/healthz after the pause"
stop_daemon_ok
assert_xc_settled
for id in xc-paid xc-refund; do
	assert_eq 0 "$(order_field $id errors)" "$id: errors"
done
assert_eq "toss-sim client" \
    "$(jq -r 'select(.orderId != null) | .client' "$SIM_LOG" | sort -u)" \
    "the client certificate of the requests that reached the API"
pass
