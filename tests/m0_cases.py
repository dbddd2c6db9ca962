"""The m.0 case tables, one per rule area, shared by the room-layer tests (every case, against
``RoomState`` and the policy: tests/room) and the hub tests (the cases marked ``hub``, through
``Hub.accept``, where a refusal must also store nothing: tests/hubpolicy).

A case is a setup and a list of steps.  Setups: ``room`` -- an invite-only room in the creator
phase, only the creator joined; ``modroom`` -- after the creator phase (``MODROOM``).  Steps
(``ok``, ``no`` and the others below) are plain tuples; ``run_case`` plays them on a driver
(``CaseDriver``), which each suite adapts to its layer.

Users live on the hub network's servers (hub.test, f1.test, f2.test) so that both suites can
play every case; a room-layer room signs with a key per server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence, Tuple

from mimi_signaling.content import JoinRule, Participation

ANA = "@ana:hub.test"  # the creator in every room; admin (100) in the modroom
BOB = "@bob:hub.test"  # modroom: mod (50)
CAT = "@cat:f1.test"  # modroom: mod (50)
DAN = "@dan:f1.test"  # modroom: member (1), no moderation permission
EVE = "@eve:f2.test"  # modroom: member (1)
FAY = "@fay:f2.test"  # never in the room unless a case brings her in
GUS = "@gus:f2.test"

INVITE, JOIN, LEAVE, BAN, KNOCK = (
    Participation.INVITE,
    Participation.JOIN,
    Participation.LEAVE,
    Participation.BAN,
    Participation.KNOCK,
)

Step = Tuple[Any, ...]


def ok(sender: str, target: str, participation: Participation) -> Step:
    """``sender`` sends ``target``'s ``m.room.user``: accepted, ``target`` is then in it."""
    return ("ok", sender, target, participation)


def no(sender: str, target: str, participation: Participation, match: str) -> Step:
    """Refused with ``PolicyRejectedError`` matching ``match``; nothing changes."""
    return ("no", sender, target, participation, match)


def rule(join_rule: JoinRule) -> Step:
    """The creator sets the join rule."""
    return ("rule", join_rule)


def add(user: str) -> Step:
    """The creator invites ``user``, who joins."""
    return ("add", user)


def role(role_id: str, **permissions: Any) -> Step:
    """The creator sends ``m.room.role`` ``role_id`` (``content.role_content`` arguments)."""
    return ("role", role_id, permissions)


def role_map(*configs: Tuple[str, Sequence[str], int]) -> Step:
    """The creator sends this ``m.room.role_map``."""
    return ("map", configs)


def joined(user: str, expected: bool) -> Step:
    """Whether ``user`` is among the joined users now."""
    return ("joined", user, expected)


#: The modroom's role map; cases that add a role send it again with the extra configs.
MODROOM_MAP = (("admin", [ANA], 100), ("mod", [BOB, CAT], 50), ("member", [DAN, EVE], 1))

#: After the creator phase: bob and cat mods, dan and eve members, fay not in the room.
MODROOM: Tuple[Step, ...] = (
    add(BOB),
    add(CAT),
    add(DAN),
    add(EVE),
    role(
        "admin",
        invite=True,
        kick=True,
        ban=True,
        events=[("m.room.join_rules", True), ("m.room.role", True), ("m.room.role_map", True), ("m.room.encrypted", True)],
        roles=["admin", "mod", "member", "muted", "stuck", "kicker", "banlow"],
    ),
    role("mod", invite=True, kick=True, ban=True, events=[("m.room.encrypted", True)]),
    role("member", events=[("m.room.encrypted", True)]),
    role_map(*MODROOM_MAP),
)

SETUPS = {"room": (), "modroom": MODROOM}


@dataclass(frozen=True)
class Case:
    id: str
    setup: str  # a key of SETUPS
    steps: Tuple[Step, ...]
    hub: bool = False  # in the hub's sample too


