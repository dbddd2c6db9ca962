"""The policy draft's permission rules written generically ("Calculating Permissions"), as an
oracle for the tests: ``UserPermissions`` (the package's resolution, specialised and memoised)
must agree with it on any set of roles."""

from __future__ import annotations

from typing import Any, Dict, Hashable, Iterable, List, Mapping, Tuple, TypeVar

from mimi_signaling.content import PermissionKind
from mimi_signaling.room.policy.m0.roles import RoleRules

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _by_order_desc(roles: Iterable[Tuple[int, Mapping[K, V]]]) -> List[Tuple[int, Mapping[K, V]]]:
    return sorted(roles, key=lambda role: role[0], reverse=True)


def resolve_permissions(roles: Iterable[Tuple[int, Mapping[K, V]]]) -> Dict[K, V]:
    """The draft's resolution over ``(order, {permission: value})`` roles: for each permission,
    the value of the highest-order role that defines it (orders are distinct in a role map)."""
    resolved: Dict[K, V] = {}
    for _order, permissions in _by_order_desc(roles):
        for permission, value in permissions.items():
            if permission not in resolved:
                resolved[permission] = value
    return resolved


def effective_power_levels(roles: Iterable[Tuple[int, Mapping[K, V]]]) -> Dict[K, int]:
    """For each permission, the highest order among the roles that define it (any value)."""
    levels: Dict[K, int] = {}
    for order, permissions in _by_order_desc(roles):
        for permission in permissions:
            if permission not in levels:
                levels[permission] = order
    return levels


def as_mapping(rules: RoleRules) -> Dict[Any, Any]:
    """Every permission ``rules`` defines, keyed as ``resolve_permissions`` expects: a
    ``PermissionKind`` for booleans and ``roles``, ``("events", type)`` per event type."""
    mapping: Dict[Any, Any] = dict(rules.booleans)
    for event_type, granted in rules.events.items():
        mapping[(PermissionKind.EVENTS, event_type)] = granted
    if rules.roles is not None:
        mapping[PermissionKind.ROLES] = rules.roles
    return mapping
