"""Fixtures of the pytest-benchmark files (``benches/bench_*.py``).

Run: ``python -m pytest benches --benchmark-only`` (the main test run never collects these:
``testpaths = ["tests"]``).  Sizes: ``MIMI_BENCH_EVENTS`` (room events, default 20,000) and
``MIMI_BENCH_SUBMITS`` (HTTPS submits per loop, default 500).  Skip the real-process HTTPS
benchmarks with ``-k "not https"``.

Each benchmark that handles several events per call records ``events`` in ``extra_info``;
the summary at the end prints events/s (calls/s x events per call).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import mimi_signaling as m  # noqa: E402

import workloads as w  # noqa: E402

ROOM_EVENTS = int(os.environ.get("MIMI_BENCH_EVENTS", "20000"))
HTTPS_SUBMITS = int(os.environ.get("MIMI_BENCH_SUBMITS", "500"))
BATCH_SIZES = (1, 16, 256, 4096)


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> Any:
    """Collect ``bench_*.py`` as test modules (pytest's default pattern is ``test_*.py``); a
    file named on the command line is collected by pytest itself."""
    if parent.session.isinitpath(file_path):
        return None
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


# --- shared inputs -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mimi-bench")


@pytest.fixture(scope="session")
def room_path(bench_dir: Path) -> Path:
    return w.room_file(bench_dir, ROOM_EVENTS)


@pytest.fixture(scope="session")
def room(room_path: Path) -> Tuple[m.KeyRing, List[bytes]]:
    """The key ring and every encoded event of the room, in order."""
    return w.load_room(room_path)


@pytest.fixture(scope="session")
def ring(room: Tuple[m.KeyRing, List[bytes]]) -> m.KeyRing:
    return room[0]


@pytest.fixture(scope="session")
def blobs(room: Tuple[m.KeyRing, List[bytes]]) -> List[bytes]:
    return room[1]


@pytest.fixture(scope="session")
def messages(blobs: List[bytes]) -> List[bytes]:
    """The ``m.room.encrypted`` events (256-byte ciphertexts), the bulk of any room."""
    return w.message_events(blobs)


@pytest.fixture(scope="session")
def message(messages: List[bytes]) -> bytes:
    return messages[len(messages) // 2]


@pytest.fixture(scope="session")
def hub_key() -> m.SigningKey:
    return m.SigningKey(bytes(range(32)), "ed25519:bench")


def batches(items: List[bytes], size: int) -> List[bytes]:
    """``size`` items (cycled when the room is smaller)."""
    if len(items) >= size:
        return items[:size]
    return [items[i % len(items)] for i in range(size)]


# --- the hub and the cluster ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def hub_workload(bench_dir: Path) -> Iterator[w.HubWorkload]:
    hub = w.HubWorkload(bench_dir / "hub", rooms=1)
    yield hub
    hub.close()


@pytest.fixture(scope="session")
def https_cluster(bench_dir: Path) -> Iterator[w.HttpsCluster]:
    cluster = w.HttpsCluster(bench_dir / "cluster")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


# --- events/s in the summary ---------------------------------------------------------------------


def pytest_terminal_summary(terminalreporter: Any) -> None:
    session = getattr(terminalreporter.config, "_benchmarksession", None)
    if session is None or not getattr(session, "benchmarks", None):
        return
    rows: List[Dict[str, Any]] = []
    for bench in session.benchmarks:
        stats = getattr(bench, "stats", None)
        events = bench.extra_info.get("events")
        if stats is None or not events or not stats.min:
            continue
        rows.append({
            "name": bench.fullname.split("::", 1)[-1],
            "best": events / stats.min,
            "median": events / stats.median,
            "extra": {k: v for k, v in bench.extra_info.items() if k != "events"},
        })
    if not rows:
        return
    terminalreporter.section("events per second (events per call / time per call)")
    width = max(len(r["name"]) for r in rows)
    terminalreporter.write_line(f"{'benchmark':{width}}  {'best':>12}  {'median':>12}")
    for r in rows:
        extra = "  " + ", ".join(f"{k}={v}" for k, v in r["extra"].items()) if r["extra"] else ""
        terminalreporter.write_line(f"{r['name']:{width}}  {r['best']:12,.0f}  {r['median']:12,.0f}{extra}")
