/* The webhook sink: a window of the next events after its cursor, each POSTed
 * through fetch with Standard Webhooks headers; the cursor follows the run of
 * delivered ids from its start. Owns the signing (with every secret during a
 * rotation), the backoff (one probe at a time while the endpoint fails), the
 * 410 switch-off, the state it keeps in the ledger and taking a replay. */
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/types.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config.h"
#include "fetch.h"
#include "ledger.h"
#include "log.h"
#include "sink-webhook.h"
#include "util.h"

#define WH_CURSOR		"webhook"
#define WH_SECRET_PREFIX	"whsec_"
#define WH_SECRET_MAX		256		/* decoded bytes */
#define WH_BACKOFF_MIN_MS	5000
#define WH_BACKOFF_MAX_MS	(3600 * 1000)
#define WH_DB_RETRY_MS		5000
#define WH_CHECK_MS		1000	/* how often an idle sink looks for a replay */

enum wh_state {
	WH_WAITING,		/* to be sent (again) */
	WH_INFLIGHT,
	WH_DONE			/* 2xx; leaves once every earlier one did */
};

/* One event of the window. In flight, it is the fetch callback's argument,
 * so it outlives a freed sink (s = NULL) until that callback. */
struct wh_event {
	struct sink_webhook	*s;
	int64_t			 id;
	char			*msg_id;	/* webhook-id: the event key */
	char			*body;		/* the stored payload, verbatim */
	size_t			 len;
	enum wh_state		 state;
	unsigned		 epoch;		/* s->epoch when last sent */
	int			 stale;		/* a replay dropped it while in flight */
	uint64_t		 attempts;
	TAILQ_ENTRY(wh_event)	 entry;
};
TAILQ_HEAD(wh_events, wh_event);

struct sink_webhook {
	struct event_base	*base;
	struct ledger		*ledger;
	struct fetch		*fetch;

	char			*url;
	char			*where;		/* scheme://host[:port], for logs */
	/* Every configured secret; each delivery carries a signature by each. */
	unsigned char		 key[CONFIG_WEBHOOK_SECRETS_MAX][WH_SECRET_MAX];
	size_t			 keylen[CONFIG_WEBHOOK_SECRETS_MAX];
	int			 nkeys;
	int64_t			 timeout_ms;
	int64_t			 backoff_min_ms;
	int64_t			 backoff_max_ms;

	struct wh_events	 window;	/* ids after the cursor, in order */
	size_t			 nwindow;
	size_t			 inflight;
	int64_t			 cursor;	/* delivered without a gap */
	int64_t			 stored;	/* the cursor the ledger holds */
	int64_t			 loaded;	/* the last id read into the window */
	int64_t			 replays;	/* the sink row's count, as last read */
	struct wh_events	 stale;		/* in flight when a replay came */
	struct event		 check;		/* looks for a replay now and then */

	struct event		 timer;		/* next pump, resume or drain check */
	int64_t			 resume_at;	/* monotonic ms; 0 = not backing off */
	unsigned		 level;		/* backoff rounds in a row; > 0: probing */
	unsigned		 epoch;		/* bumped when a backoff round starts */
	uint64_t		 streak;	/* failures since the last 2xx */
	int			 db_failing;
	int			 disabled;	/* 410 Gone */
	int			 draining;
	void			(*drained)(void *);
	void			*drained_arg;

	uint64_t		 delivered;
	uint64_t		 failures;
};

static void	wh_timer_event(evutil_socket_t, short, void *);

