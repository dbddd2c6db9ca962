"""Event-type and policy registries (PROFILE.md sections 3-5).

``EventTypeRegistry`` knows, for each registered type, whether it is a state event, the rule
its state key follows and its content codec.  ``check_shape`` applies those rules to one event
(limited or fully formed) and raises ``MalformedError``; the hub calls it before the policy.
The profile's ``m.`` types are the core's (``EVENT_TYPE_TABLE``, checked in one call by
``decode_registered_content``); an application registers its own namespaced types here, with
a state-key rule such as ``empty_state_key`` and a codec of its own.

A non-``m.`` type that is not registered is state or not by its first accepted use *per room*;
that per-room memory is ``RoomState.custom_type_kinds``, so ``check_shape`` takes the room state
(``None`` for an event that would open a room).

``PolicyRegistry`` maps policy IDs (the ``policy_id`` of ``m.room.create``) to ``Policy``
objects.  Decision: a well-formed but unknown policy ID raises ``PolicyRejectedError`` (the
content decodes; the room is refused because this server does not run that policy); a policy
ID that breaks the namespaced grammar raises ``MalformedError``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Optional, Protocol, cast

from .. import _core
from .._core import (
    EVENT_TYPE_TABLE,
    MalformedError,
    decode_registered_content,
    PolicyRejectedError,
    parse_room_id,
    parse_user_id,
    validate_event_type,
    validate_role_id,
)
from ..content import (
    M_ROOM_CREATE,
    DecodedContent,
)
from .fields import ShapeFields

if TYPE_CHECKING:
    from .policy import Policy
    from .state import RoomState

__all__ = [
    "EventTypeSpec",
    "EventTypeRegistry",
    "PolicyRegistry",
    "DEFAULT_EVENT_TYPES",
    "DEFAULT_POLICIES",
    "check_shape",
    "register",
    "register_policy",
    "empty_state_key",
    "user_id_state_key",
    "role_id_state_key",
]

logger = logging.getLogger(__name__)

#: ``rule(state_key, event)`` raises ``MalformedError``; ``event`` is what the shape check has.
StateKeyRule = Callable[[Optional[str], ShapeFields], None]
#: Extra validity rules on an application codec's decoded content (its own type).
ContentCheck = Callable[[Any], None]


class ContentCodec(Protocol):
    """A content class as the registry uses it: the core's content classes, or an
    application's (``decode`` raises ``MalformedError``)."""

    def decode(self, data: bytes, /) -> object: ...


# --- state key rules ------------------------------------------------------------------------


def _checked(check: Callable[[str], object], value: str, context: str) -> None:
    """Run a core grammar check; its MalformedError gets ``context`` in front."""
    try:
        check(value)
    except MalformedError as exc:
        raise MalformedError(f"{context}: {exc}") from None


def empty_state_key(state_key: Optional[str], event: ShapeFields) -> None:
    if state_key != "":
        raise MalformedError(f"{event.type}: the state key must be empty, got {state_key!r}")


def user_id_state_key(state_key: Optional[str], event: ShapeFields) -> None:
    if state_key is None:
        raise MalformedError(f"{event.type}: the state key must be a user ID")
    _checked(parse_user_id, state_key, f"{event.type}: the state key is not a valid user ID")


def role_id_state_key(state_key: Optional[str], event: ShapeFields) -> None:
    if state_key is None:
        raise MalformedError(f"{event.type}: the state key must be a role ID")
    _checked(validate_role_id, state_key, f"{event.type}: the state key is not a valid role ID")


# --- content rules --------------------------------------------------------------------------
#
# The core's decoders own the identifier rules inside content (PROFILE.md sections 3, 5, 6):
# ``CreateContent.decode`` checks the policy ID and encryption algorithm, ``RoleContent.decode``
# the event types and role IDs of a role's permissions, ``RoleMapContent.decode`` the role IDs
# and user IDs of a role map, unique role IDs and orders, and no user twice in one role.  Hub,
# follower and ``mimi verify`` all decode through ``check_shape``, so they give the same
# ``MalformedError``; ``EventTypeSpec.content_check`` is for what an application registers.


# --- event types ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventTypeSpec:
    """One registered event type.

    ``is_state``: True / False, or None for "by first accepted use, per room".
    ``state_key_rule(state_key, event)`` raises ``MalformedError`` (only called for state events).
    ``content_codec``: a class with ``decode(bytes)``, or None for opaque content.
    ``content_check(decoded)``: extra validity rules on the decoded content, or None.
    """

    type: str
    is_state: Optional[bool]
    state_key_rule: Optional[StateKeyRule] = None
    content_codec: Optional[ContentCodec] = None
    content_check: Optional[ContentCheck] = None


def _builtin_specs() -> Iterator[EventTypeSpec]:
    """The registered ``m.`` types, from the core's table (PROFILE.md section 5): the core owns
    their state-key rules and codecs and checks them in ``check_shape`` (one call per event)."""
    for event_type, state_key_rule, codec in EVENT_TYPE_TABLE:
        content_codec = getattr(_core, codec) if codec is not None else None
        yield EventTypeSpec(event_type, state_key_rule != "not_state", None, content_codec)


