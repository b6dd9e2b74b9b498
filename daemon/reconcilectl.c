/* reconcilectl: the operator's command line for a reconciled ledger. It adds
 * and imports orders, shows orders, events and counts, and makes orders due
 * again. It works on the ledger file directly, whether the daemon runs or not.
 * migrate copies a whole ledger (an SQLite file) into the configured one.
 * The ledger logs the cause of a database error itself; we say what failed. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "intake.h"
#include "json-out.h"
#include "ledger.h"
#include "log.h"
#include "util.h"

#define PROG			"reconcilectl"
#define EVENTS_LIMIT_DEFAULT	100
#define EVENTS_LIMIT_MAX	100000
#define IMPORT_CHUNK		65536

/* Long-only options carry values past any character (and past 255, which
 * ctl_opt_err relies on to tell them from short options). */
enum {
	OPT_JSON = 256,
	OPT_SKU,
	OPT_REF,
	OPT_STATE,
	OPT_AFTER,
	OPT_LIMIT,
	OPT_FROM,
	OPT_SINCE
};

struct ctl {
	const char	*config_arg;	/* -c, or NULL */
	struct config	*cfg;
	struct ledger	*ledger;
};

/* A command's arguments after ctl_parse: its positionals in order and the
 * values of the options it takes (NULL/0 when not given). */
struct cmdline {
	const char	*cmd;
	char		*pos[2];
	int		 npos;
	const char	*sku;
	const char	*ref;
	const char	*state;
	int64_t		 after;
	int64_t		 limit;
	int64_t		 from;		/* --from: 0 when not given */
	const char	*since;
	int		 json;
};

/* Which options a command takes (struct command's opts). */
#define CO_JSON		0x01
#define CO_SKU		0x02
#define CO_REF		0x04
#define CO_STATE	0x08
#define CO_AFTER	0x10
#define CO_LIMIT	0x20
#define CO_FROM		0x40
#define CO_SINCE	0x80

struct command {
	const char	*name;
	int		 (*run)(struct ctl *, struct cmdline *);
	const char	*usage;		/* after "reconcilectl [-c FILE] " */
	int		 opts;		/* CO_* */
	int		 maxpos;	/* positionals it takes at most */
	const char	*need;		/* what is missing without positionals,
					 * one name per positional it needs */
	const char	*need2;		/* ... without the second */
};

static int	 cmd_add(struct ctl *, struct cmdline *);
static int	 cmd_import(struct ctl *, struct cmdline *);
static int	 cmd_show(struct ctl *, struct cmdline *);
static int	 cmd_list(struct ctl *, struct cmdline *);
static int	 cmd_events(struct ctl *, struct cmdline *);
static int	 cmd_stats(struct ctl *, struct cmdline *);
static int	 cmd_recheck(struct ctl *, struct cmdline *);
static int	 cmd_sinks(struct ctl *, struct cmdline *);
static int	 cmd_replay(struct ctl *, struct cmdline *);
static int	 cmd_migrate(struct ctl *, struct cmdline *);

