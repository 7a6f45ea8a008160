"""Authentication: with tokens configured every API call needs one (`Authorization: OAuth
<token>` or `?oauth=<token>`) that grants the project; /health needs none. Without tokens
anvil is a dev server that accepts anything but only listens on loopback."""
import secrets

from harness import Server, run_anvil, unique

srv = None


def setup_module():
    global srv
    srv = Server.start(["--token", "secret1:p1,p2", "--token", "admin"])


def teardown_module():
    srv.stop()


def call(project, headers=None, query="", method="GET", body=None):
    q = unique()
    path = "/3/projects/%s/queues/%s/messages%s" % (project, q, query)
    if method == "GET":
        path = "/3/projects/%s/queues%s" % (project, query)
    return srv.req(method, path, body, headers=headers)


def oauth(token):
    return {"Authorization": "OAuth " + token}


def test_token_grants_its_projects():
    for project in ("p1", "p2"):
        st, body, _ = call(project, oauth("secret1"))
        assert st == 200, (project, st, body)
        st, body, _ = call(project, oauth("secret1"), method="POST",
                           body={"messages": [{"body": "x"}]})
        assert st == 201, (project, st, body)


def test_token_on_another_project_is_403():
    p3 = unique("p3")
    st, body, _ = call(p3, oauth("secret1"))
    assert st == 403, (st, body)
    assert body["msg"], body
    st, body, _ = call(p3, oauth("secret1"), method="POST", body={"messages": [{"body": "x"}]})
    assert st == 403, (st, body)
    st, body, _ = srv.req("GET", "/3/projects/%s/queues" % p3, headers=oauth("admin"))
    assert (st, body) == (200, {"queues": []}), "the refused post created nothing"


def test_oauth_query_parameter_works():
    st, body, _ = call("p1", query="?oauth=secret1")
    assert st == 200, (st, body)
    st, body, _ = call("p1", query="?oauth=secret1", method="POST", body={"messages": [{"body": "x"}]})
    assert st == 201, (st, body)
    st, body, _ = call("p3", query="?oauth=secret1")
    assert st == 403, (st, body)
    st, body, _ = call("p1", query="?oauth=wrong")
    assert (st, body) == (401, {"msg": "Unauthorized"})


def test_missing_token_is_401_unauthorized():
    for headers in (None, {"Authorization": ""}, {"Authorization": "OAuth "},
                    {"Authorization": "OAuth"}):
        st, body, _ = call("p1", headers)
        assert (st, body) == (401, {"msg": "Unauthorized"}), (headers, st, body)
    st, body, _ = call("p1", query="?oauth=")
    assert (st, body) == (401, {"msg": "Unauthorized"})


def test_unknown_token_is_401_unauthorized():
    for token in ("secret", "secret12", "SECRET1", "p1", "secret1:p1,p2", "admin1"):
        st, body, _ = call("p1", oauth(token))
        assert (st, body) == (401, {"msg": "Unauthorized"}), (token, st, body)


def test_admin_token_works_on_any_project():
    for project in ("p1", "p3", unique("anything")):
        st, body, _ = call(project, oauth("admin"), method="POST", body={"messages": [{"body": "x"}]})
        assert st == 201, (project, st, body)


def test_every_endpoint_needs_the_token():
    q = unique()
    base = "/3/projects/p1/queues/" + q
    srv.req("PUT", base, {}, headers=oauth("secret1"))
    for method, path in (("GET", base), ("PUT", base), ("PATCH", base), ("DELETE", base),
                         ("POST", base + "/messages"), ("GET", base + "/messages"),
                         ("DELETE", base + "/messages"), ("POST", base + "/reservations"),
                         ("POST", base + "/webhook"), ("GET", base + "/messages/1"),
                         ("DELETE", base + "/messages/1"), ("POST", base + "/messages/1/touch"),
                         ("POST", base + "/messages/1/release"), ("GET", "/3/projects/p1/queues")):
        st, body, _ = srv.req(method, path, raw="x")
        assert (st, body) == (401, {"msg": "Unauthorized"}), (method, path, st, body)
    st, body, _ = srv.req("GET", base, headers=oauth("secret1"))
    assert st == 200, "nothing was changed by refused calls"


def test_health_needs_no_token():
    st, body, _ = srv.req("GET", "/health")
    assert st == 200 and body["status"] == "ok", (st, body)


def test_tokens_from_environment():
    with Server.start(env={"ANVIL_TOKENS": "secret1:p1,p2 admin"}) as s:
        assert s.req("GET", "/3/projects/p1/queues", headers=oauth("secret1"))[0] == 200
        assert s.req("GET", "/3/projects/p2/queues", headers=oauth("secret1"))[0] == 200
        assert s.req("GET", "/3/projects/p3/queues", headers=oauth("secret1"))[0] == 403
        assert s.req("GET", "/3/projects/p3/queues", headers=oauth("admin"))[0] == 200
        st, body, _ = s.req("GET", "/3/projects/p1/queues")
        assert (st, body) == (401, {"msg": "Unauthorized"})


def test_dev_mode_accepts_any_token_or_none():
    with Server.start() as s:
        for headers in (None, oauth("whatever"), {"Authorization": "garbage"}):
            st, body, _ = s.req("POST", "/3/projects/any/queues/q/messages",
                                {"messages": [{"body": "x"}]}, headers=headers)
            assert st == 201, (headers, st, body)
        assert s.req("GET", "/3/projects/other-project/queues?oauth=zzz")[0] == 200


def test_non_loopback_host_without_tokens_refuses_to_start():
    # The refusal comes before anything listens, so nothing is exposed.
    for args in (["--host", "0.0.0.0"], ["--host", "::"]):
        res = run_anvil(["--port", "0", "--data-dir", "/nonexistent/never-used"] + args)
        assert res.returncode == 1, (args, res.returncode, res.stderr)
        assert "anvil ready" not in res.stdout
        assert "loopback" in res.stderr and "token" in res.stderr, res.stderr
    res = run_anvil(["--port", "0", "--data-dir", "/nonexistent/never-used"],
                    env={"ANVIL_HOST": "0.0.0.0"})
    assert res.returncode == 1, (res.returncode, res.stderr)


def test_non_loopback_host_with_tokens_is_allowed():
    token = secrets.token_hex(16)
    with Server.start(["--host", "0.0.0.0", "--token", token]) as s:
        assert s.ready_host == "0.0.0.0", s.ready_host
        st, body, _ = s.req("GET", "/3/projects/p/queues", headers=oauth(token))
        assert st == 200, (st, body)
        st, body, _ = s.req("GET", "/3/projects/p/queues")
        assert (st, body) == (401, {"msg": "Unauthorized"})
