"""m.room.user transitions: each allowed and refused, with real signed events."""

from __future__ import annotations

import pytest

from mimi_signaling.content import JoinRule, Participation

ANA = "@ana:hub.test"  # creator, admin (100)
BEN = "@ben:follower.test"  # mod (50)
EVE = "@eve:follower.test"  # mod (50)
CY = "@cy:other.test"  # member (1)
DEE = "@dee:other.test"  # member (1)
ZED = "@zed:far.test"  # never in the room

INVITE, JOIN, LEAVE, BAN, KNOCK = (
    Participation.INVITE,
    Participation.JOIN,
    Participation.LEAVE,
    Participation.BAN,
    Participation.KNOCK,
)


@pytest.fixture
def modroom(room):
    for user in (BEN, EVE, CY, DEE):
        room.join(user)
    room.role(
        "admin",
        invite=True,
        kick=True,
        ban=True,
        events=[("m.room.join_rules", True), ("m.room.encrypted", True)],
        roles=["admin", "mod", "member"],
    )
    room.role("mod", invite=True, kick=True, ban=True, events=[("m.room.encrypted", True)])
    room.role("member", events=[("m.room.encrypted", True)])
    room.role_map([("admin", [ANA], 100), ("mod", [BEN, EVE], 50), ("member", [CY, DEE], 1)])
    return room


# --- invite ---------------------------------------------------------------------------------


def test_invite_allowed(modroom) -> None:
    modroom.user(BEN, ZED, INVITE, b"come in")
    assert modroom.state.participation(ZED) == INVITE
    modroom.user(ANA, ZED, INVITE)  # re-inviting an invited user is allowed


def test_invite_refused_without_permission(modroom) -> None:
    modroom.reject_user(CY, ZED, INVITE, "m.0 invite: .* lacks the invite permission")


def test_invite_refused_for_joined_target(modroom) -> None:
    modroom.reject_user(BEN, CY, INVITE, "m.0 invite: target @cy:other.test is already joined")


def test_invite_refused_for_banned_target(modroom) -> None:
    modroom.user(BEN, ZED, BAN)
    modroom.reject_user(ANA, ZED, INVITE, "m.0 invite: target @zed:far.test is banned")


def test_invite_refused_when_sender_not_joined(modroom) -> None:
    modroom.user(BEN, BEN, LEAVE)
    modroom.reject_user(BEN, ZED, INVITE, "m.0 invite: sender @ben:follower.test is not joined")


def test_invite_after_leave_and_of_knocker(modroom) -> None:
    modroom.user(CY, CY, LEAVE)
    modroom.user(BEN, CY, INVITE)
    modroom.join_rules(JoinRule.KNOCK)
    modroom.user(ZED, ZED, KNOCK)
    modroom.user(BEN, ZED, INVITE)  # welcoming a knock
    modroom.user(ZED, ZED, JOIN)


# --- join -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", [JoinRule.INVITE, JoinRule.KNOCK])
def test_join_needs_invite_under_invite_and_knock_rules(modroom, rule) -> None:
    modroom.join_rules(rule)
    modroom.reject_user(ZED, ZED, JOIN, f"m.0 join: join rule is {rule.name.lower()} and @zed:far.test is not invited")
    modroom.user(ANA, ZED, INVITE)
    modroom.user(ZED, ZED, JOIN)
    modroom.user(ZED, ZED, JOIN)  # joined -> joined is allowed
    modroom.user(ZED, ZED, LEAVE)
    modroom.reject_user(ZED, ZED, JOIN, "not invited \\(leave\\)")


def test_join_default_rule_is_invite(room) -> None:
    room.reject_user(ZED, ZED, JOIN, "join rule is invite")


def test_join_public(modroom) -> None:
    modroom.join_rules(JoinRule.PUBLIC)
    modroom.user(ZED, ZED, JOIN)
    modroom.user(ZED, ZED, LEAVE)
    modroom.user(ZED, ZED, JOIN)


