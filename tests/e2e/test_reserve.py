"""Reservations: reserve, touch, release, delayed messages, dead letters, and (slow) a
reservation timing out. Long polls are in test_longpoll.py."""
import re
import time

import harness
from harness import Server, slow, unique

srv = None
P = None
RID = re.compile(r"[0-9a-f]{32}")


def setup_module():
    global srv, P
    srv = Server.start()
    P = srv.project("p")


def teardown_module():
    srv.stop()


def reserve(q, payload=None, raw=None):
    return P.req("POST", P.path(q, "reservations"), payload, raw=raw)


def touch(q, mid, payload):
    return P.req("POST", P.path(q, "messages", mid, "touch"), payload)


def release(q, mid, payload):
    return P.req("POST", P.path(q, "messages", mid, "release"), payload)


def delete(q, mid, rid=None):
    return P.req("DELETE", P.path(q, "messages", mid),
                 None if rid is None else {"reservation_id": rid})


# ---- reserve ----

def test_reserve_returns_oldest_message_with_count_and_reservation_id():
    q = unique()
    ids = P.post(q, "first", "second")
    st, body, _ = reserve(q, {"n": 1})
    assert st == 200, (st, body)
    assert set(body) == {"messages"}
    (m,) = body["messages"]
    assert set(m) >= {"id", "body", "reserved_count", "reservation_id"}, m
    assert m["id"] == ids[0] and m["body"] == "first"
    assert m["reserved_count"] == 1
    assert RID.fullmatch(m["reservation_id"]), m


def test_reserve_with_empty_body_reserves_one():
    q = unique()
    ids = P.post(q, "a", "b")
    for raw in ("", "{}"):
        st, body, _ = reserve(q, raw=raw)
        assert st == 200, (raw, st, body)
        assert len(body["messages"]) == 1
    st, body, _ = reserve(q, raw="")
    assert body["messages"] == []
    assert ids


def test_reserve_n_returns_up_to_n_oldest_first():
    q = unique()
    ids = P.post(q, *["m%d" % i for i in range(5)])
    got = P.reserve(q, n=3)
    assert [m["id"] for m in got] == ids[:3]
    got = P.reserve(q, n=100)
    assert [m["id"] for m in got] == ids[3:]
    rids = [m["reservation_id"] for m in got]
    assert len(set(rids)) == len(rids)


def test_reserve_on_empty_queue_returns_empty_list():
    q = unique()
    P.create(q)
    st, body, _ = reserve(q, {"n": 10})
    assert (st, body) == (200, {"messages": []})


def test_reserve_unknown_queue_is_404():
    st, body, _ = reserve(unique(), {})
    assert (st, body) == (404, {"msg": "Queue not found"})


def test_reserved_message_is_not_handed_out_again():
    q = unique()
    P.post(q, "only")
    P.reserve_one(q)
    assert P.reserve(q, n=10) == []
    assert P.peek(q) == []
    assert P.info(q)["size"] == 1


def test_reserve_out_of_range_arguments_are_400():
    q = unique()
    P.post(q, "x")
    for payload in ({"n": 0}, {"n": 101}, {"n": -1}, {"timeout": 29}, {"timeout": 86401},
                    {"timeout": -30}, {"wait": -1}, {"wait": 31}):
        st, body, _ = reserve(q, payload)
        assert st == 400, (payload, st, body)
        assert body["msg"]
    assert P.peek(q) != [], "a refused reserve must not reserve"


def test_reserve_wrong_types_are_400():
    q = unique()
    P.post(q, "x")
    for payload in ({"n": "five"}, {"n": 1.5}, {"timeout": "60"}, {"wait": [1]},
                    {"delete": "yes"}, {"n": {}}):
        st, body, _ = reserve(q, payload)
        assert st == 400, (payload, st, body)
    for raw in ("[]", "5", '"n"', "{bad json"):
        st, body, _ = reserve(q, raw=raw)
        assert st == 400, (raw, st, body)
    assert P.info(q)["size"] == 1 and len(P.peek(q)) == 1


