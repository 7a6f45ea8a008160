#!/usr/bin/python3
"""tests/clients/sqs/boto3_suite.py — anvil's SQS front driven by the real boto3 client.

    ANVIL_BIN=/path/to/anvil /usr/bin/python3 tests/clients/sqs/boto3_suite.py [FILTER ...]

Debian 12's python3-boto3 1.26.27 / botocore 1.29.27 (query protocol, XML answers).
Starts its own servers (tests/e2e/harness.py: port 0, temp data dir):
  A  dev mode (no tokens, no SQS keys): every action, errors, long polling, redrive,
     cross-API interplay with the IronMQ v3 API, boto3's resource API;
  B  `--token tok-b:projb --token admin-b`: the `project:token` access key form, checked;
  C  `--sqs-key AKIDC:SECRETC:projc`: SigV4 signatures verified.
Prints `ok NAME` / `FAIL NAME: reason` per check and `RESULT passed=N failed=M` last;
exits 1 if anything failed. A FILTER keeps the checks whose name contains it.

botocore 1.29 does not check SQS's MD5 digests itself (the Java and .NET SDKs do), so this
suite installs a checker on the client's events that does what they do: every SendMessage,
SendMessageBatch and ReceiveMessage answer's MD5OfMessageBody / MD5OfBody and
MD5OfMessageAttributes are recomputed and a mismatch raises. Checks also recompute them.

Time: on the embedded back end the visibility-timeout, delay and long-poll checks move
server A's clock through the test kit (POST /admin/clock/advance, docs/testing-with-anvil.md)
instead of sleeping: by as much as they slept, so later checks see the same clock; a long
poll runs in a thread while the clock is frozen, is checked to be still waiting, and is
answered by the advance. On the PostgreSQL back end (ANVIL_TEST_PG) the clock cannot be
moved and the same checks run in real time.
"""
import copy
import http.client
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sqs_common as sc  # noqa: E402  (first: it cleans the environment)

import boto3  # noqa: E402
import botocore  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

eq = sc.eq
A = B = C = None  # the servers
FILTERS = [a for a in sys.argv[1:] if not a.startswith("-")]


# ---- clients ----

class MD5Mismatch(Exception):
    pass


def _remember_params(params, context, **kwargs):
    context["md5check_params"] = copy.deepcopy(params)


def _check_send(http_response, parsed, context, **kwargs):
    if http_response.status_code != 200:
        return
    sent = context.get("md5check_params", {})
    want = sc.md5_hex(sent.get("MessageBody", ""))
    if parsed.get("MD5OfMessageBody") != want:
        raise MD5Mismatch("SendMessage: MD5OfMessageBody %r, body's MD5 is %r"
                          % (parsed.get("MD5OfMessageBody"), want))
    attrs = sent.get("MessageAttributes")
    if attrs:
        want = sc.md5_of_message_attributes(attrs)
        if parsed.get("MD5OfMessageAttributes") != want:
            raise MD5Mismatch("SendMessage: MD5OfMessageAttributes %r, attributes' MD5 is %r"
                              % (parsed.get("MD5OfMessageAttributes"), want))


def _check_send_batch(http_response, parsed, context, **kwargs):
    if http_response.status_code != 200:
        return
    entries = {e["Id"]: e for e in context.get("md5check_params", {}).get("Entries", [])}
    for ok in parsed.get("Successful", []):
        sent = entries.get(ok.get("Id"))
        if sent is None:
            raise MD5Mismatch("SendMessageBatch: answer names Id %r, never sent" % ok.get("Id"))
        if ok.get("MD5OfMessageBody") != sc.md5_hex(sent["MessageBody"]):
            raise MD5Mismatch("SendMessageBatch entry %s: MD5OfMessageBody %r, want %r"
                              % (ok["Id"], ok.get("MD5OfMessageBody"),
                                 sc.md5_hex(sent["MessageBody"])))
        if sent.get("MessageAttributes"):
            want = sc.md5_of_message_attributes(sent["MessageAttributes"])
            if ok.get("MD5OfMessageAttributes") != want:
                raise MD5Mismatch("SendMessageBatch entry %s: MD5OfMessageAttributes %r, want %r"
                                  % (ok["Id"], ok.get("MD5OfMessageAttributes"), want))


def _check_receive(http_response, parsed, **kwargs):
    if http_response.status_code != 200:
        return
    for m in parsed.get("Messages", []):
        if m.get("MD5OfBody") != sc.md5_hex(m.get("Body", "")):
            raise MD5Mismatch("ReceiveMessage %s: MD5OfBody %r, body's MD5 is %r"
                              % (m.get("MessageId"), m.get("MD5OfBody"), sc.md5_hex(m.get("Body", ""))))
        if m.get("MessageAttributes"):
            want = sc.md5_of_message_attributes(m["MessageAttributes"])
            if m.get("MD5OfMessageAttributes") != want:
                raise MD5Mismatch("ReceiveMessage %s: MD5OfMessageAttributes %r, attributes' MD5 is %r"
                                  % (m.get("MessageId"), m.get("MD5OfMessageAttributes"), want))


def install_md5_checker(client):
    ev = client.meta.events
    for op in ("SendMessage", "SendMessageBatch"):
        ev.register("before-parameter-build.sqs.%s" % op, _remember_params)
    ev.register("after-call.sqs.SendMessage", _check_send)
    ev.register("after-call.sqs.SendMessageBatch", _check_send_batch)
    ev.register("after-call.sqs.ReceiveMessage", _check_receive)
    return client


CONFIG = Config(connect_timeout=5, read_timeout=30,
                retries={"mode": "standard", "total_max_attempts": 1})


def endpoint(server):
    return "http://127.0.0.1:%d" % server.port


def client(server, akid="AKIDEXAMPLE", secret="not-checked-in-dev-mode", region=sc.REGION, **kwargs):
    session = boto3.session.Session()
    c = session.client("sqs", endpoint_url=endpoint(server), region_name=region,
                       aws_access_key_id=akid, aws_secret_access_key=secret, config=CONFIG, **kwargs)
    return install_md5_checker(c)


def resource(server, akid="AKIDEXAMPLE", secret="x"):
    session = boto3.session.Session()
    r = session.resource("sqs", endpoint_url=endpoint(server), region_name=sc.REGION,
                         aws_access_key_id=akid, aws_secret_access_key=secret, config=CONFIG)
    install_md5_checker(r.meta.client)
    return r


# ---- helpers ----

def expect_error(codes, fn, *args, status=None, **kwargs):
    """Calls fn, which must raise ClientError with one of `codes` (a str or a tuple) and,
    if given, that HTTP status. Returns the error."""
    if isinstance(codes, str):
        codes = (codes,)
    try:
        result = fn(*args, **kwargs)
    except ClientError as e:
        code = e.response["Error"].get("Code")
        got_status = e.response["ResponseMetadata"].get("HTTPStatusCode")
        if code not in codes:
            raise AssertionError("expected error %s, got %s (HTTP %s, %r)"
                                 % ("/".join(codes), code, got_status, e.response["Error"].get("Message")))
        if status is not None and got_status != status:
            raise AssertionError("error %s: expected HTTP %s, got %s" % (code, status, got_status))
        if not e.response["Error"].get("Message"):
            raise AssertionError("error %s has no Message" % code)
        return e
    if isinstance(result, dict):
        result.pop("ResponseMetadata", None)
    raise AssertionError("expected error %s, the call succeeded: %r" % ("/".join(codes), result))


def queue_url(server, name, account=sc.DEFAULT_ACCOUNT):
    return "%s/%s/%s" % (endpoint(server), account, name)


def new_queue(c, prefix="q", **attributes):
    name = sc.unique(prefix)
    args = {"QueueName": name}
    if attributes:
        args["Attributes"] = {k: str(v) for k, v in attributes.items()}
    return c.create_queue(**args)["QueueUrl"]


def attrs(c, url, *names):
    return c.get_queue_attributes(QueueUrl=url, AttributeNames=list(names) or ["All"])["Attributes"]


def counts(c, url):
    a = attrs(c, url, "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
              "ApproximateNumberOfMessagesDelayed")
    return (int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"]),
            int(a["ApproximateNumberOfMessagesDelayed"]))


def receive(c, url, **kwargs):
    kwargs.setdefault("WaitTimeSeconds", 0)
    if kwargs["WaitTimeSeconds"] is None:  # not sent: the queue's ReceiveMessageWaitTimeSeconds
        del kwargs["WaitTimeSeconds"]
    return c.receive_message(QueueUrl=url, **kwargs).get("Messages", [])


# ---- server A's clock (the test kit's /admin/clock routes) ----

VIRTUAL_CLOCK = False  # set in main(): A runs on the embedded back end, in test mode


