# Shared helpers for the integration scripts: a private temp dir removed on
# exit (with a hook list for more cleanups), the paths of the built binaries,
# a minimal config, and assertions that show expected against actual.
# Source it first thing: . "$top_srcdir/tests/integration/lib.sh"
# A script exits 0 on pass, 1 on failure (fail), 77 to skip (skip).

set -eu

: "${top_srcdir:?top_srcdir must name the source tree (make check sets it)}"
: "${top_builddir:?top_builddir must name the build tree (make check sets it)}"

RECONCILED=$top_builddir/reconciled
RECONCILECTL=$top_builddir/reconcilectl
TOSS_SIM=$top_builddir/tests/sim/toss-sim

# The environment must not pick a config for us.
unset RECONCILED_CONFIG JOURNAL_STREAM || true

TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/reconciled-$TEST_NAME.XXXXXX")

# Cleanup hooks run last-registered first, then the temp dir goes, and the
# script's own exit status is kept. Set KEEP_TMP=1 to keep the dir.
_lib_hooks=
at_exit()
{
	_lib_hooks="$*
$_lib_hooks"
}

_lib_cleanup()
{
	_lib_rc=$?
	trap - EXIT
	set +e -f
	_lib_old_ifs=$IFS
	IFS='
'
	for _lib_hook in $_lib_hooks; do
		IFS=$_lib_old_ifs
		eval "$_lib_hook"
	done
	IFS=$_lib_old_ifs
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$_lib_rc"
}
trap _lib_cleanup EXIT
trap 'exit 1' HUP INT TERM

fail()
{
	echo "FAIL: $TEST_NAME: $*" >&2
	exit 1
}

skip()
{
	echo "SKIP: $TEST_NAME: $*" >&2
	exit 77
}

# Progress for the .log file: "--- what is being checked".
step()
{
	echo "--- $*"
}

# require_cmd NAME...: skip unless every command is installed.
require_cmd()
{
	for _lib_c in "$@"; do
		command -v "$_lib_c" >/dev/null 2>&1 ||
		    skip "needs $_lib_c (not installed)"
	done
}

# require_file PATH...: skip unless each built file exists.
require_file()
{
	for _lib_f in "$@"; do
		[ -x "$_lib_f" ] || skip "$_lib_f is not built"
	done
}

# The ledger's backend: sqlite (a file in $T), or pg (lib-daemon.sh then
# starts a throwaway PostgreSQL server, tests/integration/lib-pg.sh).
LEDGER_BACKEND=${LEDGER_BACKEND:-sqlite}

# write_config [LINE...]: writes $T/reconciled.conf with the ledger in $T
# (or on $PG_URL with LEDGER_BACKEND=pg) followed by the given lines (e.g.
# "[poll]" "backoff_min = 1s"), and sets CONF to its path.
write_config()
{
	CONF=$T/reconciled.conf
	LEDGER=$T/ledger.db
	{
		echo "[ledger]"
		if [ "$LEDGER_BACKEND" = pg ]; then
			echo "url = $PG_URL"
		else
			echo "path = $LEDGER"
		fi
		for _lib_l in "$@"; do
			echo "$_lib_l"
		done
	} >"$CONF"
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq()
{
	[ "$1" = "$2" ] && return 0
	{
		echo "FAIL: $TEST_NAME: ${3:-values differ}"
		echo "--- expected:"
		printf '%s\n' "$1"
		echo "--- actual:"
		printf '%s\n' "$2"
	} >&2
	exit 1
}

# assert_match ERE STRING [WHAT]: some line of STRING matches ERE.
assert_match()
{
	printf '%s\n' "$2" | grep -Eq -- "$1" && return 0
	{
		echo "FAIL: $TEST_NAME: ${3:-no match}"
		echo "--- expected a line matching: $1"
		echo "--- actual:"
		printf '%s\n' "$2"
	} >&2
	exit 1
}

# assert_file_contains FILE TEXT: FILE holds TEXT (fixed string).
assert_file_contains()
{
	[ -f "$1" ] || fail "$1 does not exist"
	grep -Fq -- "$2" "$1" && return 0
	{
		echo "FAIL: $TEST_NAME: $1 does not contain: $2"
		echo "--- $1:"
		cat "$1"
	} >&2
	exit 1
}

# assert_exit CODE CMD [ARG...]: runs CMD, fails unless it exits with CODE.
# Its output stays in $T/stdout and $T/stderr; out and err print them.
assert_exit()
{
	_lib_want=$1
	shift
	_lib_st=0
	"$@" >"$T/stdout" 2>"$T/stderr" || _lib_st=$?
	[ "$_lib_st" = "$_lib_want" ] && return 0
	{
		echo "FAIL: $TEST_NAME: exit status $_lib_st, expected $_lib_want: $*"
		echo "--- stdout:"
		cat "$T/stdout"
		echo "--- stderr:"
		cat "$T/stderr"
	} >&2
	exit 1
}

out()
{
	cat "$T/stdout"
}

err()
{
	cat "$T/stderr"
}
