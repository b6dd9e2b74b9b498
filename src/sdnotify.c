/* The service manager notification protocol: one datagram of KEY=VALUE lines
 * per message to $NOTIFY_SOCKET, through libsystemd's sd_notify() when built
 * with it and through a socket of our own otherwise (a path or an abstract
 * "@name"). Owns the two loop timers: WATCHDOG=1 at half of $WATCHDOG_USEC
 * (a stuck loop stops the pings and gets restarted) and the STATUS= refresh.
 * The only #ifdef HAVE_LIBSYSTEMD of the project lives here. */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "sdnotify.h"
#include "util.h"

#define SDNOTIFY_MSG_MAX	(SDNOTIFY_STATUS_MAX + 128)
#define SDNOTIFY_SEND_TIMEOUT_S	1	/* never block the loop longer */
#define USEC_PER_SEC		1000000ULL

struct sdnotify {
	struct event_base	*base;
	sdnotify_status_fn	 status_fn;
	void			*arg;
	int			 active;	/* a socket to talk to */
	int			 fd;		/* plain protocol, -1 otherwise */
	struct sockaddr_un	 sun;
	socklen_t		 sunlen;
	uint64_t		 watchdog_usec;	/* 0 = no watchdog */
	struct event		*ev_watchdog;
	struct event		*ev_status;
	char			 last_status[SDNOTIFY_STATUS_MAX];
	int			 failing;	/* the last send failed (logged) */
};

int
sdnotify_addr(const char *spec, struct sockaddr_un *sun, socklen_t *len)
{
	size_t	 n;

	if (spec == NULL || (spec[0] != '/' && spec[0] != '@'))
		return -1;
	n = strlen(spec);
	if (n < 2 || n >= sizeof(sun->sun_path))
		return -1;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, spec, n);
	if (spec[0] == '@') {
		/* Abstract: a leading NUL, and the length says where the
		 * name ends (no terminating NUL is part of it). */
		sun->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
		    1);
	return 0;
}

int
sdnotify_watchdog_parse(const char *usec_s, const char *pid_s, pid_t self,
    uint64_t *usec)
{
	int64_t	 u, pid;

	if (usec_s == NULL)
		return 0;
	/* Like sd_watchdog_enabled(): 0 and "infinity" are invalid. */
	if (util_parse_int64(usec_s, 1, INT64_MAX - 1, &u) != 0)
		return -1;
	if (pid_s != NULL) {
		if (util_parse_int64(pid_s, 1, INT32_MAX, &pid) != 0)
			return -1;
		if ((pid_t)pid != self)
			return 0;
	}
	*usec = (uint64_t)u;
	return 1;
}

void
sdnotify_clean_status(const char *s, char *buf, size_t size)
{
	size_t	 i;

	if (size == 0)
		return;
	if (size > SDNOTIFY_STATUS_MAX)
		size = SDNOTIFY_STATUS_MAX;
	for (i = 0; s[i] != '\0' && i < size - 1; i++) {
		unsigned char	 c = (unsigned char)s[i];

		buf[i] = c < 0x20 || c == 0x7f ? '?' : s[i];
	}
	buf[i] = '\0';
}

/* Sends one message; a failure is logged once until a send succeeds. */
static void
sdnotify_send(struct sdnotify *n, const char *msg)
{
	int	 err = 0;

	if (!n->active)
		return;
#ifdef HAVE_LIBSYSTEMD
	{
		int	 r;

		if ((r = sd_notify(0, msg)) < 0)
			err = -r;
		else if (r == 0)
			err = ENOTCONN;
	}
#else
	{
		size_t	 len = strlen(msg);
		ssize_t	 w;

		w = sendto(n->fd, msg, len, MSG_NOSIGNAL,
		    (struct sockaddr *)&n->sun, n->sunlen);
		if (w == -1)
			err = errno;
		else if ((size_t)w != len)
			err = EMSGSIZE;
	}
#endif
	if (err == 0) {
		if (n->failing)
			log_info("sdnotify: the service manager hears us again");
		n->failing = 0;
		return;
	}
	if (!n->failing)
		log_warning("sdnotify: cannot notify the service manager: %s",
		    strerror(err));
	n->failing = 1;
}

/* The current status line in buf (cleaned), "" without a status callback. */
static void
sdnotify_current(struct sdnotify *n, char *buf, size_t size)
{
	char	 raw[SDNOTIFY_STATUS_MAX];

	buf[0] = '\0';
	if (n->status_fn == NULL)
		return;
	raw[0] = '\0';
	n->status_fn(raw, sizeof(raw), n->arg);
	raw[sizeof(raw) - 1] = '\0';
	sdnotify_clean_status(raw, buf, size);
}

/* Sends "head" followed by the current STATUS= line, if there is one. */
static void
sdnotify_send_with_status(struct sdnotify *n, const char *head)
{
	char	 msg[SDNOTIFY_MSG_MAX], status[SDNOTIFY_STATUS_MAX];

	if (!n->active)
		return;
	sdnotify_current(n, status, sizeof(status));
	if (status[0] == '\0')
		snprintf(msg, sizeof(msg), "%s", head);
	else {
		snprintf(msg, sizeof(msg), "%s\nSTATUS=%s", head, status);
		util_strlcpy(n->last_status, status, sizeof(n->last_status));
	}
	sdnotify_send(n, msg);
}

static void
sdnotify_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	sdnotify_send(arg, "WATCHDOG=1");
}

static void
sdnotify_status_cb(evutil_socket_t fd, short what, void *arg)
{
	sdnotify_status(arg);
}

