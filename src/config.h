/* The configuration: every key of reconciled.conf(5) with its default, read from an
 * INI file with inih, validated, with errors that name file:line. */
#ifndef RECONCILED_CONFIG_H
#define RECONCILED_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
/* Default locations follow ./configure's sysconfdir and localstatedir. */
#define CONFIG_DEFAULT_PATH	SYSCONFDIR "/reconciled/reconciled.conf"
#define CONFIG_DEFAULT_CERT	SYSCONFDIR "/reconciled/client.crt"
#define CONFIG_DEFAULT_KEY	SYSCONFDIR "/reconciled/client.key"
#define CONFIG_DEFAULT_LEDGER	LOCALSTATEDIR "/lib/reconciled/ledger.db"
/* Secrets webhook_secret may hold at once, to rotate one without a gap. */
#define CONFIG_WEBHOOK_SECRETS_MAX	4

/* What a Toss status maps to (config section [status]). */
enum action {
	ACT_GRANT,
	ACT_WAIT,
	ACT_RETRY,
	ACT_FAIL,
	ACT_REFUND,
	ACT_NOT_FOUND,
	ACT_MISMATCH,
	ACT_HOLD,
	ACT__COUNT
};

struct status_rule {
	char		*status;	/* verbatim Toss status */
	enum action	 action;
};

struct config {
	char		*path;		/* file it was read from, NULL for defaults */

	/* [api] */
	char		*base_url;	/* http(s)://host..., no trailing '/' */
	char		*cert;		/* resolved in $CREDENTIALS_DIRECTORY if relative */
	char		*key;		/* same; cert and key are both set or both NULL */
	char		*ca;		/* NULL = system store */
	int64_t		 timeout_ms;
	int64_t		 connect_timeout_ms;
	int		 max_inflight;	/* 1..4096 */
	double		 rate_per_sec;	/* 0 = no limit */
	char		*rate_limit;	/* as written, for messages */

	/* [ledger] */
	char		*ledger_path;	/* SQLite: the file */
	char		*ledger_url;	/* PostgreSQL: NULL = use ledger_path;
					 * may hold a password: never log it
					 * (ledger_path() of the open ledger
					 * masks it) */

	/* [poll] */
	int64_t		 backoff_min_ms;
	int64_t		 backoff_max_ms;
	int64_t		 give_up_after_ms;
	int64_t		 not_found_grace_ms;
	int64_t		 refund_watch_ms;
	int64_t		 refund_check_min_ms;
	int64_t		 refund_check_max_ms;

	/* [events] */
	char		*jsonl;		/* NULL = off */
	char		*webhook_url;	/* NULL = off */
	char		*webhook_secret;	/* one whsec_ or several, blank-separated */
	int64_t		 webhook_timeout_ms;

	/* [control] */
	char		*listen;	/* NULL = off; "host:port" or "unix:/path" */
	char		*token;		/* NULL = no auth (a unix socket only) */
	char		*allowed_hosts;	/* Host names besides the listen host and
					 * localhost, blank or comma separated */
	char		*allowed_origins; /* Origins allowed; NULL = none */
	int		 max_connections; /* control connections at once */

	/* [status]: explicit rules, then the action for any other status */
	struct status_rule *rules;
	size_t		 nrules;
	enum action	 other_action;	/* "*" */
};

#define CONFIG_CONTROL_SOCK	"control.sock"	/* in $RUNTIME_DIRECTORY */

/* A config holding every default of reconciled.conf(5). Never NULL. The
 * control listener defaults to unix:$RUNTIME_DIRECTORY/control.sock when
 * systemd set that variable, else to none. */
struct config	*config_default(void);

/* Reads and validates path. On success returns 0 and sets *out (caller
 * frees with config_free). On failure returns -1 and sets *err to a message
 * naming "file:line: what" (caller frees); *out is untouched. */
int		 config_load(const char *path, struct config **out, char **err);

void		 config_free(struct config *);

/* The config file to use: explicit (-c) if given, else $RECONCILED_CONFIG,
 * else CONFIG_DEFAULT_PATH. */
const char	*config_path(const char *explicit_path);
/* What ledger_open() takes: [ledger] url when set, else path. May hold a
 * password: never log it. */
const char	*config_ledger(const struct config *);

/* 1 if list (blank or comma separated, NULL = empty) holds item[len],
 * compared without regard to case. */
int		 config_list_has(const char *list, const char *item, size_t len);

/* 1 if a base_url is http:// (no TLS): config_load accepts that only for a
 * loopback host, the simulator. */
int		 config_plain_http(const struct config *);

/* The action for a status (exact, case-sensitive match; else "*"). */
enum action	 config_action(const struct config *, const char *status);

const char	*config_action_name(enum action);
int		 config_action_parse(const char *, enum action *);

/* "250ms", "2s", "5m", "1h", "90d" (a bare number is an error). */
int		 config_parse_duration(const char *, int64_t *ms);
/* "3000/min", "50/s", "0". Result in requests per second. */
int		 config_parse_rate(const char *, double *per_sec);

#endif
