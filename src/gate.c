/* The gate in front of Toss: the global pause (429, TLS, 401/403), its one
 * probe, and the TLS 1.2 check that tells a refused client certificate from
 * a reset. Judges each finished attempt from its facts; no I/O, no clock. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fetch.h"
#include "gate.h"
#include "util.h"

static int
gate_has_word(const char *msg, const char *word)
{
	size_t	 n = strlen(word);

	for (; *msg != '\0'; msg++) {
		if (strncasecmp(msg, word, n) == 0)
			return 1;
	}
	return 0;
}

/* True when a receive/send error is really the server refusing our client
 * certificate, as OpenSSL words the alert: with TLS 1.3 that alert arrives
 * after the handshake. */
static int
gate_is_tls_alert(const char *msg)
{
	static const char *const alerts[] = {
		"certificate required", "unknown ca", "bad certificate",
		"certificate unknown", "certificate expired",
		"certificate revoked", "unsupported certificate",
		"access denied", "handshake failure", "decrypt error",
		NULL
	};
	int	 i;

	if (!gate_has_word(msg, "alert"))
		return 0;
	for (i = 0; alerts[i] != NULL; i++) {
		if (gate_has_word(msg, alerts[i]))
			return 1;
	}
	return 0;
}

/* Whether a server refused to speak TLS 1.2 at all (a TLS 1.3-only server),
 * as OpenSSL words it. */
static int
gate_is_version_refusal(const char *msg)
{
	return gate_has_word(msg, "protocol version") ||
	    gate_has_word(msg, "unsupported protocol") ||
	    gate_has_word(msg, "no protocols available");
}

/* What the attempt was, from its facts: out->error and out->why; *suspect
 * when a new connection carrying our certificate closed before any answer
 * (how a refusal looks under TLS 1.3, and how a reset looks); *accepted and
 * *refused12 for requests pinned to TLS 1.2, where the server checks the
 * certificate inside the handshake: one that completed proves it accepted,
 * one that a connected server broke off is a refusal, not a reset. */
static void
gate_judge(const struct gate_attempt *a, struct gate_outcome *out,
    int *suspect, int *accepted, int *refused12)
{
	const char	*msg = a->message != NULL ? a->message : "";
	enum fetch_error e = a->error;

	*suspect = *accepted = *refused12 = 0;
	util_strlcpy(out->why, msg, sizeof(out->why));
	if (e == FETCH_ERESET && a->io_failed && gate_is_tls_alert(msg))
		e = FETCH_ETLS;
	if (a->tls12_only) {
		if (!a->cert_sent)
			;
		else if (a->handshake_done) {
			*accepted = 1;
			if (e == FETCH_ETLS && a->io_failed)
				e = FETCH_ERESET;	/* not the handshake */
		} else if (a->connects == 0)
			;			/* never connected */
		else if (e == FETCH_ETLS && gate_is_version_refusal(msg))
			*refused12 = 1;
		else if (e == FETCH_ERESET || e == FETCH_EOTHER)
			e = FETCH_ETLS;	/* broken off in the handshake */
	} else if (e == FETCH_ERESET && a->io_failed && a->cert_sent &&
	    a->connects > 0 && a->header_bytes == 0) {
		/* Which of the send and receive errors curl reports here
		 * depends on timing, so both count. */
		e = FETCH_ETLS;
		*suspect = 1;
		snprintf(out->why, sizeof(out->why), "connection closed right"
		    " after the TLS handshake, before any answer (client"
		    " certificate refused?): %s", msg);
	}
	out->error = e;
}

/* The pause an attempt judged e calls for, with its length, a message and
 * whether the message names the duration. */
static enum gate_reason
gate_cause(const struct gate_attempt *a, enum fetch_error e, const char *why,
    struct gate_outcome *out)
{
	char	 d[32];
	int64_t	 ra;

	out->pause_ms = GATE_PAUSE_DEFAULT_MS;
	out->timed = 0;
	if (e == FETCH_ETLS) {
		snprintf(out->msg, sizeof(out->msg), "TLS handshake failed: %s",
		    why);
		return PAUSE_TLS;
	}
	if (e == FETCH_ECERT) {
		snprintf(out->msg, sizeof(out->msg), "client certificate or"
		    " key unusable: %s", why);
		return PAUSE_TLS;
	}
	if (e != FETCH_OK)
		return PAUSE_NONE;
	if (a->answer == TOSS_RATE_LIMITED) {
		ra = a->retry_after_ms;
		if (ra < 0) {
			snprintf(out->msg, sizeof(out->msg),
			    "HTTP 429 rate limited, no Retry-After");
			return PAUSE_RATE_LIMITED;
		}
		if (ra < GATE_PAUSE_MIN_MS)
			ra = GATE_PAUSE_MIN_MS;
		if (ra > GATE_PAUSE_MAX_MS)
			ra = GATE_PAUSE_MAX_MS;
		out->pause_ms = ra;
		out->timed = 1;
		snprintf(out->msg, sizeof(out->msg),
		    "HTTP 429 rate limited, Retry-After %s",
		    util_fmt_ms(ra, d, sizeof(d)));
		return PAUSE_RATE_LIMITED;
	}
	if (a->answer == TOSS_AUTH) {
		snprintf(out->msg, sizeof(out->msg),
		    "HTTP %ld from Toss: credentials refused", a->http_code);
		return PAUSE_AUTH;
	}
	return PAUSE_NONE;
}

