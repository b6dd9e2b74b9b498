/* Unit tests for policy.c: every row of docs/DESIGN.md's state table from every
 * state, with exact next-poll times (the randomness is injected), and the
 * backoff and refund re-check schedules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "config.h"
#include "ledger.h"
#include "policy.h"
#include "toss.h"
#include "util.h"

#define S	INT64_C(1000)
#define M	(60 * S)
#define H	(60 * M)
#define D	(24 * H)
#define NOW	INT64_C(1764293400000)	/* 2025-11-28T01:30:00Z */

/* The order the table uses: polls 2 + errors 1, so attempt n = 3; with
 * r = 0.5 the backoff is 2s * 2^3 * 0.75 = 12s. */
#define POLLS	2
#define ERRORS	1
#define R	0.5
#define BO	(12 * S)
#define SLOW	(5 * M)			/* backoff_max: held orders */
#define GRANTED	(NOW - 3 * H)		/* refund re-check due at NOW + 3h */

#define UNKNOWN_STATUS	"PAYMENT_SETTLED"
#define ERR		NULL		/* no usable answer */

static double
fixed_rnd(void *ctx)
{
	return *(const double *)ctx;
}

static int
setup(void **state)
{
	*state = config_default();
	return 0;
}

static int
teardown(void **state)
{
	config_free(*state);
	return 0;
}

static struct order
mkorder(enum order_state st, int64_t added_ago)
{
	struct order	 o;

	memset(&o, 0, sizeof o);
	util_strlcpy(o.order_id, "13c9a1ff-2baa-4495-bbfa-a0826ba8c7c0",
	    sizeof o.order_id);
	util_strlcpy(o.user_key, "443731104", sizeof o.user_key);
	o.state = st;
	o.polls = POLLS;
	o.errors = ERRORS;
	o.added_at = NOW - added_ago;
	o.updated_at = NOW - M;
	o.granted_at = st == ST_GRANTED ? GRANTED : 0;
	o.next_poll_at = NOW - S;
	return o;
}

static struct toss_answer
mkanswer(const char *status)
{
	struct toss_answer	 a;

	memset(&a, 0, sizeof a);
	a.kind = TOSS_STATUS;
	a.http_code = 200;
	util_strlcpy(a.status, status, sizeof a.status);
	util_strlcpy(a.sku, "ait.0000010000.af647449.3bd55cfd00.0000000475",
	    sizeof a.sku);
	util_strlcpy(a.reason, "결제가 완료되었어요.", sizeof a.reason);
	util_strlcpy(a.determined_at, "2025-09-25T16:30:26+09:00",
	    sizeof a.determined_at);
	return a;
}

struct row {
	enum order_state from;
	const char	*status;	/* ERR: no usable answer */
	int64_t		 added_ago;	/* now - added_at */
	enum order_state to;
	enum event_type	 event;
	int64_t		 next;		/* next_poll_at */
	int		 poll, error;	/* count_poll, count_error */
	int64_t		 granted_at;
	int		 refund_after_grant;
	int		 notes;
};

/* Runs one row and checks every field of the update. */
static void
run_row(const struct config *cfg, const struct row *r, const char *where)
{
	struct ledger_update	 u;
	struct toss_answer	 a;
	struct order		 o;
	double			 rv = R;
	int			 notes;

	o = mkorder(r->from, r->added_ago);
	if (r->status != ERR)
		a = mkanswer(r->status);
	memset(&u, 0xa5, sizeof u);
	notes = policy_decide(cfg, &o, r->status == ERR ? NULL : &a, NOW,
	    fixed_rnd, &rv, &u);

	if (u.new_state != r->to || u.event != r->event ||
	    u.next_poll_at != r->next || notes != r->notes)
		print_error("%s: %s %s (added %lld ms ago): got %s/%s next "
		    "now%+lld notes %d, want %s/%s next now%+lld notes %d\n",
		    where, order_state_name(r->from),
		    r->status == ERR ? "(error)" : r->status,
		    (long long)r->added_ago, order_state_name(u.new_state),
		    order_event_name(u.event),
		    (long long)(u.next_poll_at - NOW), notes,
		    order_state_name(r->to), order_event_name(r->event),
		    (long long)(r->next - NOW), r->notes);
	assert_int_equal(u.new_state, r->to);
	assert_int_equal(u.event, r->event);
	assert_int_equal(u.next_poll_at, r->next);
	assert_int_equal(u.count_poll, r->poll);
	assert_int_equal(u.count_error, r->error);
	assert_int_equal(u.granted_at, r->granted_at);
	assert_int_equal(u.refund_after_grant, r->refund_after_grant);
	assert_int_equal(notes, r->notes);
	assert_int_equal(u.sku_mismatch, 0);
	if (r->status == ERR) {
		assert_int_equal(u.status_seen, 0);
		assert_null(u.toss_status);
		assert_null(u.reason);
		assert_null(u.determined_at);
		assert_null(u.sku);
		assert_int_equal(u.late_answers, o.late_answers);
	} else {
		/* Every answer is recorded, whatever it decides. */
		assert_int_equal(u.status_seen, 1);
		assert_ptr_equal(u.toss_status, a.status);
		assert_ptr_equal(u.reason, a.reason);
		assert_ptr_equal(u.determined_at, a.determined_at);
		/* Toss's sku is taken, except by an order granted without
		 * one: it keeps what it was granted under. */
		if (r->from == ST_GRANTED || r->from == ST_REFUNDED)
			assert_null(u.sku);
		else
			assert_ptr_equal(u.sku, a.sku);
	}
}

static void
run_rows(const struct config *cfg, const struct row *rows, size_t n,
    const char *where)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		run_row(cfg, &rows[i], where);
}

