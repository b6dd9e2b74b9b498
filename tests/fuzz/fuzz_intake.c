/* libFuzzer target for the import line parser: each input is one line of
 * `reconcilectl import` (or one POST /v1/orders body) for intake_parse, and
 * the same text through json-c's lax parser into intake_from_json. Whatever
 * either accepts must pass intake_check, the rule every way in shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "intake.h"

#define CHECK(cond) do {						\
	if (!(cond))							\
		fuzz_fail(__LINE__, #cond);				\
} while (0)

static void	 fuzz_fail(int, const char *) __attribute__((noreturn));

static void
fuzz_fail(int line, const char *what)
{
	fprintf(stderr, "fuzz_intake.c:%d: invariant broken: %s\n", line, what);
	abort();
}

/* What a caller of intake_parse or intake_from_json may rely on. */
static void
check_result(int rv, const struct intake_order *o, const char *err)
{
	char	 again[INTAKE_ERR_MAX];

	CHECK(rv == 0 || rv == -1);
	CHECK(strnlen(err, INTAKE_ERR_MAX) < INTAKE_ERR_MAX);
	CHECK(strnlen(o->order_id, sizeof o->order_id) < sizeof o->order_id);
	CHECK(strnlen(o->user_key, sizeof o->user_key) < sizeof o->user_key);
	CHECK(strnlen(o->sku, sizeof o->sku) < sizeof o->sku);
	CHECK(strnlen(o->ref, sizeof o->ref) < sizeof o->ref);
	if (rv == -1) {
		CHECK(err[0] != '\0');
		return;
	}
	CHECK(err[0] == '\0');
	CHECK(o->has_sku == 0 || o->has_sku == 1);
	CHECK(o->has_ref == 0 || o->has_ref == 1);
	CHECK(o->has_sku || o->sku[0] == '\0');
	CHECK(o->has_ref || o->ref[0] == '\0');
	CHECK(intake_check(o->order_id, o->user_key,
	    o->has_sku ? o->sku : NULL, o->has_ref ? o->ref : NULL,
	    again) == 0);
	CHECK(again[0] == '\0');
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct intake_order	 o, o2;
	struct json_object	*obj;
	char			 err[INTAKE_ERR_MAX], err2[INTAKE_ERR_MAX];
	char			*str;
	int			 rv;

	memset(err, 'x', sizeof err);
	rv = intake_parse((const char *)data, size, &o, err);
	check_result(rv, &o, err);
	/* Nothing but the text decides. */
	CHECK(intake_parse((const char *)data, size, &o2, err2) == rv);
	CHECK(strcmp(err, err2) == 0);
	CHECK(memcmp(&o, &o2, sizeof o) == 0);

	/* The lax parse stops at a NUL; give it a terminated copy. */
	if ((str = malloc(size + 1)) == NULL)
		abort();
	memcpy(str, data, size);
	str[size] = '\0';
	obj = json_tokener_parse(str);
	memset(err, 'x', sizeof err);
	rv = intake_from_json(obj, &o, err);
	check_result(rv, &o, err);
	if (obj == NULL)
		CHECK(rv == -1);
	json_object_put(obj);
	free(str);
	return 0;
}
