"""Queues: create (PUT), get, update (PATCH), delete, list; options, their defaults and
limits; dead-letter settings; queue names in paths; projects kept apart."""
from harness import Server, unique

srv = None
P = None


def setup_module():
    global srv, P
    srv = Server.start()
    P = srv.project("p")


def teardown_module():
    srv.stop()


QUEUE_KEYS_CREATE = {"id", "project_id", "name", "message_timeout", "message_expiration", "type"}


# ---- create ----

def test_put_creates_queue_with_defaults_and_answers_without_counts():
    q = unique()
    st, body, hdrs = P.req("PUT", P.path(q), {"queue": {}})
    assert st == 200, (st, body)
    assert hdrs["content-type"] == "application/json"
    queue = body["queue"]
    assert set(queue) == QUEUE_KEYS_CREATE, queue
    assert queue["name"] == q
    assert queue["project_id"] == "p"
    assert isinstance(queue["id"], str) and queue["id"]
    assert queue["message_timeout"] == 60
    assert queue["message_expiration"] == 604800
    assert queue["type"] == "pull"


def test_put_with_empty_body_or_empty_object_uses_defaults():
    for raw in ("", "{}", "  \n"):
        q = unique()
        st, body, _ = P.req("PUT", P.path(q), raw=raw, headers={"Content-Type": "application/json"})
        assert st == 200, (raw, st, body)
        assert body["queue"]["message_timeout"] == 60
        assert body["queue"]["message_expiration"] == 604800
    q = unique()
    st, body, _ = P.req("PUT", P.path(q))
    assert st == 200, (st, body)


def test_put_accepts_options_under_queue_or_at_root():
    q1, q2 = unique(), unique()
    st, body, _ = P.req("PUT", P.path(q1), {"queue": {"message_timeout": 120}})
    assert st == 200 and body["queue"]["message_timeout"] == 120, body
    st, body, _ = P.req("PUT", P.path(q2), {"message_timeout": 90, "message_expiration": 3600})
    assert st == 200, body
    assert body["queue"]["message_timeout"] == 90
    assert body["queue"]["message_expiration"] == 3600


def test_put_on_existing_queue_updates_it_and_keeps_its_id_and_messages():
    q = unique()
    first = P.create(q, message_timeout=100)
    P.post(q, "kept")
    st, body, _ = P.req("PUT", P.path(q), {"queue": {"message_expiration": 7200}})
    assert st == 200, (st, body)
    assert body["queue"]["id"] == first["id"]
    assert body["queue"]["message_timeout"] == 100  # not mentioned: unchanged
    assert body["queue"]["message_expiration"] == 7200
    assert P.info(q)["size"] == 1


def test_go_client_queue_body_with_zeros_name_size_and_total_is_accepted():
    q = unique()
    go_body = {"queue": {"name": q, "size": 0, "total_messages": 0, "message_expiration": 0,
                         "message_timeout": 0}}
    st, body, _ = P.req("PUT", P.path(q), go_body)
    assert st == 200, (st, body)
    assert body["queue"]["message_timeout"] == 60
    assert body["queue"]["message_expiration"] == 604800
    P.create(q, message_timeout=300, message_expiration=9000)
    st, body, _ = P.req("PATCH", P.path(q), go_body)
    assert st == 200, (st, body)
    assert body["queue"]["message_timeout"] == 300  # zero means "not given": unchanged
    assert body["queue"]["message_expiration"] == 9000


def test_name_size_total_messages_and_unknown_fields_are_ignored():
    q = unique()
    st, body, _ = P.req("PUT", P.path(q), {"queue": {"name": "other-name", "size": 55,
                                                     "total_messages": 99, "colour": "blue",
                                                     "nested": {"x": [1, 2]}}})
    assert st == 200, (st, body)
    assert body["queue"]["name"] == q
    info = P.info(q)
    assert info["size"] == 0 and info["total_messages"] == 0, info
    assert "colour" not in info


