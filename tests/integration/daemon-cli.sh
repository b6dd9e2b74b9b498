#!/bin/sh
# reconciled's command line as an operator meets it: -V, -h, -n on a good
# configuration and on every kind of bad one (exit 78 with file:line or the
# file at fault), a ledger that is not ours or cannot be created (exit 1,
# file untouched), usage errors (exit 64). The same failures stop a real
# start with the same status. No simulator needed: nothing here talks.
. "$top_srcdir/tests/integration/lib-daemon.sh"

rd()
{
	"$RECONCILED" "$@"
}

# config_with [NAME=VALUE...]: write_daemon_config with some CFG_ variables
# set for this one call.
config_with()
{
	unset CFG_CERT CFG_KEY
	for _a in "$@"; do
		eval "${_a%%=*}=\${_a#*=}"
	done
	write_daemon_config
	unset CFG_CERT CFG_KEY
}

USAGE_LINE='usage: reconciled [-c FILE] [-n [-n]] [--once] [-v]... [-V]'

step "-V: the versions of reconciled and its libraries"
assert_exit 0 rd -V
# A sixth line in builds with the PostgreSQL backend.
assert_match '^[56]$' "$(out | wc -l | tr -d ' ')" "-V prints five or six lines"
assert_match '^reconciled [0-9]+\.[0-9]+\.[0-9]+$' "$(out | sed -n 1p)" "-V line 1"
assert_match '^libevent [0-9]+\.[0-9]+\.[0-9]+' "$(out | sed -n 2p)" "-V line 2"
assert_match '^libcurl [0-9]+\.[0-9]+\.[0-9]+' "$(out | sed -n 3p)" "-V line 3"
assert_match '^json-c [0-9]+\.[0-9]+' "$(out | sed -n 4p)" "-V line 4"
assert_match '^SQLite 3\.[0-9]+\.[0-9]+$' "$(out | sed -n 5p)" "-V line 5"
[ "$(out | wc -l | tr -d ' ')" = 5 ] ||
    assert_match '^libpq [0-9]+\.[0-9]+$' "$(out | sed -n 6p)" "-V line 6"
assert_eq "" "$(err)" "-V writes nothing on stderr"
version=$(out)
assert_exit 0 rd --version
assert_eq "$version" "$(out)" "--version is -V"

step "-h"
assert_exit 0 rd -h
assert_eq "$USAGE_LINE" "$(out | sed -n 1p)" "-h first line"
for o in '-c, --config FILE' '-n, --check' '--once' '-v, --verbose' '-V, --version'; do
	assert_file_contains "$T/stdout" "$o"
done
assert_eq "" "$(err)" "-h writes nothing on stderr"

step "usage errors exit 64"
assert_exit 64 rd --bogus
assert_eq "reconciled: bad option --bogus" "$(err | sed -n 1p)"
assert_eq "$USAGE_LINE" "$(err | sed -n 2p)" "usage after the error"
assert_eq "" "$(out)" "nothing on stdout"
assert_exit 64 rd -x
assert_eq "reconciled: bad option -x" "$(err | sed -n 1p)"
assert_exit 64 rd -n extra
assert_eq "reconciled: unexpected argument extra" "$(err | sed -n 1p)"
assert_exit 64 rd -c
assert_match '^reconciled: .*-c' "$(err | sed -n 1p)" "-c without a file"

step "-n on a good configuration"
write_daemon_config
assert_exit 0 rd -n -c "$CONF"
assert_eq "configuration OK" "$(out)" "-n output"
assert_match "info: client certificate $T/certs/client.crt valid until " "$(err)"
assert_exit 0 env RECONCILED_CONFIG="$CONF" "$RECONCILED" -n
assert_eq "configuration OK" "$(out)" "-n with \$RECONCILED_CONFIG"
assert_exit 0 rd --check --config "$CONF"
assert_eq "configuration OK" "$(out)" "--check --config"
[ -f "$LEDGER" ] || fail "-n did not create the ledger"
assert_exit 0 rd -n -n -c "$CONF"
assert_eq "configuration OK" "$(out)" "-n -n (the whole ledger read) on a good ledger"

step "-n on bad configurations: 78 and why"
assert_exit 78 rd -n -c "$T/missing.conf"
assert_match "error: $T/missing.conf: cannot read: No such file or directory$" "$(err)"
assert_eq "" "$(out)" "no configuration OK"

write_daemon_config "[poll]" "backof_max = 5s"
n=$(wc -l <"$CONF" | tr -d ' ')
assert_exit 78 rd -n -c "$CONF"
assert_match "error: $CONF:$n: unknown key \"backof_max\" in section \\[poll\\]$" "$(err)"

write_daemon_config "[events]" "webhook_timeout = 90 days"
n=$(wc -l <"$CONF" | tr -d ' ')
assert_exit 78 rd -n -c "$CONF"
assert_match "error: $CONF:$n: webhook_timeout: invalid duration \"90 days\"" "$(err)"

