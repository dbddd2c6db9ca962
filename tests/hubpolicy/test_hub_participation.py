"""Every m.room.user transition of m.0, allowed and refused, through ``Hub.accept`` with users of
three servers.  A refusal must raise ``PolicyRejectedError`` naming the rule and store nothing
(``HubRoom.refuse`` compares the store, the state and the fan-out queues before and after)."""

from __future__ import annotations

import pytest

from hubpolicykit import ANA, BAN, BOB, CAT, DAN, EVE, FAY, INVITE, JOIN, KNOCK, LEAVE, HubRoom, role_map_content
from mimi_signaling.content import JoinRule


@pytest.fixture
def modroom(room: HubRoom) -> HubRoom:
    """After the creator phase: ana admin (100), bob (hub) and cat (f1) mods (50), dan (f1) and
    eve (f2) members (1) with no moderation permission; fay (f2) is not in the room."""
    for user in (BOB, CAT, DAN, EVE):
        room.add(user)
    room.role(
        "admin",
        invite=True,
        kick=True,
        ban=True,
        events=[("m.room.role", True), ("m.room.role_map", True)],
        roles=["admin", "mod", "member", "muted", "stuck", "kicker", "banlow"],
    )
    room.role("mod", invite=True, kick=True, ban=True)
    room.role("member", events=[("m.room.encrypted", True)])
    room.role_map([("admin", [ANA], 100), ("mod", [BOB, CAT], 50), ("member", [DAN, EVE], 1)])
    return room


# --- invite ---------------------------------------------------------------------------------


def test_invite_by_the_creator_in_the_creator_phase(room: HubRoom) -> None:
    room.user(ANA, CAT, INVITE)
    room.user(ANA, EVE, INVITE)
    room.user(ANA, CAT, INVITE)  # re-inviting an invited user is allowed (documented decision)


def test_invite_by_a_role_with_the_permission(modroom: HubRoom) -> None:
    modroom.user(CAT, FAY, INVITE)  # a follower's mod invites a user of the other follower


def test_invite_of_a_knocking_or_left_user(room: HubRoom) -> None:
    room.join_rule(JoinRule.KNOCK)
    room.user(CAT, CAT, KNOCK)
    room.user(ANA, CAT, INVITE)  # welcoming a knock
    room.user(CAT, CAT, JOIN)
    room.user(CAT, CAT, LEAVE)
    room.user(ANA, CAT, INVITE)


def test_invite_refused_for_a_banned_target(room: HubRoom) -> None:
    room.user(ANA, DAN, BAN)
    room.refuse_user(ANA, DAN, INVITE, r"m\.0 invite: target @dan:f1\.test is banned")


def test_invite_refused_for_a_joined_target(room: HubRoom) -> None:
    room.add(CAT)
    room.refuse_user(ANA, CAT, INVITE, r"m\.0 invite: target @cat:f1\.test is already joined")


def test_invite_refused_for_a_sender_who_is_not_joined(modroom: HubRoom) -> None:
    modroom.refuse_user(FAY, EVE, INVITE, r"m\.0 invite: sender @fay:f2\.test is not joined \(no participation\)")
    modroom.user(ANA, FAY, INVITE)
    modroom.refuse_user(FAY, "@gus:f2.test", INVITE, r"m\.0 invite: sender @fay:f2\.test is not joined \(invite\)")
    modroom.user(ANA, BOB, LEAVE)  # bob (a mod) kicked: his role stays, his membership does not
    modroom.refuse_user(BOB, "@gus:f2.test", INVITE, r"m\.0 invite: sender @bob:hub\.test is not joined \(leave\)")


def test_invite_refused_without_the_invite_permission(modroom: HubRoom) -> None:
    modroom.refuse_user(DAN, FAY, INVITE, r"m\.0 invite: @dan:f1\.test lacks the invite permission")


def test_invite_refused_for_a_joined_non_creator_in_the_creator_phase(room: HubRoom) -> None:
    room.add(BOB)
    room.refuse_user(BOB, CAT, INVITE, r"m\.0 invite: @bob:hub\.test lacks the invite permission")


