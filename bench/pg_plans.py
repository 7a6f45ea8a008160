#!/usr/bin/python3
"""bench/pg_plans.py — the plans PostgreSQL runs for anvil's own statements, on a shallow
queue and on a deep one (docs/scale-out.md, "Plans of the real statements").

    /usr/bin/python3 bench/pg_plans.py [--depth N] [--json FILE]

A throwaway cluster (scripts/pg.sh), one anvil node on it with auto_explain loaded into its
sessions (PGOPTIONS: every statement's plan is logged with its buffers, after it ran), and a
queue of 100 messages, then of N (default 1,000,000, written by SQL in one statement). On
each, every call of the v3 API that touches messages runs 8 times over HTTP (the last runs
use the generic plan a prepared statement settles on), and for the last run of each the
script prints the buffers the statement touched and the indexes its plan used. The promise
checked: no call scans anvil_messages sequentially at depth N, and none touches more than 4
times the buffers (plus 40) it touched at depth 100 — the b-trees grow from one level to three,
which a batch of ten lookups feels; a scan would be thousands. Exit status 1 when broken.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pg_nodes import ANVIL, PG_SH, start_cluster  # noqa: E402  (the same throwaway cluster)

RUNS = 8


class Node:
    def __init__(self, url, work):
        env = dict(os.environ, PGOPTIONS=" ".join([
            "-c session_preload_libraries=auto_explain", "-c auto_explain.log_min_duration=0",
            "-c auto_explain.log_analyze=on", "-c auto_explain.log_buffers=on",
            "-c auto_explain.log_timing=off"]))
        self.proc = subprocess.Popen([ANVIL, "--port", "0", "--log-level", "warn", "--data-dir",
                                      tempfile.mkdtemp(dir=work), "--backend", url],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=env)
        line = self.proc.stdout.readline()
        m = re.search(r":(\d+)\s*$", line)
        if not m:
            self.proc.kill()
            self.proc.wait()
            raise SystemExit("anvil did not start: %r" % line)
        self.port = int(m.group(1))

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                   method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(r, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def plans_since(log, offset):
    """(query text, top buffers, indexes used, sequential scans) of each plan logged."""
    with open(log, errors="replace") as f:
        f.seek(offset)
        text = f.read()
    out = []
    for block in re.split(r"\n(?=\S.*LOG:  duration: )", text):
        m = re.search(r"Query Text: (.*)", block)
        if not m:
            continue
        hits = re.search(r"Buffers: shared((?: \w+=\d+)+)", block)
        buffers = sum(int(n) for n in re.findall(r"=(\d+)", hits.group(1))) if hits else 0
        ran = [line for line in block.split("\n") if "never executed" not in line]
        out.append((m.group(1), buffers, sorted(set(re.findall(r" using (\w+)", "\n".join(ran)))),
                    sorted(set(re.findall(r"Seq Scan on (\w+)", "\n".join(ran)))), block))
    return out


CALLS = ["post 10", "reserve 10", "delete 10 (batch)", "post 1", "reserve 1", "touch", "release",
         "reserve 1 again", "delete 1", "peek 10", "queue info"]


def statement_of(call):
    """How each call's statement begins (engine/pg.c)."""
    return {"post 10": "WITH found AS", "post 1": "WITH found AS",
            "reserve 10": "WITH q AS (SELECT id, message_timeout, dead_letter_queue",
            "reserve 1": "WITH q AS (SELECT id, message_timeout, dead_letter_queue",
            "reserve 1 again": "WITH q AS (SELECT id, message_timeout, dead_letter_queue",
            "delete 10 (batch)": "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2), w(",
            "touch": "WITH q AS (SELECT id, message_timeout FROM anvil_queues",
            "release": "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2), m AS (SELECT m.id FROM",
            "delete 1": "WITH q AS (SELECT id, type FROM anvil_queues",
            "peek 10": "WITH q AS (SELECT id FROM anvil_queues WHERE project = $1 AND name = $2), got AS",
            "queue info": "SELECT q.qid"}[call]


