/* libFuzzer target for the Toss answer parser: each input is an answer body,
 * classified by toss_parse under every kind of HTTP code, and a time string
 * for toss_normalise_time. After each call the promises the poller and the
 * ledger rely on are checked; a broken one aborts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "toss.h"

#define OID	"13c9a1ff-2baa-4495-bbfa-a0826ba8c7c0"

#define CHECK(cond) do {						\
	if (!(cond))							\
		fuzz_fail(__LINE__, #cond);				\
} while (0)

static const long	 codes[] = {
	200, 201, 204, 299, 0, -1, 100, 199, 300, 302, 400, 401, 403, 404,
	409, 429, 499, 500, 502, 503, 504, 599, 600
};

static void	 fuzz_fail(int, const char *) __attribute__((noreturn));

static void
fuzz_fail(int line, const char *what)
{
	fprintf(stderr, "fuzz_toss.c:%d: invariant broken: %s\n", line, what);
	abort();
}

/* 1 if s[len] is well-formed UTF-8 (RFC 3629). */
static int
utf8_ok(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n, k;
	unsigned long		 cp, min;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if (p[i] >= 0xc2 && p[i] <= 0xdf) {
			n = 1;
			cp = p[i] & 0x1f;
			min = 0x80;
		} else if (p[i] >= 0xe0 && p[i] <= 0xef) {
			n = 2;
			cp = p[i] & 0x0f;
			min = 0x800;
		} else if (p[i] >= 0xf0 && p[i] <= 0xf4) {
			n = 3;
			cp = p[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (len - i <= n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* The length of a NUL-terminated field, which must end inside it. */
static size_t
field_len(const char *s, size_t size)
{
	size_t	 len = strnlen(s, size);

	CHECK(len < size);
	return len;
}

/* What toss_normalise_time promises about a time it accepted. */
static void
check_time(const char *out)
{
	char	 again[DETERMINED_MAX];
	size_t	 len;

	len = field_len(out, DETERMINED_MAX);
	CHECK(len >= 20);
	CHECK(out[len - 1] == 'Z' || (len >= 25 && out[len - 3] == ':' &&
	    (out[len - 6] == '+' || out[len - 6] == '-')));
	/* Normalising a normalised time changes nothing. */
	CHECK(toss_normalise_time(out, again) == 0);
	CHECK(strcmp(out, again) == 0);
}

static void
check_answer(long code, const struct toss_answer *a)
{
	size_t	 len, i;
	int	 ok = code >= 200 && code <= 299;

	CHECK(a->http_code == code);
	CHECK(strcmp(toss_kind_name(a->kind), "unknown") != 0);
	CHECK(strcmp(toss_perr_name(a->perr), "unknown") != 0);
	(void)field_len(a->sku, sizeof a->sku);
	(void)field_len(a->determined_at, sizeof a->determined_at);
	len = field_len(a->reason, sizeof a->reason);
	CHECK(utf8_ok(a->reason, len));
	len = field_len(a->error_code, sizeof a->error_code);
	CHECK(utf8_ok(a->error_code, len));
	len = field_len(a->status, sizeof a->status);

	if (code == 429) {
		CHECK(a->kind == TOSS_RATE_LIMITED);
		return;
	}
	if (code == 401 || code == 403) {
		CHECK(a->kind == TOSS_AUTH);
		return;
	}
	switch (a->kind) {
	case TOSS_STATUS:
		/* The only verdict: a 2xx with a clean status. */
		CHECK(ok);
		CHECK(a->perr == TOSS_PERR_NONE);
		CHECK(len >= 1 && len <= STATUS_MAX);
		for (i = 0; i < len; i++)
			CHECK(a->status[i] >= 0x21 && a->status[i] <= 0x7e);
		len = strlen(a->sku);
		for (i = 0; i < len; i++)
			CHECK((unsigned char)a->sku[i] >= 0x20 &&
			    a->sku[i] != 0x7f);
		if (a->determined_at[0] != '\0')
			check_time(a->determined_at);
		CHECK(a->error_code[0] == '\0');
		break;
	case TOSS_FAIL:
		CHECK(a->perr == TOSS_PERR_NONE);
		CHECK(len == 0 && a->sku[0] == '\0' &&
		    a->determined_at[0] == '\0');
		break;
	case TOSS_MALFORMED:
		CHECK(ok);
		CHECK(a->perr != TOSS_PERR_NONE);
		CHECK(len == 0 && a->sku[0] == '\0' && a->reason[0] == '\0' &&
		    a->determined_at[0] == '\0');
		break;
	case TOSS_HTTP_ERROR:
		CHECK(!ok);
		CHECK(len == 0 && a->sku[0] == '\0' && a->reason[0] == '\0' &&
		    a->determined_at[0] == '\0');
		break;
	default:
		CHECK(!"a kind toss_parse may not return");
	}
}

static int
same_answer(const struct toss_answer *a, const struct toss_answer *b)
{
	return a->kind == b->kind && a->perr == b->perr &&
	    a->http_code == b->http_code &&
	    strcmp(a->status, b->status) == 0 && strcmp(a->sku, b->sku) == 0 &&
	    strcmp(a->reason, b->reason) == 0 &&
	    strcmp(a->determined_at, b->determined_at) == 0 &&
	    strcmp(a->error_code, b->error_code) == 0;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct toss_answer	 a, b;
	const char		*body = (const char *)data;
	char			*str, out[DETERMINED_MAX];
	size_t			 i;

	for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		toss_parse(codes[i], body, size, OID, &a);
		check_answer(codes[i], &a);
		/* Asked without an orderId, only the orderId checks can
		 * change the outcome. */
		toss_parse(codes[i], body, size, NULL, &b);
		check_answer(codes[i], &b);
		CHECK(b.perr != TOSS_PERR_NO_ORDER_ID);
		if (a.perr == TOSS_PERR_ORDER_ID ||
		    a.perr == TOSS_PERR_NO_ORDER_ID)
			CHECK(b.perr != TOSS_PERR_ORDER_ID);
		else
			CHECK(same_answer(&a, &b));
	}

	/* The same bytes as a statusDeterminedAt value. */
	if ((str = malloc(size + 1)) == NULL)
		abort();
	memcpy(str, data, size);
	str[size] = '\0';
	memset(out, 'x', sizeof out);
	if (toss_normalise_time(str, out) == 0) {
		check_time(out);
		CHECK(strncmp(out, str, 19) == 0);
	}
	free(str);
	return 0;
}
