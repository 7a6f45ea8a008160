#!/usr/bin/python3
"""tests/clients/sqs/boto2_seed.py — the classic boto 2 SQS tutorial, against anvil.

    ANVIL_BIN=/path/to/anvil /usr/bin/python3 tests/clients/sqs/boto2_seed.py [FILTER ...]

Debian 12's python3-boto 2.49.0, called exactly as its tutorial and API do
(boto/sqs/connection.py, queue.py, message.py): SQSConnection pointed at
http://127.0.0.1:PORT through an SQSRegionInfo whose endpoint is 127.0.0.1 plus
is_secure=False and port=PORT; create_queue / get_all_queues / get_queue / write /
get_messages / read / delete_message / count / get_attributes / set_attribute / clear /
dump / save_to_file / load_from_file / write_batch / delete_message_batch /
change_message_visibility(_batch) / delete_queue, with Message (base64 bodies),
RawMessage and JSONMessage; message attributes.
Servers: A in dev mode (any key); K with `--sqs-key AKIDK:SECRETK:projk`, where boto 2's
own SigV4 signing (what SQSConnection uses) and its SigV2 handler are verified.
Prints `ok NAME` / `FAIL NAME: reason`, then `RESULT passed=N failed=M`; exits 1 on failure.
"""
import base64
import contextlib
import io
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqs_common as sc  # noqa: E402  (first: it sets BOTO_CONFIG=/dev/null, no proxies)

import boto  # noqa: E402
import boto.sqs  # noqa: E402
import boto.sqs.connection  # noqa: E402
import boto.sqs.regioninfo  # noqa: E402
from boto.exception import SQSError  # noqa: E402
from boto.sqs.jsonmessage import JSONMessage  # noqa: E402
from boto.sqs.message import Message, RawMessage  # noqa: E402
from boto.sqs.queue import Queue  # noqa: E402

eq = sc.eq
FILTERS = [a for a in sys.argv[1:] if not a.startswith("-")]

# No retries (a failure must show at once) and a socket timeout above the longest poll.
if not boto.config.has_section("Boto"):
    boto.config.add_section("Boto")
boto.config.set("Boto", "num_retries", "0")
boto.config.set("Boto", "http_socket_timeout", "30")

A = K = None
conn = None      # the tutorial's connection to A
q = None         # the tutorial's queue 'myqueue'
TEXT = "This is my first message."


def connect(server, akid="AKIDEXAMPLE", secret="secret", cls=boto.sqs.connection.SQSConnection):
    return cls(akid, secret, is_secure=False, port=server.port,
               region=boto.sqs.regioninfo.SQSRegionInfo(name="us-east-1", endpoint="127.0.0.1"))


class SigV2Connection(boto.sqs.connection.SQSConnection):
    """SQSConnection with boto 2's Signature Version 2 handler (QuerySignatureV2AuthHandler)
    instead of SigV4: what old SQS clients sent."""

    def _required_auth_capability(self):
        return ["sign-v2"]


class BytesMessage(RawMessage):
    """Bodies as bytes, so that Queue.dump (which opens its file 'wb') can write them."""

    def decode(self, value):
        return value.encode("utf-8") if isinstance(value, str) else value


def expect_sqs_error(code, fn, *args, status=400, **kwargs):
    try:
        result = fn(*args, **kwargs)
    except SQSError as e:
        if e.error_code != code or e.status != status:
            raise AssertionError("expected %s %s, got %s %s (%r)" % (status, code, e.status, e.error_code,
                                                                     e.error_message))
        return e
    raise AssertionError("expected %s, the call succeeded: %r" % (code, result))


def url_of(server, name, account=sc.DEFAULT_ACCOUNT):
    return "http://127.0.0.1:%d/%s/%s" % (server.port, account, name)


def v3_bodies(server, name, account=sc.DEFAULT_ACCOUNT):
    st, body = sc.v3(server.port, "GET", sc.v3_queue_path(account, name, "messages") + "?n=100")
    eq(st, 200, "v3 peek (%r)" % body)
    return [m["body"] for m in body["messages"]]


