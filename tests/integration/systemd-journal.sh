#!/bin/sh
# Logging as journald reads it: with $JOURNAL_STREAM set (systemd sets it
# when stderr is the journal) every line of the real daemon, and of -n, is
# "<N>reconciled: message" with N the syslog priority (3 error, 4 warning,
# 6 info) and no timestamp of its own; without it, lines carry a
# timestamp, the pid and the level name.
. "$top_srcdir/tests/integration/lib-daemon.sh"

start_sim "$SCENARIOS/paid.json"
CFG_CERT=$T/certs/soon-client.crt
CFG_KEY=$T/certs/soon-client.key
write_daemon_config
good_conf=$(cat "$CONF")

step "the daemon under journald: priority prefixes, no timestamps"
export JOURNAL_STREAM=8:424242
start_daemon
add_order paid-j1 9001
wait_until 5 "paid-j1 is granted" state_is paid-j1 granted
printf '%s\n[poll]\nbackof_max = 5s\n' "$good_conf" >"$CONF"
hup_daemon
printf '%s\n' "$good_conf" >"$CONF"
st=0
stop_daemon || st=$?
unset JOURNAL_STREAM
assert_eq 0 "$st" "exit status"

bad=$(grep -Ev '^<[0-7]>reconciled: ' "$DAEMON_LOG" || true)
assert_eq "" "$bad" "lines without a <N>reconciled: prefix"
assert_log '^<6>reconciled: polling https://127\.0\.0\.1:[0-9]+ '
assert_log '^<6>reconciled: order paid-j1: pending -> granted \(PAYMENT_COMPLETED\)$'
assert_log "^<4>reconciled: client certificate $T/certs/soon-client.crt expires on .* days?\\): issue a new one in the Toss console\$"
assert_log '^<3>reconciled: reload failed, keeping the old configuration: .*unknown key "backof_max"'
assert_log '^<6>reconciled: stopped$'
assert_no_log '[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z reconciled\[' "timestamps under journald"

step "ExecStartPre=reconciled -n under journald: the error at priority 3"
printf '%s\n[poll]\nbackof_max = 5s\n' "$good_conf" >"$CONF"
assert_exit 78 env JOURNAL_STREAM=8:424242 "$RECONCILED" -n -c "$CONF"
assert_eq "<3>reconciled: $CONF:$(wc -l <"$CONF" | tr -d ' '): unknown key \"backof_max\" in section [poll]" \
    "$(err)" "the whole of stderr"
printf '%s\n' "$good_conf" >"$CONF"
assert_exit 0 env JOURNAL_STREAM=8:424242 "$RECONCILED" -n -c "$CONF"
assert_eq "configuration OK" "$(out)"
assert_match "^<4>reconciled: client certificate .* expires on " "$(err)"

step "without JOURNAL_STREAM: timestamp, pid and level"
assert_exit 0 "$RECONCILED" -n -c "$CONF"
assert_match "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z reconciled\\[[0-9]+\\]: warning: client certificate " "$(err)"
pass
