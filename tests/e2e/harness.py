"""tests/e2e/harness.py — runs the real anvil binary for end-to-end tests.

Server.start() launches `anvil --port 0 --data-dir <tempdir> [args]`, waits (10 s at most)
for the ready line `anvil ready http://HOST:PORT` on stdout, and sends stderr to
<tempdir>/anvil.log. Every server started is remembered so run.py can print its log tail
when a test fails and kill whatever a failing test left running; atexit kills the rest.
Client is a keep-alive HTTP/1.1 client that checks the one rule every response obeys:
Content-Type application/json and a JSON body. Only 127.0.0.1 is ever contacted, and every
socket operation has a timeout.

Standard library only; runs on Debian 12's /usr/bin/python3 (3.11).
"""
import atexit
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ANVIL_BIN = os.path.abspath(os.environ.get("ANVIL_BIN") or os.path.join(REPO, "build", "anvil"))

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 15.0  # above the server's default shutdown_timeout (10 s)
HTTP_TIMEOUT_S = 10.0
READY_RE = re.compile(r"^anvil ready http://(\[[^\]]+\]|[^:/]+):(\d+)\s*$")

ALL_SERVERS = []  # every Server ever started, in order (run.py reads it)
# ANVIL_TEST_PG=postgres://user@host:port: every Server runs on the PostgreSQL back end, each
# with a database of its own on that cluster (created here, kept across its restarts).
TEST_PG = os.environ.get("ANVIL_TEST_PG")
_PG_DATABASES = []
_TEMP_DIRS = []


BOTH = ("sqlite", "postgres")


def sqlite_only(fn):
    """Marks a test of what only the embedded back end has (a data directory, its files)."""
    fn.backends = ("sqlite",)
    return fn


def slow(fn):
    """Marks a test that takes more than ~5 s; run.py --quick skips it."""
    fn.slow = True
    return fn


