/* reconciled: the daemon's entry point. Parses the command line, brings the
 * modules up in dependency order and down in reverse, and turns signals
 * into a bounded drain (SIGTERM, SIGINT) or a configuration reload (SIGHUP). */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <getopt.h>
#ifdef HAVE_MALLOC_TRIM
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "config.h"
#include "control.h"
#include "fetch.h"
#include "gate.h"
#include "leader.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "poller.h"
#include "sdnotify.h"
#include "sink-jsonl.h"
#include "sink-webhook.h"
#include "util.h"

#define EXIT_RUNTIME		1
#define STOP_MARGIN_MS		5000	/* drain bound: timeout + this */
#define CERT_WARN_SECONDS	(30 * 86400)
#define CERT_CHECK_PERIOD_S	86400	/* the expiry warning, once a day */
#define TRIM_PERIOD_S		5	/* free heap back to the system */
/* Descriptors besides the Toss and control connections: stdio, the
 * ledger with its WAL and journal, the jsonl file, the webhook, libevent's
 * own, the listener, sd_notify, DNS. */
#define FD_RESERVE		32

struct daemon {
	const char		*config_path;
	struct config		*cfg;
	struct ledger		*ledger;
	struct event_base	*base;
	struct fetch		*fetch;
	struct poller		*poller;
	struct leader		*leader;	/* PostgreSQL: who leads */
	struct event		*sinks_timer;	/* a leader's sinks, again */
	struct sink_jsonl	*jsonl;
	struct sink_webhook	*webhook;
	struct control		*control;
	struct sdnotify		*notify;
	int64_t			 cert_not_after;	/* unix s, 0 unknown */
	struct event		*cert_timer;	/* daily expiry warning */
	struct event		*trim_timer;	/* gives free heap back */
	int			 reload_failed;	/* the last SIGHUP kept the old config */

	struct event		*ev_term;
	struct event		*ev_int;
	struct event		*ev_hup;
	struct event		*stop_timer;
	struct event		*ev_damaged;	/* the ledger found damaged */
	struct event		*once_timer;	/* --once: webhook catch-up */
	int64_t			 once_deadline;	/* mono ms */
	uint64_t		 once_failures;

	int			 drains;	/* poller and webhook still draining */
	int			 once;
	int			 once_ended;	/* --once: the poller is done */
	int			 once_started;	/* --once: the poller began */
	int64_t			 started_ms;	/* unix ms */
	int			 stopping;
	int			 exit_code;
};

static int	daemon_sinks_start(struct daemon *, char **);
static int	daemon_sinks_reload(struct daemon *, const struct config *,
		    char **);
static void	daemon_once_webhook(evutil_socket_t, short, void *);

static const struct option daemon_longopts[] = {
	{ "config",	required_argument,	NULL,	'c' },
	{ "check",	no_argument,		NULL,	'n' },
	{ "once",	no_argument,		NULL,	'O' },
	{ "verbose",	no_argument,		NULL,	'v' },
	{ "version",	no_argument,		NULL,	'V' },
	{ "help",	no_argument,		NULL,	'h' },
	{ NULL,		0,			NULL,	0 }
};

static void
daemon_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: reconciled [-c FILE] [-n [-n]] [--once] [-v]... [-V]\n"
	    "  -c, --config FILE  configuration file (default:\n"
	    "                     $RECONCILED_CONFIG, else %s)\n"
	    "  -n, --check        check the configuration, the client\n"
	    "                     certificate and the ledger as a start\n"
	    "                     does, print \"configuration OK\", exit\n"
	    "                     (twice: also read all of the ledger for\n"
	    "                     damage, which takes time with its size)\n"
	    "      --once         poll every order due now, wait for the\n"
	    "                     answers, exit\n"
	    "  -v, --verbose      more logging (twice: with libcurl's own\n"
	    "                     chatter)\n"
	    "  -V, --version      print the versions of reconciled and its\n"
	    "                     libraries\n"
	    "  -h, --help         this text\n", CONFIG_DEFAULT_PATH);
}

static const char *
daemon_curl_version(void)
{
	curl_version_info_data	*v = curl_version_info(CURLVERSION_NOW);

	return v != NULL && v->version != NULL ? v->version : "?";
}

static const char *
daemon_tls_version(void)
{
	curl_version_info_data	*v = curl_version_info(CURLVERSION_NOW);

	return v != NULL && v->ssl_version != NULL ? v->ssl_version : "no TLS";
}

static void
daemon_print_versions(void)
{
	char	 ledgers[256];

	ledger_versions(ledgers, sizeof(ledgers), "\n");
	printf("reconciled %s\n", PACKAGE_VERSION);
	printf("libevent %s\n", event_get_version());
	printf("libcurl %s\n", daemon_curl_version());
	printf("json-c %s\n", json_c_version());
	printf("%s\n", ledgers);
}

/* The message for a certificate that expired (caller frees). */
static char *
daemon_cert_expired(const char *cert, int64_t not_after)
{
	char	 when[UTIL_TIME_MAX];

	util_fmt_time(not_after * 1000, when);
	return xasprintf("client certificate %s expired on %s: Toss will"
	    " refuse it; issue a new one in the Toss console", cert, when);
}

/* Says how long a certificate that has not expired is still valid: a
 * warning within CERT_WARN_SECONDS of its end, an info line otherwise. */
