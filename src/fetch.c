/* libcurl's multi_socket interface glued to libevent (the hiperfifo pattern):
 * one event per socket curl names, one timer curl drives, completions handed
 * to callers from the loop. Also owns the client TLS identity and its check. */
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "fetch.h"
#include "log.h"
#include "util.h"

#define FETCH_BUF_INITIAL	4096
#define FETCH_BUF_KEEP		16384	/* a handle keeps buffers this small */
#define FETCH_DEADLINE_SLACK	2000	/* our deadline trails curl's by this */
#define FETCH_DEFAULT_TIMEOUT	30000	/* when a request names none */
#define FETCH_DEFAULT_MAXCONN	64

/* What a handle's standing options were set for (fetch_req.profile). */
#define FETCH_P_BODY		0x1	/* POST with a body, not GET */
#define FETCH_P_TLS		0x2	/* client identity of ident_gen */
#define FETCH_P_SENT		0x4	/* a sent hook */
#define FETCH_P_VERBOSE		0x8	/* curl's own debug lines */
#define FETCH_P_TLS12		0x10	/* TLS 1.2 only, on a connection of its own */

/* A client identity; requests hold a reference so a reload never changes
 * the files of a request already started. */
struct fetch_ident {
	int		 refs;
	char		*cert;
	char		*key;
	char		*ca;
};

/* What curl_multi_assign keeps for one socket. */
struct fetch_sock {
	curl_socket_t		 fd;
	struct event		 ev;
	int			 assigned;	/* ev was event_assign()ed */
	LIST_ENTRY(fetch_sock)	 entry;
};

/* One request and its easy handle; kept on the free list between uses so
 * the handle's connection and TLS session caches survive, and so that its
 * options and answer buffer need not be set up again for a request like
 * the last one. */
struct fetch_req {
	struct fetch		*f;
	CURL			*easy;
	TAILQ_ENTRY(fetch_req)	 entry;
	int			 inflight;
	int			 configured;	/* standing options are set */
	int			 profile;	/* FETCH_P_* they were set for */
	uint64_t		 ident_gen;	/* with FETCH_P_TLS */

	char			 errbuf[CURL_ERROR_SIZE];
	struct fetch_ident	*ident;

	/* The request's header list and body, built in buffers the handle
	 * keeps: curl reads them in place until the transfer ends. */
	struct curl_slist	*hdrs;
	size_t			 nhdrs;
	char			*hdrbuf;
	size_t			 hdrcap;
	char			*post;
	size_t			 postcap;

	char			*buf;
	size_t			 len;
	size_t			 cap;
	int			 too_big;
	int			 cut_body;	/* fetch_request's */
	int			 cut;		/* cut_body did cut */
	int			 has_retry_after;

	struct event		 deadline;
	int64_t			 started;	/* monotonic ms */

	fetch_done_fn		 done;
	void			 (*sent)(void *, int64_t);
	void			*arg;
};
TAILQ_HEAD(fetch_reqs, fetch_req);

struct fetch {
	struct event_base	*base;
	CURLM			*multi;
	struct event		 timer;
	struct fetch_reqs	 active;
	struct fetch_reqs	 idle;
	LIST_HEAD(, fetch_sock)	 socks;
	size_t			 inflight;
	struct fetch_ident	*ident;
	uint64_t		 ident_gen;	/* bumped by fetch_set_tls */
	char			 useragent[64];
};

static void	fetch_drain(struct fetch *);
static void	fetch_finish(struct fetch_req *, CURLcode, enum fetch_error,
		    const char *);

static void
fetch_ident_release(struct fetch_ident *id)
{
	if (id == NULL || --id->refs > 0)
		return;
	free(id->cert);
	free(id->key);
	free(id->ca);
	free(id);
}

/* curl's error as a class; no TLS verdicts: a send or receive error is a
 * reset here, whatever alert the message names (the caller judges it with
 * fetch_result's facts). */
static enum fetch_error
fetch_classify(CURLcode cc, int too_big)
{
	switch (cc) {
	case CURLE_OK:
		return FETCH_OK;
	case CURLE_OPERATION_TIMEDOUT:
		return FETCH_ETIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return FETCH_ERESOLVE;
	case CURLE_COULDNT_CONNECT:
		return FETCH_ECONNECT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_USE_SSL_FAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
		return FETCH_ETLS;
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
		return FETCH_ECERT;
	case CURLE_FILESIZE_EXCEEDED:
		return FETCH_ETOOBIG;
	case CURLE_WRITE_ERROR:
		return too_big ? FETCH_ETOOBIG : FETCH_EOTHER;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return FETCH_ERESET;
	default:
		return FETCH_EOTHER;
	}
}

