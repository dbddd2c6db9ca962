"""History visibility over the table of cases (tests/support/m0_cases.py), per user and per server,
and who may read a room."""

from __future__ import annotations

from typing import List, Tuple

import pytest

import mimi_signaling as ms
from mimi_signaling.content import M_ROOM_NAME, JoinRule, Participation, Visibility, text_content
from mimi_signaling.room.policy.m0.visibility import (
    may_read,
    serve_event,
    served_redacted,
    user_sees,
    visible_to_server,
)
from mimi_signaling.node.chain import RoomChain
from support.m0_cases import VISIBILITY, VisibilityCase, ids, run_visibility_case
from support.roomkit import RoomBuilder, RoomDriver

ANA = "@ana:hub.test"
BEN = "@ben:follower.test"
EVE = "@eve:follower.test"
CY = "@cy:other.test"

W, J, S, I = Visibility.WORLD, Visibility.JOINED, Visibility.SHARED, Visibility.INVITED


def _play(steps: List[Tuple[str, object]]) -> Tuple[RoomBuilder, int]:
    """Run the steps in a public room; return the room and the position of the "msg" step."""
    room = RoomBuilder()
    room.join_rules(JoinRule.PUBLIC)
    position = -1
    for step, arg in steps:
        if step == "vis":
            room.visibility(arg)  # type: ignore[arg-type]
        elif step == "invite":
            room.user(ANA, arg, Participation.INVITE)  # type: ignore[arg-type]
        elif step == "join":
            room.user(arg, arg, Participation.JOIN)  # type: ignore[arg-type]
        elif step == "leave":
            room.user(arg, arg, Participation.LEAVE)  # type: ignore[arg-type]
        elif step == "knock":
            room.user(arg, arg, Participation.KNOCK)  # type: ignore[arg-type]
        elif step == "ban":
            room.user(ANA, arg, Participation.BAN)  # type: ignore[arg-type]
        elif step == "rules":
            room.join_rules(arg)  # type: ignore[arg-type]
        elif step == "msg":
            position = room.state.count
            room.message(ANA)
        else:  # pragma: no cover
            raise AssertionError(step)
    assert position >= 0
    return room, position


@pytest.mark.parametrize("case", VISIBILITY, ids=ids(VISIBILITY))
def test_user_visibility(case: VisibilityCase) -> None:
    """Every case of the visibility table (tests/support/m0_cases.py; the hub serves them in
    tests/hubpolicy/test_hub_visibility.py)."""
    room = RoomBuilder()
    message = run_visibility_case(RoomDriver(room), case)
    position = room.events.index(message)
    history = room.state.history
    expected = bool(case.sees)
    assert user_sees(history, position, case.user) is expected
    server = ms.parse_user_id(case.user)[1]
    # The user's server has only this user in these cases: the server verdict is the user's.
    assert visible_to_server(history, position, server) is expected
    assert room.state.policy.visible_to_server(history, position, server) is expected
    assert served_redacted(history, position, server) is (not expected)
    if case.sees is None:  # no user there and not world-readable: it may not read at all
        assert not may_read(room.state, server)


def test_server_sees_when_any_of_its_users_does() -> None:
    room, position = _play([("vis", J), ("join", BEN), ("msg", None), ("join", EVE)])
    assert user_sees(room.state.history, position, BEN)
    assert not user_sees(room.state.history, position, EVE)
    assert visible_to_server(room.state.history, position, "follower.test")
    assert not visible_to_server(room.state.history, position, "other.test")  # no user there
    assert not visible_to_server(room.state.history, position, "nobody.test")


def test_state_events_are_always_visible() -> None:
    room = RoomBuilder()
    room.visibility(Visibility.JOINED)
    position = room.state.count
    room.send(M_ROOM_NAME, "", ANA, text_content(b"name"))
    assert visible_to_server(room.state.history, position, "stranger.test")
    assert user_sees(room.state.history, position, CY)


def test_serve_event_redacts_for_servers_that_do_not_see() -> None:
    room, position = _play([("vis", J), ("msg", None), ("join", BEN)])
    event = room.events[position]
    served = serve_event(room.state.history, position, event, "follower.test")
    assert served.is_redacted() and served.event_id == event.event_id
    assert served.content == b""
    assert serve_event(room.state.history, position, event, "hub.test") is event


def test_positions_outside_the_room() -> None:
    room, position = _play([("msg", None)])
    with pytest.raises(ms.NotFoundError):
        visible_to_server(room.state.history, room.state.count, "hub.test")
    with pytest.raises(ms.NotFoundError):
        visible_to_server(room.state.history, -1, "hub.test")


def test_without_a_history_visibility_is_not_decided() -> None:
    """A state kept without history (``track_history=False``) has none to decide with: the
    chain serves its non-state events redacted to every other server, state events whole."""
    room = RoomBuilder(track_history=False)
    room.message(ANA)
    assert room.state.history is None
    chain = RoomChain(room.state)
    served = chain.served(2, room.events[2], "hub.test")
    assert served.is_redacted() and served.event_id == room.events[2].event_id
    assert chain.served(1, room.events[1], "follower.test") is room.events[1]


# --- who may read the room (PROFILE.md section 6) -------------------------------------------


@pytest.mark.parametrize(
    "participation",
    [Participation.INVITE, Participation.JOIN, Participation.KNOCK, Participation.LEAVE, Participation.BAN],
)
def test_may_read_with_a_user_in_any_participation_state(participation: Participation) -> None:
    """PROFILE.md section 6: reads "are answered to a server that has a user with any
    participation state in the room (invite, join, knock, leave, ban)"."""
    room = RoomBuilder()
    room.join_rules(JoinRule.PUBLIC if participation != Participation.KNOCK else JoinRule.KNOCK)
    assert not may_read(room.state, "follower.test")
    if participation == Participation.LEAVE:
        room.user(BEN, BEN, Participation.JOIN)
    if participation in (Participation.INVITE, Participation.BAN):
        room.user(ANA, BEN, participation)
    else:
        room.user(BEN, BEN, participation)
    assert room.state.participation(BEN) == participation
    assert may_read(room.state, "follower.test")
    assert room.state.policy.may_read(room.state, "follower.test")
    assert not may_read(room.state, "other.test")  # another server: still no user
    assert may_read(room.state, "hub.test")  # the creator's server


def test_may_read_follows_the_current_visibility_for_servers_without_users() -> None:
    """"... and to every server when the current history visibility is world"."""
    room = RoomBuilder()
    assert not may_read(room.state, "other.test")
    room.visibility(W)
    assert may_read(room.state, "other.test")
    for visibility in (S, J, I):
        room.visibility(visibility)
        assert not may_read(room.state, "other.test")
    copy = room.state.copy()
    room.user(ANA, CY, Participation.BAN)
    assert may_read(room.state, "other.test") and not may_read(copy, "other.test")  # copies are independent