def test_reserve_accepts_boundary_values_and_go_client_zeros():
    q = unique()
    P.post(q, *["m%d" % i for i in range(5)])
    for payload in ({"n": 1, "timeout": 30}, {"n": 1, "timeout": 86400},
                    {"n": 1, "timeout": 60, "wait": 0, "delete": False},     # ReserveN
                    {"n": 1, "timeout": 0, "wait": 0, "delete": True},       # PopN
                    {"n": 100, "wait": 30, "timeout": 0}):
        st, body, _ = reserve(q, payload)
        assert st == 200 and len(body["messages"]) == 1, (payload, st, body)


def test_reserve_with_delete_removes_the_messages():
    q = unique()
    ids = P.post(q, "a", "b", "c")
    st, body, _ = reserve(q, {"n": 2, "delete": True})
    assert st == 200, (st, body)
    assert [m["id"] for m in body["messages"]] == ids[:2]
    assert P.info(q)["size"] == 1
    for m in body["messages"]:
        assert P.get(q, m["id"]) is None
        st, _, _ = delete(q, m["id"], m["reservation_id"])
        assert st == 404
    assert [m["id"] for m in P.peek(q)] == ids[2:]


def test_reserved_count_counts_each_reservation():
    q = unique()
    (mid,) = P.post(q, "x")
    for expected in (1, 2, 3):
        m = P.reserve_one(q)
        assert m["id"] == mid and m["reserved_count"] == expected, m
        P.release(q, mid, m["reservation_id"])
    assert P.get(q, mid)["reserved_count"] == 3


# ---- touch ----

def test_touch_returns_new_reservation_and_invalidates_old():
    q = unique()
    (mid,) = P.post(q, "x")
    old = P.reserve_one(q)["reservation_id"]
    st, body, _ = touch(q, mid, {"reservation_id": old})
    assert st == 200, (st, body)
    assert body["msg"] == "Touched"
    new = body["reservation_id"]
    assert RID.fullmatch(new) and new != old, body
    st, body, _ = delete(q, mid, old)
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    st, body, _ = touch(q, mid, {"reservation_id": old})
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    st, body, _ = delete(q, mid, new)
    assert (st, body) == (200, {"msg": "Deleted"})


def test_touch_counts_as_a_reservation():
    q = unique()
    (mid,) = P.post(q, "x")
    rid = P.reserve_one(q)["reservation_id"]
    st, body, _ = touch(q, mid, {"reservation_id": rid, "timeout": 120})
    assert st == 200, (st, body)
    assert P.get(q, mid)["reserved_count"] == 2
    assert P.reserve(q) == [], "a touched message stays reserved"


def test_touch_without_reservation_id_is_400():
    q = unique()
    (mid,) = P.post(q, "x")
    P.reserve_one(q)
    for payload in (None, {}, {"reservation_id": ""}):
        st, body, _ = touch(q, mid, payload)
        assert st == 400, (payload, st, body)


def test_touch_with_wrong_reservation_id_is_403():
    q = unique()
    (mid,) = P.post(q, "x")
    rid = P.reserve_one(q)["reservation_id"]
    st, body, _ = touch(q, mid, {"reservation_id": "0123456789abcdef0123456789abcdef"})
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    st, body, _ = delete(q, mid, rid)
    assert st == 200, "a refused touch leaves the reservation as it was"


def test_touch_of_message_that_is_not_reserved_is_403():
    q = unique()
    (mid,) = P.post(q, "x")
    m = P.reserve_one(q)
    P.release(q, mid, m["reservation_id"])
    st, body, _ = touch(q, mid, {"reservation_id": m["reservation_id"]})
    assert (st, body) == (403, {"msg": "Reservation timed out"})


def test_touch_timeout_out_of_range_is_400():
    q = unique()
    (mid,) = P.post(q, "x")
    rid = P.reserve_one(q)["reservation_id"]
    for t in (29, 86401, "60"):
        st, body, _ = touch(q, mid, {"reservation_id": rid, "timeout": t})
        assert st == 400, (t, st, body)


