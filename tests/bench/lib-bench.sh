# Helpers shared by the make bench scenarios (tests/bench/bench-*.sh): the
# daemon's CPU and memory from /proc, realistic ledgers built with the
# sqlite3 CLI straight from schema/001-ledger.sql, percentiles, sliding
# windows over the simulator's log, and the verdict table and summary line
# each scenario ends with. Source it after setting top_srcdir/top_builddir:
#   . "$top_srcdir/tests/bench/lib-bench.sh"   (it sources lib-daemon.sh)
# A bench prints figures and exits 0; a missed target says MISS.
# LEDGER_BACKEND=pg (scenarios throughput-pg and grant-pg of run.sh): the
# daemon's ledger is on a throwaway PostgreSQL server
# (tests/integration/lib-pg.sh, started by lib-daemon.sh) that flushes its
# WAL at each commit (fsync on), reached over its unix socket, or over TCP
# on 127.0.0.1 with BENCH_PG_TCP=1.

if [ "${LEDGER_BACKEND:-sqlite}" = pg ]; then
	PG_FSYNC=on
	PG_TCP=${BENCH_PG_TCP:-0}
fi
. "$top_srcdir/tests/integration/lib-daemon.sh"
if [ "$LEDGER_BACKEND" = pg ] && [ "$PG_TCP" = 1 ]; then
	PG_URL=$PG_TCP_URL	# write_config's ledger url
fi

require_cmd sqlite3 awk getconf python3
RECONCILED=${BENCH_RECONCILED:-$RECONCILED}
BENCH_DIR=$top_srcdir/tests/bench
BENCH_SCENARIO=$top_srcdir/tests/bench/bench.json
HZ=$(getconf CLK_TCK)
# shellcheck disable=SC2034 # read by lib-daemon.sh's start_daemon
DAEMON_VERBOSE=			# default log level: state changes only

# bench_header TITLE: what ran, where, and how busy the machine was.
bench_header()
{
	echo "== $1"
	echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), commit" \
	    "$(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null || echo '?')" \
	    "$(git -C "$top_srcdir" diff --quiet HEAD 2>/dev/null || echo '(with local changes)');" \
	    "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# sql DB SQL: the sqlite3 CLI, stopping at the first error.
sql()
{
	sqlite3 -batch -bail "$1" "$2"
}

# cpu_ms PID: utime + stime of PID so far, in ms.
cpu_ms()
{
	sed 's/^.*) //' "/proc/$1/stat" |
	    awk -v hz="$HZ" '{ printf "%d\n", ($12 + $13) * 1000 / hz }'
}

# pg_cpu_ms: utime + stime so far of the throwaway PostgreSQL server, in
# ms: the postmaster and every process it runs now, plus what it has reaped
# (its cutime + cstime: backends of connections that ended, e.g. those of
# reconcilectl).
pg_cpu_ms()
{
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v hz="$HZ" \
	    -v pm="$(head -n 1 "$PG_DIR/data/postmaster.pid")" '{
		l = $0
		sub(/^.*\) /, "", l)	# after "pid (comm) "
		split(l, f, " ")	# f[2] ppid, f[12..15] utime stime cutime cstime
		if ($1 == pm)
			t += f[12] + f[13] + f[14] + f[15]
		else if (f[2] == pm)
			t += f[12] + f[13]
	} END { printf "%d\n", t * 1000 / hz }'
}

# ledger_desc: what the ledger of this run is, for the headers.
ledger_desc()
{
	if [ "$LEDGER_BACKEND" = pg ]; then
		echo "PostgreSQL $(pg_sql reconciled 'SHOW server_version' | cut -d' ' -f1)" \
		    "(throwaway cluster, fsync $(pg_sql reconciled 'SHOW fsync')," \
		    "synchronous_commit $(pg_sql reconciled 'SHOW synchronous_commit')," \
		    "$([ "$PG_TCP" = 1 ] && echo "TCP 127.0.0.1:$PG_PORT" || echo "unix socket"))"
	else
		echo "SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1)"
	fi
}

# proc_kb PID FIELD: a kB field of /proc/PID/status (VmHWM, VmRSS).
proc_kb()
{
	sed -n "s/^$2:[[:space:]]*\\([0-9]*\\) kB\$/\\1/p" "/proc/$1/status"
}

# mib KB: "12.3" (MiB, one decimal).
mib()
{
	awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}

# gen PREFIX N: N import lines, ids PREFIX%07d, numeric userKeys.
gen()
{
	awk -v p="$1" -v n="$2" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "{\"orderId\":\"%s%07d\",\"userKey\":%d}\n", p, i, 400000000 + i
	}'
}

