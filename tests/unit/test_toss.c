/* Unit tests for toss.c: the request it builds, how every shape of answer
 * is classified, and the normalisation of statusDeterminedAt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "toss.h"

#define OID	"13c9a1ff-2baa-4495-bbfa-a0826ba8c7c0"
#define SKU	"ait.0000010000.af647449.3bd55cfd00.0000000475"
#define WRAP(inner)	"{\"resultType\":\"SUCCESS\",\"success\":{" inner "}}"
/* A SUCCESS answer about OID. */
#define ANSWER(inner)	WRAP("\"orderId\":\"" OID "\"," inner)

static struct toss_answer	 ans;

static const struct toss_answer *
parse(long code, const char *body)
{
	toss_parse(code, body, body == NULL ? 0 : strlen(body), OID, &ans);
	return &ans;
}

static void
expect(long code, const char *body, enum toss_kind kind, enum toss_perr perr)
{
	parse(code, body);
	if (ans.kind != kind || ans.perr != perr)
		print_error("body %s (HTTP %ld): got %s/%s, want %s/%s\n",
		    body == NULL ? "(null)" : body, code,
		    toss_kind_name(ans.kind), toss_perr_name(ans.perr),
		    toss_kind_name(kind), toss_perr_name(perr));
	assert_int_equal(ans.kind, kind);
	assert_int_equal(ans.perr, perr);
	assert_int_equal(ans.http_code, code);
	if (kind != TOSS_STATUS) {
		assert_string_equal(ans.status, "");
		assert_string_equal(ans.sku, "");
		assert_string_equal(ans.determined_at, "");
	}
}

/* A string of n copies of s. Caller frees. */
static char *
repeat(const char *s, size_t n)
{
	size_t	 len = strlen(s), i;
	char	*out = malloc(len * n + 1);

	assert_non_null(out);
	for (i = 0; i < n; i++)
		memcpy(out + i * len, s, len);
	out[len * n] = '\0';
	return out;
}

/* A SUCCESS body with one extra field "key": value (value is raw JSON). */
static char *
success_with(const char *key, const char *value)
{
	size_t		 size = strlen(key) + strlen(value) + 128;
	char		*out = malloc(size);
	int		 n;

	assert_non_null(out);
	n = snprintf(out, size, WRAP("\"orderId\":\"" OID "\","
	    "\"status\":\"PURCHASED\",\"%s\":%s"), key, value);
	assert_true(n > 0 && (size_t)n < size);
	return out;
}

/* 1 if s is well-formed UTF-8 (the strict definition). */
static int
utf8_ok(const char *str)
{
	const unsigned char	*s = (const unsigned char *)str;

	while (*s != '\0') {
		int	 n;

		if (*s < 0x80)
			n = 0;
		else if ((*s & 0xe0) == 0xc0)
			n = 1;
		else if ((*s & 0xf0) == 0xe0)
			n = 2;
		else if ((*s & 0xf8) == 0xf0)
			n = 3;
		else
			return 0;
		for (s++; n > 0; n--, s++)
			if ((*s & 0xc0) != 0x80)
				return 0;
	}
	return 1;
}

static void
test_request_url(void **state)
{
	struct toss_request	 r;

	assert_int_equal(toss_build_request("https://apps-in-toss-api.toss.im",
	    OID, "443731104", &r), 0);
	assert_string_equal(r.url, "https://apps-in-toss-api.toss.im"
	    "/api-partner/v1/apps-in-toss/order/get-order-status");
	assert_string_equal(r.user_key_header, "x-toss-user-key: 443731104");
	assert_string_equal(r.body, "{\"orderId\":\"" OID "\"}");
	toss_request_free(&r);
	assert_null(r.body);

	assert_int_equal(toss_build_request("https://127.0.0.1:8443/", OID,
	    "1", &r), 0);
	assert_string_equal(r.url, "https://127.0.0.1:8443" TOSS_PATH);
	toss_request_free(&r);

	assert_int_equal(toss_build_request("https://127.0.0.1:8443/base//",
	    OID, "1", &r), 0);
	assert_string_equal(r.url, "https://127.0.0.1:8443/base" TOSS_PATH);
	toss_request_free(&r);

	toss_request_free(NULL);
}

static void
test_request_escaping(void **state)
{
	struct toss_request	 r;
	struct json_object	*o, *v;
	const char		*id = "a\"b\\c/\xed\x95\x9c\xea\xb8\x80\t\x01z";

	assert_int_equal(toss_build_request("https://h", id, "443731104", &r),
	    0);
	assert_string_equal(r.body,
	    "{\"orderId\":\"a\\\"b\\\\c/\xed\x95\x9c\xea\xb8\x80\\t\\u0001z\"}");
	/* And it reads back as the very same id. */
	o = json_tokener_parse(r.body);
	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "orderId", &v));
	assert_string_equal(json_object_get_string(v), id);
	json_object_put(o);
	toss_request_free(&r);
}

static void
test_request_refused(void **state)
{
	struct toss_request	 r;
	char			*longurl, *longkey;

	longurl = repeat("x", TOSS_URL_MAX);
	assert_int_equal(toss_build_request(longurl, OID, "1", &r), -1);
	assert_null(r.body);
	assert_string_equal(r.url, "");
	toss_request_free(&r);
	free(longurl);

	/* Just fits: the URL buffer holds TOSS_URL_MAX - 1 characters. */
	longurl = repeat("x", TOSS_URL_MAX - 1 - strlen(TOSS_PATH));
	assert_int_equal(toss_build_request(longurl, OID, "1", &r), 0);
	assert_int_equal(strlen(r.url), TOSS_URL_MAX - 1);
	toss_request_free(&r);
	free(longurl);

	/* A userKey could otherwise smuggle a header in. */
	assert_int_equal(toss_build_request("https://h", OID,
	    "1\r\nx-evil: 1", &r), -1);
	assert_null(r.body);
	assert_int_equal(toss_build_request("https://h", OID, "1\n", &r), -1);
	assert_int_equal(toss_build_request("https://h", OID, "", &r), -1);
	assert_null(r.body);

	longkey = repeat("7", USER_KEY_MAX + 1);
	assert_int_equal(toss_build_request("https://h", OID, longkey, &r), -1);
	free(longkey);
	longkey = repeat("7", USER_KEY_MAX);
	assert_int_equal(toss_build_request("https://h", OID, longkey, &r), 0);
	assert_int_equal(strlen(r.user_key_header),
	    strlen("x-toss-user-key: ") + USER_KEY_MAX);
	toss_request_free(&r);
	free(longkey);
}

