"""Model-based test of the hub: random sequences of participation, role, role-map, join-rule,
visibility, name and message events from users of three servers (hub + two followers), each
submitted through ``Hub.accept`` (now and then a group through ``Hub.accept_many``, and now and
then the hub restarts from its store).  The hub must accept exactly what ``PolicyModel`` (a
plain, independent reading of the m.0 rules) allows, refuse the rest with the rule's name and
store nothing; after each step the hub's queue is delivered to the followers, which re-check every
event.  Followers with a joined user hold the hub's state after every step; at the end every
follower that follows the room is caught up and compared, and every message is served to each
follower whole or redacted as the model's history visibility says."""

from __future__ import annotations

import itertools
import os

import pytest
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

from hypothesis import HealthCheck, Phase, settings
from hypothesis import event as note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import mimi_signaling as m
from support.hubpolicykit import ANA, BOB, CAT, DAN, EVE, FOLLOWERS, HUB, USERS, make_network, raw_role_map_content, role_content, scratch_dir, server_of
from mimi_signaling.content import (
    M_ROOM_HISTORY_VISIBILITY,
    M_ROOM_JOIN_RULES,
    M_ROOM_NAME,
    M_ROOM_ROLE,
    M_ROOM_ROLE_MAP,
    M_ROOM_USER,
    JoinRule,
    Participation,
    Visibility,
    history_visibility_content,
    join_rules_content,
    text_content,
    user_content,
)
from mimi_signaling.node.hub import Hub
from support.policy_model import PolicyModel, RoleDef

ROLE_IDS = ("admin", "mod", "user")
STRANGER = "stranger.test"  # a server that never has a user in the room
EVENT_TYPES = (
    "m.room.encrypted",
    "org.example.chat",
    M_ROOM_NAME,
    M_ROOM_JOIN_RULES,
    M_ROOM_HISTORY_VISIBILITY,
    M_ROOM_ROLE,
    M_ROOM_ROLE_MAP,
)
MESSAGE_TYPES = ("m.room.encrypted", "org.example.chat")

# Presets, so that random rooms often get governable: an admin that may affect the other roles
# (not its own), a moderator and a plain user; and fully random roles.
ADMIN = RoleDef(invite=True, kick=True, ban=True, events=tuple((t, True) for t in EVENT_TYPES), roles=("mod", "user"))
MOD = RoleDef(invite=True, kick=True, ban=True, events=(("m.room.encrypted", True), (M_ROOM_ROLE, True)), roles=("user",))
USER = RoleDef(events=(("m.room.encrypted", True), ("org.example.chat", True)))

users = st.sampled_from(USERS)
MOSTLY = st.sampled_from([True, True, True, False])
maybe_bool = st.none() | st.booleans()
role_defs = st.one_of(
    st.sampled_from([ADMIN, MOD, USER]),
    st.builds(
        RoleDef,
        invite=maybe_bool,
        kick=maybe_bool,
        ban=maybe_bool,
        redact=maybe_bool,
        events=st.none() | st.lists(st.tuples(st.sampled_from(EVENT_TYPES), st.booleans()), max_size=4).map(tuple),
        roles=st.none() | st.lists(st.sampled_from(ROLE_IDS), unique=True, max_size=3).map(tuple),
    ),
)
INVALID_ROLE_MAPS = (
    (("mod", (ANA,), 1), ("mod", (), 2)),  # a role ID twice
    (("admin", (ANA,), 3), ("mod", (), 3)),  # an order twice
    (("admin", (ANA,), 3), ("mod", (CAT, DAN, CAT), 2)),  # a user twice in one role
)


@st.composite
def role_maps(draw, *, admin_creator: bool = False):
    ids = draw(st.lists(st.sampled_from(ROLE_IDS), unique=True, max_size=3))
    orders = draw(st.lists(st.integers(0, 6), unique=True, min_size=len(ids), max_size=len(ids)))
    configs = [(rid, tuple(draw(st.lists(users, unique=True, max_size=3))), order) for rid, order in zip(ids, orders)]
    if admin_creator:  # keep the room governable: the creator as the top admin
        configs = [c for c in configs if c[0] != "admin"] + [("admin", (ANA,), 10)]
    return tuple(configs)