# mk_ledger DB GRANTED WHEN PENDING: a ledger made from the schema file as
# the daemon would have left it: GRANTED orders granted over the last 90
# days (ids rc-%08d when WHEN is "due", else gr-%08d) with their grant
# event and transition, under refund watch with the next check either in
# the next 6 days (WHEN "future", spread evenly) or already due (WHEN
# "due"); plus PENDING orders (due-%07d) added now and due now, as
# reconcilectl import writes them. Set BENCH_HISTORY=0 to leave out the
# events and transitions (a smaller, faster file).
mk_ledger()
{
	_mk_db=$1
	_mk_n=$2
	_mk_now=$(now_ms)
	_mk_day=86400000
	if [ "$3" = due ]; then
		_mk_prefix=rc-
		# due over the last hour, oldest first
		_mk_next="$_mk_now - 3600000 + i * 3600000 / $_mk_n"
	else
		_mk_prefix=gr-
		_mk_next="$_mk_now + 3600000 + i * (6 * $_mk_day) / $_mk_n"
	fi
	_mk_added="$_mk_now - 90 * $_mk_day + i * (89 * $_mk_day) / $_mk_n"
	rm -f "$_mk_db" "$_mk_db-wal" "$_mk_db-shm"
	{
		echo "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;"
		echo "PRAGMA cache_size = -262144;"
		cat "$top_srcdir/schema/001-ledger.sql"
		echo "PRAGMA user_version = 1;"
		echo "BEGIN;"
		[ "$_mk_n" -eq 0 ] || cat <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $_mk_n)
INSERT INTO orders (order_id, user_key, sku, ref, state, toss_status, reason,
    determined_at, polls, errors, added_at, updated_at, granted_at, next_poll_at)
SELECT printf('$_mk_prefix%08d', i), CAST(500000000 + i AS TEXT),
    'ait.0000010000.af647449.3bd55cfd00.0000000475', NULL, 'granted',
    'PAYMENT_COMPLETED', '결제가 완료되었어요.',
    strftime('%Y-%m-%dT%H:%M:%S+09:00', ($_mk_added) / 1000 + 32400, 'unixepoch'),
    2, 0, $_mk_added, $_mk_added + 3000, $_mk_added + 3000, $_mk_next
FROM n;
SQL
		if [ "$_mk_n" -gt 0 ] && [ "${BENCH_HISTORY:-1}" = 1 ]; then
			cat <<SQL
INSERT INTO transitions (order_id, at, from_status, to_status)
SELECT order_id, added_at + 1000, NULL, 'ORDER_IN_PROGRESS' FROM orders
UNION ALL
SELECT order_id, granted_at, 'ORDER_IN_PROGRESS', 'PAYMENT_COMPLETED' FROM orders;
INSERT INTO events (id, key, type, order_id, payload, created_at)
SELECT rowid, order_id || ':grant', 'grant', order_id,
    json_object('id', rowid, 'key', order_id || ':grant', 'type', 'grant',
        'orderId', order_id, 'userKey', user_key, 'sku', sku, 'ref', NULL,
        'tossStatus', toss_status, 'reason', reason,
        'statusDeterminedAt', determined_at,
        'at', strftime('%Y-%m-%dT%H:%M:%fZ', granted_at / 1000.0, 'unixepoch')),
    granted_at
FROM orders ORDER BY rowid;
INSERT INTO sinks (name, delivered_id) SELECT 'jsonl', max(id) FROM events;
SQL
		fi
		[ "$4" -eq 0 ] || cat <<SQL
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $4)
INSERT INTO orders (order_id, user_key, sku, ref, state, added_at, updated_at,
    next_poll_at)
SELECT printf('due-%07d', i), CAST(600000000 + i AS TEXT), NULL, NULL,
    'pending', $_mk_now, $_mk_now, $_mk_now FROM n;
SQL
		echo "COMMIT;"
		echo "PRAGMA journal_mode = WAL;"
	} | sqlite3 -batch -bail "$_mk_db" >/dev/null ||
	    fail "cannot build the ledger $_mk_db"
}

# pctl P: the P-th percentile (nearest rank) of the numbers on stdin.
pctl()
{
	sort -n | awk -v p="$1" '{ v[NR] = $1 } END {
		if (NR == 0) { print "-"; exit }
		i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR
		print v[i]
	}'
}

# window_stats LOG: "max_in_1s requests first_t last_t steady_requests
# steady_ms" from the simulator's log (steady: its first and last second
# left out).
window_stats()
{
	jq -r 'select(.orderId != null) | .t' "$1" | sort -n | awk '
	{ t[NR] = $1 }
	END {
		j = 1; best = 0
		for (i = 1; i <= NR; i++) {
			while (t[i] - t[j] >= 1000)
				j++
			if (i - j + 1 > best)
				best = i - j + 1
		}
		a = t[1] + 1000; b = t[NR] - 1000; s = 0
		for (i = 1; i <= NR; i++)
			if (t[i] >= a && t[i] < b)
				s++
		printf "%d %d %.0f %.0f %d %.0f\n", best, NR, t[1], t[NR], s, b - a
	}'
}

# Verdicts: verdict WHAT MEASURED OK adds a row to the table and a clause
# to the summary line; summary SCENARIO prints both.
_b_rows=
_b_clauses=
# (OK "-": a figure without a target.)
verdict()
{
	case $3 in
	1)	_b_v=PASS ;;
	-)	_b_v="(no target)" ;;
	*)	_b_v=MISS ;;
	esac
	_b_rows="$_b_rows$(printf '%-52s %-22s %s' "$1" "$2" "$_b_v")
"
	_b_clauses="$_b_clauses${_b_clauses:+; }$1: $2 $_b_v"
}

# cmp_ok A OP B: 1 when the (decimal) comparison holds, else 0.
cmp_ok()
{
	awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
		if (a == "" || a == "-") { print 0; exit }
		r = (op == "<") ? a < b : (op == "<=") ? a <= b : \
		    (op == ">=") ? a >= b : a > b
		print r ? 1 : 0
	}'
}

summary()
{
	printf '%-52s %-22s %s\n' "target" "measured" "verdict"
	printf '%s' "$_b_rows"
	_b_line="SUMMARY $1: $_b_clauses"
	echo "$_b_line"
	[ -z "${BENCH_SUMMARY:-}" ] || echo "$_b_line" >>"$BENCH_SUMMARY"
	echo
}
