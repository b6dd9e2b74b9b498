# Two daemon instances, a and b, on one PostgreSQL ledger (the failover,
# outage and partition tests): their configurations, processes, roles and
# control APIs, and what the simulator's request log must show for the
# pair. Source it after crash-lib.sh (or lib-daemon.sh) with
# LEDGER_BACKEND=pg.

require_cmd curl

# inst_configs: $T/a.conf and $T/b.conf from $CONF, each with its control
# API on its own unix socket ($T/X.sock); the instance's TLS client
# certificate is CERT_X/KEY_X when set (the simulator logs its name).
inst_configs()
{
	for _ha_x in a b; do
		_ha_c=$(eval "echo \${CERT_$_ha_x:-}")
		_ha_k=$(eval "echo \${KEY_$_ha_x:-}")
		sed -e "s|^listen =.*|listen = unix:$T/$_ha_x.sock|" \
		    ${_ha_c:+-e "s|^cert = .*|cert = $_ha_c|"} \
		    ${_ha_k:+-e "s|^key = .*|key = $_ha_k|"} "$CONF" \
		    >"$T/$_ha_x.conf"
	done
}

# inst_start X starts X (a or b) logging to $T/daemon-X.log; its pid is
# in PID_X.
PID_a=
PID_b=
at_exit '[ -z "$PID_a" ] || kill -9 "$PID_a" 2>/dev/null'
at_exit '[ -z "$PID_b" ] || kill -9 "$PID_b" 2>/dev/null'
at_exit '[ "${_lib_rc:-1}" = 0 ] || { for x in a b; do echo "--- last lines of daemon-$x.log:"; tail -n 30 "$T/daemon-$x.log"; done; } >&2'

inst_start()
{
	"$RECONCILED" -c "$T/$1.conf" -v >>"$T/daemon-$1.log" 2>&1 &
	eval "PID_$1=$!"
}

inst_pid()
{
	eval "echo \$PID_$1"
}

# inst_role X: X's role as its /healthz says ("-" when it does not answer).
inst_role()
{
	curl -sS --max-time 2 --unix-socket "$T/$1.sock" \
	    http://localhost/healthz 2>/dev/null | jq -r '.role // "-"' 2>/dev/null ||
	    echo -
}

role_is()
{
	[ "$(inst_role "$1")" = "$2" ]
}

# inst_try_post X ID USER_KEY: POST /v1/orders to X; true when it
# answered 201 (the order is then added to $T/orders.jsonl).
inst_try_post()
{
	_ha_c=$(curl -sS --max-time 10 --unix-socket "$T/$1.sock" -o "$T/post.body" \
	    -w '%{http_code}' -H 'Content-Type: application/json' \
	    -d "{\"orderId\":\"$2\",\"userKey\":\"$3\"}" \
	    http://localhost/v1/orders 2>>"$T/post.err") || _ha_c=000
	[ "$_ha_c" = 201 ] || return 1
	printf '{"orderId":"%s","userKey":"%s"}\n' "$2" "$3" >>"$T/orders.jsonl"
}

# inst_post X ID USER_KEY: the same; fails unless 201.
inst_post()
{
	inst_try_post "$@" ||
	    fail "POST /v1/orders $2 to $1: HTTP $_ha_c $(cat "$T/post.body" 2>/dev/null)"
}

# other X: the other instance.
other()
{
	if [ "$1" = a ]; then echo b; else echo a; fi
}

# leaders: how many instances say they lead.
leaders()
{
	echo "$(inst_role a) $(inst_role b)" | tr ' ' '\n' | grep -c '^leader$'
}

# inst_stop_all: SIGTERM to each running instance, the leader last (so that
# no standby takes over on the way out); each must exit 0.
inst_stop_all()
{
	_ha_order="a b"
	! role_is a leader || _ha_order="b a"
	for _ha_x in $_ha_order; do
		_ha_p=$(inst_pid "$_ha_x")
		[ -n "$_ha_p" ] || continue
		kill -TERM "$_ha_p"
		_ld_reap "$_ha_p" 20 || fail "$_ha_x did not stop on SIGTERM"
		assert_eq 0 "$_ld_status" "$_ha_x exits 0 on SIGTERM"
		eval "PID_$_ha_x="
	done
}

# rate_max WINDOW_MS: the most requests the simulator's log holds in any
# WINDOW_MS.
rate_max()
{
	jq -r .t "$SIM_LOG" | sort -n | awk -v w="$1" '{ t[NR] = $1 } END {
	    j = 1; m = 0
	    for (i = 1; i <= NR; i++) {
		while (t[i] - t[j] >= w) j++
		if (i - j + 1 > m) m = i - j + 1
	    }
	    print m }'
}

# assert_rate_held RATE: no second of the simulator's request log holds
# more than RATE requests (whichever instance sent them). The log has the
# time the simulator read each request, which on a loaded machine (a
# sanitizer build beside other tests) lags the send by more than the
# limiter's 25 ms margin now and then: the window checked is 950 ms, which
# allows 75 ms of such lag, while two instances asking at once would put
# up to twice RATE in it. Both figures are printed.
assert_rate_held()
{
	_ha_max=$(rate_max 950)
	echo "requests: $(wc -l <"$SIM_LOG" | tr -d ' '), the most in one second: $(rate_max 1000), in 950 ms: $_ha_max"
	assert_le "$1" "$_ha_max" "requests in any 950 ms"
}