static void
test_from_pending(void **state)
{
	static const struct row	 rows[] = {
		{ ST_PENDING, "PURCHASED", M, ST_GRANTED, EV_GRANT, NOW + H,
		    1, 0, NOW, 0, 0 },
		{ ST_PENDING, "PAYMENT_COMPLETED", M, ST_GRANTED, EV_GRANT,
		    NOW + H, 1, 0, NOW, 0, 0 },
		/* A late grant is still a grant. */
		{ ST_PENDING, "PAYMENT_COMPLETED", 30 * D, ST_GRANTED, EV_GRANT,
		    NOW + H, 1, 0, NOW, 0, 0 },
		{ ST_PENDING, "ORDER_IN_PROGRESS", M, ST_PENDING, EV_NONE,
		    NOW + BO, 1, 0, 0, 0, 0 },
		{ ST_PENDING, "ORDER_IN_PROGRESS", 24 * H - 1, ST_PENDING,
		    EV_NONE, NOW + BO, 1, 0, 0, 0, 0 },
		/* Past give_up_after, one answer ends nothing (test_expiry
		 * has the rest). */
		{ ST_PENDING, "ORDER_IN_PROGRESS", 24 * H, ST_PENDING,
		    EV_NONE, NOW + BO, 1, 0, 0, 0, 0 },
		{ ST_PENDING, "ORDER_IN_PROGRESS", 30 * D, ST_PENDING,
		    EV_NONE, NOW + BO, 1, 0, 0, 0, 0 },
		/* ERROR is an answer, but an error: never expires. */
		{ ST_PENDING, "ERROR", M, ST_PENDING, EV_NONE, NOW + BO,
		    0, 1, 0, 0, 0 },
		{ ST_PENDING, "ERROR", 30 * D, ST_PENDING, EV_NONE, NOW + BO,
		    0, 1, 0, 0, 0 },
		{ ST_PENDING, "FAILED", M, ST_FAILED, EV_FAILED, 0,
		    1, 0, 0, 0, 0 },
		{ ST_PENDING, "REFUNDED", M, ST_REFUNDED, EV_REFUND, 0,
		    1, 0, 0, 0, 0 },
		{ ST_PENDING, "NOT_FOUND", M, ST_PENDING, EV_NONE, NOW + BO,
		    1, 0, 0, 0, 0 },
		{ ST_PENDING, "NOT_FOUND", 10 * M - 1, ST_PENDING, EV_NONE,
		    NOW + BO, 1, 0, 0, 0, 0 },
		/* Past the grace, one answer ends nothing either. */
		{ ST_PENDING, "NOT_FOUND", 10 * M, ST_PENDING, EV_NONE,
		    NOW + BO, 1, 0, 0, 0, 0 },
		{ ST_PENDING, "NOT_FOUND", 2 * D, ST_PENDING, EV_NONE,
		    NOW + BO, 1, 0, 0, 0, 0 },
		{ ST_PENDING, "MINIAPP_MISMATCH", M, ST_MISMATCH, EV_MISMATCH,
		    0, 1, 0, 0, 0, 0 },
		{ ST_PENDING, UNKNOWN_STATUS, M, ST_HELD, EV_HELD, NOW + SLOW,
		    1, 0, 0, 0, POLICY_NOTE_UNKNOWN },
		{ ST_PENDING, "purchased", M, ST_HELD, EV_HELD, NOW + SLOW,
		    1, 0, 0, 0, POLICY_NOTE_UNKNOWN },
		{ ST_PENDING, ERR, M, ST_PENDING, EV_NONE, NOW + BO,
		    0, 1, 0, 0, 0 },
		/* An outage never expires an order. */
		{ ST_PENDING, ERR, 30 * D, ST_PENDING, EV_NONE, NOW + BO,
		    0, 1, 0, 0, 0 },
	};

	run_rows(*state, rows, sizeof rows / sizeof rows[0], __func__);
}

static void
test_from_held(void **state)
{
	static const struct row	 rows[] = {
		{ ST_HELD, "PURCHASED", M, ST_GRANTED, EV_GRANT, NOW + H,
		    1, 0, NOW, 0, 0 },
		{ ST_HELD, "PAYMENT_COMPLETED", M, ST_GRANTED, EV_GRANT,
		    NOW + H, 1, 0, NOW, 0, 0 },
		/* Understood again: back to pending. */
		{ ST_HELD, "ORDER_IN_PROGRESS", M, ST_PENDING, EV_NONE,
		    NOW + BO, 1, 0, 0, 0, 0 },
		{ ST_HELD, "ORDER_IN_PROGRESS", 24 * H, ST_PENDING, EV_NONE,
		    NOW + BO, 1, 0, 0, 0, 0 },
		{ ST_HELD, "ERROR", M, ST_HELD, EV_NONE, NOW + BO,
		    0, 1, 0, 0, 0 },
		{ ST_HELD, "ERROR", 30 * D, ST_HELD, EV_NONE, NOW + BO,
		    0, 1, 0, 0, 0 },
		{ ST_HELD, "FAILED", M, ST_FAILED, EV_FAILED, 0,
		    1, 0, 0, 0, 0 },
		{ ST_HELD, "REFUNDED", M, ST_REFUNDED, EV_REFUND, 0,
		    1, 0, 0, 0, 0 },
		{ ST_HELD, "NOT_FOUND", M, ST_PENDING, EV_NONE, NOW + BO,
		    1, 0, 0, 0, 0 },
		{ ST_HELD, "NOT_FOUND", 10 * M, ST_PENDING, EV_NONE, NOW + BO,
		    1, 0, 0, 0, 0 },
		{ ST_HELD, "MINIAPP_MISMATCH", M, ST_MISMATCH, EV_MISMATCH, 0,
		    1, 0, 0, 0, 0 },
		/* Still not understood: the event again (the ledger drops the
		 * duplicate key), polled slowly. */
		{ ST_HELD, UNKNOWN_STATUS, M, ST_HELD, EV_HELD, NOW + SLOW,
		    1, 0, 0, 0, POLICY_NOTE_UNKNOWN },
		{ ST_HELD, UNKNOWN_STATUS, 30 * D, ST_HELD, EV_HELD, NOW + SLOW,
		    1, 0, 0, 0, POLICY_NOTE_UNKNOWN },
		{ ST_HELD, ERR, M, ST_HELD, EV_NONE, NOW + BO, 0, 1, 0, 0, 0 },
		{ ST_HELD, ERR, 30 * D, ST_HELD, EV_NONE, NOW + BO,
		    0, 1, 0, 0, 0 },
	};

	run_rows(*state, rows, sizeof rows / sizeof rows[0], __func__);
}

