"""Event store backends (SQLite, PostgreSQL) for ``mimi_signaling.node.store.EventStore``.

``open_store(url)`` picks the backend from the URL; ``PostgresEventStore`` is imported on
first use so that SQLite-only deployments never load psycopg.
"""

from __future__ import annotations

from typing import Any

from ..node.store import (
    ChainConflictError,
    EventNotStoredError,
    EventRow,
    EventStore,
    Gap,
    KeptEvent,
    QueuedEvent,
)
from .sqlite import SQLiteEventStore
from .urls import open_store

__all__ = [
    "ChainConflictError",
    "EventNotStoredError",
    "EventRow",
    "EventStore",
    "Gap",
    "KeptEvent",
    "PostgresEventStore",
    "QueuedEvent",
    "SQLiteEventStore",
    "open_store",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresEventStore":
        from .postgres import PostgresEventStore

        return PostgresEventStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