class CaseDriver(Protocol):
    def user(self, sender: str, target: str, participation: Participation) -> Any: ...

    def refuse_user(self, sender: str, target: str, participation: Participation, match: str) -> Any: ...

    def join_rule(self, rule: JoinRule) -> Any: ...

    def add(self, user: str) -> Any: ...

    def role(self, role_id: str, **permissions: Any) -> Any: ...

    def role_map(self, configs: Sequence[Tuple[str, Sequence[str], int]]) -> Any: ...

    def participation(self, user: str) -> Optional[Participation]: ...

    def joined_users(self) -> Any: ...


def run_case(driver: CaseDriver, case: Case) -> None:
    for step in (*SETUPS[case.setup], *case.steps):
        kind, args = step[0], step[1:]
        if kind == "ok":
            sender, target, participation = args
            driver.user(sender, target, participation)
            assert driver.participation(target) == participation
        elif kind == "no":
            driver.refuse_user(*args)
        elif kind == "rule":
            driver.join_rule(args[0])
        elif kind == "add":
            driver.add(args[0])
        elif kind == "role":
            driver.role(args[0], **args[1])
        elif kind == "map":
            driver.role_map(list(args[0]))
        elif kind == "joined":
            assert (args[0] in driver.joined_users()) is args[1]
        else:  # pragma: no cover
            raise AssertionError(step)


def ids(cases: Sequence[Case]) -> list:
    return [case.id for case in cases]


# --- participation: every m.room.user transition (policy draft "Participation", PROFILE.md
# section 6), allowed and refused ----------------------------------------------------------


def _join_needs_invite(join_rule: JoinRule) -> Case:
    name = join_rule.name.lower()
    return Case(f"join_needs_an_invite_under_the_{name}_rule", "modroom", (
        rule(join_rule),
        no(FAY, FAY, JOIN, rf"m\.0 join: join rule is {name} and @fay:f2\.test is not invited"),
        ok(ANA, FAY, INVITE),
        ok(FAY, FAY, JOIN),
        ok(FAY, FAY, JOIN),  # joined -> joined is allowed
        ok(FAY, FAY, LEAVE),
        no(FAY, FAY, JOIN, r"not invited \(leave\)"),
    ), hub=join_rule == JoinRule.KNOCK)


def _knock_refused(join_rule: JoinRule, setup: str) -> Case:
    name = join_rule.name.lower()
    set_rule = (rule(join_rule),) if setup == "modroom" or join_rule != JoinRule.INVITE else ()
    return Case(f"knock_refused_under_the_{name}_rule_{setup}", setup, (
        *set_rule,
        no(CAT if setup == "room" else FAY, CAT if setup == "room" else FAY, KNOCK,
           rf"m\.0 knock: join rule is {name}, not knock"),
    ), hub=setup == "room" and join_rule == JoinRule.PUBLIC)


