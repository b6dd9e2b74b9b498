#!/bin/sh
# Two instances on one PostgreSQL ledger. A few hundred orders on every
# status path (scenarios/crash.json), a JSONL file and a webhook as sinks;
# the leader is killed with SIGKILL at random moments and started again
# (as the standby), while more orders arrive concurrently through both
# instances' control APIs and reconcilectl. Each time the standby must lead within a
# few seconds (the takeover times are printed), and never do both lead. At
# the end: every order in the state its path implies with exactly the
# implied events (none granted twice), event ids 1..N without a gap, every
# event in the JSONL file and at the webhook, and at the simulator no
# one-second window above the rate limit, failovers included.
#
# FAILOVER_KILLS (default 4), FAILOVER_ORDERS (default 280), FAILOVER_SEED
# picks the moments (printed, to replay a run).
LEDGER_BACKEND=pg
. "$top_srcdir/tests/integration/crash-lib.sh"
. "$top_srcdir/tests/integration/lib-ha.sh"

KILLS=${FAILOVER_KILLS:-4}
NORDERS=${FAILOVER_ORDERS:-280}
SEED=${FAILOVER_SEED:-$(($(date +%s) % 100000))}
RATE=40
echo "FAILOVER_KILLS=$KILLS FAILOVER_ORDERS=$NORDERS FAILOVER_SEED=$SEED"

NKINDS=$(printf '%s\n' "$CRASH_KINDS" | wc -l)

start_sim "$SCENARIOS/crash.json" --latency 30
start_webhook
# As in crash-kill.sh: a kill strands the leader's claims for a lease
# (timeouts + 5 s), so the grace and give-up times leave room for that.
CFG_TIMEOUT=2s
CFG_CONNECT_TIMEOUT=2s
CFG_NOT_FOUND_GRACE=40s
CFG_GIVE_UP_AFTER=40s
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=1s
CFG_RATE_LIMIT=$RATE/s
write_crash_config
inst_configs

step "import $NORDERS orders, $NKINDS kinds"
per=$(((NORDERS + NKINDS - 1) / NKINDS))
make_orders 100000 $(kind_prefixes "$CRASH_KINDS" | sed "s/\$/:$per/")
import_orders <"$T/orders.jsonl"

step "a starts first and leads; b stands by"
inst_start a
wait_until 15 "a leads" role_is a leader
inst_start b
wait_until 15 "b stands by" role_is b standby
assert_match '^[^ ]+ reconciled\[[0-9]+\]: info: role: leader \(epoch 1\)$' \
    "$(grep 'role: ' "$T/daemon-a.log")" "a's role line"
assert_match '^[^ ]+ reconciled\[[0-9]+\]: info: role: standby \(another instance leads\)$' \
    "$(grep 'role: ' "$T/daemon-b.log")" "b's role line"
curl -sS --unix-socket "$T/b.sock" http://localhost/metrics >"$T/b.metrics"
assert_eq "reconciled_leader 0" "$(grep '^reconciled_leader ' "$T/b.metrics")" \
    "the standby's reconciled_leader"
curl -sS --unix-socket "$T/a.sock" http://localhost/metrics >"$T/a.metrics"
assert_eq "reconciled_leader 1" "$(grep '^reconciled_leader ' "$T/a.metrics")" \
    "the leader's reconciled_leader"

step "$KILLS SIGKILLs of the leader at random moments; intake through both"
awk -v seed="$SEED" -v n="$KILLS" 'BEGIN { srand(seed);
    for (i = 0; i < n; i++) printf "%.2f\n", 0.5 + rand() * 2.5 }' >"$T/delays"
