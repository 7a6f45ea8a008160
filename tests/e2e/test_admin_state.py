"""The test kit's reset, snapshots and fixtures (api/admin_state.c, engine/fixture.c):
wiping one project or all of them (durably), snapshots that restore exactly the state they
were taken from (queue settings, ids, reservations and their deadlines on the virtual
clock, order), fixture documents loaded with POST /admin/load or --init FILE, and the 400s
that name the bad field. On PostgreSQL only the resets run; snapshots and fixtures answer 400."""
import json
import os
import re
import threading
import time

import harness
from harness import Server, make_temp_dir, run_anvil, unique


srv = None


def setup_module():
    global srv
    srv = Server.start(["--test-mode", "on"])


def teardown_module():
    srv.stop()


def admin(method, path, body=None, raw=None, server=None):
    return (server or srv).req(method, "/admin" + path, body, raw=raw)


def ok(method, path, body=None, server=None):
    st, answer, _ = admin(method, path, body, server=server)
    assert st == 200, (method, path, st, answer)
    return answer


def export(project, server=None):
    return ok("GET", "/projects/%s/export" % harness.quote(project), server=server)


def snapshot(project, name):
    return ok("PUT", "/projects/%s/snapshots/%s" % (project, name))


def restore(project, name):
    return ok("POST", "/projects/%s/snapshots/%s/restore" % (project, name))


def load(fixture, server=None):
    return ok("POST", "/load", fixture, server=server)


def load_error(fixture):
    st, body, _ = admin("POST", "/load", raw=fixture if isinstance(fixture, str) else None,
                        body=None if isinstance(fixture, str) else fixture)
    assert st == 400, (st, body)
    return body["msg"]


class FrozenClock:
    """The engine's clock stands still inside the block; advance() moves it on."""

    def __enter__(self):
        ok("POST", "/clock/freeze")
        return self

    def advance(self, ms):
        ok("POST", "/clock/advance", {"ms": ms})

    def __exit__(self, *exc):
        ok("POST", "/clock/unfreeze")
        return False


def new_project():
    return srv.project(unique("proj"))


# ---- reset ----

def test_reset_of_one_project_leaves_another_intact():
    a, b = new_project(), new_project()
    a.post("q", "one", "two")
    b.post("q", "three")
    body = ok("POST", "/projects/%s/reset" % a.id)
    assert body == {"msg": "Reset", "project": a.id}
    st, _, _ = a.req("GET", a.path("q"))
    assert st == 404
    assert a.req("GET", a.path())[1] == {"queues": []}
    assert b.size("q") == 1


def test_reset_wipes_every_project_and_answers_long_polls_empty():
    with Server.start(["--test-mode", "on", "--durability", "memory"]) as s:
        a, b = s.project("a"), s.project("b")
        a.post("q", "x")
        b.create("empty")
        waiter = s.client()
        # a long poll that is waiting when the reset comes
        result = {}

        def poll():
            result["answer"] = b.req("POST", b.path("empty", "reservations"),
                                     {"n": 1, "wait": 5}, client=waiter, timeout=10)

        t = threading.Thread(target=poll)
        t.start()
        time.sleep(0.3)
        assert ok("POST", "/reset", server=s) == {"msg": "Reset"}
        t.join(10)
        waiter.close()
        st, body, _ = result["answer"]
        assert st == 200 and body == {"messages": []}, (st, body)
        for p in (a, b):
            assert p.req("GET", p.path())[1] == {"queues": []}


