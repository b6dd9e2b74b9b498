/* toss-sim: a stand-in for Toss's order-status API over HTTPS with mandatory
 * client certificates (libevent evhttp over OpenSSL bufferevents). It answers
 * from a scenario file of per-order status timelines, prefix templates, fault
 * rates and latency, and logs one JSON line per request for the tests. */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <json-c/json.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define SIM_PATH	"/api-partner/v1/apps-in-toss/order/get-order-status"
#define SIM_BODY_MAX	(16 * 1024)	/* larger request bodies get 413 */
#define SIM_HEADERS_MAX	(16 * 1024)
#define SIM_ID_MAX	1024		/* longest orderId accepted */
#define SIM_BIG_BODY	(10 * 1024 * 1024)
#define SIM_TRACK_MAX	(4 * 1024 * 1024)	/* orders whose first ask is kept */
#define SIM_FILE_MAX	(64 * 1024 * 1024)	/* largest scenario file */
#define SIM_IDLE_SECS	120
#define SIM_LATENCY_MAX	600000
#define SIM_FAIL_REASON	"요청에 실패했습니다."

enum sim_fault {
	FAULT_NONE,
	FAULT_HTTP5XX,
	FAULT_RATE429,
	FAULT_RESET,
	FAULT_STALL,
	FAULT_TRUNCATED,
	FAULT_GARBAGE,
	FAULT_FAIL,		/* last one with a global rate */
	FAULT_OTHER_ORDER_ID,
	FAULT_BIG_BODY,
	FAULT_NO_RETRY_AFTER_429,
	FAULT_COUNT
};
#define FAULT_GLOBAL_LAST FAULT_FAIL

static const char *const fault_names[FAULT_COUNT] = {
	"", "http5xx", "rate429", "reset", "stall", "truncated", "garbage",
	"fail", "otherOrderId", "bigBody", "noRetryAfter429"
};

/* A scenario string that may be absent (use the default), null or given. */
enum opt_mode { OPT_ABSENT, OPT_NULL, OPT_GIVEN };
struct opt_str {
	enum opt_mode	 mode;
	char		*s;
};

/* One timeline entry: from `after` on, answer this status or this fault. */
struct sim_step {
	uint64_t	 after_ms;
	char		*status;	/* NULL on a fault step without one */
	enum sim_fault	 fault;
	struct opt_str	 reason;
	struct opt_str	 at;		/* statusDeterminedAt */
	struct opt_str	 sku;		/* absent: the order's */
	struct opt_str	 retry_after;
	char		*error_code;	/* fault "fail" */
	int		 http;		/* 0: the default code */
};

/* An order of the scenario, or a template (then key is the id prefix). */
struct sim_order {
	char		*key;
	size_t		 keylen;
	char		*user_key;	/* NULL: any key is accepted */
	struct opt_str	 sku;
	struct sim_step	*steps;
	size_t		 nsteps;
};

struct sim_hent {
	struct sim_hent	*next;
	uint64_t	 hash;
	void		*val;
	int64_t		 mono_ms;
	int64_t		 wall_ms;
	size_t		 len;
	char		 key[];
};

/* Chained hash table keyed by strings; power-of-two bucket count. */
struct sim_table {
	struct sim_hent	**b;
	size_t		 nb;
	size_t		 n;
};

struct sim_scenario {
	struct sim_table orders;	/* orderId -> struct sim_order */
	struct sim_order *templates;
	size_t		 ntemplates;
	double		 rate[FAULT_GLOBAL_LAST + 1];
	struct opt_str	 retry_after;
	long		 latency_ms;	/* -1: not given */
};

enum reply_act { ACT_ANSWER, ACT_RESET, ACT_STALL, ACT_TRUNCATE };

/* What to do with one request, decided when it arrives. */
struct sim_reply {
	enum reply_act	 act;
	int		 code;
	const char	*content_type;
	char		 retry_after[64];	/* "" = no header */
	int		 allow_post;
	struct evbuffer	*body;
};

/* A request whose answer is deferred (latency, faults); owns its reply. */
struct sim_pending {
	TAILQ_ENTRY(sim_pending) entry;
	struct evhttp_request	*req;
	struct evhttp_connection *evcon;
	struct event		*timer;
	struct event		*closed;	/* peer hung up (EV_CLOSED) */
	struct sim_reply	 r;
	int			 written;	/* truncated: half the body sent */
};

/* A connection held open without TLS (--tls-stall). */
struct sim_stall {
	TAILQ_ENTRY(sim_stall)	 entry;
	struct event		*ev;
	evutil_socket_t		 fd;
};

static struct {
	struct event_base	*base;
	struct evhttp		*http;
	struct evconnlistener	*stall_listener;
	SSL_CTX			*ctx;
	struct sim_scenario	*sc;
	struct sim_table	 clocks;	/* orderId -> first ask */
	const char		*scenario_path;
	FILE			*log;
	long			 cli_latency;	/* -1: not given */
	uint64_t		 rng;
	int			 early_close;
	char			*pad;		/* bigBody filler, made once */
	uint64_t		 nrequests;
	int			 track_warned;
	struct json_tokener	*tok;
	TAILQ_HEAD(, sim_pending) pendings;
	TAILQ_HEAD(, sim_stall)	 stalls;
} sim;

static void	 warnx_(const char *, ...) __attribute__((format(printf, 1, 2)));
static void	 fatalx_(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));

static void
warnx_(const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "toss-sim: %s\n", buf);
}

static void
fatalx_(const char *fmt, ...)
{
	va_list	 ap;
	char	 buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	fprintf(stderr, "toss-sim: %s\n", buf);
	exit(1);
}

/* Prints and clears OpenSSL's error queue after a message of ours. */
static void
warn_ssl(const char *what)
{
	unsigned long	 e;
	char		 buf[256];

	warnx_("%s", what);
	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof buf);
		fprintf(stderr, "toss-sim:   %s\n", buf);
	}
}

static void *
xcalloc(size_t n, size_t size)
{
	void	*p;

	if ((p = calloc(n, size)) == NULL)
		fatalx_("out of memory");
	return p;
}

static char *
xstrndup(const char *s, size_t len)
{
	char	*p;

	p = xcalloc(1, len + 1);
	memcpy(p, s, len);
	return p;
}

