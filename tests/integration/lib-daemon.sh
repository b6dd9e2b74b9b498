# Helpers for the scripts that run the real daemon against toss-sim: test
# certificates (made once per build tree), the simulator and the daemon as
# background processes killed on exit, a full daemon configuration with a
# fast schedule, a poll-until helper that shows the logs when it gives up,
# and readers for order states, event rows and the simulator's request log.
# Source it first thing: . "$top_srcdir/tests/integration/lib-daemon.sh"
# (it sources lib.sh). Needs jq and openssl; skips without them.

. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/lib-openapi.sh"

require_file "$RECONCILED" "$RECONCILECTL" "$TOSS_SIM"
require_cmd jq "${OPENSSL:-openssl}"

# LEDGER_BACKEND=pg: the same script on a throwaway PostgreSQL server.
if [ "$LEDGER_BACKEND" = pg ]; then
	. "$top_srcdir/tests/integration/lib-pg.sh"
	pg_start
fi

SCENARIOS=$top_srcdir/tests/integration/scenarios
CERTS_DIR=$top_builddir/tests/certs
DAEMON_LOG=$T/daemon.log
SIM_LOG=$T/sim.log
SIM_ERR=$T/sim.err
CTL_ERR=$T/ctl.err
DAEMON_PID=
SIM_PID=
SIM_PORT=
: >"$CTL_ERR"

# The current time in unix milliseconds (GNU date).
now_ms()
{
	date +%s%3N
}

# log_ms: the unix ms of the daemon log lines on stdin (their first
# field, "2026-11-28T01:30:00.123Z"), one per line.
log_ms()
{
	cut -d' ' -f1 | jq -R '(.[0:19] + "Z" | fromdateiso8601) * 1000 +
	    (.[20:23] | tonumber)'
}

# first_log_ms ERE: unix ms of the first daemon log line matching ERE.
first_log_ms()
{
	_ld_l=$(grep -E -m 1 -- "$1" "$DAEMON_LOG") ||
	    fail "no log line matches: $1"
	printf '%s\n' "$_ld_l" | log_ms
}

