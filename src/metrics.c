/* The process-wide counters behind GET /metrics and their rendering in the
 * Prometheus text format (version 0.0.4). Counters live in fixed tables, so a
 * server inventing new statuses cannot grow memory: past METRICS_LABELS_MAX
 * distinct values, statuses are counted under status="other". */
#include <sys/stat.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "gate.h"
#include "ledger.h"
#include "metrics.h"

#define METRICS_LABELS_MAX	64	/* distinct status label values kept */
#define METRICS_OUTCOMES_MAX	32	/* distinct outcomes, "other" included */
#define METRICS_LABEL_LEN	64	/* longer label values count as "other" */
#define METRICS_OTHER		"other"

/* Status slots: 0..nstatuses-1 are the values seen, then these two. */
#define SLOT_OTHER		METRICS_LABELS_MAX
#define SLOT_NONE		(METRICS_LABELS_MAX + 1)	/* no status: "" */
#define NSLOTS			(METRICS_LABELS_MAX + 2)
/* The last outcome slot collects whatever does not fit. */
#define OUTCOME_OTHER		(METRICS_OUTCOMES_MAX - 1)

/* Poll latency buckets (upper bounds, inclusive), in ms and as rendered. */
static const int64_t lat_bound_ms[] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000
};
static const char *const lat_le[] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
	"5", "10"
};
#define LAT_BUCKETS	(sizeof(lat_bound_ms) / sizeof(lat_bound_ms[0]))

static struct {
	char		 statuses[METRICS_LABELS_MAX][METRICS_LABEL_LEN + 1];
	int		 nstatuses;
	char		 outcomes[METRICS_OUTCOMES_MAX][METRICS_LABEL_LEN + 1];
	int		 noutcomes;	/* at most OUTCOME_OTHER */
	uint64_t	 polls[METRICS_OUTCOMES_MAX][NSLOTS];
	uint64_t	 unknown[NSLOTS];
	uint64_t	 lat_bucket[LAT_BUCKETS];	/* not cumulative */
	uint64_t	 lat_count;		/* includes those past the last bound */
	int64_t		 lat_sum_ms;
	uint64_t	 events[EV__COUNT];	/* [EV_NONE]: a type no name matched */
	uint64_t	 rate_waits;
	int64_t		 last_answer_ms;	/* 0: none since start */
	uint64_t	 intake_conflicts;
	uint64_t	 refused[4];	/* control_refused_reasons */
	uint64_t	 accept_pauses;
} m;

static const char *const control_refused_reasons[4] = {
	"host", "origin", "content_type", "unauthorized"
};

/* 1 if s can be a label value here: 1..METRICS_LABEL_LEN printable ASCII
 * bytes (Toss statuses are that; anything else is not worth a series). */
static int
metrics_label_ok(const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= METRICS_LABEL_LEN || s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	}
	return i > 0;
}

/* The slot of a status label value, interning it while there is room. */
static int
metrics_status_slot(const char *status)
{
	int	 i;

	if (status == NULL || *status == '\0')
		return SLOT_NONE;
	if (!metrics_label_ok(status) || strcmp(status, METRICS_OTHER) == 0)
		return SLOT_OTHER;
	for (i = 0; i < m.nstatuses; i++) {
		if (strcmp(m.statuses[i], status) == 0)
			return i;
	}
	if (m.nstatuses == METRICS_LABELS_MAX)
		return SLOT_OTHER;
	memcpy(m.statuses[i], status, strlen(status) + 1);
	m.nstatuses++;
	return i;
}

static int
metrics_outcome_slot(const char *outcome)
{
	int	 i;

	if (outcome == NULL || !metrics_label_ok(outcome) ||
	    strcmp(outcome, METRICS_OTHER) == 0)
		return OUTCOME_OTHER;
	for (i = 0; i < m.noutcomes; i++) {
		if (strcmp(m.outcomes[i], outcome) == 0)
			return i;
	}
	if (m.noutcomes == OUTCOME_OTHER)
		return OUTCOME_OTHER;
	memcpy(m.outcomes[i], outcome, strlen(outcome) + 1);
	m.noutcomes++;
	return i;
}

