"""Fake peer *servers* for the hostile-peer tests.  ``FakePeer``: a ``SignalingServer`` in a thread of the
test process, with a certificate for its own server name from the cluster's CA (so the
servers of the cluster reach it over real mutual TLS and trust it as that server), answering
each transaction with what the test sets in ``answers`` — honest, hostile or slow.

The cluster's servers find the fake peers through their peer map: build the cluster with
``configure=peer_map(fake_peers)`` (ports are chosen before the cluster starts), then
``start()`` each fake peer once the cluster's CA exists.

``HubThread`` runs a genuine ``ServerNode`` in this process (``TamperingHub``: with a
cluster server's own configuration, certificate and key) whose answers a test may rewrite or
hold back."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Tuple

from aiohttp import web

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster, ServerProcess, free_port
from mimi_signaling.config import Config
from mimi_signaling.server import ServerNode
from mimi_signaling.server.federation import KEYS
from mimi_signaling.transport.server import SignalingServer
from mimi_signaling.transport.tls import issue_server_cert, server_ssl_context

from support.relkit import HostileClient

#: A rewrite of a ``TamperingHub``'s answer.
Tamper = Callable[[bytes], bytes]
#: ``answer(payload, peer) -> body`` (raise a ``MimiError`` for an Error answer).
Answer = Callable[[bytes, str], Awaitable[bytes]]


class FakePeer:
    """A MIMI server named ``name`` that the test scripts; ``requests`` logs what it was
    asked, ``(transaction type, peer)`` in arrival order."""

    def __init__(self, name: str, *, certificate_name: Optional[str] = None) -> None:
        self.name = name
        self.certificate_name = certificate_name or name  # a certificate for another name: an impostor
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.signing_key = ms.SigningKey.generate()
        self.answers: Dict[str, Answer] = {KEYS: self._own_keys}
        #: ``type -> (chunk, count)``: answer 200 with ``count`` chunks, without Content-Length.
        self.streamed: Dict[str, Tuple[bytes, int]] = {}
        #: Bytes of streamed answers actually written (the asking server read them).
        self.streamed_bytes = 0
        self.requests: List[tuple] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Optional[SignalingServer] = None
        self._thread: Optional[threading.Thread] = None
        self.client: Optional[HostileClient] = None

    async def _own_keys(self, payload: bytes, peer: str) -> bytes:
        return ms.ServerKeys(self.name, [self.signing_key.verify_key()]).encode()

    async def handle(self, transaction_type: str, payload: bytes, peer: str) -> bytes:
        self.requests.append((transaction_type, peer))
        answer = self.answers.get(transaction_type)
        if answer is None:
            raise ms.MalformedError(f"{self.name} serves no {transaction_type}")
        return await answer(payload, peer)

    def asked(self, transaction_type: str) -> int:
        return sum(1 for t, _ in self.requests if t == transaction_type)

    def start(self, cluster: Cluster, workdir: Path) -> "FakePeer":
        """Serve on 127.0.0.1:``port`` with a certificate from the cluster's CA; also make
        ``client``, a wire client presenting a certificate for ``name``."""
        ca_dir = cluster.directory / "ca"
        cert, key = issue_server_cert((ca_dir / "ca.pem", ca_dir / "ca.key"), self.certificate_name,
                                      workdir / f"fake-{self.name}")
        self.client = HostileClient(cluster, self.name, workdir)
        ssl_context = server_ssl_context(cert, key, ca_dir / "ca.pem")
        ready = threading.Event()
        failure: List[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = _StreamingServer(self, ssl_context, ds_domain=self.name)
                loop.run_until_complete(self._server.start("127.0.0.1", self.port))
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._server.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)


class _StreamingServer(SignalingServer):
    """Answers the types of ``FakePeer.streamed`` with a chunked stream (no Content-Length),
    as long as the reader keeps reading; the rest as a ``SignalingServer``."""

    async def _handle_signaling(self, request: web.Request) -> web.StreamResponse:
        fake: FakePeer = self.handler  # type: ignore[assignment]
        if not fake.streamed:
            return await super()._handle_signaling(request)
        envelope = ms.TransactionEnvelope.decode(await request.read())
        if envelope.transaction_type not in fake.streamed:
            peer = self._peer_names(request)[0]
            return web.Response(body=await fake.handle(envelope.transaction_type, envelope.payload, peer),
                                content_type="application/octet-stream")
        fake.requests.append((envelope.transaction_type, self._peer_names(request)[0]))
        chunk, count = fake.streamed[envelope.transaction_type]
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/octet-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            for _ in range(count):
                if request.transport is None or request.transport.is_closing():
                    break  # the asking server hung up
                await resp.write(chunk)
                fake.streamed_bytes += len(chunk)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the asking server hung up: what this fake peer is for
        return resp




class TamperingHub(ServerNode):
    """A genuine server (e.g. hub.test with the cluster's certificate and signing key), honest
    unless ``tamper`` holds a rewrite of its answer to a transaction, or ``hold`` a number of
    seconds to keep the asking server waiting before answering one."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.tamper: Dict[str, Tamper] = {}
        self.hold: Dict[str, float] = {}

    async def handle(self, transaction_type: str, payload: bytes, peer: str) -> bytes:
        delay = self.hold.get(transaction_type)
        if delay:
            await asyncio.sleep(delay)
        body = await super().handle(transaction_type, payload, peer)
        rewrite = self.tamper.get(transaction_type)
        return rewrite(body) if rewrite is not None else body


class HubThread:
    """A ``TamperingHub`` serving on its configured port from an event loop in a thread."""

    def __init__(self, config: Config) -> None:
        self.loop = asyncio.new_event_loop()
        self.node = TamperingHub(config)
        self.thread = threading.Thread(target=self.loop.run_forever, name="tampering-hub", daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.node.start(), self.loop).result(60)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking node method on the node's worker threads, as its handlers do."""
        return asyncio.run_coroutine_threadsafe(self.node.run(fn, *args), self.loop).result(60)

    def send(self, room: str, sender: str, type_: str, state_key: Optional[str], content: bytes) -> "ms.Event":
        return self.call(self.node.submit_local, room, sender, type_, state_key, content)

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.node.stop(), self.loop).result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)



