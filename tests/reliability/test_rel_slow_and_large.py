"""Slow and oversized requests against a real hub process (keep-alive bound 2 s, body bound
2 s, body limit 69,632 bytes): each hostile connection is cut off within the configured bound
plus a margin, the hub's memory does not grow with what the peers send, another peer is
served throughout, and nothing is stored."""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from typing import List, Optional, Tuple

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster
from mimi_signaling.transport.client import SignalingClient
from mimi_signaling.server.federation import KEYS

from support.e2ekit import ALPHA, BETA, HUB, REQUEST_DEADLINE
from support.relkit import (
    HOSTILE_BODY_TIMEOUT,
    HOSTILE_KEEPALIVE,
    HostileClient,
    nothing_stored,
    parse_http_response,
    peak_rss_kb,
    read_response,
    record,
    rss_kb,
)

pytestmark = pytest.mark.timeout(120)

#: Scheduling margin on top of a configured bound (a loaded CI machine, TLS close).
MARGIN = 5.0
#: A hostile connection still open after this long has not been cut off.
GIVE_UP = 30.0
OCTETS = "application/octet-stream"
EVERYONE = [HUB, ALPHA, BETA]


@pytest.fixture(scope="module")
def attacker(hostile: Cluster, tmp_path_factory: pytest.TempPathFactory) -> HostileClient:
    """A federation member of its own (certificate from the cluster's CA), so its requests
    have a rate-limit bucket no other test has drained."""
    return HostileClient(hostile, "slowpoke.test", tmp_path_factory.mktemp("attacker"))


@pytest.fixture(scope="module")
def bystander(hostile: Cluster, tmp_path_factory: pytest.TempPathFactory) -> HostileClient:
    return HostileClient(hostile, ALPHA, tmp_path_factory.mktemp("bystander"))


async def served_meanwhile(peer: HostileClient, until: "asyncio.Future[object]", *, at_most: int = 50) -> List[bool]:
    """Keys requests of an honest peer, one after the other, while ``until`` is pending (at
    least one); True for each one answered."""
    results: List[bool] = []
    async with SignalingClient(peer.ssl_context, peers=peer.peers, max_retries=0, timeout=REQUEST_DEADLINE) as client:
        while len(results) < at_most and (not results or not until.done()):
            try:
                ms.ServerKeys.decode(await client.request(HUB, KEYS, b""))
                results.append(True)
            except Exception:  # noqa: BLE001 - counted as not served
                results.append(False)
            await asyncio.sleep(0.1)
    return results


async def held_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, trickle: Optional[bytes]) -> float:
    """Seconds until the server closes the connection (``inf`` after ``GIVE_UP``); with
    ``trickle``, one byte of it is sent every quarter second meanwhile."""
    loop = asyncio.get_running_loop()
    opened = loop.time()
    sent = 0
    try:
        while loop.time() - opened < GIVE_UP:
            try:
                data = await asyncio.wait_for(reader.read(4096), 0.25)
            except asyncio.TimeoutError:
                if trickle is not None:
                    writer.write(trickle[sent % len(trickle):][:1])
                    sent += 1
                    await writer.drain()
                continue
            if not data:
                return loop.time() - opened
        return math.inf
    except (ConnectionError, ssl.SSLError):
        return loop.time() - opened
    finally:
        writer.close()


def test_slow_headers_and_idle_connections_are_cut_off(hostile: Cluster, hostile_room: str,
                                                        attacker: HostileClient, bystander: HostileClient) -> None:
    """Slowloris: 20 connections trickle a request head a byte at a time, 20 more send
    nothing after the TLS handshake."""

    async def attack() -> Tuple[List[float], List[bool]]:
        streams = [await attacker.open_stream(HUB) for _ in range(40)]
        for i, (_, writer) in enumerate(streams[:20]):
            writer.write(b"POST /signaling HTTP/1.1\r\nHost: hub.test\r\nX-Slow-" + str(i).encode() + b": ")
        holds = asyncio.ensure_future(asyncio.gather(*(
            held_open(r, w, b"abcdefgh" if i < 20 else None) for i, (r, w) in enumerate(streams))))
        served = await served_meanwhile(bystander, holds)
        return list(await holds), served

    with nothing_stored(hostile, EVERYONE, hostile_room):
        closed_after, served = asyncio.run(asyncio.wait_for(attack(), GIVE_UP + 30))
    assert all(served) and served, served
    assert max(closed_after) <= HOSTILE_KEEPALIVE + MARGIN, sorted(closed_after)[-5:]
    assert hostile[HUB].running
    record("hostile: slow request heads and idle connections", connections=len(closed_after),
           bound_seconds=HOSTILE_KEEPALIVE, cut_off_after_max_seconds=round(max(closed_after), 2),
           other_peer_requests=len(served), other_peer_served=sum(served), stored=0)


