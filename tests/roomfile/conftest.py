"""Fixtures for the room file tests: the golden room file and a 100,000-event generated room
(built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest



@pytest.fixture(scope="session")
def golden_room_file(golden, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("golden") / "golden.room"
    path.write_bytes(bytes.fromhex(golden["room_file"]))
    return path


@pytest.fixture(scope="session")
def room_100k(tmp_path_factory):
    from mimi_signaling.testing.rooms import generate_room

    path = tmp_path_factory.mktemp("room100k") / "room100k.room"
    return generate_room(path, 100_000, seed=100_000)
