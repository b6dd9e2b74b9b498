#!/bin/sh
# reconcilectl as an operator meets it: help and version, usage errors (64),
# configuration errors (78), then every command against a fresh ledger with
# its exact output and exit status. Needs jq and the sqlite3 shell (to plant
# the events and sink cursors only the daemon would write).
. "$top_srcdir/tests/integration/lib.sh"

require_file "$RECONCILECTL"
require_cmd jq sqlite3

write_config

ctl()
{
	"$RECONCILECTL" -c "$CONF" "$@"
}

# The current time in unix ms, in SQL (sqlite3 older than 3.42 has no subsec).
NOW_SQL="CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

sql()
{
	sqlite3 -batch "$LEDGER" "$@"
}

# rep CHAR N: N copies of CHAR.
rep()
{
	printf "%${2}s" "" | tr ' ' "$1"
}

usage()
{
	echo "usage: reconcilectl [-c FILE] $1"
}

GLOBAL_USAGE='usage: reconcilectl [-c FILE] COMMAND [ARGS] (see reconcilectl -h)'
STATES='pending, granted, refunded, failed, not_found, mismatch, expired, held'

step "help and version"
assert_exit 0 "$RECONCILECTL" -h
assert_file_contains "$T/stdout" "usage: reconcilectl [-c FILE] COMMAND [ARGS]"
for u in "add ORDER_ID USER_KEY [--sku SKU] [--ref REF]" "import [FILE|-]" \
    "show ORDER_ID [--json]" "list [--state STATE] [--json]" \
    "events [--after ID] [--limit N] [--json]" "stats [--json]" \
    "recheck ORDER_ID | --state STATE"; do
	assert_file_contains "$T/stdout" "  $u"
done
assert_eq "" "$(err)" "-h writes nothing on stderr"
help=$(out)
assert_exit 0 "$RECONCILECTL" --help
assert_eq "$help" "$(out)" "--help is -h"
assert_exit 0 "$RECONCILECTL" -V
assert_match '^reconcilectl [0-9]+\.[0-9]+\.[0-9]+ \(json-c [0-9.]+, SQLite [0-9.]+(, libpq [0-9.]+)?\)$' "$(out)"
for c in add import show list events stats recheck; do
	assert_exit 0 ctl "$c" -h
	assert_match "^usage: reconcilectl \\[-c FILE\\] $c" "$(out)"
done
assert_exit 0 ctl add --help
assert_eq "$(usage "add ORDER_ID USER_KEY [--sku SKU] [--ref REF]")" "$(out)"

step "usage errors exit 64 and touch nothing"
assert_exit 64 "$RECONCILECTL"
assert_eq "reconcilectl: missing COMMAND
$GLOBAL_USAGE" "$(err)"
assert_eq "" "$(out)"
assert_exit 64 ctl frobnicate
assert_eq "reconcilectl: unknown command \"frobnicate\"
$GLOBAL_USAGE" "$(err)"
assert_exit 64 "$RECONCILECTL" -x list
assert_eq "reconcilectl: unknown option -x
$GLOBAL_USAGE" "$(err)"
assert_exit 64 "$RECONCILECTL" --bogus list
assert_eq "reconcilectl: unknown option --bogus
$GLOBAL_USAGE" "$(err)"
assert_exit 64 "$RECONCILECTL" -c
assert_eq "reconcilectl: option -c needs a value
$GLOBAL_USAGE" "$(err)"

