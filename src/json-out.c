/* The JSON shapes of docs/DESIGN.md built with json-c: the order object and the
 * event payload every sink delivers, field names and order exactly as
 * documented, absent values as null. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "json-out.h"
#include "log.h"
#include "order.h"
#include "util.h"

static struct json_object *
jobject(void)
{
	struct json_object	*o;

	if ((o = json_object_new_object()) == NULL)
		fatalx("json-c: out of memory");
	return o;
}

/* Adds key: value (NULL value = null). Keys are string constants. */
static void
jadd(struct json_object *obj, const char *key, struct json_object *val)
{
	if (json_object_object_add_ex(obj, key, val,
	    JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT) != 0)
		fatalx("json-c: cannot add \"%s\"", key);
}

static struct json_object *
jstring(const char *s)
{
	struct json_object	*o;

	if ((o = json_object_new_string(s)) == NULL)
		fatalx("json-c: out of memory");
	return o;
}

/* A string, or null for "". */
static struct json_object *
jstring_null(const char *s)
{
	return *s == '\0' ? NULL : jstring(s);
}

static struct json_object *
jint64(int64_t v)
{
	struct json_object	*o;

	if ((o = json_object_new_int64(v)) == NULL)
		fatalx("json-c: out of memory");
	return o;
}

static struct json_object *
jbool(int v)
{
	struct json_object	*o;

	if ((o = json_object_new_boolean(v != 0)) == NULL)
		fatalx("json-c: out of memory");
	return o;
}

/* RFC 3339 UTC, or null for 0. */
static struct json_object *
jtime(int64_t ms)
{
	char	 buf[UTIL_TIME_MAX];

	return ms == 0 ? NULL : jstring(util_fmt_time(ms, buf));
}

struct json_object *
json_out_order(const struct order *o)
{
	struct json_object	*obj = jobject();

	jadd(obj, "orderId", jstring(o->order_id));
	jadd(obj, "userKey", jstring(o->user_key));
	jadd(obj, "sku", jstring_null(o->sku));
	jadd(obj, "ref", o->has_ref ? jstring(o->ref) : NULL);
	jadd(obj, "state", jstring(order_state_name(o->state)));
	jadd(obj, "tossStatus", jstring_null(o->toss_status));
	jadd(obj, "reason", jstring_null(o->reason));
	jadd(obj, "statusDeterminedAt", jstring_null(o->determined_at));
	jadd(obj, "polls", jint64(o->polls));
	jadd(obj, "errors", jint64(o->errors));
	jadd(obj, "addedAt", jtime(o->added_at));
	jadd(obj, "updatedAt", jtime(o->updated_at));
	jadd(obj, "grantedAt", jtime(o->granted_at));
	jadd(obj, "nextPollAt", jtime(o->next_poll_at));
	jadd(obj, "intakeSku", jstring_null(o->intake_sku));
	jadd(obj, "skuConfirmed", jbool(o->sku_confirmed));
	return obj;
}

char *
json_out_event(int64_t id, enum event_type type, const struct order *o,
    int refund_after_grant, int64_t at)
{
	struct json_object	*obj = jobject();
	char			*key, *s;

	key = xasprintf("%s:%s", o->order_id, order_event_name(type));
	jadd(obj, "id", jint64(id));
	jadd(obj, "key", jstring(key));
	jadd(obj, "type", jstring(order_event_name(type)));
	jadd(obj, "orderId", jstring(o->order_id));
	jadd(obj, "userKey", jstring(o->user_key));
	jadd(obj, "sku", jstring_null(o->sku));
	jadd(obj, "ref", o->has_ref ? jstring(o->ref) : NULL);
	jadd(obj, "tossStatus", jstring_null(o->toss_status));
	jadd(obj, "reason", jstring_null(o->reason));
	jadd(obj, "statusDeterminedAt", jstring_null(o->determined_at));
	jadd(obj, "at", jtime(at));
	if (type == EV_REFUND)
		jadd(obj, "granted", jbool(refund_after_grant));
	jadd(obj, "skuConfirmed", jbool(o->sku_confirmed));
	/* What the intake claimed, next to what Toss said (sku). */
	if (type == EV_MISMATCH)
		jadd(obj, "intakeSku", jstring_null(o->intake_sku));
	free(key);
	s = json_out_string(obj);
	json_object_put(obj);
	return s;
}

struct json_object *
json_out_held(const char *toss_status, int64_t count, int64_t first_seen,
    int64_t last_seen, const char *example)
{
	struct json_object	*obj = jobject();
	char			*line;

	jadd(obj, "tossStatus", jstring(toss_status));
	jadd(obj, "count", jint64(count));
	jadd(obj, "firstSeen", jtime(first_seen));
	jadd(obj, "lastSeen", jtime(last_seen));
	jadd(obj, "example", jstring(example));
	jadd(obj, "section", jstring("[status]"));
	/* The line an operator adds to map it (after checking that Toss
	 * means a completed payment: it could as well be "refund"). */
	line = xasprintf("%s = grant", toss_status);
	jadd(obj, "configLine", jstring(line));
	free(line);
	return obj;
}

struct json_object *
json_out_transition(int64_t at, const char *from, const char *to)
{
	struct json_object	*obj = jobject();

	jadd(obj, "at", jtime(at));
	jadd(obj, "from", from != NULL ? jstring(from) : NULL);
	jadd(obj, "to", jstring(to));
	return obj;
}

struct json_object *
json_out_time(int64_t ms)
{
	return jtime(ms);
}

char *
json_out_string(struct json_object *obj)
{
	const char	*s;

	s = json_object_to_json_string_ext(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s == NULL)
		fatalx("json-c: cannot serialise");
	return xstrdup(s);
}
