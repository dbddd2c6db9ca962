"""Round trips for every struct of the profile and the strict-decoding rules."""

from __future__ import annotations

import pytest

import mimi_signaling as m
from support.builders import Servers

ROOM = "!room1:hub.test"


@pytest.fixture(scope="module")
def servers():
    return Servers("hub.test", "f1.test")


@pytest.fixture(scope="module")
def event(servers):
    create = servers.event(ROOM, "m.room.create", "", "@ana:hub.test", m.CreateContent("m.0", "org.example.plain").encode())
    return servers.event(
        ROOM,
        "m.room.name",
        "",
        "@ana:hub.test",
        m.TextContent(b"A room").encode(),
        [create.event_id],
        create.event_id,
    )


def test_event_and_limited_round_trip(event, servers):
    raw = event.encode()
    again = m.Event.decode(raw)
    assert again == event and again.encode() == raw and again.event_id == event.event_id
    limited = event.limited()
    assert m.LimitedEvent.decode(limited.encode()) == limited
    limited.verify(servers.ring)
    event.verify(servers.ring)
    assert event.origin_server == "hub.test" and event.hub_server == "hub.test" and event.is_state


def test_keys_round_trip(servers):
    vk = servers.keys["hub.test"].verify_key(expired_ts=1234)
    assert m.VerifyKey.decode(vk.encode()) == vk
    sk = m.ServerKeys("hub.test", [vk, servers.keys["f1.test"].verify_key()])
    assert m.ServerKeys.decode(sk.encode()) == sk
    with pytest.raises(m.MalformedError):
        m.ServerKeys("hub.test", [vk, vk])  # the same key ID twice
    with pytest.raises(m.MalformedError):
        m.VerifyKey("ed25519:x", b"\x00" * 31)
    with pytest.raises(m.MalformedError):
        m.VerifyKey("ed25519:x", bytes(32))  # small-order point


def test_transport_round_trips(event):
    env = m.TransactionEnvelope("mimi.signaling.submit", b"\x01\x02")
    assert m.TransactionEnvelope.decode(env.encode()).payload == b"\x01\x02"
    with pytest.raises(m.UnsupportedVersionError):
        m.TransactionEnvelope.decode(m.TransactionEnvelope("x.y", b"", version=2).encode())
    assert m.wire.decode_error_body(m.wire.encode_error_body(4, "no")) == (4, "no")
    assert m.wire.decode_get_event_request(m.wire.encode_get_event_request(ROOM, event.event_id)) == (ROOM, event.event_id)
    assert m.wire.decode_get_state_request(m.wire.encode_get_state_request(ROOM, "m.room.name", "")) == (ROOM, "m.room.name", "")
    assert m.wire.decode_backfill_request(m.wire.encode_backfill_request(ROOM, event.event_id, 10)) == (ROOM, event.event_id, 10)
    with pytest.raises(m.MalformedError):
        m.wire.decode_backfill_request(m.wire.encode_backfill_request(ROOM, event.event_id, 1001))
    assert m.wire.decode_backfill_response(m.wire.encode_backfill_response([event, event])) == [event, event]
    assert m.wire.decode_snapshot_request(m.wire.encode_snapshot_request(ROOM)) == ROOM
    state, chain, latest = m.wire.decode_snapshot_response(m.wire.encode_snapshot_response([event], [event], event.event_id))
    assert (state, chain, latest) == ([event], [event], event.event_id)
    err = m.error_from_code(8, "big")
    assert isinstance(err, m.TooLargeError) and err.code == 8 and err.http_status == 413
    assert isinstance(m.error_from_code(999, "?"), m.InternalError)