def clean_env(extra=None):
    """The environment for anvil: ours without any ANVIL_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANVIL_")}
    env.update(extra or {})
    return env


def make_temp_dir(prefix="anvil-e2e-"):
    path = tempfile.mkdtemp(prefix=prefix)
    _TEMP_DIRS.append(path)
    return path


def run_anvil(args, env=None, timeout=READY_TIMEOUT_S):
    """Runs anvil to completion (for flags that make it exit): CompletedProcess with text."""
    return subprocess.run([ANVIL_BIN] + list(args), env=clean_env(env), cwd=make_temp_dir(),
                          stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


class StartError(Exception):
    pass


class Server:
    """One anvil process. Use Server.start(...); `with` stops it (or kills it on error)."""

    def __init__(self, args=(), env=None, data_dir=None, bare=False):
        self.args = list(args)
        self.env = dict(env or {})
        self.temp_dir = make_temp_dir()
        self.data_dir = data_dir or os.path.join(self.temp_dir, "data")
        self.backend = None
        if TEST_PG and not bare:
            db = "anvil_e2e_%d_%d" % (os.getpid(), len(ALL_SERVERS))
            subprocess.run(["psql", TEST_PG + "/postgres", "-X", "-q", "-c", "CREATE DATABASE " + db],
                           check=True, capture_output=True, timeout=30)
            _PG_DATABASES.append(db)
            self.backend = TEST_PG + "/" + db
        self.bare = bare  # no --port 0 / --data-dir: args (or env, a config file) say it all
        self.log_path = os.path.join(self.temp_dir, "anvil.log")
        self.proc = None
        self.port = None
        self.ready_host = None
        self.running = False
        self.starts = 0
        self._client = None
        ALL_SERVERS.append(self)

    # ---- lifecycle ----

    @classmethod
    def start(cls, args=(), env=None, data_dir=None, bare=False):
        s = cls(args, env, data_dir, bare)
        s._launch()
        return s

    def command(self):
        if self.bare:
            return [ANVIL_BIN] + self.args
        backend = ["--backend", self.backend] if self.backend else []
        return [ANVIL_BIN, "--port", "0", "--data-dir", self.data_dir] + backend + self.args

    def _launch(self):
        if not os.path.exists(ANVIL_BIN):
            raise StartError("anvil binary not found at %s (set ANVIL_BIN or build it)" % ANVIL_BIN)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(("---- start %d: %s\n" % (self.starts, " ".join(self.command()))).encode())
            log.flush()
            # cwd: a relative default such as ./anvil-data must not land in the repository
            self.proc = subprocess.Popen(self.command(), env=clean_env(self.env), cwd=self.temp_dir,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=log)
        self.running = True
        line = self._read_ready_line()
        m = READY_RE.match(line)
        if not m:
            self.kill()
            raise StartError("unexpected ready line %r\n%s" % (line, self.log_tail()))
        self.ready_host = m.group(1)
        self.port = int(m.group(2))
        self._client = None

    def _read_ready_line(self):
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + READY_TIMEOUT_S
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise StartError("no ready line within %.0f s\n%s" % (READY_TIMEOUT_S, self.log_tail()))
            readable, _, _ = select.select([fd], [], [], left)
            if not readable:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:  # stdout closed: the process ended before it was ready
                code = self.proc.wait(timeout=5)
                self.running = False
                self.proc.stdout.close()
                raise StartError("anvil exited with status %s before it was ready\n%s"
                                 % (code, self.log_tail()))
            buf += chunk
        return buf.split(b"\n", 1)[0].decode("utf-8", "replace")

    def _reap(self, timeout):
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self._client:
                self._client.close()
                self._client = None
        self.proc.stdout.close()
        self.running = False
        return code

    def signal(self, signo):
        self.proc.send_signal(signo)

    def stop(self):
        """SIGTERM, wait, and insist on exit status 0."""
        if not self.running:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self._reap(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("anvil did not exit within %.0f s of SIGTERM\n%s"
                                 % (STOP_TIMEOUT_S, self.log_tail()))
        assert code == 0, "anvil exited with status %s after SIGTERM\n%s" % (code, self.log_tail())
        return code

    def wait_exit(self, timeout):
        """Waits for the process to end by itself (after a signal sent with .signal())."""
        return self._reap(timeout)

    def kill(self):
        """SIGKILL: the process gets no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            try:
                self._reap(10)
            except subprocess.TimeoutExpired:
                pass
        self.running = False

    def restart(self, args=None, env=None):
        """Stops (SIGTERM, exit 0) if running, then starts again on the same data dir."""
        self.stop()
        if args is not None:
            self.args = list(args)
        if env is not None:
            self.env = dict(env)
        self._launch()
        return self

    def died(self):
        """Exit status if the process ended while we thought it was running, else None."""
        if self.running and self.proc.poll() is not None:
            self.running = False
            return self.proc.returncode
        return None

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        tail = text.splitlines()[-lines:]
        return "---- anvil log tail (%s) ----\n%s" % (self.log_path, "\n".join(tail))

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            self.kill()
        return False

    # ---- HTTP ----

    def client(self):
        """A new keep-alive connection to this server."""
        return Client("127.0.0.1", self.port)

    def req(self, method, path, body=None, headers=None, raw=None, timeout=None):
        """One request on this server's shared keep-alive connection (see Client.req)."""
        if self._client is None:
            self._client = self.client()
        return self._client.req(method, path, body=body, headers=headers, raw=raw, timeout=timeout)

    def project(self, project_id, token=None):
        return Project(self, project_id, token)

    def healthy(self):
        status, body, _ = self.req("GET", "/health")
        return status == 200 and body.get("status") == "ok"


