#!/bin/sh
# Runs each built libFuzzer target (tests/fuzz/fuzz_*) for N seconds over its
# seed corpus and its regression inputs. Builds nothing: configure with
# `CC=clang --enable-fuzzing` and `make` first (`make fuzz-smoke` does both).
#
#   run.sh [-t SECONDS] [TARGET...]     TARGET: toss config intake control
#
# SECONDS defaults to 60 per target. top_srcdir and top_builddir locate the
# sources and the binaries (default: this script's tree, and "."). New inputs
# go to a scratch corpus that is removed afterwards, or to $FUZZ_WORK/TARGET
# when that is set (kept, for long runs). A crash, leak, sanitizer report,
# timeout or broken invariant is written to
# $top_builddir/tests/fuzz/artifacts/TARGET/ and fails the run.
# Exit: 0 all clean, 1 a target failed, 77 no target is built, 64 usage.
set -u

secs=60
while getopts t: opt; do
	case $opt in
	t)	secs=$OPTARG ;;
	*)	echo "usage: $0 [-t SECONDS] [TARGET...]" >&2; exit 64 ;;
	esac
done
shift $((OPTIND - 1))
case $secs in
''|*[!0-9]*|0) echo "$0: -t wants a positive number of seconds" >&2; exit 64 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
srcdir=${top_srcdir:-$(cd "$here/../.." && pwd)}
builddir=${top_builddir:-.}
artifacts="$builddir/tests/fuzz/artifacts"

explicit=1
if [ $# -eq 0 ]; then
	set -- toss config intake control
	explicit=0
fi

# Sanitizer reports must stop the target, or libFuzzer never sees them.
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"
export UBSAN_OPTIONS

scratch=$(mktemp -d "${TMPDIR:-/tmp}/reconciled-fuzz-run.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM

# The longest input each target is given: room past each parser's limit.
max_len() {
	case $1 in
	toss)		echo 8192 ;;	# answers: any shape of body
	intake)		echo 17000 ;;	# INTAKE_LINE_MAX is 16384
	control)	echo 20000 ;;	# CONTROL_BODY_MAX is 16384
	*)		echo 4096 ;;
	esac
}

ran=0
failed=0
for t in "$@"; do
	bin="$builddir/tests/fuzz/fuzz_$t"
	corpus="$srcdir/tests/fuzz/corpus/$t"
	regressions="$srcdir/tests/fuzz/regressions/$t"
	if [ ! -x "$bin" ]; then
		if [ "$explicit" = 1 ]; then
			echo "fuzz_$t: not built ($bin)" >&2
			failed=$((failed + 1))
		else
			echo "fuzz_$t: not built, skipped"
		fi
		continue
	fi
	if [ ! -d "$corpus" ]; then
		echo "fuzz_$t: no seed corpus in $corpus" >&2
		failed=$((failed + 1))
		continue
	fi
	if [ -n "${FUZZ_WORK:-}" ]; then
		work="$FUZZ_WORK/$t"
	else
		work="$scratch/$t"
	fi
	mkdir -p "$work" "$artifacts/$t" || exit 1
	# New inputs go to the first directory only; the others are read.
	[ -d "$regressions" ] || regressions=
	log="$scratch/$t.log"

	"$bin" -max_total_time="$secs" -timeout=25 -max_len="$(max_len "$t")" \
	    -print_final_stats=1 -artifact_prefix="$artifacts/$t/" \
	    "$work" "$corpus" ${regressions:+"$regressions"} >"$log" 2>&1
	rc=$?
	ran=$((ran + 1))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(sed -n 's/^#[0-9]*[	 ]*DONE *cov: \([0-9]*\).*/\1/p' "$log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		echo "fuzz_$t: ${secs} s, ${execs:-?} inputs, coverage ${cov:-?}: clean"
	else
		failed=$((failed + 1))
		echo "fuzz_$t: FAILED (exit $rc) after ${execs:-?} inputs; log tail:"
		tail -60 "$log"
		for a in "$artifacts/$t"/*; do
			[ -e "$a" ] && echo "  artifact: $a"
		done
		echo "  fix it, then keep the input in tests/fuzz/regressions/$t/"
	fi
done

if [ "$ran" -eq 0 ] && [ "$failed" -eq 0 ]; then
	echo "no fuzz target is built (configure CC=clang --enable-fuzzing)" >&2
	exit 77
fi
[ "$failed" -eq 0 ]
