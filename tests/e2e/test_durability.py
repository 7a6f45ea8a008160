"""Durability: what a restart keeps. After SIGTERM or SIGKILL every answered post and
delete holds, reserved messages are ready again, queue settings and totals survive;
--durability normal survives a restart too; --durability memory keeps nothing. One data
directory serves one process at a time."""

BACKENDS = ("sqlite",)  # restarts of the embedded back end: reservations are not durable there, data-directory locks
import os

from harness import Server, run_anvil, unique


def scenario(s):
    """Builds a known state; returns what a restart must show."""
    p = s.project("p")
    settings = p.create("settings", message_timeout=45, message_expiration=7200,
                        dead_letter={"queue_name": "dead", "max_reservations": 3})
    ids = p.post("work", "kept-1", "reserved", "deleted", "kept-2")
    (delayed,) = p.post("work", "delayed", delay=3600)
    p.post("work", "kept-3")
    first = p.reserve_one("work")           # "kept-1"
    p.release("work", first["id"], first["reservation_id"])
    p.reserve_one("work")                   # "kept-1" again (front): reserved_count 2
    reserved = p.reserve_one("work")        # "reserved": reserved_count 1
    assert reserved["id"] == ids[1]
    st, _, _ = p.req("DELETE", p.path("work", "messages", ids[2]))
    assert st == 200
    p.post("cleared", "a", "b")
    assert p.req("DELETE", p.path("cleared", "messages"), {})[0] == 200
    p.post("dropped", "x")
    assert p.req("DELETE", p.path("dropped"))[0] == 200
    p.post("recreated", "old-1", "old-2")
    assert p.req("DELETE", p.path("recreated"))[0] == 200
    p.post("recreated", "new")
    (gone,) = p.post("acked", "acked with its reservation")
    m = p.reserve_one("acked")
    assert p.req("DELETE", p.path("acked", "messages", gone), {"reservation_id": m["reservation_id"]})[0] == 200
    (touched,) = p.post("touched", "t")
    m = p.reserve_one("touched")
    st, body, _ = p.req("POST", p.path("touched", "messages", touched, "touch"),
                        {"reservation_id": m["reservation_id"]})
    assert st == 200, body
    (later,) = p.post("released", "released with a delay")
    m = p.reserve_one("released")
    p.release("released", later, m["reservation_id"], delay=3600)
    other = s.project("other")
    other.post("work", "other project")
    return {"ids": ids, "delayed": delayed, "settings_id": settings["id"], "gone": gone,
            "touched": touched, "last_id": max(int(i) for i in ids + [delayed, gone, touched])}


def check_scenario(s, expect):
    p = s.project("p")
    ids = expect["ids"]
    settings = p.info("settings")
    assert settings["message_timeout"] == 45 and settings["message_expiration"] == 7200, settings
    assert settings["dead_letter"] == {"queue_name": "dead", "max_reservations": 3}, settings
    assert settings["id"] == expect["settings_id"], "a queue keeps its id"
    work = p.info("work")
    assert work["total_messages"] == 6, work
    assert work["size"] == 5, work  # 6 posted, 1 deleted; the delayed one counts
    assert p.get("work", ids[2]) is None, "the deleted message came back"
    assert p.get("work", ids[0])["reserved_count"] == 2
    assert p.get("work", ids[1])["reserved_count"] == 1
    assert p.get("work", expect["delayed"])["body"] == "delayed"
    ready = p.peek("work")
    assert sorted(m["body"] for m in ready) == ["kept-1", "kept-2", "kept-3", "reserved"], ready
    got = p.reserve("work", n=100)
    assert sorted(m["body"] for m in got) == ["kept-1", "kept-2", "kept-3", "reserved"], got
    assert p.info("cleared")["size"] == 0
    assert p.info("cleared")["total_messages"] == 2
    assert p.req("GET", p.path("dropped"))[0] == 404
    recreated = p.info("recreated")
    assert recreated["size"] == 1 and recreated["total_messages"] == 1, recreated
    assert [m["body"] for m in p.peek("recreated")] == ["new"]
    assert p.get("acked", expect["gone"]) is None and p.info("acked")["size"] == 0
    assert p.peek("released") == [] and p.info("released")["size"] == 1, \
        "a release delay outlives the restart"
    touched = p.reserve_one("touched")
    assert touched["id"] == expect["touched"] and touched["reserved_count"] == 3, touched
    assert [m["body"] for m in s.project("other").peek("work")] == ["other project"]
    (new_id,) = p.post("work", "after restart")
    assert int(new_id) > expect["last_id"], "ids must keep increasing across restarts"


