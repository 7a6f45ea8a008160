"""The SQS-compatible front, on the wire: hand-built requests on the IronMQ port.

Query protocol (form parameters `Action=...&Version=2012-11-05`, POST or GET, to `/` or to
a queue URL's path; XML answers in the 2012-11-05 namespace, errors as <ErrorResponse>
with HTTP 400/403) and JSON protocol (`X-Amz-Target: AmazonSQS.<Action>`, errors as
{"__type", "message"} plus `x-amzn-query-error`). Every XML answer is parsed with
xml.etree, so a malformed one fails the test that got it.

Signatures, with `--sqs-key AKID:SECRET:PROJECT` configured: SigV4 signed by botocore's
SigV4Auth (and by this file's own signer where a date must be chosen; a test checks the two
agree), SigV2 by this file's signer (a test checks it agrees with boto 2's handler). Also
the `project:token` access key form with `--token`, the ANVIL_SQS_KEYS / config-file
sources, and `--sqs-account`.

botocore and boto 2 are optional here (Debian's python3-boto3, python3-boto): without
them the signing falls back to this file's own code, and the tests that need them (the
signers' cross-check, the presigned URL) fail saying so.
The real-client suites are in tests/clients/sqs/.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import struct
import subprocess
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

from harness import Server, StartError, make_temp_dir, run_anvil, unique

try:
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
except ImportError:  # the e2e suite must still load without python3-botocore
    botocore = None
try:
    os.environ.setdefault("BOTO_CONFIG", "/dev/null")
    import boto.auth
    import boto.provider
except ImportError:
    boto = None

NS = "http://queue.amazonaws.com/doc/2012-11-05/"
VERSION = "2012-11-05"
DEFAULT_ACCOUNT = "000000000000"
TIMEOUT_S = 10

srv = None    # dev mode
ksrv = None   # --sqs-key AKID1:SECRET1:projk --sqs-key AKID2:SECRET2:projother
tsrv = None   # --token tok1:projt --token admin


class _NotStarted:
    """Stands for a shared server that failed to start: any use fails that test only."""

    def __init__(self, why):
        self.why = why

    def __getattr__(self, name):
        raise AssertionError("this test's server did not start: %s" % self.why)


def _start_or_note(args):
    try:
        return Server.start(args)
    except StartError as e:
        return _NotStarted(str(e).splitlines()[0] + " " + " ".join(
            line for line in str(e).splitlines() if line.startswith("anvil:")))


def setup_module():
    global srv, ksrv, tsrv
    srv = Server.start()
    ksrv = _start_or_note(["--sqs-key", "AKID1:SECRET1:projk", "--sqs-key", "AKID2:SECRET2:projother"])
    tsrv = _start_or_note(["--token", "tok1:projt", "--token", "admin"])


def teardown_module():
    for s in (srv, ksrv, tsrv):
        if isinstance(s, Server):
            s.stop()


# ---- HTTP ----

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self.xml = None
        self.json = None

    def __repr__(self):
        return "<HTTP %s %s %r>" % (self.status, self.headers.get("content-type"), self.body[:400])


def send(server, method, path, body=b"", headers=None, timeout=TIMEOUT_S):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn.request(method, path, body=body if (body or method == "POST") else None, headers=hdrs)
        r = conn.getresponse()
        payload = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, payload)
    finally:
        conn.close()


def host_of(server):
    return "127.0.0.1:%d" % server.port


def form(params):
    return urllib.parse.urlencode(sorted(params.items()) if isinstance(params, dict) else params,
                                  quote_via=urllib.parse.quote, safe="-_.~")


def query(server, params, path="/", method="POST", headers=None, sign=("AKIDEXAMPLE", "dev-secret"),
          expect=200):
    """One query-protocol request. params: dict (Version is added). sign: (akid, secret) to
    sign with SigV4, or None. Parses the XML answer and checks its status."""
    params = dict(params)
    params.setdefault("Version", VERSION)
    hdrs = {"Host": host_of(server)}
    hdrs.update(headers or {})
    if method == "GET":
        target, body = path + "?" + form(params), b""
    else:
        target, body = path, form(params).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
    if sign:
        hdrs = sigv4_sign(method, hdrs["Host"], target, hdrs, body, *sign)
    r = send(server, method, target, body, hdrs)
    return check_xml(r, expect)


def check_xml(r, expect):
    assert r.headers.get("content-type", "").startswith("text/xml"), \
        "query-protocol answer is not text/xml: %r" % r
    try:
        r.xml = ET.fromstring(r.body)
    except ET.ParseError as e:
        raise AssertionError("answer is not well-formed XML (%s): %r" % (e, r.body[:500]))
    if expect is not None:
        assert r.status == expect, "expected HTTP %s, got %r" % (expect, r)
    return r


def local(tag):
    return tag.split("}", 1)[-1]


def child(el, *names):
    """The element reached by local names, or None."""
    for name in names:
        if el is None:
            return None
        el = next((c for c in el if local(c.tag) == name), None)
    return el


def text(el, *names):
    e = child(el, *names)
    assert e is not None, "no %s in %s" % ("/".join(names), ET.tostring(el)[:500])
    return e.text or ""


def children(el, name):
    return [c for c in el if local(c.tag) == name]


def assert_success(r, action):
    root = r.xml
    assert root.tag == "{%s}%sResponse" % (NS, action), "root element %s, expected %sResponse in %s" \
        % (root.tag, action, NS)
    for el in root.iter():
        assert el.tag.startswith("{%s}" % NS), "element %s outside the SQS namespace" % el.tag
    assert text(root, "ResponseMetadata", "RequestId"), "no RequestId"
    return root


def assert_error(r, code, status=400, type_="Sender"):
    assert r.status == status, "expected HTTP %s %s, got %r" % (status, code, r)
    root = r.xml
    eq(local(root.tag), "ErrorResponse", "root element")
    assert root.tag in ("ErrorResponse", "{%s}ErrorResponse" % NS), root.tag
    err = child(root, "Error")
    assert err is not None, "no <Error> in %r" % r.body
    eq(text(err, "Type"), type_, "Error/Type")
    eq(text(err, "Code"), code, "Error/Code")
    assert text(err, "Message"), "empty Error/Message"
    assert child(err, "Detail") is not None, "no <Detail/> in %r" % r.body
    assert text(root, "RequestId"), "no RequestId"
    return err


def jcall(server, action, payload, sign=("AKIDEXAMPLE", "dev-secret"), headers=None, expect=200, raw=None):
    """One JSON-protocol request (X-Amz-Target: AmazonSQS.<action>)."""
    body = raw if raw is not None else json.dumps(payload).encode()
    hdrs = {"Host": host_of(server), "X-Amz-Target": "AmazonSQS." + action,
            "Content-Type": "application/x-amz-json-1.0"}
    hdrs.update(headers or {})
    if sign:
        hdrs = sigv4_sign("POST", hdrs["Host"], "/", hdrs, body, *sign)
    r = send(server, "POST", "/", body, hdrs)
    assert r.headers.get("content-type", "").startswith("application/x-amz-json-1.0"), \
        "JSON-protocol answer's Content-Type: %r" % r
    try:
        r.json = json.loads(r.body) if r.body else {}
    except ValueError as e:
        raise AssertionError("answer is not JSON (%s): %r" % (e, r))
    if expect is not None:
        assert r.status == expect, "expected HTTP %s, got %r" % (expect, r)
    return r


def assert_json_error(r, type_name, query_code, status=400, fault="Sender"):
    assert r.status == status, "expected HTTP %s, got %r" % (status, r)
    eq(r.json.get("__type"), "com.amazonaws.sqs#" + type_name, "__type")
    assert r.json.get("message"), "no message in %r" % r.json
    eq(r.headers.get("x-amzn-query-error"), "%s;%s" % (query_code, fault), "x-amzn-query-error")


def eq(got, want, what=""):
    assert got == want, "%s: expected %r, got %r" % (what, want, got)


def md5_hex(data):
    return hashlib.md5(data.encode() if isinstance(data, str) else data).hexdigest()


def md5_of_attributes(attrs):
    """attrs: {name: (DataType, str or bytes)}"""
    buf = b""
    for name in sorted(attrs):
        dt, value = attrs[name]
        buf += struct.pack(">I", len(name.encode())) + name.encode()
        buf += struct.pack(">I", len(dt.encode())) + dt.encode()
        if isinstance(value, bytes):
            buf += b"\x02" + struct.pack(">I", len(value)) + value
        else:
            buf += b"\x01" + struct.pack(">I", len(value.encode())) + value.encode()
    return hashlib.md5(buf).hexdigest()


# ---- signing ----

def amz_now(offset_s=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_s)
    return t.strftime("%Y%m%dT%H%M%SZ")


def _hmac(key, msg, algo=hashlib.sha256):
    return hmac.new(key, msg.encode("utf-8"), algo).digest()


def _q(s):
    return urllib.parse.quote(s, safe="-_.~")


def own_sigv4(method, host, target, headers, body, akid, secret, amz_date, region="us-east-1",
              service="sqs"):
    """SigV4 per AWS's specification, stdlib only. Signs every header given plus Host and
    X-Amz-Date. Returns the headers to send."""
    path, _, qs = target.partition("?")
    hdrs = {k: v for k, v in headers.items() if k.lower() not in ("host", "x-amz-date", "authorization")}
    hdrs["Host"] = host
    hdrs["X-Amz-Date"] = amz_date
    lower = {k.lower(): " ".join(str(v).split()) for k, v in hdrs.items()}
    signed = sorted(lower)
    pairs = urllib.parse.parse_qsl(qs, keep_blank_values=True)
    canonical_qs = "&".join(sorted("%s=%s" % (_q(k), _q(v)) for k, v in pairs))
    canonical = "\n".join([method, urllib.parse.quote(path, safe="/-_.~"), canonical_qs,
                           "".join("%s:%s\n" % (k, lower[k]) for k in signed), ";".join(signed),
                           hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret).encode(), amz_date[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    hdrs["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        akid, scope, ";".join(signed), sig)
    return hdrs


def botocore_sigv4(method, host, target, headers, body, akid, secret, region="us-east-1"):
    """SigV4 by botocore's SigV4Auth (what boto3 sends). Returns the headers to send."""
    hdrs = {k: v for k, v in headers.items() if k.lower() != "host"}
    req = botocore.awsrequest.AWSRequest(method=method, url="http://%s%s" % (host, target),
                                         data=body, headers=hdrs)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(akid, secret), "sqs", region).add_auth(req)
    out = dict(req.headers.items())
    out["Host"] = host
    return out