A="add ORDER_ID USER_KEY [--sku SKU] [--ref REF]"
assert_exit 64 ctl add
assert_eq "reconcilectl: add: missing ORDER_ID and USER_KEY
$(usage "$A")" "$(err)"
assert_exit 64 ctl add o-1
assert_eq "reconcilectl: add: missing USER_KEY
$(usage "$A")" "$(err)"
assert_exit 64 ctl add o-1 u-1 extra
assert_eq "reconcilectl: add: too many arguments
$(usage "$A")" "$(err)"
assert_exit 64 ctl add o-1 u-1 --sku
assert_eq "reconcilectl: add: option --sku needs a value
$(usage "$A")" "$(err)"
assert_exit 64 ctl add o-1 u-1 --colour red
assert_eq "reconcilectl: add: unknown option --colour
$(usage "$A")" "$(err)"
assert_exit 64 ctl add -q o-1 u-1
assert_eq "reconcilectl: add: unknown option -q
$(usage "$A")" "$(err)"
assert_exit 64 ctl show
assert_eq "reconcilectl: show: missing ORDER_ID
$(usage "show ORDER_ID [--json]")" "$(err)"
assert_exit 64 ctl show a b
assert_eq "reconcilectl: show: too many arguments
$(usage "show ORDER_ID [--json]")" "$(err)"
assert_exit 64 ctl show a --json=yes
assert_eq "reconcilectl: show: option --json takes no value
$(usage "show ORDER_ID [--json]")" "$(err)"
assert_exit 64 ctl list --state bogus
assert_eq "reconcilectl: list: unknown state \"bogus\" (use one of: $STATES)
$(usage "list [--state STATE] [--json]")" "$(err)"
assert_exit 64 ctl list --state
assert_eq "reconcilectl: list: option --state needs a value
$(usage "list [--state STATE] [--json]")" "$(err)"
assert_exit 64 ctl list pending
assert_eq "reconcilectl: list: unexpected argument \"pending\"
$(usage "list [--state STATE] [--json]")" "$(err)"
E="events [--after ID] [--limit N] [--json]"
for bad in 0 100001 -1 abc 1x "" " 5" +5 99999999999999999999; do
	assert_exit 64 ctl events --limit "$bad"
	assert_eq "reconcilectl: events: --limit must be an integer from 1 to 100000, not \"$bad\"
$(usage "$E")" "$(err)"
done
for bad in -1 x 1.5 "" 9223372036854775808; do
	assert_exit 64 ctl events --after "$bad"
	assert_eq "reconcilectl: events: --after must be an event id (an integer >= 0), not \"$bad\"
$(usage "$E")" "$(err)"
done
assert_exit 64 ctl stats now
assert_eq "reconcilectl: stats: unexpected argument \"now\"
$(usage "stats [--json]")" "$(err)"
R="recheck ORDER_ID | --state STATE"
assert_exit 64 ctl recheck
assert_eq "reconcilectl: recheck: missing ORDER_ID or --state
$(usage "$R")" "$(err)"
assert_exit 64 ctl recheck o-1 --state pending
assert_eq "reconcilectl: recheck: give ORDER_ID or --state, not both
$(usage "$R")" "$(err)"
assert_exit 64 ctl recheck --state paid
assert_eq "reconcilectl: recheck: unknown state \"paid\" (use one of: $STATES)
$(usage "$R")" "$(err)"
assert_exit 64 ctl import a b
assert_eq "reconcilectl: import: too many arguments
$(usage "import [FILE|-]")" "$(err)"
[ ! -e "$LEDGER" ] || fail "a usage error created the ledger"

step "configuration errors exit 78"
assert_exit 78 "$RECONCILECTL" -c "$T/nope.conf" list
assert_eq "reconcilectl: $T/nope.conf: cannot read: No such file or directory" "$(err)"
assert_eq "" "$(out)"
printf '[ledger]\npath = %s\ntimout = 1s\n' "$LEDGER" >"$T/bad.conf"
assert_exit 78 "$RECONCILECTL" -c "$T/bad.conf" add o-1 u-1
assert_eq "reconcilectl: $T/bad.conf:3: unknown key \"timout\" in section [ledger]" "$(err)"
assert_exit 78 env RECONCILED_CONFIG="$T/bad.conf" "$RECONCILECTL" list
assert_eq "reconcilectl: $T/bad.conf:3: unknown key \"timout\" in section [ledger]" "$(err)"
# -c wins over the environment.
assert_exit 78 env RECONCILED_CONFIG="$CONF" "$RECONCILECTL" -c "$T/bad.conf" list
default=$(printf '%s\n' "$help" | sed -n 's/.*(default: \$RECONCILED_CONFIG, else \(.*\))$/\1/p')
[ -n "$default" ] || fail "-h does not name the default config file"
if [ -e "$default" ]; then
	echo "not checking the missing default config: $default exists"
else
	assert_exit 78 "$RECONCILECTL" stats
	assert_eq "reconcilectl: no configuration file at $default: use -c FILE or set RECONCILED_CONFIG" "$(err)"
