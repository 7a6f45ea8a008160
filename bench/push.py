#!/usr/bin/python3
"""bench/push.py — push delivery throughput: anvil delivering to a local subscriber (the
bare libmicrohttpd ceiling, which answers 200 at once), one multicast queue.

    /usr/bin/python3 bench/push.py [--messages 20000] [--subscribers 1] [--durability fsync]
                                   [--concurrency 64] [--per-subscriber 8]

Posts the messages in batches of 100, then waits until the queue is empty; prints
deliveries per second (messages × subscribers / time from the first post to the last
delivery)."""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ANVIL, CEILING, free_port, wait_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--subscribers", type=int, default=1)
    ap.add_argument("--durability", default="fsync", choices=("fsync", "normal", "memory"))
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--per-subscriber", type=int, default=8)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="anvil-push-bench-")
    sub_port, port = free_port(), free_port()
    procs = []
    try:
        procs.append(subprocess.Popen([CEILING, "--port", str(sub_port)], stdout=subprocess.DEVNULL))
        procs.append(subprocess.Popen([ANVIL, "--port", str(port), "--data-dir", work, "--durability",
                                       a.durability, "--log-level", "warn", "--push-concurrency",
                                       str(a.concurrency), "--push-subscriber-concurrency",
                                       str(a.per_subscriber)], stdout=subprocess.DEVNULL))
        if not (wait_port(sub_port) and wait_port(port)):
            raise SystemExit("servers did not start")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def req(method, path, body=None):
            c.request(method, "/3/projects/bench" + path, json.dumps(body) if body else None,
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            assert r.status in (200, 201), (r.status, data)
            return json.loads(data)

        subs = [{"name": "s%d" % i, "url": "http://127.0.0.1:%d/" % sub_port}
                for i in range(a.subscribers)]
        req("PUT", "/queues/pushed", {"queue": {"type": "multicast", "push": {"subscribers": subs}}})
        t0 = time.monotonic()
        for start in range(0, a.messages, 100):
            n = min(100, a.messages - start)
            req("POST", "/queues/pushed/messages", {"messages": [{"body": "m" * 100}] * n})
        posted = time.monotonic() - t0
        while req("GET", "/queues/pushed")["queue"]["size"] > 0:
            time.sleep(0.01)
        took = time.monotonic() - t0
        total = a.messages * a.subscribers
        print("push: %d messages x %d subscriber(s), %s, %d per subscriber: posted in %.2f s, all"
              " delivered in %.2f s: %.0f deliveries/s" % (a.messages, a.subscribers, a.durability,
                                                           a.per_subscriber, posted, took, total / took))
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
