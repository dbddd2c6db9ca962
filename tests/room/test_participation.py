"""m.room.user transitions, each allowed and refused, with real signed events against the room
layer (``RoomState`` and the m.0 policy): every case of the participation table
(tests/m0_cases.py; tests/hubpolicy/test_hub_participation.py plays a sample through the hub).
A refusal raises ``PolicyRejectedError`` naming the rule and leaves the state unchanged."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Set, Tuple

import pytest

from m0_cases import PARTICIPATION, Case, ids, run_case
from mimi_signaling.content import JoinRule, Participation
from roomkit import RoomBuilder


class RoomDriver:
    """``m0_cases.CaseDriver`` over a ``RoomBuilder`` (shape + policy + apply, no hub)."""

    def __init__(self, room: RoomBuilder) -> None:
        self.room = room

    def user(self, sender: str, target: str, participation: Participation) -> Any:
        return self.room.user(sender, target, participation)

    def refuse_user(self, sender: str, target: str, participation: Participation, match: str) -> Any:
        return self.room.reject_user(sender, target, participation, match)

    def join_rule(self, rule: JoinRule) -> Any:
        return self.room.join_rules(rule)

    def add(self, user: str) -> Any:
        return self.room.join(user)

    def role(self, role_id: str, **permissions: Any) -> Any:
        return self.room.role(role_id, **permissions)

    def role_map(self, configs: Sequence[Tuple[str, Sequence[str], int]]) -> Any:
        return self.room.role_map(configs)

    def participation(self, user: str) -> Optional[Participation]:
        assert self.room.state is not None
        return self.room.state.participation(user)

    def joined_users(self) -> Set[str]:
        assert self.room.state is not None
        return set(self.room.state.joined_users())


@pytest.mark.parametrize("case", PARTICIPATION, ids=ids(PARTICIPATION))
def test_participation(case: Case) -> None:
    run_case(RoomDriver(RoomBuilder()), case)
