"""One verdict on every server (PROFILE.md section 2, ZIP 215), with a hub and two followers as
real ``mimi serve`` processes over mutual TLS: limited events whose origin signature has a
small-order component in R are valid, so the hub accepts every one of 50 (not one time in
eight, as the cofactorless batch equation did) and both followers accept the fanned-out
events, the room does not split; the same signatures with S + L are refused everywhere, at
the hub's submit and at each follower's deliver, with ``bad_signature``, storing nothing."""

from __future__ import annotations

from typing import Iterator, List

import pytest

from support import ed25519_edge as edge
import mimi_signaling as ms
from mimi_signaling.server.federation import DELIVER, SUBMIT
from mimi_signaling.testing.cluster import Cluster

from support.e2ekit import (
    ALPHA,
    BETA,
    BOB,
    CAROL,
    HUB,
    MESSAGE,
    WireClient,
    counts,
    envelope,
    event_ids,
    key_of,
    limited_message,
    room_with_members,
    stored_rows,
    wait_for,
    wait_same_history,
)

TORSIONED = 50

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]


@pytest.fixture(scope="module")
def room(trio: Cluster) -> str:
    room_id = room_with_members(trio, [(ALPHA, BOB), (BETA, CAROL)], name="zip215")
    wait_same_history(trio, room_id, [ALPHA, BETA])
    return room_id


def test_torsion_in_r_is_accepted_by_the_hub_and_both_followers(trio: Cluster, room: str, tmp_path) -> None:
    as_alpha = WireClient(trio, ALPHA, tmp_path)
    seed = key_of(trio, ALPHA).seed
    accepted: List[str] = []
    for i in range(TORSIONED):
        limited = limited_message(trio, room, BOB, f"torsion {i}")
        payload = edge.limited_with(limited, seed, torsion=1 + i % 7)
        # What libsodium and the cofactorless equation refuse, and ZIP 215 accepts.
        signature = ms.LimitedEvent.decode(payload).origin_signature[0].signature
        assert signature != limited.origin_signature[0].signature
        event = ms.Event.decode(as_alpha.request(HUB, SUBMIT, payload))
        assert event.origin_signature[0].signature == signature, f"event {i}: the hub changed the signature"
        accepted.append(event.event_id)
    # Fanned out to both followers, each of which checks every event again.
    want = wait_same_history(trio, room, [ALPHA, BETA], timeout=90)
    assert want[-TORSIONED:] == accepted
    for name in (HUB, ALPHA, BETA):
        rows = {event_id: blob for _, event_id, blob in stored_rows(trio[name].config, room)}
        for event_id in accepted:
            assert ms.Event.decode(rows[event_id]).event_id == event_id
    # And the room goes on: the followers did not stop following it.
    trio[BETA].call("send", room_id=room, sender=CAROL, type=MESSAGE, text="after the torsion")
    wait_same_history(trio, room, [ALPHA, BETA])


@pytest.fixture
def unchanged(trio: Cluster, room: str) -> Iterator[None]:
    wait_for(lambda: all(not counts(trio[n])["queues"] for n in (HUB, ALPHA, BETA)), what="empty queues")
    before = {name: counts(trio[name]) for name in (HUB, ALPHA, BETA)}
    rows_before = {name: len(stored_rows(trio[name].config, room)) for name in (HUB, ALPHA, BETA)}
    yield
    assert {name: counts(trio[name]) for name in (HUB, ALPHA, BETA)} == before
    assert {name: len(stored_rows(trio[name].config, room)) for name in (HUB, ALPHA, BETA)} == rows_before


@pytest.mark.usefixtures("unchanged")
def test_s_plus_l_is_refused_everywhere(trio: Cluster, room: str, tmp_path) -> None:
    as_alpha = WireClient(trio, ALPHA, tmp_path)
    as_hub = WireClient(trio, HUB, tmp_path)
    seed = key_of(trio, ALPHA).seed
    hub_key = key_of(trio, HUB)
    ids = event_ids(trio[HUB], room)
    ring = as_hub.key_ring((HUB, ALPHA))
    # bob's last message carries the auth events a message of bob needs now.
    bobs = [e for e in trio[HUB].call("history", room_id=room, limit=1000) if e["sender"] == BOB and e["type"] == MESSAGE]
    model = ms.Event.decode(as_alpha.request(HUB, "mimi.signaling.get_event",
                                             ms.wire.encode_get_event_request(room, bobs[-1]["event_id"])))
    for torsion in (0, 3):
        limited = limited_message(trio, room, BOB, f"s + l, torsion {torsion}")
        payload = edge.limited_with(limited, seed, torsion=torsion, plus_l=True)
        got = as_alpha.refused(HUB, envelope(SUBMIT, payload))
        assert (got.code, got.status) == (ms.BadSignatureError.code, 400), got
        # The same origin signature in an event the hub signed, delivered to each follower as
        # if the hub had sequenced it: refused there too.
        event = ms.LimitedEvent.decode(payload).to_event(model.auth_events, ids[-1], hub_key)
        with pytest.raises(ms.BadSignatureError, match="^origin_signature"):
            event.verify(ring)
        # Without the + L, the same event is valid: only S + L makes it fail.
        ms.Event.decode(
            edge.with_origin_signature(event.encode(), edge.sign(seed, edge.origin_message(limited), torsion), ms.Event.decode)
        ).verify(ring)
        for follower in (ALPHA, BETA):
            got = as_hub.refused(follower, envelope(DELIVER, event.encode()))
            assert (got.code, got.status) == (ms.BadSignatureError.code, 400), f"{follower}: {got}"
    assert event_ids(trio[HUB], room) == ids
