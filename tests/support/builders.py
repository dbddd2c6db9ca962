"""Small builders for signed events in tests (real Ed25519 keys, real hashing)."""

from __future__ import annotations

from mimi_signaling import Event, KeyRing, LimitedEvent, SigningKey


class Servers:
    """A set of servers with keys and a key ring that knows all of them."""

    def __init__(self, *names: str) -> None:
        self.keys = {n: SigningKey.generate(f"ed25519:{n.split('.')[0][:8]}1") for n in names}
        self.ring = KeyRing()
        for n, k in self.keys.items():
            self.ring = self.ring.with_key(n, k.verify_key())

    def limited(self, room_id: str, type: str, state_key: str | None, sender: str, content: bytes) -> LimitedEvent:
        origin = sender.split(":", 1)[1]
        return LimitedEvent.create(room_id, type, state_key, sender, content, self.keys[origin])

    def event(
        self,
        room_id: str,
        type: str,
        state_key: str | None,
        sender: str,
        content: bytes,
        auth_events: list[str] = (),
        prev_event: str = "",
    ) -> Event:
        hub = room_id.split(":", 1)[1]
        limited = self.limited(room_id, type, state_key, sender, content)
        return limited.to_event(list(auth_events), prev_event, self.keys[hub])
