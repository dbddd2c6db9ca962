"""Room export files (PROFILE.md section 9): write, verify and generate them.

A room file is ``MIMIROOM``, ``uint16 version = 1``, then records ``struct { uint8 kind;
opaque body<V>; }``: kind 1 ``ServerKeys`` (all before the first event), kind 2 ``Event`` in
room order from the create event.

* ``export_room`` streams a room from an ``EventStore`` into a file (temporary file, then an
  atomic rename).
* ``verify_room_file`` is ``mimi verify``: the Rust ``ChainValidator`` checks decoding, hashes,
  links and every signature of a chunk in parallel with the GIL released; then a policy pass
  walks the chunk through ``RoomChain`` (shape + m.0 policy + apply).  Memory is bounded by the
  room's state and one or two chunks, not by its history.
* ``generate_room`` writes a valid room of N events quickly (for tests and benchmarks), with
  optional faults of each kind at chosen indices.
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import (
    IO,
    Any,
    Callable,
    Deque,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ._core import (
    ROOM_FILE_MAGIC,
    ChainValidator,
    Event,
    InternalError,
    KeyRing,
    LimitedEvent,
    MalformedError,
    MimiError,
    NotFoundError,
    Permission,
    RoleConfig,
    RoleContent,
    RoleMapContent,
    RoomFileReader,
    ServerKeys,
    SigningKey,
    base64url_encode,
    decode_events,
    decode_varint,
    encode_room_file_header,
    encode_room_file_record,
    parse_room_id,
    parse_user_id,
    sha256,
)
from .content import (
    M_ROOM_AVATAR,
    M_ROOM_CREATE,
    M_ROOM_ENCRYPTED,
    M_ROOM_HISTORY_VISIBILITY,
    M_ROOM_JOIN_RULES,
    M_ROOM_NAME,
    M_ROOM_ROLE,
    M_ROOM_ROLE_MAP,
    M_ROOM_TOPIC,
    M_ROOM_USER,
    JoinRule,
    Participation,
    PermissionKind,
    Visibility,
    create_content,
    decode_content,
    history_visibility_content,
    join_rules_content,
    text_content,
    user_content,
)
from .node.chain import RoomChain
from .node.keys import KeyStore
from .node.store import EventStore

__all__ = [
    "RECORD_SERVER_KEYS",
    "RECORD_EVENT",
    "DEFAULT_CHUNK",
    "RoomFileWriter",
    "export_room",
    "VerifyFailure",
    "VerifyReport",
    "RoomFileNotReadable",
    "Progress",
    "verify_room_file",
    "Fault",
    "FAULT_KINDS",
    "GeneratedRoom",
    "generate_room",
]

log = logging.getLogger(__name__)

RECORD_SERVER_KEYS = 1
RECORD_EVENT = 2
HEADER_SIZE = len(ROOM_FILE_MAGIC) + 2
#: Events per chunk handed to the Rust validator: large enough to keep all cores busy with
#: batch Ed25519 (batches of 256 events and more already run at full speed).  A chunk in
#: flight costs about 3.6 KB per event (blobs, the core's prepared events and signature
#: inputs, the Event objects): ~15 MB at 4096, and the pipeline holds two, so ``mimi verify``
#: peaks near 105 MB whatever the room's length (66 MB with glibc's malloc instead of the
#: extension's mimalloc; 16384 gave the same speed at ~180 MB).
DEFAULT_CHUNK = 4096
EXPORT_BATCH = 4096


def _record_size(body_len: int) -> int:
    """Bytes of one record: kind, the varint length prefix, the body."""
    return 1 + (1 if body_len < 64 else 2 if body_len < 16384 else 4) + body_len


# --- writing ----------------------------------------------------------------------------------


class RoomFileWriter:
    """Writes a room file to a temporary file beside ``path``; ``commit`` renames it in place
    (atomic on POSIX), ``abort`` (or leaving the ``with`` block on an exception) removes it."""

    def __init__(self, path: Union[str, "os.PathLike[str]"], *, buffer_size: int = 1 << 20) -> None:
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, self.tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=directory)
        self._file: IO[bytes] = os.fdopen(fd, "wb", buffering=buffer_size)
        self._file.write(encode_room_file_header())
        self.events_written = 0
        self._events_started = False
        self._done = False

    def write_server_keys(self, keys: ServerKeys) -> None:
        if self._events_started:
            raise MalformedError("all ServerKeys records must come before the first event")
        self._file.write(encode_room_file_record(RECORD_SERVER_KEYS, keys.encode()))

    def write_event(self, event_bytes: bytes) -> None:
        self._events_started = True
        self._file.write(encode_room_file_record(RECORD_EVENT, event_bytes))
        self.events_written += 1

    def write_raw(self, data: bytes) -> None:
        """Arbitrary bytes (fault injection for tests); counts as one event record."""
        self._events_started = True
        self._file.write(data)
        self.events_written += 1

    def commit(self) -> None:
        if self._done:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        # mkstemp creates the file 0600; give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp_path, 0o666 & ~umask)
        os.replace(self.tmp_path, self.path)
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._file.close()
        finally:
            try:
                os.unlink(self.tmp_path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> RoomFileWriter:
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


# --- export -----------------------------------------------------------------------------------

KeySource = Union[KeyStore, Iterable[ServerKeys], Mapping[str, ServerKeys], None]


def _keys_for_servers(store: EventStore, servers: Sequence[str], keys: KeySource) -> List[ServerKeys]:
    """One ``ServerKeys`` per server: from ``keys`` (a KeyStore: its own keys with the expired
    ones, its ring and cache; or given ServerKeys), else the store's server-key cache."""
    given: Dict[str, ServerKeys] = {}
    key_store: Optional[KeyStore] = None
    if isinstance(keys, KeyStore):
        key_store = keys
    elif isinstance(keys, Mapping):
        given = dict(keys)
    elif keys is not None:
        for sk in keys:
            if sk.server_name in given:  # several records of one server: merge their keys
                merged = {k.key_id: k for k in given[sk.server_name].keys}
                merged.update({k.key_id: k for k in sk.keys})
                given[sk.server_name] = ServerKeys(sk.server_name, list(merged.values()))
            else:
                given[sk.server_name] = sk
    out: List[ServerKeys] = []
    for server in servers:
        found: Optional[ServerKeys] = given.get(server)
        if found is None and key_store is not None:
            if server == key_store.server_name:
                found = key_store.own_keys()
            elif key_store.ring.has_server(server):
                found = ServerKeys(server, key_store.ring.get(server))
            elif key_store.fetch is not None:
                key_store.ensure([server])
                found = ServerKeys(server, key_store.ring.get(server))
        if found is None:
            cached = store.get_server_keys(server)
            if cached is not None:
                found = ServerKeys.decode(cached)
        if found is None:
            raise NotFoundError(
                f"no keys known for server {server}: the room file could not be verified without them"
            )
        out.append(found)
    return out