def fresh_queue(prefix, visibility_timeout=None, message_class=Message):
    queue = conn.create_queue(sc.unique(prefix), visibility_timeout)
    queue.set_message_class(message_class)
    return queue


# ==== the tutorial, in order ====

def check_connection():
    eq(conn.host, "127.0.0.1", "host")
    eq(conn.port, A.port, "port")
    eq(conn.is_secure, False, "is_secure")
    eq(conn.region.name, "us-east-1", "region")


def check_create_queue():
    global q
    q = conn.create_queue("myqueue", 120)
    assert isinstance(q, Queue), q
    eq(q.url, url_of(A, "myqueue"), "Queue.url")
    eq(q.name, "myqueue", "Queue.name")
    eq(q.id, "/%s/myqueue" % sc.DEFAULT_ACCOUNT, "Queue.id (the path boto 2 posts to)")
    eq(q.get_timeout(), 120, "visibility timeout given to create_queue")


def check_create_queue_again():
    again = conn.create_queue("myqueue", 120)
    eq(again.url, q.url, "same name and attributes: the same queue")
    expect_sqs_error("QueueAlreadyExists", conn.create_queue, "myqueue", 30)


def check_get_all_queues():
    conn.create_queue("myotherqueue")
    conn.create_queue("yourqueue")
    urls = sorted(x.url for x in conn.get_all_queues())
    for name in ("myqueue", "myotherqueue", "yourqueue"):
        assert url_of(A, name) in urls, "%s missing from %r" % (name, urls)
    mine = sorted(x.name for x in conn.get_all_queues(prefix="my"))
    eq(mine, ["myotherqueue", "myqueue"], "get_all_queues(prefix='my')")
    eq(conn.get_all_queues(prefix="nothing-starts-like-this"), [], "no match")


def check_get_queue():
    found = conn.get_queue("myqueue")
    assert found is not None, "get_queue('myqueue') is None"
    eq(found.url, q.url, "get_queue")
    eq(conn.lookup("myqueue").url, q.url, "lookup")
    eq(conn.get_queue("no-such-queue"), None, "get_queue of a missing queue")


def check_write_message():
    m = Message()
    m.set_body(TEXT)
    written = q.write(m)
    assert written is m, "write returns the message"
    assert m.id and m.id.isdigit(), "message id %r is not the v3 decimal id" % m.id
    encoded = base64.b64encode(TEXT.encode()).decode()
    eq(v3_bodies(A, "myqueue"), [encoded], "what is stored: Message's base64 body")
    raw = conn.send_message(q, "direct send")
    eq(getattr(raw, "MD5OfMessageBody", None), sc.md5_hex("direct send"), "MD5OfMessageBody")
    assert raw.id and raw.id.isdigit(), raw.id


def check_count():
    eq(q.count(), 2, "count()")


def check_get_messages():
    rs = q.get_messages()
    eq(len(rs), 1, "get_messages() returns one message")
    m = rs[0]
    eq(m.get_body(), TEXT, "get_body() decodes the base64 body")
    eq(m.md5, sc.md5_hex(m.get_body_encoded()), "MD5OfBody")
    assert m.receipt_handle, "receipt_handle"
    assert m.queue is q, "message.queue"
    eq(q.delete_message(m), True, "delete_message")
    m2 = q.read()
    assert m2 is not None, "read() found the second message"
    eq(m2.get_body(), "direct send", "a body that is not base64 is returned as sent")
    eq(m2.delete(), True, "Message.delete()")
    eq(q.count(), 0, "count() after the deletes")


def check_raw_message():
    q.set_message_class(RawMessage)
    try:
        body = 'raw <xml> & "quotes" ✓'
        m = RawMessage()
        m.set_body(body)
        q.write(m)
        eq(v3_bodies(A, "myqueue"), [body], "RawMessage stores the body as is")
        got = q.read(visibility_timeout=60)
        eq(got.get_body(), body, "RawMessage body")
        eq(got.md5, sc.md5_hex(body), "MD5OfBody")
        got.delete()
    finally:
        q.set_message_class(Message)


