#!/bin/sh
# Ledger faults: a corrupt or foreign file where the ledger should be. The
# daemon (and reconciled -n, and reconcilectl) must refuse it at startup
# with a clear message naming the file, exit 1, and leave it byte for byte
# as it was, creating nothing next to it: random bytes, a text file, a
# directory, SQLite databases of another application (plain, with a
# user_version, in WAL mode), a ledger of a newer schema or missing an
# index, and ledgers damaged on disk where a start looks (the schema page,
# the file cut short). Damage in a data page (the orders table's root
# page, a due-index page) is not read by a start, which must stay fast on
# a large ledger: reconciled -n -n (a full quick_check) refuses it, and the
# daemon stops with exit 1 and one error line at its first claim instead
# of retrying forever. The sqlite3 shell makes the foreign and damaged
# databases; without it those cases are skipped (said in the log).
. "$top_srcdir/tests/integration/lib-daemon.sh"

write_daemon_config
D=$T/ledgers
mkdir "$D"
have_sqlite3=0
command -v sqlite3 >/dev/null 2>&1 && have_sqlite3=1

# snapshot FILE: its checksum (or "dir") and the names around it.
snapshot()
{
	if [ -d "$1" ]; then
		echo "dir $(ls -a "$1" | tr '\n' ' ')"
	else
		sha256sum <"$1"
	fi
	ls -a "$(dirname "$1")"
}

# re STRING: STRING as an ERE matching itself.
re()
{
	printf '%s' "$1" | sed 's/[].[\*^$()+?{}|]/\\&/g'
}

# refused FILE ERE WHAT: every program refuses FILE as its ledger at start
# with a line matching ERE (the whole message), exits 1 and leaves FILE
# and its directory as they were.
refused()
{
	step "refused: $3"
	sed "s|^path = .*|path = $1|" "$CONF" >"$T/bad.conf"
	before=$(snapshot "$1")
	assert_exit 1 "$RECONCILED" -c "$T/bad.conf" -n
	assert_match "error: $2\$" "$(err)" "reconciled -n: $3"
	assert_eq "" "$(out)" "reconciled -n prints nothing on stdout: $3"
	assert_exit 1 timeout 10 "$RECONCILED" -c "$T/bad.conf"
	assert_match "error: $2\$" "$(err)" "reconciled: $3"
	assert_exit 1 "$RECONCILECTL" -c "$T/bad.conf" stats
	assert_match "^reconcilectl: $2\$" "$(err)" "reconcilectl stats: $3"
	assert_exit 1 "$RECONCILECTL" -c "$T/bad.conf" add bad-1 1001
	assert_match "^reconcilectl: $2\$" "$(err)" "reconcilectl add: $3"
	assert_eq "$before" "$(snapshot "$1")" "$3: left byte for byte as it was, nothing created next to it"
}

# damaged_data FILE WHAT: FILE is a ledger with a damaged data page, which
# no start reads. reconciled -n -n refuses it; the daemon starts, finds it at
# its first claim (every order is due) and stops: exit 1, one error line,
# no retries; a --once run the same. reconcilectl add fails saying so (stats may well succeed:
# the counts live in tables of their own). FILE is left as it was.
damaged_data()
{
	step "damaged data page: $2"
	sed "s|^path = .*|path = $1|" "$CONF" >"$T/bad.conf"
	before=$(snapshot "$1")
	f=$(re "$1")
	# -n checks as a start does (the units run it before each start and
	# reload): it does not read data pages; -n -n reads them all.
	assert_exit 0 "$RECONCILED" -c "$T/bad.conf" -n
	assert_eq "configuration OK" "$(out)" "reconciled -n (a start's checks): $2"
	assert_exit 1 "$RECONCILED" -c "$T/bad.conf" -n -n
	assert_match "error: ledger $f is damaged: [^;]+\$" "$(err)" "reconciled -n -n: $2"
	assert_eq "" "$(out)" "reconciled -n -n prints nothing on stdout: $2"
	assert_eq "1" "$(err | grep -c 'error:')" "reconciled -n -n: one error line: $2"
	assert_eq "$before" "$(snapshot "$1")" "$2: -n left it byte for byte as it was"

	t0=$(now_ms)
	assert_exit 1 timeout 10 "$RECONCILED" -c "$T/bad.conf"
	elapsed=$(($(now_ms) - t0))
	assert_match "error: ledger $f is damaged: database disk image is malformed; stopping: restore it from a backup, \`reconciled -n -n\` checks a file\$" \
	    "$(err)" "reconciled: $2"
	assert_eq "1" "$(err | grep -c 'error:')" "reconciled: exactly one error line (no retries): $2"
	assert_eq "1" "$(err | grep -c 'malformed')" "reconciled: the damage is said once: $2"
	assert_match "info: stopped\$" "$(err)" "reconciled: a clean stop: $2"
	[ "$elapsed" -lt 5000 ] ||
	    fail "reconciled took ${elapsed} ms to stop on a damaged ledger: $2"
	assert_exit 1 timeout 10 "$RECONCILED" -c "$T/bad.conf" --once
	assert_match "error: ledger $f is damaged: database disk image is malformed; stopping: " \
	    "$(err)" "reconciled --once: $2"
	assert_eq "1" "$(err | grep -c 'error:')" "reconciled --once: exactly one error line: $2"

	# A new order: its row and its index entry are both written.
	assert_exit 1 "$RECONCILECTL" -c "$T/bad.conf" add fresh-1 1001
	assert_match "error: ledger $f is damaged: database disk image is malformed; restore it from a backup, \`reconciled -n -n\` checks a file\$" \
	    "$(err)" "reconcilectl add: $2"
	assert_eq "$before" "$(snapshot "$1")" "$2: left byte for byte as it was, nothing created next to it"
}

