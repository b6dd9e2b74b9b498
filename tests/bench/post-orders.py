#!/usr/bin/env python3
"""usage: post-orders.py HOST:PORT TOKEN PREFIX RATE SECONDS LOG

Posts new orders to the daemon's control API (POST /v1/orders, Bearer
TOKEN) at RATE per second for SECONDS, on one kept-alive connection, ids
PREFIX%07d. LOG gets one line per order: "<orderId> <unix ms just before
the request was sent> <HTTP status> <ms the answer took>". Exits 0."""

import http.client
import json
import sys
import time

if len(sys.argv) != 7:
    sys.stderr.write(__doc__)
    sys.exit(64)
hostport, token, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
rate, seconds, log_path = float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
host, port = hostport.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=10)
headers = {"Content-Type": "application/json",
           "Authorization": "Bearer " + token}
n = int(rate * seconds)
t0 = time.monotonic()
with open(log_path, "w", encoding="ascii") as log:
    for i in range(1, n + 1):
        delay = t0 + (i - 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        oid = "%s%07d" % (prefix, i)
        body = json.dumps({"orderId": oid, "userKey": str(700000000 + i)})
        sent = time.time_ns() // 1000000
        try:
            conn.request("POST", "/v1/orders", body, headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            status = 0
        took = time.time_ns() // 1000000 - sent
        log.write("%s %d %d %d\n" % (oid, sent, status, took))
        log.flush()