fi
[ ! -e "$LEDGER" ] || fail "a config error created the ledger"

step "reading commands need an existing ledger"
for c in "show o-1" list events stats; do
	# shellcheck disable=SC2086
	assert_exit 1 ctl $c
	assert_eq "reconcilectl: no ledger at $LEDGER yet (it is created by the first add, import or daemon start)" "$(err)"
done
[ ! -e "$LEDGER" ] || fail "a reading command created the ledger"

step "add"
assert_exit 0 ctl add ord-1 443731104
assert_eq "added ord-1" "$(out)"
[ -f "$LEDGER" ] || fail "add did not create the ledger"
assert_exit 0 ctl add ord-1 443731104
assert_eq "known ord-1" "$(out)"
assert_eq "" "$(err)"
assert_exit 1 ctl add ord-1 443731105
assert_eq "" "$(out)"
assert_eq "reconcilectl: order ord-1 is already known with another userKey (known: 44*****04, given: 44*****05)" "$(err)"
assert_exit 0 ctl add ord-2 user-2 --sku ait.0000010000.af647449 --ref crm-17
assert_eq "added ord-2" "$(out)"
assert_exit 0 ctl add --ref "" ord-3 3
assert_eq "added ord-3" "$(out)"
assert_exit 0 ctl add -- -ord-4 "user 4"
assert_eq "added -ord-4" "$(out)"
assert_exit 0 ctl add "$(rep o 128)" "$(rep u 128)" --sku "$(rep s 256)" --ref "$(rep r 1024)"
assert_eq "added $(rep o 128)" "$(out)"
assert_exit 0 ctl add "주문-5" "사용자"
assert_eq "added 주문-5" "$(out)"

tab=$(printf 'a\tb')
esc=$(printf 'a\033b')
check_add_refused()
{
	_want=$1
	shift
	assert_exit 1 ctl add "$@"
	assert_eq "reconcilectl: $_want" "$(err)" "add $*"
	assert_eq "" "$(out)"
}
check_add_refused "orderId is empty" "" u
check_add_refused "orderId is longer than 128 bytes" "$(rep o 129)" u
check_add_refused "orderId contains control characters" "$tab" u
check_add_refused "orderId contains control characters" "$(printf 'x\177')" u
check_add_refused "orderId is not valid UTF-8" "$(printf 'x\377')" u
check_add_refused "userKey is empty" o-9 ""
check_add_refused "userKey is longer than 128 bytes" o-9 "$(rep u 129)"
check_add_refused "userKey contains control characters" o-9 "$esc"
check_add_refused "sku is empty" o-9 u --sku ""
check_add_refused "sku is longer than 256 bytes" o-9 u --sku "$(rep s 257)"
check_add_refused "sku contains control characters" o-9 u --sku "$tab"
check_add_refused "ref is longer than 1024 bytes" o-9 u --ref "$(rep r 1025)"
check_add_refused "ref contains control characters" o-9 u --ref "$esc"
assert_eq 6 "$(sql 'SELECT count(*) FROM orders')" "orders after add"
assert_eq 0 "$(sql "SELECT count(*) FROM orders WHERE order_id = 'o-9'")"

# Fixed times and a settled order, as the daemon would leave them.
sql "UPDATE orders SET added_at = 1764293400123 + rowid, updated_at = 1764293400123 + rowid,
    next_poll_at = 1764293400123 + rowid"
sql "UPDATE orders SET state = 'granted', toss_status = 'PAYMENT_COMPLETED',
    reason = '결제가 완료되었어요.', determined_at = '2025-11-28T10:30:26+09:00',
    polls = 3, errors = 1, updated_at = 1764293460000, granted_at = 1764293460000,
    next_poll_at = NULL WHERE order_id = 'ord-2'"

