/* An order as the ledger keeps it: the row, the states it can be in and the
 * events it can cause, with their names. Shared by everything that reads or
 * writes orders; no behaviour lives here. */
#ifndef RECONCILED_ORDER_H
#define RECONCILED_ORDER_H

#include <stdint.h>

#define ORDER_ID_MAX	128
#define USER_KEY_MAX	128
#define SKU_MAX		256
#define REF_MAX		1024
#define STATUS_MAX	64
#define REASON_MAX	1024
#define DETERMINED_MAX	40

enum order_state {
	ST_PENDING,
	ST_GRANTED,
	ST_REFUNDED,
	ST_FAILED,
	ST_NOT_FOUND,
	ST_MISMATCH,
	ST_EXPIRED,
	ST_HELD,
	ST__COUNT
};

enum event_type {
	EV_NONE,
	EV_GRANT,
	EV_REFUND,
	EV_FAILED,
	EV_NOT_FOUND,
	EV_MISMATCH,
	EV_EXPIRED,
	EV_HELD,
	EV_ANOMALY,
	EV__COUNT
};

/* One row of `orders`. Empty strings stand for NULL text, 0 for NULL times
 * (times are unix ms, UTC). */
struct order {
	char		 order_id[ORDER_ID_MAX + 1];
	char		 user_key[USER_KEY_MAX + 1];
	char		 sku[SKU_MAX + 1];	/* Toss's once it named one */
	char		 ref[REF_MAX + 1];
	int		 has_ref;	/* ref may legitimately be "" */
	enum order_state state;
	char		 toss_status[STATUS_MAX + 1];	/* verbatim, known or not */
	char		 reason[REASON_MAX + 1];
	char		 determined_at[DETERMINED_MAX];	/* RFC 3339 with offset */
	int64_t		 polls;		/* answers received */
	int64_t		 errors;	/* attempts that got no usable answer */
	int64_t		 added_at;
	int64_t		 updated_at;
	int64_t		 granted_at;
	int64_t		 next_poll_at;	/* 0 = nothing left to do */
	char		 intake_sku[SKU_MAX + 1];	/* as given at intake */
	int		 sku_confirmed;	/* sku is one Toss named */
	int64_t		 late_answers;	/* answers since a time limit passed */
};

const char	*order_state_name(enum order_state);
/* 0 and *st set when s names a state, -1 otherwise. */
int		 order_state_parse(const char *s, enum order_state *st);
const char	*order_event_name(enum event_type);

#endif
