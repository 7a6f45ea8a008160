"""Durability when the disk misbehaves, and the operator's tools around it: a full disk, a
database locked by another process, a corrupt or truncated file, an unwritable directory;
a graceful stop under load; space given back after deletions; backup while running and
restore. Throughout: nothing is acknowledged that was not stored, and anvil never crashes.

A full disk is simulated with a file-size limit (RLIMIT_FSIZE, set with prlimit): writes past
it fail as they would on a full file system, and raising the limit gives the space back.
While the disk fails, reads of committed state are answered; a read that would report a
change not yet committed (such as the size of the queue being posted to) waits for it and
gets 503 too, since no answer may report what a crash could undo."""

BACKENDS = ("sqlite",)  # disk faults, locks, backups of the embedded database
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

from harness import Server, make_temp_dir, run_anvil, unique, wait_for


class LimitedServer(Server):
    """anvil started under `prlimit --fsize=SOFT:unlimited`: files it writes cannot grow past
    SOFT bytes until the limit is raised."""

    def __init__(self, fsize, **kw):
        super().__init__(**kw)
        self.fsize = fsize

    def command(self):
        return ["prlimit", "--fsize=%d:unlimited" % self.fsize, "--"] + super().command()

    def give_space(self):
        subprocess.run(["prlimit", "--pid", str(self.proc.pid), "--fsize=unlimited:unlimited"],
                       check=True)



def test_full_disk_answers_503_keeps_serving_reads_and_recovers_by_itself():
    srv = LimitedServer(fsize=2 * 1024 * 1024)
    srv._launch()
    try:
        p = srv.project("p")
        q = unique("full")
        settled_q = unique("settled")
        (settled,) = p.post(settled_q, "committed before the disk filled")
        body = "x" * 8000
        acked, refused = [], 0
        for _ in range(200):
            st, resp, _ = p.req("POST", p.path(q, "messages"), {"messages": [{"body": body}] * 10})
            if st == 201:
                acked.extend(resp["ids"])
            else:
                assert st == 503, (st, resp)
                assert "Storage is unavailable" in resp["msg"], resp
                refused += 1
                if refused >= 3:
                    break
        assert refused >= 3, "the file size limit was never hit"
        assert acked, "nothing was stored before the disk filled"
        st, resp, _ = srv.req("GET", "/health")
        assert st == 503 and resp["status"] == "degraded", (st, resp)
        st, resp, _ = p.req("GET", p.path(q))           # it would report refused posts
        assert st == 503, (st, resp)
        st, resp, _ = p.req("GET", p.path(settled_q, "messages", settled))  # committed: answered
        assert st == 200 and resp["message"]["body"].startswith("committed"), (st, resp)
        st, resp, _ = p.req("GET", p.path(settled_q))
        assert st == 200 and resp["queue"]["size"] == 1, (st, resp)
        srv.give_space()
        assert wait_for(lambda: p.req("POST", p.path(q, "messages"),
                                      {"messages": [{"body": "after"}]})[0] == 201, 10), \
            "anvil did not recover once space came back\n" + srv.log_tail()
        assert wait_for(srv.healthy, 5)
        srv.kill()                                       # nothing acknowledged may be missing
        srv2 = Server.start(data_dir=srv.data_dir)
        try:
            p2 = srv2.project("p")
            for mid in acked:
                st, resp, _ = p2.req("GET", p2.path(q, "messages", mid))
                assert st == 200, ("acknowledged message lost", mid, st, resp)
        finally:
            srv2.stop()
        assert srv.died() is None
    finally:
        srv.kill()