def check_read_visibility_timeout():
    q.write(q.new_message("visibility"))
    m = q.read(visibility_timeout=1)
    eq(m.get_body(), "visibility", "read")
    eq(q.read(), None, "invisible for 1 s")
    time.sleep(1.3)
    again = q.read(wait_time_seconds=2)
    assert again is not None, "visible again after its visibility timeout"
    eq(again.id, m.id, "same message")
    again.delete()


def check_get_attributes():
    a = q.get_attributes()
    for k, v in (("VisibilityTimeout", "120"), ("MaximumMessageSize", "262144"),
                 ("MessageRetentionPeriod", "345600"), ("DelaySeconds", "0"),
                 ("ApproximateNumberOfMessages", "0"),
                 ("QueueArn", "arn:aws:sqs:us-east-1:%s:myqueue" % sc.DEFAULT_ACCOUNT)):
        eq(a.get(k), v, k)
    one = q.get_attributes("VisibilityTimeout")
    eq(dict(one), {"VisibilityTimeout": "120"}, "one attribute")
    eq(q.arn, a["QueueArn"], "boto 2's Queue.arn matches QueueArn")


def check_set_attribute():
    eq(q.set_attribute("VisibilityTimeout", 60), True, "set_attribute")
    eq(q.get_timeout(), 60, "get_timeout after set_attribute")
    eq(q.set_timeout(90), True, "set_timeout")
    eq(q.get_attributes("VisibilityTimeout")["VisibilityTimeout"], "90", "after set_timeout")


def check_set_attribute_invalid():
    expect_sqs_error("InvalidAttributeValue", q.set_attribute, "VisibilityTimeout", 99999)  # real SQS's code
    expect_sqs_error("InvalidAttributeName", q.set_attribute, "NoSuchAttribute", 1)
    eq(q.get_timeout(), 90, "unchanged")


def check_message_attributes():
    m = Message()
    m.set_body("with attributes")
    m.message_attributes = {
        "name1": {"data_type": "String", "string_value": "I am a string"},
        "name2": {"data_type": "Number", "string_value": "12"},
        "name3": {"data_type": "Binary", "binary_value": base64.b64encode(b"\x00\xffbinary").decode()}}
    q.write(m)
    sent = conn.send_message(q, "direct", message_attributes=m.message_attributes)
    boto3_shape = {"name1": {"DataType": "String", "StringValue": "I am a string"},
                   "name2": {"DataType": "Number", "StringValue": "12"},
                   "name3": {"DataType": "Binary", "BinaryValue": b"\x00\xffbinary"}}
    eq(sent.md5_message_attributes, sc.md5_of_message_attributes(boto3_shape),
       "MD5OfMessageAttributes of send_message")
    rs = q.get_messages(10, message_attributes=["All"])
    eq(len(rs), 2, "both received")
    for got in rs:
        eq(dict((k, dict(v)) for k, v in got.message_attributes.items()), m.message_attributes,
           "message_attributes")
        eq(got.md5_message_attributes, sc.md5_of_message_attributes(boto3_shape), "MD5OfMessageAttributes")
    bodies = sorted(x.get_body() for x in rs)
    eq(bodies, ["direct", "with attributes"], "bodies")
    eq(len(q.delete_message_batch(rs).results), 2, "deleted")


def check_write_batch():
    q.set_message_class(RawMessage)
    try:
        r = q.write_batch([("1", "batch one", 0), ("2", "batch two", 0),
                           ("3", "batch three", 0, {"k": {"data_type": "String", "string_value": "v"}})])
        eq(len(r.results), 3, "results")
        eq(r.errors, [], "errors")
        for res in r.results:
            assert res["message_id"].isdigit(), res
        md5s = {res["id"]: res["message_md5"] for res in r.results}
        eq(md5s, {"1": sc.md5_hex("batch one"), "2": sc.md5_hex("batch two"), "3": sc.md5_hex("batch three")},
           "MD5OfMessageBody per entry")
        rs = q.get_messages(10)
        eq(sorted(x.get_body() for x in rs), ["batch one", "batch three", "batch two"], "bodies")
        d = q.delete_message_batch(rs)
        eq(sorted(x["id"] for x in d.results), sorted(x.id for x in rs), "delete_message_batch results")
        eq(d.errors, [], "delete_message_batch errors")
        eq(q.count(), 0, "count")
        expect_sqs_error("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", q.write_batch,
                         [("a", "x", 0), ("a", "y", 0)])
    finally:
        q.set_message_class(Message)


