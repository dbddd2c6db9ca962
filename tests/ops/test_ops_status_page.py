"""The status page of a running server, loaded in headless Chromium: rooms, destinations
(backlog, last success, backoff, errors) and keys, read from the rendered text; a screenshot
is kept as an artifact."""

from __future__ import annotations

import time

from support.browser import dump_dom, rows_of, screenshot, visible_text
from support.e2ekit import ALICE, ALPHA, BOB, HUB, MESSAGE, room_with_members
from support.opskit import get, ops_cluster


def test_status_page_in_a_browser(tmp_path):
    cluster, urls = ops_cluster(tmp_path, [HUB, ALPHA])
    cluster.start()
    try:
        room = room_with_members(cluster, [(ALPHA, BOB)], name="ops")
        cluster[HUB].call("send", room_id=room, sender=ALICE, type=MESSAGE, text="delivered")
        deadline = time.monotonic() + 30
        while cluster[HUB].call("status")["queues"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        cluster[ALPHA].stop()
        for i in range(3):
            cluster[HUB].call("send", room_id=room, sender=ALICE, type=MESSAGE, text=f"queued {i}")
        deadline = time.monotonic() + 30
        while not any(d["name"] == ALPHA and d["failures"] >= 2 for d in cluster[HUB].call("destinations")):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        hub_room = next(r for r in cluster[HUB].call("rooms") if r["room_id"] == room)
        latest = cluster[HUB].call("history", room_id=room, limit=1)[-1]["event_id"]
        key_id = cluster[HUB].config.load_signing_key().key_id

        status, content_type, _ = get(urls[HUB] + "/status")
        assert status == 200 and content_type.startswith("text/html")
        dom = dump_dom(urls[HUB] + "/status")
        text = visible_text(dom)
        assert f"MIMI server {HUB}" in text
        rooms = rows_of(dom, "rooms")
        assert rooms[0] == "room role events latest event"
        assert f"{room} hub {hub_room['events']} {latest}" in rooms
        destinations = rows_of(dom, "destinations")
        alpha = next(r for r in destinations if r.startswith(ALPHA))
        # backlog 3, its age, a last success (the delivered message), backing off, the error
        assert alpha.split()[1] == "3"
        assert " ago " in alpha and "never" not in alpha
        assert "backing off, retry in" in alpha or "retrying" in alpha
        assert f"TransportError: cannot connect to {ALPHA}" in alpha
        keys = rows_of(dom, "keys")
        assert f"{HUB} {key_id} current" in keys
        assert any(r.startswith(f"{ALPHA} ed25519:") for r in keys)  # the peer's key, fetched
        screenshot(urls[HUB] + "/status", "status-page.png", width=1100, height=520)
    finally:
        cluster.stop()
