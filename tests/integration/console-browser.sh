#!/bin/sh
# The operator console in headless Chromium against the real daemon and
# toss-sim (console-browser.py does the clicking): only the login without
# the token, counts equal to `reconcilectl stats --json`, an unknown status
# in "needs a human" with its configuration line and gone after the mapping
# and SIGHUP, the re-check button, a new event in the feed without a
# reload, no console error, no request leaving 127.0.0.1, no inline script.
# Screenshots of each view at 1280x800 and 390x844 are left in
# tests/integration/console-shots/ beside this test's log.
. "$top_srcdir/tests/integration/lib-daemon.sh"

require_cmd curl jq
for f in /usr/bin/chromium /usr/bin/chromedriver; do
	[ -x "$f" ] || skip "$f is missing (Debian: chromium chromium-driver)"
done
/usr/bin/python3 -c 'import selenium' 2>/dev/null ||
    skip "python3-selenium is missing"

PORT=$(/usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
AUTH=br0wser-t0k3n
SHOTS=$top_builddir/tests/integration/console-shots
rm -rf "$SHOTS"
mkdir -p "$SHOTS"

start_sim "$SCENARIOS/unknown-status.json"
write_daemon_config
sed -e "s|^listen =.*|listen = 127.0.0.1:$PORT|" "$CONF" >"$CONF.new"
printf 'token = %s\n' "$AUTH" >>"$CONF.new"
mv "$CONF.new" "$CONF"
add_order us-new 3001
add_order us-paid 3002
start_daemon
wait_until 10 "us-new is held and us-paid granted" \
    eval 'state_is us-new held && state_is us-paid granted'
ctl stats --json >"$T/stats.json" || fail "reconcilectl stats failed"

step "the console in headless Chromium"
st=0
HOME=$T /usr/bin/python3 "$top_srcdir/tests/integration/console-browser.py" \
    "$BASE" "$AUTH" "$T/stats.json" "$CONF" "$DAEMON_PID" "$SHOTS" || st=$?
[ "$st" != 77 ] || skip "chromium cannot run here"
assert_eq 0 "$st" "the browser checks"
ls "$SHOTS"

pass
