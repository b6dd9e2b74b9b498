/* The JSONL sink: appends each event's stored payload as one line to a file,
 * fsyncs, and only then advances its cursor ("jsonl") in the ledger, unless a
 * replay moved it back meanwhile: then it starts again after the replay's. */
#ifndef RECONCILED_SINK_JSONL_H
#define RECONCILED_SINK_JSONL_H

#include <stdint.h>

#include "ledger.h"

struct event_base;
struct sink_jsonl;

struct sink_jsonl_stats {
	int64_t		 delivered_id;	/* the cursor */
	uint64_t	 delivered;	/* lines written since start */
	uint64_t	 failures;	/* write/fsync/cursor failures since start */
	int		 failing;	/* the last attempt failed */
};

/* Checks that path can be opened for appending (its directory exists, the
 * file is creatable/writable, not a directory). For -n and startup.
 * Returns 0, or -1 with a message in *err (caller frees). */
int		 sink_jsonl_check(const char *path, char **err);

/* Opens path for appending (mode 0640, created if absent). A last line cut
 * short by a crash (no final newline) is truncated away: it was never
 * acknowledged, so it is written again whole. Returns NULL with *err set. */
struct sink_jsonl *sink_jsonl_new(struct event_base *, struct ledger *,
		    const char *path, char **err);
void		 sink_jsonl_free(struct sink_jsonl *);

/* New events may be in the ledger: deliver them from the event loop soon.
 * Failures are logged and retried with backoff (1 s doubling to 60 s). */
void		 sink_jsonl_kick(struct sink_jsonl *);

/* Delivers everything after the cursor now (batches of up to 1000 lines,
 * one fsync per batch). Returns the number of lines written, or -1. */
int		 sink_jsonl_deliver(struct sink_jsonl *);

void		 sink_jsonl_get_stats(const struct sink_jsonl *, struct sink_jsonl_stats *);

#endif
