"""The hub's accept with the m.0 policy and a durable SQLite file (WAL, ``synchronous=FULL``):
one event per call (a commit each) and ``accept_many`` (group commit)."""

from __future__ import annotations

import pytest

import mimi_signaling as m

import workloads as w

ROUNDS = 200
GROUP_ROUNDS = 10


def test_hub_accept_one(benchmark, hub_workload: w.HubWorkload) -> None:
    """decode + accept (policy, sign, durable append with the fan-out entries) + encode."""
    events = iter(hub_workload.limited_events(0, ROUNDS + 5))
    benchmark.extra_info["events"] = 1
    benchmark.pedantic(hub_workload.accept_one, setup=lambda: ((next(events),), {}), rounds=ROUNDS, iterations=1)


@pytest.mark.parametrize("group", [16, 256, 1024])
def test_hub_accept_many(benchmark, hub_workload: w.HubWorkload, group: int) -> None:
    if not hasattr(hub_workload.hub, "accept_many"):
        pytest.skip("this hub has no accept_many (group commit)")
    groups = iter([hub_workload.limited_events(0, group) for _ in range(GROUP_ROUNDS + 1)])

    def accept(raws):
        results = hub_workload.hub.accept_many([(m.LimitedEvent.decode(r), w.ORIGIN) for r in raws])
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [r.encode() for r in results]

    benchmark.extra_info["events"] = group
    benchmark.pedantic(accept, setup=lambda: ((next(groups),), {}), rounds=GROUP_ROUNDS, iterations=1)
