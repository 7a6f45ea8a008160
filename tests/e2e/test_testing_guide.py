"""docs/testing-with-anvil.md runs as written: its code blocks marked `<!-- guide-check: NAME -->`
are read out of the guide and run against the real binary — the Python helper (start, read the
ready line, stop; a start that fails), the stdlib clock helper, the boto3 example and, with
Node and the client suite's node_modules, the Node helper with the Node iron_mq example. The
Python iron_mq example runs only where that client is installed (it is not a Debian package).
The helpers start their own servers (--durability memory), so the module is embedded-only."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request

from harness import ANVIL_BIN, REPO, clean_env

BACKENDS = ("sqlite",)

GUIDE = os.path.join(REPO, "docs", "testing-with-anvil.md")
NODE_DIR = os.path.join(REPO, "tests", "clients", "node")
BLOCK_RE = re.compile(r"<!-- guide-check: ([a-z0-9-]+) -->\n```[a-z]+\n(.*?)\n```", re.S)


def guide_blocks():
    with open(GUIDE, encoding="utf-8") as f:
        blocks = dict(BLOCK_RE.findall(f.read()))
    for name in ("python-helper", "python-clock", "python-iron-mq", "python-boto3",
                 "node-helper", "node-iron-mq"):
        assert name in blocks, "the guide lost its %s block" % name
    return blocks


def run_blocks(*names):
    """The named blocks executed, in order, in one namespace; returns it."""
    blocks = guide_blocks()
    ns = {"__name__": "guide"}
    for name in names:
        exec(compile(blocks[name], "%s[%s]" % (GUIDE, name), "exec"), ns)  # noqa: S102
    return ns


class GuideServer:
    """A server started by the guide's own Python helper; always stopped."""

    def __init__(self, ns, *args):
        self.ns = ns
        self.proc, self.url = ns["start_anvil"](ANVIL_BIN, *args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.ns["stop_anvil"](self.proc)
        return False

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return resp.status, json.load(resp)


def no_proxy():
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        os.environ.pop(k, None)


def test_python_helper_starts_anvil_reads_the_url_and_stops_it():
    no_proxy()
    ns = run_blocks("python-helper")
    with GuideServer(ns) as srv:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", srv.url), srv.url
        assert srv.get("/health")[0] == 200
        status, body = srv.get("/admin")
        assert status == 200 and body["test_mode"] is True, body
        ns["stop_anvil"](srv.proc)
        assert srv.proc.returncode == 0, "exit status %s after SIGTERM" % srv.proc.returncode


def test_python_helper_passes_extra_args():
    ns = run_blocks("python-helper")
    with GuideServer(ns, "--limits", "relaxed") as srv:
        assert srv.get("/admin")[1]["limits"] == "relaxed"


def test_python_helper_raises_when_anvil_does_not_start():
    ns = run_blocks("python-helper")
    try:
        proc, url = ns["start_anvil"](ANVIL_BIN, "--no-such-flag")
    except RuntimeError as e:
        assert "did not start" in str(e), e
    else:
        ns["stop_anvil"](proc)
        raise AssertionError("started with a bad flag: %s" % url)


def test_clock_helper_freezes_advances_and_unfreezes_without_going_back():
    no_proxy()
    ns = run_blocks("python-helper", "python-clock")
    with GuideServer(ns) as srv:
        clock = ns["clock"]
        frozen = clock(srv.url, "freeze")
        assert frozen["mode"] == "frozen", frozen
        moved = clock(srv.url, "advance", seconds=60)
        assert moved["now_ms"] - frozen["now_ms"] == 60000, (frozen, moved)
        moved = clock(srv.url, "advance", ms=1500)
        assert moved["now_ms"] - frozen["now_ms"] == 61500, (frozen, moved)
        running = clock(srv.url, "unfreeze")
        assert running["mode"] == "wall", running
        assert running["now_ms"] >= moved["now_ms"], "the clock went back: %s" % running
        assert 0 < running["offset_ms"] <= 61500, running
        assert srv.get("/admin/clock")[1]["offset_ms"] > 0


def test_boto3_example_sees_the_message_again_after_its_visibility_timeout():
    try:
        import boto3  # noqa: F401 — python3-boto3, as tests/clients/sqs uses it
    except ImportError:
        print("  (boto3 is not installed: the guide's boto3 example was not run)")
        return
    no_proxy()
    for k in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
              "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        os.environ.pop(k, None)
    os.environ.setdefault("AWS_CONFIG_FILE", "/dev/null")
    os.environ.setdefault("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    ns = run_blocks("python-helper", "python-clock", "python-boto3")
    with GuideServer(ns) as srv:
        ns["test_message_is_visible_again_after_its_visibility_timeout"](srv.url)


def test_python_iron_mq_example_where_the_client_is_installed():
    try:
        import iron_mq  # noqa: F401 — pip install iron-mq (not packaged for Debian)
    except ImportError:
        print("  (iron_mq for Python is not installed: the guide's iron_mq example was not run)")
        return
    no_proxy()
    ns = run_blocks("python-helper", "python-clock", "python-iron-mq")
    with GuideServer(ns) as srv:
        ns["test_reserved_message_comes_back_after_its_timeout"](srv.url)


NODE_DRIVER = """
(async () => {
  const { proc, url, port } = await startAnvil(process.env.ANVIL_BIN);
  if (!/^http:\\/\\/127\\.0\\.0\\.1:\\d+$/.test(url)) throw new Error('url ' + url);
  try {
    await reservationOfTenMinutesEnds(port);
  } finally {
    await stopAnvil(proc);
  }
  console.log('guide ok ' + proc.exitCode);
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
"""


def test_node_helper_and_iron_mq_example():
    node = shutil.which("node")
    if not node or not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "iron_mq")):
        print("  (node or tests/clients/node/node_modules is missing: the Node examples were not run;"
              " npm ci in tests/clients/node)")
        return
    blocks = guide_blocks()
    with tempfile.TemporaryDirectory(prefix="anvil-guide-") as tmp:
        script = os.path.join(tmp, "guide.js")
        with open(script, "w", encoding="utf-8") as f:
            f.write("'use strict';\n" + blocks["node-helper"] + "\n" + blocks["node-iron-mq"] + "\n" + NODE_DRIVER)
        env = clean_env({"ANVIL_BIN": ANVIL_BIN, "NODE_PATH": os.path.join(NODE_DIR, "node_modules")})
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(k, None)
        r = subprocess.run([node, script], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "guide ok 0" in r.stdout, (r.returncode, r.stdout, r.stderr)
