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

from mimi_signaling import PolicyRejectedError
from mimi_signaling.content import JoinRule, Participation, Visibility

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


def role(role_id: str, sender: Optional[str] = None, **permissions: Any) -> Step:
    """``sender`` (default: the creator) sends ``m.room.role`` ``role_id``
    (``content.role_content`` arguments): accepted."""
    return ("role", role_id, permissions, sender)


def role_map(*configs: Tuple[str, Sequence[str], int], sender: Optional[str] = None) -> Step:
    """``sender`` (default: the creator) sends this ``m.room.role_map``: accepted."""
    return ("map", configs, sender)


def send(sender: str, event_type: str, state_key: Optional[str], content: bytes) -> Step:
    """Any event: accepted."""
    return ("send", sender, event_type, state_key, content)


def refuse(
    sender: str, event_type: str, state_key: Optional[str], content: bytes, match: str, exc: type = PolicyRejectedError
) -> Step:
    """Any event: refused with ``exc`` matching ``match``; nothing changes."""
    return ("refuse", sender, event_type, state_key, content, match, exc)


def message(sender: str) -> Step:
    """An ``m.room.encrypted`` message: accepted."""
    return ("message", sender)


def visibility(value: Visibility) -> Step:
    """The creator sets the history visibility."""
    return ("vis", value)


def creator_phase(expected: bool) -> Step:
    """Whether the room is still in the creator phase (no ``m.room.role_map`` yet)."""
    return ("creator_phase", expected)


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

    def role(self, role_id: str, sender: Optional[str] = None, **permissions: Any) -> Any: ...

    def role_map(self, configs: Sequence[Tuple[str, Sequence[str], int]], sender: Optional[str] = None) -> Any: ...

    def send(self, sender: str, event_type: str, state_key: Optional[str], content: bytes) -> Any: ...

    def refuse(
        self, sender: str, event_type: str, state_key: Optional[str], content: bytes, match: str, exc: type
    ) -> Any: ...

    def message(self, sender: str) -> Any: ...

    def visibility(self, visibility: Visibility) -> Any: ...

    def participation(self, user: str) -> Optional[Participation]: ...

    def joined_users(self) -> Any: ...

    def creator_phase(self) -> bool: ...


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
            driver.role(args[0], args[2], **args[1])
        elif kind == "map":
            driver.role_map(list(args[0]), args[1])
        elif kind == "send":
            driver.send(*args)
        elif kind == "refuse":
            driver.refuse(*args)
        elif kind == "message":
            driver.message(args[0])
        elif kind == "vis":
            driver.visibility(args[0])
        elif kind == "joined":
            assert (args[0] in driver.joined_users()) is args[1]
        elif kind == "creator_phase":
            assert driver.creator_phase() is args[0]
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
    def visibility(self, visibility: Visibility) -> Any: ...

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


# --- roles: the creator phase, sending permission and the role-change rule (policy draft
# "Event Sending Permissions" and "Calculating Permissions"; PROFILE.md section 6: an
# ``m.room.role`` for R, or a role map that adds, removes or changes R, needs the ``events``
# permission for the type and R in the sender's resolved ``roles``) -------------------------

_ENC, _NAME, _TOPIC = "m.room.encrypted", "m.room.name", "m.room.topic"
_ROLE, _MAP = "m.room.role", "m.room.role_map"


def _text(value: bytes) -> bytes:
    from mimi_signaling.content import text_content

    return text_content(value)


def _roles(**permissions: Any) -> bytes:
    from mimi_signaling.content import role_content

    return role_content(**permissions)


def _map(configs: Sequence[Tuple[str, Sequence[str], int]]) -> bytes:
    from mimi_signaling.content import role_map_content

    return role_map_content(list(configs))