def test_content_round_trips():
    cases = [
        m.CreateContent("m.0", "org.example.plain"),
        m.UserContent(1, b"hello"),
        m.TextContent(b"name"),
        m.JoinRulesContent(2),
        m.HistoryVisibilityContent(3),
        m.RoleContent([m.Permission.boolean(1, True), m.Permission.events([("m.room.name", False)]), m.Permission.roles(["admin"])]),
        m.RoleMapContent([m.RoleConfig("admin", ["@ana:hub.test"], 100), m.RoleConfig("chat", [], 10)]),
    ]
    for c in cases:
        raw = c.encode()
        assert type(c).decode(raw).encode() == raw
    assert m.TextContent.decode(b"").value is None
    assert m.RoleContent.decode(cases[5].encode()).permissions == cases[5].permissions


@pytest.mark.parametrize(
    "make",
    [
        lambda: m.RoleContent([m.Permission.boolean(1, True), m.Permission.boolean(1, False)]).encode(),
        lambda: m.RoleMapContent([m.RoleConfig("a", [], 1), m.RoleConfig("a", [], 2)]).encode(),
        lambda: m.RoleMapContent([m.RoleConfig("a", [], 1), m.RoleConfig("b", [], 1)]).encode(),
        lambda: m.RoleMapContent([m.RoleConfig("a", ["@Bad:x"], 1)]).encode(),
        lambda: m.UserContent(5),
        lambda: m.JoinRulesContent(3),
        lambda: m.Permission.boolean(5, True),
        lambda: m.CreateContent("nodot", "org.x").encode(),
    ],
)
def test_invalid_content_is_refused(make):
    with pytest.raises(m.MalformedError):
        make()


def _mutations(raw: bytes):
    """Strict-decoding cases built from a valid encoding."""
    yield "truncated", raw[:-1]
    yield "trailing byte", raw + b"\x00"
    yield "empty", b""
    # room_id prefix is the first byte: make it non-minimal (2-byte form of the same length)
    n = raw[0]
    yield "non-minimal prefix", bytes([0x40, n]) + raw[1:]
    yield "reserved 11 prefix", bytes([0xC0 | n]) + raw[1:]


def test_strict_decoding(event):
    raw = event.encode()
    for why, data in _mutations(raw):
        with pytest.raises(m.MalformedError):
            m.Event.decode(data)
            pytest.fail(why)


def test_optional_and_boolean_bytes(event):
    raw = bytearray(event.encode())
    # the state_key option byte follows room_id and type
    pos = 1 + raw[0]
    pos += 1 + raw[pos]
    assert raw[pos] == 1
    raw[pos] = 2
    with pytest.raises(m.MalformedError, match="Option"):
        m.Event.decode(bytes(raw))
    with pytest.raises(m.MalformedError, match="0 or 1"):
        m.RoleContent.decode(bytes([0x02, 0x01, 0x02]))
    with pytest.raises(m.MalformedError, match="unknown enum"):
        m.UserContent.decode(bytes([0x07, 0x00]))


def test_size_limits(servers):
    with pytest.raises(m.TooLargeError):
        servers.limited(ROOM, "org.example.blob", None, "@ana:hub.test", b"x" * 70_000)
    with pytest.raises(m.TooLargeError):
        m.parse_room_id("!" + "a" * 300 + ":hub.test")
    with pytest.raises(m.TooLargeError):
        servers.limited(ROOM, "m.room.member_" + "x" * 250, None, "@ana:hub.test", b"")
    limited = servers.limited(ROOM, "org.example.msg", None, "@ana:hub.test", b"hi")
    with pytest.raises(m.TooLargeError):
        limited.to_event(["$" + "A" * 43] * 65, "$" + "A" * 43, servers.keys["hub.test"])
    with pytest.raises(m.TooLargeError):
        m.Event.decode(b"\x00" * 65_537)


def test_identifier_errors_say_what_is_wrong():
    with pytest.raises(m.MalformedError, match="lower case"):
        m.parse_user_id("@Ana:hub.test")
    with pytest.raises(m.MalformedError, match="port"):
        m.validate_server_name("hub.test:0")
    with pytest.raises(m.MalformedError, match="namespaced"):
        m.validate_event_type("noDots")
    assert m.parse_room_id("!a-b.c~d_e:[::1]:8448") == ("a-b.c~d_e", "[::1]:8448")