/* Pauses for out->pause_ms because of cause. A pause that is already on is
 * extended silently, or said again when a clear answer makes a short pause
 * on a suspicion the full one; a pause that follows its probe is said again
 * only if it changed. quiet: the probe never reached Toss (debug only). */
static void
gate_pause(struct gate *g, enum gate_reason cause, int quiet, int64_t mono,
    int64_t now, struct gate_outcome *out)
{
	enum gate_reason was = gate_paused(g);
	int64_t		 ms = out->pause_ms, was_ms = g->pause_ms;

	out->reason = cause;
	if (g->state == GATE_PAUSED) {
		if (mono + ms > g->end_mono) {
			g->end_mono = mono + ms;
			g->until = now + ms;
		}
		if (ms > g->pause_ms && !quiet) {
			g->pause_ms = ms;
			g->reason = cause;
			out->log = GATE_LOG_EXTENDED;
		}
		return;
	}
	if (was == PAUSE_NONE)
		g->since = now;
	g->state = GATE_PAUSED;
	g->reason = cause;
	g->pause_ms = ms;
	g->end_mono = mono + ms;
	g->until = now + ms;
	if (quiet) {
		out->log = GATE_LOG_QUIET;
		return;
	}
	if (was == PAUSE_NONE || cause != was || ms > was_ms)
		out->log = GATE_LOG_BEGUN;
	else
		out->log = GATE_LOG_AGAIN;
	if (cause != PAUSE_RATE_LIMITED) {
		out->stop_once = 1;
		snprintf(out->stop, sizeof(out->stop), "%s pause",
		    gate_reason_name(cause));
	}
}

/* Back to open: the pause is over, or a check ended. */
static void
gate_open(struct gate *g)
{
	g->state = g->check != GATE_CHECK_NONE ? GATE_CHECKING : GATE_OPEN;
	g->reason = PAUSE_NONE;
	g->end_mono = 0;
	g->until = 0;
	g->since = 0;
}

void
gate_init(struct gate *g)
{
	memset(g, 0, sizeof(*g));
	g->state = GATE_OPEN;
	g->reason = PAUSE_NONE;
	g->check = GATE_CHECK_NONE;
}

enum gate_go
gate_admit(struct gate *g, int64_t mono, int64_t *wait_ms, int *began)
{
	*began = 0;
	*wait_ms = 0;
	if (g->check == GATE_CHECK_WAITING) {
		/* A pause that began meanwhile (an alert read on another
		 * connection, a 429) has answered the question or makes it
		 * wait: the order goes back as it was, like the others. */
		if (g->state == GATE_PAUSED || g->state == GATE_PROBING)
			return GATE_GO_ABANDON;
		return GATE_GO_CHECK;
	}
	if (g->check == GATE_CHECK_SENT)
		return GATE_GO_WAIT;	/* its completion looks again */
	if (g->state == GATE_PAUSED) {
		if (mono < g->end_mono) {
			*wait_ms = g->end_mono - mono;
			return GATE_GO_WAIT;
		}
		g->state = GATE_PROBING;
		*began = 1;
	}
	if (g->state == GATE_PROBING)
		return g->probe_out ? GATE_GO_WAIT : GATE_GO_PROBE;
	return GATE_GO_OPEN;
}

void *
gate_check_job(const struct gate *g)
{
	return g->check == GATE_CHECK_WAITING ? g->check_job : NULL;
}

void *
gate_abandon_check(struct gate *g)
{
	void	*job = g->check_job;

	if (g->check != GATE_CHECK_WAITING)
		return NULL;
	g->check = GATE_CHECK_NONE;
	g->check_job = NULL;
	if (g->state == GATE_CHECKING)
		g->state = GATE_OPEN;
	return job;
}

int
gate_tls12(const struct gate *g, enum gate_kind kind)
{
	if (g->tls12_lost)
		return 0;
	/* The probe of a TLS pause is a check too. */
	return kind == GATE_TLS12_CHECK ||
	    (kind == GATE_PROBE && gate_paused(g) == PAUSE_TLS);
}

void
gate_submitted(struct gate *g, enum gate_kind kind, int ok)
{
	if (kind == GATE_PROBE && ok)
		g->probe_out = 1;
	if (kind != GATE_TLS12_CHECK || g->check != GATE_CHECK_WAITING)
		return;
	if (ok)
		g->check = GATE_CHECK_SENT;
	else {
		g->check = GATE_CHECK_NONE;
		g->check_job = NULL;
		if (g->state == GATE_CHECKING)
			g->state = GATE_OPEN;
	}
}

enum gate_reason
gate_no_probe(struct gate *g)
{
	enum gate_reason r = g->reason;

	if (g->state != GATE_PROBING)
		return PAUSE_NONE;
	gate_open(g);
	return r;
}

