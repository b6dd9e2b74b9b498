# Helpers shared by the fault-*.sh scripts (the fault matrix): an order left
# untouched by a fault, the backoff between one order's attempts checked
# against docs/DESIGN.md's schedule from the daemon's log and the simulator's
# request log, and silence in the request log.
# Source it first thing: . "$top_srcdir/tests/integration/fault-lib.sh"
# (it sources lib-daemon.sh). Not a test by itself.

# Sourced once, even when a script uses both crash-lib.sh and fault-lib.sh.
[ -n "${DAEMON_LOG:-}" ] || . "$top_srcdir/tests/integration/lib-daemon.sh"

FAULT_SCENARIO=$SCENARIOS/fault-matrix.json

# The schedule every fault script runs with (write_daemon_config reads
# these): errors back off from 100ms doubling to 1s.
CFG_BACKOFF_MIN=100ms
CFG_BACKOFF_MAX=1s
FAULT_BACKOFF_MIN_MS=100
FAULT_BACKOFF_MAX_MS=1000

# assert_untouched ID [WHAT]: the order is pending, never took a real
# answer (polls 0, no Toss status) and has no event.
assert_untouched()
{
	assert_eq "pending 0 null null" \
	    "$(order_jq "$1" '"\(.state) \(.polls) \(.tossStatus) \(.grantedAt)"')" \
	    "$1: still pending with no answer taken${2:+ ($2)}"
	assert_eq 0 "$(event_count "" "$1")" "$1: events${2:+ ($2)}"
}

# fault_served ID: how many answers to ID the simulator served as a fault.
fault_served()
{
	sim_count "select(.orderId == \"$1\" and (.outcome | startswith(\"fault:\")))"
}

