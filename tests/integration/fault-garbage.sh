#!/bin/sh
# Fault matrix: bodies that are not JSON. An nginx-style HTML error page
# with HTTP 502 and with HTTP 200, and the plain text "200 OK" with HTTP
# 200, are errors: each is one log line naming the HTTP code and what the
# body was (html, not_json), retried on docs/DESIGN.md's backoff, and never
# settles an order. An order answered so for its first 3.6 s and then
# MINIAPP_MISMATCH ends in mismatch after exactly one real answer.
. "$top_srcdir/tests/integration/fault-lib.sh"

start_sim "$FAULT_SCENARIO"
write_daemon_config
fault_add xg-burst xg-html502 xg-html200 xg-text200

step "run until the burst is over and the garbage has piled up"
start_daemon
wait_until 25 "xg-burst mismatched, 5 errors for each garbage order" eval \
    'state_is xg-burst mismatch &&
    [ "$(order_field xg-html502 errors)" -ge 5 ] &&
    [ "$(order_field xg-html200 errors)" -ge 5 ] &&
    [ "$(order_field xg-text200 errors)" -ge 5 ]'
stop_daemon_ok

step "the burst order: mismatch once, on its one clean answer"
assert_settled xg-burst mismatch mismatch MINIAPP_MISMATCH
assert_errors_served xg-burst
assert_error_lines xg-burst 'malformed answer: (html|not_json) \(HTTP 200\)|HTTP 502 \(html\)'
assert_backoff xg-burst

step "HTML with 502: an HTTP error"
assert_untouched xg-html502
assert_errors_served xg-html502
assert_error_lines xg-html502 'HTTP 502 \(html\)'
assert_backoff xg-html502

step "HTML with 200: a malformed answer"
assert_untouched xg-html200
assert_errors_served xg-html200
assert_error_lines xg-html200 'malformed answer: html \(HTTP 200\)'
assert_backoff xg-html200

step "plain text with 200: a malformed answer"
assert_untouched xg-text200
assert_errors_served xg-text200
assert_error_lines xg-text200 'malformed answer: not_json \(HTTP 200\)'
assert_backoff xg-text200

step "no pause, nothing else"
assert_no_log 'poller: paused' "garbage is an error of one order, not a pause"
assert_events_unique
assert_eq 1 "$(event_count)" "events in all"
pass