def admin(method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", A.port, timeout=10)
    try:
        conn.request(method, "/admin" + path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        text = resp.read().decode()
        return resp.status, (json.loads(text) if text.startswith("{") else text)
    finally:
        conn.close()


def clock(action, **body):
    """POST /admin/clock/ACTION on A (freeze, advance, unfreeze); returns the reading."""
    status, reading = admin("POST", "/clock/" + action, body)
    eq(status, 200, "clock %s: %s" % (action, reading))
    return reading


def clock_is_virtual():
    try:
        status, body = admin("GET", "")
    except OSError:
        return False
    return status == 200 and isinstance(body, dict) and body.get("backend") == "embedded"


def let_time_pass(seconds, real_s):
    """`seconds` of A's clock: an advance (every deadline on the way fires), or a sleep of
    real_s (a little more, for the server's timers) in real time."""
    if VIRTUAL_CLOCK:
        clock("advance", seconds=seconds)
    else:
        time.sleep(real_s)


def long_poll(c, url, seconds, **kwargs):
    """receive() with a WaitTimeSeconds, given `seconds` of A's clock to answer in. Virtual:
    the clock is frozen, the receive runs in a thread, must still be waiting after 50 ms of
    real time, and is answered by advancing `seconds`. Returns (messages, real seconds taken)."""
    if not VIRTUAL_CLOCK:
        start = time.monotonic()
        msgs = receive(c, url, **kwargs)
        return msgs, time.monotonic() - start
    box = {}

    def run():
        try:
            box["msgs"] = receive(c, url, **kwargs)
        except Exception as e:  # noqa: BLE001 — re-raised in the check
            box["error"] = e

    clock("freeze")
    try:
        t = threading.Thread(target=run, daemon=True)
        start = time.monotonic()
        t.start()
        time.sleep(0.05)  # for the request to reach the server: no deadline runs meanwhile
        assert t.is_alive(), "the long poll answered while the clock stood still: %r" % box
        clock("advance", seconds=seconds)
        t.join(10)
        assert not t.is_alive(), "the long poll was not answered by advancing %s s" % seconds
    finally:
        clock("unfreeze")
    if "error" in box:
        raise box["error"]
    return box["msgs"], time.monotonic() - start


def receive_one(c, url, **kwargs):
    msgs = receive(c, url, **kwargs)
    eq(len(msgs), 1, "messages received")
    return msgs[0]


def receive_again(c, url, **kwargs):
    """receive_one for a message just made visible again (VisibilityTimeout=0, a change to 0, a
    v3 release): waits up to 1 s for it, so that only check_visibility_zero_is_immediate
    judges whether "at once" means before the next request."""
    kwargs.setdefault("WaitTimeSeconds", 1)
    return receive_one(c, url, **kwargs)


def is_decimal(s):
    return isinstance(s, str) and s.isdigit()


def name_of(url):
    return url.rsplit("/", 1)[1]


# ==== server A: dev mode ====

def check_create_queue_url():
    name = sc.unique("create")
    url = a_client.create_queue(QueueName=name)["QueueUrl"]
    eq(url, queue_url(A, name), "QueueUrl")


def check_queue_defaults():
    now = time.time()
    url = new_queue(a_client, "defaults")
    at = attrs(a_client, url)
    want = {"VisibilityTimeout": "30", "MessageRetentionPeriod": "345600", "DelaySeconds": "0",
            "MaximumMessageSize": "262144", "ReceiveMessageWaitTimeSeconds": "0",
            "ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0",
            "ApproximateNumberOfMessagesDelayed": "0",
            "QueueArn": "arn:aws:sqs:us-east-1:%s:%s" % (sc.DEFAULT_ACCOUNT, name_of(url))}
    for k, v in want.items():
        eq(at.get(k), v, k)
    for k in ("CreatedTimestamp", "LastModifiedTimestamp"):
        assert is_decimal(at.get(k)), "%s is %r, not whole seconds" % (k, at.get(k))
        assert abs(int(at[k]) - now) < 120, "%s %s is not now (%d)" % (k, at[k], now)
    assert "RedrivePolicy" not in at, "a new queue has no RedrivePolicy: %r" % at


def check_get_queue_attributes_by_name():
    url = new_queue(a_client, "attrnames")
    at = attrs(a_client, url, "VisibilityTimeout", "QueueArn")
    eq(sorted(at), ["QueueArn", "VisibilityTimeout"], "attributes returned")
    expect_error("InvalidAttributeName", a_client.get_queue_attributes, QueueUrl=url,
                 AttributeNames=["NoSuchAttribute"], status=400)


def check_create_queue_idempotent():
    name = sc.unique("idem")
    u1 = a_client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    u2 = a_client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    eq(u2, u1, "same attributes: the existing queue's URL")
    e = expect_error("QueueAlreadyExists", a_client.create_queue, QueueName=name,
                     Attributes={"VisibilityTimeout": "61"}, status=400)
    assert isinstance(e, a_client.exceptions.QueueNameExists), type(e)
    eq(attrs(a_client, u1, "VisibilityTimeout")["VisibilityTimeout"], "60", "unchanged")


def check_create_queue_with_attributes():
    given = {"VisibilityTimeout": "120", "MessageRetentionPeriod": "3600", "DelaySeconds": "5",
             "MaximumMessageSize": "2048", "ReceiveMessageWaitTimeSeconds": "3"}
    url = a_client.create_queue(QueueName=sc.unique("withattrs"), Attributes=given)["QueueUrl"]
    at = attrs(a_client, url)
    for k, v in given.items():
        eq(at.get(k), v, k)


def check_create_queue_invalid_name():
    for name in ("bad name!", "x" * 81, "", "dot.name", "ünïcode"):
        expect_error("InvalidParameterValue", a_client.create_queue, QueueName=name, status=400)
    a_client.create_queue(QueueName="A-z_0-9" + "x" * 73)  # 80 characters of the allowed set


def check_create_queue_invalid_attribute_name():
    name = sc.unique("inv")
    expect_error("InvalidAttributeName", a_client.create_queue, QueueName=name,
                 Attributes={"Bogus": "1"}, status=400)
    expect_error("AWS.SimpleQueueService.NonExistentQueue", a_client.get_queue_url, QueueName=name)


def check_create_queue_invalid_attribute_value():
    # real SQS: InvalidAttributeValue (the code in the current SQS API model)
    for bad in ({"VisibilityTimeout": "43201"}, {"DelaySeconds": "abc"}, {"MaximumMessageSize": "262145"}):
        name = sc.unique("inv")
        try:
            expect_error("InvalidAttributeValue", a_client.create_queue, QueueName=name, Attributes=bad, status=400)
        except AssertionError as e:
            raise AssertionError("%r: %s" % (bad, e))
        expect_error("AWS.SimpleQueueService.NonExistentQueue", a_client.get_queue_url, QueueName=name)


def check_get_queue_url():
    name = sc.unique("geturl")
    url = a_client.create_queue(QueueName=name)["QueueUrl"]
    eq(a_client.get_queue_url(QueueName=name)["QueueUrl"], url, "GetQueueUrl")
    e = expect_error("AWS.SimpleQueueService.NonExistentQueue", a_client.get_queue_url,
                     QueueName=sc.unique("never"), status=400)
    assert isinstance(e, a_client.exceptions.QueueDoesNotExist), type(e)


def check_list_queues_prefix():
    prefix = sc.unique("lp") + "x"
    mine = sorted(a_client.create_queue(QueueName="%s-%d" % (prefix, i))["QueueUrl"] for i in range(3))
    other = new_queue(a_client, "other")
    got = sorted(a_client.list_queues(QueueNamePrefix=prefix).get("QueueUrls", []))
    eq(got, mine, "QueueNamePrefix")
    everything = a_client.list_queues().get("QueueUrls", [])
    for u in mine + [other]:
        assert u in everything, "%s missing from ListQueues" % u
    eq(a_client.list_queues(QueueNamePrefix="zz-nothing-").get("QueueUrls", []), [], "no match")


def check_list_queues_paging():
    prefix = sc.unique("pg") + "x"
    mine = sorted(a_client.create_queue(QueueName="%s-%d" % (prefix, i))["QueueUrl"] for i in range(5))
    first = a_client.list_queues(QueueNamePrefix=prefix, MaxResults=2)
    eq(len(first.get("QueueUrls", [])), 2, "first page size")
    assert first.get("NextToken"), "a NextToken when more remain: %r" % first
    seen = []
    for page in a_client.get_paginator("list_queues").paginate(
            QueueNamePrefix=prefix, PaginationConfig={"PageSize": 2}):
        assert len(page.get("QueueUrls", [])) <= 2, page
        seen += page.get("QueueUrls", [])
    eq(sorted(seen), mine, "all pages together")
    last = a_client.list_queues(QueueNamePrefix=prefix, MaxResults=5)
    eq(sorted(last.get("QueueUrls", [])), mine, "one page of 5")
    assert not last.get("NextToken"), "no NextToken after the last queue: %r" % last


def check_set_queue_attributes():
    url = new_queue(a_client, "setattr")
    before = attrs(a_client, url)
    time.sleep(1.05)
    a_client.set_queue_attributes(QueueUrl=url, Attributes={
        "VisibilityTimeout": "45", "MaximumMessageSize": "4096", "MessageRetentionPeriod": "7200",
        "ReceiveMessageWaitTimeSeconds": "1", "DelaySeconds": "0"})
    at = attrs(a_client, url)
    for k, v in (("VisibilityTimeout", "45"), ("MaximumMessageSize", "4096"),
                 ("MessageRetentionPeriod", "7200"), ("ReceiveMessageWaitTimeSeconds", "1")):
        eq(at[k], v, k)
    eq(at["CreatedTimestamp"], before["CreatedTimestamp"], "CreatedTimestamp")
    assert int(at["LastModifiedTimestamp"]) > int(before["LastModifiedTimestamp"]), \
        "LastModifiedTimestamp %s not after %s" % (at["LastModifiedTimestamp"], before["LastModifiedTimestamp"])


def check_set_queue_attributes_invalid_name():
    url = new_queue(a_client, "setname")
    for bad in ({"ApproximateNumberOfMessages": "5"}, {"QueueArn": "x"}, {"Bogus": "1"}):
        expect_error("InvalidAttributeName", a_client.set_queue_attributes, QueueUrl=url,
                     Attributes=bad, status=400)
    a_client.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})  # Policy is settable


