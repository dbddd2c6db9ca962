"""Hub and followers in one process: deliveries, duplicates, out-of-order events and gaps."""

from __future__ import annotations

import random

import pytest

import mimi_signaling as m
from mimi_signaling.content import JoinRule
from mimi_signaling.node.follower import Follower, GapError

ENC = "m.room.encrypted"


def _room_with_two_followers(net):
    events = net.hub.create_room("@ana:hub.test", initial_state=[("m.room.join_rules", "", m.JoinRulesContent(JoinRule.PUBLIC).encode())])
    room = events[0].room_id
    net.join(room, "@bob:f1.test")
    net.join(room, "@cat:f2.test")
    net.deliver_all()
    return room


def test_followers_reach_the_hub_state(network):
    net = network
    room = _room_with_two_followers(net)
    for i in range(20):
        sender = random.choice(["@ana:hub.test", "@bob:f1.test", "@cat:f2.test"])
        net.submit(room, sender, ENC, None, f"msg {i}".encode())
    net.deliver_all()
    hub_state = net.hub.state(room)
    for f in net.followers.values():
        st = f.state(room)
        assert st.last_event_id == hub_state.last_event_id
        assert st.state_ids() == hub_state.state_ids()
        assert f.store.count(room) == net.stores["hub.test"].count(room)


def test_duplicates_and_out_of_order_deliveries(network):
    net = network
    room = _room_with_two_followers(net)
    sent = [net.submit(room, "@bob:f1.test", ENC, None, f"m{i}".encode()) for i in range(10)]
    f2 = net.followers["f2.test"]
    shuffled = sent[:]
    random.Random(7).shuffle(shuffled)
    for ev in shuffled + sent:  # out of order, then everything again
        f2.receive(ev, peer="hub.test")
    assert f2.state(room).last_event_id == sent[-1].event_id
    assert f2.store.count(room) == net.stores["hub.test"].count(room)


def test_gap_without_backfill_is_refused(network):
    net = network
    room = _room_with_two_followers(net)
    a = net.submit(room, "@ana:hub.test", ENC, None, b"a")
    b = net.submit(room, "@ana:hub.test", ENC, None, b"b")
    lonely = Follower("f1.test", net.keystores["f1.test"], net.stores["f1.test"])  # no backfill source
    with pytest.raises(GapError):
        lonely.receive(b, peer="hub.test")
    assert lonely.store.index_of(room, b.event_id) is None
    assert lonely.receive(a, peer="hub.test") == [a]
    assert lonely.receive(b, peer="hub.test") == [b]


def test_delivery_not_from_the_hub_is_unauthorized(network):
    net = network
    room = _room_with_two_followers(net)
    ev = net.submit(room, "@ana:hub.test", ENC, None, b"x")
    with pytest.raises(m.UnauthorizedError):
        net.followers["f1.test"].receive(ev, peer="f2.test")
    assert net.stores["f1.test"].index_of(room, ev.event_id) is None


def test_follower_refuses_an_event_the_policy_forbids(network):
    """A hub that signs an illegal event (a message from a non-member) is caught by followers."""
    net = network
    room = _room_with_two_followers(net)
    hub_state = net.hub.state(room)
    limited = m.LimitedEvent.create(room, ENC, None, "@eve:f1.test", b"spam", net.keys["f1.test"])
    auth = [hub_state.create_event_id]
    forged = limited.to_event(auth, hub_state.last_event_id, net.keys["hub.test"])
    with pytest.raises(m.PolicyRejectedError):
        net.followers["f2.test"].receive(forged, peer="hub.test")
    assert net.stores["f2.test"].index_of(room, forged.event_id) is None
    # and the follower still takes the next legal event
    ok = net.submit(room, "@ana:hub.test", ENC, None, b"fine")
    assert net.followers["f2.test"].receive(ok, peer="hub.test") == [ok]


def test_a_long_run_of_deliveries_is_applied_and_stored_in_one_commit(network, monkeypatch):
    """``receive_many`` of 200 deliveries applies them all in order and stores them with one
    ``append_many`` (one commit for the run), the delivered bytes as they came."""
    net = network
    room = _room_with_two_followers(net)
    sent = [net.submit(room, "@bob:f1.test", ENC, None, f"m{i}".encode()) for i in range(200)]
    f2 = net.followers["f2.test"]
    store = net.stores["f2.test"]
    batches = []
    real_many = store.append_many
    monkeypatch.setattr(store, "append_many", lambda rows: batches.append(len(rows)) or real_many(rows))
    assert f2.receive_many([ev.encode() for ev in sent], peer="hub.test") == [None] * 200
    assert batches == [200]
    assert f2.state(room).last_event_id == sent[-1].event_id
    assert store.count(room) == net.stores["hub.test"].count(room)
    first = store.count(room) - 200
    assert [store.index_of(room, ev.event_id) for ev in sent[:2]] == [first, first + 1]
    assert store.get_by_index(room, first) == sent[0].encode()


def test_a_run_whose_commit_fails_stores_nothing_and_is_taken_again(network, monkeypatch):
    """The store fails while it writes a run: every entry the run staged is answered
    ``internal`` (nothing of it is stored), the follower reloads the room from the store,
    and the same deliveries are applied when they come again."""
    net = network
    room = _room_with_two_followers(net)
    sent = [net.submit(room, "@bob:f1.test", ENC, None, f"m{i}".encode()) for i in range(150)]
    f2 = net.followers["f2.test"]
    store = net.stores["f2.test"]
    before = store.count(room)
    real_batch = store._append_batch
    parts = []

    def failing_batch(cursor, rows):
        parts.append(len(rows))
        if len(parts) == 1:
            raise OSError("disk full")
        return real_batch(cursor, rows)

    monkeypatch.setattr(store, "_append_batch", failing_batch)
    errors = f2.receive_many([ev.encode() for ev in sent], peer="hub.test")
    assert all(isinstance(e, m.InternalError) for e in errors) and len(errors) == 150
    assert store.count(room) == before and f2.state(room).last_event_id != sent[-1].event_id
    monkeypatch.setattr(store, "_append_batch", real_batch)
    assert f2.receive_many([ev.encode() for ev in sent], peer="hub.test") == [None] * 150
    assert f2.state(room).last_event_id == sent[-1].event_id
    assert store.count(room) == net.stores["hub.test"].count(room)
