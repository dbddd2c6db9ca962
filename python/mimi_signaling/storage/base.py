"""The SQL event store shared by the SQLite and PostgreSQL backends.

All SQL lives here, written once with ``?`` placeholders and ``{blob}``-style type slots; a
backend supplies a ``Dialect`` (the differences as data) and four small hooks: how to run a
write transaction, a read, how to lock rooms inside a transaction, and which exceptions are
constraint violations.

How the chain stays linear, by the database alone:
- ``PRIMARY KEY (room_id, idx)``: one event per index, so two writers cannot both extend
  the same tip;
- an event is stored once: a ``BEFORE INSERT`` trigger (``LINK_VIOLATIONS``) refuses a row
  whose room already holds its event ID, found through ``events_by_key``;
- a CHECK ties index 0 to the empty prev and every other index to a non-empty one;
- ``FOREIGN KEY (room_id, prev_idx, prev_event_id) REFERENCES events (room_id, idx,
  event_id)`` with ``prev_idx = idx - 1``: the predecessor must be stored and be the event the
  row names.  ``append`` always sets ``prev_idx``.  ``insert_known`` leaves it NULL (the
  foreign key is then not checked, by SQL's MATCH SIMPLE rule) only while the predecessor is
  missing, and every write sets it on the successor it completes, which checks that link.
  An attached row's successor can only be the row at ``idx + 1``, one by the primary key;
- detached rows (``prev_idx IS NULL``, partial histories only) are checked by a unique
  partial index (two detached rows cannot name the same prev) and by the same trigger: a
  detached row's prev must not be stored (it would be at ``idx - 1``, and the row attached,
  or elsewhere: a fork), and no stored detached row may name a new row as its prev unless it
  sits right after it.

Lookups by event ID go through ``id_key`` (and ``prev_key`` for a row's prev), a 64-bit key
of the ID (``event_key``), indexed by ``events_by_key``: event IDs are hashes, so any index
over them takes its keys at random places and an append dirties about one of its pages
per event; the smaller its entries (8 bytes against the ~80 of room and event ID text), the
fewer pages there are to dirty.  A lookup compares the room and the whole ID as well.

Schema history: version 1 had ``UNIQUE (room_id, prev_event_id)`` on every row, version 2
``UNIQUE (room_id, event_id)`` (the same random-key cost, twice as large as
``events_by_key``) and a fan-out queue row per entry and destination; version 3 has the key
and the queue as runs (``outbox_runs``).  Opening a version 1 or 2 database migrates it to 3
in one transaction (``_migrate``: the events table is rebuilt, the queue's entries become
runs in queue order); an older build refuses a version 3 database.

The constraints, the primary key and the foreign key hold whatever isolation level or process
writes, so appends are safe by the database alone.  The trigger reads other rows, so on
PostgreSQL it sees only committed ones: writers of one room are serialised (SQLite: the
database write lock; PostgreSQL: a per-room advisory lock, taken by every write of this
store) so that its checks see each other's rows.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import AbstractSet, Any, Callable, ClassVar, Iterator, Optional, Sequence

from .._core import _event_keys
from ..node.store import (
    ROLES,
    ChainConflictError,
    EventNotStoredError,
    EventRow,
    EventStore,
    Gap,
    KeptEvent,
    QueuedEvent,
)

M_ROOM_CREATE = "m.room.create"

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 3
#: Versions this code opens: 1 and 2 are migrated to 3 on open (the module docstring).
COMPATIBLE_SCHEMA_VERSIONS = (1, 2, 3)
#: A queue entry's ID is its run's position shifted by this, plus its offset in the run.
_ENTRY_SHIFT = 32
_OFFSET_MASK = (1 << _ENTRY_SHIFT) - 1

# Markers of append_stream's part queue.
_END_OF_STREAM = object()
_ABORT_STREAM = object()


class _StreamAborted(Exception):
    """The caller's block raised: roll the stream's transaction back."""


# Larger than any index a room can reach; stands for "no upper bound" in range queries.
_NO_END = 2**62


@dataclass(frozen=True)
class Dialect:
    """What differs between the SQL of two backends."""

    name: str
    placeholder: str  # "?" or "%s"
    bigint: str  # 64-bit integer column type
    blob: str  # byte string column type
    serial_pk: str  # auto-increment primary key that never reuses a value
    # (condition, message) pairs -> statements creating a BEFORE INSERT trigger on events that
    # raises a constraint violation when a condition (over NEW) holds; idempotent.
    link_triggers: Callable[[Sequence[tuple[str, str]]], list[str]]
    # A query with one parameter, a table name: a row when that table exists.
    table_exists: str
    # SQL of ``event_key`` over a text expression (for migrations; it must equal the Python).
    event_key: Callable[[str], str]

    def render(self, sql: str) -> str:
        sql = sql.format(bigint=self.bigint, blob=self.blob, serial_pk=self.serial_pk)
        return sql.replace("?", self.placeholder)


_EVENTS_TABLE = """CREATE TABLE IF NOT EXISTS events (
        room_id TEXT NOT NULL,
        idx {bigint} NOT NULL CHECK (idx >= 0),
        event_id TEXT NOT NULL CHECK (event_id <> ''),
        prev_event_id TEXT NOT NULL,
        prev_idx {bigint} CHECK (prev_idx = idx - 1),
        type TEXT NOT NULL,
        state_key TEXT,
        sender TEXT NOT NULL,
        event_bytes {blob} NOT NULL,
        id_key {bigint} NOT NULL,
        prev_key {bigint},
        PRIMARY KEY (room_id, idx),
        UNIQUE (room_id, idx, event_id),
        CHECK ((idx = 0 AND prev_event_id = '' AND prev_idx IS NULL)
               OR (idx > 0 AND prev_event_id <> '')),
        FOREIGN KEY (room_id, prev_idx, prev_event_id)
            REFERENCES events (room_id, idx, event_id)
    )"""


def _events_table(name: str) -> str:
    """The events table, named ``name`` while a migration builds it beside the old one."""
    return _EVENTS_TABLE.replace(" events (", f" {name} (")


_QUEUE_TABLES = [
    # The fan-out queue as runs: one row per run of consecutive events of one room queued
    # for one destination (a hub's group is usually one run per destination), not one row
    # per event and destination.  ``queue_pos`` orders a destination's runs (allocated from
    # outbox_positions, never reused); an ack that leaves a hole splits a run into rows that
    # keep its ``queue_pos`` and ``base_idx`` (the run's first index when queued), so every
    # entry keeps its ID: ``queue_pos << 32 | (idx - base_idx)`` (``_entry_id``).  Replaces
    # ``outbox``, one row per entry, of schema versions 1 and 2 (``_migrate``).
    """CREATE TABLE IF NOT EXISTS outbox_runs (
        destination TEXT NOT NULL,
        queue_pos {bigint} NOT NULL,
        first_idx {bigint} NOT NULL,
        last_idx {bigint} NOT NULL,
        base_idx {bigint} NOT NULL,
        room_id TEXT NOT NULL,
        PRIMARY KEY (destination, queue_pos, first_idx),
        CHECK (base_idx <= first_idx AND first_idx <= last_idx
               AND last_idx - base_idx < 4294967296)
    )""",
    # The queue positions' counter: a row is inserted (and deleted) per run for its serial.
    """CREATE TABLE IF NOT EXISTS outbox_positions (
        queue_pos {serial_pk}
    )""",
]


_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS rooms (
        room_id TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('hub', 'follower'))
    )""",
    _EVENTS_TABLE,
    # Lookups by event ID go through ``id_key`` (``event_key``: 8 bytes, not the ~80 of room
    # and event ID), the only index with random keys: each append dirties about one page of
    # it, so its size is most of what an append costs in a large room.
    """CREATE INDEX IF NOT EXISTS events_by_key ON events (id_key)""",
    # State events only (messages have no state key): the STATE lookup's ``state_key = ?``
    # implies the index's condition, and the appends of messages skip it.  Replaces
    # ``events_by_state`` over every row, which earlier versions made (dropped here once
    # this one exists; an older build re-creates it, which only costs speed).
    """CREATE INDEX IF NOT EXISTS events_state_by_key
        ON events (room_id, type, state_key, idx) WHERE state_key IS NOT NULL""",
    """DROP INDEX IF EXISTS events_by_state""",
    # Detached rows only: small, and empty on a hub.
    """CREATE UNIQUE INDEX IF NOT EXISTS events_detached_by_prev
        ON events (room_id, prev_event_id) WHERE prev_idx IS NULL""",
    *_QUEUE_TABLES,
    # Partial histories (node/store.py): state events at unknown positions, one checkpoint
    # event per (type, state_key).
    """CREATE TABLE IF NOT EXISTS kept_events (
        room_id TEXT NOT NULL,
        event_id TEXT NOT NULL CHECK (event_id <> ''),
        type TEXT NOT NULL,
        state_key TEXT NOT NULL,
        in_state INTEGER NOT NULL CHECK (in_state IN (0, 1)),
        event_bytes {blob} NOT NULL,
        PRIMARY KEY (room_id, event_id)
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS kept_checkpoint
        ON kept_events (room_id, type, state_key) WHERE in_state = 1""",
    """CREATE TABLE IF NOT EXISTS server_keys (
        server_name TEXT PRIMARY KEY,
        keys_bytes {blob} NOT NULL
    )""",
]