def check_set_queue_attributes_invalid_value():
    url = new_queue(a_client, "setval", VisibilityTimeout=45)
    for bad in ({"VisibilityTimeout": "-1"}, {"MaximumMessageSize": "1023"},
                {"MessageRetentionPeriod": "59"}, {"ReceiveMessageWaitTimeSeconds": "21"},
                {"DelaySeconds": "901"}, {"VisibilityTimeout": "12x"}):
        try:
            expect_error("InvalidAttributeValue", a_client.set_queue_attributes, QueueUrl=url,
                         Attributes=bad, status=400)
        except AssertionError as e:
            raise AssertionError("%r: %s" % (bad, e))
    eq(attrs(a_client, url, "VisibilityTimeout")["VisibilityTimeout"], "45", "refused changes change nothing")


def check_send_receive_delete():
    url = new_queue(a_client, "srd")
    body = "This is my first message."
    sent = a_client.send_message(QueueUrl=url, MessageBody=body)
    assert is_decimal(sent["MessageId"]), "MessageId %r is not the v3 decimal id" % sent["MessageId"]
    eq(sent["MD5OfMessageBody"], sc.md5_hex(body), "MD5OfMessageBody")
    assert "MD5OfMessageAttributes" not in sent, sent
    eq(counts(a_client, url), (1, 0, 0), "counts after send")
    m = receive_one(a_client, url)
    eq(m["Body"], body, "Body")
    eq(m["MessageId"], sent["MessageId"], "MessageId")
    eq(m["MD5OfBody"], sc.md5_hex(body), "MD5OfBody")
    assert m.get("ReceiptHandle"), m
    eq(counts(a_client, url), (0, 1, 0), "counts while in flight")
    eq(receive(a_client, url), [], "an in-flight message is not handed out again")
    a_client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    eq(counts(a_client, url), (0, 0, 0), "counts after delete")


def check_bodies_survive_xml():
    url = new_queue(a_client, "xmlbody")
    bodies = ['<tag attr="v">&amp; & \'apos\' "quote" ]]> </tag>',
              "héllo wörld ✓ 𝄞 \u00a0 tab\tend",
              "line1\nline2\r\nline3\rend",
              "  leading and trailing spaces  ",
              json.dumps({"k": [1, 2, {"x": "<y>"}]})]
    ids = {}
    for b in bodies:
        ids[a_client.send_message(QueueUrl=url, MessageBody=b)["MessageId"]] = b
    got = {}
    for _ in range(5):
        for m in receive(a_client, url, MaxNumberOfMessages=10):
            got[m["MessageId"]] = m["Body"]
        if len(got) == len(ids):
            break
    for mid, b in ids.items():
        eq(got.get(mid), b, "body of %s" % mid)


