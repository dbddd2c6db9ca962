"""Who may read a room, over real mutual TLS against real ``mimi serve`` processes
(PROFILE.md section 6): "``snapshot``, ``get_state``, ``get_event`` and ``backfill`` are
answered to a server that has a user with any participation state in the room (invite, join,
knock, leave, ban), and to every server when the current history visibility is ``world``;
another server gets ``policy_rejected``" -- from the hub and from a follower alike, which
also serve events whole or redacted by the same history-visibility rules."""

from __future__ import annotations

from typing import Dict

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster
from mimi_signaling.content import Visibility
from mimi_signaling.server.federation import BACKFILL, GET_EVENT, GET_STATE, SNAPSHOT

from support.e2ekit import ALICE, ALPHA, BETA, BOB, CAROL, HUB, MESSAGE, WireClient, envelope, event_ids, room_with_members, wait_same_history

STRANGER = "stranger.test"  # a server with no user in any room (a valid certificate of the CA)


def reads(room: str, event_id: str, latest: str) -> Dict[str, tuple]:
    """The four read transactions of the rule, as (type, payload)."""
    return {
        "snapshot": (SNAPSHOT, ms.wire.encode_snapshot_request(room)),
        "get_state": (GET_STATE, ms.wire.encode_get_state_request(room, "m.room.create", "")),
        "get_event": (GET_EVENT, ms.wire.encode_get_event_request(room, event_id)),
        "backfill": (BACKFILL, ms.wire.encode_backfill_request(room, latest, 100)),
    }


def assert_refused_to_read(client: WireClient, to: str, room: str, event_id: str, latest: str, only=None) -> None:
    """Every read is ``policy_rejected`` (403, code 4), never ``unauthorized``."""
    for what, (type_, payload) in reads(room, event_id, latest).items():
        if only is not None and what not in only:
            continue
        with pytest.raises(ms.PolicyRejectedError, match=f"{client.as_server} may not read"):
            client.request(to, type_, payload)
        refusal = client.refused(to, envelope(type_, payload))
        assert (refusal.status, refusal.code) == (403, ms.PolicyRejectedError.code), (what, refusal)


def assert_may_read(client: WireClient, room: str, event_id: str, latest: str) -> None:
    for what, (type_, payload) in reads(room, event_id, latest).items():
        assert client.request(HUB, type_, payload), what


def served(client: WireClient, to: str, room: str, event_id: str) -> ms.Event:
    return ms.Event.decode(client.request(to, GET_EVENT, ms.wire.encode_get_event_request(room, event_id)))


def send(cluster: Cluster, room: str, text: str) -> str:
    return cluster[HUB].call("send", room_id=room, sender=ALICE, type=MESSAGE, text=text)["event_id"]


@pytest.fixture(scope="module")
def clients(trio: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, WireClient]:
    where = tmp_path_factory.mktemp("readers")
    return {name: WireClient(trio, name, where) for name in (STRANGER, BETA, HUB)}


@pytest.mark.timeout(120)
def test_a_server_without_a_user_gets_policy_rejected_from_hub_and_follower(trio: Cluster, clients: Dict[str, WireClient]) -> None:
    room = room_with_members(trio, [(ALPHA, BOB)], name="closed")
    message = send(trio, room, "not for strangers")
    latest = send(trio, room, "trailer")
    wait_same_history(trio, room, [ALPHA])
    stranger = clients[STRANGER]
    assert_refused_to_read(stranger, HUB, room, message, latest)
    # alpha follows the room and answers get_event (the one read a follower serves) by the
    # hub's rule
    assert_refused_to_read(stranger, ALPHA, room, message, latest, only={"get_event"})
    # beta is a real server with no user in this room: the same answer
    assert_refused_to_read(clients[BETA], HUB, room, message, latest)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["banned", "left"])
def test_a_server_whose_user_was_banned_or_left_may_read(trio: Cluster, clients: Dict[str, WireClient], how: str) -> None:
    """carol (beta) is banned, or had her invite revoked (leave): beta may read, and gets the
    messages its users could not see redacted, from the hub and from the follower alpha."""
    room = room_with_members(trio, [(ALPHA, BOB)], name=f"carol-{how}")
    before = send(trio, room, "before carol")
    if how == "banned":
        trio[HUB].call("membership", room_id=room, sender=ALICE, target=CAROL, participation="ban")
    else:
        trio[HUB].call("membership", room_id=room, sender=ALICE, target=CAROL, participation="invite")
        trio[HUB].call("membership", room_id=room, sender=ALICE, target=CAROL, participation="leave")
    after = send(trio, room, "after carol")
    latest = send(trio, room, "trailer")
    wait_same_history(trio, room, [ALPHA])
    beta = clients[BETA]
    assert_may_read(beta, room, before, latest)
    state, _auth_chain, snapshot_latest = ms.wire.decode_snapshot_response(beta.request(HUB, SNAPSHOT, ms.wire.encode_snapshot_request(room)))
    assert snapshot_latest == latest and any(e.state_key == CAROL for e in state)
    ids = event_ids(trio[HUB], room)
    for event_id in (before, after):
        from_hub = served(beta, HUB, room, event_id)
        from_follower = served(beta, ALPHA, room, event_id)
        assert from_hub.is_redacted() and from_hub.event_id == event_id  # carol never joined (shared)
        assert from_follower.encode() == from_hub.encode()
    # state events are served whole, by both
    carol_event = [e for e in state if e.state_key == CAROL][0]
    assert served(beta, ALPHA, room, carol_event.event_id).encode() == carol_event.encode()
    backfill = ms.wire.decode_backfill_response(beta.request(HUB, BACKFILL, ms.wire.encode_backfill_request(room, latest, 100)))
    assert [e.event_id for e in backfill] == list(reversed(ids[:-1]))
    # the hub itself reads from the follower by the same rules: alice was joined, so whole
    assert not served(clients[HUB], ALPHA, room, before).is_redacted()


@pytest.mark.timeout(120)
def test_world_visibility_lets_every_server_read(trio: Cluster, clients: Dict[str, WireClient]) -> None:
    room = room_with_members(trio, [(ALPHA, BOB)], name="world")
    under_shared = send(trio, room, "under shared")
    trio[HUB].call("send", room_id=room, sender=ALICE, type="m.room.history_visibility", state_key="",
                   content_hex=ms.HistoryVisibilityContent(int(Visibility.WORLD)).encode().hex())
    under_world = send(trio, room, "under world")
    latest = send(trio, room, "trailer")
    wait_same_history(trio, room, [ALPHA])
    stranger = clients[STRANGER]
    assert_may_read(stranger, room, under_world, latest)
    for node in (HUB, ALPHA):
        assert served(stranger, node, room, under_world).content == b"under world"  # whole
        # visibility changes are not retroactive: shared history stays redacted for strangers
        assert served(stranger, node, room, under_shared).is_redacted()
    # back to shared: the stranger may no longer read at all
    trio[HUB].call("send", room_id=room, sender=ALICE, type="m.room.history_visibility", state_key="",
                   content_hex=ms.HistoryVisibilityContent(int(Visibility.SHARED)).encode().hex())
    latest = send(trio, room, "after world")
    wait_same_history(trio, room, [ALPHA])
    assert_refused_to_read(stranger, HUB, room, under_world, latest)
    assert_refused_to_read(stranger, ALPHA, room, under_world, latest, only={"get_event"})

