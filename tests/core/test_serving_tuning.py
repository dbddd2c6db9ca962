"""What ``mimi serve`` changes in its own process: the GC's young-generation threshold (and a
frozen start-up heap) and mimalloc's purge delay; an operator's ``MIMALLOC_PURGE_DELAY`` wins."""

from __future__ import annotations

import gc
from typing import List

import pytest

import mimi_signaling._core as core
from mimi_signaling.cli import serve


def test_purge_delay_is_checked() -> None:
    for bad in (-2, 3_600_001):
        with pytest.raises(ValueError):
            core._set_allocator_purge_delay(bad)
    core._set_allocator_purge_delay(-1)
    core._set_allocator_purge_delay(0)  # the extension's own default, back


def test_serving_keeps_freed_memory_unless_the_operator_says(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[int] = []
    monkeypatch.setattr(core, "_set_allocator_purge_delay", calls.append)
    monkeypatch.delenv("MIMALLOC_PURGE_DELAY", raising=False)
    serve.tune_allocator_for_serving()
    assert calls == [serve.SERVING_PURGE_DELAY_MS]
    monkeypatch.setenv("MIMALLOC_PURGE_DELAY", "0")
    serve.tune_allocator_for_serving()
    assert calls == [serve.SERVING_PURGE_DELAY_MS]


def test_serving_collects_less_often() -> None:
    before = gc.get_threshold()
    try:
        serve.tune_gc_for_serving()
        assert gc.get_threshold() == (serve.SERVING_GC_THRESHOLD,) + before[1:]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
