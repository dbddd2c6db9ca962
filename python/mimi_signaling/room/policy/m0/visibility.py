"""History visibility (policy draft "Event/History Visibility", PROFILE.md section 6).

For a non-state event at position p, with the visibility in force at p (default ``shared``), a
user sees it when:

* the visibility is ``world``;
* the user was joined at p;
* the visibility is ``shared`` and the user joined at any point after p;
* the visibility is ``invited`` and the user was invited at p.

State events are always visible.  A server sees an event when any of its users does; otherwise
the event is served to it redacted, by the hub and by followers alike (PROFILE.md section 6).
"At p" means the state the event at p was checked against.  Every function reads the room's
``RoomStateHistory`` (``RoomState.history``); a state kept without one cannot decide, and
``RoomChain.served`` serves such events redacted.

Who may read the room at all (``may_read``, PROFILE.md section 6): a server with a user in any
participation state, or every server while the current visibility is ``world``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ...._core import NotFoundError
from ....content import Participation, Visibility

if TYPE_CHECKING:
    from ...._core import Event
    from ...history import RoomStateHistory
    from ...state import RoomState

__all__ = ["user_sees", "visible_to_server", "served_redacted", "serve_event", "may_read"]


def _check_position(history: RoomStateHistory, position: int) -> None:
    if not 0 <= position < history.count:
        raise NotFoundError(f"no event at position {position} (the room has {history.count})")


def _user_sees(history: RoomStateHistory, position: int, user_id: str, visibility: Visibility) -> bool:
    participation = history.participation_at(user_id, position)
    if participation == Participation.JOIN:
        return True
    if visibility == Visibility.SHARED:
        last_join = history.last_join_position(user_id)
        return last_join is not None and last_join > position
    if visibility == Visibility.INVITED:
        return participation == Participation.INVITE
    return False


def _restricted(history: RoomStateHistory, position: int) -> Optional[Visibility]:
    """The visibility that restricts the event at ``position``, or None when everyone sees
    it (a state event, or world-readable history)."""
    _check_position(history, position)
    if history.is_state_position(position):
        return None
    visibility = history.visibility_at(position)
    return None if visibility == Visibility.WORLD else visibility


def user_sees(history: RoomStateHistory, position: int, user_id: str) -> bool:
    """Whether ``user_id`` may see the event at ``position``."""
    visibility = _restricted(history, position)
    return visibility is None or _user_sees(history, position, user_id, visibility)


def visible_to_server(history: RoomStateHistory, position: int, server_name: str) -> bool:
    """Whether ``server_name`` may receive the event at ``position`` unredacted."""
    visibility = _restricted(history, position)
    # tuple(): taken at once, so an event applied by another thread meanwhile (the room
    # keeps accepting while it serves) cannot change the set under the loop.
    return visibility is None or any(
        _user_sees(history, position, user_id, visibility)
        for user_id in tuple(history.iter_users_of_server(server_name))
    )


def served_redacted(history: RoomStateHistory, position: int, server_name: str) -> bool:
    return not visible_to_server(history, position, server_name)


def serve_event(history: RoomStateHistory, position: int, event: Event, server_name: str) -> Event:
    """``event`` (the one at ``position``) in the form ``server_name`` may receive."""
    if visible_to_server(history, position, server_name):
        return event
    return event.redacted()


def may_read(state: RoomState, server_name: str) -> bool:
    """PROFILE.md section 6, "Who may read a room": ``snapshot``, ``get_state``, ``get_event``
    and ``backfill`` are answered to a server that has a user with any participation state in
    the room (invite, join, knock, leave, ban), and to every server when the current history
    visibility is ``world``."""
    return state.has_user_of(server_name) or state.history_visibility() == Visibility.WORLD
