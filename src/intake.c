/* Validation of orders handed to the daemon: the one set of rules shared by
 * `reconcilectl add`, `reconcilectl import` and POST /v1/orders, with
 * messages a caller can act on. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "intake.h"
#include "util.h"

#define SCAN_BAD_UTF8	0x1
#define SCAN_CONTROL	0x2

/* Walks s once: SCAN_BAD_UTF8 unless it is well-formed UTF-8 (RFC 3629: no
 * overlongs, surrogates or code points past U+10FFFF), SCAN_CONTROL if it
 * holds a C0 or C1 control character or DEL. */
static int
intake_scan(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n, k;
	unsigned char		 c, lo, hi;
	int			 flags = 0;

	while (i < len) {
		c = p[i];
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				flags |= SCAN_CONTROL;
			i++;
			continue;
		}
		lo = 0x80;
		hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;	/* overlong */
			else if (c == 0xed)
				hi = 0x9f;	/* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;	/* overlong */
			else if (c == 0xf4)
				hi = 0x8f;	/* past U+10FFFF */
		} else
			return flags | SCAN_BAD_UTF8;
		if (len - i <= n)
			return flags | SCAN_BAD_UTF8;
		if (p[i + 1] < lo || p[i + 1] > hi)
			return flags | SCAN_BAD_UTF8;
		for (k = 2; k <= n; k++) {
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return flags | SCAN_BAD_UTF8;
		}
		if (c == 0xc2 && p[i + 1] <= 0x9f)
			flags |= SCAN_CONTROL;	/* C1: U+0080..U+009F */
		i += n + 1;
	}
	return flags;
}

/* Checks one text field against its byte limit; empty_ok allows "". */
static int
intake_field(const char *name, const char *s, size_t len, size_t max,
    int empty_ok, char err[INTAKE_ERR_MAX])
{
	int	 flags;

	if (len == 0 && !empty_ok) {
		snprintf(err, INTAKE_ERR_MAX, "%s is empty", name);
		return -1;
	}
	if (len > max) {
		snprintf(err, INTAKE_ERR_MAX, "%s is longer than %zu bytes",
		    name, max);
		return -1;
	}
	flags = intake_scan(s, len);
	if (flags & SCAN_BAD_UTF8) {
		snprintf(err, INTAKE_ERR_MAX, "%s is not valid UTF-8", name);
		return -1;
	}
	if (flags & SCAN_CONTROL) {
		snprintf(err, INTAKE_ERR_MAX, "%s contains control characters",
		    name);
		return -1;
	}
	return 0;
}

int
intake_check(const char *order_id, const char *user_key, const char *sku,
    const char *ref, char err[INTAKE_ERR_MAX])
{
	err[0] = '\0';
	if (order_id == NULL) {
		util_strlcpy(err, "missing orderId", INTAKE_ERR_MAX);
		return -1;
	}
	if (intake_field("orderId", order_id, strlen(order_id), ORDER_ID_MAX,
	    0, err) == -1)
		return -1;
	if (user_key == NULL) {
		util_strlcpy(err, "missing userKey", INTAKE_ERR_MAX);
		return -1;
	}
	if (intake_field("userKey", user_key, strlen(user_key), USER_KEY_MAX,
	    0, err) == -1)
		return -1;
	if (sku != NULL && intake_field("sku", sku, strlen(sku), SKU_MAX, 0,
	    err) == -1)
		return -1;
	if (ref != NULL && intake_field("ref", ref, strlen(ref), REF_MAX, 1,
	    err) == -1)
		return -1;
	return 0;
}

/* Copies a checked string member into dst[max + 1]. The length comes from
 * json-c, so an embedded NUL ("\u0000") is seen and refused as a control
 * character rather than silently cutting the value short. */
static int
intake_string(struct json_object *v, const char *name, char *dst, size_t max,
    int empty_ok, char err[INTAKE_ERR_MAX])
{
	const char	*s = json_object_get_string(v);
	size_t		 len = (size_t)json_object_get_string_len(v);

	if (intake_field(name, s, len, max, empty_ok, err) == -1)
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 0;
}

/* An integer userKey becomes its decimal text. json-c saturates integers it
 * cannot hold at INT64_MIN and UINT64_MAX, so UINT64_MAX itself is refused:
 * it cannot be told apart from a larger number that was clamped. */
