/* The raw HTTP ceiling for the throughput bench: a minimal libcurl-multi load
 * loop, glued to libevent as src/fetch.c is, that POSTs order-status requests
 * to toss-sim with the daemon's TLS settings and concurrency and no ledger,
 * and counts only completed 200 answers. It prints one line of figures. */
#include <sys/resource.h>
#include <sys/time.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#define CEIL_PATH	"/api-partner/v1/apps-in-toss/order/get-order-status"
#define CEIL_BODY_MAX	65536

struct ceil;

/* One in-flight request: its easy handle is kept between requests (as the
 * daemon keeps its handles), so only the per-request options change. */
struct slot {
	struct ceil		*c;
	CURL			*easy;
	struct curl_slist	*hdrs;
	char			 body[128];
	char			 keyhdr[96];
	char			 answer[CEIL_BODY_MAX];
	size_t			 len;
	int			 too_big;
};

/* What curl_multi_assign keeps for one socket. */
struct sock {
	struct event		 ev;
	int			 assigned;
};

struct ceil {
	struct event_base	*base;
	CURLM			*multi;
	struct event		 timer;
	struct slot		*slots;
	int			 conc;
	const char		*url;
	const char		*prefix;
	uint64_t		 total;		/* requests to start */
	uint64_t		 started;
	uint64_t		 ok;		/* 200 with a SUCCESS body */
	uint64_t		 bad;		/* anything else */
	int			 running;
};

static void
usage(void)
{
	fprintf(stderr, "usage: ceiling --url BASE_URL --cert FILE --key FILE "
	    "--ca FILE [--concurrency N] [--requests N] [--prefix P]\n");
	exit(64);
}

/* A number in [lo, hi], or exit 64. */
static long long
parse_num(const char *s, long long lo, long long hi)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "ceiling: bad number \"%s\"\n", s);
		exit(64);
	}
	return v;
}

static int64_t
mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
cpu_us(void)
{
	struct rusage	 ru;

	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
	    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct slot	*s = arg;
	size_t		 n = size * nmemb;

	if (n > sizeof(s->answer) - 1 - s->len) {
		s->too_big = 1;
		return 0;
	}
	memcpy(s->answer + s->len, data, n);
	s->len += n;
	s->answer[s->len] = '\0';
	return n;
}

/* Starts the next request on s, if any are left. */
static void
slot_start(struct slot *s)
{
	struct ceil	*c = s->c;
	uint64_t	 i;
	int		 n;

	if (c->started >= c->total)
		return;
	i = ++c->started;
	n = snprintf(s->body, sizeof(s->body), "{\"orderId\":\"%s%07" PRIu64
	    "\"}", c->prefix, i);
	if (n < 0 || (size_t)n >= sizeof(s->body)) {
		fprintf(stderr, "ceiling: prefix too long\n");
		exit(1);
	}
	snprintf(s->keyhdr, sizeof(s->keyhdr), "x-toss-user-key: %" PRIu64,
	    (uint64_t)400000000 + i);
	curl_slist_free_all(s->hdrs);
	s->hdrs = NULL;
	s->hdrs = curl_slist_append(s->hdrs, "Expect:");
	s->hdrs = curl_slist_append(s->hdrs, "Content-Type: application/json");
	s->hdrs = curl_slist_append(s->hdrs, "Accept: application/json");
	s->hdrs = curl_slist_append(s->hdrs, s->keyhdr);
	if (s->hdrs == NULL) {
		fprintf(stderr, "ceiling: out of memory\n");
		exit(1);
	}
	s->len = 0;
	s->too_big = 0;
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)n);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
	if (curl_multi_add_handle(c->multi, s->easy) != CURLM_OK) {
		fprintf(stderr, "ceiling: curl_multi_add_handle failed\n");
		exit(1);
	}
	c->running++;
}

/* Counts every finished transfer and starts the next one on its handle. */
static void
drain(struct ceil *c)
{
	CURLMsg		*msg;
	struct slot	*s;
	char		*priv;
	long		 code;
	int		 left;
	CURLcode	 cc;

	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		cc = msg->data.result;
		priv = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		s = (struct slot *)(void *)priv;
		code = 0;
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
		if (cc == CURLE_OK && code == 200 && !s->too_big &&
		    strstr(s->answer, "\"resultType\":\"SUCCESS\"") != NULL)
			c->ok++;
		else {
			if (c->bad < 5)
				fprintf(stderr, "ceiling: request failed: curl %d,"
				    " HTTP %ld\n", (int)cc, code);
			c->bad++;
		}
		curl_multi_remove_handle(c->multi, s->easy);
		c->running--;
		slot_start(s);
	}
	if (c->running == 0)
		event_base_loopbreak(c->base);
}

