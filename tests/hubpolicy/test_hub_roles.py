"""Roles through ``Hub.accept``: the hub's sample of the roles table (tests/support/m0_cases.py, cases
marked ``hub``: the creator phase, role-map validity, and the role-change rule of PROFILE.md
section 6 -- an ``m.room.role`` for R, or a role map that adds, removes or changes R, needs the
``events`` permission for the type and R in the sender's resolved ``roles``).
tests/room/test_roles.py plays every case against the room layer.  A refusal must store nothing
(``HubRoom.refuse``); an acceptance is stored and returned as sent (``HubRoom.submit``)."""

from __future__ import annotations

import pytest

from support.hubpolicykit import HubRoom
from support.m0_cases import ROLES_HUB, Case, ids, run_case


@pytest.mark.parametrize("case", ROLES_HUB, ids=ids(ROLES_HUB))
def test_roles_through_the_hub(room: HubRoom, case: Case) -> None:
    run_case(room, case)