static void
test_success_every_status(void **state)
{
	static const char	*statuses[] = {
		"PURCHASED", "PAYMENT_COMPLETED", "ORDER_IN_PROGRESS",
		"FAILED", "REFUNDED", "NOT_FOUND", "MINIAPP_MISMATCH", "ERROR",
		"SOMETHING_NEW"
	};
	char		 body[512];
	size_t		 i;
	long		 codes[] = { 200, 201, 299 };
	size_t		 c;

	for (c = 0; c < sizeof codes / sizeof codes[0]; c++) {
		for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
			snprintf(body, sizeof body, WRAP("\"orderId\":\"" OID
			    "\",\"status\":\"%s\",\"reason\":\"r\""),
			    statuses[i]);
			expect(codes[c], body, TOSS_STATUS, TOSS_PERR_NONE);
			assert_string_equal(ans.status, statuses[i]);
			assert_string_equal(ans.reason, "r");
			assert_string_equal(ans.sku, "");
			assert_string_equal(ans.determined_at, "");
			assert_string_equal(ans.error_code, "");
		}
	}
}

static void
test_success_payment_completed(void **state)
{
	/* The shape documented today, spaced as in the docs. */
	expect(200, "{\n    \"resultType\": \"SUCCESS\",\n    \"success\": {\n"
	    "        \"orderId\": \"" OID "\",\n"
	    "        \"sku\":\"" SKU "\",\n"
	    "        \"statusDeterminedAt\":\"2025-09-25T16:30:26\",\n"
	    "        \"status\": \"PAYMENT_COMPLETED\",\n"
	    "        \"reason\": \"\xea\xb2\xb0\xec\xa0\x9c\xea\xb0\x80 \xec\x99\x84"
	    "\xeb\xa3\x8c\xeb\x90\x98\xec\x97\x88\xec\x96\xb4\xec\x9a\x94.\"\n"
	    "    }\n}\n", TOSS_STATUS, TOSS_PERR_NONE);
	assert_string_equal(ans.status, "PAYMENT_COMPLETED");
	assert_string_equal(ans.sku, SKU);
	assert_string_equal(ans.determined_at, "2025-09-25T16:30:26+09:00");
	assert_string_equal(ans.reason, "결제가 완료되었어요.");
	assert_int_equal(ans.http_code, 200);
}

static void
test_success_old_purchased(void **state)
{
	/* The old answer quoted in the forum thread, as quoted: no envelope.
	 * Not guessed at: malformed. */
	expect(200, "{\"orderId\":\"1a0c4437-60f3-4258-9132-dcc960aee801\","
	    "\"status\":\"PURCHASED\",\"reason\":\"완료된 주문이에요.\"}",
	    TOSS_MALFORMED, TOSS_PERR_RESULT_TYPE);
	assert_string_equal(ans.reason, "");

	/* The same fields inside the envelope: no sku, no time, fine. */
	toss_parse(200, WRAP("\"orderId\":\"1a0c4437-60f3-4258-9132-"
	    "dcc960aee801\",\"status\":\"PURCHASED\",\"reason\":\"완료된 "
	    "주문이에요.\""), strlen(WRAP("\"orderId\":\"1a0c4437-60f3-4258-"
	    "9132-dcc960aee801\",\"status\":\"PURCHASED\",\"reason\":\"완료된 "
	    "주문이에요.\"")), "1a0c4437-60f3-4258-9132-dcc960aee801", &ans);
	assert_int_equal(ans.kind, TOSS_STATUS);
	assert_int_equal(ans.perr, TOSS_PERR_NONE);
	assert_string_equal(ans.status, "PURCHASED");
	assert_string_equal(ans.sku, "");
	assert_string_equal(ans.determined_at, "");
	assert_string_equal(ans.reason, "완료된 주문이에요.");
}

static void
test_fail_envelope(void **state)
{
	static const char	*body = "{\"resultType\":\"FAIL\",\"error\":"
	    "{\"errorCode\":\"INVALID_PARAMETER\",\"reason\":\"요청에 "
	    "실패했습니다.\"}}";
	long			 codes[] = { 200, 400, 404, 409, 500, 502, 503 };
	size_t			 i;
	char			*code, *big;

	for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		expect(codes[i], body, TOSS_FAIL, TOSS_PERR_NONE);
		assert_string_equal(ans.error_code, "INVALID_PARAMETER");
		assert_string_equal(ans.reason, "요청에 실패했습니다.");
	}

	/* errorCode and reason of the wrong type are dropped, not fatal. */
	expect(400, "{\"resultType\":\"FAIL\",\"error\":{\"errorCode\":7,"
	    "\"reason\":[]}}", TOSS_FAIL, TOSS_PERR_NONE);
	assert_string_equal(ans.error_code, "");
	assert_string_equal(ans.reason, "");
	expect(400, "{\"resultType\":\"FAIL\",\"error\":{}}", TOSS_FAIL,
	    TOSS_PERR_NONE);

	/* A long errorCode is cut to TOSS_ERRCODE_MAX. */
	code = repeat("E", 100);
	big = malloc(strlen(code) + 64);
	assert_non_null(big);
	snprintf(big, strlen(code) + 64,
	    "{\"resultType\":\"FAIL\",\"error\":{\"errorCode\":\"%s\"}}", code);
	expect(400, big, TOSS_FAIL, TOSS_PERR_NONE);
	assert_int_equal(strlen(ans.error_code), TOSS_ERRCODE_MAX);
	assert_memory_equal(ans.error_code, code, TOSS_ERRCODE_MAX);
	free(big);
	free(code);

	/* FAIL without a usable error object. */
	expect(200, "{\"resultType\":\"FAIL\"}", TOSS_MALFORMED,
	    TOSS_PERR_NO_ERROR);
	expect(200, "{\"resultType\":\"FAIL\",\"error\":null}", TOSS_MALFORMED,
	    TOSS_PERR_NO_ERROR);
	expect(200, "{\"resultType\":\"FAIL\",\"error\":\"boom\"}",
	    TOSS_MALFORMED, TOSS_PERR_NO_ERROR);
	expect(400, "{\"resultType\":\"FAIL\",\"error\":[]}", TOSS_HTTP_ERROR,
	    TOSS_PERR_NO_ERROR);
	expect(500, "{\"resultType\":\"FAIL\"}", TOSS_HTTP_ERROR,
	    TOSS_PERR_NO_ERROR);
}

