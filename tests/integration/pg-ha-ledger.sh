#!/bin/sh
# The ledger's side of several instances on one PostgreSQL ledger, each
# step on a database of its own (pg-ha-ledger.c says what it checks):
# the leader epoch fences the writes only a leader makes, and a bump waits
# for a fenced batch; a result for an order that changed since it was
# claimed is not written; and a frozen network path (pg-proxy.py stopped
# with SIGSTOP) fails a call within the client's bound, after which the
# ledger connects again by itself.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/lib-pg.sh"

PROG=$top_builddir/tests/integration/pg-ha-ledger
require_file "$PROG"
require_cmd python3
pg_start

# run DB MODE [ARGS...]: the program's mode on a fresh database DB.
run()
{
	_db=$1
	shift
	pg_sql postgres "CREATE DATABASE $_db" >/dev/null
	"$PROG" "postgresql://reconciled:$PG_PASSWORD@/$_db?host=$PG_DIR" \
	    "$@" >"$T/$_db.out" 2>"$T/$_db.err" || {
		cat "$T/$_db.out" "$T/$_db.err" >&2
		fail "pg-ha-ledger $1 failed"
	}
	cat "$T/$_db.out"
	assert_eq "ok" "$(tail -n 1 "$T/$_db.out")" "$1: every outcome as expected"
	assert_no_password "$T/$_db.out" "$T/$_db.err"
}

step "fence: epochs 1, 2, 3 and two instances"
run fence fence
assert_eq "3" "$(pg_sql fence "SELECT epoch FROM leader")" "the epoch is the last bump's"
assert_eq "2" "$(pg_sql fence "SELECT count(*) FROM events")" \
    "one event from each leader, none from the fenced one"

step "stale: results for orders claimed again or rechecked"
run stale stale
assert_eq "s-1:grant s-2:grant" "$(pg_sql stale "SELECT string_agg(key, ' '
    ORDER BY id) FROM events")" "one event each, by the claim that held"

step "frozen: the path to the server stops answering"
"$top_srcdir/tests/integration/pg-proxy.py" "$T/proxy.port" \
    "$PG_DIR/.s.PGSQL.5432" 2>"$T/proxy.err" &
PROXY_PID=$!
at_exit "kill -CONT $PROXY_PID 2>/dev/null; kill $PROXY_PID 2>/dev/null"
i=0
while [ ! -s "$T/proxy.port" ]; do
	i=$((i + 1))
	[ "$i" -lt 100 ] || fail "pg-proxy.py did not start"
	sleep 0.1
done
PORT=$(cat "$T/proxy.port")
run frozen frozen "postgresql://reconciled:$PG_PASSWORD@127.0.0.1:$PORT/frozen" \
    "$PROXY_PID"
assert_match "no answer from the database in 6000 ms; connection dropped" \
    "$(cat "$T/frozen.err")" "the drop is logged"
assert_match "connected again" "$(cat "$T/frozen.err")" \
    "the reconnection is logged"

echo "PASS: $TEST_NAME"
