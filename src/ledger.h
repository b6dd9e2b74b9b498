/* The ledger: every order the daemon was told about, the events it emitted
 * (the outbox), the audit trail of status changes and the sinks' cursors.
 * One interface whatever the backend (src/ledger-sqlite.c: one SQLite
 * file); src/ledger.c picks the backend when it opens. Every write that
 * gates money is a committed transaction. */
#ifndef RECONCILED_LEDGER_H
#define RECONCILED_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "order.h"

/* What one poll result changes; filled by policy_decide(), written by
 * ledger_apply(). */
struct ledger_update {
	enum order_state new_state;
	int		 status_seen;	/* an answer with a status arrived */
	const char	*toss_status;	/* when status_seen */
	const char	*reason;	/* when status_seen; may be "" */
	const char	*determined_at;	/* when status_seen; may be "" */
	const char	*sku;		/* non-empty: Toss named it; the order's
					 * sku becomes it, confirmed */
	int		 sku_mismatch;	/* Toss's sku contradicts the intake's
					 * or its own earlier one */
	int64_t		 late_answers;	/* the order's new count */
	int		 count_poll;	/* polls += 1 */
	int		 count_error;	/* errors += 1 */
	int64_t		 granted_at;	/* set when > 0 */
	int64_t		 next_poll_at;	/* 0 = nothing left to do */
	enum event_type	 event;		/* EV_NONE or the event to emit */
	int		 refund_after_grant; /* refund events: "granted" */
};

enum ledger_add_result {
	LEDGER_ADDED,		/* new order */
	LEDGER_KNOWN,		/* same orderId and userKey: not an error */
	LEDGER_CONFLICT		/* same orderId, another userKey: refused */
};

struct ledger_stats {
	int64_t		 orders[ST__COUNT];
	int64_t		 events;
	int64_t		 events_by_type[EV__COUNT];	/* [EV_NONE] unused */
	int64_t		 last_event_id;
	int64_t		 oldest_pending_ms;	/* added_at of oldest pending, 0 = none */
	int64_t		 due;			/* next_poll_at <= now */
	int64_t		 sku_mismatches;	/* orders whose sku Toss
						 * contradicted, all time */
};

struct ledger;

/* Opens `where`, a path (SQLite) or a postgresql:// URL (PostgreSQL, in
 * builds with it), and migrates. For a path: creates it with mode 0600 if
 * absent, unless readonly.
 * Refuses, without writing to it, a file that is not an SQLite database,
 * one that is not a ledger (has tables but no ledger schema), one from a
 * newer schema and one whose schema SQLite finds damaged; refuses a ledger
 * that lacks a table, index or trigger of this build's schema. Only the
 * schema is read: damage in data pages shows later (ledger_damaged(),
 * ledger_quick_check()). Returns NULL and sets *err (caller frees). */
struct ledger	*ledger_open(const char *path, int readonly, char **err);
void		 ledger_close(struct ledger *);
/* The path it was opened with, or its URL without the password. */
const char	*ledger_path(struct ledger *);
/* How to name a path or URL in messages: the URL's password masked
 * (caller frees). */
char		*ledger_name(const char *where);
/* The libraries of this build's backends with their versions ("SQLite
 * 3.40.1", "libpq 15.2"), separated by sep, into buf. */
void		 ledger_versions(char *buf, size_t size, const char *sep);
/* Why the last failed ledger call failed (for log lines): the first cause
 * the database or the ledger gave, kept across the rollback that followed
 * it. */
const char	*ledger_errmsg(struct ledger *);
/* The backend's code of that cause, 0 if none was kept: SQLite's extended
 * result code; on PostgreSQL 1 (a statement refused), 2 (no connection,
 * or no answer in time) or 3 (fenced, see ledger_set_fence()). */
int		 ledger_errcode(struct ledger *);

/* Fencing, for several instances on one PostgreSQL ledger. epoch is the
 * leader epoch this instance won (leader.epoch after its bump), 0 for no
 * check (the default). While it is set, the writes only a leader makes
 * (ledger_claim_due, ledger_apply, ledger_reschedule, ledger_cursor_set,
 * ledger_cursor_advance, ledger_sink_state) first read the leader row
 * with FOR SHARE in their transaction and fail (-1) unless its epoch is
 * still this one: a new leader's bump waits for such a write in flight,
 * and every later write of the old leader fails. Intake (ledger_add,
 * ledger_recheck*, ledger_replay) is never fenced. SQLite ignores it (one
 * file, one writer). */
void		 ledger_set_fence(struct ledger *, int64_t epoch);
/* 1 when the current (or last) call failed because the leader epoch had
 * passed the fence, 0 otherwise. */
int		 ledger_fenced(struct ledger *);

/* NULL while the file is sound; once any statement found it damaged
 * (SQLITE_CORRUPT, SQLITE_NOTADB), SQLite's reason, for good: no retry
 * can help. */
const char	*ledger_damaged(struct ledger *);
/* fn(arg) is called once, from inside the ledger call that first finds
 * the file damaged; it must only schedule work (the call is still on the
 * stack), and takes over saying so (without it the ledger logs it). */
