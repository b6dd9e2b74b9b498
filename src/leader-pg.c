/* Leadership on a PostgreSQL ledger (src/leader.h): one non-blocking libpq
 * connection driven by the event loop, never the ledger's own. It sets
 * short timeouts on its session, tries the schema's session advisory lock
 * every tick, bumps the leader epoch once it holds it, and then heartbeats;
 * any failure or silence drops the connection, which gives the lock up. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "leader.h"
#include "ledger.h"
#include "log.h"
#include "util.h"

#define LEADER_CONNECT_MS	3000	/* a connection that takes longer is
					 * dropped */
#define LEADER_QUERY_MS		1500	/* as is one that leaves a statement
					 * unanswered this long */
#define LEADER_RETRY_MS		1000	/* between connection attempts */
#define LEADER_VALUE_MAX	32

#define LEADER_STR_(x)	#x
#define LEADER_STR(x)	LEADER_STR_(x)

/* The session's bounds: a partitioned leader's session ends LEADER_IDLE_MS
 * after its last statement, and with it the lock. */
#define LEADER_SETUP_SQL \
	"SET statement_timeout = 1000; SET lock_timeout = 1000;" \
	" SET idle_in_transaction_session_timeout = 1000;" \
	" SET idle_session_timeout = " LEADER_STR(LEADER_IDLE_MS)

/* One lock per ledger schema (and per database: advisory locks are), so
 * mini-apps that share a database each have their own leader. */
#define LEADER_LOCK_SQL \
	"SELECT pg_try_advisory_lock(('x' || substr(md5('reconciled leader '" \
	" || current_schema()), 1, 16))::bit(64)::bigint)"

#define LEADER_BUMP_SQL \
	"UPDATE leader SET epoch = epoch + 1, holder = $1," \
	" since = (extract(epoch FROM clock_timestamp()) * 1000)::bigint" \
	" WHERE one RETURNING epoch"

#define LEADER_BEAT_SQL	"SELECT epoch FROM leader WHERE one"

enum leader_step {
	LS_DOWN,		/* no connection; retry at retry_at */
	LS_CONNECTING,
	LS_IDLE,		/* connected, no statement out */
	LS_BUSY			/* a statement is out */
};

enum leader_query {
	LQ_SETUP,
	LQ_LOCK,
	LQ_BUMP,
	LQ_BEAT
};

struct leader {
	struct event_base	*base;
	char			*url;		/* with its password: never logged */
	char			*name;		/* the URL to name it by */
	char			*holder;
	void			 (*changed)(void *, int, int64_t);
	void			*arg;

	PGconn			*conn;
	struct event		*ev;		/* the connection's socket */
	struct event		*tick;
	enum leader_step	 step;
	enum leader_query	 query;
	int64_t			 started;	/* mono: connection began */
	int64_t			 sent;		/* mono: the statement out */
	int64_t			 retry_at;	/* mono */

	/* The statement's outcome, as its results arrive. */
	char			*failed;	/* the first error; NULL none */
	char			 value[LEADER_VALUE_MAX]; /* row 1, column 1 */
	int			 rows;

	int			 locked;	/* this session holds the lock */
	int			 leading;
	int			 decided;	/* a role was taken */
	int			 said_down;	/* the outage was logged */
	int64_t			 epoch;
	int64_t			 since;		/* unix ms of the role change */
	int64_t			 beat_ok;	/* mono: the last good heartbeat
						 * (or the bump) was sent */
};

static void	leader_on_socket(evutil_socket_t, short, void *);

/* Takes a role, says so and tells the daemon. */
static void
leader_set_role(struct leader *l, int leading, const char *why)
{
	int	 first = !l->decided;

	if (l->decided && l->leading == leading)
		return;
	l->decided = 1;
	l->leading = leading;
	l->since = util_now_ms();
	if (leading)
		log_info("role: leader (epoch %lld)", (long long)l->epoch);
	else if (first)
		log_info("role: standby (%s)", why);
	else
		log_warning("role: standby: stepped down: %s", why);
	if (!leading)
		l->epoch = 0;
	l->changed(l->arg, leading, l->epoch);
}

/* Watches the connection's socket for what (EV_READ, EV_WRITE). */
static void
leader_watch(struct leader *l, short what)
{
	evutil_socket_t	 fd;

	event_del(l->ev);
	if (l->conn == NULL || (fd = PQsocket(l->conn)) < 0)
		return;
	event_assign(l->ev, l->base, fd, what | EV_PERSIST, leader_on_socket,
	    l);
	event_add(l->ev, NULL);
}

/* Closes the connection (the server then drops the lock) and steps down
 * if leading; another attempt follows after LEADER_RETRY_MS. */
