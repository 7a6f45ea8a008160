#!/usr/bin/python3
"""bench/run.py — the benchmark suite: anvil against its ceiling and its peers, side by side,
on this machine, in one run, at matched durability.

    /usr/bin/python3 bench/run.py [--quick | --smoke] [--depth-10m] [--json results.jsonl]
    (scripts/bench.sh installs the peers, builds, and runs this)

Systems, each started here on a free loopback port with a fresh data directory:
  ceiling     a bare libmicrohttpd server answering a fixed JSON body (bench/ceiling.c)
  anvil       --durability fsync | normal | memory
  beanstalkd  -b DIR -f 0 (fsync every write) | -b DIR -F (binlog, never fsync) | no binlog
  redis       appendonly, appendfsync always | everysec | no persistence
              used as a reliable queue: LPUSH, LMOVE to a processing list, LREM
  postgresql  a queue table: INSERT; UPDATE ... FOR UPDATE SKIP LOCKED ... RETURNING;
              DELETE; driven by pgbench (synchronous_commit on | off | unlogged table)
Durability classes: "fsync" = acknowledged means flushed to disk; "normal" = written to the
OS, survives a crash of the server process; "memory" = nothing kept.

Workloads (bench/loadgen.c drives HTTP, beanstalkd and Redis alike):
  W1 single-message cycle post → reserve → delete, 100-byte bodies, 1 and 16 connections
  W2 batches of 100: post 100, reserve 100, delete 100 (by ids); peers pipeline 100 commands
  W3 W1 and W2 with 1M messages queued first (10M with --depth-10m): depth must not matter
  W4 long polling: 10,000 idle waiters (server CPU while idle), and post → wake latency
  W5 256 and 1,000 connections opened at once: no stall, no errors
  W6 1,000 queues, Zipf-skewed choice (s = 1.1), 16 connections
Every result is appended as one JSON object per line to --json; the table at the end gives
each target's ratio."""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("ANVIL_BUILD", os.path.join(ROOT, "build"))
LOADGEN = os.path.join(BUILD, "bench", "loadgen")
CEILING = os.path.join(BUILD, "bench", "ceiling")
ANVIL = os.path.join(BUILD, "anvil")
PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


class System:
    """One server process: a name for the table, its durability class, how to start it."""

    def __init__(self, name, kind, durability, work):
        self.name, self.kind, self.durability, self.work = name, kind, durability, work
        self.proc = None
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=name.replace(" ", "-") + "-", dir=work)

    def command(self):
        if self.kind == "ceiling":
            return [CEILING, "--port", str(self.port)] + (
                ["--internal-thread"] if self.durability == "internal" else [])
        if self.kind == "anvil":
            return [ANVIL, "--port", str(self.port), "--data-dir", self.dir, "--durability",
                    self.durability, "--log-level", "warn", "--connection-limit", "20000"]
        if self.kind == "beanstalkd":
            args = ["beanstalkd", "-l", "127.0.0.1", "-p", str(self.port), "-z", "100000"]
            if self.durability == "fsync":
                args += ["-b", self.dir, "-f", "0"]
            elif self.durability == "normal":
                args += ["-b", self.dir, "-F"]
            return args
        if self.kind == "redis":
            args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                    self.dir, "--save", "", "--daemonize", "no", "--protected-mode", "no",
                    "--maxclients", "20000"]
            if self.durability == "fsync":
                args += ["--appendonly", "yes", "--appendfsync", "always"]
            elif self.durability == "normal":
                args += ["--appendonly", "yes", "--appendfsync", "everysec"]
            else:
                args += ["--appendonly", "no"]
            return args
        raise ValueError(self.kind)

    def start(self):
        log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log)
        if not wait_port(self.port):
            raise SystemExit("%s did not start (see %s)" % (self.name, log.name))
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Postgres(System):
    """A throwaway cluster (initdb as the postgres user: it refuses to run as root)."""

    def start(self):
        os.chmod(self.work, 0o755)
        os.chmod(self.dir, 0o777)
        pgdata = os.path.join(self.dir, "data")
        as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(as_pg + [PG_BIN + "/initdb", "-D", pgdata, "-A", "trust", "-U", "bench"],
                       check=True, capture_output=True)
        sync = {"fsync": "on", "normal": "off", "memory": "off"}[self.durability]
        opts = ("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s "
                "-c synchronous_commit=%s -c max_connections=200 -c shared_buffers=256MB"
                % (self.port, self.dir, sync))
        if self.durability == "memory":
            opts += " -c fsync=off"
        self.as_pg = as_pg
        self.pgdata = pgdata
        subprocess.run(as_pg + [PG_BIN + "/pg_ctl", "-D", pgdata, "-o", opts, "-l",
                                os.path.join(self.dir, "server.log"), "-w", "start"],
                       check=True, capture_output=True)
        unlogged = "UNLOGGED" if self.durability == "memory" else ""
        self.psql("CREATE %s TABLE q (id bigserial PRIMARY KEY, body text NOT NULL,"
                  " visible_at timestamptz NOT NULL DEFAULT now(), reserved_count int NOT NULL DEFAULT 0)"
                  % unlogged)
        return self

    def psql(self, sql):
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "bench", "-d",
                        "postgres", "-q", "-c", sql], check=True, capture_output=True)

    def stop(self):
        if getattr(self, "pgdata", None):
            subprocess.run(self.as_pg + [PG_BIN + "/pg_ctl", "-D", self.pgdata, "-m", "fast", "stop"],
                           capture_output=True)