#: owner (ana) may affect mod and member; mod (bob) may affect member; member (cat) may talk.
ROLED_MAP = (("owner", [ANA], 100), ("mod", [BOB], 50), ("member", [CAT], 1))
ROLED: Tuple[Step, ...] = (
    add(BOB),
    add(CAT),
    add(DAN),
    role("owner", events=[(_ROLE, True), (_MAP, True), (_ENC, True)], roles=["mod", "member"]),
    role("mod", events=[(_MAP, True)], roles=["member"]),
    role("member", events=[(_ENC, True)]),
    role_map(*ROLED_MAP),
)

#: admin (ana) may affect every role but itself; mod (bob) may affect helper; nolist (dan) may
#: send role events but lists no role; noevents (eve) lists helper but may not send role
#: events; lowlist (bob, order 5) lists nolist, below mod's list.
_RP = [(_ROLE, True), (_MAP, True)]
ROLEROOM_MAP = (
    ("admin", [ANA], 100),
    ("mod", [BOB], 50),
    ("nolist", [DAN], 20),
    ("noevents", [EVE], 15),
    ("helper", [CAT], 10),
    ("lowlist", [BOB], 5),
)
ROLEROOM: Tuple[Step, ...] = (
    add(BOB),
    add(CAT),
    add(DAN),
    add(EVE),
    role("admin", events=_RP, roles=["mod", "nolist", "noevents", "helper", "lowlist", "extra", "muzzle"]),
    role("mod", events=_RP, roles=["helper"]),
    role("nolist", events=_RP),
    role("noevents", roles=["helper"]),
    role("helper", invite=True),
    role("lowlist", roles=["nolist"]),
    role_map(*ROLEROOM_MAP),
)
SETUPS.update(roled=ROLED, roleroom=ROLEROOM)


def _roleroom_map(*changes: Tuple[str, Sequence[str], int], drop: Sequence[str] = ()) -> list:
    """ROLEROOM_MAP with configs replaced/added by role ID and some dropped."""
    configs = {r: (r, users, order) for r, users, order in ROLEROOM_MAP}
    for config in changes:
        configs[config[0]] = config
    return [c for r, c in configs.items() if r not in drop]


def wire_vec(data: bytes) -> bytes:
    """A varint length prefix and ``data`` (the wire's vector encoding)."""
    from mimi_signaling.wire import encode_varint

    return encode_varint(len(data)) + data


def raw_role_map_content(configs: Sequence[Tuple[str, Sequence[str], int]]) -> bytes:
    """The wire form of a role map, encoded by hand so that it may break the validity rules
    (the core's encoder refuses duplicate role IDs and orders)."""
    body = b"".join(
        wire_vec(role.encode()) + wire_vec(b"".join(wire_vec(u.encode()) for u in users)) + order.to_bytes(4, "big")
        for role, users, order in configs
    )
    return wire_vec(body)


def _creator_only(event_type: str) -> str:
    return rf"m\.0 send {event_type.replace('.', '[.]')}: before the room has an m\.room\.role_map only the creator may send state events"


