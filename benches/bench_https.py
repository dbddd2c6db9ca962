"""The HTTPS submit path, single transactions and batches: a hub and two followers as real ``mimi serve`` processes on
127.0.0.1 (mutual TLS); the benchmark submits as one follower straight to the hub and times
each submit -> accepted.  A bounded loop of ``MIMI_BENCH_SUBMITS`` submits (default 500) per
round; events/s, p50 and p99 latency go to ``extra_info``, and so do the time until both
followers hold the last event and the CPU milliseconds per event of each process.  The
benchmark's own time includes the warm-up submits and the wait for the followers; the
``events_per_second`` in ``extra_info`` is the submit loop's alone."""

from __future__ import annotations

import pytest

import workloads as w
from conftest import HTTPS_SUBMITS

WARMUP = 10


@pytest.mark.parametrize("concurrency", [1, 8])
def test_https_submit(benchmark, https_cluster: w.HttpsCluster, concurrency: int) -> None:
    runs = []

    def setup():
        return (https_cluster.limited_events(HTTPS_SUBMITS + WARMUP),), {}

    def run(events):
        stats = https_cluster.submit(events, concurrency=concurrency, warmup=WARMUP)
        runs.append(stats)
        return stats

    benchmark.extra_info["events"] = HTTPS_SUBMITS
    benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    stats = runs[-1]
    summary = stats.summary()
    benchmark.extra_info.update({k: v for k, v in summary.items() if k not in ("submits", "concurrency", "mean_ms")})
    benchmark.extra_info["concurrency"] = concurrency
    assert stats.submits == HTTPS_SUBMITS and len(stats.latencies) == HTTPS_SUBMITS


def test_https_submit_batches(benchmark, https_cluster: w.HttpsCluster) -> None:
    """The same count as ``mimi.signaling.batch`` requests of 256 from both followers' users
    (2 in flight each): events/s, latency per event (its request's), the followers' wait and
    CPU per event, as above."""
    runs = []
    half = max(256, HTTPS_SUBMITS // 2)

    def setup():
        return (https_cluster.limited_events(half + 256), https_cluster.limited_events(half + 256, beta=True)), {}

    def run(alpha, beta):
        stats = https_cluster.submit_batches(alpha, beta, batch=256, in_flight=2)
        runs.append(stats)
        return stats

    benchmark.extra_info["events"] = 2 * half
    benchmark.pedantic(run, setup=setup, rounds=1, iterations=1)
    summary = runs[-1].summary()
    benchmark.extra_info.update({k: v for k, v in summary.items() if k not in ("submits", "mean_ms")})
    assert runs[-1].submits == 2 * half and len(runs[-1].latencies) == 2 * half
