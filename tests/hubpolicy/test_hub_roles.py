"""Roles through ``Hub.accept``: the creator phase, role-map validity, and the role-change rule
of PROFILE.md section 6 (an ``m.room.role`` for R, or a role map that adds, removes or changes
R, needs the ``events`` permission for the type and R in the sender's resolved ``roles``)."""

from __future__ import annotations

import pytest

import mimi_signaling as m
from hubpolicykit import (
    ANA,
    BAN,
    BOB,
    CAT,
    DAN,
    EVE,
    FAY,
    INVITE,
    JOIN,
    LEAVE,
    HubRoom,
    raw_role_map_content,
    role_content,
    role_map_content,
)
from mimi_signaling.content import (
    M_ROOM_CREATE,
    M_ROOM_ENCRYPTED,
    M_ROOM_HISTORY_VISIBILITY,
    M_ROOM_JOIN_RULES,
    M_ROOM_NAME,
    M_ROOM_ROLE,
    M_ROOM_ROLE_MAP,
    M_ROOM_TOPIC,
    JoinRule,
    Visibility,
    create_content,
    history_visibility_content,
    join_rules_content,
    text_content,
)

# --- the creator phase ----------------------------------------------------------------------


def test_creator_can_do_everything_before_a_role_map(room: HubRoom) -> None:
    room.add(BOB)
    room.add(CAT)
    room.name(ANA)
    room.submit(ANA, M_ROOM_TOPIC, "", text_content(b"topic"))
    room.join_rule(JoinRule.KNOCK)
    room.visibility(Visibility.JOINED)
    room.submit(ANA, "org.example.custom_state", "k", b"opaque")
    room.role("anything", ban=True)
    room.message(ANA)
    room.user(ANA, EVE, INVITE)
    room.user(ANA, EVE, LEAVE)
    room.user(ANA, CAT, BAN)


def test_others_only_send_non_state_events_while_joined(room: HubRoom) -> None:
    room.add(BOB)
    room.add(CAT)
    room.message(BOB)
    room.message(CAT)
    room.submit(CAT, "org.example.chat", None, b"custom non-state")
    for type_, key, content in (
        (M_ROOM_NAME, "", text_content(b"cat's room")),
        (M_ROOM_JOIN_RULES, "", join_rules_content(JoinRule.PUBLIC)),
        (M_ROOM_HISTORY_VISIBILITY, "", history_visibility_content(Visibility.WORLD)),
        (M_ROOM_ROLE, "mod", role_content(kick=True)),
        (M_ROOM_ROLE_MAP, "", role_map_content([("mod", [CAT], 1)])),
        ("org.example.custom_state", "", b"x"),
    ):
        room.refuse(CAT, type_, key, content, rf"m\.0 send {type_}: before the room has an m\.room\.role_map only the creator may send state events")
    # not joined: invited, or never in the room
    room.user(ANA, EVE, INVITE)
    room.refuse(EVE, M_ROOM_ENCRYPTED, None, b"hi", r"m\.0 send m\.room\.encrypted: sender @eve:f2\.test is not joined \(invite\)")
    room.refuse(FAY, M_ROOM_ENCRYPTED, None, b"hi", r"m\.0 send m\.room\.encrypted: sender @fay:f2\.test is not joined \(no participation\)")


def test_the_first_role_map_ends_the_creator_phase(room: HubRoom) -> None:
    room.add(CAT)
    room.role_map([])  # even an empty map
    room.refuse(ANA, M_ROOM_NAME, "", text_content(b"n"), r"m\.0 send m\.room\.name: @ana:hub\.test lacks the events permission for m\.room\.name")
    room.refuse(ANA, M_ROOM_ENCRYPTED, None, b"hi", r"m\.0 send m\.room\.encrypted: @ana:hub\.test lacks the events permission")
    room.refuse(CAT, M_ROOM_ENCRYPTED, None, b"hi", r"m\.0 send m\.room\.encrypted: @cat:f1\.test lacks the events permission")
    room.refuse_user(ANA, EVE, INVITE, r"m\.0 invite: @ana:hub\.test lacks the invite permission")
    # users may still send their own m.room.user events as the participation rules allow
    room.user(CAT, CAT, LEAVE)
    room.refuse_user(CAT, CAT, JOIN, r"m\.0 join: join rule is invite")


def test_a_creator_who_keeps_a_role_keeps_only_what_it_grants(room: HubRoom) -> None:
    room.role("admin", events=[(M_ROOM_NAME, True), (M_ROOM_ROLE, True)], roles=["admin"])
    room.role_map([("admin", [ANA], 1)])
    room.name(ANA)
    room.role("admin", events=[(M_ROOM_NAME, True), (M_ROOM_ROLE, True), (M_ROOM_ENCRYPTED, True)], roles=["admin"])
    room.message(ANA)
    room.refuse(ANA, M_ROOM_TOPIC, "", text_content(b"t"), r"lacks the events permission for m\.room\.topic")
    room.refuse(ANA, M_ROOM_ROLE_MAP, "", role_map_content([("admin", [ANA], 2)]), r"lacks the events permission for m\.room\.role_map")


