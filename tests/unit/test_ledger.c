/* Unit tests of the ledger (src/ledger.c and its SQLite backend,
 * src/ledger-sqlite.c) and the JSON it stores and shows (src/json-out.c),
 * each against a fresh SQLite file in a temp directory. */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "json-out.h"
#include "ledger.h"
#include "log.h"
#include "schema.h"
#include "util.h"

#define T0	1795829400123LL		/* 2026-11-28T01:30:00.123Z */

struct fixture {
	char		 dir[64];
	char		 path[128];
	struct ledger	*l;
};

static const char *const side_files[] = { "", "-wal", "-shm", "-journal" };

static void
fixture_path(struct fixture *f, const char *suffix, char *buf, size_t size)
{
	int	 r;

	r = snprintf(buf, size, "%s%s", f->path, suffix);
	assert_true(r > 0 && (size_t)r < size);
}

static int
file_exists(const char *path)
{
	struct stat	 sb;

	return stat(path, &sb) == 0;
}

static int
setup_dir(void **state)
{
	struct fixture	*f;
	int		 r;

	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	util_strlcpy(f->dir, "/tmp/test_ledger.XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	r = snprintf(f->path, sizeof(f->path), "%s/ledger.db", f->dir);
	assert_true(r > 0 && (size_t)r < sizeof(f->path));
	*state = f;
	return 0;
}

static int
setup_open(void **state)
{
	struct fixture	*f;
	char		*err = NULL;

	setup_dir(state);
	f = *state;
	f->l = ledger_open(f->path, 0, &err);
	if (f->l == NULL)
		fail_msg("ledger_open: %s", err);
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	char		 p[160];
	size_t		 i;

	ledger_close(f->l);
	for (i = 0; i < sizeof(side_files) / sizeof(side_files[0]); i++) {
		fixture_path(f, side_files[i], p, sizeof(p));
		unlink(p);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* Reads a whole file; caller frees. */
static char *
slurp(const char *path, size_t *len)
{
	struct stat	 sb;
	char		*buf;
	ssize_t		 n;
	int		 fd;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	assert_non_null(buf);
	n = read(fd, buf, (size_t)sb.st_size);
	assert_int_equal(n, sb.st_size);
	close(fd);
	*len = (size_t)n;
	return buf;
}

static void
spew(const char *path, const char *data, size_t len)
{
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

/* Runs SQL on a separate connection (committed data only). */
static void
sql_exec(const char *path, const char *sql)
{
	sqlite3	*db;
	char	*msg = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* One integer from a separate connection. */
static int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	int64_t		 v;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	return v;
}

/* One text value from a separate connection, copied into buf ("" for NULL). */
static const char *
sql_text(const char *path, const char *sql, char *buf, size_t size)
{
	sqlite3		*db;
	sqlite3_stmt	*st;
	const char	*s;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	    SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	s = (const char *)sqlite3_column_text(st, 0);
	util_strlcpy(buf, s != NULL ? s : "", size);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	return buf;
}

static void
add(struct ledger *l, const char *id, const char *uk, const char *sku,
    const char *ref, int64_t now, enum ledger_add_result want)
{
	enum ledger_add_result	 res;

	assert_int_equal(ledger_add(l, id, uk, sku, ref, now, &res), 0);
	assert_int_equal(res, want);
}

/* A poll result with an answer (or without one when status is NULL). */
static void
update_init(struct ledger_update *u, enum order_state st, const char *status,
    enum event_type ev, int64_t next)
{
	memset(u, 0, sizeof(*u));
	u->new_state = st;
	if (status != NULL) {
		u->status_seen = 1;
		u->toss_status = status;
		u->reason = "";
		u->determined_at = "";
		u->count_poll = 1;
	} else
		u->count_error = 1;
	u->event = ev;
	u->next_poll_at = next;
}

/* Applies a result to the order as it is now. */
static void
apply(struct ledger *l, const char *id, enum order_state st,
    const char *status, enum event_type ev, int64_t next, int64_t now)
{
	struct order		 o;
	struct ledger_update	 u;

	assert_int_equal(ledger_get(l, id, &o), 1);
	update_init(&u, st, status, ev, next);
	if (st == ST_GRANTED && o.granted_at == 0)
		u.granted_at = now;
	assert_int_equal(ledger_apply(l, &o, &u, now), 0);
}

/* ---- opening ---- */

static void
test_open_fresh(void **state)
{
	struct fixture	*f = *state;
	struct stat	 sb;
	mode_t		 old;
	char		*err = NULL, p[160], buf[32];
	size_t		 i;

	old = umask(0);
	f->l = ledger_open(f->path, 0, &err);
	umask(old);
	if (f->l == NULL)
		fail_msg("ledger_open: %s", err);
	assert_null(err);

	assert_int_equal(sql_int(f->path, "PRAGMA user_version"),
	    (int64_t)schema_count);
	assert_string_equal(sql_text(f->path, "PRAGMA journal_mode", buf,
	    sizeof(buf)), "wal");
	/* The database and its WAL and shared-memory files are private. */
	for (i = 0; i < 3; i++) {
		fixture_path(f, side_files[i], p, sizeof(p));
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(sb.st_mode & 07777, 0600);
	}
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM sqlite_schema"
	    " WHERE type = 'table' AND name IN ('orders', 'events',"
	    " 'transitions', 'sinks', 'state_counts', 'event_counts')"), 6);
	assert_int_equal(sql_int(f->path,
	    "SELECT count(*) FROM state_counts WHERE n = 0"), ST__COUNT);
}

static void
test_reopen(void **state)
{
	struct fixture	*f = *state;
	struct order	 o;
	enum ledger_add_result res;
	char		*err = NULL;

	add(f->l, "o1", "443731104", "sku1", NULL, T0, LEDGER_ADDED);
	ledger_close(f->l);
	f->l = ledger_open(f->path, 0, &err);
	if (f->l == NULL)
		fail_msg("reopen: %s", err);
	assert_int_equal(ledger_get(f->l, "o1", &o), 1);
	assert_string_equal(o.sku, "sku1");
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"),
	    (int64_t)schema_count);
	ledger_close(f->l);

	/* Read-only: reads work, writes are refused. */
	f->l = ledger_open(f->path, 1, &err);
	if (f->l == NULL)
		fail_msg("readonly: %s", err);
	assert_int_equal(ledger_get(f->l, "o1", &o), 1);
	assert_string_equal(o.user_key, "443731104");
	assert_int_equal(ledger_add(f->l, "o2", "1", NULL, NULL, T0, &res), -1);
	assert_int_equal(ledger_get(f->l, "o2", &o), 0);
}

/* Opening must fail with want (PATH: prefixed) and leave the file as it was. */
static void
assert_refused(struct fixture *f, int readonly, const char *want)
{
	struct ledger	*l;
	char		*before, *after, *err = NULL, msg[256];
	size_t		 blen, alen;

	before = slurp(f->path, &blen);
	l = ledger_open(f->path, readonly, &err);
	assert_null(l);
	assert_non_null(err);
	snprintf(msg, sizeof(msg), "%s: %s", f->path, want);
	assert_string_equal(err, msg);
	free(err);
	after = slurp(f->path, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(before);
	free(after);
}

static void
test_refuse_newer(void **state)
{
	struct fixture	*f = *state;
	char		 sql[64], want[160];

	ledger_close(f->l);
	f->l = NULL;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %zu", schema_count + 1);
	sql_exec(f->path, sql);
	snprintf(want, sizeof(want), "ledger schema version %zu is newer than"
	    " this build supports (%zu); upgrade reconciled", schema_count + 1,
	    schema_count);
	assert_refused(f, 0, want);
	assert_refused(f, 1, want);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"),
	    (int64_t)schema_count + 1);
}

static void
test_refuse_text(void **state)
{
	struct fixture	*f = *state;
	char		 big[8192], p[160];
	size_t		 i;

	spew(f->path, "orders are not kept here\n", 25);
	assert_refused(f, 0, "not an SQLite database (refusing to touch it)");
	assert_refused(f, 1, "not an SQLite database (refusing to touch it)");

	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	spew(f->path, big, sizeof(big));
	assert_refused(f, 0, "not an SQLite database (refusing to touch it)");

	/* The magic, then garbage: SQLite itself must say no. */
	memcpy(big, "SQLite format 3", 16);
	spew(f->path, big, sizeof(big));
	assert_refused(f, 0, "not an SQLite database (refusing to touch it)");

	for (i = 1; i < sizeof(side_files) / sizeof(side_files[0]); i++) {
		fixture_path(f, side_files[i], p, sizeof(p));
		assert_false(file_exists(p));
	}
}

static void
test_refuse_foreign(void **state)
{
	struct fixture	*f = *state;
	char		 p[160];
	size_t		 i;

	sql_exec(f->path, "CREATE TABLE notes (x TEXT);"
	    " INSERT INTO notes VALUES ('keep me')");
	assert_refused(f, 0, "not a reconciled ledger");
	assert_refused(f, 1, "not a reconciled ledger");
	for (i = 1; i < sizeof(side_files) / sizeof(side_files[0]); i++) {
		fixture_path(f, side_files[i], p, sizeof(p));
		assert_false(file_exists(p));
	}

	/* Another application's user_version does not make it a ledger. */
	sql_exec(f->path, "PRAGMA user_version = 1");
	assert_refused(f, 0, "not a reconciled ledger");
	sql_exec(f->path, "PRAGMA user_version = 99");
	assert_refused(f, 0, "not a reconciled ledger");
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM notes"), 1);
}

static void
test_open_empty_file(void **state)
{
	struct fixture	*f = *state;
	char		*err = NULL;

	/* An empty file is an empty database: read-only cannot migrate it. */
	spew(f->path, "", 0);
	assert_null(ledger_open(f->path, 1, &err));
	assert_non_null(err);
	assert_non_null(strstr(err, "older than this build"));
	free(err);
	err = NULL;
	f->l = ledger_open(f->path, 0, &err);
	if (f->l == NULL)
		fail_msg("ledger_open: %s", err);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"),
	    (int64_t)schema_count);
}

static void
test_open_missing_dir(void **state)
{
	struct fixture	*f = *state;
	char		 p[160], want[256], *err = NULL;

	snprintf(p, sizeof(p), "%s/no/such/ledger.db", f->dir);
	assert_null(ledger_open(p, 0, &err));
	snprintf(want, sizeof(want), "%s: cannot create: %s", p,
	    strerror(ENOENT));
	assert_string_equal(err, want);
	free(err);
}