step "show"
assert_exit 0 ctl show ord-1
assert_eq "orderId:            ord-1
userKey:            443731104
sku:                -
ref:                -
state:              pending
tossStatus:         -
reason:             -
statusDeterminedAt: -
polls:              0
errors:             0
addedAt:            2025-11-28T01:30:00.124Z
updatedAt:          2025-11-28T01:30:00.124Z
grantedAt:          -
nextPollAt:         2025-11-28T01:30:00.124Z
intakeSku:          -
skuConfirmed:       no" "$(out)"
assert_eq "" "$(err)"
assert_exit 0 ctl show ord-2
assert_eq "orderId:            ord-2
userKey:            user-2
sku:                ait.0000010000.af647449
ref:                crm-17
state:              granted
tossStatus:         PAYMENT_COMPLETED
reason:             결제가 완료되었어요.
statusDeterminedAt: 2025-11-28T10:30:26+09:00
polls:              3
errors:             1
addedAt:            2025-11-28T01:30:00.125Z
updatedAt:          2025-11-28T01:31:00.000Z
grantedAt:          2025-11-28T01:31:00.000Z
nextPollAt:         -
intakeSku:          ait.0000010000.af647449
skuConfirmed:       no" "$(out)"
# Toss's reason and status are upstream text: a terminal never gets their
# control characters (here: clear screen, a forged line, a bell).
sql "UPDATE orders SET reason = char(27) || '[2J' || char(10) || 'state: granted',
    toss_status = 'X' || char(7) || '\\' WHERE order_id = 'ord-1'"
