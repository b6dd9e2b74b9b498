/* What a ledger backend implements (struct ledger_ops) and what src/ledger.c
 * gives it back: the handle's common part and the error keeping. Only
 * src/ledger*.c include this; everyone else sees src/ledger.h. */
#ifndef RECONCILED_LEDGER_BACKEND_H
#define RECONCILED_LEDGER_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ledger.h"

#define LEDGER_ERR_MAX	512

/* One backend. ledger.c has already cleared the kept error and validated
 * the arguments it documents in ledger.h (lengths, states, event types)
 * before any of these runs, and keeps in_tx for begin/commit/rollback.
 * Each returns what the ledger_ function of the same name returns. */
struct ledger_ops {
	int		 own_errcode;	/* kept for the ledger's own findings */
	/* 1 when `where` (a path or a URL from the configuration) is this
	 * backend's to open. */
	int		 (*claims)(const char *where);
	/* The library and its version ("SQLite 3.40.1"), for --version. */
	const char	*(*version)(void);
	/* Sets l->be, or *err (caller frees); l->where is set. On failure
	 * close is called with whatever l->be holds. */
	int		 (*open)(struct ledger *l, const char *where, int readonly,
			    char **err);
	void		 (*close)(struct ledger *l);
	/* The backend's own words for the last failure when none was kept. */
	const char	*(*errmsg)(struct ledger *l);
	int		 (*quick_check)(struct ledger *l, char **err);

	int		 (*begin)(struct ledger *l);
	int		 (*commit)(struct ledger *l);
	void		 (*rollback)(struct ledger *l);

	int		 (*add)(struct ledger *l, const char *order_id,
			    const char *user_key, const char *sku,
			    const char *ref, int64_t now,
			    enum ledger_add_result *res);
	int		 (*get)(struct ledger *l, const char *order_id,
			    struct order *out);
	int		 (*foreach)(struct ledger *l, int st,
			    int (*fn)(const struct order *, void *), void *arg);
	int		 (*claim_due)(struct ledger *l, int64_t now,
			    int64_t lease_ms, struct order *out, int max);
	int		 (*next_due)(struct ledger *l, int64_t *at);
	int		 (*apply)(struct ledger *l, const struct order *before,
			    const struct ledger_update *u, int64_t now);
	int		 (*reschedule)(struct ledger *l,
			    const struct order *before, int64_t at);
	int		 (*recheck)(struct ledger *l, const char *order_id,
			    int64_t now);
	int		 (*recheck_state)(struct ledger *l, enum order_state st,
			    int64_t now);
	int		 (*events)(struct ledger *l, int64_t after, int limit,
			    int (*fn)(int64_t, const char *, void *), void *arg);
	int		 (*cursor_get)(struct ledger *l, const char *sink,
			    int64_t *id);
	int		 (*cursor_set)(struct ledger *l, const char *sink,
			    int64_t id);
	int		 (*cursors)(struct ledger *l,
			    int (*fn)(const char *, int64_t, void *), void *arg);
	int		 (*sink_get)(struct ledger *l, const char *sink,
			    struct ledger_sink *k);
	int		 (*sinks)(struct ledger *l,
			    int (*fn)(const struct ledger_sink *, void *),
			    void *arg);
	int		 (*cursor_advance)(struct ledger *l, const char *sink,
			    int64_t replays, int64_t id);
	int		 (*sink_state)(struct ledger *l, const char *sink,
			    const char *state, const char *error, int64_t now);
	enum ledger_replay_result (*replay)(struct ledger *l, const char *sink,
			    int64_t to_id, const char *user, int64_t now,
			    int64_t *was);
	int		 (*last_replay_user)(struct ledger *l, const char *sink,
			    char *buf, size_t size);
	int		 (*event_since)(struct ledger *l, int64_t since_ms,
			    int64_t *id);
	int		 (*stats)(struct ledger *l, int64_t now,
			    struct ledger_stats *s);
	int		 (*search)(struct ledger *l, const char *q, int limit,
			    int (*fn)(const struct order *, void *), void *arg);
	int		 (*anomalies)(struct ledger *l, int limit,
			    int (*fn)(const struct order *, void *), void *arg);
	int		 (*transitions)(struct ledger *l, const char *order_id,
			    int (*fn)(int64_t, const char *, const char *,
			    void *), void *arg);
	int		 (*order_events)(struct ledger *l, const char *order_id,
			    int (*fn)(int64_t, const char *, void *), void *arg);
	int		 (*held)(struct ledger *l,
			    int (*fn)(const struct ledger_held *, void *),
			    void *arg);
	int		 (*history)(struct ledger *l, int64_t since,
			    int64_t bucket_ms, int64_t *counts, int nbuckets);
	int		 (*dump)(struct ledger *l, enum ledger_table t,
			    int (*fn)(const struct ledger_row *, void *),
			    void *arg);
	int		 (*load)(struct ledger *l, enum ledger_table t,
			    const struct ledger_row *row);
	int		 (*count)(struct ledger *l, enum ledger_table t,
			    int64_t *n);
};

/* The handle: the part every backend shares, and the backend's own state
 * in be. */
/* What an insert of a copied row of table t adds on a conflict. */
const char	*ledger_table_on_conflict(enum ledger_table);

struct ledger {
	const struct ledger_ops *ops;
	void		*be;
	char		*where;		/* what to name it by in messages: a
					 * path, or a URL without its password */
	int		 readonly;
	int		 in_tx;		/* inside ledger_begin() */
	int64_t		 fence;		/* leader epoch the leader's writes
					 * require; 0: none (ledger_set_fence) */

	/* Why the current (or last) call failed; see ledger_set_error(). */
	int		 errcode;	/* the backend's code; 0: nothing kept */
	int		 fenced;	/* it failed on the fence */
	char		 errmsg[LEDGER_ERR_MAX];
	char		*damage;	/* the backend's reason; NULL while sound */
	void		 (*damaged_cb)(void *);
	void		*damaged_arg;
};

extern const struct ledger_ops ledger_sqlite_ops;
#ifdef HAVE_LIBPQ
extern const struct ledger_ops ledger_pg_ops;
#endif

/* Keeps why the current call failed, for ledger_errmsg(); code is the
 * backend's (nonzero). The first cause wins: the rollback that follows a
 * failed statement is not the news. */
void		 ledger_set_error(struct ledger *, int code, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
/* A failure that is the ledger's own finding, not the database's: logged,
 * and kept like one (with the backend's own_errcode). */
void		 ledger_own_error(struct ledger *, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));
/* Notes that the database is damaged (once): whoever set a callback says
 * so; without one (reconcilectl) the ledger says it. */
void		 ledger_note_damage(struct ledger *, const char *why);
/* The length of the longest prefix of s (len bytes) of at most max bytes
 * that does not end inside a UTF-8 sequence. */
size_t		 ledger_utf8_prefix(const char *s, size_t len, size_t max);
/* The outbox key of an order's event: "<orderId>:<type>" (caller frees).
 * One event per order and type, ever. */
char		*ledger_event_key(const char *order_id, enum event_type ev);

#endif
