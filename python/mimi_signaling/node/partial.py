"""Partial histories: a follower that starts following a room from the hub's ``snapshot``
instead of replaying it, keeps the create event, the state with its auth chain and the recent
events, and fetches older events from the hub when they are asked for (PROFILE.md section 4
rule 6; the signaling draft: a follower "might only persist the create event and a dozen most
recent events" and backfills through ``prevEvent`` pointers).

What is checked, and what is therefore trusted:

- the snapshot (``check_snapshot``): every event of ``state`` and ``auth_chain`` decodes, has
  its content hash (or is exactly its redacted form) and both signatures, is a state event of
  the room, has the content its type requires, lists the create event first among its auth
  events and every auth event is in the snapshot; the state holds one event per
  ``(type, state_key)`` and exactly one create event; ``latest`` is fetched with
  ``get_event`` and checked the same way (hash, origin and hub signatures, auth events in the
  snapshot, and in the state when it is a state event).  The policy is *not* replayed over
  the history before the snapshot: it is trusted on the hub's signature;
- every event after ``latest`` gets every check of rule 5 (the follower's usual path);
- older events fetched on demand (``PartialHistory.fetch_below``): hash, signatures, room
  and the ``prev_event`` link down from the lowest event held, page by page; a page that does
  not link is refused whole and nothing of it is stored.

The wire carries no event index, so a partial history stores its run of chain events at
*local positions*: ``latest`` of the snapshot at ``JOIN_POSITION``, later events above it,
backfilled ones below it (see ``node/store.py``).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from .._core import Event, MalformedError, NotFoundError, decode_events
from ..room.registry import DEFAULT_EVENT_TYPES, EventTypeRegistry, PolicyRegistry
from ..room.state import RoomState
from .chain import RoomChain
from .store import EventRow, EventStore, KeptEvent

log = logging.getLogger(__name__)

M_ROOM_CREATE = "m.room.create"
#: Local position of the snapshot's ``latest`` event: far above 0 so that the older events a
#: follower may fetch later fit below it (2^40 events), far below the store's index bound.
JOIN_POSITION = 1 << 40
#: ``history`` settings of a follower (see ``Config.follower``).
HISTORY_MODES = ("full", "recent")
#: Default of ``keep_recent``: one backfill page (the profile's largest ``limit``), so the
#: latest page a client asks for is served from disk; about 0.4 MB of events per room.
DEFAULT_KEEP_RECENT = 1000
#: Rows dropped per pruning transaction: short transactions, so deliveries are not held up.
PRUNE_BATCH = 1000
#: Most events fetched to find one event a follower no longer holds (``get_event``): beyond
#: that the request is refused, so that one request cannot make the follower fetch the room.
ON_DEMAND_WALK = 10_000
#: Events of the join's run below ``latest`` (down to our own accepted event): one page.
JOIN_PAGE = 1000

#: ``snapshot(room_id) -> (state, auth_chain, latest_event_id)`` (the hub's answer).
Snapshot = Callable[[str], Tuple[List[Event], List[Event], str]]
#: ``fetch_event(room_id, event_id) -> Event`` (the hub's ``get_event``).
FetchEvent = Callable[[str, str], Event]
Backfill = Callable[[str, str, int], List[Event]]


def _where(room_id: str) -> str:
    return f"the snapshot of {room_id}"


def check_snapshot(
    room_id: str,
    state: Sequence[Event],
    auth_chain: Sequence[Event],
    latest: Event,
    latest_id: str,
    verify: Callable[[Sequence[Event]], None],
    *,
    registry: Optional[EventTypeRegistry] = None,
    policies: Optional[PolicyRegistry] = None,
) -> RoomState:
    """Check a snapshot and its ``latest`` event (module docstring) and return the room state
    after ``latest``, at local position ``JOIN_POSITION``.  ``verify`` checks content hashes
    and both signatures (``KeyStore.verify_all``).  Raises a ``MimiError`` subclass:
    ``BadSignatureError``/``BadContentHashError`` for an event that does not verify,
    ``MalformedError`` for a snapshot that is not one room's consistent state."""
    where = _where(room_id)
    events = [*state, *auth_chain]
    for event in [*events, latest]:
        if event.room_id != room_id:
            raise MalformedError(f"{where}: event {event.event_id} belongs to room {event.room_id}")
    verify([*events, latest])
    if latest.event_id != latest_id:
        raise MalformedError(f"{where}: get_event of latest {latest_id} answered {latest.event_id}")
    by_id: Dict[str, Event] = {}
    for event in events:
        if not event.is_state:
            raise MalformedError(f"{where}: {event.event_id} ({event.type}) is not a state event")
        by_id[event.event_id] = event
    creates = [e for e in state if e.type == M_ROOM_CREATE]
    if len(creates) != 1:
        raise MalformedError(f"{where}: the state holds {len(creates)} create events, not one")
    create = creates[0]
    create_id = create.event_id
    keys: Set[Tuple[str, str]] = set()
    for event in state:
        key = (event.type, event.state_key or "")
        if key in keys:
            raise MalformedError(f"{where}: two state events for {key}")
        keys.add(key)
    for event in [*by_id.values(), latest]:
        if event.event_id == create_id:
            continue
        _check_auth_list(where, event, create_id, by_id)
    if latest.is_state and latest.event_id not in {e.event_id for e in state}:
        raise MalformedError(f"{where}: the latest event {latest_id} is a state event the state does not hold")
    registry = registry or DEFAULT_EVENT_TYPES
    room = RoomState.from_create(create, policies=policies, registry=registry, track_history=False)
    for event in state:
        if event.event_id != create_id:
            room.apply(event, registry.check_shape(event, room))
    for event in auth_chain:
        if event.type != M_ROOM_CREATE:
            registry.check_shape(event, room)
        elif event.event_id != create_id:
            raise MalformedError(f"{where}: a second create event {event.event_id} in the auth chain")
    room.count = JOIN_POSITION + 1
    room.last_event_id = latest_id
    # Visibility of the events from here on (PROFILE.md section 6): the snapshot's state is
    # exact at JOIN_POSITION + 1; before it, who saw what is unknown (served redacted).
    room.start_history(known_from=JOIN_POSITION + 1)
    return room


