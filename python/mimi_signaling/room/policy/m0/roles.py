"""Roles and the role map: their decoded forms, the creator phase and the role-change rules.

PROFILE.md section 6: until the room has an ``m.room.role_map`` the creator holds every
permission ("creator phase"); afterwards permissions come from roles alone.  Sending an
``m.room.role`` for role R, or an ``m.room.role_map`` that adds, removes or changes the config
of R, needs the ``events`` permission for that type (checked by ``sending``) and R in the
sender's resolved ``roles`` list (checked here), against the state before the event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, FrozenSet, Iterable, List, Optional, Protocol, Set, Tuple

from ...._core import PolicyRejectedError, RoleContent, RoleMapContent
from ....content import M_ROOM_ROLE, M_ROOM_ROLE_MAP, PermissionKind

if TYPE_CHECKING:
    from ...state import RoomState

__all__ = [
    "RoleRules",
    "RolesPermission",
    "RoleConfigInfo",
    "RoleMapInfo",
    "EMPTY_ROLE",
    "in_creator_phase",
    "role_map_info",
    "role_rules",
    "changed_roles",
    "check_role_event",
    "check_role_map_event",
]


@dataclass(frozen=True)
class RoleRules:
    """The permissions one ``m.room.role`` defines, in plain Python form.

    ``booleans``: invite/kick/ban/redact -> granted, for the tags the role lists.
    ``events``: event type -> granted (the last record for a type wins, per the draft).
    ``roles``: the ``roles`` permission's role IDs, or None when the role does not define it.
    ``defines_events``: whether the role lists the ``events`` tag at all.
    """

    booleans: Dict[PermissionKind, bool] = field(default_factory=dict)
    events: Dict[str, bool] = field(default_factory=dict)
    roles: Optional[Tuple[str, ...]] = None
    defines_events: bool = False

    @classmethod
    def from_content(cls, content: RoleContent) -> RoleRules:
        booleans: Dict[PermissionKind, bool] = {}
        events: Dict[str, bool] = {}
        roles: Optional[Tuple[str, ...]] = None
        defines_events = False
        for permission in content.permissions:
            kind = PermissionKind(permission.kind)
            if kind == PermissionKind.EVENTS:
                defines_events = True
                for event_type, granted in permission.event_types or ():
                    events[event_type] = bool(granted)  # later records overwrite earlier ones
            elif kind == PermissionKind.ROLES:
                roles = tuple(permission.role_ids or ())
            else:
                booleans[kind] = bool(permission.granted)
        return cls(booleans, events, roles, defines_events)


#: A role named by the role map that has no ``m.room.role`` event: it defines nothing.
EMPTY_ROLE = RoleRules()


@dataclass(frozen=True)
class RoleConfigInfo:
    role_id: str
    user_ids: Tuple[str, ...]
    order: int

    @property
    def users(self) -> FrozenSet[str]:
        return frozenset(self.user_ids)

    def same_config(self, other: RoleConfigInfo) -> bool:
        # The users as a set: listing the same users in another order changes nothing.
        return self.order == other.order and set(self.user_ids) == set(other.user_ids)


@dataclass(frozen=True)
class RoleMapInfo:
    """A decoded role map: configs in list order and each user's roles in that order."""

    configs: Tuple[RoleConfigInfo, ...]
    by_role: Dict[str, RoleConfigInfo]
    roles_of: Dict[str, Tuple[str, ...]]

    @classmethod
    def from_content(cls, content: RoleMapContent) -> RoleMapInfo:
        configs = tuple(
            RoleConfigInfo(config.role_id, tuple(config.user_ids), int(config.order))
            for config in content.roles
        )
        roles_of: Dict[str, List[str]] = {}
        for config in configs:
            for user_id in config.user_ids:
                roles = roles_of.setdefault(user_id, [])
                if config.role_id not in roles:
                    roles.append(config.role_id)
        return cls(
            configs,
            {config.role_id: config for config in configs},
            {user: tuple(roles) for user, roles in roles_of.items()},
        )

    def roles_for(self, user_id: str) -> Tuple[str, ...]:
        """The user's role IDs in role-map order."""
        return self.roles_of.get(user_id, ())


def in_creator_phase(state: RoomState) -> bool:
    """True until the room has an ``m.room.role_map``."""
    return state.get_event_id(M_ROOM_ROLE_MAP, "") is None


def role_map_info(state: RoomState) -> Optional[RoleMapInfo]:
    """The current role map, decoded once per event (None in the creator phase)."""
    event_id = state.get_event_id(M_ROOM_ROLE_MAP, "")
    if event_id is None:
        return None
    key = ("m0.role_map", event_id)
    info = state.derived.get(key)
    if info is None:
        info = state.derived[key] = RoleMapInfo.from_content(state.content(M_ROOM_ROLE_MAP, ""))  # type: ignore[arg-type]
    return info


def role_rules(state: RoomState, role_id: str) -> RoleRules:
    """The current ``m.room.role`` for ``role_id`` (``EMPTY_ROLE`` when there is none)."""
    event_id = state.get_event_id(M_ROOM_ROLE, role_id)
    if event_id is None:
        return EMPTY_ROLE
    key = ("m0.role", event_id)
    rules = state.derived.get(key)
    if rules is None:
        rules = state.derived[key] = RoleRules.from_content(state.content(M_ROOM_ROLE, role_id))  # type: ignore[arg-type]
    return rules


def changed_roles(old: Optional[RoleMapInfo], new: RoleMapInfo) -> Set[str]:
    """Role IDs that ``new`` adds, removes, or whose users or order it changes."""
    old_roles = old.by_role if old is not None else {}
    changed: Set[str] = set()
    for role_id, config in new.by_role.items():
        previous = old_roles.get(role_id)
        if previous is None or not previous.same_config(config):
            changed.add(role_id)
    changed.update(role_id for role_id in old_roles if role_id not in new.by_role)
    return changed


class RolesPermission(Protocol):
    """What the role-change rules read of a user's resolved permissions: the ``roles``
    permission.  ``permissions.UserPermissions`` (and the creator's) satisfy it; it is a
    protocol because ``permissions`` is built on this module."""

    def may_affect_role(self, role_id: str) -> bool: ...


def _require_roles(perms: RolesPermission, sender: str, role_ids: Iterable[str], what: str) -> None:
    for role_id in sorted(role_ids):
        if not perms.may_affect_role(role_id):
            raise PolicyRejectedError(
                f"m.0 {what}: role {role_id!r} is not in {sender}'s roles permission"
            )


def check_role_event(state: RoomState, sender: str, role_id: str, perms: RolesPermission) -> None:
    """``m.room.role`` for ``role_id``: the role must be in the sender's ``roles`` list."""
    _require_roles(perms, sender, (role_id,), "m.room.role")


def check_role_map_event(
    state: RoomState, sender: str, content: RoleMapContent, perms: RolesPermission
) -> None:
    """``m.room.role_map``: every added, removed or changed role must be in the sender's
    ``roles`` list (the creator, in the creator phase, may affect every role)."""
    new = RoleMapInfo.from_content(content)
    _require_roles(perms, sender, changed_roles(role_map_info(state), new), "m.room.role_map")
