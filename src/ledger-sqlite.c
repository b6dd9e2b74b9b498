/* The ledger's SQLite backend (ledger_sqlite_ops): opening (and refusing
 * files that are not ours), migrations, the kept prepared statements,
 * claiming due orders, applying poll results with their events (the
 * outbox), cursors and stats, in one file. One daemon writes a file (its
 * lock says so): l->fence is ignored, and results need no check that the
 * order is still as claimed. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sqlite3.h>

#include "json-out.h"
#include "ledger-backend.h"
#include "log.h"
#include "schema.h"
#include "util.h"

#define ORDER_COLS \
	"order_id, user_key, sku, ref, state, toss_status, reason, " \
	"determined_at, polls, errors, added_at, updated_at, granted_at, " \
	"next_poll_at, intake_sku, sku_confirmed, late_answers"

#define SINK_COLS \
	"name, delivered_id, replays, state, coalesce(last_error, ''), " \
	"coalesce(error_at, 0)"

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_TO,
	S_ADD,
	S_USER_KEY,
	S_GET,
	S_FOREACH_ALL,
	S_FOREACH_STATE,
	S_CLAIM,
	S_NEXT_DUE,
	S_APPLY,
	S_TRANSITION,
	S_EVENT_ADD,
	S_EVENT_PAYLOAD,
	S_RESCHEDULE,
	S_RECHECK,
	S_RECHECK_STATE,
	S_EVENTS,
	S_CURSOR_GET,
	S_CURSOR_SET,
	S_CURSORS,
	S_CURSOR_ADVANCE,
	S_SINK_GET,
	S_SINKS,
	S_SINK_STATE,
	S_REPLAY_MOVE,
	S_REPLAY_LOG,
	S_LAST_REPLAY,
	S_EVENT_SINCE,
	S_STATE_COUNTS,
	S_EVENT_COUNT,
	S_EVENT_TYPE_COUNTS,
	S_LAST_EVENT,
	S_OLDEST_PENDING,
	S_DUE_COUNT,
	S_COUNTER_ADD,
	S_COUNTER_GET,
	S_SEARCH,
	S_TRANSITIONS,
	S_ORDER_EVENTS,
	S_HELD,
	S_ANOMALIES,
	S_HISTORY,
	S__COUNT
};

/* Every statement the ledger runs, prepared once at open. */
static const char *const stmt_sql[S__COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT ledger_op",
	[S_RELEASE] = "RELEASE ledger_op",
	[S_ROLLBACK_TO] = "ROLLBACK TO ledger_op",
	[S_ADD] =
	    "INSERT INTO orders (order_id, user_key, sku, intake_sku, ref,"
	    " state, added_at, updated_at, next_poll_at)"
	    " VALUES (?1, ?2, ?3, ?3, ?4, 'pending', ?5, ?5, ?5)"
	    " ON CONFLICT (order_id) DO NOTHING",
	[S_USER_KEY] = "SELECT user_key FROM orders WHERE order_id = ?1",
	[S_GET] = "SELECT " ORDER_COLS " FROM orders WHERE order_id = ?1",
	[S_FOREACH_ALL] =
	    "SELECT " ORDER_COLS " FROM orders ORDER BY added_at, order_id",
	[S_FOREACH_STATE] =
	    "SELECT " ORDER_COLS " FROM orders WHERE state = ?1"
	    " ORDER BY added_at, order_id",
	/* One range of the due index per call (?2 is the prio). */
	[S_CLAIM] =
	    "UPDATE orders SET next_poll_at = ?1 WHERE rowid IN"
	    " (SELECT rowid FROM orders WHERE prio = ?2 AND next_poll_at <= ?3"
	    " ORDER BY next_poll_at LIMIT ?4)"
	    " RETURNING " ORDER_COLS,
	[S_NEXT_DUE] =
	    "SELECT MIN(t) FROM ("
	    "SELECT MIN(next_poll_at) AS t FROM orders"
	    " WHERE prio = 0 AND next_poll_at IS NOT NULL"
	    " UNION ALL "
	    "SELECT MIN(next_poll_at) AS t FROM orders"
	    " WHERE prio = 1 AND next_poll_at IS NOT NULL)",
	[S_APPLY] =
	    "UPDATE orders SET state = ?1,"
	    " toss_status = CASE WHEN ?2 THEN ?3 ELSE toss_status END,"
	    " reason = CASE WHEN ?2 THEN ?4 ELSE reason END,"
	    " determined_at = CASE WHEN ?2 THEN ?5 ELSE determined_at END,"
	    " sku = coalesce(?6, sku),"
	    " sku_confirmed = CASE WHEN ?6 IS NOT NULL THEN 1"
	    " ELSE sku_confirmed END,"
	    " late_answers = ?13,"
	    " polls = polls + ?7,"
	    " errors = errors + ?8,"
	    " granted_at = CASE WHEN ?9 > 0 THEN ?9 ELSE granted_at END,"
	    " next_poll_at = nullif(?10, 0),"
	    " updated_at = ?11"
	    " WHERE order_id = ?12"
	    " RETURNING " ORDER_COLS,
	[S_TRANSITION] =
	    "INSERT INTO transitions (order_id, at, from_status, to_status)"
	    " VALUES (?1, ?2, ?3, ?4)",
	[S_EVENT_ADD] =
	    /* The NOT EXISTS keeps a known key from using up an id (an
	     * AUTOINCREMENT value is taken before a conflict is seen), so
	     * ids have no gaps; the UNIQUE constraint stays the guarantee. */
	    "INSERT INTO events (key, type, order_id, payload, created_at)"
	    " SELECT ?1, ?2, ?3, '', ?4"
	    " WHERE NOT EXISTS (SELECT 1 FROM events WHERE key = ?1)"
	    " ON CONFLICT (key) DO NOTHING RETURNING id",
	[S_EVENT_PAYLOAD] = "UPDATE events SET payload = ?1 WHERE id = ?2",
	[S_RESCHEDULE] =
	    "UPDATE orders SET next_poll_at = nullif(?2, 0) WHERE order_id = ?1",
	[S_RECHECK] = "UPDATE orders SET next_poll_at = ?2 WHERE order_id = ?1",
	[S_RECHECK_STATE] = "UPDATE orders SET next_poll_at = ?2 WHERE state = ?1",
	[S_EVENTS] =
	    "SELECT id, payload FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
	[S_CURSOR_GET] = "SELECT delivered_id FROM sinks WHERE name = ?1",
	[S_CURSOR_SET] =
	    "INSERT INTO sinks (name, delivered_id) VALUES (?1, ?2)"
	    " ON CONFLICT (name) DO UPDATE SET delivered_id = excluded.delivered_id",
	[S_CURSORS] = "SELECT name, delivered_id FROM sinks ORDER BY name",
	/* Only while no replay moved the cursor since the sink read it. */
	[S_CURSOR_ADVANCE] =
	    "INSERT INTO sinks (name, delivered_id) VALUES (?1, ?3)"
	    " ON CONFLICT (name) DO UPDATE SET delivered_id = excluded.delivered_id"
	    " WHERE sinks.replays = ?2",
	[S_SINK_GET] =
	    "SELECT " SINK_COLS " FROM sinks WHERE name = ?1",
	[S_SINKS] = "SELECT " SINK_COLS " FROM sinks ORDER BY name",
	[S_SINK_STATE] =
	    "INSERT INTO sinks (name, state, last_error, error_at)"
	    " VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT (name) DO UPDATE SET state = excluded.state,"
	    " last_error = coalesce(excluded.last_error, last_error),"
	    " error_at = coalesce(excluded.error_at, error_at)",
	[S_REPLAY_MOVE] =
	    "INSERT INTO sinks (name, delivered_id, replays) VALUES (?1, ?2, 1)"
	    " ON CONFLICT (name) DO UPDATE SET"
	    " delivered_id = excluded.delivered_id, replays = replays + 1",
	[S_REPLAY_LOG] =
	    "INSERT INTO replays (sink, at, by_user, from_id, to_id)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_LAST_REPLAY] =
	    "SELECT by_user FROM replays WHERE sink = ?1"
	    " ORDER BY at DESC, rowid DESC LIMIT 1",
	[S_EVENT_SINCE] =
	    "SELECT MIN(id) FROM events WHERE created_at >= ?1",
	[S_STATE_COUNTS] = "SELECT state, n FROM state_counts",
	[S_EVENT_COUNT] = "SELECT coalesce(SUM(n), 0) FROM event_counts",
	[S_EVENT_TYPE_COUNTS] = "SELECT type, n FROM event_counts",
	[S_LAST_EVENT] = "SELECT coalesce(MAX(id), 0) FROM events",
	[S_OLDEST_PENDING] =
	    "SELECT MIN(added_at) FROM orders WHERE state = 'pending'",
	[S_DUE_COUNT] =
	    "SELECT (SELECT COUNT(*) FROM orders"
	    " WHERE prio = 0 AND next_poll_at <= ?1)"
	    " + (SELECT COUNT(*) FROM orders"
	    " WHERE prio = 1 AND next_poll_at <= ?1)",
	[S_COUNTER_ADD] = "UPDATE counters SET n = n + 1 WHERE name = ?1",
	[S_COUNTER_GET] = "SELECT n FROM counters WHERE name = ?1",
	/* The console's queries. A userKey or ref has no index: a search
	 * reads the table, fine for what a person types now and then. */
	[S_SEARCH] =
	    "SELECT " ORDER_COLS " FROM orders"
	    " WHERE order_id = ?1 OR user_key = ?1 OR ref = ?1"
	    " ORDER BY added_at DESC, order_id LIMIT ?2",
	[S_TRANSITIONS] =
	    "SELECT at, from_status, to_status FROM transitions"
	    " WHERE order_id = ?1 ORDER BY at, rowid",
	/* Event keys are "<orderId>:<type>": the unique index finds them. */
	[S_ORDER_EVENTS] =
	    "SELECT id, payload FROM events"
	    " WHERE key > ?1 || ':' AND key < ?1 || ';' AND order_id = ?1"
	    " ORDER BY id",
	[S_HELD] =
	    "SELECT o.toss_status, COUNT(*), MIN(coalesce("
	    "(SELECT MIN(t.at) FROM transitions t WHERE t.order_id = o.order_id"
	    " AND t.to_status = o.toss_status), o.updated_at)),"
	    " MAX(o.updated_at), MIN(o.order_id)"
	    " FROM orders o WHERE o.state = 'held'"
	    " GROUP BY o.toss_status ORDER BY COUNT(*) DESC, o.toss_status",
	[S_ANOMALIES] =
	    "SELECT " ORDER_COLS " FROM orders WHERE order_id IN"
	    " (SELECT order_id FROM events WHERE type = 'anomaly')"
	    " ORDER BY updated_at DESC LIMIT ?1",
	[S_HISTORY] =
	    "SELECT (created_at - ?1) / ?2, COUNT(*) FROM events"
	    " WHERE created_at >= ?1 GROUP BY 1 ORDER BY 1",
};