def peer_map(peers: Iterable[FakePeer], also: Optional[Callable[[Config], None]] = None) -> Callable[[Config], None]:
    """A ``Cluster(configure=...)`` callback adding the fake peers to every peer map."""
    urls = {p.name: p.url for p in peers}

    def configure(config: Config) -> None:
        config.peers.update(urls)
        if also is not None:
            also(config)

    return configure


def sends_meanwhile(server: ServerProcess, room: str, sender: str, attack: Callable[[], object], tag: str, *,
                    sends: int) -> Dict[str, Any]:
    """Start ``attack`` in a thread, let it reach the slow peer (half a second), send ``sends``
    messages as ``sender`` through ``server``'s API one after the other (timing each), then
    wait for the attack.  The figures: the attack's seconds and outcome (its return value or
    exception), the sends' largest and median seconds."""
    done: List[float] = []
    outcome: List[object] = []

    def run() -> None:
        started = time.monotonic()
        try:
            outcome.append(attack())
        except Exception as exc:  # noqa: BLE001 - the outcome is the test's data
            outcome.append(exc)
        done.append(time.monotonic() - started)

    attacker = threading.Thread(target=run)
    attacker.start()
    time.sleep(0.5)  # the asking server is now waiting on the slow peer
    latencies = []
    for i in range(sends):
        started = time.monotonic()
        server.call("send", room_id=room, sender=sender, type="m.room.encrypted", text=f"{tag} {i}")
        latencies.append(time.monotonic() - started)
    attacker.join(90)
    assert done, "the slow peer's request did not finish"
    return {"slow_peer_seconds": round(done[0], 2), "outcome": outcome[0],
            "bob_max": round(max(latencies), 3), "bob_median": round(statistics.median(latencies), 3)}


def hold(seconds: float, then: Answer) -> Answer:
    """An answer that keeps the asking server waiting ``seconds`` before answering."""

    async def held(payload: bytes, peer: str) -> bytes:
        await asyncio.sleep(seconds)
        return await then(payload, peer)

    return held


def stored_keys(cluster: Cluster, on: str, of: str) -> Optional[bytes]:
    """The ``ServerKeys`` bytes server ``on`` keeps for server ``of`` (straight from its
    SQLite file, read-only)."""
    import sqlite3

    from mimi_signaling.storage.urls import sqlite_path_from_url

    path = Path("/" + sqlite_path_from_url(cluster[on].config.storage).lstrip("/"))
    conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, timeout=30)
    try:
        row = conn.execute("SELECT keys_bytes FROM server_keys WHERE server_name = ?", (of,)).fetchone()
        return bytes(row[0]) if row else None
    finally:
        conn.close()


def log_lines(cluster: Cluster, name: str, *needles: str) -> List[str]:
    """Lines of a server's log holding every one of ``needles``."""
    text = cluster[name].log_path.read_text(encoding="utf-8", errors="replace")
    return [line for line in text.splitlines() if all(n in line for n in needles)]
