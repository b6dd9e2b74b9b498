#!/bin/sh
# The PostgreSQL ledger as an operator meets it: [ledger] url instead of
# path (both: 78 naming them; not a postgresql:// URL: 78), `reconciled -n`
# connecting, migrating and checking the schema, a database that is not
# ours or a newer schema refused and left untouched, a table missing named,
# an unreachable server refused quickly, reconcilectl on it, and the URL's
# password in no output or log line (it is shown masked).
LEDGER_BACKEND=pg
. "$top_srcdir/tests/integration/lib-daemon.sh"

rd()
{
	"$RECONCILED" "$@"
}

write_daemon_config
MASKED="postgresql://reconciled:***@/reconciled?host=$PG_DIR"

step "path and url together: 78, both keys named"
sed "/^url = /a path = $T/ledger.db" "$CONF" >"$T/both.conf"
assert_exit 78 rd -n -c "$T/both.conf"
assert_match "reconciled.conf:[0-9]+: \\[ledger\\] path and url are both set|both.conf:[0-9]+: \\[ledger\\] path and url are both set" \
    "$(err)" "the keys are named"
[ ! -e "$T/ledger.db" ] || fail "an SQLite ledger was created"

step "url that is not a PostgreSQL URL: 78, not echoed"
sed "s|^url = .*|url = mysql://u:$PG_PASSWORD@h/db|" "$CONF" >"$T/bad.conf"
assert_exit 78 rd -n -c "$T/bad.conf"
assert_match "url: not a PostgreSQL URL \\(must start with postgresql://\\)" "$(err)"
assert_no_password "$T/stdout" "$T/stderr"

step "-n connects, migrates an empty database and checks it"
assert_exit 0 rd -n -c "$CONF"
assert_eq "configuration OK" "$(out)"
assert_eq "2" "$(pg_sql reconciled "SELECT version FROM ledger_meta")" \
    "schema version 2"
assert_eq "0	" "$(pg_sql reconciled "SELECT epoch, holder FROM leader")" \
    "the leader row, epoch 0, no holder"
assert_eq "0" "$(pg_sql reconciled "SELECT last FROM event_counter")"
assert_exit 0 rd -n -n -c "$CONF"
assert_eq "configuration OK" "$(out)" "-n -n too"
assert_no_password "$T/stdout" "$T/stderr"

step "reconcilectl on the PostgreSQL ledger"
assert_exit 0 ctl add pg-1 user-1 --sku gems
assert_exit 0 ctl show pg-1 --json
assert_eq "pending gems" "$(out | jq -r '"\(.state) \(.sku)"')" "the order is there"
assert_exit 1 ctl add pg-1 user-2
assert_match "order pg-1 is already known with another userKey" \
    "$(cat "$CTL_ERR")" "a conflict is refused"
assert_exit 0 ctl stats --json
assert_eq "1 0 0" "$(out | jq -r '"\(.orders.pending) \(.events) \(.lastEventId)"')" \
    "stats from the database"
assert_no_password "$T/stdout" "$T/stderr" "$CTL_ERR"

step "a database that is not ours: refused, untouched"
pg_sql postgres "CREATE DATABASE other" >/dev/null
pg_sql other "CREATE TABLE customers (id int PRIMARY KEY, name text);
    INSERT INTO customers VALUES (1, 'precious')" >/dev/null
sed "s|/reconciled?host=|/other?host=|" "$CONF" >"$T/other.conf"
assert_exit 1 rd -n -c "$T/other.conf"
assert_match "not a reconciled ledger \\(the schema holds other tables; refusing to touch it\\)" \
    "$(err)"
assert_eq "customers" "$(pg_sql other "SELECT string_agg(tablename, ',')
    FROM pg_tables WHERE schemaname = 'public'")" "nothing was created"
assert_eq "precious" "$(pg_sql other "SELECT name FROM customers")"
assert_exit 1 "$RECONCILECTL" -c "$T/other.conf" list
assert_match "not a reconciled ledger" "$(err)" "reconcilectl refuses it too"

step "a newer schema: refused, untouched"
pg_sql reconciled "UPDATE ledger_meta SET version = 99" >/dev/null
assert_exit 1 rd -n -c "$CONF"
assert_file_contains "$T/stderr" \
    "error: $MASKED: ledger schema version 99 is newer than this build supports (2); upgrade reconciled"
