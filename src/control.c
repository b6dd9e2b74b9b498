/* The control API: one evhttp server on a TCP address or a unix socket that
 * takes orders (POST /v1/orders, the same rules as `reconcilectl import`),
 * answers order queries, serves the event feed with long polling, /metrics
 * and /healthz, and the operator console's page under /ui/ (compiled in;
 * it asks the token itself before it shows anything). Order data sits behind the bearer token (required on TCP);
 * foreign Host and Origin headers are refused. It also owns the connections:
 * a cap, a deadline for each request and a pause in accepting when the
 * process runs out of descriptors. Its own contract (GET /v1/openapi.yaml,
 * docs/openapi.yaml) is open to all, like /healthz. */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <json-c/json.h>

#include "config.h"
#include "control.h"
#include "intake.h"
#include "json-out.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "openapi.h"
#include "ui-assets.h"
#include "util.h"

#define CONTROL_TIMEOUT_SECS	30	/* between two reads or writes */
/* From accepting a connection (or answering its last request) to the whole
 * next request read: a client trickling its headers is cut after this. */
#define CONTROL_DEADLINE_SECS	10
#define CONTROL_EMFILE_PAUSE_MS	1000	/* no accept() after EMFILE/ENFILE */
#define CONTROL_EMFILE_LOG_MS	60000	/* one line per minute at most */
#define CONTROL_HEADERS_MAX	(8 * 1024)
/* evhttp refuses larger bodies itself (413 with an HTML page); up to this
 * we read them and refuse past CONTROL_BODY_MAX with a JSON answer. */
#define CONTROL_BODY_HARD_MAX	(4 * CONTROL_BODY_MAX)
#define CONTROL_WAITERS_MAX	1024	/* long polls held at once */
#define CONTROL_EVENTS_DEFAULT	100
#define CONTROL_BACKLOG		128
#define CONTROL_HEALTH_MAX	256
#define CONTROL_METHODS		(EVHTTP_REQ_GET | EVHTTP_REQ_POST | \
	EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | \
	EVHTTP_REQ_PATCH)

struct waiter;

/* One accepted connection. evhttp owns it; we hear of it through the
 * bufferevent we hand evhttp (control_bevcb) and its close callback. */
struct conn {
	TAILQ_ENTRY(conn)	 entry;
	struct control		*c;
	struct bufferevent	*bev;		/* referenced while pending */
	struct evhttp_connection *evcon;	/* NULL while pending */
	struct event		*deadline;
	struct waiter		*w;		/* a long poll it holds */
};
TAILQ_HEAD(conns, conn);

/* A GET /v1/events held until an event is written or its wait ends. */
struct waiter {
	TAILQ_ENTRY(waiter)	 entry;
	struct control		*c;
	struct evhttp_request	*req;
	struct evhttp_connection *evcon;	/* NULL once evhttp freed it */
	struct event		*timer;
	struct event		*closed;	/* the client hung up; or NULL */
	int64_t			 after;
	int			 limit;
};
TAILQ_HEAD(waiters, waiter);

struct control {
	struct event_base	*base;
	struct ledger		*ledger;
	struct control_hooks	 hooks;
	struct evhttp		*http;
	struct evconnlistener	*lev;
	char			*listen;	/* the address bound */
	char			*listen_host;	/* TCP: its host ("[::1]" for v6) */
	char			*sock_path;	/* our unix socket, unlinked at free */
	char			*token;		/* NULL: no auth */
	size_t			 tokenlen;
	char			*allowed_hosts;
	char			*allowed_origins;
	struct waiters		 waiters;
	size_t			 nwaiters;
	int			 early_close;	/* EV_CLOSED works on this base */

	struct conns		 conns;		/* evcon known */
	struct conns		 pending;	/* accepted, evcon not yet known */
	size_t			 nconns;	/* both lists */
	size_t			 max_conns;
	struct event		*resolve_ev;	/* looks up pending evcons */
	struct event		*pause_ev;	/* ends an EMFILE pause */
	int			 accepting;	/* the listener is enabled */
	int			 fd_paused;	/* out of descriptors */
	int			 closing;	/* control_free under way */
	int64_t			 emfile_logged_ms;
	uint64_t		 emfile_quiet;	/* pauses not logged since */
	struct control		*next;		/* in control_all */
};

/* Every live control, for the listener's error callback, which libevent
 * hands evhttp's argument, not ours. */
static struct control	*control_all;

/* ---- connections -------------------------------------------------------- */

static void	control_waiter_conn_closed(struct evhttp_connection *, void *);

/* Enables the listener while there is room and descriptors, else not. */
static void
control_accept_update(struct control *c)
{
	int	 want;

	if (c->closing || c->lev == NULL)
		return;
	want = !c->fd_paused && c->nconns < c->max_conns;
	if (want == c->accepting)
		return;
	if ((want ? evconnlistener_enable(c->lev) :
	    evconnlistener_disable(c->lev)) == 0)
		c->accepting = want;
	else
		log_warnx("control: cannot %s the listener",
		    want ? "enable" : "disable");
}

static struct conn *
control_conn_of(struct control *c, struct evhttp_connection *evcon)
{
	struct conn	*k;

	if (evcon == NULL)
		return NULL;
	TAILQ_FOREACH(k, &c->conns, entry) {
		if (k->evcon == evcon)
			return k;
	}
	return NULL;
}

/* The connection is done with: forget it, make room for another. */
static void
control_conn_forget(struct conn *k, struct conns *list)
{
	struct control	*c = k->c;

	TAILQ_REMOVE(list, k, entry);
	if (k->deadline != NULL)
		event_free(k->deadline);
	free(k);
	c->nconns--;
	control_accept_update(c);
}

/* evhttp frees a connection (any reason: answered, error, timeout). */
static void
control_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct conn	*k = arg;

	if (k->w != NULL)
		control_waiter_conn_closed(evcon, k->w);
	control_conn_forget(k, &k->c->conns);
}

/* The deadline passed before a whole request was read: cut the client. */
static void
control_conn_expired(evutil_socket_t fd, short what, void *arg)
{
	struct conn	*k = arg;

	log_info("control: a client did not send its request within %d s:"
	    " connection closed", CONTROL_DEADLINE_SECS);
	evhttp_connection_free(k->evcon);	/* control_conn_closed */
}

/* (Re)starts the deadline for the next request on k. */
static void
control_conn_arm(struct conn *k)
{
	struct timeval	 tv = { CONTROL_DEADLINE_SECS, 0 };

	if (k->deadline != NULL && evtimer_add(k->deadline, &tv) == -1)
		log_warnx("control: cannot arm a connection's deadline");
}

/* A whole request arrived on req's connection: its deadline stops. */
static void
control_conn_busy(struct control *c, struct evhttp_request *req)
{
	struct conn	*k;

	k = control_conn_of(c, evhttp_request_get_connection(req));
	if (k != NULL && k->deadline != NULL)
		evtimer_del(k->deadline);
}

/* Looks up the evhttp connection behind each bufferevent handed out since
 * the last run (evhttp has set its callbacks by now, with the connection as
 * their argument) and starts watching it. */