def check_change_message_visibility():
    q.write(q.new_message("change me"))
    m = q.read(visibility_timeout=60)
    eq(q.read(), None, "in flight")
    eq(conn.change_message_visibility(q, m.receipt_handle, 0), True, "change_message_visibility")
    # (wait_time_seconds=1: whether "at once" means before the very next request is
    # boto3_suite.py's visibility_zero_is_immediate)
    m2 = q.read(visibility_timeout=60, wait_time_seconds=1)
    assert m2 is not None and m2.id == m.id, "visible again after a change to 0"
    m2.change_visibility(0)
    m3 = q.read(visibility_timeout=60, wait_time_seconds=1)
    assert m3 is not None and m3.id == m.id, "Message.change_visibility(0)"
    r = q.change_message_visibility_batch([(m3, 0)])
    # boto 2's BatchResults collects only elements named *MessageBatchResultEntry, so the
    # ChangeMessageVisibilityBatchResultEntry of a success never shows in r.results.
    eq(r.errors, [], "change_message_visibility_batch errors")
    m4 = q.read(wait_time_seconds=1)
    assert m4 is not None and m4.id == m.id, "visible after the batch change"
    m4.delete()


def check_clear():
    for i in range(3):
        q.write(q.new_message("clear %d" % i))
    eq(q.count(), 3, "count before clear")
    eq(q.clear(), True, "clear() (PurgeQueue)")
    eq(q.count(), 0, "count after clear")
    eq(q.read(), None, "nothing to read")


def check_dump():
    dq = fresh_queue("dump", message_class=BytesMessage)
    for i in range(3):
        conn.send_message(dq, "dumped %d" % i)
    path = os.path.join(sc.harness.make_temp_dir("anvil-sqs-dump-"), "queue.dump")
    n = dq.dump(path, sep=b"\n")
    eq(n, 3, "dump() count")
    with open(path, "rb") as f:
        eq(sorted(f.read().split(b"\n")[:-1]), [b"dumped 0", b"dumped 1", b"dumped 2"], "dump file")
    eq(dq.count(), 0, "dump leaves them in flight (not visible)")
    eq(int(dq.get_attributes("ApproximateNumberOfMessagesNotVisible")["ApproximateNumberOfMessagesNotVisible"]),
       3, "still in the queue")


def check_save_to_file():
    sq = fresh_queue("save")
    for i in range(3):
        sq.write(sq.new_message("saved %d" % i))
    fp = io.StringIO()
    n = sq.save_to_file(fp)
    eq(n, 3, "save_to_file count")
    eq(sorted(fp.getvalue().split("\n")[:-1]), ["saved 0", "saved 1", "saved 2"], "saved text")
    eq(sq.count(), 0, "save_to_file deletes what it saved")
    eq(int(sq.get_attributes("ApproximateNumberOfMessagesNotVisible")["ApproximateNumberOfMessagesNotVisible"]),
       0, "nothing in flight either")


def check_load_from_file():
    lq = fresh_queue("load")
    with contextlib.redirect_stdout(io.StringIO()):  # load_from_file prints per message
        n = lq.load_from_file(io.StringIO("first line\n\nsecond\nmessage\n\n"))
    eq(n, 2, "load_from_file count")
    got = sorted(m.get_body() for m in lq.get_messages(10))
    eq(got, ["first line\n", "second\nmessage\n"], "loaded bodies")


def check_json_message():
    jq = fresh_queue("json", message_class=JSONMessage)
    body = {"event": "signup", "user": 42, "tags": ["a", "<b>"]}
    jq.write(JSONMessage(body=body))
    m = jq.read()
    assert m is not None, "read"
    eq(m.get_body(), body, "JSONMessage round trip")