def test_invite_permission_resolved_by_the_highest_order(modroom: HubRoom) -> None:
    # cat holds mod (50, invite true) and muted (60, invite false): the higher order decides.
    modroom.role("muted", invite=False)
    modroom.submit(ANA, "m.room.role_map", "", _map(("muted", [CAT], 60)))
    modroom.refuse_user(CAT, FAY, INVITE, r"m\.0 invite: @cat:f1\.test lacks the invite permission")
    modroom.user(BOB, FAY, INVITE)


def _map(*extra):
    """The fixture's role map plus ``extra`` configs."""
    base = [("admin", [ANA], 100), ("mod", [BOB, CAT], 50), ("member", [DAN, EVE], 1)]
    return role_map_content(base + list(extra))


# --- join -----------------------------------------------------------------------------------


def test_join_invite_only_room(room: HubRoom) -> None:
    room.refuse_user(CAT, CAT, JOIN, r"m\.0 join: join rule is invite and @cat:f1\.test is not invited \(no participation\)")
    room.user(ANA, CAT, INVITE)
    room.user(CAT, CAT, JOIN)
    room.user(CAT, CAT, JOIN)  # joining while joined is allowed (documented decision)
    room.user(CAT, CAT, LEAVE)
    room.refuse_user(CAT, CAT, JOIN, r"m\.0 join: join rule is invite and @cat:f1\.test is not invited \(leave\)")


def test_join_public_room(room: HubRoom) -> None:
    room.join_rule(JoinRule.PUBLIC)
    room.user(EVE, EVE, JOIN)  # no invite needed
    room.user(EVE, EVE, LEAVE)
    room.user(EVE, EVE, JOIN)  # a left user may come back
    room.user(ANA, CAT, INVITE)
    room.user(CAT, CAT, JOIN)


def test_join_public_room_refused_for_a_banned_user(room: HubRoom) -> None:
    room.join_rule(JoinRule.PUBLIC)
    room.user(ANA, EVE, BAN)
    room.refuse_user(EVE, EVE, JOIN, r"m\.0 join: @eve:f2\.test is banned")


def test_join_refused_when_sender_is_not_target(room: HubRoom) -> None:
    room.join_rule(JoinRule.PUBLIC)
    room.user(ANA, CAT, INVITE)
    room.refuse_user(ANA, CAT, JOIN, r"m\.0 join: sender @ana:hub\.test cannot join for @cat:f1\.test")
    room.user(DAN, DAN, JOIN)
    room.refuse_user(DAN, CAT, JOIN, r"m\.0 join: sender @dan:f1\.test cannot join for @cat:f1\.test")


# --- knock ----------------------------------------------------------------------------------


def test_knock_allowed_on_a_knock_room(room: HubRoom) -> None:
    room.join_rule(JoinRule.KNOCK)
    room.user(CAT, CAT, KNOCK)
    room.user(CAT, CAT, LEAVE)
    room.user(CAT, CAT, KNOCK)  # again after a leave
    room.user(ANA, EVE, INVITE)
    room.user(EVE, EVE, KNOCK)  # knocking while invited is allowed (documented decision)


@pytest.mark.parametrize("rule", [JoinRule.INVITE, JoinRule.PUBLIC])
def test_knock_refused_unless_the_rule_is_knock(room: HubRoom, rule: JoinRule) -> None:
    if rule != JoinRule.INVITE:
        room.join_rule(rule)
    room.refuse_user(CAT, CAT, KNOCK, rf"m\.0 knock: join rule is {rule.name.lower()}, not knock")


def test_knock_refused_for_banned_and_joined_users(room: HubRoom) -> None:
    room.join_rule(JoinRule.KNOCK)
    room.user(ANA, CAT, BAN)
    room.refuse_user(CAT, CAT, KNOCK, r"m\.0 knock: @cat:f1\.test is banned")
    room.add(EVE)
    room.refuse_user(EVE, EVE, KNOCK, r"m\.0 knock: @eve:f2\.test is already joined")
    room.refuse_user(ANA, DAN, KNOCK, r"m\.0 knock: sender @ana:hub\.test cannot knock for @dan:f1\.test")


