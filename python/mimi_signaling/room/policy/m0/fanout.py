"""Fan-out of an accepted event (PROFILE.md section 6).

Every server with a joined user in the state *after* the event receives it; an ``m.room.user``
event also goes to its target's server (so a kicked, banned or invited user's server learns of
it).  The hub removes its own server from the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Set

from ....content import M_ROOM_USER

if TYPE_CHECKING:
    from ...fields import EventFields
    from ...state import RoomState

__all__ = ["fanout"]


def fanout(state_after: RoomState, event: EventFields) -> Set[str]:
    servers = state_after.joined_servers()
    if event.type == M_ROOM_USER and event.state_key is not None:
        servers.add(state_after.server_of(event.state_key))
    return servers
