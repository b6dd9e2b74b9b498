/* The names of order states and event types: the words the ledger stores,
 * the JSON carries and the command line accepts. */
#include <string.h>

#include "order.h"

static const char *const state_names[ST__COUNT] = {
	[ST_PENDING] = "pending",
	[ST_GRANTED] = "granted",
	[ST_REFUNDED] = "refunded",
	[ST_FAILED] = "failed",
	[ST_NOT_FOUND] = "not_found",
	[ST_MISMATCH] = "mismatch",
	[ST_EXPIRED] = "expired",
	[ST_HELD] = "held",
};

static const char *const event_names[EV__COUNT] = {
	[EV_NONE] = "none",
	[EV_GRANT] = "grant",
	[EV_REFUND] = "refund",
	[EV_FAILED] = "failed",
	[EV_NOT_FOUND] = "not_found",
	[EV_MISMATCH] = "mismatch",
	[EV_EXPIRED] = "expired",
	[EV_HELD] = "held",
	[EV_ANOMALY] = "anomaly",
};

const char *
order_state_name(enum order_state st)
{
	if ((int)st < 0 || st >= ST__COUNT)
		return "unknown";
	return state_names[st];
}

int
order_state_parse(const char *s, enum order_state *st)
{
	int	 i;

	if (s == NULL)
		return -1;
	for (i = 0; i < ST__COUNT; i++) {
		if (strcmp(s, state_names[i]) == 0) {
			*st = (enum order_state)i;
			return 0;
		}
	}
	return -1;
}

const char *
order_event_name(enum event_type ev)
{
	if ((int)ev < 0 || ev >= EV__COUNT)
		return "unknown";
	return event_names[ev];
}
