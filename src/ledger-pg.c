/* The ledger's PostgreSQL backend (ledger_pg_ops), through libpq: one
 * connection with bounded connect and statement timeouts (and a bound of
 * its own on every wait for an answer), the schema in schema/pg/ checked
 * and migrated at open, the same statements as the SQLite backend kept
 * prepared, and event ids gap-free in commit order. Several instances may
 * share the ledger: the leader's writes are fenced by the leader row's
 * epoch (ledger_set_fence()), and results are written only to rows still
 * as claimed. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "json-out.h"
#include "ledger-backend.h"
#include "log.h"
#include "schema.h"
#include "util.h"

/* Bounds on every wait for the database: the daemon's loop waits with it. */
#define PG_CONNECT_TIMEOUT	"5"		/* seconds */
#define PG_STATEMENT_TIMEOUT	5000		/* ms */
#define PG_LOCK_TIMEOUT		3000		/* ms */
/* An open transaction left idle this long (a frozen instance's, with its
 * share lock on the leader row) is ended by the server. */
#define PG_IDLE_TX_TIMEOUT	5000		/* ms */
/* The client's own bound on waiting for an answer: the server's statement
 * timeout ends any statement first, unless the server or the path to it
 * stopped answering; then the connection is dropped. */
#define PG_ANSWER_MS		(PG_STATEMENT_TIMEOUT + 1000)

/* After a failed reconnection, the calls fail at once for this long
 * (each attempt can wait the connect timeout). */
#define PG_RETRY_MS		5000

/* ledger_errcode() values: libpq has no numeric codes. */
#define PG_ERR_SQL		1	/* the server refused a statement */
#define PG_ERR_CONN		2	/* no usable connection */
#define PG_ERR_FENCED		3	/* the leader epoch passed the fence */

#define ORDER_COLS \
	"order_id, user_key, sku, ref, state, toss_status, reason, " \
	"determined_at, polls, errors, added_at, updated_at, granted_at, " \
	"next_poll_at, intake_sku, sku_confirmed, late_answers"

#define SINK_COLS \
	"name, delivered_id, replays, state, coalesce(last_error, ''), " \
	"coalesce(error_at, 0)"

/* Privileges a table needs (check_privileges()). */
#define PRIV_SELECT	0x1
#define PRIV_INSERT	0x2
#define PRIV_UPDATE	0x4
#define PRIV_ALL	(PRIV_SELECT | PRIV_INSERT | PRIV_UPDATE)

/* The tables a ledger has (besides ledger_meta), from the schema version
 * that made each; checked at open, with what the daemon does to them
 * (the leader row is read FOR SHARE and bumped, never inserted). */
static const struct {
	const char	*name;
	int64_t		 since;
	int		 privs;
} pg_tables[] = {
	{ "orders", 1, PRIV_ALL },
	{ "events", 1, PRIV_ALL },
	{ "event_counter", 1, PRIV_ALL },
	{ "transitions", 1, PRIV_ALL },
	{ "sinks", 1, PRIV_ALL },
	{ "replays", 1, PRIV_ALL },
	{ "state_counts", 1, PRIV_ALL },
	{ "event_counts", 1, PRIV_ALL },
	{ "counters", 1, PRIV_ALL },
	{ "leader", 2, PRIV_SELECT | PRIV_UPDATE }
};

enum pg_stmt {
	P_ADD,
	P_USER_KEY,
	P_GET,
	P_FOREACH_ALL,
	P_FOREACH_STATE,
	P_CLAIM,
	P_NEXT_DUE,
	P_APPLY,
	P_TRANSITION,
	P_EVENT_KNOWN,
	P_EVENT_IDS,
	P_EVENT_ADD,
	P_RESCHEDULE,
	P_RECHECK,
	P_RECHECK_STATE,
	P_EVENTS,
	P_CURSOR_GET,
	P_CURSOR_SET,
	P_CURSORS,
	P_CURSOR_ADVANCE,
	P_SINK_GET,
	P_SINK_LOCK,
	P_SINKS,
	P_SINK_STATE,
	P_REPLAY_MOVE,
	P_REPLAY_LOG,
	P_LAST_REPLAY,
	P_EVENT_SINCE,
	P_STATE_COUNTS,
	P_EVENT_COUNT,
	P_EVENT_TYPE_COUNTS,
	P_LAST_EVENT,
	P_OLDEST_PENDING,
	P_DUE_COUNT,
	P_COUNTER_ADD,
	P_COUNTER_GET,
	P_SEARCH,
	P_TRANSITIONS,
	P_ORDER_EVENTS,
	P_HELD,
	P_ANOMALIES,
	P_HISTORY,
	P_FENCE,
	P__COUNT
};

/* Every statement the backend runs after open, prepared once per
 * connection (named "r<index>"). Integer parameters are cast: libpq sends
 * text, and an untyped one next to a literal would be taken as int4. */
