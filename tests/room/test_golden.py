"""The golden room of mimi_events.json: auth selection and the policy verdict on every event."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

import mimi_signaling as ms
from mimi_signaling.content import Participation, decode_content
from mimi_signaling.room import RoomState, check_shape
from mimi_signaling.room.policy.m0 import M0_POLICY


def _walk(events: List[ms.Event]):
    """Yield (state before, event) for events 1.., applying each after the yield."""
    state = RoomState.from_create(events[0])
    for event in events[1:]:
        yield state, event
        state.apply(event)


def test_golden_events_decode_to_their_ids(golden: Dict[str, Any], golden_events: List[ms.Event]) -> None:
    assert [e.event_id for e in golden_events] == [entry["event_id"] for entry in golden["events"]]


def test_create_opens_the_room(golden_events: List[ms.Event]) -> None:
    state = RoomState.from_create(golden_events[0])
    assert state.policy is M0_POLICY
    assert state.creator == "@ana:hub.test"
    assert state.hub_server == "hub.test"
    assert state.count == 1
    assert state.last_event_id == golden_events[0].event_id
    assert M0_POLICY.select_auth_events(state, "m.room.create", "", "@ana:hub.test", b"") == []


@pytest.mark.parametrize("index", range(1, 10))
def test_auth_selection_matches_golden(index: int, golden: Dict[str, Any], golden_events: List[ms.Event]) -> None:
    for state, event in _walk(golden_events):
        if state.count != index:
            continue
        selected = state.policy.select_auth_events(
            state, event.type, event.state_key, event.sender, decode_content(event.type, event.content)
        )
        assert selected == golden["events"][index]["auth_events"] == event.auth_events
        return
    raise AssertionError("index not reached")


def test_check_accepts_every_golden_event_in_order(golden_events: List[ms.Event]) -> None:
    state = RoomState.from_create(golden_events[0])
    for event in golden_events[1:]:
        state.check_link(event)
        content = check_shape(event, state)
        state.policy.check(state, event, content=content)
        state.apply(event, content)
    assert state.count == 10
    assert state.last_event_id == golden_events[-1].event_id
    assert state.joined_users() == {"@ana:hub.test", "@ben:follower.test"}
    assert state.joined_servers() == {"hub.test", "follower.test"}
    assert state.participation("@ben:follower.test") == Participation.JOIN
    assert state.name() == b"Golden room"
    assert state.policy.fanout(state, golden_events[9]) == {"hub.test", "follower.test"}


def test_check_accepts_golden_events_without_decoded_content(golden_events: List[ms.Event]) -> None:
    for state, event in _walk(golden_events):
        state.policy.check(state, event)


def test_golden_room_rejects_a_replayed_event(golden_events: List[ms.Event]) -> None:
    state = RoomState.from_create(golden_events[0])
    for event in golden_events[1:]:
        state.apply(event)
    # The invitee's join again: ben's own invite is no longer current (his join replaced it).
    with pytest.raises(ms.PolicyRejectedError, match="non-current auth event"):
        state.policy.check(state, golden_events[4])


def test_redacted_golden_events_still_pass(golden: Dict[str, Any]) -> None:
    events = [ms.Event.decode(bytes.fromhex(entry["redacted_event"])) for entry in golden["events"]]
    state = RoomState.from_create(events[0])
    for event in events[1:]:
        content = check_shape(event, state)
        state.policy.check(state, event, content=content)
        state.apply(event, content)
    assert state.name() is None  # a redacted m.room.name is no name
    assert state.joined_users() == {"@ana:hub.test", "@ben:follower.test"}
