"""Helpers of the end-to-end tests: real ``mimi serve`` processes (``mimi_signaling.testing.cluster``)
driven through their local API, plus a client of our own making that speaks the wire protocol
to them with a certificate issued from the cluster's CA."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import aiohttp

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster, ServerProcess, free_port
from mimi_signaling.config import Config
from mimi_signaling.provisioning import init_server
from mimi_signaling.server.federation import KEYS
from mimi_signaling.storage import open_store
from mimi_signaling.storage.urls import sqlite_path_from_url
from mimi_signaling.transport.client import SignalingClient
from mimi_signaling.transport.tls import client_ssl_context, issue_server_cert, ssl_hostname

HUB, ALPHA, BETA = "hub.test", "alpha.test", "beta.test"
ALICE, BOB, CAROL = f"@alice:{HUB}", f"@bob:{ALPHA}", f"@carol:{BETA}"
MESSAGE = "m.room.encrypted"
#: Upper bound for any one wire request made by a test.
REQUEST_DEADLINE = 30.0
#: More than any room of these tests holds: the local history call returns everything.
ALL = 100_000
#: The ``mimi`` command line, as an operator runs it.
MIMI = [sys.executable, "-m", "mimi_signaling.cli"]


# --- reading a server's view of a room ------------------------------------------------------


def history(server: ServerProcess, room_id: str) -> List[Dict[str, Any]]:
    """Every event of the room as the server's local API lists it, oldest first."""
    return server.call("history", room_id=room_id, limit=ALL)


def event_ids(server: ServerProcess, room_id: str) -> List[str]:
    rows = history(server, room_id)
    assert [r["index"] for r in rows] == list(range(len(rows))), "history indices are not 0..n-1"
    return [r["event_id"] for r in rows]


def counts(server: ServerProcess) -> Dict[str, Any]:
    """What a refused request must not change: events per room and the fan-out queues."""
    status = server.call("status")
    return {"rooms": {r["room_id"]: r["events"] for r in status["rooms"]}, "queues": status["queues"]}


def open_read_only(config: Config) -> sqlite3.Connection:
    """A read-only connection to a server's SQLite file (the server may still be running: WAL
    lets readers in)."""
    # The default storage URL of a config is sqlite:/// + an absolute path, i.e. "//tmp/...":
    # fine for open(), but an SQLite URI would read "tmp" as an authority.
    path = Path("/" + sqlite_path_from_url(config.storage).lstrip("/"))
    return sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, timeout=30)


def stored_rows(config: Config, room_id: str) -> List[Tuple[int, str, bytes]]:
    """``(index, event ID, bytes)`` of a room read straight from a server's SQLite file
    (``open_read_only``)."""
    conn = open_read_only(config)
    try:
        return [
            (int(i), str(e), bytes(b))
            for i, e, b in conn.execute(
                "SELECT idx, event_id, event_bytes FROM events WHERE room_id = ? ORDER BY idx", (room_id,)
            )
        ]
    finally:
        conn.close()


def key_ids_used(rows: Iterable[Tuple[int, str, bytes]]) -> Dict[str, Set[str]]:
    """Key IDs in stored events (``stored_rows``): ``"hub"`` for hub signatures, else by
    origin server."""
    out: Dict[str, Set[str]] = {"hub": set()}
    for event in ms.decode_events([b for _, _, b in rows]):
        out["hub"].update(s.key_id for s in event.hub_signature)
        out.setdefault(event.origin_server, set()).update(s.key_id for s in event.origin_signature)
    return out


def wait_for(predicate: Callable[[], bool], *, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # noqa: BLE001 - e.g. a server still starting
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}" + (f" (last error: {last!r})" if last else ""))


def wait_same_history(cluster: Cluster, room_id: str, names: Sequence[str], *, timeout: float = 60.0) -> List[str]:
    """Wait until every named server lists exactly the hub's event IDs; return them."""
    hub = ms.parse_room_id(room_id)[1]
    want = event_ids(cluster[hub], room_id)
    wait_for(
        lambda: all(event_ids(cluster[n], room_id) == want for n in names),
        timeout=timeout,
        what=f"{list(names)} to hold the {len(want)} events of {hub}",
    )
    return want


# --- a room with users of several servers -----------------------------------------------------


