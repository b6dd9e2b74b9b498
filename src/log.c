/* Logging to stderr, one write per line. Under systemd (JOURNAL_STREAM set)
 * a line is "<N>progname: message" with N the syslog priority and no
 * timestamp; otherwise "2026-11-28T01:30:00.123Z progname[pid]: level: message"
 * with level one of fatal, error, warning, info, debug. Control characters in
 * a message become '?', so no value can forge a line. errno is preserved. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "util.h"

#define LOG_LINE_MAX	4096	/* longer: cut, ends in "..." */
#define LOG_PROG_MAX	64

/* The syslog priorities used for the journald prefix. */
enum log_prio {
	PRIO_CRIT = 2,
	PRIO_ERR = 3,
	PRIO_WARNING = 4,
	PRIO_INFO = 6,
	PRIO_DEBUG = 7
};

static char	 log_prog[LOG_PROG_MAX] = "reconciled";
static int	 log_verbose;
static int	 log_journal = -1;	/* -1 = not decided yet */

static void	 log_vline(enum log_prio, int, const char *, va_list)
		    __attribute__((format(printf, 3, 0)));
static void	 log_line(enum log_prio, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

void
log_init(const char *progname, int verbose)
{
	int		 saved = errno;
	const char	*js, *slash;

	if (progname != NULL && *progname != '\0') {
		slash = strrchr(progname, '/');
		if (slash != NULL && slash[1] != '\0')
			progname = slash + 1;
		util_strlcpy(log_prog, progname, sizeof log_prog);
	}
	log_verbose = verbose;
	js = getenv("JOURNAL_STREAM");
	log_journal = js != NULL && *js != '\0';
	errno = saved;
}

void
log_setverbose(int verbose)
{
	log_verbose = verbose;
}

int
log_getverbose(void)
{
	return log_verbose;
}

static const char *
log_level_name(enum log_prio prio)
{
	switch (prio) {
	case PRIO_CRIT:
		return "fatal";
	case PRIO_ERR:
		return "error";
	case PRIO_WARNING:
		return "warning";
	case PRIO_INFO:
		return "info";
	case PRIO_DEBUG:
		return "debug";
	}
	return "?";
}

/* Formats and writes one line; with_errno appends ": strerror(errno)". */
static void
log_vline(enum log_prio prio, int with_errno, const char *fmt, va_list ap)
{
	char	 line[LOG_LINE_MAX], ts[UTIL_TIME_MAX];
	size_t	 len, head, i;
	int	 saved = errno, n;

	if (log_journal == -1) {
		const char	*js = getenv("JOURNAL_STREAM");

		log_journal = js != NULL && *js != '\0';
	}
	if (log_journal)
		n = snprintf(line, sizeof line, "<%d>%s: ", (int)prio,
		    log_prog);
	else
		n = snprintf(line, sizeof line, "%s %s[%ld]: %s: ",
		    util_fmt_time(util_now_ms(), ts), log_prog, (long)getpid(),
		    log_level_name(prio));
	if (n < 0)
		goto out;
	/* Never so long that the room kept below goes negative. */
	head = (size_t)n < sizeof line - 5 ? (size_t)n : sizeof line - 5;
	len = head;

	/* Room is kept for "...\n" in case the message is cut. */
	n = vsnprintf(line + len, sizeof line - len - 4, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof line - len - 4) {
		len = sizeof line - 5;
		memcpy(line + len, "...", 3);
		len += 3;
	} else {
		len += (size_t)n;
		if (with_errno) {
			n = snprintf(line + len, sizeof line - len - 4, ": %s",
			    strerror(saved));
			if (n < 0)
				n = 0;
			if ((size_t)n >= sizeof line - len - 4) {
				len = sizeof line - 5;
				memcpy(line + len, "...", 3);
				len += 3;
			} else
				len += (size_t)n;
		}
	}
	for (i = head; i < len; i++) {
		unsigned char	 c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f)
			line[i] = '?';
	}
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
	fflush(stderr);
out:
	errno = saved;
}

static void
log_line(enum log_prio prio, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vline(prio, 0, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vline(PRIO_ERR, 1, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vline(PRIO_ERR, 0, fmt, ap);
	va_end(ap);
}

void
log_warning(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vline(PRIO_WARNING, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	if (log_verbose < 0)
		return;
	va_start(ap, fmt);
	log_vline(PRIO_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	log_vline(PRIO_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vline(PRIO_CRIT, 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vline(PRIO_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_libevent(int severity, const char *msg)
{
	static int64_t	 window_ms;
	static int	 in_window;
	static uint64_t	 dropped;
	enum log_prio	 prio;
	char		 more[64] = "";
	int64_t		 now;
	int		 saved = errno;

	switch (severity) {
	case EVENT_LOG_DEBUG:
		if (log_verbose < 2)
			return;
		prio = PRIO_DEBUG;
		break;
	case EVENT_LOG_MSG:
		prio = PRIO_INFO;
		break;
	case EVENT_LOG_WARN:
		prio = PRIO_WARNING;
		break;
	default:
		prio = PRIO_ERR;
		break;
	}
	now = util_mono_ms();
	if (now - window_ms >= 1000) {
		window_ms = now;
		in_window = 0;
	}
	if (in_window >= LOG_LIBEVENT_BURST) {
		dropped++;
		errno = saved;
		return;
	}
	in_window++;
	if (dropped > 0)
		snprintf(more, sizeof more, " (%llu more libevent messages"
		    " not logged)", (unsigned long long)dropped);
	dropped = 0;
	log_line(prio, "libevent: %s%s", msg != NULL ? msg : "", more);
	errno = saved;
}

const char *
log_userkey(const char *userkey, char *buf)
{
	size_t	 len, stars, i, o = 0;

	if (userkey == NULL) {
		util_strlcpy(buf, "(none)", LOG_USERKEY_MAX);
		return buf;
	}
	len = strlen(userkey);
	if (len <= 4) {
		util_strlcpy(buf, "****", LOG_USERKEY_MAX);
		return buf;
	}
	stars = len - 4;
	if (stars > LOG_USERKEY_MAX - 5)
		stars = LOG_USERKEY_MAX - 5;
	buf[o++] = userkey[0];
	buf[o++] = userkey[1];
	for (i = 0; i < stars; i++)
		buf[o++] = '*';
	buf[o++] = userkey[len - 2];
	buf[o++] = userkey[len - 1];
	buf[o] = '\0';
	/* The kept characters are shown only when plainly printable. */
	for (i = 0; i < o; i++) {
		unsigned char	 c = (unsigned char)buf[i];

		if (c < 0x21 || c > 0x7e)
			buf[i] = '?';
	}
	return buf;
}
