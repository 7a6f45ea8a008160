"""tests/clients/sqs/sqs_common.py — what the SQS client suites share.

Importing this module first makes the process safe for client libraries that read the
environment: no HTTP proxy (only 127.0.0.1 is contacted), boto 2 reads no ~/.boto
(BOTO_CONFIG=/dev/null), boto3 reads no ~/.aws files and no AWS_* settings.

It also offers:
  - Suite: runs named checks, each bounded in time (SIGALRM), prints `ok NAME` or
    `FAIL NAME: reason`, and at the end `RESULT passed=N failed=M`; a watchdog bounds the
    whole run and kills every server it started.
  - start_server(): tests/e2e/harness.py's Server (ANVIL_BIN, temp data dir, port 0).
  - md5_hex(), md5_of_message_attributes(): the digests SQS answers with, computed the way
    the AWS SDKs check them (MD5OfMessageBody, MD5OfMessageAttributes).
  - v3(): one plain http.client request to the IronMQ v3 API, JSON in and out.

Debian 12's /usr/bin/python3 only.
"""
import os
import sys

for _var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
             "ALL_PROXY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION",
             "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_CA_BUNDLE",
             "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_STS_REGIONAL_ENDPOINTS"):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1"
os.environ["BOTO_CONFIG"] = "/dev/null"          # boto 2: no ~/.boto, no /etc/boto.cfg
os.environ["AWS_CONFIG_FILE"] = "/dev/null"       # boto3: no ~/.aws/config
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import hashlib  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))

import harness  # noqa: E402

NS = "http://queue.amazonaws.com/doc/2012-11-05/"
DEFAULT_ACCOUNT = "000000000000"
REGION = "us-east-1"


class CheckTimeout(Exception):
    pass


def _on_alarm(signo, frame):
    raise CheckTimeout("check took longer than its time bound")


class Suite:
    """Runs checks in order. A check is a function; it passes when it returns."""

    def __init__(self, name, budget_s=120):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.began = time.monotonic()
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.signal(signal.SIGTERM, self._on_term)
        self._watchdog = threading.Timer(budget_s, self._overrun, args=(budget_s,))
        self._watchdog.daemon = True
        self._watchdog.start()

    def _on_term(self, signo, frame):
        print("FAIL %s: terminated by a signal" % self.name, flush=True)
        harness.cleanup_all()
        os._exit(1)

    def _overrun(self, budget_s):
        print("FAIL watchdog: the suite ran past its %d s budget" % budget_s, flush=True)
        print("RESULT passed=%d failed=%d" % (self.passed, self.failed + 1), flush=True)
        harness.cleanup_all()
        os._exit(1)

    def check(self, name, fn, *args, timeout=15, **kwargs):
        """Runs fn(*args, **kwargs) within `timeout` seconds. Returns its value, or None."""
        start = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            value = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 — every failure is reported, the run goes on
            signal.setitimer(signal.ITIMER_REAL, 0)
            self.failed += 1
            reason = describe(e)
            self.failures.append((name, reason))
            print("FAIL %s: %s" % (name, reason), flush=True)
            if os.environ.get("SQS_TEST_TRACE"):
                traceback.print_exc()
            return None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        self.passed += 1
        print("ok   %s (%.2fs)" % (name, time.monotonic() - start), flush=True)
        return value

    def finish(self):
        self._watchdog.cancel()
        for s in harness.ALL_SERVERS:
            if s.running:
                try:
                    s.stop()
                except AssertionError as e:
                    self.failed += 1
                    print("FAIL server-stop: %s" % str(e).splitlines()[0], flush=True)
        harness.cleanup_all()
        print("(%.1fs)" % (time.monotonic() - self.began))
        print("RESULT passed=%d failed=%d" % (self.passed, self.failed), flush=True)
        return 0 if self.failed == 0 else 1