int
sink_webhook_secret_decode(const char *secret, unsigned char *out,
    size_t outsz, size_t *len)
{
	static const char	 b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const char		*s;
	unsigned char		*tmp;
	size_t			 n, pad = 0, i, dlen;
	int			 r;

	*len = 0;
	if (secret == NULL || strncmp(secret, WH_SECRET_PREFIX,
	    strlen(WH_SECRET_PREFIX)) != 0)
		return -1;
	s = secret + strlen(WH_SECRET_PREFIX);
	n = strlen(s);
	if (n == 0 || n % 4 != 0 || n > INT_MAX / 2)
		return -1;
	while (pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	for (i = 0; i < n - pad; i++) {
		if (strchr(b64, s[i]) == NULL)
			return -1;
	}
	dlen = n / 4 * 3 - pad;
	if (dlen == 0 || dlen > outsz)
		return -1;
	tmp = xmalloc(n / 4 * 3);
	r = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	if (r < 0 || (size_t)r != n / 4 * 3) {
		OPENSSL_cleanse(tmp, n / 4 * 3);
		free(tmp);
		return -1;
	}
	memcpy(out, tmp, dlen);
	OPENSSL_cleanse(tmp, n / 4 * 3);
	free(tmp);
	*len = dlen;
	return 0;
}

int
sink_webhook_sign(const unsigned char *key, size_t keylen, const char *msg_id,
    int64_t ts, const char *body, size_t body_len, char *out, size_t outsz)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0;
	char		 tsbuf[32], *msg;
	size_t		 idlen, tslen, len;
	int		 r;

	/* "v1," + base64 of a SHA-256 (44 characters) + NUL */
	if (outsz < 3 + 44 + 1 || keylen > INT_MAX)
		return -1;
	r = snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
	if (r < 0 || (size_t)r >= sizeof(tsbuf))
		return -1;
	tslen = (size_t)r;
	idlen = strlen(msg_id);
	len = idlen + 1 + tslen + 1 + body_len;
	msg = xmalloc(len);
	memcpy(msg, msg_id, idlen);
	msg[idlen] = '.';
	memcpy(msg + idlen + 1, tsbuf, tslen);
	msg[idlen + 1 + tslen] = '.';
	memcpy(msg + idlen + 1 + tslen + 1, body, body_len);
	if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg,
	    len, mac, &maclen) == NULL || maclen != 32) {
		free(msg);
		return -1;
	}
	free(msg);
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)maclen);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

/* The URL without credentials, path or query (they may hold secrets), for
 * log lines. Caller frees. */
static char *
wh_where(const char *url)
{
	const char	*p, *host, *end, *at;

	if ((p = strstr(url, "://")) == NULL)
		return xstrdup("(webhook URL)");
	host = p + 3;
	end = host + strcspn(host, "/?#");
	for (at = host; at < end; at++) {
		if (*at == '@')
			host = at + 1;
	}
	return xasprintf("%.*s://%.*s", (int)(p - url), url,
	    (int)(end - host), host);
}

/* The webhook-id header value for an event key: bytes outside printable
 * ASCII, and '%' itself, are percent-encoded (so keys map one to one). */
static char *
wh_header_id(const char *key)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const unsigned char	*p;
	char			*out, *o;

	out = o = xmalloc(strlen(key) * 3 + 1);
	for (p = (const unsigned char *)key; *p != '\0'; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '%')
			*o++ = (char)*p;
		else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 0x0f];
		}
	}
	*o = '\0';
	return out;
}

/* The event key from a stored payload; the id when it has none (it always
 * has one: json-out writes it). Caller frees. */
static char *
wh_event_key(int64_t id, const char *payload)
{
	struct json_object	*obj, *v;
	char			*out = NULL;

	if ((obj = json_tokener_parse(payload)) != NULL &&
	    json_object_object_get_ex(obj, "key", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    json_object_get_string_len(v) > 0)
		out = wh_header_id(json_object_get_string(v));
	json_object_put(obj);
	if (out == NULL) {
		log_warnx("webhook: event %lld has no key in its payload; "
		    "sending its id as webhook-id", (long long)id);
		out = xasprintf("%lld", (long long)id);
	}
	return out;
}

static void
wh_event_free(struct wh_event *e)
{
	free(e->msg_id);
	free(e->body);
	free(e);
}

static int64_t
wh_backoff(const struct sink_webhook *s, unsigned level)
{
	uint32_t	 r;
	int64_t		 d = s->backoff_min_ms;

	while (level-- > 0 && d < s->backoff_max_ms)
		d *= 2;
	if (d > s->backoff_max_ms)
		d = s->backoff_max_ms;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)util_mono_ms() * 2654435761U;
	/* Jitter: a random point in [50%, 100%]. */
	return d / 2 + (int64_t)((double)(d - d / 2) *
	    ((double)r / 4294967296.0));
}