static const char *const pg_sql[P__COUNT] = {
	[P_ADD] =
	    "INSERT INTO orders (order_id, user_key, sku, intake_sku, ref,"
	    " state, added_at, updated_at, next_poll_at)"
	    " VALUES ($1, $2, $3, $3, $4, 'pending', $5::bigint, $5::bigint,"
	    " $5::bigint) ON CONFLICT (order_id) DO NOTHING",
	[P_USER_KEY] = "SELECT user_key FROM orders WHERE order_id = $1",
	[P_GET] = "SELECT " ORDER_COLS " FROM orders WHERE order_id = $1",
	[P_FOREACH_ALL] =
	    "SELECT " ORDER_COLS " FROM orders ORDER BY added_at, order_id",
	[P_FOREACH_STATE] =
	    "SELECT " ORDER_COLS " FROM orders WHERE state = $1"
	    " ORDER BY added_at, order_id",
	/* Rows another transaction holds are skipped, not waited for. */
	[P_CLAIM] =
	    "UPDATE orders SET next_poll_at = $1::bigint WHERE order_id IN"
	    " (SELECT order_id FROM orders WHERE prio = $2::smallint"
	    " AND next_poll_at <= $3::bigint ORDER BY next_poll_at"
	    " LIMIT $4::bigint FOR UPDATE SKIP LOCKED)"
	    " RETURNING " ORDER_COLS,
	[P_NEXT_DUE] =
	    "SELECT LEAST("
	    "(SELECT MIN(next_poll_at) FROM orders"
	    " WHERE prio = 0 AND next_poll_at IS NOT NULL),"
	    "(SELECT MIN(next_poll_at) FROM orders"
	    " WHERE prio = 1 AND next_poll_at IS NOT NULL))",
	[P_APPLY] =
	    "UPDATE orders SET state = $1,"
	    " toss_status = CASE WHEN $2::boolean THEN $3 ELSE toss_status END,"
	    " reason = CASE WHEN $2::boolean THEN $4 ELSE reason END,"
	    " determined_at = CASE WHEN $2::boolean THEN $5"
	    " ELSE determined_at END,"
	    " sku = coalesce($6::text, sku),"
	    " sku_confirmed = CASE WHEN $6::text IS NOT NULL THEN 1"
	    " ELSE sku_confirmed END,"
	    " late_answers = $13::bigint,"
	    " polls = polls + $7::bigint,"
	    " errors = errors + $8::bigint,"
	    " granted_at = CASE WHEN $9::bigint > 0 THEN $9::bigint"
	    " ELSE granted_at END,"
	    " next_poll_at = nullif($10::bigint, 0),"
	    " updated_at = $11::bigint"
	    " WHERE order_id = $12 AND state = $14"
	    " AND coalesce(next_poll_at, 0) = $15::bigint"
	    " RETURNING " ORDER_COLS,
	[P_TRANSITION] =
	    "INSERT INTO transitions (order_id, at, from_status, to_status)"
	    " VALUES ($1, $2::bigint, $3, $4)",
	[P_EVENT_KNOWN] = "SELECT 1 FROM events WHERE key = $1",
	/* The last write of a transaction that adds events: see
	 * schema/pg/001-ledger.sql. */
	[P_EVENT_IDS] =
	    "UPDATE event_counter SET last = last + $1::bigint RETURNING last",
	[P_EVENT_ADD] =
	    "INSERT INTO events (id, key, type, order_id, payload, created_at)"
	    " VALUES ($1::bigint, $2, $3, $4, $5, $6::bigint)",
	[P_RESCHEDULE] =
	    "UPDATE orders SET next_poll_at = nullif($2::bigint, 0)"
	    " WHERE order_id = $1 AND state = $3"
	    " AND coalesce(next_poll_at, 0) = $4::bigint",
	[P_RECHECK] =
	    "UPDATE orders SET next_poll_at = $2::bigint WHERE order_id = $1",
	[P_RECHECK_STATE] =
	    "UPDATE orders SET next_poll_at = $2::bigint WHERE state = $1",
	/* A NULL limit is no limit. */
	[P_EVENTS] =
	    "SELECT id, payload FROM events WHERE id > $1::bigint ORDER BY id"
	    " LIMIT $2::bigint",
	[P_CURSOR_GET] = "SELECT delivered_id FROM sinks WHERE name = $1",
	[P_CURSOR_SET] =
	    "INSERT INTO sinks (name, delivered_id) VALUES ($1, $2::bigint)"
	    " ON CONFLICT (name) DO UPDATE SET"
	    " delivered_id = excluded.delivered_id",
	[P_CURSORS] = "SELECT name, delivered_id FROM sinks ORDER BY name",
	/* Only while no replay moved the cursor since the sink read it. */
	[P_CURSOR_ADVANCE] =
	    "INSERT INTO sinks (name, delivered_id) VALUES ($1, $3::bigint)"
	    " ON CONFLICT (name) DO UPDATE SET"
	    " delivered_id = excluded.delivered_id"
	    " WHERE sinks.replays = $2::bigint",
	[P_SINK_GET] = "SELECT " SINK_COLS " FROM sinks WHERE name = $1",
	[P_SINK_LOCK] =
	    "SELECT " SINK_COLS " FROM sinks WHERE name = $1 FOR UPDATE",
	[P_SINKS] = "SELECT " SINK_COLS " FROM sinks ORDER BY name",
	[P_SINK_STATE] =
	    "INSERT INTO sinks (name, state, last_error, error_at)"
	    " VALUES ($1, $2, $3, $4::bigint)"
	    " ON CONFLICT (name) DO UPDATE SET state = excluded.state,"
	    " last_error = coalesce(excluded.last_error, sinks.last_error),"
	    " error_at = coalesce(excluded.error_at, sinks.error_at)",
	[P_REPLAY_MOVE] =
	    "INSERT INTO sinks (name, delivered_id, replays)"
	    " VALUES ($1, $2::bigint, 1)"
	    " ON CONFLICT (name) DO UPDATE SET"
	    " delivered_id = excluded.delivered_id,"
	    " replays = sinks.replays + 1",
	[P_REPLAY_LOG] =
	    "INSERT INTO replays (sink, at, by_user, from_id, to_id)"
	    " VALUES ($1, $2::bigint, $3, $4::bigint, $5::bigint)",
	[P_LAST_REPLAY] =
	    "SELECT by_user FROM replays WHERE sink = $1"
	    " ORDER BY at DESC, seq DESC LIMIT 1",
	[P_EVENT_SINCE] =
	    "SELECT MIN(id) FROM events WHERE created_at >= $1::bigint",
	[P_STATE_COUNTS] = "SELECT state, n FROM state_counts",
	[P_EVENT_COUNT] = "SELECT coalesce(SUM(n), 0) FROM event_counts",
	[P_EVENT_TYPE_COUNTS] = "SELECT type, n FROM event_counts",
	[P_LAST_EVENT] = "SELECT coalesce(MAX(id), 0) FROM events",
	[P_OLDEST_PENDING] =
	    "SELECT MIN(added_at) FROM orders WHERE state = 'pending'",
	[P_DUE_COUNT] =
	    "SELECT (SELECT COUNT(*) FROM orders"
	    " WHERE prio = 0 AND next_poll_at <= $1::bigint)"
	    " + (SELECT COUNT(*) FROM orders"
	    " WHERE prio = 1 AND next_poll_at <= $1::bigint)",
	[P_COUNTER_ADD] = "UPDATE counters SET n = n + 1 WHERE name = $1",
	[P_COUNTER_GET] = "SELECT n FROM counters WHERE name = $1",
	[P_SEARCH] =
	    "SELECT " ORDER_COLS " FROM orders"
	    " WHERE order_id = $1 OR user_key = $1 OR ref = $1"
	    " ORDER BY added_at DESC, order_id LIMIT $2::bigint",
	[P_TRANSITIONS] =
	    "SELECT at, from_status, to_status FROM transitions"
	    " WHERE order_id = $1 ORDER BY at, seq",
	[P_ORDER_EVENTS] =
	    "SELECT id, payload FROM events WHERE order_id = $1 ORDER BY id",
	[P_HELD] =
	    "SELECT o.toss_status, COUNT(*), MIN(coalesce("
	    "(SELECT MIN(t.at) FROM transitions t WHERE t.order_id = o.order_id"
	    " AND t.to_status = o.toss_status), o.updated_at)),"
	    " MAX(o.updated_at), MIN(o.order_id)"
	    " FROM orders o WHERE o.state = 'held'"
	    " GROUP BY o.toss_status ORDER BY COUNT(*) DESC, o.toss_status",
	[P_ANOMALIES] =
	    "SELECT " ORDER_COLS " FROM orders WHERE order_id IN"
	    " (SELECT order_id FROM events WHERE type = 'anomaly')"
	    " ORDER BY updated_at DESC LIMIT $1::bigint",
	[P_HISTORY] =
	    "SELECT (created_at - $1::bigint) / $2::bigint, COUNT(*)"
	    " FROM events WHERE created_at >= $1::bigint GROUP BY 1 ORDER BY 1",
	/* Held to the end of the write: a new leader's bump waits for it. */
	[P_FENCE] = "SELECT epoch FROM leader WHERE one FOR SHARE",
};

/* An event decided inside the current transaction; it gets its id and is
 * written when the transaction commits (pg_flush_events()). */
struct pg_event {
	struct order	 order;		/* as it was after the update */
	enum event_type	 type;
	int		 refund_after_grant;
	int64_t		 now;
};

/* The backend's part of a handle (struct ledger's be). */
struct pg_ledger {
	PGconn		*conn;		/* NULL once dropped, until connected
					 * again */
	char		*url;		/* to connect again (holds the
					 * password) */
	char		 why[LEDGER_ERR_MAX];	/* why no result came */
	struct pg_event	*pend;		/* events of the open transaction */
	size_t		 npend, cap;
	size_t		 mark;		/* npend when the savepoint was set */
	int		 in_write;	/* between write_begin and write_end */
	int64_t		 retry_at;	/* no reconnection before (unix ms) */
};

#define PG_PARAMS_MAX	16

/* The parameters of one statement, as the text libpq sends. */
struct pg_params {
	const char	*v[PG_PARAMS_MAX];
	char		*own[PG_PARAMS_MAX];	/* what v points into, freed */
	int		 n;
};

static int	pg_session(struct ledger *, char **);
static void	pg_notice(void *, const char *);

static struct pg_ledger *
pg(struct ledger *l)
{
	return l->be;
}

/* ---- parameters ---------------------------------------------------------- */

/* Text, NULL for a NULL pointer; at most max bytes (cut on a UTF-8
 * boundary) when max > 0. */
static void
p_text(struct pg_params *p, const char *s, size_t max)
{
	size_t	 len;

	if (p->n >= PG_PARAMS_MAX)
		fatalx("ledger: too many parameters");
	p->own[p->n] = NULL;
	if (s != NULL && max > 0 && (len = strlen(s)) > max) {
		len = ledger_utf8_prefix(s, len, max);
		p->own[p->n] = xasprintf("%.*s", (int)len, s);
		s = p->own[p->n];
	}
	p->v[p->n++] = s;
}

/* Text, NULL for a NULL pointer or "". */
static void
p_text_null(struct pg_params *p, const char *s, size_t max)
{
	p_text(p, s == NULL || *s == '\0' ? NULL : s, max);
}

static void
p_int(struct pg_params *p, int64_t v)
{
	if (p->n >= PG_PARAMS_MAX)
		fatalx("ledger: too many parameters");
	p->own[p->n] = xasprintf("%lld", (long long)v);
	p->v[p->n] = p->own[p->n];
	p->n++;
}

static void
p_free(struct pg_params *p)
{
	int	 i;

	for (i = 0; i < p->n; i++)
		free(p->own[i]);
	p->n = 0;
}

/* ---- running statements -------------------------------------------------- */

/* Closes the connection, which had a query in flight and gave no answer
 * in time: the server ends the session and rolls back what it had open,
 * and a connection is never used again with a query in flight. The next
 * call outside a transaction connects again, after PG_RETRY_MS. */
static void
pg_drop(struct ledger *l)
{
	struct pg_ledger	*q = pg(l);

	PQfinish(q->conn);
	q->conn = NULL;
	q->retry_at = util_now_ms() + PG_RETRY_MS;
	(void)snprintf(q->why, sizeof(q->why), "no answer from the database"
	    " in %d ms; connection dropped", PG_ANSWER_MS);
	log_warnx("ledger: %s: %s", l->where, q->why);
}

/* Keeps the first line of the connection's error in q->why. */
static void
pg_why_conn(struct pg_ledger *q)
{
	const char	*msg;
	size_t		 len;

	if (q->conn == NULL)
		return;		/* q->why says why it was dropped */
	msg = PQerrorMessage(q->conn);
	len = strcspn(msg, "\n");
	len = ledger_utf8_prefix(msg, len, sizeof(q->why) - 1);
	memcpy(q->why, msg, len);
	q->why[len] = '\0';
	if (len == 0)
		util_strlcpy(q->why, "the connection failed", sizeof(q->why));
}

/* Collects the answer to the query just sent (sent: what the PQsend call
 * returned), waiting at most PG_ANSWER_MS: the last result, or the first
 * error result when there are several (SQL text of many statements).
 * Returns NULL, with q->why set, when the query could not be sent, the
 * connection failed, or no answer came in time (the connection is then
 * dropped: pg_drop()). */
