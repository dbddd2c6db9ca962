"""Helpers for the hub policy tests: one hub (hub.test) and two followers (f1.test, f2.test)
on real SQLite stores with real Ed25519 keys (``tests/node/nodekit.Network``), and ``HubRoom``,
which submits limited events through ``Hub.accept`` and checks what an acceptance and a
refusal must (and must not) change."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Type

import pytest

import mimi_signaling as m
from mimi_signaling.content import (
    role_content,
    role_map_content,
    M_ROOM_ENCRYPTED,
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
from mimi_signaling.room.policy.m0.roles import in_creator_phase
from support.m0_cases import (  # noqa: F401  (re-exported for the hub tests)
    ANA,
    BAN,
    BOB,
    CAT,
    DAN,
    EVE,
    FAY,
    INVITE,
    JOIN,
    KNOCK,
    LEAVE,
    raw_role_map_content,
)
from support.m0_cases import wire_vec as _vec
from support.nodekit import Network

HUB, F1, F2 = "hub.test", "f1.test", "f2.test"
FOLLOWERS = (F1, F2)

# The users (ana the creator; bob on the hub, cat and dan on f1, eve and fay on f2) and the
# participation shorthands are the case tables' (tests/support/m0_cases.py).
USERS = (ANA, BOB, CAT, DAN, EVE, FAY)


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1]


def make_network(where: Path) -> Network:
    return Network(where, HUB, list(FOLLOWERS))


#: tmpfs, where a SQLite commit costs no fsync: these tests check verdicts, not durability,
#: and run thousands of commits (the stores' synchronous=FULL makes each ~5 ms on disk).
SHM = Path("/dev/shm")


@contextlib.contextmanager
def scratch_dir(fallback: Optional[Path] = None) -> Iterator[Path]:
    """A fresh directory on tmpfs when there is one, else ``fallback`` (else a new temporary
    directory); what this function created is removed afterwards."""
    if fallback is not None and not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        yield fallback
        return
    parent = SHM if SHM.is_dir() and os.access(SHM, os.W_OK) else None
    where = Path(tempfile.mkdtemp(prefix="mimi-hubpolicy-", dir=parent))
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


# --- contents -------------------------------------------------------------------------------


# role_content / role_map_content: mimi_signaling.content (re-exported here for the tests).


def raw_role_content(event_types: Sequence[str] = (), role_ids: Optional[Sequence[str]] = None) -> bytes:
    """``m.room.role`` content encoded by hand (the core's encoder refuses bad identifiers):
    an ``events`` permission (tag 5) granting ``event_types``, and a ``roles`` permission (tag
    6) when ``role_ids`` is given."""
    permissions = b"\x05" + _vec(b"".join(_vec(t.encode()) + b"\x01" for t in event_types))
    if role_ids is not None:
        permissions += b"\x06" + _vec(b"".join(_vec(r.encode()) for r in role_ids))
    return _vec(permissions)


# --- a room on the hub ----------------------------------------------------------------------


class HubRoom:
    """One room on ``net.hub``; every submit goes through ``Hub.accept`` with the origin's key."""

    def __init__(self, net: Network, creator: str = ANA, *, join_rule: Optional[JoinRule] = None) -> None:
        self.net = net
        initial = [] if join_rule is None else [(M_ROOM_JOIN_RULES, "", join_rules_content(join_rule))]
        events = net.hub.create_room(creator, initial_state=initial)
        self.room_id = events[0].room_id
        self.creator = creator
        self.events: List[m.Event] = list(events)
        self._reasons = itertools.count()
        self.ring = m.KeyRing()
        for name, key in net.keys.items():
            self.ring = self.ring.with_key(name, key.verify_key())

    # the hub's view

    @property
    def hub(self):
        return self.net.hub

    @property
    def store(self):
        return self.net.stores[HUB]

    @property
    def state(self):
        return self.hub.state(self.room_id)

    def participation(self, user: str) -> Optional[Participation]:
        return self.state.participation(user)

    def joined_users(self):
        return self.state.joined_users()

    def creator_phase(self) -> bool:
        return in_creator_phase(self.state)

    def send(self, sender: str, type: str, state_key: Optional[str], content: bytes) -> m.Event:
        return self.submit(sender, type, state_key, content)

    def queued(self, dest: str) -> List[str]:
        """Event IDs waiting in the hub's queue for ``dest``, oldest first."""
        return [q.event_id for q in self.store.pending(dest, 100_000) if q.room_id == self.room_id]

    def snapshot(self) -> tuple:
        """Everything a refused event must leave untouched."""
        state = self.state
        return (
            self.store.count(self.room_id),
            self.store.latest(self.room_id),
            state.last_event_id,
            state.count,
            state.state_ids(),
            state.users(),
            {dest: self.queued(dest) for dest in (HUB, *FOLLOWERS)},
        )

    # submitting

    def limited(self, sender: str, type: str, state_key: Optional[str], content: bytes) -> m.LimitedEvent:
        return m.LimitedEvent.create(self.room_id, type, state_key, sender, content, self.net.keys[server_of(sender)])

    def submit(self, sender: str, type: str, state_key: Optional[str], content: bytes) -> m.Event:
        """Submit and check that the event was accepted, stored and returned as sent."""
        count = self.store.count(self.room_id)
        prev = self.state.last_event_id
        event = self.hub.accept(self.limited(sender, type, state_key, content), peer=server_of(sender))
        assert (event.type, event.state_key, event.sender, event.content) == (type, state_key, sender, content)
        assert event.room_id == self.room_id
        assert event.prev_event == prev
        event.verify(self.ring)
        assert self.store.count(self.room_id) == count + 1
        assert self.state.last_event_id == event.event_id
        assert self.hub.get_event(self.room_id, event.event_id).encode() == event.encode()
        self.events.append(event)
        return event

    def refuse(
        self,
        sender: str,
        type: str,
        state_key: Optional[str],
        content: bytes,
        match: str,
        exc: Type[BaseException] = m.PolicyRejectedError,
    ) -> BaseException:
        """Submit, expect ``exc`` with a message matching ``match``, and check nothing changed."""
        before = self.snapshot()
        with pytest.raises(exc, match=match) as info:
            self.hub.accept(self.limited(sender, type, state_key, content), peer=server_of(sender))
        assert self.snapshot() == before
        return info.value

    # shorthands

    def _reason(self) -> bytes:
        # A fresh reason each time: a byte-identical resubmit of the current m.room.user event
        # is answered with the stored event (idempotent retry), not checked again.
        return b"r%d" % next(self._reasons)

    def user(self, sender: str, target: str, participation: Participation) -> m.Event:
        event = self.submit(sender, M_ROOM_USER, target, user_content(participation, self._reason()))
        assert self.participation(target) == participation
        return event

    def refuse_user(self, sender: str, target: str, participation: Participation, match: str) -> BaseException:
        return self.refuse(sender, M_ROOM_USER, target, user_content(participation, self._reason()), match)

    def add(self, user: str, inviter: Optional[str] = None) -> m.Event:
        """Invite (by ``inviter``, default the creator) and join."""
        self.user(inviter or self.creator, user, INVITE)
        return self.user(user, user, JOIN)

    def message(self, sender: str, body: Optional[bytes] = None) -> m.Event:
        return self.submit(sender, M_ROOM_ENCRYPTED, None, body or b"ciphertext %d" % next(self._reasons))

    def name(self, sender: str, value: Optional[bytes] = None) -> m.Event:
        return self.submit(sender, M_ROOM_NAME, "", text_content(value or b"name %d" % next(self._reasons)))

    def join_rule(self, rule: JoinRule, sender: Optional[str] = None) -> m.Event:
        return self.submit(sender or self.creator, M_ROOM_JOIN_RULES, "", join_rules_content(rule))

    def visibility(self, visibility: Visibility, sender: Optional[str] = None) -> m.Event:
        return self.submit(sender or self.creator, M_ROOM_HISTORY_VISIBILITY, "", history_visibility_content(visibility))

    def role(self, role_id: str, sender: Optional[str] = None, **permissions) -> m.Event:
        return self.submit(sender or self.creator, M_ROOM_ROLE, role_id, role_content(**permissions))

    def role_map(self, configs: Sequence[Tuple[str, Sequence[str], int]], sender: Optional[str] = None) -> m.Event:
        return self.submit(sender or self.creator, M_ROOM_ROLE_MAP, "", role_map_content(configs))


def queued_for(room: HubRoom) -> Dict[str, List[str]]:
    return {dest: room.queued(dest) for dest in FOLLOWERS}
