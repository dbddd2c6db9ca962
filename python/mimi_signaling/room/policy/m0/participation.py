"""``m.room.user`` transitions (policy draft "User Participation", PROFILE.md section 6).

Each check takes the state *before* the event and raises ``PolicyRejectedError`` naming the
rule.  Decisions where the draft is silent or open:

* kick: the target may be joined, invited (revoking the invite) or knocking (declining the
  knock); kicking a banned user is an unban, which needs ``ban`` and the power check on ``ban``.
* ban: exactly the draft's conditions ("The sender for a ban MUST: Already be in the joined
  state. Have permission to ban users."), as PROFILE.md section 6 pins: no power check and no
  refusal of any target, whatever its level or participation (the sender included).  A
  follower that added a condition would refuse what a conformant hub accepted.
* invite/ban/kick carry no permission in the creator phase except for the creator.
* No power check on invites (the draft has none; an invite gives the target nothing but the
  choice to join).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ...._core import PolicyRejectedError
from ....content import JoinRule, Participation, PermissionKind
from .permissions import user_permissions

if TYPE_CHECKING:
    from ...state import RoomState

__all__ = [
    "check_user_event",
    "check_invite",
    "check_join",
    "check_knock",
    "check_leave",
    "check_kick",
    "check_ban",
    "check_unban",
]

_INVITE = Participation.INVITE
_JOIN = Participation.JOIN
_LEAVE = Participation.LEAVE
_BAN = Participation.BAN
_KNOCK = Participation.KNOCK


def _name(participation: Optional[Participation]) -> str:
    return "no participation" if participation is None else participation.name.lower()


def _reject(rule: str, reason: str) -> PolicyRejectedError:
    return PolicyRejectedError(f"m.0 {rule}: {reason}")


def _require_joined(state: RoomState, rule: str, sender: str) -> None:
    if state.participation(sender) != _JOIN:
        raise _reject(rule, f"sender {sender} is not joined ({_name(state.participation(sender))})")


def _require_permission(state: RoomState, rule: str, sender: str, kind: PermissionKind) -> None:
    if not user_permissions(state, sender).granted(kind):
        raise _reject(rule, f"{sender} lacks the {kind.name.lower()} permission")


def _require_power(state: RoomState, rule: str, sender: str, target: str, kind: PermissionKind) -> None:
    sender_level = user_permissions(state, sender).level(kind)
    target_level = user_permissions(state, target).level(kind)
    if sender_level <= target_level:
        raise _reject(
            rule,
            f"{sender}'s power level for {kind.name.lower()} ({sender_level}) is not above "
            f"{target}'s ({target_level})",
        )


def check_invite(state: RoomState, sender: str, target: str) -> None:
    _require_joined(state, "invite", sender)
    _require_permission(state, "invite", sender, PermissionKind.INVITE)
    current = state.participation(target)
    if current == _BAN:
        raise _reject("invite", f"target {target} is banned")
    if current == _JOIN:
        raise _reject("invite", f"target {target} is already joined")


def check_join(state: RoomState, sender: str, target: str) -> None:
    if sender != target:
        raise _reject("join", f"sender {sender} cannot join for {target}")
    current = state.participation(target)
    rule = state.join_rule()
    if rule == JoinRule.PUBLIC:
        if current == _BAN:
            raise _reject("join", f"{target} is banned")
    elif current not in (_INVITE, _JOIN):
        raise _reject(
            "join", f"join rule is {rule.name.lower()} and {target} is not invited ({_name(current)})"
        )


def check_knock(state: RoomState, sender: str, target: str) -> None:
    if sender != target:
        raise _reject("knock", f"sender {sender} cannot knock for {target}")
    rule = state.join_rule()
    if rule != JoinRule.KNOCK:
        raise _reject("knock", f"join rule is {rule.name.lower()}, not knock")
    current = state.participation(target)
    if current == _BAN:
        raise _reject("knock", f"{target} is banned")
    if current == _JOIN:
        raise _reject("knock", f"{target} is already joined")


def check_leave(state: RoomState, sender: str, target: str) -> None:
    """A leave: voluntary when sender == target, else a kick (or an unban of a banned target)."""
    if sender != target:
        if state.participation(target) == _BAN:
            check_unban(state, sender, target)
        else:
            check_kick(state, sender, target)
        return
    current = state.participation(target)
    if current not in (_INVITE, _JOIN, _KNOCK):
        raise _reject("leave", f"{target} is not invited, joined or knocking ({_name(current)})")


def check_kick(state: RoomState, sender: str, target: str) -> None:
    if sender == target:
        raise _reject("kick", "a kick needs a target other than the sender")
    _require_joined(state, "kick", sender)
    current = state.participation(target)
    if current not in (_JOIN, _INVITE, _KNOCK):
        raise _reject("kick", f"target {target} is not joined, invited or knocking ({_name(current)})")
    _require_permission(state, "kick", sender, PermissionKind.KICK)
    _require_power(state, "kick", sender, target, PermissionKind.KICK)


def check_unban(state: RoomState, sender: str, target: str) -> None:
    """A leave for a banned target, sent by someone else."""
    _require_joined(state, "unban", sender)
    current = state.participation(target)
    if current != _BAN:
        raise _reject("unban", f"target {target} is not banned ({_name(current)})")
    _require_permission(state, "unban", sender, PermissionKind.BAN)
    _require_power(state, "unban", sender, target, PermissionKind.BAN)


def check_ban(state: RoomState, sender: str, target: str) -> None:
    """Policy draft "Ban Conditions": the sender is joined and has the ban permission; the
    target is not looked at (``target`` is kept for the dispatch signature)."""
    _require_joined(state, "ban", sender)
    _require_permission(state, "ban", sender, PermissionKind.BAN)


_CHECKS = {
    _INVITE: check_invite,
    _JOIN: check_join,
    _LEAVE: check_leave,
    _BAN: check_ban,
    _KNOCK: check_knock,
}


def check_user_event(state: RoomState, sender: str, target: str, participation: Participation) -> None:
    """Dispatch one ``m.room.user`` event to its transition rule."""
    _CHECKS[Participation(participation)](state, sender, target)