NOT_SQLITE='not an SQLite database \(refusing to touch it\)'
NOT_OURS='not a reconciled ledger'

head -c 65536 /dev/urandom >"$D/random.db"
refused "$D/random.db" "$(re "$D/random.db"): $NOT_SQLITE" "64 KiB of random bytes"

printf '[ledger]\npath = /var/lib/reconciled/ledger.db\n' >"$D/text.db"
refused "$D/text.db" "$(re "$D/text.db"): $NOT_SQLITE" "a text file"

mkdir "$D/dir.db"
refused "$D/dir.db" "$(re "$D/dir.db"): not a regular file" "a directory"

if [ $have_sqlite3 = 0 ]; then
	echo "note: sqlite3 not installed: foreign and damaged databases not tried"
	pass
	exit 0
fi

sqlite3 "$D/foreign.db" "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);
    INSERT INTO notes (text) VALUES ('keep me');"
refused "$D/foreign.db" "$(re "$D/foreign.db"): $NOT_OURS" "another application's SQLite database"

sqlite3 "$D/foreign-v3.db" "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL);
    INSERT INTO orders (total) VALUES (9.99); PRAGMA user_version = 3;"
refused "$D/foreign-v3.db" "$(re "$D/foreign-v3.db"): $NOT_OURS" \
    "another application's database with a user_version and an orders table"

sqlite3 "$D/foreign-wal.db" "PRAGMA journal_mode = WAL;
    CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);
    INSERT INTO notes (text) VALUES ('keep me');" >/dev/null
refused "$D/foreign-wal.db" "$(re "$D/foreign-wal.db"): $NOT_OURS" "another application's database in WAL mode"

# A real ledger with 300 orders (several pages), closed cleanly.
jq -n -c 'range(300) | {orderId: "bad-\(.)", userKey: "\(1000 + .)",
    ref: ("r" * 100)}' >"$T/orders.jsonl"
sed "s|^path = .*|path = $D/good.db|" "$CONF" >"$T/good.conf"
CTL_CONF=$T/good.conf import_orders <"$T/orders.jsonl"
assert_eq "wal" "$(sqlite3 "$D/good.db" 'PRAGMA journal_mode')" "a ledger is in WAL mode"
[ ! -e "$D/good.db-wal" ] || fail "the ledger's WAL is still there after reconcilectl exited"
pagesize=$(sqlite3 "$D/good.db" 'PRAGMA page_size')
rootpage()
{
	sqlite3 "$D/good.db" "SELECT rootpage FROM sqlite_schema WHERE name = '$1'"
}

# damaged NAME DD_ARG...: a copy of the good ledger with dd applied.
damaged()
{
	cp "$D/good.db" "$D/$1"
	_b=$1
	shift
	dd of="$D/$_b" conv=notrunc status=none "$@"
}

cp "$D/good.db" "$D/newer.db"
sqlite3 "$D/newer.db" 'PRAGMA user_version = 99'
refused "$D/newer.db" "$(re "$D/newer.db"): ledger schema version 99 is newer than this build supports \([0-9]+\); upgrade reconciled" \
    "a ledger of a newer schema"

cp "$D/good.db" "$D/no-index.db"
sqlite3 "$D/no-index.db" 'DROP INDEX orders_due'
refused "$D/no-index.db" "$(re "$D/no-index.db"): not a complete reconciled ledger: index orders_due is missing; restore it from a backup" \
    "a ledger without its due-orders index"

head -c 3996 /dev/urandom >"$T/noise"
damaged schema-page.db if="$T/noise" bs=1 seek=100
refused "$D/schema-page.db" "ledger $(re "$D/schema-page.db") is damaged: database disk image is malformed" \
    "a ledger whose schema page is garbage"

cp "$D/good.db" "$D/cut.db"
truncate -s $(($(wc -c <"$D/good.db") / 2)) "$D/cut.db"
refused "$D/cut.db" "ledger $(re "$D/cut.db") is damaged: database disk image is malformed" \
    "a ledger cut to half its size"

damaged orders-root.db if=/dev/zero bs="$pagesize" count=1 seek=$(($(rootpage orders) - 1))
damaged_data "$D/orders-root.db" "a ledger whose orders table root page is zeroed"

damaged due-index.db if=/dev/zero bs="$pagesize" count=1 seek=$(($(rootpage orders_due) - 1))
damaged_data "$D/due-index.db" "a ledger whose due-orders index page is zeroed"

step "the good ledger itself is accepted"
sed "s|^path = .*|path = $D/good.db|" "$CONF" >"$T/bad.conf"
assert_exit 0 "$RECONCILED" -c "$T/bad.conf" -n
assert_eq "configuration OK" "$(out)" "reconciled -n on the good ledger"
pass
