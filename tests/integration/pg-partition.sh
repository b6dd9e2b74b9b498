#!/bin/sh
# A partition between the leader and the database. Instance a reaches
# PostgreSQL through a loopback proxy (pg-proxy.py), b directly; each has
# its own client certificate, so the simulator's log names who asked. The
# proxy is frozen with SIGSTOP while a leads: a must step down by itself
# and b take over, a strictly before b; after the thaw a stays a standby.
# The simulator's log shows no request from a once it stepped down, and no
# one-second window above the rate limit across the pair; a decides
# nothing after stepping down; every order settles with exactly its events.
LEDGER_BACKEND=pg
. "$top_srcdir/tests/integration/crash-lib.sh"
. "$top_srcdir/tests/integration/lib-ha.sh"
require_cmd python3

start_sim "$SCENARIOS/crash.json" --latency 30
start_webhook
CFG_TIMEOUT=2s
CFG_CONNECT_TIMEOUT=2s
CFG_NOT_FOUND_GRACE=40s
CFG_GIVE_UP_AFTER=40s
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=1s
CFG_RATE_LIMIT=40/s
write_crash_config
CERT_b=$T/certs/client-b.crt
KEY_b=$T/certs/client-b.key
inst_configs
CN_a=$(openssl x509 -noout -subject -nameopt multiline -in "$T/certs/client.crt" |
    sed -n 's/^ *commonName *= *//p')
CN_b=$(openssl x509 -noout -subject -nameopt multiline -in "$T/certs/client-b.crt" |
    sed -n 's/^ *commonName *= *//p')
[ -n "$CN_a" ] && [ "$CN_a" != "$CN_b" ] || fail "the two client certificates' names"

step "a reaches the database through a proxy"
python3 "$top_srcdir/tests/integration/pg-proxy.py" "$T/proxy.port" \
    "$PG_SOCKET" 2>"$T/proxy.err" &
PROXY_PID=$!
at_exit 'kill -CONT $PROXY_PID 2>/dev/null; kill $PROXY_PID 2>/dev/null'
wait_until 10 "the proxy listens" test -s "$T/proxy.port"
sed -e "s|^url = .*|url = postgresql://reconciled:$PG_PASSWORD@127.0.0.1:$(cat "$T/proxy.port")/reconciled|" \
    "$T/a.conf" >"$T/a.conf.new"
mv "$T/a.conf.new" "$T/a.conf"

# frozen PID: every thread of PID is stopped.
frozen()
{
	for _f in /proc/"$1"/task/*/stat; do
		sed 's/^.*) //' "$_f" | grep -q '^[Tt]' || return 1
	done
}

step "112 orders; a leads, b stands by"
make_orders 100000 $(kind_prefixes "$CRASH_KINDS" | sed 's/$/:8/')
import_orders <"$T/orders.jsonl"
inst_start a
wait_until 15 "a leads" role_is a leader
inst_start b
wait_until 15 "b stands by" role_is b standby
sleep 2

step "the proxy freezes: a steps down, then b leads"
t_freeze=$(now_ms)
kill -STOP "$PROXY_PID"
wait_until 5 "the proxy is frozen" frozen "$PROXY_PID"
wait_until 20 "a steps down" grep -q 'role: standby: stepped down' "$T/daemon-a.log"
wait_until 30 "b leads" role_is b leader
t_down=$(grep 'role: standby: stepped down' "$T/daemon-a.log" | head -n 1 | log_ms)
t_lead=$(grep 'info: role: leader' "$T/daemon-b.log" | head -n 1 | log_ms)
echo "a stepped down $((t_down - t_freeze)) ms after the freeze, b leads $((t_lead - t_freeze)) ms after it"
assert_le "$((t_lead - 1))" "$t_down" "a stepped down before b led (ms)"
grep 'role: standby: stepped down' "$T/daemon-a.log" | head -n 1
sleep 3

step "the proxy thaws: a stays a standby and decides nothing"
t_thaw=$(now_ms)
kill -CONT "$PROXY_PID"
inst_post a c-paid-thaw 600001
write_expected
wait_settled 120
wait_until 30 "the sinks catch up" sinks_caught_up
assert_eq "standby leader" "$(inst_role a) $(inst_role b)" "roles at the end"
inst_stop_all
assert_eq 1 "$(grep -c 'info: role: leader' "$T/daemon-a.log")" "a led once"
late=$(grep 'asking Toss' "$T/daemon-a.log" | log_ms | awk -v t="$t_down" '$1 > t' | wc -l)
assert_eq 0 "$late" "a's decisions to ask Toss after it stepped down"
echo "the thaw came $((t_thaw - t_freeze)) ms after the freeze"

step "the simulator's log: nobody asked out of turn, the rate held"
assert_ge 1 "$(jq -r --arg c "$CN_a" 'select(.client == $c) | .t' "$SIM_LOG" | wc -l)" \
    "requests from a"
assert_ge 1 "$(jq -r --arg c "$CN_b" 'select(.client == $c) | .t' "$SIM_LOG" | wc -l)" \
    "requests from b"
assert_eq 0 "$(jq -r --arg c "$CN_a" --argjson t "$t_down" \
    'select(.client == $c and .t > $t) | .t' "$SIM_LOG" | wc -l | tr -d ' ')" \
    "requests from a after it stepped down"
assert_eq 0 "$(jq -r --arg c "$CN_b" --argjson t "$t_lead" \
    'select(.client == $c and .t < $t) | .t' "$SIM_LOG" | wc -l | tr -d ' ')" \
    "requests from b before it led"
assert_rate_held 40

step "exact states and events, ids without a gap, every event in both sinks"
assert_run_sound "$T/events.jsonl"
assert_eq true "$(events_json | jq -s '[.[].id] == [range(1; length + 1)]')" \
    "event ids are 1..N in the feed"
assert_no_password "$T/daemon-a.log" "$T/daemon-b.log"
pass
