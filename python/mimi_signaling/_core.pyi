"""Type stub for the compiled Rust core, ``mimi_signaling._core``.

Hand-written (as pydantic-core does): the Rust crate in ``rust/`` is the source of
truth; keep this file in step with ``rust/src/python/``.  Import the public names from
``mimi_signaling`` rather than from ``_core``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final, Sequence, final

from _typeshed import structseq

__version__: str

# Written by hand (as the compiled module lists them); tests/core/test_api_drift.py checks it.
__all__ = [
    "BATCH_TRANSACTION",
    "BadContentHashError",
    "BadSignatureError",
    "BatchResult",
    "ChainBatch",
    "ChainValidator",
    "CreateContent",
    "ERROR_CODES",
    "EVENT_TYPE_TABLE",
    "Event",
    "EventHeader",
    "HUB_LABEL",
    "HistoryVisibilityContent",
    "InternalError",
    "JoinRulesContent",
    "KeyRing",
    "LimitedEvent",
    "LimitedEventHeader",
    "MAX_AUTH_EVENTS",
    "MAX_BACKFILL_LIMIT",
    "MAX_BATCH_BODY",
    "MAX_BATCH_ENTRIES",
    "MAX_EVENT_SIZE",
    "MAX_ID_SIZE",
    "MAX_SIGNATURES",
    "MalformedError",
    "MimiError",
    "NotFoundError",
    "NotHubError",
    "ORIGIN_LABEL",
    "PROTOCOL_VERSION",
    "Permission",
    "PolicyRejectedError",
    "REGISTERED_TYPES",
    "ROOM_FILE_EVENT_RECORD",
    "ROOM_FILE_KEYS_RECORD",
    "ROOM_FILE_MAGIC",
    "RateLimitedError",
    "RoleConfig",
    "RoleContent",
    "RoleMapContent",
    "RoomFileReader",
    "ServerKeys",
    "Signature",
    "SigningKey",
    "TRANSACTION_TYPES",
    "TextContent",
    "TooLargeError",
    "TransactionEnvelope",
    "UnauthorizedError",
    "UnknownRoomError",
    "UnsupportedVersionError",
    "UserContent",
    "VerifyKey",
    "__version__",
    "base64url_decode",
    "base64url_encode",
    "check_events",
    "checked_events",
    "compute_event_ids",
    "decode_backfill_request",
    "decode_backfill_response",
    "decode_batch_request",
    "decode_batch_response",
    "decode_error_body",
    "decode_events",
    "decode_get_event_request",
    "decode_get_state_request",
    "decode_registered_content",
    "decode_snapshot_request",
    "decode_snapshot_response",
    "decode_varint",
    "encode_backfill_request",
    "encode_backfill_response",
    "encode_batch_request",
    "encode_batch_response",
    "encode_error_body",
    "encode_events",
    "encode_get_event_request",
    "encode_get_state_request",
    "encode_room_file_header",
    "encode_room_file_record",
    "encode_snapshot_request",
    "encode_snapshot_response",
    "encode_varint",
    "error_from_code",
    "event_headers",
    "limited_event_digests",
    "limited_event_headers",
    "parse_room_id",
    "parse_user_id",
    "redact_content",
    "_event_keys",
    "_set_allocator_purge_delay",
    "sha256",
    "sign_content",
    "sign_events",
    "validate_content",
    "validate_event_id",
    "validate_event_type",
    "validate_key_id",
    "validate_role_id",
    "validate_server_name",
    "verify_limited_events",
    "verify_signatures_batch",
]

# --- errors (section 7 of PROFILE.md) --------------------------------------------------

class MimiError(Exception):
    """Base of every error this library raises for protocol-level problems.

    ``code`` is the wire error code of PROFILE.md section 7; ``name`` its wire name.
    Errors raised by batch entry points also carry ``index`` and ``event_id`` (else None).
    """

    code: ClassVar[int]
    name: ClassVar[str]
    http_status: ClassVar[int]
    index: int | None
    event_id: str | None

class MalformedError(MimiError): ...  # 1
class BadSignatureError(MimiError): ...  # 2
class BadContentHashError(MimiError): ...  # 3
class PolicyRejectedError(MimiError): ...  # 4
class UnknownRoomError(MimiError): ...  # 5
class NotFoundError(MimiError): ...  # 6
class NotHubError(MimiError): ...  # 7
class TooLargeError(MimiError): ...  # 8
class RateLimitedError(MimiError): ...  # 9
class UnauthorizedError(MimiError): ...  # 10
class UnsupportedVersionError(MimiError): ...  # 11
class InternalError(MimiError): ...  # 12

# --- limits and labels ------------------------------------------------------------------

MAX_EVENT_SIZE: int  # 65536
MAX_ID_SIZE: int  # 255
MAX_AUTH_EVENTS: int  # 64
MAX_SIGNATURES: int  # 8
ORIGIN_LABEL: bytes  # b"MIMI signaling 1.0 origin"
HUB_LABEL: bytes  # b"MIMI signaling 1.0 hub"
MAX_BACKFILL_LIMIT: int  # 1000: most events one backfill answer may carry
PROTOCOL_VERSION: int  # 1: TransactionEnvelope.version ("mimi10")
ERROR_CODES: list[tuple[int, str]]  # (wire code, wire name) of every error, in code order
REGISTERED_TYPES: list[str]  # the event types of PROFILE.md section 5, in table order
EVENT_TYPE_TABLE: list[tuple[str, str, str | None]]
"""PROFILE.md section 5 as ``(type, state-key rule, content class name or None)``; the rule is
one of ``"not_state"``, ``"empty"``, ``"user_id"``, ``"role_id"``."""
TRANSACTION_TYPES: list[str]  # the transaction types of PROFILE.md section 7, batch included

# --- identifiers (section 3) -------------------------------------------------------------

def parse_room_id(room_id: str) -> tuple[str, str]:
    """Return ``(opaque, server_name)``; raise MalformedError (TooLargeError past 255 bytes)."""

def parse_user_id(user_id: str) -> tuple[str, str]:
    """Return ``(localpart, server_name)``."""

def validate_server_name(server_name: str) -> None: ...
def validate_event_type(event_type: str) -> None:
    """Namespaced type or policy ID grammar (does not consult the registry)."""

def validate_role_id(role_id: str) -> None: ...
def validate_key_id(key_id: str) -> None: ...
def validate_event_id(event_id: str) -> None: ...

# --- encoding helpers ---------------------------------------------------------------------

def encode_varint(value: int) -> bytes:
    """RFC 9420 section 2.1.2 minimal length prefix (MalformedError past 2**30 - 1)."""

def decode_varint(data: bytes) -> tuple[int, int]:
    """Return ``(value, bytes_consumed)``; rejects non-minimal prefixes and the ``11`` prefix."""

def base64url_encode(data: bytes) -> str:
    """URL-safe unpadded base64 (RFC 4648 section 5)."""

def base64url_decode(text: str) -> bytes: ...
def sha256(data: bytes) -> bytes: ...
def _event_keys(event_ids: Sequence[str]) -> list[int]:
    """The stores' 64-bit lookup keys (``id_key``) of event IDs: the first 8 bytes of the
    SHA-256 of each ID's UTF-8 as a signed big-endian integer."""
