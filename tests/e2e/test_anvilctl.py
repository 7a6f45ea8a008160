"""anvilctl, the command-line client, against a real server: every command, its table and
--json outputs, the settings (flags beat ANVIL_* variables beat the config file), bad usage
(exit 2 with the usage line), a server that is down (exit 3 naming the URL), 404s (exit 4),
server errors (exit 1), bulk posts from stdin, backup while anvil runs and restore into a
fresh data directory, and the bash completion script.
The binary is $ANVILCTL_BIN, default `anvilctl` next to $ANVIL_BIN."""
import json
import os
import sqlite3
import subprocess
import threading
import time

import harness
from harness import Server, free_port, make_temp_dir, sqlite_only, unique

ANVILCTL_BIN = os.path.abspath(os.environ.get("ANVILCTL_BIN") or
                               os.path.join(os.path.dirname(harness.ANVIL_BIN), "anvilctl"))
COMPLETION_FILE = os.path.join(harness.REPO, "conf", "anvilctl.bash-completion")
COMMANDS = ["queues list", "queues info", "queues create", "queues update", "queues delete",
            "queues clear", "subscribers list", "subscribers add", "subscribers remove",
            "post", "reserve", "delete", "peek", "health", "stats", "backup", "restore",
            "completion"]

srv = None
HOME = None


def setup_module():
    global srv, HOME
    srv = Server.start()
    HOME = make_temp_dir("anvilctl-home-")  # no config file of the user's


def teardown_module():
    srv.stop()


def ctl(*args, server=None, env=None, stdin=None, url=True, timeout=60):
    """Runs anvilctl with a clean environment (HOME without a config file) pointed at the
    server through ANVIL_URL; returns the CompletedProcess (text)."""
    e = harness.clean_env({"HOME": HOME})
    e.pop("XDG_CONFIG_HOME", None)
    if url:
        e["ANVIL_URL"] = "http://127.0.0.1:%d" % (server or srv).port
    e.update(env or {})
    return subprocess.run([ANVILCTL_BIN] + list(args), env=e, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, cwd=HOME)


def ok(*args, **kw):
    r = ctl(*args, **kw)
    assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
    return r.stdout


def ok_json(*args, **kw):
    return json.loads(ok("--json", *args, **kw))


def fails(code, *args, **kw):
    r = ctl(*args, **kw)
    assert r.returncode == code, (args, "wanted", code, r.returncode, r.stdout, r.stderr)
    return r


def table(text):
    """A table's rows as lists of cells (header first), split on runs of 2+ spaces."""
    import re
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


# ---- help and usage ----

def test_help_lists_every_command_and_the_exit_codes():
    out = ok("--help", url=False)
    for name in COMMANDS:
        assert "  " + name + " " in out, name
    for code in ("0 ", "1 ", "2 ", "3 ", "4 "):
        assert "\n  " + code in out, code
    assert ok("help", url=False) == out


def test_every_command_has_help():
    for name in COMMANDS:
        out = ok(*name.split(), "--help", url=False)
        assert out.startswith("usage: anvilctl " + name), (name, out)
        assert ok("help", *name.split(), url=False) == out
    assert "queues create" in ok("queues", "--help", url=False)
    assert "subscribers add" in ok("help", "subscribers", url=False)


def test_bad_usage_exits_2_with_the_usage_line():
    cases = [
        ([], "usage: anvilctl"),
        (["frobnicate"], "no command"),
        (["queues"], "which subcommand"),
        (["queues", "rename", "q"], "no subcommand"),
        (["queues", "info"], "usage: anvilctl queues info QUEUE"),
        (["queues", "info", "a", "b"], "too many arguments"),
        (["post", "q"], "usage: anvilctl post"),
        (["reserve", "q", "-n", "two"], "not a whole number"),
        (["reserve", "q", "--timeout", "-5"], "--timeout"),
        (["peek", "q", "--delete"], "--delete does not apply"),
        (["health", "--bogus"], "unrecognized option"),
        (["completion", "zsh"], "only bash"),
        (["health", "--url", "ftp://x"], "http://"),
    ]
    for args, text in cases:
        r = fails(2, *args)
        assert text in r.stderr, (args, r.stderr)
        assert r.stdout == "", (args, r.stdout)


