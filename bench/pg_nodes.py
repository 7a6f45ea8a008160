#!/usr/bin/python3
"""bench/pg_nodes.py — anvil on PostgreSQL against its ceiling, side by side in one run
(docs/scale-out.md, "Benchmark").

    /usr/bin/python3 bench/pg_nodes.py [--seconds S] [--connections N] [--rounds R] [--json FILE]

One throwaway PostgreSQL 15 (scripts/pg.sh, synchronous_commit on), then, for batches of 1
and of 10 messages (post a batch, reserve it, delete it — W1/W2 of bench/run.py):
  ceiling    the same statements anvil's PostgreSQL back end sends, driven by pgbench
  1 node     one anvil on the database, N connections (bench/loadgen.c)
  3 nodes    three anvils on the same database, N connections spread over them
  embedded   anvil on its own SQLite journal (fsync), the same load
The ceiling and the anvil runs alternate for R rounds (default 3), each on a fresh database;
prints the medians in messages/s and their ratios; appends JSON lines to --json FILE.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ANVIL = os.path.join(REPO, "build", "anvil")
LOADGEN = os.path.join(REPO, "build", "bench", "loadgen")
PG_SH = os.path.join(REPO, "scripts", "pg.sh")
sys.path.insert(0, HERE)
from run import free_port  # noqa: E402  (the benchmark suite's)

# anvil's own statements (engine/pg.c) for one queue, as pgbench runs them
CEILING = """\\set n {n}
INSERT INTO anvil_messages (id, queue, body, visible_at, expires_at)
  SELECT nextval('anvil_message_ids'), 1, convert_to(repeat('m', 100), 'UTF8'), now(),
  now() + interval '7 days' FROM generate_series(1, :n);
WITH pick AS (SELECT m.id FROM anvil_messages m WHERE m.queue = 1 AND m.visible_at <= now()
  AND m.expires_at > now() ORDER BY m.visible_at, m.id LIMIT :n FOR UPDATE OF m SKIP LOCKED),
 upd AS (UPDATE anvil_messages m SET reservation = gen_random_uuid(), reserved_count = m.reserved_count + 1,
  visible_at = now() + interval '60 seconds' WHERE m.id IN (SELECT id FROM pick)
  RETURNING m.id, m.reservation)
SELECT string_agg(id::text, ',') AS ids, string_agg(reservation::text, ',') AS rids FROM upd \\gset
DELETE FROM anvil_messages m USING unnest(string_to_array(':ids', ',')::bigint[],
  string_to_array(':rids', ',')::uuid[]) AS d(id, rid)
  WHERE m.id = d.id AND m.queue = 1 AND m.reservation = d.rid AND m.visible_at > now();