def test_join_public_refused_when_banned(modroom) -> None:
    modroom.join_rules(JoinRule.PUBLIC)
    modroom.user(BEN, ZED, BAN)
    modroom.reject_user(ZED, ZED, JOIN, "m.0 join: @zed:far.test is banned")


def test_join_refused_for_someone_else(modroom) -> None:
    modroom.join_rules(JoinRule.PUBLIC)
    modroom.reject_user(ANA, ZED, JOIN, "m.0 join: sender @ana:hub.test cannot join for @zed:far.test")


# --- knock ----------------------------------------------------------------------------------


def test_knock_allowed_under_knock_rule(modroom) -> None:
    modroom.join_rules(JoinRule.KNOCK)
    modroom.user(ZED, ZED, KNOCK, b"let me in")
    assert modroom.state.participation(ZED) == KNOCK
    modroom.user(CY, CY, LEAVE)
    modroom.user(CY, CY, KNOCK)  # a user who left may knock


@pytest.mark.parametrize("rule", [JoinRule.INVITE, JoinRule.PUBLIC])
def test_knock_refused_under_other_rules(modroom, rule) -> None:
    modroom.join_rules(rule)
    modroom.reject_user(ZED, ZED, KNOCK, f"m.0 knock: join rule is {rule.name.lower()}, not knock")


def test_knock_refused_when_joined_or_banned(modroom) -> None:
    modroom.join_rules(JoinRule.KNOCK)
    modroom.reject_user(CY, CY, KNOCK, "already joined")
    modroom.user(BEN, ZED, BAN)
    modroom.reject_user(ZED, ZED, KNOCK, "banned")


def test_knock_refused_for_someone_else(modroom) -> None:
    modroom.join_rules(JoinRule.KNOCK)
    modroom.reject_user(BEN, ZED, KNOCK, "cannot knock for")


# --- voluntary leave ------------------------------------------------------------------------


def test_leave_from_joined_invited_knocking(modroom) -> None:
    modroom.user(CY, CY, LEAVE)
    modroom.user(BEN, ZED, INVITE)
    modroom.user(ZED, ZED, LEAVE)  # declining an invite
    modroom.join_rules(JoinRule.KNOCK)
    modroom.user(ZED, ZED, KNOCK)
    modroom.user(ZED, ZED, LEAVE)  # withdrawing a knock
    assert modroom.state.participation(ZED) == LEAVE


def test_leave_refused_when_not_in_the_room(modroom) -> None:
    modroom.reject_user(ZED, ZED, LEAVE, "m.0 leave: @zed:far.test is not invited, joined or knocking \\(no participation\\)")
    modroom.user(CY, CY, LEAVE)
    modroom.reject_user(CY, CY, LEAVE, "\\(leave\\)")
    modroom.user(BEN, DEE, BAN)
    modroom.reject_user(DEE, DEE, LEAVE, "\\(ban\\)")


# --- kick -----------------------------------------------------------------------------------


def test_kick_joined_invited_knocking(modroom) -> None:
    modroom.user(BEN, CY, LEAVE)  # kick a joined member
    modroom.user(BEN, ZED, INVITE)
    modroom.user(BEN, ZED, LEAVE)  # revoke an invite
    modroom.join_rules(JoinRule.KNOCK)
    modroom.user(ZED, ZED, KNOCK)
    modroom.user(EVE, ZED, LEAVE)  # decline a knock
    assert modroom.state.participation(CY) == LEAVE
    assert modroom.state.participation(ZED) == LEAVE


def test_kick_refused_for_target_not_in_room(modroom) -> None:
    modroom.reject_user(BEN, ZED, LEAVE, "m.0 kick: target @zed:far.test is not joined, invited or knocking")
    modroom.user(CY, CY, LEAVE)
    modroom.reject_user(BEN, CY, LEAVE, "m.0 kick: .*\\(leave\\)")


def test_kick_refused_without_permission(modroom) -> None:
    modroom.reject_user(CY, DEE, LEAVE, "m.0 kick: @cy:other.test lacks the kick permission")