static void
test_from_granted(void **state)
{
	/* Granted 3h ago: the refund schedule's next check is now + 3h. */
	static const struct row	 rows[] = {
		{ ST_GRANTED, "PURCHASED", 4 * H, ST_GRANTED, EV_NONE,
		    NOW + 3 * H, 1, 0, 0, 0, 0 },
		{ ST_GRANTED, "PAYMENT_COMPLETED", 4 * H, ST_GRANTED, EV_NONE,
		    NOW + 3 * H, 1, 0, 0, 0, 0 },
		{ ST_GRANTED, "REFUNDED", 4 * H, ST_REFUNDED, EV_REFUND, 0,
		    1, 0, 0, 1, 0 },
		{ ST_GRANTED, "ERROR", 4 * H, ST_GRANTED, EV_NONE, NOW + BO,
		    0, 1, 0, 0, 0 },
		/* Regressions keep the grant and call a human. */
		{ ST_GRANTED, "ORDER_IN_PROGRESS", 4 * H, ST_GRANTED,
		    EV_ANOMALY, NOW + 3 * H, 1, 0, 0, 0, POLICY_NOTE_ANOMALY },
		{ ST_GRANTED, "ORDER_IN_PROGRESS", 30 * D, ST_GRANTED,
		    EV_ANOMALY, NOW + 3 * H, 1, 0, 0, 0, POLICY_NOTE_ANOMALY },
		{ ST_GRANTED, "FAILED", 4 * H, ST_GRANTED, EV_ANOMALY,
		    NOW + 3 * H, 1, 0, 0, 0, POLICY_NOTE_ANOMALY },
		{ ST_GRANTED, "NOT_FOUND", 4 * H, ST_GRANTED, EV_ANOMALY,
		    NOW + 3 * H, 1, 0, 0, 0, POLICY_NOTE_ANOMALY },
		{ ST_GRANTED, "MINIAPP_MISMATCH", 4 * H, ST_GRANTED, EV_ANOMALY,
		    NOW + 3 * H, 1, 0, 0, 0, POLICY_NOTE_ANOMALY },
		{ ST_GRANTED, UNKNOWN_STATUS, 4 * H, ST_GRANTED, EV_ANOMALY,
		    NOW + 3 * H, 1, 0, 0, 0,
		    POLICY_NOTE_ANOMALY | POLICY_NOTE_UNKNOWN },
		{ ST_GRANTED, ERR, 4 * H, ST_GRANTED, EV_NONE, NOW + BO,
		    0, 1, 0, 0, 0 },
	};

	run_rows(*state, rows, sizeof rows / sizeof rows[0], __func__);
}

static void
test_from_refunded(void **state)
{
	static const struct row	 rows[] = {
		{ ST_REFUNDED, "PURCHASED", D, ST_REFUNDED, EV_ANOMALY, 0,
		    1, 0, 0, 0, POLICY_NOTE_ANOMALY },
		{ ST_REFUNDED, "PAYMENT_COMPLETED", D, ST_REFUNDED, EV_ANOMALY,
		    0, 1, 0, 0, 0, POLICY_NOTE_ANOMALY },
		{ ST_REFUNDED, "ORDER_IN_PROGRESS", D, ST_REFUNDED, EV_NONE, 0,
		    1, 0, 0, 0, 0 },
		{ ST_REFUNDED, "ERROR", D, ST_REFUNDED, EV_NONE, 0,
		    0, 1, 0, 0, 0 },
		{ ST_REFUNDED, "FAILED", D, ST_REFUNDED, EV_NONE, 0,
		    1, 0, 0, 0, 0 },
		{ ST_REFUNDED, "REFUNDED", D, ST_REFUNDED, EV_NONE, 0,
		    1, 0, 0, 0, 0 },
		{ ST_REFUNDED, "NOT_FOUND", D, ST_REFUNDED, EV_NONE, 0,
		    1, 0, 0, 0, 0 },
		{ ST_REFUNDED, "MINIAPP_MISMATCH", D, ST_REFUNDED, EV_NONE, 0,
		    1, 0, 0, 0, 0 },
		{ ST_REFUNDED, UNKNOWN_STATUS, D, ST_REFUNDED, EV_NONE, 0,
		    1, 0, 0, 0, POLICY_NOTE_UNKNOWN },
		{ ST_REFUNDED, ERR, D, ST_REFUNDED, EV_NONE, 0, 0, 1, 0, 0, 0 },
	};

	run_rows(*state, rows, sizeof rows / sizeof rows[0], __func__);
}

/* failed, not_found, mismatch, expired: only polled after a recheck. */
static void
test_from_terminal(void **state)
{
	static const enum order_state	 terminal[] = {
		ST_FAILED, ST_NOT_FOUND, ST_MISMATCH, ST_EXPIRED
	};
	size_t				 i, j;

	for (i = 0; i < sizeof terminal / sizeof terminal[0]; i++) {
		enum order_state	 t = terminal[i];
		const struct row	 rows[] = {
			/* A late payment still grants. */
			{ t, "PURCHASED", 2 * D, ST_GRANTED, EV_GRANT, NOW + H,
			    1, 0, NOW, 0, 0 },
			{ t, "PAYMENT_COMPLETED", 2 * D, ST_GRANTED, EV_GRANT,
			    NOW + H, 1, 0, NOW, 0, 0 },
			/* Waiting outcomes leave the order where it is. */
			{ t, "ORDER_IN_PROGRESS", M, t, EV_NONE, 0,
			    1, 0, 0, 0, 0 },
			{ t, "ORDER_IN_PROGRESS", 2 * D, t, EV_NONE, 0,
			    1, 0, 0, 0, 0 },
			{ t, "ERROR", 2 * D, t, EV_NONE, 0, 0, 1, 0, 0, 0 },
			{ t, "NOT_FOUND", M, t, EV_NONE, 0, 1, 0, 0, 0, 0 },
			{ t, "NOT_FOUND", 2 * D, t, EV_NONE, 0, 1, 0, 0, 0, 0 },
			/* Verdicts are verdicts (a repeated event is dropped
			 * by the ledger's unique key). */
			{ t, "FAILED", 2 * D, ST_FAILED, EV_FAILED, 0,
			    1, 0, 0, 0, 0 },
			{ t, "REFUNDED", 2 * D, ST_REFUNDED, EV_REFUND, 0,
			    1, 0, 0, 0, 0 },
			{ t, "MINIAPP_MISMATCH", 2 * D, ST_MISMATCH,
			    EV_MISMATCH, 0, 1, 0, 0, 0, 0 },
			{ t, UNKNOWN_STATUS, 2 * D, ST_HELD, EV_HELD,
			    NOW + SLOW, 1, 0, 0, 0, POLICY_NOTE_UNKNOWN },
			{ t, ERR, 2 * D, t, EV_NONE, 0, 0, 1, 0, 0, 0 },
		};

		for (j = 0; j < sizeof rows / sizeof rows[0]; j++)
			run_row(*state, &rows[j], order_state_name(t));
	}
}

