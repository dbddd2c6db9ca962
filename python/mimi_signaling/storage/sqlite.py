"""SQLite backend: one file (or memory, for tests), one connection guarded by a lock.

The fan-out's queue reads of a file go through a second, read-only connection with its own
lock: in WAL mode a reader sees the last commit and never waits for a writer, so deliveries
do not queue behind a hub's group commit (which holds the write connection while it inserts
a few hundred events).  Other reads stay on the write connection: a connection's page cache
is dropped whenever another connection commits, so a reader pays for cold pages on every
read after a write, which the queue read (once per batch) can afford and per-event reads
cannot.

Durability: WAL journal with ``synchronous=FULL``, so a commit is on disk when ``append``
returns (the fan-out's acks commit with ``NORMAL``: see ``ack_entries``).  Write
transactions start with ``BEGIN IMMEDIATE`` and so take the database write lock up front:
writers (threads or processes sharing the file) are serialised, and a busy database is
waited for up to ``busy_timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from typing import Any, Iterator, Sequence

from .base import Dialect, SqlEventStore, event_key

logger = logging.getLogger(__name__)

__all__ = ["SQLiteEventStore"]


class SQLiteEventStore(SqlEventStore):
    dialect = Dialect(
        name="sqlite",
        placeholder="?",
        bigint="INTEGER",
        blob="BLOB",
        # AUTOINCREMENT: queue IDs never restart after the queue empties, so a late ack
        # cannot drop entries queued after it.
        serial_pk="INTEGER PRIMARY KEY AUTOINCREMENT",
        link_triggers=lambda checks: [
            f"""CREATE TRIGGER IF NOT EXISTS events_link_check_{n} BEFORE INSERT ON events
                WHEN {condition}
                BEGIN SELECT RAISE(ABORT, '{message}'); END"""
            for n, (condition, message) in enumerate(checks)
        ],
        table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        event_key=lambda text: f"mimi_event_key({text})",  # registered on the connection
    )

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = 30.0) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self._conn = sqlite3.connect(
            self.path,
            timeout=busy_timeout,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # shared by threads; self._lock serialises use
        )
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        try:
            self._conn.create_function("mimi_event_key", 1, event_key, deterministic=True)
            self._configure(busy_timeout)
            self._create_schema()
            if self.path != ":memory:":  # a second connection would open another database
                self._reader = sqlite3.connect(
                    self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
                )
                self._reader.execute("PRAGMA query_only=ON")
        except BaseException:
            self._conn.close()
            if self._reader is not None:
                self._reader.close()
            raise
        logger.debug("opened SQLite store %s", self.path)

    def _configure(self, busy_timeout: float) -> None:
        conn = self._conn
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() not in ("wal", "memory"):
            raise RuntimeError(f"SQLite store {self.path}: cannot use WAL (journal mode {mode})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        # The chain's prev links are a foreign key: SQLite checks them only when asked to.
        conn.execute("PRAGMA foreign_keys=ON")
        if conn.execute("PRAGMA foreign_keys").fetchone()[0] != 1:
            raise RuntimeError("this SQLite build does not enforce foreign keys")

    @contextlib.contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[sqlite3.Cursor]:
        cursor = self._conn.cursor()
        if not durable:
            # In WAL mode a NORMAL commit is not synced but stays atomic and consistent; a
            # later FULL commit syncs the log past it (the WAL is appended in order).
            cursor.execute("PRAGMA synchronous=NORMAL")
        try:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
                cursor.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        finally:
            if not durable:
                cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

    def _read_queue(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        if self._reader is None:
            return super()._read_queue(sql, params)
        self._check_not_streaming()
        with self._reader_lock:
            self._check_open()
            rows: list[tuple[Any, ...]] = self._reader.execute(sql, params).fetchall()
            return rows

    def close(self) -> None:
        super().close()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._conn.execute(sql, params).fetchall()
        return rows

    def _lock_rooms(self, cursor: Any, room_ids: Sequence[str]) -> None:
        pass  # BEGIN IMMEDIATE already holds the whole database's write lock

    def _is_constraint_error(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def _last_queue_pos(self, cursor: sqlite3.Cursor) -> int:
        assert cursor.lastrowid is not None  # set by the INSERT just run on this cursor
        return cursor.lastrowid

    def __repr__(self) -> str:
        return f"SQLiteEventStore({self.path!r})"
