"""m.room.user transitions of m.0, allowed and refused, through ``Hub.accept`` with users of
three servers: the hub's sample of the participation table (tests/support/m0_cases.py, cases marked
``hub``: at least one allowed and one refused per rule; tests/room/test_participation.py plays
every case against the room layer).  A refusal must raise ``PolicyRejectedError`` naming the
rule and store nothing (``HubRoom.refuse`` compares the store, the state and the fan-out queues
before and after); an acceptance is stored and returned as sent (``HubRoom.submit``)."""

from __future__ import annotations

import pytest

from support.hubpolicykit import HubRoom
from support.m0_cases import PARTICIPATION_HUB, Case, ids, run_case


@pytest.mark.parametrize("case", PARTICIPATION_HUB, ids=ids(PARTICIPATION_HUB))
def test_participation_through_the_hub(room: HubRoom, case: Case) -> None:
    run_case(room, case)
