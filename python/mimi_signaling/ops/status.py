"""What an operator looks at: the server's rooms, each destination's fan-out state and the
keys, as one snapshot (``snapshot(node)``, blocking: it reads the store) that the status
page, ``mimi destinations`` and the metrics collector share.

A queued entry carries no timestamp in the store (PROFILE.md events have none either), so
the age of a destination's oldest entry is measured from when this process first saw that
entry at the head of the queue (:class:`QueueAges`, sampled at every snapshot and by the
ops listener every few seconds): after a restart ages start again from zero.
"""

from __future__ import annotations

import html
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from .. import ServerKeys

if TYPE_CHECKING:  # pragma: no cover
    from ..server import ServerNode

__all__ = ["QueueAges", "RoomRow", "DestinationRow", "KeyRow", "Snapshot", "snapshot", "destination_rows",
           "render_status_page"]


class QueueAges:
    """Per destination, the head entry's queue ID and when it was first seen at the head."""

    def __init__(self) -> None:
        self._heads: Dict[str, Tuple[int, float]] = {}
        self._lock = threading.Lock()

    def observe(self, destination: str, head_queue_id: Optional[int], now: float) -> float:
        """Record the current head; return how long it has been there (0 for an empty queue)."""
        with self._lock:
            if head_queue_id is None:
                self._heads.pop(destination, None)
                return 0.0
            seen = self._heads.get(destination)
            if seen is None or seen[0] != head_queue_id:
                self._heads[destination] = (head_queue_id, now)
                return 0.0
            return now - seen[1]


@dataclass
class RoomRow:
    room_id: str
    role: str
    events: int
    latest_event_id: str


@dataclass
class DestinationRow:
    name: str
    backlog: int
    oldest_age: float  # seconds; 0 when the queue is empty
    oldest_event_id: str
    last_success: Optional[float]  # Unix time of the last delivery, this process
    failures: int  # consecutive failed attempts
    backoff_remaining: float  # seconds until the next attempt; 0 when not backing off
    last_error: str


@dataclass
class KeyRow:
    server: str
    key_id: str
    expired_ts: int  # milliseconds; 0 = current

    @property
    def current(self) -> bool:
        return self.expired_ts == 0


@dataclass
class Snapshot:
    server_name: str
    taken_at: float
    rooms: List[RoomRow]
    destinations: List[DestinationRow]
    keys: List[KeyRow]

    def to_dict(self) -> dict:
        return asdict(self)


def snapshot(node: "ServerNode") -> Snapshot:
    """The server's state for operators (reads the store: call it off the event loop)."""
    store = node.store
    now = time.time()
    rooms = []
    for room_id in store.rooms():
        latest = store.latest(room_id)
        rooms.append(RoomRow(room_id, store.room_role(room_id) or "?", latest[0] + 1 if latest else 0,
                             latest[1] if latest else ""))
    keys = [KeyRow(node.server_name, k.key_id, k.expired_ts) for k in node.keys.own_keys().keys]
    for peer in sorted(node.config.peers):
        raw = store.get_server_keys(peer)
        if raw is not None:
            keys.extend(KeyRow(peer, k.key_id, k.expired_ts) for k in ServerKeys.decode(raw).keys)
    return Snapshot(node.server_name, now, rooms, destination_rows(node, now), keys)


def destination_rows(node: "ServerNode", now: float) -> List[DestinationRow]:
    """Each destination's fan-out state (and a sample of its queue's head for the ages)."""
    store = node.store
    worker = node.delivery
    queued = set(store.destinations_with_pending())
    names = sorted(queued | set(node.config.peers) | (set(worker.last_success) | set(worker.failures) if worker else set()))
    ages = node.metrics.queue_ages
    destinations = []
    for name in names:
        head = store.pending(name, 1) if name in queued else []
        backlog = store.queue_length(name) if head else 0
        age = ages.observe(name, head[0].queue_id if head else None, now)
        retry_at = worker.retry_at.get(name) if worker else None
        destinations.append(DestinationRow(
            name=name,
            backlog=backlog,
            oldest_age=age,
            oldest_event_id=head[0].event_id if head else "",
            last_success=worker.last_success.get(name) if worker else None,
            failures=worker.failures.get(name, 0) if worker else 0,
            backoff_remaining=max(0.0, retry_at - now) if retry_at else 0.0,
            last_error=worker.last_error.get(name, "") if worker else "",
        ))
    return destinations


# --- the status page --------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #fafbfc; }
h1 { font-size: 1.4em; margin: 0 0 .2em; } h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
.meta { color: #5b6475; }
table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px #0002; }
th, td { padding: .3em .8em; border-bottom: 1px solid #e3e6eb; text-align: left; }
th { background: #eef1f5; font-weight: 600; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
code { font-size: 12px; } .ok { color: #17803d; } .bad { color: #b42318; font-weight: 600; } .warn { color: #b54708; }
"""


def _ago(then: Optional[float], now: float) -> str:
    if then is None:
        return "never"
    return f"{_duration(now - then)} ago"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _expiry(ms: int) -> str:
    if ms == 0:
        return '<span class="ok">current</span>'
    return "expired " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def render_status_page(snap: Snapshot) -> str:
    """One self-contained HTML page (no scripts, no external assets)."""
    e = html.escape
    now = snap.taken_at
    rows = []
    for r in snap.rooms:
        rows.append(f"<tr><td><code>{e(r.room_id)}</code></td><td>{e(r.role)}</td><td class=n>{r.events}</td>"
                    f"<td><code>{e(r.latest_event_id)}</code></td></tr>")
    rooms = "".join(rows) or '<tr><td colspan=4>no rooms</td></tr>'
    rows = []
    for d in snap.destinations:
        if d.failures:
            state = f'<span class="bad">backing off, retry in {_duration(d.backoff_remaining)}</span>' \
                if d.backoff_remaining else '<span class="warn">retrying</span>'
        else:
            state = '<span class="ok">ok</span>'
        rows.append(
            f"<tr><td>{e(d.name)}</td><td class=n>{d.backlog}</td>"
            f"<td>{_duration(d.oldest_age) if d.backlog else '-'}</td><td>{_ago(d.last_success, now)}</td>"
            f"<td>{state}</td><td class=n>{d.failures}</td><td>{e(d.last_error) or '-'}</td></tr>"
        )
    destinations = "".join(rows) or '<tr><td colspan=7>no destinations</td></tr>'
    keys = "".join(
        f"<tr><td>{e(k.server)}</td><td><code>{e(k.key_id)}</code></td><td>{_expiry(k.expired_ts)}</td></tr>"
        for k in snap.keys
    )
    taken = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(snap.server_name)} - MIMI server status</title>
<style>{_STYLE}</style></head><body>
<h1>MIMI server {e(snap.server_name)}</h1>
<div class="meta">status at {taken}; {len(snap.rooms)} rooms, {len(snap.destinations)} destinations</div>
<h2>Rooms</h2>
<table id="rooms"><tr><th>room</th><th>role</th><th>events</th><th>latest event</th></tr>{rooms}</table>
<h2>Destinations (fan-out)</h2>
<table id="destinations"><tr><th>destination</th><th>backlog</th><th>oldest queued</th><th>last success</th>
<th>state</th><th>failures in a row</th><th>last error</th></tr>{destinations}</table>
<h2>Signing keys</h2>
<table id="keys"><tr><th>server</th><th>key ID</th><th>expiry</th></tr>{keys}</table>
</body></html>
"""
