"""Permission resolution and effective power levels (policy draft, "Calculating Permissions").

For each permission (for ``events``: each event type) the highest-order role of the user that
defines it decides; undefined means not granted.  The effective power level for a permission is
the highest order among the user's roles that define it, whatever the value; a user with none
has ``NO_LEVEL``, below every order.  In the creator phase the creator holds every permission
at ``CREATOR_LEVEL``, above every ``uint32`` order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Sequence, Tuple

from ....content import PermissionKind
from .cache import user_cache
from .roles import RoleRules, role_map_info, role_rules

if TYPE_CHECKING:
    from ...state import RoomState

__all__ = [
    "NO_LEVEL",
    "CREATOR_LEVEL",
    "UserPermissions",
    "CreatorPermissions",
    "NO_PERMISSIONS",
    "CREATOR_PERMISSIONS",
    "user_permissions",
    "effective_power_level",
]

NO_LEVEL = -1
CREATOR_LEVEL = 1 << 32

class UserPermissions:
    """One user's resolved permissions, from their roles as ``(order, RoleRules)``."""

    __slots__ = ("_roles", "_booleans", "_levels", "_roles_list", "_roles_level", "_events")

    def __init__(self, roles: Sequence[Tuple[int, RoleRules]]) -> None:
        self._roles = sorted(roles, key=lambda role: role[0], reverse=True)
        self._booleans: Dict[PermissionKind, bool] = {}
        self._levels: Dict[PermissionKind, int] = {}
        self._roles_list: Optional[Tuple[str, ...]] = None
        self._roles_level = NO_LEVEL
        for order, rules in self._roles:
            for kind, granted in rules.booleans.items():
                if kind not in self._booleans:
                    self._booleans[kind] = granted
                    self._levels[kind] = order
            if rules.roles is not None and self._roles_list is None:
                self._roles_list = rules.roles
                self._roles_level = order
        self._events: Dict[str, Tuple[bool, int]] = {}  # memo: type -> (granted, level)

    def granted(self, kind: PermissionKind) -> bool:
        """A boolean permission (invite/kick/ban/redact)."""
        return self._booleans.get(kind, False)

    def level(self, kind: PermissionKind) -> int:
        """Effective power level for a boolean permission or ``ROLES``."""
        if kind == PermissionKind.ROLES:
            return self._roles_level
        return self._levels.get(kind, NO_LEVEL)

    def _event(self, event_type: str) -> Tuple[bool, int]:
        verdict = self._events.get(event_type)
        if verdict is None:
            verdict = (False, NO_LEVEL)
            for order, rules in self._roles:
                granted = rules.events.get(event_type)
                if granted is not None:
                    verdict = (granted, order)
                    break
            self._events[event_type] = verdict
        return verdict

    def can_send(self, event_type: str) -> bool:
        """The ``events`` permission for ``event_type``."""
        return self._event(event_type)[0]

    def event_level(self, event_type: str) -> int:
        return self._event(event_type)[1]

    def roles_list(self) -> Optional[Tuple[str, ...]]:
        """The resolved ``roles`` permission (None when no role of the user defines it)."""
        return self._roles_list

    def may_affect_role(self, role_id: str) -> bool:
        return self._roles_list is not None and role_id in self._roles_list

    @property
    def is_creator(self) -> bool:
        return False

    def __repr__(self) -> str:
        return (
            f"<UserPermissions booleans={dict(self._booleans)} roles={self._roles_list} "
            f"levels={dict(self._levels)}>"
        )


class CreatorPermissions(UserPermissions):
    """The creator during the creator phase: every permission, above every order."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(())

    def granted(self, kind: PermissionKind) -> bool:
        return True

    def level(self, kind: PermissionKind) -> int:
        return CREATOR_LEVEL

    def can_send(self, event_type: str) -> bool:
        return True

    def event_level(self, event_type: str) -> int:
        return CREATOR_LEVEL

    def may_affect_role(self, role_id: str) -> bool:
        return True

    @property
    def is_creator(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "<CreatorPermissions>"


NO_PERMISSIONS = UserPermissions(())
CREATOR_PERMISSIONS = CreatorPermissions()


def user_permissions(state: RoomState, user_id: str) -> UserPermissions:
    """``user_id``'s permissions in the current state (memoised until roles change)."""
    entry = user_cache(state, user_id)
    perms = entry.perms
    if perms is None:
        perms = entry.perms = _compute(state, user_id)
    return perms


def _compute(state: RoomState, user_id: str) -> UserPermissions:
    role_map = role_map_info(state)
    if role_map is None:
        return CREATOR_PERMISSIONS if user_id == state.creator else NO_PERMISSIONS
    role_ids = role_map.roles_for(user_id)
    if not role_ids:
        return NO_PERMISSIONS
    return UserPermissions(
        [(role_map.by_role[role_id].order, role_rules(state, role_id)) for role_id in role_ids]
    )


def effective_power_level(state: RoomState, user_id: str, kind: PermissionKind) -> int:
    """Effective power level of ``user_id`` for a boolean permission or ``ROLES``."""
    return user_permissions(state, user_id).level(kind)