static void
daemon_cert_validity(const char *cert, int64_t not_after, int64_t now)
{
	int64_t	 days = (not_after - now) / 86400;
	char	 when[UTIL_TIME_MAX];

	util_fmt_time(not_after * 1000, when);
	if (not_after - now < CERT_WARN_SECONDS)
		log_warning("client certificate %s expires on %s (in %lld"
		    " day%s): issue a new one in the Toss console", cert,
		    when, (long long)days, days == 1 ? "" : "s");
	else
		log_info("client certificate %s valid until %s", cert, when);
}

/* Checks that cfg names a client certificate and key that load and match
 * and that the certificate has not expired; logs how long it is valid.
 * Returns 0, or -1 with *err set (caller frees). */
static int
daemon_check_identity(const struct config *cfg, int64_t *not_afterp,
    char **err)
{
	int64_t	 not_after, now = (int64_t)time(NULL);

	if (cfg->cert == NULL) {
		*err = xstrdup("no client certificate configured ([api] cert);"
		    " Toss requires mTLS");
		return -1;
	}
	if (fetch_check_identity(cfg->cert, cfg->key, &not_after, err) == -1)
		return -1;
	if (not_after <= now) {
		*err = daemon_cert_expired(cfg->cert, not_after);
		return -1;
	}
	if (not_afterp != NULL)
		*not_afterp = not_after;
	daemon_cert_validity(cfg->cert, not_after, now);
	return 0;
}

/* Once a day: the same expiry warning as at startup, so that a certificate
 * running out is in the journal well before Toss refuses it. */
static void
daemon_cert_check(evutil_socket_t fd, short kind, void *arg)
{
	struct daemon	*d = arg;
	int64_t		 now = (int64_t)time(NULL);
	char		*msg;

	if (d->cert_not_after == 0 || d->cfg->cert == NULL)
		return;
	if (d->cert_not_after <= now) {
		msg = daemon_cert_expired(d->cfg->cert, d->cert_not_after);
		log_warnx("%s", msg);
		free(msg);
	} else
		daemon_cert_validity(d->cfg->cert, d->cert_not_after, now);
}

/* The STATUS= line systemctl status shows: what the loop is doing, the
 * orders waiting, the requests in flight and how far the sinks lag. */
static void
daemon_status(char *buf, size_t size, void *arg)
{
	struct daemon			*d = arg;
	struct poller_stats		 st;
	struct ledger_stats		 ls;
	struct sink_jsonl_stats		 js;
	struct sink_webhook_stats	 ws;
	char				 what[64], sinks[96] = "";
	char				 role[96] = "", t[UTIL_TIME_MAX];
	const char			*name;
	int64_t				 since, epoch;

	poller_get_stats(d->poller, &st);
	if (d->leader != NULL) {
		name = leader_role(d->leader, &since, &epoch);
		if (epoch > 0)
			snprintf(role, sizeof(role), "%s (epoch %lld) since"
			    " %s; ", name, (long long)epoch,
			    util_fmt_time(since, t));
		else if (since > 0)
			snprintf(role, sizeof(role), "%s since %s; ", name,
			    util_fmt_time(since, t));
		else
			snprintf(role, sizeof(role), "%s; ", name);
	}
	if (d->stopping)
		snprintf(what, sizeof(what), "stopping");
	else if (st.pause != PAUSE_NONE)
		snprintf(what, sizeof(what), "paused (%s)",
		    gate_reason_name(st.pause));
	else if (!poller_leading(d->poller))
		snprintf(what, sizeof(what), "taking intake");
	else
		snprintf(what, sizeof(what), "polling");
	if (ledger_stats(d->ledger, util_now_ms(), &ls) == -1) {
		snprintf(buf, size, "%s%s: %zu in flight; the ledger cannot be"
		    " read (see the log)", role, what, st.inflight);
		return;
	}
	if (d->jsonl != NULL) {
		sink_jsonl_get_stats(d->jsonl, &js);
		snprintf(sinks, sizeof(sinks), ", jsonl lag %lld",
		    (long long)(ls.last_event_id - js.delivered_id));
	}
	if (d->webhook != NULL) {
		size_t	 used = strlen(sinks);

		sink_webhook_get_stats(d->webhook, &ws);
		snprintf(sinks + used, sizeof(sinks) - used,
		    ", webhook lag %lld%s",
		    (long long)(ls.last_event_id - ws.delivered_id),
		    ws.disabled ? " (disabled)" : "");
	}
	snprintf(buf, size, "%s%s: %lld pending, %lld held, %lld due, %zu in"
	    " flight; %lld events%s%s", role, what,
	    (long long)ls.orders[ST_PENDING],
	    (long long)ls.orders[ST_HELD], (long long)ls.due, st.inflight,
	    (long long)ls.events, sinks,
	    d->reload_failed ? "; last reload failed (see the log)" : "");
}

static void
daemon_set_tls(struct daemon *d)
{
	struct fetch_tls	 tls;

	tls.cert = d->cfg->cert;
	tls.key = d->cfg->key;
	tls.ca = d->cfg->ca;
	fetch_set_tls(d->fetch, &tls);
}

/* Warns (start, reload, -n) about a file others may read (mode o+r)
 * that holds a secret. */
static void
daemon_warn_mode(const char *path, const char *what)
{
	struct stat	 sb;

	if (path == NULL || stat(path, &sb) == -1 || !(sb.st_mode & S_IROTH))
		return;
	log_warning("%s %s is readable by every user (mode %04o): chmod o-r"
	    " it", what, path, (unsigned)(sb.st_mode & 07777));
}

