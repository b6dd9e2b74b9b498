#!/bin/sh
# Real deliveries of the daemon's webhook sink, verified by someone else's
# code: the maintained Standard Webhooks library for Node.js (npm
# "standardwebhooks", installed from tests/node's lockfile) in
# webhook-recv-sw.js. Every delivery verifies; one answered 500 verifies
# again when it is retried (a new timestamp, a new signature, the same id
# and body); and a secret rotation (webhook_secret = OLD NEW, then NEW)
# never leaves a delivery that the consumer's one secret refuses.
# Skips (77) only when node or npm is missing.
. "$top_srcdir/tests/integration/lib-daemon.sh"

command -v node >/dev/null 2>&1 || skip "node is not installed"
command -v npm >/dev/null 2>&1 || skip "npm is not installed"

RECV=$top_srcdir/tests/integration/webhook-recv-sw.js
HOOKS=$T/hooks.jsonl
MODE=$T/hook.mode
RECV_PID=
at_exit '[ -z "$RECV_PID" ] || kill "$RECV_PID" 2>/dev/null'
: >"$HOOKS"

# The test's npm packages, installed once per build tree from the lockfile.
NODE_DEPS=$top_builddir/tests/node
node_deps()
{
	mkdir -p "$NODE_DEPS"
	if [ ! -d "$NODE_DEPS/node_modules/standardwebhooks" ] ||
	    ! cmp -s "$top_srcdir/tests/node/package-lock.json" \
	    "$NODE_DEPS/node_modules/.package-lock.json.installed"; then
		if [ "$(cd "$top_srcdir/tests/node" && pwd -P)" != \
		    "$(cd "$NODE_DEPS" && pwd -P)" ]; then
			cp "$top_srcdir/tests/node/package.json" \
			    "$top_srcdir/tests/node/package-lock.json" \
			    "$NODE_DEPS/"
		fi
		(cd "$NODE_DEPS" && npm ci --no-audit --no-fund \
		    --ignore-scripts) >"$T/npm.log" 2>&1 || {
			cat "$T/npm.log" >&2
			fail "npm ci in $NODE_DEPS failed"
		}
		cp "$top_srcdir/tests/node/package-lock.json" \
		    "$NODE_DEPS/node_modules/.package-lock.json.installed"
	fi
	NODE_PATH=$NODE_DEPS/node_modules
	export NODE_PATH
}

# secret TEXT: a whsec_ secret made of TEXT's bytes.
secret()
{
	printf 'whsec_%s' "$(printf '%s' "$1" | "${OPENSSL:-openssl}" base64 -A)"
}
OLD=$(secret 'reconciled standard webhooks old key')
NEW=$(secret 'reconciled standard webhooks new key')

set_mode()
{
	printf '%s\n' "$@" >"$MODE.tmp"
	mv "$MODE.tmp" "$MODE"
}

# deliveries KEY: "answer valid-under-old,valid-under-new" of each request
# for KEY, in order.
deliveries()
{
	jq -r --arg k "$1" 'select(.id == $k) |
	    "\(.answer) \(.valid | map(tostring) | join(","))"' "$HOOKS" |
	    tr '\n' ' ' | sed 's/ $//'
}

# configure SECRETS: the webhook sink signs with SECRETS; reloads a running
# daemon.
configure()
{
	write_daemon_config "[events]" \
	    "webhook_url = http://127.0.0.1:$HOOK_PORT/hook" \
	    "webhook_secret = $1" \
	    "webhook_timeout = 2s"
	use_control_sock
	[ -z "$DAEMON_PID" ] || hup_daemon
}

# grant_one ORDER: the order is paid, granted and its grant delivered 2xx.
grant_one()
{
	post_order "$1" 9
	wait_until 10 "$1 is granted" state_is "$1" granted
	wait_until 15 "$1:grant is delivered" eval \
	    "jq -e --arg k '$1:grant' 'select(.id == \$k and .answer == 204)' '$HOOKS'"
}

