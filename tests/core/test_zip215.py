"""ZIP 215 through the public Python API (PROFILE.md sections 2 and 8): the ten edge cases of
``../shared/vectors/ed25519_zip215.json`` through single and batch verification, published
keys that are small-order or non-canonical refused as ``malformed``, and random batches of
events mixing valid origin signatures, wrong ones, ones with a small-order component in R
and S + L, where every batch entry point names exactly the events single verification
refuses (``mimi verify`` on such room files: tests/roomfile/test_roomfile_zip215.py)."""

from __future__ import annotations

import os
from typing import List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import ed25519_edge as edge
import mimi_signaling as m
from support.vectors import load_vectors

HUB = "hub.test"
ORIGINS = ["a.test", "b.test"]
ROOM = f"!zip215:{HUB}"
PREV = "$" + "A" * 43  # any well-formed ID: these checks do not follow links


def test_edge_signer_is_rfc8032_without_torsion() -> None:
    """The test's hand-made signer gives RFC 8032's bytes (SigningKey.sign) when R has no
    small-order part, and a different R with it."""
    for i in range(4):
        seed = os.urandom(32)
        message = os.urandom(i * 40)
        assert edge.sign(seed, message) == m.SigningKey(seed, "ed25519:t").sign(message)
        assert edge.sign(seed, message, torsion=1 + i)[:32] != edge.sign(seed, message)[:32]


def test_zip215_vectors_single_and_batch() -> None:
    cases = load_vectors("ed25519_zip215.json")["cases"]
    assert len(cases) == 10
    messages = [bytes.fromhex(c["message"]) for c in cases]
    signatures = [bytes.fromhex(c["signature"]) for c in cases]
    keys = [bytes.fromhex(c["public_key"]) for c in cases]
    expected = [i for i, c in enumerate(cases) if not c["valid"]]
    assert m.verify_signatures_batch(messages, signatures, keys) == expected
    assert m.verify_signatures_batch(messages[::-1], signatures[::-1], keys[::-1]) == sorted(9 - i for i in expected)
    for i, case in enumerate(cases):
        # The batch path with the case alone, then the single path.
        assert m.verify_signatures_batch([messages[i]], [signatures[i]], [keys[i]]) == ([] if case["valid"] else [0])
        if case["public_key_small_order"]:
            # Section 8: such a key is never published, so it never verifies anything here.
            with pytest.raises(m.MalformedError):
                m.VerifyKey("ed25519:k", keys[i])
            continue
        key = m.VerifyKey("ed25519:k", keys[i])
        if case["valid"]:
            key.verify(messages[i], signatures[i])
        else:
            with pytest.raises(m.BadSignatureError):
                key.verify(messages[i], signatures[i])


def _server_keys_bytes(server: str, public_key: bytes) -> bytes:
    """A ``ServerKeys`` encoding (section 8) built by hand: the constructors refuse the key."""
    key_id = b"ed25519:k"
    verify_key = m.wire.encode_varint(len(key_id)) + key_id + m.wire.encode_varint(len(public_key)) + public_key + bytes(8)
    name = server.encode()
    return m.wire.encode_varint(len(name)) + name + m.wire.encode_varint(len(verify_key)) + verify_key


@pytest.mark.parametrize(
    "what, public_key",
    [
        ("identity", (1).to_bytes(32, "little")),
        ("point of order 8", bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")),
        ("point of order 4", bytes(32)),
        ("order 2", (edge.P - 1).to_bytes(32, "little")),
        ("y = p + 1, non-canonical identity", (edge.P + 1).to_bytes(32, "little")),
        ("x = 0 with the sign bit set", ((1 << 255) | 1).to_bytes(32, "little")),
        ("not a point", (2).to_bytes(32, "little")),
        ("31 bytes", bytes(31)),
    ],
)
def test_published_keys_must_be_canonical_and_not_small_order(what: str, public_key: bytes) -> None:
    with pytest.raises(m.MalformedError):
        m.VerifyKey("ed25519:k", public_key)
    with pytest.raises(m.MalformedError):
        m.ServerKeys.decode(_server_keys_bytes("evil.test", public_key))
    good = m.ServerKeys.decode(_server_keys_bytes("evil.test", m.SigningKey.generate().public_key))
    assert len(good.keys) == 1  # the hand-made encoding itself is right


# --- random batches of events ---------------------------------------------------------------

KINDS = ["valid", "torsion", "wrong", "s_plus_l"]
SEEDS = {name: bytes([i + 1]) * 32 for i, name in enumerate([HUB, *ORIGINS])}
KEYS = {name: m.SigningKey(seed, f"ed25519:{name[0]}") for name, seed in SEEDS.items()}


def _ring() -> m.KeyRing:
    ring = m.KeyRing()
    for name, key in KEYS.items():
        ring = ring.with_key(name, key.verify_key())
    return ring


def _limited(origin: str, kind: str, torsion: int, text: bytes) -> bytes:
    """A message of a user of ``origin`` whose origin signature is of the given kind."""
    limited = m.LimitedEvent.create(ROOM, "m.room.encrypted", None, f"@u:{origin}", text, KEYS[origin])
    if kind == "valid":
        return limited.encode()
    if kind == "wrong":  # a valid signature of another event
        other = m.LimitedEvent.create(ROOM, "m.room.encrypted", None, f"@u:{origin}", text + b"!", KEYS[origin])
        return edge.with_origin_signature(limited.encode(), other.origin_signature[0].signature)
    return edge.limited_with(limited, SEEDS[origin], torsion=torsion if kind == "torsion" else 0,
                             plus_l=kind == "s_plus_l")


entries = st.lists(
    st.tuples(st.sampled_from(ORIGINS), st.sampled_from(KINDS), st.integers(1, 7), st.binary(max_size=24)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=25, deadline=None)
@given(entries)
def test_batch_names_exactly_the_events_single_verification_refuses(batch: List[Tuple[str, str, int, bytes]]) -> None:
    ring = _ring()
    limited = [m.LimitedEvent.decode(_limited(o, k, t, text)) for o, k, t, text in batch]
    events = [lim.to_event([], PREV, KEYS[HUB]) for lim in limited]
    expected = [i for i, (_, kind, _, _) in enumerate(batch) if kind in ("wrong", "s_plus_l")]

    # Single verification: the profile's verdict (a small-order part in R is valid).
    single = []
    for i, (lim, ev) in enumerate(zip(limited, events)):
        try:
            ev.verify(ring)
        except m.BadSignatureError:
            single.append(i)
            with pytest.raises(m.BadSignatureError):
                lim.verify(ring)
        else:
            lim.verify(ring)
    assert single == expected

    # The hub's batch (limited events) and the follower's batch (events): the same events.
    verdicts = m.verify_limited_events(limited, ring)
    assert [i for i, v in enumerate(verdicts) if v is not None] == expected
    assert all(isinstance(verdicts[i], m.BadSignatureError) for i in expected)
    result = m.check_events([ev.encode() for ev in events], ring)
    assert [i for i, _ in result.failures] == expected
    for i, error in result.failures:
        assert isinstance(error, m.BadSignatureError) and error.index == i
        assert error.event_id == events[i].event_id
        assert str(error).startswith("origin_signature")
    # The plain signature batch on the origin signatures.
    messages = [edge.origin_message(lim) for lim in limited]
    signatures = [lim.origin_signature[0].signature for lim in limited]
    keys = [KEYS[o].public_key for o, _, _, _ in batch]
    assert m.verify_signatures_batch(messages, signatures, keys) == expected
