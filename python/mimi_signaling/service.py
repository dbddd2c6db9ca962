"""A running MIMI server: one process that is the hub of the rooms it created and a follower
in the others, as a real provider is.

``ServerNode`` implements the transport's ``SignalingHandler``: the seven transactions of
PROFILE.md section 7, plus a small local administration API (``mimi.local.*``, JSON bodies)
that only the server itself may call — the TLS peer must present this server's own
certificate, which is how the ``mimi`` CLI on the same machine drives it.

The hub and follower objects are synchronous (storage is synchronous and durable); they run
in a thread pool so the event loop keeps serving.  Their network needs (fetching a peer's keys,
backfilling from a hub) go back to the loop with ``run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import (
    Event,
    InternalError,
    LimitedEvent,
    MalformedError,
    MimiError,
    NotHubError,
    ServerKeys,
    SigningKey,
    UnauthorizedError,
    UnknownRoomError,
    UserContent,
    decode_backfill_request,
    decode_backfill_response,
    decode_get_event_request,
    decode_get_state_request,
    decode_snapshot_request,
    decode_snapshot_response,
    encode_backfill_request,
    encode_backfill_response,
    encode_get_event_request,
    encode_snapshot_request,
    encode_snapshot_response,
    parse_room_id,
)
from .config import Config, save_signing_key
from .content import Participation, decode_content
from .node.follower import Follower
from .node.hub import Hub
from .node.keys import FetchedKeys, KeyStore
from .transport.keyfetch import PeerKeyFetcher
from .node.store import EventStore
from .ops.logs import log_context
from .ops.metrics import NodeMetrics
from .storage import open_store
from .transport.bounds import backfill_response
from .transport.client import SignalingClient
from .transport.delivery import DeliveryWorker
from .transport.server import SignalingServer, answer_in_order

if TYPE_CHECKING:
    from .ops.listener import OpsServer

log = logging.getLogger(__name__)

SUBMIT = "mimi.signaling.submit"
BATCH = "mimi.signaling.batch"
DELIVER = "mimi.signaling.deliver"
GET_EVENT = "mimi.signaling.get_event"
GET_STATE = "mimi.signaling.get_state"
BACKFILL = "mimi.signaling.backfill"
SNAPSHOT = "mimi.signaling.snapshot"
KEYS = "mimi.signaling.keys"
LOCAL_PREFIX = "mimi.local."
LOCAL_TYPES = [
    LOCAL_PREFIX + name
    for name in ("create_room", "send", "send_many", "membership", "state", "history", "rooms", "status", "rotate_key", "sync",
                 "destinations", "destinations_reset")
]
#: Submits per batch request when a local user sends many events (as the fan-out's batches).
SUBMIT_BATCH = 256
#: How long a thread waits for a network call it handed to the event loop.
NETWORK_TIMEOUT = 60.0
#: Threads for work that may wait on a peer (deliveries that backfill, joins, the local API's
#: sends to remote hubs), apart from the hub's accept groups and reads: a slow peer holds
#: only these, and at most PEER_CONCURRENCY of them.
NETWORK_WORKERS = 16
#: Deliveries of one peer handled at once; more wait (on the event loop, holding no thread).
PEER_CONCURRENCY = 4

PARTICIPATION_NAMES = {p.name.lower(): p for p in Participation}


def event_summary(event: Event, index: Optional[int] = None) -> Dict[str, Any]:
    """A JSON-friendly description of an event (for the CLI and logs)."""
    try:
        content = decode_content(event.type, event.content)
        shown = content.hex() if isinstance(content, bytes) else repr(content)
    except Exception:  # noqa: BLE001 - a display helper never fails
        shown = event.content.hex()
    out: Dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type,
        "sender": event.sender,
        "state_key": event.state_key,
        "content": shown,
        "redacted": event.is_redacted(),
    }
    if index is not None:
        out["index"] = index
    return out


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
        self.server = SignalingServer.from_config(
            self.config, self, transaction_types=[*_signaling_types(), *LOCAL_TYPES]
        )
        self.delivery = DeliveryWorker(self.store, self.client, backoff_max=delivery_backoff_max, backoff_base=0.2)
        self.batcher = SubmitBatcher(self)
        self.batcher.start()
        self.port = await self.server.start(self.config.listen_host, self.config.listen_port)
        await self.delivery.start()
        if self.config.ops.listen:
            from .config import parse_listen
            from .ops.listener import OpsServer

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

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        assert self.loop is not None
        context = contextvars.copy_context()  # the log context (peer, room) follows the call
        return await self.loop.run_in_executor(self.executor, lambda: context.run(fn, *args, **kwargs))

    async def _run_network(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``_run`` on the threads for work that may wait on a peer."""
        assert self.loop is not None
        context = contextvars.copy_context()
        return await self.loop.run_in_executor(self.network_executor, lambda: context.run(fn, *args, **kwargs))

    def _peer_slot(self, peer: str) -> asyncio.Semaphore:
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
        for room_id in await self._run(self.follower.rooms):
            try:
                await self._run_network(self.sync_room, room_id)
            except Exception as exc:  # noqa: BLE001 - the hub may be down; deliveries will come
                log.info("catch-up of %s deferred: %s", room_id, exc)

    # --- the signaling transactions ------------------------------------------------------------

    async def handle(self, transaction_type: str, payload: bytes, peer: str) -> bytes:
        self.metrics.transactions.labels(transaction_type).inc()
        log_context(peer=peer)
        if peer != self.server_name and self.delivery is not None:
            self.delivery.peer_alive(peer)  # it reached us, so it is up: retry its queue now
        if transaction_type.startswith(LOCAL_PREFIX):
            if peer != self.server_name:
                raise UnauthorizedError(f"{transaction_type} is only for {self.server_name} itself")
            return await self._local(transaction_type[len(LOCAL_PREFIX) :], payload)
        if transaction_type == SUBMIT:
            assert self.batcher is not None
            with self.metrics.submit():
                limited = LimitedEvent.decode(payload)
                log_context(room=limited.room_id)
                event = await self.batcher.submit(limited, peer)
            return event.encode()
        if transaction_type == DELIVER:
            event = Event.decode(payload)
            log_context(room=event.room_id, event_id=event.event_id)
            async with self._peer_slot(peer):
                if self.follower.loaded(event.room_id):  # else: refused, or an invite (checked in a thread)
                    await self.peer_keys.resolve(_signers(event))
                await self._run_network(self.follower.receive, event, peer=peer)
            return b""
        if transaction_type == GET_EVENT:
            room_id, event_id = decode_get_event_request(payload)
            # hub and follower apply the same read and visibility rules (PROFILE.md section 6)
            if self.hub.is_hub_for(room_id):
                return (await self._run(self.hub.get_event, room_id, event_id, for_server=peer)).encode()
            # A follower with a partial history may fetch the event from the room's hub: on the
            # network threads, at most PEER_CONCURRENCY at once for the asking peer.
            async with self._peer_slot(peer):
                event = await self._run_network(self.follower.get_event, room_id, event_id, for_server=peer)
            return event.encode()
        if transaction_type == GET_STATE:
            room_id, type_, state_key = decode_get_state_request(payload)
            self._require_hub(room_id)
            return (await self._run(self.hub.get_state, room_id, type_, state_key, for_server=peer)).encode()
        if transaction_type == BACKFILL:
            room_id, before, limit = decode_backfill_request(payload)
            self._require_hub(room_id)
            events = await self._run(self.hub.backfill, room_id, before, limit, for_server=peer)
            return encode_backfill_response(events)
        if transaction_type == SNAPSHOT:
            room_id = decode_snapshot_request(payload)
            self._require_hub(room_id)
            events, chain, latest = await self._run(self.hub.snapshot, room_id, for_server=peer)
            return encode_snapshot_response(events, chain, latest)
        if transaction_type == KEYS:
            if payload:
                raise MalformedError("the keys transaction has an empty body")
            return self.keys.own_keys().encode()
        raise MalformedError(f"unknown transaction type {transaction_type!r}")

    async def handle_batch(self, entries: Sequence[Tuple[str, bytes]], peer: str) -> List[Union[bytes, MimiError]]:
        """The entries of a ``mimi.signaling.batch``, in order, each judged as if it had arrived
        alone (PROFILE.md section 7), but worked on together: a run of submits joins the hub's
        group commit as one chunk (one batch signature check, one transaction, answered after
        the commit), a run of deliveries is applied by the follower in one call; every other
        entry goes through ``handle``.  Per entry: the 200 body or the error."""
        self.metrics.transactions.labels(BATCH).inc()
        log_context(peer=peer)
        if peer != self.server_name and self.delivery is not None:
            self.delivery.peer_alive(peer)
        out: List[Union[bytes, MimiError, None]] = [None] * len(entries)
        start = 0
        while start < len(entries):
            kind = entries[start][0]
            end = start + 1
            while end < len(entries) and entries[end][0] == kind:
                end += 1
            if kind == SUBMIT:
                await self._submit_run(entries, range(start, end), peer, out)
            elif kind == DELIVER:
                await self._deliver_run(entries, range(start, end), peer, out)
            else:
                answered = sum(len(a) for a in out[:start] if isinstance(a, bytes))
                out[start:end] = await answer_in_order(entries[start:end], self._handle_alone, peer, answered)
            start = end
        return out  # type: ignore[return-value]

    async def _handle_alone(self, transaction_type: str, payload: bytes, peer: str) -> Union[bytes, MimiError]:
        try:
            return await self.handle(transaction_type, payload, peer)
        except MimiError as exc:
            return exc
        except Exception as exc:  # one entry's bug answers that entry only
            log.exception("internal error in a batch entry %s from %s", transaction_type, peer)
            return InternalError(f"internal error: {exc}")

    async def _submit_run(self, entries: Sequence[Tuple[str, bytes]], run: range, peer: str, out: list) -> None:
        assert self.batcher is not None
        started = time.perf_counter()
        decoded: List[Tuple[int, LimitedEvent]] = []
        for i in run:
            try:
                decoded.append((i, LimitedEvent.decode(entries[i][1])))
            except MimiError as exc:
                out[i] = exc
        if decoded:
            results = await self.batcher.submit_many([lim for _, lim in decoded], peer)
            for (i, _), result in zip(decoded, results):
                out[i] = result if isinstance(result, MimiError) else result.encode()
        self.metrics.submitted([out[i] for i in run], time.perf_counter() - started)

    async def _deliver_run(self, entries: Sequence[Tuple[str, bytes]], run: range, peer: str, out: list) -> None:
        self.metrics.transactions.labels(DELIVER).inc(len(run))
        try:
            async with self._peer_slot(peer):  # a run may backfill or fetch keys: network threads
                errors = await self._run_network(self.follower.receive_many, [entries[i][1] for i in run], peer=peer)
        except MimiError as exc:
            errors = [exc] * len(run)
        for i, error in zip(run, errors):
            out[i] = b"" if error is None else error

    def _require_hub(self, room_id: str) -> None:
        if not self.hub.is_hub_for(room_id):
            raise NotHubError(f"{self.server_name} is not the hub of {room_id}")

    # --- acting for local users ----------------------------------------------------------------

    def submit_local(self, room_id: str, sender: str, type_: str, state_key: Optional[str], content: bytes) -> Event:
        """Send an event as one of our users: to our own hub, or to the room's hub; the
        accepted event is then applied here as a follower would (blocking; run in a thread)."""
        if sender.split(":", 1)[1] != self.server_name:
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
        ``receive_many``.  Per content the accepted event or the error that refused it.
        The room must be one we follow or host (a first join goes through ``submit_local``)."""
        if sender.split(":", 1)[1] != self.server_name:
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
            answers = self._blocking(self.client.request_batch(hub, [(SUBMIT, lim.encode()) for lim in part]))
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

    # --- the local administration API ----------------------------------------------------------

    async def _local(self, name: str, payload: bytes) -> bytes:
        try:
            args = json.loads(payload.decode() or "{}")
        except ValueError as exc:
            raise MalformedError(f"local request body is not JSON: {exc}") from exc
        handler = getattr(self, f"_local_{name}", None)
        if handler is None:
            raise MalformedError(f"unknown local request {name!r}")
        result = await self._run_network(handler, **args)  # a send may go to a remote hub
        return json.dumps(result).encode()

    def _local_create_room(self, creator: str, room_id: Optional[str] = None, join_rule: Optional[str] = None,
                           name: Optional[str] = None) -> Dict[str, Any]:
        from . import JoinRulesContent, TextContent
        from .content import JoinRule

        initial = []
        if join_rule:
            initial.append(("m.room.join_rules", "", JoinRulesContent(JoinRule[join_rule.upper()]).encode()))
        if name:
            initial.append(("m.room.name", "", TextContent(name.encode()).encode()))
        events = self.hub.create_room(creator, room_id=room_id, initial_state=initial)
        if self.delivery is not None:
            self.delivery.wake()
        return {"room_id": events[0].room_id, "events": [event_summary(e) for e in events]}

    def _local_send(self, room_id: str, sender: str, type: str, content_hex: str = "", text: Optional[str] = None,
                    state_key: Optional[str] = None) -> Dict[str, Any]:
        content = text.encode() if text is not None else bytes.fromhex(content_hex)
        return event_summary(self.submit_local(room_id, sender, type, state_key, content))

    def _local_send_many(self, room_id: str, sender: str, type: str = "m.room.encrypted",
                         texts: Optional[List[str]] = None, contents_hex: Optional[List[str]] = None) -> Dict[str, Any]:
        contents = [t.encode() for t in texts] if texts is not None else [bytes.fromhex(h) for h in contents_hex or []]
        if not contents:
            raise MalformedError("send_many needs texts or contents_hex")
        accepted: List[str] = []
        refused: List[Dict[str, Any]] = []
        for i, result in enumerate(self.submit_local_many(room_id, sender, type, contents)):
            if isinstance(result, MimiError):
                refused.append({"index": i, "error": result.name, "message": str(result)})
            else:
                accepted.append(result.event_id)
        return {"accepted": accepted, "refused": refused}

    def _local_membership(self, room_id: str, sender: str, target: str, participation: str,
                          reason: str = "") -> Dict[str, Any]:
        try:
            value = PARTICIPATION_NAMES[participation]
        except KeyError:
            raise MalformedError(f"participation must be one of {sorted(PARTICIPATION_NAMES)}") from None
        content = UserContent(value, reason.encode()).encode()
        return event_summary(self.submit_local(room_id, sender, "m.room.user", target, content))

    def _local_state(self, room_id: str) -> List[Dict[str, Any]]:
        state = self.room_state(room_id)
        return [event_summary(e) for e in state.events()]

    def _local_history(self, room_id: str, limit: int = 50, before: Optional[str] = None) -> List[Dict[str, Any]]:
        """The latest ``limit`` events held, or the ``limit`` events preceding ``before``
        (a follower with a partial history fetches from the hub what it no longer holds).
        Indices of a partial history are local positions (``node/partial.py``)."""
        if before is not None:
            if self.hub.is_hub_for(room_id):
                events = self.hub.backfill(room_id, before, limit)
                first = self.store.index_of(room_id, before)
                assert first is not None
                return [event_summary(e, first - 1 - i) for i, e in enumerate(events)][::-1]
            return [event_summary(e, i) for i, e in self.follower.history_before(room_id, before, limit)]
        latest = self.store.latest(room_id)
        if latest is None:
            return []
        start = max(0, latest[0] + 1 - limit)
        return [event_summary(Event.decode(raw), i) for i, raw in self.store.iter_events(room_id, start=start)]

    def _local_rooms(self) -> List[Dict[str, Any]]:
        out = []
        for room_id in self.store.rooms():
            role = self.store.room_role(room_id)
            if role == "follower" and self.follower.is_partial(room_id):
                # A partial history's indices are local positions: count what is held.
                out.append({"room_id": room_id, "role": role, "events": self.store.count(room_id),
                            "history": "recent", "kept": len(self.store.kept_events(room_id)),
                            "verified": self.follower.partial.verification.get(room_id, "not checked")})
                continue
            latest = self.store.latest(room_id)
            out.append({"room_id": room_id, "role": role, "events": (latest[0] + 1) if latest else 0})
        return out

    def _local_status(self) -> Dict[str, Any]:
        queues = {d: self.store.queue_length(d) for d in self.store.destinations_with_pending()}
        partial = self.follower.partial
        return {"server_name": self.server_name, "port": self.port, "rooms": self._local_rooms(), "queues": queues,
                "key_id": self.keys.signing_key.key_id, "delivery": self._delivery_stats(),
                "pending_invites": len(self.follower.invites),
                "follower": {"history": self.follower.history, "keep_recent": partial.keep_recent,
                             "pruned": partial.pruned, "fetched_on_demand": partial.fetched}}

    def _delivery_stats(self) -> Dict[str, Any]:
        """Fan-out counters since this process started: events delivered, events a destination
        refused with a verdict (dropped from its queue), acks written (one per batch of
        delivered events), batch requests answered, consecutive failed attempts by
        destination (the destination down, or answering rate_limited/internal), and the
        destinations that get single deliveries for now (they refused a batch)."""
        d = self.delivery
        if d is None:
            return {"delivered": 0, "rejected": 0, "acks": 0, "batches": 0, "failing": {}, "singles": []}
        return {"delivered": d.delivered, "rejected": d.rejected, "acks": d.acks, "batches": d.batches,
                "failing": {k: v for k, v in d.failures.items() if v}, "singles": sorted(d.singles_until)}

    def _local_destinations(self) -> List[Dict[str, Any]]:
        from dataclasses import asdict

        from .ops.status import destination_rows

        return [asdict(row) for row in destination_rows(self, time.time())]

    def _local_destinations_reset(self, name: str) -> Dict[str, Any]:
        """End ``name``'s delivery backoff now: its queue is retried at once."""
        if self.delivery is None:
            raise InternalError("the fan-out worker is not running")
        return {"destination": name, "was_backing_off": self.delivery.reset_backoff(name)}

    def _local_sync(self, room_id: str) -> Dict[str, Any]:
        return {"fetched": self.sync_room(room_id)}

    def _local_rotate_key(self) -> Dict[str, Any]:
        """Start signing with a fresh key; the old one stays published as expired.

        Crash-safe in this order: (1) the store records the old key as expired next to the
        new one, (2) the new key file replaces the old one atomically and durably, (3) the
        running server switches.  A crash after (1) restarts with the old key current (the
        stored expired list never drops the key in the file); after (2) with the new key and
        the old one still published.  Writing the key file first could lose the old key's
        listing, and with it the verifiability of every event it signed."""
        old = self.keys.signing_key
        new = SigningKey.generate()
        old_expired = old.verify_key(expired_ts=int(time.time() * 1000))
        kept = [k for k in self.keys.expired_keys if k.key_id not in (old.key_id, new.key_id)]
        self.store.put_server_keys(self.server_name, ServerKeys(self.server_name, [new.verify_key(), *kept, old_expired]).encode())
        _replace_key_file(Path(self.config.signing_key), new)
        self.keys.rotate(new)
        self.store.put_server_keys(self.server_name, self.keys.own_keys().encode())
        return {"old_key_id": old.key_id, "new_key_id": new.key_id}


