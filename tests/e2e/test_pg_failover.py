"""Failover under load (the PostgreSQL back end, docs/scale-out.md): a PostgreSQL primary with
a synchronous standby (scripts/pg.sh, a cluster of this test's own on free loopback ports) and
three anvil nodes on its multi-host URL. Six clients, two per node, post messages with unique
bodies, reserve and delete them, retrying 503s and connection errors as the IronMQ clients do.
After ~1 s one node is SIGKILLed (its clients move to another node); after ~1 s more the
primary is killed (pg_ctl -m immediate) and the standby promoted; the clients go on for ~2 s.

Then the checker proves, by GET by id on the surviving nodes (which finds reserved messages
too) and with psql on the new primary:
  - 0 lost: every post answered 201 is still there unless a delete of it was answered 200 or
    has an unknown outcome (503 or a dropped connection: it may have committed);
  - 0 resurrected: every delete answered 200 stays deleted (404), and no reserve hands out a
    message whose delete was acknowledged; no message is handed out by two reserves;
  - every message in the database is one a client tried to post;
  - the nodes carried on: posts were acknowledged after the promotion, the surviving nodes
    answered no error before the primary was killed, a call caught by the failover answered
    503 (anything else only to a retry: a delete whose first try committed finds 404), and the
    errors (503s and others counted apart) stopped within a bounded window.
It prints `failover: N posts acked, M deletes acked, 0 lost, 0 resurrected, error window X ms
(K x 503, J other)`. Runs when ANVIL_TEST_PG is set (run.py runs it only then; the shared
cluster there is not touched); @slow (~10 s): scripts/test.sh runs it by name.
"""
import collections
import http.client
import os
import shutil
import subprocess
import tempfile
import threading
import time

import harness
from harness import Server, free_port, slow, unique

BACKENDS = ("postgres",)
PG_SH = os.path.join(harness.REPO, "scripts", "pg.sh")
PROJECT = "p"
CLIENTS_PER_NODE = 2
RESERVATION_TIMEOUT_S = 30   # longer than the run: nothing is handed out twice legitimately
RETRY_SLEEP_S = 0.05         # the clients' pause before retrying a 503 or a connection error
CALL_DEADLINE_S = 15.0       # a call that still fails after this long gives up
HTTP_TIMEOUT_S = 5.0
ERROR_WINDOW_MAX_MS = 10000