def test_touch_unknown_message_is_404():
    q = unique()
    P.post(q, "x")
    st, body, _ = touch(q, "31337", {"reservation_id": "a" * 32})
    assert (st, body) == (404, {"msg": "Message not found"})


# ---- release ----

def test_release_answers_released_and_puts_message_at_front():
    q = unique()
    ids = P.post(q, "first", "second", "third")
    first = P.reserve_one(q)
    assert first["id"] == ids[0]
    st, body, _ = release(q, ids[0], {"reservation_id": first["reservation_id"]})
    assert (st, body) == (200, {"msg": "Released"})
    second = P.reserve_one(q)
    assert second["id"] == ids[0]  # released goes first again
    # a message reserved later than older ready ones still goes to the front
    third = P.reserve_one(q)
    assert third["id"] == ids[1]
    P.release(q, ids[1], third["reservation_id"])
    assert [m["id"] for m in P.peek(q)] == [ids[1], ids[2]]


def test_release_invalidates_the_reservation_id():
    q = unique()
    (mid,) = P.post(q, "x")
    rid = P.reserve_one(q)["reservation_id"]
    P.release(q, mid, rid)
    st, body, _ = release(q, mid, {"reservation_id": rid})
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    again = P.reserve_one(q)
    assert again["reservation_id"] != rid
    st, body, _ = delete(q, mid, rid)
    assert (st, body) == (403, {"msg": "Reservation timed out"})


def test_release_with_delay_hides_message_until_delay_passes():
    q = unique()
    ids = P.post(q, "released", "other")
    m = P.reserve_one(q)
    st, body, _ = release(q, ids[0], {"reservation_id": m["reservation_id"], "delay": 1})
    assert (st, body) == (200, {"msg": "Released"})
    assert [x["id"] for x in P.peek(q)] == [ids[1]]
    assert P.info(q)["size"] == 2
    time.sleep(1.2)
    got = P.reserve(q, n=2)
    assert [x["id"] for x in got] == ids, "after its delay it is back at the front"


def test_release_without_reservation_id_is_400():
    q = unique()
    (mid,) = P.post(q, "x")
    P.reserve_one(q)
    for payload in (None, {}, {"reservation_id": ""}, {"delay": 0}):
        st, body, _ = release(q, mid, payload)
        assert st == 400, (payload, st, body)


def test_release_with_wrong_reservation_id_is_403():
    q = unique()
    (mid,) = P.post(q, "x")
    rid = P.reserve_one(q)["reservation_id"]
    st, body, _ = release(q, mid, {"reservation_id": "f" * 32})
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    assert P.reserve(q) == []
    assert delete(q, mid, rid)[0] == 200


def test_release_delay_out_of_range_is_400():
    q = unique()
    (mid,) = P.post(q, "x")
    rid = P.reserve_one(q)["reservation_id"]
    for d in (-1, 604801, "1"):
        st, body, _ = release(q, mid, {"reservation_id": rid, "delay": d})
        assert st == 400, (d, st, body)
    st, body, _ = release(q, mid, {"reservation_id": rid, "delay": 604800})
    assert st == 200, (st, body)


# ---- delayed posts ----

def test_delayed_message_is_counted_but_hidden_until_the_delay_passes():
    q = unique()
    (mid,) = P.post(q, "later", delay=1)
    posted = time.monotonic()
    assert P.peek(q) == []
    assert P.reserve(q) == []
    assert P.info(q)["size"] == 1
    assert P.get(q, mid)["body"] == "later"
    time.sleep(max(0, 1.2 - (time.monotonic() - posted)))
    m = P.reserve_one(q)
    assert m["id"] == mid and m["reserved_count"] == 1


# ---- dead letter ----

