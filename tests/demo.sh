#!/bin/sh
# make demo: a guided tour. Starts toss-sim (a stand-in for Toss's API) on
# loopback, hands reconciled a dozen orders that take every path an order
# can take, runs it until none is pending, then shows the event feed and
# the counts. Builds nothing; everything it starts is stopped on exit and
# its files live in a temp dir. Needs jq and openssl.
set -eu

: "${top_srcdir:?top_srcdir must name the source tree (make demo sets it)}"
: "${top_builddir:?top_builddir must name the build tree (make demo sets it)}"

RECONCILED=$top_builddir/reconciled
RECONCILECTL=$top_builddir/reconcilectl
TOSS_SIM=$top_builddir/tests/sim/toss-sim
DEMO_TIMEOUT=${DEMO_TIMEOUT:-90}
unset RECONCILED_CONFIG JOURNAL_STREAM || true

for f in "$RECONCILED" "$RECONCILECTL" "$TOSS_SIM"; do
	if [ ! -x "$f" ]; then
		echo "demo: $f is not built; run: make all tests/sim/toss-sim" >&2
		exit 1
	fi
done
for c in jq "${OPENSSL:-openssl}"; do
	if ! command -v "$c" >/dev/null 2>&1; then
		echo "demo: needs $c (not installed)" >&2
		exit 1
	fi
done

# The simulator engineer's demo scenario is used when it covers every status
# path (all documented statuses and an unknown one); otherwise ours.
SCENARIO=$top_srcdir/tests/integration/scenarios/demo.json
if [ -f "$top_srcdir/tests/sim/scenarios/demo.json" ] &&
    jq -e '[.orders[]?.timeline[]?.status // empty] as $s |
	["PURCHASED", "PAYMENT_COMPLETED", "ORDER_IN_PROGRESS", "ERROR",
	 "FAILED", "REFUNDED", "NOT_FOUND", "MINIAPP_MISMATCH"] - $s == [] and
	($s - ["PURCHASED", "PAYMENT_COMPLETED", "ORDER_IN_PROGRESS", "ERROR",
	 "FAILED", "REFUNDED", "NOT_FOUND", "MINIAPP_MISMATCH"] | length > 0)' \
    "$top_srcdir/tests/sim/scenarios/demo.json" >/dev/null 2>&1; then
	SCENARIO=$top_srcdir/tests/sim/scenarios/demo.json
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/reconciled-demo.XXXXXX")
SIM_PID=
DAEMON_PID=