static int64_t
clock_ms(clockid_t id)
{
	struct timespec	 ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64: small, fast and the same sequence for the same --seed. */
static uint64_t
rng_next(void)
{
	uint64_t	 z;

	z = (sim.rng += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double
rng_uniform(void)
{
	return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t
table_hash(const char *key, size_t len)
{
	uint64_t	 h = UINT64_C(0xcbf29ce484222325);
	size_t		 i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static struct sim_hent *
table_find(const struct sim_table *t, const char *key, size_t len)
{
	struct sim_hent	*e;
	uint64_t	 h;

	if (t->nb == 0)
		return NULL;
	h = table_hash(key, len);
	for (e = t->b[h & (t->nb - 1)]; e != NULL; e = e->next) {
		if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
			return e;
	}
	return NULL;
}

/* Adds key, which must not be present yet; returns the new entry. */
static struct sim_hent *
table_add(struct sim_table *t, const char *key, size_t len)
{
	struct sim_hent	*e, *next, **nb;
	size_t		 i, n;

	if (t->n >= t->nb) {
		n = t->nb == 0 ? 64 : t->nb * 2;
		nb = xcalloc(n, sizeof *nb);
		for (i = 0; i < t->nb; i++) {
			for (e = t->b[i]; e != NULL; e = next) {
				next = e->next;
				e->next = nb[e->hash & (n - 1)];
				nb[e->hash & (n - 1)] = e;
			}
		}
		free(t->b);
		t->b = nb;
		t->nb = n;
	}
	e = xcalloc(1, sizeof *e + len + 1);
	memcpy(e->key, key, len);
	e->len = len;
	e->hash = table_hash(key, len);
	e->next = t->b[e->hash & (t->nb - 1)];
	t->b[e->hash & (t->nb - 1)] = e;
	t->n++;
	return e;
}

static void
table_free(struct sim_table *t, void (*freeval)(void *))
{
	struct sim_hent	*e, *next;
	size_t		 i;

	for (i = 0; i < t->nb; i++) {
		for (e = t->b[i]; e != NULL; e = next) {
			next = e->next;
			if (freeval != NULL)
				freeval(e->val);
			free(e);
		}
	}
	free(t->b);
	memset(t, 0, sizeof *t);
}

/*
 * Scenario files.
 */

struct scen_ctx {
	const char	*file;
	char		*err;
	size_t		 errlen;
};

static int	 scen_fail(struct scen_ctx *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* Records "FILE: WHERE: message" as the error; always returns -1. */
static int
scen_fail(struct scen_ctx *c, const char *where, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "%s: %s: %s", c->file, where, msg);
	return -1;
}

static void
opt_free(struct opt_str *o)
{
	free(o->s);
	o->s = NULL;
}

static void
order_clear(struct sim_order *o)
{
	size_t	 i;

	for (i = 0; i < o->nsteps; i++) {
		free(o->steps[i].status);
		opt_free(&o->steps[i].reason);
		opt_free(&o->steps[i].at);
		opt_free(&o->steps[i].sku);
		opt_free(&o->steps[i].retry_after);
		free(o->steps[i].error_code);
	}
	free(o->steps);
	free(o->key);
	free(o->user_key);
	opt_free(&o->sku);
	memset(o, 0, sizeof *o);
}

static void
order_free(void *p)
{
	struct sim_order	*o = p;

	if (o == NULL)
		return;
	order_clear(o);
	free(o);
}

static void
scen_free(struct sim_scenario *sc)
{
	size_t	 i;

	if (sc == NULL)
		return;
	table_free(&sc->orders, order_free);
	for (i = 0; i < sc->ntemplates; i++)
		order_clear(&sc->templates[i]);
	free(sc->templates);
	opt_free(&sc->retry_after);
	free(sc);
}

/* Rejects keys not in allowed (NULL-terminated); "_..." keys are comments. */
static int
scen_keys(struct scen_ctx *c, const char *where, struct json_object *o,
    const char *const *allowed)
{
	struct json_object_iterator	 it, end;
	const char			*k;
	size_t				 i;

	it = json_object_iter_begin(o);
	end = json_object_iter_end(o);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		k = json_object_iter_peek_name(&it);
		if (k[0] == '_')
			continue;
		for (i = 0; allowed[i] != NULL; i++) {
			if (strcmp(k, allowed[i]) == 0)
				break;
		}
		if (allowed[i] == NULL)
			return scen_fail(c, where, "unknown key \"%s\"", k);
	}
	return 0;
}

/* "250ms", "2s", "1.5m", "1h", "0" (or the number 0) -> milliseconds. */
static int
scen_duration(const char *s, uint64_t *out)
{
	uint64_t	 whole = 0, frac = 0, unit, fdiv = 1;
	const char	*p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > UINT64_C(100000000000))
			return -1;
		whole = whole * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -1;
		for (; *p >= '0' && *p <= '9'; p++) {
			if (fdiv < 1000) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				fdiv *= 10;
			}
		}
	}
	if (strcmp(p, "ms") == 0)
		unit = 1;
	else if (strcmp(p, "s") == 0)
		unit = 1000;
	else if (strcmp(p, "m") == 0)
		unit = 60000;
	else if (strcmp(p, "h") == 0)
		unit = 3600000;
	else if (*p == '\0' && whole == 0 && frac == 0)
		unit = 1;
	else
		return -1;
	if (whole > UINT64_C(100000000000) / unit)
		return -1;
	*out = whole * unit + frac * unit / fdiv;
	return 0;
}

/* Reads key of o as an optional string: absent, null or a string. */
static int
scen_opt(struct scen_ctx *c, const char *where, struct json_object *o,
    const char *key, struct opt_str *out)
{
	struct json_object	*v;

	out->mode = OPT_ABSENT;
	out->s = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (v == NULL) {
		out->mode = OPT_NULL;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return scen_fail(c, where, "\"%s\" must be a string or null", key);
	out->mode = OPT_GIVEN;
	out->s = xstrndup(json_object_get_string(v),
	    (size_t)json_object_get_string_len(v));
	return 0;
}

/* retryAfter: a number of seconds, a string sent as is, or null. */
static int
scen_retry_after(struct scen_ctx *c, const char *where, struct json_object *o,
    struct opt_str *out)
{
	struct json_object	*v;
	int64_t			 n;
	char			 buf[32];

	if (json_object_object_get_ex(o, "retryAfter", &v) &&
	    json_object_is_type(v, json_type_int)) {
		n = json_object_get_int64(v);
		if (n < 0 || n > 86400 * 365)
			return scen_fail(c, where, "retryAfter out of range");
		snprintf(buf, sizeof buf, "%" PRId64, n);
		out->mode = OPT_GIVEN;
		out->s = xstrndup(buf, strlen(buf));
		return 0;
	}
	if (scen_opt(c, where, o, "retryAfter", out) == -1)
		return scen_fail(c, where,
		    "retryAfter must be seconds, a string or null");
	if (out->mode == OPT_GIVEN && (strchr(out->s, '\r') != NULL ||
	    strchr(out->s, '\n') != NULL || strlen(out->s) >= 64))
		return scen_fail(c, where, "retryAfter is not a header value");
	return 0;
}

static enum sim_fault
fault_by_name(const char *name)
{
	int	 i;

	for (i = 1; i < FAULT_COUNT; i++) {
		if (strcmp(name, fault_names[i]) == 0)
			return (enum sim_fault)i;
	}
	return FAULT_NONE;
}

static int
scen_step(struct scen_ctx *c, const char *where, struct json_object *o,
    struct sim_step *st)
{
	static const char *const keys[] = { "after", "status", "fault",
	    "reason", "determinedAt", "sku", "http", "errorCode", "retryAfter",
	    NULL };
	struct json_object	*v;
	int64_t			 n;

	if (!json_object_is_type(o, json_type_object))
		return scen_fail(c, where, "must be an object");
	if (scen_keys(c, where, o, keys) == -1)
		return -1;
	if (json_object_object_get_ex(o, "after", &v)) {
		if (json_object_is_type(v, json_type_int) &&
		    json_object_get_int64(v) == 0)
			st->after_ms = 0;
		else if (!json_object_is_type(v, json_type_string) ||
		    scen_duration(json_object_get_string(v), &st->after_ms) == -1)
			return scen_fail(c, where, "\"after\" must be a duration"
			    " like \"250ms\", \"2s\", \"1m\" or \"1h\"");
	}
	if (json_object_object_get_ex(o, "status", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return scen_fail(c, where, "\"status\" must be a string");
		st->status = xstrndup(json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
	}
	if (json_object_object_get_ex(o, "fault", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    (st->fault = fault_by_name(json_object_get_string(v))) ==
		    FAULT_NONE)
			return scen_fail(c, where, "unknown fault %s",
			    json_object_to_json_string(v));
	} else if (st->status == NULL)
		return scen_fail(c, where, "needs a \"status\" or a \"fault\"");
	if (scen_opt(c, where, o, "reason", &st->reason) == -1 ||
	    scen_opt(c, where, o, "determinedAt", &st->at) == -1 ||
	    scen_opt(c, where, o, "sku", &st->sku) == -1 ||
	    scen_retry_after(c, where, o, &st->retry_after) == -1)
		return -1;
	if (json_object_object_get_ex(o, "errorCode", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return scen_fail(c, where, "\"errorCode\" must be a string");
		st->error_code = xstrndup(json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
	}
	if (json_object_object_get_ex(o, "http", &v)) {
		n = json_object_is_type(v, json_type_int) ?
		    json_object_get_int64(v) : 0;
		if (n < 200 || n > 599)
			return scen_fail(c, where, "\"http\" must be 200..599");
		st->http = (int)n;
	}
	return 0;
}

/* Fills o (key already set) from an order or template object. */
static int
scen_order(struct scen_ctx *c, const char *where, struct json_object *obj,
    struct sim_order *o, const char *const *keys)
{
	struct json_object	*v, *tl;
	char			 w[320];
	size_t			 i;
	int64_t			 n;

	if (!json_object_is_type(obj, json_type_object))
		return scen_fail(c, where, "must be an object");
	if (scen_keys(c, where, obj, keys) == -1)
		return -1;
	if (json_object_object_get_ex(obj, "userKey", &v) && v != NULL) {
		if (json_object_is_type(v, json_type_int)) {
			n = json_object_get_int64(v);
			snprintf(w, sizeof w, "%" PRId64, n);
			o->user_key = xstrndup(w, strlen(w));
		} else if (json_object_is_type(v, json_type_string)) {
			if (strcmp(json_object_get_string(v), "*") != 0)
				o->user_key = xstrndup(json_object_get_string(v),
				    (size_t)json_object_get_string_len(v));
		} else
			return scen_fail(c, where,
			    "\"userKey\" must be a string or a number");
	}
	if (scen_opt(c, where, obj, "sku", &o->sku) == -1)
		return -1;
	if (!json_object_object_get_ex(obj, "timeline", &tl) ||
	    !json_object_is_type(tl, json_type_array) ||
	    json_object_array_length(tl) == 0)
		return scen_fail(c, where, "needs a non-empty \"timeline\" array");
	o->nsteps = json_object_array_length(tl);
	o->steps = xcalloc(o->nsteps, sizeof *o->steps);
	for (i = 0; i < o->nsteps; i++) {
		snprintf(w, sizeof w, "%s.timeline[%zu]", where, i);
		if (scen_step(c, w, json_object_array_get_idx(tl, i),
		    &o->steps[i]) == -1)
			return -1;
		if (i > 0 && o->steps[i].after_ms < o->steps[i - 1].after_ms)
			return scen_fail(c, w, "\"after\" goes backwards");
	}
	return 0;
}

static int
scen_faults(struct scen_ctx *c, struct json_object *f, struct sim_scenario *sc)
{
	static const char *const keys[] = { "http5xx", "rate429", "reset",
	    "stall", "truncated", "garbage", "fail", "retryAfter", NULL };
	struct json_object	*v;
	double			 sum = 0;
	int			 i;

	if (!json_object_is_type(f, json_type_object))
		return scen_fail(c, "faults", "must be an object");
	if (scen_keys(c, "faults", f, keys) == -1)
		return -1;
	for (i = 1; i <= FAULT_GLOBAL_LAST; i++) {
		if (!json_object_object_get_ex(f, fault_names[i], &v))
			continue;
		if (!json_object_is_type(v, json_type_double) &&
		    !json_object_is_type(v, json_type_int))
			return scen_fail(c, "faults", "%s must be a number",
			    fault_names[i]);
		sc->rate[i] = json_object_get_double(v);
		if (!(sc->rate[i] >= 0.0 && sc->rate[i] <= 1.0))
			return scen_fail(c, "faults", "%s must be in [0, 1]",
			    fault_names[i]);
		sum += sc->rate[i];
	}
	if (sum > 1.0 + 1e-9)
		return scen_fail(c, "faults", "the rates add up to more than 1");
	return scen_retry_after(c, "faults", f, &sc->retry_after);
}

static int
scen_build(struct scen_ctx *c, struct json_object *root, struct sim_scenario *sc)
{
	static const char *const top_keys[] = { "orders", "templates", "faults",
	    "latencyMs", NULL };
	static const char *const order_keys[] = { "userKey", "sku", "timeline",
	    NULL };
	static const char *const tmpl_keys[] = { "prefix", "userKey", "sku",
	    "timeline", NULL };
	struct json_object_iterator	 it, end;
	struct json_object		*v, *t, *p;
	struct sim_order		*o;
	struct sim_hent			*e;
	const char			*id;
	char				 w[320];
	size_t				 i, len;
	int64_t				 n;

	if (!json_object_is_type(root, json_type_object))
		return scen_fail(c, "top level", "must be an object");
	if (scen_keys(c, "top level", root, top_keys) == -1)
		return -1;
	if (json_object_object_get_ex(root, "orders", &v)) {
		if (!json_object_is_type(v, json_type_object))
			return scen_fail(c, "orders", "must be an object");
		it = json_object_iter_begin(v);
		end = json_object_iter_end(v);
		for (; !json_object_iter_equal(&it, &end);
		    json_object_iter_next(&it)) {
			id = json_object_iter_peek_name(&it);
			len = strlen(id);
			snprintf(w, sizeof w, "orders.\"%.200s\"", id);
			if (len == 0 || len > SIM_ID_MAX)
				return scen_fail(c, w, "bad orderId length");
			o = xcalloc(1, sizeof *o);
			e = table_add(&sc->orders, id, len);
			e->val = o;
			o->key = xstrndup(id, len);
			o->keylen = len;
			if (scen_order(c, w, json_object_iter_peek_value(&it), o,
			    order_keys) == -1)
				return -1;
		}
	}
	if (json_object_object_get_ex(root, "templates", &v)) {
		if (!json_object_is_type(v, json_type_array))
			return scen_fail(c, "templates", "must be an array");
		sc->ntemplates = json_object_array_length(v);
		sc->templates = xcalloc(sc->ntemplates + 1,
		    sizeof *sc->templates);
		for (i = 0; i < sc->ntemplates; i++) {
			snprintf(w, sizeof w, "templates[%zu]", i);
			o = &sc->templates[i];
			t = json_object_array_get_idx(v, i);
			if (!json_object_is_type(t, json_type_object) ||
			    !json_object_object_get_ex(t, "prefix", &p) ||
			    !json_object_is_type(p, json_type_string))
				return scen_fail(c, w, "needs a \"prefix\" string");
			o->keylen = (size_t)json_object_get_string_len(p);
			o->key = xstrndup(json_object_get_string(p), o->keylen);
			if (scen_order(c, w, t, o, tmpl_keys) == -1)
				return -1;
		}
	}
	if (json_object_object_get_ex(root, "faults", &v) && v != NULL &&
	    scen_faults(c, v, sc) == -1)
		return -1;
	if (json_object_object_get_ex(root, "latencyMs", &v) && v != NULL) {
		n = json_object_is_type(v, json_type_int) ?
		    json_object_get_int64(v) : -1;
		if (n < 0 || n > SIM_LATENCY_MAX)
			return scen_fail(c, "latencyMs", "must be 0..%d",
			    SIM_LATENCY_MAX);
		sc->latency_ms = (long)n;
	}
	return 0;
}

/* Loads a scenario file; NULL with err set on any problem. */
static struct sim_scenario *
scen_load(const char *path, char *err, size_t errlen)
{
	struct scen_ctx		 c = { path, err, errlen };
	struct sim_scenario	*sc = NULL;
	struct json_tokener	*tok = NULL;
	struct json_object	*root = NULL;
	FILE			*f;
	char			*buf;
	size_t			 len, end, i, line;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = xcalloc(1, SIM_FILE_MAX + 1);
	len = fread(buf, 1, SIM_FILE_MAX + 1, f);
	if (ferror(f) || len > SIM_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path, ferror(f) ?
		    "read error" : "file too large");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	if ((tok = json_tokener_new()) == NULL)
		fatalx_("out of memory");
	root = json_tokener_parse_ex(tok, buf, (int)len);
	end = json_tokener_get_parse_end(tok);
	if (root == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		for (i = 0, line = 1; i < end && i < len; i++)
			line += buf[i] == '\n';
		snprintf(err, errlen, "%s:%zu: JSON: %s", path, line,
		    root == NULL && json_tokener_get_error(tok) ==
		    json_tokener_continue ? "unexpected end of file" :
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		goto out;
	}
	for (i = end; i < len; i++) {
		if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' &&
		    buf[i] != '\r') {
			snprintf(err, errlen, "%s: JSON: trailing garbage", path);
			goto out;
		}
	}
	sc = xcalloc(1, sizeof *sc);
	sc->latency_ms = -1;
	if (scen_build(&c, root, sc) == -1) {
		scen_free(sc);
		sc = NULL;
	}
out:
	json_object_put(root);
	json_tokener_free(tok);
	free(buf);
	return sc;
}

/*
 * Answers.
 */

static const char *
default_reason(const char *status)
{
	static const struct {
		const char	*status;
		const char	*reason;
	} r[] = {
		{ "PURCHASED", "구매가 완료되었어요." },
		{ "PAYMENT_COMPLETED", "결제가 완료되었어요." },
		{ "ORDER_IN_PROGRESS", "주문이 진행 중이에요." },
		{ "FAILED", "주문이 실패했어요." },
		{ "REFUNDED", "환불이 완료되었어요." },
		{ "NOT_FOUND", "주문을 찾을 수 없어요." },
		{ "MINIAPP_MISMATCH", "미니앱 정보가 일치하지 않아요." },
		{ "ERROR", "일시적인 오류가 발생했어요." },
	};
	size_t	 i;

	for (i = 0; i < sizeof r / sizeof r[0]; i++) {
		if (strcmp(status, r[i].status) == 0)
			return r[i].reason;
	}
	return "";
}

static const char *
http_phrase(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Status";
	}
}

/* Appends o as compact JSON to buf and drops o. */
static void
json_emit(struct evbuffer *buf, struct json_object *o)
{
	const char	*s;
	size_t		 len;

	s = json_object_to_json_string_length(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	evbuffer_add(buf, s, len);
	json_object_put(o);
}

static struct json_object *
json_opt(const struct opt_str *o, const char *dflt)
{
	if (o->mode == OPT_GIVEN)
		return json_object_new_string(o->s);
	if (o->mode == OPT_NULL || dflt == NULL)
		return NULL;
	return json_object_new_string(dflt);
}

/* Everything known about the order a request asked for. */
struct sim_ask {
	const char		*order_id;
	const char		*user_key;
	const struct sim_order	*spec;		/* NULL: unknown order */
	int64_t			 first_wall;	/* first ask, unix ms */
	int64_t			 elapsed;	/* ms since then */
	const struct sim_step	*step;		/* current entry or NULL */
	const struct sim_step	*base;		/* current status entry or NULL */
};

static void
reply_init(struct sim_reply *r, int code)
{
	memset(r, 0, sizeof *r);
	r->act = ACT_ANSWER;
	r->code = code;
	r->content_type = "application/json";
	if ((r->body = evbuffer_new()) == NULL)
		fatalx_("out of memory");
}

static void
reply_fail(struct sim_reply *r, int code, const char *error_code)
{
	struct json_object	*o, *e;

	reply_init(r, code);
	o = json_object_new_object();
	e = json_object_new_object();
	json_object_object_add(e, "errorCode",
	    json_object_new_string(error_code));
	json_object_object_add(e, "reason",
	    json_object_new_string(SIM_FAIL_REASON));
	json_object_object_add(o, "resultType",
	    json_object_new_string("FAIL"));
	json_object_object_add(o, "error", e);
	json_emit(r->body, o);
}

/* The "success" object for the status entry st (NULL: not found). */
static struct json_object *
success_object(const struct sim_ask *a, const struct sim_step *st,
    const char *order_id)
{
	struct json_object	*s;
	struct tm		 tm;
	time_t			 t;
	char			 at[32];

	s = json_object_new_object();
	json_object_object_add(s, "orderId", json_object_new_string(order_id));
	if (st == NULL) {
		json_object_object_add(s, "status",
		    json_object_new_string("NOT_FOUND"));
		json_object_object_add(s, "reason",
		    json_object_new_string(default_reason("NOT_FOUND")));
		return s;
	}
	if (st->sku.mode != OPT_ABSENT)
		json_object_object_add(s, "sku", json_opt(&st->sku, NULL));
	else if (a->spec->sku.mode != OPT_ABSENT)
		json_object_object_add(s, "sku", json_opt(&a->spec->sku, NULL));
	if (st->at.mode == OPT_ABSENT) {
		/* Korea time, no offset, as the real API writes it. */
		t = (time_t)((a->first_wall + (int64_t)st->after_ms) / 1000) +
		    9 * 3600;
		if (gmtime_r(&t, &tm) == NULL ||
		    strftime(at, sizeof at, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			at[0] = '\0';
		json_object_object_add(s, "statusDeterminedAt",
		    json_object_new_string(at));
	} else
		json_object_object_add(s, "statusDeterminedAt",
		    json_opt(&st->at, NULL));
	json_object_object_add(s, "status", json_object_new_string(st->status));
	json_object_object_add(s, "reason",
	    json_opt(&st->reason, default_reason(st->status)));
	return s;
}

static void
reply_success(struct sim_reply *r, const struct sim_ask *a,
    const struct sim_step *st, const char *order_id, int code)
{
	struct json_object	*o;

	reply_init(r, code);
	o = json_object_new_object();
	json_object_object_add(o, "resultType",
	    json_object_new_string("SUCCESS"));
	json_object_object_add(o, "success", success_object(a, st, order_id));
	json_emit(r->body, o);
}

/* A SUCCESS envelope whose reason is 10 MB long. */
static void
reply_big(struct sim_reply *r, const struct sim_ask *a, int code)
{
	struct json_object	*id;
	const char		*status = "NOT_FOUND";

	if (a->base != NULL)
		status = a->base->status;
	if (sim.pad == NULL) {
		sim.pad = xcalloc(1, SIM_BIG_BODY);
		memset(sim.pad, 'x', SIM_BIG_BODY);
	}
	reply_init(r, code);
	id = json_object_new_string(a->order_id);
	evbuffer_add_printf(r->body,
	    "{\"resultType\":\"SUCCESS\",\"success\":{\"orderId\":%s,",
	    json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN));
	json_object_put(id);
	id = json_object_new_string(status);
	evbuffer_add_printf(r->body, "\"status\":%s,\"reason\":\"",
	    json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN));
	json_object_put(id);
	evbuffer_add_reference(r->body, sim.pad, SIM_BIG_BODY, NULL, NULL);
	evbuffer_add(r->body, "\"}}", 3);
}

/* Builds the answer for fault f; st is the timeline entry that asked for it,
 * or NULL for a global fault. */
static void
reply_fault(struct sim_reply *r, enum sim_fault f, const struct sim_ask *a,
    const struct sim_step *st)
{
	static const char html[] = "<html>\r\n<head><title>502 Bad Gateway"
	    "</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
	    "</center>\r\n<hr><center>toss-sim</center>\r\n</body>\r\n"
	    "</html>\r\n";
	const struct opt_str	*ra;
	char			*other;
	size_t			 len;
	int			 code = st != NULL ? st->http : 0;

	switch (f) {
	case FAULT_HTTP5XX:
		reply_init(r, code != 0 ? code : 503);
		r->content_type = "text/plain";
		evbuffer_add_printf(r->body, "%d %s\n", r->code,
		    http_phrase(r->code));
		break;
	case FAULT_RATE429:
	case FAULT_NO_RETRY_AFTER_429:
		reply_fail(r, code != 0 ? code : 429, "TOO_MANY_REQUESTS");
		ra = &sim.sc->retry_after;
		if (st != NULL && st->retry_after.mode != OPT_ABSENT)
			ra = &st->retry_after;
		if (f == FAULT_RATE429 && ra->mode == OPT_GIVEN)
			snprintf(r->retry_after, sizeof r->retry_after, "%s",
			    ra->s);
		break;
	case FAULT_RESET:
		reply_init(r, 0);
		r->act = ACT_RESET;
		break;
	case FAULT_STALL:
		reply_init(r, 0);
		r->act = ACT_STALL;
		break;
	case FAULT_TRUNCATED:
		reply_success(r, a, a->base, a->order_id, code != 0 ? code : 200);
		r->act = ACT_TRUNCATE;
		break;
	case FAULT_GARBAGE:
		reply_init(r, code != 0 ? code : 502);
		r->content_type = "text/html";
		evbuffer_add(r->body, html, sizeof html - 1);
		break;
	case FAULT_FAIL:
		reply_fail(r, code != 0 ? code : 200,
		    st != NULL && st->error_code != NULL ? st->error_code :
		    "INTERNAL_ERROR");
		break;
	case FAULT_OTHER_ORDER_ID:
		len = strlen(a->order_id);
		other = xcalloc(1, len + sizeof "-other");
		memcpy(other, a->order_id, len);
		memcpy(other + len, "-other", sizeof "-other");
		reply_success(r, a, a->base, other, code != 0 ? code : 200);
		free(other);
		break;
	case FAULT_BIG_BODY:
		reply_big(r, a, code != 0 ? code : 200);
		break;
	case FAULT_NONE:
	case FAULT_COUNT:
	default:
		reply_init(r, 500);
		break;
	}
}

/*
 * Request log and deferred answers.
 */

/*
 * The common name of the verified client certificate on ssl, as UTF-8, into
 * buf; NULL when there is none (no connection, a handshake refused before
 * the certificate was accepted, no CN, a CN that does not fit).
 */
static const char *
peer_cn(const SSL *ssl, char *buf, size_t len)
{
	const X509		*x;
	const X509_NAME		*name;
	const X509_NAME_ENTRY	*e;
	unsigned char		*utf8;
	int			 i, n;

	if (ssl == NULL)
		return NULL;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	x = SSL_get0_peer_certificate(ssl);
#else
	{
		X509	*p;

		/* The session keeps its reference: x stays valid. */
		if ((p = SSL_get_peer_certificate(ssl)) != NULL)
			X509_free(p);
		x = p;
	}
#endif
	if (x == NULL || (name = X509_get_subject_name(x)) == NULL ||
	    (i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    (e = X509_NAME_get_entry(name, i)) == NULL ||
	    (n = ASN1_STRING_to_UTF8(&utf8,
	    X509_NAME_ENTRY_get_data(e))) < 0)
		return NULL;
	if ((size_t)n >= len || memchr(utf8, '\0', (size_t)n) != NULL) {
		OPENSSL_free(utf8);
		return NULL;
	}
	memcpy(buf, utf8, (size_t)n);
	buf[n] = '\0';
	OPENSSL_free(utf8);
	return buf;
}

/* The SSL of the connection req came on, or NULL. */
static const SSL *
req_ssl(struct evhttp_request *req)
{
	struct evhttp_connection	*evcon;
	struct bufferevent		*bev;

	if (req == NULL ||
	    (evcon = evhttp_request_get_connection(req)) == NULL ||
	    (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return NULL;
	return bufferevent_openssl_get_ssl(bev);
}

/*
 * One log line. ssl is the connection's (NULL when there is none): its
 * client certificate's CN is the line's "client".
 */
static void
log_request(int64_t t, const SSL *ssl, const char *order_id,
    const char *user_key, const char *outcome, int http, const char *detail)
{
	struct json_object	*o;
	const char		*cn;
	char			 cnbuf[256];

	if (sim.log == NULL)
		return;
	cn = peer_cn(ssl, cnbuf, sizeof cnbuf);
	o = json_object_new_object();
	json_object_object_add(o, "t", json_object_new_int64(t));
	json_object_object_add(o, "orderId",
	    order_id != NULL ? json_object_new_string(order_id) : NULL);
	json_object_object_add(o, "userKey",
	    user_key != NULL ? json_object_new_string(user_key) : NULL);
	json_object_object_add(o, "client",
	    cn != NULL ? json_object_new_string(cn) : NULL);
	json_object_object_add(o, "outcome", json_object_new_string(outcome));
	json_object_object_add(o, "http", json_object_new_int(http));
	if (detail != NULL)
		json_object_object_add(o, "detail",
		    json_object_new_string(detail));
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE), sim.log);
	fputc('\n', sim.log);
	fflush(sim.log);
	json_object_put(o);
}

/* Sends r on req now; frees r's body. */
static void
reply_send(struct evhttp_request *req, struct sim_reply *r)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);

	if (r->body != NULL && evbuffer_get_length(r->body) > 0)
		evhttp_add_header(h, "Content-Type", r->content_type);
	if (r->retry_after[0] != '\0')
		evhttp_add_header(h, "Retry-After", r->retry_after);
	if (r->allow_post)
		evhttp_add_header(h, "Allow", "POST");
	evhttp_send_reply(req, r->code, http_phrase(r->code), r->body);
	evbuffer_free(r->body);
	r->body = NULL;
}

/* Forgets p without touching its request or connection. */
static void
pending_release(struct sim_pending *p)
{
	TAILQ_REMOVE(&sim.pendings, p, entry);
	if (p->evcon != NULL)
		evhttp_connection_set_closecb(p->evcon, NULL, NULL);
	if (p->timer != NULL)
		event_free(p->timer);
	if (p->closed != NULL)
		event_free(p->closed);
	if (p->r.body != NULL)
		evbuffer_free(p->r.body);
	free(p);
}

/* Closes p's connection without an answer (rst: with a TCP reset). */
static void
pending_drop(struct sim_pending *p, int rst)
{
	struct evhttp_connection	*evcon = p->evcon;
	struct bufferevent		*bev;
	struct linger			 l = { 1, 0 };
	struct sockaddr			 sa;
	evutil_socket_t			 fd;

	pending_release(p);
	if (evcon == NULL)
		return;
	if (rst && (bev = evhttp_connection_get_bufferevent(evcon)) != NULL &&
	    (fd = bufferevent_getfd(bev)) != -1) {
		/*
		 * evhttp shuts down the write side (a FIN) before it closes,
		 * so a zero linger alone would not be seen. Dissolving the
		 * association first makes Linux send the RST right away.
		 */
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
		memset(&sa, 0, sizeof sa);
		sa.sa_family = AF_UNSPEC;
		(void)connect(fd, &sa, sizeof sa);
	}
	evhttp_connection_free(evcon);	/* frees the request with it */
}

/* evhttp is freeing the connection under a deferred request. */
static void
pending_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct sim_pending	*p = arg;
	struct evhttp_request	*req = p->req;

	p->evcon = NULL;
	pending_release(p);
	/* A request evhttp detached from its connection is ours to free. */
	if (evhttp_request_get_connection(req) == NULL)
		evhttp_request_free(req);
}

static void
pending_peer_closed(evutil_socket_t fd, short what, void *arg)
{
	pending_drop(arg, 0);
}

static void
pending_written(struct evhttp_connection *evcon, void *arg)
{
	struct sim_pending	*p = arg;

	event_active(p->timer, EV_TIMEOUT, 1);
}

/* Sends the headers and half the body of a truncated answer. */
static void
pending_truncate(struct sim_pending *p)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(p->req);
	struct evbuffer		*half;
	size_t			 len = evbuffer_get_length(p->r.body);
	char			 cl[32];

	snprintf(cl, sizeof cl, "%zu", len);
	evhttp_add_header(h, "Content-Type", p->r.content_type);
	evhttp_add_header(h, "Content-Length", cl);
	evhttp_send_reply_start(p->req, p->r.code, http_phrase(p->r.code));
	if ((half = evbuffer_new()) == NULL)
		fatalx_("out of memory");
	evbuffer_remove_buffer(p->r.body, half, len / 2);
	p->written = 1;
	evhttp_send_reply_chunk_with_cb(p->req, half, pending_written, p);
	evbuffer_free(half);
}

static void
pending_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sim_pending	*p = arg;
	struct evhttp_request	*req = p->req;
	struct sim_reply	 r;

	switch (p->r.act) {
	case ACT_ANSWER:
		r = p->r;
		p->r.body = NULL;
		pending_release(p);
		reply_send(req, &r);
		break;
	case ACT_RESET:
		pending_drop(p, 1);
		break;
	case ACT_TRUNCATE:
		if (p->written)
			pending_drop(p, 0);
		else
			pending_truncate(p);
		break;
	case ACT_STALL:
	default:
		break;
	}
}

/* Answers req after delay_ms, or acts out a fault; takes r's body. */
static void
pending_start(struct evhttp_request *req, struct sim_reply *r, long delay_ms)
{
	struct sim_pending	*p;
	struct bufferevent	*bev;
	struct timeval		 tv;
	evutil_socket_t		 fd;

	p = xcalloc(1, sizeof *p);
	p->req = req;
	p->evcon = evhttp_request_get_connection(req);
	p->r = *r;
	r->body = NULL;
	TAILQ_INSERT_TAIL(&sim.pendings, p, entry);
	if ((p->timer = evtimer_new(sim.base, pending_timer, p)) == NULL)
		fatalx_("evtimer_new failed");
	if (p->evcon != NULL) {
		evhttp_connection_set_closecb(p->evcon, pending_conn_closed, p);
		bev = evhttp_connection_get_bufferevent(p->evcon);
		fd = bev != NULL ? bufferevent_getfd(bev) : -1;
		if (sim.early_close && fd != -1) {
			p->closed = event_new(sim.base, fd, EV_CLOSED,
			    pending_peer_closed, p);
			if (p->closed == NULL || event_add(p->closed, NULL) == -1)
				fatalx_("cannot watch a connection");
		}
	}
	if (p->r.act == ACT_STALL)
		return;
	tv.tv_sec = delay_ms / 1000;
	tv.tv_usec = (delay_ms % 1000) * 1000;
	evtimer_add(p->timer, &tv);
}

static long
latency(void)
{
	if (sim.cli_latency >= 0)
		return sim.cli_latency;
	return sim.sc->latency_ms > 0 ? sim.sc->latency_ms : 0;
}

static void
dispatch(struct evhttp_request *req, struct sim_reply *r)
{
	long	 ms = latency();

	if (r->act == ACT_ANSWER && ms == 0)
		reply_send(req, r);
	else
		pending_start(req, r, ms);
}

/*
 * Requests.
 */

/* The orderId of a {"orderId": "..."} body into out; -1 if unusable. */
static int
body_order_id(struct evhttp_request *req, char *out, size_t outlen)
{
	struct evbuffer		*buf = evhttp_request_get_input_buffer(req);
	struct json_object	*o, *v;
	const char		*s;
	size_t			 len, end;
	unsigned char		*data;
	int			 rc = -1;

	len = evbuffer_get_length(buf);
	if (len == 0 || len > SIM_BODY_MAX)
		return -1;
	if ((data = evbuffer_pullup(buf, -1)) == NULL)
		return -1;
	json_tokener_reset(sim.tok);
	o = json_tokener_parse_ex(sim.tok, (const char *)data, (int)len);
	if (o == NULL || json_tokener_get_error(sim.tok) != json_tokener_success)
		goto out;
	for (end = json_tokener_get_parse_end(sim.tok); end < len; end++) {
		if (data[end] != ' ' && data[end] != '\t' && data[end] != '\n' &&
		    data[end] != '\r')
			goto out;
	}
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "orderId", &v) ||
	    !json_object_is_type(v, json_type_string))
		goto out;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len == 0 || len >= outlen || memchr(s, '\0', len) != NULL)
		goto out;
	memcpy(out, s, len);
	out[len] = '\0';
	rc = 0;
