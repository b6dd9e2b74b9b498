/* The state machine of docs/DESIGN.md as one pure function: what one poll of an
 * order means (new state, event, next poll), plus the backoff and refund
 * re-check schedules. No I/O, no clock: time and randomness come in. */
#include <stdint.h>
#include <string.h>

#include "policy.h"

/* a + b for b >= 0, saturating instead of overflowing. */
static int64_t
policy_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	return a + b;
}

/* now + backoff for attempt n, drawing the jitter from rnd (none if NULL). */
static int64_t
policy_retry_at(const struct config *cfg, const struct order *o, int64_t now,
    policy_rand_fn rnd, void *rctx)
{
	double	 r = rnd != NULL ? rnd(rctx) : 1.0;

	return policy_add(now, policy_backoff(cfg, o->polls + o->errors, r));
}

/* Counts one more real answer past a time limit: 1 when it is the
 * POLICY_LATE_ANSWERS-th, so that the limit may end something now. */
static int
policy_late(const struct order *o, struct ledger_update *out)
{
	out->late_answers = o->late_answers < 0 ? 1 : o->late_answers + 1;
	return out->late_answers >= POLICY_LATE_ANSWERS;
}

/* What Toss's sku (toss_sku, "" when the answer had none) means for o.
 * Returns 1 when it contradicts the sku the intake gave or the one Toss
 * named before; otherwise 0, with out->sku set when the order takes it.
 * A granted or refunded order keeps the sku it was granted under: Toss
 * naming that same sku only confirms it. */
static int
policy_sku(const struct order *o, const char *toss_sku,
    struct ledger_update *out)
{
	if (*toss_sku == '\0')
		return 0;
	if (o->state == ST_GRANTED || o->state == ST_REFUNDED) {
		if (o->sku[0] == '\0')
			return 0;
		if (strcmp(o->sku, toss_sku) != 0)
			return 1;
		if (!o->sku_confirmed)
			out->sku = toss_sku;
		return 0;
	}
	out->sku = toss_sku;
	if (o->sku_confirmed && o->sku[0] != '\0' &&
	    strcmp(o->sku, toss_sku) != 0)
		return 1;
	if (o->intake_sku[0] != '\0' && strcmp(o->intake_sku, toss_sku) != 0)
		return 1;
	return 0;
}

/* From pending or held: the whole table of docs/DESIGN.md. */
static int
policy_open(const struct config *cfg, const struct order *o, enum action act,
    int64_t now, policy_rand_fn rnd, void *rctx, struct ledger_update *out)
{
	switch (act) {
	case ACT_GRANT:
		out->new_state = ST_GRANTED;
		out->event = EV_GRANT;
		out->granted_at = now;
		out->late_answers = 0;
		out->next_poll_at = policy_refund_next(cfg, now, now);
		return 0;
	case ACT_WAIT:
		out->new_state = ST_PENDING;
		if (now - o->added_at < cfg->give_up_after_ms)
			out->late_answers = 0;
		else if (policy_late(o, out)) {
			out->new_state = ST_EXPIRED;
			out->event = EV_EXPIRED;
			out->next_poll_at = 0;
			return POLICY_NOTE_EXPIRED;
		}
		out->next_poll_at = policy_retry_at(cfg, o, now, rnd, rctx);
		return 0;
	case ACT_RETRY:
		out->next_poll_at = policy_retry_at(cfg, o, now, rnd, rctx);
		return 0;
	case ACT_FAIL:
		out->new_state = ST_FAILED;
		out->event = EV_FAILED;
		out->next_poll_at = 0;
		return 0;
	case ACT_REFUND:
		out->new_state = ST_REFUNDED;
		out->event = EV_REFUND;
		out->refund_after_grant = 0;
		out->next_poll_at = 0;
		return 0;
	case ACT_NOT_FOUND:
		/* not_found is as final as expired: the clock alone does
		 * not end the grace either. */
		if (now - o->added_at < cfg->not_found_grace_ms)
			out->late_answers = 0;
		if (now - o->added_at < cfg->not_found_grace_ms ||
		    !policy_late(o, out)) {
			out->new_state = ST_PENDING;
			out->next_poll_at = policy_retry_at(cfg, o, now, rnd,
			    rctx);
			return 0;
		}
		out->new_state = ST_NOT_FOUND;
		out->event = EV_NOT_FOUND;
		out->next_poll_at = 0;
		return 0;
	case ACT_MISMATCH:
		out->new_state = ST_MISMATCH;
		out->event = EV_MISMATCH;
		out->next_poll_at = 0;
		return 0;
	case ACT_HOLD:
	default:
		out->new_state = ST_HELD;
		out->event = EV_HELD;
		out->next_poll_at = policy_add(now, cfg->backoff_max_ms);
		return POLICY_NOTE_UNKNOWN;
	}
}

