"""Fan-out: delivers queued events to follower servers as ``mimi.signaling.deliver``.

The store (``mimi_signaling.node.store``) keeps one queue per destination server:
``destinations_with_pending() -> list[str]``, ``pending(destination, limit) ->
list[QueuedEvent]`` (oldest first; ``queue_id`` and ``event_bytes`` are used) and
``ack_entries(destination, queue_ids)``, which drops exactly the entries named.  The store
is synchronous: its calls run on a worker thread, and the calls the worker makes in one turn
of the event loop (say a read for each of two destinations) share one hand-off to that thread.

Per destination, events go out strictly in queue order, as batches of consecutive
deliveries (``mimi.signaling.batch``, PROFILE.md section 7: up to ``max_batch_events``
events or ``max_batch_bytes`` bytes per request), one request in flight; each destination
has its own task, so one that is down never holds up the others, and one that is behind
catches up a batch at a time.  Each entry is acknowledged on its own: a failed delivery
(the request, or an entry answered rate_limited/internal) is retried from that entry on
(so order holds; entries after it that were applied are simply known to the follower) after
a bounded exponential backoff with jitter.  A *verdict* on an entry (a MimiError other than
rate_limited/internal) will not change on retry: the event is dropped from that queue with
a warning (and ``on_rejected`` is called) so the queue does not stall forever behind it.
A destination that refuses the batch itself with a verdict (a server that does not know
the batch type answers ``malformed``) gets single ``mimi.signaling.deliver`` requests for
``batch_retry_after`` seconds, then batches are tried again (docs/DECISIONS.md).  With
``batches=False`` every delivery is single (a server configured not to batch).

Acknowledgements are batched: entries delivered (or refused with a verdict) are acked by
their IDs, once ``ack_every`` of them are owed or the oldest has waited ``ack_delay``
seconds, in the background (hand-offs of their own: an ack is a write, which waits for the
store's writer, while reads and deliveries go on), and on ``stop()``, which also waits for
the acks still being written.  Until an ack commits its entries stay queued and are
skipped by later reads; a crash before the ack only means they are delivered
again, which a follower ignores (it already holds the event).  Acks name entries, not a
cumulative bound: on PostgreSQL queue IDs may commit out of order, and a bound could drop an
entry that became visible after higher ones were delivered.  A destination's task stays alive while
idle (up to ``poll_interval``), so that ``wake()`` reaches it directly; the list of
destinations is read at most every ``discovery_interval`` seconds while events flow.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from typing import AbstractSet, Any, Callable, Dict, List, Optional, Protocol, Sequence, Set, Tuple, Type

import mimi_signaling as ms

from .names import DELIVER

log = logging.getLogger(__name__)

__all__ = ["DeliveryWorker", "DELIVER"]

class QueuedEntry(Protocol):
    """One entry of a destination's queue, as the store's ``pending`` returns it."""

    @property
    def queue_id(self) -> int: ...
    @property
    def event_bytes(self) -> bytes: ...


class DeliveryQueue(Protocol):
    """What the fan-out needs from the store (``node.store.EventStore`` is one): transport
    depends on this, not on ``node/``."""

    def destinations_with_pending(self) -> List[str]: ...
    def pending(self, destination: str, limit: int = ..., exclude: AbstractSet[Any] = ...) -> Sequence[QueuedEntry]: ...
    def ack_entries(self, destination: str, queue_ids: Sequence[int]) -> None: ...


RejectedCallback = Callable[[str, Any, bytes, BaseException], None]


class _StoreCalls:
    """Runs store calls on a worker thread; those requested in one turn of the event loop go
    in one hand-off, in request order (each hand-off costs a thread wake-up and a loop
    wake-up, more than a short SQLite statement)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queued: List[Tuple[Callable[..., Any], Tuple[Any, ...], "asyncio.Future[Any]"]] = []
        self.handoffs = 0

    def call(self, fn: Callable[..., Any], *args: Any) -> "asyncio.Future[Any]":
        future = self._loop.create_future()
        if not self._queued:
            self._loop.call_soon(self._flush)
        self._queued.append((fn, args, future))
        return future

    def _flush(self) -> None:
        calls, self._queued = self._queued, []
        if not calls:
            return
        self.handoffs += 1
        done = self._loop.run_in_executor(None, _run_calls, [(fn, args) for fn, args, _ in calls])
        futures = [future for _, _, future in calls]
        done.add_done_callback(lambda outcome: _settle(futures, outcome))


