"""HTTP: connections are kept alive across many requests, many clients at once are all
served, and every answer is JSON with Content-Type application/json."""
import json
import socket
import threading
import time

from harness import Server, unique

srv = None
P = None


def setup_module():
    global srv, P
    srv = Server.start()
    P = srv.project("p")


def teardown_module():
    srv.stop()


def test_many_requests_on_one_kept_alive_connection():
    q = unique()
    c = srv.client()
    try:
        for i in range(200):
            st, body, hdrs = P.req("POST", P.path(q, "messages"), {"messages": [{"body": str(i)}]},
                                   client=c)
            assert st == 201, (i, st, body)
            assert "close" not in hdrs.get("connection", "").lower(), hdrs
            st, body, _ = P.req("GET", P.path(q), client=c)
            assert st == 200
        # errors do not cost the connection either
        for _ in range(20):
            assert P.req("GET", P.path(unique()), client=c)[0] == 404
            assert P.req("POST", P.path(q, "reservations"), raw="{bad", client=c)[0] == 400
        assert c.connects == 1, "the client had to reconnect %d times" % (c.connects - 1)
    finally:
        c.close()
    assert P.info(q)["size"] == 200


def test_pipelined_requests_on_a_raw_socket_are_all_answered():
    q = unique()
    P.create(q)
    one = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % P.path(q)).encode()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(one * 10)
        got = b""
        while got.count(b"HTTP/1.1 200") < 10:
            part = s.recv(65536)
            assert part, "connection closed after %d answers" % got.count(b"HTTP/1.1 200")
            got += part
    finally:
        s.close()


def test_200_concurrent_connections_posting_at_once_all_succeed():
    q = unique()
    n = 200
    barrier = threading.Barrier(n, timeout=20)
    results = [None] * n

    def worker(i):
        c = srv.client()
        try:
            c._connect()
            barrier.wait()
            results[i] = P.req("POST", P.path(q, "messages"),
                               {"messages": [{"body": "from %d" % i}]}, client=c, timeout=30)
        except Exception as e:  # noqa: BLE001 — reported below
            results[i] = e
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    failures = [(i, r) for i, r in enumerate(results) if not (isinstance(r, tuple) and r[0] == 201)]
    assert not failures, failures[:5]
    ids = [r[1]["ids"][0] for r in results]
    assert len(set(ids)) == n, "message ids must be unique"
    info = P.info(q)
    assert info["size"] == n and info["total_messages"] == n, info
    bodies = sorted(m["body"] for m in P.reserve(q, n=100) + P.reserve(q, n=100))
    assert bodies == sorted("from %d" % i for i in range(n))


def test_concurrent_reservers_never_get_the_same_message():
    q = unique()
    P.post(q, *["m%d" % i for i in range(100)])
    got = []
    lock = threading.Lock()

    def worker():
        c = srv.client()
        try:
            while True:
                st, body, _ = P.req("POST", P.path(q, "reservations"), {"n": 3}, client=c)
                assert st == 200
                if not body["messages"]:
                    return
                with lock:
                    got.extend(m["id"] for m in body["messages"])
        finally:
            c.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 100 and len(set(got)) == 100, (len(got), len(set(got)))


def test_every_answer_is_json_with_content_type_application_json():
    # The harness checks this on every request; here the statuses are gathered in one place.
    q = unique()
    (mid,) = P.post(q, "x")
    calls = [("GET", "/health", None), ("GET", P.path(), None), ("GET", P.path(q), None),
             ("PUT", P.path(q), {}), ("GET", P.path(q, "messages"), None),
             ("POST", P.path(q, "messages"), {"messages": [{"body": "y"}]}),
             ("GET", P.path(q, "messages", mid), None), ("POST", P.path(q, "reservations"), {}),
             ("GET", P.path(unique()), None), ("GET", "/nowhere", None),
             ("PATCH", P.path(q, "messages"), {}), ("POST", P.path(q, "messages"), {"messages": []}),
             ("DELETE", P.path(q, "messages", mid), {"reservation_id": "f" * 32}),
             ("DELETE", P.path(q, "messages"), {})]
    seen = set()
    for method, path, body in calls:
        st, answer, hdrs = srv.req(method, path, body)
        assert hdrs["content-type"] == "application/json", (method, path, hdrs)
        assert isinstance(answer, dict), answer
        json.dumps(answer)
        seen.add(st)
    assert seen >= {200, 201, 400, 403, 404, 405}, seen


def test_head_on_health_answers_without_a_body():
    st, body, hdrs = srv.req("HEAD", "/health")
    assert st == 200 and body is None, (st, body)
    assert hdrs["content-type"] == "application/json"
    assert srv.healthy(), "the connection is still usable after a HEAD"


def test_expect_100_continue_is_honoured():
    # curl sends "Expect: 100-continue" with bodies over 1 KiB and waits for the go-ahead.
    q = unique()
    body = json.dumps({"messages": [{"body": "e" * 2000}]}).encode()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                   % (P.path(q, "messages"), len(body))).encode())
        got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 100"), got
        s.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            part = s.recv(65536)
            assert part, answer
            answer += part
    finally:
        s.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer[:200]
    assert P.info(q)["size"] == 1


def test_clients_hanging_up_mid_request_do_not_delay_shutdown():
    # Clients that send part of a request and hang up are gone: the server must notice,
    # so nothing is left "in progress" for SIGTERM to wait for (or to hold a connection
    # slot until the idle timeout).
    with Server.start() as s:
        partial = [b"GET /health HTTP/1.1\r\nHost: x\r\n",
                   b"POST /3/projects/p/queues/q/messages HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                   b"{\"messages\":"]
        for _ in range(20):
            for data in partial:
                c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
                c.sendall(data)
                c.close()
        assert s.healthy()
        time.sleep(0.5)
        began = time.monotonic()
        s.signal(15)
        code = s.wait_exit(15)
        took = time.monotonic() - began
        assert code == 0, code
        assert took < 2, "SIGTERM took %.1f s: requests of clients that hung up were still " \
            "counted in progress\n%s" % (took, s.log_tail(8))
