# A throwaway PostgreSQL server for one test: initdb and pg_ctl in $T/pg,
# listening on a unix socket in that directory only (PG_TCP=1: also on
# 127.0.0.1), stopped (immediately) and removed with $T at exit. As root,
# the server runs as the postgres user (initdb refuses root). Source it
# after lib.sh; then pg_start. Skips (77) only when the server binaries are
# not installed.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=
PG_URL=
PG_AS=
PG_PORT=5432
PG_SOCKET=
PG_TCP_URL=

# pg_start: a fresh cluster with a database "reconciled" owned by the
# superuser "reconciled" (trust on the socket, and on 127.0.0.1). Sets
# PG_URL (the unix socket), which carries PG_PASSWORD: the server ignores
# it, and nothing may log it. Sets PG_SOCKET, the socket's path (a target
# for tests/integration/pg-proxy.py).
# With PG_TCP=1 the server also listens on 127.0.0.1 on a free port: sets
# PG_PORT to it (the socket's name carries the same number, and PG_URL
# names it) and PG_TCP_URL, the same database over TCP (with the password
# too). Without it, PG_PORT is 5432, PG_TCP_URL is empty and PG_URL is the
# same as before PG_TCP existed.
# PG_FSYNC=on: the server flushes its WAL at each commit as a production
# server does (benchmarks); the default, off, spares the tests the waits.
pg_start()
{
	[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] &&
	    [ -x "$PG_BIN/psql" ] ||
	    skip "needs the PostgreSQL server in $PG_BIN (Debian: postgresql)"
	PG_DIR=$T/pg
	mkdir "$PG_DIR"
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 ||
		    fail "running as root needs the postgres user for the server"
		# The server reaches $T/pg (its own) but reads nothing else.
		chmod 711 "$T"
		chown postgres: "$PG_DIR"
		PG_AS="runuser -u postgres --"
	fi
	(cd "$PG_DIR" && $PG_AS "$PG_BIN/initdb" -D "$PG_DIR/data" \
	    -U reconciled -A trust -E UTF8 --locale=C) \
	    >"$PG_DIR/initdb.log" 2>&1 || {
		cat "$PG_DIR/initdb.log" >&2
		fail "initdb failed"
	}
	_pg_listen=
	if [ "${PG_TCP:-0}" = 1 ]; then
		PG_PORT=$(_pg_free_port)
		_pg_listen=127.0.0.1
	fi
	# Commit timestamps: the event-order test compares them with the ids.
	cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = '$_pg_listen'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
fsync = ${PG_FSYNC:-off}
track_commit_timestamp = on
max_connections = 40
EOF
	at_exit pg_stop
	(cd "$PG_DIR" && $PG_AS "$PG_BIN/pg_ctl" -D "$PG_DIR/data" \
	    -l "$PG_DIR/server.log" -w -t 30 start) >/dev/null || {
		cat "$PG_DIR/server.log" >&2
		fail "the PostgreSQL server did not start"
	}
	pg_sql postgres "CREATE DATABASE reconciled" >/dev/null
	PG_PASSWORD=not-logged-$$
	PG_SOCKET=$PG_DIR/.s.PGSQL.$PG_PORT
	if [ "${PG_TCP:-0}" = 1 ]; then
		PG_URL="postgresql://reconciled:$PG_PASSWORD@/reconciled?host=$PG_DIR&port=$PG_PORT"
		PG_TCP_URL="postgresql://reconciled:$PG_PASSWORD@127.0.0.1:$PG_PORT/reconciled"
	else
		PG_URL="postgresql://reconciled:$PG_PASSWORD@/reconciled?host=$PG_DIR"
	fi
}

# _pg_free_port: a free loopback port for the server (the kernel picks it;
# the server binds it a moment later).
_pg_free_port()
{
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# pg_stop: stops the server at once if it runs (at exit; a test may call
# it too, as a database outage).
pg_stop()
{
	[ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] || return 0
	(cd "$PG_DIR" && $PG_AS "$PG_BIN/pg_ctl" -D "$PG_DIR/data" \
	    -m immediate -w stop) >/dev/null 2>&1 || true
}

# pg_restart: starts the stopped server again (same data).
pg_restart()
{
	(cd "$PG_DIR" && $PG_AS "$PG_BIN/pg_ctl" -D "$PG_DIR/data" \
	    -l "$PG_DIR/server.log" -w -t 30 start) >/dev/null ||
	    fail "the PostgreSQL server did not start again"
}

# pg_sql DB SQL: runs SQL on database DB; prints the rows, unaligned,
# tab-separated, no headers.
pg_sql()
{
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -A -t -F '	' \
	    -h "$PG_DIR" -p "$PG_PORT" -U reconciled -d "$1" -c "$2"
}

# assert_no_password FILE...: none of the files holds PG_PASSWORD.
assert_no_password()
{
	for _pg_f in "$@"; do
		[ -f "$_pg_f" ] || continue
		! grep -Fq -- "$PG_PASSWORD" "$_pg_f" ||
		    fail "$_pg_f shows the database password"
	done
}