def export_room(
    store: EventStore,
    room_id: str,
    path: Union[str, "os.PathLike[str]"],
    keys: KeySource = None,
    *,
    batch: int = EXPORT_BATCH,
) -> int:
    """Write room ``room_id`` from ``store`` to the room file ``path``; return the event count.

    ``keys``: a ``KeyStore`` (the server's own keys, expired ones included, and its peers'),
    ``ServerKeys`` records (a sequence or a mapping by server name), or None; servers it
    does not cover come from the store's server-key cache.  Records: the keys of the hub and
    of every origin server in the room, then the events from the create event.  The events
    stored when the export starts are exported (a consistent prefix of a live room); a room
    with gaps (a follower's partial history) is refused with ``NotFoundError``.
    """
    latest = store.latest(room_id)
    if latest is None:
        raise NotFoundError(f"room {room_id} has no events in this store")
    end = latest[0] + 1
    gaps = store.gaps(room_id)
    if gaps:
        g = gaps[0]
        raise NotFoundError(
            f"room {room_id} has gaps (first: indices {g.start}..{g.end}); backfill it before exporting"
        )
    hub = parse_room_id(room_id)[1]

    # Pass 1: every origin server (the file must list their keys before the first event).
    servers: Dict[str, None] = {hub: None}
    expected = 0
    for chunk in _chunks(store, room_id, end, batch):
        for index, _ in chunk:
            if index != expected:
                raise NotFoundError(f"room {room_id}: event {expected} is missing from the store")
            expected += 1
        for event in decode_events([raw for _, raw in chunk]):
            servers.setdefault(parse_user_id(event.sender)[1], None)
    if expected != end:
        raise NotFoundError(f"room {room_id}: the store holds {expected} of {end} events")
    server_keys = _keys_for_servers(store, list(servers), keys)

    # Pass 2: write, then rename into place.
    with RoomFileWriter(path) as writer:
        for sk in server_keys:
            writer.write_server_keys(sk)
        for chunk in _chunks(store, room_id, end, batch):
            for _, raw in chunk:
                writer.write_event(raw)
        count = writer.events_written
    if count != end:  # the store changed under us in a way linearity forbids
        raise InternalError(f"room {room_id}: exported {count} events, expected {end}")
    log.info("exported room %s: %d events, keys of %s", room_id, count, ", ".join(servers))
    return count


