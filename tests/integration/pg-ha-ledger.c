/* pg-ha-ledger URL MODE [PROXY_URL PROXY_PID]: the ledger's side of several
 * instances on one PostgreSQL ledger, through the ledger API with two
 * handles (two instances) and a plain libpq connection for what a new
 * leader does (the epoch bump). Prints what it checked, one line a step;
 * exits 0 when every outcome was the expected one, 1 at the first that
 * was not (saying which), 2 on usage errors.
 *   fence   the fence: writes only a leader makes fail once the epoch
 *           passed it, intake does not; the bump waits for a fenced
 *           write's open batch
 *   stale   results for an order that changed since it was claimed are
 *           not written (ledger_apply and ledger_reschedule return 1)
 *   frozen  the ledger handle goes through pg-proxy.py (PROXY_URL, its
 *           process PROXY_PID; SQL still goes to URL): the path frozen
 *           with SIGSTOP during a call, the call fails within the bound,
 *           and after SIGCONT the next calls connect again and work */
#include <sys/wait.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "ledger.h"
#include "log.h"
#include "util.h"

/* The backend's bound on an answer (PG_ANSWER_MS) and its pause between
 * reconnections (PG_RETRY_MS), as src/ledger-pg.c has them. */
#define ANSWER_MS	6000
#define RETRY_MS	5000
#define LEASE_MS	60000

#define CHECK(c) do {							\
	if (!(c))							\
		failed(__LINE__, #c);					\
} while (0)
#define CHECK_INT(a, b) do {						\
	long long _a = (long long)(a), _b = (long long)(b);		\
	if (_a != _b)							\
		failed_int(__LINE__, #a, _a, _b);			\
} while (0)

static struct ledger	*la, *lb;
static PGconn		*admin;

static void
failed(int line, const char *what)
{
	fprintf(stderr, "pg-ha-ledger:%d: not true: %s\n", line, what);
	if (la != NULL)
		fprintf(stderr, "  A: %s\n", ledger_errmsg(la));
	if (lb != NULL)
		fprintf(stderr, "  B: %s\n", ledger_errmsg(lb));
	exit(1);
}

static void
failed_int(int line, const char *what, long long got, long long want)
{
	fprintf(stderr, "pg-ha-ledger:%d: %s is %lld, not %lld\n", line, what,
	    got, want);
	if (la != NULL)
		fprintf(stderr, "  A: %s\n", ledger_errmsg(la));
	if (lb != NULL)
		fprintf(stderr, "  B: %s\n", ledger_errmsg(lb));
	exit(1);
}

static int64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct ledger *
open_ledger(const char *url)
{
	struct ledger	*l;
	char		*err = NULL;

	if ((l = ledger_open(url, 0, &err)) == NULL) {
		fprintf(stderr, "pg-ha-ledger: %s\n", err);
		exit(1);
	}
	return l;
}

/* Runs SQL on the admin connection; returns its first value as a number
 * (0 if none), or -1 with *state set to the SQLSTATE when it failed. */
