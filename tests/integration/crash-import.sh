#!/bin/sh
# Crash consistency of intake: SIGKILL in the middle of `reconcilectl import`
# of 100,000 lines leaves either none or all of them. Killed half-way (after
# 50,000 lines, fed through a fifo that stays open), after the last line
# but before the end of its input (all 100,000 inserted, not committed), and
# at random moments of an import from a file (up to past its expected end):
# each time the ledger holds none of that import (or, for a kill that came
# after the commit, all of it), opens cleanly, and importing the same lines
# again adds exactly 100,000 orders with none already known (no partial
# leftovers).
#
# CRASH_IMPORT_KILLS (default 1) random-moment kills; CRASH_SEED picks them.
. "$top_srcdir/tests/integration/lib-daemon.sh"

N=100000
KILLS=${CRASH_IMPORT_KILLS:-1}
SEED=${CRASH_SEED:-$(($(date +%s) % 100000))}
echo "CRASH_IMPORT_KILLS=$KILLS CRASH_SEED=$SEED"
write_config

# lines PREFIX: N import lines with orderIds PREFIX0..PREFIX99999.
lines()
{
	awk -v p="$1" -v n=$N 'BEGIN { for (i = 0; i < n; i++)
	    printf "{\"orderId\":\"%s%d\",\"userKey\":\"%d\",\"ref\":\"batch %s\"}\n", p, i, 100000 + i, p }'
}

# pending: how many orders the ledger holds (all are pending here).
pending()
{
	ctl stats --json | jq .orders.pending
}

committed=0	# imports that completed

# import_all FILE: a whole import that must add all N lines.
import_all()
{
	assert_exit 0 "$RECONCILECTL" -c "$CONF" import "$1"
	assert_eq "$N added, 0 known, 0 rejected" "$(out)" "import of $(basename "$1")"
	committed=$((committed + 1))
	assert_eq $((committed * N)) "$(pending)" "orders after importing $(basename "$1")"
}

# killed PID WHAT [late]: SIGKILL, reap, then the ledger must still open
# and hold none of this import; with "late" (its input had ended, so the
# kill may have come between the commit and the exit) all of it is as good.
killed()
{
	# It may have finished since it was seen alive: the reap tells.
	kill -KILL "$1" 2>/dev/null || true
	_ld_reap "$1" 10 || fail "import survived SIGKILL"
	_ci_n=$(pending)
	if [ "${3:-}" = late ] && [ "$_ci_n" = $(((committed + 1) * N)) ]; then
		echo "  (the kill came after the commit: all of it is there)"
		committed=$((committed + 1))
		return
	fi
	assert_eq 137 "$_ld_status" "import exit status after SIGKILL ($2)"
	assert_eq "" "$(cat "$T/imp.out")" "import output after SIGKILL ($2)"
	assert_eq $((committed * N)) "$_ci_n" "orders after a kill $2 (none of it)"
}

step "killed half-way: after 50,000 lines, its input still open"
lines half- >"$T/half.jsonl"
mkfifo "$T/in.fifo"
"$RECONCILECTL" -c "$CONF" import - <"$T/in.fifo" >"$T/imp.out" 2>"$T/imp.err" &
IMP=$!
at_exit 'kill -KILL "$IMP" 2>/dev/null'
exec 4>"$T/in.fifo"
t0=$(now_ms)
head -n 50000 "$T/half.jsonl" >&4
# The write returns once the import has taken all but a pipe's worth.
D=$((2 * ($(now_ms) - t0)))
echo "about $D ms for an import of $N lines"
sleep 1
_ld_alive "$IMP" || fail "import exited before its input ended: $(cat "$T/imp.err")"
echo "ledger WAL at the kill: $(wc -c <"$LEDGER-wal" 2>/dev/null || echo 0) bytes"
killed "$IMP" "after 50,000 lines"
exec 4>&-
rm -f "$T/in.fifo"

step "killed after the last line, before its input ended (nothing committed)"
mkfifo "$T/in.fifo"
"$RECONCILECTL" -c "$CONF" import - <"$T/in.fifo" >"$T/imp.out" 2>"$T/imp.err" &
IMP=$!
exec 4>"$T/in.fifo"
cat "$T/half.jsonl" >&4
sleep 2
_ld_alive "$IMP" || fail "import exited before its input ended: $(cat "$T/imp.err")"
echo "ledger WAL at the kill: $(wc -c <"$LEDGER-wal" 2>/dev/null || echo 0) bytes"
killed "$IMP" "after all $N lines, before the end of input"
exec 4>&-

step "$KILLS kills at random moments of an import from a file"
awk -v seed="$SEED" -v n="$KILLS" -v d="$D" 'BEGIN { srand(seed);
    for (i = 0; i < n; i++) printf "%d\n", d * (0.05 + rand() * 1.45) }' >"$T/delays"
k=0
mid=0
while read -r ms; do
	k=$((k + 1))
	lines "rnd$k-" >"$T/rnd$k.jsonl"
	size=$(wc -c <"$T/rnd$k.jsonl")
	"$RECONCILECTL" -c "$CONF" import "$T/rnd$k.jsonl" >"$T/imp.out" 2>"$T/imp.err" &
	IMP=$!
	sleep "$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
	pos=
	for fd in /proc/"$IMP"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "$T/rnd$k.jsonl" ] || continue
		pos=$(awk '/^pos:/ { print $2 }' "/proc/$IMP/fdinfo/${fd##*/}" 2>/dev/null)
	done
	if _ld_alive "$IMP"; then
		echo "kill $k after ${ms} ms: read ${pos:-?} of $size bytes"
		[ -n "$pos" ] && [ "$pos" -lt "$size" ] && mid=$((mid + 1))
		killed "$IMP" "after ${ms} ms" late
	else
		# It finished before the kill: then all of it is there.
		_ld_reap "$IMP" 10
		assert_eq 0 "$_ld_status" "import exit status (finished before kill $k)"
		assert_eq "$N added, 0 known, 0 rejected" "$(cat "$T/imp.out")" "import $k"
		committed=$((committed + 1))
		echo "kill $k after ${ms} ms: too late, the import had finished"
		assert_eq $((committed * N)) "$(pending)" "orders after import $k"
	fi
done <"$T/delays"
echo "$mid of $KILLS random kills landed while the file was being read"

step "the killed imports leave nothing behind: importing them again adds all"
import_all "$T/half.jsonl"
if command -v sqlite3 >/dev/null 2>&1; then
	assert_eq ok "$(sqlite3 -readonly "$LEDGER" 'PRAGMA integrity_check')" "PRAGMA integrity_check"
	assert_eq $((committed * N)) "$(sqlite3 -readonly "$LEDGER" 'SELECT count(*) FROM orders')" \
	    "order rows = the stats counter"
else
	echo "note: sqlite3 not installed, integrity_check not run"
fi
assert_eq "$N" "$(ctl list --state pending --json | jq -r '.ref' | grep -c '^batch half-$')" \
    "orders of the re-imported batch"
pass
