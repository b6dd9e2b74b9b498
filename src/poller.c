/* The scheduler: claims due orders into free request slots under the rate
 * limit, asks Toss through fetch, turns each answer into a ledger update
 * with the policy and writes a loop turn's results in one transaction. Asks
 * gate.c whether requests may go out and what each finished attempt means
 * (the global pause, its probe, the TLS 1.2 check); the limit's arithmetic
 * is ratelimit.c's, fed with when each request is really sent. */
#include <sys/queue.h>
#include <sys/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "fetch.h"
#include "gate.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "poller.h"
#include "ratelimit.h"
#include "toss.h"
#include "util.h"

#define POLLER_TICK_MS		1000	/* the ledger is looked at this often */
#define POLLER_MIN_WAIT_MS	5	/* never spin on a due order */
#define POLLER_LEASE_MARGIN_MS	5000
#define POLLER_HASH_SIZE	8192	/* power of two */
#define POLLER_MSG_MAX		512

enum job_result {
	JOB_INFLIGHT,
	JOB_APPLY,		/* write upd with ledger_apply */
	JOB_RESCHEDULE		/* paused: move next_poll_at to at */
};

/* One claimed order, from the claim until its result is written. */
struct job {
	struct poller		*p;
	TAILQ_ENTRY(job)	 entry;		/* inflight or results */
	struct job		*hnext;		/* claimed set, by order id */
	enum job_result		 result;
	enum gate_kind		 kind;		/* ask, probe or TLS 1.2 check */
	int			 sends;		/* times curl sent the request */
	int64_t			 now;		/* when it was decided */
	int64_t			 at;		/* JOB_RESCHEDULE */
	struct order		 order;		/* as claimed */
	struct toss_answer	 answer;
	struct ledger_update	 upd;		/* strings point into answer */
};
TAILQ_HEAD(jobs, job);

struct poller {
	struct event_base	*base;
	struct ledger		*ledger;
	struct fetch		*fetch;
	const struct config	*cfg;

	struct event		*tick;		/* fills free slots */
	struct event		*flush;		/* writes a turn's results */

	struct jobs		 inflight;
	struct jobs		 results;
	size_t			 ninflight;
	struct job		*claimed[POLLER_HASH_SIZE];
	struct job		*spare;		/* freed jobs for reuse (hnext) */
	int			 nspare;

	struct order		*scratch;	/* claim buffer */
	int			 nscratch;

	/* Rate limit, counted from each start until a second after the
	 * request was sent. rate_blocked: the limit holds every slot and
	 * only a send (or an unsent request ending) can say until when. */
	struct ratelimit	 rl;
	int			 rate_blocked;

	/* The pause, its probe and the TLS 1.2 check: gate.c decides. */
	struct gate		 gate;

	int			 started;
	/* On a ledger shared with other instances: claims only while
	 * leading and lead_ok says the leadership is still proven; not
	 * before lead_from (mono), one rate-limit window after winning. */
	int			 (*lead_ok)(void *, int64_t);
	void			*lead_arg;
	int			 leading;
	int64_t			 lead_from;
	int			 lead_claiming;	/* lead_from passed */
	int			 draining;
	int			 drain_called;
	void			 (*drain_done)(void *);
	void			*drain_arg;

	void			 (*events_cb)(void *);	/* events committed */
	void			*events_arg;

	int			 once;
	int			 once_stop;	/* a pause gate.c says cannot be
						 * waited out, or a failed claim */
	int			 once_finished;
	int64_t			 once_at;
	void			 (*once_done)(void *);
	void			*once_arg;

	uint64_t		 rng[4];	/* xoshiro256** */
	struct poller_stats	 stats;
};

static void	poller_fill(struct poller *);
static void	poller_once_check(struct poller *);
static int	poller_submit(struct poller *, struct job *);

/* xoshiro256** (Blackman and Vigna), seeded through splitmix64. */
static uint64_t
poller_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t
poller_next64(struct poller *p)
{
	uint64_t	*s = p->rng;
	uint64_t	 r = poller_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = poller_rotl(s[3], 45);
	return r;
}

static void
poller_seed(struct poller *p)
{
	uint64_t	 seed = 0, z;
	int		 i;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(seed))
		seed = (uint64_t)util_now_ms() ^ ((uint64_t)getpid() << 32) ^
		    (uint64_t)util_mono_ms();
	for (i = 0; i < 4; i++) {
		seed += 0x9e3779b97f4a7c15ULL;
		z = seed;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		p->rng[i] = z ^ (z >> 31);
	}
}