static const struct command commands[] = {
	{ "add", cmd_add, "add ORDER_ID USER_KEY [--sku SKU] [--ref REF]",
	    CO_SKU | CO_REF, 2, "ORDER_ID and USER_KEY", "USER_KEY" },
	{ "import", cmd_import, "import [FILE|-]", 0, 1, NULL, NULL },
	{ "show", cmd_show, "show ORDER_ID [--json]", CO_JSON, 1, "ORDER_ID",
	    NULL },
	{ "list", cmd_list, "list [--state STATE] [--json]",
	    CO_STATE | CO_JSON, 0, NULL, NULL },
	{ "events", cmd_events, "events [--after ID] [--limit N] [--json]",
	    CO_AFTER | CO_LIMIT | CO_JSON, 0, NULL, NULL },
	{ "stats", cmd_stats, "stats [--json]", CO_JSON, 0, NULL, NULL },
	{ "recheck", cmd_recheck, "recheck ORDER_ID | --state STATE",
	    CO_STATE, 1, NULL, NULL },
	{ "sinks", cmd_sinks, "sinks [--json]", CO_JSON, 0, NULL, NULL },
	{ "replay", cmd_replay, "replay SINK --from ID | --since TIME",
	    CO_FROM | CO_SINCE, 1, "SINK", NULL },
	{ "migrate", cmd_migrate, "migrate SOURCE", 0, 1, "SOURCE", NULL },
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

/* Every command option; a command's own table is the subset of its opts. */
static const struct {
	int		 bit;
	struct option	 o;
} cmd_options[] = {
	{ CO_JSON, { "json", no_argument, NULL, OPT_JSON } },
	{ CO_SKU, { "sku", required_argument, NULL, OPT_SKU } },
	{ CO_REF, { "ref", required_argument, NULL, OPT_REF } },
	{ CO_STATE, { "state", required_argument, NULL, OPT_STATE } },
	{ CO_AFTER, { "after", required_argument, NULL, OPT_AFTER } },
	{ CO_LIMIT, { "limit", required_argument, NULL, OPT_LIMIT } },
	{ CO_FROM, { "from", required_argument, NULL, OPT_FROM } },
	{ CO_SINCE, { "since", required_argument, NULL, OPT_SINCE } },
};
#define NCMD_OPTIONS	(sizeof(cmd_options) / sizeof(cmd_options[0]))

static void	 ctl_err(const char *, ...)
		    __attribute__((format(printf, 1, 2)));
static int	 ctl_usage_err(const char *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

/* "reconcilectl: message" on stderr. */
static void
ctl_err(const char *fmt, ...)
{
	va_list	 ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const struct command *
ctl_command(const char *name)
{
	size_t	 i;

	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

static void
ctl_help(FILE *f)
{
	size_t	 i;

	fprintf(f, "usage: " PROG " [-c FILE] COMMAND [ARGS]\n"
	    "       " PROG " -h | -V\n\ncommands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fprintf(f, "\noptions:\n"
	    "  -c FILE  configuration file (default: $RECONCILED_CONFIG, "
	    "else %s)\n"
	    "  -h       show this help\n"
	    "  -V       show the version\n\n"
	    "events shows at most %d events unless --limit says otherwise "
	    "(up to %d).\n"
	    "exit status: 0 ok, 1 failure or refused input, 64 usage, "
	    "78 configuration\n", CONFIG_DEFAULT_PATH, EVENTS_LIMIT_DEFAULT,
	    EVENTS_LIMIT_MAX);
}

/* Reports a usage error for command cmd (NULL: the global usage) and
 * returns EX_USAGE. */
static int
ctl_usage_err(const char *cmd, const char *fmt, ...)
{
	const struct command	*c;
	va_list			 ap;

	fputs(PROG ": ", stderr);
	if (cmd != NULL)
		fprintf(stderr, "%s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd != NULL && (c = ctl_command(cmd)) != NULL)
		fprintf(stderr, "usage: " PROG " [-c FILE] %s\n", c->usage);
	else
		fprintf(stderr, "usage: " PROG " [-c FILE] COMMAND [ARGS] "
		    "(see " PROG " -h)\n");
	return EX_USAGE;
}

/* Turns getopt's '?' or ':' into a usage error naming the option. getopt
 * runs silently (opterr = 0, optstring starting with ':'). */
static int
ctl_opt_err(const char *cmd, int c, char **argv, const struct option *lo)
{
	const char	*name = NULL;

	for (; optopt >= OPT_JSON && lo->name != NULL; lo++) {
		if (lo->val == optopt)
			name = lo->name;
	}
	if (c == ':') {
		if (name != NULL)
			return ctl_usage_err(cmd, "option --%s needs a value",
			    name);
		return ctl_usage_err(cmd, "option -%c needs a value", optopt);
	}
	if (optopt >= OPT_JSON && name != NULL)
		return ctl_usage_err(cmd, "option --%s takes no value", name);
	if (optopt > 0 && optopt < OPT_JSON)
		return ctl_usage_err(cmd, "unknown option -%c", optopt);
	return ctl_usage_err(cmd, "unknown option %s", argv[optind - 1]);
}

/*
 * Parses a command's options and positionals into cl, by the command's
 * entry in commands[]. Options come after the command, in any order with
 * its arguments: getopt_long runs with a leading '-' so that every
 * non-option comes back as code 1, in order (this does not depend on
 * POSIXLY_CORRECT); "--" ends the options and leaves the rest from optind.
 * Returns -1 to go on, or the exit status to leave with (-h: 0, after the
 * usage; a usage error: EX_USAGE, after saying why).
 */
static int
ctl_parse(const struct command *cmd, int argc, char **argv,
    struct cmdline *cl)
{
	struct option	 lo[NCMD_OPTIONS + 2];
	const char	*name = cmd->name;
	size_t		 i, n = 0;
	int		 c, npos = 0;

	for (i = 0; i < NCMD_OPTIONS; i++) {
		if (cmd->opts & cmd_options[i].bit)
			lo[n++] = cmd_options[i].o;
	}
	lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	lo[n] = (struct option){ NULL, 0, NULL, 0 };

	memset(cl, 0, sizeof(*cl));
	cl->cmd = name;
	cl->limit = EVENTS_LIMIT_DEFAULT;
	while ((c = getopt_long(argc, argv, "-:h", lo, NULL)) != -1) {
		switch (c) {
		case 1:
			if (npos < (int)(sizeof(cl->pos) / sizeof(cl->pos[0])))
				cl->pos[npos] = optarg;
			npos++;
			break;
		case OPT_JSON:
			cl->json = 1;
			break;
		case OPT_SKU:
			cl->sku = optarg;
			break;
		case OPT_REF:
			cl->ref = optarg;
			break;
		case OPT_STATE:
			cl->state = optarg;
			break;
		case OPT_AFTER:
			if (util_parse_int64(optarg, 0, INT64_MAX,
			    &cl->after) == -1)
				return ctl_usage_err(name, "--after must be an"
				    " event id (an integer >= 0), not \"%s\"",
				    optarg);
			break;
		case OPT_LIMIT:
			if (util_parse_int64(optarg, 1, EVENTS_LIMIT_MAX,
			    &cl->limit) == -1)
				return ctl_usage_err(name, "--limit must be an"
				    " integer from 1 to %d, not \"%s\"",
				    EVENTS_LIMIT_MAX, optarg);
			break;
		case OPT_FROM:
			if (util_parse_int64(optarg, 1, INT64_MAX,
			    &cl->from) == -1)
				return ctl_usage_err(name, "--from must be an"
				    " event id (an integer >= 1), not \"%s\"",
				    optarg);
			break;
		case OPT_SINCE:
			cl->since = optarg;
			break;
		case 'h':
			printf("usage: " PROG " [-c FILE] %s\n", cmd->usage);
			return 0;
		default:
			return ctl_opt_err(name, c, argv, lo);
		}
	}
	for (; optind < argc; optind++, npos++) {
		if (npos < (int)(sizeof(cl->pos) / sizeof(cl->pos[0])))
			cl->pos[npos] = argv[optind];
	}
	cl->npos = npos < 2 ? npos : 2;

	if (cmd->maxpos == 0 && npos > 0)
		return ctl_usage_err(name, "unexpected argument \"%s\"",
		    cl->pos[0]);
	if (npos == 0 && cmd->need != NULL)
		return ctl_usage_err(name, "missing %s", cmd->need);
	if (npos == 1 && cmd->need2 != NULL)
		return ctl_usage_err(name, "missing %s", cmd->need2);
	if (npos > cmd->maxpos)
		return ctl_usage_err(name, "too many arguments");
	return -1;
}

/* Loads the configuration and opens the ledger. Returns 0, or the exit
 * status to leave with after saying why. */
static int
ctl_open(struct ctl *ctl, int readonly)
{
	const char	*path;
	char		*err = NULL;

	path = config_path(ctl->config_arg);
	if (ctl->config_arg == NULL && strcmp(path, CONFIG_DEFAULT_PATH) == 0 &&
	    access(path, F_OK) == -1 && errno == ENOENT) {
		ctl_err("no configuration file at %s: use -c FILE or set "
		    "RECONCILED_CONFIG", path);
		return EX_CONFIG;
	}
	if (config_load(path, &ctl->cfg, &err) == -1) {
		ctl_err("%s", err);
		free(err);
		return EX_CONFIG;
	}
	if (readonly && ctl->cfg->ledger_url == NULL &&
	    access(ctl->cfg->ledger_path, F_OK) == -1 &&
	    errno == ENOENT) {
		ctl_err("no ledger at %s yet (it is created by the first add, "
		    "import or daemon start)", ctl->cfg->ledger_path);
		return 1;
	}
	ctl->ledger = ledger_open(config_ledger(ctl->cfg), readonly, &err);
	if (ctl->ledger == NULL) {
		ctl_err("%s", err != NULL ? err : "cannot open the ledger");
		free(err);
		return 1;
	}
	return 0;
}

/* The exit status after writing to stdout: 1 if anything was lost. */
static int
ctl_flush(int rv)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		ctl_err("stdout: %s", strerror(errno));
		return 1;
	}
	return rv;
}

static void
ctl_print_json(struct json_object *obj)
{
	char	*s;

	s = json_out_string(obj);
	puts(s);
	free(s);
}

static const char *
ctl_time(int64_t ms, char *buf)
{
	if (ms == 0)
		return "-";
	return util_fmt_time(ms, buf);
}

/* Text from the ledger made safe for a terminal: control characters (an
 * escape sequence in Toss's reason, say) are shown escaped, never sent as
 * they are. Returns one of a few rotating static buffers: a printf may
 * hold CTL_ESC_SLOTS of them at once. */
#define CTL_ESC_SLOTS	8
#define CTL_ESC_MAX	(4 * 1024 + 1)
static const char *
ctl_esc(const char *s)
{
	static char	 buf[CTL_ESC_SLOTS][CTL_ESC_MAX];
	static int	 next;
	char		*b = buf[next];

	next = (next + 1) % CTL_ESC_SLOTS;
	return util_escape_ctl(s, strlen(s), b, CTL_ESC_MAX);
}

/* A ledger text for humans: "-" when empty, else escaped. */
static const char *
ctl_text(const char *s)
{
	return *s == '\0' ? "-" : ctl_esc(s);
}

/* ---- add ---------------------------------------------------------------- */

/* " (known: 44*****04, given: 99*****77)": both userKeys of an intake
 * conflict, masked, so that a squatted orderId shows at once. A static
 * buffer; "" when the known order cannot be read. */
static const char *
ctl_conflict_keys(struct ctl *ctl, const char *order_id, const char *given)
{
	static char	 buf[2 * LOG_USERKEY_MAX + 32];
	struct order	 o;
	char		 a[LOG_USERKEY_MAX], b[LOG_USERKEY_MAX];

	if (ledger_get(ctl->ledger, order_id, &o) != 1)
		return "";
	snprintf(buf, sizeof(buf), " (known: %s, given: %s)",
	    log_userkey(o.user_key, a), log_userkey(given, b));
	return buf;
}

static int
cmd_add(struct ctl *ctl, struct cmdline *cl)
{
	char			 err[INTAKE_ERR_MAX];
	enum ledger_add_result	 res;
	int			 rv;

	if (intake_check(cl->pos[0], cl->pos[1], cl->sku, cl->ref,
	    err) == -1) {
		ctl_err("%s", err);
		return 1;
	}
	if ((rv = ctl_open(ctl, 0)) != 0)
		return rv;
	if (ledger_add(ctl->ledger, cl->pos[0], cl->pos[1], cl->sku, cl->ref,
	    util_now_ms(), &res) == -1) {
		ctl_err("cannot add order %s: database error", cl->pos[0]);
		return 1;
	}
	switch (res) {
	case LEDGER_ADDED:
		printf("added %s\n", cl->pos[0]);
		break;
	case LEDGER_KNOWN:
		printf("known %s\n", cl->pos[0]);
		break;
	case LEDGER_CONFLICT:
		ctl_err("order %s is already known with another userKey%s",
		    cl->pos[0], ctl_conflict_keys(ctl, cl->pos[0], cl->pos[1]));
		return ctl_flush(1);
	}
	return ctl_flush(0);
}

/* ---- import ------------------------------------------------------------- */

/* Reads lines through a fixed buffer: memory stays the same whatever the
 * size of the file or of its lines. */
struct lines {
	FILE	*f;
	char	 buf[IMPORT_CHUNK];
	size_t	 off;
	size_t	 len;
	int	 eof;
	char	 line[INTAKE_LINE_MAX + 1];
	size_t	 linelen;
	int	 toolong;	/* the line was skipped, line[] is empty */
};

/* Reads the next line (without its '\n') into l->line. A line longer than
 * INTAKE_LINE_MAX is read to its end but not kept, and sets l->toolong.
 * Returns 1 for a line, 0 at the end of the input, -1 on a read error. */
static int
lines_next(struct lines *l)
{
	const char	*p, *nl;
	size_t		 n = 0, take;
	int		 any = 0, toolong = 0;

	for (;;) {
		if (l->off == l->len) {
			if (l->eof)
				break;
			l->off = 0;
			l->len = fread(l->buf, 1, sizeof(l->buf), l->f);
			if (l->len == 0) {
				if (ferror(l->f))
					return -1;
				l->eof = 1;
				break;
			}
		}
		any = 1;
		p = l->buf + l->off;
		nl = memchr(p, '\n', l->len - l->off);
		take = nl != NULL ? (size_t)(nl - p) : l->len - l->off;
		if (!toolong) {
			if (take > INTAKE_LINE_MAX - n) {
				toolong = 1;
				n = 0;
			} else {
				memcpy(l->line + n, p, take);
				n += take;
			}
		}
		l->off += take;
		if (nl != NULL) {
			l->off++;
			break;
		}
	}
	if (!any)
		return 0;
	l->line[n] = '\0';
	l->linelen = n;
	l->toolong = toolong;
	return 1;
}

static int
ctl_blank(const char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	}
	return 1;
}

static int
cmd_import(struct ctl *ctl, struct cmdline *cl)
{
	struct lines		*l;
	struct intake_order	 o;
	enum ledger_add_result	 res;
	const char		*path = "-", *name;
	char			 err[INTAKE_ERR_MAX];
	int64_t			 lineno = 0, added = 0, known = 0, rejected = 0;
	int			 r, rv;

	if (cl->npos == 1)
		path = cl->pos[0];

	l = xcalloc(1, sizeof(*l));
	if (strcmp(path, "-") == 0) {
		l->f = stdin;
		name = "stdin";
	} else if ((l->f = fopen(path, "r")) == NULL) {
		ctl_err("%s: %s", path, strerror(errno));
		free(l);
		return 1;
	} else
		name = path;

	if ((rv = ctl_open(ctl, 0)) != 0)
		goto out;
	rv = 1;
	if (ledger_begin(ctl->ledger) == -1) {
		ctl_err("cannot start the import: database error; nothing "
		    "was imported");
		goto out;
	}
	while ((r = lines_next(l)) == 1) {
		lineno++;
		if (l->toolong) {
			fprintf(stderr, "line %" PRId64 ": line is longer than "
			    "%d bytes\n", lineno, INTAKE_LINE_MAX);
			rejected++;
			continue;
		}
		if (ctl_blank(l->line, l->linelen))
			continue;
		if (intake_parse(l->line, l->linelen, &o, err) == -1) {
			fprintf(stderr, "line %" PRId64 ": %s\n", lineno, err);
			rejected++;
			continue;
		}
		if (ledger_add(ctl->ledger, o.order_id, o.user_key,
		    o.has_sku ? o.sku : NULL, o.has_ref ? o.ref : NULL,
		    util_now_ms(), &res) == -1) {
			ctl_err("line %" PRId64 ": database error; nothing was "
			    "imported", lineno);
			ledger_rollback(ctl->ledger);
			goto out;
		}
		switch (res) {
		case LEDGER_ADDED:
			added++;
			break;
		case LEDGER_KNOWN:
			known++;
			break;
		case LEDGER_CONFLICT:
			fprintf(stderr, "line %" PRId64 ": orderId %s is "
			    "already known with another userKey%s\n", lineno,
			    o.order_id, ctl_conflict_keys(ctl, o.order_id,
			    o.user_key));
			rejected++;
			break;
		}
	}
	if (r == -1) {
		ctl_err("%s: %s; nothing was imported", name, strerror(errno));
		ledger_rollback(ctl->ledger);
		goto out;
	}
	if (ledger_commit(ctl->ledger) == -1) {
		ctl_err("cannot commit the import: database error; nothing "
		    "was imported");
		ledger_rollback(ctl->ledger);
		goto out;
	}
	printf("%" PRId64 " added, %" PRId64 " known, %" PRId64 " rejected\n",
	    added, known, rejected);
	rv = ctl_flush(rejected > 0 ? 1 : 0);
out:
	if (l->f != stdin)
		fclose(l->f);
	free(l);
	return rv;
}

/* ---- show, list --------------------------------------------------------- */

static void
ctl_print_order(const struct order *o)
{
	char	 t[UTIL_TIME_MAX];

	printf("orderId:            %s\n", ctl_esc(o->order_id));
	printf("userKey:            %s\n", ctl_esc(o->user_key));
	printf("sku:                %s\n", ctl_text(o->sku));
	if (!o->has_ref)
		printf("ref:                -\n");
	else if (o->ref[0] == '\0')
		printf("ref:                \"\"\n");
	else
		printf("ref:                %s\n", ctl_esc(o->ref));
	printf("state:              %s\n", order_state_name(o->state));
	printf("tossStatus:         %s\n", ctl_text(o->toss_status));
	printf("reason:             %s\n", ctl_text(o->reason));
	printf("statusDeterminedAt: %s\n", ctl_text(o->determined_at));
	printf("polls:              %" PRId64 "\n", o->polls);
	printf("errors:             %" PRId64 "\n", o->errors);
	printf("addedAt:            %s\n", ctl_time(o->added_at, t));
	printf("updatedAt:          %s\n", ctl_time(o->updated_at, t));
	printf("grantedAt:          %s\n", ctl_time(o->granted_at, t));
	printf("nextPollAt:         %s\n", ctl_time(o->next_poll_at, t));
	printf("intakeSku:          %s\n", ctl_text(o->intake_sku));
	printf("skuConfirmed:       %s\n", o->sku_confirmed ? "yes" : "no");
}

static int
cmd_show(struct ctl *ctl, struct cmdline *cl)
{
	struct order		 o;
	struct json_object	*obj;
	int			 rv;

	if ((rv = ctl_open(ctl, 1)) != 0)
		return rv;
	switch (ledger_get(ctl->ledger, cl->pos[0], &o)) {
	case 1:
		break;
	case 0:
		ctl_err("unknown order %s", cl->pos[0]);
		return 1;
	default:
		ctl_err("cannot read order %s: database error", cl->pos[0]);
		return 1;
	}
	if (cl->json) {
		obj = json_out_order(&o);
		ctl_print_json(obj);
		json_object_put(obj);
	} else
		ctl_print_order(&o);
	return ctl_flush(0);
}

static int
ctl_list_json(const struct order *o, void *arg)
{
	struct json_object	*obj;

	obj = json_out_order(o);
	ctl_print_json(obj);
	json_object_put(obj);
	return 0;
}

/* One order per line: ORDER_ID  STATE  TOSS_STATUS  USER_KEY, in columns
 * as wide as a UUID orderId and the longest documented status. */
static int
ctl_list_line(const struct order *o, void *arg)
{
	printf("%-36s  %-9s  %-17s  %s\n", ctl_esc(o->order_id),
	    order_state_name(o->state),
	    ctl_text(o->toss_status), ctl_esc(o->user_key));
	return 0;
}

/* Parses a --state value; EX_USAGE after saying why when it is no state. */
static int
ctl_state_arg(const char *cmd, const char *s, enum order_state *st)
{
	char	 names[128] = "";
	int	 i;

	if (order_state_parse(s, st) == 0)
		return 0;
	for (i = 0; i < ST__COUNT; i++) {
		if (i > 0)
			strncat(names, ", ", sizeof(names) - strlen(names) - 1);
		strncat(names, order_state_name(i),
		    sizeof(names) - strlen(names) - 1);
	}
	return ctl_usage_err(cmd, "unknown state \"%s\" (use one of: %s)", s,
	    names);
}

static int
cmd_list(struct ctl *ctl, struct cmdline *cl)
{
	enum order_state	 st;
	int			 rv;

	if (cl->state != NULL &&
	    (rv = ctl_state_arg("list", cl->state, &st)) != 0)
		return rv;

	if ((rv = ctl_open(ctl, 1)) != 0)
		return rv;
	if (ledger_foreach(ctl->ledger, cl->state != NULL ? (int)st : -1,
	    cl->json ? ctl_list_json : ctl_list_line, NULL) == -1) {
		ctl_err("cannot list orders: database error");
		return ctl_flush(1);
	}
	return ctl_flush(0);
}

/* ---- events ------------------------------------------------------------- */

static int
ctl_event_json(int64_t id, const char *payload, void *arg)
{
	puts(payload);
	return 0;
}

static const char *
ctl_member(struct json_object *obj, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "?";
	return json_object_get_string(v);
}

/* One event per line: ID TYPE ORDER_ID AT. */
static int
ctl_event_line(int64_t id, const char *payload, void *arg)
{
	struct json_object	*obj;

	if ((obj = json_tokener_parse(payload)) == NULL) {
		printf("%" PRId64 " ? ? ?\n", id);
		return 0;
	}
	printf("%" PRId64 " %s %s %s\n", id, ctl_esc(ctl_member(obj, "type")),
	    ctl_esc(ctl_member(obj, "orderId")),
	    ctl_esc(ctl_member(obj, "at")));
	json_object_put(obj);
	return 0;
}

static int
cmd_events(struct ctl *ctl, struct cmdline *cl)
{
	int	 rv;

	if ((rv = ctl_open(ctl, 1)) != 0)
		return rv;
	if (ledger_events(ctl->ledger, cl->after, (int)cl->limit,
	    cl->json ? ctl_event_json : ctl_event_line, NULL) == -1) {
		ctl_err("cannot read events: database error");
		return ctl_flush(1);
	}
	return ctl_flush(0);
}

/* ---- stats -------------------------------------------------------------- */

struct sinks_arg {
	int64_t			 last_event_id;
	struct json_object	*obj;	/* NULL: print lines */
};

static int
ctl_sink(const char *name, int64_t delivered, void *arg)
{
	struct sinks_arg	*sa = arg;
	struct json_object	*s;
	int64_t			 lag;

	lag = sa->last_event_id - delivered;
	if (lag < 0)
		lag = 0;
	if (sa->obj == NULL) {
		printf("sink %-10s delivered %" PRId64 ", lag %" PRId64 "\n",
		    ctl_esc(name), delivered, lag);
		return 0;
	}
	s = json_object_new_object();
	json_object_object_add(s, "deliveredId",
	    json_object_new_int64(delivered));
	json_object_object_add(s, "lag", json_object_new_int64(lag));
	json_object_object_add(sa->obj, name, s);
	return 0;
}

static int
cmd_stats(struct ctl *ctl, struct cmdline *cl)
{
	struct ledger_stats	 st;
	struct sinks_arg	 sa;
	struct json_object	*obj = NULL, *orders;
	int64_t			 now, oldest = -1;
	int			 i, rv;

	if ((rv = ctl_open(ctl, 1)) != 0)
		return rv;
	now = util_now_ms();
	if (ledger_stats(ctl->ledger, now, &st) == -1) {
		ctl_err("cannot read stats: database error");
		return 1;
	}
	if (st.oldest_pending_ms > 0)
		oldest = now > st.oldest_pending_ms ?
		    (now - st.oldest_pending_ms) / 1000 : 0;
	sa.last_event_id = st.last_event_id;
	sa.obj = NULL;

	if (!cl->json) {
		for (i = 0; i < ST__COUNT; i++)
			printf("%-15s%" PRId64 "\n", order_state_name(i),
			    st.orders[i]);
		printf("%-15s%" PRId64 "\n", "events", st.events);
		printf("%-15s%" PRId64 "\n", "last event", st.last_event_id);
		if (oldest >= 0)
			printf("%-15s%" PRId64 "s ago\n", "oldest pending",
			    oldest);
		else
			printf("%-15s-\n", "oldest pending");
		printf("%-15s%" PRId64 "\n", "due now", st.due);
		if (ledger_cursors(ctl->ledger, ctl_sink, &sa) == -1) {
			ctl_err("cannot read sink cursors: database error");
			return ctl_flush(1);
		}
		return ctl_flush(0);
	}

	obj = json_object_new_object();
	orders = json_object_new_object();
	for (i = 0; i < ST__COUNT; i++)
		json_object_object_add(orders, order_state_name(i),
		    json_object_new_int64(st.orders[i]));
	json_object_object_add(obj, "orders", orders);
	json_object_object_add(obj, "events", json_object_new_int64(st.events));
	json_object_object_add(obj, "lastEventId",
	    json_object_new_int64(st.last_event_id));
	json_object_object_add(obj, "oldestPendingSeconds",
	    oldest >= 0 ? json_object_new_int64(oldest) : NULL);
	json_object_object_add(obj, "due", json_object_new_int64(st.due));
	sa.obj = json_object_new_object();
	json_object_object_add(obj, "sinks", sa.obj);
	if (ledger_cursors(ctl->ledger, ctl_sink, &sa) == -1) {
		ctl_err("cannot read sink cursors: database error");
		json_object_put(obj);
		return 1;
	}
	ctl_print_json(obj);
	json_object_put(obj);
	return ctl_flush(0);
}

/* ---- recheck ------------------------------------------------------------ */

static int
cmd_recheck(struct ctl *ctl, struct cmdline *cl)
{
	enum order_state	 st;
	const char		*state = cl->state;
	int			 n, rv;

	if (cl->npos == 1 && state != NULL)
		return ctl_usage_err("recheck", "give ORDER_ID or --state, "
		    "not both");
	if (cl->npos == 0 && state == NULL)
		return ctl_usage_err("recheck", "missing ORDER_ID or --state");
	if (state != NULL && (rv = ctl_state_arg("recheck", state, &st)) != 0)
		return rv;

	if ((rv = ctl_open(ctl, 0)) != 0)
		return rv;
	if (state != NULL)
		n = ledger_recheck_state(ctl->ledger, st, util_now_ms());
	else
		n = ledger_recheck(ctl->ledger, cl->pos[0], util_now_ms());
	if (n == -1) {
		ctl_err("cannot recheck: database error");
		return 1;
	}
	if (n == 0 && state == NULL) {
		ctl_err("unknown order %s", cl->pos[0]);
		return 1;
	}
	printf("%d order(s) due now\n", n);
	return ctl_flush(0);
}

/* ---- sinks, replay ------------------------------------------------------ */

/* The sinks this configuration delivers to, by their cursor names. */
static int
ctl_sink_configured(const struct config *cfg, const char *name)
{
	if (strcmp(name, "jsonl") == 0)
		return cfg->jsonl != NULL;
	if (strcmp(name, "webhook") == 0)
		return cfg->webhook_url != NULL;
	return 0;
}

struct sinks_list {
	struct ledger_sink	 k[8];
	int			 n;
};

static int
ctl_sinks_collect(const struct ledger_sink *k, void *arg)
{
	struct sinks_list	*sl = arg;

	if (sl->n < (int)(sizeof(sl->k) / sizeof(sl->k[0])))
		sl->k[sl->n++] = *k;
	return 0;
}

/* Adds a configured sink that has no row yet (it has delivered nothing). */
static void
ctl_sinks_add_new(struct sinks_list *sl, const struct config *cfg,
    const char *name)
{
	int	 i;

	if (!ctl_sink_configured(cfg, name))
		return;
	for (i = 0; i < sl->n; i++) {
		if (strcmp(sl->k[i].name, name) == 0)
			return;
	}
	if (sl->n == (int)(sizeof(sl->k) / sizeof(sl->k[0])))
		return;
	memset(&sl->k[sl->n], 0, sizeof(sl->k[0]));
	util_strlcpy(sl->k[sl->n].name, name, sizeof(sl->k[0].name));
	util_strlcpy(sl->k[sl->n].state, "ok", sizeof(sl->k[0].state));
	sl->n++;
}

static int
cmd_sinks(struct ctl *ctl, struct cmdline *cl)
{
	struct sinks_list	 sl;
	struct ledger_stats	 st;
	struct json_object	*obj, *s;
	const struct ledger_sink *k;
	char			 tbuf[64];
	int64_t			 lag;
	int			 i, rv;

	if ((rv = ctl_open(ctl, 1)) != 0)
		return rv;
	memset(&sl, 0, sizeof(sl));
	if (ledger_stats(ctl->ledger, util_now_ms(), &st) == -1 ||
	    ledger_sinks(ctl->ledger, ctl_sinks_collect, &sl) == -1) {
		ctl_err("cannot read the sinks: database error");
		return 1;
	}
	ctl_sinks_add_new(&sl, ctl->cfg, "jsonl");
	ctl_sinks_add_new(&sl, ctl->cfg, "webhook");

	obj = cl->json ? json_object_new_object() : NULL;
	if (!cl->json)
		printf("%-10s %-9s %10s %8s  %s\n", "SINK", "STATE", "CURSOR",
		    "LAG", "LAST ERROR");
	for (i = 0; i < sl.n; i++) {
		k = &sl.k[i];
		lag = st.last_event_id > k->delivered_id ?
		    st.last_event_id - k->delivered_id : 0;
		if (!cl->json) {
			printf("%-10s %-9s %10" PRId64 " %8" PRId64 "  ",
			    k->name, k->state, k->delivered_id, lag);
			if (k->last_error[0] == '\0')
				printf("-");
			else
				printf("%s %s", ctl_time(k->error_at, tbuf),
				    k->last_error);
			printf("%s\n", ctl_sink_configured(ctl->cfg, k->name) ?
			    "" : " (not configured)");
			continue;
		}
		s = json_object_new_object();
		json_object_object_add(s, "configured", json_object_new_boolean(
		    ctl_sink_configured(ctl->cfg, k->name)));
		json_object_object_add(s, "state",
		    json_object_new_string(k->state));
		json_object_object_add(s, "deliveredId",
		    json_object_new_int64(k->delivered_id));
		json_object_object_add(s, "lag", json_object_new_int64(lag));
		json_object_object_add(s, "replays",
		    json_object_new_int64(k->replays));
		json_object_object_add(s, "lastError", k->last_error[0] != '\0' ?
		    json_object_new_string(k->last_error) : NULL);
		json_object_object_add(s, "lastErrorAt", k->error_at > 0 ?
		    json_object_new_string(util_fmt_time(k->error_at, tbuf)) :
		    NULL);
		json_object_object_add(obj, k->name, s);
	}
	if (cl->json) {
		ctl_print_json(obj);
		json_object_put(obj);
	}
	return ctl_flush(0);
}

/* Parses an RFC 3339 time ("2026-12-04T17:25:00Z", "...+09:00", seconds
 * fraction ignored) into unix ms. Returns 0 or -1. */
static int
ctl_parse_time(const char *s, int64_t *ms)
{
	struct tm	 tm;
	const char	*p;
	int		 sign, hh, mm, n = 0;
	time_t		 t;

	memset(&tm, 0, sizeof(tm));
	if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	}
	if (*p == 'Z' || *p == 'z') {
		if (p[1] != '\0')
			return -1;
		sign = 0;
		hh = mm = 0;
	} else if (*p == '+' || *p == '-') {
		/* Exactly "+HH:MM" or "-HH:MM". */
		sign = *p == '+' ? 1 : -1;
		for (n = 1; n <= 5; n++) {
			if (n == 3 ? p[n] != ':' : (p[n] < '0' || p[n] > '9'))
				return -1;
		}
		if (p[6] != '\0')
			return -1;
		hh = (p[1] - '0') * 10 + (p[2] - '0');
		mm = (p[4] - '0') * 10 + (p[5] - '0');
		if (hh > 23 || mm > 59)
			return -1;
	} else
		return -1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*ms = ((int64_t)t - (int64_t)sign * (hh * 3600 + mm * 60)) * 1000;
	return 0;
}

/* Who runs this, for the replay's log: the user's name, and the name the
 * terminal was logged in with when it differs (an operator who ran us as
 * the service user with runuser or sudo). */
static void
ctl_user(char *buf, size_t size)
{
	struct passwd	*pw;
	const char	*login;
	char		 name[64];

	if ((pw = getpwuid(getuid())) != NULL && pw->pw_name != NULL)
		util_strlcpy(name, pw->pw_name, sizeof(name));
	else
		(void)snprintf(name, sizeof(name), "uid %lu",
		    (unsigned long)getuid());
	if ((login = getlogin()) != NULL && *login != '\0' &&
	    strcmp(login, name) != 0)
		(void)snprintf(buf, size, "%s (login %s)", name, login);
	else
		util_strlcpy(buf, name, size);
}

static int
cmd_replay(struct ctl *ctl, struct cmdline *cl)
{
	enum ledger_replay_result res;
	struct ledger_stats	 st;
	const char		*sink = cl->pos[0];
	char			 user[160];
	int64_t			 from = cl->from, since_ms = 0, was, last = 0;
	int			 rv, r;

	if ((from == 0) == (cl->since == NULL))
		return ctl_usage_err("replay", "give --from ID or --since "
		    "TIME (one of them)");
	if (cl->since != NULL && ctl_parse_time(cl->since, &since_ms) == -1)
		return ctl_usage_err("replay", "--since must be an RFC 3339 "
		    "time such as 2026-12-04T09:00:00Z, not \"%s\"", cl->since);
	if ((rv = ctl_open(ctl, 0)) != 0)
		return rv;
	if (!ctl_sink_configured(ctl->cfg, sink)) {
		ctl_err("replay: \"%s\" is not a sink of this configuration "
		    "(jsonl and webhook are, when set)", sink);
		return 1;
	}
	if (cl->since != NULL) {
		if ((r = ledger_event_since(ctl->ledger, since_ms,
		    &from)) == -1) {
			ctl_err("replay: cannot read the events: database "
			    "error");
			return 1;
		}
		if (r == 0) {
			ctl_err("replay: no event was written at or after %s; "
			    "nothing to deliver again", cl->since);
			return 1;
		}
	}
	ctl_user(user, sizeof(user));
	res = ledger_replay(ctl->ledger, sink, from - 1, user, util_now_ms(),
	    &was);
	switch (res) {
	case LEDGER_REPLAY_MOVED:
		break;
	case LEDGER_REPLAY_PAST_END:
		if (ledger_stats(ctl->ledger, util_now_ms(), &st) == 0)
			last = st.last_event_id;
		ctl_err("replay: event %" PRId64 " is past the last event "
		    "(%" PRId64 "); the cursor of %s stays at %" PRId64, from,
		    last, sink, was);
		return 1;
	case LEDGER_REPLAY_AHEAD:
		ctl_err("replay: %s has not delivered event %" PRId64 " yet "
		    "(its cursor is %" PRId64 "); moving it forward would "
		    "skip events, so it stays", sink, from, was);
		return 1;
	default:
		ctl_err("replay: cannot move the cursor of %s: database error",
		    sink);
		return 1;
	}
	printf("%s: cursor moved from %" PRId64 " to %" PRId64 " by %s; "
	    "events from %" PRId64 " on are delivered again\n", sink, was,
	    from - 1, user, from);
	return ctl_flush(0);
}

/* ---- migrate ------------------------------------------------------------ */

/* One table's copy: the target and how many rows went in. */
struct copy {
	struct ledger	*to;
	enum ledger_table t;
	int64_t		 n;
};

static int
ctl_copy_row(const struct ledger_row *row, void *arg)
{
	struct copy	*c = arg;

	if (ledger_load(c->to, c->t, row) == -1)
		return -1;
	c->n++;
	return 0;
}

/* The rows of every table and the stats of a ledger, to compare. */
struct ledger_tally {
	int64_t		 rows[LT__COUNT];
	struct ledger_stats st;
};

static int
ctl_tally(struct ledger *l, int64_t now, struct ledger_tally *ta)
{
	int	 t;

	memset(ta, 0, sizeof(*ta));
	for (t = 0; t < LT__COUNT; t++) {
		if (ledger_count(l, (enum ledger_table)t, &ta->rows[t]) == -1)
			return -1;
	}
	return ledger_stats(l, now, &ta->st);
}

/* Names the first difference between the source's tally and the
 * target's into buf; 0 when they agree. */
static int
ctl_tally_diff(const struct ledger_tally *a, const struct ledger_tally *b,
    char *buf, size_t size)
{
	int	 i;

	for (i = 0; i < LT__COUNT; i++) {
		if (a->rows[i] != b->rows[i]) {
			snprintf(buf, size, "%s: %" PRId64 " rows in the"
			    " source, %" PRId64 " in the target",
			    ledger_table_name((enum ledger_table)i),
			    a->rows[i], b->rows[i]);
			return 1;
		}
	}
	if (a->st.last_event_id != b->st.last_event_id) {
		snprintf(buf, size, "last event id %" PRId64 " in the source,"
		    " %" PRId64 " in the target", a->st.last_event_id,
		    b->st.last_event_id);
		return 1;
	}
	for (i = 0; i < ST__COUNT; i++) {
		if (a->st.orders[i] != b->st.orders[i]) {
			snprintf(buf, size, "%s orders: %" PRId64 " in the"
			    " source, %" PRId64 " in the target",
			    order_state_name((enum order_state)i),
			    a->st.orders[i], b->st.orders[i]);
			return 1;
		}
	}
	for (i = 1; i < EV__COUNT; i++) {
		if (a->st.events_by_type[i] != b->st.events_by_type[i]) {
			snprintf(buf, size, "%s events: %" PRId64 " in the"
			    " source, %" PRId64 " in the target",
			    order_event_name((enum event_type)i),
			    a->st.events_by_type[i], b->st.events_by_type[i]);
			return 1;
		}
	}
	if (a->st.sku_mismatches != b->st.sku_mismatches) {
		snprintf(buf, size, "sku mismatches: %" PRId64 " in the source,"
		    " %" PRId64 " in the target", a->st.sku_mismatches,
		    b->st.sku_mismatches);
		return 1;
	}
	return 0;
}

/*
 * Copies the ledger SOURCE, opened read-only, into the configured ledger
 * (the upgrade from one host's SQLite file to PostgreSQL): every table in
 * one transaction on the target, which must hold no order and no event.
 * The copy is compared with the source (rows per table, counts per state
 * and type, the last event id) before it commits, and once more after.
 */
static int
cmd_migrate(struct ctl *ctl, struct cmdline *cl)
{
	struct ledger_tally	 src, dst;
	struct ledger_stats	 st;
	struct ledger		*from;
	struct copy		 c;
	const char		*source = cl->pos[0];
	char			*err = NULL, *name, diff[256];
	int64_t			 now = util_now_ms();
	int			 rv, t, i, r;

	if (strstr(source, "://") == NULL && access(source, F_OK) == -1) {
		ctl_err("migrate: %s: %s", source, strerror(errno));
		return 1;
	}
	if ((rv = ctl_open(ctl, 0)) != 0)
		return rv;
	if (ctl->cfg->ledger_url == NULL &&
	    strcmp(ctl->cfg->ledger_path, source) == 0) {
		ctl_err("migrate: %s is the configured ledger itself; set"
		    " [ledger] url to the target", source);
		return 1;
	}
	if ((from = ledger_open(source, 1, &err)) == NULL) {
		ctl_err("migrate: %s", err != NULL ? err :
		    "cannot open the source ledger");
		free(err);
		return 1;
	}
	name = ledger_name(source);
	rv = 1;
	if (ledger_begin(ctl->ledger) == -1) {
		ctl_err("migrate: cannot begin a transaction on %s",
		    ledger_path(ctl->ledger));
		goto out;
	}
	if (ledger_stats(ctl->ledger, now, &st) == -1) {
		ctl_err("migrate: cannot read %s", ledger_path(ctl->ledger));
		goto fail;
	}
	for (i = 0, r = 0; i < ST__COUNT; i++)
		r += st.orders[i] != 0;
	if (r != 0 || st.events != 0 || st.last_event_id != 0) {
		ctl_err("migrate: %s is not empty (it has orders or events);"
		    " refusing to copy into it, nothing was changed",
		    ledger_path(ctl->ledger));
		goto fail;
	}
	for (t = 0; t < LT__COUNT; t++) {
		c.to = ctl->ledger;
		c.t = (enum ledger_table)t;
		c.n = 0;
		if (ledger_dump(from, c.t, ctl_copy_row, &c) != 0) {
			ctl_err("migrate: cannot copy %s after %" PRId64
			    " rows: database error; nothing was copied",
			    ledger_table_name(c.t), c.n);
			goto fail;
		}
	}
	if (ctl_tally(from, now, &src) == -1 ||
	    ctl_tally(ctl->ledger, now, &dst) == -1) {
		ctl_err("migrate: cannot count the rows to compare them:"
		    " database error; nothing was copied");
		goto fail;
	}
	if (ctl_tally_diff(&src, &dst, diff, sizeof(diff))) {
		ctl_err("migrate: the copy differs from the source (%s);"
		    " nothing was copied", diff);
		goto fail;
	}
	if (ledger_commit(ctl->ledger) == -1) {
		ctl_err("migrate: cannot commit the copy: database error;"
		    " nothing was copied");
		goto fail;
	}
	/* What a new reader of the target sees now. */
	if (ctl_tally(ctl->ledger, now, &dst) == -1) {
		ctl_err("migrate: copied, but cannot read %s back to verify"
		    " it", ledger_path(ctl->ledger));
		goto out;
	}
	if (ctl_tally_diff(&src, &dst, diff, sizeof(diff))) {
		ctl_err("migrate: copied, but %s now differs from the source"
		    " (%s): was something else writing to it?",
		    ledger_path(ctl->ledger), diff);
		goto out;
	}
	printf("migrated %s into %s\n", name, ledger_path(ctl->ledger));
	for (t = 0; t < LT__COUNT; t++)
		printf("%s%s %" PRId64, t > 0 ? ", " : "",
		    ledger_table_name((enum ledger_table)t), dst.rows[t]);
	printf("\nlast event id %" PRId64 "; verified: rows per table, orders"
	    " per state, events per type and the last event id agree\n",
	    dst.st.last_event_id);
	rv = ctl_flush(0);
	goto out;
fail:
	ledger_rollback(ctl->ledger);
out:
	free(name);
	ledger_close(from);
	return rv;
}

/* ---- main --------------------------------------------------------------- */

int
main(int argc, char *argv[])
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const struct command	*cmd;
	struct ctl		 ctl;
	struct cmdline		 cl;
	char			 ledgers[256];
	int			 c, rv;

	memset(&ctl, 0, sizeof(ctl));
	log_init(PROG, -1);	/* info lines are the daemon's; the CLI says only what went wrong */
	opterr = 0;
	/* '+': stop at the command; its options are its own. */
	while ((c = getopt_long(argc, argv, "+:c:hV", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			ctl.config_arg = optarg;
			break;
		case 'h':
			ctl_help(stdout);
			return ctl_flush(0);
		case 'V':
			ledger_versions(ledgers, sizeof(ledgers), ", ");
			printf(PROG " %s (json-c %s, %s)\n",
			    PACKAGE_VERSION, json_c_version(), ledgers);
			return ctl_flush(0);
		default:
			return ctl_opt_err(NULL, c, argv, lo);
		}
	}
	if (optind >= argc)
		return ctl_usage_err(NULL, "missing COMMAND");
	if ((cmd = ctl_command(argv[optind])) == NULL)
		return ctl_usage_err(NULL, "unknown command \"%s\"",
		    argv[optind]);

	argc -= optind;
	argv += optind;
	optind = 0;	/* rescan from argv[1]: glibc and musl reinitialise */
	if ((rv = ctl_parse(cmd, argc, argv, &cl)) == -1)
		rv = cmd->run(&ctl, &cl);

	if (ctl.ledger != NULL)
		ledger_close(ctl.ledger);
	config_free(ctl.cfg);
	return rv;
}