def _set_allocator_purge_delay(milliseconds: int) -> None:
    """mimalloc's purge delay (ms; -1 never): how long freed memory stays with the process."""
def sign_content(label: bytes, content: bytes) -> bytes:
    """The SignWithLabel ``SignContent`` bytes that Ed25519 signs."""

# --- keys (section 8) ---------------------------------------------------------------------

@final
class VerifyKey:
    key_id: str
    public_key: bytes
    expired_ts: int  # 0 = current
    def __new__(cls, key_id: str, public_key: bytes, expired_ts: int = 0) -> VerifyKey:
        """MalformedError unless ``public_key`` is the canonical encoding of a point not of
        small order (PROFILE.md section 8)."""
    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise BadSignatureError unless ``signature`` is valid over ``message`` under ZIP 215
        (PROFILE.md section 2: canonical S, the cofactored equation)."""
    def verify_with_label(self, label: bytes, content: bytes, signature: bytes) -> None: ...
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> VerifyKey: ...

@final
class SigningKey:
    key_id: str
    def __new__(cls, seed: bytes, key_id: str) -> SigningKey:
        """From the 32-byte RFC 8032 secret key (seed)."""
    @staticmethod
    def generate(key_id: str | None = None) -> SigningKey:
        """A fresh key from the OS RNG; the default key ID derives from the public key."""
    @property
    def seed(self) -> bytes: ...
    @property
    def public_key(self) -> bytes: ...
    def verify_key(self, expired_ts: int = 0) -> VerifyKey: ...
    def sign(self, message: bytes) -> bytes:
        """Plain Ed25519 (RFC 8032) signature, 64 bytes."""
    def sign_with_label(self, label: bytes, content: bytes) -> bytes: ...

@final
class ServerKeys:
    server_name: str
    keys: list[VerifyKey]
    def __new__(cls, server_name: str, keys: Sequence[VerifyKey]) -> ServerKeys: ...
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> ServerKeys: ...

@final
@final
class KeyRing:
    """Published verify keys by server name, used for every signature check.  Immutable: the
    ``with_*`` methods return a new ring (MalformedError for a bad server name or key)."""

    def __new__(cls, server_keys: Sequence[ServerKeys] = ...) -> KeyRing: ...
    def with_key(self, server_name: str, key: VerifyKey) -> KeyRing: ...
    def with_server_keys(self, keys: ServerKeys) -> KeyRing: ...
    def has_server(self, server_name: str) -> bool: ...
    def servers(self) -> list[str]: ...
    def get(self, server_name: str) -> list[VerifyKey]: ...

# --- events (section 2) -------------------------------------------------------------------

@final
class Signature:
    key_id: str
    signature: bytes
    def __new__(cls, key_id: str, signature: bytes) -> Signature: ...

@final
class Event:
    """A fully-formed event. Immutable; decode/encode round-trip byte for byte."""

    room_id: str
    type: str
    state_key: str | None
    sender: str
    content: bytes
    auth_events: list[str]
    prev_event: str
    origin_content_hash: bytes
    hub_signature: list[Signature]
    origin_signature: list[Signature]
    @staticmethod
    def decode(data: bytes) -> Event: ...
    def encode(self) -> bytes: ...
    @property
    def event_id(self) -> str: ...
    @property
    def is_state(self) -> bool: ...
    @property
    def origin_server(self) -> str: ...
    @property
    def hub_server(self) -> str: ...
    def content_hash(self) -> bytes:
        """SHA-256 of the content-hash input built from this event's current content."""
    def reference_hash(self) -> bytes: ...
    def redacted(self) -> Event: ...
    def is_redacted(self) -> bool:
        """True when the content differs from what the content hash covers but equals its redacted form."""
    def content_hash_input(self) -> bytes: ...
    def reference_hash_input(self) -> bytes: ...
    def origin_signed_form(self) -> bytes: ...
    def limited(self) -> LimitedEvent:
        """The limited event the origin sent (fails with BadContentHashError on a redacted event)."""
    def verify(self, keyring: KeyRing) -> None:
        """Content hash (or redacted form), origin and hub signatures; raises the typed error.
        The event ID computed on the way is kept for ``event_id``."""
    def header(self) -> EventHeader:
        """The fields the room code reads, in one call (computes the event ID if not known)."""
    def with_content(self, content: bytes) -> Event:
        """A copy with other content (for tests and tooling; IDs and signatures are not refreshed)."""