out:
	json_object_put(o);
	return rc;
}

static const struct sim_order *
order_lookup(const char *id)
{
	struct sim_hent	*e;
	size_t		 i, len = strlen(id);

	if ((e = table_find(&sim.sc->orders, id, len)) != NULL)
		return e->val;
	for (i = 0; i < sim.sc->ntemplates; i++) {
		if (sim.sc->templates[i].keylen <= len &&
		    memcmp(sim.sc->templates[i].key, id,
		    sim.sc->templates[i].keylen) == 0)
			return &sim.sc->templates[i];
	}
	return NULL;
}

/* When the order was first asked about (now, the first time). */
static void
order_clock(struct sim_ask *a, int64_t mono, int64_t wall)
{
	struct sim_hent	*e;
	size_t		 len = strlen(a->order_id);

	if ((e = table_find(&sim.clocks, a->order_id, len)) == NULL) {
		if (sim.clocks.n >= SIM_TRACK_MAX) {
			if (!sim.track_warned++)
				warnx_("more than %d orders asked about: new "
				    "ones start their timeline at every ask",
				    SIM_TRACK_MAX);
			a->first_wall = wall;
			a->elapsed = 0;
			return;
		}
		e = table_add(&sim.clocks, a->order_id, len);
		e->mono_ms = mono;
		e->wall_ms = wall;
	}
	a->first_wall = e->wall_ms;
	a->elapsed = mono - e->mono_ms;
}

