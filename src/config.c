/* The configuration: defaults, the INI file read with inih, value parsers
 * (durations, rates, actions) and the checks that make a loaded config
 * usable as is. Errors name "file:line: what". Nothing here opens the files
 * a config names (cert, key, ledger); that is for the modules using them. */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <openssl/evp.h>

#include "config.h"
#include "util.h"

#define MS_SECOND	1000LL
#define MS_MINUTE	(60 * MS_SECOND)
#define MS_HOUR		(60 * MS_MINUTE)
#define MS_DAY		(24 * MS_HOUR)

/* Upper bounds: request timeouts, and any other duration (10 years, so that
 * now + duration never overflows). */
#define TIMEOUT_MAX_MS	(10 * MS_MINUTE)
#define DURATION_MAX_MS	(3650 * MS_DAY)

#define SUN_PATH_SIZE	sizeof(((struct sockaddr_un *)0)->sun_path)
#define STATUS_NAME_MAX	64	/* as for a status in a Toss answer */
#define SECRET_MIN	16	/* decoded bytes of a webhook secret */
#define SECRET_PREFIX	"whsec_"

#define DURATION_HINT	"(use e.g. 250ms, 2s, 5m, 1h, 90d)"
#define RATE_HINT	"(use e.g. 3000/min, 50/s, or 0 for none)"
#define ACTION_HINT \
	"(use grant, wait, retry, fail, refund, not_found, mismatch, hold)"
#define LISTEN_HINT	"(use HOST:PORT, [IPV6]:PORT or unix:/ABSOLUTE/PATH)"

static const char *action_names[ACT__COUNT] = {
	[ACT_GRANT] = "grant",
	[ACT_WAIT] = "wait",
	[ACT_RETRY] = "retry",
	[ACT_FAIL] = "fail",
	[ACT_REFUND] = "refund",
	[ACT_NOT_FOUND] = "not_found",
	[ACT_MISMATCH] = "mismatch",
	[ACT_HOLD] = "hold",
};

static const struct {
	const char	*status;
	enum action	 action;
} default_rules[] = {
	{ "PURCHASED", ACT_GRANT },
	{ "PAYMENT_COMPLETED", ACT_GRANT },
	{ "ORDER_IN_PROGRESS", ACT_WAIT },
	{ "ERROR", ACT_RETRY },
	{ "FAILED", ACT_FAIL },
	{ "REFUNDED", ACT_REFUND },
	{ "NOT_FOUND", ACT_NOT_FOUND },
	{ "MINIAPP_MISMATCH", ACT_MISMATCH },
};
#define NDEFAULT_RULES (sizeof default_rules / sizeof default_rules[0])

enum key_type {
	KT_STRING,
	KT_DURATION,
	KT_INT,
	KT_RATE
};

/* Flags for KT_STRING keys. */
#define KF_REQUIRED	0x01	/* empty is an error, not NULL */
#define KF_URL		0x02	/* http:// or https:// with a host */
#define KF_CREDENTIAL	0x04	/* relative: credentials dir */
#define KF_SECRET	0x08	/* whsec_<base64>; never echoed */
#define KF_LISTEN	0x10	/* HOST:PORT, [V6]:PORT or unix:/path */
#define KF_NOSPACE	0x20	/* no blanks inside; never echoed */
#define KF_LIST		0x40	/* words, blank or comma separated */
#define KF_PGURL	0x80	/* postgresql://...; never echoed (password) */

/* Whether this build has the PostgreSQL ledger backend. */
#ifdef HAVE_LIBPQ
#define CONFIG_POSTGRESQL	1
#else
#define CONFIG_POSTGRESQL	0
#endif

struct keydef {
	const char	*section;
	const char	*name;
	enum key_type	 type;
	size_t		 off;
	int		 flags;
	int64_t		 min, max;	/* KT_DURATION (ms), KT_INT */
};

#define STR(s, n, f, fl) \
	{ s, n, KT_STRING, offsetof(struct config, f), fl, 0, 0 }
#define DUR(s, n, f, max) \
	{ s, n, KT_DURATION, offsetof(struct config, f), 0, 1, max }

