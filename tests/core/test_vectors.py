"""The public vectors in ../shared/vectors, through the Python API."""

from __future__ import annotations

import pytest

import mimi_signaling as m
from support.vectors import load_vectors

ED25519 = load_vectors("ed25519_rfc8032.json")
VARINTS = load_vectors("mls_deserialization.json")
BASE64 = load_vectors("base64url_rfc4648.json")
CRYPTO_BASICS = load_vectors("mls_crypto_basics.json")


@pytest.mark.parametrize("v", ED25519, ids=[v["name"] for v in ED25519])
def test_rfc8032_ed25519(v):
    key = m.SigningKey(bytes.fromhex(v["secret_key"]), "ed25519:rfc8032")
    assert key.public_key == bytes.fromhex(v["public_key"])
    message = bytes.fromhex(v["message"])
    signature = key.sign(message)
    assert signature == bytes.fromhex(v["signature"])
    verify = m.VerifyKey("ed25519:rfc8032", bytes.fromhex(v["public_key"]))
    verify.verify(message, signature)
    bad = bytes([signature[0] ^ 1]) + signature[1:]
    with pytest.raises(m.BadSignatureError):
        verify.verify(message, bad)
    with pytest.raises(m.BadSignatureError):
        verify.verify(message + b"x", signature)


@pytest.mark.parametrize("suite", [v for v in CRYPTO_BASICS if v["cipher_suite"] in (1, 3)], ids=lambda v: f"suite{v['cipher_suite']}")
def test_sign_with_label_matches_rfc9420(suite):
    """RFC 9420 SignWithLabel is SignContent{"MLS 1.0 " + label, content}: our framing with
    the MLS label reproduces the MLS vector, so the MIMI labels use the same construction."""
    v = suite["sign_with_label"]
    key = m.SigningKey(bytes.fromhex(v["priv"]), "ed25519:mls")
    assert key.public_key == bytes.fromhex(v["pub"])
    label = b"MLS 1.0 " + v["label"].encode()
    content = bytes.fromhex(v["content"])
    assert key.sign_with_label(label, content) == bytes.fromhex(v["signature"])
    m.VerifyKey("ed25519:mls", key.public_key).verify_with_label(label, content, bytes.fromhex(v["signature"]))
    with pytest.raises(m.BadSignatureError):
        m.VerifyKey("ed25519:mls", key.public_key).verify_with_label(v["label"].encode(), content, bytes.fromhex(v["signature"]))


@pytest.mark.parametrize("v", VARINTS, ids=[str(v["length"]) for v in VARINTS])
def test_rfc9420_varints(v):
    header = bytes.fromhex(v["vlbytes_header"])
    assert m.wire.decode_varint(header) == (v["length"], len(header))
    assert m.wire.encode_varint(v["length"]) == header
    # every longer (non-minimal) twin of the same value is refused
    n = v["length"]
    twins = []
    if len(header) < 2 and n < 2**14:
        twins.append((0x4000 | n).to_bytes(2, "big"))
    if len(header) < 4:
        twins.append((0x80000000 | n).to_bytes(4, "big"))
    for twin in twins:
        with pytest.raises(m.MalformedError):
            m.wire.decode_varint(twin)


def test_varint_reserved_prefix_and_truncation():
    with pytest.raises(m.MalformedError):
        m.wire.decode_varint(bytes([0xC0, 0, 0, 0, 0, 0, 0, 1]))
    with pytest.raises(m.MalformedError):
        m.wire.decode_varint(bytes([0x80, 0x00]))
    with pytest.raises(m.MalformedError):
        m.wire.decode_varint(b"")
    with pytest.raises(m.MalformedError):
        m.wire.encode_varint(2**30)


@pytest.mark.parametrize("v", BASE64, ids=[repr(v["input"]) for v in BASE64])
def test_rfc4648_base64url(v):
    data = bytes.fromhex(v["input_hex"])
    assert m.wire.base64url_encode(data) == v["base64url_unpadded"]
    assert m.wire.base64url_decode(v["base64url_unpadded"]) == data
    if v["base64"].endswith("="):
        with pytest.raises(m.MalformedError):
            m.wire.base64url_decode(v["base64"])  # padding is not allowed in event IDs


def test_golden_room_every_derived_form(golden, golden_keys, golden_keyring):
    for v in golden["events"]:
        raw = bytes.fromhex(v["event"])
        ev = m.Event.decode(raw)
        assert ev.encode() == raw
        assert (ev.room_id, ev.type, ev.state_key, ev.sender) == (v["room_id"], v["type"], v["state_key"], v["sender"])
        assert ev.content == bytes.fromhex(v["content"])
        assert ev.auth_events == v["auth_events"]
        assert ev.prev_event == v["prev_event"]
        assert ev.content_hash_input() == bytes.fromhex(v["content_hash_input"])
        assert ev.content_hash() == ev.origin_content_hash == bytes.fromhex(v["origin_content_hash"])
        assert m.redact_content(ev.type, ev.content) == bytes.fromhex(v["redacted_content"])
        assert ev.origin_signed_form() == bytes.fromhex(v["origin_signed_form"])
        assert m.wire.sign_content(m.ORIGIN_LABEL, ev.origin_signed_form()) == bytes.fromhex(v["origin_sign_content"])
        assert ev.reference_hash_input() == bytes.fromhex(v["reference_hash_input"])
        assert ev.reference_hash() == bytes.fromhex(v["reference_hash"])
        assert m.wire.sign_content(m.HUB_LABEL, ev.reference_hash_input()) == bytes.fromhex(v["hub_sign_content"])
        assert ev.event_id == v["event_id"]
        assert ev.limited().encode() == bytes.fromhex(v["limited_event"])
        assert ev.redacted().encode() == bytes.fromhex(v["redacted_event"])

        # rebuild from the seeds: Ed25519 is deterministic, so the bytes must be identical
        origin_key = golden_keys[v["sender"].split(":", 1)[1]]
        hub_key = golden_keys[v["room_id"].split(":", 1)[1]]
        limited = m.LimitedEvent.create(v["room_id"], v["type"], v["state_key"], v["sender"], bytes.fromhex(v["content"]), origin_key)
        assert limited.encode() == bytes.fromhex(v["limited_event"])
        rebuilt = limited.to_event(v["auth_events"], v["prev_event"], hub_key)
        assert rebuilt.encode() == raw
        assert rebuilt.event_id == v["event_id"]

        ev.verify(golden_keyring)
        ev.redacted().verify(golden_keyring)
        assert ev.redacted().event_id == ev.event_id


def test_golden_room_file(golden, golden_keyring, tmp_path):
    path = tmp_path / "golden.mimiroom"
    path.write_bytes(bytes.fromhex(golden["room_file"]))
    reader = m.RoomFileReader(str(path))
    assert sorted(k.server_name for k in reader.server_keys) == ["follower.test", "hub.test"]
    ring = m.KeyRing()
    for k in reader.server_keys:
        ring = ring.with_server_keys(k)
    blobs = reader.read_events(1000)
    assert reader.read_events(1000) == []
    batch = m.ChainValidator(ring).validate(blobs)
    assert batch.error is None
    assert [e.event_id for e in batch.events] == [v["event_id"] for v in golden["events"]]
    # the file's keys are the seeds' keys
    assert {k.server_name: k.keys[0].public_key.hex() for k in reader.server_keys} == {
        s["server_name"]: s["public_key"] for s in golden["servers"]
    }