# What a constraint cannot express (module docstring): an event stored once (a unique index
# over event IDs would be the large random-key index that ``id_key`` avoids), and the links of
# detached rows.  The SQL condition is shared; each backend wraps it in its own trigger syntax.
_STORED_TWICE = """EXISTS (
        SELECT 1 FROM events s WHERE s.id_key = NEW.id_key AND s.room_id = NEW.room_id
            AND s.event_id = NEW.event_id)"""
_DETACHED_PREV_IS_STORED = """NEW.prev_idx IS NULL AND NEW.idx > 0 AND EXISTS (
        SELECT 1 FROM events s WHERE s.id_key = NEW.prev_key AND s.room_id = NEW.room_id
            AND s.event_id = NEW.prev_event_id)"""
_DETACHED_SUCCESSOR_ELSEWHERE = """EXISTS (
        SELECT 1 FROM events s WHERE s.room_id = NEW.room_id AND s.prev_idx IS NULL
            AND s.prev_event_id = NEW.event_id AND s.idx <> NEW.idx + 1)"""
LINK_VIOLATIONS = (
    (_DETACHED_PREV_IS_STORED, "chain conflict: the prev event of a detached event is stored"),
    (_DETACHED_SUCCESSOR_ELSEWHERE, "chain conflict: a stored event names this one as its prev elsewhere"),
    (_STORED_TWICE, "chain conflict: the event is stored already"),
)