def check_body_size_limits():
    url = new_queue(a_client, "big")
    body = ("0123456789abcdef" * (262144 // 16))
    sent = a_client.send_message(QueueUrl=url, MessageBody=body)
    m = receive_one(a_client, url)
    eq(len(m["Body"]), 262144, "length of a 256 KiB body received")
    eq(m["MessageId"], sent["MessageId"], "MessageId")
    assert m["Body"] == body, "256 KiB body changed"
    expect_error("InvalidParameterValue", a_client.send_message, QueueUrl=url,
                 MessageBody=body + "x", status=400)
    small = new_queue(a_client, "small", MaximumMessageSize=1024)
    a_client.send_message(QueueUrl=small, MessageBody="é" * 512)  # 1024 bytes
    expect_error("InvalidParameterValue", a_client.send_message, QueueUrl=small,
                 MessageBody="x" * 1025, status=400)
    eq(counts(a_client, small)[0], 1, "only the message that fits is queued")


def check_size_limit_counts_attributes():
    # SQS: "The message size limit includes message attributes" (names, types and values)
    url = new_queue(a_client, "sizeattr", MaximumMessageSize=1024)
    ma = {"attribute": {"DataType": "String", "StringValue": "v" * 100}}
    expect_error("InvalidParameterValue", a_client.send_message, QueueUrl=url, MessageBody="b" * 1000,
                 MessageAttributes=ma, status=400)
    a_client.send_message(QueueUrl=url, MessageBody="b" * 800, MessageAttributes=ma)
    eq(counts(a_client, url)[0], 1, "only the message that fits")


def check_large_receive():
    url = new_queue(a_client, "bigrecv")
    bodies = {}
    for i in range(10):
        body = ("%d" % i) * 200000
        bodies[a_client.send_message(QueueUrl=url, MessageBody=body)["MessageId"]] = body
    got = receive(a_client, url, MaxNumberOfMessages=10)
    eq(len(got), 10, "ten 200 KB messages in one answer")
    for m in got:
        assert m["Body"] == bodies[m["MessageId"]], "body of %s changed" % m["MessageId"]


def check_invalid_characters_refused():
    url = new_queue(a_client, "badchars")
    for body in ("a\x01b", "nul\x00", "\ufffe"):
        e = expect_error("InvalidMessageContents", a_client.send_message, QueueUrl=url,
                         MessageBody=body, status=400)
        assert isinstance(e, a_client.exceptions.InvalidMessageContents), type(e)
    eq(counts(a_client, url), (0, 0, 0), "nothing queued")


def check_message_attributes_roundtrip():
    url = new_queue(a_client, "mattr")
    ma = {"s": {"DataType": "String", "StringValue": "hello ✓ <&>"},
          "n": {"DataType": "Number", "StringValue": "42.5"},
          "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xfe\xffbin"},
          "c": {"DataType": "String.custom", "StringValue": "typed"},
          "attr.one": {"DataType": "Number.int", "StringValue": "-7"},
          "attr.two": {"DataType": "Binary.gz", "BinaryValue": b"\x1f\x8b"}}
    sent = a_client.send_message(QueueUrl=url, MessageBody="with attributes", MessageAttributes=ma)
    eq(sent.get("MD5OfMessageAttributes"), sc.md5_of_message_attributes(ma), "MD5OfMessageAttributes (send)")
    m = receive_one(a_client, url, MessageAttributeNames=["All"], VisibilityTimeout=0)
    got = m.get("MessageAttributes", {})
    eq(sorted(got), sorted(ma), "attribute names")
    for k, v in ma.items():
        eq(got[k], v, "attribute %s" % k)
    eq(m.get("MD5OfMessageAttributes"), sc.md5_of_message_attributes(ma), "MD5OfMessageAttributes (receive)")


def check_message_attribute_filters():
    url = new_queue(a_client, "mfilter")
    ma = {"s": {"DataType": "String", "StringValue": "v"},
          "attr.one": {"DataType": "Number", "StringValue": "1"},
          "attr.two": {"DataType": "String", "StringValue": "2"},
          "other": {"DataType": "Binary", "BinaryValue": b"\x00"}}
    a_client.send_message(QueueUrl=url, MessageBody="filters", MessageAttributes=ma)
    m = receive_one(a_client, url, VisibilityTimeout=0)
    assert "MessageAttributes" not in m, "attributes not asked for were sent: %r" % m
    m = receive_again(a_client, url, VisibilityTimeout=0, MessageAttributeNames=["s", "missing"])
    eq(sorted(m.get("MessageAttributes", {})), ["s"], "by name")
    m = receive_again(a_client, url, VisibilityTimeout=0, MessageAttributeNames=["attr.*"])
    eq(sorted(m.get("MessageAttributes", {})), ["attr.one", "attr.two"], "by prefix")
    m = receive_again(a_client, url, VisibilityTimeout=0, MessageAttributeNames=[".*"])
    eq(sorted(m.get("MessageAttributes", {})), sorted(ma), "'.*' means all")


def check_message_attribute_errors():
    url = new_queue(a_client, "maerr")
    expect_error("InvalidParameterValue", a_client.send_message, QueueUrl=url, MessageBody="x",
                 MessageAttributes={"n": {"DataType": "Number", "StringValue": "not-a-number"}}, status=400)
    expect_error("InvalidParameterValue", a_client.send_message, QueueUrl=url, MessageBody="x",
                 MessageAttributes={"t": {"DataType": "Strange", "StringValue": "v"}}, status=400)
    expect_error("InvalidParameterValue", a_client.send_message, QueueUrl=url, MessageBody="x",
                 MessageAttributes={"AWS.reserved": {"DataType": "String", "StringValue": "v"}}, status=400)
    for name in ("bad name", ".starts", "ends.", "two..dots", "Amazon.x", "x" * 257, ""):
        try:
            expect_error("InvalidParameterValue", a_client.send_message, QueueUrl=url, MessageBody="x",
                         MessageAttributes={name: {"DataType": "String", "StringValue": "v"}}, status=400)
        except AssertionError as e:
            raise AssertionError("attribute name %r: %s" % (name[:20], e))
    expect_error("InvalidParameterValue", a_client.send_message, QueueUrl=url, MessageBody="x",
                 MessageAttributes={"empty": {"DataType": "String", "StringValue": ""}}, status=400)
    many = {"a%d" % i: {"DataType": "String", "StringValue": "v"} for i in range(11)}
    expect_error("InvalidParameterValue", a_client.send_message, QueueUrl=url, MessageBody="x",
                 MessageAttributes=many, status=400)
    eq(counts(a_client, url), (0, 0, 0), "nothing queued")


def check_receive_system_attributes():
    url = new_queue(a_client, "sysattr")
    sent_at = time.time() * 1000
    a_client.send_message(QueueUrl=url, MessageBody="sys")
    m = receive_one(a_client, url, AttributeNames=["All"], VisibilityTimeout=0)
    at = m.get("Attributes", {})
    for k in ("SentTimestamp", "ApproximateReceiveCount", "SenderId"):
        assert k in at, "%s missing from %r" % (k, at)
    assert is_decimal(at["SentTimestamp"]) and abs(int(at["SentTimestamp"]) - sent_at) < 60000, \
        "SentTimestamp %r is not now in ms (%d)" % (at["SentTimestamp"], sent_at)
    eq(at["ApproximateReceiveCount"], "1", "ApproximateReceiveCount, first receive")
    assert at["SenderId"], at
    m = receive_again(a_client, url, AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                      VisibilityTimeout=0)
    eq(sorted(m.get("Attributes", {})), ["ApproximateReceiveCount", "SentTimestamp"], "only those asked for")
    eq(m["Attributes"]["ApproximateReceiveCount"], "2", "ApproximateReceiveCount, second receive")
    m = receive_again(a_client, url)
    assert "Attributes" not in m, "no attributes when none asked: %r" % m


def check_receive_first_receive_timestamp():
    # Real SQS includes ApproximateFirstReceiveTimestamp in "All"; the spec does not list it,
    # so it may be missing, but when it is there it must be right.
    url = new_queue(a_client, "firstrcv")
    a_client.send_message(QueueUrl=url, MessageBody="first")
    before = time.time() * 1000
    m = receive_one(a_client, url, AttributeNames=["All"], VisibilityTimeout=0)
    first = m.get("Attributes", {}).get("ApproximateFirstReceiveTimestamp")
    if first is None:
        print("#   (ApproximateFirstReceiveTimestamp is not returned)")
        return
    assert first.isdigit() and abs(int(first) - before) < 60000, "not now in ms: %r" % first
    time.sleep(0.05)
    m = receive_again(a_client, url, AttributeNames=["ApproximateFirstReceiveTimestamp"])
    eq(m.get("Attributes"), {"ApproximateFirstReceiveTimestamp": first}, "unchanged by a second receive")


def check_receive_many():
    url = new_queue(a_client, "many")
    entries = [{"Id": "m%d" % i, "MessageBody": "body %d" % i} for i in range(10)]
    sent = a_client.send_message_batch(QueueUrl=url, Entries=entries)
    eq(len(sent.get("Successful", [])), 10, "batch sent")
    eq(len(receive(a_client, url)), 1, "default MaxNumberOfMessages is 1")
    got = receive(a_client, url, MaxNumberOfMessages=10)
    eq(len(got), 9, "the 9 others in one receive of up to 10")
    eq(len({m["MessageId"] for m in got}), 9, "distinct messages")
    eq(receive(a_client, url, MaxNumberOfMessages=10), [], "all in flight")


def check_receive_parameter_ranges():
    url = new_queue(a_client, "ranges")
    for args in ({"MaxNumberOfMessages": 0}, {"MaxNumberOfMessages": 11},
                 {"VisibilityTimeout": 43201}, {"VisibilityTimeout": -1},
                 {"WaitTimeSeconds": 21}, {"WaitTimeSeconds": -1}):
        expect_error("InvalidParameterValue", a_client.receive_message, QueueUrl=url, status=400, **args)
    eq(receive(a_client, url, MaxNumberOfMessages=10, VisibilityTimeout=43200), [], "limits themselves")


def check_visibility_timeout():
    url = new_queue(a_client, "vis")
    a_client.send_message(QueueUrl=url, MessageBody="v")
    m1 = receive_one(a_client, url, VisibilityTimeout=1, AttributeNames=["ApproximateReceiveCount"])
    eq(receive(a_client, url), [], "invisible during its visibility timeout")
    eq(counts(a_client, url), (0, 1, 0), "counts while invisible")
    let_time_pass(1, 1.3)
    m2 = receive_one(a_client, url, AttributeNames=["ApproximateReceiveCount"], WaitTimeSeconds=2)
    eq(m2["MessageId"], m1["MessageId"], "same message back")
    eq(m2["Attributes"]["ApproximateReceiveCount"], "2", "received twice")
    assert m2["ReceiptHandle"] != m1["ReceiptHandle"], "a new receipt handle for a new receive"
    a_client.delete_message(QueueUrl=url, ReceiptHandle=m2["ReceiptHandle"])
    eq(counts(a_client, url), (0, 0, 0), "deleted")


def check_queue_visibility_timeout_applies():
    url = new_queue(a_client, "qvis", VisibilityTimeout=1)
    a_client.send_message(QueueUrl=url, MessageBody="v")
    receive_one(a_client, url)
    eq(receive(a_client, url), [], "hidden for the queue's VisibilityTimeout")
    let_time_pass(1, 1.3)
    receive_one(a_client, url, WaitTimeSeconds=2)


def check_change_visibility_zero():
    url = new_queue(a_client, "cv0")
    a_client.send_message(QueueUrl=url, MessageBody="cv")
    m = receive_one(a_client, url, VisibilityTimeout=60)
    eq(receive(a_client, url), [], "in flight")
    a_client.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    m2 = receive_again(a_client, url, AttributeNames=["ApproximateReceiveCount"])
    eq(m2["MessageId"], m["MessageId"], "visible again")
    eq(m2["Attributes"]["ApproximateReceiveCount"], "2", "ApproximateReceiveCount")


def check_visibility_zero_is_immediate():
    """"0 makes it visible at once": a receive sent right after the answer gets the message.
    20 rounds each of ReceiveMessage VisibilityTimeout=0, ChangeMessageVisibility 0 and
    ChangeMessageVisibilityBatch 0; any miss fails."""
    url = new_queue(a_client, "vis0")
    a_client.send_message(QueueUrl=url, MessageBody="zero")
    misses = {"ReceiveMessage VisibilityTimeout=0": 0, "ChangeMessageVisibility 0": 0,
              "ChangeMessageVisibilityBatch 0": 0}
    for _ in range(20):
        receive_again(a_client, url, VisibilityTimeout=0)
        if not receive(a_client, url, VisibilityTimeout=0):
            misses["ReceiveMessage VisibilityTimeout=0"] += 1
    for _ in range(20):
        m = receive_again(a_client, url, VisibilityTimeout=60)
        a_client.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        if not receive(a_client, url, VisibilityTimeout=0):
            misses["ChangeMessageVisibility 0"] += 1
    for _ in range(20):
        m = receive_again(a_client, url, VisibilityTimeout=60)
        r = a_client.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": "a", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}])
        eq(len(r.get("Successful", [])), 1, "batch change")
        if not receive(a_client, url, VisibilityTimeout=0):
            misses["ChangeMessageVisibilityBatch 0"] += 1
    bad = {k: v for k, v in misses.items() if v}
    assert not bad, "not visible to the very next receive (misses of 20): %r" % bad


def check_receipt_handle_valid_after_change():
    url = new_queue(a_client, "cvkeep")
    a_client.send_message(QueueUrl=url, MessageBody="keep")
    m = receive_one(a_client, url, VisibilityTimeout=5)
    rh = m["ReceiptHandle"]
    a_client.change_message_visibility(QueueUrl=url, ReceiptHandle=rh, VisibilityTimeout=60)
    a_client.change_message_visibility(QueueUrl=url, ReceiptHandle=rh, VisibilityTimeout=30)
    eq(receive(a_client, url), [], "still in flight")
    a_client.delete_message(QueueUrl=url, ReceiptHandle=rh)
    eq(counts(a_client, url), (0, 0, 0), "deleted with the first receipt handle")


def check_change_visibility_extends():
    url = new_queue(a_client, "cvext")
    a_client.send_message(QueueUrl=url, MessageBody="ext")
    m = receive_one(a_client, url, VisibilityTimeout=1)
    a_client.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=5)
    let_time_pass(1, 1.4)
    eq(receive(a_client, url), [], "the change extended the timeout past the first 1 s")
    expect_error(("InvalidParameterValue",), a_client.change_message_visibility, QueueUrl=url,
                 ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=43201, status=400)


def check_change_visibility_errors():
    url = new_queue(a_client, "cverr")
    e = expect_error("ReceiptHandleIsInvalid", a_client.change_message_visibility, QueueUrl=url,
                     ReceiptHandle="garbage", VisibilityTimeout=0, status=400)
    assert isinstance(e, a_client.exceptions.ReceiptHandleIsInvalid), type(e)
    a_client.send_message(QueueUrl=url, MessageBody="x")
    m = receive_one(a_client, url, VisibilityTimeout=30)
    a_client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    expect_error(("AWS.SimpleQueueService.MessageNotInflight", "InvalidParameterValue", "ReceiptHandleIsInvalid"),
                 a_client.change_message_visibility, QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                 VisibilityTimeout=10, status=400)


def check_change_visibility_batch():
    url = new_queue(a_client, "cvb")
    for i in range(2):
        a_client.send_message(QueueUrl=url, MessageBody="cvb %d" % i)
    msgs = receive(a_client, url, MaxNumberOfMessages=10, VisibilityTimeout=60)
    eq(len(msgs), 2, "received")
    r = a_client.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "zero", "ReceiptHandle": msgs[0]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "long", "ReceiptHandle": msgs[1]["ReceiptHandle"], "VisibilityTimeout": 120},
        {"Id": "bad", "ReceiptHandle": "garbage", "VisibilityTimeout": 0}])
    eq(sorted(e["Id"] for e in r.get("Successful", [])), ["long", "zero"], "Successful")
    failed = r.get("Failed", [])
    eq([f["Id"] for f in failed], ["bad"], "Failed")
    eq(failed[0].get("Code"), "ReceiptHandleIsInvalid", "Failed Code")
    eq(failed[0].get("SenderFault"), True, "SenderFault")
    m = receive_again(a_client, url, MaxNumberOfMessages=10)
    eq(m["MessageId"], msgs[0]["MessageId"], "only the one set to 0 is visible")


