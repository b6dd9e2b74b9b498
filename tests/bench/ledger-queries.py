#!/usr/bin/env python3
"""usage: ledger-queries.py DB NOW_MS LEASE_MS CLAIM_MAX < STATEMENTS

STATEMENTS: lines "NAME<TAB>SQL" (the daemon's own statements, as
ledger-sql.awk extracts them from src/ledger-sqlite.c). For each: its EXPLAIN
QUERY PLAN, whether it scans orders, events or transitions (a full table or
whole-index scan: "SCAN <table>"), and its median time over 21 runs with the
daemon's bindings (now, lease, prio, limit). S_CLAIM is timed as
ledger_claim_due() runs it: BEGIN IMMEDIATE, prio 0 then prio 1 up to
CLAIM_MAX rows, every row read; then ROLLBACK, so the ledger is unchanged.
Prints "PLAN name | detail" lines, then "TIME name first_us median_us rows
scan" lines. Uses Python's sqlite3 module (check it is the same SQLite as
the daemon's: the bench prints both versions)."""

import re
import sqlite3
import statistics
import sys
import time

BIG = ("orders", "events", "transitions")


def params(sql, now, lease, prio, limit):
    n = max([int(m) for m in re.findall(r"\?(\d+)", sql)] or [0])
    if "UPDATE orders SET next_poll_at = ?1 WHERE rowid IN" in sql:
        vals = [now + lease, prio, now, limit]
    else:
        vals = [now] * n
    return vals[:n]


def main(argv):
    if len(argv) != 5:
        sys.stderr.write(__doc__)
        return 64
    db, now, lease, cmax = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous = FULL")
    con.execute("PRAGMA temp_store = MEMORY")
    out = []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line:
            continue
        name, sql = line.split("\t", 1)
        p = params(sql, now, lease, 0, cmax)
        scan = []
        for row in con.execute("EXPLAIN QUERY PLAN " + sql, p):
            detail = row[3]
            print("PLAN %s | %s" % (name, detail))
            m = re.match(r"SCAN (\w+)", detail)
            if m and m.group(1) in BIG:
                scan.append(m.group(1))
        times, rows = [], 0
        for _ in range(21):
            if name == "S_CLAIM":
                t0 = time.perf_counter()
                con.execute("BEGIN IMMEDIATE")
                got = 0
                for prio in (0, 1):
                    if got >= cmax:
                        break
                    got += len(con.execute(
                        sql, params(sql, now, lease, prio,
                                    cmax - got)).fetchall())
                t1 = time.perf_counter()
                con.execute("ROLLBACK")
                rows = got
            else:
                t0 = time.perf_counter()
                rows = len(con.execute(sql, p).fetchall())
                t1 = time.perf_counter()
            times.append((t1 - t0) * 1e6)
        out.append("TIME %s %.0f %.0f %d %s" % (
            name, times[0], statistics.median(times), rows,
            ",".join(scan) if scan else "-"))
    for line in out:
        print(line)
    return 0


sys.exit(main(sys.argv))
