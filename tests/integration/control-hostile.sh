#!/bin/sh
# The control API against what a hostile local user or web page would try:
# a TCP listen without a token is refused (-n, start and reload, exit 78
# naming file:line), no [control] section starts with the API off, the
# systemd default is a unix socket in $RUNTIME_DIRECTORY that needs no
# token, foreign Host and Origin headers are refused, a POST body must be
# JSON (415) while a bodiless recheck passes, a squatted orderId is a
# warning with both masked userKeys and a metric. Then the smaller holes of
# the configuration: an http:// base_url (refused unless loopback, a
# warning even then) and secrets in files others can read (warnings).
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl python3

# set_control LINE...: replaces the [control] section (the last one of
# write_daemon_config) with the lines given.
set_control()
{
	sed -e '/^\[control\]$/,$d' "$CONF" >"$CONF.new"
	{
		echo "[control]"
		for _l in "$@"; do
			echo "$_l"
		done
	} >>"$CONF.new"
	mv "$CONF.new" "$CONF"
}

record_exchanges

# req METHOD PATH [CURL_ARG...]: one request to $BASE; sets CODE and BODY.
req()
{
	_m=$1
	_p=$2
	shift 2
	exchange_next "$_m" "$_p"
	CODE=$(curl -sS -o "$EX_BODY" -D "$EX_HDRS" -w '%{http_code}' -X "$_m" "$@" \
	    ${SOCK:+--unix-socket "$SOCK"} "$BASE$_p") || fail "curl $_m $_p"
	BODY=$(cat "$EX_BODY")
}

# expect_code CODE ERROR_CODE WHAT: the last answer (ERROR_CODE "-" for a
# success).
expect_code()
{
	assert_eq "$1" "$CODE" "$3: HTTP status (body: $BODY)"
	[ "$2" = - ] ||
	    assert_eq "$2" "$(printf '%s' "$BODY" | jq -r .error.code)" \
	    "$3: error code"
}

start_sim "$SCENARIOS/paid.json"
chmod 0600 "$T/certs/client.key"

step "a TCP listen without a token: -n, start and reload refuse it"
write_daemon_config
PORT=$(free_port)
set_control "listen = 127.0.0.1:$PORT"
chmod 0600 "$CONF"
want="$CONF:[0-9]+: listen: a TCP address needs a token"
assert_exit 78 "$RECONCILED" -c "$CONF" -n
assert_match "$want" "$(err)" "-n names the key and its line"
assert_exit 78 "$RECONCILED" -c "$CONF"
assert_match "$want" "$(err)" "a start names the key and its line"

step "no [control] section: the daemon starts, the API is off"
write_daemon_config
sed -e '/^\[control\]$/,$d' "$CONF" >"$CONF.new" && mv "$CONF.new" "$CONF"
start_daemon
assert_log "control: no \[control\] listen .*the control API is off" \
    "one line says the API is off"
assert_no_log "listening on" "nothing listens"
stop_daemon_ok

step "under systemd (RUNTIME_DIRECTORY): a unix socket, 0660, no token"
mkdir -m 0750 "$T/run"
RUNTIME_DIRECTORY=$T/run start_daemon
SOCK=$T/run/control.sock
BASE=http://localhost
assert_eq 660 "$(stat -c %a "$SOCK")" "the socket's mode"
post_order_sock()
{
	req POST /v1/orders -H 'Content-Type: application/json' -d "$1"
}
post_order_sock '{"orderId":"paid-1","userKey":"443731104"}'
expect_code 201 - "an order over the socket without a token"
stop_daemon_ok
SOCK=

step "TCP with a token: Host, Origin and Content-Type are checked"
TOKEN=h0stile-t0ken
set_control "listen = 127.0.0.1:$PORT" "token = $TOKEN" \
    "allowed_hosts = ops.internal" "allowed_origins = https://ops.example"
start_daemon
BASE=http://127.0.0.1:$PORT
AUTHH="Authorization: Bearer $TOKEN"
JSON='Content-Type: application/json'
req GET /healthz
expect_code 200 - "/healthz needs no token"
req GET /metrics
expect_code 200 - "/metrics needs no token"
case $BODY in
*"$T"*) fail "/metrics names a file of the test directory" ;;
esac
req GET /v1/events
expect_code 401 unauthorized "the feed needs the token"
req GET /v1/events -H "$AUTHH"
expect_code 200 - "the feed with the token"
req GET /v1/events -H "$AUTHH" -H "Host: evil.example:$PORT"
expect_code 403 host_not_allowed "a foreign Host (DNS rebinding)"
req GET /healthz -H "Host: evil.example"
expect_code 403 host_not_allowed "a foreign Host, even for /healthz"
req GET /v1/events -H "$AUTHH" -H "Host: localhost:$PORT"
expect_code 200 - "Host: localhost"
req GET /v1/events -H "$AUTHH" -H "Host: OPS.internal"
expect_code 200 - "a Host from allowed_hosts"
req GET /v1/events -H "$AUTHH" -H "Origin: https://evil.example"
expect_code 403 origin_not_allowed "a foreign Origin"
req GET /v1/events -H "$AUTHH" -H "Origin: null"
expect_code 403 origin_not_allowed "Origin: null"
req GET /v1/events -H "$AUTHH" -H "Origin: https://ops.example"
expect_code 200 - "an allowed Origin"
req POST /v1/orders -H "$AUTHH" -H 'Content-Type: text/plain' \
    -d '{"orderId":"paid-2","userKey":"5"}'