static void
test_http_codes(void **state)
{
	static const char	*ok = WRAP("\"orderId\":\"" OID "\","
	    "\"status\":\"PURCHASED\"");
	static const char	*fail = "{\"resultType\":\"FAIL\",\"error\":"
	    "{\"errorCode\":\"UNAUTHORIZED\"}}";

	/* 429 and 401/403 win whatever the body says. */
	expect(429, NULL, TOSS_RATE_LIMITED, TOSS_PERR_NONE);
	expect(429, ok, TOSS_RATE_LIMITED, TOSS_PERR_NONE);
	expect(429, fail, TOSS_RATE_LIMITED, TOSS_PERR_NONE);
	assert_string_equal(ans.error_code, "");
	expect(429, "<html>slow down</html>", TOSS_RATE_LIMITED,
	    TOSS_PERR_NONE);
	expect(401, "", TOSS_AUTH, TOSS_PERR_NONE);
	expect(401, fail, TOSS_AUTH, TOSS_PERR_NONE);
	expect(403, ok, TOSS_AUTH, TOSS_PERR_NONE);
	expect(403, "<html>forbidden</html>", TOSS_AUTH, TOSS_PERR_NONE);

	/* 5xx: never a verdict, even with a SUCCESS envelope. */
	expect(500, NULL, TOSS_HTTP_ERROR, TOSS_PERR_EMPTY);
	expect(500, "", TOSS_HTTP_ERROR, TOSS_PERR_EMPTY);
	expect(500, ok, TOSS_HTTP_ERROR, TOSS_PERR_NONE);
	expect(500, "Internal Server Error", TOSS_HTTP_ERROR,
	    TOSS_PERR_NOT_JSON);
	expect(503, "{\"message\":\"down\"}", TOSS_HTTP_ERROR,
	    TOSS_PERR_RESULT_TYPE);
	expect(502, "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway"
	    "</title></head><body><center><h1>502 Bad Gateway</h1></center>"
	    "</body></html>\n", TOSS_HTTP_ERROR, TOSS_PERR_HTML);
	expect(504, "  \r\n<html></html>", TOSS_HTTP_ERROR, TOSS_PERR_HTML);

	/* Other non-2xx codes: the same. */
	expect(404, ok, TOSS_HTTP_ERROR, TOSS_PERR_NONE);
	expect(301, ok, TOSS_HTTP_ERROR, TOSS_PERR_NONE);
	expect(400, "", TOSS_HTTP_ERROR, TOSS_PERR_EMPTY);
	expect(0, NULL, TOSS_HTTP_ERROR, TOSS_PERR_EMPTY);
	expect(199, ok, TOSS_HTTP_ERROR, TOSS_PERR_NONE);
	expect(300, ok, TOSS_HTTP_ERROR, TOSS_PERR_NONE);

	/* 2xx with an unusable body: malformed. */
	expect(200, "<html><body>maintenance</body></html>", TOSS_MALFORMED,
	    TOSS_PERR_HTML);
	expect(204, "", TOSS_MALFORMED, TOSS_PERR_EMPTY);
}

static void
test_bodies_not_json(void **state)
{
	static const char	 nul[] = ANSWER("\"status\":\"PURCHASED\"") "\0";
	static const char	 nul2[] = "{\"resultType\":\"SU\0CCESS\"}";

	expect(200, "", TOSS_MALFORMED, TOSS_PERR_EMPTY);
	expect(200, NULL, TOSS_MALFORMED, TOSS_PERR_EMPTY);
	expect(200, " \r\n\t ", TOSS_MALFORMED, TOSS_PERR_EMPTY);

	/* Truncated. */
	expect(200, "{\"resultType\":\"SUCCESS\",\"success\":{\"status\":\"PUR",
	    TOSS_MALFORMED, TOSS_PERR_NOT_JSON);
	expect(200, "{\"resultType\":\"SUCCESS\",\"success\":{\"status\":"
	    "\"PURCHASED\"}", TOSS_MALFORMED, TOSS_PERR_NOT_JSON);
	expect(200, "{", TOSS_MALFORMED, TOSS_PERR_NOT_JSON);

	/* Trailing garbage, a second document; trailing space is fine. */
	expect(200, ANSWER("\"status\":\"PURCHASED\"") "x", TOSS_MALFORMED,
	    TOSS_PERR_NOT_JSON);
	expect(200, ANSWER("\"status\":\"PURCHASED\"") " ,", TOSS_MALFORMED,
	    TOSS_PERR_NOT_JSON);
	expect(200, ANSWER("\"status\":\"PURCHASED\"") "{}", TOSS_MALFORMED,
	    TOSS_PERR_NOT_JSON);
	expect(500, ANSWER("\"status\":\"PURCHASED\"") "}", TOSS_HTTP_ERROR,
	    TOSS_PERR_NOT_JSON);
	expect(200, ANSWER("\"status\":\"PURCHASED\"") " \r\n\t\n", TOSS_STATUS,
	    TOSS_PERR_NONE);
	expect(200, "\n " ANSWER("\"status\":\"PURCHASED\""), TOSS_STATUS,
	    TOSS_PERR_NONE);

	/* A NUL byte anywhere is not JSON (C strings would stop there). */
	toss_parse(200, nul, sizeof nul - 1, OID, &ans);
	assert_int_equal(ans.kind, TOSS_MALFORMED);
	assert_int_equal(ans.perr, TOSS_PERR_NOT_JSON);
	toss_parse(200, nul2, sizeof nul2 - 1, OID, &ans);
	assert_int_equal(ans.kind, TOSS_MALFORMED);
	assert_int_equal(ans.perr, TOSS_PERR_NOT_JSON);

	/* The length is what counts, not a terminating NUL. */
	toss_parse(200, ANSWER("\"status\":\"PURCHASED\"") "garbage",
	    strlen(ANSWER("\"status\":\"PURCHASED\"")), OID, &ans);
	assert_int_equal(ans.kind, TOSS_STATUS);
	toss_parse(200, "{}", 1, OID, &ans);
	assert_int_equal(ans.perr, TOSS_PERR_NOT_JSON);

	/* Not JSON at all, or JSON extensions. */
	expect(200, "OK", TOSS_MALFORMED, TOSS_PERR_NOT_JSON);
	expect(200, "{\"resultType\":\"SUCCESS\",}", TOSS_MALFORMED,
	    TOSS_PERR_NOT_JSON);
	expect(200, "\xef\xbb\xbf" ANSWER("\"status\":\"PURCHASED\""),
	    TOSS_MALFORMED, TOSS_PERR_NOT_JSON);
	expect(200, "{\"resultType\":\"SUCCESS\",\"success\":{\"status\":"
	    "\"PURCHASED\",/* c */\"x\":1}}", TOSS_MALFORMED,
	    TOSS_PERR_NOT_JSON);
}

