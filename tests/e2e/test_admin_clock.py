"""The test kit's front door: test mode on and off, the virtual clock (freeze, advance,
unfreeze) driving reservation timeouts, delays, expirations and long polls without
sleeping, and strict versus relaxed limits. The other parts of the kit have their own
modules (test_admin_*.py)."""
import threading
import time

import harness
from harness import Server, sqlite_only, unique

srv = None
P = None


def setup_module():
    global srv, P
    srv = Server.start()
    P = srv.project("p")


def teardown_module():
    srv.stop()


def clock(action=None, body=None, server=None):
    s = server or srv
    if action is None:
        st, got, _ = s.req("GET", "/admin/clock")
    else:
        st, got, _ = s.req("POST", "/admin/clock/" + action, body)
    return st, got


def frozen(fn):
    """Runs fn with the clock frozen, and unfreezes it whatever happens."""
    def run():
        st, got = clock("freeze")
        assert st == 200 and got["mode"] == "frozen", (st, got)
        try:
            fn()
        finally:
            clock("unfreeze")
    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    run.backends = ("sqlite",)
    return run


# ---- test mode ----

def test_admin_status_says_what_is_on():
    st, body, _ = srv.req("GET", "/admin")
    assert st == 200, (st, body)
    assert body["test_mode"] is True
    assert body["limits"] == "strict"
    assert body["backend"] == ("postgres" if harness.TEST_PG else "embedded")
    assert body["clock"]["mode"] in ("wall", "frozen")


ADMIN_ROUTES = [
    ("GET", "/admin"), ("GET", "/admin/clock"), ("POST", "/admin/clock/freeze"),
    ("POST", "/admin/clock/advance"), ("POST", "/admin/clock/unfreeze"),
    # reset, snapshots, fixtures
    ("POST", "/admin/reset"), ("POST", "/admin/projects/p/reset"),
    ("GET", "/admin/projects/p/export"), ("PUT", "/admin/projects/p/snapshots/s"),
    ("GET", "/admin/projects/p/snapshots"), ("GET", "/admin/projects/p/snapshots/s"),
    ("POST", "/admin/projects/p/snapshots/s/restore"),
    ("DELETE", "/admin/projects/p/snapshots/s"), ("POST", "/admin/load"),
    # faults
    ("GET", "/admin/faults"), ("POST", "/admin/faults"), ("DELETE", "/admin/faults"),
    ("GET", "/admin/faults/1"), ("DELETE", "/admin/faults/1"), ("POST", "/admin/faults/seed"),
    ("POST", "/admin/faults/commits"), ("GET", "/admin/faults/subscribers"),
    ("POST", "/admin/faults/subscribers"), ("DELETE", "/admin/faults/subscribers"),
    # seeing everything
    ("GET", "/admin/projects/p/queues/q/messages"), ("GET", "/admin/events"),
    ("GET", "/admin/events?format=json"),
    # push sink and log
    ("GET", "/admin/push-log"), ("DELETE", "/admin/push-log"), ("GET", "/admin/sinks"),
    ("POST", "/admin/sinks/s"), ("PUT", "/admin/sinks/s/config"),
    ("GET", "/admin/sinks/s/requests"), ("DELETE", "/admin/sinks/s"),
    ("GET", "/admin/nothing-here"),
]


def test_every_admin_route_is_refused_when_test_mode_is_off():
    with Server.start(["--test-mode", "off"]) as off:
        q = unique()
        ids = off.project("p").post(q, "kept")
        for method, path in ADMIN_ROUTES:
            st, body, _ = off.req(method, path, {"ms": 1000} if method != "GET" else None)
            assert st == 403, (method, path, st, body)
            assert "Test mode is off" in body["msg"], body
        # nothing leaked through: the state and the clock are as they were
        info = off.project("p").info(q)
        assert info["size"] == 1, info
        st, body, _ = off.req("GET", off.project("p").path(q, "messages", ids[0]))
        assert st == 200 and body["message"]["body"] == "kept", body


