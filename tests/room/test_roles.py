"""The creator phase, role-change rules and role-map validity."""

from __future__ import annotations

import pytest

import mimi_signaling as ms
from mimi_signaling.content import (
    M_ROOM_ENCRYPTED,
    M_ROOM_NAME,
    M_ROOM_ROLE,
    M_ROOM_ROLE_MAP,
    Participation,
    text_content,
)
from mimi_signaling.room.policy.m0.roles import RoleMapInfo, changed_roles, in_creator_phase

from roomkit import role_content, role_map_content

ANA = "@ana:hub.test"
BEN = "@ben:follower.test"
CY = "@cy:other.test"
DEE = "@dee:other.test"


def _vec(data: bytes) -> bytes:
    return ms.encode_varint(len(data)) + data


def _raw_role_map(configs) -> bytes:
    body = b"".join(
        _vec(role_id.encode()) + _vec(b"".join(_vec(u.encode()) for u in users)) + order.to_bytes(4, "big")
        for role_id, users, order in configs
    )
    return _vec(body)


# --- creator phase --------------------------------------------------------------------------


def test_creator_holds_every_permission_before_the_role_map(room) -> None:
    assert in_creator_phase(room.state)
    room.join(BEN)
    room.send(M_ROOM_NAME, "", ANA, text_content(b"A room"))
    room.send("org.example.pin", "", ANA, b"pinned")  # a custom state type
    room.user(ANA, CY, Participation.INVITE)
    room.user(ANA, CY, Participation.LEAVE)  # kick (revoke)
    room.user(ANA, BEN, Participation.BAN)
    room.user(ANA, BEN, Participation.LEAVE)  # unban
    room.role("anything", invite=True)


def test_other_joined_users_may_send_non_state_events_only(room) -> None:
    room.join(BEN)
    room.message(BEN)
    room.send("org.example.reaction", None, BEN, b"+1")  # custom non-state type
    room.reject(M_ROOM_NAME, "", BEN, text_content(b"mine"), "only the creator may send state events")
    room.reject("org.example.pin", "", BEN, b"x", "only the creator may send state events")
    room.reject(M_ROOM_ROLE, "r", BEN, role_content(invite=True), "only the creator")
    room.reject(M_ROOM_ROLE_MAP, "", BEN, role_map_content([("r", [BEN], 1)]), "only the creator")
    room.reject_user(BEN, CY, Participation.INVITE, "m.0 invite: @ben:follower.test lacks the invite permission")
    room.reject_user(BEN, ANA, Participation.LEAVE, "lacks the kick permission")
    room.reject_user(BEN, ANA, Participation.BAN, "lacks the ban permission")
    room.user(BEN, BEN, Participation.LEAVE)  # own participation is always the participation rules' call


def test_non_joined_users_cannot_send(room) -> None:
    room.user(ANA, BEN, Participation.INVITE)
    room.reject(M_ROOM_ENCRYPTED, None, BEN, b"x", "m.0 send m.room.encrypted: sender @ben:follower.test is not joined \\(invite\\)")
    room.reject(M_ROOM_ENCRYPTED, None, CY, b"x", "is not joined \\(no participation\\)")
    room.user(ANA, ANA, Participation.LEAVE)
    room.reject(M_ROOM_NAME, "", ANA, text_content(b"x"), "sender @ana:hub.test is not joined \\(leave\\)")


def test_role_map_ends_the_creator_phase(room) -> None:
    room.join(BEN)
    room.role("chat", events=[(M_ROOM_ENCRYPTED, True)])
    room.role_map([("chat", [BEN], 1)])  # the creator gives herself nothing
    assert not in_creator_phase(room.state)
    room.message(BEN)
    room.reject(M_ROOM_ENCRYPTED, None, ANA, b"x", "@ana:hub.test lacks the events permission for m.room.encrypted")
    room.reject(M_ROOM_NAME, "", ANA, text_content(b"x"), "lacks the events permission for m.room.name")
    room.reject_user(ANA, BEN, Participation.LEAVE, "lacks the kick permission")
    room.user(ANA, ANA, Participation.LEAVE)


def test_user_without_role_cannot_send_after_role_map(room) -> None:
    room.join(BEN)
    room.role("admin", events=[(M_ROOM_ENCRYPTED, True)])
    room.role_map([("admin", [ANA], 10)])
    room.message(ANA)
    room.reject(M_ROOM_ENCRYPTED, None, BEN, b"x", "lacks the events permission for m.room.encrypted")


# --- role changes ---------------------------------------------------------------------------


