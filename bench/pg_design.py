#!/usr/bin/python3
"""bench/pg_design.py — the PostgreSQL back end's schema and statements, measured before the
back end exists (issue: anvil on PostgreSQL; docs/scale-out.md).

    /usr/bin/python3 bench/pg_design.py [--depth N] [--seconds S] [--json FILE]

On a throwaway cluster (initdb in a temporary directory, a free loopback port,
synchronous_commit on) it creates the schema the back end will use, then:
  1. prints EXPLAIN (ANALYZE, BUFFERS) of reserve, delete, touch, release and post on a queue
     holding 100 messages and on one holding --depth messages (default 1,000,000): the plans
     must be the same index scans, touching the same handful of buffers, at both depths;
  2. runs pgbench with the back end's own statements — post a batch, reserve a batch with
     FOR UPDATE SKIP LOCKED, delete the batch checking the reservation — at batches of 1 and
     10, 16 clients: the ceiling that anvil-on-PostgreSQL will be measured against.
Prints one JSON line per measurement (and appends them to --json FILE).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Postgres  # noqa: E402  (the throwaway cluster of the benchmark suite)

SCHEMA = """
CREATE TABLE queues (
  id              bigserial PRIMARY KEY,
  project         text NOT NULL,
  name            text NOT NULL,
  message_timeout int NOT NULL DEFAULT 60,
  message_expiration int NOT NULL DEFAULT 604800,
  UNIQUE (project, name));
CREATE TABLE messages (
  id             bigint PRIMARY KEY,
  queue          bigint NOT NULL REFERENCES queues ON DELETE CASCADE,
  body           bytea NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  visible_at     timestamptz NOT NULL DEFAULT now(),  -- ready when <= now(): no node owns a timer
  expires_at     timestamptz NOT NULL,
  reservation    uuid,                                -- NULL: not reserved
  reserved_count int NOT NULL DEFAULT 0);
-- reserve reads the front of one queue: (queue, visible_at, id) serves the ORDER BY ... LIMIT
CREATE INDEX messages_ready ON messages (queue, visible_at, id);
CREATE SEQUENCE message_ids;
INSERT INTO queues (project, name) VALUES ('p', 'shallow'), ('p', 'deep'), ('p', 'bench');
"""

# The back end's statements (docs/scale-out.md), with the queue as $1 where pgbench allows.
RESERVE = """UPDATE messages m SET reservation = gen_random_uuid(), reserved_count = reserved_count + 1,
       visible_at = now() + interval '60 seconds'
 WHERE m.id IN (SELECT id FROM messages WHERE queue = {q} AND visible_at <= now() AND expires_at > now()
                ORDER BY visible_at, id LIMIT {n} FOR UPDATE SKIP LOCKED)
 RETURNING m.id, m.reservation, m.reserved_count, m.body"""
DELETE = ("DELETE FROM messages WHERE id = {id} AND queue = {q} AND reservation = '{rid}'"
          " AND visible_at > now()")
TOUCH = ("UPDATE messages SET reservation = gen_random_uuid(), reserved_count = reserved_count + 1,"
         " visible_at = now() + interval '60 seconds' WHERE id = {id} AND queue = {q}"
         " AND reservation = '{rid}' AND visible_at > now() RETURNING reservation")
RELEASE = ("UPDATE messages SET reservation = NULL, visible_at = now() WHERE id = {id} AND queue = {q}"
           " AND reservation = '{rid}' AND visible_at > now()")
POST = ("INSERT INTO messages (id, queue, body, expires_at) SELECT nextval('message_ids'), {q},"
        " convert_to(repeat('m', 100), 'UTF8'), now() + interval '7 days' FROM generate_series(1, {n})")

CYCLE = """\\set n {n}
INSERT INTO messages (id, queue, body, expires_at) SELECT nextval('message_ids'), 3,
  convert_to(repeat('m', 100), 'UTF8'), now() + interval '7 days' FROM generate_series(1, :n);
WITH r AS (UPDATE messages m SET reservation = gen_random_uuid(), reserved_count = reserved_count + 1,
       visible_at = now() + interval '60 seconds'
 WHERE m.id IN (SELECT id FROM messages WHERE queue = 3 AND visible_at <= now() AND expires_at > now()
                ORDER BY visible_at, id LIMIT :n FOR UPDATE SKIP LOCKED)
 RETURNING m.id, m.reservation)
