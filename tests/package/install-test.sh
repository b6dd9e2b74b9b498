#!/bin/sh
# Installs a built reconciled .deb into a fresh Debian 12 root (debootstrap
# --variant=minbase) and checks what an administrator gets:
#  1. dpkg -i, then apt-get -f install (the dependencies) succeed;
#  2. the system user and group "reconciled", /var/lib/reconciled 0700
#     reconciled:reconciled, the conffile /etc/reconciled/reconciled.conf
#     0640 root:reconciled, the binaries, units, man pages and documents;
#     neither reconciled.service nor reconciled-once.timer enabled;
#  3. with a test certificate placed as the README says, `reconciled -n` run
#     as the unit runs it (user reconciled, $CREDENTIALS_DIRECTORY) prints
#     "configuration OK" and creates the ledger; reconcilectl reads it;
#  4. installing again over it keeps the edited conffile, its mode and group;
#     dpkg -r keeps the conffile and the ledger; dpkg -P removes the conffile
#     and its stat override, asks nothing, and keeps the ledger;
#  5. a second install and purge on that root, with the file lists compared
#     before and after: nothing is left but /var/lib/reconciled and the
#     ledger in it.
#
# usage: install-test.sh RECONCILED.deb
#        ROOT_CACHE=FILE.tar install-test.sh --root-only
# Environment: MIRROR (default: the bookworm mirror of this host's apt
# sources), ROOT_CACHE (a .tar of the debootstrapped root, made if absent and
# reused while younger than a day). --root-only only makes ROOT_CACHE, so
# that CI can debootstrap while the package builds. Needs root, debootstrap, mount and chroot;
# exits 77 (skip) without them. The test certificate is made on the host with
# tests/sim/mkcerts.sh (openssl).
set -eu

say() { echo "install-test: $*"; }
skip() { say "SKIP: $*"; exit 77; }
fail() { say "FAIL: $*"; exit 1; }

usage() {
	echo "usage: install-test.sh RECONCILED.deb | ROOT_CACHE=FILE.tar install-test.sh --root-only" >&2
	exit 64
}
[ $# -eq 1 ] || usage
root_only=0
if [ "$1" = --root-only ]; then
	[ -n "${ROOT_CACHE:-}" ] || usage
	root_only=1
else
	deb=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	[ -f "$deb" ] || fail "no such package: $1"
fi
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot, mount)"
command -v debootstrap >/dev/null 2>&1 || skip "debootstrap is not installed"
command -v chroot >/dev/null 2>&1 || skip "chroot is not available"
command -v "${OPENSSL:-openssl}" >/dev/null 2>&1 || skip "openssl is not installed (test certificate)"

