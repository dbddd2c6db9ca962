"""In-process hub and followers for node tests: real keys, real SQLite stores, deliveries
taken from the hub's durable fan-out queue."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import mimi_signaling as m
from mimi_signaling.content import Participation
from mimi_signaling.node.follower import Follower
from mimi_signaling.node.hub import Hub
from mimi_signaling.node.keys import KeyStore
from mimi_signaling.storage import open_store


class Network:
    """One hub server and some follower servers, all knowing each other's keys."""

    def __init__(self, tmp: Path, hub: str, followers: List[str], *, history: str = "full", keep_recent: int = 1000,
                 store_urls: Optional[Dict[str, str]] = None) -> None:
        """``store_urls``: a store URL by server name (default: a SQLite file in ``tmp``)."""
        self.keys = {name: m.SigningKey.generate() for name in [hub, *followers]}
        urls = store_urls or {}
        self.stores = {name: open_store(urls.get(name, f"sqlite:///{tmp}/{name}.db")) for name in self.keys}
        self.keystores = {name: KeyStore(name, self.keys[name], self.stores[name]) for name in self.keys}
        for name, ks in self.keystores.items():
            for other, key in self.keys.items():
                if other != name:
                    ks.add_server_keys(m.ServerKeys(other, [key.verify_key()]))
        self.hub = Hub(hub, self.keystores[hub], self.stores[hub])
        self.history, self.keep_recent = history, keep_recent
        self.followers: Dict[str, Follower] = {f: self.make_follower(f) for f in followers}

    def make_follower(self, name: str, **overrides) -> Follower:
        """A follower reading the hub in process (backfill, snapshot, get_event as the hub
        answers ``name``); pruning runs inline so tests see its result at once."""
        args = dict(backfill=self._backfill_for(name), history=self.history, keep_recent=self.keep_recent,
                    snapshot=self.hub.snapshot,
                    fetch_event=lambda room_id, event_id: self.hub.get_event(room_id, event_id, for_server=name),
                    background_prune=False)
        args.update(overrides)
        return Follower(name, self.keystores[name], self.stores[name], **args)

    def _backfill_for(self, follower: str):
        return lambda room_id, before, limit: self.hub.backfill(room_id, before, limit, for_server=follower)

    def submit(self, room_id: str, sender: str, type: str, state_key, content: bytes) -> m.Event:
        origin = sender.split(":", 1)[1]
        limited = m.LimitedEvent.create(room_id, type, state_key, sender, content, self.keys[origin])
        return self.hub.accept(limited, peer=origin)

    def pending(self, destination: str) -> List[m.Event]:
        return [m.Event.decode(q.event_bytes) for q in self.stores[self.hub.server_name].pending(destination, 10_000)]

    def deliver_all(self) -> None:
        """Drain the hub's queue to every follower, in order."""
        store = self.stores[self.hub.server_name]
        for dest in store.destinations_with_pending():
            for q in store.pending(dest, 10_000):
                follower, event = self.followers[dest], m.Event.decode(q.event_bytes)
                try:
                    follower.receive(event, peer=self.hub.server_name)
                except m.NotFoundError:
                    # A follower none of whose users is in the room refuses the delivery
                    # (not_found), and the hub's fan-out drops a refused delivery: so here.
                    assert not follower.follows(event.room_id)
                store.ack_entries(dest, [q.queue_id])

    def join(self, room_id: str, user: str) -> m.Event:
        event = self.submit(room_id, user, "m.room.user", user, m.UserContent(Participation.JOIN).encode())
        follower = self.followers[user.split(":", 1)[1]]
        follower.sync(room_id, event)
        return event

    def message(self, room_id: str, sender: str, text: str) -> m.Event:
        return self.submit(room_id, sender, "m.room.encrypted", None, text.encode())

    def close(self) -> None:
        for s in self.stores.values():
            s.close()
