/* libFuzzer target for the control API: each input goes as raw bytes over a
 * real connection to control.c's evhttp server (a unix socket and a seeded
 * ledger in a temporary directory), each inside a ledger transaction rolled
 * back afterwards, and every answer is checked. $FUZZ_VERBOSE prints them. */
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <json-c/json.h>

#include "config.h"
#include "control.h"
#include "fuzz.h"
#include "ledger.h"
#include "log.h"
#include "util.h"

#define FUZZ_TOKEN		"fuzz-token"
#define FUZZ_DEADLINE_SECS	10	/* an input not answered by then hangs */
#define FUZZ_KEEP_MAX		(256 * 1024)	/* answer bytes kept for checks */
/* An order whose presence makes /healthz report unhealthy. */
#define FUZZ_UNHEALTHY		"unhealthy"

#define CHECK(cond) do {						\
	if (!(cond))							\
		fuzz_fail(__LINE__, #cond);				\
} while (0)

/* The server side, made once. */
static struct {
	char			 dir[PATH_MAX];
	char			 sock[PATH_MAX];
	char			 db[PATH_MAX];
	struct event_base	*base;
	struct ledger		*ledger;
	struct config		*cfg;
	struct control		*control;
	int			 kicks;
	int64_t			 orders;	/* in the seeded ledger */
	int			 verbose;	/* $FUZZ_VERBOSE: print answers */
} fz;

/* One input's connection, from the client's side. */
struct client {
	int			 fd;
	const uint8_t		*data;
	size_t			 size, off;
	struct event		*rd, *wr, *deadline;
	int			 shut;		/* SHUT_WR sent */
	int			 done;
	size_t			 got;		/* answer bytes read */
	char			*keep;		/* the first FUZZ_KEEP_MAX bytes */
	size_t			 nkeep;
};

static void	 fuzz_fail(int, const char *) __attribute__((noreturn));

static void
fuzz_fail(int line, const char *what)
{
	fprintf(stderr, "fuzz_control.c:%d: invariant broken: %s\n", line,
	    what);
	abort();
}

static void
fuzz_kick(void *arg)
{
	fz.kicks++;
}

static int
fuzz_health(void *arg, char *why, size_t whysz)
{
	struct order	 o;

	if (ledger_get(fz.ledger, FUZZ_UNHEALTHY, &o) != 1)
		return 1;
	util_strlcpy(why, "paused: rate_limited (fuzz)", whysz);
	return 0;
}

/* metrics.c needs the poller; a stand-in exposition is enough here, since
 * nothing of a request reaches it. */
static int
fuzz_metrics(void *arg, struct evbuffer *out)
{
	struct ledger_stats	 st;

	if (ledger_stats(fz.ledger, util_now_ms(), &st) == -1)
		return -1;
	if (evbuffer_add_printf(out, "reconciled_up 1\n"
	    "reconciled_orders{state=\"pending\"} %lld\n",
	    (long long)st.orders[ST_PENDING]) == -1)
		return -1;
	return 0;
}

static int64_t
fuzz_order_count(void)
{
	struct ledger_stats	 st;
	int64_t			 n = 0;
	int			 i;

	if (ledger_stats(fz.ledger, util_now_ms(), &st) == -1)
		fuzz_fail(__LINE__, "ledger_stats");
	for (i = 0; i < ST__COUNT; i++)
		n += st.orders[i];
	return n;
}

/* Moves order id to state st with event ev, as a poll result would. */
static void
fuzz_apply(const char *id, enum order_state st, const char *status,
    enum event_type ev, int refund_after_grant, int64_t now)
{
	struct order		 o;
	struct ledger_update	 u;

	if (ledger_get(fz.ledger, id, &o) != 1)
		fuzz_fail(__LINE__, "ledger_get while seeding");
	memset(&u, 0, sizeof u);
	u.new_state = st;
	u.status_seen = 1;
	u.toss_status = status;
	u.reason = "결제가 완료되었어요.";
	u.determined_at = "2025-09-25T16:30:26+09:00";
	u.sku = "ait.0000009485.3df5aacd.5e882a5953.7407802466";
	u.count_poll = 1;
	u.event = ev;
	u.refund_after_grant = refund_after_grant;
	if (st == ST_GRANTED)
		u.granted_at = now;
	u.next_poll_at = st == ST_GRANTED ? now + 3600 * 1000 : 0;
	if (ledger_apply(fz.ledger, &o, &u, now) != 0)
		fuzz_fail(__LINE__, "ledger_apply while seeding");
}

