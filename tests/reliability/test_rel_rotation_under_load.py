"""Key rotation under load: six rotations (three on the hub, two on alpha, one on beta) while
three users keep sending, through the hub's API and through both followers.  No send fails;
every event, signed with whichever key was current, verifies everywhere: on the followers that
received it live, on a server that joins after the last rotation, in every export, and against
the keys each server publishes at the end (the current key and all expired ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List

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
    Sender,
    WireClient,
    export_and_verify,
    key_ids_used,
    room_with_members,
    rotate_key,
    stored_rows,
    wait_for,
    wait_same_history,
)
from support.relkit import GAMMA, GINA, missing, record

ROTATIONS = [HUB, ALPHA, HUB, BETA, HUB, ALPHA]
#: Acknowledged sends each sender needs between two rotations.
BETWEEN = 3


@pytest.mark.timeout(240)
def test_rotations_while_events_flow(make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    c = make_cluster([HUB, ALPHA, BETA, GAMMA])
    wire = WireClient(c, GAMMA, tmp_path)
    room = room_with_members(c, [(ALPHA, BOB), (BETA, CAROL)], name="rotations")
    initial = {name: c[name].config.load_signing_key().key_id for name in (HUB, ALPHA, BETA)}
    senders = [Sender(c[server], room, user, tag=f"{user} rotations", stop_on_error=False)
               for server, user in ((HUB, ALICE), (ALPHA, BOB), (BETA, CAROL))]
    rotations: List[Dict[str, str]] = []
    for s in senders:
        s.start()
    try:
        for name in ROTATIONS:
            marks = [len(s.acked) for s in senders]
            wait_for(lambda marks=marks: all(len(s.acked) >= m + BETWEEN for s, m in zip(senders, marks)), timeout=60,
                     what="sends between rotations")
            rotations.append({"server": name, **rotate_key(c[name])})
        marks = [len(s.acked) for s in senders]
        wait_for(lambda: all(len(s.acked) >= m + BETWEEN for s, m in zip(senders, marks)), timeout=60,
                 what="sends after the last rotation")
    finally:
        for s in senders:
            s.stop()
    errors = [e for s in senders for e in s.errors]
    assert not errors, f"{len(errors)} sends failed, e.g. {errors[:2]}"
    acked = [e for s in senders for e in s.acked]

    # Every key each server ever signed with, in the order it used them.
    keys: Dict[str, List[str]] = {name: [initial[name]] for name in initial}
    for r in rotations:
        assert r["old_key_id"] == keys[r["server"]][-1]
        keys[r["server"]].append(r["new_key_id"])

    # A server that joins after the last rotation checks the whole history.
    c[HUB].call("membership", room_id=room, sender=ALICE, target=GINA, participation="invite")
    c[GAMMA].call("membership", room_id=room, sender=GINA, target=GINA, participation="join")
    final = wait_same_history(c, room, [ALPHA, BETA, GAMMA], timeout=90)
    assert not missing(acked, final)

    # The keys each server publishes: the current key and every expired one.
    for name, ids in keys.items():
        published = {k.key_id: k.expired_ts for k in wire.keys_of(name).keys}
        assert published[ids[-1]] == 0 and all(published[k] > 0 for k in ids[:-1]), (name, published)
    ring = wire.key_ring([*keys, GAMMA])  # gamma: gina's join
    for name in (HUB, ALPHA, BETA, GAMMA):
        rows = stored_rows(c[name].config, room)
        assert [e for _, e, _ in rows] == final
        for event in ms.decode_events([b for _, _, b in rows]):
            event.verify(ring)
        used = key_ids_used(rows)
        assert used["hub"] == set(keys[HUB]), (name, used["hub"])  # every hub key signed something
        for origin in (ALPHA, BETA):
            assert used[origin] == set(keys[origin]), (name, origin, used[origin])
        assert export_and_verify(c[name], room, tmp_path / f"{name}.mimiroom") == len(final)
    record("key rotation under load", rotations=len(rotations), hub_keys=len(keys[HUB]),
           alpha_keys=len(keys[ALPHA]), beta_keys=len(keys[BETA]), senders=len(senders), acked=len(acked),
           failed_sends=len(errors), events=len(final), lost=0, servers_verified=4, exports_verified=4)