def _replace_key_file(path: Path, key: SigningKey) -> None:
    """Write the key to a new file beside ``path``, flush it to disk, rename it over ``path``
    and flush the directory: at every moment ``path`` holds a whole key, old or new."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    save_signing_key(tmp, key)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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
                results = await self.node._run(self.node.hub.accept_many, items)
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


def _signers(event: Event) -> Dict[str, List[str]]:
    """``{server: key IDs}`` of the signatures an event carries (hub and origin)."""
    wanted: Dict[str, List[str]] = {}
    wanted.setdefault(event.hub_server, []).extend(s.key_id for s in event.hub_signature)
    wanted.setdefault(event.origin_server, []).extend(s.key_id for s in event.origin_signature)
    return wanted


def _signaling_types() -> List[str]:
    from . import TRANSACTION_TYPES

    return list(TRANSACTION_TYPES)


class LocalClient:
    """Drives a running server through its local administration API (the ``mimi`` CLI)."""

    def __init__(self, config: Config, *, timeout: float = 120.0) -> None:
        self.config = config
        self.timeout = timeout
        host = config.listen_host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        self.url = f"https://{host}:{config.listen_port}"

    async def _call(self, name: str, args: Dict[str, Any]) -> Any:
        client = SignalingClient.from_config(
            self.config, peers={**self.config.peers, self.config.server_name: self.url}, timeout=self.timeout,
            max_retries=0,
        )
        async with client:
            body = await client.request(self.config.server_name, LOCAL_PREFIX + name, json.dumps(args).encode())
        return json.loads(body.decode())

    def call(self, request: str, /, **args: Any) -> Any:
        return asyncio.run(self._call(request, args))