static void
wh_arm(struct sink_webhook *s, int64_t ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_del(&s->timer);
	evtimer_add(&s->timer, &tv);
}

/* Runs the pump from the loop soon, unless a backoff holds it. */
static void
wh_soon(struct sink_webhook *s)
{
	if (s->resume_at != 0 || evtimer_pending(&s->timer, NULL))
		return;
	wh_arm(s, 0);
}

/* Keeps the sink's state and last error in the ledger for `reconcilectl
 * sinks`; a failure to do so only costs that view, so it is only logged. */
static void
wh_note_state(struct sink_webhook *s, const char *state, const char *error)
{
	if (ledger_sink_state(s->ledger, WH_CURSOR, state, error,
	    util_now_ms()) == -1)
		log_debug("webhook %s: cannot store its state \"%s\": %s",
		    s->where, state, ledger_errmsg(s->ledger));
}

/* A replay moved the cursor back (k is the sink's row now): forget the
 * window and start again after the new cursor. What is in flight finishes
 * unheeded; the replay sends it again anyway, since it is after the new
 * cursor or was delivered already. */
static void
wh_rewind(struct sink_webhook *s, const struct ledger_sink *k)
{
	struct wh_event	*e;
	char		 user[160];

	if (ledger_last_replay_user(s->ledger, WH_CURSOR, user,
	    sizeof(user)) != 1)
		util_strlcpy(user, "?", sizeof(user));
	log_warning("webhook %s: cursor moved from %lld to %lld by a replay "
	    "(by %s): delivering the events after it again", s->where,
	    (long long)s->cursor, (long long)k->delivered_id, user);
	while ((e = TAILQ_FIRST(&s->window)) != NULL) {
		TAILQ_REMOVE(&s->window, e, entry);
		if (e->state == WH_INFLIGHT) {
			e->stale = 1;
			TAILQ_INSERT_TAIL(&s->stale, e, entry);
		} else
			wh_event_free(e);
	}
	s->nwindow = 0;
	s->cursor = s->stored = s->loaded = k->delivered_id;
	s->replays = k->replays;
}

/* Re-reads the sink's row; rewinds if a replay moved the cursor. Returns
 * 1 if it did, 0 if not, -1 if the row could not be read. */
static int
wh_check_replay(struct sink_webhook *s)
{
	struct ledger_sink	 k;

	if (ledger_sink_get(s->ledger, WH_CURSOR, &k) == -1)
		return -1;
	if (k.replays == s->replays)
		return 0;
	wh_rewind(s, &k);
	return 1;
}

static void
wh_store(struct sink_webhook *s)
{
	int	 r;

	if (s->stored == s->cursor)
		return;
	r = ledger_cursor_advance(s->ledger, WH_CURSOR, s->replays, s->cursor);
	if (r == 1) {
		if (wh_check_replay(s) == 1)
			return;
		r = -1;		/* not stored, and no replay says why */
	}
	if (r != 0) {
		if (!s->db_failing)
			log_warnx("webhook %s: cannot store the cursor (%lld): "
			    "%s; retrying", s->where, (long long)s->cursor,
			    ledger_errmsg(s->ledger));
		s->db_failing = 1;
		if (!evtimer_pending(&s->timer, NULL))
			wh_arm(s, WH_DB_RETRY_MS);
		return;
	}
	s->db_failing = 0;
	s->stored = s->cursor;
}