/* Uniform in [0, 1), for the policy's jitter. */
static double
poller_rand(void *ctx)
{
	return (double)(poller_next64(ctx) >> 11) * 0x1.0p-53;
}

static unsigned int
poller_hash(const char *s)
{
	uint32_t	 h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h & (POLLER_HASH_SIZE - 1);
}

/* The job that holds the order's claim, or NULL. */
static struct job *
poller_claimed(struct poller *p, const char *order_id)
{
	struct job	*j;

	for (j = p->claimed[poller_hash(order_id)]; j != NULL; j = j->hnext) {
		if (strcmp(j->order.order_id, order_id) == 0)
			return j;
	}
	return NULL;
}

static void
poller_hash_add(struct poller *p, struct job *j)
{
	unsigned int	 h = poller_hash(j->order.order_id);

	j->hnext = p->claimed[h];
	p->claimed[h] = j;
}

static void
poller_hash_del(struct poller *p, struct job *j)
{
	struct job	**jp;

	for (jp = &p->claimed[poller_hash(j->order.order_id)]; *jp != NULL;
	    jp = &(*jp)->hnext) {
		if (*jp == j) {
			*jp = j->hnext;
			return;
		}
	}
}

static void
poller_arm(struct poller *p, int64_t ms)
{
	struct timeval	 tv;

	if (ms < POLLER_MIN_WAIT_MS)
		ms = POLLER_MIN_WAIT_MS;
	if (ms > POLLER_TICK_MS)
		ms = POLLER_TICK_MS;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(p->tick, &tv);
}

static void
poller_schedule_flush(struct poller *p)
{
	event_active(p->flush, EV_TIMEOUT, 0);
}

/* Why an attempt gave no usable answer, for the log. */
static void
poller_describe_error(const struct gate_outcome *g,
    const struct toss_answer *a, char *msg, size_t size)
{
	if (g->error != FETCH_OK) {
		snprintf(msg, size, "%s: %s", fetch_error_name(g->error),
		    g->why);
		return;
	}
	switch (a->kind) {
	case TOSS_FAIL:
		snprintf(msg, size, "FAIL answer %s (HTTP %ld)",
		    a->error_code[0] != '\0' ? a->error_code : "(no errorCode)",
		    a->http_code);
		break;
	case TOSS_MALFORMED:
		snprintf(msg, size, "malformed answer: %s (HTTP %ld)",
		    toss_perr_name(a->perr), a->http_code);
		break;
	case TOSS_HTTP_ERROR:
		snprintf(msg, size, "HTTP %ld (%s)", a->http_code,
		    toss_perr_name(a->perr));
		break;
	default:
		snprintf(msg, size, "%s (HTTP %ld)", toss_kind_name(a->kind),
		    a->http_code);
		break;
	}
}

static void
poller_log_answer(struct poller *p, const struct job *j, int notes)
{
	const struct order	*o = &j->order;
	const char		*from = order_state_name(o->state);
	const char		*to = order_state_name(j->upd.new_state);
	/* Warn when the answer is news; the same answer on a later poll
	 * (a held order is re-polled slowly) is only an info line. */
	int			 news = strcmp(o->toss_status,
				    j->answer.status) != 0;
	void			 (*say)(const char *, ...) =
				    news ? log_warning : log_info;

	if (notes & POLICY_NOTE_UNKNOWN) {
		p->stats.unknown_statuses++;
		metrics_unknown_status(j->answer.status);
		say("order %s: unknown status \"%s\" from Toss: order"
		    " held; map it in [status] and reload", o->order_id,
		    j->answer.status);
	}
	if ((notes & POLICY_NOTE_SKU) && j->upd.new_state == ST_MISMATCH)
		log_warning("order %s: sku mismatch: Toss says \"%s\", the"
		    " intake said \"%s\"%s%s%s; not granted, %s -> mismatch",
		    o->order_id, j->answer.sku, o->intake_sku,
		    o->sku_confirmed ? " and Toss said \"" : "",
		    o->sku_confirmed ? o->sku : "",
		    o->sku_confirmed ? "\" before" : "", from);
	else if (notes & POLICY_NOTE_SKU)
		log_warning("order %s: Toss now says sku \"%s\" for an order"
		    " %s under \"%s\"; it keeps that sku, a human should"
		    " look", o->order_id, j->answer.sku, from, o->sku);
	if (notes & POLICY_NOTE_ANOMALY)
		say("order %s: anomaly: %s order answered \"%s\"; it"
		    " stays %s, a human should look", o->order_id, from,
		    j->answer.status, to);
	if (j->upd.new_state != o->state)
		log_info("order %s: %s -> %s (%s)", o->order_id, from, to,
		    j->answer.status);
	else
		log_debug("order %s: %s, stays %s", o->order_id,
		    j->answer.status, to);
}