def describe(e):
    """One line: the error, plus where in our test files it was raised."""
    where = ""
    for frame in reversed(traceback.extract_tb(e.__traceback__)):
        if frame.filename.startswith(HERE):
            where = " (at %s:%d)" % (os.path.basename(frame.filename), frame.lineno)
            break
    response = getattr(e, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return "%s: HTTP %s %s %r%s" % (type(e).__name__, status, err.get("Code"),
                                         err.get("Message"), where)
    if hasattr(e, "error_code") and hasattr(e, "status") and hasattr(e, "error_message"):  # boto 2
        return "%s: HTTP %s %s %r%s" % (type(e).__name__, e.status, e.error_code, e.error_message, where)
    text = str(e) or repr(e)
    if len(text) > 600:
        text = text[:600] + "..."
    return "%s: %s%s" % (type(e).__name__, text.replace("\n", " | "), where)


def start_server(args=(), env=None):
    """An anvil on a free loopback port with its own temp data dir (memory durability:
    these suites test the protocol, not the disk)."""
    return harness.Server.start(["--durability", "memory"] + list(args), env=env)


def crash_summary(server, frames=4):
    """The sanitizer or crash report in a server's log, shortened to its first lines
    (the error line and the top stack frames), or the log's last lines."""
    try:
        with open(server.log_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return "(no log)"
    for i, line in enumerate(lines):
        if ("ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line
                or "runtime error:" in line or "Segmentation fault" in line):
            picked = [line.strip()]
            for nxt in lines[i + 1:i + 40]:
                t = nxt.strip()
                if t.startswith("#") and len(picked) <= frames:
                    picked.append(t)
            return " | ".join(picked)
    return " | ".join(l.strip() for l in lines[-5:])


def unique(prefix="q"):
    """A queue name unique in this run that SQS accepts (letters, digits, '-', '_')."""
    return harness.unique(prefix)


# ---- digests ----

def md5_hex(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.md5(data).hexdigest()


def _field(b):
    return struct.pack(">I", len(b)) + b


def md5_of_message_attributes(attrs):
    """MD5OfMessageAttributes as the AWS SDKs compute it: for each attribute in name order,
    length-prefixed name and data type, one transport byte (1 string, 2 binary), then the
    length-prefixed value (UTF-8 string or raw bytes). attrs: boto3's shape,
    {name: {"DataType": ..., "StringValue": ... | "BinaryValue": bytes}}."""
    buf = b""
    for name in sorted(attrs):
        a = attrs[name]
        buf += _field(name.encode("utf-8")) + _field(a["DataType"].encode("utf-8"))
        if "StringValue" in a:
            buf += b"\x01" + _field(a["StringValue"].encode("utf-8"))
        elif "BinaryValue" in a:
            value = a["BinaryValue"]
            if isinstance(value, str):
                value = value.encode("utf-8")
            buf += b"\x02" + _field(value)
        else:
            raise ValueError("attribute %r has no value" % name)
    return hashlib.md5(buf).hexdigest()


# ---- the IronMQ v3 API over plain HTTP ----

def v3(port, method, path, body=None, token=None, timeout=10):
    """(status, parsed JSON or None) of one request to the v3 API at 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = "OAuth " + token
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        try:
            parsed = json.loads(payload.decode("utf-8")) if payload else None
        except ValueError:
            parsed = {"_raw": payload[:300]}
        return resp.status, parsed
    finally:
        conn.close()


def v3_queue_path(project, queue, *rest):
    p = "/3/projects/%s/queues/%s" % (harness.quote(project), harness.quote(queue))
    for part in rest:
        p += "/" + str(part)
    return p


def eq(got, want, what=""):
    """assert got == want, with both in the message."""
    if got != want:
        raise AssertionError("%sexpected %r, got %r" % (what + ": " if what else "", want, got))


def wait_until(fn, timeout, interval=0.1):
    """Polls fn() until it returns a true value (returned) or timeout passes (then the
    last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