def _check_auth_list(where: str, event: Event, create_id: str, known: Dict[str, Event]) -> None:
    auth = list(event.auth_events)
    if not auth or auth[0] != create_id:
        raise MalformedError(f"{where}: {event.event_id} does not list the create event first among its auth events")
    for auth_id in auth:
        if auth_id not in known:
            raise MalformedError(f"{where}: auth event {auth_id} of {event.event_id} is not in the snapshot")


def check_links_down(room_id: str, top: Event, page: Sequence[Event]) -> None:
    """A backfill page (newest first) continues the chain down from ``top``: each event is the
    ``prev_event`` of the one before it (so the page ends at the create event at the latest,
    whose ``prev_event`` is empty).  Raises ``MalformedError``."""
    cursor = top
    for event in page:
        if event.room_id != room_id:
            raise MalformedError(f"backfill of {room_id}: {event.event_id} belongs to room {event.room_id}")
        if not cursor.prev_event:
            raise MalformedError(f"backfill of {room_id}: {event.event_id} is below the create event")
        if event.event_id != cursor.prev_event:
            raise MalformedError(
                f"backfill of {room_id}: {event.event_id} is not the prev event of {cursor.event_id}"
                " (the page does not link to the events this follower holds)"
            )
        cursor = event


def _row(room_id: str, index: int, event: Event) -> EventRow:
    return EventRow(room_id, index, event.event_id, event.prev_event, event.encode(), event.type,
                    event.state_key, event.sender)


def _kept(event: Event, in_state: bool) -> KeptEvent:
    return KeptEvent(event.event_id, event.type, event.state_key or "", in_state, event.encode())