const char *
fetch_error_name(enum fetch_error e)
{
	switch (e) {
	case FETCH_OK:
		return "ok";
	case FETCH_ETIMEOUT:
		return "timeout";
	case FETCH_ERESOLVE:
		return "resolve";
	case FETCH_ECONNECT:
		return "connect";
	case FETCH_ETLS:
		return "tls";
	case FETCH_ECERT:
		return "cert";
	case FETCH_ETOOBIG:
		return "too_big";
	case FETCH_ERESET:
		return "reset";
	case FETCH_EOTHER:
		break;
	}
	return "other";
}

static size_t
fetch_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch_req	*r = arg;
	size_t			 n = size * nmemb, cap;

	if (n > FETCH_BODY_MAX - r->len) {
		if (r->cut_body)
			r->cut = 1;
		else
			r->too_big = 1;
		return 0;	/* curl aborts with CURLE_WRITE_ERROR */
	}
	if (r->len + n + 1 > r->cap) {
		cap = r->cap == 0 ? FETCH_BUF_INITIAL : r->cap;
		while (cap < r->len + n + 1)
			cap *= 2;
		if (cap > FETCH_BODY_MAX + 1)
			cap = FETCH_BODY_MAX + 1;
		r->buf = xrealloc(r->buf, cap);
		r->cap = cap;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return n;
}

/* Notes whether the final answer carried Retry-After, so that "0" and
 * "absent" can be told apart (CURLINFO_RETRY_AFTER says 0 for both). */
static size_t
fetch_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct fetch_req	*r = arg;
	size_t			 n = size * nmemb;

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0)
		r->has_retry_after = 0;
	else if (n >= 12 && strncasecmp(data, "Retry-After:", 12) == 0)
		r->has_retry_after = 1;
	return n;
}

static int
fetch_debug_cb(CURL *e, curl_infotype type, char *data, size_t size, void *arg)
{
	if (type == CURLINFO_TEXT) {
		while (size > 0 &&
		    (data[size - 1] == '\n' || data[size - 1] == '\r'))
			size--;
		if (size > 512)
			size = 512;
		log_debug("curl: %.*s", (int)size, data);
	}
	return 0;
}

#if LIBCURL_VERSION_NUM >= 0x075000
/* CURLOPT_PREREQFUNCTION: the request is about to go out on a connection
 * (new or reused); called again for each re-send. On a connection made for
 * it, also says how long its TLS handshake took. */
static int
fetch_prereq_cb(void *arg, char *primary_ip, char *local_ip, int primary_port,
    int local_port)
{
	struct fetch_req	*r = arg;
	curl_off_t		 tcp = 0, tls = 0;
	long			 fresh = 0;
	int64_t			 hs = 0;

	if (r->sent == NULL)
		return CURL_PREREQFUNC_OK;
	/* Times in us since the transfer began; a reused connection reports
	 * no new connect and zero times. */
	if (curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS,
	    &fresh) == CURLE_OK && fresh > 0 &&
	    curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T,
	    &tcp) == CURLE_OK &&
	    curl_easy_getinfo(r->easy, CURLINFO_APPCONNECT_TIME_T,
	    &tls) == CURLE_OK && tls > tcp)
		hs = (int64_t)((tls - tcp + 999) / 1000);
	r->sent(r->arg, hs);
	return CURL_PREREQFUNC_OK;
}
#endif

