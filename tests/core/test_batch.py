"""The batch entry points on a 100,000-event chain: decode, hash, ID and verify in one call,
and exact localisation of a bad event."""

from __future__ import annotations

import numpy as np
import pytest

import mimi_signaling as m

N = 100_000


@pytest.fixture(scope="module")
def chain():
    key = m.SigningKey.generate("ed25519:hub")
    ring = m.KeyRing()
    ring = ring.with_key("hub.test", key.verify_key())
    room = "!big:hub.test"
    create = m.LimitedEvent.create(room, "m.room.create", "", "@a:hub.test", m.CreateContent("m.0", "org.example.plain").encode(), key)
    ev = create.to_event([], "", key)
    blobs, ids = [ev.encode()], [ev.event_id]
    for i in range(1, N):
        limited = m.LimitedEvent.create(room, "m.room.encrypted", None, "@a:hub.test", i.to_bytes(4, "big") * 16, key)
        ev = limited.to_event([ids[0]], ids[-1], key)
        blobs.append(ev.encode())
        ids.append(ev.event_id)
    return ring, blobs, ids


def test_check_events_batch_of_100k(chain):
    ring, blobs, ids = chain
    result = m.check_events(blobs, ring)
    assert result.count == N
    assert result.failures == []
    assert result.event_ids == ids
    hashes = np.frombuffer(result.reference_hashes, dtype=np.uint8).reshape(-1, 32)
    assert hashes.shape == (N, 32)
    assert "$" + m.wire.base64url_encode(hashes[12345].tobytes()) == ids[12345]
    assert m.compute_event_ids(blobs[:1000]) == ids[:1000]


def test_checked_events_gives_the_events_that_pass_and_the_failures_of_check_events(chain):
    """``checked_events`` (a follower's one call per run of deliveries): the verdicts of
    ``check_events``, and each event that passes decoded with its ID (None for the others)."""
    ring, blobs, ids = chain
    sample = list(blobs[:300])
    sample[7] = sample[7][:-1] + bytes([sample[7][-1] ^ 1])  # a signature byte: bad_signature
    sample[20] = b"\x00garbage"  # does not decode
    events, failures = m.checked_events(sample, ring)
    expected = m.check_events(sample, ring).failures
    assert [(i, type(e), e.event_id) for i, e in failures] == [(i, type(e), e.event_id) for i, e in expected]
    assert [i for i, _ in failures] == [7, 20] and failures[0][1].event_id == ids[7]
    assert [i for i, e in enumerate(events) if e is None] == [7, 20]
    passed = [i for i in range(300) if i not in (7, 20)]
    assert [events[i].event_id for i in passed] == [ids[i] for i in passed]
    assert [events[i].encode() for i in passed] == [blobs[i] for i in passed]
    assert m.checked_events([], ring) == ([], [])


def test_chain_validator_in_chunks(chain):
    ring, blobs, ids = chain
    validator = m.ChainValidator(ring)
    seen = []
    for start in range(0, N, 16_384):
        batch = validator.validate(blobs[start : start + 16_384])
        assert batch.error is None
        seen.extend(e.event_id for e in batch.events)
    assert seen == ids
    assert validator.next_index == N and validator.last_event_id == ids[-1]


@pytest.mark.parametrize("bad_index", [1, 777, 54_321, N - 1])
def test_one_bad_signature_is_found_exactly(chain, bad_index):
    ring, blobs, ids = chain
    tampered = list(blobs)
    raw = bytearray(tampered[bad_index])
    raw[-1] ^= 0x40  # last byte of the origin signature
    tampered[bad_index] = bytes(raw)
    result = m.check_events(tampered, ring)
    assert [i for i, _ in result.failures] == [bad_index]
    err = result.failures[0][1]
    assert isinstance(err, m.BadSignatureError) and err.index == bad_index and err.event_id == ids[bad_index]
    batch = m.ChainValidator(ring, threads=2).validate(tampered)
    assert len(batch.events) == bad_index
    assert isinstance(batch.error, m.BadSignatureError) and batch.error.index == bad_index


def test_broken_link_and_decode_error_are_located(chain):
    ring, blobs, ids = chain
    swapped = list(blobs[:1000])
    swapped[500], swapped[501] = swapped[501], swapped[500]
    batch = m.ChainValidator(ring).validate(swapped)
    assert batch.error.index == 500 and batch.error.event_id == ids[501]
    assert isinstance(batch.error, m.MalformedError) and "prev_event" in str(batch.error)
    broken = list(blobs[:1000])
    broken[10] = broken[10][:-5]
    batch = m.ChainValidator(ring).validate(broken)
    assert batch.error.index == 10 and batch.error.event_id is None and len(batch.events) == 10
    with pytest.raises(m.MalformedError) as info:
        m.decode_events(broken)
    assert info.value.index == 10


def test_plain_signature_batch(chain):
    key = m.SigningKey.generate()
    msgs = [i.to_bytes(8, "big") for i in range(500)]
    sigs = [key.sign(x) for x in msgs]
    sigs[123] = key.sign(b"other")
    assert m.verify_signatures_batch(msgs, sigs, [key.public_key] * 500) == [123]
    with pytest.raises(m.MalformedError):
        m.verify_signatures_batch(msgs, sigs[:-1], [key.public_key] * 500)


def test_group_commit_primitives_match_the_single_event_path(chain):
    """verify_limited_events + to_unsigned_event + sign_events give what verify + to_event give."""
    key = m.SigningKey.generate("ed25519:hub")
    ring = m.KeyRing()
    ring = ring.with_key("hub.test", key.verify_key())
    limited = [m.LimitedEvent.create("!r:hub.test", "m.room.encrypted", None, "@a:hub.test", i.to_bytes(2, "big") * 16, key) for i in range(300)]
    assert m.verify_limited_events(limited, ring) == [None] * 300
    tampered = list(limited)
    raw = bytearray(tampered[17].encode())
    raw[-1] ^= 1
    tampered[17] = m.LimitedEvent.decode(bytes(raw))
    verdicts = m.verify_limited_events(tampered, ring)
    assert [i for i, v in enumerate(verdicts) if v is not None] == [17]
    assert isinstance(verdicts[17], m.BadSignatureError)
    prev = "$" + "A" * 43
    unsigned = [lim.to_unsigned_event([prev], prev, key.key_id) for lim in limited]
    signed = m.sign_events(unsigned, key)
    expected = [lim.to_event([prev], prev, key) for lim in limited]
    assert [e.encode() for e in signed] == [e.encode() for e in expected]
    assert [e.event_id for e in unsigned] == [e.event_id for e in expected]
    for e in signed[:10]:
        e.verify(ring)