def test_version():
    assert ok("--version", url=False).startswith("anvilctl ")


# ---- the server is down, or answers errors ----

def test_server_down_exits_3_naming_the_url():
    url = "http://127.0.0.1:%d" % free_port()
    for args in (["health"], ["queues", "list"], ["post", "q", "x"], ["stats"]):
        r = fails(3, *args, "--url", url, url=False)
        assert "cannot reach the server at " + url in r.stderr, r.stderr


def test_missing_queue_exits_4_with_the_servers_message():
    q = unique("missing")
    for args in (["queues", "info", q], ["peek", q], ["reserve", q], ["queues", "delete", q],
                 ["queues", "clear", q], ["queues", "update", q, "--message-timeout", "60"],
                 ["subscribers", "list", q]):
        r = fails(4, *args)
        assert "Queue not found" in r.stderr, (args, r.stderr)
    q = unique("one")
    ok("post", q, "x")
    r = fails(4, "delete", q, "12345")
    assert "Message not found" in r.stderr


def test_server_errors_exit_1_with_the_servers_message():
    q = unique("bad")
    r = fails(1, "queues", "create", q, "--message-timeout", "5")
    assert "message_timeout" in r.stderr and "HTTP 400" in r.stderr, r.stderr
    ok("post", q, "x")
    r = fails(1, "subscribers", "add", q, "a=http://127.0.0.1:9/")
    assert "not a push queue" in r.stderr, r.stderr


# ---- health and stats ----

def test_health_ok_exits_0():
    rows = dict(table(ok("health"))[1:])
    assert rows["status"] == "ok" and rows["storage"] == "ok", rows
    got = ok_json("health")
    assert got["status"] == "ok", got


