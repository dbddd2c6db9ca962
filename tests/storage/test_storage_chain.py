"""The event chain of a store: appends, reads, linearity, batches, partial histories.

Every test runs on SQLite and PostgreSQL (the ``store`` fixture).  Event bytes are arbitrary:
the store never decodes them.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from typing import List, Optional

import pytest

from mimi_signaling._core import _event_keys
from mimi_signaling.node.store import ChainConflictError, EventRow, EventStore, Gap
from mimi_signaling.storage import open_store
from mimi_signaling.storage.base import event_key
from mimi_signaling.storage.urls import sqlite_path_from_url
from support.storage_helpers import ALICE, OTHER, ROOM, eid, fill, row, snapshot

# --- round trip --------------------------------------------------------------------------


def test_event_key_is_the_leading_sha256_bytes_signed() -> None:
    """``id_key`` (the core's ``_event_keys``, one call per batch of rows) is the first 8 bytes
    of the SHA-256 of the ID's UTF-8 as a signed big-endian integer: what the SQL of the
    migrations computes (tested with them) and what stored rows of earlier versions hold."""
    ids = ["$" + "A" * 43, "$" + "_" * 42 + "w", "é", "", "x" * 1000]
    expected = [int.from_bytes(hashlib.sha256(i.encode()).digest()[:8], "big", signed=True) for i in ids]
    assert _event_keys(ids) == expected and [event_key(i) for i in ids] == expected
    assert min(expected) < 0 < max(expected) and _event_keys([]) == []


def test_append_and_read_back(store: EventStore) -> None:
    assert store.latest(ROOM) is None and store.count(ROOM) == 0 and store.rooms() == []
    rows = [row(ROOM, i) for i in range(5)]
    for r in rows:
        store.append(*r)
    for r in rows:
        assert store.get_event(ROOM, r.event_id) == r.event_bytes
        assert store.get_by_index(ROOM, r.index) == r.event_bytes
        assert store.index_of(ROOM, r.event_id) == r.index
    assert store.latest(ROOM) == (4, eid(ROOM, 4))
    assert store.count(ROOM) == 5
    assert store.rooms() == [ROOM]
    assert list(store.iter_events(ROOM)) == [(r.index, r.event_bytes) for r in rows]
    # Lookups are per room and miss cleanly.
    assert store.get_event(OTHER, eid(ROOM, 1)) is None
    assert store.get_event(ROOM, "$missing") is None
    assert store.get_by_index(ROOM, 5) is None
    assert store.index_of(ROOM, "$missing") is None


def test_event_bytes_are_kept_exactly(store: EventStore) -> None:
    every_byte = bytes(range(256)) * 256  # 64 KiB, every byte value, NULs included
    store.append(*row(ROOM, 0, data=every_byte))
    assert store.get_by_index(ROOM, 0) == every_byte


def test_rooms_are_independent(store: EventStore) -> None:
    fill(store, ROOM, 3)
    fill(store, OTHER, 2)
    assert store.rooms() == sorted([ROOM, OTHER])
    assert store.latest(ROOM) == (2, eid(ROOM, 2)) and store.latest(OTHER) == (1, eid(OTHER, 1))
    assert [i for i, _ in store.iter_events(OTHER)] == [0, 1]


# --- linearity -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(row(ROOM, 3, prev="$not-stored"), id="wrong-prev"),
        pytest.param(row(ROOM, 3, prev=eid(ROOM, 1)), id="prev-is-older-event"),
        pytest.param(row(ROOM, 2, event_id="$fork"), id="duplicate-index-fork"),
        pytest.param(row(ROOM, 5, prev=eid(ROOM, 2)), id="gap"),
        pytest.param(row(ROOM, 0, event_id="$create2"), id="second-create"),
        pytest.param(row(ROOM, 3, event_id=eid(ROOM, 1)), id="duplicate-event-id"),
        pytest.param(row(ROOM, 3, prev=""), id="empty-prev-after-create"),
        pytest.param(row(ROOM, 3, event_id=""), id="empty-event-id"),
        pytest.param(row(ROOM, -1, prev=""), id="negative-index"),
    ],
)
def test_linearity_violations_store_nothing(store: EventStore, bad: EventRow) -> None:
    fill(store, ROOM, 3)
    before = snapshot(store, ROOM)
    with pytest.raises(ChainConflictError) as caught:
        store.append(*bad)
    assert caught.value.room_id == ROOM and caught.value.index == bad.index
    assert snapshot(store, ROOM) == before
    if bad.event_id not in {eid(ROOM, i) for i in range(3)}:
        assert store.index_of(ROOM, bad.event_id) is None


def test_create_with_prev_is_rejected(store: EventStore) -> None:
    with pytest.raises(ChainConflictError):
        store.append(*row(ROOM, 0, prev="$something"))
    with pytest.raises(ChainConflictError):
        store.append(*row(ROOM, 1))  # nothing before it
    assert store.latest(ROOM) is None and store.rooms() == []


@pytest.mark.parametrize(
    "index, event_id, prev, prev_idx",
    [
        pytest.param(2, "$fork", eid(ROOM, 1), 1, id="second-event-at-an-index"),
        pytest.param(3, "$fork", eid(ROOM, 1), 2, id="prev-not-at-index-minus-one"),
        pytest.param(3, "$fork", eid(ROOM, 1), None, id="detached-second-successor"),
        pytest.param(3, "$fork", "$unknown", 2, id="prev-unknown"),
    ],
)
def test_the_database_itself_refuses_a_fork(
    store: EventStore, store_url: str, index: int, event_id: str, prev: str, prev_idx: Optional[int]
) -> None:
    """Linearity is the tables' constraints, not only checks in Python: a raw INSERT on a
    connection of its own, bypassing the store, cannot fork the chain."""
    fill(store, ROOM, 3)
    values = (ROOM, index, event_id, prev, prev_idx, "org.example.msg", None, ALICE, b"raw")
    columns = "room_id, idx, event_id, prev_event_id, prev_idx, type, state_key, sender, event_bytes"
    if store_url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path_from_url(store_url))
        conn.execute("PRAGMA foreign_keys=ON")
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(f"INSERT INTO events ({columns}) VALUES ({', '.join('?' * 9)})", values)
        conn.close()
    else:
        import psycopg

        with psycopg.connect(store_url) as conn:
            with pytest.raises(psycopg.errors.IntegrityError):
                conn.execute(f"INSERT INTO events ({columns}) VALUES ({', '.join(['%s'] * 9)})", values)
    assert store.count(ROOM) == 3 and store.latest(ROOM) == (2, eid(ROOM, 2))


def _raw_insert(store_url: str, values: tuple) -> None:
    """INSERT a row on a connection of its own, bypassing the store's checks."""
    columns = "room_id, idx, event_id, prev_event_id, prev_idx, type, state_key, sender, event_bytes"
    if store_url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_path_from_url(store_url))
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"INSERT INTO events ({columns}) VALUES ({', '.join('?' * 9)})", values)
            conn.commit()
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(store_url) as conn:
            conn.execute(f"INSERT INTO events ({columns}) VALUES ({', '.join(['%s'] * 9)})", values)


