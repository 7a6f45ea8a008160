"""Push delivery to real subscribers (HTTP servers this test starts on 127.0.0.1): the body
and headers they receive, multicast and unicast, 200, 202 then delete, 202 running out,
errors and retries into the error queue, connection refused, a subscriber too slow for
push_timeout, push statuses at each stage, and a pending push delivered after a crash.
Both back ends; test_pg_nodes.py adds push delivery over several nodes."""

BACKENDS = ("sqlite", "postgres")
import http.server
import json
import re
import threading
import time

from harness import Server, free_port, slow, sqlite_only, unique, wait_for

srv = None
P = None
DELAY = 3  # the smallest retries_delay the contract allows


class Subscriber:
    """An HTTP server on a free loopback port; answers each POST with the next code of
    `codes` (the last one repeats), after `sleep` seconds; records what it got."""

    def __init__(self, codes=(200,), sleep=0.0):
        self.codes, self.sleep, self.got = list(codes), sleep, []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    code = outer.codes[min(len(outer.got), len(outer.codes) - 1)]
                    outer.got.append((time.monotonic(), dict(self.headers.items()), body))
                if outer.sleep:
                    time.sleep(outer.sleep)
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the pusher gave up first

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def count(self):
        with self.lock:
            return len(self.got)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def setup_module():
    global srv, P
    srv = Server.start(["--push-timeout", "1"])
    P = srv.project("p")


def teardown_module():
    srv.stop()


def push_queue(subs, **push):
    q = unique()
    subscribers = [{"name": name, "url": s.url if isinstance(s, Subscriber) else s}
                   for name, s in subs]
    push = dict(push, subscribers=subscribers)
    st, body, _ = P.req("PUT", P.path(q), {"queue": {"type": push.pop("type", "multicast"),
                                                      "push": push}})
    assert st == 200, (st, body)
    return q


def statuses(q, msg_id):
    st, body, _ = P.req("GET", P.path(q, "messages", msg_id, "subscribers"))
    return st, body


def gone(q, msg_id):
    return P.req("GET", P.path(q, "messages", msg_id))[0] == 404


def test_multicast_delivers_the_body_and_headers_to_every_subscriber():
    a, b = Subscriber(), Subscriber()
    q = unique()
    subs = [{"name": "a", "url": a.url, "headers": {"X-Token": "t-a"}},
            {"name": "b", "url": b.url, "headers": {"Content-Type": "application/json"}}]
    assert P.req("PUT", P.path(q), {"queue": {"push": {"subscribers": subs}}})[0] == 200
    [msg_id] = P.post(q, '{"hello": "push"}')
    assert wait_for(lambda: a.count() == 1 and b.count() == 1), (a.got, b.got)
    assert wait_for(lambda: gone(q, msg_id))
    for sub, name in ((a, "a"), (b, "b")):
        _, headers, body = sub.got[0]
        assert body == b'{"hello": "push"}'
        assert headers["User-Agent"] == "IronMQ Pusherd"
        assert headers["Iron-Message-Id"] == msg_id
        assert headers["Iron-Subscriber-Name"] == name
        assert re.fullmatch(r"[0-9a-f]{32}", headers["Iron-Reservation-Id"]), headers
        url = headers["Iron-Subscriber-Message-Url"]
        assert "/3/projects/p/queues/%s/messages/%s?" % (q, msg_id) in url, url
    assert a.got[0][1]["X-Token"] == "t-a"
    assert a.got[0][1]["Content-Type"] == "text/plain; encoding=utf-8"
    assert b.got[0][1]["Content-Type"] == "application/json"  # the subscriber's own wins
    info = P.info(q)
    assert info["size"] == 0 and info["total_messages"] == 1, info
    time.sleep(0.3)
    assert a.count() == 1 and b.count() == 1  # delivered ones are never sent again
    a.close()
    b.close()


def test_unicast_tries_the_next_subscriber_at_once_and_stops_at_the_first_200():
    bad, good, spare = Subscriber([500]), Subscriber([200]), Subscriber([200])
    q = push_queue([("bad", bad), ("good", good), ("spare", spare)], type="unicast",
                   retries_delay=60)
    [msg_id] = P.post(q, "one of you")
    assert wait_for(lambda: gone(q, msg_id))
    assert bad.count() == 1 and good.count() == 1 and spare.count() == 0
    assert good.got[0][0] >= bad.got[0][0]
    for s in (bad, good, spare):
        s.close()