/* Finds the timeline entry in force, and the status entry in force. */
static void
order_step(struct sim_ask *a)
{
	const struct sim_order	*o = a->spec;
	size_t			 i;

	a->step = a->base = NULL;
	for (i = 0; i < o->nsteps; i++) {
		if ((int64_t)o->steps[i].after_ms > a->elapsed)
			break;
		a->step = &o->steps[i];
		if (o->steps[i].status != NULL)
			a->base = &o->steps[i];
	}
}

static void
request_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	struct evkeyvalq	*in = evhttp_request_get_input_headers(req);
	const char		*path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const SSL		*ssl = req_ssl(req);
	struct sim_reply	 r;
	struct sim_ask		 a;
	enum sim_fault		 f = FAULT_NONE;
	char			 id[SIM_ID_MAX + 1], outcome[128];
	int64_t			 wall = clock_ms(CLOCK_REALTIME);
	double			 u, sum;
	int			 i;

	sim.nrequests++;
	memset(&a, 0, sizeof a);
	a.user_key = evhttp_find_header(in, "x-toss-user-key");
	if (path == NULL || strcmp(path, SIM_PATH) != 0) {
		reply_init(&r, 404);
		r.content_type = "text/plain";
		evbuffer_add_printf(r.body, "404 Not Found\n");
		log_request(wall, ssl, NULL, a.user_key, "http:404", 404, NULL);
		dispatch(req, &r);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		reply_init(&r, 405);
		r.content_type = "text/plain";
		r.allow_post = 1;
		evbuffer_add_printf(r.body, "405 Method Not Allowed\n");
		log_request(wall, ssl, NULL, a.user_key, "http:405", 405, NULL);
		dispatch(req, &r);
		return;
	}
	if (body_order_id(req, id, sizeof id) == -1) {
		reply_fail(&r, 400, "INVALID_PARAMETER");
		log_request(wall, ssl, NULL, a.user_key, "fail:INVALID_PARAMETER",
		    400, NULL);
		dispatch(req, &r);
		return;
	}
	a.order_id = id;
	if (a.user_key == NULL || a.user_key[0] == '\0') {
		reply_fail(&r, 400, "USER_KEY_MISSING");
		log_request(wall, ssl, id, a.user_key, "fail:USER_KEY_MISSING", 400,
		    NULL);
		dispatch(req, &r);
		return;
	}
	a.spec = order_lookup(id);
	if (a.spec != NULL && a.spec->user_key != NULL &&
	    strcmp(a.spec->user_key, a.user_key) != 0) {
		reply_fail(&r, 400, "USER_KEY_MISMATCH");
		log_request(wall, ssl, id, a.user_key, "fail:USER_KEY_MISMATCH", 400,
		    NULL);
		dispatch(req, &r);
		return;
	}
	if (a.spec != NULL) {
		order_clock(&a, clock_ms(CLOCK_MONOTONIC), wall);
		order_step(&a);
	}

	/* One draw per request against the cumulative global rates. */
	u = rng_uniform();
	for (i = 1, sum = 0; i <= FAULT_GLOBAL_LAST; i++) {
		sum += sim.sc->rate[i];
		if (sim.sc->rate[i] > 0 && u < sum) {
			f = (enum sim_fault)i;
			break;
		}
	}
	if (f != FAULT_NONE) {
		reply_fault(&r, f, &a, NULL);
		snprintf(outcome, sizeof outcome, "fault:%s", fault_names[f]);
	} else if (a.step != NULL && a.step->fault != FAULT_NONE) {
		f = a.step->fault;
		reply_fault(&r, f, &a, a.step);
		snprintf(outcome, sizeof outcome, "fault:%s", fault_names[f]);
	} else {
		reply_success(&r, &a, a.step, id,
		    a.step != NULL && a.step->http != 0 ? a.step->http : 200);
		snprintf(outcome, sizeof outcome, "status:%.100s",
		    a.step != NULL ? a.step->status : "NOT_FOUND");
	}
	log_request(wall, ssl, id, a.user_key, outcome,
	    r.act == ACT_RESET || r.act == ACT_STALL ? 0 : r.code, NULL);
	dispatch(req, &r);
}

