#!/bin/sh
# Event ids on PostgreSQL stay what a feed consumer relies on when several
# connections commit events at once: pg-event-order runs 3 writers (each
# its own connection, batches of grants held open a little so that they
# interleave) while it reads the feed keeping only the last id it saw; it
# must never see a gap. Then every id from 1 to the last exists once, and
# ids increase with the commit timestamps of the transactions that wrote
# them (track_commit_timestamp): an id never becomes visible before a
# smaller one.
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/lib-pg.sh"

PROG=$top_builddir/tests/integration/pg-event-order
require_file "$PROG"
pg_start

WRITERS=3
BATCHES=40
WANT=$((WRITERS * BATCHES * 4))

step "$WRITERS writers commit $WANT events while a reader follows the feed"
"$PROG" "$PG_URL" "$WRITERS" "$BATCHES" >"$T/stdout" 2>"$T/stderr" || {
	cat "$T/stdout" "$T/stderr" >&2
	fail "the reader saw a gap, or a writer failed"
}
assert_eq "events $WANT of $WANT, skipped 0" "$(cat "$T/stdout")" \
    "the reader saw every event, in order"

step "ids are 1..$WANT, one each, and the counter says the same"
assert_eq "$WANT	1	$WANT	$WANT" "$(pg_sql reconciled "SELECT count(*),
    min(id), max(id), count(DISTINCT id) FROM events")" "gap-free ids"
assert_eq "$WANT" "$(pg_sql reconciled "SELECT last FROM event_counter")" \
    "event_counter.last is the last id"

step "ids increase in commit order"
assert_eq "0" "$(pg_sql reconciled "SELECT count(*) FROM (SELECT
    pg_xact_commit_timestamp(xmin) AS ts, lag(pg_xact_commit_timestamp(xmin))
    OVER (ORDER BY id) AS before FROM events) e WHERE ts < before")" \
    "no event committed before one with a smaller id"
assert_eq "$((WRITERS * BATCHES))" "$(pg_sql reconciled "SELECT
    count(DISTINCT xmin::text) FROM events")" \
    "each batch was one transaction"

assert_no_password "$T/stdout" "$T/stderr"
echo "PASS: $TEST_NAME"