static void
control_resolve(evutil_socket_t fd, short what, void *arg)
{
	struct control		*c = arg;
	struct conn		*k;
	struct bufferevent	*bev;
	bufferevent_event_cb	 eventcb;
	void			*cbarg;

	while ((k = TAILQ_FIRST(&c->pending)) != NULL) {
		bev = k->bev;
		eventcb = NULL;
		cbarg = NULL;
		bufferevent_getcb(bev, NULL, NULL, &eventcb, &cbarg);
		if (eventcb == NULL || cbarg == NULL) {
			/* evhttp freed it already. */
			control_conn_forget(k, &c->pending);
		} else {
			TAILQ_REMOVE(&c->pending, k, entry);
			k->evcon = cbarg;
			k->bev = NULL;
			if ((k->deadline = evtimer_new(c->base,
			    control_conn_expired, k)) == NULL)
				fatalx("control: cannot make a timer");
			evhttp_connection_set_closecb(k->evcon,
			    control_conn_closed, k);
			TAILQ_INSERT_TAIL(&c->conns, k, entry);
			control_conn_arm(k);
		}
		bufferevent_decref(bev);
	}
}

/* evhttp's bufferevent for each accepted connection: counted against
 * max_connections; a reference is held until control_resolve runs. */
static struct bufferevent *
control_bevcb(struct event_base *base, void *arg)
{
	struct control		*c = arg;
	struct bufferevent	*bev;
	struct conn		*k;

	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL)
		fatalx("control: out of memory");
	bufferevent_incref(bev);
	k = xcalloc(1, sizeof(*k));
	k->c = c;
	k->bev = bev;
	TAILQ_INSERT_TAIL(&c->pending, k, entry);
	c->nconns++;
	event_active(c->resolve_ev, EV_TIMEOUT, 0);
	control_accept_update(c);
	return bev;
}

/* req is being answered: its connection gets a new deadline for the next
 * request (keep-alive). */
static void
control_conn_answered(struct evhttp_request *req)
{
	struct evhttp_connection	*evcon;
	struct control			*c;
	struct conn			*k;

	evcon = evhttp_request_get_connection(req);
	for (c = control_all; c != NULL; c = c->next) {
		if ((k = control_conn_of(c, evcon)) != NULL) {
			control_conn_arm(k);
			return;
		}
	}
}

static void
control_pause_end(evutil_socket_t fd, short what, void *arg)
{
	struct control	*c = arg;

	c->fd_paused = 0;
	control_accept_update(c);
}

/* accept() failed. Out of descriptors, accepting again at once would spin
 * (the connection stays queued): stop for a moment, say so now and then. */
static void
control_accept_error(struct evconnlistener *lev, void *arg)
{
	struct control	*c;
	struct timeval	 tv = { CONTROL_EMFILE_PAUSE_MS / 1000,
			    (CONTROL_EMFILE_PAUSE_MS % 1000) * 1000 };
	int		 err = EVUTIL_SOCKET_ERROR();
	int64_t		 now;

	for (c = control_all; c != NULL && c->lev != lev; c = c->next)
		;
	if (c == NULL)
		return;
	if (err != EMFILE && err != ENFILE && err != ENOBUFS &&
	    err != ENOMEM) {
		log_debug("control: accept: %s", strerror(err));
		return;
	}
	metrics_control_accept_pause();
	c->fd_paused = 1;
	control_accept_update(c);
	evtimer_add(c->pause_ev, &tv);
	now = util_mono_ms();
	if (c->emfile_logged_ms != 0 &&
	    now - c->emfile_logged_ms < CONTROL_EMFILE_LOG_MS) {
		c->emfile_quiet++;
		return;
	}
	log_warning("control: cannot accept a connection: %s; not accepting"
	    " for %d ms (%d connections open; %" PRIu64 " such pauses not"
	    " logged)", strerror(err), CONTROL_EMFILE_PAUSE_MS,
	    (int)c->nconns, c->emfile_quiet);
	c->emfile_logged_ms = now;
	c->emfile_quiet = 0;
}

/* ---- answers ------------------------------------------------------------ */

static struct evbuffer *
control_evbuffer(void)
{
	struct evbuffer	*b;

	if ((b = evbuffer_new()) == NULL)
		fatalx("control: out of memory");
	return b;
}

/* Sends body (may be NULL) as the given content type; frees body. */
static void
control_send(struct evhttp_request *req, int code, const char *type,
    struct evbuffer *body)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);

	control_conn_answered(req);
	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	/* A HEAD answer carries no body; evhttp 2.1 would send it. */
	if (body != NULL && evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
		evbuffer_drain(body, evbuffer_get_length(body));
	evhttp_send_reply(req, code, NULL, body);
	if (body != NULL)
		evbuffer_free(body);
}

/* Answers with obj serialised plus a newline; takes obj. */
static void
control_send_json(struct evhttp_request *req, int code, struct json_object *obj)
{
	struct evbuffer	*b = control_evbuffer();
	char		*s;

	s = json_out_string(obj);
	json_object_put(obj);
	if (evbuffer_add(b, s, strlen(s)) == -1 || evbuffer_add(b, "\n", 1) == -1)
		fatalx("control: out of memory");
	free(s);
	control_send(req, code, "application/json", b);
}

/* {"error":{"code":code,"message":msg}} */
static void
control_error(struct evhttp_request *req, int code, const char *ecode,
    const char *msg)
{
	struct json_object	*obj, *e;

	e = json_object_new_object();
	json_object_object_add(e, "code", json_object_new_string(ecode));
	json_object_object_add(e, "message", json_object_new_string(msg));
	obj = json_object_new_object();
	json_object_object_add(obj, "error", e);
	control_send_json(req, code, obj);
}

static void
control_not_found(struct evhttp_request *req, const char *msg)
{
	control_error(req, HTTP_NOTFOUND, "not_found", msg);
}

static void
control_ledger_error(struct evhttp_request *req)
{
	control_error(req, HTTP_INTERNAL, "ledger_error",
	    "the ledger could not be read or written; see the daemon's log");
}

/* 405 naming the one method the path takes. */
static void
control_method(struct evhttp_request *req, const char *allow)
{
	char	 msg[64];

	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
	    allow);
	snprintf(msg, sizeof(msg), "use %s", allow);
	control_error(req, 405, "method_not_allowed", msg);
}

/* Answers with the order as stored (code 200 or 201). */
static void
control_send_order(struct control *c, struct evhttp_request *req,
    const char *order_id, int code)
{
	struct order	 o;

	switch (ledger_get(c->ledger, order_id, &o)) {
	case 1:
		control_send_json(req, code, json_out_order(&o));
		break;
	case 0:
		control_not_found(req, "no such order");
		break;
	default:
		control_ledger_error(req);
		break;
	}
}

/* ---- auth --------------------------------------------------------------- */

/* 1 if no token is configured or the request carries it. /healthz and
 * /metrics are not asked (probes, scrapers): they show no order data. */
static int
control_authorized(struct control *c, struct evhttp_request *req)
{
	const char	*h;

	if (c->token == NULL)
		return 1;
	h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return 0;
	for (h += 7; *h == ' '; h++)
		;
	return util_secure_eq(h, strlen(h), c->token, c->tokenlen);
}