/* The backend's part of a handle (struct ledger's be). */
struct sqlite_ledger {
	sqlite3		*db;
	sqlite3_stmt	*stmt[S__COUNT];
};

static sqlite3 *
sq_db(struct ledger *l)
{
	return ((struct sqlite_ledger *)l->be)->db;
}

static sqlite3_stmt **
sq_stmt(struct ledger *l)
{
	return ((struct sqlite_ledger *)l->be)->stmt;
}

/* The tables a ledger has; a file without them is not ours. */
static const char *const ledger_tables[] = {
	"orders", "events", "transitions", "sinks"
};

static const char *
sq_errmsg(struct ledger *l)
{
	return sqlite3_errmsg(sq_db(l));
}

/* Keeps SQLite's cause of the current call's failure. The first cause
 * wins (ledger_set_error()): the rollback that follows a failed statement
 * resets SQLite's own message to "not an error". */
static void
set_error(struct ledger *l, int code, const char *msg)
{
	ledger_set_error(l, code != SQLITE_OK ? code : SQLITE_ERROR, "%s", msg);
}

static int
is_damage(int code)
{
	return (code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB;
}

static void
col_text(sqlite3_stmt *st, int col, char *dst, size_t size)
{
	const char	*s = (const char *)sqlite3_column_text(st, col);
	size_t		 len, n;

	if (s == NULL) {
		dst[0] = '\0';
		return;
	}
	len = (size_t)sqlite3_column_bytes(st, col);
	n = ledger_utf8_prefix(s, len, size - 1);
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static int64_t
col_time(sqlite3_stmt *st, int col)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return 0;
	return sqlite3_column_int64(st, col);
}

/* Fills *o from a row of ORDER_COLS starting at column 0. */
static int
row_order(struct ledger *l, sqlite3_stmt *st, struct order *o)
{
	char	 state[32];

	memset(o, 0, sizeof(*o));
	col_text(st, 0, o->order_id, sizeof(o->order_id));
	col_text(st, 1, o->user_key, sizeof(o->user_key));
	col_text(st, 2, o->sku, sizeof(o->sku));
	o->has_ref = sqlite3_column_type(st, 3) != SQLITE_NULL;
	col_text(st, 3, o->ref, sizeof(o->ref));
	col_text(st, 4, state, sizeof(state));
	if (order_state_parse(state, &o->state) == -1) {
		ledger_own_error(l, "order %s has unknown state \"%s\"",
		    o->order_id, state);
		return -1;
	}
	col_text(st, 5, o->toss_status, sizeof(o->toss_status));
	col_text(st, 6, o->reason, sizeof(o->reason));
	col_text(st, 7, o->determined_at, sizeof(o->determined_at));
	o->polls = sqlite3_column_int64(st, 8);
	o->errors = sqlite3_column_int64(st, 9);
	o->added_at = col_time(st, 10);
	o->updated_at = col_time(st, 11);
	o->granted_at = col_time(st, 12);
	o->next_poll_at = col_time(st, 13);
	col_text(st, 14, o->intake_sku, sizeof(o->intake_sku));
	o->sku_confirmed = sqlite3_column_int64(st, 15) != 0;
	o->late_answers = sqlite3_column_int64(st, 16);
	return 0;
}

/* Logs and keeps the error of the SQLite call that just failed; call it
 * before anything else touches the connection. Damage is said once, by
 * note_damage(): every later statement would only repeat it. */
static void
sql_error(struct ledger *l, const char *what)
{
	int		 code = sqlite3_extended_errcode(sq_db(l));
	const char	*msg = sqlite3_errmsg(sq_db(l));

	set_error(l, code, msg);
	if (is_damage(code)) {
		log_debug("ledger: %s: %s", what, msg);
		ledger_note_damage(l, msg);
		return;
	}
	log_warnx("ledger: %s: %s", what, msg);
}

/* Resets a kept statement and drops its bindings (they may point at the
 * caller's memory). */
static void
stmt_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Binds text, NULL for a NULL pointer; at most max bytes (cut on a UTF-8
 * boundary) when max > 0. */
static int
bind_text(struct ledger *l, sqlite3_stmt *st, int idx, const char *s,
    size_t max)
{
	size_t	 len;
	int	 rc;

	if (s == NULL)
		rc = sqlite3_bind_null(st, idx);
	else {
		len = strlen(s);
		if (max > 0)
			len = ledger_utf8_prefix(s, len, max);
		rc = sqlite3_bind_text(st, idx, s, (int)len, SQLITE_STATIC);
	}
	if (rc != SQLITE_OK) {
		sql_error(l, "bind");
		return -1;
	}
	return 0;
}

/* Binds text, NULL for a NULL pointer or "". */
static int
bind_text_null(struct ledger *l, sqlite3_stmt *st, int idx, const char *s,
    size_t max)
{
	return bind_text(l, st, idx, s == NULL || *s == '\0' ? NULL : s, max);
}

static int
bind_int64(struct ledger *l, sqlite3_stmt *st, int idx, int64_t v)
{
	if (sqlite3_bind_int64(st, idx, v) != SQLITE_OK) {
		sql_error(l, "bind");
		return -1;
	}
	return 0;
}

/* Runs a kept statement to completion, ignoring any rows, and resets it. */
static int
step_done(struct ledger *l, enum stmt_id id, const char *what)
{
	sqlite3_stmt	*st = sq_stmt(l)[id];
	int		 rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		sql_error(l, what);
		stmt_done(st);
		return -1;
	}
	stmt_done(st);
	return 0;
}

