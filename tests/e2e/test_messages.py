"""Messages: post (and webhook post), peek, get by id, delete one, delete many, clear;
bodies, delays and push headers with their limits."""
import re
import time

from harness import Server, slow, unique

srv = None
P = None


def setup_module():
    global srv, P
    srv = Server.start()
    P = srv.project("p")


def teardown_module():
    srv.stop()


def post(q, messages):
    return P.req("POST", P.path(q, "messages"), {"messages": messages})


# ---- post ----

def test_post_answers_201_with_string_ids_in_request_order_increasing():
    q = unique()
    st, body, hdrs = post(q, [{"body": "first"}, {"body": "second"}, {"body": "third"}])
    assert st == 201, (st, body)
    assert hdrs["content-type"] == "application/json"
    assert body["msg"] == "Messages put on queue."
    ids = body["ids"]
    assert len(ids) == 3
    for i in ids:
        assert isinstance(i, str) and re.fullmatch(r"[0-9]+", i), ids
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)
    assert len(set(ids)) == 3
    later = P.post(q, "fourth")
    assert int(later[0]) > int(ids[-1])
    assert [(m["id"], m["body"]) for m in P.peek(q)] == list(
        zip(ids + later, ["first", "second", "third", "fourth"]))


def test_post_creates_missing_queue_with_defaults():
    q = unique()
    assert P.req("GET", P.path(q))[0] == 404
    P.post(q, "hello")
    info = P.info(q)
    assert info["type"] == "pull" and info["message_timeout"] == 60, info
    assert info["size"] == 1


def test_post_accepts_1_to_100_messages():
    q = unique()
    st, body, _ = post(q, [{"body": "m%d" % i} for i in range(100)])
    assert st == 201 and len(body["ids"]) == 100, (st, body)
    for messages in ([], [{"body": "m"}] * 101):
        st, body, _ = post(unique(), messages)
        assert st == 400, (len(messages), st, body)
        assert body["msg"]


def test_post_without_messages_array_is_400():
    for payload in ({}, {"messages": "body"}, {"messages": {"body": "x"}}, {"body": "x"},
                    {"messages": ["plain string"]}, {"messages": [None]}):
        st, body, _ = P.req("POST", P.path(unique(), "messages"), payload)
        assert st == 400, (payload, st, body)


def test_post_body_must_be_a_non_empty_string():
    for msg in ({}, {"body": ""}, {"body": None}, {"body": 5}, {"body": {"a": 1}},
                {"body": ["x"]}, {"body": True}):
        q = unique()
        st, body, _ = post(q, [msg])
        assert st == 400, (msg, st, body)
        assert body["msg"]


def test_rejected_post_stores_none_of_its_messages():
    q = unique()
    P.create(q)
    st, body, _ = post(q, [{"body": "good"}, {"body": ""}, {"body": "also good"}])
    assert st == 400, (st, body)
    info = P.info(q)
    assert info["size"] == 0 and info["total_messages"] == 0, info


def test_post_body_of_64KiB_is_accepted_and_larger_is_413():
    q = unique()
    st, body, _ = post(q, [{"body": "x" * 65536}])
    assert st == 201, (st, body)
    st, body, _ = post(q, [{"body": "x" * 65537}])
    assert st == 413, (st, body)
    assert body["msg"]
    # the limit is on bytes, not characters: 21846 three-byte characters are 65538 bytes
    st, body, _ = post(q, [{"body": "\u4e2d" * 21846}])
    assert st == 413, (st, body)
    assert P.info(q)["total_messages"] == 1


def test_post_delay_accepts_0_to_604800():
    q = unique()
    for good in (0, 1, 604800):
        st, body, _ = post(q, [{"body": "d", "delay": good}])
        assert st == 201, (good, st, body)
    for bad in (-1, 604801, "5", 1.5):
        st, body, _ = post(q, [{"body": "d", "delay": bad}])
        assert st == 400, (bad, st, body)


def test_post_push_headers_within_limits_are_accepted():
    q = unique()
    headers = {"X-A": "1", "X-B": "two", "N" * 64: "v" * 1024, "X-D": "d", "X-E": "e"}
    st, body, _ = post(q, [{"body": "x", "push_headers": headers}])
    assert st == 201, (st, body)