def test_a_second_create_event_is_refused(room: HubRoom) -> None:
    room.refuse(ANA, M_ROOM_CREATE, "", create_content("m.0", "org.example.plaintext"), r"m\.room\.create", exc=m.MimiError)


# --- role-map validity ----------------------------------------------------------------------


def test_duplicate_role_ids_are_rejected(room: HubRoom) -> None:
    content = raw_role_map_content([("mod", [CAT], 1), ("mod", [DAN], 2)])
    room.refuse(ANA, M_ROOM_ROLE_MAP, "", content, r"role_map.*\"?mod\"? twice", exc=m.MalformedError)
    assert room.state.role_map() is None  # still the creator phase
    room.name(ANA)


def test_duplicate_orders_are_rejected(room: HubRoom) -> None:
    content = raw_role_map_content([("mod", [CAT], 7), ("admin", [ANA], 7)])
    room.refuse(ANA, M_ROOM_ROLE_MAP, "", content, r"role_map.*order 7 twice", exc=m.MalformedError)
    room.role_map([("mod", [CAT], 7), ("admin", [ANA], 8)])  # distinct: fine


def test_invalid_role_map_rejected_after_the_phase_too(room: HubRoom) -> None:
    room.role("admin", events=[(M_ROOM_ROLE_MAP, True)], roles=["admin", "mod"])
    room.role_map([("admin", [ANA], 10)])
    room.refuse(ANA, M_ROOM_ROLE_MAP, "", raw_role_map_content([("admin", [ANA], 10), ("mod", [], 10)]), r"order 10 twice", exc=m.MalformedError)
    room.refuse(ANA, M_ROOM_ROLE_MAP, "", raw_role_map_content([("admin", [ANA], 10), ("admin", [], 3)]), r"twice", exc=m.MalformedError)


# --- role changes ---------------------------------------------------------------------------

RP = [(M_ROOM_ROLE, True), (M_ROOM_ROLE_MAP, True)]
BASE_MAP = [
    ("admin", [ANA], 100),
    ("mod", [BOB], 50),
    ("nolist", [DAN], 20),
    ("noevents", [EVE], 15),
    ("helper", [CAT], 10),
    ("lowlist", [BOB], 5),
]


@pytest.fixture
def roleroom(room: HubRoom) -> HubRoom:
    """admin (ana) may affect every role but itself; mod (bob) may affect helper; nolist (dan)
    may send role events but lists no role; noevents (eve) lists helper but may not send role
    events; lowlist (bob, order 5) lists nolist, below mod's list."""
    for user in (BOB, CAT, DAN, EVE):
        room.add(user)
    room.role("admin", events=RP, roles=["mod", "nolist", "noevents", "helper", "lowlist", "extra", "muzzle"])
    room.role("mod", events=RP, roles=["helper"])
    room.role("nolist", events=RP)
    room.role("noevents", roles=["helper"])
    room.role("helper", invite=True)
    room.role("lowlist", roles=["nolist"])
    room.role_map(BASE_MAP)
    return room


def _with(*changes, drop=()):
    """BASE_MAP with configs replaced/added by role ID and some dropped."""
    configs = {r: (r, users, order) for r, users, order in BASE_MAP}
    for config in changes:
        configs[config[0]] = config
    return role_map_content([c for r, c in configs.items() if r not in drop])


def test_role_event_for_a_role_in_the_roles_list(roleroom: HubRoom) -> None:
    roleroom.role("helper", sender=BOB, invite=True, kick=True)
    roleroom.role("mod", sender=ANA, events=RP, roles=["helper", "nolist"])
    roleroom.role("nolist", sender=BOB, events=RP)  # bob's list now names nolist


def test_role_event_refused_outside_the_roles_list(roleroom: HubRoom) -> None:
    roleroom.refuse(BOB, M_ROOM_ROLE, "mod", role_content(ban=True), r"m\.0 m\.room\.role: role 'mod' is not in @bob:hub\.test's roles permission")
    roleroom.refuse(BOB, M_ROOM_ROLE, "admin", role_content(ban=True), r"m\.0 m\.room\.role: role 'admin' is not in")
    roleroom.refuse(ANA, M_ROOM_ROLE, "admin", role_content(ban=True), r"m\.0 m\.room\.role: role 'admin' is not in @ana:hub\.test's")
    roleroom.refuse(BOB, M_ROOM_ROLE, "brand_new", role_content(), r"role 'brand_new' is not in")


def test_role_event_refused_without_a_roles_list(roleroom: HubRoom) -> None:
    roleroom.refuse(DAN, M_ROOM_ROLE, "helper", role_content(), r"m\.0 m\.room\.role: role 'helper' is not in @dan:f1\.test's roles permission")


