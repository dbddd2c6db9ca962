"""Several servers as separate ``mimi serve`` processes on loopback, with mutual TLS
certificates from one private CA made for the run: used by ``mimi demo`` and the end-to-end
tests."""

from __future__ import annotations

import logging
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set

from ..config import Config
from ..server import LocalClient

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0


def _ephemeral_ports() -> range:
    """The kernel's range for the local ports of outgoing connections (Linux; else IANA's)."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 49152, 65535
    return range(low, high + 1)


def free_port() -> int:
    """A free port to listen on, outside the ephemeral range: a port the kernel handed out
    (bind to 0) may be taken by an outgoing connection's local end before the server binds
    it, which made cluster starts fail with "address already in use" now and then."""
    ephemeral = _ephemeral_ports()
    with _handed_lock:
        # Never the same port twice from this process: a cluster picks all its ports before
        # its servers bind them, and a port still free then could be picked again (a start
        # failed so once in a full test run).
        candidates = [p for p in range(10_000, 30_000) if p not in ephemeral and p not in _handed]
        if len(candidates) < 1_000:
            _handed.clear()
            candidates = [p for p in range(10_000, 30_000) if p not in ephemeral]
        for port in random.sample(candidates, min(200, len(candidates))):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed.add(port)
            return port
    with socket.socket() as s:  # everything tried is taken: let the kernel choose
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_handed: Set[int] = set()  # ports free_port returned
_handed_lock = threading.Lock()


class ServerProcess:
    def __init__(self, name: str, config_path: Path, log_path: Path) -> None:
        self.name = name
        self.config_path = config_path
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None
        self.config = Config.load(config_path)
        self.client = LocalClient(self.config)

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mimi_signaling.cli", "-v", "serve", "--config", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=log_file,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log_file.close()
        try:
            self._wait_ready(timeout)
        except BaseException:
            self._reap(signal.SIGKILL)
            raise

    def _wait_ready(self, timeout: float) -> None:
        """Wait for the readiness line on stdout.  ``select`` bounds the wait: a blocking
        ``readline`` would hang forever on a child that neither prints nor exits."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        seen = b""
        while b"ready on" not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s{self._log_tail()}")
            readable, _, _ = select.select([fd], [], [], min(remaining, 1.0))
            if not readable:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"{self.name} exited during start{self._log_tail()}")
            seen = (seen + chunk)[-4096:]

    def _log_tail(self, size: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                tail = f.read().decode("utf-8", "replace")
        except OSError:
            return f" (see {self.log_path})"
        return f"; end of {self.log_path}:\n{tail}"

    def stop(self, sig: int = signal.SIGTERM, *, timeout: float = 30.0) -> None:
        self._reap(sig, timeout=timeout)

    def _reap(self, sig: int, *, timeout: float = 30.0) -> None:
        """Signal the process (if still running), wait for it, and close our end of its pipe."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.proc.stdout.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def call(self, request: str, /, **args: Any) -> Any:
        return self.client.call(request, **args)


def reap(processes: Iterable[ServerProcess]) -> None:
    """Stop every process (SIGKILL when SIGTERM is not enough); never leaves one running,
    even when stopping another raised."""
    for process in processes:
        try:
            process.stop(timeout=15)
        finally:
            if process.proc is not None and process.proc.poll() is None:
                process.proc.kill()
                process.proc.wait(10)


class Cluster:
    """``names`` are server names; every server knows every other through the peer map.

    ``configure(config)``, when given, may change each server's configuration (rate limit,
    HTTP limits, ...) before it is written; the result is validated."""

    def __init__(
        self,
        directory: Path,
        names: List[str],
        *,
        storage: Optional[Dict[str, str]] = None,
        configure: Optional[Callable[[Config], None]] = None,
    ) -> None:
        from ..provisioning import init_server

        self.directory = Path(directory)
        ports = {n: free_port() for n in names}
        urls = {n: f"https://127.0.0.1:{p}" for n, p in ports.items()}
        self.servers: Dict[str, ServerProcess] = {}
        for name in names:
            d = self.directory / name
            cfg = init_server(
                name,
                d,
                listen=f"127.0.0.1:{ports[name]}",
                ca_dir=self.directory / "ca",
                storage=(storage or {}).get(name, ""),
                peers={n: u for n, u in urls.items() if n != name},
            )
            if configure is not None:
                config = Config.load(cfg)
                configure(config)
                config.validate().dump(cfg)
            self.servers[name] = ServerProcess(name, cfg, d / "server.log")

    def __getitem__(self, name: str) -> ServerProcess:
        return self.servers[name]

    def start(self) -> None:
        """Start every server; when one fails to start, stop those already started."""
        started: List[ServerProcess] = []
        try:
            for s in self.servers.values():
                s.start()
                started.append(s)
        except BaseException:
            for s in started:
                s.kill()
            raise

    def stop(self) -> None:
        reap(self.servers.values())

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_until(self, predicate, *, timeout: float = 60.0, interval: float = 0.1, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
                last = exc
            time.sleep(interval)
        raise TimeoutError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))

    def latest(self, name: str, room_id: str) -> Optional[str]:
        history = self[name].call("history", room_id=room_id, limit=1)
        return history[-1]["event_id"] if history else None

    def wait_converged(self, room_id: str, names: List[str], *, timeout: float = 60.0, interval: float = 0.1) -> str:
        """Wait until every named server's latest event equals the hub's; return it."""
        hub = next(n for n in self.servers if room_id.endswith(":" + n))
        target = self.latest(hub, room_id)
        self.wait_until(
            lambda: all(self.latest(n, room_id) == target for n in names),
            timeout=timeout,
            interval=interval,
            what=f"{names} to reach {target} in {room_id}",
        )
        return target or ""