def test_test_mode_is_off_by_default_with_tokens_and_on_when_asked():
    with Server.start(["--token", "secret"]) as with_tokens:
        st, body, _ = with_tokens.req("GET", "/admin", headers={"Authorization": "OAuth secret"})
        assert st == 403 and "Test mode is off" in body["msg"], (st, body)
    with Server.start(["--token", "secret", "--test-mode"]) as on:
        st, body, _ = on.req("GET", "/admin")
        assert st == 401, (st, body)  # the kit needs a token like everything else
        st, body, _ = on.req("GET", "/admin", headers={"Authorization": "OAuth nope"})
        assert st == 401, (st, body)
        st, body, _ = on.req("GET", "/admin", headers={"Authorization": "OAuth secret"})
        assert st == 200 and body["test_mode"] is True, (st, body)


def test_test_mode_from_the_environment():
    with Server.start(env={"ANVIL_TEST_MODE": "off"}) as off:
        st, _, _ = off.req("GET", "/admin/clock")
        assert st == 403
    with Server.start(env={"ANVIL_TEST_MODE": "on"}) as on:
        st, _, _ = on.req("GET", "/admin/clock")
        assert st == 200


def test_bad_test_mode_and_limits_values_stop_the_start_with_a_reason():
    for args, words in ((["--test-mode", "maybe"], "test_mode"), (["--limits", "loose"], "limits")):
        proc = harness.run_anvil(["--port", "0", "--durability", "memory"] + args)
        assert proc.returncode == 2, (args, proc.returncode, proc.stderr)
        assert words in proc.stderr, proc.stderr


# ---- the clock ----

def test_clock_reads_wall_time_until_frozen():
    st, body = clock()
    assert st == 200, body
    assert body["mode"] == "wall"
    assert abs(body["now_ms"] - time.time() * 1000) < 5000 + body["offset_ms"], body


@frozen
def test_frozen_clock_does_not_move_and_advance_moves_it_exactly():
    _, a = clock()
    time.sleep(0.05)
    _, b = clock()
    assert a["now_ms"] == b["now_ms"], (a, b)
    st, c = clock("advance", {"seconds": 90})
    assert st == 200 and c["now_ms"] == a["now_ms"] + 90000, c
    st, d = clock("advance", {"ms": 5})
    assert d["now_ms"] == c["now_ms"] + 5, d


@frozen
def test_ten_minute_reservation_timeout_runs_in_milliseconds():
    q = unique()
    P.create(q, message_timeout=600)
    (mid,) = P.post(q, "job")
    first = P.reserve_one(q)
    started = time.monotonic()
    clock("advance", {"ms": 599999})
    assert P.reserve(q, n=1) == []  # one millisecond before the end: still reserved
    clock("advance", {"ms": 1})
    again = P.reserve_one(q)
    assert again["id"] == mid and again["reserved_count"] == 2, again
    assert again["reservation_id"] != first["reservation_id"]
    st, body, _ = P.req("DELETE", P.path(q, "messages", mid),
                        {"reservation_id": first["reservation_id"]})
    assert st == 403 and body["msg"] == "Reservation timed out", (st, body)
    assert time.monotonic() - started < 5


@frozen
def test_delays_and_expirations_follow_the_virtual_clock():
    q = unique()
    P.create(q, message_expiration=3600)
    (delayed,) = P.post(q, "later", delay=120)
    assert P.reserve(q, n=1) == []
    clock("advance", {"seconds": 119})
    assert P.reserve(q, n=1) == []
    clock("advance", {"seconds": 1})
    assert P.reserve_one(q, delete=True)["id"] == delayed
    (expiring,) = P.post(q, "short-lived")
    clock("advance", {"seconds": 3599})
    assert P.get(q, expiring) is not None
    clock("advance", {"seconds": 1})
    assert P.get(q, expiring) is None
    assert P.size(q) == 0


@frozen
def test_long_poll_ends_when_the_clock_passes_its_wait():
    q = unique()
    P.create(q)
    result = {}
    client = harness.Client("127.0.0.1", srv.port, timeout=20)

    def poll():
        result["answer"] = P.req("POST", P.path(q, "reservations"), {"n": 1, "wait": 30},
                                 client=client, timeout=20)
        result["at"] = time.monotonic()

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.3)
    assert t.is_alive()  # waiting: frozen time does not run out
    clock("advance", {"seconds": 29})
    time.sleep(0.2)
    assert t.is_alive()
    advanced = time.monotonic()
    clock("advance", {"seconds": 1})
    t.join(5)
    client.close()
    assert not t.is_alive()
    st, body, _ = result["answer"]
    assert st == 200 and body == {"messages": []}, (st, body)
    assert result["at"] - advanced < 2