/* Runs a one-value query; 1 and *v set, 0 when it gave no row or NULL. */
static int
step_int64(struct ledger *l, enum stmt_id id, const char *what, int64_t *v)
{
	sqlite3_stmt	*st = sq_stmt(l)[id];
	int		 rc, found = 0;

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
			*v = sqlite3_column_int64(st, 0);
			found = 1;
		}
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		sql_error(l, what);
		stmt_done(st);
		return -1;
	}
	stmt_done(st);
	return found;
}

/* Starts a write: its own transaction outside ledger_begin(), a savepoint
 * inside one, so that a failed operation never leaves half its writes in
 * the caller's batch. */
static int
write_begin(struct ledger *l)
{
	if (l->in_tx) {
		if (sqlite3_get_autocommit(sq_db(l))) {
			ledger_own_error(l, "the batch transaction was rolled"
			    " back by an earlier error");
			return -1;
		}
		return step_done(l, S_SAVEPOINT, "savepoint");
	}
	return step_done(l, S_BEGIN, "begin");
}

/* Ends a write begun by write_begin(): commits (or releases) when ok,
 * rolls back otherwise. Returns 0, or -1 if it failed or !ok. */
static int
write_end(struct ledger *l, int ok)
{
	if (l->in_tx) {
		if (sqlite3_get_autocommit(sq_db(l)))
			return -1;
		if (!ok && step_done(l, S_ROLLBACK_TO, "rollback to") == -1)
			return -1;
		if (step_done(l, S_RELEASE, "release") == -1)
			return -1;
		return ok ? 0 : -1;
	}
	if (ok && step_done(l, S_COMMIT, "commit") == 0)
		return 0;
	if (!sqlite3_get_autocommit(sq_db(l)))
		(void)step_done(l, S_ROLLBACK, "rollback");
	return -1;
}

static int
sq_begin(struct ledger *l)
{
	return step_done(l, S_BEGIN, "begin");
}

static int
sq_commit(struct ledger *l)
{
	if (sqlite3_get_autocommit(sq_db(l))) {
		ledger_own_error(l, "commit: the transaction was already rolled"
		    " back by an earlier error");
		return -1;
	}
	if (step_done(l, S_COMMIT, "commit") == 0)
		return 0;
	if (!sqlite3_get_autocommit(sq_db(l)))
		(void)step_done(l, S_ROLLBACK, "rollback");
	return -1;
}

static void
sq_rollback(struct ledger *l)
{
	if (!sqlite3_get_autocommit(sq_db(l)))
		(void)step_done(l, S_ROLLBACK, "rollback");
}

/* The message (caller frees) for the SQLite call that just failed while
 * opening: what (may be NULL) and SQLite's reason, in the words the
 * operator needs for a file that is not a database or is damaged. */
static char *
open_error(struct ledger *l, const char *what)
{
	const char	*msg = sqlite3_errmsg(sq_db(l));

	switch (sqlite3_extended_errcode(sq_db(l)) & 0xff) {
	case SQLITE_NOTADB:
		return xasprintf("%s: not an SQLite database (refusing to touch"
		    " it)", l->where);
	case SQLITE_CORRUPT:
		return xasprintf("ledger %s is damaged: %s", l->where, msg);
	}
	if (what != NULL)
		return xasprintf("%s: %s: %s", l->where, what, msg);
	return xasprintf("%s: %s", l->where, msg);
}

/* Runs one statement of SQL text (pragmas, migrations); sets *err. */
static int
exec_sql(struct ledger *l, const char *sql, char **err)
{
	if (sqlite3_exec(sq_db(l), sql, NULL, NULL, NULL) != SQLITE_OK) {
		*err = open_error(l, NULL);
		return -1;
	}
	return 0;
}

