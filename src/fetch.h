/* libcurl multi_socket driven by libevent: submit an HTTP request with a
 * completion callback. Shared by the poller and the webhook sink. */
#ifndef RECONCILED_FETCH_H
#define RECONCILED_FETCH_H

#include <stddef.h>
#include <stdint.h>

#define FETCH_BODY_MAX	(64 * 1024)	/* answers past this are aborted */

struct event_base;

enum fetch_error {
	FETCH_OK,		/* an HTTP answer arrived (any status code) */
	FETCH_ETIMEOUT,		/* connect or total deadline passed */
	FETCH_ERESOLVE,		/* name did not resolve */
	FETCH_ECONNECT,		/* refused, unreachable */
	FETCH_ETLS,		/* handshake failed: client cert refused, server
				 * cert not verified, protocol mismatch (as
				 * curl reports it) */
	FETCH_ECERT,		/* our own cert/key could not be loaded */
	FETCH_ETOOBIG,		/* body over FETCH_BODY_MAX */
	FETCH_ERESET,		/* connection reset or closed mid-answer, or
				 * a send or receive error (io_failed) */
	FETCH_EOTHER
};

struct fetch_tls {
	const char	*cert;		/* client certificate (PEM), NULL = none */
	const char	*key;		/* its private key (PEM) */
	const char	*ca;		/* CA bundle to verify the server, NULL = system */
};

struct fetch_request {
	const char	*url;
	const char	*body;		/* POST body, copied by fetch_submit */
	size_t		 body_len;
	const char	*const *headers;	/* NULL-terminated "Name: value" */
	int64_t		 timeout_ms;
	int64_t		 connect_timeout_ms;
	int		 use_tls_identity;	/* send the client certificate */
	/* Called with done's arg each time the request is about to be sent:
	 * after connect (and TLS) or reuse, and again if curl re-sends it on
	 * a reused connection found dead. handshake_ms is what the TLS
	 * handshake of a connection made for this send took (0 on a reused
	 * one): the server may read the request about that much later. It
	 * runs inside libcurl: note the time, never submit, remove or free
	 * anything. NULL = not wanted. (libcurl < 7.80 has no such hook: it
	 * is then called at the start, with 0.) */
	void		(*sent)(void *arg, int64_t handshake_ms);
	/* Asks whether the server accepts our client certificate: TLS 1.2
	 * only, on a new connection used for nothing else. TLS 1.2 checks the
	 * certificate inside the handshake, where TLS 1.3 refuses it after
	 * the handshake with an alert that a reset can overtake. Needs
	 * use_tls_identity. */
	int		 tls12_check;
	/* The answer's status is what counts (a webhook's 2xx): a body past
	 * FETCH_BODY_MAX ends the transfer there without an error, the
	 * result's body cut and body_cut set. */
	int		 cut_body;
};

struct fetch_result {
	enum fetch_error error;
	long		 http_code;	/* 0 without an answer */
	const char	*body;		/* valid during the callback only */
	size_t		 body_len;
	int64_t		 retry_after_ms;	/* -1 when absent */
	int64_t		 elapsed_ms;
	const char	*message;	/* curl's explanation, "" if none */
	int		 body_cut;	/* cut_body: the rest was not read */
	/* Facts for judging TLS failures (gate.c does): */
	int		 io_failed;	/* curl could not send or receive
					 * (FETCH_ERESET): a reset, or an
					 * alert the message names */
	int		 tls12_only;	/* went out pinned to TLS 1.2 on a
					 * connection of its own (tls12_check
					 * with an identity) */
	int		 cert_sent;	/* our client certificate was offered */
	int		 handshake_done;	/* a TLS handshake completed */
	long		 connects;	/* new connections made for it */
	long		 header_bytes;	/* response header bytes received */
};

typedef void	(*fetch_done_fn)(const struct fetch_result *, void *arg);

struct fetch;

/* Returns NULL and sets *err (caller frees) if curl cannot be set up. */
struct fetch	*fetch_new(struct event_base *, char **err);
/* Frees; requests still in flight are aborted without calling back. */
void		 fetch_free(struct fetch *);

/* Sets the client identity used by requests submitted from now on; requests
 * in flight finish with the identity they started with. Strings are copied. */
void		 fetch_set_tls(struct fetch *, const struct fetch_tls *);

/* Starts a request; done is called exactly once, from the event loop, never
 * from inside this call. Returns 0, or -1 if it could not be started. */
int		 fetch_submit(struct fetch *, const struct fetch_request *,
		    fetch_done_fn done, void *arg);

/* Caps connections per host (CURLMOPT_MAX_HOST_CONNECTIONS) and sizes the
 * keep-alive cache to match; the poller sets it to max_inflight. */
void		 fetch_set_max_connections(struct fetch *, int per_host);

size_t		 fetch_inflight(const struct fetch *);

const char	*fetch_error_name(enum fetch_error);

/* Checks that cert and key load and belong together (OpenSSL). Returns 0, or
 * -1 with a message in *err (caller frees). *not_after receives the
 * certificate's expiry in unix seconds. */
int		 fetch_check_identity(const char *cert, const char *key,
		    int64_t *not_after, char **err);

#endif