/* The next refund re-check of a granted order after a real answer at now.
 * Past the watch's end the checks go on, refund_check_min apart, until
 * POLICY_LATE_ANSWERS answers came after it; then 0. */
static int64_t
policy_watch_next(const struct config *cfg, const struct order *o,
    int64_t now, struct ledger_update *out)
{
	int64_t	 at;

	if ((at = policy_refund_next(cfg, o->granted_at, now)) != 0) {
		out->late_answers = 0;
		return at;
	}
	if (policy_late(o, out))
		return 0;
	return policy_add(now, cfg->refund_check_min_ms > 0 ?
	    cfg->refund_check_min_ms : 1);
}

/* From granted: only a refund changes the state; a regression is an
 * anomaly for a human, never a revocation. An error (ERROR) waits for
 * the backoff like any other, even near or past the watch's end. */
static int
policy_granted(const struct config *cfg, const struct order *o,
    enum action act, int64_t now, policy_rand_fn rnd, void *rctx,
    struct ledger_update *out)
{
	switch (act) {
	case ACT_GRANT:
		out->next_poll_at = policy_watch_next(cfg, o, now, out);
		return 0;
	case ACT_REFUND:
		out->new_state = ST_REFUNDED;
		out->event = EV_REFUND;
		out->refund_after_grant = 1;
		out->next_poll_at = 0;
		return 0;
	case ACT_RETRY:
		out->next_poll_at = policy_retry_at(cfg, o, now, rnd, rctx);
		return 0;
	default:
		out->event = EV_ANOMALY;
		out->next_poll_at = policy_watch_next(cfg, o, now, out);
		return POLICY_NOTE_ANOMALY |
		    (act == ACT_HOLD ? POLICY_NOTE_UNKNOWN : 0);
	}
}

/* From failed, not_found, mismatch or expired (after a manual recheck): as
 * from pending, but an answer that would leave the order waiting leaves it
 * where it is, with nothing more to do. */
static int
policy_closed(const struct config *cfg, const struct order *o,
    enum action act, int64_t now, policy_rand_fn rnd, void *rctx,
    struct ledger_update *out)
{
	switch (act) {
	case ACT_WAIT:
	case ACT_NOT_FOUND:
	case ACT_RETRY:
		out->next_poll_at = 0;
		return 0;
	default:
		return policy_open(cfg, o, act, now, rnd, rctx, out);
	}
}

/* From refunded (after a manual recheck): recorded, nothing else, but a
 * paid status on a refunded order is worth a human's look. */
static int
policy_refunded(enum action act, struct ledger_update *out)
{
	out->next_poll_at = 0;
	if (act == ACT_GRANT) {
		out->event = EV_ANOMALY;
		return POLICY_NOTE_ANOMALY;
	}
	return act == ACT_HOLD ? POLICY_NOTE_UNKNOWN : 0;
}

