/* libFuzzer target for the config parser: each input is a whole config file
 * for config_load (written to a memfd, read back through /proc/self/fd), and
 * the same bytes as a value for config_parse_duration and config_parse_rate.
 * A config that loads must be usable as is; one that does not must say why
 * in one printable line naming the file. */
#include <sys/mman.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

#define CREDS_DIR	"/run/credentials/reconciled.service"
#define TIMEOUT_MAX	(10 * 60 * 1000LL)
#define DURATION_MAX	(3650 * 24 * 3600 * 1000LL)

#define CHECK(cond) do {						\
	if (!(cond))							\
		fuzz_fail(__LINE__, #cond);				\
} while (0)

static int	 fuzz_fd = -1;
static char	 fuzz_path[64];

static void	 fuzz_fail(int, const char *) __attribute__((noreturn));

static void
fuzz_fail(int line, const char *what)
{
	fprintf(stderr, "fuzz_config.c:%d: invariant broken: %s\n", line, what);
	abort();
}

static void
check_url(const char *s)
{
	size_t	 len;

	CHECK(s != NULL);
	CHECK(strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0);
	len = strlen(s);
	CHECK(len > 0 && s[len - 1] != '/');
	CHECK(strpbrk(s, " \t") == NULL);
}

static void
check_duration(int64_t ms, int64_t max)
{
	CHECK(ms >= 1 && ms <= max);
}

/* Everything the daemon takes for granted about a loaded config. */
static void
check_config(const struct config *cfg)
{
	size_t	 i, j, len;

	CHECK(cfg->path != NULL && strcmp(cfg->path, fuzz_path) == 0);
	check_url(cfg->base_url);
	CHECK(cfg->ledger_path != NULL && cfg->ledger_path[0] != '\0');
	CHECK((cfg->cert == NULL) == (cfg->key == NULL));
	/* $CREDENTIALS_DIRECTORY is set: relative paths were joined onto it. */
	CHECK(cfg->cert == NULL || cfg->cert[0] == '/');
	CHECK(cfg->key == NULL || cfg->key[0] == '/');
	CHECK(cfg->ca == NULL || cfg->ca[0] != '\0');
	check_duration(cfg->timeout_ms, TIMEOUT_MAX);
	check_duration(cfg->connect_timeout_ms, TIMEOUT_MAX);
	check_duration(cfg->webhook_timeout_ms, TIMEOUT_MAX);
	CHECK(cfg->max_inflight >= 1 && cfg->max_inflight <= 4096);
	CHECK(isfinite(cfg->rate_per_sec) && cfg->rate_per_sec >= 0);
	CHECK(cfg->rate_limit != NULL);
	check_duration(cfg->backoff_min_ms, DURATION_MAX);
	check_duration(cfg->backoff_max_ms, DURATION_MAX);
	check_duration(cfg->give_up_after_ms, DURATION_MAX);
	check_duration(cfg->not_found_grace_ms, DURATION_MAX);
	check_duration(cfg->refund_watch_ms, DURATION_MAX);
	check_duration(cfg->refund_check_min_ms, DURATION_MAX);
	check_duration(cfg->refund_check_max_ms, DURATION_MAX);
	CHECK(cfg->backoff_min_ms <= cfg->backoff_max_ms);
	CHECK(cfg->refund_check_min_ms <= cfg->refund_check_max_ms);
	CHECK(cfg->jsonl == NULL || cfg->jsonl[0] != '\0');
	CHECK((cfg->webhook_url == NULL) == (cfg->webhook_secret == NULL));
	if (cfg->webhook_url != NULL) {
		check_url(cfg->webhook_url);
		CHECK(strncmp(cfg->webhook_secret, "whsec_", 6) == 0);
	}
	CHECK(cfg->listen == NULL || cfg->listen[0] != '\0');
	CHECK(cfg->token == NULL ||
	    (cfg->token[0] != '\0' && strpbrk(cfg->token, " \t") == NULL));

	CHECK(cfg->nrules == 0 || cfg->rules != NULL);
	for (i = 0; i < cfg->nrules; i++) {
		CHECK(cfg->rules[i].status != NULL);
		len = strlen(cfg->rules[i].status);
		CHECK(len >= 1 && len <= 64);
		for (j = 0; j < len; j++)
			CHECK(cfg->rules[i].status[j] >= 0x21 &&
			    cfg->rules[i].status[j] <= 0x7e);
		CHECK(strcmp(cfg->rules[i].status, "*") != 0);
		CHECK(strcmp(config_action_name(cfg->rules[i].action),
		    "invalid") != 0);
		for (j = 0; j < i; j++)
			CHECK(strcmp(cfg->rules[i].status,
			    cfg->rules[j].status) != 0);
		CHECK(config_action(cfg, cfg->rules[i].status) ==
		    cfg->rules[i].action);
	}
	CHECK(strcmp(config_action_name(cfg->other_action), "invalid") != 0);
}

/* An error is one line that starts with the file's name. */
static void
check_error(const char *err)
{
	size_t	 plen = strlen(fuzz_path), i;

	CHECK(err != NULL);
	CHECK(strncmp(err, fuzz_path, plen) == 0 && err[plen] == ':');
	/* A tab may come from the value quoted; nothing else below 0x20. */
	for (i = 0; err[i] != '\0'; i++)
		CHECK(((unsigned char)err[i] >= 0x20 || err[i] == '\t') &&
		    err[i] != 0x7f);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if ((fuzz_fd = memfd_create("fuzz_config", MFD_CLOEXEC)) == -1) {
		fprintf(stderr, "fuzz_config: memfd_create: %s\n",
		    strerror(errno));
		exit(1);
	}
	snprintf(fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
	if (setenv("CREDENTIALS_DIRECTORY", CREDS_DIR, 1) == -1)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*cfg = NULL;
	char		*err = NULL, *str;
	int64_t		 ms;
	double		 rate;

	if (ftruncate(fuzz_fd, 0) == -1 ||
	    (size > 0 && pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)) {
		fprintf(stderr, "fuzz_config: cannot write the memfd: %s\n",
		    strerror(errno));
		abort();
	}
	if (config_load(fuzz_path, &cfg, &err) == 0) {
		CHECK(err == NULL);
		check_config(cfg);
		config_free(cfg);
	} else {
		CHECK(cfg == NULL);
		check_error(err);
		free(err);
	}

	if ((str = malloc(size + 1)) == NULL)
		abort();
	memcpy(str, data, size);
	str[size] = '\0';
	if (config_parse_duration(str, &ms) == 0)
		CHECK(ms >= 1);
	if (config_parse_rate(str, &rate) == 0)
		CHECK(isfinite(rate) && rate >= 0 && rate <= 1e9);
	free(str);
	return 0;
}