void
metrics_poll(const char *outcome, const char *toss_status, int64_t latency_ms)
{
	size_t	 b;

	m.polls[metrics_outcome_slot(outcome)][metrics_status_slot(toss_status)]++;
	if (latency_ms < 0)
		return;		/* nothing was measured */
	for (b = 0; b < LAT_BUCKETS; b++) {
		if (latency_ms <= lat_bound_ms[b]) {
			m.lat_bucket[b]++;
			break;
		}
	}
	m.lat_count++;
	if (latency_ms > INT64_MAX - m.lat_sum_ms)
		m.lat_sum_ms = INT64_MAX;
	else
		m.lat_sum_ms += latency_ms;
}

void
metrics_intake_conflict(void)
{
	m.intake_conflicts++;
}

void
metrics_control_refused(const char *reason)
{
	size_t	 i;

	for (i = 0; i < 4; i++) {
		if (strcmp(reason, control_refused_reasons[i]) == 0) {
			m.refused[i]++;
			return;
		}
	}
}

void
metrics_control_accept_pause(void)
{
	m.accept_pauses++;
}

void
metrics_unknown_status(const char *status)
{
	int	 slot = metrics_status_slot(status);

	m.unknown[slot == SLOT_NONE ? SLOT_OTHER : slot]++;
}

void
metrics_event(const char *type)
{
	int	 i;

	for (i = EV_NONE + 1; i < EV__COUNT; i++) {
		if (type != NULL && strcmp(order_event_name(i), type) == 0) {
			m.events[i]++;
			return;
		}
	}
	m.events[EV_NONE]++;
}

void
metrics_rate_wait(void)
{
	m.rate_waits++;
}

void
metrics_answer_at(int64_t now_ms)
{
	if (now_ms > m.last_answer_ms)
		m.last_answer_ms = now_ms;
}

void
metrics_reset(void)
{
	memset(&m, 0, sizeof(m));
}

/* ---- rendering ---------------------------------------------------------- */

struct render {
	struct evbuffer	*out;
	int		 failed;	/* an append failed (out of memory) */
};

static void	 render_printf(struct render *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static void
render_printf(struct render *r, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	if (evbuffer_add_vprintf(r->out, fmt, ap) == -1)
		r->failed = 1;
	va_end(ap);
}

/* "# HELP name help" and "# TYPE name type" (help holds no '\' or '\n'). */
static void
render_head(struct render *r, const char *name, const char *type,
    const char *help)
{
	render_printf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
	    type);
}

/* Appends s as a label value: '\', '"' and newline escaped; NULL is "". */
static void
render_label(struct render *r, const char *s)
{
	const char	*p;

	for (p = s != NULL ? s : ""; *p != '\0'; p++) {
		if (*p == '\\')
			render_printf(r, "\\\\");
		else if (*p == '"')
			render_printf(r, "\\\"");
		else if (*p == '\n')
			render_printf(r, "\\n");
		else if (evbuffer_add(r->out, p, 1) == -1)
			r->failed = 1;
	}
}

/* name{key="value"} n, the value escaped. */
static void
render_labelled(struct render *r, const char *name, const char *key,
    const char *value, uint64_t n)
{
	render_printf(r, "%s{%s=\"", name, key);
	render_label(r, value);
	render_printf(r, "\"} %" PRIu64 "\n", n);
}

static const char *
metrics_slot_name(int slot)
{
	if (slot == SLOT_OTHER)
		return METRICS_OTHER;
	if (slot == SLOT_NONE)
		return "";
	return m.statuses[slot];
}

/* Polls in first-seen order of outcomes and statuses, "other" last. */
static void
render_polls(struct render *r)
{
	const char	*outcome;
	int		 o, s, slot;

	render_head(r, "reconciled_polls_total", "counter", "Poll attempts "
	    "finished, by outcome (\"status\" for a real answer, else the "
	    "error) and Toss status.");
	for (o = 0; o < METRICS_OUTCOMES_MAX; o++) {
		if (o >= m.noutcomes && o != OUTCOME_OTHER)
			continue;
		outcome = o == OUTCOME_OTHER ? METRICS_OTHER : m.outcomes[o];
		for (s = 0; s < m.nstatuses + 2; s++) {
			slot = s < m.nstatuses ? s : s == m.nstatuses ?
			    SLOT_OTHER : SLOT_NONE;
			if (m.polls[o][slot] == 0)
				continue;
			render_printf(r, "reconciled_polls_total{outcome=\"");
			render_label(r, outcome);
			render_printf(r, "\",status=\"");
			render_label(r, metrics_slot_name(slot));
			render_printf(r, "\"} %" PRIu64 "\n", m.polls[o][slot]);
		}
	}
}