if [ -z "${MIRROR:-}" ]; then
	# The first URI of this host's Debian sources (deb822 or one-line).
	MIRROR=$(sed -n 's/^URIs: *\([^ ]*\/debian\)\/\{0,1\} *$/\1/p' \
	    /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
	[ -n "$MIRROR" ] || MIRROR=$(sed -n \
	    's/^deb  *\(\[[^]]*\]  *\)\{0,1\}\([^ ]*\/debian\)\/\{0,1\}  *bookworm .*/\2/p' \
	    /etc/apt/sources.list 2>/dev/null | head -1)
	[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
fi

work=$(mktemp -d /var/tmp/reconciled-install-test.XXXXXX)
root=$work/root
cleanup() {
	if mountpoint -q "$root/proc" 2>/dev/null; then
		umount "$root/proc" || umount -l "$root/proc" || true
	fi
	# Never remove a tree something is still mounted in.
	if mountpoint -q "$root/proc" 2>/dev/null; then
		say "left $work: $root/proc is still mounted"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

t0=$(date +%s)
mkdir "$root"
if [ -n "${ROOT_CACHE:-}" ] && [ -f "$ROOT_CACHE" ] &&
    [ -n "$(find "$ROOT_CACHE" -mmin -1440 2>/dev/null)" ]; then
	say "root from $ROOT_CACHE"
	tar -xf "$ROOT_CACHE" -C "$root"
else
	say "debootstrap --variant=minbase bookworm from $MIRROR"
	debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
		tail -20 "$work/debootstrap.log"
		fail "debootstrap failed"
	}
	if [ -n "${ROOT_CACHE:-}" ]; then
		mkdir -p "$(dirname "$ROOT_CACHE")"
		tar -cf "$ROOT_CACHE.tmp" -C "$root" . && mv "$ROOT_CACHE.tmp" "$ROOT_CACHE"
	fi
fi
say "root ready in $(( $(date +%s) - t0 )) s"
[ $root_only -eq 0 ] || exit 0

mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# Nothing may start a service inside the root.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
cp "$deb" "$root/tmp/reconciled.deb"

in_root() {
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	    LC_ALL=C DEBIAN_FRONTEND=noninteractive HOME=/root "$@" </dev/null
}
# "mode owner group" of a path in the root.
perms() { in_root stat -c '%a %U %G' "$1"; }
expect_perms() {
	got=$(perms "$1") || fail "$1 does not exist"
	[ "$got" = "$2" ] || fail "$1 is $got, expected $2"
}
expect_file() { [ -e "$root$1" ] || fail "$1 is missing"; }
expect_absent() { [ ! -e "$root$1" ] && [ ! -L "$root$1" ] || fail "$1 is still there"; }
status() { in_root dpkg-query -W -f '${Status}' reconciled 2>/dev/null || true; }
# Every path in the root, except what a running system keeps in memory or
# what apt and dpkg keep about themselves.
file_list() {
	(cd "$root" && find . -xdev \
	    \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./run -o -path ./tmp \
	       -o -path ./var/lib/dpkg -o -path ./var/lib/apt -o -path ./var/cache/apt \
	       -o -path ./var/cache/debconf -o -path ./var/log \) -prune -o -print) | sort
}

# --- 1. dpkg -i, then apt-get -f install ---
t1=$(date +%s)
if in_root dpkg -i /tmp/reconciled.deb >"$work/dpkg-i.log" 2>&1; then
	say "dpkg -i: installed (dependencies were present)"
else
	grep -q "dependency problems" "$work/dpkg-i.log" || {
		cat "$work/dpkg-i.log"
		fail "dpkg -i failed for another reason than missing dependencies"
	}
	say "dpkg -i: dependencies missing, as expected in a minbase root"
fi
in_root apt-get update -q >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get update"; }
in_root apt-get -f install -y -q --no-install-recommends >>"$work/apt.log" 2>&1 || {
	tail -30 "$work/apt.log"
	fail "apt-get -f install failed"
}
[ "$(status)" = "install ok installed" ] || fail "reconciled is '$(status)' after apt-get -f install"
say "dpkg -i + apt-get -f install: ok ($(( $(date +%s) - t1 )) s)"

# --- 2. what the package installed and set up ---
pw=$(in_root getent passwd reconciled) || fail "no user reconciled"
gr=$(in_root getent group reconciled) || fail "no group reconciled"
home=$(echo "$pw" | cut -d: -f6)
[ "$home" = /var/lib/reconciled ] || fail "user reconciled has home $home"
[ "$(echo "$pw" | cut -d: -f4)" = "$(echo "$gr" | cut -d: -f3)" ] ||
	fail "user reconciled is not in group reconciled: $pw / $gr"
[ "$(echo "$pw" | cut -d: -f3)" -lt 1000 ] || fail "user reconciled is not a system user: $pw"
expect_perms /var/lib/reconciled "700 reconciled reconciled"
expect_perms /etc/reconciled "755 root root"
expect_perms /etc/reconciled/reconciled.conf "640 root reconciled"
in_root dpkg-query -W -f '${Conffiles}\n' reconciled | grep -q '^ /etc/reconciled/reconciled.conf ' ||
	fail "/etc/reconciled/reconciled.conf is not a conffile"
expect_perms /usr/sbin/reconciled "755 root root"
expect_perms /usr/bin/reconcilectl "755 root root"
for f in /lib/systemd/system/reconciled.service /lib/systemd/system/reconciled@.service \
    /lib/systemd/system/reconciled-once.service /lib/systemd/system/reconciled-once.timer \
    /usr/lib/sysusers.d/reconciled.conf /usr/lib/tmpfiles.d/reconciled.conf \
    /usr/share/man/man8/reconciled.8.gz /usr/share/man/man8/reconcilectl.8.gz \
    /usr/share/man/man5/reconciled.conf.5.gz \
    /usr/share/doc/reconciled/README.Debian /usr/share/doc/reconciled/copyright \
    /usr/share/doc/reconciled/examples/reconciled.conf; do
	expect_file "$f"
done
# The source's docs/DESIGN.md; dh_compress gzips documents over 4 kB.
expect_file /usr/share/doc/reconciled/DESIGN.md.gz	# docs/DESIGN.md
for u in reconciled.service reconciled-once.timer; do
	en=$(in_root systemctl is-enabled "$u" 2>/dev/null || true)
	[ "$en" = disabled ] || fail "$u is '$en' after installation, expected disabled"
done
say "user, group, directories, conffile, units (disabled): ok"

# --- 3. a certificate placed as the README says; the unit's check ---
"$top/tests/sim/mkcerts.sh" "$work/certs" >/dev/null
install -m 0600 -o root -g root "$work/certs/client.crt" "$root/etc/reconciled/client.crt"
install -m 0600 -o root -g root "$work/certs/client.key" "$root/etc/reconciled/client.key"
# What systemd does for LoadCredential=: private copies the service reads.
creds=/run/credentials/reconciled.service
mkdir -p "$root$creds"
cp "$root/etc/reconciled/client.crt" "$root/etc/reconciled/client.key" "$root$creds/"
in_root chown -R reconciled:reconciled "$creds"
chmod 0500 "$root$creds"
out=$(in_root runuser -u reconciled -- /usr/bin/env CREDENTIALS_DIRECTORY=$creds \
    reconciled -n 2>&1) || fail "reconciled -n failed: $out"
echo "$out" | grep -qx "configuration OK" || fail "reconciled -n said: $out"
say "reconciled -n: $(echo "$out" | tail -1)"
expect_perms /var/lib/reconciled/ledger.db "600 reconciled reconciled"
out=$(in_root runuser -u reconciled -- reconcilectl stats 2>&1) ||
	fail "reconcilectl stats failed: $out"
say "reconcilectl stats as reconciled: ok"

# The same package again over the installed one, as an upgrade runs: dpkg
# replaces the conffile's metadata from the stat override, the admin's
# edit stays, and nothing is asked.
echo "; edited by the administrator" >>"$root/etc/reconciled/reconciled.conf"
in_root dpkg -i /tmp/reconciled.deb >"$work/dpkg-i-again.log" 2>&1 || {
	cat "$work/dpkg-i-again.log"
	fail "dpkg -i over the installed package failed"
}
[ "$(status)" = "install ok installed" ] || fail "after reinstalling: '$(status)'"
expect_perms /etc/reconciled/reconciled.conf "640 root reconciled"
tail -1 "$root/etc/reconciled/reconciled.conf" | grep -qx "; edited by the administrator" ||
	fail "reinstalling lost the administrator's edit of reconciled.conf"
say "dpkg -i over itself: conffile kept with its edit, mode and group"

# --- 4. remove, then purge ---
in_root dpkg -r reconciled >"$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log"; fail "dpkg -r"; }
[ "$(status)" = "deinstall ok config-files" ] || fail "after dpkg -r: '$(status)'"
expect_absent /usr/sbin/reconciled
expect_absent /lib/systemd/system/reconciled.service
expect_perms /etc/reconciled/reconciled.conf "640 root reconciled"
expect_perms /var/lib/reconciled/ledger.db "600 reconciled reconciled"
say "dpkg -r: binaries gone, conffile and ledger kept"