expect_code 415 unsupported_media_type "a text/plain POST"
req POST /v1/orders -H "$AUTHH" -d '{"orderId":"paid-2","userKey":"5"}'
expect_code 415 unsupported_media_type "a form POST (curl's default type)"
req POST /v1/orders -H "$AUTHH" -H 'Content-Type: application/json; charset=utf-8' \
    -d '{"orderId":"paid-2","userKey":"5"}'
expect_code 201 - "application/json with a charset"
req POST /v1/orders/paid-2/recheck -H "$AUTHH"
expect_code 200 - "a bodiless recheck needs no Content-Type"
assert_eq "" "$(ctl show paid-2 --json | jq -r 'select(.orderId != "paid-2")')" \
    "paid-2 is in the ledger"
req GET /metrics
for r in host origin content_type unauthorized; do
	case $r in
	host | origin | content_type) n=2 ;;
	unauthorized) n=1 ;;
	esac
	assert_eq "$n" "$(printf '%s\n' "$BODY" |
	    awk -v k="reconciled_control_refused_total{reason=\"$r\"}" '$1 == k { print $2 }')" \
	    "refusals counted: $r"
done

step "a squatted orderId: 409, a warning with both masked keys, a metric"
req POST /v1/orders -H "$AUTHH" -H "$JSON" \
    -d '{"orderId":"paid-2","userKey":"999888777"}'
expect_code 409 user_key_conflict "another userKey"
assert_log 'warning: control: order paid-2 refused: known with userKey \*\*\*\*, posted with userKey 99\*\*\*\*\*77' \
    "the conflict is a warning with both keys masked"
assert_no_log '999888777' "the full userKey is never logged"
req GET /metrics
assert_eq 1 "$(printf '%s\n' "$BODY" |
    awk '$1 == "reconciled_intake_conflicts_total" { print $2 }')" \
    "reconciled_intake_conflicts_total"

step "a reload that drops the token is refused; the old config stays"
set_control "listen = 127.0.0.1:$PORT"
hup_daemon
assert_log "reload failed, keeping the old configuration: $CONF:[0-9]+: listen: a TCP address needs a token" \
    "the reload names the key"
req GET /v1/events
expect_code 401 unauthorized "the token still holds"
stop_daemon_ok

step "base_url http://: refused unless loopback, a warning even then"
write_daemon_config
sed -e "s|^base_url =.*|base_url = http://toss.example|" "$CONF" >"$CONF.new"
mv "$CONF.new" "$CONF"
assert_exit 78 "$RECONCILED" -c "$CONF" -n
assert_match "$CONF:[0-9]+: base_url: http:// is only for a loopback simulator" \
    "$(err)" "a plain http base_url elsewhere"
sed -e "s|^base_url =.*|base_url = http://127.0.0.1:9|" "$CONF" >"$CONF.new"
mv "$CONF.new" "$CONF"
assert_exit 0 "$RECONCILED" -c "$CONF" -n
assert_match "base_url http://127.0.0.1:9 is plain http: answers are not authenticated" \
    "$(err)" "a loopback http base_url is a warning"

step "secrets in files every user can read: warnings at -n, start, reload"
write_daemon_config
PORT=$(free_port)
set_control "listen = 127.0.0.1:$PORT" "token = $TOKEN"
chmod 0644 "$CONF"
chmod 0604 "$T/certs/client.key"
assert_exit 0 "$RECONCILED" -c "$CONF" -n
assert_match "warning: the configuration file holding a secret, $CONF is readable by every user \(mode 0644\)" \
    "$(err)" "-n: the config file"
assert_match "warning: the private key $T/certs/client.key is readable by every user \(mode 0604\)" \
    "$(err)" "-n: the key"
: >"$DAEMON_LOG"
start_daemon
assert_log "the configuration file holding a secret, $CONF is readable by every user \(mode 0644\)" \
    "start: the config file"
chmod 0600 "$CONF" "$T/certs/client.key"
hup_daemon
assert_eq 1 "$(log_count 'is readable by every user \(mode 0644\)')" \
    "no warning once the mode is fixed"
chmod 0640 "$CONF"
chmod 0644 "$T/certs/client.key"
hup_daemon
assert_log "the private key $T/certs/client.key is readable by every user \(mode 0644\)" \
    "reload: the key"
chmod 0600 "$T/certs/client.key"
assert_no_log "$TOKEN" "the token is never logged"
stop_daemon_ok
check_sanitizers
pass