def room_with_members(cluster: Cluster, members: Sequence[Tuple[str, str]], *, name: Optional[str] = "e2e") -> str:
    """A room on hub.test created by alice, every ``(server, user)`` invited and joined
    (``name=None``: a room without a name event)."""
    room = cluster[HUB].call("create_room", creator=ALICE, join_rule="invite", name=name)["room_id"]
    for server, user in members:
        cluster[HUB].call("membership", room_id=room, sender=ALICE, target=user, participation="invite")
        cluster[server].call("membership", room_id=room, sender=user, target=user, participation="join")
    return room


# --- signing keys, and hub processes built by hand -------------------------------------------


def key_of(cluster: Cluster, server: str) -> ms.SigningKey:
    """The current signing key of one of the cluster's servers, read from its key file."""
    return cluster[server].config.load_signing_key()


def limited_message(cluster: Cluster, room_id: str, sender: str, text: str, *,
                    key: Optional[ms.SigningKey] = None) -> ms.LimitedEvent:
    """A message of ``sender`` as its server would submit it, signed with that server's key
    (or ``key``)."""
    server = sender.split(":", 1)[1]
    return ms.LimitedEvent.create(room_id, MESSAGE, None, sender, text.encode(), key or key_of(cluster, server))


def rotate_key(server: ServerProcess) -> Dict[str, str]:
    """``mimi keys rotate --config`` on a running server: ``{old_key_id, new_key_id}``."""
    result = json.loads(_run_cli("keys", "rotate", "--config", str(server.config_path)))
    assert result["old_key_id"] != result["new_key_id"], f"the rotation kept the key: {result}"
    return result


def hub_process_configs(directory: Path, storage: str, count: int) -> List[Path]:
    """Config files of ``count`` processes serving hub.test from one database: the same
    signing key and certificate, each its own port and data directory."""
    first = init_server(HUB, directory / "p0", listen=f"127.0.0.1:{free_port()}", ca_dir=directory / "ca", storage=storage)
    paths = [first]
    for i in range(1, count):
        config = Config.load(first)
        other = directory / f"p{i}"
        (other / "data").mkdir(parents=True)
        config.listen = f"127.0.0.1:{free_port()}"
        config.data_dir = other / "data"
        config.dump(other / "config.toml")
        paths.append(other / "config.toml")
    return paths


