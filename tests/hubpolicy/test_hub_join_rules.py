"""Join rules (invite, knock, public) against every participation a user can hold, for the
transitions the rule governs (join, knock) and for an invite, through ``Hub.accept``.

The tables are written out by hand from the policy draft ("Join Conditions", "Knock
Conditions", "Invite Conditions") rather than computed, so they check the library's reading
instead of restating it."""

from __future__ import annotations

from typing import Optional

import pytest

from support.hubpolicykit import ANA, BAN, CAT, INVITE, JOIN, KNOCK, LEAVE, HubRoom
from mimi_signaling.content import M_ROOM_JOIN_RULES, JoinRule, Participation, join_rules_content

I, K, P = JoinRule.INVITE, JoinRule.KNOCK, JoinRule.PUBLIC
NONE = None

# (rule, cat's participation before) -> (join allowed, knock allowed)
TABLE = {
    (I, NONE): (False, False),
    (I, INVITE): (True, False),
    (I, JOIN): (True, False),
    (I, LEAVE): (False, False),
    (I, KNOCK): (False, False),
    (I, BAN): (False, False),
    (K, NONE): (False, True),
    (K, INVITE): (True, True),
    (K, JOIN): (True, False),
    (K, LEAVE): (False, True),
    (K, KNOCK): (False, True),
    (K, BAN): (False, False),
    (P, NONE): (True, False),
    (P, INVITE): (True, False),
    (P, JOIN): (True, False),
    (P, LEAVE): (True, False),
    (P, KNOCK): (True, False),
    (P, BAN): (False, False),
}

# cat's participation before -> invite by the creator allowed (the join rule plays no part)
INVITE_TABLE = {NONE: True, INVITE: True, JOIN: False, LEAVE: True, KNOCK: True, BAN: False}


def _prepare(room: HubRoom, rule: JoinRule, before: Optional[Participation]) -> None:
    if before == INVITE:
        room.user(ANA, CAT, INVITE)
    elif before == JOIN:
        room.add(CAT)
    elif before == LEAVE:
        room.add(CAT)
        room.user(CAT, CAT, LEAVE)
    elif before == KNOCK:
        room.join_rule(JoinRule.KNOCK)
        room.user(CAT, CAT, KNOCK)
    elif before == BAN:
        room.user(ANA, CAT, BAN)
    if room.state.join_rule() != rule:
        room.join_rule(rule)
    assert room.state.join_rule() == rule
    assert room.participation(CAT) == before


def _label(value) -> str:
    return "none" if value is None else value.name.lower()


CASES = sorted(TABLE, key=lambda k: (int(k[0]), -1 if k[1] is None else int(k[1])))


@pytest.mark.parametrize("rule,before", CASES, ids=[f"{_label(r)}-{_label(b)}" for r, b in CASES])
def test_join_and_knock_under_each_join_rule(room: HubRoom, rule: JoinRule, before) -> None:
    join_ok, knock_ok = TABLE[(rule, before)]
    _prepare(room, rule, before)
    if join_ok:
        room.user(CAT, CAT, JOIN)
    else:
        room.refuse_user(CAT, CAT, JOIN, r"m\.0 join: ")
    # The knock from the same starting point, in a second room of the same hub.
    other = HubRoom(room.net)
    _prepare(other, rule, before)
    if knock_ok:
        other.user(CAT, CAT, KNOCK)
    else:
        other.refuse_user(CAT, CAT, KNOCK, r"m\.0 knock: ")


@pytest.mark.parametrize("rule", [I, K, P], ids=["invite", "knock", "public"])
@pytest.mark.parametrize("before", list(INVITE_TABLE), ids=[_label(b) for b in INVITE_TABLE])
def test_invite_does_not_depend_on_the_join_rule(room: HubRoom, rule: JoinRule, before) -> None:
    _prepare(room, rule, before)
    if INVITE_TABLE[before]:
        room.user(ANA, CAT, INVITE)
    else:
        room.refuse_user(ANA, CAT, INVITE, r"m\.0 invite: target @cat:f1\.test is (banned|already joined)")


def test_the_default_rule_is_invite(room: HubRoom) -> None:
    assert room.state.get(M_ROOM_JOIN_RULES, "") is None
    room.refuse_user(CAT, CAT, JOIN, r"m\.0 join: join rule is invite")
    room.refuse_user(CAT, CAT, KNOCK, r"m\.0 knock: join rule is invite, not knock")


def test_changing_the_join_rule_needs_the_events_permission(room: HubRoom) -> None:
    room.add(CAT)
    # creator phase: only the creator may send state events
    room.refuse(CAT, M_ROOM_JOIN_RULES, "", join_rules_content(P), r"m\.0 send m\.room\.join_rules: before the room has an m\.room\.role_map only the creator")
    room.role("doorman", events=[("m.room.join_rules", True)])
    room.role("admin", events=[("m.room.name", True)])
    room.role_map([("admin", [ANA], 10), ("doorman", [CAT], 5)])
    room.refuse(ANA, M_ROOM_JOIN_RULES, "", join_rules_content(P), r"m\.0 send m\.room\.join_rules: @ana:hub\.test lacks the events permission for m\.room\.join_rules")
    room.join_rule(P, sender=CAT)
    room.user("@eve:f2.test", "@eve:f2.test", JOIN)