static long long
sql(const char *q, char *state, size_t size)
{
	PGresult	*res;
	long long	 v = 0;
	const char	*s;
	int		 st;

	res = PQexec(admin, q);
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state == NULL) {
			fprintf(stderr, "pg-ha-ledger: %s: %s", q,
			    PQresultErrorMessage(res));
			exit(1);
		}
		util_strlcpy(state, s != NULL ? s : "", size);
		PQclear(res);
		return -1;
	}
	if (st == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
	    !PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

static long long
bump(void)
{
	return sql("UPDATE leader SET epoch = epoch + 1, holder = 'test',"
	    " since = 0 WHERE one RETURNING epoch", NULL, 0);
}

static void
add(struct ledger *l, const char *id, int64_t now)
{
	enum ledger_add_result	 res;

	CHECK_INT(ledger_add(l, id, "user", NULL, NULL, now, &res), 0);
	CHECK_INT(res, LEDGER_ADDED);
}

static void
grant(struct ledger_update *u, int64_t now)
{
	memset(u, 0, sizeof(*u));
	u->new_state = ST_GRANTED;
	u->status_seen = 1;
	u->toss_status = "PAYMENT_COMPLETED";
	u->reason = "";
	u->determined_at = "";
	u->count_poll = 1;
	u->granted_at = now;
	u->event = EV_GRANT;
}

static int64_t
events(struct ledger *l)
{
	struct ledger_stats	 s;

	CHECK_INT(ledger_stats(l, now_ms(), &s), 0);
	return s.events;
}

static int
count_transition(int64_t at, const char *from, const char *to, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int
transitions(struct ledger *l, const char *id)
{
	int	 n = 0;

	CHECK_INT(ledger_transitions(l, id, count_transition, &n), 0);
	return n;
}

/* The order as stored is exactly *o. */
static void
same_order(struct ledger *l, const struct order *o)
{
	struct order	 now;

	CHECK_INT(ledger_get(l, o->order_id, &now), 1);
	CHECK_INT(now.state, o->state);
	CHECK_INT(now.polls, o->polls);
	CHECK_INT(now.errors, o->errors);
	CHECK_INT(now.next_poll_at, o->next_poll_at);
	CHECK_INT(now.updated_at, o->updated_at);
	CHECK_INT(now.granted_at, o->granted_at);
	CHECK(strcmp(now.toss_status, o->toss_status) == 0);
}

/* The call just made failed on the fence. */
static void
is_fenced(struct ledger *l, long long now, long long had)
{
	char	 want[128];

	CHECK_INT(ledger_fenced(l), 1);
	CHECK_INT(ledger_errcode(l), 3);
	(void)snprintf(want, sizeof(want), "fenced: the leader epoch is now"
	    " %lld, this instance had %lld", now, had);
	if (strcmp(ledger_errmsg(l), want) != 0) {
		fprintf(stderr, "pg-ha-ledger: error \"%s\", not \"%s\"\n",
		    ledger_errmsg(l), want);
		exit(1);
	}
}

static void
mode_fence(void)
{
	struct ledger_update	 u;
	struct ledger_sink	 k;
	struct order		 claimed[4], o2, before;
	enum ledger_add_result	 res;
	char			 state[8];
	int64_t			 t = now_ms();
	int			 n;

	CHECK_INT(sql("SELECT epoch FROM leader", NULL, 0), 0);
	add(la, "f-1", t - 10);
	add(la, "f-2", t - 5);

	CHECK_INT(bump(), 1);
	ledger_set_fence(la, 1);
	n = ledger_claim_due(la, t, LEASE_MS, claimed, 4);
	CHECK_INT(n, 2);
	CHECK(strcmp(claimed[0].order_id, "f-1") == 0);
	grant(&u, t);
	CHECK_INT(ledger_apply(la, &claimed[0], &u, t), 0);
	CHECK_INT(ledger_reschedule(la, &claimed[1], t + 1000), 0);
	CHECK_INT(ledger_cursor_advance(la, "jsonl", 0, 1), 0);
	CHECK_INT(ledger_cursor_set(la, "webhook", 1), 0);
	CHECK_INT(ledger_sink_state(la, "jsonl", "ok", NULL, t), 0);
	CHECK_INT(ledger_fenced(la), 0);
	CHECK_INT(events(la), 1);
	printf("epoch 1: A (fence 1) claims, applies, reschedules, moves"
	    " cursors\n");

	/* A new leader wins. */
	CHECK_INT(bump(), 2);
	CHECK_INT(ledger_get(la, "f-2", &o2), 1);
	before = o2;
	CHECK_INT(ledger_claim_due(la, t + 2000, LEASE_MS, claimed, 4), -1);
	is_fenced(la, 2, 1);
	same_order(la, &before);
	CHECK_INT(ledger_apply(la, &o2, &u, t + 2000), -1);
	is_fenced(la, 2, 1);
	CHECK_INT(ledger_reschedule(la, &o2, t + 9000), -1);
	is_fenced(la, 2, 1);
	same_order(la, &before);
	CHECK_INT(events(la), 1);
	CHECK_INT(transitions(la, "f-2"), 0);
	CHECK_INT(ledger_cursor_advance(la, "jsonl", 0, 5), -1);
	is_fenced(la, 2, 1);
	CHECK_INT(ledger_cursor_set(la, "webhook", 7), -1);
	is_fenced(la, 2, 1);
	CHECK_INT(ledger_sink_state(la, "jsonl", "retrying", "EIO", t), -1);
	is_fenced(la, 2, 1);
	CHECK_INT(ledger_sink_get(la, "jsonl", &k), 1);
	CHECK_INT(k.delivered_id, 1);
	CHECK(strcmp(k.state, "ok") == 0);
	CHECK_INT(ledger_sink_get(la, "webhook", &k), 1);
	CHECK_INT(k.delivered_id, 1);
	/* Fenced inside a batch: the batch goes on without the write. */
	CHECK_INT(ledger_begin(la), 0);
	CHECK_INT(ledger_claim_due(la, t + 2000, LEASE_MS, claimed, 4), -1);
	is_fenced(la, 2, 1);
	CHECK_INT(ledger_commit(la), 0);
	same_order(la, &before);
	printf("epoch 2: A (fence 1) cannot claim, apply, reschedule or move"
	    " cursors; nothing changed\n");

	/* Intake is never fenced. */
	CHECK_INT(ledger_add(la, "f-3", "user", NULL, NULL, t + 150, &res), 0);
	CHECK_INT(res, LEDGER_ADDED);
	CHECK_INT(ledger_fenced(la), 0);
	CHECK_INT(ledger_recheck(la, "f-2", t + 100), 1);
	CHECK_INT(ledger_get(la, "f-2", &o2), 1);
	CHECK_INT(o2.next_poll_at, t + 100);
	printf("epoch 2: A still takes intake (add, recheck)\n");

	/* The new leader's writes go on. */
	ledger_set_fence(lb, 2);
	n = ledger_claim_due(lb, t + 3000, LEASE_MS, claimed, 4);
	CHECK_INT(n, 2);
	CHECK(strcmp(claimed[0].order_id, "f-2") == 0);
	CHECK(strcmp(claimed[1].order_id, "f-3") == 0);
	CHECK_INT(ledger_apply(lb, &claimed[0], &u, t + 3000), 0);
	CHECK_INT(ledger_cursor_advance(lb, "jsonl", 0, 2), 0);
	CHECK_INT(events(lb), 2);
	printf("epoch 2: B (fence 2) claims, applies, moves the cursor\n");

	/* A fenced write in an open batch holds the leader row: the next
	 * bump waits for it (here: until its lock_timeout). */
	CHECK_INT(ledger_begin(lb), 0);
	CHECK_INT(ledger_reschedule(lb, &claimed[1], t + 4000), 0);
	sql("SET lock_timeout = '300ms'", NULL, 0);
	CHECK_INT(sql("UPDATE leader SET epoch = epoch + 1 WHERE one"
	    " RETURNING epoch", state, sizeof(state)), -1);
	if (strcmp(state, "55P03") != 0) {
		fprintf(stderr, "pg-ha-ledger: the bump failed with %s, not"
		    " 55P03 (lock_not_available)\n", state);
		exit(1);
	}
	CHECK_INT(ledger_commit(lb), 0);
	CHECK_INT(ledger_get(lb, "f-3", &o2), 1);
	CHECK_INT(o2.next_poll_at, t + 4000);
	CHECK_INT(bump(), 3);
	sql("RESET lock_timeout", NULL, 0);
	printf("epoch 3: the bump waited for B's open batch (timed out),"
	    " then passed once it committed\n");
	CHECK_INT(ledger_get(lb, "f-3", &before), 1);
	CHECK_INT(ledger_reschedule(lb, &before, t + 5000), -1);
	is_fenced(lb, 3, 2);
	same_order(lb, &before);
	ledger_set_fence(lb, 0);
	CHECK_INT(ledger_reschedule(lb, &before, t + 5000), 0);
	printf("epoch 3: B (fence 2) is fenced too; with no fence it"
	    " writes\n");
}

static void
mode_stale(void)
{
	struct ledger_update	 u;
	struct order		 ca, cb, o, gone;
	int64_t			 t = now_ms(), lease = 100;

	add(la, "s-1", t);

	/* A claims; its lease passes; B claims the same order. */
	CHECK_INT(ledger_claim_due(la, t, lease, &ca, 1), 1);
	CHECK_INT(ca.next_poll_at, t + lease);
	CHECK_INT(ledger_claim_due(lb, t + 200, LEASE_MS, &cb, 1), 1);
	CHECK(strcmp(cb.order_id, "s-1") == 0);
	CHECK_INT(cb.next_poll_at, t + 200 + LEASE_MS);
	grant(&u, t + 300);
	CHECK_INT(ledger_apply(la, &ca, &u, t + 300), 1);
	CHECK_INT(ledger_errcode(la), 0);
	same_order(la, &cb);
	CHECK_INT(events(la), 0);
	CHECK_INT(transitions(la, "s-1"), 0);
	CHECK_INT(ledger_reschedule(la, &ca, t + 5000), 1);
	same_order(la, &cb);
	/* Inside a batch too, and the batch goes on. */
	CHECK_INT(ledger_begin(la), 0);
	CHECK_INT(ledger_apply(la, &ca, &u, t + 300), 1);
	CHECK_INT(ledger_commit(la), 0);
	same_order(la, &cb);
	CHECK_INT(events(la), 0);
	printf("A's answer after B claimed again: not written (1)\n");

	CHECK_INT(ledger_apply(lb, &cb, &u, t + 400), 0);
	CHECK_INT(ledger_get(lb, "s-1", &o), 1);
	CHECK_INT(o.state, ST_GRANTED);
	CHECK_INT(o.polls, 1);
	CHECK_INT(events(lb), 1);
	CHECK_INT(transitions(lb, "s-1"), 1);
	/* B's answer is as claimed no more either (the apply moved it). */
	CHECK_INT(ledger_apply(lb, &cb, &u, t + 500), 1);
	CHECK_INT(events(lb), 1);
	printf("B's answer: written once\n");

	/* A recheck while A's request is out. */
	add(la, "s-2", t);
	CHECK_INT(ledger_claim_due(la, t + 1000, LEASE_MS, &ca, 1), 1);
	CHECK(strcmp(ca.order_id, "s-2") == 0);
	CHECK_INT(ledger_recheck(lb, "s-2", t + 1100), 1);
	CHECK_INT(ledger_get(la, "s-2", &o), 1);
	CHECK_INT(ledger_apply(la, &ca, &u, t + 1200), 1);
	CHECK_INT(ledger_reschedule(la, &ca, t + 1300), 1);
	same_order(la, &o);
	CHECK_INT(events(la), 1);
	CHECK_INT(ledger_claim_due(la, t + 1400, LEASE_MS, &ca, 1), 1);
	CHECK_INT(ledger_apply(la, &ca, &u, t + 1500), 0);
	CHECK_INT(events(la), 2);
	printf("a recheck during the request: its answer not written; the"
	    " next claim's is\n");

	/* No such order is still an error, not stale. */
	memset(&gone, 0, sizeof(gone));
	util_strlcpy(gone.order_id, "s-absent", sizeof(gone.order_id));
	CHECK_INT(ledger_apply(la, &gone, &u, t), -1);
	CHECK(ledger_errcode(la) != 0);
	printf("an unknown order: an error (-1)\n");
}

/* The state letter of a task in /proc ('T': stopped), '?' when it cannot
 * be read. */
static char
task_state(const char *path)
{
	char	 buf[512], *p;
	FILE	*f;
	size_t	 n;

	if ((f = fopen(path, "r")) == NULL)
		return '?';
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return '?';
	return p[2];
}

/* 'T' when every thread of process pid is stopped, else the state of one
 * that is not. A stop signal is delivered to one thread, which then stops
 * the others: until then they still run (and a proxy forwards). */
static char
proc_state(pid_t pid)
{
	struct dirent	*d;
	DIR		*dir;
	char		 path[512], st = 'T';

	(void)snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((dir = opendir(path)) == NULL)
		return '?';
	while (st == 'T' && (d = readdir(dir)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		(void)snprintf(path, sizeof(path), "/proc/%d/task/%s/stat",
		    (int)pid, d->d_name);
		st = task_state(path);
	}
	closedir(dir);
	return st;
}

/* Stops the proxy and waits until all of it is stopped. 0, or -1 when it
 * did not stop within 2 s. */
static int
freeze(pid_t proxy)
{
	int	 i;

	if (kill(proxy, SIGSTOP) == -1)
		return -1;
	for (i = 0; i < 200; i++) {
		if (proc_state(proxy) == 'T')
			return 0;
		usleep(10 * 1000);
	}
	fprintf(stderr, "pg-ha-ledger: the proxy (pid %d) is in state %c,"
	    " not stopped\n", (int)proxy, proc_state(proxy));
	return -1;
}

/* Stops the proxy after ms, from a child: the call the parent is in by
 * then is the one that finds the path frozen. */
static pid_t
stop_later(pid_t proxy, int ms)
{
	pid_t	 pid;

	if ((pid = fork()) == -1) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		usleep((useconds_t)ms * 1000);
		_exit(freeze(proxy) == 0 ? 0 : 1);
	}
	return pid;
}

static void
reap(pid_t pid)
{
	int	 st;

	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
	    WEXITSTATUS(st) == 0);
}

/* Waits out the pause between reconnections, then expects a call to
 * connect again and work. */
static void
works_again(struct ledger *l, const char *id)
{
	struct order	 o;
	int64_t		 t0 = now_ms();
	int		 r;

	usleep(RETRY_MS * 1000);
	while ((r = ledger_get(l, id, &o)) != 1 && now_ms() - t0 < 30000)
		usleep(200 * 1000);
	CHECK_INT(r, 1);
}

static void
mode_frozen(pid_t proxy)
{
	struct order	 o, before, claimed[2];
	char		 want[128];
	int64_t		 t0, took;
	pid_t		 pid;

	add(la, "z-1", now_ms() - 1000);
	CHECK_INT(ledger_get(la, "z-1", &before), 1);
	(void)snprintf(want, sizeof(want), "no answer from the database in"
	    " %d ms; connection dropped", ANSWER_MS);

	/* A call waiting on a row lock when the path freezes: the server's
	 * lock timeout answers, but the answer never arrives. */
	sql("BEGIN; SELECT 1 FROM orders WHERE order_id = 'z-1' FOR UPDATE",
	    NULL, 0);
	pid = stop_later(proxy, 500);
	t0 = now_ms();
	CHECK_INT(ledger_recheck(la, "z-1", now_ms()), -1);
	took = now_ms() - t0;
	reap(pid);
	sql("ROLLBACK", NULL, 0);
	printf("a call while the path froze: failed after %lld ms\n",
	    (long long)took);
	CHECK(took >= ANSWER_MS - 100 && took <= ANSWER_MS + 2000);
	CHECK_INT(ledger_errcode(la), 2);
	if (strcmp(ledger_errmsg(la), want) != 0) {
		fprintf(stderr, "pg-ha-ledger: error \"%s\", not \"%s\"\n",
		    ledger_errmsg(la), want);
		exit(1);
	}
	/* Meanwhile the calls fail at once. */
	t0 = now_ms();
	CHECK_INT(ledger_get(la, "z-1", &o), -1);
	CHECK(now_ms() - t0 < 1000);
	CHECK(strstr(ledger_errmsg(la), "no connection to the database"
	    " (trying again shortly)") != NULL);
	CHECK(proc_state(proxy) == 'T');
	CHECK_INT(kill(proxy, SIGCONT), 0);
	works_again(la, "z-1");
	same_order(la, &before);
	printf("after SIGCONT: connected again, the order unchanged\n");

	/* A batch whose claim is sent into the frozen path: dropped, and
	 * the server rolls the batch back. */
	CHECK_INT(ledger_begin(la), 0);
	CHECK_INT(freeze(proxy), 0);
	t0 = now_ms();
	CHECK_INT(ledger_claim_due(la, now_ms(), LEASE_MS, claimed, 2), -1);
	took = now_ms() - t0;
	CHECK(took >= ANSWER_MS - 100 && took <= ANSWER_MS + 2000);
	CHECK_INT(ledger_commit(la), -1);
	ledger_rollback(la);
	CHECK_INT(kill(proxy, SIGCONT), 0);
	works_again(la, "z-1");
	usleep(500 * 1000);	/* the old session's end, once forwarded */
	same_order(la, &before);
	CHECK_INT(ledger_claim_due(la, now_ms(), LEASE_MS, claimed, 2), 1);
	printf("a batch into the frozen path: dropped after %lld ms, rolled"
	    " back; the next claim works\n", (long long)took);
}

int
main(int argc, char *argv[])
{
	pid_t	 proxy = 0;

	if (argc != 3 && argc != 5) {
		fprintf(stderr, "usage: pg-ha-ledger URL fence|stale|"
		    "frozen [PROXY_URL PROXY_PID]\n");
		return 2;
	}
	log_init("pg-ha-ledger", 0);
	if (argc == 5)
		proxy = (pid_t)strtol(argv[4], NULL, 10);
	la = open_ledger(argc == 5 ? argv[3] : argv[1]);
	lb = open_ledger(argv[1]);
	admin = PQconnectdb(argv[1]);
	if (PQstatus(admin) != CONNECTION_OK) {
		fprintf(stderr, "pg-ha-ledger: %s", PQerrorMessage(admin));
		return 1;
	}
	if (strcmp(argv[2], "fence") == 0)
		mode_fence();
	else if (strcmp(argv[2], "stale") == 0)
		mode_stale();
	else if (strcmp(argv[2], "frozen") == 0 && proxy > 0)
		mode_frozen(proxy);
	else {
		fprintf(stderr, "pg-ha-ledger: no mode %s\n", argv[2]);
		return 2;
	}
	PQfinish(admin);
	ledger_close(lb);
	ledger_close(la);
	la = lb = NULL;
	printf("ok\n");
	return 0;
}
