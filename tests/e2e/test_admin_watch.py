"""The test kit's seeing everything: the full peek (every message in every state with its
deadlines, changing nothing) and the event stream (Server-Sent Events of each operation,
filters, history as JSON, listeners cleaned up when clients go, a prompt stop with a stream
open). Times are checked exactly on a frozen clock."""
import json
import re
import signal
import socket
import time

import harness
from harness import Server, unique

BACKENDS = ("sqlite",)

srv = None
P = None
RID = re.compile(r"[0-9a-f]{32}")


def setup_module():
    global srv, P
    srv = Server.start(["--test-mode"])
    P = srv.project("p")


def teardown_module():
    srv.stop()


def admin(method, path, body=None, server=None):
    return (server or srv).req(method, "/admin" + path, body)


def clock(what, body=None):
    st, out, _ = admin("POST", "/clock/" + what, body)
    assert st == 200, (st, out)
    return out


def peek_all(q, query=""):
    st, body, _ = admin("GET", "/projects/p/queues/%s/messages%s" % (harness.quote(q), query))
    assert st == 200, (st, body)
    return body


class Events:
    """A raw-socket Server-Sent Events client: reads the chunked stream and yields events."""

    def __init__(self, server, query="", timeout=5.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:  # before connecting: a fixed window, no autotuning
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.sendall(("GET /admin/events%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Accept: text/event-stream\r\n\r\n" % query).encode())
        self.raw = b""
        self.text = ""
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        if self.status == 200:
            assert self.headers["content-type"] == "text/event-stream", self.headers
            assert self.headers.get("transfer-encoding") == "chunked", self.headers
            block = self._block()  # the greeting: the listener is registered once it is here
            assert block.startswith(": anvil events"), block

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server ended the stream")
        self.raw += data

    def _dechunk(self):
        while b"\r\n" in self.raw:
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line, 16)
            if size == 0:
                raise EOFError("the server ended the stream")
            if len(rest) < size + 2:
                return
            self.text += rest[:size].decode()
            self.raw = rest[size + 2:]

    def _block(self):
        while "\n\n" not in self.text:
            self._dechunk()
            if "\n\n" not in self.text:
                self._recv()
        block, self.text = self.text.split("\n\n", 1)
        return block

    def next(self):
        """The next event as (type, data dict, id), skipping comments."""
        while True:
            fields = {}
            for line in self._block().split("\n"):
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                fields[name] = value
            if "data" in fields:
                return fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")

    def expect(self, *types):
        got = [self.next() for _ in types]
        assert [g[0] for g in got] == list(types), got
        return [g[1] for g in got]

    def quiet(self, seconds=0.3):
        """True when nothing but comments arrives for a while."""
        self.sock.settimeout(seconds)
        try:
            self.next()
            return False
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(5.0)

    def close(self):
        self.sock.close()


# ---- the full peek ----

def test_full_peek_shows_ready_delayed_and_reserved_with_deadlines():
    q = unique()
    now = clock("freeze")["now_ms"]
    try:
        held_id = P.post(q, "held")[0]
        held = P.reserve_one(q, timeout=60)
        delayed_id = P.post(q, "later", delay=30)[0]
        ready_id = P.post(q, "ready")[0]
        view = peek_all(q)
        info = view["queue"]
        assert (info["size"], info["ready"], info["delayed"], info["reserved"]) == (3, 1, 1, 1)
        assert info["next_visible_at_ms"] == now + 30000
        assert info["now_ms"] == now
        msgs = view["messages"]
        assert [m["id"] for m in msgs] == [ready_id, delayed_id, held_id]  # reserve order
        assert [m["state"] for m in msgs] == ["ready", "delayed", "reserved"]
        assert msgs[0]["body"] == "ready" and msgs[0]["reserved_count"] == 0
        assert "reservation_id" not in msgs[0] and "visible_at_ms" not in msgs[0]
        assert msgs[1]["visible_at_ms"] == now + 30000
        assert msgs[2]["reservation_id"] == held["reservation_id"]
        assert msgs[2]["reserved_until_ms"] == now + 60000
        assert msgs[2]["reserved_count"] == 1
        for m in msgs:
            assert m["created_at_ms"] == now
            assert m["expires_at_ms"] == now + 604800 * 1000
    finally:
        clock("unfreeze")