class Client:
    """HTTP/1.1 keep-alive client. req() → (status, parsed JSON or None, headers) where
    headers is a dict with lower-case names. Asserts every response is JSON."""

    def __init__(self, host, port, timeout=HTTP_TIMEOUT_S):
        assert host == "127.0.0.1", "tests talk to loopback only"
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None
        self.connects = 0

    def _connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.conn.connect()
        self.connects += 1

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def req(self, method, path, body=None, headers=None, raw=None, timeout=None):
        """body: a dict/list sent as JSON; raw: bytes or str sent as is; neither: no body."""
        hdrs = {"Accept": "application/json"}
        data = None
        if raw is not None:
            data = raw.encode("utf-8") if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        for attempt in (1, 2):
            reused = self.conn is not None
            if not reused:
                self._connect()
            self.conn.sock.settimeout(timeout or self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                resp = self.conn.getresponse()
                payload = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server may close an idle kept-alive connection: reconnect once. A fresh
                # connection failing is a real failure.
                self.close()
                if not reused or attempt == 2:
                    raise
            except Exception:
                self.close()
                raise
        resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            self.close()
        else:
            self.conn.sock.settimeout(self.timeout)
        return resp.status, decode_json(method, path, resp.status, resp_headers, payload), resp_headers


def decode_json(method, path, status, headers, payload):
    where = "%s %s → %s" % (method, path, status)
    ctype = headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == "application/json", \
        "%s: Content-Type is %r, not application/json (body %r)" % (where, ctype, payload[:200])
    if method == "HEAD":
        return None
    assert payload, "%s: empty body, every answer must be JSON" % where
    try:
        return json.loads(payload.decode("utf-8"))
    except ValueError as e:
        raise AssertionError("%s: body is not JSON (%s): %r" % (where, e, payload[:200]))


def quote(name):
    """Percent-encodes a queue name for a path segment (spaces as %20, '/' as %2F)."""
    return urllib.parse.quote(name, safe="")


class Project:
    """Paths under /3/projects/{id}, plus short helpers for test set-up. Tests assert on the
    raw answers of the call they are about; these helpers are for the steps around it and
    assert that those steps succeed."""

    def __init__(self, server, project_id, token=None):
        self.server = server
        self.id = project_id
        self.token = token

    def path(self, queue=None, *rest):
        p = "/3/projects/%s/queues" % quote(self.id)
        if queue is not None:
            p += "/" + quote(queue)
        for part in rest:
            p += "/" + str(part)
        return p

    def req(self, method, path, body=None, headers=None, raw=None, timeout=None, client=None):
        hdrs = dict(headers or {})
        if self.token and "Authorization" not in hdrs:
            hdrs["Authorization"] = "OAuth " + self.token
        target = client or self.server
        return target.req(method, path, body=body, headers=hdrs, raw=raw, timeout=timeout)

    # set-up helpers: each asserts success and returns the useful part of the answer

    def create(self, queue, **options):
        st, body, _ = self.req("PUT", self.path(queue), {"queue": options})
        assert st == 200, (st, body)
        return body["queue"]

    def info(self, queue):
        st, body, _ = self.req("GET", self.path(queue))
        assert st == 200, (st, body)
        return body["queue"]

    def post(self, queue, *bodies, delay=None):
        msgs = [{"body": b} if delay is None else {"body": b, "delay": delay} for b in bodies]
        st, body, _ = self.req("POST", self.path(queue, "messages"), {"messages": msgs})
        assert st == 201, (st, body)
        return body["ids"]

    def reserve(self, queue, **args):
        st, body, _ = self.req("POST", self.path(queue, "reservations"), args,
                               timeout=args.get("wait", 0) + HTTP_TIMEOUT_S)
        assert st == 200, (st, body)
        return body["messages"]

    def reserve_one(self, queue, **args):
        msgs = self.reserve(queue, n=1, **args)
        assert len(msgs) == 1, msgs
        return msgs[0]

    def peek(self, queue, n=100):
        st, body, _ = self.req("GET", self.path(queue, "messages") + "?n=%d" % n)
        assert st == 200, (st, body)
        return body["messages"]

    def get(self, queue, msg_id):
        """The message, or None when the server answers 404."""
        st, body, _ = self.req("GET", self.path(queue, "messages", msg_id))
        if st == 404:
            return None
        assert st == 200, (st, body)
        return body["message"]

    def release(self, queue, msg_id, reservation_id, **args):
        args["reservation_id"] = reservation_id
        st, body, _ = self.req("POST", self.path(queue, "messages", msg_id, "release"), args)
        assert st == 200, (st, body)

    def size(self, queue):
        return self.info(queue)["size"]


def wait_for(predicate, timeout=5.0, step=0.02):
    """Polls predicate until it holds or timeout seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def free_port():
    """A loopback port nothing listens on (for a server that is down, or one to start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix="q"):
    """A queue name no other test uses."""
    unique.n += 1
    return "%s-%d-%d" % (prefix, os.getpid(), unique.n)


unique.n = 0


def cleanup_all():
    for s in ALL_SERVERS:
        if s.proc and s.proc.poll() is None:
            s.proc.kill()
            try:
                s.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
    if not os.environ.get("ANVIL_E2E_KEEP"):
        for d in _TEMP_DIRS:
            shutil.rmtree(d, ignore_errors=True)
        for db in _PG_DATABASES:
            subprocess.run(["psql", TEST_PG + "/postgres", "-X", "-q", "-c",
                            "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db],
                           capture_output=True, timeout=30)


atexit.register(cleanup_all)
