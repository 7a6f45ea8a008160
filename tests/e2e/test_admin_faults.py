"""The test kit's fault injection (/admin/faults, docs/testing-with-anvil.md): rules that
answer chosen requests with a chosen status (the hosted service's body), added latency on
real time, count/skip/seeded-rate determinism, and the next N storage writes failing with
503 while nothing changes (checked through the API and across a restart).
One shared server in test mode (dev mode turns it on); every test cleans its rules up and
uses its own queues. Tests marked sqlite_only need the data directory or the virtual clock."""
import json
import socket
import threading
import time

import harness
from harness import Server, sqlite_only, unique

srv = None
P = None
SQS_ACCOUNT = "000000000000"  # the dev-mode SQS account (its v3 project)


def setup_module():
    global srv, P
    srv = Server.start()
    P = srv.project("p")


def teardown_module():
    srv.stop()


def clear_faults():
    st, body, _ = srv.req("DELETE", "/admin/faults")
    assert st == 200, (st, body)


def add_rule(**rule):
    st, body, _ = srv.req("POST", "/admin/faults", rule)
    assert st == 201, (st, body)
    return body["id"]


def rule_state(rule_id):
    st, body, _ = srv.req("GET", "/admin/faults/" + rule_id)
    assert st == 200, (st, body)
    return body


def fail_writes(n):
    st, body, _ = srv.req("POST", "/admin/faults/commits", {"count": n})
    assert st == 200 and body == {"fail_next": n}, (st, body)


def post_raw(q, *bodies, project=None):
    proj = project or P
    return proj.req("POST", proj.path(q, "messages"), {"messages": [{"body": b} for b in bodies]})


def peek_status(q):
    return P.req("GET", P.path(q, "messages"))[0]


def sqs_json(action, payload, server=None):
    """An unsigned JSON-protocol SQS request (dev mode accepts it): (status, parsed body)."""
    s = server or srv
    conn = harness.http.client.HTTPConnection("127.0.0.1", s.port, timeout=harness.HTTP_TIMEOUT_S)
    try:
        conn.request("POST", "/", body=json.dumps(payload).encode(),
                     headers={"X-Amz-Target": "AmazonSQS." + action,
                              "Content-Type": "application/x-amz-json-1.0"})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else {}
    finally:
        conn.close()


def sqs_queue_url(q):
    st, body = sqs_json("CreateQueue", {"QueueName": q})
    assert st == 200, (st, body)
    return body["QueueUrl"]


# ---- injected statuses ----

def test_rule_answers_its_status_with_a_v3_body_then_is_spent():
    clear_faults()
    q = unique()
    rid = add_rule(route="post", queue=q, status=503, count=1)
    st, body, _ = post_raw(q, "a")
    assert st == 503, (st, body)
    assert set(body) == {"msg"} and "injected" in body["msg"], body
    st, body, _ = post_raw(q, "b")
    assert st == 201, (st, body)
    assert [m["body"] for m in P.peek(q)] == ["b"]  # the failed post stored nothing
    r = rule_state(rid)
    assert (r["hits"], r["matched"], r["spent"]) == (1, 2, True), r
    clear_faults()


def test_status_500_on_any_route_of_a_queue():
    clear_faults()
    q = unique()
    P.post(q, "x")
    add_rule(route="*", queue=q, status=500)
    for method, path in (("GET", P.path(q)), ("GET", P.path(q, "messages")),
                         ("POST", P.path(q, "reservations")), ("DELETE", P.path(q, "messages"))):
        st, body, _ = P.req(method, path, {} if method != "GET" else None)
        assert st == 500, (method, path, st, body)
        assert "injected" in body["msg"], body
    clear_faults()
    assert P.info(q)["size"] == 1  # the clear above was never run


def test_forced_reservation_timed_out_on_the_next_delete_changes_nothing():
    clear_faults()
    q = unique()
    (mid,) = P.post(q, "keep me")
    m = P.reserve_one(q)
    add_rule(route="delete", status=403, count=1)
    st, body, _ = P.req("DELETE", P.path(q, "messages", mid), {"reservation_id": m["reservation_id"]})
    assert (st, body) == (403, {"msg": "Reservation timed out"}), (st, body)
    # nothing changed: the message is still there, still reserved under the same reservation
    got = P.get(q, mid)
    assert got is not None and got["reserved_count"] == 1, got
    assert P.reserve(q, n=1) == []
    st, body, _ = P.req("DELETE", P.path(q, "messages", mid), {"reservation_id": m["reservation_id"]})
    assert st == 200, (st, body)
    assert P.get(q, mid) is None
    clear_faults()