def check_long_poll():
    lq = fresh_queue("lp")
    other = connect(A)

    def send_later():
        time.sleep(1.0)
        other.send_message(other.get_queue(lq.name), "woken")

    t = threading.Thread(target=send_later, daemon=True)
    t.start()
    start = time.monotonic()
    lq.set_message_class(RawMessage)
    m = lq.read(wait_time_seconds=10)
    took = time.monotonic() - start
    t.join(5)
    assert m is not None, "the long poll returned nothing"
    eq(m.get_body(), "woken", "body")
    assert 0.8 <= took < 4.0, "long poll answered after %.2f s, expected ~1 s" % took
    start = time.monotonic()
    eq(lq.read(wait_time_seconds=1), None, "empty wait")
    took = time.monotonic() - start
    assert 0.8 <= took < 3.0, "an empty 1 s wait took %.2f s" % took


def _redrive_pair(max_receives):
    dlq = fresh_queue("dlq")
    src = fresh_queue("src")
    arn = dlq.get_attributes("QueueArn")["QueueArn"]
    eq(src.set_attribute("RedrivePolicy", json.dumps({"maxReceiveCount": max_receives, "deadLetterTargetArn": arn})),
       True, "set RedrivePolicy")
    return src, dlq


def check_redrive_policy():
    src, dlq = _redrive_pair(1)
    src.write(src.new_message("to the dlq"))
    m = src.read(visibility_timeout=0)
    eq(m.get_body(), "to the dlq", "first receive")
    eq(src.read(wait_time_seconds=1), None, "moved to the DLQ on the next receive")
    d = dlq.read()
    assert d is not None, "the message is in the DLQ"
    eq((d.id, d.get_body()), (m.id, "to the dlq"), "same message in the DLQ")


def check_dead_letter_source_queues():
    src, dlq = _redrive_pair(3)
    try:
        srcs = conn.get_dead_letter_source_queues(dlq)
    except SQSError as e:
        # the spec makes ListDeadLetterSourceQueues optional: refusing it cleanly is allowed
        eq((e.status, e.error_code), (400, "AWS.SimpleQueueService.UnsupportedOperation"), "refused as unsupported")
        print("#   (ListDeadLetterSourceQueues: UnsupportedOperation)")
        return
    eq([x.url for x in srcs], [src.url], "get_dead_letter_source_queues")


def check_errors():
    missing = Queue(conn, url_of(A, "never-created"))
    e = expect_sqs_error("AWS.SimpleQueueService.NonExistentQueue", missing.write, Message(body="x"))
    eq(e.type, "Sender", "Error/Type")
    st, body = sc.v3(A.port, "GET", sc.v3_queue_path(sc.DEFAULT_ACCOUNT, "never-created"))
    eq(st, 404, "sending to a missing queue created nothing (%r)" % body)
    expect_sqs_error("ReceiptHandleIsInvalid", conn.delete_message_from_handle, q, "garbage")
    expect_sqs_error("InvalidParameterValue", q.get_messages, 11)


def check_delete_queue():
    eq(conn.delete_queue(q), True, "delete_queue")
    eq(conn.get_queue("myqueue"), None, "get_queue after delete")
    assert url_of(A, "myqueue") not in [x.url for x in conn.get_all_queues()], "still listed"
    st, body = sc.v3(A.port, "GET", sc.v3_queue_path(sc.DEFAULT_ACCOUNT, "myqueue"))
    eq(st, 404, "v3 GET after delete_queue (%r)" % body)


# ==== server K: --sqs-key, boto 2's signatures checked ====

def _signed_round_trip(c, label):
    name = sc.unique(label)
    sq = c.create_queue(name, 45)
    assert sq.url.endswith("/projk/" + name), "queue URL %r is not in account projk" % sq.url
    eq(sq.id, "/projk/" + name, "Queue.id")
    sq.set_message_class(RawMessage)
    sq.write(RawMessage(body="signed + ünïcode & symbols=?"))
    m = sq.read(visibility_timeout=30)
    assert m is not None, "read"
    eq(m.get_body(), "signed + ünïcode & symbols=?", "body")
    eq(sq.delete_message(m), True, "delete")
    eq(sq.count(), 0, "count")
    eq([x.name for x in c.get_all_queues(prefix=name)], [name], "get_all_queues")
    eq(sq.get_timeout(), 45, "get_timeout")


def check_sigv4_signed():
    _signed_round_trip(connect(K, "AKIDK", "SECRETK"), "v4")


