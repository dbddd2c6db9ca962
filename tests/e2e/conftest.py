"""Fixtures of the end-to-end tests: a trio of real ``mimi serve`` processes on 127.0.0.1 shared
by a module, always stopped (and killed if they do not stop) at teardown, and wire clients
with certificates from its CA.  ``make_cluster`` and ``extra_processes`` are in
``tests/conftest.py`` (the reliability tests use them too)."""

from __future__ import annotations

from typing import Iterator

import pytest


from mimi_signaling.testing.cluster import Cluster

from support.relkit import reap  # the one process reaper
from support.e2ekit import ALPHA, BETA, HUB, WireClient


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
