/* The gate in front of Toss: whether requests may go out now (open, paused
 * by a 429, a TLS failure or a 401/403, probing after a pause, checking a
 * suspected certificate refusal over TLS 1.2), and what one finished
 * attempt means for its order and for the gate. Pure: the caller passes the
 * clocks and the facts of each attempt in, and does the logging it is told. */
#ifndef RECONCILED_GATE_H
#define RECONCILED_GATE_H

#include <stdint.h>

#include "fetch.h"
#include "toss.h"

#define GATE_PAUSE_DEFAULT_MS	30000	/* 429 without Retry-After; TLS, auth */
#define GATE_PAUSE_SUSPECT_MS	1000	/* a first suspected TLS refusal */
#define GATE_PAUSE_MIN_MS	1000
#define GATE_PAUSE_MAX_MS	3600000	/* a Retry-After past this is capped */
#define GATE_MSG_MAX		512
#define GATE_WHY_MAX		416	/* curl's message and a preamble */

/* Why the gate is paused (/healthz, /metrics, the log). */
enum gate_reason {
	PAUSE_NONE,
	PAUSE_RATE_LIMITED,	/* 429 */
	PAUSE_TLS,		/* handshake failed */
	PAUSE_AUTH		/* 401 / 403 */
};

enum gate_state {
	GATE_OPEN,		/* requests go out under the rate limit */
	GATE_CHECKING,		/* one order is asked again over TLS 1.2;
				 * nothing else is claimed until it ends */
	GATE_PAUSED,		/* nothing goes out until end_mono */
	GATE_PROBING		/* the pause is over: one probe decides */
};

/* A check's progress (any state: a pause may begin while one is out). */
enum gate_check {
	GATE_CHECK_NONE,
	GATE_CHECK_WAITING,	/* decided, not yet sent */
	GATE_CHECK_SENT
};

/* What a request was sent as. */
enum gate_kind {
	GATE_ASK,		/* an ordinary poll */
	GATE_PROBE,		/* the one request after a pause */
	GATE_TLS12_CHECK	/* an order asked again over TLS 1.2 */
};

/* What the poller may do now (gate_admit). */
enum gate_go {
	GATE_GO_OPEN,		/* fill every free slot */
	GATE_GO_PROBE,		/* claim one order and send it as the probe */
	GATE_GO_CHECK,		/* send the waiting check (gate_check_job) */
	GATE_GO_ABANDON,	/* put the waiting check's order back as it
				 * was (gate_abandon_check), then ask again */
	GATE_GO_WAIT		/* send nothing; look again in *wait_ms */
};

/* What a finished attempt means for its order. */
enum gate_verdict {
	GATE_APPLY,		/* the answer, or the error, goes to the policy */
	GATE_RESCHEDULE,	/* paused: put back without counting anything */
	GATE_HOLD,		/* put back without counting: a check under way
				 * decides for this one too */
	GATE_CHECK		/* keep the order: it is the one to ask again
				 * over TLS 1.2 (gate_admit says when) */
};

/* What to say about the pause after an attempt. */
enum gate_log {
	GATE_LOG_NONE,
	GATE_LOG_BEGUN,		/* notice: paused (for pause_ms): msg */
	GATE_LOG_EXTENDED,	/* notice: paused for pause_ms: msg (a longer
				 * pause replaces a shorter one) */
	GATE_LOG_AGAIN,		/* debug: the probe failed the same way */
	GATE_LOG_QUIET,		/* debug: the probe never reached Toss */
	GATE_LOG_ENDED		/* notice: resumed after the reason pause */
};

