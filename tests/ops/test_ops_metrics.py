"""The ops listener of real ``mimi serve`` processes: metrics move as events flow, liveness,
the JSON status, and the listener is off unless configured."""

from __future__ import annotations

import time

import pytest

from mimi_signaling import PolicyRejectedError
from mimi_signaling.ops.metrics import METRIC_NAMES

from support.e2ekit import ALICE, ALPHA, BOB, HUB, MESSAGE, room_with_members
from support.opskit import get, ops_cluster, scrape, value


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    cluster, urls = ops_cluster(tmp_path_factory.mktemp("ops"), [HUB, ALPHA])
    try:
        cluster.start()
        yield cluster, urls
    finally:
        cluster.stop()


def _wait(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_counters_move_as_events_flow(pair):
    cluster, urls = pair
    before = scrape(urls[HUB])
    room = room_with_members(cluster, [(ALPHA, BOB)], name=None)
    for i in range(5):
        cluster[ALPHA].call("send", room_id=room, sender=BOB, type=MESSAGE, text=f"hello {i}")
    # A refused submit: bob has no power to ban the room's creator.
    with pytest.raises(PolicyRejectedError):
        cluster[ALPHA].call("membership", room_id=room, sender=BOB, target=ALICE, participation="ban")
    hub_events = cluster[HUB].call("status")["rooms"][0]["events"]
    _wait(lambda: value(scrape(urls[HUB]), "mimi_deliveries_sent_total") - value(before, "mimi_deliveries_sent_total") >= 6,
          "the hub to deliver to alpha")
    after = scrape(urls[HUB])

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("mimi_submits_received_total") == 7  # the join, five messages, the ban
    assert moved("mimi_submits_accepted_total") == 6
    assert moved("mimi_submits_refused_total", error="policy_rejected") == 1
    assert moved("mimi_accept_latency_seconds_count") == 7
    assert moved("mimi_transactions_received_total", type="mimi.signaling.submit") == 7
    assert moved("mimi_accept_group_size_count") >= 1
    assert moved("mimi_verified_events_total") >= 7  # the peer's submits and the hub's own events
    assert moved("mimi_verify_seconds_count") >= 1
    assert value(after, "mimi_rooms", role="hub") == 1
    assert value(after, "mimi_events_stored", role="hub") == hub_events
    assert value(after, "mimi_key_fetches_total", outcome="ok") >= 1  # alpha's keys, fetched once
    assert value(after, "process_resident_memory_bytes") > 0

    alpha = scrape(urls[ALPHA])
    assert value(alpha, "mimi_rooms", role="follower") == 1
    assert value(alpha, "mimi_transactions_received_total", type="mimi.signaling.deliver") >= 6
    # The hub fans out in batch transactions; each carried deliveries counted above.
    assert value(alpha, "mimi_transactions_received_total", type="mimi.signaling.batch") >= 1
    assert value(alpha, "mimi_events_stored", role="follower") == hub_events


def test_every_documented_metric_is_exported(pair):
    _, urls = pair
    status, content_type, body = get(urls[HUB] + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    for name in METRIC_NAMES:  # Prometheus text names counters with their _total
        assert f"# TYPE {name} " in body, name
    status, content_type, body = get(urls[HUB] + "/metrics", accept="application/openmetrics-text")
    assert status == 200 and content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")
    for name in METRIC_NAMES:  # OpenMetrics names a counter family without _total
        assert f"# TYPE {name.removesuffix('_total')} " in body, name


def test_queue_depth_and_age_of_a_destination_that_is_down(pair):
    cluster, urls = pair
    room = room_with_members(cluster, [(ALPHA, BOB)], name=None)
    failures_before = value(scrape(urls[HUB]), "mimi_delivery_failures_total")
    cluster[ALPHA].stop()
    try:
        for i in range(3):
            cluster[HUB].call("send", room_id=room, sender=ALICE, type=MESSAGE, text=f"queued {i}")
        _wait(lambda: value(scrape(urls[HUB]), "mimi_fanout_queue_depth", destination=ALPHA) >= 3,
              "alpha's queue to hold the three events")
        time.sleep(1.2)
        samples = scrape(urls[HUB])
        assert value(samples, "mimi_fanout_oldest_age_seconds", destination=ALPHA) >= 1.0
        # The client retries a refused connection itself before the worker counts a failure.
        _wait(lambda: value(scrape(urls[HUB]), "mimi_delivery_failures_total") > failures_before, "a failed delivery")
        destinations = cluster[HUB].call("destinations")
        alpha = next(d for d in destinations if d["name"] == ALPHA)
        assert alpha["backlog"] >= 3 and alpha["failures"] >= 1 and alpha["last_error"]
    finally:
        cluster[ALPHA].start()
    _wait(lambda: value(scrape(urls[HUB]), "mimi_fanout_queue_depth", destination=ALPHA) == 0,
          "alpha's queue to drain after its restart")
    assert value(scrape(urls[HUB]), "mimi_fanout_oldest_age_seconds", destination=ALPHA) == 0


def test_liveness_readiness_and_status_json(pair):
    _, urls = pair
    assert get(urls[HUB] + "/health/live")[0] == 200
    status, _, body = get(urls[HUB] + "/health/ready")
    assert (status, body) == (200, "ready\n")
    status, _, body = get(urls[HUB] + "/status.json")
    assert status == 200 and f'"server_name": "{HUB}"' in body
    assert get(urls[HUB] + "/nothing-here")[0] == 404


def test_no_ops_listener_unless_configured(tmp_path):
    from mimi_signaling.provisioning import init_server
    from mimi_signaling.config import Config

    config = Config.load(init_server(HUB, tmp_path / "s", listen="127.0.0.1:0", ca_dir=tmp_path / "ca"))
    assert config.ops.listen == ""
    assert "ops" not in config.to_dict()


def test_rate_limit_refusals_are_counted(tmp_path):
    from mimi_signaling import RateLimitedError

    def slow(config):
        config.rate_limit.rate, config.rate_limit.burst = 0.2, 2  # the local API counts too

    cluster, urls = ops_cluster(tmp_path, [HUB], more=slow)
    cluster.start()
    try:
        assert value(scrape(urls[HUB]), "mimi_rate_limited_total") == 0
        refused = 0
        for _ in range(5):
            try:
                cluster[HUB].call("rooms")
            except RateLimitedError:
                refused += 1
        assert refused >= 2
        assert value(scrape(urls[HUB]), "mimi_rate_limited_total") == refused
    finally:
        cluster.stop()