def check_send_message_batch():
    url = new_queue(a_client, "smb")
    ma = {"k": {"DataType": "String", "StringValue": "v"}, "b": {"DataType": "Binary", "BinaryValue": b"\x07"}}
    entries = [{"Id": "plain", "MessageBody": "one"},
               {"Id": "with-attrs", "MessageBody": "two", "MessageAttributes": ma},
               {"Id": "delayed_1", "MessageBody": "three", "DelaySeconds": 1}]
    r = a_client.send_message_batch(QueueUrl=url, Entries=entries)
    ok = {e["Id"]: e for e in r.get("Successful", [])}
    eq(sorted(ok), ["delayed_1", "plain", "with-attrs"], "Successful ids")
    eq(r.get("Failed", []), [], "Failed")
    for e in entries:
        res = ok[e["Id"]]
        assert is_decimal(res["MessageId"]), res
        eq(res["MD5OfMessageBody"], sc.md5_hex(e["MessageBody"]), "MD5 of %s" % e["Id"])
    eq(ok["with-attrs"].get("MD5OfMessageAttributes"), sc.md5_of_message_attributes(ma), "MD5OfMessageAttributes")
    assert "MD5OfMessageAttributes" not in ok["plain"], ok["plain"]
    eq(len({res["MessageId"] for res in ok.values()}), 3, "distinct MessageIds")
    eq(counts(a_client, url), (2, 0, 1), "two ready, one delayed")
    got = {m["MessageId"]: m for m in receive(a_client, url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])}
    eq(sorted(m["Body"] for m in got.values()), ["one", "two"], "ready bodies")
    eq(got[ok["with-attrs"]["MessageId"]].get("MessageAttributes"), ma, "attributes of a batch entry")


def check_send_message_batch_errors():
    url = new_queue(a_client, "smberr")
    expect_error("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", a_client.send_message_batch, QueueUrl=url,
                 Entries=[{"Id": "same", "MessageBody": "a"}, {"Id": "same", "MessageBody": "b"}], status=400)
    expect_error("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", a_client.send_message_batch, QueueUrl=url,
                 Entries=[{"Id": "e%d" % i, "MessageBody": "x"} for i in range(11)], status=400)
    expect_error("AWS.SimpleQueueService.EmptyBatchRequest", a_client.send_message_batch, QueueUrl=url,
                 Entries=[], status=400)
    expect_error("AWS.SimpleQueueService.InvalidBatchEntryId", a_client.send_message_batch, QueueUrl=url,
                 Entries=[{"Id": "bad id!", "MessageBody": "x"}], status=400)
    expect_error("AWS.SimpleQueueService.BatchRequestTooLong", a_client.send_message_batch, QueueUrl=url,
                 Entries=[{"Id": "e%d" % i, "MessageBody": "x" * 100000} for i in range(3)], status=400)
    eq(counts(a_client, url), (0, 0, 0), "refused batches queue nothing")


def check_send_message_batch_partial_failure():
    url = new_queue(a_client, "smbpart")
    r = a_client.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "good", "MessageBody": "fine"},
        {"Id": "bad", "MessageBody": "control \x02 character"}])
    eq([e["Id"] for e in r.get("Successful", [])], ["good"], "Successful")
    failed = r.get("Failed", [])
    eq([f["Id"] for f in failed], ["bad"], "Failed")
    eq(failed[0].get("SenderFault"), True, "SenderFault")
    assert failed[0].get("Code"), failed[0]
    eq(counts(a_client, url)[0], 1, "the good entry is queued")


def check_delete_message_batch():
    url = new_queue(a_client, "dmb")
    for i in range(3):
        a_client.send_message(QueueUrl=url, MessageBody="d%d" % i)
    msgs = receive(a_client, url, MaxNumberOfMessages=10)
    eq(len(msgs), 3, "received")
    r = a_client.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": msgs[0]["ReceiptHandle"]},
        {"Id": "b", "ReceiptHandle": msgs[1]["ReceiptHandle"]},
        {"Id": "bad", "ReceiptHandle": "garbage"}])
    eq(sorted(e["Id"] for e in r.get("Successful", [])), ["a", "b"], "Successful")
    failed = r.get("Failed", [])
    eq([(f["Id"], f.get("Code"), f.get("SenderFault")) for f in failed],
       [("bad", "ReceiptHandleIsInvalid", True)], "Failed")
    eq(counts(a_client, url), (0, 1, 0), "one left, in flight")
    expect_error("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", a_client.delete_message_batch, QueueUrl=url,
                 Entries=[{"Id": "x", "ReceiptHandle": msgs[2]["ReceiptHandle"]},
                          {"Id": "x", "ReceiptHandle": msgs[2]["ReceiptHandle"]}], status=400)
    expect_error("AWS.SimpleQueueService.EmptyBatchRequest", a_client.delete_message_batch, QueueUrl=url,
                 Entries=[], status=400)


def check_delete_message_errors():
    url = new_queue(a_client, "dmerr")
    e = expect_error("ReceiptHandleIsInvalid", a_client.delete_message, QueueUrl=url,
                     ReceiptHandle="not-a-receipt-handle", status=400)
    assert isinstance(e, a_client.exceptions.ReceiptHandleIsInvalid), type(e)
    expect_error("ReceiptHandleIsInvalid", a_client.delete_message, QueueUrl=url, ReceiptHandle="", status=400)


def check_delete_twice_is_ok():
    # Real SQS answers success when a receipt handle's message is already deleted.
    url = new_queue(a_client, "dm2")
    a_client.send_message(QueueUrl=url, MessageBody="x")
    m = receive_one(a_client, url)
    a_client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    a_client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    eq(counts(a_client, url), (0, 0, 0), "gone")


def check_stale_receipt_handle():
    # After a message was received again, the older receipt handle's DeleteMessage succeeds
    # (real SQS: "the request succeeds, but the message might not be deleted"); the newest
    # one deletes it.
    url = new_queue(a_client, "stale")
    a_client.send_message(QueueUrl=url, MessageBody="stale")
    old = receive_one(a_client, url, VisibilityTimeout=1)
    let_time_pass(1, 1.2)
    new = receive_one(a_client, url, VisibilityTimeout=60, WaitTimeSeconds=2)
    eq(new["MessageId"], old["MessageId"], "received again")
    a_client.delete_message(QueueUrl=url, ReceiptHandle=old["ReceiptHandle"])
    a_client.delete_message(QueueUrl=url, ReceiptHandle=new["ReceiptHandle"])
    eq(counts(a_client, url), (0, 0, 0), "deleted with the newest handle")


def check_queue_tags():
    url = new_queue(a_client, "tags")
    a_client.tag_queue(QueueUrl=url, Tags={"team": "core", "env": "test"})
    eq(a_client.list_queue_tags(QueueUrl=url).get("Tags"), {"team": "core", "env": "test"}, "ListQueueTags")
    a_client.untag_queue(QueueUrl=url, TagKeys=["env"])
    eq(a_client.list_queue_tags(QueueUrl=url).get("Tags"), {"team": "core"}, "after UntagQueue")
    url2 = a_client.create_queue(QueueName=sc.unique("tagged"), tags={"a": "1"})["QueueUrl"]
    eq(a_client.list_queue_tags(QueueUrl=url2).get("Tags"), {"a": "1"}, "tags given to CreateQueue")


def check_message_delay():
    url = new_queue(a_client, "delay")
    a_client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    eq(receive(a_client, url), [], "delayed")
    eq(counts(a_client, url), (0, 0, 1), "ApproximateNumberOfMessagesDelayed")
    let_time_pass(1, 1.2)
    m = receive_one(a_client, url, WaitTimeSeconds=2)
    eq(m["Body"], "later", "Body")
    expect_error("InvalidParameterValue", a_client.send_message, QueueUrl=url, MessageBody="x",
                 DelaySeconds=901, status=400)


def check_queue_delay():
    url = new_queue(a_client, "qdelay", DelaySeconds=1)
    a_client.send_message(QueueUrl=url, MessageBody="queue delay")
    eq(receive(a_client, url), [], "the queue's DelaySeconds applies")
    eq(counts(a_client, url)[2], 1, "delayed count")
    a_client.send_message(QueueUrl=url, MessageBody="no delay", DelaySeconds=0)
    eq(receive_one(a_client, url)["Body"], "no delay", "DelaySeconds=0 on the message wins")
    let_time_pass(1, 1.2)
    eq(receive_one(a_client, url, WaitTimeSeconds=2)["Body"], "queue delay", "after the delay")


def check_long_poll_wakes_on_send():
    url = new_queue(a_client, "lp")
    sender = client(A)

    def send_later():
        time.sleep(1.0)
        sender.send_message(QueueUrl=url, MessageBody="woken")

    t = threading.Thread(target=send_later, daemon=True)
    start = time.monotonic()
    t.start()
    msgs = receive(a_client, url, WaitTimeSeconds=10)
    took = time.monotonic() - start
    t.join(5)
    eq([m["Body"] for m in msgs], ["woken"], "the message sent mid-wait")
    assert 0.8 <= took < 4.0, "the long poll answered after %.2f s, expected ~1 s" % took


def check_long_poll_wakes_on_delay_end():
    url = new_queue(a_client, "lpdelay")
    a_client.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=1)
    msgs, took = long_poll(a_client, url, 1, WaitTimeSeconds=5)
    eq([m["Body"] for m in msgs], ["delayed"], "the delayed message")
    assert VIRTUAL_CLOCK or 0.7 <= took < 3.5, "answered after %.2f s, expected ~1 s (the delay)" % took


def check_long_poll_wakes_on_visibility_end():
    url = new_queue(a_client, "lpvis")
    a_client.send_message(QueueUrl=url, MessageBody="back")
    receive_one(a_client, url, VisibilityTimeout=1)
    msgs, took = long_poll(a_client, url, 1, WaitTimeSeconds=5)
    eq([m["Body"] for m in msgs], ["back"], "the message whose visibility timeout ended")
    assert VIRTUAL_CLOCK or 0.7 <= took < 3.5, "answered after %.2f s, expected ~1 s" % took