static const struct keydef keys[] = {
	STR("api", "base_url", base_url, KF_REQUIRED | KF_URL),
	STR("api", "cert", cert, KF_CREDENTIAL),
	STR("api", "key", key, KF_CREDENTIAL),
	STR("api", "ca", ca, 0),
	DUR("api", "timeout", timeout_ms, TIMEOUT_MAX_MS),
	DUR("api", "connect_timeout", connect_timeout_ms, TIMEOUT_MAX_MS),
	{ "api", "max_inflight", KT_INT, offsetof(struct config, max_inflight),
	    0, 1, 4096 },
	{ "api", "rate_limit", KT_RATE, offsetof(struct config, rate_per_sec),
	    0, 0, 0 },
	STR("ledger", "path", ledger_path, KF_REQUIRED),
	STR("ledger", "url", ledger_url, KF_PGURL),
	DUR("poll", "backoff_min", backoff_min_ms, DURATION_MAX_MS),
	DUR("poll", "backoff_max", backoff_max_ms, DURATION_MAX_MS),
	DUR("poll", "give_up_after", give_up_after_ms, DURATION_MAX_MS),
	DUR("poll", "not_found_grace", not_found_grace_ms, DURATION_MAX_MS),
	DUR("poll", "refund_watch", refund_watch_ms, DURATION_MAX_MS),
	DUR("poll", "refund_check_min", refund_check_min_ms, DURATION_MAX_MS),
	DUR("poll", "refund_check_max", refund_check_max_ms, DURATION_MAX_MS),
	STR("events", "jsonl", jsonl, 0),
	STR("events", "webhook_url", webhook_url, KF_URL),
	STR("events", "webhook_secret", webhook_secret, KF_SECRET),
	DUR("events", "webhook_timeout", webhook_timeout_ms, TIMEOUT_MAX_MS),
	STR("control", "listen", listen, KF_LISTEN),
	STR("control", "token", token, KF_NOSPACE),
	STR("control", "allowed_hosts", allowed_hosts, KF_LIST),
	STR("control", "allowed_origins", allowed_origins, KF_LIST),
	{ "control", "max_connections", KT_INT,
	    offsetof(struct config, max_connections), 0, 1, 65536 },
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const char *sections[] = {
	"api", "ledger", "poll", "events", "control", "status"
};

/* The state of one config_load. */
struct parse {
	struct config	*cfg;
	const char	*path;
	FILE		*f;
	int		 lineno;	/* of the line last handed to inih */
	int		 section_line;	/* of the last "[...]" line */
	int		 read_errno;
	char		*err;		/* the first error */
	int		 errline;
	int		 keyline[NKEYS]; /* line of each key, 0 = default */
	int		*ruleline;	/* line of each cfg->rules entry */
	int		 otherline;	/* where "*" was set */
};

static void	 parse_error(struct parse *, int, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

/* Records the first error only; line 0 means "no line". */
static void
parse_error(struct parse *p, int line, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	if (p->err != NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		msg = NULL;
	va_end(ap);
	if (msg == NULL)
		msg = xstrdup("out of memory");
	if (line > 0)
		p->err = xasprintf("%s:%d: %s", p->path, line, msg);
	else
		p->err = xasprintf("%s: %s", p->path, msg);
	p->errline = line;
	free(msg);
}

const char *
config_action_name(enum action a)
{
	if ((int)a < 0 || a >= ACT__COUNT)
		return "invalid";
	return action_names[a];
}

int
config_action_parse(const char *s, enum action *out)
{
	int	 i;

	if (s == NULL)
		return -1;
	for (i = 0; i < ACT__COUNT; i++) {
		if (strcmp(s, action_names[i]) == 0) {
			*out = (enum action)i;
			return 0;
		}
	}
	return -1;
}

enum action
config_action(const struct config *cfg, const char *status)
{
	size_t	 i;

	if (status != NULL) {
		for (i = 0; i < cfg->nrules; i++) {
			if (strcmp(cfg->rules[i].status, status) == 0)
				return cfg->rules[i].action;
		}
	}
	return cfg->other_action;
}

/* Parses "<digits><unit>" allowing 0; -1 on bad syntax, -2 on overflow. */
static int
duration_parse(const char *s, int64_t *ms)
{
	int64_t		 n = 0, unit;
	const char	*p = s;
	int		 over = 0, d;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		d = *p - '0';
		if (!over && n > (INT64_MAX - d) / 10)
			over = 1;
		if (!over)
			n = n * 10 + d;
	}
	if (strcmp(p, "ms") == 0)
		unit = 1;
	else if (strcmp(p, "s") == 0)
		unit = MS_SECOND;
	else if (strcmp(p, "m") == 0)
		unit = MS_MINUTE;
	else if (strcmp(p, "h") == 0)
		unit = MS_HOUR;
	else if (strcmp(p, "d") == 0)
		unit = MS_DAY;
	else
		return -1;
	if (over || n > INT64_MAX / unit)
		return -2;
	*ms = n * unit;
	return 0;
}

int
config_parse_duration(const char *s, int64_t *ms)
{
	int64_t	 v;

	if (s == NULL || duration_parse(s, &v) != 0 || v == 0)
		return -1;
	*ms = v;
	return 0;
}

int
config_parse_rate(const char *s, double *per_sec)
{
	const char	*slash;
	char		 num[32];
	int64_t		 n;
	size_t		 len;

	if (s == NULL)
		return -1;
	if (strcmp(s, "0") == 0) {
		*per_sec = 0;
		return 0;
	}
	if ((slash = strchr(s, '/')) == NULL)
		return -1;
	len = (size_t)(slash - s);
	if (len == 0 || len >= sizeof num)
		return -1;
	memcpy(num, s, len);
	num[len] = '\0';
	if (num[0] == '-' || util_parse_int64(num, 1, 1000000000, &n) != 0)
		return -1;
	if (strcmp(slash + 1, "s") == 0)
		*per_sec = (double)n;
	else if (strcmp(slash + 1, "min") == 0)
		*per_sec = (double)n / 60.0;
	else
		return -1;
	return 0;
}

/* Writes ms in its largest exact unit ("90d", "250ms") into buf[32]. */
static const char *
duration_fmt(int64_t ms, char *buf)
{
	static const struct {
		int64_t		 ms;
		const char	*unit;
	} units[] = {
		{ MS_DAY, "d" }, { MS_HOUR, "h" }, { MS_MINUTE, "m" },
		{ MS_SECOND, "s" },
	};
	size_t	 i;

	for (i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (ms != 0 && ms % units[i].ms == 0) {
			snprintf(buf, 32, "%lld%s",
			    (long long)(ms / units[i].ms), units[i].unit);
			return buf;
		}
	}
	snprintf(buf, 32, "%lldms", (long long)ms);
	return buf;
}

/* 1 if s is http:// or https:// followed by a host and no blanks. */
static int
url_valid(const char *s)
{
	const char	*rest;

	if (strncmp(s, "https://", 8) == 0)
		rest = s + 8;
	else if (strncmp(s, "http://", 7) == 0)
		rest = s + 7;
	else
		return 0;
	if (*rest == '\0' || *rest == '/' || *rest == ':')
		return 0;
	return strpbrk(s, " \t") == NULL;
}

/* 1 if the host of URL s (http:// or https://) is a loopback address:
 * localhost, 127.0.0.0/8 or [::1]. */
static int
url_loopback(const char *s)
{
	struct in_addr	 in4;
	const char	*h, *end;
	char		 host[256];
	size_t		 len;

	h = strstr(s, "://");
	if (h == NULL)
		return 0;
	h += 3;
	if (*h == '[') {
		if ((end = strchr(h, ']')) == NULL)
			return 0;
		return (size_t)(end - h) == 4 && strncmp(h, "[::1", 4) == 0;
	}
	len = strcspn(h, ":/?#");
	if (len == 0 || len >= sizeof host || memchr(h, '@', len) != NULL)
		return 0;
	memcpy(host, h, len);
	host[len] = '\0';
	if (strcasecmp(host, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, host, &in4) == 1 &&
	    (ntohl(in4.s_addr) >> 24) == 127;
}

/* 1 if s is "whsec_" + base64 (with padding) of at least SECRET_MIN bytes. */
static int
secret_valid(const char *s)
{
	static const char	 b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char		*out;
	size_t			 len, i, pad = 0;
	int			 n;

	if (strncmp(s, SECRET_PREFIX, strlen(SECRET_PREFIX)) != 0)
		return 0;
	s += strlen(SECRET_PREFIX);
	len = strlen(s);
	if (len == 0 || len % 4 != 0)
		return 0;
	while (pad < 2 && s[len - 1 - pad] == '=')
		pad++;
	for (i = 0; i < len - pad; i++) {
		if (s[i] == '\0' || strchr(b64, s[i]) == NULL)
			return 0;
	}
	if ((len / 4) * 3 - pad < SECRET_MIN)
		return 0;
	out = xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	free(out);
	return n >= 0 && (size_t)n == len / 4 * 3;
}

/* 1 if s is one secret, or up to CONFIG_WEBHOOK_SECRETS_MAX of them
 * separated by blanks (while rotating: every delivery is signed with each). */
static int
secrets_valid(const char *s)
{
	char	*copy, *p, *one;
	int	 n = 0, ok = 1;

	p = copy = xstrdup(s);
	while (ok && (one = strsep(&p, " \t")) != NULL) {
		if (*one == '\0')
			continue;
		ok = ++n <= CONFIG_WEBHOOK_SECRETS_MAX && secret_valid(one);
	}
	free(copy);
	return ok && n > 0;
}

/* 1 if c may appear in a host name or IPv4 address. */
static int
host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* Checks a [control] listen value; returns why it is bad (caller frees). */
static char *
listen_check(const char *s)
{
	struct in6_addr		 in6;
	const char		*p, *port;
	char			 v6[INET6_ADDRSTRLEN + 1];
	int64_t			 n;
	size_t			 len;

	if (strncmp(s, "unix:", 5) == 0) {
		p = s + 5;
		if (*p != '/')
			return xasprintf("unix socket path \"%s\" must be "
			    "absolute", p);
		if (strlen(p) >= SUN_PATH_SIZE)
			return xasprintf("unix socket path is too long (at "
			    "most %zu bytes)", SUN_PATH_SIZE - 1);
		if (strpbrk(p, " \t") != NULL)
			return xasprintf("invalid address \"%s\" %s", s,
			    LISTEN_HINT);
		return NULL;
	}
	if (*s == '[') {
		if ((p = strchr(s, ']')) == NULL || p[1] != ':')
			return xasprintf("invalid address \"%s\" %s", s,
			    LISTEN_HINT);
		len = (size_t)(p - s - 1);
		if (len == 0 || len >= sizeof v6)
			return xasprintf("invalid address \"%s\" %s", s,
			    LISTEN_HINT);
		memcpy(v6, s + 1, len);
		v6[len] = '\0';
		if (inet_pton(AF_INET6, v6, &in6) != 1)
			return xasprintf("invalid IPv6 address \"%s\"", v6);
		port = p + 2;
	} else {
		if ((port = strchr(s, ':')) == NULL || port == s)
			return xasprintf("invalid address \"%s\" %s", s,
			    LISTEN_HINT);
		for (p = s; p < port; p++) {
			if (!host_char(*p))
				return xasprintf("invalid address \"%s\" %s",
				    s, LISTEN_HINT);
		}
		port++;
	}
	if (*port == '\0' || *port == '-' ||
	    util_parse_int64(port, 0, INT64_MAX, &n) != 0)
		return xasprintf("invalid address \"%s\" %s", s, LISTEN_HINT);
	if (n < 1 || n > 65535)
		return xasprintf("port %s is out of range (1..65535)", port);
	return NULL;
}

/* 1 if s is a status name a rule may use: 0x21..0x7e, 1..64 bytes. */
static int
status_name_valid(const char *s)
{
	size_t	 len = strlen(s), i;

	if (len == 0 || len > STATUS_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return 0;
	}
	return 1;
}

static void
status_set(struct parse *p, const char *name, const char *value)
{
	struct config	*cfg = p->cfg;
	enum action	 a;
	size_t		 i;

	if (strcmp(name, "*") != 0 && !status_name_valid(name)) {
		parse_error(p, p->lineno, "invalid status name \"%s\" "
		    "(printable ASCII without spaces, at most %d bytes)", name,
		    STATUS_NAME_MAX);
		return;
	}
	if (config_action_parse(value, &a) != 0) {
		parse_error(p, p->lineno, "unknown action \"%s\" for status %s "
		    ACTION_HINT, value, name);
		return;
	}
	if (strcmp(name, "*") == 0) {
		if (p->otherline != 0) {
			parse_error(p, p->lineno, "duplicate key \"*\" in "
			    "section [status] (first set on line %d)",
			    p->otherline);
			return;
		}
		p->otherline = p->lineno;
		cfg->other_action = a;
		return;
	}
	for (i = 0; i < cfg->nrules; i++) {
		if (strcmp(cfg->rules[i].status, name) != 0)
			continue;
		if (p->ruleline[i] != 0) {
			parse_error(p, p->lineno, "duplicate key \"%s\" in "
			    "section [status] (first set on line %d)", name,
			    p->ruleline[i]);
			return;
		}
		p->ruleline[i] = p->lineno;
		cfg->rules[i].action = a;
		return;
	}
	cfg->rules = xrealloc(cfg->rules, (cfg->nrules + 1) *
	    sizeof cfg->rules[0]);
	p->ruleline = xrealloc(p->ruleline, (cfg->nrules + 1) *
	    sizeof p->ruleline[0]);
	cfg->rules[cfg->nrules].status = xstrdup(name);
	cfg->rules[cfg->nrules].action = a;
	p->ruleline[cfg->nrules] = p->lineno;
	cfg->nrules++;
}

/* Sets a KT_STRING key; empty means NULL unless required. */
static void
string_set(struct parse *p, const struct keydef *k, const char *value)
{
	char	**field = (char **)(void *)((char *)p->cfg + k->off);
	char	 *why, *v;
	size_t	  len;

	if (*value == '\0') {
		if (k->flags & KF_REQUIRED) {
			parse_error(p, p->lineno, "%s must not be empty",
			    k->name);
			return;
		}
		free(*field);
		*field = NULL;
		return;
	}
	if ((k->flags & KF_URL) && !url_valid(value)) {
		parse_error(p, p->lineno, "%s: invalid URL \"%s\" (must start "
		    "with https:// or http:// and name a host)", k->name,
		    value);
		return;
	}
	if ((k->flags & KF_SECRET) && !secrets_valid(value)) {
		parse_error(p, p->lineno, "%s: not a valid secret (use "
		    SECRET_PREFIX "<base64 of at least %d bytes>; while "
		    "rotating, up to %d of them separated by spaces)", k->name,
		    SECRET_MIN, CONFIG_WEBHOOK_SECRETS_MAX);
		return;
	}
	if ((k->flags & KF_PGURL) && strncmp(value, "postgresql://", 13) != 0 &&
	    strncmp(value, "postgres://", 11) != 0) {
		parse_error(p, p->lineno, "%s: not a PostgreSQL URL (must start"
		    " with postgresql://)", k->name);
		return;
	}
	if ((k->flags & (KF_NOSPACE | KF_PGURL)) &&
	    strpbrk(value, " \t") != NULL) {
		parse_error(p, p->lineno, "%s must not contain blanks",
		    k->name);
		return;
	}
	if ((k->flags & KF_LISTEN) && (why = listen_check(value)) != NULL) {
		parse_error(p, p->lineno, "%s: %s", k->name, why);
		free(why);
		return;
	}
	v = xstrdup(value);
	if (k->flags & KF_URL) {
		/* Paths are appended to it, so no trailing '/'. */
		len = strlen(v);
		while (len > 0 && v[len - 1] == '/')
			v[--len] = '\0';
	}
	free(*field);
	*field = v;
}

static void
duration_set(struct parse *p, const struct keydef *k, const char *value)
{
	int64_t	*field = (int64_t *)(void *)((char *)p->cfg + k->off);
	int64_t	 ms;
	char	 lo[32], hi[32];
	int	 rc;

	rc = duration_parse(value, &ms);
	if (rc == -1) {
		parse_error(p, p->lineno, "%s: invalid duration \"%s\" "
		    DURATION_HINT, k->name, value);
		return;
	}
	if (rc == -2 || ms < k->min || ms > k->max) {
		parse_error(p, p->lineno, "%s: %s is out of range (%s..%s)",
		    k->name, value, duration_fmt(k->min, lo),
		    duration_fmt(k->max, hi));
		return;
	}
	*field = ms;
}

static void
int_set(struct parse *p, const struct keydef *k, const char *value)
{
	int	*field = (int *)(void *)((char *)p->cfg + k->off);
	int64_t	 n;

	if (util_parse_int64(value, INT64_MIN, INT64_MAX, &n) != 0) {
		parse_error(p, p->lineno, "%s: invalid number \"%s\" "
		    "(%lld..%lld)", k->name, value, (long long)k->min,
		    (long long)k->max);
		return;
	}
	if (n < k->min || n > k->max) {
		parse_error(p, p->lineno, "%s: %s is out of range (%lld..%lld)",
		    k->name, value, (long long)k->min, (long long)k->max);
		return;
	}
	*field = (int)n;
}

static void
rate_set(struct parse *p, const char *value)
{
	double	 r;

	if (config_parse_rate(value, &r) != 0) {
		parse_error(p, p->lineno, "rate_limit: invalid rate \"%s\" "
		    RATE_HINT, value);
		return;
	}
	p->cfg->rate_per_sec = r;
	free(p->cfg->rate_limit);
	p->cfg->rate_limit = xstrdup(value);
}

/* The inih handler: one name = value of a section. */
static int
parse_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct parse	*p = arg;
	size_t		 i;

	if (p->err != NULL)
		return 0;
	if (*section == '\0') {
		parse_error(p, p->lineno, "key \"%s\" is outside any section",
		    name);
		return 0;
	}
	for (i = 0; i < sizeof sections / sizeof sections[0]; i++) {
		if (strcmp(section, sections[i]) == 0)
			break;
	}
	if (i == sizeof sections / sizeof sections[0]) {
		parse_error(p, p->section_line, "unknown section [%s]",
		    section);
		return 0;
	}
	if (strcmp(section, "status") == 0) {
		status_set(p, name, value);
		return p->err == NULL;
	}
	for (i = 0; i < NKEYS; i++) {
		if (strcmp(section, keys[i].section) == 0 &&
		    strcmp(name, keys[i].name) == 0)
			break;
	}
	if (i == NKEYS) {
		parse_error(p, p->lineno, "unknown key \"%s\" in section [%s]",
		    name, section);
		return 0;
	}
	if (p->keyline[i] != 0) {
		parse_error(p, p->lineno, "duplicate key \"%s\" in section "
		    "[%s] (first set on line %d)", name, section,
		    p->keyline[i]);
		return 0;
	}
	p->keyline[i] = p->lineno;
	switch (keys[i].type) {
	case KT_STRING:
		string_set(p, &keys[i], value);
		break;
	case KT_DURATION:
		duration_set(p, &keys[i], value);
		break;
	case KT_INT:
		int_set(p, &keys[i], value);
		break;
	case KT_RATE:
		rate_set(p, value);
		break;
	}
	return p->err == NULL;
}

/*
 * The inih reader: hands over one whole physical line per call, so that
 * p->lineno is the line inih is parsing. It stops the parse (returns NULL)
 * on a line too long for inih's buffer (which inih would silently split in
 * two), on control characters, on a read error and after the first error.
 * Leading blanks are dropped, so inih never treats an indented line as the
 * continuation of the previous value.
 */
static char *
parse_reader(char *buf, int size, void *arg)
{
	struct parse	*p = arg;
	const char	*q;
	size_t		 len = 0, max, i;
	int		 c, any = 0, bad = 0, start = 1;

	if (p->err != NULL || p->read_errno != 0 || size < 4)
		return NULL;
	max = (size_t)size - 3;	/* room for '\r', '\n', '\0' */
	while ((c = getc(p->f)) != EOF) {
		any = 1;
		if (c == '\n')
			break;
		if (start && (c == ' ' || c == '\t'))
			continue;
		start = 0;
		if ((size_t)len < (size_t)size - 1)
			buf[len] = (char)c;
		len++;
	}
	if (c == EOF && ferror(p->f)) {
		p->read_errno = errno != 0 ? errno : EIO;
		return NULL;
	}
	if (!any)
		return NULL;
	p->lineno++;
	if (len > 0 && len <= (size_t)size - 1 && buf[len - 1] == '\r')
		len--;
	if (len > max) {
		parse_error(p, p->lineno, "line too long (at most %zu bytes)",
		    max);
		return NULL;
	}
	buf[len] = '\0';
	for (i = 0; i < len; i++) {
		if (((unsigned char)buf[i] < 0x20 && buf[i] != '\t') ||
		    buf[i] == 0x7f)
			bad = 1;
	}
	if (bad) {
		parse_error(p, p->lineno, "control character in line");
		return NULL;
	}
	q = buf;
	if (p->lineno == 1 && strncmp(q, "\xef\xbb\xbf", 3) == 0)
		for (q += 3; *q == ' ' || *q == '\t'; q++)
			;
	if (*q == '[') {
		const char	*end = strchr(q, ']');
		size_t		 n;

		p->section_line = p->lineno;
		/* inih never calls the handler for a section without keys, so
		 * an unknown empty section is caught here. */
		if (end != NULL) {
			n = (size_t)(end - (q + 1));
			for (i = 0; i < sizeof sections / sizeof sections[0]; i++)
				if (strlen(sections[i]) == n &&
				    strncmp(q + 1, sections[i], n) == 0)
					break;
			if (i == sizeof sections / sizeof sections[0]) {
				parse_error(p, p->lineno,
				    "unknown section [%.*s]", (int)n, q + 1);
				return NULL;
			}
		}
	}
	return buf;
}

/* Joins a relative path onto $CREDENTIALS_DIRECTORY when that is set. */
static void
credential_resolve(char **field)
{
	const char	*dir = getenv("CREDENTIALS_DIRECTORY");
	char		*joined;
	size_t		 dlen;

	if (*field == NULL || **field == '/' || dir == NULL || *dir == '\0')
		return;
	dlen = strlen(dir);
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	joined = xasprintf("%.*s/%s", (int)dlen, dir, *field);
	free(*field);
	*field = joined;
}

static int
keyline_of(const struct parse *p, const char *name)
{
	size_t	 i;

	for (i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].name, name) == 0)
			return p->keyline[i];
	}
	return 0;
}