/* The descriptors a config may need at once, against RLIMIT_NOFILE (its
 * soft limit raised towards the hard one when short). A warning only: the
 * control API pauses accepting when descriptors run out, polling goes on. */
static void
daemon_check_fds(const struct config *cfg)
{
	struct rlimit	 rl;
	rlim_t		 need;

	need = (rlim_t)cfg->max_inflight + FD_RESERVE +
	    (cfg->listen != NULL ? (rlim_t)cfg->max_connections : 0);
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need &&
	    (rl.rlim_max == RLIM_INFINITY || rl.rlim_max > rl.rlim_cur)) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ||
		    rl.rlim_max > need ? need : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
		log_warning("descriptor limit %llu is below the %llu this"
		    " configuration may use ([api] max_inflight %d, [control]"
		    " max_connections %d, %d more): lower them or raise"
		    " LimitNOFILE=", (unsigned long long)rl.rlim_cur,
		    (unsigned long long)need, cfg->max_inflight,
		    cfg->listen != NULL ? cfg->max_connections : 0,
		    FD_RESERVE);
}

/* What a valid configuration may still get wrong: said at start, on reload
 * and with -n. */
static void
daemon_warn_config(const struct config *cfg)
{
	if (config_plain_http(cfg))
		log_warning("base_url %s is plain http: answers are not"
		    " authenticated and the client certificate is not used"
		    " (a local simulator only)", cfg->base_url);
	if (cfg->token != NULL || cfg->webhook_secret != NULL)
		daemon_warn_mode(cfg->path, "the configuration file holding"
		    " a secret,");
	daemon_warn_mode(cfg->key, "the private key");
	daemon_check_fds(cfg);
}

/* -n: config, identity and ledger, as a start checks them; nothing else
 * starts. The units run it before every start and reload, so it must stay
 * as quick as a start. full (-n -n): the ledger also gets SQLite's
 * quick_check, which reads the whole file (seconds for millions of
 * orders). */
static int
daemon_check(const char *path, int full)
{
	struct config	*cfg = NULL;
	struct ledger	*ledger;
	char		*err = NULL;

	if (config_load(path, &cfg, &err) == -1) {
		log_warnx("%s", err);
		free(err);
		return EX_CONFIG;
	}
	daemon_warn_config(cfg);
	if (daemon_check_identity(cfg, NULL, &err) == -1 ||
	    (cfg->jsonl != NULL && sink_jsonl_check(cfg->jsonl, &err) == -1)) {
		log_warnx("%s", err);
		free(err);
		config_free(cfg);
		return EX_CONFIG;
	}
	if ((ledger = ledger_open(config_ledger(cfg), 0, &err)) == NULL) {
		log_warnx("%s", err);
		free(err);
		config_free(cfg);
		return EXIT_RUNTIME;
	}
	if (full && ledger_quick_check(ledger, &err) == -1) {
		log_warnx("%s", err);
		free(err);
		ledger_close(ledger);
		config_free(cfg);
		return EXIT_RUNTIME;
	}
	ledger_close(ledger);
	config_free(cfg);
	printf("configuration OK\n");
	return fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
}

#ifdef HAVE_MALLOC_TRIM
/* Requests, TLS records and ledger pages of every size come and go between
 * long-lived connections: glibc keeps the holes, and a bench showed half of
 * a 45 MB heap free but resident after 200,000 polls. Handing the free
 * pages back now and then keeps the resident size flat (a few ms). */
static void
daemon_trim(evutil_socket_t fd, short what, void *arg)
{
	(void)malloc_trim(0);
}
#endif

static const char *
daemon_signame(int sig)
{
	switch (sig) {
	case SIGTERM:
		return "SIGTERM";
	case SIGINT:
		return "SIGINT";
	case SIGHUP:
		return "SIGHUP";
	}
	return "a signal";
}

/* Called once by the poller and once by the webhook sink when they have
 * nothing in flight; the last one ends the loop. */
static void
daemon_drained(void *arg)
{
	struct daemon	*d = arg;

	if (--d->drains > 0)
		return;
	if (d->jsonl != NULL)
		sink_jsonl_deliver(d->jsonl);
	log_info("no request in flight: shutting down");
	event_base_loopexit(d->base, NULL);
}

static void
daemon_stop_timeout(evutil_socket_t fd, short kind, void *arg)
{
	struct daemon		*d = arg;
	struct poller_stats	 st;

	poller_get_stats(d->poller, &st);
	log_warning("shutdown: %zu request%s still in flight after %llds:"
	    " abandoning them (their leases expire and they are polled again)",
	    st.inflight, st.inflight == 1 ? "" : "s",
	    (long long)((d->cfg->timeout_ms + STOP_MARGIN_MS) / 1000));
	event_base_loopexit(d->base, NULL);
}

/* Stops claiming and lets the requests in flight finish (bounded); the
 * loop ends once they have. why says what asked for it. */
