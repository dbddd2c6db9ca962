"""Fetching peers' keys off the critical path (PROFILE.md section 8, issue 11).

A hub's accept group and a follower's delivery must never wait for a peer's keys answer: one
slow or hostile peer would hold every other peer's events behind it.  ``PeerKeyFetcher``
resolves the keys an event needs *before* the event enters the group (``await
resolve(...)``, on the event loop, per peer), so the group itself only reads the key ring.

Per peer server:
- one fetch at a time: concurrent askers share it (a flood of submits under unknown key IDs
  makes one request);
- a deadline for the whole fetch (``timeout``) and at most one retry;
- after a failed fetch, none again before a backoff that doubles up to ``backoff_max``
  (askers meanwhile get the failure at once);
- a refresh for a key ID we have not seen (rotation) at once when the last one found a new
  key, else at most every ``refresh_interval`` (a peer cannot make us fetch per submit by
  signing with key IDs it does not publish).
What a fetch returns is installed only through ``KeyStore.learn`` (the answer must name the
server asked and come from that server's certificate), in a worker thread (it writes the store).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from typing import Awaitable, Callable, Dict, Iterable, Mapping, Optional, Tuple

from .._core import InternalError, MimiError, ServerKeys
from ..node.keys import FetchedKeys, KeyStore

log = logging.getLogger(__name__)

__all__ = ["PeerKeyFetcher", "KEY_FETCH_TIMEOUT"]

#: Seconds one keys fetch may take in all (connect, answer, one retry).
KEY_FETCH_TIMEOUT = 10.0
#: Fetches the keys of one server (``(body, verified peer names)``): the keys transaction.
Fetch = Callable[[str], Awaitable[Tuple[bytes, Tuple[str, ...]]]]


class _PeerState:
    __slots__ = ("inflight", "failures", "retry_at", "last_refresh", "refresh_found", "last_error")

    def __init__(self) -> None:
        self.inflight: Optional["asyncio.Future[FetchedKeys]"] = None
        self.failures = 0
        self.retry_at = 0.0
        self.last_refresh = -1e18  # the last re-fetch for a key ID we had not seen
        self.refresh_found = True  # whether it found a new key (an honest rotation)
        self.last_error: Optional[MimiError] = None


class PeerKeyFetcher:
    def __init__(
        self,
        keys: KeyStore,
        fetch: Fetch,
        executor: Executor,
        *,
        timeout: float = KEY_FETCH_TIMEOUT,
        backoff_base: float = 2.0,
        backoff_max: float = 300.0,
        refresh_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keys = keys
        self._fetch = fetch
        self.executor = executor
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.refresh_interval = refresh_interval
        self.clock = clock
        self._peers: Dict[str, _PeerState] = {}

    def _state(self, server: str) -> _PeerState:
        state = self._peers.get(server)
        if state is None:
            state = self._peers[server] = _PeerState()
        return state

    def backing_off(self, server: str) -> bool:
        state = self._peers.get(server)
        return state is not None and state.failures > 0 and self.clock() < state.retry_at

    # --- fetching ---------------------------------------------------------------------------

    async def fetch(self, server: str) -> FetchedKeys:
        """The keys answer of ``server`` (shared with concurrent askers, bounded in time,
        refused at once while the server is backed off after failures)."""
        state = self._state(server)
        if state.inflight is not None:
            return await asyncio.shield(state.inflight)
        if self.backing_off(server):
            raise InternalError(
                f"the keys of {server} are not fetched again for {state.retry_at - self.clock():.0f} s "
                f"after {state.failures} failed fetches (last: {state.last_error})"
            )
        future: "asyncio.Future[FetchedKeys]" = asyncio.get_running_loop().create_future()
        state.inflight = future
        try:
            body, peer_names = await asyncio.wait_for(self._fetch(server), self.timeout)
            result = FetchedKeys(ServerKeys.decode(body), peer_names)
        except asyncio.CancelledError:  # the asker went away (shutdown): the others get an error
            self._settle(state, future, InternalError(f"the fetch of the keys of {server} was cancelled"))
            raise
        except Exception as exc:
            if isinstance(exc, MimiError):
                error: MimiError = exc
            elif isinstance(exc, asyncio.TimeoutError):
                error = InternalError(f"the keys of {server} did not come within {self.timeout:g} s")
            else:
                error = InternalError(f"could not fetch the keys of {server}: {exc!r}")
            self._failed(server, state, error)
            self._settle(state, future, error)
            raise error from exc
        state.failures, state.last_error = 0, None
        future.set_result(result)
        state.inflight = None
        return result

    @staticmethod
    def _settle(state: _PeerState, future: "asyncio.Future[FetchedKeys]", error: MimiError) -> None:
        future.set_exception(error)
        future.exception()  # retrieved: no "never retrieved" warning when nobody else waits
        state.inflight = None

    def _failed(self, server: str, state: _PeerState, error: MimiError) -> None:
        state.failures += 1
        state.last_error = error
        delay = min(self.backoff_max, self.backoff_base * 2 ** (state.failures - 1))
        state.retry_at = self.clock() + delay
        log.warning("fetching the keys of %s failed (%d in a row, next try in %.0f s): %s",
                    server, state.failures, delay, error)

    def fetch_blocking(self, server: str, loop: asyncio.AbstractEventLoop) -> FetchedKeys:
        """``fetch`` from a worker thread (``KeyStore``'s fetch callable)."""
        return asyncio.run_coroutine_threadsafe(self.fetch(server), loop).result(self.timeout + 5.0)

    # --- resolving before the critical path ---------------------------------------------------

    def missing(self, server: str, key_ids: Iterable[str]) -> bool:
        """True when ``server``'s keys are unknown, or one of ``key_ids`` is not among them."""
        if server == self.keys.server_name:
            return False
        ring = self.keys.ring
        if not ring.has_server(server):
            return True
        known = {k.key_id for k in ring.get(server)}
        return any(key_id not in known for key_id in key_ids)

    async def resolve(self, wanted: Mapping[str, Iterable[str]]) -> Dict[str, MimiError]:
        """Make sure the ring holds the keys ``{server: key IDs}`` need, as far as their
        servers answer: load them from the store, else fetch them (servers in parallel).
        Returns why a server's keys could not be had, for those that failed; what is still
        missing afterwards is otherwise the signature check's verdict."""
        todo = {s: list(ids) for s, ids in wanted.items() if self.missing(s, ids)}
        if not todo:
            return {}
        outcomes = await asyncio.gather(*(self._resolve_one(s, ids) for s, ids in todo.items()))
        return {s: error for s, error in zip(todo, outcomes) if error is not None}

    async def _resolve_one(self, server: str, key_ids: list) -> Optional[MimiError]:
        loop = asyncio.get_running_loop()
        if not self.keys.ring.has_server(server):
            # Cached in the store (a restart): no network needed.
            await loop.run_in_executor(self.executor, self.keys.load_cached, server)
            if not self.missing(server, key_ids):
                return None
        else:
            state = self._state(server)
            if (state.inflight is None and not state.refresh_found
                    and self.clock() - state.last_refresh < self.refresh_interval):
                return None  # a refresh a moment ago found nothing new: the key ID is the sender's problem
            state.last_refresh = self.clock()
        try:
            fetched = await self.fetch(server)
        except MimiError as exc:
            return exc
        state = self._state(server)
        try:
            state.refresh_found = await loop.run_in_executor(self.executor, self.keys.learn, server, fetched)
        except MimiError as exc:  # refused (logged by learn): counts as a failed fetch
            self._failed(server, state, exc)
            return exc
        return None