def _run_calls(calls: List[Tuple[Callable[..., Any], Tuple[Any, ...]]]) -> List[Tuple[bool, Any]]:
    results: List[Tuple[bool, Any]] = []
    for fn, args in calls:
        try:
            results.append((True, fn(*args)))
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who logs and retries
            results.append((False, exc))
    return results


def _settle(futures: List["asyncio.Future[Any]"], outcome: "asyncio.Future[List[Tuple[bool, Any]]]") -> None:
    if outcome.cancelled() or outcome.exception() is not None:
        exc = RuntimeError("store call hand-off failed") if outcome.cancelled() else outcome.exception()
        for future in futures:
            if not future.done():
                future.set_exception(exc)  # type: ignore[arg-type]
        return
    for future, (ok, value) in zip(futures, outcome.result()):
        if future.done():  # the caller was cancelled meanwhile
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class _Destination:
    """One destination's delivery state, kept while its task runs or acks are owed."""

    __slots__ = ("woken", "waiter", "owed", "first_owed_at", "acking", "handed", "gone")

    def __init__(self) -> None:
        self.woken = True  # read the queue first thing
        self.waiter: Optional["asyncio.Future[None]"] = None
        self.owed: List[Any] = []  # delivered or refused, not acked yet; queue order
        self.acking: Set[Any] = set()  # acks written in the background, not committed yet
        self.first_owed_at = 0.0
        # Entries a read returned that may still be in the store: a later read skips them
        # (they are in flight, owed or being acked).  An entry leaves once its ack has
        # committed and a read has started since (``gone`` holds it in between), or at once
        # when its ack failed (it is still queued: delivered again).
        self.handed: Set[Any] = set()
        self.gone: Set[Any] = set()

    def nudge(self) -> None:
        self.woken = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class DeliveryWorker:
    """Delivers every destination's queue, in order, until stopped.

    ``await worker.start()`` in the running loop, ``worker.wake()`` after appending to a
    queue (callable from any thread), ``await worker.stop()`` to end.
    """

    def __init__(
        self,
        store: DeliveryQueue,
        client: Any,
        *,
        transaction_type: str = DELIVER,
        batch_size: int = 1024,
        max_batch_events: int = 256,
        max_batch_bytes: int = 4 * 1024 * 1024,
        batch_retry_after: float = 600.0,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        poll_interval: float = 30.0,
        max_concurrency: int = 32,
        retry_verdicts: Tuple[Type[BaseException], ...] = (),
        on_rejected: Optional[RejectedCallback] = None,
        ack_every: int = 256,
        ack_delay: float = 0.05,
        discovery_interval: float = 0.1,
        batches: bool = True,
    ) -> None:
        if batch_size < 1 or max_concurrency < 1 or ack_every < 1 or max_batch_events < 1:
            raise ValueError("batch_size, max_batch_events, max_concurrency and ack_every must be >= 1")
        if not 1 <= max_batch_events <= ms.MAX_BATCH_ENTRIES or max_batch_bytes < 1:
            raise ValueError(f"max_batch_events must be 1-{ms.MAX_BATCH_ENTRIES} and max_batch_bytes >= 1")
        if backoff_base <= 0 or backoff_max < backoff_base or poll_interval <= 0:
            raise ValueError("need 0 < backoff_base <= backoff_max and poll_interval > 0")
        if ack_delay < 0 or discovery_interval < 0:
            raise ValueError("ack_delay and discovery_interval must be >= 0")
        self.store = store
        self.client = client
        self.transaction_type = transaction_type
        self.batch_size = batch_size
        self.max_batch_events = max_batch_events
        self.max_batch_bytes = max_batch_bytes
        self.batch_retry_after = batch_retry_after
        self.batches_enabled = batches  # False: single deliveries only (``http.batches`` off)
        # Destinations that refused a batch, until when they get single deliveries.
        self.singles_until: Dict[str, float] = {}
        self.batches = 0  # batch requests answered
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.poll_interval = poll_interval
        self.ack_every = ack_every
        self.ack_delay = ack_delay
        self.discovery_interval = discovery_interval
        # Verdicts that can change with time: the peer is overloaded or broken right now.
        self.retry_verdicts = (ms.RateLimitedError, ms.InternalError) + tuple(retry_verdicts)
        self.on_rejected = on_rejected
        self.delivered = 0
        self.rejected = 0
        self.acks = 0  # ack calls made (each one a commit)
        self.failures: Dict[str, int] = {}  # consecutive failures per destination
        self.failed_attempts = 0  # every failed attempt (the destination down, busy or broken)
        # For operators (status page, ``mimi destinations``): wall-clock times and the last error.
        self.last_success: Dict[str, float] = {}
        self.last_error: Dict[str, str] = {}
        self.retry_at: Dict[str, float] = {}  # when a destination in backoff is tried next

        self._max_concurrency = max_concurrency
        self._sem: Optional[asyncio.Semaphore] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop_thread: Optional[int] = None
        self._calls: Optional[_StoreCalls] = None
        self._ack_calls: Optional[_StoreCalls] = None  # acks: hand-offs of their own
        self._acks_in_flight: Set["asyncio.Future[Any]"] = set()
        self._supervisor: Optional["asyncio.Task[None]"] = None
        self._supervisor_waiter: Optional["asyncio.Future[None]"] = None
        self._discovery_owed = True
        self._next_discovery = 0.0
        self._tasks: Dict[str, "asyncio.Task[None]"] = {}
        self._states: Dict[str, _Destination] = {}
        self._retry_events: Dict[str, asyncio.Event] = {}  # destinations sleeping in a backoff

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._supervisor is not None:
            raise RuntimeError("delivery worker already started")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._calls = _StoreCalls(self._loop)
        self._ack_calls = _StoreCalls(self._loop)
        self._sem = asyncio.Semaphore(self._max_concurrency)
        self._discovery_owed = True  # look at the queues right away
        self._supervisor = asyncio.ensure_future(self._supervise())

    async def stop(self) -> None:
        """Stop delivering; then ack what was delivered, so a restart does not repeat it."""
        tasks = list(self._tasks.values())
        if self._supervisor is not None:
            tasks.append(self._supervisor)
        self._supervisor = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._acks_in_flight:  # each logs its own failure
            await asyncio.wait(list(self._acks_in_flight), timeout=10.0)
        owed = {d: list(s.owed) for d, s in self._states.items() if s.owed}
        self._states.clear()
        if owed:
            try:
                await asyncio.wait_for(asyncio.to_thread(self._flush_acks, owed), 10.0)
            except Exception:  # the acks are lost: the entries are delivered again later
                log.warning("could not ack delivered events on stop", exc_info=True)

    def _flush_acks(self, owed: Dict[str, List[Any]]) -> None:
        for destination, queue_ids in owed.items():
            self.store.ack_entries(destination, queue_ids)
            self.acks += 1  # the loop is only waiting for this thread now

    def wake(self) -> None:
        """Deliver promptly: something was appended.  Safe to call from any thread."""
        if self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._on_wake()
        else:
            self._loop.call_soon_threadsafe(self._on_wake)

    def _on_wake(self) -> None:
        # Running destinations look at their queue now; a new one is found by the next
        # discovery (at once, or within discovery_interval while events flow).
        for state in self._states.values():
            state.nudge()
        self._discovery_owed = True
        self._wake_supervisor()

    def _wake_supervisor(self) -> None:
        waiter = self._supervisor_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def peer_alive(self, destination: str) -> None:
        """``destination`` just reached us, so it is up: if its deliveries are backing off,
        retry now with a fresh backoff.  Safe to call from any thread."""
        if self._loop is None or destination not in self.failures:
            return
        if threading.get_ident() == self._loop_thread:
            self._retry_now(destination)
        else:
            self._loop.call_soon_threadsafe(self._retry_now, destination)

    def reset_backoff(self, destination: str) -> bool:
        """End ``destination``'s backoff now (an operator's reset); True when it was in one.
        Safe to call from any thread."""
        backing_off = destination in self.failures
        self.peer_alive(destination)
        return backing_off

    def _retry_now(self, destination: str) -> None:
        self.failures.pop(destination, None)
        self.retry_at.pop(destination, None)
        event = self._retry_events.get(destination)
        if event is not None:
            event.set()

    @property
    def active_destinations(self) -> list:
        return [d for d, t in self._tasks.items() if not t.done()]

    @property
    def store_handoffs(self) -> int:
        """Hand-offs of store calls to a worker thread so far (each may carry several)."""
        return self._calls.handoffs if self._calls is not None else 0

    # --- the work -------------------------------------------------------------------------

    async def _sleep(self, timeout: float, *, state: Optional[_Destination] = None) -> None:
        """Sleep up to ``timeout`` seconds, less when nudged (the state's, or the supervisor's
        wake-up).  A future and a timer: cheaper than ``wait_for``, which makes a task."""
        assert self._loop is not None
        waiter = self._loop.create_future()
        if state is not None:
            state.waiter = waiter
        else:
            self._supervisor_waiter = waiter
        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        timer = self._loop.call_later(timeout, wake)
        try:
            await waiter
        finally:
            timer.cancel()
            if state is not None:
                state.waiter = None
            else:
                self._supervisor_waiter = None

    async def _supervise(self) -> None:
        assert self._loop is not None and self._calls is not None
        while True:
            if not self._discovery_owed:
                await self._sleep(self.poll_interval)
                if not self._discovery_owed:  # the poll: look again even without a wake-up
                    self._discovery_owed = True
                continue
            delay = self._next_discovery - self._loop.time()
            if delay > 0:
                await self._sleep(delay)
                continue
            self._discovery_owed = False
            self._next_discovery = self._loop.time() + self.discovery_interval
            try:
                destinations = await self._calls.call(self.store.destinations_with_pending)
            except Exception:
                log.exception("cannot list destinations with pending events")
                continue
            for destination in destinations:
                task = self._tasks.get(destination)
                if task is not None and not task.done():
                    self._states[destination].nudge()  # the running task looks again
                else:
                    self._states.setdefault(destination, _Destination()).nudge()
                    self._tasks[destination] = asyncio.ensure_future(self._drain(destination))

    def _ack_due(self, state: _Destination) -> bool:
        assert self._loop is not None
        return bool(state.owed) and (
            len(state.owed) >= self.ack_every or self._loop.time() - state.first_owed_at >= self.ack_delay
        )

    async def _drain(self, destination: str) -> None:
        """Deliver ``destination``'s queue; after ``poll_interval`` idle with nothing to ack, end.

        While the last batch of a read is out, the next read runs (when more is queued), so
        that the next request goes out as soon as the answer is in."""
        assert self._loop is not None
        state = self._states.setdefault(destination, _Destination())
        ahead: Optional["asyncio.Future[Tuple[Sequence[QueuedEntry], int, Set[Any]]]"] = None
        try:
            while True:
                if self._ack_due(state):
                    self._ack_in_background(destination, state)
                if ahead is None and state.woken:
                    ahead = self._read_ahead(destination, state)
                if ahead is not None:
                    items, limit, gone = await ahead
                    ahead = None
                    state.handed -= gone  # their acks committed before this read began
                    if len(items) >= limit:
                        state.woken = True  # the read was cut short: more is queued
                    todo = [(item.queue_id, item.event_bytes) for item in items if item.queue_id not in state.handed]
                    state.handed.update(queue_id for queue_id, _ in todo)
                    while todo:
                        if self._ack_due(state):  # a long read: ack as it goes
                            self._ack_in_background(destination, state)
                        batching = self.batches_to(destination)
                        batch = self._next_batch(todo) if batching else todo[:1]
                        if ahead is None and state.woken and len(batch) == len(todo):
                            ahead = self._read_ahead(destination, state)
                        if batching:
                            done = await self._deliver_batch(destination, batch)
                        else:
                            await self._deliver_one(destination, *batch[0])
                            done = 1
                        if done and not state.owed:
                            state.first_owed_at = self._loop.time()
                        state.owed.extend(queue_id for queue_id, _ in todo[:done])
                        todo = todo[done:]
                    continue
                # Nothing to read (no wake-up since the last read, which was not cut short).
                if state.owed:
                    await self._sleep(max(0.0, state.first_owed_at + self.ack_delay - self._loop.time()), state=state)
                    continue
                await self._sleep(self.poll_interval, state=state)
                if not state.woken and not state.owed:
                    return  # idle: no await between this check and the end, so no wake-up is lost
        finally:
            if ahead is not None:
                ahead.cancel()
            if self._tasks.get(destination) is asyncio.current_task():
                del self._tasks[destination]
                if not state.owed and self._states.get(destination) is state:
                    del self._states[destination]

    def _read_ahead(
        self, destination: str, state: _Destination
    ) -> "asyncio.Future[Tuple[Sequence[QueuedEntry], int, Set[Any]]]":
        """Start reading the queue: (entries, the limit asked, the acks committed before)."""
        state.woken = False
        gone, state.gone = state.gone, set()
        limit = self.batch_size
        exclude = frozenset(state.handed - gone)  # not read again (a copy: read on a thread)

        async def read() -> Tuple[Sequence[QueuedEntry], int, Set[Any]]:
            return await self._store_call(destination, self.store.pending, destination, limit, exclude), limit, gone

        return asyncio.ensure_future(read())

    def _ack_in_background(self, destination: str, state: _Destination) -> None:
        """Ack the owed entries without waiting for the commit: reads and deliveries go on
        meanwhile (an ack is a write, which waits for the store's writer, e.g. a hub's group
        commit; a read does not).  Until the ack commits, a read skips its entries; if it
        fails they stay queued and are delivered again (a follower ignores repeats)."""
        assert self._loop is not None and self._ack_calls is not None
        acking = list(state.owed)
        state.owed = []
        state.first_owed_at = self._loop.time()
        state.acking.update(acking)
        self.acks += 1

        def committed(outcome: "asyncio.Future[Any]") -> None:
            state.acking.difference_update(acking)
            if not outcome.cancelled() and outcome.exception() is None:
                state.gone.update(acking)
            else:
                state.handed.difference_update(acking)  # still queued: the next read returns them
                log.warning("acking %d delivered events for %s failed; they will be delivered again: %s",
                            len(acking), destination, None if outcome.cancelled() else outcome.exception())

        ack = self._ack_calls.call(self.store.ack_entries, destination, acking)
        self._acks_in_flight.add(ack)
        ack.add_done_callback(self._acks_in_flight.discard)
        ack.add_done_callback(committed)

    def batches_to(self, destination: str) -> bool:
        """Whether requests to ``destination`` go as batches now: batches are on, the client
        sends them, and ``destination`` has not refused one in the last ``batch_retry_after``
        seconds (``batch_refused``).  The node's submits to a hub ask too.  Loop thread only."""
        if not self.batches_enabled or not hasattr(self.client, "request_batch"):
            return False
        until = self.singles_until.get(destination)
        if until is None:
            return True
        assert self._loop is not None
        if self._loop.time() < until:
            return False
        del self.singles_until[destination]
        return True

    def batch_refused(self, destination: str, what: str, exc: BaseException) -> None:
        """``destination`` refused ``what`` (a batch request) as a whole with a verdict: a
        server that does not batch answers ``malformed`` to the unknown type.  Requests to it
        are single for ``batch_retry_after`` seconds (status: ``delivery.singles``)."""
        assert self._loop is not None
        log.warning("%s refused %s (%s: %s): single requests for %.0f s",
                    destination, what, type(exc).__name__, exc, self.batch_retry_after)
        self.singles_until[destination] = self._loop.time() + self.batch_retry_after

    def _next_batch(self, todo: List[Tuple[Any, bytes]]) -> List[Tuple[Any, bytes]]:
        """The leading entries of ``todo`` that fit one batch (at least one)."""
        size = 0
        for count, (_, event) in enumerate(todo[: self.max_batch_events]):
            size += len(event)
            if count and size > self.max_batch_bytes:
                return todo[:count]
        return todo[: self.max_batch_events]

    async def _deliver_batch(self, destination: str, batch: List[Tuple[Any, bytes]]) -> int:
        """Deliver ``batch`` as one request; how many of its leading entries are settled
        (delivered or refused with a verdict).  0 when the destination refused the batch
        itself: it gets single deliveries from now on (for ``batch_retry_after`` seconds)."""
        assert self._sem is not None and self._loop is not None
        while True:
            try:
                async with self._sem:
                    answers = await self.client.request_batch(
                        destination, [(self.transaction_type, event) for _, event in batch]
                    )
            except self.retry_verdicts as exc:
                await self._failed(destination, exc)
                continue
            except ms.MimiError as exc:
                self.batch_refused(destination, f"a batch of {len(batch)} deliveries", exc)
                return 0
            except Exception as exc:  # noqa: BLE001 - TransportError, or anything unexpected: try again later
                await self._failed(destination, exc)
                continue
            self.batches += 1
            self.last_success[destination] = time.time()  # it answered (entries may still be refused)
            settled = 0
            for (queue_id, event), answer in zip(batch, answers):
                if isinstance(answer, self.retry_verdicts):
                    break
                if isinstance(answer, ms.MimiError):
                    self._rejected(destination, queue_id, event, answer)
                else:
                    self.delivered += 1
                settled += 1
            if settled == len(batch):
                self.failures.pop(destination, None)
                return settled
            # An entry to retry: back off, then go on from it (the ones before are settled).
            await self._failed(destination, answers[settled])
            if settled:
                return settled

    def _rejected(self, destination: str, queue_id: Any, event: bytes, exc: ms.MimiError) -> None:
        self.rejected += 1
        log.warning("%s rejected queued event %r: %s: %s", destination, queue_id, type(exc).__name__, exc)
        if self.on_rejected is not None:
            try:
                self.on_rejected(destination, queue_id, event, exc)
            except Exception:
                log.exception("on_rejected callback failed")

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
                self._rejected(destination, queue_id, event, exc)
                return
            except Exception as exc:  # noqa: BLE001 - TransportError, or anything unexpected: try again later
                await self._failed(destination, exc)
            else:
                self.failures.pop(destination, None)
                self.delivered += 1
                self.last_success[destination] = time.time()
                return

    async def _store_call(self, destination: str, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._calls is not None
        while True:
            try:
                return await self._calls.call(fn, *args)
            except Exception as exc:
                log.exception("store call %s for %s failed", getattr(fn, "__name__", fn), destination)
                await self._failed(destination, exc, quiet=True)

    async def _failed(self, destination: str, exc: BaseException, *, quiet: bool = False) -> None:
        count = self.failures.get(destination, 0) + 1
        self.failures[destination] = count
        delay = self.backoff_delay(count)
        self._note_failure(destination, exc, delay)
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
            self.retry_at.pop(destination, None)

    def _note_failure(self, destination: str, exc: BaseException, delay: float) -> None:
        self.failed_attempts += 1
        self.last_error[destination] = f"{type(exc).__name__}: {exc}"[:300]
        self.retry_at[destination] = time.time() + delay

    def backoff_delay(self, failures: int) -> float:
        """Wait after ``failures`` consecutive failures: exponential, capped, equal jitter."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** min(failures - 1, 32)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)