static PGresult *
pg_wait(struct ledger *l, int sent)
{
	struct pg_ledger	*q = pg(l);
	struct pollfd		 pfd;
	PGresult		*res = NULL, *r;
	int64_t			 deadline, left;
	int			 flushed = 0, n;

	if (q->conn == NULL)
		return NULL;	/* dropped inside a transaction: q->why */
	q->why[0] = '\0';
	if (!sent)
		goto failed;
	deadline = util_mono_ms() + PG_ANSWER_MS;
	for (;;) {
		if (!flushed) {
			if ((n = PQflush(q->conn)) == -1)
				goto failed;
			flushed = n == 0;
		}
		if (PQconsumeInput(q->conn) == 0)
			goto failed;
		while (flushed && !PQisBusy(q->conn)) {
			if ((r = PQgetResult(q->conn)) == NULL)
				return res;
			if (res != NULL &&
			    PQresultStatus(res) == PGRES_FATAL_ERROR)
				PQclear(r);
			else {
				PQclear(res);
				res = r;
			}
		}
		if ((left = deadline - util_mono_ms()) <= 0) {
			PQclear(res);
			pg_drop(l);
			return NULL;
		}
		pfd.fd = PQsocket(q->conn);
		pfd.events = POLLIN | (flushed ? 0 : POLLOUT);
		pfd.revents = 0;
		if (poll(&pfd, 1, (int)left) == -1 && errno != EINTR) {
			n = errno;
			PQclear(res);
			pg_drop(l);
			(void)snprintf(q->why, sizeof(q->why), "waiting for"
			    " the database: %s; connection dropped",
			    strerror(n));
			return NULL;
		}
	}

failed:
	PQclear(res);
	pg_why_conn(q);
	return NULL;
}

/* Keeps and logs the error of the statement that just failed (res may be
 * NULL: the connection's error). Data the server finds corrupt is damage. */
static void
pg_error(struct ledger *l, const char *what, const PGresult *res)
{
	const char	*msg, *state;
	char		 buf[LEDGER_ERR_MAX];
	size_t		 len;
	int		 code;

	msg = res != NULL ? PQresultErrorMessage(res) : "";
	if (msg == NULL || *msg == '\0')
		msg = pg(l)->why;
	if (*msg == '\0')
		msg = PQerrorMessage(pg(l)->conn);
	len = strcspn(msg, "\n");
	len = ledger_utf8_prefix(msg, len, sizeof(buf) - 1);
	memcpy(buf, msg, len);
	buf[len] = '\0';
	code = PQstatus(pg(l)->conn) == CONNECTION_OK ? PG_ERR_SQL :
	    PG_ERR_CONN;
	ledger_set_error(l, code, "%s", buf);
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state != NULL && strncmp(state, "XX00", 4) == 0 &&
	    (state[4] == '1' || state[4] == '2')) {
		log_debug("ledger: %s: %s", what, buf);
		ledger_note_damage(l, buf);
		return;
	}
	log_warnx("ledger: %s: %s", what, buf);
}

/* Connects (again) to q->url; 0, or -1 with q->conn possibly NULL (its
 * error in PQerrorMessage() otherwise). */
static int
pg_connect(struct ledger *l)
{
	/* Defaults first: what the URL says overrides them. */
	static const char *const keys[] = {
		"connect_timeout", "application_name", "dbname", NULL
	};
	struct pg_ledger	*q = pg(l);
	const char		*vals[4];

	PQfinish(q->conn);
	vals[0] = PG_CONNECT_TIMEOUT;
	vals[1] = "reconciled";
	vals[2] = q->url;
	vals[3] = NULL;
	q->conn = PQconnectdbParams(keys, vals, 1);
	if (q->conn == NULL) {
		util_strlcpy(q->why, "out of memory", sizeof(q->why));
		return -1;
	}
	if (PQstatus(q->conn) != CONNECTION_OK) {
		pg_why_conn(q);
		return -1;
	}
	PQsetNoticeProcessor(q->conn, pg_notice, l);
	return 0;
}

/* Before a call that starts outside any transaction: a connection that
 * broke (or was dropped) is made again (at most every PG_RETRY_MS), with
 * its settings and statements; inside a transaction a broken connection
 * just fails. 0 when the connection can be used, -1 (error kept)
 * otherwise. */
static int
pg_usable(struct ledger *l)
{
	struct pg_ledger	*q = pg(l);
	char			*err = NULL;
	int64_t			 now;

	if (PQstatus(q->conn) == CONNECTION_OK || l->in_tx || q->in_write)
		return 0;
	now = util_now_ms();
	if (now < q->retry_at) {
		ledger_set_error(l, PG_ERR_CONN, "no connection to the"
		    " database (trying again shortly)%s%s",
		    q->conn == NULL ? ": " : "", q->conn == NULL ? q->why : "");
		return -1;
	}
	if (pg_connect(l) == 0 && pg_session(l, &err) == 0) {
		log_info("ledger: %s: connected again", l->where);
		q->retry_at = 0;
		return 0;
	}
	q->retry_at = now + PG_RETRY_MS;
	if (err == NULL)
		err = xasprintf("%s: cannot connect: %s", l->where, q->why);
	log_warnx("ledger: %s", err);
	ledger_set_error(l, PG_ERR_CONN, "%s", err);
	free(err);
	return -1;
}

/* 1 when a statement now would start outside any transaction. */
static int
pg_idle(struct ledger *l)
{
	return !l->in_tx && !pg(l)->in_write && pg(l)->conn != NULL &&
	    PQtransactionStatus(pg(l)->conn) == PQTRANS_IDLE;
}

/* The first statement of a call outside any transaction found the
 * connection dead (the server restarted, or ended the session, since the
 * last call): nothing of the call has happened, so it connects again at
 * once and the statement is sent again. 1 when connected again. A
 * connection dropped for giving no answer is not retried at once. */
static int
pg_revive(struct ledger *l, int was_idle)
{
	struct pg_ledger	*q = pg(l);
	char			*err = NULL;

	if (!was_idle || q->conn == NULL ||
	    PQstatus(q->conn) != CONNECTION_BAD)
		return 0;
	if (pg_connect(l) == 0 && pg_session(l, &err) == 0) {
		log_info("ledger: %s: connected again", l->where);
		q->retry_at = 0;
		return 1;
	}
	q->retry_at = util_now_ms() + PG_RETRY_MS;
	if (err == NULL)
		err = xasprintf("%s: cannot connect: %s", l->where, q->why);
	log_warnx("ledger: %s", err);
	free(err);
	return 0;
}

/* Runs a kept statement. Returns its result (caller clears) when it
 * succeeded, NULL (error kept) otherwise. Frees the parameters. */
static PGresult *
pg_run(struct ledger *l, enum pg_stmt id, const char *what,
    struct pg_params *p)
{
	PGresult	*res;
	char		 name[16];
	int		 st, was_idle;

