"""Event 1 of an ``m.0`` room (PROFILE.md section 4 rule 2): the creator's own ``m.room.user``
with participation ``join``.  Event 0's rules are the room layer's (``room/create.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...._core import PolicyRejectedError
from ....content import M_ROOM_USER, Participation
from .auth_selection import participation_of

if TYPE_CHECKING:
    from ...state import RoomState

__all__ = ["check_creator_join"]


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
