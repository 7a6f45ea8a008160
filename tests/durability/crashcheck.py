#!/usr/bin/python3
"""tests/durability/crashcheck.py — kills anvil with SIGKILL under load, again and again, and
proves after every restart that nothing acknowledged was lost or undone.

    /usr/bin/python3 tests/durability/crashcheck.py [--kills 10] [--durability fsync]
        [--clients 8] [--seed N] [--binary build/anvil]

Each round, client threads post (batches of 1-10 unique bodies), reserve, delete, touch and
release on one queue, and record every answer they got. At a random moment (0.2-1.5 s in)
the server is killed with SIGKILL; requests in flight have an unknown outcome. Then anvil
is started again on the same data directory and the checker drains the queue (reserving
everything, which lists every message in it) and checks:
  - every acknowledged post is there, unless its message was acknowledged as deleted;
  - no acknowledged delete came back;
  - every message is one that some client tried to post, and none is there twice;
  - messages that were reserved when the server died are reservable again at once;
  - the queue's settings are intact and total_messages counts at least every
    acknowledged post and at most every attempted one.
The drain then deletes everything (acknowledged deletes, checked in the next rounds) and
the next round begins. In memory mode the promise is the opposite: nothing survives.
Prints one line per round and `RESULT passed=N failed=M` (one test per round)."""
import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUEUE = "crash"
CONFIG = {"message_timeout": 120, "message_expiration": 86400,
          "dead_letter": {"queue_name": "crash-dlq", "max_reservations": 1000}}
BASE = "/3/projects/durability/queues/" + QUEUE


class Server:
    def __init__(self, binary, data_dir, durability):
        self.binary, self.data_dir, self.durability = binary, data_dir, durability
        self.proc = None
        self.log = open(os.path.join(os.path.dirname(data_dir), "anvil.log"), "a")

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--data-dir", self.data_dir, "--durability",
             self.durability, "--log-level", "warn"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("anvil ready "):
            raise RuntimeError("anvil did not start: %r (see %s)" % (line, self.log.name))
        self.port = int(line.strip().rsplit(":", 1)[1])

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Unknown(Exception):
    """The server went away before answering: the outcome is unknown."""