static int
later(int a, int b)
{
	return a > b ? a : b;
}

/* The checks that involve more than one key. */
static void
config_check(struct parse *p)
{
	struct config	*cfg = p->cfg;
	char		 a[32], b[32];
	int		 la, lb;

	if (cfg->backoff_min_ms > cfg->backoff_max_ms) {
		la = keyline_of(p, "backoff_min");
		lb = keyline_of(p, "backoff_max");
		parse_error(p, later(la, lb), "backoff_min (%s) is greater "
		    "than backoff_max (%s)",
		    duration_fmt(cfg->backoff_min_ms, a),
		    duration_fmt(cfg->backoff_max_ms, b));
	}
	if (cfg->refund_check_min_ms > cfg->refund_check_max_ms) {
		la = keyline_of(p, "refund_check_min");
		lb = keyline_of(p, "refund_check_max");
		parse_error(p, later(la, lb), "refund_check_min (%s) is "
		    "greater than refund_check_max (%s)",
		    duration_fmt(cfg->refund_check_min_ms, a),
		    duration_fmt(cfg->refund_check_max_ms, b));
	}
	if (cfg->webhook_url != NULL && cfg->webhook_secret == NULL)
		parse_error(p, keyline_of(p, "webhook_url"),
		    "webhook_url is set but webhook_secret is not");
	if (cfg->webhook_secret != NULL && cfg->webhook_url == NULL)
		parse_error(p, keyline_of(p, "webhook_secret"),
		    "webhook_secret is set but webhook_url is not");
	if (strncmp(cfg->base_url, "http://", 7) == 0 &&
	    !url_loopback(cfg->base_url))
		parse_error(p, keyline_of(p, "base_url"), "base_url: http:// "
		    "is only for a loopback simulator; Toss answers are not "
		    "authenticated without TLS (use https://)");
	if (cfg->listen != NULL && strncmp(cfg->listen, "unix:", 5) != 0 &&
	    cfg->token == NULL)
		parse_error(p, keyline_of(p, "listen"), "listen: a TCP "
		    "address needs a token (every local user could read the "
		    "event feed and post orders): set [control] token, or "
		    "listen on unix:/PATH");
	if (cfg->ledger_url != NULL && keyline_of(p, "path") != 0)
		parse_error(p, later(keyline_of(p, "path"),
		    keyline_of(p, "url")), "[ledger] path and url are both"
		    " set: use path for an SQLite file or url for PostgreSQL,"
		    " not both");
	if (cfg->ledger_url != NULL && !CONFIG_POSTGRESQL)
		parse_error(p, keyline_of(p, "url"), "url: this build of"
		    " reconciled has no PostgreSQL ledger backend (configure"
		    " it --with-postgresql, with libpq installed), or use"
		    " path");
	if (cfg->cert != NULL && cfg->key == NULL)
		parse_error(p, keyline_of(p, "key"),
		    "cert is set but key is not");
	if (cfg->key != NULL && cfg->cert == NULL)
		parse_error(p, keyline_of(p, "cert"),
		    "key is set but cert is not");
}