SELECT string_agg(id::text, ',') AS ids, string_agg(reservation::text, ',') AS rids FROM r \\gset
DELETE FROM messages m USING unnest(string_to_array(':ids', ',')::bigint[],
                                    string_to_array(':rids', ',')::uuid[]) AS d(id, rid)
 WHERE m.id = d.id AND m.queue = 3 AND m.reservation = d.rid AND m.visible_at > now();
"""


def psql(pg, sql, *extra):
    r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "bench", "-d", "postgres",
                        "-q", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", *extra, "-c", sql],
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit("psql failed: %s\n%s" % (sql, r.stderr))
    return r.stdout


def explain(pg, label, sql):
    """Runs sql under EXPLAIN ANALYZE in a transaction that is rolled back: state is unchanged."""
    out = psql(pg, "BEGIN; EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) %s; ROLLBACK;" % sql)
    first = re.search(r"Buffers: ([^\n]*)", out)  # the top node's: everything the statement touched
    buffers = sum(int(x) for x in re.findall(r"(?:hit|read|dirtied|written)=(\d+)", first.group(1))) if first else 0
    scans = sorted(set(re.findall(r"(Index Only Scan|Index Scan|Seq Scan|Bitmap Heap Scan) (?:using (\w+) )?on (\w+)", out)))
    return {"statement": label, "plan": out.strip(), "top_buffers": buffers,
            "scans": ["%s %s on %s" % s for s in scans]}


def one_message(pg, queue):
    """Reserves one message of queue (committed) and returns (id, reservation)."""
    row = psql(pg, RESERVE.format(q=queue, n=1)).strip().split("|")
    return row[0], row[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=1000000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    work = tempfile.mkdtemp(prefix="anvil-pgdesign-")
    pg = Postgres("pg-design", "postgresql", "fsync", work).start()
    try:
        psql(pg, "DROP TABLE q")
        psql(pg, SCHEMA)
        psql(pg, POST.format(q=1, n=100))
        psql(pg, POST.format(q=2, n=args.depth))
        psql(pg, "VACUUM ANALYZE")
        for queue, label in ((1, "100"), (2, str(args.depth))):
            mid, rid = one_message(pg, queue)
            for name, sql in (("reserve 10", RESERVE.format(q=queue, n=10)),
                              ("delete", DELETE.format(id=mid, q=queue, rid=rid)),
                              ("touch", TOUCH.format(id=mid, q=queue, rid=rid)),
                              ("release", RELEASE.format(id=mid, q=queue, rid=rid)),
                              ("post 10", POST.format(q=queue, n=10))):
                e = explain(pg, name, sql)
                e.update({"kind": "explain", "depth": label})
                rows.append(e)
                print("depth %-8s %-11s top-node buffers %4d  %s"
                      % (label, name, e["top_buffers"], "; ".join(e["scans"]) or "(no scan)"))
        for n in (1, 10):
            script = os.path.join(pg.dir, "cycle%d.sql" % n)
            with open(script, "w") as f:
                f.write(CYCLE.format(n=n))
            r = subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "bench", "-n",
                                "-c", str(args.clients), "-j", "2", "-T", str(args.seconds), "-f",
                                script, "postgres"], capture_output=True, text=True)
            tps = 0.0
            for line in r.stdout.splitlines():
                if line.startswith("tps"):
                    tps = float(line.split("=")[1].split()[0])
            row = {"kind": "pgbench", "batch": n, "clients": args.clients, "seconds": args.seconds,
                   "cycles_per_s": tps, "msg_per_s": tps * n, "errors": r.returncode}
            rows.append(row)
            print("pgbench post+reserve+delete, batch %2d, %d clients: %8.0f cycles/s = %9.0f msg/s%s"
                  % (n, args.clients, tps, tps * n, "" if r.returncode == 0 else "  (errors: %s)" % r.stderr[-300:]))
    finally:
        pg.stop()
    if args.json:
        with open(args.json, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return 0 if all(r.get("errors", 0) == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
