#!/usr/bin/env python3
# A loopback TCP proxy for partition tests: listens on 127.0.0.1 on a port
# the kernel picks, writes that port and a newline into PORT_FILE once it
# listens (a temporary file renamed into place, so PORT_FILE never holds a
# partial number), and forwards each connection to TARGET, both directions.
# When either side closes (or fails), both are closed: no half-open pairs.
#
# usage: pg-proxy.py PORT_FILE TARGET
#   TARGET: a unix socket path if it starts with "/"
#           (e.g. $PG_DIR/.s.PGSQL.$PG_PORT), else HOST:PORT
#           (e.g. 127.0.0.1:$PG_PORT; [::1]:PORT for IPv6).
#
# A partition: kill -STOP the proxy and every byte in either direction
# waits (connections stay open, the kernel still accepts new ones into the
# backlog, nothing is refused); kill -CONT lets them go on. The stop
# reaches the proxy's threads one after the other, not when kill returns:
# a test that must know nothing passes any more waits until every
# /proc/PID/task/*/stat shows state T. A cut: kill it (SIGTERM/SIGKILL): every connection through it is
# closed. Exit status 64 for a usage error, 1 when it cannot listen or
# write PORT_FILE. Python 3 standard library only.
import os
import socket
import sys
import threading


def usage():
    print("usage: pg-proxy.py PORT_FILE TARGET", file=sys.stderr)
    sys.exit(64)


def parse_target(target):
    """(family, address) of TARGET, or None when it is malformed."""
    if target.startswith("/"):
        return socket.AF_UNIX, target
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        return socket.AF_INET6, (host[1:-1], int(port))
    return socket.AF_INET, (host, int(port))


class Pair:
    """A client connection and its connection to the target."""

    def __init__(self, a, b):
        self.socks = (a, b)
        self.lock = threading.Lock()
        self.running = 2

    def pipe(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        # Either side gone: both go (the other direction's recv returns).
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.lock:
            self.running -= 1
            last = self.running == 0
        if last:
            for s in self.socks:
                s.close()


def serve(client, family, address):
    up = None
    try:
        up = socket.socket(family, socket.SOCK_STREAM)
        up.connect(address)
    except OSError as e:
        print("pg-proxy: cannot connect to %s: %s" % (sys.argv[2], e),
              file=sys.stderr)
        if up is not None:
            up.close()
        client.close()
        return
    for s in (client, up):
        if s.family != socket.AF_UNIX:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pair = Pair(client, up)
    for src, dst in ((client, up), (up, client)):
        threading.Thread(target=pair.pipe, args=(src, dst),
                         daemon=True).start()


def main():
    if len(sys.argv) != 3 or not sys.argv[1] or not sys.argv[2]:
        usage()
    port_file = sys.argv[1]
    target = parse_target(sys.argv[2])
    if target is None:
        usage()
    try:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(128)
        tmp = "%s.%d.tmp" % (port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % ls.getsockname()[1])
        os.rename(tmp, port_file)
    except OSError as e:
        print("pg-proxy: %s" % e, file=sys.stderr)
        sys.exit(1)
    while True:
        try:
            client, _ = ls.accept()
        except InterruptedError:
            continue
        threading.Thread(target=serve, args=(client,) + target,
                         daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