def call(conn, method, path, body=None):
    try:
        conn.request(method, path, None if body is None else json.dumps(body),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as e:
        raise Unknown(str(e))
    return resp.status, (json.loads(data) if data else None)


class Ledger:
    """What the clients were told, across all rounds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = set()   # bodies anyone tried to post
        self.acked = {}          # id -> body, posts the server acknowledged
        self.deleted = set()     # ids whose delete the server acknowledged
        self.maybe_deleted = set()  # ids whose delete was in flight at a kill
        self.acked_posts = 0
        self.client_errors = []


def client(port, ledger, rng, stop, tag):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    held = {}  # id -> reservation id
    n = 0
    try:
        while not stop.is_set():
            r = rng.random()
            if r < 0.35:
                bodies = ["%s-%d-%d" % (tag, n, i) for i in range(rng.randint(1, 10))]
                n += 1
                with ledger.lock:
                    ledger.attempted.update(bodies)
                st, body = call(conn, "POST", BASE + "/messages",
                                {"messages": [{"body": b} for b in bodies]})
                if st == 201:
                    with ledger.lock:
                        ledger.acked.update(zip(body["ids"], bodies))
                        ledger.acked_posts += len(bodies)
            elif r < 0.6 or not held:
                st, body = call(conn, "POST", BASE + "/reservations",
                                {"n": rng.randint(1, 5), "timeout": 60})
                if st == 200:
                    for m in body["messages"]:
                        held[m["id"]] = m["reservation_id"]
            else:
                mid = rng.choice(list(held))
                rid = held.pop(mid)
                action = rng.random()
                if action < 0.6:
                    try:
                        st, _ = call(conn, "DELETE", BASE + "/messages/" + mid, {"reservation_id": rid})
                    except Unknown:
                        with ledger.lock:
                            ledger.maybe_deleted.add(mid)
                        raise
                    if st == 200:
                        with ledger.lock:
                            ledger.deleted.add(mid)
                elif action < 0.8:
                    st, body = call(conn, "POST", BASE + "/messages/%s/touch" % mid, {"reservation_id": rid})
                    if st == 200:
                        held[mid] = body["reservation_id"]
                else:
                    call(conn, "POST", BASE + "/messages/%s/release" % mid, {"reservation_id": rid})
    except Unknown:
        pass  # the server was killed
    except Exception as e:  # a bug in this checker: make the round fail, loudly
        with ledger.lock:
            ledger.client_errors.append("client %s: %r" % (tag, e))


def drain_and_check(port, ledger, problems):
    """Reserves every message (which lists them all), checks them, then deletes them."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    st, info = call(conn, "GET", BASE)
    if st != 200:
        problems.append("queue info after restart: %d %s" % (st, info))
        return
    q = info["queue"]
    for key in ("message_timeout", "message_expiration"):
        if q.get(key) != CONFIG[key]:
            problems.append("queue %s is %r, was set to %r" % (key, q.get(key), CONFIG[key]))
    if q.get("dead_letter") != CONFIG["dead_letter"]:
        problems.append("dead_letter is %r, was set to %r" % (q.get("dead_letter"), CONFIG["dead_letter"]))
    if q["total_messages"] < ledger.acked_posts:
        problems.append("total_messages %d < %d acknowledged posts" % (q["total_messages"], ledger.acked_posts))
    if q["total_messages"] > len(ledger.attempted):
        problems.append("total_messages %d > %d attempted posts" % (q["total_messages"], len(ledger.attempted)))
    size = q["size"]
    seen = {}
    while True:
        st, body = call(conn, "POST", BASE + "/reservations", {"n": 100, "timeout": 300})
        if st != 200:
            problems.append("reserve while draining: %d %s" % (st, body))
            return
        if not body["messages"]:
            break
        for m in body["messages"]:
            if m["id"] in seen:
                problems.append("message %s handed out twice in one drain" % m["id"])
            seen[m["id"]] = m
    if len(seen) != size:
        problems.append("size said %d, but %d messages were reservable (some stayed reserved?)"
                        % (size, len(seen)))
    bodies = set()
    for mid, m in seen.items():
        if mid in ledger.deleted:
            problems.append("acknowledged delete came back: %s (%s)" % (mid, m["body"]))
        if m["body"] not in ledger.attempted:
            problems.append("message %s has a body nobody posted: %r" % (mid, m["body"]))
        if m["body"] in bodies:
            problems.append("body %r is in the queue twice" % m["body"])
        bodies.add(m["body"])
        if mid in ledger.acked and ledger.acked[mid] != m["body"]:
            problems.append("message %s has body %r, was posted as %r" % (mid, m["body"], ledger.acked[mid]))
    for mid, body in ledger.acked.items():
        if mid not in seen and mid not in ledger.deleted and mid not in ledger.maybe_deleted:
            problems.append("acknowledged post lost: %s (%s)" % (mid, body))
    ids = list(seen.items())
    for i in range(0, len(ids), 100):
        chunk = ids[i:i + 100]
        st, body = call(conn, "DELETE", BASE + "/messages",
                        {"ids": [{"id": mid, "reservation_id": m["reservation_id"]} for mid, m in chunk]})
        if st != 200:
            problems.append("deleting the drained messages: %d %s" % (st, body))
            return
        ledger.deleted.update(mid for mid, _ in chunk)
    # The queue is empty now: what was there is deleted (acknowledged, checked from now on),
    # and a message missing from it had a delete in flight at the kill, which took effect.
    ledger.acked = {}
    ledger.maybe_deleted.clear()


def run(a):
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="anvil-crash-")
    data_dir = os.path.join(work, "data")
    server = Server(a.binary, data_dir, a.durability)
    ledger = Ledger()
    passed = failed = 0
    try:
        server.start()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        st, body = call(conn, "PUT", BASE, {"queue": CONFIG})
        assert st == 200, (st, body)
        for round_no in range(1, a.kills + 1):
            stop = threading.Event()
            threads = [threading.Thread(target=client, args=(server.port, ledger,
                                                             random.Random(rng.random()), stop,
                                                             "r%dc%d" % (round_no, i)))
                       for i in range(a.clients)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.2, 1.5))
            server.kill()
            stop.set()
            for t in threads:
                t.join(timeout=30)
            t0 = time.monotonic()
            server.start()
            restart_ms = (time.monotonic() - t0) * 1000
            problems = list(ledger.client_errors)
            ledger.client_errors.clear()
            if a.durability == "memory":
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                st, body = call(conn, "GET", BASE)
                if st != 404:
                    problems.append("memory mode kept the queue across a kill: %d %s" % (st, body))
                call(conn, "PUT", BASE, {"queue": CONFIG})
                ledger = Ledger()
            else:
                drain_and_check(server.port, ledger, problems)
            status = "ok  " if not problems else "FAIL"
            print("%s round %d (%s): %d acknowledged posts, %d acknowledged deletes so far, "
                  "restart %.0f ms" % (status, round_no, a.durability, ledger.acked_posts,
                                       len(ledger.deleted), restart_ms))
            for p in problems[:20]:
                print("     " + p)
            sys.stdout.flush()
            passed += not problems
            failed += bool(problems)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return passed, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--durability", default="fsync", choices=["fsync", "normal", "memory"])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--binary", default=os.environ.get("ANVIL_BIN", os.path.join(ROOT, "build", "anvil")))
    a = ap.parse_args()
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    print("crashcheck: %d kills, durability %s, %d clients, seed %d"
          % (a.kills, a.durability, a.clients, a.seed))
    t0 = time.monotonic()
    passed, failed = run(a)
    print("crashcheck: %.0f s" % (time.monotonic() - t0))
    print("RESULT passed=%d failed=%d" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
