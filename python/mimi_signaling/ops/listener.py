"""The operations listener: metrics, health checks and the status page, on an address of its
own (``[ops] listen`` in the configuration; off unless set), plain HTTP.

It has no authentication: bind it to loopback (the default suggestion) or a network only
the operators' monitoring reaches.  It serves nothing secret: counts, room and event IDs,
server names, key IDs and expiry.

- ``GET /metrics``: Prometheus text format, or OpenMetrics when the scraper asks for it;
- ``GET /health/live``: 200 while the process serves requests (its event loop turns);
- ``GET /health/ready``: 200 when the federation listener is up and the store answers a
  read within ``READY_TIMEOUT``, else 503 with the reason;
- ``GET /status`` (and ``/``): the HTML status page; ``/status.json`` the same as JSON.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Optional

from aiohttp import web

from .metrics import render_latest
from .status import destination_rows, render_status_page, snapshot

if TYPE_CHECKING:  # pragma: no cover
    from ..server import ServerNode

log = logging.getLogger(__name__)

__all__ = ["OpsServer"]

#: Seconds the store has to answer the readiness read.
READY_TIMEOUT = 3.0
#: Seconds between samples of the fan-out queues' heads (for the oldest-entry ages).
SAMPLE_INTERVAL = 5.0


class OpsServer:
    def __init__(self, node: "ServerNode") -> None:
        self.node = node
        # Its own threads: a store that hangs must not take the server's workers with it,
        # and a scrape must not wait behind accepts.
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mimi-ops")
        self._probe: Optional["asyncio.Future[object]"] = None
        self._runner: Optional[web.AppRunner] = None
        self._sampler: Optional["asyncio.Task[None]"] = None
        self.port: Optional[int] = None
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health/live", self._live)
        app.router.add_get("/health/ready", self._ready)
        app.router.add_get("/status", self._status)
        app.router.add_get("/", self._status)
        app.router.add_get("/status.json", self._status_json)
        self.app = app

    async def start(self, host: str, port: int) -> int:
        if not _is_loopback(host):
            log.warning("the ops listener on %s:%d has no authentication: keep it off public networks", host, port)
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1]) if runner.addresses else port
        self._sampler = asyncio.ensure_future(self._sample())
        log.info("ops listener (metrics, health, status) on http://%s:%d", host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _in_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL)
            try:
                await asyncio.wait_for(self._in_thread(destination_rows, self.node, time.time()), READY_TIMEOUT * 4)
            except Exception as exc:  # noqa: BLE001 - the store is down: readiness says so
                log.debug("queue sample failed: %s", exc)

    # --- endpoints --------------------------------------------------------------------------

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            body, content_type = await self._in_thread(
                render_latest, self.node.metrics.registry, request.headers.get("Accept")
            )
        except Exception as exc:  # noqa: BLE001 - e.g. the store is down: say so, not a traceback
            log.warning("metrics scrape failed: %s", exc)
            return web.Response(status=503, text=f"metrics unavailable: {type(exc).__name__}\n")
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = content_type
        return resp

    async def _live(self, request: web.Request) -> web.Response:
        return web.Response(text="live\n")

    async def _ready(self, request: web.Request) -> web.Response:
        node = self.node
        if node.server is None or node.port is None:
            return web.Response(status=503, text="not ready: the federation listener is not up\n")
        if self._probe is not None and not self._probe.done():
            # The last probe still waits on the store: do not pile up threads behind it.
            return web.Response(status=503, text="not ready: the store has not answered\n")
        self._probe = asyncio.ensure_future(self._in_thread(node.store.get_server_keys, node.server_name))
        try:
            await asyncio.wait_for(asyncio.shield(self._probe), READY_TIMEOUT)
        except asyncio.TimeoutError:
            return web.Response(status=503, text=f"not ready: the store did not answer within {READY_TIMEOUT:g} s\n")
        except Exception as exc:  # noqa: BLE001
            log.warning("readiness: the store is unreachable: %s", type(exc).__name__)
            return web.Response(status=503, text=f"not ready: the store is unreachable ({type(exc).__name__})\n")
        return web.Response(text="ready\n")

    async def _status(self, request: web.Request) -> web.Response:
        try:
            snap = await self._in_thread(snapshot, self.node)
        except Exception as exc:  # noqa: BLE001
            return web.Response(status=503, text=f"status unavailable: the store is unreachable ({type(exc).__name__})\n")
        return web.Response(text=render_status_page(snap), content_type="text/html", charset="utf-8")

    async def _status_json(self, request: web.Request) -> web.Response:
        try:
            snap = await self._in_thread(snapshot, self.node)
        except Exception as exc:  # noqa: BLE001
            return web.json_response({"error": type(exc).__name__}, status=503)
        return web.Response(text=json.dumps(snap.to_dict()), content_type="application/json")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
