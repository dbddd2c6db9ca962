"""Workloads shared by the pytest-benchmark files (``benches/bench_*.py``) and
``benches/compare.py``: a generated room file, the per-signature bound's inputs, a hub on a
durable SQLite file, and a hub with two followers as real ``mimi serve`` processes.

Every workload is built from real parts (real Ed25519 keys, real files, real TLS on
127.0.0.1) and every loop is bounded by a count.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import mimi_signaling as m
from mimi_signaling.content import JoinRule, Participation
from mimi_signaling.node.hub import Hub
from mimi_signaling.node.keys import KeyStore
from mimi_signaling.testing.rooms import generate_room
from mimi_signaling.storage import SQLiteEventStore

#: Ciphertext bytes of every message event, in this project's events and the Matrix-style ones.
PAYLOAD = 256
HUB = "hub.example"
ORIGIN = "s1.example"
ROOM_SEED = 5


# --- a room file ---------------------------------------------------------------------------------


def room_file(directory: Path, n_events: int, *, payload: int = PAYLOAD, seed: int = ROOM_SEED) -> Path:
    """A valid generated room of ``n_events`` (hub + one other server, ``payload``-byte
    messages), reused when ``directory`` already holds the same one (same count, payload, seed)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"room-{n_events}-{payload}-{seed}.mimiroom"
    stamp = path.with_suffix(".done")
    if path.exists() and stamp.exists():
        return path
    generate_room(path, n_events, seed=seed, servers=2, users_per_server=3, message_size=payload)
    stamp.write_text(json.dumps({"events": n_events, "payload": payload, "seed": seed}))
    return path


def load_room(path: Path, limit: Optional[int] = None) -> Tuple[m.KeyRing, List[bytes]]:
    """The room file's key ring and (up to ``limit``) encoded events, in order."""
    reader = m.RoomFileReader(str(path))
    ring = m.KeyRing()
    for sk in reader.server_keys:
        ring = ring.with_server_keys(sk)
    blobs: List[bytes] = []
    while limit is None or len(blobs) < limit:
        chunk = reader.read_events(65536 if limit is None else min(65536, limit - len(blobs)))
        if not chunk:
            break
        blobs.extend(chunk)
    return ring, blobs


def message_events(blobs: Sequence[bytes]) -> List[bytes]:
    """The ``m.room.encrypted`` events (the payload-sized ones) of a room."""
    events = m.decode_events(list(blobs))
    return [b for b, e in zip(blobs, events) if e.type == "m.room.encrypted"]


# --- the per-signature bound -------------------------------------------------------------------


@dataclass
class BoundInput:
    """What one event's checks sign and hash, with the real signatures and public keys."""

    origin_message: bytes  # SignContent(origin label, origin-signed form)
    origin_signature: bytes
    origin_key: bytes
    hub_message: bytes  # SignContent(hub label, reference-hash input)
    hub_signature: bytes
    hub_key: bytes
    content_hash_input: bytes
    reference_hash_input: bytes


def bound_inputs(blobs: Sequence[bytes], ring: m.KeyRing) -> List[BoundInput]:
    out = []
    for event in m.decode_events(list(blobs)):
        out.append(
            BoundInput(
                m.wire.sign_content(m.ORIGIN_LABEL, event.origin_signed_form()),
                event.origin_signature[0].signature,
                ring.get(event.origin_server)[0].public_key,
                m.wire.sign_content(m.HUB_LABEL, event.reference_hash_input()),
                event.hub_signature[0].signature,
                ring.get(event.hub_server)[0].public_key,
                event.content_hash_input(),
                event.reference_hash_input(),
            )
        )
    return out


def bound_libsodium(inputs: Sequence[BoundInput], sign_key: Optional[bytes] = None) -> None:
    """Per event: 2 x SHA-256, 2 x Ed25519 verify (libsodium ``crypto_sign_open``, the
    cheapest libsodium call PyNaCl has), and with ``sign_key`` (64-byte libsodium secret key)
    1 x sign."""
    from nacl.bindings import crypto_sign, crypto_sign_open

    sha256 = hashlib.sha256
    for x in inputs:
        sha256(x.content_hash_input).digest()
        sha256(x.reference_hash_input).digest()
        crypto_sign_open(x.origin_signature + x.origin_message, x.origin_key)
        crypto_sign_open(x.hub_signature + x.hub_message, x.hub_key)
        if sign_key is not None:
            crypto_sign(x.hub_message, sign_key)


