"""Where the policy draft lists the conditions of something, every implementation applies
exactly those (PROFILE.md section 6: "An implementation MUST NOT add conditions where the draft
lists them: a follower that refuses what a conformant hub accepted stops following the room").

Each scenario runs through the three paths that must agree: ``Hub.accept`` (a refusal stores
nothing), the followers (which re-check every delivered event and must end with the hub's
state) and ``mimi verify`` of the room file exported from the hub (a separate process).
Malformed content is also forged as a hub-signed event, so the follower and ``mimi verify``
meet it themselves, and must give the hub's ``MalformedError``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import List, Tuple

import pytest

import mimi_signaling as m
from support.hubpolicykit import (
    ANA,
    BAN,
    BOB,
    CAT,
    DAN,
    EVE,
    F1,
    FAY,
    HUB,
    LEAVE,
    HubRoom,
    raw_role_content,
    raw_role_map_content,
    role_content,
    role_map_content,
)
from mimi_signaling.content import M_ROOM_ROLE, M_ROOM_ROLE_MAP
from mimi_signaling.roomfile import export_room
from support.roomfile_helpers import run_mimi

# --- the three paths ------------------------------------------------------------------------


def followers_agree(room: HubRoom) -> None:
    """Followers with a joined user follow the room (call it after users join: a follower
    refuses deliveries into a room it does not follow); every queued event is delivered (each
    one re-checked: signatures, link, shape, policy); then every follower that follows the room
    is caught up to the hub's last event and holds exactly the hub's state."""
    net = room.net
    latest = room.hub.get_event(room.room_id, room.state.last_event_id)
    for name, follower in net.followers.items():
        if not follower.follows(room.room_id) and name in room.state.joined_servers():
            follower.sync(room.room_id, latest)
    net.deliver_all()
    following = [name for name, f in net.followers.items() if f.follows(room.room_id)]
    assert following, "no follower follows the room: the scenario checks nothing"
    for name in following:
        follower = net.followers[name]
        # a follower whose users were all banned gets no more deliveries: it catches up
        follower.sync(room.room_id, room.hub.get_event(room.room_id, room.state.last_event_id, for_server=name))
        state = follower.state(room.room_id)
        assert state.last_event_id == room.state.last_event_id, f"{name} lags behind the hub"
        assert state.state_ids() == room.state.state_ids(), f"{name}'s state differs from the hub's"
        assert state.users() == room.state.users()


def export(room: HubRoom, path: Path) -> Path:
    export_room(room.store, room.room_id, path, room.net.keystores[HUB])
    return path


def mimi_verify(path: Path) -> dict:
    """``mimi verify --json`` in a separate process: its report."""
    result = run_mimi("verify", str(path), "--json")
    report = json.loads(result.stdout)
    assert result.returncode == (0 if report["ok"] else 1), result.stdout + result.stderr
    return report


def verified_everywhere(room: HubRoom, tmp_path: Path) -> None:
    followers_agree(room)
    report = mimi_verify(export(room, tmp_path / "room.mimiroom"))
    assert report["ok"], report["failure"]
    assert report["events_checked"] == room.store.count(room.room_id)


# --- bans -----------------------------------------------------------------------------------


@pytest.fixture
def banroom(room: HubRoom) -> HubRoom:
    """ana admin (100), cat (f1) mod (50) with ban, eve (f2) "low" (5) with ban only, bob and
    dan (hub, f1) members without ban."""
    for user in (BOB, CAT, DAN, EVE):
        room.add(user)
    room.role("admin", invite=True, kick=True, ban=True, events=[(M_ROOM_ROLE, True), (M_ROOM_ROLE_MAP, True)], roles=["mod", "low"])
    room.role("mod", invite=True, kick=True, ban=True)
    room.role("low", ban=True)
    room.role("member", events=[("m.room.encrypted", True)])
    room.role_map([("admin", [ANA], 100), ("mod", [CAT], 50), ("low", [EVE], 5), ("member", [BOB, DAN], 1)])
    followers_agree(room)  # f1 and f2 follow from here on, as after their users' joins
    return room


def test_ban_conditions_are_the_drafts_lower_level_bans_higher(banroom: HubRoom, tmp_path: Path) -> None:
    """Policy draft, "Ban Conditions": "The sender for a ban MUST: Already be in the joined
    state. Have permission to ban users. Otherwise, reject."  No power check: eve (ban level 5)
    bans cat (50) and the admin ana (100); hub, followers and ``mimi verify`` accept it."""
    banroom.user(EVE, CAT, BAN)
    banroom.user(EVE, ANA, BAN)
    assert banroom.participation(CAT) == BAN and banroom.participation(ANA) == BAN
    verified_everywhere(banroom, tmp_path)


def test_ban_conditions_are_the_drafts_self_ban(banroom: HubRoom, tmp_path: Path) -> None:
    """Policy draft, "Ban Conditions" names no condition on the target, so a joined user with
    the ban permission may ban themself (PROFILE.md section 6: "a ban may target any user,
    whatever their level or participation")."""
    banroom.user(EVE, EVE, BAN)
    banroom.user(CAT, CAT, BAN)
    assert banroom.participation(EVE) == BAN
    # now not joined: the draft's first condition refuses the next ban, storing nothing
    banroom.refuse_user(EVE, BOB, BAN, r"m\.0 ban: sender @eve:f2\.test is not joined \(ban\)")
    verified_everywhere(banroom, tmp_path)


def test_ban_conditions_are_the_drafts_any_participation(banroom: HubRoom, tmp_path: Path) -> None:
    """"a ban may target any user, whatever their level or participation" (PROFILE.md
    section 6): a left user, a never-seen user, an already banned user."""
    banroom.user(DAN, DAN, LEAVE)
    banroom.user(EVE, DAN, BAN)  # left
    banroom.user(EVE, FAY, BAN)  # never in the room
    banroom.user(CAT, FAY, BAN)  # already banned
    verified_everywhere(banroom, tmp_path)


def test_ban_conditions_still_need_the_permission_and_the_join(banroom: HubRoom) -> None:
    """The draft's two conditions stay: without the ban permission, or not joined, the ban is
    refused and nothing is stored (``HubRoom.refuse`` compares store, state and queues)."""
    banroom.refuse_user(BOB, EVE, BAN, r"m\.0 ban: @bob:hub\.test lacks the ban permission")
    banroom.refuse_user(DAN, DAN, BAN, r"m\.0 ban: @dan:f1\.test lacks the ban permission")
    banroom.refuse_user(FAY, EVE, BAN, r"m\.0 ban: sender @fay:f2\.test is not joined")


def test_unban_keeps_the_drafts_power_check(banroom: HubRoom) -> None:
    """Policy draft, "Kicks": "If the target user is in the banned state, the sender requires
    permission to ban users instead ... This additionally extends to the effective power level
    check."  So an unban (unlike a ban) needs a higher ban level than the target's."""
    banroom.user(EVE, CAT, BAN)
    banroom.refuse_user(EVE, CAT, LEAVE, r"m\.0 unban: @eve:f2\.test's power level for ban \(5\) is not above @cat:f1\.test's \(50\)")
    banroom.user(ANA, CAT, LEAVE)


# --- role configs ---------------------------------------------------------------------------


@pytest.fixture
def maproom(room: HubRoom) -> HubRoom:
    """ana admin (100, may affect helper), dan (f1) "mapper" (20): may send role maps but lists
    no role, so he may only send maps that change no role's config; helper holds cat and eve."""
    for user in (BOB, CAT, DAN, EVE):
        room.add(user)
    room.role("admin", events=[(M_ROOM_ROLE, True), (M_ROOM_ROLE_MAP, True)], roles=["helper"])
    room.role("mapper", events=[(M_ROOM_ROLE_MAP, True)])
    room.role("helper", invite=True)
    room.role_map([("admin", [ANA], 100), ("mapper", [DAN], 20), ("helper", [CAT, EVE, BOB], 10)])
    followers_agree(room)
    return room


def test_role_config_is_order_and_set_of_users(maproom: HubRoom, tmp_path: Path) -> None:
    """PROFILE.md section 6: "The config of R changes when its order or its *set* of users
    changes; the order of the users inside one role changes nothing."  dan, with no role in
    his roles list, may resend the map with each role's users (and the roles) reordered, but
    not add, drop or re-order-level anyone."""
    maproom.submit(DAN, M_ROOM_ROLE_MAP, "", role_map_content([("helper", [EVE, BOB, CAT], 10), ("mapper", [DAN], 20), ("admin", [ANA], 100)]))
    maproom.submit(DAN, M_ROOM_ROLE_MAP, "", role_map_content([("admin", [ANA], 100), ("helper", [BOB, CAT, EVE], 10), ("mapper", [DAN], 20)]))
    for configs, role in (
        ([("admin", [ANA], 100), ("mapper", [DAN], 20), ("helper", [CAT, EVE], 10)], "helper"),  # a user dropped
        ([("admin", [ANA], 100), ("mapper", [DAN], 20), ("helper", [CAT, EVE, BOB, FAY], 10)], "helper"),  # added
        ([("admin", [ANA], 100), ("mapper", [DAN], 20), ("helper", [CAT, EVE, BOB], 11)], "helper"),  # order
        ([("admin", [ANA], 100), ("mapper", [DAN, BOB], 20), ("helper", [CAT, EVE, BOB], 10)], "mapper"),
    ):
        maproom.refuse(DAN, M_ROOM_ROLE_MAP, "", role_map_content(configs), rf"m\.0 m\.room\.role_map: role '{role}' is not in @dan:f1\.test's roles permission")
    maproom.submit(ANA, M_ROOM_ROLE_MAP, "", role_map_content([("admin", [ANA], 100), ("mapper", [DAN], 20), ("helper", [CAT, FAY], 12)]))
    verified_everywhere(maproom, tmp_path)


# --- identifiers inside content (PROFILE.md section 3) ---------------------------------------


MAP = [("admin", [ANA], 100)]
MALFORMED: List[Tuple[str, str, str, bytes, str]] = [
    # (case, type, state key, content, what the error names)
    ("user_twice_in_a_role", M_ROOM_ROLE_MAP, "", raw_role_map_content(MAP + [("mod", [CAT, DAN, CAT], 5)]), r"role \"mod\" lists @cat:f1\.test twice"),
    ("upper_case_user_id", M_ROOM_ROLE_MAP, "", raw_role_map_content(MAP + [("mod", ["@Cat:f1.test"], 5)]), r"user ID \"@Cat:f1\.test\""),
    ("user_id_without_server", M_ROOM_ROLE_MAP, "", raw_role_map_content(MAP + [("mod", ["@cat"], 5)]), r"has no \":server_name\""),
    ("role_id_with_a_space", M_ROOM_ROLE_MAP, "", raw_role_map_content(MAP + [("bad role", [CAT], 5)]), r"role ID \"bad role\""),
    ("event_type_empty_segment", M_ROOM_ROLE, "mod", raw_role_content(["org..chat"]), r"event type \"org\.\.chat\" must be namespaced"),
    ("event_type_leading_dot", M_ROOM_ROLE, "mod", raw_role_content([".org.chat"]), r"event type \"\.org\.chat\""),
    ("event_type_trailing_dot", M_ROOM_ROLE, "mod", raw_role_content(["org.chat."]), r"event type \"org\.chat\.\""),
    ("event_type_without_dot", M_ROOM_ROLE, "mod", raw_role_content(["chat"]), r"event type \"chat\""),
    ("role_id_in_roles_permission", M_ROOM_ROLE, "mod", raw_role_content([], ["bad/role"]), r"role ID \"bad/role\""),
]


@pytest.mark.parametrize("case,type_,state_key,content,reason", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_identifiers_inside_content_are_malformed_on_every_path(
    room: HubRoom, tmp_path: Path, case: str, type_: str, state_key: str, content: bytes, reason: str
) -> None:
    """PROFILE.md section 6: "Identifiers inside content follow section 3: the user IDs and
    role IDs of a role map, the event types and role IDs of a role's permissions; a role map
    that lists one user twice in one role is malformed"; section 3: event types have "no empty
    segment".  The hub refuses with ``MalformedError`` and stores nothing; the same content,
    forged into a hub-signed event, is refused by a follower and by ``mimi verify`` alike."""
    room.add(CAT)
    followers_agree(room)
    room.refuse(ANA, type_, state_key, content, reason, exc=m.MalformedError)

    # the hub's own key signs a fully-formed event around the limited one (ana is on the hub)
    limited = room.limited(ANA, type_, state_key, content)
    state = room.state
    auth = state.policy.select_auth_events(state, type_, state_key, ANA, content)
    forged = limited.to_event(auth_events=auth, prev_event=state.last_event_id, hub_key=room.net.keys[HUB])
    follower = room.net.followers[F1]
    count = follower.store.count(room.room_id)
    with pytest.raises(m.MalformedError, match=reason):
        follower.receive(forged, peer=HUB)
    assert follower.store.count(room.room_id) == count
    assert follower.state(room.room_id).last_event_id == state.last_event_id

    path = export(room, tmp_path / "forged.mimiroom")
    with open(path, "ab") as f:
        f.write(m.wire.encode_room_file_record(2, forged.encode()))
    report = mimi_verify(path)
    assert not report["ok"]
    failure = report["failure"]
    assert (failure["index"], failure["event_id"], failure["code_name"]) == (state.count, forged.event_id, "malformed")
    assert re.search(reason, failure["reason"]), failure


def test_one_user_in_two_roles_is_fine(room: HubRoom, tmp_path: Path) -> None:
    """The "twice" rule is per role: one user in two roles is the draft's normal case."""
    room.add(CAT)
    followers_agree(room)
    room.role("a", invite=True)
    room.role("b", kick=True)
    room.submit(ANA, M_ROOM_ROLE_MAP, "", raw_role_map_content([("admin", [ANA], 100), ("a", [CAT], 2), ("b", [CAT, ANA], 1)]))
    verified_everywhere(room, tmp_path)


def test_role_content_codecs_refuse_what_the_wire_refuses() -> None:
    """The content classes and the wire share one decoder in the core: encoding a role map
    that lists a user twice in one role fails the same way as decoding one."""
    with pytest.raises(m.MalformedError, match="lists @cat:f1.test twice"):
        role_map_content([("mod", [CAT, CAT], 1)])
    with pytest.raises(m.MalformedError, match="lists @cat:f1.test twice"):
        m.RoleMapContent.decode(raw_role_map_content([("mod", [CAT, CAT], 1)]))
    with pytest.raises(m.MalformedError, match="must be namespaced"):
        role_content(events=[("org..chat", True)])
    assert m.RoleMapContent.decode(role_map_content([("mod", [CAT, DAN], 1)])).roles[0].user_ids == [CAT, DAN]
