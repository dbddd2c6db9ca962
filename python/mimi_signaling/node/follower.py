"""The follower: keeps the rooms other servers sequence, checking every event it receives.

For each fully-formed event (PROFILE.md section 4 rule 5): the TLS peer is the room's hub,
the content hash (or the redacted form), the origin and hub signatures, the prev link, the
shape and the policy against the state before the event.  An event that skips ahead is not
applied: the follower backfills the gap from the hub through ``prev_event`` pointers, checks
the missing events in order, then applies the one it received.  Events that are already
known are ignored, so duplicate and out-of-order deliveries are harmless.

How a follower starts following a room is its ``history`` setting: ``"full"`` fetches the
chain back to the create event and replays it with every check; ``"recent"`` starts from the
hub's snapshot and keeps a partial history (``node/partial.py``, PROFILE.md section 4 rule 6).
Either way every event after that gets every check.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from .._core import (
    Event,
    EventHeader,
    InternalError,
    MalformedError,
    MimiError,
    NotFoundError,
    RateLimitedError,
    UnauthorizedError,
    UnknownRoomError,
    UserContent,
    checked_events,
    decode_events,
    encode_events,
    event_headers,
    parse_room_id,
)
from ..content import Participation
from ..room.registry import EventTypeRegistry, PolicyRegistry
from ..room.state import RoomState
from .chain import RoomChain
from .invites import PendingInvites
from .keys import KeyStore
from .partial import DEFAULT_KEEP_RECENT, HISTORY_MODES, FetchEvent, PartialHistory, Snapshot, check_links_down
from .store import EventRow, EventStore

log = logging.getLogger(__name__)

#: ``backfill(room_id, before_event_id, limit) -> events newest first`` (the hub's backfill).
Backfill = Callable[[str, str, int], List[Event]]
BACKFILL_LIMIT = 1000
#: Upper bound on a catch-up, so a hostile hub cannot keep a follower fetching forever.
MAX_CATCH_UP = 10_000_000


class GapError(Exception):
    """An event arrived whose predecessor is unknown and no backfill source was given."""

    def __init__(self, room_id: str, have: Optional[str], missing_before: str) -> None:
        super().__init__(f"room {room_id}: gap before {missing_before} (last known {have})")
        self.room_id = room_id
        self.have = have
        self.missing_before = missing_before


def _hub_of(room_id: str) -> str:
    return parse_room_id(room_id)[1]


class Follower:
    def __init__(
        self,
        server_name: str,
        keys: KeyStore,
        store: EventStore,
        *,
        backfill: Optional[Backfill] = None,
        registry: Optional[EventTypeRegistry] = None,
        policies: Optional[PolicyRegistry] = None,
        snapshot: Optional[Snapshot] = None,
        fetch_event: Optional[FetchEvent] = None,
        history: str = "full",
        keep_recent: int = DEFAULT_KEEP_RECENT,
        background_prune: bool = True,
        verify_history: bool = False,
    ) -> None:
        if history not in HISTORY_MODES:
            raise ValueError(f"history must be one of {HISTORY_MODES}, not {history!r}")
        self.server_name = server_name
        self.keys = keys
        self.store = store
        self.backfill = backfill
        self.registry = registry
        self.policies = policies
        #: How rooms are joined from now on; rooms already followed keep what they have.
        self.history = history
        self.partial = PartialHistory(
            store, self._check_signatures, keep_recent=keep_recent, backfill=backfill, snapshot=snapshot,
            fetch_event=fetch_event, registry=registry, policies=policies, background=background_prune,
            verify_history=verify_history,
        )
        self._partial_rooms: Set[str] = set()
        self._chains: Dict[str, RoomChain] = {}
        # Re-entrant: a delivery for a room we do not follow yet may start following it.
        self._locks: Dict[str, threading.RLock] = {}
        self._lock = threading.Lock()
        #: Invites of our users into rooms we do not follow yet (bounded records).
        self.invites = PendingInvites()
        #: Rooms a user of ours is joining (``joining``): deliveries wait for the join.
        self._joining: Dict[str, int] = {}

    def rooms(self) -> List[str]:
        return [r for r in self.store.rooms() if self.store.room_role(r) == "follower"]

    def follows(self, room_id: str) -> bool:
        return room_id in self._chains or self.store.room_role(room_id) == "follower"

    def loaded(self, room_id: str) -> bool:
        """Followed and in memory (no store read: callable from the event loop)."""
        return room_id in self._chains

    def _room_lock(self, room_id: str) -> threading.RLock:
        with self._lock:
            return self._locks.setdefault(room_id, threading.RLock())

    def is_partial(self, room_id: str) -> bool:
        if room_id in self._partial_rooms:
            return True
        if self.store.is_partial(room_id):
            self._partial_rooms.add(room_id)
            return True
        return False

    def _held(self, room_id: str, event_id: str) -> bool:
        """Stored: a chain row, or in a partial history also a kept (snapshot) event."""
        if self.store.index_of(room_id, event_id) is not None:
            return True
        return self.is_partial(room_id) and self.store.holds(room_id, event_id)

    def close(self) -> None:
        """Wait for background pruning to finish."""
        self.partial.close()

    def chain(self, room_id: str) -> RoomChain:
        chain = self._chains.get(room_id)
        if chain is None:
            chain = self._load(room_id)
            if chain is None:
                raise UnknownRoomError(f"{self.server_name} does not follow {room_id}")
            self._chains[room_id] = chain
        return chain

    def state(self, room_id: str) -> RoomState:
        return self.chain(room_id).state

    def _load(self, room_id: str) -> Optional[RoomChain]:
        if self.store.room_role(room_id) != "follower":
            return None
        if self.is_partial(room_id):
            return self.partial.load(room_id)
        chain: Optional[RoomChain] = None
        rows = [raw for _, raw in self.store.iter_events(room_id)]
        for event in decode_events(rows):
            if chain is None:
                chain = RoomChain.open(event, registry=self.registry, policies=self.policies)
            else:
                chain.apply_trusted(event)
        return chain

    # --- receiving ----------------------------------------------------------------------------

    def receive(self, event: Event, *, peer: Optional[str] = None) -> List[Event]:
        """Check and apply a delivered event (and any gap before it); return what was applied."""
        room_id = event.room_id
        hub = _hub_of(room_id)
        if peer is not None and peer != hub:
            raise UnauthorizedError(f"{peer} is not the hub of {room_id}; only {hub} delivers its events")
        if not self.follows(room_id):
            return self._unknown_room(event, hub)
        self._check_signatures([event])
        with self._room_lock(room_id):
            chain = self.chain(room_id)
            if self._held(room_id, event.event_id):
                return []  # duplicate delivery
            if event.prev_event == chain.last_event_id:
                self._append(chain, [event])
                return [event]
            return self._catch_up(chain, event)

    def receive_many(self, blobs: Sequence[bytes], *, peer: Optional[str] = None) -> List[Optional[MimiError]]:
        """Apply a run of deliveries as one (PROFILE.md section 7: "a follower applies a run of
        deliveries as one"): decoding, hashes and both signatures of every event in one Rust
        call, then per room the links, shape and policy in order, and one commit per room.

        Each entry is judged as ``receive`` would judge it alone: the result is None (applied,
        or known already) or the error that refused that entry; "one refused entry refuses no
        other", and an event after a refused one meets an unknown prev and is caught up by
        backfill as any gap.  The stored bytes are the delivered ones (no re-encoding)."""
        results: List[Optional[MimiError]] = [None] * len(blobs)
        checked, failures = checked_events(blobs, self.keys.ring)  # decoded once, IDs known
        failed = dict(failures)  # index: error
        fast = [i for i, event in enumerate(checked) if event is not None]
        decoded = [event for event in checked if event is not None]
        # Each event's fields are read once, in one call for the run, and from its header after.
        events: Dict[int, Tuple[Event, EventHeader]] = dict(zip(fast, zip(decoded, event_headers(decoded))))
        hubs: Dict[str, str] = {}  # room ID -> its hub's server name, parsed once per run
        for i in failed:
            # A key we do not hold yet or one rotated since: the single path's fetch and
            # re-check; a real failure gets the verdict it would get alone.
            try:
                event = Event.decode(blobs[i])
                header = event.header()
                self._check_peer(header.room_id, peer, hubs)
                if self.follows(header.room_id):  # else _apply_run refuses it as receive would
                    self._check_signatures([event])
                events[i] = (event, header)
            except MimiError as exc:
                results[i] = exc
        by_room: Dict[str, List[Tuple[int, Event, EventHeader]]] = {}
        for i in fast:
            event, header = events[i]
            try:
                self._check_peer(header.room_id, peer, hubs)
            except MimiError as exc:
                results[i] = exc
                continue
            by_room.setdefault(header.room_id, []).append((i, event, header))
        for i in failed:  # fetched and verified the slow way: back in delivery order
            if i in events:
                event, header = events[i]
                by_room.setdefault(header.room_id, []).append((i, event, header))
        for room_id, items in by_room.items():
            items.sort(key=lambda item: item[0])
            with self._room_lock(room_id):
                self._apply_run(room_id, items, blobs, results)
        return results

    @staticmethod
    def _check_peer(room_id: str, peer: Optional[str], hubs: Dict[str, str]) -> None:
        hub = hubs.get(room_id)
        if hub is None:
            hub = hubs[room_id] = _hub_of(room_id)
        if peer is not None and peer != hub:
            raise UnauthorizedError(f"{peer} is not the hub of {room_id}; only {hub} delivers its events")

    def _apply_run(self, room_id: str, items: List[Tuple[int, Event, EventHeader]], blobs: Sequence[bytes],
                   results: List[Optional[MimiError]]) -> None:
        """(Room lock held.)  Events that extend the chain are checked and applied in order and
        stored in one ``append_many``; a duplicate is ignored; one that skips ahead is caught
        up by backfill after what came before it is stored."""
        staged: List[Tuple[int, EventRow]] = []  # applied to the chain, not stored yet

        def flush() -> None:
            if not staged:
                return
            rows = [row for _, row in staged]
            try:
                self.store.append_many(rows)
            except Exception as exc:  # nothing of the run is stored; the state is ahead: reload
                log.exception("room %s: storing %d delivered events failed", room_id, len(rows))
                self._chains.pop(room_id, None)
                for i, _ in staged:
                    results[i] = InternalError(f"storing the event failed: {exc}")
            else:
                if room_id in self._partial_rooms:
                    self.partial.appended(room_id, rows[-1].index + 1)
            staged.clear()

        for i, event, header in items:
            try:
                if not self.follows(room_id):
                    flush()
                    self._unknown_room(event, _hub_of(room_id))
                    continue
                chain = self.chain(room_id)
                if header.prev_event == chain.last_event_id:
                    chain.append(event, header=header)
                    staged.append((i, EventRow(room_id, chain.count - 1, header.event_id, header.prev_event,
                                               bytes(blobs[i]), header.type, header.state_key, header.sender)))
                    continue
                flush()
                chain = self.chain(room_id)
                if self._held(room_id, header.event_id):
                    continue  # duplicate delivery
                self._catch_up(chain, event)
            except MimiError as exc:
                results[i] = exc
            except Exception as exc:  # a bug must not cost the other entries their answer
                log.exception("room %s: applying delivered event %s failed", room_id, header.event_id)
                results[i] = InternalError(f"applying the event failed: {exc}")
                flush()  # what was applied before it is sound: store it, then reload the state
                self._chains.pop(room_id, None)
        flush()

    def _unknown_room(self, event: Event, hub: str) -> List[Event]:
        """A delivery into a room we do not follow: an invite for one of our users is checked
        and recorded (the room is followed once a user of ours joins, ``sync``); a delivery
        into a room a user of ours is joining waits for the join (``rate_limited``: the hub
        retries); anything else is refused ``not_found`` before any fetch, so that no
        peer can make us fetch, store or follow a room none of our users is in."""
        if self._is_invite_for_us(event):
            self._check_signatures([event])
            self.invites.add(event, hub)
            log.info("pending invite for %s into %s from %s", event.state_key, event.room_id, hub)
            return []
        if event.room_id in self._joining:  # the join flow follows the room: not twice at once
            raise RateLimitedError(f"{self.server_name} is joining {event.room_id}; deliver again shortly")
        log.info("refused a delivery from %s into %s, a room %s does not follow", hub, event.room_id, self.server_name)
        raise NotFoundError(f"{self.server_name} does not follow {event.room_id}")

    def _is_invite_for_us(self, event: Event) -> bool:
        if event.type != "m.room.user" or not event.state_key or not event.state_key.endswith(":" + self.server_name):
            return False
        try:
            return UserContent.decode(event.content).participation == Participation.INVITE
        except MimiError:
            return False  # redacted or malformed: not an invite we could act on

    @contextlib.contextmanager
    def joining(self, room_id: str) -> Iterator[None]:
        """While a user of ours joins ``room_id`` (its first event sent to the hub, the room
        fetched): deliveries into it are asked to come again instead of refused."""
        with self._lock:
            self._joining[room_id] = self._joining.get(room_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._joining[room_id] -= 1
                if not self._joining[room_id]:
                    del self._joining[room_id]

    def sync(self, room_id: str, newest: Event) -> List[Event]:
        """Follow ``room_id`` from scratch up to ``newest`` (e.g. our user's accepted join):
        with ``history = "full"`` fetch the chain back to the create event and replay it with
        every check, with ``"recent"`` join from the snapshot (``join_recent``)."""
        with self._room_lock(room_id):
            if self.follows(room_id):
                if self._held(room_id, newest.event_id):
                    return []
                return self._catch_up(self.chain(room_id), newest)
            if self.history == "recent" and self.partial.snapshot is not None:
                self.join_recent(room_id, newest)
                return [newest]
            chain: Optional[RoomChain] = None
            last: List[Event] = []
            try:
                for page in self._gap_pages(room_id, newest, known=lambda _id: False):
                    if chain is None:  # the first page starts at the create event
                        chain = RoomChain.open(page[0], registry=self.registry, policies=self.policies)
                        self.store.put_room(room_id, "follower")
                        self.store.append_many([self._row(room_id, 0, page[0].header(), page[0].encode())])
                        self._chains[room_id] = chain
                        page = page[1:]
                    self._append(chain, page)
                    last = page
            except BaseException:
                # What was stored is a checked prefix of the room: followed from there on.
                self._chains.pop(room_id, None)
                raise
            self.invites.pop_room(room_id)
            log.info("following %s from %d events", room_id, chain.count if chain is not None else 0)
            return last

    def join_recent(self, room_id: str, accepted: Optional[Event] = None) -> RoomChain:
        """Follow ``room_id`` from the hub's snapshot (``history = "recent"``); ``accepted`` is
        our user's accepted join when known.  Nothing is stored unless every check passes."""
        with self._room_lock(room_id):
            if self.follows(room_id):
                chain = self.chain(room_id)
                if accepted is not None and not self.store.holds(room_id, accepted.event_id):
                    self._catch_up(chain, accepted)
                return chain
            chain = self.partial.join(room_id, accepted)
            self._partial_rooms.add(room_id)
            self._chains[room_id] = chain
            self.invites.pop_room(room_id)
            return chain

    def _catch_up(self, chain: RoomChain, newest: Event) -> List[Event]:
        """Fill the gap before ``newest`` page by page (each checked, applied and stored before
        the next is fetched); the events applied, for a gap longer than one page the last page
        of them."""
        if self.backfill is None:
            raise GapError(chain.room_id, chain.last_event_id, newest.event_id)
        known = lambda event_id: self._held(chain.room_id, event_id)  # noqa: E731
        applied = 0
        last: List[Event] = []
        for page in self._gap_pages(chain.room_id, newest, known=known):
            if not applied and page[0].prev_event != chain.last_event_id:
                raise MalformedError(f"backfill of {chain.room_id} does not link to our last event {chain.last_event_id}")
            self._append(chain, page)
            applied += len(page)
            last = page
        log.info("room %s: filled a gap of %d events", chain.room_id, applied - 1)
        return last

    def _gap_pages(self, room_id: str, newest: Event, known: Callable[[str], bool]) -> Iterator[List[Event]]:
        """The events from the first unknown one up to ``newest``, oldest first, in pages of at
        most ``BACKFILL_LIMIT`` events; every page's links, content hashes and signatures are
        checked as it arrives, before the next is asked for.

        Memory stays bounded whatever the gap's length: walking down, the events are kept
        only while they fit in one page; past that only the first and last event ID of each
        page are, and the pages are fetched again oldest first, each checked again (IDs,
        links, signatures: a hub may answer differently the second time) and handed out."""
        assert self.backfill is not None
        self._check_signatures([newest])
        held: Optional[List[Event]] = [newest]
        pages: List[Tuple[str, str, str, int]] = []  # (before, newest ID, oldest ID, count) per page
        cursor, total = newest, 1
        while cursor.prev_event and not known(cursor.prev_event):
            if total > MAX_CATCH_UP:
                raise MalformedError(f"room {room_id}: catch-up longer than {MAX_CATCH_UP} events")
            page = self._backfill_page(room_id, cursor, BACKFILL_LIMIT, known)
            pages.append((cursor.event_id, page[0].event_id, page[-1].event_id, len(page)))
            total += len(page)
            if held is not None:
                held.extend(page)
                if len(held) > BACKFILL_LIMIT:
                    held = None  # too long to hold: fetched again below, page by page
            cursor = page[-1]
        if held is not None:
            held.reverse()
            yield held
            return
        log.info("room %s: a gap of %d events, applied in %d pages", room_id, total, len(pages))
        for before, top, bottom, count in reversed(pages):
            page = self.backfill(room_id, before, count)[:count]
            if len(page) != count or page[0].event_id != top or page[-1].event_id != bottom:
                raise MalformedError(f"backfill of {room_id}: the page before {before} changed between two fetches")
            for upper, lower in zip(page, page[1:]):
                if upper.prev_event != lower.event_id or lower.room_id != room_id:
                    raise MalformedError(f"backfill of {room_id}: {lower.event_id} is not the prev of {upper.event_id}")
            self._check_signatures(page)
            page.reverse()
            yield page
        yield [newest]

    def _backfill_page(self, room_id: str, top: Event, limit: int, known: Callable[[str], bool]) -> List[Event]:
        """One backfill page below ``top`` (newest first), cut where it reaches an event we
        hold or the create event, its links, hashes and signatures checked."""
        assert self.backfill is not None
        page = self.backfill(room_id, top.event_id, limit)
        if not page:
            raise NotFoundError(f"the hub of {room_id} returned no events before {top.event_id}")
        for end, event in enumerate(page, start=1):
            if not event.prev_event or known(event.prev_event):
                page = page[:end]
                break
        check_links_down(room_id, top, page)
        self._check_signatures(page)
        return page

    def _check_signatures(self, events: Sequence[Event]) -> None:
        self.keys.verify_all(events, lambda e: (e.hub_server, e.origin_server))

    def _append(self, chain: RoomChain, events: List[Event]) -> None:
        """Policy-check, apply and store events that follow the chain's last event."""
        start = chain.count
        headers = event_headers(events)
        try:
            for event, header in zip(events, headers):
                chain.append(event, header=header)
            self.store.append_many([self._row(chain.room_id, start + i, header, data)
                                    for i, (header, data) in enumerate(zip(headers, encode_events(events)))])
        except BaseException:
            # Nothing of this batch is stored; the in-memory state may be ahead: reload it.
            self._chains.pop(chain.room_id, None)
            raise
        if chain.room_id in self._partial_rooms:
            self.partial.appended(chain.room_id, chain.count)

    @staticmethod
    def _row(room_id: str, index: int, header: EventHeader, data: bytes) -> EventRow:
        return EventRow(room_id, index, header.event_id, header.prev_event, data, header.type, header.state_key, header.sender)

    # --- reading --------------------------------------------------------------------------------

    def get_event(self, room_id: str, event_id: str, *, for_server: Optional[str] = None) -> Event:
        """An event we hold, in the form ``for_server`` may receive: the hub's rules (who may
        read, whole or redacted; PROFILE.md section 6) on the history this follower holds.
        None (or this server): whole, with no check.  A partial history fetches an older
        event from the hub, checked and linked down from what it holds
        (``PartialHistory.get_event``)."""
        chain = None
        if for_server is not None and for_server != self.server_name:
            chain = self.chain(room_id)
            chain.require_reader(for_server)
        if self.follows(room_id) and self.is_partial(room_id):
            event = self.partial.get_event(room_id, event_id)
            index = self.store.index_of(room_id, event_id)
            # Visibility is known from the snapshot on; older events are served redacted.
            return event if chain is None else chain.served(index if index is not None else -1, event, for_server)
        index = self.store.index_of(room_id, event_id)
        raw = self.store.get_event(room_id, event_id) if index is not None else None
        if raw is None or index is None:
            raise NotFoundError(f"no event {event_id} in {room_id}")
        event = Event.decode(raw)
        return event if chain is None else chain.served(index, event, for_server)

    def history_before(self, room_id: str, before: str, limit: int) -> List[Tuple[int, Event]]:
        """Up to ``limit`` events preceding ``before`` as ``(position, event)``, oldest first;
        a partial history fetches from the hub what it no longer holds."""
        if self.is_partial(room_id):
            return self.partial.history_before(room_id, before, limit)
        index = self.store.index_of(room_id, before)
        if index is None:
            raise NotFoundError(f"no event {before} in {room_id}")
        rows = self.store.iter_events(room_id, start=max(0, index - limit), end=index)
        return [(i, Event.decode(raw)) for i, raw in rows]
