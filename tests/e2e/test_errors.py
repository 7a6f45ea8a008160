"""Errors: unknown paths, wrong methods, bad JSON, oversized bodies, and garbage on the
wire. Every answer is JSON {"msg": ...}, and nothing brings the server down: each test
ends by checking /health."""
import http.client
import json
import socket

from harness import Server, unique

srv = None
P = None
MAX_REQUEST = 100 * 1024


def setup_module():
    global srv, P
    srv = Server.start(["--max-request-size", str(MAX_REQUEST)])
    P = srv.project("p")


def teardown_module():
    srv.stop()


def assert_still_healthy():
    # a fresh connection: the one used by the test may have been closed by the server
    c = srv.client()
    try:
        st, body, _ = c.req("GET", "/health")
    finally:
        c.close()
    assert st == 200 and body["status"] == "ok", (st, body)


def assert_error(st, body, status, msg=None):
    assert st == status, (st, body)
    assert isinstance(body, dict) and isinstance(body.get("msg"), str) and body["msg"], body
    if msg is not None:
        assert body["msg"] == msg, body


def test_health_answers_ok():
    st, body, hdrs = srv.req("GET", "/health")
    assert st == 200, (st, body)
    assert body["status"] == "ok", body
    assert hdrs["content-type"] == "application/json"


def test_unknown_paths_are_404_not_found():
    for path in ("/", "/nope", "/3", "/3/projects", "/3/projects/p", "/3/projects/p/queue",
                 "/2/projects/p/queues", "/3/project/p/queues", "/3/projects/p/queues/q/nope",
                 "/3/projects/p/queues/q/messages/1/nope", "/health/x",
                 "/3/projects/p/queues/q/messages/1/touch/x",
                 "/3/projects/p/queues/q/reservations/1"):
        for method in ("GET", "POST"):
            st, body, _ = srv.req(method, path, {} if method == "POST" else None)
            assert_error(st, body, 404, "Not found")
    assert_still_healthy()


def test_wrong_method_on_known_path_is_405_json():
    q = unique()
    (mid,) = P.post(q, "x")
    for method, path in (("PATCH", P.path(q, "messages")), ("PUT", P.path(q, "messages")),
                         ("GET", P.path(q, "reservations")), ("DELETE", P.path(q, "reservations")),
                         ("POST", P.path(q)), ("POST", P.path()), ("DELETE", P.path()),
                         ("PUT", "/health"), ("POST", "/health"), ("GET", P.path(q, "webhook")),
                         ("PUT", P.path(q, "messages", mid)), ("POST", P.path(q, "messages", mid)),
                         ("GET", P.path(q, "messages", mid, "touch")),
                         ("DELETE", P.path(q, "messages", mid, "release"))):
        st, body, _ = P.req(method, path, {})
        assert_error(st, body, 405)
    assert P.get(q, mid)["body"] == "x"
    assert_still_healthy()


def test_malformed_json_is_400_with_a_message():
    q = unique()
    (mid,) = P.post(q, "x")
    bad_bodies = ["{", "{\"messages\": [}", "nul", "{} trailing", "{'single': 1}", "{\"a\":}",
                  b"{\"messages\": [{\"body\": \"\xff\"}]}", "\x00", "{\"a\": 1,}"]
    targets = [("POST", P.path(q, "messages")), ("POST", P.path(q, "reservations")),
               ("PUT", P.path(q)), ("PATCH", P.path(q)), ("DELETE", P.path(q, "messages", mid)),
               ("DELETE", P.path(q, "messages")),
               ("POST", P.path(q, "messages", mid, "touch")),
               ("POST", P.path(q, "messages", mid, "release"))]
    for method, path in targets:
        for raw in bad_bodies:
            st, body, _ = P.req(method, path, raw=raw, headers={"Content-Type": "application/json"})
            assert_error(st, body, 400)
    # nothing was changed by any of them
    info = P.info(q)
    assert info["size"] == 1 and info["message_timeout"] == 60, info
    assert P.get(q, mid)["reserved_count"] == 0
    assert_still_healthy()


def test_json_that_is_not_an_object_is_400():
    q = unique()
    (mid,) = P.post(q, "x")
    for raw in ("[]", "[{\"body\": \"x\"}]", "\"text\"", "5", "null", "true"):
        for method, path in (("POST", P.path(q, "messages")), ("POST", P.path(q, "reservations")),
                             ("PUT", P.path(q)), ("DELETE", P.path(q, "messages")),
                             ("DELETE", P.path(q, "messages", mid))):
            st, body, _ = P.req(method, path, raw=raw)
            assert_error(st, body, 400)
    assert P.info(q)["size"] == 1, "DELETE /messages with a non-object body must not clear"
    assert_still_healthy()


