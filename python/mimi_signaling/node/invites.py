"""Invites of our users into rooms this server does not follow yet, bounded.

A hub delivers an invite for one of our users before any of them is in the room; the
follower checks it (the hub's and the origin's signatures) and keeps a small record of it
here until a user of ours joins (``join_flow`` then fetches the room from its hub) or it
expires.  Only the record is kept, never the event: the event is fetched again with the room.

A peer could otherwise deliver invites into made-up rooms without end, so the records are
bounded per delivering hub (its oldest record makes room for a new one: a peer displaces only
its own invites), in total (past it, new invites are answered ``rate_limited`` until records
expire or are used), and in time (``ttl``).  docs/DECISIONS.md (Follower) gives the figures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

from .._core import Event, RateLimitedError

log = logging.getLogger(__name__)

#: Invites kept per delivering hub, in total, and for how long (seconds).
PER_PEER = 100
TOTAL = 10_000
TTL = 7 * 24 * 3600.0


@dataclass(frozen=True)
class PendingInvite:
    room_id: str
    event_id: str
    invitee: str
    sender: str
    hub: str
    received: float


class PendingInvites:
    def __init__(self, *, per_peer: int = PER_PEER, total: int = TOTAL, ttl: float = TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_peer < 1 or total < per_peer or ttl <= 0:
            raise ValueError("need 1 <= per_peer <= total and ttl > 0")
        self.per_peer, self.total, self.ttl, self.clock = per_peer, total, ttl, clock
        self._lock = threading.Lock()
        #: (room ID, invitee) -> record, oldest first (insertion order is arrival order).
        self._records: "OrderedDict[Tuple[str, str], PendingInvite]" = OrderedDict()
        self._by_hub: Dict[str, int] = {}

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._records)

    def of_hub(self, hub: str) -> int:
        with self._lock:
            self._expire()
            return self._by_hub.get(hub, 0)

    def rooms(self) -> List[str]:
        with self._lock:
            self._expire()
            return sorted({r.room_id for r in self._records.values()})

    def add(self, event: Event, hub: str) -> None:
        """Keep a record of a checked invite delivered by ``hub`` (``RateLimitedError`` when
        the total bound is reached)."""
        key = (event.room_id, event.state_key or "")
        with self._lock:
            self._expire()
            if key in self._records:  # the same invite again, or a newer one: keep the newer
                self._drop(key)
            elif len(self._records) >= self.total:
                raise RateLimitedError(f"{self.total} invites are pending; try again later")
            if self._by_hub.get(hub, 0) >= self.per_peer:
                oldest = next(k for k, r in self._records.items() if r.hub == hub)
                self._drop(oldest)
                log.info("dropped the oldest pending invite from %s: at most %d per hub", hub, self.per_peer)
            self._records[key] = PendingInvite(event.room_id, event.event_id, event.state_key or "", event.sender,
                                               hub, self.clock())
            self._by_hub[hub] = self._by_hub.get(hub, 0) + 1

    def pop_room(self, room_id: str) -> List[PendingInvite]:
        """Forget (and return) the invites into ``room_id``: the room is followed now."""
        with self._lock:
            keys = [k for k in self._records if k[0] == room_id]
            return [self._drop(k) for k in keys]

    def _drop(self, key: Tuple[str, str]) -> PendingInvite:
        record = self._records.pop(key)
        self._by_hub[record.hub] -= 1
        if not self._by_hub[record.hub]:
            del self._by_hub[record.hub]
        return record

    def _expire(self) -> None:
        cutoff = self.clock() - self.ttl
        while self._records:
            key, record = next(iter(self._records.items()))
            if record.received > cutoff:
                return
            self._drop(key)