def check_competing_receivers():
    url = new_queue(a_client, "compete")
    for i in range(5):
        a_client.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(j), "MessageBody": "m%d" % (i * 10 + j)} for j in range(10)])
    seen = []
    lock = threading.Lock()
    errors = []

    def worker():
        c = client(A)
        try:
            while True:
                msgs = receive(c, url, MaxNumberOfMessages=3, VisibilityTimeout=60)
                if not msgs:
                    return
                with lock:
                    seen.extend(m["Body"] for m in msgs)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    eq(errors, [], "receiver errors")
    eq(len(seen), 50, "messages received in all")
    eq(len(set(seen)), 50, "no message handed to two receivers within its visibility timeout")


def check_long_poll_empty_wait():
    url = new_queue(a_client, "lpe")
    msgs, took = long_poll(a_client, url, 2, WaitTimeSeconds=2)
    eq(msgs, [], "nothing arrives")
    assert VIRTUAL_CLOCK or 1.8 <= took < 4.0, "an empty 2 s wait took %.2f s" % took
    start = time.monotonic()
    receive(a_client, url, WaitTimeSeconds=0)
    assert time.monotonic() - start < 1.0, "WaitTimeSeconds=0 answers at once"


def check_queue_receive_wait_time():
    url = new_queue(a_client, "lpq", ReceiveMessageWaitTimeSeconds=2)
    msgs, took = long_poll(a_client, url, 2, WaitTimeSeconds=None)
    eq(msgs, [], "empty")
    assert VIRTUAL_CLOCK or 1.8 <= took < 4.0, "ReceiveMessageWaitTimeSeconds=2 made the receive take %.2f s" % took
    start = time.monotonic()
    receive(a_client, url, WaitTimeSeconds=0)
    assert time.monotonic() - start < 1.0, "WaitTimeSeconds=0 overrides the queue's wait"


def check_purge_queue():
    url = new_queue(a_client, "purge")
    for i in range(3):
        a_client.send_message(QueueUrl=url, MessageBody="p%d" % i)
    a_client.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
    receive_one(a_client, url)
    a_client.purge_queue(QueueUrl=url)
    eq(counts(a_client, url), (0, 0, 0), "counts after purge")
    eq(receive(a_client, url, MaxNumberOfMessages=10), [], "nothing left")
    a_client.send_message(QueueUrl=url, MessageBody="after")
    eq(receive_one(a_client, url)["Body"], "after", "the queue still works")


def check_delete_queue():
    url = new_queue(a_client, "delq")
    name = name_of(url)
    a_client.send_message(QueueUrl=url, MessageBody="x")
    a_client.delete_queue(QueueUrl=url)
    expect_error("AWS.SimpleQueueService.NonExistentQueue", a_client.get_queue_url, QueueName=name, status=400)
    assert url not in a_client.list_queues().get("QueueUrls", []), "deleted queue still listed"
    st, body = sc.v3(A.port, "GET", sc.v3_queue_path(sc.DEFAULT_ACCOUNT, name))
    eq(st, 404, "v3 GET of the deleted queue (%r)" % body)
    expect_error("AWS.SimpleQueueService.NonExistentQueue", a_client.delete_queue, QueueUrl=url, status=400)


def check_missing_queue_errors():
    name = sc.unique("missing")
    url = queue_url(A, name)
    calls = [(a_client.send_message, {"MessageBody": "x"}),
             (a_client.send_message_batch, {"Entries": [{"Id": "a", "MessageBody": "x"}]}),
             (a_client.receive_message, {}),
             (a_client.get_queue_attributes, {"AttributeNames": ["All"]}),
             (a_client.set_queue_attributes, {"Attributes": {"VisibilityTimeout": "5"}}),
             (a_client.purge_queue, {})]
    for fn, args in calls:
        expect_error("AWS.SimpleQueueService.NonExistentQueue", fn, QueueUrl=url, status=400, **args)
    st, body = sc.v3(A.port, "GET", sc.v3_queue_path(sc.DEFAULT_ACCOUNT, name))
    eq(st, 404, "no queue was created (v3 says %r)" % body)
    expect_error("AWS.SimpleQueueService.NonExistentQueue", a_client.get_queue_url, QueueName=name)


def check_redrive_to_dlq():
    dlq = new_queue(a_client, "dlq")
    dlq_arn = attrs(a_client, dlq, "QueueArn")["QueueArn"]
    eq(dlq_arn, "arn:aws:sqs:us-east-1:%s:%s" % (sc.DEFAULT_ACCOUNT, name_of(dlq)), "QueueArn")
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    src = new_queue(a_client, "src", RedrivePolicy=policy)
    got = json.loads(attrs(a_client, src, "RedrivePolicy")["RedrivePolicy"])
    eq(got.get("deadLetterTargetArn"), dlq_arn, "RedrivePolicy deadLetterTargetArn")
    eq(str(got.get("maxReceiveCount")), "2", "RedrivePolicy maxReceiveCount")
    sent = a_client.send_message(QueueUrl=src, MessageBody="poison")
    for n in ("1", "2"):
        m = receive_again(a_client, src, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"])
        eq(m["Attributes"]["ApproximateReceiveCount"], n, "receive count")
    eq(long_poll(a_client, src, 1, VisibilityTimeout=0, WaitTimeSeconds=1)[0], [], "third receive: moved to the DLQ instead")
    eq(counts(a_client, src), (0, 0, 0), "source queue empty")
    d = receive_one(a_client, dlq)
    eq(d["MessageId"], sent["MessageId"], "same MessageId in the DLQ")
    eq(d["Body"], "poison", "same body in the DLQ")


def check_list_dead_letter_source_queues():
    dlq = new_queue(a_client, "dlqsrc")
    dlq_arn = attrs(a_client, dlq, "QueueArn")["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    srcs = sorted(new_queue(a_client, "srcs", RedrivePolicy=policy) for _ in range(2))
    new_queue(a_client, "unrelated")
    try:
        r = a_client.list_dead_letter_source_queues(QueueUrl=dlq)
    except ClientError as e:
        # the spec makes this action optional: refusing it cleanly is allowed
        eq((e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]),
           ("AWS.SimpleQueueService.UnsupportedOperation", 400), "refused as unsupported")
        print("#   (ListDeadLetterSourceQueues: UnsupportedOperation)")
        return
    eq(sorted(r.get("queueUrls", [])), srcs, "ListDeadLetterSourceQueues")
    eq(a_client.list_dead_letter_source_queues(QueueUrl=srcs[0]).get("queueUrls", []), [], "a queue with no sources")


def check_redrive_policy_set_and_removed():
    dlq = new_queue(a_client, "dlq2")
    dlq_arn = attrs(a_client, dlq, "QueueArn")["QueueArn"]
    src = new_queue(a_client, "src2")
    a_client.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})})
    got = json.loads(attrs(a_client, src)["RedrivePolicy"])
    eq(str(got.get("maxReceiveCount")), "1", "maxReceiveCount given as a number")
    a_client.send_message(QueueUrl=src, MessageBody="once")
    receive_one(a_client, src, VisibilityTimeout=0)
    eq(long_poll(a_client, src, 1, WaitTimeSeconds=1)[0], [], "moved after one receive")
    eq(receive_one(a_client, dlq)["Body"], "once", "in the DLQ")
    a_client.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": ""})
    assert "RedrivePolicy" not in attrs(a_client, src), "an empty RedrivePolicy removes it"
    for bad in ("not json", json.dumps({"maxReceiveCount": 3}),
                json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 0}),
                json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1001})):
        expect_error(("InvalidParameterValue", "InvalidAttributeValue"), a_client.set_queue_attributes,
                     QueueUrl=src, Attributes={"RedrivePolicy": bad}, status=400)



def check_redrive_policy_missing_dlq_refused():
    # Real SQS refuses a RedrivePolicy whose dead-letter queue does not exist.
    src = new_queue(a_client, "src3")
    missing_arn = "arn:aws:sqs:us-east-1:%s:%s" % (sc.DEFAULT_ACCOUNT, sc.unique("nodlq"))
    expect_error(("InvalidParameterValue", "InvalidAttributeValue", "AWS.SimpleQueueService.NonExistentQueue"),
                 a_client.set_queue_attributes, QueueUrl=src, Attributes={"RedrivePolicy": json.dumps(
                     {"deadLetterTargetArn": missing_arn, "maxReceiveCount": 3})}, status=400)
    assert "RedrivePolicy" not in attrs(a_client, src), "the refused policy was not set"
    expect_error("AWS.SimpleQueueService.NonExistentQueue", a_client.get_queue_url, QueueName=missing_arn.rsplit(":", 1)[1])


def check_approximate_counts():
    url = new_queue(a_client, "counts")
    for i in range(3):
        a_client.send_message(QueueUrl=url, MessageBody="c%d" % i)
    a_client.send_message(QueueUrl=url, MessageBody="d", DelaySeconds=30)
    receive_one(a_client, url)
    eq(counts(a_client, url), (2, 1, 1), "(visible, not visible, delayed)")


