/* Process-wide counters for /metrics (Prometheus text format, every name
 * prefixed reconciled_). Modules record as things happen; metrics_render
 * adds the gauges read from the ledger and the other modules at scrape time. */
#ifndef RECONCILED_METRICS_H
#define RECONCILED_METRICS_H

#include <stdint.h>

struct evbuffer;
struct ledger;

/* One poll attempt finished. outcome is "status" (with the Toss status) or an
 * error kind ("timeout", "tls", "http_error", "malformed", "fail", "reset",
 * "rate_limited", "auth", ...); latency_ms from submit to answer, or < 0
 * when nothing was measured (then only the counter moves). Statuses past
 * the first 64 distinct values are counted as status="other". */
void		 metrics_poll(const char *outcome, const char *toss_status,
		    int64_t latency_ms);
/* An answer carried a status no [status] rule names. */
void		 metrics_unknown_status(const char *status);
/* An event row was written to the ledger (after the commit), by type name
 * (order_event_name). Counted since start, not read from the ledger. */
void		 metrics_event(const char *type);
/* A free slot had to wait for the rate limit. */
void		 metrics_rate_wait(void);
/* Toss answered a poll with an order's status at now_ms (unix ms). */
void		 metrics_answer_at(int64_t now_ms);
/* A known orderId was posted again with another userKey (refused). */
void		 metrics_intake_conflict(void);
/* The control API refused a request before reading it: reason is one of
 * "host", "origin", "content_type", "unauthorized". */
void		 metrics_control_refused(const char *reason);
/* The control API stopped accepting for a while: out of descriptors. */
void		 metrics_control_accept_pause(void);

/* What metrics_render reads from the rest of the daemon at scrape time. */
struct metrics_view {
	struct ledger	*ledger;
	const char	*ledger_path;	/* for reconciled_ledger_bytes; NULL skips it */
	int64_t		 now_ms;
	uint64_t	 inflight;
	const char	*pause_reason;	/* NULL when not paused */
	int64_t		 pause_until_ms;
	int64_t		 pause_since_ms;	/* when the pause began; 0 = none */
	int64_t		 cert_not_after;	/* unix seconds, 0 unknown */
	double		 rate_per_sec;	/* [api] rate_limit; 0 = none */
	int		 leader;	/* this instance polls and delivers */
	int64_t		 role_since_ms;	/* it took its role (unix ms) */
	/* Events per type (indexed by enum event_type) as the ledger counts
	 * them, all time; NULL: reconciled_events_total counts the
	 * metrics_event() calls since start instead. */
	const int64_t	*event_counts;
	/* per sink: name, delivered id, failures, failing (its last attempt
	 * failed, or it is disabled), disabled (off until a reload) */
	struct metrics_sink {
		const char	*name;
		int64_t		 delivered_id;
		uint64_t	 failures;
		int		 failing;
		int		 disabled;
	}		 sinks[4];
	int		 nsinks;
};

/* Appends the whole exposition to out. Returns 0, or -1 if the ledger
 * could not be read (what could be rendered is still appended). */
int		 metrics_render(struct evbuffer *out, const struct metrics_view *);

/* Forgets every counter (tests). */
void		 metrics_reset(void);

#endif
