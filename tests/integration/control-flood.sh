#!/bin/sh
# The control API under a connection flood with few descriptors (ulimit -n
# 64, 80 idle loopback connections). With max_connections above what the
# limit allows, accept() fails with EMFILE: the daemon pauses accepting
# instead of spinning (CPU time and log size bounded) and /healthz answers
# once the flood ends. With max_connections under the limit, Toss is still
# polled while the flood runs (orders settle), and a client trickling its
# headers is cut within the request deadline (10 s).
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl python3

# The daemon under ulimit -n 64 (soft and hard: it cannot raise it).
cat >"$T/rd-64" <<EOF
#!/bin/sh
ulimit -n 64 || exit 99
exec "$RECONCILED" "\$@"
EOF
chmod +x "$T/rd-64"
REAL_RECONCILED=$RECONCILED
RECONCILED=$T/rd-64

# flood N: N idle connections to the control port, held until killed; sets
# FLOOD_PID once they are all connected (or queued).
flood()
{
	rm -f "$T/flood.ready"
	python3 -c '
import socket, sys, time
socks = []
for i in range(int(sys.argv[2])):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    socks.append(s)
open(sys.argv[3], "w").close()
time.sleep(600)
' "$PORT" "$1" "$T/flood.ready" 2>"$T/flood.err" &
	FLOOD_PID=$!
	wait_until 10 "the flood is connected" test -e "$T/flood.ready"
}

flood_end()
{
	kill "$FLOOD_PID" 2>/dev/null || true
	wait "$FLOOD_PID" 2>/dev/null || true
	FLOOD_PID=
}
at_exit '[ -z "${FLOOD_PID:-}" ] || kill "$FLOOD_PID" 2>/dev/null'

# cpu_ticks: user + system time of the daemon, in clock ticks.
cpu_ticks()
{
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$DAEMON_PID/stat"
}

healthz_code()
{
	curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz"
}

start_sim "$SCENARIOS/paid.json"
TOKEN=fl00d-t0ken

step "EMFILE: no spin, one log line, /healthz after the flood"
PORT=$(free_port)
CFG_MAX_INFLIGHT=4 write_daemon_config
sed -e "s|^listen =.*|listen = 127.0.0.1:$PORT|" "$CONF" >"$CONF.new"
printf 'token = %s\nmax_connections = 200\n' "$TOKEN" >>"$CONF.new"
mv "$CONF.new" "$CONF"
start_daemon
assert_log "descriptor limit 64 is below the 236 this configuration may use" \
    "the start warns about the descriptor budget"
assert_eq 200 "$(healthz_code)" "/healthz before the flood"
flood 80
t0=$(cpu_ticks)
sleep 4
t1=$(cpu_ticks)
ticks=$((t1 - t0))
echo "cpu ticks in 4 s of flood: $ticks"
assert_le 80 "$ticks" "CPU time in 4 s of flood (ticks of 1/100 s)"
n=$(log_count 'control: cannot accept a connection: Too many open files')
assert_ge 1 "$n" "EMFILE is logged"
assert_le 2 "$n" "EMFILE is logged once a minute at most"
assert_le 200000 "$(wc -c <"$DAEMON_LOG")" "the log stays small"
assert_no_log 'Error from accept' "libevent's own accept warning never shows"
flood_end
wait_until 5 "/healthz answers after the flood" \
    eval '[ "$(healthz_code)" = 200 ]'
daemon_alive || fail "the daemon died under the flood"
assert_ge 1 "$(curl -s "http://127.0.0.1:$PORT/metrics" |
    awk '$1 == "reconciled_control_accept_pauses_total" { print $2 }')" \
    "the pauses are counted"
stop_daemon_ok

step "max_connections 16: Toss is polled while the API is flooded"
: >"$DAEMON_LOG"
sed -e 's/^max_connections = .*/max_connections = 16/' "$CONF" >"$CONF.new"
mv "$CONF.new" "$CONF"
start_daemon
assert_no_log "descriptor limit" "16 + 4 fit under 64"
flood 80
t0=$(cpu_ticks)
for i in 1 2 3 4 5; do
	add_order "paid-flood-$i" "$i"
done
wait_until 15 "the orders settle while the flood runs" \
    eval '[ "$(ctl list --state granted --json | jq -s length)" = 5 ]'
daemon_alive || fail "the daemon died under the flood"
assert_no_log 'cannot accept' "the cap keeps descriptors in reserve"
t1=$(cpu_ticks)
echo "cpu ticks while settling under the flood: $((t1 - t0))"
flood_end
wait_until 15 "/healthz answers after the flood" \
    eval '[ "$(healthz_code)" = 200 ]'

step "a client trickling its headers is cut within the deadline"
python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
t0 = time.monotonic()
s.settimeout(0.5)
while True:
    try:
        s.sendall(b"X-Slow: 1\r\n")
        if s.recv(4096) == b"":
            break
    except socket.timeout:
        pass
    except OSError:
        break
    if time.monotonic() - t0 > 40:
        break
    time.sleep(1.5)
print(round(time.monotonic() - t0))
' "$PORT" >"$T/slow.out" 2>"$T/slow.err"
cut_after=$(cat "$T/slow.out")
echo "the slow client was cut after ${cut_after} s"
assert_ge 9 "$cut_after" "the deadline is not shorter than 10 s"
assert_le 13 "$cut_after" "the slow client is cut within the 10 s deadline"
assert_log 'control: a client did not send its request within 10 s' \
    "the cut is logged"
assert_eq 200 "$(healthz_code)" "/healthz after the slow client"
stop_daemon_ok
RECONCILED=$REAL_RECONCILED
check_sanitizers
pass