/* ---- orders ---- */

static void
test_add_get(void **state)
{
	struct fixture		*f = *state;
	struct order		 o;
	enum ledger_add_result	 res;

	add(f->l, "o1", "443731104", NULL, NULL, T0, LEDGER_ADDED);
	add(f->l, "o1", "443731104", "other-sku", "x", T0 + 5, LEDGER_KNOWN);
	add(f->l, "o1", "999", NULL, NULL, T0 + 6, LEDGER_CONFLICT);
	add(f->l, "o2", "1", "sku2", "", T0, LEDGER_ADDED);
	add(f->l, "o3", "1", "", "r/3", T0, LEDGER_ADDED);

	assert_int_equal(ledger_get(f->l, "o1", &o), 1);
	assert_string_equal(o.order_id, "o1");
	assert_string_equal(o.user_key, "443731104");
	assert_string_equal(o.sku, "");
	assert_int_equal(o.has_ref, 0);
	assert_string_equal(o.ref, "");
	assert_int_equal(o.state, ST_PENDING);
	assert_string_equal(o.toss_status, "");
	assert_int_equal(o.polls, 0);
	assert_int_equal(o.errors, 0);
	assert_int_equal(o.added_at, T0);
	assert_int_equal(o.updated_at, T0);
	assert_int_equal(o.granted_at, 0);
	assert_int_equal(o.next_poll_at, T0);

	assert_int_equal(ledger_get(f->l, "o2", &o), 1);
	assert_string_equal(o.sku, "sku2");
	assert_int_equal(o.has_ref, 1);
	assert_string_equal(o.ref, "");
	assert_int_equal(ledger_get(f->l, "o3", &o), 1);
	assert_string_equal(o.sku, "");
	assert_int_equal(o.has_ref, 1);
	assert_string_equal(o.ref, "r/3");

	assert_int_equal(ledger_get(f->l, "nope", &o), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM orders"), 3);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM orders"
	    " WHERE sku IS NULL"), 2);

	/* What cannot be stored faithfully is refused. */
	assert_int_equal(ledger_add(f->l, "", "1", NULL, NULL, T0, &res), -1);
	assert_int_equal(ledger_add(f->l, "o4", "", NULL, NULL, T0, &res), -1);
}

struct visit {
	char	 ids[256];
	int	 n;
	int	 stop_at;	/* return 7 on this visit (1-based), 0 = never */
};

static int
visit_order(const struct order *o, void *arg)
{
	struct visit	*v = arg;

	if (v->n > 0)
		strncat(v->ids, ",", sizeof(v->ids) - strlen(v->ids) - 1);
	strncat(v->ids, o->order_id, sizeof(v->ids) - strlen(v->ids) - 1);
	v->n++;
	return v->n == v->stop_at ? 7 : 0;
}

static void
test_foreach(void **state)
{
	struct fixture	*f = *state;
	struct visit	 v;

	add(f->l, "c", "1", NULL, NULL, 300, LEDGER_ADDED);
	add(f->l, "b", "1", NULL, NULL, 100, LEDGER_ADDED);
	add(f->l, "a", "1", NULL, NULL, 100, LEDGER_ADDED);
	add(f->l, "d", "1", NULL, NULL, 200, LEDGER_ADDED);
	apply(f->l, "b", ST_FAILED, "FAILED", EV_FAILED, 0, 400);

	memset(&v, 0, sizeof(v));
	assert_int_equal(ledger_foreach(f->l, -1, visit_order, &v), 0);
	assert_string_equal(v.ids, "a,b,d,c");
	memset(&v, 0, sizeof(v));
	assert_int_equal(ledger_foreach(f->l, ST_PENDING, visit_order, &v), 0);
	assert_string_equal(v.ids, "a,d,c");
	memset(&v, 0, sizeof(v));
	assert_int_equal(ledger_foreach(f->l, ST_FAILED, visit_order, &v), 0);
	assert_string_equal(v.ids, "b");
	memset(&v, 0, sizeof(v));
	assert_int_equal(ledger_foreach(f->l, ST_HELD, visit_order, &v), 0);
	assert_int_equal(v.n, 0);

	memset(&v, 0, sizeof(v));
	v.stop_at = 2;
	assert_int_equal(ledger_foreach(f->l, -1, visit_order, &v), 7);
	assert_string_equal(v.ids, "a,b");
	/* The statement was reset: a new walk starts from the beginning. */
	memset(&v, 0, sizeof(v));
	assert_int_equal(ledger_foreach(f->l, -1, visit_order, &v), 0);
	assert_string_equal(v.ids, "a,b,d,c");
}

/* ---- claiming ---- */

/* Claims and returns the ids claimed, sorted, comma-separated. */
static int
claim(struct ledger *l, int64_t now, int64_t lease, int max, char *ids,
    size_t size)
{
	struct order	 out[16];
	int		 n, i, j;

	assert_true(max <= 16);
	n = ledger_claim_due(l, now, lease, out, max);
	assert_true(n >= 0 && n <= max);
	for (i = 1; i < n; i++) {
		for (j = i; j > 0 && strcmp(out[j - 1].order_id,
		    out[j].order_id) > 0; j--) {
			struct order	 t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	}
	ids[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i > 0)
			strncat(ids, ",", size - strlen(ids) - 1);
		strncat(ids, out[i].order_id, size - strlen(ids) - 1);
		assert_int_equal(out[i].next_poll_at, now + lease);
	}
	return n;
}

static void
test_claim_priority(void **state)
{
	struct fixture	*f = *state;
	char		 ids[128];

	/* g is granted and due at 2000, long before p and h. */
	add(f->l, "g", "1", NULL, NULL, 1000, LEDGER_ADDED);
	assert_int_equal(claim(f->l, 1000, 100, 4, ids, sizeof(ids)), 1);
	apply(f->l, "g", ST_GRANTED, "PAYMENT_COMPLETED", EV_GRANT, 2000, 1000);
	add(f->l, "h", "1", NULL, NULL, 1100, LEDGER_ADDED);
	assert_int_equal(claim(f->l, 1100, 100, 4, ids, sizeof(ids)), 1);
	assert_string_equal(ids, "h");
	apply(f->l, "h", ST_HELD, "NEW_STATUS", EV_HELD, 4000, 1100);
	add(f->l, "p", "1", NULL, NULL, 3000, LEDGER_ADDED);
	add(f->l, "q", "1", NULL, NULL, 9000, LEDGER_ADDED);	/* not due */

	assert_int_equal(claim(f->l, 5000, 100, 1, ids, sizeof(ids)), 1);
	assert_string_equal(ids, "p");
	assert_int_equal(claim(f->l, 5000, 100, 1, ids, sizeof(ids)), 1);
	assert_string_equal(ids, "h");
	assert_int_equal(claim(f->l, 5000, 100, 1, ids, sizeof(ids)), 1);
	assert_string_equal(ids, "g");
	assert_int_equal(claim(f->l, 5000, 100, 4, ids, sizeof(ids)), 0);

	/* All due at once: prio 0 fills the batch before prio 1 gets any. */
	assert_int_equal(claim(f->l, 5100, 100, 2, ids, sizeof(ids)), 2);
	assert_string_equal(ids, "h,p");
	assert_int_equal(claim(f->l, 5100, 100, 2, ids, sizeof(ids)), 1);
	assert_string_equal(ids, "g");
	assert_int_equal(ledger_claim_due(f->l, 5100, 100, NULL, 0), 0);
}

static void
test_claim_lease(void **state)
{
	struct fixture	*f = *state;
	struct order	 o;
	char		 ids[128];

	add(f->l, "a", "1", NULL, NULL, 1000, LEDGER_ADDED);
	add(f->l, "b", "1", NULL, NULL, 1000, LEDGER_ADDED);
	assert_int_equal(claim(f->l, 1000, 500, 8, ids, sizeof(ids)), 2);
	assert_string_equal(ids, "a,b");
	assert_int_equal(ledger_get(f->l, "a", &o), 1);
	assert_int_equal(o.next_poll_at, 1500);
	assert_int_equal(o.polls, 0);
	assert_int_equal(o.updated_at, 1000);
	assert_int_equal(claim(f->l, 1000, 500, 8, ids, sizeof(ids)), 0);
	assert_int_equal(claim(f->l, 1499, 500, 8, ids, sizeof(ids)), 0);
	/* The lease ran out (the poller died): claimable again. */
	assert_int_equal(claim(f->l, 1500, 500, 8, ids, sizeof(ids)), 2);
	assert_string_equal(ids, "a,b");
	assert_int_equal(claim(f->l, 1500, 500, 8, ids, sizeof(ids)), 0);
}

/* ---- applying results ---- */

struct events_seen {
	int	 n;
	int64_t	 ids[16];
	char	*payloads[16];
};

static int
collect_event(int64_t id, const char *payload, void *arg)
{
	struct events_seen	*e = arg;

	assert_true(e->n < 16);
	e->ids[e->n] = id;
	e->payloads[e->n] = strdup(payload);
	assert_non_null(e->payloads[e->n]);
	e->n++;
	return 0;
}

static void
events_free(struct events_seen *e)
{
	int	 i;

	for (i = 0; i < e->n; i++)
		free(e->payloads[i]);
	memset(e, 0, sizeof(*e));
}