static void
control_unauthorized(struct evhttp_request *req)
{
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "WWW-Authenticate", "Bearer realm=\"reconciled\"");
	control_error(req, 401, "unauthorized",
	    "this API needs an Authorization: Bearer token");
}

/* ---- orders ------------------------------------------------------------- */

/* 1 if text is one whole JSON value (the rules intake_parse applies). */
static int
control_json_ok(const char *text, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*obj;
	enum json_tokener_error	 jerr;

	if (len > INT_MAX || memchr(text, '\0', len) != NULL)
		return 0;
	if ((tok = json_tokener_new()) == NULL)
		return 0;
	json_tokener_set_flags(tok,
	    JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	if (obj == NULL && jerr == json_tokener_continue) {
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
	} else if (obj != NULL && json_tokener_get_parse_end(tok) != len)
		jerr = json_tokener_error_parse_unexpected;
	json_object_put(obj);
	json_tokener_free(tok);
	return jerr == json_tokener_success;
}

/* 409 for an orderId known with another userKey. A squatter posting real
 * orderIds first is seen at once: a warning with both keys masked. */
static void
control_conflict(struct control *c, struct evhttp_request *req,
    const struct intake_order *o)
{
	struct order	 known;
	char		 uk[LOG_USERKEY_MAX], kuk[LOG_USERKEY_MAX];

	metrics_intake_conflict();
	if (ledger_get(c->ledger, o->order_id, &known) == 1)
		log_warning("control: order %s refused: known with userKey %s,"
		    " posted with userKey %s", o->order_id,
		    log_userkey(known.user_key, kuk),
		    log_userkey(o->user_key, uk));
	else
		log_warning("control: order %s refused: known with another"
		    " userKey, posted with userKey %s", o->order_id,
		    log_userkey(o->user_key, uk));
	control_error(req, 409, "user_key_conflict",
	    "this orderId is already known with another userKey");
}

/* POST /v1/orders: one order, exactly as one line of an import. */
static void
control_post_order(struct control *c, struct evhttp_request *req)
{
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);
	struct intake_order	 o;
	enum ledger_add_result	 res;
	const char		*text = "";
	char			 err[INTAKE_ERR_MAX], uk[LOG_USERKEY_MAX];
	char			*enc, *loc;
	size_t			 len = evbuffer_get_length(in);

	if (len > CONTROL_BODY_MAX) {
		snprintf(err, sizeof(err), "the request body is larger than %d"
		    " bytes", CONTROL_BODY_MAX);
		control_error(req, 413, "body_too_large", err);
		return;
	}
	if (len > 0 && (text = (const char *)evbuffer_pullup(in, -1)) == NULL)
		fatalx("control: out of memory");
	if (intake_parse(text, len, &o, err) == -1) {
		control_error(req, HTTP_BADREQUEST, control_json_ok(text, len) ?
		    "invalid_order" : "invalid_json", err);
		return;
	}
	if (ledger_add(c->ledger, o.order_id, o.user_key,
	    o.has_sku ? o.sku : NULL, o.has_ref ? o.ref : NULL, util_now_ms(),
	    &res) == -1) {
		log_warnx("control: order %s: not added: database error",
		    o.order_id);
		control_ledger_error(req);
		return;
	}
	switch (res) {
	case LEDGER_ADDED:
		log_debug("control: order %s added (userKey %s)", o.order_id,
		    log_userkey(o.user_key, uk));
		if ((enc = evhttp_encode_uri(o.order_id)) != NULL) {
			loc = xasprintf("/v1/orders/%s", enc);
			evhttp_add_header(evhttp_request_get_output_headers(req),
			    "Location", loc);
			free(loc);
			free(enc);
		}
		control_send_order(c, req, o.order_id, 201);
		if (c->hooks.kick != NULL)
			c->hooks.kick(c->hooks.arg);
		break;
	case LEDGER_KNOWN:
		control_send_order(c, req, o.order_id, HTTP_OK);
		break;
	case LEDGER_CONFLICT:
		control_conflict(c, req, &o);
		break;
	}
}

/* Decodes and checks the {id} path segment (seg[len], still %-encoded).
 * Returns the order id (caller frees), or NULL after answering 400. */
static char *
control_path_id(struct evhttp_request *req, const char *seg, size_t len)
{
	char	 err[INTAKE_ERR_MAX], *raw, *id;
	size_t	 idlen;

	if (len > ORDER_ID_MAX * 3) {
		control_error(req, HTTP_BADREQUEST, "invalid_order_id",
		    "orderId is longer than 128 bytes");
		return NULL;
	}
	raw = xstrndup(seg, len);
	id = evhttp_uridecode(raw, 0, &idlen);
	free(raw);
	if (id == NULL)
		fatalx("control: out of memory");
	if (idlen != strlen(id)) {
		free(id);
		control_error(req, HTTP_BADREQUEST, "invalid_order_id",
		    "orderId contains control characters");
		return NULL;
	}
	/* The userKey is a stand-in: only the orderId rules matter here. */
	if (intake_check(id, "-", NULL, NULL, err) == -1) {
		free(id);
		control_error(req, HTTP_BADREQUEST, "invalid_order_id", err);
		return NULL;
	}
	return id;
}

/* GET /v1/orders/{id} and POST /v1/orders/{id}/recheck. */
static void
control_order(struct control *c, struct evhttp_request *req, const char *seg,
    size_t len, int recheck)
{
	char	*id;
	int	 n;

	if ((id = control_path_id(req, seg, len)) == NULL)
		return;
	if (!recheck) {
		control_send_order(c, req, id, HTTP_OK);
		free(id);
		return;
	}
	n = ledger_recheck(c->ledger, id, util_now_ms());
	if (n == -1) {
		log_warnx("control: order %s: recheck failed: database error", id);
		control_ledger_error(req);
	} else if (n == 0)
		control_not_found(req, "no such order");
	else {
		log_debug("control: order %s: recheck requested", id);
		control_send_order(c, req, id, HTTP_OK);
		if (c->hooks.kick != NULL)
			c->hooks.kick(c->hooks.arg);
	}
	free(id);
}

/* ---- the event feed ----------------------------------------------------- */

struct feed {
	struct evbuffer	*out;
	int		 n;
	int64_t		 last;
};

/* Splices one stored payload into the array as it is. */
static int
control_feed_one(int64_t id, const char *payload, void *arg)
{
	struct feed	*f = arg;

	if (*payload == '\0')
		payload = "null";	/* never stored; keeps the answer JSON */
	if ((f->n > 0 && evbuffer_add(f->out, ",", 1) == -1) ||
	    evbuffer_add(f->out, payload, strlen(payload)) == -1)
		fatalx("control: out of memory");
	f->n++;
	f->last = id;
	return 0;
}

/* Builds {"events":[...],"lastId":n} for events after `after` into a new
 * buffer (*out, caller frees). lastId is the last id listed, else after.
 * Returns the number of events, or -1 (no buffer) on a ledger error. */
