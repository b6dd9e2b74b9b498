/* Unit tests for config.c: every default, the value parsers (durations,
 * rates, actions), the [status] map, $CREDENTIALS_DIRECTORY, config_path,
 * and each error a config file can produce, asserted to the byte. */
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "util.h"

#define DURATION_HINT	"(use e.g. 250ms, 2s, 5m, 1h, 90d)"
#define RATE_HINT	"(use e.g. 3000/min, 50/s, or 0 for none)"
#define ACTION_HINT \
	"(use grant, wait, retry, fail, refund, not_found, mismatch, hold)"
#define LISTEN_HINT	"(use HOST:PORT, [IPV6]:PORT or unix:/ABSOLUTE/PATH)"
#define SYNTAX		"syntax error (expected [section] or key = value)"

/* Every key of reconciled.conf(5) at its default, with trailing comments. */
static const char design_example[] =
"[api]\n"
"base_url = https://apps-in-toss-api.toss.im\n"
"cert = /etc/reconciled/client.crt   ; relative paths resolve in $CREDENTIALS_DIRECTORY when set\n"
"key = /etc/reconciled/client.key\n"
"ca =                                ; extra CA bundle (tests, proxies); system store otherwise\n"
"timeout = 10s\n"
"connect_timeout = 3s\n"
"max_inflight = 64\n"
"rate_limit = 3000/min               ; also N/s; 0 = none\n"
"[ledger]\n"
"path = /var/lib/reconciled/ledger.db\n"
"[poll]\n"
"backoff_min = 2s\n"
"backoff_max = 5m\n"
"give_up_after = 24h\n"
"not_found_grace = 10m\n"
"refund_watch = 90d\n"
"refund_check_min = 1h\n"
"refund_check_max = 7d\n"
"[events]\n"
"jsonl =                             ; path; empty = off\n"
"webhook_url =                       ; empty = off\n"
"webhook_secret =                    ; whsec_<base64>\n"
"webhook_timeout = 15s\n"
"[control]\n"
"listen =                            ; unix:/PATH, or HOST:PORT with a token; empty = off\n"
"token =                             ; Authorization: Bearer <token>; needed on TCP\n"
"allowed_hosts =                     ; Host names besides the listen host and localhost\n"
"allowed_origins =                   ; browser Origins allowed; empty = none\n"
"max_connections = 64\n"
"[status]\n"
"PURCHASED = grant\n"
"PAYMENT_COMPLETED = grant\n"
"* = hold\n";

/* base64 of 24 bytes (no padding) and of exactly 16 bytes. */
#define SECRET24	"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET16	"whsec_AAAAAAAAAAAAAAAAAAAAAA=="

static const char *
tmpdir(void)
{
	const char	*t = getenv("TMPDIR");

	return t != NULL && *t != '\0' ? t : "/tmp";
}

/* Writes len bytes of text to a new temp file; returns its path. */
static char *
write_file(const char *text, size_t len)
{
	char	*path;
	int	 fd;

	path = xasprintf("%s/test_config.XXXXXX", tmpdir());
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

static struct config *
load_ok(const char *text)
{
	struct config	*cfg = NULL;
	char		*path, *err = NULL;
	int		 rc;

	path = write_file(text, strlen(text));
	rc = config_load(path, &cfg, &err);
	if (rc != 0)
		fail_msg("unexpected error: %s", err);
	assert_null(err);
	assert_non_null(cfg);
	assert_string_equal(cfg->path, path);
	unlink(path);
	free(path);
	return cfg;
}

/* Loads len bytes of text and asserts the error is "<path><suffix>". */
static void
expect_err_len(const char *text, size_t len, const char *suffix)
{
	struct config	*cfg = NULL;
	char		*path, *err = NULL, *want;

	path = write_file(text, len);
	assert_int_equal(config_load(path, &cfg, &err), -1);
	assert_null(cfg);
	assert_non_null(err);
	want = xasprintf("%s%s", path, suffix);
	assert_string_equal(err, want);
	free(want);
	free(err);
	unlink(path);
	free(path);
}

static void
expect_err(const char *text, const char *suffix)
{
	expect_err_len(text, strlen(text), suffix);
}

static void
assert_str_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

/* Every field except path is equal. */
static void
assert_config_equal(const struct config *a, const struct config *b)
{
	size_t	 i;

	assert_str_or_null(a->base_url, b->base_url);
	assert_str_or_null(a->cert, b->cert);
	assert_str_or_null(a->key, b->key);
	assert_str_or_null(a->ca, b->ca);
	assert_int_equal(a->timeout_ms, b->timeout_ms);
	assert_int_equal(a->connect_timeout_ms, b->connect_timeout_ms);
	assert_int_equal(a->max_inflight, b->max_inflight);
	assert_true(a->rate_per_sec == b->rate_per_sec);
	assert_str_or_null(a->rate_limit, b->rate_limit);
	assert_str_or_null(a->ledger_path, b->ledger_path);
	assert_int_equal(a->backoff_min_ms, b->backoff_min_ms);
	assert_int_equal(a->backoff_max_ms, b->backoff_max_ms);
	assert_int_equal(a->give_up_after_ms, b->give_up_after_ms);
	assert_int_equal(a->not_found_grace_ms, b->not_found_grace_ms);
	assert_int_equal(a->refund_watch_ms, b->refund_watch_ms);
	assert_int_equal(a->refund_check_min_ms, b->refund_check_min_ms);
	assert_int_equal(a->refund_check_max_ms, b->refund_check_max_ms);
	assert_str_or_null(a->jsonl, b->jsonl);
	assert_str_or_null(a->webhook_url, b->webhook_url);
	assert_str_or_null(a->webhook_secret, b->webhook_secret);
	assert_int_equal(a->webhook_timeout_ms, b->webhook_timeout_ms);
	assert_str_or_null(a->listen, b->listen);
	assert_str_or_null(a->token, b->token);
	assert_str_or_null(a->allowed_hosts, b->allowed_hosts);
	assert_str_or_null(a->allowed_origins, b->allowed_origins);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->nrules, b->nrules);
	for (i = 0; i < a->nrules; i++) {
		assert_string_equal(a->rules[i].status, b->rules[i].status);
		assert_int_equal(a->rules[i].action, b->rules[i].action);
	}
	assert_int_equal(a->other_action, b->other_action);
}

