"""Signing and verification: single calls and batches (1, 16, 256, 4096 events)."""

from __future__ import annotations

from typing import List

import pytest

import mimi_signaling as m

from conftest import BATCH_SIZES, batches


def test_sign_hub_signature(benchmark, message: bytes, hub_key: m.SigningKey) -> None:
    """One hub signature: Ed25519 over SignContent(hub label, reference-hash input)."""
    content = m.Event.decode(message).reference_hash_input()
    benchmark.extra_info["events"] = 1
    signature = benchmark(hub_key.sign_with_label, m.HUB_LABEL, content)
    hub_key.verify_key().verify_with_label(m.HUB_LABEL, content, signature)


def test_limited_event_create(benchmark, hub_key: m.SigningKey) -> None:
    """What an origin does per message: content hash + origin signature."""
    content = bytes(256)
    benchmark.extra_info["events"] = 1
    benchmark(m.LimitedEvent.create, "!bench:hub.example", "m.room.encrypted", None, "@u:hub.example", content, hub_key)


def test_verify_single_signature(benchmark, message: bytes, ring: m.KeyRing) -> None:
    event = m.Event.decode(message)
    key = ring.get(event.hub_server)[0]
    content = event.reference_hash_input()
    signature = event.hub_signature[0].signature
    benchmark.extra_info["events"] = 1
    benchmark(key.verify_with_label, m.HUB_LABEL, content, signature)


def test_verify_event(benchmark, message: bytes, ring: m.KeyRing) -> None:
    """One whole event: content hash, origin and hub signatures (2 verifies)."""
    event = m.Event.decode(message)
    benchmark.extra_info["events"] = 1
    benchmark(event.verify, ring)


def test_single_event_api(benchmark, message: bytes, ring: m.KeyRing) -> None:
    """decode + verify + event ID, as a one-event-at-a-time caller does it."""

    def one() -> str:
        event = m.Event.decode(message)
        event.verify(ring)
        return event.event_id

    benchmark.extra_info["events"] = 1
    benchmark(one)


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_check_events_batch(benchmark, messages: List[bytes], ring: m.KeyRing, size: int) -> None:
    """Decode, hashes, IDs and batch Ed25519 of independent events, all cores."""
    blobs = batches(messages, size)
    benchmark.extra_info["events"] = size
    result = benchmark(m.check_events, blobs, ring)
    assert not result.failures


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_verify_signatures_batch(benchmark, messages: List[bytes], ring: m.KeyRing, size: int) -> None:
    """Plain batch Ed25519 over each event's two signed messages (2 signatures per event)."""
    events = m.decode_events(batches(messages, size))
    msgs, sigs, keys = [], [], []
    for e in events:
        msgs += [m.wire.sign_content(m.ORIGIN_LABEL, e.origin_signed_form()), m.wire.sign_content(m.HUB_LABEL, e.reference_hash_input())]
        sigs += [e.origin_signature[0].signature, e.hub_signature[0].signature]
        keys += [ring.get(e.origin_server)[0].public_key, ring.get(e.hub_server)[0].public_key]
    benchmark.extra_info["events"] = size
    benchmark.extra_info["signatures"] = 2 * size
    assert benchmark(m.verify_signatures_batch, msgs, sigs, keys) == []


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_sign_events_batch(benchmark, messages: List[bytes], hub_key: m.SigningKey, size: int) -> None:
    """The hub's group signing (``sign_events``) of events made by ``to_unsigned_event``."""
    if not hasattr(m, "sign_events"):
        pytest.skip("this build has no sign_events")
    unsigned = [
        e.limited().to_unsigned_event(e.auth_events, e.prev_event, hub_key.key_id)
        for e in m.decode_events(batches(messages, size))
    ]
    benchmark.extra_info["events"] = size
    assert len(benchmark(m.sign_events, unsigned, hub_key)) == size


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_verify_limited_events_batch(benchmark, messages: List[bytes], ring: m.KeyRing, size: int) -> None:
    """The hub's batch check of submitted limited events: content hash + origin signature."""
    if not hasattr(m, "verify_limited_events"):
        pytest.skip("this build has no verify_limited_events")
    limited = [e.limited() for e in m.decode_events(batches(messages, size))]
    benchmark.extra_info["events"] = size
    assert all(v is None for v in benchmark(m.verify_limited_events, limited, ring))
