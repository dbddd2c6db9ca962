"""Fixtures of the end-to-end tests: clusters of real ``mimi serve`` processes on 127.0.0.1,
always stopped (and killed if they do not stop) at teardown."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import pytest


from mimi_signaling.testing.cluster import Cluster, ServerProcess

from support.relkit import reap  # the one process reaper
from support.e2ekit import ALPHA, BETA, HUB, WireClient


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """``make_cluster(names, storage=None)``: a started cluster, stopped after the test."""
    made: List[Cluster] = []

    def make(names: List[str], storage: Optional[Dict[str, str]] = None, start: bool = True) -> Cluster:
        cluster = Cluster(tmp_path / f"cluster{len(made)}", names, storage=storage)
        made.append(cluster)
        if start:
            cluster.start()
        return cluster

    yield make
    reap([s for c in made for s in c.servers.values()])


@pytest.fixture
def extra_processes() -> Iterator[List[ServerProcess]]:
    """Server processes a test builds by hand (not through ``Cluster``), stopped after it."""
    started: List[ServerProcess] = []
    yield started
    reap(started)


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """hub.test, alpha.test and beta.test, shared by the tests of one module (each test makes
    its own room)."""
    cluster = Cluster(tmp_path_factory.mktemp("trio"), [HUB, ALPHA, BETA])
    try:
        cluster.start()
        yield cluster
    finally:
        reap(list(cluster.servers.values()))


@pytest.fixture(scope="module")
def as_alpha(trio: Cluster, tmp_path_factory: pytest.TempPathFactory) -> WireClient:
    """A wire client presenting a certificate for alpha.test (from the trio's CA)."""
    return WireClient(trio, ALPHA, tmp_path_factory.mktemp("wire"))


@pytest.fixture(scope="module")
def as_beta(trio: Cluster, tmp_path_factory: pytest.TempPathFactory) -> WireClient:
    """The same for beta.test."""
    return WireClient(trio, BETA, tmp_path_factory.mktemp("wire"))
