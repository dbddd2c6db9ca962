"""The fan-out queue, the server keys cache, room roles and the store's lifetime."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import List

import pytest

from mimi_signaling.node.store import ChainConflictError, EventNotStoredError, EventStore
from mimi_signaling.storage import open_store
from mimi_signaling.storage.sqlite import SQLiteEventStore

from support.storage_helpers import OTHER, ROOM, eid, fill, row

B, C = "b.example", "c.example:8448"


def test_queue_keeps_enqueue_order_per_destination(store: EventStore) -> None:
    store.append(*row(ROOM, 0))
    store.append(*row(ROOM, 1, destinations=(B, C)))
    store.append(*row(OTHER, 0, destinations=(C,)))
    store.append_many([row(ROOM, 2, destinations=(B,)), row(ROOM, 3, destinations=(B, C))])
    assert store.destinations_with_pending() == sorted([B, C])
    pending_b = store.pending(B)
    assert [(q.room_id, q.event_id) for q in pending_b] == [
        (ROOM, eid(ROOM, 1)), (ROOM, eid(ROOM, 2)), (ROOM, eid(ROOM, 3))]
    assert [q.event_bytes for q in pending_b] == [row(ROOM, i).event_bytes for i in (1, 2, 3)]
    assert [q.queue_id for q in pending_b] == sorted(q.queue_id for q in pending_b)
    assert [(q.room_id, q.event_id) for q in store.pending(C)] == [
        (ROOM, eid(ROOM, 1)), (OTHER, eid(OTHER, 0)), (ROOM, eid(ROOM, 3))]
    assert store.pending(B, limit=2) == pending_b[:2]
    assert store.queue_length(B) == 3 and store.queue_length("nobody.example") == 0


def test_ack_entries_drops_exactly_the_named_entries(store: EventStore) -> None:
    fill(store, ROOM, 1)
    store.append_many([row(ROOM, i, destinations=(B, C)) for i in range(1, 6)])
    queue = store.pending(B)
    store.ack_entries(B, [queue[1].queue_id, queue[3].queue_id])
    assert store.pending(B) == [queue[0], queue[2], queue[4]]  # not the ones in between
    assert store.queue_length(C) == 5
    store.ack_entries(B, [queue[1].queue_id])  # again: harmless
    store.ack_entries(C, [queue[0].queue_id])  # B's entry IDs name nothing of C's queue
    store.ack_entries(B, [])
    assert store.queue_length(B) == 3 and store.queue_length(C) == 5


def test_ack_entries_of_runs_and_gaps(store: EventStore) -> None:
    """Acks of consecutive IDs (one range delete each) and of lone IDs together drop exactly
    the named entries: not an unnamed entry between two runs, nor another destination's."""
    fill(store, ROOM, 1)
    store.append_many([row(ROOM, i, destinations=(B, C)) for i in range(1, 11)])
    queue = store.pending(B)
    ids = [q.queue_id for q in queue]
    named = ids[0:3] + [ids[4]] + ids[6:9]  # runs 0-2 and 6-8, lone 4; not 3, 5, 9
    store.ack_entries(B, list(reversed(named)) + [ids[1]])  # any order, repeats harmless
    assert store.pending(B) == [queue[3], queue[5], queue[9]]
    assert store.queue_length(C) == 10
    store.ack_entries(B, [ids[3], ids[5], ids[9]])
    assert store.pending(B) == []


def test_a_group_queues_each_destination_consecutively(store: EventStore) -> None:
    """One append's entries of a destination get consecutive queue IDs (then its ack is one
    range delete), in row order, with several destinations per row."""
    fill(store, ROOM, 1)
    store.append_many([row(ROOM, i, destinations=(B, C)) for i in range(1, 6)])
    for destination in (B, C):
        queue = store.pending(destination)
        assert [q.event_id for q in queue] == [eid(ROOM, i) for i in range(1, 6)]
        first = queue[0].queue_id
        assert [q.queue_id for q in queue] == list(range(first, first + 5))


def test_queue_ids_are_never_reused(store: EventStore) -> None:
    """Queue IDs keep growing after the queue emptied, so a late ack of an old ID cannot drop
    an entry queued since."""
    fill(store, ROOM, 1)
    store.append_many([row(ROOM, i, destinations=(B,)) for i in range(1, 4)])
    queue = store.pending(B)
    store.ack_entries(B, [q.queue_id for q in queue])
    assert store.pending(B) == [] and store.destinations_with_pending() == []
    store.append(*row(ROOM, 4, destinations=(B,)))
    (fresh,) = store.pending(B)
    assert fresh.queue_id > queue[-1].queue_id
    store.ack_entries(B, [q.queue_id for q in queue])  # late: names nothing queued now
    assert store.pending(B) == [fresh]