static void
fetch_sock_event(evutil_socket_t fd, short kind, void *arg)
{
	struct fetch	*f = arg;
	int		 action = 0, running;

	if (kind & EV_READ)
		action |= CURL_CSELECT_IN;
	if (kind & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(f->multi, fd, action, &running);
	fetch_drain(f);
}

static void
fetch_timer_event(evutil_socket_t fd, short kind, void *arg)
{
	struct fetch	*f = arg;
	int		 running;

	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	fetch_drain(f);
}

/* CURLMOPT_SOCKETFUNCTION: one event per socket, updated in place. */
static int
fetch_sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct fetch		*f = userp;
	struct fetch_sock	*fs = socketp;
	short			 kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (fs != NULL) {
			if (fs->assigned)
				event_del(&fs->ev);
			LIST_REMOVE(fs, entry);
			free(fs);
		}
		return 0;
	}
	if (fs == NULL) {
		fs = xcalloc(1, sizeof(*fs));
		fs->fd = s;
		LIST_INSERT_HEAD(&f->socks, fs, entry);
		curl_multi_assign(f->multi, s, fs);
	} else if (fs->assigned) {
		event_del(&fs->ev);
		fs->assigned = 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if ((kind & (EV_READ | EV_WRITE)) == 0)
		return 0;
	event_assign(&fs->ev, f->base, s, kind, fetch_sock_event, f);
	fs->assigned = 1;
	if (event_add(&fs->ev, NULL) == -1)
		log_warnx("fetch: cannot watch socket %d", (int)s);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: (re)arms the one timer curl asks for. */
static int
fetch_timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	struct fetch	*f = userp;
	struct timeval	 tv;

	if (timeout_ms < 0) {
		evtimer_del(&f->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(&f->timer, &tv);
	return 0;
}

/* Our own deadline: curl should have timed out long before this fires. */
static void
fetch_deadline_event(evutil_socket_t fd, short kind, void *arg)
{
	struct fetch_req	*r = arg;

	log_debug("fetch: request deadline passed, aborting it");
	fetch_finish(r, CURLE_OPERATION_TIMEDOUT, FETCH_ETIMEOUT,
	    "request deadline passed");
}

static void
fetch_drain(struct fetch *f)
{
	CURLMsg			*msg;
	CURL			*easy;
	CURLcode		 cc;
	struct fetch_req	*r;
	char			*priv;
	int			 left;

	while ((msg = curl_multi_info_read(f->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		easy = msg->easy_handle;	/* msg dies with the removal */
		cc = msg->data.result;
		priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		if ((r = (struct fetch_req *)(void *)priv) == NULL)
			continue;
		fetch_finish(r, cc, FETCH_OK, NULL);
	}
}

/* Detaches a request from curl, puts its handle back on the free list. */
static void
fetch_recycle(struct fetch_req *r)
{
	struct fetch	*f = r->f;

	if (r->inflight) {
		TAILQ_REMOVE(&f->active, r, entry);
		r->inflight = 0;
	}
	evtimer_del(&r->deadline);
	curl_multi_remove_handle(f->multi, r->easy);
	fetch_ident_release(r->ident);
	r->ident = NULL;
	if (r->cap > FETCH_BUF_KEEP) {
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
	r->len = 0;
	r->done = NULL;
	r->sent = NULL;
	r->arg = NULL;
	TAILQ_INSERT_HEAD(&f->idle, r, entry);
}

/* Completes r: reads what curl knows, recycles the handle, then calls back.
 * forced is FETCH_OK unless our own deadline ended the request. */
static void
fetch_finish(struct fetch_req *r, CURLcode cc, enum fetch_error forced,
    const char *why)
{
	struct fetch		*f = r->f;
	struct fetch_result	 res;
	fetch_done_fn		 done = r->done;
	void			*arg = r->arg;
	curl_off_t		 ra = 0, appconnect = 0;
	long			 code = 0;
	char			 msg[CURL_ERROR_SIZE + 160];
	char			*body;
	size_t			 len, cap;

	memset(&res, 0, sizeof(res));
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	res.http_code = code;
	res.retry_after_ms = -1;
	if (r->has_retry_after &&
	    curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
	    ra >= 0)
		res.retry_after_ms = ra > INT64_MAX / 1000 ? INT64_MAX :
		    (int64_t)ra * 1000;
	res.elapsed_ms = util_mono_ms() - r->started;
	/* The answer's head arrived and its body was cut as asked. */
	if (r->cut && cc == CURLE_WRITE_ERROR && forced == FETCH_OK) {
		cc = CURLE_OK;
		res.body_cut = 1;
	}

	if (why != NULL)
		util_strlcpy(msg, why, sizeof(msg));
	else if (r->too_big || cc == CURLE_FILESIZE_EXCEEDED)
		snprintf(msg, sizeof(msg), "answer larger than %d bytes",
		    FETCH_BODY_MAX);
	else if (cc == CURLE_OK)
		msg[0] = '\0';
	else if (r->errbuf[0] != '\0')
		util_strlcpy(msg, r->errbuf, sizeof(msg));
	else
		util_strlcpy(msg, curl_easy_strerror(cc), sizeof(msg));
	res.message = msg;
	if (forced != FETCH_OK)
		res.error = forced;
	else
		res.error = fetch_classify(cc, r->too_big);
	res.io_failed = forced == FETCH_OK &&
	    (cc == CURLE_SEND_ERROR || cc == CURLE_RECV_ERROR);
	res.tls12_only = (r->profile & FETCH_P_TLS12) != 0;
	res.cert_sent = r->ident != NULL && r->ident->cert != NULL;
	if (curl_easy_getinfo(r->easy, CURLINFO_NUM_CONNECTS,
	    &res.connects) != CURLE_OK)
		res.connects = 0;
	if (curl_easy_getinfo(r->easy, CURLINFO_HEADER_SIZE,
	    &res.header_bytes) != CURLE_OK)
		res.header_bytes = 0;
	res.handshake_done = curl_easy_getinfo(r->easy,
	    CURLINFO_APPCONNECT_TIME_T, &appconnect) == CURLE_OK &&
	    appconnect > 0;
	if (res.error != FETCH_OK)
		log_debug("fetch: curl error %d (%s): %s", (int)cc,
		    fetch_error_name(res.error), msg);

	/* The body is detached from r and freed after the callback. */
	body = r->buf;
	len = r->len;
	cap = r->cap;
	r->buf = NULL;
	r->cap = r->len = 0;
	if (res.error == FETCH_OK) {
		res.body = body != NULL ? body : "";
		res.body_len = len;
	} else {
		res.body = "";
		res.body_len = 0;
	}

	fetch_recycle(r);
	f->inflight--;
	/* r may be reused by a fetch_submit() inside the callback: only the
	 * detached body is still ours. */
	if (done != NULL)
		done(&res, arg);
	/* Back to the handle for its next answer, even if the callback
	 * started a new request on it: nothing was written to it yet. */
	if (body != NULL && r->buf == NULL && cap <= FETCH_BUF_KEEP) {
		r->buf = body;
		r->cap = cap;
	} else
		free(body);
}

struct fetch *
fetch_new(struct event_base *base, char **err)
{
	struct fetch		*f;
	curl_version_info_data	*v;
	CURLMcode		 mc;

	v = curl_version_info(CURLVERSION_NOW);
	if (v == NULL || (v->features & CURL_VERSION_SSL) == 0) {
		*err = xstrdup("libcurl was built without TLS support");
		return NULL;
	}
	f = xcalloc(1, sizeof(*f));
	f->base = base;
	TAILQ_INIT(&f->active);
	TAILQ_INIT(&f->idle);
	LIST_INIT(&f->socks);
	snprintf(f->useragent, sizeof(f->useragent), "reconciled/%s",
	    PACKAGE_VERSION);
	if ((f->multi = curl_multi_init()) == NULL) {
		free(f);
		*err = xstrdup("curl_multi_init failed");
		return NULL;
	}
	evtimer_assign(&f->timer, base, fetch_timer_event, f);
	if ((mc = curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION,
	    fetch_sock_cb)) != CURLM_OK ||
	    (mc = curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA,
	    f)) != CURLM_OK ||
	    (mc = curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION,
	    fetch_timer_cb)) != CURLM_OK ||
	    (mc = curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA,
	    f)) != CURLM_OK ||
	    (mc = curl_multi_setopt(f->multi, CURLMOPT_PIPELINING,
	    (long)CURLPIPE_MULTIPLEX)) != CURLM_OK) {
		*err = xasprintf("curl_multi_setopt: %s",
		    curl_multi_strerror(mc));
		curl_multi_cleanup(f->multi);
		free(f);
		return NULL;
	}
	fetch_set_max_connections(f, FETCH_DEFAULT_MAXCONN);
	return f;
}

void
fetch_set_max_connections(struct fetch *f, int per_host)
{
	if (per_host < 1)
		per_host = 1;
	curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)per_host);
	/* Room in the keep-alive cache for every host connection plus a few
	 * for other hosts (webhooks). */
	curl_multi_setopt(f->multi, CURLMOPT_MAXCONNECTS, (long)per_host + 8);
}