static void
test_bodies_not_object(void **state)
{
	expect(200, "[]", TOSS_MALFORMED, TOSS_PERR_NOT_OBJECT);
	expect(200, "[" ANSWER("\"status\":\"PURCHASED\"") "]", TOSS_MALFORMED,
	    TOSS_PERR_NOT_OBJECT);
	expect(200, "42", TOSS_MALFORMED, TOSS_PERR_NOT_OBJECT);
	expect(200, "-1.5e3", TOSS_MALFORMED, TOSS_PERR_NOT_OBJECT);
	expect(200, "\"PURCHASED\"", TOSS_MALFORMED, TOSS_PERR_NOT_OBJECT);
	expect(200, "true", TOSS_MALFORMED, TOSS_PERR_NOT_OBJECT);
	expect(200, "null", TOSS_MALFORMED, TOSS_PERR_NOT_OBJECT);
	expect(502, "null", TOSS_HTTP_ERROR, TOSS_PERR_NOT_OBJECT);
}

static void
test_wrong_types(void **state)
{
	static const struct {
		const char	*body;
		enum toss_perr	 perr;
	} t[] = {
		{ "{}", TOSS_PERR_RESULT_TYPE },
		{ "{\"resultType\":null}", TOSS_PERR_RESULT_TYPE },
		{ "{\"resultType\":1}", TOSS_PERR_RESULT_TYPE },
		{ "{\"resultType\":true}", TOSS_PERR_RESULT_TYPE },
		{ "{\"resultType\":[\"SUCCESS\"]}", TOSS_PERR_RESULT_TYPE },
		{ "{\"resultType\":\"success\",\"success\":{\"status\":\"X\"}}",
		    TOSS_PERR_RESULT_TYPE },
		{ "{\"resultType\":\"SUCCESS \",\"success\":{\"status\":\"X\"}}",
		    TOSS_PERR_RESULT_TYPE },
		{ "{\"resultType\":\"\",\"success\":{\"status\":\"X\"}}",
		    TOSS_PERR_RESULT_TYPE },
		{ "{\"resultType\":\"PENDING\"}", TOSS_PERR_RESULT_TYPE },
		{ "{\"resultType\":\"SUCCESS\"}", TOSS_PERR_NO_SUCCESS },
		{ "{\"resultType\":\"SUCCESS\",\"success\":null}",
		    TOSS_PERR_NO_SUCCESS },
		{ "{\"resultType\":\"SUCCESS\",\"success\":\"PURCHASED\"}",
		    TOSS_PERR_NO_SUCCESS },
		{ "{\"resultType\":\"SUCCESS\",\"success\":[{\"status\":"
		    "\"PURCHASED\"}]}", TOSS_PERR_NO_SUCCESS },
		{ "{\"resultType\":\"SUCCESS\",\"status\":\"PURCHASED\"}",
		    TOSS_PERR_NO_SUCCESS },
		{ WRAP(""), TOSS_PERR_NO_STATUS },
		{ ANSWER("\"status\":null"), TOSS_PERR_NO_STATUS },
		{ ANSWER("\"status\":1"), TOSS_PERR_NO_STATUS },
		{ ANSWER("\"status\":true"), TOSS_PERR_NO_STATUS },
		{ ANSWER("\"status\":{}"), TOSS_PERR_NO_STATUS },
		{ ANSWER("\"status\":[\"PURCHASED\"]"), TOSS_PERR_NO_STATUS },
		{ WRAP("\"orderId\":1,\"status\":\"PURCHASED\""),
		    TOSS_PERR_BAD_FIELD },
		{ WRAP("\"orderId\":[\"" OID "\"],\"status\":\"PURCHASED\""),
		    TOSS_PERR_BAD_FIELD },
		{ ANSWER("\"status\":\"PURCHASED\",\"sku\":1"),
		    TOSS_PERR_BAD_FIELD },
		{ ANSWER("\"status\":\"PURCHASED\",\"sku\":{}"),
		    TOSS_PERR_BAD_FIELD },
		{ ANSWER("\"status\":\"PURCHASED\",\"sku\":false"),
		    TOSS_PERR_BAD_FIELD },
		{ ANSWER("\"status\":\"PURCHASED\",\"sku\":\"a\\nb\""),
		    TOSS_PERR_BAD_FIELD },
		{ ANSWER("\"status\":\"PURCHASED\",\"sku\":\"a\\u0000b\""),
		    TOSS_PERR_BAD_FIELD },
		{ ANSWER("\"status\":\"PURCHASED\",\"reason\":1"),
		    TOSS_PERR_BAD_FIELD },
		{ ANSWER("\"status\":\"PURCHASED\",\"reason\":[]"),
		    TOSS_PERR_BAD_FIELD },
		{ ANSWER("\"status\":\"PURCHASED\",\"reason\":{\"ko\":\"x\"}"),
		    TOSS_PERR_BAD_FIELD },
		{ ANSWER("\"status\":\"PURCHASED\",\"statusDeterminedAt\":"
		    "1757663832000"), TOSS_PERR_BAD_TIME },
		{ ANSWER("\"status\":\"PURCHASED\",\"statusDeterminedAt\":[]"),
		    TOSS_PERR_BAD_TIME },
		{ ANSWER("\"status\":\"PURCHASED\",\"statusDeterminedAt\":"
		    "\"yesterday\""), TOSS_PERR_BAD_TIME },
	};
	size_t	 i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		expect(200, t[i].body, TOSS_MALFORMED, t[i].perr);
		assert_string_equal(ans.reason, "");
		expect(500, t[i].body, TOSS_HTTP_ERROR, t[i].perr);
	}

	/* Nulls for optional fields are as good as absent. */
	expect(200, ANSWER("\"status\":\"PURCHASED\","
	    "\"sku\":null,\"reason\":null,\"statusDeterminedAt\":null"),
	    TOSS_STATUS, TOSS_PERR_NONE);
	assert_string_equal(ans.status, "PURCHASED");
	assert_string_equal(ans.sku, "");
	assert_string_equal(ans.reason, "");
	assert_string_equal(ans.determined_at, "");

	/* Unknown fields are ignored; so is another top-level key. */
	expect(200, "{\"traceId\":\"x\",\"resultType\":\"SUCCESS\",\"success\":"
	    "{\"orderId\":\"" OID "\",\"status\":\"PURCHASED\",\"amount\":1000,\"extra\":{\"a\":[1]}}}",
	    TOSS_STATUS, TOSS_PERR_NONE);
}