static void
test_apply_each_event(void **state)
{
	static const struct {
		const char		*id;
		enum order_state	 st;
		enum event_type		 ev;
	} cases[] = {
		{ "e-grant", ST_GRANTED, EV_GRANT },
		{ "e-refund", ST_REFUNDED, EV_REFUND },
		{ "e-failed", ST_FAILED, EV_FAILED },
		{ "e-nf", ST_NOT_FOUND, EV_NOT_FOUND },
		{ "e-mm", ST_MISMATCH, EV_MISMATCH },
		{ "e-exp", ST_EXPIRED, EV_EXPIRED },
		{ "e-held", ST_HELD, EV_HELD },
		{ "e-anom", ST_GRANTED, EV_ANOMALY },
	};
	struct fixture		*f = *state;
	struct events_seen	 e;
	struct ledger_stats	 s;
	struct order		 o;
	struct json_object	*j, *v;
	char			 key[64], sql[256];
	size_t			 i;

	memset(&e, 0, sizeof(e));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		add(f->l, cases[i].id, "1", NULL, NULL, T0, LEDGER_ADDED);
		apply(f->l, cases[i].id, cases[i].st, "SOME_STATUS", cases[i].ev,
		    0, T0 + 10 + (int64_t)i);
		assert_int_equal(ledger_get(f->l, cases[i].id, &o), 1);
		assert_int_equal(o.state, cases[i].st);
	}
	assert_int_equal(ledger_events(f->l, 0, -1, collect_event, &e), 8);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(e.ids[i], (int64_t)i + 1);
		j = json_tokener_parse(e.payloads[i]);
		assert_non_null(j);
		snprintf(key, sizeof(key), "%s:%s", cases[i].id,
		    order_event_name(cases[i].ev));
		assert_true(json_object_object_get_ex(j, "id", &v));
		assert_int_equal(json_object_get_int64(v), (int64_t)i + 1);
		assert_true(json_object_object_get_ex(j, "key", &v));
		assert_string_equal(json_object_get_string(v), key);
		assert_true(json_object_object_get_ex(j, "type", &v));
		assert_string_equal(json_object_get_string(v),
		    order_event_name(cases[i].ev));
		assert_int_equal(json_object_object_get_ex(j, "granted", &v),
		    cases[i].ev == EV_REFUND);
		json_object_put(j);

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM events WHERE"
		    " key = '%s' AND type = '%s' AND order_id = '%s'"
		    " AND created_at = %lld", key,
		    order_event_name(cases[i].ev), cases[i].id,
		    (long long)(T0 + 10 + (int64_t)i));
		assert_int_equal(sql_int(f->path, sql), 1);
	}
	events_free(&e);

	/* after / limit, and a stop from the callback. */
	assert_int_equal(ledger_events(f->l, 6, -1, collect_event, &e), 2);
	assert_int_equal(e.ids[0], 7);
	assert_int_equal(e.ids[1], 8);
	events_free(&e);
	assert_int_equal(ledger_events(f->l, 2, 3, collect_event, &e), 3);
	assert_int_equal(e.ids[2], 5);
	events_free(&e);
	assert_int_equal(ledger_events(f->l, 8, 10, collect_event, &e), 0);
	assert_int_equal(ledger_events(f->l, 0, 0, collect_event, &e), 0);

	assert_int_equal(ledger_stats(f->l, T0 + 100, &s), 0);
	assert_int_equal(s.events, 8);
	assert_int_equal(s.last_event_id, 8);
	assert_int_equal(s.orders[ST_GRANTED], 2);
	assert_int_equal(sql_int(f->path, "SELECT n FROM event_counts"
	    " WHERE type = 'anomaly'"), 1);
}

static void
test_event_once(void **state)
{
	struct fixture		*f = *state;
	struct events_seen	 e;
	struct order		 o;

	add(f->l, "o1", "1", NULL, NULL, T0, LEDGER_ADDED);
	apply(f->l, "o1", ST_GRANTED, "PAYMENT_COMPLETED", EV_GRANT, T0 + 10, T0);
	/* A second grant (say after a recheck) updates the row, no event. */
	apply(f->l, "o1", ST_GRANTED, "PURCHASED", EV_GRANT, T0 + 20, T0 + 5);
	assert_int_equal(ledger_get(f->l, "o1", &o), 1);
	assert_string_equal(o.toss_status, "PURCHASED");
	assert_int_equal(o.polls, 2);
	assert_int_equal(o.granted_at, T0);
	assert_int_equal(o.next_poll_at, T0 + 20);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"), 1);
	memset(&e, 0, sizeof(e));
	assert_int_equal(ledger_events(f->l, 0, 10, collect_event, &e), 1);
	/* The payload is the one of the first grant. */
	assert_non_null(strstr(e.payloads[0], "\"tossStatus\":\"PAYMENT_COMPLETED\""));
	events_free(&e);

	/* Held twice: one held event. */
	add(f->l, "o2", "1", NULL, NULL, T0, LEDGER_ADDED);
	apply(f->l, "o2", ST_HELD, "WEIRD", EV_HELD, T0 + 100, T0);
	apply(f->l, "o2", ST_HELD, "WEIRD", EV_HELD, T0 + 200, T0 + 100);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"
	    " WHERE order_id = 'o2'"), 1);
	assert_int_equal(sql_int(f->path, "SELECT n FROM event_counts"
	    " WHERE type = 'held'"), 1);

	/* Refused duplicates use up no id: the next event is 3, not 5. */
	add(f->l, "o3", "1", NULL, NULL, T0, LEDGER_ADDED);
	apply(f->l, "o3", ST_FAILED, "FAILED", EV_FAILED, 0, T0);
	assert_int_equal(sql_int(f->path, "SELECT id FROM events"
	    " WHERE order_id = 'o3'"), 3);
}

static void
test_payload_exact(void **state)
{
	struct fixture		*f = *state;
	struct order		 o;
	struct ledger_update	 u;
	struct events_seen	 e;

	add(f->l, "0192c0de-a", "443731104",
	    "ait.0000010000.af647449.3bd55cfd00.0000000475", NULL, T0 - 5000,
	    LEDGER_ADDED);
	assert_int_equal(ledger_get(f->l, "0192c0de-a", &o), 1);
	update_init(&u, ST_GRANTED, "PAYMENT_COMPLETED", EV_GRANT, T0 + 3600000);
	u.reason = "결제가 완료되었어요.";
	u.determined_at = "2025-09-25T16:30:26+09:00";
	u.sku = "ait.0000010000.af647449.3bd55cfd00.0000000475";
	u.granted_at = T0;
	assert_int_equal(ledger_apply(f->l, &o, &u, T0), 0);

	/* Refund after the grant, with a ref that has a slash. */
	add(f->l, "r-1", "7", NULL, "order/42", T0, LEDGER_ADDED);
	apply(f->l, "r-1", ST_GRANTED, "PURCHASED", EV_GRANT, T0 + 1, T0);
	assert_int_equal(ledger_get(f->l, "r-1", &o), 1);
	update_init(&u, ST_REFUNDED, "REFUNDED", EV_REFUND, 0);
	u.refund_after_grant = 1;
	assert_int_equal(ledger_apply(f->l, &o, &u, T0 + 1000), 0);

	/* Refund before any grant, empty ref. */
	add(f->l, "r-2", "8", NULL, "", T0, LEDGER_ADDED);
	assert_int_equal(ledger_get(f->l, "r-2", &o), 1);
	update_init(&u, ST_REFUNDED, "REFUNDED", EV_REFUND, 0);
	assert_int_equal(ledger_apply(f->l, &o, &u, T0 + 2000), 0);

	memset(&e, 0, sizeof(e));
	assert_int_equal(ledger_events(f->l, 0, 10, collect_event, &e), 4);
	assert_string_equal(e.payloads[0],
	    "{\"id\":1,\"key\":\"0192c0de-a:grant\",\"type\":\"grant\","
	    "\"orderId\":\"0192c0de-a\",\"userKey\":\"443731104\","
	    "\"sku\":\"ait.0000010000.af647449.3bd55cfd00.0000000475\","
	    "\"ref\":null,\"tossStatus\":\"PAYMENT_COMPLETED\","
	    "\"reason\":\"결제가 완료되었어요.\","
	    "\"statusDeterminedAt\":\"2025-09-25T16:30:26+09:00\","
	    "\"at\":\"2026-11-28T01:30:00.123Z\",\"skuConfirmed\":true}");
	assert_string_equal(e.payloads[2],
	    "{\"id\":3,\"key\":\"r-1:refund\",\"type\":\"refund\","
	    "\"orderId\":\"r-1\",\"userKey\":\"7\",\"sku\":null,"
	    "\"ref\":\"order/42\",\"tossStatus\":\"REFUNDED\",\"reason\":null,"
	    "\"statusDeterminedAt\":null,\"at\":\"2026-11-28T01:30:01.123Z\","
	    "\"granted\":true,\"skuConfirmed\":false}");
	assert_string_equal(e.payloads[3],
	    "{\"id\":4,\"key\":\"r-2:refund\",\"type\":\"refund\","
	    "\"orderId\":\"r-2\",\"userKey\":\"8\",\"sku\":null,"
	    "\"ref\":\"\",\"tossStatus\":\"REFUNDED\",\"reason\":null,"
	    "\"statusDeterminedAt\":null,\"at\":\"2026-11-28T01:30:02.123Z\","
	    "\"granted\":false,\"skuConfirmed\":false}");
	events_free(&e);

	/* A sku mismatch names both: Toss's as sku, and the intake's. */
	add(f->l, "m-1", "9", "ait.EXPENSIVE", NULL, T0, LEDGER_ADDED);
	assert_int_equal(ledger_get(f->l, "m-1", &o), 1);
	update_init(&u, ST_MISMATCH, "PAYMENT_COMPLETED", EV_MISMATCH, 0);
	u.sku = "ait.CHEAP";
	u.sku_mismatch = 1;
	assert_int_equal(ledger_apply(f->l, &o, &u, T0 + 3000), 0);
	/* A MINIAPP_MISMATCH without any sku: both null. */
	add(f->l, "m-2", "9", NULL, NULL, T0, LEDGER_ADDED);
	assert_int_equal(ledger_get(f->l, "m-2", &o), 1);
	update_init(&u, ST_MISMATCH, "MINIAPP_MISMATCH", EV_MISMATCH, 0);
	assert_int_equal(ledger_apply(f->l, &o, &u, T0 + 4000), 0);
	memset(&e, 0, sizeof(e));
	assert_int_equal(ledger_events(f->l, 4, 10, collect_event, &e), 2);
	assert_string_equal(e.payloads[0],
	    "{\"id\":5,\"key\":\"m-1:mismatch\",\"type\":\"mismatch\","
	    "\"orderId\":\"m-1\",\"userKey\":\"9\",\"sku\":\"ait.CHEAP\","
	    "\"ref\":null,\"tossStatus\":\"PAYMENT_COMPLETED\",\"reason\":null,"
	    "\"statusDeterminedAt\":null,\"at\":\"2026-11-28T01:30:03.123Z\","
	    "\"skuConfirmed\":true,\"intakeSku\":\"ait.EXPENSIVE\"}");
	assert_string_equal(e.payloads[1],
	    "{\"id\":6,\"key\":\"m-2:mismatch\",\"type\":\"mismatch\","
	    "\"orderId\":\"m-2\",\"userKey\":\"9\",\"sku\":null,"
	    "\"ref\":null,\"tossStatus\":\"MINIAPP_MISMATCH\",\"reason\":null,"
	    "\"statusDeterminedAt\":null,\"at\":\"2026-11-28T01:30:04.123Z\","
	    "\"skuConfirmed\":false,\"intakeSku\":null}");
	events_free(&e);
}