	if (pg_usable(l) == -1) {
		if (p != NULL)
			p_free(p);
		return NULL;
	}
	(void)snprintf(name, sizeof(name), "r%d", (int)id);
	was_idle = pg_idle(l);
	res = pg_wait(l, PQsendQueryPrepared(pg(l)->conn, name,
	    p != NULL ? p->n : 0, p != NULL ? p->v : NULL, NULL, NULL, 0));
	if (res == NULL && pg_revive(l, was_idle))
		res = pg_wait(l, PQsendQueryPrepared(pg(l)->conn, name,
		    p != NULL ? p->n : 0, p != NULL ? p->v : NULL, NULL, NULL,
		    0));
	if (p != NULL)
		p_free(p);
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_error(l, what, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Runs SQL text without parameters (transaction control); 0 or -1. */
static int
pg_exec(struct ledger *l, const char *sql, const char *what)
{
	PGresult	*res;
	int		 st, was_idle;

	if (pg_usable(l) == -1)
		return -1;
	was_idle = pg_idle(l);
	res = pg_wait(l, PQsendQuery(pg(l)->conn, sql));
	if (res == NULL && pg_revive(l, was_idle))
		res = pg_wait(l, PQsendQuery(pg(l)->conn, sql));
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_error(l, what, res);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* Runs a statement for its effect; returns the number of rows it changed,
 * or -1. */
static int
pg_change(struct ledger *l, enum pg_stmt id, const char *what,
    struct pg_params *p)
{
	PGresult	*res;
	int		 n;

	if ((res = pg_run(l, id, what, p)) == NULL)
		return -1;
	n = (int)strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return n;
}

/* Runs a one-value query; 1 and *v set, 0 when it gave no row or NULL,
 * -1 on an error. */
static int
pg_value(struct ledger *l, enum pg_stmt id, const char *what,
    struct pg_params *p, int64_t *v)
{
	PGresult	*res;
	int		 found = 0;

	if ((res = pg_run(l, id, what, p)) == NULL)
		return -1;
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
		*v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		found = 1;
	}
	PQclear(res);
	return found;
}

static int64_t
col_int(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void
col_text(const PGresult *res, int row, int col, char *dst, size_t size)
{
	const char	*s;
	size_t		 n;

	if (PQgetisnull(res, row, col)) {
		dst[0] = '\0';
		return;
	}
	s = PQgetvalue(res, row, col);
	n = ledger_utf8_prefix(s, (size_t)PQgetlength(res, row, col),
	    size - 1);
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* Fills *o from a row of ORDER_COLS. */
static int
row_order(struct ledger *l, const PGresult *res, int row, struct order *o)
{
	char	 state[32];

	memset(o, 0, sizeof(*o));
	col_text(res, row, 0, o->order_id, sizeof(o->order_id));
	col_text(res, row, 1, o->user_key, sizeof(o->user_key));
	col_text(res, row, 2, o->sku, sizeof(o->sku));
	o->has_ref = !PQgetisnull(res, row, 3);
	col_text(res, row, 3, o->ref, sizeof(o->ref));
	col_text(res, row, 4, state, sizeof(state));
	if (order_state_parse(state, &o->state) == -1) {
		ledger_own_error(l, "order %s has unknown state \"%s\"",
		    o->order_id, state);
		return -1;
	}
	col_text(res, row, 5, o->toss_status, sizeof(o->toss_status));
	col_text(res, row, 6, o->reason, sizeof(o->reason));
	col_text(res, row, 7, o->determined_at, sizeof(o->determined_at));
	o->polls = col_int(res, row, 8);
	o->errors = col_int(res, row, 9);
	o->added_at = col_int(res, row, 10);
	o->updated_at = col_int(res, row, 11);
	o->granted_at = col_int(res, row, 12);
	o->next_poll_at = col_int(res, row, 13);
	col_text(res, row, 14, o->intake_sku, sizeof(o->intake_sku));
	o->sku_confirmed = col_int(res, row, 15) != 0;
	o->late_answers = col_int(res, row, 16);
	return 0;
}

/* Calls fn for each order row of a result; see ledger_foreach(). */
static int
orders_each(struct ledger *l, PGresult *res,
    int (*fn)(const struct order *, void *), void *arg)
{
	struct order	*o;
	int		 i, r = 0;

	o = xmalloc(sizeof(*o));
	for (i = 0; i < PQntuples(res) && r == 0; i++) {
		if (row_order(l, res, i, o) == -1)
			r = -1;
		else
			r = fn(o, arg);
	}
	free(o);
	PQclear(res);
	return r;
}

/* ---- transactions -------------------------------------------------------- */

/* Rolls back whatever transaction the connection has open; nothing to do
 * on a broken one (the server has ended it). */
static void
pg_abort(struct ledger *l)
{
	if (PQstatus(pg(l)->conn) == CONNECTION_OK &&
	    PQtransactionStatus(pg(l)->conn) != PQTRANS_IDLE)
		(void)pg_exec(l, "ROLLBACK", "rollback");
}

/* Gives the events decided in this transaction their ids and writes them;
 * the counter's update is this transaction's last step before COMMIT, and
 * its row lock, held to the end, makes the next writer wait: ids become
 * visible in order. */
static int
pg_flush_events(struct ledger *l)
{
	struct pg_ledger	*q = pg(l);
	struct pg_params	 p = { .n = 0 };
	struct pg_event		*e;
	char			*key, *payload;
	int64_t			 last = 0, id;
	size_t			 i;
	int			 r;

	if (q->npend == 0)
		return 0;
	p_int(&p, (int64_t)q->npend);
	if ((r = pg_value(l, P_EVENT_IDS, "event ids", &p, &last)) != 1) {
		if (r == 0)
			ledger_own_error(l, "event_counter has no row");
		return -1;
	}
	id = last - (int64_t)q->npend;
	for (i = 0; i < q->npend; i++) {
		e = &q->pend[i];
		id++;
		key = ledger_event_key(e->order.order_id, e->type);
		payload = json_out_event(id, e->type, &e->order,
		    e->refund_after_grant, e->now);
		p_int(&p, id);
		p_text(&p, key, 0);
		p_text(&p, order_event_name(e->type), 0);
		p_text(&p, e->order.order_id, 0);
		p_text(&p, payload, 0);
		p_int(&p, e->now);
		r = pg_change(l, P_EVENT_ADD, "event", &p);
		free(payload);
		free(key);
		if (r == -1)
			return -1;
	}
	q->npend = 0;
	return 0;
}

/* Ends the open transaction: its events, then COMMIT; a failure rolls it
 * back. */
static int
pg_commit_tx(struct ledger *l)
{
	if (pg_flush_events(l) == 0 && pg_exec(l, "COMMIT", "commit") == 0)
		return 0;
	pg(l)->npend = 0;
	pg_abort(l);
	return -1;
}

/* Starts a write: its own transaction outside ledger_begin(), a savepoint
 * inside one, so that a failed operation never leaves half its writes in
 * the caller's batch. */
static int
write_begin(struct ledger *l)
{
	if (l->in_tx) {
		if (PQtransactionStatus(pg(l)->conn) != PQTRANS_INTRANS) {
			ledger_own_error(l, "the batch transaction was rolled"
			    " back by an earlier error");
			return -1;
		}
		pg(l)->mark = pg(l)->npend;
		return pg_exec(l, "SAVEPOINT ledger_op", "savepoint");
	}
	pg(l)->npend = 0;
	if (pg_exec(l, "BEGIN", "begin") == -1)
		return -1;
	pg(l)->in_write = 1;
	return 0;
}

/* Ends a write begun by write_begin(): commits (or releases) when ok,
 * rolls back otherwise. Returns 0, or -1 if it failed or !ok. */
static int
write_end(struct ledger *l, int ok)
{
	pg(l)->in_write = 0;
	if (l->in_tx) {
		if (!ok) {
			pg(l)->npend = pg(l)->mark;
			if (pg_exec(l, "ROLLBACK TO SAVEPOINT ledger_op",
			    "rollback to") == -1)
				return -1;
		}
		if (pg_exec(l, "RELEASE SAVEPOINT ledger_op", "release") == -1)
			return -1;
		return ok ? 0 : -1;
	}
	if (ok)
		return pg_commit_tx(l);
	pg(l)->npend = 0;
	pg_abort(l);
	return -1;
}

/* The fence (ledger_set_fence()): with one set, the leader row is read
 * with FOR SHARE, a lock held to the end of the transaction (a new
 * leader's bump waits for it), and its epoch must still be the fence.
 * 0 when it is (or no fence is set); -1 otherwise, error kept. */
static int
pg_fence(struct ledger *l)
{
	int64_t	 epoch = 0;
	int	 r;

	if (l->fence == 0)
		return 0;
	if ((r = pg_value(l, P_FENCE, "fence", NULL, &epoch)) == -1)
		return -1;
	if (r == 0) {
		ledger_own_error(l, "fenced: the leader table has no row");
		l->fenced = 1;
		return -1;
	}
	if (epoch != l->fence) {
		log_warnx("ledger: fenced: the leader epoch is now %lld, this"
		    " instance had %lld", (long long)epoch,
		    (long long)l->fence);
		ledger_set_error(l, PG_ERR_FENCED, "fenced: the leader epoch"
		    " is now %lld, this instance had %lld", (long long)epoch,
		    (long long)l->fence);
		l->fenced = 1;
		return -1;
	}
	return 0;
}

/* write_begin() for the writes only a leader makes: then the fence, in
 * the write's transaction (or after the savepoint in a batch). */
static int
write_begin_fenced(struct ledger *l)
{
	if (write_begin(l) == -1)
		return -1;
	if (pg_fence(l) == -1) {
		(void)write_end(l, 0);
		return -1;
	}
	return 0;
}

static int
pgb_begin(struct ledger *l)
{
	pg(l)->npend = 0;
	return pg_exec(l, "BEGIN", "begin");
}

static int
pgb_commit(struct ledger *l)
{
	if (PQtransactionStatus(pg(l)->conn) != PQTRANS_INTRANS) {
		ledger_own_error(l, "commit: the transaction was already rolled"
		    " back by an earlier error");
		pg(l)->npend = 0;
		pg_abort(l);
		return -1;
	}
	return pg_commit_tx(l);
}

static void
pgb_rollback(struct ledger *l)
{
	pg(l)->npend = 0;
	pg_abort(l);
}

/* ---- opening ------------------------------------------------------------- */

static int
pgb_claims(const char *where)
{
	return strncmp(where, "postgresql://", 13) == 0 ||
	    strncmp(where, "postgres://", 11) == 0;
}

static const char *
pgb_version(void)
{
	static char	 buf[32];
	int		 v = PQlibVersion();

	(void)snprintf(buf, sizeof(buf), "libpq %d.%d", v / 10000,
	    v % 10000);
	return buf;
}

static const char *
pgb_errmsg(struct ledger *l)
{
	if (pg(l)->conn == NULL)
		return pg(l)->why;
	return PQerrorMessage(pg(l)->conn);
}

/* The first line of the connection's error, for *err. */
static char *
conn_error(struct ledger *l, const char *what, const PGresult *res)
{
	const char	*msg;

	msg = res != NULL ? PQresultErrorMessage(res) : NULL;
	if (msg == NULL || *msg == '\0')
		msg = pg(l)->why;
	if (*msg == '\0')
		msg = PQerrorMessage(pg(l)->conn);
	return xasprintf("%s: %s: %.*s", l->where, what,
	    (int)strcspn(msg, "\n"), msg);
}

/* Runs SQL text while opening; sets *err. */
static int
open_exec(struct ledger *l, const char *sql, const char *what, char **err)
{
	PGresult	*res;
	int		 st;

	res = pg_wait(l, PQsendQuery(pg(l)->conn, sql));
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		*err = conn_error(l, what, res);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* Reads one integer (NULL: 0) with SQL text and one text parameter (may be
 * NULL for none) while opening; sets *err. */
static int
open_int64(struct ledger *l, const char *sql, const char *param, int64_t *v,
    const char *what, char **err)
{
	PGresult	*res;

	*v = 0;
	res = pg_wait(l, PQsendQueryParams(pg(l)->conn, sql,
	    param != NULL ? 1 : 0, NULL, param != NULL ? &param : NULL, NULL,
	    NULL, 0));
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		*err = conn_error(l, what, res);
		PQclear(res);
		return -1;
	}
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		*v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

/* Decides, reading only, whether the connection's schema (the first of
 * its search_path) holds a ledger this build can use, or nothing at all
 * to make one in. Sets *version (0: empty). */
static int
check_identity(struct ledger *l, int64_t *version, char **err)
{
	int64_t		 has_meta, objects, n;
	size_t		 i;

	if (open_int64(l, "SELECT count(*) FROM pg_namespace"
	    " WHERE nspname = current_schema()", NULL, &n, "schema",
	    err) == -1)
		return -1;
	if (n == 0) {
		*err = xasprintf("%s: no schema to use (search_path"
		    " names none that exists)", l->where);
		return -1;
	}
	if (open_int64(l, "SELECT count(*) FROM pg_class c JOIN pg_namespace"
	    " s ON s.oid = c.relnamespace WHERE s.nspname = current_schema()"
	    " AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')", NULL,
	    &objects, "identity", err) == -1 ||
	    open_int64(l, "SELECT count(*) FROM pg_tables WHERE"
	    " schemaname = current_schema() AND tablename = 'ledger_meta'",
	    NULL, &has_meta, "identity", err) == -1)
		return -1;
	*version = 0;
	if (!has_meta) {
		if (objects != 0) {
			*err = xasprintf("%s: not a reconciled ledger"
			    " (the schema holds other tables; refusing to"
			    " touch it)", l->where);
			return -1;
		}
		return 0;
	}
	if (open_int64(l, "SELECT version FROM ledger_meta WHERE app ="
	    " 'reconciled'", NULL, version, "identity", err) == -1)
		return -1;
	if (*version <= 0) {
		*err = xasprintf("%s: not a reconciled ledger"
		    " (ledger_meta names no version)", l->where);
		return -1;
	}
	/* A table a later migration makes is not missing before it. */
	for (i = 0; i < sizeof(pg_tables) / sizeof(pg_tables[0]); i++) {
		if (pg_tables[i].since > *version)
			continue;
		if (open_int64(l, "SELECT count(*) FROM pg_tables WHERE"
		    " schemaname = current_schema() AND tablename = $1",
		    pg_tables[i].name, &n, "identity", err) == -1)
			return -1;
		if (n == 0) {
			*err = xasprintf("%s: not a complete reconciled"
			    " ledger: table %s is missing; restore it from a"
			    " backup", l->where, pg_tables[i].name);
			return -1;
		}
	}
	if (*version > (int64_t)schema_pg_count) {
		*err = xasprintf("%s: ledger schema version %lld is"
		    " newer than this build supports (%zu); upgrade"
		    " reconciled", l->where, (long long)*version,
		    schema_pg_count);
		return -1;
	}
	return 0;
}

/* Applies the missing migrations, each in its own transaction, under a
 * transaction-scoped advisory lock: another instance may be migrating the
 * same database, so the version is read again once the lock is held. */
static int
migrate(struct ledger *l, char **err)
{
	char	 sql[256];
	int64_t	 v, has_meta;

	for (;;) {
		if (open_exec(l, "BEGIN", "migrate", err) == -1 ||
		    open_exec(l, "SELECT pg_advisory_xact_lock("
		    "hashtext('reconciled ledger migration'))", "migrate",
		    err) == -1 ||
		    open_int64(l, "SELECT count(*) FROM pg_tables WHERE"
		    " schemaname = current_schema() AND tablename ="
		    " 'ledger_meta'", NULL, &has_meta, "migrate", err) == -1)
			goto fail;
		v = 0;
		if (has_meta && open_int64(l, "SELECT version FROM"
		    " ledger_meta", NULL, &v, "migrate", err) == -1)
			goto fail;
		if (v >= (int64_t)schema_pg_count)
			return open_exec(l, "COMMIT", "migrate", err);
		if (open_exec(l, schema_pg_migrations[v], "migration",
		    err) == -1)
			goto fail;
		(void)snprintf(sql, sizeof(sql), "INSERT INTO ledger_meta"
		    " (app, version) VALUES ('reconciled', %lld) ON CONFLICT"
		    " (one) DO UPDATE SET version = excluded.version",
		    (long long)v + 1);
		if (open_exec(l, sql, "migrate", err) == -1 ||
		    open_exec(l, "COMMIT", "migrate", err) == -1)
			goto fail;
		log_info("ledger: %s: migrated to schema version %lld",
		    l->where, (long long)v + 1);
	}

fail:
	if (pg(l)->conn != NULL &&
	    PQtransactionStatus(pg(l)->conn) != PQTRANS_IDLE)
		PQclear(pg_wait(l, PQsendQuery(pg(l)->conn, "ROLLBACK")));
	return -1;
}

/* What the daemon needs to do with the tables (on an opened ledger, of
 * this build's version); `reconciled -n` says what is missing instead of
 * failing at the first write. */
static int
check_privileges(struct ledger *l, char **err)
{
	static const struct {
		int		 bit;
		const char	*name;
	} priv[] = {
		{ PRIV_SELECT, "SELECT" },
		{ PRIV_INSERT, "INSERT" },
		{ PRIV_UPDATE, "UPDATE" }
	};
	char			 sql[256];
	int64_t			 ok;
	size_t			 i, j;

	for (i = 0; i < sizeof(pg_tables) / sizeof(pg_tables[0]); i++) {
		for (j = 0; j < sizeof(priv) / sizeof(priv[0]); j++) {
			if (l->readonly && priv[j].bit != PRIV_SELECT)
				continue;
			if (!(pg_tables[i].privs & priv[j].bit))
				continue;
			(void)snprintf(sql, sizeof(sql), "SELECT"
			    " has_table_privilege(quote_ident("
			    "current_schema()) || '.%s', '%s')::int",
			    pg_tables[i].name, priv[j].name);
			if (open_int64(l, sql, NULL, &ok, "privileges",
			    err) == -1)
				return -1;
			if (!ok) {
				*err = xasprintf("%s: the role has no"
				    " %s privilege on table %s", l->where,
				    priv[j].name, pg_tables[i].name);
				return -1;
			}
		}
	}
	return 0;
}

/* The server's notices (a shutdown under way, a vacuum's warning) go to
 * the log, not to stderr as libpq's default would. */
static void
pg_notice(void *arg, const char *msg)
{
	struct ledger	*l = arg;

	log_info("ledger: %s: server says: %.*s", l->where,
	    (int)strcspn(msg, "\n"), msg);
}

/* The session's bounds (and read-only mode for a read-only open). The
 * connection does not block: every wait is pg_wait()'s. */
static int
pg_settings(struct ledger *l, char **err)
{
	char	 sql[3][80];

	if (PQsetnonblocking(pg(l)->conn, 1) == -1) {
		*err = conn_error(l, "settings", NULL);
		return -1;
	}
	(void)snprintf(sql[0], sizeof(sql[0]), "SET statement_timeout = %d",
	    PG_STATEMENT_TIMEOUT);
	(void)snprintf(sql[1], sizeof(sql[1]), "SET lock_timeout = %d",
	    PG_LOCK_TIMEOUT);
	(void)snprintf(sql[2], sizeof(sql[2]), "SET"
	    " idle_in_transaction_session_timeout = %d", PG_IDLE_TX_TIMEOUT);
	if (open_exec(l, sql[0], "settings", err) == -1 ||
	    open_exec(l, sql[1], "settings", err) == -1 ||
	    open_exec(l, sql[2], "settings", err) == -1 ||
	    open_exec(l, "SET TIME ZONE 'UTC'", "settings", err) == -1 ||
	    open_exec(l, "SET client_encoding = 'UTF8'", "settings",
	    err) == -1)
		return -1;
	return 0;
}

/* Prepares every kept statement on the connection (and makes a
 * read-only handle's session read-only first). */
static int
pg_prepare(struct ledger *l, char **err)
{
	PGresult	*res;
	char		 name[16];
	int		 i;

	if (l->readonly && open_exec(l, "SET default_transaction_read_only ="
	    " on", "settings", err) == -1)
		return -1;
	for (i = 0; i < P__COUNT; i++) {
		(void)snprintf(name, sizeof(name), "r%d", i);
		res = pg_wait(l, PQsendPrepare(pg(l)->conn, name, pg_sql[i],
		    0, NULL));
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			*err = conn_error(l, "preparing a statement", res);
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

/* A new session on a connection made again: its settings and statements;
 * sets *err (caller frees). */
static int
pg_session(struct ledger *l, char **err)
{
	if (pg_settings(l, err) == -1)
		return -1;
	return pg_prepare(l, err);
}

static int
pgb_open(struct ledger *l, const char *url, int readonly, char **err)
{
	struct pg_ledger	*q;
	int64_t			 version;

	l->be = q = xcalloc(1, sizeof(*q));
	q->url = xstrdup(url);
	if (pg_connect(l) == -1) {
		*err = conn_error(l, "cannot connect", NULL);
		return -1;
	}
	if (pg_settings(l, err) == -1)
		return -1;

	/* Nothing may write before we know the schema is ours. */
	if (check_identity(l, &version, err) == -1)
		return -1;
	if (readonly && version == 0) {
		*err = xasprintf("%s: no ledger in this database yet (it is"
		    " created by the first add, import or daemon start)",
		    l->where);
		return -1;
	}
	if (readonly && version < (int64_t)schema_pg_count) {
		*err = xasprintf("%s: ledger schema version %lld is"
		    " older than this build (%zu); open it read-write once to"
		    " migrate it", l->where, (long long)version,
		    schema_pg_count);
		return -1;
	}
	if (!readonly && migrate(l, err) == -1)
		return -1;
	if (!readonly && check_identity(l, &version, err) == -1)
		return -1;
	if (check_privileges(l, err) == -1)
		return -1;
	return pg_prepare(l, err);
}

static void
pgb_close(struct ledger *l)
{
	struct pg_ledger	*q = l->be;

	if (q == NULL)
		return;
	PQfinish(q->conn);
	util_free_secret(q->url);
	free(q->pend);
	free(q);
	l->be = NULL;
}

/* PostgreSQL checks its pages as it reads them (and with data checksums,
 * when the cluster has them): the check here is that the ledger answers
 * and its counters agree with its rows. */
static int
pgb_quick_check(struct ledger *l, char **err)
{
	int64_t	 sound;

	if (open_int64(l, "SELECT ((SELECT count(*) FROM orders) ="
	    " (SELECT coalesce(sum(n), 0) FROM state_counts) AND"
	    " (SELECT count(*) FROM events) ="
	    " (SELECT coalesce(sum(n), 0) FROM event_counts) AND"
	    " (SELECT coalesce(max(id), 0) FROM events) ="
	    " (SELECT last FROM event_counter) AND"
	    " (SELECT count(*) FROM events) ="
	    " (SELECT last FROM event_counter))::int", NULL, &sound,
	    "check", err) == -1)
		return -1;
	if (!sound) {
		*err = xasprintf("ledger %s is damaged: its counters do not"
		    " match its rows", l->where);
		if (l->damage == NULL)
			l->damage = xstrdup("counters do not match rows");
		return -1;
	}
	return 0;
}

/* ---- orders -------------------------------------------------------------- */

static int
pgb_add(struct ledger *l, const char *order_id, const char *user_key,
    const char *sku, const char *ref, int64_t now,
    enum ledger_add_result *res)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;
	int			 n, ok = 0;

	if (write_begin(l) == -1)
		return -1;
	p_text(&p, order_id, 0);
	p_text(&p, user_key, 0);
	p_text_null(&p, sku, 0);
	p_text(&p, ref, 0);
	p_int(&p, now);
	if ((n = pg_change(l, P_ADD, "add", &p)) == -1)
		goto out;
	if (n == 1) {
		*res = LEDGER_ADDED;
		ok = 1;
		goto out;
	}
	p_text(&p, order_id, 0);
	if ((r = pg_run(l, P_USER_KEY, "add", &p)) == NULL)
		goto out;
	if (PQntuples(r) != 1) {
		ledger_own_error(l, "add: order %s neither inserted nor found",
		    order_id);
		PQclear(r);
		goto out;
	}
	*res = strcmp(PQgetvalue(r, 0, 0), user_key) == 0 ? LEDGER_KNOWN :
	    LEDGER_CONFLICT;
	PQclear(r);
	ok = 1;

out:
	return write_end(l, ok);
}

static int
pgb_get(struct ledger *l, const char *order_id, struct order *out)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;
	int			 found = 0;

	p_text(&p, order_id, 0);
	if ((r = pg_run(l, P_GET, "get", &p)) == NULL)
		return -1;
	if (PQntuples(r) > 0) {
		if (row_order(l, r, 0, out) == -1) {
			PQclear(r);
			return -1;
		}
		found = 1;
	}
	PQclear(r);
	return found;
}

static int
pgb_foreach(struct ledger *l, int state,
    int (*fn)(const struct order *, void *), void *arg)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;

	if (state < 0)
		r = pg_run(l, P_FOREACH_ALL, "foreach", NULL);
	else {
		p_text(&p, order_state_name(state), 0);
		r = pg_run(l, P_FOREACH_STATE, "foreach", &p);
	}
	if (r == NULL)
		return -1;
	return orders_each(l, r, fn, arg);
}

static int
pgb_claim_due(struct ledger *l, int64_t now, int64_t lease_ms,
    struct order *out, int max)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;
	int			 prio, i, n = 0, ok = 1;

	if (write_begin_fenced(l) == -1)
		return -1;
	for (prio = 0; prio < 2 && n < max && ok; prio++) {
		p_int(&p, now + lease_ms);
		p_int(&p, prio);
		p_int(&p, now);
		p_int(&p, max - n);
		if ((r = pg_run(l, P_CLAIM, "claim", &p)) == NULL) {
			ok = 0;
			break;
		}
		for (i = 0; i < PQntuples(r) && ok; i++) {
			if (n >= max) {
				ledger_own_error(l, "claim returned more rows"
				    " than asked");
				ok = 0;
			} else if (row_order(l, r, i, &out[n]) == -1)
				ok = 0;
			else
				n++;
		}
		PQclear(r);
	}
	if (write_end(l, ok) == -1)
		return -1;
	return n;
}

static int
pgb_next_due(struct ledger *l, int64_t *at)
{
	return pg_value(l, P_NEXT_DUE, "next due", NULL, at);
}

/* Decides the event of an applied update: known already (in the table or
 * earlier in this transaction) means nothing is written; otherwise it is
 * kept for pg_flush_events(). *inserted says which. */
static int
add_event(struct ledger *l, const struct order *o, enum event_type ev,
    int refund_after_grant, int64_t now, int *inserted)
{
	struct pg_ledger	*q = pg(l);
	struct pg_params	 p = { .n = 0 };
	struct pg_event		*e;
	int64_t			 one;
	char			*key;
	size_t			 i;
	int			 r;

	*inserted = 0;
	for (i = 0; i < q->npend; i++) {
		if (q->pend[i].type == ev &&
		    strcmp(q->pend[i].order.order_id, o->order_id) == 0)
			return 0;
	}
	key = ledger_event_key(o->order_id, ev);
	p_text(&p, key, 0);
	r = pg_value(l, P_EVENT_KNOWN, "event", &p, &one);
	if (r != 0) {
		if (r == 1)
			log_debug("ledger: event %s exists; not written"
			    " again", key);
		free(key);
		return r == 1 ? 0 : -1;
	}
	free(key);
	if (q->npend == q->cap) {
		q->cap = q->cap == 0 ? 16 : q->cap * 2;
		q->pend = xrealloc(q->pend, q->cap * sizeof(*q->pend));
	}
	e = &q->pend[q->npend++];
	e->order = *o;
	e->type = ev;
	e->refund_after_grant = refund_after_grant;
	e->now = now;
	*inserted = 1;
	return 0;
}

static int
pgb_apply(struct ledger *l, const struct order *before,
    const struct ledger_update *u, int64_t now)
{
	struct pg_params	 p = { .n = 0 };
	struct order		*after;
	PGresult		*r;
	const char		*status;
	int			 inserted = 0, ok = 0, stale = 0;

	status = u->status_seen && u->toss_status != NULL ? u->toss_status : "";
	after = xmalloc(sizeof(*after));
	if (write_begin_fenced(l) == -1) {
		free(after);
		return -1;
	}
	p_text(&p, order_state_name(u->new_state), 0);
	p_text(&p, u->status_seen ? "true" : "false", 0);
	p_text_null(&p, status, STATUS_MAX);
	p_text_null(&p, u->reason, REASON_MAX);
	p_text_null(&p, u->determined_at, DETERMINED_MAX - 1);
	p_text_null(&p, u->sku, SKU_MAX);
	p_int(&p, u->count_poll != 0);
	p_int(&p, u->count_error != 0);
	p_int(&p, u->granted_at);
	p_int(&p, u->next_poll_at);
	p_int(&p, now);
	p_text(&p, before->order_id, 0);
	p_int(&p, u->late_answers);
	p_text(&p, order_state_name(before->state), 0);
	p_int(&p, before->next_poll_at);
	if ((r = pg_run(l, P_APPLY, "apply", &p)) == NULL)
		goto out;
	if (PQntuples(r) != 1) {
		PQclear(r);
		/* Not as claimed, or not there at all. */
		p_text(&p, before->order_id, 0);
		if ((r = pg_run(l, P_USER_KEY, "apply", &p)) == NULL)
			goto out;
		if (PQntuples(r) == 0)
			ledger_own_error(l, "apply: no order %s",
			    before->order_id);
		else {
			log_debug("ledger: apply: order %s changed since it"
			    " was claimed; not written", before->order_id);
			stale = ok = 1;
		}
		PQclear(r);
		goto out;
	}
	if (row_order(l, r, 0, after) == -1) {
		PQclear(r);
		goto out;
	}
	PQclear(r);

	if (u->status_seen &&
	    strcmp(before->toss_status, after->toss_status) != 0) {
		p_text(&p, before->order_id, 0);
		p_int(&p, now);
		p_text_null(&p, before->toss_status, 0);
		p_text(&p, after->toss_status, 0);
		if (pg_change(l, P_TRANSITION, "transition", &p) == -1)
			goto out;
	}
	if (u->event != EV_NONE && add_event(l, after, u->event,
	    u->refund_after_grant, now, &inserted) == -1)
		goto out;
	/* A contradicted sku is counted once per order: with its event. */
	if (u->sku_mismatch && inserted) {
		p_text(&p, "sku_mismatch", 0);
		if (pg_change(l, P_COUNTER_ADD, "counter", &p) == -1)
			goto out;
	}
	ok = 1;

out:
	free(after);
	if (write_end(l, ok) == -1)
		return -1;
	return stale;
}

/* Runs an UPDATE keyed by text with one integer in its own write (fenced
 * or not); returns the number of rows changed or -1. */
static int
update_one(struct ledger *l, enum pg_stmt id, const char *what,
    const char *key, int64_t v, int fenced)
{
	struct pg_params	 p = { .n = 0 };
	int			 n;

	if ((fenced ? write_begin_fenced(l) : write_begin(l)) == -1)
		return -1;
	p_text(&p, key, 0);
	p_int(&p, v);
	n = pg_change(l, id, what, &p);
	if (write_end(l, n != -1) == -1)
		return -1;
	return n;
}

/* Only while the order is as claimed: 1 (nothing written) otherwise. */
static int
pgb_reschedule(struct ledger *l, const struct order *before, int64_t at)
{
	struct pg_params	 p = { .n = 0 };
	int			 n;

	if (write_begin_fenced(l) == -1)
		return -1;
	p_text(&p, before->order_id, 0);
	p_int(&p, at);
	p_text(&p, order_state_name(before->state), 0);
	p_int(&p, before->next_poll_at);
	n = pg_change(l, P_RESCHEDULE, "reschedule", &p);
	if (write_end(l, n != -1) == -1)
		return -1;
	if (n == 0)
		log_debug("ledger: reschedule: order %s changed since it was"
		    " claimed; not written", before->order_id);
	return n == 0 ? 1 : 0;
}

static int
pgb_recheck(struct ledger *l, const char *order_id, int64_t now)
{
	return update_one(l, P_RECHECK, "recheck", order_id, now, 0);
}

static int
pgb_recheck_state(struct ledger *l, enum order_state state, int64_t now)
{
	return update_one(l, P_RECHECK_STATE, "recheck",
	    order_state_name(state), now, 0);
}

/* ---- events and sinks ---------------------------------------------------- */

static int
pgb_events(struct ledger *l, int64_t after, int limit,
    int (*fn)(int64_t, const char *, void *), void *arg)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;
	int			 i, n = 0;

	p_int(&p, after);
	if (limit < 0)
		p_text(&p, NULL, 0);
	else
		p_int(&p, limit);
	if ((r = pg_run(l, P_EVENTS, "events", &p)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(r); i++) {
		n++;
		if (fn(col_int(r, i, 0), PQgetvalue(r, i, 1), arg) != 0)
			break;
	}
	PQclear(r);
	return n;
}

static int
pgb_cursor_get(struct ledger *l, const char *sink, int64_t *id)
{
	struct pg_params	 p = { .n = 0 };

	p_text(&p, sink, 0);
	return pg_value(l, P_CURSOR_GET, "cursor", &p, id) == -1 ? -1 : 0;
}

static int
pgb_cursor_set(struct ledger *l, const char *sink, int64_t id)
{
	return update_one(l, P_CURSOR_SET, "cursor", sink, id, 1) == -1 ?
	    -1 : 0;
}

static int
pgb_cursors(struct ledger *l, int (*fn)(const char *, int64_t, void *),
    void *arg)
{
	PGresult	*r;
	int		 i, rv = 0;

	if ((r = pg_run(l, P_CURSORS, "cursors", NULL)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(r) && rv == 0; i++)
		rv = fn(PQgetvalue(r, i, 0), col_int(r, i, 1), arg);
	PQclear(r);
	return rv;
}

static void
row_sink(const PGresult *r, int row, struct ledger_sink *k)
{
	col_text(r, row, 0, k->name, sizeof(k->name));
	k->delivered_id = col_int(r, row, 1);
	k->replays = col_int(r, row, 2);
	col_text(r, row, 3, k->state, sizeof(k->state));
	col_text(r, row, 4, k->last_error, sizeof(k->last_error));
	k->error_at = col_int(r, row, 5);
}

static int
pgb_sink_get(struct ledger *l, const char *sink, struct ledger_sink *k)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;
	int			 found = 0;

	memset(k, 0, sizeof(*k));
	util_strlcpy(k->name, sink, sizeof(k->name));
	util_strlcpy(k->state, "ok", sizeof(k->state));
	p_text(&p, sink, 0);
	if ((r = pg_run(l, P_SINK_GET, "sink", &p)) == NULL)
		return -1;
	if (PQntuples(r) > 0) {
		row_sink(r, 0, k);
		found = 1;
	}
	PQclear(r);
	return found;
}

static int
pgb_sinks(struct ledger *l, int (*fn)(const struct ledger_sink *, void *),
    void *arg)
{
	struct ledger_sink	 k;
	PGresult		*r;
	int			 i, rv = 0;

	if ((r = pg_run(l, P_SINKS, "sinks", NULL)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(r) && rv == 0; i++) {
		row_sink(r, i, &k);
		rv = fn(&k, arg);
	}
	PQclear(r);
	return rv;
}

static int
pgb_cursor_advance(struct ledger *l, const char *sink, int64_t replays,
    int64_t id)
{
	struct pg_params	 p = { .n = 0 };
	int			 n;

	if (write_begin_fenced(l) == -1)
		return -1;
	p_text(&p, sink, 0);
	p_int(&p, replays);
	p_int(&p, id);
	n = pg_change(l, P_CURSOR_ADVANCE, "cursor", &p);
	if (write_end(l, n != -1) == -1)
		return -1;
	return n == 1 ? 0 : 1;
}

static int
pgb_sink_state(struct ledger *l, const char *sink, const char *state,
    const char *error, int64_t now)
{
	struct pg_params	 p = { .n = 0 };

	if (write_begin_fenced(l) == -1)
		return -1;
	p_text(&p, sink, 0);
	p_text(&p, state, 0);
	p_text_null(&p, error, LEDGER_SINK_ERR_MAX - 1);
	if (error != NULL)
		p_int(&p, now);
	else
		p_text(&p, NULL, 0);
	return write_end(l, pg_change(l, P_SINK_STATE, "sink state",
	    &p) != -1);
}

static enum ledger_replay_result
pgb_replay(struct ledger *l, const char *sink, int64_t to_id,
    const char *user, int64_t now, int64_t *was)
{
	struct pg_params	 p = { .n = 0 };
	struct ledger_sink	 k;
	enum ledger_replay_result res = LEDGER_REPLAY_ERROR;
	PGresult		*r;
	int64_t			 last = 0;
	int			 ok = 0;

	if (write_begin(l) == -1)
		return LEDGER_REPLAY_ERROR;
	/* The sink's row stays locked to the end: a delivery that would
	 * advance the cursor meanwhile waits, then sees the replay. */
	memset(&k, 0, sizeof(k));
	p_text(&p, sink, 0);
	if ((r = pg_run(l, P_SINK_LOCK, "replay", &p)) == NULL)
		goto end;
	if (PQntuples(r) > 0)
		row_sink(r, 0, &k);
	PQclear(r);
	if (pg_value(l, P_LAST_EVENT, "last event", NULL, &last) == -1)
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
	p_text(&p, sink, 0);
	p_int(&p, to_id);
	if (pg_change(l, P_REPLAY_MOVE, "replay", &p) == -1)
		goto end;
	p_text(&p, sink, 0);
	p_int(&p, now);
	p_text(&p, user, 0);
	p_int(&p, k.delivered_id);
	p_int(&p, to_id);
	if (pg_change(l, P_REPLAY_LOG, "replay log", &p) == -1)
		goto end;
	res = LEDGER_REPLAY_MOVED;
	ok = 1;
end:
	if (write_end(l, ok) == -1)
		return LEDGER_REPLAY_ERROR;
	return res;
}

static int
pgb_last_replay_user(struct ledger *l, const char *sink, char *buf,
    size_t size)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;
	int			 found = 0;

	p_text(&p, sink, 0);
	if ((r = pg_run(l, P_LAST_REPLAY, "replays", &p)) == NULL)
		return -1;
	if (PQntuples(r) > 0) {
		col_text(r, 0, 0, buf, size);
		found = 1;
	}
	PQclear(r);
	return found;
}

static int
pgb_event_since(struct ledger *l, int64_t since_ms, int64_t *id)
{
	struct pg_params	 p = { .n = 0 };

	p_int(&p, since_ms);
	return pg_value(l, P_EVENT_SINCE, "events since", &p, id);
}

static int
pgb_stats(struct ledger *l, int64_t now, struct ledger_stats *s)
{
	struct pg_params	 p = { .n = 0 };
	enum order_state	 state;
	PGresult		*r;
	const char		*type;
	int			 i, j, own_txn = 0;

	/* One snapshot, so the figures agree with each other. */
	if (!l->in_tx) {
		if (pg_exec(l, "BEGIN ISOLATION LEVEL REPEATABLE READ",
		    "stats") == -1)
			return -1;
		own_txn = 1;
	}
	if ((r = pg_run(l, P_STATE_COUNTS, "stats", NULL)) == NULL)
		goto fail;
	for (i = 0; i < PQntuples(r); i++) {
		if (order_state_parse(PQgetvalue(r, i, 0), &state) == 0)
			s->orders[state] = col_int(r, i, 1);
	}
	PQclear(r);
	if ((r = pg_run(l, P_EVENT_TYPE_COUNTS, "stats", NULL)) == NULL)
		goto fail;
	for (i = 0; i < PQntuples(r); i++) {
		type = PQgetvalue(r, i, 0);
		for (j = EV_NONE + 1; j < EV__COUNT; j++)
			if (strcmp(type, order_event_name(
			    (enum event_type)j)) == 0)
				s->events_by_type[j] = col_int(r, i, 1);
	}
	PQclear(r);
	if (pg_value(l, P_EVENT_COUNT, "stats", NULL, &s->events) == -1 ||
	    pg_value(l, P_LAST_EVENT, "stats", NULL, &s->last_event_id) == -1 ||
	    pg_value(l, P_OLDEST_PENDING, "stats", NULL,
	    &s->oldest_pending_ms) == -1)
		goto fail;
	p_int(&p, now);
	if (pg_value(l, P_DUE_COUNT, "stats", &p, &s->due) == -1)
		goto fail;
	p_text(&p, "sku_mismatch", 0);
	if (pg_value(l, P_COUNTER_GET, "stats", &p, &s->sku_mismatches) == -1)
		goto fail;
	if (own_txn)
		(void)pg_exec(l, "COMMIT", "stats");
	return 0;

fail:
	if (own_txn)
		pg_abort(l);
	return -1;
}

/* ---- what the console asks ----------------------------------------------- */

static int
pgb_search(struct ledger *l, const char *q, int limit,
    int (*fn)(const struct order *, void *), void *arg)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;

	p_text(&p, q, 0);
	p_int(&p, limit);
	if ((r = pg_run(l, P_SEARCH, "search", &p)) == NULL)
		return -1;
	return orders_each(l, r, fn, arg);
}

static int
pgb_anomalies(struct ledger *l, int limit,
    int (*fn)(const struct order *, void *), void *arg)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;

	p_int(&p, limit);
	if ((r = pg_run(l, P_ANOMALIES, "anomalies", &p)) == NULL)
		return -1;
	return orders_each(l, r, fn, arg);
}

static int
pgb_transitions(struct ledger *l, const char *order_id,
    int (*fn)(int64_t at, const char *from, const char *to, void *),
    void *arg)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;
	int			 i, rv = 0;

