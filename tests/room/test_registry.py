"""Event-type registry, shape checks, the policy registry and the create rules."""

from __future__ import annotations

import pytest

import mimi_signaling as ms
from mimi_signaling.content import (
    M_ROOM_CREATE,
    M_ROOM_ENCRYPTED,
    M_ROOM_JOIN_RULES,
    M_ROOM_NAME,
    M_ROOM_ROLE,
    M_ROOM_USER,
    Participation,
    create_content,
    text_content,
    user_content,
)
from mimi_signaling.room import (
    EventTypeRegistry,
    EventTypeSpec,
    PolicyRegistry,
    RoomState,
    check_shape,
)
from mimi_signaling.node.chain import RoomChain
from mimi_signaling.room.policy.m0 import M0_POLICY
from mimi_signaling.room.registry import empty_state_key
from support.roomkit import RoomBuilder, role_content

ANA = "@ana:hub.test"
BEN = "@ben:follower.test"


# --- event types ----------------------------------------------------------------------------


def test_registered_types() -> None:
    registry = EventTypeRegistry()
    for event_type in (
        "m.room.create",
        "m.room.user",
        "m.room.name",
        "m.room.avatar",
        "m.room.topic",
        "m.room.join_rules",
        "m.room.history_visibility",
        "m.room.role",
        "m.room.role_map",
    ):
        assert registry.get(event_type).is_state is True
        assert registry.get(event_type).content_codec is not None
    assert registry.get("m.room.encrypted").is_state is False
    assert registry.get("m.room.encrypted").content_codec is None
    assert registry.get("org.example.thing") is None


@pytest.mark.parametrize("name", ["m.room.custom", "m.anything", "nodot", "bad type.x", ""])
def test_register_refuses_reserved_and_invalid_names(name) -> None:
    with pytest.raises(ms.MalformedError):
        EventTypeRegistry().register(EventTypeSpec(name, True, empty_state_key))


def test_register_refuses_duplicates() -> None:
    registry = EventTypeRegistry()
    registry.register(EventTypeSpec("org.example.pin", True, empty_state_key))
    with pytest.raises(ValueError):
        registry.register(EventTypeSpec("org.example.pin", False))
    registry.register(EventTypeSpec("org.example.pin", False), replace=True)
    assert registry.get("org.example.pin").is_state is False


def test_registered_custom_type_rules() -> None:
    registry = EventTypeRegistry()
    registry.register(
        EventTypeSpec("org.example.topicish", True, empty_state_key, ms.TextContent)
    )
    room = RoomBuilder()
    good = room.make("org.example.topicish", "", ANA, text_content(b"hello"))
    assert registry.check_shape(good, room.state).value == b"hello"
    with pytest.raises(ms.MalformedError, match="state key must be empty"):
        registry.check_shape(room.make("org.example.topicish", "x", ANA, text_content(b"x")), room.state)
    with pytest.raises(ms.MalformedError, match="is a state event type"):
        registry.check_shape(room.make("org.example.topicish", None, ANA, text_content(b"x")), room.state)


def test_unknown_m_type_is_malformed(room) -> None:
    room.reject("m.room.pinned", "", ANA, b"", "unknown event type", exc=ms.MalformedError)
    room.reject("m.custom", None, ANA, b"", "reserved m. namespace", exc=ms.MalformedError)


@pytest.mark.parametrize(
    "event_type, state_key, content, match",
    [
        (M_ROOM_NAME, "x", text_content(b"n"), "state key must be empty"),
        (M_ROOM_NAME, None, text_content(b"n"), "is a state event type"),
        (M_ROOM_ENCRYPTED, "", b"x", "is not a state event type"),
        (M_ROOM_USER, "not-a-user", user_content(Participation.JOIN), "not a valid user ID"),
        (M_ROOM_USER, "@Upper:hub.test", user_content(Participation.JOIN), "not a valid user ID"),
        (M_ROOM_ROLE, "bad role", role_content(invite=True), "not a valid role ID"),
        (M_ROOM_JOIN_RULES, "", b"\x07", "does not decode"),
        (M_ROOM_USER, ANA, b"", "does not decode"),
        (M_ROOM_USER, ANA, b"\x05\x00", "does not decode"),
    ],
)
def test_shape_rules(room, event_type, state_key, content, match) -> None:
    room.reject(event_type, state_key, ANA, content, match, exc=ms.MalformedError)


def test_shape_of_a_limited_event(room) -> None:
    limited = ms.LimitedEvent.create(room.room_id, M_ROOM_NAME, "", ANA, text_content(b"n"), room.key("hub.test"))
    assert check_shape(limited, room.state).value == b"n"
    bad = ms.LimitedEvent.create(room.room_id, M_ROOM_NAME, "k", ANA, text_content(b"n"), room.key("hub.test"))
    with pytest.raises(ms.MalformedError):
        check_shape(bad, room.state)


def test_shape_rejects_other_rooms_and_a_second_create(room) -> None:
    other = ms.LimitedEvent.create("!other:hub.test", M_ROOM_NAME, "", ANA, text_content(b"n"), room.key("hub.test"))
    with pytest.raises(ms.MalformedError, match="does not belong"):
        check_shape(other, room.state)
    room.reject(M_ROOM_CREATE, "", ANA, create_content("m.0", "org.example.x"), "first event", exc=ms.MalformedError)


