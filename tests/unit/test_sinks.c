/* Unit tests of the event sinks: Standard Webhooks signing and secrets
 * (src/sink-webhook.c, pure parts), the JSONL sink against a temp ledger
 * (src/sink-jsonl.c), and the webhook sink end to end through fetch against
 * tests/integration/webhook-recv.py (skipped without python3). */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "config.h"
#include "fetch.h"
#include "ledger.h"
#include "log.h"
#include "sink-jsonl.h"
#include "sink-webhook.h"
#include "util.h"

#define T0		1795829400123LL		/* 2026-11-28T01:30:00.123Z */
#define SECRET		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define OTHER_SECRET	"whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"
#define SCRIPT		"tests/integration/webhook-recv.py"

/* The events of the ledger, as ledger_events() hands them out. */
struct evlist {
	int		 n;
	int64_t		*ids;
	char		**payloads;
	char		**keys;
};

struct fixture {
	char			 dir[64];
	char			 ledger[128];
	char			 jsonl[128];
	char			 capture[128];
	char			 rlog[128];	/* the receiver's log */
	char			 rmode[128];	/* its mode file */
	char			 rport[128];	/* its port file */
	struct ledger		*l;
	struct event_base	*base;
	struct event		*tick;
	struct fetch		*fetch;
	struct config		*cfg;
	int			 nextorder;
	int			 saved_stderr;
	pid_t			 recv_pid;
	int			 port;
	int			 no_receiver;	/* python3 or the script missing */
};

/* ---- helpers ---- */

static void
pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list	 ap;
	int	 r;

	va_start(ap, fmt);
	r = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	assert_true(r > 0 && (size_t)r < size);
}

/* Reads a whole file; caller frees. NULL if it does not exist. */
static char *
slurp(const char *path, size_t *len)
{
	struct stat	 sb;
	char		*buf;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY)) == -1) {
		assert_int_equal(errno, ENOENT);
		*len = 0;
		return NULL;
	}
	assert_int_equal(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	assert_non_null(buf);
	n = read(fd, buf, (size_t)sb.st_size);
	assert_int_equal(n, sb.st_size);
	buf[n] = '\0';
	close(fd);
	*len = (size_t)n;
	return buf;
}