def test_message_timeout_accepts_30_to_86400_and_rejects_others():
    for good in (30, 86400):
        st, body, _ = P.req("PUT", P.path(unique()), {"queue": {"message_timeout": good}})
        assert st == 200 and body["queue"]["message_timeout"] == good, (good, st, body)
    for bad in (29, 86401, -1, 1.5, "60", True):
        st, body, _ = P.req("PUT", P.path(unique()), {"queue": {"message_timeout": bad}})
        assert st == 400, (bad, st, body)
        assert body["msg"], body


def test_message_expiration_accepts_60_to_2592000_and_rejects_others():
    for good in (60, 2592000):
        st, body, _ = P.req("PUT", P.path(unique()), {"queue": {"message_expiration": good}})
        assert st == 200 and body["queue"]["message_expiration"] == good, (good, st, body)
    for bad in (59, 2592001, -5, "x"):
        st, body, _ = P.req("PUT", P.path(unique()), {"queue": {"message_expiration": bad}})
        assert st == 400, (bad, st, body)


def test_rejected_create_does_not_create_the_queue():
    q = unique()
    st, _, _ = P.req("PUT", P.path(q), {"queue": {"message_timeout": 5}})
    assert st == 400
    st, body, _ = P.req("GET", P.path(q))
    assert st == 404, (st, body)


def test_type_pull_is_accepted():
    q = unique()
    st, body, _ = P.req("PUT", P.path(q), {"queue": {"type": "pull"}})
    assert st == 200 and body["queue"]["type"] == "pull", body


def test_push_queues_without_subscribers_or_push_settings_on_pull_are_400():
    for options in ({"type": "unicast"}, {"type": "multicast"}, {"push": {"retries": 3}},
                    {"type": "pull", "push": {}}):
        q = unique()
        st, body, _ = P.req("PUT", P.path(q), {"queue": options})
        assert st == 400, (options, st, body)
        assert body["msg"], body
        assert P.req("GET", P.path(q))[0] == 404


def test_unknown_type_is_rejected():
    for t in ("fifo", "", "PULL", 3):
        st, body, _ = P.req("PUT", P.path(unique()), {"queue": {"type": t}})
        assert st == 400, (t, st, body)


def test_changing_type_of_existing_queue_is_rejected():
    q = unique()
    P.create(q)
    for verb in ("PUT", "PATCH"):
        st, body, _ = P.req(verb, P.path(q), {"queue": {"type": "multicast"}})
        assert st == 400, (verb, st, body)
    assert P.info(q)["type"] == "pull"
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"type": "pull"}})
    assert st == 200, (st, body)


# ---- get ----

def test_get_reports_counts_and_settings():
    q = unique()
    created = P.create(q, message_timeout=45)
    st, body, _ = P.req("GET", P.path(q))
    assert st == 200, (st, body)
    queue = body["queue"]
    assert set(queue) >= QUEUE_KEYS_CREATE | {"size", "total_messages"}, queue
    assert queue["id"] == created["id"]
    assert queue["message_timeout"] == 45
    assert queue["size"] == 0 and queue["total_messages"] == 0


def test_get_unknown_queue_is_404_queue_not_found():
    st, body, _ = P.req("GET", P.path(unique()))
    assert (st, body) == (404, {"msg": "Queue not found"})


def test_size_counts_ready_delayed_and_reserved_messages():
    q = unique()
    P.post(q, "ready-1", "ready-2", "to-reserve")
    P.post(q, "delayed", delay=60)
    P.reserve_one(q)
    info = P.info(q)
    assert info["size"] == 4, info
    assert info["total_messages"] == 4, info


def test_total_messages_counts_posts_and_is_not_lowered_by_deletes():
    q = unique()
    ids = P.post(q, "a", "b")
    P.post(q, "c")
    st, _, _ = P.req("DELETE", P.path(q, "messages", ids[0]))
    assert st == 200
    info = P.info(q)
    assert info["size"] == 2 and info["total_messages"] == 3, info


# ---- update ----

def test_patch_updates_existing_queue_and_answers_like_get():
    q = unique()
    P.create(q)
    P.post(q, "m")
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"message_timeout": 33}})
    assert st == 200, (st, body)
    queue = body["queue"]
    assert queue["message_timeout"] == 33
    assert queue["message_expiration"] == 604800
    assert queue["size"] == 1 and queue["total_messages"] == 1, queue
    assert P.info(q)["message_timeout"] == 33


