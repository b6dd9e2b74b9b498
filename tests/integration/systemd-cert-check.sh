#!/bin/sh
# The client certificate as ExecStartPre=reconciled -n and the running daemon
# judge it, with the exact messages: expired fails (78) for -n, a start and
# a reload (which keeps the old one); expiring within 30 days warns with the
# date and the days left; a key of another certificate, and an unreadable
# or missing certificate or key, fail (78). A relative cert/key resolves in
# $CREDENTIALS_DIRECTORY, as systemd's LoadCredential= hands them over.
# /metrics exports the expiry time of the certificate in use.
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl

rd()
{
	"$RECONCILED" "$@"
}

# not_after CERT: its notAfter in unix seconds.
not_after()
{
	date -u -d "$("$OPENSSL" x509 -enddate -noout -in "$1" | sed 's/^notAfter=//')" +%s
}

# rfc3339 UNIX_S: as the daemon prints times.
rfc3339()
{
	date -u -d "@$1" +%Y-%m-%dT%H:%M:%S.000Z
}

# with_identity CERT KEY [LINE...]: the daemon configuration with this pair.
with_identity()
{
	CFG_CERT=$1 CFG_KEY=$2
	shift 2
	write_daemon_config "$@"
	unset CFG_CERT CFG_KEY
}

exp_at=$(not_after "$T/certs/expired-client.crt")
soon_at=$(not_after "$T/certs/soon-client.crt")
good_at=$(not_after "$T/certs/client.crt")
EXPIRED_MSG="error: client certificate $T/certs/expired-client.crt expired on $(rfc3339 "$exp_at"): Toss will refuse it; issue a new one in the Toss console"

step "-n: an expired certificate fails with 78"
with_identity "$T/certs/expired-client.crt" "$T/certs/expired-client.key"
assert_exit 78 rd -n -c "$CONF"
assert_eq "" "$(out)" "no configuration OK"
assert_eq "$EXPIRED_MSG" "$(err | sed 's/^[^ ]* reconciled\[[0-9]*\]: //')" "the whole of stderr"

step "-n: expiring within 30 days is a warning with the date and the days left"
with_identity "$T/certs/soon-client.crt" "$T/certs/soon-client.key"
days=$(((soon_at - $(date +%s)) / 86400))
assert_exit 0 rd -n -c "$CONF"
assert_eq "configuration OK" "$(out)"
assert_match "^[^ ]+ reconciled\\[[0-9]+\\]: warning: client certificate $T/certs/soon-client.crt expires on $(rfc3339 "$soon_at") \\(in ($days|$((days - 1))) days\\): issue a new one in the Toss console\$" \
    "$(err)" "the warning"

step "-n: a valid certificate is an info line, no warning"
with_identity "$T/certs/client.crt" "$T/certs/client.key"
assert_exit 0 rd -n -c "$CONF"
assert_match "info: client certificate $T/certs/client.crt valid until $(rfc3339 "$good_at")\$" "$(err)"
assert_eq "" "$(err | grep -E 'warning|error')" "nothing to warn about"

step "-n: a key of another certificate, missing files: 78 and which file"
with_identity "$T/certs/client.crt" "$T/certs/soon-client.key"
assert_exit 78 rd -n -c "$CONF"
assert_match "error: $T/certs/soon-client.key does not match $T/certs/client.crt\$" "$(err)"
with_identity "$T/certs/gone.crt" "$T/certs/client.key"
assert_exit 78 rd -n -c "$CONF"
assert_match "error: $T/certs/gone.crt: cannot read: No such file or directory\$" "$(err)"

step "-n: an unreadable certificate or key: 78, Permission denied"
mkdir "$T/perm"
cp "$T/certs/client.crt" "$T/certs/client.key" "$T/perm/"
chmod 0644 "$T/perm/client.crt"
chmod 0600 "$T/perm/client.key"
ran=0
if [ "$(id -u)" = 0 ]; then
	# root reads anything: check as nobody, whom the mode keeps out.
	if command -v setpriv >/dev/null 2>&1; then
		chmod 0711 "$T"
		chmod 0755 "$T/perm"
		as_nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"
		ran=1
	fi
