#!/bin/sh
# One command from a fresh Debian 12 checkout to a result:
#   ./quickstart.sh demo    install build dependencies, build, run the demo
#                           (daemon against the bundled simulator)
#   ./quickstart.sh test    install build and test dependencies, build with
#                           warnings as errors, run the whole test suite
#   ./quickstart.sh deps    only install the Debian packages
# Builds go to ./build (BUILD_DIR to change it); extra ./configure options can
# be passed in CONFIGURE_FLAGS.
set -eu

cd "$(dirname "$0")"
top=$(pwd)
build=${BUILD_DIR:-$top/build}

BUILD_PACKAGES="build-essential autoconf automake libtool pkgconf
libevent-dev libcurl4-openssl-dev libjson-c-dev libsqlite3-dev libinih-dev
libssl-dev libsystemd-dev libpq-dev openssl ca-certificates"
# postgresql: the PostgreSQL ledger's tests start throwaway servers;
# prometheus: promtool checks the alerting rules and the /metrics output;
# nodejs and npm: the Standard Webhooks library checks real deliveries (an
# npm that came with another Node.js, such as NodeSource's, is used as is).
TEST_PACKAGES="libcmocka-dev jq sqlite3 postgresql curl python3 systemd procps prometheus chromium chromium-driver python3-selenium"
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
	TEST_PACKAGES="$TEST_PACKAGES nodejs npm"

need_packages() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "quickstart: installing:$missing"
	if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
	$sudo apt-get update -q
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
}

configure_build() {
	[ -x configure ] || ./autogen.sh
	mkdir -p "$build"
	cd "$build"
	# shellcheck disable=SC2086
	[ -f Makefile ] || "$top/configure" --enable-debug ${CONFIGURE_FLAGS:-}
	make -j"$(nproc)"
}

case "${1:-}" in
deps)
	# shellcheck disable=SC2086
	need_packages $BUILD_PACKAGES $TEST_PACKAGES
	;;
demo)
	# shellcheck disable=SC2086
	need_packages $BUILD_PACKAGES $TEST_PACKAGES
	configure_build
	make demo
	;;
test)
	# shellcheck disable=SC2086
	need_packages $BUILD_PACKAGES $TEST_PACKAGES
	configure_build
	make -j"$(nproc)" check
	;;
*)
	echo "usage: $0 demo|test|deps" >&2
	exit 64
	;;
esac