@sqlite_only
def test_health_degraded_exits_1():
    with Server.start() as s:
        p = s.project("p")
        q = unique("locked")
        p.post(q, "before")
        other = sqlite3.connect(os.path.join(s.data_dir, "anvil.db"), timeout=5,
                                isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            st, _, _ = p.req("POST", p.path(q, "messages"), {"messages": [{"body": "x"}]},
                             timeout=15)
            assert st == 503
            r = fails(1, "health", "--json", server=s)
            assert json.loads(r.stdout)["status"] == "degraded", r.stdout
        finally:
            other.execute("ROLLBACK")
            other.close()


def test_stats_table_and_json():
    q = unique("stats")
    ok("post", q, "a", "b")
    # the PostgreSQL back end counts messages for /stats every 5 s: not yet there
    least = 0 if harness.TEST_PG else 2
    rows = dict(table(ok("stats"))[1:])
    assert int(rows["messages"]) >= least and "memory.index_bytes" in rows, rows
    got = ok_json("stats")
    assert got["messages"] >= least and "memory" in got, got


# ---- queues ----

def test_queue_lifecycle_create_info_list_update_clear_delete():
    q, dlq = unique("life"), unique("dlq")
    out = ok("queues", "create", q, "--message-timeout", "120", "--message-expiration", "3600")
    assert out.startswith("created " + q), out
    info = ok_json("queues", "info", q)["queue"]
    assert info["message_timeout"] == 120 and info["message_expiration"] == 3600, info
    rows = {r[0]: r for r in table(ok("queues", "list"))}
    assert rows["NAME"] == ["NAME", "TYPE", "SIZE", "TOTAL"]
    assert rows[q][1:] == ["pull", "0", "0"], rows[q]
    names = [x["name"] for x in ok_json("queues", "list")["queues"]]
    assert q in names
    got = ok_json("queues", "update", q, "--dead-letter-queue", dlq, "--dead-letter-max", "3")
    assert got["queue"]["dead_letter"] == {"queue_name": dlq, "max_reservations": 3}, got
    assert got["queue"]["message_timeout"] == 120  # untouched by the update
    ok("post", q, "one", "two")
    assert table(ok("queues", "list", "--prefix", q))[1][2] == "2"
    assert ok("queues", "clear", q).strip() == "cleared " + q
    assert ok_json("queues", "info", q)["queue"]["size"] == 0
    assert ok("queues", "delete", q).strip() == "deleted queue " + q
    fails(4, "queues", "info", q)


def test_queue_list_pages_past_100_and_prefix():
    prefix = unique("many") + "-"
    for i in range(105):
        srv.project("default").create(prefix + "%03d" % i)
    names = [x["name"] for x in ok_json("queues", "list", "--prefix", prefix)["queues"]]
    assert names == [prefix + "%03d" % i for i in range(105)], names[:3]
    assert len(table(ok("queues", "list", "--prefix", prefix))) == 106


def test_project_flag_and_env():
    q = unique("proj")
    ok("post", q, "x", "--project", "other")
    fails(4, "queues", "info", q)
    assert ok_json("queues", "info", q, "-p", "other")["queue"]["size"] == 1
    assert ok_json("queues", "info", q, env={"ANVIL_PROJECT": "other"})["queue"]["size"] == 1
    st, body, _ = srv.project("other").req("GET", srv.project("other").path(q))
    assert st == 200 and body["queue"]["size"] == 1


# ---- messages ----

def test_post_arguments_peek_reserve_delete():
    q = unique("msgs")
    ids = ok("post", q, "hello", "two words", "multi\nline").split()
    assert len(ids) == 3
    peek = table(ok("peek", q, "-n", "5"))
    assert peek[0] == ["ID", "RESERVED_COUNT", "BODY"]
    assert [r[0] for r in peek[1:]] == ids
    assert peek[3][2] == "multi\\nline"
    got = ok_json("peek", q, "-n", "5")["messages"]
    assert [m["body"] for m in got] == ["hello", "two words", "multi\nline"]
    res = ok_json("reserve", q, "-n", "2", "--timeout", "60")["messages"]
    assert [m["id"] for m in res] == ids[:2] and res[0]["reserved_count"] == 1
    r = fails(1, "delete", q, ids[0])                       # reserved: needs its reservation
    assert "Reservation timed out" in r.stderr, r.stderr
    assert ok("delete", q, ids[0], "--reservation-id", res[0]["reservation_id"]).strip() == \
        "deleted message " + ids[0]
    rows = table(ok("reserve", q))
    assert rows[0] == ["ID", "RESERVATION_ID", "RESERVED_COUNT", "BODY"]
    assert rows[1][0] == ids[2] and len(rows[1][1]) == 32
    assert ok_json("delete", q, ids[1], "--reservation-id", res[1]["reservation_id"])["msg"] \
        == "Deleted"
    assert ok_json("queues", "info", q)["queue"]["size"] == 1


def test_post_from_stdin_in_bulk():
    q = unique("bulk")
    lines = "".join("message %d\n" % i for i in range(250)) + "\n"  # the empty line is skipped
    ids = ok("post", q, "-", stdin=lines).split()
    assert len(ids) == 250 and len(set(ids)) == 250
    assert ok_json("queues", "info", q)["queue"]["size"] == 250
    got = ok_json("peek", q, "-n", "3")["messages"]
    assert [m["body"] for m in got] == ["message 0", "message 1", "message 2"]
    got = ok_json("post", q, "first", "-", "last", stdin="a\nb\n")
    assert len(got["ids"]) == 4, got
    assert ok_json("queues", "info", q)["queue"]["size"] == 254


def test_post_bodies_starting_with_a_dash_after_double_dash():
    q = unique("dash")
    ok("post", q, "--", "-n", "--x")
    assert [m["body"] for m in ok_json("peek", q, "-n", "5")["messages"]] == ["-n", "--x"]


def test_post_delay_and_reserve_delete_and_wait():
    q = unique("wait")
    ok("post", q, "later", "--delay", "60")
    t0 = time.monotonic()
    assert ok_json("reserve", q, "--wait", "1")["messages"] == []
    assert time.monotonic() - t0 >= 0.9
    assert table(ok("reserve", q)) == [["ID", "RESERVATION_ID", "RESERVED_COUNT", "BODY"]]
    ok("post", q, "now")
    got = ok_json("reserve", q, "--delete")["messages"]
    assert [m["body"] for m in got] == ["now"]
    assert ok_json("queues", "info", q)["queue"]["size"] == 1  # the delayed one


def test_reserve_wait_is_answered_by_a_post():
    q = unique("longpoll")
    ok("queues", "create", q)
    done = {}

    def waiter():
        done["out"] = ok_json("reserve", q, "--wait", "10")
    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    ok("post", q, "wake")
    t.join(15)
    assert [m["body"] for m in done["out"]["messages"]] == ["wake"], done


# ---- push queues and subscribers ----

def test_push_queue_and_subscribers():
    q, errs = unique("push"), unique("errs")
    got = ok_json("queues", "create", q, "--type", "multicast",
                  "--push-subscriber", "a=http://127.0.0.1:9/a",
                  "--push-subscriber", "http://127.0.0.1:9/b",
                  "--retries", "2", "--retries-delay", "5", "--error-queue", errs)["queue"]
    assert got["type"] == "multicast"
    assert got["push"]["subscribers"] == [{"name": "a", "url": "http://127.0.0.1:9/a"},
                                          {"name": "s2", "url": "http://127.0.0.1:9/b"}], got
    assert got["push"]["retries"] == 2 and got["push"]["retries_delay"] == 5
    assert got["push"]["error_queue"] == errs
    rows = table(ok("subscribers", "list", q))
    assert rows == [["NAME", "URL"], ["a", "http://127.0.0.1:9/a"], ["s2", "http://127.0.0.1:9/b"]]
    ok("subscribers", "add", q, "c=http://127.0.0.1:9/c", "a=http://127.0.0.1:9/a2")
    ok("subscribers", "remove", q, "s2")
    subs = ok_json("subscribers", "list", q)["subscribers"]
    assert subs == [{"name": "a", "url": "http://127.0.0.1:9/a2"},
                    {"name": "c", "url": "http://127.0.0.1:9/c"}], subs
    r = fails(2, "subscribers", "add", q, "http://127.0.0.1:9/d")
    assert "NAME=URL" in r.stderr
    got = ok_json("queues", "update", q, "--retries", "0")["queue"]
    assert got["push"]["retries"] == 0


# ---- settings ----

def write_config(text):
    path = os.path.join(make_temp_dir("anvilctl-conf-"), "anvilctl.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_settings_flags_beat_env_beat_config_file():
    good = "http://127.0.0.1:%d" % srv.port
    bad = "http://127.0.0.1:%d" % free_port()
    conf = write_config("# anvilctl settings\nurl = %s\nproject = fromfile\n" % good)
    q = unique("conf")
    ok("post", q, "x", "--config", conf, url=False)
    assert srv.project("fromfile").req("GET", srv.project("fromfile").path(q))[0] == 200
    fails(3, "health", "--config", conf, env={"ANVIL_URL": bad}, url=False)
    ok("health", "--config", conf, "--url", good, env={"ANVIL_URL": bad}, url=False)
    ok("health", env={"ANVILCTL_CONFIG": conf}, url=False)
    fails(3, "health", "--url", bad)                        # flag beats ANVIL_URL
    # the default file: $HOME/.config/anvil/anvilctl.conf
    home = make_temp_dir("anvilctl-home2-")
    os.makedirs(os.path.join(home, ".config", "anvil"))
    with open(os.path.join(home, ".config", "anvil", "anvilctl.conf"), "w") as f:
        f.write("url = %s\n" % good)
    ok("health", env={"HOME": home}, url=False)
    r = fails(2, "health", "--config", write_config("colour = red\n"), url=False)
    assert "unknown key" in r.stderr and ":1:" in r.stderr, r.stderr
    r = fails(2, "health", "--config", "/nonexistent/anvilctl.conf", url=False)
    assert "cannot read" in r.stderr


def test_token_from_flag_env_or_file():
    with Server.start(["--token", "sekrit"]) as s:
        q = unique("tok")
        r = fails(1, "post", q, "x", server=s)
        assert "HTTP 401" in r.stderr, r.stderr
        ok("post", q, "x", "--token", "sekrit", server=s)
        ok("post", q, "y", server=s, env={"ANVIL_TOKEN": "sekrit"})
        conf = write_config("token = sekrit\n")
        assert ok_json("queues", "info", q, "--config", conf, server=s)["queue"]["size"] == 2
        ok("health", server=s)                               # /health needs no token


# ---- backup and restore ----

@sqlite_only
def test_backup_while_running_then_restore_into_a_fresh_data_dir():
    q = unique("backup")
    with Server.start() as s:
        ok("post", q, "-", server=s, stdin="".join("m%d\n" % i for i in range(150)))
        stop = threading.Event()

        def writer():   # the server keeps committing while the backup runs
            p = s.project("default")
            while not stop.is_set():
                p.post(unique("busy"), "x")
        t = threading.Thread(target=writer)
        t.start()
        try:
            dest = os.path.join(make_temp_dir(), "anvil.backup")
            out = ok("backup", dest, "--data-dir", s.data_dir, url=False)
        finally:
            stop.set()
            t.join(10)
        assert out.startswith("backed up %s to %s" % (s.data_dir, dest)), out
        assert os.path.exists(dest)
        r = fails(1, "restore", dest, "--data-dir", s.data_dir, url=False)
        assert "stop it first" in r.stderr, r.stderr
        fails(1, "backup", dest, "--data-dir", s.data_dir, url=False)  # exists already
    fresh = os.path.join(make_temp_dir(), "data")
    got = ok_json("restore", dest, url=False, env={"ANVIL_DATA_DIR": fresh})
    assert got["data_dir"] == fresh and got["messages"] >= 150, got
    with Server.start(data_dir=fresh) as s2:
        info = ok_json("queues", "info", q, server=s2)["queue"]
        assert info["size"] == 150, info
        got = ok_json("peek", q, "-n", "2", server=s2)["messages"]
        assert [m["body"] for m in got] == ["m0", "m1"]


def test_backup_of_a_missing_data_dir_exits_1():
    r = fails(1, "backup", os.path.join(make_temp_dir(), "b"), "--data-dir",
              os.path.join(make_temp_dir(), "none"), url=False)
    assert r.stderr.startswith("anvilctl backup: "), r.stderr


# ---- completion ----

def test_bash_completion_loads_and_matches_the_committed_script():
    script = ok("completion", "bash", url=False)
    with open(COMPLETION_FILE) as f:
        assert f.read() == script, "conf/anvilctl.bash-completion differs from the binary's"
    r = subprocess.run(["bash", "-c", "source <(%s completion bash); complete -p anvilctl"
                        % ANVILCTL_BIN], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and "complete -F _anvilctl anvilctl" in r.stdout, (r.stdout, r.stderr)


def test_bash_completion_completes_commands_and_options():
    def complete(line):
        words = line.split(" ")
        script = ("source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_anvilctl\n"
                  "printf '%%s\\n' \"${COMPREPLY[@]}\"\n"
                  % (COMPLETION_FILE, " ".join("'%s'" % w for w in words), len(words) - 1))
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()
    assert "queues" in complete("anvilctl qu") and "post" in complete("anvilctl ")
    assert sorted(complete("anvilctl queues c")) == ["clear", "create"]
    assert "--message-timeout" in complete("anvilctl queues create q --mess")
    assert complete("anvilctl reserve q --w") == ["--wait"]
    assert complete("anvilctl queues create q --type m") == ["multicast"]