/* A persistent timer every ms milliseconds; NULL if libevent refuses. */
static struct event *
sdnotify_timer(struct event_base *base, int64_t ms,
    void (*cb)(evutil_socket_t, short, void *), void *arg)
{
	struct event	*ev;
	struct timeval	 tv;

	if ((ev = event_new(base, -1, EV_PERSIST, cb, arg)) == NULL)
		return NULL;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	if (event_add(ev, &tv) == -1) {
		event_free(ev);
		return NULL;
	}
	return ev;
}

/* Where messages go: sets n->active (and the plain socket). */
static void
sdnotify_open(struct sdnotify *n)
{
	const char	*spec = getenv("NOTIFY_SOCKET");

	if (spec == NULL || *spec == '\0')
		return;
#ifdef HAVE_LIBSYSTEMD
	n->active = 1;
	log_debug("sdnotify: notifying %s (libsystemd)", spec);
#else
	{
		struct timeval	 tv = { SDNOTIFY_SEND_TIMEOUT_S, 0 };

		if (sdnotify_addr(spec, &n->sun, &n->sunlen) == -1) {
			log_warning("sdnotify: NOTIFY_SOCKET=%s is neither an "
			    "absolute path nor an abstract @name: not "
			    "notifying the service manager", spec);
			return;
		}
		if ((n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC,
		    0)) == -1) {
			log_warn("sdnotify: socket");
			return;
		}
		/* Blocking like sd_notify(), but never for long. */
		if (setsockopt(n->fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
		    sizeof(tv)) == -1)
			log_debug("sdnotify: SO_SNDTIMEO: %s",
			    strerror(errno));
		n->active = 1;
		log_debug("sdnotify: notifying %s", spec);
	}
#endif
}

/* Sets n->watchdog_usec from the environment, as sd_watchdog_enabled(). */
static void
sdnotify_watchdog_init(struct sdnotify *n)
{
	uint64_t	 usec = 0;
	int		 r;

#ifdef HAVE_LIBSYSTEMD
	r = sd_watchdog_enabled(0, &usec);
#else
	r = sdnotify_watchdog_parse(getenv("WATCHDOG_USEC"),
	    getenv("WATCHDOG_PID"), getpid(), &usec);
#endif
	if (r < 0) {
		log_warning("sdnotify: ignoring a malformed WATCHDOG_USEC or "
		    "WATCHDOG_PID");
		return;
	}
	if (r > 0)
		n->watchdog_usec = usec;
}

struct sdnotify *
sdnotify_new(struct event_base *base, sdnotify_status_fn status, void *arg)
{
	struct sdnotify	*n;
	int64_t		 ms;

	n = xcalloc(1, sizeof(*n));
	n->base = base;
	n->status_fn = status;
	n->arg = arg;
	n->fd = -1;
	sdnotify_open(n);
	if (!n->active)
		return n;
	sdnotify_watchdog_init(n);
	if (n->watchdog_usec == 0)
		return n;
	/* Half the timeout, rounded down to whole ms but at least 1 ms. */
	ms = (int64_t)(n->watchdog_usec / 2 / 1000);
	if (ms < 1)
		ms = 1;
	if ((n->ev_watchdog = sdnotify_timer(base, ms, sdnotify_watchdog_cb,
	    n)) == NULL) {
		log_warnx("sdnotify: cannot start the watchdog timer");
		return n;
	}
	log_info("sdnotify: systemd watchdog %llums: pinging every %lldms",
	    (unsigned long long)(n->watchdog_usec / 1000), (long long)ms);
	return n;
}

void
sdnotify_free(struct sdnotify *n)
{
	if (n == NULL)
		return;
	if (n->ev_watchdog != NULL)
		event_free(n->ev_watchdog);
	if (n->ev_status != NULL)
		event_free(n->ev_status);
	if (n->fd != -1)
		close(n->fd);
	free(n);
}

int
sdnotify_active(const struct sdnotify *n)
{
	return n != NULL && n->active;
}

uint64_t
sdnotify_watchdog_usec(const struct sdnotify *n)
{
	return n != NULL ? n->watchdog_usec : 0;
}

void
sdnotify_ready(struct sdnotify *n)
{
	if (n == NULL || !n->active)
		return;
	/* A ping too: the loop may have been busy starting up. */
	sdnotify_send_with_status(n, n->watchdog_usec != 0 ?
	    "READY=1\nWATCHDOG=1" : "READY=1");
	if (n->ev_status == NULL && n->status_fn != NULL &&
	    (n->ev_status = sdnotify_timer(n->base,
	    SDNOTIFY_STATUS_INTERVAL_MS, sdnotify_status_cb, n)) == NULL)
		log_warnx("sdnotify: cannot start the status timer");
}

void
sdnotify_reloading(struct sdnotify *n)
{
	struct timespec	 ts;
	char		 msg[SDNOTIFY_MSG_MAX];

	if (n == NULL || !n->active)
		return;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1) {
		sdnotify_send(n, "RELOADING=1");
		return;
	}
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * USEC_PER_SEC +
	    (unsigned long long)ts.tv_nsec / 1000);
	sdnotify_send(n, msg);
}

void
sdnotify_stopping(struct sdnotify *n)
{
	if (n != NULL)
		sdnotify_send_with_status(n, "STOPPING=1");
}

void
sdnotify_status(struct sdnotify *n)
{
	char	 status[SDNOTIFY_STATUS_MAX], msg[SDNOTIFY_MSG_MAX];

	if (n == NULL || !n->active || n->status_fn == NULL)
		return;
	sdnotify_current(n, status, sizeof(status));
	if (strcmp(status, n->last_status) == 0)
		return;
	util_strlcpy(n->last_status, status, sizeof(n->last_status));
	snprintf(msg, sizeof(msg), "STATUS=%s", status);
	sdnotify_send(n, msg);
}
