/* Unit tests for intake.c: every rule an order must pass, with the exact
 * message a caller sees, at and just past every length limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "intake.h"
#include "util.h"

/* Parses text (NUL-terminated) and returns intake_parse's result; the
 * reason lands in err, the order in *o. */
static int
parse(const char *text, struct intake_order *o, char *err)
{
	return intake_parse(text, strlen(text), o, err);
}

/* Asserts that text is refused with exactly msg. */
static void
refused(const char *text, const char *msg)
{
	struct intake_order	 o;
	char			 err[INTAKE_ERR_MAX];

	if (parse(text, &o, err) != -1)
		fail_msg("accepted: %s", text);
	assert_string_equal(err, msg);
}

/* Asserts that text is accepted and returns the order in *o. */
static void
accepted(const char *text, struct intake_order *o)
{
	char	 err[INTAKE_ERR_MAX];

	if (parse(text, o, err) != 0)
		fail_msg("refused (%s): %s", err, text);
	assert_string_equal(err, "");
}

/* A string of n copies of c; caller frees. */
static char *
repeat(char c, size_t n)
{
	char	*s = xmalloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* An order line whose field `name` holds n 'x's (orderId and userKey are
 * "o" and "u" unless they are the field). Caller frees. */
static char *
line_with(const char *name, size_t n)
{
	char	*v = repeat('x', n), *s;

	if (strcmp(name, "orderId") == 0)
		s = xasprintf("{\"orderId\":\"%s\",\"userKey\":\"u\"}", v);
	else if (strcmp(name, "userKey") == 0)
		s = xasprintf("{\"orderId\":\"o\",\"userKey\":\"%s\"}", v);
	else
		s = xasprintf("{\"orderId\":\"o\",\"userKey\":\"u\",\"%s\":\"%s\"}",
		    name, v);
	free(v);
	return s;
}

static void
test_minimal(void **state)
{
	struct intake_order	 o;

	accepted("{\"orderId\":\"0192c0de-1\",\"userKey\":\"443731104\"}", &o);
	assert_string_equal(o.order_id, "0192c0de-1");
	assert_string_equal(o.user_key, "443731104");
	assert_int_equal(o.has_sku, 0);
	assert_string_equal(o.sku, "");
	assert_int_equal(o.has_ref, 0);
	assert_string_equal(o.ref, "");
}

static void
test_full(void **state)
{
	struct intake_order	 o;

	accepted("{\"ref\":\"r-1\",\"sku\":\"ait.0000010000\",\"extra\":{\"a\":[1,2]},"
	    "\"userKey\":\"k\",\"orderId\":\"o-1\",\"more\":null}", &o);
	assert_string_equal(o.order_id, "o-1");
	assert_string_equal(o.user_key, "k");
	assert_int_equal(o.has_sku, 1);
	assert_string_equal(o.sku, "ait.0000010000");
	assert_int_equal(o.has_ref, 1);
	assert_string_equal(o.ref, "r-1");
}

static void
test_null_optionals(void **state)
{
	struct intake_order	 o;

	accepted("{\"orderId\":\"o\",\"userKey\":\"u\",\"sku\":null,\"ref\":null}", &o);
	assert_int_equal(o.has_sku, 0);
	assert_int_equal(o.has_ref, 0);

	/* An empty ref is a value the caller chose; an empty sku is not. */
	accepted("{\"orderId\":\"o\",\"userKey\":\"u\",\"ref\":\"\"}", &o);
	assert_int_equal(o.has_ref, 1);
	assert_string_equal(o.ref, "");
	refused("{\"orderId\":\"o\",\"userKey\":\"u\",\"sku\":\"\"}", "sku is empty");
}

static void
test_whitespace(void **state)
{
	struct intake_order	 o;

	accepted("  {\"orderId\":\"o\",\"userKey\":\"u\"}\t ", &o);
	accepted("{\"orderId\":\"o\",\"userKey\":\"u\"}\r", &o);
	accepted("{ \"orderId\" : \"o\" , \"userKey\" : \"u\" }\r\n", &o);
	assert_string_equal(o.order_id, "o");
}

static void
test_escapes_and_unicode(void **state)
{
	struct intake_order	 o;

	accepted("{\"orderId\":\"a\\\"b\\\\c\\/d\",\"userKey\":\"\\u00e9\"}", &o);
	assert_string_equal(o.order_id, "a\"b\\c/d");
	assert_string_equal(o.user_key, "\xc3\xa9");
	accepted("{\"orderId\":\"\xf0\x9f\x98\x80\",\"userKey\":\"\xed\x95\x9c\"}", &o);
	assert_string_equal(o.order_id, "\xf0\x9f\x98\x80");
	assert_string_equal(o.user_key, "\xed\x95\x9c");
}

static void
test_invalid_json(void **state)
{
	static const char	 nul_after[] =
	    "{\"orderId\":\"o\",\"userKey\":\"u\"}\0x";
	static const char	 nul_inside[] =
	    "{\"orderId\":\"o\0\",\"userKey\":\"u\"}";
	struct intake_order	 o;
	char			 err[INTAKE_ERR_MAX];

	refused("", "invalid JSON");
	refused("   ", "invalid JSON");
	refused("{", "invalid JSON");
	refused("{\"orderId\":\"o\",\"userKey\":\"u\"", "invalid JSON");
	refused("{\"orderId\":\"o\",\"userKey\":\"u\",}", "invalid JSON");
	refused("{\"orderId\":\"o\",\"userKey\":\"u\"} x", "invalid JSON");
	refused("{\"orderId\":\"o\",\"userKey\":\"u\"}{}", "invalid JSON");
	refused("{\"orderId\":\"o\",\"userKey\":007}", "invalid JSON");
	refused("orderId=o userKey=u", "invalid JSON");
	refused("{orderId:\"o\",userKey:\"u\"}", "invalid JSON");

	/* A NUL byte ends nothing: the whole length is the text. */
	assert_int_equal(intake_parse(nul_after, sizeof(nul_after) - 1, &o, err),
	    -1);
	assert_string_equal(err, "invalid JSON");
	assert_int_equal(intake_parse(nul_inside, sizeof(nul_inside) - 1, &o,
	    err), -1);
	assert_string_equal(err, "invalid JSON");
}

static void
test_invalid_utf8(void **state)
{
	refused("{\"orderId\":\"\xff\",\"userKey\":\"u\"}", "invalid UTF-8");
	refused("{\"orderId\":\"o\",\"userKey\":\"\xc3\"}", "invalid UTF-8");
	refused("\xef\xbb\xbf{\"orderId\":\"o\",\"userKey\":\"u\"}", "invalid UTF-8");
	/* json-c lets surrogates, overlongs and code points past U+10FFFF
	 * through; intake does not. */
	refused("{\"orderId\":\"\xed\xa0\x80\",\"userKey\":\"u\"}",
	    "orderId is not valid UTF-8");
	refused("{\"orderId\":\"o\",\"userKey\":\"u\",\"sku\":\"\xc0\xaf\"}",
	    "sku is not valid UTF-8");
	refused("{\"orderId\":\"o\",\"userKey\":\"u\",\"ref\":\"\xf4\x90\x80\x80\"}",
	    "ref is not valid UTF-8");
	refused("{\"orderId\":\"o\",\"userKey\":\"\xed\xb0\x80\"}",
	    "userKey is not valid UTF-8");
}

static void
test_not_object(void **state)
{
	struct intake_order	 o;
	char			 err[INTAKE_ERR_MAX];

	refused("[]", "not a JSON object");
	refused("[{\"orderId\":\"o\",\"userKey\":\"u\"}]", "not a JSON object");
	refused("1", "not a JSON object");
	refused("\"o\"", "not a JSON object");
	refused("null", "not a JSON object");
	refused("true", "not a JSON object");

	assert_int_equal(intake_from_json(NULL, &o, err), -1);
	assert_string_equal(err, "not a JSON object");
}

static void
test_order_id(void **state)
{
	struct intake_order	 o;
	char			*s;

	refused("{\"userKey\":\"u\"}", "missing orderId");
	refused("{}", "missing orderId");
	refused("{\"orderId\":1,\"userKey\":\"u\"}", "orderId must be a string");
	refused("{\"orderId\":null,\"userKey\":\"u\"}", "orderId must be a string");
	refused("{\"orderId\":[\"o\"],\"userKey\":\"u\"}", "orderId must be a string");
	refused("{\"orderId\":\"\",\"userKey\":\"u\"}", "orderId is empty");
	refused("{\"orderId\":\"a\tb\",\"userKey\":\"u\"}",
	    "orderId contains control characters");
	refused("{\"orderId\":\"a\\nb\",\"userKey\":\"u\"}",
	    "orderId contains control characters");
	refused("{\"orderId\":\"a\\u0000b\",\"userKey\":\"u\"}",
	    "orderId contains control characters");
	refused("{\"orderId\":\"a\\u007fb\",\"userKey\":\"u\"}",
	    "orderId contains control characters");
	refused("{\"orderId\":\"a\\u0085b\",\"userKey\":\"u\"}",
	    "orderId contains control characters");
	/* The orderId is checked first: its message wins. */
	refused("{\"orderId\":\"\",\"userKey\":\"\"}", "orderId is empty");

	s = line_with("orderId", 128);
	accepted(s, &o);
	assert_int_equal(strlen(o.order_id), 128);
	free(s);
	s = line_with("orderId", 129);
	refused(s, "orderId is longer than 128 bytes");
	free(s);
}

static void
test_user_key_string(void **state)
{
	struct intake_order	 o;
	char			*s;

	refused("{\"orderId\":\"o\"}", "missing userKey");
	refused("{\"orderId\":\"o\",\"userKey\":\"\"}", "userKey is empty");
	refused("{\"orderId\":\"o\",\"userKey\":\"a\\rb\"}",
	    "userKey contains control characters");
	s = line_with("userKey", 128);
	accepted(s, &o);
	assert_int_equal(strlen(o.user_key), 128);
	free(s);
	s = line_with("userKey", 129);
	refused(s, "userKey is longer than 128 bytes");
	free(s);
}

static void
test_user_key_integer(void **state)
{
	struct intake_order	 o;

	accepted("{\"orderId\":\"o\",\"userKey\":443731104}", &o);
	assert_string_equal(o.user_key, "443731104");
	accepted("{\"orderId\":\"o\",\"userKey\":0}", &o);
	assert_string_equal(o.user_key, "0");
	accepted("{\"orderId\":\"o\",\"userKey\":-0}", &o);
	assert_string_equal(o.user_key, "0");
	accepted("{\"orderId\":\"o\",\"userKey\":9223372036854775807}", &o);
	assert_string_equal(o.user_key, "9223372036854775807");
	accepted("{\"orderId\":\"o\",\"userKey\":9223372036854775808}", &o);
	assert_string_equal(o.user_key, "9223372036854775808");
	accepted("{\"orderId\":\"o\",\"userKey\":18446744073709551614}", &o);
	assert_string_equal(o.user_key, "18446744073709551614");

	refused("{\"orderId\":\"o\",\"userKey\":18446744073709551615}",
	    "userKey is too large for an integer (send it as a string)");
	refused("{\"orderId\":\"o\",\"userKey\":18446744073709551616}",
	    "userKey is too large for an integer (send it as a string)");
	refused("{\"orderId\":\"o\",\"userKey\":99999999999999999999999999}",
	    "userKey is too large for an integer (send it as a string)");
	refused("{\"orderId\":\"o\",\"userKey\":-1}", "userKey must not be negative");
	refused("{\"orderId\":\"o\",\"userKey\":-99999999999999999999999999}",
	    "userKey must not be negative");
}

static void
test_user_key_types(void **state)
{
	const char	*msg = "userKey must be a string or an integer";

	refused("{\"orderId\":\"o\",\"userKey\":1.5}", msg);
	refused("{\"orderId\":\"o\",\"userKey\":1.0}", msg);
	refused("{\"orderId\":\"o\",\"userKey\":1e3}", msg);
	refused("{\"orderId\":\"o\",\"userKey\":-2.5}", msg);
	refused("{\"orderId\":\"o\",\"userKey\":true}", msg);
	refused("{\"orderId\":\"o\",\"userKey\":false}", msg);
	refused("{\"orderId\":\"o\",\"userKey\":null}", msg);
	refused("{\"orderId\":\"o\",\"userKey\":{}}", msg);
	refused("{\"orderId\":\"o\",\"userKey\":[1]}", msg);
}

static void
test_sku(void **state)
{
	struct intake_order	 o;
	char			*s;

	refused("{\"orderId\":\"o\",\"userKey\":\"u\",\"sku\":1}",
	    "sku must be a string or null");
	refused("{\"orderId\":\"o\",\"userKey\":\"u\",\"sku\":\"a\\u001fb\"}",
	    "sku contains control characters");
	s = line_with("sku", 256);
	accepted(s, &o);
	assert_int_equal(strlen(o.sku), 256);
	assert_int_equal(o.has_sku, 1);
	free(s);
	s = line_with("sku", 257);
	refused(s, "sku is longer than 256 bytes");
	free(s);
}

static void
test_ref(void **state)
{
	struct intake_order	 o;
	char			*s;

	refused("{\"orderId\":\"o\",\"userKey\":\"u\",\"ref\":false}",
	    "ref must be a string or null");
	refused("{\"orderId\":\"o\",\"userKey\":\"u\",\"ref\":{\"a\":1}}",
	    "ref must be a string or null");
	refused("{\"orderId\":\"o\",\"userKey\":\"u\",\"ref\":\"a\\tb\"}",
	    "ref contains control characters");
	s = line_with("ref", 1024);
	accepted(s, &o);
	assert_int_equal(strlen(o.ref), 1024);
	free(s);
	s = line_with("ref", 1025);
	refused(s, "ref is longer than 1024 bytes");
	free(s);
}

static void
test_text_too_long(void **state)
{
	struct intake_order	 o;
	char			 err[INTAKE_ERR_MAX];
	char			*s, *pad;

	/* Exactly INTAKE_LINE_MAX bytes is parsed (padding is whitespace). */
	pad = repeat(' ', INTAKE_LINE_MAX - 29);
	s = xasprintf("{\"orderId\":\"o\",\"userKey\":\"u\"}%s", pad);
	assert_int_equal(strlen(s), INTAKE_LINE_MAX);
	accepted(s, &o);
	free(s);
	s = xasprintf("{\"orderId\":\"o\",\"userKey\":\"u\"}%s ", pad);
	assert_int_equal(intake_parse(s, strlen(s), &o, err), -1);
	assert_string_equal(err, "JSON text is longer than 16384 bytes");
	free(s);
	free(pad);
}

static void
test_from_json(void **state)
{
	struct intake_order	 o;
	struct json_object	*obj;
	char			 err[INTAKE_ERR_MAX];

	obj = json_object_new_object();
	json_object_object_add(obj, "orderId", json_object_new_string("o"));
	json_object_object_add(obj, "userKey", json_object_new_int64(42));
	assert_int_equal(intake_from_json(obj, &o, err), 0);
	assert_string_equal(o.user_key, "42");
	/* A string built in C may carry a NUL that text JSON spells \u0000. */
	json_object_object_add(obj, "sku", json_object_new_string_len("a\0b", 3));
	assert_int_equal(intake_from_json(obj, &o, err), -1);
	assert_string_equal(err, "sku contains control characters");
	json_object_put(obj);
}

static void
test_check(void **state)
{
	char	 err[INTAKE_ERR_MAX];
	char	*s;

	assert_int_equal(intake_check("o", "u", NULL, NULL, err), 0);
	assert_string_equal(err, "");
	assert_int_equal(intake_check("o", "u", "sku", "", err), 0);
	assert_int_equal(intake_check("o", "u", "", NULL, err), -1);
	assert_string_equal(err, "sku is empty");
	assert_int_equal(intake_check(NULL, "u", NULL, NULL, err), -1);
	assert_string_equal(err, "missing orderId");
	assert_int_equal(intake_check("o", NULL, NULL, NULL, err), -1);
	assert_string_equal(err, "missing userKey");
	assert_int_equal(intake_check("", "u", NULL, NULL, err), -1);
	assert_string_equal(err, "orderId is empty");
	assert_int_equal(intake_check("o", "", NULL, NULL, err), -1);
	assert_string_equal(err, "userKey is empty");
	assert_int_equal(intake_check("o\x01", "u", NULL, NULL, err), -1);
	assert_string_equal(err, "orderId contains control characters");
	assert_int_equal(intake_check("o", "u\x7f", NULL, NULL, err), -1);
	assert_string_equal(err, "userKey contains control characters");
	assert_int_equal(intake_check("o", "u", "\xc2\x9f", NULL, err), -1);
	assert_string_equal(err, "sku contains control characters");
	assert_int_equal(intake_check("o", "u", NULL, "a\nb", err), -1);
	assert_string_equal(err, "ref contains control characters");

	s = repeat('k', 128);
	assert_int_equal(intake_check("o", s, NULL, NULL, err), 0);
	free(s);
	s = repeat('k', 129);
	assert_int_equal(intake_check("o", s, NULL, NULL, err), -1);
	assert_string_equal(err, "userKey is longer than 128 bytes");
	free(s);
	s = repeat('s', 257);
	assert_int_equal(intake_check("o", "u", s, NULL, err), -1);
	assert_string_equal(err, "sku is longer than 256 bytes");
	free(s);
	s = repeat('r', 1025);
	assert_int_equal(intake_check("o", "u", NULL, s, err), -1);
	assert_string_equal(err, "ref is longer than 1024 bytes");
	free(s);
}

static void
test_check_utf8(void **state)
{
	static const char *const bad[] = {
		"\x80",			/* lone continuation */
		"\xc1\xbf",		/* overlong 2-byte */
		"\xe0\x9f\xbf",		/* overlong 3-byte */
		"\xed\xbf\xbf",		/* surrogate */
		"\xf0\x8f\xbf\xbf",	/* overlong 4-byte */
		"\xf4\x90\x80\x80",	/* past U+10FFFF */
		"\xf5\x80\x80\x80",
		"\xe2\x82",		/* truncated */
		"a\xe2\x82",		/* truncated at the end */
		"\xe2\x28\xa1",		/* bad continuation */
		"\xfe",
	};
	char	 err[INTAKE_ERR_MAX];
	char	 s[4 * 33 + 1];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (intake_check(bad[i], "u", NULL, NULL, err) != -1)
			fail_msg("accepted bad UTF-8 #%zu", i);
		assert_string_equal(err, "orderId is not valid UTF-8");
	}
	/* Invalid UTF-8 is reported even when a control character precedes. */
	assert_int_equal(intake_check("o", "\t\xff", NULL, NULL, err), -1);
	assert_string_equal(err, "userKey is not valid UTF-8");

	assert_int_equal(intake_check("\xc2\xa0\xe0\xa0\x80\xef\xbf\xbf"
	    "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf", "u", NULL, NULL, err), 0);

	/* The limit is in bytes: 32 four-byte characters fit, 33 do not. */
	for (i = 0; i < 33; i++)
		memcpy(s + 4 * i, "\xf0\x9f\x98\x80", 4);
	s[128] = '\0';
	assert_int_equal(intake_check(s, "u", NULL, NULL, err), 0);
	s[128] = '\xf0';
	s[132] = '\0';
	assert_int_equal(intake_check(s, "u", NULL, NULL, err), -1);
	assert_string_equal(err, "orderId is longer than 128 bytes");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_null_optionals),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_escapes_and_unicode),
		cmocka_unit_test(test_invalid_json),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_not_object),
		cmocka_unit_test(test_order_id),
		cmocka_unit_test(test_user_key_string),
		cmocka_unit_test(test_user_key_integer),
		cmocka_unit_test(test_user_key_types),
		cmocka_unit_test(test_sku),
		cmocka_unit_test(test_ref),
		cmocka_unit_test(test_text_too_long),
		cmocka_unit_test(test_from_json),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_check_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