def pg_sh(*args, timeout=120):
    r = subprocess.run([PG_SH] + list(args), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "scripts/pg.sh %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                                 r.stdout, r.stderr)
    return r.stdout.strip()


def psql(url, sql):
    r = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-F", "\t", "-c", sql],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, "psql: %s" % r.stderr
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def path(q, *rest):
    return "/".join(["/3/projects/%s/queues" % PROJECT, q] + [str(r) for r in rest])


def start_node(url):
    s = Server(bare=True)
    s.args = ["--port", "0", "--data-dir", os.path.join(s.temp_dir, "data"), "--backend", url]
    s._launch()
    return s


class Workload:
    """What the clients did and what they were told; every record has its time (monotonic)."""

    def __init__(self, nodes, q):
        self.nodes = nodes
        self.q = q
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.attempted = set()      # every body a client tried to post
        self.posts = {}             # id -> (body, time) of posts answered 201
        self.deleted = {}           # id -> time of deletes answered 200
        self.delete_unknown = set()  # ids whose delete may have committed (503, dropped, gave up)
        self.delete_refused = {}    # id -> status of deletes answered 4xx at the first try
        self.reserved = {}          # id -> times handed out by a reserve answered 200
        self.after_delete = []      # (id, time): handed out after its delete was acknowledged
        self.errors = []            # (time, node index, op, what, retry: an earlier try failed)
        self.longest = (0.0, None)  # (ms, op): the longest call, its retries included
        self.thread_failures = []

    def error(self, node, op, what, retry):
        with self.lock:
            self.errors.append((time.monotonic(), node, op, what, retry))

    def call(self, me, op, method, p, body):
        """One call with the clients' retries: (status, body, unknown). status None: gave up
        (the run ended or the deadline passed). unknown: an earlier try (503, dropped
        connection) may have done it already."""
        unknown = False
        began = time.monotonic()
        deadline = began + CALL_DEADLINE_S
        while True:
            node = me["node"]
            c = me["clients"][node]
            reused, connects = c.conn is not None, c.connects
            try:
                st, b, _ = c.req(method, p, body=body)
            except (OSError, http.client.HTTPException) as e:
                self.error(node, op, type(e).__name__, unknown)
                unknown = True
                me["node"] = (node + 1) % len(self.nodes)  # as a load balancer would
            else:
                if reused and c.connects > connects:
                    unknown = True  # harness.Client sent it again on a new connection
                if st != 503:
                    if st // 100 != 2:
                        self.error(node, op, str(st), unknown)
                    took = (time.monotonic() - began) * 1000
                    with self.lock:
                        self.longest = max(self.longest, (took, op))
                    return st, b, unknown
                self.error(node, op, "503", unknown)
                unknown = True
            if self.stop.is_set() or time.monotonic() > deadline:
                return None, None, unknown
            time.sleep(RETRY_SLEEP_S)

    def client(self, index, first_node):
        me = {"node": first_node,
              "clients": [harness.Client("127.0.0.1", n.port, timeout=HTTP_TIMEOUT_S) for n in self.nodes]}
        try:
            seq = 0
            while not self.stop.is_set():
                seq += 1
                text = "c%d-%d" % (index, seq)
                with self.lock:
                    self.attempted.add(text)
                st, b, _ = self.call(me, "post", "POST", path(self.q, "messages"),
                                     {"messages": [{"body": text}]})
                if st == 201:
                    (mid,) = b["ids"]
                    with self.lock:
                        self.posts[mid] = (text, time.monotonic())
                st, b, _ = self.call(me, "reserve", "POST", path(self.q, "reservations"),
                                     {"n": 1, "timeout": RESERVATION_TIMEOUT_S})
                if st != 200:
                    continue
                for m in b["messages"]:
                    with self.lock:
                        self.reserved[m["id"]] = self.reserved.get(m["id"], 0) + 1
                        if m["id"] in self.deleted:
                            self.after_delete.append((m["id"], time.monotonic()))
                    st, _, unknown = self.call(me, "delete", "DELETE", path(self.q, "messages", m["id"]),
                                               {"reservation_id": m["reservation_id"]})
                    with self.lock:
                        if st == 200:
                            self.deleted[m["id"]] = time.monotonic()
                        elif st is None or unknown:
                            self.delete_unknown.add(m["id"])
                        else:
                            self.delete_refused[m["id"]] = st
        except Exception as e:  # noqa: BLE001 — e.g. an answer that is not JSON: the test fails
            with self.lock:
                self.thread_failures.append("client %d: %r" % (index, e))
        finally:
            for c in me["clients"]:
                c.close()


def check_messages(nodes, q, ids):
    """GET by id for every id, spread over the nodes: id -> body, or None for 404."""
    found = {}
    failures = []
    lock = threading.Lock()
    chunks = [ids[k::2 * len(nodes)] for k in range(2 * len(nodes))]

    def run(node, chunk):
        c = harness.Client("127.0.0.1", node.port, timeout=HTTP_TIMEOUT_S)
        try:
            for mid in chunk:
                for _ in range(20):
                    st, b, _ = c.req("GET", path(q, "messages", mid))
                    if st != 503:
                        break
                    time.sleep(0.1)
                with lock:
                    if st == 200:
                        found[mid] = b["message"]["body"]
                    elif st == 404:
                        found[mid] = None
                    else:
                        failures.append((mid, st, b))
        except Exception as e:  # noqa: BLE001
            with lock:
                failures.append(("GET", repr(e)))
        finally:
            c.close()

    threads = [threading.Thread(target=run, args=(nodes[k % len(nodes)], chunk))
               for k, chunk in enumerate(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures[:10]
    assert len(found) == len(ids), "the checker got %d answers for %d ids" % (len(found), len(ids))
    return found


@slow
def test_primary_failover_under_load_loses_no_acknowledged_post_and_resurrects_no_delete():
    root = tempfile.mkdtemp(prefix="anvil-failover-")
    os.chmod(root, 0o755)  # as root the cluster runs as postgres, which must reach its directory
    cluster = os.path.join(root, "cluster")
    primary_port, standby_port = free_port(), free_port()
    while standby_port == primary_port:
        standby_port = free_port()
    nodes = []
    try:
        pg_sh("start", cluster, str(primary_port), str(standby_port))
        url = pg_sh("url", cluster)
        assert "target_session_attrs=read-write" in url, url
        nodes.extend(start_node(url) for _ in range(3))
        q = unique("failover")
        st, body, _ = nodes[0].req("PUT", path(q), {"queue": {"message_timeout": RESERVATION_TIMEOUT_S}})
        assert st == 200, (st, body)

        w = Workload(nodes, q)
        threads = [threading.Thread(target=w.client, args=(k, k // CLIENTS_PER_NODE))
                   for k in range(CLIENTS_PER_NODE * len(nodes))]
        began = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(1.0)
        victim = 2
        nodes[victim].kill()  # SIGKILL
        t_node_killed = time.monotonic()
        time.sleep(1.0)
        t_kill = time.monotonic()
        pg_sh("kill-primary", cluster)
        t_primary_down = time.monotonic()
        pg_sh("promote", cluster)
        t_promoted = time.monotonic()
        time.sleep(2.0)
        w.stop.set()
        t_stop = time.monotonic()
        for t in threads:
            t.join(CALL_DEADLINE_S + 2 * HTTP_TIMEOUT_S)
        assert not any(t.is_alive() for t in threads), "a client is still stuck in a call"
        assert not w.thread_failures, w.thread_failures

        # the database the nodes now use is the promoted standby
        rows = psql(url, "SELECT inet_server_port(), pg_is_in_recovery()")
        assert rows == [[str(standby_port), "f"]], rows

        survivors = [n for i, n in enumerate(nodes) if i != victim]
        acked = sorted(w.posts)
        to_check = sorted(set(acked) | set(w.deleted))
        found = check_messages(survivors, q, to_check)
        lost = [mid for mid in acked if found[mid] is None
                and mid not in w.deleted and mid not in w.delete_unknown]
        wrong = [(mid, found[mid], w.posts[mid][0]) for mid in acked
                 if found[mid] is not None and found[mid] != w.posts[mid][0]]
        resurrected = sorted(set(mid for mid in w.deleted if found[mid] is not None)
                             | set(mid for mid, _ in w.after_delete))
        twice = [mid for mid, n in w.reserved.items() if n > 1]
        # every message in the database is one a client tried to post
        left = psql(url, "SELECT m.id, convert_from(m.body, 'UTF8') FROM anvil_messages m"
                         " JOIN anvil_queues q ON q.id = m.queue"
                         " WHERE q.project = '%s' AND q.name = '%s'" % (PROJECT, q))
        strangers = [r for r in left if r[1] not in w.attempted]

        # the errors: those of the killed node apart, the others around the primary's death
        node_kill_errors = [e for e in w.errors if e[1] == victim]
        live_errors = [e for e in w.errors if e[1] != victim]
        # (a retry of a call the killed node may have done, e.g. a delete answered 404, is no error
        # of the surviving node)
        early = [e for e in live_errors if e[0] < t_kill and not e[4]]
        window = [e for e in live_errors if e[0] >= t_kill]
        n503 = sum(1 for e in window if e[3] == "503")
        window_ms = (window[-1][0] - window[0][0]) * 1000 if window else 0.0
        last_after_kill_ms = (window[-1][0] - t_kill) * 1000 if window else 0.0
        posts_after = sum(1 for _, at in w.posts.values() if at > t_promoted)
        summary = ("failover: %d posts acked, %d deletes acked, %d lost, %d resurrected, "
                   "error window %.0f ms (%d x 503, %d other)"
                   % (len(acked), len(w.deleted), len(lost), len(resurrected), window_ms, n503,
                      len(window) - n503))
        print(summary)
        print("  primary killed in %.0f ms, standby promoted in %.0f ms, last error %.0f ms after the"
              " kill; %d posts acked after the promotion; %d deletes of unknown outcome; the SIGKILLed"
              " node (at %.1f s): %d connection errors; longest call %.0f ms (%s, retries included); run %.1f s"
              % ((t_primary_down - t_kill) * 1000, (t_promoted - t_primary_down) * 1000,
                 last_after_kill_ms, posts_after, len(w.delete_unknown), t_node_killed - began,
                 len(node_kill_errors), w.longest[0], w.longest[1], t_stop - began))
        kinds = collections.Counter("%s %s%s" % (e[2], e[3], " (a retry)" if e[4] else "") for e in window)
        print("  errors around the failover: %s" % ", ".join("%s x%d" % kv for kv in sorted(kinds.items())),
              flush=True)

        assert not lost, "acknowledged posts lost: %s" % lost[:20]
        assert not wrong, "messages with another body than posted: %s" % wrong[:20]
        assert not resurrected, "acknowledged deletes came back: %s" % resurrected[:20]
        assert not twice, "messages handed out by two reserves: %s" % twice[:20]
        assert not strangers, "messages nobody posted: %s" % strangers[:20]
        assert not w.delete_refused, "deletes refused at their first try: %s" % w.delete_refused
        assert not early, "errors on surviving nodes before the primary was killed: %s" % early[:10]
        # a call caught by the failover answers 503; anything else only as the answer to a retry
        # (a delete whose first try did commit finds its message gone: 404)
        odd = [e for e in window if e[3] != "503" and not e[4]]
        assert not odd, "calls caught by the failover answered other than 503: %s" % odd[:10]
        assert posts_after > 0, "no post was acknowledged after the promotion"
        assert window_ms < ERROR_WINDOW_MAX_MS, summary
        assert not window or window[-1][0] < t_stop - 0.5, \
            "errors went on until the clients stopped: %s" % window[-10:]
        for n in survivors:
            n.stop()  # SIGTERM: exit status 0
    finally:
        for n in nodes:
            n.kill()
        subprocess.run([PG_SH, "stop", cluster], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
