/* The control API over libevent's evhttp, on TCP loopback or a unix socket:
 * order intake and queries, the event feed with long polling, /metrics and
 * /healthz. Optional bearer-token auth. */
#ifndef RECONCILED_CONTROL_H
#define RECONCILED_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ledger.h"

#define CONTROL_BODY_MAX	(16 * 1024)
#define CONTROL_EVENTS_MAX	1000	/* limit cap for GET /v1/events */
#define CONTROL_WAIT_MAX	60	/* seconds, wait cap for the long poll */

struct event_base;
struct evbuffer;
struct control;

/* What the control API needs from the rest of the daemon. */
struct control_hooks {
	/* Orders became due (posted or rechecked): poll them now. */
	void	(*kick)(void *arg);
	/* Health: return 1 if healthy; else 0 with a reason in why[whysz]. */
	int	(*health)(void *arg, char *why, size_t whysz);
	/* Appends the Prometheus exposition to out; -1 on failure. */
	int	(*metrics)(void *arg, struct evbuffer *out);
	/* This instance's role ("leader", "standby", "starting") and since
	 * when (unix ms, 0 unknown). */
	const char *(*role)(void *arg, int64_t *since_ms);
	void	*arg;
};

/* Binds cfg->listen ("HOST:PORT" or "unix:/path", the socket mode 0660,
 * a stale socket file replaced). Returns NULL with *err set. */
struct control	*control_new(struct event_base *, struct ledger *,
		    const struct config *, const struct control_hooks *, char **err);
/* Closes the listener and every connection; long polls are answered. */
void		 control_free(struct control *);

/* Takes the token from a reloaded config (the listener stays as it is; a
 * changed listen address needs a restart, which is logged). */
void		 control_set_config(struct control *, const struct config *);

/* Events were committed: wake the long polls. */
void		 control_events_written(struct control *);

#endif
