"""Long polling: a reserve with `wait` answers as soon as a message is ready, or with []
when the wait ends; waiters are served oldest first; deleting the queue or stopping the
server answers them with []."""
import signal
import threading
import time

from harness import HTTP_TIMEOUT_S, Server, unique

srv = None
P = None


def setup_module():
    global srv, P
    srv = Server.start()
    P = srv.project("p")


def teardown_module():
    srv.stop()


class Waiter(threading.Thread):
    """A reserve with `wait` on a connection of its own, run in the background."""

    def __init__(self, server, project, queue, **args):
        super().__init__(daemon=True)
        self.server, self.project, self.queue, self.args = server, project, queue, args
        self.result = None
        self.error = None
        self.done_at = None
        self.started_at = None
        self.client = server.client()

    def run(self):
        self.started_at = time.monotonic()
        try:
            self.result = self.project.req("POST", self.project.path(self.queue, "reservations"),
                                           self.args, client=self.client,
                                           timeout=self.args.get("wait", 0) + HTTP_TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 — reported by answer()
            self.error = e
        finally:
            self.done_at = time.monotonic()
            self.client.close()

    def answer(self, timeout):
        self.join(timeout)
        assert not self.is_alive(), "long poll did not answer within %.1f s" % timeout
        if self.error:
            raise self.error
        st, body, _ = self.result
        assert st == 200, (st, body)
        return body["messages"]

    def pending(self):
        return self.is_alive()


def start_waiter(queue, server=None, project=None, settle=0.3, **args):
    w = Waiter(server or srv, project or P, queue, **args)
    w.start()
    time.sleep(settle)  # let the reserve reach the server and park
    assert w.pending(), "the long poll answered before anything was posted: %r" % (w.result,)
    return w


def test_long_poll_answers_within_100ms_of_a_post():
    q = unique()
    P.create(q)
    w = start_waiter(q, wait=2)
    posted_at = time.monotonic()
    (mid,) = P.post(q, "wake up")
    msgs = w.answer(3)
    latency = w.done_at - posted_at
    assert [m["id"] for m in msgs] == [mid], msgs
    assert msgs[0]["body"] == "wake up" and msgs[0]["reservation_id"]
    assert latency < 0.1, "long poll answered %.3f s after the post" % latency
    assert P.reserve(q) == [], "the message went to the waiter, reserved"


def test_long_poll_with_nothing_posted_returns_empty_list_when_wait_ends():
    q = unique()
    P.create(q)
    began = time.monotonic()
    st, body, _ = P.req("POST", P.path(q, "reservations"), {"wait": 2}, timeout=10)
    took = time.monotonic() - began
    assert (st, body) == (200, {"messages": []})
    assert 1.9 <= took <= 3.0, "answered after %.2f s" % took


def test_long_poll_returns_at_once_when_messages_are_ready():
    q = unique()
    (mid,) = P.post(q, "ready")
    began = time.monotonic()
    msgs = P.reserve(q, wait=5)
    assert [m["id"] for m in msgs] == [mid]
    assert time.monotonic() - began < 0.5


def test_each_post_goes_to_the_oldest_waiter():
    q = unique()
    P.create(q)
    waiters = [start_waiter(q, settle=0.15, wait=5) for _ in range(3)]
    for i, w in enumerate(waiters):
        (mid,) = P.post(q, "m%d" % i)
        msgs = w.answer(2)
        assert [m["id"] for m in msgs] == [mid], (i, msgs)
        for later in waiters[i + 1:]:
            assert later.pending(), "a younger waiter was served before an older one"


def test_long_poll_gets_up_to_n_messages_of_a_batch_post():
    q = unique()
    P.create(q)
    w = start_waiter(q, n=2, wait=3)
    ids = P.post(q, "a", "b", "c")
    msgs = w.answer(2)
    assert [m["id"] for m in msgs] == ids[:2]
    assert [m["id"] for m in P.peek(q)] == ids[2:]


def test_long_poll_is_woken_when_a_delayed_message_becomes_ready():
    q = unique()
    (mid,) = P.post(q, "delayed", delay=1)
    posted_at = time.monotonic()
    w = start_waiter(q, settle=0.1, wait=5)
    msgs = w.answer(4)
    assert [m["id"] for m in msgs] == [mid]
    assert 0.8 <= w.done_at - posted_at <= 2.0, w.done_at - posted_at


def test_long_poll_is_woken_by_a_release():
    q = unique()
    (mid,) = P.post(q, "x")
    m = P.reserve_one(q)
    w = start_waiter(q, wait=3)
    P.release(q, mid, m["reservation_id"])
    msgs = w.answer(2)
    assert [x["id"] for x in msgs] == [mid] and msgs[0]["reserved_count"] == 2


def test_dead_lettered_message_goes_to_a_waiter_on_the_dead_letter_queue():
    q, dlq = unique(), unique("dlq")
    P.create(q, dead_letter={"queue_name": dlq, "max_reservations": 1})
    P.create(dlq)
    (mid,) = P.post(q, "poison")
    m = P.reserve_one(q)
    on_q = start_waiter(q, wait=2)
    on_dlq = start_waiter(dlq, settle=0.15, wait=5)
    P.release(q, mid, m["reservation_id"])  # ready again, but the next reserve moves it
    got = on_dlq.answer(2)
    assert [x["id"] for x in got] == [mid] and got[0]["reserved_count"] == 2, got
    assert on_q.answer(3) == [], "the waiter on the source queue never gets it"


def test_long_poll_with_delete_removes_what_it_gets():
    q = unique()
    P.create(q)
    w = start_waiter(q, wait=3, delete=True)
    (mid,) = P.post(q, "gone")
    msgs = w.answer(2)
    assert [m["id"] for m in msgs] == [mid]
    assert P.info(q)["size"] == 0


def test_waiter_whose_queue_is_deleted_answers_empty_list():
    q = unique()
    P.create(q)
    w = start_waiter(q, wait=10)
    deleted_at = time.monotonic()
    st, body, _ = P.req("DELETE", P.path(q))
    assert (st, body) == (200, {"msg": "Deleted"})
    assert w.answer(2) == []
    assert w.done_at - deleted_at < 0.5


def test_long_poll_on_unknown_queue_is_404_at_once():
    began = time.monotonic()
    st, body, _ = P.req("POST", P.path(unique(), "reservations"), {"wait": 5})
    assert (st, body) == (404, {"msg": "Queue not found"})
    assert time.monotonic() - began < 1


def test_client_that_gives_up_does_not_swallow_a_message():
    q = unique()
    P.create(q)
    w = Waiter(srv, P, q, wait=10)
    w.client._connect()
    c = w.client.conn
    c.request("POST", P.path(q, "reservations"), body=b'{"wait": 10}',
              headers={"Content-Type": "application/json"})
    time.sleep(0.3)
    c.close()  # hang up while parked
    time.sleep(0.3)
    (mid,) = P.post(q, "for whoever asks next")
    msgs = P.reserve(q, wait=1)
    assert [m["id"] for m in msgs] == [mid], msgs


def test_sqs_long_poll_whose_client_hangs_up_is_forgotten_once():
    # The hang-up and the connection's end both reach the server: the SQS call must be
    # freed once, not twice (this crashed the server).
    sqs = srv.project("000000000000")
    sqs.create("hq")
    body = b'{"QueueUrl": "http://127.0.0.1/000000000000/hq", "WaitTimeSeconds": 5}'
    c = srv.client()
    c._connect()
    c.conn.request("POST", "/", body=body, headers={"X-Amz-Target": "AmazonSQS.ReceiveMessage",
                                                    "Content-Type": "application/x-amz-json-1.0"})
    time.sleep(0.3)
    c.close()
    time.sleep(0.3)
    assert srv.healthy()


def test_sigterm_answers_pending_long_poll_with_empty_list_and_exits_0():
    with Server.start() as s:
        proj = s.project("p")
        q = unique()
        proj.create(q)
        w = start_waiter(q, server=s, project=proj, wait=20)
        signalled_at = time.monotonic()
        s.signal(signal.SIGTERM)
        assert w.answer(3) == []
        assert w.done_at - signalled_at < 1.0, w.done_at - signalled_at
        code = s.wait_exit(10)
        assert code == 0, "exit status %s\n%s" % (code, s.log_tail())