static int
control_feed(struct control *c, int64_t after, int limit, struct evbuffer **out)
{
	struct feed	 f;

	f.out = control_evbuffer();
	f.n = 0;
	f.last = after;
	if (evbuffer_add_printf(f.out, "{\"events\":[") == -1)
		fatalx("control: out of memory");
	if (ledger_events(c->ledger, after, limit, control_feed_one, &f) == -1) {
		evbuffer_free(f.out);
		*out = NULL;
		return -1;
	}
	if (evbuffer_add_printf(f.out, "],\"lastId\":%" PRId64 "}\n",
	    f.last) == -1)
		fatalx("control: out of memory");
	*out = f.out;
	return f.n;
}

/* Forgets w; its request and connection are left as they are. */
static void
control_waiter_release(struct waiter *w)
{
	struct conn	*k;

	TAILQ_REMOVE(&w->c->waiters, w, entry);
	w->c->nwaiters--;
	if ((k = control_conn_of(w->c, w->evcon)) != NULL)
		k->w = NULL;
	event_free(w->timer);
	if (w->closed != NULL)
		event_free(w->closed);
	free(w);
}

/* Answers a held long poll with the feed b (NULL: the ledger failed). */
static void
control_waiter_send(struct waiter *w, struct evbuffer *b)
{
	struct evhttp_request	*req = w->req;

	control_waiter_release(w);
	if (b == NULL)
		control_ledger_error(req);
	else
		control_send(req, HTTP_OK, "application/json", b);
}

/* Answers a held long poll with what the ledger has now (maybe nothing). */
static void
control_waiter_answer(struct waiter *w)
{
	struct evbuffer	*b;

	(void)control_feed(w->c, w->after, w->limit, &b);
	control_waiter_send(w, b);
}

static void
control_waiter_expired(evutil_socket_t fd, short what, void *arg)
{
	control_waiter_answer(arg);
}

/* The client hung up while its poll was held: drop the connection (which
 * frees the request with it). */
static void
control_waiter_hangup(evutil_socket_t fd, short what, void *arg)
{
	struct waiter			*w = arg;
	struct evhttp_connection	*evcon = w->evcon;

	log_debug("control: a client left its long poll");
	control_waiter_release(w);
	if (evcon != NULL)
		evhttp_connection_free(evcon);
}

/* evhttp frees the connection under a held poll (control_free, errors);
 * called from control_conn_closed. */
static void
control_waiter_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct waiter		*w = arg;
	struct evhttp_request	*req = w->req;

	(void)evcon;
	w->evcon = NULL;
	control_waiter_release(w);
	/* A request evhttp detached from its connection is ours to free. */
	if (evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
}

/* Holds req until an event after `after` is written or wait_s passes. */
static void
control_waiter_add(struct control *c, struct evhttp_request *req,
    int64_t after, int limit, int64_t wait_s)
{
	struct waiter		*w;
	struct conn		*k;
	struct bufferevent	*bev;
	struct timeval		 tv;
	evutil_socket_t		 fd;

	if (c->nwaiters >= CONTROL_WAITERS_MAX) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", "1");
		control_error(req, HTTP_SERVUNAVAIL, "too_many_waiters",
		    "too many long polls are held; try again");
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->c = c;
	w->req = req;
	w->evcon = evhttp_request_get_connection(req);
	w->after = after;
	w->limit = limit;
	tv.tv_sec = (time_t)wait_s;
	tv.tv_usec = 0;
	if ((w->timer = evtimer_new(c->base, control_waiter_expired, w)) == NULL ||
	    evtimer_add(w->timer, &tv) == -1)
		fatalx("control: cannot start a long poll's timer");
	if (w->evcon != NULL) {
		if ((k = control_conn_of(c, w->evcon)) != NULL)
			k->w = w;
		/* evhttp stops reading while a request is being answered, so
		 * only a watch of our own sees the client hang up. */
		bev = evhttp_connection_get_bufferevent(w->evcon);
		fd = bev != NULL ? bufferevent_getfd(bev) : -1;
		if (c->early_close && fd != -1) {
			w->closed = event_new(c->base, fd, EV_CLOSED,
			    control_waiter_hangup, w);
			if (w->closed == NULL || event_add(w->closed, NULL) == -1)
				fatalx("control: cannot watch a connection");
		}
	}
	TAILQ_INSERT_TAIL(&c->waiters, w, entry);
	c->nwaiters++;
}

/* Reads an optional integer query parameter in [min, INT64_MAX]. Returns
 * 0 (*v untouched when absent), or -1 after answering 400. */
static int
control_query_int(struct evhttp_request *req, struct evkeyvalq *q,
    const char *name, int64_t min, int64_t *v)
{
	const char	*s;
	char		 msg[128];

	if ((s = evhttp_find_header(q, name)) == NULL)
		return 0;
	if (util_parse_int64(s, min, INT64_MAX, v) == 0)
		return 0;
	snprintf(msg, sizeof(msg), "%s must be an integer >= %" PRId64, name,
	    min);
	control_error(req, HTTP_BADREQUEST, "invalid_query", msg);
	return -1;
}

/* GET /v1/events?after=N&limit=M&wait=S */
static void
control_events(struct control *c, struct evhttp_request *req,
    const char *query)
{
	struct evkeyvalq	 q;
	struct evbuffer		*b;
	int64_t			 after = 0, limit = CONTROL_EVENTS_DEFAULT, wait = 0;
	int			 n, bad;

	TAILQ_INIT(&q);
	if (query != NULL && evhttp_parse_query_str(query, &q) == -1) {
		evhttp_clear_headers(&q);
		control_error(req, HTTP_BADREQUEST, "invalid_query",
		    "the query string cannot be parsed");
		return;
	}
	bad = control_query_int(req, &q, "after", 0, &after) == -1 ||
	    control_query_int(req, &q, "limit", 1, &limit) == -1 ||
	    control_query_int(req, &q, "wait", 0, &wait) == -1;
	evhttp_clear_headers(&q);
	if (bad)
		return;
	if (limit > CONTROL_EVENTS_MAX)
		limit = CONTROL_EVENTS_MAX;
	if (wait > CONTROL_WAIT_MAX)
		wait = CONTROL_WAIT_MAX;

	if ((n = control_feed(c, after, (int)limit, &b)) == -1) {
		control_ledger_error(req);
		return;
	}
	if (n > 0 || wait == 0) {
		control_send(req, HTTP_OK, "application/json", b);
		return;
	}
	evbuffer_free(b);
	control_waiter_add(c, req, after, (int)limit, wait);
}