/* unix:$RUNTIME_DIRECTORY/control.sock (the first directory when systemd
 * lists several), or NULL: without it the control API stays off. */
static char *
control_default_listen(void)
{
	const char	*dir = getenv("RUNTIME_DIRECTORY");
	char		*l, *why;
	size_t		 dlen;

	if (dir == NULL || *dir != '/')
		return NULL;
	dlen = strcspn(dir, ":");
	while (dlen > 1 && dir[dlen - 1] == '/')
		dlen--;
	l = xasprintf("unix:%.*s/%s", (int)dlen, dir, CONFIG_CONTROL_SOCK);
	if ((why = listen_check(l)) != NULL) {
		free(why);
		free(l);
		return NULL;
	}
	return l;
}

struct config *
config_default(void)
{
	struct config	*cfg;
	size_t		 i;

	cfg = xcalloc(1, sizeof *cfg);
	cfg->base_url = xstrdup("https://apps-in-toss-api.toss.im");
	cfg->cert = xstrdup(CONFIG_DEFAULT_CERT);
	cfg->key = xstrdup(CONFIG_DEFAULT_KEY);
	cfg->timeout_ms = 10 * MS_SECOND;
	cfg->connect_timeout_ms = 3 * MS_SECOND;
	cfg->max_inflight = 64;
	cfg->rate_per_sec = 50.0;
	cfg->rate_limit = xstrdup("3000/min");
	cfg->ledger_path = xstrdup(CONFIG_DEFAULT_LEDGER);
	cfg->backoff_min_ms = 2 * MS_SECOND;
	cfg->backoff_max_ms = 5 * MS_MINUTE;
	cfg->give_up_after_ms = 24 * MS_HOUR;
	cfg->not_found_grace_ms = 10 * MS_MINUTE;
	cfg->refund_watch_ms = 90 * MS_DAY;
	cfg->refund_check_min_ms = 1 * MS_HOUR;
	cfg->refund_check_max_ms = 7 * MS_DAY;
	cfg->webhook_timeout_ms = 15 * MS_SECOND;
	cfg->listen = control_default_listen();
	cfg->max_connections = 64;
	cfg->rules = xcalloc(NDEFAULT_RULES, sizeof cfg->rules[0]);
	for (i = 0; i < NDEFAULT_RULES; i++) {
		cfg->rules[i].status = xstrdup(default_rules[i].status);
		cfg->rules[i].action = default_rules[i].action;
	}
	cfg->nrules = NDEFAULT_RULES;
	cfg->other_action = ACT_HOLD;
	return cfg;
}

