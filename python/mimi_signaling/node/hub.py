"""The hub: sequences the rooms whose room ID names this server.

``Hub.accept`` is the hub's whole job for one limited event, in this order (PROFILE.md
sections 2, 4 and 7): the TLS peer is the origin server, the origin signature and the exact
content hash check, the shape (type registry, state key, content), the auth events are
selected and the policy is applied to the state before the event, ``prev_event`` is filled,
the hub signs, and the event is appended durably together with its fan-out queue entries.
Only then does ``accept`` return, so an acknowledged event is never lost.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .._core import (
    BadSignatureError,
    CreateContent,
    Event,
    EventHeader,
    InternalError,
    LimitedEvent,
    LimitedEventHeader,
    MalformedError,
    MimiError,
    NotFoundError,
    NotHubError,
    UnauthorizedError,
    UnknownRoomError,
    UserContent,
    decode_events,
    encode_events,
    event_headers,
    limited_event_digests,
    limited_event_headers,
    parse_room_id,
    sha256,
    sign_events,
    verify_limited_events,
)
from ..content import DecodedContent, Participation
from ..room.registry import EventTypeRegistry, PolicyRegistry
from ..room.state import RoomState, server_of
from .chain import RoomChain
from .keys import KeyStore
from .store import ChainConflictError, EventRow, EventStore

log = logging.getLogger(__name__)

DEFAULT_ENCRYPTION = "org.mimi.plaintext"
#: Appends retried after another writer (a second hub process on the same database) won a race.
CONFLICT_RETRIES = 8
#: Non-state submits remembered per room for idempotent retries (see ``_recent``).
RECENT_SUBMITS = 100_000
LOAD_BATCH = 4096
#: Events per part of a group's append stream: the store writes one part while the next is
#: sequenced and signed (see ``_accept_group``).
STREAM_PART = 64

#: A submit on its way through a group: (position in the call, the limited event, its
#: header, its digest).  The fields are read once, in one call for the group
#: (``limited_event_headers``), and the checks read the header from then on.
_Submit = Tuple[int, LimitedEvent, LimitedEventHeader, bytes]


def _remember(recent: "OrderedDict[bytes, str]", digest: bytes, event_id: str) -> None:
    recent[digest] = event_id
    if len(recent) > RECENT_SUBMITS:
        recent.popitem(last=False)


class _HubRoom:
    def __init__(self, chain: RoomChain, recent: "Optional[OrderedDict[bytes, str]]" = None) -> None:
        self.chain = chain
        self.lock = threading.Lock()
        # sha256(limited event) -> event ID of non-state submits already accepted (rebuilt from
        # the store on load, extended by catch-up), so that a retried or replayed submit
        # returns the accepted event instead of a duplicate.
        self.recent: "OrderedDict[bytes, str]" = recent if recent is not None else OrderedDict()

    def remember(self, digest: bytes, event_id: str) -> None:
        _remember(self.recent, digest, event_id)


class _GroupRun:
    """What one attempt at a group has sequenced and signed so far, across its parts."""

    def __init__(self, start: int, prev: str) -> None:
        self.index, self.prev = start, prev  # the next event's index and prev event ID
        self.signed: List[Event] = []
        self.headers: List[EventHeader] = []  # per event, as sequenced (the same fields once signed)
        self.owners: List[Tuple[int, bytes, bool]] = []  # (position, digest, non-state) per event
        self.fanouts: List[List[str]] = []  # each event's destinations, from the state right after it
        self.duplicates: Dict[int, int] = {}  # position -> index into the group's events
        self.digests: Dict[bytes, int] = {}  # non-state submit digest -> index
        self.ids: Dict[str, int] = {}  # event ID -> index
        self._count = 0  # events sequenced (signed or about to be)

    def add_unsigned(self, header: EventHeader, pos: int, digest: bytes, non_state: bool, fanout: List[str]) -> None:
        if non_state:
            self.digests[digest] = self._count
        self.ids[header.event_id] = self._count
        self.headers.append(header)
        self.owners.append((pos, digest, non_state))
        self.fanouts.append(fanout)
        self._count += 1

    def add_signed(self, chain: RoomChain, signed: List[Event]) -> List[EventRow]:
        """Record a part's signed events (the state keeps the signed copies); their rows."""
        rows: List[EventRow] = []
        for event, data in zip(signed, encode_events(signed)):
            header = self.headers[len(self.signed)]
            if header.state_key is not None:
                chain.state.replace_event(event)
            rows.append(EventRow(chain.room_id, self.index, header.event_id, self.prev, data, header.type,
                                 header.state_key, header.sender, self.fanouts[len(self.signed)]))
            self.signed.append(event)
            self.index, self.prev = self.index + 1, header.event_id
        return rows


