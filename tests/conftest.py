"""Shared fixtures: the public test vectors in ../shared/vectors (read from there, never
copied), Ed25519 keys for the golden servers, and the real server processes of the process
tests (e2e/, reliability/), always reaped at teardown."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest

from mimi_signaling.config import Config
from mimi_signaling.testing.cluster import Cluster, ServerProcess

from support.pg import fresh_pg_url, pg_url  # noqa: F401 - the PostgreSQL fixtures, for every folder
from support.relkit import reap  # the one process reaper
from support.vectors import load_vectors


@pytest.fixture(scope="session")
def golden():
    return load_vectors("mimi_events.json")


@pytest.fixture(scope="session")
def golden_keys(golden):
    """server name -> SigningKey, from the golden seeds."""
    from mimi_signaling import SigningKey

    return {s["server_name"]: SigningKey(bytes.fromhex(s["seed"]), s["key_id"]) for s in golden["servers"]}


@pytest.fixture(scope="session")
def golden_keyring(golden_keys):
    from mimi_signaling import KeyRing

    ring = KeyRing()
    for server, key in golden_keys.items():
        ring = ring.with_key(server, key.verify_key())
    return ring


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """``make_cluster(names, storage=None, configure=None)``: a started cluster, reaped after
    the test."""
    made: List[Cluster] = []

    def make(names: List[str], storage: Optional[Dict[str, str]] = None,
             configure: Optional[Callable[[Config], None]] = None) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(made)}", names, storage=storage, configure=configure)
        made.append(cluster)
        cluster.start()
        return cluster

    yield make
    reap(s for c in made for s in c.servers.values())


@pytest.fixture
def extra_processes() -> Iterator[List[ServerProcess]]:
    """Server processes a test builds by hand (not through ``Cluster``), reaped after it."""
    started: List[ServerProcess] = []
    yield started
    reap(started)


# The fast lane (`pytest -m "not slow"`): everything that starts real server processes, and
# everything built on a 100,000-event room, is `slow`. Marked here by folder and fixture so a
# new process or big-room test cannot be forgotten; scripts/test.sh (CI) still runs everything.
PROCESS_TEST_DIRS = frozenset({"e2e", "reliability", "ops"})
BIG_ROOM_FIXTURES = frozenset({"chain"})  # tests/core/test_batch.py: the 100k-event chain
#: Model-based runs over many generated rooms (several seconds each).
MODEL_TEST_FILES = frozenset({"test_hub_policy_model.py"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        big_room = item.path.name == "test_batch.py" and BIG_ROOM_FIXTURES & set(item.fixturenames)
        model = item.path.name in MODEL_TEST_FILES
        if set(item.path.parts) & PROCESS_TEST_DIRS or "100k" in item.name or big_room or model:
            item.add_marker(pytest.mark.slow)