@final
class LimitedEvent:
    room_id: str
    type: str
    state_key: str | None
    sender: str
    content: bytes
    origin_content_hash: bytes
    origin_signature: list[Signature]
    @staticmethod
    def create(
        room_id: str,
        type: str,
        state_key: str | None,
        sender: str,
        content: bytes,
        origin_key: SigningKey,
    ) -> LimitedEvent:
        """Build, hash and sign with the origin server's key; validates the identifiers."""
    @staticmethod
    def decode(data: bytes) -> LimitedEvent: ...
    def encode(self) -> bytes: ...
    @property
    def origin_server(self) -> str: ...
    def header(self) -> LimitedEventHeader:
        """The fields the hub reads, in one call."""
    def content_hash(self) -> bytes: ...
    def verify(self, keyring: KeyRing) -> None:
        """Exact content hash and the origin signature."""
    def to_event(self, auth_events: Sequence[str], prev_event: str, hub_key: SigningKey) -> Event:
        """Fill auth events and prev event and add the hub signature."""
    def to_unsigned_event(self, auth_events: Sequence[str], prev_event: str, hub_key_id: str) -> Event:
        """The event with its ID but without the hub signature (group commit: sign with
        ``sign_events`` before it leaves the hub; not valid on the wire until then)."""

@final
class EventHeader(structseq[Any], tuple[str, str, str, str | None, str, str, list[str], bytes]):
    """What the room code reads of an ``Event``, made in one call (``Event.header()``,
    ``event_headers``): a struct sequence (a tuple with named fields, like ``os.stat_result``)
    whose fields are read without calling into the core."""

    __match_args__: Final = ("event_id", "room_id", "type", "state_key", "sender", "prev_event", "auth_events", "content")
    @property
    def event_id(self) -> str: ...
    @property
    def room_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def state_key(self) -> str | None: ...
    @property
    def sender(self) -> str: ...
    @property
    def prev_event(self) -> str: ...
    @property
    def auth_events(self) -> list[str]:
        """A new list on every header."""
    @property
    def content(self) -> bytes: ...

