#!/bin/sh
# The real daemon under valgrind (issue 6): reconciled from a build without
# sanitizers (e.g. ./configure --enable-debug) runs under memcheck against
# toss-sim with every status path, most of them behind a fault first (5xx,
# reset, truncated, garbage, FAIL envelope, stall past the timeout, a 10 MB
# body, an answer for another order, a 429 that pauses the poller), with a
# JSONL file and a webhook receiver as sinks, orders arriving by import and
# through the control API, a SIGHUP reload with a changed configuration, and
# SIGTERM. Every order must settle exactly as its path implies with every
# event in both sinks; the daemon must exit 0 with valgrind's exit status
# not 99, "ERROR SUMMARY: 0 errors" and no definite, indirect or possible
# leak. reconcilectl runs under valgrind too, for the import and a stats
# (and a show and an events), with the same checks. The valgrind summaries
# are printed.
#
# usage: sh tests/valgrind-daemon.sh   (from the build directory, after
#        make check; or set top_srcdir and top_builddir)
# Exit 0 pass, 1 fail, 77 skipped (no valgrind, or an ASan build).
: "${top_builddir:=$(pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
export top_srcdir top_builddir
. "$top_srcdir/tests/integration/crash-lib.sh"

require_cmd valgrind curl
if grep -q __asan_init "$RECONCILED"; then
	skip "$RECONCILED is an ASan build: valgrind needs a build without sanitizers"
fi

VG_OPTS="--leak-check=full --show-leak-kinds=definite,indirect,possible
--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99
--track-fds=yes --num-callers=30"
VG_DAEMON_LOG=$T/valgrind-reconciled.log

# The daemon runs through a wrapper that execs valgrind: the daemon's pid
# is the wrapper's, so signals and start_daemon/stop_daemon work unchanged.
REAL_RECONCILED=$RECONCILED
cat >"$T/vg-reconciled" <<EOF
#!/bin/sh
exec valgrind $(echo $VG_OPTS) --log-file="$VG_DAEMON_LOG" "$REAL_RECONCILED" "\$@"
EOF
chmod +x "$T/vg-reconciled"

# vg_ctl NAME ARG...: reconcilectl ARG... under valgrind, its own log in
# $T/valgrind-ctl-NAME.log, its output in $T/stdout and $T/stderr; must
# exit 0 (valgrind's 99 means errors or leaks).
vg_ctl()
{
	_vg_name=$1
	shift
	_vg_st=0
	valgrind $VG_OPTS --log-file="$T/valgrind-ctl-$_vg_name.log" \
	    "$RECONCILECTL" -c "$CONF" "$@" >"$T/stdout" 2>"$T/stderr" || _vg_st=$?
	[ "$_vg_st" = 0 ] || {
		cat "$T/stderr" >&2
		vg_summary "$T/valgrind-ctl-$_vg_name.log" >&2
		fail "reconcilectl $* under valgrind: exit status $_vg_st (99: valgrind found errors or leaks)"
	}
	vg_check "$T/valgrind-ctl-$_vg_name.log" "reconcilectl $1"
}

# vg_summary LOG: valgrind's closing summary (descriptors, heap, leaks,
# errors).
vg_summary()
{
	sed -n '/FILE DESCRIPTORS:/,$p' "$1" | sed 's/^==[0-9]*== //' |
	    grep -Ev '^ *$|^(For lists of|For counts of|Rerun with|To see them)' |
	    grep -Ev '^ *(at|by) 0x' || true
}

# vg_check LOG WHAT: no error and no leak in the valgrind log LOG.
vg_check()
{
	[ -s "$1" ] || fail "$2: no valgrind log $1"
	if ! grep -Eq '== ERROR SUMMARY: 0 errors from 0 contexts' "$1"; then
		echo "--- $1:" >&2
		cat "$1" >&2
		fail "$2: valgrind reports errors"
	fi
	if ! grep -q 'All heap blocks were freed -- no leaks are possible' "$1"; then
		for _vg_k in 'definitely lost' 'indirectly lost' 'possibly lost'; do
			grep -Eq "== +$_vg_k: 0 bytes in 0 blocks" "$1" || {
				cat "$1" >&2
				fail "$2: valgrind reports memory $_vg_k"
			}
		done
	fi
	# Descriptors left open at exit other than stdin/out/err and those
	# inherited from the shell: "Open file descriptor N: PATH" followed by
	# a stack (an inherited one says "<inherited from parent>").
	_vg_fds=$(sed 's/^==[0-9]*== //' "$1" | awk '
	    /^Open (file descriptor|AF_[A-Z0-9]* socket)/ { what = $0; next }
	    what != "" && /<inherited from parent>/ { what = ""; next }
	    what != "" && /^ *(at|by) 0x/ { print what; what = ""; next }' |
	    grep -v 'valgrind' || true)
	assert_eq "" "$_vg_fds" "$2: descriptors the program opened and left open at exit"
}