def check_cross_v3_queue_settings():
    url = new_queue(a_client, "x3q", VisibilityTimeout=120)
    st, body = sc.v3(A.port, "GET", sc.v3_queue_path(sc.DEFAULT_ACCOUNT, name_of(url)))
    eq(st, 200, "v3 GET of an SQS queue (%r)" % body)
    eq(body["queue"].get("message_timeout"), 120, "v3 message_timeout = VisibilityTimeout")
    a_client.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "300"})
    st, body = sc.v3(A.port, "GET", sc.v3_queue_path(sc.DEFAULT_ACCOUNT, name_of(url)))
    eq(body["queue"].get("message_timeout"), 300, "after SetQueueAttributes")
    name = sc.unique("fromv3")
    st, body = sc.v3(A.port, "PUT", sc.v3_queue_path(sc.DEFAULT_ACCOUNT, name),
                     {"queue": {"message_timeout": 90}})
    eq(st, 200, "v3 PUT (%r)" % body)
    u = a_client.get_queue_url(QueueName=name)["QueueUrl"]
    eq(u, queue_url(A, name), "GetQueueUrl of a v3 queue")
    eq(attrs(a_client, u, "VisibilityTimeout")["VisibilityTimeout"], "90", "VisibilityTimeout = message_timeout")
    assert u in a_client.list_queues(QueueNamePrefix=name).get("QueueUrls", []), "v3 queue listed"


def check_cross_v3_post_sqs_receive():
    url = new_queue(a_client, "x3p")
    path = sc.v3_queue_path(sc.DEFAULT_ACCOUNT, name_of(url), "messages")
    st, body = sc.v3(A.port, "POST", path, {"messages": [{"body": "from v3 ✓"}]})
    eq(st, 201, "v3 post (%r)" % body)
    v3_id = body["ids"][0]
    m = receive_one(a_client, url)
    eq(m["MessageId"], v3_id, "MessageId is the v3 id")
    eq(m["Body"], "from v3 ✓", "Body")
    st, body = sc.v3(A.port, "GET", sc.v3_queue_path(sc.DEFAULT_ACCOUNT, name_of(url), "messages", v3_id))
    eq(st, 200, "v3 sees the message while it is in flight (%r)" % body)
    a_client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    st, body = sc.v3(A.port, "GET", sc.v3_queue_path(sc.DEFAULT_ACCOUNT, name_of(url), "messages", v3_id))
    eq(st, 404, "deleted through SQS, gone for v3 (%r)" % body)


def check_cross_sqs_send_v3_reserve():
    url = new_queue(a_client, "x3r")
    sent = a_client.send_message(QueueUrl=url, MessageBody="from sqs")
    base = sc.v3_queue_path(sc.DEFAULT_ACCOUNT, name_of(url))
    st, body = sc.v3(A.port, "POST", base + "/reservations", {"n": 1})
    eq(st, 200, "v3 reserve (%r)" % body)
    msgs = body["messages"]
    eq(len(msgs), 1, "v3 reserved")
    eq(msgs[0]["id"], sent["MessageId"], "v3 id = MessageId")
    eq(msgs[0]["body"], "from sqs", "body")
    eq(receive(a_client, url), [], "reserved by v3: not visible to SQS")
    eq(counts(a_client, url), (0, 1, 0), "in flight")
    st, body = sc.v3(A.port, "DELETE", base + "/messages/" + msgs[0]["id"],
                     {"reservation_id": msgs[0]["reservation_id"]})
    eq(st, 200, "v3 delete (%r)" % body)
    eq(counts(a_client, url), (0, 0, 0), "deleted through v3")


def check_cross_attributes_survive_v3():
    # a message with attributes reserved and released through v3 keeps them for SQS
    url = new_queue(a_client, "x3a")
    ma = {"k": {"DataType": "String", "StringValue": "v"}}
    a_client.send_message(QueueUrl=url, MessageBody="attrs", MessageAttributes=ma)
    base = sc.v3_queue_path(sc.DEFAULT_ACCOUNT, name_of(url))
    st, body = sc.v3(A.port, "POST", base + "/reservations", {"n": 1})
    eq(st, 200, "v3 reserve (%r)" % body)
    m3 = body["messages"][0]
    eq(m3["body"], "attrs", "v3 sees the body alone")
    st, body = sc.v3(A.port, "POST", base + "/messages/%s/release" % m3["id"],
                     {"reservation_id": m3["reservation_id"]})
    eq(st, 200, "v3 release (%r)" % body)
    m = receive_again(a_client, url, MessageAttributeNames=["All"], AttributeNames=["ApproximateReceiveCount"])
    eq(m.get("MessageAttributes"), ma, "attributes after a v3 round trip")
    eq(m["Attributes"]["ApproximateReceiveCount"], "2", "the v3 reservation counts as a receive")


def check_other_account_in_dev_mode():
    # dev mode: the account is the one in the queue URL's path
    acct = "123456789012"
    name = sc.unique("acct")
    st, body = sc.v3(A.port, "PUT", sc.v3_queue_path(acct, name), {"queue": {}})
    eq(st, 200, "v3 PUT (%r)" % body)
    url = queue_url(A, name, account=acct)
    a_client.send_message(QueueUrl=url, MessageBody="acct")
    eq(attrs(a_client, url, "QueueArn")["QueueArn"], "arn:aws:sqs:us-east-1:%s:%s" % (acct, name), "QueueArn")
    eq(receive_one(a_client, url)["Body"], "acct", "Body")
    expect_error("AWS.SimpleQueueService.NonExistentQueue", a_client.get_queue_url, QueueName=name)
    eq(a_client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=acct)["QueueUrl"], url,
       "GetQueueUrl with QueueOwnerAWSAccountId")


def check_project_token_key_in_dev_mode():
    c = client(A, akid="devproj:any-token", secret="anything")
    name = sc.unique("pt")
    url = c.create_queue(QueueName=name)["QueueUrl"]
    eq(url, queue_url(A, name, account="devproj"), "the project is the account")
    st, body = sc.v3(A.port, "GET", sc.v3_queue_path("devproj", name))
    eq(st, 200, "v3 sees the queue in project devproj (%r)" % body)
    eq(c.get_queue_url(QueueName=name)["QueueUrl"], url, "GetQueueUrl in the key's project")
    assert url in c.list_queues().get("QueueUrls", []), "ListQueues in the key's project"
    assert url not in a_client.list_queues().get("QueueUrls", []), "not in the default account's list"


def check_other_region_and_session_token():
    # A client configured for another region, with temporary credentials: anvil has one
    # region (QueueArn says us-east-1) and accepts the signature's own scope.
    c = client(A, akid="ASIATEMP", secret="temp-secret", region="eu-west-1", aws_session_token="session-token")
    name = sc.unique("region")
    url = c.create_queue(QueueName=name)["QueueUrl"]
    eq(url, queue_url(A, name), "QueueUrl")
    eq(attrs(c, url, "QueueArn")["QueueArn"], "arn:aws:sqs:us-east-1:%s:%s" % (sc.DEFAULT_ACCOUNT, name), "QueueArn")
    c.send_message(QueueUrl=url, MessageBody="from eu-west-1")
    eq(receive_one(c, url)["Body"], "from eu-west-1", "Body")


def check_resource_api():
    sqs = resource(A)
    name = sc.unique("res")
    q = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})
    eq(q.url, queue_url(A, name), "Queue.url")
    eq(q.attributes["VisibilityTimeout"], "40", "Queue.attributes")
    eq(sqs.get_queue_by_name(QueueName=name).url, q.url, "get_queue_by_name")
    eq([x.url for x in sqs.queues.filter(QueueNamePrefix=name)], [q.url], "queues.filter")
    r = q.send_message(MessageBody="resource body",
                       MessageAttributes={"a": {"DataType": "String", "StringValue": "b"}})
    got = q.receive_messages(MessageAttributeNames=["All"], MaxNumberOfMessages=1)
    eq(len(got), 1, "receive_messages")
    msg = got[0]
    eq(msg.body, "resource body", "Message.body")
    eq(msg.message_id, r["MessageId"], "Message.message_id")
    eq(msg.message_attributes, {"a": {"DataType": "String", "StringValue": "b"}}, "Message.message_attributes")
    msg.change_visibility(VisibilityTimeout=60)
    msg.delete()
    q.reload()
    eq(q.attributes["ApproximateNumberOfMessages"], "0", "after delete")
    eq(q.attributes["ApproximateNumberOfMessagesNotVisible"], "0", "after delete, in flight")
    q.send_messages(Entries=[{"Id": "1", "MessageBody": "x"}, {"Id": "2", "MessageBody": "y"}])
    q.purge()
    eq(q.receive_messages(MaxNumberOfMessages=10), [], "after purge")
    q.delete()
    expect_error("AWS.SimpleQueueService.NonExistentQueue", sqs.get_queue_by_name, QueueName=name)


def check_md5_checker_is_active():
    """The checker must reject an answer whose digests are wrong (it is what makes the other
    checks fail when the server's MD5s are wrong)."""
    class Resp:
        status_code = 200
    ctx = {"md5check_params": {"MessageBody": "abc",
                               "MessageAttributes": {"a": {"DataType": "String", "StringValue": "b"}}}}
    good = {"MD5OfMessageBody": sc.md5_hex("abc"),
            "MD5OfMessageAttributes": sc.md5_of_message_attributes(
                {"a": {"DataType": "String", "StringValue": "b"}})}
    _check_send(http_response=Resp(), parsed=good, context=ctx)
    for broken in ({"MD5OfMessageBody": "0" * 32}, {"MD5OfMessageAttributes": "0" * 32}):
        bad = dict(good, **broken)
        try:
            _check_send(http_response=Resp(), parsed=bad, context=ctx)
        except MD5Mismatch:
            continue
        raise AssertionError("the checker let a wrong digest through: %r" % bad)
    # the attribute digest's layout, written out byte by byte
    raw = (b"\x00\x00\x00\x01a" + b"\x00\x00\x00\x06String" + b"\x01" + b"\x00\x00\x00\x01b")
    import hashlib
    eq(sc.md5_of_message_attributes({"a": {"DataType": "String", "StringValue": "b"}}),
       hashlib.md5(raw).hexdigest(), "attribute digest layout")