void
config_free(struct config *cfg)
{
	size_t	 i;

	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->base_url);
	free(cfg->cert);
	free(cfg->key);
	free(cfg->ca);
	free(cfg->rate_limit);
	free(cfg->ledger_path);
	util_free_secret(cfg->ledger_url);
	free(cfg->jsonl);
	free(cfg->webhook_url);
	util_free_secret(cfg->webhook_secret);
	free(cfg->listen);
	util_free_secret(cfg->token);
	free(cfg->allowed_hosts);
	free(cfg->allowed_origins);
	for (i = 0; i < cfg->nrules; i++)
		free(cfg->rules[i].status);
	free(cfg->rules);
	free(cfg);
}

int
config_load(const char *path, struct config **out, char **err)
{
	struct parse	 p;
	int		 rc, saved = errno;

	memset(&p, 0, sizeof p);
	p.path = path;
	if ((p.f = fopen(path, "r")) == NULL) {
		*err = xasprintf("%s: cannot read: %s", path, strerror(errno));
		errno = saved;
		return -1;
	}
	p.cfg = config_default();
	p.cfg->path = xstrdup(path);
	p.ruleline = xcalloc(p.cfg->nrules, sizeof p.ruleline[0]);

	errno = 0;
	rc = ini_parse_stream(parse_reader, &p, parse_handler, &p);
	fclose(p.f);
	if (p.read_errno != 0) {
		free(p.err);
		p.err = xasprintf("%s: cannot read: %s", path,
		    strerror(p.read_errno));
	} else if (rc > 0 && (p.err == NULL || rc < p.errline)) {
		free(p.err);
		p.err = NULL;
		parse_error(&p, rc, "syntax error (expected [section] or "
		    "key = value)");
	} else if (rc < 0 && p.err == NULL)
		parse_error(&p, 0, "cannot parse (inih error %d)", rc);

	if (p.err == NULL) {
		credential_resolve(&p.cfg->cert);
		credential_resolve(&p.cfg->key);
		config_check(&p);
	}
	free(p.ruleline);
	errno = saved;
	if (p.err != NULL) {
		config_free(p.cfg);
		*err = p.err;
		return -1;
	}
	*out = p.cfg;
	return 0;
}

int
config_list_has(const char *list, const char *item, size_t len)
{
	const char	*p = list;
	size_t		 n;

	if (list == NULL || len == 0)
		return 0;
	while (*p != '\0') {
		p += strspn(p, " \t,");
		n = strcspn(p, " \t,");
		if (n == len && strncasecmp(p, item, len) == 0)
			return 1;
		p += n;
	}
	return 0;
}

int
config_plain_http(const struct config *cfg)
{
	return strncmp(cfg->base_url, "http://", 7) == 0;
}

const char *
config_path(const char *explicit_path)
{
	const char	*env;

	if (explicit_path != NULL && *explicit_path != '\0')
		return explicit_path;
	env = getenv("RECONCILED_CONFIG");
	if (env != NULL && *env != '\0')
		return env;
	return CONFIG_DEFAULT_PATH;
}

const char *
config_ledger(const struct config *cfg)
{
	return cfg->ledger_url != NULL ? cfg->ledger_url : cfg->ledger_path;
}
