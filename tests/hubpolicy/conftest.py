"""Fixtures for the hub policy tests: a fresh hub + two followers per test (real keys, real
SQLite files) and a room created on the hub by @ana:hub.test."""

from __future__ import annotations

import pytest

from support.hubpolicykit import HubRoom, make_network, scratch_dir


@pytest.fixture
def net(tmp_path):
    with scratch_dir(tmp_path) as where:
        network = make_network(where)
        yield network
        network.close()


@pytest.fixture
def room(net) -> HubRoom:
    """An invite-only room (the default join rule) in the creator phase; only @ana joined."""
    return HubRoom(net)
