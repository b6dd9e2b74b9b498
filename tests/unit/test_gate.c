/* Unit tests for gate.c: one row per (state, facts of a finished attempt)
 * with the exact verdict, next state, pause length and log line kind, then
 * the admission sequences (pause -> probe -> open, the TLS 1.2 check and its
 * abandonment, a reload ending a pause). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fetch.h"
#include "gate.h"
#include "toss.h"

#define S	INT64_C(1000)
#define MONO	INT64_C(5000000)
#define NOW	INT64_C(1764293400000)	/* 2025-11-28T01:30:00Z */

#define MSG_RESET	"Recv failure: Connection reset by peer"
#define MSG_PIPE	"Send failure: Broken pipe"
#define MSG_ALERT13	"OpenSSL SSL_read: error:0A00045C:SSL routines::" \
			"tlsv13 alert certificate required, errno 0"
#define MSG_BADCERT	"OpenSSL/3.0.13: error:0A000412:SSL routines::" \
			"sslv3 alert bad certificate"
#define MSG_VERSION	"OpenSSL/3.0.13: error:0A00042E:SSL routines::" \
			"tlsv1 alert protocol version"
#define MSG_ISSUER	"SSL certificate problem: unable to get local " \
			"issuer certificate"
#define SUSPECT_PREFIX	"connection closed right after the TLS handshake," \
			" before any answer (client certificate refused?): "

/* The facts the rows use. */
enum fact {
	F_ANSWER, F_429, F_429_RA5, F_429_RA60, F_429_RA0, F_429_RA2H,
	F_401, F_403, F_5XX, F_TIMEOUT, F_CONNECT, F_SERVER_CERT, F_ECERT,
	F_ALERT, F_RESET_FRESH, F_SEND_FRESH, F_RESET_NOCERT, F_RESET_REUSED,
	F_RESET_AFTER_HDR, F_GOT_NOTHING, F_TOOBIG,
	F_CHK_ANSWER, F_CHK_RESET, F_CHK_ALERT_AFTER, F_CHK_REFUSED,
	F_CHK_BROKEN, F_CHK_NO12, F_CHK_CONNECT,
	F_PROBE_ANSWER, F_PROBE_5XX, F_PROBE_TOOBIG, F_PROBE_ACCEPTED_RESET,
	F_PROBE_TIMEOUT, F_PROBE_CONNECT, F_PROBE_REFUSED12, F_PROBE_RESET12,
	F_PROBE_NO12, F_PROBE_RESET, F_PROBE_429, F_PROBE_401
};

/* kind error message answer http retry_after io_failed tls12_only
 * cert_sent handshake_done connects header_bytes */
