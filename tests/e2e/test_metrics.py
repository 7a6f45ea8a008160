"""GET /metrics (api/metrics.c): the Prometheus text format, read back with a real parser
(Debian's python3-prometheus-client, which CI installs: this module fails, never skips,
without it), and values that move as they should after known operations: posts, reserves,
deletes, releases, a reservation timeout driven by the virtual clock, a dead letter,
request counters per route and status, push deliveries by outcome, the queue label limit
(metrics_queue_limit), and the token rule of /stats (any valid token; none in dev mode).
Counters are server-wide and the server is shared, so tests compare before and after."""
import http.client

from prometheus_client.parser import text_string_to_metric_families

from harness import Server, sqlite_only, unique

srv = None
P = None
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def setup_module():
    global srv, P
    srv = Server.start(["--metrics-queue-limit", "10"])
    P = srv.project("p")


def teardown_module():
    srv.stop()


def scrape_raw(server=None, headers=None):
    """(status, content type, text) of GET /metrics, without the harness's JSON checks."""
    s = server or srv
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read().decode("utf-8")
    finally:
        conn.close()


class Scrape:
    """One parsed scrape: families by name and samples by (name, labels)."""

    def __init__(self, text):
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = {}
        for f in self.families.values():
            for s in f.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(self, name, default=0.0, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def labelled(self, name):
        """Every label set of samples called name."""
        return [dict(k[1]) for k in self.samples if k[0] == name]


def scrape(server=None, headers=None):
    st, ctype, text = scrape_raw(server, headers)
    assert st == 200, (st, text[:300])
    assert ctype == CONTENT_TYPE, ctype
    return Scrape(text)


def events(sc, event):
    return sc.get("anvil_message_events_total", event=event)


def depth(sc, queue, state, project="p"):
    return sc.get("anvil_queue_messages", None, project=project, queue=queue, state=state)


def requests(sc, route, status):
    return sc.get("anvil_http_requests_total", route=route, status=str(status))


# ---- the format ----

def test_text_parses_with_prometheus_parser_and_declares_every_family():
    P.post(unique(), "x")
    st, ctype, text = scrape_raw()
    assert st == 200 and ctype == CONTENT_TYPE, (st, ctype)
    families = list(text_string_to_metric_families(text))
    names = {f.name for f in families}
    # the parser drops _total from counter family names
    for name in ("anvil_build_info", "anvil_queues", "anvil_messages", "anvil_storage_ok",
                 "anvil_http_requests", "anvil_http_request_duration_seconds",
                 "anvil_longpoll_waiters", "anvil_process_resident_memory_bytes",
                 "anvil_http_connections", "anvil_push_deliveries",
                 "anvil_push_delivery_duration_seconds"):
        assert name in names, (name, sorted(names))
    types = {f.name: f.type for f in families}
    assert types["anvil_http_requests"] == "counter"
    assert types["anvil_http_request_duration_seconds"] == "histogram"
    assert types["anvil_queues"] == "gauge"
    for line in text.splitlines():  # every family has HELP and TYPE before its samples
        if line.startswith("# TYPE "):
            assert ("# HELP " + line.split()[2]) in text, line
    assert all(f.name.startswith("anvil_") for f in families)
    assert scrape().get("anvil_process_resident_memory_bytes") > 1 << 20


@sqlite_only
def test_embedded_engine_families_are_there():
    sc = scrape()
    for name in ("anvil_message_events", "anvil_queue_messages", "anvil_other_queues_messages",
                 "anvil_commit_batch_records", "anvil_commit_batch_duration_seconds",
                 "anvil_commit_fsync_duration_seconds", "anvil_db_bytes", "anvil_db_free_bytes"):
        assert name in sc.families, name
    assert sc.get("anvil_db_bytes") > 0
    assert sc.get("anvil_commit_batch_records_count") > 0
    assert sc.get("anvil_commit_batch_records_bucket", le="+Inf") == \
        sc.get("anvil_commit_batch_records_count")


def test_histogram_buckets_are_cumulative_and_end_in_the_count():
    sc = scrape()
    buckets = [(float(labels["le"]), sc.get("anvil_http_request_duration_seconds_bucket", **labels))
               for labels in sc.labelled("anvil_http_request_duration_seconds_bucket")
               if labels["route"] == "post" and labels["status"] == "201"]
    assert len(buckets) >= 10, buckets
    buckets.sort()
    values = [v for _, v in buckets]
    assert values == sorted(values), buckets
    assert values[-1] == sc.get("anvil_http_request_duration_seconds_count", route="post",
                                status="201")


@sqlite_only
def test_label_values_are_escaped():
    q = '!we"ird\\name \u00e9'  # "!" sorts first: among the labelled queues
    P.post(q, "x")
    _, _, text = scrape_raw()
    assert 'queue="!we\\"ird\\\\name \u00e9"' in text
    assert depth(scrape(), q, "ready") == 1  # the parser reads it back as it was


# ---- values move ----

@sqlite_only
def test_post_reserve_delete_release_move_the_counters_and_depths():
    q = "a-" + unique()  # "a-" sorts first: among the labelled queues
    before = scrape()
    P.post(q, "one", "two", "three")
    mid = scrape()
    assert events(mid, "post") - events(before, "post") == 3
    assert depth(mid, q, "ready") == 3 and depth(mid, q, "reserved") == 0
    m1, m2 = P.reserve(q, n=2)
    st, body, _ = P.req("DELETE", P.path(q, "messages", m1["id"]),
                        {"reservation_id": m1["reservation_id"]})
    assert st == 200, body
    P.release(q, m2["id"], m2["reservation_id"])
    after = scrape()
    assert events(after, "reserve") - events(mid, "reserve") == 2
    assert events(after, "delete") - events(mid, "delete") == 1
    assert events(after, "release") - events(mid, "release") == 1
    assert depth(after, q, "ready") == 2 and depth(after, q, "reserved") == 0
    assert requests(after, "post", 201) - requests(before, "post", 201) == 1
    assert requests(after, "reserve", 200) - requests(mid, "reserve", 200) == 1
    assert requests(after, "delete", 200) - requests(mid, "delete", 200) == 1
    assert requests(after, "release", 200) - requests(mid, "release", 200) == 1


def test_request_counters_count_errors_by_status():
    before = scrape()
    st, _, _ = P.req("GET", P.path(unique("missing")))
    assert st == 404
    st, _, _ = srv.req("GET", "/no/such/path")
    assert st == 404
    after = scrape()
    assert requests(after, "queue_get", 404) - requests(before, "queue_get", 404) == 1
    assert requests(after, "other", 404) - requests(before, "other", 404) == 1
    assert requests(after, "metrics", 200) - requests(before, "metrics", 200) == 1


@sqlite_only
def test_reservation_timeout_and_dead_letter_with_the_virtual_clock():
    q, dlq = "a-" + unique(), "a-" + unique("dlq")
    P.create(q, dead_letter={"queue_name": dlq, "max_reservations": 1})
    st, _, _ = srv.req("POST", "/admin/clock/freeze")
    assert st == 200
    try:
        before = scrape()
        P.post(q, "m")
        P.reserve_one(q, timeout=60)
        assert depth(scrape(), q, "reserved") == 1
        st, _, _ = srv.req("POST", "/admin/clock/advance", {"seconds": 61})
        assert st == 200
        mid = scrape()
        assert events(mid, "timeout") - events(before, "timeout") == 1
        assert depth(mid, q, "ready") == 1 and depth(mid, q, "reserved") == 0
        st, body, _ = P.req("POST", P.path(q, "reservations"), {"n": 1})
        assert st == 200 and body["messages"] == [], body  # its one reservation was spent
        after = scrape()
        assert events(after, "dead_letter") - events(mid, "dead_letter") == 1
        assert depth(after, q, "ready") == 0 and depth(after, dlq, "ready") == 1
    finally:
        srv.req("POST", "/admin/clock/unfreeze")


@sqlite_only
def test_long_poll_waiters_are_counted():
    q = unique()
    P.post(q, "x")
    P.reserve_one(q)  # the queue exists and is empty
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.request("POST", P.path(q, "reservations"), body=b'{"n": 1, "wait": 5}',
                     headers={"Content-Type": "application/json"})
        for _ in range(200):
            if scrape().get("anvil_longpoll_waiters") >= 1:
                break
        assert scrape().get("anvil_longpoll_waiters") == 1
        P.post(q, "wake")
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
        assert scrape().get("anvil_longpoll_waiters") == 0
    finally:
        conn.close()


def test_push_deliveries_count_by_outcome():
    sink = unique("sink")
    q = unique()
    st, body, _ = P.req("PUT", P.path(q), {"queue": {"type": "unicast", "push": {
        "subscribers": [{"name": "s", "url": "http://127.0.0.1:%d/admin/sinks/%s" % (srv.port, sink)}]}}})
    assert st == 200, body
    before = scrape()
    P.post(q, "pushed")
    for _ in range(200):
        after = scrape()
        if after.get("anvil_push_deliveries_total", outcome="success") > \
                before.get("anvil_push_deliveries_total", outcome="success"):
            break
    assert after.get("anvil_push_deliveries_total", outcome="success") - \
        before.get("anvil_push_deliveries_total", outcome="success") == 1
    assert after.get("anvil_push_delivery_duration_seconds_count") - \
        before.get("anvil_push_delivery_duration_seconds_count") == 1


# ---- bounds and access ----

@sqlite_only
def test_queue_labels_stop_at_the_limit_and_the_rest_is_summed():
    with Server.start(["--metrics-queue-limit", "3"]) as s:
        p = s.project("lim")
        for i in range(8):
            p.post("q%02d" % i, *["m"] * (i + 1))
        sc = scrape(s)
        labelled = {(lab["project"], lab["queue"]) for lab in sc.labelled("anvil_queue_messages")}
        assert labelled == {("lim", "q00"), ("lim", "q01"), ("lim", "q02")}, labelled
        assert sc.get("anvil_other_queues") == 5
        assert sc.get("anvil_other_queues_messages", state="ready") == 4 + 5 + 6 + 7 + 8
        assert sc.get("anvil_queues") == 8


def test_tokens_protect_metrics_like_stats():
    with Server.start(["--token", "secret:p1"]) as s:
        st, _, _ = scrape_raw(s)
        assert st == 401
        st, _, _ = scrape_raw(s, {"Authorization": "OAuth wrong"})
        assert st == 401
        sc = scrape(s, {"Authorization": "OAuth secret"})  # any valid token
        assert sc.get("anvil_http_requests_total", route="metrics", status="401") == 2


def test_dev_mode_needs_no_token():
    st, _, _ = scrape_raw()
    assert st == 200


def test_postgres_leaves_out_what_it_does_not_count():
    sc = scrape()  # the engine's counters and depths are not there (yet)
    assert "anvil_message_events" not in sc.families
    assert "anvil_queue_messages" not in sc.families
    assert "anvil_commit_batch_records" not in sc.families
    assert "anvil_queues" in sc.families  # counted by the sweep every 5 s: not yet here
    assert "anvil_longpoll_waiters" in sc.families


test_postgres_leaves_out_what_it_does_not_count.backends = ("postgres",)