void
control_events_written(struct control *c)
{
	struct waiter	*w, *next;
	struct evbuffer	*b;
	int		 n;

	for (w = TAILQ_FIRST(&c->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if ((n = control_feed(c, w->after, w->limit, &b)) == 0) {
			evbuffer_free(b);
			continue;
		}
		control_waiter_send(w, b);	/* events, or a ledger error */
	}
}

/* ---- what the console shows (scripts may use it too) -------------------- */

#define CONTROL_SEARCH_MAX	50	/* orders a search answers */
#define CONTROL_LIST_MAX	20	/* orders in each list of /v1/attention */
#define CONTROL_HISTORY_MAX	168	/* hours GET /v1/history goes back */

/* Appends each order it is given to a JSON array. */
static int
control_add_order(const struct order *o, void *arg)
{
	json_object_array_add(arg, json_out_order(o));
	return 0;
}

/* Keeps adding orders while the array holds fewer than CONTROL_LIST_MAX. */
static int
control_add_order_capped(const struct order *o, void *arg)
{
	json_object_array_add(arg, json_out_order(o));
	return json_object_array_length(arg) >= CONTROL_LIST_MAX;
}

/* The sinks of GET /v1/overview, with their lag behind the last event. */
struct sinks_out {
	struct json_object	*arr;
	int64_t			 last_event_id;
};

static int
control_add_sink(const struct ledger_sink *k, void *arg)
{
	struct sinks_out	*so = arg;
	struct json_object	*s;
	int64_t			 lag;

	lag = so->last_event_id - k->delivered_id;
	s = json_object_new_object();
	json_object_object_add(s, "name", json_object_new_string(k->name));
	json_object_object_add(s, "deliveredId",
	    json_object_new_int64(k->delivered_id));
	json_object_object_add(s, "lag", json_object_new_int64(lag < 0 ? 0 : lag));
	json_object_object_add(s, "state", json_object_new_string(k->state));
	json_object_object_add(s, "lastError", k->last_error[0] != '\0' ?
	    json_object_new_string(k->last_error) : NULL);
	json_object_object_add(s, "errorAt", json_out_time(k->error_at));
	json_object_array_add(so->arr, s);
	return 0;
}

/* This instance's role, and since when into *since_ms when it is set. */
static const char *
control_role(struct control *c, int64_t *since_ms)
{
	int64_t		 since = 0;
	const char	*role = "leader";

	if (c->hooks.role != NULL)
		role = c->hooks.role(c->hooks.arg, &since);
	if (since_ms != NULL)
		*since_ms = since;
	return role;
}

static void
control_add_role(struct json_object *obj, const char *role, int64_t since)
{
	json_object_object_add(obj, "role", json_object_new_string(role));
	json_object_object_add(obj, "roleSince", json_out_time(since));
}

/* GET /v1/overview: the figures of `reconcilectl stats --json`, read in one
 * transaction, with each sink's state and this instance's role. */
static void
control_overview(struct control *c, struct evhttp_request *req)
{
	struct ledger_stats	 st;
	struct sinks_out	 so;
	struct json_object	*obj, *orders;
	int64_t			 now = util_now_ms();
	int			 i;

	if (ledger_stats(c->ledger, now, &st) == -1) {
		control_ledger_error(req);
		return;
	}
	orders = json_object_new_object();
	for (i = 0; i < ST__COUNT; i++)
		json_object_object_add(orders, order_state_name(i),
		    json_object_new_int64(st.orders[i]));
	so.arr = json_object_new_array();
	so.last_event_id = st.last_event_id;
	if (ledger_sinks(c->ledger, control_add_sink, &so) == -1) {
		json_object_put(orders);
		json_object_put(so.arr);
		control_ledger_error(req);
		return;
	}
	obj = json_object_new_object();
	json_object_object_add(obj, "now", json_out_time(now));
	json_object_object_add(obj, "role",
	    json_object_new_string(control_role(c, NULL)));
	json_object_object_add(obj, "orders", orders);
	json_object_object_add(obj, "events", json_object_new_int64(st.events));
	json_object_object_add(obj, "lastEventId",
	    json_object_new_int64(st.last_event_id));
	json_object_object_add(obj, "due", json_object_new_int64(st.due));
	json_object_object_add(obj, "oldestPendingAt",
	    json_out_time(st.oldest_pending_ms));
	json_object_object_add(obj, "skuMismatches",
	    json_object_new_int64(st.sku_mismatches));
	json_object_object_add(obj, "sinks", so.arr);
	control_send_json(req, HTTP_OK, obj);
}

static int
control_add_held(const struct ledger_held *h, void *arg)
{
	json_object_array_add(arg, json_out_held(h->toss_status, h->count,
	    h->first_seen, h->last_seen, h->example));
	return 0;
}

/* GET /v1/attention: what needs a human. */
static void
control_attention(struct control *c, struct evhttp_request *req)
{
	struct json_object	*obj, *held, *mism, *anom, *pend;

	held = json_object_new_array();
	mism = json_object_new_array();
	anom = json_object_new_array();
	pend = json_object_new_array();
	obj = json_object_new_object();
	json_object_object_add(obj, "held", held);
	json_object_object_add(obj, "mismatch", mism);
	json_object_object_add(obj, "anomaly", anom);
	json_object_object_add(obj, "pendingLongest", pend);
	if (ledger_held(c->ledger, control_add_held, held) == -1 ||
	    ledger_foreach(c->ledger, ST_MISMATCH, control_add_order_capped,
	    mism) == -1 ||
	    ledger_anomalies(c->ledger, CONTROL_LIST_MAX, control_add_order,
	    anom) == -1 ||
	    ledger_foreach(c->ledger, ST_PENDING, control_add_order_capped,
	    pend) == -1) {
		json_object_put(obj);
		control_ledger_error(req);
		return;
	}
	control_send_json(req, HTTP_OK, obj);
}

/* Parses the query string into q; -1 after answering 400. */
static int
control_query(struct evhttp_request *req, const char *query,
    struct evkeyvalq *q)
{
	TAILQ_INIT(q);
	if (query != NULL && evhttp_parse_query_str(query, q) == -1) {
		evhttp_clear_headers(q);
		control_error(req, HTTP_BADREQUEST, "invalid_query",
		    "the query string cannot be parsed");
		return -1;
	}
	return 0;
}

/* GET /v1/history?hours=H: events per hour over the last H hours (1 to
 * 168, default 24), the last bucket ending now. */
static void
control_history(struct control *c, struct evhttp_request *req,
    const char *query)
{
	struct evkeyvalq	 q;
	struct json_object	*obj, *arr;
	int64_t			 hours = 24, now, since;
	int64_t			 counts[CONTROL_HISTORY_MAX];
	int			 bad, i;

	if (control_query(req, query, &q) == -1)
		return;
	bad = control_query_int(req, &q, "hours", 1, &hours) == -1;
	evhttp_clear_headers(&q);
	if (bad)
		return;
	if (hours > CONTROL_HISTORY_MAX) {
		control_error(req, HTTP_BADREQUEST, "invalid_query",
		    "hours must be at most 168");
		return;
	}
	now = util_now_ms();
	since = now - hours * 3600000;
	if (ledger_history(c->ledger, since, 3600000, counts, (int)hours) == -1) {
		control_ledger_error(req);
		return;
	}
	arr = json_object_new_array();
	for (i = 0; i < hours; i++)
		json_object_array_add(arr, json_object_new_int64(counts[i]));
	obj = json_object_new_object();
	json_object_object_add(obj, "since", json_out_time(since));
	json_object_object_add(obj, "bucketSeconds",
	    json_object_new_int64(3600));
	json_object_object_add(obj, "counts", arr);
	control_send_json(req, HTTP_OK, obj);
}

/* GET /v1/search?q=X: orders whose orderId, userKey or ref is exactly X. */
static void
control_search(struct control *c, struct evhttp_request *req,
    const char *query)
{
	struct evkeyvalq	 q;
	struct json_object	*obj, *arr;
	const char		*s;
	char			*text;

	if (control_query(req, query, &q) == -1)
		return;
	s = evhttp_find_header(&q, "q");
	if (s == NULL || *s == '\0' || strlen(s) > ORDER_ID_MAX) {
		evhttp_clear_headers(&q);
		control_error(req, HTTP_BADREQUEST, "invalid_query",
		    "q must be 1 to 128 bytes: an orderId, userKey or ref");
		return;
	}
	text = xstrdup(s);
	evhttp_clear_headers(&q);
	arr = json_object_new_array();
	if (ledger_search(c->ledger, text, CONTROL_SEARCH_MAX,
	    control_add_order, arr) == -1) {
		free(text);
		json_object_put(arr);
		control_ledger_error(req);
		return;
	}
	free(text);
	obj = json_object_new_object();
	json_object_object_add(obj, "orders", arr);
	control_send_json(req, HTTP_OK, obj);
}

static int
control_add_transition(int64_t at, const char *from, const char *to,
    void *arg)
{
	json_object_array_add(arg, json_out_transition(at, from, to));
	return 0;
}

static int
control_add_event(int64_t id, const char *payload, void *arg)
{
	struct json_object	*ev;

	(void)id;
	/* Stored by json_out_event, so it parses; null if it ever does not. */
	ev = json_tokener_parse(payload);
	json_object_array_add(arg, ev);
	return 0;
}

/* GET /v1/orders/{id}/history: the order, its status changes, its events. */
static void
control_order_history(struct control *c, struct evhttp_request *req,
    const char *seg, size_t len)
{
	struct order		 o;
	struct json_object	*obj, *tr, *ev;
	char			*id;
	int			 r;

	if ((id = control_path_id(req, seg, len)) == NULL)
		return;
	if ((r = ledger_get(c->ledger, id, &o)) != 1) {
		free(id);
		if (r == 0)
			control_not_found(req, "no such order");
		else
			control_ledger_error(req);
		return;
	}
	tr = json_object_new_array();
	ev = json_object_new_array();
	obj = json_object_new_object();
	json_object_object_add(obj, "order", json_out_order(&o));
	json_object_object_add(obj, "transitions", tr);
	json_object_object_add(obj, "events", ev);
	if (ledger_transitions(c->ledger, id, control_add_transition, tr) == -1 ||
	    ledger_order_events(c->ledger, id, control_add_event, ev) == -1) {
		free(id);
		json_object_put(obj);
		control_ledger_error(req);
		return;
	}
	free(id);
	control_send_json(req, HTTP_OK, obj);
}

/* ---- /metrics, /healthz ------------------------------------------------- */

static void
control_metrics(struct control *c, struct evhttp_request *req)
{
	struct evbuffer	*b = control_evbuffer();

	if (c->hooks.metrics == NULL || c->hooks.metrics(c->hooks.arg, b) == -1) {
		evbuffer_free(b);
		control_error(req, HTTP_INTERNAL, "metrics_error",
		    "the metrics could not be gathered; see the daemon's log");
		return;
	}
	control_send(req, HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", b);
}

/* Healthy, with the role: a standby is as healthy as a leader. */
static void
control_healthz(struct control *c, struct evhttp_request *req)
{
	struct json_object	*obj;
	char			 why[CONTROL_HEALTH_MAX] = "";
	int64_t			 since = 0;
	const char		*role = control_role(c, &since);

	obj = json_object_new_object();
	if (c->hooks.health == NULL ||
	    c->hooks.health(c->hooks.arg, why, sizeof(why)) == 1) {
		json_object_object_add(obj, "status",
		    json_object_new_string("ok"));
		control_add_role(obj, role, since);
		control_send_json(req, HTTP_OK, obj);
		return;
	}
	json_object_object_add(obj, "status",
	    json_object_new_string("unhealthy"));
	json_object_object_add(obj, "reason", json_object_new_string(why));
	control_add_role(obj, role, since);
	control_send_json(req, HTTP_SERVUNAVAIL, obj);
}

/* ---- the console's page ------------------------------------------------- */

/* Nothing of the page is inline and nothing comes from elsewhere: a
 * script injected into it would not run, nor would it be framed. */
#define CONTROL_UI_CSP	"default-src 'self'; script-src 'self'; " \
	"style-src 'self'; img-src 'self'; connect-src 'self'; " \
	"object-src 'none'; base-uri 'none'; form-action 'self'; " \
	"frame-ancestors 'none'"

/* GET /ui/...: a file of the console, or 404. */
static void
control_ui(struct evhttp_request *req, const char *path)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);
	struct evbuffer		*b;
	size_t			 i;

	for (i = 0; i < ui_asset_count; i++)
		if (strcmp(ui_assets[i].path, path) == 0)
			break;
	if (i == ui_asset_count) {
		control_not_found(req, "no such file of the console");
		return;
	}
	b = control_evbuffer();
	if (evbuffer_add(b, ui_assets[i].text, strlen(ui_assets[i].text)) == -1)
		fatalx("control: out of memory");
	evhttp_add_header(h, "Content-Security-Policy", CONTROL_UI_CSP);
	evhttp_add_header(h, "X-Frame-Options", "DENY");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	control_send(req, HTTP_OK, ui_assets[i].type, b);
}

