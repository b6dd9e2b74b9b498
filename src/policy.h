/* The state machine and schedules of docs/DESIGN.md as one pure function:
 * (config, order, answer, now, randomness) -> what changes. No I/O, no clock. */
#ifndef RECONCILED_POLICY_H
#define RECONCILED_POLICY_H

#include <stdint.h>

#include "config.h"
#include "ledger.h"
#include "toss.h"

/* Uniform random number in [0, 1): injectable so tests are exact. */
typedef double	(*policy_rand_fn)(void *ctx);

/* Things the caller should tell a human about (bits of policy_decide's
 * return value). */
#define POLICY_NOTE_UNKNOWN	0x1	/* a status no rule names: order held */
#define POLICY_NOTE_ANOMALY	0x2	/* a paid order answered a regression */
#define POLICY_NOTE_EXPIRED	0x4	/* gave up on a pending order */
#define POLICY_NOTE_SKU		0x8	/* Toss's sku contradicts the intake's,
					 * or the one it named before */

/* How many real answers an order must get once past a time limit
 * (give_up_after and not_found_grace for a pending order, the end of the
 * refund watch for a granted one) before the limit ends anything. The wall clock alone is no
 * proof that time passed: after a forward jump of the system clock one
 * poll would otherwise expire orders or end refund watches for good. */
#define POLICY_LATE_ANSWERS	3
/* Decides what one poll of order o means. answer is a TOSS_STATUS answer, or
 * NULL when the attempt produced no usable answer (transport error, timeout,
 * 5xx, malformed body, FAIL envelope): then the order keeps its state and is
 * retried with backoff (never sooner), counted as an error. The answer's sku
 * becomes the order's unless it contradicts the intake's or an earlier one
 * (POLICY_NOTE_SKU: mismatch before a grant, anomaly after). Strings in
 * *out point into answer. Returns POLICY_NOTE_* bits. */
int		 policy_decide(const struct config *, const struct order *o,
		    const struct toss_answer *answer, int64_t now,
		    policy_rand_fn rnd, void *rctx, struct ledger_update *out);

/* min(backoff_max, backoff_min * 2^attempt), then scaled by a factor in
 * [0.5, 1.0] drawn from r (r in [0,1)). */
int64_t		 policy_backoff(const struct config *, int64_t attempt, double r);

/* The next refund re-check of an order granted at granted_at, polled at now:
 * now + clamp(now - granted_at, refund_check_min, refund_check_max), cut
 * to granted_at + refund_watch when that is at least refund_check_min
 * away (two checks are never closer than that); 0 once now is past the
 * watch's end. */
int64_t		 policy_refund_next(const struct config *, int64_t granted_at, int64_t now);

#endif