def _chunks(store: EventStore, room_id: str, end: int, batch: int) -> Iterable[List[Tuple[int, bytes]]]:
    chunk: List[Tuple[int, bytes]] = []
    for row in store.iter_events(room_id, 0, end, batch=batch):
        chunk.append(row)
        if len(chunk) >= batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- verify -----------------------------------------------------------------------------------


@dataclass
class VerifyFailure:
    """The first bad event (or a file-level problem when ``index`` is None)."""

    index: Optional[int]
    event_id: Optional[str]
    error: str  # exception class name, e.g. "BadSignatureError"
    code: Optional[int]  # wire error code (PROFILE.md section 7)
    code_name: str  # wire error name, e.g. "bad_signature"
    reason: str

    @classmethod
    def from_exception(
        cls, exc: BaseException, index: Optional[int] = None, event_id: Optional[str] = None
    ) -> VerifyFailure:
        if isinstance(exc, MimiError):
            if index is None:
                index = exc.index
            if event_id is None:
                event_id = exc.event_id
            return cls(index, event_id or None, type(exc).__name__, exc.code, exc.name, str(exc))
        return cls(
            index, event_id, InternalError.__name__, InternalError.code, InternalError.name,
            f"{type(exc).__name__}: {exc}",
        )

    def describe(self) -> str:
        where = "the room file" if self.index is None else f"event {self.index}"
        if self.event_id:
            where += f" ({self.event_id})"
        return f"{where}: {self.code_name}: {self.reason}"


@dataclass
class VerifyReport:
    path: str
    ok: bool
    events_checked: int  # events found valid (all of them when ok)
    elapsed: float  # seconds
    room_id: Optional[str] = None
    servers: List[str] = field(default_factory=list)  # ServerKeys records, in file order
    failure: Optional[VerifyFailure] = None
    #: Reading + Rust chain validation, summed over chunks (overlaps the policy pass when
    #: pipelined, so the two may add up to more than ``elapsed``).
    crypto_seconds: float = 0.0
    policy_seconds: float = 0.0  # the Python policy pass

    @property
    def events_per_second(self) -> float:
        return self.events_checked / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> Dict[str, Any]:
        out = asdict(self)
        out["events_per_second"] = round(self.events_per_second, 1)
        out["elapsed"] = round(self.elapsed, 6)
        out["crypto_seconds"] = round(self.crypto_seconds, 6)
        out["policy_seconds"] = round(self.policy_seconds, 6)
        return out


#: ``progress(events_done, bytes_done, total_bytes)``; called once per chunk.
Progress = Callable[[int, int, int], None]


class RoomFileNotReadable(Exception):
    """The path cannot be read, or holds no room file at all (no ``MIMIROOM`` header)."""


def _read_ahead(reader: RoomFileReader, validator: ChainValidator, chunk: int) -> Tuple[Any, int, float]:
    """Read and validate the next chunk (runs in the helper thread): one core call, without
    the GIL, in which the events never become Python bytes.

    Returns ``(batch_or_exception_or_None, bytes_read, seconds)``; None at the end of the file.
    """
    started = time.perf_counter()
    try:
        step = validator.validate_next(reader, chunk)
    except MimiError as exc:
        return exc, 0, time.perf_counter() - started
    if step is None:
        return None, 0, time.perf_counter() - started
    batch, size = step
    return batch, size, time.perf_counter() - started