def _integrity_error(store_url: str) -> type:
    if store_url.startswith("sqlite"):
        return sqlite3.IntegrityError
    import psycopg

    return psycopg.errors.IntegrityError


def test_the_database_refuses_an_event_a_detached_row_misplaces(store: EventStore, store_url: str) -> None:
    """A detached row (partial history) at index 6 names ``$x`` as its prev: ``$x`` can only
    be stored at index 5, also by raw SQL (the link trigger of schema version 2)."""
    fill(store, ROOM, 3)
    store.insert_known_many([row(ROOM, 6, prev="$x")])
    with pytest.raises(_integrity_error(store_url)):
        _raw_insert(store_url, (ROOM, 3, "$x", eid(ROOM, 2), 2, "org.example.msg", None, ALICE, b"raw"))
    assert store.index_of(ROOM, "$x") is None
    # A second detached row naming the same prev is refused too (the partial unique index).
    with pytest.raises(_integrity_error(store_url)):
        _raw_insert(store_url, (ROOM, 9, "$y", "$x", None, "org.example.msg", None, ALICE, b"raw"))
    # At index 5 it completes the link, through the store.
    store.insert_known_many([row(ROOM, 4), row(ROOM, 5, event_id="$x")])
    assert store.index_of(ROOM, "$x") == 5
    assert store.gaps(ROOM) == [Gap(3, 3, eid(ROOM, 4))]