void		 ledger_set_damaged_cb(struct ledger *, void (*fn)(void *),
		    void *arg);
/* Runs PRAGMA quick_check, which reads the whole file (time grows with
 * the ledger: for `reconciled -n`, not for every open). Returns 0 when
 * the file is sound; -1 and *err (caller frees) otherwise, "ledger PATH
 * is damaged: <first problem SQLite names>" for damage. On PostgreSQL
 * (which checks pages as it reads them) it checks that the counters agree
 * with the rows. */
int		 ledger_quick_check(struct ledger *, char **err);

/* Batch transactions. Every function below that writes may be called
 * inside one; outside one each runs in its own transaction. */
int		 ledger_begin(struct ledger *);
int		 ledger_commit(struct ledger *);
void		 ledger_rollback(struct ledger *);

/* Adds one order, due at once (next_poll_at = now). sku and ref may be NULL.
 * Returns 0 and sets *res, or -1 on a database error. */
int		 ledger_add(struct ledger *, const char *order_id, const char *user_key,
		    const char *sku, const char *ref, int64_t now, enum ledger_add_result *res);

/* Looks one order up: 1 found, 0 not found, -1 error. */
int		 ledger_get(struct ledger *, const char *order_id, struct order *out);

/* Calls fn for each order (in state st, or all when st < 0), ordered by
 * added_at, order_id. Stops early and returns fn's value if it is nonzero;
 * -1 on a database error; 0 when all were visited. */
int		 ledger_foreach(struct ledger *, int st,
		    int (*fn)(const struct order *, void *), void *arg);

/* Claims up to max orders due at now into out[]: pending and held orders
 * first (oldest due first), then the rest (refund re-checks). Each claimed
 * order's next_poll_at moves to now + lease_ms in the same statement, so a
 * crash only delays it. Returns the number claimed, or -1. */
int		 ledger_claim_due(struct ledger *, int64_t now, int64_t lease_ms,
		    struct order *out, int max);

/* The earliest next_poll_at of any order: 1 and *at set, 0 none, -1 error. */
int		 ledger_next_due(struct ledger *, int64_t *at);

/* Writes one poll result: the order row, a transitions row when the status
 * changed, an event row (ignored if its key exists: one event per order and
 * type, ever). `before` is the order as claimed. Returns 0, or -1 on an
 * error. On PostgreSQL the row is written only while it is still as
 * claimed (same state and next_poll_at, the claim's lease end, which
 * another claim or a recheck moves); otherwise nothing is written (no
 * transition, event or counter) and it returns 1: stale, the order
 * changed since it was claimed, and the answer is to be asked again.
 * SQLite (one writer) never returns 1. */
int		 ledger_apply(struct ledger *, const struct order *before,
		    const struct ledger_update *, int64_t now);

/* Moves an order's next poll to at without counting anything (pauses).
 * `before` is the order as claimed. Returns 0, -1 on an error, or on
 * PostgreSQL 1 when the order is no longer as claimed, as in
 * ledger_apply(), or is unknown (nothing is written either way). */
int		 ledger_reschedule(struct ledger *, const struct order *before,
		    int64_t at);

/* Makes one order, or every order in a state, due at now.
 * Returns the number of orders changed, or -1. */
int		 ledger_recheck(struct ledger *, const char *order_id, int64_t now);
int		 ledger_recheck_state(struct ledger *, enum order_state, int64_t now);

/* Calls fn(id, payload) for events with id > after, in id order, at most
 * limit of them. Returns the number visited, or -1. */
int		 ledger_events(struct ledger *, int64_t after, int limit,
		    int (*fn)(int64_t id, const char *payload, void *), void *arg);

/* Sink cursors: the id of the last event a sink delivered (0 if new). */
int		 ledger_cursor_get(struct ledger *, const char *sink, int64_t *id);
int		 ledger_cursor_set(struct ledger *, const char *sink, int64_t id);
/* Calls fn(name, delivered_id) for each sink. */
int		 ledger_cursors(struct ledger *,
		    int (*fn)(const char *name, int64_t id, void *), void *arg);

/* A sink's row: its cursor, how many replays moved it back, its state
 * ("ok", "retrying" after a failure, "off" after a 410 Gone) and its last
 * error ("" none) with when it happened (unix ms, 0 none). */
#define LEDGER_SINK_NAME_MAX	32
#define LEDGER_SINK_ERR_MAX	512
struct ledger_sink {
	char		 name[LEDGER_SINK_NAME_MAX];
	int64_t		 delivered_id;
	int64_t		 replays;
	char		 state[16];
	char		 last_error[LEDGER_SINK_ERR_MAX];
	int64_t		 error_at;
};

/* Reads one sink's row into *k. Returns 1, 0 when it has none yet (then
 * *k is a new sink: cursor 0, "ok"), or -1. */
int		 ledger_sink_get(struct ledger *, const char *sink,
		    struct ledger_sink *k);
/* Calls fn for each sink row, by name. */
int		 ledger_sinks(struct ledger *,
		    int (*fn)(const struct ledger_sink *, void *), void *arg);