def test_database_locked_by_another_process_answers_503_until_released():
    with Server.start() as srv:
        p = srv.project("p")
        q = unique("locked")
        (before,) = p.post(q, "before")
        other = sqlite3.connect(os.path.join(srv.data_dir, "anvil.db"), timeout=5,
                                isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")      # holds the write lock
        try:
            t0 = time.monotonic()
            st, resp, _ = p.req("POST", p.path(q, "messages"), {"messages": [{"body": "during"}]},
                                timeout=15)
            assert st == 503, (st, resp)
            assert time.monotonic() - t0 < 5, "the refusal took too long"
            st, resp, _ = p.req("GET", p.path(q, "messages", before))   # committed: answered
            assert st == 200, (st, resp)
            st, resp, _ = srv.req("GET", "/health")
            assert st == 503, (st, resp)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert wait_for(lambda: p.req("POST", p.path(q, "messages"),
                                      {"messages": [{"body": "after"}]})[0] == 201, 10)


def start_fails(data_dir):
    r = run_anvil(["--port", "0", "--data-dir", data_dir])
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.returncode > 0, "anvil crashed"
    return r.stderr


def fill_and_stop(messages=3000):
    srv = Server.start()
    p = srv.project("p")
    for i in range(0, messages, 100):
        p.post("q", *["message %d %s" % (i + k, "y" * 200) for k in range(100)])
    srv.stop()
    return srv.data_dir


def test_truncated_database_refuses_to_start_with_a_clear_message():
    data_dir = fill_and_stop()
    db = os.path.join(data_dir, "anvil.db")
    with open(db, "r+b") as f:
        f.truncate(os.path.getsize(db) // 2)
    err = start_fails(data_dir)
    assert "database" in err and ("malformed" in err or "cannot" in err), err


def test_garbage_database_refuses_to_start_with_a_clear_message():
    data_dir = os.path.join(make_temp_dir(), "data")
    os.makedirs(data_dir)
    with open(os.path.join(data_dir, "anvil.db"), "wb") as f:
        f.write(os.urandom(64 * 1024))
    err = start_fails(data_dir)
    assert "not a database" in err, err


def test_unwritable_data_directory_refuses_to_start_with_a_clear_message():
    if not shutil.which("setpriv") or os.geteuid() != 0:
        # as a normal user: a directory we cannot write is enough
        data_dir = make_temp_dir()
        os.chmod(data_dir, 0o500)
        err = start_fails(data_dir)
        os.chmod(data_dir, 0o700)
        assert data_dir in err, err
        return
    # as root (CI): run anvil as nobody on a directory that nobody cannot write
    data_dir = make_temp_dir()
    os.chmod(data_dir, 0o755)
    os.chmod(os.path.dirname(data_dir), 0o755)
    from harness import ANVIL_BIN
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ANVIL_BIN,
                        "--port", "0", "--data-dir", data_dir], capture_output=True, text=True,
                       timeout=30, cwd="/")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert data_dir in r.stderr, r.stderr