start_sim "$SCENARIOS/valgrind.json"
start_webhook
# Valgrind slows the daemon down 20 to 50 times, TLS handshakes most:
# few requests at once, generous timeouts (a stalled answer still ends at
# `timeout`), and grace and give-up times (counted from an order's intake)
# long enough for a first answer yet short enough that NOT_FOUND and
# ORDER_IN_PROGRESS settle within the run.
CFG_MAX_INFLIGHT=8
CFG_TIMEOUT=3s
CFG_CONNECT_TIMEOUT=10s
CFG_NOT_FOUND_GRACE=15s
CFG_GIVE_UP_AFTER=20s
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=1s
write_crash_config
use_control_sock

step "reconcilectl import under valgrind"
make_orders 700000 $(kind_prefixes "$VALGRIND_KINDS" | sed 's/$/:2/')
vg_ctl import import "$T/orders.jsonl"
assert_eq "$(wc -l <"$T/orders.jsonl" | tr -d ' ') added, 0 known, 0 rejected" \
    "$(out)" "reconcilectl import under valgrind"

step "the daemon under valgrind: orders by import and through the control API"
RECONCILED=$T/vg-reconciled
t0=$(now_ms)
start_daemon
echo "polling $(($(now_ms) - t0)) ms after the start under valgrind"
wait_until 30 "the control API answers" test -S "$CONTROL_SOCK"
for id in v-paid-0101 v-grref-0101 v-unk-0101; do
	post_order "$id" 7001
	printf '{"orderId":"%s","userKey":"7001"}\n' "$id" >>"$T/orders.jsonl"
done
write_expected
wait_until 60 "the first grants" eval '[ "$(event_count grant)" -ge 3 ]'

step "SIGHUP: a reload with a changed configuration"
CFG_BACKOFF_MAX=2s
CFG_REFUND_CHECK_MAX=2s
write_crash_config "webhook_timeout = 20s"
use_control_sock
hup_daemon
assert_log 'info: configuration reloaded$'

step "every order settles right, both sinks catch up"
wait_settled 120
wait_until 60 "the sinks catch up" sinks_caught_up
assert_eq 200 "$(control GET '/v1/events?after=0&limit=5')" "GET /v1/events"
assert_eq 5 "$(jq '.events | length' "$T/control.body")" "events in GET /v1/events?limit=5"
assert_eq 200 "$(control GET /v1/orders/v-paid-0101)" "GET /v1/orders/v-paid-0101"
assert_eq granted "$(jq -r .state "$T/control.body")" "v-paid-0101 through the control API"
assert_eq 200 "$(control POST /v1/orders/v-gone-0001/recheck)" "POST recheck"
assert_eq 200 "$(control GET /metrics)" "GET /metrics"
assert_match '^reconciled_' "$(cat "$T/control.body")" "/metrics"
assert_eq '200 {"status":"ok","role":"leader"}' "$(healthz)" "/healthz"

step "SIGTERM: exit 0, valgrind finds no error and no leak"
# valgrind's leak check takes a few seconds at exit.
stop_daemon_ok 120
echo "stopped $STOP_ELAPSED_MS ms after SIGTERM under valgrind"
vg_check "$VG_DAEMON_LOG" reconciled
RECONCILED=$REAL_RECONCILED

assert_run_sound "$T/events.jsonl"
for f in http5xx reset truncated garbage fail stall bigBody otherOrderId rate429; do
	assert_ge 1 "$(sim_count "select(.outcome == \"fault:$f\")")" "requests answered with fault $f"
done
assert_log 'poller: paused: HTTP 429 rate limited, Retry-After 1s$'
assert_log 'poller: resumed after the rate_limited pause'

step "reconcilectl stats, show and events under valgrind"
vg_ctl stats stats --json
assert_eq "$(ctl stats --json | jq -c .orders)" "$(jq -c .orders "$T/stdout")" \
    "reconcilectl stats under valgrind"
vg_ctl show show v-grref-0001 --json
assert_eq refunded "$(jq -r .state "$T/stdout")" "reconcilectl show under valgrind"
vg_ctl events events --json --limit 100000
assert_eq "$(events_json)" "$(cat "$T/stdout")" "reconcilectl events under valgrind"

for log in "$VG_DAEMON_LOG" "$T"/valgrind-ctl-*.log; do
	echo "=== valgrind: $(basename "$log" .log | sed 's/^valgrind-//')"
	vg_summary "$log"
done
pass