write_daemon_config "[poll]" "backoff_min = 1s"
n=$(wc -l <"$CONF" | tr -d ' ')
assert_exit 78 rd -n -c "$CONF"
assert_match "error: $CONF:$n: duplicate key \"backoff_min\" in section \\[poll\\] \\(first set on line [0-9]+\\)$" "$(err)"

write_daemon_config "this is not ini"
n=$(wc -l <"$CONF" | tr -d ' ')
assert_exit 78 rd -n -c "$CONF"
assert_match "error: $CONF:$n: " "$(err)"

config_with "CFG_CERT=$T/certs/nope.crt"
assert_exit 78 rd -n -c "$CONF"
assert_match "error: $T/certs/nope.crt: cannot read: No such file or directory$" "$(err)"
assert_eq "" "$(out)" "no configuration OK"

config_with "CFG_KEY=$T/certs/nope.key"
assert_exit 78 rd -n -c "$CONF"
assert_match "error: $T/certs/nope.key: cannot read: No such file or directory$" "$(err)"

config_with "CFG_KEY=$T/certs/other-client.key"
assert_exit 78 rd -n -c "$CONF"
assert_match "error: $T/certs/other-client.key does not match $T/certs/client.crt$" "$(err)"

config_with "CFG_CERT=$T/certs/ca.key"
assert_exit 78 rd -n -c "$CONF"
assert_match "error: $T/certs/ca.key: no PEM certificate in it" "$(err)"

config_with "CFG_CERT= " "CFG_KEY= "
assert_exit 78 rd -n -c "$CONF"
assert_match 'error: no client certificate configured \(\[api\] cert\); Toss requires mTLS$' "$(err)"

step "-n on certificates that are about to stop working"
config_with "CFG_CERT=$T/certs/expired-client.crt" "CFG_KEY=$T/certs/expired-client.key"
assert_exit 78 rd -n -c "$CONF"
assert_eq "" "$(out)" "no configuration OK (expired certificate)"
assert_match "error: client certificate $T/certs/expired-client.crt expired on 2020-12-31T23:59:59.000Z: Toss will refuse it; issue a new one in the Toss console$" "$(err)"
config_with "CFG_CERT=$T/certs/soon-client.crt" "CFG_KEY=$T/certs/soon-client.key"
assert_exit 0 rd -n -c "$CONF"
assert_match "warning: client certificate $T/certs/soon-client.crt expires on .* \\(in (9|10) days\\): issue a new one" "$(err)"

step "a ledger that is not ours, or cannot be created: 1, file untouched"
write_daemon_config
printf 'precious data\n' >"$T/foreign.db"
sed "s|^path = .*|path = $T/foreign.db|" "$CONF" >"$T/foreign.conf"
assert_exit 1 rd -n -c "$T/foreign.conf"
assert_match "error: $T/foreign.db: not an SQLite database \\(refusing to touch it\\)$" "$(err)"
assert_eq "precious data" "$(cat "$T/foreign.db")" "the foreign file is untouched"
assert_eq "" "$(out)" "no configuration OK"

if command -v sqlite3 >/dev/null 2>&1; then
	sqlite3 "$T/other-app.db" 'CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)'
	sum=$(cksum <"$T/other-app.db")
	sed "s|^path = .*|path = $T/other-app.db|" "$CONF" >"$T/other-app.conf"
	assert_exit 1 rd -n -c "$T/other-app.conf"
	assert_match "error: $T/other-app.db: not a reconciled ledger$" "$(err)"
	assert_eq "$sum" "$(cksum <"$T/other-app.db")" "another application's database is untouched"
fi

mkdir "$T/a-dir.db"
sed "s|^path = .*|path = $T/a-dir.db|" "$CONF" >"$T/dir.conf"
assert_exit 1 rd -n -c "$T/dir.conf"
assert_match "error: $T/a-dir.db: not a regular file$" "$(err)"

sed "s|^path = .*|path = $T/foreign.db/ledger.db|" "$CONF" >"$T/nodir.conf"
assert_exit 1 rd -n -c "$T/nodir.conf"
assert_match "error: $T/foreign.db/ledger.db: .*Not a directory$" "$(err)"

step "the same failures stop a real start with the same status"
assert_exit 78 rd -c "$T/missing.conf"
assert_match "error: $T/missing.conf: cannot read" "$(err)"
config_with "CFG_KEY=$T/certs/other-client.key"
assert_exit 78 rd -c "$CONF"
assert_match "does not match" "$(err)"
assert_exit 1 rd -c "$T/foreign.conf"
assert_match "not an SQLite database" "$(err)"
assert_eq "precious data" "$(cat "$T/foreign.db")" "the foreign file is untouched"
assert_exit 64 rd --once --bogus

check_sanitizers
pass
