"""check_auth_events: each way a selection can be wrong is rejected and named; plus fan-out and
the per-sender memo staying correct across state changes."""

from __future__ import annotations

import pytest

import mimi_signaling as ms
from mimi_signaling.content import (
    M_ROOM_ENCRYPTED,
    M_ROOM_JOIN_RULES,
    M_ROOM_NAME,
    M_ROOM_USER,
    JoinRule,
    Participation,
    text_content,
)
from mimi_signaling.room.policy.m0 import check_auth_events, select_auth_events

ANA = "@ana:hub.test"
BEN = "@ben:follower.test"
CY = "@cy:other.test"


@pytest.fixture
def busy(room):
    room.join_rules(JoinRule.INVITE)
    room.join(BEN)
    room.send(M_ROOM_NAME, "", ANA, text_content(b"one"))
    return room


def _ids(room):
    s = room.state
    return {
        "create": s.create_event_id,
        "ana": s.get_event_id(M_ROOM_USER, ANA),
        "ben": s.get_event_id(M_ROOM_USER, BEN),
        "rules": s.get_event_id(M_ROOM_JOIN_RULES),
        "name": s.get_event_id(M_ROOM_NAME),
    }


def test_selection_for_messages_and_user_events(busy) -> None:
    ids = _ids(busy)
    s = busy.state
    assert select_auth_events(s, M_ROOM_ENCRYPTED, None, BEN, b"x") == [ids["create"], ids["ben"]]
    # kick: target's user, no join rules
    assert select_auth_events(s, M_ROOM_USER, BEN, ANA, ms.UserContent(Participation.LEAVE)) == [ids["create"], ids["ana"], ids["ben"]]
    # invite of a stranger: no target event, join rules
    assert select_auth_events(s, M_ROOM_USER, CY, ANA, ms.UserContent(Participation.INVITE)) == [ids["create"], ids["ana"], ids["rules"]]
    # own join: own user only once, join rules
    assert select_auth_events(s, M_ROOM_USER, BEN, BEN, ms.UserContent(Participation.JOIN)) == [ids["create"], ids["ben"], ids["rules"]]
    # a stranger's knock: create only (no join rules for knock)
    assert select_auth_events(s, M_ROOM_USER, CY, CY, ms.UserContent(Participation.KNOCK)) == [ids["create"]]


@pytest.mark.parametrize(
    "auth, match",
    [
        (lambda i: [i["create"]], "missing auth event .* \\(m.room.user '@ben:follower.test'\\)"),
        (lambda i: [i["create"], i["ben"], i["name"]], "extra auth event .* \\(m.room.name ''\\): not part of the selection"),
        (lambda i: [i["create"], i["ben"], i["ben"]], "duplicate auth event"),
        (lambda i: [i["create"], i["ben"], "$" + "A" * 43], "unknown auth event \\$AAAA"),
        (lambda i: [i["ben"], i["create"]], "auth events out of order"),
        (lambda i: [], "missing auth event"),
    ],
)
def test_bad_auth_events_are_rejected_and_named(busy, auth, match) -> None:
    err = busy.reject(M_ROOM_ENCRYPTED, None, BEN, b"x", match, auth=auth(_ids(busy)))
    assert str(err).startswith("m.0 auth_events: ")


def test_non_current_auth_event(busy) -> None:
    old_name = busy.state.get_event_id(M_ROOM_NAME)
    busy.send(M_ROOM_NAME, "", ANA, text_content(b"two"))
    ids = _ids(busy)
    err = busy.reject(M_ROOM_NAME, "", ANA, text_content(b"three"), auth=[ids["create"], ids["ana"], old_name])
    assert f"non-current auth event {old_name} (m.room.name '' of position" in str(err)
    # an old m.room.user in place of the current one: non-current, and the current one missing
    ben_invite = busy.state.history.changes(M_ROOM_USER, BEN)[0][1]
    err = busy.reject(M_ROOM_ENCRYPTED, None, BEN, b"x", auth=[ids["create"], ben_invite])
    assert "non-current auth event" in str(err) and "missing auth event" in str(err)


def test_check_auth_events_directly(busy) -> None:
    event = busy.make(M_ROOM_ENCRYPTED, None, BEN, b"x")
    check_auth_events(event, busy.state)
    forged = busy.make(M_ROOM_ENCRYPTED, None, BEN, b"x", auth=[busy.state.create_event_id])
    with pytest.raises(ms.PolicyRejectedError, match="missing"):
        check_auth_events(forged, busy.state)


# --- fan-out --------------------------------------------------------------------------------


def test_fanout(busy) -> None:
    state = busy.state
    message = busy.message(BEN)
    assert state.policy.fanout(state, message) == {"hub.test", "follower.test"}
    invite = busy.user(ANA, CY, Participation.INVITE)
    assert state.policy.fanout(state, invite) == {"hub.test", "follower.test", "other.test"}
    kick = busy.user(ANA, BEN, Participation.LEAVE)
    assert state.policy.fanout(state, kick) == {"hub.test", "follower.test"}  # the target's server
    after = busy.message(ANA)
    assert state.policy.fanout(state, after) == {"hub.test"}


# --- memoised verdicts stay correct ---------------------------------------------------------


def test_memo_follows_membership_and_roles(busy) -> None:
    busy.message(BEN)
    busy.message(BEN)  # from the memo
    busy.user(BEN, BEN, Participation.LEAVE)
    busy.reject(M_ROOM_ENCRYPTED, None, BEN, b"x", "not joined \\(leave\\)")
    busy.user(ANA, BEN, Participation.INVITE)
    busy.user(BEN, BEN, Participation.JOIN)
    busy.message(BEN)
    busy.role("chat", events=[(M_ROOM_ENCRYPTED, True)])
    busy.role_map([("chat", [ANA], 1)])
    busy.reject(M_ROOM_ENCRYPTED, None, BEN, b"x", "lacks the events permission")
    busy.message(ANA)
    # A memo entry must not leak between a room and its copy.
    snapshot = busy.state.copy()
    assert snapshot.policy_cache == {}