def verify_room_file(
    path: Union[str, "os.PathLike[str]"],
    *,
    chunk: int = DEFAULT_CHUNK,
    threads: Optional[int] = None,
    progress: Optional[Progress] = None,
    pipeline: bool = True,
) -> VerifyReport:
    """Check a whole room file (PROFILE.md sections 2-6); never raises for a bad room.

    The first bad event is the lowest index that fails any check.  Raises
    ``RoomFileNotReadable`` only when the path cannot be read or is not a room file.
    ``threads``: Rust worker threads (default: all cores).  ``pipeline``: validate the next
    chunk in a helper thread while the policy pass walks the current one.
    """
    path = os.fspath(path)
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    started = time.perf_counter()
    try:
        total_bytes = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(len(ROOM_FILE_MAGIC))
    except OSError as exc:
        raise RoomFileNotReadable(f"{path}: {exc.strerror or exc}") from None
    if head != ROOM_FILE_MAGIC:
        raise RoomFileNotReadable(f"{path}: not a room file (no MIMIROOM header)")

    report = VerifyReport(path=path, ok=False, events_checked=0, elapsed=0.0)

    def finish(failure: Optional[VerifyFailure]) -> VerifyReport:
        report.failure = failure
        report.ok = failure is None
        report.elapsed = time.perf_counter() - started
        return report

    try:
        reader = RoomFileReader(path)
    except NotFoundError as exc:  # the core's open() failed after all (raced a deletion?)
        raise RoomFileNotReadable(str(exc)) from None
    except MimiError as exc:  # bad version, a bad ServerKeys record, a bad first event record
        index = 0 if _keys_section_ok(path) else None
        return finish(VerifyFailure.from_exception(exc, index=index))
    ring = KeyRing()
    bytes_done = HEADER_SIZE
    for sk in reader.server_keys:
        ring.add_server_keys(sk)
        report.servers.append(sk.server_name)
        bytes_done += _record_size(len(sk.encode()))
    try:
        validator = ChainValidator(ring, threads)
    except MimiError as exc:
        raise ValueError(f"cannot start the validator: {exc}") from None

    chain: Optional[RoomChain] = None
    checked = 0
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mimi-verify") if pipeline else None
    ahead: Optional[Future] = None
    try:
        while True:
            # The chunk validated ahead (or now), then the next one starts in the background.
            if ahead is not None:
                item, size, seconds = ahead.result()
                ahead = None
            else:
                item, size, seconds = _read_ahead(reader, validator, chunk)
            report.crypto_seconds += seconds
            if item is None:
                break
            if isinstance(item, MimiError):
                return finish(VerifyFailure.from_exception(item))
            batch = item
            if executor is not None and batch.error is None:
                ahead = executor.submit(_read_ahead, reader, validator, chunk)

            policy_started = time.perf_counter()
            failure, chain, passed = _policy_pass(batch.events, chain, checked)
            report.policy_seconds += time.perf_counter() - policy_started
            checked += passed
            report.events_checked = checked
            if chain is not None:
                report.room_id = chain.room_id
            if failure is not None:
                return finish(failure)
            if batch.error is not None:
                return finish(VerifyFailure.from_exception(batch.error))
            del batch, item
            bytes_done += size
            if progress is not None:
                progress(checked, bytes_done, total_bytes)
        if chain is None:
            return finish(VerifyFailure(0, None, MalformedError.__name__, MalformedError.code, MalformedError.name,
                                        "the room file holds no events (a room starts with m.room.create)"))
        return finish(None)
    finally:
        if ahead is not None:
            ahead.cancel()
        if executor is not None:
            executor.shutdown(wait=True)