def test_request_body_over_max_request_size_is_413():
    q = unique()
    big = json.dumps({"messages": [{"body": "x" * 1000}] * (MAX_REQUEST // 1000 + 5)})
    assert len(big) > MAX_REQUEST
    c = srv.client()
    try:
        st, body, _ = c.req("POST", P.path(q, "messages"), raw=big)
    finally:
        c.close()
    assert_error(st, body, 413)
    assert P.req("GET", P.path(q))[0] == 404, "nothing of it was stored"
    assert_still_healthy()


def test_chunked_request_body_over_max_request_size_is_413():
    q = unique()
    chunk = b"x" * 8192

    def chunks():
        for _ in range(MAX_REQUEST // len(chunk) + 3):
            yield chunk

    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("POST", P.path(q, "webhook"), body=chunks(), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        resp = conn.getresponse()
        payload = resp.read()
    finally:
        conn.close()
    assert resp.status == 413, (resp.status, payload)
    assert resp.getheader("Content-Type") == "application/json"
    assert json.loads(payload)["msg"]
    assert P.req("GET", P.path(q))[0] == 404
    assert_still_healthy()


def test_body_just_under_max_request_size_is_accepted():
    q = unique()
    msgs = [{"body": "y" * 60000}]
    st, body, _ = P.req("POST", P.path(q, "messages"), {"messages": msgs})
    assert st == 201, (st, body)
    assert_still_healthy()


def test_empty_path_segment_is_404():
    P.post("q", "x")
    for path in ("/3/projects/p/queues/q//messages", "/3/projects/p//queues/q",
                 "//health", "/3/projects/p/queues//", "/3/projects/p/queues/q/messages//touch"):
        st, body, _ = srv.req("GET", path)
        assert_error(st, body, 404)
        st, body, _ = srv.req("POST", path, {"messages": [{"body": "x"}]})
        assert_error(st, body, 404)
    assert P.info("q")["size"] == 1
    assert_still_healthy()


def test_subscriber_calls_on_a_pull_queue_are_400():
    q = unique()
    P.create(q)
    payload = {"subscribers": [{"name": "s", "url": "http://127.0.0.1:1/"}]}
    for method in ("POST", "PUT", "DELETE"):
        st, body, _ = P.req(method, P.path(q, "subscribers"), payload)
        assert_error(st, body, 400)
        st, body, _ = P.req(method, P.path(unique(), "subscribers"), payload)
        assert_error(st, body, 404, "Queue not found")
    assert_still_healthy()


def send_raw(port, data, read=True):
    """Sends bytes on a fresh socket; returns what came back before the server closed or
    0.5 s passed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=0.5)
    got = b""
    try:
        s.sendall(data)
        if read:
            try:
                while True:
                    part = s.recv(65536)
                    if not part:
                        break
                    got += part
                    if b"\r\n\r\n" in got and len(got) > 200:
                        break
            except socket.timeout:
                pass
    finally:
        s.close()
    return got


def test_garbage_on_the_wire_does_not_bring_the_server_down():
    # A server of its own: clients hanging up mid-request may hold up its shutdown (see
    # test_http.test_clients_hanging_up_mid_request_do_not_delay_shutdown), not this test's.
    with Server.start(["--shutdown-timeout", "1"]) as s:
        port = s.port
        send_raw(port, b"GARBAGE\r\n\r\n")
        send_raw(port, b"\x00\xff\x13\x37" * 100)
        send_raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\n", read=False)  # cut short
        send_raw(port, b"POST /3/projects/p/queues/g/messages HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"messages\":", read=False)  # body cut short
        send_raw(port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + b"\r\n\r\n")
        send_raw(port, b"POST /3/projects/p/queues/g/messages HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: -5\r\n\r\n")
        send_raw(port, b"POST /3/projects/p/queues/g/messages HTTP/1.1\r\nHost: x\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
        send_raw(port, b"GET /" + b"a/" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        send_raw(port, b"GET /3/projects/%ZZ/queues HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.healthy()
        p = s.project("p")
        p.post("q", "still works")
        assert p.reserve_one("q")["body"] == "still works"


def test_odd_but_valid_requests_get_json_answers():
    q = unique()
    for method, path in (("GET", "/3/projects/p/queues?per_page=&previous=&prefix="),
                         ("GET", P.path(q, "messages") + "?n="),
                         ("GET", "/3/projects/p/queues/%ZZ"),
                         ("GET", "/3/projects/p/queues/" + "x" * 5000),
                         ("GET", "/3/projects/" + "p" * 300 + "/queues"),
                         ("GET", "/3/projects/p/queues/q/messages/" + "9" * 500)):
        st, body, _ = srv.req(method, path)
        assert 200 <= st < 500, (path, st, body)
        assert isinstance(body, dict), body
    assert_still_healthy()
