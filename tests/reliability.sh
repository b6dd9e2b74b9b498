#!/bin/sh
# The long mode of the reliability suite, run before a release (about 15
# minutes): the crash test with 20 SIGKILLs over 600 orders, the import crash
# test with 10 random kills, and the 10-minute soak against a simulator that
# fails 10% of all requests while orders keep arriving through the control
# API (it prints RSS and open descriptors after the warm-up and at the end).
# `make check` runs the same scripts with short settings.
#
# usage: make reliability               (in a build directory), or
#        sh tests/reliability.sh        (from a build directory; or set
#        top_srcdir and top_builddir)   exit 0 when every part passes
# Overrides: CRASH_KILLS CRASH_ORDERS CRASH_IMPORT_KILLS CRASH_SEED
#            SOAK_SECONDS SOAK_WARMUP SOAK_RATE
set -u

: "${top_builddir:=$(pwd)}"
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
export top_srcdir top_builddir

for f in "$top_builddir/reconciled" "$top_builddir/reconcilectl" \
    "$top_builddir/tests/sim/toss-sim"; do
	if [ ! -x "$f" ]; then
		echo "reliability.sh: $f is not built (make && make tests/sim/toss-sim)" >&2
		exit 1
	fi
done

summary=
failed=0

# part NAME VAR=VALUE...: runs tests/integration/NAME.sh with the settings.
part()
{
	_name=$1
	shift
	echo "=== $_name: $*"
	_t0=$(date +%s)
	_st=0
	env "$@" sh "$top_srcdir/tests/integration/$_name.sh" || _st=$?
	_t=$(($(date +%s) - _t0))
	case $_st in
	0)	_res=PASS ;;
	77)	_res=SKIP ;;
	*)	_res="FAIL (exit $_st)"; failed=1 ;;
	esac
	echo "=== $_name: $_res after ${_t}s"
	summary="$summary$_name: $_res after ${_t}s ($*)
"
}

part crash-kill CRASH_KILLS="${CRASH_KILLS:-20}" CRASH_ORDERS="${CRASH_ORDERS:-600}" \
    ${CRASH_SEED:+CRASH_SEED="$CRASH_SEED"}
part crash-import CRASH_IMPORT_KILLS="${CRASH_IMPORT_KILLS:-10}" \
    ${CRASH_SEED:+CRASH_SEED="$CRASH_SEED"}
part crash-soak SOAK_SECONDS="${SOAK_SECONDS:-600}" \
    ${SOAK_WARMUP:+SOAK_WARMUP="$SOAK_WARMUP"} ${SOAK_RATE:+SOAK_RATE="$SOAK_RATE"}

echo "=== summary"
printf '%s' "$summary"
exit $failed
