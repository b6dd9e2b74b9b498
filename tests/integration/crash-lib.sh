# Helpers shared by the crash-*.sh and disk-*.sh scripts: what a run must
# leave behind whatever happened to the daemon on the way. Every order in
# the state its kind implies, exactly the events its kind implies, a sound
# ledger whose counters agree with its rows, and sinks (JSONL file, webhook
# receiver) that hold every event, duplicates only as identical copies.
# Source it first thing: . "$top_srcdir/tests/integration/crash-lib.sh"
# (it sources lib-daemon.sh). Not a test by itself.

# Sourced once, even when a script uses both crash-lib.sh and fault-lib.sh.
[ -n "${DAEMON_LOG:-}" ] || . "$top_srcdir/tests/integration/lib-daemon.sh"

# A kind is an orderId prefix; expect_kind prints "STATE EVENT-TYPES..." for
# one orderId, e.g. "refunded grant refund". The kinds below are those of
# scenarios/crash.json (c-*), scenarios/fault-disk.json (d-*) and
# scenarios/valgrind.json (v-*); a script may define its own expect_kind.
# Per line: prefix:state:event types (comma-separated, in order).
CRASH_KINDS="c-paid-:granted:grant
c-purch-:granted:grant
c-prog-:granted:grant
c-err-:granted:grant
c-fail-:failed:failed
c-refund-:refunded:refund
c-grref-:refunded:grant,refund
c-mism-:mismatch:mismatch
c-gone-:not_found:not_found
c-late-:granted:grant
c-unk-:held:held
c-unkpaid-:granted:held,grant
c-anom-:granted:grant,anomaly
c-expire-:expired:expired"
DISK_KINDS="d-early-:granted:grant
d-paid-:granted:grant
d-fail-:failed:failed
d-refund-:refunded:grant,refund"
VALGRIND_KINDS="v-paid-:granted:grant
v-purch-:granted:grant
v-trunc-:failed:failed
v-garb-:refunded:refund
v-envfail-:mismatch:mismatch
v-stall-:granted:grant
v-big-:failed:failed
v-other-:granted:grant
v-429-:granted:grant
v-prog-:granted:grant
v-err-:granted:grant
v-grref-:refunded:grant,refund
v-anom-:granted:grant,anomaly
v-gone-:not_found:not_found
v-late-:granted:grant
v-unk-:held:held
v-unkpaid-:granted:held,grant
v-expire-:expired:expired"

expect_kind()
{
	printf '%s\n%s\n%s\n' "$CRASH_KINDS" "$DISK_KINDS" "$VALGRIND_KINDS" |
	    while IFS=: read -r _cl_k _cl_s _cl_e; do
		case $1 in
		"$_cl_k"*)	echo "$_cl_s $(echo "$_cl_e" | tr ',' ' ')"; return ;;
		esac
	done
}

# kind_prefixes KINDS: the orderId prefixes of a kinds list, one per line.
kind_prefixes()
{
	printf '%s\n' "$1" | cut -d: -f1
}

# make_orders USER_KEY_BASE PREFIX:COUNT...: $T/orders.jsonl with COUNT
# orders PREFIX0001.. for each PREFIX, userKeys from USER_KEY_BASE + 1.
make_orders()
{
	_cl_base=$1
	shift
	for _cl_pc in "$@"; do
		awk -v p="${_cl_pc%:*}" -v n="${_cl_pc##*:}" -v b="$_cl_base" 'BEGIN {
		    for (i = 1; i <= n; i++)
			printf "{\"orderId\":\"%s%04d\",\"userKey\":\"%d\"}\n", p, i, b + i }'
	done >"$T/orders.jsonl"
}

# write_crash_config [LINE...]: write_daemon_config with every status of
# the scenarios mapped (unknown ones held), the JSONL sink in
# $T/events.jsonl and, once start_webhook ran, the webhook; LINEs go to
# [events].
write_crash_config()
{
	write_daemon_config "[status]" "PURCHASED = grant" \
	    "PAYMENT_COMPLETED = grant" "ORDER_IN_PROGRESS = wait" \
	    "ERROR = retry" "FAILED = fail" "REFUNDED = refund" \
	    "NOT_FOUND = not_found" "MINIAPP_MISMATCH = mismatch" "* = hold" \
	    "[events]" "jsonl = $T/events.jsonl" \
	    ${WEBHOOK_URL:+"webhook_url = $WEBHOOK_URL"} \
	    ${WEBHOOK_URL:+"webhook_secret = $WEBHOOK_SECRET"} "$@"
}