def test_post_push_headers_beyond_limits_are_400():
    bad_headers = [
        {"H%d" % i: "v" for i in range(6)},              # more than 5
        {"N" * 65: "v"},                                 # name over 64 bytes
        {"": "v"},                                       # empty name
        {"X-A": ""},                                     # empty value
        {"X-A": "v" * 1025},                             # value over 1 KiB
        {"X-A": 5},                                      # value not a string
        "X-A: 1",                                        # not an object
    ]
    for reserved in ("Content-Type", "User-Agent", "Iron-Message-Id", "Iron-Reservation-Id",
                     "Iron-Subscriber-Name", "Iron-Subscriber-Message-Url", "content-type"):
        bad_headers.append({reserved: "v"})
    for headers in bad_headers:
        q = unique()
        st, body, _ = post(q, [{"body": "x", "push_headers": headers}])
        assert st == 400, (headers, st, body)


def test_post_ignores_legacy_and_unknown_message_fields():
    q = unique()
    st, body, _ = post(q, [{"body": "php", "timeout": 120, "expires_in": 3600, "colour": "red"}])
    assert st == 201, (st, body)
    st, body, _ = P.req("POST", P.path(q, "messages"),
                        {"messages": [{"body": "x"}], "extra": {"y": 1}})
    assert st == 201, (st, body)
    assert P.info(q)["size"] == 2


def test_unicode_and_nul_bodies_round_trip_exactly():
    q = unique()
    bodies = ["h\u00e9llo w\u00f6rld", "\u4e2d\u6587 \U0001f600 emoji", "nul\u0000inside\u0000",
              "\u0000", "quotes \" and \\ backslash\n\ttabs", "{\"json\": [1, 2]}",
              "\u2028\u2029 line separators", "x" * 1000]
    ids = P.post(q, *bodies)
    for i, b in zip(ids, bodies):
        assert P.get(q, i)["body"] == b
    assert [m["body"] for m in P.peek(q)] == bodies
    got = P.reserve(q, n=100)
    assert [m["body"] for m in got] == bodies


def test_total_messages_counts_every_post():
    q = unique()
    P.post(q, "a")
    P.post(q, "b", "c")
    P.post(q, "d", delay=100)
    msg = P.reserve_one(q, delete=True)
    assert msg["body"] == "a"
    info = P.info(q)
    assert info["total_messages"] == 4 and info["size"] == 3, info


# ---- webhook ----

def test_webhook_stores_body_as_is_and_answers_201():
    q = unique()
    raw = '{"not": "parsed", "n": 1}\n  trailing'
    st, body, _ = P.req("POST", P.path(q, "webhook"), raw=raw,
                        headers={"Content-Type": "text/plain"})
    assert st == 201, (st, body)
    assert body["msg"] == "Messages put on queue."
    assert len(body["ids"]) == 1 and body["ids"][0].isdigit()
    assert P.get(q, body["ids"][0])["body"] == raw
    assert P.info(q)["total_messages"] == 1


def test_webhook_creates_the_queue_and_keeps_utf8():
    q = unique()
    text = "caf\u00e9 \u4e2d \U0001f600"
    st, body, _ = P.req("POST", P.path(q, "webhook"), raw=text.encode("utf-8"))
    assert st == 201, (st, body)
    assert P.reserve_one(q)["body"] == text


def test_webhook_with_empty_body_is_400():
    q = unique()
    st, body, _ = P.req("POST", P.path(q, "webhook"), raw=b"")
    assert st == 400, (st, body)
    assert body["msg"]


def test_webhook_with_invalid_utf8_is_400():
    q = unique()
    for raw in (b"\xff\xfe", b"ok then \xc3", b"\xed\xa0\x80"):
        st, body, _ = P.req("POST", P.path(q, "webhook"), raw=raw)
        assert st == 400, (raw, st, body)


def test_webhook_body_over_64KiB_is_413():
    q = unique()
    st, body, _ = P.req("POST", P.path(q, "webhook"), raw=b"w" * 65536)
    assert st == 201, (st, body)
    st, body, _ = P.req("POST", P.path(q, "webhook"), raw=b"w" * 65537)
    assert st == 413, (st, body)


# ---- peek ----

