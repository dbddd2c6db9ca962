"""``PendingInvites``: bounded per delivering hub (a hub displaces only its own records), in
total (``rate_limited`` past it) and in time."""

from __future__ import annotations

import pytest

import mimi_signaling as ms
from mimi_signaling.content import Participation
from mimi_signaling.node.invites import PendingInvites

KEY = ms.SigningKey.generate("ed25519:hub")


def invite(room_hub: str, n: int, user: str = "@bob:alpha.test") -> ms.Event:
    room = f"!room{n}:{room_hub}"
    content = ms.UserContent(Participation.INVITE, b"").encode()
    return ms.LimitedEvent.create(room, "m.room.user", user, f"@a:{room_hub}", content, KEY).to_event([], "", KEY)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_per_hub_bound_displaces_only_that_hubs_oldest() -> None:
    invites = PendingInvites(per_peer=3, total=10)
    invites.add(invite("good.test", 0), "good.test")
    for n in range(5):
        invites.add(invite("bad.test", n), "bad.test")
    assert invites.of_hub("bad.test") == 3 and invites.of_hub("good.test") == 1
    assert invites.rooms() == ["!room0:good.test", "!room2:bad.test", "!room3:bad.test", "!room4:bad.test"]


def test_total_bound_refuses_new_invites() -> None:
    invites = PendingInvites(per_peer=2, total=4)
    for hub in ("a.test", "b.test"):
        for n in range(2):
            invites.add(invite(hub, n), hub)
    with pytest.raises(ms.RateLimitedError):
        invites.add(invite("c.test", 0), "c.test")
    assert len(invites) == 4 and invites.of_hub("c.test") == 0
    invites.add(invite("a.test", 1), "a.test")  # the same invite again: no new record
    assert len(invites) == 4


def test_records_expire_and_leave_with_their_room() -> None:
    clock = Clock()
    invites = PendingInvites(per_peer=5, total=5, ttl=60, clock=clock)
    invites.add(invite("a.test", 0), "a.test")
    clock.now += 30
    invites.add(invite("a.test", 1), "a.test")
    invites.add(invite("a.test", 2), "a.test")
    assert [r.room_id for r in invites.pop_room("!room2:a.test")] == ["!room2:a.test"]
    clock.now += 31
    assert invites.rooms() == ["!room1:a.test"]
    clock.now += 30
    assert len(invites) == 0 and invites.of_hub("a.test") == 0
