/* Telling the service manager how the daemon is doing through $NOTIFY_SOCKET:
 * READY, RELOADING, STOPPING, a STATUS line refreshed from a loop timer and
 * WATCHDOG pings at half of $WATCHDOG_USEC. Everything is a no-op when the
 * daemon was not started by systemd. */
#ifndef RECONCILED_SDNOTIFY_H
#define RECONCILED_SDNOTIFY_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <stddef.h>
#include <stdint.h>

#define SDNOTIFY_STATUS_MAX		256	/* longer STATUS= lines are cut */
#define SDNOTIFY_STATUS_INTERVAL_MS	5000

struct event_base;

/* Writes the current one-line status into buf[size] (NUL-terminated). */
typedef void	(*sdnotify_status_fn)(char *buf, size_t size, void *arg);

struct sdnotify;

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC/$WATCHDOG_PID and starts the
 * watchdog timer when systemd asked for one. Never NULL: without a socket
 * the object does nothing. status may be NULL (no STATUS= lines). */
struct sdnotify	*sdnotify_new(struct event_base *, sdnotify_status_fn status,
		    void *arg);
void		 sdnotify_free(struct sdnotify *);

/* 1 when messages go somewhere. */
int		 sdnotify_active(const struct sdnotify *);
/* The watchdog timeout systemd set for this process in µs, 0 for none. */
uint64_t	 sdnotify_watchdog_usec(const struct sdnotify *);

/* The messages below do nothing when n is NULL or inactive. */

/* READY=1 with the current status (also after a reload, failed or not);
 * starts the STATUS= refresh timer. */
void		 sdnotify_ready(struct sdnotify *);
/* RELOADING=1 and MONOTONIC_USEC=<now on CLOCK_MONOTONIC>. */
void		 sdnotify_reloading(struct sdnotify *);
/* STOPPING=1 with the current status; pings and status go on until freed. */
void		 sdnotify_stopping(struct sdnotify *);
/* Sends the current status now if it changed since the last one sent. */
void		 sdnotify_status(struct sdnotify *);

/*
 * The plain protocol, used when built without libsystemd and public for the
 * unit tests: pure functions of their arguments.
 */

/* Fills *sun and *len for a $NOTIFY_SOCKET value: an absolute path or an
 * abstract name written "@name". Returns 0, or -1 for anything else
 * (relative paths, vsock: addresses, names too long for sun_path). */
int		 sdnotify_addr(const char *spec, struct sockaddr_un *sun,
		    socklen_t *len);
/* sd_watchdog_enabled() for given values of $WATCHDOG_USEC (NULL = unset)
 * and $WATCHDOG_PID (NULL = unset) as seen by process self: 1 and *usec
 * set when the watchdog applies to self, 0 when it does not, -1 when a
 * value is malformed. */
int		 sdnotify_watchdog_parse(const char *usec_s, const char *pid_s,
		    pid_t self, uint64_t *usec);
/* Copies s into a STATUS= value of at most SDNOTIFY_STATUS_MAX - 1 bytes,
 * control characters (which would end the line) replaced by '?'. */
void		 sdnotify_clean_status(const char *s, char *buf, size_t size);

#endif
