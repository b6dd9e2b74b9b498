#!/usr/bin/env python3
"""usage: stamp-exec.py FILE PROGRAM [ARG...]

Writes CLOCK_MONOTONIC in microseconds (the clock sdnotify-recv.py stamps
messages with) to FILE, then execs PROGRAM in the same process, so a
script's $! is PROGRAM's pid and READY=1 minus FILE is its start-up time."""

import os
import sys
import time

if len(sys.argv) < 3:
    sys.stderr.write("usage: stamp-exec.py FILE PROGRAM [ARG...]\n")
    sys.exit(64)
with open(sys.argv[1], "w", encoding="ascii") as f:
    f.write("%d\n" % (time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000))
os.execv(sys.argv[2], sys.argv[2:])
