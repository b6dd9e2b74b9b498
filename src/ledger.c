/* The ledger's one interface (src/ledger.h) over its backends: picks the
 * backend at open time, keeps the cause of the last failure, validates the
 * arguments every backend would have to, and dispatches through the
 * backend's struct ledger_ops. The SQL lives in src/ledger-<backend>.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger-backend.h"
#include "log.h"
#include "util.h"

/* The backends of this build, asked in order which one a configured path
 * or URL is for. */
static const struct ledger_ops *const ledger_backends[] = {
	&ledger_sqlite_ops,
#ifdef HAVE_LIBPQ
	&ledger_pg_ops,
#endif
};

/* ---- for the backends ---------------------------------------------------- */

void
ledger_set_error(struct ledger *l, int code, const char *fmt, ...)
{
	va_list	 ap;

	if (l->errcode != 0)
		return;
	l->errcode = code != 0 ? code : l->ops->own_errcode;
	va_start(ap, fmt);
	(void)vsnprintf(l->errmsg, sizeof(l->errmsg), fmt, ap);
	va_end(ap);
}

void
ledger_own_error(struct ledger *l, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[LEDGER_ERR_MAX];

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("ledger: %s", msg);
	ledger_set_error(l, l->ops->own_errcode, "%s", msg);
}

void
ledger_note_damage(struct ledger *l, const char *why)
{
	if (l->damage != NULL)
		return;
	l->damage = xstrdup(why);
	if (l->damaged_cb != NULL)
		l->damaged_cb(l->damaged_arg);
	else
		log_warnx("ledger %s is damaged: %s; restore it from a backup,"
		    " `reconciled -n -n` checks a file", l->where, why);
}