def _role_cases() -> Tuple[Case, ...]:
    from mimi_signaling import MalformedError, MimiError
    from mimi_signaling.content import create_content, history_visibility_content, join_rules_content

    W, J = Visibility.WORLD, Visibility.JOINED
    return (
        # --- the creator phase
        Case("creator_holds_every_permission_before_the_role_map", "room", (
            creator_phase(True),
            add(BOB),
            send(ANA, _NAME, "", _text(b"A room")),
            send(ANA, "org.example.pin", "", b"pinned"),  # a custom state type
            ok(ANA, CAT, INVITE),
            ok(ANA, CAT, LEAVE),  # kick (revoke)
            ok(ANA, BOB, BAN),
            ok(ANA, BOB, LEAVE),  # unban
            role("anything", invite=True),
        )),
        Case("creator_can_do_everything_before_a_role_map", "room", (
            add(BOB),
            add(CAT),
            send(ANA, _NAME, "", _text(b"name")),
            send(ANA, _TOPIC, "", _text(b"topic")),
            rule(JoinRule.KNOCK),
            visibility(J),
            send(ANA, "org.example.custom_state", "k", b"opaque"),
            role("anything", ban=True),
            message(ANA),
            ok(ANA, EVE, INVITE),
            ok(ANA, EVE, LEAVE),
            ok(ANA, CAT, BAN),
        ), hub=True),
        Case("other_joined_users_may_send_non_state_events_only", "room", (
            add(BOB),
            message(BOB),
            send(BOB, "org.example.reaction", None, b"+1"),  # custom non-state type
            refuse(BOB, _NAME, "", _text(b"mine"), "only the creator may send state events"),
            refuse(BOB, "org.example.pin", "", b"x", "only the creator may send state events"),
            refuse(BOB, _ROLE, "r", _roles(invite=True), "only the creator"),
            refuse(BOB, _MAP, "", _map([("r", [BOB], 1)]), "only the creator"),
            no(BOB, CAT, INVITE, r"m\.0 invite: @bob:hub\.test lacks the invite permission"),
            no(BOB, ANA, LEAVE, "lacks the kick permission"),
            no(BOB, ANA, BAN, "lacks the ban permission"),
            ok(BOB, BOB, LEAVE),  # own participation is always the participation rules' call
        )),
        Case("others_only_send_non_state_events_while_joined", "room", (
            add(BOB),
            add(CAT),
            message(BOB),
            message(CAT),
            send(CAT, "org.example.chat", None, b"custom non-state"),
            refuse(CAT, _NAME, "", _text(b"cat's room"), _creator_only(_NAME)),
            refuse(CAT, "m.room.join_rules", "", join_rules_content(JoinRule.PUBLIC), _creator_only("m.room.join_rules")),
            refuse(CAT, "m.room.history_visibility", "", history_visibility_content(W),
                   _creator_only("m.room.history_visibility")),
            refuse(CAT, _ROLE, "mod", _roles(kick=True), _creator_only(_ROLE)),
            refuse(CAT, _MAP, "", _map([("mod", [CAT], 1)]), _creator_only(_MAP)),
            refuse(CAT, "org.example.custom_state", "", b"x", _creator_only("org.example.custom_state")),
            # not joined: invited, or never in the room
            ok(ANA, EVE, INVITE),
            refuse(EVE, _ENC, None, b"hi", r"m\.0 send m\.room\.encrypted: sender @eve:f2\.test is not joined \(invite\)"),
            refuse(FAY, _ENC, None, b"hi",
                   r"m\.0 send m\.room\.encrypted: sender @fay:f2\.test is not joined \(no participation\)"),
        ), hub=True),
        Case("non_joined_users_cannot_send", "room", (
            ok(ANA, BOB, INVITE),
            refuse(BOB, _ENC, None, b"x", r"m\.0 send m\.room\.encrypted: sender @bob:hub\.test is not joined \(invite\)"),
            refuse(CAT, _ENC, None, b"x", r"is not joined \(no participation\)"),
            ok(ANA, ANA, LEAVE),
            refuse(ANA, _NAME, "", _text(b"x"), r"sender @ana:hub\.test is not joined \(leave\)"),
        )),
        Case("role_map_ends_the_creator_phase", "room", (
            add(BOB),
            role("chat", events=[(_ENC, True)]),
            role_map(("chat", [BOB], 1)),  # the creator gives herself nothing
            creator_phase(False),
            message(BOB),
            refuse(ANA, _ENC, None, b"x", r"@ana:hub\.test lacks the events permission for m\.room\.encrypted"),
            refuse(ANA, _NAME, "", _text(b"x"), r"lacks the events permission for m\.room\.name"),
            no(ANA, BOB, LEAVE, "lacks the kick permission"),
            ok(ANA, ANA, LEAVE),
        )),
        Case("the_first_role_map_ends_the_creator_phase", "room", (
            add(CAT),
            role_map(),  # even an empty map
            creator_phase(False),
            refuse(ANA, _NAME, "", _text(b"n"), r"m\.0 send m\.room\.name: @ana:hub\.test lacks the events permission for m\.room\.name"),
            refuse(ANA, _ENC, None, b"hi", r"m\.0 send m\.room\.encrypted: @ana:hub\.test lacks the events permission"),
            refuse(CAT, _ENC, None, b"hi", r"m\.0 send m\.room\.encrypted: @cat:f1\.test lacks the events permission"),
            no(ANA, EVE, INVITE, r"m\.0 invite: @ana:hub\.test lacks the invite permission"),
            # users may still send their own m.room.user events as the participation rules allow
            ok(CAT, CAT, LEAVE),
            no(CAT, CAT, JOIN, r"m\.0 join: join rule is invite"),
        ), hub=True),
        Case("user_without_role_cannot_send_after_role_map", "room", (
            add(BOB),
            role("admin", events=[(_ENC, True)]),
            role_map(("admin", [ANA], 10)),
            message(ANA),
            refuse(BOB, _ENC, None, b"x", r"lacks the events permission for m\.room\.encrypted"),
        )),
        Case("a_creator_who_keeps_a_role_keeps_only_what_it_grants", "room", (
            role("admin", events=[(_NAME, True), (_ROLE, True)], roles=["admin"]),
            role_map(("admin", [ANA], 1)),
            send(ANA, _NAME, "", _text(b"name")),
            role("admin", events=[(_NAME, True), (_ROLE, True), (_ENC, True)], roles=["admin"]),
            message(ANA),
            refuse(ANA, _TOPIC, "", _text(b"t"), r"lacks the events permission for m\.room\.topic"),
            refuse(ANA, _MAP, "", _map([("admin", [ANA], 2)]), r"lacks the events permission for m\.room\.role_map"),
        )),
        Case("a_second_create_event_is_refused", "room", (
            refuse(ANA, "m.room.create", "", create_content("m.0", "org.example.plaintext"), r"m\.room\.create", MimiError),
        ), hub=True),
        # --- role-map validity (after the shape check, before the policy)
        Case("duplicate_role_ids_are_rejected", "room", (
            refuse(ANA, _MAP, "", raw_role_map_content([("mod", [CAT], 1), ("mod", [DAN], 2)]),
                   r"role_map.*\"?mod\"? twice", MalformedError),
            creator_phase(True),  # still the creator phase
            send(ANA, _NAME, "", _text(b"name")),
        ), hub=True),
        Case("duplicate_orders_are_rejected", "room", (
            refuse(ANA, _MAP, "", raw_role_map_content([("mod", [CAT], 7), ("admin", [ANA], 7)]),
                   r"role_map.*order 7 twice", MalformedError),
            role_map(("mod", [CAT], 7), ("admin", [ANA], 8)),  # distinct: fine
        )),
        Case("invalid_role_map_rejected_after_the_phase_too", "room", (
            role("admin", events=[(_MAP, True)], roles=["admin", "mod"]),
            role_map(("admin", [ANA], 10)),
            refuse(ANA, _MAP, "", raw_role_map_content([("admin", [ANA], 10), ("mod", [], 10)]), r"order 10 twice",
                   MalformedError),
            refuse(ANA, _MAP, "", raw_role_map_content([("admin", [ANA], 10), ("admin", [], 3)]), r"twice",
                   MalformedError),
        )),
        # --- role changes (roled: owner / mod / member)
        Case("role_event_needs_the_role_in_the_roles_list", "roled", (
            role("mod", events=[(_MAP, True)], roles=["member"], invite=True),
            role("member", events=[(_ENC, False)]),
            refuse(ANA, _ROLE, "owner", _roles(invite=True),
                   r"m\.0 m\.room\.role: role 'owner' is not in @ana:hub\.test's roles permission"),
            refuse(ANA, _ROLE, "fresh", _roles(invite=True), "role 'fresh' is not in"),
        )),
        Case("role_event_needs_the_events_permission", "roled", (
            refuse(BOB, _ROLE, "member", _roles(invite=True), r"@bob:hub\.test lacks the events permission for m\.room\.role"),
        )),
        Case("role_map_changes_need_each_role_in_the_roles_list", "roled", (
            # bob may add dan to member (member is in his list)...
            role_map(("owner", [ANA], 100), ("mod", [BOB], 50), ("member", [CAT, DAN], 1), sender=BOB),
            message(DAN),
            # ... but not himself to owner, nor change mod's order, nor add or remove other roles.
            refuse(BOB, _MAP, "", _map([("owner", [ANA, BOB], 100), ("mod", [BOB], 50), ("member", [CAT, DAN], 1)]),
                   r"m\.0 m\.room\.role_map: role 'owner' is not in @bob:hub\.test's roles permission"),
            refuse(BOB, _MAP, "", _map([("owner", [ANA], 100), ("mod", [BOB], 60), ("member", [CAT, DAN], 1)]),
                   "role 'mod' is not in"),
            refuse(BOB, _MAP, "", _map([*ROLED_MAP, ("extra", [BOB], 7)]), "role 'extra' is not in"),
            refuse(BOB, _MAP, "", _map([("mod", [BOB], 50), ("member", [CAT, DAN], 1)]), "role 'owner' is not in"),
            # Removing member (in his list) is fine.
            role_map(("owner", [ANA], 100), ("mod", [BOB], 50), sender=BOB),
            refuse(CAT, _ENC, None, b"x", "lacks the events permission"),
        )),
        Case("role_map_reordering_is_not_a_change", "roled", (
            # Another list order and another order of user IDs: no role's config changed.
            role_map(("member", [CAT], 1), ("mod", [BOB], 50), ("owner", [ANA], 100), sender=BOB),
            role_map(("member", [CAT, DAN], 1), ("mod", [BOB], 50), ("owner", [ANA], 100), sender=BOB),
            role_map(("member", [DAN, CAT], 1), ("mod", [BOB], 50), ("owner", [ANA], 100), sender=BOB),
        )),
        Case("role_map_needs_the_events_permission", "roled", (
            refuse(CAT, _MAP, "", _map([("owner", [ANA], 100), ("mod", [BOB], 50), ("member", [CAT, DAN], 1)]),
                   r"@cat:f1\.test lacks the events permission for m\.room\.role_map"),
        )),
        # --- role changes (roleroom: admin / mod / nolist / noevents / helper / lowlist)
        Case("role_event_for_a_role_in_the_roles_list", "roleroom", (
            role("helper", sender=BOB, invite=True, kick=True),
            role("mod", sender=ANA, events=_RP, roles=["helper", "nolist"]),
            role("nolist", sender=BOB, events=_RP),  # bob's list now names nolist
        ), hub=True),
        Case("role_event_refused_outside_the_roles_list", "roleroom", (
            refuse(BOB, _ROLE, "mod", _roles(ban=True), r"m\.0 m\.room\.role: role 'mod' is not in @bob:hub\.test's roles permission"),
            refuse(BOB, _ROLE, "admin", _roles(ban=True), r"m\.0 m\.room\.role: role 'admin' is not in"),
            refuse(ANA, _ROLE, "admin", _roles(ban=True), r"m\.0 m\.room\.role: role 'admin' is not in @ana:hub\.test's"),
            refuse(BOB, _ROLE, "brand_new", _roles(), r"role 'brand_new' is not in"),
        ), hub=True),
        Case("role_event_refused_without_a_roles_list", "roleroom", (
            refuse(DAN, _ROLE, "helper", _roles(), r"m\.0 m\.room\.role: role 'helper' is not in @dan:f1\.test's roles permission"),
        )),
        Case("role_event_refused_without_the_events_permission", "roleroom", (
            refuse(EVE, _ROLE, "helper", _roles(), r"m\.0 send m\.room\.role: @eve:f2\.test lacks the events permission for m\.room\.role"),
            refuse(EVE, _MAP, "", _map(_roleroom_map(("helper", [CAT, DAN], 10))),
                   r"m\.0 send m\.room\.role_map: @eve:f2\.test lacks the events permission"),
        ), hub=True),
        Case("roles_list_comes_from_the_highest_order_role_defining_it", "roleroom", (
            # bob: mod (50, roles [helper]) and lowlist (5, roles [nolist]): only [helper] counts.
            refuse(BOB, _ROLE, "nolist", _roles(), r"role 'nolist' is not in @bob:hub\.test's"),
            refuse(BOB, _MAP, "", _map(_roleroom_map(("nolist", [DAN, FAY], 20))), r"m\.0 m\.room\.role_map: role 'nolist' is not in"),
        )),
        Case("events_permission_denied_by_a_higher_role", "roleroom", (
            role("muzzle", events=[(_ROLE, False)]),
            role_map(*_roleroom_map(("muzzle", [BOB], 60))),
            refuse(BOB, _ROLE, "helper", _roles(), r"m\.0 send m\.room\.role: @bob:hub\.test lacks the events permission for m\.room\.role"),
            role_map(*_roleroom_map(("muzzle", [BOB], 60), ("helper", [CAT, DAN], 10)), sender=BOB),
        )),
        Case("role_map_changes_inside_the_roles_list", "roleroom", (
            role_map(*_roleroom_map(("helper", [CAT, DAN], 10)), sender=BOB),  # users changed
            role_map(*_roleroom_map(("helper", [CAT, DAN], 11)), sender=BOB),  # order changed
            role_map(*_roleroom_map(drop=("helper",)), sender=BOB),  # removed
            role_map(*_roleroom_map(("helper", [FAY], 12)), sender=BOB),  # added back
            creator_phase(False),
        ), hub=True),
        Case("role_map_changes_outside_the_roles_list", "roleroom", (
            refuse(BOB, _MAP, "", _map(_roleroom_map(("extra", [CAT], 70))),
                   r"m\.0 m\.room\.role_map: role 'extra' is not in @bob:hub\.test's roles permission"),
            refuse(BOB, _MAP, "", _map(_roleroom_map(drop=("nolist",))), r"role 'nolist' is not in"),
            refuse(BOB, _MAP, "", _map(_roleroom_map(("mod", [BOB, CAT], 50))), r"role 'mod' is not in"),
            refuse(BOB, _MAP, "", _map(_roleroom_map(("mod", [BOB], 51))), r"role 'mod' is not in"),
            # one allowed change plus one forbidden one: refused as a whole
            refuse(BOB, _MAP, "", _map(_roleroom_map(("helper", [CAT, DAN], 10), ("admin", [ANA, BOB], 100))),
                   r"role 'admin' is not in"),
            refuse(DAN, _MAP, "", _map(_roleroom_map(("helper", [CAT, DAN], 10))), r"role 'helper' is not in @dan:f1\.test's"),
        ), hub=True),
        Case("role_map_reordering_changes_no_role", "roleroom", (
            # dan lists no role at all, yet may resend the same configs in another order
            # (decision: only the set of users and the order of a role count as its config).
            role_map(*[(r, list(reversed(users)), order) for r, users, order in reversed(ROLEROOM_MAP)], sender=DAN),
            role_map(*ROLEROOM_MAP, sender=DAN),
        ), hub=True),
        Case("admin_adds_a_role_and_its_holder_gains_it", "roleroom", (
            role("extra", sender=ANA, invite=True),
            no(DAN, FAY, INVITE, r"m\.0 invite: @dan:f1\.test lacks the invite permission"),
            role_map(*_roleroom_map(("extra", [DAN], 30))),
            ok(DAN, FAY, INVITE),
            ok(FAY, FAY, JOIN),
        )),
    )


ROLES: Tuple[Case, ...] = _role_cases()
ROLES_HUB = tuple(case for case in ROLES if case.hub)
