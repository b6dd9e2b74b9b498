#!/bin/sh
# The service manager protocol as systemd would see it, against a test-owned
# $NOTIFY_SOCKET (an abstract socket, then a path): READY=1 only once the
# ledger exists and the control socket accepts connections, never when the
# start fails; every message from the daemon's own pid; STATUS= with live
# counts, refreshed; WATCHDOG=1 at half of $WATCHDOG_USEC when
# $WATCHDOG_PID names the daemon, none when it names another process;
# RELOADING=1 with MONOTONIC_USEC then READY=1 around SIGHUP, a failed
# reload included; STOPPING=1 on SIGTERM and nothing ready after it.
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd python3

RECV=$top_srcdir/tests/integration/sdnotify-recv.py
NLOG=$T/notify.jsonl
RECV_PID=
at_exit '[ -z "$RECV_PID" ] || kill "$RECV_PID" 2>/dev/null'
at_exit '[ "${_lib_rc:-1}" = 0 ] || [ ! -s "$NLOG" ] || { echo "--- $NLOG:"; tail -n 30 "$NLOG"; } >&2'

# start_recv SOCKET: the receiver on SOCKET, logging to a fresh $NLOG.
start_recv()
{
	rm -f "$NLOG"
	python3 "$RECV" "$1" "$NLOG" --ledger "$LEDGER" \
	    --control "$T/control.sock" 2>>"$T/recv.err" &
	RECV_PID=$!
	wait_until 10 "the notify receiver is bound" test -e "$NLOG"
}

stop_recv()
{
	kill "$RECV_PID"
	wait "$RECV_PID" || true
	RECV_PID=
}

# msgs FILTER: jq -c FILTER over the messages received so far.
msgs()
{
	jq -c "$1" "$NLOG"
}

# count FILTER: how many messages FILTER selects.
count()
{
	msgs "$1" | wc -l | tr -d ' '
}

# The daemon is started through a shell that execs it, so that
# $WATCHDOG_PID can name the daemon's own pid, as systemd does.
cat >"$T/wrap.sh" <<EOF
#!/bin/sh
if [ "\${WATCHDOG_PID:-}" = self ]; then
	WATCHDOG_PID=\$\$
	export WATCHDOG_PID
fi
exec "$RECONCILED" "\$@"
EOF
chmod +x "$T/wrap.sh"
RECONCILED=$T/wrap.sh

start_sim "$SCENARIOS/paid.json"
write_daemon_config
sed "s|^listen =\$|listen = unix:$T/control.sock|" "$CONF" >"$T/c" && mv "$T/c" "$CONF"
good_conf=$(cat "$CONF")

step "READY=1 once the ledger is open and the control socket is bound"
start_recv "@reconciled-test-notify-$$"
export NOTIFY_SOCKET="@reconciled-test-notify-$$"
export WATCHDOG_USEC=600000 WATCHDOG_PID=self
start_daemon
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID
wait_until 5 "READY=1 arrives" eval '[ "$(count "select(.fields.READY == \"1\")")" -ge 1 ]'
first=$(head -n 1 "$NLOG")
assert_eq '"READY=1"' "$(printf '%s' "$first" | jq -c '.msg | split("\n")[0]')" \
    "the first message is READY=1"
assert_eq "true true" "$(printf '%s' "$first" | jq -r '"\(.ledger) \(.control)"')" \
    "at READY: the ledger exists, the control socket accepts connections"
assert_match '^polling: 0 pending, 0 held, 0 due, 0 in flight; 0 events$' \
    "$(printf '%s' "$first" | jq -r .fields.STATUS)" "STATUS= with READY"
assert_eq 1 "$(printf '%s' "$first" | jq -r .fields.WATCHDOG)" "a ping with READY"
assert_log 'info: sdnotify: systemd watchdog 600ms: pinging every 300ms$'

step "WATCHDOG=1 every 300 ms"
n0=$(count 'select(.msg == "WATCHDOG=1")')
sleep 2
n1=$(count 'select(.msg == "WATCHDOG=1")')
assert_ge 5 $((n1 - n0)) "pings in 2 s"
assert_le 8 $((n1 - n0)) "pings in 2 s"
gap=$(msgs 'select(.fields.WATCHDOG == "1") | .t' |
    awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { print int(m / 1000) }')
assert_le 550 "$gap" "longest ms between two pings (timeout 600 ms)"

step "STATUS= follows the ledger"
for i in 1 2 3; do
	add_order "paid-n$i" "500$i"
done
wait_until 10 "a STATUS= line with the three grants" \
    eval '[ "$(count "select(.fields.STATUS != null and (.fields.STATUS | test(\"; 3 events\$\")))")" -ge 1 ]'
assert_match '^polling: 0 pending, 0 held, 0 due, 0 in flight; 3 events$' \
    "$(msgs 'select(.fields.STATUS != null) | .fields.STATUS' | tail -n 1 | jq -r .)" \
    "the last status"

step "SIGHUP: RELOADING=1 and MONOTONIC_USEC, then READY=1"
mark=$(wc -l <"$NLOG")
hup_daemon
wait_until 5 "READY=1 after the reload" \
    eval '[ "$(tail -n +$((mark + 1)) "$NLOG" | jq -c "select(.fields.READY == \"1\")" | wc -l)" -ge 1 ]'
seq=$(tail -n +$((mark + 1)) "$NLOG" | jq -r 'select(.msg != "WATCHDOG=1") | .msg | split("\n")[0]' | tr '\n' ' ')
assert_eq "RELOADING=1 READY=1 " "$seq" "the messages of a reload, in order"
rel=$(tail -n +$((mark + 1)) "$NLOG" | jq -c 'select(.fields.RELOADING == "1")')
mono=$(printf '%s' "$rel" | jq -r .fields.MONOTONIC_USEC)
recv_t=$(printf '%s' "$rel" | jq -r .t)
assert_match '^[0-9]+$' "$mono" "MONOTONIC_USEC"
assert_le "$recv_t" "$mono" "MONOTONIC_USEC is no later than its receipt"
assert_le 2000000 $((recv_t - mono)) "µs between MONOTONIC_USEC and receipt"
assert_le 550 "$(msgs 'select(.fields.WATCHDOG == "1") | .t' |
    awk 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 } END { print int(m / 1000) }')" \
    "longest ms between two pings, reload included"

