"""The dashboard's server side (api/dash.c, api/history.c): the static files at /ui (compiled
in, ETag revalidation, security headers, no token needed), GET /ui/api/overview (queues with
their depths and rates, the server's last minutes, driven here by the virtual clock so the
rates are exact), GET /ui/api/projects/{p}/queues/{q} (a queue's series, its reserved messages
with a body preview, its recent push attempts), and the token rules (any valid token for the
overview, which shows only the projects the token may use; the project's token for a queue).
The page itself is tested in a real browser by tests/ui/dashboard.test.mjs."""
import http.client

from harness import TEST_PG, Server, sqlite_only, unique, wait_for

srv = None
P = None


def setup_module():
    global srv, P
    srv = Server.start()
    P = srv.project("p")


def teardown_module():
    srv.stop()


def raw_get(server, path, headers=None, method="GET"):
    """(status, headers with lower-case names, body bytes), without the harness's JSON rule."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def overview(server=None, token=None):
    headers = {"Authorization": "OAuth " + token} if token else {}
    st, body, _ = (server or srv).req("GET", "/ui/api/overview", headers=headers)
    assert st == 200, (st, body)
    return body


def row(view, project, queue):
    rows = [q for q in view["queues"] if q["project"] == project and q["name"] == queue]
    assert len(rows) == 1, (project, queue, view["queues"])
    return rows[0]


def advance(server, seconds):
    st, body, _ = server.req("POST", "/admin/clock/advance", {"seconds": seconds})
    assert st == 200, (st, body)


# ---- static files ----

def test_ui_redirects_to_the_page_which_is_served_with_its_headers():
    st, headers, _ = raw_get(srv, "/ui")
    assert st == 308 and headers["location"] == "/ui/", (st, headers)
    st, headers, body = raw_get(srv, "/ui/")
    assert st == 200, st
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b"<html" in body.lower() and b"app.js" in body
    assert headers["cache-control"] == "no-cache"
    assert headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["etag"].startswith('"') and headers["etag"].endswith('"')


def test_every_file_has_its_type_and_a_matching_etag_answers_304():
    for name, ctype in (("app.js", "text/javascript; charset=utf-8"),
                        ("app.css", "text/css; charset=utf-8"),
                        ("favicon.svg", "image/svg+xml")):
        st, headers, body = raw_get(srv, "/ui/" + name)
        assert st == 200 and headers["content-type"] == ctype and body, (name, st, headers)
        assert int(headers["content-length"]) == len(body)
        st, again, body = raw_get(srv, "/ui/" + name, {"If-None-Match": headers["etag"]})
        assert st == 304 and body == b"", (name, st)
        assert again["etag"] == headers["etag"]
        st, _, body = raw_get(srv, "/ui/" + name, {"If-None-Match": '"stale"'})
        assert st == 200 and body


def test_unknown_files_and_other_methods_are_refused_as_json():
    st, body, _ = srv.req("GET", "/ui/nothing.js")
    assert st == 404, (st, body)
    st, body, _ = srv.req("POST", "/ui/app.js", raw="x")
    assert st == 405, (st, body)
    st, body, _ = srv.req("DELETE", "/ui/api/overview")
    assert st == 405, (st, body)
    st, body, _ = srv.req("GET", "/ui/api/elsewhere")
    assert st == 404, (st, body)
    st, body, _ = srv.req("GET", "/ui/a/b")
    assert st == 404, (st, body)


def test_head_of_a_file_has_no_body():
    st, headers, body = raw_get(srv, "/ui/app.js", method="HEAD")
    assert st == 200 and body == b"" and headers["content-type"].startswith("text/javascript")


# ---- the overview ----

def test_overview_lists_every_queue_with_its_depths():
    q1, q2 = unique("dash"), unique("dash")
    other = srv.project("p-other")
    P.post(q1, "a", "b", "c")
    P.post(q1, "later", delay=60)
    other.create(q2)
    P.reserve_one(q1)
    view = overview()
    server = view["server"]
    assert server["backend"] == ("postgresql" if TEST_PG else "sqlite")
    assert server["auth"] == "dev" and server["test_mode"] is True
    assert server["storage"] == "ok" and server["version"]
    assert view["interval_ms"] == 5000
    if TEST_PG:
        assert view["queues"] is None  # no per-queue depths there: the page asks the v3 API
        return
    r = row(view, "p", q1)
    assert (r["type"], r["ready"], r["delayed"], r["reserved"], r["total_messages"]) == \
        ("pull", 2, 1, 1, 4)
    assert row(view, "p-other", q2)["ready"] == 0
    assert len(r["depth"]) == len(view["series"]["t"])


@sqlite_only
def test_rates_follow_the_virtual_clock_exactly():
    with Server.start(["--test-mode"]) as s:
        p = s.project("rates")
        st, _, _ = s.req("POST", "/admin/clock/freeze")
        assert st == 200
        p.create("q")
        advance(s, 5)
        p.post("q", *["m%d" % i for i in range(10)])  # a reading before this post: 0 posted
        advance(s, 5)
        view = overview(s)  # a reading: 10 posted in 5 s
        series = view["series"]
        assert series["posts_per_s"][-1] == 2.0, series
        assert series["ready"][-1] == 10
        r = row(view, "rates", "q")
        assert r["depth"][-2:] == [0, 10]
        for m in p.reserve("q", n=5):
            st, _, _ = p.req("DELETE", p.path("q", "messages", m["id"]),
                             {"reservation_id": m["reservation_id"]})
            assert st == 200
        advance(s, 5)
        view = overview(s)
        series = view["series"]
        assert series["deletes_per_s"][-1] == 1.0 and series["reserves_per_s"][-1] == 1.0
        assert series["posts_per_s"][-1] == 0
        r = row(view, "rates", "q")
        assert r["depth"][-1] == 5
        # over the last minute: 10 in and 5 out in the 10 s the queue has been seen
        assert (r["in_per_s"], r["out_per_s"]) == (1.0, 0.5), r
        st, body, _ = s.req("GET", "/ui/api/projects/rates/queues/q")
        assert st == 200
        assert body["series"]["in_per_s"][-2:] == [2.0, 0]
        assert body["series"]["out_per_s"][-2:] == [0, 1.0]
        assert body["series"]["depth"][-1] == 5


@sqlite_only
def test_a_minute_of_readings_while_the_clock_runs_on():
    with Server.start(["--test-mode"]) as s:
        s.project("p").post("q", "x")
        for _ in range(3):  # the loop wakes for each reading: no request needed
            advance(s, 5)
        assert wait_for(lambda: len(overview(s)["series"]["t"]) >= 4, timeout=5)
        t = overview(s)["series"]["t"]
        assert all(b - a >= 5000 for a, b in zip(t, t[1:])), t


# ---- one queue ----

@sqlite_only
def test_queue_view_lists_reserved_messages_with_a_preview():
    q = unique("dash")
    long_body = "é" * 150  # 300 bytes: the preview stops at 200, between two characters
    P.post(q, "first", long_body, "ready")
    m1 = P.reserve_one(q)
    m2 = P.reserve_one(q, timeout=120)
    st, body, _ = srv.req("GET", "/ui/api/projects/p/queues/" + q)
    assert st == 200, (st, body)
    reserved = {m["id"]: m for m in body["reserved"]}
    assert set(reserved) == {m1["id"], m2["id"]}
    assert reserved[m1["id"]]["reservation_id"] == m1["reservation_id"]
    assert reserved[m1["id"]]["reserved_count"] == 1
    assert reserved[m1["id"]]["body"] == "first"
    assert reserved[m2["id"]]["body"] == "é" * 100 and reserved[m2["id"]]["body_bytes"] == 300
    now = overview()["server"]["now_ms"]
    assert 0 < reserved[m2["id"]]["reserved_until_ms"] - now <= 120000
    assert body["push_attempts"] == []


def test_queue_view_of_a_missing_queue_is_404():
    st, body, _ = srv.req("GET", "/ui/api/projects/p/queues/" + unique("never"))
    assert st == 404 and body == {"msg": "Queue not found"}, (st, body)


def test_queue_view_lists_reserved_messages_where_the_back_end_can():
    q = unique("dash")
    P.post(q, "x")
    P.reserve_one(q)
    st, body, _ = srv.req("GET", "/ui/api/projects/p/queues/" + q)
    assert st == 200, (st, body)
    if TEST_PG:
        assert body["reserved"] is None and "SQLite" in body["reserved_note"], body
        assert body["series"] is None
    else:
        assert len(body["reserved"]) == 1 and "reserved_note" not in body, body


@sqlite_only
def test_push_attempts_show_each_subscribers_answers():
    q, good, bad = unique("dash-push"), unique("sink"), unique("sink")
    st, _, _ = srv.req("PUT", "/admin/sinks/%s/config" % bad, {"status": 500})
    assert st == 200
    sink = "http://127.0.0.1:%d/admin/sinks/" % srv.port
    P.create(q, type="multicast", push={"subscribers": [
        {"name": "good", "url": sink + good}, {"name": "bad", "url": sink + bad}],
        "retries": 2, "retries_delay": 60})
    [msg_id] = P.post(q, "pushed")

    def attempts():
        st, body, _ = srv.req("GET", "/ui/api/projects/p/queues/" + q)
        assert st == 200
        return body["push_attempts"]

    assert wait_for(lambda: len(attempts()) >= 2, timeout=10), attempts()
    by_name = {a["subscriber"]: a for a in attempts()}
    assert by_name["good"]["status"] == 200 and by_name["good"]["result"] == "success"
    assert by_name["bad"]["status"] == 500 and by_name["bad"]["result"] == "refused"
    for a in by_name.values():
        assert a["message_id"] == msg_id and a["try"] == 1 and a["at_ms"] > 0
        assert a["url"].startswith(sink) and a["latency_ms"] >= 0
    # another queue's view does not show them
    st, body, _ = srv.req("GET", "/ui/api/projects/p/queues/" + unique("dash"))
    assert st == 404 or body["push_attempts"] == []


# ---- tokens ----

def test_tokens_guard_the_data_but_not_the_page():
    with Server.start(["--token", "root", "--token", "narrow:p1"]) as s:
        for project, queue in (("p1", "a"), ("p2", "b")):
            st, _, _ = s.req("PUT", "/3/projects/%s/queues/%s" % (project, queue), {"queue": {}},
                             headers={"Authorization": "OAuth root"})
            assert st == 200
        st, _, page = raw_get(s, "/ui/")
        assert st == 200 and page  # the files hold no data
        for token in (None, "wrong"):
            headers = {"Authorization": "OAuth " + token} if token else {}
            st, body, _ = s.req("GET", "/ui/api/overview", headers=headers)
            assert st == 401, (token, st, body)
        full, narrow = overview(s, "root"), overview(s, "narrow")
        assert full["server"]["auth"] == "token" and full["server"]["scope"] == "server"
        assert full["series"] is not None
        assert TEST_PG or full["server"]["queues"] == 2  # (PostgreSQL counts lag behind)
        # a token for some projects: their counts only, nothing server-wide
        assert narrow["server"]["scope"] == "projects" and narrow["series"] is None
        assert narrow["more_queues"] == 0
        if TEST_PG:
            assert narrow["server"]["queues"] is None and narrow["server"]["messages"] is None
        else:
            assert (narrow["server"]["projects"], narrow["server"]["queues"]) == (1, 1)
        if not TEST_PG:
            names = {(q["project"], q["name"]) for q in overview(s, "root")["queues"]}
            assert {("p1", "a"), ("p2", "b")} <= names
            assert [(q["project"], q["name"]) for q in overview(s, "narrow")["queues"]] == [("p1", "a")]
        st, body, _ = s.req("GET", "/ui/api/projects/p2/queues/b",
                            headers={"Authorization": "OAuth narrow"})
        assert st == 403, (st, body)
        st, body, _ = s.req("GET", "/ui/api/projects/p1/queues/a",
                            headers={"Authorization": "OAuth narrow"})
        assert st == 200, (st, body)
        st, body, _ = s.req("GET", "/ui/api/projects/p1/queues/a")
        assert st == 401, (st, body)
