"""The storage interface the hub and follower layers are written against.

An ``EventStore`` keeps, per room, the linear chain of accepted events (by index, from the
create event at 0), a durable per-destination outgoing queue for fan-out, a cache of peers'
server keys and each room's role on this server.  Backends live in
``mimi_signaling.storage`` (SQLite, PostgreSQL); open one with
``mimi_signaling.storage.open_store(url)``.

The store never decodes events: it is handed the columns it indexes (event ID, prev event ID,
type, state key, sender) next to the encoded bytes.

Linearity is the database's job, not the caller's.  A row at index ``i > 0`` is accepted only
when it does not collide with a stored row (same index, same event ID, or same prev event ID)
and agrees with its stored neighbours: the row at ``i - 1`` (when stored) has
``event_id == prev_event_id`` and the row at ``i + 1`` (when stored) names it as its prev.
``append`` additionally requires the row at ``i - 1`` to exist.  Anything else raises
``ChainConflictError`` and stores nothing.

Partial histories (followers): ``insert_known`` stores events at known indices that need not
be contiguous with what is stored (the create event plus recent events, older ones
backfilled later).  Such an event is "detached" while its predecessor is missing; once the
predecessor arrives its link is checked like any other.  ``gaps`` lists what is missing.

A follower that joined from a ``snapshot`` (PROFILE.md section 4 rule 6) keeps a *partial
history*: the *kept events* (the create event, the state and its auth chain: events whose
position in the room it does not know) beside a contiguous *run* of chain rows at local
positions (the wire carries no index).  The run's lowest row is detached; older events
fetched on demand go below it with ``insert_known_many``, pruning drops its lowest rows with
``prune_below``.  The create event of a partial history is a kept event, never the row at
index 0, so that no gap between it and the run can ever be taken for a link.

All methods are synchronous and thread-safe; a write has been committed durably when it
returns.
"""

from __future__ import annotations

import abc
import contextlib
from typing import AbstractSet, Callable, Iterator, NamedTuple, Optional, Sequence

__all__ = [
    "ChainConflictError",
    "EventNotStoredError",
    "EventRow",
    "EventStore",
    "Gap",
    "KeptEvent",
    "QueuedEvent",
    "ROLES",
]

#: The values ``put_room`` accepts.
ROLES = ("hub", "follower")


class ChainConflictError(Exception):
    """A write would break a room's linear chain (fork, gap, duplicate); nothing was stored.

    An internal signal, not a wire error: a hub that raced another writer re-reads
    ``latest()`` and retries; a follower treats it as a sign its view of the room is wrong.
    """

    def __init__(self, room_id: str, index: int, detail: str = "") -> None:
        self.room_id = room_id
        self.index = index
        self.detail = detail
        message = f"chain conflict in room {room_id} at index {index}"
        super().__init__(f"{message}: {detail}" if detail else message)


class EventNotStoredError(LookupError):
    """``enqueue`` named an event (room, ID, index) that the store does not hold."""


class EventRow(NamedTuple):
    """One event and the columns the store indexes, for ``append_many``/``insert_known_many``.

    ``destinations`` are queued for fan-out in the same transaction as the event is stored.
    """

    room_id: str
    index: int  # type: ignore[assignment]  # the column name wins over tuple.index
    event_id: str
    prev_event_id: str  # "" only at index 0 (the create event)
    event_bytes: bytes
    type: str
    state_key: Optional[str]  # None for non-state events
    sender: str
    destinations: Sequence[str] = ()


class QueuedEvent(NamedTuple):
    """An entry of a destination's outgoing queue, as ``pending`` returns it."""

    queue_id: int
    room_id: str
    event_id: str
    event_bytes: bytes


class Gap(NamedTuple):
    """Indices ``start..end`` (inclusive) are missing; ``next_event_id`` is the stored event at
    ``end + 1``, i.e. the ``before`` of a backfill request that fills the gap."""

    start: int
    end: int
    next_event_id: str


class KeptEvent(NamedTuple):
    """A state event a partial history keeps outside its run (``start_partial``).

    ``in_state``: part of the *checkpoint*, the state that the run's state events, applied
    in order over it, turn into the current state (one per ``(type, state_key)``); the
    others are kept for the auth chain."""

    event_id: str
    type: str
    state_key: str
    in_state: bool
    event_bytes: bytes


