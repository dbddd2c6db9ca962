"""Hub.accept_many: one transaction for many submits, each checked against the state left by
the ones before it; refused ones are reported and nothing of them is stored."""

from __future__ import annotations

import pytest

import mimi_signaling as m
from mimi_signaling.content import JoinRule, Participation
from mimi_signaling.node.hub import STREAM_PART

ENC = "m.room.encrypted"


def test_mixed_batch(network):
    net = network
    room = net.hub.create_room("@ana:hub.test", initial_state=[("m.room.join_rules", "", m.JoinRulesContent(JoinRule.PUBLIC).encode())])[0].room_id
    key = net.keys["f1.test"]
    join = m.LimitedEvent.create(room, "m.room.user", "@bob:f1.test", "@bob:f1.test", m.UserContent(Participation.JOIN).encode(), key)
    msg = m.LimitedEvent.create(room, ENC, None, "@bob:f1.test", b"after my join", key)
    stranger = m.LimitedEvent.create(room, ENC, None, "@eve:f1.test", b"not joined", key)
    forged = m.LimitedEvent.create(room, ENC, None, "@cat:f2.test", b"wrong peer", net.keys["f2.test"])
    before = net.stores["hub.test"].count(room)
    results = net.hub.accept_many([(msg, "f1.test"), (join, "f1.test"), (msg, "f1.test"), (stranger, "f1.test"), (forged, "f1.test"), (msg, "f1.test")])
    # the message before the join is refused; after it, accepted; its exact resubmit is the same event
    assert isinstance(results[0], m.PolicyRejectedError)
    assert isinstance(results[1], m.Event) and isinstance(results[2], m.Event)
    assert isinstance(results[3], m.PolicyRejectedError)
    assert isinstance(results[4], m.UnauthorizedError)
    assert results[5] == results[2]
    assert net.stores["hub.test"].count(room) == before + 2
    assert net.hub.state(room).last_event_id == results[2].event_id


@pytest.mark.parametrize("failing_part", [1, 2, 3])
def test_store_failure_acknowledges_nothing(network, monkeypatch, failing_part):
    """The group is written in parts (``STREAM_PART``) inside one transaction: a failure of
    any part, also after earlier parts were written, stores and acknowledges nothing."""
    net = network
    room = net.hub.create_room("@ana:hub.test")[0].room_id
    key = net.keys["hub.test"]
    count = 2 * STREAM_PART + 5
    batch = [(m.LimitedEvent.create(room, ENC, None, "@ana:hub.test", i.to_bytes(2, "big"), key), None)
             for i in range(count)]
    store = net.stores["hub.test"]
    before = (store.count(room), net.hub.state(room).last_event_id)
    real = store._append_batch
    calls = []

    def broken(cursor, rows):
        calls.append(len(rows))
        if len(calls) == failing_part:
            raise OSError("disk full")
        real(cursor, rows)

    monkeypatch.setattr(store, "_append_batch", broken)
    results = net.hub.accept_many(batch)
    assert len(calls) == failing_part
    assert all(isinstance(r, m.InternalError) for r in results)
    monkeypatch.undo()
    assert (store.count(room), net.hub.state(room).last_event_id) == before
    # and the hub goes on from the stored state
    ok = net.hub.accept_many(batch)
    assert all(isinstance(r, m.Event) for r in ok)
    assert store.count(room) == before[0] + count