static void
daemon_stop(struct daemon *d, const char *why)
{
	struct poller_stats	 st;
	struct timeval		 tv;
	int64_t			 bound;

	poller_get_stats(d->poller, &st);
	d->stopping = 1;
	sdnotify_stopping(d->notify);
	bound = d->cfg->timeout_ms + STOP_MARGIN_MS;
	log_info("%s: stopping; waiting up to %llds for %zu request%s"
	    " in flight", why, (long long)(bound / 1000),
	    st.inflight, st.inflight == 1 ? "" : "s");
	if (d->control != NULL) {
		/* No new orders or long polls while draining. */
		control_free(d->control);
		d->control = NULL;
	}
	d->drains = 1 + (d->webhook != NULL);
	poller_drain(d->poller, daemon_drained, d);
	if (d->webhook != NULL)
		sink_webhook_drain(d->webhook, daemon_drained, d);
	if (d->webhook != NULL && d->cfg->webhook_timeout_ms > d->cfg->timeout_ms)
		bound = d->cfg->webhook_timeout_ms + STOP_MARGIN_MS;
	tv.tv_sec = bound / 1000;
	tv.tv_usec = (bound % 1000) * 1000;
	evtimer_add(d->stop_timer, &tv);
}

static void
daemon_on_stop(evutil_socket_t sig, short kind, void *arg)
{
	struct daemon		*d = arg;
	struct poller_stats	 st;
	char			 why[64];

	if (d->stopping) {
		poller_get_stats(d->poller, &st);
		log_warning("received %s again: stopping now, abandoning %zu"
		    " request%s in flight", daemon_signame((int)sig),
		    st.inflight, st.inflight == 1 ? "" : "s");
		event_base_loopexit(d->base, NULL);
		return;
	}
	snprintf(why, sizeof(why), "received %s", daemon_signame((int)sig));
	daemon_stop(d, why);
}

/* The ledger's damage callback, called from inside the failing ledger
 * call: says so once and leaves the stop to the loop. Retrying cannot
 * help, and nothing is lost by stopping: an order is settled only by a
 * committed write, so whatever is in flight is polled again later. */
static void
daemon_ledger_damaged(void *arg)
{
	struct daemon	*d = arg;

	log_warnx("ledger %s is damaged: %s; stopping: restore it from a"
	    " backup, `reconciled -n -n` checks a file", ledger_path(d->ledger),
	    ledger_damaged(d->ledger));
	d->exit_code = EXIT_RUNTIME;
	event_active(d->ev_damaged, EV_TIMEOUT, 0);
}

static void
daemon_on_damaged(evutil_socket_t fd, short kind, void *arg)
{
	struct daemon	*d = arg;

	/* A --once run may have ended already (its claim failed). */
	if (!d->stopping && !d->once_ended)
		daemon_stop(d, "the ledger is damaged");
}

/* 1 when two optional strings are equal (both NULL included). */
static int
daemon_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
daemon_on_reload(evutil_socket_t sig, short kind, void *arg)
{
	struct daemon		*d = arg;
	struct config		*cfg = NULL, *old;
	struct poller_stats	 st;
	char			*err = NULL, *name;
	int64_t			 not_after = 0;
	int			 moved;

	if (d->stopping) {
		log_info("received SIGHUP while stopping: ignored");
		return;
	}
	log_info("received SIGHUP: reloading %s", d->config_path);
	sdnotify_reloading(d->notify);
	if (config_load(d->config_path, &cfg, &err) == -1 ||
	    daemon_check_identity(cfg, &not_after, &err) == -1 ||
	    (!poller_leading(d->poller) && cfg->jsonl != NULL &&
	    sink_jsonl_check(cfg->jsonl, &err) == -1) ||
	    (poller_leading(d->poller) &&
	    daemon_sinks_reload(d, cfg, &err) == -1)) {
		log_warnx("reload failed, keeping the old configuration: %s",
		    err);
		free(err);
		config_free(cfg);
		d->reload_failed = 1;
		sdnotify_ready(d->notify);
		return;
	}
	daemon_warn_config(cfg);
	if (strcmp(config_ledger(cfg), config_ledger(d->cfg)) != 0) {
		name = ledger_name(config_ledger(cfg));
		log_warning("[ledger] changed to %s: the daemon keeps using %s"
		    " until it is restarted", name, ledger_path(d->ledger));
		free(name);
	}
	moved = !daemon_same(cfg->cert, d->cfg->cert) ||
	    !daemon_same(cfg->key, d->cfg->key);
	poller_get_stats(d->poller, &st);
	if (moved && st.inflight > 0)
		log_info("client certificate changed to %s: %zu request%s in"
		    " flight finish with the old one", cfg->cert, st.inflight,
		    st.inflight == 1 ? "" : "s");
	old = d->cfg;
	d->cfg = cfg;
	d->cert_not_after = not_after;
	daemon_set_tls(d);
	poller_set_config(d->poller, cfg);
	if (d->control != NULL)
		control_set_config(d->control, cfg);
	/* Nothing holds the old configuration any more: fetch and the sinks
	 * copied their strings, the poller and control switched. */
	config_free(old);
	log_info("configuration reloaded");
	d->reload_failed = 0;
	sdnotify_ready(d->notify);
}

