"""How large a body a peer may send us, per transaction type (PROFILE.md section 7): every
request the server reads and every answer the client reads is refused past these bounds
before it is read (by its Content-Length) and while it streams in, so a hostile peer cannot
make us buffer more than what its transaction can legitimately be.

One row per transaction type; a new transaction adds one row to ``BOUNDS`` (and, when its
answer depends on the request like backfill's, a function beside ``backfill_response``).
Every figure counts whole bodies: the request bound includes the ``TransactionEnvelope``
around the payload.  ``docs/SECURITY.md`` lists the table.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import mimi_signaling as ms

from .names import BACKFILL, BATCH, DELIVER, GET_EVENT, GET_STATE, KEYS, SNAPSHOT, SUBMIT

__all__ = [
    "Bound",
    "BOUNDS",
    "ENVELOPE_OVERHEAD",
    "ONE_EVENT",
    "KEYS_RESPONSE",
    "SNAPSHOT_RESPONSE",
    "BACKFILL_PAGE",
    "backfill_response",
    "batch_response",
    "request_bound",
    "response_bound",
]

#: The envelope's version, the transaction type (at most 255 bytes with its length prefix)
#: and the payload's length prefix, rounded up.
ENVELOPE_OVERHEAD = 4_096
#: One encoded event (PROFILE.md section 2: at most MAX_EVENT_SIZE bytes) with its vector
#: length prefix.
ONE_EVENT = ms.MAX_EVENT_SIZE + 8
#: A request naming a room and an event, a state key or a limit: identifiers are at most
#: MAX_ID_SIZE bytes, a state key is one identifier, and a type is one too.
SMALL_REQUEST = 4 * (ms.MAX_ID_SIZE + 8) + ENVELOPE_OVERHEAD
#: ``ServerKeys``: far more than any honest server's current and expired keys.
KEYS_RESPONSE = 1024 * 1024
#: The most events one backfill answer may carry (PROFILE.md section 7: at most 1000).
BACKFILL_PAGE = 1000
#: A snapshot's current state and auth chain.  The profile sets no bound: 64 MiB holds a room
#: of about 100,000 members with their auth chain (docs/DECISIONS.md, Transport).
SNAPSHOT_RESPONSE = 64 * 1024 * 1024
#: An Error body (code and a message capped at 1 KiB by honest servers); more is not read.
ERROR_RESPONSE = 64 * 1024


@dataclass(frozen=True)
class Bound:
    """Bytes of a request body (envelope included) and of its 200 answer."""

    request: int
    response: int


BOUNDS: Dict[str, Bound] = {
    SUBMIT: Bound(request=ONE_EVENT + ENVELOPE_OVERHEAD, response=ONE_EVENT),
    DELIVER: Bound(request=ONE_EVENT + ENVELOPE_OVERHEAD, response=0),
    GET_EVENT: Bound(request=SMALL_REQUEST, response=ONE_EVENT),
    GET_STATE: Bound(request=SMALL_REQUEST, response=ONE_EVENT),
    BACKFILL: Bound(request=SMALL_REQUEST, response=BACKFILL_PAGE * ONE_EVENT + 16),
    SNAPSHOT: Bound(request=SMALL_REQUEST, response=SNAPSHOT_RESPONSE),
    KEYS: Bound(request=ENVELOPE_OVERHEAD, response=KEYS_RESPONSE),
    # PROFILE.md section 7: "the body at most 16 MiB"; the answer depends on the entries
    # (batch_response), this figure only bounds a batch of 1,024 single events.
    BATCH: Bound(request=ms.MAX_BATCH_BODY + ENVELOPE_OVERHEAD,
                 response=ms.MAX_BATCH_ENTRIES * (ONE_EVENT + 8) + 8),
}


def backfill_response(limit: int) -> int:
    """The largest honest answer to a backfill asking for ``limit`` events."""
    return min(max(limit, 0), BACKFILL_PAGE) * ONE_EVENT + 16


def batch_response(transaction_types: "Sequence[str]", default: int) -> int:
    """The largest honest answer to a batch of these transactions: per entry its own answer's
    bound (``default`` for a type without a row) or an Error body (messages are capped at
    1 KiB), with the status and length prefix."""
    counts = collections.Counter(transaction_types)  # a batch has one or two types
    return 8 + sum(n * (max(response_bound(t) or default, 1024 + 8) + 8) for t, n in counts.items())


def request_bound(transaction_type: str) -> Optional[int]:
    """Bytes a request of this type may have; None for a type without a row (the local API
    and unknown types, bounded by the server's ``max_body_size`` alone)."""
    bound = BOUNDS.get(transaction_type)
    return bound.request if bound is not None else None


def response_bound(transaction_type: str) -> Optional[int]:
    """Bytes a 200 answer to this type may have; None for a type without a row."""
    bound = BOUNDS.get(transaction_type)
    return bound.response if bound is not None else None
