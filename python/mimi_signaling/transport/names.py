"""The transaction types by name (PROFILE.md section 7).  The core owns the names
(``TRANSACTION_TYPES``); each constant here is checked against it when imported, so a name
the core does not know fails at start-up, not on the wire."""

from __future__ import annotations

import mimi_signaling as ms

__all__ = ["BACKFILL", "BATCH", "DELIVER", "GET_EVENT", "GET_STATE", "KEYS", "SNAPSHOT", "SUBMIT"]


def _transaction(name: str) -> str:
    """``mimi.signaling.NAME``, which the core must list."""
    full = "mimi.signaling." + name
    if full not in ms.TRANSACTION_TYPES:
        raise ImportError(f"the core does not know the transaction {full}")
    return full


SUBMIT = _transaction("submit")
DELIVER = _transaction("deliver")
GET_EVENT = _transaction("get_event")
GET_STATE = _transaction("get_state")
BACKFILL = _transaction("backfill")
SNAPSHOT = _transaction("snapshot")
KEYS = _transaction("keys")
BATCH = ms.BATCH_TRANSACTION