@slow
def test_failures_are_retried_after_the_delay_then_go_to_the_error_queue():
    failing = Subscriber([500])
    errors = unique()
    q = push_queue([("f", failing)], retries=1, retries_delay=DELAY, error_queue=errors)
    [msg_id] = P.post(q, "will fail")
    assert wait_for(lambda: failing.count() == 1)
    assert wait_for(lambda: statuses(q, msg_id)[1].get("subscribers", [{}])[0].get("status_code") == 500)
    st, body = statuses(q, msg_id)
    assert st == 200, body
    [s] = body["subscribers"]
    assert (s["name"], s["url"], s["status"], s["tries"], s["retries_remaining"]) == \
        ("f", failing.url, "retrying", 1, 0), s
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s["last_try_at"]), s
    assert P.info(q)["size"] == 1
    assert wait_for(lambda: failing.count() == 2, timeout=DELAY + 3)
    first, second = failing.got[0][0], failing.got[1][0]
    assert second - first >= DELAY - 0.2, (first, second)
    assert wait_for(lambda: gone(q, msg_id))
    assert P.info(q)["size"] == 0
    [err] = P.peek(errors)
    report = json.loads(err["body"])
    assert report["source_msg_id"] == msg_id and report["body"] == "will fail", report
    assert report["subscribers"] == [{"name": "f", "url": failing.url, "code": 500,
                                      "msg": "answered 500"}], report
    failing.close()


def test_202_keeps_the_message_until_the_subscriber_deletes_it():
    slow_worker = Subscriber([202])
    q = push_queue([("w", slow_worker)], retries_delay=60)
    [msg_id] = P.post(q, "take your time")
    assert wait_for(lambda: slow_worker.count() == 1)
    assert wait_for(lambda: statuses(q, msg_id)[1]["subscribers"][0]["status"] == "reserved")
    headers = slow_worker.got[0][1]
    rid = headers["Iron-Reservation-Id"]
    st, body, _ = P.req("DELETE", P.path(q, "messages", msg_id),
                        {"reservation_id": "0" * 32, "subscriber_name": "w"})
    assert st == 403, (st, body)
    st, body, _ = P.req("DELETE", P.path(q, "messages", msg_id),
                        {"reservation_id": rid, "subscriber_name": "w"})
    assert (st, body) == (200, {"msg": "Deleted"}), (st, body)
    assert gone(q, msg_id)
    slow_worker.close()


def test_the_subscriber_message_url_deletes_it_too():
    worker = Subscriber([202])
    q = push_queue([("w", worker)], retries_delay=60)
    [msg_id] = P.post(q, "by url")
    assert wait_for(lambda: worker.count() == 1)
    url = worker.got[0][1]["Iron-Subscriber-Message-Url"]
    path = url.split("%d" % srv.port, 1)[1]
    st, body, _ = P.req("DELETE", path)
    assert (st, body) == (200, {"msg": "Deleted"}), (st, body)
    assert gone(q, msg_id)
    worker.close()


@slow
def test_a_202_without_a_delete_is_retried_when_the_delay_runs_out():
    forgetful = Subscriber([202, 200])
    q = push_queue([("f", forgetful)], retries=2, retries_delay=DELAY)
    [msg_id] = P.post(q, "again")
    assert wait_for(lambda: forgetful.count() == 1)
    # the 202 runs out after DELAY, then the retry waits DELAY more: exactly 2 x DELAY on the
    # embedded back end, a few statements later on PostgreSQL
    assert wait_for(lambda: forgetful.count() == 2, timeout=2 * DELAY + 2)
    assert forgetful.got[1][0] - forgetful.got[0][0] >= DELAY - 0.2
    r1 = forgetful.got[0][1]["Iron-Reservation-Id"]
    assert forgetful.got[1][1]["Iron-Reservation-Id"] != r1
    assert wait_for(lambda: gone(q, msg_id))
    forgetful.close()


def test_connection_refused_and_too_slow_count_as_failures():
    sleepy = Subscriber([200], sleep=2.5)  # push_timeout is 1 s in this module
    errors = unique()
    refused = "http://127.0.0.1:%d/nobody" % free_port()
    q = push_queue([("gone", refused), ("sleepy", sleepy)], retries=0, error_queue=errors)
    [msg_id] = P.post(q, "anyone?")
    assert wait_for(lambda: gone(q, msg_id), timeout=6)
    [err] = P.peek(errors)
    report = json.loads(err["body"])
    assert sorted(s["name"] for s in report["subscribers"]) == ["gone", "sleepy"], report
    assert all(s["code"] == 0 and "no answer" in s["msg"] for s in report["subscribers"]), report
    sleepy.close()


def test_webhook_posts_are_pushed_as_well():
    sub = Subscriber()
    q = push_queue([("s", sub)])
    st, body, _ = P.req("POST", P.path(q, "webhook"), raw="raw webhook body",
                        headers={"Content-Type": "text/plain"})
    assert st in (200, 201), (st, body)
    assert wait_for(lambda: sub.count() == 1)
    assert sub.got[0][2] == b"raw webhook body"
    sub.close()


def test_push_statuses_of_pull_queues_and_missing_messages():
    pull = unique()
    [msg_id] = P.post(pull, "x")
    st, body = statuses(pull, msg_id)
    assert st == 400 and body["msg"] == "Queue is not a push queue", (st, body)
    sub = Subscriber([202])
    q = push_queue([("s", sub)])
    assert statuses(q, "1")[0] == 404
    sub.close()


