#!/bin/sh
# The daemon's real GET /metrics against the tools that consume it:
# `promtool check metrics` accepts the exposition, and every metric that
# contrib/grafana/reconciled.json and contrib/prometheus/reconciled.rules.yml
# query is one the daemon exports (names parsed out of the PromQL
# expressions), so neither can drift from src/metrics.c unnoticed. The
# rules' own unit tests are prometheus-rules.sh. Skips without promtool.
. "$top_srcdir/tests/integration/lib-daemon.sh"

command -v promtool >/dev/null 2>&1 ||
    skip "promtool is not installed (Debian: apt-get install prometheus)"
require_cmd curl python3

DASHBOARD=$top_srcdir/contrib/grafana/reconciled.json
RULES=$top_srcdir/contrib/prometheus/reconciled.rules.yml
OUT=$T/events.jsonl

# promql_metrics: the metric names in the PromQL expressions on stdin, one
# expression per line: label matchers, strings, ranges, grouping lists and
# function calls are taken out, what is left that is not a keyword is a
# metric name.
promql_metrics()
{
	python3 -c '
import re, sys
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan"}
for expr in sys.stdin:
    e = re.sub(r"\"(\\.|[^\"\\])*\"", "", expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    for m in re.finditer(r"(?<![\w$.])([A-Za-z_:][\w:]*)\b(?!\s*\()", e):
        if m.group(1).lower() not in KEYWORDS:
            print(m.group(1))
' | sort -u
}

start_sim "$SCENARIOS/paid.json"
# A webhook nobody answers: the sink series are all there, failing.
write_daemon_config "[events]" "jsonl = $OUT" \
    "webhook_url = http://127.0.0.1:9/hook" \
    "webhook_secret = whsec_$(printf '%s' 'reconciled metrics test key' | "${OPENSSL:-openssl}" base64 -A)"
use_control_sock
start_daemon
post_order paid-m-1 1
post_order paid-m-2 2
wait_until 10 "both orders are granted" eval \
    'state_is paid-m-1 granted && state_is paid-m-2 granted'
wait_until 10 "the JSONL sink caught up" eval \
    '[ "$(wc -l <"$OUT")" = 2 ]'

# ---------------------------------------------------------------------------
step "promtool check metrics accepts the real exposition"
assert_eq 200 "$(control GET /metrics)" "GET /metrics"
cp "$T/control.body" "$T/metrics"
promtool check metrics <"$T/metrics" >"$T/promtool.out" 2>&1 || {
	cat "$T/promtool.out" >&2
	fail "promtool check metrics refused the exposition"
}
assert_eq "" "$(cat "$T/promtool.out")" "no lint findings"
assert_eq "reconciled_leader 1" "$(grep '^reconciled_leader ' "$T/metrics")" \
    "the single instance on SQLite leads"
answered=$(awk '$1 == "reconciled_last_answer_timestamp_seconds" { print int($2) }' "$T/metrics")
now=$(date +%s)
assert_ge $((now - 60)) "$answered" "the last answer from Toss is recent"
assert_le "$now" "$answered" "the last answer from Toss is not in the future"
assert_eq 'reconciled_sink_disabled{sink="jsonl"} 0
reconciled_sink_disabled{sink="webhook"} 0' \
    "$(grep '^reconciled_sink_disabled{' "$T/metrics")" "no sink is off"
assert_eq 'reconciled_sink_failing{sink="webhook"} 1' \
    "$(grep '^reconciled_sink_failing{sink="webhook"}' "$T/metrics")" \
    "a webhook whose attempts fail is failing"

# The names exported: every sample's, and every family's the exposition
# declares (one with labels may have no sample yet, such as
# reconciled_unknown_statuses_total before an unknown status), with a
# histogram's _bucket, _sum and _count.
{
	sed -n 's/^\([a-zA-Z_:][a-zA-Z0-9_:]*\)[{ ].*/\1/p' "$T/metrics"
	awk '$1 == "#" && $2 == "TYPE" { print $3
		if ($4 == "histogram") print $3 "_bucket\n" $3 "_sum\n" $3 "_count" }' \
	    "$T/metrics"
} | sort -u >"$T/have"

# ---------------------------------------------------------------------------
step "every metric the Grafana dashboard queries is exported"
jq -e '.__inputs[0].name == "DS_PROMETHEUS" and .__inputs[0].pluginId == "prometheus"' \
    "$DASHBOARD" >/dev/null || fail "the dashboard declares no DS_PROMETHEUS input"
bad=$(jq -r '[.. | objects | select(has("datasource") and (.datasource | type) == "object") |
    .datasource.uid] | map(select(. != "${DS_PROMETHEUS}")) | .[]' "$DASHBOARD")
assert_eq "" "$bad" "every panel and query uses the \${DS_PROMETHEUS} data source"
jq -r '.. | objects | .expr? // empty' "$DASHBOARD" >"$T/dash.exprs"
[ -s "$T/dash.exprs" ] || fail "no PromQL expression found in the dashboard"
promql_metrics <"$T/dash.exprs" >"$T/dash.metrics"
assert_ge 20 "$(wc -l <"$T/dash.metrics" | tr -d ' ')" "metric names found in the dashboard"
missing=$(comm -23 "$T/dash.metrics" "$T/have")
assert_eq "" "$missing" "dashboard metrics missing from /metrics"
for want in reconciled_orders reconciled_polls_total reconciled_poll_latency_seconds_bucket \
    reconciled_rate_limit_per_second reconciled_paused reconciled_sink_lag \
    reconciled_events_total; do
	grep -qx "$want" "$T/dash.metrics" || fail "the dashboard does not show $want"
done

# ---------------------------------------------------------------------------
step "every metric the alerting rules query is exported (up is Prometheus')"
python3 -c '
import re, sys
for m in re.finditer(r"^\s*expr:\s*(>-?\s*\n((?:\s{10,}.*\n)+)|(.*))", open(sys.argv[1]).read(), re.M):
    print(" ".join((m.group(2) or m.group(3)).split()))
' "$RULES" >"$T/rules.exprs"
assert_eq 9 "$(wc -l <"$T/rules.exprs" | tr -d ' ')" "alert expressions found"
promql_metrics <"$T/rules.exprs" | grep -vx up >"$T/rules.metrics"
missing=$(comm -23 "$T/rules.metrics" "$T/have")
assert_eq "" "$missing" "rule metrics missing from /metrics"
assert_eq "reconciled_cert_expiry_seconds reconciled_due_orders reconciled_last_answer_timestamp_seconds reconciled_leader reconciled_oldest_pending_seconds reconciled_orders reconciled_paused reconciled_sink_delivered_id reconciled_sink_disabled reconciled_sink_lag" \
    "$(tr '\n' ' ' <"$T/rules.metrics" | sed 's/ $//')" "the metrics the rules use"
pass
