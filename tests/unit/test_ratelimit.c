/* Unit tests for ratelimit.c: the window property (no window_ms at the
 * sender ever holds more than cap first sends, and no second at a server
 * that reads each request within the margin, or within margin + late_ms
 * after a new connection, holds more than cap) on adversarial sequences of
 * slow connects, requests that never get sent, bursts and rate changes;
 * budget use when sends are immediate; exact waits; rates below 1/s. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ratelimit.h"
#include "util.h"

#define W	(1000 + RATELIMIT_MARGIN_MS)

/* A request of the simulation: started, to be sent (or to end unsent) at
 * a planned time. */
struct simreq {
	int64_t		 at;		/* when it is sent or ends */
	int		 unsent;	/* ends without being sent */
	int		 resend;	/* sent again 1 ms later */
	int		 done;
};

struct sim {
	struct ratelimit rl;
	struct simreq	*reqs;
	size_t		 nreqs;
	size_t		 cap;
	int64_t		*sends;		/* first sends */
	size_t		 nsends;
	size_t		 sendcap;
	int64_t		*arrivals;	/* when the server read them */
	size_t		 resends;
	int		 pct_fresh;	/* sends after a new handshake */
	uint64_t	 rng;
};

static uint64_t
sim_rand(struct sim *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

/* The most first sends in any half-open window of width ms. */
static size_t
max_in_window(const int64_t *t, size_t n, int64_t width)
{
	size_t	 i, j = 0, best = 0;

	for (i = 0; i < n; i++) {
		while (t[i] - t[j] >= width)
			j++;
		if (i - j + 1 > best)
			best = i - j + 1;
	}
	return best;
}

/* A first send at t: tells the limiter, and notes when the server reads
 * it: within the margin, or within margin + late after a handshake of late
 * ms (pct_fresh of the sends), whichever the draw says. */
static void
sim_first_send(struct sim *s, int64_t t)
{
	int64_t	 late = 0;

	if ((int)(sim_rand(s) % 100) < s->pct_fresh)
		late = (int64_t)(sim_rand(s) % 400);
	ratelimit_sent(&s->rl, t, 1, late);
	if (s->nsends == s->sendcap) {
		s->sendcap = s->sendcap == 0 ? 1024 : s->sendcap * 2;
		s->sends = xrealloc(s->sends, s->sendcap * sizeof(*s->sends));
		s->arrivals = xrealloc(s->arrivals,
		    s->sendcap * sizeof(*s->arrivals));
	}
	s->sends[s->nsends] = t;
	s->arrivals[s->nsends] = t +
	    (int64_t)(sim_rand(s) % (uint64_t)(RATELIMIT_MARGIN_MS + late + 1));
	s->nsends++;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The most requests the server read in any one second. */
static size_t
max_at_server(struct sim *s)
{
	qsort(s->arrivals, s->nsends, sizeof(*s->arrivals), cmp_int64);
	return max_in_window(s->arrivals, s->nsends, 1000);
}

static void
sim_add(struct sim *s, int64_t at, int unsent, int resend)
{
	if (s->nreqs == s->cap) {
		s->cap = s->cap == 0 ? 1024 : s->cap * 2;
		s->reqs = xrealloc(s->reqs, s->cap * sizeof(*s->reqs));
	}
	s->reqs[s->nreqs].at = at;
	s->reqs[s->nreqs].unsent = unsent;
	s->reqs[s->nreqs].resend = resend;
	s->reqs[s->nreqs].done = 0;
	s->nreqs++;
}

enum delay_kind {
	DELAY_RANDOM,		/* anything from 0 to 2.5 s */
	DELAY_COLD_WARM,	/* first 3 s: slow connects, then instant */
	DELAY_ZERO,		/* always sent at once */
	DELAY_BIMODAL		/* 0 or 990-1009 ms: the old one's worst */
};

static int64_t
sim_delay(struct sim *s, enum delay_kind kind, int64_t now)
{
	switch (kind) {
	case DELAY_RANDOM:
		return (int64_t)(sim_rand(s) % 2500);
	case DELAY_COLD_WARM:
		return now < 3000 ? 900 + (int64_t)(sim_rand(s) % 200) : 0;
	case DELAY_ZERO:
		return 0;
	case DELAY_BIMODAL:
		return sim_rand(s) % 2 ? 0 : 990 + (int64_t)(sim_rand(s) % 20);
	}
	return 0;
}

/*
 * Runs ms milliseconds, one step per ms: planned sends and unsent ends
 * first, then as many starts as the limiter allows (the caller asks for a
 * random number of them, at random moments). pct_unsent of the requests end
 * without being sent; pct_resend are sent twice. Returns the number of
 * first sends.
 */
static size_t
sim_run(struct sim *s, double rate, int64_t ms, enum delay_kind kind,
    int pct_unsent, int pct_resend, double rate2, int64_t switch_at)
{
	int64_t	 t, wait;
	size_t	 i;
	int	 n, k, want;

	ratelimit_init(&s->rl, rate);
	for (t = 0; t < ms; t++) {
		if (switch_at > 0 && t == switch_at)
			ratelimit_set_rate(&s->rl, rate2);
		for (i = 0; i < s->nreqs; i++) {
			struct simreq	*r = &s->reqs[i];

			if (r->done || r->at > t)
				continue;
			if (r->unsent) {
				ratelimit_unsent_end(&s->rl);
				r->done = 1;
			} else if (r->resend == 1) {
				sim_first_send(s, t);
				r->resend = 2;
				r->at = t + 1;
			} else if (r->resend == 2) {
				ratelimit_sent(&s->rl, t, 0, 0);
				s->resends++;
				r->done = 1;
			} else {
				sim_first_send(s, t);
				r->done = 1;
			}
		}
		/* Compact finished requests now and then. */
		if (t % 256 == 0) {
			for (i = 0, k = 0; i < s->nreqs; i++) {
				if (!s->reqs[i].done)
					s->reqs[k++] = s->reqs[i];
			}
			s->nreqs = (size_t)k;
		}
		if (kind != DELAY_ZERO && sim_rand(s) % 3 == 0)
			continue;	/* the caller is busy this ms */
		want = 1 + (int)(sim_rand(s) % 80);
		n = ratelimit_avail(&s->rl, t, want, &wait);
		assert_true(n >= 0 && n <= want);
		if (n == 0)
			assert_true(wait == -1 || wait >= 1);
		for (k = 0; k < n; k++) {
			ratelimit_start(&s->rl, t);
			sim_add(s, t + sim_delay(s, kind, t),
			    (int)(sim_rand(s) % 100) < pct_unsent,
			    (int)(sim_rand(s) % 100) < pct_resend);
		}
	}
	return s->nsends;
}

static void
sim_free(struct sim *s)
{
	ratelimit_free(&s->rl);
	free(s->reqs);
	free(s->sends);
	free(s->arrivals);
}

/* The window property for one rate and delay pattern over several seeds;
 * pct_fresh of the sends follow a new handshake. */
static void
check_window(double rate, int cap, enum delay_kind kind, int pct_unsent,
    int pct_fresh)
{
	struct sim	 s;
	uint64_t	 seed;
	size_t		 n, worst;

	for (seed = 1; seed <= 6; seed++) {
		memset(&s, 0, sizeof(s));
		s.rng = seed * 0x9e3779b97f4a7c15ULL;
		s.pct_fresh = pct_fresh;
		n = sim_run(&s, rate, 20000, kind, pct_unsent, 0, 0, 0);
		assert_true(n > 0);
		worst = max_in_window(s.sends, s.nsends, W);
		if (worst > (size_t)cap)
			fail_msg("rate %g, pattern %d, seed %llu: %zu sends in"
			    " one %d ms window, cap %d", rate, (int)kind,
			    (unsigned long long)seed, worst, W, cap);
		/* The server's second is shorter than the window. */
		assert_true(max_in_window(s.sends, s.nsends, 1000) <=
		    (size_t)cap);
		worst = max_at_server(&s);
		if (worst > (size_t)cap)
			fail_msg("rate %g, pattern %d, seed %llu: the server"
			    " read %zu in one second, cap %d", rate, (int)kind,
			    (unsigned long long)seed, worst, cap);
		sim_free(&s);
	}
}

static void
test_window_random_delays(void **state)
{
	check_window(50, 50, DELAY_RANDOM, 0, 0);
	check_window(50, 50, DELAY_RANDOM, 30, 0);
	check_window(7.9, 7, DELAY_RANDOM, 10, 0);
	check_window(1, 1, DELAY_RANDOM, 10, 0);
}

static void
test_window_cold_then_warm(void **state)
{
	check_window(50, 50, DELAY_COLD_WARM, 0, 0);
	check_window(50, 50, DELAY_COLD_WARM, 20, 0);
	check_window(3, 3, DELAY_COLD_WARM, 0, 0);
}

static void
test_window_bimodal(void **state)
{
	check_window(50, 50, DELAY_BIMODAL, 0, 0);
	check_window(50, 50, DELAY_BIMODAL, 50, 0);
	check_window(2, 2, DELAY_BIMODAL, 5, 0);
}

/* Sends right after a handshake, read late by the server. */
static void
test_window_late_reads(void **state)
{
	check_window(50, 50, DELAY_COLD_WARM, 0, 100);
	check_window(50, 50, DELAY_RANDOM, 10, 30);
	check_window(50, 50, DELAY_BIMODAL, 0, 50);
	check_window(5, 5, DELAY_RANDOM, 10, 50);
}

/* A late send holds its place longer, and the ring stays in order. */
static void
test_late_send(void **state)
{
	struct ratelimit	 rl;
	int64_t			 wait;

	ratelimit_init(&rl, 2);
	ratelimit_start(&rl, 0);
	ratelimit_start(&rl, 0);
	ratelimit_sent(&rl, 10, 1, 300);	/* counted as at 310 */
	ratelimit_sent(&rl, 20, 1, 0);
	assert_int_equal(ratelimit_avail(&rl, 30, 1, &wait), 0);
	assert_int_equal(wait, 20 + W - 30);
	assert_int_equal(ratelimit_avail(&rl, 20 + W, 2, &wait), 1);
	ratelimit_start(&rl, 20 + W);
	assert_int_equal(ratelimit_avail(&rl, 20 + W, 2, &wait), 0);
	assert_int_equal(wait, 310 + W - (20 + W));
	assert_int_equal(ratelimit_avail(&rl, 310 + W - 1, 2, &wait), 0);
	assert_int_equal(ratelimit_avail(&rl, 310 + W, 2, &wait), 1);
	/* Capped, and never early. */
	ratelimit_sent(&rl, 310 + W, 1, INT64_MAX);
	ratelimit_sent(&rl, 310 + W, 0, -5);
	assert_int_equal(ratelimit_used(&rl, 310 + 2 * W - 1), 2);
	assert_int_equal(ratelimit_used(&rl, 310 + 2 * W), 1);
	assert_int_equal(ratelimit_used(&rl, 310 + W + RATELIMIT_LATE_MAX_MS +
	    W - 1), 1);
	assert_int_equal(ratelimit_used(&rl, 310 + W + RATELIMIT_LATE_MAX_MS +
	    W), 0);
	ratelimit_free(&rl);
}

/* The failure the limiter exists for: a batch whose connects take 900 ms
 * must not be followed by a second batch that arrives with it. */
static void
test_slow_connects_hold_the_next_batch(void **state)
{
	struct ratelimit	 rl;
	int64_t			 wait;
	int			 i;

	ratelimit_init(&rl, 50);
	assert_int_equal(ratelimit_avail(&rl, 0, 200, &wait), 50);
	for (i = 0; i < 50; i++)
		ratelimit_start(&rl, 0);
	/* Nothing sent yet: no time can be named. */
	assert_int_equal(ratelimit_avail(&rl, 800, 50, &wait), 0);
	assert_int_equal(wait, -1);
	for (i = 0; i < 50; i++)
		ratelimit_sent(&rl, 900, 1, 0);
	assert_int_equal(ratelimit_avail(&rl, 1010, 50, &wait), 0);
	assert_int_equal(wait, 900 + W - 1010);
	assert_int_equal(ratelimit_avail(&rl, 900 + W - 1, 50, &wait), 0);
	assert_int_equal(wait, 1);
	assert_int_equal(ratelimit_avail(&rl, 900 + W, 80, &wait), 50);
	ratelimit_free(&rl);
}

static void
test_exact_waits(void **state)
{
	struct ratelimit	 rl;
	int64_t			 wait;
	int			 i;

	ratelimit_init(&rl, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(ratelimit_avail(&rl, 100 * i, 1, &wait), 1);
		ratelimit_start(&rl, 100 * i);
		ratelimit_sent(&rl, 100 * i + 5, 1, 0);
	}
	assert_int_equal(ratelimit_used(&rl, 300), 3);
	assert_int_equal(ratelimit_avail(&rl, 300, 3, &wait), 0);
	assert_int_equal(wait, 5 + W - 300);
	assert_int_equal(ratelimit_avail(&rl, 5 + W, 3, &wait), 1);
	assert_int_equal(ratelimit_avail(&rl, 205 + W, 3, &wait), 3);
	ratelimit_free(&rl);

	/* A started request that is not sent still holds its place... */
	ratelimit_init(&rl, 3);
	ratelimit_start(&rl, 0);
	ratelimit_start(&rl, 0);
	ratelimit_sent(&rl, 10, 1, 0);
	assert_int_equal(ratelimit_avail(&rl, 20, 5, &wait), 1);
	ratelimit_start(&rl, 20);
	assert_int_equal(ratelimit_avail(&rl, 20, 5, &wait), 0);
	/* k = 1: the oldest send frees it. */
	assert_int_equal(wait, 10 + W - 20);
	/* ...until it ends unsent. */
	ratelimit_unsent_end(&rl);
	assert_int_equal(ratelimit_avail(&rl, 21, 5, &wait), 1);
	assert_int_equal(ratelimit_used(&rl, 21), 2);
	ratelimit_free(&rl);
}

/* Every send counts: a re-send on a dead reused connection takes a place. */
static void
test_resend_counts(void **state)
{
	struct ratelimit	 rl;
	int64_t			 wait;

	ratelimit_init(&rl, 2);
	ratelimit_start(&rl, 0);
	ratelimit_start(&rl, 0);
	ratelimit_sent(&rl, 0, 1, 0);
	ratelimit_sent(&rl, 1, 1, 0);
	ratelimit_sent(&rl, 5, 0, 0);
	assert_int_equal(ratelimit_used(&rl, 5), 3);
	assert_int_equal(ratelimit_avail(&rl, 6, 1, &wait), 0);
	/* Two of the three sends must leave the window. */
	assert_int_equal(wait, 1 + W - 6);
	assert_int_equal(ratelimit_avail(&rl, W, 1, &wait), 0);
	assert_int_equal(ratelimit_avail(&rl, 1 + W, 2, &wait), 1);
	assert_int_equal(ratelimit_avail(&rl, 5 + W, 2, &wait), 2);
	ratelimit_free(&rl);
}

/* With the sends and unsent starts known, no window is exceeded by first
 * sends even when re-sends happen; re-sends are the only excess. */
static void
test_window_with_resends(void **state)
{
	struct sim	 s;

	memset(&s, 0, sizeof(s));
	s.rng = 42;
	sim_run(&s, 20, 20000, DELAY_RANDOM, 10, 10, 0, 0);
	assert_true(s.resends > 0);
	assert_true(max_in_window(s.sends, s.nsends, W) <= 20);
	sim_free(&s);
}

/* Sends at once, a caller that starts whenever allowed: >= 95% of the
 * budget (the margin costs 2.5%). */
static void
test_budget_use(void **state)
{
	struct ratelimit	 rl;
	int64_t			 t = 0, wait, end = 60000;
	size_t			 sent = 0;
	int			 n, i;

	ratelimit_init(&rl, 50);
	while (t < end) {
		n = ratelimit_avail(&rl, t, 256, &wait);
		if (n == 0) {
			assert_true(wait >= 1);
			t += wait;
			/* The wait it named is exact. */
			assert_int_equal(ratelimit_avail(&rl, t, 1, &wait), 1);
			continue;
		}
		for (i = 0; i < n; i++)
			ratelimit_start(&rl, t);
		t++;		/* they take 1 ms to be sent */
		for (i = 0; i < n; i++)
			ratelimit_sent(&rl, t, 1, 0);
		sent += (size_t)n;
	}
	if (sent < (size_t)(0.95 * 50 * end / 1000))
		fail_msg("%zu requests in %lld ms: under 95%% of the budget",
		    sent, (long long)end);
	assert_true(sent <= (size_t)(50 * (end / 1000 + 1)));
	ratelimit_free(&rl);
}

/* The same through the random simulation, sends instant. */
static void
test_budget_use_sim(void **state)
{
	struct sim	 s;

	memset(&s, 0, sizeof(s));
	s.rng = 7;
	sim_run(&s, 50, 60000, DELAY_ZERO, 0, 0, 0, 0);
	if (s.nsends < (size_t)(0.95 * 50 * 60))
		fail_msg("%zu requests in 60 s: under 95%% of the budget",
		    s.nsends);
	assert_true(max_in_window(s.sends, s.nsends, W) <= 50);
	sim_free(&s);
}

/* Below 1/s: one request per 1000/r ms (plus the margin). */
static void
test_slow_rate(void **state)
{
	struct ratelimit	 rl;
	struct sim		 s;
	int64_t			 wait;

	ratelimit_init(&rl, 0.5);
	assert_int_equal(rl.cap, 1);
	assert_int_equal(rl.window_ms, 2000 + RATELIMIT_MARGIN_MS);
	assert_int_equal(ratelimit_avail(&rl, 0, 10, &wait), 1);
	ratelimit_start(&rl, 0);
	ratelimit_sent(&rl, 3, 1, 0);
	assert_int_equal(ratelimit_avail(&rl, 1000, 10, &wait), 0);
	assert_int_equal(wait, 3 + 2000 + RATELIMIT_MARGIN_MS - 1000);
	assert_int_equal(ratelimit_avail(&rl, 3 + 2000 + RATELIMIT_MARGIN_MS,
	    10, &wait), 1);
	ratelimit_free(&rl);

	memset(&s, 0, sizeof(s));
	s.rng = 99;
	sim_run(&s, 1.0 / 60, 600000, DELAY_RANDOM, 10, 0, 0, 0);
	assert_true(s.nsends >= 8);
	assert_true(max_in_window(s.sends, s.nsends, 60000) <= 1);
	sim_free(&s);
}

static void
test_no_limit(void **state)
{
	struct ratelimit	 rl;
	int64_t			 wait;
	int			 i;

	ratelimit_init(&rl, 0);
	for (i = 0; i < 1000; i++) {
		ratelimit_start(&rl, 0);
		ratelimit_sent(&rl, 0, 1, 0);
	}
	assert_int_equal(ratelimit_avail(&rl, 0, 256, &wait), 256);
	assert_int_equal(wait, 0);
	ratelimit_set_rate(&rl, RATELIMIT_MAX_PER_SEC);
	assert_int_equal(ratelimit_avail(&rl, 1, 256, &wait), 256);
	/* Turning the limit on counts what was sent before. */
	ratelimit_set_rate(&rl, 50);
	assert_int_equal(ratelimit_avail(&rl, 2, 256, &wait), 0);
	assert_int_equal(wait, W - 2);
	assert_int_equal(ratelimit_avail(&rl, W, 256, &wait), 50);
	ratelimit_free(&rl);
}

/* A lower rate after a reload: the history stays, the window holds. */
static void
test_rate_change(void **state)
{
	struct ratelimit	 rl;
	struct sim		 s;
	int64_t			 wait;
	size_t			 j = 0;
	int			 i;

	ratelimit_init(&rl, 50);
	for (i = 0; i < 50; i++) {
		ratelimit_start(&rl, i);
		ratelimit_sent(&rl, i, 1, 0);
	}
	ratelimit_set_rate(&rl, 10);
	assert_int_equal(ratelimit_avail(&rl, 50, 5, &wait), 0);
	/* 41 of the 50 sends must leave: the 41st was sent at 40. */
	assert_int_equal(wait, 40 + W - 50);
	assert_int_equal(ratelimit_avail(&rl, 40 + W, 5, &wait), 1);
	ratelimit_free(&rl);

	memset(&s, 0, sizeof(s));
	s.rng = 5;
	sim_run(&s, 50, 20000, DELAY_RANDOM, 10, 0, 5, 8000);
	/* Once the starts from before the switch are sent (2.5 s at most)
	 * and out of the window, at most 5 per window. */
	while (j < s.nsends && s.sends[j] < 8000 + 2500 + W)
		j++;
	assert_true(j < s.nsends);
	assert_true(max_in_window(s.sends + j, s.nsends - j, W) <= 5);
	assert_true(max_in_window(s.sends, s.nsends, W) <= 50);
	sim_free(&s);
}

/* Times passed out of order are taken as the latest seen. */
static void
test_clock_never_goes_back(void **state)
{
	struct ratelimit	 rl;
	int64_t			 wait;

	ratelimit_init(&rl, 1);
	ratelimit_start(&rl, 5000);
	ratelimit_sent(&rl, 4000, 1, 0);
	assert_int_equal(ratelimit_avail(&rl, 5000 + W - 1, 1, &wait), 0);
	assert_int_equal(wait, 1);
	assert_int_equal(ratelimit_avail(&rl, 5000 + W, 1, &wait), 1);
	ratelimit_free(&rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_random_delays),
		cmocka_unit_test(test_window_cold_then_warm),
		cmocka_unit_test(test_window_bimodal),
		cmocka_unit_test(test_window_late_reads),
		cmocka_unit_test(test_late_send),
		cmocka_unit_test(test_slow_connects_hold_the_next_batch),
		cmocka_unit_test(test_exact_waits),
		cmocka_unit_test(test_resend_counts),
		cmocka_unit_test(test_window_with_resends),
		cmocka_unit_test(test_budget_use),
		cmocka_unit_test(test_budget_use_sim),
		cmocka_unit_test(test_slow_rate),
		cmocka_unit_test(test_no_limit),
		cmocka_unit_test(test_rate_change),
		cmocka_unit_test(test_clock_never_goes_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
