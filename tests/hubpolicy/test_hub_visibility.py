"""History visibility as the hub serves it (``get_event`` / ``backfill`` with ``for_server``):
a server gets a non-state event unredacted exactly when one of its users may see it under the
visibility in force when it was sent; otherwise ``event.redacted()``.  State events are always
served whole.

The table is the visibility cases of tests/support/m0_cases.py (written out by hand from the policy
draft, "Event/History Visibility") that the hub serves; tests/room/test_visibility.py checks
every case against the room layer."""

from __future__ import annotations

from typing import List

import pytest

import mimi_signaling as m
from support.hubpolicykit import ANA, BAN, CAT, DAN, EVE, F1, F2, HUB, INVITE, JOIN, LEAVE, HubRoom, server_of
from support.m0_cases import VISIBILITY_HUB, VisibilityCase, ids, run_visibility_case
from mimi_signaling.content import Visibility


def _served(room: HubRoom, event: m.Event, server: str, *, visible: bool) -> None:
    """get_event and backfill give ``server`` the event whole or redacted, as expected."""
    expected = event if visible else event.redacted()
    got = room.hub.get_event(room.room_id, event.event_id, for_server=server)
    assert got.encode() == expected.encode()
    assert got.event_id == event.event_id
    assert got.is_redacted() == (not visible and not event.is_state)
    got.verify(room.ring)  # a redacted event keeps its ID and signatures
    last = room.state.last_event_id
    window = room.hub.backfill(room.room_id, last, 1000, for_server=server)
    (from_backfill,) = [e for e in window if e.event_id == event.event_id]
    assert from_backfill.encode() == expected.encode()


def _check_backfill_state_whole(room: HubRoom, server: str) -> None:
    """Every state event in a backfill is served whole, and backfill is newest first."""
    last = room.state.last_event_id
    window = room.hub.backfill(room.room_id, last, 1000, for_server=server)
    assert [e.event_id for e in window] == [e.event_id for e in reversed(room.events[:-1])]
    for event in window:
        if event.is_state:
            assert event.encode() == room.hub.get_event(room.room_id, event.event_id).encode()


@pytest.mark.parametrize("case", VISIBILITY_HUB, ids=ids(VISIBILITY_HUB))
def test_visibility_table(room: HubRoom, case: VisibilityCase) -> None:
    name = room.name(ANA)  # a state event sent while f1 has no joined user
    message = run_visibility_case(room, case)
    room.message(ANA)  # a trailer, so that backfill(before=last) covers the message
    server = server_of(case.user)
    assert server == F1
    readers = []
    if case.sees is None:
        _refused_to_read(room, message, F1)
    else:
        _served(room, message, F1, visible=case.sees)
        readers.append(F1)
    # f2 never had a user in the room: it may read only world-readable rooms (PROFILE.md
    # section 6, "Who may read a room"), and then sees everything.
    if room.state.history_visibility() == Visibility.WORLD:
        _served(room, message, F2, visible=True)
        readers.append(F2)
    else:
        _refused_to_read(room, message, F2)
    _served(room, message, HUB, visible=True)
    assert room.hub.get_event(room.room_id, message.event_id).encode() == message.encode()
    for reader in readers:
        _served(room, name, reader, visible=True)
        _check_backfill_state_whole(room, reader)


def _refused_to_read(room: HubRoom, event: m.Event, server: str) -> None:
    """PROFILE.md section 6: "another server gets policy_rejected" -- for every read."""
    reads = {
        "get_event": lambda: room.hub.get_event(room.room_id, event.event_id, for_server=server),
        "backfill": lambda: room.hub.backfill(room.room_id, room.state.last_event_id, 1000, for_server=server),
        "get_state": lambda: room.hub.get_state(room.room_id, "m.room.create", "", for_server=server),
        "snapshot": lambda: room.hub.snapshot(room.room_id, for_server=server),
    }
    for read in reads.values():
        with pytest.raises(m.PolicyRejectedError, match=f"{server} may not read"):
            read()


def test_the_default_visibility_is_shared(room: HubRoom) -> None:
    early = room.message(ANA)
    room.user(ANA, CAT, INVITE)
    invited = room.message(ANA)
    room.message(ANA)
    _served(room, early, F1, visible=False)
    _served(room, invited, F1, visible=False)
    room.user(CAT, CAT, JOIN)  # a later join reveals what was sent before it
    room.message(ANA)
    _served(room, early, F1, visible=True)
    _served(room, invited, F1, visible=True)


def test_a_server_sees_what_any_of_its_users_sees(room: HubRoom) -> None:
    room.visibility(Visibility.JOINED)
    room.add(DAN)
    room.user(ANA, CAT, INVITE)  # cat: invited only; dan (also f1): joined
    both = room.message(ANA)
    room.user(DAN, DAN, LEAVE)
    cat_only = room.message(ANA)
    room.message(ANA)
    _served(room, both, F1, visible=True)
    _served(room, cat_only, F1, visible=False)
    room.add(EVE)
    room.user(EVE, EVE, LEAVE)
    _served(room, both, F2, visible=False)


def test_visibility_changes_are_not_retroactive(room: HubRoom) -> None:
    room.user(ANA, DAN, BAN)  # f1 may read the room (a banned user), and sees no message
    room.visibility(Visibility.JOINED)
    under_joined = room.message(ANA)
    room.visibility(Visibility.WORLD)
    under_world = room.message(ANA)
    room.visibility(Visibility.SHARED)
    under_shared = room.message(ANA)
    room.message(ANA)
    _served(room, under_joined, F1, visible=False)
    _served(room, under_world, F1, visible=True)
    _served(room, under_shared, F1, visible=False)
    room.add(CAT)
    room.message(ANA)
    _served(room, under_joined, F1, visible=False)  # a later join does not count under "joined"
    _served(room, under_world, F1, visible=True)
    _served(room, under_shared, F1, visible=True)


def test_membership_events_are_state_and_always_whole(room: HubRoom) -> None:
    room.visibility(Visibility.JOINED)
    events: List[m.Event] = [room.user(ANA, CAT, INVITE), room.user(CAT, CAT, LEAVE), room.user(ANA, EVE, BAN)]
    room.message(ANA)
    for event in events:
        for server in (F1, F2):
            _served(room, event, server, visible=True)
