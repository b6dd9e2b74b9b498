#!/usr/bin/env python3
"""A stand-in for the service manager's end of $NOTIFY_SOCKET, for the tests.

usage: sdnotify-recv.py SOCKET LOG [--ledger PATH] [--control PATH]

Binds a datagram socket at SOCKET (a path, or "@name" for an abstract one),
then writes one JSON object per message received to LOG:
  {"t": <CLOCK_MONOTONIC at receipt, us>, "pid": <sender>, "msg": "...",
   "fields": {"READY": "1", "STATUS": "...", ...}}
A message with READY=1 also records what was true at that moment:
"ledger": whether the file PATH existed, "control": whether a connection to
the unix socket PATH was accepted. LOG exists (empty) once the socket is
bound. Runs until SIGTERM or SIGINT, then exits 0.
"""

import json
import os
import signal
import socket
import struct
import sys
import time


def usage():
    sys.stderr.write("usage: sdnotify-recv.py SOCKET LOG [--ledger PATH] "
                     "[--control PATH]\n")
    sys.exit(64)


def can_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(1.0)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def main(argv):
    if len(argv) < 3:
        usage()
    spec, log_path = argv[1], argv[2]
    checks = {}
    rest = argv[3:]
    while rest:
        if len(rest) < 2 or rest[0] not in ("--ledger", "--control"):
            usage()
        checks[rest[0][2:]] = rest[1]
        rest = rest[2:]

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sock.bind("\0" + spec[1:] if spec.startswith("@") else spec)
    with open(log_path, "a", encoding="utf-8") as log:
        log.flush()
        cred_size = struct.calcsize("iII")
        while True:
            data, ancdata, _, _ = sock.recvmsg(65536,
                                               socket.CMSG_SPACE(cred_size))
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            pid = None
            for level, kind, cdata in ancdata:
                if (level == socket.SOL_SOCKET and
                        kind == socket.SCM_CREDENTIALS and
                        len(cdata) >= cred_size):
                    pid = struct.unpack("iII", cdata[:cred_size])[0]
            msg = data.decode("utf-8", "replace")
            fields = {}
            for line in msg.split("\n"):
                if "=" in line:
                    key, value = line.split("=", 1)
                    fields[key] = value
            rec = {"t": now, "pid": pid, "msg": msg, "fields": fields}
            if fields.get("READY") == "1":
                if "ledger" in checks:
                    rec["ledger"] = os.path.exists(checks["ledger"])
                if "control" in checks:
                    rec["control"] = can_connect(checks["control"])
            log.write(json.dumps(rec) + "\n")
            log.flush()


if __name__ == "__main__":
    main(sys.argv)