/* Reads one integer with a throwaway statement; sets *err. */
static int
query_int64(struct ledger *l, const char *sql, int64_t *v, char **err)
{
	sqlite3_stmt	*st;
	int		 rc;

	*v = 0;
	if (sqlite3_prepare_v2(sq_db(l), sql, -1, &st, NULL) != SQLITE_OK) {
		*err = open_error(l, NULL);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		*err = open_error(l, NULL);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/* 0 for a file that is absent, empty or starts like an SQLite database;
 * -1 (and *err) for anything else, which is left untouched. */
static int
check_header(const char *path, char **err)
{
	static const char	 magic[16] = "SQLite format 3";
	char			 buf[sizeof(magic)];
	struct stat		 sb;
	ssize_t			 n;
	int			 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		if (errno == ENOENT)
			return 0;
		*err = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		*err = xasprintf("%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (sb.st_size == 0) {
		close(fd);
		return 0;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != (ssize_t)sizeof(buf) || memcmp(buf, magic, sizeof(magic)) != 0) {
		*err = xasprintf("%s: not an SQLite database (refusing to touch"
		    " it)", path);
		return -1;
	}
	return 0;
}

/* Creates the file with mode 0600 whatever the umask, so that the WAL and
 * shared-memory files SQLite derives from it are private too. */
static int
create_private(const char *path, char **err)
{
	int	 fd;

	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd == -1) {
		if (errno == EEXIST)
			return 0;
		*err = xasprintf("%s: cannot create: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) == -1) {
		*err = xasprintf("%s: chmod: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Switches the database to WAL (a persistent setting in its header). */
static int
set_wal(struct ledger *l, char **err)
{
	sqlite3_stmt	*st;
	const char	*mode;
	int		 rc, wal = 0;

	if (sqlite3_prepare_v2(sq_db(l), "PRAGMA journal_mode = WAL", -1, &st,
	    NULL) != SQLITE_OK) {
		*err = open_error(l, "journal mode");
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		mode = (const char *)sqlite3_column_text(st, 0);
		wal = mode != NULL && strcasecmp(mode, "wal") == 0;
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		*err = open_error(l, "journal mode");
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	if (!wal) {
		*err = xasprintf("%s: cannot switch to WAL journal mode", l->where);
		return -1;
	}
	return 0;
}

/* Decides, reading only, whether the open file is a ledger this build can
 * use (or an empty database to make one of). Sets *version. */
static int
check_identity(struct ledger *l, int64_t *version, char **err)
{
	char		 sql[160];
	int64_t		 objects, found, n;
	size_t		 i;
	int		 r;

	if (query_int64(l, "PRAGMA user_version", version, err) == -1)
		return -1;
	if (query_int64(l, "SELECT count(*) FROM sqlite_schema"
	    " WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'", &objects, err) == -1)
		return -1;
	found = 0;
	for (i = 0; i < sizeof(ledger_tables) / sizeof(ledger_tables[0]); i++) {
		r = snprintf(sql, sizeof(sql), "SELECT count(*) FROM sqlite_schema"
		    " WHERE type = 'table' AND name = '%s'", ledger_tables[i]);
		if (r < 0 || (size_t)r >= sizeof(sql))
			fatalx("ledger: identity query too long");
		if (query_int64(l, sql, &n, err) == -1)
			return -1;
		found += n;
	}
	if (*version == 0) {
		if (objects != 0) {
			*err = xasprintf("%s: not a reconciled ledger", l->where);
			return -1;
		}
		return 0;
	}
	if (found != (int64_t)(sizeof(ledger_tables) / sizeof(ledger_tables[0]))) {
		*err = xasprintf("%s: not a reconciled ledger", l->where);
		return -1;
	}
	if (*version > (int64_t)schema_count) {
		*err = xasprintf("%s: ledger schema version %lld is newer than"
		    " this build supports (%zu); upgrade reconciled", l->where,
		    (long long)*version, schema_count);
		return -1;
	}
	return 0;
}

/* A read-only connection to a WAL database creates its -wal and -shm
 * files and, unable to checkpoint, leaves them behind. So when neither
 * exists (nobody has the file open), the identity is first checked on an
 * immutable connection, which creates nothing: a file that is refused is
 * left exactly as it was found. Sets *err. */
static int
check_identity_untouched(struct ledger *l, char **err)
{
	static const char	 safe[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-";
	struct ledger		 probe;
	struct sqlite_ledger	 pq;
	struct stat		 sb;
	const unsigned char	*c;
	char			*side, *uri;
	size_t			 len;
	int64_t			 version;
	int			 absent, r;

	side = xasprintf("%s-wal", l->where);
	absent = stat(side, &sb) == -1 && errno == ENOENT;
	free(side);
	side = xasprintf("%s-shm", l->where);
	absent = absent && stat(side, &sb) == -1 && errno == ENOENT;
	free(side);
	if (!absent)
		return 0;

	/* The path goes into a URI: escape all but the plainest bytes. */
	len = strlen(l->where);
	uri = xcalloc(1, sizeof("file:?immutable=1") + 3 * len);
	memcpy(uri, "file:", 5);
	len = 5;
	for (c = (const unsigned char *)l->where; *c != '\0'; c++) {
		if (strchr(safe, *c) != NULL)
			uri[len++] = (char)*c;
		else {
			snprintf(uri + len, 4, "%%%02X", *c);
			len += 3;
		}
	}
	memcpy(uri + len, "?immutable=1", sizeof("?immutable=1"));

	memset(&probe, 0, sizeof(probe));
	memset(&pq, 0, sizeof(pq));
	probe.ops = l->ops;
	probe.be = &pq;
	probe.where = l->where;
	if (sqlite3_open_v2(uri, &pq.db, SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*err = pq.db != NULL ? open_error(&probe, NULL) :
		    xasprintf("%s: out of memory", l->where);
		r = -1;
	} else
		r = check_identity(&probe, &version, err);
	sqlite3_close(pq.db);
	free(uri);
	return r;
}

/* Applies the missing migrations, each in its own transaction. The version
 * is read again under the write lock: another process may have migrated. */
static int
migrate(struct ledger *l, char **err)
{
	char	 sql[64];
	int64_t	 v;
	int	 r;

	for (;;) {
		if (exec_sql(l, "BEGIN IMMEDIATE", err) == -1)
			return -1;
		if (query_int64(l, "PRAGMA user_version", &v, err) == -1)
			goto fail;
		if (v >= (int64_t)schema_count) {
			if (exec_sql(l, "COMMIT", err) == -1)
				goto fail;
			return 0;
		}
		if (exec_sql(l, schema_migrations[v], err) == -1)
			goto fail;
		r = snprintf(sql, sizeof(sql), "PRAGMA user_version = %lld",
		    (long long)v + 1);
		if (r < 0 || (size_t)r >= sizeof(sql))
			fatalx("ledger: pragma too long");
		if (exec_sql(l, sql, err) == -1 || exec_sql(l, "COMMIT", err) == -1)
			goto fail;
		log_info("ledger: %s: migrated to schema version %lld", l->where,
		    (long long)v + 1);
	}

fail:
	if (!sqlite3_get_autocommit(sq_db(l)))
		(void)sqlite3_exec(sq_db(l), "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* Runs want_sql (two text columns: kind and name) on the reference
 * database ref and looks each row up in the file with have_sql (?1, ?2
 * bound to them): the first one missing is named in *err. 0 when none is
 * missing, -1 otherwise (or on an error, also in *err). */
static int
check_missing(struct ledger *l, sqlite3 *ref, const char *want_sql,
    const char *have_sql, const char *what, char **err)
{
	sqlite3_stmt	*want = NULL, *have = NULL;
	const char	*kind, *name;
	int		 rc, r = -1;

	if (sqlite3_prepare_v2(ref, want_sql, -1, &want, NULL) != SQLITE_OK) {
		*err = xasprintf("%s: cannot read the reference schema: %s",
		    l->where, sqlite3_errmsg(ref));
		goto out;
	}
	if (sqlite3_prepare_v2(sq_db(l), have_sql, -1, &have,
	    NULL) != SQLITE_OK) {
		*err = open_error(l, NULL);
		goto out;
	}
	while ((rc = sqlite3_step(want)) == SQLITE_ROW) {
		kind = (const char *)sqlite3_column_text(want, 0);
		name = (const char *)sqlite3_column_text(want, 1);
		if (kind == NULL || name == NULL)
			continue;
		if (sqlite3_bind_text(have, 1, kind, -1, SQLITE_STATIC) !=
		    SQLITE_OK || sqlite3_bind_text(have, 2, name, -1,
		    SQLITE_STATIC) != SQLITE_OK) {
			*err = open_error(l, NULL);
			goto out;
		}
		rc = sqlite3_step(have);
		if (rc == SQLITE_DONE) {
			*err = xasprintf("%s: not a complete reconciled ledger:"
			    " %s %s%s%s is missing; restore it from a backup",
			    l->where, what != NULL ? what : kind,
			    what != NULL ? kind : name, what != NULL ? "." : "",
			    what != NULL ? name : "");
			goto out;
		}
		if (rc != SQLITE_ROW) {
			*err = open_error(l, NULL);
			goto out;
		}
		sqlite3_reset(have);
	}
	if (rc != SQLITE_DONE) {
		*err = xasprintf("%s: cannot read the reference schema: %s",
		    l->where, sqlite3_errmsg(ref));
		goto out;
	}
	r = 0;

out:
	sqlite3_finalize(have);
	sqlite3_finalize(want);
	return r;
}

/* Checks, reading only the file's schema, that every table, index and
 * trigger this build's migrations make is there, and every column of
 * those tables (a migration that adds a column makes no object); they are
 * made afresh in a private in-memory database to compare with, so the
 * list cannot fall behind schema/. A ledger missing one was edited by
 * hand, and without an index each claim would read the whole table.
 * Sets *err. */
static int
check_objects(struct ledger *l, char **err)
{
	sqlite3		*ref = NULL;
	size_t		 i;
	int		 r = -1;

	if (sqlite3_open_v2(":memory:", &ref, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		*err = xasprintf("%s: cannot make the reference schema: %s",
		    l->where, ref != NULL ? sqlite3_errmsg(ref) :
		    "out of memory");
		goto out;
	}
	for (i = 0; i < schema_count; i++) {
		if (sqlite3_exec(ref, schema_migrations[i], NULL, NULL,
		    NULL) != SQLITE_OK) {
			*err = xasprintf("%s: cannot make the reference"
			    " schema: %s", l->where, sqlite3_errmsg(ref));
			goto out;
		}
	}
	if (check_missing(l, ref, "SELECT type, name FROM sqlite_schema"
	    " WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
	    "SELECT 1 FROM sqlite_schema WHERE type = ?1 AND name = ?2",
	    NULL, err) == -1 ||
	    check_missing(l, ref, "SELECT m.name, c.name FROM sqlite_schema"
	    " AS m, pragma_table_xinfo(m.name) AS c WHERE m.type = 'table'"
	    " AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
	    " ORDER BY m.rowid, c.cid",
	    "SELECT 1 FROM pragma_table_xinfo(?1) WHERE name = ?2",
	    "column", err) == -1)
		goto out;
	r = 0;

out:
	sqlite3_close(ref);
	return r;
}

/* Anything but a URL ("scheme://...") is a path. */
static int
sq_claims(const char *where)
{
	size_t	 n;

	n = strspn(where, "abcdefghijklmnopqrstuvwxyz");
	return n == 0 || strncmp(where + n, "://", 3) != 0;
}

static const char *
sq_version(void)
{
	static char	 buf[48];

	(void)snprintf(buf, sizeof(buf), "SQLite %s", sqlite3_libversion());
	return buf;
}

static int
sq_open(struct ledger *l, const char *path, int readonly, char **err)
{
	struct sqlite_ledger	*q;
	int64_t			 version;
	char			*what;
	int			 flags, i;

	if (check_header(path, err) == -1)
		return -1;
	if (!readonly && create_private(path, err) == -1)
		return -1;

	l->be = q = xcalloc(1, sizeof(*q));
	flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
	    SQLITE_OPEN_NOMUTEX;
	/* No global allocation statistics (a mutex around every SQLite
	 * malloc and free; nothing reads them). Only takes effect before
	 * the library's first use, and is harmlessly refused after it. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sqlite3_open_v2(path, &q->db, flags, NULL) != SQLITE_OK) {
		*err = xasprintf("%s: %s", path, sq_db(l) != NULL ?
		    sqlite3_errmsg(sq_db(l)) : "out of memory");
		return -1;
	}
	if (sqlite3_busy_timeout(sq_db(l), 5000) != SQLITE_OK) {
		*err = xasprintf("%s: %s", path, sqlite3_errmsg(sq_db(l)));
		return -1;
	}

	/* Nothing may write before we know the file is ours. */
	if (readonly && check_identity_untouched(l, err) == -1)
		return -1;
	if (check_identity(l, &version, err) == -1)
		return -1;
	if (readonly && version < (int64_t)schema_count) {
		*err = xasprintf("%s: ledger schema version %lld is older than"
		    " this build (%zu); open it read-write once to migrate it",
		    path, (long long)version, schema_count);
		return -1;
	}
	if (!readonly && set_wal(l, err) == -1)
		return -1;
	if (exec_sql(l, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
	    "PRAGMA temp_store = MEMORY",
	    err) == -1)
		return -1;
	if (!readonly && migrate(l, err) == -1)
		return -1;
	if (check_objects(l, err) == -1)
		return -1;

	for (i = 0; i < S__COUNT; i++) {
		if (sqlite3_prepare_v3(sq_db(l), stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &q->stmt[i], NULL) != SQLITE_OK) {
			what = xasprintf("preparing \"%s\"", stmt_sql[i]);
			*err = open_error(l, what);
			free(what);
			return -1;
		}
	}
	return 0;
}

static void
sq_close(struct ledger *l)
{
	struct sqlite_ledger	*q = l->be;
	int			 i;

	if (q == NULL)
		return;
	for (i = 0; i < S__COUNT; i++)
		sqlite3_finalize(q->stmt[i]);
	if (q->db != NULL && sqlite3_close(q->db) != SQLITE_OK)
		log_warnx("ledger: %s: close: %s", l->where,
		    sqlite3_errmsg(q->db));
	free(q);
	l->be = NULL;
}

/* quick_check rather than integrity_check: it finds damaged pages and
 * records but skips matching every index entry to its row, which is what
 * makes integrity_check several times slower on a large ledger. */
static int
sq_quick_check(struct ledger *l, char **err)
{
	sqlite3_stmt	*st;
	const char	*row, *line, *nl;
	char		*first = NULL;
	size_t		 len;
	int		 rc;

	*err = NULL;
	if (sqlite3_prepare_v2(sq_db(l), "PRAGMA quick_check", -1, &st,
	    NULL) != SQLITE_OK) {
		set_error(l, sqlite3_extended_errcode(sq_db(l)),
		    sqlite3_errmsg(sq_db(l)));
		goto sqlfail;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row = (const char *)sqlite3_column_text(st, 0);
		if (first != NULL || row == NULL || strcmp(row, "ok") == 0)
			continue;
		/* A problem comes as "*** in database main ***\n<what>":
		 * the first line that says what. */
		line = row;
		if (strncmp(line, "*** ", 4) == 0 &&
		    (nl = strchr(line, '\n')) != NULL)
			line = nl + 1;
		len = strcspn(line, "\n");
		len = ledger_utf8_prefix(line, len, 200);
		first = xasprintf("%.*s", (int)len, line);
	}
	if (rc != SQLITE_DONE) {
		set_error(l, sqlite3_extended_errcode(sq_db(l)),
		    sqlite3_errmsg(sq_db(l)));
		sqlite3_finalize(st);
		free(first);
		goto sqlfail;
	}
	sqlite3_finalize(st);
	if (first == NULL)
		return 0;
	set_error(l, SQLITE_CORRUPT, first);
	free(first);

sqlfail:
	/* The caller says it (no damage callback, no log line here): this
	 * is a check, asked for. */
	if (!is_damage(l->errcode)) {
		*err = xasprintf("%s: quick_check: %s", l->where, l->errmsg);
		return -1;
	}
	if (l->damage == NULL)
		l->damage = xstrdup(l->errmsg);
	*err = xasprintf("ledger %s is damaged: %s", l->where, l->errmsg);
	return -1;
}

static int
sq_add(struct ledger *l, const char *order_id, const char *user_key,
    const char *sku, const char *ref, int64_t now,
    enum ledger_add_result *res)
{
	sqlite3_stmt	*st;
	const char	*known;
	int		 rc, ok = 0;

	if (write_begin(l) == -1)
		return -1;

	st = sq_stmt(l)[S_ADD];
	if (bind_text(l, st, 1, order_id, 0) == -1 ||
	    bind_text(l, st, 2, user_key, 0) == -1 ||
	    bind_text_null(l, st, 3, sku, 0) == -1 ||
	    bind_text(l, st, 4, ref, 0) == -1 ||
	    bind_int64(l, st, 5, now) == -1) {
		stmt_done(st);
		goto out;
	}
	if (step_done(l, S_ADD, "add") == -1)
		goto out;
	if (sqlite3_changes(sq_db(l)) == 1) {
		*res = LEDGER_ADDED;
		ok = 1;
		goto out;
	}

	st = sq_stmt(l)[S_USER_KEY];
	if (bind_text(l, st, 1, order_id, 0) == -1) {
		stmt_done(st);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		if (rc == SQLITE_DONE)
			ledger_own_error(l, "add: order %s neither inserted nor"
			    " found", order_id);
		else
			sql_error(l, "add");
		stmt_done(st);
		goto out;
	}
	known = (const char *)sqlite3_column_text(st, 0);
	*res = known != NULL && strcmp(known, user_key) == 0 ?
	    LEDGER_KNOWN : LEDGER_CONFLICT;
	stmt_done(st);
	ok = 1;

out:
	return write_end(l, ok);
}

static int
sq_get(struct ledger *l, const char *order_id, struct order *out)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_GET];
	int		 rc, found = 0;

	if (bind_text(l, st, 1, order_id, 0) == -1) {
		stmt_done(st);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (row_order(l, st, out) == -1) {
			stmt_done(st);
			return -1;
		}
		found = 1;
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		sql_error(l, "get");
		stmt_done(st);
		return -1;
	}
	stmt_done(st);
	return found;
}

/* fn must not call ledger_foreach() itself (the statement is in use). */
static int
sq_foreach(struct ledger *l, int state,
    int (*fn)(const struct order *, void *), void *arg)
{
	sqlite3_stmt	*st;
	struct order	*o;
	int		 rc, r = 0;

	if (state < 0)
		st = sq_stmt(l)[S_FOREACH_ALL];
	else {
		st = sq_stmt(l)[S_FOREACH_STATE];
		if (bind_text(l, st, 1, order_state_name(state), 0) == -1) {
			stmt_done(st);
			return -1;
		}
	}
	o = xmalloc(sizeof(*o));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (row_order(l, st, o) == -1) {
			r = -1;
			break;
		}
		if ((r = fn(o, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		sql_error(l, "foreach");
		r = -1;
	}
	stmt_done(st);
	free(o);
	return r;
}

static int
sq_claim_due(struct ledger *l, int64_t now, int64_t lease_ms,
    struct order *out, int max)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_CLAIM];
	int		 prio, rc, n = 0, ok = 1;

	if (write_begin(l) == -1)
		return -1;
	for (prio = 0; prio < 2 && n < max && ok; prio++) {
		if (bind_int64(l, st, 1, now + lease_ms) == -1 ||
		    bind_int64(l, st, 2, prio) == -1 ||
		    bind_int64(l, st, 3, now) == -1 ||
		    bind_int64(l, st, 4, max - n) == -1) {
			ok = 0;
			break;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (n >= max || row_order(l, st, &out[n]) == -1) {
				if (n >= max)
					ledger_own_error(l, "claim returned"
					    " more rows than asked");
				ok = 0;
				break;
			}
			n++;
		}
		if (ok && rc != SQLITE_DONE) {
			sql_error(l, "claim");
			ok = 0;
		}
		stmt_done(st);
	}
	if (!ok)
		stmt_done(st);
	if (write_end(l, ok) == -1)
		return -1;
	return n;
}

static int
sq_next_due(struct ledger *l, int64_t *at)
{
	return step_int64(l, S_NEXT_DUE, "next due", at);
}

/* Inserts the event row for an applied update and stores its payload,
 * built from the order as it is now. Already emitted: nothing is written.
 * *inserted says which. */
static int
add_event(struct ledger *l, const struct order *o, enum event_type ev,
    int refund_after_grant, int64_t now, int *inserted)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_EVENT_ADD];
	char		*key, *payload;
	int64_t		 id = 0;
	int		 rc;

	*inserted = 0;
	key = ledger_event_key(o->order_id, ev);
	if (bind_text(l, st, 1, key, 0) == -1 ||
	    bind_text(l, st, 2, order_event_name(ev), 0) == -1 ||
	    bind_text(l, st, 3, o->order_id, 0) == -1 ||
	    bind_int64(l, st, 4, now) == -1) {
		stmt_done(st);
		free(key);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		*inserted = 1;
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		sql_error(l, "event");
		stmt_done(st);
		free(key);
		return -1;
	}
	stmt_done(st);
	if (!*inserted) {
		log_debug("ledger: event %s exists; not written again", key);
		free(key);
		return 0;
	}
	free(key);

	payload = json_out_event(id, ev, o, refund_after_grant, now);
	st = sq_stmt(l)[S_EVENT_PAYLOAD];
	if (bind_text(l, st, 1, payload, 0) == -1 ||
	    bind_int64(l, st, 2, id) == -1) {
		stmt_done(st);
		free(payload);
		return -1;
	}
	rc = step_done(l, S_EVENT_PAYLOAD, "event payload");
	free(payload);
	return rc;
}

static int
sq_apply(struct ledger *l, const struct order *before,
    const struct ledger_update *u, int64_t now)
{
	sqlite3_stmt	*st;
	struct order	*after;
	const char	*status;
	int		 rc, inserted = 0, ok = 0;

	status = u->status_seen && u->toss_status != NULL ? u->toss_status : "";
	after = xmalloc(sizeof(*after));
	if (write_begin(l) == -1) {
		free(after);
		return -1;
	}

	st = sq_stmt(l)[S_APPLY];
	if (bind_text(l, st, 1, order_state_name(u->new_state), 0) == -1 ||
	    bind_int64(l, st, 2, u->status_seen != 0) == -1 ||
	    bind_text_null(l, st, 3, status, STATUS_MAX) == -1 ||
	    bind_text_null(l, st, 4, u->reason, REASON_MAX) == -1 ||
	    bind_text_null(l, st, 5, u->determined_at, DETERMINED_MAX - 1) == -1 ||
	    bind_text_null(l, st, 6, u->sku, SKU_MAX) == -1 ||
	    bind_int64(l, st, 7, u->count_poll != 0) == -1 ||
	    bind_int64(l, st, 8, u->count_error != 0) == -1 ||
	    bind_int64(l, st, 9, u->granted_at) == -1 ||
	    bind_int64(l, st, 10, u->next_poll_at) == -1 ||
	    bind_int64(l, st, 11, now) == -1 ||
	    bind_text(l, st, 12, before->order_id, 0) == -1 ||
	    bind_int64(l, st, 13, u->late_answers) == -1) {
		stmt_done(st);
		goto out;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (row_order(l, st, after) == -1) {
			stmt_done(st);
			goto out;
		}
		rc = sqlite3_step(st);
		if (rc != SQLITE_DONE) {
			sql_error(l, "apply");
			stmt_done(st);
			goto out;
		}
		stmt_done(st);
	} else {
		if (rc == SQLITE_DONE)
			ledger_own_error(l, "apply: no order %s",
			    before->order_id);
		else
			sql_error(l, "apply");
		stmt_done(st);
		goto out;
	}

	if (u->status_seen && strcmp(before->toss_status, after->toss_status) != 0) {
		st = sq_stmt(l)[S_TRANSITION];
		if (bind_text(l, st, 1, before->order_id, 0) == -1 ||
		    bind_int64(l, st, 2, now) == -1 ||
		    bind_text_null(l, st, 3, before->toss_status, 0) == -1 ||
		    bind_text(l, st, 4, after->toss_status, 0) == -1) {
			stmt_done(st);
			goto out;
		}
		if (step_done(l, S_TRANSITION, "transition") == -1)
			goto out;
	}

	if (u->event != EV_NONE && add_event(l, after, u->event,
	    u->refund_after_grant, now, &inserted) == -1)
		goto out;
	/* A contradicted sku is counted once per order: with its event. */
	if (u->sku_mismatch && inserted) {
		st = sq_stmt(l)[S_COUNTER_ADD];
		if (bind_text(l, st, 1, "sku_mismatch", 0) == -1) {
			stmt_done(st);
			goto out;
		}
		if (step_done(l, S_COUNTER_ADD, "counter") == -1)
			goto out;
	}
	ok = 1;

out:
	free(after);
	return write_end(l, ok);
}

/* Runs an UPDATE keyed by order id or state in its own write; returns the
 * number of rows changed or -1. */
static int
update_one(struct ledger *l, enum stmt_id id, const char *what,
    const char *key, int64_t v)
{
	sqlite3_stmt	*st = sq_stmt(l)[id];
	int		 n = 0, ok = 0;

	if (write_begin(l) == -1)
		return -1;
	if (bind_text(l, st, 1, key, 0) == -1 || bind_int64(l, st, 2, v) == -1)
		stmt_done(st);
	else if (step_done(l, id, what) == 0) {
		n = sqlite3_changes(sq_db(l));
		ok = 1;
	}
	if (write_end(l, ok) == -1)
		return -1;
	return n;
}

/* One writer: the order is as claimed (no check, as in sq_apply). */
static int
sq_reschedule(struct ledger *l, const struct order *before, int64_t at)
{
	return update_one(l, S_RESCHEDULE, "reschedule", before->order_id,
	    at) == -1 ? -1 : 0;
}

static int
sq_recheck(struct ledger *l, const char *order_id, int64_t now)
{
	return update_one(l, S_RECHECK, "recheck", order_id, now);
}

static int
sq_recheck_state(struct ledger *l, enum order_state state, int64_t now)
{
	return update_one(l, S_RECHECK_STATE, "recheck", order_state_name(state),
	    now);
}

/* limit < 0 means no limit. fn returning nonzero stops the walk; the
 * event it was given counts as visited. */
static int
sq_events(struct ledger *l, int64_t after, int limit,
    int (*fn)(int64_t, const char *, void *), void *arg)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_EVENTS];
	const char	*payload;
	int		 rc, n = 0;

	if (bind_int64(l, st, 1, after) == -1 ||
	    bind_int64(l, st, 2, limit) == -1) {
		stmt_done(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		payload = (const char *)sqlite3_column_text(st, 1);
		n++;
		if (fn(sqlite3_column_int64(st, 0), payload != NULL ?
		    payload : "", arg) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE) {
		sql_error(l, "events");
		stmt_done(st);
		return -1;
	}
	stmt_done(st);
	return n;
}

static int
sq_cursor_get(struct ledger *l, const char *sink, int64_t *id)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_CURSOR_GET];
	int		 r;

	*id = 0;
	if (bind_text(l, st, 1, sink, 0) == -1) {
		stmt_done(st);
		return -1;
	}
	r = step_int64(l, S_CURSOR_GET, "cursor", id);
	return r == -1 ? -1 : 0;
}

static int
sq_cursor_set(struct ledger *l, const char *sink, int64_t id)
{
	return update_one(l, S_CURSOR_SET, "cursor", sink, id) == -1 ? -1 : 0;
}

static int
sq_cursors(struct ledger *l, int (*fn)(const char *, int64_t, void *),
    void *arg)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_CURSORS];
	const char	*name;
	int		 rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		if ((r = fn(name != NULL ? name : "",
		    sqlite3_column_int64(st, 1), arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		sql_error(l, "cursors");
		r = -1;
	}
	stmt_done(st);
	return r;
}

static void
row_sink(sqlite3_stmt *st, struct ledger_sink *k)
{
	col_text(st, 0, k->name, sizeof(k->name));
	k->delivered_id = sqlite3_column_int64(st, 1);
	k->replays = sqlite3_column_int64(st, 2);
	col_text(st, 3, k->state, sizeof(k->state));
	col_text(st, 4, k->last_error, sizeof(k->last_error));
	k->error_at = sqlite3_column_int64(st, 5);
}

static int
sq_sink_get(struct ledger *l, const char *sink, struct ledger_sink *k)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_SINK_GET];
	int		 rc, found = 0;

	memset(k, 0, sizeof(*k));
	util_strlcpy(k->name, sink, sizeof(k->name));
	util_strlcpy(k->state, "ok", sizeof(k->state));
	if (bind_text(l, st, 1, sink, 0) == -1) {
		stmt_done(st);
		return -1;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_sink(st, k);
		found = 1;
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		sql_error(l, "sink");
		stmt_done(st);
		return -1;
	}
	stmt_done(st);
	return found;
}

static int
sq_sinks(struct ledger *l, int (*fn)(const struct ledger_sink *, void *),
    void *arg)
{
	sqlite3_stmt		*st = sq_stmt(l)[S_SINKS];
	struct ledger_sink	 k;
	int			 rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_sink(st, &k);
		if ((r = fn(&k, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		sql_error(l, "sinks");
		r = -1;
	}
	stmt_done(st);
	return r;
}

static int
sq_cursor_advance(struct ledger *l, const char *sink, int64_t replays,
    int64_t id)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_CURSOR_ADVANCE];
	int		 n = 0, ok = 0;

	if (write_begin(l) == -1)
		return -1;
	if (bind_text(l, st, 1, sink, 0) == -1 ||
	    bind_int64(l, st, 2, replays) == -1 ||
	    bind_int64(l, st, 3, id) == -1)
		stmt_done(st);
	else if (step_done(l, S_CURSOR_ADVANCE, "cursor") == 0) {
		n = sqlite3_changes(sq_db(l));
		ok = 1;
	}
	if (write_end(l, ok) == -1)
		return -1;
	return n == 1 ? 0 : 1;
}

static int
sq_sink_state(struct ledger *l, const char *sink, const char *state,
    const char *error, int64_t now)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_SINK_STATE];
	int		 ok = 0;

	if (write_begin(l) == -1)
		return -1;
	if (bind_text(l, st, 1, sink, 0) == -1 ||
	    bind_text(l, st, 2, state, 0) == -1 ||
	    bind_text_null(l, st, 3, error, LEDGER_SINK_ERR_MAX - 1) == -1 ||
	    (error != NULL ? bind_int64(l, st, 4, now) :
	    bind_text(l, st, 4, NULL, 0)) == -1)
		stmt_done(st);
	else if (step_done(l, S_SINK_STATE, "sink state") == 0)
		ok = 1;
	return write_end(l, ok);
}

static enum ledger_replay_result
sq_replay(struct ledger *l, const char *sink, int64_t to_id,
    const char *user, int64_t now, int64_t *was)
{
	sqlite3_stmt		*st;
	struct ledger_sink	 k;
	enum ledger_replay_result res = LEDGER_REPLAY_ERROR;
	int64_t			 last = 0;
	int			 ok = 0;

	*was = 0;
	if (write_begin(l) == -1)
		return LEDGER_REPLAY_ERROR;
	/* Read and move in one write transaction: nothing can come between. */
	if (sq_sink_get(l, sink, &k) == -1 ||
	    step_int64(l, S_LAST_EVENT, "last event", &last) == -1)
		goto end;
	*was = k.delivered_id;
	/* to_id + 1 is the first event sent again: it must exist. */
	if (to_id >= last) {
		res = LEDGER_REPLAY_PAST_END;
		ok = 1;
		goto end;
	}
	if (to_id > k.delivered_id) {
		res = LEDGER_REPLAY_AHEAD;
		ok = 1;
		goto end;
	}
	st = sq_stmt(l)[S_REPLAY_MOVE];
	if (bind_text(l, st, 1, sink, 0) == -1 ||
	    bind_int64(l, st, 2, to_id) == -1) {
		stmt_done(st);
		goto end;
	}
	if (step_done(l, S_REPLAY_MOVE, "replay") == -1)
		goto end;
	st = sq_stmt(l)[S_REPLAY_LOG];
	if (bind_text(l, st, 1, sink, 0) == -1 ||
	    bind_int64(l, st, 2, now) == -1 ||
	    bind_text(l, st, 3, user, 0) == -1 ||
	    bind_int64(l, st, 4, k.delivered_id) == -1 ||
	    bind_int64(l, st, 5, to_id) == -1) {
		stmt_done(st);
		goto end;
	}
	if (step_done(l, S_REPLAY_LOG, "replay log") == -1)
		goto end;
	res = LEDGER_REPLAY_MOVED;
	ok = 1;
end:
	if (write_end(l, ok) == -1)
		return LEDGER_REPLAY_ERROR;
	return res;
}

static int
sq_last_replay_user(struct ledger *l, const char *sink, char *buf,
    size_t size)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_LAST_REPLAY];
	int		 rc, found = 0;

	buf[0] = '\0';
	if (bind_text(l, st, 1, sink, 0) == -1) {
		stmt_done(st);
		return -1;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		col_text(st, 0, buf, size);
		found = 1;
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		sql_error(l, "replays");
		stmt_done(st);
		return -1;
	}
	stmt_done(st);
	return found;
}

