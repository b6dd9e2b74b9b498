#!/bin/sh
# Two mini-apps on one PostgreSQL database, each ledger in its own schema
# (the URL's search_path): each app's daemon leads its own app at the same
# time (leadership is per schema), grants its own orders, and neither sees
# the other's orders, events or sinks, through reconcilectl or the control
# API.
LEDGER_BACKEND=pg
. "$top_srcdir/tests/integration/lib-daemon.sh"
require_cmd curl

pg_sql reconciled "CREATE SCHEMA shop; CREATE SCHEMA game" >/dev/null
start_sim "$SCENARIOS/status-paths.json"
write_daemon_config "[status]" "PAYMENT_COMPLETED = grant" "PURCHASED = grant"
for app in shop game; do
	sed -e "s|^url = .*|url = $PG_URL\&options=-csearch_path%3D$app|" \
	    -e "s|^listen =.*|listen = unix:$T/$app.sock|" "$CONF" >"$T/$app.conf"
	printf '[events]\njsonl = %s\n' "$T/$app.jsonl" >>"$T/$app.conf"
done

app_ctl()
{
	CTL_CONF=$T/$1.conf
	shift
	ctl "$@"
	_st=$?
	CTL_CONF=
	return $_st
}

app_state()
{
	[ "$(app_ctl "$1" show "$2" --json | jq -r .state)" = "$3" ]
}

step "each app's ledger is made in its own schema"
app_ctl shop add sp-purchased 1001 >/dev/null || fail "add to shop"
app_ctl game add sp-completed 1002 >/dev/null || fail "add to game"
assert_eq "1 1" "$(pg_sql reconciled 'SELECT (SELECT count(*) FROM shop.orders),
    (SELECT count(*) FROM game.orders)' | tr '\t' ' ')" "one order in each schema"

step "both daemons lead, each its own app"
for app in shop game; do
	"$RECONCILED" -c "$T/$app.conf" -v >>"$T/daemon-$app.log" 2>&1 &
	eval "PID_$app=$!"
done
at_exit 'kill -9 $PID_shop $PID_game 2>/dev/null'
for app in shop game; do
	wait_until 15 "$app's daemon leads" grep -q 'info: role: leader (epoch 1)' \
	    "$T/daemon-$app.log"
done
wait_until 20 "shop's order granted" app_state shop sp-purchased granted
wait_until 20 "game's order granted" app_state game sp-completed granted

step "neither sees the other's orders or events"
assert_eq "sp-purchased" "$(app_ctl shop list --json | jq -r .orderId)" "shop's orders"
assert_eq "sp-completed" "$(app_ctl game list --json | jq -r .orderId)" "game's orders"
assert_eq "1 sp-purchased grant" "$(app_ctl shop events --json |
    jq -r '"\(.id) \(.orderId) \(.type)"')" "shop's events"
assert_eq "1 sp-completed grant" "$(app_ctl game events --json |
    jq -r '"\(.id) \(.orderId) \(.type)"')" "game's events"
code=$(curl -sS --unix-socket "$T/shop.sock" -o "$T/body" -w '%{http_code}' \
    http://localhost/v1/orders/sp-completed)
assert_eq 404 "$code" "shop's API does not know game's order"
code=$(curl -sS --unix-socket "$T/game.sock" -o "$T/body" -w '%{http_code}' \
    http://localhost/v1/orders/sp-completed)
assert_eq "200 granted" "$code $(jq -r .state "$T/body")" "game's API knows it"
wait_until 10 "each JSONL file has its one event" eval \
    '[ "$(jq -r .orderId "$T/shop.jsonl" 2>/dev/null)" = sp-purchased ] &&
    [ "$(jq -r .orderId "$T/game.jsonl" 2>/dev/null)" = sp-completed ]'
assert_eq "1 1" "$(pg_sql reconciled 'SELECT (SELECT epoch FROM shop.leader),
    (SELECT epoch FROM game.leader)' | tr '\t' ' ')" "one leader epoch per app"

for app in shop game; do
	eval "kill -TERM \$PID_$app"
	eval "_ld_reap \$PID_$app 20" || fail "$app's daemon did not stop"
	assert_eq 0 "$_ld_status" "$app's daemon exits 0"
done
PID_shop=
PID_game=
assert_no_password "$T/daemon-shop.log" "$T/daemon-game.log"
pass
