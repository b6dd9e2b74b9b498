#!/usr/bin/env python3
"""A webhook receiver for tests: plain HTTP on 127.0.0.1, Python 3 standard
library only. It checks Standard Webhooks signatures, writes one JSON line per
request to --log and misbehaves on command (--mode-file), so a test can watch
the daemon's webhook sink retry, back off and stop.

Log lines: {"id", "timestamp", "valid", "body", "answer", "at", "path",
"content_type", "user_agent"}, where answer is what it did ("204", "401",
"500", "410", "stall", "reset", "read") and at is its own clock (float
seconds).

Modes, read from --mode-file on every request (absent or empty file: ok; a
GET /mode?set=MODE request sets the mode used when there is no mode file):
  ok       204 on a valid delivery, 401 on a bad signature or stale timestamp
  NNN      answer with that HTTP status code (500, 410, 429, 400, ...)
  stall    read the request, never answer; hold the connection until the
           client gives up (or --stall-max seconds)
  reset    read the request, then reset the connection (RST)
  read     read the request, then close without an answer (FIN)
  big      200 with a 100 KiB body (past the sender's 64 KiB cap) on a
           valid delivery, 401 on a bad signature
The file may hold several lines "MODE [WEBHOOK-ID]": the first line whose id
equals the request's webhook-id, or that names no id, applies.

Exit codes: 0 after SIGTERM/SIGINT, 64 usage, 1 runtime failure."""

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY_MAX = 1 << 20
MODES = ("ok", "stall", "reset", "read", "big")


def decode_secret(secret):
    """whsec_<base64> -> key bytes; ValueError if it is not of that form."""
    if not secret.startswith("whsec_"):
        raise ValueError("secret must start with whsec_")
    try:
        key = base64.b64decode(secret[len("whsec_"):], validate=True)
    except binascii.Error as e:
        raise ValueError("secret is not base64: %s" % e)
    if not key:
        raise ValueError("secret is empty")
    return key


def sign(key, msg_id, timestamp, body):
    """The base64 HMAC-SHA256 of "id.timestamp.body" (Standard Webhooks)."""
    content = msg_id.encode("latin-1") + b"." + timestamp.encode("latin-1") \
        + b"." + body
    return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()) \
        .decode("ascii")


def verify(key, tolerance, msg_id, timestamp, signature, body, now):
    """True when one v1 signature matches and the timestamp is fresh."""
    if not msg_id or not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    expected = sign(key, msg_id, timestamp, body)
    ok = False
    for part in signature.split(" "):
        version, _, sig = part.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            ok = True
    return ok


def valid_mode(mode):
    return mode in MODES or (len(mode) == 3 and mode.isdigit()
                             and 100 <= int(mode) <= 599)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, args, key):
        super().__init__(addr, Handler)
        self.args = args
        self.key = key
        self.lock = threading.Lock()
        self.mode = "ok"
        self.stopping = threading.Event()
        self.logf = open(args.log, "a", encoding="utf-8")

    def mode_for(self, msg_id):
        """The mode for one request, from the mode file or the last /mode."""
        path = self.args.mode_file
        if path:
            try:
                with open(path, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                lines = []
            for line in lines:
                words = line.split()
                if not words:
                    continue
                if len(words) == 1 or words[1] == msg_id:
                    return words[0] if valid_mode(words[0]) else "500"
            if any(line.strip() for line in lines):
                return "ok"
        with self.lock:
            return self.mode

    def record(self, rec):
        line = json.dumps(rec, sort_keys=True)
        with self.lock:
            self.logf.write(line + "\n")
            self.logf.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "webhook-recv/1"

    def log_message(self, fmt, *args):
        if self.server.args.verbose:
            sys.stderr.write("webhook-recv: %s\n" % (fmt % args))

    def reply(self, code, text=b""):
        self.send_response(code)
        if code not in (204, 304):
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        if text and code not in (204, 304):
            self.wfile.write(text)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/mode":
            self.reply(404, b"not found\n")
            return
        q = urllib.parse.parse_qs(url.query)
        if "set" in q:
            mode = q["set"][0]
            if not valid_mode(mode):
                self.reply(400, b"bad mode\n")
                return
            with self.server.lock:
                self.server.mode = mode
        with self.server.lock:
            mode = self.server.mode
        self.reply(200, (mode + "\n").encode("ascii"))

    def do_POST(self):
        srv = self.server
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self.reply(411, b"length required\n")
            return
        if length < 0 or length > BODY_MAX:
            self.close_connection = True
            self.reply(413, b"too large\n")
            return
        body = self.rfile.read(length)
        msg_id = self.headers.get("webhook-id", "")
        timestamp = self.headers.get("webhook-timestamp", "")
        signature = self.headers.get("webhook-signature", "")
        now = time.time()
        valid = verify(srv.key, srv.args.tolerance, msg_id, timestamp,
                       signature, body, now)
        mode = srv.mode_for(msg_id)
        if mode == "ok":
            answer = "204" if valid else "401"
        elif mode == "big":
            answer = "200" if valid else "401"
        else:
            answer = mode
        try:
            ts = int(timestamp)
        except ValueError:
            ts = None
        srv.record({
            "id": msg_id,
            "timestamp": ts,
            "valid": valid,
            "body": body.decode("utf-8", "replace"),
            "answer": answer,
            "at": now,
            "path": self.path,
            "content_type": self.headers.get("Content-Type", ""),
            "user_agent": self.headers.get("User-Agent", ""),
        })
        if answer == "stall":
            self.stall()
        elif answer == "reset":
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        elif answer == "read":
            self.close_connection = True
        elif answer == "401":
            self.reply(401, b"bad signature\n")
        elif mode == "big":
            self.reply(200, b"x" * (100 * 1024))
        else:
            self.reply(int(answer))

    def stall(self):
        """Holds the connection without answering until the client leaves."""
        self.close_connection = True
        deadline = time.time() + self.server.args.stall_max
        while time.time() < deadline and not self.server.stopping.is_set():
            r, _, _ = select.select([self.connection], [], [], 0.2)
            if r:
                try:
                    if not self.connection.recv(4096):
                        return
                except OSError:
                    return


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--secret", required=True, help="whsec_<base64>")
    ap.add_argument("--log", required=True, help="JSON Lines of requests")
    ap.add_argument("--port-file", required=True,
                    help="written with the port once listening")
    ap.add_argument("--mode-file", help="read on each request (see above)")
    ap.add_argument("--tolerance", type=int, default=300,
                    help="timestamp tolerance in seconds (300)")
    ap.add_argument("--stall-max", type=float, default=600,
                    help="longest a stalled request is held, seconds")
    ap.add_argument("-v", "--verbose", action="store_true")
    try:
        args = ap.parse_args()
    except SystemExit as e:
        sys.exit(64 if e.code else 0)
    try:
        key = decode_secret(args.secret)
    except ValueError as e:
        print("webhook-recv: %s" % e, file=sys.stderr)
        sys.exit(64)

    try:
        srv = Server(("127.0.0.1", 0), args, key)
    except OSError as e:
        print("webhook-recv: cannot listen: %s" % e, file=sys.stderr)
        sys.exit(1)

    def stop(signum, frame):
        srv.stopping.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    port = srv.server_address[1]
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("%d\n" % port)
    os.replace(tmp, args.port_file)
    try:
        srv.serve_forever(poll_interval=0.1)
    finally:
        srv.stopping.set()
        srv.server_close()
        srv.logf.close()


if __name__ == "__main__":
    main()