static int
setup(void **state)
{
	unsetenv("CREDENTIALS_DIRECTORY");
	unsetenv("RECONCILED_CONFIG");
	unsetenv("RUNTIME_DIRECTORY");
	return 0;
}

/* ---- defaults ---- */

static void
test_defaults(void **state)
{
	struct config	*cfg = config_default();

	assert_null(cfg->path);
	assert_string_equal(cfg->base_url, "https://apps-in-toss-api.toss.im");
	assert_string_equal(cfg->cert, CONFIG_DEFAULT_CERT);
	assert_string_equal(cfg->key, CONFIG_DEFAULT_KEY);
	assert_null(cfg->ca);
	assert_int_equal(cfg->timeout_ms, 10000);
	assert_int_equal(cfg->connect_timeout_ms, 3000);
	assert_int_equal(cfg->max_inflight, 64);
	assert_true(cfg->rate_per_sec == 50.0);
	assert_string_equal(cfg->rate_limit, "3000/min");
	assert_string_equal(cfg->ledger_path, CONFIG_DEFAULT_LEDGER);
	assert_int_equal(cfg->backoff_min_ms, 2000);
	assert_int_equal(cfg->backoff_max_ms, 5 * 60000);
	assert_int_equal(cfg->give_up_after_ms, 24 * 3600000LL);
	assert_int_equal(cfg->not_found_grace_ms, 10 * 60000);
	assert_int_equal(cfg->refund_watch_ms, 90 * 86400000LL);
	assert_int_equal(cfg->refund_check_min_ms, 3600000);
	assert_int_equal(cfg->refund_check_max_ms, 7 * 86400000LL);
	assert_null(cfg->jsonl);
	assert_null(cfg->webhook_url);
	assert_null(cfg->webhook_secret);
	assert_int_equal(cfg->webhook_timeout_ms, 15000);
	assert_null(cfg->listen);	/* no $RUNTIME_DIRECTORY here */
	assert_null(cfg->token);
	assert_null(cfg->allowed_hosts);
	assert_null(cfg->allowed_origins);
	assert_int_equal(cfg->max_connections, 64);

	assert_int_equal(cfg->nrules, 8);
	assert_int_equal(config_action(cfg, "PURCHASED"), ACT_GRANT);
	assert_int_equal(config_action(cfg, "PAYMENT_COMPLETED"), ACT_GRANT);
	assert_int_equal(config_action(cfg, "ORDER_IN_PROGRESS"), ACT_WAIT);
	assert_int_equal(config_action(cfg, "ERROR"), ACT_RETRY);
	assert_int_equal(config_action(cfg, "FAILED"), ACT_FAIL);
	assert_int_equal(config_action(cfg, "REFUNDED"), ACT_REFUND);
	assert_int_equal(config_action(cfg, "NOT_FOUND"), ACT_NOT_FOUND);
	assert_int_equal(config_action(cfg, "MINIAPP_MISMATCH"), ACT_MISMATCH);
	assert_int_equal(cfg->other_action, ACT_HOLD);
	assert_int_equal(config_action(cfg, "SOMETHING_NEW"), ACT_HOLD);
	assert_int_equal(config_action(cfg, "purchased"), ACT_HOLD);
	assert_int_equal(config_action(cfg, ""), ACT_HOLD);
	assert_int_equal(config_action(cfg, NULL), ACT_HOLD);
	config_free(cfg);
	config_free(NULL);
}

static void
test_empty_file_is_defaults(void **state)
{
	struct config	*cfg = load_ok(""), *def = config_default();

	assert_config_equal(cfg, def);
	config_free(cfg);
	cfg = load_ok("; only a comment\n# another\n\n   \n[api]\n[status]\n");
	assert_config_equal(cfg, def);
	config_free(cfg);
	config_free(def);
}

static void
test_design_example(void **state)
{
	struct config	*cfg = load_ok(design_example), *def = config_default();

	/* The example spells out Debian's paths; the built-in defaults follow
	 * ./configure's sysconfdir and localstatedir. */
	assert_string_equal(cfg->cert, "/etc/reconciled/client.crt");
	assert_string_equal(cfg->key, "/etc/reconciled/client.key");
	assert_string_equal(cfg->ledger_path, "/var/lib/reconciled/ledger.db");
	free(def->cert);
	free(def->key);
	free(def->ledger_path);
	def->cert = xstrdup(cfg->cert);
	def->key = xstrdup(cfg->key);
	def->ledger_path = xstrdup(cfg->ledger_path);
	assert_config_equal(cfg, def);
	config_free(cfg);
	config_free(def);
}

/* ---- every key set ---- */

static void
test_all_keys(void **state)
{
	struct config	*cfg;

	cfg = load_ok(
	    "\xef\xbb\xbf; with a UTF-8 BOM and CRLF line ends\r\n"
	    "[api]\r\n"
	    "base_url = https://127.0.0.1:8443/\r\n"
	    "cert = /tmp/c.crt\r\n"
	    "key = /tmp/c.key\r\n"
	    "ca = /tmp/ca.pem\r\n"
	    "timeout = 10m\r\n"
	    "connect_timeout = 1ms\r\n"
	    "max_inflight = 4096\r\n"
	    "rate_limit = 50/s\r\n"
	    "[ledger]\r\n"
	    "path = ledger.db\r\n"
	    "[poll]\n"
	    "backoff_min = 250ms\n"
	    "backoff_max = 250ms\n"
	    "give_up_after = 3650d\n"
	    "not_found_grace = 1s\n"
	    "refund_watch = 30d\n"
	    "refund_check_min = 2h\n"
	    "refund_check_max = 2h\n"
	    "[events]\n"
	    "jsonl = /var/lib/reconciled/events.jsonl\n"
	    "webhook_url = http://127.0.0.1:9000/hook\n"
	    "webhook_secret = " SECRET24 "\n"
	    "webhook_timeout = 1s\n"
	    "[control]\n"
	    "listen = [::1]:8790\n"
	    "token = s3cr3t;x\n");
	assert_string_equal(cfg->base_url, "https://127.0.0.1:8443");
	assert_string_equal(cfg->cert, "/tmp/c.crt");
	assert_string_equal(cfg->key, "/tmp/c.key");
	assert_string_equal(cfg->ca, "/tmp/ca.pem");
	assert_int_equal(cfg->timeout_ms, 600000);
	assert_int_equal(cfg->connect_timeout_ms, 1);
	assert_int_equal(cfg->max_inflight, 4096);
	assert_true(cfg->rate_per_sec == 50.0);
	assert_string_equal(cfg->rate_limit, "50/s");
	assert_string_equal(cfg->ledger_path, "ledger.db");
	assert_int_equal(cfg->backoff_min_ms, 250);
	assert_int_equal(cfg->backoff_max_ms, 250);
	assert_int_equal(cfg->give_up_after_ms, 3650 * 86400000LL);
	assert_int_equal(cfg->not_found_grace_ms, 1000);
	assert_int_equal(cfg->refund_watch_ms, 30 * 86400000LL);
	assert_int_equal(cfg->refund_check_min_ms, 7200000);
	assert_int_equal(cfg->refund_check_max_ms, 7200000);
	assert_string_equal(cfg->jsonl, "/var/lib/reconciled/events.jsonl");
	assert_string_equal(cfg->webhook_url, "http://127.0.0.1:9000/hook");
	assert_string_equal(cfg->webhook_secret, SECRET24);
	assert_int_equal(cfg->webhook_timeout_ms, 1000);
	assert_string_equal(cfg->listen, "[::1]:8790");
	/* ';' starts a comment only after a blank. */
	assert_string_equal(cfg->token, "s3cr3t;x");
	config_free(cfg);
}