static int
intake_user_key_int(struct json_object *v, char *dst, char err[INTAKE_ERR_MAX])
{
	uint64_t	 u;

	if (json_object_get_int64(v) < 0) {
		util_strlcpy(err, "userKey must not be negative",
		    INTAKE_ERR_MAX);
		return -1;
	}
	u = json_object_get_uint64(v);
	if (u == UINT64_MAX) {
		util_strlcpy(err, "userKey is too large for an integer "
		    "(send it as a string)", INTAKE_ERR_MAX);
		return -1;
	}
	snprintf(dst, USER_KEY_MAX + 1, "%" PRIu64, u);
	return 0;
}

int
intake_from_json(struct json_object *obj, struct intake_order *out,
    char err[INTAKE_ERR_MAX])
{
	struct json_object	*v;

	err[0] = '\0';
	memset(out, 0, sizeof(*out));
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		util_strlcpy(err, "not a JSON object", INTAKE_ERR_MAX);
		return -1;
	}

	if (!json_object_object_get_ex(obj, "orderId", &v)) {
		util_strlcpy(err, "missing orderId", INTAKE_ERR_MAX);
		return -1;
	}
	if (!json_object_is_type(v, json_type_string)) {
		util_strlcpy(err, "orderId must be a string", INTAKE_ERR_MAX);
		return -1;
	}
	if (intake_string(v, "orderId", out->order_id, ORDER_ID_MAX, 0,
	    err) == -1)
		return -1;

	if (!json_object_object_get_ex(obj, "userKey", &v)) {
		util_strlcpy(err, "missing userKey", INTAKE_ERR_MAX);
		return -1;
	}
	if (json_object_is_type(v, json_type_string)) {
		if (intake_string(v, "userKey", out->user_key, USER_KEY_MAX, 0,
		    err) == -1)
			return -1;
	} else if (json_object_is_type(v, json_type_int)) {
		if (intake_user_key_int(v, out->user_key, err) == -1)
			return -1;
	} else {
		util_strlcpy(err, "userKey must be a string or an integer",
		    INTAKE_ERR_MAX);
		return -1;
	}

	if (json_object_object_get_ex(obj, "sku", &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_string)) {
			util_strlcpy(err, "sku must be a string or null",
			    INTAKE_ERR_MAX);
			return -1;
		}
		if (intake_string(v, "sku", out->sku, SKU_MAX, 0, err) == -1)
			return -1;
		out->has_sku = 1;
	}

	if (json_object_object_get_ex(obj, "ref", &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_string)) {
			util_strlcpy(err, "ref must be a string or null",
			    INTAKE_ERR_MAX);
			return -1;
		}
		if (intake_string(v, "ref", out->ref, REF_MAX, 1, err) == -1)
			return -1;
		out->has_ref = 1;
	}
	return 0;
}

/* The whole text must be one JSON value (surrounding whitespace allowed).
 * A text over INTAKE_LINE_MAX bytes is refused before parsing. */
int
intake_parse(const char *text, size_t len, struct intake_order *out,
    char err[INTAKE_ERR_MAX])
{
	struct json_tokener	*tok;
	struct json_object	*obj;
	enum json_tokener_error	 jerr;
	int			 rv;

	err[0] = '\0';
	memset(out, 0, sizeof(*out));
	if (len > INTAKE_LINE_MAX) {
		snprintf(err, INTAKE_ERR_MAX, "JSON text is longer than %d "
		    "bytes", INTAKE_LINE_MAX);
		return -1;
	}
	/* json-c would stop at a NUL and call what came before complete. */
	if (memchr(text, '\0', len) != NULL) {
		util_strlcpy(err, "invalid JSON", INTAKE_ERR_MAX);
		return -1;
	}

	if ((tok = json_tokener_new()) == NULL) {
		util_strlcpy(err, "out of memory", INTAKE_ERR_MAX);
		return -1;
	}
	json_tokener_set_flags(tok,
	    JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	if (obj == NULL && jerr == json_tokener_continue) {
		/* A bare number (or nothing) waits for more: end the input. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
	} else if (obj != NULL && json_tokener_get_parse_end(tok) != len) {
		json_object_put(obj);
		obj = NULL;
		jerr = json_tokener_error_parse_unexpected;
	}
	json_tokener_free(tok);

	if (obj == NULL) {
		/* Success without an object: the text was "null". */
		if (jerr == json_tokener_success)
			util_strlcpy(err, "not a JSON object", INTAKE_ERR_MAX);
		else if (jerr == json_tokener_error_parse_utf8_string)
			util_strlcpy(err, "invalid UTF-8", INTAKE_ERR_MAX);
		else
			util_strlcpy(err, "invalid JSON", INTAKE_ERR_MAX);
		return -1;
	}
	rv = intake_from_json(obj, out, err);
	json_object_put(obj);
	return rv;
}