static const struct gate_attempt facts[] = {
	[F_ANSWER] = { GATE_ASK, FETCH_OK, "", TOSS_STATUS, 200, -1,
	    0, 0, 1, 1, 0, 120 },
	[F_429] = { GATE_ASK, FETCH_OK, "", TOSS_RATE_LIMITED, 429, -1,
	    0, 0, 1, 1, 0, 90 },
	[F_429_RA5] = { GATE_ASK, FETCH_OK, "", TOSS_RATE_LIMITED, 429, 5 * S,
	    0, 0, 1, 1, 0, 90 },
	[F_429_RA60] = { GATE_ASK, FETCH_OK, "", TOSS_RATE_LIMITED, 429,
	    60 * S, 0, 0, 1, 1, 0, 90 },
	[F_429_RA0] = { GATE_ASK, FETCH_OK, "", TOSS_RATE_LIMITED, 429, 200,
	    0, 0, 1, 1, 0, 90 },
	[F_429_RA2H] = { GATE_ASK, FETCH_OK, "", TOSS_RATE_LIMITED, 429,
	    7200 * S, 0, 0, 1, 1, 0, 90 },
	[F_401] = { GATE_ASK, FETCH_OK, "", TOSS_AUTH, 401, -1,
	    0, 0, 1, 1, 0, 90 },
	[F_403] = { GATE_ASK, FETCH_OK, "", TOSS_AUTH, 403, -1,
	    0, 0, 1, 1, 0, 90 },
	[F_5XX] = { GATE_ASK, FETCH_OK, "", TOSS_HTTP_ERROR, 503, -1,
	    0, 0, 1, 1, 0, 90 },
	[F_TIMEOUT] = { GATE_ASK, FETCH_ETIMEOUT, "Operation timed out",
	    TOSS_STATUS, 0, -1, 0, 0, 1, 1, 1, 0 },
	[F_CONNECT] = { GATE_ASK, FETCH_ECONNECT, "Failed to connect",
	    TOSS_STATUS, 0, -1, 0, 0, 1, 0, 0, 0 },
	[F_SERVER_CERT] = { GATE_ASK, FETCH_ETLS, MSG_ISSUER, TOSS_STATUS,
	    0, -1, 0, 0, 1, 0, 1, 0 },
	[F_ECERT] = { GATE_ASK, FETCH_ECERT, "could not load PEM client"
	    " certificate", TOSS_STATUS, 0, -1, 0, 0, 1, 0, 0, 0 },
	[F_ALERT] = { GATE_ASK, FETCH_ERESET, MSG_ALERT13, TOSS_STATUS,
	    0, -1, 1, 0, 1, 1, 1, 0 },
	[F_RESET_FRESH] = { GATE_ASK, FETCH_ERESET, MSG_RESET, TOSS_STATUS,
	    0, -1, 1, 0, 1, 1, 1, 0 },
	[F_SEND_FRESH] = { GATE_ASK, FETCH_ERESET, MSG_PIPE, TOSS_STATUS,
	    0, -1, 1, 0, 1, 1, 1, 0 },
	[F_RESET_NOCERT] = { GATE_ASK, FETCH_ERESET, MSG_RESET, TOSS_STATUS,
	    0, -1, 1, 0, 0, 1, 1, 0 },
	[F_RESET_REUSED] = { GATE_ASK, FETCH_ERESET, MSG_RESET, TOSS_STATUS,
	    0, -1, 1, 0, 1, 0, 0, 0 },
	[F_RESET_AFTER_HDR] = { GATE_ASK, FETCH_ERESET, MSG_RESET,
	    TOSS_STATUS, 200, -1, 1, 0, 1, 1, 1, 150 },
	[F_GOT_NOTHING] = { GATE_ASK, FETCH_ERESET, "Empty reply from server",
	    TOSS_STATUS, 0, -1, 0, 0, 1, 1, 1, 0 },
	[F_TOOBIG] = { GATE_ASK, FETCH_ETOOBIG, "answer larger than 65536"
	    " bytes", TOSS_STATUS, 200, -1, 0, 0, 1, 1, 0, 90 },
	[F_CHK_ANSWER] = { GATE_TLS12_CHECK, FETCH_OK, "", TOSS_STATUS, 200,
	    -1, 0, 1, 1, 1, 1, 120 },
	[F_CHK_RESET] = { GATE_TLS12_CHECK, FETCH_ERESET, MSG_RESET,
	    TOSS_STATUS, 0, -1, 1, 1, 1, 1, 1, 0 },
	[F_CHK_ALERT_AFTER] = { GATE_TLS12_CHECK, FETCH_ERESET, MSG_BADCERT,
	    TOSS_STATUS, 0, -1, 1, 1, 1, 1, 1, 0 },
	[F_CHK_REFUSED] = { GATE_TLS12_CHECK, FETCH_ETLS, MSG_BADCERT,
	    TOSS_STATUS, 0, -1, 0, 1, 1, 0, 1, 0 },
	[F_CHK_BROKEN] = { GATE_TLS12_CHECK, FETCH_ERESET, MSG_RESET,
	    TOSS_STATUS, 0, -1, 1, 1, 1, 0, 1, 0 },
	[F_CHK_NO12] = { GATE_TLS12_CHECK, FETCH_ETLS, MSG_VERSION,
	    TOSS_STATUS, 0, -1, 0, 1, 1, 0, 1, 0 },
	[F_CHK_CONNECT] = { GATE_TLS12_CHECK, FETCH_ECONNECT,
	    "Failed to connect", TOSS_STATUS, 0, -1, 0, 1, 1, 0, 0, 0 },
	[F_PROBE_ANSWER] = { GATE_PROBE, FETCH_OK, "", TOSS_STATUS, 200, -1,
	    0, 0, 1, 1, 1, 120 },
	[F_PROBE_5XX] = { GATE_PROBE, FETCH_OK, "", TOSS_HTTP_ERROR, 502, -1,
	    0, 0, 1, 1, 1, 120 },
	[F_PROBE_TOOBIG] = { GATE_PROBE, FETCH_ETOOBIG, "answer larger than"
	    " 65536 bytes", TOSS_STATUS, 200, -1, 0, 0, 1, 1, 1, 90 },
	[F_PROBE_ACCEPTED_RESET] = { GATE_PROBE, FETCH_ERESET, MSG_RESET,
	    TOSS_STATUS, 0, -1, 1, 1, 1, 1, 1, 0 },
	[F_PROBE_TIMEOUT] = { GATE_PROBE, FETCH_ETIMEOUT,
	    "Connection timed out", TOSS_STATUS, 0, -1, 0, 0, 1, 0, 1, 0 },
	[F_PROBE_CONNECT] = { GATE_PROBE, FETCH_ECONNECT, "Failed to connect",
	    TOSS_STATUS, 0, -1, 0, 0, 1, 0, 0, 0 },
	[F_PROBE_REFUSED12] = { GATE_PROBE, FETCH_ETLS, MSG_BADCERT,
	    TOSS_STATUS, 0, -1, 0, 1, 1, 0, 1, 0 },
	[F_PROBE_RESET12] = { GATE_PROBE, FETCH_ERESET, MSG_RESET,
	    TOSS_STATUS, 0, -1, 1, 1, 1, 0, 1, 0 },
	[F_PROBE_NO12] = { GATE_PROBE, FETCH_ETLS, MSG_VERSION, TOSS_STATUS,
	    0, -1, 0, 1, 1, 0, 1, 0 },
	[F_PROBE_RESET] = { GATE_PROBE, FETCH_ERESET, MSG_RESET, TOSS_STATUS,
	    0, -1, 1, 0, 1, 1, 1, 0 },
	[F_PROBE_429] = { GATE_PROBE, FETCH_OK, "", TOSS_RATE_LIMITED, 429,
	    -1, 0, 0, 1, 1, 0, 90 },
	[F_PROBE_401] = { GATE_PROBE, FETCH_OK, "", TOSS_AUTH, 401, -1,
	    0, 0, 1, 1, 0, 90 },
};

