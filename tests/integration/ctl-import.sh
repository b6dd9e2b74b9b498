#!/bin/sh
# reconcilectl import: one file mixing valid lines with every kind of bad
# line (each reported as "line N: why", the valid ones all committed), stdin,
# re-imports, empty input, unreadable input, and a database error that must
# roll the whole import back. Needs jq and the sqlite3 shell.
. "$top_srcdir/tests/integration/lib.sh"

require_file "$RECONCILECTL"
require_cmd jq sqlite3

write_config

ctl()
{
	"$RECONCILECTL" -c "$CONF" "$@"
}

sql()
{
	sqlite3 -batch "$LEDGER" "$@"
}

rep()
{
	printf "%${2}s" "" | tr ' ' "$1"
}

# ids: the orderIds in the ledger, sorted, on one line.
ids()
{
	ctl list --json | jq -r .orderId | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'
}

O128=$(rep o 128)
U128=$(rep u 128)

assert_exit 0 ctl add pre-1 u-pre
assert_eq "added pre-1" "$(out)"

step "a file of good and bad lines"
F=$T/orders.jsonl
# printf, not echo: some shells' echo turns "\n" into a newline.
{
	printf '%s\n' '{"orderId":"imp-1","userKey":"u-1"}'
	printf '%s\n' ''
	printf '%s\n' '{"orderId":"imp-2","userKey":443731104,"sku":"ait.1","ref":"crm-2"}'
	printf '%s\n' 'not json'
	printf '%s\n' '[1,2]'
	printf '%s\n' '{"userKey":"u"}'
	printf '%s\n' '{"orderId":7,"userKey":"u"}'
	printf '%s\n' '{"orderId":"","userKey":"u"}'
	printf '%s\n' "{\"orderId\":\"$(rep o 129)\",\"userKey\":\"u\"}"
	printf '%s\n' '{"orderId":"a\u0001b","userKey":"u"}'
	printf '%s\n' '{"orderId":"imp-11"}'
	printf '%s\n' '{"orderId":"imp-12","userKey":""}'
	printf '%s\n' '{"orderId":"imp-13","userKey":1.5}'
	printf '%s\n' '{"orderId":"imp-14","userKey":-1}'
	printf '%s\n' '{"orderId":"imp-15","userKey":true}'
	printf '%s\n' '{"orderId":"imp-16","userKey":null}'
	printf '%s\n' "{\"orderId\":\"imp-17\",\"userKey\":\"$(rep u 129)\"}"
	printf '%s\n' '{"orderId":"imp-18","userKey":"u","sku":""}'
	printf '%s\n' "{\"orderId\":\"imp-19\",\"userKey\":\"u\",\"sku\":\"$(rep s 257)\"}"
	printf '%s\n' '{"orderId":"imp-20","userKey":"u","sku":5}'
	printf '%s\n' "{\"orderId\":\"imp-21\",\"userKey\":\"u\",\"ref\":\"$(rep r 1025)\"}"
	printf '%s\n' '{"orderId":"imp-22","userKey":"u","ref":"a\nb"}'
	printf '%s\n' '{"orderId":"pre-1","userKey":"someone-else"}'
	printf '%s\n' '{"orderId":"pre-1","userKey":"u-pre"}'
	printf '%s\n' '{"orderId":"imp-1","userKey":"u-1"}'
	printf '%s\n' '{"orderId":"imp-1","userKey":"u-X"}'
	# 16385 bytes, then exactly 16384 bytes (padded with spaces).
	printf '%s\n' "{\"orderId\":\"imp-27\",\"userKey\":\"u\",\"ref\":\"$(rep r 16342)\"}"
	printf '%s\n' "{\"orderId\":\"imp-28\",\"userKey\":\"u\"}$(rep ' ' 16350)"
	printf '{"orderId":"imp-29\377","userKey":"u"}\n'
	printf '%s\n' "{\"orderId\":\"imp-30\",\"userKey\":\"u\",\"ref\":\"$(rep r 200000)\"}"
	printf '  \t \n'
	printf '%s\n' "{\"orderId\":\"$O128\",\"userKey\":\"$U128\",\"sku\":\"$(rep s 256)\",\"ref\":\"$(rep r 1024)\"}"
	printf '%s\n' '{"orderId":"imp-33","userKey":18446744073709551614,"sku":null,"ref":null,"extra":{"x":[1]}}'
	printf '%s\n' '{"orderId":"imp-34","userKey":"u","ref":""}'
	printf '{"orderId":"imp-35","userKey":"u"}\r\n'
	printf '{"orderId":"a\tb","userKey":"u"}\n'
	printf '%s\n' '{"orderId":"imp-37","userKey":"u"} trailing'
	printf '%s\n' '{"orderId":"imp-38","userKey":99999999999999999999999}'
	printf '%s\n' '{"orderId":"imp-39","userKey":"u"}'
	printf '{"orderId":"imp-40","userKey":"u"}'
} >"$F"
[ "$(sed -n 27p "$F" | wc -c)" -eq 16386 ] || fail "line 27 is not 16385 bytes"
[ "$(sed -n 28p "$F" | wc -c)" -eq 16385 ] || fail "line 28 is not 16384 bytes"