class EventTypeRegistry:
    """Registered event types; the ``m.`` types of PROFILE.md section 5 are built in."""

    def __init__(self) -> None:
        self._specs: Dict[str, EventTypeSpec] = {spec.type: spec for spec in _builtin_specs()}

    def register(self, spec: EventTypeSpec, *, replace: bool = False) -> None:
        """Register a namespaced, non-``m.`` type (``MalformedError`` for a bad or reserved name)."""
        validate_event_type(spec.type)
        if spec.type.startswith("m."):
            raise MalformedError(f"event type {spec.type!r}: the m. namespace is reserved")
        if spec.type in self._specs and not replace:
            raise ValueError(f"event type {spec.type!r} is already registered")
        self._specs[spec.type] = spec

    def get(self, event_type: str) -> Optional[EventTypeSpec]:
        return self._specs.get(event_type)

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._specs

    def __iter__(self) -> Iterator[EventTypeSpec]:
        return iter(list(self._specs.values()))

    def is_state_type(self, event_type: str, state: Optional[RoomState] = None) -> Optional[bool]:
        """True/False when known (registry, else the room's first use); None when still open."""
        spec = self._specs.get(event_type)
        if spec is not None and spec.is_state is not None:
            return spec.is_state
        if state is None:
            return None
        return state.custom_type_kinds.get(event_type)

    def check_shape(self, event: ShapeFields, state: Optional[RoomState] = None) -> DecodedContent:
        """Type, state key and content rules for one event; return the decoded content.

        ``event``: an ``Event`` or a ``LimitedEvent``, or (on the per-event paths, which read
        each event's fields once) its header.  ``state`` is the room's state before the event,
        or None when the event would open a room.  Raises ``MalformedError`` and changes nothing.
        """
        event_type = event.type
        state_key = event.state_key
        registered = event_type.startswith("m.")  # the profile's types: the core checks them
        spec = None if registered else self._specs.get(event_type)
        if spec is None and not registered:
            validate_event_type(event_type)
        if state is not None:
            if event.room_id != state.room_id:
                raise MalformedError(
                    f"event for room {event.room_id} does not belong to room {state.room_id}"
                )
            if event_type == M_ROOM_CREATE:
                raise MalformedError("m.room.create is only valid as the room's first event")
            # A sender that already has participation in the room was parsed then; skip the
            # parse on the per-message path.
            if state.participation(event.sender) is None:
                _check_sender(event.sender)
        else:
            parse_room_id(event.room_id)
            _check_sender(event.sender)

        if registered:
            # Section 4 rule 4 for the profile's types (unknown m. type, state key rule, codec):
            # the core's, in one call.
            return decode_registered_content(event_type, state_key, event.content)

        is_state = state_key is not None
        expected = spec.is_state if spec is not None else None
        if expected is None and state is not None:
            expected = state.custom_type_kinds.get(event_type)
        if expected is not None and expected != is_state:
            if expected:
                raise MalformedError(f"{event_type} is a state event type: a state key is required")
            raise MalformedError(f"{event_type} is not a state event type: it takes no state key")
        if spec is None:
            return bytes(event.content)
        if is_state and spec.state_key_rule is not None:
            spec.state_key_rule(state_key, event)
        if spec.content_codec is None:
            return bytes(event.content)
        try:
            decoded = cast(DecodedContent, spec.content_codec.decode(event.content))
        except MalformedError as exc:
            raise MalformedError(f"{event_type}: content does not decode: {exc}") from None
        if spec.content_check is not None:
            spec.content_check(decoded)
        return decoded


def _check_sender(sender: str) -> None:
    _checked(parse_user_id, sender, f"bad sender {sender!r}")


# --- policies -------------------------------------------------------------------------------


class PolicyRegistry:
    """Policy IDs -> ``Policy`` objects; ``m.0`` is built in."""

    def __init__(self, *, builtin: bool = True) -> None:
        self._policies: Dict[str, Policy] = {}
        if builtin:
            from .policy.m0 import M0_POLICY

            self._policies[M0_POLICY.policy_id] = M0_POLICY

    def register_policy(self, policy_id: str, policy: Policy, *, replace: bool = False) -> None:
        validate_event_type(policy_id)
        if policy_id.startswith("m."):
            raise MalformedError(f"policy ID {policy_id!r}: the m. namespace is reserved")
        if policy_id in self._policies and not replace:
            raise ValueError(f"policy ID {policy_id!r} is already registered")
        self._policies[policy_id] = policy

    def get(self, policy_id: str) -> Policy:
        """The policy for ``policy_id``; ``PolicyRejectedError`` when this server lacks it."""
        policy = self._policies.get(policy_id)
        if policy is None:
            validate_event_type(policy_id)
            raise PolicyRejectedError(f"unsupported policy ID {policy_id!r} (known: {', '.join(sorted(self._policies))})")
        return policy

    def __contains__(self, policy_id: object) -> bool:
        return policy_id in self._policies

    def ids(self) -> list[str]:
        return sorted(self._policies)


DEFAULT_EVENT_TYPES = EventTypeRegistry()
DEFAULT_POLICIES = PolicyRegistry()


def check_shape(
    event: ShapeFields, state: Optional[RoomState] = None, registry: Optional[EventTypeRegistry] = None
) -> DecodedContent:
    """``registry.check_shape`` with the process-wide registry by default."""
    return (registry or DEFAULT_EVENT_TYPES).check_shape(event, state)


def register(spec: EventTypeSpec, *, replace: bool = False) -> None:
    DEFAULT_EVENT_TYPES.register(spec, replace=replace)


def register_policy(policy_id: str, policy: Policy, *, replace: bool = False) -> None:
    DEFAULT_POLICIES.register_policy(policy_id, policy, replace=replace)