/* The states the rows start from. Pauses began 20 s ago and have 10 s to
 * go, except the suspect one (1 s, just begun). */
enum from {
	OPEN, OPEN_NO12, CHECKING, CHECK_SENT, PAUSED_TLS, PAUSED_SUSPECT,
	PAUSED_429, PAUSED_CHECK_SENT, PROBING_TLS, PROBING_TLS_NO12,
	PROBING_SUSPECT_NO12, PROBING_429, PROBING_AUTH
};

static const char *const from_names[] = {
	"open", "open (no TLS 1.2)", "checking", "checking (sent)",
	"paused tls", "paused tls (suspect)", "paused 429",
	"paused tls (check sent)", "probing tls", "probing tls (no TLS 1.2)",
	"probing tls after 1 s (no TLS 1.2)", "probing 429", "probing auth"
};

static int	 job;		/* the order asked again, as the caller's */
static int	 other;

static void
mkgate(struct gate *g, enum from f)
{
	gate_init(g);
	switch (f) {
	case OPEN:
		break;
	case OPEN_NO12:
		g->tls12_lost = 1;
		break;
	case CHECK_SENT:
	case CHECKING:
		g->state = GATE_CHECKING;
		g->check = f == CHECKING ? GATE_CHECK_WAITING : GATE_CHECK_SENT;
		g->check_job = &job;
		break;
	case PAUSED_TLS:
	case PAUSED_429:
	case PAUSED_CHECK_SENT:
		g->state = GATE_PAUSED;
		g->reason = f == PAUSED_429 ? PAUSE_RATE_LIMITED : PAUSE_TLS;
		g->pause_ms = 30 * S;
		g->end_mono = MONO + 10 * S;
		g->until = NOW + 10 * S;
		if (f == PAUSED_CHECK_SENT) {
			g->check = GATE_CHECK_SENT;
			g->check_job = &job;
		}
		break;
	case PAUSED_SUSPECT:
		g->state = GATE_PAUSED;
		g->reason = PAUSE_TLS;
		g->pause_ms = 1 * S;
		g->end_mono = MONO + 1 * S;
		g->until = NOW + 1 * S;
		break;
	case PROBING_TLS:
	case PROBING_TLS_NO12:
	case PROBING_SUSPECT_NO12:
	case PROBING_429:
	case PROBING_AUTH:
		g->state = GATE_PROBING;
		g->reason = f == PROBING_429 ? PAUSE_RATE_LIMITED :
		    f == PROBING_AUTH ? PAUSE_AUTH : PAUSE_TLS;
		g->pause_ms = f == PROBING_SUSPECT_NO12 ? 1 * S : 30 * S;
		g->end_mono = MONO - S;
		g->until = NOW - S;
		g->probe_out = 1;
		g->tls12_lost = f == PROBING_TLS_NO12 ||
		    f == PROBING_SUSPECT_NO12;
		break;
	}
}

#define X_LOST		0x1	/* out.tls12_lost */
#define X_ACCEPTED	0x2	/* out.cert_accepted */
#define X_STOP		0x4	/* out.stop_once */

struct row {
	enum from	 from;
	enum fact	 fact;
	int		 stopping;
	enum gate_verdict verdict;
	enum gate_state	 to;
	enum gate_reason reason;	/* gate_paused() after */
	int64_t		 pause_ms;	/* when paused after */
	int64_t		 left;		/* when paused after: end - now */
	enum gate_log	 log;
	enum fetch_error error;		/* as judged */
	int		 x;		/* X_* */
};

static void
run_row(const struct row *r, size_t i)
{
	struct gate		 g;
	struct gate_outcome	 out;
	int			 x;

	mkgate(&g, r->from);
	gate_finish(&g, &facts[r->fact], &other, r->stopping, MONO, NOW,
	    &out);
	x = (out.tls12_lost ? X_LOST : 0) |
	    (out.cert_accepted ? X_ACCEPTED : 0) |
	    (out.stop_once ? X_STOP : 0);
	if (out.verdict != r->verdict || g.state != r->to ||
	    gate_paused(&g) != r->reason || out.log != r->log ||
	    out.error != r->error || x != r->x ||
	    (g.state == GATE_PAUSED && (g.pause_ms != r->pause_ms ||
	    g.end_mono - MONO != r->left)))
		print_error("row %zu: %s + fact %d%s: got %s %s %s %lld/%lld"
		    " log %d %s x%d, want %s %s %s %lld/%lld log %d %s x%d\n",
		    i, from_names[r->from], (int)r->fact,
		    r->stopping ? " (stopping)" : "",
		    gate_verdict_name(out.verdict), gate_state_name(g.state),
		    gate_reason_name(gate_paused(&g)), (long long)g.pause_ms,
		    (long long)(g.end_mono - MONO), (int)out.log,
		    fetch_error_name(out.error), x,
		    gate_verdict_name(r->verdict), gate_state_name(r->to),
		    gate_reason_name(r->reason), (long long)r->pause_ms,
		    (long long)r->left, (int)r->log,
		    fetch_error_name(r->error), r->x);
	assert_int_equal(out.verdict, r->verdict);
	assert_int_equal(g.state, r->to);
	assert_int_equal(gate_paused(&g), r->reason);
	assert_int_equal(out.log, r->log);
	assert_int_equal(out.error, r->error);
	assert_int_equal(x, r->x);
	if (g.state == GATE_PAUSED) {
		assert_int_equal(g.pause_ms, r->pause_ms);
		assert_int_equal(g.end_mono - MONO, r->left);
		assert_int_equal(g.until - NOW, r->left);
	}
	if (out.log != GATE_LOG_NONE && out.log != GATE_LOG_ENDED)
		assert_int_equal(out.pause_ms, r->pause_ms);
	if (out.verdict == GATE_CHECK) {
		assert_int_equal(g.check, GATE_CHECK_WAITING);
		assert_ptr_equal(gate_check_job(&g), &other);
	}
}

