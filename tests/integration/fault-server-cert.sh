#!/bin/sh
# Fault matrix: a wrong server certificate. The simulator presents, in turn,
# a certificate for 127.0.0.1 from the other (untrusted) CA, one from the
# right CA for another name, and a self-signed one. The daemon must refuse
# each at the handshake and never send a request to an unverified server:
# the poller pauses (TLS, 30 s) with one log line naming the verification
# failure, /healthz says so, no order is touched and no attempt counts as
# an error.
. "$top_srcdir/tests/integration/fault-lib.sh"

OPENSSL=${OPENSSL:-openssl}

# ossl ARG...: openssl, quiet unless it fails.
ossl()
{
	"$OPENSSL" "$@" >"$T/openssl.out" 2>&1 ||
	    { cat "$T/openssl.out" >&2; fail "openssl $1 failed"; }
}

step "make the bad server certificates"
cat >"$T/ext.cnf" <<'EOF2'
[ip]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
[wrongname]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
EOF2
ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/bad.key"
ossl req -new -key "$T/bad.key" -out "$T/bad.csr" -subj "/O=toss-sim/CN=localhost"
# leaf NAME CA EXT: a certificate for bad.key signed by CA.
leaf()
{
	ossl x509 -req -in "$T/bad.csr" -out "$T/$1.crt" -CA "$T/certs/$2.crt" \
	    -CAkey "$T/certs/$2.key" -set_serial 4242 -days 30 -sha256 \
	    -extfile "$T/ext.cnf" -extensions "$3"
}
leaf other-ca-server other-ca ip
leaf wrong-name-server ca wrongname
ossl x509 -req -in "$T/bad.csr" -out "$T/self-signed-server.crt" \
    -signkey "$T/bad.key" -days 30 -sha256 -extfile "$T/ext.cnf" -extensions ip

# refused CERT ERE: the simulator presents CERT; the daemon must pause with
# a TLS line matching ERE and leave everything untouched.
n=0
refused()
{
	n=$((n + 1))
	if [ $n -gt 1 ]; then
		next_run $((n - 1))
	fi
	start_sim "$FAULT_SCENARIO" --cert "$T/$1.crt" --key "$T/bad.key"
	write_daemon_config
	use_control_sock
	fault_add xc-paid xc-refund
	start_daemon
	wait_until 10 "the daemon pauses" grep -q 'poller: paused' "$DAEMON_LOG"
	assert_log "warning: poller: paused for 30s: TLS handshake failed: $2\$"
	assert_eq '503 {"status":"unhealthy","reason":"polling paused: tls","role":"leader"}' \
	    "$(healthz)" "/healthz during the pause"
	sleep 2
	stop_daemon_ok
	assert_eq 0 "$(sim_count 'select(.orderId != null or .userKey != null)')" \
	    "requests that reached the unverified server"
	for id in xc-paid xc-refund; do
		assert_untouched $id "$1"
		assert_eq 0 "$(order_field $id errors)" "$id: a paused attempt is not an error"
	done
	assert_eq 1 "$(log_count 'poller: paused')" "pause lines"
	assert_no_log 'poller: resumed' "resumed while the server is unverified"
}

step "a server certificate from another CA"
refused other-ca-server 'SSL certificate problem: unable to get local issuer certificate'
step "a server certificate of the right CA for another name"
refused wrong-name-server "SSL: no alternative certificate subject name matches target host name '127\\.0\\.0\\.1'"
step "a self-signed server certificate"
refused self-signed-server 'SSL certificate problem: self[- ]signed certificate'
pass
