#!/bin/sh
# reconcilectl migrate, the upgrade from one host's SQLite ledger to
# PostgreSQL: the daemon settles orders in every state but expired
# (granted, refunded, failed, not_found, mismatch with an sku mismatch
# counted, held, pending) on SQLite with a JSONL sink, and one event is
# replayed; the ledger is copied into a throwaway PostgreSQL server (a
# copy found different is rolled back whole), whose rows then equal the file's
# table by table (same event ids) and whose reconcilectl answers equal the
# file's; a second copy into the now non-empty target is refused and
# changes nothing; the daemon continues on PostgreSQL: the next event gets
# the next id and the JSONL sink delivers nothing twice.
. "$top_srcdir/tests/integration/lib-daemon.sh"
. "$top_srcdir/tests/integration/lib-pg.sh"

require_cmd python3
pg_start

OUT=$T/events.jsonl
WRONG_KEY=443731104

start_sim "$SCENARIOS/status-paths.json"
CFG_NOT_FOUND_GRACE=3s
CFG_GIVE_UP_AFTER=4s
CFG_REFUND_CHECK_MIN=200ms
CFG_REFUND_CHECK_MAX=1s
# ORDER_IN_PROGRESS held: sp-progress is held, then granted; sp-expire
# stays held.
write_daemon_config "[events]" "jsonl = $OUT" \
    "[status]" "ORDER_IN_PROGRESS = hold"
use_control_sock
SQLITE_CONF=$CONF
SQLITE_LEDGER=$LEDGER
sed -e "s|^path = .*|url = $PG_URL|" "$SQLITE_CONF" >"$T/pg.conf"
PG_CONF=$T/pg.conf

step "settle orders on every status path on SQLite"
# sp-purchased's intake sku is one Toss contradicts: mismatch, counted.
import_orders <<EOF2
{"orderId":"sp-purchased","userKey":"1001","sku":"ait.WRONG","ref":"r-1"}
{"orderId":"sp-completed","userKey":1002}
{"orderId":"sp-progress","userKey":"1003"}
{"orderId":"sp-error","userKey":"1004"}
{"orderId":"sp-failed","userKey":"1005"}
{"orderId":"sp-refunded","userKey":"1006"}
{"orderId":"sp-later-refund","userKey":"1007"}
{"orderId":"sp-notfound","userKey":"1008"}
{"orderId":"sp-absent","userKey":"1009"}
{"orderId":"sp-late","userKey":"1010"}
{"orderId":"sp-mismatch","userKey":"1011"}
{"orderId":"sp-anomaly","userKey":"1012"}
{"orderId":"sp-expire","userKey":"1013"}
{"orderId":"sp-wrongkey","userKey":"$WRONG_KEY"}
EOF2

EXPECTED_STATES="sp-absent not_found
sp-anomaly granted
sp-completed granted
sp-error granted
sp-expire held
sp-failed failed
sp-late granted
sp-later-refund refunded
sp-mismatch mismatch
sp-notfound not_found
sp-progress granted
sp-purchased mismatch
sp-refunded refunded
sp-wrongkey pending"

states()
{
	orders_json | jq -r '.orderId + " " + .state' | LC_ALL=C sort
}

# settled: every order in its state, and the file holds every event.
settled()
{
	[ "$(states)" = "$EXPECTED_STATES" ] && has_event sp-anomaly anomaly &&
	    [ "$(ctl stats --json | jq -r '(.sinks.jsonl.deliveredId // 0) == .lastEventId')" = true ]
}

start_daemon
wait_until 25 "every order settled and delivered" settled
LAST=$(ctl stats --json | jq -r .lastEventId)
# A replay of the last event, for a replays row to copy.
ctl replay jsonl --from "$LAST" >/dev/null ||
    fail "reconcilectl replay failed: $(tail -n 2 "$CTL_ERR")"
wait_until 10 "the replayed event is delivered again" \
    eval '[ "$(wc -l <"$OUT" | tr -d " ")" -gt '"$LAST"' ] && settled'
