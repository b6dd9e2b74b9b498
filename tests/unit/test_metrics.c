/* Unit tests of the metrics module (src/metrics.c): the exact exposition for
 * a fresh process, the gauges read from a temp ledger with known orders,
 * events and cursors, histogram bucket math, label escaping and the cap on
 * distinct status labels. */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "ledger.h"
#include "metrics.h"
#include "util.h"

#define T0	1795829400123LL		/* 2026-11-28T01:30:00.123Z */

struct fixture {
	char		 dir[64];
	char		 path[128];
	struct ledger	*l;
};

static int
setup(void **state)
{
	struct fixture	*f;
	char		*err = NULL;
	int		 r;

	metrics_reset();
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	util_strlcpy(f->dir, "/tmp/test_metrics.XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	r = snprintf(f->path, sizeof(f->path), "%s/ledger.db", f->dir);
	assert_true(r > 0 && (size_t)r < sizeof(f->path));
	f->l = ledger_open(f->path, 0, &err);
	if (f->l == NULL)
		fail_msg("ledger_open: %s", err);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	static const char *const side[] = { "", "-wal", "-shm", "-journal" };
	char		 p[160];
	size_t		 i;

	ledger_close(f->l);
	for (i = 0; i < sizeof(side) / sizeof(side[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, side[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* Renders v into a string; *rv gets metrics_render's result. Caller frees. */
static char *
render(const struct metrics_view *v, int *rv)
{
	struct evbuffer	*b = evbuffer_new();
	char		*s;
	size_t		 len;

	assert_non_null(b);
	*rv = metrics_render(b, v);
	len = evbuffer_get_length(b);
	s = malloc(len + 1);
	assert_non_null(s);
	assert_int_equal(evbuffer_remove(b, s, len), (int)len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

/* Fails unless text holds line as a whole line. */
static void
assert_line(const char *text, const char *line)
{
	const char	*p = text;
	size_t		 n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
		p++;
	}
	fail_msg("no line \"%s\" in:\n%s", line, text);
}

/* Fails if any line of text starts with prefix. */
static void
assert_no_line_prefix(const char *text, const char *prefix)
{
	const char	*p = text;

	while ((p = strstr(p, prefix)) != NULL) {
		if (p == text || p[-1] == '\n')
			fail_msg("unexpected line starting \"%s\" in:\n%s",
			    prefix, text);
		p++;
	}
}

/* Number of lines of text starting with prefix. */
static int
count_prefix(const char *text, const char *prefix)
{
	const char	*p = text;
	int		 n = 0;

	while ((p = strstr(p, prefix)) != NULL) {
		if (p == text || p[-1] == '\n')
			n++;
		p++;
	}
	return n;
}

static void
apply(struct ledger *l, const char *id, enum order_state st,
    const char *status, enum event_type ev, int64_t next, int64_t now)
{
	struct order		 o;
	struct ledger_update	 u;

	assert_int_equal(ledger_get(l, id, &o), 1);
	memset(&u, 0, sizeof(u));
	u.new_state = st;
	u.status_seen = 1;
	u.toss_status = status;
	u.reason = "";
	u.determined_at = "";
	u.count_poll = 1;
	u.event = ev;
	u.next_poll_at = next;
	if (st == ST_GRANTED)
		u.granted_at = now;
	assert_int_equal(ledger_apply(l, &o, &u, now), 0);
}

/* ---- a fresh process ---- */

static const char fresh[] =
"# HELP reconciled_up 1 while the daemon runs.\n"
"# TYPE reconciled_up gauge\n"
"reconciled_up 1\n"
"# HELP reconciled_polls_total Poll attempts finished, by outcome (\"status\" "
"for a real answer, else the error) and Toss status.\n"
"# TYPE reconciled_polls_total counter\n"
"# HELP reconciled_poll_latency_seconds Time from sending a poll to its "
"answer or error.\n"
"# TYPE reconciled_poll_latency_seconds histogram\n"
"reconciled_poll_latency_seconds_bucket{le=\"0.005\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"0.01\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"0.025\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"0.05\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"0.1\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"0.25\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"0.5\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"1\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"2.5\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"5\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"10\"} 0\n"
"reconciled_poll_latency_seconds_bucket{le=\"+Inf\"} 0\n"
"reconciled_poll_latency_seconds_sum 0.000\n"
"reconciled_poll_latency_seconds_count 0\n"
"# HELP reconciled_orders Orders in the ledger, by state.\n"
"# TYPE reconciled_orders gauge\n"
"reconciled_orders{state=\"pending\"} 0\n"
"reconciled_orders{state=\"granted\"} 0\n"
"reconciled_orders{state=\"refunded\"} 0\n"
"reconciled_orders{state=\"failed\"} 0\n"
"reconciled_orders{state=\"not_found\"} 0\n"
"reconciled_orders{state=\"mismatch\"} 0\n"
"reconciled_orders{state=\"expired\"} 0\n"
"reconciled_orders{state=\"held\"} 0\n"
"# HELP reconciled_ledger_events Events in the ledger's outbox (all time).\n"
"# TYPE reconciled_ledger_events gauge\n"
"reconciled_ledger_events 0\n"
"# HELP reconciled_last_event_id Id of the newest event in the ledger "
"(0: none).\n"
"# TYPE reconciled_last_event_id gauge\n"
"reconciled_last_event_id 0\n"
"# HELP reconciled_due_orders Orders whose next poll is due now.\n"
"# TYPE reconciled_due_orders gauge\n"
"reconciled_due_orders 0\n"
"# HELP reconciled_oldest_pending_seconds Age of the oldest pending order "
"(0: none pending).\n"
"# TYPE reconciled_oldest_pending_seconds gauge\n"
"reconciled_oldest_pending_seconds 0\n"
"# HELP reconciled_sku_mismatches_total Orders whose sku Toss contradicted "
"(the intake's, or its own earlier one); each is a mismatch or anomaly event.\n"
"# TYPE reconciled_sku_mismatches_total counter\n"
"reconciled_sku_mismatches_total 0\n"
"# HELP reconciled_events_total Events in the ledger's outbox, by type (all "
"time).\n"
"# TYPE reconciled_events_total counter\n"
"reconciled_events_total{type=\"grant\"} 0\n"
"reconciled_events_total{type=\"refund\"} 0\n"
"reconciled_events_total{type=\"failed\"} 0\n"
"reconciled_events_total{type=\"not_found\"} 0\n"
"reconciled_events_total{type=\"mismatch\"} 0\n"
"reconciled_events_total{type=\"expired\"} 0\n"
"reconciled_events_total{type=\"held\"} 0\n"
"reconciled_events_total{type=\"anomaly\"} 0\n"
"# HELP reconciled_inflight_requests Polls sent to Toss and not answered "
"yet.\n"
"# TYPE reconciled_inflight_requests gauge\n"
"reconciled_inflight_requests 0\n"
"# HELP reconciled_paused 1 while polling is paused for this reason.\n"
"# TYPE reconciled_paused gauge\n"
"reconciled_paused{reason=\"rate_limited\"} 0\n"
"reconciled_paused{reason=\"tls\"} 0\n"
"reconciled_paused{reason=\"auth\"} 0\n"
"# HELP reconciled_paused_since_timestamp_seconds When the pause in force "
"began (unix time; 0: not paused).\n"
"# TYPE reconciled_paused_since_timestamp_seconds gauge\n"
"reconciled_paused_since_timestamp_seconds 0.000\n"
"# HELP reconciled_sink_delivered_id Id of the last event the sink "
"delivered.\n"
"# TYPE reconciled_sink_delivered_id gauge\n"
"# HELP reconciled_sink_lag Events in the ledger the sink has not delivered "
"yet.\n"
"# TYPE reconciled_sink_lag gauge\n"
"# HELP reconciled_sink_failures_total Failed delivery attempts since the "
"daemon started.\n"
"# TYPE reconciled_sink_failures_total counter\n"
"# HELP reconciled_sink_failing 1 while the sink's last attempt failed or it "
"is disabled.\n"
"# TYPE reconciled_sink_failing gauge\n"
"# HELP reconciled_sink_disabled 1 while the sink is off (a webhook answered "
"410 Gone) until a reload.\n"
"# TYPE reconciled_sink_disabled gauge\n"
"# HELP reconciled_unknown_statuses_total Answers whose status no [status] "
"rule names, by status.\n"
"# TYPE reconciled_unknown_statuses_total counter\n"
"# HELP reconciled_rate_limit_waits_total Times a free request slot waited "
"for the rate limit.\n"
"# TYPE reconciled_rate_limit_waits_total counter\n"
"reconciled_rate_limit_waits_total 0\n"
"# HELP reconciled_rate_limit_per_second The configured rate limit of "
"requests to Toss (0: none).\n"
"# TYPE reconciled_rate_limit_per_second gauge\n"
"reconciled_rate_limit_per_second 0\n"
"# HELP reconciled_last_answer_timestamp_seconds When Toss last answered a "
"poll with an order's status (unix time; 0: not since the daemon "
"started).\n"
"# TYPE reconciled_last_answer_timestamp_seconds gauge\n"
"reconciled_last_answer_timestamp_seconds 0.000\n"
"# HELP reconciled_leader 1 while this instance leads (polls Toss and "
"delivers events).\n"
"# TYPE reconciled_leader gauge\n"
"reconciled_leader 0\n"
"# HELP reconciled_role_since_timestamp_seconds When this instance took its "
"role, leader or standby (unix time).\n"
"# TYPE reconciled_role_since_timestamp_seconds gauge\n"
"reconciled_role_since_timestamp_seconds 0.000\n"
"# HELP reconciled_intake_conflicts_total Orders refused over the control "
"API: the orderId is known with another userKey.\n"
"# TYPE reconciled_intake_conflicts_total counter\n"
"reconciled_intake_conflicts_total 0\n"
"# HELP reconciled_control_refused_total Control API requests refused "
"before routing, by reason.\n"
"# TYPE reconciled_control_refused_total counter\n"
"reconciled_control_refused_total{reason=\"host\"} 0\n"
"reconciled_control_refused_total{reason=\"origin\"} 0\n"
"reconciled_control_refused_total{reason=\"content_type\"} 0\n"
"reconciled_control_refused_total{reason=\"unauthorized\"} 0\n"
"# HELP reconciled_control_accept_pauses_total Times the control API "
"stopped accepting: out of descriptors.\n"
"# TYPE reconciled_control_accept_pauses_total counter\n"
"reconciled_control_accept_pauses_total 0\n";

static void
test_fresh(void **state)
{
	struct fixture		*f = *state;
	struct metrics_view	 v;
	char			*s;
	int			 rv;

	memset(&v, 0, sizeof(v));
	v.ledger = f->l;
	v.now_ms = T0;
	s = render(&v, &rv);
	assert_int_equal(rv, 0);
	assert_string_equal(s, fresh);
	free(s);
}

/* ---- gauges from the ledger, counters ---- */

static void
test_ledger_gauges(void **state)
{
	struct fixture		*f = *state;
	struct metrics_view	 v;
	enum ledger_add_result	 res;
	struct stat		 sb;
	char			*s, line[128];
	int			 rv;

	assert_int_equal(ledger_add(f->l, "o-pending", "1", NULL, NULL, T0,
	    &res), 0);
	assert_int_equal(ledger_add(f->l, "o-pending2", "1", NULL, NULL,
	    T0 + 60000, &res), 0);
	assert_int_equal(ledger_add(f->l, "o-granted", "2", NULL, NULL, T0,
	    &res), 0);
	assert_int_equal(ledger_add(f->l, "o-failed", "3", NULL, NULL, T0,
	    &res), 0);
	assert_int_equal(ledger_add(f->l, "o-held", "4", NULL, NULL, T0, &res),
	    0);
	apply(f->l, "o-granted", ST_GRANTED, "PURCHASED", EV_GRANT,
	    T0 + 3600000, T0 + 1000);
	apply(f->l, "o-failed", ST_FAILED, "FAILED", EV_FAILED, 0, T0 + 2000);
	apply(f->l, "o-held", ST_HELD, "WEIRD", EV_HELD, T0 + 300000,
	    T0 + 3000);
	assert_int_equal(ledger_cursor_set(f->l, "jsonl", 1), 0);

	memset(&v, 0, sizeof(v));
	v.ledger = f->l;
	v.ledger_path = f->path;
	v.now_ms = T0 + 90500;		/* o-pending is 90 s old */
	v.inflight = 7;
	v.pause_reason = "tls";
	v.pause_since_ms = 1796400000123;
	v.cert_not_after = 1830000000;
	v.sinks[0].name = "jsonl";
	v.sinks[0].delivered_id = 1;
	v.sinks[0].failures = 2;
	v.sinks[0].failing = 1;
	v.sinks[1].name = "webhook";
	v.sinks[1].delivered_id = 3;
	v.sinks[1].disabled = 1;
	v.nsinks = 2;
	v.rate_per_sec = 2.5;
	v.leader = 1;
	v.role_since_ms = 1829999000500;
	metrics_answer_at(1830000001234);
	metrics_answer_at(1830000000000);	/* never goes back */
	metrics_event("grant");
	metrics_event("failed");
	metrics_event("held");
	metrics_event("grant");
	metrics_event("no-such-type");
	metrics_rate_wait();
	metrics_rate_wait();

	s = render(&v, &rv);
	assert_int_equal(rv, 0);
	assert_line(s, "reconciled_orders{state=\"pending\"} 2");
	assert_line(s, "reconciled_orders{state=\"granted\"} 1");
	assert_line(s, "reconciled_orders{state=\"refunded\"} 0");
	assert_line(s, "reconciled_orders{state=\"failed\"} 1");
	assert_line(s, "reconciled_orders{state=\"not_found\"} 0");
	assert_line(s, "reconciled_orders{state=\"mismatch\"} 0");
	assert_line(s, "reconciled_orders{state=\"expired\"} 0");
	assert_line(s, "reconciled_orders{state=\"held\"} 1");
	assert_int_equal(count_prefix(s, "reconciled_orders{"), 8);
	assert_line(s, "reconciled_ledger_events 3");
	assert_line(s, "reconciled_last_event_id 3");
	/* Both pending orders are due (next_poll_at = when added). */
	assert_line(s, "reconciled_due_orders 2");
	assert_line(s, "reconciled_oldest_pending_seconds 90");
	/* With a ledger, its all-time counts win over the since-start
	 * counters (which saw two grants and a bogus type above). */
	assert_line(s, "reconciled_events_total{type=\"grant\"} 1");
	assert_line(s, "reconciled_events_total{type=\"failed\"} 1");
	assert_line(s, "reconciled_events_total{type=\"held\"} 1");
	assert_line(s, "reconciled_events_total{type=\"refund\"} 0");
	assert_null(strstr(s, "reconciled_events_total{type=\"other\"}"));
	assert_line(s, "reconciled_inflight_requests 7");
	assert_line(s, "reconciled_paused{reason=\"rate_limited\"} 0");
	assert_line(s, "reconciled_paused{reason=\"tls\"} 1");
	assert_line(s, "reconciled_paused{reason=\"auth\"} 0");
	assert_line(s, "reconciled_paused_since_timestamp_seconds "
	    "1796400000.123");
	assert_line(s, "reconciled_sink_delivered_id{sink=\"jsonl\"} 1");
	assert_line(s, "reconciled_sink_delivered_id{sink=\"webhook\"} 3");
	assert_line(s, "reconciled_sink_lag{sink=\"jsonl\"} 2");
	assert_line(s, "reconciled_sink_lag{sink=\"webhook\"} 0");
	assert_line(s, "reconciled_sink_failures_total{sink=\"jsonl\"} 2");
	assert_line(s, "reconciled_sink_failures_total{sink=\"webhook\"} 0");
	assert_line(s, "reconciled_sink_failing{sink=\"jsonl\"} 1");
	assert_line(s, "reconciled_sink_failing{sink=\"webhook\"} 0");
	assert_line(s, "reconciled_sink_disabled{sink=\"jsonl\"} 0");
	assert_line(s, "reconciled_sink_disabled{sink=\"webhook\"} 1");
	assert_line(s, "reconciled_rate_limit_waits_total 2");
	assert_line(s, "reconciled_rate_limit_per_second 2.5");
	assert_line(s, "reconciled_last_answer_timestamp_seconds 1830000001.234");
	assert_line(s, "reconciled_leader 1");
	assert_line(s, "reconciled_role_since_timestamp_seconds 1829999000.500");
	assert_line(s, "reconciled_cert_expiry_seconds 1830000000");
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(sb.st_size > 0);
	snprintf(line, sizeof(line), "reconciled_ledger_bytes %lld",
	    (long long)sb.st_size);
	assert_line(s, line);
	assert_line(s, "reconciled_up 1");
	free(s);

	/* The oldest pending order settles: the age follows the next one. */
	apply(f->l, "o-pending", ST_GRANTED, "PURCHASED", EV_GRANT, T0 + 3600000,
	    T0 + 90000);
	s = render(&v, &rv);
	assert_int_equal(rv, 0);
	assert_line(s, "reconciled_orders{state=\"pending\"} 1");
	assert_line(s, "reconciled_orders{state=\"granted\"} 2");
	assert_line(s, "reconciled_oldest_pending_seconds 30");
	assert_line(s, "reconciled_due_orders 1");
	assert_line(s, "reconciled_last_event_id 4");
	assert_line(s, "reconciled_sink_lag{sink=\"jsonl\"} 3");
	assert_line(s, "reconciled_sink_lag{sink=\"webhook\"} 1");
	free(s);
}

/* Per-type counts from the ledger replace the counters since start. */
static void
test_event_counts_from_view(void **state)
{
	struct metrics_view	 v;
	int64_t			 counts[EV__COUNT];
	char			*s;
	int			 i, rv;

	memset(&v, 0, sizeof(v));
	for (i = 0; i < EV__COUNT; i++)
		counts[i] = 10 * i;
	counts[EV_ANOMALY] = -1;	/* never rendered below 0 */
	metrics_event("grant");
	metrics_event("bogus");
	v.event_counts = counts;
	s = render(&v, &rv);
	assert_int_equal(rv, 0);
	assert_line(s, "# HELP reconciled_events_total Events in the ledger's "
	    "outbox, by type (all time).");
	assert_line(s, "reconciled_events_total{type=\"grant\"} 10");
	assert_line(s, "reconciled_events_total{type=\"refund\"} 20");
	assert_line(s, "reconciled_events_total{type=\"held\"} 70");
	assert_line(s, "reconciled_events_total{type=\"anomaly\"} 0");
	assert_int_equal(count_prefix(s, "reconciled_events_total{"), 8);
	free(s);
}

/* Without a ledger or a path, the ledger families are left out. */
static void
test_no_ledger(void **state)
{
	struct metrics_view	 v;
	char			*s;
	int			 rv;

	memset(&v, 0, sizeof(v));
	v.now_ms = T0;
	v.sinks[0].name = "jsonl";
	v.nsinks = 1;
	s = render(&v, &rv);
	assert_int_equal(rv, 0);
	assert_no_line_prefix(s, "reconciled_orders");
	assert_no_line_prefix(s, "reconciled_due_orders");
	assert_no_line_prefix(s, "reconciled_sink_lag");
	assert_no_line_prefix(s, "reconciled_ledger_bytes");
	assert_no_line_prefix(s, "reconciled_cert_expiry_seconds");
	assert_no_line_prefix(s, "# HELP reconciled_sink_lag");
	assert_line(s, "reconciled_sink_delivered_id{sink=\"jsonl\"} 0");
	assert_line(s, "reconciled_up 1");
	free(s);
}

/* ---- polls and the latency histogram ---- */

static void
test_histogram(void **state)
{
	struct metrics_view	 v;
	char			*s;
	int			 rv;

	memset(&v, 0, sizeof(v));
	/* Bounds are inclusive: 5 ms falls in le="0.005". */
	metrics_poll("status", "PURCHASED", 0);
	metrics_poll("status", "PURCHASED", 5);
	metrics_poll("status", "ORDER_IN_PROGRESS", 6);
	metrics_poll("status", "PURCHASED", 10);
	metrics_poll("http_error", NULL, 11);
	metrics_poll("timeout", NULL, 9999);
	metrics_poll("timeout", NULL, 10000);
	metrics_poll("timeout", "", 10001);
	metrics_poll("connect", NULL, -1);	/* counted, not observed */

	s = render(&v, &rv);
	assert_int_equal(rv, 0);
	assert_line(s, "reconciled_poll_latency_seconds_bucket{le=\"0.005\"} 2");
	assert_line(s, "reconciled_poll_latency_seconds_bucket{le=\"0.01\"} 4");
	assert_line(s, "reconciled_poll_latency_seconds_bucket{le=\"0.025\"} 5");
	assert_line(s, "reconciled_poll_latency_seconds_bucket{le=\"0.05\"} 5");
	assert_line(s, "reconciled_poll_latency_seconds_bucket{le=\"5\"} 5");
	assert_line(s, "reconciled_poll_latency_seconds_bucket{le=\"10\"} 7");
	assert_line(s, "reconciled_poll_latency_seconds_bucket{le=\"+Inf\"} 8");
	assert_line(s, "reconciled_poll_latency_seconds_sum 30.032");
	assert_line(s, "reconciled_poll_latency_seconds_count 8");

	assert_line(s, "reconciled_polls_total{outcome=\"status\","
	    "status=\"PURCHASED\"} 3");
	assert_line(s, "reconciled_polls_total{outcome=\"status\","
	    "status=\"ORDER_IN_PROGRESS\"} 1");
	assert_line(s, "reconciled_polls_total{outcome=\"http_error\","
	    "status=\"\"} 1");
	assert_line(s, "reconciled_polls_total{outcome=\"timeout\","
	    "status=\"\"} 3");
	assert_line(s, "reconciled_polls_total{outcome=\"connect\","
	    "status=\"\"} 1");
	assert_int_equal(count_prefix(s, "reconciled_polls_total{"), 5);
	free(s);

	metrics_reset();
	s = render(&v, &rv);
	assert_line(s, "reconciled_poll_latency_seconds_count 0");
	assert_line(s, "reconciled_poll_latency_seconds_sum 0.000");
	assert_int_equal(count_prefix(s, "reconciled_polls_total{"), 0);
	free(s);
}

/* ---- labels ---- */

static void
test_label_escaping(void **state)
{
	struct metrics_view	 v;
	char			*s;
	int			 rv;

	memset(&v, 0, sizeof(v));
	v.pause_reason = "odd \"why\"\nback\\slash";
	v.sinks[0].name = "a\"b";
	v.nsinks = 1;
	metrics_unknown_status("NEW\"ST\\ATUS");
	metrics_poll("status", "NEW\"ST\\ATUS", 1);
	/* Control bytes and empty values do not become series of their own. */
	metrics_unknown_status("BAD\nSTATUS");
	metrics_unknown_status("");

	s = render(&v, &rv);
	assert_int_equal(rv, 0);
	assert_line(s, "reconciled_unknown_statuses_total{status="
	    "\"NEW\\\"ST\\\\ATUS\"} 1");
	assert_line(s, "reconciled_polls_total{outcome=\"status\",status="
	    "\"NEW\\\"ST\\\\ATUS\"} 1");
	assert_line(s, "reconciled_unknown_statuses_total{status=\"other\"} 2");
	assert_line(s, "reconciled_paused{reason="
	    "\"odd \\\"why\\\"\\nback\\\\slash\"} 1");
	assert_line(s, "reconciled_paused{reason=\"rate_limited\"} 0");
	assert_line(s, "reconciled_sink_delivered_id{sink=\"a\\\"b\"} 0");
	free(s);
}

/* A hostile server inventing statuses gets 64 series, then "other". */
static void
test_status_cap(void **state)
{
	struct metrics_view	 v;
	char			*s, st[32], line[128], longest[80];
	int			 i, rv;

	memset(&v, 0, sizeof(v));
	for (i = 0; i < 70; i++) {
		snprintf(st, sizeof(st), "S%02d", i);
		metrics_unknown_status(st);
		metrics_poll("status", st, 1);
		if (i == 3) {
			metrics_unknown_status(st);	/* a repeat */
			metrics_poll("status", st, 1);
		}
	}
	/* A status literally called "other" is not a second "other". */
	metrics_unknown_status("other");
	/* Longer than a label may be (64 bytes). */
	memset(longest, 'L', 65);
	longest[65] = '\0';
	metrics_unknown_status(longest);

	s = render(&v, &rv);
	assert_int_equal(rv, 0);
	assert_int_equal(count_prefix(s, "reconciled_unknown_statuses_total{"),
	    65);
	assert_int_equal(count_prefix(s, "reconciled_polls_total{"), 65);
	assert_line(s, "reconciled_unknown_statuses_total{status=\"S00\"} 1");
	assert_line(s, "reconciled_unknown_statuses_total{status=\"S03\"} 2");
	assert_line(s, "reconciled_unknown_statuses_total{status=\"S63\"} 1");
	assert_line(s, "reconciled_unknown_statuses_total{status=\"other\"} 8");
	assert_line(s, "reconciled_polls_total{outcome=\"status\","
	    "status=\"other\"} 6");
	for (i = 64; i < 70; i++) {
		snprintf(line, sizeof(line),
		    "reconciled_unknown_statuses_total{status=\"S%02d\"}", i);
		assert_null(strstr(s, line));
	}
	assert_null(strstr(s, longest));
	free(s);

	/* Known statuses seen first keep their series. */
	metrics_reset();
	metrics_poll("status", "PURCHASED", 1);
	for (i = 0; i < 100; i++) {
		snprintf(st, sizeof(st), "X%03d", i);
		metrics_unknown_status(st);
	}
	metrics_poll("status", "PURCHASED", 1);
	s = render(&v, &rv);
	assert_line(s, "reconciled_polls_total{outcome=\"status\","
	    "status=\"PURCHASED\"} 2");
	assert_line(s, "reconciled_unknown_statuses_total{status=\"other\"} 37");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ledger_gauges, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_event_counts_from_view, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_ledger, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_label_escaping, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_status_cap, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