node_deps
start_sim "$SCENARIOS/paid.json"
node "$RECV" --secret "$OLD" --secret "$NEW" --log "$HOOKS" \
    --port-file "$T/hook.port" --mode-file "$MODE" 2>>"$T/recv.err" &
RECV_PID=$!
wait_until 10 "webhook-recv-sw.js writes its port file" test -s "$T/hook.port"
HOOK_PORT=$(cat "$T/hook.port")

# ---------------------------------------------------------------------------
step "one secret: every delivery verifies with it (and only with it)"
configure "$OLD"
start_daemon
grant_one paid-sw-1
grant_one paid-sw-2
assert_eq "204 true,false" "$(deliveries paid-sw-1:grant)" "paid-sw-1: verified under OLD"
assert_eq "204 true,false" "$(deliveries paid-sw-2:grant)" "paid-sw-2: verified under OLD"

# ---------------------------------------------------------------------------
step "a 500, then the retry: the same id and body verify again"
set_mode "500 paid-sw-3:grant"
post_order paid-sw-3 9
wait_until 10 "paid-sw-3:grant is refused once" eval \
    '[ "$(deliveries paid-sw-3:grant)" = "500 true,false" ]'
set_mode
wait_until 15 "paid-sw-3:grant is retried and accepted" eval \
    '[ "$(deliveries paid-sw-3:grant)" = "500 true,false 204 true,false" ]'
assert_eq 1 "$(jq -r 'select(.id == "paid-sw-3:grant") | .body' "$HOOKS" | sort -u | wc -l | tr -d ' ')" \
    "the retry carries the same body"
assert_eq "$(ctl events --json | jq -c 'select(.key == "paid-sw-3:grant")')" \
    "$(jq -r 'select(.id == "paid-sw-3:grant") | .body' "$HOOKS" | head -n 1)" \
    "the body is the stored payload, byte for byte"
assert_eq 2 "$(jq -r 'select(.id == "paid-sw-3:grant") | .signature' "$HOOKS" | sort -u | wc -l | tr -d ' ')" \
    "the retry is signed afresh"

# ---------------------------------------------------------------------------
step "rotation: OLD and NEW at once, two signatures, each verifies alone"
configure "$OLD $NEW"
grant_one paid-sw-4
assert_eq "204 true,true" "$(deliveries paid-sw-4:grant)" "paid-sw-4: verified under OLD and under NEW"
assert_match '^v1,[A-Za-z0-9+/=]{44} v1,[A-Za-z0-9+/=]{44}$' \
    "$(jq -r 'select(.id == "paid-sw-4:grant") | .signature' "$HOOKS")" \
    "webhook-signature lists two v1 signatures, space-separated"
set_mode "500 paid-sw-5:grant"
post_order paid-sw-5 9
wait_until 10 "paid-sw-5:grant is refused once" eval \
    '[ "$(deliveries paid-sw-5:grant)" = "500 true,true" ]'
set_mode
wait_until 15 "paid-sw-5:grant is retried and accepted" eval \
    '[ "$(deliveries paid-sw-5:grant)" = "500 true,true 204 true,true" ]'

# ---------------------------------------------------------------------------
step "rotation done: NEW alone"
configure "$NEW"
grant_one paid-sw-6
assert_eq "204 false,true" "$(deliveries paid-sw-6:grant)" "paid-sw-6: verified under NEW only"

# ---------------------------------------------------------------------------
step "nothing else was sent, and nothing was refused by both"
assert_eq "paid-sw-1:grant paid-sw-2:grant paid-sw-3:grant paid-sw-4:grant paid-sw-5:grant paid-sw-6:grant" \
    "$(jq -r .id "$HOOKS" | LC_ALL=C sort -u | tr '\n' ' ' | sed 's/ $//')" \
    "one key per granted order"
assert_eq 0 "$(jq -r 'select(.valid | any | not) | .id' "$HOOKS" | wc -l | tr -d ' ')" \
    "no delivery failed to verify under every secret the consumer held"
for s in "$OLD" "$NEW"; do
	! grep -qF "${s#whsec_}" "$DAEMON_LOG" || fail "a secret was logged"
done
pass