def test_reset_of_everything_also_clears_the_kit_and_unfreezes_the_clock():
    with Server.start(["--test-mode", "on", "--durability", "memory"]) as s:
        def call(method, path, body=None):
            st, got, _ = s.req(method, path, body)
            assert st in (200, 201), (method, path, st, got)
            return got
        snap = s.project("kept")
        snap.post("q", "fixture")
        call("PUT", "/admin/projects/kept/snapshots/base")
        call("POST", "/admin/faults", {"route": "post", "status": 503})
        call("POST", "/admin/faults/commits", {"count": 3})
        call("POST", "/admin/faults/subscribers", {"url": "http://127.0.0.1:1/", "status": 500})
        s.req("POST", "/admin/sinks/hooks", {"hello": 1})
        call("POST", "/admin/clock/freeze")
        call("POST", "/admin/clock/advance", {"seconds": 600})
        assert ok("POST", "/reset", server=s) == {"msg": "Reset"}
        faults = call("GET", "/admin/faults")
        assert faults["rules"] == [] and faults["commits"]["fail_next"] == 0, faults
        assert call("GET", "/admin/faults/subscribers")["subscribers"] == []
        assert call("GET", "/admin/sinks")["sinks"] == []
        clock = call("GET", "/admin/clock")
        assert clock["mode"] == "wall" and clock["offset_ms"] >= 590000, clock  # never back
        st, body, _ = s.req("POST", "/3/projects/p/queues/q/messages", {"messages": [{"body": "m"}]})
        assert st == 201, (st, body)  # no fault rule left
        assert call("GET", "/admin/projects/kept/snapshots")["snapshots"]  # snapshots stay
        call("POST", "/admin/projects/kept/snapshots/base/restore")
        assert snap.size("q") == 1


def test_reset_survives_a_restart():
    with Server.start(["--test-mode", "on"]) as s:  # durability fsync by default
        a, b = s.project("a"), s.project("b")
        a.post("q", "x", "y")
        b.post("q", "z")
        ok("POST", "/projects/a/reset", server=s)
        s.restart()
        assert a.req("GET", a.path("q"))[0] == 404
        assert b.size("q") == 1
        ok("POST", "/reset", server=s)
        s.restart()
        assert b.req("GET", b.path("q"))[0] == 404


# ---- snapshots ----

def test_restore_brings_back_the_exact_state():
    p = new_project()
    p.create("jobs", message_timeout=45, dead_letter={"queue_name": "failed", "max_reservations": 3})
    a, b, c = p.post("jobs", "a", "b", "c")
    p.post("jobs", "later", delay=30)
    taken = p.reserve_one("jobs")
    assert taken["id"] == a
    before_queue, before_export = p.info("jobs"), export(p.id)
    summary = snapshot(p.id, "start")
    assert summary == {"msg": "Snapshot taken", "project": p.id, "snapshot": "start",
                       "queues": 1, "messages": 4}

    # change everything: post, reserve, delete, reconfigure, another queue
    p.post("jobs", "new")
    b_taken = p.reserve_one("jobs")
    assert p.req("DELETE", p.path("jobs", "messages", b_taken["id"]),
                 {"reservation_id": b_taken["reservation_id"]})[0] == 200
    assert p.req("DELETE", p.path("jobs", "messages", a),
                 {"reservation_id": taken["reservation_id"]})[0] == 200
    assert p.req("PATCH", p.path("jobs"), {"queue": {"message_timeout": 90}})[0] == 200
    p.post("other", "x")

    assert restore(p.id, "start") == {"msg": "Restored", "project": p.id, "snapshot": "start",
                                      "queues": 1, "messages": 4}
    assert p.info("jobs") == before_queue
    assert export(p.id) == before_export
    assert p.req("GET", p.path("other"))[0] == 404
    got = p.reserve("jobs", n=10)
    assert [m["id"] for m in got] == [b, c]  # a still reserved, "later" still delayed
    st, body, _ = p.req("DELETE", p.path("jobs", "messages", a),
                        {"reservation_id": taken["reservation_id"]})
    assert st == 200, (st, body)  # the reservation taken before the snapshot is valid again


def test_restored_reservation_times_out_at_its_deadline_on_the_virtual_clock():
    p = new_project()
    with FrozenClock() as clock:
        a, b = p.post("q", "a", "b")
        first = p.reserve_one("q", timeout=30)
        assert first["id"] == a
        snapshot(p.id, "s")
        clock.advance(10000)
        p.post("q", "c")
        restore(p.id, "s")
        clock.advance(19999)
        assert [m["id"] for m in p.peek("q")] == [b]
        clock.advance(1)
        assert [m["id"] for m in p.peek("q")] == [a, b]  # timed out: at the front
        st, _, _ = p.req("DELETE", p.path("q", "messages", a),
                         {"reservation_id": first["reservation_id"]})
        assert st == 403  # its reservation ended


