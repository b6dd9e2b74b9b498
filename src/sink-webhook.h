/* The webhook sink: POSTs each event to the partner's URL through the shared
 * curl multi, signed per Standard Webhooks (one signature per configured
 * secret), in event-id order with at most 8 deliveries in flight; its cursor
 * ("webhook") advances over the longest run of delivered ids, unless a
 * replay moved it back meanwhile: then it starts again after the replay's. */
#ifndef RECONCILED_SINK_WEBHOOK_H
#define RECONCILED_SINK_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "fetch.h"
#include "ledger.h"

#define SINK_WEBHOOK_INFLIGHT	8
#define SINK_WEBHOOK_SIG_MAX	128	/* "v1," + base64 of 32 bytes, with room */

struct event_base;
struct sink_webhook;

struct sink_webhook_stats {
	int64_t		 delivered_id;	/* the cursor */
	uint64_t	 delivered;	/* 2xx answers since start */
	uint64_t	 failures;	/* other answers, timeouts, errors */
	size_t		 inflight;
	int		 failing;	/* the last attempt failed, or disabled */
	int		 disabled;	/* a 410 Gone was received */
};

/* Decodes a "whsec_<base64>" secret into out[*len] (at most outsz bytes).
 * Returns 0, or -1 if it is not of that form. */
int		 sink_webhook_secret_decode(const char *secret, unsigned char *out,
		    size_t outsz, size_t *len);

/* Signs per Standard Webhooks: "v1," + base64(HMAC-SHA256(key, id "." ts "."
 * body)) into out[outsz]. Pure. Returns 0, or -1 if out is too small. */
int		 sink_webhook_sign(const unsigned char *key, size_t keylen,
		    const char *msg_id, int64_t ts, const char *body, size_t body_len,
		    char *out, size_t outsz);

/* cfg->webhook_url and webhook_secret must be set (config validated them).
 * The sink keeps pointers to ledger and fetch. Returns NULL with *err set. */
struct sink_webhook *sink_webhook_new(struct event_base *, struct ledger *,
		    struct fetch *, const struct config *, char **err);
/* Frees; deliveries in flight are abandoned (they will be sent again). */
void		 sink_webhook_free(struct sink_webhook *);

/* Takes url, secret and timeout from a reloaded config (copied). Ends a
 * 410 switch-off and any backoff wait: the next attempt starts at once. */
int		 sink_webhook_set_config(struct sink_webhook *, const struct config *,
		    char **err);

/* Retry delays: min doubling to max, with jitter (defaults 5 s and 1 h).
 * For tests. */
void		 sink_webhook_set_backoff(struct sink_webhook *, int64_t min_ms,
		    int64_t max_ms);

/* New events may be in the ledger: deliver them from the event loop soon. */
void		 sink_webhook_kick(struct sink_webhook *);

/* Stops starting deliveries; done is called (from the loop, once) when
 * none is in flight. */
void		 sink_webhook_drain(struct sink_webhook *, void (*done)(void *), void *arg);

void		 sink_webhook_get_stats(const struct sink_webhook *,
		    struct sink_webhook_stats *);

#endif