/* Orders in several states and three events: the ids the seeds use. */
static void
fuzz_seed_ledger(void)
{
	static const struct {
		const char	*id, *key, *sku, *ref;
	} orders[] = {
		{ "13c9a1ff-2baa-4495-bbfa-a0826ba8c7c0", "443731104",
		    "ait.0000010000.af647449.3bd55cfd00.0000000475", NULL },
		{ "20e47c63-47e5-4972-a74c-9804fd584648", "443731104", NULL,
		    "shop-77" },
		{ "0192c0de-0000-7000-8000-000000000001", "42", NULL, "" },
		{ "주문-한글", "7", NULL, NULL },
	};
	enum ledger_add_result	 res;
	int64_t			 now = util_now_ms();
	size_t			 i;

	for (i = 0; i < sizeof orders / sizeof orders[0]; i++) {
		if (ledger_add(fz.ledger, orders[i].id, orders[i].key,
		    orders[i].sku, orders[i].ref, now, &res) == -1)
			fuzz_fail(__LINE__, "ledger_add while seeding");
	}
	fuzz_apply(orders[0].id, ST_GRANTED, "PAYMENT_COMPLETED", EV_GRANT, 0,
	    now);
	fuzz_apply(orders[1].id, ST_GRANTED, "PURCHASED", EV_GRANT, 0, now);
	fuzz_apply(orders[1].id, ST_REFUNDED, "REFUNDED", EV_REFUND, 1, now);
	fz.orders = fuzz_order_count();
}

static void
fuzz_cleanup(void)
{
	static const char	*suffix[] = { "", "-wal", "-shm", "-journal" };
	char			 path[PATH_MAX + 16];
	size_t			 i;

	control_free(fz.control);
	fz.control = NULL;
	ledger_close(fz.ledger);
	fz.ledger = NULL;
	if (fz.base != NULL)
		event_base_free(fz.base);
	fz.base = NULL;
	config_free(fz.cfg);
	fz.cfg = NULL;
	for (i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
		snprintf(path, sizeof path, "%s%s", fz.db, suffix[i]);
		(void)unlink(path);
	}
	(void)unlink(fz.sock);
	(void)rmdir(fz.dir);
}

/* A directory for the socket and the ledger: $TMPDIR, else /dev/shm (no
 * fsync cost), else /tmp. */
static void
fuzz_make_dir(void)
{
	const char	*tmp = getenv("TMPDIR");
	struct stat	 sb;
	int		 n;

	if (tmp == NULL || *tmp == '\0')
		tmp = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) &&
		    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	n = snprintf(fz.dir, sizeof fz.dir, "%s/reconciled-fuzz.XXXXXX", tmp);
	if (n < 0 || (size_t)n >= sizeof fz.dir || mkdtemp(fz.dir) == NULL) {
		fprintf(stderr, "fuzz_control: cannot make a directory in %s: "
		    "%s\n", tmp, strerror(errno));
		exit(1);
	}
	/* sun_path holds 108 bytes: keep the socket's name short. */
	n = snprintf(fz.sock, sizeof fz.sock, "%s/c.sock", fz.dir);
	if (n < 0 || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
	    (n = snprintf(fz.db, sizeof fz.db, "%s/ledger.db", fz.dir)) < 0 ||
	    (size_t)n >= sizeof fz.db) {
		fprintf(stderr, "fuzz_control: %s: path too long for a socket\n",
		    fz.dir);
		(void)rmdir(fz.dir);
		exit(1);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct control_hooks	 hooks = { fuzz_kick, fuzz_health, fuzz_metrics,
				    NULL, NULL };
	char			*err = NULL;

	fz.verbose = getenv("FUZZ_VERBOSE") != NULL;
	log_init("fuzz_control", fz.verbose ? 1 : -1);
	signal(SIGPIPE, SIG_IGN);
	fuzz_make_dir();
	atexit(fuzz_cleanup);

	if ((fz.ledger = ledger_open(fz.db, 0, &err)) == NULL) {
		fprintf(stderr, "fuzz_control: %s\n", err);
		exit(1);
	}
	fuzz_seed_ledger();

	fz.cfg = config_default();
	free(fz.cfg->listen);
	fz.cfg->listen = xasprintf("unix:%s", fz.sock);
	fz.cfg->token = xstrdup(FUZZ_TOKEN);
	free(fz.cfg->ledger_path);
	fz.cfg->ledger_path = xstrdup(fz.db);
	if ((fz.base = event_base_new()) == NULL) {
		fprintf(stderr, "fuzz_control: event_base_new failed\n");
		exit(1);
	}
	if ((fz.control = control_new(fz.base, fz.ledger, fz.cfg, &hooks,
	    &err)) == NULL) {
		fprintf(stderr, "fuzz_control: %s\n", err);
		exit(1);
	}
	return 0;
}

