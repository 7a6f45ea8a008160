#!/usr/bin/python3
"""bench/bigqueue.py — anvil with a deep queue: how fast it fills, what each queued message
costs in memory, how fast a restart recovers them, and whether reserve/delete get slower
as the queue gets deeper (they must not).

    /usr/bin/python3 bench/bigqueue.py --messages 1000000 [--binary build/anvil]
        [--durability normal] [--body-bytes 32] [--memory-budget auto] [--json out.json]

Steps: start anvil on a free port with a fresh data directory; time a reserve→delete
cycle (keeping the depth with a post) on an empty queue; fill the deep queue with batches
of 100 from several processes; read RSS and /stats; time the same cycles on the deep
queue; stop (SIGTERM) and start again, timing exec → ready line (recovery) and reading
RSS again; time the cycles once more. Prints a table and, with --json, the figures."""
import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(binary, data_dir, args, log):
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "--port", "0", "--data-dir", data_dir, "--log-level", "warn"] + args,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    if not line.startswith("anvil ready "):
        proc.kill()
        raise SystemExit("anvil did not start: %r" % line)
    ready_s = time.monotonic() - t0
    port = int(line.strip().rsplit(":", 1)[1])
    return proc, port, ready_s


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def request(conn, method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        raise RuntimeError("%s %s -> %d %s" % (method, path, resp.status, data[:200]))
    return json.loads(data) if data else None


def fill_worker(args):
    port, queue, count, body_bytes, seed = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    pad = "x" * max(0, body_bytes - 12)
    done = 0
    while done < count:
        n = min(100, count - done)
        msgs = [{"body": "%011d %s" % (seed + done + i, pad)} for i in range(n)]
        request(conn, "POST", "/3/projects/bench/queues/%s/messages" % queue, {"messages": msgs})
        done += n
    return done


def fill(port, queue, total, body_bytes, procs):
    share = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    seeds = [sum(share[:i]) for i in range(procs)]
    t0 = time.monotonic()
    with multiprocessing.Pool(procs) as pool:
        pool.map(fill_worker, [(port, queue, share[i], body_bytes, seeds[i]) for i in range(procs)])
    return time.monotonic() - t0


def cycles(port, queue, n):
    """Per cycle: reserve one (the oldest), delete it, post one (the depth stays put)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    base = "/3/projects/bench/queues/%s" % queue
    times = {"reserve": [], "delete": []}
    for _ in range(n):
        t = time.perf_counter()
        m = request(conn, "POST", base + "/reservations", {"n": 1})["messages"][0]
        times["reserve"].append(time.perf_counter() - t)
        t = time.perf_counter()
        request(conn, "DELETE", base + "/messages/" + m["id"], {"reservation_id": m["reservation_id"]})
        times["delete"].append(time.perf_counter() - t)
        request(conn, "POST", base + "/messages", {"messages": [{"body": "refill"}]})
    out = {}
    for op, ts in times.items():
        ts.sort()
        out[op] = {"mean_us": 1e6 * sum(ts) / len(ts), "p50_us": 1e6 * ts[len(ts) // 2],
                   "p99_us": 1e6 * ts[int(len(ts) * 0.99)]}
    return out


def stats(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    return request(conn, "GET", "/stats")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=1000000)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "anvil"))
    ap.add_argument("--durability", default="normal")
    ap.add_argument("--body-bytes", type=int, default=32)
    ap.add_argument("--memory-budget", default="auto")
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--json")
    ap.add_argument("--keep", metavar="DIR", help="use DIR (empty) for the data and keep it")
    a = ap.parse_args()

    data_dir = a.keep or tempfile.mkdtemp(prefix="anvil-bigqueue-")
    os.makedirs(data_dir, exist_ok=True)
    log = open(os.path.join(data_dir, "anvil.log"), "w")
    args = ["--durability", a.durability, "--memory-budget", a.memory_budget]
    result = {"messages": a.messages, "body_bytes": a.body_bytes, "durability": a.durability}
    proc = None
    try:
        proc, port, _ = start(a.binary, data_dir, args, log)
        fill(port, "small", 100, a.body_bytes, 1)
        result["cycles_depth_100"] = cycles(port, "small", a.cycles)
        base_rss = rss_bytes(proc.pid)

        secs = fill(port, "deep", a.messages, a.body_bytes, a.procs)
        result["fill_seconds"] = secs
        result["fill_rate"] = a.messages / secs
        result["rss_after_fill"] = rss_bytes(proc.pid)
        result["rss_per_message"] = (result["rss_after_fill"] - base_rss) / a.messages
        result["stats_after_fill"] = stats(port)
        result["cycles_deep"] = cycles(port, "deep", a.cycles)

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=600)
        db = os.path.join(data_dir, "anvil.db")
        result["db_bytes"] = os.path.getsize(db)
        proc, port, ready = start(a.binary, data_dir, args, log)
        result["recovery_seconds"] = ready
        result["recovery_rate"] = (a.messages + 100) / ready
        result["rss_after_recovery"] = rss_bytes(proc.pid)
        result["stats_after_recovery"] = stats(port)
        result["cycles_deep_after_recovery"] = cycles(port, "deep", a.cycles)
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=600)
        if not a.keep:
            shutil.rmtree(data_dir, ignore_errors=True)

    mib = 1048576.0
    print("anvil big queue: %d messages of %d bytes, durability %s" % (a.messages, a.body_bytes, a.durability))
    print("  fill            %8.1f s   %10.0f messages/s (batches of 100, %d client processes)"
          % (result["fill_seconds"], result["fill_rate"], a.procs))
    print("  memory          %8.1f MiB RSS after fill, %.0f bytes per queued message"
          % (result["rss_after_fill"] / mib, result["rss_per_message"]))
    print("  database        %8.1f MiB on disk" % (result["db_bytes"] / mib))
    print("  recovery        %8.2f s   %10.0f messages/s, %.1f MiB RSS after"
          % (result["recovery_seconds"], result["recovery_rate"], result["rss_after_recovery"] / mib))
    for label, key in (("depth 100", "cycles_depth_100"), ("deep", "cycles_deep"),
                       ("deep, after restart", "cycles_deep_after_recovery")):
        c = result[key]
        print("  %-22s reserve p50 %6.0f us p99 %6.0f us | delete p50 %6.0f us p99 %6.0f us"
              % (label, c["reserve"]["p50_us"], c["reserve"]["p99_us"], c["delete"]["p50_us"],
                 c["delete"]["p99_us"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