@final
class LimitedEventHeader(structseq[Any], tuple[str, str, str | None, str, str, bytes]):
    """What the hub reads of a ``LimitedEvent``, made in one call (``LimitedEvent.header()``,
    ``limited_event_headers``)."""

    __match_args__: Final = ("room_id", "type", "state_key", "sender", "origin_server", "content")
    @property
    def room_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def state_key(self) -> str | None: ...
    @property
    def sender(self) -> str: ...
    @property
    def origin_server(self) -> str: ...
    @property
    def content(self) -> bytes: ...

# --- content (section 5) ------------------------------------------------------------------

def redact_content(event_type: str, content: bytes) -> bytes:
    """The redacted content of the registry table (MalformedError if it does not decode)."""

def decode_registered_content(
    event_type: str, state_key: str | None, content: bytes
) -> CreateContent | UserContent | TextContent | JoinRulesContent | HistoryVisibilityContent | RoleContent | RoleMapContent | bytes:
    """Section 4 rule 4 for an ``m.`` type in one call: registered, the state key per the type's
    rule, the content decoded as its class (``bytes`` when opaque); else MalformedError."""

def validate_content(event_type: str, content: bytes) -> None:
    """Content decodes as its registered type (non-``m.`` and ``m.room.encrypted``: any bytes)."""

@final
class CreateContent:
    policy_id: str
    encryption_algorithm: str
    def __new__(cls, policy_id: str, encryption_algorithm: str) -> CreateContent: ...
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> CreateContent: ...

@final
class UserContent:
    participation: int  # mimi_signaling.content.Participation
    reason: bytes
    def __new__(cls, participation: int, reason: bytes | None = None) -> UserContent: ...
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> UserContent: ...

@final
class TextContent:
    """``m.room.name`` / ``m.room.avatar`` / ``m.room.topic``: one opaque field; None when redacted (empty content)."""

    value: bytes | None
    def __new__(cls, value: bytes | None = None) -> TextContent: ...
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> TextContent: ...

@final
class JoinRulesContent:
    rule: int  # mimi_signaling.content.JoinRule
    def __new__(cls, rule: int) -> JoinRulesContent: ...
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> JoinRulesContent: ...

@final
class HistoryVisibilityContent:
    visibility: int  # mimi_signaling.content.Visibility
    def __new__(cls, visibility: int) -> HistoryVisibilityContent: ...
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> HistoryVisibilityContent: ...

