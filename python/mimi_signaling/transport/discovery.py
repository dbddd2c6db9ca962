"""Where a peer server is reached: the configured peer map, else discovery.

PROFILE.md section 8: peers are found by an explicit map in the configuration, else by
``GET https://<server_name>/.well-known/mimi/ds-domain``, whose text answer is the domain
(``host`` or ``host:port``) of the peer's signaling endpoint.  Answers are cached.

Whatever the address, the TLS certificate presented there must name the *server name*
(PROFILE.md section 7: each server's certificate names its server name); the client checks
that, not the address or the discovered domain.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Dict, Mapping, Optional, Tuple
from urllib.parse import urlsplit

import mimi_signaling as ms

from .errors import TransportError

__all__ = ["PeerDirectory", "normalize_base_url", "DS_DOMAIN_PATH"]

DS_DOMAIN_PATH = "/.well-known/mimi/ds-domain"
MAX_DS_DOMAIN_ANSWER = 1_024

# fetch(url, server_name) -> text of a 200 answer; raises TransportError otherwise.
FetchText = Callable[[str, str], Awaitable[str]]


def normalize_base_url(url: str) -> str:
    """Check a peer URL (``https://host[:port]``, no path) and return it without a trailing
    slash.  Raises ValueError: this is configuration, not protocol."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https":
        raise ValueError(f"peer URL {url!r} must use https")
    if not parts.hostname:
        raise ValueError(f"peer URL {url!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"peer URL {url!r} must be just https://host[:port]")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"peer URL {url!r}: {exc}") from None
    return f"https://{parts.netloc}"


class PeerDirectory:
    """Maps server names to base URLs: the static map first, then cached discovery."""

    def __init__(
        self,
        peers: Optional[Mapping[str, str]] = None,
        *,
        ttl: float = 3600.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._static: Dict[str, str] = {
            name: normalize_base_url(url) for name, url in (peers or {}).items()
        }
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._cache: Dict[str, Tuple[str, float]] = {}
        self._inflight: Dict[str, "asyncio.Future[str]"] = {}

    def add_peer(self, server_name: str, url: str) -> None:
        self._static[server_name] = normalize_base_url(url)

    def static(self, server_name: str) -> Optional[str]:
        return self._static.get(server_name)

    def forget(self, server_name: str) -> None:
        """Drop a cached discovery answer (e.g. after the peer stopped answering there)."""
        self._cache.pop(server_name, None)

    async def resolve(self, server_name: str, fetch: FetchText) -> str:
        """Base URL for ``server_name``.  Concurrent look-ups of one name share one request."""
        url = self._static.get(server_name)
        if url is not None:
            return url
        now = self._clock()
        cached = self._cache.get(server_name)
        if cached is not None and cached[1] > now:
            return cached[0]
        pending = self._inflight.get(server_name)
        if pending is not None:
            return await asyncio.shield(pending)

        fut: "asyncio.Future[str]" = asyncio.get_running_loop().create_future()
        self._inflight[server_name] = fut
        try:
            url = await self._discover(server_name, fetch)
        except BaseException as exc:
            if not fut.done():
                if isinstance(exc, Exception):
                    fut.set_exception(exc)
                    fut.exception()  # mark retrieved: there may be no other waiter
                else:
                    fut.cancel()
            raise
        else:
            fut.set_result(url)
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[server_name] = (url, self._clock() + self.ttl)
            return url
        finally:
            self._inflight.pop(server_name, None)

    @staticmethod
    async def _discover(server_name: str, fetch: FetchText) -> str:
        try:
            ms.validate_server_name(server_name)
        except ms.MimiError as exc:
            raise TransportError(f"cannot discover {server_name!r}: {exc}", server_name=server_name) from None
        text = await fetch(f"https://{server_name}{DS_DOMAIN_PATH}", server_name)
        domain = text.strip()
        if len(domain) > 255 or not domain:
            raise TransportError(
                f"{server_name} answered discovery with no usable domain", server_name=server_name
            )
        try:
            ms.validate_server_name(domain)
        except ms.MimiError as exc:
            raise TransportError(
                f"{server_name} answered discovery with {domain[:80]!r}: {exc}", server_name=server_name
            ) from None
        return f"https://{domain}"