/* An unknown status is held; once the operator maps it, the held order
 * settles on its next poll. */
static void
test_unknown_then_mapped(void **state)
{
	struct config		*cfg = *state;
	struct ledger_update	 u;
	struct toss_answer	 a = mkanswer(UNKNOWN_STATUS);
	struct order		 o = mkorder(ST_PENDING, M);
	double			 rv = R;

	assert_int_equal(policy_decide(cfg, &o, &a, NOW, fixed_rnd, &rv, &u),
	    POLICY_NOTE_UNKNOWN);
	assert_int_equal(u.new_state, ST_HELD);
	assert_int_equal(u.event, EV_HELD);
	assert_int_equal(u.next_poll_at, NOW + SLOW);
	assert_string_equal(u.toss_status, UNKNOWN_STATUS);

	cfg->rules = xrealloc(cfg->rules, (cfg->nrules + 1) *
	    sizeof cfg->rules[0]);
	cfg->rules[cfg->nrules].status = xstrdup(UNKNOWN_STATUS);
	cfg->rules[cfg->nrules].action = ACT_GRANT;
	cfg->nrules++;

	o.state = ST_HELD;
	o.polls++;
	assert_int_equal(policy_decide(cfg, &o, &a, NOW + SLOW, fixed_rnd, &rv,
	    &u), 0);
	assert_int_equal(u.new_state, ST_GRANTED);
	assert_int_equal(u.event, EV_GRANT);
	assert_int_equal(u.granted_at, NOW + SLOW);
	assert_int_equal(u.next_poll_at, NOW + SLOW + H);
	assert_int_equal(u.count_poll, 1);
	assert_int_equal(u.count_error, 0);

	/* "*" itself can be remapped too: unknown statuses then wait. */
	cfg->other_action = ACT_WAIT;
	a = mkanswer("SOMETHING_ELSE");
	o = mkorder(ST_PENDING, M);
	assert_int_equal(policy_decide(cfg, &o, &a, NOW, fixed_rnd, &rv, &u),
	    0);
	assert_int_equal(u.new_state, ST_PENDING);
	assert_int_equal(u.event, EV_NONE);
	assert_int_equal(u.next_poll_at, NOW + BO);
}

/* Whatever the state, a failed attempt changes nothing but the counters and
 * the next poll; answers of another kind than TOSS_STATUS count as none. */
static void
test_errors_never_change_state(void **state)
{
	static const enum toss_kind	 kinds[] = {
		TOSS_FAIL, TOSS_MALFORMED, TOSS_HTTP_ERROR, TOSS_RATE_LIMITED,
		TOSS_AUTH
	};
	struct ledger_update		 u;
	struct toss_answer		 a;
	struct order			 o;
	double				 rv = R;
	int				 st;
	size_t				 k;

	for (st = 0; st < ST__COUNT; st++) {
		for (k = 0; k <= sizeof kinds / sizeof kinds[0]; k++) {
			int64_t	 want;

			o = mkorder((enum order_state)st, 60 * D);
			a = mkanswer("PURCHASED");
			if (k < sizeof kinds / sizeof kinds[0])
				a.kind = kinds[k];
			assert_int_equal(policy_decide(*state, &o,
			    k < sizeof kinds / sizeof kinds[0] ? &a : NULL,
			    NOW, fixed_rnd, &rv, &u), 0);
			assert_int_equal(u.new_state, st);
			assert_int_equal(u.event, EV_NONE);
			assert_int_equal(u.count_error, 1);
			assert_int_equal(u.count_poll, 0);
			assert_int_equal(u.status_seen, 0);
			assert_null(u.toss_status);
			assert_int_equal(u.granted_at, 0);
			if (st == ST_PENDING || st == ST_HELD ||
			    st == ST_GRANTED)
				want = NOW + BO;
			else
				want = 0;
			assert_int_equal(u.next_poll_at, want);
		}
	}
}

/* expired comes only from real answers past give_up_after: an outage
 * expires nothing, and neither does the clock alone (a forward jump would
 * put every pending order past the limit at once). */