static void
spew(const char *path, const char *data, size_t len)
{
	char	 tmp[160];
	int	 fd;

	/* Atomically, as the receiver may read it at any moment. */
	pathf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static int
count_str(const char *hay, const char *needle)
{
	int	 n = 0;

	while (hay != NULL && (hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

/* Sends stderr (the log) to a file until capture_end, which returns what
 * was written (caller frees). */
static void
capture_start(struct fixture *f)
{
	int	 fd;

	fflush(stderr);
	f->saved_stderr = dup(2);
	assert_true(f->saved_stderr >= 0);
	fd = open(f->capture, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
}

static char *
capture_end(struct fixture *f)
{
	char	*s;
	size_t	 len;

	fflush(stderr);
	assert_int_equal(dup2(f->saved_stderr, 2), 2);
	close(f->saved_stderr);
	f->saved_stderr = -1;
	s = slurp(f->capture, &len);
	if (s != NULL && log_getverbose() > 0)
		fputs(s, stderr);	/* debugging: show what was caught */
	return s != NULL ? s : strdup("");
}

/* Adds one order, granted with a grant event. */
static void
add_granted(struct fixture *f, const char *id, int64_t now)
{
	enum ledger_add_result	 res;
	struct ledger_update	 u;
	struct order		 o;

	assert_int_equal(ledger_add(f->l, id, "443731104", NULL, NULL, T0,
	    &res), 0);
	assert_int_equal(res, LEDGER_ADDED);
	assert_int_equal(ledger_get(f->l, id, &o), 1);
	memset(&u, 0, sizeof(u));
	u.new_state = ST_GRANTED;
	u.status_seen = 1;
	u.toss_status = "PAYMENT_COMPLETED";
	u.reason = "결제가 완료되었어요.";
	u.determined_at = "2025-09-25T16:30:26+09:00";
	u.count_poll = 1;
	u.granted_at = T0;
	u.event = EV_GRANT;
	assert_int_equal(ledger_apply(f->l, &o, &u, now), 0);
}

/* Adds n orders, each granted with a grant event. */
static void
make_events(struct fixture *f, int n)
{
	char	 id[32];
	int	 i;

	for (i = 0; i < n; i++) {
		pathf(id, sizeof(id), "ord-%04d", f->nextorder++);
		add_granted(f, id, T0 + i);
	}
}

static int
collect_event(int64_t id, const char *payload, void *arg)
{
	struct evlist		*e = arg;
	struct json_object	*obj, *v;

	e->ids = realloc(e->ids, (size_t)(e->n + 1) * sizeof(*e->ids));
	e->payloads = realloc(e->payloads, (size_t)(e->n + 1) * sizeof(char *));
	e->keys = realloc(e->keys, (size_t)(e->n + 1) * sizeof(char *));
	assert_non_null(e->ids);
	assert_non_null(e->payloads);
	assert_non_null(e->keys);
	e->ids[e->n] = id;
	e->payloads[e->n] = strdup(payload);
	obj = json_tokener_parse(payload);
	assert_non_null(obj);
	assert_true(json_object_object_get_ex(obj, "key", &v));
	e->keys[e->n] = strdup(json_object_get_string(v));
	json_object_put(obj);
	e->n++;
	return 0;
}

static void
load_events(struct fixture *f, struct evlist *e)
{
	memset(e, 0, sizeof(*e));
	assert_true(ledger_events(f->l, 0, 100000, collect_event, e) >= 0);
}

static void
evlist_free(struct evlist *e)
{
	int	 i;

	for (i = 0; i < e->n; i++) {
		free(e->payloads[i]);
		free(e->keys[i]);
	}
	free(e->ids);
	free(e->payloads);
	free(e->keys);
	memset(e, 0, sizeof(*e));
}

/* The JSONL file events first..last (inclusive) should make. Caller frees. */
static char *
expected_lines(const struct evlist *e, int first, int last)
{
	size_t	 len = 0, n;
	char	*buf;
	int	 i;

	for (i = first; i <= last; i++)
		len += strlen(e->payloads[i]) + 1;
	buf = malloc(len + 1);
	assert_non_null(buf);
	len = 0;
	for (i = first; i <= last; i++) {
		n = strlen(e->payloads[i]);
		memcpy(buf + len, e->payloads[i], n);
		len += n;
		buf[len++] = '\n';
	}
	buf[len] = '\0';
	return buf;
}

static void
assert_file_equals(const char *path, const char *want)
{
	char	*got;
	size_t	 len;

	got = slurp(path, &len);
	assert_non_null(got);
	assert_int_equal(len, strlen(want));
	assert_string_equal(got, want);
	free(got);
}

static int64_t
cursor(struct fixture *f, const char *sink)
{
	int64_t	 id = -1;

	assert_int_equal(ledger_cursor_get(f->l, sink, &id), 0);
	return id;
}

static void
tick_event(evutil_socket_t fd, short kind, void *arg)
{
}

/* Runs the loop until pred says yes (1) or timeout_ms passes (0). */
static int
run_until(struct fixture *f, int (*pred)(struct fixture *, void *), void *arg,
    int64_t timeout_ms)
{
	int64_t	 deadline = util_mono_ms() + timeout_ms;

	for (;;) {
		if (pred != NULL && pred(f, arg))
			return 1;
		if (util_mono_ms() >= deadline)
			return 0;
		event_base_loop(f->base, EVLOOP_ONCE);
	}
}

/* ---- fixtures ---- */

static int
setup(void **state)
{
	struct fixture	*f;
	struct timeval	 tv = { 0, 10000 };
	char		*err = NULL;

	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->saved_stderr = -1;
	f->recv_pid = -1;
	util_strlcpy(f->dir, "/tmp/test_sinks.XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	pathf(f->ledger, sizeof(f->ledger), "%s/ledger.db", f->dir);
	pathf(f->jsonl, sizeof(f->jsonl), "%s/events.jsonl", f->dir);
	pathf(f->capture, sizeof(f->capture), "%s/stderr", f->dir);
	pathf(f->rlog, sizeof(f->rlog), "%s/recv.log", f->dir);
	pathf(f->rmode, sizeof(f->rmode), "%s/recv.mode", f->dir);
	pathf(f->rport, sizeof(f->rport), "%s/recv.port", f->dir);
	if ((f->l = ledger_open(f->ledger, 0, &err)) == NULL)
		fail_msg("ledger_open: %s", err);
	f->base = event_base_new();
	assert_non_null(f->base);
	/* Keeps EVLOOP_ONCE from sleeping long in run_until. */
	f->tick = event_new(f->base, -1, EV_PERSIST, tick_event, NULL);
	assert_non_null(f->tick);
	assert_int_equal(event_add(f->tick, &tv), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;
	static const char *const names[] = {
		"ledger.db", "ledger.db-wal", "ledger.db-shm",
		"ledger.db-journal", "events.jsonl", "stderr", "recv.log",
		"recv.mode", "recv.mode.tmp", "recv.port", "recv.port.tmp",
		"fifo", "ro.jsonl", NULL
	};
	char		 p[160];
	int		 i, status;

	if (f->saved_stderr != -1)
		free(capture_end(f));	/* a test failed while capturing */
	if (f->recv_pid > 0) {
		kill(f->recv_pid, SIGTERM);
		waitpid(f->recv_pid, &status, 0);
	}
	fetch_free(f->fetch);
	config_free(f->cfg);
	event_free(f->tick);
	event_base_free(f->base);
	ledger_close(f->l);
	for (i = 0; names[i] != NULL; i++) {
		pathf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
	return 0;
}

/* python3 on PATH? */
static int
have_python3(void)
{
	const char	*path = getenv("PATH");
	char		*copy, *dir, *next, p[4096];
	int		 found = 0;

	if (path == NULL)
		return 0;
	copy = strdup(path);
	assert_non_null(copy);
	for (dir = copy; dir != NULL && !found; dir = next) {
		if ((next = strchr(dir, ':')) != NULL)
			*next++ = '\0';
		if (snprintf(p, sizeof(p), "%s/python3", *dir ? dir : ".") <
		    (int)sizeof(p) && access(p, X_OK) == 0)
			found = 1;
	}
	free(copy);
	return found;
}

/* Where webhook-recv.py is: $top_srcdir (make check), else next to this
 * file's source. */
static int
script_path(char *buf, size_t size)
{
	const char	*top = getenv("top_srcdir");
	const char	*me = __FILE__, *cut;
	int		 r;

	if (top != NULL && *top != '\0')
		r = snprintf(buf, size, "%s/%s", top, SCRIPT);
	else if ((cut = strstr(me, "tests/unit/test_sinks.c")) != NULL)
		r = snprintf(buf, size, "%.*s%s", (int)(cut - me), me, SCRIPT);
	else
		return -1;
	if (r < 0 || (size_t)r >= size)
		return -1;
	return access(buf, R_OK) == 0 ? 0 : -1;
}

/* Starts the receiver, a fetch and a config pointing at it. */
static int
setup_webhook(void **state)
{
	struct fixture	*f;
	char		 script[4096], *err = NULL, *s;
	size_t		 len;
	int64_t		 port, deadline;
	int		 status, fd;

	setup(state);
	f = *state;
	if (!have_python3() || script_path(script, sizeof(script)) == -1) {
		f->no_receiver = 1;
		return 0;
	}
	if ((f->fetch = fetch_new(f->base, &err)) == NULL)
		fail_msg("fetch_new: %s", err);
	f->recv_pid = fork();
	assert_true(f->recv_pid >= 0);
	if (f->recv_pid == 0) {
		if ((fd = open("/dev/null", O_RDWR)) != -1)
			dup2(fd, 0);
		execlp("python3", "python3", script, "--secret", SECRET,
		    "--log", f->rlog, "--port-file", f->rport, "--mode-file",
		    f->rmode, "--stall-max", "30", (char *)NULL);
		_exit(127);
	}
	deadline = util_mono_ms() + 15000;
	while ((s = slurp(f->rport, &len)) == NULL) {
		if (waitpid(f->recv_pid, &status, WNOHANG) == f->recv_pid) {
			f->recv_pid = -1;
			fail_msg("webhook-recv.py exited before listening");
		}
		if (util_mono_ms() > deadline)
			fail_msg("webhook-recv.py did not write its port");
		usleep(20000);
	}
	while (len > 0 && s[len - 1] == '\n')
		s[--len] = '\0';
	assert_int_equal(util_parse_int64(s, 1, 65535, &port), 0);
	free(s);
	f->port = (int)port;

	f->cfg = config_default();
	f->cfg->webhook_url = xasprintf("http://127.0.0.1:%d/hook", f->port);
	f->cfg->webhook_secret = xstrdup(SECRET);
	f->cfg->webhook_timeout_ms = 2000;
	return 0;
}

/* ---- the receiver's log ---- */

struct rec {
	char	*id;
	char	*body;
	char	*answer;
	char	*content_type;
	char	*user_agent;
	int	 valid;
	int64_t	 timestamp;
	double	 at;
};

struct recs {
	int		 n;
	struct rec	*r;
};

static char *
rec_str(struct json_object *obj, const char *name)
{
	struct json_object	*v;

	assert_true(json_object_object_get_ex(obj, name, &v));
	if (json_object_is_type(v, json_type_null))
		return strdup("");
	return strdup(json_object_get_string(v));
}

static void
recs_load(struct fixture *f, struct recs *rs)
{
	struct json_object	*obj, *v;
	struct rec		*r;
	char			*buf, *line, *nl;
	size_t			 len;

	memset(rs, 0, sizeof(*rs));
	if ((buf = slurp(f->rlog, &len)) == NULL)
		return;
	for (line = buf; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			break;	/* being written */
		*nl = '\0';
		obj = json_tokener_parse(line);
		assert_non_null(obj);
		rs->r = realloc(rs->r, (size_t)(rs->n + 1) * sizeof(*rs->r));
		assert_non_null(rs->r);
		r = &rs->r[rs->n++];
		r->id = rec_str(obj, "id");
		r->body = rec_str(obj, "body");
		r->answer = rec_str(obj, "answer");
		r->content_type = rec_str(obj, "content_type");
		r->user_agent = rec_str(obj, "user_agent");
		assert_true(json_object_object_get_ex(obj, "valid", &v));
		r->valid = json_object_get_boolean(v);
		assert_true(json_object_object_get_ex(obj, "timestamp", &v));
		r->timestamp = json_object_get_int64(v);
		assert_true(json_object_object_get_ex(obj, "at", &v));
		r->at = json_object_get_double(v);
		json_object_put(obj);
	}
	free(buf);
}

static void
recs_free(struct recs *rs)
{
	int	 i;

	for (i = 0; i < rs->n; i++) {
		free(rs->r[i].id);
		free(rs->r[i].body);
		free(rs->r[i].answer);
		free(rs->r[i].content_type);
		free(rs->r[i].user_agent);
	}
	free(rs->r);
	memset(rs, 0, sizeof(*rs));
}

static int
recs_count(struct fixture *f, const char *id, const char *answer)
{
	struct recs	 rs;
	int		 i, n = 0;

	recs_load(f, &rs);
	for (i = 0; i < rs.n; i++) {
		if ((id == NULL || strcmp(rs.r[i].id, id) == 0) &&
		    (answer == NULL || strcmp(rs.r[i].answer, answer) == 0))
			n++;
	}
	recs_free(&rs);
	return n;
}

/* Every record for event i carries its key, its exact payload and a valid
 * signature; returns how many there are. */
static int
recs_check_event(struct fixture *f, const struct evlist *e, int i)
{
	struct recs	 rs;
	int64_t		 now = util_now_ms() / 1000;
	int		 j, n = 0;

	recs_load(f, &rs);
	for (j = 0; j < rs.n; j++) {
		if (strcmp(rs.r[j].id, e->keys[i]) != 0)
			continue;
		n++;
		assert_string_equal(rs.r[j].body, e->payloads[i]);
		assert_true(rs.r[j].valid);
		assert_string_equal(rs.r[j].content_type, "application/json");
		assert_string_equal(rs.r[j].user_agent,
		    "reconciled/" PACKAGE_VERSION);
		assert_true(rs.r[j].timestamp > now - 60 &&
		    rs.r[j].timestamp <= now + 1);
	}
	recs_free(&rs);
	return n;
}

/* ---- predicates for run_until ---- */

struct wh_wait {
	struct sink_webhook	*s;
	int64_t			 cursor;
	const char		*id;
	int			 n;
	uint64_t		 failures;
};

static int
wh_cursor_is(struct fixture *f, void *arg)
{
	struct wh_wait			*w = arg;
	struct sink_webhook_stats	 st;

	sink_webhook_get_stats(w->s, &st);
	return st.delivered_id == w->cursor && st.inflight == 0;
}

static int
wh_failures_reach(struct fixture *f, void *arg)
{
	struct wh_wait			*w = arg;
	struct sink_webhook_stats	 st;

	sink_webhook_get_stats(w->s, &st);
	return st.failures >= w->failures;
}

static int
wh_disabled_idle(struct fixture *f, void *arg)
{
	struct wh_wait			*w = arg;
	struct sink_webhook_stats	 st;

	sink_webhook_get_stats(w->s, &st);
	return st.disabled && st.inflight == 0;
}

static int
recs_reach(struct fixture *f, void *arg)
{
	struct wh_wait	*w = arg;

	return recs_count(f, w->id, NULL) >= w->n;
}

static int
flag_set(struct fixture *f, void *arg)
{
	return *(int *)arg != 0;
}

static int
fetch_idle(struct fixture *f, void *arg)
{
	return fetch_inflight(f->fetch) == 0;
}

/* ---- signing and secrets ---- */

static void
test_sign_vector(void **state)
{
	/* The example of the Standard Webhooks spec (and Svix's libraries). */
	static const char	 body[] = "{\"test\": 2432232314}";
	unsigned char		 key[64];
	char			 sig[SINK_WEBHOOK_SIG_MAX];
	size_t			 len = 0;

	assert_int_equal(sink_webhook_secret_decode(SECRET, key, sizeof(key),
	    &len), 0);
	assert_int_equal(len, 24);
	assert_int_equal(sink_webhook_sign(key, len,
	    "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
	    sig, sizeof(sig)), 0);
	assert_string_equal(sig,
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");

	/* Exactly enough room, then one byte short. */
	assert_int_equal(sink_webhook_sign(key, len,
	    "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
	    sig, 48), 0);
	assert_string_equal(sig,
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	assert_int_equal(sink_webhook_sign(key, len, "x", 1, body,
	    strlen(body), sig, 47), -1);

	/* Every part is signed: id, timestamp, body. */
	assert_int_equal(sink_webhook_sign(key, len,
	    "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, strlen(body),
	    sig, sizeof(sig)), 0);
	assert_string_not_equal(sig,
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	assert_int_equal(sink_webhook_sign(key, len,
	    "msg_p5jXN8AQM9LWM0D4loKWxJeK", 1614265330, body, strlen(body),
	    sig, sizeof(sig)), 0);
	assert_string_not_equal(sig,
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	assert_int_equal(sink_webhook_sign(key, len,
	    "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
	    strlen(body) - 1, sig, sizeof(sig)), 0);
	assert_string_not_equal(sig,
	    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void
test_secret_decode(void **state)
{
	static const struct {
		const char	*secret;
		const char	*bytes;
		size_t		 len;
	} good[] = {
		{ "whsec_QUJD", "ABC", 3 },
		{ "whsec_QUI=", "AB", 2 },
		{ "whsec_QQ==", "A", 1 },
		{ "whsec_AAEC/+8=", "\x00\x01\x02\xff\xef", 5 },
		{ "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY",
		    "ABCDEFGHIJKLMNOPQRSTUVWX", 24 },
	};
	static const char *const bad[] = {
		"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"WHSEC_QUJD", "whsec_QUJ", "whsec_QUJDR", "whsec_QU=D",
		"whsec_Q===", "whsec_====", "whsec_QUJD\n", "whsec_QU J",
		"whsec_-_AB", "whsec_QUJD QUJD", " whsec_QUJD", "whsec_QUJD=",
	};
	unsigned char	 out[64];
	size_t		 i, len;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		len = 99;
		memset(out, 0xaa, sizeof(out));
		if (sink_webhook_secret_decode(good[i].secret, out, sizeof(out),
		    &len) != 0)
			fail_msg("refused %s", good[i].secret);
		assert_int_equal(len, good[i].len);
		assert_memory_equal(out, good[i].bytes, good[i].len);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = 99;
		if (sink_webhook_secret_decode(bad[i], out, sizeof(out),
		    &len) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(len, 0);
	}
	assert_int_equal(sink_webhook_secret_decode(NULL, out, sizeof(out),
	    &len), -1);
	/* Too big for the buffer: refused, nothing written past it. */
	assert_int_equal(sink_webhook_secret_decode(SECRET, out, 23, &len), -1);
	assert_int_equal(sink_webhook_secret_decode(SECRET, out, 24, &len), 0);
	assert_int_equal(len, 24);
}

/* ---- JSONL ---- */

static void
test_jsonl_deliver(void **state)
{
	struct fixture			*f = *state;
	struct sink_jsonl_stats		 st;
	struct sink_jsonl		*s;
	struct evlist			 e;
	struct stat			 sb;
	char				*err = NULL, *want;
	mode_t				 old;

	make_events(f, 3);
	load_events(f, &e);
	assert_int_equal(e.n, 3);

	old = umask(077);	/* the mode is 0640 whatever the umask */
	s = sink_jsonl_new(f->base, f->l, f->jsonl, &err);
	umask(old);
	if (s == NULL)
		fail_msg("sink_jsonl_new: %s", err);
	assert_int_equal(stat(f->jsonl, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);

	assert_int_equal(sink_jsonl_deliver(s), 3);
	want = expected_lines(&e, 0, 2);
	assert_file_equals(f->jsonl, want);
	free(want);
	assert_int_equal(cursor(f, "jsonl"), e.ids[2]);
	sink_jsonl_get_stats(s, &st);
	assert_int_equal(st.delivered_id, e.ids[2]);
	assert_int_equal(st.delivered, 3);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.failing, 0);

	/* Nothing new: nothing written. */
	assert_int_equal(sink_jsonl_deliver(s), 0);
	want = expected_lines(&e, 0, 2);
	assert_file_equals(f->jsonl, want);
	free(want);

	/* A kick delivers from the loop. */
	make_events(f, 1);
	evlist_free(&e);
	load_events(f, &e);
	sink_jsonl_kick(s);
	sink_jsonl_kick(s);
	assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
	want = expected_lines(&e, 0, 3);
	assert_file_equals(f->jsonl, want);
	assert_int_equal(cursor(f, "jsonl"), e.ids[3]);
	sink_jsonl_free(s);

	/* A new sink starts from the stored cursor. */
	s = sink_jsonl_new(f->base, f->l, f->jsonl, &err);
	assert_non_null(s);
	assert_int_equal(sink_jsonl_deliver(s), 0);
	assert_file_equals(f->jsonl, want);
	free(want);
	sink_jsonl_free(s);
	evlist_free(&e);
}

static void
test_jsonl_torn(void **state)
{
	struct fixture		*f = *state;
	struct sink_jsonl	*s;
	struct evlist		 e;
	char			*err = NULL, *want, *log, *buf, msg[256];
	size_t			 len;

	make_events(f, 3);
	load_events(f, &e);

	/* A crash in the middle of the second line, before its fsync. */
	len = strlen(e.payloads[0]);
	buf = malloc(len + 1 + 10);
	assert_non_null(buf);
	memcpy(buf, e.payloads[0], len);
	buf[len] = '\n';
	memcpy(buf + len + 1, e.payloads[1], 10);
	spew(f->jsonl, buf, len + 1 + 10);
	free(buf);
	assert_int_equal(ledger_cursor_set(f->l, "jsonl", e.ids[0]), 0);

	capture_start(f);
	s = sink_jsonl_new(f->base, f->l, f->jsonl, &err);
	log = capture_end(f);
	if (s == NULL)
		fail_msg("sink_jsonl_new: %s", err);
	pathf(msg, sizeof(msg), "events jsonl %s: dropped 10 bytes of a torn "
	    "last line", f->jsonl);
	assert_int_equal(count_str(log, msg), 1);
	free(log);
	want = expected_lines(&e, 0, 0);
	assert_file_equals(f->jsonl, want);
	free(want);

	assert_int_equal(sink_jsonl_deliver(s), 2);
	want = expected_lines(&e, 0, 2);
	assert_file_equals(f->jsonl, want);
	free(want);
	assert_int_equal(cursor(f, "jsonl"), e.ids[2]);
	sink_jsonl_free(s);

	/* A torn line longer than one read of the tail, after whole lines. */
	want = expected_lines(&e, 0, 2);
	len = strlen(want);
	buf = malloc(len + 10000);
	assert_non_null(buf);
	memcpy(buf, want, len);
	memset(buf + len, 'x', 10000);
	spew(f->jsonl, buf, len + 10000);
	free(buf);
	capture_start(f);
	s = sink_jsonl_new(f->base, f->l, f->jsonl, &err);
	log = capture_end(f);
	assert_non_null(s);
	pathf(msg, sizeof(msg), "events jsonl %s: dropped 10000 bytes",
	    f->jsonl);
	assert_int_equal(count_str(log, msg), 1);
	free(log);
	assert_file_equals(f->jsonl, want);
	assert_int_equal(sink_jsonl_deliver(s), 0);
	sink_jsonl_free(s);
	free(want);

	/* Nothing but a torn line: all of it goes; a whole file is kept. */
	spew(f->jsonl, "{\"id\":1,", 8);
	assert_int_equal(ledger_cursor_set(f->l, "jsonl", 0), 0);
	capture_start(f);
	s = sink_jsonl_new(f->base, f->l, f->jsonl, &err);
	log = capture_end(f);
	assert_non_null(s);
	assert_int_equal(count_str(log, "dropped 8 bytes"), 1);
	free(log);
	assert_file_equals(f->jsonl, "");
	assert_int_equal(sink_jsonl_deliver(s), 3);
	sink_jsonl_free(s);
	capture_start(f);
	s = sink_jsonl_new(f->base, f->l, f->jsonl, &err);
	log = capture_end(f);
	assert_non_null(s);
	assert_int_equal(count_str(log, "dropped"), 0);
	free(log);
	want = expected_lines(&e, 0, 2);
	assert_file_equals(f->jsonl, want);
	free(want);
	sink_jsonl_free(s);
	evlist_free(&e);
}

static void
test_jsonl_batches(void **state)
{
	struct fixture		*f = *state;
	struct sink_jsonl	*s;
	struct evlist		 e;
	char			*err = NULL, *want;

	assert_int_equal(ledger_begin(f->l), 0);
	make_events(f, 2001);
	assert_int_equal(ledger_commit(f->l), 0);
	load_events(f, &e);
	assert_int_equal(e.n, 2001);

	s = sink_jsonl_new(f->base, f->l, f->jsonl, &err);
	assert_non_null(s);
	/* From the loop: one batch of 1000 per turn. */
	sink_jsonl_kick(s);
	assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
	assert_int_equal(cursor(f, "jsonl"), e.ids[999]);
	/* All at once: the rest. */
	assert_int_equal(sink_jsonl_deliver(s), 1001);
	want = expected_lines(&e, 0, 2000);
	assert_file_equals(f->jsonl, want);
	free(want);
	assert_int_equal(cursor(f, "jsonl"), e.ids[2000]);
	sink_jsonl_free(s);
	evlist_free(&e);
}

/* Runs sink_jsonl_check as an unprivileged user (root may write anything)
 * and returns its message (caller frees), or NULL if it succeeded. */
static char *
check_unprivileged(const char *path)
{
	char	 buf[512];
	char	*err = NULL;
	ssize_t	 n;
	int	 pfd[2], status;
	pid_t	 pid;

	if (geteuid() != 0) {
		if (sink_jsonl_check(path, &err) == 0)
			return NULL;
		return err;
	}
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		if (setgid(65534) == -1 || setuid(65534) == -1)
			_exit(2);
		if (sink_jsonl_check(path, &err) == 0)
			_exit(1);
		if (write(pfd[1], err, strlen(err)) == -1)
			_exit(2);
		_exit(0);
	}
	close(pfd[1]);
	n = read(pfd[0], buf, sizeof(buf) - 1);
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 1)
		return NULL;
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(n > 0);
	buf[n] = '\0';
	return strdup(buf);
}

static void
test_jsonl_check(void **state)
{
	struct fixture		*f = *state;
	char			 p[160], want[320], *err = NULL;
	int			 fd;

	/* A new file in an existing directory: fine, and left uncreated. */
	assert_int_equal(sink_jsonl_check(f->jsonl, &err), 0);
	assert_int_equal(access(f->jsonl, F_OK), -1);
	/* An existing one: fine, and kept. */
	spew(f->jsonl, "{}\n", 3);
	assert_int_equal(sink_jsonl_check(f->jsonl, &err), 0);
	assert_file_equals(f->jsonl, "{}\n");

	pathf(p, sizeof(p), "%s/nodir/events.jsonl", f->dir);
	assert_int_equal(sink_jsonl_check(p, &err), -1);
	pathf(want, sizeof(want), "events jsonl %s: cannot open: %s", p,
	    strerror(ENOENT));
	assert_string_equal(err, want);
	free(err);
	err = NULL;
	assert_null(sink_jsonl_new(f->base, f->l, p, &err));
	assert_string_equal(err, want);
	free(err);

	assert_int_equal(sink_jsonl_check(f->dir, &err), -1);
	pathf(want, sizeof(want), "events jsonl %s: cannot open: %s", f->dir,
	    strerror(EISDIR));
	assert_string_equal(err, want);
	free(err);

	pathf(p, sizeof(p), "%s/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(sink_jsonl_check(p, &err), -1);
	pathf(want, sizeof(want), "events jsonl %s: not a regular file", p);
	assert_string_equal(err, want);
	free(err);

	/* Not writable (by an unprivileged user when run as root). */
	pathf(p, sizeof(p), "%s/ro.jsonl", f->dir);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0444);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(chmod(f->dir, 0711), 0);
	err = check_unprivileged(p);
	assert_int_equal(chmod(f->dir, 0700), 0);
	pathf(want, sizeof(want), "events jsonl %s: cannot open: %s", p,
	    strerror(EACCES));
	assert_non_null(err);
	assert_string_equal(err, want);
	free(err);

	/* The cursor never moved. */
	assert_int_equal(cursor(f, "jsonl"), 0);
}

/* A file that refuses writes (/dev/full): -1, the cursor stays, one log
 * line for the streak. */
static void
test_jsonl_write_fails(void **state)
{
	struct fixture		*f = *state;
	struct sink_jsonl_stats	 st;
	struct sink_jsonl	*s;
	char			*err = NULL, *log, want[256];

	if (access("/dev/full", W_OK) == -1)
		skip();
	make_events(f, 2);
	capture_start(f);
	s = sink_jsonl_new(f->base, f->l, "/dev/full", &err);
	assert_non_null(s);
	assert_int_equal(sink_jsonl_deliver(s), -1);
	assert_int_equal(sink_jsonl_deliver(s), -1);
	log = capture_end(f);
	assert_int_equal(cursor(f, "jsonl"), 0);
	sink_jsonl_get_stats(s, &st);
	assert_int_equal(st.delivered_id, 0);
	assert_int_equal(st.delivered, 0);
	assert_int_equal(st.failures, 2);
	assert_int_equal(st.failing, 1);
	pathf(want, sizeof(want), "events jsonl /dev/full: cannot write: %s "
	    "(retrying with backoff, 1 s doubling to 60 s)", strerror(ENOSPC));
	assert_int_equal(count_str(log, want), 1);
	assert_int_equal(count_str(log, "events jsonl"), 1);
	free(log);
	sink_jsonl_free(s);
}

static int
jsonl_not_failing(struct fixture *f, void *arg)
{
	struct sink_jsonl_stats	 st;

	sink_jsonl_get_stats(arg, &st);
	return !st.failing;
}

/* A write cut short (file size limit): the partial batch is taken back,
 * the retry timer writes it whole once the file takes it again. */
static void
test_jsonl_short_write(void **state)
{
	struct fixture		*f = *state;
	struct sink_jsonl_stats	 st;
	struct sink_jsonl	*s;
	struct evlist		 e;
	struct rlimit		 old, lim;
	struct stat		 sb;
	char			*err = NULL, *log, *want, *pad, msg[256];
	size_t			 padlen = 8192, len;

	/* Lines of someone else's, so the limit sits above the log's size. */
	pad = malloc(padlen);
	assert_non_null(pad);
	memset(pad, ' ', padlen);
	pad[padlen - 1] = '\n';
	spew(f->jsonl, pad, padlen);

	make_events(f, 1);
	s = sink_jsonl_new(f->base, f->l, f->jsonl, &err);
	assert_non_null(s);
	assert_int_equal(sink_jsonl_deliver(s), 1);
	make_events(f, 2);
	load_events(f, &e);
	assert_int_equal(stat(f->jsonl, &sb), 0);

	assert_true(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + 20;
	capture_start(f);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(sink_jsonl_deliver(s), -1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	/* Taken back: no partial line left behind. */
	want = expected_lines(&e, 0, 0);
	len = strlen(want);
	assert_int_equal(stat(f->jsonl, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)(padlen + len));
	free(want);
	sink_jsonl_get_stats(s, &st);
	assert_int_equal(st.failing, 1);
	assert_int_equal(st.delivered_id, e.ids[0]);
	/* A kick while backing off changes nothing. */
	sink_jsonl_kick(s);
	assert_true(run_until(f, jsonl_not_failing, s, 5000));
	log = capture_end(f);
	pathf(msg, sizeof(msg), "events jsonl %s: cannot write: %s", f->jsonl,
	    strerror(EFBIG));
	assert_int_equal(count_str(log, msg), 1);
	pathf(msg, sizeof(msg), "events jsonl %s: writing again after 1 "
	    "failed attempts", f->jsonl);
	assert_int_equal(count_str(log, msg), 1);
	free(log);

	want = expected_lines(&e, 0, 2);
	len = strlen(want);
	log = slurp(f->jsonl, &padlen);
	assert_non_null(log);
	assert_int_equal(padlen, 8192 + len);
	assert_memory_equal(log, pad, 8192);
	assert_string_equal(log + 8192, want);
	free(log);
	free(want);
	free(pad);
	assert_int_equal(cursor(f, "jsonl"), e.ids[2]);
	sink_jsonl_get_stats(s, &st);
	assert_int_equal(st.failures, 1);
	assert_int_equal(st.delivered, 3);
	sink_jsonl_free(s);
	evlist_free(&e);
}

/* ---- webhook, end to end ---- */

static struct sink_webhook *
webhook_new(struct fixture *f)
{
	struct sink_webhook	*s;
	char			*err = NULL;

	if ((s = sink_webhook_new(f->base, f->l, f->fetch, f->cfg, &err)) ==
	    NULL)
		fail_msg("sink_webhook_new: %s", err);
	return s;
}

static void
test_webhook_delivers(void **state)
{
	struct fixture			*f = *state;
	struct sink_webhook_stats	 st;
	struct sink_webhook		*s;
	struct evlist			 e;
	struct wh_wait			 w;
	int				 i;

	if (f->no_receiver)
		skip();
	make_events(f, 12);	/* more than the window */
	load_events(f, &e);
	s = webhook_new(f);
	sink_webhook_kick(s);
	memset(&w, 0, sizeof(w));
	w.s = s;
	w.cursor = e.ids[11];
	assert_true(run_until(f, wh_cursor_is, &w, 15000));
	assert_int_equal(cursor(f, "webhook"), e.ids[11]);
	sink_webhook_get_stats(s, &st);
	assert_int_equal(st.delivered, 12);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.disabled, 0);
	assert_int_equal(recs_count(f, NULL, NULL), 12);
	assert_int_equal(recs_count(f, NULL, "204"), 12);
	for (i = 0; i < e.n; i++)
		assert_int_equal(recs_check_event(f, &e, i), 1);

	/* Nothing new: nothing sent again, by a kick or by a new sink. */
	sink_webhook_kick(s);
	run_until(f, NULL, NULL, 300);
	sink_webhook_free(s);
	s = webhook_new(f);
	sink_webhook_kick(s);
	run_until(f, NULL, NULL, 300);
	assert_int_equal(recs_count(f, NULL, NULL), 12);
	sink_webhook_free(s);
	evlist_free(&e);
}

/* An orderId with bytes a header should not carry: webhook-id is the key
 * percent-encoded (and signed as sent); the body keeps the key as it is. */
static void
test_webhook_header_id(void **state)
{
	struct fixture		*f = *state;
	struct sink_webhook	*s;
	struct evlist		 e;
	struct wh_wait		 w;
	struct recs		 rs;

	if (f->no_receiver)
		skip();
	add_granted(f, "주문 1%", T0);
	load_events(f, &e);
	assert_string_equal(e.keys[0], "주문 1%:grant");
	s = webhook_new(f);
	sink_webhook_kick(s);
	memset(&w, 0, sizeof(w));
	w.s = s;
	w.cursor = e.ids[0];
	assert_true(run_until(f, wh_cursor_is, &w, 10000));
	recs_load(f, &rs);
	assert_int_equal(rs.n, 1);
	assert_string_equal(rs.r[0].id, "%EC%A3%BC%EB%AC%B8%201%25:grant");
	assert_true(rs.r[0].valid);
	assert_string_equal(rs.r[0].answer, "204");
	assert_string_equal(rs.r[0].body, e.payloads[0]);
	recs_free(&rs);
	sink_webhook_free(s);
	evlist_free(&e);
}

/* One event fails with 500: it is retried with growing pauses, alone; the
 * ones after it are delivered once but the cursor waits for it. */
static void
test_webhook_retry_500(void **state)
{
	struct fixture			*f = *state;
	struct sink_webhook_stats	 st;
	struct sink_webhook		*s;
	struct evlist			 e;
	struct wh_wait			 w;
	struct recs			 rs;
	char				 mode[256], msg[256], *log;
	double				 prev = 0;
	int				 i, n;

	if (f->no_receiver)
		skip();
	make_events(f, 3);
	load_events(f, &e);
	pathf(mode, sizeof(mode), "500 %s\n", e.keys[1]);
	spew(f->rmode, mode, strlen(mode));

	capture_start(f);
	s = webhook_new(f);
	sink_webhook_set_backoff(s, 100, 400);
	sink_webhook_kick(s);
	memset(&w, 0, sizeof(w));
	w.s = s;
	w.id = e.keys[1];
	w.n = 4;
	assert_true(run_until(f, recs_reach, &w, 15000));
	/* The answer of the last one may still be on its way. */
	w.failures = 4;
	assert_true(run_until(f, wh_failures_reach, &w, 5000));
	sink_webhook_get_stats(s, &st);
	assert_int_equal(st.delivered_id, e.ids[0]);
	assert_int_equal(cursor(f, "webhook"), e.ids[0]);
	assert_int_equal(st.delivered, 2);
	assert_int_equal(recs_count(f, e.keys[0], "204"), 1);
	assert_int_equal(recs_count(f, e.keys[2], "204"), 1);

	/* A new event waits while the head is failing. */
	make_events(f, 1);
	evlist_free(&e);
	load_events(f, &e);
	sink_webhook_kick(s);
	run_until(f, NULL, NULL, 500);
	assert_int_equal(recs_count(f, e.keys[3], NULL), 0);
	sink_webhook_get_stats(s, &st);
	assert_true(st.inflight <= 1);

	spew(f->rmode, "ok\n", 3);
	w.cursor = e.ids[3];
	assert_true(run_until(f, wh_cursor_is, &w, 15000));
	log = capture_end(f);
	assert_int_equal(cursor(f, "webhook"), e.ids[3]);

	/* Same key, same body, valid, every time; one 204 each. */
	n = recs_check_event(f, &e, 1);
	assert_true(n >= 5);
	assert_int_equal(recs_count(f, e.keys[1], "500"), n - 1);
	for (i = 0; i < 4; i++) {
		assert_int_equal(recs_count(f, e.keys[i], "204"), 1);
		assert_int_equal(recs_check_event(f, &e, i), i == 1 ? n : 1);
	}
	/* Pauses between attempts: at least half the smallest backoff. */
	recs_load(f, &rs);
	for (i = 0; i < rs.n; i++) {
		if (log_getverbose() > 0)
			fprintf(stderr, "record %s %s %.3f\n", rs.r[i].id,
			    rs.r[i].answer, rs.r[i].at);
		if (strcmp(rs.r[i].id, e.keys[1]) != 0)
			continue;
		if (prev != 0)
			assert_true(rs.r[i].at - prev >= 0.045);
		prev = rs.r[i].at;
	}
	recs_free(&rs);

	/* One warning for the streak, one line when it ends. */
	pathf(msg, sizeof(msg), "webhook http://127.0.0.1:%d: event %s: "
	    "answered HTTP 500; retrying with backoff", f->port, e.keys[1]);
	assert_int_equal(count_str(log, msg), 1);
	assert_int_equal(count_str(log, "HTTP 500"), 1);
	pathf(msg, sizeof(msg), "webhook http://127.0.0.1:%d: delivering "
	    "again after %d failed attempts", f->port, n - 1);
	assert_int_equal(count_str(log, msg), 1);
	free(log);
	sink_webhook_get_stats(s, &st);
	assert_int_equal(st.failures, (uint64_t)(n - 1));
	assert_int_equal(st.delivered, 4);
	sink_webhook_free(s);
	evlist_free(&e);
}

static void
test_webhook_410(void **state)
{
	struct fixture			*f = *state;
	struct sink_webhook_stats	 st;
	struct sink_webhook		*s;
	struct evlist			 e;
	struct wh_wait			 w;
	char				 msg[256], *log, *err = NULL;
	int				 n;

	if (f->no_receiver)
		skip();
	make_events(f, 2);
	load_events(f, &e);
	spew(f->rmode, "410\n", 4);
	capture_start(f);
	s = webhook_new(f);
	sink_webhook_kick(s);
	memset(&w, 0, sizeof(w));
	w.s = s;
	assert_true(run_until(f, wh_disabled_idle, &w, 15000));
	n = recs_count(f, NULL, "410");
	assert_true(n >= 1 && n <= 2);
	/* Nothing more, even when kicked. */
	sink_webhook_kick(s);
	run_until(f, NULL, NULL, 400);
	assert_int_equal(recs_count(f, NULL, NULL), n);
	sink_webhook_get_stats(s, &st);
	assert_int_equal(st.disabled, 1);
	assert_int_equal(st.delivered_id, 0);
	assert_int_equal(cursor(f, "webhook"), 0);

	/* A reload switches it on again. */
	spew(f->rmode, "ok\n", 3);
	assert_int_equal(sink_webhook_set_config(s, f->cfg, &err), 0);
	sink_webhook_get_stats(s, &st);
	assert_int_equal(st.disabled, 0);
	w.cursor = e.ids[1];
	assert_true(run_until(f, wh_cursor_is, &w, 15000));
	log = capture_end(f);
	pathf(msg, sizeof(msg), "webhook http://127.0.0.1:%d answered 410 "
	    "Gone: webhook delivery disabled until restart/reload", f->port);
	assert_int_equal(count_str(log, msg), 1);
	assert_int_equal(count_str(log, "410 Gone"), 1);
	assert_int_equal(count_str(log, "delivery enabled again"), 1);
	free(log);
	assert_int_equal(recs_count(f, e.keys[0], "204"), 1);
	assert_int_equal(recs_count(f, e.keys[1], "204"), 1);
	assert_int_equal(cursor(f, "webhook"), e.ids[1]);
	sink_webhook_free(s);
	evlist_free(&e);
}

/* Connection reset, no answer, a timeout: each is retried, same key. */
static void
test_webhook_transport_errors(void **state)
{
	static const char *const modes[] = { "reset", "read", "stall" };
	struct fixture			*f = *state;
	struct sink_webhook		*s;
	struct evlist			 e;
	struct wh_wait			 w;
	struct recs			 rs;
	char				 line[16];
	int				 i;

	if (f->no_receiver)
		skip();
	make_events(f, 1);
	load_events(f, &e);
	f->cfg->webhook_timeout_ms = 1000;
	s = webhook_new(f);
	sink_webhook_set_backoff(s, 50, 100);
	memset(&w, 0, sizeof(w));
	w.s = s;
	capture_start(f);
	for (i = 0; i < 3; i++) {
		pathf(line, sizeof(line), "%s\n", modes[i]);
		spew(f->rmode, line, strlen(line));
		if (i == 0)
			sink_webhook_kick(s);
		w.failures = (uint64_t)i + 1;
		assert_true(run_until(f, wh_failures_reach, &w, 10000));
	}
	spew(f->rmode, "ok\n", 3);
	w.cursor = e.ids[0];
	assert_true(run_until(f, wh_cursor_is, &w, 10000));
	free(capture_end(f));

	assert_int_equal(recs_check_event(f, &e, 0), 4);
	recs_load(f, &rs);
	assert_int_equal(rs.n, 4);
	assert_string_equal(rs.r[0].answer, "reset");
	assert_string_equal(rs.r[1].answer, "read");
	assert_string_equal(rs.r[2].answer, "stall");
	assert_string_equal(rs.r[3].answer, "204");
	recs_free(&rs);
	sink_webhook_free(s);
	evlist_free(&e);
}

/* A wrong secret: the receiver says 401 and logs valid:false; retried. */
static void
test_webhook_bad_signature(void **state)
{
	struct fixture			*f = *state;
	struct sink_webhook_stats	 st;
	struct sink_webhook		*s;
	struct wh_wait			 w;
	struct recs			 rs;

	if (f->no_receiver)
		skip();
	make_events(f, 1);
	free(f->cfg->webhook_secret);
	f->cfg->webhook_secret = xstrdup(OTHER_SECRET);
	capture_start(f);
	s = webhook_new(f);
	sink_webhook_kick(s);
	memset(&w, 0, sizeof(w));
	w.s = s;
	w.failures = 1;
	assert_true(run_until(f, wh_failures_reach, &w, 10000));
	free(capture_end(f));
	recs_load(f, &rs);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].valid, 0);
	assert_string_equal(rs.r[0].answer, "401");
	recs_free(&rs);
	sink_webhook_get_stats(s, &st);
	assert_int_equal(st.delivered_id, 0);
	assert_int_equal(st.delivered, 0);
	sink_webhook_free(s);
}

static void
drained(void *arg)
{
	(*(int *)arg)++;
}

/* Drain: nothing new starts; done comes once the last request ends. */
static void
test_webhook_drain(void **state)
{
	struct fixture			*f = *state;
	struct sink_webhook_stats	 st;
	struct sink_webhook		*s;
	struct evlist			 e;
	struct wh_wait			 w;
	int				 done = 0;

	if (f->no_receiver)
		skip();
	make_events(f, 2);
	spew(f->rmode, "stall\n", 6);
	f->cfg->webhook_timeout_ms = 1000;
	capture_start(f);
	s = webhook_new(f);
	sink_webhook_kick(s);
	memset(&w, 0, sizeof(w));
	w.s = s;
	w.n = 1;
	/* (curl holds the second until it knows the first connection's
	 * protocol: plain HTTP/1.1 tells only with the answer.) */
	assert_true(run_until(f, recs_reach, &w, 10000));
	sink_webhook_get_stats(s, &st);
	assert_int_equal(st.inflight, 2);

	sink_webhook_drain(s, drained, &done);
	assert_int_equal(done, 0);	/* from the loop, not from here */
	make_events(f, 1);
	sink_webhook_kick(s);
	assert_true(run_until(f, flag_set, &done, 10000));
	run_until(f, NULL, NULL, 300);
	free(capture_end(f));
	assert_int_equal(done, 1);
	sink_webhook_get_stats(s, &st);
	assert_int_equal(st.inflight, 0);
	assert_int_equal(st.delivered_id, 0);
	assert_int_equal(st.failures, 2);
	load_events(f, &e);
	assert_int_equal(recs_count(f, e.keys[2], NULL), 0);
	assert_true(recs_count(f, NULL, NULL) <= 2);

	/* Nothing pending: done comes at once (from the loop). */
	done = 0;
	sink_webhook_drain(s, drained, &done);
	assert_true(run_until(f, flag_set, &done, 1000));
	sink_webhook_free(s);
	evlist_free(&e);
}

/* Freed with deliveries in flight: their callbacks still come, safely. */
static void
test_webhook_free_inflight(void **state)
{
	struct fixture			*f = *state;
	struct sink_webhook_stats	 st;
	struct sink_webhook		*s;
	struct wh_wait			 w;

	if (f->no_receiver)
		skip();
	make_events(f, 3);
	spew(f->rmode, "stall\n", 6);
	f->cfg->webhook_timeout_ms = 500;
	capture_start(f);
	s = webhook_new(f);
	sink_webhook_kick(s);
	memset(&w, 0, sizeof(w));
	w.s = s;
	w.n = 1;
	assert_true(run_until(f, recs_reach, &w, 10000));
	sink_webhook_get_stats(s, &st);
	assert_int_equal(st.inflight, 3);
	sink_webhook_free(s);
	assert_int_equal(fetch_inflight(f->fetch), 3);
	assert_true(run_until(f, fetch_idle, NULL, 10000));
	free(capture_end(f));
	assert_int_equal(cursor(f, "webhook"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_vector),
		cmocka_unit_test(test_secret_decode),
		cmocka_unit_test_setup_teardown(test_jsonl_deliver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_torn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_batches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_write_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_short_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_delivers,
		    setup_webhook, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_header_id,
		    setup_webhook, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_retry_500,
		    setup_webhook, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_410,
		    setup_webhook, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_transport_errors,
		    setup_webhook, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_bad_signature,
		    setup_webhook, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_drain,
		    setup_webhook, teardown),
		cmocka_unit_test_setup_teardown(test_webhook_free_inflight,
		    setup_webhook, teardown),
	};

	const char	*v = getenv("TEST_SINKS_VERBOSE");
	const char	*only = getenv("TEST_SINKS_ONLY");
	int64_t		 verbose = 0;

	/* The count assertions on the log hold at verbosity 0 only. */
	if (v != NULL && util_parse_int64(v, 0, 3, &verbose) == -1)
		verbose = 0;
	log_init("test_sinks", (int)verbose);
	signal(SIGPIPE, SIG_IGN);
	if (only != NULL)
		cmocka_set_test_filter(only);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