/* Logs what the gate said about the pause after one attempt. */
static void
poller_say_pause(struct poller *p, const struct gate_outcome *g)
{
	const char	*why = gate_reason_name(g->reason);
	char		 d[32];

	util_fmt_ms(g->pause_ms, d, sizeof(d));
	switch (g->log) {
	case GATE_LOG_NONE:
		break;
	case GATE_LOG_BEGUN:
		if (g->timed)
			log_warning("poller: paused: %s", g->msg);
		else
			log_warning("poller: paused for %s: %s", d, g->msg);
		break;
	case GATE_LOG_EXTENDED:
		log_warning("poller: paused for %s: %s", d, g->msg);
		break;
	case GATE_LOG_AGAIN:
		log_debug("poller: probe failed, paused again for %s: %s", d,
		    g->msg);
		break;
	case GATE_LOG_QUIET:
		log_debug("poller: %s; still paused for %s", g->msg, d);
		break;
	case GATE_LOG_ENDED:
		log_warning("poller: resumed after the %s pause (probe"
		    " answered)", why);
		break;
	}
	if (g->stop_once && p->once && !p->once_stop) {
		p->once_stop = 1;
		log_warnx("poller: --once run stops early: %s", g->stop);
	}
}

static void
poller_done(const struct fetch_result *res, void *arg)
{
	struct job		*j = arg;
	struct poller		*p = j->p;
	struct gate_attempt	 a;
	struct gate_outcome	 g;
	char			 msg[POLLER_MSG_MAX], uk[LOG_USERKEY_MAX];
	char			 d[32];
	int			 notes;

	TAILQ_REMOVE(&p->inflight, j, entry);
	p->ninflight--;
	if (j->sends == 0)
		ratelimit_unsent_end(&p->rl);	/* Toss never saw it */
	j->now = util_now_ms();
	p->stats.polls++;

	memset(&j->answer, 0, sizeof(j->answer));
	if (res->error == FETCH_OK)
		toss_parse(res->http_code, res->body, res->body_len,
		    j->order.order_id, &j->answer);

	memset(&a, 0, sizeof(a));
	a.kind = j->kind;
	a.error = res->error;
	a.message = res->message;
	a.answer = j->answer.kind;
	a.http_code = res->http_code;
	a.retry_after_ms = res->retry_after_ms;
	a.io_failed = res->io_failed;
	a.tls12_only = res->tls12_only;
	a.cert_sent = res->cert_sent;
	a.handshake_done = res->handshake_done;
	a.connects = res->connects;
	a.header_bytes = res->header_bytes;
	gate_finish(&p->gate, &a, j, p->draining || p->once_stop,
	    util_mono_ms(), j->now, &g);
	if (g.tls12_lost)
		log_warning("poller: Toss does not speak TLS 1.2 (%s): a"
		    " refused client certificate can now only be inferred from"
		    " connections closed before any answer", g.why);
	else if (g.cert_accepted)
		log_debug("order %s: the client certificate is accepted (TLS"
		    " 1.2 check): the closed connection was the server's"
		    " doing", j->order.order_id);
	metrics_poll(g.error != FETCH_OK ? fetch_error_name(g.error) :
	    toss_kind_name(j->answer.kind),
	    g.error == FETCH_OK && j->answer.kind == TOSS_STATUS ?
	    j->answer.status : NULL, res->elapsed_ms);
	if (res->error == FETCH_OK && j->answer.kind == TOSS_STATUS)
		metrics_answer_at(j->now);

	switch (g.verdict) {
	case GATE_CHECK:
		log_debug("order %s: %s; asking again over TLS 1.2 to tell a"
		    " refused client certificate from a reset",
		    j->order.order_id, g.why);
		j->kind = GATE_TLS12_CHECK;
		event_active(p->tick, EV_TIMEOUT, 0);
		return;
	case GATE_RESCHEDULE:
	case GATE_HOLD:
		p->stats.paused_attempts++;
		poller_say_pause(p, &g);
		j->result = JOB_RESCHEDULE;
		j->at = p->once ? p->once_at : j->now;
		log_debug("order %s: %s; rescheduled%s", j->order.order_id,
		    g.msg, g.verdict == GATE_HOLD ?
		    " until the TLS 1.2 check ends" : "");
		break;
	case GATE_APPLY:
		poller_say_pause(p, &g);
		if (g.error == FETCH_OK && j->answer.kind == TOSS_STATUS) {
			p->stats.answers++;
			notes = policy_decide(p->cfg, &j->order, &j->answer,
			    j->now, poller_rand, p, &j->upd);
			poller_log_answer(p, j, notes);
		} else {
			p->stats.errors++;
			policy_decide(p->cfg, &j->order, NULL, j->now,
			    poller_rand, p, &j->upd);
			poller_describe_error(&g, &j->answer, msg,
			    sizeof(msg));
			if (j->upd.next_poll_at > 0)
				util_fmt_ms(j->upd.next_poll_at - j->now, d,
				    sizeof(d));
			log_info("order %s (userKey %s): %s; next try %s%s",
			    j->order.order_id,
			    log_userkey(j->order.user_key, uk), msg,
			    j->upd.next_poll_at > 0 ? "in " : "",
			    j->upd.next_poll_at > 0 ? d : "only on a recheck");
		}
		j->result = JOB_APPLY;
		break;
	}
	TAILQ_INSERT_TAIL(&p->results, j, entry);
	poller_schedule_flush(p);
}