static void
test_order_json(void **state)
{
	struct fixture		*f = *state;
	struct order		 o;
	struct ledger_update	 u;
	struct json_object	*j;
	char			*s;

	add(f->l, "o1", "443731104", NULL, "r/1", T0, LEDGER_ADDED);
	assert_int_equal(ledger_get(f->l, "o1", &o), 1);
	j = json_out_order(&o);
	s = json_out_string(j);
	json_object_put(j);
	assert_string_equal(s,
	    "{\"orderId\":\"o1\",\"userKey\":\"443731104\",\"sku\":null,"
	    "\"ref\":\"r/1\",\"state\":\"pending\",\"tossStatus\":null,"
	    "\"reason\":null,\"statusDeterminedAt\":null,\"polls\":0,"
	    "\"errors\":0,\"addedAt\":\"2026-11-28T01:30:00.123Z\","
	    "\"updatedAt\":\"2026-11-28T01:30:00.123Z\",\"grantedAt\":null,"
	    "\"nextPollAt\":\"2026-11-28T01:30:00.123Z\",\"intakeSku\":null,"
	    "\"skuConfirmed\":false}");
	free(s);

	update_init(&u, ST_GRANTED, "PURCHASED", EV_GRANT, 0);
	u.reason = "ok \"quoted\"";
	u.determined_at = "2025-09-12T16:57:12+09:00";
	u.sku = "sku.1";
	u.granted_at = T0 + 1000;
	assert_int_equal(ledger_apply(f->l, &o, &u, T0 + 1000), 0);
	assert_int_equal(ledger_get(f->l, "o1", &o), 1);
	o.has_ref = 0;
	j = json_out_order(&o);
	s = json_out_string(j);
	json_object_put(j);
	assert_string_equal(s,
	    "{\"orderId\":\"o1\",\"userKey\":\"443731104\",\"sku\":\"sku.1\","
	    "\"ref\":null,\"state\":\"granted\",\"tossStatus\":\"PURCHASED\","
	    "\"reason\":\"ok \\\"quoted\\\"\","
	    "\"statusDeterminedAt\":\"2025-09-12T16:57:12+09:00\",\"polls\":1,"
	    "\"errors\":0,\"addedAt\":\"2026-11-28T01:30:00.123Z\","
	    "\"updatedAt\":\"2026-11-28T01:30:01.123Z\","
	    "\"grantedAt\":\"2026-11-28T01:30:01.123Z\",\"nextPollAt\":null,"
	    "\"intakeSku\":null,\"skuConfirmed\":true}");
	free(s);
}

static void
test_transitions(void **state)
{
	struct fixture	*f = *state;
	char		 buf[256];

	add(f->l, "t", "1", NULL, NULL, T0, LEDGER_ADDED);
	apply(f->l, "t", ST_PENDING, "ORDER_IN_PROGRESS", EV_NONE, T0 + 10, T0 + 1);
	apply(f->l, "t", ST_PENDING, "ORDER_IN_PROGRESS", EV_NONE, T0 + 20, T0 + 2);
	apply(f->l, "t", ST_PENDING, NULL, EV_NONE, T0 + 30, T0 + 3);	/* error */
	apply(f->l, "t", ST_GRANTED, "PAYMENT_COMPLETED", EV_GRANT, T0 + 40, T0 + 4);
	apply(f->l, "t", ST_GRANTED, "PURCHASED", EV_NONE, T0 + 50, T0 + 5);
	apply(f->l, "t", ST_GRANTED, "PURCHASED", EV_NONE, T0 + 60, T0 + 6);
	assert_string_equal(sql_text(f->path, "SELECT group_concat(x, ',') FROM"
	    " (SELECT (at - 1795829400123) || ':' || coalesce(from_status, '-')"
	    " || '>' || to_status AS x FROM transitions WHERE order_id = 't'"
	    " ORDER BY rowid)", buf, sizeof(buf)),
	    "1:->ORDER_IN_PROGRESS,4:ORDER_IN_PROGRESS>PAYMENT_COMPLETED,"
	    "5:PAYMENT_COMPLETED>PURCHASED");
	assert_int_equal(sql_int(f->path, "SELECT polls * 10 + errors FROM orders"
	    " WHERE order_id = 't'"), 51);
}

/* The sku the intake gave is kept apart; Toss's, once named, is the
 * order's sku, confirmed. A sku mismatch is counted once, with its event,
 * in the ledger (so /metrics has it across restarts). late_answers is
 * kept as the policy left it. */
static void
test_sku_apply(void **state)
{
	struct fixture		*f = *state;
	struct ledger_stats	 st;
	struct order		 o;
	struct ledger_update	 u;

	add(f->l, "n", "1", NULL, NULL, T0, LEDGER_ADDED);
	add(f->l, "s", "1", "given", NULL, T0, LEDGER_ADDED);

	assert_int_equal(ledger_get(f->l, "n", &o), 1);
	assert_string_equal(o.intake_sku, "");
	assert_int_equal(o.sku_confirmed, 0);
	update_init(&u, ST_PENDING, "ORDER_IN_PROGRESS", EV_NONE, T0 + 1);
	assert_int_equal(ledger_apply(f->l, &o, &u, T0), 0);	/* no sku */
	assert_int_equal(ledger_get(f->l, "n", &o), 1);
	assert_string_equal(o.sku, "");
	assert_int_equal(o.sku_confirmed, 0);
	u.sku = "from-toss";
	u.late_answers = 2;
	assert_int_equal(ledger_apply(f->l, &o, &u, T0), 0);
	assert_int_equal(ledger_get(f->l, "n", &o), 1);
	assert_string_equal(o.sku, "from-toss");
	assert_string_equal(o.intake_sku, "");
	assert_int_equal(o.sku_confirmed, 1);
	assert_int_equal(o.late_answers, 2);
	u.sku = NULL;
	u.late_answers = 0;
	assert_int_equal(ledger_apply(f->l, &o, &u, T0), 0);
	assert_int_equal(ledger_get(f->l, "n", &o), 1);
	assert_string_equal(o.sku, "from-toss");
	assert_int_equal(o.sku_confirmed, 1);
	assert_int_equal(o.late_answers, 0);

	assert_int_equal(ledger_get(f->l, "s", &o), 1);
	assert_string_equal(o.sku, "given");
	assert_string_equal(o.intake_sku, "given");
	assert_int_equal(o.sku_confirmed, 0);
	update_init(&u, ST_MISMATCH, "PAYMENT_COMPLETED", EV_MISMATCH, 0);
	u.sku = "from-toss";
	u.sku_mismatch = 1;
	assert_int_equal(ledger_apply(f->l, &o, &u, T0), 0);
	assert_int_equal(ledger_get(f->l, "s", &o), 1);
	assert_string_equal(o.sku, "from-toss");
	assert_string_equal(o.intake_sku, "given");
	assert_int_equal(o.sku_confirmed, 1);
	assert_int_equal(ledger_stats(f->l, T0, &st), 0);
	assert_int_equal(st.sku_mismatches, 1);
	/* Again (a recheck): the event exists, nothing more is counted. */
	assert_int_equal(ledger_apply(f->l, &o, &u, T0 + 1), 0);
	assert_int_equal(ledger_stats(f->l, T0, &st), 0);
	assert_int_equal(st.sku_mismatches, 1);
	assert_int_equal(st.events_by_type[EV_MISMATCH], 1);
}

/* A ledger of schema version 1 (before skus were kept apart) migrates:
 * every sku it holds is taken as the intake's, unconfirmed. */
static void
test_migrate_from_1(void **state)
{
	struct fixture	*f = *state;
	struct order	 o;
	char		*err = NULL, buf[64];

	sql_exec(f->path, schema_migrations[0]);
	sql_exec(f->path, "PRAGMA user_version = 1;"
	    " INSERT INTO orders (order_id, user_key, sku, state, added_at,"
	    " updated_at, granted_at) VALUES"
	    " ('g', '1', 'ait.A', 'granted', 1, 2, 2),"
	    " ('p', '1', NULL, 'pending', 1, 1, NULL)");
	f->l = ledger_open(f->path, 0, &err);
	if (f->l == NULL)
		fail_msg("ledger_open: %s", err);
	assert_int_equal(sql_int(f->path, "PRAGMA user_version"),
	    (int64_t)schema_count);
	assert_int_equal(ledger_get(f->l, "g", &o), 1);
	assert_string_equal(o.sku, "ait.A");
	assert_string_equal(o.intake_sku, "ait.A");
	assert_int_equal(o.sku_confirmed, 0);
	assert_int_equal(o.late_answers, 0);
	assert_int_equal(o.state, ST_GRANTED);
	assert_int_equal(ledger_get(f->l, "p", &o), 1);
	assert_string_equal(o.intake_sku, "");
	assert_string_equal(sql_text(f->path, "SELECT group_concat(name || '='"
	    " || n) FROM counters", buf, sizeof(buf)), "sku_mismatch=0");
}