static void
test_empty_means_unset(void **state)
{
	struct config	*cfg;

	cfg = load_ok("[api]\ncert =\nkey =\nca =\n"
	    "[events]\njsonl =\nwebhook_url =\nwebhook_secret =\n"
	    "[control]\nlisten =\ntoken =\n");
	assert_null(cfg->cert);
	assert_null(cfg->key);
	assert_null(cfg->ca);
	assert_null(cfg->jsonl);
	assert_null(cfg->webhook_url);
	assert_null(cfg->webhook_secret);
	assert_null(cfg->listen);
	assert_null(cfg->token);
	config_free(cfg);
}

static void
test_listen_forms(void **state)
{
	static const char *ok[] = {
		"127.0.0.1:8790", "0.0.0.0:1", "localhost:65535", "[::1]:8790",
		"[::]:80", "[fe80::1]:443", "unix:/run/reconciled/control.sock",
	};
	struct config	*cfg;
	char		*text;
	size_t		 i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		text = xasprintf("[control]\nlisten = %s\ntoken = t0k\n", ok[i]);
		cfg = load_ok(text);
		assert_string_equal(cfg->listen, ok[i]);
		config_free(cfg);
		free(text);
	}
}

static void
test_secret_forms(void **state)
{
	struct config	*cfg;

	cfg = load_ok("[events]\nwebhook_url = https://x.example/h\n"
	    "webhook_secret = " SECRET16 "\n");
	assert_string_equal(cfg->webhook_secret, SECRET16);
	config_free(cfg);
}

/* An indented line is a key of its own, never a continued value. */
static void
test_indented_line(void **state)
{
	struct config	*cfg;

	cfg = load_ok("[api]\ntimeout = 5s\n    connect_timeout = 1s\n"
	    "\tmax_inflight = 3\n");
	assert_int_equal(cfg->timeout_ms, 5000);
	assert_int_equal(cfg->connect_timeout_ms, 1000);
	assert_int_equal(cfg->max_inflight, 3);
	config_free(cfg);
}

/* ---- durations ---- */