def _role_bytes(role: RoleDef) -> bytes:
    return role_content(
        invite=role.invite,
        kick=role.kick,
        ban=role.ban,
        redact=role.redact,
        events=list(role.events) if role.events is not None else None,
        roles=list(role.roles) if role.roles is not None else None,
    )


class Submission(NamedTuple):
    sender: str
    type: str
    state_key: Optional[str]
    content: bytes
    decoded: object  # what the model reads: participation, rule, RoleDef, role-map configs...

    def __repr__(self) -> str:
        return f"{self.sender} sends {self.type} [{self.state_key}] {self.decoded!r}"


#: Shrinking a failing run replays it hundreds of times (Hypothesis gives up after 5 minutes);
#: by default a failure is reported as found, with its whole step list.  MIMI_MODEL_SHRINK=1
#: shrinks it to a minimal reproducer.
PHASES = tuple(Phase) if os.environ.get("MIMI_MODEL_SHRINK") else tuple(p for p in Phase if p != Phase.shrink)


@settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
class HubPolicyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._dirs = scratch_dir()
        self.net = make_network(self._dirs.__enter__())
        self.store = self.net.stores[HUB]
        self.model = PolicyModel(ANA, HUB)
        self.counter = itertools.count()
        self.step = 0
        self.steps_ok = True
        self.room_id = ""
        self.current_ids: Dict[Tuple[str, Optional[str]], str] = {}
        self.ring = m.KeyRing()
        for name, key in self.net.keys.items():
            self.ring = self.ring.with_key(name, key.verify_key())

    @property
    def hub(self):
        return self.net.hub  # replaced by ``restart_hub``

    @initialize(start=st.sampled_from(["bare", "members", "governed"]))
    def create(self, start: str) -> None:
        """A new room; then (through the same checked submits as every rule) members from
        every server, and for "governed" admin/mod/user roles and a role map."""
        events = self.hub.create_room(ANA)
        self.room_id = events[0].room_id
        assert self.store.count(self.room_id) == 2
        if start == "bare":
            return
        for user in (BOB, CAT, EVE, DAN):
            self._run([self._user(ANA, user, Participation.INVITE)])
            self._run([self._user(user, user, Participation.JOIN)])
        if start == "governed":
            for role_id, role in (("admin", ADMIN), ("mod", MOD), ("user", USER)):
                self._run([Submission(ANA, M_ROOM_ROLE, role_id, _role_bytes(role), role)])
            configs = (("admin", (ANA,), 10), ("mod", (BOB, CAT), 5), ("user", (DAN, EVE), 1))
            self._run([Submission(ANA, M_ROOM_ROLE_MAP, "", raw_role_map_content(configs), configs)])

    # --- the core of every rule -------------------------------------------------------------

    def _limited(self, sub: Submission) -> m.LimitedEvent:
        return m.LimitedEvent.create(self.room_id, sub.type, sub.state_key, sub.sender, sub.content, self.net.keys[server_of(sub.sender)])

    def _run(self, subs: List[Submission]) -> None:
        """Submit one event (``Hub.accept``) or a group (``Hub.accept_many``: each checked
        against the state the ones before it left) and hold every answer against the model."""
        self.steps_ok = False
        self.step += 1
        before = self.store.count(self.room_id)
        limited = [self._limited(sub) for sub in subs]
        if len(subs) == 1:
            try:
                results: List[object] = [self.hub.accept(limited[0], peer=server_of(subs[0].sender))]
            except m.MimiError as exc:
                results = [exc]
        else:
            results = self.hub.accept_many([(lim, server_of(sub.sender)) for lim, sub in zip(limited, subs)])
        accepted: List[m.Event] = []
        fanout: List[Set[str]] = []  # per accepted event, by the model's state right after it
        for i, (sub, result) in enumerate(zip(subs, results)):
            what = f"step {self.step}" + (f" item {i}" if len(subs) > 1 else "") + f": {sub!r}"
            expected = self.model.verdict(sub.sender, sub.type, sub.state_key, sub.content, sub.decoded)
            label = f"{'own ' if sub.sender == sub.state_key else ''}{sub.decoded.name.lower()}" if sub.type == M_ROOM_USER else sub.type
            note(f"{label}: {expected[-1] if expected[0] != 'accept' else 'accept'}")  # --hypothesis-show-statistics
            if expected[0] in ("accept", "existing"):
                assert isinstance(result, m.Event), f"{what}: the model accepts, the hub refused: {result}"
                assert (result.type, result.state_key, result.sender, result.content) == (sub.type, sub.state_key, sub.sender, sub.content)
                if expected[0] == "accept":
                    self.model.apply(sub.sender, sub.type, sub.state_key, sub.content, sub.decoded)
                    self.current_ids[(sub.type, sub.state_key)] = result.event_id
                    accepted.append(result)
                    fanout.append(self.model.fanout(sub.type, sub.state_key))
                else:  # answered with the stored current event, nothing appended
                    assert result.event_id == self.current_ids[(sub.type, sub.state_key)], f"{what}: not the current event"
                    stored_form = self.store.get_event(self.room_id, result.event_id)
                    assert stored_form is not None and result.encode() == bytes(stored_form), f"{what}: not the stored (signed) form"
                continue
            kind, token = expected
            assert not isinstance(result, m.Event), f"{what}: the model refuses ({token}), the hub accepted it"
            error = {"reject": m.PolicyRejectedError, "malformed": m.MalformedError}[kind]
            assert isinstance(result, error), f"{what}: expected {kind} ({token}), got {type(result).__name__}: {result}"
            assert token in str(result), f"{what}: expected a reason naming {token!r}, got {result}"
        # exactly the accepted events were appended, in order, each signed by the hub
        assert self.store.count(self.room_id) == before + len(accepted), f"step {self.step}: store count"
        ids = [e.event_id for e in accepted]
        stored = [m.Event.decode(raw) for _, raw in self.store.iter_events(self.room_id, start=before)]
        assert [e.event_id for e in stored] == ids, f"step {self.step}: stored events differ from the accepted ones"
        for event in accepted:
            event.verify(self.ring)  # hub signature included
        # the queue (emptied by every delivery) holds each event for exactly its fan-out
        for dest in FOLLOWERS:
            queued = [q.event_id for q in self.store.pending(dest, 10_000)]
            wanted = [e.event_id for e, servers in zip(accepted, fanout) if dest in servers]
            assert queued == wanted, f"step {self.step}: queue for {dest} is {queued}, the model wants {wanted}"
        assert self.store.pending(HUB, 10) == []
        if accepted:
            self._follow_and_deliver(accepted[-1])
        self.steps_ok = True

    def _follow_and_deliver(self, newest: m.Event) -> None:
        # A server whose user has just joined starts following (as Network.join does).
        for name, follower in self.net.followers.items():
            if not follower.follows(self.room_id) and any(
                self.model.joined(u) for u in USERS if server_of(u) == name
            ):
                follower.sync(self.room_id, newest)
        self.net.deliver_all()

    def _user(self, sender: str, target: str, participation: Participation) -> Submission:
        reason = b"r%d" % next(self.counter)  # never a byte-identical resubmit
        return Submission(sender, M_ROOM_USER, target, user_content(participation, reason), participation)

    # --- what a step submits (drawn against the model's state) ------------------------------

    def _sender(self, data) -> str:
        """Mostly a joined user (events from outsiders are refused early and teach little)."""
        joined = sorted(u for u in USERS if self.model.joined(u))
        if joined and data.draw(MOSTLY, label="from joined"):
            return data.draw(st.sampled_from(joined), label="sender")
        return data.draw(users, label="sender")

    def _candidate(self, data, wanted) -> str:
        """Mostly a user whose participation is in ``wanted``, else anyone."""
        fitting = sorted(u for u in USERS if self.model.membership.get(u) in wanted)
        if fitting and data.draw(MOSTLY, label="fitting"):
            return data.draw(st.sampled_from(fitting), label="user")
        return data.draw(users, label="user")

    def draw_membership(self, data) -> Submission:
        """Anything: any sender, any target, any participation."""
        return self._user(data.draw(users, label="sender"), data.draw(users, label="target"), data.draw(st.sampled_from(list(Participation)), label="participation"))

    def draw_moderation(self, data) -> Submission:
        """A (mostly joined) user acts on someone else: invite, kick or unban, ban."""
        participation = data.draw(st.sampled_from([Participation.INVITE, Participation.LEAVE, Participation.BAN]), label="participation")
        sender = self._sender(data)
        wanted = {
            Participation.INVITE: (None, Participation.LEAVE, Participation.KNOCK),
            Participation.LEAVE: (Participation.JOIN, Participation.INVITE, Participation.KNOCK, Participation.BAN),
            Participation.BAN: tuple(Participation) + (None,),  # a ban may target anyone
        }[participation]
        if participation == Participation.BAN and data.draw(st.sampled_from([False] * 5 + [True]), label="self-ban"):
            return self._user(sender, sender, participation)
        return self._user(sender, self._candidate(data, wanted), participation)

    def draw_join(self, data) -> Submission:
        if self.model.join_rule == JoinRule.PUBLIC:
            wanted: tuple = (None, Participation.LEAVE, Participation.KNOCK, Participation.INVITE)
        else:
            wanted = (Participation.INVITE,)
        user = self._candidate(data, wanted)
        return self._user(user, user, Participation.JOIN)

    def draw_knock(self, data) -> Submission:
        user = self._candidate(data, (None, Participation.LEAVE, Participation.INVITE))
        return self._user(user, user, Participation.KNOCK)

    def draw_leave(self, data) -> Submission:
        user = self._candidate(data, (Participation.INVITE, Participation.JOIN, Participation.KNOCK))
        return self._user(user, user, Participation.LEAVE)

    def draw_message(self, data) -> Submission:
        event_type = data.draw(st.sampled_from(MESSAGE_TYPES), label="type")
        return Submission(self._sender(data), event_type, None, b"message %d" % next(self.counter), None)

    def draw_name(self, data) -> Submission:
        body = b"name %d" % next(self.counter)
        return Submission(self._sender(data), M_ROOM_NAME, "", text_content(body), body)

    def draw_join_rule(self, data) -> Submission:
        rule = data.draw(st.sampled_from(list(JoinRule)), label="rule")
        return Submission(self._sender(data), M_ROOM_JOIN_RULES, "", join_rules_content(rule), rule)

    def draw_visibility(self, data) -> Submission:
        visibility = data.draw(st.sampled_from(list(Visibility)), label="visibility")
        return Submission(self._sender(data), M_ROOM_HISTORY_VISIBILITY, "", history_visibility_content(visibility), visibility)

    def draw_role(self, data) -> Submission:
        role_id = data.draw(st.sampled_from(ROLE_IDS), label="role ID")
        role = data.draw(role_defs, label="role")
        return Submission(self._sender(data), M_ROOM_ROLE, role_id, _role_bytes(role), role)

    def draw_role_map(self, data) -> Submission:
        configs = data.draw(st.one_of(role_maps(), role_maps(admin_creator=True)), label="configs")
        if self.model.role_map and data.draw(st.sampled_from([False] * 4 + [True]), label="reshuffle"):
            # the current map with its configs and each role's users in another order: it
            # changes no role's config (PROFILE.md section 6), so no roles permission is needed
            configs = tuple(
                (rid, tuple(data.draw(st.permutations(users), label="users")), order)
                for rid, users, order in data.draw(st.permutations(self.model.role_map), label="configs order")
            )
        invalid = data.draw(st.sampled_from([None] * 12 + list(range(len(INVALID_ROLE_MAPS)))), label="invalid")
        if invalid is not None:  # now and then a map that breaks the validity rule
            configs = INVALID_ROLE_MAPS[invalid]
        return Submission(self._sender(data), M_ROOM_ROLE_MAP, "", raw_role_map_content(configs), configs)

    DRAWERS = (
        "draw_membership",
        "draw_moderation",
        "draw_join",
        "draw_knock",
        "draw_leave",
        "draw_message",
        "draw_name",
        "draw_join_rule",
        "draw_visibility",
        "draw_role",
        "draw_role_map",
    )

    # --- rules: one event per step, a group now and then, a restart now and then -----------

    @rule(data=st.data())
    def membership(self, data) -> None:
        self._run([self.draw_membership(data)])

    @rule(data=st.data())
    def moderation(self, data) -> None:
        self._run([self.draw_moderation(data)])

    @rule(data=st.data())
    def join(self, data) -> None:
        self._run([self.draw_join(data)])

    @rule(data=st.data())
    def knock(self, data) -> None:
        self._run([self.draw_knock(data)])

    @rule(data=st.data())
    def leave(self, data) -> None:
        self._run([self.draw_leave(data)])

    @rule(data=st.data())
    def message(self, data) -> None:
        self._run([self.draw_message(data)])

    @rule(data=st.data())
    def name(self, data) -> None:
        self._run([self.draw_name(data)])

    @rule(data=st.data())
    def join_rule(self, data) -> None:
        self._run([self.draw_join_rule(data)])

    @rule(data=st.data())
    def history_visibility(self, data) -> None:
        self._run([self.draw_visibility(data)])

    @rule(data=st.data())
    def role(self, data) -> None:
        self._run([self.draw_role(data)])

    @rule(data=st.data())
    def role_map(self, data) -> None:
        self._run([self.draw_role_map(data)])

    @rule(data=st.data(), drawers=st.lists(st.sampled_from(DRAWERS), min_size=2, max_size=5))
    def group(self, data, drawers: List[str]) -> None:
        """Several submits in one ``accept_many`` call (drawn against the state before it)."""
        self._run([getattr(self, name)(data) for name in drawers])

    @rule()
    def restart_hub(self) -> None:
        """A new Hub object on the same store: it rebuilds the room from the stored events."""
        self.net.hub = Hub(HUB, self.net.keystores[HUB], self.store)

    # --- after every step -------------------------------------------------------------------

    @invariant()
    def hub_state_matches_the_model(self) -> None:
        if not self.room_id:
            return
        state = self.hub.state(self.room_id)
        assert state.users() == self.model.membership
        assert state.join_rule() == self.model.join_rule
        assert state.history_visibility() == self.model.visibility
        assert state.count == len(self.model.log) == self.store.count(self.room_id)

    @invariant()
    def joined_followers_hold_the_hub_state(self) -> None:
        if not self.room_id:
            return
        hub_state = self.hub.state(self.room_id)
        joined_servers = hub_state.joined_servers()
        for name, follower in self.net.followers.items():
            if name in joined_servers:
                state = follower.state(self.room_id)
                assert state.last_event_id == hub_state.last_event_id, f"{name} lags behind the hub"
                assert state.state_ids() == hub_state.state_ids(), f"{name}'s state differs from the hub's"

    # --- at the end -------------------------------------------------------------------------

    def _final_checks(self) -> None:
        hub_state = self.hub.state(self.room_id)
        last = hub_state.last_event_id
        for name, follower in self.net.followers.items():
            if follower.follows(self.room_id):
                # a follower whose users all left gets nothing more: catch it up, then compare
                follower.sync(self.room_id, self.hub.get_event(self.room_id, last, for_server=name))
                state = follower.state(self.room_id)
                assert state.last_event_id == last
                assert state.state_ids() == hub_state.state_ids(), f"{name}'s state differs from the hub's"
                assert follower.store.count(self.room_id) == self.store.count(self.room_id)
        # Who may read, and history visibility of every event, per reading server, against
        # the model: served by the hub and, by the same rules, by every follower that holds
        # the room (PROFILE.md section 6).
        readers = (HUB, *FOLLOWERS, STRANGER)
        for position, (index, raw) in enumerate(self.store.iter_events(self.room_id)):
            assert index == position
            event = m.Event.decode(raw)
            for reader in readers:
                sees = self.model.server_sees(position, reader)
                for node in (self.hub, *self.net.followers.values()):
                    if reader == node.server_name or (node is not self.hub and not node.follows(self.room_id)):
                        continue  # a server's own reads are whole; a follower serves what it holds
                    # A follower holds the event whole, or redacted when its own users could
                    # not see it (the hub served it so): it cannot serve more than it holds.
                    held = m.Event.decode(bytes(node.store.get_event(self.room_id, event.event_id)))
                    expected = held if sees else event.redacted()
                    what = f"event #{position} ({event.type}) served by {node.server_name} to {reader}"
                    if not self.model.may_read(reader):
                        with pytest.raises(m.PolicyRejectedError):
                            node.get_event(self.room_id, event.event_id, for_server=reader)
                        continue
                    served = node.get_event(self.room_id, event.event_id, for_server=reader)
                    assert served.encode() == expected.encode(), (
                        f"{what} {'redacted' if served.is_redacted() else 'whole'}, the model says otherwise"
                    )

    def teardown(self) -> None:
        try:
            if self.steps_ok and self.room_id:
                self._final_checks()
        finally:
            self.net.close()
            self._dirs.__exit__(None, None, None)


TestHubPolicyModel = HubPolicyMachine.TestCase
