"""Logs: --log-format json (every line of a run parses), request ids (X-Request-Id on every
answer, the same id in the request's log line, a valid client id echoed), slow-request and
slow-commit warnings above their thresholds, and SIGHUP reloading the log level, the log
format and the tokens without dropping connections (a broken config keeps the old ones).
"""
import http.client
import json
import os
import re
import signal
import threading
import time

from harness import Server, make_temp_dir, sqlite_only, unique

HEX_ID = re.compile(r"^[0-9a-f]{16}$")
WAIT_S = 5.0


def log_lines(server):
    """The server's stderr lines, without the harness's own `---- start` markers."""
    with open(server.log_path, "rb") as f:
        text = f.read().decode("utf-8")
    return [line for line in text.splitlines() if not line.startswith("---- start ")]


def json_lines(server):
    """Every line parsed as JSON; fails naming the first line that is not an object."""
    out = []
    for line in log_lines(server):
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise AssertionError("log line is not JSON (%s): %r" % (e, line))
        assert isinstance(obj, dict), line
        for key in ("ts", "level", "msg"):
            assert key in obj, (key, line)
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", obj["ts"]), obj["ts"]
        out.append(obj)
    return out


def wait_for(predicate, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def write_config(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)  # a reload never reads half a file


def sqs_list_queues(server, headers=None):
    """One SQS JSON-protocol call (dev mode: no signature needed); (status, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    hdrs = {"X-Amz-Target": "AmazonSQS.ListQueues",
            "Content-Type": "application/x-amz-json-1.0"}
    hdrs.update(headers or {})
    conn.request("POST", "/", body=b"{}", headers=hdrs)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}


def test_json_lines_parse_and_request_ids_match_the_header():
    with Server.start(["--log-format", "json"]) as s:
        p = s.project("p")
        q = unique()
        seen = []  # (request id, method, path, status)
        for method, path, body in (("GET", "/health", None),
                                   ("PUT", p.path(q), {"queue": {}}),
                                   ("POST", p.path(q, "messages"),
                                    {"messages": [{"body": "caf\u00e9 \"quoted\"\n\t\u0001"}]}),
                                   ("GET", p.path("no-such-queue"), None),
                                   ("DELETE", "/3/no/such/route", None)):
            st, _, h = s.req(method, path, body)
            rid = h.get("x-request-id")
            assert rid and HEX_ID.match(rid), (method, path, h)
            seen.append((rid, method, path, st))
        st, h = sqs_list_queues(s)
        assert st == 200, st
        assert h.get("x-amzn-requestid"), "the SQS front keeps its own id header"
        assert HEX_ID.match(h.get("x-request-id", "")), h
        seen.append((h["x-request-id"], "POST", "/", 200))
        assert len({r[0] for r in seen}) == len(seen), "ids are unique: %r" % seen
    lines = json_lines(s)  # after stop: the whole run, shutdown lines included
    requests = {o["request_id"]: o for o in lines if o["msg"] == "request"}
    for rid, method, path, status in seen:
        line = requests.get(rid)
        assert line, "no request line for %s %s (%s)" % (method, path, rid)
        assert (line["method"], line["path"], line["status"]) == (method, path, status), line
        assert line["level"] == "info" and line["duration_ms"] >= 0, line
        assert line["remote"] == "127.0.0.1" and line["bytes"] > 0, line
    assert any(o["msg"].startswith("anvil ") and "listening" in o["msg"] for o in lines)
    assert lines[-1]["msg"] == "stopped", lines[-1]


def test_weird_paths_still_give_json_lines():
    """Bytes that are not UTF-8, quotes and backslashes in a path are escaped, not copied."""
    import socket
    with Server.start(["--log-format", "json"]) as s:
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sock.sendall(b'GET /x\xff\xc3\xa9"\\%00 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
        answer = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        sock.close()
        assert answer.startswith(b"HTTP/1.1 404"), answer[:100]
    paths = [o["path"] for o in json_lines(s) if o["msg"] == "request"]
    assert '/x\ufffd\u00e9"\\%00' in paths, paths


def test_text_format_request_line_has_the_id():
    with Server.start([]) as s:
        _, _, h = s.req("GET", "/health")
        rid = h["x-request-id"]
    lines = [line for line in log_lines(s) if "id=" + rid in line]
    assert len(lines) == 1, log_lines(s)
    assert re.search(r" info +GET /health 200 \d+\.\d{3}ms id=%s bytes=\d+ remote=127\.0\.0\.1$" % rid,
                     lines[0]), lines[0]


def test_valid_client_request_id_is_echoed_and_others_replaced():
    with Server.start(["--log-format", "json"]) as s:
        for given in ("abc-123", "trace:9f/1+x=y@z_0.1", "a" * 64):
            _, _, h = s.req("GET", "/health", headers={"X-Request-Id": given})
            assert h.get("x-request-id") == given, (given, h)
        for bad in ("has space", "a" * 65, "quote\"s", "semi;colon"):
            _, _, h = s.req("GET", "/health", headers={"X-Request-Id": bad})
            assert HEX_ID.match(h.get("x-request-id", "")), (bad, h)
        # errors carry it too, and so does the SQS front
        st, _, h = s.req("GET", "/3/projects/p/queues/" + unique(), headers={"X-Request-Id": "err-1"})
        assert st == 404 and h.get("x-request-id") == "err-1", (st, h)
        st, h = sqs_list_queues(s, {"X-Request-Id": "sqs-1"})
        assert st == 200 and h.get("x-request-id") == "sqs-1" and h.get("x-amzn-requestid"), h
    ids = {o["request_id"] for o in json_lines(s) if o["msg"] == "request"}
    assert {"abc-123", "err-1", "sqs-1", "a" * 64} <= ids, ids


def test_slow_request_warning_names_the_request():
    """--slow-request-ms 300 and the test kit's 500 ms latency on posts: the post warns, a
    fast request does not, and a long poll (reserve with wait) that waited 1 s never does.
    (Thresholds well apart from the work, so a loaded CI machine cannot flip the result.)"""
    with Server.start(["--log-format", "json", "--slow-request-ms", "300", "--test-mode"]) as s:
        p = s.project("p")
        q = unique()
        p.create(q)
        st, body, _ = s.req("POST", "/admin/faults", {"route": "post", "latency_ms": 500})
        assert st in (200, 201), (st, body)
        st, _, h = s.req("POST", p.path(q, "messages"), {"messages": [{"body": "x"}]})
        assert st == 201, st
        slow_id = h["x-request-id"]
        _, _, h = s.req("GET", "/health")
        fast_id = h["x-request-id"]
        empty = unique()
        p.create(empty)
        st, body, h = s.req("POST", p.path(empty, "reservations"), {"n": 1, "wait": 1}, timeout=15)
        assert st == 200 and body["messages"] == [], (st, body)
        poll_id = h["x-request-id"]
    lines = json_lines(s)
    warnings = {o["request_id"]: o for o in lines if o["msg"] == "slow request"}
    assert slow_id in warnings, lines
    w = warnings[slow_id]
    assert w["level"] == "warn" and w["threshold_ms"] == 300 and w["duration_ms"] >= 500, w
    assert w["method"] == "POST" and w["status"] == 201, w
    polls = [o for o in lines if o.get("request_id") == poll_id]
    assert len(polls) == 1 and polls[0]["duration_ms"] >= 900, polls
    assert poll_id not in warnings and fast_id not in warnings, warnings


@sqlite_only
def test_slow_commit_warning():
    """--slow-commit-ms 1 with fsync durability: a commit of ~6 MB of bodies takes longer
    than 1 ms on any disk (tmpfs included), so it warns with its size and duration."""
    with Server.start(["--log-format", "json", "--slow-commit-ms", "1", "--durability", "fsync"]) as s:
        p = s.project("p")
        q = unique()
        p.create(q)
        body = "b" * 60000
        for _ in range(3):
            p.post(q, *([body] * 100))
    warnings = [o for o in json_lines(s) if o["msg"] == "slow commit"]
    assert warnings, "no slow commit warning"
    w = max(warnings, key=lambda o: o["records"])
    assert w["level"] == "warn" and w["threshold_ms"] == 1, w
    assert w["records"] >= 100 and w["duration_ms"] > 1 and w["batch"] >= 1, w


def test_slow_warnings_off_with_0():
    with Server.start(["--log-format", "json", "--slow-commit-ms", "0", "--slow-request-ms", "0",
                       "--test-mode"]) as s:
        p = s.project("p")
        q = unique()
        p.create(q)
        s.req("POST", "/admin/faults", {"route": "post", "latency_ms": 30})
        p.post(q, *(["b" * 60000] * 100))
    assert not [o for o in json_lines(s) if o["level"] == "warn"], "warnings with 0"


def reloaded(server, count):
    """Waits for the count-th reload message (either outcome) in the log."""
    def seen():
        return len([line for line in log_lines(server) if "SIGHUP: settings" in line]) >= count
    wait_for(seen, "reload #%d in the log" % count)


def test_sighup_reloads_level_format_and_tokens_keeping_connections():
    conf = os.path.join(make_temp_dir(), "anvil.conf")
    write_config(conf, "token = old-token\nlog_level = warn\nlog_format = text\n")
    with Server.start(["--config", conf]) as s:
        old = s.project("p", "old-token")
        q = unique()
        old.create(q)
        kept = s.client()  # a keep-alive connection open across the reload
        st, _, _ = old.req("GET", old.path(q), client=kept)
        assert st == 200, st
        # a long poll waiting through the reload is answered as usual
        got = {}

        def long_poll():
            c = s.client()
            got["answer"] = old.req("POST", old.path(q, "reservations"), {"n": 1, "wait": 5},
                                    timeout=15, client=c)
            c.close()
        waiter = threading.Thread(target=long_poll)
        waiter.start()
        time.sleep(0.2)
        assert not [line for line in log_lines(s) if " info " in line], "warn level: no info lines"

        write_config(conf, "token = new-token\nlog_level = info\nlog_format = json\n")
        s.signal(signal.SIGHUP)
        reloaded(s, 1)
        new = s.project("p", "new-token")
        st, _, _ = new.req("GET", new.path(q), client=kept)
        assert st == 200, "the new token works on the connection opened before"
        st, _, _ = old.req("GET", old.path(q), client=kept)
        assert st == 401, "the old token is refused (%s)" % st
        assert kept.connects == 1, "the connection stayed open"
        new.post(q, "after reload")
        waiter.join(10)
        st, body, _ = got["answer"]
        assert st == 200 and [m["body"] for m in body["messages"]] == ["after reload"], got
        kept.close()
    lines = log_lines(s)
    at = next(i for i, line in enumerate(lines) if "SIGHUP: settings reloaded" in line)
    before, after = lines[:at], lines[at:]
    assert not any(line.startswith("{") for line in before), "text before the reload"
    objs = [json.loads(line) for line in after]  # json after it, every line
    assert "1 token(s)" in objs[0]["msg"], objs[0]
    assert any(o["msg"] == "request" and o["status"] == 401 for o in objs), "info lines now"


def test_sighup_with_a_broken_config_keeps_the_settings():
    conf = os.path.join(make_temp_dir(), "anvil.conf")
    write_config(conf, "token = tok\nlog_format = json\n")
    with Server.start(["--config", conf]) as s:
        p = s.project("p", "tok")
        q = unique()
        p.create(q)
        for n, broken in enumerate(("token = other\nlog_level = loud\n",  # a bad value
                                    "this is not a setting\n",             # not key = value
                                    "log_format = text\n"),                # no token: dev mode
                                   start=1):
            write_config(conf, broken)
            s.signal(signal.SIGHUP)
            reloaded(s, n)
            st, _, _ = p.req("GET", p.path(q))
            assert st == 200, (broken, st)
            st, _, _ = s.project("p", "other").req("GET", p.path(q))
            assert st == 401, (broken, st)
        os.remove(conf)  # a config file that went away
        s.signal(signal.SIGHUP)
        reloaded(s, 4)
        assert p.req("GET", p.path(q))[0] == 200
    errors = [o for o in json_lines(s) if "SIGHUP" in o["msg"]]
    assert len(errors) == 4 and all(o["level"] == "error" for o in errors), errors
    assert "log_level" in errors[0]["msg"] and "dev server" in errors[2]["msg"], errors
    assert "cannot read config file" in errors[3]["msg"], errors[3]
