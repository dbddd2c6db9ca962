"""The test clusters' listening ports (``testing.cluster.free_port``)."""

from __future__ import annotations

from mimi_signaling.testing import cluster


def test_free_port_never_hands_out_a_port_twice_nor_an_ephemeral_one() -> None:
    """A cluster picks all its ports before its servers bind them: the same port picked twice
    made a start fail with "address already in use"; an ephemeral one could be taken by an
    outgoing connection first."""
    ephemeral = cluster._ephemeral_ports()
    ports = [cluster.free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
    assert not set(ports) & set(ephemeral)
