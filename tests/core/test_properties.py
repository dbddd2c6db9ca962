"""Property tests: round trips, redaction invariants, and tamper evidence of every byte."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mimi_signaling as m
from support.builders import Servers

SERVERS = Servers("hub.test", "f1.test", "f2.test:8448")
LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._=/+", min_size=1, max_size=12)
SERVER = st.sampled_from(["f1.test", "f2.test:8448", "hub.test"])
EVENT_ID = st.binary(min_size=32, max_size=32).map(lambda b: "$" + m.wire.base64url_encode(b))


@st.composite
def contents(draw):
    """(type, state_key, content) over every registered type and custom ones."""
    kind = draw(st.sampled_from(["user", "name", "join_rules", "vis", "role", "role_map", "encrypted", "custom", "custom_state"]))
    user = draw(st.builds(lambda l, s: f"@{l}:{s}", LOCAL, SERVER))
    if kind == "user":
        return "m.room.user", user, m.UserContent(draw(st.integers(0, 4)), draw(st.binary(max_size=40))).encode()
    if kind == "name":
        return "m.room.name", "", m.TextContent(draw(st.binary(max_size=40))).encode()
    if kind == "join_rules":
        return "m.room.join_rules", "", m.JoinRulesContent(draw(st.integers(0, 2))).encode()
    if kind == "vis":
        return "m.room.history_visibility", "", m.HistoryVisibilityContent(draw(st.integers(0, 3))).encode()
    if kind == "role":
        perms = [m.Permission.boolean(k, draw(st.booleans())) for k in draw(st.sets(st.integers(1, 4)))]
        if draw(st.booleans()):
            perms.append(m.Permission.events([(t, draw(st.booleans())) for t in draw(st.lists(st.sampled_from(["m.room.name", "org.x.y"]), max_size=3))]))
        return "m.room.role", draw(st.sampled_from(["admin", "mod", "a~b"])), m.RoleContent(perms).encode()
    if kind == "role_map":
        n = draw(st.integers(0, 3))
        roles = [m.RoleConfig(f"r{i}", [user], i * 10) for i in range(n)]
        return "m.room.role_map", "", m.RoleMapContent(roles).encode()
    if kind == "encrypted":
        return "m.room.encrypted", None, draw(st.binary(max_size=200))
    if kind == "custom_state":
        return "org.example.state", draw(st.text(alphabet="abc", max_size=5)), draw(st.binary(max_size=60))
    return "org.example.msg", None, draw(st.binary(max_size=120))


@st.composite
def events(draw):
    type_, state_key, content = draw(contents())
    sender = draw(st.builds(lambda l, s: f"@{l}:{s}", LOCAL, SERVER))
    auth = draw(st.lists(EVENT_ID, max_size=5))
    prev = draw(EVENT_ID)
    return SERVERS.event("!r:hub.test", type_, state_key, sender, content, auth, prev)


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(events())
def test_encode_decode_round_trip(ev):
    raw = ev.encode()
    again = m.Event.decode(raw)
    assert again == ev
    assert again.encode() == raw
    assert again.event_id == ev.event_id
    assert m.LimitedEvent.decode(ev.limited().encode()) == ev.limited()


@FAST
@given(events())
def test_redaction_is_idempotent_and_keeps_id_and_signatures(ev):
    red = ev.redacted()
    assert red.redacted() == red
    assert red.event_id == ev.event_id
    red.verify(SERVERS.ring)
    ev.verify(SERVERS.ring)
    assert red.is_redacted() == (red.content != ev.content)
    assert m.Event.decode(red.encode()).event_id == ev.event_id


@settings(max_examples=300, deadline=None)
@given(events(), st.data())
def test_any_single_byte_change_is_refused(ev, data):
    raw = bytearray(ev.encode())
    pos = data.draw(st.integers(0, len(raw) - 1))
    delta = data.draw(st.integers(1, 255))
    raw[pos] = (raw[pos] + delta) % 256
    with pytest.raises(m.MimiError):
        m.Event.decode(bytes(raw)).verify(SERVERS.ring)


@FAST
@given(st.binary(max_size=300))
def test_decoders_never_crash_on_random_bytes(blob):
    for decode in (m.Event.decode, m.LimitedEvent.decode, m.TransactionEnvelope.decode, m.ServerKeys.decode, m.RoleContent.decode, m.RoleMapContent.decode):
        try:
            decode(blob)
        except m.MimiError:
            pass