# free_port: a free loopback port (the kernel picks it; a daemon binds it a
# moment later). Needs python3.
free_port()
{
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# _ld_alive PID: true while PID runs (a zombie, exited but not yet waited
# for, counts as gone).
_ld_alive()
{
	kill -0 "$1" 2>/dev/null || return 1
	if [ -r "/proc/$1/stat" ]; then
		! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
		return
	fi
	return 0
}

# _ld_reap PID TIMEOUT_S: waits up to TIMEOUT_S for PID to exit, then
# collects its exit status into _ld_status. Returns 1 (PID still running)
# on timeout.
_ld_reap()
{
	_ld_deadline=$(($(now_ms) + $2 * 1000))
	while _ld_alive "$1"; do
		[ "$(now_ms)" -lt "$_ld_deadline" ] || return 1
		sleep 0.05
	done
	_ld_status=0
	wait "$1" || _ld_status=$?
	return 0
}

# dump_logs: the last lines of every log, for a failure report.
dump_logs()
{
	for _ld_f in "$DAEMON_LOG" "$SIM_LOG" "$SIM_ERR" "$CTL_ERR"; do
		[ -s "$_ld_f" ] || continue
		echo "--- last lines of $(basename "$_ld_f"):"
		tail -n "${DUMP_LINES:-40}" "$_ld_f"
	done
} >&2

# On any failure the logs are shown before the temp dir goes. (_lib_rc is
# lib.sh's saved exit status, set before the hooks run.)
at_exit '[ "${_lib_rc:-1}" = 0 ] || [ "${_lib_rc:-1}" = 77 ] || dump_logs'
at_exit '[ -z "$SIM_PID" ] || kill -9 "$SIM_PID" 2>/dev/null'
at_exit '[ -z "$DAEMON_PID" ] || kill -9 "$DAEMON_PID" 2>/dev/null'

# The test PKI, made once per build tree. mkcerts.sh replaces files one by
# one, so concurrent tests (make -j check) take a lock around it.
_ld_lock=$top_builddir/tests/.certs.lock
_ld_locked=0
at_exit '[ "$_ld_locked" = 0 ] || rmdir "$_ld_lock" 2>/dev/null'
mkdir -p "$top_builddir/tests"
_ld_i=0
until mkdir "$_ld_lock" 2>/dev/null; do
	_ld_i=$((_ld_i + 1))
	[ $_ld_i -lt 1200 ] ||
	    fail "cannot take the lock $_ld_lock for 2 minutes (stale? remove it)"
	sleep 0.1
done
_ld_locked=1
_ld_st=0
sh "$top_srcdir/tests/sim/mkcerts.sh" "$CERTS_DIR" >"$T/mkcerts.log" 2>&1 ||
    _ld_st=$?
rmdir "$_ld_lock"
_ld_locked=0
if [ $_ld_st != 0 ]; then
	cat "$T/mkcerts.log" >&2
	fail "mkcerts.sh $CERTS_DIR failed (exit $_ld_st)"
fi
ln -s "$CERTS_DIR" "$T/certs"

# start_sim SCENARIO [ARG...]: starts toss-sim on 127.0.0.1 with a free port
# (SCENARIO "" for none, e.g. with --tls-stall), logging requests to
# $SIM_LOG; sets SIM_PID and SIM_PORT. Fails unless it listens within 10 s.
start_sim()
{
	[ -z "$SIM_PID" ] || fail "start_sim: a simulator already runs"
	_ld_scen=$1
	shift
	rm -f "$T/sim.port"
	if [ -n "$_ld_scen" ]; then
		set -- --scenario "$_ld_scen" "$@"
	fi
	"$TOSS_SIM" --listen 127.0.0.1:0 --cert "$T/certs/server.crt" \
	    --key "$T/certs/server.key" --ca "$T/certs/ca.crt" \
	    --port-file "$T/sim.port" --log "$SIM_LOG" "$@" 2>>"$SIM_ERR" &
	SIM_PID=$!
	_ld_deadline=$(($(now_ms) + 10000))
	until [ -s "$T/sim.port" ]; do
		if ! _ld_alive "$SIM_PID"; then
			SIM_PID=
			cat "$SIM_ERR" >&2
			fail "toss-sim exited at start"
		fi
		[ "$(now_ms)" -lt "$_ld_deadline" ] ||
		    fail "toss-sim wrote no port file within 10 s"
		sleep 0.05
	done
	SIM_PORT=$(cat "$T/sim.port")
	case $SIM_PORT in
	''|*[!0-9]*)
		fail "toss-sim port file holds \"$SIM_PORT\"" ;;
	esac
}

# stop_sim: SIGTERM, then waits (10 s); returns the simulator's exit status.
stop_sim()
{
	[ -n "$SIM_PID" ] || fail "stop_sim: no simulator runs"
	kill -TERM "$SIM_PID" 2>/dev/null || true
	_ld_reap "$SIM_PID" 10 || fail "toss-sim did not exit within 10 s of SIGTERM"
	SIM_PID=
	return $_ld_status
}

# reload_sim: SIGHUP (re-reads the scenario); waits for its log line.
reload_sim()
{
	_ld_n=$(grep -c 'reloaded\|reload failed' "$SIM_ERR" || true)
	kill -HUP "$SIM_PID"
	wait_until 5 "toss-sim reloads its scenario" \
	    eval '[ "$(grep -c "reloaded\|reload failed" "$SIM_ERR")" -gt '"$_ld_n"' ]'
}