def test_peek_returns_ready_messages_in_order_without_reservation_id():
    q = unique()
    ids = P.post(q, "one", "two", "three")
    st, body, _ = P.req("GET", P.path(q, "messages") + "?n=10")
    assert st == 200, (st, body)
    msgs = body["messages"]
    assert [m["id"] for m in msgs] == ids
    for m in msgs:
        assert set(m) >= {"id", "body", "reserved_count"} and "reservation_id" not in m, m
        assert m["reserved_count"] == 0
    st, body, _ = P.req("GET", P.path(q, "messages") + "?n=2")
    assert [m["id"] for m in body["messages"]] == ids[:2]


def test_peek_without_n_returns_one_message():
    q = unique()
    ids = P.post(q, "a", "b")
    st, body, _ = P.req("GET", P.path(q, "messages"))
    assert st == 200 and [m["id"] for m in body["messages"]] == ids[:1], body


def test_peek_does_not_change_anything():
    q = unique()
    ids = P.post(q, "a", "b")
    for _ in range(3):
        P.peek(q)
    info = P.info(q)
    assert info["size"] == 2
    got = P.reserve(q, n=2)
    assert [m["id"] for m in got] == ids
    assert [m["reserved_count"] for m in got] == [1, 1]


def test_peek_shows_only_ready_messages():
    q = unique()
    ready = P.post(q, "ready-1", "reserved", "ready-2")
    P.post(q, "delayed", delay=60)
    # reserve takes the oldest, so peel "ready-1" off, reserve "reserved", put "ready-1" back
    first = P.reserve_one(q)
    second = P.reserve_one(q)
    assert second["id"] == ready[1]
    P.release(q, first["id"], first["reservation_id"])
    assert [m["body"] for m in P.peek(q)] == ["ready-1", "ready-2"]


def test_peek_of_empty_queue_is_empty_list():
    q = unique()
    P.create(q)
    st, body, _ = P.req("GET", P.path(q, "messages") + "?n=5")
    assert (st, body) == (200, {"messages": []})


def test_peek_with_bad_n_is_400():
    q = unique()
    P.post(q, "x")
    for bad in ("0", "101", "-1", "abc", "1.5", "2x"):
        st, body, _ = P.req("GET", P.path(q, "messages") + "?n=" + bad)
        assert st == 400, (bad, st, body)
    st, body, _ = P.req("GET", P.path(q, "messages") + "?n=100")
    assert st == 200, (st, body)


def test_peek_unknown_queue_is_404():
    st, body, _ = P.req("GET", P.path(unique(), "messages") + "?n=1")
    assert (st, body) == (404, {"msg": "Queue not found"})


# ---- get by id ----

def test_get_message_by_id_in_any_state():
    q = unique()
    ready, reserved = P.post(q, "ready", "reserved")
    (delayed,) = P.post(q, "delayed", delay=60)
    P.reserve_one(q)  # "ready" is the oldest
    msg = P.get(q, ready)
    assert msg["body"] == "ready" and msg["reserved_count"] == 1, msg
    assert "reservation_id" not in msg, "get never hands out the reservation"
    st, body, _ = P.req("GET", P.path(q, "messages", reserved))
    assert st == 200, (st, body)
    assert set(body) == {"message"}
    assert body["message"]["id"] == reserved and body["message"]["body"] == "reserved"
    assert body["message"]["reserved_count"] == 0
    assert P.get(q, delayed)["body"] == "delayed"


def test_get_unknown_malformed_or_foreign_message_id_is_404_message_not_found():
    q, other = unique(), unique()
    P.post(q, "mine")
    (foreign,) = P.post(other, "other queue's")
    for mid in ("1", "99999999999999999999", foreign, "abc", "12ab", "-5", "0",
                "123456789012345678901234567890"):
        st, body, _ = P.req("GET", P.path(q, "messages", mid))
        assert (st, body) == (404, {"msg": "Message not found"}), (mid, st, body)


def test_get_message_of_unknown_queue_is_404():
    st, body, _ = P.req("GET", P.path(unique(), "messages", "12345"))
    assert st == 404, (st, body)


# ---- delete one ----

def test_delete_reserved_message_needs_its_current_reservation_id():
    q = unique()
    (mid,) = P.post(q, "x")
    rid = P.reserve_one(q)["reservation_id"]
    path = P.path(q, "messages", mid)
    st, body, _ = P.req("DELETE", path)
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    st, body, _ = P.req("DELETE", path, {"reservation_id": ""})
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    st, body, _ = P.req("DELETE", path, {"reservation_id": "0" * 32})
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    st, body, _ = P.req("DELETE", path, {"reservation_id": "not-hex"})
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    assert P.get(q, mid) is not None
    st, body, _ = P.req("DELETE", path, {"reservation_id": rid})
    assert (st, body) == (200, {"msg": "Deleted"})
    assert P.get(q, mid) is None
    assert P.info(q)["size"] == 0