#define APPLY		GATE_APPLY
#define RESCHED		GATE_RESCHEDULE
#define HOLD		GATE_HOLD
#define CHECK		GATE_CHECK
#define NONE		PAUSE_NONE
#define RATE		PAUSE_RATE_LIMITED
#define TLS		PAUSE_TLS
#define AUTH		PAUSE_AUTH
#define L_NONE		GATE_LOG_NONE
#define BEGUN		GATE_LOG_BEGUN
#define EXTENDED	GATE_LOG_EXTENDED
#define AGAIN		GATE_LOG_AGAIN
#define QUIET		GATE_LOG_QUIET
#define ENDED		GATE_LOG_ENDED

static const struct row rows[] = {
	/* Open: answers and errors are applied; 429, auth and TLS pause. */
	{ OPEN, F_ANSWER, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_OK, 0 },
	{ OPEN, F_5XX, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE, FETCH_OK, 0 },
	{ OPEN, F_TIMEOUT, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_ETIMEOUT, 0 },
	{ OPEN, F_CONNECT, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_ECONNECT, 0 },
	{ OPEN, F_TOOBIG, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_ETOOBIG, 0 },
	{ OPEN, F_429, 0, RESCHED, GATE_PAUSED, RATE, 30 * S, 30 * S, BEGUN,
	    FETCH_OK, 0 },
	{ OPEN, F_429_RA5, 0, RESCHED, GATE_PAUSED, RATE, 5 * S, 5 * S, BEGUN,
	    FETCH_OK, 0 },
	{ OPEN, F_429_RA0, 0, RESCHED, GATE_PAUSED, RATE, 1 * S, 1 * S, BEGUN,
	    FETCH_OK, 0 },
	{ OPEN, F_429_RA2H, 0, RESCHED, GATE_PAUSED, RATE, 3600 * S, 3600 * S,
	    BEGUN, FETCH_OK, 0 },
	{ OPEN, F_401, 0, RESCHED, GATE_PAUSED, AUTH, 30 * S, 30 * S, BEGUN,
	    FETCH_OK, X_STOP },
	{ OPEN, F_403, 0, RESCHED, GATE_PAUSED, AUTH, 30 * S, 30 * S, BEGUN,
	    FETCH_OK, X_STOP },
	{ OPEN, F_SERVER_CERT, 0, RESCHED, GATE_PAUSED, TLS, 30 * S, 30 * S,
	    BEGUN, FETCH_ETLS, X_STOP },
	{ OPEN, F_ECERT, 0, RESCHED, GATE_PAUSED, TLS, 30 * S, 30 * S, BEGUN,
	    FETCH_ECERT, X_STOP },
	/* A TLS 1.3 alert read after the handshake is the refusal itself. */
	{ OPEN, F_ALERT, 0, RESCHED, GATE_PAUSED, TLS, 30 * S, 30 * S, BEGUN,
	    FETCH_ETLS, X_STOP },
	/* A new connection with our certificate closed before any answer:
	 * the order is asked again over TLS 1.2. */
	{ OPEN, F_RESET_FRESH, 0, CHECK, GATE_CHECKING, NONE, 0, 0, L_NONE,
	    FETCH_ETLS, 0 },
	{ OPEN, F_SEND_FRESH, 0, CHECK, GATE_CHECKING, NONE, 0, 0, L_NONE,
	    FETCH_ETLS, 0 },
	/* ... unless no check can be sent: a short pause. */
	{ OPEN, F_RESET_FRESH, 1, RESCHED, GATE_PAUSED, TLS, 1 * S, 1 * S,
	    BEGUN, FETCH_ETLS, X_STOP },
	{ OPEN_NO12, F_RESET_FRESH, 0, RESCHED, GATE_PAUSED, TLS, 1 * S, 1 * S,
	    BEGUN, FETCH_ETLS, X_STOP },
	/* Resets that are not a suspect: errors. */
	{ OPEN, F_RESET_NOCERT, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_ERESET, 0 },
	{ OPEN, F_RESET_REUSED, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_ERESET, 0 },
	{ OPEN, F_RESET_AFTER_HDR, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_ERESET, 0 },
	{ OPEN, F_GOT_NOTHING, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_ERESET, 0 },

	/* Checking: other suspects wait for the check's word. */
	{ CHECKING, F_RESET_FRESH, 0, HOLD, GATE_CHECKING, NONE, 0, 0, L_NONE,
	    FETCH_ETLS, 0 },
	{ CHECK_SENT, F_RESET_FRESH, 0, HOLD, GATE_CHECKING, NONE, 0, 0,
	    L_NONE, FETCH_ETLS, 0 },
	{ CHECKING, F_ANSWER, 0, APPLY, GATE_CHECKING, NONE, 0, 0, L_NONE,
	    FETCH_OK, 0 },
	{ CHECKING, F_429, 0, RESCHED, GATE_PAUSED, RATE, 30 * S, 30 * S,
	    BEGUN, FETCH_OK, 0 },
	/* The check's own outcome. */
	{ CHECK_SENT, F_CHK_ANSWER, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_OK, X_ACCEPTED },
	{ CHECK_SENT, F_CHK_RESET, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_ERESET, X_ACCEPTED },
	{ CHECK_SENT, F_CHK_ALERT_AFTER, 0, APPLY, GATE_OPEN, NONE, 0, 0,
	    L_NONE, FETCH_ERESET, X_ACCEPTED },
	{ CHECK_SENT, F_CHK_REFUSED, 0, RESCHED, GATE_PAUSED, TLS, 30 * S,
	    30 * S, BEGUN, FETCH_ETLS, X_STOP },
	{ CHECK_SENT, F_CHK_BROKEN, 0, RESCHED, GATE_PAUSED, TLS, 30 * S,
	    30 * S, BEGUN, FETCH_ETLS, X_STOP },
	{ CHECK_SENT, F_CHK_NO12, 0, RESCHED, GATE_PAUSED, TLS, 1 * S, 1 * S,
	    BEGUN, FETCH_ETLS, X_STOP | X_LOST },
	{ CHECK_SENT, F_CHK_CONNECT, 0, APPLY, GATE_OPEN, NONE, 0, 0, L_NONE,
	    FETCH_ECONNECT, 0 },

	/* Paused: requests that were in flight end; a longer pause
	 * replaces a shorter one, a shorter one changes nothing. */
	{ PAUSED_TLS, F_ANSWER, 0, APPLY, GATE_PAUSED, TLS, 30 * S, 10 * S,
	    L_NONE, FETCH_OK, 0 },
	{ PAUSED_TLS, F_TIMEOUT, 0, APPLY, GATE_PAUSED, TLS, 30 * S, 10 * S,
	    L_NONE, FETCH_ETIMEOUT, 0 },
	{ PAUSED_TLS, F_429_RA5, 0, RESCHED, GATE_PAUSED, TLS, 30 * S, 10 * S,
	    L_NONE, FETCH_OK, 0 },
	{ PAUSED_TLS, F_429, 0, RESCHED, GATE_PAUSED, TLS, 30 * S, 30 * S,
	    L_NONE, FETCH_OK, 0 },
	{ PAUSED_TLS, F_429_RA60, 0, RESCHED, GATE_PAUSED, RATE, 60 * S,
	    60 * S, EXTENDED, FETCH_OK, 0 },
	{ PAUSED_TLS, F_401, 0, RESCHED, GATE_PAUSED, TLS, 30 * S, 30 * S,
	    L_NONE, FETCH_OK, 0 },
	{ PAUSED_TLS, F_RESET_FRESH, 0, RESCHED, GATE_PAUSED, TLS, 30 * S,
	    10 * S, L_NONE, FETCH_ETLS, 0 },
	/* A clear refusal makes the short pause on a suspicion the full
	 * one, and says so. */
	{ PAUSED_SUSPECT, F_ALERT, 0, RESCHED, GATE_PAUSED, TLS, 30 * S,
	    30 * S, EXTENDED, FETCH_ETLS, 0 },
	{ PAUSED_SUSPECT, F_RESET_FRESH, 0, RESCHED, GATE_PAUSED, TLS, 1 * S,
	    1 * S, L_NONE, FETCH_ETLS, 0 },
	{ PAUSED_429, F_429_RA5, 0, RESCHED, GATE_PAUSED, RATE, 30 * S, 10 * S,
	    L_NONE, FETCH_OK, 0 },
	{ PAUSED_429, F_ANSWER, 0, APPLY, GATE_PAUSED, RATE, 30 * S, 10 * S,
	    L_NONE, FETCH_OK, 0 },
	/* A check sent before the pause began still ends as a check. */
	{ PAUSED_CHECK_SENT, F_CHK_RESET, 0, APPLY, GATE_PAUSED, TLS, 30 * S,
	    10 * S, L_NONE, FETCH_ERESET, X_ACCEPTED },
	{ PAUSED_CHECK_SENT, F_CHK_REFUSED, 0, RESCHED, GATE_PAUSED, TLS,
	    30 * S, 30 * S, L_NONE, FETCH_ETLS, 0 },

	/* Probing: an answer, any answer from Toss, ends the pause. */
	{ PROBING_TLS, F_PROBE_ANSWER, 0, APPLY, GATE_OPEN, NONE, 0, 0, ENDED,
	    FETCH_OK, 0 },
	{ PROBING_TLS, F_PROBE_5XX, 0, APPLY, GATE_OPEN, NONE, 0, 0, ENDED,
	    FETCH_OK, 0 },
	{ PROBING_TLS, F_PROBE_TOOBIG, 0, APPLY, GATE_OPEN, NONE, 0, 0, ENDED,
	    FETCH_ETOOBIG, 0 },
	{ PROBING_TLS, F_PROBE_ACCEPTED_RESET, 0, APPLY, GATE_OPEN, NONE, 0, 0,
	    ENDED, FETCH_ERESET, 0 },
	/* A probe that never reached Toss proves nothing: quietly again. */
	{ PROBING_TLS, F_PROBE_TIMEOUT, 0, RESCHED, GATE_PAUSED, TLS, 30 * S,
	    30 * S, QUIET, FETCH_ETIMEOUT, X_STOP },
	{ PROBING_TLS, F_PROBE_CONNECT, 0, RESCHED, GATE_PAUSED, TLS, 30 * S,
	    30 * S, QUIET, FETCH_ECONNECT, X_STOP },
	{ PROBING_429, F_PROBE_TIMEOUT, 0, RESCHED, GATE_PAUSED, RATE, 30 * S,
	    30 * S, QUIET, FETCH_ETIMEOUT, X_STOP },
	/* The same refusal again. */
	{ PROBING_TLS, F_PROBE_REFUSED12, 0, RESCHED, GATE_PAUSED, TLS, 30 * S,
	    30 * S, AGAIN, FETCH_ETLS, X_STOP },
	{ PROBING_TLS, F_PROBE_RESET12, 0, RESCHED, GATE_PAUSED, TLS, 30 * S,
	    30 * S, AGAIN, FETCH_ETLS, X_STOP },
	{ PROBING_TLS, F_PROBE_NO12, 0, RESCHED, GATE_PAUSED, TLS, 30 * S,
	    30 * S, AGAIN, FETCH_ETLS, X_STOP | X_LOST },
	{ PROBING_TLS_NO12, F_PROBE_RESET, 0, RESCHED, GATE_PAUSED, TLS,
	    30 * S, 30 * S, AGAIN, FETCH_ETLS, X_STOP },
	/* A TLS 1.3-only server: the 1 s pause on a suspicion, then the
	 * probe's own suspect pauses for the full time, and says so. */
	{ PROBING_SUSPECT_NO12, F_PROBE_RESET, 0, RESCHED, GATE_PAUSED, TLS,
	    30 * S, 30 * S, BEGUN, FETCH_ETLS, X_STOP },
	{ PROBING_SUSPECT_NO12, F_PROBE_ANSWER, 0, APPLY, GATE_OPEN, NONE, 0,
	    0, ENDED, FETCH_OK, 0 },
	{ PROBING_429, F_PROBE_429, 0, RESCHED, GATE_PAUSED, RATE, 30 * S,
	    30 * S, AGAIN, FETCH_OK, 0 },
	{ PROBING_AUTH, F_PROBE_401, 0, RESCHED, GATE_PAUSED, AUTH, 30 * S,
	    30 * S, AGAIN, FETCH_OK, X_STOP },
	{ PROBING_AUTH, F_PROBE_ANSWER, 0, APPLY, GATE_OPEN, NONE, 0, 0, ENDED,
	    FETCH_OK, 0 },
	/* Another cause is said. */
	{ PROBING_TLS, F_PROBE_429, 0, RESCHED, GATE_PAUSED, RATE, 30 * S,
	    30 * S, BEGUN, FETCH_OK, 0 },
	/* Requests from before the pause, ending while the probe is out. */
	{ PROBING_TLS, F_ANSWER, 0, APPLY, GATE_PROBING, TLS, 0, 0, L_NONE,
	    FETCH_OK, 0 },
	{ PROBING_TLS, F_429_RA5, 0, RESCHED, GATE_PAUSED, RATE, 5 * S, 5 * S,
	    BEGUN, FETCH_OK, 0 },
};

