"""The test kit's push sink, push log and failing push subscribers (api/admin_push.c): push
queues whose subscribers are anvil's own /admin/sinks/{name} (so the pusher talks to its own
server over loopback, in the same event loop), sinks told to answer 500, 202 or slowly,
every attempt in GET /admin/push-log, subscribers marked as failing, retries driven by the
virtual clock instead of sleeping, and bad inputs. Both back ends, except what needs the
virtual clock (embedded only)."""

BACKENDS = ("sqlite", "postgres")
import http.client
import json
import re
import signal
import socket
import threading
import time
import urllib.parse

from harness import Server, sqlite_only, unique, wait_for

srv = None
P = None


def setup_module():
    global srv, P
    srv = Server.start(["--push-timeout", "1"])
    P = srv.project("p")


def teardown_module():
    srv.stop()



def sink_url(name, tail=""):
    return "http://127.0.0.1:%d/admin/sinks/%s%s" % (srv.port, name, tail)


def received(sink, after=0):
    st, body, _ = srv.req("GET", "/admin/sinks/%s/requests?after=%d" % (sink, after))
    assert st == 200, (st, body)
    return body["requests"]


def configure(sink, **config):
    st, body, _ = srv.req("PUT", "/admin/sinks/%s/config" % sink, config)
    assert st == 200, (st, body)
    return body


def attempts(**filters):
    query = urllib.parse.urlencode(filters)
    st, body, _ = srv.req("GET", "/admin/push-log" + ("?" + query if query else ""))
    assert st == 200, (st, body)
    return body["attempts"]


def push_queue(subscribers, **push):
    """A push queue (multicast unless type says otherwise) with subscribers [(name, url)]."""
    q = unique()
    kind = push.pop("type", "multicast")
    push["subscribers"] = [{"name": n, "url": u} for n, u in subscribers]
    st, body, _ = P.req("PUT", P.path(q), {"queue": {"type": kind, "push": push}})
    assert st == 200, (st, body)
    return q


def statuses(q, msg_id):
    st, body, _ = P.req("GET", P.path(q, "messages", msg_id, "subscribers"))
    assert st == 200, (st, body)
    return body["subscribers"]


def gone(q, msg_id):
    return P.get(q, msg_id) is None


class FrozenClock:
    """Freezes the engine clock for the block (the server is shared: always unfrozen after)."""

    def __enter__(self):
        st, body, _ = srv.req("POST", "/admin/clock/freeze")
        assert st == 200 and body["mode"] == "frozen", (st, body)
        return self

    def advance(self, seconds):
        st, body, _ = srv.req("POST", "/admin/clock/advance", {"seconds": seconds})
        assert st == 200, (st, body)

    def __exit__(self, *exc):
        srv.req("POST", "/admin/clock/unfreeze")
        return False