# mount_tmpfs SIZE: a tmpfs of SIZE (e.g. 4m) on $MNT, unmounted on exit;
# skips the test where mounting is not allowed.
mount_tmpfs()
{
	MNT=$T/mnt
	mkdir "$MNT"
	mount -t tmpfs -o "size=$1,mode=0700" tmpfs "$MNT" 2>"$T/mount.err" ||
	    skip "cannot mount a tmpfs ($(cat "$T/mount.err")); needs root or CAP_SYS_ADMIN"
	at_exit 'umount -l "$MNT" 2>/dev/null'
}

# write_expected: $T/expected.states ("ID STATE") and $T/expected.events
# ("ID TYPE"), sorted, for the orders of $T/orders.jsonl.
write_expected()
{
	jq -r .orderId "$T/orders.jsonl" | LC_ALL=C sort >"$T/ids"
	: >"$T/expected.states"
	: >"$T/expected.events"
	while read -r _cl_id; do
		set -- $(expect_kind "$_cl_id")
		echo "$_cl_id $1" >>"$T/expected.states"
		shift
		for _cl_t in "$@"; do
			echo "$_cl_id $_cl_t" >>"$T/expected.events"
		done
	done <"$T/ids"
	LC_ALL=C sort -o "$T/expected.events" "$T/expected.events"
}

# actual_states / actual_events: the same from the ledger.
actual_states()
{
	orders_json | jq -r '.orderId + " " + .state' | LC_ALL=C sort
}

actual_events()
{
	events_json | jq -r '.orderId + " " + .type' | LC_ALL=C sort
}

# settled: every order in its expected state with its expected events.
settled()
{
	[ "$(actual_states)" = "$(cat "$T/expected.states")" ] &&
	    [ "$(actual_events)" = "$(cat "$T/expected.events")" ]
}

# wait_settled TIMEOUT_S: waits until settled; on timeout shows which
# orders are not where they should be, then fails.
wait_settled()
{
	_cl_deadline=$(($(now_ms) + $1 * 1000))
	until settled; do
		if [ "$(now_ms)" -ge "$_cl_deadline" ]; then
			actual_states >"$T/actual.states"
			actual_events >"$T/actual.events"
			echo "--- orders not settled as expected after $1 s (expected / actual):" >&2
			diff "$T/expected.states" "$T/actual.states" | head -n 20 >&2 || true
			diff "$T/expected.events" "$T/actual.events" | head -n 20 >&2 || true
			for _cl_id in $(diff "$T/expected.states" "$T/actual.states" |
			    sed -n 's/^> \([^ ]*\) .*/\1/p' | head -n 3); do
				ctl show "$_cl_id" --json >&2 || true
				grep -F "$_cl_id" "$DAEMON_LOG" | tail -n 5 >&2 || true
				jq -c --arg id "$_cl_id" 'select(.orderId == $id)' "$SIM_LOG" | tail -n 5 >&2
			done
			fail "timed out after $1 s waiting for every order to settle"
		fi
		sleep 0.5
	done
}

# assert_diff WHAT EXPECTED_FILE ACTUAL_FILE
assert_diff()
{
	cmp -s "$2" "$3" && return 0
	echo "--- $1: diff expected actual:" >&2
	diff "$2" "$3" | head -n 40 >&2 || true
	fail "$1 differ from what the scenario implies"
}

# assert_outcome: exact states and exactly the implied events, no other
# event row, each (order, type) at most once.
assert_outcome()
{
	actual_states >"$T/actual.states"
	assert_diff "order states" "$T/expected.states" "$T/actual.states"
	actual_events >"$T/actual.events"
	assert_diff "event rows (order, type)" "$T/expected.events" "$T/actual.events"
	assert_events_unique
}

# assert_ledger_sound: SQLite's integrity check passes (when the sqlite3
# shell is installed; PostgreSQL checks its pages itself) and the counters
# kept by triggers (stats) equal the rows.
assert_ledger_sound()
{
	if [ "$LEDGER_BACKEND" = pg ]; then
		:
	elif command -v sqlite3 >/dev/null 2>&1; then
		assert_eq ok "$(sqlite3 -readonly "$LEDGER" 'PRAGMA integrity_check' 2>&1)" \
		    "PRAGMA integrity_check"
	else
		echo "note: sqlite3 not installed, integrity_check not run"
	fi
	ctl stats --json >"$T/stats.json" || fail "reconcilectl stats failed"
	assert_eq "$(orders_json | jq -s -S -c 'group_by(.state) |
	    map({(.[0].state): length}) | add // {}')" \
	    "$(jq -S -c '.orders | with_entries(select(.value > 0))' "$T/stats.json")" \
	    "stats counts per state = the order rows"
	assert_eq "$(events_json | wc -l | tr -d ' ')" "$(jq .events "$T/stats.json")" \
	    "stats event count = the event rows"
}

