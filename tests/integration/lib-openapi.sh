# Checks against the control API's contract, docs/openapi.yaml: the npm
# tools of tests/openapi (installed once per build tree with `npm ci` from
# the committed lockfile), a recorder of every control API exchange a test
# makes, and the checks of those exchanges and of delivered events.
# Sourced by lib-daemon.sh; pass() checks the recorded exchanges.

OPENAPI_DOC=$top_srcdir/docs/openapi.yaml
OPENAPI_NODE=$top_builddir/tests/openapi-node
API_LOG=

# openapi_tools: installs the checker and its packages into $OPENAPI_NODE
# unless they are there already; returns 1 (with a message) when node or
# npm is missing. Concurrent tests take a lock around the install.
openapi_tools()
{
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		echo "node or npm is not installed: no check against docs/openapi.yaml"
		return 1
	fi
	_lo_lock=$top_builddir/tests/.openapi-node.lock
	mkdir -p "$top_builddir/tests"
	_lo_i=0
	until mkdir "$_lo_lock" 2>/dev/null; do
		_lo_i=$((_lo_i + 1))
		[ $_lo_i -lt 3000 ] ||
		    fail "cannot take the lock $_lo_lock for 5 minutes (stale? remove it)"
		sleep 0.1
	done
	_lo_st=0
	_lo_src=$top_srcdir/tests/openapi
	if ! cmp -s "$_lo_src/package-lock.json" "$OPENAPI_NODE/package-lock.json" ||
	    [ ! -d "$OPENAPI_NODE/node_modules" ]; then
		rm -rf "$OPENAPI_NODE"
		mkdir -p "$OPENAPI_NODE"
		cp "$_lo_src/package.json" "$_lo_src/package-lock.json" "$OPENAPI_NODE/"
		(cd "$OPENAPI_NODE" && npm ci --no-audit --no-fund --loglevel=error) \
		    >"$T/npm-ci.log" 2>&1 || _lo_st=$?
		[ $_lo_st = 0 ] || rm -rf "$OPENAPI_NODE"
	fi
	if [ $_lo_st = 0 ] && ! cmp -s "$_lo_src/openapi-check.mjs" "$OPENAPI_NODE/openapi-check.mjs"; then
		cp "$_lo_src/openapi-check.mjs" "$OPENAPI_NODE/openapi-check.mjs.tmp" &&
		    mv "$OPENAPI_NODE/openapi-check.mjs.tmp" "$OPENAPI_NODE/openapi-check.mjs"
	fi
	rmdir "$_lo_lock"
	if [ $_lo_st != 0 ]; then
		cat "$T/npm-ci.log" >&2
		fail "npm ci in $OPENAPI_NODE failed (exit $_lo_st)"
	fi
	return 0
}

# openapi_check COMMAND [ARG...]: runs tests/openapi/openapi-check.mjs on
# docs/openapi.yaml (after openapi_tools); see that file for the commands.
openapi_check()
{
	node "$OPENAPI_NODE/openapi-check.mjs" "$OPENAPI_DOC" "$@"
}

# record_exchanges: from now on the control API helpers keep each request
# and its answer in $API_LOG, which pass() checks against the document.
record_exchanges()
{
	API_LOG=$T/exchanges
	API_N=0
	mkdir -p "$API_LOG"
}

# exchange_next METHOD PATH: sets EX_HDRS and EX_BODY, the files where
# curl -D and -o put the next answer: in $API_LOG when recording, beside
# "METHOD PATH" in a .req file; else in $T. Starts no process, so it costs
# a timed request nothing.
exchange_next()
{
	if [ -z "$API_LOG" ]; then
		EX_HDRS=$T/hdrs
		EX_BODY=$T/body
		return 0
	fi
	API_N=$((API_N + 1))
	printf '%s %s\n' "$1" "$2" >"$API_LOG/$API_N.req"
	EX_HDRS=$API_LOG/$API_N.hdrs
	EX_BODY=$API_LOG/$API_N.body
}

# curl_to [CURL_ARG...]: curl, through the unix socket $SOCK when it is set.
curl_to()
{
	if [ -n "${SOCK:-}" ]; then
		curl --unix-socket "$SOCK" "$@"
	else
		curl "$@"
	fi
}

# api_request METHOD PATH [CURL_ARG...]: one request to $BASE (through the
# unix socket $SOCK when set), recorded by exchange_next; sets CODE and BODY,
# keeps the headers in $EX_HDRS and the body in $EX_BODY (empty for HEAD).
api_request()
{
	_ar_m=$1
	_ar_p=$2
	shift 2
	exchange_next "$_ar_m" "$_ar_p"
	_ar_out=$EX_BODY
	if [ "$_ar_m" = HEAD ]; then
		# curl -I writes the headers as the output: there is no body.
		: >"$EX_BODY"
		_ar_out=/dev/null
		set -- -I "$@"
	else
		set -- -X "$_ar_m" "$@"
	fi
	CODE=$(curl_to -sS -o "$_ar_out" -D "$EX_HDRS" -w '%{http_code}' "$@" \
	    "$BASE$_ar_p") || fail "curl $_ar_m $_ar_p failed"
	BODY=$(cat "$EX_BODY" 2>/dev/null || true)
}

# hdr NAME: the value of the last answer's header NAME (without the CR).
hdr()
{
	grep -i "^$1:" "$EX_HDRS" | head -n 1 | sed -e 's/^[^:]*: *//' | tr -d '\r'
}

# record_exchange METHOD PATH HEADERS_FILE BODY_FILE: keeps a copy of one
# exchange when recording (for helpers that run in a subshell, where
# exchange_next's count would be lost).
record_exchange()
{
	[ -n "$API_LOG" ] || return 0
	_lo_x=$(mktemp "$API_LOG/s.XXXXXX")
	printf '%s %s\n' "$1" "$2" >"$_lo_x.req"
	cp "$3" "$_lo_x.hdrs"
	if [ -f "$4" ]; then
		cp "$4" "$_lo_x.body"
	else
		: >"$_lo_x.body"
	fi
}

# check_exchanges: every recorded answer is one the document lists for its
# operation (status, headers, content type, body schema), and no path or
# method the daemon serves is missing from it.
check_exchanges()
{
	[ -n "$API_LOG" ] || return 0
	openapi_tools || return 0
	[ -n "$(ls "$API_LOG")" ] || fail "no control API exchange was recorded"
	openapi_check exchanges "$API_LOG" ||
	    fail "answers of the control API do not match docs/openapi.yaml"
}

# check_events FILE...: every line of each JSON Lines file is an event as
# the document's Event schema describes it.
check_events()
{
	openapi_tools || return 0
	openapi_check events "$@" ||
	    fail "delivered events do not match docs/openapi.yaml's Event schema"
}