def _keys_section_ok(path: str) -> bool:
    """Whether the header and every ServerKeys record frame and decode, so that a failure of
    ``RoomFileReader`` (which also reads the first event record) is event 0's."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_SIZE)
            if len(head) != HEADER_SIZE or head[-2:] != b"\x00\x01":
                return False
            while True:
                kind = f.read(1)
                if kind != bytes([RECORD_SERVER_KEYS]):
                    return True  # end of file or the first event record
                first = f.read(1)
                if not first:
                    return False
                width = 1 << (first[0] >> 6)
                if width > 4:
                    return False
                prefix = first + f.read(width - 1)
                length, _ = decode_varint(prefix)
                body = f.read(length)
                if len(body) != length:
                    return False
                ServerKeys.decode(body)
    except (OSError, MimiError):
        return False


def _policy_pass(
    events: Sequence[Event], chain: Optional[RoomChain], base: int
) -> Tuple[Optional[VerifyFailure], Optional[RoomChain], int]:
    """Walk events (already checked by Rust: signatures, hashes, links) through the chain.

    Returns ``(failure, chain, how many passed)``.  Nothing is kept per event: the chain's
    state holds only current state events (no visibility history).
    """
    count = 0
    event_id = None
    try:
        for event in events:
            event_id = event.event_id  # computed by the core during validation
            if chain is None:
                chain = RoomChain.open(event, event_id=event_id, track_history=False)
            else:
                chain.append(event, event_id=event_id)
            count += 1
    except MimiError as exc:
        return VerifyFailure.from_exception(exc, index=base + count, event_id=event_id), chain, count
    except Exception as exc:  # a bug in the policy code must not look like a valid room
        log.exception("policy pass crashed at event %d", base + count)
        return VerifyFailure.from_exception(exc, index=base + count, event_id=event_id), chain, count
    return None, chain, count


# --- generate -------------------------------------------------------------------------------

#: Faults ``generate_room`` can inject, and the check that must reject them.
FAULT_KINDS: Dict[str, str] = {
    "wrong_prev": "prev_event names an earlier event, not the one just before (re-signed)",
    "missing_auth": "one auth event of the selection is left out (re-signed)",
    "extra_auth": "a current state event outside the selection is added (re-signed)",
    "non_current_auth": "the sender's m.room.user auth event is a superseded one (re-signed)",
    "bad_hub_signature": "hub signature by another key under the hub's key ID",
    "bad_origin_signature": "origin signature by another key under the origin's key ID",
    "tampered_content": "a message's ciphertext changed after signing (bad_content_hash)",
    "truncated_record": "the file ends in the middle of the event's record",
    "bad_record_varint": "the record's length prefix starts with the reserved bits 11",
    "bad_event_varint": "a non-minimal varint inside the encoded event",
    "not_joined": "a message from a user who never joined (policy)",
    "kick_without_permission": "a member without the kick permission kicks another user (policy)",
}
#: Faults whose failing check comes before the policy: buildable with any sender, and at
#: index 0 (on the create event).
_SENDER_FREE_FAULTS = frozenset({
    "wrong_prev", "bad_hub_signature", "bad_origin_signature", "tampered_content",
    "truncated_record", "bad_record_varint", "bad_event_varint",
})


@dataclass(frozen=True)
class Fault:
    kind: str
    index: int

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(FAULT_KINDS)})")
        if self.index < 0:
            raise ValueError("a fault index must not be negative")


@dataclass
class GeneratedRoom:
    path: str
    room_id: str
    events: int  # event records written (faulty ones included)
    hub: str
    servers: List[str]
    users: List[str]
    #: (fault, event ID or None when the faulty event does not decode), in index order
    faults: List[Tuple[Fault, Optional[str]]] = field(default_factory=list)
    elapsed: float = 0.0


ENCRYPTION_ALGORITHM = "org.mimi.generated-ciphertext"


class _RoomGenerator:
    """Builds the room event by event: the hub's sequencing without the hub (auth events from
    the m.0 selection on a ``RoomState`` that advances with every accepted event)."""

    def __init__(
        self,
        writer: RoomFileWriter,
        rng: random.Random,
        *,
        servers: int,
        users_per_server: int,
        message_size: int,
        state_every: int,
        check: bool,
        deterministic_keys: bool,
    ) -> None:
        if servers < 1:
            raise ValueError("a room needs at least one server")
        if users_per_server < 1:
            raise ValueError("at least one user per server")
        self.writer = writer
        self.rng = rng
        self.message_size = message_size
        self.state_every = max(1, state_every)
        self.check = check
        self.hub = "hub.example"
        self.server_names = [self.hub] + [f"s{i}.example" for i in range(1, servers)]

        def key_for(server: str, tag: str) -> SigningKey:
            key_id = f"ed25519:{tag}"
            if deterministic_keys:
                return SigningKey(sha256(f"{rng.random()!r}:{server}:{tag}".encode()), key_id)
            return SigningKey.generate(key_id)

        self.keys = {s: key_for(s, "k1") for s in self.server_names}
        # Same key IDs, other keys: signatures that name a published key ID but fail.
        self.impostors = {s: key_for(s, "k1") for s in self.server_names}
        self.room_id = f"!gen{rng.randrange(1 << 40):x}:{self.hub}"
        self.creator = f"@u0:{self.hub}"
        self.users = [f"@u{j}:{s}" for s in self.server_names for j in range(users_per_server)]
        self.members = [u for u in self.users if u != self.creator]
        self.outsiders = [f"@outsider:{s}" for s in self.server_names]
        self.chain: Optional[RoomChain] = None
        self.joined: List[str] = []
        self.superseded_user_event: Dict[str, str] = {}
        self.recent_ids: Deque[str] = deque(maxlen=2)
        self.last_id = ""
        self.index = 0
        self.left: List[str] = []
        self.faults: List[Tuple[Fault, Optional[str]]] = []
        self._state_turn = 0

    # -- state --------------------------------------------------------------------------------

    @property
    def state(self):  # -> RoomState
        assert self.chain is not None
        return self.chain.state

    def _limited(self, event_type: str, state_key: Optional[str], sender: str, content: bytes,
                 origin_key: Optional[SigningKey] = None) -> LimitedEvent:
        key = origin_key or self.keys[sender.split(":", 1)[1]]
        return LimitedEvent.create(self.room_id, event_type, state_key, sender, content, key)

    def _auth(self, event_type: str, state_key: Optional[str], sender: str, content: bytes) -> List[str]:
        if self.chain is None:
            return []
        state = self.state
        return state.policy.select_auth_events(state, event_type, state_key, sender, decode_content(event_type, content))

    def _accept(self, event: Event) -> None:
        """Write a valid event and advance the room with it."""
        event_id = event.event_id
        if self.chain is None:
            self.chain = RoomChain.open(event, event_id=event_id, track_history=False)
        else:
            if event.type == M_ROOM_USER and event.state_key is not None:
                old = self.state.get_event_id(M_ROOM_USER, event.state_key)
                if old is not None:
                    self.superseded_user_event[event.state_key] = old
            if self.check:
                self.chain.append(event, event_id=event_id)
            else:
                self.chain.apply_trusted(event, event_id=event_id)
        self.writer.write_event(event.encode())
        self._advance(event_id)
        if event.type == M_ROOM_USER and event.state_key is not None:
            joined = self.state.is_joined(event.state_key)
            if joined and event.state_key not in self.joined:
                self.joined.append(event.state_key)
            elif not joined and event.state_key in self.joined:
                self.joined.remove(event.state_key)

    def _advance(self, event_id: str) -> None:
        self.recent_ids.append(event_id)
        self.last_id = event_id
        self.index += 1

    def send(self, event_type: str, state_key: Optional[str], sender: str, content: bytes) -> None:
        auth = self._auth(event_type, state_key, sender, content)
        event = self._limited(event_type, state_key, sender, content).to_event(auth, self.last_id, self.keys[self.hub])
        self._accept(event)

    # -- the room's story ---------------------------------------------------------------------

    def setup_events(self) -> Iterable[Tuple[str, Optional[str], str, bytes]]:
        """Create, creator join, settings, invites and joins, roles and the role map (ends
        the creator phase), public join rules."""
        c = self.creator
        yield M_ROOM_CREATE, "", c, create_content("m.0", ENCRYPTION_ALGORITHM)
        yield M_ROOM_USER, c, c, user_content(Participation.JOIN)
        yield M_ROOM_NAME, "", c, text_content(b"Generated room")
        yield M_ROOM_HISTORY_VISIBILITY, "", c, history_visibility_content(Visibility.SHARED)
        yield M_ROOM_JOIN_RULES, "", c, join_rules_content(JoinRule.INVITE)
        for user in self.members:
            yield M_ROOM_USER, user, c, user_content(Participation.INVITE, b"welcome")
            yield M_ROOM_USER, user, user, user_content(Participation.JOIN)
        state_types = [M_ROOM_NAME, M_ROOM_TOPIC, M_ROOM_AVATAR, M_ROOM_JOIN_RULES, M_ROOM_HISTORY_VISIBILITY,
                       M_ROOM_ROLE, M_ROOM_ROLE_MAP, M_ROOM_ENCRYPTED]
        admin = RoleContent([
            Permission.boolean(int(PermissionKind.INVITE), True),
            Permission.boolean(int(PermissionKind.KICK), True),
            Permission.boolean(int(PermissionKind.BAN), True),
            Permission.boolean(int(PermissionKind.REDACT), True),
            Permission.events([(t, True) for t in state_types]),
            Permission.roles(["admin", "member"]),
        ]).encode()
        member = RoleContent([Permission.events([(M_ROOM_ENCRYPTED, True)])]).encode()
        yield M_ROOM_ROLE, "admin", c, admin
        yield M_ROOM_ROLE, "member", c, member
        role_map = RoleMapContent([
            RoleConfig("admin", [c], 100),
            RoleConfig("member", list(self.members), 10),
        ]).encode()
        yield M_ROOM_ROLE_MAP, "", c, role_map
        yield M_ROOM_JOIN_RULES, "", c, join_rules_content(JoinRule.PUBLIC)
        yield M_ROOM_TOPIC, "", c, text_content(b"generated by mimi generate-room")

    def state_change(self) -> Tuple[str, Optional[str], str, bytes]:
        """A periodic state change: topic or name by the creator, a member leaving or rejoining."""
        self._state_turn += 1
        turn = self._state_turn % 4
        if turn == 1 and self.left:
            user = self.left.pop(0)
            return M_ROOM_USER, user, user, user_content(Participation.JOIN)
        if turn == 2:
            candidates = [u for u in self.joined if u != self.creator]
            if len(candidates) > 1:  # keep a member around to send messages
                user = self.rng.choice(candidates)
                self.left.append(user)
                return M_ROOM_USER, user, user, user_content(Participation.LEAVE, b"brb")
        if turn == 3:
            return M_ROOM_NAME, "", self.creator, text_content(f"Room #{self._state_turn}".encode())
        return M_ROOM_TOPIC, "", self.creator, text_content(f"topic {self._state_turn}".encode())

    def message(self) -> None:
        sender = self.rng.choice(self.joined)
        self.send(M_ROOM_ENCRYPTED, None, sender, self.rng.randbytes(self.message_size))

    # -- faults -----------------------------------------------------------------------------

    def _fault_sender(self, kind: str) -> str:
        """A joined user, preferably of another server than the hub (so that origin and hub
        signatures are made by different keys)."""
        if kind == "not_joined":
            return self.outsiders[-1]
        need_old = kind == "non_current_auth"
        joined = [u for u in self.joined if not need_old or u in self.superseded_user_event]
        if kind == "kick_without_permission":
            joined = [u for u in joined if u != self.creator]
        remote = [u for u in joined if not u.endswith(":" + self.hub)]
        pool = remote or joined
        if pool:
            return pool[0]
        if kind in _SENDER_FREE_FAULTS:  # the check that fails comes before the policy
            return self.creator
        raise ValueError(f"fault {kind} at index {self.index}: no suitable joined sender yet (use a later index)")

    def inject(self, fault: Fault) -> bool:
        """Write the faulty event at the current index; False when the file must end here."""
        kind = fault.kind
        hub_key = self.keys[self.hub]
        at_create = self.chain is None
        auth: List[str]
        if at_create:
            if kind not in _SENDER_FREE_FAULTS:
                raise ValueError(f"fault {kind} cannot be built at index 0 (m.room.create)")
            event_type, state_key, sender, content = next(iter(self.setup_events()))
            auth = []
        else:
            sender = self._fault_sender(kind)
            event_type, state_key, content = M_ROOM_ENCRYPTED, None, self.rng.randbytes(self.message_size)
            if kind == "kick_without_permission":
                targets = [u for u in self.joined if u != sender]
                if not targets:
                    raise ValueError(f"fault {kind} at index {self.index}: needs another joined user to kick")
                event_type, state_key, content = M_ROOM_USER, targets[0], user_content(Participation.LEAVE, b"out")
            auth = self._auth(event_type, state_key, sender, content)
        prev = self.last_id
        limited = self._limited(event_type, state_key, sender, content)
        sign_with = hub_key

        if kind == "wrong_prev":
            prev = self.recent_ids[0] if len(self.recent_ids) == 2 else "$" + base64url_encode(sha256(b"nowhere"))
        elif kind == "missing_auth":
            auth = auth[:-1]
        elif kind == "extra_auth":
            extra = [self.state.get_event_id(t) for t in (M_ROOM_NAME, M_ROOM_TOPIC, M_ROOM_JOIN_RULES,
                                                          M_ROOM_HISTORY_VISIBILITY)]
            extra = [e for e in extra if e is not None and e not in auth]
            if not extra:
                raise ValueError(f"fault {kind} at index {self.index}: no current state event to add yet")
            auth = auth + [extra[0]]
        elif kind == "non_current_auth":
            current = self.state.get_event_id(M_ROOM_USER, sender)
            auth = [self.superseded_user_event[sender] if a == current else a for a in auth]
        elif kind == "bad_hub_signature":
            sign_with = self.impostors[self.hub]
        elif kind == "bad_origin_signature":
            origin = sender.split(":", 1)[1]
            limited = self._limited(event_type, state_key, sender, content, origin_key=self.impostors[origin])
        event = limited.to_event(auth, prev, sign_with)
        good_create = self._limited(event_type, state_key, sender, content).to_event([], "", hub_key) if at_create else None
        if kind == "tampered_content":
            event = event.with_content(bytes([content[0] ^ 0xFF]) + content[1:])
        body = event.encode()

        if kind == "truncated_record":
            record = encode_room_file_record(RECORD_EVENT, body)
            self.writer.write_raw(record[: len(record) // 2])
            self.faults.append((fault, None))
            return False
        if kind in ("bad_record_varint", "bad_event_varint"):
            if kind == "bad_record_varint":
                raw = bytes([RECORD_EVENT, 0xC0, 0x00, 0x00, len(body) & 0xFF]) + body
            else:
                # The first field is room_id<V>: its 1-byte length prefix, re-encoded in 2 bytes.
                if body[0] >= 64:
                    raise ValueError("bad_event_varint needs a room ID shorter than 64 bytes")
                raw = encode_room_file_record(RECORD_EVENT, bytes([0x40, body[0]]) + body[1:])
            self.writer.write_raw(raw)
            self.faults.append((fault, None))
            event_id = None
        else:
            # A decodable faulty event; the chain goes on from it (as a rogue hub's would).
            self.writer.write_event(body)
            event_id = event.event_id
            self.faults.append((fault, event_id))
        if good_create is not None:  # the room state starts from the create event it should be
            self.chain = RoomChain.open(good_create, event_id=good_create.event_id, track_history=False)
        if event_id is not None:
            self._advance(event_id)
        else:
            self.index += 1  # later events chain on from the last good one
        return True


def generate_room(
    path: Union[str, "os.PathLike[str]"],
    n_events: int,
    *,
    seed: Optional[int] = None,
    servers: int = 2,
    users_per_server: int = 3,
    message_size: int = 64,
    state_every: int = 500,
    faults: Sequence[Fault] = (),
    check: bool = False,
) -> GeneratedRoom:
    """Write a room file of ``n_events`` events: a valid m.0 room with real Ed25519 keys.

    The room: create, the creator's join, name, history visibility, invite-only join rules,
    every other user (``users_per_server`` on each of ``servers`` servers) invited and
    joining, two roles and a role map (ending the creator phase), public join rules, a topic;
    then ``m.room.encrypted`` messages from joined users, with a state change (topic, name,
    a member leaving or rejoining) every ``state_every`` events.  Auth events come from the
    m.0 selection on a ``RoomState`` advanced with every event; ``check=True`` also runs the
    full policy check on each event while generating (slower; ``mimi verify`` checks anyway).

    ``seed`` makes the file byte-for-byte reproducible (keys included).  ``faults``: events
    to break, each at its index (see ``FAULT_KINDS``); the faulty event takes the place of the
    event that would have been there.
    """
    if n_events < 1:
        raise ValueError("a room has at least one event (m.room.create)")
    started = time.perf_counter()
    rng = random.Random(seed)
    pending = sorted(faults, key=lambda f: f.index)
    if len({f.index for f in pending}) != len(pending):
        raise ValueError("at most one fault per index")
    if pending and pending[-1].index >= n_events:
        raise ValueError(f"fault index {pending[-1].index} is past the room's {n_events} events")
    with RoomFileWriter(path) as writer:
        gen = _RoomGenerator(
            writer, rng, servers=servers, users_per_server=users_per_server, message_size=message_size,
            state_every=state_every, check=check, deterministic_keys=seed is not None,
        )
        for name in gen.server_names:
            writer.write_server_keys(ServerKeys(name, [gen.keys[name].verify_key()]))
        faults_left: Deque[Fault] = deque(pending)
        setup = iter(gen.setup_events())
        in_setup = True
        while gen.index < n_events:
            if faults_left and faults_left[0].index == gen.index:
                if not gen.inject(faults_left.popleft()):
                    break
                continue
            if in_setup:
                item = next(setup, None)
                if item is not None:
                    gen.send(*item)
                    continue
                in_setup = False
            if gen.index % gen.state_every == 0:
                gen.send(*gen.state_change())
            else:
                gen.message()
        events = writer.events_written
    room = GeneratedRoom(
        path=os.fspath(path), room_id=gen.room_id, events=events, hub=gen.hub, servers=list(gen.server_names),
        users=list(gen.users), faults=gen.faults, elapsed=time.perf_counter() - started,
    )
    log.info("generated %s: %d events in %.1f s", room.path, events, room.elapsed)
    return room