static int
sq_event_since(struct ledger *l, int64_t since_ms, int64_t *id)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_EVENT_SINCE];

	*id = 0;
	if (bind_int64(l, st, 1, since_ms) == -1) {
		stmt_done(st);
		return -1;
	}
	return step_int64(l, S_EVENT_SINCE, "events since", id);
}

static int
sq_stats(struct ledger *l, int64_t now, struct ledger_stats *s)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_STATE_COUNTS];
	enum order_state state;
	const char	*type;
	int		 rc, i, own_txn = 0;

	memset(s, 0, sizeof(*s));
	/* One read transaction, so the figures agree with each other. */
	if (sqlite3_get_autocommit(sq_db(l))) {
		if (sqlite3_exec(sq_db(l), "BEGIN", NULL, NULL,
		    NULL) != SQLITE_OK) {
			sql_error(l, "stats");
			return -1;
		}
		own_txn = 1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (order_state_parse((const char *)sqlite3_column_text(st, 0),
		    &state) == 0)
			s->orders[state] = sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE) {
		sql_error(l, "stats");
		stmt_done(st);
		goto fail;
	}
	stmt_done(st);

	st = sq_stmt(l)[S_EVENT_TYPE_COUNTS];
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		type = (const char *)sqlite3_column_text(st, 0);
		for (i = EV_NONE + 1; i < EV__COUNT; i++)
			if (type != NULL && strcmp(type,
			    order_event_name((enum event_type)i)) == 0)
				s->events_by_type[i] = sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE) {
		sql_error(l, "stats");
		stmt_done(st);
		goto fail;
	}
	stmt_done(st);

	if (step_int64(l, S_EVENT_COUNT, "stats", &s->events) == -1 ||
	    step_int64(l, S_LAST_EVENT, "stats", &s->last_event_id) == -1 ||
	    step_int64(l, S_OLDEST_PENDING, "stats", &s->oldest_pending_ms) == -1)
		goto fail;
	if (bind_int64(l, sq_stmt(l)[S_DUE_COUNT], 1, now) == -1) {
		stmt_done(sq_stmt(l)[S_DUE_COUNT]);
		goto fail;
	}
	if (step_int64(l, S_DUE_COUNT, "stats", &s->due) == -1)
		goto fail;
	if (bind_text(l, sq_stmt(l)[S_COUNTER_GET], 1, "sku_mismatch",
	    0) == -1) {
		stmt_done(sq_stmt(l)[S_COUNTER_GET]);
		goto fail;
	}
	if (step_int64(l, S_COUNTER_GET, "stats", &s->sku_mismatches) == -1)
		goto fail;
	if (own_txn)
		sqlite3_exec(sq_db(l), "COMMIT", NULL, NULL, NULL);
	return 0;

