"""Group commit for submits (``SubmitBatcher``)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

from .._core import Event, InternalError, LimitedEvent, MimiError

if TYPE_CHECKING:
    from .node import ServerNode

log = logging.getLogger(__name__)


class SubmitBatcher:
    """Group commit for submits: those that arrive while the hub is busy are accepted together
    (``Hub.accept_many``: one batch signature check, one transaction, one fsync), each answered
    only after the commit.  A batch's submits come as one chunk; chunks from several requests
    and peers join one group, up to ``max_batch`` events (a chunk is never split)."""

    def __init__(self, node: ServerNode, *, max_batch: int = 1024) -> None:
        self.node = node
        self.max_batch = max_batch
        self.queue: "asyncio.Queue[Tuple[List[Tuple[LimitedEvent, Optional[str]]], asyncio.Future]]" = asyncio.Queue()
        self.task: Optional["asyncio.Task[None]"] = None
        self.batches = 0
        self.events = 0

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        while not self.queue.empty():
            _, fut = self.queue.get_nowait()
            if not fut.done():
                fut.set_exception(InternalError("the server is stopping"))

    async def submit(self, limited: LimitedEvent, peer: Optional[str]) -> Event:
        result = (await self.submit_many([limited], peer))[0]
        if isinstance(result, BaseException):
            raise result
        return result

    async def submit_many(self, limited: Sequence[LimitedEvent], peer: Optional[str]) -> List[Union[Event, MimiError]]:
        """Accept ``limited`` in order within one group; per event the accepted event or the
        error that refused it.  The origins' keys are resolved first (``resolve_keys``)."""
        refused = await self.resolve_keys(limited, peer)
        todo = [lim for i, lim in enumerate(limited) if i not in refused]
        accepted: List[Union[Event, MimiError]] = []
        if todo:
            fut = asyncio.get_running_loop().create_future()
            self.queue.put_nowait(([(lim, peer) for lim in todo], fut))
            accepted = await fut
        if not refused:
            return accepted
        results = iter(accepted)
        return [refused[i] if i in refused else next(results) for i in range(len(limited))]

    async def resolve_keys(self, limited: Sequence[LimitedEvent], peer: Optional[str]) -> Dict[int, MimiError]:
        """The origins' keys, before the submits join a group (the group never waits on the
        network).  Only for submits the group could accept at all (this is the room's hub,
        the TLS peer is the origin): no one makes the hub fetch keys of a third server.
        Returns, by position, why an origin's keys could not be had, for the submits whose
        origin has none in the ring (they are refused with it and never enter the group)."""
        wanted: Dict[str, List[str]] = {}
        for lim in limited:
            origin = lim.origin_server
            if (peer is None or peer == origin) and self.node.hub.is_hub_for(lim.room_id):
                wanted.setdefault(origin, []).extend(s.key_id for s in lim.origin_signature)
        if not wanted:
            return {}
        errors = await self.node.peer_keys.resolve(wanted)
        ring = self.node.keys.ring
        return {i: type(errors[lim.origin_server])(str(errors[lim.origin_server]))  # one exception each
                for i, lim in enumerate(limited)
                if lim.origin_server in errors and lim.origin_server in wanted and not ring.has_server(lim.origin_server)}

    async def _run(self) -> None:
        while True:
            chunks = [await self.queue.get()]
            size = len(chunks[0][0])
            while size < self.max_batch and not self.queue.empty():
                chunks.append(self.queue.get_nowait())
                size += len(chunks[-1][0])
            items = [item for entries, _ in chunks for item in entries]
            try:
                results = await self.node.run(self.node.hub.accept_many, items)
            except Exception as exc:  # a bug must not hang the waiting submits
                log.exception("group commit of %d submits failed", len(items))
                results = [InternalError(f"accepting failed: {exc}") for _ in items]
            self.batches += 1
            self.events += len(items)
            self.node.metrics.group_size.observe(len(items))
            pos = 0
            for entries, fut in chunks:
                if not fut.done():
                    fut.set_result(results[pos:pos + len(entries)])
                pos += len(entries)
            if self.node.delivery is not None:
                self.node.delivery.wake()