static void
test_expiry(void **state)
{
	struct ledger_update	 u;
	struct toss_answer	 a = mkanswer("ORDER_IN_PROGRESS");
	struct order		 o = mkorder(ST_PENDING, 24 * H + 1);
	double			 rv = R;
	int			 i;

	/* A week of outage: still pending, nothing counted. */
	for (i = 0; i < 1000; i++) {
		assert_int_equal(policy_decide(*state, &o, NULL,
		    NOW + i * 10 * M, fixed_rnd, &rv, &u), 0);
		assert_int_equal(u.new_state, ST_PENDING);
		assert_int_equal(u.late_answers, 0);
		o.errors++;
	}
	/* POLICY_LATE_ANSWERS real answers past the limit expire it; those
	 * before the last one leave it pending with the usual backoff. */
	for (i = 1; i < POLICY_LATE_ANSWERS; i++) {
		assert_int_equal(policy_decide(*state, &o, &a, NOW, fixed_rnd,
		    &rv, &u), 0);
		assert_int_equal(u.new_state, ST_PENDING);
		assert_int_equal(u.event, EV_NONE);
		assert_int_equal(u.late_answers, i);
		assert_true(u.next_poll_at > NOW);
		o.late_answers = u.late_answers;
		o.polls++;
	}
	assert_int_equal(policy_decide(*state, &o, &a, NOW, fixed_rnd, &rv,
	    &u), POLICY_NOTE_EXPIRED);
	assert_int_equal(u.new_state, ST_EXPIRED);
	assert_int_equal(u.event, EV_EXPIRED);
	assert_int_equal(u.next_poll_at, 0);
	assert_int_equal(u.count_poll, 1);
	assert_int_equal(u.late_answers, POLICY_LATE_ANSWERS);

	/* Errors and ERROR answers past the limit count for nothing. */
	o = mkorder(ST_PENDING, 24 * H + 1);
	o.late_answers = POLICY_LATE_ANSWERS - 1;
	a = mkanswer("ERROR");
	policy_decide(*state, &o, &a, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_PENDING);
	assert_int_equal(u.late_answers, POLICY_LATE_ANSWERS - 1);
	policy_decide(*state, &o, NULL, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.late_answers, POLICY_LATE_ANSWERS - 1);
}

/* The injected clock jumps 30 days forward between two polls of an order
 * added a minute ago: the next answers come in at the backoff's pace, and
 * only the POLICY_LATE_ANSWERS-th of them expires it. A clock that comes
 * back before the limit starts the count again. */
static void
test_expiry_clock_jump(void **state)
{
	struct config		*cfg = *state;
	struct ledger_update	 u;
	struct toss_answer	 a = mkanswer("ORDER_IN_PROGRESS");
	struct order		 o = mkorder(ST_PENDING, M);
	double			 rv = R;
	int64_t			 t = NOW;
	int			 i;

	policy_decide(cfg, &o, &a, t, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_PENDING);
	assert_int_equal(u.late_answers, 0);

	/* The jump: the very next poll, 30 days "later". */
	t = u.next_poll_at + 30 * D;
	o.polls++;
	policy_decide(cfg, &o, &a, t, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_PENDING);
	assert_int_equal(u.event, EV_NONE);
	assert_int_equal(u.late_answers, 1);
	assert_true(u.next_poll_at > t);

	/* The clock is put right: before the limit again, the count goes. */
	o.late_answers = u.late_answers;
	o.polls++;
	t = NOW + 2 * M;
	policy_decide(cfg, &o, &a, t, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_PENDING);
	assert_int_equal(u.late_answers, 0);

	/* Jumped again and left there: expired on the third answer. */
	o.late_answers = 0;
	t += 30 * D;
	for (i = 1; i <= POLICY_LATE_ANSWERS; i++) {
		o.polls++;
		policy_decide(cfg, &o, &a, t, fixed_rnd, &rv, &u);
		assert_int_equal(u.late_answers, i);
		if (i < POLICY_LATE_ANSWERS) {
			assert_int_equal(u.new_state, ST_PENDING);
			assert_int_equal(u.event, EV_NONE);
			t = u.next_poll_at;
		}
		o.late_answers = u.late_answers;
	}
	assert_int_equal(u.new_state, ST_EXPIRED);
	assert_int_equal(u.event, EV_EXPIRED);
	assert_int_equal(u.next_poll_at, 0);
}

/* NOT_FOUND past not_found_grace settles the order as not_found, never to
 * be polled again: like expiry, only on the POLICY_LATE_ANSWERS-th answer
 * past the grace. A clock jump (or a first request delayed past the grace)
 * leaves room for the payment Toss reports a moment later. */
static void
test_not_found_late(void **state)
{
	struct config		*cfg = *state;
	struct ledger_update	 u;
	struct toss_answer	 a = mkanswer("NOT_FOUND");
	struct order		 o = mkorder(ST_PENDING, 30 * D);
	double			 rv = R;
	int			 i;

	for (i = 1; i < POLICY_LATE_ANSWERS; i++) {
		assert_int_equal(policy_decide(cfg, &o, &a, NOW, fixed_rnd,
		    &rv, &u), 0);
		assert_int_equal(u.new_state, ST_PENDING);
		assert_int_equal(u.event, EV_NONE);
		assert_int_equal(u.late_answers, i);
		assert_int_equal(u.next_poll_at, NOW + BO);
		o.late_answers = u.late_answers;
	}
	/* Paid after all: granted, the count starts over. */
	a = mkanswer("PURCHASED");
	policy_decide(cfg, &o, &a, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_GRANTED);
	assert_int_equal(u.late_answers, 0);
	/* Or not found once more: settled. */
	a = mkanswer("NOT_FOUND");
	policy_decide(cfg, &o, &a, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_NOT_FOUND);
	assert_int_equal(u.event, EV_NOT_FOUND);
	assert_int_equal(u.next_poll_at, 0);
	/* Within the grace nothing counts, and the count is reset. */
	o = mkorder(ST_PENDING, M);
	o.late_answers = 2;
	policy_decide(cfg, &o, &a, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_PENDING);
	assert_int_equal(u.late_answers, 0);
}

