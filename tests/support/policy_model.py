"""A plain, independent model of the m.0 policy, for the model-based hub test.

Written from draft-ralston-mimi-policy-00 and PROFILE.md section 6, plus the decisions the
library documents where both are open (creator phase ends with the first role map; the creator
may affect every role in that phase; kicks may target invited and knocking users; unbans need
``ban`` and the ban level; joining while joined, re-inviting and knocking while invited are
allowed; a role map "changes" role R when R is added, removed, or its order or *set* of users
differs; a role named by the map without an ``m.room.role`` event defines nothing).  A ban has
exactly the draft's conditions (sender joined, ``ban`` permission): any target at any level,
the sender too.  A role map listing one user twice in one role is malformed (section 6).  It
imports nothing of the library's policy code: only dicts, lists and the wire enums.

``verdict`` answers, for one submitted event, what the hub must do:
``("accept",)``, ``("existing",)`` (a byte-identical resubmit of the current state event: the
hub answers with the stored event and stores nothing), ``("reject", token)`` with the rule's
token that the refusal reason must contain, or ``("malformed", token)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

from mimi_signaling.content import JoinRule, Participation, Visibility

from support.m0_cases import BAN, INVITE, JOIN, KNOCK, LEAVE
ABOVE_ALL = float("inf")  # the creator's level in the creator phase
NO_LEVEL = -1  # a user with no role defining the permission: below every order (uint32 >= 0)


@dataclass(frozen=True)
class RoleDef:
    """One ``m.room.role`` content: None = the permission is not listed."""

    invite: Optional[bool] = None
    kick: Optional[bool] = None
    ban: Optional[bool] = None
    redact: Optional[bool] = None
    events: Optional[Tuple[Tuple[str, bool], ...]] = None  # records in wire order
    roles: Optional[Tuple[str, ...]] = None

    def defines(self, permission) -> bool:
        if isinstance(permission, tuple):  # ("events", type)
            return self.events is not None and any(t == permission[1] for t, _ in self.events)
        return getattr(self, permission) is not None

    def value(self, permission):
        if isinstance(permission, tuple):
            granted = None
            for event_type, flag in self.events or ():
                if event_type == permission[1]:
                    granted = flag  # the last record for a type wins
            return granted
        return getattr(self, permission)


RoleMap = Tuple[Tuple[str, Tuple[str, ...], int], ...]


def role_map_problem(configs: Sequence[Tuple[str, Sequence[str], int]]) -> Optional[str]:
    """The draft's validity rule (role IDs unique, orders distinct) and the profile's (no user
    twice in one role)."""
    ids = [c[0] for c in configs]
    orders = [c[2] for c in configs]
    if len(set(ids)) != len(ids):
        return "twice"
    if len(set(orders)) != len(orders):
        return "twice"
    if any(len(set(users)) != len(users) for _, users, _ in configs):
        return "twice"
    return None


def _configs(role_map: Optional[RoleMap]) -> Dict[str, Tuple[FrozenSet[str], int]]:
    return {rid: (frozenset(users), order) for rid, users, order in (role_map or ())}


class PolicyModel:
    def __init__(self, creator: str, hub: str) -> None:
        self.creator = creator
        self.hub = hub
        self.membership: Dict[str, Participation] = {creator: JOIN}
        self.join_rule = JoinRule.INVITE
        self.visibility = Visibility.SHARED
        self.role_map: Optional[RoleMap] = None
        self.roles: Dict[str, RoleDef] = {}
        #: (type, state_key) -> (sender, content) of the current state event
        self.current: Dict[Tuple[str, str], Tuple[str, bytes]] = {}
        #: per accepted event: (is_state, visibility in force, membership before it)
        self.log: List[Tuple[bool, Visibility, Dict[str, Participation]]] = [
            (True, Visibility.SHARED, {}),
            (True, Visibility.SHARED, {}),
        ]
        self.join_positions: Dict[str, List[int]] = {creator: [1]}

    # --- permissions ----------------------------------------------------------------------

    @property
    def creator_phase(self) -> bool:
        return self.role_map is None

    def _deciding_role(self, user: str, permission) -> Optional[Tuple[int, RoleDef]]:
        best: Optional[Tuple[int, RoleDef]] = None
        for role_id, users, order in self.role_map or ():
            if user not in users or role_id not in self.roles:
                continue
            role = self.roles[role_id]
            if role.defines(permission) and (best is None or order > best[0]):
                best = (order, role)
        return best

    def granted(self, user: str, permission) -> bool:
        if self.creator_phase:
            return user == self.creator
        best = self._deciding_role(user, permission)
        return best is not None and bool(best[1].value(permission))

    def level(self, user: str, permission) -> float:
        if self.creator_phase:
            return ABOVE_ALL if user == self.creator else NO_LEVEL
        best = self._deciding_role(user, permission)
        return NO_LEVEL if best is None else best[0]

    def may_affect(self, user: str, role_id: str) -> bool:
        if self.creator_phase:
            return user == self.creator
        best = self._deciding_role(user, "roles")
        return best is not None and role_id in (best[1].roles or ())

    def joined(self, user: str) -> bool:
        return self.membership.get(user) == JOIN

    # --- verdicts -------------------------------------------------------------------------

    def verdict(self, sender: str, event_type: str, state_key: Optional[str], content: bytes, decoded=None):
        if state_key is not None and self.current.get((event_type, state_key)) == (sender, content):
            return ("existing",)
        if event_type == "m.room.role_map":
            problem = role_map_problem(decoded)
            if problem:
                return ("malformed", problem)
        if event_type == "m.room.user":
            return self._user_verdict(sender, state_key, decoded)
        return self._send_verdict(sender, event_type, state_key, decoded)

    def _send_verdict(self, sender: str, event_type: str, state_key: Optional[str], decoded):
        rule = f"m.0 send {event_type}"
        if not self.joined(sender):
            return ("reject", rule)
        if self.creator_phase:
            if sender != self.creator and state_key is not None:
                return ("reject", rule)
        elif not self.granted(sender, ("events", event_type)):
            return ("reject", rule)
        if event_type == "m.room.role" and not self.may_affect(sender, state_key):
            return ("reject", "m.0 m.room.role:")
        if event_type == "m.room.role_map":
            old, new = _configs(self.role_map), _configs(decoded)
            changed = {r for r in new if old.get(r) != new[r]} | {r for r in old if r not in new}
            if any(not self.may_affect(sender, r) for r in changed):
                return ("reject", "m.0 m.room.role_map:")
        return ("accept",)

    def _user_verdict(self, sender: str, target: str, participation: Participation):
        now = self.membership.get(target)
        ok = ("accept",)
        if participation == INVITE:
            good = self.joined(sender) and self.granted(sender, "invite") and now not in (BAN, JOIN)
            return ok if good else ("reject", "m.0 invite:")
        if participation == JOIN:
            if sender != target:
                return ("reject", "m.0 join:")
            if self.join_rule == JoinRule.PUBLIC:
                good = now != BAN
            else:
                good = now in (INVITE, JOIN)
            return ok if good else ("reject", "m.0 join:")
        if participation == KNOCK:
            good = sender == target and self.join_rule == JoinRule.KNOCK and now not in (BAN, JOIN)
            return ok if good else ("reject", "m.0 knock:")
        if participation == LEAVE:
            if sender == target:
                return ok if now in (INVITE, JOIN, KNOCK) else ("reject", "m.0 leave:")
            if now == BAN:  # an unban: ban permission and the ban level
                good = (
                    self.joined(sender)
                    and self.granted(sender, "ban")
                    and self.level(sender, "ban") > self.level(target, "ban")
                )
                return ok if good else ("reject", "m.0 unban:")
            good = (
                self.joined(sender)
                and now in (JOIN, INVITE, KNOCK)
                and self.granted(sender, "kick")
                and self.level(sender, "kick") > self.level(target, "kick")
            )
            return ok if good else ("reject", "m.0 kick:")
        if participation == BAN:  # "The sender for a ban MUST: be joined; have the ban permission"
            good = self.joined(sender) and self.granted(sender, "ban")
            return ok if good else ("reject", "m.0 ban:")
        raise AssertionError(f"unknown participation {participation}")

    # --- applying an accepted event -------------------------------------------------------

    def apply(self, sender: str, event_type: str, state_key: Optional[str], content: bytes, decoded=None) -> None:
        position = len(self.log)
        self.log.append((state_key is not None, self.visibility, dict(self.membership)))
        if state_key is None:
            return
        self.current[(event_type, state_key)] = (sender, content)
        if event_type == "m.room.user":
            self.membership[state_key] = decoded
            if decoded == JOIN:
                self.join_positions.setdefault(state_key, []).append(position)
        elif event_type == "m.room.join_rules":
            self.join_rule = decoded
        elif event_type == "m.room.history_visibility":
            self.visibility = decoded
        elif event_type == "m.room.role":
            self.roles[state_key] = decoded
        elif event_type == "m.room.role_map":
            self.role_map = tuple((r, tuple(u), o) for r, u, o in decoded)

    def fanout(self, event_type: str, state_key: Optional[str]) -> Set[str]:
        """Servers (other than the hub) that must receive the event just applied: every server
        with a joined user now, and for ``m.room.user`` the target's server."""
        servers = {u.split(":", 1)[1] for u, p in self.membership.items() if p == JOIN}
        if event_type == "m.room.user":
            servers.add(state_key.split(":", 1)[1])
        return servers - {self.hub}

    # --- history visibility ---------------------------------------------------------------

    def may_read(self, server: str) -> bool:
        """PROFILE.md section 6, "Who may read a room": a server with a user in any
        participation state, or every server while the visibility is world."""
        return self.visibility == Visibility.WORLD or any(u.endswith(":" + server) for u in self.membership)

    def server_sees(self, position: int, server: str) -> bool:
        """Whether ``server`` may get the event at ``position`` unredacted."""
        is_state, visibility, before = self.log[position]
        if is_state or visibility == Visibility.WORLD:
            return True
        users: Set[str] = {u for u in set(before) | set(self.join_positions) | set(self.membership) if u.endswith(":" + server)}
        for user in users:
            now = before.get(user)
            if now == JOIN:
                return True
            if visibility == Visibility.SHARED and any(q > position for q in self.join_positions.get(user, ())):
                return True
            if visibility == Visibility.INVITED and now == INVITE:
                return True
        return False
