"""A hostile hub delivering to a follower: a client holding the hub's certificate (issued from
the cluster's CA) and the hub's own signing key (read from the cluster directory), so every
delivery passes TLS and carries a genuine hub signature.  The follower must still refuse
forks, forged auth events, events the policy forbids and events it invents for other
servers' users, and store nothing."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Callable, List, Tuple

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster
from mimi_signaling.node.chain import RoomChain
from mimi_signaling.server.federation import DELIVER

from support.e2ekit import (
    ALICE,
    ALPHA,
    BETA,
    BOB,
    HUB,
    MESSAGE,
    envelope,
    replace_content,
    stored_rows,
    wait_same_history,
)
from support.relkit import HostileClient, nothing_stored, record

pytestmark = pytest.mark.timeout(120)


def follower_chain(cluster: Cluster, room: str) -> List[ms.Event]:
    return ms.decode_events([raw for _, _, raw in stored_rows(cluster[ALPHA].config, room)])


def unknown_event_id(seed: str) -> str:
    """A well-formed event ID that names no event."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "$" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def hub_message(room: str, sender: str, text: str, auth: List[str], prev: str, *, hub_key: ms.SigningKey,
                origin_key: ms.SigningKey) -> ms.Event:
    limited = ms.LimitedEvent.create(room, MESSAGE, None, sender, text.encode(), origin_key)
    return limited.to_event(auth, prev, hub_key)


Case = Tuple[str, Callable[[], ms.Event], type, int]


def test_hostile_hub_deliveries_are_refused(hostile: Cluster, hostile_room: str, tmp_path: Path) -> None:
    room = hostile_room
    fake_hub = HostileClient(hostile, HUB, tmp_path)
    hub_key = hostile[HUB].config.load_signing_key()
    alpha_key_id = hostile[ALPHA].config.load_signing_key().key_id
    wait_same_history(hostile, room, [ALPHA, BETA])
    chain = follower_chain(hostile, room)
    last, create = chain[-1], chain[0]
    # The auth events a message of alice needs now: those of her last message (nothing about
    # her membership changed since).
    alices = [e for e in chain if e.sender == ALICE and e.type == MESSAGE]
    auth = list(alices[-1].auth_events)
    alice_join = auth[1]
    bobs_join = next(e for e in reversed(chain) if e.type == "m.room.user" and e.state_key == BOB)

    def alice(text: str, auth_events: List[str], prev: str = last.event_id) -> ms.Event:
        return hub_message(room, ALICE, text, auth_events, prev, hub_key=hub_key, origin_key=hub_key)

    def tampered() -> ms.Event:
        genuine = alice("the hub's own words", auth)
        return ms.Event.decode(replace_content(genuine.encode(), b"the hub's own words", b"words put in later"))

    # The control: built like every case below, but right; it must pass every check the
    # follower runs, which the hostile hub's deliveries then each break in one way.
    control = alice("control", auth)
    ring = ms.KeyRing()
    for name in (HUB, ALPHA):
        ring = ring.with_server_keys(fake_hub.keys_of(name))
    control.verify(ring)
    replica = RoomChain.open(create)
    for event in chain[1:]:
        replica.apply_trusted(event)
    replica.check(control)

    cases: List[Case] = [
        ("a fork: built on an older event than the latest", lambda: alice("fork", auth, chain[-3].event_id),
         ms.MalformedError, 400),
        ("a fork: built on an event nobody has", lambda: alice("orphan", auth, unknown_event_id("orphan")),
         ms.NotFoundError, 404),
        ("auth events without the sender's membership", lambda: alice("no join", [create.event_id]),
         ms.PolicyRejectedError, 403),
        ("auth events with an extra event", lambda: alice("extra", auth + [bobs_join.event_id]),
         ms.PolicyRejectedError, 403),
        ("auth events listing one event twice", lambda: alice("twice", auth + [alice_join]),
         ms.PolicyRejectedError, 403),
        ("auth events out of order", lambda: alice("reordered", list(reversed(auth))),
         ms.PolicyRejectedError, 403),
        ("an auth event nobody has", lambda: alice("unknown auth", [create.event_id, unknown_event_id("auth")]),
         ms.PolicyRejectedError, 403),
        ("a message from a user who never joined", lambda: hub_message(
            room, "@eve:hub.test", "let me in", [create.event_id], last.event_id, hub_key=hub_key, origin_key=hub_key),
         ms.PolicyRejectedError, 403),
        ("bob's message invented by the hub (its key under alpha's key ID)", lambda: hub_message(
            room, BOB, "bob never said this", [create.event_id, bobs_join.event_id], last.event_id, hub_key=hub_key,
            origin_key=ms.SigningKey(hub_key.seed, alpha_key_id)),
         ms.BadSignatureError, 400),
        ("content changed after hashing", tampered, ms.BadContentHashError, 400),
    ]
    with nothing_stored(hostile, [HUB, ALPHA, BETA], room):
        for what, build, error, status in cases:
            got = fake_hub.refused(ALPHA, envelope(DELIVER, build().encode()))
            assert (got.code, got.status) == (error.code, status), f"{what}: got {got}, want {error.__name__}"
        # Replaying an event the follower already holds is harmless: accepted, nothing stored.
        for event in chain[-3:]:
            assert fake_hub.request(ALPHA, DELIVER, event.encode()) == b""
    record("hostile hub: deliveries to a follower", attempts=len(cases) + 3, refused=len(cases),
           replays_ignored=3, stored=0, codes=sorted({c[2].__name__ for c in cases}))

    # The follower still follows the real hub.
    hostile[ALPHA].call("send", room_id=room, sender=BOB, type=MESSAGE, text="after the hostile hub")
    wait_same_history(hostile, room, [ALPHA, BETA])