@final
class Permission:
    """One ``PermissionValue``: ``kind`` is the tag (1 invite .. 6 roles)."""

    kind: int
    granted: bool | None  # boolean permissions
    event_types: list[tuple[str, bool]] | None  # events(5), in wire order
    role_ids: list[str] | None  # roles(6)
    @staticmethod
    def boolean(kind: int, granted: bool) -> Permission: ...
    @staticmethod
    def events(event_types: Sequence[tuple[str, bool]]) -> Permission: ...
    @staticmethod
    def roles(role_ids: Sequence[str]) -> Permission: ...

@final
class RoleContent:
    permissions: list[Permission]
    def __new__(cls, permissions: Sequence[Permission]) -> RoleContent: ...
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> RoleContent:
        """Rejects a tag listed twice."""

@final
class RoleConfig:
    role_id: str
    user_ids: list[str]
    order: int
    def __new__(cls, role_id: str, user_ids: Sequence[str], order: int) -> RoleConfig: ...

@final
class RoleMapContent:
    roles: list[RoleConfig]
    def __new__(cls, roles: Sequence[RoleConfig]) -> RoleMapContent: ...
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> RoleMapContent:
        """Rejects duplicate role IDs and duplicate orders."""

# --- transport (section 7) ----------------------------------------------------------------

@final
class TransactionEnvelope:
    version: int
    transaction_type: str
    payload: bytes
    def __new__(cls, transaction_type: str, payload: bytes, version: int = ...) -> TransactionEnvelope: ...
    def encode(self) -> bytes: ...
    @staticmethod
    def decode(data: bytes) -> TransactionEnvelope:
        """MalformedError on bad bytes; UnsupportedVersionError when version != 1."""

def encode_error_body(code: int, message: str) -> bytes: ...
def decode_error_body(data: bytes) -> tuple[int, str]: ...
def error_from_code(code: int, message: str) -> MimiError:
    """The exception instance of the class for a wire error code (unknown codes: InternalError)."""

def encode_get_event_request(room_id: str, event_id: str) -> bytes: ...
def decode_get_event_request(data: bytes) -> tuple[str, str]: ...
def encode_get_state_request(room_id: str, type: str, state_key: str) -> bytes: ...
def decode_get_state_request(data: bytes) -> tuple[str, str, str]: ...
def encode_backfill_request(room_id: str, before: str, limit: int) -> bytes: ...
def decode_backfill_request(data: bytes) -> tuple[str, str, int]: ...
def encode_backfill_response(events: Sequence[Event]) -> bytes: ...
def decode_backfill_response(data: bytes) -> list[Event]: ...
def encode_snapshot_request(room_id: str) -> bytes: ...
def decode_snapshot_request(data: bytes) -> str: ...

# mimi.signaling.batch: 1 to MAX_BATCH_ENTRIES transactions, the body at most MAX_BATCH_BODY.
BATCH_TRANSACTION: str  # "mimi.signaling.batch"
MAX_BATCH_ENTRIES: int  # 1024
MAX_BATCH_BODY: int  # 16 MiB

def encode_batch_request(entries: Sequence[tuple[str, bytes]]) -> bytes:
    """MalformedError for 0 or more than 1,024 entries or a nested batch; TooLargeError past 16 MiB."""

def decode_batch_request(data: bytes) -> list[tuple[str, bytes]]:
    """(transaction type, payload) per entry; the whole batch refused as ``encode_batch_request``
    would, and UnsupportedVersionError for an entry of another version."""

def encode_batch_response(results: Sequence[tuple[int, bytes]]) -> bytes: ...
def decode_batch_response(data: bytes, expected: int) -> list[tuple[int, bytes]]:
    """(status, body) per entry; MalformedError unless there are exactly ``expected`` results
    and each status is 200 or 400-599."""

def encode_snapshot_response(state: Sequence[Event], auth_chain: Sequence[Event], latest: str) -> bytes: ...
def decode_snapshot_response(data: bytes) -> tuple[list[Event], list[Event], str]: ...

# --- room export file (section 9) --------------------------------------------------------

ROOM_FILE_MAGIC: bytes  # b"MIMIROOM"
ROOM_FILE_KEYS_RECORD: int  # 1: a ServerKeys record (section 9)
ROOM_FILE_EVENT_RECORD: int  # 2: an Event record

