"""Push queues' settings (wire contract §2, §4): create with subscribers, defaults and
limits, the subscribers calls, queue info, type rules, persistence across a restart.
Delivery itself: test_push.py."""

BACKENDS = ("sqlite", "postgres")
from harness import Server, unique

srv = None
P = None
SUB_A = {"name": "a", "url": "http://127.0.0.1:9/a", "headers": {"X-Token": "k1"}}
SUB_B = {"name": "b", "url": "https://hooks.example/b"}


def setup_module():
    global srv, P
    srv = Server.start()
    P = srv.project("p")


def teardown_module():
    srv.stop()


def put(q, options):
    return P.req("PUT", P.path(q), {"queue": options})


def push_of(q):
    st, body, _ = P.req("GET", P.path(q))
    assert st == 200, (st, body)
    return body["queue"]["type"], body["queue"].get("push")


def test_push_section_without_type_makes_a_multicast_queue_with_the_defaults():
    q = unique()
    st, body, _ = put(q, {"push": {"subscribers": [SUB_A]}})
    assert st == 200, (st, body)
    assert body["queue"]["type"] == "multicast"
    assert body["queue"]["push"] == {"subscribers": [SUB_A], "retries": 3, "retries_delay": 60}
    assert "dead_letter" not in body["queue"]


def test_unicast_with_every_setting_is_reported_as_given():
    q = unique()
    push = {"subscribers": [SUB_A, SUB_B], "retries": 0, "retries_delay": 3, "error_queue": "errors"}
    st, body, _ = put(q, {"type": "unicast", "push": push})
    assert st == 200, (st, body)
    assert push_of(q) == ("unicast", push)


def test_limits_of_retries_and_retries_delay():
    for push, ok in (({"retries": 100}, True), ({"retries": 101}, False), ({"retries": -1}, False),
                     ({"retries_delay": 86400}, True), ({"retries_delay": 2}, False),
                     ({"retries_delay": 86401}, False), ({"retries": "3"}, False)):
        push = dict(push, subscribers=[SUB_A])
        st, body, _ = put(unique(), {"push": push})
        assert (st == 200) == ok, (push, st, body)
        if not ok:
            assert st == 400 and body["msg"], body


def test_bad_subscribers_are_400_with_the_reason():
    cases = [
        [{"url": "http://127.0.0.1:9/"}],                     # no name
        [{"name": "", "url": "http://127.0.0.1:9/"}],         # empty name
        [{"name": "a"}],                                      # no url
        [{"name": "a", "url": "ftp://127.0.0.1/"}],           # scheme
        [{"name": "a", "url": "http://"}],                    # nothing after the scheme
        [{"name": "a", "url": "http://x/ y"}],                # space
        [SUB_A, dict(SUB_B, name="a")],                       # repeated name
        [{"name": "a", "url": "http://x/", "headers": {"Bad Name": "v"}}],
        [{"name": "a", "url": "http://x/", "headers": {"X-A": "line\r\nbreak"}}],
        [{"name": "a", "url": "http://x/", "headers": {"X-A": 3}}],
        [{"name": "a", "url": "http://x/", "headers": {"X-A": "1", "x-a": "2"}}],
        ["http://x/"],
        [{"name": "s%d" % i, "url": "http://x/"} for i in range(65)],
    ]
    for subs in cases:
        st, body, _ = put(unique(), {"push": {"subscribers": subs}})
        assert st == 400 and body["msg"], (subs, st, body)


def test_type_rules():
    q = unique()
    assert put(q, {"type": "unicast", "push": {"subscribers": [SUB_A]}})[0] == 200
    for options in ({"type": "multicast"}, {"type": "pull"}):
        st, body, _ = P.req("PATCH", P.path(q), {"queue": options})
        assert st == 400 and "type" in body["msg"], (options, st, body)
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"dead_letter": {"queue_name": "dl"}}})
    assert st == 400 and "pull" in body["msg"], body
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"push": {"error_queue": q}}})
    assert st == 400, body
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"push": {"subscribers": []}}})
    assert st == 400 and "subscriber" in body["msg"], body
    pull = unique()
    P.create(pull)
    st, body, _ = P.req("PATCH", P.path(pull), {"queue": {"push": {"subscribers": [SUB_A]}}})
    assert st == 400, body
    assert push_of(q) == ("unicast", {"subscribers": [SUB_A], "retries": 3, "retries_delay": 60})


def test_update_changes_only_what_it_names_and_empty_error_queue_removes_it():
    q = unique()
    put(q, {"push": {"subscribers": [SUB_A], "error_queue": "errors", "retries": 7}})
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"push": {"retries_delay": 30}}})
    assert st == 200, body
    assert push_of(q)[1] == {"subscribers": [SUB_A], "retries": 7, "retries_delay": 30,
                             "error_queue": "errors"}
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"push": {"error_queue": ""}}})
    assert st == 200, body
    assert "error_queue" not in push_of(q)[1]
    # a zero retries_delay is "not given" (the Go client sends zeros for unset fields)
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"push": {"retries_delay": 0}}})
    assert st == 200 and push_of(q)[1]["retries_delay"] == 30, body


def test_subscribers_calls_add_update_replace_and_remove():
    q = unique()
    put(q, {"push": {"subscribers": [SUB_A]}})
    sp = P.path(q, "subscribers")
    st, body, _ = P.req("POST", sp, {"subscribers": [SUB_B]})
    assert (st, body) == (200, {"msg": "Updated"}), (st, body)
    assert push_of(q)[1]["subscribers"] == [SUB_A, SUB_B]
    a2 = {"name": "a", "url": "http://127.0.0.1:9/a2"}
    assert P.req("POST", sp, {"subscribers": [a2]})[0] == 200  # updated in place, by name
    assert push_of(q)[1]["subscribers"] == [a2, SUB_B]
    c = {"name": "c", "url": "ironmq:///other_queue"}
    assert P.req("PUT", sp, {"subscribers": [c]})[0] == 200
    assert push_of(q)[1]["subscribers"] == [c]
    assert P.req("POST", sp, {"subscribers": [SUB_A]})[0] == 200
    st, body, _ = P.req("DELETE", sp, {"subscribers": [{"name": "c"}, {"name": "unknown"}]})
    assert (st, body) == (200, {"msg": "Updated"}), (st, body)
    assert push_of(q)[1]["subscribers"] == [SUB_A]
    st, body, _ = P.req("DELETE", sp, {"subscribers": [{"name": "a"}]})
    assert st == 400 and "subscriber" in body["msg"], body  # a push queue keeps one
    assert push_of(q)[1]["subscribers"] == [SUB_A]
    for payload in ({}, {"subscribers": []}, {"subscribers": [{"name": "x"}]}, {"subscribers": "x"}):
        st, body, _ = P.req("POST", sp, payload)
        assert st == 400 and body["msg"], (payload, st, body)


def test_push_settings_survive_a_restart():
    q = unique()
    push = {"subscribers": [SUB_A, SUB_B], "retries": 9, "retries_delay": 120, "error_queue": "errs"}
    assert put(q, {"type": "unicast", "push": push})[0] == 200
    gone = unique()
    put(gone, {"push": {"subscribers": [SUB_A]}})
    assert P.req("DELETE", P.path(gone))[0] == 200
    srv.restart()
    assert push_of(q) == ("unicast", push)
    assert P.req("GET", P.path(gone))[0] == 404
    srv.kill()
    srv.restart()
    assert push_of(q) == ("unicast", push)
