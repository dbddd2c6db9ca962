"""A hub and two followers as real server processes over mutual TLS: a room with invites,
joins, messages, a leave and a ban; every follower ends with the hub's chain, byte for byte,
and every server's export passes ``mimi verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster

from support.e2ekit import (
    ALICE,
    ALPHA,
    BETA,
    BOB,
    CAROL,
    HUB,
    MESSAGE,
    event_ids,
    export_and_verify,
    history,
    stored_rows,
    wait_same_history,
)

EVE, DAVE = f"@eve:{ALPHA}", f"@dave:{BETA}"
USERS = {ALICE: HUB, BOB: ALPHA, EVE: ALPHA, CAROL: BETA, DAVE: BETA}


def send(cluster: Cluster, user: str, room: str, text: str) -> Dict[str, Any]:
    return cluster[USERS[user]].call("send", room_id=room, sender=user, type=MESSAGE, text=text)


def membership(cluster: Cluster, sender: str, room: str, target: str, participation: str) -> Dict[str, Any]:
    return cluster[USERS[sender]].call(
        "membership", room_id=room, sender=sender, target=target, participation=participation
    )


@pytest.fixture(scope="module")
def played(trio: Cluster) -> Dict[str, Any]:
    """The room's whole life, through the servers' local APIs; returns what the tests check."""
    c = trio
    created = c[HUB].call("create_room", creator=ALICE, join_rule="invite", name="end to end")
    room = created["room_id"]
    acked = [e["event_id"] for e in created["events"]]
    for user in (BOB, EVE, CAROL, DAVE):
        acked.append(membership(c, ALICE, room, user, "invite")["event_id"])
    for user in (BOB, EVE, CAROL, DAVE):
        acked.append(membership(c, user, room, user, "join")["event_id"])
    for i in range(3):
        for user in USERS:
            acked.append(send(c, user, room, f"round {i} from {user}")["event_id"])

    acked.append(membership(c, DAVE, room, DAVE, "leave")["event_id"])  # beta keeps carol
    acked.append(membership(c, ALICE, room, EVE, "ban")["event_id"])  # alpha keeps bob

    refusals = {}
    for what, attempt in {
        "banned sends": lambda: send(c, EVE, room, "still here?"),
        "banned rejoins": lambda: membership(c, EVE, room, EVE, "join"),
        "departed sends": lambda: send(c, DAVE, room, "hello again"),
        "departed rejoins uninvited": lambda: membership(c, DAVE, room, DAVE, "join"),
        "non-admin bans": lambda: membership(c, BOB, room, CAROL, "ban"),
    }.items():
        with pytest.raises(ms.MimiError) as caught:
            attempt()
        refusals[what] = caught.value

    for i in range(3):
        for user in (ALICE, BOB, CAROL):
            acked.append(send(c, user, room, f"after the ban {i} from {user}")["event_id"])
    final = wait_same_history(c, room, [ALPHA, BETA])
    return {"room": room, "acked": acked, "refusals": refusals, "final": final}


@pytest.mark.timeout(120)
def test_followers_end_with_the_hubs_chain(trio: Cluster, played: Dict[str, Any]) -> None:
    room, final = played["room"], played["final"]
    # The hub's chain is exactly what was acknowledged, in order: nothing lost, nothing extra.
    assert final == played["acked"]
    assert event_ids(trio[ALPHA], room) == final
    assert event_ids(trio[BETA], room) == final

    # Same current state everywhere, with the leave and the ban in it.
    states = {name: trio[name].call("state", room_id=room) for name in (HUB, ALPHA, BETA)}
    assert states[ALPHA] == states[HUB] and states[BETA] == states[HUB]
    users = {e["state_key"]: e["content"] for e in states[HUB] if e["type"] == "m.room.user"}
    assert "participation=3" in users[EVE] and "participation=2" in users[DAVE]  # ban, leave

    # Byte for byte in every server's SQLite file (read-only): the follower stores the hub's
    # bytes, or (for an event its users may not see) their redacted form with the same ID.
    hub_rows = stored_rows(trio[HUB].config, room)
    assert [e for _, e, _ in hub_rows] == final
    for name in (ALPHA, BETA):
        rows = stored_rows(trio[name].config, room)
        assert [(i, e) for i, e, _ in rows] == [(i, e) for i, e, _ in hub_rows]
        for (_, event_id, theirs), (_, _, ours) in zip(rows, hub_rows):
            if theirs != ours:
                assert theirs == ms.Event.decode(ours).redacted().encode(), f"{name} stores another {event_id}"

    # History through the local API agrees with the store, including who sent what.
    listed = history(trio[BETA], room)
    assert [r["sender"] for r in listed] == [r["sender"] for r in history(trio[HUB], room)]


@pytest.mark.timeout(60)
def test_refused_membership_changes_are_policy_verdicts(played: Dict[str, Any]) -> None:
    for what, error in played["refusals"].items():
        assert isinstance(error, ms.PolicyRejectedError), f"{what}: {type(error).__name__}: {error}"


@pytest.mark.timeout(120)
def test_every_servers_export_passes_verify(trio: Cluster, played: Dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("mimi_signaling.roomfile", reason="roomfile.export_room is not in this build yet")
    room = played["room"]
    for name in (HUB, ALPHA, BETA):
        count = export_and_verify(trio[name], room, tmp_path / f"{name}.mimiroom", cli=True)
        assert count == len(played["final"])