def test_snapshots_are_listed_read_and_deleted():
    p = new_project()
    p.post("q", "m")
    snapshot(p.id, "one")
    p.post("q", "n")
    snapshot(p.id, "two")
    snapshot(p.id, "one")  # taken again: replaces the first
    body = ok("GET", "/projects/%s/snapshots" % p.id)
    assert body == {"snapshots": [{"name": "two", "queues": 1, "messages": 2},
                                  {"name": "one", "queues": 1, "messages": 2}]}
    doc = ok("GET", "/projects/%s/snapshots/two" % p.id)
    assert [m["body"] for m in doc["projects"][p.id]["queues"]["q"]["messages"]] == ["m", "n"]
    assert ok("DELETE", "/projects/%s/snapshots/two" % p.id) == {"msg": "Deleted"}
    for method, path in (("GET", "/snapshots/two"), ("DELETE", "/snapshots/two"),
                         ("POST", "/snapshots/two/restore")):
        st, body, _ = admin(method, "/projects/%s%s" % (p.id, path))
        assert st == 404 and body == {"msg": "Snapshot not found"}, (method, path, st, body)
    assert ok("GET", "/projects/%s/snapshots" % new_project().id) == {"snapshots": []}


def test_snapshot_of_an_empty_project_restores_to_empty():
    p = new_project()
    snapshot(p.id, "nothing")
    p.post("q", "x")
    restore(p.id, "nothing")
    assert p.req("GET", p.path())[1] == {"queues": []}


def test_push_queue_settings_are_restored():
    p = new_project()
    push = {"subscribers": [{"name": "a", "url": "http://127.0.0.1:9/a", "headers": {"X-K": "v"}}],
            "retries": 5, "retries_delay": 30, "error_queue": "errors"}
    p.create("pushed", type="multicast", push=push)
    before = p.info("pushed")
    snapshot(p.id, "s")
    st, body, _ = p.req("PUT", p.path("pushed", "subscribers"),
                        {"subscribers": [{"name": "b", "url": "http://127.0.0.1:9/b"}]})
    assert st == 200, (st, body)
    restore(p.id, "s")
    assert p.info("pushed") == before


def test_ids_after_restore_never_collide():
    p = new_project()
    first = p.post("q", "a", "b", "c")
    snapshot(p.id, "s")
    second = p.post("q", "d", "e")
    restore(p.id, "s")
    third = p.post("q", "f", "g")
    assert len(set(first + second + third)) == 7
    assert min(int(i) for i in third) > max(int(i) for i in first + second)
    # the same ids in another project are refused: they belong to p's messages
    doc = export(p.id)
    other = new_project()
    msg = load_error({"projects": {other.id: doc["projects"][p.id]}})
    assert "id %s" % first[0] in msg and "does not replace" in msg, msg
    assert other.req("GET", other.path())[1] == {"queues": []}


def test_export_of_a_project_is_loadable_into_the_same_project():
    p = new_project()
    p.post("q", "a")
    doc = export(p.id)
    p.post("q", "b")
    body = load(doc)
    assert body == {"msg": "Loaded", "projects": 1, "queues": 1, "messages": 1}
    assert export(p.id) == doc


# ---- fixtures ----

def test_load_replaces_the_named_projects_only():
    keep, replaced = new_project(), new_project()
    keep.post("q", "kept")
    replaced.post("old", "gone")
    fixture = {"projects": {replaced.id: {"queues": {
        "jobs": {"message_timeout": 120, "messages": [{"body": "one"}, {"body": "two"}]},
        "failed": {}}}}}
    assert load(fixture) == {"msg": "Loaded", "projects": 1, "queues": 2, "messages": 2}
    assert keep.size("q") == 1
    assert replaced.req("GET", replaced.path("old"))[0] == 404
    info = replaced.info("jobs")
    assert info["message_timeout"] == 120 and info["size"] == 2 and info["total_messages"] == 2
    assert [m["body"] for m in replaced.reserve("jobs", n=10)] == ["one", "two"]
    assert replaced.size("failed") == 0


def test_hand_written_times_count_from_the_engine_clock():
    p = new_project()
    fixture = {"projects": {p.id: {"queues": {"q": {"messages": [
        {"body": "ready"},
        {"body": "later", "delay": 5},
        {"body": "taken", "reserved_for": 10, "reserved_count": 2,
         "reservation_id": "00112233445566778899aabbccddeeff"},
        {"body": "fixed", "id": "42"}]}}}}}
    with FrozenClock() as clock:
        load(fixture)
        assert [m["body"] for m in p.peek("q")] == ["ready", "fixed"]
        assert p.get("q", 42)["body"] == "fixed"
        clock.advance(5000)
        assert [m["body"] for m in p.peek("q")] == ["ready", "fixed", "later"]
        doc = export(p.id)["projects"][p.id]["queues"]["q"]["messages"]
        taken = [m for m in doc if m["body"] == "taken"][0]
        assert taken["state"] == "reserved" and taken["reserved_count"] == 2
        assert taken["reservation_id"] == "00112233445566778899aabbccddeeff"
        clock.advance(5000)
        assert [m["body"] for m in p.peek("q")] == ["taken", "ready", "fixed", "later"]
    assert int(p.post("q", "new")[0]) > 42