# --- voluntary leave ------------------------------------------------------------------------


def test_voluntary_leave_from_invite_join_and_knock(room: HubRoom) -> None:
    room.user(ANA, CAT, INVITE)
    room.user(CAT, CAT, LEAVE)  # declining an invite
    room.add(EVE)
    room.user(EVE, EVE, LEAVE)
    room.join_rule(JoinRule.KNOCK)
    room.user(DAN, DAN, KNOCK)
    room.user(DAN, DAN, LEAVE)  # withdrawing a knock


def test_voluntary_leave_refused_from_leave_ban_and_nothing(room: HubRoom) -> None:
    room.refuse_user(CAT, CAT, LEAVE, r"m\.0 leave: @cat:f1\.test is not invited, joined or knocking \(no participation\)")
    room.add(CAT)
    room.user(CAT, CAT, LEAVE)
    room.refuse_user(CAT, CAT, LEAVE, r"m\.0 leave: @cat:f1\.test is not invited, joined or knocking \(leave\)")
    room.user(ANA, EVE, BAN)
    room.refuse_user(EVE, EVE, LEAVE, r"m\.0 leave: @eve:f2\.test is not invited, joined or knocking \(ban\)")


# --- kick -----------------------------------------------------------------------------------


def test_kick_joined_invited_and_knocking_targets(room: HubRoom) -> None:
    room.add(CAT)
    room.user(ANA, CAT, LEAVE)  # kick a joined user
    room.user(ANA, EVE, INVITE)
    room.user(ANA, EVE, LEAVE)  # revoke an invite
    room.join_rule(JoinRule.KNOCK)
    room.user(DAN, DAN, KNOCK)
    room.user(ANA, DAN, LEAVE)  # decline a knock


def test_kick_refused_for_a_target_not_in_the_room(room: HubRoom) -> None:
    room.refuse_user(ANA, CAT, LEAVE, r"m\.0 kick: target @cat:f1\.test is not joined, invited or knocking \(no participation\)")
    room.add(CAT)
    room.user(CAT, CAT, LEAVE)
    room.refuse_user(ANA, CAT, LEAVE, r"m\.0 kick: target @cat:f1\.test is not joined, invited or knocking \(leave\)")


def test_kick_refused_without_the_kick_permission(modroom: HubRoom) -> None:
    modroom.refuse_user(DAN, EVE, LEAVE, r"m\.0 kick: @dan:f1\.test lacks the kick permission")


def test_kick_refused_for_a_joined_non_creator_in_the_creator_phase(room: HubRoom) -> None:
    room.add(BOB)
    room.add(CAT)
    room.refuse_user(BOB, CAT, LEAVE, r"m\.0 kick: @bob:hub\.test lacks the kick permission")


def test_kick_refused_for_a_sender_who_is_not_joined(modroom: HubRoom) -> None:
    modroom.user(BOB, BOB, LEAVE)
    modroom.refuse_user(BOB, DAN, LEAVE, r"m\.0 kick: sender @bob:hub\.test is not joined \(leave\)")


def test_kick_refused_at_an_equal_power_level(modroom: HubRoom) -> None:
    modroom.refuse_user(BOB, CAT, LEAVE, r"m\.0 kick: @bob:hub\.test's power level for kick \(50\) is not above @cat:f1\.test's \(50\)")
    modroom.refuse_user(CAT, BOB, LEAVE, r"m\.0 kick: .*\(50\) is not above .*\(50\)")


def test_kick_needs_a_strictly_higher_power_level(modroom: HubRoom) -> None:
    modroom.user(CAT, DAN, LEAVE)  # mod (50) kicks a member without kick roles (no level)
    modroom.refuse_user(CAT, ANA, LEAVE, r"m\.0 kick: .*\(50\) is not above @ana:hub\.test's \(100\)")
    modroom.user(ANA, CAT, LEAVE)  # admin (100) kicks a mod (50)


