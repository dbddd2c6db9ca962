"""mimi.signaling.batch on the wire (PROFILE.md section 7): the core's encoders and strict
decoders of BatchRequest and BatchResponse, and their limits."""

from __future__ import annotations

import struct

import pytest

import mimi_signaling as ms

KEYS = "mimi.signaling.keys"


def envelope(transaction_type: str, payload: bytes, version: int = 1) -> bytes:
    t = transaction_type.encode()
    return struct.pack(">H", version) + ms.wire.encode_varint(len(t)) + t + ms.wire.encode_varint(len(payload)) + payload


def raw_batch(envelopes: list) -> bytes:
    body = b"".join(envelopes)
    return ms.wire.encode_varint(len(body)) + body


def test_round_trip_keeps_order_types_and_bytes() -> None:
    entries = [(KEYS, b""), ("mimi.signaling.submit", b"\x01\x02"), ("org.example.unknown", b"x" * 300)]
    data = ms.wire.encode_batch_request(entries)
    assert ms.wire.decode_batch_request(data) == entries
    assert data == raw_batch([envelope(t, p) for t, p in entries])
    results = [(200, b"ok"), (403, ms.wire.encode_error_body(4, "no")), (200, b"")]
    assert ms.wire.decode_batch_response(ms.wire.encode_batch_response(results), 3) == results


def test_transaction_type_table_names_batch_once() -> None:
    assert ms.BATCH_TRANSACTION == "mimi.signaling.batch"
    assert ms.TRANSACTION_TYPES.count(ms.BATCH_TRANSACTION) == 1
    assert (ms.MAX_BATCH_ENTRIES, ms.MAX_BATCH_BODY) == (1024, 16 * 1024 * 1024)


@pytest.mark.parametrize("count", [0, ms.MAX_BATCH_ENTRIES + 1])
def test_entry_count_outside_1_to_1024_is_malformed(count: int) -> None:
    with pytest.raises(ms.MalformedError):
        ms.wire.encode_batch_request([(KEYS, b"")] * count)
    with pytest.raises(ms.MalformedError):
        ms.wire.decode_batch_request(raw_batch([envelope(KEYS, b"")] * count))
    assert len(ms.wire.decode_batch_request(raw_batch([envelope(KEYS, b"")] * ms.MAX_BATCH_ENTRIES))) == 1024


def test_nested_batch_and_bad_types_refuse_the_whole_batch() -> None:
    with pytest.raises(ms.MalformedError, match="nest"):
        ms.wire.encode_batch_request([(KEYS, b""), (ms.BATCH_TRANSACTION, b"")])
    inner = ms.wire.encode_batch_request([(KEYS, b"")])
    with pytest.raises(ms.MalformedError, match="nest"):
        ms.wire.decode_batch_request(raw_batch([envelope(KEYS, b""), envelope(ms.BATCH_TRANSACTION, inner)]))
    with pytest.raises(ms.MalformedError):
        ms.wire.decode_batch_request(raw_batch([envelope("", b"")]))
    with pytest.raises(ms.UnsupportedVersionError):
        ms.wire.decode_batch_request(raw_batch([envelope(KEYS, b"", version=2)]))


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"\x05\x00\x01", raw_batch([envelope(KEYS, b"")]) + b"\x00", b"\x40\x01" + b"\x00"],
)
def test_malformed_encodings_are_refused(data: bytes) -> None:
    with pytest.raises(ms.MalformedError):
        ms.wire.decode_batch_request(data)


def test_body_over_16_mib_is_too_large_before_decoding() -> None:
    with pytest.raises(ms.TooLargeError):
        ms.wire.decode_batch_request(b"\x00" * (ms.MAX_BATCH_BODY + 1))
    with pytest.raises(ms.TooLargeError):
        ms.wire.encode_batch_request([("mimi.signaling.deliver", b"\x00" * ms.MAX_BATCH_BODY)])


def test_response_must_answer_every_entry_with_an_http_status() -> None:
    data = ms.wire.encode_batch_response([(200, b"")])
    with pytest.raises(ms.MalformedError):
        ms.wire.decode_batch_response(data, 2)
    bad_status = ms.wire.encode_varint(3) + struct.pack(">H", 302) + b"\x00"
    with pytest.raises(ms.MalformedError):
        ms.wire.decode_batch_response(bad_status, 1)
