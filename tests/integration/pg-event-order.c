/* pg-event-order URL WRITERS BATCHES: commits grant events concurrently
 * through the ledger from WRITERS processes (each its own connection, each
 * BATCHES transactions of a few orders, held open a little so that they
 * overlap) while this process reads the feed the way a consumer does,
 * keeping only "the last id I saw". Exits 0 when every id the reader saw
 * was the one after the last (nothing skipped), and it saw them all; the
 * calling script then compares ids with commit timestamps. */
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ledger.h"
#include "log.h"
#include "util.h"

#define PER_BATCH	4

struct reader {
	int64_t		 last;
	int		 skipped;
};

static int64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
writer(const char *url, int w, int batches)
{
	struct ledger_update	 u;
	enum ledger_add_result	 res;
	struct ledger		*l;
	struct order		 o;
	char			 id[64], *err = NULL;
	int			 b, i;

	srand((unsigned)getpid());
	if ((l = ledger_open(url, 0, &err)) == NULL) {
		fprintf(stderr, "writer %d: %s\n", w, err);
		return 1;
	}
	for (b = 0; b < batches; b++) {
		for (i = 0; i < PER_BATCH; i++) {
			(void)snprintf(id, sizeof(id), "w%d-%d-%d", w, b, i);
			if (ledger_add(l, id, "user", NULL, NULL, now_ms(),
			    &res) == -1)
				goto fail;
		}
		if (ledger_begin(l) == -1)
			goto fail;
		for (i = 0; i < PER_BATCH; i++) {
			(void)snprintf(id, sizeof(id), "w%d-%d-%d", w, b, i);
			if (ledger_get(l, id, &o) != 1)
				goto fail;
			memset(&u, 0, sizeof(u));
			u.new_state = ST_GRANTED;
			u.status_seen = 1;
			u.toss_status = "PAYMENT_COMPLETED";
			u.reason = "";
			u.determined_at = "";
			u.count_poll = 1;
			u.granted_at = now_ms();
			u.event = EV_GRANT;
			if (ledger_apply(l, &o, &u, now_ms()) != 0)
				goto fail;
			usleep((useconds_t)(rand() % 3000));
		}
		if (ledger_commit(l) == -1)
			goto fail;
	}
	ledger_close(l);
	return 0;

fail:
	fprintf(stderr, "writer %d: %s\n", w, ledger_errmsg(l));
	ledger_rollback(l);
	ledger_close(l);
	return 1;
}

static int
reader_event(int64_t id, const char *payload, void *arg)
{
	struct reader	*r = arg;

	if (id != r->last + 1) {
		fprintf(stderr, "reader: saw event %lld after %lld\n",
		    (long long)id, (long long)r->last);
		r->skipped++;
	}
	r->last = id;
	return 0;
}

int
main(int argc, char *argv[])
{
	struct reader	 r = { 0, 0 };
	struct ledger	*l;
	pid_t		 pid;
	char		*err = NULL;
	int64_t		 want, deadline;
	int		 writers, batches, w, st, failed = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: pg-event-order URL WRITERS BATCHES\n");
		return 2;
	}
	log_init("pg-event-order", 0);
	writers = (int)strtol(argv[2], NULL, 10);
	batches = (int)strtol(argv[3], NULL, 10);
	if (writers < 1 || writers > 16 || batches < 1 || batches > 10000) {
		fprintf(stderr, "pg-event-order: WRITERS 1..16, BATCHES"
		    " 1..10000\n");
		return 2;
	}
	want = (int64_t)writers * batches * PER_BATCH;
	/* Opening first migrates the schema, before the writers race. */
	if ((l = ledger_open(argv[1], 0, &err)) == NULL) {
		fprintf(stderr, "reader: %s\n", err);
		return 1;
	}
	for (w = 0; w < writers; w++) {
		if ((pid = fork()) == -1) {
			perror("fork");
			return 1;
		}
		if (pid == 0)
			_exit(writer(argv[1], w, batches));
	}
	deadline = now_ms() + 60000;
	while (r.last < want && now_ms() < deadline) {
		if (ledger_events(l, r.last, 100, reader_event, &r) == -1) {
			fprintf(stderr, "reader: %s\n", ledger_errmsg(l));
			failed = 1;
			break;
		}
	}
	while (wait(&st) > 0) {
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	}
	if (ledger_events(l, r.last, -1, reader_event, &r) == -1)
		failed = 1;
	ledger_close(l);
	printf("events %lld of %lld, skipped %d\n", (long long)r.last,
	    (long long)want, r.skipped);
	return failed || r.skipped != 0 || r.last != want;
}