static void
test_status_values(void **state)
{
	static const struct {
		const char	*json;	/* the status as JSON */
		enum toss_perr	 perr;
	} t[] = {
		{ "\"\"", TOSS_PERR_BAD_STATUS },
		{ "\"PUR\\nCHASED\"", TOSS_PERR_BAD_STATUS },
		{ "\"PURCHASED\\u0000\"", TOSS_PERR_BAD_STATUS },
		{ "\"\\u0000\"", TOSS_PERR_BAD_STATUS },
		{ "\"PURCHASED\\t\"", TOSS_PERR_BAD_STATUS },
		{ "\"PURCHASED\\u007f\"", TOSS_PERR_BAD_STATUS },
		{ "\"PURCHASED\\u001b[31m\"", TOSS_PERR_BAD_STATUS },
		{ "\"PAYMENT COMPLETED\"", TOSS_PERR_BAD_STATUS },
		{ "\" PURCHASED\"", TOSS_PERR_BAD_STATUS },
		{ "\"결제완료\"", TOSS_PERR_BAD_STATUS },
		{ "\"PURCHASED\xc2\xa0\"", TOSS_PERR_BAD_STATUS },
		{ "\"PURCHASED\"", TOSS_PERR_NONE },
		{ "\"payment_completed\"", TOSS_PERR_NONE },
		{ "\"A\"", TOSS_PERR_NONE },
		{ "\"!~\"", TOSS_PERR_NONE },
	};
	char	*body, *s, *q;
	size_t	 i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		body = malloc(strlen(t[i].json) + 128);
		assert_non_null(body);
		snprintf(body, strlen(t[i].json) + 128,
		    ANSWER("\"status\":%s"), t[i].json);
		expect(200, body, t[i].perr == TOSS_PERR_NONE ? TOSS_STATUS :
		    TOSS_MALFORMED, t[i].perr);
		free(body);
	}

	/* STATUS_MAX bytes is the limit. */
	s = repeat("A", STATUS_MAX);
	q = malloc(STATUS_MAX + 3);
	assert_non_null(q);
	snprintf(q, STATUS_MAX + 3, "\"%s\"", s);
	body = malloc(STATUS_MAX + 128);
	assert_non_null(body);
	snprintf(body, STATUS_MAX + 128, ANSWER("\"status\":%s"), q);
	expect(200, body, TOSS_STATUS, TOSS_PERR_NONE);
	assert_string_equal(ans.status, s);
	free(body);
	free(q);
	free(s);

	s = repeat("A", STATUS_MAX + 1);
	body = malloc(STATUS_MAX + 128);
	assert_non_null(body);
	snprintf(body, STATUS_MAX + 128, ANSWER("\"status\":\"%s\""), s);
	expect(200, body, TOSS_MALFORMED, TOSS_PERR_BAD_STATUS);
	free(body);
	free(s);
}

static void
test_order_id(void **state)
{
	/* Another order's answer is never taken for this one. */
	expect(200, WRAP("\"orderId\":\"20e47c63-47e5-4972-a74c-9804fd584648\","
	    "\"status\":\"PAYMENT_COMPLETED\""), TOSS_MALFORMED,
	    TOSS_PERR_ORDER_ID);
	expect(200, WRAP("\"orderId\":\"\",\"status\":\"PURCHASED\""),
	    TOSS_MALFORMED, TOSS_PERR_ORDER_ID);
	expect(200, WRAP("\"orderId\":\"" OID " \",\"status\":\"PURCHASED\""),
	    TOSS_MALFORMED, TOSS_PERR_ORDER_ID);
	expect(200, WRAP("\"orderId\":\"13C9A1FF-2BAA-4495-BBFA-A0826BA8C7C0\","
	    "\"status\":\"PURCHASED\""), TOSS_MALFORMED, TOSS_PERR_ORDER_ID);
	expect(200, WRAP("\"orderId\":\"" OID "\\u0000x\","
	    "\"status\":\"PURCHASED\""), TOSS_MALFORMED, TOSS_PERR_ORDER_ID);
	expect(500, WRAP("\"orderId\":\"x\",\"status\":\"PURCHASED\""),
	    TOSS_HTTP_ERROR, TOSS_PERR_ORDER_ID);

	/* A verdict names its order: absent or null, it could be any. */
	expect(200, WRAP("\"status\":\"PURCHASED\""), TOSS_MALFORMED,
	    TOSS_PERR_NO_ORDER_ID);
	expect(200, WRAP("\"orderId\":null,\"status\":\"PAYMENT_COMPLETED\","
	    "\"sku\":\"" SKU "\""), TOSS_MALFORMED, TOSS_PERR_NO_ORDER_ID);
	expect(500, WRAP("\"status\":\"PURCHASED\""), TOSS_HTTP_ERROR,
	    TOSS_PERR_NO_ORDER_ID);
	/* Only the orderId check is skipped when none was asked about. */
	toss_parse(200, WRAP("\"status\":\"PURCHASED\""),
	    strlen(WRAP("\"status\":\"PURCHASED\"")), NULL, &ans);
	assert_int_equal(ans.kind, TOSS_STATUS);

	/* The same id escaped: the same id. */
	expect(200, WRAP("\"orderId\":\"13c9a1ff\\u002d2baa-4495-bbfa-"
	    "a0826ba8c7c0\",\"status\":\"PURCHASED\""), TOSS_STATUS,
	    TOSS_PERR_NONE);
}

/* A key given twice in any object makes the answer malformed: json-c
 * would keep the last one without a word. */
