/* Small helpers every module shares: allocation that never returns NULL,
 * bounded string copies, range-checked number parsing and clocks. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		fatal("malloc %zu", n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void	*p;

	if ((p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size)) == NULL)
		fatal("calloc %zu*%zu", nmemb, size);
	return p;
}

void *
xrealloc(void *old, size_t n)
{
	void	*p;

	if ((p = realloc(old, n == 0 ? 1 : n)) == NULL)
		fatal("realloc %zu", n);
	return p;
}

char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char	*p;

	if ((p = strndup(s, n)) == NULL)
		fatal("strndup");
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatal("vasprintf");
	return s;
}

size_t
util_strlcpy(char *dst, const char *src, size_t size)
{
	size_t	 len = strlen(src);

	if (size > 0) {
		size_t	 n = len < size - 1 ? len : size - 1;

		memcpy(dst, src, n);
		dst[n] = '\0';
	}
	return len;
}

int
util_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char		*end;
	long long	 v;
	int		 saved = errno;

	/* strtoll would skip any leading white space and take a '+'. */
	if (s == NULL || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max) {
		errno = saved;
		return -1;
	}
	errno = saved;
	*out = v;
	return 0;
}

int64_t
util_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
util_mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
util_fmt_time(int64_t ms, char *buf)
{
	time_t		 secs;
	struct tm	 tm;
	int64_t		 frac;
	size_t		 n;

	secs = (time_t)(ms / 1000);
	frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		secs -= 1;
	}
	if (gmtime_r(&secs, &tm) == NULL) {
		util_strlcpy(buf, "1970-01-01T00:00:00.000Z", UTIL_TIME_MAX);
		return buf;
	}
	n = strftime(buf, UTIL_TIME_MAX - 6, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, UTIL_TIME_MAX - n, ".%03dZ", (int)frac);
	return buf;
}

int
util_has_control(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		unsigned char	 c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return 1;
	}
	return 0;
}

int
util_secure_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned char	 diff = alen != blen;
	size_t		 i;

	/* Time depends on alen only (the secret side is b). */
	for (i = 0; i < alen; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)(i < blen ? b[i] : 0);
	return diff == 0;
}

void
util_free_secret(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

char *
util_escape_ctl(const char *s, size_t len, char *out, size_t outsz)
{
	char		 esc[5];
	size_t		 i, o = 0, n;
	unsigned char	 c;

	if (outsz == 0)
		return out;
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == '\\')
			n = (size_t)snprintf(esc, sizeof esc, "\\\\");
		else if (c == '\n')
			n = (size_t)snprintf(esc, sizeof esc, "\\n");
		else if (c == '\t')
			n = (size_t)snprintf(esc, sizeof esc, "\\t");
		else if (c == '\r')
			n = (size_t)snprintf(esc, sizeof esc, "\\r");
		else if (c < 0x20 || c == 0x7f)
			n = (size_t)snprintf(esc, sizeof esc, "\\x%02x", c);
		else {
			esc[0] = (char)c;
			n = 1;
		}
		if (o + n >= outsz)
			break;
		memcpy(out + o, esc, n);
		o += n;
	}
	out[o] = '\0';
	return out;
}

/* "250ms", "2s", "1.5s", "5m" for log lines. */
const char *
util_fmt_ms(int64_t ms, char *buf, size_t size)
{
	if (ms < 1000)
		snprintf(buf, size, "%lldms", (long long)ms);
	else if (ms % 1000 == 0 && ms < 120000)
		snprintf(buf, size, "%llds", (long long)(ms / 1000));
	else if (ms < 120000)
		snprintf(buf, size, "%.1fs", (double)ms / 1000.0);
	else if (ms < 7200000)
		snprintf(buf, size, "%lldm", (long long)((ms + 30000) / 60000));
	else
		snprintf(buf, size, "%lldh",
		    (long long)((ms + 1800000) / 3600000));
	return buf;
}
