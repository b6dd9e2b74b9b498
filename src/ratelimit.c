/* The sliding-window request limit of ratelimit.h: a ring of recent send
 * times (pushed back by how late the server may read them), kept sorted,
 * plus a count of requests started but not yet sent. Pure: no clock, no
 * I/O; times are monotonic milliseconds from the caller. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "util.h"

#define RATELIMIT_RING_MIN	16

/* Times never go back, whatever the caller passes. */
static int64_t
ratelimit_clock(struct ratelimit *rl, int64_t now)
{
	if (now < rl->last)
		return rl->last;
	rl->last = now;
	return now;
}

/* Forgets sends that left the window. */
static void
ratelimit_expire(struct ratelimit *rl, int64_t now)
{
	while (rl->count > 0 && now - rl->sends[rl->head] >= rl->window_ms) {
		rl->head = (rl->head + 1) % rl->size;
		rl->count--;
	}
	if (rl->count == 0)
		rl->head = 0;
}

/* The i-th earliest send still counted. */
static int64_t
ratelimit_nth(const struct ratelimit *rl, size_t i)
{
	return rl->sends[(rl->head + i) % rl->size];
}

static void
ratelimit_push(struct ratelimit *rl, int64_t t)
{
	int64_t	*ring;
	size_t	 size, i;

	if (rl->count == rl->size) {
		size = rl->size < RATELIMIT_RING_MIN ? RATELIMIT_RING_MIN :
		    rl->size * 2;
		ring = xcalloc(size, sizeof(*ring));
		for (i = 0; i < rl->count; i++)
			ring[i] = ratelimit_nth(rl, i);
		free(rl->sends);
		rl->sends = ring;
		rl->size = size;
		rl->head = 0;
	}
	/* Times come in order except when pushed back: insert in place. */
	for (i = rl->count; i > 0 && ratelimit_nth(rl, i - 1) > t; i--)
		rl->sends[(rl->head + i) % rl->size] = ratelimit_nth(rl, i - 1);
	rl->sends[(rl->head + i) % rl->size] = t;
	rl->count++;
}

void
ratelimit_set_rate(struct ratelimit *rl, double r)
{
	if (!(r > 0) || r >= RATELIMIT_MAX_PER_SEC) {
		rl->cap = 0;
		rl->window_ms = 1000 + RATELIMIT_MARGIN_MS;
	} else if (r < 1) {
		rl->cap = 1;
		rl->window_ms = (int64_t)(1000.0 / r + 0.5) +
		    RATELIMIT_MARGIN_MS;
	} else {
		/* floor(r); 3000/min is 50.0 exactly, the epsilon guards a
		 * rate like 2.9999999 that was meant as 3. */
		rl->cap = (int)(r + 1e-9);
		rl->window_ms = 1000 + RATELIMIT_MARGIN_MS;
	}
}

void
ratelimit_init(struct ratelimit *rl, double r)
{
	memset(rl, 0, sizeof(*rl));
	ratelimit_set_rate(rl, r);
}

void
ratelimit_free(struct ratelimit *rl)
{
	free(rl->sends);
	rl->sends = NULL;
	rl->size = rl->head = rl->count = 0;
}

int
ratelimit_used(struct ratelimit *rl, int64_t now)
{
	ratelimit_expire(rl, ratelimit_clock(rl, now));
	return (int)rl->count + rl->unsent;
}

int
ratelimit_avail(struct ratelimit *rl, int64_t now, int want, int64_t *wait_ms)
{
	size_t	 k;
	int	 used;

	*wait_ms = 0;
	if (want <= 0)
		return 0;
	now = ratelimit_clock(rl, now);
	if (rl->cap == 0)
		return want;
	used = ratelimit_used(rl, now);
	if (used < rl->cap)
		return rl->cap - used < want ? rl->cap - used : want;
	/* k sends must leave the window before one more may start. */
	k = (size_t)(used - rl->cap) + 1;
	if (k > rl->count)
		*wait_ms = -1;
	else
		*wait_ms = ratelimit_nth(rl, k - 1) + rl->window_ms - now;
	return 0;
}

void
ratelimit_start(struct ratelimit *rl, int64_t now)
{
	ratelimit_clock(rl, now);
	rl->unsent++;
}

void
ratelimit_sent(struct ratelimit *rl, int64_t now, int first, int64_t late_ms)
{
	now = ratelimit_clock(rl, now);
	if (first && rl->unsent > 0)
		rl->unsent--;
	if (late_ms < 0)
		late_ms = 0;
	if (late_ms > RATELIMIT_LATE_MAX_MS)
		late_ms = RATELIMIT_LATE_MAX_MS;
	ratelimit_expire(rl, now);
	ratelimit_push(rl, now + late_ms);
}

void
ratelimit_unsent_end(struct ratelimit *rl)
{
	if (rl->unsent > 0)
		rl->unsent--;
}
