"""Helpers for the room tests: contents for roles and role maps, and ``RoomBuilder``, which
builds real rooms (Ed25519-signed events, checked by shape + policy, applied to a RoomState)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Type

import pytest

import mimi_signaling as ms
from mimi_signaling.content import (
    role_content,
    role_map_content,
    M_ROOM_CREATE,
    M_ROOM_ENCRYPTED,
    M_ROOM_HISTORY_VISIBILITY,
    M_ROOM_JOIN_RULES,
    M_ROOM_ROLE,
    M_ROOM_ROLE_MAP,
    M_ROOM_USER,
    JoinRule,
    Participation,
    Visibility,
    create_content,
    decode_content,
    history_visibility_content,
    join_rules_content,
    user_content,
)
from mimi_signaling.room import RoomState, check_shape
from mimi_signaling.room.policy.m0.roles import in_creator_phase


def server_of(user_id: str) -> str:
    return ms.parse_user_id(user_id)[1]


# role_content / role_map_content: mimi_signaling.content (re-exported here for the tests).


_PLACEHOLDER = {
    M_ROOM_USER: user_content(Participation.LEAVE),
    M_ROOM_JOIN_RULES: join_rules_content(JoinRule.INVITE),
    M_ROOM_HISTORY_VISIBILITY: history_visibility_content(Visibility.SHARED),
    M_ROOM_ROLE: ms.RoleContent([]).encode(),
    M_ROOM_ROLE_MAP: ms.RoleMapContent([]).encode(),
    M_ROOM_CREATE: create_content("m.0", "org.example.plaintext"),
}


class RoomBuilder:
    """A real room: Ed25519-signed events, checked by shape + policy, applied to a RoomState."""

    def __init__(
        self,
        creator: str = "@ana:hub.test",
        room_id: str = "!room:hub.test",
        *,
        join: bool = True,
        track_history: bool = True,
    ) -> None:
        self.room_id = room_id
        self.hub = ms.parse_room_id(room_id)[1]
        self.keys: Dict[str, ms.SigningKey] = {}
        self.state: Optional[RoomState] = None
        self.events: List[ms.Event] = []
        create = self.make(M_ROOM_CREATE, "", creator, create_content("m.0", "org.example.plaintext"), auth=[], prev="")
        self.state = RoomState.from_create(create, track_history=track_history)
        self.events.append(create)
        if join:
            self.send(M_ROOM_USER, creator, creator, user_content(Participation.JOIN))

    def key(self, server: str) -> ms.SigningKey:
        key = self.keys.get(server)
        if key is None:
            key = self.keys[server] = ms.SigningKey.generate()
        return key

    def make(
        self,
        event_type: str,
        state_key: Optional[str],
        sender: str,
        content: bytes,
        *,
        auth: Optional[Sequence[str]] = None,
        prev: Optional[str] = None,
    ) -> ms.Event:
        try:
            limited = ms.LimitedEvent.create(
                self.room_id, event_type, state_key, sender, content, self.key(server_of(sender))
            )
            body = None
        except ms.MalformedError:
            # Content the core cannot even redact: sign a valid stand-in, then swap the bytes in
            # (the shape check, which is what such tests exercise, comes before signatures).
            limited = ms.LimitedEvent.create(
                self.room_id, event_type, state_key, sender, _PLACEHOLDER[event_type], self.key(server_of(sender))
            )
            body = content
        if auth is None:
            assert self.state is not None
            try:
                decoded = decode_content(event_type, content)
                auth = self.state.policy.select_auth_events(self.state, event_type, state_key, sender, decoded)
            except ms.MalformedError:
                auth = [self.state.create_event_id]
        if prev is None:
            prev = self.state.last_event_id if self.state is not None else ""
        event = limited.to_event(list(auth), prev, self.key(self.hub))
        return event if body is None else event.with_content(body)

    def accept(self, event: ms.Event) -> ms.Event:
        assert self.state is not None
        content = check_shape(event, self.state)
        self.state.policy.check(self.state, event, content=content)
        self.state.apply(event, content)
        self.events.append(event)
        return event

    def send(self, event_type: str, state_key: Optional[str], sender: str, content: bytes, **kw: Any) -> ms.Event:
        return self.accept(self.make(event_type, state_key, sender, content, **kw))

    def verdict(self, event: ms.Event) -> None:
        """Shape + policy without applying (raises on rejection)."""
        assert self.state is not None
        content = check_shape(event, self.state)
        self.state.policy.check(self.state, event, content=content)

    def reject(
        self,
        event_type: str,
        state_key: Optional[str],
        sender: str,
        content: bytes,
        match: Optional[str] = None,
        exc: Type[BaseException] = ms.PolicyRejectedError,
        **kw: Any,
    ) -> BaseException:
        assert self.state is not None
        event = self.make(event_type, state_key, sender, content, **kw)
        before = (self.state.count, self.state.state_ids(), self.state.users())
        with pytest.raises(exc, match=match) as info:
            self.verdict(event)
        assert (self.state.count, self.state.state_ids(), self.state.users()) == before
        return info.value

    # shorthands

    def user(self, sender: str, target: str, participation: Participation, reason: bytes = b"") -> ms.Event:
        return self.send(M_ROOM_USER, target, sender, user_content(participation, reason))

    def reject_user(
        self, sender: str, target: str, participation: Participation, match: Optional[str] = None
    ) -> BaseException:
        return self.reject(M_ROOM_USER, target, sender, user_content(participation), match)

    def message(self, sender: str, body: bytes = b"ciphertext") -> ms.Event:
        return self.send(M_ROOM_ENCRYPTED, None, sender, body)

    def join_rules(self, rule: JoinRule, sender: Optional[str] = None) -> ms.Event:
        assert self.state is not None
        return self.send(M_ROOM_JOIN_RULES, "", sender or self.state.creator, join_rules_content(rule))

    def visibility(self, visibility: Visibility, sender: Optional[str] = None) -> ms.Event:
        assert self.state is not None
        return self.send(
            M_ROOM_HISTORY_VISIBILITY, "", sender or self.state.creator, history_visibility_content(visibility)
        )

    def role(self, role_id: str, sender: Optional[str] = None, **permissions: Any) -> ms.Event:
        assert self.state is not None
        return self.send(M_ROOM_ROLE, role_id, sender or self.state.creator, role_content(**permissions))

    def role_map(self, configs: Sequence[Tuple[str, Sequence[str], int]], sender: Optional[str] = None) -> ms.Event:
        assert self.state is not None
        return self.send(M_ROOM_ROLE_MAP, "", sender or self.state.creator, role_map_content(configs))

    def join(self, user_id: str, inviter: Optional[str] = None) -> ms.Event:
        """Invite (by ``inviter``, default the creator) then join."""
        assert self.state is not None
        self.user(inviter or self.state.creator, user_id, Participation.INVITE)
        return self.user(user_id, user_id, Participation.JOIN)


class RoomDriver:
    """``m0_cases.CaseDriver`` and ``VisibilityDriver`` over a ``RoomBuilder`` (shape, policy
    and apply; no hub)."""

    def __init__(self, room: RoomBuilder) -> None:
        self.room = room

    def user(self, sender: str, target: str, participation: Participation) -> Any:
        return self.room.user(sender, target, participation)

    def refuse_user(self, sender: str, target: str, participation: Participation, match: str) -> Any:
        return self.room.reject_user(sender, target, participation, match)

    def join_rule(self, rule: JoinRule) -> Any:
        return self.room.join_rules(rule)

    def add(self, user: str) -> Any:
        return self.room.join(user)

    def role(self, role_id: str, sender: Optional[str] = None, **permissions: Any) -> Any:
        return self.room.role(role_id, sender, **permissions)

    def role_map(self, configs: Sequence[Tuple[str, Sequence[str], int]], sender: Optional[str] = None) -> Any:
        return self.room.role_map(configs, sender)

    def send(self, sender: str, event_type: str, state_key: Optional[str], content: bytes) -> ms.Event:
        return self.room.send(event_type, state_key, sender, content)

    def refuse(
        self, sender: str, event_type: str, state_key: Optional[str], content: bytes, match: str, exc: Type[BaseException]
    ) -> BaseException:
        return self.room.reject(event_type, state_key, sender, content, match, exc)

    def creator_phase(self) -> bool:
        assert self.room.state is not None
        return in_creator_phase(self.room.state)

    def visibility(self, visibility: Visibility) -> Any:
        return self.room.visibility(visibility)

    def message(self, sender: str) -> ms.Event:
        return self.room.message(sender)

    def participation(self, user: str) -> Optional[Participation]:
        assert self.room.state is not None
        return self.room.state.participation(user)

    def joined_users(self) -> Set[str]:
        assert self.room.state is not None
        return set(self.room.state.joined_users())