def test_delete_unreserved_message_by_id_alone():
    q = unique()
    ids = P.post(q, "no body", "empty object", "empty rid", "delayed")
    st, body, _ = P.req("DELETE", P.path(q, "messages", ids[0]))
    assert (st, body) == (200, {"msg": "Deleted"})
    st, body, _ = P.req("DELETE", P.path(q, "messages", ids[1]), {})
    assert (st, body) == (200, {"msg": "Deleted"})
    st, body, _ = P.req("DELETE", P.path(q, "messages", ids[2]), {"reservation_id": ""})
    assert (st, body) == (200, {"msg": "Deleted"})
    (delayed,) = P.post(q, "delayed", delay=60)
    st, body, _ = P.req("DELETE", P.path(q, "messages", delayed), {"reservation_id": None})
    assert (st, body) == (200, {"msg": "Deleted"})
    assert [m["id"] for m in P.peek(q)] == [ids[3]]


def test_delete_unreserved_message_with_a_reservation_id_is_403():
    q = unique()
    (mid,) = P.post(q, "x")
    msg = P.reserve_one(q)
    P.release(q, mid, msg["reservation_id"])
    st, body, _ = P.req("DELETE", P.path(q, "messages", mid),
                        {"reservation_id": msg["reservation_id"]})
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    assert P.get(q, mid) is not None


def test_delete_unknown_message_is_404():
    q = unique()
    P.post(q, "x")
    st, body, _ = P.req("DELETE", P.path(q, "messages", "424242"))
    assert (st, body) == (404, {"msg": "Message not found"})
    st, body, _ = P.req("DELETE", P.path(unique(), "messages", "424242"))
    assert st == 404, (st, body)


def test_delete_accepts_subscriber_name_on_pull_queue():
    q = unique()
    (mid,) = P.post(q, "x")
    st, body, _ = P.req("DELETE", P.path(q, "messages", mid), {"subscriber_name": ""})
    assert (st, body) == (200, {"msg": "Deleted"})


def test_deleted_message_cannot_be_reserved_or_deleted_again():
    q = unique()
    (mid,) = P.post(q, "x")
    assert P.req("DELETE", P.path(q, "messages", mid))[0] == 200
    assert P.reserve(q) == []
    assert P.req("DELETE", P.path(q, "messages", mid))[0] == 404


# ---- delete many ----

def delete_many(q, payload):
    return P.req("DELETE", P.path(q, "messages"), payload)


def test_batch_delete_with_reservation_ids():
    q = unique()
    ids = P.post(q, "a", "b", "c")
    got = P.reserve(q, n=2)
    st, body, _ = delete_many(q, {"ids": [{"id": m["id"], "reservation_id": m["reservation_id"]}
                                          for m in got]})
    assert (st, body) == (200, {"msg": "Deleted"})
    assert [m["id"] for m in P.peek(q)] == ids[2:]
    assert P.info(q)["size"] == 1


def test_batch_delete_accepts_objects_bare_string_ids_and_numeric_ids():
    q = unique()
    ids = P.post(q, "a", "b", "c", "d", "e")
    st, body, _ = delete_many(q, {"ids": [{"id": ids[0]}, {"id": ids[1], "reservation_id": ""}]})
    assert (st, body) == (200, {"msg": "Deleted"})
    st, body, _ = delete_many(q, {"ids": [ids[2]]})
    assert (st, body) == (200, {"msg": "Deleted"})
    st, body, _ = delete_many(q, {"ids": [int(ids[3])]})
    assert (st, body) == (200, {"msg": "Deleted"})
    assert [m["id"] for m in P.peek(q)] == [ids[4]]


def test_batch_delete_with_an_unknown_id_deletes_nothing():
    q = unique()
    ids = P.post(q, "a", "b")
    st, body, _ = delete_many(q, {"ids": [{"id": ids[0]}, {"id": "777"}, {"id": ids[1]}]})
    assert (st, body) == (404, {"msg": "Message not found"})
    assert [m["id"] for m in P.peek(q)] == ids