static void
client_done(struct client *cl)
{
	cl->done = 1;
	event_base_loopbreak(fz.base);
}

/* Writes what the server will take. */
static void
client_write(evutil_socket_t fd, short what, void *arg)
{
	struct client	*cl = arg;
	ssize_t		 n;

	while (cl->off < cl->size) {
		n = send(fd, cl->data + cl->off, cl->size - cl->off,
		    MSG_NOSIGNAL);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == -1) {
			/* The server closed early (an answer to a bad
			 * request); read what it said. */
			event_del(cl->wr);
			return;
		}
		cl->off += (size_t)n;
	}
	event_del(cl->wr);
}

static void
client_read(evutil_socket_t fd, short what, void *arg)
{
	struct client	*cl = arg;
	char		 buf[16384];
	ssize_t		 n;
	size_t		 take;

	for (;;) {
		n = recv(fd, buf, sizeof buf, 0);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			client_done(cl);	/* closed or reset: answered */
			return;
		}
		cl->got += (size_t)n;
		take = (size_t)n;
		if (take > FUZZ_KEEP_MAX - cl->nkeep)
			take = FUZZ_KEEP_MAX - cl->nkeep;
		memcpy(cl->keep + cl->nkeep, buf, take);
		cl->nkeep += take;
	}
}

static void
client_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct client	*cl = arg;

	fprintf(stderr, "fuzz_control: no answer and no close within %d s "
	    "(%zu of %zu bytes written)\n", FUZZ_DEADLINE_SECS, cl->off,
	    cl->size);
	abort();
}

/* Bytes written to fd that the server has not read yet. */
static int
client_unread(int fd)
{
	int	 n = 0;

#ifdef TIOCOUTQ
	if (ioctl(fd, TIOCOUTQ, &n) == -1)
		n = 0;
#endif
	return n;
}

/*
 * Runs the loop until the server has answered and closed. Once all of the
 * input is written, the loop turns without blocking until the server is
 * idle (two turns in a row in which nothing was read by either side and no
 * callback is pending): it has then answered every request it will answer
 * (a long poll stays held) and waits for more. Only then does the client
 * half-close, so that pipelined requests are all served (evhttp drops what
 * follows an end of input) and the server sees the end and closes.
 */
static void
client_run(struct client *cl)
{
	size_t	 got;
	int	 unread, quiet = 0;

	while (!cl->done) {
		if (cl->shut || cl->off < cl->size) {
			if (event_base_loop(fz.base, EVLOOP_ONCE) == -1)
				fuzz_fail(__LINE__, "event_base_loop");
			continue;
		}
		got = cl->got;
		unread = client_unread(cl->fd);
		if (event_base_loop(fz.base, EVLOOP_NONBLOCK) == -1)
			fuzz_fail(__LINE__, "event_base_loop");
		if (cl->done)
			break;
		if (got != cl->got || unread != client_unread(cl->fd) ||
		    event_base_get_num_events(fz.base,
		    EVENT_BASE_COUNT_ACTIVE) > 0)
			quiet = 0;
		else if (++quiet == 2) {
			(void)shutdown(cl->fd, SHUT_WR);
			cl->shut = 1;
		}
	}
}