/* fetch's sent hook, called from inside libcurl: only note the time, and
 * wake the loop if the limit was waiting on this to name a time. A send
 * right after a new handshake is counted as late as the handshake took:
 * the server has its side of it to finish before it reads the request. */
static void
poller_sent(void *arg, int64_t handshake_ms)
{
	struct job	*j = arg;
	struct poller	*p = j->p;

	j->sends++;
	ratelimit_sent(&p->rl, util_mono_ms(), j->sends == 1, handshake_ms);
	if (p->rate_blocked) {
		p->rate_blocked = 0;
		event_active(p->tick, EV_TIMEOUT, 0);
	}
}

/* A zeroed job; reuses a freed one (a job is a few KiB: allocating one
 * per poll showed in profiles). */
static struct job *
poller_job_new(struct poller *p)
{
	struct job	*j;

	if ((j = p->spare) == NULL)
		return xcalloc(1, sizeof(*j));
	p->spare = j->hnext;
	p->nspare--;
	memset(j, 0, sizeof(*j));
	return j;
}

static void
poller_job_free(struct poller *p, struct job *j)
{
	poller_hash_del(p, j);
	if (p->nspare >= p->cfg->max_inflight) {
		free(j);
		return;
	}
	j->hnext = p->spare;
	p->spare = j;
	p->nspare++;
}

/* Writes every queued result in one transaction. With fill, the free
 * slots are filled before the commit, so that the claims share the
 * results' transaction (one commit, one fsync, per loop turn). */
static void
poller_write_results(struct poller *p, int fill)
{
	struct job	*j;
	int		 n = 0, failed = 0, events = 0, r;

	if (TAILQ_EMPTY(&p->results)) {
		if (fill)
			poller_fill(p);
		return;
	}
	if (ledger_damaged(p->ledger) != NULL) {
		/* Nothing can be written, and the daemon is stopping (it said
		 * why): the orders are polled again once the ledger is
		 * restored. */
		while ((j = TAILQ_FIRST(&p->results)) != NULL) {
			log_debug("poller: order %s: result dropped: the"
			    " ledger is damaged", j->order.order_id);
			TAILQ_REMOVE(&p->results, j, entry);
			poller_job_free(p, j);
		}
		return;
	}
	if (ledger_begin(p->ledger) == -1) {
		log_warnx("poller: cannot begin a ledger transaction: %s; the"
		    " results are dropped and those orders polled again when"
		    " their leases expire", ledger_errmsg(p->ledger));
		p->stats.ledger_errors++;
		while ((j = TAILQ_FIRST(&p->results)) != NULL) {
			TAILQ_REMOVE(&p->results, j, entry);
			poller_job_free(p, j);
		}
		if (fill)
			poller_fill(p);
		return;
	}
	TAILQ_FOREACH(j, &p->results, entry) {
		if (ledger_damaged(p->ledger) != NULL) {
			failed++;	/* the rest cannot be written either */
			break;
		}
		if (j->result == JOB_APPLY) {
			r = ledger_apply(p->ledger, &j->order, &j->upd,
			    j->now);
			if (r == -1) {
				log_warnx("poller: order %s: result not"
				    " written; it is polled again when its"
				    " lease expires", j->order.order_id);
				failed++;
			} else if (r == 1) {
				/* Not an error: another claim or a recheck
				 * moved the order (ledger_apply()). */
				log_info("poller: order %s: changed since it"
				    " was claimed (another instance or a"
				    " recheck); this answer is not written and"
				    " it is asked again", j->order.order_id);
			} else {
				n++;
				if (j->upd.event != EV_NONE)
					events++;
			}
		} else if (j->result == JOB_RESCHEDULE) {
			r = ledger_reschedule(p->ledger, &j->order, j->at);
			if (r == -1) {
				log_warnx("poller: order %s: not rescheduled",
				    j->order.order_id);
				failed++;
			} else if (r == 1)
				log_info("poller: order %s: changed since it"
				    " was claimed (another instance or a"
				    " recheck); not rescheduled",
				    j->order.order_id);
			else
				n++;
		}
	}
	if (failed > 0)
		p->stats.ledger_errors++;
	/* Written (or failed for good): the jobs are done with. */
	while ((j = TAILQ_FIRST(&p->results)) != NULL) {
		TAILQ_REMOVE(&p->results, j, entry);
		poller_job_free(p, j);
	}
	/* Claims made now are rolled back with the results if the commit
	 * fails; the requests then started are still answered and written
	 * (their orders only look due again, and the claimed set keeps a
	 * second request from starting). */
	if (fill)
		poller_fill(p);
	if (ledger_damaged(p->ledger) != NULL) {
		/* Found damaged during the batch: nothing more goes into it. */
		ledger_rollback(p->ledger);
	} else if (ledger_commit(p->ledger) == -1) {
		p->stats.ledger_errors++;
		log_warnx("poller: commit of %d results failed: %s; those"
		    " orders are polled again when their leases expire", n,
		    ledger_errmsg(p->ledger));
		ledger_rollback(p->ledger);
	} else if (events > 0 && p->events_cb != NULL)
		p->events_cb(p->events_arg);	/* the sinks and long polls */
}

