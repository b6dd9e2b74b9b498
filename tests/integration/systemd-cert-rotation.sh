#!/bin/sh
# Rotating the client certificate under load, the way reconciled.conf(5)
# tells an operator to: the new pair under new file names, the config
# pointed at them, SIGHUP. 300 orders are being polled (answers 150 ms late,
# 32 in flight) when a first reload names a key that does not match: it is
# refused and the old pair stays in use. The second names a new valid pair
# from the same CA: requests in flight finish on the old one, new ones use
# the new one (the old files are removed right after, so any request still
# using them would fail), polling never stalls, no request fails, every
# order is granted exactly once and /metrics shows the new expiry.
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl
N=300

mkdir "$T/tls-1" "$T/tls-2" "$T/tls-bad"
cp "$T/certs/client.crt" "$T/certs/client.key" "$T/tls-1/"
cp "$T/certs/soon-client.crt" "$T/tls-2/client.crt"
cp "$T/certs/soon-client.key" "$T/tls-2/client.key"
cp "$T/certs/soon-client.crt" "$T/tls-bad/client.crt"
cp "$T/certs/client.key" "$T/tls-bad/client.key"
new_at=$(date -u -d "$("$OPENSSL" x509 -enddate -noout -in "$T/tls-2/client.crt" | sed 's/^notAfter=//')" +%s)

start_sim "$SCENARIOS/rotation.json" --latency 150
CFG_MAX_INFLIGHT=32
CFG_TIMEOUT=3s
# A rotation opens up to 32 new connections at once and the simulator makes
# their handshakes one at a time: 1 s was too short in a loaded sanitizer
# build (one connect timeout, counted as an error).
CFG_CONNECT_TIMEOUT=3s
CFG_BACKOFF_MIN=200ms
CFG_BACKOFF_MAX=1s
# config_for DIR: the daemon configuration with the pair in DIR.
config_for()
{
	CFG_CERT=$1/client.crt CFG_KEY=$1/client.key write_daemon_config
	sed "s|^listen =\$|listen = unix:$T/control.sock|" "$CONF" >"$T/c" &&
	    mv "$T/c" "$CONF"
}
config_for "$T/tls-1"
i=1
while [ $i -le $N ]; do
	printf '{"orderId":"rot-%04d","userKey":"%d"}\n' $i $((70000 + i))
	i=$((i + 1))
done | import_orders

step "$N orders being polled"
start_daemon
wait_until 20 "every order was asked about once" eval '[ "$(sim_count)" -ge '$N' ]'

step "a key that does not match: the reload is refused, polling goes on"
config_for "$T/tls-bad"
hup_daemon
assert_log "error: reload failed, keeping the old configuration: $T/tls-bad/client.key does not match $T/tls-bad/client.crt\$"
n=$(sim_count)
wait_until 10 "100 more requests" eval '[ "$(sim_count)" -ge '$((n + 100))' ]'

step "the new pair: in flight on the old one, new requests on the new one"
config_for "$T/tls-2"
hup_start=$(now_ms)
hup_daemon
assert_log 'info: configuration reloaded$'
assert_log "info: client certificate changed to $T/tls-2/client.crt: [0-9]+ requests? in flight finish with the old one\$"
inflight=$(sed -n 's/.*client certificate changed to .*: \([0-9]*\) requests\{0,1\} in flight .*/\1/p' "$DAEMON_LOG")
assert_ge 1 "$inflight" "requests in flight at the reload"
# The old pair goes away: a request that still used it could not connect.
sleep 1
mv "$T/tls-1" "$T/tls-1.retired"
n=$(sim_count)
wait_until 30 "all $N orders are granted" eval '[ "$(count_state granted)" = '$N' ]'
after=$(sim_count "select(.t > $hup_start + 1000)")
assert_ge 100 "$after" "requests answered after the old pair was gone"

step "no failed request, no stall, one grant per order"
assert_eq "" "$(jq -c 'select(.outcome | startswith("status:") | not)' "$SIM_LOG" | head -n 5)" \
    "requests the simulator did not answer with a status"
assert_eq 0 "$(orders_json | jq -s 'map(.errors) | add')" "errors counted on orders"
assert_no_log 'next try in' "a request that failed"
assert_no_log 'paused' "a pause"
assert_eq 1 "$(log_count 'error: ')" "error lines (the refused reload only)"
gap=$(jq -r .t "$SIM_LOG" | sort -n |
    awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { print m + 0 }')
assert_le 1500 "$gap" "longest ms without a request (backoff_max 1s)"
# The simulator logs the CN of the certificate each request came with: only
# the two pairs, and from a second after the reload only the new one.
assert_eq "toss-sim client
toss-sim client expiring soon" "$(jq -r .client "$SIM_LOG" | sort -u)" \
    "client certificates the requests came with"
assert_eq "toss-sim client expiring soon" \
    "$(jq -r "select(.t > $hup_start + 1000) | .client" "$SIM_LOG" | sort -u)" \
    "the client certificate of the requests a second after the reload"
assert_eq $N "$(event_count grant)" "grant events"
assert_eq $N "$(event_count)" "events"
assert_events_unique
assert_eq "$new_at" "$(curl -sf --unix-socket "$T/control.sock" http://localhost/metrics |
    sed -n 's/^reconciled_cert_expiry_seconds //p')" "reconciled_cert_expiry_seconds"
pass