/* ---- what a request may come from --------------------------------------- */

/* 1 if the Host header names what we serve: on TCP the listen host,
 * localhost or an allowed_hosts entry, any port (a page that rebinds its
 * own name to 127.0.0.1 still sends its name). A request without Host
 * (HTTP/1.0 tools; no browser) and anything on a unix socket pass. */
static int
control_host_ok(struct control *c, struct evhttp_request *req)
{
	const char	*h, *end;
	size_t		 len;

	if (c->listen_host == NULL)
		return 1;
	h = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	if (h == NULL)
		return 1;
	if (*h == '[') {
		if ((end = strchr(h, ']')) == NULL)
			return 0;
		len = (size_t)(end - h) + 1;
	} else
		len = strcspn(h, ":");
	if (len == 0)
		return 0;
	if ((len == strlen(c->listen_host) &&
	    strncasecmp(h, c->listen_host, len) == 0) ||
	    (len == 9 && strncasecmp(h, "localhost", 9) == 0))
		return 1;
	return config_list_has(c->allowed_hosts, h, len);
}

/* 1 without an Origin header (not a browser) or with an allowed one. */
static int
control_origin_ok(struct control *c, struct evhttp_request *req)
{
	const char	*o, *h;

	o = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Origin");
	if (o == NULL)
		return 1;
	/* The console's own page: its origin is this server's, whose Host
	 * control_host_ok already checked. */
	h = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
	if (h != NULL && strncmp(o, "http://", 7) == 0 && strcmp(o + 7, h) == 0)
		return 1;
	return config_list_has(c->allowed_origins, o, strlen(o));
}

/* A POST is JSON or nothing: a form or text/plain body (what a web page may
 * send anywhere without asking) is refused. */