PG_CYCLE = """INSERT INTO q (body) VALUES (repeat('m', 100));
WITH m AS (UPDATE q SET visible_at = now() + interval '60 seconds', reserved_count = reserved_count + 1
 WHERE id = (SELECT id FROM q WHERE visible_at <= now() ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
 RETURNING id) SELECT coalesce(max(id), 0) AS id FROM m \\gset
DELETE FROM q WHERE id = :id;
"""


def pgbench(system, connections, seconds, label, results):
    script = os.path.join(system.dir, "cycle.sql")
    with open(script, "w") as f:
        f.write(PG_CYCLE)
    logdir = tempfile.mkdtemp(dir=system.dir)
    os.chmod(logdir, 0o777)
    r = subprocess.run(["pgbench", "-h", "127.0.0.1", "-p", str(system.port), "-U", "bench", "-n",
                        "-c", str(connections), "-j", "2", "-T", str(seconds), "-f", script, "-l",
                        "--log-prefix", os.path.join(logdir, "tx"), "postgres"],
                       capture_output=True, text=True, cwd=logdir)
    lat = []
    for name in os.listdir(logdir):
        with open(os.path.join(logdir, name)) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]))
    lat.sort()
    tps = 0.0
    for line in r.stdout.splitlines():
        if line.startswith("tps"):
            tps = float(line.split("=")[1].split()[0])
    pct = (lambda p: float(lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else 0.0)
    row = {"label": label, "target": "postgresql", "workload": "cycle", "connections": connections,
           "batch": 1, "queues": 1, "seconds": seconds, "requests": 3 * len(lat),
           "messages": len(lat), "errors": 0 if r.returncode == 0 else 1,
           "req_per_s": 3 * tps, "msg_per_s": tps, "p50_us": pct(0.5), "p99_us": pct(0.99),
           "p999_us": pct(0.999), "max_us": float(lat[-1]) if lat else 0.0}
    results.append(row)
    print("%-28s %-10s %-8s conns %5d batch %3d  %10.0f req/s %10.0f msg/s  p50 %8.1f us  p99 %8.1f us"
          % (label, "postgresql", "cycle", connections, 1, row["req_per_s"], tps, row["p50_us"],
             row["p99_us"]))
    return row


def loadgen(system, args, label, results, json_path):
    cmd = [LOADGEN, "--target", system.kind if system.kind != "ceiling" else "ceiling",
           "--port", str(system.port), "--label", label, "--json", json_path] + [str(a) for a in args]
    before = sum(1 for _ in open(json_path)) if os.path.exists(json_path) else 0
    r = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    if r.stderr:
        sys.stderr.write(r.stderr)
    with open(json_path) as f:
        rows = [json.loads(line) for line in f][before:]
    row = rows[-1] if rows else {"label": label, "errors": 1, "req_per_s": 0, "msg_per_s": 0}
    row["system"] = system.name
    row["durability"] = system.durability
    results.append(row)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (2 s each), 1M depth only")
    ap.add_argument("--smoke", action="store_true", help="seconds: anvil (memory) and the ceiling only")
    ap.add_argument("--depth-10m", action="store_true", help="W3 also with 10M messages queued")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "latest.jsonl"))
    a = ap.parse_args()
    secs = 1 if a.smoke else 2 if a.quick else 5
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    if os.path.exists(a.json):
        os.remove(a.json)
    work = tempfile.mkdtemp(prefix="anvil-bench-")
    results = []
    systems = []

    def start(name, kind, durability):
        s = (Postgres if kind == "postgresql" else System)(name, kind, durability, work)
        s.start()
        systems.append(s)
        return s

    have = {k: shutil.which(k) for k in ("beanstalkd", "redis-server", "pgbench")}
    try:
        ceiling = start("ceiling", "ceiling", "-")
        classes = ["memory"] if a.smoke else ["fsync", "normal", "memory"]
        anvils = {d: start("anvil " + d, "anvil", d) for d in classes}
        peers = []
        if not a.smoke:
            for d in classes:
                if have["beanstalkd"]:
                    peers.append(start({"fsync": "beanstalkd -f0", "normal": "beanstalkd -F",
                                        "memory": "beanstalkd"}[d], "beanstalkd", d))
                if have["redis-server"]:
                    peers.append(start({"fsync": "redis always", "normal": "redis everysec",
                                        "memory": "redis"}[d], "redis", d))

        if not a.smoke:
            results.append(disk_flush_probe(work))
            with open(a.json, "a") as f:
                f.write(json.dumps(results[-1]) + "\n")
        print("== ceiling")
        loadgen(ceiling, ["--workload", "get", "--connections", 16, "--duration", secs],
                "ceiling 16c", results, a.json)
        loadgen(ceiling, ["--workload", "get", "--connections", 1, "--duration", secs],
                "ceiling 1c", results, a.json)

        print("== W1 single-message cycle (100-byte bodies)")
        for conns in (1, 16):
            for s in list(anvils.values()) + peers:
                loadgen(s, ["--workload", "cycle", "--connections", conns, "--duration", secs],
                        "W1 %dc %s" % (conns, s.name), results, a.json)

        print("== W2 batches of 100")
        for s in list(anvils.values()) + peers:
            loadgen(s, ["--workload", "cycle", "--batch", 100, "--connections", 16, "--duration", secs],
                    "W2 %s" % s.name, results, a.json)

        if have["pgbench"] and not a.smoke:
            print("== PostgreSQL (FOR UPDATE SKIP LOCKED queue table, pgbench), W1")
            for d in classes:
                pg = start("postgresql " + d, "postgresql", d)
                for conns in (1, 16):
                    pgbench(pg, conns, secs, "W1 %dc postgresql %s" % (conns, d), results)[
                        "durability"] = d
                pg.stop()

        if not a.smoke:
            # Deep and empty are measured on two fresh servers, alternately, three times each,
            # and compared by their medians: this machine's speed drifts more between minutes
            # than depth could change it.
            print("== W3 depth (anvil fsync; deep and empty alternate, medians of 3)")
            depths = [1000000] + ([10000000] if a.depth_10m else [])
            for depth in depths:
                tag = "%dM" % (depth // 1000000)
                deep = start("anvil fsync deep", "anvil", "fsync")
                empty = start("anvil fsync empty", "anvil", "fsync")
                t0 = time.monotonic()
                loadgen(deep, ["--workload", "post", "--batch", 100, "--connections", 8,
                               "--requests", depth // 100, "--duration", 3600],
                        "W3 fill %s" % tag, results, a.json)
                print("   filled %d messages in %.0f s" % (depth, time.monotonic() - t0))
                runs = {}
                for rnd in range(3):
                    for wl, args in (("W1 16c", []), ("W2", ["--batch", 100])):
                        for kind, s in (("empty", empty), ("depth", deep)):
                            label = "W3 %s %s %s #%d" % (wl, kind, tag, rnd + 1)
                            loadgen(s, ["--workload", "cycle", "--connections", 16,
                                        "--duration", secs] + args, label, results, a.json)
                            runs.setdefault((wl, kind), []).append(find(results, label))
                for (wl, kind), rs in runs.items():
                    med = sorted(rs, key=lambda r: r["msg_per_s"])[len(rs) // 2]
                    summary = dict(med, label="W3 %s %s %s" % (wl, kind, tag))
                    results.append(summary)
                deep.stop()
                empty.stop()

        print("== W4 long polling")
        lp = anvils[classes[0]]
        waiters = 100 if a.smoke else 10000
        loadgen(lp, ["--workload", "longpoll", "--connections", waiters + 1, "--wait-interval-ms", 0,
                     "--duration", 2 if a.smoke else 10, "--server-pid", lp.proc.pid, "--queue", "idle"],
                "W4 %d idle waiters" % waiters, results, a.json)
        for d, s in anvils.items():  # a post is told to its waiter once committed
            loadgen(s, ["--workload", "longpoll", "--connections", 1001 if not a.smoke else 11,
                        "--wait-interval-ms", 5, "--duration", secs * 2, "--queue", "wake"],
                    "W4 post->wake %s" % d, results, a.json)

        print("== W5 connections opened at once (anvil %s; then libmicrohttpd's own epoll"
              " thread, which anvil does not use)" % classes[0])
        for conns in (256, 1000):
            loadgen(lp, ["--workload", "cycle", "--connections", conns, "--duration", secs],
                    "W5 %d connections" % conns, results, a.json)
        for conns in (256, 1000):  # a fresh server each time: the stall depends on the start
            mhd = start("ceiling internal thread", "ceiling", "internal")
            loadgen(mhd, ["--workload", "get", "--connections", conns, "--duration", secs],
                    "W5 %d connections, MHD internal thread" % conns, results, a.json)
            mhd.stop()

        if not a.smoke:
            print("== W6 1,000 queues, Zipf s=1.1")
            for s in list(anvils.values()) + peers:
                loadgen(s, ["--workload", "cycle", "--connections", 16, "--queues", 1000,
                            "--zipf", 1.1, "--duration", secs], "W6 %s" % s.name, results, a.json)
    finally:
        for s in systems:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(results, a.smoke)
    errors = sum(int(r.get("errors", 0)) for r in results)
    print("RESULT passed=%d failed=%d" % (1 if errors == 0 else 0, 1 if errors else 0))
    sys.exit(1 if errors else 0)


def find(results, label):
    for r in results:
        if r.get("label") == label:
            return r
    return None


def disk_flush_probe(directory, n=2000):
    """The disk's own floor for a durable commit: fdatasync after a 4 KiB write."""
    path = os.path.join(directory, "flush-probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    lat = []
    try:
        os.ftruncate(fd, 4096 * 64)
        for i in range(n):
            os.pwrite(fd, b"x" * 4096, (i % 64) * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    return {"label": "disk fdatasync", "p50_us": lat[n // 2], "p99_us": lat[int(n * 0.99)],
            "p999_us": lat[int(n * 0.999)], "max_us": lat[-1], "errors": 0}


def targets(results):
    """The issue's targets, each with the measured value and whether it is met."""
    def get(label, key):
        r = find(results, label)
        return r.get(key) if r else None

    rows = []

    def target(name, value, goal, met, unit=""):
        if value is None:
            return
        rows.append((name, ("%.2f" % value if value < 100 else "%.0f" % value) + unit, goal,
                     "met" if met else "MISSED"))

    w1, ceil = get("W1 16c anvil fsync", "req_per_s"), get("ceiling 16c", "req_per_s")
    if w1 and ceil:
        target("W1 16c fsync / ceiling (req/s)", w1 / ceil, ">= 0.6", w1 / ceil >= 0.6, "x")
    m1 = get("W1 16c anvil fsync", "msg_per_s")
    for peer, goal in (("beanstalkd -f0", 3.0), ("redis always", 1.0)):
        p = get("W1 16c %s" % peer, "msg_per_s")
        if m1 and p:
            target("W1 16c fsync / %s" % peer, m1 / p, ">= %.1f" % goal, m1 / p >= goal, "x")
    w2 = get("W2 anvil fsync", "msg_per_s")
    if w2:
        target("W2 fsync (msg/s)", w2, ">= 300000", w2 >= 300000)
    for wl in ("W1 16c", "W2"):
        for depth in ("1M", "10M"):
            deep, empty = get("W3 %s depth %s" % (wl, depth), "msg_per_s"), get("W3 %s empty %s" % (wl, depth), "msg_per_s")
            if deep and empty:
                target("W3 %s at %s / empty" % (wl, depth), deep / empty, ">= 0.90", deep / empty >= 0.9, "x")
    idle = [r for r in results if r.get("label", "").endswith("idle waiters")]
    for r in idle:
        target("W4 CPU, %s (%%)" % r["label"][3:], r["server_cpu_pct"], "~ 0", r["server_cpu_pct"] < 0.5)
    for d in ("fsync", "normal", "memory"):
        p99 = get("W4 post->wake %s" % d, "p99_us")
        target("W4 post->wake p99, %s (us)" % d, p99, "<= 1000", p99 is not None and p99 <= 1000)
    for n in (256, 1000):
        r = find(results, "W5 %d connections" % n)
        if r:
            target("W5 %d at once: errors" % n, float(r["errors"]), "0", r["errors"] == 0)
            target("W5 %d at once: req/s (no stall)" % n, r["req_per_s"], "> 0", r["req_per_s"] > 0)
    print("\n== targets")
    for row in rows:
        print("%-36s %12s %10s  %s" % row)


def report(results, smoke):
    flush = find(results, "disk fdatasync")
    if flush:
        print("\n== disk: fdatasync after a 4 KiB write: p50 %.0f us, p99 %.0f us, p99.9 %.0f us"
              % (flush["p50_us"], flush["p99_us"], flush["p999_us"]))
    print("\n== summary (ratios are anvil / other, higher is better for anvil)")
    ceil = find(results, "ceiling 16c")
    rows = []

    def ratio(a, b, key="req_per_s"):
        if not a or not b or not b.get(key):
            return "-"
        return "%.2f" % (a[key] / b[key])

    for d in ("fsync", "normal", "memory"):
        w1 = find(results, "W1 16c anvil %s" % d)
        if not w1:
            continue
        peers = {"fsync": ("beanstalkd -f0", "redis always", "postgresql fsync"),
                 "normal": ("beanstalkd -F", "redis everysec", "postgresql normal"),
                 "memory": ("beanstalkd", "redis", "postgresql memory")}[d]
        bs = find(results, "W1 16c %s" % peers[0])
        rd = find(results, "W1 16c %s" % peers[1])
        pg = find(results, "W1 16c postgresql %s" % d)
        rows.append(("W1 16c %s" % d, "%.0f msg/s" % w1["msg_per_s"], ratio(w1, ceil),
                     ratio(w1, bs, "msg_per_s"), ratio(w1, rd, "msg_per_s"), ratio(w1, pg, "msg_per_s")))
        w2 = find(results, "W2 anvil %s" % d)
        if w2:
            bs2, rd2 = find(results, "W2 %s" % peers[0]), find(results, "W2 %s" % peers[1])
            rows.append(("W2 %s" % d, "%.0f msg/s" % w2["msg_per_s"], "-",
                         ratio(w2, bs2, "msg_per_s"), ratio(w2, rd2, "msg_per_s"), "-"))
    print("%-16s %14s %10s %12s %10s %12s" % ("workload", "anvil", "/ceiling", "/beanstalkd", "/redis",
                                             "/postgresql"))
    for r in rows:
        print("%-16s %14s %10s %12s %10s %12s" % r)
    for depth in ("1M", "10M"):
        d1, d2 = find(results, "W3 W1 16c depth %s" % depth), find(results, "W3 W2 depth %s" % depth)
        e1, e2 = find(results, "W3 W1 16c empty %s" % depth), find(results, "W3 W2 empty %s" % depth)
        if d1 and e1 and d2 and e2:
            print("W3 depth %s (medians): W1 %.0f msg/s (%.2f of empty), W2 %.0f msg/s (%.2f of empty)"
                  % (depth, d1["msg_per_s"], d1["msg_per_s"] / e1["msg_per_s"],
                     d2["msg_per_s"], d2["msg_per_s"] / e2["msg_per_s"]))
    for r in results:
        if "MHD internal thread" in r.get("label", ""):
            print("%s: %.0f req/s, errors %d" % (r["label"], r["req_per_s"], r.get("errors", 0)))
        elif r.get("label", "").startswith("W4") or r.get("label", "").startswith("W5"):
            extra = ""
            if r.get("server_cpu_pct", -1) >= 0:
                extra = ", server CPU %.2f%%" % r["server_cpu_pct"]
            print("%s: p50 %.0f us, p99 %.0f us, max %.0f us, errors %d, opened in %.0f ms%s"
                  % (r["label"], r.get("p50_us", 0), r.get("p99_us", 0), r.get("max_us", 0),
                     r.get("errors", 0), r.get("open_ms", 0), extra))
    if not smoke:
        targets(results)


if __name__ == "__main__":
    main()