assert_exit 0 ctl show ord-1
assert_eq 'tossStatus:         X\x07\\
reason:             \x1b[2J\nstate: granted' "$(out | sed -n '6,7p')" \
    "show escapes control characters"
assert_exit 0 ctl list --state pending
assert_match '^ord-1 +pending +X\\x07\\\\ +443731104$' "$(out)" \
    "list escapes control characters"
out | LC_ALL=C grep -q "$(printf '[\001-\010\033]')" &&
    fail "list wrote a control character"
# What the intake claimed is shown escaped too; skuConfirmed as yes/no.
sql "UPDATE orders SET intake_sku = 'i' || char(27) || '[2J', sku_confirmed = 1
    WHERE order_id = 'ord-1'"
assert_exit 0 ctl show ord-1
assert_eq 'intakeSku:          i\x1b[2J
skuConfirmed:       yes' "$(out | sed -n '15,16p')" \
    "show prints intakeSku escaped and skuConfirmed"
sql "UPDATE orders SET intake_sku = NULL, sku_confirmed = 0 WHERE order_id = 'ord-1'"
sql "UPDATE orders SET reason = '', toss_status = '' WHERE order_id = 'ord-1'"
assert_exit 0 ctl show ord-3
assert_match '^ref:                ""$' "$(out)"
assert_exit 0 ctl show -- -ord-4
assert_match '^userKey:            user 4$' "$(out)"

assert_exit 0 ctl show ord-2 --json
assert_eq '{"orderId":"ord-2","userKey":"user-2","sku":"ait.0000010000.af647449","ref":"crm-17","state":"granted","tossStatus":"PAYMENT_COMPLETED","reason":"결제가 완료되었어요.","statusDeterminedAt":"2025-11-28T10:30:26+09:00","polls":3,"errors":1,"addedAt":"2025-11-28T01:30:00.125Z","updatedAt":"2025-11-28T01:31:00.000Z","grantedAt":"2025-11-28T01:31:00.000Z","nextPollAt":null,"intakeSku":"ait.0000010000.af647449","skuConfirmed":false}' "$(out)"
assert_exit 0 ctl show --json ord-1
assert_eq '["orderId","userKey","sku","ref","state","tossStatus","reason","statusDeterminedAt","polls","errors","addedAt","updatedAt","grantedAt","nextPollAt","intakeSku","skuConfirmed"]' \
    "$(out | jq -c keys_unsorted)" "order JSON members"
assert_eq '["ord-1","443731104",null,null,"pending",null,null,null,0,0,null]' \
    "$(out | jq -c '[.orderId,.userKey,.sku,.ref,.state,.tossStatus,.reason,.statusDeterminedAt,.polls,.errors,.grantedAt]')"
assert_eq 1 "$(out | wc -l | tr -d ' ')" "one line of JSON"
assert_exit 0 ctl show ord-3 --json
assert_eq '"3" ""' "$(out | jq -c '.userKey, .ref' | tr '\n' ' ' | sed 's/ $//')"

assert_exit 1 ctl show nope
assert_eq "reconcilectl: unknown order nope" "$(err)"
assert_eq "" "$(out)"
assert_exit 1 ctl show nope --json
assert_eq "" "$(out)"

step "list"
O128=$(rep o 128)
U128=$(rep u 128)
assert_exit 0 ctl list
assert_eq "ord-1                                 pending    -                  443731104
ord-2                                 granted    PAYMENT_COMPLETED  user-2
ord-3                                 pending    -                  3
-ord-4                                pending    -                  user 4
$O128  pending    -                  $U128
주문-5                              pending    -                  사용자" "$(out)"
assert_eq "" "$(err)"
assert_exit 0 ctl list --state granted
assert_eq "ord-2                                 granted    PAYMENT_COMPLETED  user-2" "$(out)"
assert_exit 0 ctl list --state held
assert_eq "" "$(out)"
assert_exit 0 ctl list --json
assert_eq 6 "$(out | wc -l | tr -d ' ')" "list --json: one line per order"
assert_eq "ord-1 ord-2 ord-3 -ord-4 $O128 주문-5" "$(out | jq -r .orderId | tr '\n' ' ' | sed 's/ $//')"
assert_eq 6 "$(out | jq -c keys_unsorted | grep -cFx '["orderId","userKey","sku","ref","state","tossStatus","reason","statusDeterminedAt","polls","errors","addedAt","updatedAt","grantedAt","nextPollAt","intakeSku","skuConfirmed"]')"
assert_exit 0 ctl show ord-2 --json
show2=$(out)
assert_exit 0 ctl list --state granted --json
assert_eq "$show2" "$(out)" "list --json prints the order as show --json does"
assert_exit 0 ctl list --json --state pending
assert_eq "ord-1 ord-3 -ord-4 $O128 주문-5" "$(out | jq -r .orderId | tr '\n' ' ' | sed 's/ $//')"
assert_exit 0 env RECONCILED_CONFIG="$CONF" "$RECONCILECTL" list --state granted
assert_eq "ord-2                                 granted    PAYMENT_COMPLETED  user-2" "$(out)" "RECONCILED_CONFIG is used"

step "recheck"
assert_exit 0 ctl recheck ord-2
assert_eq "1 order(s) due now" "$(out)"
assert_eq "" "$(err)"
assert_exit 0 ctl show ord-2 --json
assert_match '^"20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"$' \
    "$(out | jq .nextPollAt)" "recheck makes the order due"
assert_eq 1 "$(sql "SELECT next_poll_at > 1764293460000 AND next_poll_at <= $NOW_SQL FROM orders WHERE order_id = 'ord-2'")" \
    "nextPollAt is now"
assert_exit 1 ctl recheck nope
assert_eq "reconcilectl: unknown order nope" "$(err)"
assert_eq "" "$(out)"
sql "UPDATE orders SET next_poll_at = NULL WHERE state = 'pending'"
assert_exit 0 ctl recheck --state pending
assert_eq "5 order(s) due now" "$(out)"
assert_eq 0 "$(sql "SELECT count(*) FROM orders WHERE state = 'pending' AND next_poll_at IS NULL")"
assert_exit 0 ctl recheck --state expired
assert_eq "0 order(s) due now" "$(out)"

step "events"
assert_exit 0 ctl events
assert_eq "" "$(out)"
assert_eq "" "$(err)"
P1='{"id":1,"key":"ord-2:grant","type":"grant","orderId":"ord-2","userKey":"user-2","sku":"ait.0000010000.af647449","ref":"crm-17","tossStatus":"PAYMENT_COMPLETED","reason":"결제가 완료되었어요.","statusDeterminedAt":"2025-11-28T10:30:26+09:00","at":"2025-11-28T01:31:00.000Z"}'
P2='{"id":2,"key":"ord-1:held","type":"held","orderId":"ord-1","userKey":"443731104","sku":null,"ref":null,"tossStatus":"SOMETHING_NEW","reason":"","statusDeterminedAt":"","at":"2025-11-28T01:32:00.000Z"}'
P3='{"id":3,"key":"ord-2:refund","type":"refund","orderId":"ord-2","userKey":"user-2","sku":"ait.0000010000.af647449","ref":"crm-17","tossStatus":"REFUNDED","reason":"","statusDeterminedAt":"2025-11-29T10:30:00+09:00","at":"2025-11-29T01:30:00.000Z","granted":true}'
sql "INSERT INTO events (key, type, order_id, payload, created_at) VALUES
    ('ord-2:grant', 'grant', 'ord-2', '$P1', 1764293460000),
    ('ord-1:held', 'held', 'ord-1', '$P2', 1764293520000),
    ('ord-2:refund', 'refund', 'ord-2', '$P3', 1764379800000)"
assert_exit 0 ctl events
assert_eq "1 grant ord-2 2025-11-28T01:31:00.000Z
2 held ord-1 2025-11-28T01:32:00.000Z
3 refund ord-2 2025-11-29T01:30:00.000Z" "$(out)"
assert_exit 0 ctl events --json
assert_eq "$P1
$P2
$P3" "$(out)" "events --json prints the stored payloads"
assert_exit 0 ctl events --json --after 1
assert_eq "$P2
$P3" "$(out)"
assert_exit 0 ctl events --limit 1 --json
assert_eq "$P1" "$(out)"
assert_exit 0 ctl events --after 1 --limit 1
assert_eq "2 held ord-1 2025-11-28T01:32:00.000Z" "$(out)"
assert_exit 0 ctl events --after 3
assert_eq "" "$(out)"
assert_exit 0 ctl events --after 9223372036854775807 --limit 100000
assert_eq "" "$(out)"

step "stats"
sql "INSERT INTO sinks (name, delivered_id) VALUES ('jsonl', 3), ('webhook', 1)"
sql "UPDATE orders SET next_poll_at = 4102444800000 WHERE order_id IN ('ord-3', '-ord-4')"
sql "UPDATE orders SET added_at = $NOW_SQL - 3600000 + rowid WHERE state = 'pending'"
assert_exit 0 ctl stats --json
assert_eq 1 "$(out | wc -l | tr -d ' ')" "stats --json is one line"
assert_eq '["orders","events","lastEventId","oldestPendingSeconds","due","sinks"]' "$(out | jq -c keys_unsorted)"
assert_eq '{"pending":5,"granted":1,"refunded":0,"failed":0,"not_found":0,"mismatch":0,"expired":0,"held":0}' \
    "$(out | jq -c .orders)"
assert_eq '[3,3,4]' "$(out | jq -c '[.events,.lastEventId,.due]')"
assert_eq '{"jsonl":{"deliveredId":3,"lag":0},"webhook":{"deliveredId":1,"lag":2}}' "$(out | jq -c .sinks)"
oldest=$(out | jq .oldestPendingSeconds)
[ "$oldest" -ge 3600 ] && [ "$oldest" -lt 3660 ] ||
    fail "oldestPendingSeconds is $oldest, expected about 3600"
assert_exit 0 ctl stats
assert_eq "pending        5
granted        1
refunded       0
failed         0
not_found      0
mismatch       0
expired        0
held           0
events         3
last event     3
oldest pending Ns ago
due now        4
sink jsonl      delivered 3, lag 0
sink webhook    delivered 1, lag 2" "$(out | sed 's/^\(oldest pending \)[0-9]*s ago$/\1Ns ago/')"
assert_eq "" "$(err)"

sql "UPDATE orders SET state = 'failed', next_poll_at = NULL WHERE state = 'pending'"
sql "DELETE FROM sinks"
assert_exit 0 ctl stats --json
assert_eq '{"orders":{"pending":0,"granted":1,"refunded":0,"failed":5,"not_found":0,"mismatch":0,"expired":0,"held":0},"events":3,"lastEventId":3,"oldestPendingSeconds":null,"due":1,"sinks":{}}' "$(out)"
assert_exit 0 ctl stats
assert_match '^oldest pending -$' "$(out)"

step "a file that is not a ledger is refused"
printf 'not a database\n' >"$T/junk.db"
sed "s|^path = .*|path = $T/junk.db|" "$CONF" >"$T/junk.conf"
assert_exit 1 "$RECONCILECTL" -c "$T/junk.conf" list
assert_match "^reconcilectl: $T/junk.db: not an SQLite database" "$(err)"
assert_exit 1 "$RECONCILECTL" -c "$T/junk.conf" add o-1 u-1
assert_match "^reconcilectl: $T/junk.db: not an SQLite database" "$(err)"
assert_eq "not a database" "$(cat "$T/junk.db")"

echo "PASS: $TEST_NAME"
