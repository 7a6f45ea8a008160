"""Configuration: flags, environment (ANVIL_*), config file, and their precedence
(flag > env > file > default); bad settings exit 2; signals stop the server with 0."""
import os
import signal
import time

from harness import Server, make_temp_dir, run_anvil, sqlite_only, unique


def write_config(text):
    path = os.path.join(make_temp_dir(), "anvil.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def accepts_body_of(server, n_bytes):
    """True if a message body of n_bytes is accepted (201), False if it is too large (413)."""
    st, body, _ = server.req("POST", "/3/projects/p/queues/%s/messages" % unique(),
                             {"messages": [{"body": "b" * n_bytes}]})
    assert st in (201, 413), (st, body)
    return st == 201


def test_help_exits_0_and_prints_usage():
    for flag in ("--help", "-h"):
        res = run_anvil([flag])
        assert res.returncode == 0, (flag, res.returncode, res.stderr)
        assert "usage" in res.stdout.lower(), res.stdout
        for option in ("--port", "--data-dir", "--durability", "--token", "--max-message-size",
                       "--config"):
            assert option in res.stdout, option


def test_version_exits_0():
    res = run_anvil(["--version"])
    assert res.returncode == 0 and res.stdout.startswith("anvil "), (res.returncode, res.stdout)


def test_unknown_flag_exits_2():
    for args in (["--bogus"], ["--port", "0", "--no-such-thing", "1"], ["stray"]):
        res = run_anvil(args)
        assert res.returncode == 2, (args, res.returncode, res.stderr)
        assert res.stderr.strip(), "says why"
        assert "anvil ready" not in res.stdout


def test_bogus_durability_exits_2():
    res = run_anvil(["--port", "0", "--durability", "bogus"])
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "durability" in res.stderr
    res = run_anvil(["--port", "0"], env={"ANVIL_DURABILITY": "sometimes"})
    assert res.returncode == 2, (res.returncode, res.stderr)


def test_bad_values_exit_2():
    for args in (["--port", "abc"], ["--port", "70000"], ["--max-message-size", "0"],
                 ["--max-message-size", "-5"], ["--port"],
                 ["--max-message-size", "2m", "--max-request-size", "1m"],
                 ["--log-level", "loud"], ["--token", ":p1"]):
        res = run_anvil(args)
        assert res.returncode == 2, (args, res.returncode, res.stderr)
        assert "anvil ready" not in res.stdout


def test_config_file_is_read():
    conf = write_config("# anvil test configuration\n"
                        "\n"
                        "port = 0            # any free port\n"
                        "durability = memory\n"
                        "   max_message_size = 100   \n"
                        "log-level = info\n")
    with Server.start(["--config", conf], bare=True) as s:
        assert accepts_body_of(s, 100)
        assert not accepts_body_of(s, 101)
        p = s.project("p")
        p.post("q", "x")
        s.restart()
        assert p.req("GET", p.path("q"))[0] == 404, "durability = memory from the file"


def test_config_file_from_environment_and_short_flag():
    conf = write_config("port = 0\ndurability = memory\nmax_message_size = 10\n")
    with Server.start([], env={"ANVIL_CONFIG": conf}, bare=True) as s:
        assert accepts_body_of(s, 10) and not accepts_body_of(s, 11)
    with Server.start(["-c", conf], bare=True) as s:
        assert accepts_body_of(s, 10) and not accepts_body_of(s, 11)


def test_config_file_errors_exit_2():
    for text in ("no_such_setting = 1\n", "port 8080\n", "port = many\n",
                 "durability = sometimes\n"):
        res = run_anvil(["--config", write_config(text)])
        assert res.returncode == 2, (text, res.returncode, res.stderr)
        assert res.stderr.strip()
    res = run_anvil(["--config", "/nonexistent/anvil.conf"])
    assert res.returncode == 2, (res.returncode, res.stderr)


def test_file_setting_applies_when_nothing_overrides_it():
    conf = write_config("max_message_size = 10\n")
    with Server.start(["--config", conf]) as s:
        assert accepts_body_of(s, 10)
        assert not accepts_body_of(s, 11)
        assert not accepts_body_of(s, 25)


def test_environment_overrides_config_file():
    conf = write_config("max_message_size = 10\n")
    with Server.start(["--config", conf], env={"ANVIL_MAX_MESSAGE_SIZE": "20"}) as s:
        assert accepts_body_of(s, 20)
        assert not accepts_body_of(s, 21)
        assert not accepts_body_of(s, 25)


def test_flag_overrides_environment_and_config_file():
    conf = write_config("max_message_size = 10\n")
    with Server.start(["--config", conf, "--max-message-size", "30"],
                      env={"ANVIL_MAX_MESSAGE_SIZE": "20"}) as s:
        assert accepts_body_of(s, 25)
        assert accepts_body_of(s, 30)
        assert not accepts_body_of(s, 31)


def test_flag_with_equals_sign_and_environment_alone():
    with Server.start(["--max-message-size=30"]) as s:
        assert accepts_body_of(s, 30) and not accepts_body_of(s, 31)
    with Server.start([], env={"ANVIL_MAX_MESSAGE_SIZE": "20"}) as s:
        assert accepts_body_of(s, 20) and not accepts_body_of(s, 21)


def test_max_message_size_flag_changes_the_limit_for_posts_and_webhooks():
    with Server.start(["--max-message-size", "200k"]) as s:
        assert accepts_body_of(s, 200 * 1024)
        assert not accepts_body_of(s, 200 * 1024 + 1)
        p = s.project("p")
        st, body, _ = p.req("POST", p.path("w", "webhook"), raw=b"w" * (200 * 1024))
        assert st == 201, (st, body)
        st, body, _ = p.req("POST", p.path("w", "webhook"), raw=b"w" * (200 * 1024 + 1))
        assert st == 413, (st, body)


@sqlite_only  # durability is the embedded back end's setting
def test_durability_from_environment():
    with Server.start([], env={"ANVIL_DURABILITY": "memory"}) as s:
        s.project("p").post("q", "x")
        s.restart()
        assert s.project("p").req("GET", "/3/projects/p/queues/q")[0] == 404


def test_sigterm_and_sigint_stop_the_server_with_status_0():
    for signo in (signal.SIGTERM, signal.SIGINT):
        s = Server.start()
        try:
            c = s.client()
            assert c.req("GET", "/health")[0] == 200  # an idle kept-alive connection stays open
            began = time.monotonic()
            s.signal(signo)
            code = s.wait_exit(10)
            assert code == 0, (signo, code, s.log_tail())
            assert time.monotonic() - began < 2, "stopping took %.1f s" % (time.monotonic() - began)
            c.close()
        finally:
            s.kill()


def test_ready_line_names_the_address_listened_on():
    with Server.start() as s:
        assert s.ready_host == "127.0.0.1"
        assert 0 < s.port < 65536
        assert s.healthy()