def test_patch_unknown_queue_is_404_and_does_not_create_it():
    q = unique()
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"message_timeout": 40}})
    assert (st, body) == (404, {"msg": "Queue not found"})
    assert P.req("GET", P.path(q))[0] == 404


def test_patch_with_invalid_value_is_400_and_changes_nothing():
    q = unique()
    P.create(q, message_timeout=50)
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"message_timeout": 31,
                                                       "message_expiration": 10}})
    assert st == 400, (st, body)
    assert P.info(q)["message_timeout"] == 50


# ---- delete ----

def test_delete_queue_removes_it_and_its_messages():
    q = unique()
    ids = P.post(q, "x", "y")
    st, body, _ = P.req("DELETE", P.path(q))
    assert (st, body) == (200, {"msg": "Deleted"})
    assert P.req("GET", P.path(q))[0] == 404
    st, body, _ = P.req("GET", P.path(q, "messages", ids[0]))
    assert st == 404, (st, body)
    # posting again starts a fresh queue
    P.post(q, "z")
    info = P.info(q)
    assert info["size"] == 1 and info["total_messages"] == 1, info


def test_delete_unknown_queue_is_404():
    st, body, _ = P.req("DELETE", P.path(unique()))
    assert (st, body) == (404, {"msg": "Queue not found"})


# ---- list ----

def list_names(project, query=""):
    st, body, _ = project.req("GET", project.path() + query)
    assert st == 200, (query, st, body)
    assert set(body) == {"queues"}, body
    for entry in body["queues"]:
        assert set(entry) >= {"name"}, entry
    return [e["name"] for e in body["queues"]]


def test_list_of_project_without_queues_is_empty():
    assert list_names(srv.project(unique("empty-project"))) == []


def test_list_is_in_byte_lexicographic_order():
    proj = srv.project(unique("list-order"))
    names = ["b", "a", "B", "ab", "a b", "\u00e9t\u00e9", "Z", "_x", "10", "9", "\u4e2d"]
    for n in names:
        proj.create(n)
    expected = sorted(names, key=lambda s: s.encode("utf-8"))
    assert list_names(proj, "?per_page=100") == expected


def test_list_per_page_defaults_to_30_and_allows_up_to_100():
    proj = srv.project(unique("list-paging"))
    names = ["q%03d" % i for i in range(101)]
    for n in names:
        proj.create(n)
    assert list_names(proj) == names[:30]
    assert list_names(proj, "?per_page=0") == names[:30]
    assert list_names(proj, "?per_page=1") == names[:1]
    assert list_names(proj, "?per_page=100") == names[:100]


def test_list_per_page_over_100_or_not_a_number_is_400():
    for bad in ("101", "1000", "abc", "-1", "1.5", "10x"):
        st, body, _ = P.req("GET", P.path() + "?per_page=" + bad)
        assert st == 400, (bad, st, body)
        assert body["msg"], body


def test_list_previous_starts_strictly_after_the_name_whether_or_not_it_exists():
    proj = srv.project(unique("list-previous"))
    for n in ("a", "b", "c", "d"):
        proj.create(n)
    assert list_names(proj, "?previous=b") == ["c", "d"]
    assert list_names(proj, "?previous=bb") == ["c", "d"]
    assert list_names(proj, "?previous=d") == []
    assert list_names(proj, "?previous=0") == ["a", "b", "c", "d"]
    assert list_names(proj, "?previous=a&per_page=2") == ["b", "c"]


def test_list_pages_through_everything_with_previous():
    proj = srv.project(unique("list-pages"))
    names = ["n%02d" % i for i in range(25)]
    for n in names:
        proj.create(n)
    seen, previous = [], ""
    while True:
        page = list_names(proj, "?per_page=7&previous=" + previous)
        if not page:
            break
        seen += page
        previous = page[-1]
    assert seen == names


