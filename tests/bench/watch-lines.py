#!/usr/bin/env python3
"""usage: watch-lines.py FILE OUT

Follows FILE (which may not exist yet) every 2 ms and writes to OUT one line
per complete line that appears in it: "<unix ms when seen> <the line>". For
the grant latency bench: when an event became visible in the JSONL sink's
file. Runs until SIGTERM or SIGINT, then exits 0."""

import os
import signal
import sys
import time

if len(sys.argv) != 3:
    sys.stderr.write("usage: watch-lines.py FILE OUT\n")
    sys.exit(64)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
path, out_path = sys.argv[1], sys.argv[2]
pos = 0
partial = b""
with open(out_path, "a", encoding="utf-8") as out:
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
        except FileNotFoundError:
            data = b""
        if data:
            now = time.time_ns() // 1000000
            pos += len(data)
            lines = (partial + data).split(b"\n")
            partial = lines.pop()
            for line in lines:
                out.write("%d %s\n" % (now, line.decode("utf-8", "replace")))
            out.flush()
        time.sleep(0.002)
