"""Randomised rooms: memoised verdicts agree with fresh ones, and the permission resolution of
``UserPermissions`` agrees with the draft's generic rule."""

from __future__ import annotations

import random

import pytest

import mimi_signaling as ms
from mimi_signaling.content import (
    M_ROOM_ENCRYPTED,
    M_ROOM_JOIN_RULES,
    M_ROOM_NAME,
    M_ROOM_ROLE,
    M_ROOM_ROLE_MAP,
    M_ROOM_USER,
    JoinRule,
    Participation,
    PermissionKind,
    join_rules_content,
    text_content,
    user_content,
)
from mimi_signaling.room import RoomState, check_shape
from mimi_signaling.room.policy.m0.permissions import UserPermissions
from mimi_signaling.room.policy.m0.roles import RoleRules
from support.permission_oracle import as_mapping, effective_power_levels, resolve_permissions
from support.roomkit import RoomBuilder, role_content, role_map_content

USERS = ["@ana:hub.test", "@ben:follower.test", "@eve:follower.test", "@cy:other.test", "@dee:other.test", "@fay:far.test"]
ROLE_IDS = ["r1", "r2", "r3"]
EVENT_TYPES = [M_ROOM_ENCRYPTED, M_ROOM_NAME, M_ROOM_JOIN_RULES, M_ROOM_ROLE, M_ROOM_ROLE_MAP]


def _random_role(rng: random.Random) -> bytes:
    kwargs = {}
    for name in ("invite", "kick", "ban"):
        if rng.random() < 0.6:
            kwargs[name] = rng.random() < 0.7
    if rng.random() < 0.8:
        kwargs["events"] = [(t, rng.random() < 0.7) for t in rng.sample(EVENT_TYPES, rng.randint(0, len(EVENT_TYPES)))]
    if rng.random() < 0.6:
        kwargs["roles"] = rng.sample(ROLE_IDS, rng.randint(0, len(ROLE_IDS)))
    return role_content(**kwargs)


# A fixed top role keeps the walk going: its holders may change r1..r3 at will.
ROOT = ("root", USERS[:2], 1000)


def _random_role_map(rng: random.Random) -> bytes:
    orders = rng.sample(range(0, 20), len(ROLE_IDS))
    configs = [(r, rng.sample(USERS, rng.randint(0, 3)), o) for r, o in zip(ROLE_IDS, orders) if rng.random() < 0.9]
    return role_map_content([ROOT] + configs if rng.random() < 0.9 else configs)


def _random_attempt(rng: random.Random):
    sender = rng.choice(USERS)
    kind = rng.random()
    if kind < 0.35:
        return M_ROOM_ENCRYPTED, None, sender, b"msg"
    if kind < 0.65:
        target = rng.choice(USERS) if rng.random() < 0.6 else sender
        choices = list(Participation)
        if target in ROOT[1]:
            # The root holders stay in the room, so the walk keeps going: a ban may target
            # anyone (the draft's ban conditions do not look at the target), and a root holder
            # that left or was banned by the other one would leave nobody to govern the room.
            choices.remove(Participation.BAN)
            choices.remove(Participation.LEAVE)
        return M_ROOM_USER, target, sender, user_content(rng.choice(choices))
    if kind < 0.72:
        return M_ROOM_NAME, "", sender, text_content(b"n")
    if kind < 0.79:
        return M_ROOM_JOIN_RULES, "", sender, join_rules_content(rng.choice(list(JoinRule)))
    if kind < 0.9:
        return M_ROOM_ROLE, rng.choice(ROLE_IDS), sender, _random_role(rng)
    return M_ROOM_ROLE_MAP, "", sender, _random_role_map(rng)


def _verdict(state: RoomState, event: ms.Event):
    try:
        content = check_shape(event, state)
        state.policy.check(state, event, content=content)
    except ms.MimiError as exc:
        return type(exc).__name__, str(exc)
    return None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_memoised_verdicts_match_fresh_state(seed: int) -> None:
    rng = random.Random(seed)
    room = RoomBuilder()
    room.join_rules(JoinRule.PUBLIC)
    room.role(
        "root",
        invite=True,
        kick=True,
        ban=True,
        events=[(t, True) for t in EVENT_TYPES],
        roles=ROLE_IDS,
    )
    room.user(USERS[1], USERS[1], Participation.JOIN)
    room.role_map([ROOT])
    accepted = 0
    for _ in range(400):
        event = room.make(*_random_attempt(rng))
        memo = _verdict(room.state, event)
        fresh = _verdict(room.state.copy(), event)  # a copy starts with an empty memo
        assert memo == fresh, (event.type, event.state_key, event.sender)
        if memo is None:
            room.state.apply(event)
            room.events.append(event)
            accepted += 1
    assert accepted > 40  # the walk went somewhere
    # Replaying the accepted events from scratch reaches the same state and accepts them all.
    replay = RoomState.from_create(room.events[0])
    for event in room.events[1:]:
        assert _verdict(replay, event) is None
        replay.apply(event)
    assert replay.state_ids() == room.state.state_ids()
    assert replay.users() == room.state.users()


@pytest.mark.parametrize("seed", range(20))
def test_user_permissions_agree_with_generic_resolution(seed: int) -> None:
    rng = random.Random(seed)
    orders = rng.sample(range(0, 1000), rng.randint(0, 5))
    roles = [(order, RoleRules.from_content(ms.RoleContent.decode(_random_role(rng)))) for order in orders]
    perms = UserPermissions(roles)
    mappings = [(order, as_mapping(rules)) for order, rules in roles]
    resolved = resolve_permissions(mappings)
    levels = effective_power_levels(mappings)
    for kind in (PermissionKind.INVITE, PermissionKind.KICK, PermissionKind.BAN):
        assert perms.granted(kind) == resolved.get(kind, False)
        assert perms.level(kind) == levels.get(kind, -1)
    for event_type in EVENT_TYPES:
        assert perms.can_send(event_type) == resolved.get((PermissionKind.EVENTS, event_type), False)
        assert perms.event_level(event_type) == levels.get((PermissionKind.EVENTS, event_type), -1)
    assert perms.roles_list() == resolved.get(PermissionKind.ROLES)
