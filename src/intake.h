/* Validation of orders handed to the daemon, one rule for every way in:
 * `reconcilectl add`, `reconcilectl import` lines and POST /v1/orders. */
#ifndef RECONCILED_INTAKE_H
#define RECONCILED_INTAKE_H

#include <stddef.h>
#include <json-c/json.h>

#include "ledger.h"

#define INTAKE_LINE_MAX	16384	/* longest import line / request body */
#define INTAKE_ERR_MAX	256

struct intake_order {
	char	order_id[ORDER_ID_MAX + 1];
	char	user_key[USER_KEY_MAX + 1];
	char	sku[SKU_MAX + 1];
	int	has_sku;
	char	ref[REF_MAX + 1];
	int	has_ref;
};

/* Checks the fields of one order (sku and ref may be NULL). Returns 0, or -1
 * with a reason such as "orderId is longer than 128 bytes" in err. */
int	intake_check(const char *order_id, const char *user_key, const char *sku,
	    const char *ref, char err[INTAKE_ERR_MAX]);

/* Parses one JSON object {"orderId": s, "userKey": s|integer, "sku"?: s|null,
 * "ref"?: s|null}; unknown members are ignored. Returns 0, or -1 with a reason
 * ("invalid JSON", "missing userKey", "userKey must be a string or an
 * integer", ...) in err. */
int	intake_parse(const char *text, size_t len, struct intake_order *out,
	    char err[INTAKE_ERR_MAX]);
int	intake_from_json(struct json_object *, struct intake_order *out,
	    char err[INTAKE_ERR_MAX]);

#endif