static void
poller_flush_event(evutil_socket_t fd, short kind, void *arg)
{
	struct poller	*p = arg;

	if (p->draining) {
		poller_write_results(p, 0);
		if (p->ninflight == 0 && !p->drain_called) {
			p->drain_called = 1;
			if (p->drain_done != NULL)
				p->drain_done(p->drain_arg);
		}
		return;
	}
	if (p->once) {
		/* The once run may finish inside poller_fill: not with a
		 * transaction open. */
		poller_write_results(p, 0);
		poller_fill(p);
	} else
		poller_write_results(p, 1);
}

static void
poller_tick_event(evutil_socket_t fd, short kind, void *arg)
{
	poller_fill(arg);
}

/* Starts the request for one claimed order. Returns 0, or -1 when it could
 * not be started (its result is then queued as an error). */
static int
poller_start_job(struct poller *p, const struct order *o, enum gate_kind kind)
{
	struct job		*j;

	j = poller_job_new(p);
	j->p = p;
	j->order = *o;
	j->kind = kind;
	poller_hash_add(p, j);
	return poller_submit(p, j);
}

/* Sends j's request (again, for a check). Returns 0, or -1 when it could
 * not be started (its result is then queued as an error). */
static int
poller_submit(struct poller *p, struct job *j)
{
	const struct config	*cfg = p->cfg;
	const struct order	*o = &j->order;
	struct toss_request	 treq;
	struct fetch_request	 freq;
	const char		*hdrs[4];
	int			 rc;

	j->result = JOB_INFLIGHT;
	j->sends = 0;
	memset(&treq, 0, sizeof(treq));
	if (toss_build_request(cfg->base_url, o->order_id, o->user_key,
	    &treq) == -1) {
		log_warnx("order %s: cannot build the request (URL too long?)",
		    o->order_id);
		rc = -1;
	} else {
		hdrs[0] = "Content-Type: application/json";
		hdrs[1] = "Accept: application/json";
		hdrs[2] = treq.user_key_header;
		hdrs[3] = NULL;
		memset(&freq, 0, sizeof(freq));
		freq.url = treq.url;
		freq.body = treq.body;
		freq.body_len = treq.body != NULL ? strlen(treq.body) : 0;
		freq.headers = hdrs;
		freq.timeout_ms = cfg->timeout_ms;
		freq.connect_timeout_ms = cfg->connect_timeout_ms;
		freq.use_tls_identity = 1;
		freq.tls12_check = gate_tls12(&p->gate, j->kind);
		freq.sent = poller_sent;
		ratelimit_start(&p->rl, util_mono_ms());
		/* Says when the decision to ask was made: a request can reach
		 * Toss well after it (a slow handshake), and what a pause
		 * stops is new decisions, not requests already on their way. */
		log_debug("order %s: asking Toss%s", o->order_id,
		    j->kind == GATE_PROBE ? " (the probe after a pause)" :
		    j->kind == GATE_ASK ? "" : " (over TLS 1.2, a check)");
		rc = fetch_submit(p->fetch, &freq, poller_done, j);
		if (rc == -1)
			ratelimit_unsent_end(&p->rl);
	}
	toss_request_free(&treq);
	gate_submitted(&p->gate, j->kind, rc == 0);
	if (rc == -1) {
		/* Counted as an error with backoff, like any failed attempt. */
		j->now = util_now_ms();
		p->stats.polls++;
		p->stats.errors++;
		policy_decide(cfg, &j->order, NULL, j->now, poller_rand, p,
		    &j->upd);
		j->result = JOB_APPLY;
		TAILQ_INSERT_TAIL(&p->results, j, entry);
		poller_schedule_flush(p);
		return -1;
	}
	TAILQ_INSERT_TAIL(&p->inflight, j, entry);
	p->ninflight++;
	return 0;
}

