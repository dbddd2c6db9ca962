"""A flood from one peer: beta.test sends 2,000 submits as fast as 32 connections allow to a
hub that grants each peer 50 requests per second with a burst of 100.  The excess is refused
with ``rate_limited`` and stores nothing; what was let through is stored exactly once; and
alpha.test, sending through its own API meanwhile, is served every time."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import List

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster
from mimi_signaling.server.federation import SUBMIT

from support.e2ekit import ALPHA, BETA, BOB, CAROL, HUB, MESSAGE, event_ids, wait_for, wait_same_history
from support.relkit import HostileClient, message_texts, missing, record

FLOOD = 2000


@pytest.mark.timeout(180)
def test_flood_from_one_peer_is_rate_limited(hostile: Cluster, hostile_room: str, tmp_path: Path) -> None:
    room = hostile_room
    flooder = HostileClient(hostile, BETA, tmp_path)
    beta_key = hostile[BETA].config.load_signing_key()
    payloads = [ms.LimitedEvent.create(room, MESSAGE, None, CAROL, f"flood {i}".encode(), beta_key).encode()
                for i in range(FLOOD)]
    wait_same_history(hostile, room, [ALPHA, BETA])
    before = event_ids(hostile[HUB], room)

    outcomes: List[object] = []
    flood = threading.Thread(target=lambda: outcomes.extend(flooder.request_many(HUB, SUBMIT, payloads, concurrency=32)),
                             name="flood", daemon=True)
    started = time.monotonic()
    flood.start()
    # alpha's user sends through alpha's API (a follower submit to the hub) until the flood
    # is over: at most 200 sends, and at least 3 so that some overlap it.
    bobs: List[str] = []
    failures: List[BaseException] = []
    while len(bobs) + len(failures) < 200 and (flood.is_alive() or len(bobs) + len(failures) < 3):
        try:
            bobs.append(hostile[ALPHA].call("send", room_id=room, sender=BOB, type=MESSAGE,
                                            text=f"bob during the flood {len(bobs)}")["event_id"])
        except Exception as exc:  # noqa: BLE001 - counted
            failures.append(exc)
    during = len(bobs) + len(failures)
    flood.join(150)
    assert not flood.is_alive(), "the flood did not finish"
    seconds = time.monotonic() - started

    accepted = [ms.Event.decode(o) for o in outcomes if isinstance(o, bytes)]
    limited = [o for o in outcomes if isinstance(o, ms.RateLimitedError)]
    other = [o for o in outcomes if not isinstance(o, (bytes, ms.RateLimitedError))]
    assert len(outcomes) == FLOOD
    assert not other, f"{len(other)} flood requests failed otherwise, e.g. {other[:3]!r}"
    assert limited, "2,000 requests at once were never rate-limited"
    assert not failures, f"alpha was not served during the flood: {failures[:3]!r}"

    # Stored: exactly the accepted flood events and bob's, each once; nothing refused.
    after = event_ids(hostile[HUB], room)
    new = after[len(before):]
    assert after[: len(before)] == before
    assert sorted(new) == sorted([e.event_id for e in accepted] + bobs)
    assert not missing(bobs, after)
    texts = message_texts(hostile[HUB], room)
    assert all(n == 1 for n in texts.values())

    # beta is served again once its bucket refills; everyone converges.
    wait_for(lambda: _carol_sends(hostile, room), timeout=60, what="beta to be served again")
    wait_same_history(hostile, room, [ALPHA, BETA], timeout=60)
    record("hostile: flood from one peer", requests=FLOOD, concurrency=32, accepted=len(accepted),
           rate_limited=len(limited), other_errors=len(other), other_peer_sends=during,
           other_peer_served=len(bobs), seconds=round(seconds, 1), stored=len(new), lost=0,
           rate="50/s burst 100")


def _carol_sends(cluster: Cluster, room: str) -> bool:
    cluster[BETA].call("send", room_id=room, sender=CAROL, type=MESSAGE, text=f"carol after the flood {time.time()}")
    return True
