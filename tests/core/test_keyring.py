"""``KeyRing`` is immutable: adding keys makes a new ring, so a ring a check (or another
thread) holds never changes under it."""

from __future__ import annotations

import pytest

import mimi_signaling as m


def test_with_key_returns_a_new_ring_and_leaves_the_old_one():
    key = m.SigningKey.generate("ed25519:a").verify_key()
    empty = m.KeyRing()
    one = empty.with_key("a.example", key)
    assert one is not empty
    assert not empty.has_server("a.example") and empty.servers() == []
    assert one.servers() == ["a.example"] and [k.key_id for k in one.get("a.example")] == ["ed25519:a"]


def test_with_server_keys_and_the_constructor_agree():
    a = m.ServerKeys("a.example", [m.SigningKey.generate("ed25519:a").verify_key()])
    b = m.ServerKeys("b.example", [m.SigningKey.generate("ed25519:b").verify_key()])
    built = m.KeyRing([a, b])
    chained = m.KeyRing().with_server_keys(a).with_server_keys(b)
    assert built.servers() == chained.servers() == ["a.example", "b.example"]
    assert [k.encode() for k in built.get("b.example")] == [k.encode() for k in chained.get("b.example")]


def test_a_ring_has_no_mutators():
    ring = m.KeyRing()
    for name in ("add", "add_server_keys", "copy"):
        assert not hasattr(ring, name)
    with pytest.raises(AttributeError):
        ring.extra = 1  # frozen: no attributes either


def test_a_bad_server_name_is_refused_and_changes_nothing():
    ring = m.KeyRing()
    with pytest.raises(m.MalformedError):
        ring.with_key("not a name", m.SigningKey.generate().verify_key())
    assert ring.servers() == []
