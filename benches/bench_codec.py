"""Encoding, decoding and event IDs: one event, and batches (1, 16, 256, 4096 events)."""

from __future__ import annotations

from typing import List

import pytest

import mimi_signaling as m

from conftest import BATCH_SIZES, batches


def test_decode(benchmark, message: bytes) -> None:
    benchmark.extra_info["events"] = 1
    event = benchmark(m.Event.decode, message)
    assert event.encode() == message


def test_encode(benchmark, message: bytes) -> None:
    event = m.Event.decode(message)
    benchmark.extra_info["events"] = 1
    assert benchmark(event.encode) == message


def test_event_id(benchmark, message: bytes) -> None:
    """Decode + reference hash + base64 (``Event.event_id`` is cached per object, so this
    goes through ``compute_event_ids``)."""
    benchmark.extra_info["events"] = 1
    ids = benchmark(m.compute_event_ids, [message])
    assert ids == [m.Event.decode(message).event_id]


def test_limited_encode_decode(benchmark, message: bytes) -> None:
    limited = m.Event.decode(message).limited().encode()
    benchmark.extra_info["events"] = 1
    benchmark(lambda: m.LimitedEvent.decode(limited).encode())


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_decode_events_batch(benchmark, messages: List[bytes], size: int) -> None:
    blobs = batches(messages, size)
    benchmark.extra_info["events"] = size
    assert len(benchmark(m.decode_events, blobs)) == size


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_compute_event_ids_batch(benchmark, messages: List[bytes], size: int) -> None:
    blobs = batches(messages, size)
    benchmark.extra_info["events"] = size
    assert len(benchmark(m.compute_event_ids, blobs)) == size