static void
test_rows(void **state)
{
	size_t	 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(&rows[i], i);
}

/* Every verdict and every log kind appears in the table. */
static void
test_rows_cover(void **state)
{
	int	 verdicts = 0, logs = 0;
	size_t	 i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		verdicts |= 1 << rows[i].verdict;
		logs |= 1 << rows[i].log;
	}
	assert_int_equal(verdicts, (1 << (GATE_CHECK + 1)) - 1);
	assert_int_equal(logs, (1 << (GATE_LOG_ENDED + 1)) - 1);
}

/* The messages the operator reads (the integration tests grep them). */
static void
test_messages(void **state)
{
	struct gate		 g;
	struct gate_outcome	 out;
	struct gate_attempt	 a;

	mkgate(&g, OPEN);
	gate_finish(&g, &facts[F_RESET_FRESH], &job, 0, MONO, NOW, &out);
	assert_string_equal(out.why, SUSPECT_PREFIX MSG_RESET);

	mkgate(&g, OPEN);
	gate_finish(&g, &facts[F_RESET_FRESH], &job, 1, MONO, NOW, &out);
	assert_string_equal(out.msg, "TLS handshake failed: " SUSPECT_PREFIX
	    MSG_RESET);
	assert_string_equal(out.stop, "tls pause");

	mkgate(&g, CHECK_SENT);
	gate_finish(&g, &facts[F_CHK_NO12], &job, 0, MONO, NOW, &out);
	assert_string_equal(out.msg, "TLS handshake failed: a new connection"
	    " closed before any answer, and Toss does not speak TLS 1.2 to"
	    " tell why (client certificate refused?)");
	assert_string_equal(out.why, MSG_VERSION);

	mkgate(&g, OPEN);
	gate_finish(&g, &facts[F_429_RA5], &job, 0, MONO, NOW, &out);
	assert_string_equal(out.msg, "HTTP 429 rate limited, Retry-After 5s");
	assert_int_equal(out.timed, 1);

	mkgate(&g, OPEN);
	gate_finish(&g, &facts[F_429], &job, 0, MONO, NOW, &out);
	assert_string_equal(out.msg, "HTTP 429 rate limited, no Retry-After");
	assert_int_equal(out.timed, 0);

	mkgate(&g, OPEN);
	gate_finish(&g, &facts[F_403], &job, 0, MONO, NOW, &out);
	assert_string_equal(out.msg, "HTTP 403 from Toss: credentials refused");
	assert_string_equal(out.stop, "auth pause");

	mkgate(&g, OPEN);
	gate_finish(&g, &facts[F_ECERT], &job, 0, MONO, NOW, &out);
	assert_string_equal(out.msg, "client certificate or key unusable:"
	    " could not load PEM client certificate");

	mkgate(&g, PROBING_TLS);
	gate_finish(&g, &facts[F_PROBE_TIMEOUT], &job, 0, MONO, NOW, &out);
	assert_string_equal(out.msg, "probe failed: timeout: Connection timed"
	    " out");
	assert_string_equal(out.stop, out.msg);

	mkgate(&g, PROBING_AUTH);
	gate_finish(&g, &facts[F_PROBE_ANSWER], &job, 0, MONO, NOW, &out);
	assert_int_equal(out.reason, PAUSE_AUTH);

	/* Alert words without "alert" are not an alert. */
	a = facts[F_RESET_REUSED];
	a.message = "Recv failure: bad certificate";
	mkgate(&g, OPEN);
	gate_finish(&g, &a, &job, 0, MONO, NOW, &out);
	assert_int_equal(out.error, FETCH_ERESET);
}