def test_message_moves_to_dead_letter_queue_after_max_reservations():
    q, dlq = unique(), unique("dlq")
    P.create(q, dead_letter={"queue_name": dlq, "max_reservations": 2})
    (mid,) = P.post(q, "poison")
    (other,) = P.post(q, "healthy")
    for count in (1, 2):
        m = P.reserve_one(q)
        assert m["id"] == mid and m["reserved_count"] == count, m
        P.release(q, mid, m["reservation_id"])
    assert P.req("GET", P.path(dlq))[0] == 404, "not moved before the next reserve"
    # reserved twice: the next reserve moves it instead of returning it
    got = P.reserve(q, n=1)
    assert [m["id"] for m in got] == [other], got
    assert P.get(q, mid) is None
    st, body, _ = P.req("GET", P.path(q, "messages", mid))
    assert (st, body) == (404, {"msg": "Message not found"})
    moved = P.get(dlq, mid)
    assert (moved["id"], moved["body"], moved["reserved_count"]) == (mid, "poison", 2), moved
    info = P.info(dlq)
    assert info["size"] == 1 and info["type"] == "pull", info
    assert P.info(q)["size"] == 1  # only "healthy", reserved
    again = P.reserve_one(dlq)
    assert again["id"] == mid and again["reserved_count"] == 3


def test_touch_counts_toward_dead_letter_max_reservations():
    q, dlq = unique(), unique("dlq")
    P.create(q, dead_letter={"queue_name": dlq, "max_reservations": 2})
    (mid,) = P.post(q, "x")
    m = P.reserve_one(q)
    st, body, _ = touch(q, mid, {"reservation_id": m["reservation_id"]})
    assert st == 200, (st, body)
    P.release(q, mid, body["reservation_id"])
    assert P.reserve(q) == []
    assert P.get(dlq, mid)["reserved_count"] == 2


def test_peek_and_get_never_move_messages_to_dead_letter():
    q, dlq = unique(), unique("dlq")
    P.create(q, dead_letter={"queue_name": dlq, "max_reservations": 1})
    (mid,) = P.post(q, "x")
    m = P.reserve_one(q)
    P.release(q, mid, m["reservation_id"])
    assert [x["id"] for x in P.peek(q)] == [mid]
    assert P.get(q, mid)["reserved_count"] == 1
    assert P.req("GET", P.path(dlq))[0] == 404


def test_reserve_with_delete_also_dead_letters_first():
    q, dlq = unique(), unique("dlq")
    P.create(q, dead_letter={"queue_name": dlq, "max_reservations": 1})
    (mid,) = P.post(q, "x")
    m = P.reserve_one(q)
    P.release(q, mid, m["reservation_id"])
    assert P.reserve(q, n=1, delete=True) == []
    assert P.get(dlq, mid)["body"] == "x"


# ---- reservation timeout (the only real-time one; the rest is unit-tested) ----

@slow
def test_reservation_that_times_out_is_reservable_again_and_old_id_gets_403():
    q = unique()
    ids = P.post(q, "times out", "newer")
    m = P.reserve_one(q, timeout=30)
    assert m["id"] == ids[0]
    reserved_at = time.monotonic()
    time.sleep(28)
    assert [x["id"] for x in P.peek(q)] == [ids[1]], "still reserved before 30 s"
    time.sleep(max(0, 30.5 - (time.monotonic() - reserved_at)))
    deadline = time.monotonic() + 3
    while not any(x["id"] == ids[0] for x in P.peek(q)) and time.monotonic() < deadline:
        time.sleep(0.1)
    got = P.reserve(q, n=2)
    [again] = [x for x in got if x["id"] == ids[0]]
    if not harness.TEST_PG:  # PostgreSQL: back by its visibility time (docs/scale-out.md)
        assert got[0]["id"] == ids[0], "a timed-out message goes back to the front"
    assert again["reserved_count"] == 2
    assert again["reservation_id"] != m["reservation_id"]
    for call in (lambda: delete(q, ids[0], m["reservation_id"]),
                 lambda: touch(q, ids[0], {"reservation_id": m["reservation_id"]}),
                 lambda: release(q, ids[0], {"reservation_id": m["reservation_id"]})):
        st, body, _ = call()
        assert (st, body) == (403, {"msg": "Reservation timed out"})
    assert delete(q, ids[0], again["reservation_id"])[0] == 200