PARTICIPATION: Tuple[Case, ...] = (
    # --- invite
    Case("invite_by_a_mod", "modroom", (
        ok(BOB, FAY, INVITE),
        ok(ANA, FAY, INVITE),  # re-inviting an invited user is allowed (documented decision)
    )),
    Case("invite_by_the_creator_in_the_creator_phase", "room", (
        ok(ANA, CAT, INVITE),
        ok(ANA, EVE, INVITE),
        ok(ANA, CAT, INVITE),  # re-inviting an invited user is allowed (documented decision)
    ), hub=True),
    Case("invite_by_a_role_with_the_permission", "modroom", (
        ok(CAT, FAY, INVITE),  # a follower's mod invites a user of the other follower
    ), hub=True),
    Case("invite_of_a_knocking_or_left_user", "room", (
        rule(JoinRule.KNOCK),
        ok(CAT, CAT, KNOCK),
        ok(ANA, CAT, INVITE),  # welcoming a knock
        ok(CAT, CAT, JOIN),
        ok(CAT, CAT, LEAVE),
        ok(ANA, CAT, INVITE),
    )),
    Case("invite_after_leave_and_of_a_knocker", "modroom", (
        ok(DAN, DAN, LEAVE),
        ok(BOB, DAN, INVITE),
        rule(JoinRule.KNOCK),
        ok(FAY, FAY, KNOCK),
        ok(BOB, FAY, INVITE),  # welcoming a knock
        ok(FAY, FAY, JOIN),
    )),
    Case("invite_refused_without_the_invite_permission", "modroom", (
        no(DAN, FAY, INVITE, r"m\.0 invite: @dan:f1\.test lacks the invite permission"),
    ), hub=True),
    Case("invite_refused_for_a_joined_target", "modroom", (
        no(BOB, DAN, INVITE, r"m\.0 invite: target @dan:f1\.test is already joined"),
    )),
    Case("invite_refused_for_a_joined_target_creator_phase", "room", (
        add(CAT),
        no(ANA, CAT, INVITE, r"m\.0 invite: target @cat:f1\.test is already joined"),
    )),
    Case("invite_refused_for_a_banned_target", "modroom", (
        ok(BOB, FAY, BAN),
        no(ANA, FAY, INVITE, r"m\.0 invite: target @fay:f2\.test is banned"),
    )),
    Case("invite_refused_for_a_banned_target_creator_phase", "room", (
        ok(ANA, DAN, BAN),
        no(ANA, DAN, INVITE, r"m\.0 invite: target @dan:f1\.test is banned"),
    ), hub=True),
    Case("invite_refused_when_the_sender_left", "modroom", (
        ok(BOB, BOB, LEAVE),
        no(BOB, FAY, INVITE, r"m\.0 invite: sender @bob:hub\.test is not joined"),
    )),
    Case("invite_refused_for_a_sender_who_is_not_joined", "modroom", (
        no(FAY, EVE, INVITE, r"m\.0 invite: sender @fay:f2\.test is not joined \(no participation\)"),
        ok(ANA, FAY, INVITE),
        no(FAY, GUS, INVITE, r"m\.0 invite: sender @fay:f2\.test is not joined \(invite\)"),
        ok(ANA, BOB, LEAVE),  # bob (a mod) kicked: his role stays, his membership does not
        no(BOB, GUS, INVITE, r"m\.0 invite: sender @bob:hub\.test is not joined \(leave\)"),
    ), hub=True),
    Case("invite_refused_for_a_joined_non_creator_in_the_creator_phase", "room", (
        add(BOB),
        no(BOB, CAT, INVITE, r"m\.0 invite: @bob:hub\.test lacks the invite permission"),
    )),
    Case("invite_permission_resolved_by_the_highest_order", "modroom", (
        # cat holds mod (50, invite true) and muted (60, invite false): the higher order decides.
        role("muted", invite=False),
        role_map(*MODROOM_MAP, ("muted", [CAT], 60)),
        no(CAT, FAY, INVITE, r"m\.0 invite: @cat:f1\.test lacks the invite permission"),
        ok(BOB, FAY, INVITE),
    )),
    # --- join
    _join_needs_invite(JoinRule.INVITE),
    _join_needs_invite(JoinRule.KNOCK),
    Case("join_default_rule_is_invite", "room", (
        no(FAY, FAY, JOIN, "join rule is invite"),
    )),
    Case("join_invite_only_room", "room", (
        no(CAT, CAT, JOIN, r"m\.0 join: join rule is invite and @cat:f1\.test is not invited \(no participation\)"),
        ok(ANA, CAT, INVITE),
        ok(CAT, CAT, JOIN),
        ok(CAT, CAT, JOIN),  # joining while joined is allowed (documented decision)
        ok(CAT, CAT, LEAVE),
        no(CAT, CAT, JOIN, r"m\.0 join: join rule is invite and @cat:f1\.test is not invited \(leave\)"),
    ), hub=True),
    Case("join_public", "modroom", (
        rule(JoinRule.PUBLIC),
        ok(FAY, FAY, JOIN),
        ok(FAY, FAY, LEAVE),
        ok(FAY, FAY, JOIN),
    )),
    Case("join_public_room", "room", (
        rule(JoinRule.PUBLIC),
        ok(EVE, EVE, JOIN),  # no invite needed
        ok(EVE, EVE, LEAVE),
        ok(EVE, EVE, JOIN),  # a left user may come back
        ok(ANA, CAT, INVITE),
        ok(CAT, CAT, JOIN),
    ), hub=True),
    Case("join_public_refused_when_banned", "modroom", (
        rule(JoinRule.PUBLIC),
        ok(BOB, FAY, BAN),
        no(FAY, FAY, JOIN, r"m\.0 join: @fay:f2\.test is banned"),
    )),
    Case("join_public_room_refused_for_a_banned_user", "room", (
        rule(JoinRule.PUBLIC),
        ok(ANA, EVE, BAN),
        no(EVE, EVE, JOIN, r"m\.0 join: @eve:f2\.test is banned"),
    ), hub=True),
    Case("join_refused_for_someone_else", "modroom", (
        rule(JoinRule.PUBLIC),
        no(ANA, FAY, JOIN, r"m\.0 join: sender @ana:hub\.test cannot join for @fay:f2\.test"),
    )),
    Case("join_refused_when_the_sender_is_not_the_target", "room", (
        rule(JoinRule.PUBLIC),
        ok(ANA, CAT, INVITE),
        no(ANA, CAT, JOIN, r"m\.0 join: sender @ana:hub\.test cannot join for @cat:f1\.test"),
        ok(DAN, DAN, JOIN),
        no(DAN, CAT, JOIN, r"m\.0 join: sender @dan:f1\.test cannot join for @cat:f1\.test"),
    )),
    # --- knock
    Case("knock_allowed_under_the_knock_rule", "modroom", (
        rule(JoinRule.KNOCK),
        ok(FAY, FAY, KNOCK),
        ok(DAN, DAN, LEAVE),
        ok(DAN, DAN, KNOCK),  # a user who left may knock
    )),
    Case("knock_allowed_on_a_knock_room", "room", (
        rule(JoinRule.KNOCK),
        ok(CAT, CAT, KNOCK),
        ok(CAT, CAT, LEAVE),
        ok(CAT, CAT, KNOCK),  # again after a leave
        ok(ANA, EVE, INVITE),
        ok(EVE, EVE, KNOCK),  # knocking while invited is allowed (documented decision)
    ), hub=True),
    _knock_refused(JoinRule.INVITE, "modroom"),
    _knock_refused(JoinRule.PUBLIC, "modroom"),
    _knock_refused(JoinRule.INVITE, "room"),
    _knock_refused(JoinRule.PUBLIC, "room"),
    Case("knock_refused_when_joined_or_banned", "modroom", (
        rule(JoinRule.KNOCK),
        no(DAN, DAN, KNOCK, "already joined"),
        ok(BOB, FAY, BAN),
        no(FAY, FAY, KNOCK, "banned"),
    )),
    Case("knock_refused_for_someone_else", "modroom", (
        rule(JoinRule.KNOCK),
        no(BOB, FAY, KNOCK, "cannot knock for"),
    )),
    Case("knock_refused_for_banned_and_joined_users", "room", (
        rule(JoinRule.KNOCK),
        ok(ANA, CAT, BAN),
        no(CAT, CAT, KNOCK, r"m\.0 knock: @cat:f1\.test is banned"),
        add(EVE),
        no(EVE, EVE, KNOCK, r"m\.0 knock: @eve:f2\.test is already joined"),
        no(ANA, DAN, KNOCK, r"m\.0 knock: sender @ana:hub\.test cannot knock for @dan:f1\.test"),
    ), hub=True),
    # --- voluntary leave
    Case("leave_from_joined_invited_knocking", "modroom", (
        ok(DAN, DAN, LEAVE),
        ok(BOB, FAY, INVITE),
        ok(FAY, FAY, LEAVE),  # declining an invite
        rule(JoinRule.KNOCK),
        ok(FAY, FAY, KNOCK),
        ok(FAY, FAY, LEAVE),  # withdrawing a knock
    )),
    Case("voluntary_leave_from_invite_join_and_knock", "room", (
        ok(ANA, CAT, INVITE),
        ok(CAT, CAT, LEAVE),  # declining an invite
        add(EVE),
        ok(EVE, EVE, LEAVE),
        rule(JoinRule.KNOCK),
        ok(DAN, DAN, KNOCK),
        ok(DAN, DAN, LEAVE),  # withdrawing a knock
    ), hub=True),
    Case("leave_refused_when_not_in_the_room", "modroom", (
        no(FAY, FAY, LEAVE, r"m\.0 leave: @fay:f2\.test is not invited, joined or knocking \(no participation\)"),
        ok(DAN, DAN, LEAVE),
        no(DAN, DAN, LEAVE, r"\(leave\)"),
        ok(BOB, EVE, BAN),
        no(EVE, EVE, LEAVE, r"\(ban\)"),
    )),
    Case("voluntary_leave_refused_from_leave_ban_and_nothing", "room", (
        no(CAT, CAT, LEAVE, r"m\.0 leave: @cat:f1\.test is not invited, joined or knocking \(no participation\)"),
        add(CAT),
        ok(CAT, CAT, LEAVE),
        no(CAT, CAT, LEAVE, r"m\.0 leave: @cat:f1\.test is not invited, joined or knocking \(leave\)"),
        ok(ANA, EVE, BAN),
        no(EVE, EVE, LEAVE, r"m\.0 leave: @eve:f2\.test is not invited, joined or knocking \(ban\)"),
    ), hub=True),
    # --- kick
    Case("kick_joined_invited_knocking", "modroom", (
        ok(BOB, DAN, LEAVE),  # kick a joined member
        ok(BOB, FAY, INVITE),
        ok(BOB, FAY, LEAVE),  # revoke an invite
        rule(JoinRule.KNOCK),
        ok(FAY, FAY, KNOCK),
        ok(CAT, FAY, LEAVE),  # decline a knock
    )),
    Case("kick_joined_invited_and_knocking_targets", "room", (
        add(CAT),
        ok(ANA, CAT, LEAVE),  # kick a joined user
        ok(ANA, EVE, INVITE),
        ok(ANA, EVE, LEAVE),  # revoke an invite
        rule(JoinRule.KNOCK),
        ok(DAN, DAN, KNOCK),
        ok(ANA, DAN, LEAVE),  # decline a knock
    ), hub=True),
    Case("kick_refused_for_a_target_not_in_the_room", "modroom", (
        no(BOB, FAY, LEAVE, r"m\.0 kick: target @fay:f2\.test is not joined, invited or knocking"),
        ok(DAN, DAN, LEAVE),
        no(BOB, DAN, LEAVE, r"m\.0 kick: .*\(leave\)"),
    )),
    Case("kick_refused_for_a_target_not_in_the_room_creator_phase", "room", (
        no(ANA, CAT, LEAVE, r"m\.0 kick: target @cat:f1\.test is not joined, invited or knocking \(no participation\)"),
        add(CAT),
        ok(CAT, CAT, LEAVE),
        no(ANA, CAT, LEAVE, r"m\.0 kick: target @cat:f1\.test is not joined, invited or knocking \(leave\)"),
    )),
    Case("kick_refused_without_the_kick_permission", "modroom", (
        no(DAN, EVE, LEAVE, r"m\.0 kick: @dan:f1\.test lacks the kick permission"),
    ), hub=True),
    Case("kick_refused_for_a_joined_non_creator_in_the_creator_phase", "room", (
        add(BOB),
        add(CAT),
        no(BOB, CAT, LEAVE, r"m\.0 kick: @bob:hub\.test lacks the kick permission"),
    )),
    Case("kick_refused_for_a_sender_who_is_not_joined", "modroom", (
        ok(BOB, BOB, LEAVE),
        no(BOB, DAN, LEAVE, r"m\.0 kick: sender @bob:hub\.test is not joined \(leave\)"),
    )),
    Case("kick_refused_at_an_equal_or_lower_level", "modroom", (
        no(BOB, CAT, LEAVE, r"m\.0 kick: .*power level for kick \(50\) is not above .*\(50\)"),
        no(BOB, ANA, LEAVE, r"\(50\) is not above @ana:hub\.test's \(100\)"),
        ok(ANA, BOB, LEAVE),  # higher kicks lower
    )),
    Case("kick_refused_at_an_equal_power_level", "modroom", (
        no(BOB, CAT, LEAVE, r"m\.0 kick: @bob:hub\.test's power level for kick \(50\) is not above @cat:f1\.test's \(50\)"),
        no(CAT, BOB, LEAVE, r"m\.0 kick: .*\(50\) is not above .*\(50\)"),
    ), hub=True),
    Case("kick_needs_a_strictly_higher_power_level", "modroom", (
        ok(CAT, DAN, LEAVE),  # mod (50) kicks a member without kick roles (no level)
        no(CAT, ANA, LEAVE, r"m\.0 kick: .*\(50\) is not above @ana:hub\.test's \(100\)"),
        ok(ANA, CAT, LEAVE),  # admin (100) kicks a mod (50)
    )),
    Case("kick_power_level_counts_roles_that_deny_kick", "modroom", (
        # eve gets a role at order 70 that *denies* kick: her level for kick is 70 all the same.
        role("stuck", kick=False),
        role_map(*MODROOM_MAP, ("stuck", [EVE], 70)),
        no(BOB, EVE, LEAVE, r"m\.0 kick: .*\(50\) is not above @eve:f2\.test's \(70\)"),
        ok(ANA, EVE, LEAVE),
    )),
    Case("kick_refused_for_the_creator_without_a_role_after_the_phase", "room", (
        add(CAT),
        role("mod", kick=True),
        role_map(("mod", [CAT], 5)),  # the creator is not in the map
        no(ANA, CAT, LEAVE, r"m\.0 kick: @ana:hub\.test lacks the kick permission"),
        ok(CAT, ANA, LEAVE),
    )),
    # --- ban (policy draft "Ban Conditions": the sender joined, with the ban permission;
    # nothing about the target, so no power check -- PROFILE.md section 6)
    Case("ban_allowed_for_any_participation", "modroom", (
        ok(BOB, DAN, BAN),
        ok(BOB, FAY, BAN),  # pre-emptive ban of a stranger
        joined(DAN, False),
    )),
    Case("ban_any_participation", "room", (
        add(CAT),
        ok(ANA, CAT, BAN),  # joined
        ok(ANA, EVE, INVITE),
        ok(ANA, EVE, BAN),  # invited
        ok(ANA, FAY, BAN),  # never in the room
        ok(ANA, FAY, BAN),  # already banned
    ), hub=True),
    Case("ban_refused_without_permission_or_membership", "modroom", (
        no(DAN, EVE, BAN, r"m\.0 ban: @dan:f1\.test lacks the ban permission"),
        no(FAY, EVE, BAN, r"m\.0 ban: sender @fay:f2\.test is not joined"),
        ok(BOB, BOB, LEAVE),
        no(BOB, EVE, BAN, r"m\.0 ban: sender @bob:hub\.test is not joined \(leave\)"),
    ), hub=True),
    Case("ban_has_no_power_check_draft_ban_conditions", "modroom", (
        ok(BOB, CAT, BAN),  # a mod (50) bans an equal mod
        ok(BOB, ANA, BAN),  # and the admin (100)
    )),
    Case("ban_at_an_equal_power_level", "modroom", (
        ok(BOB, CAT, BAN),
        ok(ANA, BOB, BAN),
    )),
    Case("ban_of_oneself_draft_ban_conditions", "modroom", (
        # PROFILE.md section 6: "a ban may target any user"
        ok(ANA, ANA, BAN),
        ok(BOB, BOB, BAN),
        no(BOB, DAN, BAN, r"m\.0 ban: sender @bob:hub\.test is not joined \(ban\)"),
    )),
    Case("ban_of_a_banned_or_left_user_draft_ban_conditions", "modroom", (
        # "a ban may target any user, whatever their level or participation" (PROFILE.md 6)
        ok(BOB, DAN, BAN),
        ok(CAT, DAN, BAN),
        ok(EVE, EVE, LEAVE),
        ok(CAT, EVE, BAN),
    )),
    # --- unban
    Case("unban_needs_ban_permission_and_power", "modroom", (
        # cat (mod) bans; bob (mod, the same level as cat) cannot unban cat; ana (admin) can.
        ok(CAT, FAY, BAN),
        ok(BOB, FAY, LEAVE),  # fay has no level: unban by a mod works
        ok(ANA, CAT, BAN),
        no(BOB, CAT, LEAVE, r"m\.0 unban: .*power level for ban \(50\) is not above .*\(50\)"),
        no(DAN, CAT, LEAVE, r"m\.0 unban: @dan:f1\.test lacks the ban permission"),
        ok(ANA, CAT, LEAVE),
    )),
    Case("unban_with_kick_but_no_ban_permission", "room", (
        add(BOB),
        add(DAN),
        role("top", ban=True),
        role("kicker", kick=True, ban=False),
        role_map(("top", [ANA], 10), ("kicker", [BOB], 5)),
        ok(ANA, DAN, BAN),
        no(BOB, DAN, LEAVE, r"m\.0 unban: @bob:hub\.test lacks the ban permission"),
    )),
    Case("unban_needs_the_ban_permission_and_a_higher_ban_level", "modroom", (
        # kicker: kick at 90, no ban at all; banlow: ban at 20 (below the mods' 50).
        role("kicker", kick=True),
        role("banlow", ban=True, kick=True),
        ok(ANA, FAY, INVITE),
        ok(FAY, FAY, JOIN),
        role_map(*MODROOM_MAP, ("kicker", [DAN], 90), ("banlow", [FAY], 20)),
        ok(BOB, EVE, BAN),  # eve has no ban level
        ok(ANA, CAT, BAN),  # cat keeps her mod role (ban level 50) while banned
        # dan may kick but not ban: he cannot unban, whatever his kick level.
        no(DAN, EVE, LEAVE, r"m\.0 unban: @dan:f1\.test lacks the ban permission"),
        # fay may ban at 20: enough for eve (no level), not for cat (50).
        no(FAY, CAT, LEAVE, r"m\.0 unban: @fay:f2\.test's power level for ban \(20\) is not above @cat:f1\.test's \(50\)"),
        # bob's ban level equals cat's.
        no(BOB, CAT, LEAVE, r"m\.0 unban: .*\(50\) is not above .*\(50\)"),
        ok(FAY, EVE, LEAVE),
        ok(ANA, CAT, LEAVE),
    ), hub=True),
    Case("unban_refused_for_a_sender_who_is_not_joined", "room", (
        ok(ANA, CAT, BAN),
        no(DAN, CAT, LEAVE, r"m\.0 unban: sender @dan:f1\.test is not joined"),
    ), hub=True),
)