static void
test_duplicate_keys(void **state)
{
	static const struct {
		const char	*body;
		enum toss_perr	 perr;	/* TOSS_PERR_NONE: a clean answer */
	} t[] = {
		{ WRAP("\"orderId\":\"x\",\"orderId\":\"" OID "\","
		    "\"status\":\"PURCHASED\""), TOSS_PERR_DUP_KEY },
		{ WRAP("\"orderId\":\"" OID "\",\"orderId\":\"" OID "\","
		    "\"status\":\"PURCHASED\""), TOSS_PERR_DUP_KEY },
		{ ANSWER("\"status\":\"FAILED\",\"status\":\"PURCHASED\""),
		    TOSS_PERR_DUP_KEY },
		{ ANSWER("\"status\":\"PURCHASED\",\"sku\":\"a\","
		    "\"sku\":\"b\""), TOSS_PERR_DUP_KEY },
		/* The same key spelled with an escape is the same key. */
		{ ANSWER("\"status\":\"PURCHASED\",\"st\\u0061tus\":"
		    "\"FAILED\""), TOSS_PERR_DUP_KEY },
		{ ANSWER("\"status\":\"PURCHASED\",\"x\":null,\"x\":null"),
		    TOSS_PERR_DUP_KEY },
		/* In an object nested anywhere, and at the top. */
		{ ANSWER("\"status\":\"PURCHASED\",\"extra\":[{\"a\":1,"
		    "\"a\":{\"b\":[1]}}]"), TOSS_PERR_DUP_KEY },
		{ ANSWER("\"status\":\"PURCHASED\",\"extra\":{\"a\":{"
		    "\"b\":1,\"b\":2}}"), TOSS_PERR_DUP_KEY },
		{ "{\"resultType\":\"FAIL\",\"resultType\":\"SUCCESS\","
		    "\"success\":{\"orderId\":\"" OID "\",\"status\":"
		    "\"PURCHASED\"}}", TOSS_PERR_DUP_KEY },
		{ "{\"resultType\":\"SUCCESS\",\"success\":{\"orderId\":\""
		    OID "\",\"status\":\"FAILED\"},\"success\":{\"orderId\":"
		    "\"" OID "\",\"status\":\"PURCHASED\"}}", TOSS_PERR_DUP_KEY },
		{ "{\"resultType\":\"FAIL\",\"error\":{\"errorCode\":\"A\","
		    "\"errorCode\":\"B\"}}", TOSS_PERR_DUP_KEY },
		/* Colons and quotes inside strings are no members. */
		{ ANSWER("\"status\":\"PURCHASED\",\"reason\":\"a:b \\\":\\\\"
		    ":\",\"extra\":{\"k:\":\":\",\"k\":\"\\\"k\\\":\"}"),
		    TOSS_PERR_NONE },
		/* Equal keys in different objects are fine. */
		{ ANSWER("\"status\":\"PURCHASED\",\"extra\":[{\"a\":1},"
		    "{\"a\":1}],\"a\":{\"a\":{\"a\":1}}"), TOSS_PERR_NONE },
	};
	size_t	 i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (t[i].perr == TOSS_PERR_NONE) {
			expect(200, t[i].body, TOSS_STATUS, TOSS_PERR_NONE);
			assert_string_equal(ans.status, "PURCHASED");
			continue;
		}
		expect(200, t[i].body, TOSS_MALFORMED, t[i].perr);
		expect(500, t[i].body, TOSS_HTTP_ERROR, t[i].perr);
	}
}

static void
test_invalid_utf8(void **state)
{
	/* Bytes json-c 0.16 lets through are refused too. */
	static const char	*bad[] = {
		ANSWER("\"status\":\"PURCHASED\",\"reason\":\"\xff\""),
		ANSWER("\"status\":\"PURCHASED\",\"reason\":\"\xea\xb2\""),
		ANSWER("\"status\":\"PURCHASED\",\"reason\":\"\xc0\xaf\""),
		ANSWER("\"status\":\"PURCHASED\",\"reason\":\"\xe0\x80\xaf\""),
		ANSWER("\"status\":\"PURCHASED\",\"reason\":\"\xed\xa0\x80\""),
		ANSWER("\"status\":\"PURCHASED\",\"reason\":\"\xf4\x90\x80\x80\""),
		ANSWER("\"status\":\"PURCHASED\",\"reason\":\"\xf5\x80\x80\x80\""),
		ANSWER("\"status\":\"PURCHASED\",\"reason\":\"\x80\""),
		ANSWER("\"status\":\"PURCHASED\"") "\xc3",
		ANSWER("\"status\":\"PURCHASED\",\"sku\":\"\xfe\""),
	};
	size_t			 i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		expect(200, bad[i], TOSS_MALFORMED, TOSS_PERR_NOT_JSON);
		expect(502, bad[i], TOSS_HTTP_ERROR, TOSS_PERR_NOT_JSON);
	}

	/* Valid 4-byte UTF-8 and escapes (a lone surrogate becomes U+FFFD). */
	expect(200, ANSWER("\"status\":\"PURCHASED\",\"reason\":\"\xf0\x9f\x98\x80"
	    "\\ud83d\\ude00\\ud800\""), TOSS_STATUS, TOSS_PERR_NONE);
	assert_string_equal(ans.reason,
	    "\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xef\xbf\xbd");
}

static void
test_reason_truncated(void **state)
{
	char	*ko, *val, *body;
	size_t	 len;

	/* "가" is 3 bytes: 400 of them (1200 bytes) keep 341 (1023 bytes). */
	ko = repeat("가", 400);
	val = malloc(strlen(ko) + 8);
	assert_non_null(val);
	snprintf(val, strlen(ko) + 8, "\"%s\"", ko);
	body = success_with("reason", val);
	expect(200, body, TOSS_STATUS, TOSS_PERR_NONE);
	len = strlen(ans.reason);
	assert_int_equal(len, 341 * 3);
	assert_memory_equal(ans.reason, ko, len);
	assert_true(utf8_ok(ans.reason));
	free(body);
	free(val);

	/* One ASCII byte first: 1 + 341 * 3 = REASON_MAX exactly. */
	val = malloc(strlen(ko) + 8);
	assert_non_null(val);
	snprintf(val, strlen(ko) + 8, "\"x%s\"", ko);
	body = success_with("reason", val);
	expect(200, body, TOSS_STATUS, TOSS_PERR_NONE);
	assert_int_equal(strlen(ans.reason), REASON_MAX);
	assert_true(utf8_ok(ans.reason));
	free(body);
	free(val);

	/* Two ASCII bytes first: 2 + 340 * 3 = 1022 (the 341st would end
	 * at 1025). */
	val = malloc(strlen(ko) + 8);
	assert_non_null(val);
	snprintf(val, strlen(ko) + 8, "\"xy%s\"", ko);
	body = success_with("reason", val);
	expect(200, body, TOSS_STATUS, TOSS_PERR_NONE);
	assert_int_equal(strlen(ans.reason), 2 + 340 * 3);
	assert_true(utf8_ok(ans.reason));
	free(body);
	free(val);
	free(ko);

	/* 4-byte characters: 256 * 4 = 1024 fits; 257 do not. */
	ko = repeat("\xf0\x9f\x98\x80", 257);
	val = malloc(strlen(ko) + 8);
	assert_non_null(val);
	snprintf(val, strlen(ko) + 8, "\"%s\"", ko);
	body = success_with("reason", val);
	expect(200, body, TOSS_STATUS, TOSS_PERR_NONE);
	assert_int_equal(strlen(ans.reason), 256 * 4);
	assert_true(utf8_ok(ans.reason));
	free(body);
	free(val);
	free(ko);

	/* A huge reason in a FAIL envelope is cut the same way. */
	ko = repeat("요", 2000);
	val = malloc(strlen(ko) + 128);
	assert_non_null(val);
	snprintf(val, strlen(ko) + 128, "{\"resultType\":\"FAIL\",\"error\":"
	    "{\"errorCode\":\"X\",\"reason\":\"%s\"}}", ko);
	expect(500, val, TOSS_FAIL, TOSS_PERR_NONE);
	assert_int_equal(strlen(ans.reason), 341 * 3);
	assert_true(utf8_ok(ans.reason));
	free(val);
	free(ko);

	/* An embedded NUL ends the reason (it is free text, not a verdict). */
	expect(200, ANSWER("\"status\":\"PURCHASED\",\"reason\":\"ab\\u0000cd\""),
	    TOSS_STATUS, TOSS_PERR_NONE);
	assert_string_equal(ans.reason, "ab");
}