static void
test_apply_fields(void **state)
{
	struct fixture		*f = *state;
	struct order		 o, gone;
	struct ledger_update	 u;
	char			 longreason[REASON_MAX + 8];
	size_t			 i;

	add(f->l, "o", "1", NULL, NULL, T0, LEDGER_ADDED);
	assert_int_equal(ledger_get(f->l, "o", &o), 1);
	update_init(&u, ST_PENDING, "ORDER_IN_PROGRESS", EV_NONE, T0 + 2000);
	u.reason = "wait";
	u.determined_at = "2025-09-12T16:57:12+09:00";
	assert_int_equal(ledger_apply(f->l, &o, &u, T0 + 1), 0);
	/* An error keeps the last status, reason and time. */
	update_init(&u, ST_PENDING, NULL, EV_NONE, T0 + 4000);
	assert_int_equal(ledger_apply(f->l, &o, &u, T0 + 2), 0);
	assert_int_equal(ledger_get(f->l, "o", &o), 1);
	assert_string_equal(o.toss_status, "ORDER_IN_PROGRESS");
	assert_string_equal(o.reason, "wait");
	assert_string_equal(o.determined_at, "2025-09-12T16:57:12+09:00");
	assert_int_equal(o.polls, 1);
	assert_int_equal(o.errors, 1);
	assert_int_equal(o.updated_at, T0 + 2);
	assert_int_equal(o.next_poll_at, T0 + 4000);
	assert_int_equal(o.granted_at, 0);

	/* A reason too long for struct order is cut on a UTF-8 boundary. */
	for (i = 0; i + 3 <= sizeof(longreason) - 1; i += 3)
		memcpy(longreason + i, "가", 3);
	longreason[i] = '\0';
	update_init(&u, ST_FAILED, "FAILED", EV_FAILED, 0);
	u.reason = longreason;
	assert_int_equal(ledger_apply(f->l, &o, &u, T0 + 3), 0);
	assert_int_equal(ledger_get(f->l, "o", &o), 1);
	assert_int_equal(strlen(o.reason), REASON_MAX / 3 * 3);
	assert_int_equal(o.next_poll_at, 0);
	assert_int_equal(o.state, ST_FAILED);

	/* An unknown order is an error and writes nothing. */
	memset(&gone, 0, sizeof(gone));
	util_strlcpy(gone.order_id, "gone", sizeof(gone.order_id));
	update_init(&u, ST_GRANTED, "PURCHASED", EV_GRANT, 0);
	assert_int_equal(ledger_apply(f->l, &gone, &u, T0), -1);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"
	    " WHERE order_id = 'gone'"), 0);
	u.new_state = ST__COUNT;
	assert_int_equal(ledger_apply(f->l, &o, &u, T0), -1);
}

/* ---- cursors, stats, scheduling ---- */

static int
collect_cursor(const char *name, int64_t id, void *arg)
{
	char	*buf = arg, one[64];

	snprintf(one, sizeof(one), "%s%s=%lld", *buf != '\0' ? "," : "", name,
	    (long long)id);
	strncat(buf, one, 255 - strlen(buf));
	return 0;
}

static void
test_cursors(void **state)
{
	struct fixture	*f = *state;
	char		 buf[256] = "";
	int64_t		 id;

	assert_int_equal(ledger_cursors(f->l, collect_cursor, buf), 0);
	assert_string_equal(buf, "");
	id = 99;
	assert_int_equal(ledger_cursor_get(f->l, "jsonl", &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(ledger_cursor_set(f->l, "webhook", 7), 0);
	assert_int_equal(ledger_cursor_set(f->l, "jsonl", 5), 0);
	assert_int_equal(ledger_cursor_set(f->l, "jsonl", 9), 0);
	assert_int_equal(ledger_cursor_get(f->l, "jsonl", &id), 0);
	assert_int_equal(id, 9);
	assert_int_equal(ledger_cursor_get(f->l, "webhook", &id), 0);
	assert_int_equal(id, 7);
	assert_int_equal(ledger_cursors(f->l, collect_cursor, buf), 0);
	assert_string_equal(buf, "jsonl=9,webhook=7");
}

/* A sink advances only while no replay came between its read and its
 * write; a replay is refused past the last event or past the cursor, and
 * is logged with its operator. */
static void
test_replay(void **state)
{
	struct fixture		*f = *state;
	struct ledger_sink	 k;
	char			 user[64];
	int64_t			 was, id;
	int			 i;

	for (i = 0; i < 5; i++) {
		char	 oid[16];

		snprintf(oid, sizeof(oid), "r-%d", i);
		add(f->l, oid, "u", NULL, NULL, T0, LEDGER_ADDED);
		apply(f->l, oid, ST_GRANTED, "PAYMENT_COMPLETED", EV_GRANT, 0,
		    T0 + i * 1000);
	}
	assert_int_equal(ledger_sink_get(f->l, "webhook", &k), 0);
	assert_int_equal(k.delivered_id, 0);
	assert_int_equal(k.replays, 0);
	assert_string_equal(k.state, "ok");

	/* The sink read replays 0 and delivers 1..3. */
	assert_int_equal(ledger_cursor_advance(f->l, "webhook", 0, 3), 0);
	/* Sending again from event 6 or 7: there is no such event. */
	assert_int_equal(ledger_replay(f->l, "webhook", 6, "alice", T0, &was),
	    LEDGER_REPLAY_PAST_END);
	assert_int_equal(was, 3);
	assert_int_equal(ledger_replay(f->l, "webhook", 5, "alice", T0, &was),
	    LEDGER_REPLAY_PAST_END);
	/* From event 5: it was not delivered yet, that would skip 4. */
	assert_int_equal(ledger_replay(f->l, "webhook", 4, "alice", T0, &was),
	    LEDGER_REPLAY_AHEAD);
	assert_int_equal(ledger_last_replay_user(f->l, "webhook", user,
	    sizeof(user)), 0);
	assert_int_equal(ledger_replay(f->l, "webhook", 1, "alice", T0, &was),
	    LEDGER_REPLAY_MOVED);
	assert_int_equal(was, 3);
	/* The sink, unaware, tries to store 5 over the replay: refused. */
	assert_int_equal(ledger_cursor_advance(f->l, "webhook", 0, 5), 1);
	assert_int_equal(ledger_sink_get(f->l, "webhook", &k), 1);
	assert_int_equal(k.delivered_id, 1);
	assert_int_equal(k.replays, 1);
	assert_int_equal(ledger_last_replay_user(f->l, "webhook", user,
	    sizeof(user)), 1);
	assert_string_equal(user, "alice");
	assert_int_equal(sql_int(f->path, "SELECT from_id * 10 + to_id FROM"
	    " replays WHERE sink = 'webhook'"), 31);
	/* Having re-read it, the sink goes on. */
	assert_int_equal(ledger_cursor_advance(f->l, "webhook", 1, 2), 0);
	/* A replay to the cursor itself still counts (a window in flight
	 * is sent again), and one of a sink without a row makes it. */
	assert_int_equal(ledger_replay(f->l, "webhook", 2, "bob", T0, &was),
	    LEDGER_REPLAY_MOVED);
	assert_int_equal(ledger_cursor_advance(f->l, "webhook", 1, 5), 1);
	assert_int_equal(ledger_replay(f->l, "jsonl", 0, "bob", T0, &was),
	    LEDGER_REPLAY_MOVED);
	assert_int_equal(was, 0);
	assert_int_equal(ledger_sink_get(f->l, "jsonl", &k), 1);
	assert_int_equal(k.replays, 1);

	/* State and last error: the error stays when the state recovers. */
	assert_int_equal(ledger_sink_state(f->l, "webhook", "retrying",
	    "answered HTTP 500", T0 + 7), 0);
	assert_int_equal(ledger_sink_state(f->l, "webhook", "ok", NULL,
	    T0 + 9), 0);
	assert_int_equal(ledger_sink_get(f->l, "webhook", &k), 1);
	assert_string_equal(k.state, "ok");
	assert_string_equal(k.last_error, "answered HTTP 500");
	assert_int_equal(k.error_at, T0 + 7);
	assert_int_equal(ledger_sink_state(f->l, "webhook", "gone", NULL,
	    T0), -1);

	/* --since: the first event created at or after a time. */
	assert_int_equal(ledger_event_since(f->l, T0 + 2500, &id), 1);
	assert_int_equal(id, 4);
	assert_int_equal(ledger_event_since(f->l, T0 + 9000, &id), 0);
}

/* The trigger-kept counters must equal a GROUP BY of the orders. */
static void
assert_counts_match(struct fixture *f)
{
	struct ledger_stats	 s;
	char			 sql[160];
	int			 i;

	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM state_counts sc"
	    " WHERE n <> (SELECT count(*) FROM orders o"
	    " WHERE o.state = sc.state)"), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM event_counts ec"
	    " WHERE n <> (SELECT count(*) FROM events e"
	    " WHERE e.type = ec.type)"), 0);
	assert_int_equal(ledger_stats(f->l, 0, &s), 0);
	for (i = 0; i < ST__COUNT; i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM orders"
		    " WHERE state = '%s'", order_state_name((enum order_state)i));
		assert_int_equal(s.orders[i], sql_int(f->path, sql));
	}
	assert_int_equal(s.events, sql_int(f->path,
	    "SELECT count(*) FROM events"));
}

static void
test_stats(void **state)
{
	static const enum order_state to[] = { ST_GRANTED, ST_HELD, ST_PENDING,
	    ST_REFUNDED, ST_FAILED, ST_NOT_FOUND, ST_MISMATCH, ST_EXPIRED };
	struct fixture		*f = *state;
	struct ledger_stats	 s;
	char			 id[32];
	int			 i;

	assert_int_equal(ledger_stats(f->l, T0, &s), 0);
	for (i = 0; i < ST__COUNT; i++)
		assert_int_equal(s.orders[i], 0);
	assert_int_equal(s.events, 0);
	assert_int_equal(s.last_event_id, 0);
	assert_int_equal(s.oldest_pending_ms, 0);
	assert_int_equal(s.due, 0);

	add(f->l, "p1", "1", NULL, NULL, 200, LEDGER_ADDED);
	add(f->l, "p2", "1", NULL, NULL, 100, LEDGER_ADDED);
	add(f->l, "g", "1", NULL, NULL, 50, LEDGER_ADDED);
	add(f->l, "f", "1", NULL, NULL, 60, LEDGER_ADDED);
	add(f->l, "h", "1", NULL, NULL, 70, LEDGER_ADDED);
	apply(f->l, "g", ST_GRANTED, "PURCHASED", EV_GRANT, 5000, 300);
	apply(f->l, "f", ST_FAILED, "FAILED", EV_FAILED, 0, 300);
	apply(f->l, "h", ST_HELD, "X", EV_HELD, 900, 300);

	assert_int_equal(ledger_stats(f->l, 1000, &s), 0);
	assert_int_equal(s.orders[ST_PENDING], 2);
	assert_int_equal(s.orders[ST_GRANTED], 1);
	assert_int_equal(s.orders[ST_FAILED], 1);
	assert_int_equal(s.orders[ST_HELD], 1);
	assert_int_equal(s.orders[ST_REFUNDED], 0);
	assert_int_equal(s.events, 3);
	assert_int_equal(s.last_event_id, 3);
	assert_int_equal(s.oldest_pending_ms, 100);
	assert_int_equal(s.due, 3);	/* p1, p2, h; not g (5000), not f */
	assert_int_equal(ledger_stats(f->l, 5000, &s), 0);
	assert_int_equal(s.due, 4);
	assert_counts_match(f);

	/* A mixed workload through every state keeps the counters exact. */
	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "w%02d", i);
		add(f->l, id, "1", NULL, NULL, 1000 + i, LEDGER_ADDED);
		apply(f->l, id, to[i % 8], "S", EV_NONE, 0, 2000);
		apply(f->l, id, to[(i * 3) % 8], "T", EV_NONE, 0, 2001);
		if (i % 5 == 0)
			add(f->l, id, "1", NULL, NULL, 3000, LEDGER_KNOWN);
	}
	assert_counts_match(f);
}

