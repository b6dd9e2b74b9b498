#!/usr/bin/env python3
"""pg-proxy.py LISTEN_PORT_FILE TARGET: a loopback TCP proxy for tests.

Listens on 127.0.0.1 at a port the kernel picks, writes that port (and a
newline) into LISTEN_PORT_FILE once it accepts, and forwards each
connection, both ways, to TARGET: a unix socket path (anything with a
"/") or HOST:PORT. A closed side closes the other. Nothing else: the
tests freeze it (SIGSTOP/SIGCONT) or kill it to make a network path stop
answering or break, and the kernel keeps accepting into the backlog
while it is stopped, as a frozen middlebox would. A stop signal reaches
one thread, which then stops the others: a test that must know nothing
is forwarded any more waits until every /proc/PID/task/*/stat says T."""

import os
import socket
import sys
import threading


def connect(target):
    if "/" in target:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(target)
        return s
    host, _, port = target.rpartition(":")
    return socket.create_connection((host, int(port)))


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def serve(client, target):
    try:
        upstream = connect(target)
    except OSError as e:
        print("pg-proxy: %s: %s" % (target, e), file=sys.stderr)
        client.close()
        return
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()


def main():
    if len(sys.argv) != 3:
        print("usage: pg-proxy.py LISTEN_PORT_FILE TARGET", file=sys.stderr)
        return 2
    port_file, target = sys.argv[1], sys.argv[2]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ls.getsockname()[1])
    os.rename(tmp, port_file)
    while True:
        client, _ = ls.accept()
        serve(client, target)


if __name__ == "__main__":
    sys.exit(main())
