#!/bin/sh
# Ledger faults: a corrupt or foreign file where the ledger should be. The
# daemon (and reconciled -n, and reconcilectl) must refuse it at startup
# with a clear message naming the file, exit 1, and leave it byte for byte
# as it was, creating nothing next to it: random bytes, a text file, a
# directory, SQLite databases of another application (plain, with a
# user_version, in WAL mode), a ledger of a newer schema, and ledgers
# damaged on disk (the schema page, the file cut short, the orders table's
# root page, a due-index page). The sqlite3 shell makes the foreign and
# damaged databases; without it those cases are skipped (said in the log).
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

# refused FILE ERE WHAT: every program refuses FILE as its ledger with a
# line matching "FILE: ERE", exits 1 and leaves FILE and its directory as
# they were.
refused()
{
	step "refused: $3"
	sed "s|^path = .*|path = $1|" "$CONF" >"$T/bad.conf"
	before=$(snapshot "$1")
	want="$(printf '%s' "$1" | sed 's/[.[\*^$]/\\&/g'): ($2)"
	assert_exit 1 "$RECONCILED" -c "$T/bad.conf" -n
	assert_match "error: $want\$" "$(err)" "reconciled -n: $3"
	assert_eq "" "$(out)" "reconciled -n prints nothing on stdout: $3"
	assert_exit 1 timeout 10 "$RECONCILED" -c "$T/bad.conf"
	assert_match "error: $want\$" "$(err)" "reconciled: $3"
	assert_exit 1 "$RECONCILECTL" -c "$T/bad.conf" stats
	assert_match "$want" "$(err)" "reconcilectl stats: $3"
	assert_exit 1 "$RECONCILECTL" -c "$T/bad.conf" add bad-1 1001
	assert_match "$want" "$(err)" "reconcilectl add: $3"
	assert_eq "$before" "$(snapshot "$1")" "$3: left byte for byte as it was, nothing created next to it"
}

NOT_SQLITE='not an SQLite database \(refusing to touch it\)'
NOT_OURS='not a reconciled ledger'
DAMAGED='.*(malformed|corrupt|integrity).*'

head -c 65536 /dev/urandom >"$D/random.db"
refused "$D/random.db" "$NOT_SQLITE" "64 KiB of random bytes"

printf '[ledger]\npath = /var/lib/reconciled/ledger.db\n' >"$D/text.db"
refused "$D/text.db" "$NOT_SQLITE" "a text file"

mkdir "$D/dir.db"
refused "$D/dir.db" 'not a regular file' "a directory"

if [ $have_sqlite3 = 0 ]; then
	echo "note: sqlite3 not installed: foreign and damaged databases not tried"
	pass
	exit 0
fi

sqlite3 "$D/foreign.db" "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);
    INSERT INTO notes (text) VALUES ('keep me');"
refused "$D/foreign.db" "$NOT_OURS" "another application's SQLite database"

sqlite3 "$D/foreign-v3.db" "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL);
    INSERT INTO orders (total) VALUES (9.99); PRAGMA user_version = 3;"
refused "$D/foreign-v3.db" "$NOT_OURS" "another application's database with a user_version and an orders table"

sqlite3 "$D/foreign-wal.db" "PRAGMA journal_mode = WAL;
    CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);
    INSERT INTO notes (text) VALUES ('keep me');" >/dev/null
refused "$D/foreign-wal.db" "$NOT_OURS" "another application's database in WAL mode"

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
refused "$D/newer.db" 'ledger schema version 99 is newer than this build supports \([0-9]+\); upgrade reconciled' \
    "a ledger of a newer schema"

head -c 3996 /dev/urandom >"$T/noise"
damaged schema-page.db if="$T/noise" bs=1 seek=100
refused "$D/schema-page.db" "$DAMAGED" "a ledger whose schema page is garbage"

cp "$D/good.db" "$D/cut.db"
truncate -s $(($(wc -c <"$D/good.db") / 2)) "$D/cut.db"
refused "$D/cut.db" "$DAMAGED" "a ledger cut to half its size"

damaged orders-root.db if=/dev/zero bs="$pagesize" count=1 seek=$(($(rootpage orders) - 1))
refused "$D/orders-root.db" "$DAMAGED" "a ledger whose orders table root page is zeroed"

damaged due-index.db if=/dev/zero bs="$pagesize" count=1 seek=$(($(rootpage orders_due) - 1))
refused "$D/due-index.db" "$DAMAGED" "a ledger whose due-orders index page is zeroed"

step "the good ledger itself is accepted"
sed "s|^path = .*|path = $D/good.db|" "$CONF" >"$T/bad.conf"
assert_exit 0 "$RECONCILED" -c "$T/bad.conf" -n
assert_eq "configuration OK" "$(out)" "reconciled -n on the good ledger"
pass
