/* Toss's order-status API: builds the request for one order and classifies
 * whatever came back into a struct toss_answer. Pure: no I/O, no clock, every
 * field of the answer treated as possibly missing or of the wrong type. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "log.h"
#include "toss.h"
#include "util.h"

static int
toss_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* 1 if s[len] is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF). json-c's own check is laxer. */
static int
toss_utf8_valid(const unsigned char *s, size_t len)
{
	size_t		 i = 0, n, k;
	unsigned int	 cp, min;

	while (i < len) {
		unsigned char	 c = s[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (len - i - 1 < n)
			return 0;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* Copies the UTF-8 string s[len] into dst[size], cut at the first NUL and,
 * when too long, on a character boundary. */
static void
toss_copy_utf8(char *dst, size_t size, const char *s, size_t len)
{
	size_t	 n;

	n = strnlen(s, len);
	if (n > size - 1) {
		n = size - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

int
toss_build_request(const char *base_url, const char *order_id,
    const char *user_key, struct toss_request *out)
{
	struct json_object	*obj, *id;
	const char		*json;
	size_t			 blen;
	int			 n;

	memset(out, 0, sizeof *out);

	/* The key goes into a header: no CR/LF (or any control) smuggling. */
	if (*user_key == '\0' || strlen(user_key) > USER_KEY_MAX ||
	    util_has_control(user_key, strlen(user_key)))
		return -1;

	blen = strlen(base_url);
	while (blen > 0 && base_url[blen - 1] == '/')
		blen--;
	if (blen > INT_MAX)
		return -1;
	n = snprintf(out->url, sizeof out->url, "%.*s%s", (int)blen, base_url,
	    TOSS_PATH);
	if (n < 0 || (size_t)n >= sizeof out->url) {
		out->url[0] = '\0';
		return -1;
	}

	n = snprintf(out->user_key_header, sizeof out->user_key_header,
	    "x-toss-user-key: %s", user_key);
	if (n < 0 || (size_t)n >= sizeof out->user_key_header) {
		memset(out, 0, sizeof *out);
		return -1;
	}

	if ((obj = json_object_new_object()) == NULL ||
	    (id = json_object_new_string(order_id)) == NULL)
		fatalx("%s: out of memory", __func__);
	if (json_object_object_add(obj, "orderId", id) != 0)
		fatalx("%s: out of memory", __func__);
	if ((json = json_object_to_json_string_ext(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) == NULL)
		fatalx("%s: out of memory", __func__);
	out->body = xstrdup(json);
	json_object_put(obj);
	return 0;
}

void
toss_request_free(struct toss_request *req)
{
	if (req == NULL)
		return;
	free(req->body);
	req->body = NULL;
}

/* obj[key] when present and not null, else NULL. */
static struct json_object *
toss_field(struct json_object *obj, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(obj, key, &v))
		return NULL;
	return v;
}

/* Reads the "success" object into out. Returns TOSS_PERR_NONE or why the
 * answer cannot be used. */
static enum toss_perr
toss_parse_success(struct json_object *success, const char *order_id,
    struct toss_answer *out)
{
	struct json_object	*v;
	const char		*s;
	size_t			 len, i;

	if ((v = toss_field(success, "orderId")) != NULL) {
		if (!json_object_is_type(v, json_type_string))
			return TOSS_PERR_BAD_FIELD;
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if (order_id != NULL &&
		    (len != strlen(order_id) || memcmp(s, order_id, len) != 0))
			return TOSS_PERR_ORDER_ID;
	}

	if ((v = toss_field(success, "status")) == NULL ||
	    !json_object_is_type(v, json_type_string))
		return TOSS_PERR_NO_STATUS;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len == 0 || len > STATUS_MAX)
		return TOSS_PERR_BAD_STATUS;
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return TOSS_PERR_BAD_STATUS;
	}
	memcpy(out->status, s, len);
	out->status[len] = '\0';

	if ((v = toss_field(success, "sku")) != NULL) {
		if (!json_object_is_type(v, json_type_string))
			return TOSS_PERR_BAD_FIELD;
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if (len > SKU_MAX || util_has_control(s, len))
			return TOSS_PERR_BAD_FIELD;
		memcpy(out->sku, s, len);
		out->sku[len] = '\0';
	}

	if ((v = toss_field(success, "reason")) != NULL) {
		if (!json_object_is_type(v, json_type_string))
			return TOSS_PERR_BAD_FIELD;
		toss_copy_utf8(out->reason, sizeof out->reason,
		    json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
	}

	/* An empty string is taken as absent, like null. */
	if ((v = toss_field(success, "statusDeterminedAt")) != NULL) {
		if (!json_object_is_type(v, json_type_string))
			return TOSS_PERR_BAD_TIME;
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if (len != 0 && (strlen(s) != len ||
		    toss_normalise_time(s, out->determined_at) != 0))
			return TOSS_PERR_BAD_TIME;
	}

	/* A verdict must say which order it is about: an answer naming
	 * none could be about any (checked last, so that the other faults
	 * of a body keep their own names). */
	if (order_id != NULL && toss_field(success, "orderId") == NULL)
		return TOSS_PERR_NO_ORDER_ID;
	return TOSS_PERR_NONE;
}

/* The number of members of every object in the tree under obj, as json-c
 * kept them (a key given twice is kept once). */
static size_t
toss_members(struct json_object *obj)
{
	size_t	 n = 0, i, len;

	switch (json_object_get_type(obj)) {
	case json_type_object: {
		json_object_object_foreach(obj, key, val) {
			(void)key;
			n += 1 + toss_members(val);
		}
		break;
	}
	case json_type_array:
		len = json_object_array_length(obj);
		for (i = 0; i < len; i++)
			n += toss_members(json_object_array_get_idx(obj, i));
		break;
	default:
		break;
	}
	return n;
}

/* The number of name separators (':' outside strings) in the JSON text
 * s[len]: one per member of every object, duplicates included. s must be
 * text the strict tokener accepted (no comments). */
static size_t
toss_separators(const char *s, size_t len)
{
	size_t	 i, n = 0;
	int	 in_string = 0;

	for (i = 0; i < len; i++) {
		if (in_string) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in_string = 0;
		} else if (s[i] == '"')
			in_string = 1;
		else if (s[i] == ':')
			n++;
	}
	return n;
}

/* Reads a FAIL envelope's "error" object into out (errorCode, reason). */
static void
toss_parse_fail(struct json_object *error, struct toss_answer *out)
{
	struct json_object	*v;

	if ((v = toss_field(error, "errorCode")) != NULL &&
	    json_object_is_type(v, json_type_string))
		toss_copy_utf8(out->error_code, sizeof out->error_code,
		    json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
	if ((v = toss_field(error, "reason")) != NULL &&
	    json_object_is_type(v, json_type_string))
		toss_copy_utf8(out->reason, sizeof out->reason,
		    json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
}

/* Parses body[len] into out. Returns TOSS_STATUS, TOSS_FAIL, or
 * TOSS_MALFORMED with out->perr saying why. */
static enum toss_kind
toss_parse_body(const char *body, size_t len, const char *order_id,
    struct toss_answer *out)
{
	struct json_tokener	*tok;
	struct json_object	*root, *v;
	enum toss_kind		 kind = TOSS_MALFORMED;
	const char		*rt;
	size_t			 i, end;
	int			 parsed;

	if (body == NULL)
		len = 0;
	for (i = 0; i < len && toss_is_space((unsigned char)body[i]); i++)
		;
	if (i == len) {
		out->perr = TOSS_PERR_EMPTY;
		return TOSS_MALFORMED;
	}
	if (body[i] == '<') {
		out->perr = TOSS_PERR_HTML;
		return TOSS_MALFORMED;
	}
	if (len >= INT_MAX || memchr(body, '\0', len) != NULL ||
	    !toss_utf8_valid((const unsigned char *)body, len)) {
		out->perr = TOSS_PERR_NOT_JSON;
		return TOSS_MALFORMED;
	}

	/* A tokener of its own for every answer: json_tokener_reset() leaves
	 * part of the \u escape state behind (json-c 0.16), so a reused one
	 * let an answer cut inside a surrogate pair change the text of the
	 * next answer (the fuzzer found it; test_toss keeps the case). */
	if ((tok = json_tokener_new()) == NULL)
		fatalx("%s: out of memory", __func__);
	json_tokener_set_flags(tok,
	    JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, body, (int)len);
	end = json_tokener_get_parse_end(tok);
	/* A bare number or literal needs to see the input end: a NUL does
	 * that, fed as one more chunk instead of copying the body. Then
	 * the whole body was read. */
	if (root == NULL &&
	    json_tokener_get_error(tok) == json_tokener_continue) {
		root = json_tokener_parse_ex(tok, "", 1);
		end = len;
	}
	parsed = json_tokener_get_error(tok) == json_tokener_success;
	if (parsed) {
		for (; end < len && toss_is_space((unsigned char)body[end]);
		    end++)
			;
		parsed = end == len;
	}
	json_tokener_free(tok);
	if (!parsed) {
		json_object_put(root);
		out->perr = TOSS_PERR_NOT_JSON;
		return TOSS_MALFORMED;
	}

	/* json-c keeps the last of two equal keys without a word, and has
	 * no flag to refuse them: every member it dropped is one fewer in
	 * the tree than in the text. Keys are compared as json-c decoded
	 * them, so "orderId" and "order\u0049d" are the same key. */
	if (toss_separators(body, len) != toss_members(root)) {
		out->perr = TOSS_PERR_DUP_KEY;
		goto done;
	}

	/* A JSON null comes back as a NULL object. */
	if (root == NULL || !json_object_is_type(root, json_type_object)) {
		out->perr = TOSS_PERR_NOT_OBJECT;
		goto done;
	}
	if ((v = toss_field(root, "resultType")) == NULL ||
	    !json_object_is_type(v, json_type_string)) {
		out->perr = TOSS_PERR_RESULT_TYPE;
		goto done;
	}
	rt = json_object_get_string(v);
	if (strcmp(rt, "SUCCESS") == 0) {
		if ((v = toss_field(root, "success")) == NULL ||
		    !json_object_is_type(v, json_type_object))
			out->perr = TOSS_PERR_NO_SUCCESS;
		else if ((out->perr = toss_parse_success(v, order_id, out)) ==
		    TOSS_PERR_NONE)
			kind = TOSS_STATUS;
	} else if (strcmp(rt, "FAIL") == 0) {
		if ((v = toss_field(root, "error")) == NULL ||
		    !json_object_is_type(v, json_type_object))
			out->perr = TOSS_PERR_NO_ERROR;
		else {
			toss_parse_fail(v, out);
			kind = TOSS_FAIL;
		}
	} else
		out->perr = TOSS_PERR_RESULT_TYPE;
done:
	json_object_put(root);
	return kind;
}

void
toss_parse(long http_code, const char *body, size_t len, const char *order_id,
    struct toss_answer *out)
{
	struct toss_answer	 a;
	enum toss_kind		 kind;
	int			 ok;

	memset(out, 0, sizeof *out);
	out->http_code = http_code;
	if (http_code == 429) {
		out->kind = TOSS_RATE_LIMITED;
		return;
	}
	if (http_code == 401 || http_code == 403) {
		out->kind = TOSS_AUTH;
		return;
	}

	memset(&a, 0, sizeof a);
	kind = toss_parse_body(body, len, order_id, &a);
	ok = http_code >= 200 && http_code <= 299;
	if (kind == TOSS_STATUS && ok) {
		*out = a;
		out->kind = TOSS_STATUS;
		out->http_code = http_code;
	} else if (kind == TOSS_FAIL) {
		out->kind = TOSS_FAIL;
		memcpy(out->error_code, a.error_code, sizeof out->error_code);
		memcpy(out->reason, a.reason, sizeof out->reason);
	} else {
		/* A SUCCESS envelope under a non-2xx code is no verdict. */
		out->kind = ok ? TOSS_MALFORMED : TOSS_HTTP_ERROR;
		out->perr = a.perr;
	}
}

/* Reads exactly n decimal digits at *pp into *v and advances *pp. */
static int
toss_digits(const char **pp, int n, int *v)
{
	const char	*p = *pp;
	int		 i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		*v = *v * 10 + (p[i] - '0');
	}
	*pp = p + n;
	return 0;
}

static int
toss_expect(const char **pp, char c)
{
	if (**pp != c)
		return -1;
	(*pp)++;
	return 0;
}

int
toss_normalise_time(const char *in, char *out)
{
	static const int	 mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	const char		*p = in;
	int			 y, mo, d, h, mi, s, oh, om, leap, max, n;
	size_t			 stem;
	char			 sign;

	if (toss_digits(&p, 4, &y) != 0 || toss_expect(&p, '-') != 0 ||
	    toss_digits(&p, 2, &mo) != 0 || toss_expect(&p, '-') != 0 ||
	    toss_digits(&p, 2, &d) != 0 || toss_expect(&p, 'T') != 0 ||
	    toss_digits(&p, 2, &h) != 0 || toss_expect(&p, ':') != 0 ||
	    toss_digits(&p, 2, &mi) != 0 || toss_expect(&p, ':') != 0 ||
	    toss_digits(&p, 2, &s) != 0)
		return -1;
	if (mo < 1 || mo > 12 || h > 23 || mi > 59 || s > 60)
		return -1;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	max = mdays[mo - 1] + (mo == 2 && leap);
	if (d < 1 || d > max)
		return -1;
	if (*p == '.') {
		for (n = 0, p++; *p >= '0' && *p <= '9'; p++)
			n++;
		if (n < 1 || n > 9)
			return -1;
	}
	stem = (size_t)(p - in);

	if (*p == '\0')
		n = snprintf(out, DETERMINED_MAX, "%.*s+09:00", (int)stem, in);
	else if (p[0] == 'Z' && p[1] == '\0')
		n = snprintf(out, DETERMINED_MAX, "%.*sZ", (int)stem, in);
	else if (*p == '+' || *p == '-') {
		sign = *p++;
		if (toss_digits(&p, 2, &oh) != 0)
			return -1;
		if (*p == ':')
			p++;
		if (toss_digits(&p, 2, &om) != 0 || *p != '\0' ||
		    oh > 23 || om > 59)
			return -1;
		n = snprintf(out, DETERMINED_MAX, "%.*s%c%02d:%02d", (int)stem,
		    in, sign, oh, om);
	} else
		return -1;
	if (n < 0 || n >= DETERMINED_MAX)
		return -1;
	return 0;
}

const char *
toss_kind_name(enum toss_kind kind)
{
	switch (kind) {
	case TOSS_STATUS:
		return "status";
	case TOSS_FAIL:
		return "fail";
	case TOSS_MALFORMED:
		return "malformed";
	case TOSS_HTTP_ERROR:
		return "http_error";
	case TOSS_RATE_LIMITED:
		return "rate_limited";
	case TOSS_AUTH:
		return "auth";
	}
	return "unknown";
}

const char *
toss_perr_name(enum toss_perr perr)
{
	switch (perr) {
	case TOSS_PERR_NONE:
		return "none";
	case TOSS_PERR_EMPTY:
		return "empty";
	case TOSS_PERR_HTML:
		return "html";
	case TOSS_PERR_NOT_JSON:
		return "not_json";
	case TOSS_PERR_NOT_OBJECT:
		return "not_object";
	case TOSS_PERR_RESULT_TYPE:
		return "result_type";
	case TOSS_PERR_NO_SUCCESS:
		return "no_success";
	case TOSS_PERR_NO_STATUS:
		return "no_status";
	case TOSS_PERR_BAD_STATUS:
		return "bad_status";
	case TOSS_PERR_BAD_FIELD:
		return "bad_field";
	case TOSS_PERR_ORDER_ID:
		return "order_id";
	case TOSS_PERR_NO_ORDER_ID:
		return "no_order_id";
	case TOSS_PERR_DUP_KEY:
		return "duplicate_key";
	case TOSS_PERR_BAD_TIME:
		return "bad_time";
	case TOSS_PERR_NO_ERROR:
		return "no_error";
	}
	return "unknown";
}