def test_404_says_queue_or_message_not_found_as_the_service_does():
    clear_faults()
    q = unique()
    (mid,) = P.post(q, "x")
    add_rule(route="queue_get", queue=q, status=404)
    add_rule(route="get", queue=q, status=404)
    st, body, _ = P.req("GET", P.path(q))
    assert (st, body) == (404, {"msg": "Queue not found"}), (st, body)
    st, body, _ = P.req("GET", P.path(q, "messages", mid))
    assert (st, body) == (404, {"msg": "Message not found"}), (st, body)
    clear_faults()
    assert P.get(q, mid) is not None


def test_rule_msg_replaces_the_text():
    clear_faults()
    q = unique()
    add_rule(route="peek", queue=q, status=429, msg="slow down")
    st, body, _ = P.req("GET", P.path(q, "messages"))
    assert (st, body) == (429, {"msg": "slow down"}), (st, body)
    clear_faults()


def test_rule_scoped_to_a_queue_or_project_does_not_hit_others():
    clear_faults()
    q, other = unique(), unique()
    P.post(q, "x")
    P.post(other, "y")
    add_rule(route="peek", project="p", queue=q, status=500)
    assert peek_status(q) == 500
    assert peek_status(other) == 200
    other_project = srv.project("p-other")
    other_project.post(q, "z")
    assert other_project.req("GET", other_project.path(q, "messages"))[0] == 200
    clear_faults()


def test_star_rule_leaves_admin_health_and_stats_alone():
    clear_faults()
    add_rule(route="*", status=500)
    assert srv.req("GET", "/health")[0] == 200
    assert srv.req("GET", "/stats")[0] == 200
    st, body, _ = srv.req("GET", "/admin/faults")
    assert st == 200 and len(body["rules"]) == 1, (st, body)
    assert P.req("GET", P.path())[0] == 500
    clear_faults()
    assert P.req("GET", P.path())[0] == 200


# ---- count, skip, rate ----

def test_skip_lets_the_first_requests_through_and_count_limits_hits():
    clear_faults()
    q = unique()
    P.post(q, "x")
    rid = add_rule(route="peek", queue=q, status=503, skip=2, count=2)
    assert [peek_status(q) for _ in range(6)] == [200, 200, 503, 503, 200, 200]
    r = rule_state(rid)
    assert (r["matched"], r["skipped"], r["hits"], r["spent"]) == (6, 2, 2, True), r
    clear_faults()


def test_first_rule_with_a_status_decides():
    clear_faults()
    q = unique()
    P.post(q, "x")
    first = add_rule(route="peek", queue=q, status=500, count=1)
    second = add_rule(route="*", queue=q, status=503, count=1)
    assert [peek_status(q) for _ in range(3)] == [500, 503, 200]
    assert rule_state(first)["hits"] == 1 and rule_state(second)["hits"] == 1
    clear_faults()


def rate_pattern(q, n, **rule):
    add_rule(route="peek", queue=q, status=503, rate=0.5, **rule)
    pattern = "".join("x" if peek_status(q) == 503 else "." for _ in range(n))
    clear_faults()
    return pattern


def test_same_seed_same_sequence_of_failures():
    clear_faults()
    q = unique()
    P.post(q, "x")
    runs = []
    for _ in range(2):
        st, body, _ = srv.req("POST", "/admin/faults/seed", {"seed": 42})
        assert (st, body) == (200, {"seed": 42}), (st, body)
        runs.append(rate_pattern(q, 40))
    assert runs[0] == runs[1], runs
    assert 5 < runs[0].count("x") < 35, runs[0]  # a rate, not all or nothing
    srv.req("POST", "/admin/faults/seed", {"seed": 43})
    assert rate_pattern(q, 40) != runs[0]
    # a rule's own seed: the same sequence whatever the kit's seed
    own = [rate_pattern(q, 40, seed=7)]
    srv.req("POST", "/admin/faults/seed", {"seed": 99})
    own.append(rate_pattern(q, 40, seed=7))
    assert own[0] == own[1], own


def test_rate_zero_never_hits_and_one_always_does():
    clear_faults()
    q = unique()
    P.post(q, "x")
    rid = add_rule(route="peek", queue=q, status=500, rate=0)
    assert {peek_status(q) for _ in range(20)} == {200}
    assert rule_state(rid)["hits"] == 0
    clear_faults()
    add_rule(route="peek", queue=q, status=500, rate=1)
    assert {peek_status(q) for _ in range(20)} == {500}
    clear_faults()


# ---- latency ----