/* Drops the delivered events at the head of the window and moves the
 * cursor over them. */
static void
wh_advance(struct sink_webhook *s)
{
	struct wh_event	*e;

	while ((e = TAILQ_FIRST(&s->window)) != NULL && e->state == WH_DONE) {
		TAILQ_REMOVE(&s->window, e, entry);
		s->nwindow--;
		s->cursor = e->id;
		wh_event_free(e);
	}
	wh_store(s);
}

static int
wh_collect(int64_t id, const char *payload, void *arg)
{
	struct sink_webhook	*s = arg;
	struct wh_event		*e;

	e = xcalloc(1, sizeof(*e));
	e->s = s;
	e->id = id;
	e->len = strlen(payload);
	e->body = xstrndup(payload, e->len);
	e->msg_id = wh_event_key(id, payload);
	e->state = WH_WAITING;
	TAILQ_INSERT_TAIL(&s->window, e, entry);
	s->nwindow++;
	s->loaded = id;
	return 0;
}

/* Tops the window up from the ledger. */
static void
wh_fill(struct sink_webhook *s)
{
	int	 n;

	if (s->nwindow >= SINK_WEBHOOK_INFLIGHT)
		return;
	n = ledger_events(s->ledger, s->loaded,
	    (int)(SINK_WEBHOOK_INFLIGHT - s->nwindow), wh_collect, s);
	if (n == -1) {
		if (!s->db_failing)
			log_warnx("webhook %s: cannot read events: %s; "
			    "retrying", s->where, ledger_errmsg(s->ledger));
		s->db_failing = 1;
		if (!evtimer_pending(&s->timer, NULL))
			wh_arm(s, WH_DB_RETRY_MS);
		return;
	}
	if (s->stored == s->cursor)
		s->db_failing = 0;
}

static void	wh_done(const struct fetch_result *, void *);
static void	wh_failed(struct sink_webhook *, struct wh_event *,
		    const char *, int64_t);

static void
wh_send(struct sink_webhook *s, struct wh_event *e)
{
	struct fetch_request	 rq;
	const char		*headers[6];
	char			 sigs[CONFIG_WEBHOOK_SECRETS_MAX *
				    SINK_WEBHOOK_SIG_MAX];
	char			*h_id, *h_ts, *h_sig;
	int64_t			 ts = util_now_ms() / 1000;
	size_t			 off = 0;
	int			 i, rc;

	e->attempts++;
	e->epoch = s->epoch;
	/* Standard Webhooks: signatures separated by a space, so that a
	 * consumer holding either secret of a rotation accepts it. */
	for (i = 0; i < s->nkeys; i++) {
		if (i > 0)
			sigs[off++] = ' ';
		if (sink_webhook_sign(s->key[i], s->keylen[i], e->msg_id, ts,
		    e->body, e->len, sigs + off, sizeof(sigs) - off) == -1) {
			wh_failed(s, e, "cannot sign it (OpenSSL HMAC failed)",
			    -1);
			return;
		}
		off += strlen(sigs + off);
	}
	h_id = xasprintf("webhook-id: %s", e->msg_id);
	h_ts = xasprintf("webhook-timestamp: %lld", (long long)ts);
	h_sig = xasprintf("webhook-signature: %s", sigs);
	headers[0] = h_id;
	headers[1] = h_ts;
	headers[2] = h_sig;
	headers[3] = "Content-Type: application/json";
	headers[4] = "User-Agent: reconciled/" PACKAGE_VERSION;
	headers[5] = NULL;

	memset(&rq, 0, sizeof(rq));
	rq.url = s->url;
	rq.body = e->body;
	rq.body_len = e->len;
	rq.headers = headers;
	rq.timeout_ms = s->timeout_ms;
	rq.use_tls_identity = 0;	/* our Toss client cert is not theirs */
	rq.cut_body = 1;	/* a 2xx is a delivery, whatever follows it */

	/* fetch copies the body and the headers. */
	rc = fetch_submit(s->fetch, &rq, wh_done, e);
	free(h_id);
	free(h_ts);
	free(h_sig);
	if (rc == -1) {
		wh_failed(s, e, "the request could not be started", -1);
		return;
	}
	e->state = WH_INFLIGHT;
	s->inflight++;
}