static void
daemon_once_done(void *arg)
{
	struct daemon		*d = arg;
	struct poller_stats	 st;

	d->once_ended = 1;
	poller_get_stats(d->poller, &st);
	log_info("--once: %llu attempt%s, %llu answer%s, %llu error%s,"
	    " %llu rescheduled by a pause", (unsigned long long)st.polls,
	    st.polls == 1 ? "" : "s", (unsigned long long)st.answers,
	    st.answers == 1 ? "" : "s", (unsigned long long)st.errors,
	    st.errors == 1 ? "" : "s", (unsigned long long)st.paused_attempts);
	if (d->jsonl != NULL && sink_jsonl_deliver(d->jsonl) == -1)
		d->exit_code = EXIT_RUNTIME;
	if (ledger_damaged(d->ledger) != NULL)
		d->exit_code = EXIT_RUNTIME;	/* said when it was found */
	else if (st.ledger_errors > 0) {
		log_warnx("--once: the ledger failed %llu time%s",
		    (unsigned long long)st.ledger_errors,
		    st.ledger_errors == 1 ? "" : "s");
		d->exit_code = EXIT_RUNTIME;
	} else if (st.pause != PAUSE_NONE) {
		log_warnx("--once: stopped early by a %s pause; the orders left"
		    " are still due", gate_reason_name(st.pause));
		d->exit_code = EXIT_RUNTIME;
	}
	if (d->webhook != NULL) {
		/* Wait (bounded) for the webhook to take this run's events. */
		struct sink_webhook_stats	 ws;

		sink_webhook_get_stats(d->webhook, &ws);
		d->once_failures = ws.failures;
		d->once_deadline = util_mono_ms() + d->cfg->webhook_timeout_ms +
		    STOP_MARGIN_MS;
		sink_webhook_kick(d->webhook);
		daemon_once_webhook(-1, 0, d);
		return;
	}
	event_base_loopexit(d->base, NULL);
}

static int
daemon_signals(struct daemon *d)
{
	d->ev_term = evsignal_new(d->base, SIGTERM, daemon_on_stop, d);
	d->ev_int = evsignal_new(d->base, SIGINT, daemon_on_stop, d);
	d->ev_hup = evsignal_new(d->base, SIGHUP, daemon_on_reload, d);
	d->stop_timer = evtimer_new(d->base, daemon_stop_timeout, d);
	if (d->ev_term == NULL || d->ev_int == NULL || d->ev_hup == NULL ||
	    d->stop_timer == NULL)
		return -1;
	if (evsignal_add(d->ev_term, NULL) == -1 ||
	    evsignal_add(d->ev_int, NULL) == -1 ||
	    evsignal_add(d->ev_hup, NULL) == -1)
		return -1;
	return 0;
}

static void
daemon_teardown(struct daemon *d)
{
	sdnotify_free(d->notify);
	d->notify = NULL;
	if (d->cert_timer != NULL)
		event_free(d->cert_timer);
	if (d->trim_timer != NULL)
		event_free(d->trim_timer);
	if (d->ev_term != NULL)
		event_free(d->ev_term);
	if (d->ev_int != NULL)
		event_free(d->ev_int);
	if (d->ev_hup != NULL)
		event_free(d->ev_hup);
	if (d->stop_timer != NULL)
		event_free(d->stop_timer);
	/* Closing may still roll back: not into a freed event. */
	if (d->ledger != NULL)
		ledger_set_damaged_cb(d->ledger, NULL, NULL);
	if (d->ev_damaged != NULL)
		event_free(d->ev_damaged);
	if (d->once_timer != NULL)
		event_free(d->once_timer);
	control_free(d->control);
	leader_free(d->leader);
	d->leader = NULL;
	if (d->sinks_timer != NULL)
		event_free(d->sinks_timer);
	if (d->webhook != NULL)
		sink_webhook_free(d->webhook);
	if (d->jsonl != NULL)
		sink_jsonl_free(d->jsonl);
	poller_free(d->poller);
	fetch_free(d->fetch);
	ledger_close(d->ledger);
	if (d->base != NULL)
		event_base_free(d->base);
	config_free(d->cfg);
}

/* The leader's heartbeat is fresh: the poller may claim and ask. */
static int
daemon_lead_ok(void *arg, int64_t mono)
{
	struct daemon	*d = arg;

	return leader_valid(d->leader, mono);
}

/* Starts a new leader's sinks; while the ledger cannot be read (a
 * database just back), tries again every second. The events wait in the
 * outbox meanwhile. */
static void
daemon_lead_sinks(evutil_socket_t fd, short what, void *arg)
{
	struct daemon	*d = arg;
	struct timeval	 tv = { 1, 0 };
	char		*err = NULL;

	if (d->stopping || !poller_leading(d->poller) ||
	    daemon_sinks_start(d, &err) == 0)
		return;
	log_warnx("leader: the sinks cannot start yet: %s; trying again in"
	    " 1 s", err);
	free(err);
	evtimer_add(d->sinks_timer, &tv);
}

/* Leadership changed on a shared ledger. The leader polls and delivers;
 * a standby takes intake and answers queries. The fence stays at the last
 * epoch won after stepping down: what was in flight is written only if no
 * other instance has won since. */