static void
render_latency(struct render *r)
{
	uint64_t	 cum = 0;
	size_t		 b;

	render_head(r, "reconciled_poll_latency_seconds", "histogram",
	    "Time from sending a poll to its answer or error.");
	for (b = 0; b < LAT_BUCKETS; b++) {
		cum += m.lat_bucket[b];
		render_printf(r, "reconciled_poll_latency_seconds_bucket"
		    "{le=\"%s\"} %" PRIu64 "\n", lat_le[b], cum);
	}
	render_printf(r, "reconciled_poll_latency_seconds_bucket{le=\"+Inf\"} "
	    "%" PRIu64 "\n", m.lat_count);
	render_printf(r, "reconciled_poll_latency_seconds_sum %" PRId64
	    ".%03d\n", m.lat_sum_ms / 1000, (int)(m.lat_sum_ms % 1000));
	render_printf(r, "reconciled_poll_latency_seconds_count %" PRIu64 "\n",
	    m.lat_count);
}

static void
render_ledger(struct render *r, const struct ledger_stats *st,
    int64_t now_ms)
{
	int64_t	 oldest = 0;
	int	 i;

	render_head(r, "reconciled_orders", "gauge",
	    "Orders in the ledger, by state.");
	for (i = 0; i < ST__COUNT; i++)
		render_labelled(r, "reconciled_orders", "state",
		    order_state_name(i), (uint64_t)st->orders[i]);

	render_head(r, "reconciled_ledger_events", "gauge",
	    "Events in the ledger's outbox (all time).");
	render_printf(r, "reconciled_ledger_events %" PRId64 "\n", st->events);
	render_head(r, "reconciled_last_event_id", "gauge",
	    "Id of the newest event in the ledger (0: none).");
	render_printf(r, "reconciled_last_event_id %" PRId64 "\n",
	    st->last_event_id);

	render_head(r, "reconciled_due_orders", "gauge",
	    "Orders whose next poll is due now.");
	render_printf(r, "reconciled_due_orders %" PRId64 "\n", st->due);

	if (st->oldest_pending_ms > 0 && now_ms > st->oldest_pending_ms)
		oldest = (now_ms - st->oldest_pending_ms) / 1000;
	render_head(r, "reconciled_oldest_pending_seconds", "gauge",
	    "Age of the oldest pending order (0: none pending).");
	render_printf(r, "reconciled_oldest_pending_seconds %" PRId64 "\n",
	    oldest);

	/* Kept in the ledger with the event it comes with: all time. */
	render_head(r, "reconciled_sku_mismatches_total", "counter",
	    "Orders whose sku Toss contradicted (the intake's, or its own"
	    " earlier one); each is a mismatch or anomaly event.");
	render_printf(r, "reconciled_sku_mismatches_total %" PRId64 "\n",
	    st->sku_mismatches);
}

/* From the ledger's own counts when the view has them (true across
 * restarts), else the metrics_event() calls since start. */
static void
render_events(struct render *r, const int64_t *counts)
{
	int	 i;

	if (counts != NULL) {
		render_head(r, "reconciled_events_total", "counter",
		    "Events in the ledger's outbox, by type (all time).");
		for (i = EV_NONE + 1; i < EV__COUNT; i++)
			render_labelled(r, "reconciled_events_total", "type",
			    order_event_name(i),
			    (uint64_t)(counts[i] > 0 ? counts[i] : 0));
		return;
	}
	render_head(r, "reconciled_events_total", "counter", "Events written "
	    "since the daemon started, by type (reconciled_ledger_events "
	    "counts all time).");
	for (i = EV_NONE + 1; i < EV__COUNT; i++)
		render_labelled(r, "reconciled_events_total", "type",
		    order_event_name(i), m.events[i]);
	if (m.events[EV_NONE] > 0)
		render_labelled(r, "reconciled_events_total", "type",
		    METRICS_OTHER, m.events[EV_NONE]);
}