@pytest.fixture
def roled(room):
    for user in (BEN, CY, DEE):
        room.join(user)
    room.role(
        "owner",
        events=[(M_ROOM_ROLE, True), (M_ROOM_ROLE_MAP, True), (M_ROOM_ENCRYPTED, True)],
        roles=["mod", "member"],
    )
    room.role("mod", events=[(M_ROOM_ROLE_MAP, True)], roles=["member"])
    room.role("member", events=[(M_ROOM_ENCRYPTED, True)])
    room.role_map([("owner", [ANA], 100), ("mod", [BEN], 50), ("member", [CY], 1)])
    return room


def test_role_event_needs_role_in_roles_list(roled) -> None:
    roled.role("mod", events=[(M_ROOM_ROLE_MAP, True)], roles=["member"], invite=True)
    roled.role("member", events=[(M_ROOM_ENCRYPTED, False)])
    roled.reject(M_ROOM_ROLE, "owner", ANA, role_content(invite=True), "m.0 m.room.role: role 'owner' is not in @ana:hub.test's roles permission")
    roled.reject(M_ROOM_ROLE, "fresh", ANA, role_content(invite=True), "role 'fresh' is not in")


def test_role_event_needs_events_permission(roled) -> None:
    roled.reject(M_ROOM_ROLE, "member", BEN, role_content(invite=True), "@ben:follower.test lacks the events permission for m.room.role")


def test_role_map_changes_need_each_role_in_roles_list(roled) -> None:
    base = [("owner", [ANA], 100), ("mod", [BEN], 50), ("member", [CY], 1)]
    # BEN may add DEE to member (member is in his list)...
    roled.role_map([("owner", [ANA], 100), ("mod", [BEN], 50), ("member", [CY, DEE], 1)], sender=BEN)
    roled.message(DEE)
    # ... but not himself to owner, nor change mod's order, nor add or remove other roles.
    roled.reject(M_ROOM_ROLE_MAP, "", BEN, role_map_content([("owner", [ANA, BEN], 100), ("mod", [BEN], 50), ("member", [CY, DEE], 1)]), "m.0 m.room.role_map: role 'owner' is not in @ben:follower.test's roles permission")
    roled.reject(M_ROOM_ROLE_MAP, "", BEN, role_map_content([("owner", [ANA], 100), ("mod", [BEN], 60), ("member", [CY, DEE], 1)]), "role 'mod' is not in")
    roled.reject(M_ROOM_ROLE_MAP, "", BEN, role_map_content(base + [("extra", [BEN], 7)]), "role 'extra' is not in")
    roled.reject(M_ROOM_ROLE_MAP, "", BEN, role_map_content([("mod", [BEN], 50), ("member", [CY, DEE], 1)]), "role 'owner' is not in")
    # Removing member (in his list) is fine.
    roled.role_map([("owner", [ANA], 100), ("mod", [BEN], 50)], sender=BEN)
    roled.reject(M_ROOM_ENCRYPTED, None, CY, b"x", "lacks the events permission")


def test_role_map_reordering_is_not_a_change(roled) -> None:
    # Another list order and another order of user IDs: no role's config changed.
    roled.role_map([("member", [CY], 1), ("mod", [BEN], 50), ("owner", [ANA], 100)], sender=BEN)
    roled.role_map([("member", [CY, DEE], 1), ("mod", [BEN], 50), ("owner", [ANA], 100)], sender=BEN)
    roled.role_map([("member", [DEE, CY], 1), ("mod", [BEN], 50), ("owner", [ANA], 100)], sender=BEN)


def test_role_map_needs_events_permission(roled) -> None:
    roled.reject(M_ROOM_ROLE_MAP, "", CY, role_map_content([("owner", [ANA], 100), ("mod", [BEN], 50), ("member", [CY, DEE], 1)]), "@cy:other.test lacks the events permission for m.room.role_map")


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
    room.reject(M_ROOM_ROLE_MAP, "", ANA, _raw_role_map(configs), match, exc=ms.MalformedError)


def test_invalid_roles_are_malformed(room) -> None:
    duplicate_tag = _vec(b"\x01\x01" + b"\x01\x00")
    bad_granted = _vec(b"\x01\x02")
    bad_tag = _vec(b"\x09\x01")
    bad_role_ref = _vec(b"\x06" + _vec(_vec(b"no spaces")))
    for content in (duplicate_tag, bad_granted, bad_tag, bad_role_ref):
        room.reject(M_ROOM_ROLE, "r", ANA, content, exc=ms.MalformedError)
    room.reject(M_ROOM_ROLE, "bad id!", ANA, role_content(invite=True), "valid role ID", exc=ms.MalformedError)
    room.send(M_ROOM_ROLE, "r", ANA, _vec(b"\x01\x01"))  # the well-formed control