static int
control_type_ok(struct evhttp_request *req)
{
	const char	*t;
	size_t		 body;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST)
		return 1;
	t = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");
	body = evbuffer_get_length(evhttp_request_get_input_buffer(req));
	if (t == NULL)
		return body == 0;
	return strncasecmp(t, "application/json", 16) == 0 &&
	    (t[16] == '\0' || t[16] == ';' || t[16] == ' ');
}

/* ---- the contract ------------------------------------------------------- */

/* GET /v1/openapi.yaml: the document this binary was built with. */
static void
control_openapi(struct evhttp_request *req)
{
	struct evbuffer	*b = control_evbuffer();

	if (evbuffer_add_reference(b, openapi_yaml, openapi_yaml_len, NULL,
	    NULL) == -1)
		fatalx("control: out of memory");
	control_send(req, HTTP_OK, "application/yaml", b);
}

/* ---- routing ------------------------------------------------------------ */

static int
control_is(struct evhttp_request *req, enum evhttp_cmd_type want,
    const char *allow)
{
	if (evhttp_request_get_command(req) == want)
		return 1;
	control_method(req, allow);
	return 0;
}

/* GET, or HEAD where a prober (a load balancer, a monitor) may use it:
 * the same answer without its body (control_send drops it). */
static int
control_is_get_head(struct evhttp_request *req)
{
	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
		return 1;
	return control_is(req, EVHTTP_REQ_GET, "GET, HEAD");
}

static void
control_request(struct evhttp_request *req, void *arg)
{
	struct control		*c = arg;
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = NULL, *query = NULL, *seg, *slash;

	if (uri != NULL) {
		path = evhttp_uri_get_path(uri);
		query = evhttp_uri_get_query(uri);
	}
	if (path == NULL || *path == '\0')
		path = "/";

	/* A request before control_resolve ran (it runs first in practice):
	 * its connection must be known, a long poll may need it. */
	if (!TAILQ_EMPTY(&c->pending))
		control_resolve(-1, 0, c);
	control_conn_busy(c, req);
	if (!control_host_ok(c, req)) {
		metrics_control_refused("host");
		control_error(req, 403, "host_not_allowed", "this Host is not"
		    " served here (see [control] allowed_hosts)");
		return;
	}
	if (!control_origin_ok(c, req)) {
		metrics_control_refused("origin");
		control_error(req, 403, "origin_not_allowed", "requests from"
		    " this Origin are refused (see [control] allowed_origins)");
		return;
	}
	/* The console's files hold no data: the page asks for the token. */
	if (strncmp(path, "/ui/", 4) == 0) {
		if (control_is_get_head(req))
			control_ui(req, path);
		return;
	}
	if (strcmp(path, "/healthz") != 0 && strcmp(path, "/metrics") != 0 &&
	    strcmp(path, "/v1/openapi.yaml") != 0 && !control_authorized(c, req)) {
		metrics_control_refused("unauthorized");
		control_unauthorized(req);
		return;
	}
	if (!control_type_ok(req)) {
		metrics_control_refused("content_type");
		control_error(req, 415, "unsupported_media_type", "a POST body"
		    " must be sent as Content-Type: application/json");
		return;
	}
	if (strcmp(path, "/v1/orders") == 0) {
		if (control_is(req, EVHTTP_REQ_POST, "POST"))
			control_post_order(c, req);
	} else if (strncmp(path, "/v1/orders/", 11) == 0 && path[11] != '\0' &&
	    path[11] != '/') {
		seg = path + 11;
		if ((slash = strchr(seg, '/')) == NULL) {
			if (control_is(req, EVHTTP_REQ_GET, "GET"))
				control_order(c, req, seg, strlen(seg), 0);
		} else if (strcmp(slash, "/recheck") == 0) {
			if (control_is(req, EVHTTP_REQ_POST, "POST"))
				control_order(c, req, seg, (size_t)(slash - seg), 1);
		} else if (strcmp(slash, "/history") == 0) {
			if (control_is(req, EVHTTP_REQ_GET, "GET"))
				control_order_history(c, req, seg,
				    (size_t)(slash - seg));
		} else
			control_not_found(req, "no such endpoint");
	} else if (strcmp(path, "/v1/events") == 0) {
		if (control_is(req, EVHTTP_REQ_GET, "GET"))
			control_events(c, req, query);
	} else if (strcmp(path, "/v1/overview") == 0) {
		if (control_is(req, EVHTTP_REQ_GET, "GET"))
			control_overview(c, req);
	} else if (strcmp(path, "/v1/attention") == 0) {
		if (control_is(req, EVHTTP_REQ_GET, "GET"))
			control_attention(c, req);
	} else if (strcmp(path, "/v1/history") == 0) {
		if (control_is(req, EVHTTP_REQ_GET, "GET"))
			control_history(c, req, query);
	} else if (strcmp(path, "/v1/search") == 0) {
		if (control_is(req, EVHTTP_REQ_GET, "GET"))
			control_search(c, req, query);
	} else if (strcmp(path, "/metrics") == 0) {
		if (control_is_get_head(req))
			control_metrics(c, req);
	} else if (strcmp(path, "/healthz") == 0) {
		if (control_is_get_head(req))
			control_healthz(c, req);
	} else if (strcmp(path, "/v1/openapi.yaml") == 0) {
		if (control_is_get_head(req))
			control_openapi(req);
	} else
		control_not_found(req, "no such endpoint");
}

/* ---- listening ---------------------------------------------------------- */

/* 1 if a process accepts connections on the unix socket at path. */
static int
control_unix_live(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd, live;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return 0;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	util_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	live = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return live;
}

/* Makes, binds (mode 0660) and hands to evhttp the socket at path; a stale
 * socket file is replaced, anything else there is left alone. */
static int
control_listen_unix(struct control *c, const char *path, char **err)
{
	struct sockaddr_un	 sun;
	struct stat		 sb;
	struct evhttp_bound_socket *bound;
	mode_t			 old;
	int			 fd, r;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		*err = xasprintf("control: unix socket path %s is too long", path);
		return -1;
	}
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			*err = xasprintf("control: %s exists and is not a socket;"
			    " not replacing it", path);
			return -1;
		}
		if (control_unix_live(path)) {
			*err = xasprintf("control: another process listens on %s",
			    path);
			return -1;
		}
		if (unlink(path) == -1 && errno != ENOENT) {
			*err = xasprintf("control: cannot remove the stale socket"
			    " %s: %s", path, strerror(errno));
			return -1;
		}
	} else if (errno != ENOENT) {
		*err = xasprintf("control: %s: %s", path, strerror(errno));
		return -1;
	}

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		*err = xasprintf("control: socket: %s", strerror(errno));
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	util_strlcpy(sun.sun_path, path, sizeof(sun.sun_path));
	old = umask(0117);	/* never wider than 0660, even for a moment */
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (r == -1) {
		*err = xasprintf("control: cannot bind %s: %s", path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (chmod(path, 0660) == -1 || listen(fd, CONTROL_BACKLOG) == -1) {
		*err = xasprintf("control: cannot listen on %s: %s", path,
		    strerror(errno));
		unlink(path);
		close(fd);
		return -1;
	}
	if ((bound = evhttp_accept_socket_with_handle(c->http, fd)) == NULL) {
		*err = xasprintf("control: cannot accept on %s", path);
		unlink(path);
		close(fd);
		return -1;
	}
	c->sock_path = xstrdup(path);
	c->lev = evhttp_bound_socket_get_listener(bound);
	return 0;
}

/* "HOST:PORT" or "[V6]:PORT" (config.c checked the form). */
static int
control_listen_tcp(struct control *c, const char *addr, char **err)
{
	struct evhttp_bound_socket *bound;
	const char	*colon, *hs = addr;
	char		*host;
	size_t		 hlen;
	int64_t		 port;

	if ((colon = strrchr(addr, ':')) == NULL ||
	    util_parse_int64(colon + 1, 1, 65535, &port) == -1) {
		*err = xasprintf("control: invalid listen address \"%s\"", addr);
		return -1;
	}
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		hs = addr + 1;
		hlen -= 2;
	}
	host = xstrndup(hs, hlen);
	if ((bound = evhttp_bind_socket_with_handle(c->http, host,
	    (uint16_t)port)) == NULL) {
		*err = xasprintf("control: cannot listen on %s: %s", addr,
		    errno != 0 ? strerror(errno) : "bind failed");
		free(host);
		return -1;
	}
	free(host);
	c->lev = evhttp_bound_socket_get_listener(bound);
	/* What a Host header must name: the address as written. */
	c->listen_host = xstrndup(addr, (size_t)(colon - addr));
	return 0;
}

