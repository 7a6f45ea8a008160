#!/usr/bin/python3
"""bench/dashboard.py — what the dashboard costs the server: the size and latency of
GET /ui/api/overview (the call an open dashboard makes every 2 s) with a full history, and of
one queue's view.

    /usr/bin/python3 bench/dashboard.py [--queues 250] [--requests 50] [--bin build/anvil]
                                        [--json FILE] [--smoke]

Starts `anvil --port 0 --durability memory` (test mode), posts one message to each of
--queues queues over 5 projects, freezes the virtual clock and advances it 5 s at a time
until the history holds all its readings (120: ten minutes), then times --requests
GET /ui/api/overview and GET /ui/api/projects/p0/queues/q0 on one keep-alive connection.
Prints bytes, median, p90 and max per call; --json appends one JSON object per call.
--smoke: 20 queues, 10 requests, for scripts/test.sh."""
import argparse
import http.client
import json
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BIN = os.environ.get("ANVIL_BIN", os.path.join(ROOT, "build", "anvil"))
READY_RE = re.compile(rb"anvil ready http://127\.0\.0\.1:(\d+)")
HISTORY_POINTS = 120
START_TIMEOUT_S = 10


def start(binary, workdir):
    proc = subprocess.Popen([binary, "--port", "0", "--durability", "memory", "--test-mode"],
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    out = b""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([proc.stdout], [], [], 0.5)
        if readable:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
            m = READY_RE.search(out)
            if m:
                return proc, int(m.group(1))
    proc.kill()
    sys.exit("anvil did not print its ready line")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queues", type=int, default=250)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--bin", default=DEFAULT_BIN)
    ap.add_argument("--json")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if args.smoke:
        args.queues, args.requests = 20, 10
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        os.environ.pop(k, None)

    with tempfile.TemporaryDirectory(prefix="anvil-bench-dash-") as workdir:
        proc, port = start(os.path.abspath(args.bin), workdir)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

            def call(method, path, body=None):
                data = json.dumps(body) if body is not None else None
                conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                payload = resp.read()
                if resp.status >= 300:
                    sys.exit("%s %s → %d %s" % (method, path, resp.status, payload[:200]))
                return payload

            for i in range(args.queues):
                call("POST", "/3/projects/p%d/queues/q%d/messages" % (i % 5, i),
                     {"messages": [{"body": "x"}]})
            call("POST", "/admin/clock/freeze")
            for _ in range(HISTORY_POINTS + 2):
                call("POST", "/admin/clock/advance", {"seconds": 5})
                call("GET", "/health")  # a loop turn: the reading is taken
            results = []
            for name, path in (("overview", "/ui/api/overview"),
                               ("queue view", "/ui/api/projects/p0/queues/q0")):
                times = []
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    payload = call("GET", path)
                    times.append((time.perf_counter() - t0) * 1000.0)
                times.sort()
                doc = json.loads(payload)
                r = {"call": name, "queues": args.queues, "bytes": len(payload),
                     "median_ms": round(statistics.median(times), 3),
                     "p90_ms": round(times[int(len(times) * 0.9) - 1], 3),
                     "max_ms": round(times[-1], 3)}
                if name == "overview":
                    r["points"] = len(doc["series"]["t"])
                    r["queues_listed"] = len(doc["queues"])
                results.append(r)
                print("%-11s %7d bytes  median %.2f ms  p90 %.2f ms  max %.2f ms%s" % (
                    name, r["bytes"], r["median_ms"], r["p90_ms"], r["max_ms"],
                    "  (%d readings, %d queues listed)" % (r["points"], r["queues_listed"])
                    if "points" in r else ""))
            if args.json:
                with open(args.json, "a") as f:
                    for r in results:
                        f.write(json.dumps(r) + "\n")
            overview = results[0]
            if overview["points"] != HISTORY_POINTS or \
                    overview["queues_listed"] != min(args.queues, 200):
                sys.exit("unexpected overview: %s" % overview)
        finally:
            proc.terminate()
            proc.wait(timeout=15)


if __name__ == "__main__":
    main()
