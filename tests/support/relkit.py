"""Helpers of the reliability tests, on top of the end-to-end kit (``tests/support/e2ekit.py``):
clusters with tightened limits, a hostile wire client (concurrent requests, raw TLS streams
for slow and oversized requests), process memory readings, chain checks, and the figures
each test records for ``docs/RELIABILITY.md``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Sequence, Tuple, Union


import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster, ServerProcess, reap
from mimi_signaling.config import Config
from mimi_signaling.transport.client import SignalingClient
from mimi_signaling.transport.tls import ssl_hostname
from support.transport_helpers import parse_response

from support.e2ekit import (
    ALPHA,
    HUB,
    MESSAGE,
    REQUEST_DEADLINE,
    WireClient,
    counts,
    event_ids,
    history,
    wait_for,
)

GAMMA = "gamma.test"
DAVE, ERIN, GINA = f"@dave:{HUB}", f"@erin:{ALPHA}", f"@gina:{GAMMA}"

#: Limits of the hostile-peer cluster: small enough that a test reaches them quickly.
HOSTILE_RATE = 50.0
HOSTILE_BURST = 100
HOSTILE_KEEPALIVE = 2.0
HOSTILE_BODY_TIMEOUT = 2.0


# --- figures for docs/RELIABILITY.md ----------------------------------------------------------


def record(test: str, **figures: Any) -> None:
    """Append one JSON line of figures to ``$MIMI_RELIABILITY_REPORT`` (when set): the numbers
    ``docs/RELIABILITY.md`` quotes come from these lines, not from memory."""
    path = os.environ.get("MIMI_RELIABILITY_REPORT")
    if not path:
        return
    line = json.dumps({"test": test, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}, sort_keys=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


# --- clusters -----------------------------------------------------------------------------------


def tightened(
    *,
    rate: float = HOSTILE_RATE,
    burst: int = HOSTILE_BURST,
    keepalive_timeout: float = HOSTILE_KEEPALIVE,
    body_timeout: float = HOSTILE_BODY_TIMEOUT,
) -> Callable[[Config], None]:
    """A ``Cluster(configure=...)`` callback setting the per-peer rate limit and HTTP bounds."""

    def configure(config: Config) -> None:
        config.rate_limit.rate = rate
        config.rate_limit.burst = burst
        config.http.keepalive_timeout = keepalive_timeout
        config.http.body_timeout = body_timeout

    return configure


# --- what a refused request must not change ---------------------------------------------------


@contextlib.contextmanager
def nothing_stored(cluster: Cluster, names: Sequence[str], room_id: str) -> Iterator[None]:
    """Events per room, fan-out queues and the room's event IDs are the same on every named
    server after the block as before it (queues drained first: they empty asynchronously)."""
    wait_for(lambda: all(not counts(cluster[n])["queues"] for n in names), timeout=30, what="empty queues")
    before = {n: counts(cluster[n]) for n in names}
    ids = {n: event_ids(cluster[n], room_id) for n in names}
    yield
    assert {n: counts(cluster[n]) for n in names} == before, "a refused request changed what a server stores"
    assert {n: event_ids(cluster[n], room_id) for n in names} == ids


# --- reading rooms ------------------------------------------------------------------------------


def message_texts(server: ServerProcess, room_id: str) -> Counter:
    """How often each message content occurs in the room (every test message is unique, so a
    count above one is a duplicate)."""
    return Counter(r["content"] for r in history(server, room_id) if r["type"] == MESSAGE)


def assert_linear(events: Sequence[ms.Event]) -> None:
    """One chain: the create event first, each event's prev_event the one before it."""
    assert events and events[0].prev_event == "" and events[0].type == "m.room.create"
    for before, event in zip(events, events[1:]):
        assert event.prev_event == before.event_id, f"the chain forks at {event.event_id}"


def missing(acked: Iterable[str], stored: Iterable[str]) -> List[str]:
    have = set(stored)
    return [e for e in acked if e not in have]


# --- process memory -----------------------------------------------------------------------------


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def rss_kb(pid: int) -> int:
    return _status_kb(pid, "VmRSS")


def peak_rss_kb(pid: int) -> int:
    """The process's resident-set high-water mark since it started."""
    return _status_kb(pid, "VmHWM")


# --- a hostile peer -----------------------------------------------------------------------------


Outcome = Union[bytes, BaseException]


class HostileClient(WireClient):
    """A ``WireClient`` (certificate for ``as_server`` from the cluster's CA) that can also send
    many requests at once and open raw TLS streams for slow or oversized requests."""

    def __init__(self, cluster: Cluster, as_server: str, workdir: Path) -> None:
        super().__init__(cluster, as_server, workdir)
        self.ports = {name: s.config.listen_port for name, s in cluster.servers.items()}

    def request_many(self, to: str, transaction_type: str, payloads: Sequence[bytes], *,
                     concurrency: int = 32) -> List[Outcome]:
        """Send every payload (``concurrency`` at a time, no retries); per payload the 200 body
        or the exception raised (a typed ``MimiError`` for a verdict)."""

        async def go() -> List[Outcome]:
            client = SignalingClient(self.ssl_context, peers=self.peers, max_retries=0,
                                     timeout=REQUEST_DEADLINE, limit_per_host=concurrency)
            gate = asyncio.Semaphore(concurrency)

            async def one(payload: bytes) -> Outcome:
                async with gate:
                    try:
                        return await client.request(to, transaction_type, payload)
                    except Exception as exc:  # noqa: BLE001 - the outcome is the test's data
                        return exc

            async with client:
                return list(await asyncio.gather(*(one(p) for p in payloads)))

        return asyncio.run(go())

    async def open_stream(self, to: str) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TLS connection to ``to`` (handshake done, client certificate presented)."""
        return await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.ports[to], ssl=self.ssl_context,
                                    server_hostname=ssl_hostname(to)),
            REQUEST_DEADLINE,
        )

    @staticmethod
    def request_head(to: str, headers: Dict[str, str]) -> bytes:
        lines = ["POST /signaling HTTP/1.1", f"Host: {to}", *(f"{k}: {v}" for k, v in headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader, *, limit: int = 1 << 20) -> bytes:
    """Read one HTTP/1.1 response (head and Content-Length body), or up to the end of the
    stream when the server closes first; a reset ends the read with what arrived."""
    data = b""
    try:
        while len(data) < limit:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), None)
                if length is not None and len(body) >= length:
                    return data
            chunk = await reader.read(65536)
            if not chunk:
                return data
            data += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    return data


def parse_http_response(raw: bytes) -> Tuple[int, Dict[str, str], bytes]:
    """``(status, headers, body)`` of one HTTP/1.1 response read to the end of the stream."""
    response = parse_response(raw)
    return response.status, response.headers, response.body


__all__ = [
    "DAVE", "ERIN", "GAMMA", "GINA", "HostileClient", "assert_linear", "message_texts", "missing", "nothing_stored",
    "parse_http_response", "peak_rss_kb", "read_response", "reap", "record", "rss_kb", "tightened",
]
