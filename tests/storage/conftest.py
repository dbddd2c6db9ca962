"""Fixtures of the storage tests: every store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator, List

import pytest


from mimi_signaling.node.store import EventStore
from mimi_signaling.storage import open_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store of each backend (a SQLite file, a fresh PG database)."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store.db'}"
    return request.getfixturevalue("fresh_pg_url")


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def workers() -> Iterator[List[subprocess.Popen]]:
    """Worker processes started by a test; any still running at the end are killed."""
    started: List[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream:
                stream.close()