static void
test_backoff(void **state)
{
	struct config	*cfg = *state;
	static const int64_t	 full[] = {
		2 * S, 4 * S, 8 * S, 16 * S, 32 * S, 64 * S, 128 * S, 256 * S,
		300 * S, 300 * S, 300 * S
	};
	int64_t		 n;

	for (n = 0; n < (int64_t)(sizeof full / sizeof full[0]); n++) {
		/* r close to 1: the full step; r = 0: half of it. */
		assert_int_equal(policy_backoff(cfg, n, 0.9999999), full[n]);
		assert_int_equal(policy_backoff(cfg, n, 0.0), full[n] / 2);
		assert_int_equal(policy_backoff(cfg, n, 0.5), full[n] * 3 / 4);
		assert_int_equal(policy_backoff(cfg, n, 1.0), full[n]);
	}
	assert_int_equal(policy_backoff(cfg, 0, 0.999), 1999);

	/* Huge attempts do not overflow the shift. */
	assert_int_equal(policy_backoff(cfg, 61, 0.9999999), 300 * S);
	assert_int_equal(policy_backoff(cfg, 62, 0.9999999), 300 * S);
	assert_int_equal(policy_backoff(cfg, 63, 0.9999999), 300 * S);
	assert_int_equal(policy_backoff(cfg, 64, 0.0), 150 * S);
	assert_int_equal(policy_backoff(cfg, 1000, 0.9999999), 300 * S);
	assert_int_equal(policy_backoff(cfg, INT64_MAX, 0.0), 150 * S);
	assert_int_equal(policy_backoff(cfg, -5, 0.9999999), 2 * S);

	/* r outside [0, 1) is clamped; NaN counts as 0. */
	assert_int_equal(policy_backoff(cfg, 0, -3.0), 1 * S);
	assert_int_equal(policy_backoff(cfg, 0, 7.0), 2 * S);
	assert_int_equal(policy_backoff(cfg, 0, NAN), 1 * S);

	/* A ceiling near INT64_MAX: still no overflow. */
	cfg->backoff_max_ms = INT64_MAX;
	assert_int_equal(policy_backoff(cfg, 40, 0.0),
	    INT64_C(2000) << 39);
	assert_int_equal(policy_backoff(cfg, 40, 1.0), INT64_C(2000) << 40);
	assert_int_equal(policy_backoff(cfg, 62, 0.0),
	    INT64_MAX - (INT64_C(1) << 62));
	assert_int_equal(policy_backoff(cfg, 62, 1.0), INT64_MAX);
	assert_int_equal(policy_backoff(cfg, INT64_MAX, 1.0), INT64_MAX);
	assert_true(policy_backoff(cfg, 63, 0.9999999) > INT64_C(1) << 62);
	cfg->backoff_max_ms = 5 * M;

	/* policy_decide uses attempt = polls + errors before this poll. */
	{
		struct ledger_update	 u;
		struct toss_answer	 a = mkanswer("ORDER_IN_PROGRESS");
		struct order		 o = mkorder(ST_PENDING, M);
		double			 rv = 0.0;

		o.polls = 0;
		o.errors = 0;
		policy_decide(cfg, &o, &a, NOW, fixed_rnd, &rv, &u);
		assert_int_equal(u.next_poll_at, NOW + 1 * S);
		o.polls = 5;
		o.errors = 3;
		policy_decide(cfg, &o, NULL, NOW, fixed_rnd, &rv, &u);
		assert_int_equal(u.next_poll_at, NOW + 150 * S);
		o.polls = 1;
		o.errors = 0;
		rv = 0.9999999;
		policy_decide(cfg, &o, &a, NOW, fixed_rnd, &rv, &u);
		assert_int_equal(u.next_poll_at, NOW + 4 * S);
		/* No randomness given: no jitter. */
		policy_decide(cfg, &o, &a, NOW, NULL, NULL, &u);
		assert_int_equal(u.next_poll_at, NOW + 4 * S);
	}
}

static void
test_refund_schedule(void **state)
{
	struct config		*cfg = *state;
	/* Hours after the grant: doubling from 1h, then every 7d (168h),
	 * then a check exactly at the end of the 90d watch. */
	static const int64_t	 hours[] = {
		1, 2, 4, 8, 16, 32, 64, 128, 256, 424, 592, 760, 928, 1096,
		1264, 1432, 1600, 1768, 1936, 2104, 2160
	};
	const int64_t		 g = NOW;
	struct ledger_update	 u;
	struct toss_answer	 a = mkanswer("PAYMENT_COMPLETED");
	struct order		 o = mkorder(ST_PENDING, M);
	double			 rv = R;
	int64_t			 t;
	size_t			 i;

	/* The schedule as a function. */
	t = g;
	for (i = 0; i < sizeof hours / sizeof hours[0]; i++) {
		t = policy_refund_next(cfg, g, t);
		assert_int_equal(t, g + hours[i] * H);
	}
	assert_int_equal(policy_refund_next(cfg, g, t), 0);
	assert_int_equal(policy_refund_next(cfg, g, g + 90 * D), 0);
	assert_int_equal(policy_refund_next(cfg, g, g + 91 * D), 0);
	/* The end too close to the last check: refund_check_min after it. */
	assert_int_equal(policy_refund_next(cfg, g, g + 90 * D - 1),
	    g + 90 * D - 1 + H);
	assert_int_equal(policy_refund_next(cfg, g, g + 90 * D - H),
	    g + 90 * D);
	assert_int_equal(policy_refund_next(cfg, g, g + 90 * D - H + 1),
	    g + 90 * D + 1);
	assert_int_equal(policy_refund_next(cfg, g, g + 30 * M), g + 90 * M);
	/* A full 7d step that would end just past the watch, or right on it. */
	assert_int_equal(policy_refund_next(cfg, g, g + 83 * D + 1), g + 90 * D);
	assert_int_equal(policy_refund_next(cfg, g, g + 83 * D), g + 90 * D);
	assert_int_equal(policy_refund_next(cfg, g, g + 83 * D - 1),
	    g + 90 * D - 1);
	/* A clock that went backwards: the minimum step. */
	assert_int_equal(policy_refund_next(cfg, g, g - H), g);

	/* The same, driven through policy_decide from the grant on. */
	policy_decide(cfg, &o, &a, g, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_GRANTED);
	assert_int_equal(u.granted_at, g);
	o.state = ST_GRANTED;
	o.granted_at = g;
	for (i = 0; i < sizeof hours / sizeof hours[0]; i++) {
		assert_int_equal(u.next_poll_at, g + hours[i] * H);
		o.polls++;
		policy_decide(cfg, &o, &a, u.next_poll_at, fixed_rnd, &rv, &u);
		assert_int_equal(u.new_state, ST_GRANTED);
		assert_int_equal(u.event, EV_NONE);
		assert_int_equal(u.granted_at, 0);
		o.late_answers = u.late_answers;
	}
	/* The check at the end was the first answer past it: the watch
	 * ends with the POLICY_LATE_ANSWERS-th, refund_check_min apart. */
	assert_int_equal(o.late_answers, 1);
	for (i = 1; i < POLICY_LATE_ANSWERS; i++) {
		assert_int_equal(u.next_poll_at, g + 90 * D + (int64_t)i * H);
		policy_decide(cfg, &o, &a, u.next_poll_at, fixed_rnd, &rv, &u);
		assert_int_equal(u.new_state, ST_GRANTED);
		assert_int_equal(u.event, EV_NONE);
		o.late_answers = u.late_answers;
	}
	assert_int_equal(o.late_answers, POLICY_LATE_ANSWERS);
	assert_int_equal(u.next_poll_at, 0);

	/* An anomaly as the last answer past the end: reported, nothing
	 * more to do. */
	a = mkanswer("FAILED");
	o.late_answers = POLICY_LATE_ANSWERS - 1;
	policy_decide(cfg, &o, &a, g + 90 * D, fixed_rnd, &rv, &u);
	assert_int_equal(u.event, EV_ANOMALY);
	assert_int_equal(u.next_poll_at, 0);
}