def test_kick_power_level_counts_roles_that_deny_kick(modroom: HubRoom) -> None:
    # eve gets a role at order 70 that *denies* kick: her level for kick is 70 all the same.
    modroom.role("stuck", kick=False)
    modroom.submit(ANA, "m.room.role_map", "", _map(("stuck", [EVE], 70)))
    modroom.refuse_user(BOB, EVE, LEAVE, r"m\.0 kick: .*\(50\) is not above @eve:f2\.test's \(70\)")
    modroom.user(ANA, EVE, LEAVE)


def test_kick_refused_for_the_creator_without_a_role_after_the_phase(room: HubRoom) -> None:
    room.add(CAT)
    room.role("mod", kick=True)
    room.role_map([("mod", [CAT], 5)])  # the creator is not in the map
    room.refuse_user(ANA, CAT, LEAVE, r"m\.0 kick: @ana:hub\.test lacks the kick permission")
    room.user(CAT, ANA, LEAVE)


# --- ban / unban ----------------------------------------------------------------------------


def test_ban_any_participation(room: HubRoom) -> None:
    room.add(CAT)
    room.user(ANA, CAT, BAN)  # joined
    room.user(ANA, EVE, INVITE)
    room.user(ANA, EVE, BAN)  # invited
    room.user(ANA, FAY, BAN)  # never in the room
    room.user(ANA, FAY, BAN)  # already banned


def test_ban_refused_without_permission_or_membership(modroom: HubRoom) -> None:
    modroom.refuse_user(DAN, EVE, BAN, r"m\.0 ban: @dan:f1\.test lacks the ban permission")
    modroom.refuse_user(FAY, EVE, BAN, r"m\.0 ban: sender @fay:f2\.test is not joined")
    modroom.user(BOB, BOB, LEAVE)
    modroom.refuse_user(BOB, EVE, BAN, r"m\.0 ban: sender @bob:hub\.test is not joined \(leave\)")


def test_ban_at_an_equal_power_level(modroom: HubRoom) -> None:
    """Policy draft, "Ban Conditions" has no power check (PROFILE.md section 6; more in
    test_hub_draft_conditions.py): a mod bans a mod of the same level."""
    modroom.user(BOB, CAT, BAN)
    modroom.user(ANA, BOB, BAN)


def test_unban_needs_the_ban_permission_and_a_higher_ban_level(modroom: HubRoom) -> None:
    # kicker: kick at 90, no ban at all; banlow: ban at 20 (below the mods' 50).
    modroom.role("kicker", kick=True)
    modroom.role("banlow", ban=True, kick=True)
    modroom.user(ANA, FAY, INVITE)
    modroom.user(FAY, FAY, JOIN)
    modroom.submit(ANA, "m.room.role_map", "", _map(("kicker", [DAN], 90), ("banlow", [FAY], 20)))
    modroom.user(BOB, EVE, BAN)  # eve has no ban level
    modroom.user(ANA, CAT, BAN)  # cat keeps her mod role (ban level 50) while banned

    # dan may kick but not ban: he cannot unban, whatever his kick level.
    modroom.refuse_user(DAN, EVE, LEAVE, r"m\.0 unban: @dan:f1\.test lacks the ban permission")
    # fay may ban at 20: enough for eve (no level), not for cat (50).
    modroom.refuse_user(FAY, CAT, LEAVE, r"m\.0 unban: @fay:f2\.test's power level for ban \(20\) is not above @cat:f1\.test's \(50\)")
    # bob's ban level equals cat's.
    modroom.refuse_user(BOB, CAT, LEAVE, r"m\.0 unban: .*\(50\) is not above .*\(50\)")
    modroom.user(FAY, EVE, LEAVE)
    modroom.user(ANA, CAT, LEAVE)
    assert modroom.participation(CAT) == LEAVE


def test_unban_refused_for_a_sender_who_is_not_joined(room: HubRoom) -> None:
    room.user(ANA, CAT, BAN)
    room.refuse_user(DAN, CAT, LEAVE, r"m\.0 unban: sender @dan:f1\.test is not joined")