def bound_cryptography(inputs: Sequence[BoundInput], sign: bool = False) -> None:
    """The same with ``cryptography`` (OpenSSL); public keys parsed once per key, as a key
    ring would keep them."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    keys: Dict[bytes, Any] = {}
    signer = Ed25519PrivateKey.generate() if sign else None
    sha256 = hashlib.sha256
    for x in inputs:
        ok = keys.get(x.origin_key) or keys.setdefault(x.origin_key, Ed25519PublicKey.from_public_bytes(x.origin_key))
        hk = keys.get(x.hub_key) or keys.setdefault(x.hub_key, Ed25519PublicKey.from_public_bytes(x.hub_key))
        sha256(x.content_hash_input).digest()
        sha256(x.reference_hash_input).digest()
        ok.verify(x.origin_signature, x.origin_message)
        hk.verify(x.hub_signature, x.hub_message)
        if signer is not None:
            signer.sign(x.hub_message)


def libsodium_secret_key() -> bytes:
    from nacl.bindings import crypto_sign_seed_keypair

    return crypto_sign_seed_keypair(hashlib.sha256(b"bench signer").digest())[1]


# --- the single-event and batch APIs --------------------------------------------------------------


def single_event_api(blobs: Sequence[bytes], ring: m.KeyRing) -> None:
    """One event at a time: decode, verify (content hash, both signatures), event ID."""
    decode = m.Event.decode
    for raw in blobs:
        event = decode(raw)
        event.verify(ring)
        _ = event.event_id  # the ID is part of the receive work being measured


def chain_validate(blobs: Sequence[bytes], ring: m.KeyRing, batch: int, threads: Optional[int]) -> int:
    """Validate a chain prefix in batches of ``batch``; returns the events found valid."""
    validator = m.ChainValidator(ring, threads)
    valid = 0
    for start in range(0, len(blobs), batch):
        result = validator.validate(blobs[start : start + batch])
        if result.error is not None:
            raise result.error
        valid += len(result.events)
    return valid


def check_batches(blobs: Sequence[bytes], ring: m.KeyRing, batch: int) -> int:
    failures = 0
    for start in range(0, len(blobs), batch):
        failures += len(m.check_events(blobs[start : start + batch], ring).failures)
    if failures:
        raise AssertionError(f"{failures} events failed check_events")
    return len(blobs)


# --- the hub on durable SQLite -----------------------------------------------------------------


def _origin_user(index: int) -> str:
    return f"@u{index}:{ORIGIN}"


class HubWorkload:
    """A hub with a durable SQLite store (a real file: WAL, ``synchronous=FULL``) and
    ``rooms`` public rooms, each with a joined user of the origin server ``s1.example``."""

    def __init__(self, directory: Path, *, rooms: int = 1, payload: int = PAYLOAD) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.payload = payload
        self.db_path = directory / "hub.db"
        self.store = SQLiteEventStore(self.db_path)
        self.hub_key = m.SigningKey.generate("ed25519:hub")
        self.origin_key = m.SigningKey.generate("ed25519:origin")
        keys = KeyStore(HUB, self.hub_key, self.store)
        keys.add_server_keys(m.ServerKeys(ORIGIN, [self.origin_key.verify_key()]))
        self.hub = Hub(HUB, keys, self.store)
        self.room_ids: List[str] = []
        public = m.JoinRulesContent(int(JoinRule.PUBLIC)).encode()
        join = m.UserContent(int(Participation.JOIN)).encode()
        for i in range(rooms):
            room_id = f"!bench{i}:{HUB}"
            self.hub.create_room(f"@admin:{HUB}", room_id=room_id, initial_state=[("m.room.join_rules", "", public)])
            user = _origin_user(i)
            self.hub.accept(m.LimitedEvent.create(room_id, "m.room.user", user, user, join, self.origin_key), peer=ORIGIN)
            self.room_ids.append(room_id)
        self._counter = 0

    def limited_events(self, room_index: int, count: int) -> List[bytes]:
        """``count`` encoded limited events (messages of ``payload`` bytes) as the origin
        sends them; distinct, so none is an idempotent resubmit."""
        room_id = self.room_ids[room_index]
        user = _origin_user(room_index)
        out = []
        for _ in range(count):
            self._counter += 1
            content = self._counter.to_bytes(8, "big") + os.urandom(self.payload - 8)
            out.append(m.LimitedEvent.create(room_id, "m.room.encrypted", None, user, content, self.origin_key).encode())
        return out

    def accept_one(self, raw: bytes) -> bytes:
        """What the server's submit handler does: decode, accept (durably), encode."""
        return self.hub.accept(m.LimitedEvent.decode(raw), peer=ORIGIN).encode()

    def accept_sequential(self, events: Sequence[bytes]) -> None:
        accept = self.accept_one
        for raw in events:
            accept(raw)

    def accept_concurrent(self, per_room: Sequence[Sequence[bytes]], workers: int) -> None:
        """One submitter thread per room list, at most ``workers`` at a time (the server runs
        accepts in an 8-thread executor)."""
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench-accept") as pool:
            for future in [pool.submit(self.accept_sequential, events) for events in per_room]:
                future.result()

    def close(self) -> None:
        self.store.close()


