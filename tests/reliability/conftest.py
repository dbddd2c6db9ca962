"""Fixtures of the reliability tests: the hostile-peer cluster of real ``mimi serve`` processes
on 127.0.0.1 with tightened limits, and the cluster that knows the fake peers (always reaped at
teardown).  ``make_cluster``, ``extra_processes`` and the PostgreSQL databases of
``tests/support/pg.py`` (which fail instead of skipping under ``CI=true``) are fixtures of
``tests/conftest.py``."""

from __future__ import annotations

from typing import Iterator

import pytest


from mimi_signaling.testing.cluster import Cluster

from support.relkit import reap, tightened
from support.e2ekit import ALICE, ALPHA, BETA, BOB, CAROL, HUB, MESSAGE, room_with_members, wait_same_history


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """hub.test, alpha.test and beta.test with small limits (rate 50/s, burst 100, 2 s to
    complete a request or its body), shared by the hostile-peer tests."""
    cluster = Cluster(tmp_path_factory.mktemp("hostile"), [HUB, ALPHA, BETA], configure=tightened())
    try:
        cluster.start()
        yield cluster
    finally:
        reap(cluster.servers.values())


@pytest.fixture(scope="session")
def hostile_room(hostile: Cluster) -> str:
    """A room of alice (hub), bob (alpha) and carol (beta), every server up to date."""
    room = room_with_members(hostile, [(ALPHA, BOB), (BETA, CAROL)], name="hostile peers")
    hostile[HUB].call("send", room_id=room, sender=ALICE, type=MESSAGE, text="before")
    wait_same_history(hostile, room, [ALPHA, BETA])
    return room


#: The fake peer servers of the ``peered`` cluster (``tests/support/peerkit.py``), by role.
FAKE_PEERS = {
    "planter": "mallory.test",  # answers honestly first, then plants another server's keys
    "namer": "eve.test",  # answers a keys request with keys named for another server
    "impostor": "trent.test",  # reached at its URL, but presents the certificate of eve.test
    "slow": "slow.test",  # holds its answers back
    "big": "bigmouth.test",  # answers with far more bytes than its transaction can be
    "streamer": "streamer.test",  # the same, streamed without a Content-Length
    "pusher": "pusher.test",  # delivers events of rooms nobody asked for
}


@pytest.fixture(scope="session")
def peered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """``(cluster, fake peers by role)``: hub.test, alpha.test and beta.test with the hostile
    limits, every one of them knowing the fake peers of ``FAKE_PEERS`` through its peer map."""
    from support.peerkit import FakePeer, peer_map

    fakes = {role: FakePeer(name, certificate_name="eve.test" if role == "impostor" else None)
             for role, name in FAKE_PEERS.items()}
    directory = tmp_path_factory.mktemp("peered")
    cluster = Cluster(directory / "cluster", [HUB, ALPHA, BETA], configure=peer_map(fakes.values(), tightened()))
    try:
        for fake in fakes.values():
            fake.start(cluster, directory)
        cluster.start()
        yield cluster, fakes
    finally:
        reap(cluster.servers.values())
        for fake in fakes.values():
            fake.stop()


@pytest.fixture(scope="session")
def peered_room(peered: tuple) -> str:
    """A room of alice (hub), bob (alpha) and carol (beta) on the ``peered`` cluster."""
    cluster, _ = peered
    room = room_with_members(cluster, [(ALPHA, BOB), (BETA, CAROL)], name="fake peers")
    wait_same_history(cluster, room, [ALPHA, BETA])
    return room