# write_daemon_config [LINE...]: a full configuration in $CONF (ledger
# $LEDGER) talking to the simulator, with a fast schedule. Each key can be
# overridden by setting the variable named in the comment; the lines given
# are appended (e.g. "[status]" "FOO = grant").
write_daemon_config()
{
	write_config \
	    "[api]" \
	    "base_url = ${CFG_BASE_URL:-https://127.0.0.1:${SIM_PORT:-9}}" \
	    "cert = ${CFG_CERT:-$T/certs/client.crt}" \
	    "key = ${CFG_KEY:-$T/certs/client.key}" \
	    "ca = ${CFG_CA:-$T/certs/ca.crt}" \
	    "timeout = ${CFG_TIMEOUT:-2s}" \
	    "connect_timeout = ${CFG_CONNECT_TIMEOUT:-1s}" \
	    "max_inflight = ${CFG_MAX_INFLIGHT:-64}" \
	    "rate_limit = ${CFG_RATE_LIMIT:-0}" \
	    "[poll]" \
	    "backoff_min = ${CFG_BACKOFF_MIN:-100ms}" \
	    "backoff_max = ${CFG_BACKOFF_MAX:-1s}" \
	    "give_up_after = ${CFG_GIVE_UP_AFTER:-1h}" \
	    "not_found_grace = ${CFG_NOT_FOUND_GRACE:-1m}" \
	    "refund_watch = ${CFG_REFUND_WATCH:-90d}" \
	    "refund_check_min = ${CFG_REFUND_CHECK_MIN:-1h}" \
	    "refund_check_max = ${CFG_REFUND_CHECK_MAX:-7d}" \
	    "[control]" \
	    "listen =" \
	    "$@"
	_ld_long=$(awk 'length($0) > 196' "$CONF")
	[ -z "$_ld_long" ] || fail "config line too long for inih: $_ld_long"
}

# start_daemon [ARG...]: starts reconciled -c $CONF -v (DAEMON_VERBOSE
# overrides -v) logging to $DAEMON_LOG; sets DAEMON_PID. Fails unless it is
# polling within 10 s.
start_daemon()
{
	[ -z "$DAEMON_PID" ] || fail "start_daemon: a daemon already runs"
	_ld_mark=$(grep -c 'polling ' "$DAEMON_LOG" 2>/dev/null || true)
	_ld_claims=$(log_count 'info: poller: claiming orders' 2>/dev/null)
	"$RECONCILED" -c "$CONF" ${DAEMON_VERBOSE--v} "$@" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	_ld_deadline=$(($(now_ms) + 10000))
	while [ "$(grep -c 'polling ' "$DAEMON_LOG" || true)" -le "${_ld_mark:-0}" ]; do
		# A --once run may log "polling" and finish between the test
		# above and this one: gone with the line logged is a start.
		if ! _ld_alive "$DAEMON_PID" &&
		    [ "$(grep -c 'polling ' "$DAEMON_LOG" || true)" -le "${_ld_mark:-0}" ]; then
			_ld_st=0
			wait "$DAEMON_PID" || _ld_st=$?
			DAEMON_PID=
			cat "$DAEMON_LOG" >&2
			fail "reconciled exited at start (status $_ld_st)"
		fi
		[ "$(now_ms)" -lt "$_ld_deadline" ] ||
		    fail "reconciled did not start polling within 10 s"
		sleep 0.05
	done
}

# wait_claiming: on a PostgreSQL ledger, waits until the daemon started by
# start_daemon leads and claims orders (it wins the election first, then,
# with a rate limit, waits two windows for a previous leader's requests); an
# SQLite daemon claims at once. Tests whose timings count from an order's
# addedAt add their orders after.
wait_claiming()
{
	[ "$LEDGER_BACKEND" = pg ] || return 0
	wait_until 20 "the daemon leads and claims orders" eval \
	    '[ "$(log_count "info: poller: claiming orders")" -gt "${_ld_claims:-0}" ]'
}

# wait_daemon TIMEOUT_S: waits for the daemon to exit by itself; returns
# its exit status (sets STOP_ELAPSED_MS since the call).
wait_daemon()
{
	[ -n "$DAEMON_PID" ] || fail "wait_daemon: no daemon runs"
	_ld_t0=$(now_ms)
	_ld_reap "$DAEMON_PID" "$1" ||
	    fail "reconciled still runs after $1 s"
	STOP_ELAPSED_MS=$(($(now_ms) - _ld_t0))
	DAEMON_PID=
	return $_ld_status
}

