from __future__ import annotations

import pytest

from mimi_signaling.storage import open_store



@pytest.fixture
def sqlite_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/hub.db")
    yield store
    store.close()


@pytest.fixture
def network(tmp_path):
    from support.nodekit import Network

    net = Network(tmp_path, "hub.test", ["f1.test", "f2.test"])
    yield net
    net.close()
