/* Toss's order-status API: builds the request and parses the answer into a
 * struct. Pure: no I/O, no clock; fuzzed. */
#ifndef RECONCILED_TOSS_H
#define RECONCILED_TOSS_H

#include <stddef.h>

#include "ledger.h"

#define TOSS_PATH "/api-partner/v1/apps-in-toss/order/get-order-status"
#define TOSS_ERRCODE_MAX 64
#define TOSS_URL_MAX 2048

/* What one HTTP exchange amounted to. */
enum toss_kind {
	TOSS_STATUS,		/* SUCCESS envelope with a status: a real answer */
	TOSS_FAIL,		/* FAIL envelope (errorCode, reason) */
	TOSS_MALFORMED,		/* a body that is neither: see perr */
	TOSS_HTTP_ERROR,	/* 5xx or an unexpected code without a usable body */
	TOSS_RATE_LIMITED,	/* 429 */
	TOSS_AUTH		/* 401 / 403 */
};

enum toss_perr {
	TOSS_PERR_NONE,
	TOSS_PERR_EMPTY,	/* empty body */
	TOSS_PERR_HTML,		/* an HTML page (proxy or gateway error) */
	TOSS_PERR_NOT_JSON,	/* not parseable, or trailing garbage */
	TOSS_PERR_NOT_OBJECT,	/* JSON, but not an object */
	TOSS_PERR_RESULT_TYPE,	/* resultType missing, not a string, or unknown */
	TOSS_PERR_NO_SUCCESS,	/* SUCCESS without a "success" object */
	TOSS_PERR_NO_STATUS,	/* success without a string status */
	TOSS_PERR_BAD_STATUS,	/* status empty, too long or with control chars */
	TOSS_PERR_BAD_FIELD,	/* a field of the wrong type */
	TOSS_PERR_ORDER_ID,	/* the answer names another orderId */
	TOSS_PERR_NO_ORDER_ID,	/* SUCCESS naming no orderId (absent or null) */
	TOSS_PERR_DUP_KEY,	/* an object holds the same key twice */
	TOSS_PERR_BAD_TIME,	/* statusDeterminedAt unparseable */
	TOSS_PERR_NO_ERROR	/* FAIL without an "error" object */
};

struct toss_answer {
	enum toss_kind	 kind;
	enum toss_perr	 perr;
	long		 http_code;
	char		 status[STATUS_MAX + 1];
	char		 sku[SKU_MAX + 1];		/* "" when absent */
	char		 reason[REASON_MAX + 1];	/* truncated on a UTF-8 boundary */
	char		 determined_at[DETERMINED_MAX];	/* normalised, "" when absent */
	char		 error_code[TOSS_ERRCODE_MAX + 1];	/* FAIL */
};

struct toss_request {
	char		 url[TOSS_URL_MAX];
	char		*body;		/* {"orderId":"..."}; caller frees */
	char		 user_key_header[USER_KEY_MAX + 32];	/* "x-toss-user-key: ..." */
};

/* Builds the request for one order. Returns 0, or -1 if the URL is too long
 * or user_key is empty, too long or holds control characters (it goes into
 * a header); out->body is then NULL. */
int		 toss_build_request(const char *base_url, const char *order_id,
		    const char *user_key, struct toss_request *out);
void		 toss_request_free(struct toss_request *);

/* Classifies an HTTP answer (code and body) to a question about order_id:
 * a TOSS_STATUS answer is a 2xx SUCCESS envelope whose success.orderId is
 * order_id. order_id NULL skips the orderId checks (the fuzzer compares). */
void		 toss_parse(long http_code, const char *body, size_t len,
		    const char *order_id, struct toss_answer *out);

/* "2025-09-12T16:57:12" -> "2025-09-12T16:57:12+09:00"; an offset or Z is
 * kept as given, fractional seconds are kept. Returns 0, or -1 if in is not
 * yyyy-MM-ddTHH:mm:ss[.f][Z|+hh:mm|+hhmm]. out holds DETERMINED_MAX bytes. */
int		 toss_normalise_time(const char *in, char *out);

const char	*toss_kind_name(enum toss_kind);
const char	*toss_perr_name(enum toss_perr);

#endif