# assert_backoff ID [EXTRA_MS]: every error the daemon logged for ID names
# a next try within docs/DESIGN.md's backoff for that attempt (attempt n = the
# order's earlier polls + errors, all errors here: [50%, 100%] of
# min(backoff_max, backoff_min * 2^n)), and the simulator saw ID's next
# request no earlier than that and at most EXTRA_MS (default 1500) plus the
# backoff later. The order must have taken only errors so far.
assert_backoff()
{
	_fl_id=$1
	_fl_extra=${2:-1500}
	grep -F "order $_fl_id (userKey " "$DAEMON_LOG" |
	    grep -F '; next try ' >"$T/backoff.lines" || true
	[ -s "$T/backoff.lines" ] || fail "$_fl_id: no error line in the log"
	log_ms <"$T/backoff.lines" >"$T/backoff.at"
	sed -n 's/.*; next try in \([0-9.]*\)\(m\{0,1\}s\)$/\1 \2/p' \
	    "$T/backoff.lines" >"$T/backoff.next"
	assert_eq "$(wc -l <"$T/backoff.lines")" "$(wc -l <"$T/backoff.next")" \
	    "$_fl_id: every error line names its next try in ms or s"
	jq -c --arg id "$_fl_id" 'select(.orderId == $id) | .t' "$SIM_LOG" \
	    >"$T/backoff.req"
	_fl_bad=$(paste -d' ' "$T/backoff.at" "$T/backoff.next" |
	    jq -R -s -c --slurpfile req "$T/backoff.req" \
	    --argjson min "$FAULT_BACKOFF_MIN_MS" \
	    --argjson max "$FAULT_BACKOFF_MAX_MS" --argjson extra "$_fl_extra" '
	    [split("\n")[] | select(length > 0) | split(" ")] | to_entries[] |
	    .key as $n | .value as $v |
	    ($v[0] | tonumber) as $at |
	    (($v[1] | tonumber) * (if $v[2] == "s" then 1000 else 1 end)) as $wait |
	    ([$max, $min * pow(2; $n)] | min) as $full |
	    ([$req[] | select(. > $at)] | min) as $next |
	    if $wait < ($full / 2 | floor) - 1 or $wait > $full then
		"attempt \($n): next try in \($wait)ms, outside [\($full / 2), \($full)]"
	    elif $next == null then empty
	    elif $next < $at + $wait - 2 then
		"attempt \($n): asked again \($next - $at)ms after the error, before its backoff of \($wait)ms"
	    elif $next > $at + $wait + $extra then
		"attempt \($n): asked again only \($next - $at)ms after the error (backoff \($wait)ms)"
	    else empty end')
	assert_eq "" "$_fl_bad" "$_fl_id: attempts follow the backoff schedule"
}

# assert_quiet FROM_MS TO_MS [WHAT]: the simulator saw no request (nor TLS
# handshake) in the open interval (FROM_MS, TO_MS).
assert_quiet()
{
	_fl_q=$(jq -c --argjson a "$1" --argjson b "$2" \
	    'select(.t > $a and .t < $b)' "$SIM_LOG")
	assert_eq "" "$_fl_q" "${3:-requests} between $1 and $2"
}

# The control API (/healthz) on a unix socket: use_control_sock and healthz
# in lib-daemon.sh.

# next_run N [keep-sim]: ends run N of a script that starts over: keeps its
# daemon log as daemon-N.log, stops the simulator (it must exit 0) and
# keeps its request log as sim-N.log (not with keep-sim: it runs on), and
# removes the ledger.
next_run()
{
	mv "$DAEMON_LOG" "$T/daemon-$1.log"
	if [ "${2:-}" != keep-sim ]; then
		stop_sim || fail "toss-sim did not exit 0"
		mv "$SIM_LOG" "$T/sim-$1.log"
	fi
	rm -f "$LEDGER" "$LEDGER-wal" "$LEDGER-shm"
}

# assert_xc_settled: xc-paid and xc-refund (the orders of the connection
# faults: DNS, certificates) settled on their one clean answer each, with
# one event each and no other.
assert_xc_settled()
{
	assert_eq "granted 1 PAYMENT_COMPLETED grant" \
	    "$(order_jq xc-paid '"\(.state) \(.polls) \(.tossStatus)"') $(event_types xc-paid)" "xc-paid"
	assert_eq "refunded 1 REFUNDED refund" \
	    "$(order_jq xc-refund '"\(.state) \(.polls) \(.tossStatus)"') $(event_types xc-refund)" "xc-refund"
	assert_events_unique
	assert_eq 2 "$(event_count)" "events in all"
}

# fault_add ID...: adds each order with the userKey the scenario gives it.
fault_add()
{
	for _fl_id in "$@"; do
		_fl_uk=$(jq -r --arg id "$_fl_id" '.orders[$id].userKey // empty' \
		    "$FAULT_SCENARIO")
		[ -n "$_fl_uk" ] || fail "$_fl_id is not in $FAULT_SCENARIO"
		add_order "$_fl_id" "$_fl_uk"
	done
}

# error_lines ID: the daemon's "order ID (userKey ...): WHAT; next try ..."
# lines for ID, one per failed attempt.
error_lines()
{
	grep -F "order $1 (userKey " "$DAEMON_LOG" | grep -F '; next try ' || true
}

# assert_error_lines ID ERE: ID has as many error lines as recorded errors,
# and each says, in one line, what happened: "order ID (userKey ****):
# <ERE>; next try in <duration>".
assert_error_lines()
{
	# While the daemon runs, an attempt's line is logged just before its
	# batch commits: read both until one reading agrees (3 s at most), and
	# judge that reading, not a later one that a new attempt may split.
	_fl_i=0
	while :; do
		_fl_n=$(order_field "$1" errors)
		_fl_l=$(error_lines "$1" | wc -l | tr -d ' ')
		[ "$_fl_n" != "$_fl_l" ] && [ "$_fl_i" -lt 30 ] || break
		sleep 0.1
		_fl_i=$((_fl_i + 1))
	done
	assert_eq "$_fl_n" "$_fl_l" "$1: one log line per recorded error"
	_fl_bad=$(error_lines "$1" | grep -Ev -- "info: order $1 \\(userKey [^)]*\\): ($2); next try in [0-9.]+m?s\$" || true)
	assert_eq "" "$_fl_bad" "$1: every error line matches: $2"
}

# assert_errors_served ID: the order recorded exactly one error per fault
# answer the simulator served it.
assert_errors_served()
{
	assert_eq "$(fault_served "$1")" "$(order_field "$1" errors)" \
	    "$1: errors recorded = fault answers served"
}

# assert_settled ID STATE EVENTS STATUS: after its faults, the order took
# exactly one real answer (the clean one, STATUS), is in STATE and has
# exactly the events EVENTS (types, space-separated, in id order).
assert_settled()
{
	assert_eq "$2 1 $4" "$(order_jq "$1" '"\(.state) \(.polls) \(.tossStatus)"')" \
	    "$1: state, real answers taken, last status"
	assert_eq "$3" "$(event_types "$1")" "$1: events"
}
