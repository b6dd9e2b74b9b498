/* Small helpers every module shares: allocation that never returns NULL,
 * bounded string copies, range-checked number parsing and clocks. */
#ifndef RECONCILED_UTIL_H
#define RECONCILED_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define UTIL_TIME_MAX 40	/* room for any timestamp this project formats */

/* Allocation for internal data: aborts with a log line on exhaustion. */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
/* asprintf that aborts on exhaustion; returns the new string. */
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Copies src into dst[size]; returns strlen(src) (>= size means truncated). */
size_t	 util_strlcpy(char *dst, const char *src, size_t size);

/* Parses a whole decimal integer in [min, max]; -1 on anything else. */
int	 util_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Wall clock in unix milliseconds (what the ledger stores). */
int64_t	 util_now_ms(void);
/* Monotonic milliseconds, for deadlines and measurements. */
int64_t	 util_mono_ms(void);

/* Formats unix ms as RFC 3339 UTC with milliseconds: 2026-11-28T01:30:00.123Z.
 * buf must hold UTIL_TIME_MAX bytes; returns buf. */
char	*util_fmt_time(int64_t ms, char *buf);

/* A duration for log lines: "250ms", "2s", "1.5s", "5m", "2h"; returns buf. */
const char *util_fmt_ms(int64_t ms, char *buf, size_t size);

/* 1 if s (len bytes) contains a byte < 0x20 or 0x7f. */
int	 util_has_control(const char *s, size_t len);

/* Wipes the string s (explicit_bzero, which the compiler keeps) and frees
 * it; for tokens and secrets. NULL is fine. */
void	 util_free_secret(char *s);

/* Copies s (len bytes) into out[outsz] with every byte < 0x20, 0x7f and
 * backslash written as a C-style escape (\n, \x1b, \\), so that text from
 * upstream cannot drive a terminal. Cut to fit; returns out. */
char	*util_escape_ctl(const char *s, size_t len, char *out, size_t outsz);

/* Constant-time comparison of two byte strings; 1 when equal. */
int	 util_secure_eq(const char *a, size_t alen, const char *b, size_t blen);

#endif
