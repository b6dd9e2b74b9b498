#!/bin/sh
# The systemd files as built: every @dir@ filled in; `systemd-analyze verify`
# finds nothing to say about the units (with ExecStart= pointed at the
# built binary, and the man pages of Documentation= found among ours);
# `systemd-analyze security` rates each service's exposure 2.0 or lower and
# the hardening a reviewer looks for is there; the sysusers.d and tmpfiles.d
# snippets make the user and a 0700 state directory it owns; the example
# configuration names every key config.c knows and, uncommented, is a valid
# configuration. Skips without systemd-analyze.
. "$top_srcdir/tests/integration/lib.sh"

require_cmd systemd-analyze

UNITS="reconciled.service reconciled@.service reconciled-once.service reconciled-once.timer"
SERVICES="reconciled.service reconciled@.service reconciled-once.service"

step "generated units: paths filled in"
mkdir "$T/units"
for u in $UNITS; do
	[ -f "$top_builddir/systemd/$u" ] || fail "$top_builddir/systemd/$u was not generated"
	left=$(grep -n '@[a-z]*dir@' "$top_builddir/systemd/$u" || true)
	assert_eq "" "$left" "$u: placeholders left"
done
sbin=$(sed -n 's/^ExecStart=\([^ ]*\)\/reconciled$/\1/p' "$top_builddir/systemd/reconciled.service")
case $sbin in
/*) ;;
*) fail "reconciled.service: ExecStart= is not an absolute path to reconciled: \"$sbin\"" ;;
esac

# Test copies that run the binary just built.
for u in $UNITS; do
	sed "s|$sbin/reconciled |$RECONCILED |; s|$sbin/reconciled\$|$RECONCILED|" \
	    "$top_builddir/systemd/$u" >"$T/units/$u"
done
assert_eq "ExecStartPre=$RECONCILED -n
ExecStart=$RECONCILED
ExecReload=$RECONCILED -n
ExecReload=/bin/kill -HUP \$MAINPID" "$(grep '^Exec' "$T/units/reconciled.service")" \
    "reconciled.service: what it runs"

step "no core dumps; descriptors for the default budget"
for u in $SERVICES; do
	assert_eq "LimitCORE=0" "$(grep '^LimitCORE=' "$T/units/$u")" "$u: LimitCORE"
done
for u in reconciled.service reconciled@.service; do
	assert_eq "LimitNOFILE=1024" "$(grep '^LimitNOFILE=' "$T/units/$u")" \
	    "$u: LimitNOFILE (64 Toss + 64 control connections + 32 is 160)"
	assert_match '^RuntimeDirectory=reconciled' "$(grep '^RuntimeDirectory=' "$T/units/$u")" \
	    "$u: a runtime directory for the control socket"
done

step "systemd-analyze verify"
# Documentation=man:... is checked against our own pages when man is there.
mkdir -p "$T/man/man5" "$T/man/man8"
cp "$top_srcdir/man/reconciled.8" "$top_srcdir/man/reconcilectl.8" "$T/man/man8/"
cp "$top_srcdir/man/reconciled.conf.5" "$T/man/man5/"
if command -v man >/dev/null 2>&1; then
	man_opt=--man=yes
else
	man_opt=--man=no
fi
for u in $UNITS; do
	st=0
	(cd "$T/units" && MANPATH=$T/man systemd-analyze verify $man_opt "./$u") \
	    >"$T/verify.out" 2>&1 || st=$?
	assert_eq "0 " "$st $(cat "$T/verify.out")" "systemd-analyze verify $u: status and output"
done

step "systemd-analyze security: exposure 2.0 or lower"
for u in $SERVICES; do
	st=0
	systemd-analyze security --offline=true "$T/units/$u" >"$T/sec.out" 2>&1 || st=$?
	if grep -q 'Unknown option\|unrecognized option' "$T/sec.out"; then
		skip "systemd-analyze security has no --offline (systemd < 250)"
	fi
	score=$(sed -n 's/^→ Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$T/sec.out")
	assert_match '^[0-9]+\.[0-9]$' "$score" "$u: an exposure score ($(tail -n 3 "$T/sec.out"))"
	echo "$u: exposure $score"
	awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' ||
	    fail "$u: exposure $score is over 2.0: $(grep '✗' "$T/sec.out")"
done

step "the hardening and the service settings are there"
for u in $SERVICES; do
	for d in User=reconciled NoNewPrivileges=yes ProtectSystem=strict \
	    ProtectHome=yes PrivateTmp=yes PrivateDevices=yes UMask=0077 \
	    MemoryDenyWriteExecute=yes CapabilityBoundingSet= \
	    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
	    SystemCallFilter=@system-service StateDirectoryMode=0700 \
	    ConfigurationDirectory=reconciled; do
		grep -qx -- "$d" "$T/units/$u" || fail "$u: no $d line"
	done
	assert_eq 2 "$(grep -c '^LoadCredential=client\.\(crt\|key\):/' "$T/units/$u")" \
	    "$u: LoadCredential= for the certificate and the key"
done
for u in reconciled.service reconciled@.service; do
	for d in Type=notify WatchdogSec=30s Restart=on-failure; do
		grep -qx -- "$d" "$T/units/$u" || fail "$u: no $d line"
	done
done
grep -qx 'StateDirectory=reconciled' "$T/units/reconciled.service" ||
    fail "reconciled.service: no StateDirectory=reconciled"
grep -qx 'StateDirectory=reconciled/%i' "$T/units/reconciled@.service" ||
    fail "reconciled@.service: no per-instance StateDirectory="
assert_match "^ExecStart=$RECONCILED -c /.*/reconciled/%i\\.conf\$" \
    "$(grep '^ExecStart=' "$T/units/reconciled@.service")" "reconciled@.service: its own config"
