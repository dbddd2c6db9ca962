"""Event content enums and thin helpers over the core's content classes (PROFILE.md section 5).

The wire codecs live in the Rust core (``CreateContent``, ``UserContent``, ...); this module
gives their enum fields names and dispatches ``decode_content`` by event type.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Dict, Optional, Sequence, Tuple, Union

from . import _core
from ._core import (
    EVENT_TYPE_TABLE,
    CreateContent,
    HistoryVisibilityContent,
    JoinRulesContent,
    Permission,
    RoleConfig,
    RoleContent,
    RoleMapContent,
    TextContent,
    UserContent,
    decode_registered_content,
)

__all__ = [
    "Participation",
    "JoinRule",
    "Visibility",
    "PermissionKind",
    "BOOLEAN_PERMISSIONS",
    "M_ROOM_CREATE",
    "M_ROOM_USER",
    "M_ROOM_NAME",
    "M_ROOM_AVATAR",
    "M_ROOM_TOPIC",
    "M_ROOM_JOIN_RULES",
    "M_ROOM_HISTORY_VISIBILITY",
    "M_ROOM_ROLE",
    "M_ROOM_ROLE_MAP",
    "M_ROOM_ENCRYPTED",
    "CONTENT_CLASSES",
    "OPAQUE_TYPES",
    "DecodedContent",
    "decode_content",
    "create_content",
    "user_content",
    "join_rules_content",
    "history_visibility_content",
    "role_content",
    "role_map_content",
    "text_content",
]


class Participation(IntEnum):
    """``ParticipationState`` of ``m.room.user`` (policy draft, user participation)."""

    INVITE = 0
    JOIN = 1
    LEAVE = 2
    BAN = 3
    KNOCK = 4


class JoinRule(IntEnum):
    """``JoinRule`` of ``m.room.join_rules``; a room without the event uses ``INVITE``."""

    INVITE = 0
    KNOCK = 1
    PUBLIC = 2


class Visibility(IntEnum):
    """``Visibility`` of ``m.room.history_visibility``; a room without the event uses ``SHARED``."""

    INVITED = 0
    JOINED = 1
    SHARED = 2
    WORLD = 3


class PermissionKind(IntEnum):
    """The ``Permission`` tag of a ``PermissionValue`` in ``m.room.role``."""

    INVITE = 1
    KICK = 2
    BAN = 3
    REDACT = 4
    EVENTS = 5
    ROLES = 6


#: The permissions whose value is a ``BooleanPermission``.
BOOLEAN_PERMISSIONS = (
    PermissionKind.INVITE,
    PermissionKind.KICK,
    PermissionKind.BAN,
    PermissionKind.REDACT,
)

M_ROOM_CREATE = "m.room.create"
M_ROOM_USER = "m.room.user"
M_ROOM_NAME = "m.room.name"
M_ROOM_AVATAR = "m.room.avatar"
M_ROOM_TOPIC = "m.room.topic"
M_ROOM_JOIN_RULES = "m.room.join_rules"
M_ROOM_HISTORY_VISIBILITY = "m.room.history_visibility"
M_ROOM_ROLE = "m.room.role"
M_ROOM_ROLE_MAP = "m.room.role_map"
M_ROOM_ENCRYPTED = "m.room.encrypted"

#: Registered types whose content has a codec in the core (from the core's registry table).
CONTENT_CLASSES: Dict[str, type] = {
    event_type: getattr(_core, codec) for event_type, _rule, codec in EVENT_TYPE_TABLE if codec is not None
}

#: Registered types whose content is opaque (never parsed).
OPAQUE_TYPES = frozenset(event_type for event_type, _rule, codec in EVENT_TYPE_TABLE if codec is None)

DecodedContent = Union[
    CreateContent,
    UserContent,
    TextContent,
    JoinRulesContent,
    HistoryVisibilityContent,
    RoleContent,
    RoleMapContent,
    bytes,
]


def decode_content(event_type: str, content: bytes) -> DecodedContent:
    """Decode ``content`` as its registered type.

    Opaque types (``m.room.encrypted`` and every non-``m.`` type) come back as the raw bytes;
    an ``m.`` type that is not registered raises ``MalformedError``.
    """
    cls = CONTENT_CLASSES.get(event_type)
    if cls is not None:
        return cls.decode(content)  # type: ignore[attr-defined]
    if event_type in OPAQUE_TYPES or not event_type.startswith("m."):
        return bytes(content)
    return decode_registered_content(event_type, None, content)  # the core's "unknown m. type"


# --- small encoders, handy for servers, the CLI and tests -----------------------------------


def create_content(policy_id: str, encryption_algorithm: str) -> bytes:
    return CreateContent(policy_id, encryption_algorithm).encode()


def user_content(participation: Union[Participation, int], reason: bytes = b"") -> bytes:
    return UserContent(int(participation), reason).encode()


def join_rules_content(rule: Union[JoinRule, int]) -> bytes:
    return JoinRulesContent(int(rule)).encode()


def history_visibility_content(visibility: Union[Visibility, int]) -> bytes:
    return HistoryVisibilityContent(int(visibility)).encode()


def text_content(value: Optional[bytes]) -> bytes:
    """Content of ``m.room.name`` / ``m.room.avatar`` / ``m.room.topic`` (None = redacted)."""
    return TextContent(value).encode()


def role_content(
    *,
    invite: Optional[bool] = None,
    kick: Optional[bool] = None,
    ban: Optional[bool] = None,
    redact: Optional[bool] = None,
    events: Optional[Sequence[Tuple[str, bool]]] = None,
    roles: Optional[Sequence[str]] = None,
) -> bytes:
    """Content of ``m.room.role``: only the permissions given (None = not defined by the role)."""
    permissions = []
    for kind, value in (
        (PermissionKind.INVITE, invite),
        (PermissionKind.KICK, kick),
        (PermissionKind.BAN, ban),
        (PermissionKind.REDACT, redact),
    ):
        if value is not None:
            permissions.append(Permission.boolean(int(kind), value))
    if events is not None:
        permissions.append(Permission.events(list(events)))
    if roles is not None:
        permissions.append(Permission.roles(list(roles)))
    return RoleContent(permissions).encode()


def role_map_content(configs: Sequence[Tuple[str, Sequence[str], int]]) -> bytes:
    """Content of ``m.room.role_map`` from ``(role_id, user_ids, order)`` triples."""
    return RoleMapContent([RoleConfig(r, list(users), order) for r, users, order in configs]).encode()
