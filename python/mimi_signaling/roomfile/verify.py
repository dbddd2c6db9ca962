"""``verify_room_file`` is ``mimi verify``: the Rust ``ChainValidator`` checks decoding, hashes,
links and every signature of a chunk in parallel with the GIL released; then a policy pass
walks the chunk through ``RoomChain`` (shape + m.0 policy + apply).  Memory is bounded by the
room's state and one or two chunks, not by its history."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from .._core import (
    ROOM_FILE_MAGIC,
    ChainValidator,
    Event,
    InternalError,
    KeyRing,
    MalformedError,
    MimiError,
    NotFoundError,
    RoomFileReader,
    encode_room_file_header,
    encode_room_file_record,
    event_headers,
)
from ..node.chain import RoomChain
from .writer import RECORD_SERVER_KEYS

log = logging.getLogger(__name__)

#: Events per chunk handed to the Rust validator: large enough to keep all cores busy with
#: batch Ed25519 (batches of 256 events and more already run at full speed).  A chunk in
#: flight costs about 3.6 KB per event (blobs, the core's prepared events and signature
#: inputs, the Event objects): ~15 MB at 4096, and the pipeline holds two, so ``mimi verify``
#: peaks near 95 MB whatever the room's length (with the extension's mimalloc returning freed
#: memory at once; 127-150 MB with its default purge delay; 16384 gave the same speed at
#: ~180 MB).
DEFAULT_CHUNK = 4096
#: Events whose headers the policy pass takes in one call.  Not the whole chunk: each header
#: holds two objects the garbage collector counts (the header and its auth list), and 4096 of
#: them alive at once start a collection every few hundred events (a ninth of the pass's
#: time, measured); 256 stay under the collector's default threshold of 700.
HEADER_RUN = 256


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
    except MimiError as exc:  # no header, a bad version or a bad ServerKeys record (a bad
        # first event record opens, and fails as event 0 when read)
        return finish(VerifyFailure.from_exception(exc, index=None))
    ring = KeyRing(reader.server_keys)
    bytes_done = len(encode_room_file_header())
    for sk in reader.server_keys:
        report.servers.append(sk.server_name)
        bytes_done += len(encode_room_file_record(RECORD_SERVER_KEYS, sk.encode()))
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


def _policy_pass(
    events: Sequence[Event], chain: Optional[RoomChain], base: int
) -> Tuple[Optional[VerifyFailure], Optional[RoomChain], int]:
    """Walk events (already checked by Rust: signatures, hashes, links) through the chain.

    Returns ``(failure, chain, how many passed)``.  Nothing is kept per event: the chain's
    state holds only current state events (no visibility history).  The events' fields are
    read in one call per run of ``HEADER_RUN`` (their IDs were computed by the core during
    validation).
    """
    count = 0
    event_id = None
    try:
        for start in range(0, len(events), HEADER_RUN):
            run = events[start:start + HEADER_RUN]
            for event, header in zip(run, event_headers(run)):
                event_id = header.event_id
                if chain is None:
                    chain = RoomChain.open(event, header=header, track_history=False)
                else:
                    chain.append(event, header=header)
                count += 1
    except MimiError as exc:
        return VerifyFailure.from_exception(exc, index=base + count, event_id=event_id), chain, count
    except Exception as exc:  # a bug in the policy code must not look like a valid room
        log.exception("policy pass crashed at event %d", base + count)
        return VerifyFailure.from_exception(exc, index=base + count, event_id=event_id), chain, count
    return None, chain, count