in_root dpkg -P reconciled >"$work/dpkg-p.log" 2>&1 || { cat "$work/dpkg-p.log"; fail "dpkg -P"; }
[ -z "$(status)" ] || [ "$(status)" = "unknown ok not-installed" ] || fail "after dpkg -P: '$(status)'"
expect_absent /etc/reconciled/reconciled.conf
[ -z "$(in_root dpkg-statoverride --list /etc/reconciled/reconciled.conf || true)" ] ||
	fail "the stat override of reconciled.conf survived the purge"
left=$(cd "$root/etc/reconciled" && ls -A | tr '\n' ' ')
[ "$left" = "client.crt client.key " ] || fail "/etc/reconciled after purge holds: $left"
expect_perms /var/lib/reconciled/ledger.db "600 reconciled reconciled"
in_root getent passwd reconciled >/dev/null || fail "purge removed the user"
say "dpkg -P: conffile and override gone; ledger, certificate and user kept"

# --- 5. install and purge once more, comparing the file lists ---
rm -r "$root/etc/reconciled" "$root/var/lib/reconciled" "$root$creds"
file_list >"$work/before"
in_root dpkg -i /tmp/reconciled.deb >"$work/dpkg-i2.log" 2>&1 || {
	cat "$work/dpkg-i2.log"
	fail "second dpkg -i (dependencies present) failed"
}
in_root apt-get -f install -y -q >>"$work/apt.log" 2>&1 || fail "second apt-get -f install"
expect_perms /etc/reconciled/reconciled.conf "640 root reconciled"
expect_perms /var/lib/reconciled "700 reconciled reconciled"
mkdir -p "$root$creds"
cp "$work/certs/client.crt" "$work/certs/client.key" "$root$creds/"
in_root chown -R reconciled:reconciled "$creds"
out=$(in_root runuser -u reconciled -- /usr/bin/env CREDENTIALS_DIRECTORY=$creds \
    reconciled -n 2>&1) || fail "second reconciled -n failed: $out"
in_root dpkg -r reconciled >/dev/null 2>&1 || fail "second dpkg -r"
in_root dpkg -P reconciled >/dev/null 2>&1 || fail "second dpkg -P"
file_list >"$work/after"
stray=$(diff "$work/before" "$work/after" | sed -n 's/^[<>] //p' |
    grep -vx './var/lib/reconciled' | grep -vx './var/lib/reconciled/ledger.db' || true)
[ -z "$stray" ] || { diff "$work/before" "$work/after" || true; fail "stray files after purge: $stray"; }
[ -f "$root/var/lib/reconciled/ledger.db" ] || fail "the second purge lost the ledger"
say "install + purge: only /var/lib/reconciled/ledger.db is left"

say "PASS in $(( $(date +%s) - t0 )) s"