def test_role_event_refused_without_the_events_permission(roleroom: HubRoom) -> None:
    roleroom.refuse(EVE, M_ROOM_ROLE, "helper", role_content(), r"m\.0 send m\.room\.role: @eve:f2\.test lacks the events permission for m\.room\.role")
    roleroom.refuse(EVE, M_ROOM_ROLE_MAP, "", _with(("helper", [CAT, DAN], 10)), r"m\.0 send m\.room\.role_map: @eve:f2\.test lacks the events permission")


def test_roles_list_comes_from_the_highest_order_role_defining_it(roleroom: HubRoom) -> None:
    # bob: mod (50, roles [helper]) and lowlist (5, roles [nolist]): only [helper] counts.
    roleroom.refuse(BOB, M_ROOM_ROLE, "nolist", role_content(), r"role 'nolist' is not in @bob:hub\.test's")
    roleroom.refuse(BOB, M_ROOM_ROLE_MAP, "", _with(("nolist", [DAN, FAY], 20)), r"m\.0 m\.room\.role_map: role 'nolist' is not in")


def test_events_permission_denied_by_a_higher_role(roleroom: HubRoom) -> None:
    roleroom.role("muzzle", events=[(M_ROOM_ROLE, False)])
    roleroom.role_map(_map_list(("muzzle", [BOB], 60)))
    roleroom.refuse(BOB, M_ROOM_ROLE, "helper", role_content(), r"m\.0 send m\.room\.role: @bob:hub\.test lacks the events permission for m\.room\.role")
    roleroom.submit(BOB, M_ROOM_ROLE_MAP, "", role_map_content(_map_list(("muzzle", [BOB], 60), ("helper", [CAT, DAN], 10))))


def _map_list(*changes):
    configs = {r: (r, users, order) for r, users, order in BASE_MAP}
    for config in changes:
        configs[config[0]] = config
    return list(configs.values())


def test_role_map_changes_inside_the_roles_list(roleroom: HubRoom) -> None:
    roleroom.submit(BOB, M_ROOM_ROLE_MAP, "", _with(("helper", [CAT, DAN], 10)))  # users changed
    roleroom.submit(BOB, M_ROOM_ROLE_MAP, "", _with(("helper", [CAT, DAN], 11)))  # order changed
    roleroom.submit(BOB, M_ROOM_ROLE_MAP, "", _with(drop=("helper",)))  # removed
    roleroom.submit(BOB, M_ROOM_ROLE_MAP, "", _with(("helper", [FAY], 12)))  # added back
    assert roleroom.state.role_map() is not None


def test_role_map_changes_outside_the_roles_list(roleroom: HubRoom) -> None:
    roleroom.refuse(BOB, M_ROOM_ROLE_MAP, "", _with(("extra", [CAT], 70)), r"m\.0 m\.room\.role_map: role 'extra' is not in @bob:hub\.test's roles permission")
    roleroom.refuse(BOB, M_ROOM_ROLE_MAP, "", _with(drop=("nolist",)), r"role 'nolist' is not in")
    roleroom.refuse(BOB, M_ROOM_ROLE_MAP, "", _with(("mod", [BOB, CAT], 50)), r"role 'mod' is not in")
    roleroom.refuse(BOB, M_ROOM_ROLE_MAP, "", _with(("mod", [BOB], 51)), r"role 'mod' is not in")
    # one allowed change plus one forbidden one: refused as a whole
    roleroom.refuse(BOB, M_ROOM_ROLE_MAP, "", _with(("helper", [CAT, DAN], 10), ("admin", [ANA, BOB], 100)), r"role 'admin' is not in")
    roleroom.refuse(DAN, M_ROOM_ROLE_MAP, "", _with(("helper", [CAT, DAN], 10)), r"role 'helper' is not in @dan:f1\.test's")


def test_role_map_reordering_changes_no_role(roleroom: HubRoom) -> None:
    # dan lists no role at all, yet may resend the same configs in another order (decision:
    # only the set of users and the order of a role count as its config).
    reordered = [(r, list(reversed(users)), order) for r, users, order in reversed(BASE_MAP)]
    roleroom.submit(DAN, M_ROOM_ROLE_MAP, "", role_map_content(reordered))
    roleroom.submit(DAN, M_ROOM_ROLE_MAP, "", role_map_content(BASE_MAP))


def test_admin_adds_a_role_and_its_holder_gains_it(roleroom: HubRoom) -> None:
    roleroom.role("extra", sender=ANA, invite=True)
    roleroom.refuse_user(DAN, FAY, INVITE, r"m\.0 invite: @dan:f1\.test lacks the invite permission")
    roleroom.submit(ANA, M_ROOM_ROLE_MAP, "", _with(("extra", [DAN], 30)))
    roleroom.user(DAN, FAY, INVITE)
    roleroom.user(FAY, FAY, JOIN)
