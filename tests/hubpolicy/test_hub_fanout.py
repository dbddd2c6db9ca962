"""Fan-out (PROFILE.md section 6): each accepted event is queued on the hub for exactly the
servers with a joined user after it, plus, for ``m.room.user``, the target's server.  The hub
never queues for itself, and a refused event queues nothing."""

from __future__ import annotations

from typing import Set

import mimi_signaling as m
from support.hubpolicykit import ANA, BAN, BOB, CAT, DAN, EVE, F1, F2, FAY, FOLLOWERS, HUB, INVITE, JOIN, KNOCK, LEAVE, HubRoom
from mimi_signaling.content import JoinRule, Visibility, user_content


def _expect(room: HubRoom, event: m.Event, servers: Set[str], before: dict) -> None:
    """``event`` was appended to the queues of ``servers`` and of no other follower."""
    for dest in FOLLOWERS:
        now = room.queued(dest)
        if dest in servers:
            assert now == before[dest] + [event.event_id], f"{event.type} {event.state_key} not queued for {dest}"
        else:
            assert now == before[dest], f"{event.type} {event.state_key} queued for {dest}"
    assert room.queued(HUB) == []
    assert HUB not in room.store.destinations_with_pending()


def _queues(room: HubRoom) -> dict:
    return {dest: room.queued(dest) for dest in FOLLOWERS}


def _step(room: HubRoom, servers: Set[str], action) -> m.Event:
    before = _queues(room)
    event = action()
    _expect(room, event, servers, before)
    # and the servers the state says: joined servers (minus the hub) + the target's server
    state = room.state
    derived = set(state.joined_servers()) - {HUB}
    if event.type == "m.room.user":
        derived.add(event.state_key.split(":", 1)[1])
    assert derived - {HUB} == servers
    return event


def test_fanout_follows_joined_servers_and_targets(room: HubRoom) -> None:
    r = room
    _step(r, set(), lambda: r.message(ANA))  # only the hub is in the room
    _step(r, set(), lambda: r.user(ANA, BOB, INVITE))  # target on the hub itself
    _step(r, {F1}, lambda: r.user(ANA, CAT, INVITE))  # target's server, not yet in the room
    _step(r, {F1}, lambda: r.user(CAT, CAT, JOIN))  # joined after the event
    _step(r, {F1}, lambda: r.message(ANA))
    _step(r, {F1}, lambda: r.name(ANA))
    _step(r, {F1, F2}, lambda: r.user(ANA, EVE, INVITE))  # f2 as target only
    _step(r, {F1}, lambda: r.message(CAT))  # an invite does not make f2 "in the room"
    _step(r, {F1, F2}, lambda: r.user(EVE, EVE, LEAVE))  # declined: f2 is the target
    _step(r, {F1, F2}, lambda: r.user(ANA, FAY, BAN))  # a never-seen user of f2 banned
    _step(r, {F1}, lambda: r.user(ANA, DAN, INVITE))
    _step(r, {F1}, lambda: r.user(DAN, DAN, JOIN))
    _step(r, {F1}, lambda: r.user(CAT, CAT, LEAVE))  # dan keeps f1 in the room
    _step(r, {F1}, lambda: r.user(ANA, DAN, LEAVE))  # kicked: f1 gets it as the target's server
    _step(r, set(), lambda: r.message(ANA))  # f1 has nobody joined any more
    _step(r, set(), lambda: r.join_rule(JoinRule.KNOCK))
    _step(r, {F2}, lambda: r.user(EVE, EVE, KNOCK))
    _step(r, {F2}, lambda: r.user(ANA, EVE, INVITE))
    _step(r, {F2}, lambda: r.user(EVE, EVE, JOIN))
    _step(r, {F2}, lambda: r.role("mod", kick=True))
    _step(r, {F2}, lambda: r.role_map([("mod", [ANA], 1)]))
    _step(r, {F2}, lambda: r.user(ANA, EVE, LEAVE))  # kicked by ana's role: f2 as the target
    _step(r, set(), lambda: r.user(ANA, BOB, LEAVE))  # hub-only target


def test_refused_events_queue_nothing(room: HubRoom) -> None:
    room.add(CAT)
    room.add(EVE)
    before = _queues(room)
    room.refuse_user(DAN, DAN, JOIN, r"m\.0 join: ")
    room.refuse_user(CAT, EVE, LEAVE, r"m\.0 kick: ")
    room.refuse(FAY, "m.room.encrypted", None, b"spam", r"m\.0 send ")
    assert _queues(room) == before


def test_queue_holds_the_events_in_room_order(room: HubRoom) -> None:
    room.add(CAT)
    sent = [room.message(ANA) for _ in range(5)] + [room.name(ANA)] + [room.message(CAT)]
    queued = room.queued(F1)
    assert queued[-len(sent):] == [e.event_id for e in sent]
    for q in room.store.pending(F1, 1000):
        assert m.Event.decode(q.event_bytes).event_id == q.event_id


# --- groups (Hub.accept_many) -----------------------------------------------------------------
#
# Each event of a group fans out by the state right after *it*, not after the whole group.
# These fail against the group-commit hub: ``_accept_group`` applies every event of the group
# to the state first and only then computes ``chain.fanout(event, ...)`` for each of them, so
# all of them use the state after the last one.


def test_group_fanout_reaches_a_server_that_leaves_later_in_the_group(room: HubRoom) -> None:
    room.join_rule(JoinRule.PUBLIC)
    room.add(CAT)  # f1's only user
    before = _queues(room)
    message = room.limited(ANA, "m.room.encrypted", None, b"said while cat is here")
    leave = room.limited(CAT, "m.room.user", CAT, user_content(LEAVE, b"bye"))
    sent, left = room.hub.accept_many([(message, HUB), (leave, F1)])
    assert isinstance(sent, m.Event) and isinstance(left, m.Event)
    assert room.queued(F1) == before[F1] + [sent.event_id, left.event_id]
    assert room.queued(F2) == before[F2]


def test_group_fanout_does_not_leak_to_a_server_that_joins_later_in_the_group(room: HubRoom) -> None:
    room.join_rule(JoinRule.PUBLIC)
    room.visibility(Visibility.JOINED)
    before = _queues(room)
    message = room.limited(ANA, "m.room.encrypted", None, b"not for f2")
    join = room.limited(EVE, "m.room.user", EVE, user_content(JOIN, b"hi"))
    sent, joined = room.hub.accept_many([(message, HUB), (join, F2)])
    assert isinstance(sent, m.Event) and isinstance(joined, m.Event)
    # f2 may only get the message redacted (eve was not joined when it was sent) ...
    assert room.hub.get_event(room.room_id, sent.event_id, for_server=F2).is_redacted()
    # ... so its whole form must not sit in f2's delivery queue.
    assert room.queued(F2) == before[F2] + [joined.event_id]
