"""Opening stores from URLs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mimi_signaling.storage import PostgresEventStore, SQLiteEventStore, open_store
from mimi_signaling.storage.urls import sqlite_path_from_url
from support.storage_helpers import ROOM, fill


def test_sqlite_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "hub store.db"
    with open_store(f"sqlite://{path}") as store:
        assert isinstance(store, SQLiteEventStore)
        fill(store, ROOM, 2)
    assert path.is_file()
    with open_store(f"sqlite://{tmp_path}/hub%20store.db") as store:  # percent-escapes decode
        assert store.count(ROOM) == 2


def test_sqlite_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    os.mkdir("data")
    with open_store("sqlite:data/node.db") as store:
        fill(store, ROOM, 1)
    assert (tmp_path / "data" / "node.db").is_file()


def test_sqlite_memory_is_private() -> None:
    assert sqlite_path_from_url("sqlite://:memory:") == ":memory:"
    with open_store("sqlite://:memory:") as first, open_store("sqlite://:memory:") as second:
        fill(first, ROOM, 1)
        assert second.count(ROOM) == 0


@pytest.mark.parametrize(
    "url, error",
    [
        ("mysql://root@localhost/db", ValueError),
        ("/var/lib/mimi/hub.db", ValueError),  # a bare path is not a URL
        ("sqlite://somehost/hub.db", ValueError),
        ("sqlite:", ValueError),
        ("sqlite:///tmp/x.db?mode=ro", ValueError),
        ("sqlite:///no/such/directory/hub.db", FileNotFoundError),
    ],
)
def test_bad_urls(url: str, error: type) -> None:
    with pytest.raises(error):
        open_store(url)


def test_unsupported_scheme_message_hides_the_url() -> None:
    with pytest.raises(ValueError) as caught:
        open_store("mysql://root:hunter2@localhost/db")
    assert "hunter2" not in str(caught.value) and "postgresql://" in str(caught.value)


@pytest.mark.postgres
def test_postgresql_url(fresh_pg_url: str) -> None:
    for url in (fresh_pg_url, fresh_pg_url.replace("postgresql://", "postgres://", 1)):
        with open_store(url) as store:
            assert isinstance(store, PostgresEventStore)
            assert store.count(ROOM) == 0