@frozen
def test_long_poll_is_served_by_a_message_that_becomes_visible_during_an_advance():
    q = unique()
    (mid,) = P.post(q, "soon", delay=50)
    result = {}
    client = harness.Client("127.0.0.1", srv.port, timeout=20)
    t = threading.Thread(target=lambda: result.setdefault(
        "answer", P.req("POST", P.path(q, "reservations"), {"n": 1, "wait": 30},
                        client=client, timeout=20)))
    t.start()
    time.sleep(0.2)
    clock("advance", {"seconds": 30})  # the wait ends halfway through the delay
    t.join(5)
    assert result["answer"][1] == {"messages": []}, result
    result.clear()
    t = threading.Thread(target=lambda: result.setdefault(
        "answer", P.req("POST", P.path(q, "reservations"), {"n": 1, "wait": 30},
                        client=client, timeout=20)))
    t.start()
    time.sleep(0.2)
    clock("advance", {"seconds": 30})  # the delay ends 20 s into the new wait
    t.join(5)
    client.close()
    st, body, _ = result["answer"]
    assert st == 200 and [m["id"] for m in body["messages"]] == [mid], (st, body)


@sqlite_only
def test_unfreeze_keeps_the_time_reached_and_never_goes_back():
    st, a = clock("freeze")
    clock("advance", {"seconds": 3600})
    st, b = clock("unfreeze")
    assert st == 200 and b["mode"] == "wall", b
    assert b["now_ms"] >= a["now_ms"] + 3600000, (a, b)
    assert b["offset_ms"] >= 3590000, b
    time.sleep(0.05)
    _, c = clock()
    assert c["now_ms"] > b["now_ms"], (b, c)  # running again, from where it stood


def test_bad_advance_requests_are_refused_clearly():
    for body, words in (({}, "ms or seconds"), ({"ms": 1, "seconds": 1}, "ms or seconds"),
                        ({"ms": -1}, "ms"), ({"seconds": "x"}, "seconds"), (None, "ms or seconds")):
        st, got, _ = srv.req("POST", "/admin/clock/advance", body)
        if harness.TEST_PG:
            assert st == 400, (body, st, got)
            continue
        assert st == 400 and words in got["msg"], (body, st, got)
    st, got, _ = srv.req("GET", "/admin/clock/freeze")
    assert st == 405, (st, got)


def test_postgres_back_end_refuses_to_freeze_with_a_reason():
    if not harness.TEST_PG:
        return
    st, got = clock("freeze")
    assert st == 400 and "PostgreSQL" in got["msg"], (st, got)


# ---- limits ----

def test_strict_limits_are_the_hosted_services():
    q = unique()
    P.post(q, "m")
    st, body, _ = P.req("POST", P.path(q, "reservations"), {"n": 1, "timeout": 1})
    assert st == 400 and "timeout" in body["msg"], (st, body)
    st, body, _ = P.req("PUT", P.path(q), {"queue": {"message_expiration": 1}})
    assert st == 400 and "message_expiration" in body["msg"], (st, body)
    st, body, _ = P.req("POST", P.path(q, "messages"), {"messages": [{"body": "x" * 70000}]})
    assert st == 413 or st == 400, (st, body)


def test_relaxed_limits_allow_one_second_timeouts_and_large_bodies():
    with Server.start(["--limits", "relaxed"]) as relaxed:
        R = relaxed.project("p")
        st, body, _ = relaxed.req("GET", "/admin")
        assert body["limits"] == "relaxed", body
        q = unique()
        R.create(q, message_timeout=1, message_expiration=1)
        big = "x" * 200000
        st, body, _ = R.req("POST", R.path(q, "messages"), {"messages": [{"body": big}]})
        assert st == 201, (st, body)
        (mid,) = body["ids"]
        m = R.reserve_one(q, timeout=1)
        assert m["id"] == mid and len(m["body"]) == len(big)
        st, body, _ = R.req("POST", R.path(q, "messages", mid, "touch"),
                            {"reservation_id": m["reservation_id"], "timeout": 1})
        assert st == 200, (st, body)
