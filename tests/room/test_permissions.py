"""Permission resolution and effective power levels (policy draft "Calculating Permissions")."""

from __future__ import annotations

import mimi_signaling as ms
from mimi_signaling.content import Participation, PermissionKind
from mimi_signaling.room.policy.m0.permissions import (
    CREATOR_LEVEL,
    NO_LEVEL,
    UserPermissions,
    effective_power_level,
    user_permissions,
)
from mimi_signaling.room.policy.m0.roles import RoleRules
from support.permission_oracle import effective_power_levels, resolve_permissions

# The draft's worked example, verbatim.
ROLE_A = (1, {"A": True, "B": False})
ROLE_B = (2, {"A": False, "C": False})
ROLE_C = (3, {"B": True, "C": False})


def test_draft_worked_example_resolution() -> None:
    assert resolve_permissions([ROLE_A, ROLE_B, ROLE_C]) == {"A": False, "B": True, "C": False}


def test_draft_worked_example_effective_power_levels() -> None:
    assert effective_power_levels([ROLE_A, ROLE_B, ROLE_C]) == {"A": 2, "B": 3, "C": 3}


def test_worked_example_does_not_depend_on_listing_order() -> None:
    assert resolve_permissions([ROLE_C, ROLE_A, ROLE_B]) == {"A": False, "B": True, "C": False}
    assert effective_power_levels([ROLE_B, ROLE_C, ROLE_A]) == {"A": 2, "B": 3, "C": 3}


def test_worked_example_with_real_permissions() -> None:
    # A = invite, B = kick, C = ban, through real m.room.role contents.
    roles = [
        (1, RoleRules.from_content(ms.RoleContent([ms.Permission.boolean(1, True), ms.Permission.boolean(2, False)]))),
        (2, RoleRules.from_content(ms.RoleContent([ms.Permission.boolean(1, False), ms.Permission.boolean(3, False)]))),
        (3, RoleRules.from_content(ms.RoleContent([ms.Permission.boolean(2, True), ms.Permission.boolean(3, False)]))),
    ]
    perms = UserPermissions(roles)
    assert (perms.granted(PermissionKind.INVITE), perms.granted(PermissionKind.KICK), perms.granted(PermissionKind.BAN)) == (
        False,
        True,
        False,
    )
    assert (perms.level(PermissionKind.INVITE), perms.level(PermissionKind.KICK), perms.level(PermissionKind.BAN)) == (2, 3, 3)
    assert perms.level(PermissionKind.REDACT) == NO_LEVEL
    assert not perms.granted(PermissionKind.REDACT)


def test_events_permission_resolves_per_event_type() -> None:
    low = RoleRules.from_content(
        ms.RoleContent([ms.Permission.events([("m.room.name", True), ("m.room.topic", True)])])
    )
    high = RoleRules.from_content(ms.RoleContent([ms.Permission.events([("m.room.name", False)])]))
    perms = UserPermissions([(5, low), (9, high)])
    assert not perms.can_send("m.room.name")  # the higher role defines it: false
    assert perms.event_level("m.room.name") == 9
    assert perms.can_send("m.room.topic")  # only the lower role defines it
    assert perms.event_level("m.room.topic") == 5
    assert not perms.can_send("m.room.avatar")
    assert perms.event_level("m.room.avatar") == NO_LEVEL


def test_last_events_record_wins_inside_one_role() -> None:
    rules = RoleRules.from_content(
        ms.RoleContent([ms.Permission.events([("m.room.name", True), ("m.room.name", False), ("m.room.topic", False), ("m.room.topic", True)])])
    )
    assert rules.events == {"m.room.name": False, "m.room.topic": True}


def test_roles_list_comes_from_the_highest_role_defining_it() -> None:
    low = RoleRules.from_content(ms.RoleContent([ms.Permission.roles(["a", "b", "c"])]))
    mid = RoleRules.from_content(ms.RoleContent([ms.Permission.roles(["x"])]))
    top = RoleRules.from_content(ms.RoleContent([ms.Permission.boolean(1, True)]))
    perms = UserPermissions([(1, low), (2, mid), (3, top)])
    assert perms.roles_list() == ("x",)  # not merged with the lower role's list
    assert perms.level(PermissionKind.ROLES) == 2
    assert perms.may_affect_role("x") and not perms.may_affect_role("a")
    assert UserPermissions([]).roles_list() is None


def test_levels_in_a_room(room) -> None:
    room.join("@ben:follower.test")
    room.join("@cy:follower.test")
    room.role("mod", kick=True, events=[("m.room.encrypted", True)])
    room.role("admin", kick=False, ban=True)
    room.role_map([("admin", ["@ana:hub.test"], 50), ("mod", ["@ana:hub.test", "@ben:follower.test"], 10)])
    state = room.state
    assert effective_power_level(state, "@ana:hub.test", PermissionKind.KICK) == 50
    assert not user_permissions(state, "@ana:hub.test").granted(PermissionKind.KICK)  # admin says no
    assert effective_power_level(state, "@ben:follower.test", PermissionKind.KICK) == 10
    assert user_permissions(state, "@ben:follower.test").granted(PermissionKind.KICK)
    assert effective_power_level(state, "@cy:follower.test", PermissionKind.KICK) == NO_LEVEL
    assert effective_power_level(state, "@nobody:else.test", PermissionKind.BAN) == NO_LEVEL


def test_creator_level_during_creator_phase(room) -> None:
    room.join("@ben:follower.test")
    state = room.state
    assert effective_power_level(state, "@ana:hub.test", PermissionKind.BAN) == CREATOR_LEVEL
    assert CREATOR_LEVEL > 0xFFFFFFFF
    assert effective_power_level(state, "@ben:follower.test", PermissionKind.BAN) == NO_LEVEL
    assert room.state.participation("@ben:follower.test") == Participation.JOIN