/*
 * TLS and sockets.
 */

static struct bufferevent *
bev_cb(struct event_base *base, void *arg)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	/* Never return NULL: evhttp would then serve plain HTTP. */
	if ((ssl = SSL_new(sim.ctx)) == NULL)
		fatalx_("SSL_new failed");
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		fatalx_("bufferevent_openssl_socket_new failed");
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static int
tls_has_peer_cert(const SSL *ssl)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	return SSL_get0_peer_certificate(ssl) != NULL;
#else
	X509	*x;

	if ((x = SSL_get_peer_certificate(ssl)) == NULL)
		return 0;
	X509_free(x);
	return 1;
#endif
}

/* Logs handshakes we refuse (no certificate, unknown CA, expired, ...). */
static void
tls_info_cb(const SSL *ssl, int where, int ret)
{
	const char	*alert, *why;
	char		 detail[256];
	long		 v;

	if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_WRITE) ||
	    !SSL_in_init(ssl) || strcmp(SSL_alert_type_string(ret), "F") != 0)
		return;
	/* OpenSSL 3.0 has no name for TLS 1.3's certificate_required. */
	alert = (ret & 0xff) == 116 ? "certificate required" :
	    SSL_alert_desc_string_long(ret);
	v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK)
		why = X509_verify_cert_error_string(v);
	else if (!tls_has_peer_cert(ssl))
		why = "no client certificate";
	else
		why = NULL;
	snprintf(detail, sizeof detail, "%s%s%s", alert, why != NULL ? ": " : "",
	    why != NULL ? why : "");
	warnx_("TLS handshake refused: %s", detail);
	log_request(clock_ms(CLOCK_REALTIME), ssl, NULL, NULL, "tls:refused", 0,
	    detail);
}