/* A pause remembers when it began: kept while it is extended and when its
 * probe meets the same trouble again, cleared when the gate opens. */
static void
test_pause_since(void **state)
{
	struct gate		 g;
	struct gate_outcome	 out;
	int64_t			 wait;
	int			 began;

	gate_init(&g);
	assert_int_equal(g.since, 0);
	gate_finish(&g, &facts[F_429_RA5], &job, 0, MONO, NOW, &out);
	assert_int_equal(gate_paused(&g), PAUSE_RATE_LIMITED);
	assert_int_equal(g.since, NOW);
	gate_finish(&g, &facts[F_429_RA5], &job, 0, MONO + 1000, NOW + 1000,
	    &out);
	assert_int_equal(g.until, NOW + 6000);
	assert_int_equal(g.since, NOW);
	assert_int_equal(gate_admit(&g, MONO + 6000, &wait, &began),
	    GATE_GO_PROBE);
	gate_submitted(&g, GATE_PROBE, 1);
	assert_int_equal(g.since, NOW);
	gate_finish(&g, &facts[F_PROBE_429], &job, 0, MONO + 6100,
	    NOW + 6100, &out);
	assert_int_equal(g.state, GATE_PAUSED);
	assert_int_equal(g.since, NOW);
	assert_int_equal(gate_admit(&g, MONO + 60 * S, &wait, &began),
	    GATE_GO_PROBE);
	gate_submitted(&g, GATE_PROBE, 1);
	gate_finish(&g, &facts[F_PROBE_ANSWER], &job, 0, MONO + 60 * S + 100,
	    NOW + 60 * S + 100, &out);
	assert_int_equal(out.log, GATE_LOG_ENDED);
	assert_int_equal(g.since, 0);
	/* The next pause has its own beginning. */
	gate_finish(&g, &facts[F_429_RA5], &job, 0, MONO + 70 * S,
	    NOW + 70 * S, &out);
	assert_int_equal(g.since, NOW + 70 * S);
}