# stop_daemon [TIMEOUT_S]: SIGTERM, waits (default 20 s); returns its exit
# status and sets STOP_ELAPSED_MS to how long it took to exit.
stop_daemon()
{
	[ -n "$DAEMON_PID" ] || fail "stop_daemon: no daemon runs"
	kill -TERM "$DAEMON_PID"
	wait_daemon "${1:-20}"
}

# hup_daemon: SIGHUP, then waits for the daemon to log the outcome.
hup_daemon()
{
	_ld_n=$(grep -c 'configuration reloaded\|reload failed' "$DAEMON_LOG" || true)
	kill -HUP "$DAEMON_PID"
	wait_until 5 "reconciled reloads its configuration" \
	    eval '[ "$(grep -c "configuration reloaded\|reload failed" "$DAEMON_LOG")" -gt '"$_ld_n"' ]'
}

daemon_alive()
{
	[ -n "$DAEMON_PID" ] && _ld_alive "$DAEMON_PID"
}

# wait_until TIMEOUT_S DESC CMD [ARG...]: runs CMD every 0.1 s until it
# succeeds; after TIMEOUT_S fails with DESC and the logs' last lines.
wait_until()
{
	_ld_wt=$1
	_ld_wdesc=$2
	shift 2
	_ld_wdeadline=$(($(now_ms) + _ld_wt * 1000))
	until "$@" >/dev/null 2>&1; do
		if [ "$(now_ms)" -ge "$_ld_wdeadline" ]; then
			DUMP_LINES=${DUMP_LINES:-60} dump_logs
			# WAIT_SHOW: shell code showing what the wait saw.
			[ -z "${WAIT_SHOW:-}" ] || eval "$WAIT_SHOW" >&2
			fail "timed out after ${_ld_wt}s waiting until: $_ld_wdesc"
		fi
		sleep 0.1
	done
}

# ctl ARG...: reconcilectl on the test's ledger (CTL_CONF overrides the
# config); its stderr is kept in $CTL_ERR.
ctl()
{
	"$RECONCILECTL" -c "${CTL_CONF:-$CONF}" "$@" 2>>"$CTL_ERR"
}

# import_orders: JSON Lines of orders on stdin into the ledger.
import_orders()
{
	ctl import - >"$T/import.out" ||
	    fail "reconcilectl import failed: $(tail -n 5 "$CTL_ERR")"
}

# add_order ID USER_KEY [ARG...]
add_order()
{
	ctl add "$@" >/dev/null ||
	    fail "reconcilectl add $*: $(tail -n 2 "$CTL_ERR")"
}

# order_json ID: the order object of `reconcilectl show ID --json`.
order_json()
{
	ctl show "$1" --json ||
	    fail "reconcilectl show $1 failed: $(tail -n 2 "$CTL_ERR")"
}

# order_field ID FIELD: one field of the order (jq -r, null as "null").
order_field()
{
	order_jq "$1" ".$2"
}

# order_jq ID FILTER: jq -r FILTER applied to the order object.
order_jq()
{
	_ld_j=$(order_json "$1") || exit 1
	printf '%s\n' "$_ld_j" | jq -r "$2"
}

order_state()
{
	order_field "$1" state
}

# state_is ID STATE: true when the order is in STATE (for wait_until).
state_is()
{
	[ "$(ctl show "$1" --json | jq -r .state)" = "$2" ]
}

# orders_json: every order, one JSON object per line.
orders_json()
{
	ctl list --json || fail "reconcilectl list failed: $(tail -n 2 "$CTL_ERR")"
}

# count_state STATE: how many orders are in STATE (from stats --json).
count_state()
{
	ctl stats --json | jq -r ".orders.$1"
}

# events_json: every event row, one JSON object per line, in id order.
events_json()
{
	ctl events --json --limit 100000 ||
	    fail "reconcilectl events failed: $(tail -n 2 "$CTL_ERR")"
}

