#!/bin/sh
# Makes the throw-away PKI that toss-sim and the integration tests use: a test
# CA, a server certificate for 127.0.0.1/localhost, client certificates (two
# valid ones with distinct names, expired, expiring soon) and a second,
# unrelated CA with its own client.
#
# usage: mkcerts.sh DIR        (openssl from $OPENSSL, else from PATH)
#
# Idempotent: a complete set younger than a day is left alone; otherwise the
# whole set is made anew in a scratch directory and moved into DIR.
set -eu

usage() {
	echo "usage: mkcerts.sh DIR" >&2
	exit 64
}

[ $# -eq 1 ] || usage
dir=$1
[ -n "$dir" ] || usage
OPENSSL=${OPENSSL:-openssl}
command -v "$OPENSSL" >/dev/null 2>&1 || {
	echo "mkcerts.sh: $OPENSSL not found" >&2
	exit 1
}

files="ca.crt ca.key server.crt server.key client.crt client.key
client-b.crt client-b.key
other-ca.crt other-ca.key other-client.crt other-client.key
expired-client.crt expired-client.key soon-client.crt soon-client.key"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -f "$dir/.complete" ] && [ -n "$(find "$dir/.complete" -mmin -1440 2>/dev/null)" ]; then
	complete=1
	for f in $files; do
		[ -s "$dir/$f" ] || complete=0
	done
	[ $complete -eq 0 ] || exit 0
fi
rm -f "$dir/.complete"

umask 077
work=$(mktemp -d "$dir/.mkcerts.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cd "$work"

ossl() {
	# openssl is chatty on stderr even when it succeeds; show it only on failure.
	if ! "$OPENSSL" "$@" >ossl.out 2>&1; then
		echo "mkcerts.sh: openssl $1 failed:" >&2
		cat ossl.out >&2
		exit 1
	fi
}

serial() {
	# 120 random bits behind a fixed 0x10: positive, even length, unique enough.
	printf '0x10%s' "$("$OPENSSL" rand -hex 15)"
}

cat >ext.cnf <<'EOF'
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

# EC P-256 for the CAs and the server (cheap handshakes for benchmarks).
eckey() {
	ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

# RSA 2048 in PKCS#8 PEM for clients, the form Toss's console hands out.
rsakey() {
	ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"
}

# ca NAME CN
ca() {
	eckey "$1.key"
	ossl req -new -x509 -key "$1.key" -out "$1.crt" -days 3650 -sha256 \
	    -subj "/O=toss-sim/CN=$2" -set_serial "$(serial)" \
	    -config ext.cnf -extensions ca_ext
}

# leaf NAME CN CA EXT DAYS KEYTYPE
leaf() {
	"$6" "$1.key"
	ossl req -new -key "$1.key" -out "$1.csr" -subj "/O=toss-sim/CN=$2" \
	    -config ext.cnf
	ossl x509 -req -in "$1.csr" -out "$1.crt" -CA "$3.crt" -CAkey "$3.key" \
	    -set_serial "$(serial)" -days "$5" -sha256 \
	    -extfile ext.cnf -extensions "$4"
	rm -f "$1.csr"
}

ca ca "toss-sim test CA"
leaf server localhost ca server_ext 825 eckey
leaf client "toss-sim client" ca client_ext 397 rsakey
# A second instance's certificate: the simulator's log tells the two apart by CN.
leaf client-b "toss-sim client b" ca client_ext 397 rsakey
leaf soon-client "toss-sim client expiring soon" ca client_ext 10 rsakey
ca other-ca "toss-sim unrelated CA"
leaf other-client "toss-sim client of another CA" other-ca client_ext 397 rsakey

# OpenSSL 3.0's x509 cannot back-date a certificate; "openssl ca" can.
rsakey expired-client.key
ossl req -new -key expired-client.key -out expired-client.csr \
    -subj "/O=toss-sim/CN=toss-sim expired client" -config ext.cnf
mkdir db
: >db/index.txt
serial | sed 's/^0x//' >db/serial
cat >ca.cnf <<'EOF'
[ca]
default_ca = test_ca

[test_ca]
dir = .
database = ./db/index.txt
new_certs_dir = ./db
serial = ./db/serial
certificate = ./ca.crt
private_key = ./ca.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
x509_extensions = client_ext

[policy_any]
organizationName = optional
commonName = supplied

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
ossl ca -batch -config ca.cnf -notext -in expired-client.csr \
    -out expired-client.crt -startdate 20200101000000Z -enddate 20201231235959Z

chmod 644 ./*.crt
for f in $files; do
	mv -f "$f" "$dir/$f"
done
: >"$dir/.complete"