/* A forward jump of the clock past a granted order's refund watch ends
 * nothing at the next poll: the watch goes on until POLICY_LATE_ANSWERS
 * real answers came after its end, so a refund seen by one of them is
 * still caught. */
static void
test_watch_clock_jump(void **state)
{
	struct config		*cfg = *state;
	struct ledger_update	 u;
	struct toss_answer	 a = mkanswer("PAYMENT_COMPLETED");
	struct order		 o = mkorder(ST_GRANTED, 4 * H);
	double			 rv = R;
	int64_t			 t;

	/* Granted 3h ago; the clock says 100 days later. */
	t = NOW + 100 * D;
	policy_decide(cfg, &o, &a, t, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_GRANTED);
	assert_int_equal(u.late_answers, 1);
	assert_int_equal(u.next_poll_at, t + H);

	/* Errors past the end do not count and do not end the watch. */
	o.late_answers = u.late_answers;
	policy_decide(cfg, &o, NULL, t + H, fixed_rnd, &rv, &u);
	assert_int_equal(u.late_answers, 1);
	assert_int_equal(u.next_poll_at, t + H + BO);

	/* The second answer is a refund: caught. */
	a = mkanswer("REFUNDED");
	policy_decide(cfg, &o, &a, t + H + BO, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_REFUNDED);
	assert_int_equal(u.event, EV_REFUND);
	assert_int_equal(u.refund_after_grant, 1);

	/* An answer before the end again (the clock put right) resets the
	 * count. */
	a = mkanswer("PAYMENT_COMPLETED");
	o.late_answers = 2;
	policy_decide(cfg, &o, &a, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.late_answers, 0);
	assert_int_equal(u.next_poll_at, NOW + 3 * H);
}

/* Errors on a granted order wait for the backoff, whatever the refund
 * schedule says: a re-check that failed just before the end of the watch
 * is not tried again at the end, milliseconds later. */
static void
test_granted_error_backoff(void **state)
{
	struct config		*cfg = *state;
	struct ledger_update	 u;
	struct toss_answer	 a = mkanswer("ERROR");
	struct order		 o = mkorder(ST_GRANTED, 100 * D);
	double			 rv = R;

	/* 34 ms left of the watch, backoff 225s: the backoff. */
	o.granted_at = NOW - 90 * D + 34;
	o.polls = 20;
	o.errors = 3;
	policy_decide(cfg, &o, NULL, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_GRANTED);
	assert_int_equal(u.count_error, 1);
	assert_int_equal(u.next_poll_at, NOW + 225 * S);
	policy_decide(cfg, &o, &a, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.count_error, 1);
	assert_int_equal(u.count_poll, 0);
	assert_int_equal(u.next_poll_at, NOW + 225 * S);

	/* Watch over: an error is no answer, so it goes on, at the
	 * backoff's pace, until answers end it. */
	o.granted_at = NOW - 90 * D;
	policy_decide(cfg, &o, NULL, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.new_state, ST_GRANTED);
	assert_int_equal(u.next_poll_at, NOW + 225 * S);
	assert_int_equal(u.late_answers, 0);
	policy_decide(cfg, &o, &a, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.next_poll_at, NOW + 225 * S);
	assert_int_equal(u.late_answers, 0);

	/* A schedule step shorter than the backoff does not shorten it. */
	cfg->refund_check_min_ms = 1 * S;
	o.granted_at = NOW;
	policy_decide(cfg, &o, NULL, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.next_poll_at, NOW + 225 * S);

	/* Otherwise the plain backoff. */
	cfg->refund_check_min_ms = H;
	o.granted_at = NOW - 3 * H;
	o.polls = 0;
	o.errors = 0;
	policy_decide(cfg, &o, NULL, NOW, fixed_rnd, &rv, &u);
	assert_int_equal(u.next_poll_at, NOW + 1500);
}

/* Toss decides what was bought. Every path an answer's sku can take: the
 * order's sku afterwards (NULL: unchanged), and whether it is a mismatch. */