@dataclass
class Sender:
    """A thread sending messages through one server's local API until stopped, recording the
    event ID of every acknowledged send (the API answers only after durable storage)."""

    server: ServerProcess
    room_id: str
    user: str
    limit: int = 10_000
    tag: str = ""
    acked: List[str] = field(default_factory=list)
    texts: List[str] = field(default_factory=list)
    errors: List[BaseException] = field(default_factory=list)
    stop_on_error: bool = True

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sender-{self.user}", daemon=True)

    def start(self) -> "Sender":
        self._thread.start()
        return self

    def _run(self) -> None:
        for i in range(self.limit):
            if self._stop.is_set():
                return
            text = f"{self.tag or self.user} message {i}"
            try:
                result = self.server.call("send", room_id=self.room_id, sender=self.user, type=MESSAGE, text=text)
            except Exception as exc:  # noqa: BLE001 - recorded; the test decides
                self.errors.append(exc)
                if self.stop_on_error:
                    return
                time.sleep(0.05)
                continue
            self.acked.append(result["event_id"])
            self.texts.append(text)

    def wait_acked(self, n: int, *, timeout: float = 60.0) -> None:
        wait_for(lambda: len(self.acked) >= n or not self._thread.is_alive(), timeout=timeout,
                 what=f"{n} acknowledged sends of {self.user}")
        assert len(self.acked) >= n, f"{self.user} stopped after {len(self.acked)} sends: {self.errors[-1:]}"

    def stop_when_done(self, *, timeout: float = 120.0) -> None:
        """Wait for the thread to finish its ``limit`` sends."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.stop()
            raise AssertionError(f"{self.user} did not finish {self.limit} sends in {timeout:.0f} s")

    def stop(self, *, timeout: float = 60.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"sender of {self.user} did not stop"

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


# --- checking whole chains --------------------------------------------------------------------


def verify_command_available() -> bool:
    return importlib.util.find_spec("mimi_signaling.cli.verify") is not None


def export_and_verify(server: ServerProcess, room_id: str, path: Path, *, cli: bool = False) -> int:
    """Export the room from a server's store and check the file with ``mimi verify``; returns
    the number of events.  ``cli``: export with ``mimi export --config``, else with
    ``roomfile.export_room`` on a store connection of our own."""
    from mimi_signaling.node.keys import KeyStore
    from mimi_signaling.roomfile import export_room, verify_room_file

    config = server.config
    if cli:
        _run_cli("export", "--config", str(server.config_path), "--room", room_id, "-o", str(path))
    else:
        with open_store(config.storage) as store:
            keys = KeyStore(config.server_name, config.load_signing_key(), store, expired=_expired_keys(store, config))
            export_room(store, room_id, path, keys)
    if verify_command_available():
        _run_cli("verify", str(path))
    report = verify_room_file(path)
    assert report.ok, f"{path}: {report.failure.describe() if report.failure else report}"
    return report.events_checked


def _run_cli(*args: str) -> str:
    done = subprocess.run([*MIMI, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"mimi {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _expired_keys(store: Any, config: Config) -> List[ms.VerifyKey]:
    raw = store.get_server_keys(config.server_name)
    return [k for k in ms.ServerKeys.decode(raw).keys if k.expired_ts != 0] if raw else []


# --- speaking the wire protocol to a server with a certificate of our choosing ---------------


@dataclass
class Refusal:
    status: int
    code: int
    message: str


class WireClient:
    """Requests to the cluster's servers presenting a certificate that names ``as_server``,
    issued from the cluster's own CA (so the TLS handshake succeeds and only the server's
    checks decide)."""

    def __init__(self, cluster: Cluster, as_server: str, workdir: Path) -> None:
        ca_dir = cluster.directory / "ca"
        cert, key = issue_server_cert((ca_dir / "ca.pem", ca_dir / "ca.key"), as_server, workdir / f"as-{as_server}")
        self.as_server = as_server
        self.ssl_context = client_ssl_context(cert, key, ca_dir / "ca.pem")
        self.peers = {name: f"https://127.0.0.1:{s.config.listen_port}" for name, s in cluster.servers.items()}

    def request(self, to: str, transaction_type: str, payload: bytes) -> bytes:
        """Through ``SignalingClient``: the 200 body, or the typed ``MimiError`` raised."""

        async def go() -> bytes:
            client = SignalingClient(self.ssl_context, peers=self.peers, max_retries=0, timeout=REQUEST_DEADLINE)
            async with client:
                return await client.request(to, transaction_type, payload)

        return asyncio.run(asyncio.wait_for(go(), REQUEST_DEADLINE))

    def post(self, to: str, body: bytes) -> Tuple[int, bytes, str]:
        """A raw ``POST /signaling`` with any body: ``(status, body, content type)``."""

        async def go() -> Tuple[int, bytes, str]:
            connector = aiohttp.TCPConnector(ssl=self.ssl_context)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.post(
                    self.peers[to] + "/signaling",
                    data=body,
                    headers={"Content-Type": "application/octet-stream"},
                    server_hostname=ssl_hostname(to),
                ) as resp:
                    return resp.status, await resp.read(), resp.content_type

        return asyncio.run(asyncio.wait_for(go(), REQUEST_DEADLINE))

    def refused(self, to: str, body: bytes) -> Refusal:
        """POST ``body``; it must be refused with a MIMI Error body: return its parts."""
        status, data, content_type = self.post(to, body)
        assert status != 200, f"{to} accepted what should have been refused"
        assert content_type == "application/octet-stream", (status, content_type, data[:200])
        code, message = ms.wire.decode_error_body(data)
        return Refusal(status, code, message)

    def keys_of(self, server: str) -> ms.ServerKeys:
        return ms.ServerKeys.decode(self.request(server, KEYS, b""))

    def key_ring(self, servers: Iterable[str]) -> ms.KeyRing:
        """A ring of every key (current and expired) the named servers publish now."""
        ring = ms.KeyRing()
        for server in servers:
            ring = ring.with_server_keys(self.keys_of(server))
        return ring


def envelope(transaction_type: str, payload: bytes) -> bytes:
    return ms.TransactionEnvelope(transaction_type, payload).encode()


def replace_content(encoded: bytes, old: bytes, new: bytes) -> bytes:
    """An encoded (limited) event with its content field swapped, nothing else touched: the
    content hash and the signatures stay those of ``old``."""
    field_old = ms.wire.encode_varint(len(old)) + old
    assert encoded.count(field_old) == 1, "the content must occur exactly once in the encoding"
    return encoded.replace(field_old, ms.wire.encode_varint(len(new)) + new)
