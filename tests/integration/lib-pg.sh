# A throwaway PostgreSQL server for one test: initdb and pg_ctl in $T/pg,
# listening on a unix socket in that directory only, stopped (immediately)
# and removed with $T at exit. As root, the server runs as the postgres
# user (initdb refuses root). Source it after lib.sh; then pg_start.
# Skips (77) only when the server binaries are not installed.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=
PG_URL=
PG_AS=

# pg_start: a fresh cluster with a database "reconciled" owned by the
# superuser "reconciled" (trust on the socket). Sets PG_URL, which carries
# PG_PASSWORD: the server ignores it, and nothing may log it.
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
	# Commit timestamps: the event-order test compares them with the ids.
	cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$PG_DIR'
fsync = off
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
	PG_URL="postgresql://reconciled:$PG_PASSWORD@/reconciled?host=$PG_DIR"
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
	    -h "$PG_DIR" -U reconciled -d "$1" -c "$2"
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