int
policy_decide(const struct config *cfg, const struct order *o,
    const struct toss_answer *answer, int64_t now,
    policy_rand_fn rnd, void *rctx, struct ledger_update *out)
{
	enum action	 act;
	int		 notes, conflict;

	memset(out, 0, sizeof *out);
	out->new_state = o->state;
	out->event = EV_NONE;
	out->late_answers = o->late_answers;

	/* No usable answer: an error, never a verdict. */
	if (answer == NULL || answer->kind != TOSS_STATUS) {
		out->count_error = 1;
		switch (o->state) {
		case ST_PENDING:
		case ST_HELD:
			out->next_poll_at = policy_retry_at(cfg, o, now, rnd,
			    rctx);
			break;
		case ST_GRANTED:
			out->next_poll_at = policy_retry_at(cfg, o, now, rnd,
			    rctx);
			break;
		default:
			out->next_poll_at = 0;
			break;
		}
		return 0;
	}

	out->status_seen = 1;
	out->toss_status = answer->status;
	out->reason = answer->reason;
	out->determined_at = answer->determined_at;
	act = config_action(cfg, answer->status);
	if (act == ACT_RETRY)
		out->count_error = 1;
	else
		out->count_poll = 1;
	conflict = policy_sku(o, answer->sku, out);

	switch (o->state) {
	case ST_GRANTED:
		notes = policy_granted(cfg, o, act, now, rnd, rctx, out);
		break;
	case ST_REFUNDED:
		notes = policy_refunded(act, out);
		break;
	default:
		/* Not granted yet: Toss decides what was bought, and an
		 * order whose sku is in doubt is never granted. */
		if (conflict) {
			out->new_state = ST_MISMATCH;
			out->event = EV_MISMATCH;
			out->sku_mismatch = 1;
			out->next_poll_at = 0;
			return POLICY_NOTE_SKU;
		}
		if (o->state == ST_PENDING || o->state == ST_HELD)
			return policy_open(cfg, o, act, now, rnd, rctx, out);
		return policy_closed(cfg, o, act, now, rnd, rctx, out);
	}
	/* Toss contradicts the sku an order was granted under: the grant
	 * stands (it is never re-granted or revoked), a human looks. */
	if (conflict) {
		out->sku_mismatch = 1;
		notes |= POLICY_NOTE_SKU;
		if (out->event == EV_NONE && out->new_state == o->state) {
			out->event = EV_ANOMALY;
			notes |= POLICY_NOTE_ANOMALY;
		}
	}
	return notes;
}

int64_t
policy_backoff(const struct config *cfg, int64_t attempt, double r)
{
	int64_t	 lo = cfg->backoff_min_ms, hi = cfg->backoff_max_ms, base;
	double	 cut;

	if (lo < 0)
		lo = 0;
	if (hi < 0)
		hi = 0;
	if (attempt < 0)
		attempt = 0;
	/* min * 2^attempt, without shifting past 63 bits. */
	if (lo == 0)
		base = 0;
	else if (attempt > 62 || lo > (INT64_MAX >> attempt))
		base = hi;
	else
		base = lo << attempt;
	if (base > hi)
		base = hi;

	if (!(r >= 0.0))	/* also NaN */
		r = 0.0;
	if (r > 1.0)
		r = 1.0;
	/* base * (0.5 + 0.5 r), as base minus a cut that fits in 62 bits. */
	cut = (double)base * 0.5 * (1.0 - r);
	return base - (int64_t)cut;
}

int64_t
policy_refund_next(const struct config *cfg, int64_t granted_at, int64_t now)
{
	int64_t	 end, age, step;

	end = policy_add(granted_at, cfg->refund_watch_ms);
	if (now >= end)
		return 0;
	age = now > granted_at ? now - granted_at : 0;
	step = age;
	if (step < cfg->refund_check_min_ms)
		step = cfg->refund_check_min_ms;
	if (step > cfg->refund_check_max_ms)
		step = cfg->refund_check_max_ms;
	if (step >= end - now)
		return end - now >= cfg->refund_check_min_ms ? end :
		    policy_add(now, cfg->refund_check_min_ms);
	return now + step;
}