PARTICIPATION_HUB = tuple(case for case in PARTICIPATION if case.hub)


# --- history visibility (policy draft "Event/History Visibility", PROFILE.md section 6) -----
#
# A case places one message M (sent by the creator) among visibility changes and one user's
# participation changes, and says whether that user sees M.  ``None``: the user's server has
# no user in the room at all, so it may not read the room (it is not world-readable); the user
# does not see M.  In every case the user's server has no other user in the room, so the
# server's verdict is the user's.


@dataclass(frozen=True)
class VisibilityCase:
    id: str
    steps: Tuple[Step, ...]  # ("vis", v), ("invite"|"join"|"add"|"leave"|"knock"|"ban", user), ("msg",)
    user: str
    sees: Optional[bool]
    hub: bool = False  # in the hub's sample too


class VisibilityDriver(Protocol):
    def visibility(self, visibility: Any) -> Any: ...

    def user(self, sender: str, target: str, participation: Participation) -> Any: ...

    def add(self, user: str) -> Any: ...

    def join_rule(self, rule: JoinRule) -> Any: ...

    def message(self, sender: str) -> Any: ...


def run_visibility_case(driver: VisibilityDriver, case: VisibilityCase) -> Any:
    """Play the steps; returns M (what ``driver.message`` returned)."""
    message = None
    for step in case.steps:
        kind = step[0]
        if kind == "msg":
            assert message is None
            message = driver.message(ANA)
        elif kind == "vis":
            driver.visibility(step[1])
        elif kind == "invite":
            driver.user(ANA, step[1], INVITE)
        elif kind == "join":
            driver.user(step[1], step[1], JOIN)
        elif kind == "add":
            driver.add(step[1])
        elif kind == "leave":
            driver.user(step[1], step[1], LEAVE)
        elif kind == "knock":
            driver.join_rule(JoinRule.KNOCK)
            driver.user(step[1], step[1], KNOCK)
        elif kind == "ban":
            driver.user(ANA, step[1], BAN)
        else:  # pragma: no cover
            raise AssertionError(step)
    assert message is not None
    return message