def test_list_prefix_filters_names():
    proj = srv.project(unique("list-prefix"))
    for n in ("app-a", "app-b", "apple", "ap", "bpp-a", "app-c"):
        proj.create(n)
    assert list_names(proj, "?prefix=app-") == ["app-a", "app-b", "app-c"]
    assert list_names(proj, "?prefix=app") == ["app-a", "app-b", "app-c", "apple"]
    assert list_names(proj, "?prefix=zzz") == []
    assert list_names(proj, "?prefix=app-&previous=app-a") == ["app-b", "app-c"]
    assert list_names(proj, "?prefix=app-&per_page=2") == ["app-a", "app-b"]


def test_list_shows_deleted_queues_no_more():
    proj = srv.project(unique("list-delete"))
    for n in ("one", "two"):
        proj.create(n)
    assert proj.req("DELETE", proj.path("one"))[0] == 200
    assert list_names(proj) == ["two"]


# ---- dead-letter settings ----

def test_dead_letter_is_shown_in_get_with_default_max_reservations_10():
    q = unique()
    st, body, _ = P.req("PUT", P.path(q), {"queue": {"dead_letter": {"queue_name": "dlq"}}})
    assert st == 200, (st, body)
    assert P.info(q)["dead_letter"] == {"queue_name": "dlq", "max_reservations": 10}


def test_dead_letter_max_reservations_accepts_1_to_1000():
    q = unique()
    for good in (1, 1000):
        st, body, _ = P.req("PUT", P.path(q), {"queue": {"dead_letter": {
            "queue_name": "dlq", "max_reservations": good}}})
        assert st == 200, (good, st, body)
        assert P.info(q)["dead_letter"]["max_reservations"] == good
    for bad in (0, 1001, -1, "5"):
        st, body, _ = P.req("PUT", P.path(q), {"queue": {"dead_letter": {
            "queue_name": "dlq", "max_reservations": bad}}})
        assert st == 400, (bad, st, body)
    assert P.info(q)["dead_letter"]["max_reservations"] == 1000


def test_dead_letter_max_reservations_alone_updates_an_existing_dead_letter():
    q = unique()
    P.create(q, dead_letter={"queue_name": "dlq", "max_reservations": 3})
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"dead_letter": {"max_reservations": 7}}})
    assert st == 200, (st, body)
    assert body["queue"]["dead_letter"] == {"queue_name": "dlq", "max_reservations": 7}


def test_dead_letter_max_reservations_without_queue_name_on_queue_without_one_is_400():
    q = unique()
    P.create(q)
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"dead_letter": {"max_reservations": 5}}})
    assert st == 400, (st, body)
    q2 = unique()
    st, body, _ = P.req("PUT", P.path(q2), {"queue": {"dead_letter": {"max_reservations": 5}}})
    assert st == 400, (st, body)
    assert "dead_letter" not in P.info(q)


def test_dead_letter_empty_queue_name_removes_it():
    q = unique()
    P.create(q, dead_letter={"queue_name": "dlq"})
    st, body, _ = P.req("PATCH", P.path(q), {"queue": {"dead_letter": {"queue_name": ""}}})
    assert st == 200, (st, body)
    assert "dead_letter" not in body["queue"]
    assert "dead_letter" not in P.info(q)


def test_dead_letter_pointing_at_the_queue_itself_is_400():
    q = unique()
    st, body, _ = P.req("PUT", P.path(q), {"queue": {"dead_letter": {"queue_name": q}}})
    assert st == 400, (st, body)
    assert P.req("GET", P.path(q))[0] == 404


def test_dead_letter_loop_is_400():
    a, b, c = unique("a"), unique("b"), unique("c")
    P.create(a, dead_letter={"queue_name": b})
    st, body, _ = P.req("PUT", P.path(b), {"queue": {"dead_letter": {"queue_name": a}}})
    assert st == 400, (st, body)
    P.create(b, dead_letter={"queue_name": c})
    P.create(c)
    st, body, _ = P.req("PATCH", P.path(c), {"queue": {"dead_letter": {"queue_name": a}}})
    assert st == 400, (st, body)
    st, body, _ = P.req("PUT", P.path(c), {"queue": {"dead_letter": {"queue_name": a}}})
    assert st == 400, (st, body)