def test_kick_refused_at_equal_or_lower_level(modroom) -> None:
    modroom.reject_user(BEN, EVE, LEAVE, "m.0 kick: .*power level for kick \\(50\\) is not above .*\\(50\\)")
    modroom.reject_user(BEN, ANA, LEAVE, "\\(50\\) is not above @ana:hub.test's \\(100\\)")
    modroom.user(ANA, BEN, LEAVE)  # higher kicks lower


def test_kick_refused_when_sender_not_joined(modroom) -> None:
    modroom.user(BEN, BEN, LEAVE)
    modroom.reject_user(BEN, CY, LEAVE, "m.0 kick: sender @ben:follower.test is not joined")


# --- ban and unban --------------------------------------------------------------------------


def test_ban_allowed_for_any_participation(modroom) -> None:
    modroom.user(BEN, CY, BAN)
    modroom.user(BEN, ZED, BAN)  # pre-emptive ban of a stranger
    assert modroom.state.participation(CY) == BAN
    assert CY not in modroom.state.joined_users()


def test_ban_refused_without_permission(modroom) -> None:
    modroom.reject_user(CY, DEE, BAN, "m.0 ban: @cy:other.test lacks the ban permission")


def test_ban_has_no_power_check_draft_ban_conditions(modroom) -> None:
    """Policy draft, "Ban Conditions": "The sender for a ban MUST: Already be in the joined
    state. Have permission to ban users. Otherwise, reject." -- nothing about the target, so
    no power check (PROFILE.md section 6): a mod (50) bans an equal mod and the admin (100)."""
    modroom.user(BEN, EVE, BAN)  # equal level
    modroom.user(BEN, ANA, BAN)  # higher level: the admin
    assert modroom.state.participation(EVE) == BAN and modroom.state.participation(ANA) == BAN


def test_ban_of_oneself_draft_ban_conditions(modroom) -> None:
    """Policy draft, "Ban Conditions" lists only the sender's joined state and ban permission:
    a sender may ban themself (PROFILE.md section 6: "a ban may target any user")."""
    modroom.user(ANA, ANA, BAN)
    assert modroom.state.participation(ANA) == BAN
    modroom.user(BEN, BEN, BAN)
    modroom.reject_user(BEN, CY, BAN, "m.0 ban: sender @ben:follower.test is not joined \\(ban\\)")


def test_ban_of_a_banned_or_left_user_draft_ban_conditions(modroom) -> None:
    """"a ban may target any user, whatever their level or participation" (PROFILE.md
    section 6): banning again, and banning a user who left."""
    modroom.user(BEN, CY, BAN)
    modroom.user(EVE, CY, BAN)
    modroom.user(DEE, DEE, LEAVE)
    modroom.user(EVE, DEE, BAN)
    assert modroom.state.participation(DEE) == BAN


def test_ban_refused_when_sender_not_joined(modroom) -> None:
    modroom.user(BEN, BEN, LEAVE)
    modroom.reject_user(BEN, CY, BAN, "m.0 ban: sender @ben:follower.test is not joined")


def test_unban_needs_ban_permission_and_power(modroom) -> None:
    # EVE (mod) bans; BEN (mod, the same level as EVE) cannot unban EVE; ANA (admin) can.
    modroom.user(EVE, ZED, BAN)
    modroom.user(BEN, ZED, LEAVE)  # ZED has no level: unban by a mod works
    modroom.user(ANA, EVE, BAN)
    modroom.reject_user(BEN, EVE, LEAVE, "m.0 unban: .*power level for ban \\(50\\) is not above .*\\(50\\)")
    modroom.reject_user(CY, EVE, LEAVE, "m.0 unban: @cy:other.test lacks the ban permission")
    modroom.user(ANA, EVE, LEAVE)
    assert modroom.state.participation(EVE) == LEAVE


def test_unban_with_kick_but_no_ban_permission(room) -> None:
    room.join(BEN)
    room.join(CY)
    room.role("top", ban=True)
    room.role("kicker", kick=True, ban=False)
    room.role_map([("top", [ANA], 10), ("kicker", [BEN], 5)])
    room.user(ANA, CY, BAN)
    room.reject_user(BEN, CY, LEAVE, "m.0 unban: @ben:follower.test lacks the ban permission")