stop_daemon_ok
assert_eq "$EXPECTED_STATES" "$(states)" "final states on SQLite"
assert_eq "$LAST" "$(ctl stats --json | jq -r .lastEventId)" "no event after the replay"
assert_ge 15 "$LAST" "events on SQLite"
assert_eq "$(seq 1 "$LAST"; echo "$LAST")" "$(jq -r .id "$OUT")" \
    "the file holds every event once, and the replayed one again"
cp "$SQLITE_LEDGER" "$T/before.db"

# dump_sqlite / dump_pg: every table's rows (the counts kept by triggers
# too), in the order migrate copies them, as text.
TABLES="orders:order_id events:id transitions:rowid sinks:name replays:rowid counters:name state_counts:state event_counts:type"
COLS_orders="order_id, user_key, sku, intake_sku, sku_confirmed, ref, state, toss_status, reason, determined_at, polls, errors, late_answers, added_at, updated_at, granted_at, next_poll_at"
COLS_events="id, key, type, order_id, payload, created_at"
COLS_transitions="order_id, at, from_status, to_status"
COLS_sinks="name, delivered_id, state, last_error, error_at, replays"
COLS_replays="sink, at, by_user, from_id, to_id"
COLS_counters="name, n"
COLS_state_counts="state, n"
COLS_event_counts="type, n"
dump_sqlite()
{
	for _t in $TABLES; do
		eval "_c=\$COLS_${_t%%:*}"
		python3 -c 'import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print("--", sys.argv[2])
for r in db.execute("SELECT %s FROM %s ORDER BY %s" % (sys.argv[3], sys.argv[2], sys.argv[4])):
    print("\t".join("\\N" if v is None else str(v) for v in r))' \
		    "$1" "${_t%%:*}" "$_c" "${_t#*:}" || fail "cannot read $1"
	done
}
dump_pg()
{
	for _t in $TABLES; do
		eval "_c=\$COLS_${_t%%:*}"
		_o=${_t#*:}
		[ "$_o" != rowid ] || _o=seq
		echo "-- ${_t%%:*}"
		"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -A -t -F '	' -P null='\N' \
		    -h "$PG_DIR" -U reconciled -d reconciled \
		    -c "SELECT $_c FROM ${_t%%:*} ORDER BY $_o" ||
		    fail "cannot read the PostgreSQL ledger"
	done
}
# ctl_views CONF: what reconcilectl shows of a ledger (stats without
# what depends on the time it is asked).
ctl_views()
{
	CTL_CONF=$1 ctl list --json
	for _id in $(CTL_CONF=$1 ctl list --json | jq -r .orderId); do
		CTL_CONF=$1 ctl show "$_id" --json
	done
	CTL_CONF=$1 ctl events --json --limit 100000
	CTL_CONF=$1 ctl events --limit 100000
	CTL_CONF=$1 ctl stats --json | jq -c 'del(.due, .oldestPendingSeconds)'
	CTL_CONF=$1 ctl sinks --json
}

step "migrate into an empty PostgreSQL ledger"
# As a daemon started on it first would leave it: the schema, and the
# sink's row at cursor 0 (the copy's cursor wins).
CTL_CONF=$PG_CONF ctl recheck --state held >/dev/null ||
    fail "cannot create the PostgreSQL ledger: $(tail -n 2 "$CTL_ERR")"
pg_sql reconciled "INSERT INTO sinks (name) VALUES ('jsonl')"
# A sink the file does not have: the copy differs, and is rolled back whole.
pg_sql reconciled "INSERT INTO sinks (name) VALUES ('other')"
assert_exit 1 "$RECONCILECTL" -c "$PG_CONF" migrate "$SQLITE_LEDGER"
assert_eq "" "$(out)" "nothing on stdout"
assert_match "the copy differs from the source \(sinks: 1 rows in the source, 2 in the target\); nothing was copied" \
    "$(err)" "the difference found before the commit"
assert_eq "0 0 0 0" "$(pg_sql reconciled "SELECT (SELECT count(*) FROM orders) || ' ' ||
    (SELECT count(*) FROM events) || ' ' || (SELECT count(*) FROM transitions) || ' ' ||
    (SELECT last FROM event_counter)")" "nothing was copied"
assert_eq "jsonl	0" "$(pg_sql reconciled "SELECT name, delivered_id FROM sinks ORDER BY name LIMIT 1")" \
    "the target's sink row is as it was"
pg_sql reconciled "DELETE FROM sinks WHERE name = 'other'"
assert_exit 0 "$RECONCILECTL" -c "$PG_CONF" migrate "$SQLITE_LEDGER"
assert_eq "migrated $SQLITE_LEDGER into postgresql://reconciled:***@/reconciled?host=$PG_DIR
orders 14, events $LAST, transitions $(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM transitions").fetchone()[0])' "$SQLITE_LEDGER"), sinks 1, replays 1, counters 1
last event id $LAST; verified: rows per table, orders per state, events per type and the last event id agree" \
    "$(out)" "the summary"
assert_eq "" "$(err)" "nothing on stderr"
cmp -s "$SQLITE_LEDGER" "$T/before.db" || fail "migrate wrote to its source"
dump_sqlite "$SQLITE_LEDGER" >"$T/sqlite.rows"
dump_pg >"$T/pg.rows"
diff -u "$T/sqlite.rows" "$T/pg.rows" >&2 ||
    fail "the PostgreSQL rows differ from the SQLite rows"
assert_eq "$LAST" "$(pg_sql reconciled 'SELECT last FROM event_counter')" \
    "the event counter follows the last copied event"
ctl_views "$SQLITE_CONF" >"$T/sqlite.views"
ctl_views "$PG_CONF" >"$T/pg.views"
diff -u "$T/sqlite.views" "$T/pg.views" >&2 ||
    fail "reconcilectl shows the two ledgers differently"
assert_eq "sku_mismatch	1" "$(pg_sql reconciled 'SELECT name, n FROM counters')" \
    "the sku mismatch counted on SQLite is counted on PostgreSQL"
assert_eq "1	0" "$(pg_sql reconciled 'SELECT count(*), min(epoch) FROM leader')" \
    "the target keeps the leader row its migration made (SQLite has none to copy)"

step "a second migrate into the non-empty target is refused"
assert_exit 1 "$RECONCILECTL" -c "$PG_CONF" migrate "$SQLITE_LEDGER"
assert_eq "" "$(out)" "nothing on stdout"
assert_match "is not empty \(it has orders or events\); refusing to copy into it, nothing was changed" \
    "$(err)" "the refusal"
dump_pg >"$T/pg2.rows"
cmp -s "$T/pg.rows" "$T/pg2.rows" || fail "the refused migrate changed the target"

step "usage errors"
assert_exit 64 "$RECONCILECTL" -c "$PG_CONF" migrate
assert_match "migrate: missing SOURCE" "$(err)" "no source"
assert_exit 1 "$RECONCILECTL" -c "$PG_CONF" migrate "$T/absent.db"
assert_match "absent.db: No such file or directory" "$(err)" "absent source"
assert_exit 1 "$RECONCILECTL" -c "$SQLITE_CONF" migrate "$SQLITE_LEDGER"
assert_match "is the configured ledger itself" "$(err)" "source = target"

step "the daemon continues on PostgreSQL"
CONF=$PG_CONF
start_daemon
post_order mg-new 2001
wait_until 15 "mg-new settles (not found after the grace)" \
    state_is mg-new not_found
NEXT=$((LAST + 1))
wait_until 10 "the file receives the new event" \
    eval '[ "$(wc -l <"$OUT" | tr -d " ")" -ge '"$NEXT"' ]'
sleep 1
assert_eq "$NEXT not_found" \
    "$(events_json | jq -r 'select(.orderId == "mg-new") | "\(.id) \(.type)"')" \
    "the new order's event has the id after the last copied one"
assert_eq "$NEXT" "$(ctl stats --json | jq -r .lastEventId)" "no other event"
assert_eq "$(seq 1 "$LAST"; echo "$LAST"; echo "$NEXT")" "$(jq -r .id "$OUT")" \
    "the file holds the new event once, and no copied event again"
assert_eq "$(events_json | jq -c . )" "$(jq -c . "$OUT" | uniq)" \
    "the file's lines are the stored events"
assert_eq "$EXPECTED_STATES" "$(states | grep -v '^mg-new ')" \
    "the copied orders keep their states"
pass