def test_full_peek_changes_nothing():
    q = unique()
    P.post(q, "a", "b")
    for _ in range(3):
        peek_all(q)
    assert P.info(q)["size"] == 2
    first = P.reserve_one(q)
    assert first["body"] == "a" and first["reserved_count"] == 1
    again = peek_all(q)["messages"]
    assert [(m["body"], m["state"], m["reserved_count"]) for m in again] == \
        [("b", "ready", 0), ("a", "reserved", 1)]


def test_full_peek_filters_by_state_and_limits_n():
    q = unique()
    P.post(q, "r1", "r2")
    P.post(q, "d", delay=60)
    P.reserve_one(q)
    assert [m["body"] for m in peek_all(q, "?state=delayed")["messages"]] == ["d"]
    assert [m["body"] for m in peek_all(q, "?state=ready,reserved")["messages"]] == ["r2", "r1"]
    assert [m["body"] for m in peek_all(q, "?n=1")["messages"]] == ["r2"]
    assert len(peek_all(q, "?n=1000")["messages"]) == 3


def test_full_peek_refuses_bad_input_and_unknown_queues():
    q = unique()
    P.post(q, "x")
    for query in ("?n=0", "?n=1001", "?n=x", "?state=gone", "?state=ready,"):
        st, body, _ = admin("GET", "/projects/p/queues/%s/messages%s" % (q, query))
        assert st == 400, (query, st, body)
    st, body, _ = admin("GET", "/projects/p/queues/%s/messages" % unique("none"))
    assert st == 404 and body["msg"] == "Queue not found", body
    st, _, _ = admin("POST", "/projects/p/queues/%s/messages" % q)
    assert st == 405


# ---- the event stream ----

def test_event_stream_reports_each_operation_in_order_with_its_fields():
    q, dlq = unique(), unique("dlq")
    P.create(q, dead_letter={"queue_name": dlq, "max_reservations": 3})
    ev = Events(srv, "?project=p&queue=" + q)
    now = clock("freeze")["now_ms"]
    try:
        mid = P.post(q, "m")[0]
        m = P.reserve_one(q, timeout=60)
        st, touched, _ = P.req("POST", P.path(q, "messages", mid, "touch"),
                               {"reservation_id": m["reservation_id"], "timeout": 120})
        assert st == 200, touched
        P.release(q, mid, touched["reservation_id"], delay=5)
        post, reserve, touch, release = ev.expect("post", "reserve", "touch", "release")
        assert post == dict(post, type="post", project="p", queue=q, id=mid, at_ms=now, delay=0,
                            reserved_count=0)
        assert reserve["reservation_id"] == m["reservation_id"]
        assert reserve["reserved_count"] == 1 and reserve["reserved_until_ms"] == now + 60000
        assert touch["reservation_id"] == touched["reservation_id"]
        assert touch["reserved_count"] == 2 and touch["reserved_until_ms"] == now + 120000
        assert release["reservation_id"] == touched["reservation_id"]
        assert release["delay"] == 5 and release["visible_at_ms"] == now + 5000
        assert post["seq"] < reserve["seq"] < touch["seq"] < release["seq"]

        clock("advance", {"seconds": 61})  # the delay ends; nothing reserved yet
        (visible,) = ev.expect("visible")
        assert visible["at_ms"] == now + 5000 and visible["id"] == mid
        m = P.reserve_one(q, timeout=30)
        clock("advance", {"seconds": 61})
        reserve, timeout = ev.expect("reserve", "timeout")
        assert timeout["at_ms"] == now + 61000 + 30000  # at its own deadline, not the jump's end
        assert timeout["reservation_id"] == m["reservation_id"] and timeout["reserved_count"] == 3

        assert P.reserve(q, n=1) == []  # reserved 3 times (a touch counts), max 3: dead-lettered
        (dead,) = ev.expect("dead_letter")
        assert dead["id"] == mid and dead["queue"] == q and dead["to_queue"] == dlq
        assert ev.quiet()  # the queue filter: what happens on dlq is not ours

        other = P.post(q, "other")[0]
        m = P.reserve_one(q)
        st, _, _ = P.req("DELETE", P.path(q, "messages", other), {"reservation_id": m["reservation_id"]})
        assert st == 200
        _, _, delete = ev.expect("post", "reserve", "delete")
        assert delete["id"] == other
    finally:
        clock("unfreeze")
        ev.close()