/* If buf[i..len) starts with a status line, its code. The version is
 * skipped, not read: evhttp echoes the client's, and a minor version past
 * 127 comes back negative ("HTTP/1.-123"). */
static int
answer_code_at(const char *buf, size_t i, size_t len)
{
	size_t	 j = i + 5, k;
	int	 code = 0;

	if (len - i < 5 || memcmp(buf + i, "HTTP/", 5) != 0)
		return -1;
	for (k = 0; j < len && k < 16 && buf[j] != ' ' && buf[j] != '\n'; j++)
		k++;
	if (k == 0 || j >= len || buf[j++] != ' ' || len - j < 3)
		return -1;
	for (k = 0; k < 3; k++) {
		if (buf[j + k] < '0' || buf[j + k] > '9')
			return -1;
		code = code * 10 + (buf[j + k] - '0');
	}
	return code;
}

/* The value of header name in the header block h[len], or NULL; *vlen is
 * its length. */
static const char *
answer_header(const char *h, size_t len, const char *name, size_t *vlen)
{
	const char	*line = h, *end = h + len, *eol, *v;
	size_t		 nlen = strlen(name);

	for (; line < end; line = eol + 2) {
		if ((eol = memmem(line, (size_t)(end - line), "\r\n", 2)) == NULL)
			eol = end;
		if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
		    strncasecmp(line, name, nlen) == 0) {
			for (v = line + nlen + 1; v < eol && *v == ' '; v++)
				;
			*vlen = (size_t)(eol - v);
			return v;
		}
		if (eol == end)
			break;
	}
	return NULL;
}

/* A JSON body of the control API: one whole JSON value; an error answer is
 * {"error":{"code":s,"message":s}}, or /healthz's {"status":"unhealthy"}. */
static void
check_json_body(int code, const char *body, size_t len)
{
	struct json_tokener	*tok;
	struct json_object	*obj, *e, *v;
	char			*copy;

	if (len == 0)
		return;		/* a HEAD answer */
	if ((copy = malloc(len + 1)) == NULL)
		abort();
	memcpy(copy, body, len);
	copy[len] = '\0';
	if ((tok = json_tokener_new()) == NULL)
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, copy, (int)len + 1);
	CHECK(json_tokener_get_error(tok) == json_tokener_success);
	CHECK(json_object_is_type(obj, json_type_object));
	if (code >= 400) {
		if (code == 503 && json_object_object_get_ex(obj, "status", &v))
			CHECK(strcmp(json_object_get_string(v), "unhealthy") == 0);
		else {
			CHECK(json_object_object_get_ex(obj, "error", &e));
			CHECK(json_object_object_get_ex(e, "code", &v) &&
			    json_object_is_type(v, json_type_string));
			CHECK(json_object_object_get_ex(e, "message", &v) &&
			    json_object_is_type(v, json_type_string));
		}
	}
	json_object_put(obj);
	json_tokener_free(tok);
	free(copy);
}

/* Whether a Content-Type value (not NUL-terminated) names one of the fixed
 * documents the daemon serves. */
static int
is_document_type(const char *v, size_t vlen)
{
	static const char *const types[] = { "text/plain", "application/yaml",
	    "text/css", "text/javascript", "image/svg+xml" };
	size_t	 i, n;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		n = strlen(types[i]);
		if (vlen >= n && strncmp(v, types[i], n) == 0 &&
		    (vlen == n || v[n] == ';'))
			return 1;
	}
	return 0;
}

/*
 * Walks the answers in buf[len] (whole unless the buffer filled up): each a
 * status line, headers and a body of its Content-Length, or to the end
 * without one. Checks each, and counts those that are 401 in *n401 and the
 * others in *nother.
 */
