/* The scheduler: claims due orders from the ledger into free request slots,
 * asks Toss about each through fetch, runs the policy on the answers and
 * writes the results in one transaction per batch. Owns the rate limit and
 * asks gate.c whether requests may go out (the global pause on 429, TLS
 * failure, 401/403). */
#ifndef RECONCILED_POLLER_H
#define RECONCILED_POLLER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fetch.h"
#include "gate.h"
#include "ledger.h"

struct event_base;

struct poller_stats {
	uint64_t	 polls;		/* attempts finished */
	uint64_t	 answers;	/* of which real status answers */
	uint64_t	 errors;	/* of which errors (backoff) */
	uint64_t	 paused_attempts; /* of which rescheduled by a pause */
	uint64_t	 rate_waits;	/* times a free slot waited for a token */
	uint64_t	 unknown_statuses; /* answers whose status no rule names */
	uint64_t	 ledger_errors;	/* claims or result writes that failed */
	size_t		 inflight;
	enum gate_reason pause;
	int64_t		 pause_until_ms;	/* wall clock, 0 = not paused */
	int64_t		 pause_since_ms;	/* wall clock the pause began */
};

struct poller;

/* The poller keeps pointers to ledger, fetch and cfg (see poller_set_config). */
struct poller	*poller_new(struct event_base *, struct ledger *, struct fetch *,
		    const struct config *);
/* Frees; call only once nothing is in flight (after drain). */
void		 poller_free(struct poller *);

/* Begins claiming. In once mode, only orders due at this moment are polled
 * and once_done is called when they have all been answered (or rescheduled). */
void		 poller_start(struct poller *);
void		 poller_start_once(struct poller *, void (*once_done)(void *), void *arg);

/* Switches to a new config (after SIGHUP); cfg must outlive the poller or
 * the next call. Re-evaluates held orders at once. */
void		 poller_set_config(struct poller *, const struct config *);

/* The ledger is shared with other instances (PostgreSQL): claim only
 * while leading (poller_set_leading) and while lead_ok(arg, mono_ms) says
 * the leadership is still proven. Call before poller_start; without it
 * the poller always leads. */
void		 poller_set_shared(struct poller *,
		    int (*lead_ok)(void *, int64_t), void *arg);
/* This instance won (1) or lost (0) leadership. A new leader's first
 * request waits two rate-limit windows: the previous leader's last ones
 * still count at Toss for one, and some may still be on their way. */
void		 poller_set_leading(struct poller *, int leading);
/* 1 when the poller may claim: leading, or not shared. */
int		 poller_leading(const struct poller *);

/* Orders became due (an intake, a recheck): look at the ledger now. */
void		 poller_kick(struct poller *);

/* Stops claiming; done is called once no request is in flight. */
void		 poller_drain(struct poller *, void (*done)(void *), void *arg);

/* fn is called from the loop after a batch that wrote events (or tried to:
 * a duplicate key writes nothing) was committed. */
void		 poller_set_events_cb(struct poller *, void (*fn)(void *), void *arg);

void		 poller_get_stats(const struct poller *, struct poller_stats *);

#endif
