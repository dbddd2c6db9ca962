"""What the hub serves from its in-memory room state must be the events it signed: the current
state event (``get_state``), the state of a ``snapshot`` and the answer to a byte-identical
resubmit of the current state event all have to verify, hub signature included, and be
byte-identical to what the store holds.

These fail against the group-commit hub (``Hub.accept_many``): ``_accept_group`` applies the
*unsigned* event (``LimitedEvent.to_unsigned_event``) to ``chain.state`` and signs the group
afterwards (``sign_events``) without putting the signed events back into the state, so the
state map keeps events with an empty ``hub_signature`` until the hub restarts."""

from __future__ import annotations

import mimi_signaling as m
from support.hubpolicykit import ANA, CAT, HUB, INVITE, HubRoom
from mimi_signaling.content import M_ROOM_NAME, M_ROOM_USER, text_content
from mimi_signaling.node.hub import Hub


def _stored(room: HubRoom, event_id: str) -> bytes:
    raw = room.store.get_event(room.room_id, event_id)
    assert raw is not None
    return bytes(raw)


def _check_served(room: HubRoom, served: m.Event) -> None:
    served.verify(room.ring)  # raises BadSignatureError when the hub signature is missing
    assert served.encode() == _stored(room, served.event_id)


def test_get_state_serves_the_signed_event(room: HubRoom) -> None:
    name = room.name(ANA, b"lobby")
    invite = room.user(ANA, CAT, INVITE)
    _check_served(room, room.hub.get_state(room.room_id, M_ROOM_NAME, ""))
    _check_served(room, room.hub.get_state(room.room_id, M_ROOM_USER, CAT))
    assert room.hub.get_state(room.room_id, M_ROOM_NAME, "").encode() == name.encode()
    assert room.hub.get_state(room.room_id, M_ROOM_USER, CAT).encode() == invite.encode()


def test_snapshot_serves_signed_events(room: HubRoom) -> None:
    room.name(ANA, b"lobby")
    room.user(ANA, CAT, INVITE)
    state, auth_chain, latest = room.hub.snapshot(room.room_id)
    assert latest == room.state.last_event_id
    for event in state + auth_chain:
        _check_served(room, event)


def test_resubmitting_the_current_state_event_returns_the_signed_event(room: HubRoom) -> None:
    first = room.name(ANA, b"lobby")
    count = room.store.count(room.room_id)
    again = room.hub.accept(room.limited(ANA, M_ROOM_NAME, "", text_content(b"lobby")), peer=HUB)
    assert room.store.count(room.room_id) == count  # nothing stored twice
    assert again.event_id == first.event_id
    _check_served(room, again)


def test_a_restarted_hub_serves_signed_state(room: HubRoom) -> None:
    """The same checks after the hub rebuilt the room from its store (they pass there)."""
    room.name(ANA, b"lobby")
    room.user(ANA, CAT, INVITE)
    room.net.hub = Hub(HUB, room.net.keystores[HUB], room.store)
    _check_served(room, room.hub.get_state(room.room_id, M_ROOM_NAME, ""))
    state, auth_chain, _ = room.hub.snapshot(room.room_id)
    for event in state + auth_chain:
        _check_served(room, event)