static void
test_next_due_recheck(void **state)
{
	struct fixture	*f = *state;
	struct order	 o;
	char		 ids[64];
	int64_t		 at = -1;

	assert_int_equal(ledger_next_due(f->l, &at), 0);
	add(f->l, "a", "1", NULL, NULL, 1000, LEDGER_ADDED);
	add(f->l, "b", "1", NULL, NULL, 3000, LEDGER_ADDED);
	assert_int_equal(ledger_next_due(f->l, &at), 1);
	assert_int_equal(at, 1000);
	assert_int_equal(claim(f->l, 1000, 500, 8, ids, sizeof(ids)), 1);
	assert_int_equal(ledger_next_due(f->l, &at), 1);
	assert_int_equal(at, 1500);
	apply(f->l, "a", ST_GRANTED, "PURCHASED", EV_GRANT, 1200, 1000);
	assert_int_equal(ledger_next_due(f->l, &at), 1);
	assert_int_equal(at, 1200);	/* prio 1 can be the earliest */
	apply(f->l, "a", ST_REFUNDED, "REFUNDED", EV_REFUND, 0, 1100);
	apply(f->l, "b", ST_FAILED, "FAILED", EV_FAILED, 0, 1100);
	assert_int_equal(ledger_next_due(f->l, &at), 0);

	/* reschedule moves without counting; 0 parks the order. */
	assert_int_equal(ledger_get(f->l, "b", &o), 1);
	assert_int_equal(ledger_reschedule(f->l, &o, 4000), 0);
	assert_int_equal(ledger_get(f->l, "b", &o), 1);
	assert_int_equal(o.next_poll_at, 4000);
	assert_int_equal(o.polls, 1);
	assert_int_equal(o.updated_at, 1100);
	assert_int_equal(ledger_reschedule(f->l, &o, 0), 0);
	assert_int_equal(ledger_get(f->l, "b", &o), 1);
	assert_int_equal(o.next_poll_at, 0);

	assert_int_equal(ledger_recheck(f->l, "a", 7000), 1);
	assert_int_equal(ledger_recheck(f->l, "nope", 7000), 0);
	assert_int_equal(ledger_get(f->l, "a", &o), 1);
	assert_int_equal(o.next_poll_at, 7000);
	assert_int_equal(o.state, ST_REFUNDED);
	assert_int_equal(ledger_next_due(f->l, &at), 1);
	assert_int_equal(at, 7000);
	assert_int_equal(ledger_recheck_state(f->l, ST_FAILED, 6000), 1);
	assert_int_equal(ledger_recheck_state(f->l, ST_GRANTED, 6000), 0);
	assert_int_equal(ledger_next_due(f->l, &at), 1);
	assert_int_equal(at, 6000);
	assert_int_equal(claim(f->l, 7000, 10, 8, ids, sizeof(ids)), 2);
	assert_string_equal(ids, "a,b");
}

/* ---- transactions ---- */

static void
test_transaction(void **state)
{
	struct fixture		*f = *state;
	struct ledger_stats	 s;
	struct order		 o, gone;
	struct ledger_update	 u;
	char			 id[32];
	int			 i;

	assert_int_equal(ledger_commit(f->l), -1);
	assert_int_equal(ledger_begin(f->l), 0);
	assert_int_equal(ledger_begin(f->l), -1);
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "tx-%04d", i);
		add(f->l, id, "1", NULL, NULL, T0 + i, LEDGER_ADDED);
	}
	apply(f->l, "tx-0007", ST_GRANTED, "PURCHASED", EV_GRANT, 0, T0);
	assert_int_equal(ledger_get(f->l, "tx-0999", &o), 1);
	assert_int_equal(ledger_stats(f->l, T0, &s), 0);
	assert_int_equal(s.orders[ST_PENDING], 999);
	ledger_rollback(f->l);

	assert_int_equal(ledger_get(f->l, "tx-0999", &o), 0);
	assert_int_equal(ledger_stats(f->l, T0, &s), 0);
	for (i = 0; i < ST__COUNT; i++)
		assert_int_equal(s.orders[i], 0);
	assert_int_equal(s.events, 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM orders"), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM events"), 0);
	assert_counts_match(f);

	/* A failed operation inside a batch undoes only itself. */
	assert_int_equal(ledger_begin(f->l), 0);
	add(f->l, "k1", "1", NULL, NULL, T0, LEDGER_ADDED);
	memset(&gone, 0, sizeof(gone));
	util_strlcpy(gone.order_id, "gone", sizeof(gone.order_id));
	update_init(&u, ST_GRANTED, "PURCHASED", EV_GRANT, 0);
	assert_int_equal(ledger_apply(f->l, &gone, &u, T0), -1);
	add(f->l, "k2", "1", NULL, NULL, T0, LEDGER_ADDED);
	/* Not visible to another connection before the commit. */
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM orders"), 0);
	assert_int_equal(ledger_commit(f->l), 0);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM orders"), 2);
	assert_int_equal(ledger_get(f->l, "k2", &o), 1);
	assert_counts_match(f);
}

/* ---- query plans ---- */

static sqlite3	*captured_db;

/* Keeps the first connection opened: the ledger's own (ledger_open opens
 * helper connections after it). */
static int
capture_db(sqlite3 *db, char **errmsg, const struct sqlite3_api_routines *api)
{
	(void)errmsg;
	(void)api;
	if (captured_db == NULL)
		captured_db = db;
	return SQLITE_OK;
}

/* Opens f's ledger, keeping its connection in captured_db. */
static void
open_capturing(struct fixture *f)
{
	char	*err = NULL;

	captured_db = NULL;
	sqlite3_auto_extension((void (*)(void))capture_db);
	f->l = ledger_open(f->path, 0, &err);
	sqlite3_reset_auto_extension();
	if (f->l == NULL)
		fail_msg("ledger_open: %s", err);
	assert_non_null(captured_db);
}

/* The EXPLAIN QUERY PLAN details of sql, one per line, into buf. */
static void
query_plan(sqlite3 *db, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt	*st;
	char		*eqp;

	eqp = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", sql);
	assert_non_null(eqp);
	if (sqlite3_prepare_v2(db, eqp, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", eqp, sqlite3_errmsg(db));
	buf[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW) {
		strncat(buf, (const char *)sqlite3_column_text(st, 3),
		    size - strlen(buf) - 1);
		strncat(buf, "\n", size - strlen(buf) - 1);
	}
	sqlite3_finalize(st);
	sqlite3_free(eqp);
}

static void
test_query_plans(void **state)
{
	struct fixture	*f = *state;
	sqlite3_stmt	*st;
	char		 plan[2048];
	const char	*sql;
	int		 due_queries = 0;

	open_capturing(f);

	for (st = sqlite3_next_stmt(captured_db, NULL); st != NULL;
	    st = sqlite3_next_stmt(captured_db, st)) {
		sql = sqlite3_sql(st);
		query_plan(captured_db, sql, plan, sizeof(plan));
		/* No kept statement reads the whole orders table unindexed. */
		if (strstr(plan, "SCAN orders\n") != NULL)
			fail_msg("full scan: %s\n%s", sql, plan);
		if (strstr(sql, "prio =") == NULL)
			continue;
		/* Claim, next due, due count: index ranges only. */
		due_queries++;
		if (strstr(plan, "SCAN orders") != NULL ||
		    strstr(plan, "TEMP B-TREE") != NULL ||
		    strstr(plan, "SEARCH orders USING INDEX orders_due (prio=?") ==
		    NULL)
			fail_msg("not an index range: %s\n%s", sql, plan);
	}
	assert_int_equal(due_queries, 3);

	query_plan(captured_db, "SELECT MIN(added_at) FROM orders"
	    " WHERE state = 'pending'", plan, sizeof(plan));
	assert_string_equal(plan, "SEARCH orders USING COVERING INDEX"
	    " orders_state (state=?)\n");
}

/* ---- damage and errors ---- */

static void
assert_no_side_files(struct fixture *f)
{
	char	 p[160];
	size_t	 i;

	for (i = 1; i < sizeof(side_files) / sizeof(side_files[0]); i++) {
		fixture_path(f, side_files[i], p, sizeof(p));
		if (file_exists(p))
			fail_msg("%s was left behind", p);
	}
}

static void
test_refuse_foreign_wal(void **state)
{
	struct fixture	*f = *state;

	/* WAL mode: even reading it makes -wal and -shm files, and a
	 * read-only connection cannot remove them. */
	sql_exec(f->path, "PRAGMA journal_mode = WAL;"
	    " CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES ('keep')");
	assert_no_side_files(f);
	assert_refused(f, 1, "not a reconciled ledger");
	assert_no_side_files(f);
	assert_refused(f, 0, "not a reconciled ledger");
	assert_no_side_files(f);
	assert_int_equal(sql_int(f->path, "SELECT count(*) FROM notes"), 1);
}

static void
test_refuse_incomplete(void **state)
{
	struct fixture	*f = *state;
	const char	*want = "not a complete reconciled ledger: index"
	    " orders_due is missing; restore it from a backup";

	ledger_close(f->l);
	f->l = NULL;
	sql_exec(f->path, "DROP INDEX orders_due");
	assert_refused(f, 0, want);
	assert_refused(f, 1, want);
	sql_exec(f->path, "CREATE INDEX orders_due ON orders (prio,"
	    " next_poll_at) WHERE next_poll_at IS NOT NULL;"
	    " DROP TRIGGER events_count_insert");
	assert_refused(f, 0, "not a complete reconciled ledger: trigger"
	    " events_count_insert is missing; restore it from a backup");
	/* A column a migration added (which makes no object). */
	sql_exec(f->path, "CREATE TRIGGER events_count_insert AFTER INSERT"
	    " ON events BEGIN UPDATE event_counts SET n = n + 1"
	    " WHERE type = NEW.type; END;"
	    " ALTER TABLE orders DROP COLUMN late_answers");
	want = "not a complete reconciled ledger: column orders.late_answers"
	    " is missing; restore it from a backup";
	assert_refused(f, 0, want);
	assert_refused(f, 1, want);
}

/* Overwrites page pgno (1-based) of the closed ledger with zeros. */
static void
zero_page(struct fixture *f, int64_t pgno)
{
	int64_t	 size = sql_int(f->path, "PRAGMA page_size");
	char	*zeros;
	int	 fd;

	zeros = calloc(1, (size_t)size);
	assert_non_null(zeros);
	fd = open(f->path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, zeros, (size_t)size, (pgno - 1) * size),
	    size);
	assert_int_equal(close(fd), 0);
	free(zeros);
}

/* A ledger of n orders (several pages), closed. */
static void
make_ledger(struct fixture *f, int n)
{
	char	 id[32], ref[200];
	int	 i;

	memset(ref, 'r', sizeof(ref) - 1);
	ref[sizeof(ref) - 1] = '\0';
	assert_int_equal(ledger_begin(f->l), 0);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "dmg-%04d", i);
		add(f->l, id, "1001", NULL, ref, T0 + i, LEDGER_ADDED);
	}
	assert_int_equal(ledger_commit(f->l), 0);
	ledger_close(f->l);
	f->l = NULL;
	assert_no_side_files(f);
}