def _visibility_grid() -> Tuple[VisibilityCase, ...]:
    from mimi_signaling.content import Visibility

    W, S, J, I = Visibility.WORLD, Visibility.SHARED, Visibility.JOINED, Visibility.INVITED
    M = ("msg",)
    # scenario -> (cat's (f1) participation around M, {visibility: cat sees M})
    scenarios = {
        "joined_before": ((("add", CAT), M), {W: True, S: True, J: True, I: True}),
        "joined_after": ((M, ("add", CAT)), {W: True, S: True, J: False, I: False}),
        "never": ((M,), {W: True, S: None, J: None, I: None}),
        "invited_at_the_time": ((("invite", CAT), M), {W: True, S: False, J: False, I: True}),
        "invited_then_joined": ((("invite", CAT), M, ("join", CAT)), {W: True, S: True, J: False, I: True}),
        "left_before": ((("add", CAT), ("leave", CAT), M), {W: True, S: False, J: False, I: False}),
        "left_before_rejoined_after": (
            (("add", CAT), ("leave", CAT), M, ("add", CAT)), {W: True, S: True, J: False, I: False}),
        "joined_then_left": ((("add", CAT), M, ("leave", CAT)), {W: True, S: True, J: True, I: True}),
        "knocking_at_the_time": ((("knock", CAT), M), {W: True, S: False, J: False, I: False}),
        "banned_at_the_time": ((("ban", CAT), M), {W: True, S: False, J: False, I: False}),
    }
    grid = tuple(
        VisibilityCase(f"{name}-{v.name.lower()}", (("vis", v), *steps), CAT, sees, hub=True)
        for name, (steps, table) in scenarios.items()
        for v, sees in table.items()
    )
    extra = (
        VisibilityCase("default_is_shared_joined_later", (M, ("add", CAT)), CAT, True),
        VisibilityCase("default_shared_joined_then_banned_at_the_time", (("add", CAT), ("ban", CAT), M), CAT, False),
        VisibilityCase("invited_at_the_time_left_after", (("vis", I), ("invite", CAT), M, ("leave", CAT)), CAT, True),
        VisibilityCase("not_retroactive_joined_at_p_world_later", (("vis", J), M, ("vis", W), ("add", CAT)), CAT, False),
        VisibilityCase("not_retroactive_world_at_p_joined_later", (("vis", W), M, ("vis", J)), CAT, True),
        VisibilityCase("not_retroactive_shared_at_p_joined_later", (M, ("vis", J), ("add", CAT)), CAT, True),
        VisibilityCase("the_sender_sees", (("vis", J), M), ANA, True),
    )
    return grid + extra


VISIBILITY: Tuple[VisibilityCase, ...] = _visibility_grid()
VISIBILITY_HUB = tuple(case for case in VISIBILITY if case.hub)
