"""The signaling transactions of PROFILE.md section 7, as a server receives them: one handler
per transaction type in ``HANDLERS`` (as Synapse has one servlet per endpoint), and the batch
transaction, whose entries are judged as if each had arrived alone but worked on together.

Every handler takes the ``ServerNode``, the transaction's payload and the verified TLS peer,
and returns the 200 body or raises the ``MimiError`` of its verdict.  Hub work (accepts, reads)
runs on the node's hub threads; work that may wait on another peer (deliveries that backfill,
a follower's on-demand fetches) on its network threads, at most ``PEER_CONCURRENCY`` per peer.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .._core import (
    Event,
    InternalError,
    LimitedEvent,
    MalformedError,
    MimiError,
    NotHubError,
    decode_backfill_request,
    decode_get_event_request,
    decode_get_state_request,
    decode_snapshot_request,
    encode_backfill_response,
    encode_events,
    encode_snapshot_response,
)
from ..ops.logs import log_context
from ..transport.names import BACKFILL, BATCH, DELIVER, GET_EVENT, GET_STATE, KEYS, SNAPSHOT, SUBMIT
from ..transport.server import answer_in_order

__all__ = [
    "BACKFILL", "BATCH", "DELIVER", "GET_EVENT", "GET_STATE", "HANDLERS", "KEYS", "SNAPSHOT", "SUBMIT",
    "handle_batch", "require_hub", "signers",
]

if TYPE_CHECKING:
    from .node import ServerNode

log = logging.getLogger(__name__)

#: Deliveries of one peer handled at once; more wait (on the event loop, holding no thread).
PEER_CONCURRENCY = 4

Handler = Callable[["ServerNode", bytes, str], Awaitable[bytes]]


# --- one handler per transaction ------------------------------------------------------------


async def on_submit(node: ServerNode, payload: bytes, peer: str) -> bytes:
    """follower -> hub: a limited event, accepted in the hub's next group commit."""
    assert node.batcher is not None
    with node.metrics.submit():
        limited = LimitedEvent.decode(payload)
        log_context(room=limited.room_id)
        event = await node.batcher.submit(limited, peer)
    return event.encode()


async def on_deliver(node: ServerNode, payload: bytes, peer: str) -> bytes:
    """hub -> follower: a fully-formed event, checked completely before it is applied."""
    event = Event.decode(payload)
    log_context(room=event.room_id, event_id=event.event_id)
    async with node.peer_slot(peer):
        if node.follower.loaded(event.room_id):  # else: refused, or an invite (checked in a thread)
            await node.peer_keys.resolve(signers(event))
        await node.run_network(node.follower.receive, event, peer=peer)
    return b""


async def on_get_event(node: ServerNode, payload: bytes, peer: str) -> bytes:
    room_id, event_id = decode_get_event_request(payload)
    # hub and follower apply the same read and visibility rules (PROFILE.md section 6)
    if node.hub.is_hub_for(room_id):
        return (await node.run(node.hub.get_event, room_id, event_id, for_server=peer)).encode()
    # A follower with a partial history may fetch the event from the room's hub: on the
    # network threads, at most PEER_CONCURRENCY at once for the asking peer.
    async with node.peer_slot(peer):
        event = await node.run_network(node.follower.get_event, room_id, event_id, for_server=peer)
    return event.encode()


async def on_get_state(node: ServerNode, payload: bytes, peer: str) -> bytes:
    room_id, type_, state_key = decode_get_state_request(payload)
    require_hub(node, room_id)
    return (await node.run(node.hub.get_state, room_id, type_, state_key, for_server=peer)).encode()


async def on_backfill(node: ServerNode, payload: bytes, peer: str) -> bytes:
    room_id, before, limit = decode_backfill_request(payload)
    require_hub(node, room_id)
    events = await node.run(node.hub.backfill, room_id, before, limit, for_server=peer)
    return encode_backfill_response(events)


async def on_snapshot(node: ServerNode, payload: bytes, peer: str) -> bytes:
    room_id = decode_snapshot_request(payload)
    require_hub(node, room_id)
    events, chain, latest = await node.run(node.hub.snapshot, room_id, for_server=peer)
    return encode_snapshot_response(events, chain, latest)


async def on_keys(node: ServerNode, payload: bytes, peer: str) -> bytes:
    if payload:
        raise MalformedError("the keys transaction has an empty body")
    return node.keys.own_keys().encode()