static void
test_refuse_damaged_schema(void **state)
{
	struct fixture	*f = *state;
	char		*err = NULL, want[256];
	int		 fd;

	make_ledger(f, 50);
	/* Page 1 past its 100-byte header: the schema table's root. */
	fd = open(f->path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\377\377\377\377\377\377\377\377", 8,
	    100), 8);
	assert_int_equal(close(fd), 0);
	snprintf(want, sizeof(want), "ledger %s is damaged: database disk"
	    " image is malformed", f->path);
	f->l = ledger_open(f->path, 0, &err);
	assert_null(f->l);
	assert_string_equal(err, want);
	free(err);
	err = NULL;
	assert_no_side_files(f);
	f->l = ledger_open(f->path, 1, &err);
	assert_null(f->l);
	assert_string_equal(err, want);
	free(err);
	err = NULL;
	assert_no_side_files(f);
}

static int	damaged_calls;

static void
count_damaged(void *arg)
{
	(void)arg;
	damaged_calls++;
}

static void
test_quick_check(void **state)
{
	struct fixture	*f = *state;
	struct order	 o[4];
	char		*err = NULL, *before, *after, want[256];
	size_t		 blen, alen;

	/* A sound ledger passes. */
	assert_int_equal(ledger_quick_check(f->l, &err), 0);
	assert_null(err);
	assert_null(ledger_damaged(f->l));

	make_ledger(f, 300);
	zero_page(f, sql_int(f->path, "SELECT rootpage FROM sqlite_schema"
	    " WHERE name = 'orders'"));
	before = slurp(f->path, &blen);

	/* A data page is not read by the open: the open succeeds... */
	f->l = ledger_open(f->path, 0, &err);
	if (f->l == NULL)
		fail_msg("ledger_open: %s", err);
	assert_null(ledger_damaged(f->l));
	/* ... and quick_check finds it. */
	assert_int_equal(ledger_quick_check(f->l, &err), -1);
	assert_non_null(err);
	snprintf(want, sizeof(want), "ledger %s is damaged: ", f->path);
	if (strncmp(err, want, strlen(want)) != 0 ||
	    strlen(err) == strlen(want) || strchr(err, '\n') != NULL)
		fail_msg("quick_check: %s", err);
	free(err);
	assert_non_null(ledger_damaged(f->l));
	ledger_close(f->l);
	f->l = NULL;

	/* At run time: the claim reads the page, fails for good, and the
	 * callback hears of it once, whatever follows. */
	f->l = ledger_open(f->path, 0, &err);
	if (f->l == NULL)
		fail_msg("ledger_open: %s", err);
	damaged_calls = 0;
	ledger_set_damaged_cb(f->l, count_damaged, NULL);
	assert_int_equal(ledger_claim_due(f->l, T0 + 1000, 10, o, 4), -1);
	assert_int_equal(damaged_calls, 1);
	assert_int_equal(ledger_errcode(f->l) & 0xff, SQLITE_CORRUPT);
	assert_string_equal(ledger_errmsg(f->l),
	    "database disk image is malformed");
	assert_string_equal(ledger_damaged(f->l),
	    "database disk image is malformed");
	assert_int_equal(ledger_claim_due(f->l, T0 + 1000, 10, o, 4), -1);
	assert_int_equal(ledger_get(f->l, "dmg-0001", &o[0]), -1);
	assert_int_equal(damaged_calls, 1);
	ledger_close(f->l);
	f->l = NULL;

	/* None of it wrote to the file or left anything next to it. */
	after = slurp(f->path, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(after, before, blen);
	free(before);
	free(after);
	assert_no_side_files(f);
}

/* A failed write reports SQLite's cause, not the "not an error" that the
 * rollback after it leaves in the connection. */
static void
test_errmsg_kept(void **state)
{
	struct fixture		*f = *state;
	struct order		 o;
	enum ledger_add_result	 res;
	char			 id[32], ref[1000], sql[64];
	int			 i, rc = 0;

	open_capturing(f);
	assert_null(ledger_damaged(f->l));

	/* No room for one more page: the next insert that needs one fails
	 * half way through its transaction. */
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
	    (long long)sql_int(f->path, "PRAGMA page_count") + 1);
	assert_int_equal(sqlite3_exec(captured_db, sql, NULL, NULL, NULL),
	    SQLITE_OK);
	memset(ref, 'r', sizeof(ref) - 1);
	ref[sizeof(ref) - 1] = '\0';
	for (i = 0; i < 1000 && rc == 0; i++) {
		snprintf(id, sizeof(id), "full-%04d", i);
		rc = ledger_add(f->l, id, "1", NULL, ref, T0, &res);
	}
	assert_int_equal(rc, -1);
	assert_true(i > 1);
	assert_string_equal(ledger_errmsg(f->l), "database or disk is full");
	assert_int_equal(ledger_errcode(f->l) & 0xff, SQLITE_FULL);
	/* Not damage: it may pass. */
	assert_null(ledger_damaged(f->l));
	/* The rollback happened: nothing of the failed add is there. */
	assert_int_equal(sqlite3_get_autocommit(captured_db), 1);

	/* A later success forgets the cause; the ledger's own findings are
	 * reported the same way. */
	assert_int_equal(ledger_get(f->l, "full-0000", &o), 1);
	assert_int_equal(ledger_errcode(f->l), 0);
	assert_int_equal(ledger_commit(f->l), -1);
	assert_string_equal(ledger_errmsg(f->l),
	    "commit: no transaction is open");
}

/* ---- what the console asks ---- */

#define COLLECT_MAX	512	/* the size of the buffers below */

static int
collect_ids(const struct order *o, void *arg)
{
	char	*buf = arg;
	size_t	 n = strlen(buf);

	snprintf(buf + n, COLLECT_MAX - n, "%s%s", n > 0 ? "," : "",
	    o->order_id);
	return 0;
}

static int
collect_held(const struct ledger_held *h, void *arg)
{
	struct ledger_held	*out = arg;

	out[out[0].count == 0 ? 0 : 1] = *h;
	return 0;
}

static int
collect_transition(int64_t at, const char *from, const char *to, void *arg)
{
	char	*buf = arg;
	size_t	 n = strlen(buf);

	snprintf(buf + n, COLLECT_MAX - n, "%lld:%s>%s;", (long long)(at - T0),
	    from != NULL ? from : "-", to);
	return 0;
}

static int
count_events(int64_t id, const char *payload, void *arg)
{
	(void)id;
	assert_true(*payload == '{');
	(*(int *)arg)++;
	return 0;
}