@slow
# The embedded back end keeps delivery state in memory, so a restart starts delivery over
# at once; on PostgreSQL the state (the retry 60 s away) survives the restart, which
# test_pg_nodes.py proves with a node that dies.
@sqlite_only
def test_a_pending_push_is_delivered_after_a_crash():
    sub = Subscriber([500, 200])
    q = push_queue([("s", sub)], retries=3, retries_delay=60)
    [msg_id] = P.post(q, "survives")
    assert wait_for(lambda: sub.count() == 1)
    srv.kill()  # SIGKILL with the retry 60 s away
    srv.restart()
    assert wait_for(lambda: sub.count() == 2)  # delivery starts over at once
    assert sub.got[1][2] == b"survives"
    assert sub.got[1][1]["Iron-Message-Id"] == msg_id
    assert wait_for(lambda: gone(q, msg_id))
    sub.close()


def test_queue_subscribers_post_to_a_queue_of_the_same_project():
    target = unique()
    q = push_queue([("q", "ironmq:///" + target)])
    [msg_id] = P.post(q, "to a queue")
    assert wait_for(lambda: gone(q, msg_id))
    [m] = P.reserve(target, n=10)
    assert m["body"] == "to a queue"


def test_subscribers_that_loop_back_are_refused():
    a, b = unique(), unique()
    st, body, _ = P.req("PUT", P.path(a), {"queue": {"push": {"subscribers": [
        {"name": "self", "url": "ironmq:///" + a}]}}})
    assert st == 400 and "circle" in body["msg"], (st, body)
    assert push_queue([("to-b", "ironmq:///" + b)])  # a queue pushing to b is fine
    first = push_queue([("to-b", "ironmq:///" + b)])
    st, body, _ = P.req("PUT", P.path(b), {"queue": {"push": {"subscribers": [
        {"name": "back", "url": "ironmq:///" + first}]}}})
    assert st == 400 and "circle" in body["msg"], (st, body)  # b -> first -> b
    own = "http://127.0.0.1:%d/3/projects/p/queues/%s/messages" % (srv.port, a)
    st, body, _ = P.req("PUT", P.path(a), {"queue": {"push": {"subscribers": [
        {"name": "me", "url": own}]}}})
    assert st == 400 and "back at this queue" in body["msg"], (st, body)
    st, body, _ = P.req("PUT", P.path(a), {"queue": {"push": {"subscribers": [
        {"name": "q", "url": "ironmq:///not a name"}]}}})
    assert st == 400, (st, body)


def test_push_allow_limits_the_hosts_subscribers_may_be_at():
    with Server.start(["--push-allow", "127.0.0.1, *.hooks.example"]) as other:
        p = other.project("p")
        for url, ok in (("http://127.0.0.1:9/x", True), ("https://a.hooks.example/x", True),
                        ("http://hooks.example/x", False), ("http://10.0.0.1/x", False),
                        ("http://localhost:9/x", False), ("ironmq:///local", True)):
            st, body, _ = p.req("PUT", p.path(unique()), {"queue": {"push": {"subscribers": [
                {"name": "s", "url": url}]}}})
            assert (st == 200) == ok, (url, st, body)
            if not ok:
                assert "push_allow" in body["msg"], body


@sqlite_only  # restarts delivery at once (see above); test_pg_nodes.py has the PostgreSQL case
def test_push_headers_posted_with_a_message_reach_the_subscribers_and_survive_a_restart():
    sub = Subscriber([500, 200])
    q = unique()
    subs = [{"name": "s", "url": sub.url, "headers": {"X-Shared": "from-subscriber", "X-Sub": "1"}}]
    assert P.req("PUT", P.path(q), {"queue": {"push": {"subscribers": subs, "retries_delay": 60}}})[0] == 200
    st, body, _ = P.req("POST", P.path(q, "messages"), {"messages": [
        {"body": "with headers", "push_headers": {"X-Shared": "from-message", "X-Trace": "t-1"}}]})
    assert st == 201, (st, body)
    assert wait_for(lambda: sub.count() == 1)
    srv.kill()
    srv.restart()  # delivery starts over, with the headers read back from disk
    assert wait_for(lambda: sub.count() == 2)
    for _, headers, _ in sub.got:
        assert headers["X-Trace"] == "t-1", headers
        assert headers["X-Shared"] == "from-message", headers  # the message's own win
        assert headers["X-Sub"] == "1", headers
    for bad in ({"X-A": "line\r\nbreak"}, {"Bad Name": "v"}, {"Content-Type": "x"}):
        st, body, _ = P.req("POST", P.path(q, "messages"), {"messages": [
            {"body": "x", "push_headers": bad}]})
        assert st == 400, (bad, st, body)
    sub.close()
