/* The JSON shapes of docs/DESIGN.md: orders (reconcilectl show/list, the control
 * API) and event payloads (the exact text every sink delivers). */
#ifndef RECONCILED_JSON_OUT_H
#define RECONCILED_JSON_OUT_H

#include <stdint.h>
#include <json-c/json.h>

#include "order.h"

/* The order object: orderId userKey sku ref state tossStatus reason
 * statusDeterminedAt polls errors addedAt updatedAt grantedAt nextPollAt
 * intakeSku skuConfirmed, times RFC 3339 UTC, absent values null. Caller
 * json_object_put()s. */
struct json_object *json_out_order(const struct order *);

/* The event payload for order o (as it is after the change that caused the
 * event): id key type orderId userKey sku ref tossStatus reason
 * statusDeterminedAt at, "granted" for refunds, skuConfirmed, and
 * "intakeSku" for mismatches. Returns a string the caller frees. */
char		*json_out_event(int64_t id, enum event_type, const struct order *o,
		    int refund_after_grant, int64_t at);

/* The console's shapes (GET /v1/attention, /v1/orders/{id}/history):
 * {"tossStatus","count","firstSeen","lastSeen","example","section":
 * "[status]","configLine":"<STATUS> = grant"} for one group of held
 * orders, and {"at","from","to"} for one status change (from null for
 * the first). */
struct json_object *json_out_held(const char *toss_status, int64_t count,
		    int64_t first_seen, int64_t last_seen, const char *example);
struct json_object *json_out_transition(int64_t at, const char *from,
		    const char *to);
/* A time as the order object writes it: RFC 3339 UTC, or null for 0. */
struct json_object *json_out_time(int64_t ms);

/* Serialises without escaping '/' and without spaces; caller frees. */
char		*json_out_string(struct json_object *);

#endif