/* Moves a sink's cursor to id, but only if its replay count is still
 * replays (what the sink last read): a replay made meanwhile wins. Returns
 * 0 when moved, 1 when a replay came between (re-read with
 * ledger_sink_get), -1 on error. */
int		 ledger_cursor_advance(struct ledger *, const char *sink,
		    int64_t replays, int64_t id);
/* Stores a sink's state; error (NULL: keep the last one) is stamped now. */
int		 ledger_sink_state(struct ledger *, const char *sink,
		    const char *state, const char *error, int64_t now);

enum ledger_replay_result {
	LEDGER_REPLAY_ERROR = -1,
	LEDGER_REPLAY_MOVED,	/* the cursor is to_id; the replay is logged */
	LEDGER_REPLAY_PAST_END,	/* no event after to_id: nothing to send again */
	LEDGER_REPLAY_AHEAD	/* to_id is past the cursor: it would skip */
};
/* Moves a sink's cursor back to to_id (events after it are delivered
 * again), bumps its replay count and logs who did it, in one transaction.
 * *was is the cursor before. */
enum ledger_replay_result ledger_replay(struct ledger *, const char *sink,
		    int64_t to_id, const char *user, int64_t now, int64_t *was);
/* The operator of the sink's latest replay into buf. Returns 1, 0 when it
 * has none, or -1. */
int		 ledger_last_replay_user(struct ledger *, const char *sink,
		    char *buf, size_t size);
/* The id of the first event created at or after since_ms (unix ms).
 * Returns 1 with *id set, 0 when there is none, or -1. */
int		 ledger_event_since(struct ledger *, int64_t since_ms, int64_t *id);

int		 ledger_stats(struct ledger *, int64_t now, struct ledger_stats *);

/* What the console asks (also GET /v1/search, /v1/attention, /v1/history
 * and /v1/orders/{id}/history). Each returns 0, fn's nonzero value when it
 * stopped early, or -1 on a database error. */

/* Orders whose orderId, userKey or ref is q, newest first, at most limit. */
int		 ledger_search(struct ledger *, const char *q, int limit,
		    int (*fn)(const struct order *, void *), void *arg);
/* Orders that have an anomaly event, last updated first, at most limit. */
int		 ledger_anomalies(struct ledger *, int limit,
		    int (*fn)(const struct order *, void *), void *arg);
/* An order's status changes, oldest first; from is NULL for the first. */
int		 ledger_transitions(struct ledger *, const char *order_id,
		    int (*fn)(int64_t at, const char *from, const char *to,
		    void *), void *arg);
/* An order's events, in id order. */
int		 ledger_order_events(struct ledger *, const char *order_id,
		    int (*fn)(int64_t id, const char *payload, void *), void *arg);
/* Held orders grouped by the status Toss answered, largest group first:
 * when the status was first seen on one of them, the last update of any,
 * and one of them (the least orderId). */
struct ledger_held {
	char		 toss_status[STATUS_MAX + 1];
	int64_t		 count;
	int64_t		 first_seen;
	int64_t		 last_seen;
	char		 example[ORDER_ID_MAX + 1];
};
int		 ledger_held(struct ledger *,
		    int (*fn)(const struct ledger_held *, void *), void *arg);
/* Events written since `since` (unix ms), counted in nbuckets buckets of
 * bucket_ms each: counts[0] starts at since. */
int		 ledger_history(struct ledger *, int64_t since, int64_t bucket_ms,
		    int64_t *counts, int nbuckets);

/* Copying a whole ledger (reconcilectl migrate): every row of each table
 * that holds data, column by column as text (NULL for NULL), in the same
 * columns whatever the backend. The per-state and per-type counts follow
 * the rows (triggers); the counters are set, not added. */
enum ledger_table {
	LT_ORDERS,		/* before the rows that name them */
	LT_EVENTS,
	LT_TRANSITIONS,
	LT_SINKS,
	LT_REPLAYS,
	LT_COUNTERS,
	LT__COUNT
};
#define LEDGER_COLS_MAX	17
struct ledger_row {
	int		 n;
	const char	*v[LEDGER_COLS_MAX];
};
/* The table's name and its columns, comma-separated, in row order. */
const char	*ledger_table_name(enum ledger_table);
const char	*ledger_table_cols(enum ledger_table);
int		 ledger_table_ncols(enum ledger_table);
/* Calls fn for each row of the table, in a stable order (events by id,
 * transitions and replays as written). Returns 0, fn's nonzero value when
 * it stopped early, or -1. */
int		 ledger_dump(struct ledger *, enum ledger_table,
		    int (*fn)(const struct ledger_row *, void *), void *arg);
/* How many rows the table has: 0 and *n set, or -1. */
int		 ledger_count(struct ledger *, enum ledger_table, int64_t *n);
/* Inserts one row as ledger_dump() gives it; events keep their ids and
 * the next event written gets the id after the largest. Meant inside
 * ledger_begin() on an empty ledger. Returns 0 or -1. */
int		 ledger_load(struct ledger *, enum ledger_table,
		    const struct ledger_row *);

#endif