/* The facts of one finished attempt, from fetch and toss. */
struct gate_attempt {
	enum gate_kind	 kind;
	enum fetch_error error;		/* fetch's class of curl's error */
	const char	*message;	/* curl's explanation, "" if none */
	enum toss_kind	 answer;	/* what toss made of it (FETCH_OK) */
	long		 http_code;
	int64_t		 retry_after_ms;	/* -1 when absent */
	int		 io_failed;	/* curl could not send or receive */
	int		 tls12_only;	/* went out pinned to TLS 1.2 */
	int		 cert_sent;	/* our client certificate was offered */
	int		 handshake_done;	/* a TLS handshake completed */
	long		 connects;	/* new connections made for it */
	long		 header_bytes;	/* response header bytes received */
};

struct gate_outcome {
	enum gate_verdict verdict;
	/* The attempt as judged: a TLS alert read after the handshake, or a
	 * connection that a check showed broken off mid-handshake, is a TLS
	 * error, not a reset. For the log, the metrics and the policy. */
	enum fetch_error error;
	char		 why[GATE_WHY_MAX];	/* message as judged */
	/* The pause: what to log (reason, pause_ms and msg say it). */
	enum gate_log	 log;
	enum gate_reason reason;
	int64_t		 pause_ms;
	int		 timed;		/* msg names the duration itself */
	char		 msg[GATE_MSG_MAX];	/* why rescheduled or paused */
	int		 tls12_lost;	/* Toss refused TLS 1.2, first time */
	int		 cert_accepted;	/* a check saw the certificate taken */
	int		 stop_once;	/* a --once run cannot wait this out */
	char		 stop[GATE_MSG_MAX];	/* why, when stop_once */
};

struct gate {
	enum gate_state	 state;
	enum gate_reason reason;	/* PAUSED, PROBING */
	int64_t		 pause_ms;	/* the pause's length */
	int64_t		 end_mono;	/* PAUSED: monotonic ms it ends */
	int64_t		 until;		/* the same as wall-clock ms */
	int64_t		 since;		/* PAUSED, PROBING: wall-clock ms the pause
					 * began, kept while it is extended or
					 * taken up again after its probe */
	int		 probe_out;	/* a probe is in flight */
	enum gate_check	 check;
	void		*check_job;	/* the caller's, while check is on */
	int		 tls12_lost;	/* Toss does not speak TLS 1.2 */
};

void		 gate_init(struct gate *);

/* May requests go out at mono? May move PAUSED to PROBING (then *began is
 * set: say so). *wait_ms is set with GATE_GO_WAIT. */
enum gate_go	 gate_admit(struct gate *, int64_t mono, int64_t *wait_ms,
		    int *began);

/* The job of the check that is waiting, or NULL. */
void		*gate_check_job(const struct gate *);
/* Takes back a check that was not sent (a pause began, draining, a once
 * run stopping): returns its job, for the caller to put back as it was, or
 * NULL when none waits. */
void		*gate_abandon_check(struct gate *);

/* Whether a request of this kind goes out pinned to TLS 1.2. */
int		 gate_tls12(const struct gate *, enum gate_kind);

/* A request of this kind was handed to fetch (ok), or could not be: an
 * unsent check is given up (its order takes the error). */
void		 gate_submitted(struct gate *, enum gate_kind, int ok);

/* The probe found nothing to ask: the gate opens. Returns the reason of the
 * pause that ended, for the log. */
enum gate_reason gate_no_probe(struct gate *);

/* Judges one finished attempt at (mono, now) and moves the gate. job is the
 * caller's, kept as the check's with GATE_CHECK. stopping: draining or a
 * once run ending, so no check can be sent. */
void		 gate_finish(struct gate *, const struct gate_attempt *,
		    void *job, int stopping, int64_t mono, int64_t now,
		    struct gate_outcome *);

/* New credentials may have fixed a TLS or auth pause: it ends at mono.
 * Returns 1 if it did (say so), 0 otherwise. */
int		 gate_reload(struct gate *, int64_t mono);

/* The pause's reason, PAUSE_NONE when requests go out. */
enum gate_reason gate_paused(const struct gate *);

const char	*gate_reason_name(enum gate_reason);
const char	*gate_state_name(enum gate_state);
const char	*gate_verdict_name(enum gate_verdict);

#endif
