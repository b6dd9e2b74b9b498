/* Which of several instances on one PostgreSQL ledger leads: polls Toss and
 * delivers events. A dedicated connection, driven by the event loop, holds
 * the schema's session advisory lock and bumps the ledger's leader epoch
 * when it wins; the leader heartbeats on it and steps down on its own once
 * it cannot prove it still leads, before a standby can take over. */
#ifndef RECONCILED_LEADER_H
#define RECONCILED_LEADER_H

#include <stdint.h>

struct event_base;
struct leader;

/* How long a leader may act on its last good heartbeat (the time it was
 * sent). The database ends the leader's session only after
 * LEADER_IDLE_MS without a statement, and only then can a standby win.
 * The old leader notices at its next tick; its loop may be held up to a
 * ledger call's bound (6 s, src/ledger-pg.c) before that tick runs, so it
 * has stopped at the latest 2 + 6 + 0.5 s after that heartbeat, well
 * before the 10 s are up. */
#define LEADER_LEASE_MS		2000
#define LEADER_IDLE_MS		10000
/* Heartbeats and lock attempts. */
#define LEADER_TICK_MS		500

/* changed(arg, leading, epoch) is called from the loop on every role
 * change: leading with the epoch won, or standing by (epoch 0). url is a
 * libpq URL (kept, never logged); holder names this instance in the
 * leader row ("host pid"). Returns NULL and sets *err (caller frees) when
 * this build has no PostgreSQL. */
struct leader	*leader_new(struct event_base *, const char *url,
		    const char *holder,
		    void (*changed)(void *, int, int64_t), void *arg,
		    char **err);
/* Closes the connection (which gives leadership up at once). */
void		 leader_free(struct leader *);

/* 1 while this instance leads and its last heartbeat is fresh (within
 * LEADER_LEASE_MS at mono_now): nothing may be asked of Toss otherwise. */
int		 leader_valid(const struct leader *, int64_t mono_now);
/* The role ("leader", "standby", or "starting" before the first
 * decision), when it began (unix ms, this host's clock) and the epoch won
 * (0 unless leading). */
const char	*leader_role(const struct leader *, int64_t *since_ms,
		    int64_t *epoch);

#endif
