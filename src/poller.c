/* The scheduler: claims due orders into free request slots under the rate
 * limit, asks Toss through fetch, turns each answer into a ledger update
 * with the policy and writes a loop turn's results in one transaction. Owns
 * the global pause (429, TLS, 401/403) and its single probe; the limit's
 * arithmetic is ratelimit.c's, fed with when each request is really sent. */
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
#define POLLER_PAUSE_DEFAULT_MS	30000	/* 429 without Retry-After; TLS, auth */
#define POLLER_PAUSE_SUSPECT_MS	1000	/* a first suspected TLS refusal */
#define POLLER_PAUSE_MIN_MS	1000
#define POLLER_PAUSE_MAX_MS	3600000	/* a Retry-After past this is capped */
#define POLLER_HASH_SIZE	8192	/* power of two */
#define POLLER_MSG_MAX		512

#define PAUSE_F_QUIET		0x1	/* a failed probe: debug line only */
#define PAUSE_F_TIMED		0x2	/* the message names the duration */

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
	int			 probe;
	int			 check;		/* sent again as a TLS 1.2 check */
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

	/* Pause. */
	enum poller_pause	 pause;
	int64_t			 pause_until;		/* wall ms */
	int64_t			 pause_ms;		/* its length */
	int64_t			 pause_end_mono;
	int			 probing;		/* pause over: probe */
	int			 probe_inflight;
	char			 pause_msg[POLLER_MSG_MAX];

	/* A suspected certificate refusal (see poller_done) holds claiming
	 * while the order it happened to is asked again over TLS 1.2. */
	struct job		*check;		/* waiting or in flight */
	int			 check_sent;
	int			 tls12_unavailable;	/* Toss refused 1.2 */

	int			 started;
	int			 draining;
	int			 drain_called;
	void			 (*drain_done)(void *);
	void			*drain_arg;

	void			 (*events_cb)(void *);	/* events committed */
	void			*events_arg;

	int			 once;
	int			 once_stop;	/* TLS/auth ends a once run */
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