static SSL_CTX *
tls_setup(const char *cert, const char *key, const char *ca, int tls13_only)
{
	static const unsigned char	 sid[] = "toss-sim";
	STACK_OF(X509_NAME)		*names;
	SSL_CTX				*ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		warn_ssl("SSL_CTX_new failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, tls13_only ? TLS1_3_VERSION :
	    TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		warn_ssl("--cert: cannot load the certificate");
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		warn_ssl("--key: cannot load the key, or it does not match --cert");
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1 ||
	    (names = SSL_load_client_CA_file(ca)) == NULL) {
		warn_ssl("--ca: cannot load the CA certificate(s)");
		goto fail;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 4);
	SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
	SSL_CTX_set_info_callback(ctx, tls_info_cb);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* Binds and listens on HOST:PORT ([v6]:PORT); the port bound in *port. */
static evutil_socket_t
listen_on(const char *spec, unsigned int *port)
{
	struct addrinfo		 hints, *res = NULL;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof ss;
	const char		*colon, *p;
	char			 host[256], *end;
	size_t			 hlen;
	long			 n;
	int			 fd, one = 1, rc;

	if (spec[0] == '[') {
		if ((p = strchr(spec, ']')) == NULL || p[1] != ':')
			return -1;
		hlen = (size_t)(p - spec - 1);
		spec++;
		colon = p + 1;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL)
			return -1;
		hlen = (size_t)(colon - spec);
	}
	if (hlen == 0 || hlen >= sizeof host)
		return -1;
	memcpy(host, spec, hlen);
	host[hlen] = '\0';
	errno = 0;
	n = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || n < 0 ||
	    n > 65535)
		return -1;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		warnx_("--listen %s: %s", host, gai_strerror(rc));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1 ||
	    /* Accepted sockets inherit it: no Nagle wait between TLS records. */
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) == -1 ||
	    listen(fd, 1024) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1) {
		warnx_("--listen %s:%ld: %s", host, n, strerror(errno));
		if (fd != -1)
			close(fd);
		freeaddrinfo(res);
		return -2;
	}
	freeaddrinfo(res);
	if (ss.ss_family == AF_INET6)
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static void
stall_free(struct sim_stall *s)
{
	TAILQ_REMOVE(&sim.stalls, s, entry);
	event_free(s->ev);
	close(s->fd);
	free(s);
}

