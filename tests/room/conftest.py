"""Fixtures for the room tests: the golden room's decoded events and real signed rooms
(see roomkit.py).  ``golden`` comes from tests/conftest.py."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

import mimi_signaling as ms
from support.roomkit import RoomBuilder


@pytest.fixture(scope="session")
def golden_events(golden: Dict[str, Any]) -> List[ms.Event]:
    return [ms.Event.decode(bytes.fromhex(entry["event"])) for entry in golden["events"]]


@pytest.fixture
def room() -> RoomBuilder:
    return RoomBuilder()


@pytest.fixture
def make_room():
    return RoomBuilder
