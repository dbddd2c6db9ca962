"""A follower that joined from the hub's snapshot (history ``recent``) serves ``get_event`` by
the hub's rules on the history it holds (PROFILE.md section 6: "Events served to a server that
does not see them are served redacted, by the hub and by followers alike (a follower applies
the same rules to the history it holds)"): for every event since its snapshot it gives each
server exactly the hub's answer, also after a restart; before its snapshot it cannot know who
saw an event, so it serves such events redacted (never more than the rules allow)."""

from __future__ import annotations

from typing import List

import pytest

import mimi_signaling as m
from mimi_signaling.content import JoinRule, Participation, Visibility
from mimi_signaling.node.partial import JOIN_POSITION

from support.nodekit import Network

HUB, F1, F2, STRANGER = "hub.test", "f1.test", "f2.test", "stranger.test"
ANA, BOB, CAT = "@ana:hub.test", "@bob:f1.test", "@cat:f2.test"


@pytest.fixture
def net(tmp_path):
    network = Network(tmp_path, HUB, [F1, F2], history="recent", keep_recent=1000)
    yield network
    for f in network.followers.values():
        f.close()
    network.close()


def user(net: Network, room: str, sender: str, target: str, participation: Participation) -> m.Event:
    return net.submit(room, sender, "m.room.user", target, m.UserContent(participation).encode())


def visibility(net: Network, room: str, value: Visibility) -> m.Event:
    return net.submit(room, ANA, "m.room.history_visibility", "", m.HistoryVisibilityContent(int(value)).encode())


def same_answers(net: Network, follower, room: str, events: List[m.Event]) -> None:
    """The follower answers every other server as the hub does: the same bytes, or the same
    refusal (``policy_rejected`` for a server that may not read the room)."""
    for event in events:
        for reader in (F2, STRANGER):
            try:
                expected = net.hub.get_event(room, event.event_id, for_server=reader).encode()
            except m.PolicyRejectedError:
                with pytest.raises(m.PolicyRejectedError):
                    follower.get_event(room, event.event_id, for_server=reader)
                continue
            assert follower.get_event(room, event.event_id, for_server=reader).encode() == expected, (reader, event.type)
        # the hub's own users were joined throughout: the follower serves the hub whole
        assert follower.get_event(room, event.event_id, for_server=HUB).encode() == event.encode()


def test_a_partial_follower_serves_by_the_hubs_visibility_rules(net: Network) -> None:
    room = net.hub.create_room(ANA, initial_state=[("m.room.join_rules", "", m.JoinRulesContent(JoinRule.INVITE).encode())])[0].room_id
    before_join = net.message(room, ANA, "before bob joined")  # shared: bob's later join shows it
    user(net, room, ANA, BOB, Participation.INVITE)
    net.join(room, BOB)
    f1 = net.followers[F1]
    assert net.stores[F1].latest(room)[0] == JOIN_POSITION  # joined from the snapshot

    events = [visibility(net, room, Visibility.JOINED), user(net, room, ANA, CAT, Participation.INVITE)]
    events.append(net.message(room, BOB, "cat invited, not joined"))  # f2 does not see it (joined)
    events.append(user(net, room, CAT, CAT, Participation.JOIN))
    events.append(net.message(room, ANA, "cat joined"))  # f2 sees it
    events.append(user(net, room, CAT, CAT, Participation.LEAVE))
    events.append(net.message(room, BOB, "cat left"))  # f2 does not
    events.append(visibility(net, room, Visibility.WORLD))
    events.append(net.message(room, ANA, "world"))  # everyone sees it, strangers too
    events.append(visibility(net, room, Visibility.SHARED))
    events.append(net.message(room, ANA, "shared again"))  # strangers may no longer read at all
    net.deliver_all()
    assert f1.state(room).last_event_id == events[-1].event_id

    served_to_f2 = [f1.get_event(room, e.event_id, for_server=F2) for e in events if not e.is_state]
    assert [e.is_redacted() for e in served_to_f2] == [True, False, True, False, True]
    same_answers(net, f1, room, events)

    # Before the snapshot, the follower cannot know who saw an event: fetched on demand (the
    # hub gives it whole: bob joined after it under shared), it is served redacted although the
    # rules would show it to the hub's users -- never more than the rules allow.
    assert not net.hub.get_event(room, before_join.event_id, for_server=F1).is_redacted()
    assert f1.get_event(room, before_join.event_id).encode() == before_join.encode()  # held whole
    assert f1.get_event(room, before_join.event_id, for_server=HUB).is_redacted()

    # After a restart the follower rebuilds its state (checkpoint + run) and answers the same.
    net.followers[F1] = restarted = net.make_follower(F1)
    assert restarted.is_partial(room)
    same_answers(net, restarted, room, events)
    assert restarted.get_event(room, before_join.event_id, for_server=HUB).is_redacted()


def test_after_pruning_and_a_restart_older_events_are_served_redacted(tmp_path) -> None:
    """A restarted follower rebuilds its state from the checkpoint and the events it still
    holds; events it pruned and fetches again lie before that point, where it cannot tell who
    saw them (its checkpoint holds later values, e.g. cat joined): served redacted, never more."""
    net = Network(tmp_path, HUB, [F1, F2], history="recent", keep_recent=5)
    try:
        room = net.hub.create_room(ANA)[0].room_id
        user(net, room, ANA, BOB, Participation.INVITE)
        net.join(room, BOB)
        visibility(net, room, Visibility.JOINED)
        hidden_from_f2 = net.message(room, ANA, "before cat")  # joined: f2 never sees it
        user(net, room, ANA, CAT, Participation.INVITE)
        user(net, room, CAT, CAT, Participation.JOIN)
        seen_by_f2 = net.message(room, ANA, "cat is joined")
        recent = [net.message(room, ANA, f"later {i}") for i in range(12)]
        net.deliver_all()
        f1 = net.followers[F1]
        f1.partial.prune(room)  # down to the last keep_recent events
        assert net.stores[F1].index_of(room, seen_by_f2.event_id) is None
        # while running, the follower's history still decides for them (fetched on demand)
        assert not f1.get_event(room, seen_by_f2.event_id, for_server=F2).is_redacted()
        assert f1.get_event(room, hidden_from_f2.event_id, for_server=F2).is_redacted()
        f1.close()
        net.followers[F1] = restarted = net.make_follower(F1)
        restarted.partial.prune(room)
        older = (hidden_from_f2, seen_by_f2)
        assert all(net.stores[F1].index_of(room, e.event_id) is None for e in older)
        for event in older:  # fetched on demand again, below the rebuilt state's start
            assert restarted.get_event(room, event.event_id, for_server=F2).is_redacted()
        assert net.hub.get_event(room, hidden_from_f2.event_id, for_server=F2).is_redacted()
        same_answers(net, restarted, room, recent[-3:])
    finally:
        for f in net.followers.values():
            f.close()
        net.close()
