"""Event sending permission (policy draft "Event Sending Permissions", PROFILE.md section 6).

Every event other than ``m.room.user`` needs a joined sender with the ``events`` permission for
its type.  In the creator phase (no ``m.room.role_map`` yet) the creator holds every permission
and every other joined user may send non-state events only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ....content import Participation
from .cache import user_cache
from .permissions import user_permissions
from .roles import in_creator_phase

if TYPE_CHECKING:
    from ...state import RoomState

__all__ = ["send_verdict"]


def send_verdict(state: RoomState, sender: str, event_type: str, is_state: bool) -> str:
    """``""`` when ``sender`` may send an event of ``event_type`` now, else the reason
    (memoised per sender until the sender's participation or the roles change)."""
    entry = user_cache(state, sender)
    key = (event_type, is_state)
    verdict = entry.verdicts.get(key)
    if verdict is None:
        verdict = entry.verdicts[key] = _verdict(state, sender, event_type, is_state)
    return verdict


def _verdict(state: RoomState, sender: str, event_type: str, is_state: bool) -> str:
    participation = state.participation(sender)
    if participation != Participation.JOIN:
        now = "no participation" if participation is None else participation.name.lower()
        return f"m.0 send {event_type}: sender {sender} is not joined ({now})"
    if in_creator_phase(state):
        if sender == state.creator or not is_state:
            return ""
        return (
            f"m.0 send {event_type}: before the room has an m.room.role_map only the creator "
            f"may send state events"
        )
    if not user_permissions(state, sender).can_send(event_type):
        return f"m.0 send {event_type}: {sender} lacks the events permission for {event_type}"
    return ""