/* A pause runs out, one probe goes, its answer opens the gate. */
static void
test_pause_probe_open(void **state)
{
	struct gate		 g;
	struct gate_outcome	 out;
	int64_t			 wait;
	int			 began;

	gate_init(&g);
	assert_int_equal(gate_admit(&g, MONO, &wait, &began), GATE_GO_OPEN);
	gate_finish(&g, &facts[F_429_RA5], &job, 0, MONO, NOW, &out);
	assert_int_equal(gate_paused(&g), PAUSE_RATE_LIMITED);
	assert_int_equal(gate_admit(&g, MONO + 1000, &wait, &began),
	    GATE_GO_WAIT);
	assert_int_equal(wait, 4000);
	assert_int_equal(began, 0);
	/* A probe under a 429 pause is not pinned to TLS 1.2. */
	assert_int_equal(gate_admit(&g, MONO + 5000, &wait, &began),
	    GATE_GO_PROBE);
	assert_int_equal(began, 1);
	assert_int_equal(g.state, GATE_PROBING);
	assert_int_equal(gate_tls12(&g, GATE_PROBE), 0);
	gate_submitted(&g, GATE_PROBE, 1);
	assert_int_equal(gate_admit(&g, MONO + 5001, &wait, &began),
	    GATE_GO_WAIT);
	assert_int_equal(wait, 0);
	gate_finish(&g, &facts[F_PROBE_ANSWER], &job, 0, MONO + 5100,
	    NOW + 5100, &out);
	assert_int_equal(out.log, GATE_LOG_ENDED);
	assert_int_equal(out.reason, PAUSE_RATE_LIMITED);
	assert_int_equal(gate_admit(&g, MONO + 5101, &wait, &began),
	    GATE_GO_OPEN);
	assert_int_equal(gate_paused(&g), PAUSE_NONE);
	assert_int_equal(g.until, 0);

	/* A probe that could not be sent is tried again. */
	mkgate(&g, PAUSED_TLS);
	assert_int_equal(gate_admit(&g, MONO + 10 * S, &wait, &began),
	    GATE_GO_PROBE);
	assert_int_equal(gate_tls12(&g, GATE_PROBE), 1);
	gate_submitted(&g, GATE_PROBE, 0);
	assert_int_equal(gate_admit(&g, MONO + 10 * S, &wait, &began),
	    GATE_GO_PROBE);
	assert_int_equal(began, 0);

	/* Nothing due to probe with: open. */
	assert_int_equal(gate_no_probe(&g), PAUSE_TLS);
	assert_int_equal(g.state, GATE_OPEN);
	assert_int_equal(gate_no_probe(&g), PAUSE_NONE);
}