fail:
	if (own_txn)
		sqlite3_exec(sq_db(l), "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/* ---- what the console asks ---------------------------------------------- */

/* Steps st (bound) and calls fn for each order row; see ledger_search. */
static int
orders_each(struct ledger *l, sqlite3_stmt *st, const char *what,
    int (*fn)(const struct order *, void *), void *arg)
{
	struct order	*o;
	int		 rc, r = 0;

	o = xmalloc(sizeof(*o));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (row_order(l, st, o) == -1) {
			r = -1;
			break;
		}
		if ((r = fn(o, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		sql_error(l, what);
		r = -1;
	}
	stmt_done(st);
	free(o);
	return r;
}

static int
sq_search(struct ledger *l, const char *q, int limit,
    int (*fn)(const struct order *, void *), void *arg)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_SEARCH];

	if (bind_text(l, st, 1, q, 0) == -1 ||
	    bind_int64(l, st, 2, limit) == -1) {
		stmt_done(st);
		return -1;
	}
	return orders_each(l, st, "search", fn, arg);
}

static int
sq_anomalies(struct ledger *l, int limit,
    int (*fn)(const struct order *, void *), void *arg)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_ANOMALIES];

	if (bind_int64(l, st, 1, limit) == -1) {
		stmt_done(st);
		return -1;
	}
	return orders_each(l, st, "anomalies", fn, arg);
}