def sigv4_sign(method, host, target, headers, body, akid, secret):
    if botocore is not None:
        return botocore_sigv4(method, host, target, headers, body, akid, secret)
    return own_sigv4(method, host, target, headers, body, akid, secret, amz_now())


def sigv2_params(method, host, path, params, akid, secret, algo="HmacSHA256", timestamp=None,
                 expires=None):
    """The query parameters of a Signature Version 2 request (AWS's specification)."""
    p = dict(params)
    p.setdefault("Version", VERSION)
    p.update({"AWSAccessKeyId": akid, "SignatureVersion": "2", "SignatureMethod": algo})
    if expires:
        p["Expires"] = expires
    else:
        p["Timestamp"] = timestamp or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    qs = "&".join("%s=%s" % (_q(k), _q(v)) for k, v in sorted(p.items()))
    to_sign = "\n".join([method, host.lower(), path, qs])
    digest = hashlib.sha256 if algo == "HmacSHA256" else hashlib.sha1
    p["Signature"] = base64.b64encode(hmac.new(secret.encode(), to_sign.encode(), digest).digest()).decode()
    return p


def query_v2(server, params, akid, secret, path="/", method="POST", expect=200, **kw):
    host = host_of(server)
    p = sigv2_params(method, host, path, params, akid, secret, **kw)
    hdrs = {"Host": host}
    if method == "GET":
        r = send(server, "GET", path + "?" + form(p), b"", hdrs)
    else:
        hdrs["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        r = send(server, "POST", path, form(p).encode(), hdrs)
    return check_xml(r, expect)


# ---- set-up helpers ----

def create_queue(server, name=None, attributes=None, sign=("AKIDEXAMPLE", "dev-secret")):
    name = name or unique("sqs")
    params = {"Action": "CreateQueue", "QueueName": name}
    for i, (k, v) in enumerate(sorted((attributes or {}).items()), 1):
        params["Attribute.%d.Name" % i] = k
        params["Attribute.%d.Value" % i] = v
    r = query(server, params, sign=sign)
    return text(assert_success(r, "CreateQueue"), "CreateQueueResult", "QueueUrl")


def path_of(url):
    return urllib.parse.urlparse(url).path


def send_message(server, url, body, sign=("AKIDEXAMPLE", "dev-secret")):
    r = query(server, {"Action": "SendMessage", "QueueUrl": url, "MessageBody": body}, sign=sign)
    return text(assert_success(r, "SendMessage"), "SendMessageResult", "MessageId")


def receive(server, url, extra=None, sign=("AKIDEXAMPLE", "dev-secret")):
    params = {"Action": "ReceiveMessage", "QueueUrl": url, "MaxNumberOfMessages": "10"}
    params.update(extra or {})
    r = query(server, params, sign=sign)
    return children(child(assert_success(r, "ReceiveMessage"), "ReceiveMessageResult"), "Message")


# ==== query protocol ====

def test_create_queue_answers_sqs_xml():
    name = unique("create")
    r = query(srv, {"Action": "CreateQueue", "QueueName": name})
    root = assert_success(r, "CreateQueue")
    eq(text(root, "CreateQueueResult", "QueueUrl"), "http://%s/%s/%s" % (host_of(srv), DEFAULT_ACCOUNT, name),
       "QueueUrl")
    st, body, _ = srv.req("GET", "/3/projects/%s/queues/%s" % (DEFAULT_ACCOUNT, name))
    assert st == 200, "the queue is an IronMQ queue of the default account: %s %r" % (st, body)
    eq(body["queue"].get("message_timeout"), 30, "message_timeout = the SQS default VisibilityTimeout")


def test_answers_carry_their_request_id_in_a_header():
    # real SQS sends x-amzn-RequestId on every answer; the SDKs put it in $metadata.requestId
    r = query(srv, {"Action": "ListQueues"})
    root = assert_success(r, "ListQueues")
    rid = r.headers.get("x-amzn-requestid")
    eq(rid, text(root, "ResponseMetadata", "RequestId"), "x-amzn-RequestId = the XML RequestId")
    e = query(srv, {"Action": "GetQueueUrl", "QueueName": unique("none")}, expect=None)
    assert e.status == 400 and e.headers.get("x-amzn-requestid"), "error answers carry one too: %r" % e
    assert e.headers["x-amzn-requestid"] != rid, "each request has its own id"
    j = jcall(srv, "ListQueues", {})
    assert j.headers.get("x-amzn-requestid"), "JSON protocol: %r" % j


def test_get_with_parameters_in_the_query_string():
    name = unique("get")
    create_queue(srv, name)
    r = query(srv, {"Action": "ListQueues", "QueueNamePrefix": name}, method="GET")
    root = assert_success(r, "ListQueues")
    urls = [u.text for u in children(child(root, "ListQueuesResult"), "QueueUrl")]
    eq(urls, ["http://%s/%s/%s" % (host_of(srv), DEFAULT_ACCOUNT, name)], "ListQueues by GET")


def test_queue_url_follows_the_host_header():
    name = unique("host")
    r = query(srv, {"Action": "CreateQueue", "QueueName": name}, headers={"Host": "sqs.example.test:9324"})
    eq(text(assert_success(r, "CreateQueue"), "CreateQueueResult", "QueueUrl"),
       "http://sqs.example.test:9324/%s/%s" % (DEFAULT_ACCOUNT, name), "QueueUrl")
    r = query(srv, {"Action": "GetQueueUrl", "QueueName": name}, headers={"Host": "localhost:1234"})
    eq(text(assert_success(r, "GetQueueUrl"), "GetQueueUrlResult", "QueueUrl"),
       "http://localhost:1234/%s/%s" % (DEFAULT_ACCOUNT, name), "GetQueueUrl")


def test_actions_on_the_queue_url_path():
    url = create_queue(srv)
    r = query(srv, {"Action": "SendMessage", "MessageBody": "by path"}, path=path_of(url))
    root = assert_success(r, "SendMessage")
    mid = text(root, "SendMessageResult", "MessageId")
    assert mid.isdigit(), "MessageId %r is not a v3 id" % mid
    eq(text(root, "SendMessageResult", "MD5OfMessageBody"), md5_hex("by path"), "MD5OfMessageBody")
    r = query(srv, {"Action": "ReceiveMessage"}, path=path_of(url), method="GET")
    msgs = children(child(assert_success(r, "ReceiveMessage"), "ReceiveMessageResult"), "Message")
    eq([(text(m, "MessageId"), text(m, "Body"), text(m, "MD5OfBody")) for m in msgs],
       [(mid, "by path", md5_hex("by path"))], "received by path")
    r = query(srv, {"Action": "DeleteMessage", "ReceiptHandle": text(msgs[0], "ReceiptHandle")},
              path=path_of(url))
    assert_success(r, "DeleteMessage")
    r = query(srv, {"Action": "GetQueueAttributes", "AttributeName.1": "All"}, path=path_of(url))
    attrs = {text(a, "Name"): text(a, "Value") for a in
             children(child(assert_success(r, "GetQueueAttributes"), "GetQueueAttributesResult"), "Attribute")}
    eq(attrs.get("ApproximateNumberOfMessages"), "0", "deleted")
    eq(attrs.get("QueueArn"), "arn:aws:sqs:us-east-1:%s:%s" % (DEFAULT_ACCOUNT, url.rsplit("/", 1)[1]), "QueueArn")


def test_queue_url_parameter_with_another_host():
    # Clients send the QueueUrl they were given; its host need not be the one they talk to.
    name = unique("qu")
    create_queue(srv, name)
    mid = send_message(srv, "http://elsewhere.example:4566/%s/%s" % (DEFAULT_ACCOUNT, name), "via url")
    assert mid.isdigit(), mid


def test_error_format_of_the_query_protocol():
    missing = "http://%s/%s/%s" % (host_of(srv), DEFAULT_ACCOUNT, unique("missing"))
    r = query(srv, {"Action": "SendMessage", "QueueUrl": missing, "MessageBody": "x"}, expect=None)
    assert_error(r, "AWS.SimpleQueueService.NonExistentQueue")
    r = query(srv, {"Action": "GetQueueUrl", "QueueName": unique("missing")}, method="GET", expect=None)
    assert_error(r, "AWS.SimpleQueueService.NonExistentQueue")
    st, body, _ = srv.req("GET", "/3/projects/%s/queues/%s" % (DEFAULT_ACCOUNT, missing.rsplit("/", 1)[1]))
    eq(st, 404, "the refused send created no queue (%r)" % body)


def test_unknown_and_missing_action():
    r = query(srv, {"Action": "FrobnicateQueue"}, expect=None)
    assert_error(r, "InvalidAction")
    r = query(srv, {"QueueName": "x"}, expect=None)
    assert r.status == 400, r
    eq(local(r.xml.tag), "ErrorResponse", "root")
    assert text(r.xml, "Error", "Code") in ("MissingAction", "InvalidAction"), r


def test_missing_and_invalid_parameters():
    r = query(srv, {"Action": "CreateQueue"}, expect=None)
    assert_error(r, "MissingParameter")
    url = create_queue(srv)
    r = query(srv, {"Action": "SendMessage", "QueueUrl": url}, expect=None)
    assert_error(r, "MissingParameter")
    r = query(srv, {"Action": "ReceiveMessage", "QueueUrl": url, "MaxNumberOfMessages": "eleven"}, expect=None)
    assert r.status == 400 and text(r.xml, "Error", "Code") in ("InvalidParameterValue", "MalformedQueryString"), r
    r = query(srv, {"Action": "ReceiveMessage", "QueueUrl": url, "MaxNumberOfMessages": "11"}, expect=None)
    assert_error(r, "InvalidParameterValue")


def test_invalid_receipt_handles():
    url = create_queue(srv)
    for handle in ("garbage", "", "A" * 2000, "<xml>&"):
        r = query(srv, {"Action": "DeleteMessage", "QueueUrl": url, "ReceiptHandle": handle}, expect=None)
        assert_error(r, "ReceiptHandleIsInvalid")
        r = query(srv, {"Action": "ChangeMessageVisibility", "QueueUrl": url, "ReceiptHandle": handle,
                        "VisibilityTimeout": "0"}, expect=None)
        assert_error(r, "ReceiptHandleIsInvalid")


def test_bodies_are_escaped_in_xml():
    url = create_queue(srv)
    bodies = ["<a href='x'>&amp;</a> ]]> \"q\"", "cr\rlf\ncrlf\r\nend", "tab\there ✓ 𝄞 é", "  spaced  "]
    ids = {send_message(srv, url, b): b for b in bodies}
    got = {}
    for _ in range(4):
        for m in receive(srv, url):
            got[text(m, "MessageId")] = text(m, "Body")
            eq(text(m, "MD5OfBody"), md5_hex(text(m, "Body")), "MD5OfBody")
        if len(got) == len(ids):
            break
    for mid, b in ids.items():
        eq(got.get(mid), b, "body %s read back from the XML" % mid)


def test_invalid_characters_are_refused():
    url = create_queue(srv)
    for body in ("a\x01b", "\x00", "\x1f", "\ufffe", "\uffff"):
        r = query(srv, {"Action": "SendMessage", "QueueUrl": url, "MessageBody": body}, expect=None)
        assert_error(r, "InvalidMessageContents")
    r = send(srv, "POST", path_of(url), b"Action=SendMessage&Version=2012-11-05&MessageBody=%FF%FE",
             {"Content-Type": "application/x-www-form-urlencoded"})
    check_xml(r, None)
    assert r.status == 400, "a body that is not UTF-8 is refused: %r" % r
    eq(receive(srv, url), [], "nothing was queued")


def test_empty_receive():
    url = create_queue(srv)
    root = assert_success(query(srv, {"Action": "ReceiveMessage", "QueueUrl": url}), "ReceiveMessage")
    result = child(root, "ReceiveMessageResult")
    assert result is not None, "ReceiveMessageResult is present even when empty"
    eq(children(result, "Message"), [], "no messages")


def test_message_attributes_and_system_attributes_in_xml():
    url = create_queue(srv)
    params = {"Action": "SendMessage", "QueueUrl": url, "MessageBody": "attrs",
              "MessageAttribute.1.Name": "s", "MessageAttribute.1.Value.DataType": "String",
              "MessageAttribute.1.Value.StringValue": "<v&>",
              "MessageAttribute.2.Name": "b", "MessageAttribute.2.Value.DataType": "Binary",
              "MessageAttribute.2.Value.BinaryValue": base64.b64encode(b"\x00\x01\x02").decode()}
    root = assert_success(query(srv, params), "SendMessage")
    want_md5 = md5_of_attributes({"s": ("String", "<v&>"), "b": ("Binary", b"\x00\x01\x02")})
    eq(text(root, "SendMessageResult", "MD5OfMessageAttributes"), want_md5, "MD5OfMessageAttributes")
    # MessageSystemAttributeName.N is what newer SDKs send instead of AttributeName.N
    msgs = receive(srv, url, {"MessageAttributeName.1": "All", "MessageSystemAttributeName.1": "All",
                              "VisibilityTimeout": "0"})
    eq(len(msgs), 1, "received")
    m = msgs[0]
    sys_attrs = {text(a, "Name"): text(a, "Value") for a in children(m, "Attribute")}
    for k in ("SentTimestamp", "ApproximateReceiveCount", "SenderId"):
        assert k in sys_attrs, "%s missing from %r" % (k, sys_attrs)
    eq(sys_attrs["ApproximateReceiveCount"], "1", "ApproximateReceiveCount")
    attrs = {}
    for a in children(m, "MessageAttribute"):
        v = child(a, "Value")
        dt = text(v, "DataType")
        attrs[text(a, "Name")] = (dt, base64.b64decode(text(v, "BinaryValue")) if dt == "Binary"
                                  else text(v, "StringValue"))
    eq(attrs, {"s": ("String", "<v&>"), "b": ("Binary", b"\x00\x01\x02")}, "MessageAttributes")
    eq(text(m, "MD5OfMessageAttributes"), want_md5, "MD5OfMessageAttributes (receive)")
    msgs = receive(srv, url, {"AttributeName.1": "SentTimestamp", "WaitTimeSeconds": "1"})
    eq([text(a, "Name") for a in children(msgs[0], "Attribute")], ["SentTimestamp"], "AttributeName.1 only")


def test_batch_results_in_xml():
    url = create_queue(srv)
    params = {"Action": "SendMessageBatch", "QueueUrl": url}
    for i, (eid, body) in enumerate((("a", "one"), ("b", "two"), ("c", "bad \x01")), 1):
        params["SendMessageBatchRequestEntry.%d.Id" % i] = eid
        params["SendMessageBatchRequestEntry.%d.MessageBody" % i] = body
    root = assert_success(query(srv, params), "SendMessageBatch")
    result = child(root, "SendMessageBatchResult")
    ok = {text(e, "Id"): e for e in children(result, "SendMessageBatchResultEntry")}
    eq(sorted(ok), ["a", "b"], "SendMessageBatchResultEntry ids")
    eq(text(ok["a"], "MD5OfMessageBody"), md5_hex("one"), "MD5OfMessageBody")
    failed = children(result, "BatchResultErrorEntry")
    eq([(text(f, "Id"), text(f, "SenderFault")) for f in failed], [("c", "true")], "BatchResultErrorEntry")
    assert text(failed[0], "Code"), "Code"
    params = {"Action": "SendMessageBatch", "QueueUrl": url,
              "SendMessageBatchRequestEntry.1.Id": "x", "SendMessageBatchRequestEntry.1.MessageBody": "1",
              "SendMessageBatchRequestEntry.2.Id": "x", "SendMessageBatchRequestEntry.2.MessageBody": "2"}
    assert_error(query(srv, params, expect=None), "AWS.SimpleQueueService.BatchEntryIdsNotDistinct")


def test_v3_api_is_unchanged_on_the_same_port():
    name = unique("v3")
    st, body, _ = srv.req("POST", "/3/projects/p1/queues/%s/messages" % name,
                          {"messages": [{"body": "hello"}]})
    eq(st, 201, "v3 post (%r)" % body)
    st, body, _ = srv.req("GET", "/3/projects/p1/queues/%s" % name)
    eq((st, body["queue"]["size"]), (200, 1), "v3 info")
    st, body, _ = srv.req("GET", "/3/projects/p1/queues/%s/nothing-here" % name)
    eq(st, 404, "unknown v3 paths still answer JSON 404")


# ==== JSON protocol ====

def test_json_protocol_round_trip():
    name = unique("json")
    r = jcall(srv, "CreateQueue", {"QueueName": name, "Attributes": {"VisibilityTimeout": "40"}})
    url = r.json.get("QueueUrl")
    eq(url, "http://%s/%s/%s" % (host_of(srv), DEFAULT_ACCOUNT, name), "QueueUrl")
    r = jcall(srv, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["VisibilityTimeout", "QueueArn"]})
    eq(r.json.get("Attributes"), {"VisibilityTimeout": "40",
                                  "QueueArn": "arn:aws:sqs:us-east-1:%s:%s" % (DEFAULT_ACCOUNT, name)}, "Attributes")
    attrs = {"s": {"DataType": "String", "StringValue": "v ✓"},
             "b": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\xff\x00").decode()}}
    r = jcall(srv, "SendMessage", {"QueueUrl": url, "MessageBody": "json body <&>", "MessageAttributes": attrs})
    mid = r.json.get("MessageId")
    assert isinstance(mid, str) and mid.isdigit(), r.json
    eq(r.json.get("MD5OfMessageBody"), md5_hex("json body <&>"), "MD5OfMessageBody")
    want_md5 = md5_of_attributes({"s": ("String", "v ✓"), "b": ("Binary", b"\xff\x00")})
    eq(r.json.get("MD5OfMessageAttributes"), want_md5, "MD5OfMessageAttributes")
    r = jcall(srv, "ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 5, "MessageAttributeNames": ["All"],
                                      "MessageSystemAttributeNames": ["ApproximateReceiveCount"]})
    msgs = r.json.get("Messages", [])
    eq(len(msgs), 1, "received")
    m = msgs[0]
    eq((m.get("MessageId"), m.get("Body"), m.get("MD5OfBody")), (mid, "json body <&>", md5_hex("json body <&>")),
       "message")
    eq(m.get("Attributes"), {"ApproximateReceiveCount": "1"}, "Attributes")
    eq(m.get("MessageAttributes"), attrs, "MessageAttributes (binary as base64)")
    eq(m.get("MD5OfMessageAttributes"), want_md5, "MD5OfMessageAttributes (receive)")
    r = jcall(srv, "DeleteMessage", {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]})
    assert r.json in ({}, None), "DeleteMessage answers an empty object: %r" % r
    r = jcall(srv, "ListQueues", {"QueueNamePrefix": name})
    eq(r.json.get("QueueUrls"), [url], "ListQueues")
    r = jcall(srv, "SendMessageBatch", {"QueueUrl": url, "Entries": [
        {"Id": "1", "MessageBody": "a"}, {"Id": "2", "MessageBody": "b", "DelaySeconds": 0}]})
    eq(sorted(e["Id"] for e in r.json.get("Successful", [])), ["1", "2"], "SendMessageBatch")
    jcall(srv, "PurgeQueue", {"QueueUrl": url})
    r = jcall(srv, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]})
    eq(r.json.get("Attributes"), {"ApproximateNumberOfMessages": "0"}, "after PurgeQueue")
    jcall(srv, "DeleteQueue", {"QueueUrl": url})
    r = jcall(srv, "GetQueueUrl", {"QueueName": name}, expect=None)
    assert_json_error(r, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")


def test_json_protocol_batches_and_paging():
    prefix = unique("jb")
    urls = sorted(jcall(srv, "CreateQueue", {"QueueName": "%s-%d" % (prefix, i)}).json["QueueUrl"] for i in range(3))
    r = jcall(srv, "ListQueues", {"QueueNamePrefix": prefix, "MaxResults": 2})
    eq(len(r.json.get("QueueUrls", [])), 2, "first page")
    token = r.json.get("NextToken")
    assert isinstance(token, str) and token, "NextToken: %r" % r.json
    r2 = jcall(srv, "ListQueues", {"QueueNamePrefix": prefix, "MaxResults": 2, "NextToken": token})
    eq(sorted(r.json["QueueUrls"] + r2.json.get("QueueUrls", [])), urls, "both pages")
    url = urls[0]
    r = jcall(srv, "SendMessageBatch", {"QueueUrl": url, "Entries": [
        {"Id": "ok1", "MessageBody": "one"}, {"Id": "ok2", "MessageBody": "two"},
        {"Id": "bad", "MessageBody": "ctl \u0001"}]})
    eq(sorted(e["Id"] for e in r.json.get("Successful", [])), ["ok1", "ok2"], "Successful")
    failed = r.json.get("Failed", [])
    eq([(f.get("Id"), f.get("SenderFault")) for f in failed], [("bad", True)], "Failed (SenderFault a JSON boolean)")
    assert isinstance(failed[0].get("Code"), str) and failed[0]["Code"], failed
    msgs = jcall(srv, "ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10,
                                         "VisibilityTimeout": 60}).json.get("Messages", [])
    eq(sorted(m["Body"] for m in msgs), ["one", "two"], "received")
    r = jcall(srv, "ChangeMessageVisibilityBatch", {"QueueUrl": url, "Entries": [
        {"Id": "a", "ReceiptHandle": msgs[0]["ReceiptHandle"], "VisibilityTimeout": 120},
        {"Id": "x", "ReceiptHandle": "garbage", "VisibilityTimeout": 0}]})
    eq([e["Id"] for e in r.json.get("Successful", [])], ["a"], "ChangeMessageVisibilityBatch Successful")
    eq([(f.get("Id"), f.get("Code"), f.get("SenderFault")) for f in r.json.get("Failed", [])],
       [("x", "ReceiptHandleIsInvalid", True)], "ChangeMessageVisibilityBatch Failed")
    r = jcall(srv, "DeleteMessageBatch", {"QueueUrl": url, "Entries": [
        {"Id": "d%d" % i, "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]})
    eq(sorted(e["Id"] for e in r.json.get("Successful", [])), ["d0", "d1"], "DeleteMessageBatch")
    eq(r.json.get("Failed", []), [], "DeleteMessageBatch Failed")
    r = jcall(srv, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})
    eq((r.json["Attributes"]["ApproximateNumberOfMessages"], r.json["Attributes"]["ApproximateNumberOfMessagesNotVisible"]),
       ("0", "0"), "all deleted")
    r = jcall(srv, "SetQueueAttributes", {"QueueUrl": url, "Attributes": {"VisibilityTimeout": "5"}})
    r = jcall(srv, "GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["VisibilityTimeout"]})
    eq(r.json.get("Attributes"), {"VisibilityTimeout": "5"}, "SetQueueAttributes")


def test_json_protocol_errors():
    missing = "http://%s/%s/%s" % (host_of(srv), DEFAULT_ACCOUNT, unique("nope"))
    r = jcall(srv, "SendMessage", {"QueueUrl": missing, "MessageBody": "x"}, expect=None)
    assert_json_error(r, "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")
    url = jcall(srv, "CreateQueue", {"QueueName": unique("jerr")}).json["QueueUrl"]
    r = jcall(srv, "DeleteMessage", {"QueueUrl": url, "ReceiptHandle": "garbage"}, expect=None)
    assert_json_error(r, "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid")
    r = jcall(srv, "SendMessageBatch", {"QueueUrl": url, "Entries": []}, expect=None)
    assert_json_error(r, "EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest")
    r = jcall(srv, "SendMessage", {"QueueUrl": url, "MessageBody": "bad \x01"}, expect=None)
    assert_json_error(r, "InvalidMessageContents", "InvalidMessageContents")
    name = unique("jexists")
    jcall(srv, "CreateQueue", {"QueueName": name, "Attributes": {"DelaySeconds": "1"}})
    r = jcall(srv, "CreateQueue", {"QueueName": name, "Attributes": {"DelaySeconds": "2"}}, expect=None)
    assert_json_error(r, "QueueNameExists", "QueueAlreadyExists")
    r = jcall(srv, "CreateQueue", None, raw=b"{not json", expect=None)
    assert r.status == 400, "a body that is not JSON: %r" % r
    r = jcall(srv, "FrobnicateQueue", {}, expect=None)
    assert r.status == 400, "unknown operation: %r" % r
    assert "#" in r.json.get("__type", ""), r.json


# ==== dev mode and signatures ====

def test_dev_mode_accepts_any_key_and_no_signature():
    name = unique("dev")
    r = query(srv, {"Action": "CreateQueue", "QueueName": name}, sign=None)
    url = text(assert_success(r, "CreateQueue"), "CreateQueueResult", "QueueUrl")
    send_message(srv, url, "signed by anyone", sign=("SOMEKEY", "some-secret"))
    send_message(srv, url, "with a bad signature", sign=("AKIA-OTHER", "x"))
    r = query_v2(srv, {"Action": "GetQueueUrl", "QueueName": name}, "V2KEY", "whatever")
    eq(text(assert_success(r, "GetQueueUrl"), "GetQueueUrlResult", "QueueUrl"), url, "SigV2 in dev mode")
    eq(len(receive(srv, url)), 2, "both sends worked")


def test_own_signers_agree_with_the_clients():
    # AWS's published SigV4 test vector (get-vanilla)
    hdrs = own_sigv4("GET", "example.amazonaws.com", "/", {}, b"", "AKIDEXAMPLE",
                     "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z", service="service")
    assert hdrs["Authorization"].endswith(
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"), hdrs["Authorization"]
    assert botocore is not None, "python3-botocore is not installed (apt-get install python3-boto3)"
    body = b"Action=SendMessage&MessageBody=a%20b%2Bc&QueueUrl=http%3A%2F%2Fh%2F1%2Fq&Version=2012-11-05"
    base = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    theirs = botocore_sigv4("POST", "127.0.0.1:9", "/000000000000/q?x=1&a=b", base, body, "AK", "SK")
    mine = own_sigv4("POST", "127.0.0.1:9", "/000000000000/q?x=1&a=b", base, body, "AK", "SK",
                     theirs["X-Amz-Date"])
    eq(mine["Authorization"], theirs["Authorization"], "own SigV4 vs botocore")
    assert boto is not None, "python3-boto is not installed"
    params = {"Action": "ListQueues", "QueueNamePrefix": "a b/c", "Version": VERSION}
    mine = sigv2_params("GET", "127.0.0.1:9", "/", params, "AK", "SK", timestamp="2024-01-02T03:04:05Z")
    handler = boto.auth.QuerySignatureV2AuthHandler("127.0.0.1:9", boto.config,
                                                    boto.provider.Provider("aws", "AK", "SK"))
    p2 = dict(params, AWSAccessKeyId="AK", SignatureVersion="2", Timestamp="2024-01-02T03:04:05Z")
    _, sig = handler._calc_signature(p2, "GET", "/", "127.0.0.1:9")
    eq(mine["Signature"], sig.decode() if isinstance(sig, bytes) else sig, "own SigV2 vs boto 2")


def test_sigv4_good_signature():
    name = unique("v4")
    r = query(ksrv, {"Action": "CreateQueue", "QueueName": name}, sign=("AKID1", "SECRET1"))
    url = text(assert_success(r, "CreateQueue"), "CreateQueueResult", "QueueUrl")
    eq(url, "http://%s/projk/%s" % (host_of(ksrv), name), "the key's project is the account")
    mid = send_message(ksrv, url, "signed body + symbols & ü", sign=("AKID1", "SECRET1"))
    r = query(ksrv, {"Action": "ReceiveMessage"}, path=path_of(url), method="GET", sign=("AKID1", "SECRET1"))
    msgs = children(child(assert_success(r, "ReceiveMessage"), "ReceiveMessageResult"), "Message")
    eq([text(m, "MessageId") for m in msgs], [mid], "GET with a signed query string")
    r = jcall(ksrv, "GetQueueUrl", {"QueueName": name}, sign=("AKID1", "SECRET1"))
    eq(r.json.get("QueueUrl"), url, "JSON protocol, signed")
    r = query(ksrv, {"Action": "CreateQueue", "QueueName": name}, sign=("AKID2", "SECRET2"))
    eq(text(assert_success(r, "CreateQueue"), "CreateQueueResult", "QueueUrl"),
       "http://%s/projother/%s" % (host_of(ksrv), name), "the second key has its own account")


def test_sigv4_presigned_url():
    assert botocore is not None, "python3-botocore is not installed (apt-get install python3-boto3)"
    url = create_queue(ksrv, sign=("AKID1", "SECRET1"))
    send_message(ksrv, url, "presigned", sign=("AKID1", "SECRET1"))

    def presign(secret, params):
        req = botocore.awsrequest.AWSRequest(method="GET", url="http://%s/" % host_of(ksrv), params=params)
        botocore.auth.SigV4QueryAuth(botocore.credentials.Credentials("AKID1", secret), "sqs", "us-east-1",
                                     expires=300).add_auth(req)
        return req.prepare().url.split("/", 3)[3]

    params = {"Action": "ReceiveMessage", "QueueUrl": url, "Version": VERSION}
    target = "/" + presign("SECRET1", params)
    assert "X-Amz-Signature=" in target, target
    r = check_xml(send(ksrv, "GET", target, b"", {"Host": host_of(ksrv)}), None)
    msgs = children(child(assert_success(r, "ReceiveMessage"), "ReceiveMessageResult"), "Message")
    eq([text(m, "Body") for m in msgs], ["presigned"], "a presigned GET")
    r = check_xml(send(ksrv, "GET", "/" + presign("WRONG", params), b"", {"Host": host_of(ksrv)}), None)
    assert_error(r, "SignatureDoesNotMatch", status=403)
    tampered = target.replace("Action=ReceiveMessage", "Action=PurgeQueue")
    assert tampered != target
    r = check_xml(send(ksrv, "GET", tampered, b"", {"Host": host_of(ksrv)}), None)
    assert_error(r, "SignatureDoesNotMatch", status=403)


def test_sigv4_wrong_secret():
    r = query(ksrv, {"Action": "ListQueues"}, sign=("AKID1", "SECRET2"), expect=None)
    assert_error(r, "SignatureDoesNotMatch", status=403)
    r = jcall(ksrv, "ListQueues", {}, sign=("AKID1", "nope"), expect=None)
    eq(r.status, 403, "JSON protocol")
    assert r.json.get("__type", "").endswith("SignatureDoesNotMatch"), r.json
    assert r.json.get("message"), r.json


def test_sigv4_tampered_request():
    url = create_queue(ksrv, sign=("AKID1", "SECRET1"))
    body = form({"Action": "SendMessage", "QueueUrl": url, "MessageBody": "original", "Version": VERSION}).encode()
    hdrs = sigv4_sign("POST", host_of(ksrv), "/", {"Host": host_of(ksrv),
                      "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body, "AKID1", "SECRET1")
    r = check_xml(send(ksrv, "POST", "/", body, hdrs), None)
    assert_success(r, "SendMessage")  # the untouched request is fine
    tampered = body.replace(b"original", b"replaced")
    assert_error(check_xml(send(ksrv, "POST", "/", tampered, hdrs), None), "SignatureDoesNotMatch", status=403)
    # a signed header changed
    hdrs2 = dict(hdrs, **{"X-Amz-Date": amz_now(-1)})
    assert_error(check_xml(send(ksrv, "POST", "/", body, hdrs2), None), "SignatureDoesNotMatch", status=403)
    # another path than the one signed
    assert_error(check_xml(send(ksrv, "POST", path_of(url), body, hdrs), None), "SignatureDoesNotMatch",
                 status=403)
    msgs = receive(ksrv, url, sign=("AKID1", "SECRET1"))
    eq([text(m, "Body") for m in msgs], ["original"], "only the genuine request was served")


def test_sigv4_unknown_key():
    r = query(ksrv, {"Action": "ListQueues"}, sign=("AKIDNOBODY", "SECRET1"), expect=None)
    assert_error(r, "InvalidClientTokenId", status=403)
    r = jcall(ksrv, "ListQueues", {}, sign=("AKIDNOBODY", "SECRET1"), expect=None)
    eq(r.status, 403, "JSON protocol")
    assert r.json.get("__type", "").endswith("InvalidClientTokenId"), r.json


def test_missing_signature():
    r = query(ksrv, {"Action": "ListQueues"}, sign=None, expect=None)
    assert_error(r, "MissingAuthenticationToken", status=403)
    r = query(ksrv, {"Action": "ListQueues"}, method="GET", sign=None, expect=None)
    assert_error(r, "MissingAuthenticationToken", status=403)
    r = jcall(ksrv, "ListQueues", {}, sign=None, expect=None)
    eq(r.status, 403, "JSON protocol")
    assert r.json.get("__type", "").endswith("MissingAuthenticationToken"), r.json


def test_malformed_signature():
    d = amz_now()
    scope = "%s/us-east-1/sqs/aws4_request" % d[:8]
    for auth in ("AWS4-HMAC-SHA256",
                 "AWS4-HMAC-SHA256 Credential=AKID1/%s" % scope,
                 "AWS4-HMAC-SHA256 Credential=AKID1/%s, SignedHeaders=host;x-amz-date" % scope,
                 "AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=%s" % ("0" * 64),
                 "AWS4-HMAC-SHA256 Credential=AKID1, SignedHeaders=host;x-amz-date, Signature=%s" % ("0" * 64)):
        body = form({"Action": "ListQueues", "Version": VERSION}).encode()
        hdrs = {"Host": host_of(ksrv), "X-Amz-Date": d, "Authorization": auth,
                "Content-Type": "application/x-www-form-urlencoded"}
        r = check_xml(send(ksrv, "POST", "/", body, hdrs), None)
        try:
            assert_error(r, "IncompleteSignature", status=400)
        except AssertionError as e:
            raise AssertionError("Authorization %r: %s" % (auth, e))
    # SigV2 without its Signature
    p = sigv2_params("POST", host_of(ksrv), "/", {"Action": "ListQueues"}, "AKID1", "SECRET1")
    del p["Signature"]
    r = check_xml(send(ksrv, "POST", "/", form(p).encode(), {"Host": host_of(ksrv),
                  "Content-Type": "application/x-www-form-urlencoded"}), None)
    assert r.status in (400, 403) and text(r.xml, "Error", "Code") in (
        "IncompleteSignature", "MissingAuthenticationToken"), r


def _signed_at(server, offset_s, akid="AKID1", secret="SECRET1"):
    body = form({"Action": "ListQueues", "Version": VERSION}).encode()
    hdrs = own_sigv4("POST", host_of(server), "/", {"Content-Type": "application/x-www-form-urlencoded"},
                     body, akid, secret, amz_now(offset_s))
    return check_xml(send(server, "POST", "/", body, hdrs), None)


def test_request_date_must_be_within_15_minutes():
    assert_success(_signed_at(ksrv, 0), "ListQueues")
    assert_success(_signed_at(ksrv, -10 * 60), "ListQueues")
    assert_success(_signed_at(ksrv, 10 * 60), "ListQueues")
    assert_error(_signed_at(ksrv, -20 * 60), "RequestExpired", status=400)
    assert_error(_signed_at(ksrv, 20 * 60), "RequestExpired", status=400)
    assert_error(_signed_at(ksrv, -24 * 3600), "RequestExpired", status=400)


def test_sigv2_signatures():
    name = unique("v2")
    for method in ("POST", "GET"):
        for algo in ("HmacSHA256", "HmacSHA1"):
            r = query_v2(ksrv, {"Action": "CreateQueue", "QueueName": name}, "AKID1", "SECRET1",
                         method=method, algo=algo)
            eq(text(assert_success(r, "CreateQueue"), "CreateQueueResult", "QueueUrl"),
               "http://%s/projk/%s" % (host_of(ksrv), name), "SigV2 %s %s" % (method, algo))
    r = query_v2(ksrv, {"Action": "SendMessage", "MessageBody": "v2 + body/ü"}, "AKID1", "SECRET1",
                 path="/projk/" + name)
    assert_success(r, "SendMessage")
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    r = query_v2(ksrv, {"Action": "ReceiveMessage"}, "AKID1", "SECRET1", path="/projk/" + name, method="GET",
                 expires=later)
    msgs = children(child(assert_success(r, "ReceiveMessage"), "ReceiveMessageResult"), "Message")
    eq([text(m, "Body") for m in msgs], ["v2 + body/ü"], "SigV2 with Expires")


def test_sigv2_bad_signatures():
    r = query_v2(ksrv, {"Action": "ListQueues"}, "AKID1", "WRONG", expect=None)
    assert_error(r, "SignatureDoesNotMatch", status=403)
    r = query_v2(ksrv, {"Action": "ListQueues"}, "AKID1", "WRONG", method="GET", algo="HmacSHA1", expect=None)
    assert_error(r, "SignatureDoesNotMatch", status=403)
    r = query_v2(ksrv, {"Action": "ListQueues"}, "AKIDNOBODY", "SECRET1", expect=None)
    assert_error(r, "InvalidClientTokenId", status=403)
    # tampered: a parameter changed after signing
    p = sigv2_params("POST", host_of(ksrv), "/", {"Action": "ListQueues", "QueueNamePrefix": "a"}, "AKID1", "SECRET1")
    p["QueueNamePrefix"] = "b"
    r = check_xml(send(ksrv, "POST", "/", form(p).encode(), {"Host": host_of(ksrv),
                  "Content-Type": "application/x-www-form-urlencoded"}), None)
    assert_error(r, "SignatureDoesNotMatch", status=403)
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    r = query_v2(ksrv, {"Action": "ListQueues"}, "AKID1", "SECRET1", timestamp=old, expect=None)
    assert_error(r, "RequestExpired", status=400)
    r = query_v2(ksrv, {"Action": "ListQueues"}, "AKID1", "SECRET1", expires=old, expect=None)
    assert_error(r, "RequestExpired", status=400)


def test_key_of_another_account_is_access_denied():
    name = unique("other")
    r = query(ksrv, {"Action": "CreateQueue", "QueueName": name}, sign=("AKID2", "SECRET2"))
    other_url = text(assert_success(r, "CreateQueue"), "CreateQueueResult", "QueueUrl")
    eq(path_of(other_url), "/projother/" + name, "AKID2's account")
    r = query(ksrv, {"Action": "SendMessage", "QueueUrl": other_url, "MessageBody": "x"}, sign=("AKID1", "SECRET1"),
              expect=None)
    assert_error(r, "AccessDenied", status=403)
    r = query(ksrv, {"Action": "SendMessage", "MessageBody": "x"}, path=path_of(other_url),
              sign=("AKID1", "SECRET1"), expect=None)
    assert_error(r, "AccessDenied", status=403)
    r = query(ksrv, {"Action": "GetQueueAttributes", "QueueUrl": other_url, "AttributeName.1": "All"},
              sign=("AKID2", "SECRET2"))
    attrs = {text(a, "Name"): text(a, "Value") for a in
             children(child(assert_success(r, "GetQueueAttributes"), "GetQueueAttributesResult"), "Attribute")}
    eq(attrs.get("ApproximateNumberOfMessages"), "0", "the refused send queued nothing")


def test_project_token_keys_with_tokens_configured():
    name = unique("pt")
    r = query(tsrv, {"Action": "CreateQueue", "QueueName": name}, sign=("projt:tok1", "any secret"))
    url = text(assert_success(r, "CreateQueue"), "CreateQueueResult", "QueueUrl")
    eq(url, "http://%s/projt/%s" % (host_of(tsrv), name), "project from the access key")
    send_message(tsrv, url, "token form", sign=("projt:tok1", "another secret"))
    st, body, _ = tsrv.req("GET", "/3/projects/projt/queues/%s" % name, headers={"Authorization": "OAuth tok1"})
    eq((st, body["queue"]["size"]), (200, 1), "v3 sees the queue and its message")
    r = query(tsrv, {"Action": "ListQueues"}, sign=("projt:wrong", "x"), expect=None)
    assert_error(r, "InvalidClientTokenId", status=403)
    r = query(tsrv, {"Action": "ListQueues"}, sign=("projx:tok1", "x"), expect=None)
    assert_error(r, "InvalidClientTokenId", status=403)
    r = query(tsrv, {"Action": "ListQueues"}, sign=None, expect=None)
    assert r.status == 403 and text(r.xml, "Error", "Code") in ("MissingAuthenticationToken",
                                                                "InvalidClientTokenId"), r
    r = query(tsrv, {"Action": "CreateQueue", "QueueName": name}, sign=("projz:admin", "x"))
    eq(path_of(text(assert_success(r, "CreateQueue"), "CreateQueueResult", "QueueUrl")), "/projz/" + name,
       "a token for all projects works for any project")
    r = query(tsrv, {"Action": "SendMessage", "QueueUrl": url.replace("/projt/", "/projz/"), "MessageBody": "x"},
              sign=("projt:tok1", "x"), expect=None)
    assert_error(r, "AccessDenied", status=403)


def test_sqs_keys_from_the_environment_and_config_file():
    conf = os.path.join(make_temp_dir(), "anvil.conf")
    with open(conf, "w") as f:
        f.write("sqs_key = AKIDF:SECRETF:projf\n")
    with Server.start(["--config", conf], env={"ANVIL_SQS_KEYS": "AKIDE1:SECRETE1:proje1 AKIDE2:SECRETE2:proje2"}) as s:
        for akid, secret, project in (("AKIDE1", "SECRETE1", "proje1"), ("AKIDE2", "SECRETE2", "proje2")):
            name = unique("env")
            url = create_queue(s, name, sign=(akid, secret))
            eq(path_of(url), "/%s/%s" % (project, name), "ANVIL_SQS_KEYS key %s" % akid)
        r = query(s, {"Action": "ListQueues"}, sign=("AKIDE1", "SECRETE2"), expect=None)
        assert_error(r, "SignatureDoesNotMatch", status=403)
        r = query(s, {"Action": "ListQueues"}, sign=("AKIDF", "SECRETF"), expect=None)
        assert_error(r, "InvalidClientTokenId", status=403)  # the environment wins over the file
    with Server.start(["--config", conf]) as s:
        url = create_queue(s, sign=("AKIDF", "SECRETF"))
        assert path_of(url).startswith("/projf/"), url
        r = query(s, {"Action": "ListQueues"}, sign=("AKIDF", "nope"), expect=None)
        assert_error(r, "SignatureDoesNotMatch", status=403)


def test_sqs_account_setting():
    with Server.start(["--sqs-account", "111122223333"]) as s:
        name = unique("acct")
        url = create_queue(s, name)
        eq(url, "http://%s/111122223333/%s" % (host_of(s), name), "QueueUrl in the configured account")
        st, body, _ = s.req("GET", "/3/projects/111122223333/queues/%s" % name)
        eq(st, 200, "v3 project = sqs_account (%r)" % body)


def test_malformed_sqs_key_is_refused_at_start():
    with Server.start(["--sqs-key", "AKIDOK:SECRET:proj"]):
        pass  # a well-formed key is accepted (so the refusals below are about the value)
    for bad in ("nocolons", "AKID:SECRET", "AKID::proj", ":SECRET:proj"):
        try:
            r = run_anvil(["--port", "0", "--data-dir", make_temp_dir(), "--sqs-key", bad], timeout=5)
        except subprocess.TimeoutExpired:
            raise AssertionError("anvil started with --sqs-key %r" % bad)
        assert r.returncode == 2, "--sqs-key %r: exit status %s, expected 2 (%r)" % (bad, r.returncode, r.stderr)
        assert "anvil ready" not in r.stdout
        assert "sqs" in r.stderr.lower(), "the error names the setting: %r" % r.stderr


def _attributes_of(server, url):
    r = query(server, {"Action": "GetQueueAttributes", "QueueUrl": url, "AttributeName.1": "All"})
    return {text(a, "Name"): text(a, "Value") for a in
            children(child(assert_success(r, "GetQueueAttributes"), "GetQueueAttributesResult"), "Attribute")}


def test_queue_and_message_attributes_survive_a_restart():
    with Server.start(["--durability", "fsync"]) as s:
        dlq = create_queue(s, unique("rdlq"))
        dlq_arn = _attributes_of(s, dlq)["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "4"})
        given = {"VisibilityTimeout": "77", "DelaySeconds": "0", "MaximumMessageSize": "4096",
                 "MessageRetentionPeriod": "86400", "ReceiveMessageWaitTimeSeconds": "2", "RedrivePolicy": policy}
        url = create_queue(s, unique("restart"), given)
        before = _attributes_of(s, url)
        params = {"Action": "SendMessage", "QueueUrl": url, "MessageBody": "kept",
                  "MessageAttribute.1.Name": "s", "MessageAttribute.1.Value.DataType": "String",
                  "MessageAttribute.1.Value.StringValue": "v",
                  "MessageAttribute.2.Name": "b", "MessageAttribute.2.Value.DataType": "Binary",
                  "MessageAttribute.2.Value.BinaryValue": base64.b64encode(b"\x00\x01").decode()}
        mid = text(assert_success(query(s, params), "SendMessage"), "SendMessageResult", "MessageId")
        s.restart()  # stops with SIGTERM (exit status 0 required) and starts on the same data dir
        after = _attributes_of(s, url)
        for k in list(given) + ["CreatedTimestamp", "LastModifiedTimestamp", "QueueArn"]:
            if k == "RedrivePolicy":
                eq(json.loads(after.get(k, "{}")), json.loads(before[k]), k)
            else:
                eq(after.get(k), before[k], k + " after a restart")
        msgs = receive(s, url, {"MessageAttributeName.1": "All", "AttributeName.1": "All"})
        eq([text(m, "MessageId") for m in msgs], [mid], "the message after a restart")
        m = msgs[0]
        eq(text(m, "MD5OfMessageAttributes"),
           md5_of_attributes({"s": ("String", "v"), "b": ("Binary", b"\x00\x01")}), "attributes after a restart")
        sys_attrs = {text(a, "Name"): text(a, "Value") for a in children(m, "Attribute")}
        eq(sys_attrs.get("ApproximateReceiveCount"), "1", "ApproximateReceiveCount")


def _receive_in_thread(server, url, wait_s, out, key):
    def run():
        try:
            r = query(server, {"Action": "ReceiveMessage", "QueueUrl": url, "WaitTimeSeconds": str(wait_s)},
                      sign=None)
            result = child(r.xml, "ReceiveMessageResult")
            bodies = [text(m, "Body") for m in children(result, "Message")] if result is not None else None
            out[key] = (r.status, bodies, time.monotonic())
        except Exception as e:  # noqa: BLE001 — reported by the test
            out[key] = ("error", repr(e), time.monotonic())
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_one_batch_wakes_several_long_polls():
    url = create_queue(srv)
    out = {}
    threads = [_receive_in_thread(srv, url, 10, out, i) for i in range(3)]
    time.sleep(0.5)
    assert not out, "the long polls answered before anything was sent: %r" % out
    sent_at = time.monotonic()
    params = {"Action": "SendMessageBatch", "QueueUrl": url}
    for i in range(3):
        params["SendMessageBatchRequestEntry.%d.Id" % (i + 1)] = "e%d" % i
        params["SendMessageBatchRequestEntry.%d.MessageBody" % (i + 1)] = "wake %d" % i
    assert_success(query(srv, params), "SendMessageBatch")
    for t in threads:
        t.join(8)
    eq(sorted(out), [0, 1, 2], "every long poll answered")
    bodies = sorted(b for st, got, _ in out.values() for b in (got if st == 200 else []))
    eq(bodies, ["wake 0", "wake 1", "wake 2"], "each waiting receive got one of the batch (%r)" % out)
    slowest = max(at for _, _, at in out.values()) - sent_at
    assert slowest < 3.0, "the last long poll answered %.2f s after the batch" % slowest


def test_long_polls_are_answered_at_shutdown():
    s = Server.start()
    url = create_queue(s)
    out = {}
    t = _receive_in_thread(s, url, 20, out, "poll")
    time.sleep(1.0)  # the poll is waiting by now
    assert not out, "the long poll answered early: %r" % out
    stopping = time.monotonic()
    s.stop()  # SIGTERM; asserts exit status 0
    t.join(5)
    assert "poll" in out, "the long poll was not answered at shutdown"
    status, got, at = out["poll"]
    eq((status, got), (200, []), "an empty ReceiveMessage answer")
    assert at - stopping < 5.0, "answered %.2f s after SIGTERM" % (at - stopping)


def test_empty_list_queues_has_a_result_element():
    r = query(srv, {"Action": "ListQueues", "QueueNamePrefix": unique("none-such")})
    root = assert_success(r, "ListQueues")
    result = child(root, "ListQueuesResult")
    assert result is not None, "ListQueuesResult is present when empty"
    eq(children(result, "QueueUrl"), [], "no queues")


def test_v3_bodies_xml_cannot_carry_stay_well_formed():
    # IronMQ accepts any JSON string as a body; the query protocol's XML answer must stay
    # well-formed (anvil writes U+FFFD for what XML 1.0 cannot hold), the JSON protocol
    # carries the body exactly.
    name = unique("ctl")
    st, body, _ = srv.req("POST", "/3/projects/%s/queues/%s/messages" % (DEFAULT_ACCOUNT, name),
                          {"messages": [{"body": "a\u0001b\u001fc\ufffed"}]})
    eq(st, 201, "v3 post (%r)" % body)
    url = "http://%s/%s/%s" % (host_of(srv), DEFAULT_ACCOUNT, name)
    msgs = receive(srv, url, {"VisibilityTimeout": "0"})  # receive() parses the XML
    eq([text(m, "Body") for m in msgs], ["a\ufffdb\ufffdc\ufffdd"], "Body in XML")
    r = jcall(srv, "ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 1})
    eq([m["Body"] for m in r.json.get("Messages", [])], ["a\u0001b\u001fc\ufffed"], "Body in JSON")


def test_queue_named_outside_sqs_rules_through_v3():
    name = "v3 queue.name+x"
    st, body, _ = srv.req("PUT", "/3/projects/%s/queues/%s" % (DEFAULT_ACCOUNT, urllib.parse.quote(name, safe="")),
                          {"queue": {}})
    eq(st, 200, "v3 PUT (%r)" % body)
    r = query(srv, {"Action": "GetQueueUrl", "QueueName": name})
    url = text(assert_success(r, "GetQueueUrl"), "GetQueueUrlResult", "QueueUrl")
    assert url.startswith("http://%s/%s/" % (host_of(srv), DEFAULT_ACCOUNT)), url
    eq(urllib.parse.unquote(url.rsplit("/", 1)[1]), name, "the URL's last segment names the queue")
    assert " " not in url, "the URL is percent-encoded: %r" % url
    send_message(srv, url, "to an IronMQ-named queue")
    r = query(srv, {"Action": "SendMessage", "MessageBody": "by path"}, path=path_of(url))
    assert_success(r, "SendMessage")
    st, body, _ = srv.req("GET", "/3/projects/%s/queues/%s" % (DEFAULT_ACCOUNT, urllib.parse.quote(name, safe="")))
    eq(body["queue"]["size"], 2, "both sends reached the v3 queue")
    r = query(srv, {"Action": "CreateQueue", "QueueName": name}, expect=None)
    assert_error(r, "InvalidParameterValue")