def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


def test_latency_delays_the_request_while_others_are_served():
    clear_faults()
    slow_q, fast_q = unique(), unique()
    P.post(slow_q, "s")
    P.post(fast_q, "f")
    add_rule(route="peek", queue=slow_q, latency_ms=800)
    result = {}

    def slow_peek():
        c = srv.client()
        try:
            result["answer"], result["took"] = timed(
                lambda: P.req("GET", P.path(slow_q, "messages"), client=c))
        finally:
            c.close()

    t = threading.Thread(target=slow_peek)
    t.start()
    time.sleep(0.1)
    for _ in range(5):  # the loop keeps serving: the delay is a timer, not a sleep
        (st, body, _), took = timed(lambda: P.req("GET", P.path(fast_q, "messages")))
        assert st == 200 and body["messages"][0]["body"] == "f", (st, body)
        assert took < 0.4, took
    assert "answer" not in result  # still waiting
    t.join(10)
    st, body, _ = result["answer"]
    assert st == 200 and body["messages"][0]["body"] == "s", (st, body)
    assert 0.75 <= result["took"] < 5, result["took"]
    clear_faults()


def test_latency_and_status_together_answer_late_with_the_status():
    clear_faults()
    q = unique()
    add_rule(route="post", queue=q, status=503, latency_ms=300, count=1)
    (st, body, _), took = timed(lambda: post_raw(q, "x"))
    assert st == 503 and "injected" in body["msg"], (st, body)
    assert took >= 0.28, took
    assert P.req("GET", P.path(q))[0] == 404  # the post never ran: no queue
    clear_faults()


def test_latency_rules_add_up():
    clear_faults()
    q = unique()
    P.post(q, "x")
    add_rule(route="peek", queue=q, latency_ms=200)
    add_rule(route="*", queue=q, latency_ms=200)
    (st, _, _), took = timed(lambda: P.req("GET", P.path(q, "messages")))
    assert st == 200 and took >= 0.38, (st, took)
    clear_faults()


@sqlite_only
def test_latency_runs_on_real_time_while_the_clock_is_frozen():
    clear_faults()
    q = unique()
    P.post(q, "x")
    st, body, _ = srv.req("POST", "/admin/clock/freeze")
    assert st == 200, (st, body)
    try:
        add_rule(route="peek", queue=q, latency_ms=300)
        (st, body, _), took = timed(lambda: P.req("GET", P.path(q, "messages")))
        assert st == 200 and 0.28 <= took < 5, (st, took)
    finally:
        clear_faults()
        srv.req("POST", "/admin/clock/unfreeze")