assert_eq "ExecStart=$RECONCILED --once" "$(grep '^ExecStart=' "$T/units/reconciled-once.service")" \
    "reconciled-once.service"
grep -qx 'Type=oneshot' "$T/units/reconciled-once.service" ||
    fail "reconciled-once.service: not Type=oneshot"

step "sysusers.d and tmpfiles.d: the user, and its 0700 state directory"
if command -v systemd-sysusers >/dev/null 2>&1 && command -v systemd-tmpfiles >/dev/null 2>&1; then
	mkdir -p "$T/root/etc"
	systemd-sysusers --root="$T/root" "$top_srcdir/systemd/sysusers-reconciled.conf" \
	    >"$T/sysusers.out" 2>&1 || fail "systemd-sysusers: $(cat "$T/sysusers.out")"
	uid=$(awk -F: '$1 == "reconciled" { print $3 }' "$T/root/etc/passwd")
	gid=$(awk -F: '$1 == "reconciled" { print $3 }' "$T/root/etc/group")
	assert_match '^[0-9]+$' "$uid" "uid of reconciled"
	assert_match '^[0-9]+$' "$gid" "gid of reconciled"
	assert_eq "nologin" "$(awk -F: '$1 == "reconciled" { print $7 }' "$T/root/etc/passwd" | sed 's|.*/||')" \
	    "reconciled's shell"
	systemd-tmpfiles --root="$T/root" --create "$top_srcdir/systemd/tmpfiles-reconciled.conf" \
	    >"$T/tmpfiles.out" 2>&1 || fail "systemd-tmpfiles: $(cat "$T/tmpfiles.out")"
	assert_eq "700 $uid $gid" "$(stat -c '%a %u %g' "$T/root/var/lib/reconciled")" \
	    "/var/lib/reconciled: mode, owner, group"
else
	echo "(no systemd-sysusers or systemd-tmpfiles: snippets not checked)"
fi

step "the example configuration: every key, and valid"
EXAMPLE=$top_srcdir/examples/reconciled.conf
keys=$(sed -n '/^static const struct keydef keys\[\] = {/,/^};/p' "$top_srcdir/src/config.c" |
    sed -n 's/.*"\([a-z]*\)", "\([a-z_]*\)".*/\1 \2/p')
[ "$(printf '%s\n' "$keys" | wc -l)" -ge 20 ] || fail "could not read the keys from config.c: $keys"
printf '%s\n' "$keys" | while read -r section key; do
	awk -v s="[$section]" -v k="$key" '
		/^\[/ { in_s = ($0 == s) }
		in_s && ($0 ~ "^;?" k " = " || $0 ~ "^;?" k " =$") { found = 1 }
		END { exit !found }' "$EXAMPLE" ||
	    fail "examples/reconciled.conf: no \"$key\" in [$section]"
done
for s in PURCHASED PAYMENT_COMPLETED ORDER_IN_PROGRESS ERROR FAILED REFUNDED NOT_FOUND MINIAPP_MISMATCH '\*'; do
	grep -q "^;$s = " "$EXAMPLE" || fail "examples/reconciled.conf: no [status] $s"
done
# As shipped (with the certificate handed over as credentials) and with
# every default spelled out, it is a configuration -n accepts.
mkdir "$T/creds"
if command -v "${OPENSSL:-openssl}" >/dev/null 2>&1 &&
    "${OPENSSL:-openssl}" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$T/creds/client.key" -out "$T/creds/client.crt" -days 60 \
    -subj "/CN=reconciled example" >"$T/openssl.out" 2>&1; then
	{ cat "$EXAMPLE"; printf '[ledger]\npath = %s\n' "$T/ledger.db"; } >"$T/shipped.conf"
	assert_exit 0 env CREDENTIALS_DIRECTORY="$T/creds" "$RECONCILED" -n -c "$T/shipped.conf"
	assert_eq "configuration OK" "$(out)" "-n on the example as shipped"
	sed -e 's/^;\([A-Za-z_*][A-Za-z_]* = \)/\1/' -e '/^cert = client.crt$/d' \
	    -e '/^key = client.key$/d' -e "s|^path = .*|path = $T/ledger2.db|" \
	    -e "s|^cert = .*|cert = $T/creds/client.crt|" -e "s|^key = .*|key = $T/creds/client.key|" \
	    "$EXAMPLE" >"$T/defaults.conf"
	assert_exit 0 "$RECONCILED" -n -c "$T/defaults.conf"
	assert_eq "configuration OK" "$(out)" "-n on the example with every default uncommented"
else
	echo "(no test certificates: the example is not checked with -n)"
fi
echo "PASS: $TEST_NAME"