def run_calls(node, q, log):
    """Each call RUNS times; what the last run of each logged."""
    path = "/3/projects/p/queues/" + q
    result = {}
    for call in CALLS:
        offset = os.path.getsize(log)
        for _ in range(RUNS):
            if call.startswith("post"):
                n = int(call.split()[1])
                node.req("POST", path + "/messages", {"messages": [{"body": "x" * 100}] * n})
            elif call.startswith("reserve"):
                n = int(call.split()[1])
                got = node.req("POST", path + "/reservations", {"n": n, "timeout": 60})["messages"]
                if call == "reserve 10":
                    node.last = got
                else:
                    node.one = got[0]
            elif call == "delete 10 (batch)":
                msgs = node.last
                node.req("DELETE", path + "/messages", {"ids": [
                    {"id": m["id"], "reservation_id": m["reservation_id"]} for m in msgs]})
                node.last = node.req("POST", path + "/reservations", {"n": 10})["messages"]
            elif call == "touch":
                m = node.one
                r = node.req("POST", path + "/messages/%s/touch" % m["id"],
                             {"reservation_id": m["reservation_id"]})
                m["reservation_id"] = r["reservation_id"]
            elif call == "release":
                m = node.one
                node.req("POST", path + "/messages/%s/release" % m["id"],
                         {"reservation_id": m["reservation_id"], "delay": 0})
                node.one = node.req("POST", path + "/reservations", {"n": 1})["messages"][0]
            elif call == "delete 1":
                m = node.one
                node.req("DELETE", path + "/messages/%s" % m["id"], {"reservation_id": m["reservation_id"]})
                node.one = node.req("POST", path + "/reservations", {"n": 1})["messages"][0]
            elif call == "peek 10":
                node.req("GET", path + "/messages?n=10")
            elif call == "queue info":
                node.req("GET", path)
        time.sleep(0.3)  # the log is written
        mine = [p for p in plans_since(log, offset) if p[0].startswith(statement_of(call))]
        result[call] = mine[-1] if mine else None
    return result


def fill(url, q, depth):
    """depth ready messages on queue q, written in one statement (and counted)."""
    sql = ("WITH q AS (SELECT id FROM anvil_queues WHERE project = 'p' AND name = '%s'),"
           " ins AS (INSERT INTO anvil_messages (id, queue, body, visible_at, expires_at)"
           "  SELECT nextval('anvil_message_ids'), q.id, convert_to(repeat('m', 100), 'UTF8'),"
           "  now() - make_interval(secs => 1000 - g * 0.0001), now() + interval '7 days'"
           "  FROM q, generate_series(1, %d) g RETURNING queue)"
           " INSERT INTO anvil_queue_totals (queue, shard, n, size)"
           " SELECT queue, 63, count(*), count(*) FROM ins GROUP BY queue"
           " ON CONFLICT (queue, shard) DO UPDATE SET n = anvil_queue_totals.n + EXCLUDED.n,"
           " size = anvil_queue_totals.size + EXCLUDED.size" % (q, depth))
    subprocess.run(["psql", url, "-X", "-q", "-c", sql], check=True, capture_output=True)
    subprocess.run(["psql", url, "-X", "-q", "-c", "VACUUM ANALYZE"], check=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=1000000)
    ap.add_argument("--json")
    ap.add_argument("--plans", help="write the last plan of each call at each depth to this file")
    args = ap.parse_args()
    work, cluster, port = start_cluster("anvil-pgplans-")
    url = "postgres://anvil@127.0.0.1:%d/postgres" % port
    log = cluster + "/primary.log"
    node = None
    results = {}
    try:
        node = Node(url, work)
        for depth in (100, args.depth):
            q = "depth%d" % depth
            node.req("PUT", "/3/projects/p/queues/" + q, {"queue": {}})
            fill(url, q, depth)
            t = time.monotonic()
            results[depth] = run_calls(node, q, log)
            print("depth %d: calls done in %.1f s" % (depth, time.monotonic() - t), flush=True)
    finally:
        if node:
            node.stop()
        subprocess.run([PG_SH, "stop", cluster], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    shallow, deep = results[100], results[args.depth]
    if args.plans:
        with open(args.plans, "w") as f:
            for depth, res in results.items():
                for call in CALLS:
                    if res.get(call):
                        f.write("==== %s at depth %d\n%s\n" % (call, depth, res[call][4]))
    ok = True
    print("%-18s | %18s | %18s | indexes (at depth %d)" % ("call", "buffers at 100", "buffers at %d" % args.depth, args.depth))
    for call in CALLS:
        a, b = shallow.get(call), deep.get(call)
        if not a or not b:
            print("%-18s | no plan logged" % call)
            ok = False
            continue
        seq = [t for t in b[3] if t == "anvil_messages"]  # a small table is rightly scanned
        grew = b[1] > 4 * a[1] + 40  # a b-tree grows from 1 to 3 levels; a scan would be thousands
        ok &= not seq and not grew
        print("%-18s | %18d | %18d | %s%s%s" % (call, a[1], b[1], ", ".join(b[2]) or "-",
                                                " SEQ SCAN" if seq else "", " GREW" if grew else ""))
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({"call": call, "depth": args.depth, "buffers_100": a[1],
                                    "buffers_deep": b[1], "indexes": b[2], "seq_scans": b[3]}) + "\n")
    print("work per call does not grow with depth" if ok else "A CALL GREW WITH DEPTH OR SCANNED THE TABLE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