static void
fetch_req_free(struct fetch_req *r)
{
	curl_easy_cleanup(r->easy);
	free(r->buf);
	free(r->hdrs);
	free(r->hdrbuf);
	free(r->post);
	free(r);
}

/* Builds r's header list: "Expect:" (no 100-continue waits on larger
 * bodies), then the caller's, copied into r's own buffers. */
static void
fetch_build_headers(struct fetch_req *r, const char *const *headers)
{
	size_t	 n = 1, len = sizeof("Expect:"), i, l;
	char	*p;

	for (i = 0; headers != NULL && headers[i] != NULL; i++) {
		n++;
		len += strlen(headers[i]) + 1;
	}
	if (n > r->nhdrs) {
		free(r->hdrs);
		r->hdrs = xcalloc(n, sizeof(*r->hdrs));
		r->nhdrs = n;
	}
	if (len > r->hdrcap) {
		free(r->hdrbuf);
		r->hdrbuf = xmalloc(len);
		r->hdrcap = len;
	}
	p = r->hdrbuf;
	memcpy(p, "Expect:", sizeof("Expect:"));
	r->hdrs[0].data = p;
	p += sizeof("Expect:");
	for (i = 0; i + 1 < n; i++) {
		l = strlen(headers[i]) + 1;
		memcpy(p, headers[i], l);
		r->hdrs[i + 1].data = p;
		p += l;
	}
	for (i = 0; i < n; i++)
		r->hdrs[i].next = i + 1 < n ? &r->hdrs[i + 1] : NULL;
}