assert_exit 1 ctl import "$F"
assert_eq "9 added, 2 known, 27 rejected" "$(out)"
assert_eq "line 4: invalid JSON
line 5: not a JSON object
line 6: missing orderId
line 7: orderId must be a string
line 8: orderId is empty
line 9: orderId is longer than 128 bytes
line 10: orderId contains control characters
line 11: missing userKey
line 12: userKey is empty
line 13: userKey must be a string or an integer
line 14: userKey must not be negative
line 15: userKey must be a string or an integer
line 16: userKey must be a string or an integer
line 17: userKey is longer than 128 bytes
line 18: sku is empty
line 19: sku is longer than 256 bytes
line 20: sku must be a string or null
line 21: ref is longer than 1024 bytes
line 22: ref contains control characters
line 23: orderId pre-1 is already known with another userKey (known: u-*re, given: so********se)
line 26: orderId imp-1 is already known with another userKey (known: ****, given: ****)
line 27: line is longer than 16384 bytes
line 29: invalid UTF-8
line 30: line is longer than 16384 bytes
line 36: orderId contains control characters
line 37: invalid JSON
line 38: userKey is too large for an integer (send it as a string)" "$(err)"

step "every valid line was committed, as written"
assert_eq "imp-1 imp-2 imp-28 imp-33 imp-34 imp-35 imp-39 imp-40 $O128 pre-1" "$(ids)"
assert_exit 0 ctl show imp-2 --json
assert_eq '["443731104","ait.1","crm-2","pending"]' "$(out | jq -c '[.userKey,.sku,.ref,.state]')"
assert_exit 0 ctl show imp-33 --json
assert_eq '["18446744073709551614",null,null]' "$(out | jq -c '[.userKey,.sku,.ref]')"
assert_exit 0 ctl show imp-34 --json
assert_eq '""' "$(out | jq -c .ref)"
assert_exit 0 ctl show "$O128" --json
assert_eq "[\"$U128\",256,1024]" "$(out | jq -c '[.userKey,(.sku|length),(.ref|length)]')"
assert_exit 0 ctl show pre-1 --json
assert_eq '"u-pre"' "$(out | jq -c .userKey)" "a conflict does not change the known order"
assert_exit 0 ctl show imp-1 --json
assert_eq '"u-1"' "$(out | jq -c .userKey)"
assert_exit 0 ctl show imp-40 --json
assert_eq '"u"' "$(out | jq -c .userKey)" "the last line needs no newline"
assert_exit 0 ctl stats --json
assert_eq '[10,10]' "$(out | jq -c '[.orders.pending,.due]')" "imported orders are due at once"

step "importing the same file again"
assert_exit 1 ctl import "$F"
assert_eq "0 added, 11 known, 27 rejected" "$(out)"

step "stdin, with and without -"
printf '{"orderId":"in-1","userKey":"a"}\n{"orderId":"in-2","userKey":2}\n' >"$T/in.jsonl"
assert_exit 0 sh -c '"$1" -c "$2" import <"$3"' sh "$RECONCILECTL" "$CONF" "$T/in.jsonl"
assert_eq "2 added, 0 known, 0 rejected" "$(out)"
assert_eq "" "$(err)"
printf '{"orderId":"in-2","userKey":"2"}\n{"orderId":"in-3","userKey":"c"}\n' |
    "$RECONCILECTL" -c "$CONF" import - >"$T/stdout" 2>"$T/stderr" ||
    fail "import - exited $?: $(err)"
assert_eq "1 added, 1 known, 0 rejected" "$(out)"
assert_eq "" "$(err)"
st=0
printf '\n{"orderId":"in-4","userKey":"d"}\n{"orderId":"in-3","userKey":"x"}\n' |
    "$RECONCILECTL" -c "$CONF" import >"$T/stdout" 2>"$T/stderr" || st=$?
assert_eq 1 "$st" "exit status of a stdin import with a conflict"
assert_eq "1 added, 0 known, 1 rejected" "$(out)"
assert_eq "line 3: orderId in-3 is already known with another userKey (known: ****, given: ****)" "$(err)"
assert_eq "d" "$(ctl show in-4 --json | jq -r .userKey)" "valid stdin lines are committed"

step "empty input"
: >"$T/empty.jsonl"
assert_exit 0 ctl import "$T/empty.jsonl"
assert_eq "0 added, 0 known, 0 rejected" "$(out)"
printf '\n\n  \r\n' >"$T/blank.jsonl"
assert_exit 0 ctl import "$T/blank.jsonl"
assert_eq "0 added, 0 known, 0 rejected" "$(out)"
assert_eq "" "$(err)"

step "unreadable input"
before=$(ids)
assert_exit 1 ctl import "$T/nope.jsonl"
assert_eq "reconcilectl: $T/nope.jsonl: No such file or directory" "$(err)"
assert_eq "" "$(out)"
mkdir "$T/dir.jsonl"
assert_exit 1 ctl import "$T/dir.jsonl"
assert_eq "reconcilectl: $T/dir.jsonl: Is a directory; nothing was imported" "$(err)"
assert_eq "" "$(out)"
assert_exit 78 "$RECONCILECTL" -c "$T/nope.conf" import "$F"
assert_eq "reconcilectl: $T/nope.conf: cannot read: No such file or directory" "$(err)"
assert_eq "$before" "$(ids)"

step "a database error rolls the whole import back"
sql "CREATE TRIGGER test_boom BEFORE INSERT ON orders WHEN NEW.order_id = 'boom'
    BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
printf '{"orderId":"rb-1","userKey":"u"}\n{"orderId":"boom","userKey":"u"}\n{"orderId":"rb-3","userKey":"u"}\n' >"$T/boom.jsonl"
assert_exit 1 ctl import "$T/boom.jsonl"
assert_eq "" "$(out)"
assert_match 'error: ledger: add: boom refused$' "$(err | sed -n 1p)" "the ledger says why"
assert_eq "reconcilectl: line 2: database error; nothing was imported" "$(err | sed -n '$p')"
assert_eq "$before" "$(ids)" "nothing of a failed import stays"
sql "DROP TRIGGER test_boom"
assert_exit 0 ctl import "$T/boom.jsonl"
assert_eq "3 added, 0 known, 0 rejected" "$(out)"

echo "PASS: $TEST_NAME"
