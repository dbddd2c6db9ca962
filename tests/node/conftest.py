from __future__ import annotations

import pytest

from mimi_signaling.storage import open_store

try:
    from tests.pg import fresh_pg_url, pg_url
except ImportError:  # pytest run without the repository root on sys.path
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.pg import fresh_pg_url, pg_url  # noqa: F401


@pytest.fixture
def sqlite_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/hub.db")
    yield store
    store.close()


@pytest.fixture
def network(tmp_path):
    from nodekit import Network

    net = Network(tmp_path, "hub.test", ["f1.test", "f2.test"])
    yield net
    net.close()