def test_slow_bodies_are_answered_with_408(hostile: Cluster, hostile_room: str,
                                          attacker: HostileClient, bystander: HostileClient) -> None:
    """Ten requests announce 4,096 body bytes and send one every quarter second."""

    async def slow_body() -> Tuple[float, bytes]:
        reader, writer = await attacker.open_stream(HUB)
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer.write(HostileClient.request_head(HUB, {"Content-Type": OCTETS, "Content-Length": "4096"}))
        answer = asyncio.ensure_future(read_response(reader))
        try:
            while not answer.done() and loop.time() - started < GIVE_UP:
                writer.write(b"\x00")
                await writer.drain()
                await asyncio.wait([answer], timeout=0.25)
        except (ConnectionError, ssl.SSLError):
            pass
        data = await asyncio.wait_for(answer, GIVE_UP)
        writer.close()
        return loop.time() - started, data

    async def attack() -> Tuple[List[Tuple[float, bytes]], List[bool]]:
        bodies = asyncio.ensure_future(asyncio.gather(*(slow_body() for _ in range(10))))
        served = await served_meanwhile(bystander, bodies)
        return list(await bodies), served

    with nothing_stored(hostile, EVERYONE, hostile_room):
        results, served = asyncio.run(asyncio.wait_for(attack(), GIVE_UP + 30))
    assert all(served) and served, served
    for elapsed, raw in results:
        status, _, body = parse_http_response(raw)
        assert status == 408 and ms.wire.decode_error_body(body)[0] == ms.MalformedError.code, raw[:300]
        assert elapsed <= HOSTILE_BODY_TIMEOUT + MARGIN, elapsed
    record("hostile: slow request bodies", connections=len(results), bound_seconds=HOSTILE_BODY_TIMEOUT,
           answered_408=len(results), answered_after_max_seconds=round(max(e for e, _ in results), 2),
           other_peer_served=sum(served), stored=0)


def test_oversized_bodies_keep_memory_bounded(hostile: Cluster, hostile_room: str,
                                              attacker: HostileClient, bystander: HostileClient) -> None:
    """16 connections each stream up to 16 MiB in a chunked body (no length announced), 8 more
    announce 1 GiB: every one is answered too_large (413); the hub's peak memory stays within
    48 MiB of what it used before (connection buffers), far below the 256 MiB offered."""
    limit = hostile[HUB].config.http.max_body_size
    per_stream = 16 << 20
    pid = hostile[HUB].proc.pid  # type: ignore[union-attr]
    chunk = b"\x00" * 65536
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"

    async def stream_body() -> Tuple[int, bytes]:
        reader, writer = await attacker.open_stream(HUB)
        writer.write(HostileClient.request_head(HUB, {"Content-Type": OCTETS, "Transfer-Encoding": "chunked"}))
        answer = asyncio.ensure_future(read_response(reader))
        sent = 0
        try:
            while sent < per_stream and not answer.done():
                writer.write(framed)
                await writer.drain()
                sent += len(chunk)
        except (ConnectionError, ssl.SSLError):
            pass
        data = await asyncio.wait_for(answer, GIVE_UP)
        writer.close()
        return sent, data

    async def announce_huge() -> Tuple[int, bytes]:
        reader, writer = await attacker.open_stream(HUB)
        writer.write(HostileClient.request_head(HUB, {"Content-Type": OCTETS, "Content-Length": str(1 << 30)}) + chunk)
        data = await asyncio.wait_for(read_response(reader), GIVE_UP)
        writer.close()
        return len(chunk), data

    async def attack() -> Tuple[List[Tuple[int, bytes]], List[bool]]:
        streams = asyncio.ensure_future(asyncio.gather(*[stream_body() for _ in range(16)],
                                                       *[announce_huge() for _ in range(8)]))
        served = await served_meanwhile(bystander, streams)
        return list(await streams), served

    base_rss, base_peak = rss_kb(pid), peak_rss_kb(pid)
    started = time.monotonic()
    with nothing_stored(hostile, EVERYONE, hostile_room):
        results, served = asyncio.run(asyncio.wait_for(attack(), GIVE_UP + 60))
    elapsed = time.monotonic() - started
    peak = peak_rss_kb(pid)
    assert all(served) and served, served
    for _sent, raw in results:
        status, _, body = parse_http_response(raw)
        assert status == 413 and ms.wire.decode_error_body(body)[0] == ms.TooLargeError.code, raw[:300]
    assert peak <= max(base_peak, base_rss + 48 * 1024), (base_rss, base_peak, peak)
    offered = sum(sent for sent, _ in results)
    record("hostile: oversized request bodies", connections=len(results), body_limit=limit,
           bytes_written_by_peer=offered, answered_413=len(results), hub_rss_before_kib=base_rss,
           hub_peak_rss_after_kib=peak, seconds=round(elapsed, 1), other_peer_served=sum(served), stored=0)


def test_connections_that_never_start_tls_are_cut_off(hostile: Cluster, hostile_room: str,
                                                     bystander: HostileClient) -> None:
    """40 TCP connections that never send a TLS ClientHello: the hub keeps serving others, and
    closes them within the configured bound too (not only after asyncio's 60 s default)."""
    port = hostile[HUB].config.listen_port

    async def attack() -> Tuple[List[float], List[bool]]:
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
        holds = asyncio.ensure_future(asyncio.gather(*(held_open(r, w, None) for r, w in streams)))
        served = await served_meanwhile(bystander, holds, at_most=20)
        # Bounded: wait for the configured bound plus the margin, not for asyncio's default.
        done, _ = await asyncio.wait([holds], timeout=HOSTILE_KEEPALIVE + MARGIN)
        closed = list(holds.result()) if done else [math.inf]
        holds.cancel()
        await asyncio.gather(holds, return_exceptions=True)
        return closed, served

    with nothing_stored(hostile, EVERYONE, hostile_room):
        closed_after, served = asyncio.run(asyncio.wait_for(attack(), GIVE_UP + 30))
    assert all(served) and served, served
    assert max(closed_after) <= HOSTILE_KEEPALIVE + MARGIN, (
        f"connections without a TLS handshake stay open past {HOSTILE_KEEPALIVE + MARGIN:.0f} s")
