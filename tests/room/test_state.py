"""RoomState: the state map, membership indexes, decoded content, copies and history."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

import mimi_signaling as ms
from mimi_signaling.content import (
    M_ROOM_NAME,
    M_ROOM_TOPIC,
    M_ROOM_USER,
    JoinRule,
    Participation,
    Visibility,
    text_content,
)
from mimi_signaling.room import RoomState
from support.roomkit import RoomBuilder

ANA = "@ana:hub.test"
BEN = "@ben:follower.test"
EVE = "@eve:follower.test"
CY = "@cy:other.test"


def test_membership_indexes(room) -> None:
    assert room.state.joined_users() == {ANA}
    assert room.state.joined_servers() == {"hub.test"}
    room.join(BEN)
    room.join(EVE)
    room.user(ANA, CY, Participation.INVITE)
    assert room.state.joined_users() == {ANA, BEN, EVE}
    assert room.state.joined_servers() == {"hub.test", "follower.test"}
    assert room.state.users_with(Participation.INVITE) == {CY}
    room.user(BEN, BEN, Participation.LEAVE)
    assert room.state.joined_servers() == {"hub.test", "follower.test"}  # EVE is still there
    room.user(ANA, EVE, Participation.BAN)
    assert room.state.joined_servers() == {"hub.test"}
    assert room.state.participation(EVE) == Participation.BAN
    assert room.state.participation("@nobody:x.test") is None
    assert room.state.users() == {
        ANA: Participation.JOIN,
        BEN: Participation.LEAVE,
        EVE: Participation.BAN,
        CY: Participation.INVITE,
    }


def test_settings_and_defaults(room) -> None:
    assert room.state.join_rule() == JoinRule.INVITE
    assert room.state.history_visibility() == Visibility.SHARED
    assert room.state.name() is None and room.state.topic() is None and room.state.role_map() is None
    room.join_rules(JoinRule.KNOCK)
    room.visibility(Visibility.WORLD)
    room.send(M_ROOM_NAME, "", ANA, text_content(b"Room"))
    room.send(M_ROOM_TOPIC, "", ANA, text_content(b""))  # empty = none
    assert room.state.join_rule() == JoinRule.KNOCK
    assert room.state.history_visibility() == Visibility.WORLD
    assert room.state.name() == b"Room"
    assert room.state.topic() is None


def test_content_is_decoded_once(room) -> None:
    room.send(M_ROOM_NAME, "", ANA, text_content(b"Room"))
    first = room.state.content(M_ROOM_NAME, "")
    assert first is room.state.content(M_ROOM_NAME, "")
    assert isinstance(first, ms.TextContent)


def test_redacted_state_event_counts_with_redacted_content(room) -> None:
    event = room.send(M_ROOM_NAME, "", ANA, text_content(b"Bad name"))
    assert room.state.name() == b"Bad name"
    fresh = RoomState.from_create(room.events[0])
    for e in room.events[1:]:
        fresh.apply(e.redacted() if e.event_id == event.event_id else e)
    assert fresh.name() is None
    assert fresh.get_event_id(M_ROOM_NAME) == event.event_id


def test_apply_advances_count_and_last_id(room) -> None:
    before = room.state.count
    message = room.message(ANA)
    assert room.state.count == before + 1
    assert room.state.last_event_id == message.event_id
    assert room.state.get(M_ROOM_USER, ANA).event_id == room.events[1].event_id


def test_check_link(room) -> None:
    good = room.make("m.room.encrypted", None, ANA, b"x")
    room.state.check_link(good)
    stale = room.make("m.room.encrypted", None, ANA, b"x", prev=room.events[0].event_id)
    with pytest.raises(ms.MalformedError, match="prev_event"):
        room.state.check_link(stale)


def test_apply_of_undecodable_state_changes_nothing(room) -> None:
    bad = room.make(M_ROOM_USER, BEN, ANA, b"\x09\x00", auth=[])
    ids, count = room.state.state_ids(), room.state.count
    with pytest.raises(ms.MalformedError):
        room.state.apply(bad)
    assert room.state.state_ids() == ids and room.state.count == count


def test_copy_is_independent(room) -> None:
    room.join(BEN)
    snapshot = room.state.copy()
    room.user(BEN, BEN, Participation.LEAVE)
    room.send(M_ROOM_NAME, "", ANA, text_content(b"later"))
    assert snapshot.is_joined(BEN) and not room.state.is_joined(BEN)
    assert snapshot.name() is None and room.state.name() == b"later"
    assert snapshot.count == room.state.count - 2
    assert snapshot.history.count == snapshot.count
    # The snapshot still checks events against its own (older) state.
    late = room.make("m.room.encrypted", None, BEN, b"x", auth=snapshot.policy.select_auth_events(snapshot, "m.room.encrypted", None, BEN, b""))
    snapshot.policy.check(snapshot, late)
    with pytest.raises(ms.PolicyRejectedError):
        room.state.policy.check(room.state, late)


def test_state_at_every_position_matches_snapshots() -> None:
    room = RoomBuilder()
    snapshots: Dict[int, Dict[Any, str]] = {room.state.count: room.state.state_ids()}
    room.join(BEN)
    snapshots[room.state.count] = room.state.state_ids()
    for _ in range(5):
        room.message(BEN)
        snapshots[room.state.count] = room.state.state_ids()
    room.send(M_ROOM_NAME, "", ANA, text_content(b"one"))
    snapshots[room.state.count] = room.state.state_ids()
    room.message(ANA)
    room.send(M_ROOM_NAME, "", ANA, text_content(b"two"))
    room.user(BEN, BEN, Participation.LEAVE)
    snapshots[room.state.count] = room.state.state_ids()
    for position, expected in snapshots.items():
        assert room.state.state_at(position) == expected
    assert room.state.state_at(0) == {}
    assert room.state.state_at(1) == {("m.room.create", ""): room.events[0].event_id}
    with pytest.raises(ms.NotFoundError):
        room.state.state_at(room.state.count + 1)


def test_history_memory_follows_state_changes_not_messages() -> None:
    room = RoomBuilder()
    room.join(BEN)
    history = room.state.history
    changes = sum(len(history.changes(t, k)) for t, k in history.state_keys())
    for _ in range(200):
        room.message(BEN)
    assert sum(len(history.changes(t, k)) for t, k in history.state_keys()) == changes
    assert history.count == room.state.count
    assert history.membership_changes(BEN) == [(2, Participation.INVITE), (3, Participation.JOIN)]


def test_from_state_events_rebuilds_the_same_state(golden_events: List[ms.Event]) -> None:
    full = RoomState.from_create(golden_events[0])
    for event in golden_events[1:]:
        full.apply(event)
    rebuilt = RoomState.from_state_events(
        golden_events[0], full.events(), count=full.count, last_event_id=full.last_event_id
    )
    assert rebuilt.state_ids() == full.state_ids()
    assert rebuilt.users() == full.users()
    assert rebuilt.count == 10 and rebuilt.history is None
    assert rebuilt.policy.select_auth_events(rebuilt, "m.room.encrypted", None, BEN, b"") == golden_events[9].auth_events