#: The single transactions (the batch is ``handle_batch``); tests/core/test_api_drift.py checks
#: that with the batch they are exactly the core's TRANSACTION_TYPES.
HANDLERS: Dict[str, Handler] = {
    SUBMIT: on_submit,
    DELIVER: on_deliver,
    GET_EVENT: on_get_event,
    GET_STATE: on_get_state,
    BACKFILL: on_backfill,
    SNAPSHOT: on_snapshot,
    KEYS: on_keys,
}


def require_hub(node: ServerNode, room_id: str) -> None:
    if not node.hub.is_hub_for(room_id):
        raise NotHubError(f"{node.server_name} is not the hub of {room_id}")


def signers(event: Event) -> Dict[str, List[str]]:
    """``{server: key IDs}`` of the signatures an event carries (hub and origin)."""
    wanted: Dict[str, List[str]] = {}
    wanted.setdefault(event.hub_server, []).extend(s.key_id for s in event.hub_signature)
    wanted.setdefault(event.origin_server, []).extend(s.key_id for s in event.origin_signature)
    return wanted


# --- the batch transaction ------------------------------------------------------------------


async def handle_batch(node: ServerNode, entries: Sequence[Tuple[str, bytes]], peer: str) -> List[Union[bytes, MimiError]]:
    """The entries of a ``mimi.signaling.batch``, in order, each judged as if it had arrived
    alone (PROFILE.md section 7), but worked on together: a run of submits joins the hub's
    group commit as one chunk (one batch signature check, one transaction, answered after
    the commit), a run of deliveries is applied by the follower in one call; every other
    entry goes through ``node.handle``.  Per entry: the 200 body or the error."""
    node.metrics.transactions.labels(BATCH).inc()
    log_context(peer=peer)
    if peer != node.server_name and node.delivery is not None:
        node.delivery.peer_alive(peer)
    out: List[Union[bytes, MimiError, None]] = [None] * len(entries)
    start = 0
    while start < len(entries):
        kind = entries[start][0]
        end = start + 1
        while end < len(entries) and entries[end][0] == kind:
            end += 1
        if kind == SUBMIT:
            await _submit_run(node, entries, range(start, end), peer, out)
        elif kind == DELIVER:
            await _deliver_run(node, entries, range(start, end), peer, out)
        else:

            async def alone(transaction_type: str, payload: bytes, peer: str) -> Union[bytes, MimiError]:
                return await _handle_alone(node, transaction_type, payload, peer)

            answered = sum(len(a) for a in out[:start] if isinstance(a, bytes))
            out[start:end] = await answer_in_order(entries[start:end], alone, peer, answered)
        start = end
    return out  # type: ignore[return-value]


async def _handle_alone(node: ServerNode, transaction_type: str, payload: bytes, peer: str) -> Union[bytes, MimiError]:
    try:
        return await node.handle(transaction_type, payload, peer)
    except MimiError as exc:
        return exc
    except Exception as exc:  # one entry's bug answers that entry only
        log.exception("internal error in a batch entry %s from %s", transaction_type, peer)
        return InternalError(f"internal error: {exc}")


async def _submit_run(
    node: ServerNode, entries: Sequence[Tuple[str, bytes]], run: range, peer: str,
    out: List[Union[bytes, MimiError, None]],
) -> None:
    assert node.batcher is not None
    started = time.perf_counter()
    decoded: List[Tuple[int, LimitedEvent]] = []
    for i in run:
        try:
            decoded.append((i, LimitedEvent.decode(entries[i][1])))
        except MimiError as exc:
            out[i] = exc
    if decoded:
        results = await node.batcher.submit_many([lim for _, lim in decoded], peer)
        accepted: List[Tuple[int, Event]] = []
        for (i, _), result in zip(decoded, results):
            if isinstance(result, MimiError):
                out[i] = result
            else:
                accepted.append((i, result))
        for (i, _), data in zip(accepted, encode_events([event for _, event in accepted])):  # one call
            out[i] = data
    node.metrics.submitted([out[i] for i in run], time.perf_counter() - started)


async def _deliver_run(
    node: ServerNode, entries: Sequence[Tuple[str, bytes]], run: range, peer: str,
    out: List[Union[bytes, MimiError, None]],
) -> None:
    node.metrics.transactions.labels(DELIVER).inc(len(run))
    errors: Sequence[Optional[MimiError]]
    try:
        async with node.peer_slot(peer):  # a run may backfill or fetch keys: network threads
            errors = await node.run_network(node.follower.receive_many, [entries[i][1] for i in run], peer=peer)
    except MimiError as exc:
        errors = [exc] * len(run)
    for i, error in zip(run, errors):
        out[i] = b"" if error is None else error
