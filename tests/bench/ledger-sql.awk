# ledger-sql.awk -v name=S_CLAIM src/ledger-sqlite.c: prints the SQL text of one kept
# statement (stmt_sql[name]) as one line, ORDER_COLS expanded, so the bench
# explains the queries the daemon really runs.
/^#define ORDER_COLS/ { incols = 1 }
incols {
	s = $0
	while (match(s, /"[^"]*"/)) { cols = cols substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH) }
	if ($0 !~ /\\$/) incols = 0
	next
}
$0 ~ "\\[" name "\\] =" { on = 1 }
on {
	s = $0
	sub(/^.*\] =/, "", s)
	sub(/\/\*.*\*\//, "", s)
	rest = s
	out = ""
	while (match(rest, /"[^"]*"|ORDER_COLS/)) {
		tok = substr(rest, RSTART, RLENGTH)
		if (tok == "ORDER_COLS") out = out cols; else out = out substr(tok, 2, length(tok) - 2)
		rest = substr(rest, RSTART + RLENGTH)
	}
	text = text out
	if ($0 ~ /,[ \t]*$/) { print text; exit }
}