/* Gives the order of a check that was never sent back to the ledger as it
 * was (a pause began, draining, or a --once run stopping). */
static void
poller_check_abandon(struct poller *p)
{
	struct job	*j;

	if ((j = gate_abandon_check(&p->gate)) == NULL)
		return;
	j->kind = GATE_ASK;
	j->result = JOB_RESCHEDULE;
	j->at = p->once ? p->once_at : util_now_ms();
	TAILQ_INSERT_TAIL(&p->results, j, entry);
	poller_schedule_flush(p);
}

/* Sends the waiting check when the rate limit allows; claims nothing else
 * until it has ended. */
static void
poller_fill_check(struct poller *p, int64_t mono)
{
	int64_t	 rate_wait;

	if (ratelimit_avail(&p->rl, mono, 1, &rate_wait) < 1) {
		if (rate_wait < 0) {
			p->rate_blocked = 1;
			poller_arm(p, POLLER_TICK_MS);
		} else
			poller_arm(p, rate_wait);
		return;
	}
	poller_submit(p, gate_check_job(&p->gate));
	poller_arm(p, POLLER_TICK_MS);
}

static void
poller_fill(struct poller *p)
{
	const struct config	*cfg = p->cfg;
	int64_t			 mono, now, claim_now, due_at, lease;
	int64_t			 rate_wait, at, wait;
	int			 slots, want, tokens, n, i, r, due, began;
	enum gate_go		 go;
	enum gate_kind		 kind;
	struct job		*j;

	if (!p->started || p->draining || p->once_finished)
		return;
	if (p->once_stop) {
		poller_check_abandon(p);
		poller_once_check(p);
		return;
	}
	/* A damaged ledger stops the daemon: claim nothing meanwhile (each
	 * try would only fail again). */
	if (ledger_damaged(p->ledger) != NULL)
		return;
	mono = util_mono_ms();
	now = util_now_ms();
	if (p->lead_ok != NULL) {
		/* A standby asks nothing; poller_set_leading() wakes it. */
		if (!p->leading)
			return;
		if (!p->lead_ok(p->lead_arg, mono)) {
			poller_arm(p, POLLER_TICK_MS);
			return;
		}
		if (mono < p->lead_from) {
			poller_arm(p, p->lead_from - mono);
			return;
		}
		if (!p->lead_claiming) {
			p->lead_claiming = 1;
			log_info("poller: claiming orders as the leader");
		}
	}
	p->rate_blocked = 0;
	if ((go = gate_admit(&p->gate, mono, &wait, &began)) ==
	    GATE_GO_ABANDON) {
		poller_check_abandon(p);
		go = gate_admit(&p->gate, mono, &wait, &began);
	}
	if (began)
		log_debug("poller: %s pause over, sending one probe",
		    gate_reason_name(p->gate.reason));
	switch (go) {
	case GATE_GO_CHECK:
		poller_fill_check(p, mono);
		return;
	case GATE_GO_WAIT:
	case GATE_GO_ABANDON:
		poller_arm(p, wait > 0 ? wait : POLLER_TICK_MS);
		return;
	case GATE_GO_PROBE:
	case GATE_GO_OPEN:
		break;
	}

	slots = cfg->max_inflight - (int)p->ninflight;
	kind = go == GATE_GO_PROBE ? GATE_PROBE : GATE_ASK;
	if (kind == GATE_PROBE && slots > 1)
		slots = 1;
	if (slots <= 0) {
		poller_arm(p, POLLER_TICK_MS);	/* completions refill sooner */
		return;
	}
	tokens = ratelimit_avail(&p->rl, mono, slots, &rate_wait);
	want = tokens < slots ? tokens : slots;

	n = 0;
	lease = cfg->timeout_ms + cfg->connect_timeout_ms +
	    POLLER_LEASE_MARGIN_MS;
	claim_now = due_at = now;
	if (p->once) {
		/* Only what was due when the run began; leases from now. */
		claim_now = due_at = p->once_at;
		lease += now - p->once_at;
	} else if (kind == GATE_PROBE && p->gate.until > now) {
		/* The probe is the next due order, which may be one that was
		 * rescheduled to the pause end (a reload ended the pause
		 * early, or the wall clock lags the monotonic one). */
		claim_now = p->gate.until;
	}
	if (want > 0) {
		if (p->nscratch < want) {
			free(p->scratch);
			p->scratch = xcalloc((size_t)want, sizeof(*p->scratch));
			p->nscratch = want;
		}
		n = ledger_claim_due(p->ledger, claim_now, lease, p->scratch,
		    want);
		if (n < 0) {
			/* Damage is said once, by whoever stops the daemon. */
			if (ledger_damaged(p->ledger) == NULL)
				log_warnx("poller: cannot claim due orders: %s",
				    ledger_errmsg(p->ledger));
			p->stats.ledger_errors++;
			if (p->once) {
				p->once_stop = 1;
				poller_once_check(p);
			} else
				poller_arm(p, POLLER_TICK_MS);
			return;
		}
		for (i = 0; i < n; i++) {
			if ((j = poller_claimed(p,
			    p->scratch[i].order_id)) != NULL) {
				/* Already in flight (a recheck made it due):
				 * the answer on its way settles it. The claim
				 * just made moved the lease, which a shared
				 * ledger checks the answer against: the job
				 * holds the claim now. */
				log_debug("order %s: already being polled",
				    p->scratch[i].order_id);
				j->order.next_poll_at =
				    p->scratch[i].next_poll_at;
				continue;
			}
			if (poller_start_job(p, &p->scratch[i], kind) == 0)
				kind = GATE_ASK;
		}
		if (go == GATE_GO_PROBE && n == 0)
			log_warning("poller: resumed after the %s pause (no"
			    " order due to probe with)",
			    gate_reason_name(gate_no_probe(&p->gate)));
	}

/* When to look again. */
	r = ledger_next_due(p->ledger, &at);
	if (r < 0) {
		p->stats.ledger_errors++;
		poller_arm(p, POLLER_TICK_MS);
		return;
	}
	due = r == 1 && at <= due_at;
	if (due && n == want && want < slots) {
		/* The limit holds orders back: wake exactly when it frees a
		 * place, or on the send that lets it name that time. */
		p->stats.rate_waits++;
		metrics_rate_wait();
		if (ratelimit_avail(&p->rl, util_mono_ms(), 1, &rate_wait) > 0)
			poller_arm(p, POLLER_MIN_WAIT_MS);
		else if (rate_wait < 0) {
			p->rate_blocked = 1;
			poller_arm(p, POLLER_TICK_MS);
		} else
			poller_arm(p, rate_wait);
	} else if (due)
		poller_arm(p, POLLER_TICK_MS);
	else if (r == 1 && !p->once)
		poller_arm(p, at - now);
	else
		poller_arm(p, POLLER_TICK_MS);
	poller_once_check(p);
}