/* Takes what a reload may change: the token, the allowed Hosts and
 * Origins, the connection cap. */
static void
control_take_config(struct control *c, const struct config *cfg)
{
	util_free_secret(c->token);
	c->token = NULL;
	c->tokenlen = 0;
	if (cfg->token != NULL && *cfg->token != '\0') {
		c->token = xstrdup(cfg->token);
		c->tokenlen = strlen(c->token);
	}
	free(c->allowed_hosts);
	c->allowed_hosts = cfg->allowed_hosts != NULL ?
	    xstrdup(cfg->allowed_hosts) : NULL;
	free(c->allowed_origins);
	c->allowed_origins = cfg->allowed_origins != NULL ?
	    xstrdup(cfg->allowed_origins) : NULL;
	c->max_conns = cfg->max_connections > 0 ?
	    (size_t)cfg->max_connections : 1;
	control_accept_update(c);
}

struct control *
control_new(struct event_base *base, struct ledger *ledger,
    const struct config *cfg, const struct control_hooks *hooks, char **err)
{
	struct control	*c;
	int		 r;

	*err = NULL;
	if (cfg->listen == NULL || *cfg->listen == '\0') {
		*err = xstrdup("control: no [control] listen address");
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->ledger = ledger;
	if (hooks != NULL)
		c->hooks = *hooks;
	TAILQ_INIT(&c->waiters);
	TAILQ_INIT(&c->conns);
	TAILQ_INIT(&c->pending);
	c->accepting = 1;
	c->max_conns = 1;
	c->early_close = (event_base_get_features(base) &
	    EV_FEATURE_EARLY_CLOSE) != 0;
	if ((c->http = evhttp_new(base)) == NULL) {
		*err = xstrdup("control: cannot create the HTTP server");
		free(c);
		return NULL;
	}
	if ((c->resolve_ev = event_new(base, -1, 0, control_resolve, c)) ==
	    NULL || (c->pause_ev = evtimer_new(base, control_pause_end,
	    c)) == NULL)
		fatalx("control: cannot make its events");
	evhttp_set_gencb(c->http, control_request, c);
	evhttp_set_bevcb(c->http, control_bevcb, c);
	evhttp_set_allowed_methods(c->http, CONTROL_METHODS);
	evhttp_set_max_body_size(c->http, CONTROL_BODY_HARD_MAX);
	evhttp_set_max_headers_size(c->http, CONTROL_HEADERS_MAX);
	/* A held long poll is not cut by this: evhttp does not read while a
	 * request is being answered, and a poll waits CONTROL_WAIT_MAX at
	 * most anyway. */
	evhttp_set_timeout(c->http, CONTROL_TIMEOUT_SECS);
	evhttp_set_default_content_type(c->http, "application/json");
	evhttp_set_flags(c->http, EVHTTP_SERVER_LINGERING_CLOSE);

	errno = 0;
	if (strncmp(cfg->listen, "unix:", 5) == 0)
		r = control_listen_unix(c, cfg->listen + 5, err);
	else
		r = control_listen_tcp(c, cfg->listen, err);
	if (r == -1) {
		evhttp_free(c->http);
		event_free(c->resolve_ev);
		event_free(c->pause_ev);
		free(c->listen_host);
		free(c);
		return NULL;
	}
	c->listen = xstrdup(cfg->listen);
	c->next = control_all;
	control_all = c;
	if (c->lev != NULL)
		evconnlistener_set_error_cb(c->lev, control_accept_error);
	control_take_config(c, cfg);
	log_info("control: listening on %s%s (at most %zu connections)",
	    c->listen, c->token != NULL ? " (bearer token required)" : "",
	    c->max_conns);
	return c;
}

void
control_set_config(struct control *c, const struct config *cfg)
{
	if (cfg->listen == NULL || strcmp(cfg->listen, c->listen) != 0)
		log_warning("control: [control] listen changed to %s: the"
		    " daemon keeps listening on %s until it is restarted",
		    cfg->listen != NULL ? cfg->listen : "(off)", c->listen);
	control_take_config(c, cfg);
}

/* Writes what evhttp queued on evcon now: the loop will not run again. */
static void
control_flush(struct evhttp_connection *evcon)
{
	struct bufferevent	*bev;
	evutil_socket_t		 fd;

	if ((bev = evhttp_connection_get_bufferevent(evcon)) == NULL ||
	    (fd = bufferevent_getfd(bev)) == -1)
		return;
	(void)evbuffer_write(bufferevent_get_output(bev), fd);
}

void
control_free(struct control *c)
{
	struct waiter			*w;
	struct evhttp_connection	*evcon;
	struct conn			*k;
	struct control			**pp;
	struct stat			 sb;

	if (c == NULL)
		return;
	while ((w = TAILQ_FIRST(&c->waiters)) != NULL) {
		evcon = w->evcon;
		control_waiter_answer(w);
		if (evcon != NULL)
			control_flush(evcon);
	}
	/* evhttp frees the listener first, then every connection (each
	 * through control_conn_closed). */
	c->closing = 1;
	evhttp_free(c->http);
	control_resolve(-1, 0, c);	/* drops the references still held */
	while ((k = TAILQ_FIRST(&c->conns)) != NULL)
		control_conn_forget(k, &c->conns);
	event_free(c->resolve_ev);
	event_free(c->pause_ev);
	for (pp = &control_all; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->sock_path != NULL && lstat(c->sock_path, &sb) == 0 &&
	    S_ISSOCK(sb.st_mode))
		unlink(c->sock_path);
	free(c->sock_path);
	free(c->listen);
	free(c->listen_host);
	util_free_secret(c->token);
	free(c->allowed_hosts);
	free(c->allowed_origins);
	free(c);
}