class _Stopping(Exception):
    """The server is stopping: a background check ends early, with no verdict."""


class PartialHistory:
    """The partial-history side of a ``Follower``: joining from a snapshot, loading a partial
    history from the store, pruning it and fetching older events on demand.

    Two locks per room: the follower's room lock (deliveries, joins: the top of the run) and
    the *bottom* lock here (pruning, fetching older events, loading: the bottom of the run), so
    that pruning and fetching never hold up deliveries."""

    def __init__(
        self,
        store: EventStore,
        verify: Callable[[Sequence[Event]], None],
        *,
        keep_recent: int = DEFAULT_KEEP_RECENT,
        backfill: Optional[Backfill] = None,
        snapshot: Optional[Snapshot] = None,
        fetch_event: Optional[FetchEvent] = None,
        registry: Optional[EventTypeRegistry] = None,
        policies: Optional[PolicyRegistry] = None,
        background: bool = True,
        verify_history: bool = False,
    ) -> None:
        if keep_recent < 1:
            raise ValueError("keep_recent must be at least 1")
        self.store = store
        self.verify = verify
        self.keep_recent = keep_recent
        #: The run may grow this far above ``keep_recent`` before it is pruned back to it.
        self.prune_slack = max(keep_recent, PRUNE_BATCH // 10)
        self.backfill = backfill
        self.snapshot = snapshot
        self.fetch_event = fetch_event
        self.registry = registry
        self.policies = policies
        self._locks: Dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()
        #: Lowest local position held per room (None: not known yet; read from the store).
        self._low: Dict[str, int] = {}
        self._pruner: Optional[ThreadPoolExecutor] = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="mimi-prune") if background else None
        )
        self._scheduled: Dict[str, Future[None]] = {}
        #: Replay the history before each snapshot in the background (``verify_history``).
        self.verify_in_background = verify_history and background
        self._verifier: Optional[ThreadPoolExecutor] = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="mimi-verify") if self.verify_in_background else None
        )
        self._closing = threading.Event()
        self._verifying: Dict[str, Future[bool]] = {}
        #: Room -> "running", "verified (N events)" or "failed: reason", since this process started.
        self.verification: Dict[str, str] = {}
        #: Counters for status: rows pruned, events fetched on demand.
        self.pruned = 0
        self.fetched = 0

    def close(self) -> None:
        self._closing.set()
        for executor in (self._pruner, self._verifier):
            if executor is not None:
                executor.shutdown(wait=True)

    def bottom_lock(self, room_id: str) -> threading.RLock:
        with self._locks_guard:
            return self._locks.setdefault(room_id, threading.RLock())

    # --- joining ----------------------------------------------------------------------------------

    def join(self, room_id: str, accepted: Optional[Event] = None) -> RoomChain:
        """Take the hub's snapshot, check it (``check_snapshot``), store the create event, the
        state and its auth chain as kept events and ``latest`` (with the events down to our
        ``accepted`` one, when it is within a page below) as the run.  Raises a typed
        ``MimiError`` and stores nothing when a check fails."""
        if self.snapshot is None or self.fetch_event is None:
            raise NotFoundError(f"no hub to take a snapshot of {room_id} from")
        state, auth_chain, latest_id = self.snapshot(room_id)
        latest = accepted if accepted is not None and accepted.event_id == latest_id else self.fetch_event(room_id, latest_id)
        room = check_snapshot(room_id, state, auth_chain, latest, latest_id, self.verify,
                              registry=self.registry, policies=self.policies)
        run = [latest]
        if accepted is not None and accepted.event_id != latest_id and self.backfill is not None:
            run = self._down_to(room_id, latest, accepted.event_id, room.create_event_id) + run
        create = room.create_event
        kept = [_kept(create, True)] + [_kept(e, True) for e in state if e.event_id != create.event_id]
        kept += [_kept(e, False) for e in auth_chain if e.event_id != create.event_id]
        first = JOIN_POSITION - (len(run) - 1)
        rows = [_row(room_id, first + i, e) for i, e in enumerate(run)]
        with self.bottom_lock(room_id):
            self.store.start_partial(room_id, kept, rows)
            self._low[room_id] = first
        log.info("joined %s from its snapshot: %d state events, %d in the auth chain, %d recent events "
                 "(history before them trusted on the hub's signature)", room_id, len(state), len(auth_chain), len(run))
        if self._verifier is not None:
            self.verification[room_id] = "running"
            self._verifying[room_id] = self._verifier.submit(self.verify_history, room_id, latest, room.state_ids())
        return RoomChain(room)

    def _down_to(self, room_id: str, top: Event, target: str, create_id: str) -> List[Event]:
        """Events from ``target`` up to just below ``top`` (oldest first), when ``target`` is
        within one page below ``top``; otherwise none (``target`` is then older than the run)."""
        assert self.backfill is not None
        page = self.backfill(room_id, top.event_id, JOIN_PAGE)
        ids = [e.event_id for e in page]
        if target not in ids:
            return []
        page = page[: ids.index(target) + 1]
        check_links_down(room_id, top, page)
        page = [e for e in page if e.event_id != create_id]  # kept, not a row
        self.verify(page)
        return list(reversed(page))

    # --- checking the history before the snapshot -------------------------------------------------

    def verify_history(self, room_id: str, anchor: Event, state_ids: Dict[Tuple[str, str], str]) -> bool:
        """Replay the room from the create event up to ``anchor`` (the snapshot's latest) with
        every check of rule 5 and compare the state it ends in with the snapshot's
        (``state_ids``): what ``history = "full"`` checks at once, done afterwards (PROFILE.md
        section 4 rule 6: "replays it (at once or in the background)").  Memory is bounded:
        a first walk down keeps one event ID per backfill page, a second pass fetches the pages
        again oldest first.  Nothing is stored; the verdict is logged and kept in
        ``verification``.  Returns True when the history checks."""
        self.verification[room_id] = "running"
        try:
            replayed = self._replay(room_id, anchor)
            if replayed.state.state_ids() != state_ids:
                raise MalformedError("the replayed history ends in another state than the snapshot's")
        except _Stopping:
            self.verification[room_id] = "interrupted (the server stopped)"
            return False
        except Exception as exc:  # noqa: BLE001 - any failure is the verdict: log it, keep following
            self.verification[room_id] = f"failed: {type(exc).__name__}: {exc}"
            log.error("room %s: the history before the snapshot does NOT check: %s", room_id, exc)
            return False
        self.verification[room_id] = f"verified ({replayed.count} events)"
        log.info("room %s: the history before the snapshot checks (%d events replayed under the policy)",
                 room_id, replayed.count)
        return True

    def _replay(self, room_id: str, anchor: Event) -> RoomChain:
        if self.backfill is None:
            raise NotFoundError(f"no hub to fetch the history of {room_id} from")
        # Down: one cursor per page (the event the page precedes), every link and signature.
        cursors: List[str] = []
        cursor = anchor
        while cursor.prev_event:
            self._check_not_closing()
            page = self.backfill(room_id, cursor.event_id, JOIN_PAGE)
            if not page:
                raise NotFoundError(f"the hub of {room_id} returned no events before {cursor.event_id}")
            check_links_down(room_id, cursor, page)
            cursors.append(cursor.event_id)
            cursor = page[-1]
        create = cursor
        chain = RoomChain.open(create, registry=self.registry, policies=self.policies)
        # Up: the same pages oldest first, each event checked completely (signatures again:
        # the hub answers anew).
        for before in reversed(cursors):
            self._check_not_closing()
            page = [e for e in reversed(self.backfill(room_id, before, JOIN_PAGE)) if e.event_id != create.event_id]
            if page and page[0].prev_event != chain.last_event_id:
                raise MalformedError(f"the history of {room_id} changed while it was checked")
            self.verify(page)
            for event in page:
                chain.append(event)
        self.verify([anchor])
        chain.append(anchor)
        return chain

    def _check_not_closing(self) -> None:
        if self._closing.is_set():
            raise _Stopping()

    def wait_verified(self, room_id: str, timeout: Optional[float] = None) -> bool:
        """Wait for the background check of ``room_id`` started by its join; its result."""
        future = self._verifying.get(room_id)
        if future is None:
            raise NotFoundError(f"no background check of {room_id} was started")
        return future.result(timeout)

    # --- loading ------------------------------------------------------------------------------------

    def load(self, room_id: str) -> RoomChain:
        """Rebuild a partial history's state: the checkpoint, then the run applied in order."""
        with self.bottom_lock(room_id):
            checkpoint = decode_events([k.event_bytes for k in self.store.kept_events(room_id, checkpoint_only=True)])
            if not checkpoint or checkpoint[0].type != M_ROOM_CREATE:
                raise MalformedError(f"the partial history of {room_id} keeps no create event")
            oldest = self.store.oldest(room_id)
            if oldest is None:
                raise MalformedError(f"the partial history of {room_id} holds no recent event")
            state = RoomState.from_create(checkpoint[0], policies=self.policies, registry=self.registry,
                                          track_history=False)
            for event in checkpoint[1:]:
                state.apply(event)
            chain = RoomChain(state)
            first = True
            for index, raw in self.store.iter_events(room_id):
                event = Event.decode(raw)
                if first:
                    state.count, state.last_event_id, first = index, event.prev_event, False
                    # The checkpoint plus the run replayed in order is exact after the
                    # snapshot's position (below it the checkpoint may hold later values):
                    # visibility is decided from there on, as at the join.
                    state.start_history(known_from=JOIN_POSITION + 1)
                chain.apply_trusted(event)
            self._low[room_id] = oldest[0]
            return chain

    # --- pruning ------------------------------------------------------------------------------------

    def appended(self, room_id: str, count: int) -> None:
        """After the run grew to end at local position ``count - 1``: prune it in the
        background when it holds more than ``keep_recent + prune_slack`` events."""
        low = self._low.get(room_id)
        if low is None or count - low <= self.keep_recent + self.prune_slack:
            return
        if self._pruner is None:
            self.prune(room_id)
            return
        with self._locks_guard:
            pending = self._scheduled.get(room_id)
            if pending is not None and not pending.done():
                return
            self._scheduled[room_id] = self._pruner.submit(self._prune_logged, room_id)

    def _prune_logged(self, room_id: str) -> None:
        try:
            self.prune(room_id)
        except Exception:  # a failed prune is retried after the next delivery
            log.exception("pruning %s failed", room_id)

    def prune(self, room_id: str) -> int:
        """Drop the run's events below the last ``keep_recent``, ``PRUNE_BATCH`` rows per
        transaction; the state events among them become the checkpoint (kept).  Returns the
        number of rows dropped."""
        dropped = 0
        while True:
            with self.bottom_lock(room_id):
                latest, oldest = self.store.latest(room_id), self.store.oldest(room_id)
                if latest is None or oldest is None:
                    return dropped
                cut = latest[0] - self.keep_recent + 1
                if oldest[0] >= cut:
                    self._low[room_id] = oldest[0]
                    break
                end = min(cut, oldest[0] + PRUNE_BATCH)
                moved: Dict[Tuple[str, str], KeptEvent] = {}
                for _, raw in self.store.iter_events(room_id, start=oldest[0], end=end):
                    event = Event.decode(raw)
                    if event.is_state:
                        moved[(event.type, event.state_key or "")] = _kept(event, True)
                dropped += self.store.prune_below(room_id, end, list(moved.values()))
                self._low[room_id] = end
        if dropped:
            self.pruned += dropped
            log.info("room %s: pruned %d events older than the last %d", room_id, dropped, self.keep_recent)
        return dropped

    # --- older events on demand --------------------------------------------------------------------

    def fetch_below(self, room_id: str, want: int, *, until: Optional[str] = None) -> int:
        """Fetch up to ``want`` events below the lowest one held (or until the event ``until``
        is held), checking every page before storing it below the run.  Returns the number of
        events stored.  A page that does not link, or an event that does not verify, raises a
        typed ``MimiError`` and nothing of that page is stored."""
        if self.backfill is None:
            raise NotFoundError(f"no hub to fetch older events of {room_id} from")
        create_id = self._create_id(room_id)
        stored = 0
        with self.bottom_lock(room_id):
            while stored < want and (until is None or self.store.index_of(room_id, until) is None):
                oldest = self.store.oldest(room_id)
                if oldest is None:
                    break
                raw = self.store.get_by_index(room_id, oldest[0])
                assert raw is not None
                bottom = Event.decode(raw)
                if not bottom.prev_event or bottom.prev_event == create_id:
                    break  # the whole history is held
                page = self.backfill(room_id, bottom.event_id, min(JOIN_PAGE, want - stored))
                if not page:
                    raise NotFoundError(f"the hub of {room_id} returned no events before {bottom.event_id}")
                check_links_down(room_id, bottom, page)
                self.verify(page)
                page = [e for e in page if e.event_id != create_id]  # kept, not a row
                if not page:
                    break
                if oldest[0] - len(page) < 1:
                    raise MalformedError(f"room {room_id}: more history than a partial history can place")
                self.store.insert_known_many(
                    [_row(room_id, oldest[0] - 1 - i, e) for i, e in enumerate(page)]
                )
                stored += len(page)
                self._low[room_id] = oldest[0] - len(page)
        self.fetched += stored
        if stored:
            log.info("room %s: fetched %d older events from the hub", room_id, stored)
        return stored

    def _create_id(self, room_id: str) -> str:
        kept = self.store.kept_events(room_id, checkpoint_only=True)
        if not kept or kept[0].type != M_ROOM_CREATE:
            raise MalformedError(f"the partial history of {room_id} keeps no create event")
        return kept[0].event_id

    def get_event(self, room_id: str, event_id: str) -> Event:
        """An event of the room, fetched and linked down from what we hold when needed."""
        raw = self.store.get_event(room_id, event_id)
        if raw is not None:
            return Event.decode(raw)
        if self.fetch_event is None:
            raise NotFoundError(f"no event {event_id} in {room_id}")
        # The hub's answer says whether the event exists at all (not_found ends it here); only
        # a link down from what we hold makes it one of this room's chain.
        candidate = self.fetch_event(room_id, event_id)
        if candidate.event_id != event_id or candidate.room_id != room_id:
            raise MalformedError(f"the hub of {room_id} answered get_event {event_id} with {candidate.event_id}")
        self.fetch_below(room_id, ON_DEMAND_WALK, until=event_id)
        raw = self.store.get_event(room_id, event_id)
        if raw is None:
            raise NotFoundError(
                f"{event_id} is not within {ON_DEMAND_WALK} events below the oldest event this follower holds in {room_id}"
            )
        return Event.decode(raw)

    def history_before(self, room_id: str, before: str, limit: int) -> List[Tuple[int, Event]]:
        """Up to ``limit`` events preceding ``before`` as ``(local position, event)``, oldest
        first, fetching from the hub what is no longer held."""
        self.get_event(room_id, before)
        index = self.store.index_of(room_id, before)
        if index is None:  # a kept event: its position is not known
            raise NotFoundError(f"{before} is a state event of the snapshot of {room_id}; its position is not known")
        with self.bottom_lock(room_id):
            oldest = self.store.oldest(room_id)
            assert oldest is not None
            missing = limit - (index - oldest[0])
            if missing > 0:
                self.fetch_below(room_id, missing)
            rows = list(self.store.iter_events(room_id, start=max(1, index - limit), end=index))
        return [(i, Event.decode(raw)) for i, raw in rows]