def test_sigterm_restart_keeps_messages_settings_and_totals():
    with Server.start() as s:
        expect = scenario(s)
        s.restart()
        check_scenario(s, expect)


def test_sigkill_keeps_every_answered_post_and_delete():
    with Server.start() as s:
        p = s.project("p")
        ids = []
        for i in range(50):
            ids += p.post("q", "m%d" % i)
        for i in ids[::5]:
            assert p.req("DELETE", p.path("q", "messages", i))[0] == 200
        reserved = p.reserve("q", n=3)
        p.create("cfg", message_timeout=99)
        s.kill()
        s.restart()
        deleted = set(ids[::5])
        for i in ids:
            assert (p.get("q", i) is None) == (i in deleted), i
        info = p.info("q")
        assert info["size"] == 40 and info["total_messages"] == 50, info
        ready_ids = [m["id"] for m in p.peek("q", 100)]
        for m in reserved:
            assert m["id"] in ready_ids, "a reservation does not outlive the process"
        assert p.info("cfg")["message_timeout"] == 99


def test_sigkill_right_after_answers_loses_nothing():
    with Server.start() as s:
        p = s.project("p")
        ids = p.post("burst", *["b%d" % i for i in range(100)])
        st, body, _ = p.req("DELETE", p.path("burst", "messages"), {"ids": ids[:10]})
        assert st == 200, body
        s.kill()
        s.restart()
        assert p.info("burst")["size"] == 90
        assert p.get("burst", ids[9]) is None and p.get("burst", ids[10]) is not None


def test_normal_durability_survives_restart():
    with Server.start(["--durability", "normal"]) as s:
        expect = scenario(s)
        s.restart()
        check_scenario(s, expect)


def test_normal_durability_survives_sigkill():
    with Server.start(["--durability", "normal"]) as s:
        p = s.project("p")
        ids = p.post("q", "a", "b", "c")
        assert p.req("DELETE", p.path("q", "messages", ids[1]))[0] == 200
        s.kill()
        s.restart()
        assert sorted(m["id"] for m in p.peek("q")) == sorted([ids[0], ids[2]])


def test_memory_durability_keeps_nothing_across_restart():
    with Server.start(["--durability", "memory"]) as s:
        p = s.project("p")
        p.create("cfg", message_timeout=99)
        p.post("q", "a", "b")
        assert p.info("q")["size"] == 2
        s.restart()
        assert p.req("GET", p.path("q"))[0] == 404
        assert p.req("GET", p.path("cfg"))[0] == 404
        st, body, _ = p.req("GET", p.path())
        assert (st, body) == (200, {"queues": []})


def test_memory_durability_writes_nothing_to_the_data_directory():
    with Server.start(["--durability", "memory"]) as s:
        s.project("p").post("q", "a")
        assert not os.path.exists(s.data_dir) or os.listdir(s.data_dir) == [], \
            os.listdir(s.data_dir)


def test_second_server_on_the_same_data_directory_refuses_to_start():
    with Server.start() as s:
        s.project("p").post("q", "first server's")
        res = run_anvil(["--port", "0", "--data-dir", s.data_dir])
        assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
        assert "anvil ready" not in res.stdout, res.stdout
        assert "data director" in res.stderr and "in use" in res.stderr, res.stderr
        assert s.healthy()
        assert s.project("p").info("q")["size"] == 1


def test_data_directory_is_free_again_after_a_stop_or_a_kill():
    with Server.start() as s:
        s.project("p").post("q", "x")
        s.kill()
        s.restart()
        s.restart()
        assert s.project("p").info("q")["size"] == 1


def test_dead_lettered_message_stays_in_the_dead_letter_queue_after_restart():
    with Server.start() as s:
        p = s.project("p")
        dlq = unique("dlq")
        p.create("src", dead_letter={"queue_name": dlq, "max_reservations": 1})
        (mid,) = p.post("src", "poison")
        m = p.reserve_one("src")
        p.release("src", mid, m["reservation_id"])
        assert p.reserve("src") == []
        s.kill()
        s.restart()
        assert p.get("src", mid) is None
        moved = p.get(dlq, mid)
        assert moved["body"] == "poison" and moved["reserved_count"] == 1, moved
        assert p.info(dlq)["total_messages"] == 1