step "a failed reload: RELOADING=1, then READY=1 saying so"
printf '%s\n[poll]\nbackof_max = 5s\n' "$good_conf" >"$CONF"
mark=$(wc -l <"$NLOG")
hup_daemon
assert_log 'reload failed, keeping the old configuration: .*unknown key "backof_max"'
wait_until 5 "READY=1 after the failed reload" \
    eval '[ "$(tail -n +$((mark + 1)) "$NLOG" | jq -c "select(.fields.READY == \"1\")" | wc -l)" -ge 1 ]'
assert_eq "RELOADING=1 READY=1 " \
    "$(tail -n +$((mark + 1)) "$NLOG" | jq -r 'select(.msg != "WATCHDOG=1") | .msg | split("\n")[0]' | tr '\n' ' ')" \
    "the messages of a failed reload, in order"
assert_match '; last reload failed \(see the log\)$' \
    "$(tail -n +$((mark + 1)) "$NLOG" | jq -r 'select(.fields.READY == "1") | .fields.STATUS')" \
    "STATUS= after a failed reload"
printf '%s\n' "$good_conf" >"$CONF"
mark=$(wc -l <"$NLOG")
hup_daemon
wait_until 5 "READY=1 after the good reload" \
    eval '[ "$(tail -n +$((mark + 1)) "$NLOG" | jq -c "select(.fields.READY == \"1\")" | wc -l)" -ge 1 ]'
assert_eq "polling: 0 pending, 0 held, 0 due, 0 in flight; 3 events" \
    "$(tail -n +$((mark + 1)) "$NLOG" | jq -r 'select(.fields.READY == "1") | .fields.STATUS')" \
    "STATUS= once a reload succeeded again"

step "SIGTERM: STOPPING=1, and nothing ready after it"
pid=$DAEMON_PID
st=0
stop_daemon || st=$?
assert_eq 0 "$st" "exit status after SIGTERM"
stop=$(msgs 'select(.fields.STOPPING == "1")')
assert_eq 1 "$(printf '%s\n' "$stop" | grep -c STOPPING)" "one STOPPING=1"
assert_match '^stopping: ' "$(printf '%s' "$stop" | jq -r .fields.STATUS)" "STATUS= with STOPPING"
assert_eq 0 "$(jq -s 'map(.fields) | (map(.STOPPING == "1") | index(true)) as $i |
    .[$i + 1:] | map(select(.READY != null or .RELOADING != null)) | length' "$NLOG")" \
    "READY or RELOADING after STOPPING"
assert_eq "" "$(msgs "select(.pid != $pid)")" "every message came from the daemon's pid"
stop_recv

step "no READY=1 when the start fails (a socket path this time)"
start_recv "$T/notify.sock"
printf 'precious data\n' >"$T/foreign.db"
sed "s|^path = .*|path = $T/foreign.db|" "$CONF" >"$T/foreign.conf"
assert_exit 1 env NOTIFY_SOCKET="$T/notify.sock" "$RECONCILED" -c "$T/foreign.conf"
assert_match "not an SQLite database" "$(err)"
sed "s|^cert = .*|cert = $T/certs/expired-client.crt|; s|^key = .*|key = $T/certs/expired-client.key|" \
    "$CONF" >"$T/expired.conf"
assert_exit 78 env NOTIFY_SOCKET="$T/notify.sock" "$RECONCILED" -c "$T/expired.conf"
assert_match "error: client certificate $T/certs/expired-client.crt expired on " "$(err)"
sleep 0.3
assert_eq 0 "$(count .)" "messages from starts that failed"

step "WATCHDOG_PID naming another process: no pings; READY=1 on a path socket"
export NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=200000 WATCHDOG_PID=1
start_daemon
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID
wait_until 5 "READY=1 arrives" eval '[ "$(count "select(.fields.READY == \"1\")")" -ge 1 ]'
sleep 1
assert_eq 0 "$(count 'select(.fields.WATCHDOG != null)')" "pings meant for pid 1"
assert_eq "READY=1" "$(msgs 'select(.fields.READY == "1") | .msg | split("\n")[0]' | jq -r .)" \
    "READY=1 without a ping"
pass