def test_queue_is_atomic_with_append(store: EventStore) -> None:
    fill(store, ROOM, 2)
    with pytest.raises(ChainConflictError):
        store.append(*row(ROOM, 2, prev="$wrong", destinations=(B,)))
    with pytest.raises(ChainConflictError):
        store.append_many([row(ROOM, 2, destinations=(B,)), row(ROOM, 2, event_id="$dup")])
    assert store.pending(B) == [] and store.destinations_with_pending() == []


def test_enqueue_of_stored_and_unknown_events(store: EventStore) -> None:
    fill(store, ROOM, 3)
    first = store.enqueue(B, ROOM, eid(ROOM, 2), 2)
    second = store.enqueue(B, ROOM, eid(ROOM, 1), 1)
    assert second > first
    assert [q.queue_id for q in store.pending(B)] == [first, second]
    for event_id, index in [("$missing", 1), (eid(ROOM, 2), 1)]:
        with pytest.raises(EventNotStoredError):
            store.enqueue(C, ROOM, event_id, index)
    assert store.pending(C) == []


def test_server_keys_cache(store: EventStore) -> None:
    assert store.get_server_keys(B) is None
    store.put_server_keys(B, b"\x01keys-v1\x00")
    store.put_server_keys(C, b"c-keys")
    store.put_server_keys(B, b"\x02keys-v2\xff")
    assert store.get_server_keys(B) == b"\x02keys-v2\xff"
    assert store.get_server_keys(C) == b"c-keys"


def test_room_roles(store: EventStore) -> None:
    assert store.room_role(ROOM) is None
    store.put_room(ROOM, "hub")
    store.put_room(OTHER, "follower")
    assert store.room_role(ROOM) == "hub" and store.room_role(OTHER) == "follower"
    with pytest.raises(ValueError):
        store.put_room(ROOM, "observer")
    assert store.room_role(ROOM) == "hub"
    assert store.rooms() == sorted([ROOM, OTHER])  # rooms with a role but no events yet
    fill(store, "!third:c.example", 1)
    assert store.rooms() == sorted([ROOM, OTHER, "!third:c.example"])


def _runs(store: EventStore) -> int:
    (count,) = store._read("SELECT COUNT(*) FROM outbox_runs", ())[0]  # type: ignore[attr-defined]
    return int(count)


def test_a_group_is_one_queue_row_per_destination(store: EventStore) -> None:
    """The queue keeps runs: a group of consecutive events is one row per destination, not
    one per event and destination (what a hub with many destinations would pay)."""
    fill(store, ROOM, 1)
    store.append_many([row(ROOM, i, destinations=(B, C)) for i in range(1, 257)])
    assert _runs(store) == 2 and store.queue_length(B) == store.queue_length(C) == 256
    store.append_many([row(ROOM, 257, destinations=(C,)), row(OTHER, 0, destinations=(C,)),
                       row(ROOM, 258, destinations=(C,))])  # the other room breaks C's run
    assert _runs(store) == 5
    assert [q.event_id for q in store.pending(C, 1000)][-3:] == [eid(ROOM, 257), eid(OTHER, 0), eid(ROOM, 258)]
    store.ack_entries(B, [q.queue_id for q in store.pending(B, 1000)])
    assert _runs(store) == 4 and store.destinations_with_pending() == [C]


def test_acks_that_leave_holes_keep_entry_ids_and_order(store: EventStore) -> None:
    """An ack in the middle of a run splits it; the entries left keep their IDs and their
    place ahead of later runs, and can be acked by those IDs later."""
    fill(store, ROOM, 1)
    store.append_many([row(ROOM, i, destinations=(B,)) for i in range(1, 9)])
    store.append_many([row(ROOM, i, destinations=(B,)) for i in range(9, 11)])
    queue = store.pending(B)
    store.ack_entries(B, [queue[i].queue_id for i in (0, 2, 3, 6)])
    left = [queue[i] for i in (1, 4, 5, 7, 8, 9)]
    assert store.pending(B) == left and store.queue_length(B) == 6
    assert store.pending(B, limit=3) == left[:3]
    store.ack_entries(B, [left[1].queue_id, left[4].queue_id])
    assert store.pending(B) == [left[0], left[2], left[3], left[5]]
    store.ack_entries(B, [q.queue_id for q in queue])
    assert store.pending(B) == [] and _runs(store) == 0


def test_pending_leaves_out_the_excluded_entries(store: EventStore) -> None:
    """A fan-out's read skips the entries it has in flight: not returned, not counted in the
    limit, whether they head a run, sit inside one or fill one."""
    fill(store, ROOM, 1)
    store.append_many([row(ROOM, i, destinations=(B,)) for i in range(1, 7)])
    store.append_many([row(ROOM, 7, destinations=(B,))])
    store.append_many([row(ROOM, i, destinations=(B,)) for i in range(8, 11)])
    queue = store.pending(B)
    ids = [q.queue_id for q in queue]
    exclude = frozenset(ids[0:3] + [ids[4], ids[6]])  # a head, the middle, a whole run
    assert store.pending(B, exclude=exclude) == [q for q in queue if q.queue_id not in exclude]
    assert store.pending(B, limit=3, exclude=exclude) == [queue[3], queue[5], queue[7]]
    assert store.pending(B, limit=2, exclude=frozenset(ids[:9])) == [queue[9]]
    assert store.pending(B, exclude=frozenset(ids)) == []