else
	chmod 0000 "$T/perm/client.key"
	as_nobody=
	ran=1
fi
if [ $ran = 1 ]; then
	with_identity "$T/perm/client.crt" "$T/perm/client.key"
	cp "$CONF" "$T/perm/reconciled.conf"
	chmod 0644 "$T/perm/reconciled.conf"
	assert_exit 78 $as_nobody "$RECONCILED" -n -c "$T/perm/reconciled.conf"
	assert_match "error: $T/perm/client.key: cannot read: Permission denied\$" "$(err)"
	chmod 0000 "$T/perm/client.crt"
	assert_exit 78 $as_nobody "$RECONCILED" -n -c "$T/perm/reconciled.conf"
	assert_match "error: $T/perm/client.crt: cannot read: Permission denied\$" "$(err)"
	chmod 0700 "$T"
else
	echo "(no setpriv: the unreadable case is not checked as root)"
fi

step "-n and a start under LoadCredential=: relative names resolve in \$CREDENTIALS_DIRECTORY"
mkdir "$T/creds"
cp "$T/certs/client.crt" "$T/creds/client.crt"
cp "$T/certs/client.key" "$T/creds/client.key"
with_identity client.crt client.key
assert_exit 0 env CREDENTIALS_DIRECTORY="$T/creds" "$RECONCILED" -n -c "$CONF"
assert_match "info: client certificate $T/creds/client.crt valid until " "$(err)"
assert_exit 78 env -u CREDENTIALS_DIRECTORY "$RECONCILED" -n -c "$CONF"
assert_match "error: client.crt: cannot read: No such file or directory\$" "$(err)"

step "a start with an expired certificate fails like -n"
with_identity "$T/certs/expired-client.crt" "$T/certs/expired-client.key"
assert_exit 78 rd -c "$CONF"
assert_match "$EXPIRED_MSG\$" "$(err)"
assert_eq "" "$(err | grep 'polling ')" "it never polled"

step "the running daemon: /metrics has the expiry; an expired certificate is refused on reload"
start_sim "$SCENARIOS/paid.json"
with_identity "$T/certs/client.crt" "$T/certs/client.key"
sed "s|^listen =\$|listen = unix:$T/control.sock|" "$CONF" >"$T/c" && mv "$T/c" "$CONF"
good_conf=$(cat "$CONF")
start_daemon
metric()
{
	curl -sf --unix-socket "$T/control.sock" http://localhost/metrics |
	    sed -n 's/^reconciled_cert_expiry_seconds //p'
}
assert_eq "$good_at" "$(metric)" "reconciled_cert_expiry_seconds"
printf '%s\n' "$good_conf" | sed "s|^cert = .*|cert = $T/certs/expired-client.crt|; s|^key = .*|key = $T/certs/expired-client.key|" >"$CONF"
hup_daemon
assert_log "error: reload failed, keeping the old configuration: client certificate $T/certs/expired-client.crt expired on $(rfc3339 "$exp_at"): Toss will refuse it; issue a new one in the Toss console\$"
assert_eq "$good_at" "$(metric)" "the expiry of the certificate still in use"
add_order paid-c1 7001
wait_until 5 "paid-c1 is granted with the old certificate" state_is paid-c1 granted

step "a certificate that expires soon: accepted on reload, with the warning"
printf '%s\n' "$good_conf" | sed "s|^cert = .*|cert = $T/certs/soon-client.crt|; s|^key = .*|key = $T/certs/soon-client.key|" >"$CONF"
hup_daemon
assert_log 'info: configuration reloaded$'
assert_log "warning: client certificate $T/certs/soon-client.crt expires on $(rfc3339 "$soon_at") \\(in [0-9]+ days\\): issue a new one in the Toss console\$"
assert_eq "$soon_at" "$(metric)" "reconciled_cert_expiry_seconds after the reload"
add_order paid-c2 7002
wait_until 5 "paid-c2 is granted with the new certificate" state_is paid-c2 granted
assert_eq 0 "$(orders_json | jq -s 'map(.errors) | add')" "errors"
pass