# event_types ID: the types of ID's events in id order, space-separated.
event_types()
{
	events_json | jq -r --arg id "$1" 'select(.orderId == $id) | .type' |
	    tr '\n' ' ' | sed 's/ $//'
}

# event_count [TYPE [ID]]: number of event rows (of TYPE, for order ID).
event_count()
{
	events_json | jq -c --arg t "${1:-}" --arg id "${2:-}" \
	    'select(($t == "" or .type == $t) and ($id == "" or .orderId == $id))' |
	    wc -l | tr -d ' '
}

# has_event ID TYPE: true once ID has an event of TYPE (for wait_until).
has_event()
{
	[ "$(event_count "$2" "$1")" -ge 1 ]
}

# event_field ID TYPE FIELD: FIELD of ID's TYPE event (jq -r; one line per
# row, so a duplicate row shows).
event_field()
{
	events_json | jq -r --arg id "$1" --arg t "$2" \
	    "select(.orderId == \$id and .type == \$t) | .$3"
}

# assert_events_unique: every key is "<orderId>:<type>" and no key, id or
# (order, type) appears twice.
assert_events_unique()
{
	_ld_ev=$(events_json)
	_ld_bad=$(printf '%s\n' "$_ld_ev" | jq -c \
	    'select(.key != (.orderId + ":" + .type))')
	assert_eq "" "$_ld_bad" "event keys are <orderId>:<type>"
	_ld_dup=$(printf '%s\n' "$_ld_ev" | jq -r '.orderId + ":" + .type' |
	    LC_ALL=C sort | uniq -d)
	assert_eq "" "$_ld_dup" "at most one event per (order, type)"
	_ld_dup=$(printf '%s\n' "$_ld_ev" | jq -r '.id' | sort | uniq -d)
	assert_eq "" "$_ld_dup" "event ids are unique"
}

# sim_count [JQ_FILTER]: number of requests in the simulator's log (lines
# for which the filter yields something), e.g.
# sim_count 'select(.orderId == "a" and .outcome == "status:PURCHASED")'.
sim_count()
{
	[ -s "$SIM_LOG" ] || { echo 0; return; }
	jq -c "${1:-.}" "$SIM_LOG" | wc -l | tr -d ' '
}

# sim_requests ID: number of requests the simulator saw for order ID.
sim_requests()
{
	sim_count "select(.orderId == \"$1\")"
}

# assert_log ERE [WHAT]: some line of the daemon's log matches ERE.
assert_log()
{
	grep -Eq -- "$1" "$DAEMON_LOG" && return 0
	{
		echo "FAIL: $TEST_NAME: ${2:-no such log line}"
		echo "--- expected a line of $DAEMON_LOG matching: $1"
		echo "--- last lines:"
		tail -n 40 "$DAEMON_LOG"
	} >&2
	exit 1
}

# assert_no_log ERE [WHAT]: no line of the daemon's log matches ERE.
assert_no_log()
{
	grep -Eq -- "$1" "$DAEMON_LOG" || return 0
	{
		echo "FAIL: $TEST_NAME: ${2:-unexpected log line}"
		echo "--- lines of $DAEMON_LOG matching: $1"
		grep -E -- "$1" "$DAEMON_LOG" | head -n 20
	} >&2
	exit 1
}

# log_count ERE: number of daemon log lines matching ERE.
log_count()
{
	grep -Ec -- "$1" "$DAEMON_LOG" || true
}

# assert_ge MIN ACTUAL WHAT / assert_le MAX ACTUAL WHAT: integer bounds.
assert_ge()
{
	[ "$2" -ge "$1" ] 2>/dev/null ||
	    fail "${3:-value too small}: expected >= $1, got \"$2\""
}

assert_le()
{
	[ "$2" -le "$1" ] 2>/dev/null ||
	    fail "${3:-value too large}: expected <= $1, got \"$2\""
}