static void
check_answers(const char *buf, size_t len, int full, int *n401, int *nother)
{
	const char	*hend, *v;
	size_t		 pos = 0, hlen, blen, vlen;
	int64_t		 clen;
	char		 num[24];
	int		 code;

	*n401 = *nother = 0;
	while (pos < len) {
		code = answer_code_at(buf, pos, len);
		CHECK(code != -1);
		if ((hend = memmem(buf + pos, len - pos, "\r\n\r\n", 4)) == NULL) {
			CHECK(full);	/* headers cut short */
			return;
		}
		hlen = (size_t)(hend - (buf + pos));
		pos += hlen + 4;
		if (code >= 100 && code <= 199)
			continue;	/* 100 Continue: no body */
		if (code == 401)
			(*n401)++;
		else
			(*nother)++;
		CHECK(code != 500);	/* a ledger error */

		/* Without a Content-Length: a HEAD answer (no body, maybe
		 * another answer next), or a body up to the close. */
		blen = len - pos;
		if (answer_code_at(buf, pos, len) != -1)
			blen = 0;
		if ((v = answer_header(buf + pos - hlen - 4, hlen,
		    "Content-Length", &vlen)) != NULL) {
			CHECK(vlen > 0 && vlen < sizeof num);
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			CHECK(util_parse_int64(num, 0, INT64_MAX, &clen) == 0);
			if ((uint64_t)clen > blen) {
				CHECK(full);	/* body cut short */
				return;
			}
			blen = (size_t)clen;
		}
		v = answer_header(buf + pos - hlen - 4, hlen, "Content-Type",
		    &vlen);
		/* The daemon answers JSON, but for its fixed documents, all
		 * with 200: /metrics (text/plain), /v1/openapi.yaml and the
		 * console's files under /ui/ (HTML, CSS, JavaScript, SVG).
		 * evhttp's own answers to what it will not take (400, 413,
		 * 417, 501...) are HTML. */
		CHECK(v != NULL);
		if (vlen >= 16 && strncmp(v, "application/json", 16) == 0)
			check_json_body(code, buf + pos, blen);
		else if (is_document_type(v, vlen))
			CHECK(code == 200);
		else {
			CHECK(vlen >= 9 && strncmp(v, "text/html", 9) == 0);
			CHECK(code == 200 || (code >= 400 && code <= 499) ||
			    code == 501);
		}
		pos += blen;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct client		 cl;
	struct sockaddr_un	 sun;
	struct timeval		 tv = { FUZZ_DEADLINE_SECS, 0 };
	int			 n401, nother;

	memset(&cl, 0, sizeof cl);
	cl.data = data;
	cl.size = size;
	if ((cl.keep = malloc(FUZZ_KEEP_MAX)) == NULL)
		abort();

	if ((cl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		fuzz_fail(__LINE__, "socket");
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	util_strlcpy(sun.sun_path, fz.sock, sizeof sun.sun_path);
	if (connect(cl.fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    fcntl(cl.fd, F_SETFL, O_NONBLOCK) == -1)
		fuzz_fail(__LINE__, "connect");

	fz.kicks = 0;
	if (ledger_begin(fz.ledger) == -1)
		fuzz_fail(__LINE__, "ledger_begin");

	if ((cl.rd = event_new(fz.base, cl.fd, EV_READ | EV_PERSIST,
	    client_read, &cl)) == NULL ||
	    (cl.wr = event_new(fz.base, cl.fd, EV_WRITE | EV_PERSIST,
	    client_write, &cl)) == NULL ||
	    (cl.deadline = evtimer_new(fz.base, client_deadline, &cl)) == NULL)
		fuzz_fail(__LINE__, "event_new");
	if (event_add(cl.rd, NULL) == -1 || event_add(cl.wr, NULL) == -1 ||
	    evtimer_add(cl.deadline, &tv) == -1)
		fuzz_fail(__LINE__, "event_add");
	client_run(&cl);
	event_free(cl.rd);
	event_free(cl.wr);
	event_free(cl.deadline);
	close(cl.fd);

	if (fz.verbose)
		fprintf(stderr, "---- answer (%zu bytes):\n%.*s\n", cl.nkeep,
		    (int)cl.nkeep, cl.keep);
	check_answers(cl.keep, cl.nkeep, cl.got > cl.nkeep, &n401, &nother);
	if (n401 > 0 && nother == 0) {
		/* Without the token nothing happens. */
		CHECK(fz.kicks == 0);
		CHECK(fuzz_order_count() == fz.orders);
	}
	ledger_rollback(fz.ledger);
	free(cl.keep);
	return 0;
}