static void
test_duration_units(void **state)
{
	int64_t	 ms;

	assert_int_equal(config_parse_duration("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(config_parse_duration("1ms", &ms), 0);
	assert_int_equal(ms, 1);
	assert_int_equal(config_parse_duration("2s", &ms), 0);
	assert_int_equal(ms, 2000);
	assert_int_equal(config_parse_duration("5m", &ms), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(config_parse_duration("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(config_parse_duration("90d", &ms), 0);
	assert_int_equal(ms, 90 * 86400000LL);
	assert_int_equal(config_parse_duration("0010s", &ms), 0);
	assert_int_equal(ms, 10000);
	/* The largest values that fit. */
	assert_int_equal(config_parse_duration("9223372036854775807ms", &ms),
	    0);
	assert_true(ms == INT64_MAX);
	assert_int_equal(config_parse_duration("106751991167d", &ms), 0);
	assert_int_equal(ms, 106751991167LL * 86400000LL);
}

static void
test_duration_invalid(void **state)
{
	static const char *bad[] = {
		"", "5", "5x", "-1s", "1.5s", "+1s", " 1s", "1s ", "1 s", "1S",
		"1Ms", "s", "ms", "1sec", "1min", "1ms5", "1d1h", "0x10s", "0s",
		"0ms", "0d",
		/* overflow */
		"9223372036854775808ms", "106751991168d",
		"99999999999999999999999999d", "9223372036854775807s",
	};
	int64_t	 ms = 42;
	size_t	 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (config_parse_duration(bad[i], &ms) != -1)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_int_equal(ms, 42);
	}
	assert_int_equal(config_parse_duration(NULL, &ms), -1);
}

/* ---- rates ---- */

static void
test_rates(void **state)
{
	double	 r;

	assert_int_equal(config_parse_rate("3000/min", &r), 0);
	assert_true(r == 50.0);
	assert_int_equal(config_parse_rate("50/s", &r), 0);
	assert_true(r == 50.0);
	assert_int_equal(config_parse_rate("0", &r), 0);
	assert_true(r == 0.0);
	assert_int_equal(config_parse_rate("1/min", &r), 0);
	assert_true(r == 1.0 / 60.0);
	assert_int_equal(config_parse_rate("1/s", &r), 0);
	assert_true(r == 1.0);
	assert_int_equal(config_parse_rate("1000000000/s", &r), 0);
	assert_true(r == 1e9);
}

static void
test_rates_invalid(void **state)
{
	static const char *bad[] = {
		"", "00", "-0", "0/s", "0/min", "-5/s", "+5/s", "5", "5/", "/s",
		"5/sec", "5/m", "5/h", "5/min/s", "1.5/s", " 5/s", "5/s ",
		"5 /s", "5/ s", "5/S", "1000000001/s",
		"99999999999999999999999999999999/s",
	};
	double	 r = 42;
	size_t	 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (config_parse_rate(bad[i], &r) != -1)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_true(r == 42);
	}
	assert_int_equal(config_parse_rate(NULL, &r), -1);
}

static void
test_rate_in_file(void **state)
{
	struct config	*cfg;

	cfg = load_ok("[api]\nrate_limit = 0\n");
	assert_true(cfg->rate_per_sec == 0.0);
	assert_string_equal(cfg->rate_limit, "0");
	config_free(cfg);
	cfg = load_ok("[api]\nrate_limit = 120/min\n");
	assert_true(cfg->rate_per_sec == 2.0);
	assert_string_equal(cfg->rate_limit, "120/min");
	config_free(cfg);
}

/* ---- actions and the status map ---- */

static void
test_action_names(void **state)
{
	static const char *names[ACT__COUNT] = {
		"grant", "wait", "retry", "fail", "refund", "not_found",
		"mismatch", "hold",
	};
	enum action	 a;
	int		 i;

	for (i = 0; i < ACT__COUNT; i++) {
		assert_string_equal(config_action_name((enum action)i),
		    names[i]);
		assert_int_equal(config_action_parse(names[i], &a), 0);
		assert_int_equal(a, i);
	}
	assert_string_equal(config_action_name(ACT__COUNT), "invalid");
	a = ACT_WAIT;
	assert_int_equal(config_action_parse("Grant", &a), -1);
	assert_int_equal(config_action_parse("", &a), -1);
	assert_int_equal(config_action_parse("grant ", &a), -1);
	assert_int_equal(config_action_parse(NULL, &a), -1);
	assert_int_equal(a, ACT_WAIT);
}

static void
test_status_override(void **state)
{
	struct config	*cfg;

	cfg = load_ok("[status]\nPURCHASED = hold\nNEW_STATUS = grant\n"
	    "ORDER_IN_PROGRESS = retry\n");
	/* Overridden. */
	assert_int_equal(config_action(cfg, "PURCHASED"), ACT_HOLD);
	assert_int_equal(config_action(cfg, "ORDER_IN_PROGRESS"), ACT_RETRY);
	/* Added. */
	assert_int_equal(config_action(cfg, "NEW_STATUS"), ACT_GRANT);
	/* Other defaults kept. */
	assert_int_equal(config_action(cfg, "PAYMENT_COMPLETED"), ACT_GRANT);
	assert_int_equal(config_action(cfg, "ERROR"), ACT_RETRY);
	assert_int_equal(config_action(cfg, "FAILED"), ACT_FAIL);
	assert_int_equal(config_action(cfg, "REFUNDED"), ACT_REFUND);
	assert_int_equal(config_action(cfg, "NOT_FOUND"), ACT_NOT_FOUND);
	assert_int_equal(config_action(cfg, "MINIAPP_MISMATCH"), ACT_MISMATCH);
	assert_int_equal(config_action(cfg, "UNLISTED"), ACT_HOLD);
	assert_int_equal(cfg->nrules, 9);
	assert_string_equal(cfg->rules[8].status, "NEW_STATUS");
	config_free(cfg);
}

static void
test_status_other(void **state)
{
	struct config	*cfg;

	cfg = load_ok("[status]\n* = fail\nweird.status-1/x = wait\n");
	assert_int_equal(cfg->other_action, ACT_FAIL);
	assert_int_equal(config_action(cfg, "UNLISTED"), ACT_FAIL);
	assert_int_equal(config_action(cfg, "PURCHASED"), ACT_GRANT);
	assert_int_equal(config_action(cfg, "weird.status-1/x"), ACT_WAIT);
	assert_int_equal(config_action(cfg, "WEIRD.STATUS-1/X"), ACT_FAIL);
	config_free(cfg);
}

/* ---- $CREDENTIALS_DIRECTORY ---- */

static void
test_credentials_directory(void **state)
{
	struct config	*cfg;
	const char	*text = "[api]\ncert = client.crt\nkey = sub/client.key\n"
			    "ca = ca.pem\n";

	setenv("CREDENTIALS_DIRECTORY", "/run/credentials/reconciled.service",
	    1);
	cfg = load_ok(text);
	assert_string_equal(cfg->cert,
	    "/run/credentials/reconciled.service/client.crt");
	assert_string_equal(cfg->key,
	    "/run/credentials/reconciled.service/sub/client.key");
	/* Only cert and key are credentials. */
	assert_string_equal(cfg->ca, "ca.pem");
	config_free(cfg);

	/* Absolute paths and defaults are left alone. */
	cfg = load_ok("[api]\ncert = /etc/x.crt\n");
	assert_string_equal(cfg->cert, "/etc/x.crt");
	assert_string_equal(cfg->key, CONFIG_DEFAULT_KEY);
	config_free(cfg);

	setenv("CREDENTIALS_DIRECTORY", "/run/creds/", 1);
	cfg = load_ok(text);
	assert_string_equal(cfg->cert, "/run/creds/client.crt");
	config_free(cfg);

	setenv("CREDENTIALS_DIRECTORY", "", 1);
	cfg = load_ok(text);
	assert_string_equal(cfg->cert, "client.crt");
	config_free(cfg);

	unsetenv("CREDENTIALS_DIRECTORY");
	cfg = load_ok(text);
	assert_string_equal(cfg->cert, "client.crt");
	assert_string_equal(cfg->key, "sub/client.key");
	config_free(cfg);
}

/* ---- config_path ---- */

static void
test_config_path(void **state)
{
	unsetenv("RECONCILED_CONFIG");
	assert_string_equal(config_path(NULL), CONFIG_DEFAULT_PATH);
	assert_string_equal(config_path(""), CONFIG_DEFAULT_PATH);
	assert_string_equal(config_path("/x/y.conf"), "/x/y.conf");

	setenv("RECONCILED_CONFIG", "/env/r.conf", 1);
	assert_string_equal(config_path(NULL), "/env/r.conf");
	assert_string_equal(config_path("/x/y.conf"), "/x/y.conf");

	setenv("RECONCILED_CONFIG", "", 1);
	assert_string_equal(config_path(NULL), CONFIG_DEFAULT_PATH);
	unsetenv("RECONCILED_CONFIG");
	assert_string_equal(CONFIG_DEFAULT_PATH + strlen(CONFIG_DEFAULT_PATH) -
	    strlen("/reconciled/reconciled.conf"), "/reconciled/reconciled.conf");
}

/* ---- errors ---- */

static void
test_err_cannot_read(void **state)
{
	struct config	*cfg = NULL;
	char		*err = NULL, *path, *want;

	path = xasprintf("%s/test_config-does-not-exist.conf", tmpdir());
	errno = EINTR;
	assert_int_equal(config_load(path, &cfg, &err), -1);
	assert_int_equal(errno, EINTR);
	assert_null(cfg);
	want = xasprintf("%s: cannot read: No such file or directory", path);
	assert_string_equal(err, want);
	free(want);
	free(err);
	free(path);

	assert_int_equal(config_load(tmpdir(), &cfg, &err), -1);
	want = xasprintf("%s: cannot read: Is a directory", tmpdir());
	assert_string_equal(err, want);
	free(want);
	free(err);
}

/* The message names the path as given, here a relative one. */
static void
test_err_relative_path(void **state)
{
	static const char text[] =
	    "; reconciled.conf\n"
	    "[api]\n"
	    "base_url = https://apps-in-toss-api.toss.im\n"
	    "cert = client.crt\n"
	    "key = client.key\n"
	    "\n"
	    "# request limits\n"
	    "connect_timeout = 3s\n"
	    "max_inflight = 64\n"
	    "rate_limit = 3000/min\n"
	    "\n"
	    "timout = 10s\n";
	struct config	*cfg = NULL;
	char		*dir, *err = NULL, cwd[PATH_MAX];
	FILE		*f;

	assert_non_null(getcwd(cwd, sizeof cwd));
	dir = xasprintf("%s/test_config.XXXXXX", tmpdir());
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chdir(dir), 0);
	f = fopen("reconciled.conf", "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);

	assert_int_equal(config_load("reconciled.conf", &cfg, &err), -1);
	assert_string_equal(err,
	    "reconciled.conf:12: unknown key \"timout\" in section [api]");
	free(err);

	assert_int_equal(unlink("reconciled.conf"), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_int_equal(rmdir(dir), 0);
	free(dir);
}

static void
test_err_sections_and_keys(void **state)
{
	expect_err("[api]\ntimout = 5s\n",
	    ":2: unknown key \"timout\" in section [api]");
	expect_err("[api]\nTimeout = 5s\n",
	    ":2: unknown key \"Timeout\" in section [api]");
	/* A key that exists, but in another section. */
	expect_err("[poll]\ntimeout = 5s\n",
	    ":2: unknown key \"timeout\" in section [poll]");
	/* The line of the section header. */
	expect_err("[api]\ntimeout = 5s\n\n[apii]\n; c\ntimeout = 5s\n",
	    ":4: unknown section [apii]");
	expect_err("[API]\ntimeout = 5s\n", ":1: unknown section [API]");
	expect_err("[api]\ntimeout = 5s\n[apii]\n", ":3: unknown section [apii]");
	expect_err("timeout = 5s\n[api]\n",
	    ":1: key \"timeout\" is outside any section");
	expect_err("[api]\ntimeout = 5s\nconnect_timeout = 1s\ntimeout = 6s\n",
	    ":4: duplicate key \"timeout\" in section [api] "
	    "(first set on line 2)");
	/* Also across two headers of one section, and for empty values. */
	expect_err("[events]\njsonl =\n[api]\n[events]\njsonl = /x\n",
	    ":5: duplicate key \"jsonl\" in section [events] "
	    "(first set on line 2)");
}

static void
test_err_syntax(void **state)
{
	expect_err("[api]\nnoequals\n", ":2: " SYNTAX);
	expect_err("[api\ntimeout = 5s\n", ":1: " SYNTAX);
	expect_err("[api]\n= 5s\n", ":2: unknown key \"\" in section [api]");
	/* The first error wins, whichever kind it is. */
	expect_err("[api]\njunk\ntimout = 5s\n", ":2: " SYNTAX);
	expect_err("[api]\ntimout = 5s\njunk\n",
	    ":2: unknown key \"timout\" in section [api]");
}

static void
test_err_line_limits(void **state)
{
	struct config	*cfg;
	char		 line[400], *text;

	/* 197 bytes fit (inih's INI_MAX_LINE of 200 less "\r\n\0"). */
	memset(line, 'a', sizeof line);
	memcpy(line, "ca = /", 6);
	line[197] = '\0';
	text = xasprintf("[api]\n%s\n", line);
	cfg = load_ok(text);
	assert_int_equal(strlen(cfg->ca), 197 - 5);
	config_free(cfg);
	free(text);
	text = xasprintf("[api]\n%s\r\n", line);
	cfg = load_ok(text);
	assert_int_equal(strlen(cfg->ca), 197 - 5);
	config_free(cfg);
	free(text);

	/* 198 do not, whether or not a newline follows. */
	line[197] = 'a';
	line[198] = '\0';
	text = xasprintf("[api]\n%s\ntimeout = 1s\n", line);
	expect_err(text, ":2: line too long (at most 197 bytes)");
	free(text);
	text = xasprintf("[api]\n%s", line);
	expect_err(text, ":2: line too long (at most 197 bytes)");
	free(text);

	/* Far longer: inih would have split it into two lines. */
	line[sizeof line - 1] = '\0';
	memcpy(line + 250, " = x", 4);
	text = xasprintf("[api]\n%s\n", line);
	expect_err(text, ":2: line too long (at most 197 bytes)");
	free(text);

	expect_err("[api]\nca = a\x01z\n", ":2: control character in line");
	expect_err("[api]\nca = a\x1b[31mz\n", ":2: control character in line");
	expect_err("[api]\nca = a\rz\n", ":2: control character in line");
	expect_err("[api]\nca = a\x7fz\n", ":2: control character in line");
	expect_err_len("[api]\nca = a\0z\n", sizeof "[api]\nca = a\0z\n" - 1,
	    ":2: control character in line");
}

static void
test_err_durations(void **state)
{
	expect_err("[poll]\nbackoff_min = 2x\n",
	    ":2: backoff_min: invalid duration \"2x\" " DURATION_HINT);
	expect_err("[poll]\nbackoff_min = 5\n",
	    ":2: backoff_min: invalid duration \"5\" " DURATION_HINT);
	expect_err("[poll]\nbackoff_min =\n",
	    ":2: backoff_min: invalid duration \"\" " DURATION_HINT);
	expect_err("[poll]\ngive_up_after = -1s\n",
	    ":2: give_up_after: invalid duration \"-1s\" " DURATION_HINT);
	expect_err("[poll]\nrefund_watch = 1.5d\n",
	    ":2: refund_watch: invalid duration \"1.5d\" " DURATION_HINT);
	expect_err("[poll]\nrefund_watch = 0s\n",
	    ":2: refund_watch: 0s is out of range (1ms..3650d)");
	expect_err("[poll]\nrefund_watch = 3651d\n",
	    ":2: refund_watch: 3651d is out of range (1ms..3650d)");
	expect_err("[poll]\nnot_found_grace = 99999999999999999999999d\n",
	    ":2: not_found_grace: 99999999999999999999999d is out of range "
	    "(1ms..3650d)");
	expect_err("[api]\ntimeout = 11m\n",
	    ":2: timeout: 11m is out of range (1ms..10m)");
	expect_err("[api]\ntimeout = 600001ms\n",
	    ":2: timeout: 600001ms is out of range (1ms..10m)");
	expect_err("[api]\nconnect_timeout = 0ms\n",
	    ":2: connect_timeout: 0ms is out of range (1ms..10m)");
	expect_err("[events]\nwebhook_timeout = 1h\n",
	    ":2: webhook_timeout: 1h is out of range (1ms..10m)");
}

static void
test_err_numbers(void **state)
{
	expect_err("[api]\nmax_inflight = 0\n",
	    ":2: max_inflight: 0 is out of range (1..4096)");
	expect_err("[api]\nmax_inflight = 4097\n",
	    ":2: max_inflight: 4097 is out of range (1..4096)");
	expect_err("[api]\nmax_inflight = -1\n",
	    ":2: max_inflight: -1 is out of range (1..4096)");
	expect_err("[api]\nmax_inflight = 99999999999999999999\n",
	    ":2: max_inflight: invalid number \"99999999999999999999\" "
	    "(1..4096)");
	expect_err("[api]\nmax_inflight = 64x\n",
	    ":2: max_inflight: invalid number \"64x\" (1..4096)");
	expect_err("[api]\nmax_inflight =\n",
	    ":2: max_inflight: invalid number \"\" (1..4096)");
	expect_err("[api]\nrate_limit = 3000/hour\n",
	    ":2: rate_limit: invalid rate \"3000/hour\" " RATE_HINT);
	expect_err("[api]\nrate_limit =\n",
	    ":2: rate_limit: invalid rate \"\" " RATE_HINT);
}

static void
test_err_status(void **state)
{
	expect_err("[status]\nFOO = grnt\n",
	    ":2: unknown action \"grnt\" for status FOO " ACTION_HINT);
	expect_err("[status]\nFOO =\n",
	    ":2: unknown action \"\" for status FOO " ACTION_HINT);
	expect_err("[status]\n* = Hold\n",
	    ":2: unknown action \"Hold\" for status * " ACTION_HINT);
	expect_err("[status]\nA B = grant\n",
	    ":2: invalid status name \"A B\" (printable ASCII without "
	    "spaces, at most 64 bytes)");
	expect_err("[status]\n\xea\xb2\xb0\xec\xa0\x9c = grant\n",
	    ":2: invalid status name \"\xea\xb2\xb0\xec\xa0\x9c\" (printable "
	    "ASCII without spaces, at most 64 bytes)");
	expect_err("[status]\n"
	    "S234567890123456789012345678901234567890123456789012345678901234"
	    "5 = grant\n",
	    ":2: invalid status name \"S23456789012345678901234567890123456"
	    "78901234567890123456789012345\" (printable ASCII without spaces, "
	    "at most 64 bytes)");
	expect_err("[status]\nFOO = grant\nBAR = wait\nFOO = hold\n",
	    ":4: duplicate key \"FOO\" in section [status] "
	    "(first set on line 2)");
	/* A default may be overridden once. */
	expect_err("[status]\nPURCHASED = hold\nPURCHASED = grant\n",
	    ":3: duplicate key \"PURCHASED\" in section [status] "
	    "(first set on line 2)");
	expect_err("[status]\n* = hold\n* = fail\n",
	    ":3: duplicate key \"*\" in section [status] "
	    "(first set on line 2)");
}

static void
test_err_strings(void **state)
{
	expect_err("[api]\nbase_url =\n", ":2: base_url must not be empty");
	expect_err("[api]\nbase_url =     ; comment\n",
	    ":2: base_url must not be empty");
	expect_err("[ledger]\npath =\n", ":2: path must not be empty");
	expect_err("[api]\nbase_url = ftp://x\n",
	    ":2: base_url: invalid URL \"ftp://x\" (must start with https:// "
	    "or http:// and name a host)");
	expect_err("[api]\nbase_url = https://\n",
	    ":2: base_url: invalid URL \"https://\" (must start with https:// "
	    "or http:// and name a host)");
	expect_err("[api]\nbase_url = apps-in-toss-api.toss.im\n",
	    ":2: base_url: invalid URL \"apps-in-toss-api.toss.im\" (must "
	    "start with https:// or http:// and name a host)");
	expect_err("[api]\nbase_url = https://a b\n",
	    ":2: base_url: invalid URL \"https://a b\" (must start with "
	    "https:// or http:// and name a host)");
	expect_err("[events]\nwebhook_url = hook.example\n"
	    "webhook_secret = " SECRET24 "\n",
	    ":2: webhook_url: invalid URL \"hook.example\" (must start with "
	    "https:// or http:// and name a host)");
	expect_err("[control]\ntoken = two words\n",
	    ":2: token must not contain blanks");
}

static void
test_err_secret(void **state)
{
	static const char *bad[] = {
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",		/* no prefix */
		"whsec_",					/* empty */
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",	/* length */
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa!w",	/* alphabet */
		"whsec_MfKQ9r8GKYqrTwjU=D8ILPZIo2LaLaSw",	/* '=' inside */
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaL===",	/* 3 pads */
		"whsec_AAAAAAAAAAAAAAAAAAAA",			/* 15 bytes */
		"whsec_AAAAAAAAAAAAAAAAAAAAA===",
		"WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		SECRET24 " whsec_",				/* one of two */
		SECRET24 " " SECRET16 " " SECRET24 " " SECRET16 " " SECRET24,
	};
	char	*text;
	size_t	 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		text = xasprintf("[events]\nwebhook_url = https://h.example/\n"
		    "webhook_secret = %s\n", bad[i]);
		/* The secret itself is never repeated. */
		expect_err(text, ":3: webhook_secret: not a valid secret "
		    "(use whsec_<base64 of at least 16 bytes>; while rotating, "
		    "up to 4 of them separated by spaces)");
		free(text);
	}
}

/* While rotating, several secrets: kept verbatim for the sink to split. */
static void
test_secret_rotation(void **state)
{
	struct config	*cfg;

	cfg = load_ok("[events]\nwebhook_url = https://h.example/\n"
	    "webhook_secret = " SECRET24 "  " SECRET16 "\n");
	assert_string_equal(cfg->webhook_secret, SECRET24 "  " SECRET16);
	config_free(cfg);
}

/* The control API is closed by default: a unix socket in systemd's
 * runtime directory, else none; a TCP address needs a token. */
static void
test_control_closed_by_default(void **state)
{
	struct config	*cfg;

	cfg = config_default();
	assert_null(cfg->listen);
	config_free(cfg);
	setenv("RUNTIME_DIRECTORY", "/run/reconciled/", 1);
	cfg = load_ok("");
	assert_string_equal(cfg->listen, "unix:/run/reconciled/control.sock");
	config_free(cfg);
	setenv("RUNTIME_DIRECTORY", "/run/a:/run/b", 1);
	cfg = config_default();
	assert_string_equal(cfg->listen, "unix:/run/a/control.sock");
	config_free(cfg);
	/* The file still decides: empty turns it off. */
	cfg = load_ok("[control]\nlisten =\n");
	assert_null(cfg->listen);
	config_free(cfg);
	setenv("RUNTIME_DIRECTORY", "relative", 1);
	cfg = config_default();
	assert_null(cfg->listen);
	config_free(cfg);
	unsetenv("RUNTIME_DIRECTORY");

	expect_err("[control]\nlisten = 127.0.0.1:8790\n",
	    ":2: listen: a TCP address needs a token (every local user could "
	    "read the event feed and post orders): set [control] token, or "
	    "listen on unix:/PATH");
	expect_err("[control]\nlisten = [::1]:8790\ntoken =\n",
	    ":2: listen: a TCP address needs a token (every local user could "
	    "read the event feed and post orders): set [control] token, or "
	    "listen on unix:/PATH");
	cfg = load_ok("[control]\nlisten = unix:/tmp/x.sock\n");
	assert_null(cfg->token);
	config_free(cfg);
}

static void
test_control_lists(void **state)
{
	struct config	*cfg;

	cfg = load_ok("[control]\nlisten = 127.0.0.1:1\ntoken = t\n"
	    "allowed_hosts = api.internal, Ops.Example\n"
	    "allowed_origins = https://ops.example\n"
	    "max_connections = 16\n");
	assert_string_equal(cfg->allowed_hosts, "api.internal, Ops.Example");
	assert_int_equal(cfg->max_connections, 16);
	assert_true(config_list_has(cfg->allowed_hosts, "api.internal", 12));
	assert_true(config_list_has(cfg->allowed_hosts, "ops.example", 11));
	assert_false(config_list_has(cfg->allowed_hosts, "api.intern", 10));
	assert_false(config_list_has(cfg->allowed_hosts, "example", 7));
	assert_true(config_list_has(cfg->allowed_origins,
	    "https://ops.example", 19));
	assert_false(config_list_has(cfg->allowed_origins,
	    "http://ops.example", 18));
	assert_false(config_list_has(NULL, "x", 1));
	config_free(cfg);
	expect_err("[control]\nmax_connections = 0\n",
	    ":2: max_connections: 0 is out of range (1..65536)");
}

/* http:// is for a simulator on loopback only. */
/* [ledger] url: PostgreSQL instead of path, never both, never echoed;
 * refused by builds without the backend. */
#ifdef HAVE_LIBPQ
#define TEST_POSTGRESQL	1
#else
#define TEST_POSTGRESQL	0
#endif
static void
test_ledger_url(void **state)
{
	static const char url[] = "postgresql://u:secret@db/ledger";
	struct config	*cfg;
	char		*text;

	expect_err("[ledger]\npath = /x.db\nurl = postgresql://db/l\n",
	    ":3: [ledger] path and url are both set: use path for an SQLite"
	    " file or url for PostgreSQL, not both");
	expect_err("[ledger]\nurl = mysql://u:secret@db/l\n",
	    ":2: url: not a PostgreSQL URL (must start with postgresql://)");
	text = xasprintf("[ledger]\nurl = %s\n", url);
	if (TEST_POSTGRESQL) {
		cfg = load_ok(text);
		assert_string_equal(cfg->ledger_url, url);
		assert_string_equal(config_ledger(cfg), url);
		config_free(cfg);
	} else
		expect_err(text, ":2: url: this build of reconciled has no"
		    " PostgreSQL ledger backend (configure it"
		    " --with-postgresql, with libpq installed), or use path");
	free(text);
	cfg = load_ok("[ledger]\npath = /x.db\n");
	assert_null(cfg->ledger_url);
	assert_string_equal(config_ledger(cfg), "/x.db");
	config_free(cfg);
}

static void
test_plain_http(void **state)
{
	static const char *ok[] = {
		"http://127.0.0.1:8443", "http://127.9.9.9", "http://localhost:1/x",
		"http://[::1]:8443", "https://toss.example",
	};
	static const char *bad[] = {
		"http://toss.example", "http://127.0.0.1.nip.io:80",
		"http://10.0.0.1", "http://[::2]:1", "http://user@127.0.0.1",
		"http://1270.0.0.1",
	};
	struct config	*cfg;
	char		*text, *want;
	size_t		 i;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		text = xasprintf("[api]\nbase_url = %s\n", ok[i]);
		cfg = load_ok(text);
		assert_int_equal(config_plain_http(cfg),
		    strncmp(ok[i], "http:", 5) == 0);
		config_free(cfg);
		free(text);
	}
	want = xstrdup(":2: base_url: http:// is only for a loopback "
	    "simulator; Toss answers are not authenticated without TLS "
	    "(use https://)");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		text = xasprintf("[api]\nbase_url = %s\n", bad[i]);
		expect_err(text, want);
		free(text);
	}
	free(want);
}

static void
test_err_listen(void **state)
{
	expect_err("[control]\nlisten = unix:run/x.sock\n",
	    ":2: listen: unix socket path \"run/x.sock\" must be absolute");
	expect_err("[control]\nlisten = unix:\n",
	    ":2: listen: unix socket path \"\" must be absolute");
	expect_err("[control]\nlisten = unix:/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	    ":2: listen: unix socket path is too long (at most 107 bytes)");
	expect_err("[control]\nlisten = 127.0.0.1\n",
	    ":2: listen: invalid address \"127.0.0.1\" " LISTEN_HINT);
	expect_err("[control]\nlisten = :8790\n",
	    ":2: listen: invalid address \":8790\" " LISTEN_HINT);
	expect_err("[control]\nlisten = 127.0.0.1:\n",
	    ":2: listen: invalid address \"127.0.0.1:\" " LISTEN_HINT);
	expect_err("[control]\nlisten = 127.0.0.1:http\n",
	    ":2: listen: invalid address \"127.0.0.1:http\" " LISTEN_HINT);
	expect_err("[control]\nlisten = 127.0.0.1:-1\n",
	    ":2: listen: invalid address \"127.0.0.1:-1\" " LISTEN_HINT);
	expect_err("[control]\nlisten = ::1:8790\n",
	    ":2: listen: invalid address \"::1:8790\" " LISTEN_HINT);
	expect_err("[control]\nlisten = [::1]8790\n",
	    ":2: listen: invalid address \"[::1]8790\" " LISTEN_HINT);
	expect_err("[control]\nlisten = [::1]\n",
	    ":2: listen: invalid address \"[::1]\" " LISTEN_HINT);
	expect_err("[control]\nlisten = []:80\n",
	    ":2: listen: invalid address \"[]:80\" " LISTEN_HINT);
	expect_err("[control]\nlisten = [zz::1]:80\n",
	    ":2: listen: invalid IPv6 address \"zz::1\"");
	expect_err("[control]\nlisten = 127.0.0.1:0\n",
	    ":2: listen: port 0 is out of range (1..65535)");
	expect_err("[control]\nlisten = [::1]:65536\n",
	    ":2: listen: port 65536 is out of range (1..65535)");
	expect_err("[control]\nlisten = my host:80\n",
	    ":2: listen: invalid address \"my host:80\" " LISTEN_HINT);
}

static void
test_err_cross_field(void **state)
{
	/* Against a default: the line of the key that was set. */
	expect_err("[poll]\nbackoff_min = 10m\n",
	    ":2: backoff_min (10m) is greater than backoff_max (5m)");
	/* Both set: the line of the later one. */
	expect_err("[poll]\nbackoff_max = 1s\n\nbackoff_min = 1500ms\n",
	    ":4: backoff_min (1500ms) is greater than backoff_max (1s)");
	expect_err("[poll]\nbackoff_min = 3s\nbackoff_max = 2s\n",
	    ":3: backoff_min (3s) is greater than backoff_max (2s)");
	expect_err("[poll]\nrefund_check_max = 30m\n",
	    ":2: refund_check_min (1h) is greater than refund_check_max (30m)");
	expect_err("[events]\nwebhook_url = https://h.example/hook\n",
	    ":2: webhook_url is set but webhook_secret is not");
	expect_err("[events]\nwebhook_url =\nwebhook_secret = " SECRET24 "\n",
	    ":3: webhook_secret is set but webhook_url is not");
	expect_err("[api]\nkey =\n", ":2: cert is set but key is not");
	expect_err("[api]\ncert =\n", ":2: key is set but cert is not");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, setup),
		cmocka_unit_test_setup(test_empty_file_is_defaults, setup),
		cmocka_unit_test_setup(test_design_example, setup),
		cmocka_unit_test_setup(test_all_keys, setup),
		cmocka_unit_test_setup(test_empty_means_unset, setup),
		cmocka_unit_test_setup(test_listen_forms, setup),
		cmocka_unit_test_setup(test_secret_forms, setup),
		cmocka_unit_test_setup(test_indented_line, setup),
		cmocka_unit_test_setup(test_duration_units, setup),
		cmocka_unit_test_setup(test_duration_invalid, setup),
		cmocka_unit_test_setup(test_rates, setup),
		cmocka_unit_test_setup(test_rates_invalid, setup),
		cmocka_unit_test_setup(test_rate_in_file, setup),
		cmocka_unit_test_setup(test_action_names, setup),
		cmocka_unit_test_setup(test_status_override, setup),
		cmocka_unit_test_setup(test_status_other, setup),
		cmocka_unit_test_setup(test_credentials_directory, setup),
		cmocka_unit_test_setup(test_config_path, setup),
		cmocka_unit_test_setup(test_err_cannot_read, setup),
		cmocka_unit_test_setup(test_err_relative_path, setup),
		cmocka_unit_test_setup(test_err_sections_and_keys, setup),
		cmocka_unit_test_setup(test_err_syntax, setup),
		cmocka_unit_test_setup(test_err_line_limits, setup),
		cmocka_unit_test_setup(test_err_durations, setup),
		cmocka_unit_test_setup(test_err_numbers, setup),
		cmocka_unit_test_setup(test_err_status, setup),
		cmocka_unit_test_setup(test_err_strings, setup),
		cmocka_unit_test_setup(test_err_secret, setup),
		cmocka_unit_test_setup(test_secret_rotation, setup),
		cmocka_unit_test_setup(test_err_listen, setup),
		cmocka_unit_test_setup(test_control_closed_by_default, setup),
		cmocka_unit_test_setup(test_control_lists, setup),
		cmocka_unit_test_setup(test_plain_http, setup),
		cmocka_unit_test_setup(test_ledger_url, setup),
		cmocka_unit_test_setup(test_err_cross_field, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
