"""The room's first two events (PROFILE.md section 4 rules 1 and 2).

Event 0 is ``m.room.create`` with state key ``""``, no auth events, an empty ``prev_event``, sent
by a user of the room ID's server; event 1 is the creator's own ``m.room.user`` with
participation ``join``.  Whether the named policy is supported is the ``PolicyRegistry``'s call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ...._core import CreateContent, MalformedError, PolicyRejectedError, parse_room_id, parse_user_id
from ....content import M_ROOM_CREATE, M_ROOM_USER, Participation
from .auth_selection import participation_of

if TYPE_CHECKING:
    from ...state import RoomState

__all__ = ["check_create", "check_creator_join"]


def check_create(event: Any, content: Optional[CreateContent] = None) -> CreateContent:
    """Rules of event 0 for an ``Event`` (or a ``LimitedEvent``: no auth/prev fields to check).

    Raises ``MalformedError`` for a wrong type, state key or content, and
    ``PolicyRejectedError`` for auth events, a ``prev_event`` or a sender on another server.
    """
    if event.type != M_ROOM_CREATE:
        raise MalformedError(f"event 0 must be m.room.create, got {event.type}")
    if event.state_key != "":
        raise MalformedError(f"m.room.create: the state key must be empty, got {event.state_key!r}")
    if content is None:
        content = CreateContent.decode(event.content)
    auth_events = getattr(event, "auth_events", None)
    if auth_events:
        raise PolicyRejectedError(f"m.room.create: must have no auth events, has {len(auth_events)}")
    prev_event = getattr(event, "prev_event", None)
    if prev_event:
        raise PolicyRejectedError(f"m.room.create: prev_event must be empty, got {prev_event}")
    room_server = parse_room_id(event.room_id)[1]
    sender_server = parse_user_id(event.sender)[1]
    if sender_server != room_server:
        raise PolicyRejectedError(
            f"m.room.create: sender {event.sender} is not on the room's server {room_server}"
        )
    return content


def check_creator_join(state: RoomState, event: Any, content: Any = None) -> None:
    """Event 1: the creator's ``m.room.user`` with participation ``join``."""
    if event.type != M_ROOM_USER:
        raise PolicyRejectedError(f"m.0: event 1 must be the creator's m.room.user join, got {event.type}")
    if event.sender != state.creator or event.state_key != state.creator:
        raise PolicyRejectedError(
            f"m.0: event 1 must be the creator {state.creator} joining, got {event.sender} "
            f"for {event.state_key}"
        )
    participation = participation_of(event.content if content is None else content)
    if participation != Participation.JOIN:
        raise PolicyRejectedError(
            f"m.0: event 1 must be the creator's join, got {participation.name.lower()}"
        )
