"""Key rotation on running servers: ``mimi keys rotate`` on the hub (and on a follower) while
events flow.  Events signed with the old key still verify everywhere; followers pick up the
new keys; the keys transaction keeps listing the expired key, also after a restart; a server
that joins after the rotation verifies the whole history."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List

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
    Sender,
    WireClient,
    export_and_verify,
    key_ids_used,
    room_with_members,
    rotate_key,
    stored_rows,
    wait_same_history,
)


@pytest.mark.timeout(150)
def test_rotation_while_events_flow(make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    c = make_cluster([HUB, ALPHA, BETA])
    wire = WireClient(c, BETA, tmp_path)
    room = room_with_members(c, [(ALPHA, BOB)])
    acked: List[str] = []

    # Phase 1: the hub rotates while its own user sends; alpha only receives deliveries, so
    # it must fetch the hub's new key itself to accept them.
    alice = Sender(c[HUB], room, ALICE, tag="alice 1").start()
    bob = Sender(c[ALPHA], room, BOB, tag="bob 1").start()
    try:
        alice.wait_acked(10)
        bob.wait_acked(5)
        bob.stop()
        hub_rotation = rotate_key(c[HUB])
        alice.wait_acked(len(alice.acked) + 10)
    finally:
        alice.stop()
        bob.stop()
    assert not alice.errors and not bob.errors, (alice.errors[:2], bob.errors[:2])
    acked += alice.acked + bob.acked
    wait_same_history(c, room, [ALPHA], timeout=30)

    # Phase 2: an origin server rotates while both send: the hub must re-fetch its keys.
    alice = Sender(c[HUB], room, ALICE, tag="alice 2").start()
    bob = Sender(c[ALPHA], room, BOB, tag="bob 2").start()
    try:
        bob.wait_acked(5)
        alpha_rotation = rotate_key(c[ALPHA])
        bob.wait_acked(len(bob.acked) + 10)
        alice.wait_acked(5)
    finally:
        alice.stop()
        bob.stop()
    assert not alice.errors and not bob.errors, (alice.errors[:2], bob.errors[:2])
    acked += alice.acked + bob.acked

    # The keys transaction: the new key current, the old one listed as expired.
    for name, rotation in ((HUB, hub_rotation), (ALPHA, alpha_rotation)):
        keys = {k.key_id: k for k in wire.keys_of(name).keys}
        assert keys[rotation["new_key_id"]].expired_ts == 0
        assert keys[rotation["old_key_id"]].expired_ts > 0

    # alpha applied every event, old-key and new-key ones: it fetched the hub's new key.
    final = wait_same_history(c, room, [ALPHA], timeout=30)
    assert set(acked) <= set(final)
    used = key_ids_used(stored_rows(c[ALPHA].config, room))
    assert {hub_rotation["old_key_id"], hub_rotation["new_key_id"]} <= used["hub"]
    assert {alpha_rotation["old_key_id"], alpha_rotation["new_key_id"]} <= used[ALPHA]

    # carol's server joins after both rotations: it checks the whole history, old keys included.
    c[HUB].call("membership", room_id=room, sender=ALICE, target=CAROL, participation="invite")
    c[BETA].call("membership", room_id=room, sender=CAROL, target=CAROL, participation="join")
    c[HUB].call("send", room_id=room, sender=ALICE, type=MESSAGE, text="welcome carol")
    final = wait_same_history(c, room, [ALPHA, BETA])

    # Every stored event verifies against the keys the servers publish now.
    ring = wire.key_ring((HUB, ALPHA, BETA))
    for name in (HUB, ALPHA, BETA):
        for event in ms.decode_events([b for _, _, b in stored_rows(c[name].config, room)]):
            event.verify(ring)

    # After a crash (SIGKILL: an acknowledged rotation is durable) the hub still publishes its
    # expired key, signs with the new one, and the room goes on.
    c[HUB].kill()
    c[HUB].start()
    keys = {k.key_id: k.expired_ts for k in wire.keys_of(HUB).keys}
    assert keys[hub_rotation["old_key_id"]] > 0 and keys[hub_rotation["new_key_id"]] == 0
    c[ALPHA].call("send", room_id=room, sender=BOB, type=MESSAGE, text="after the hub's restart")
    final = wait_same_history(c, room, [ALPHA, BETA])
    last = ms.Event.decode(stored_rows(c[BETA].config, room)[-1][2])
    assert [s.key_id for s in last.hub_signature] == [hub_rotation["new_key_id"]]
    assert [s.key_id for s in last.origin_signature] == [alpha_rotation["new_key_id"]]

    pytest.importorskip("mimi_signaling.roomfile", reason="roomfile.export_room is not in this build yet")
    for name in (HUB, ALPHA, BETA):
        assert export_and_verify(c[name], room, tmp_path / f"{name}.mimiroom") == len(final)


@pytest.mark.timeout(60)
def test_follower_submit_right_after_the_hubs_rotation(make_cluster: Callable[..., Cluster]) -> None:
    """The first thing alpha hears from the rotated hub is the answer to its own submit,
    signed with a key alpha has not seen: alpha re-fetches the hub's keys instead of
    reporting a failure for an event the hub accepted."""
    c = make_cluster([HUB, ALPHA])
    room = room_with_members(c, [(ALPHA, BOB)])
    wait_same_history(c, room, [ALPHA])
    rotation = rotate_key(c[HUB])
    sent = c[ALPHA].call("send", room_id=room, sender=BOB, type=MESSAGE, text="first after the rotation")
    final = wait_same_history(c, room, [ALPHA])
    assert final[-1] == sent["event_id"]
    last = ms.Event.decode(stored_rows(c[ALPHA].config, room)[-1][2])
    assert [s.key_id for s in last.hub_signature] == [rotation["new_key_id"]]