def test_sigterm_under_load_finishes_what_it_acknowledged():
    srv = Server.start()
    p = srv.project("p")
    q = unique("term")
    acked, stop = [], threading.Event()
    lock = threading.Lock()

    def poster(n):
        c = srv.client()
        i = 0
        while not stop.is_set():
            try:
                st, resp, _ = c.req("POST", p.path(q, "messages"),
                                    {"messages": [{"body": "c%d-%d" % (n, i)}]})
            except Exception:
                return
            if st == 201:
                with lock:
                    acked.extend(resp["ids"])
            i += 1

    threads = [threading.Thread(target=poster, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    srv.signal(signal.SIGTERM)
    code = srv.wait_exit(15)
    stop.set()
    for t in threads:
        t.join(10)
    assert code == 0, srv.log_tail()
    assert acked
    srv2 = Server.start(data_dir=srv.data_dir)
    try:
        p2 = srv2.project("p")
        missing = [m for m in acked if p2.req("GET", p2.path(q, "messages", m))[0] != 200]
        assert not missing, "%d acknowledged posts missing after SIGTERM" % len(missing)
    finally:
        srv2.stop()


def stats(srv):
    st, body, _ = srv.req("GET", "/stats")
    assert st == 200, (st, body)
    return body


def test_steady_post_and_delete_keeps_the_database_bounded():
    with Server.start(["--durability", "normal"]) as srv:
        p = srv.project("p")
        q = unique("steady")
        body = "z" * 1000
        sizes = []
        for rnd in range(30):
            p.post(q, *[body] * 100)
            p.post(q, *[body] * 100)
            msgs = p.reserve(q, n=100) + p.reserve(q, n=100)
            st, resp, _ = p.req("DELETE", p.path(q, "messages"),
                                {"ids": [{"id": m["id"], "reservation_id": m["reservation_id"]}
                                         for m in msgs[:100]]})
            assert st == 200, resp
            st, resp, _ = p.req("DELETE", p.path(q, "messages"),
                                {"ids": [{"id": m["id"], "reservation_id": m["reservation_id"]}
                                         for m in msgs[100:]]})
            assert st == 200, resp
            d = stats(srv)["disk"]
            sizes.append(d["db_bytes"] + d["wal_bytes"])
        # 6 MB went through; at most 200 KB is live at any time: the files stay small and
        # stop growing once freed pages are being reused
        assert max(sizes) < 8 * 1024 * 1024, sizes
        assert max(sizes[15:]) <= max(sizes[:15]) * 1.25, sizes


def test_space_of_a_cleared_queue_goes_back_to_the_file_system():
    with Server.start(["--durability", "normal"]) as srv:
        p = srv.project("p")
        q = unique("big")
        for _ in range(40):
            p.post(q, *["w" * 4000] * 100)           # about 16 MB
        # the space figures are refreshed after commits, at most ten times a second
        tick = unique("tick")
        assert wait_for(lambda: p.post(tick, "t") and stats(srv)["disk"]["db_bytes"] > 12 * 1024 * 1024,
                        5, step=0.15), stats(srv)["disk"]
        peak = stats(srv)["disk"]["db_bytes"]
        live = stats(srv)["disk"]["live_body_bytes"]
        assert 40 * 100 * 4000 <= live < 40 * 100 * 4000 + 1000, live  # and the ticks
        assert p.req("DELETE", p.path(q, "messages"), {})[0] == 200
        # a slice of free pages goes back after commits, at most ten times a second
        assert wait_for(lambda: p.post(tick, "t") and stats(srv)["disk"]["db_bytes"] < peak / 2,
                        5, step=0.15), (stats(srv)["disk"], peak)
        assert stats(srv)["disk"]["live_body_bytes"] < 1000


def test_backup_while_running_and_restore_into_a_new_directory():
    srv = Server.start()
    try:
        p = srv.project("p")
        p.create("backed", message_timeout=90)
        before = []
        for i in range(0, 500, 100):
            before += p.post("backed", *["b%d" % k for k in range(i, i + 100)])
        out = os.path.join(make_temp_dir(), "backup.db")
        stop, extra = threading.Event(), []

        def writer():                                 # the backup runs beside live traffic
            c = srv.client()
            while not stop.is_set():
                st, resp, _ = c.req("POST", p.path("backed", "messages"),
                                    {"messages": [{"body": "during"}]})
                if st == 201:
                    extra.extend(resp["ids"])

        t = threading.Thread(target=writer)
        t.start()
        r = run_anvil(["backup", out, "--data-dir", srv.data_dir])
        stop.set()
        t.join(10)
        assert r.returncode == 0, r.stderr
        assert "backed up" in r.stdout, r.stdout
        again = run_anvil(["backup", out, "--data-dir", srv.data_dir])
        assert again.returncode == 1 and "exists" in again.stderr, again.stderr
        busy = run_anvil(["restore", out, "--data-dir", srv.data_dir])
        assert busy.returncode == 1 and "stop it first" in busy.stderr, busy.stderr
    finally:
        srv.stop()
    target = os.path.join(make_temp_dir(), "restored")
    r = run_anvil(["restore", out, "--data-dir", target])
    assert r.returncode == 0, r.stderr
    with Server.start(data_dir=target) as restored:
        p2 = restored.project("p")
        assert p2.info("backed")["message_timeout"] == 90
        for mid in before:
            st, resp, _ = p2.req("GET", p2.path("backed", "messages", mid))
            assert st == 200, (mid, st, resp)
        size = p2.size("backed")
        assert len(before) <= size <= len(before) + len(extra)


def test_restore_refuses_a_file_that_is_not_an_anvil_backup():
    bogus = os.path.join(make_temp_dir(), "bogus.db")
    con = sqlite3.connect(bogus)
    con.execute("CREATE TABLE other (x)")
    con.close()
    r = run_anvil(["restore", bogus, "--data-dir", os.path.join(make_temp_dir(), "d")])
    assert r.returncode == 1 and "schema version" in r.stderr, r.stderr