def test_client_hanging_up_during_latency_is_forgotten():
    clear_faults()
    q = unique()
    P.create(q)
    add_rule(route="post", queue=q, latency_ms=400)
    body = json.dumps({"messages": [{"body": "never"}]}).encode()
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(b"POST " + P.path(q, "messages").encode() + b" HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nContent-Length: " +
                  str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(0.1)
        s.close()
    time.sleep(0.6)  # past the latency: a request that was not forgotten would run now
    assert srv.healthy()
    info = P.info(q)
    assert info["size"] == 0 and info.get("total_messages", 0) == 0, info
    clear_faults()


# ---- storage writes failing ----

def queue_counts(q):
    info = P.info(q)
    return info["size"], info["total_messages"]


def test_failed_write_on_post_changes_nothing():
    clear_faults()
    q = unique()
    P.create(q)
    P.post(q, "before")
    before = queue_counts(q)
    fail_writes(1)
    st, body, _ = post_raw(q, "lost")
    assert (st, body) == (503, {"msg": "Storage is unavailable, try again later"}), (st, body)
    assert queue_counts(q) == before
    assert [m["body"] for m in P.peek(q)] == ["before"]
    assert srv.req("GET", "/admin/faults/commits")[1] == {"fail_next": 0}
    assert post_raw(q, "after")[0] == 201  # only the next write failed
    clear_faults()


def test_failed_post_is_not_there_after_a_restart():
    clear_faults()
    q = unique()
    P.create(q)
    fail_writes(1)
    assert post_raw(q, "lost")[0] == 503
    assert P.reserve(q, n=10) == []
    assert queue_counts(q) == (0, 0)
    srv.restart()
    assert queue_counts(q) == (0, 0)
    assert P.reserve(q, n=10) == []


def test_failed_write_on_delete_keeps_the_message():
    clear_faults()
    q = unique()
    (mid,) = P.post(q, "stay")
    m = P.reserve_one(q)
    fail_writes(1)
    st, _, _ = P.req("DELETE", P.path(q, "messages", mid), {"reservation_id": m["reservation_id"]})
    assert st == 503
    got = P.get(q, mid)
    assert got is not None and got["reserved_count"] == 1, got
    assert queue_counts(q)[0] == 1
    st, body, _ = P.req("DELETE", P.path(q, "messages", mid), {"reservation_id": m["reservation_id"]})
    assert st == 200, (st, body)


def test_failed_write_on_reserve_reserves_nothing():
    clear_faults()
    q = unique()
    (mid,) = P.post(q, "r")
    fail_writes(1)
    st, body, _ = P.req("POST", P.path(q, "reservations"), {"n": 1})
    assert st == 503, (st, body)
    assert P.get(q, mid)["reserved_count"] == 0
    assert queue_counts(q) == (1, 1)
    assert P.reserve_one(q)["reserved_count"] == 1


def test_failed_writes_count_only_writes():
    clear_faults()
    q = unique()
    (mid,) = P.post(q, "a")
    fail_writes(3)
    # reads go through and do not use up the count
    assert P.req("GET", P.path(q))[0] == 200
    assert P.req("GET", P.path(q, "messages"))[0] == 200
    assert P.req("GET", P.path(q, "messages", mid))[0] == 200
    assert srv.req("GET", "/admin/faults/commits")[1] == {"fail_next": 3}
    assert P.req("PATCH", P.path(q), {"queue": {"message_timeout": 120}})[0] == 503
    assert P.req("DELETE", P.path(q), None)[0] == 503
    assert P.req("DELETE", P.path(q, "messages"), {})[0] == 503  # clear
    assert P.info(q)["size"] == 1 and P.info(q)["message_timeout"] == 60
    assert post_raw(q, "b")[0] == 201


def test_delete_all_faults_ends_failing_writes():
    clear_faults()
    q = unique()
    fail_writes(5)
    clear_faults()
    assert srv.req("GET", "/admin/faults/commits")[1] == {"fail_next": 0}
    assert post_raw(q, "ok")[0] == 201


def test_failed_writes_reach_the_sqs_front():
    clear_faults()
    q = unique()
    url = sqs_queue_url(q)
    fail_writes(1)
    st, body = sqs_json("SendMessage", {"QueueUrl": url, "MessageBody": "lost"})
    assert st == 503 and body["__type"].endswith("#ServiceUnavailable"), (st, body)
    sqs = srv.project(SQS_ACCOUNT)
    assert sqs.info(q)["size"] == 0
    st, body = sqs_json("SendMessage", {"QueueUrl": url, "MessageBody": "kept"})
    assert st == 200, (st, body)
    assert sqs.info(q)["size"] == 1


def test_rules_on_sqs_actions():
    clear_faults()
    q = unique()
    url = sqs_queue_url(q)
    add_rule(route="sqs:SendMessage", queue=q, status=500, count=1)
    st, body = sqs_json("SendMessage", {"QueueUrl": url, "MessageBody": "x"})
    assert st == 500 and body["__type"].endswith("#InternalFailure"), (st, body)
    add_rule(route="sqs:*", queue=q, latency_ms=250, count=1)
    (st, body), took = timed(lambda: sqs_json("SendMessage", {"QueueUrl": url, "MessageBody": "y"}))
    assert st == 200 and took >= 0.23, (st, body, took)
    add_rule(route="sqs:DeleteMessage", status=403, count=1)
    st, body = sqs_json("ReceiveMessage", {"QueueUrl": url})
    handle = body["Messages"][0]["ReceiptHandle"]
    st, body = sqs_json("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": handle})
    assert st == 400 and body["__type"].endswith("#ReceiptHandleIsInvalid"), (st, body)
    st, body = sqs_json("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": handle})
    assert st == 200, (st, body)
    clear_faults()


# ---- the admin routes ----

