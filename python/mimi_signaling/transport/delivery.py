"""Fan-out: delivers queued events to follower servers as ``mimi.signaling.deliver``.

The store (``mimi_signaling.node.store``) keeps one queue per destination server:
``destinations_with_pending() -> list[str]``, ``pending(destination, limit) ->
list[QueuedEvent]`` (oldest first; ``queue_id`` and ``event_bytes`` are used) and
``ack(destination, queue_id)``.  A plain ``(queue_id, event_bytes)`` pair is accepted too.
The store is synchronous: it is called through ``asyncio.to_thread``.

Per destination, events go out strictly in queue order, one at a time; each destination
has its own task, so one that is down never holds up the others.  A failed delivery is
retried (same event, so order holds) after a bounded exponential backoff with jitter.
A *verdict* from the destination (a MimiError other than rate_limited/internal) will not
change on retry: the event is dropped from that queue with a warning (and ``on_rejected``
is called) so the queue does not stall forever behind it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from typing import Any, Callable, Dict, Optional, Tuple, Type

import mimi_signaling as ms

log = logging.getLogger(__name__)

__all__ = ["DeliveryWorker", "DELIVER"]

DELIVER = "mimi.signaling.deliver"

RejectedCallback = Callable[[str, Any, bytes, BaseException], None]


def _unpack(item: Any) -> Tuple[Any, bytes]:
    """``(queue_id, event bytes)`` of a queue item (``node.store.QueuedEvent`` or a pair)."""
    if hasattr(item, "queue_id"):
        queue_id = item.queue_id
        for attr in ("event_bytes", "event", "payload", "data"):
            if hasattr(item, attr):
                event = getattr(item, attr)
                break
        else:
            raise TypeError(f"queue item {item!r} has no event")
    elif isinstance(item, tuple) and len(item) == 2:
        queue_id, event = item
    else:
        raise TypeError(f"queue item {item!r} is neither a QueuedEvent nor a pair")
    if not isinstance(event, (bytes, bytearray, memoryview)):
        event = event.encode()
    return queue_id, bytes(event)


class DeliveryWorker:
    """Delivers every destination's queue, in order, until stopped.

    ``await worker.start()`` in the running loop, ``worker.wake()`` after appending to a
    queue (callable from any thread), ``await worker.stop()`` to end.
    """

    def __init__(
        self,
        store: Any,
        client: Any,
        *,
        transaction_type: str = DELIVER,
        batch_size: int = 100,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        poll_interval: float = 30.0,
        max_concurrency: int = 32,
        retry_verdicts: Tuple[Type[BaseException], ...] = (),
        on_rejected: Optional[RejectedCallback] = None,
    ) -> None:
        if batch_size < 1 or max_concurrency < 1:
            raise ValueError("batch_size and max_concurrency must be >= 1")
        if backoff_base <= 0 or backoff_max < backoff_base or poll_interval <= 0:
            raise ValueError("need 0 < backoff_base <= backoff_max and poll_interval > 0")
        self.store = store
        self.client = client
        self.transaction_type = transaction_type
        self.batch_size = batch_size
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.poll_interval = poll_interval
        # Verdicts that can change with time: the peer is overloaded or broken right now.
        self.retry_verdicts = (ms.RateLimitedError, ms.InternalError) + tuple(retry_verdicts)
        self.on_rejected = on_rejected
        self.delivered = 0
        self.rejected = 0
        self.failures: Dict[str, int] = {}  # consecutive failures per destination

        self._max_concurrency = max_concurrency
        self._sem: Optional[asyncio.Semaphore] = None
        self._wake_event: Optional[asyncio.Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[int] = None
        self._supervisor: Optional["asyncio.Task[None]"] = None
        self._tasks: Dict[str, "asyncio.Task[None]"] = {}
        self._dirty: Dict[str, bool] = {}
        self._retry_events: Dict[str, asyncio.Event] = {}  # destinations sleeping in a backoff

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._supervisor is not None:
            raise RuntimeError("delivery worker already started")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._sem = asyncio.Semaphore(self._max_concurrency)
        self._wake_event = asyncio.Event()
        self._wake_event.set()  # look at the queues right away
        self._supervisor = asyncio.ensure_future(self._supervise())

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        if self._supervisor is not None:
            tasks.append(self._supervisor)
        self._supervisor = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    def wake(self) -> None:
        """Deliver promptly: something was appended.  Safe to call from any thread."""
        if self._loop is None or self._wake_event is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._wake_event.set()
        else:
            self._loop.call_soon_threadsafe(self._wake_event.set)

    def peer_alive(self, destination: str) -> None:
        """``destination`` just reached us, so it is up: if its deliveries are backing off,
        retry now with a fresh backoff.  Safe to call from any thread."""
        if self._loop is None or destination not in self.failures:
            return
        if threading.get_ident() == self._loop_thread:
            self._retry_now(destination)
        else:
            self._loop.call_soon_threadsafe(self._retry_now, destination)

    def _retry_now(self, destination: str) -> None:
        self.failures.pop(destination, None)
        event = self._retry_events.get(destination)
        if event is not None:
            event.set()

    @property
    def active_destinations(self) -> list:
        return [d for d, t in self._tasks.items() if not t.done()]

    # --- the work -------------------------------------------------------------------------

    async def _supervise(self) -> None:
        assert self._wake_event is not None
        while True:
            try:
                await asyncio.wait_for(self._wake_event.wait(), self.poll_interval)
            except asyncio.TimeoutError:
                pass
            self._wake_event.clear()
            try:
                destinations = await asyncio.to_thread(self.store.destinations_with_pending)
            except Exception:
                log.exception("cannot list destinations with pending events")
                continue
            for destination in destinations:
                task = self._tasks.get(destination)
                if task is not None and not task.done():
                    self._dirty[destination] = True  # the running task looks again
                else:
                    self._tasks[destination] = asyncio.ensure_future(self._drain(destination))

    async def _drain(self, destination: str) -> None:
        """Deliver ``destination``'s queue until it is empty."""
        try:
            while True:
                self._dirty.pop(destination, None)
                items = await self._store_call(destination, self.store.pending, destination, self.batch_size)
                if not items:
                    if self._dirty.pop(destination, False):
                        continue
                    return  # no await between the check and the end: no wake-up is lost
                for item in items:
                    queue_id, event = _unpack(item)
                    await self._deliver_one(destination, queue_id, event)
                    await self._store_call(destination, self.store.ack, destination, queue_id)
        finally:
            if self._tasks.get(destination) is asyncio.current_task():
                del self._tasks[destination]

    async def _deliver_one(self, destination: str, queue_id: Any, event: bytes) -> None:
        assert self._sem is not None
        while True:
            try:
                async with self._sem:
                    await self.client.request(destination, self.transaction_type, event)
            except self.retry_verdicts as exc:
                await self._failed(destination, exc)
            except ms.MimiError as exc:
                self.failures.pop(destination, None)
                self.rejected += 1
                log.warning("%s rejected queued event %r: %s: %s", destination, queue_id, type(exc).__name__, exc)
                if self.on_rejected is not None:
                    try:
                        self.on_rejected(destination, queue_id, event, exc)
                    except Exception:
                        log.exception("on_rejected callback failed")
                return
            except Exception as exc:  # TransportError, or anything unexpected: try again later
                await self._failed(destination, exc)
            else:
                self.failures.pop(destination, None)
                self.delivered += 1
                return

    async def _store_call(self, destination: str, fn: Callable[..., Any], *args: Any) -> Any:
        while True:
            try:
                return await asyncio.to_thread(fn, *args)
            except Exception as exc:
                log.exception("store call %s for %s failed", getattr(fn, "__name__", fn), destination)
                await self._failed(destination, exc, quiet=True)

    async def _failed(self, destination: str, exc: BaseException, *, quiet: bool = False) -> None:
        count = self.failures.get(destination, 0) + 1
        self.failures[destination] = count
        delay = self.backoff_delay(count)
        if not quiet:
            log.info("delivery to %s failed (%d in a row), next try in %.2f s: %s", destination, count, delay, exc)
        # Sleep, unless peer_alive() says the destination is back.
        retry = self._retry_events[destination] = asyncio.Event()
        try:
            await asyncio.wait_for(retry.wait(), delay)
        except asyncio.TimeoutError:
            pass
        finally:
            if self._retry_events.get(destination) is retry:
                del self._retry_events[destination]

    def backoff_delay(self, failures: int) -> float:
        """Wait after ``failures`` consecutive failures: exponential, capped, equal jitter."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** min(failures - 1, 32)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)
