"""Helpers of the storage tests: rows of a well-linked chain (unless a test asks for a broken
link), and worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

from mimi_signaling.node.store import EventRow, EventStore

ROOM = "!room:hub.example"
OTHER = "!other:hub.example"
ALICE = "@alice:hub.example"
WORKER = Path(__file__).with_name("storage_worker.py")


def eid(room: str, index: int) -> str:
    return f"$ev{index}-{room[1:5]}"


def row(room: str, index: int, *, type: str = "org.example.msg", state_key: Optional[str] = None,
        event_id: Optional[str] = None, prev: Optional[str] = None, data: Optional[bytes] = None,
        destinations: tuple = ()) -> EventRow:
    """A row that links correctly to ``eid(room, index - 1)`` unless told otherwise."""
    if index == 0:
        type, state_key = "m.room.create", ""
    return EventRow(
        room_id=room,
        index=index,
        event_id=event_id if event_id is not None else eid(room, index),
        prev_event_id=prev if prev is not None else ("" if index == 0 else eid(room, index - 1)),
        event_bytes=data if data is not None else bytes([index % 256]) * (index % 7 + 1) + b"\x00\xff",
        type=type,
        state_key=state_key,
        sender=ALICE,
        destinations=destinations,
    )


def fill(store: EventStore, room: str, count: int, batch: int = 500) -> None:
    for start in range(0, count, batch):
        store.append_many([row(room, i) for i in range(start, min(start + batch, count))])


def snapshot(store: EventStore, room: str) -> list:
    return [store.latest(room), store.count(room), list(store.iter_events(room))]


def _package_parent() -> str:
    import mimi_signaling.storage

    return str(Path(mimi_signaling.storage.__file__).absolute().parents[2])


def start_worker(*args: str) -> subprocess.Popen:
    """Run ``_worker.py`` with the same ``mimi_signaling`` this test process imports."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [_package_parent()] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )
