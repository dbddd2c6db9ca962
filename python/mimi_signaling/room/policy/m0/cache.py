"""Per-user memo of m.0 verdicts, stored in ``RoomState.policy_cache``.

What is memoised for user U depends only on: the create event, U's ``m.room.user``, the role
map and the ``m.room.role`` events.  So applying U's ``m.room.user`` drops U's entry, a role or
role-map change drops every entry, and any other state change (name, topic, join rules, ...)
keeps them.  That keeps the per-message path at a few dictionary lookups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ....content import M_ROOM_CREATE, M_ROOM_ROLE, M_ROOM_ROLE_MAP, M_ROOM_USER

if TYPE_CHECKING:
    from ...fields import EventFields
    from ...state import RoomState
    from .permissions import UserPermissions  # permissions imports this module

__all__ = ["UserCache", "user_cache", "invalidate"]


class UserCache:
    __slots__ = ("perms", "auth", "verdicts")

    def __init__(self) -> None:
        self.perms: Optional[UserPermissions] = None
        self.auth: Optional[List[str]] = None  # auth selection for events other than m.room.user
        # (type, is_state) -> "" when allowed, else the rejection reason
        self.verdicts: Dict[Tuple[str, bool], str] = {}


def user_cache(state: RoomState, user_id: str) -> UserCache:
    cache = state.policy_cache
    entry = cache.get(user_id)
    if entry is None:
        entry = cache[user_id] = UserCache()
    return entry


def invalidate(state: RoomState, event: EventFields) -> None:
    """Drop the memo entries a just-applied state event may have changed."""
    event_type = event.type
    if event_type == M_ROOM_USER:
        state.policy_cache.pop(event.state_key, None)
    elif event_type in (M_ROOM_ROLE, M_ROOM_ROLE_MAP, M_ROOM_CREATE):
        state.policy_cache.clear()
