#!/bin/sh
# A pull consumer for reconciled's events with curl and jq: long-polls
# GET /v1/events after the cursor kept in a file, hands each event (one JSON
# line on stdin) to a handler command in order, and stores the new cursor
# only after every event of the batch was handled.
#
#   RECONCILED_SOCKET=/run/reconciled/control.sock \
#       CURSOR_FILE=./cursor sh examples/pull-events.sh [--once] [HANDLER...]
#   RECONCILED_URL=http://127.0.0.1:8790 RECONCILED_TOKEN=... \
#       CURSOR_FILE=./cursor sh examples/pull-events.sh [--once] [HANDLER...]
#
# On the unix socket (the default under systemd) no token is needed; over
# TCP the token is handed to curl in a file only this user can read, never
# on its command line (which every user sees in ps).
#
# Without a HANDLER each event is printed as "TYPE ORDER_ID USER_KEY (event
# ID)". A handler that exits non-zero stops the script before the cursor
# moves: the batch comes again on the next run, so handlers must be
# idempotent (dedupe on .key). --once: take what is there now and exit.
set -eu

SOCKET=${RECONCILED_SOCKET:-}
if [ -n "$SOCKET" ]; then
	URL=${RECONCILED_URL:-http://localhost}
else
	URL=${RECONCILED_URL:-http://127.0.0.1:8790}
fi
CURSOR_FILE=${CURSOR_FILE:-events.cursor}
LIMIT=100
WAIT=30
ONCE=0
if [ "${1:-}" = --once ]; then
	ONCE=1
	WAIT=0
	shift
fi

handle()
{
	if [ $# -gt 0 ]; then
		"$@"
	else
		jq -r '"\(.type) \(.orderId) \(.userKey) (event \(.id))"'
	fi
}

after=0
[ ! -s "$CURSOR_FILE" ] || after=$(cat "$CURSOR_FILE")
case $after in
''|*[!0-9]*)
	echo "pull-events: $CURSOR_FILE holds \"$after\", not an event id" >&2
	exit 1 ;;
esac

tmp=$(mktemp "${TMPDIR:-/tmp}/pull-events.XXXXXX")
hdr=$(mktemp "${TMPDIR:-/tmp}/pull-events.XXXXXX")	# mode 0600
trap 'rm -f "$tmp" "$hdr"' EXIT
# printf is built into sh: the token is on no command line.
[ -z "${RECONCILED_TOKEN:-}" ] ||
    printf 'Authorization: Bearer %s\n' "$RECONCILED_TOKEN" >"$hdr"
trap 'exit 130' INT TERM
delay=1
while :; do
	: >"$tmp"
	code=$(curl -sS -o "$tmp" -w '%{http_code}' -m $((WAIT + 15)) \
	    -H "@$hdr" ${SOCKET:+--unix-socket "$SOCKET"} \
	    "$URL/v1/events?after=$after&limit=$LIMIT&wait=$WAIT") || code=000
	if [ "$code" != 200 ] ||
	    ! jq -e '.events | type == "array"' "$tmp" >/dev/null 2>&1; then
		echo "pull-events: GET /v1/events: HTTP $code $(head -c 300 "$tmp"); again in $delay s" >&2
		sleep "$delay"
		[ $delay -ge 30 ] || delay=$((delay * 2))
		continue
	fi
	delay=1
	n=$(jq '.events | length' "$tmp")
	i=0
	while [ "$i" -lt "$n" ]; do
		jq -c ".events[$i]" "$tmp" | handle "$@"
		i=$((i + 1))
	done
	if [ "$n" -gt 0 ]; then
		after=$(jq -r .lastId "$tmp")
		printf '%s\n' "$after" >"$CURSOR_FILE.tmp"
		mv "$CURSOR_FILE.tmp" "$CURSOR_FILE"
	fi
	if [ $ONCE = 1 ] && [ "$n" -lt $LIMIT ]; then
		break
	fi
done
