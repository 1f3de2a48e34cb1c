#!/usr/bin/python3
"""observe_tool.py -- HTTP, /metrics and sd_notify helpers for the observability tests.

  observe_tool.py free-port
  observe_tool.py notify-listen SOCKET OUTFILE      one line per datagram, until killed
  observe_tool.py wait-status URL CODE SECONDS      until GET URL answers CODE
  observe_tool.py wait-metric URL NAME OP VALUE SECONDS
                                                    until the sum of NAME's samples OP VALUE
  observe_tool.py prom-query PROMETHEUS_URL QUERY VALUE SECONDS
                                                    until the instant query returns VALUE
  observe_tool.py abuse HOST PORT PID               idle, half-sent, oversized and flooding
                                                    requests; a fresh GET /metrics must still
                                                    answer within 1 s and RSS grow < 10 MiB
"""
import http.client
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$')


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e)


def metric_sum(text, name):
    """The sum of a family's samples, or of one series when name carries its labels; names
    joined by " + " are added up."""
    if " + " in name:
        parts = [metric_sum(text, part) for part in name.split(" + ")]
        return None if None in parts else sum(parts)
    total, seen = 0.0, False
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and (m.group(1) == name or m.group(1) + (m.group(2) or "") == name):
            total += float(m.group(3))
            seen = True
    return total if seen else None


def until(seconds, probe, describe):
    deadline = time.monotonic() + seconds
    while True:
        ok, last = probe()
        if ok:
            print(describe(last))
            return 0
        if time.monotonic() > deadline:
            print("timed out; last: " + describe(last))
            return 1
        time.sleep(0.2)  # another process's state: nothing to wait on but time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def timed_get(host, port, source):
    """GET /metrics from another loopback address than the flood's (as a scraper would be)."""
    start = time.monotonic()
    try:
        conn = http.client.HTTPConnection(host, port, timeout=2, source_address=(source, 0))
        conn.request("GET", "/metrics")
        status = conn.getresponse().status
        conn.close()
    except OSError:
        status = 0
    return status, time.monotonic() - start


def abuse(host, port, pid):
    url = "http://%s:%d/metrics" % (host, port)
    problems = []
    get(url)
    before = rss_kib(pid)
    socks = []
    # 200 connections that never finish their request (slowloris), all from one address:
    # the per-address limit keeps them from starving everyone else.
    for _ in range(200):
        try:
            s = socket.create_connection((host, port), timeout=2)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            pass  # refused at the connection limit: that is the point
    # 64 KiB of headers, a POST with a body, a path climbing out of the root.
    for request in (b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 65536 + b"\r\n\r\n",
                    b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                    b"GET /../metrics HTTP/1.1\r\nHost: x\r\n\r\n"):
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(request)
                s.recv(1024)
        except OSError:
            pass
    for i in range(5):
        status, took = timed_get(host, port, "127.0.0.2")
        if status != 200 or took > 1.0:
            problems.append("GET /metrics during the flood: %s in %.2f s" % (status, took))
    grown = rss_kib(pid) - before
    if grown > 10 * 1024:
        problems.append("RSS grew by %d KiB" % grown)
    # The idle ones are closed by the server after http.timeout_s.
    deadline = time.monotonic() + 5
    open_left = 0
    for s in socks:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if s.recv(1) != b"":
                open_left += 1
        except socket.timeout:
            open_left += 1
        except OSError:
            pass
        s.close()
    if open_left:
        problems.append("%d idle connections still open after the timeout" % open_left)
    print("%d idle connections accepted, RSS %+d KiB; %s"
          % (len(socks), grown, "; ".join(problems) or "all fine"))
    return 1 if problems else 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "free-port":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        s.close()
        return 0
    if cmd == "notify-listen":
        path, out = argv[2], argv[3]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        with open(out, "a") as f:
            while True:
                data = s.recv(4096).decode(errors="replace")
                f.write(data.replace("\n", "|") + "\n")
                f.flush()
    if cmd == "wait-status":
        url, code, seconds = argv[2], int(argv[3]), float(argv[4])

        def probe():
            status, body = get(url)
            return status == code, (status, body)
        return until(seconds, probe, lambda last: "%s %s" % last)
    if cmd == "wait-metric":
        url, name, op, value, seconds = argv[2], argv[3], argv[4], float(argv[5]), float(argv[6])
        ops = {"==": lambda a: a == value, ">=": lambda a: a >= value, "<=": lambda a: a <= value}

        def probe():
            status, body = get(url)
            got = metric_sum(body, name) if status == 200 else None
            return got is not None and ops[op](got), got
        return until(seconds, probe, lambda got: "%s = %s" % (name, got))
    if cmd == "prom-query":
        base, query, value, seconds = argv[2], argv[3], float(argv[4]), float(argv[5])

        def probe():
            status, body = get(base + "/api/v1/query?query=" + urllib.parse.quote(query))
            if status != 200:
                return False, body
            result = json.loads(body)["data"]["result"]
            got = float(result[0]["value"][1]) if result else None
            return got == value, got
        return until(seconds, probe, lambda got: "%s = %s" % (query, got))
    if cmd == "abuse":
        return abuse(argv[2], int(argv[3]), int(argv[4]))
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