/* Copies the body into r's buffer; curl sends it from there. */
static const char *
fetch_copy_body(struct fetch_req *r, const char *body, size_t len)
{
	if (len + 1 > r->postcap) {
		free(r->post);
		r->postcap = (len + 1 + 255) & ~(size_t)255;
		r->post = xmalloc(r->postcap);
	}
	memcpy(r->post, body, len);
	r->post[len] = '\0';
	return r->post;
}

void
fetch_free(struct fetch *f)
{
	struct fetch_req	*r;
	struct fetch_sock	*fs;

	if (f == NULL)
		return;
	while ((r = TAILQ_FIRST(&f->active)) != NULL) {
		fetch_recycle(r);	/* aborted without calling back */
		f->inflight--;
	}
	while ((r = TAILQ_FIRST(&f->idle)) != NULL) {
		TAILQ_REMOVE(&f->idle, r, entry);
		fetch_req_free(r);
	}
	curl_multi_cleanup(f->multi);
	evtimer_del(&f->timer);
	while ((fs = LIST_FIRST(&f->socks)) != NULL) {
		if (fs->assigned)
			event_del(&fs->ev);
		LIST_REMOVE(fs, entry);
		free(fs);
	}
	fetch_ident_release(f->ident);
	free(f);
}

void
fetch_set_tls(struct fetch *f, const struct fetch_tls *tls)
{
	struct fetch_ident	*id;

	id = xcalloc(1, sizeof(*id));
	id->refs = 1;
	if (tls != NULL) {
		id->cert = tls->cert != NULL ? xstrdup(tls->cert) : NULL;
		id->key = tls->key != NULL ? xstrdup(tls->key) : NULL;
		id->ca = tls->ca != NULL ? xstrdup(tls->ca) : NULL;
	}
	fetch_ident_release(f->ident);
	f->ident = id;
	f->ident_gen++;
}

size_t
fetch_inflight(const struct fetch *f)
{
	return f->inflight;
}

#define SETOPT(e, opt, val) do {					\
	if ((cc = curl_easy_setopt((e), opt, (val))) != CURLE_OK) {	\
		optname = #opt;						\
		goto fail;						\
	}								\
} while (0)

/* Sets the options that stay the same from one request of this profile to
 * the next on a fresh or reset handle. Returns 0, or -1 (logged). */