def test_a_schema_version_1_database_still_works(tmp_path) -> None:
    """Version 1 had ``UNIQUE (room_id, prev_event_id)`` on every row and a queue row per
    entry; such a database opens (migrated to version 3: its queued entries become runs, in
    order, and its events table is rebuilt without version 1's index), and appends and
    refuses forks as before."""
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE events (
            room_id TEXT NOT NULL, idx INTEGER NOT NULL CHECK (idx >= 0),
            event_id TEXT NOT NULL CHECK (event_id <> ''), prev_event_id TEXT NOT NULL,
            prev_idx INTEGER CHECK (prev_idx = idx - 1), type TEXT NOT NULL, state_key TEXT,
            sender TEXT NOT NULL, event_bytes BLOB NOT NULL,
            PRIMARY KEY (room_id, idx), UNIQUE (room_id, event_id),
            UNIQUE (room_id, prev_event_id), UNIQUE (room_id, idx, event_id),
            CHECK ((idx = 0 AND prev_event_id = '' AND prev_idx IS NULL)
                   OR (idx > 0 AND prev_event_id <> '')),
            FOREIGN KEY (room_id, prev_idx, prev_event_id) REFERENCES events (room_id, idx, event_id));
        INSERT INTO events VALUES ('!room:hub.example', 0, '$ev0-room', '', NULL, 'm.room.create', '',
                                   '@alice:hub.example', x'00');
        CREATE TABLE outbox (queue_id INTEGER PRIMARY KEY AUTOINCREMENT, destination TEXT NOT NULL,
            room_id TEXT NOT NULL, event_id TEXT NOT NULL, idx INTEGER NOT NULL);
        INSERT INTO outbox (destination, room_id, event_id, idx)
            VALUES ('b.example', '!room:hub.example', '$ev0-room', 0);
    """)
    conn.close()
    with open_store(f"sqlite://{path}") as opened:
        assert opened.latest(ROOM) == (0, eid(ROOM, 0))
        assert [q.event_id for q in opened.pending("b.example")] == [eid(ROOM, 0)]
        opened.append_many([row(ROOM, i, destinations=("b.example",)) for i in range(1, 4)])
        with pytest.raises(ChainConflictError):
            opened.append(*row(ROOM, 4, prev=eid(ROOM, 1)))
        assert opened.latest(ROOM) == (3, eid(ROOM, 3))
        assert [q.event_id for q in opened.pending("b.example")] == [eid(ROOM, i) for i in range(4)]
        assert opened.index_of(ROOM, eid(ROOM, 0)) == 0 and opened.get_event(ROOM, eid(ROOM, 2)) is not None
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone() == ("3",)
    # The rebuilt table's foreign key names itself, not the table it was built as.
    (table_sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()
    assert "events_new" not in table_sql and "REFERENCES" in table_sql
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'outbox'").fetchone() is None
    conn.close()


# --- batches ---------------------------------------------------------------------------------


def test_append_many_is_all_or_nothing(store: EventStore) -> None:
    fill(store, ROOM, 2)
    before = snapshot(store, ROOM)
    batch = [row(ROOM, 2, destinations=("b.example",)), row(OTHER, 0), row(ROOM, 3),
             row(ROOM, 4, prev="$wrong")]
    with pytest.raises(ChainConflictError) as caught:
        store.append_many(batch)
    assert caught.value.index == 4
    assert snapshot(store, ROOM) == before
    assert store.latest(OTHER) is None and store.pending("b.example") == []
    # The same batch without the bad row goes in whole.
    store.append_many(batch[:3])
    assert store.latest(ROOM) == (3, eid(ROOM, 3)) and store.latest(OTHER) == (0, eid(OTHER, 0))
    store.append_many([])


def test_append_stream_commits_all_parts_at_once(store: EventStore) -> None:
    fill(store, ROOM, 2)
    seen_inside = []
    with store.append_stream([ROOM]) as put:
        put([row(ROOM, 2, destinations=("b.example",)), row(ROOM, 3)])
        put([row(ROOM, 4)])
        put([])
        # Another thread reading meanwhile sees the chain before or after, never a part.
        reader = threading.Thread(target=lambda: seen_inside.append(store.latest(ROOM)))
        reader.start()
    reader.join(timeout=30)
    assert seen_inside[0] in [(1, eid(ROOM, 1)), (4, eid(ROOM, 4))]
    assert store.latest(ROOM) == (4, eid(ROOM, 4))
    assert [q.event_id for q in store.pending("b.example")] == [eid(ROOM, 2)]


def test_append_stream_conflict_in_a_later_part_stores_nothing(store: EventStore) -> None:
    fill(store, ROOM, 2)
    before = snapshot(store, ROOM)
    with pytest.raises(ChainConflictError) as caught:
        with store.append_stream([ROOM]) as put:
            put([row(ROOM, 2, destinations=("b.example",)), row(ROOM, 3)])
            put([row(ROOM, 4, prev="$wrong"), row(ROOM, 5)])
    assert caught.value.index == 4  # named, as append_many does
    assert snapshot(store, ROOM) == before and store.pending("b.example") == []
    with store.append_stream([ROOM]) as put:  # the store is usable afterwards
        put([row(ROOM, 2)])
    assert store.latest(ROOM) == (2, eid(ROOM, 2))


def test_append_stream_rolls_back_when_the_caller_fails(store: EventStore) -> None:
    fill(store, ROOM, 2)
    before = snapshot(store, ROOM)
    with pytest.raises(KeyError):
        with store.append_stream([ROOM]) as put:
            put([row(ROOM, 2), row(ROOM, 3)])
            raise KeyError("the caller's own failure")
    assert snapshot(store, ROOM) == before


def test_append_stream_refuses_use_of_the_store_by_its_own_thread(store: EventStore) -> None:
    """The writer holds the store until the end of the block: a read from the block's thread
    would wait for itself, so it is refused at once and the stream rolls back."""
    fill(store, ROOM, 2)
    with pytest.raises(RuntimeError, match="append_stream"):
        with store.append_stream([ROOM]) as put:
            put([row(ROOM, 2)])
            store.latest(ROOM)
    assert store.latest(ROOM) == (1, eid(ROOM, 1))


def test_concurrent_threads_on_one_store_keep_one_chain(store: EventStore) -> None:
    fill(store, ROOM, 1)
    acked: List[str] = []
    errors: List[BaseException] = []

    def writer(name: str) -> None:
        try:
            for attempt in range(400):
                if len([a for a in acked if a.startswith(f"${name}")]) == 20:
                    return
                index, prev = store.latest(ROOM)  # type: ignore[misc]
                event_id = f"${name}-{attempt}"
                try:
                    store.append(ROOM, index + 1, event_id, prev, b"x", "org.example.msg", None, ALICE)
                except ChainConflictError:
                    continue
                acked.append(event_id)
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert len(acked) == 80 and store.count(ROOM) == 81
    for event_id in acked:
        assert store.index_of(ROOM, event_id) is not None


# --- streaming -------------------------------------------------------------------------------


def test_iter_events_streams_in_bounded_batches(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(store, ROOM, 1050)
    fetched: List[int] = []
    real_fetch = store._fetch  # type: ignore[attr-defined]

    def counting_fetch(sql: str, params):  # type: ignore[no-untyped-def]
        result = real_fetch(sql, params)
        fetched.append(len(result))
        return result

    monkeypatch.setattr(store, "_fetch", counting_fetch)
    stream = store.iter_events(ROOM, batch=100)
    assert next(stream) == (0, row(ROOM, 0).event_bytes)
    assert fetched == [100]  # lazily: only the first batch was read
    # No lock or transaction is held between batches: writing mid-stream works.
    store.append(*row(ROOM, 1050))
    rest = list(stream)
    assert [i for i, _ in rest] == list(range(1, 1051))
    assert max(fetched) <= 100
    assert rest[-1] == (1050, row(ROOM, 1050).event_bytes)


def test_iter_events_ranges(store: EventStore) -> None:
    fill(store, ROOM, 30)
    assert [i for i, _ in store.iter_events(ROOM, start=10, end=20, batch=3)] == list(range(10, 20))
    assert [i for i, _ in store.iter_events(ROOM, start=25, batch=5)] == list(range(25, 30))
    assert list(store.iter_events(ROOM, start=30)) == []
    assert list(store.iter_events(ROOM, start=5, end=5)) == []
    assert list(store.iter_events(OTHER)) == []
    with pytest.raises(ValueError):
        list(store.iter_events(ROOM, batch=0))


# --- state -----------------------------------------------------------------------------------


def test_get_state_event_returns_the_latest(store: EventStore) -> None:
    fill(store, ROOM, 1)
    events = [
        row(ROOM, 1, type="m.room.name", state_key="", data=b"name-1"),
        row(ROOM, 2, type="m.room.user", state_key="@bob:b.example", data=b"bob-invite"),
        row(ROOM, 3, type="m.room.name", state_key="", data=b"name-2"),
        row(ROOM, 4, type="m.room.user", state_key="@carol:c.example", data=b"carol"),
        row(ROOM, 5, type="m.room.name", state_key=None, data=b"not-state"),  # same type, no key
        row(ROOM, 6, type="m.room.user", state_key="@bob:b.example", data=b"bob-join"),
    ]
    store.append_many(events)
    assert store.get_state_event(ROOM, "m.room.name", "") == b"name-2"
    assert store.get_state_event(ROOM, "m.room.user", "@bob:b.example") == b"bob-join"
    assert store.get_state_event(ROOM, "m.room.user", "@carol:c.example") == b"carol"
    assert store.get_state_event(ROOM, "m.room.create", "") == row(ROOM, 0).event_bytes
    assert store.get_state_event(ROOM, "m.room.topic", "") is None
    assert store.get_state_event(ROOM, "m.room.user", "@dave:d.example") is None
    assert store.get_state_event(OTHER, "m.room.name", "") is None


# --- partial histories (followers) -----------------------------------------------------------


def test_follower_keeps_create_and_recent_then_backfills(store: EventStore) -> None:
    full = [row(ROOM, i) for i in range(20)]
    store.append(*full[0])
    store.insert_known_many(full[15:18])  # recent events, not contiguous with the create
    assert store.gaps(ROOM) == [Gap(1, 14, eid(ROOM, 15))]
    assert store.latest(ROOM) == (17, eid(ROOM, 17)) and store.count(ROOM) == 4
    # Deliveries continue the recent part with plain appends.
    store.append(*full[18])
    with pytest.raises(ChainConflictError):
        store.append(*full[13])  # its predecessor (12) is missing: append needs it
    # Backfill newest first, in two overlapping pages, the way a follower pages backwards.
    store.insert_known_many(reversed(full[8:16]))
    assert store.gaps(ROOM) == [Gap(1, 7, eid(ROOM, 8))]
    store.insert_known_many(full[1:10])
    assert store.gaps(ROOM) == []
    store.append(*full[19])
    assert list(store.iter_events(ROOM)) == [(r.index, r.event_bytes) for r in full]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(row(ROOM, 9, event_id="$intruder"), id="not-the-successors-prev"),
        pytest.param(row(ROOM, 6, prev="$not-event-5"), id="wrong-prev-of-stored-neighbour"),
        pytest.param(row(ROOM, 10, event_id="$other10"), id="index-taken"),
        pytest.param(row(ROOM, 3, prev=eid(ROOM, 10)), id="prev-stored-elsewhere"),
        pytest.param(row(ROOM, 3, event_id=eid(ROOM, 11), prev=eid(ROOM, 2)), id="id-stored-elsewhere"),
        pytest.param(row(ROOM, 3, event_id="$x", prev=eid(ROOM, 9)), id="same-prev-as-stored"),
        pytest.param(row(ROOM, 3, event_id=eid(ROOM, 9), prev=eid(ROOM, 2)), id="id-is-prev-of-another"),
    ],
)
def test_insert_known_checks_stored_neighbours(store: EventStore, bad: EventRow) -> None:
    store.append(*row(ROOM, 0))
    store.insert_known(*row(ROOM, 5)[:8])
    store.insert_known_many([row(ROOM, 10), row(ROOM, 11)])
    before = snapshot(store, ROOM), store.gaps(ROOM)
    good = row(ROOM, 1)
    with pytest.raises(ChainConflictError):
        store.insert_known_many([good, bad])  # the good row goes nowhere either
    assert (snapshot(store, ROOM), store.gaps(ROOM)) == before
    assert store.index_of(ROOM, good.event_id) is None


def test_insert_known_is_idempotent_for_stored_events(store: EventStore) -> None:
    fill(store, ROOM, 5)
    store.insert_known_many([row(ROOM, i) for i in range(5)])
    assert store.count(ROOM) == 5 and store.gaps(ROOM) == []


def test_gaps_when_the_create_event_is_missing(store: EventStore) -> None:
    store.insert_known(*row(ROOM, 4)[:8])
    store.insert_known(*row(ROOM, 7)[:8])
    assert store.gaps(ROOM) == [Gap(0, 3, eid(ROOM, 4)), Gap(5, 6, eid(ROOM, 7))]


def test_state_lookups_use_the_state_only_index(tmp_path) -> None:
    """The state index holds state events only (messages skip it on append), the STATE
    lookup uses it, and the index over every row that earlier versions made is dropped."""
    path = tmp_path / "old.db"
    with open_store(f"sqlite://{path}") as opened:
        opened.append_many([row(ROOM, i) for i in range(0, 3)])
    conn = sqlite3.connect(path)
    conn.execute("CREATE INDEX events_by_state ON events (room_id, type, state_key, idx)")
    conn.commit()
    conn.close()
    with open_store(f"sqlite://{path}") as opened:
        assert opened.get_state_event(ROOM, "m.room.create", "") == row(ROOM, 0).event_bytes
    conn = sqlite3.connect(path)
    indexes = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "events_state_by_key" in indexes and "events_by_state" not in indexes
    plan = " ".join(str(r) for r in conn.execute(
        "EXPLAIN QUERY PLAN SELECT event_bytes FROM events WHERE room_id = ? AND type = ? "
        "AND state_key = ? ORDER BY idx DESC LIMIT 1", (ROOM, "m.room.create", "")))
    assert "events_state_by_key" in plan
    conn.close()