# check_sanitizers: fails on any AddressSanitizer, LeakSanitizer or UBSan
# report in the logs of the daemon, the simulator and reconcilectl.
check_sanitizers()
{
	for _ld_f in "$T"/daemon*.log "$SIM_ERR" "$CTL_ERR" "$T"/*.err; do
		[ -f "$_ld_f" ] || continue
		if grep -Eq 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|Undefined)' "$_ld_f"; then
			echo "--- sanitizer report in $(basename "$_ld_f"):" >&2
			grep -E -A 30 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
			    "$_ld_f" | head -n 80 >&2
			fail "sanitizer report in $(basename "$_ld_f")"
		fi
	done
}

# pass: stops the daemon and the simulator if they still run (each must exit
# 0), checks the logs for sanitizer reports and the recorded control API
# answers against docs/openapi.yaml (record_exchanges), prints PASS.
pass()
{
	if [ -n "$DAEMON_PID" ]; then
		_ld_st=0
		stop_daemon || _ld_st=$?
		assert_eq 0 "$_ld_st" "reconciled exits 0 on SIGTERM at the end"
	fi
	if [ -n "$SIM_PID" ]; then
		_ld_st=0
		stop_sim || _ld_st=$?
		assert_eq 0 "$_ld_st" "toss-sim exits 0 on SIGTERM at the end"
	fi
	check_sanitizers
	check_exchanges
	[ "$LEDGER_BACKEND" != pg ] ||
	    assert_no_password "$DAEMON_LOG" "$CTL_ERR" "$T/stdout" "$T/stderr"
	echo "PASS: $TEST_NAME"
}

# --- control API on a unix socket (added for the fault, crash and valgrind
# scripts) ---
CONTROL_SOCK=$T/control.sock

# use_control_sock: the daemon's control API on $CONTROL_SOCK (call after
# write_daemon_config, which leaves "listen =" empty); its answers are
# recorded for the check against docs/openapi.yaml (pass).
use_control_sock()
{
	require_cmd curl
	[ -n "$API_LOG" ] || record_exchanges
	sed -e "s|^listen =.*|listen = unix:$CONTROL_SOCK|" "$CONF" >"$CONF.new"
	mv "$CONF.new" "$CONF"
}

# control METHOD PATH [CURL_ARG...]: one request to the control API on
# $CONTROL_SOCK; prints the HTTP status code ("000" when there was no
# answer), the body is left in $T/control.body.
control()
{
	_ld_cm=$1
	_ld_cp=$2
	shift 2
	rm -f "$T/control.body"
	_ld_cc=$(curl -sS --max-time 10 --unix-socket "$CONTROL_SOCK" \
	    -X "$_ld_cm" -o "$T/control.body" -D "$T/control.hdrs" \
	    -w '%{http_code}' "$@" "http://localhost$_ld_cp" 2>>"$CTL_ERR") ||
	    _ld_cc=000
	[ "$_ld_cc" = 000 ] ||
	    record_exchange "$_ld_cm" "$_ld_cp" "$T/control.hdrs" "$T/control.body"
	echo "$_ld_cc"
}

# healthz: "CODE BODY" of GET /healthz (the body as compact JSON, without
# roleSince, which is a time).
healthz()
{
	_ld_hc=$(control GET /healthz)
	echo "$_ld_hc $(jq -c 'del(.roleSince)' "$T/control.body" 2>/dev/null)"
}

# post_order ID USER_KEY: POST /v1/orders; fails unless it answers 201.
post_order()
{
	_ld_pc=$(control POST /v1/orders -H 'Content-Type: application/json' \
	    -d "{\"orderId\":\"$1\",\"userKey\":\"$2\"}")
	[ "$_ld_pc" = 201 ] ||
	    fail "POST /v1/orders $1: HTTP $_ld_pc $(cat "$T/control.body" 2>/dev/null)"
}

# stop_daemon_ok [TIMEOUT_S]: SIGTERM; the daemon must exit 0.
stop_daemon_ok()
{
	_ld_so=0
	stop_daemon "${1:-20}" || _ld_so=$?
	assert_eq 0 "$_ld_so" "reconciled exits 0 on SIGTERM"
}