assert_eq "99" "$(pg_sql reconciled "SELECT version FROM ledger_meta")"
pg_sql reconciled "UPDATE ledger_meta SET version = 2" >/dev/null

step "a table missing: named"
pg_sql reconciled "ALTER TABLE replays RENAME TO replays_old" >/dev/null
assert_exit 1 rd -n -c "$CONF"
assert_match "not a complete reconciled ledger: table replays is missing" "$(err)"
pg_sql reconciled "ALTER TABLE replays_old RENAME TO replays" >/dev/null
assert_exit 0 rd -n -c "$CONF"

step "a version-2 ledger without its leader table: named"
pg_sql reconciled "ALTER TABLE leader RENAME TO leader_old" >/dev/null
assert_exit 1 rd -n -c "$CONF"
assert_match "not a complete reconciled ledger: table leader is missing" "$(err)"
pg_sql reconciled "ALTER TABLE leader_old RENAME TO leader" >/dev/null

step "a version-1 ledger (no leader table yet) opens and migrates to 2"
pg_sql postgres "CREATE DATABASE v1" >/dev/null
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -U reconciled -d v1 \
    -f "$top_srcdir/schema/pg/001-ledger.sql" >/dev/null ||
    fail "cannot apply schema/pg/001-ledger.sql"
pg_sql v1 "INSERT INTO ledger_meta (app, version) VALUES ('reconciled', 1);
    INSERT INTO orders (order_id, user_key, state, added_at, updated_at,
    next_poll_at) VALUES ('v1-order', 'u1', 'pending', 1, 1, 1)" >/dev/null
sed "s|/reconciled?host=|/v1?host=|" "$CONF" >"$T/v1.conf"
assert_exit 1 "$RECONCILECTL" -c "$T/v1.conf" list
assert_match "ledger schema version 1 is older than this build \(2\); open it read-write once to migrate it" \
    "$(err)" "a read-only open asks for the migration"
assert_eq "1" "$(pg_sql v1 "SELECT version FROM ledger_meta")" "not migrated by a read"
assert_exit 0 rd -n -c "$T/v1.conf"
assert_eq "configuration OK" "$(out)"
assert_eq "2" "$(pg_sql v1 "SELECT version FROM ledger_meta")" "migrated to 2"
assert_eq "1	0" "$(pg_sql v1 "SELECT count(*), min(epoch) FROM leader")" \
    "the migration made the leader row"
assert_exit 0 "$RECONCILECTL" -c "$T/v1.conf" show v1-order --json
assert_eq "pending" "$(out | jq -r .state)" "the order is kept"

step "-n -n: counters that disagree with the rows are damage"
pg_sql reconciled "UPDATE event_counter SET last = 5" >/dev/null
assert_exit 1 rd -n -n -c "$CONF"
assert_file_contains "$T/stderr" \
    "error: ledger $MASKED is damaged: its counters do not match its rows"
pg_sql reconciled "UPDATE event_counter SET last = 0" >/dev/null
assert_exit 0 rd -n -n -c "$CONF"

step "reading an empty database: nothing is created"
pg_sql postgres "CREATE DATABASE empty" >/dev/null
sed "s|/reconciled?host=|/empty?host=|" "$CONF" >"$T/empty.conf"
assert_exit 1 "$RECONCILECTL" -c "$T/empty.conf" list
assert_match "no ledger in this database yet \\(it is created by the first add, import or daemon start\\)" \
    "$(err)"
assert_eq "" "$(pg_sql empty "SELECT tablename FROM pg_tables
    WHERE schemaname = 'public'")" "no table was made"

step "no server: refused within the connect timeout, password masked"
sed "s|?host=$PG_DIR|?host=$T/nowhere|" "$CONF" >"$T/nowhere.conf"
t0=$(now_ms)
assert_exit 1 rd -n -c "$T/nowhere.conf"
assert_le 10000 "$(($(now_ms) - t0))" "refused within 10 s"
assert_file_contains "$T/stderr" \
    "error: postgresql://reconciled:***@/reconciled?host=$T/nowhere: cannot connect: "
assert_no_password "$T/stdout" "$T/stderr"

pass