/* In once mode: done when nothing that was due at the start remains,
 * nothing is in flight and every result is written. */
static void
poller_once_check(struct poller *p)
{
	int64_t	 at;
	int	 r;

	if (!p->once || p->once_finished || p->ninflight > 0 ||
	    !TAILQ_EMPTY(&p->results))
		return;
	if (!p->once_stop) {
		if (gate_paused(&p->gate) != PAUSE_NONE)
			return;		/* a 429 pause: wait it out */
		r = ledger_next_due(p->ledger, &at);
		if (r < 0)
			p->stats.ledger_errors++;
		else if (r == 1 && at <= p->once_at)
			return;
	}
	p->once_finished = 1;
	evtimer_del(p->tick);
	if (p->once_done != NULL)
		p->once_done(p->once_arg);
}

struct poller *
poller_new(struct event_base *base, struct ledger *ledger, struct fetch *fetch,
    const struct config *cfg)
{
	struct poller	*p;

	p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->ledger = ledger;
	p->fetch = fetch;
	p->cfg = cfg;
	TAILQ_INIT(&p->inflight);
	TAILQ_INIT(&p->results);
	if ((p->tick = evtimer_new(base, poller_tick_event, p)) == NULL ||
	    (p->flush = event_new(base, -1, 0, poller_flush_event, p)) == NULL)
		fatalx("poller: cannot create events");
	poller_seed(p);
	gate_init(&p->gate);
	ratelimit_init(&p->rl, cfg->rate_per_sec);
	fetch_set_max_connections(fetch, cfg->max_inflight);
	return p;
}

