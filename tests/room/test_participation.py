"""m.room.user transitions, each allowed and refused, with real signed events against the room
layer (``RoomState`` and the m.0 policy): every case of the participation table
(tests/support/m0_cases.py; tests/hubpolicy/test_hub_participation.py plays a sample through the hub).
A refusal raises ``PolicyRejectedError`` naming the rule and leaves the state unchanged."""

from __future__ import annotations

import pytest

from support.m0_cases import PARTICIPATION, Case, ids, run_case
from support.roomkit import RoomBuilder, RoomDriver


@pytest.mark.parametrize("case", PARTICIPATION, ids=ids(PARTICIPATION))
def test_participation(case: Case) -> None:
    run_case(RoomDriver(RoomBuilder()), case)