class Hub:
    def __init__(
        self,
        server_name: str,
        keys: KeyStore,
        store: EventStore,
        *,
        registry: Optional[EventTypeRegistry] = None,
        policies: Optional[PolicyRegistry] = None,
    ) -> None:
        self.server_name = server_name
        self.keys = keys
        self.store = store
        self.registry = registry
        self.policies = policies
        self._rooms: Dict[str, _HubRoom] = {}
        self._rooms_lock = threading.Lock()
        #: Called with (events, seconds) after each batch verification of origin signatures.
        self.on_verified: Optional[Callable[[int, float], None]] = None
        #: Whether ``accept`` may fetch an origin's keys over the network.  A server sets it
        #: False and resolves the keys before a submit enters the group (``PeerKeyFetcher``):
        #: a group waiting on one peer's keys answer would hold every other peer's submits.
        self.fetch_keys = True

    # --- rooms ------------------------------------------------------------------------------

    def is_hub_for(self, room_id: str) -> bool:
        return parse_room_id(room_id)[1] == self.server_name

    def rooms(self) -> List[str]:
        return [r for r in self.store.rooms() if self.store.room_role(r) == "hub"]

    def _room(self, room_id: str) -> _HubRoom:
        room = self._rooms.get(room_id)
        if room is not None:
            return room
        if not self.is_hub_for(room_id):
            raise NotHubError(f"{self.server_name} is not the hub of {room_id}")
        with self._rooms_lock:
            room = self._rooms.get(room_id)
            if room is None:
                recent: "OrderedDict[bytes, str]" = OrderedDict()
                room = _HubRoom(self._load(room_id, recent), recent)
                self._rooms[room_id] = room
        return room

    def _load(self, room_id: str, recent: Optional["OrderedDict[bytes, str]"] = None) -> RoomChain:
        """Rebuild a room's state from the store (events this hub checked before storing).
        ``recent``: also remember the non-state events among the last ``RECENT_SUBMITS``, so
        that a replay of one of them after a restart is answered instead of re-sequenced."""
        chain: Optional[RoomChain] = None
        batch: List[bytes] = []
        tail_from = 0
        if recent is not None:
            latest = self.store.latest(room_id)
            tail_from = max(0, (latest[0] + 1 if latest else 0) - RECENT_SUBMITS)
        index = 0
        for _, raw in self.store.iter_events(room_id, batch=LOAD_BATCH):
            batch.append(raw)
            if len(batch) >= LOAD_BATCH:
                chain = self._apply_stored(room_id, chain, batch, index, tail_from, recent)
                index += len(batch)
                batch = []
        if batch:
            chain = self._apply_stored(room_id, chain, batch, index, tail_from, recent)
        if chain is None:
            raise UnknownRoomError(f"unknown room {room_id}")
        return chain

    def _apply_stored(self, room_id: str, chain: Optional[RoomChain], blobs: List[bytes], first: int = 0,
                      tail_from: int = 0, recent: Optional["OrderedDict[bytes, str]"] = None) -> RoomChain:
        events = decode_events(blobs)
        for i, (event, header) in enumerate(zip(events, event_headers(events)), start=first):
            if chain is None:
                chain = RoomChain.open(event, header=header, registry=self.registry, policies=self.policies)
            else:
                chain.apply_trusted(event, header=header)
            if recent is not None and i >= tail_from and header.state_key is None:
                _remember(recent, sha256(event.limited().encode()), header.event_id)
        assert chain is not None
        return chain

    def _catch_up(self, room: _HubRoom) -> None:
        """Apply events another writer appended to the shared store since we last looked."""
        latest = self.store.latest(room.chain.room_id)
        if latest is None or latest[1] == room.chain.last_event_id:
            return
        start = room.chain.count
        blobs = [raw for _, raw in self.store.iter_events(room.chain.room_id, start=start)]
        events = decode_events(blobs)
        for event, header in zip(events, event_headers(events)):
            room.chain.apply_trusted(event, header=header)
            if header.state_key is None:  # another process's submits are replays here too
                room.remember(sha256(event.limited().encode()), header.event_id)
        log.info("room %s: caught up %d events written by another hub process", room.chain.room_id, len(blobs))

    def _forget(self, room_id: str) -> None:
        with self._rooms_lock:
            self._rooms.pop(room_id, None)

    def state(self, room_id: str) -> RoomState:
        """The room's current ``RoomState`` (read-only use)."""
        return self._room(room_id).chain.state

    # --- creating rooms and sending as local users ------------------------------------------

    def create_room(
        self,
        creator: str,
        *,
        room_id: Optional[str] = None,
        policy_id: str = "m.0",
        encryption_algorithm: str = DEFAULT_ENCRYPTION,
        initial_state: Sequence[Tuple[str, str, bytes]] = (),
    ) -> List[Event]:
        """Create a room in one call: the create event, the creator's join, then any initial
        state events ``(type, state_key, content)`` sent by the creator."""
        if server_of(creator) != self.server_name:  # parses the ID (MalformedError)
            raise MalformedError(f"the creator {creator} must be a user of {self.server_name}")
        if room_id is None:
            room_id = f"!{secrets.token_urlsafe(12).replace('-', 'x').replace('_', 'y')}:{self.server_name}"
        if not self.is_hub_for(room_id):
            raise NotHubError(f"room {room_id} does not name {self.server_name}")
        with self._rooms_lock:
            if room_id in self._rooms or self.store.latest(room_id) is not None:
                raise MalformedError(f"room {room_id} already exists")
            key = self.keys.signing_key
            content = CreateContent(policy_id, encryption_algorithm).encode()
            create = LimitedEvent.create(room_id, "m.room.create", "", creator, content, key).to_event([], "", key)
            chain = RoomChain.open(create, registry=self.registry, policies=self.policies)
            self.store.put_room(room_id, "hub")
            self.store.append(room_id, 0, create.event_id, "", create.encode(), create.type, "", creator, destinations=())
            self._rooms[room_id] = _HubRoom(chain)
        events = [create, self.send(room_id, creator, "m.room.user", creator, UserContent(Participation.JOIN).encode())]
        for type_, state_key, body in initial_state:
            events.append(self.send(room_id, creator, type_, state_key, body))
        log.info("created room %s for %s", room_id, creator)
        return events

    def send(self, room_id: str, sender: str, type: str, state_key: Optional[str], content: bytes) -> Event:
        """Send as a local user: sign as origin with this server's key, then accept."""
        if server_of(sender) != self.server_name:
            raise UnauthorizedError(f"{sender} is not a user of {self.server_name}")
        limited = LimitedEvent.create(room_id, type, state_key, sender, content, self.keys.signing_key)
        return self.accept(limited)

    # --- accepting ------------------------------------------------------------------------------

    def accept(self, limited: LimitedEvent, *, peer: Optional[str] = None) -> Event:
        """Check, sequence, sign and durably store one limited event; return the accepted event.

        ``peer`` is the TLS peer's server name when the event came over the network: it must be
        the event's origin server.  Raises the typed error of PROFILE.md section 7.
        """
        result = self.accept_many([(limited, peer)])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def accept_many(self, items: Sequence[Tuple[LimitedEvent, Optional[str]]]) -> List[Union[Event, MimiError]]:
        """Group commit: accept ``(limited event, TLS peer)`` items in order, each one checked
        against the state left by the ones before it, and store every accepted event (with its
        fan-out entries) in one transaction per room.  Returns, per item, the accepted event or
        the error that refused it; nothing is acknowledged before the transaction commits."""
        results: List[Union[Event, MimiError, None]] = [None] * len(items)
        checked: List[Tuple[int, LimitedEvent, LimitedEventHeader]] = []
        headers = limited_event_headers([limited for limited, _ in items])
        for pos, ((limited, peer), header) in enumerate(zip(items, headers)):
            try:
                self._precheck(header, peer)
                checked.append((pos, limited, header))
            except MimiError as exc:
                results[pos] = exc
        errors = self._verify_origins([lim for _, lim, _ in checked], [h.origin_server for _, _, h in checked])
        verified: List[Tuple[int, LimitedEvent, LimitedEventHeader]] = []
        for item, error in zip(checked, errors):
            if error is not None:
                results[item[0]] = error
            else:
                verified.append(item)
        by_room: Dict[str, List[_Submit]] = {}
        for (pos, limited, header), digest in zip(verified, limited_event_digests([lim for _, lim, _ in verified])):
            by_room.setdefault(header.room_id, []).append((pos, limited, header, digest))
        for room_id, group in by_room.items():
            try:
                room = self._room(room_id)
            except MimiError as exc:
                for pos, _, _, _ in group:
                    results[pos] = exc
                continue
            with room.lock, self.store.room_writer_lock(room_id):
                self._accept_group(room, group, results)
        return results  # type: ignore[return-value]

    def _precheck(self, header: LimitedEventHeader, peer: Optional[str]) -> None:
        """What needs neither keys nor state: this is the hub, the TLS peer is the origin."""
        room_id = header.room_id
        if room_id not in self._rooms and not self.is_hub_for(room_id):  # a loaded room is one of ours
            raise NotHubError(f"{self.server_name} is not the hub of {room_id}")
        if peer is not None and peer != header.origin_server:
            raise UnauthorizedError(f"{peer} may not submit events of {header.origin_server}")

    def _verify_origins(self, events: List[LimitedEvent], origins: List[str]) -> List[Optional[MimiError]]:
        """Origin signatures and exact content hashes, batch-verified on all cores
        (``origins``: each event's origin server)."""
        errors: List[Optional[MimiError]] = [None] * len(events)
        missing: Dict[str, MimiError] = {}  # origin server -> why its keys are not available
        for origin in set(origins):
            try:
                self.keys.ensure([origin], fetch=self.fetch_keys)
            except MimiError as exc:
                missing[origin] = exc
        todo: List[int] = []
        for i, origin in enumerate(origins):
            if origin in missing:
                errors[i] = type(missing[origin])(str(missing[origin]))  # one exception per event
            else:
                todo.append(i)
        started = time.perf_counter()
        verdicts = verify_limited_events([events[i] for i in todo], self.keys.ring)
        if self.on_verified is not None:
            self.on_verified(len(todo), time.perf_counter() - started)
        for i, verdict in zip(todo, verdicts):
            if isinstance(verdict, BadSignatureError) and self.fetch_keys and self.keys.refresh(events[i].origin_server):
                # A signature under a key ID we had not seen: the origin rotated its key.
                try:
                    events[i].verify(self.keys.ring)
                    verdict = None
                except MimiError as exc:
                    verdict = exc
            if verdict is not None:
                verdict.index = None  # the batch position means nothing to the caller
            errors[i] = verdict
        return errors

    def _accept_group(self, room: _HubRoom, group: List[_Submit], results: List[Union[Event, MimiError, None]]) -> None:
        key = self.keys.signing_key  # one key for the whole group, even if a rotation starts now
        for _attempt in range(CONFLICT_RETRIES):
            self._catch_up(room)
            chain = room.chain
            # Store reads first: the append stream below holds the store until it commits.
            resubmits = self._resubmits(room, group)
            run = _GroupRun(chain.count, chain.last_event_id or "")
            try:
                with self.store.append_stream([chain.room_id]) as put:
                    # Sequence and sign a part while the store writes the part before it.
                    for part_start in range(0, len(group), STREAM_PART):
                        part = group[part_start:part_start + STREAM_PART]
                        unsigned = self._sequence_part(room, part, resubmits, run, results, key.key_id)
                        if unsigned:
                            put(run.add_signed(chain, sign_events(unsigned, key)))
            except ChainConflictError as exc:
                log.info("room %s: append raced another writer (%s); retrying", chain.room_id, exc)
                room.chain = self._load(chain.room_id, room.recent)
                continue
            except Exception as exc:  # the state ran ahead of the store: rebuild it from the store
                log.exception("room %s: storing %d events failed", chain.room_id, len(run.signed))
                room.chain = self._load(chain.room_id)
                for pos, _, _, _ in group:  # accepted ones and duplicates of them alike
                    if not isinstance(results[pos], MimiError):
                        results[pos] = InternalError(f"storing the event failed: {exc}")
                return
            for (pos, digest, non_state), event, header in zip(run.owners, run.signed, run.headers):
                results[pos] = event
                if non_state:
                    room.remember(digest, header.event_id)
            for pos, i in run.duplicates.items():
                results[pos] = run.signed[i]
            if run.signed:
                log.debug("room %s: accepted %d events up to #%d", chain.room_id, len(run.signed), chain.count - 1)
            return
        for pos, _, _, _ in group:
            if results[pos] is None:
                results[pos] = InternalError(f"room {room.chain.room_id}: could not append after {CONFLICT_RETRIES} conflicting writes")

    def _sequence_part(self, room: _HubRoom, part: List[_Submit],
                       resubmits: Dict[int, Event], run: "_GroupRun", results: List[Union[Event, MimiError, None]], key_id: str) -> List[Event]:
        """Sequence the items of one part against the state the earlier ones left; returns
        the new events, unsigned.  Refusals and resubmits are answered in ``results``."""
        chain = room.chain
        unsigned: List[Event] = []
        for pos, limited, header, digest in part:
            non_state = header.state_key is None
            try:
                if non_state and digest in run.digests:
                    run.duplicates[pos] = run.digests[digest]
                    continue
                existing = resubmits.get(pos)
                if existing is None:
                    existing = self._current_state_resubmit(room, limited, header)
                if existing is not None:
                    if existing.event_id in run.ids:  # a state event of this very group:
                        run.duplicates[pos] = run.ids[existing.event_id]  # answer with its signed copy
                    else:
                        results[pos] = existing
                    continue
                event, fields, content = self._sequence(room, limited, header, key_id)
                chain.state.apply(event, content, header=fields)
            except MimiError as exc:
                results[pos] = exc
                continue
            run.add_unsigned(fields, pos, digest, non_state, sorted(chain.fanout(fields, self.server_name)))
            unsigned.append(event)
        return unsigned

    def _resubmits(self, room: _HubRoom, group: List[_Submit]) -> Dict[int, Event]:
        """Position -> accepted event, for byte-identical resubmits of non-state events
        accepted before (their bytes are read from the store)."""
        found: Dict[int, Event] = {}
        for pos, _, header, digest in group:
            if header.state_key is None:
                event_id = room.recent.get(digest)
                raw = self.store.get_event(room.chain.room_id, event_id) if event_id is not None else None
                if raw is not None:
                    found[pos] = Event.decode(raw)
        return found

    def _current_state_resubmit(self, room: _HubRoom, limited: LimitedEvent, header: LimitedEventHeader) -> Optional[Event]:
        """A byte-identical resubmit of the current state event of its (type, state_key)."""
        if header.state_key is None:
            return None
        current = room.chain.state.get(header.type, header.state_key)
        if current is None or current.is_redacted():
            return None
        return current if current.limited() == limited else None

    def _sequence(self, room: _HubRoom, limited: LimitedEvent, header: LimitedEventHeader,
                  key_id: str) -> Tuple[Event, EventHeader, DecodedContent]:
        """Shape, auth events, prev event and policy (no state change); the event comes back
        without its hub signature, which ``sign_events`` adds for the whole group, with its
        header."""
        state = room.chain.state
        content = state.registry.check_shape(header, state)
        auth = state.policy.select_auth_events(state, header.type, header.state_key, header.sender, content)
        event = limited.to_unsigned_event(auth, state.last_event_id or "", key_id)
        fields = event.header()
        state.policy.check(state, fields, content=content)
        return event, fields, content

    # --- reading ------------------------------------------------------------------------------

    def _reader(self, room: _HubRoom, for_server: Optional[str]) -> Optional[str]:
        """The server a read speaks for, once it may read the room (PROFILE.md section 6;
        ``PolicyRejectedError`` otherwise); None for this server itself."""
        reader = None if for_server == self.server_name else for_server
        room.chain.require_reader(reader)
        return reader

    def get_event(self, room_id: str, event_id: str, *, for_server: Optional[str] = None) -> Event:
        room = self._room(room_id)
        reader = self._reader(room, for_server)
        index = self.store.index_of(room_id, event_id)
        raw = self.store.get_event(room_id, event_id) if index is not None else None
        if raw is None or index is None:
            raise NotFoundError(f"no event {event_id} in {room_id}")
        return room.chain.served(index, Event.decode(raw), reader)

    def get_state(self, room_id: str, type: str, state_key: str, *, for_server: Optional[str] = None) -> Event:
        room = self._room(room_id)
        self._reader(room, for_server)
        event = room.chain.state.get(type, state_key)
        if event is None:
            raise NotFoundError(f"no state event ({type}, {state_key!r}) in {room_id}")
        return event

    def backfill(self, room_id: str, before: str, limit: int, *, for_server: Optional[str] = None) -> List[Event]:
        """Up to ``limit`` events preceding ``before``, newest first."""
        room = self._room(room_id)
        reader = self._reader(room, for_server)
        index = self.store.index_of(room_id, before)
        if index is None:
            raise NotFoundError(f"no event {before} in {room_id}")
        start = max(0, index - limit)
        rows = list(self.store.iter_events(room_id, start=start, end=index))
        events = decode_events([raw for _, raw in rows])
        out = [room.chain.served(i, e, reader) for (i, _), e in zip(rows, events)]
        out.reverse()
        return out

    def snapshot(self, room_id: str, *, for_server: Optional[str] = None) -> Tuple[List[Event], List[Event], str]:
        """Current state events, their auth chain (every event reachable through auth_events,
        oldest first) and the latest event ID."""
        room = self._room(room_id)
        self._reader(room, for_server)
        with room.lock:
            state = room.chain.state
            events = state.events()
            latest = state.last_event_id or ""
        return events, self.auth_chain(room_id, events), latest

    def auth_chain(self, room_id: str, events: Iterable[Event]) -> List[Event]:
        seen: Dict[str, Tuple[int, Event]] = {}
        todo = [a for e in events for a in e.auth_events]
        while todo:
            event_id = todo.pop()
            if event_id in seen:
                continue
            index = self.store.index_of(room_id, event_id)
            raw = self.store.get_event(room_id, event_id)
            if raw is None or index is None:
                raise InternalError(f"auth event {event_id} of {room_id} is missing from the store")
            event = Event.decode(raw)
            seen[event_id] = (index, event)
            todo.extend(event.auth_events)
        return [e for _, e in sorted(seen.values(), key=lambda item: item[0])]
