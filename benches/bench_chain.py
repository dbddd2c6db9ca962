"""Chain validation of a room file: ``ChainValidator`` by batch size and threads, and
``verify_room_file`` (``mimi verify`` in-process, policy pass included)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest

import mimi_signaling as m
from mimi_signaling.roomfile import verify_room_file

import workloads as w
from conftest import BATCH_SIZES

#: Events validated per round at batch sizes 1 and 16 (they cost one call per few events).
SMALL_BATCH_EVENTS = 2048


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("size", BATCH_SIZES)
def test_chain_validator(benchmark, blobs: List[bytes], ring: m.KeyRing, size: int, threads: int) -> None:
    part = blobs[:SMALL_BATCH_EVENTS] if size < 256 else blobs
    benchmark.extra_info["events"] = len(part)
    benchmark.extra_info["threads"] = threads
    valid = benchmark.pedantic(w.chain_validate, args=(part, ring, size, threads), rounds=3, iterations=1)
    assert valid == len(part)


@pytest.mark.parametrize("threads", [1, 2])
def test_verify_room_file(benchmark, room_path: Path, blobs: List[bytes], threads: int) -> None:
    benchmark.extra_info["events"] = len(blobs)
    benchmark.extra_info["threads"] = threads
    report = benchmark.pedantic(verify_room_file, args=(room_path,), kwargs={"threads": threads}, rounds=3, iterations=1)
    assert report.ok and report.events_checked == len(blobs)
    benchmark.extra_info["policy_share"] = round(report.policy_seconds / report.elapsed, 3)