def test_batch_delete_with_a_bad_reservation_deletes_nothing():
    q = unique()
    ids = P.post(q, "a", "b", "c")
    got = P.reserve(q, n=2)
    st, body, _ = delete_many(q, {"ids": [
        {"id": got[0]["id"], "reservation_id": got[0]["reservation_id"]},
        {"id": got[1]["id"], "reservation_id": "f" * 32},
        {"id": ids[2]}]})
    assert (st, body) == (403, {"msg": "Reservation timed out"})
    for i in ids:
        assert P.get(q, i) is not None
    # a reserved message listed without its reservation is refused the same way
    st, body, _ = delete_many(q, {"ids": [{"id": ids[2]}, {"id": got[0]["id"]}]})
    assert st == 403, (st, body)
    assert P.info(q)["size"] == 3


def test_batch_delete_of_message_in_another_queue_is_404():
    q, other = unique(), unique()
    (mine,) = P.post(q, "a")
    (theirs,) = P.post(other, "b")
    st, body, _ = delete_many(q, {"ids": [{"id": mine}, {"id": theirs}]})
    assert (st, body) == (404, {"msg": "Message not found"})
    assert P.get(q, mine) is not None and P.get(other, theirs) is not None


def test_batch_delete_with_empty_or_more_than_100_ids_is_400():
    q = unique()
    ids = P.post(q, *["m%d" % i for i in range(100)])
    st, body, _ = delete_many(q, {"ids": []})
    assert st == 400, (st, body)
    st, body, _ = delete_many(q, {"ids": [{"id": i} for i in ids] + [{"id": ids[0]}]})
    assert st == 400, (st, body)
    assert P.info(q)["size"] == 100
    st, body, _ = delete_many(q, {"ids": [{"id": i} for i in ids]})
    assert (st, body) == (200, {"msg": "Deleted"})
    assert P.info(q)["size"] == 0


def test_batch_delete_with_malformed_entries_is_400():
    q = unique()
    (mid,) = P.post(q, "a")
    for payload in ({"ids": "1"}, {"ids": [{"no_id": mid}]}, {"ids": [{"id": "abc"}]},
                    {"ids": [None]}, {"ids": [{"id": mid, "reservation_id": 5}]},
                    {"ids": [1.5]}):
        st, body, _ = delete_many(q, payload)
        assert st == 400, (payload, st, body)
    assert P.get(q, mid) is not None


def test_delete_without_ids_clears_the_queue_in_every_state():
    q = unique()
    P.post(q, "ready", "reserved")
    P.post(q, "delayed", delay=60)
    P.reserve_one(q)
    st, body, _ = delete_many(q, {})
    assert (st, body) == (200, {"msg": "Cleared"})
    info = P.info(q)
    assert info["size"] == 0 and info["total_messages"] == 3, info
    assert P.reserve(q) == []


def test_clear_with_empty_body_clears_too():
    q = unique()
    P.post(q, "a", "b")
    st, body, _ = P.req("DELETE", P.path(q, "messages"))
    assert (st, body) == (200, {"msg": "Cleared"})
    assert P.info(q)["size"] == 0


def test_clear_unknown_queue_is_404():
    st, body, _ = delete_many(unique(), {})
    assert (st, body) == (404, {"msg": "Queue not found"})


# ---- expiration (real time: the shortest allowed is 60 s) ----

@slow
def test_messages_disappear_after_the_queue_message_expiration_in_any_state():
    q = unique()
    P.create(q, message_expiration=60)
    ready, reserved = P.post(q, "ready", "reserved")
    (delayed,) = P.post(q, "delayed", delay=600)
    posted_at = time.monotonic()
    P.reserve_one(q, timeout=3600)  # "ready" is the oldest
    m = P.reserve_one(q, timeout=3600)
    assert m["id"] == reserved
    time.sleep(55)
    assert P.info(q)["size"] == 3, "nothing expires early"
    time.sleep(max(0, 61 - (time.monotonic() - posted_at)))
    info = P.info(q)
    assert info["size"] == 0 and info["total_messages"] == 3, info
    for mid in (ready, reserved, delayed):
        assert P.get(q, mid) is None, mid
    st, body, _ = P.req("DELETE", P.path(q, "messages", reserved),
                        {"reservation_id": m["reservation_id"]})
    assert (st, body) == (404, {"msg": "Message not found"})