static int
sq_transitions(struct ledger *l, const char *order_id,
    int (*fn)(int64_t at, const char *from, const char *to, void *),
    void *arg)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_TRANSITIONS];
	const char	*from, *to;
	int		 rc, r = 0;

	if (bind_text(l, st, 1, order_id, 0) == -1) {
		stmt_done(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		from = (const char *)sqlite3_column_text(st, 1);
		to = (const char *)sqlite3_column_text(st, 2);
		if ((r = fn(sqlite3_column_int64(st, 0), from,
		    to != NULL ? to : "", arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		sql_error(l, "transitions");
		r = -1;
	}
	stmt_done(st);
	return r;
}

static int
sq_order_events(struct ledger *l, const char *order_id,
    int (*fn)(int64_t id, const char *payload, void *), void *arg)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_ORDER_EVENTS];
	const char	*payload;
	int		 rc, r = 0;

	if (bind_text(l, st, 1, order_id, 0) == -1) {
		stmt_done(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		payload = (const char *)sqlite3_column_text(st, 1);
		if ((r = fn(sqlite3_column_int64(st, 0), payload != NULL ?
		    payload : "", arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		sql_error(l, "order events");
		r = -1;
	}
	stmt_done(st);
	return r;
}

static int
sq_held(struct ledger *l,
    int (*fn)(const struct ledger_held *, void *), void *arg)
{
	sqlite3_stmt		*st = sq_stmt(l)[S_HELD];
	struct ledger_held	 h;
	int			 rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&h, 0, sizeof(h));
		col_text(st, 0, h.toss_status, sizeof(h.toss_status));
		h.count = sqlite3_column_int64(st, 1);
		h.first_seen = col_time(st, 2);
		h.last_seen = col_time(st, 3);
		col_text(st, 4, h.example, sizeof(h.example));
		if ((r = fn(&h, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		sql_error(l, "held");
		r = -1;
	}
	stmt_done(st);
	return r;
}

static int
sq_history(struct ledger *l, int64_t since, int64_t bucket_ms,
    int64_t *counts, int nbuckets)
{
	sqlite3_stmt	*st = sq_stmt(l)[S_HISTORY];
	int64_t		 b;
	int		 rc;

	memset(counts, 0, sizeof(*counts) * (size_t)nbuckets);
	if (bind_int64(l, st, 1, since) == -1 ||
	    bind_int64(l, st, 2, bucket_ms) == -1) {
		stmt_done(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		b = sqlite3_column_int64(st, 0);
		if (b >= 0 && b < nbuckets)
			counts[b] = sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE) {
		sql_error(l, "history");
		stmt_done(st);
		return -1;
	}
	stmt_done(st);
	return 0;
}

/* ---- copying a ledger ---------------------------------------------------- */

/* How each table's rows come out in a stable order: as written. */
static const char *const sq_dump_order[LT__COUNT] = {
	[LT_ORDERS] = "order_id",
	[LT_EVENTS] = "id",
	[LT_TRANSITIONS] = "rowid",
	[LT_SINKS] = "name",
	[LT_REPLAYS] = "rowid",
	[LT_COUNTERS] = "name",
};

/* A one-off statement (copying runs once per process: none is kept). */
static sqlite3_stmt *
sq_prepare_once(struct ledger *l, const char *sql, const char *what)
{
	sqlite3_stmt	*st = NULL;

	if (sqlite3_prepare_v2(sq_db(l), sql, -1, &st, NULL) != SQLITE_OK) {
		sql_error(l, what);
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

static int
sq_dump(struct ledger *l, enum ledger_table t,
    int (*fn)(const struct ledger_row *, void *), void *arg)
{
	struct ledger_row	 row;
	sqlite3_stmt		*st;
	char			*sql;
	int			 rc, i, r = 0;

	sql = xasprintf("SELECT %s FROM %s ORDER BY %s", ledger_table_cols(t),
	    ledger_table_name(t), sq_dump_order[t]);
	st = sq_prepare_once(l, sql, ledger_table_name(t));
	free(sql);
	if (st == NULL)
		return -1;
	row.n = ledger_table_ncols(t);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (i = 0; i < row.n; i++)
			row.v[i] = (const char *)sqlite3_column_text(st, i);
		if ((r = fn(&row, arg)) != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE) {
		sql_error(l, ledger_table_name(t));
		r = -1;
	}
	sqlite3_finalize(st);
	return r;
}

static int
sq_count(struct ledger *l, enum ledger_table t, int64_t *n)
{
	sqlite3_stmt	*st;
	char		*sql;
	int		 rc;

	sql = xasprintf("SELECT count(*) FROM %s", ledger_table_name(t));
	st = sq_prepare_once(l, sql, ledger_table_name(t));
	free(sql);
	if (st == NULL)
		return -1;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*n = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE) {
		sql_error(l, ledger_table_name(t));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

/* STRICT tables take an integer's text for an INTEGER column. */
static int
sq_load(struct ledger *l, enum ledger_table t, const struct ledger_row *row)
{
	sqlite3_stmt	*st;
	char		*sql;
	int		 i, rc;

	sql = xasprintf("INSERT INTO %s (%s) VALUES (?%s)%s",
	    ledger_table_name(t), ledger_table_cols(t),
	    &",?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?"[2 * (LEDGER_COLS_MAX -
	    row->n)], ledger_table_on_conflict(t));
	st = sq_prepare_once(l, sql, ledger_table_name(t));
	free(sql);
	if (st == NULL)
		return -1;
	for (i = 0; i < row->n; i++) {
		rc = row->v[i] == NULL ? sqlite3_bind_null(st, i + 1) :
		    sqlite3_bind_text(st, i + 1, row->v[i], -1,
		    SQLITE_STATIC);
		if (rc != SQLITE_OK) {
			sql_error(l, ledger_table_name(t));
			sqlite3_finalize(st);
			return -1;
		}
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		sql_error(l, ledger_table_name(t));
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

const struct ledger_ops ledger_sqlite_ops = {
	.own_errcode = SQLITE_ERROR,
	.claims = sq_claims,
	.version = sq_version,
	.open = sq_open,
	.close = sq_close,
	.errmsg = sq_errmsg,
	.quick_check = sq_quick_check,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.add = sq_add,
	.get = sq_get,
	.foreach = sq_foreach,
	.claim_due = sq_claim_due,
	.next_due = sq_next_due,
	.apply = sq_apply,
	.reschedule = sq_reschedule,
	.recheck = sq_recheck,
	.recheck_state = sq_recheck_state,
	.events = sq_events,
	.cursor_get = sq_cursor_get,
	.cursor_set = sq_cursor_set,
	.cursors = sq_cursors,
	.sink_get = sq_sink_get,
	.sinks = sq_sinks,
	.cursor_advance = sq_cursor_advance,
	.sink_state = sq_sink_state,
	.replay = sq_replay,
	.last_replay_user = sq_last_replay_user,
	.event_since = sq_event_since,
	.stats = sq_stats,
	.search = sq_search,
	.anomalies = sq_anomalies,
	.transitions = sq_transitions,
	.order_events = sq_order_events,
	.held = sq_held,
	.history = sq_history,
	.dump = sq_dump,
	.load = sq_load,
	.count = sq_count,
};