void
poller_free(struct poller *p)
{
	struct job	*j;

	if (p == NULL)
		return;
	poller_check_abandon(p);
	/* Results already decided are still worth writing. */
	poller_write_results(p, 0);
	/* Requests still in flight are forgotten: their leases expire and the
	 * orders are polled again. fetch_free() never calls back for them. */
	while ((j = TAILQ_FIRST(&p->inflight)) != NULL) {
		TAILQ_REMOVE(&p->inflight, j, entry);
		poller_job_free(p, j);
	}
	while ((j = p->spare) != NULL) {
		p->spare = j->hnext;
		free(j);
	}
	event_free(p->tick);
	event_free(p->flush);
	free(p->scratch);
	ratelimit_free(&p->rl);
	free(p);
}

void
poller_start(struct poller *p)
{
	p->started = 1;
	event_active(p->tick, EV_TIMEOUT, 0);
}

void
poller_start_once(struct poller *p, void (*once_done)(void *), void *arg)
{
	p->once = 1;
	p->once_at = util_now_ms();
	p->once_done = once_done;
	p->once_arg = arg;
	poller_start(p);
}

void
poller_set_config(struct poller *p, const struct config *cfg)
{
	int	 n;

	p->cfg = cfg;
	ratelimit_set_rate(&p->rl, cfg->rate_per_sec);
	fetch_set_max_connections(p->fetch, cfg->max_inflight);
	/* New credentials may have fixed a TLS or auth pause: probe now. */
	if (gate_reload(&p->gate, util_mono_ms()))
		log_info("poller: configuration changed during the %s pause:"
		    " probing now", gate_reason_name(p->gate.reason));
	if ((n = ledger_recheck_state(p->ledger, ST_HELD, util_now_ms())) < 0) {
		log_warnx("poller: cannot make held orders due: %s",
		    ledger_errmsg(p->ledger));
		p->stats.ledger_errors++;
	} else if (n > 0)
		log_info("poller: %d held order%s due for re-evaluation", n,
		    n == 1 ? "" : "s");
	poller_kick(p);
}

void
poller_set_shared(struct poller *p, int (*lead_ok)(void *, int64_t),
    void *arg)
{
	p->lead_ok = lead_ok;
	p->lead_arg = arg;
	p->leading = 0;
}

void
poller_set_leading(struct poller *p, int leading)
{
	int64_t	 hold;

	if (p->lead_ok == NULL || p->leading == leading)
		return;
	p->leading = leading;
	if (!leading) {
		/* What is in flight is answered and written (the ledger's
		 * fence decides whether it still may be). */
		evtimer_del(p->tick);
		return;
	}
	/* The old leader's last requests count at Toss for a window yet,
	 * and some may still be on their way there: two windows. Without
	 * a configured limit there is no budget to keep. */
	hold = p->rl.cap > 0 ? 2 * p->rl.window_ms : 0;
	p->lead_from = util_mono_ms() + hold;
	p->lead_claiming = 0;
	log_debug("poller: leading; first claim in %lld ms", (long long)hold);
	poller_kick(p);
}

int
poller_leading(const struct poller *p)
{
	return p->lead_ok == NULL || p->leading;
}

void
poller_kick(struct poller *p)
{
	if (p->started && !p->draining)
		event_active(p->tick, EV_TIMEOUT, 0);
}

void
poller_drain(struct poller *p, void (*done)(void *), void *arg)
{
	p->draining = 1;
	p->drain_done = done;
	p->drain_arg = arg;
	p->drain_called = 0;
	evtimer_del(p->tick);
	poller_check_abandon(p);
	/* done is called from the loop once nothing is in flight. */
	poller_schedule_flush(p);
}

void
poller_get_stats(const struct poller *p, struct poller_stats *st)
{
	*st = p->stats;
	st->inflight = p->ninflight;
	st->pause = gate_paused(&p->gate);
	st->pause_until_ms = st->pause != PAUSE_NONE ? p->gate.until : 0;
	st->pause_since_ms = st->pause != PAUSE_NONE ? p->gate.since : 0;
}

void
poller_set_events_cb(struct poller *p, void (*fn)(void *), void *arg)
{
	p->events_cb = fn;
	p->events_arg = arg;
}