static void
sock_event(evutil_socket_t fd, short kind, void *arg)
{
	struct ceil	*c = arg;
	int		 action = 0, running;

	if (kind & EV_READ)
		action |= CURL_CSELECT_IN;
	if (kind & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(c->multi, fd, action, &running);
	drain(c);
}

static void
timer_event(evutil_socket_t fd, short kind, void *arg)
{
	struct ceil	*c = arg;
	int		 running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(c);
}

static int
sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct ceil	*c = userp;
	struct sock	*so = socketp;
	short		 kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (so != NULL) {
			if (so->assigned)
				event_del(&so->ev);
			free(so);
		}
		return 0;
	}
	if (so == NULL) {
		if ((so = calloc(1, sizeof(*so))) == NULL) {
			fprintf(stderr, "ceiling: out of memory\n");
			exit(1);
		}
		curl_multi_assign(c->multi, s, so);
	} else if (so->assigned) {
		event_del(&so->ev);
		so->assigned = 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if ((kind & (EV_READ | EV_WRITE)) == 0)
		return 0;
	event_assign(&so->ev, c->base, s, kind, sock_event, c);
	so->assigned = 1;
	event_add(&so->ev, NULL);
	return 0;
}

static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct ceil	*c = userp;
	struct timeval	 tv;

	if (timeout_ms < 0) {
		evtimer_del(&c->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(&c->timer, &tv);
	return 0;
}

/* The standing options of src/fetch.c's fetch_setup_handle() for a POST
 * with the client identity. */
static void
slot_setup(struct slot *s, const char *cert, const char *key, const char *ca)
{
	CURL	*e = s->easy;

	curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)s);
	curl_easy_setopt(e, CURLOPT_URL, s->c->url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "reconciled-bench-ceiling");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)s);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_SSLCERT, cert);
	curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(e, CURLOPT_SSLKEY, key);
	curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
	curl_easy_setopt(e, CURLOPT_CAINFO, ca);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
}

int
main(int argc, char **argv)
{
	struct ceil	 c;
	const char	*base_url = NULL, *cert = NULL, *key = NULL, *ca = NULL;
	char		 url[1024];
	int64_t		 t0, t1, c0, c1;
	double		 secs;
	int		 i, n;

	memset(&c, 0, sizeof(c));
	c.conc = 256;
	c.total = 200000;
	c.prefix = "cl-";
	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--url") == 0)
			base_url = argv[++i];
		else if (strcmp(argv[i], "--cert") == 0)
			cert = argv[++i];
		else if (strcmp(argv[i], "--key") == 0)
			key = argv[++i];
		else if (strcmp(argv[i], "--ca") == 0)
			ca = argv[++i];
		else if (strcmp(argv[i], "--concurrency") == 0)
			c.conc = (int)parse_num(argv[++i], 1, 100000);
		else if (strcmp(argv[i], "--requests") == 0)
			c.total = (uint64_t)parse_num(argv[++i], 1, 1000000000);
		else if (strcmp(argv[i], "--prefix") == 0)
			c.prefix = argv[++i];
		else
			usage();
	}
	if (base_url == NULL || cert == NULL || key == NULL || ca == NULL)
		usage();
	n = snprintf(url, sizeof(url), "%s%s", base_url, CEIL_PATH);
	if (n < 0 || (size_t)n >= sizeof(url))
		usage();
	c.url = url;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (c.base = event_base_new()) == NULL ||
	    (c.multi = curl_multi_init()) == NULL) {
		fprintf(stderr, "ceiling: cannot initialise libcurl/libevent\n");
		return 1;
	}
	evtimer_assign(&c.timer, c.base, timer_event, &c);
	curl_multi_setopt(c.multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c.multi, CURLMOPT_SOCKETDATA, &c);
	curl_multi_setopt(c.multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c.multi, CURLMOPT_TIMERDATA, &c);
	curl_multi_setopt(c.multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(c.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c.conc);
	curl_multi_setopt(c.multi, CURLMOPT_MAXCONNECTS, (long)c.conc + 8);

	if ((c.slots = calloc((size_t)c.conc, sizeof(*c.slots))) == NULL) {
		fprintf(stderr, "ceiling: out of memory\n");
		return 1;
	}
	t0 = mono_us();
	c0 = cpu_us();
	for (i = 0; i < c.conc; i++) {
		c.slots[i].c = &c;
		if ((c.slots[i].easy = curl_easy_init()) == NULL) {
			fprintf(stderr, "ceiling: curl_easy_init failed\n");
			return 1;
		}
		slot_setup(&c.slots[i], cert, key, ca);
		slot_start(&c.slots[i]);
	}
	if (c.running > 0)
		event_base_dispatch(c.base);
	t1 = mono_us();
	c1 = cpu_us();

	secs = (double)(t1 - t0) / 1e6;
	/* One line for the bench script: ok bad wall_s req_per_s cpu_ms
	 * cpu_ms_per_1k peak_rss_kb. */
	{
		struct rusage	 ru;

		getrusage(RUSAGE_SELF, &ru);
		printf("%" PRIu64 " %" PRIu64 " %.3f %.0f %.0f %.1f %ld\n", c.ok,
		    c.bad, secs, secs > 0 ? (double)c.ok / secs : 0.0,
		    (double)(c1 - c0) / 1000.0, c.ok > 0 ?
		    (double)(c1 - c0) / (double)c.ok : 0.0, ru.ru_maxrss);
	}

	for (i = 0; i < c.conc; i++) {
		curl_easy_cleanup(c.slots[i].easy);
		curl_slist_free_all(c.slots[i].hdrs);
	}
	free(c.slots);
	curl_multi_cleanup(c.multi);
	evtimer_del(&c.timer);
	event_base_free(c.base);
	curl_global_cleanup();
	return c.bad == 0 ? 0 : 2;
}
