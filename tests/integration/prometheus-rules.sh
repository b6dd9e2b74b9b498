#!/bin/sh
# contrib/prometheus/reconciled.rules.yml passes `promtool check rules`, and
# its unit tests (reconciled.rules.test.yml: each alert firing, and not
# firing before its `for:` or on a healthy instance) pass `promtool test
# rules`. Skips without promtool.
. "$top_srcdir/tests/integration/lib.sh"

command -v promtool >/dev/null 2>&1 ||
    skip "promtool is not installed (Debian: apt-get install prometheus)"
DIR=$top_srcdir/contrib/prometheus

step "promtool check rules"
assert_exit 0 promtool check rules "$DIR/reconciled.rules.yml"
assert_match "SUCCESS: 9 rules found" "$(out)" "nine alerts"

step "promtool test rules: every alert has a firing and a quiet case"
for a in $(sed -n 's/^ *- alert: //p' "$DIR/reconciled.rules.yml"); do
	grep -q "^  - name: $a\$" "$DIR/reconciled.rules.test.yml" ||
	    fail "no unit test for $a"
	[ "$(grep -c "alertname: $a\$" "$DIR/reconciled.rules.test.yml")" -ge 2 ] ||
	    fail "$a: fewer than two evaluations"
	grep -A2 "alertname: $a\$" "$DIR/reconciled.rules.test.yml" |
	    grep -q 'exp_alerts: \[\]' || fail "$a: no case where it must not fire"
done
# promtool resolves rule_files against the test file's directory.
assert_exit 0 promtool test rules "$DIR/reconciled.rules.test.yml"
assert_match "SUCCESS" "$(out)" "promtool test rules"
echo "PASS: $TEST_NAME"
