"""The hub's store work per event on the batch path, in process (SQLite, durable): appending
a group of events with their fan-out queue rows, reading each destination's queue, and acking
it; and the same append without queue rows.  CPU µs per event of this process.

    python benches/store_fanout.py                 # a 20,480-event room, groups of 256
    python benches/store_fanout.py --events 120000 # a bigger room: the random event-ID
                                                   # index costs more as the database grows
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

from mimi_signaling.node.store import EventRow
from mimi_signaling.storage import SQLiteEventStore

ROOM = "!fanoutbenchfanoutbenchfanoutbenchfanout:hub.example"
DESTINATIONS = ("alpha.example", "beta.example")


def event_id(i: int) -> str:
    return "$" + base64.urlsafe_b64encode(hashlib.sha256(str(i).encode()).digest()).decode().rstrip("=")


def rows(count: int, destinations: Sequence[str]) -> List[EventRow]:
    out = [EventRow(ROOM, 0, event_id(0), "", os.urandom(500), "m.room.create", "", "@a:hub.example", ())]
    out += [EventRow(ROOM, i, event_id(i), event_id(i - 1), os.urandom(500), "m.room.encrypted", None,
                     "@a:alpha.example", tuple(destinations)) for i in range(1, count + 1)]
    return out


def measure(count: int, group: int, destinations: Sequence[str]) -> Dict[str, float]:
    """CPU µs per event of each step, over the whole room."""
    spent = {"append": 0.0, "read queues": 0.0, "ack queues": 0.0}
    with tempfile.TemporaryDirectory() as directory:
        store = SQLiteEventStore(Path(directory) / "hub.db")
        try:
            data = rows(count, destinations)
            store.append_many(data[:1])
            for start in range(1, count + 1, group):
                began = time.process_time()
                store.append_many(data[start:start + group])
                spent["append"] += time.process_time() - began
                for destination in destinations:
                    began = time.process_time()
                    pending = store.pending(destination, group)
                    spent["read queues"] += time.process_time() - began
                    began = time.process_time()
                    store.ack_entries(destination, [q.queue_id for q in pending])
                    spent["ack queues"] += time.process_time() - began
        finally:
            store.close()
    return {step: seconds / count * 1e6 for step, seconds in spent.items()}


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_480)
    parser.add_argument("--group", type=int, default=256)
    args = parser.parse_args(argv)
    for label, destinations in (("two destinations", DESTINATIONS), ("no queue rows", ())):
        result = measure(args.events, args.group, destinations)
        print(f"{label:17s} " + "  ".join(f"{step} {us:.1f}" for step, us in result.items() if us or destinations)
              + f"  (CPU µs/event, {args.events:,} events, groups of {args.group})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