/* Reads and drops whatever a --tls-stall client sends until it hangs up. */
static void
stall_read(evutil_socket_t fd, short what, void *arg)
{
	char	 buf[4096];
	ssize_t	 n;

	n = read(fd, buf, sizeof buf);
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		stall_free(arg);
}

static void
stall_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct sim_stall	*s;

	evutil_make_socket_nonblocking(fd);
	s = xcalloc(1, sizeof *s);
	s->fd = fd;
	s->ev = event_new(sim.base, fd, EV_READ | EV_PERSIST, stall_read, s);
	if (s->ev == NULL || event_add(s->ev, NULL) == -1)
		fatalx_("cannot watch a connection");
	TAILQ_INSERT_TAIL(&sim.stalls, s, entry);
	sim.nrequests++;
	log_request(clock_ms(CLOCK_REALTIME), NULL, NULL, NULL, "tls:stall", 0,
	    NULL);
}

static int
write_port_file(const char *path, unsigned int port)
{
	char	 tmp[PATH_MAX];
	FILE	*f;
	int	 n;

	n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp)
		return -1;
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	if (fprintf(f, "%u\n", port) < 0) {
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) != 0 || rename(tmp, path) == -1) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct sim_scenario	*sc;
	char			 err[1024];

	if (sig != SIGHUP) {
		warnx_("%s: exiting after %" PRIu64 " requests",
		    sig == SIGTERM ? "SIGTERM" : "SIGINT", sim.nrequests);
		event_base_loopbreak(sim.base);
		return;
	}
	if (sim.scenario_path == NULL)
		return;
	if ((sc = scen_load(sim.scenario_path, err, sizeof err)) == NULL) {
		warnx_("reload failed, keeping the old scenario: %s", err);
		return;
	}
	scen_free(sim.sc);
	sim.sc = sc;
	warnx_("reloaded %s: %zu orders, %zu templates", sim.scenario_path,
	    sc->orders.n, sc->ntemplates);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: toss-sim --listen HOST:PORT --cert FILE --key FILE "
	    "--ca FILE --scenario FILE\n"
	    "                [--port-file FILE] [--log FILE|-] [--latency MS] "
	    "[--seed N] [--tls-stall]\n"
	    "                [--tls13-only]\n");
}

static int
parse_number(const char *s, unsigned long long max, unsigned long long *out)
{
	char	*end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || *out > max)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "ca", required_argument, NULL, 'a' },
		{ "scenario", required_argument, NULL, 's' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "log", required_argument, NULL, 'L' },
		{ "latency", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 'S' },
		{ "tls-stall", no_argument, NULL, 'T' },
		{ "tls13-only", no_argument, NULL, '3' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char		*listen_spec = NULL, *cert = NULL, *key = NULL;
	const char		*ca = NULL, *port_file = NULL, *log_path = NULL;
	struct event		*sigs[3];
	struct sim_pending	*p;
	struct sim_stall	*s;
	unsigned long long	 n;
	unsigned int		 port;
	char			 err[1024];
	int			 ch, i, tls_stall = 0, tls13_only = 0;
	evutil_socket_t		 fd;

	sim.cli_latency = -1;
	sim.rng = 1;
	TAILQ_INIT(&sim.pendings);
	TAILQ_INIT(&sim.stalls);
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'a':
			ca = optarg;
			break;
		case 's':
			sim.scenario_path = optarg;
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'L':
			log_path = optarg;
			break;
		case 'd':
			if (parse_number(optarg, SIM_LATENCY_MAX, &n) == -1) {
				warnx_("--latency: 0..%d ms expected",
				    SIM_LATENCY_MAX);
				return 64;
			}
			sim.cli_latency = (long)n;
			break;
		case 'S':
			if (parse_number(optarg, ULLONG_MAX, &n) == -1) {
				warnx_("--seed: a number expected");
				return 64;
			}
			sim.rng = n;
			break;
		case 'T':
			tls_stall = 1;
			break;
		case '3':
			tls13_only = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 64;
		}
	}
	if (optind != argc || listen_spec == NULL || (!tls_stall &&
	    (cert == NULL || key == NULL || ca == NULL ||
	    sim.scenario_path == NULL))) {
		usage(stderr);
		return 64;
	}
	signal(SIGPIPE, SIG_IGN);

	if (sim.scenario_path != NULL) {
		if ((sim.sc = scen_load(sim.scenario_path, err,
		    sizeof err)) == NULL)
			fatalx_("%s", err);
	} else {
		sim.sc = xcalloc(1, sizeof *sim.sc);
		sim.sc->latency_ms = -1;
	}
	if (log_path != NULL) {
		if (strcmp(log_path, "-") == 0)
			sim.log = stdout;
		else if ((sim.log = fopen(log_path, "a")) == NULL)
			fatalx_("--log %s: %s", log_path, strerror(errno));
	}
	if (!tls_stall && (sim.ctx = tls_setup(cert, key, ca, tls13_only)) ==
	    NULL)
		return 1;
	if ((sim.tok = json_tokener_new()) == NULL)
		fatalx_("out of memory");
	if ((sim.base = event_base_new()) == NULL)
		fatalx_("event_base_new failed");
	sim.early_close = (event_base_get_features(sim.base) &
	    EV_FEATURE_EARLY_CLOSE) != 0;
	if ((fd = listen_on(listen_spec, &port)) < 0) {
		if (fd == -1)
			warnx_("--listen: HOST:PORT expected, not \"%s\"",
			    listen_spec);
		return fd == -1 ? 64 : 1;
	}
	if (tls_stall) {
		sim.stall_listener = evconnlistener_new(sim.base, stall_accept,
		    NULL, LEV_OPT_CLOSE_ON_FREE, 0, fd);
		if (sim.stall_listener == NULL)
			fatalx_("evconnlistener_new failed");
	} else {
		if ((sim.http = evhttp_new(sim.base)) == NULL)
			fatalx_("evhttp_new failed");
		evhttp_set_bevcb(sim.http, bev_cb, NULL);
		evhttp_set_gencb(sim.http, request_cb, NULL);
		evhttp_set_max_body_size(sim.http, SIM_BODY_MAX);
		evhttp_set_max_headers_size(sim.http, SIM_HEADERS_MAX);
		evhttp_set_timeout(sim.http, SIM_IDLE_SECS);
		evhttp_set_allowed_methods(sim.http, EVHTTP_REQ_GET |
		    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
		    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
		evhttp_set_flags(sim.http, EVHTTP_SERVER_LINGERING_CLOSE);
		if (evhttp_accept_socket_with_handle(sim.http, fd) == NULL)
			fatalx_("evhttp_accept_socket_with_handle failed");
	}
	sigs[0] = evsignal_new(sim.base, SIGHUP, on_signal, NULL);
	sigs[1] = evsignal_new(sim.base, SIGTERM, on_signal, NULL);
	sigs[2] = evsignal_new(sim.base, SIGINT, on_signal, NULL);
	for (i = 0; i < 3; i++) {
		if (sigs[i] == NULL || event_add(sigs[i], NULL) == -1)
			fatalx_("cannot install signal handlers");
	}
	if (port_file != NULL && write_port_file(port_file, port) == -1)
		fatalx_("--port-file %s: %s", port_file, strerror(errno));
	if (tls_stall)
		warnx_("listening on %s (port %u), stalling every TLS handshake",
		    listen_spec, port);
	else
		warnx_("listening on %s (port %u): %zu orders, %zu templates",
		    listen_spec, port, sim.sc->orders.n, sim.sc->ntemplates);

	event_base_dispatch(sim.base);

	while ((p = TAILQ_FIRST(&sim.pendings)) != NULL)
		pending_drop(p, 0);
	while ((s = TAILQ_FIRST(&sim.stalls)) != NULL)
		stall_free(s);
	if (sim.http != NULL)
		evhttp_free(sim.http);
	if (sim.stall_listener != NULL)
		evconnlistener_free(sim.stall_listener);
	for (i = 0; i < 3; i++)
		event_free(sigs[i]);
	/* Run the callbacks still queued (bufferevents freed just before the
	 * loop stopped finish there); event_base_free() would leak them. */
	event_base_loop(sim.base, EVLOOP_NONBLOCK);
	event_base_free(sim.base);
	SSL_CTX_free(sim.ctx);
	json_tokener_free(sim.tok);
	scen_free(sim.sc);
	table_free(&sim.clocks, NULL);
	free(sim.pad);
	if (sim.log != NULL && sim.log != stdout)
		fclose(sim.log);
	return 0;
}