def fsync_rate(directory: Path, count: int = 300) -> float:
    """Durable commits per second the file system allows at best: overwrite a 4 KiB block of
    a preallocated file and ``fsync``, in a loop (the bound of a store that syncs every
    commit; appending to a growing file, as a WAL does, is slower)."""
    path = directory / "fsync.probe"
    block = os.urandom(4096)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, block * 16)
        os.fsync(fd)
        started = time.perf_counter()
        for i in range(count):
            os.pwrite(fd, block, (i % 16) * 4096)
            os.fsync(fd)
        elapsed = time.perf_counter() - started
    finally:
        os.close(fd)
        os.unlink(path)
    return count / elapsed


# --- the HTTPS submit path with two followers ---------------------------------------------------


@dataclass
class SubmitStats:
    submits: int
    concurrency: int
    elapsed: float
    latencies: List[float] = field(default_factory=list)  # seconds, submit -> accepted
    converge_seconds: float = 0.0  # after the last accept, until both followers have it
    #: CPU milliseconds per submitted event, by process (the servers and this client), over
    #: the submit loop and the wait for the followers (Linux /proc; empty elsewhere).
    cpu_ms_per_event: Dict[str, float] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.submits / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        k = min(len(ordered) - 1, max(0, int(round(q / 100.0 * (len(ordered) - 1)))))
        return ordered[k]

    def summary(self) -> Dict[str, float]:
        return {
            "submits": self.submits,
            "concurrency": self.concurrency,
            "events_per_second": round(self.events_per_second, 1),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2) if self.latencies else 0.0,
            "converge_s": round(self.converge_seconds, 3),
            **{f"cpu_ms_{name}": round(ms, 3) for name, ms in self.cpu_ms_per_event.items()},
        }


CLUSTER_HUB, CLUSTER_ALPHA, CLUSTER_BETA = "hub.bench", "alpha.bench", "beta.bench"