def check_sigv4_wrong_secret():
    c = connect(K, "AKIDK", "not-the-secret")
    expect_sqs_error("SignatureDoesNotMatch", c.create_queue, sc.unique("no"), status=403)
    expect_sqs_error("SignatureDoesNotMatch", c.get_all_queues, status=403)


def check_sigv4_unknown_key():
    c = connect(K, "AKIDNOBODY", "SECRETK")
    expect_sqs_error("InvalidClientTokenId", c.get_all_queues, status=403)


def check_sigv2_signed():
    _signed_round_trip(connect(K, "AKIDK", "SECRETK", cls=SigV2Connection), "v2")


def check_sigv2_wrong_secret():
    c = connect(K, "AKIDK", "not-the-secret", cls=SigV2Connection)
    expect_sqs_error("SignatureDoesNotMatch", c.get_all_queues, status=403)
    sq = connect(K, "AKIDK", "SECRETK").create_queue(sc.unique("v2bad"))
    expect_sqs_error("SignatureDoesNotMatch", c.send_message, Queue(c, sq.url), "x", status=403)
    eq(sq.count(), 0, "a refused send queues nothing")


# ==== run ====

CHECKS_A = [check_connection, check_create_queue, check_create_queue_again, check_get_all_queues,
            check_get_queue, check_write_message, check_count, check_get_messages, check_raw_message,
            check_read_visibility_timeout, check_get_attributes, check_set_attribute,
            check_set_attribute_invalid, check_message_attributes, check_write_batch, check_change_message_visibility, check_clear,
            check_dump, check_save_to_file, check_load_from_file, check_json_message, check_long_poll,
            check_redrive_policy, check_dead_letter_source_queues, check_errors, check_delete_queue]
NEEDS_Q = {check_create_queue_again, check_get_queue, check_write_message, check_count, check_get_messages,
           check_raw_message, check_read_visibility_timeout, check_get_attributes, check_set_attribute,
           check_set_attribute_invalid, check_message_attributes, check_write_batch, check_change_message_visibility, check_clear,
           check_errors, check_delete_queue}
CHECKS_K = [check_sigv4_signed, check_sigv4_wrong_secret, check_sigv4_unknown_key, check_sigv2_signed,
            check_sigv2_wrong_secret]


def main():
    global A, K, conn
    suite = sc.Suite("boto2_seed", budget_s=120)
    print("# boto %s, anvil %s" % (boto.__version__, sc.harness.ANVIL_BIN))
    for label, args, checks in (("A", [], CHECKS_A), ("K", ["--sqs-key", "AKIDK:SECRETK:projk"], CHECKS_K)):
        todo = [(fn.__name__[len("check_"):], fn) for fn in checks]
        todo = [(n, fn) for n, fn in todo if not FILTERS or any(f in n for f in FILTERS)]
        if not todo:
            continue
        server = suite.check("server-%s-starts" % label, sc.start_server, args)
        if server is None:
            for name, _ in todo:
                suite.check(name, _fail, "server %s did not start" % label)
            continue
        if label == "A":
            A = server
            conn = connect(A)
        else:
            K = server
        for name, fn in todo:
            if label == "A" and fn in NEEDS_Q and q is None:
                suite.check(name, _fail, "not run: the tutorial's create_queue('myqueue', 120) failed")
                continue
            failed_before = suite.failed
            suite.check(name, fn, timeout=25)
            if suite.failed > failed_before:  # a crashing server may take a moment to exit
                sc.wait_until(lambda: server.proc.poll() is not None, 1.5)
            died = server.died()
            if died is not None:
                suite.check("server-%s-alive-after-%s" % (label, name), _fail,
                            "anvil exited with status %s: %s" % (died, sc.crash_summary(server)))
                break
        if server.running:
            suite.check("server-%s-stops-cleanly" % label, stop_cleanly, server)
    return suite.finish()


def stop_cleanly(server):
    try:
        server.stop()
    except AssertionError:
        raise AssertionError("after SIGTERM: %s" % sc.crash_summary(server))


def _fail(reason):
    raise AssertionError(reason)


if __name__ == "__main__":
    sys.exit(main())