/* Starts what may start: every waiting event of the window, or while
 * probing after failures the first one alone. */
static void
wh_pump(struct sink_webhook *s)
{
	struct wh_event	*e, *next;

	if (s->disabled || s->draining || s->resume_at != 0)
		return;
	wh_store(s);
	wh_fill(s);
	for (e = TAILQ_FIRST(&s->window); e != NULL; e = next) {
		next = TAILQ_NEXT(e, entry);
		if (e->state != WH_WAITING)
			continue;
		if (s->level > 0 && s->inflight > 0)
			break;
		wh_send(s, e);
		if (s->level > 0 || s->resume_at != 0)
			break;
	}
}

/* Counts a failure, logs the first of a streak and, unless the request
 * was sent before the current backoff round began, starts a longer one. */
static void
wh_failed(struct sink_webhook *s, struct wh_event *e, const char *why,
    int64_t retry_after_ms)
{
	int64_t	 delay;

	e->state = WH_WAITING;
	s->failures++;
	if (s->streak++ == 0) {
		log_warnx("webhook %s: event %s: %s; retrying with backoff "
		    "(%g s doubling to %g s), one event at a time until one "
		    "is accepted", s->where, e->msg_id, why,
		    (double)s->backoff_min_ms / 1000,
		    (double)s->backoff_max_ms / 1000);
		wh_note_state(s, "retrying", why);
	} else
		log_debug("webhook %s: event %s: %s (attempt %llu)", s->where,
		    e->msg_id, why, (unsigned long long)e->attempts);
	if (e->epoch != s->epoch || s->resume_at != 0)
		return;		/* sent before this round: counted already */
	delay = wh_backoff(s, s->level);
	if (retry_after_ms > delay)
		delay = retry_after_ms < s->backoff_max_ms ? retry_after_ms :
		    s->backoff_max_ms;
	log_debug("webhook %s: backing off %lld ms (round %u)", s->where,
	    (long long)delay, s->level + 1);
	s->level++;
	s->epoch++;
	s->resume_at = util_mono_ms() + delay;
	wh_arm(s, delay);
}

static void
wh_disable(struct sink_webhook *s, struct wh_event *e)
{
	e->state = WH_WAITING;
	s->failures++;
	if (s->disabled)
		return;
	s->disabled = 1;
	s->resume_at = 0;
	if (!s->draining)
		evtimer_del(&s->timer);
	log_warnx("webhook %s answered 410 Gone: webhook delivery disabled "
	    "until restart/reload", s->where);
	wh_note_state(s, "off", "answered 410 Gone");
	log_info("webhook %s: event %s and the ones after it stay in the "
	    "ledger until then", s->where, e->msg_id);
}

static void
wh_done(const struct fetch_result *res, void *arg)
{
	struct wh_event		*e = arg;
	struct sink_webhook	*s = e->s;
	char			 why[512];

	if (s == NULL) {
		/* Its sink was freed while this was in flight. */
		wh_event_free(e);
		return;
	}
	s->inflight--;
	if (e->stale) {
		TAILQ_REMOVE(&s->stale, e, entry);
		wh_event_free(e);
		goto next;
	}
	if (res->error == FETCH_OK && res->http_code >= 200 &&
	    res->http_code < 300) {
		e->state = WH_DONE;
		s->delivered++;
		/* Only an answer to a request sent since the last backoff
		 * began (the probe) ends it: a later event sent alongside
		 * the failing one says nothing about that one. */
		if (e->epoch == s->epoch) {
			if (s->streak > 0) {
				log_info("webhook %s: delivering again after "
				    "%llu failed attempts", s->where,
				    (unsigned long long)s->streak);
				wh_note_state(s, "ok", NULL);
			}
			s->streak = 0;
			s->level = 0;
		}
		wh_advance(s);
	} else if (res->error == FETCH_OK && res->http_code == 410)
		wh_disable(s, e);
	else {
		if (res->error == FETCH_OK)
			(void)snprintf(why, sizeof(why), "answered HTTP %ld",
			    res->http_code);
		else
			(void)snprintf(why, sizeof(why), "%s (%s)",
			    fetch_error_name(res->error), res->message);
		wh_failed(s, e, why, res->error == FETCH_OK ?
		    res->retry_after_ms : -1);
	}
next:
	if (s->draining) {
		if (s->inflight == 0)
			wh_arm(s, 0);
	} else
		wh_soon(s);
}