	p_text(&p, order_id, 0);
	if ((r = pg_run(l, P_TRANSITIONS, "transitions", &p)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(r) && rv == 0; i++)
		rv = fn(col_int(r, i, 0), PQgetisnull(r, i, 1) ? NULL :
		    PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), arg);
	PQclear(r);
	return rv;
}

static int
pgb_order_events(struct ledger *l, const char *order_id,
    int (*fn)(int64_t id, const char *payload, void *), void *arg)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;
	int			 i, rv = 0;

	p_text(&p, order_id, 0);
	if ((r = pg_run(l, P_ORDER_EVENTS, "order events", &p)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(r) && rv == 0; i++)
		rv = fn(col_int(r, i, 0), PQgetvalue(r, i, 1), arg);
	PQclear(r);
	return rv;
}

static int
pgb_held(struct ledger *l,
    int (*fn)(const struct ledger_held *, void *), void *arg)
{
	struct ledger_held	 h;
	PGresult		*r;
	int			 i, rv = 0;

	if ((r = pg_run(l, P_HELD, "held", NULL)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(r) && rv == 0; i++) {
		memset(&h, 0, sizeof(h));
		col_text(r, i, 0, h.toss_status, sizeof(h.toss_status));
		h.count = col_int(r, i, 1);
		h.first_seen = col_int(r, i, 2);
		h.last_seen = col_int(r, i, 3);
		col_text(r, i, 4, h.example, sizeof(h.example));
		rv = fn(&h, arg);
	}
	PQclear(r);
	return rv;
}

static int
pgb_history(struct ledger *l, int64_t since, int64_t bucket_ms,
    int64_t *counts, int nbuckets)
{
	struct pg_params	 p = { .n = 0 };
	PGresult		*r;
	int64_t			 b;
	int			 i;

	p_int(&p, since);
	p_int(&p, bucket_ms);
	if ((r = pg_run(l, P_HISTORY, "history", &p)) == NULL)
		return -1;
	for (i = 0; i < PQntuples(r); i++) {
		b = col_int(r, i, 0);
		if (b >= 0 && b < nbuckets)
			counts[b] = col_int(r, i, 1);
	}
	PQclear(r);
	return 0;
}

/* ---- copying a ledger ---------------------------------------------------- */

/* How each table's rows come out in a stable order: as written. */
static const char *const pg_dump_order[LT__COUNT] = {
	[LT_ORDERS] = "order_id",
	[LT_EVENTS] = "id",
	[LT_TRANSITIONS] = "seq",
	[LT_SINKS] = "name",
	[LT_REPLAYS] = "seq",
	[LT_COUNTERS] = "name",
};

/* Runs SQL text with text parameters (copying runs once per process: no
 * statement is kept). Returns its result (caller clears) or NULL (error
 * kept). */
static PGresult *
pg_run_once(struct ledger *l, const char *sql, const char *what, int n,
    const char *const *v)
{
	PGresult	*res;
	int		 st;

	if (pg_usable(l) == -1)
		return NULL;
	res = pg_wait(l, PQsendQueryParams(pg(l)->conn, sql, n, NULL, v, NULL,
	    NULL, 0));
	st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_error(l, what, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

static int
pgb_dump(struct ledger *l, enum ledger_table t,
    int (*fn)(const struct ledger_row *, void *), void *arg)
{
	struct ledger_row	 row;
	PGresult		*res;
	char			*sql;
	int			 i, j, r = 0;

	sql = xasprintf("SELECT %s FROM %s ORDER BY %s", ledger_table_cols(t),
	    ledger_table_name(t), pg_dump_order[t]);
	res = pg_run_once(l, sql, ledger_table_name(t), 0, NULL);
	free(sql);
	if (res == NULL)
		return -1;
	row.n = ledger_table_ncols(t);
	for (i = 0; i < PQntuples(res) && r == 0; i++) {
		for (j = 0; j < row.n; j++)
			row.v[j] = PQgetisnull(res, i, j) ? NULL :
			    PQgetvalue(res, i, j);
		r = fn(&row, arg);
	}
	PQclear(res);
	return r;
}

static int
pgb_count(struct ledger *l, enum ledger_table t, int64_t *n)
{
	PGresult	*res;
	char		*sql;

	sql = xasprintf("SELECT count(*) FROM %s", ledger_table_name(t));
	res = pg_run_once(l, sql, ledger_table_name(t), 0, NULL);
	free(sql);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		ledger_own_error(l, "count: %s gave no row",
		    ledger_table_name(t));
		return -1;
	}
	*n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return 0;
}

/* An event row also moves the counter the next ids are taken from. */
static int
pgb_load(struct ledger *l, enum ledger_table t, const struct ledger_row *row)
{
	PGresult	*res;
	char		*sql, params[LEDGER_COLS_MAX * 5];
	size_t		 len = 0;
	int		 i;

	for (i = 0; i < row->n; i++)
		len += (size_t)snprintf(params + len, sizeof(params) - len,
		    "%s$%d", i > 0 ? "," : "", i + 1);
	sql = xasprintf("INSERT INTO %s (%s) VALUES (%s)%s",
	    ledger_table_name(t), ledger_table_cols(t), params,
	    ledger_table_on_conflict(t));
	res = pg_run_once(l, sql, ledger_table_name(t), row->n, row->v);
	free(sql);
	if (res == NULL)
		return -1;
	PQclear(res);
	if (t != LT_EVENTS)
		return 0;
	res = pg_run_once(l, "UPDATE event_counter SET last ="
	    " GREATEST(last, $1::bigint)", "event counter", 1, row->v);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

const struct ledger_ops ledger_pg_ops = {
	.own_errcode = PG_ERR_SQL,
	.claims = pgb_claims,
	.version = pgb_version,
	.open = pgb_open,
	.close = pgb_close,
	.errmsg = pgb_errmsg,
	.quick_check = pgb_quick_check,
	.begin = pgb_begin,
	.commit = pgb_commit,
	.rollback = pgb_rollback,
	.add = pgb_add,
	.get = pgb_get,
	.foreach = pgb_foreach,
	.claim_due = pgb_claim_due,
	.next_due = pgb_next_due,
	.apply = pgb_apply,
	.reschedule = pgb_reschedule,
	.recheck = pgb_recheck,
	.recheck_state = pgb_recheck_state,
	.events = pgb_events,
	.cursor_get = pgb_cursor_get,
	.cursor_set = pgb_cursor_set,
	.cursors = pgb_cursors,
	.sink_get = pgb_sink_get,
	.sinks = pgb_sinks,
	.cursor_advance = pgb_cursor_advance,
	.sink_state = pgb_sink_state,
	.replay = pgb_replay,
	.last_replay_user = pgb_last_replay_user,
	.event_since = pgb_event_since,
	.stats = pgb_stats,
	.search = pgb_search,
	.anomalies = pgb_anomalies,
	.transitions = pgb_transitions,
	.order_events = pgb_order_events,
	.held = pgb_held,
	.history = pgb_history,
	.dump = pgb_dump,
	.load = pgb_load,
	.count = pgb_count,
};