def test_dead_letter_queue_name_must_be_a_valid_name():
    for bad in ("a/b", "x" * 256, "tab\there", 5):
        st, body, _ = P.req("PUT", P.path(unique()), {"queue": {"dead_letter": {"queue_name": bad}}})
        assert st == 400, (bad, st, body)


# ---- names in paths ----

def test_percent_encoded_queue_name_is_decoded():
    st, body, _ = P.req("PUT", "/3/projects/names-space/queues/my%20queue", {})
    assert st == 200 and body["queue"]["name"] == "my queue", body
    proj = srv.project("names-space")
    assert proj.info("my queue")["name"] == "my queue"
    assert list_names(proj) == ["my queue"]
    P.post("my queue", "hi")
    st, body, _ = P.req("GET", "/3/projects/p/queues/my%20queue")
    assert st == 200 and body["queue"]["size"] == 1, body


def test_plus_in_a_path_is_a_plus_not_a_space():
    st, body, _ = P.req("PUT", "/3/projects/p/queues/a+b", {})
    assert st == 200 and body["queue"]["name"] == "a+b", body
    assert P.req("GET", "/3/projects/p/queues/a%2Bb")[0] == 200
    assert P.req("GET", "/3/projects/p/queues/a%20b")[0] == 404


def test_unicode_queue_names_work():
    name = unique("caf\u00e9-\u4e2d\u6587-\U0001f600")
    P.post(name, "x")
    assert P.info(name)["name"] == name


def test_queue_name_of_255_bytes_is_accepted_and_256_rejected():
    name = "n" * 255
    st, body, _ = P.req("PUT", P.path(name), {})
    assert st == 200 and body["queue"]["name"] == name, (st, body)
    st, body, _ = P.req("PUT", P.path("n" * 256), {})
    assert st == 400, (st, body)
    # two-byte characters: 128 of them make 256 bytes
    st, body, _ = P.req("PUT", P.path("\u00e9" * 128), {})
    assert st == 400, (st, body)


def test_encoded_slash_in_queue_name_is_400():
    st, body, _ = P.req("PUT", "/3/projects/p/queues/a%2Fb", {})
    assert st == 400, (st, body)
    assert body["msg"], body
    st, body, _ = P.req("POST", "/3/projects/p/queues/a%2fb/messages", {"messages": [{"body": "x"}]})
    assert st == 400, (st, body)


def test_control_characters_in_queue_name_are_400():
    for enc in ("a%01b", "a%0Ab", "%09", "x%7F", "a%1Fb"):
        st, body, _ = P.req("PUT", "/3/projects/p/queues/" + enc, {})
        assert st == 400, (enc, st, body)


def test_encoded_nul_in_queue_name_is_400():
    # NUL is a control character like any other: an invalid name, so 400 like %01.
    st, body, _ = P.req("PUT", "/3/projects/p/queues/a%00b", {})
    assert st == 400, (st, body)


def test_invalid_utf8_in_queue_name_is_400():
    for enc in ("%FF", "a%C3", "%C0%AF", "%ED%A0%80"):
        st, body, _ = P.req("PUT", "/3/projects/p/queues/" + enc, {})
        assert st == 400, (enc, st, body)


# ---- projects ----

def test_same_queue_name_in_two_projects_are_different_queues():
    q = unique()
    one, two = srv.project(unique("proj-one")), srv.project(unique("proj-two"))
    one.create(q, message_timeout=100)
    ids = one.post(q, "only in one")
    assert two.req("GET", two.path(q))[0] == 404
    assert two.req("GET", two.path(q, "messages", ids[0]))[0] == 404
    two.post(q, "only in two")
    assert one.info(q)["message_timeout"] == 100
    assert two.info(q)["message_timeout"] == 60
    assert [m["body"] for m in one.peek(q)] == ["only in one"]
    assert [m["body"] for m in two.peek(q)] == ["only in two"]
    assert one.req("DELETE", one.path(q))[0] == 200
    assert two.info(q)["size"] == 1
    assert list_names(one) == []
    assert list_names(two) == [q]