def test_event_stream_filters_by_project_queue_and_type():
    q1, q2 = unique(), unique()
    by_type = Events(srv, "?types=reserve,delete")
    by_queue = Events(srv, "?queue=" + q2)
    other_project = Events(srv, "?project=elsewhere")
    try:
        P.post(q1, "one")
        P.post(q2, "two")
        m = P.reserve_one(q1)
        st, _, _ = P.req("DELETE", P.path(q1, "messages", m["id"]), {"reservation_id": m["reservation_id"]})
        assert st == 200
        reserve, delete = by_type.expect("reserve", "delete")
        assert reserve["queue"] == q1 and delete["queue"] == q1
        (post,) = by_queue.expect("post")
        assert post["queue"] == q2
        assert by_type.quiet() and by_queue.quiet() and other_project.quiet()
    finally:
        for e in (by_type, by_queue, other_project):
            e.close()
    st, body, _ = admin("GET", "/events?types=Post!")
    assert st == 400, body


def test_event_stream_replays_history_after_a_seq():
    q = unique()
    ev = Events(srv, "?queue=" + q)
    P.post(q, "a")
    P.post(q, "b")
    first, second = ev.expect("post", "post")
    ev.close()
    again = Events(srv, "?queue=%s&after=%d" % (q, first["seq"]))
    try:
        (replayed,) = again.expect("post")
        assert replayed == second
    finally:
        again.close()


def test_events_as_json_for_clients_without_sse():
    st, body, _ = admin("GET", "/events?format=json")  # arms the history
    assert st == 200 and body["recording"] is True, body
    q = unique()
    ids = P.post(q, "a", "b")
    st, body, _ = admin("GET", "/events?format=json&queue=%s&after=%d" % (q, body["last_seq"]))
    assert st == 200, body
    assert [(e["type"], e["id"]) for e in body["events"]] == [("post", ids[0]), ("post", ids[1])]
    st, later, _ = admin("GET", "/events?format=json&queue=%s&after=%d" % (q, body["last_seq"]))
    assert later["events"] == []


def test_a_listener_too_far_behind_loses_events_and_is_told_how_many():
    with Server.start(["--test-mode", "--durability", "memory"]) as s:
        p, q = s.project("p"), unique()
        ev = Events(s, "?queue=" + q, rcvbuf=65536)
        batch = {"messages": [{"body": "x"}] * 100}
        for _ in range(1000):  # 23 MB of events: more than the buffer and the sockets hold
            st, _, _ = p.req("POST", p.path(q, "messages"), batch)
            assert st == 201
        received = 0
        while not ev.quiet(1.0):  # the 1 MiB the server kept, and what the sockets held
            received += 1
        assert received < 100000, received
        last = p.post(q, "last")[0]
        dropped, post = ev.expect("dropped", "post")
        assert dropped["count"] == 100000 - received, (dropped, received)
        assert post["id"] == last
        ev.close()
        assert s.healthy()


def test_listeners_of_clients_that_left_are_cleaned_up_and_limited():
    q = unique()
    streams = [Events(srv) for _ in range(64)]
    extra = Events(srv)
    assert extra.status == 429, extra.status
    extra.close()
    for e in streams:
        e.close()
    P.post(q, "after the clients left")  # sending to a closed client must not hurt
    deadline = time.time() + 5
    while True:  # the server notices hang-ups on its next loop turn
        e = Events(srv)
        if e.status == 200:
            break
        e.close()
        assert time.time() < deadline, "listeners of closed clients were not freed"
        time.sleep(0.05)
    more = [e] + [Events(srv) for _ in range(63)]
    assert all(x.status == 200 for x in more)
    for x in more:
        x.close()
    assert srv.healthy()


def test_server_stops_promptly_on_sigterm_with_a_stream_open():
    with Server.start(["--test-mode"]) as s:
        ev = Events(s)
        s.project("p").post(unique(), "x")
        assert ev.next()[0] == "post"
        started = time.time()
        s.signal(signal.SIGTERM)
        assert s.wait_exit(5) == 0
        assert time.time() - started < 3, "a stream held up the shutdown"
        try:
            while True:
                ev.next()
        except (EOFError, ConnectionResetError):
            pass
        ev.close()