static int
fetch_setup_handle(struct fetch_req *r, int profile, struct fetch_ident *id)
{
	const char	*optname = "";
	CURLcode	 cc = CURLE_OK;

	SETOPT(r->easy, CURLOPT_PRIVATE, (void *)r);
#if LIBCURL_VERSION_NUM >= 0x075500
	SETOPT(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SETOPT(r->easy, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SETOPT(r->easy, CURLOPT_NOSIGNAL, 1L);
	SETOPT(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	SETOPT(r->easy, CURLOPT_USERAGENT, r->f->useragent);
	SETOPT(r->easy, CURLOPT_WRITEFUNCTION, fetch_write_cb);
	SETOPT(r->easy, CURLOPT_WRITEDATA, (void *)r);
	SETOPT(r->easy, CURLOPT_HEADERFUNCTION, fetch_header_cb);
	SETOPT(r->easy, CURLOPT_HEADERDATA, (void *)r);
	SETOPT(r->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)FETCH_BODY_MAX);
	SETOPT(r->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(r->easy, CURLOPT_PIPEWAIT, 1L);
	SETOPT(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	if (profile & FETCH_P_TLS12) {
		SETOPT(r->easy, CURLOPT_SSLVERSION,
		    (long)(CURL_SSLVERSION_TLSv1_2 |
		    CURL_SSLVERSION_MAX_TLSv1_2));
		/* Its own handshake, and no later request inherits a
		 * connection made with a version pinned. */
		SETOPT(r->easy, CURLOPT_FRESH_CONNECT, 1L);
		SETOPT(r->easy, CURLOPT_FORBID_REUSE, 1L);
	} else
		SETOPT(r->easy, CURLOPT_SSLVERSION,
		    (long)CURL_SSLVERSION_TLSv1_2);
	/* Never anything else, whatever the configuration says. */
	SETOPT(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
	SETOPT(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (!(profile & FETCH_P_BODY))
		SETOPT(r->easy, CURLOPT_HTTPGET, 1L);
	if (id != NULL) {
		if (id->cert != NULL) {
			SETOPT(r->easy, CURLOPT_SSLCERT, id->cert);
			SETOPT(r->easy, CURLOPT_SSLCERTTYPE, "PEM");
		}
		if (id->key != NULL) {
			SETOPT(r->easy, CURLOPT_SSLKEY, id->key);
			SETOPT(r->easy, CURLOPT_SSLKEYTYPE, "PEM");
		}
		if (id->ca != NULL)
			SETOPT(r->easy, CURLOPT_CAINFO, id->ca);
	}
	if (profile & FETCH_P_VERBOSE) {
		SETOPT(r->easy, CURLOPT_DEBUGFUNCTION, fetch_debug_cb);
		SETOPT(r->easy, CURLOPT_VERBOSE, 1L);
	}
#if LIBCURL_VERSION_NUM >= 0x075000
	if (profile & FETCH_P_SENT) {
		SETOPT(r->easy, CURLOPT_PREREQFUNCTION, fetch_prereq_cb);
		SETOPT(r->easy, CURLOPT_PREREQDATA, (void *)r);
	}
#endif
	return 0;
fail:
	log_warnx("fetch: cannot set %s: %s", optname, curl_easy_strerror(cc));
	return -1;
}

int
fetch_submit(struct fetch *f, const struct fetch_request *rq,
    fetch_done_fn done, void *arg)
{
	struct fetch_req	*r;
	struct fetch_ident	*id = NULL;
	const char		*optname = "";
	CURLcode		 cc = CURLE_OK;
	CURLMcode		 mc;
	int64_t			 timeout, connect, deadline;
	struct timeval		 tv;
	int			 profile = 0;

	if (rq->use_tls_identity && f->ident != NULL) {
		id = f->ident;
		profile |= FETCH_P_TLS;
	}
	if (rq->body != NULL)
		profile |= FETCH_P_BODY;
	if (rq->sent != NULL)
		profile |= FETCH_P_SENT;
	if (rq->tls12_check && id != NULL)
		profile |= FETCH_P_TLS12;
	if (log_getverbose() >= 2)
		profile |= FETCH_P_VERBOSE;

	if ((r = TAILQ_FIRST(&f->idle)) != NULL)
		TAILQ_REMOVE(&f->idle, r, entry);
	else {
		r = xcalloc(1, sizeof(*r));
		r->f = f;
		if ((r->easy = curl_easy_init()) == NULL) {
			free(r);
			log_warnx("fetch: curl_easy_init failed");
			return -1;
		}
		evtimer_assign(&r->deadline, f->base, fetch_deadline_event, r);
	}
	r->errbuf[0] = '\0';
	r->len = 0;
	r->too_big = 0;
	r->cut_body = rq->cut_body;
	r->cut = 0;
	r->has_retry_after = 0;

	/* Options stay set between requests: a handle last used for the
	 * same kind of request (and identity) needs only the per-request
	 * ones. */
	if (!r->configured || r->profile != profile ||
	    ((profile & FETCH_P_TLS) && r->ident_gen != f->ident_gen)) {
		if (r->configured)
			curl_easy_reset(r->easy);
		r->configured = 0;
		if (fetch_setup_handle(r, profile, id) == -1)
			goto drop;
		r->configured = 1;
		r->profile = profile;
		r->ident_gen = f->ident_gen;
	}

	timeout = rq->timeout_ms > 0 ? rq->timeout_ms : FETCH_DEFAULT_TIMEOUT;
	connect = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : timeout;
	if (connect > timeout)
		connect = timeout;

	fetch_build_headers(r, rq->headers);
	SETOPT(r->easy, CURLOPT_URL, rq->url);
	SETOPT(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	SETOPT(r->easy, CURLOPT_TIMEOUT_MS, (long)timeout);
	SETOPT(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
	/* A Content-Length past the cap is refused before the body unless
	 * the body is to be cut (0: no such check). */
	SETOPT(r->easy, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)(rq->cut_body ? 0 : FETCH_BODY_MAX));
	if (rq->body != NULL) {
		SETOPT(r->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)rq->body_len);
		SETOPT(r->easy, CURLOPT_POSTFIELDS,
		    fetch_copy_body(r, rq->body, rq->body_len));
	}

	r->done = done;
	r->sent = rq->sent;
	r->arg = arg;
	r->started = util_mono_ms();
	if ((mc = curl_multi_add_handle(f->multi, r->easy)) != CURLM_OK) {
		log_warnx("fetch: curl_multi_add_handle: %s",
		    curl_multi_strerror(mc));
		goto drop;
	}
	if (id != NULL) {
		id->refs++;
		r->ident = id;
	}
	r->inflight = 1;
	TAILQ_INSERT_TAIL(&f->active, r, entry);
	f->inflight++;
	deadline = timeout + FETCH_DEADLINE_SLACK;
	tv.tv_sec = deadline / 1000;
	tv.tv_usec = (deadline % 1000) * 1000;
	evtimer_add(&r->deadline, &tv);
#if LIBCURL_VERSION_NUM < 0x075000
	if (r->sent != NULL)
		r->sent(r->arg, 0);	/* no hook: the start will do */
#endif
	return 0;

fail:
	log_warnx("fetch: cannot set %s: %s", optname, curl_easy_strerror(cc));
	r->configured = 0;
drop:
	r->done = NULL;
	r->sent = NULL;
	r->arg = NULL;
	TAILQ_INSERT_HEAD(&f->idle, r, entry);
	return -1;
}

static void
fetch_ssl_reason(char *buf, size_t size)
{
	unsigned long	 e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0)
		util_strlcpy(buf, "no details", size);
	else
		ERR_error_string_n(last, buf, size);
}

/* Never prompts: an encrypted key is refused, not asked about. */
static int
fetch_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

int
fetch_check_identity(const char *cert, const char *key, int64_t *not_after,
    char **err)
{
	FILE		*fp;
	X509		*x = NULL;
	EVP_PKEY	*pk = NULL;
	struct tm	 tm;
	char		 why[256];
	int		 rc = -1;

	*not_after = 0;
	if (key == NULL)
		key = cert;	/* the key may sit in the certificate's file */
	ERR_clear_error();
	if ((fp = fopen(cert, "r")) == NULL) {
		*err = xasprintf("%s: cannot read: %s", cert, strerror(errno));
		goto out;
	}
	x = PEM_read_X509(fp, NULL, fetch_no_passphrase, NULL);
	fclose(fp);
	if (x == NULL) {
		fetch_ssl_reason(why, sizeof(why));
		*err = xasprintf("%s: no PEM certificate in it (%s)", cert,
		    why);
		goto out;
	}
	if ((fp = fopen(key, "r")) == NULL) {
		*err = xasprintf("%s: cannot read: %s", key, strerror(errno));
		goto out;
	}
	pk = PEM_read_PrivateKey(fp, NULL, fetch_no_passphrase, NULL);
	fclose(fp);
	if (pk == NULL) {
		fetch_ssl_reason(why, sizeof(why));
		*err = xasprintf("%s: no usable PEM private key in it "
		    "(encrypted keys are not supported) (%s)", key, why);
		goto out;
	}
	if (X509_check_private_key(x, pk) != 1) {
		*err = xasprintf("%s does not match %s", key, cert);
		goto out;
	}
	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
		*err = xasprintf("%s: unreadable notAfter date", cert);
		goto out;
	}
	*not_after = (int64_t)timegm(&tm);
	rc = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(pk);
	X509_free(x);
	return rc;
}