def test_custom_type_kind_is_fixed_by_first_use_per_room() -> None:
    first = RoomBuilder()
    first.send("org.example.thing", "k", ANA, b"state")
    assert first.state.custom_type_kinds["org.example.thing"] is True
    first.send("org.example.thing", "other", ANA, b"state again")
    first.reject("org.example.thing", None, ANA, b"now a message?", "is a state event type", exc=ms.MalformedError)

    second = RoomBuilder(room_id="!second:hub.test")
    second.send("org.example.thing", None, ANA, b"a message here")
    assert second.state.custom_type_kinds["org.example.thing"] is False
    second.reject("org.example.thing", "k", ANA, b"x", "is not a state event type", exc=ms.MalformedError)


def test_rejected_first_use_does_not_fix_the_kind(room) -> None:
    room.join(BEN)
    # BEN may not send state in the creator phase: rejected, so the kind stays open ...
    room.reject("org.example.thing", "k", BEN, b"x", "only the creator")
    assert "org.example.thing" not in room.state.custom_type_kinds
    # ... and his non-state use decides it.
    room.send("org.example.thing", None, BEN, b"x")
    assert room.state.custom_type_kinds["org.example.thing"] is False


# --- policies and the create event ----------------------------------------------------------


def _create(room: RoomBuilder, **kw) -> ms.Event:
    defaults = dict(event_type=M_ROOM_CREATE, state_key="", sender=ANA, content=create_content("m.0", "org.example.plaintext"))
    defaults.update(kw)
    auth = defaults.pop("auth", [])
    prev = defaults.pop("prev", "")
    return room.make(defaults["event_type"], defaults["state_key"], defaults["sender"], defaults["content"], auth=auth, prev=prev)


def test_policy_registry() -> None:
    policies = PolicyRegistry()
    assert policies.get("m.0") is M0_POLICY
    assert "m.0" in policies
    with pytest.raises(ms.PolicyRejectedError, match="unsupported policy ID 'org.example.policy'"):
        policies.get("org.example.policy")
    with pytest.raises(ms.MalformedError):
        policies.get("nonamespace")
    with pytest.raises(ms.MalformedError):
        policies.register_policy("m.1", M0_POLICY)
    policies.register_policy("org.example.policy", M0_POLICY)
    assert policies.get("org.example.policy") is M0_POLICY


def test_unknown_policy_in_create_is_rejected(room) -> None:
    with pytest.raises(ms.PolicyRejectedError, match="unsupported policy ID"):
        RoomState.from_create(_create(room, content=create_content("org.example.other", "org.example.plaintext")))
    with pytest.raises(ms.MalformedError):
        RoomState.from_create(_create(room, content=create_content("nodots", "org.example.plaintext")))
    with pytest.raises(ms.MalformedError, match="encryption_algorithm"):
        RoomState.from_create(_create(room, content=create_content("m.0", "plain")))
    policies = PolicyRegistry()
    policies.register_policy("org.example.other", M0_POLICY)
    state = RoomState.from_create(
        _create(room, content=create_content("org.example.other", "org.example.plaintext")), policies=policies
    )
    assert state.policy_id == "org.example.other"


def test_create_rules(room) -> None:
    """PROFILE.md section 4 rule 1: a create event with auth events or a prev event does not
    have event 0's shape: MalformedError, the same verdict as through RoomChain."""
    with pytest.raises(ms.MalformedError, match="no auth events"):
        RoomState.from_create(_create(room, auth=[room.events[0].event_id]))
    with pytest.raises(ms.MalformedError, match="no auth events"):
        RoomChain.open(_create(room, auth=[room.events[0].event_id]))
    with pytest.raises(ms.MalformedError, match="prev_event must be empty"):
        RoomChain.open(_create(room, prev=room.events[0].event_id))
    with pytest.raises(ms.MalformedError, match="prev_event must be empty"):
        RoomState.from_create(_create(room, prev=room.events[0].event_id))
    with pytest.raises(ms.PolicyRejectedError, match="not on the room's server"):
        RoomState.from_create(_create(room, sender=BEN))
    with pytest.raises(ms.MalformedError, match="state key must be empty"):
        RoomState.from_create(_create(room, state_key="x"))
    with pytest.raises(ms.MalformedError, match="must be m.room.create"):
        RoomState.from_create(_create(room, event_type=M_ROOM_NAME, content=text_content(b"x")))


def test_event_one_must_be_the_creators_join() -> None:
    room = RoomBuilder(join=False)
    room.reject(M_ROOM_ENCRYPTED, None, ANA, b"x", "event 1 must be the creator's m.room.user join")
    room.reject(M_ROOM_USER, BEN, BEN, user_content(Participation.JOIN), "event 1 must be the creator")
    room.reject(M_ROOM_USER, BEN, ANA, user_content(Participation.INVITE), "event 1 must be the creator")
    room.reject(M_ROOM_USER, ANA, ANA, user_content(Participation.LEAVE), "creator's join, got leave")
    room.reject(M_ROOM_USER, ANA, ANA, user_content(Participation.JOIN), "auth_events", auth=[])
    room.user(ANA, ANA, Participation.JOIN)
    assert room.state.is_joined(ANA)