/* The TLS 1.2 check: decided, sent, ended; other requests held. */
static void
test_check(void **state)
{
	struct gate		 g;
	struct gate_outcome	 out;
	int64_t			 wait;
	int			 began;

	gate_init(&g);
	assert_int_equal(gate_tls12(&g, GATE_ASK), 0);
	gate_finish(&g, &facts[F_RESET_FRESH], &job, 0, MONO, NOW, &out);
	assert_int_equal(out.verdict, GATE_CHECK);
	assert_int_equal(gate_admit(&g, MONO, &wait, &began), GATE_GO_CHECK);
	assert_ptr_equal(gate_check_job(&g), &job);
	assert_int_equal(gate_tls12(&g, GATE_TLS12_CHECK), 1);
	gate_submitted(&g, GATE_TLS12_CHECK, 1);
	assert_null(gate_check_job(&g));
	assert_null(gate_abandon_check(&g));	/* sent: not abandoned */
	assert_int_equal(gate_admit(&g, MONO, &wait, &began), GATE_GO_WAIT);
	gate_finish(&g, &facts[F_RESET_FRESH], &other, 0, MONO, NOW, &out);
	assert_int_equal(out.verdict, GATE_HOLD);
	gate_finish(&g, &facts[F_CHK_RESET], &job, 0, MONO, NOW, &out);
	assert_int_equal(out.verdict, GATE_APPLY);
	assert_int_equal(out.cert_accepted, 1);
	assert_int_equal(gate_admit(&g, MONO, &wait, &began), GATE_GO_OPEN);

	/* A check that could not be sent: its order takes the error. */
	gate_finish(&g, &facts[F_RESET_FRESH], &job, 0, MONO, NOW, &out);
	gate_submitted(&g, GATE_TLS12_CHECK, 0);
	assert_int_equal(g.state, GATE_OPEN);
	assert_int_equal(g.check, GATE_CHECK_NONE);
	assert_int_equal(gate_admit(&g, MONO, &wait, &began), GATE_GO_OPEN);

	/* A pause that begins before the check is sent: the check's order
	 * goes back, then the pause is waited out. */
	gate_finish(&g, &facts[F_RESET_FRESH], &job, 0, MONO, NOW, &out);
	gate_finish(&g, &facts[F_429_RA5], &other, 0, MONO, NOW, &out);
	assert_int_equal(out.verdict, GATE_RESCHEDULE);
	assert_int_equal(gate_admit(&g, MONO, &wait, &began),
	    GATE_GO_ABANDON);
	assert_ptr_equal(gate_abandon_check(&g), &job);
	assert_null(gate_abandon_check(&g));
	assert_int_equal(gate_admit(&g, MONO, &wait, &began), GATE_GO_WAIT);
	assert_int_equal(wait, 5000);

	/* Draining: a waiting check is given back. */
	mkgate(&g, CHECKING);
	assert_ptr_equal(gate_abandon_check(&g), &job);
	assert_int_equal(g.state, GATE_OPEN);

	/* Without TLS 1.2 nothing is pinned. */
	mkgate(&g, OPEN_NO12);
	assert_int_equal(gate_tls12(&g, GATE_TLS12_CHECK), 0);
}

/* New credentials end a TLS or auth pause at once, not a 429 one. */
static void
test_reload(void **state)
{
	struct gate	 g;
	int64_t		 wait;
	int		 began;

	mkgate(&g, PAUSED_TLS);
	assert_int_equal(gate_reload(&g, MONO + 2 * S), 1);
	assert_int_equal(gate_admit(&g, MONO + 2 * S, &wait, &began),
	    GATE_GO_PROBE);
	assert_int_equal(began, 1);
	/* Probing already: nothing to end. */
	assert_int_equal(gate_reload(&g, MONO + 3 * S), 0);

	mkgate(&g, PAUSED_429);
	assert_int_equal(gate_reload(&g, MONO + 2 * S), 0);
	assert_int_equal(gate_admit(&g, MONO + 2 * S, &wait, &began),
	    GATE_GO_WAIT);
	assert_int_equal(wait, 8 * S);

	mkgate(&g, OPEN);
	assert_int_equal(gate_reload(&g, MONO), 0);
}

static void
test_names(void **state)
{
	assert_string_equal(gate_reason_name(PAUSE_NONE), "none");
	assert_string_equal(gate_reason_name(PAUSE_RATE_LIMITED),
	    "rate_limited");
	assert_string_equal(gate_reason_name(PAUSE_TLS), "tls");
	assert_string_equal(gate_reason_name(PAUSE_AUTH), "auth");
	assert_string_equal(gate_state_name(GATE_CHECKING), "checking");
	assert_string_equal(gate_verdict_name(GATE_HOLD), "hold");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_rows_cover),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_pause_probe_open),
		cmocka_unit_test(test_pause_since),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