static int
poller_is_claimed(struct poller *p, const char *order_id)
{
	struct job	*j;

	for (j = p->claimed[poller_hash(order_id)]; j != NULL; j = j->hnext) {
		if (strcmp(j->order.order_id, order_id) == 0)
			return 1;
	}
	return 0;
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

/* "250ms", "2s", "1.5s", "5m" for log lines. */
static const char *
poller_fmt_ms(int64_t ms, char *buf, size_t size)
{
	if (ms < 1000)
		snprintf(buf, size, "%lldms", (long long)ms);
	else if (ms % 1000 == 0 && ms < 120000)
		snprintf(buf, size, "%llds", (long long)(ms / 1000));
	else if (ms < 120000)
		snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
	else if (ms < 7200000)
		snprintf(buf, size, "%lldm", (long long)((ms + 30000) / 60000));
	else
		snprintf(buf, size, "%lldh",
		    (long long)((ms + 1800000) / 3600000));
	return buf;
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

static void
poller_resume(struct poller *p, const char *how)
{
	log_notice("poller: resumed after the %s pause (%s)",
	    poller_pause_name(p->pause), how);
	p->pause = PAUSE_NONE;
	p->pause_until = 0;
	p->pause_end_mono = 0;
	p->probing = 0;
	p->pause_msg[0] = '\0';
}

/* Pauses all claiming for ms because of cause; msg says why. A pause that
 * is already on is extended silently; a failed probe re-pauses quietly
 * unless the cause changed. PAUSE_F_QUIET: log at debug only, keep the
 * first message; PAUSE_F_TIMED: msg names the duration itself. */
static void
poller_pause(struct poller *p, enum poller_pause cause, int64_t ms,
    const char *msg, int flags)
{
	int64_t		 mono = util_mono_ms(), now = util_now_ms();
	char		 d[32];
	int		 was = p->pause;
	int64_t		 was_ms = p->pause_ms;

	if (was != PAUSE_NONE && !p->probing) {
		if (mono + ms > p->pause_end_mono) {
			p->pause_end_mono = mono + ms;
			p->pause_until = now + ms;
		}
		/* A short pause on a suspicion that a clear answer makes the
		 * full one: say so, the operator read the short one. */
		if (ms > p->pause_ms && !(flags & PAUSE_F_QUIET)) {
			p->pause_ms = ms;
			p->pause = cause;
			log_notice("poller: paused for %s: %s",
			    poller_fmt_ms(ms, d, sizeof(d)), msg);
			util_strlcpy(p->pause_msg, msg, sizeof(p->pause_msg));
		}
		return;
	}
	p->pause = cause;
	p->pause_ms = ms;
	p->pause_end_mono = mono + ms;
	p->pause_until = now + ms;
	p->probing = 0;
	if (flags & PAUSE_F_QUIET) {
		log_debug("poller: %s; still paused for %s", msg,
		    poller_fmt_ms(ms, d, sizeof(d)));
		return;
	}
	if (was == PAUSE_NONE || (int)cause != was || ms > was_ms) {
		if (flags & PAUSE_F_TIMED)
			log_notice("poller: paused: %s", msg);
		else
			log_notice("poller: paused for %s: %s",
			    poller_fmt_ms(ms, d, sizeof(d)), msg);
	} else
		log_debug("poller: probe failed, paused again for %s: %s",
		    poller_fmt_ms(ms, d, sizeof(d)), msg);
	util_strlcpy(p->pause_msg, msg, sizeof(p->pause_msg));
	if (p->once && cause != PAUSE_RATE_LIMITED && !p->once_stop) {
		p->once_stop = 1;
		log_warnx("poller: --once run stops early: %s pause",
		    poller_pause_name(cause));
	}
}

/* The pause cause of one finished attempt, if any, with its duration, a
 * message for the log and PAUSE_F_* flags. */
static enum poller_pause
poller_pause_cause(const struct fetch_result *res, const struct toss_answer *a,
    int64_t *ms, char *msg, size_t size, int *flags)
{
	char	 d[32];
	int64_t	 ra;

	*ms = POLLER_PAUSE_DEFAULT_MS;
	*flags = 0;
	if (res->error == FETCH_ETLS) {
		snprintf(msg, size, "TLS handshake failed: %s", res->message);
		return PAUSE_TLS;
	}
	if (res->error == FETCH_ECERT) {
		snprintf(msg, size, "client certificate or key unusable: %s",
		    res->message);
		return PAUSE_TLS;
	}
	if (res->error != FETCH_OK)
		return PAUSE_NONE;
	if (a->kind == TOSS_RATE_LIMITED) {
		ra = res->retry_after_ms;
		if (ra < 0) {
			snprintf(msg, size,
			    "HTTP 429 rate limited, no Retry-After");
			return PAUSE_RATE_LIMITED;
		}
		if (ra < POLLER_PAUSE_MIN_MS)
			ra = POLLER_PAUSE_MIN_MS;
		if (ra > POLLER_PAUSE_MAX_MS)
			ra = POLLER_PAUSE_MAX_MS;
		*ms = ra;
		*flags = PAUSE_F_TIMED;
		snprintf(msg, size, "HTTP 429 rate limited, Retry-After %s",
		    poller_fmt_ms(ra, d, sizeof(d)));
		return PAUSE_RATE_LIMITED;
	}
	if (a->kind == TOSS_AUTH) {
		snprintf(msg, size, "HTTP %ld from Toss: credentials refused",
		    res->http_code);
		return PAUSE_AUTH;
	}
	return PAUSE_NONE;
}

/* Why an attempt gave no usable answer, for the log. */
static void
poller_describe_error(const struct fetch_result *res,
    const struct toss_answer *a, char *msg, size_t size)
{
	if (res->error != FETCH_OK) {
		snprintf(msg, size, "%s: %s", fetch_error_name(res->error),
		    res->message);
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
	const char		*from = ledger_state_name(o->state);
	const char		*to = ledger_state_name(j->upd.new_state);
	/* Warn when the answer is news; the same answer on a later poll
	 * (a held order is re-polled slowly) is only an info line. */
	int			 news = strcmp(o->toss_status,
				    j->answer.status) != 0;
	void			 (*say)(const char *, ...) =
				    news ? log_notice : log_info;

	if (notes & POLICY_NOTE_UNKNOWN) {
		p->stats.unknown_statuses++;
		metrics_unknown_status(j->answer.status);
		say("order %s: unknown status \"%s\" from Toss: order"
		    " held; map it in [status] and reload", o->order_id,
		    j->answer.status);
	}
	if ((notes & POLICY_NOTE_SKU) && j->upd.new_state == ST_MISMATCH)
		log_notice("order %s: sku mismatch: Toss says \"%s\", the"
		    " intake said \"%s\"%s%s%s; not granted, %s -> mismatch",
		    o->order_id, j->answer.sku, o->intake_sku,
		    o->sku_confirmed ? " and Toss said \"" : "",
		    o->sku_confirmed ? o->sku : "",
		    o->sku_confirmed ? "\" before" : "", from);
	else if (notes & POLICY_NOTE_SKU)
		log_notice("order %s: Toss now says sku \"%s\" for an order"
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

/* Notes what a TLS 1.2 request (a check, or the probe of a TLS pause)
 * told about the client certificate; the result itself then goes the
 * usual way: an answer is an answer, an error after an accepted handshake
 * is the order's error, a failed handshake the TLS pause. */
static void
poller_tls12_seen(struct poller *p, const struct job *j,
    const struct fetch_result *res)
{
	if (res->tls12_refused && !p->tls12_unavailable) {
		p->tls12_unavailable = 1;
		log_notice("poller: Toss does not speak TLS 1.2 (%s): a refused"
		    " client certificate can now only be inferred from"
		    " connections closed before any answer", res->message);
	} else if (res->cert_accepted && j->check)
		log_debug("order %s: the client certificate is accepted (TLS"
		    " 1.2 check): the closed connection was the server's"
		    " doing", j->order.order_id);
}

static void
poller_done(const struct fetch_result *res, void *arg)
{
	struct job		*j = arg;
	struct poller		*p = j->p;
	enum poller_pause	 cause;
	char			 msg[POLLER_MSG_MAX], uk[LOG_USERKEY_MAX];
	char			 d[32];
	int64_t			 ms;
	int			 notes, flags, held = 0;

	TAILQ_REMOVE(&p->inflight, j, entry);
	p->ninflight--;
	if (j->probe)
		p->probe_inflight = 0;
	if (j->check) {
		p->check = NULL;
		p->check_sent = 0;
	}
	poller_tls12_seen(p, j, res);
	if (j->sends == 0)
		ratelimit_unsent_end(&p->rl);	/* Toss never saw it */
	j->now = util_now_ms();
	p->stats.polls++;

	memset(&j->answer, 0, sizeof(j->answer));
	if (res->error == FETCH_OK)
		toss_parse(res->http_code, res->body, res->body_len,
		    j->order.order_id, &j->answer);
	metrics_poll(res->error != FETCH_OK ? fetch_error_name(res->error) :
	    toss_kind_name(j->answer.kind),
	    res->error == FETCH_OK && j->answer.kind == TOSS_STATUS ?
	    j->answer.status : NULL, res->elapsed_ms);

	cause = poller_pause_cause(res, &j->answer, &ms, msg, sizeof(msg),
	    &flags);
	/* A new connection closed before any answer is how a refused client
	 * certificate looks under TLS 1.3, but a plain reset looks the same.
	 * Ask the same order again over TLS 1.2, where a refusal is a failed
	 * handshake, holding new claims meanwhile; other requests that end
	 * the same way are put back without an error (held: the check
	 * decides for them too, so they do not pause). */
	if (cause == PAUSE_TLS && res->tls_suspect && !j->probe &&
	    p->pause == PAUSE_NONE && !p->tls12_unavailable &&
	    !p->draining && !p->once_stop) {
		if (p->check == NULL) {
			log_debug("order %s: %s; asking again over TLS 1.2 to"
			    " tell a refused client certificate from a"
			    " reset", j->order.order_id, res->message);
			j->check = 1;
			p->check = j;
			p->check_sent = 0;
			event_active(p->tick, EV_TIMEOUT, 0);
			return;
		}
		held = 1;
	}
	/* Without TLS 1.2 (or with a pause already on): pause briefly and
	 * let the probe decide; only the probe's own failure pauses for the
	 * full time (requests that were already in flight when the pause
	 * began must not stretch it). */
	if (j->check && res->tls12_refused) {
		snprintf(msg, sizeof(msg), "TLS handshake failed: a new"
		    " connection closed before any answer, and Toss does not"
		    " speak TLS 1.2 to tell why (client certificate refused?)");
		ms = POLLER_PAUSE_SUSPECT_MS;
	} else if (cause == PAUSE_TLS && res->tls_suspect && !j->probe)
		ms = POLLER_PAUSE_SUSPECT_MS;
	j->check = 0;
	if (cause == PAUSE_NONE && j->probe && p->probing &&
	    res->error != FETCH_OK && res->error != FETCH_ETOOBIG &&
	    !res->cert_accepted) {
		/* The probe never reached Toss, so nothing says the cause is
		 * gone (a refused certificate can look like a reset). */
		cause = p->pause;
		ms = p->pause_ms;
		snprintf(msg, sizeof(msg), "probe failed: %s: %s",
		    fetch_error_name(res->error), res->message);
		flags = PAUSE_F_QUIET;
		if (p->once && !p->once_stop) {
			p->once_stop = 1;
			log_warnx("poller: --once run stops early: %s",
			    msg);
		}
	}
	if (cause != PAUSE_NONE) {
		p->stats.paused_attempts++;
		if (!held)
			poller_pause(p, cause, ms, msg, flags);
		j->result = JOB_RESCHEDULE;
		j->at = p->once ? p->once_at : j->now;
		log_debug("order %s: %s; rescheduled%s", j->order.order_id,
		    msg, held ? " until the TLS 1.2 check ends" : "");
	} else {
		if (j->probe && p->probing)
			poller_resume(p, "probe answered");
		if (res->error == FETCH_OK && j->answer.kind == TOSS_STATUS) {
			p->stats.answers++;
			notes = policy_decide(p->cfg, &j->order, &j->answer,
			    j->now, poller_rand, p, &j->upd);
			poller_log_answer(p, j, notes);
		} else {
			p->stats.errors++;
			policy_decide(p->cfg, &j->order, NULL, j->now,
			    poller_rand, p, &j->upd);
			poller_describe_error(res, &j->answer, msg,
			    sizeof(msg));
			if (j->upd.next_poll_at > 0)
				poller_fmt_ms(j->upd.next_poll_at - j->now, d,
				    sizeof(d));
			log_info("order %s (userKey %s): %s; next try %s%s",
			    j->order.order_id,
			    log_userkey(j->order.user_key, uk), msg,
			    j->upd.next_poll_at > 0 ? "in " : "",
			    j->upd.next_poll_at > 0 ? d : "only on a recheck");
		}
		j->result = JOB_APPLY;
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
	int		 n = 0, failed = 0, events = 0;

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
			if (ledger_apply(p->ledger, &j->order, &j->upd,
			    j->now) == -1) {
				log_warnx("poller: order %s: result not"
				    " written; it is polled again when its"
				    " lease expires", j->order.order_id);
				failed++;
			} else {
				n++;
				if (j->upd.event != EV_NONE)
					events++;
			}
		} else if (j->result == JOB_RESCHEDULE) {
			if (ledger_reschedule(p->ledger, j->order.order_id,
			    j->at) == -1) {
				log_warnx("poller: order %s: not rescheduled",
				    j->order.order_id);
				failed++;
			} else
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
poller_start_job(struct poller *p, const struct order *o, int probe)
{
	struct job		*j;

	j = poller_job_new(p);
	j->p = p;
	j->order = *o;
	j->probe = probe;
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
		/* The probe of a TLS pause is a check too. */
		freq.tls12_check = !p->tls12_unavailable && (j->check ||
		    (j->probe && p->pause == PAUSE_TLS));
		freq.sent = poller_sent;
		ratelimit_start(&p->rl, util_mono_ms());
		rc = fetch_submit(p->fetch, &freq, poller_done, j);
		if (rc == -1)
			ratelimit_unsent_end(&p->rl);
	}
	toss_request_free(&treq);
	if (rc == -1) {
		/* Counted as an error with backoff, like any failed attempt. */
		if (j->check) {
			j->check = 0;
			p->check = NULL;
		}
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
	if (j->probe)
		p->probe_inflight = 1;
	if (j->check)
		p->check_sent = 1;
	return 0;
}

/* Gives the order of a check that was never sent back to the ledger as it
 * was (draining, or a --once run stopping). */
static void
poller_check_abandon(struct poller *p)
{
	struct job	*j = p->check;

	if (j == NULL || p->check_sent)
		return;
	p->check = NULL;
	j->check = 0;
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

	if (p->check_sent) {
		poller_arm(p, POLLER_TICK_MS);	/* its completion refills */
		return;
	}
	if (ratelimit_avail(&p->rl, mono, 1, &rate_wait) < 1) {
		if (rate_wait < 0) {
			p->rate_blocked = 1;
			poller_arm(p, POLLER_TICK_MS);
		} else
			poller_arm(p, rate_wait);
		return;
	}
	poller_submit(p, p->check);
	poller_arm(p, POLLER_TICK_MS);
}

static void
poller_fill(struct poller *p)
{
	const struct config	*cfg = p->cfg;
	int64_t			 mono, now, claim_now, due_at, lease;
	int64_t			 rate_wait, at;
	int			 slots, want, tokens, n, i, r, due, probe;

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
	p->rate_blocked = 0;
	if (p->check != NULL) {
		/* A pause that began meanwhile (an alert read on another
		 * connection, a 429) has answered the question or makes it
		 * wait: the order goes back as it was, like the others. */
		if (p->pause != PAUSE_NONE && !p->check_sent)
			poller_check_abandon(p);
		else {
			poller_fill_check(p, mono);
			return;
		}
	}

	if (p->pause != PAUSE_NONE && !p->probing) {
		if (mono < p->pause_end_mono) {
			poller_arm(p, p->pause_end_mono - mono);
			return;
		}
		p->probing = 1;
		log_debug("poller: %s pause over, sending one probe",
		    poller_pause_name(p->pause));
	}

	slots = cfg->max_inflight - (int)p->ninflight;
	probe = p->probing;
	if (probe)
		slots = p->probe_inflight || slots < 1 ? 0 : 1;
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
	} else if (probe && p->pause_until > now) {
		/* The probe is the next due order, which may be one that was
		 * rescheduled to the pause end (a reload ended the pause
		 * early, or the wall clock lags the monotonic one). */
		claim_now = p->pause_until;
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
			if (poller_is_claimed(p, p->scratch[i].order_id)) {
				/* Already in flight (a recheck made it due):
				 * the answer on its way settles it. */
				log_debug("order %s: already being polled",
				    p->scratch[i].order_id);
				continue;
			}
			if (poller_start_job(p, &p->scratch[i], probe) == 0)
				probe = 0;
		}
		if (p->probing && n == 0) {
			poller_resume(p, "no order due to probe with");
		}
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
		if (p->pause != PAUSE_NONE)
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
	if ((p->pause == PAUSE_TLS || p->pause == PAUSE_AUTH) && !p->probing) {
		p->pause_end_mono = util_mono_ms();
		log_info("poller: configuration changed during the %s pause:"
		    " probing now", poller_pause_name(p->pause));
	}
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
	st->pause = p->pause;
	st->pause_until_ms = p->pause != PAUSE_NONE ? p->pause_until : 0;
}

const char *
poller_pause_name(enum poller_pause pause)
{
	switch (pause) {
	case PAUSE_NONE:
		return "none";
	case PAUSE_RATE_LIMITED:
		return "rate_limited";
	case PAUSE_TLS:
		return "tls";
	case PAUSE_AUTH:
		return "auth";
	}
	return "?";
}

void
poller_set_events_cb(struct poller *p, void (*fn)(void *), void *arg)
{
	p->events_cb = fn;
	p->events_arg = arg;
}