def encode_room_file_header() -> bytes: ...
def encode_room_file_record(kind: int, body: bytes) -> bytes: ...

@final
class RoomFileReader:
    """Streams a room file: server keys first, then events in bounded chunks."""

    server_keys: list[ServerKeys]
    events_read: int
    def __new__(cls, path: str) -> RoomFileReader: ...
    def read_events(self, max_count: int) -> list[bytes]:
        """Up to ``max_count`` encoded events; empty at the end of the file."""

# --- batch entry points (GIL released, all cores) ----------------------------------------

@final
class BatchResult:
    """Outcome of ``check_events``: IDs for all events and the failures by index."""

    count: int
    event_ids: list[str]  # "" where the event failed to decode
    reference_hashes: bytes  # count * 32 bytes (numpy.frombuffer(..., dtype=uint8).reshape(-1, 32))
    failures: list[tuple[int, MimiError]]

def decode_events(blobs: Sequence[bytes]) -> list[Event]:
    """Decode N events in parallel; raises the first failure's error with ``index`` set."""

def compute_event_ids(blobs: Sequence[bytes]) -> list[str]: ...
def encode_events(events: Sequence[Event]) -> list[bytes]:
    """``Event.encode()`` of many events in one call."""

def event_headers(events: Sequence[Event]) -> list[EventHeader]:
    """``Event.header()`` of many events in one call (the IDs not known yet computed on all
    cores first); equal fields of consecutive events share one string."""

def limited_event_headers(events: Sequence[LimitedEvent]) -> list[LimitedEventHeader]:
    """``LimitedEvent.header()`` of many limited events in one call."""

def limited_event_digests(events: Sequence[LimitedEvent]) -> list[bytes]:
    """SHA-256 of each encoded limited event, on all cores (the hub's key for a
    byte-identical resubmit)."""
def check_events(blobs: Sequence[bytes], keyring: KeyRing) -> BatchResult:
    """Decode, hash, ID and verify every signature of N independent events (batch Ed25519)."""

def checked_events(blobs: Sequence[bytes], keyring: KeyRing) -> tuple[list[Event | None], list[tuple[int, MimiError]]]:
    """``check_events`` returning the events that pass, decoded with their IDs known (None for
    one that fails), and the failures by index as ``check_events`` reports them."""

@final
class ChainBatch:
    events: list[Event]  # the valid prefix, in order
    error: MimiError | None  # the first failure (index/event_id set), or None

@final
class ChainValidator:
    """Checks a room chain chunk by chunk: decoding, hashes, links and all signatures.

    The policy pass (Python) walks ``ChainBatch.events`` afterwards.
    """

    next_index: int
    last_event_id: str | None
    def __new__(cls, keyring: KeyRing, threads: int | None = None) -> ChainValidator: ...
    def validate(self, blobs: Sequence[bytes]) -> ChainBatch: ...
    def validate_next(self, reader: RoomFileReader, max_count: int) -> tuple[ChainBatch, int] | None:
        """Read up to ``max_count`` events from ``reader`` and validate them in one call
        (the events never become Python bytes): ``(batch, bytes read)``, None at the end of
        the file; a read error is raised with its ``index``, as ``read_events`` raises it."""

def verify_limited_events(events: Sequence[LimitedEvent], keyring: KeyRing) -> list[MimiError | None]:
    """Origin signature and exact content hash of many limited events, batch-verified on all
    cores; per event None or the error (not raised)."""

def sign_events(events: Sequence[Event], hub_key: SigningKey) -> list[Event]:
    """Add the hub signature to events from ``LimitedEvent.to_unsigned_event``, on all cores."""

def verify_signatures_batch(
    messages: Sequence[bytes], signatures: Sequence[bytes], public_keys: Sequence[bytes]
) -> list[int]:
    """Indices of the signatures that fail (empty when all verify), exactly those single
    verification refuses: ZIP 215 batches (cofactored, coalesced per key), each failed batch
    re-checked one signature at a time. The keys are raw bytes decoded as ZIP 215 says (the
    publication rule of section 8 is ``VerifyKey``'s); one that does not decode fails."""
