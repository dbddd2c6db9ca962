"""Event 1 of an ``m.0`` room (PROFILE.md section 4 rule 2): the creator's own ``m.room.user``
with participation ``join``.  Event 0's rules are the room layer's (``room/create.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ...._core import PolicyRejectedError, UserContent
from ....content import M_ROOM_USER, DecodedContent, Participation
from .auth_selection import decoded_as, participation_of

if TYPE_CHECKING:
    from ...fields import EventFields
    from ...state import RoomState

__all__ = ["check_creator_join"]


def check_creator_join(state: RoomState, event: EventFields, content: Optional[DecodedContent] = None) -> None:
    """Event 1: the creator's ``m.room.user`` with participation ``join`` (``content``: the
    decoded content if known)."""
    if event.type != M_ROOM_USER:
        raise PolicyRejectedError(f"m.0: event 1 must be the creator's m.room.user join, got {event.type}")
    if event.sender != state.creator or event.state_key != state.creator:
        raise PolicyRejectedError(
            f"m.0: event 1 must be the creator {state.creator} joining, got {event.sender} "
            f"for {event.state_key}"
        )
    participation = participation_of(decoded_as(UserContent, event, content))
    if participation != Participation.JOIN:
        raise PolicyRejectedError(
            f"m.0: event 1 must be the creator's join, got {participation.name.lower()}"
        )