def test_bad_rules_are_refused_with_what_to_change():
    clear_faults()
    cases = [
        ({}, "route is required"),
        ({"route": "nope", "status": 500}, "route \"nope\" is not one of"),
        ({"route": "sqs:Nope", "status": 500}, "is not one of"),
        ({"route": 5, "status": 500}, "route must be a string"),
        ({"route": "post"}, "give status"),
        ({"route": "post", "status": 200}, "status must be"),
        ({"route": "post", "status": 600}, "status must be"),
        ({"route": "post", "status": "500"}, "status must be"),
        ({"route": "post", "status": 500, "rate": 1.5}, "rate must be"),
        ({"route": "post", "status": 500, "rate": -0.1}, "rate must be"),
        ({"route": "post", "status": 500, "count": 0}, "count must be"),
        ({"route": "post", "status": 500, "count": 1.5}, "count must be"),
        ({"route": "post", "status": 500, "skip": -1}, "skip must be"),
        ({"route": "post", "latency_ms": 60001}, "latency_ms must be"),
        ({"route": "post", "status": 500, "queue": ""}, "queue must be"),
        ({"route": "post", "status": 500, "project": 3}, "project must be"),
        ({"route": "post", "status": 500, "seed": -1}, "seed must be"),
        ({"route": "post", "status": 500, "msg": ""}, "msg must be"),
        ({"route": "post", "status": 500, "sttaus": 500}, "unknown field \"sttaus\""),
    ]
    for rule, want in cases:
        st, body, _ = srv.req("POST", "/admin/faults", rule)
        assert st == 400 and want in body["msg"], (rule, st, body)
    for raw in ("", "[]", "{", '{"route":"post","route":"get","status":500}'):
        st, body, _ = srv.req("POST", "/admin/faults", raw=raw,
                              headers={"Content-Type": "application/json"})
        assert st == 400 and "JSON object" in body["msg"], (raw, st, body)
    for raw, path in (("{}", "/admin/faults/seed"), ('{"seed": "x"}', "/admin/faults/seed"),
                      ('{"count": -1}', "/admin/faults/commits"), ("", "/admin/faults/commits")):
        st, body, _ = srv.req("POST", path, raw=raw, headers={"Content-Type": "application/json"})
        assert st == 400 and body["msg"].startswith("give"), (path, raw, st, body)
    assert srv.req("GET", "/admin/faults")[1]["rules"] == []


def test_every_documented_route_name_is_accepted():
    clear_faults()
    names = ["queue_list", "queue_get", "queue_put", "queue_patch", "queue_delete", "post", "peek",
             "delete_many", "reserve", "webhook", "subscribers", "get", "delete", "touch",
             "release", "push_statuses", "*", "sqs:*", "sqs:SendMessage", "sqs:ReceiveMessage",
             "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:CreateQueue"]
    for name in names:
        add_rule(route=name, status=500, rate=0)
    assert [r["route"] for r in srv.req("GET", "/admin/faults")[1]["rules"]] == names
    clear_faults()


def test_list_get_and_delete_rules():
    clear_faults()
    a = add_rule(route="post", project="p", queue="qa", status=503, count=2, skip=1, seed=5)
    b = add_rule(route="touch", latency_ms=10)
    st, body, _ = srv.req("GET", "/admin/faults")
    assert st == 200, (st, body)
    assert [r["id"] for r in body["rules"]] == [a, b]
    ra = body["rules"][0]
    assert ra == {"id": a, "route": "post", "project": "p", "queue": "qa", "status": 503,
                  "rate": 1.0, "count": 2, "skip": 1, "latency_ms": 0, "seed": 5, "matched": 0,
                  "skipped": 0, "hits": 0, "spent": False}, ra
    assert body["commits"] == {"fail_next": 0} and "seed" in body
    st, body, _ = srv.req("DELETE", "/admin/faults/" + a)
    assert (st, body) == (200, {"msg": "Deleted"}), (st, body)
    for method in ("GET", "DELETE"):
        st, body, _ = srv.req(method, "/admin/faults/" + a)
        assert (st, body) == (404, {"msg": "Fault rule not found"}), (method, st, body)
    assert srv.req("GET", "/admin/faults/nonsense")[0] == 404
    st, body, _ = srv.req("DELETE", "/admin/faults")
    assert (st, body) == (200, {"msg": "Deleted", "removed": 1}), (st, body)
    assert srv.req("PUT", "/admin/faults")[0] == 405
    assert srv.req("POST", "/admin/faults/" + b)[0] == 405


def test_sigterm_waits_for_a_held_request_then_exits_0():
    with Server.start() as s:
        proj = s.project("p")
        proj.post("q", "x")
        st, body, _ = s.req("POST", "/admin/faults", {"route": "peek", "latency_ms": 500})
        assert st == 201, (st, body)
        result = {}

        def held():
            c = s.client()
            try:
                result["answer"] = proj.req("GET", proj.path("q", "messages"), client=c)
            finally:
                c.close()

        t = threading.Thread(target=held)
        t.start()
        time.sleep(0.15)
        s.signal(harness.signal.SIGTERM)
        t.join(10)
        st, body, _ = result["answer"]
        assert st == 200 and body["messages"][0]["body"] == "x", (st, body)
        assert s.wait_exit(10) == 0