static void
test_sku_limits(void **state)
{
	char	*s, *val, *body;

	s = repeat("s", SKU_MAX);
	val = malloc(SKU_MAX + 8);
	assert_non_null(val);
	snprintf(val, SKU_MAX + 8, "\"%s\"", s);
	body = success_with("sku", val);
	expect(200, body, TOSS_STATUS, TOSS_PERR_NONE);
	assert_string_equal(ans.sku, s);
	free(body);
	free(val);
	free(s);

	s = repeat("s", SKU_MAX + 1);
	val = malloc(SKU_MAX + 8);
	assert_non_null(val);
	snprintf(val, SKU_MAX + 8, "\"%s\"", s);
	body = success_with("sku", val);
	expect(200, body, TOSS_MALFORMED, TOSS_PERR_BAD_FIELD);
	free(body);
	free(val);
	free(s);

	expect(200, ANSWER("\"status\":\"PURCHASED\",\"sku\":\"\""), TOSS_STATUS,
	    TOSS_PERR_NONE);
	assert_string_equal(ans.sku, "");
}

static void
test_determined_at_in_answer(void **state)
{
	static const struct {
		const char	*in;	/* raw JSON value */
		const char	*out;	/* NULL: BAD_TIME */
	} t[] = {
		{ "\"2025-09-12T16:57:12\"", "2025-09-12T16:57:12+09:00" },
		{ "\"2025-09-12T16:57:12+09:00\"", "2025-09-12T16:57:12+09:00" },
		{ "\"2025-09-12T07:57:12Z\"", "2025-09-12T07:57:12Z" },
		{ "\"2025-09-12T16:57:12+0900\"", "2025-09-12T16:57:12+09:00" },
		{ "\"2025-09-12T16:57:12.123\"",
		    "2025-09-12T16:57:12.123+09:00" },
		{ "\"\"", "" },
		{ "null", "" },
		{ "\"2025-09-12 16:57:12\"", NULL },
		{ "\"2025-02-29T00:00:00\"", NULL },
		{ "\"2025-09-12T16:57:12+9\"", NULL },
		{ "\"2025-09-12T16:57:12\\u0000\"", NULL },
		{ "\"2025-09-12T16:57:12 \"", NULL },
		{ "20250912", NULL },
	};
	char	*body;
	size_t	 i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		body = success_with("statusDeterminedAt", t[i].in);
		if (t[i].out != NULL) {
			expect(200, body, TOSS_STATUS, TOSS_PERR_NONE);
			assert_string_equal(ans.determined_at, t[i].out);
		} else
			expect(200, body, TOSS_MALFORMED, TOSS_PERR_BAD_TIME);
		free(body);
	}
}

static void
test_normalise_time(void **state)
{
	static const struct {
		const char	*in;
		const char	*out;	/* NULL: refused */
	} t[] = {
		/* Valid. */
		{ "2025-09-12T16:57:12", "2025-09-12T16:57:12+09:00" },
		{ "2025-09-12T16:57:12Z", "2025-09-12T16:57:12Z" },
		{ "2025-09-12T16:57:12+09:00", "2025-09-12T16:57:12+09:00" },
		{ "2025-09-12T16:57:12+0900", "2025-09-12T16:57:12+09:00" },
		{ "2025-09-12T16:57:12-0530", "2025-09-12T16:57:12-05:30" },
		{ "2025-09-12T16:57:12-05:30", "2025-09-12T16:57:12-05:30" },
		{ "2025-09-12T16:57:12+00:00", "2025-09-12T16:57:12+00:00" },
		{ "2025-09-12T16:57:12-00:00", "2025-09-12T16:57:12-00:00" },
		{ "2025-09-12T16:57:12+23:59", "2025-09-12T16:57:12+23:59" },
		{ "2025-09-12T16:57:12.1", "2025-09-12T16:57:12.1+09:00" },
		{ "2025-09-12T16:57:12.123456789",
		    "2025-09-12T16:57:12.123456789+09:00" },
		{ "2025-09-12T16:57:12.123456789Z",
		    "2025-09-12T16:57:12.123456789Z" },
		{ "2025-09-12T16:57:12.123456789+0900",
		    "2025-09-12T16:57:12.123456789+09:00" },
		{ "2025-09-12T16:57:12.000-11:00",
		    "2025-09-12T16:57:12.000-11:00" },
		{ "2024-02-29T00:00:00", "2024-02-29T00:00:00+09:00" },
		{ "2000-02-29T00:00:00", "2000-02-29T00:00:00+09:00" },
		{ "2025-12-31T23:59:59", "2025-12-31T23:59:59+09:00" },
		{ "2025-01-01T00:00:00", "2025-01-01T00:00:00+09:00" },
		{ "2016-12-31T23:59:60Z", "2016-12-31T23:59:60Z" },
		{ "2025-04-30T12:00:00", "2025-04-30T12:00:00+09:00" },
		{ "2025-01-31T12:00:00", "2025-01-31T12:00:00+09:00" },
		/* Invalid. */
		{ "", NULL },
		{ "2025-09-12", NULL },
		{ "2025-09-12T16:57", NULL },
		{ "2025-09-12T16:57:1", NULL },
		{ "2025-09-12t16:57:12", NULL },
		{ "2025-09-12 16:57:12", NULL },
		{ "2025-9-12T16:57:12", NULL },
		{ "25-09-12T16:57:12", NULL },
		{ "20250-09-12T16:57:12", NULL },
		{ "2025/09/12T16:57:12", NULL },
		{ "2025-00-12T16:57:12", NULL },
		{ "2025-13-12T16:57:12", NULL },
		{ "2025-09-00T16:57:12", NULL },
		{ "2025-09-31T16:57:12", NULL },
		{ "2025-04-31T16:57:12", NULL },
		{ "2025-01-32T16:57:12", NULL },
		{ "2025-02-29T16:57:12", NULL },
		{ "1900-02-29T16:57:12", NULL },
		{ "2100-02-29T16:57:12", NULL },
		{ "2024-02-30T16:57:12", NULL },
		{ "2025-09-12T24:00:00", NULL },
		{ "2025-09-12T16:60:12", NULL },
		{ "2025-09-12T16:57:61", NULL },
		{ "2025-09-12T16:57:12.", NULL },
		{ "2025-09-12T16:57:12.1234567890", NULL },
		{ "2025-09-12T16:57:12.12a", NULL },
		{ "2025-09-12T16:57:12z", NULL },
		{ "2025-09-12T16:57:12ZZ", NULL },
		{ "2025-09-12T16:57:12Z ", NULL },
		{ "2025-09-12T16:57:12 ", NULL },
		{ " 2025-09-12T16:57:12", NULL },
		{ "2025-09-12T16:57:12+09", NULL },
		{ "2025-09-12T16:57:12+9:00", NULL },
		{ "2025-09-12T16:57:12+09:0", NULL },
		{ "2025-09-12T16:57:12+090", NULL },
		{ "2025-09-12T16:57:12+09:000", NULL },
		{ "2025-09-12T16:57:12+09000", NULL },
		{ "2025-09-12T16:57:12+24:00", NULL },
		{ "2025-09-12T16:57:12+09:60", NULL },
		{ "2025-09-12T16:57:12+2400", NULL },
		{ "2025-09-12T16:57:12+09:00Z", NULL },
		{ "2025-09-12T16:57:12Z+09:00", NULL },
		{ "2025-09-12T16:57:12*09:00", NULL },
		{ "2025-09-12T16:57:12.+09:00", NULL },
		{ "+2025-09-12T16:57:12", NULL },
		{ "2025-09-12T1a:57:12", NULL },
		{ "2025-09-12T16:57:12\n", NULL },
		{ "１２３４-09-12T16:57:12", NULL },
	};
	char	 out[DETERMINED_MAX];
	size_t	 i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		int	 rv;

		memset(out, 'X', sizeof out);
		out[0] = '\0';
		rv = toss_normalise_time(t[i].in, out);
		if (t[i].out == NULL) {
			if (rv != -1)
				print_error("\"%s\" accepted as \"%s\"\n",
				    t[i].in, out);
			assert_int_equal(rv, -1);
		} else {
			if (rv != 0)
				print_error("\"%s\" refused\n", t[i].in);
			assert_int_equal(rv, 0);
			assert_string_equal(out, t[i].out);
		}
	}
}