"""


def start_cluster(prefix):
    """A throwaway PostgreSQL (scripts/pg.sh) in a new directory: (directory, cluster, port)."""
    work = tempfile.mkdtemp(prefix=prefix)
    os.chmod(work, 0o755)  # as root the cluster runs as postgres, which must get in
    cluster = os.path.join(work, "pg")
    port = free_port()
    subprocess.run([PG_SH, "start", cluster, str(port)], check=True, capture_output=True)
    return work, cluster, port


def start_anvil(args, work):
    proc = subprocess.Popen([ANVIL, "--port", "0", "--log-level", "warn", "--data-dir",
                             tempfile.mkdtemp(dir=work)] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    m = re.search(r":(\d+)\s*$", line)
    if not m:
        proc.kill()
        proc.wait()
        raise SystemExit("anvil did not start: %r" % line)
    return proc, int(m.group(1))


def loadgen(ports, connections, batch, seconds):
    """Runs one loadgen per node (connections split evenly) at once; summed msg/s."""
    per = max(1, connections // len(ports))
    outs = [tempfile.mktemp(suffix=".jsonl") for _ in ports]
    procs = [subprocess.Popen([LOADGEN, "--target", "anvil", "--port", str(p), "--workload", "cycle",
                               "--connections", str(per), "--batch", str(batch), "--duration",
                               str(seconds), "--queue", "bench", "--json", out],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for p, out in zip(ports, outs)]
    total, errors = 0.0, 0
    for p, out in zip(procs, outs):
        p.communicate(timeout=seconds + 60)
        with open(out) as f:
            row = json.loads(f.read().splitlines()[-1])
        os.unlink(out)
        total += row["msg_per_s"]
        errors += row.get("errors", 0) + p.returncode
    return total, errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    work, cluster, port = start_cluster("anvil-pgnodes-")
    base = "postgres://anvil@127.0.0.1:%d" % port
    rows, procs = [], []

    def db(name):
        subprocess.run(["psql", base + "/postgres", "-X", "-q", "-c", "CREATE DATABASE " + name],
                       check=True, capture_output=True)
        return base + "/" + name

    def ceiling_run(batch, tag):
        """anvil's schema (made by a node), then its statements through pgbench."""
        url = db("ceiling_%d_%s" % (batch, tag))
        p, aport = start_anvil(["--backend", url], work)
        subprocess.run(["curl", "-s", "-X", "PUT", "-d", "{}",
                        "http://127.0.0.1:%d/3/projects/p/queues/bench" % aport],
                       check=True, capture_output=True)
        p.terminate()
        p.wait()
        script = os.path.join(work, "ceiling%d.sql" % batch)
        with open(script, "w") as f:
            f.write(CEILING.format(n=batch))
        r = subprocess.run(["pgbench", url, "-n", "-c", str(args.connections), "-j", "2", "-T",
                            str(args.seconds), "-f", script], capture_output=True, text=True)
        tps = float(re.search(r"tps = ([\d.]+)", r.stdout).group(1)) if "tps" in r.stdout else 0.0
        return tps * batch

    def nodes_run(batch, nodes, tag):
        url = db("anvil_%d_%d_%s" % (batch, nodes, tag))
        started = [start_anvil(["--backend", url], work) for _ in range(nodes)]
        procs.extend(s[0] for s in started)
        rate, errors = loadgen([s[1] for s in started], args.connections, batch, args.seconds)
        for s in started:
            s[0].terminate()
            s[0].wait()
        return rate, errors

    def median(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]

    try:
        for batch in (1, 10):
            # rounds alternate the ceiling and anvil, each on a fresh database, so that the
            # machine's drift between minutes falls on both; medians are reported
            runs = {"ceiling": [], "1 node": [], "3 nodes": []}
            errors = {"1 node": 0, "3 nodes": 0}
            for r in range(args.rounds):
                runs["ceiling"].append(ceiling_run(batch, r))
                for label, nodes in (("1 node", 1), ("3 nodes", 3)):
                    rate, errs = nodes_run(batch, nodes, r)
                    runs[label].append(rate)
                    errors[label] += errs
            ceiling = median(runs["ceiling"])
            result = {"batch": batch, "rounds": args.rounds, "ceiling": ceiling,
                      "runs": runs}
            for label in ("1 node", "3 nodes"):
                result[label] = median(runs[label])
                result[label + " errors"] = errors[label]
            p, aport = start_anvil(["--durability", "fsync"], work)
            procs.append(p)
            result["embedded"], _ = loadgen([aport], args.connections, batch, args.seconds)
            p.terminate()
            p.wait()
            rows.append(result)
            print("batch %2d: ceiling (pgbench) %8.0f msg/s | 1 node %8.0f (%.2fx) | 3 nodes %8.0f (%.2fx)"
                  " | embedded %8.0f msg/s   (medians of %d rounds; ceiling %s, 1 node %s)"
                  % (batch, ceiling, result["1 node"],
                     result["1 node"] / ceiling if ceiling else 0,
                     result["3 nodes"], result["3 nodes"] / ceiling if ceiling else 0,
                     result["embedded"], args.rounds,
                     "/".join("%.0f" % x for x in runs["ceiling"]),
                     "/".join("%.0f" % x for x in runs["1 node"])), flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        subprocess.run([PG_SH, "stop", cluster], capture_output=True)
    if args.json:
        with open(args.json, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return 0 if all(r["1 node errors"] == 0 and r["3 nodes errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
