#!/usr/bin/python3
"""bench/startup.py — how long a test suite waits for anvil: exec → ready line, exec → first
answer, and SIGTERM → exit, over N starts of the real binary.

    /usr/bin/python3 bench/startup.py [--runs 50] [--fsync-runs 20] [--json FILE] [--smoke]
                                      [--goal-ms 20] [--bin build/anvil]

Each run starts `anvil --port 0 --durability memory` (nothing on disk, no data directory) the
way a test harness does: spawn, read stdout until `anvil ready http://127.0.0.1:PORT`, then
GET /health on that port. A second set starts with the default durability (fsync) on a fresh
temporary data directory, so the database is created and recovered each time. Times:
  ready     from just before the spawn to the ready line read from the pipe
  answer    from just before the spawn to the first 200 from GET /health
  self      the server's own "ready in X ms" (log line, from main() to the ready line)
  stop      from SIGTERM to the process's exit
Prints median, p90 and max per set; --json appends one JSON object per set (one line each).
Exit status 1 when a start fails, or when --goal-ms is given and the memory set's median
exec → ready misses it. --smoke: 5 + 2 runs, seconds, for scripts/test.sh."""
import argparse
import http.client
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BIN = os.environ.get("ANVIL_BIN", os.path.join(ROOT, "build", "anvil"))
READY_RE = re.compile(rb"^anvil ready http://127\.0\.0\.1:(\d+)\s*$", re.M)
SELF_RE = re.compile(r"ready in ([0-9.]+) ms")
START_TIMEOUT_S = 10


def read_ready_line(proc, deadline):
    """Reads the child's stdout (unbuffered) until the ready line; returns the port."""
    out = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError("anvil exited before its ready line (status %s)" % proc.wait())
        out += chunk
        m = READY_RE.search(out)
        if m:
            return int(m.group(1))
    raise RuntimeError("no ready line within %d s" % START_TIMEOUT_S)


def first_answer(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError("GET /health answered %d" % resp.status)
    finally:
        conn.close()


def one_start(binary, durability, work):
    """Starts anvil once; returns a dict of times in ms."""
    args = [binary, "--port", "0", "--log-level", "info"]
    data_dir = None
    if durability == "memory":
        args += ["--durability", "memory"]
    else:
        data_dir = tempfile.mkdtemp(prefix="anvil-startup-", dir=work)
        args += ["--data-dir", data_dir]  # the default durability: fsync
    err_path = os.path.join(work, "stderr.log")
    with open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, cwd=work)
        try:
            port = read_ready_line(proc, time.monotonic() + START_TIMEOUT_S)
            t_ready = time.perf_counter()
            first_answer(port)
            t_answer = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            t_term = time.perf_counter()
            rc = proc.wait(timeout=START_TIMEOUT_S)
            t_exit = time.perf_counter()
            if rc != 0:
                raise RuntimeError("anvil exited with status %d after SIGTERM" % rc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    with open(err_path, encoding="utf-8", errors="replace") as f:
        m = SELF_RE.search(f.read())
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"ready": (t_ready - t0) * 1000, "answer": (t_answer - t0) * 1000,
            "self": float(m.group(1)) if m else None, "stop": (t_exit - t_term) * 1000}


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


def summarize(name, runs):
    summary = {"set": name, "runs": len(runs)}
    for key in ("ready", "answer", "self", "stop"):
        vals = [r[key] for r in runs if r[key] is not None]
        if vals:
            summary[key + "_ms"] = {"median": round(statistics.median(vals), 2),
                                    "p90": round(percentile(vals, 90), 2),
                                    "max": round(max(vals), 2)}
    return summary


def print_table(summaries):
    print("%-34s %5s  %-22s %-22s %-22s %-22s" % (
        "set", "runs", "exec→ready med/p90/max", "exec→answer", "self-reported", "SIGTERM→exit"))
    for s in summaries:
        cells = []
        for key in ("ready_ms", "answer_ms", "self_ms", "stop_ms"):
            v = s.get(key)
            cells.append("%.1f / %.1f / %.1f ms" % (v["median"], v["p90"], v["max"]) if v else "-")
        print("%-34s %5d  %-22s %-22s %-22s %-22s" % (s["set"], s["runs"], *cells))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=DEFAULT_BIN, help="the anvil binary (default: $ANVIL_BIN or build/anvil)")
    ap.add_argument("--runs", type=int, default=50, help="starts with --durability memory")
    ap.add_argument("--fsync-runs", type=int, default=20, help="starts with the default durability on a fresh dir")
    ap.add_argument("--json", help="append one JSON object per set to this file")
    ap.add_argument("--goal-ms", type=float, help="fail when the memory set's median exec → ready is above this")
    ap.add_argument("--smoke", action="store_true", help="5 + 2 runs: proves the harness works")
    a = ap.parse_args()
    if a.smoke:
        a.runs, a.fsync_runs = 5, 2
    if not os.access(a.bin, os.X_OK):
        print("anvil binary not found at %s (build it, or set ANVIL_BIN / --bin)" % a.bin)
        return 1
    work = tempfile.mkdtemp(prefix="anvil-startup-bench-")
    summaries = []
    try:
        for name, durability, n in (("--port 0 --durability memory", "memory", a.runs),
                                    ("--port 0, fsync, fresh data dir", "fsync", a.fsync_runs)):
            if n <= 0:
                continue
            one_start(a.bin, durability, work)  # warm the page cache; not counted
            summaries.append(summarize(name, [one_start(a.bin, durability, work) for _ in range(n)]))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print("start failed: %s" % e)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_table(summaries)
    if a.json:
        with open(a.json, "a") as f:
            for s in summaries:
                f.write(json.dumps(dict(s, bench="startup", binary=a.bin)) + "\n")
    ok = True
    if a.goal_ms is not None and summaries:
        med = summaries[0]["ready_ms"]["median"]
        ok = med <= a.goal_ms
        print("goal: median exec → ready %.1f ms %s %.0f ms" % (med, "<=" if ok else ">", a.goal_ms))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