static void
render_paused(struct render *r, const char *reason)
{
	const char	*name;
	int		 p, known = 0;

	render_head(r, "reconciled_paused", "gauge",
	    "1 while polling is paused for this reason.");
	for (p = PAUSE_RATE_LIMITED; p <= PAUSE_AUTH; p++) {
		name = gate_reason_name((enum gate_reason)p);
		if (reason != NULL && strcmp(reason, name) == 0)
			known = 1;
		render_labelled(r, "reconciled_paused", "reason", name,
		    reason != NULL && strcmp(reason, name) == 0);
	}
	if (reason != NULL && !known)
		render_labelled(r, "reconciled_paused", "reason", reason, 1);
}

/* Sink gauges; lag only when the last event id is known (last >= 0). */
static void
render_sinks(struct render *r, const struct metrics_view *v, int64_t last)
{
	const struct metrics_sink	*s;
	int				 i, n = v->nsinks;

	if (n < 0)
		n = 0;
	if (n > (int)(sizeof(v->sinks) / sizeof(v->sinks[0])))
		n = (int)(sizeof(v->sinks) / sizeof(v->sinks[0]));

	render_head(r, "reconciled_sink_delivered_id", "gauge",
	    "Id of the last event the sink delivered.");
	for (i = 0; i < n; i++) {
		s = &v->sinks[i];
		render_labelled(r, "reconciled_sink_delivered_id", "sink",
		    s->name, (uint64_t)(s->delivered_id > 0 ? s->delivered_id : 0));
	}
	if (last >= 0) {
		render_head(r, "reconciled_sink_lag", "gauge",
		    "Events in the ledger the sink has not delivered yet.");
		for (i = 0; i < n; i++) {
			s = &v->sinks[i];
			render_labelled(r, "reconciled_sink_lag", "sink",
			    s->name, (uint64_t)(last > s->delivered_id ?
			    last - s->delivered_id : 0));
		}
	}
	render_head(r, "reconciled_sink_failures_total", "counter",
	    "Failed delivery attempts since the daemon started.");
	for (i = 0; i < n; i++)
		render_labelled(r, "reconciled_sink_failures_total", "sink",
		    v->sinks[i].name, v->sinks[i].failures);
	render_head(r, "reconciled_sink_failing", "gauge",
	    "1 while the sink's last attempt failed or it is disabled.");
	for (i = 0; i < n; i++)
		render_labelled(r, "reconciled_sink_failing", "sink",
		    v->sinks[i].name, v->sinks[i].failing != 0);
	render_head(r, "reconciled_sink_disabled", "gauge",
	    "1 while the sink is off (a webhook answered 410 Gone) until a "
	    "reload.");
	for (i = 0; i < n; i++)
		render_labelled(r, "reconciled_sink_disabled", "sink",
		    v->sinks[i].name, v->sinks[i].disabled != 0);
}

static void
render_unknown(struct render *r)
{
	int	 s;

	render_head(r, "reconciled_unknown_statuses_total", "counter",
	    "Answers whose status no [status] rule names, by status.");
	for (s = 0; s < m.nstatuses; s++) {
		if (m.unknown[s] > 0)
			render_labelled(r, "reconciled_unknown_statuses_total",
			    "status", m.statuses[s], m.unknown[s]);
	}
	if (m.unknown[SLOT_OTHER] > 0)
		render_labelled(r, "reconciled_unknown_statuses_total",
		    "status", METRICS_OTHER, m.unknown[SLOT_OTHER]);
}

static void
render_control(struct render *r)
{
	size_t	 i;

	render_head(r, "reconciled_control_refused_total", "counter",
	    "Control API requests refused before routing, by reason.");
	for (i = 0; i < 4; i++)
		render_labelled(r, "reconciled_control_refused_total",
		    "reason", control_refused_reasons[i], m.refused[i]);
	render_head(r, "reconciled_control_accept_pauses_total", "counter",
	    "Times the control API stopped accepting: out of descriptors.");
	render_printf(r, "reconciled_control_accept_pauses_total %" PRIu64
	    "\n", m.accept_pauses);
}

