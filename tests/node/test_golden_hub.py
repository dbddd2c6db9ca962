"""The profile's golden room rebuilt through the hub API: same event IDs, byte for byte."""

from __future__ import annotations

import mimi_signaling as m
from mimi_signaling.node.hub import Hub
from mimi_signaling.node.keys import KeyStore


def test_golden_room_through_the_hub(golden, golden_keys, sqlite_store):
    hub = Hub("hub.test", KeyStore("hub.test", golden_keys["hub.test"], sqlite_store), sqlite_store)
    hub.keys.add_server_keys(m.ServerKeys("follower.test", [golden_keys["follower.test"].verify_key()]))
    vectors = golden["events"]
    create_content = m.CreateContent.decode(bytes.fromhex(vectors[0]["content"]))
    events = hub.create_room("@ana:hub.test", room_id="!golden:hub.test", encryption_algorithm=create_content.encryption_algorithm)
    for v in vectors[2:]:
        limited = m.LimitedEvent.decode(bytes.fromhex(v["limited_event"]))
        events.append(hub.accept(limited, peer=v["sender"].split(":", 1)[1]))
    assert [e.event_id for e in events] == [v["event_id"] for v in vectors]
    assert [e.encode().hex() for e in events] == [v["event"] for v in vectors]
    # durable: a new hub on the same store has the same chain and state
    again = Hub("hub.test", hub.keys, sqlite_store)
    assert again.state("!golden:hub.test").last_event_id == vectors[-1]["event_id"]
    # fan-out: follower.test has a joined user, so every event after its join is queued for it
    queued = [q.event_id for q in sqlite_store.pending("follower.test", 100)]
    assert queued == [v["event_id"] for v in vectors[3:]]
