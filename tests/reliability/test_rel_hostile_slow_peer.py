"""One slow peer stalls no one (issue 11, finding 2), benchmark-style: bounded in count and
time, the assertion a wide ratio (others' latency far below the slow peer's hold), not a
timed unit test.

``slow.test``, a fake peer over real mutual TLS, holds back its keys answer for HOLD
seconds.  (a) It submits to the hub, which must fetch its keys: before issue 11 the fetch
ran inside the hub's accept group, and bob's sends through the hub waited for it.  (b) It
delivers invites to alpha, which must fetch its keys to check them: before, each delivery
held one of the threads alpha's own API and accepts run on.  Meanwhile bob sends through
alpha, one message after the other; every send must take well under the hold."""

from __future__ import annotations

from typing import Callable

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster
from mimi_signaling.content import Participation
from mimi_signaling.server.federation import DELIVER, KEYS, SUBMIT

from support.e2ekit import ALPHA, BETA, BOB, HUB, MESSAGE, envelope, wait_same_history
from support.peerkit import FakePeer, hold, sends_meanwhile
from support.relkit import record

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

#: How long the slow peer keeps an asking server waiting (under the 10 s keys-fetch bound).
HOLD = 8.0
#: Bob's sends meanwhile, and the latency each must stay under: a quarter of the hold.
SENDS = 6
BOUND = 2.0


def bob_sends_meanwhile(cluster: Cluster, room: str, attack: Callable[[], object], tag: str) -> dict:
    figures = sends_meanwhile(cluster[ALPHA], room, BOB, attack, tag, sends=SENDS)
    wait_same_history(cluster, room, [ALPHA, BETA])
    return figures


def test_a_slow_keys_answer_does_not_stall_the_hubs_accepts(peered: tuple, peered_room: str) -> None:
    cluster, fakes = peered
    slow: FakePeer = fakes["slow"]
    slow.answers[KEYS] = hold(HOLD, slow._own_keys)
    limited = ms.LimitedEvent.create(peered_room, MESSAGE, None, f"@sloth:{slow.name}", b"wait for me", slow.signing_key)
    figures = bob_sends_meanwhile(cluster, peered_room, lambda: slow.client.refused(HUB, envelope(SUBMIT, limited.encode())),
                                  "bob while slow.test holds the hub's keys fetch")
    assert slow.asked(KEYS) >= 1
    assert figures["slow_peer_seconds"] >= HOLD - 0.5, figures  # the hub did wait for the slow answer
    assert figures["outcome"].code == ms.PolicyRejectedError.code, figures  # and then judged the submit
    assert figures["bob_max"] < BOUND, figures
    record("hostile: slow keys answer vs the hub's accepts", hold_seconds=HOLD, bound_seconds=BOUND,
           **{k: v for k, v in figures.items() if k != "outcome"})


def test_slow_keys_during_deliveries_do_not_stall_the_follower(peered: tuple, peered_room: str) -> None:
    cluster, fakes = peered
    slow: FakePeer = fakes["slow"]
    slow.answers[KEYS] = hold(HOLD, slow._own_keys)
    invites = [ms.LimitedEvent.create(f"!slow{n}:{slow.name}", "m.room.user", BOB, f"@sloth:{slow.name}",
                                      ms.UserContent(Participation.INVITE, b"").encode(), slow.signing_key)
               .to_event([], "", slow.signing_key).encode() for n in range(20)]

    def deliver_all() -> list:
        return slow.client.request_many(ALPHA, DELIVER, invites, concurrency=20)

    figures = bob_sends_meanwhile(cluster, peered_room, deliver_all, "bob while slow.test holds alpha's keys fetch")
    answers = figures["outcome"]
    assert all(a == b"" for a in answers), [a for a in answers if a != b""][:3]  # every invite taken, after the hold
    assert figures["slow_peer_seconds"] >= HOLD - 0.5, figures
    assert figures["bob_max"] < BOUND, figures
    record("hostile: slow keys answer vs a follower's deliveries", hold_seconds=HOLD, bound_seconds=BOUND,
           deliveries=len(invites), **{k: v for k, v in figures.items() if k != "outcome"})
