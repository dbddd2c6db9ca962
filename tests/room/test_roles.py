"""The creator phase, role-change rules and role-map validity."""

from __future__ import annotations

import pytest

import mimi_signaling as ms
from mimi_signaling.content import (
    M_ROOM_ENCRYPTED,
    M_ROOM_ROLE,
    M_ROOM_ROLE_MAP,
)
from mimi_signaling.room.policy.m0.roles import RoleMapInfo, changed_roles

from support.m0_cases import ROLES, Case, ids, raw_role_map_content, run_case, wire_vec
from support.roomkit import RoomBuilder, RoomDriver, role_content

ANA = "@ana:hub.test"
BEN = "@ben:follower.test"
CY = "@cy:other.test"
DEE = "@dee:other.test"


@pytest.mark.parametrize("case", ROLES, ids=ids(ROLES))
def test_roles(case: Case) -> None:
    """Every case of the roles table (tests/support/m0_cases.py: the creator phase, sending permission,
    role-map validity and the role-change rule; tests/hubpolicy/test_hub_roles.py plays a
    sample through the hub)."""
    run_case(RoomDriver(RoomBuilder()), case)


def test_changed_roles() -> None:
    old = RoleMapInfo.from_content(ms.RoleMapContent([ms.RoleConfig("a", [ANA], 1), ms.RoleConfig("b", [BEN], 2), ms.RoleConfig("c", [], 3)]))
    new = RoleMapInfo.from_content(ms.RoleMapContent([ms.RoleConfig("b", [BEN], 5), ms.RoleConfig("a", [ANA], 1), ms.RoleConfig("d", [], 3)]))
    assert changed_roles(old, new) == {"b", "c", "d"}
    assert changed_roles(None, new) == {"a", "b", "d"}
    assert changed_roles(new, new) == set()


def test_auth_selection_lists_roles_in_role_map_order(room) -> None:
    room.join(BEN)
    first = room.role("zeta", events=[(M_ROOM_ENCRYPTED, True)])
    second = room.role("alpha", invite=True)
    room.role("unused", invite=True)
    role_map = room.role_map([("zeta", [ANA, BEN], 1), ("ghost", [BEN], 3), ("alpha", [BEN], 2)])
    message = room.message(BEN)
    ben_user = room.state.get_event_id("m.room.user", BEN)
    # "ghost" has no m.room.role event: it is skipped.
    assert message.auth_events == [room.events[0].event_id, ben_user, role_map.event_id, first.event_id, second.event_id]


# --- role-map and role validity (shape) ----------------------------------------------------


@pytest.mark.parametrize(
    "configs, match",
    [
        ([("a", [ANA], 1), ("a", [BEN], 2)], "does not decode"),  # duplicate role IDs (core)
        ([("a", [ANA], 1), ("b", [BEN], 1)], "does not decode"),  # duplicate orders (core)
        # identifiers inside content (PROFILE.md section 6), also the core's decoder
        ([("a", ["not-a-user"], 1)], 'does not decode: m.room.role_map role "a": user ID "not-a-user"'),
        ([("a", [ANA, ANA], 1)], 'does not decode: m.room.role_map role "a" lists @ana:hub.test twice'),
        ([("bad role!", [ANA], 1)], 'does not decode: m.room.role_map: role ID "bad role!"'),
    ],
)
def test_invalid_role_maps_are_malformed(room, configs, match) -> None:
    room.reject(M_ROOM_ROLE_MAP, "", ANA, raw_role_map_content(configs), match, exc=ms.MalformedError)


def test_invalid_roles_are_malformed(room) -> None:
    duplicate_tag = wire_vec(b"\x01\x01" + b"\x01\x00")
    bad_granted = wire_vec(b"\x01\x02")
    bad_tag = wire_vec(b"\x09\x01")
    bad_role_ref = wire_vec(b"\x06" + wire_vec(wire_vec(b"no spaces")))
    for content in (duplicate_tag, bad_granted, bad_tag, bad_role_ref):
        room.reject(M_ROOM_ROLE, "r", ANA, content, exc=ms.MalformedError)
    room.reject(M_ROOM_ROLE, "bad id!", ANA, role_content(invite=True), "valid role ID", exc=ms.MalformedError)
    room.send(M_ROOM_ROLE, "r", ANA, wire_vec(b"\x01\x01"))  # the well-formed control