static void
daemon_role(void *arg, int leading, int64_t epoch)
{
	struct daemon	*d = arg;

	if (leading) {
		ledger_set_fence(d->ledger, epoch);
		if (d->stopping)
			return;
		poller_set_leading(d->poller, 1);
		daemon_lead_sinks(-1, 0, d);
		if (d->once && !d->once_started) {
			d->once_started = 1;
			poller_start_once(d->poller, daemon_once_done, d);
		}
		return;
	}
	poller_set_leading(d->poller, 0);
	if (d->once) {
		if (!d->once_started)
			log_info("--once: another instance leads this ledger;"
			    " nothing to do");
		else {
			log_warnx("--once: leadership lost; the orders left"
			    " are polled by the leader");
			d->exit_code = EXIT_RUNTIME;
		}
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (d->stopping)
		return;		/* the drain ends the sinks */
	evtimer_del(d->sinks_timer);
	if (d->webhook != NULL)
		sink_webhook_free(d->webhook);
	d->webhook = NULL;
	if (d->jsonl != NULL)
		sink_jsonl_free(d->jsonl);
	d->jsonl = NULL;
}

/* The role for /v1/overview and /healthz. */
static const char *
daemon_role_name(void *arg, int64_t *since_ms)
{
	struct daemon	*d = arg;
	int64_t		 epoch;

	if (d->leader == NULL) {
		*since_ms = d->started_ms;
		return "leader";
	}
	return leader_role(d->leader, since_ms, &epoch);
}

/* Events were committed: the sinks deliver them, long polls wake up. */
static void
daemon_events(void *arg)
{
	struct daemon	*d = arg;

	if (d->jsonl != NULL)
		sink_jsonl_kick(d->jsonl);
	if (d->webhook != NULL)
		sink_webhook_kick(d->webhook);
	if (d->control != NULL)
		control_events_written(d->control);
}

static void
daemon_kick(void *arg)
{
	struct daemon	*d = arg;

	poller_kick(d->poller);
}

/* Unhealthy while polling is paused or a sink cannot deliver. */
static int
daemon_health(void *arg, char *why, size_t whysz)
{
	struct daemon			*d = arg;
	struct poller_stats		 st;
	struct sink_jsonl_stats		 js;
	struct sink_webhook_stats	 ws;

	poller_get_stats(d->poller, &st);
	if (st.pause != PAUSE_NONE) {
		snprintf(why, whysz, "polling paused: %s",
		    gate_reason_name(st.pause));
		return 0;
	}
	if (d->webhook != NULL) {
		sink_webhook_get_stats(d->webhook, &ws);
		if (ws.disabled) {
			snprintf(why, whysz, "webhook sink disabled (410 Gone)");
			return 0;
		}
	}
	if (d->jsonl != NULL) {
		sink_jsonl_get_stats(d->jsonl, &js);
		if (js.failing) {
			/* /healthz is open: the file's path stays in the
			 * log. */
			snprintf(why, whysz, "jsonl sink failing (see the"
			    " log)");
			return 0;
		}
	}
	return 1;
}

static int
daemon_metrics(void *arg, struct evbuffer *out)
{
	struct daemon			*d = arg;
	struct poller_stats		 st;
	struct sink_jsonl_stats		 js;
	struct sink_webhook_stats	 ws;
	struct metrics_view		 v;

	poller_get_stats(d->poller, &st);
	memset(&v, 0, sizeof(v));
	v.ledger = d->ledger;
	/* The file's size, for SQLite; a database server has its own. */
	v.ledger_path = d->cfg->ledger_url == NULL ? d->cfg->ledger_path : NULL;
	v.now_ms = util_now_ms();
	v.inflight = st.inflight;
	v.pause_reason = st.pause != PAUSE_NONE ?
	    gate_reason_name(st.pause) : NULL;
	v.pause_until_ms = st.pause_until_ms;
	v.pause_since_ms = st.pause_since_ms;
	v.cert_not_after = d->cert_not_after;
	v.rate_per_sec = d->cfg->rate_per_sec;
	/* On SQLite the only instance; on PostgreSQL whoever won. */
	v.leader = poller_leading(d->poller);
	(void)daemon_role_name(d, &v.role_since_ms);
	if (d->jsonl != NULL) {
		sink_jsonl_get_stats(d->jsonl, &js);
		v.sinks[v.nsinks].name = "jsonl";
		v.sinks[v.nsinks].delivered_id = js.delivered_id;
		v.sinks[v.nsinks].failures = js.failures;
		v.sinks[v.nsinks].failing = js.failing;
		v.nsinks++;
	}
	if (d->webhook != NULL) {
		sink_webhook_get_stats(d->webhook, &ws);
		v.sinks[v.nsinks].name = "webhook";
		v.sinks[v.nsinks].delivered_id = ws.delivered_id;
		v.sinks[v.nsinks].failures = ws.failures;
		v.sinks[v.nsinks].failing = ws.failing;
		v.sinks[v.nsinks].disabled = ws.disabled;
		v.nsinks++;
	}
	return metrics_render(out, &v);
}

/* Starts the configured sinks not yet running; each first delivers any
 * backlog. */
static int
daemon_sinks_start(struct daemon *d, char **err)
{
	if (d->cfg->jsonl != NULL && d->jsonl == NULL) {
		if ((d->jsonl = sink_jsonl_new(d->base, d->ledger,
		    d->cfg->jsonl, err)) == NULL)
			return -1;
		sink_jsonl_kick(d->jsonl);
	}
	if (d->cfg->webhook_url != NULL && d->webhook == NULL) {
		if ((d->webhook = sink_webhook_new(d->base, d->ledger, d->fetch,
		    d->cfg, err)) == NULL)
			return -1;
		sink_webhook_kick(d->webhook);
	}
	return 0;
}

/* Moves the sinks to a reloaded config. All or nothing: on failure the
 * sinks are as they were and *err says why. */
static int
daemon_sinks_reload(struct daemon *d, const struct config *cfg, char **err)
{
	struct sink_jsonl	*nj = NULL;
	struct sink_webhook	*nw = NULL;
	const char		*oldj = d->jsonl != NULL ? d->cfg->jsonl : NULL;

	if (cfg->jsonl != NULL && (oldj == NULL ||
	    strcmp(oldj, cfg->jsonl) != 0)) {
		if ((nj = sink_jsonl_new(d->base, d->ledger, cfg->jsonl,
		    err)) == NULL)
			return -1;
	}
	if (cfg->webhook_url != NULL && d->webhook == NULL) {
		if ((nw = sink_webhook_new(d->base, d->ledger, d->fetch, cfg,
		    err)) == NULL) {
			if (nj != NULL)
				sink_jsonl_free(nj);
			return -1;
		}
	} else if (cfg->webhook_url != NULL &&
	    sink_webhook_set_config(d->webhook, cfg, err) == -1) {
		if (nj != NULL)
			sink_jsonl_free(nj);
		return -1;
	}
	if (nj != NULL || cfg->jsonl == NULL) {
		if (d->jsonl != NULL)
			sink_jsonl_free(d->jsonl);
		d->jsonl = nj;
	}
	if (cfg->webhook_url == NULL && d->webhook != NULL) {
		sink_webhook_free(d->webhook);
		d->webhook = NULL;
	} else if (nw != NULL)
		d->webhook = nw;
	if (d->jsonl != NULL)
		sink_jsonl_kick(d->jsonl);
	if (d->webhook != NULL)
		sink_webhook_kick(d->webhook);
	return 0;
}

/* --once: ends the run when the webhook has taken every event, failed, or
 * the bound passed (what is left goes out on the next run). */
static void
daemon_once_webhook(evutil_socket_t fd, short kind, void *arg)
{
	struct daemon			*d = arg;
	struct sink_webhook_stats	 ws;
	struct ledger_stats		 ls;
	struct timeval			 tv = { 0, 100000 };

	memset(&ls, 0, sizeof(ls));
	sink_webhook_get_stats(d->webhook, &ws);
	if (ledger_stats(d->ledger, util_now_ms(), &ls) == -1 ||
	    ws.delivered_id >= ls.last_event_id || ws.disabled ||
	    ws.failures > d->once_failures ||
	    util_mono_ms() >= d->once_deadline) {
		if (ws.delivered_id < ls.last_event_id)
			log_warning("--once: webhook delivered up to event %lld"
			    " of %lld; the rest go out on the next run",
			    (long long)ws.delivered_id,
			    (long long)ls.last_event_id);
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (d->once_timer == NULL &&
	    (d->once_timer = evtimer_new(d->base, daemon_once_webhook,
	    d)) == NULL) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	evtimer_add(d->once_timer, &tv);
}

/* The daemon proper: returns the exit code. */
static int
daemon_run(struct daemon *d)
{
	char	*err = NULL;

	/* config */
	if (config_load(d->config_path, &d->cfg, &err) == -1) {
		log_warnx("%s", err);
		free(err);
		return EX_CONFIG;
	}
	if (daemon_check_identity(d->cfg, &d->cert_not_after, &err) == -1 ||
	    (d->cfg->jsonl != NULL && sink_jsonl_check(d->cfg->jsonl,
	    &err) == -1)) {
		log_warnx("%s", err);
		free(err);
		daemon_teardown(d);
		return EX_CONFIG;
	}
	log_info("configuration %s", d->config_path);
	daemon_warn_config(d->cfg);

	/* ledger */
	if ((d->ledger = ledger_open(config_ledger(d->cfg), 0, &err)) == NULL) {
		log_warnx("%s", err);
		free(err);
		daemon_teardown(d);
		return EXIT_RUNTIME;
	}
	log_info("ledger %s", ledger_path(d->ledger));

	/* fetch */
	if ((d->base = event_base_new()) == NULL) {
		log_warnx("cannot create the event loop");
		daemon_teardown(d);
		return EXIT_RUNTIME;
	}
	/* From here every ledger call may find the file damaged. */
	if ((d->ev_damaged = event_new(d->base, -1, 0, daemon_on_damaged,
	    d)) == NULL) {
		log_warnx("cannot set up the event loop");
		daemon_teardown(d);
		return EXIT_RUNTIME;
	}
	ledger_set_damaged_cb(d->ledger, daemon_ledger_damaged, d);
	if ((d->fetch = fetch_new(d->base, &err)) == NULL) {
		log_warnx("%s", err);
		free(err);
		daemon_teardown(d);
		return EXIT_RUNTIME;
	}
	daemon_set_tls(d);

	/* poller */
	d->poller = poller_new(d->base, d->ledger, d->fetch, d->cfg);

	poller_set_events_cb(d->poller, daemon_events, d);

	/* leader (a shared ledger): sinks and polling wait for the role */
	d->started_ms = util_now_ms();
	if (d->cfg->ledger_url != NULL) {
		char	 host[256], holder[300];

		if (gethostname(host, sizeof(host)) == -1)
			util_strlcpy(host, "?", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		snprintf(holder, sizeof(holder), "%s %ld", host,
		    (long)getpid());
		poller_set_shared(d->poller, daemon_lead_ok, d);
		if ((d->sinks_timer = evtimer_new(d->base, daemon_lead_sinks,
		    d)) == NULL) {
			log_warnx("cannot set up the event loop");
			daemon_teardown(d);
			return EXIT_RUNTIME;
		}
		if ((d->leader = leader_new(d->base, d->cfg->ledger_url,
		    holder, daemon_role, d, &err)) == NULL) {
			log_warnx("%s", err);
			free(err);
			daemon_teardown(d);
			return EXIT_RUNTIME;
		}
	}

	/* sinks (a leader's, on a shared ledger: started with the role) */
	if (d->leader == NULL && daemon_sinks_start(d, &err) == -1) {
		log_warnx("%s", err);
		free(err);
		daemon_teardown(d);
		/* A damaged ledger (said already) is no configuration error. */
		return d->exit_code == EXIT_RUNTIME ? EXIT_RUNTIME : EX_CONFIG;
	}

	/* control (not for a --once run) */
	if (d->cfg->listen == NULL && !d->once)
		log_info("control: no [control] listen (and no"
		    " $RUNTIME_DIRECTORY): the control API is off");
	if (d->cfg->listen != NULL && !d->once) {
		struct control_hooks	 hooks = { daemon_kick, daemon_health,
		    daemon_metrics, daemon_role_name, d };

		if ((d->control = control_new(d->base, d->ledger, d->cfg,
		    &hooks, &err)) == NULL) {
			log_warnx("%s", err);
			free(err);
			daemon_teardown(d);
			return EXIT_RUNTIME;
		}
	}

	if (daemon_signals(d) == -1) {
		log_warnx("cannot set up signal handling");
		daemon_teardown(d);
		return EXIT_RUNTIME;
	}
	if (!d->once) {
		struct timeval	 day = { CERT_CHECK_PERIOD_S, 0 };

		if ((d->cert_timer = event_new(d->base, -1, EV_PERSIST,
		    daemon_cert_check, d)) == NULL ||
		    event_add(d->cert_timer, &day) == -1) {
			log_warnx("cannot set up the certificate expiry check");
			daemon_teardown(d);
			return EXIT_RUNTIME;
		}
	}
#ifdef HAVE_MALLOC_TRIM
	if (!d->once) {
		struct timeval	 period = { TRIM_PERIOD_S, 0 };

		if ((d->trim_timer = event_new(d->base, -1, EV_PERSIST,
		    daemon_trim, d)) == NULL ||
		    event_add(d->trim_timer, &period) == -1) {
			log_warnx("cannot set up the heap trim timer");
			daemon_teardown(d);
			return EXIT_RUNTIME;
		}
	}
#endif
	if (d->once && d->leader == NULL) {
		d->once_started = 1;
		poller_start_once(d->poller, daemon_once_done, d);
	} else if (!d->once)
		poller_start(d->poller);

	/* sdnotify ready: the ledger is open, the certificate and key
	 * loaded, the control listener bound and the poller started. */
	d->notify = sdnotify_new(d->base, daemon_status, d);
	sdnotify_ready(d->notify);
	log_info("polling %s (max_inflight %d, rate_limit %s)%s",
	    d->cfg->base_url, d->cfg->max_inflight,
	    d->cfg->rate_limit != NULL ? d->cfg->rate_limit : "0",
	    d->once ? ", once" : "");

	if (event_base_dispatch(d->base) == -1) {
		log_warnx("the event loop failed");
		d->exit_code = EXIT_RUNTIME;
	}
	daemon_teardown(d);
	log_info("stopped");
	return d->exit_code;
}

int
main(int argc, char *argv[])
{
	struct daemon	 d;
	const char	*explicit_path = NULL;
	char		 ledgers[256];
	int		 ch, check = 0, verbose = 0, version = 0, rc;

	memset(&d, 0, sizeof(d));
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:nvVh", daemon_longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			explicit_path = optarg;
			break;
		case 'n':
			check++;
			break;
		case 'O':
			d.once = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			version = 1;
			break;
		case 'h':
			daemon_usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "reconciled: %s needs an argument\n",
			    argv[optind - 1]);
			daemon_usage(stderr);
			return EX_USAGE;
		default:
			if (strncmp(argv[optind - 1], "--", 2) == 0 ||
			    optopt == 0)
				fprintf(stderr, "reconciled: bad option %s\n",
				    argv[optind - 1]);
			else
				fprintf(stderr, "reconciled: bad option -%c\n",
				    optopt);
			daemon_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "reconciled: unexpected argument %s\n",
		    argv[optind]);
		daemon_usage(stderr);
		return EX_USAGE;
	}
	if (version) {
		daemon_print_versions();
		return fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
	}

	/* The log needs no configuration: it is up first so that every
	 * startup error carries its priority under systemd. */
	log_init("reconciled", verbose);
	event_set_log_callback(log_libevent);
	signal(SIGPIPE, SIG_IGN);
	/* A core dump would hold the private key, the token and the webhook
	 * secret; this also keeps other users' ptrace out. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		log_warn("prctl(PR_SET_DUMPABLE)");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("curl_global_init failed");
		return EXIT_RUNTIME;
	}
	d.config_path = config_path(explicit_path);

	if (check)
		rc = daemon_check(d.config_path, check > 1);
	else {
		ledger_versions(ledgers, sizeof(ledgers), ", ");
		log_info("reconciled %s starting (libevent %s, libcurl %s"
		    " with %s, json-c %s, %s)", PACKAGE_VERSION,
		    event_get_version(), daemon_curl_version(),
		    daemon_tls_version(), json_c_version(), ledgers);
		rc = daemon_run(&d);
	}
	curl_global_cleanup();
	libevent_global_shutdown();
	return rc;
}