static void
test_console_queries(void **state)
{
	struct fixture		*f = *state;
	struct ledger_held	 h[2];
	char			 buf[COLLECT_MAX];
	int64_t			 counts[3];
	int			 n;

	add(f->l, "a", "u1", NULL, "r1", T0, LEDGER_ADDED);
	add(f->l, "b", "u1", NULL, NULL, T0 + 1, LEDGER_ADDED);
	add(f->l, "c", "u2", NULL, NULL, T0 + 2, LEDGER_ADDED);
	add(f->l, "c:x", "u3", NULL, NULL, T0 + 3, LEDGER_ADDED);
	apply(f->l, "a", ST_HELD, "NEW_STATUS", EV_HELD, T0 + 9000, T0 + 1000);
	apply(f->l, "c:x", ST_HELD, "NEW_STATUS", EV_HELD, T0 + 9000, T0 + 2000);
	apply(f->l, "a", ST_HELD, "NEW_STATUS", EV_NONE, T0 + 9000, T0 + 3000);
	apply(f->l, "b", ST_GRANTED, "PURCHASED", EV_GRANT, T0 + 9000,
	    T0 + 3600000 + 5);

	/* By userKey (newest first), by ref, by orderId, nothing. */
	buf[0] = '\0';
	assert_int_equal(ledger_search(f->l, "u1", 50, collect_ids, buf), 0);
	assert_string_equal(buf, "b,a");
	buf[0] = '\0';
	assert_int_equal(ledger_search(f->l, "r1", 50, collect_ids, buf), 0);
	assert_string_equal(buf, "a");
	buf[0] = '\0';
	assert_int_equal(ledger_search(f->l, "c", 50, collect_ids, buf), 0);
	assert_string_equal(buf, "c");
	buf[0] = '\0';
	assert_int_equal(ledger_search(f->l, "u1", 1, collect_ids, buf), 0);
	assert_string_equal(buf, "b");
	buf[0] = '\0';
	assert_int_equal(ledger_search(f->l, "zzz", 50, collect_ids, buf), 0);
	assert_string_equal(buf, "");

	/* One group: first seen when the status came, last update, example. */
	memset(h, 0, sizeof(h));
	assert_int_equal(ledger_held(f->l, collect_held, h), 0);
	assert_string_equal(h[0].toss_status, "NEW_STATUS");
	assert_int_equal(h[0].count, 2);
	assert_int_equal(h[0].first_seen, T0 + 1000);
	assert_int_equal(h[0].last_seen, T0 + 3000);
	assert_string_equal(h[0].example, "a");
	assert_int_equal(h[1].count, 0);

	buf[0] = '\0';
	assert_int_equal(ledger_transitions(f->l, "a", collect_transition, buf),
	    0);
	assert_string_equal(buf, "1000:->NEW_STATUS;");

	/* "c" has no event although "c:x" (whose keys start "c:") has one. */
	n = 0;
	assert_int_equal(ledger_order_events(f->l, "c", count_events, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(ledger_order_events(f->l, "c:x", count_events, &n), 0);
	assert_int_equal(n, 1);

	/* Two events in the first hour, the grant in the second. */
	assert_int_equal(ledger_history(f->l, T0, 3600000, counts, 3), 0);
	assert_int_equal(counts[0], 2);
	assert_int_equal(counts[1], 1);
	assert_int_equal(counts[2], 0);

	buf[0] = '\0';
	assert_int_equal(ledger_anomalies(f->l, 10, collect_ids, buf), 0);
	assert_string_equal(buf, "");
}

static void
test_console_json(void **state)
{
	struct json_object	*obj;
	char			*s;

	(void)state;
	obj = json_out_held("NEW_STATUS", 2, T0, T0 + 1000, "a");
	s = json_out_string(obj);
	assert_string_equal(s, "{\"tossStatus\":\"NEW_STATUS\",\"count\":2,"
	    "\"firstSeen\":\"2026-11-28T01:30:00.123Z\","
	    "\"lastSeen\":\"2026-11-28T01:30:01.123Z\",\"example\":\"a\","
	    "\"section\":\"[status]\",\"configLine\":\"NEW_STATUS = grant\"}");
	free(s);
	json_object_put(obj);
	obj = json_out_transition(T0, NULL, "PURCHASED");
	s = json_out_string(obj);
	assert_string_equal(s, "{\"at\":\"2026-11-28T01:30:00.123Z\","
	    "\"from\":null,\"to\":\"PURCHASED\"}");
	free(s);
	json_object_put(obj);
}

/* A URL's password never reaches a message: ledger_name() masks it. */
static void
test_name_masks_password(void **state)
{
	static const char *const cases[][2] = {
		{ "/var/lib/reconciled/ledger.db", "/var/lib/reconciled/ledger.db" },
		{ "/srv/a:b@c://d", "/srv/a:b@c://d" },
		{ "postgresql://db/ledger", "postgresql://db/ledger" },
		{ "postgresql://u@db/ledger", "postgresql://u@db/ledger" },
		{ "postgresql://u:secret@db:5432/ledger",
		    "postgresql://u:***@db:5432/ledger" },
		{ "postgresql://u:p@ss@db/l", "postgresql://u:***@db/l" },
		{ "postgresql:///l?host=/run/pg&password=secret&sslmode=require",
		    "postgresql:///l?host=/run/pg&password=***&sslmode=require" },
		{ "postgres://u:a@/l?password=b", "postgres://u:***@/l?password=***" },
		{ "postgresql://u:@db/l", "postgresql://u:***@db/l" },
	};
	char	*name;
	size_t	 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		name = ledger_name(cases[i][0]);
		assert_string_equal(name, cases[i][1]);
		free(name);
	}
}

/* ---- copying a ledger ---- */

struct rows_text {
	char	 buf[16384];
	size_t	 len;
};

/* Appends a row as "v1|v2|...\n", NULL as "\N". */
static int
rows_append(const struct ledger_row *row, void *arg)
{
	struct rows_text	*t = arg;
	int			 i, r;

	for (i = 0; i < row->n; i++) {
		r = snprintf(t->buf + t->len, sizeof(t->buf) - t->len, "%s%s",
		    i > 0 ? "|" : "", row->v[i] != NULL ? row->v[i] : "\\N");
		assert_true(r >= 0 && (size_t)r < sizeof(t->buf) - t->len);
		t->len += (size_t)r;
	}
	assert_true(t->len + 1 < sizeof(t->buf));
	t->buf[t->len++] = '\n';
	t->buf[t->len] = '\0';
	return 0;
}

struct copy_to {
	struct ledger	*to;
	enum ledger_table t;
};

static int
copy_row(const struct ledger_row *row, void *arg)
{
	struct copy_to	*c = arg;

	return ledger_load(c->to, c->t, row);
}

static void
test_copy(void **state)
{
	struct fixture		*f = *state;
	struct ledger		*to, *ro;
	struct ledger_update	 u;
	struct ledger_stats	 a, b;
	struct ledger_row	 row;
	struct copy_to		 c;
	struct rows_text	 x, y;
	struct order		 o;
	char			 path[160], p[176], *err = NULL;
	int64_t			 was, n, m;
	size_t			 i;
	int			 t;

	add(f->l, "c-1", "u1", "ait.A", "ref-1", T0, LEDGER_ADDED);
	add(f->l, "c-2", "u2", NULL, NULL, T0 + 1, LEDGER_ADDED);
	add(f->l, "c-3", "u3", "ait.B", NULL, T0 + 2, LEDGER_ADDED);
	apply(f->l, "c-1", ST_GRANTED, "PAYMENT_COMPLETED", EV_GRANT, T0 + 9000,
	    T0 + 10);
	apply(f->l, "c-1", ST_REFUNDED, "REFUNDED", EV_REFUND, 0, T0 + 20);
	apply(f->l, "c-2", ST_HELD, "WEIRD", EV_HELD, T0 + 5000, T0 + 30);
	/* Toss names another sku than the intake's: counted. */
	assert_int_equal(ledger_get(f->l, "c-3", &o), 1);
	update_init(&u, ST_MISMATCH, "PAYMENT_COMPLETED", EV_MISMATCH, 0);
	u.sku = "ait.C";
	u.sku_mismatch = 1;
	assert_int_equal(ledger_apply(f->l, &o, &u, T0 + 40), 0);
	assert_int_equal(ledger_cursor_advance(f->l, "jsonl", 0, 4), 0);
	assert_int_equal(ledger_replay(f->l, "jsonl", 3, "alice", T0 + 50,
	    &was), LEDGER_REPLAY_MOVED);
	assert_int_equal(ledger_sink_state(f->l, "jsonl", "retrying", "EIO",
	    T0 + 60), 0);

	assert_true(snprintf(path, sizeof(path), "%s/copy.db", f->dir) > 0);
	to = ledger_open(path, 0, &err);
	if (to == NULL)
		fail_msg("ledger_open: %s", err);
	assert_int_equal(ledger_begin(to), 0);
	for (t = 0; t < LT__COUNT; t++) {
		c.to = to;
		c.t = (enum ledger_table)t;
		assert_int_equal(ledger_dump(f->l, c.t, copy_row, &c), 0);
	}
	assert_int_equal(ledger_commit(to), 0);

	/* Every table row for row, and the counts the triggers keep. */
	for (t = 0; t < LT__COUNT; t++) {
		memset(&x, 0, sizeof(x));
		memset(&y, 0, sizeof(y));
		assert_int_equal(ledger_dump(f->l, (enum ledger_table)t,
		    rows_append, &x), 0);
		assert_int_equal(ledger_dump(to, (enum ledger_table)t,
		    rows_append, &y), 0);
		assert_string_equal(x.buf, y.buf);
		assert_int_equal(ledger_count(f->l, (enum ledger_table)t, &n),
		    0);
		assert_int_equal(ledger_count(to, (enum ledger_table)t, &m), 0);
		assert_int_equal(n, m);
	}
	assert_true(strstr(x.buf, "sku_mismatch|1\n") != NULL);
	assert_int_equal(ledger_stats(f->l, T0, &a), 0);
	assert_int_equal(ledger_stats(to, T0, &b), 0);
	assert_int_equal(a.last_event_id, 4);
	assert_int_equal(b.last_event_id, 4);
	assert_int_equal(b.sku_mismatches, 1);
	for (i = 0; i < ST__COUNT; i++)
		assert_int_equal(a.orders[i], b.orders[i]);
	for (i = 0; i < EV__COUNT; i++)
		assert_int_equal(a.events_by_type[i], b.events_by_type[i]);

	/* The next event follows the last one copied. */
	apply(to, "c-2", ST_GRANTED, "PAYMENT_COMPLETED", EV_GRANT, 0, T0 + 70);
	assert_int_equal(ledger_stats(to, T0, &b), 0);
	assert_int_equal(b.last_event_id, 5);
	ledger_close(to);

	/* Not into a ledger open read-only; a row of the wrong width. */
	ro = ledger_open(path, 1, &err);
	if (ro == NULL)
		fail_msg("ledger_open: %s", err);
	row.n = 2;
	row.v[0] = "x";
	row.v[1] = "1";
	assert_int_equal(ledger_load(ro, LT_COUNTERS, &row), -1);
	ledger_close(ro);
	assert_int_equal(ledger_load(f->l, LT_EVENTS, &row), -1);
	/* A counter is set, not added. */
	row.v[0] = "sku_mismatch";
	row.v[1] = "7";
	assert_int_equal(ledger_load(f->l, LT_COUNTERS, &row), 0);
	assert_int_equal(ledger_stats(f->l, T0, &a), 0);
	assert_int_equal(a.sku_mismatches, 7);

	for (i = 0; i < sizeof(side_files) / sizeof(side_files[0]); i++) {
		assert_true(snprintf(p, sizeof(p), "%s%s", path,
		    side_files[i]) > 0);
		unlink(p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_masks_password),
		cmocka_unit_test_setup_teardown(test_copy, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_open_fresh, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_newer, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_text, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_foreign, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_open_empty_file, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_open_missing_dir, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_add_get, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_foreach, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_claim_priority, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_claim_lease, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_apply_each_event, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_event_once, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_payload_exact, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_order_json, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_transitions, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_sku_apply, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_1, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_apply_fields, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_cursors, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_replay, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_stats, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_next_due_recheck, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_transaction, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_query_plans, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_foreign_wal, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_incomplete, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_refuse_damaged_schema, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_quick_check, setup_open, teardown),
		cmocka_unit_test_setup_teardown(test_errmsg_kept, setup_dir, teardown),
		cmocka_unit_test_setup_teardown(test_console_queries, setup_open, teardown),
		cmocka_unit_test(test_console_json),
	};

	log_init("test_ledger", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