BAD_FIXTURES = [
    ("not json", "Invalid JSON"),
    ('{"projects": {"p": {"queues": {"q": {"messages": [{"body": "x"}]}}}', "line 1"),
    ({}, "projects is required"),
    ({"project": {}}, "project is not a fixture field"),
    ({"projects": {"a/b": {}}}, 'project "a/b" is not a valid name'),
    ({"projects": {"p": {"queus": {}}}}, "projects.p: queus is not a fixture field"),
    ({"projects": {"p": {"queues": {"q": {"mesages": []}}}}},
     "projects.p.queues.q: mesages is not a fixture field"),
    ({"projects": {"p": {"queues": {"q": {"message_timeout": 5}}}}},
     "projects.p.queues.q: message_timeout must be from 30 to 86400"),
    ({"projects": {"p": {"queues": {"q": {"type": "fifo"}}}}},
     "projects.p.queues.q: type must be pull, unicast or multicast"),
    ({"projects": {"p": {"queues": {"q": {"type": "pull", "push": {"retries": 2}}}}}},
     "projects.p.queues.q: push settings need a push queue"),
    ({"projects": {"p": {"queues": {"q": {"dead_letter": {"queue_name": "r"}},
                                    "r": {"dead_letter": {"queue_name": "q"}}}}}},
     "projects.p.queues.q: dead_letter.queue_name would make dead-letter queues form a loop"),
    ({"projects": {"p": {"queues": {"q": {"messages": {}}}}}},
     "projects.p.queues.q: messages must be an array"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": ""}]}}}}},
     "projects.p.queues.q: messages[0].body is required"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x"}, "y"]}}}}},
     "projects.p.queues.q: messages[1] must be an object"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "delay": -1}]}}}}},
     "messages[0].delay must be from 0 to 604800"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "id": "abc"}]}}}}},
     "messages[0].id must be a message id"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "id": "7"},
                                                      {"body": "y", "id": 7}]}}}}},
     "projects.p.queues.q.messages[1]: id 7: Two messages of the fixture have the same id"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "reservation_id": "zz"}]}}}}},
     "messages[0].reservation_id must be 32 hex digits"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "state": "ready",
                                                       "delay": 3}]}}}}},
     "messages[0]: a ready message has no delay"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "state": "delayed"}]}}}}},
     "a delayed message needs one of delay"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "delay": 3,
                                                       "reserved_for": 30}]}}}}},
     "messages[0]: a reserved message has no delay"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "state": "delayed",
                                                       "delay": 3, "reservation_id": "0" * 32}]}}}}},
     "messages[0]: a delayed message has no reserved_for"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "state": "gone"}]}}}}},
     "messages[0].state must be ready, delayed or reserved"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "created_at_ms": "now"}]}}}}},
     "messages[0].created_at_ms must be a time in milliseconds"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "push_headers": {"a b": "c"}}]}}}}},
     "messages[0].push_headers: a header name"),
    ({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "bdy": "y"}]}}}}},
     "messages[0].bdy is not a fixture field"),
    ({"projects": {"p": {"queues": {"q": {"id": "xyz"}}}}}, "projects.p.queues.q: id must be a queue id"),
]


def test_load_bad_inputs_answer_400_naming_the_field():
    before = srv.project("p").req("GET", srv.project("p").path())[1]
    for fixture, expected in BAD_FIXTURES:
        msg = load_error(fixture)
        assert expected in msg, (fixture, expected, msg)
    assert srv.project("p").req("GET", srv.project("p").path())[1] == before


