"""Several anvil nodes on one PostgreSQL (the PostgreSQL back end, docs/scale-out.md): they
serve the same queues as one server would. Runs when ANVIL_TEST_PG names a cluster
(scripts/test.sh starts one); run.py runs them only then.
"""
import os
import re
import subprocess
import threading
import time

import harness
from harness import Server, unique
from test_push import Subscriber, wait_for

BACKENDS = ("postgres",)
nodes = []


def setup_module():
    assert harness.TEST_PG, "ANVIL_TEST_PG is not set: these tests need a PostgreSQL cluster"
    first = Server.start(["--push-timeout", "1"])
    nodes.append(first)
    # the other nodes use the first one's database: the same state
    for _ in range(2):
        s = Server(bare=True)
        s.args = ["--port", "0", "--data-dir", os.path.join(s.temp_dir, "data"),
                  "--backend", first.backend, "--push-timeout", "1"]
        s._launch()
        nodes.append(s)


def teardown_module():
    for s in nodes:
        s.stop()


def path(q, *rest):
    return "/".join(["/3/projects/p/queues", q] + list(rest))


def test_a_queue_created_on_one_node_is_seen_by_every_node():
    q = unique()
    st, body, _ = nodes[0].req("PUT", path(q), {"queue": {"message_timeout": 45}})
    assert st == 200, (st, body)
    for n in nodes:
        st, body, _ = n.req("GET", path(q))
        assert st == 200 and body["queue"]["message_timeout"] == 45, (st, body)


def test_post_on_one_node_reserve_on_another_delete_on_a_third():
    q = unique()
    st, body, _ = nodes[0].req("POST", path(q, "messages"), {"messages": [{"body": "x"}]})
    assert st == 201, (st, body)
    st, body, _ = nodes[1].req("POST", path(q, "reservations"), {"n": 1})
    assert st == 200 and len(body["messages"]) == 1, (st, body)
    m = body["messages"][0]
    # reserved: no node hands it out again
    for n in nodes:
        st, again, _ = n.req("POST", path(q, "reservations"), {"n": 1})
        assert (st, again) == (200, {"messages": []}), (st, again)
    st, body, _ = nodes[2].req("DELETE", path(q, "messages", m["id"]),
                               {"reservation_id": m["reservation_id"]})
    assert (st, body) == (200, {"msg": "Deleted"}), (st, body)
    st, body, _ = nodes[0].req("GET", path(q))
    assert body["queue"]["size"] == 0, body


def test_a_post_on_one_node_wakes_a_long_poll_on_another_within_milliseconds():
    q = unique()
    nodes[0].req("PUT", path(q), {"queue": {}})
    got = {}

    def wait():
        c = harness.Client(nodes[1].ready_host, nodes[1].port, timeout=15)
        st, body, _ = c.req("POST", path(q, "reservations"), {"n": 1, "wait": 10})
        got["answer"], got["at"] = (st, body), time.monotonic()

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.3)  # the waiter is parked on node 1
    posted = time.monotonic()
    st, body, _ = nodes[2].req("POST", path(q, "messages"), {"messages": [{"body": "wake"}]})
    assert st == 201, (st, body)
    t.join(12)
    st, body = got["answer"]
    assert st == 200 and [m["body"] for m in body["messages"]] == ["wake"], got
    assert got["at"] - posted < 0.5, "woken %.0f ms after the post" % ((got["at"] - posted) * 1000)