# Intake all along, concurrently: through a's API, b's API and
# reconcilectl, each retrying an order while its instance is down.
intake()
{
	_n=1
	while [ "$_n" -le 12 ]; do
		_id=$2$_n
		_t=0
		until if [ "$1" = ctl ]; then
			"$RECONCILECTL" -c "$CONF" add "$_id" "$3$_n" >/dev/null 2>>"$T/intake-$1.err"
		else
			inst_try_post "$1" "$_id" "$3$_n"
		fi; do
			_t=$((_t + 1))
			[ "$_t" -lt 200 ] || { echo "$_id" >>"$T/intake.failed"; break; }
			sleep 0.1
		done
		[ "$1" != ctl ] || printf '{"orderId":"%s","userKey":"%s"}\n' "$_id" "$3$_n" \
		    >>"$T/orders.jsonl"
		_n=$((_n + 1))
		sleep 0.3
	done
}
intake a c-purch-ia- 71000 &
ia=$!
intake b c-grref-ib- 72000 &
ib=$!
intake ctl c-err-ic- 73000 &
ic=$!
leader=a
k=0
: >"$T/takeovers"
while read -r d; do
	sleep "$d"
	k=$((k + 1))
	standby=$(other "$leader")
	assert_eq "leader standby" "$(inst_role "$leader") $(inst_role "$standby")" \
	    "roles before kill $k"
	t0=$(now_ms)
	kill -KILL "$(inst_pid "$leader")"
	_ld_reap "$(inst_pid "$leader")" 10 || fail "$leader survived SIGKILL"
	eval "PID_$leader="
	wait_until 15 "$standby takes over after kill $k" role_is "$standby" leader
	t1=$(grep 'info: role: leader' "$T/daemon-$standby.log" | tail -n 1 | log_ms)
	echo "$((t1 - t0))" >>"$T/takeovers"
	echo "kill $k of $leader after ${d}s: $standby leads $((t1 - t0)) ms later;" \
	    "$(event_count) events, $(count_state pending) pending"
	inst_post "$standby" "c-paid-x${k}" "$((200000 + k))"
	inst_start "$leader"
	wait_until 15 "$leader stands by" role_is "$leader" standby
	inst_post "$leader" "c-refund-x${k}" "$((300000 + k))"
	add_order "c-fail-x${k}" "$((400000 + k))"
	printf '{"orderId":"c-fail-x%s","userKey":"%s"}\n' "$k" "$((400000 + k))" \
	    >>"$T/orders.jsonl"
	leader=$standby
done <"$T/delays"
assert_eq "$KILLS" "$k" "kills"
wait "$ia" "$ib" "$ic" || fail "an intake loop failed"
assert_eq "" "$(cat "$T/intake.failed" 2>/dev/null)" "orders no instance took"
assert_eq 36 "$(grep -c -- '-i[abc]-' "$T/orders.jsonl")" "orders taken concurrently"
sort -n "$T/takeovers" | awk '{ a[NR] = $1 } END {
    printf "takeover after SIGKILL: %d kills, p50 %d ms, max %d ms\n", NR,
    a[int((NR + 1) / 2)], a[NR] }'
assert_le 5000 "$(sort -n "$T/takeovers" | tail -n 1)" "the slowest takeover (ms)"

step "run until everything settles and both sinks have caught up"
write_expected
wait_settled 150
wait_until 30 "the sinks catch up" sinks_caught_up
# Counted before the stop: the standby takes over when the leader stops.
assert_eq "$KILLS" "$(grep -c 'info: role: leader' "$T/daemon-a.log" "$T/daemon-b.log" |
    awk -F: '{ n += $2 } END { print n - 1 }')" "leaderships won after the first"
inst_stop_all

step "exact states and events, ids without a gap, every event in both sinks"
assert_run_sound "$T/events.jsonl"
assert_eq true "$(events_json | jq -s '[.[].id] == [range(1; length + 1)]')" \
    "event ids are 1..N in the feed"

step "no one-second window above $RATE requests at the simulator"
assert_rate_held "$RATE"
assert_no_password "$T/daemon-a.log" "$T/daemon-b.log"
pass