void
gate_finish(struct gate *g, const struct gate_attempt *a, void *job,
    int stopping, int64_t mono, int64_t now, struct gate_outcome *out)
{
	enum gate_reason cause;
	int		 suspect, accepted, refused12, held = 0, quiet = 0;

	memset(out, 0, sizeof(*out));
	if (a->kind == GATE_PROBE)
		g->probe_out = 0;
	if (a->kind == GATE_TLS12_CHECK && g->check == GATE_CHECK_SENT) {
		g->check = GATE_CHECK_NONE;
		g->check_job = NULL;
		if (g->state == GATE_CHECKING)
			g->state = GATE_OPEN;
	}

	gate_judge(a, out, &suspect, &accepted, &refused12);
	if (refused12 && !g->tls12_lost) {
		g->tls12_lost = 1;
		out->tls12_lost = 1;
	} else if (accepted && a->kind == GATE_TLS12_CHECK)
		out->cert_accepted = 1;

	cause = gate_cause(a, out->error, out->why, out);
	/* A new connection closed before any answer is how a refused client
	 * certificate looks under TLS 1.3, but a plain reset looks the same.
	 * Ask the same order again over TLS 1.2, where a refusal is a failed
	 * handshake, holding new claims meanwhile; other requests that end
	 * the same way are put back without an error (held: the check
	 * decides for them too, so they do not pause). */
	if (cause == PAUSE_TLS && suspect && a->kind != GATE_PROBE &&
	    gate_paused(g) == PAUSE_NONE && !g->tls12_lost && !stopping) {
		if (g->check == GATE_CHECK_NONE) {
			g->check = GATE_CHECK_WAITING;
			g->check_job = job;
			g->state = GATE_CHECKING;
			out->verdict = GATE_CHECK;
			out->reason = PAUSE_NONE;
			return;
		}
		held = 1;
	}
	/* Without TLS 1.2 (or with a pause already on): pause briefly and
	 * let the probe decide; only the probe's own failure pauses for the
	 * full time (requests that were already in flight when the pause
	 * began must not stretch it). */
	if (a->kind == GATE_TLS12_CHECK && refused12) {
		snprintf(out->msg, sizeof(out->msg), "TLS handshake failed: a"
		    " new connection closed before any answer, and Toss does"
		    " not speak TLS 1.2 to tell why (client certificate"
		    " refused?)");
		out->pause_ms = GATE_PAUSE_SUSPECT_MS;
	} else if (cause == PAUSE_TLS && suspect && a->kind != GATE_PROBE)
		out->pause_ms = GATE_PAUSE_SUSPECT_MS;
	if (cause == PAUSE_NONE && a->kind == GATE_PROBE &&
	    g->state == GATE_PROBING && out->error != FETCH_OK &&
	    out->error != FETCH_ETOOBIG && !accepted) {
		/* The probe never reached Toss, so nothing says the cause is
		 * gone (a refused certificate can look like a reset). */
		cause = g->reason;
		out->pause_ms = g->pause_ms;
		out->timed = 0;
		snprintf(out->msg, sizeof(out->msg), "probe failed: %s: %s",
		    fetch_error_name(out->error), out->why);
		quiet = 1;
		out->stop_once = 1;
		util_strlcpy(out->stop, out->msg, sizeof(out->stop));
	}
	if (cause != PAUSE_NONE) {
		out->reason = cause;
		if (held)
			out->verdict = GATE_HOLD;
		else {
			out->verdict = GATE_RESCHEDULE;
			gate_pause(g, cause, quiet, mono, now, out);
		}
		return;
	}
	out->verdict = GATE_APPLY;
	if (a->kind == GATE_PROBE && g->state == GATE_PROBING) {
		out->reason = g->reason;
		out->log = GATE_LOG_ENDED;
		gate_open(g);
	}
}

int
gate_reload(struct gate *g, int64_t mono)
{
	if (g->state != GATE_PAUSED ||
	    (g->reason != PAUSE_TLS && g->reason != PAUSE_AUTH))
		return 0;
	g->end_mono = mono;
	return 1;
}

enum gate_reason
gate_paused(const struct gate *g)
{
	if (g->state == GATE_PAUSED || g->state == GATE_PROBING)
		return g->reason;
	return PAUSE_NONE;
}

const char *
gate_reason_name(enum gate_reason r)
{
	switch (r) {
	case PAUSE_NONE:
		return "none";
	case PAUSE_RATE_LIMITED:
		return "rate_limited";
	case PAUSE_TLS:
		return "tls";
	case PAUSE_AUTH:
		return "auth";
	}
	return "?";
}

const char *
gate_state_name(enum gate_state s)
{
	switch (s) {
	case GATE_OPEN:
		return "open";
	case GATE_CHECKING:
		return "checking";
	case GATE_PAUSED:
		return "paused";
	case GATE_PROBING:
		return "probing";
	}
	return "?";
}

const char *
gate_verdict_name(enum gate_verdict v)
{
	switch (v) {
	case GATE_APPLY:
		return "apply";
	case GATE_RESCHEDULE:
		return "reschedule";
	case GATE_HOLD:
		return "hold";
	case GATE_CHECK:
		return "check";
	}
	return "?";
}
