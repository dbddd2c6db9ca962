"""What a hub process serves to other servers (get_event, get_state, backfill, snapshot,
keys) is fully-formed and verifies against the keys it publishes: these are the answers a
joining or catching-up follower builds its copy of the room from."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster

from support.e2ekit import ALICE, ALPHA, BOB, HUB, MESSAGE, WireClient, event_ids


@pytest.mark.timeout(60)
def test_hub_answers_verify(make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    c = make_cluster([HUB, ALPHA])
    room = c[HUB].call("create_room", creator=ALICE, join_rule="invite", name="reads")["room_id"]
    c[HUB].call("membership", room_id=room, sender=ALICE, target=BOB, participation="invite")
    for i in range(5):
        c[HUB].call("send", room_id=room, sender=ALICE, type=MESSAGE, text=f"message {i}")
    ids = event_ids(c[HUB], room)

    alpha = WireClient(c, ALPHA, tmp_path)  # bob's server: invited, so it may take a snapshot
    ring = alpha.key_ring([HUB])

    # get_event: every event, by ID, verifies and has that ID.
    for event_id in ids:
        event = ms.Event.decode(alpha.request(HUB, "mimi.signaling.get_event", ms.wire.encode_get_event_request(room, event_id)))
        assert event.event_id == event_id
        event.verify(ring)

    # get_state: the current state events, hub-signed.
    for type_, state_key in (("m.room.create", ""), ("m.room.user", ALICE), ("m.room.user", BOB),
                             ("m.room.join_rules", ""), ("m.room.name", "")):
        body = alpha.request(HUB, "mimi.signaling.get_state", ms.wire.encode_get_state_request(room, type_, state_key))
        event = ms.Event.decode(body)
        assert (event.type, event.state_key) == (type_, state_key)
        assert event.event_id in ids
        event.verify(ring)

    # backfill: newest first, linked, all verifying.
    events = ms.wire.decode_backfill_response(
        alpha.request(HUB, "mimi.signaling.backfill", ms.wire.encode_backfill_request(room, ids[-1], 1000))
    )
    assert [e.event_id for e in events] == list(reversed(ids[:-1]))
    for event in events:
        event.verify(ring)

    # snapshot: state, auth chain and the latest event ID.
    state, auth_chain, latest = ms.wire.decode_snapshot_response(
        alpha.request(HUB, "mimi.signaling.snapshot", ms.wire.encode_snapshot_request(room))
    )
    assert latest == ids[-1]
    assert {e.event_id for e in state} <= set(ids) and {e.event_id for e in auth_chain} <= set(ids)
    for event in state + auth_chain:
        event.verify(ring)
