/* Logging to stderr: journald priority prefixes (<N>) when JOURNAL_STREAM is
 * set, timestamps otherwise. Every function preserves errno. */
#ifndef RECONCILED_LOG_H
#define RECONCILED_LOG_H

#include <stddef.h>

#define LOG_USERKEY_MAX 32	/* room for a masked userKey */

/* verbose: -1 = warnings and errors only (CLI tools), 0 = info and above,
 * 1 = debug, 2+ = debug with library chatter. */
void	 log_init(const char *progname, int verbose);
void	 log_setverbose(int);
int	 log_getverbose(void);

/* log_warn appends ": strerror(errno)"; log_warnx does not. Both at LOG_ERR. */
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* At LOG_WARNING: something an operator should look at, the daemon carries
 * on. */
void	 log_warning(const char *, ...)
	    __attribute__((format(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Only at startup or for broken invariants: log at LOG_CRIT and exit(1). */
void	 fatal(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *, ...) __attribute__((format(printf, 1, 2), noreturn));

/* libevent's own messages (event_set_log_callback): its severity
 * (EVENT_LOG_DEBUG..EVENT_LOG_ERR) mapped to ours, "libevent: " in front,
 * at most LOG_LIBEVENT_BURST lines a second, the rest counted and the count
 * said on the next line let through. */
#define LOG_LIBEVENT_BURST	5
void	 log_libevent(int severity, const char *msg);

/* Masks a userKey for logs: keeps at most the first 2 and last 2 characters
 * ("443731104" -> "44*****04"; keys of 4 or fewer chars become "****").
 * buf must hold LOG_USERKEY_MAX bytes; returns buf. */
const char *log_userkey(const char *userkey, char *buf);

#endif