def process_cpu_seconds(pid: int) -> Optional[float]:
    """User + system CPU seconds of a process so far (Linux ``/proc``), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class HttpsCluster:
    """The hub and two followers as ``mimi serve`` processes on 127.0.0.1 with mutual TLS,
    and a public room on the hub that a user of each follower has joined.  The benchmark
    submits as ``alpha.bench`` (its certificate and signing key) straight to the hub."""

    def __init__(self, directory: Path, *, batches: bool = True) -> None:
        from mimi_signaling.testing.cluster import Cluster
        from mimi_signaling.config import Config, RateLimitConfig

        self.cluster = Cluster(directory, [CLUSTER_HUB, CLUSTER_ALPHA, CLUSTER_BETA])
        # The default per-peer rate limit (50/s, burst 200) is a defence, not a cost: lift it,
        # or it, not the server, would be measured.  ``batches=False``: servers that do not
        # batch (``http.batches``), so the hub's fan-out sends single deliveries too.
        for server in self.cluster.servers.values():
            config = Config.load(server.config_path)
            config.rate_limit = RateLimitConfig(rate=1e6, burst=1_000_000)
            config.http.batches = batches
            config.dump(server.config_path)
        self.alpha_config = Config.load(self.cluster[CLUSTER_ALPHA].config_path)
        self.beta_config = Config.load(self.cluster[CLUSTER_BETA].config_path)
        self.room_id = ""
        self.user = f"@bob:{CLUSTER_ALPHA}"
        self.beta_user = f"@carol:{CLUSTER_BETA}"

    def start(self) -> None:
        try:
            self.cluster.start()
            hub = self.cluster[CLUSTER_HUB]
            self.room_id = hub.call("create_room", creator=f"@alice:{CLUSTER_HUB}", join_rule="public")["room_id"]
            for server, user in ((CLUSTER_ALPHA, self.user), (CLUSTER_BETA, f"@carol:{CLUSTER_BETA}")):
                self.cluster[server].call("membership", room_id=self.room_id, sender=user, target=user,
                                          participation="join")
            self.cluster.wait_converged(self.room_id, [CLUSTER_ALPHA, CLUSTER_BETA], timeout=60)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.cluster.stop()

    def __enter__(self) -> HttpsCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def limited_events(self, count: int, payload: int = PAYLOAD, *, beta: bool = False) -> List[bytes]:
        """Messages of alpha's user (``beta``: of beta's user), signed by that server."""
        config, user = (self.beta_config, self.beta_user) if beta else (self.alpha_config, self.user)
        key = config.load_signing_key()
        return [
            m.LimitedEvent.create(self.room_id, "m.room.encrypted", None, user,
                                  i.to_bytes(8, "big") + os.urandom(payload - 8), key).encode()
            for i in range(count)
        ]

    def submit_batches(self, alpha_events: Sequence[bytes], beta_events: Sequence[bytes], *, batch: int,
                       in_flight: int = 2, rate: Optional[float] = None, warmup: int = 1,
                       converge: bool = True, converge_timeout: float = 300.0) -> SubmitStats:
        """Submit as both followers' users at once, each over its own server's certificate,
        as ``mimi.signaling.batch`` requests of ``batch`` submits, ``in_flight`` requests in
        flight per sender; every event's latency is its batch's (sent -> answered).  With
        ``rate`` (events/s, both senders together) the batches are paced at that rate
        instead of sent as fast as they are answered.  The first ``warmup`` batches of each
        sender open the connections and are not timed."""
        from mimi_signaling.server.federation import SUBMIT
        from mimi_signaling.transport.client import SignalingClient

        def chunks(events: Sequence[bytes]) -> List[List[bytes]]:
            return [list(events[i:i + batch]) for i in range(0, len(events), batch)]

        senders = [(self.alpha_config, chunks(alpha_events)), (self.beta_config, chunks(beta_events))]
        timed_count = sum(len(c) for _, cs in senders for c in cs[warmup:])
        stats = SubmitStats(submits=timed_count, concurrency=in_flight, elapsed=0.0)
        cpu_before: Dict[str, Optional[float]] = {}
        interval = (batch * len(senders) / rate) if rate else 0.0  # seconds between one sender's batches

        async def send(client: Any, events: List[bytes], timed: bool) -> None:
            t0 = time.perf_counter()
            answers = await client.request_batch(CLUSTER_HUB, [(SUBMIT, raw) for raw in events])
            latency = time.perf_counter() - t0
            refused = [a for a in answers if isinstance(a, BaseException)]
            if refused:
                raise AssertionError(f"{len(refused)} submits refused, first: {refused[0]!r}")
            if timed:
                stats.latencies.extend([latency] * len(events))

        async def sender(config: Any, batches: List[List[bytes]], ready: asyncio.Event, start: asyncio.Event) -> None:
            client = SignalingClient.from_config(config, max_retries=0, limit_per_host=max(2, in_flight))
            async with client:
                for events in batches[:warmup]:
                    await send(client, events, False)
                ready.set()
                await start.wait()
                todo = iter(batches[warmup:])
                if rate:
                    tasks = []
                    began = time.perf_counter()
                    for k, events in enumerate(todo):
                        delay = began + k * interval - time.perf_counter()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.append(asyncio.ensure_future(send(client, events, True)))
                    await asyncio.gather(*tasks)
                    return

                async def lane() -> None:
                    for events in todo:
                        await send(client, events, True)

                await asyncio.gather(*(lane() for _ in range(in_flight)))

        async def run() -> None:
            start = asyncio.Event()
            ready = [asyncio.Event() for _ in senders]
            tasks = [asyncio.ensure_future(sender(config, batches, r, start))
                     for (config, batches), r in zip(senders, ready)]
            # Both senders warmed up (connections open, nothing in flight): start the clock.
            waiting = [asyncio.ensure_future(r.wait()) for r in ready]
            await asyncio.wait([asyncio.gather(*waiting), *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            cpu_before.update(self._cpu_seconds())
            started = time.perf_counter()
            start.set()
            await asyncio.gather(*tasks)
            stats.elapsed = time.perf_counter() - started

        asyncio.run(run())
        if converge:
            self._finish(stats, cpu_before, converge_timeout)
        return stats

    def wait_followers(self, timeout: float = 120.0) -> float:
        """Seconds until both followers hold the hub's latest event (bounded by ``timeout``)."""
        started = time.perf_counter()
        # Polled every 10 ms (the cluster's default is 100 ms): the wait is a measured figure.
        self.cluster.wait_converged(self.room_id, [CLUSTER_ALPHA, CLUSTER_BETA], timeout=timeout, interval=0.01)
        return time.perf_counter() - started

    def submit(self, events: Sequence[bytes], *, concurrency: int = 1, warmup: int = 10,
               converge: bool = True, converge_timeout: float = 120.0) -> SubmitStats:
        """Submit every event to the hub over HTTPS (``concurrency`` in flight) and time each
        submit -> accepted; then (``converge``) wait, bounded, for both followers to hold the
        last one."""
        from mimi_signaling.server.federation import SUBMIT
        from mimi_signaling.transport.client import SignalingClient

        warm, timed = list(events[:warmup]), list(events[warmup:])
        stats = SubmitStats(submits=len(timed), concurrency=concurrency, elapsed=0.0)
        cpu_before: Dict[str, Optional[float]] = {}

        async def run() -> None:
            client = SignalingClient.from_config(self.alpha_config, max_retries=0, limit_per_host=max(8, concurrency))
            async with client:
                for raw in warm:  # TLS handshakes and connection pool
                    await client.request(CLUSTER_HUB, SUBMIT, raw)
                queue: Iterator[bytes] = iter(timed)
                lock = asyncio.Lock()

                async def worker() -> None:
                    while True:
                        async with lock:
                            raw = next(queue, None)
                        if raw is None:
                            return
                        t0 = time.perf_counter()
                        answer = await client.request(CLUSTER_HUB, SUBMIT, raw)
                        stats.latencies.append(time.perf_counter() - t0)
                        event = m.Event.decode(answer)
                        if event.limited().encode() != raw:
                            raise AssertionError("the hub answered with another event")

                cpu_before.update(self._cpu_seconds())
                started = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                stats.elapsed = time.perf_counter() - started

        asyncio.run(run())
        if converge:
            self._finish(stats, cpu_before, converge_timeout)
        return stats

    def _finish(self, stats: SubmitStats, cpu_before: Dict[str, Optional[float]], timeout: float) -> None:
        """Wait (bounded) for both followers to hold the last event; CPU per event by process."""
        stats.converge_seconds = self.wait_followers(timeout)
        for name, after in self._cpu_seconds().items():
            before = cpu_before.get(name)
            if before is not None and after is not None and stats.submits:
                stats.cpu_ms_per_event[name] = (after - before) * 1000 / stats.submits

    def _cpu_seconds(self) -> Dict[str, Optional[float]]:
        out: Dict[str, Optional[float]] = {"client": process_cpu_seconds(os.getpid())}
        for name, server in self.cluster.servers.items():
            out[name.split(".")[0]] = process_cpu_seconds(server.proc.pid) if server.proc is not None else None
        return out


def temp_workdir(prefix: str = "mimi-bench-") -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(fn: Any, *args: Any, **kwargs: Any) -> float:
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started