def test_concurrent_reserves_on_all_nodes_hand_each_message_out_once():
    q = unique()
    total = 60
    for i in range(0, total, 20):
        st, _, _ = nodes[0].req("POST", path(q, "messages"),
                                {"messages": [{"body": "m%d" % k} for k in range(i, i + 20)]})
        assert st == 201
    seen = []
    lock = threading.Lock()

    def drain(node):
        c = harness.Client(node.ready_host, node.port, timeout=15)
        while True:
            st, body, _ = c.req("POST", path(q, "reservations"), {"n": 3})
            assert st == 200, (st, body)
            if not body["messages"]:
                return
            with lock:
                seen.extend(m["id"] for m in body["messages"])

    threads = [threading.Thread(target=drain, args=(n,)) for n in nodes for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(seen) == total and len(set(seen)) == total, (len(seen), len(set(seen)))


def test_a_killed_node_loses_nothing_it_acknowledged():
    q = unique()
    victim = nodes[2]
    st, body, _ = victim.req("POST", path(q, "messages"), {"messages": [{"body": "kept"}]})
    assert st == 201, (st, body)
    victim.proc.kill()  # SIGKILL: the node had nothing of its own to lose
    victim.proc.wait(10)
    victim.running = False
    st, body, _ = nodes[0].req("POST", path(q, "reservations"), {"n": 1})
    assert [m["body"] for m in body["messages"]] == ["kept"], body
    victim._launch()  # and it comes back to the same state
    st, body, _ = victim.req("GET", path(q))
    assert st == 200 and body["queue"]["size"] == 1, (st, body)


def test_the_schema_is_refused_when_it_is_newer_than_this_anvil():
    db = nodes[0].backend.rsplit("/", 1)[1] + "_newer"
    base = harness.TEST_PG
    subprocess.run(["psql", base + "/postgres", "-X", "-q", "-c", "CREATE DATABASE " + db], check=True,
                   capture_output=True, timeout=30)
    try:
        subprocess.run(["psql", base + "/" + db, "-X", "-q", "-c",
                        "CREATE TABLE anvil_meta (key text PRIMARY KEY, value bigint NOT NULL);"
                        " INSERT INTO anvil_meta VALUES ('schema_version', 99)"],
                       check=True, capture_output=True, timeout=30)
        r = harness.run_anvil(["--port", "0", "--backend", base + "/" + db])
        assert r.returncode != 0, r
        assert "schema is version 99" in r.stderr and "newer anvil" in r.stderr, r.stderr
    finally:
        subprocess.run(["psql", base + "/postgres", "-X", "-q", "-c",
                        "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db], capture_output=True, timeout=30)


def test_first_posts_to_a_new_queue_from_every_node_at_once_all_succeed():
    # each post makes the queue if it is missing; those racing each other must all land
    q = unique()
    answers = []
    lock = threading.Lock()

    def post(node, k):
        c = harness.Client(node.ready_host, node.port, timeout=15)
        st, body, _ = c.req("POST", path(q, "messages"), {"messages": [{"body": "m%d" % k}]})
        with lock:
            answers.append(st)

    threads = [threading.Thread(target=post, args=(nodes[k % len(nodes)], k)) for k in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert answers == [201] * 30, answers
    st, body, _ = nodes[0].req("GET", path(q))
    assert body["queue"]["size"] == 30 and body["queue"]["total_messages"] == 30, body


def test_nodes_carry_on_after_postgresql_restarts():
    # the cluster restarts under the nodes (a failover looks the same to them): the next calls
    # reconnect, and a long poll parked before the restart is still woken by a post after it
    cluster = os.environ.get("ANVIL_TEST_PG_DIR")
    assert cluster, "ANVIL_TEST_PG_DIR (scripts/pg.sh's directory) is not set"
    q = unique()
    st, body, _ = nodes[0].req("POST", path(q, "messages"), {"messages": [{"body": "before"}]})
    assert st == 201, (st, body)
    got = {}

    def wait():
        c = harness.Client(nodes[1].ready_host, nodes[1].port, timeout=30)
        c.req("POST", path(q, "reservations"), {"n": 1})  # takes "before"
        st, body, _ = c.req("POST", path(q, "reservations"), {"n": 1, "wait": 20})
        got["answer"] = (st, body)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.5)
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    pg_ctl = as_pg + ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", os.path.join(cluster, "primary"),
                      "-l", os.path.join(cluster, "primary.log"), "-w"]
    # down for a while, not just restarted: the nodes' first reconnects find nobody there
    for step in (["-m", "fast", "stop"], ["start"]):
        subprocess.run(pg_ctl + step, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        time.sleep(0.5 if step[-1] == "stop" else 0)
    answers = []
    for _ in range(20):  # a call caught by the restart may answer 503; clients retry those
        st, body, _ = nodes[2].req("POST", path(q, "messages"), {"messages": [{"body": "after"}]})
        answers.append(st)
        if st == 201:
            break
        time.sleep(0.1)
    assert answers[-1] == 201 and all(s in (201, 503) for s in answers), answers
    t.join(25)
    st, body = got["answer"]
    assert st == 200 and [m["body"] for m in body["messages"]] == ["after"], got
    for n in nodes:
        st, body, _ = n.req("GET", path(q))
        assert st == 200, (st, body)


# ---- push queues over several nodes ----

def push_queue(subs, **push):
    q = unique()
    push["subscribers"] = [{"name": name, "url": sub.url} for name, sub in subs]
    st, body, _ = nodes[0].req("PUT", path(q), {"queue": {"type": push.pop("type", "multicast"),
                                                          "push": push}})
    assert st == 200, (st, body)
    return q


def node_that_sent(headers):
    """The node whose pusher made a request: its port is in Iron-Subscriber-Message-Url."""
    url = headers["Iron-Subscriber-Message-Url"]
    [n] = [n for n in nodes if ":%d/" % n.port in url]
    return n


def relaunch(n):
    n._launch()


def kill(n):
    n.proc.kill()
    n.proc.wait(10)
    n.running = False


def test_three_nodes_push_each_message_once_to_each_subscriber():
    a, b = Subscriber(), Subscriber()
    q = push_queue([("a", a), ("b", b)])
    ids = []
    for i in range(30):
        st, body, _ = nodes[i % 3].req("POST", path(q, "messages"), {"messages": [{"body": "m%d" % i}]})
        assert st == 201, (st, body)
        ids += body["ids"]
    assert wait_for(lambda: a.count() >= 30 and b.count() >= 30, timeout=10)
    time.sleep(0.5)  # a second delivery, if any, would come now
    for sub in (a, b):
        got = sorted(h["Iron-Message-Id"] for _, h, _ in sub.got)
        assert got == sorted(ids), got  # each message once, none twice
    # deliveries came from more than one node: the claims were shared
    senders = {node_that_sent(h).port for _, h, _ in a.got + b.got}
    assert len(senders) >= 2, senders
    assert wait_for(lambda: all(nodes[0].req("GET", path(q, "messages", i))[0] == 404 for i in ids))
    a.close(), b.close()


def test_a_push_retry_survives_the_node_that_started_it():
    sub = Subscriber([500, 200])
    q = push_queue([("s", sub)], retries_delay=3)
    st, body, _ = nodes[0].req("POST", path(q, "messages"), {"messages": [
        {"body": "retry me", "push_headers": {"X-Trace": "t-9"}}]})
    assert st == 201, (st, body)
    [msg_id] = body["ids"]
    assert wait_for(lambda: sub.count() == 1)
    first = node_that_sent(sub.got[0][1])
    time.sleep(0.3)  # its answer (500) is written back: the retry is due in 3 s
    kill(first)
    try:
        assert wait_for(lambda: sub.count() == 2, timeout=8)
        t, headers, body = sub.got[1]
        assert t - sub.got[0][0] >= 2.8, t - sub.got[0][0]  # at its time, not at once
        assert node_that_sent(headers) is not first
        assert (headers["Iron-Message-Id"], headers["X-Trace"], body) == (msg_id, "t-9", b"retry me")
        other = [n for n in nodes if n is not first][0]
        assert wait_for(lambda: other.req("GET", path(q, "messages", msg_id))[0] == 404)
    finally:
        relaunch(first)
        sub.close()


def test_a_push_in_flight_when_its_node_dies_is_sent_again_by_another():
    sub = Subscriber([200], sleep=0.8)  # answers after the node is gone
    q = push_queue([("s", sub)], retries_delay=60)
    st, body, _ = nodes[1].req("POST", path(q, "messages"), {"messages": [{"body": "in flight"}]})
    assert st == 201, (st, body)
    [msg_id] = body["ids"]
    assert wait_for(lambda: sub.count() == 1)
    first = node_that_sent(sub.got[0][1])
    kill(first)
    try:
        # its claim runs out (push timeout 1 s + 2 s), then another node sends it again
        assert wait_for(lambda: sub.count() == 2, timeout=8)
        assert node_that_sent(sub.got[1][1]) is not first
        assert sub.got[1][1]["Iron-Message-Id"] == msg_id
        other = [n for n in nodes if n is not first][0]
        assert wait_for(lambda: other.req("GET", path(q, "messages", msg_id))[0] == 404)
    finally:
        relaunch(first)
        sub.close()


def test_a_202_acknowledged_on_another_node_ends_the_delivery():
    sub = Subscriber([202])
    q = push_queue([("s", sub)], retries_delay=60)
    st, body, _ = nodes[0].req("POST", path(q, "messages"), {"messages": [{"body": "ack"}]})
    [msg_id] = body["ids"]
    assert wait_for(lambda: sub.count() == 1)
    rid = sub.got[0][1]["Iron-Reservation-Id"]
    sender = node_that_sent(sub.got[0][1])
    other = [n for n in nodes if n is not sender][0]
    st, body, _ = other.req("DELETE", path(q, "messages", msg_id),
                            {"reservation_id": rid, "subscriber_name": "s"})
    assert (st, body) == (200, {"msg": "Deleted"}), (st, body)
    assert wait_for(lambda: sender.req("GET", path(q, "messages", msg_id))[0] == 404)
    time.sleep(0.3)
    assert sub.count() == 1  # not sent again
    sub.close()


def test_queue_sizes_stay_exact_whichever_way_messages_leave():
    """Sizes are counted as messages come and go (no COUNT(*)): every path that removes
    messages must take them off, on whichever node it runs."""
    q, dlq = unique(), unique()
    st, _, _ = nodes[0].req("PUT", path(q), {"queue": {"dead_letter": {
        "queue_name": dlq, "max_reservations": 1}}})
    assert st == 200

    def size(name):
        st, body, _ = nodes[1].req("GET", path(name))
        return (body["queue"]["size"], body["queue"]["total_messages"]) if st == 200 else None

    msgs = [{"body": "m%d" % i} for i in range(20)]
    st, body, _ = nodes[0].req("POST", path(q, "messages"), {"messages": msgs})
    ids = body["ids"]
    assert size(q) == (20, 20)
    assert nodes[1].req("DELETE", path(q, "messages", ids[0]), {})[0] == 200  # one by id
    assert size(q) == (19, 20)
    st, body, _ = nodes[2].req("DELETE", path(q, "messages"),
                               {"ids": [{"id": ids[1]}, {"id": ids[2]}]})  # a batch
    assert st == 200, (st, body)
    assert size(q) == (17, 20)
    st, body, _ = nodes[0].req("POST", path(q, "reservations"), {"n": 2, "delete": True})
    assert len(body["messages"]) == 2  # reserve with delete
    assert size(q) == (15, 20)
    st, body, _ = nodes[1].req("POST", path(q, "reservations"), {"n": 1})
    [m] = body["messages"]
    assert nodes[2].req("POST", path(q, "messages", m["id"], "release"),
                        {"reservation_id": m["reservation_id"]})[0] == 200
    st, body, _ = nodes[0].req("POST", path(q, "reservations"), {"n": 1})  # moves it to dlq
    assert size(dlq) == (1, 1) and size(q)[0] == 14, (size(dlq), size(q))
    assert nodes[1].req("DELETE", path(q, "messages"), {})[0] == 200  # clear
    assert size(q) == (0, 20) and size(dlq) == (1, 1)
    assert nodes[2].req("DELETE", path(dlq))[0] == 200  # the queue and its rows go
    assert size(dlq) is None
    st, body, _ = nodes[0].req("POST", path(dlq, "messages"), {"messages": [{"body": "new"}]})
    assert size(dlq) == (1, 1)  # made again from nothing: nothing of the old one counts


def test_the_loop_keeps_answering_while_connections_are_made_again():
    """Reconnecting blocks in libpq (up to connect_timeout per host, which is also how its
    multi-host failover works), so it runs on worker threads: while PostgreSQL is away and the
    second host of the URL swallows connections without a word, the node answers at once."""
    cluster = os.environ.get("ANVIL_TEST_PG_DIR")
    assert cluster, "ANVIL_TEST_PG_DIR (scripts/pg.sh's directory) is not set"
    import socket
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)  # the kernel completes the handshakes; nobody ever answers
    real = re.search(r"@(127\.0\.0\.1:\d+)/", nodes[0].backend).group(1)
    url = nodes[0].backend.replace(real, "%s,127.0.0.1:%d" % (real, hole.getsockname()[1]), 1)
    url += ("&" if "?" in url else "?") + "connect_timeout=2"
    s = Server(bare=True)
    s.args = ["--port", "0", "--data-dir", os.path.join(s.temp_dir, "data"), "--backend", url]
    s._launch()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    pg_ctl = as_pg + ["/usr/lib/postgresql/15/bin/pg_ctl", "-D", os.path.join(cluster, "primary"),
                      "-l", os.path.join(cluster, "primary.log"), "-w"]
    q = unique()
    try:
        assert s.req("POST", path(q, "messages"), {"messages": [{"body": "x"}]})[0] == 201
        subprocess.run(pg_ctl + ["-m", "fast", "stop"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        st, _, _ = s.req("POST", path(q, "messages"), {"messages": [{"body": "y"}]})
        assert st == 503, st  # the connection found the server gone: reconnects begin
        slowest, errors = 0.0, []
        deadline = time.monotonic() + 2.5  # longer than one connect_timeout on the hole
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            st, body, _ = s.req("GET", "/health")
            slowest = max(slowest, time.monotonic() - t0)
            st2, _, _ = s.req("POST", path(q, "messages"), {"messages": [{"body": "z"}]})
            errors.append(st2)
            time.sleep(0.05)
        assert slowest < 0.3, "the loop stalled %.2f s" % slowest
        assert set(errors) <= {503}, errors  # calls fail at once while nobody can take them
    finally:
        subprocess.run(pg_ctl + ["start"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
    for _ in range(100):  # and once PostgreSQL is back, the node is too
        st, _, _ = s.req("POST", path(q, "messages"), {"messages": [{"body": "back"}]})
        if st == 201:
            break
        time.sleep(0.1)
    assert st == 201, st
    s.stop()
    hole.close()


def first_schema_sql():
    """Schema 1 as engine/pg.c's first migration writes it (read from the source, so this test
    follows the code rather than a copy)."""
    src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "engine",
                            "pg.c")).read()
    body = src[src.index("migrations[PG_SCHEMA_VERSION] = {"):]
    first = body[body.index("{") + 1:body.index('",\n') + 1]
    first = re.sub(r"/\*.*?\*/", "", first, flags=re.S)
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', first))


def test_a_database_made_by_the_first_schema_is_migrated_with_its_messages_counted():
    db = "anvil_upgrade_%d" % os.getpid()
    admin = harness.TEST_PG.rstrip("/") + "/postgres"
    url = harness.TEST_PG.rstrip("/") + "/" + db

    def psql(target, sql):
        return subprocess.run(["psql", target, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-c", sql], check=True, capture_output=True, text=True).stdout.strip()

    psql(admin, "CREATE DATABASE " + db)
    s = None
    try:
        psql(url, "CREATE TABLE anvil_meta (key text PRIMARY KEY, value bigint NOT NULL);"
                  "INSERT INTO anvil_meta VALUES ('schema_version', 1);" + first_schema_sql())
        # what an anvil of schema 1 left: 5 messages (1 reserved, 1 delayed), 7 posted in all
        psql(url, "INSERT INTO anvil_queues (project, name, qid, total_messages)"
                  " VALUES ('p', 'old', 'aaaaaaaaaaaaaaaaaaaaaaaa', 3);"
                  "INSERT INTO anvil_queue_totals VALUES (1, 4, 4);"
                  "INSERT INTO anvil_messages (id, queue, body, visible_at, expires_at, reservation)"
                  " SELECT nextval('anvil_message_ids'), 1, convert_to('m' || g, 'UTF8'),"
                  "  CASE g WHEN 4 THEN now() + interval '1 hour' WHEN 5 THEN now() + interval '2 hours'"
                  "  ELSE now() - interval '1 minute' END, now() + interval '1 day',"
                  "  CASE g WHEN 5 THEN gen_random_uuid() END FROM generate_series(1, 5) g")
        s = Server(bare=True)
        s.args = ["--port", "0", "--data-dir", os.path.join(s.temp_dir, "data"), "--backend", url]
        s._launch()
        assert psql(url, "SELECT value FROM anvil_meta WHERE key = 'schema_version'") == "3"
        st, body, _ = s.req("GET", path("old"))
        assert st == 200 and (body["queue"]["size"], body["queue"]["total_messages"]) == (5, 7), body
        st, body, _ = s.req("POST", path("old", "reservations"), {"n": 10})
        assert [m["body"] for m in body["messages"]] == ["m1", "m2", "m3"], body
        for m in body["messages"]:
            assert s.req("DELETE", path("old", "messages", m["id"]),
                         {"reservation_id": m["reservation_id"]})[0] == 200
        st, body, _ = s.req("GET", path("old"))
        assert body["queue"]["size"] == 2, body  # the delayed and the reserved one
        st, body, _ = s.req("POST", path("old", "messages"), {"messages": [{"body": "new"}]})
        assert st == 201
        st, body, _ = s.req("GET", path("old"))
        assert (body["queue"]["size"], body["queue"]["total_messages"]) == (3, 8), body
    finally:
        if s:
            s.stop()
        psql(admin, "DROP DATABASE " + db)


def test_posts_that_wait_for_a_connection_share_one_statement_and_each_gets_its_own_ids():
    """Group commit: with more posts at once than the node has connections (16), those that
    wait go as one statement; every call still gets its own ids for its own messages."""
    node = nodes[0]
    q = unique()
    node.req("PUT", path(q), {"queue": {}})
    grouped = 0
    for round_no in range(5):
        barrier = threading.Barrier(48)
        got = {}

        def post(k):
            c = harness.Client(node.ready_host, node.port, timeout=15)
            bodies = ["r%d-c%d-a" % (round_no, k), "r%d-c%d-b" % (round_no, k)]
            barrier.wait()
            st, body, _ = c.req("POST", path(q, "messages"),
                                {"messages": [{"body": b} for b in bodies]})
            got[k] = (st, body, bodies)

        before = node.req("GET", "/stats")[1]["writer"]["records_skipped"]
        threads = [threading.Thread(target=post, args=(k,)) for k in range(48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        ids = []
        for k, (st, body, bodies) in got.items():
            assert st == 201 and len(body["ids"]) == 2, (st, body)
            for mid, text in zip(body["ids"], bodies):  # its own ids, for its own messages
                st, m, _ = node.req("GET", path(q, "messages", mid))
                assert st == 200 and m["message"]["body"] == text, (mid, text, m)
            ids += body["ids"]
        assert len(got) == 48 and len(set(ids)) == 96
        grouped += node.req("GET", "/stats")[1]["writer"]["records_skipped"] - before
        if grouped:
            break
    assert grouped > 0, "no post ever shared a statement"
    st, body, _ = node.req("GET", path(q))
    assert body["queue"]["size"] == 96 * (round_no + 1), body