def raw_request(method, path, body=b"", headers=None, timeout=10):
    """(status, content type, body bytes) without the harness's JSON checks."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


# ---- the sink as a push subscriber ----

def test_multicast_queue_whose_subscribers_are_sinks_delivers_exactly_the_posted_bodies():
    a, b = unique("sink"), unique("sink")
    q = push_queue([("a", sink_url(a)), ("b", sink_url(b, "/hook/deeper"))])
    bodies = ['{"hello": "push"}', "plain text, \u00e9t\u00e9 \u2603"]
    ids = P.post(q, *bodies)
    assert wait_for(lambda: len(received(a)) == 2 and len(received(b)) == 2)
    assert wait_for(lambda: all(gone(q, i) for i in ids))
    for sink, name, path in ((a, "a", "/admin/sinks/" + a), (b, "b", "/admin/sinks/%s/hook/deeper" % b)):
        got = received(sink)
        assert sorted(r["body"] for r in got) == sorted(bodies), got
        assert [r["seq"] for r in got] == [1, 2]
        for r in got:
            h = r["headers"]
            assert r["method"] == "POST" and r["path"] == path, r
            assert r["status"] == 200 and r["truncated"] is False
            assert h["Iron-Message-Id"] in ids, h
            assert h["Iron-Subscriber-Name"] == name
            assert re.fullmatch(r"[0-9a-f]{32}", h["Iron-Reservation-Id"]), h
            assert h["Content-Type"] == "text/plain; encoding=utf-8"
            assert h["User-Agent"] == "IronMQ Pusherd"
            url = h["Iron-Subscriber-Message-Url"]
            assert "/3/projects/p/queues/%s/messages/%s?" % (q, h["Iron-Message-Id"]) in url, url
            assert r["body_bytes"] == len(r["body"].encode("utf-8"))
    time.sleep(0.2)
    assert len(received(a)) == 2 and len(received(b)) == 2  # delivered ones are not sent again
    log = attempts(queue=q)
    assert len(log) == 4 and all(e["status"] == 200 and e["result"] == "delivered" for e in log), log
    assert all(e["try_no"] == 1 and e["faked"] is False for e in log), log


def test_unicast_queue_sends_each_message_to_one_sink_only():
    s = unique("sink")
    q = push_queue([("one", sink_url(s, "/one")), ("two", sink_url(s, "/two"))],
                   type="unicast")
    ids = P.post(q, "m1", "m2", "m3", "m4")
    assert wait_for(lambda: len(received(s)) == 4 and all(gone(q, i) for i in ids))
    got = received(s)
    assert sorted(r["body"] for r in got) == ["m1", "m2", "m3", "m4"]
    assert sorted(r["headers"]["Iron-Message-Id"] for r in got) == sorted(ids)
    # round robin: both subscribers got some
    assert {r["path"].rsplit("/", 1)[1] for r in got} == {"one", "two"}, got


def test_a_sink_url_is_accepted_as_a_subscriber_of_any_queue():
    q = push_queue([("s", sink_url("anything"))])
    info = P.info(q)
    assert info["push"]["subscribers"][0]["url"] == sink_url("anything")


@sqlite_only
def test_sink_answering_500_then_200_is_retried_on_the_virtual_clock():
    s = unique("sink")
    configure(s, statuses=[500, 500])  # then its standing answer, 200
    q = push_queue([("s", sink_url(s))], retries=3, retries_delay=60)
    with FrozenClock() as clock:
        [msg_id] = P.post(q, "try me")
        assert wait_for(lambda: len(attempts(message_id=msg_id)) == 1)
        [st] = statuses(q, msg_id)
        assert st["status_code"] == 500 and st["tries"] == 1 and st["retries_remaining"] == 2, st
        time.sleep(0.3)  # the clock stands still: no retry comes by waiting
        assert len(attempts(message_id=msg_id)) == 1
        clock.advance(61)
        assert wait_for(lambda: len(attempts(message_id=msg_id)) == 2)
        [st] = statuses(q, msg_id)
        assert st["tries"] == 2 and st["status_code"] == 500, st
        clock.advance(61)
        assert wait_for(lambda: gone(q, msg_id))
    log = attempts(message_id=msg_id)
    assert [(e["try_no"], e["status"], e["result"]) for e in log] == \
        [(1, 500, "failed"), (2, 500, "failed"), (3, 200, "delivered")], log
    assert log[1]["at_ms"] - log[0]["at_ms"] >= 60000 and log[2]["at_ms"] - log[1]["at_ms"] >= 60000
    assert all(e["project"] == "p" and e["queue"] == q and e["subscriber"] == "s"
               and e["url"] == sink_url(s) for e in log)
    got = received(s)
    assert [r["status"] for r in got] == [500, 500, 200]
    assert len({r["headers"]["Iron-Reservation-Id"] for r in got}) == 3  # new for every try
    assert configure(s) == {"status": 200, "delay_ms": 0}


def test_sink_answering_202_holds_the_message_until_the_subscriber_deletes_it():
    s = unique("sink")
    configure(s, status=202, count=1)
    q = push_queue([("s", sink_url(s))], retries=3, retries_delay=60)
    [msg_id] = P.post(q, "hold me")
    assert wait_for(lambda: len(received(s)) == 1)
    assert wait_for(lambda: statuses(q, msg_id)[0]["status"] == "reserved")
    [st] = statuses(q, msg_id)
    assert st["status_code"] == 202, st
    assert not gone(q, msg_id)
    [e] = attempts(message_id=msg_id)
    assert e["status"] == 202 and e["result"] == "reserved", e
    headers = received(s)[0]["headers"]
    url = urllib.parse.urlsplit(headers["Iron-Subscriber-Message-Url"])
    assert url.query == "reservation_id=%s&subscriber_name=s" % headers["Iron-Reservation-Id"]
    st, body, _ = P.req("DELETE", url.path + "?" + url.query)
    assert st == 200, (st, body)
    assert gone(q, msg_id)
    assert len(received(s)) == 1


def test_slow_sink_beyond_push_timeout_is_recorded_as_a_timeout():
    s, eq = unique("sink"), unique("errors")
    configure(s, delay_ms=4000, count=1)
    q = push_queue([("slow", sink_url(s))], retries=0, error_queue=eq)
    started = time.monotonic()
    [msg_id] = P.post(q, "too slow")
    assert wait_for(lambda: len(attempts(message_id=msg_id)) == 1, timeout=8)
    assert time.monotonic() - started < 3.5  # push_timeout (1 s), not the sink's 4 s
    [e] = attempts(message_id=msg_id)
    assert e["status"] == -1 and e["result"] == "timeout", e
    assert "timed out" in e["error"].lower(), e
    assert 900 <= e["latency_ms"] < 3000, e
    assert wait_for(lambda: gone(q, msg_id))
    [report] = P.peek(eq)
    sub = json.loads(report["body"])["subscribers"][0]
    assert sub["name"] == "slow" and sub["code"] == 0, report
    [r] = received(s)
    assert r["delay_ms"] == 4000 and r["status"] == 200
    # the pusher hung up on the delayed answer: the server carries on
    assert srv.healthy()
    assert configure(s) == {"status": 200, "delay_ms": 0}


@sqlite_only
def test_failing_subscriber_with_a_count_sends_the_message_to_the_error_queue_after_retries():
    s, eq = unique("sink"), unique("errors")
    q = push_queue([("s", sink_url(s))], retries=2, retries_delay=60, error_queue=eq)
    st, rule, _ = srv.req("POST", "/admin/faults/subscribers",
                          {"url": sink_url(s), "status": 500, "count": 3})
    assert st == 200 and rule["status"] == 500 and rule["count"] == 3, (st, rule)
    with FrozenClock() as clock:
        [msg_id] = P.post(q, "doomed")
        for tries in (1, 2, 3):
            assert wait_for(lambda: len(attempts(message_id=msg_id)) == tries), attempts()
            if tries < 3:
                [st] = statuses(q, msg_id)
                assert st["status_code"] == 500 and st["tries"] == tries, st
                clock.advance(61)
        assert wait_for(lambda: gone(q, msg_id))
    log = attempts(message_id=msg_id)
    assert [(e["try_no"], e["status"], e["faked"]) for e in log] == \
        [(1, 500, True), (2, 500, True), (3, 500, True)], log
    assert received(s) == []  # nothing was sent
    [report] = P.peek(eq)
    body = json.loads(report["body"])
    assert body["source_msg_id"] == msg_id and body["body"] == "doomed"
    assert body["subscribers"][0]["code"] == 500, body
    st, body, _ = srv.req("GET", "/admin/faults/subscribers")
    assert st == 200 and body["subscribers"] == [], body  # used up


@sqlite_only
def test_failing_subscriber_with_status_0_fails_like_a_connection_error():
    s = unique("sink")
    q = push_queue([("flaky", sink_url(s)), ("fine", sink_url(s, "/fine"))],
                   retries=1, retries_delay=60)
    st, rule, _ = srv.req("POST", "/admin/faults/subscribers",
                          {"name": "flaky", "queue": q, "status": 0, "count": 1})
    assert st == 200, (st, rule)
    with FrozenClock() as clock:
        [msg_id] = P.post(q, "hello")
        assert wait_for(lambda: len(attempts(message_id=msg_id)) == 2)
        by_name = {x["name"]: x for x in statuses(q, msg_id)}
        assert by_name["flaky"]["status_code"] is None and by_name["flaky"]["tries"] == 1, by_name
        [e] = attempts(message_id=msg_id, subscriber="flaky")
        assert e["status"] == -1 and e["result"] == "error" and e["faked"] is True, e
        assert "failing subscriber" in e["error"], e
        clock.advance(61)
        assert wait_for(lambda: gone(q, msg_id))
    assert [e["status"] for e in attempts(message_id=msg_id, subscriber="flaky")] == [-1, 200]
    assert len(received(s)) == 2  # "fine" once, "flaky" on its retry


def test_failing_subscriber_rules_match_by_url_prefix_name_project_and_queue():
    s = unique("sink")
    q = push_queue([("s", sink_url(s, "/x"))], retries=0)
    other = push_queue([("s", sink_url(s, "/x"))], retries=0)
    st, rule, _ = srv.req("POST", "/admin/faults/subscribers",
                          {"url": sink_url(s), "project": "p", "queue": q, "status": 503})
    assert st == 200, rule
    [m1] = P.post(q, "fails")
    [m2] = P.post(other, "passes")
    assert wait_for(lambda: gone(q, m1) and gone(other, m2))
    assert [(e["status"], e["faked"]) for e in attempts(message_id=m1)] == [(503, True)]
    assert [(e["status"], e["faked"]) for e in attempts(message_id=m2)] == [(200, False)]
    st, body, _ = srv.req("GET", "/admin/faults/subscribers")
    [listed] = [r for r in body["subscribers"] if r["id"] == rule["id"]]
    assert listed["matched"] == 1 and "count" not in listed, listed
    st, body, _ = srv.req("DELETE", "/admin/faults/subscribers/%d" % rule["id"])
    assert st == 200, body
    assert srv.req("DELETE", "/admin/faults/subscribers/%d" % rule["id"])[0] == 404
    [m3] = P.post(q, "passes now")
    assert wait_for(lambda: gone(q, m3))
    assert [e["status"] for e in attempts(message_id=m3)] == [200]


def test_delete_failing_subscribers_clears_every_rule():
    for status in (500, 0):
        assert srv.req("POST", "/admin/faults/subscribers", {"name": "zz", "status": status})[0] == 200
    assert len(srv.req("GET", "/admin/faults/subscribers")[1]["subscribers"]) >= 2
    assert srv.req("DELETE", "/admin/faults/subscribers")[0] == 200
    assert srv.req("GET", "/admin/faults/subscribers")[1] == {"subscribers": []}


# ---- the sink on its own ----

def test_sink_answers_a_sequence_then_a_count_then_its_standing_answer():
    s = unique("sink")
    path = "/admin/sinks/%s/x" % s
    configure(s, status=201)
    cfg = configure(s, statuses=[500, 503, 202])
    assert cfg["next"]["statuses"] == [500, 503, 202], cfg
    codes = [srv.req("POST", path, {"n": i})[0] for i in range(4)]
    assert codes == [500, 503, 202, 201], codes
    cfg = configure(s, status=429, count=2, body='{"custom": true}')
    assert cfg == {"status": 201, "delay_ms": 0, "next": {"status": 429, "delay_ms": 0,
                                                          "body": '{"custom": true}', "count": 2}}
    st, body, _ = srv.req("GET", path)
    assert (st, body) == (429, {"custom": True})
    assert srv.req("GET", "/admin/sinks/%s/config" % s)[1]["next"]["count"] == 1
    assert srv.req("PUT", path)[0] == 429
    st, body, _ = srv.req("DELETE", path)
    assert st == 201 and body["msg"] == "Recorded" and body["seq"] == 7, body
    got = received(s)
    assert [r["method"] for r in got] == ["POST"] * 4 + ["GET", "PUT", "DELETE"]
    assert [r["status"] for r in got] == [500, 503, 202, 201, 429, 429, 201]
    assert [json.loads(r["body"]) for r in got[:4]] == [{"n": i} for i in range(4)]
    assert [r["seq"] for r in received(s, after=5)] == [6, 7]


def test_sink_text_answer_and_binary_body():
    s = unique("sink")
    configure(s, status=200, body="plain words")
    st, ctype, body = raw_request("POST", "/admin/sinks/%s?a=1&b=two" % s, body=b"\xff\x00\xfe",
                                  headers={"X-Test": "yes"})
    assert (st, body) == (200, b"plain words") and ctype.startswith("text/plain"), (st, ctype)
    [r] = received(s)
    assert r["body"] is None and r["body_base64"] == "/wD+" and r["body_bytes"] == 3, r
    assert r["query"] == "a=1&b=two" and r["headers"]["X-Test"] == "yes", r


def test_sink_delay_answers_late_and_survives_a_client_hanging_up():
    s = unique("sink")
    configure(s, delay_ms=400)
    started = time.monotonic()
    st, body, _ = srv.req("POST", "/admin/sinks/%s" % s, {"slow": 1})
    assert st == 200 and time.monotonic() - started >= 0.35, (st, body)
    # a client that gives up before the answer: the pending answer is dropped, not sent
    for _ in range(3):
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        sock.sendall(("POST /admin/sinks/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                      % s).encode())
        time.sleep(0.05)
        sock.close()
    time.sleep(0.6)  # past the delays
    assert srv.healthy()
    assert len(received(s)) == 4
    st, body, _ = srv.req("GET", "/admin/sinks")
    [listed] = [x for x in body["sinks"] if x["name"] == s]
    assert listed["received"] == 4 and listed["config"]["delay_ms"] == 400, listed


def test_sinks_list_and_delete():
    a, b = unique("sink"), unique("sink")
    srv.req("POST", "/admin/sinks/" + a, {})
    srv.req("POST", "/admin/sinks/" + b, {})
    names = [x["name"] for x in srv.req("GET", "/admin/sinks")[1]["sinks"]]
    assert a in names and b in names
    assert srv.req("DELETE", "/admin/sinks/" + a)[0] == 200
    assert received(a) == []
    assert len(received(b)) == 1
    assert srv.req("DELETE", "/admin/sinks")[0] == 200
    assert srv.req("GET", "/admin/sinks")[1] == {"sinks": []}
    assert srv.req("POST", "/admin/sinks/" + b, {})[1]["seq"] == 1  # starts over


def test_sink_keeps_its_last_1000_requests():
    s = unique("sink")
    c = srv.client()
    for i in range(1005):
        assert c.req("POST", "/admin/sinks/" + s, raw=str(i))[0] == 200
    c.close()
    got = received(s)
    assert len(got) == 1000 and got[0]["seq"] == 6 and got[-1]["body"] == "1004"
    [listed] = [x for x in srv.req("GET", "/admin/sinks")[1]["sinks"] if x["name"] == s]
    assert listed["received"] == 1005 and listed["kept"] == 1000
    srv.req("DELETE", "/admin/sinks/" + s)


# ---- the push log ----

def test_push_log_filters_and_clears():
    s = unique("sink")
    q1 = push_queue([("a", sink_url(s)), ("b", sink_url(s))])
    q2 = push_queue([("a", sink_url(s))])
    [m1] = P.post(q1, "one")
    [m2] = P.post(q2, "two")
    assert wait_for(lambda: gone(q1, m1) and gone(q2, m2))
    assert len(attempts(queue=q1)) == 2 and len(attempts(queue=q2)) == 1
    assert [e["subscriber"] for e in attempts(queue=q1, subscriber="b")] == ["b"]
    assert [e["message_id"] for e in attempts(message_id=m2)] == [m2]
    assert attempts(project="nobody") == []
    last = attempts()[-1]["seq"]
    assert attempts(after=last) == []
    assert srv.req("DELETE", "/admin/push-log")[0] == 200
    assert attempts() == []
    [m3] = P.post(q2, "three")
    assert wait_for(lambda: len(attempts()) == 1)
    assert attempts()[0]["seq"] == last + 1  # numbering goes on


# ---- bad input ----

def test_bad_inputs_are_refused_with_400_and_say_why():
    cases = [
        ("PUT", "/admin/sinks/s/config", {"status": 99}, "status must be from 200 to 599"),
        ("PUT", "/admin/sinks/s/config", {"status": "500"}, "status must be an integer"),
        ("PUT", "/admin/sinks/s/config", {"delay_ms": -1}, "delay_ms must be from 0 to"),
        ("PUT", "/admin/sinks/s/config", {"statuses": []}, "statuses must hold 1 to"),
        ("PUT", "/admin/sinks/s/config", {"statuses": [200, 700]}, "statuses[1] must be"),
        ("PUT", "/admin/sinks/s/config", {"statuses": [500], "count": 2}, "without status or count"),
        ("PUT", "/admin/sinks/s/config", {"body": 5}, "body must be a string"),
        ("PUT", "/admin/sinks/s/config", {"count": 0}, "count must be from 1"),
        ("PUT", "/admin/sinks/s/config", {"stauts": 500}, "unknown field stauts"),
        ("PUT", "/admin/sinks/s/config", [1], "must be a JSON object"),
        ("POST", "/admin/faults/subscribers", {"status": 150}, "status must be 0"),
        ("POST", "/admin/faults/subscribers", {"status": 700}, "status must be from 0 to 599"),
        ("POST", "/admin/faults/subscribers", {"url": ""}, "url must be a non-empty string"),
        ("POST", "/admin/faults/subscribers", {"nmae": "x"}, "unknown field nmae"),
        ("POST", "/admin/faults/subscribers", {"count": "3"}, "count must be an integer"),
        ("GET", "/admin/push-log?message_id=abc", None, "must be whole numbers"),
        ("GET", "/admin/push-log?after=-1", None, "must be whole numbers"),
        ("GET", "/admin/sinks/s/requests?after=x", None, "after must be"),
    ]
    for method, path, body, words in cases:
        st, answer, _ = srv.req(method, path, body)
        assert st == 400 and words in answer["msg"], (method, path, body, st, answer)
    assert srv.req("GET", "/admin/faults/subscribers")[1] == {"subscribers": []}
    assert srv.req("POST", "/admin/push-log")[0] == 405
    assert srv.req("PUT", "/admin/sinks")[0] == 405
    assert srv.req("PUT", "/admin/faults/subscribers")[0] == 405


def test_at_most_64_sinks():
    assert srv.req("DELETE", "/admin/sinks")[0] == 200
    for i in range(64):
        assert srv.req("POST", "/admin/sinks/many-%d" % i, {})[0] == 200
    st, body, _ = srv.req("POST", "/admin/sinks/one-too-many", {})
    assert st == 503 and "at most 64 sinks" in body["msg"], (st, body)
    assert srv.req("DELETE", "/admin/sinks")[0] == 200
    assert srv.req("POST", "/admin/sinks/one-too-many", {})[0] == 200


# ---- tokens ----

def test_sink_needs_no_token_where_the_rest_of_the_kit_does():
    with Server.start(["--token", "secret", "--test-mode", "on"]) as s:
        auth = {"Authorization": "OAuth secret"}
        assert s.req("GET", "/admin/push-log")[0] == 401
        assert s.req("GET", "/admin/push-log", headers=auth)[0] == 200
        url = "http://127.0.0.1:%d/admin/sinks/t" % s.port
        st, body, _ = s.req("PUT", "/3/projects/p/queues/tq", {"queue": {
            "type": "multicast", "push": {"subscribers": [{"name": "t", "url": url}]}}},
            headers=auth)
        assert st == 200, (st, body)
        st, body, _ = s.req("POST", "/3/projects/p/queues/tq/messages",
                            {"messages": [{"body": "via the pusher"}]}, headers=auth)
        assert st == 201, (st, body)
        assert wait_for(lambda: len(s.req("GET", "/admin/sinks/t/requests")[1]["requests"]) == 1)
        [e] = s.req("GET", "/admin/push-log", headers=auth)[1]["attempts"]
        assert e["status"] == 200, e


# ---- the event stream ----

def test_each_push_attempt_is_an_event_on_the_stream():
    st, body, _ = srv.req("GET", "/admin/events?format=json")  # arms the history
    assert st == 200, (st, body)
    s = unique("sink")
    configure(s, statuses=[503])
    q = push_queue([("s", sink_url(s))], retries=0)
    [msg_id] = P.post(q, "watched")
    assert wait_for(lambda: gone(q, msg_id))
    st, body, _ = srv.req("GET", "/admin/events?format=json&types=push_attempt&queue=" + q)
    assert st == 200, (st, body)
    [ev] = body["events"]
    assert ev["type"] == "push_attempt" and ev["id"] == msg_id and ev["project"] == "p", ev
    assert (ev["subscriber"], ev["try_no"], ev["status"], ev["result"]) == ("s", 1, 503, "failed"), ev
    assert ev["url"] == sink_url(s) and ev["faked"] is False, ev


def test_a_graceful_stop_sends_delayed_sink_answers_and_held_requests_at_once():
    with Server.start(["--test-mode"]) as s:
        st, _, _ = s.req("PUT", "/admin/sinks/slow/config", {"status": 201, "delay_ms": 30000})
        assert st == 200
        st, _, _ = s.req("POST", "/admin/faults", {"route": "queue_list", "latency_ms": 30000})
        assert st == 201 or st == 200, st
        answers = {}

        def ask(name, method, path):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=20)
            try:
                conn.request(method, path, body=b"{}" if method == "POST" else None)
                answers[name] = conn.getresponse().status
            except OSError as e:
                answers[name] = repr(e)
            finally:
                conn.close()

        threads = [threading.Thread(target=ask, args=("sink", "POST", "/admin/sinks/slow")),
                   threading.Thread(target=ask, args=("held", "GET", "/3/projects/p/queues"))]
        for t in threads:
            t.start()
        assert wait_for(lambda: len(s.req("GET", "/admin/sinks/slow/requests")[1]["requests"]) == 1)
        time.sleep(0.2)  # the GET reaches the server and waits out its latency
        started = time.monotonic()
        s.signal(signal.SIGTERM)
        assert s.wait_exit(15) == 0
        for t in threads:
            t.join(timeout=5)
        # not the 30 s of either delay, nor shutdown_timeout (10 s)
        assert time.monotonic() - started < 3, time.monotonic() - started
        assert answers == {"sink": 201, "held": 200}, answers
