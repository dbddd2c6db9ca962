"""``PeerKeyFetcher``: one keys fetch per peer at a time, shared by its askers; a deadline; a
backoff after failures during which askers get the failure at once; refreshes for unseen key
IDs at once after an honest rotation, else at most every ``refresh_interval``; what comes
back is installed only through ``KeyStore.learn``."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, List, Tuple

import pytest

import mimi_signaling as ms
from mimi_signaling.node.keys import KeyStore
from mimi_signaling.server.keyfetch import PeerKeyFetcher

PEER = "peer.test"
first = ms.SigningKey.generate("ed25519:first")
rotated = ms.SigningKey.generate("ed25519:rotated")


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


class Peer:
    """The keys transaction of PEER: counts calls, may wait, fail or lie."""

    def __init__(self) -> None:
        self.calls = 0
        self.keys = [first]
        self.delay = 0.0
        self.fail = False
        self.name = PEER

    async def __call__(self, server: str) -> Tuple[bytes, Tuple[str, ...]]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("peer down")
        return ms.ServerKeys(self.name, [k.verify_key() for k in self.keys]).encode(), (server,)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


def fetcher(sqlite_store, executor, peer: Peer, clock: Clock, **kw) -> PeerKeyFetcher:
    keys = KeyStore("hub.test", ms.SigningKey.generate("ed25519:own"), sqlite_store)
    return PeerKeyFetcher(keys, peer, executor, clock=clock, **kw)


def known(f: PeerKeyFetcher) -> List[str]:
    return sorted(k.key_id for k in f.keys.ring.get(PEER))


def test_concurrent_askers_share_one_fetch(sqlite_store, executor) -> None:
    peer = Peer()
    peer.delay = 0.2
    f = fetcher(sqlite_store, executor, peer, Clock())

    async def go() -> list:
        return await asyncio.gather(*(f.resolve({PEER: ["ed25519:first"]}) for _ in range(20)))

    assert asyncio.run(go()) == [{}] * 20
    assert peer.calls == 1 and known(f) == ["ed25519:first"]


def test_failures_are_backed_off_and_timed_out(sqlite_store, executor) -> None:
    peer, clock = Peer(), Clock()
    peer.fail = True
    f = fetcher(sqlite_store, executor, peer, clock, backoff_base=2.0, timeout=0.3)
    errors = asyncio.run(f.resolve({PEER: ["ed25519:first"]}))
    assert isinstance(errors[PEER], ms.InternalError) and peer.calls == 1
    errors = asyncio.run(f.resolve({PEER: ["ed25519:first"]}))  # within the backoff: not asked
    assert "not fetched again" in str(errors[PEER]) and peer.calls == 1
    clock.now += 2.1
    peer.fail, peer.delay = False, 1.0  # up again, but slower than the deadline
    errors = asyncio.run(f.resolve({PEER: ["ed25519:first"]}))
    assert "did not come within" in str(errors[PEER]) and peer.calls == 2
    clock.now += 4.1  # the backoff doubled
    peer.delay = 0.0
    assert asyncio.run(f.resolve({PEER: ["ed25519:first"]})) == {} and known(f) == ["ed25519:first"]


def test_refreshes_follow_rotations_but_not_made_up_key_ids(sqlite_store, executor) -> None:
    peer, clock = Peer(), Clock()
    f = fetcher(sqlite_store, executor, peer, clock, refresh_interval=10.0)
    asyncio.run(f.resolve({PEER: ["ed25519:first"]}))
    peer.keys = [first, rotated]  # an honest rotation: refreshed at once
    asyncio.run(f.resolve({PEER: ["ed25519:rotated"]}))
    assert peer.calls == 2 and known(f) == ["ed25519:first", "ed25519:rotated"]
    for _ in range(5):  # key IDs the peer never publishes: one refresh, then none for a while
        asyncio.run(f.resolve({PEER: ["ed25519:made-up"]}))
    assert peer.calls == 3
    clock.now += 10.1
    asyncio.run(f.resolve({PEER: ["ed25519:made-up"]}))
    assert peer.calls == 4


def test_keys_named_for_another_server_are_refused_and_backed_off(sqlite_store, executor) -> None:
    peer, clock = Peer(), Clock()
    peer.name = "alpha.test"
    f = fetcher(sqlite_store, executor, peer, clock)
    errors = asyncio.run(f.resolve({PEER: ["ed25519:first"]}))
    assert isinstance(errors[PEER], ms.UnauthorizedError)
    assert not f.keys.ring.has_server("alpha.test") and not f.keys.ring.has_server(PEER)
    assert f.backing_off(PEER)