int
metrics_render(struct evbuffer *out, const struct metrics_view *v)
{
	struct render		 r = { out, 0 };
	struct ledger_stats	 st;
	struct stat		 sb;
	int			 have_stats = 0, rv = 0;

	if (v->ledger != NULL) {
		if (ledger_stats(v->ledger, v->now_ms, &st) == 0)
			have_stats = 1;
		else
			rv = -1;
	}

	render_head(&r, "reconciled_up", "gauge", "1 while the daemon runs.");
	render_printf(&r, "reconciled_up 1\n");
	render_polls(&r);
	render_latency(&r);
	if (have_stats)
		render_ledger(&r, &st, v->now_ms);
	/* The ledger's all-time counts are the truth; the counters since
	 * start only stand in when there is no ledger to read. */
	render_events(&r, v->event_counts != NULL ? v->event_counts :
	    have_stats ? st.events_by_type : NULL);

	render_head(&r, "reconciled_inflight_requests", "gauge",
	    "Polls sent to Toss and not answered yet.");
	render_printf(&r, "reconciled_inflight_requests %" PRIu64 "\n",
	    v->inflight);
	render_paused(&r, v->pause_reason);
	render_head(&r, "reconciled_paused_since_timestamp_seconds", "gauge",
	    "When the pause in force began (unix time; 0: not paused).");
	render_printf(&r, "reconciled_paused_since_timestamp_seconds %" PRId64
	    ".%03d\n", v->pause_since_ms / 1000,
	    (int)(v->pause_since_ms % 1000));
	render_sinks(&r, v, have_stats ? st.last_event_id : -1);
	render_unknown(&r);

	render_head(&r, "reconciled_rate_limit_waits_total", "counter",
	    "Times a free request slot waited for the rate limit.");
	render_printf(&r, "reconciled_rate_limit_waits_total %" PRIu64 "\n",
	    m.rate_waits);
	render_head(&r, "reconciled_rate_limit_per_second", "gauge",
	    "The configured rate limit of requests to Toss (0: none).");
	render_printf(&r, "reconciled_rate_limit_per_second %g\n",
	    v->rate_per_sec);
	render_head(&r, "reconciled_last_answer_timestamp_seconds", "gauge",
	    "When Toss last answered a poll with an order's status (unix "
	    "time; 0: not since the daemon started).");
	render_printf(&r, "reconciled_last_answer_timestamp_seconds %" PRId64
	    ".%03d\n", m.last_answer_ms / 1000,
	    (int)(m.last_answer_ms % 1000));
	/* With one ledger on SQLite there is one instance and it leads;
	 * several instances sharing a database elect one. */
	render_head(&r, "reconciled_leader", "gauge",
	    "1 while this instance leads (polls Toss and delivers events).");
	render_printf(&r, "reconciled_leader %d\n", v->leader != 0);
	render_head(&r, "reconciled_role_since_timestamp_seconds", "gauge",
	    "When this instance took its role, leader or standby (unix "
	    "time).");
	render_printf(&r, "reconciled_role_since_timestamp_seconds %" PRId64
	    ".%03d\n", v->role_since_ms / 1000,
	    (int)(v->role_since_ms % 1000));

	render_head(&r, "reconciled_intake_conflicts_total", "counter",
	    "Orders refused over the control API: the orderId is known with "
	    "another userKey.");
	render_printf(&r, "reconciled_intake_conflicts_total %" PRIu64 "\n",
	    m.intake_conflicts);
	render_control(&r);

	if (v->ledger_path != NULL && stat(v->ledger_path, &sb) == 0) {
		render_head(&r, "reconciled_ledger_bytes", "gauge",
		    "Size of the ledger's database file (without its WAL).");
		render_printf(&r, "reconciled_ledger_bytes %lld\n",
		    (long long)sb.st_size);
	}
	if (v->cert_not_after > 0) {
		render_head(&r, "reconciled_cert_expiry_seconds", "gauge",
		    "When the client certificate expires (unix time).");
		render_printf(&r, "reconciled_cert_expiry_seconds %" PRId64 "\n",
		    v->cert_not_after);
	}
	return r.failed ? -1 : rv;
}
