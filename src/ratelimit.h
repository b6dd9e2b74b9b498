/* The request rate limit as Toss measures it: requests arriving in any one
 * second. Pure: the caller passes monotonic milliseconds in and reports when
 * each request starts, is sent (or re-sent) and ends unsent. */
#ifndef RECONCILED_RATELIMIT_H
#define RECONCILED_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* How long past one second a send stays counted: covers the spread of the
 * delay from our send to the server's clock (a busy server reads some
 * requests later than others). Costs 2.5% of the budget. */
#define RATELIMIT_MARGIN_MS	25
/* Rates at or above this many per second are not limited at all. */
#define RATELIMIT_MAX_PER_SEC	100000.0
/* The most a send is pushed back for being late (ratelimit_sent). */
#define RATELIMIT_LATE_MAX_MS	10000

/*
 * A request counts against the limit from its start until window_ms after it
 * was actually sent, each send on its own (curl re-sends a request once on a
 * reused connection found dead). A start is allowed only while
 *	(sends within the last window_ms) + (started, not yet sent) < cap.
 * Then no window_ms at the sender, and so no second at the server, holds
 * more than cap first sends: of the requests sent in such a window, the one
 * started last saw every other one counted when it started. A request that
 * ends without ever being sent frees its place.
 *
 * That holds at the server as long as each request reaches it within the
 * margin of the same delay. One sent right after a new connection's TLS
 * handshake may be read later: the server still has its side of the
 * handshake to finish. Such a send is counted as if made late_ms later
 * (the caller passes what the handshake took).
 */
struct ratelimit {
	int		 cap;		/* per window; 0 = no limit */
	int64_t		 window_ms;	/* 1 s (1/r s) + margin */
	int		 unsent;	/* started, not sent, not ended */
	int64_t		*sends;		/* ring: sends + late */
	size_t		 size;		/* ring capacity */
	size_t		 head;
	size_t		 count;
	int64_t		 last;		/* latest time seen */
};

/* r requests per second, 0 (or >= RATELIMIT_MAX_PER_SEC) for no limit:
 * floor(r) per second, or one per 1000/r ms when r < 1. */
void	 ratelimit_init(struct ratelimit *, double per_sec);
/* A new rate; sends in the window and unsent starts stay counted. */
void	 ratelimit_set_rate(struct ratelimit *, double per_sec);
void	 ratelimit_free(struct ratelimit *);

/* How many requests may start at now (at most want). When none may,
 * *wait_ms says in how many ms one can, or is -1 when that depends on a
 * started request being sent or ending (report those and ask again). */
int	 ratelimit_avail(struct ratelimit *, int64_t now, int want,
	    int64_t *wait_ms);
/* One request started at now (it must have been allowed). */
void	 ratelimit_start(struct ratelimit *, int64_t now);
/* A started request was sent at now; first is 0 for a re-send. The server
 * may read it up to late_ms later than a send on a warm connection (0 for
 * one; at most RATELIMIT_LATE_MAX_MS is taken). */
void	 ratelimit_sent(struct ratelimit *, int64_t now, int first,
	    int64_t late_ms);
/* A started request ended without ever having been sent. */
void	 ratelimit_unsent_end(struct ratelimit *);

/* Sends counted at now plus unsent starts (for stats and tests). */
int	 ratelimit_used(struct ratelimit *, int64_t now);

#endif