static void
test_sku(void **state)
{
	static const struct {
		enum order_state from;
		const char	*sku;		/* the order's */
		const char	*intake;	/* the intake's */
		int		 confirmed;
		const char	*status;
		const char	*toss;		/* the answer's ("" none) */
		enum order_state to;
		enum event_type	 event;
		const char	*want_sku;	/* NULL: unchanged */
		int		 notes;
	} t[] = {
		/* Toss agrees with the intake: granted, now confirmed. */
		{ ST_PENDING, "A", "A", 0, "PAYMENT_COMPLETED", "A",
		    ST_GRANTED, EV_GRANT, "A", 0 },
		/* Toss names another: never granted, whatever the status. */
		{ ST_PENDING, "A", "A", 0, "PAYMENT_COMPLETED", "B",
		    ST_MISMATCH, EV_MISMATCH, "B", POLICY_NOTE_SKU },
		{ ST_PENDING, "A", "A", 0, "PURCHASED", "B",
		    ST_MISMATCH, EV_MISMATCH, "B", POLICY_NOTE_SKU },
		{ ST_PENDING, "A", "A", 0, "ORDER_IN_PROGRESS", "B",
		    ST_MISMATCH, EV_MISMATCH, "B", POLICY_NOTE_SKU },
		{ ST_PENDING, "A", "A", 0, "REFUNDED", "B",
		    ST_MISMATCH, EV_MISMATCH, "B", POLICY_NOTE_SKU },
		{ ST_HELD, "A", "A", 0, "PURCHASED", "B",
		    ST_MISMATCH, EV_MISMATCH, "B", POLICY_NOTE_SKU },
		{ ST_FAILED, "A", "A", 0, "PURCHASED", "B",
		    ST_MISMATCH, EV_MISMATCH, "B", POLICY_NOTE_SKU },
		/* A recheck of a sku mismatch: still one. */
		{ ST_MISMATCH, "B", "A", 1, "PAYMENT_COMPLETED", "B",
		    ST_MISMATCH, EV_MISMATCH, "B", POLICY_NOTE_SKU },
		/* No sku at intake: Toss's is taken. */
		{ ST_PENDING, "", "", 0, "PAYMENT_COMPLETED", "B",
		    ST_GRANTED, EV_GRANT, "B", 0 },
		/* No sku from Toss: the intake's, unconfirmed. */
		{ ST_PENDING, "A", "A", 0, "PAYMENT_COMPLETED", "",
		    ST_GRANTED, EV_GRANT, NULL, 0 },
		{ ST_PENDING, "B", "", 1, "PURCHASED", "",
		    ST_GRANTED, EV_GRANT, NULL, 0 },
		/* Toss contradicts the sku it named before. */
		{ ST_PENDING, "B", "", 1, "PAYMENT_COMPLETED", "C",
		    ST_MISMATCH, EV_MISMATCH, "C", POLICY_NOTE_SKU },
		{ ST_FAILED, "A", "A", 0, "PURCHASED", "A",
		    ST_GRANTED, EV_GRANT, "A", 0 },
		/* Granted: the sku it was granted under stays. */
		{ ST_GRANTED, "A", "A", 1, "PAYMENT_COMPLETED", "A",
		    ST_GRANTED, EV_NONE, NULL, 0 },
		{ ST_GRANTED, "A", "A", 0, "PURCHASED", "A",
		    ST_GRANTED, EV_NONE, "A", 0 },
		{ ST_GRANTED, "", "", 0, "PURCHASED", "B",
		    ST_GRANTED, EV_NONE, NULL, 0 },
		{ ST_GRANTED, "A", "A", 1, "PAYMENT_COMPLETED", "B",
		    ST_GRANTED, EV_ANOMALY, NULL,
		    POLICY_NOTE_SKU | POLICY_NOTE_ANOMALY },
		{ ST_GRANTED, "A", "A", 0, "PURCHASED", "B",
		    ST_GRANTED, EV_ANOMALY, NULL,
		    POLICY_NOTE_SKU | POLICY_NOTE_ANOMALY },
		{ ST_GRANTED, "A", "A", 1, "ORDER_IN_PROGRESS", "B",
		    ST_GRANTED, EV_ANOMALY, NULL,
		    POLICY_NOTE_SKU | POLICY_NOTE_ANOMALY },
		{ ST_GRANTED, "A", "A", 1, "ERROR", "B",
		    ST_GRANTED, EV_ANOMALY, NULL,
		    POLICY_NOTE_SKU | POLICY_NOTE_ANOMALY },
		/* A refund keeps the sku of the grant. */
		{ ST_GRANTED, "A", "A", 1, "REFUNDED", "A",
		    ST_REFUNDED, EV_REFUND, NULL, 0 },
		{ ST_GRANTED, "A", "A", 1, "REFUNDED", "B",
		    ST_REFUNDED, EV_REFUND, NULL, POLICY_NOTE_SKU },
		{ ST_GRANTED, "A", "", 0, "REFUNDED", "",
		    ST_REFUNDED, EV_REFUND, NULL, 0 },
		{ ST_REFUNDED, "A", "A", 1, "REFUNDED", "B",
		    ST_REFUNDED, EV_ANOMALY, NULL,
		    POLICY_NOTE_SKU | POLICY_NOTE_ANOMALY },
		{ ST_REFUNDED, "A", "A", 1, "PURCHASED", "B",
		    ST_REFUNDED, EV_ANOMALY, NULL,
		    POLICY_NOTE_SKU | POLICY_NOTE_ANOMALY },
	};
	struct ledger_update	 u;
	struct toss_answer	 a;
	struct order		 o;
	double			 rv = R;
	size_t			 i;
	int			 notes;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		o = mkorder(t[i].from, H);
		util_strlcpy(o.sku, t[i].sku, sizeof o.sku);
		util_strlcpy(o.intake_sku, t[i].intake, sizeof o.intake_sku);
		o.sku_confirmed = t[i].confirmed;
		a = mkanswer(t[i].status);
		util_strlcpy(a.sku, t[i].toss, sizeof a.sku);
		notes = policy_decide(*state, &o, &a, NOW, fixed_rnd, &rv, &u);
		if (u.new_state != t[i].to || u.event != t[i].event ||
		    notes != t[i].notes)
			print_error("row %zu: got %s/%s notes %d\n", i,
			    order_state_name(u.new_state), order_event_name(u.event),
			    notes);
		assert_int_equal(u.new_state, t[i].to);
		assert_int_equal(u.event, t[i].event);
		assert_int_equal(notes, t[i].notes);
		assert_int_equal(u.sku_mismatch,
		    (t[i].notes & POLICY_NOTE_SKU) != 0);
		if (t[i].want_sku == NULL)
			assert_null(u.sku);
		else
			assert_string_equal(u.sku, t[i].want_sku);
		if (t[i].to == ST_MISMATCH)
			assert_int_equal(u.next_poll_at, 0);
		assert_int_equal(u.granted_at, t[i].event == EV_GRANT ? NOW : 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_from_pending, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_from_held, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_from_granted, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_from_refunded, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_from_terminal, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unknown_then_mapped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_errors_never_change_state,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry_clock_jump, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_not_found_late, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refund_schedule, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_granted_error_backoff,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch_clock_jump, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sku, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
