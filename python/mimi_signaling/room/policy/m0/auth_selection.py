"""Auth event selection and its check (policy draft "Auth Events Selection", PROFILE.md
section 4 rule 3).

The selection, in this exact order, each only where it exists in the current state:
create; the sender's ``m.room.user``; ``m.room.role_map``; the sender's ``m.room.role`` events
in the order their roles appear in the role map's list; for ``m.room.user`` events the target's
``m.room.user`` (target != sender) and, when the participation is ``join`` or ``invite``,
``m.room.join_rules``.  ``m.room.create`` itself has no auth events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence, Type, TypeVar

from ...._core import PolicyRejectedError, RoleMapContent, UserContent
from ....content import (
    M_ROOM_CREATE,
    M_ROOM_JOIN_RULES,
    M_ROOM_ROLE,
    M_ROOM_ROLE_MAP,
    M_ROOM_USER,
    DecodedContent,
    Participation,
)
from .cache import user_cache
from .roles import role_map_info

if TYPE_CHECKING:
    from ...fields import EventFields
    from ...state import RoomState

__all__ = [
    "select_auth_events",
    "check_auth_events",
    "describe_mismatch",
    "participation_of",
    "decoded_as",
]

_JOIN_OR_INVITE = (Participation.JOIN, Participation.INVITE)


def participation_of(content: UserContent) -> Participation:
    """The participation of decoded ``m.room.user`` content (the core refuses unknown values
    when it decodes or builds one, so every ``UserContent`` holds a known participation)."""
    return Participation(content.participation)


_Decoded = TypeVar("_Decoded", UserContent, RoleMapContent)


def decoded_as(codec: Type[_Decoded], event: EventFields, content: Optional[DecodedContent]) -> _Decoded:
    """The content of ``event`` as ``codec``: ``content`` when the caller decoded it
    (``Policy.check``'s "decoded content if known"), else decoded now (``MalformedError``)."""
    if content is None:
        return codec.decode(event.content)
    if not isinstance(content, codec):  # a caller's mistake, not a peer's
        raise TypeError(f"{event.type} content must be decoded as {codec.__name__}, got {type(content).__name__}")
    return content


def _sender_selection(state: RoomState, sender: str) -> List[str]:
    selection = [state.create_event_id]
    user_event = state.get_event_id(M_ROOM_USER, sender)
    if user_event is not None:
        selection.append(user_event)
    role_map = state.get_event_id(M_ROOM_ROLE_MAP, "")
    if role_map is not None:
        selection.append(role_map)
        info = role_map_info(state)
        for role_id in info.roles_for(sender):  # type: ignore[union-attr]
            role_event = state.get_event_id(M_ROOM_ROLE, role_id)
            if role_event is not None:
                selection.append(role_event)
    return selection


def select_auth_events(
    state: RoomState,
    event_type: str,
    state_key: Optional[str],
    sender: str,
    content: Optional[DecodedContent] = None,
) -> List[str]:
    """The auth event IDs for an event sent now, in order.  ``content`` is the decoded
    content (as ``registry.check_shape`` returns it); it is only read for ``m.room.user``."""
    if event_type == M_ROOM_CREATE:
        return []
    if event_type != M_ROOM_USER:
        entry = user_cache(state, sender)
        if entry.auth is None:
            entry.auth = _sender_selection(state, sender)
        return list(entry.auth)
    selection = _sender_selection(state, sender)
    if state_key is not None and state_key != sender:
        target_event = state.get_event_id(M_ROOM_USER, state_key)
        if target_event is not None:
            selection.append(target_event)
    if not isinstance(content, UserContent):  # a caller's mistake, not a peer's
        raise TypeError(f"m.room.user content must be decoded as UserContent, got {type(content).__name__}")
    if participation_of(content) in _JOIN_OR_INVITE:
        join_rules = state.get_event_id(M_ROOM_JOIN_RULES, "")
        if join_rules is not None:
            selection.append(join_rules)
    return selection


def _describe(state: RoomState, event_id: str) -> str:
    key = state.key_of(event_id)
    if key is not None:
        return f"{event_id} ({key[0]} {key[1]!r})"
    return event_id


def describe_mismatch(state: RoomState, actual: Sequence[str], expected: Sequence[str]) -> str:
    """Why ``actual`` is not ``expected``: every duplicate, unknown, non-current, extra and
    missing ID, else the order."""
    problems: List[str] = []
    seen = set()
    for event_id in actual:
        if event_id in seen:
            problems.append(f"duplicate auth event {event_id}")
        seen.add(event_id)
    wanted = set(expected)
    history = state.history
    for event_id in dict.fromkeys(actual):
        if event_id in wanted:
            continue
        if state.is_current(event_id):
            problems.append(f"extra auth event {_describe(state, event_id)}: not part of the selection")
            continue
        past = history.state_event(event_id) if history is not None else None
        if past is not None:
            problems.append(
                f"non-current auth event {event_id} ({past[0]} {past[1]!r} of position {past[2]})"
            )
        elif history is None:
            problems.append(f"unknown or non-current auth event {event_id}")
        else:
            problems.append(f"unknown auth event {event_id}")
    for event_id in expected:
        if event_id not in seen:
            problems.append(f"missing auth event {_describe(state, event_id)}")
    if not problems:
        problems.append(f"auth events out of order: expected {list(expected)}")
    return "m.0 auth_events: " + "; ".join(problems)


def check_auth_events(
    event: EventFields,
    state: RoomState,
    *,
    content: Optional[DecodedContent] = None,
    expected: Optional[Sequence[str]] = None,
) -> None:
    """Reject ``event`` unless its auth events are exactly the selection from ``state``
    (``content``: the decoded content if known)."""
    if expected is None:
        if event.type == M_ROOM_USER:
            content = decoded_as(UserContent, event, content)
        expected = select_auth_events(state, event.type, event.state_key, event.sender, content)
    actual = event.auth_events
    if list(actual) != list(expected):
        raise PolicyRejectedError(describe_mismatch(state, actual, expected))