def event_key(event_id: str) -> int:
    """The ``id_key`` of an event ID: the first 8 bytes of the SHA-256 of its UTF-8, as a
    signed big-endian 64-bit integer (the core's ``_event_keys``, which takes a batch;
    ``Dialect.event_key`` computes the same in SQL).  A lookup also compares the room and the
    whole ID, so keys that collide only cost a row read."""
    return _event_keys([event_id])[0]


class _Sql:
    """Every statement, rendered once for a dialect."""

    INSERT_EVENT = """INSERT INTO events
        (room_id, idx, event_id, prev_event_id, prev_idx, type, state_key, sender, event_bytes,
         id_key, prev_key)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
    # Completes the link of a detached successor; the foreign key then checks it.
    ATTACH_SUCCESSOR = """UPDATE events SET prev_idx = idx - 1
        WHERE room_id = ? AND idx = ? AND prev_idx IS NULL"""
    ROW_AT = "SELECT event_id FROM events WHERE room_id = ? AND idx = ?"
    GET_EVENT = "SELECT event_bytes FROM events WHERE id_key = ? AND room_id = ? AND event_id = ?"
    GET_BY_INDEX = "SELECT event_bytes FROM events WHERE room_id = ? AND idx = ?"
    INDEX_OF = "SELECT idx FROM events WHERE id_key = ? AND room_id = ? AND event_id = ?"
    # Only detached rows can name an unstored event as prev (an attached row's prev is stored).
    SUCCESSOR_OF = """SELECT idx FROM events
        WHERE room_id = ? AND prev_event_id = ? AND prev_idx IS NULL"""
    LATEST = "SELECT idx, event_id FROM events WHERE room_id = ? ORDER BY idx DESC LIMIT 1"
    RANGE = """SELECT idx, event_bytes FROM events
        WHERE room_id = ? AND idx >= ? AND idx < ? ORDER BY idx LIMIT ?"""
    COUNT = "SELECT COUNT(*) FROM events WHERE room_id = ?"
    ROOMS = "SELECT room_id FROM rooms UNION SELECT DISTINCT room_id FROM events ORDER BY 1"
    STATE = """SELECT event_bytes FROM events
        WHERE room_id = ? AND type = ? AND state_key = ? ORDER BY idx DESC LIMIT 1"""
    # For each detached event, the highest stored index below it (the gap's lower edge).
    GAPS = """SELECT e.idx, e.event_id,
            (SELECT MAX(b.idx) FROM events b WHERE b.room_id = e.room_id AND b.idx < e.idx)
        FROM events e WHERE e.room_id = ? AND e.idx > 0 AND e.prev_idx IS NULL
        ORDER BY e.idx"""
    NEW_QUEUE_POS = "INSERT INTO outbox_positions DEFAULT VALUES"
    DROP_QUEUE_POS = "DELETE FROM outbox_positions WHERE queue_pos = ?"
    PUT_RUN = """INSERT INTO outbox_runs (destination, queue_pos, first_idx, last_idx, base_idx, room_id)
        VALUES (?, ?, ?, ?, ?, ?)"""
    # Every run can hold at least one entry, so ``limit`` runs are enough for ``limit`` entries.
    RUNS = """SELECT queue_pos, base_idx, first_idx, last_idx, room_id FROM outbox_runs
        WHERE destination = ? ORDER BY queue_pos, first_idx LIMIT ?"""
    RUN_EVENTS = """SELECT idx, event_id, event_bytes FROM events
        WHERE room_id = ? AND idx >= ? AND idx <= ? ORDER BY idx LIMIT ?"""
    RUNS_AT = """SELECT base_idx, first_idx, last_idx, room_id FROM outbox_runs
        WHERE destination = ? AND queue_pos = ?"""
    DROP_RUN = "DELETE FROM outbox_runs WHERE destination = ? AND queue_pos = ? AND first_idx = ?"
    QUEUE_LENGTH = "SELECT COALESCE(SUM(last_idx - first_idx + 1), 0) FROM outbox_runs WHERE destination = ?"
    DESTINATIONS = "SELECT DISTINCT destination FROM outbox_runs ORDER BY destination"
    OLD_OUTBOX = "SELECT destination, room_id, idx FROM outbox ORDER BY queue_id"
    PUT_KEYS = """INSERT INTO server_keys (server_name, keys_bytes) VALUES (?, ?)
        ON CONFLICT (server_name) DO UPDATE SET keys_bytes = excluded.keys_bytes"""
    GET_KEYS = "SELECT keys_bytes FROM server_keys WHERE server_name = ?"
    PUT_ROOM = """INSERT INTO rooms (room_id, role) VALUES (?, ?)
        ON CONFLICT (room_id) DO UPDATE SET role = excluded.role"""
    ROOM_ROLE = "SELECT role FROM rooms WHERE room_id = ?"
    GET_KEPT = "SELECT event_bytes FROM kept_events WHERE room_id = ? AND event_id = ?"
    IS_PARTIAL = "SELECT 1 FROM kept_events WHERE room_id = ? LIMIT 1"
    # The create event first (the only kept event without prev), then by event ID.
    KEPT = """SELECT event_id, type, state_key, in_state, event_bytes FROM kept_events
        WHERE room_id = ? AND in_state >= ? ORDER BY (type = 'm.room.create') DESC, event_id"""
    UNSET_CHECKPOINT = """UPDATE kept_events SET in_state = 0
        WHERE room_id = ? AND type = ? AND state_key = ? AND in_state = 1"""
    PUT_CHECKPOINT = """INSERT INTO kept_events (room_id, event_id, type, state_key, in_state, event_bytes)
        VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (room_id, event_id) DO UPDATE SET in_state = 1"""
    PUT_AUTH = """INSERT INTO kept_events (room_id, event_id, type, state_key, in_state, event_bytes)
        VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT (room_id, event_id) DO NOTHING"""
    OLDEST = "SELECT idx, event_id FROM events WHERE room_id = ? ORDER BY idx LIMIT 1"
    DETACH = "UPDATE events SET prev_idx = NULL WHERE room_id = ? AND idx = ?"
    DELETE_BELOW = "DELETE FROM events WHERE room_id = ? AND idx < ?"
    ROOM_HAS_EVENTS = "SELECT 1 FROM events WHERE room_id = ? LIMIT 1"
    GET_META = "SELECT value FROM meta WHERE name = ?"
    PUT_META = "INSERT INTO meta (name, value) VALUES (?, ?)"
    SET_META = "UPDATE meta SET value = ? WHERE name = ?"

    def __init__(self, dialect: Dialect) -> None:
        for name in dir(_Sql):
            if name.isupper():
                setattr(self, name, dialect.render(getattr(_Sql, name)))
        self.SCHEMA = [dialect.render(statement) for statement in _SCHEMA]
        self.QUEUE_TABLES = [dialect.render(statement) for statement in _QUEUE_TABLES]
        self.SCHEMA += dialect.link_triggers(LINK_VIOLATIONS)


class SqlEventStore(EventStore):
    """``EventStore`` over a DB-API connection; subclasses supply the dialect and hooks."""

    dialect: ClassVar[Dialect]
    _conn: Any  # the backend's DB-API connection

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sql = _Sql(self.dialect)
        self._closed = False
        # append_stream's writer thread, made on first use; the thread that owns an open
        # stream must not use the store otherwise (it would wait for itself).
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._stream_owners: set[int] = set()

    # --- backend hooks ------------------------------------------------------------------

    @abc.abstractmethod
    def _transaction(self, durable: bool = True) -> contextlib.AbstractContextManager[Any]:
        """Begin a write transaction and yield a cursor; commit on exit, roll back on error.
        ``durable=False``: the commit need not be on disk when it returns (it is, with the
        next durable commit; a crash before may undo it, never corrupt the store).

        Called with ``self._lock`` held.
        """

    @abc.abstractmethod
    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run one read statement in its own (auto-committed) transaction."""

    @abc.abstractmethod
    def _lock_rooms(self, cursor: Any, room_ids: Sequence[str]) -> None:
        """Serialise writers of these rooms until the transaction ends (sorted order)."""

    @abc.abstractmethod
    def _is_constraint_error(self, exc: BaseException) -> bool: ...

    # --- shared plumbing ----------------------------------------------------------------

    def _check_not_streaming(self) -> None:
        if threading.get_ident() in self._stream_owners:
            raise RuntimeError("the store was used inside an append_stream block of the same thread")

    @contextlib.contextmanager
    def _write(self, room_ids: Sequence[str] = (), *, durable: bool = True) -> Iterator[Any]:
        self._check_not_streaming()
        with self._lock:
            self._check_open()
            with self._transaction(durable) as cursor:
                if room_ids:
                    self._lock_rooms(cursor, sorted(set(room_ids)))
                yield cursor

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        self._check_not_streaming()
        with self._lock:
            self._check_open()
            return self._fetch(sql, params)

    def _read_queue(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """A read of the fan-out's queue; a backend may run it beside a write (SQLite)."""
        return self._read(sql, params)

    def _read_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        rows = self._read(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    def _create_schema(self) -> None:
        """Create missing tables, migrating an older schema first (called by subclasses)."""
        with self._write() as cursor:
            self._lock_schema(cursor)
            cursor.execute(self._sql.SCHEMA[0])  # meta
            cursor.execute(self._sql.GET_META, ("schema_version",))
            row = cursor.fetchone()
            version = int(row[0]) if row is not None else None
            if version is not None and version not in COMPATIBLE_SCHEMA_VERSIONS:
                raise RuntimeError(
                    f"database schema version {version} is not a version this software "
                    f"uses {COMPATIBLE_SCHEMA_VERSIONS}; migrate or use another database"
                )
            if version is not None and version < SCHEMA_VERSION:
                self._migrate(cursor, version)
            for statement in self._sql.SCHEMA:
                cursor.execute(statement)
            if version is None:
                cursor.execute(self._sql.PUT_META, ("schema_version", str(SCHEMA_VERSION)))

    def _migrate(self, cursor: Any, version: int) -> None:
        """Versions 1 and 2 -> 3, in the schema's transaction (all or nothing): the events
        table is rebuilt with ``id_key``/``prev_key`` and without the unique index over event
        IDs (and version 1's over prev event IDs); the queue's rows (one per entry) become
        runs, in queue order.  The schema then makes the indexes and triggers."""
        started = time.monotonic()
        render, key = self.dialect.render, self.dialect.event_key
        cursor.execute(render(_events_table("events_new")))
        cursor.execute(render(f"""INSERT INTO events_new
            (room_id, idx, event_id, prev_event_id, prev_idx, type, state_key, sender, event_bytes,
             id_key, prev_key)
            SELECT room_id, idx, event_id, prev_event_id, prev_idx, type, state_key, sender, event_bytes,
                {key("event_id")}, CASE WHEN prev_event_id = '' THEN NULL ELSE {key("prev_event_id")} END
            FROM events ORDER BY room_id, idx"""))
        moved = cursor.rowcount
        for statement in self._sql.QUEUE_TABLES:
            cursor.execute(statement)
        cursor.execute(render(self.dialect.table_exists), ("outbox",))
        queued = 0
        if cursor.fetchone() is not None:
            cursor.execute(self._sql.OLD_OUTBOX)
            entries = [(destination, room_id, int(idx)) for destination, room_id, idx in cursor.fetchall()]
            self._put_runs(cursor, entries)
            queued = len(entries)
            cursor.execute("DROP TABLE outbox")
        cursor.execute("DROP TABLE events")  # with its indexes and triggers
        cursor.execute("ALTER TABLE events_new RENAME TO events")
        cursor.execute(self._sql.SET_META, (str(SCHEMA_VERSION), "schema_version"))
        logger.warning(
            "database schema version %d migrated to %d in %.1f s: %d events (looked up by a "
            "64-bit key now), %d queued fan-out entries (as runs)",
            version, SCHEMA_VERSION, time.monotonic() - started, moved, queued,
        )

    def _lock_schema(self, cursor: Any) -> None:
        """Serialise concurrent schema creation (PostgreSQL); SQLite's write lock suffices."""

    # --- writing events -----------------------------------------------------------------

    def append_many(self, rows: Sequence[EventRow]) -> None:
        rows = [EventRow(*row) for row in rows]
        if not rows:
            return
        rooms = [row.room_id for row in rows]
        try:
            with self._write(rooms) as cursor:
                self._append_batch(cursor, rows)
        except Exception as exc:
            if not self._is_constraint_error(exc):
                raise
            self._replay_rows(rooms, rows)

    def _replay_rows(self, room_ids: Sequence[str], rows: Sequence[EventRow]) -> None:
        """After a batch conflicted: a batched statement does not say which row failed, so
        replay the rows one by one in a new transaction, which names it (or, should a
        concurrent writer have supplied a missing predecessor meanwhile, stores them)."""
        logger.debug("batch of %d rows conflicted; replaying row by row", len(rows))
        with self._write(room_ids) as cursor:
            for row, keys in zip(rows, _row_keys(rows)):
                self._insert(cursor, row, row.index - 1 if row.index > 0 else None, keys)
            self._enqueue_rows(cursor, rows)

    @contextlib.contextmanager
    def append_stream(self, room_ids: Sequence[str]) -> Iterator[Callable[[Sequence[EventRow]], None]]:
        """``EventStore.append_stream``: a writer thread holds the store (its lock and one
        transaction) and inserts each part as it arrives; the caller's thread computes the
        next part meanwhile (the database releases the GIL while a statement runs)."""
        parts: queue.SimpleQueue[Any] = queue.SimpleQueue()
        received: list[EventRow] = []

        def write() -> None:
            part: Any = None
            try:
                with self._write(room_ids) as cursor:
                    while (part := parts.get()) is not _END_OF_STREAM:
                        if part is _ABORT_STREAM:
                            raise _StreamAborted()
                        received.extend(part)
                        self._append_batch(cursor, part)
            except _StreamAborted:
                return
            except Exception as exc:
                # Rolled back. Take the caller's remaining parts: it only learns at the end.
                while part is not _END_OF_STREAM and part is not _ABORT_STREAM:
                    part = parts.get()
                    if isinstance(part, list):
                        received.extend(part)
                if part is _ABORT_STREAM or not self._is_constraint_error(exc):
                    raise
                self._replay_rows(room_ids, received)

        self._check_not_streaming()
        writer = self._stream_executor().submit(write)
        owner = threading.get_ident()
        self._stream_owners.add(owner)
        try:
            try:
                yield lambda rows: parts.put(list(rows))
            except BaseException:
                parts.put(_ABORT_STREAM)
                writer.exception()  # wait until the transaction is rolled back
                raise
            parts.put(_END_OF_STREAM)
            writer.result()
        finally:
            self._stream_owners.discard(owner)

    def _stream_executor(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mimi-store-writer")
            return self._executor

    def _append_batch(self, cursor: Any, rows: list[EventRow]) -> None:
        """The fast path of ``append_many``: one batched statement per table."""
        for row in rows:
            if row.index < 0:
                raise ChainConflictError(row.room_id, row.index, "negative index")
        values = [
            _insert_values(row, row.index - 1 if row.index > 0 else None, keys)
            for row, keys in zip(rows, _row_keys(rows))
        ]
        cursor.executemany(self._sql.INSERT_EVENT, values)
        # Only the last row of each run can have a detached successor stored already.
        for row, following in zip(rows, rows[1:] + [None]):
            if following is None or (following.room_id, following.index) != (
                row.room_id, row.index + 1
            ):
                cursor.execute(self._sql.ATTACH_SUCCESSOR, (row.room_id, row.index + 1))
        self._enqueue_rows(cursor, rows)

    def _enqueue_rows(self, cursor: Any, rows: Sequence[EventRow]) -> None:
        self._put_runs(
            cursor, [(destination, row.room_id, row.index) for row in rows for destination in row.destinations]
        )

    def _put_runs(self, cursor: Any, entries: Sequence[tuple[str, str, int]]) -> None:
        """Queue ``(destination, room_id, index)`` entries, in order per destination: each
        destination's consecutive indices of one room become one run (one row)."""
        runs: dict[str, list[list[Any]]] = {}  # destination -> [room_id, first, last]
        for destination, room_id, index in entries:
            queued = runs.setdefault(destination, [])
            last = queued[-1] if queued else None
            if (last is not None and last[0] == room_id and last[2] == index - 1
                    and index - last[1] < 1 << _ENTRY_SHIFT):
                last[2] = index
            else:
                queued.append([room_id, index, index])
        for destination, queued in runs.items():
            for room_id, first, last in queued:
                position = self._new_queue_pos(cursor)
                cursor.execute(self._sql.PUT_RUN, (destination, position, first, last, first, room_id))

    def _new_queue_pos(self, cursor: Any) -> int:
        cursor.execute(self._sql.NEW_QUEUE_POS)
        position = self._last_queue_pos(cursor)
        cursor.execute(self._sql.DROP_QUEUE_POS, (position,))
        return position

    def insert_known_many(self, rows: Sequence[EventRow]) -> None:
        rows = [EventRow(*row) for row in rows]
        if not rows:
            return
        with self._write([row.room_id for row in rows]) as cursor:
            self._insert_known(cursor, rows)

    def _insert_known(self, cursor: Any, rows: list[EventRow]) -> None:
        # Lowest first, so a batch that fills a gap attaches as it goes.
        rows.sort(key=lambda row: (row.room_id, row.index))
        for row, keys in zip(rows, _row_keys(rows)):
            stored = self._event_id_at(cursor, row.room_id, row.index)
            if stored == row.event_id:
                continue  # already stored: overlapping backfill
            if stored is not None:
                raise ChainConflictError(
                    row.room_id, row.index, f"index already holds {stored}"
                )
            self._check_known_links(cursor, row, keys[1])
            has_prev = row.index > 0 and (
                self._event_id_at(cursor, row.room_id, row.index - 1) is not None
            )
            self._insert(cursor, row, row.index - 1 if has_prev else None, keys)

    def _check_known_links(self, cursor: Any, row: EventRow, prev_key: int | None) -> None:
        """Links to stored events that are not direct neighbours, which the foreign key
        cannot see: the prev event stored elsewhere than ``index - 1``, or a stored event
        naming this one as its prev elsewhere than ``index + 1``."""
        checks: list[tuple[str, tuple[Any, ...], int, str]] = [
            (self._sql.SUCCESSOR_OF, (row.room_id, row.event_id), row.index + 1, "its successor")
        ]
        if prev_key is not None:
            prev = (prev_key, row.room_id, row.prev_event_id)
            checks.insert(0, (self._sql.INDEX_OF, prev, row.index - 1, "its prev event"))
        for sql, params, expected, what in checks:
            cursor.execute(sql, params)
            found = cursor.fetchone()
            if found is not None and int(found[0]) != expected:
                raise ChainConflictError(
                    row.room_id, row.index, f"{what} is stored at index {found[0]}"
                )

    def _insert(self, cursor: Any, row: EventRow, prev_idx: int | None, keys: tuple[int, int | None]) -> None:
        """Insert one row (``keys``: its ``_row_keys``) and complete a detached successor's
        link; constraint violations become ChainConflictError (the caller's transaction then
        rolls back)."""
        if row.index < 0:
            raise ChainConflictError(row.room_id, row.index, "negative index")
        try:
            cursor.execute(self._sql.INSERT_EVENT, _insert_values(row, prev_idx, keys))
            cursor.execute(self._sql.ATTACH_SUCCESSOR, (row.room_id, row.index + 1))
        except Exception as exc:
            if self._is_constraint_error(exc):
                raise ChainConflictError(row.room_id, row.index, _first_line(exc)) from exc
            raise

    def _event_id_at(self, cursor: Any, room_id: str, index: int) -> Optional[str]:
        cursor.execute(self._sql.ROW_AT, (room_id, index))
        row = cursor.fetchone()
        return row[0] if row else None

    # --- reading events -----------------------------------------------------------------

    def get_event(self, room_id: str, event_id: str) -> bytes | None:
        row = self._read_one(self._sql.GET_EVENT, (event_key(event_id), room_id, event_id))
        if row is None:
            row = self._read_one(self._sql.GET_KEPT, (room_id, event_id))
        return bytes(row[0]) if row else None

    def get_by_index(self, room_id: str, index: int) -> bytes | None:
        row = self._read_one(self._sql.GET_BY_INDEX, (room_id, index))
        return bytes(row[0]) if row else None

    def index_of(self, room_id: str, event_id: str) -> int | None:
        row = self._read_one(self._sql.INDEX_OF, (event_key(event_id), room_id, event_id))
        return int(row[0]) if row else None

    def latest(self, room_id: str) -> tuple[int, str] | None:
        row = self._read_one(self._sql.LATEST, (room_id,))
        return (int(row[0]), row[1]) if row else None

    def iter_events(
        self, room_id: str, start: int = 0, end: int | None = None, batch: int = 1000
    ) -> Iterator[tuple[int, bytes]]:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        stop = _NO_END if end is None else end
        position = max(start, 0)
        while position < stop:
            rows = self._read(self._sql.RANGE, (room_id, position, stop, batch))
            for index, event_bytes in rows:
                yield int(index), bytes(event_bytes)
            if len(rows) < batch:
                return
            position = int(rows[-1][0]) + 1

    def count(self, room_id: str) -> int:
        row = self._read_one(self._sql.COUNT, (room_id,))
        return int(row[0]) if row else 0

    def rooms(self) -> list[str]:
        return [row[0] for row in self._read(self._sql.ROOMS, ())]

    def get_state_event(self, room_id: str, type: str, state_key: str) -> bytes | None:
        row = self._read_one(self._sql.STATE, (room_id, type, state_key))
        return bytes(row[0]) if row else None

    def gaps(self, room_id: str) -> list[Gap]:
        # No stored event below a detached one: the gap reaches down to the create event.
        return [
            Gap(0 if below is None else int(below) + 1, int(index) - 1, event_id)
            for index, event_id, below in self._read(self._sql.GAPS, (room_id,))
        ]

    # --- partial histories -------------------------------------------------------------

    def start_partial(self, room_id: str, kept: Sequence[KeptEvent], rows: Sequence[EventRow]) -> None:
        rows = [EventRow(*row) for row in rows]
        if not kept or not any(k.type == M_ROOM_CREATE for k in kept):
            raise ChainConflictError(room_id, 0, "a partial history keeps the create event")
        checkpoint = [(k.type, k.state_key) for k in kept if k.in_state]
        if len(set(checkpoint)) != len(checkpoint):
            raise ChainConflictError(room_id, 0, "two checkpoint events for one (type, state_key)")
        rows.sort(key=lambda row: row.index)
        for row, following in zip(rows, rows[1:] + [None]):
            if row.room_id != room_id or row.index < 1:
                raise ChainConflictError(row.room_id, row.index, "a partial history's run starts above index 0")
            if following is not None and following.index != row.index + 1:
                raise ChainConflictError(room_id, row.index + 1, "a partial history's run is contiguous")
        with self._write([room_id]) as cursor:
            cursor.execute(self._sql.ROOM_HAS_EVENTS, (room_id,))
            if cursor.fetchone() is not None:
                raise ChainConflictError(room_id, 0, "the room already holds events")
            cursor.execute(self._sql.PUT_ROOM, (room_id, "follower"))
            self._put_kept(cursor, room_id, kept)
            self._insert_known(cursor, rows)

    def _put_kept(self, cursor: Any, room_id: str, kept: Sequence[KeptEvent]) -> None:
        try:
            # Checkpoint events last: an event both in the checkpoint and in the auth chain
            # ends up in the checkpoint.
            for k in sorted(kept, key=lambda k: k.in_state):
                if k.in_state:
                    cursor.execute(self._sql.UNSET_CHECKPOINT, (room_id, k.type, k.state_key))
                cursor.execute(
                    self._sql.PUT_CHECKPOINT if k.in_state else self._sql.PUT_AUTH,
                    (room_id, k.event_id, k.type, k.state_key, bytes(k.event_bytes)),
                )
        except Exception as exc:
            if self._is_constraint_error(exc):
                raise ChainConflictError(room_id, 0, f"kept events: {_first_line(exc)}") from exc
            raise

    def is_partial(self, room_id: str) -> bool:
        return self._read_one(self._sql.IS_PARTIAL, (room_id,)) is not None

    def kept_events(self, room_id: str, *, checkpoint_only: bool = False) -> list[KeptEvent]:
        rows = self._read(self._sql.KEPT, (room_id, 1 if checkpoint_only else 0))
        return [KeptEvent(e, t, k, bool(s), bytes(b)) for e, t, k, s, b in rows]

    def oldest(self, room_id: str) -> tuple[int, str] | None:
        row = self._read_one(self._sql.OLDEST, (room_id,))
        return (int(row[0]), row[1]) if row else None

    def prune_below(self, room_id: str, index: int, checkpoint: Sequence[KeptEvent]) -> int:
        with self._write([room_id]) as cursor:
            if self._event_id_at(cursor, room_id, index) is None:
                raise ChainConflictError(room_id, index, "pruning keeps the row at the cut, which is not stored")
            cursor.execute(self._sql.IS_PARTIAL, (room_id,))
            if cursor.fetchone() is None:
                raise ChainConflictError(room_id, index, "only a partial history is pruned")
            self._put_kept(cursor, room_id, [k._replace(in_state=True) for k in checkpoint])
            cursor.execute(self._sql.DETACH, (room_id, index))
            cursor.execute(self._sql.DELETE_BELOW, (room_id, index))
            return max(int(cursor.rowcount), 0)

    # --- fan-out queue ------------------------------------------------------------------

    def enqueue(self, destination: str, room_id: str, event_id: str, index: int) -> int:
        with self._write([room_id]) as cursor:
            if self._event_id_at(cursor, room_id, index) != event_id:
                raise EventNotStoredError(f"event {event_id} is not stored at index {index} of room {room_id}")
            position = self._new_queue_pos(cursor)
            cursor.execute(self._sql.PUT_RUN, (destination, position, index, index, index, room_id))
            return _entry_id(position, index, index)

    @abc.abstractmethod
    def _last_queue_pos(self, cursor: Any) -> int:
        """The serial that the last NEW_QUEUE_POS on this cursor assigned."""

    def pending(
        self, destination: str, limit: int = 100, exclude: AbstractSet[int] = frozenset()
    ) -> list[QueuedEvent]:
        out: list[QueuedEvent] = []
        # Two reads, not one snapshot: a run acked in between is returned once more, which
        # only repeats a delivery; stored events never change.  Each excluded entry can
        # empty at most one run, so this many runs hold ``limit`` entries if the queue does.
        runs = self._read_queue(self._sql.RUNS, (destination, limit + len(exclude)))
        for position, base, first, last, room_id in runs:
            if len(out) >= limit:
                break
            while first <= last and _entry_id(position, base, first) in exclude:
                first += 1  # the usual exclusion: a run's delivered head (its ack is coming)
            if first > last:
                continue
            # An event of a run that is not stored (pruned) is skipped, as a join would.
            for index, event_id, data in self._read_queue(
                self._sql.RUN_EVENTS, (room_id, first, last, limit - len(out) + len(exclude))
            ):
                entry = _entry_id(position, base, index)
                if entry not in exclude:
                    out.append(QueuedEvent(entry, room_id, event_id, bytes(data)))
                    if len(out) >= limit:
                        break
        return out

    def ack_entries(self, destination: str, queue_ids: Sequence[int]) -> None:
        if not queue_ids:
            return
        # Consecutive entry IDs of one position are consecutive indices of one run.
        by_position: dict[int, list[tuple[int, int]]] = {}
        for first_id, last_id in _consecutive_runs(sorted({int(q) for q in queue_ids})):
            while first_id <= last_id:
                position = first_id >> _ENTRY_SHIFT
                through = min(last_id, ((position + 1) << _ENTRY_SHIFT) - 1)
                by_position.setdefault(position, []).append((first_id & _OFFSET_MASK, through & _OFFSET_MASK))
                first_id = through + 1
        # Not durable: an ack lost in a crash only delivers its entries again, which a
        # follower ignores, so it need not wait for a disk flush (nor hold the store's writer,
        # e.g. a hub's next group commit, through one); the next durable commit flushes it.
        with self._write(durable=False) as cursor:
            # Exactly the named entries go, never a bound ("up to ID n"): a run's entries
            # commit together, but runs may commit out of order on PostgreSQL
            # (transport/delivery.py).  A fan-out batch usually acks a prefix of one run:
            # the row is replaced by what is left; a hole splits a run into rows that keep
            # its position and base, so every entry keeps its ID.
            for position, offsets in by_position.items():
                cursor.execute(self._sql.RUNS_AT, (destination, position))
                for base, first, last, room_id in cursor.fetchall():
                    acked = [(max(base + lo, first), min(base + hi, last)) for lo, hi in offsets
                             if base + lo <= last and base + hi >= first]
                    if not acked:
                        continue
                    cursor.execute(self._sql.DROP_RUN, (destination, position, first))
                    cursor.executemany(self._sql.PUT_RUN, [
                        (destination, position, keep_first, keep_last, base, room_id)
                        for keep_first, keep_last in _remaining(first, last, acked)
                    ])

    def queue_length(self, destination: str) -> int:
        row = self._read_one(self._sql.QUEUE_LENGTH, (destination,))
        return int(row[0]) if row else 0

    def destinations_with_pending(self) -> list[str]:
        return [row[0] for row in self._read(self._sql.DESTINATIONS, ())]

    # --- server keys and rooms ----------------------------------------------------------

    def put_server_keys(self, server_name: str, keys_bytes: bytes) -> None:
        with self._write() as cursor:
            cursor.execute(self._sql.PUT_KEYS, (server_name, bytes(keys_bytes)))

    def get_server_keys(self, server_name: str) -> bytes | None:
        row = self._read_one(self._sql.GET_KEYS, (server_name,))
        return bytes(row[0]) if row else None

    def put_room(self, room_id: str, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"room role must be one of {ROLES}, not {role!r}")
        with self._write() as cursor:
            cursor.execute(self._sql.PUT_ROOM, (room_id, role))

    def room_role(self, room_id: str) -> str | None:
        row = self._read_one(self._sql.ROOM_ROLE, (room_id,))
        return row[0] if row else None


def _insert_values(row: EventRow, prev_idx: int | None, keys: tuple[int, int | None]) -> tuple[Any, ...]:
    return (
        row.room_id, row.index, row.event_id, row.prev_event_id, prev_idx,
        row.type, row.state_key, row.sender, bytes(row.event_bytes), *keys,
    )


def _row_keys(rows: Sequence[EventRow]) -> list[tuple[int, int | None]]:
    """Each row's ``(id_key, prev_key)`` (no prev key at index 0): every key of a batch of
    rows in one core call."""
    keys = _event_keys([row.event_id for row in rows] + [row.prev_event_id for row in rows])
    count = len(rows)
    return [(keys[i], keys[count + i] if row.prev_event_id else None) for i, row in enumerate(rows)]


def _entry_id(position: int, base: int, index: int) -> int:
    """A queue entry's ID: its run's position, then its offset from the run's base index."""
    return (position << _ENTRY_SHIFT) | (index - base)


def _remaining(first: int, last: int, acked: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The ``(first, last)`` ranges of ``first..last`` that the sorted, disjoint ``acked``
    ranges (each within it) leave."""
    ranges: list[tuple[int, int]] = []
    start = first
    for low, high in acked:
        if low > start:
            ranges.append((start, low - 1))
        start = high + 1
    if start <= last:
        ranges.append((start, last))
    return ranges


def _consecutive_runs(ids: Sequence[int]) -> list[tuple[int, int]]:
    """``(first, last)`` of each run of consecutive integers in the sorted ``ids``."""
    if ids and ids[-1] - ids[0] == len(ids) - 1:
        return [(ids[0], ids[-1])]  # the usual ack: one run (sorted and distinct)
    runs: list[tuple[int, int]] = []
    for value in ids:
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
