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

/* Serialises without escaping '/' and without spaces; caller frees. */
char		*json_out_string(struct json_object *);

#endif
