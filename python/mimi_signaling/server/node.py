"""A running MIMI server: one process that is the hub of the rooms it created and a follower
in the others, as a real provider is.

``ServerNode`` implements the transport's ``SignalingHandler``: the transactions of PROFILE.md
section 7 (``server/federation.py``, one handler each), plus the local administration API
(``server/admin.py``) that only the server itself may call.

The hub and follower objects are synchronous (storage is synchronous and durable); they run
in thread pools so the event loop keeps serving: the hub's accepts and reads on ``executor``,
work that may wait on a peer on ``network_executor``.  Their network needs (fetching a peer's
keys, backfilling from a hub) go back to the loop with ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .._core import (
    parse_user_id,
    TRANSACTION_TYPES,
    Event,
    LimitedEvent,
    MalformedError,
    MimiError,
    ServerKeys,
    UnauthorizedError,
    UnknownRoomError,
    decode_backfill_response,
    decode_snapshot_response,
    encode_backfill_request,
    encode_get_event_request,
    encode_snapshot_request,
    parse_room_id,
)
from ..config import Config
from ..node.follower import Follower
from ..node.hub import Hub
from ..node.keys import FetchedKeys, KeyStore
from .keyfetch import PeerKeyFetcher
from ..node.store import EventStore
from ..ops.logs import log_context
from ..ops.metrics import NodeMetrics
from ..storage import open_store
from ..transport.bounds import backfill_response
from ..transport.client import SignalingClient
from ..transport.delivery import DeliveryWorker
from ..transport.server import SignalingServer

if TYPE_CHECKING:
    from ..ops.listener import OpsServer


from .admin import LOCAL_PREFIX, LOCAL_TYPES, handle_local
from .batcher import SubmitBatcher
from .federation import BACKFILL, BATCH, GET_EVENT, HANDLERS, KEYS, PEER_CONCURRENCY, SNAPSHOT, SUBMIT, handle_batch

log = logging.getLogger(__name__)

#: Submits per batch request when a local user sends many events (as the fan-out's batches).
SUBMIT_BATCH = 256
#: How long a thread waits for a network call it handed to the event loop.
NETWORK_TIMEOUT = 60.0
#: Threads for work that may wait on a peer (deliveries that backfill, joins, the local API's
#: sends to remote hubs), apart from the hub's accept groups and reads: a slow peer holds
#: only these, and at most PEER_CONCURRENCY of them.
NETWORK_WORKERS = 16


class ServerNode:
    """Hub + follower + transport for one server name."""

    def __init__(self, config: Config, *, store: Optional[EventStore] = None, workers: int = 8) -> None:
        self.config = config
        self.server_name = config.server_name
        self.store = store if store is not None else open_store(config.storage_url())
        self.keys = KeyStore(
            self.server_name,
            config.load_signing_key(),
            self.store,
            expired=self._stored_expired_keys(),
            fetch=self._fetch_keys_blocking,
        )
        self.hub = Hub(self.server_name, self.keys, self.store)
        self.hub.fetch_keys = False  # SubmitBatcher resolves an origin's keys before the group
        self.follower = Follower(
            self.server_name, self.keys, self.store, backfill=self._backfill_blocking,
            snapshot=self._snapshot_blocking, fetch_event=self._fetch_event_blocking,
            history=config.follower.history, keep_recent=config.follower.keep_recent,
            verify_history=config.follower.verify_history,
        )
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"mimi-{self.server_name}")
        self.network_executor = ThreadPoolExecutor(
            max_workers=NETWORK_WORKERS, thread_name_prefix=f"mimi-{self.server_name}-net"
        )
        self.peer_keys = PeerKeyFetcher(self.keys, self._fetch_keys_answer, self.network_executor)
        self._peer_slots: Dict[str, asyncio.Semaphore] = {}
        self.client: Optional[SignalingClient] = None
        self.server: Optional[SignalingServer] = None
        self.delivery: Optional[DeliveryWorker] = None
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.port: Optional[int] = None
        self.batcher: Optional[SubmitBatcher] = None
        self.metrics = NodeMetrics()
        self.metrics.attach(self)
        self.ops: Optional["OpsServer"] = None  # the ops listener (metrics, health, status), when configured

    # --- lifecycle ------------------------------------------------------------------------------

    def _stored_expired_keys(self):
        raw = self.store.get_server_keys(self.server_name)
        if raw is None:
            return []
        return [k for k in ServerKeys.decode(raw).keys if k.expired_ts != 0]

    async def start(self, *, delivery_backoff_max: float = 10.0) -> int:
        self.loop = asyncio.get_running_loop()
        self.client = SignalingClient.from_config(self.config)
        batches = self.config.http.batches  # false: a peer that does not batch, both ways
        types = [*TRANSACTION_TYPES, *LOCAL_TYPES]
        self.server = SignalingServer.from_config(
            self.config, self, transaction_types=[t for t in types if batches or t != BATCH]
        )
        self.delivery = DeliveryWorker(self.store, self.client, backoff_max=delivery_backoff_max, backoff_base=0.2,
                                       batches=batches)
        self.batcher = SubmitBatcher(self)
        self.batcher.start()
        self.port = await self.server.start(self.config.listen_host, self.config.listen_port)
        await self.delivery.start()
        if self.config.ops.listen:
            from ..config import parse_listen
            from ..ops.listener import OpsServer

            self.ops = OpsServer(self)
            await self.ops.start(*parse_listen(self.config.ops.listen))
        log.info("%s listening on %s:%d", self.server_name, self.config.listen_host, self.port)
        # Catch up on the rooms we follow (events missed while this process was down).
        asyncio.ensure_future(self._catch_up_followed_rooms())
        return self.port

    async def stop(self) -> None:
        if self.ops is not None:
            await self.ops.stop()
        if self.batcher is not None:
            await self.batcher.stop()
        if self.delivery is not None:
            await self.delivery.stop()
        if self.server is not None:
            await self.server.stop()
        if self.client is not None:
            await self.client.close()
        self.network_executor.shutdown(wait=True)
        self.executor.shutdown(wait=True)
        self.follower.close()
        self.store.close()

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        assert self.loop is not None
        context = contextvars.copy_context()  # the log context (peer, room) follows the call
        return await self.loop.run_in_executor(self.executor, lambda: context.run(fn, *args, **kwargs))

    async def run_network(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``_run`` on the threads for work that may wait on a peer."""
        assert self.loop is not None
        context = contextvars.copy_context()
        return await self.loop.run_in_executor(self.network_executor, lambda: context.run(fn, *args, **kwargs))

    def peer_slot(self, peer: str) -> asyncio.Semaphore:
        slot = self._peer_slots.get(peer)
        if slot is None:
            slot = self._peer_slots[peer] = asyncio.Semaphore(PEER_CONCURRENCY)
        return slot

    def _blocking(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop from a worker thread and wait for it."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(NETWORK_TIMEOUT)

    async def request(self, server_name: str, transaction_type: str, payload: bytes) -> bytes:
        assert self.client is not None
        return await self.client.request(server_name, transaction_type, payload)

    async def _fetch_keys_answer(self, server_name: str) -> Tuple[bytes, Tuple[str, ...]]:
        assert self.client is not None
        with self.metrics.key_fetch():
            answer = await self.client.request_answer(server_name, KEYS, b"", max_retries=1)
        return answer.body, answer.peer_names

    def _fetch_keys_blocking(self, server_name: str) -> FetchedKeys:
        """The KeyStore's fetch (worker threads): shared, bounded and backed off per peer."""
        assert self.loop is not None
        return self.peer_keys.fetch_blocking(server_name, self.loop)

    def _backfill_blocking(self, room_id: str, before: str, limit: int) -> List[Event]:
        hub = parse_room_id(room_id)[1]
        assert self.client is not None
        body = self._blocking(self.client.request(
            hub, BACKFILL, encode_backfill_request(room_id, before, limit), max_response=backfill_response(limit)))
        events = decode_backfill_response(body)
        if len(events) > limit:  # PROFILE.md section 7: "up to `limit` ... events"
            raise MalformedError(f"{hub} answered a backfill of {limit} events with {len(events)}")
        return events

    def _snapshot_blocking(self, room_id: str) -> Tuple[List[Event], List[Event], str]:
        hub = parse_room_id(room_id)[1]
        return decode_snapshot_response(self._blocking(self.request(hub, SNAPSHOT, encode_snapshot_request(room_id))))

    def _fetch_event_blocking(self, room_id: str, event_id: str) -> Event:
        hub = parse_room_id(room_id)[1]
        return Event.decode(self._blocking(self.request(hub, GET_EVENT, encode_get_event_request(room_id, event_id))))

    async def _catch_up_followed_rooms(self) -> None:
        for room_id in await self.run(self.follower.rooms):
            try:
                await self.run_network(self.sync_room, room_id)
            except Exception as exc:  # noqa: BLE001 - the hub may be down; deliveries will come
                log.info("catch-up of %s deferred: %s", room_id, exc)


    # --- the signaling transactions (server/federation.py) ---------------------------------------

    async def handle(self, transaction_type: str, payload: bytes, peer: str) -> bytes:
        """The transport's ``SignalingHandler``: one transaction, to its handler."""
        self.metrics.transactions.labels(transaction_type).inc()
        log_context(peer=peer)
        if peer != self.server_name and self.delivery is not None:
            self.delivery.peer_alive(peer)  # it reached us, so it is up: retry its queue now
        if transaction_type.startswith(LOCAL_PREFIX):
            if peer != self.server_name:
                raise UnauthorizedError(f"{transaction_type} is only for {self.server_name} itself")
            return await handle_local(self, transaction_type[len(LOCAL_PREFIX) :], payload)
        handler = HANDLERS.get(transaction_type)
        if handler is None:
            raise MalformedError(f"unknown transaction type {transaction_type!r}")
        return await handler(self, payload, peer)

    async def handle_batch(self, entries: Sequence[Tuple[str, bytes]], peer: str) -> List[Union[bytes, MimiError]]:
        return await handle_batch(self, entries, peer)

    # --- acting for local users ----------------------------------------------------------------

    def submit_local(self, room_id: str, sender: str, type_: str, state_key: Optional[str], content: bytes) -> Event:
        """Send an event as one of our users: to our own hub, or to the room's hub; the
        accepted event is then applied here as a follower would (blocking; run in a thread)."""
        if parse_user_id(sender)[1] != self.server_name:
            raise UnauthorizedError(f"{sender} is not a user of {self.server_name}")
        limited = LimitedEvent.create(room_id, type_, state_key, sender, content, self.keys.signing_key)
        if self.hub.is_hub_for(room_id):
            event = self.hub.accept(limited)
            if self.delivery is not None:
                self.delivery.wake()
            return event
        if self.follower.follows(room_id):
            event = self._submit_remote(limited)
            self.follower.receive(event)
            return event
        with self.follower.joining(room_id):  # the hub's deliveries into it wait for the join
            event = self._submit_remote(limited)
            if self.follower.follows(room_id):
                self.follower.receive(event)
            else:
                self.join_flow(room_id, event)
        return event

    def submit_local_many(self, room_id: str, sender: str, type_: str,
                          contents: Sequence[bytes]) -> List[Union[Event, MimiError]]:
        """Send many non-state events as one of our users, in order: one ``accept_many`` group
        on our own hub, else ``mimi.signaling.batch`` requests to the room's hub (up to
        ``SUBMIT_BATCH`` submits each) whose accepted events are applied here in one
        ``receive_many`` (with ``http.batches`` off: single submits, applied the same way).
        Per content the accepted event or the error that refused it.
        The room must be one we follow or host (a first join goes through ``submit_local``)."""
        if parse_user_id(sender)[1] != self.server_name:
            raise UnauthorizedError(f"{sender} is not a user of {self.server_name}")
        key = self.keys.signing_key
        limited = [LimitedEvent.create(room_id, type_, None, sender, content, key) for content in contents]
        if self.hub.is_hub_for(room_id):
            results = self.hub.accept_many([(lim, None) for lim in limited])
            if self.delivery is not None:
                self.delivery.wake()
            return results
        if not self.follower.follows(room_id):
            raise UnknownRoomError(f"{self.server_name} does not follow {room_id}: join it first")
        assert self.client is not None
        hub = parse_room_id(room_id)[1]
        out: List[Union[Event, MimiError]] = []
        for start in range(0, len(limited), SUBMIT_BATCH):
            part = limited[start:start + SUBMIT_BATCH]
            answers = self._blocking(self._submit_entries(hub, [lim.encode() for lim in part]))
            accepted: List[bytes] = []
            for lim, answer in zip(part, answers):
                if isinstance(answer, MimiError):
                    out.append(answer)
                    continue
                event = Event.decode(answer)
                if event.limited() != lim:
                    raise MalformedError(f"{hub} answered a submit with a different event")
                out.append(event)
                accepted.append(answer)
            for error in self.follower.receive_many(accepted, peer=hub):
                if error is not None:  # the hub accepted what we cannot check: stop here
                    raise error
        return out

    async def _submit_entries(self, hub: str, submits: List[bytes]) -> List[Union[bytes, MimiError]]:
        """Per submit, the hub's answer or its verdict: one batch request, or one request each,
        in order, with ``http.batches`` off or to a hub that refused a batch lately (it does
        not batch: ``malformed`` for the unknown type; nothing of that batch was handled)."""
        assert self.client is not None and self.delivery is not None  # both made by start()
        if self.delivery.batches_to(hub):  # false too with http.batches off
            try:
                return await self.client.request_batch(hub, [(SUBMIT, raw) for raw in submits])
            except MalformedError as exc:
                self.delivery.batch_refused(hub, f"a batch of {len(submits)} submits", exc)
        answers: List[Union[bytes, MimiError]] = []
        for raw in submits:
            try:
                answers.append(await self.client.request(hub, SUBMIT, raw))
            except MimiError as exc:
                answers.append(exc)
        return answers

    def _submit_remote(self, limited: LimitedEvent) -> Event:
        hub = parse_room_id(limited.room_id)[1]
        event = Event.decode(self._blocking(self.request(hub, SUBMIT, limited.encode())))
        if event.limited() != limited:
            raise MalformedError(f"{hub} answered the submit with a different event")
        self._verify_from_hub([event])
        return event

    def join_flow(self, room_id: str, accepted: Event) -> None:
        """After our user's join (or any first event of ours) was accepted by a remote hub:
        take the state and auth chain with ``snapshot``, check them, and follow the room
        from then on: with ``history = "recent"`` from the snapshot (``node/partial.py``),
        with ``"full"`` after fetching the history with ``backfill`` and replaying it."""
        if self.follower.history == "recent":
            self.follower.join_recent(room_id, accepted)
            return
        state, auth_chain, latest = self._snapshot_blocking(room_id)
        self._verify_from_hub(state + auth_chain)
        newest = accepted if latest == accepted.event_id else self._fetch_event_blocking(room_id, latest)
        self.follower.sync(room_id, newest)
        ours = self.follower.state(room_id).state_ids()
        theirs = {(e.type, e.state_key): e.event_id for e in state}
        if {k: v for k, v in ours.items()} != theirs:
            log.warning("room %s: replayed state differs from the hub's snapshot", room_id)
            raise MalformedError(f"the snapshot of {room_id} does not match the replayed history")
        log.info("joined %s: %d state events, %d in the auth chain", room_id, len(state), len(auth_chain))

    def _verify_from_hub(self, events: Sequence[Event]) -> None:
        """Check events a hub answered with (keys re-fetched once on a failure: rotation)."""
        self.keys.verify_all(events, lambda e: (e.hub_server, e.origin_server))

    def sync_room(self, room_id: str) -> int:
        """Fetch what we missed in a followed room (e.g. after a restart); returns the count."""
        _, _, latest = self._snapshot_blocking(room_id)
        if self.store.index_of(room_id, latest) is not None:
            return 0
        before = self.store.latest(room_id)
        self.follower.sync(room_id, self._fetch_event_blocking(room_id, latest))
        after = self.store.latest(room_id)
        return (after[0] if after else -1) - (before[0] if before else -1)

    def room_state(self, room_id: str):
        return self.hub.state(room_id) if self.hub.is_hub_for(room_id) else self.follower.state(room_id)