def test_load_refuses_too_many_messages_and_too_large_bodies():
    with Server.start(["--test-mode", "on", "--durability", "memory"]) as s:
        many = {"projects": {"p": {"queues": {"q": {"messages": [{"body": "x"}] * 100001}}}}}
        st, body, _ = admin("POST", "/load", many, server=s)
        assert st == 400 and "at most 100000 messages" in body["msg"], (st, body)
        big = {"projects": {"p": {"queues": {"q": {"messages": [{"body": "x" * 70000}]}}}}}
        st, body, _ = admin("POST", "/load", big, server=s)
        assert st == 400 and "messages[0].body is 70000 bytes" in body["msg"], (st, body)
        assert load({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x"}] * 100000}}}}},
                    server=s)["messages"] == 100000
        assert s.project("p").size("q") == 100000


def test_admin_state_routes_refuse_wrong_methods_and_names():
    for method, path in (("GET", "/reset"), ("GET", "/load"), ("POST", "/projects/p/export"),
                         ("GET", "/projects/p/reset"), ("POST", "/projects/p/snapshots"),
                         ("GET", "/projects/p/snapshots/s/restore"),
                         ("POST", "/projects/p/snapshots/s")):
        st, body, _ = admin(method, path)
        assert st == 405, (method, path, st, body)
    st, body, _ = admin("PUT", "/projects/p/snapshots/%01")
    assert st == 400 and "snapshot name" in body["msg"], (st, body)


def test_load_with_curl_style_form_content_type_is_still_a_fixture():
    p = new_project()
    doc = json.dumps({"projects": {p.id: {"queues": {"q": {"messages": [{"body": "x"}]}}}}})
    st, body, _ = srv.req("POST", "/admin/load", raw=doc,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 200, (st, body)
    assert p.size("q") == 1


# ---- --init FILE ----

def write_fixture(doc):
    path = os.path.join(make_temp_dir(), "fixture.json")
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_init_file_is_loaded_before_the_ready_line_and_is_durable():
    path = write_fixture({"projects": {"demo": {"queues": {
        "jobs": {"messages": [{"body": "first"}, {"body": "second", "delay": 60}]}}}}})
    with Server.start(["--test-mode", "on", "--init", path]) as s:
        demo = s.project("demo")
        info = demo.info("jobs")  # the first request after the ready line already sees it
        assert info["size"] == 2
        assert [m["body"] for m in demo.peek("jobs")] == ["first"]
        s.restart(["--test-mode", "on"])  # fsync: committed before the ready line
        assert demo.info("jobs")["size"] == 2


def test_init_with_a_bad_fixture_exits_with_a_one_line_reason():
    cases = [
        (write_fixture({"projects": {"p": {"queues": {"q": {"messages": [{"body": "x", "delay": "soon"}]}}}}}),
         "projects.p.queues.q: messages[0].delay must be an integer"),
        (write_fixture("{\n  \"projects\": {\n    \"p\": [}\n}"), "line 3"),
        (os.path.join(make_temp_dir(), "missing.json"), "cannot open"),
    ]
    for path, expected in cases:
        proc = run_anvil(["--port", "0", "--durability", "memory", "--test-mode", "on",
                          "--init", path])
        assert proc.returncode in (1, 2), (proc.returncode, proc.stderr)
        assert "anvil ready" not in proc.stdout, proc.stdout
        errors = [line for line in proc.stderr.splitlines() if line.startswith("anvil:")]
        assert len(errors) == 1 and expected in errors[0] and path in errors[0], proc.stderr
        assert not re.search(r"AddressSanitizer|runtime error", proc.stderr), proc.stderr


def test_postgres_refuses_snapshots_and_fixtures_with_a_reason():
    if not harness.TEST_PG:
        return
    for method, path in (("GET", "/admin/projects/p/export"), ("PUT", "/admin/projects/p/snapshots/s"),
                         ("POST", "/admin/load")):
        st, body, _ = srv.req(method, path, {"projects": {}} if method != "GET" else None)
        assert st == 400 and "PostgreSQL" in body["msg"], (method, path, st, body)


# On PostgreSQL only these run: the resets (snapshots and fixtures need the embedded back end).
_ON_BOTH = {"test_reset_of_one_project_leaves_another_intact",
            "test_reset_wipes_every_project_and_answers_long_polls_empty",
            "test_postgres_refuses_snapshots_and_fixtures_with_a_reason"}
for _name, _fn in list(globals().items()):
    if _name.startswith("test_") and _name not in _ON_BOTH:
        _fn.backends = ("sqlite",)
