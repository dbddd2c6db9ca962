"""content.py: enum values of the profile and the decode dispatch."""

from __future__ import annotations

import pytest

import mimi_signaling as ms
from mimi_signaling.content import (
    JoinRule,
    Participation,
    PermissionKind,
    Visibility,
    create_content,
    decode_content,
    history_visibility_content,
    join_rules_content,
    text_content,
    user_content,
)


def test_enum_values_follow_the_profile() -> None:
    assert [(p.name, p.value) for p in Participation] == [("INVITE", 0), ("JOIN", 1), ("LEAVE", 2), ("BAN", 3), ("KNOCK", 4)]
    assert [(r.name, r.value) for r in JoinRule] == [("INVITE", 0), ("KNOCK", 1), ("PUBLIC", 2)]
    assert [(v.name, v.value) for v in Visibility] == [("INVITED", 0), ("JOINED", 1), ("SHARED", 2), ("WORLD", 3)]
    assert [(k.name, k.value) for k in PermissionKind] == [
        ("INVITE", 1), ("KICK", 2), ("BAN", 3), ("REDACT", 4), ("EVENTS", 5), ("ROLES", 6)
    ]


def test_decode_dispatch() -> None:
    assert decode_content("m.room.create", create_content("m.0", "org.example.x")).policy_id == "m.0"
    user = decode_content("m.room.user", user_content(Participation.BAN, b"spam"))
    assert (user.participation, user.reason) == (Participation.BAN, b"spam")
    assert decode_content("m.room.join_rules", join_rules_content(JoinRule.KNOCK)).rule == JoinRule.KNOCK
    assert decode_content("m.room.history_visibility", history_visibility_content(Visibility.WORLD)).visibility == 3
    assert decode_content("m.room.topic", text_content(b"t")).value == b"t"
    assert decode_content("m.room.name", b"").value is None  # redacted
    assert decode_content("m.room.encrypted", b"\x00\xff") == b"\x00\xff"
    assert decode_content("org.example.thing", b"raw") == b"raw"


def test_decode_rejects() -> None:
    with pytest.raises(ms.MalformedError):
        decode_content("m.room.unknown", b"")
    with pytest.raises(ms.MalformedError):
        decode_content("m.room.user", b"\x05\x00")
    with pytest.raises(ms.MalformedError):
        decode_content("m.room.join_rules", b"")