/* Now and then, and so also while idle, looks for a replay. */
static void
wh_check_event(evutil_socket_t fd, short kind, void *arg)
{
	struct sink_webhook	*s = arg;

	if (s->draining)
		return;
	if (wh_check_replay(s) == 1 && !s->disabled)
		wh_soon(s);
}

static void
wh_timer_event(evutil_socket_t fd, short kind, void *arg)
{
	struct sink_webhook	*s = arg;
	void			(*done)(void *);

	if (s->draining) {
		wh_store(s);
		if (s->inflight == 0 && (done = s->drained) != NULL) {
			s->drained = NULL;
			done(s->drained_arg);
		}
		return;
	}
	s->resume_at = 0;
	wh_pump(s);
}

/* Takes url, secret and timeout; on a reload also ends a 410 switch-off
 * and any wait, so the next attempt happens at once. */
static int
wh_configure(struct sink_webhook *s, const struct config *cfg, char **err)
{
	unsigned char	 key[CONFIG_WEBHOOK_SECRETS_MAX][WH_SECRET_MAX];
	size_t		 keylen[CONFIG_WEBHOOK_SECRETS_MAX];
	char		*copy, *p, *one;
	int		 same_url, n = 0, bad = 0;

	if (cfg->webhook_url == NULL || cfg->webhook_secret == NULL) {
		*err = xstrdup("webhook: webhook_url and webhook_secret must "
		    "both be set");
		return -1;
	}
	p = copy = xstrdup(cfg->webhook_secret);
	while (!bad && (one = strsep(&p, " \t")) != NULL) {
		if (*one == '\0')
			continue;
		bad = n == CONFIG_WEBHOOK_SECRETS_MAX ||
		    sink_webhook_secret_decode(one, key[n], sizeof(key[n]),
		    &keylen[n]) == -1;
		n++;
	}
	OPENSSL_cleanse(copy, strlen(cfg->webhook_secret));
	free(copy);
	if (bad || n == 0) {
		OPENSSL_cleanse(key, sizeof(key));
		*err = xasprintf("webhook: webhook_secret is not of the form "
		    WH_SECRET_PREFIX "<base64>, or up to %d of them separated "
		    "by spaces", CONFIG_WEBHOOK_SECRETS_MAX);
		return -1;
	}
	same_url = s->url != NULL && strcmp(s->url, cfg->webhook_url) == 0;
	free(s->url);
	free(s->where);
	s->url = xstrdup(cfg->webhook_url);
	s->where = wh_where(s->url);
	OPENSSL_cleanse(s->key, sizeof(s->key));
	memcpy(s->key, key, sizeof(key));
	memcpy(s->keylen, keylen, sizeof(keylen));
	s->nkeys = n;
	OPENSSL_cleanse(key, sizeof(key));
	s->timeout_ms = cfg->webhook_timeout_ms;
	if (s->disabled || !same_url) {
		if (s->disabled) {
			log_info("webhook %s: delivery enabled again by the "
			    "new configuration", s->where);
			wh_note_state(s, "ok", NULL);
		}
		s->disabled = 0;
		s->level = 0;
		s->streak = 0;
	}
	s->resume_at = 0;
	s->epoch++;
	return 0;
}