def test_acks_commit_without_a_disk_flush_and_events_with_one(tmp_path: Path) -> None:
    """SQLite: an ack (a lost one only repeats deliveries) commits with ``synchronous=NORMAL``,
    so it neither waits for nor holds the writer through a flush; appends stay ``FULL``, also
    right after an ack, and a failed ack restores it too."""
    store = SQLiteEventStore(tmp_path / "acks.db")
    statements: List[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        fill(store, ROOM, 1)
        store.append_many([row(ROOM, i, destinations=(B,)) for i in range(1, 4)])
        queue = store.pending(B)
        statements.clear()
        store.ack_entries(B, [queue[0].queue_id])
        assert statements[0] == "PRAGMA synchronous=NORMAL" and statements[-1] == "PRAGMA synchronous=FULL"
        assert "BEGIN IMMEDIATE" in statements and statements.index("COMMIT") < len(statements) - 1
        statements.clear()
        store.append(*row(ROOM, 4, destinations=(B,)))
        assert not any(s.startswith("PRAGMA synchronous") for s in statements)
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        store._conn.execute("DROP TABLE outbox_runs")  # the next ack fails inside its transaction
        with pytest.raises(sqlite3.OperationalError):
            store.ack_entries(B, [queue[1].queue_id])
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        store.close()


def test_a_version_2_queue_is_migrated_in_order(store_url: str) -> None:
    """Opening a version 2 database moves its queue rows (one per entry) to runs, in queue
    order per destination, and drops the old table; entries are delivered as before."""
    with open_store(store_url) as first:
        fill(first, ROOM, 6)
        fill(first, OTHER, 2)
        render = first.dialect.render  # type: ignore[attr-defined]
        old = [(B, ROOM, 2), (C, ROOM, 1), (B, ROOM, 3), (B, OTHER, 0), (B, ROOM, 4), (C, ROOM, 5), (B, ROOM, 1)]
        with first._write() as cursor:  # type: ignore[attr-defined]
            cursor.execute(render("""CREATE TABLE outbox (queue_id {serial_pk}, destination TEXT NOT NULL,
                room_id TEXT NOT NULL, event_id TEXT NOT NULL, idx {bigint} NOT NULL)"""))
            cursor.executemany(render("INSERT INTO outbox (destination, room_id, event_id, idx) VALUES (?, ?, ?, ?)"),
                               [(d, r, eid(r, i), i) for d, r, i in old])
            cursor.execute(render("UPDATE meta SET value = '2' WHERE name = 'schema_version'"))
    with open_store(store_url) as second:
        assert [(q.room_id, q.event_id) for q in second.pending(B)] == [
            (r, eid(r, i)) for d, r, i in old if d == B]
        assert [q.event_id for q in second.pending(C)] == [eid(ROOM, 1), eid(ROOM, 5)]
        assert _runs(second) == 6  # B: 2-3, then OTHER 0, 4, 1; C: 1, 5
        assert second._read("SELECT value FROM meta WHERE name = 'schema_version'", ()) == [("3",)]  # type: ignore[attr-defined]
        second.append(*row(ROOM, 6, destinations=(B,)))
        assert second.pending(B)[-1].event_id == eid(ROOM, 6)
        # The events table was rebuilt with keys computed by SQL: they match the Python's.
        assert [second.index_of(ROOM, eid(ROOM, i)) for i in range(7)] == list(range(7))
        assert second.get_event(OTHER, eid(OTHER, 1)) == row(OTHER, 1).event_bytes
        with pytest.raises(ChainConflictError):
            second.append(*row(ROOM, 7, event_id=eid(ROOM, 2), prev=eid(ROOM, 6)))


def test_data_survives_reopening(store_url: str) -> None:
    with open_store(store_url) as first:
        fill(first, ROOM, 3)
        first.append(*row(ROOM, 3, destinations=(B,)))
        first.put_room(ROOM, "hub")
        first.put_server_keys(B, b"keys")
    with open_store(store_url) as second:  # schema already there: opened as is
        assert second.latest(ROOM) == (3, eid(ROOM, 3))
        assert [q.event_id for q in second.pending(B)] == [eid(ROOM, 3)]
        assert second.room_role(ROOM) == "hub" and second.get_server_keys(B) == b"keys"
        second.append(*row(ROOM, 4))


def test_closed_store_refuses_use(store_url: str) -> None:
    with open_store(store_url) as opened:
        fill(opened, ROOM, 1)
    opened.close()  # idempotent
    with pytest.raises(RuntimeError):
        opened.latest(ROOM)
    with pytest.raises(RuntimeError):
        opened.append(*row(ROOM, 1))