class EventStore(abc.ABC):
    """Durable storage for rooms, their event chains, the fan-out queue and server keys."""

    # --- writing events ---------------------------------------------------------------

    @contextlib.contextmanager
    def room_writer_lock(self, room_id: str) -> Iterator[None]:
        """Held by a hub from reading a room's latest event to appending after it, so that
        several hub processes sharing one database take turns instead of racing (the loser of
        a race must reload and would keep losing under load).  Linearity never depends on it:
        the constraints hold regardless.  The default is a no-op (one writer process)."""
        yield

    def append(
        self,
        room_id: str,
        index: int,
        event_id: str,
        prev_event_id: str,
        event_bytes: bytes,
        type: str,
        state_key: Optional[str],
        sender: str,
        destinations: Sequence[str] = (),
    ) -> None:
        """Store the event at ``index`` right after the stored event ``prev_event_id``.

        Index 0 takes an empty ``prev_event_id``; any other index needs the row at
        ``index - 1`` to be stored with ``event_id == prev_event_id``.  ``destinations`` are
        queued in the same transaction.  Raises ``ChainConflictError`` (nothing stored).
        """
        self.append_many(
            [
                EventRow(
                    room_id, index, event_id, prev_event_id, event_bytes,
                    type, state_key, sender, tuple(destinations),
                )
            ]
        )

    @abc.abstractmethod
    def append_many(self, rows: Sequence[EventRow]) -> None:
        """``append`` each row in order, in one transaction: all are stored or none.

        Rows may belong to several rooms; later rows may follow earlier ones of the batch.
        """

    @contextlib.contextmanager
    def append_stream(self, room_ids: Sequence[str]) -> Iterator[Callable[[Sequence[EventRow]], None]]:
        """One ``append_many`` whose rows are handed over in parts as they are ready::

            with store.append_stream([room_id]) as put:
                put(first_rows)   # the store may start writing these at once
                put(more_rows)
            # committed here: all rows stored, or ChainConflictError / another error raised

        A hub uses it to let the database write one part while it sequences and signs the
        next: one transaction and one commit, as with ``append_many`` of all the rows, but the
        writing overlaps the computing.  If the block raises, nothing is stored.  The caller
        must not use the store in any other way until the block ends (a backend may hold its
        connection for the stream's writer).  The default collects the parts and calls
        ``append_many`` at the end; ``room_ids`` names every room the rows belong to.
        """
        parts: list[EventRow] = []
        yield parts.extend
        self.append_many(parts)

    def insert_known(
        self,
        room_id: str,
        index: int,
        event_id: str,
        prev_event_id: str,
        event_bytes: bytes,
        type: str,
        state_key: Optional[str],
        sender: str,
    ) -> None:
        """Store an event whose index is known but whose predecessor may be missing.

        For followers' partial histories (backfill, snapshots).  Links to stored neighbours
        are checked; an event already stored at the same index is skipped (backfills
        overlap).  Raises ``ChainConflictError`` (nothing stored).
        """
        self.insert_known_many(
            [EventRow(room_id, index, event_id, prev_event_id, event_bytes, type, state_key, sender)]
        )

    @abc.abstractmethod
    def insert_known_many(self, rows: Sequence[EventRow]) -> None:
        """``insert_known`` each row, in any order, in one transaction (all or none).

        ``destinations`` of the rows are ignored: backfilled events are not fanned out.
        """

    # --- reading events ---------------------------------------------------------------

    @abc.abstractmethod
    def get_event(self, room_id: str, event_id: str) -> bytes | None:
        """A stored event by ID: a row of the chain, else a kept event."""

    @abc.abstractmethod
    def get_by_index(self, room_id: str, index: int) -> bytes | None: ...

    @abc.abstractmethod
    def index_of(self, room_id: str, event_id: str) -> int | None: ...

    @abc.abstractmethod
    def latest(self, room_id: str) -> tuple[int, str] | None:
        """``(index, event_id)`` of the highest stored index, or None for an empty room."""

    @abc.abstractmethod
    def iter_events(
        self, room_id: str, start: int = 0, end: int | None = None, batch: int = 1000
    ) -> Iterator[tuple[int, bytes]]:
        """``(index, event_bytes)`` for stored indices in ``[start, end)``, in order.

        Reads ``batch`` rows at a time and holds no lock or transaction between batches, so
        memory stays bounded and writers are not blocked by a slow consumer.
        """

    @abc.abstractmethod
    def count(self, room_id: str) -> int:
        """How many events of the room are stored (fewer than ``latest + 1`` with gaps)."""

    @abc.abstractmethod
    def rooms(self) -> list[str]:
        """Rooms with a role or at least one stored event, sorted."""

    @abc.abstractmethod
    def get_state_event(self, room_id: str, type: str, state_key: str) -> bytes | None:
        """The stored event with this type and state key at the highest index."""

    @abc.abstractmethod
    def gaps(self, room_id: str) -> list[Gap]:
        """Missing index ranges below the latest stored event, lowest first."""

    # --- partial histories (followers) -------------------------------------------------

    @abc.abstractmethod
    def start_partial(self, room_id: str, kept: Sequence[KeptEvent], rows: Sequence[EventRow]) -> None:
        """Follow ``room_id`` from a snapshot, in one transaction: the room's role becomes
        ``"follower"``, the kept events are stored and ``rows`` (the run, at local positions
        above 0, contiguous) are stored with ``insert_known_many``.  The room must hold no
        event yet.  Raises ``ChainConflictError`` (nothing stored)."""

    @abc.abstractmethod
    def is_partial(self, room_id: str) -> bool:
        """True when the room was joined from a snapshot (it has kept events)."""

    @abc.abstractmethod
    def kept_events(self, room_id: str, *, checkpoint_only: bool = False) -> list[KeptEvent]:
        """The room's kept events (create first), or only the checkpoint's."""

    @abc.abstractmethod
    def oldest(self, room_id: str) -> tuple[int, str] | None:
        """``(index, event_id)`` of the lowest stored row, or None for an empty room."""

    @abc.abstractmethod
    def prune_below(self, room_id: str, index: int, checkpoint: Sequence[KeptEvent]) -> int:
        """Drop the rows of a partial history below ``index`` in one transaction, after
        storing ``checkpoint`` (the state events that leave the run: each replaces the
        checkpoint event of its ``(type, state_key)``, which stays kept for the auth chain).
        The row at ``index`` must be stored (it becomes the detached lowest row); returns the
        number of rows dropped.  Raises ``ChainConflictError`` (nothing changed)."""

    def holds(self, room_id: str, event_id: str) -> bool:
        """The event is stored: a row of the chain or a kept event."""
        return self.get_event(room_id, event_id) is not None

    # --- fan-out queue ----------------------------------------------------------------

    @abc.abstractmethod
    def enqueue(self, destination: str, room_id: str, event_id: str, index: int) -> int:
        """Queue a stored event for ``destination``; returns its queue ID.

        Raises ``EventNotStoredError`` when the event is not stored at ``index``.
        """

    @abc.abstractmethod
    def pending(
        self, destination: str, limit: int = 100, exclude: AbstractSet[int] = frozenset()
    ) -> list[QueuedEvent]:
        """The oldest ``limit`` queued entries of ``destination``, in enqueue order, leaving
        out the entries named in ``exclude`` (a fan-out's entries in flight or being acked:
        not read again)."""

    @abc.abstractmethod
    def ack_entries(self, destination: str, queue_ids: Sequence[int]) -> None:
        """Drop exactly these entries of ``destination`` (the ones delivered), in one
        transaction.  Acks name entries, never a bound ("up to ID n"): a bound could drop an
        entry that became visible late, since on PostgreSQL two transactions may commit queue
        IDs out of order, so a lower ID can appear after higher ones were read and delivered."""

    @abc.abstractmethod
    def queue_length(self, destination: str) -> int: ...

    @abc.abstractmethod
    def destinations_with_pending(self) -> list[str]:
        """Destinations with at least one queued entry, sorted."""

    # --- server keys cache ------------------------------------------------------------

    @abc.abstractmethod
    def put_server_keys(self, server_name: str, keys_bytes: bytes) -> None:
        """Store (replace) the encoded ``ServerKeys`` of a server."""

    @abc.abstractmethod
    def get_server_keys(self, server_name: str) -> bytes | None: ...

    # --- rooms --------------------------------------------------------------------------

    @abc.abstractmethod
    def put_room(self, room_id: str, role: str) -> None:
        """Record this server's role in the room: ``"hub"`` or ``"follower"``."""

    @abc.abstractmethod
    def room_role(self, room_id: str) -> str | None: ...

    # --- lifetime -----------------------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection; further calls fail.  Idempotent."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