struct sink_webhook *
sink_webhook_new(struct event_base *base, struct ledger *ledger,
    struct fetch *fetch, const struct config *cfg, char **err)
{
	struct sink_webhook	*s;
	struct ledger_sink	 k;
	struct timeval		 tv = { WH_CHECK_MS / 1000,
				    (WH_CHECK_MS % 1000) * 1000 };

	s = xcalloc(1, sizeof(*s));
	s->base = base;
	s->ledger = ledger;
	s->fetch = fetch;
	s->backoff_min_ms = WH_BACKOFF_MIN_MS;
	s->backoff_max_ms = WH_BACKOFF_MAX_MS;
	TAILQ_INIT(&s->window);
	TAILQ_INIT(&s->stale);
	evtimer_assign(&s->timer, base, wh_timer_event, s);
	event_assign(&s->check, base, -1, EV_PERSIST, wh_check_event, s);
	if (wh_configure(s, cfg, err) == -1)
		goto fail;
	if (ledger_sink_get(ledger, WH_CURSOR, &k) == -1) {
		*err = xasprintf("webhook: cannot read its cursor: %s",
		    ledger_errmsg(ledger));
		goto fail;
	}
	s->cursor = k.delivered_id;
	s->replays = k.replays;
	s->stored = s->loaded = s->cursor;
	if (strcmp(k.state, "ok") != 0)
		wh_note_state(s, "ok", NULL);	/* a start ends a 410 */
	event_add(&s->check, &tv);
	return s;
fail:
	free(s->url);
	free(s->where);
	OPENSSL_cleanse(s->key, sizeof(s->key));
	free(s);
	return NULL;
}

void
sink_webhook_free(struct sink_webhook *s)
{
	struct wh_event	*e;

	if (s == NULL)
		return;
	evtimer_del(&s->timer);
	event_del(&s->check);
	while ((e = TAILQ_FIRST(&s->window)) != NULL) {
		TAILQ_REMOVE(&s->window, e, entry);
		if (e->state == WH_INFLIGHT)
			e->s = NULL;	/* wh_done frees it */
		else
			wh_event_free(e);
	}
	while ((e = TAILQ_FIRST(&s->stale)) != NULL) {
		TAILQ_REMOVE(&s->stale, e, entry);
		e->s = NULL;		/* all in flight: wh_done frees them */
	}
	free(s->url);
	free(s->where);
	OPENSSL_cleanse(s->key, sizeof(s->key));
	free(s);
}

int
sink_webhook_set_config(struct sink_webhook *s, const struct config *cfg,
    char **err)
{
	if (wh_configure(s, cfg, err) == -1)
		return -1;
	if (!s->draining) {
		evtimer_del(&s->timer);
		wh_soon(s);
	}
	return 0;
}

void
sink_webhook_set_backoff(struct sink_webhook *s, int64_t min_ms,
    int64_t max_ms)
{
	s->backoff_min_ms = min_ms > 0 ? min_ms : 1;
	s->backoff_max_ms = max_ms > s->backoff_min_ms ? max_ms :
	    s->backoff_min_ms;
}

void
sink_webhook_kick(struct sink_webhook *s)
{
	if (s->disabled || s->draining)
		return;
	wh_soon(s);
}

void
sink_webhook_drain(struct sink_webhook *s, void (*done)(void *), void *arg)
{
	s->draining = 1;
	s->drained = done;
	s->drained_arg = arg;
	s->resume_at = 0;
	wh_arm(s, 0);	/* done is called from the loop, never from here */
}

void
sink_webhook_get_stats(const struct sink_webhook *s,
    struct sink_webhook_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->delivered_id = s->cursor;
	st->delivered = s->delivered;
	st->failures = s->failures;
	st->inflight = s->inflight;
	st->disabled = s->disabled;
	st->failing = s->streak > 0 || s->disabled;
}