static void
test_names(void **state)
{
	assert_string_equal(toss_kind_name(TOSS_STATUS), "status");
	assert_string_equal(toss_kind_name(TOSS_FAIL), "fail");
	assert_string_equal(toss_kind_name(TOSS_MALFORMED), "malformed");
	assert_string_equal(toss_kind_name(TOSS_HTTP_ERROR), "http_error");
	assert_string_equal(toss_kind_name(TOSS_RATE_LIMITED), "rate_limited");
	assert_string_equal(toss_kind_name(TOSS_AUTH), "auth");
	assert_string_equal(toss_kind_name((enum toss_kind)99), "unknown");

	assert_string_equal(toss_perr_name(TOSS_PERR_NONE), "none");
	assert_string_equal(toss_perr_name(TOSS_PERR_EMPTY), "empty");
	assert_string_equal(toss_perr_name(TOSS_PERR_HTML), "html");
	assert_string_equal(toss_perr_name(TOSS_PERR_NOT_JSON), "not_json");
	assert_string_equal(toss_perr_name(TOSS_PERR_NOT_OBJECT), "not_object");
	assert_string_equal(toss_perr_name(TOSS_PERR_RESULT_TYPE),
	    "result_type");
	assert_string_equal(toss_perr_name(TOSS_PERR_NO_SUCCESS), "no_success");
	assert_string_equal(toss_perr_name(TOSS_PERR_NO_STATUS), "no_status");
	assert_string_equal(toss_perr_name(TOSS_PERR_BAD_STATUS), "bad_status");
	assert_string_equal(toss_perr_name(TOSS_PERR_BAD_FIELD), "bad_field");
	assert_string_equal(toss_perr_name(TOSS_PERR_ORDER_ID), "order_id");
	assert_string_equal(toss_perr_name(TOSS_PERR_NO_ORDER_ID),
	    "no_order_id");
	assert_string_equal(toss_perr_name(TOSS_PERR_DUP_KEY),
	    "duplicate_key");
	assert_string_equal(toss_perr_name(TOSS_PERR_BAD_TIME), "bad_time");
	assert_string_equal(toss_perr_name(TOSS_PERR_NO_ERROR), "no_error");
	assert_string_equal(toss_perr_name((enum toss_perr)99), "unknown");
}

/* Each answer is parsed on its own: one cut inside a \u escape (or a
 * surrogate pair) must not change how the next one reads. A reused json-c
 * tokener did (its reset keeps part of the escape state). */
static void
test_answers_independent(void **state)
{
	static const char *const cut[] = {
		"{\"a\":\"\\ud83d\\u", "{\"a\":\"\\ud83d", "{\"a\":\"\\u00",
		"\"\\u12", NULL
	};
	const char	*good = WRAP("\"orderId\":\"" OID "\",\"status\":"
			    "\"PAYMENT_COMPLETED\",\"reason\":\"\\uae00x\"");
	struct toss_answer	 fresh;
	int			 i;

	toss_parse(200, good, strlen(good), OID, &fresh);
	assert_int_equal(fresh.kind, TOSS_STATUS);
	assert_string_equal(fresh.reason, "\xea\xb8\x80x");
	for (i = 0; cut[i] != NULL; i++) {
		expect(200, cut[i], TOSS_MALFORMED, TOSS_PERR_NOT_JSON);
		parse(200, good);
		assert_int_equal(ans.kind, TOSS_STATUS);
		assert_string_equal(ans.status, fresh.status);
		assert_string_equal(ans.reason, fresh.reason);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_url),
		cmocka_unit_test(test_request_escaping),
		cmocka_unit_test(test_request_refused),
		cmocka_unit_test(test_success_every_status),
		cmocka_unit_test(test_success_payment_completed),
		cmocka_unit_test(test_success_old_purchased),
		cmocka_unit_test(test_fail_envelope),
		cmocka_unit_test(test_http_codes),
		cmocka_unit_test(test_bodies_not_json),
		cmocka_unit_test(test_bodies_not_object),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_status_values),
		cmocka_unit_test(test_order_id),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_reason_truncated),
		cmocka_unit_test(test_sku_limits),
		cmocka_unit_test(test_determined_at_in_answer),
		cmocka_unit_test(test_normalise_time),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_answers_independent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