static void
leader_drop(struct leader *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
leader_drop(struct leader *l, const char *fmt, ...)
{
	va_list	 ap;
	char	 why[512];

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	why[strcspn(why, "\n")] = '\0';
	event_del(l->ev);
	if (l->conn != NULL)
		PQfinish(l->conn);
	l->conn = NULL;
	l->step = LS_DOWN;
	l->locked = 0;
	l->retry_at = util_mono_ms() + LEADER_RETRY_MS;
	free(l->failed);
	l->failed = NULL;
	if (l->leading)
		leader_set_role(l, 0, why);
	else if (!l->said_down) {
		log_warnx("leader: %s: %s; trying again every %d ms", l->name,
		    why, LEADER_RETRY_MS);
		l->said_down = 1;
	} else
		log_debug("leader: %s: %s", l->name, why);
}

/* Sends one statement (with one text parameter when param is set). */
static void
leader_send(struct leader *l, enum leader_query q, const char *sql,
    const char *param)
{
	int	 ok, r;

	if (param != NULL)
		ok = PQsendQueryParams(l->conn, sql, 1, NULL, &param, NULL,
		    NULL, 0);
	else
		ok = PQsendQuery(l->conn, sql);
	if (!ok) {
		leader_drop(l, "cannot send: %s", PQerrorMessage(l->conn));
		return;
	}
	l->query = q;
	l->step = LS_BUSY;
	l->sent = util_mono_ms();
	l->rows = 0;
	l->value[0] = '\0';
	if ((r = PQflush(l->conn)) == -1)
		leader_drop(l, "cannot send: %s", PQerrorMessage(l->conn));
	else
		leader_watch(l, r == 1 ? EV_READ | EV_WRITE : EV_READ);
}

/* The next statement for the role: a heartbeat while leading, the epoch
 * bump once the lock is held, the lock otherwise. */
static void
leader_act(struct leader *l)
{
	if (l->leading)
		leader_send(l, LQ_BEAT, LEADER_BEAT_SQL, NULL);
	else if (l->locked)
		leader_send(l, LQ_BUMP, LEADER_BUMP_SQL, l->holder);
	else
		leader_send(l, LQ_LOCK, LEADER_LOCK_SQL, NULL);
}

/* A statement has all its results. */
static void
leader_done(struct leader *l)
{
	const char	*err;
	int64_t		 v;

	l->step = LS_IDLE;
	if (l->said_down && l->query != LQ_SETUP) {
		log_info("leader: %s: connected again", l->name);
		l->said_down = 0;
	}
	err = l->failed;
	switch (l->query) {
	case LQ_SETUP:
		if (err != NULL) {
			leader_drop(l, "cannot set up the session: %s", err);
			return;
		}
		leader_act(l);
		return;
	case LQ_LOCK:
		if (err != NULL) {
			leader_drop(l, "cannot try the lock: %s", err);
			return;
		}
		if (strcmp(l->value, "t") == 0) {
			l->locked = 1;
			leader_act(l);	/* the bump, at once */
		} else if (!l->decided)
			leader_set_role(l, 0, "another instance leads");
		return;
	case LQ_BUMP:
		if (err != NULL) {
			/* A partitioned old leader's write still holds the
			 * row; its session ends within seconds. */
			log_info("leader: %s: holding the lock, the epoch not"
			    " yet moved (%s); trying again", l->name, err);
			free(l->failed);
			l->failed = NULL;
			return;
		}
		if (l->rows != 1 ||
		    util_parse_int64(l->value, 1, INT64_MAX, &v) == -1) {
			leader_drop(l, "the ledger has no leader row");
			return;
		}
		l->epoch = v;
		l->beat_ok = l->sent;
		leader_set_role(l, 1, NULL);
		return;
	case LQ_BEAT:
		if (err != NULL) {
			leader_drop(l, "heartbeat failed: %s", err);
			return;
		}
		if (l->rows != 1 ||
		    util_parse_int64(l->value, 0, INT64_MAX, &v) == -1 ||
		    v != l->epoch) {
			leader_drop(l, "the leader epoch is now %s, not %lld:"
			    " another instance leads", l->value,
			    (long long)l->epoch);
			return;
		}
		l->beat_ok = l->sent;
		return;
	}
}

/* Reads what arrived; a statement's results are taken as they come. */
static void
leader_read(struct leader *l)
{
	PGresult	*res;
	PGnotify	*n;
	ExecStatusType	 st;

	if (!PQconsumeInput(l->conn)) {
		leader_drop(l, "connection lost: %s", PQerrorMessage(l->conn));
		return;
	}
	while ((n = PQnotifies(l->conn)) != NULL)
		PQfreemem(n);
	if (l->step != LS_BUSY) {
		if (PQstatus(l->conn) == CONNECTION_BAD)
			leader_drop(l, "connection lost: %s",
			    PQerrorMessage(l->conn));
		return;
	}
	while (!PQisBusy(l->conn)) {
		if ((res = PQgetResult(l->conn)) == NULL) {
			leader_done(l);
			return;
		}
		st = PQresultStatus(res);
		if (st == PGRES_TUPLES_OK) {
			l->rows = PQntuples(res);
			if (l->rows > 0 && PQnfields(res) > 0)
				(void)snprintf(l->value, sizeof(l->value),
				    "%s", PQgetvalue(res, 0, 0));
		} else if (st != PGRES_COMMAND_OK && l->failed == NULL)
			l->failed = xstrdup(PQresultErrorMessage(res));
		PQclear(res);
		if (l->failed != NULL)
			l->failed[strcspn(l->failed, "\n")] = '\0';
	}
}

/* Goes on with the connection: PQconnectPoll says what to wait for. */
static void
leader_connecting(struct leader *l)
{
	switch (PQconnectPoll(l->conn)) {
	case PGRES_POLLING_READING:
		leader_watch(l, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		leader_watch(l, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		if (PQsetnonblocking(l->conn, 1) == -1) {
			leader_drop(l, "cannot make the connection"
			    " non-blocking: %s", PQerrorMessage(l->conn));
			return;
		}
		leader_send(l, LQ_SETUP, LEADER_SETUP_SQL, NULL);
		return;
	default:
		leader_drop(l, "cannot connect: %s", PQerrorMessage(l->conn));
		return;
	}
}

static void
leader_on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct leader	*l = arg;
	int		 r;

	(void)fd;
	if (l->step == LS_CONNECTING) {
		leader_connecting(l);
		return;
	}
	if (what & EV_WRITE) {
		if ((r = PQflush(l->conn)) == -1) {
			leader_drop(l, "cannot send: %s",
			    PQerrorMessage(l->conn));
			return;
		}
		if (r == 0)
			leader_watch(l, EV_READ);
	}
	if (what & EV_READ)
		leader_read(l);
}

/* Starts a connection: libpq's defaults first, what the URL says wins. */
static void
leader_connect(struct leader *l)
{
	static const char *const keys[] = {
		"connect_timeout", "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "tcp_user_timeout",
		"application_name", "dbname", NULL
	};
	const char	*vals[9];

	vals[0] = "3";
	vals[1] = "1";
	vals[2] = "2";
	vals[3] = "1";
	vals[4] = "2";
	vals[5] = "4000";
	vals[6] = "reconciled leader";
	vals[7] = l->url;
	vals[8] = NULL;
	l->conn = PQconnectStartParams(keys, vals, 1);
	if (l->conn == NULL) {
		leader_drop(l, "cannot connect: out of memory");
		return;
	}
	if (PQstatus(l->conn) == CONNECTION_BAD) {
		leader_drop(l, "cannot connect: %s", PQerrorMessage(l->conn));
		return;
	}
	l->step = LS_CONNECTING;
	l->started = util_mono_ms();
	leader_watch(l, EV_WRITE);
}

static void
leader_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct leader	*l = arg;
	int64_t		 mono = util_mono_ms();

	(void)fd;
	(void)what;
	if (l->leading && mono - l->beat_ok >= LEADER_LEASE_MS) {
		leader_drop(l, "no heartbeat answered for %lld ms",
		    (long long)(mono - l->beat_ok));
		return;
	}
	switch (l->step) {
	case LS_DOWN:
		if (mono >= l->retry_at)
			leader_connect(l);
		break;
	case LS_CONNECTING:
		if (mono - l->started >= LEADER_CONNECT_MS)
			leader_drop(l, "cannot connect within %d ms",
			    LEADER_CONNECT_MS);
		break;
	case LS_BUSY:
		if (mono - l->sent >= LEADER_QUERY_MS)
			leader_drop(l, "no answer from the database in %d ms",
			    LEADER_QUERY_MS);
		break;
	case LS_IDLE:
		leader_act(l);
		break;
	}
}

struct leader *
leader_new(struct event_base *base, const char *url, const char *holder,
    void (*changed)(void *, int, int64_t), void *arg, char **err)
{
	struct leader	*l;
	struct timeval	 tv = { 0, LEADER_TICK_MS * 1000 };

	l = xcalloc(1, sizeof(*l));
	l->base = base;
	l->url = xstrdup(url);
	l->name = ledger_name(url);
	l->holder = xstrdup(holder);
	l->changed = changed;
	l->arg = arg;
	l->step = LS_DOWN;
	if ((l->ev = event_new(base, -1, 0, leader_on_socket, l)) == NULL ||
	    (l->tick = event_new(base, -1, EV_PERSIST, leader_on_tick,
	    l)) == NULL || event_add(l->tick, &tv) == -1) {
		*err = xstrdup("leader: cannot set up its events");
		leader_free(l);
		return NULL;
	}
	leader_connect(l);
	return l;
}

void
leader_free(struct leader *l)
{
	if (l == NULL)
		return;
	if (l->ev != NULL)
		event_free(l->ev);
	if (l->tick != NULL)
		event_free(l->tick);
	if (l->conn != NULL)
		PQfinish(l->conn);
	free(l->failed);
	free(l->url);
	free(l->name);
	free(l->holder);
	free(l);
}

int
leader_valid(const struct leader *l, int64_t mono_now)
{
	return l->leading && mono_now - l->beat_ok < LEADER_LEASE_MS;
}

const char *
leader_role(const struct leader *l, int64_t *since_ms, int64_t *epoch)
{
	*since_ms = l->since;
	*epoch = l->leading ? l->epoch : 0;
	if (!l->decided)
		return "starting";
	return l->leading ? "leader" : "standby";
}