# ==== server B: tokens configured, `project:token` access keys ====

def check_token_key_valid():
    c = client(B, akid="projb:tok-b", secret="any secret")
    name = sc.unique("tk")
    url = c.create_queue(QueueName=name)["QueueUrl"]
    eq(url, queue_url(B, name, account="projb"), "QueueUrl account = the key's project")
    sent = c.send_message(QueueUrl=url, MessageBody="token form")
    m = receive_one(c, url)
    eq(m["MessageId"], sent["MessageId"], "MessageId")
    c.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    st, body = sc.v3(B.port, "GET", sc.v3_queue_path("projb", name), token="tok-b")
    eq(st, 200, "v3 with the same token sees the queue (%r)" % body)
    c2 = client(B, akid="projb:tok-b", secret="another secret")
    eq(c2.get_queue_url(QueueName=name)["QueueUrl"], url, "the secret is not checked")


def check_token_key_wrong_token():
    c = client(B, akid="projb:wrong-token", secret="x")
    expect_error("InvalidClientTokenId", c.list_queues, status=403)
    expect_error("InvalidClientTokenId", c.create_queue, QueueName=sc.unique("no"), status=403)


def check_token_key_token_of_other_project():
    c = client(B, akid="projother:tok-b", secret="x")
    expect_error("InvalidClientTokenId", c.create_queue, QueueName=sc.unique("no"), status=403)
    st, body = sc.v3(B.port, "GET", "/3/projects/projother/queues", token="admin-b")
    eq((st, body), (200, {"queues": []}), "nothing created in projother")


def check_token_key_other_account_url():
    name = sc.unique("oth")
    st, body = sc.v3(B.port, "PUT", sc.v3_queue_path("projother", name), {"queue": {}}, token="admin-b")
    eq(st, 200, "v3 PUT with the admin token (%r)" % body)
    c = client(B, akid="projb:tok-b", secret="x")
    expect_error("AccessDenied", c.send_message, QueueUrl=queue_url(B, name, account="projother"),
                 MessageBody="x", status=403)


def check_plain_key_refused_with_tokens():
    # Not dev mode (tokens configured) and no SQS keys: a plain access key names no project.
    c = client(B, akid="AKIDPLAIN", secret="x")
    expect_error("InvalidClientTokenId", c.list_queues, status=403)


# ==== server C: --sqs-key, signatures verified ====

def check_signed_key_works():
    c = client(C, akid="AKIDC", secret="SECRETC")
    name = sc.unique("sig")
    url = c.create_queue(QueueName=name)["QueueUrl"]
    eq(url, queue_url(C, name, account="projc"), "QueueUrl account = the key's project")
    c.send_message(QueueUrl=url, MessageBody="signed ✓",
                   MessageAttributes={"x": {"DataType": "String", "StringValue": "y z"}})
    m = receive_one(c, url, MessageAttributeNames=["All"])
    eq(m["Body"], "signed ✓", "Body")
    c.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    eq(c.list_queues(QueueNamePrefix=name).get("QueueUrls"), [url], "ListQueues")
    st, body = sc.v3(C.port, "GET", sc.v3_queue_path("projc", name))
    eq(st, 200, "v3 sees it in project projc (%r)" % body)


def check_signed_key_wrong_secret():
    c = client(C, akid="AKIDC", secret="WRONG")
    expect_error("SignatureDoesNotMatch", c.list_queues, status=403)
    expect_error("SignatureDoesNotMatch", c.create_queue, QueueName=sc.unique("no"), status=403)


def check_signed_key_unknown():
    c = client(C, akid="AKIDUNKNOWN", secret="SECRETC")
    expect_error("InvalidClientTokenId", c.list_queues, status=403)


def check_signed_key_other_region():
    c = client(C, akid="AKIDC", secret="SECRETC", region="eu-west-1")
    name = sc.unique("sigreg")
    eq(c.create_queue(QueueName=name)["QueueUrl"], queue_url(C, name, account="projc"),
       "a SigV4 scope in another region verifies")
    expect_error("SignatureDoesNotMatch", client(C, akid="AKIDC", secret="bad", region="eu-west-1").list_queues,
                 status=403)


def check_signed_key_other_account():
    name = sc.unique("acc")
    st, body = sc.v3(C.port, "PUT", sc.v3_queue_path("someoneelse", name), {"queue": {}})
    c = client(C, akid="AKIDC", secret="SECRETC")
    expect_error("AccessDenied", c.receive_message, QueueUrl=queue_url(C, name, account="someoneelse"),
                 status=403)


# ==== run ====

CHECKS_A = [
    check_md5_checker_is_active, check_create_queue_url, check_queue_defaults,
    check_get_queue_attributes_by_name, check_create_queue_idempotent,
    check_create_queue_with_attributes, check_create_queue_invalid_name,
    check_create_queue_invalid_attribute_name, check_create_queue_invalid_attribute_value, check_get_queue_url,
    check_list_queues_prefix, check_list_queues_paging, check_set_queue_attributes,
    check_set_queue_attributes_invalid_name, check_set_queue_attributes_invalid_value,
    check_send_receive_delete, check_bodies_survive_xml, check_body_size_limits,
    check_size_limit_counts_attributes, check_large_receive,
    check_invalid_characters_refused, check_message_attributes_roundtrip,
    check_message_attribute_filters, check_message_attribute_errors,
    check_receive_system_attributes, check_receive_first_receive_timestamp, check_receive_many, check_receive_parameter_ranges,
    check_visibility_timeout, check_queue_visibility_timeout_applies, check_change_visibility_zero,
    check_visibility_zero_is_immediate, check_receipt_handle_valid_after_change, check_change_visibility_extends,
    check_change_visibility_errors, check_change_visibility_batch, check_send_message_batch,
    check_send_message_batch_errors, check_send_message_batch_partial_failure,
    check_delete_message_batch, check_delete_message_errors, check_delete_twice_is_ok,
    check_stale_receipt_handle, check_queue_tags,
    check_message_delay, check_queue_delay, check_long_poll_wakes_on_send,
    check_long_poll_wakes_on_delay_end, check_long_poll_wakes_on_visibility_end, check_competing_receivers,
    check_long_poll_empty_wait, check_queue_receive_wait_time, check_purge_queue,
    check_delete_queue, check_missing_queue_errors, check_redrive_to_dlq,
    check_list_dead_letter_source_queues, check_redrive_policy_set_and_removed,
    check_redrive_policy_missing_dlq_refused, check_approximate_counts, check_cross_v3_queue_settings,
    check_cross_v3_post_sqs_receive, check_cross_sqs_send_v3_reserve,
    check_cross_attributes_survive_v3, check_other_account_in_dev_mode,
    check_project_token_key_in_dev_mode, check_other_region_and_session_token, check_resource_api,
]
CHECKS_B = [check_token_key_valid, check_token_key_wrong_token, check_token_key_token_of_other_project,
            check_token_key_other_account_url, check_plain_key_refused_with_tokens]
CHECKS_C = [check_signed_key_works, check_signed_key_wrong_secret, check_signed_key_unknown,
            check_signed_key_other_region, check_signed_key_other_account]


def chosen(checks):
    out = []
    for fn in checks:
        name = fn.__name__[len("check_"):]
        if not FILTERS or any(f in name for f in FILTERS):
            out.append((name, fn))
    return out


def main():
    global A, B, C, a_client
    suite = sc.Suite("boto3_suite", budget_s=150)
    print("# boto3 %s, botocore %s, anvil %s" % (boto3.__version__, botocore.__version__, sc.harness.ANVIL_BIN))
    for label, args, checks in (("A", [], CHECKS_A),
                                ("B", ["--token", "tok-b:projb", "--token", "admin-b"], CHECKS_B),
                                ("C", ["--sqs-key", "AKIDC:SECRETC:projc"], CHECKS_C)):
        todo = chosen(checks)
        if not todo:
            continue
        server = suite.check("server-%s-starts" % label, sc.start_server, args)
        if server is None:
            for name, _ in todo:
                suite.check(name, _fail, "server %s did not start" % label)
            continue
        if label == "A":
            A = server
            a_client = client(A)
            set_clock_mode()
        elif label == "B":
            B = server
        else:
            C = server
        restarts = 0
        for name, fn in todo:
            failed_before = suite.failed
            suite.check(name, fn, timeout=25)
            if suite.failed > failed_before:  # a crashing server may take a moment to exit
                sc.wait_until(lambda: server.proc.poll() is not None, 1.5)
            died = server.died()
            if died is not None:
                suite.check("server-%s-alive-after-%s" % (label, name), _fail,
                            "anvil exited with status %s: %s" % (died, sc.crash_summary(server)))
                restarts += 1
                if restarts > 3:
                    break
                server = suite.check("server-%s-restarts" % label, sc.start_server, args)
                if server is None:
                    break
                if label == "A":
                    A = server
                    a_client = client(A)
                    set_clock_mode()
                elif label == "B":
                    B = server
                else:
                    C = server
        if server is not None and server.running:
            suite.check("server-%s-stops-cleanly" % label, stop_cleanly, server)
    return suite.finish()


def set_clock_mode():
    global VIRTUAL_CLOCK
    VIRTUAL_CLOCK = clock_is_virtual()
    print("# clock: %s" % ("virtual (the test kit advances it)" if VIRTUAL_CLOCK else "real time"))


def stop_cleanly(server):
    try:
        server.stop()
    except AssertionError:
        raise AssertionError("after SIGTERM: %s" % sc.crash_summary(server))


def _fail(reason):
    raise AssertionError(reason)


a_client = None

if __name__ == "__main__":
    sys.exit(main())