# assert_jsonl_holds FILE: every line of FILE is one whole JSON event; its
# distinct lines are exactly the ledger's event payloads, byte for byte; a
# key delivered twice was delivered identically.
assert_jsonl_holds()
{
	[ -f "$1" ] || fail "$1 does not exist"
	events_json >"$T/payloads"
	_cl_bad=$(jq -R -c 'fromjson? // "torn" | select(type != "object" or .key == null)' "$1" | head -n 3)
	assert_eq "" "$_cl_bad" "every line of $(basename "$1") is a whole event"
	LC_ALL=C sort -u "$1" >"$T/jsonl.distinct"
	LC_ALL=C sort "$T/payloads" >"$T/payloads.sorted"
	assert_diff "the distinct lines of $(basename "$1") and the event payloads" \
	    "$T/payloads.sorted" "$T/jsonl.distinct"
	_cl_dup=$(jq -r .key "$T/jsonl.distinct" | LC_ALL=C sort | uniq -d | head -n 3)
	assert_eq "" "$_cl_dup" "keys delivered to $(basename "$1") with different lines"
	echo "$(basename "$1"): $(wc -l <"$1" | tr -d ' ') lines, $(wc -l <"$T/jsonl.distinct" | tr -d ' ') distinct"
}

# assert_starts_with SAVED FILE: what SAVED (an earlier copy of the sink
# file FILE) held is still FILE's beginning.
assert_starts_with()
{
	assert_eq "$(cat "$1")" "$(head -c "$(wc -c <"$1")" "$2")" \
	    "$(basename "$2")'s first lines (as they were before) are kept"
}

# Webhook receiver (webhook-recv.py) on 127.0.0.1.
WEBHOOK_SECRET=whsec_dGVzdC1zZWNyZXQtZm9yLXRoZS1jcmFzaC10ZXN0cw==
WEBHOOK_LOG=$T/webhook.log
WEBHOOK_PID=
WEBHOOK_URL=
at_exit '[ -z "$WEBHOOK_PID" ] || kill "$WEBHOOK_PID" 2>/dev/null'

# start_webhook: starts the receiver; sets WEBHOOK_URL.
start_webhook()
{
	require_cmd python3
	python3 "$top_srcdir/tests/integration/webhook-recv.py" \
	    --secret "$WEBHOOK_SECRET" --log "$WEBHOOK_LOG" \
	    --port-file "$T/webhook.port" 2>>"$T/webhook.err" &
	WEBHOOK_PID=$!
	wait_until 10 "the webhook receiver listens" test -s "$T/webhook.port"
	WEBHOOK_URL=http://127.0.0.1:$(cat "$T/webhook.port")/hook
}

# assert_webhook_holds: every request the receiver took was validly
# signed, its webhook-id is its body's key, the bodies delivered with 2xx
# are exactly the ledger's payloads, and a key delivered twice was
# delivered identically.
assert_webhook_holds()
{
	[ -s "$WEBHOOK_LOG" ] || fail "the webhook receiver got nothing"
	events_json >"$T/payloads"
	_cl_bad=$(jq -c 'select(.valid != true or .id != (.body | fromjson | .key)) |
	    {id, valid, answer}' "$WEBHOOK_LOG" | head -n 3)
	assert_eq "" "$_cl_bad" "webhook requests: valid signature, webhook-id = the event key"
	jq -r 'select(.answer == "204") | .body' "$WEBHOOK_LOG" |
	    LC_ALL=C sort -u >"$T/webhook.distinct"
	LC_ALL=C sort "$T/payloads" >"$T/payloads.sorted"
	assert_diff "the bodies the webhook took and the event payloads" \
	    "$T/payloads.sorted" "$T/webhook.distinct"
	_cl_dup=$(jq -r 'select(.answer == "204") | .id' "$WEBHOOK_LOG" | LC_ALL=C sort -u |
	    wc -l | tr -d ' ')
	assert_eq "$(wc -l <"$T/webhook.distinct" | tr -d ' ')" "$_cl_dup" \
	    "keys delivered to the webhook with different bodies"
	echo "webhook: $(wc -l <"$WEBHOOK_LOG" | tr -d ' ') requests, $_cl_dup distinct events"
}

# sinks_caught_up: every sink's cursor is at the last event.
sinks_caught_up()
{
	ctl stats --json | jq -e '.sinks | length > 0 and all(.[]; .lag == 0)' >/dev/null
}

# assert_run_sound JSONL_FILE: what every run must leave: exact states and
# events, a sound ledger, every event in the JSONL file and (when
# start_webhook ran) at the webhook.
assert_run_sound()
{
	assert_outcome
	assert_ledger_sound
	assert_jsonl_holds "$1"
	[ -z "$WEBHOOK_PID" ] || assert_webhook_holds
}