cleanup()
{
	st=$?
	trap - EXIT
	set +e
	[ -z "$DAEMON_PID" ] || kill -TERM "$DAEMON_PID" 2>/dev/null
	[ -z "$SIM_PID" ] || kill -TERM "$SIM_PID" 2>/dev/null
	[ -z "$DAEMON_PID" ] || wait "$DAEMON_PID" 2>/dev/null
	[ -z "$SIM_PID" ] || wait "$SIM_PID" 2>/dev/null
	if [ "${KEEP_TMP:-0}" = 1 ] || [ $st != 0 ]; then
		echo "(the demo's files are kept in $D)" >&2
	else
		rm -rf "$D"
	fi
	exit $st
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

header()
{
	printf '\n==> %s\n' "$*"
}

ctl()
{
	"$RECONCILECTL" -c "$D/reconciled.conf" "$@"
}

now_s()
{
	date +%s
}

header "1. Test certificates (Toss requires mutual TLS)"
sh "$top_srcdir/tests/sim/mkcerts.sh" "$top_builddir/tests/certs"
ln -s "$top_builddir/tests/certs" "$D/certs"
echo "    a test CA, a server certificate for 127.0.0.1 and a client"
echo "    certificate like the one the Toss console issues: $top_builddir/tests/certs"

header "2. toss-sim, a stand-in for Toss's order-status API"
"$TOSS_SIM" --listen 127.0.0.1:0 --cert "$D/certs/server.crt" \
    --key "$D/certs/server.key" --ca "$D/certs/ca.crt" \
    --scenario "$SCENARIO" --port-file "$D/sim.port" --log "$D/sim.log" \
    2>"$D/sim.err" &
SIM_PID=$!
i=0
until [ -s "$D/sim.port" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$SIM_PID" 2>/dev/null; then
		cat "$D/sim.err" >&2
		echo "demo: toss-sim did not start" >&2
		exit 1
	fi
	sleep 0.1
done
PORT=$(cat "$D/sim.port")
echo "    listening on https://127.0.0.1:$PORT, answering from"
echo "    $SCENARIO"
echo "    (each order follows a timeline; a few requests fail on purpose)"

header "3. A configuration with a fast schedule (seconds, not hours)"
cat >"$D/reconciled.conf" <<EOF
[api]
base_url = https://127.0.0.1:$PORT
cert = $D/certs/client.crt
key = $D/certs/client.key
ca = $D/certs/ca.crt
timeout = 3s
connect_timeout = 1s
rate_limit = 50/s

[ledger]
path = $D/ledger.db

[poll]
backoff_min = 200ms
backoff_max = 2s
not_found_grace = 6s
refund_watch = 1h
refund_check_min = 500ms
refund_check_max = 2s

[control]
listen =
EOF
sed 's/^/    /' "$D/reconciled.conf"
echo
"$RECONCILED" -n -c "$D/reconciled.conf" 2>/dev/null | sed 's/^/    reconciled -n: /'

header "4. The partner's server hands over the orders it heard of"
jq -c '(.orders // {}) | to_entries | to_entries[] |
    .key as $n | .value.key as $id |
    (.value.value.userKey // "*" | tostring) as $u |
    {orderId: $id, userKey: (if $u == "*" then (1000 + $n | tostring) else $u end)}' \
    "$SCENARIO" >"$D/orders.jsonl"
echo "    reconcilectl import $D/orders.jsonl"
ctl import "$D/orders.jsonl" 2>/dev/null | sed 's/^/    /'
ctl list | sed 's/^/    /'

header "5. reconciled polls Toss until no order is pending"
"$RECONCILED" -c "$D/reconciled.conf" >"$D/daemon.log" 2>&1 &
DAEMON_PID=$!
echo "    (its log: $D/daemon.log)"
t0=$(now_s)
last=-1
while :; do
	if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
		cat "$D/daemon.log" >&2
		echo "demo: reconciled exited" >&2
		DAEMON_PID=
		exit 1
	fi
	el=$(($(now_s) - t0))
	stats=$(ctl stats --json 2>/dev/null) || stats='{"orders":{}}'
	pending=$(printf '%s\n' "$stats" | jq '.orders.pending // 0')
	if [ "$el" -ge $((last + 2)) ] || [ "$pending" = 0 ]; then
		printf '    %3ss  %s\n' "$el" "$(printf '%s\n' "$stats" |
		    jq -r '.orders | to_entries | map(select(.value > 0) |
			"\(.key) \(.value)") | join(", ")')"
		last=$el
	fi
	[ "$pending" != 0 ] || break
	if [ "$el" -ge "$DEMO_TIMEOUT" ]; then
		echo "demo: orders still pending after ${DEMO_TIMEOUT}s" >&2
		tail -n 20 "$D/daemon.log" >&2
		exit 1
	fi
	sleep 0.5
done
# The store's late refund and the regression show up on the next re-checks.
sleep 2

header "6. What the daemon said (the interesting lines of its log)"
grep -E 'pending -> |granted -> |held -> |unknown status|anomaly|paused|resumed' \
    "$D/daemon.log" | sed 's/^[^ ]* reconciled\[[0-9]*\]: /    /' | head -n 40

header "7. The event feed (reconcilectl events): what the partner's server consumes"
ctl events | sed 's/^/    /'
echo
echo "    one of them in full (reconcilectl events --json):"
ctl events --json | jq -c 'select(.type == "refund" and .granted == true)' |
    head -n 1 | sed 's/^/    /'

header "8. The orders and the counts (reconcilectl list, reconcilectl stats)"
ctl list | sed 's/^/    /'
echo
ctl stats | sed 's/^/    /'

header "9. Stopping"
kill -TERM "$DAEMON_PID"
st=0
wait "$DAEMON_PID" || st=$?
DAEMON_PID=
echo "    reconciled exited with status $st after SIGTERM"
kill -TERM "$SIM_PID"
wait "$SIM_PID" || true
SIM_PID=
echo "    toss-sim answered $(wc -l <"$D/sim.log" | tr -d ' ') requests"
echo
echo "Next: held orders wait for a human. Map the new status in [status] of"
echo "the configuration (e.g. PAYMENT_PENDING_REVIEW = grant) and send SIGHUP;"
echo "held orders are re-evaluated at once. See reconciled.conf(5) and docs/DESIGN.md"
echo "for the rest."
[ $st = 0 ]