size_t
ledger_utf8_prefix(const char *s, size_t len, size_t max)
{
	size_t	 n;

	if (len <= max)
		return len;
	n = max;
	/* Step back over continuation bytes to the cut character's start. */
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

char *
ledger_event_key(const char *order_id, enum event_type ev)
{
	return xasprintf("%s:%s", order_id, order_event_name(ev));
}

/* Forgets the cause kept by an earlier call; every public function that
 * can fail starts with it. */
static void
err_clear(struct ledger *l)
{
	l->errcode = 0;
	l->errmsg[0] = '\0';
	l->fenced = 0;
}

/* ---- the handle ---------------------------------------------------------- */

/* A URL ("scheme://...") has its password in its user info
 * ("user:password@") or in a "password=" parameter: each becomes "***".
 * Anything else is a path, named as it is. */
char *
ledger_name(const char *where)
{
	const char	*s, *auth, *end, *at, *colon, *q;
	char		*out;
	size_t		 len, o = 0;

	s = where + strspn(where, "abcdefghijklmnopqrstuvwxyz");
	if (s == where || strncmp(s, "://", 3) != 0)
		return xstrdup(where);
	/* Masking adds at most 3 bytes per "password=" (9 bytes) or
	 * user info (at least ":@"). */
	len = strlen(where);
	out = xcalloc(2, len + 8);
	auth = s + 3;
	end = auth + strcspn(auth, "/?#");
	at = NULL;
	for (q = auth; q < end; q++)
		if (*q == '@')
			at = q;
	colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	if (colon != NULL) {
		memcpy(out, where, (size_t)(colon + 1 - where));
		o = (size_t)(colon + 1 - where);
		memcpy(out + o, "***", 3);
		o += 3;
		s = at;
	} else
		s = where;
	/* The rest, with password=... parameters masked. */
	while (*s != '\0') {
		if ((s == where || s[-1] == '?' || s[-1] == '&') &&
		    strncmp(s, "password=", 9) == 0) {
			memcpy(out + o, "password=***", 12);
			o += 12;
			s += 9 + strcspn(s + 9, "&#");
			continue;
		}
		out[o++] = *s++;
	}
	out[o] = '\0';
	return out;
}

struct ledger *
ledger_open(const char *where, int readonly, char **err)
{
	const struct ledger_ops	*ops = NULL;
	struct ledger		*l;
	size_t			 i;

	*err = NULL;
	for (i = 0; i < sizeof(ledger_backends) / sizeof(ledger_backends[0]);
	    i++) {
		if (ledger_backends[i]->claims(where)) {
			ops = ledger_backends[i];
			break;
		}
	}
	if (ops == NULL) {
		/* where may hold a password: not repeated. */
		*err = xstrdup("this build has no ledger backend for that"
		    " URL");
		return NULL;
	}
	l = xcalloc(1, sizeof(*l));
	l->ops = ops;
	l->where = ledger_name(where);
	l->readonly = readonly;
	if (ops->open(l, where, readonly, err) == -1) {
		if (*err == NULL)
			*err = xasprintf("%s: cannot open the ledger",
			    l->where);
		ledger_close(l);
		return NULL;
	}
	return l;
}

void
ledger_close(struct ledger *l)
{
	if (l == NULL)
		return;
	if (l->in_tx) {
		log_warnx("ledger: closing with an open transaction; rolling"
		    " it back");
		ledger_rollback(l);
	}
	l->ops->close(l);
	free(l->damage);
	free(l->where);
	free(l);
}

const char *
ledger_path(struct ledger *l)
{
	return l->where;
}

const char *
ledger_errmsg(struct ledger *l)
{
	return l->errcode != 0 ? l->errmsg : l->ops->errmsg(l);
}

int
ledger_errcode(struct ledger *l)
{
	return l->errcode;
}

void
ledger_set_fence(struct ledger *l, int64_t epoch)
{
	l->fence = epoch;
}

int
ledger_fenced(struct ledger *l)
{
	return l->fenced;
}

const char *
ledger_damaged(struct ledger *l)
{
	return l->damage;
}

void
ledger_set_damaged_cb(struct ledger *l, void (*fn)(void *), void *arg)
{
	l->damaged_cb = fn;
	l->damaged_arg = arg;
}

int
ledger_quick_check(struct ledger *l, char **err)
{
	*err = NULL;
	err_clear(l);
	return l->ops->quick_check(l, err);
}

/* ---- transactions -------------------------------------------------------- */

int
ledger_begin(struct ledger *l)
{
	err_clear(l);
	if (l->in_tx) {
		ledger_own_error(l, "begin: a transaction is already open");
		return -1;
	}
	if (l->ops->begin(l) == -1)
		return -1;
	l->in_tx = 1;
	return 0;
}

int
ledger_commit(struct ledger *l)
{
	err_clear(l);
	if (!l->in_tx) {
		ledger_own_error(l, "commit: no transaction is open");
		return -1;
	}
	l->in_tx = 0;
	return l->ops->commit(l);
}

void
ledger_rollback(struct ledger *l)
{
	l->in_tx = 0;
	l->ops->rollback(l);
}

/* ---- orders -------------------------------------------------------------- */

int
ledger_add(struct ledger *l, const char *order_id, const char *user_key,
    const char *sku, const char *ref, int64_t now,
    enum ledger_add_result *res)
{
	err_clear(l);
	if (order_id == NULL || *order_id == '\0' ||
	    strlen(order_id) > ORDER_ID_MAX || user_key == NULL ||
	    *user_key == '\0' || strlen(user_key) > USER_KEY_MAX ||
	    (sku != NULL && strlen(sku) > SKU_MAX) ||
	    (ref != NULL && strlen(ref) > REF_MAX)) {
		ledger_own_error(l, "add: order id, user key, sku or ref empty"
		    " or too long");
		return -1;
	}
	return l->ops->add(l, order_id, user_key, sku, ref, now, res);
}

int
ledger_get(struct ledger *l, const char *order_id, struct order *out)
{
	err_clear(l);
	return l->ops->get(l, order_id, out);
}

/* fn must not call ledger_foreach() itself (the statement is in use). */
int
ledger_foreach(struct ledger *l, int state,
    int (*fn)(const struct order *, void *), void *arg)
{
	err_clear(l);
	if (state >= ST__COUNT) {
		ledger_own_error(l, "foreach: bad state %d", state);
		return -1;
	}
	return l->ops->foreach(l, state, fn, arg);
}

int
ledger_claim_due(struct ledger *l, int64_t now, int64_t lease_ms,
    struct order *out, int max)
{
	err_clear(l);
	if (max <= 0)
		return 0;
	return l->ops->claim_due(l, now, lease_ms, out, max);
}

int
ledger_next_due(struct ledger *l, int64_t *at)
{
	err_clear(l);
	return l->ops->next_due(l, at);
}

int
ledger_apply(struct ledger *l, const struct order *before,
    const struct ledger_update *u, int64_t now)
{
	err_clear(l);
	if ((int)u->new_state < 0 || u->new_state >= ST__COUNT ||
	    (int)u->event < 0 || u->event >= EV__COUNT) {
		ledger_own_error(l, "apply: order %s: bad state %d or event %d",
		    before->order_id, (int)u->new_state, (int)u->event);
		return -1;
	}
	return l->ops->apply(l, before, u, now);
}

int
ledger_reschedule(struct ledger *l, const struct order *before, int64_t at)
{
	err_clear(l);
	return l->ops->reschedule(l, before, at);
}

int
ledger_recheck(struct ledger *l, const char *order_id, int64_t now)
{
	err_clear(l);
	return l->ops->recheck(l, order_id, now);
}

int
ledger_recheck_state(struct ledger *l, enum order_state state, int64_t now)
{
	err_clear(l);
	if ((int)state < 0 || state >= ST__COUNT) {
		ledger_own_error(l, "recheck: bad state %d", (int)state);
		return -1;
	}
	return l->ops->recheck_state(l, state, now);
}

/* ---- events and sinks ---------------------------------------------------- */

/* limit < 0 means no limit. fn returning nonzero stops the walk; the
 * event it was given counts as visited. */
int
ledger_events(struct ledger *l, int64_t after, int limit,
    int (*fn)(int64_t, const char *, void *), void *arg)
{
	err_clear(l);
	return l->ops->events(l, after, limit, fn, arg);
}

int
ledger_cursor_get(struct ledger *l, const char *sink, int64_t *id)
{
	err_clear(l);
	*id = 0;
	return l->ops->cursor_get(l, sink, id);
}

int
ledger_cursor_set(struct ledger *l, const char *sink, int64_t id)
{
	err_clear(l);
	return l->ops->cursor_set(l, sink, id);
}

int
ledger_cursors(struct ledger *l, int (*fn)(const char *, int64_t, void *),
    void *arg)
{
	err_clear(l);
	return l->ops->cursors(l, fn, arg);
}

int
ledger_sink_get(struct ledger *l, const char *sink, struct ledger_sink *k)
{
	err_clear(l);
	return l->ops->sink_get(l, sink, k);
}

int
ledger_sinks(struct ledger *l, int (*fn)(const struct ledger_sink *, void *),
    void *arg)
{
	err_clear(l);
	return l->ops->sinks(l, fn, arg);
}

int
ledger_cursor_advance(struct ledger *l, const char *sink, int64_t replays,
    int64_t id)
{
	err_clear(l);
	return l->ops->cursor_advance(l, sink, replays, id);
}

int
ledger_sink_state(struct ledger *l, const char *sink, const char *state,
    const char *error, int64_t now)
{
	err_clear(l);
	return l->ops->sink_state(l, sink, state, error, now);
}

enum ledger_replay_result
ledger_replay(struct ledger *l, const char *sink, int64_t to_id,
    const char *user, int64_t now, int64_t *was)
{
	err_clear(l);
	*was = 0;
	return l->ops->replay(l, sink, to_id, user, now, was);
}

int
ledger_last_replay_user(struct ledger *l, const char *sink, char *buf,
    size_t size)
{
	err_clear(l);
	buf[0] = '\0';
	return l->ops->last_replay_user(l, sink, buf, size);
}

int
ledger_event_since(struct ledger *l, int64_t since_ms, int64_t *id)
{
	err_clear(l);
	*id = 0;
	return l->ops->event_since(l, since_ms, id);
}

int
ledger_stats(struct ledger *l, int64_t now, struct ledger_stats *s)
{
	err_clear(l);
	memset(s, 0, sizeof(*s));
	return l->ops->stats(l, now, s);
}

/* ---- what the console asks ----------------------------------------------- */

int
ledger_search(struct ledger *l, const char *q, int limit,
    int (*fn)(const struct order *, void *), void *arg)
{
	err_clear(l);
	return l->ops->search(l, q, limit, fn, arg);
}

int
ledger_anomalies(struct ledger *l, int limit,
    int (*fn)(const struct order *, void *), void *arg)
{
	err_clear(l);
	return l->ops->anomalies(l, limit, fn, arg);
}

int
ledger_transitions(struct ledger *l, const char *order_id,
    int (*fn)(int64_t at, const char *from, const char *to, void *),
    void *arg)
{
	err_clear(l);
	return l->ops->transitions(l, order_id, fn, arg);
}

int
ledger_order_events(struct ledger *l, const char *order_id,
    int (*fn)(int64_t id, const char *payload, void *), void *arg)
{
	err_clear(l);
	return l->ops->order_events(l, order_id, fn, arg);
}

int
ledger_held(struct ledger *l,
    int (*fn)(const struct ledger_held *, void *), void *arg)
{
	err_clear(l);
	return l->ops->held(l, fn, arg);
}

int
ledger_history(struct ledger *l, int64_t since, int64_t bucket_ms,
    int64_t *counts, int nbuckets)
{
	err_clear(l);
	memset(counts, 0, sizeof(*counts) * (size_t)nbuckets);
	return l->ops->history(l, since, bucket_ms, counts, nbuckets);
}

/* ---- copying a ledger ---------------------------------------------------- */

/* The columns both schemas share, in the order a row carries them, and
 * what an insert of a copied row does on a conflict (both SQL dialects
 * spell it alike): a new ledger has its counters' rows, and a daemon
 * started on an empty one may have written its sinks'; the copy's values
 * win. */
static const struct {
	const char	*name;
	const char	*cols;
	int		 ncols;
	const char	*on_conflict;
} ledger_tables[LT__COUNT] = {
	[LT_ORDERS] = { "orders",
	    "order_id, user_key, sku, intake_sku, sku_confirmed, ref, state,"
	    " toss_status, reason, determined_at, polls, errors, late_answers,"
	    " added_at, updated_at, granted_at, next_poll_at", 17, "" },
	[LT_EVENTS] = { "events",
	    "id, key, type, order_id, payload, created_at", 6, "" },
	[LT_TRANSITIONS] = { "transitions",
	    "order_id, at, from_status, to_status", 4, "" },
	[LT_SINKS] = { "sinks",
	    "name, delivered_id, state, last_error, error_at, replays", 6,
	    " ON CONFLICT (name) DO UPDATE SET"
	    " delivered_id = excluded.delivered_id, state = excluded.state,"
	    " last_error = excluded.last_error, error_at = excluded.error_at,"
	    " replays = excluded.replays" },
	[LT_REPLAYS] = { "replays", "sink, at, by_user, from_id, to_id", 5,
	    "" },
	[LT_COUNTERS] = { "counters", "name, n", 2,
	    " ON CONFLICT (name) DO UPDATE SET n = excluded.n" },
};

const char *
ledger_table_on_conflict(enum ledger_table t)
{
	return ledger_tables[t].on_conflict;
}

const char *
ledger_table_name(enum ledger_table t)
{
	return ledger_tables[t].name;
}

const char *
ledger_table_cols(enum ledger_table t)
{
	return ledger_tables[t].cols;
}

int
ledger_table_ncols(enum ledger_table t)
{
	return ledger_tables[t].ncols;
}

int
ledger_dump(struct ledger *l, enum ledger_table t,
    int (*fn)(const struct ledger_row *, void *), void *arg)
{
	err_clear(l);
	if ((int)t < 0 || t >= LT__COUNT) {
		ledger_own_error(l, "dump: no table %d", (int)t);
		return -1;
	}
	return l->ops->dump(l, t, fn, arg);
}

int
ledger_count(struct ledger *l, enum ledger_table t, int64_t *n)
{
	err_clear(l);
	*n = 0;
	if ((int)t < 0 || t >= LT__COUNT) {
		ledger_own_error(l, "count: no table %d", (int)t);
		return -1;
	}
	return l->ops->count(l, t, n);
}

int
ledger_load(struct ledger *l, enum ledger_table t,
    const struct ledger_row *row)
{
	err_clear(l);
	if ((int)t < 0 || t >= LT__COUNT || row->n != ledger_tables[t].ncols) {
		ledger_own_error(l, "load: a row of %d columns for table %d",
		    row->n, (int)t);
		return -1;
	}
	if (l->readonly) {
		ledger_own_error(l, "load: the ledger is open read-only");
		return -1;
	}
	return l->ops->load(l, t, row);
}

/* ---- about the build ----------------------------------------------------- */

void
ledger_versions(char *buf, size_t size, const char *sep)
{
	size_t	 i, len = 0;
	int	 r;

	buf[0] = '\0';
	for (i = 0; i < sizeof(ledger_backends) / sizeof(ledger_backends[0]);
	    i++) {
		r = snprintf(buf + len, size - len, "%s%s", i > 0 ? sep : "",
		    ledger_backends[i]->version());
		if (r < 0 || (size_t)r >= size - len)
			return;
		len += (size_t)r;
	}
}
