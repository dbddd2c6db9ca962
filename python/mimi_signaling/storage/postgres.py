"""PostgreSQL backend (psycopg 3): one connection guarded by a lock.

Durability: a write returns after its transaction has committed (the server's
``synchronous_commit`` decides what that means on disk; the default waits for the WAL flush).

Several processes may share one database.  Linearity rests on the table's constraints, which
PostgreSQL enforces across concurrent transactions (a second insert of the same
``(room_id, idx)`` waits for the first and then fails).  That is why READ COMMITTED plus
constraints is used rather than SERIALIZABLE: no serialization-failure retries, and the rule
holds for any writer whatever its isolation level.  Write transactions also take a per-room
transaction-scoped advisory lock so that the neighbour checks of partial histories
(``insert_known``) cannot race with another writer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any, Iterator, Optional, Sequence

import psycopg

from .base import Dialect, SqlEventStore

logger = logging.getLogger(__name__)

__all__ = ["PostgresEventStore"]

# Advisory lock namespace of this store ("MIMI"); the second key is a hash of the room ID
# (collisions only serialise two rooms' writers) or 0 for schema creation.
_LOCK_CLASS = 0x4D494D49
# A different namespace for room_writer_lock: it is held around the append's own lock.
_WRITER_LOCK_CLASS = _LOCK_CLASS + 1
# Connections that hold writer locks; rooms share them by hash (a waiting pg_advisory_lock
# blocks its connection, so they cannot be the store's main connection).
_WRITER_LOCK_CONNECTIONS = 4


class PostgresEventStore(SqlEventStore):
    dialect = Dialect(
        name="postgresql",
        placeholder="%s",
        bigint="BIGINT",
        blob="BYTEA",
        serial_pk="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        link_triggers=lambda checks: [
            "CREATE OR REPLACE FUNCTION events_link_check() RETURNS trigger LANGUAGE plpgsql AS $body$ BEGIN "
            + " ".join(
                f"IF {condition} THEN RAISE EXCEPTION USING "
                f"ERRCODE = 'integrity_constraint_violation', MESSAGE = '{message}'; END IF;"
                for condition, message in checks
            )
            + " RETURN NEW; END $body$",
            """CREATE OR REPLACE TRIGGER events_link_check BEFORE INSERT ON events
                FOR EACH ROW EXECUTE FUNCTION events_link_check()""",
        ],
        table_exists="""SELECT 1 FROM information_schema.tables
            WHERE table_schema = current_schema() AND table_name = ?""",
        # The first 8 bytes of the SHA-256 as a signed 64-bit integer, as base.event_key.
        event_key=lambda text: (
            f"('x' || left(encode(sha256(convert_to({text}, 'UTF8')), 'hex'), 16))::bit(64)::bigint"
        ),
    )

    def __init__(self, conninfo: str, connect_timeout: int = 10) -> None:
        super().__init__()
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        self._writer_guards = [threading.Lock() for _ in range(_WRITER_LOCK_CONNECTIONS)]
        self._writer_conns: list[Optional[psycopg.Connection[Any]]] = [None] * _WRITER_LOCK_CONNECTIONS
        self._conn: psycopg.Connection[Any] = self._connect()
        try:
            self._create_schema()
        except BaseException:
            self._conn.close()
            raise

    @contextlib.contextmanager
    def room_writer_lock(self, room_id: str) -> Iterator[None]:
        slot = hash(room_id) % _WRITER_LOCK_CONNECTIONS
        with self._writer_guards[slot]:
            conn = self._writer_conns[slot]
            if conn is None or conn.broken or conn.closed:
                conn = self._writer_conns[slot] = self._connect()
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (_WRITER_LOCK_CLASS, room_id))
            try:
                yield
            finally:
                if not conn.broken:
                    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (_WRITER_LOCK_CLASS, room_id))

    def close(self) -> None:
        for slot, conn in enumerate(self._writer_conns):
            if conn is not None:
                with self._writer_guards[slot]:
                    conn.close()
        super().close()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self._conninfo, autocommit=True, connect_timeout=self._connect_timeout
        )

    def _connection(self) -> psycopg.Connection[Any]:
        # A server restart or a dropped socket leaves a broken connection: reconnect once
        # for the next operation rather than failing every call from then on.
        if self._conn.broken or self._conn.closed:
            logger.warning("PostgreSQL connection lost; reconnecting")
            self._conn = self._connect()
        return self._conn

    @contextlib.contextmanager
    def _transaction(self, durable: bool = True) -> Iterator[psycopg.Cursor[Any]]:
        conn = self._connection()
        with conn.transaction(), conn.cursor() as cursor:
            if not durable:  # this transaction only; its commit is flushed with a later one
                cursor.execute("SET LOCAL synchronous_commit = off")
            yield cursor

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._connection().cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def _lock_rooms(self, cursor: psycopg.Cursor[Any], room_ids: Sequence[str]) -> None:
        for room_id in room_ids:  # sorted by the caller: no lock-order deadlocks
            cursor.execute(f"SELECT pg_advisory_xact_lock({_LOCK_CLASS}, hashtext(%s))", (room_id,))

    def _lock_schema(self, cursor: psycopg.Cursor[Any]) -> None:
        # CREATE TABLE IF NOT EXISTS is not safe against a concurrent creator.
        cursor.execute(f"SELECT pg_advisory_xact_lock({_LOCK_CLASS}, 0)")

    def _is_constraint_error(self, exc: BaseException) -> bool:
        return isinstance(exc, psycopg.errors.IntegrityError)

    def _last_queue_pos(self, cursor: psycopg.Cursor[Any]) -> int:
        cursor.execute("SELECT lastval()")
        row = cursor.fetchone()
        assert row is not None
        return int(row[0])

    def __repr__(self) -> str:
        info = self._conn.info
        return f"PostgresEventStore(host={info.host!r}, port={info.port}, dbname={info.dbname!r})"
