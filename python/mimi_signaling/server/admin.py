"""The local administration API (``mimi.local.*``, JSON bodies): what the ``mimi`` CLI on the
server's own machine asks of it.  Only the server itself may call it: the TLS peer must
present this server's own certificate.  ``LOCAL_API`` is the whole API, one entry per request;
``LocalClient`` is its client.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from .._core import (
    Event,
    InternalError,
    MalformedError,
    MimiError,
    UserContent,
)
from ..config import Config
from ..node.keyfile import rotate_signing_key
from ..content import Participation, decode_content
from ..transport.client import SignalingClient

if TYPE_CHECKING:
    from .node import ServerNode

LOCAL_PREFIX = "mimi.local."

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



async def handle_local(node: ServerNode, name: str, payload: bytes) -> bytes:
    """One local request: its JSON arguments to its entry of ``LOCAL_API``, on the network
    threads (a send may go to a remote hub); the JSON result."""
    try:
        args = json.loads(payload.decode() or "{}")
    except ValueError as exc:
        raise MalformedError(f"local request body is not JSON: {exc}") from exc
    handler = LOCAL_API.get(name)
    if handler is None:
        raise MalformedError(f"unknown local request {name!r}")
    result = await node.run_network(handler, node, **args)
    return json.dumps(result).encode()

def create_room(node: ServerNode, creator: str, room_id: Optional[str] = None, join_rule: Optional[str] = None,
                       name: Optional[str] = None) -> Dict[str, Any]:
    from .._core import JoinRulesContent, TextContent
    from ..content import JoinRule

    initial = []
    if join_rule:
        initial.append(("m.room.join_rules", "", JoinRulesContent(JoinRule[join_rule.upper()]).encode()))
    if name:
        initial.append(("m.room.name", "", TextContent(name.encode()).encode()))
    events = node.hub.create_room(creator, room_id=room_id, initial_state=initial)
    if node.delivery is not None:
        node.delivery.wake()
    return {"room_id": events[0].room_id, "events": [event_summary(e) for e in events]}


def send(node: ServerNode, room_id: str, sender: str, type: str, content_hex: str = "", text: Optional[str] = None,
                state_key: Optional[str] = None) -> Dict[str, Any]:
    content = text.encode() if text is not None else bytes.fromhex(content_hex)
    return event_summary(node.submit_local(room_id, sender, type, state_key, content))


def send_many(node: ServerNode, room_id: str, sender: str, type: str = "m.room.encrypted",
                     texts: Optional[List[str]] = None, contents_hex: Optional[List[str]] = None) -> Dict[str, Any]:
    contents = [t.encode() for t in texts] if texts is not None else [bytes.fromhex(h) for h in contents_hex or []]
    if not contents:
        raise MalformedError("send_many needs texts or contents_hex")
    accepted: List[str] = []
    refused: List[Dict[str, Any]] = []
    for i, result in enumerate(node.submit_local_many(room_id, sender, type, contents)):
        if isinstance(result, MimiError):
            refused.append({"index": i, "error": result.name, "message": str(result)})
        else:
            accepted.append(result.event_id)
    return {"accepted": accepted, "refused": refused}


def membership(node: ServerNode, room_id: str, sender: str, target: str, participation: str,
                      reason: str = "") -> Dict[str, Any]:
    try:
        value = PARTICIPATION_NAMES[participation]
    except KeyError:
        raise MalformedError(f"participation must be one of {sorted(PARTICIPATION_NAMES)}") from None
    content = UserContent(value, reason.encode()).encode()
    return event_summary(node.submit_local(room_id, sender, "m.room.user", target, content))


def state(node: ServerNode, room_id: str) -> List[Dict[str, Any]]:
    state = node.room_state(room_id)
    return [event_summary(e) for e in state.events()]


def history(node: ServerNode, room_id: str, limit: int = 50, before: Optional[str] = None) -> List[Dict[str, Any]]:
    """The latest ``limit`` events held, or the ``limit`` events preceding ``before``
    (a follower with a partial history fetches from the hub what it no longer holds).
    Indices of a partial history are local positions (``node/partial.py``)."""
    if before is not None:
        if node.hub.is_hub_for(room_id):
            events = node.hub.backfill(room_id, before, limit)
            first = node.store.index_of(room_id, before)
            assert first is not None
            return [event_summary(e, first - 1 - i) for i, e in enumerate(events)][::-1]
        return [event_summary(e, i) for i, e in node.follower.history_before(room_id, before, limit)]
    latest = node.store.latest(room_id)
    if latest is None:
        return []
    start = max(0, latest[0] + 1 - limit)
    return [event_summary(Event.decode(raw), i) for i, raw in node.store.iter_events(room_id, start=start)]


def rooms(node: ServerNode) -> List[Dict[str, Any]]:
    out = []
    for room_id in node.store.rooms():
        role = node.store.room_role(room_id)
        if role == "follower" and node.follower.is_partial(room_id):
            # A partial history's indices are local positions: count what is held.
            out.append({"room_id": room_id, "role": role, "events": node.store.count(room_id),
                        "history": "recent", "kept": len(node.store.kept_events(room_id)),
                        "verified": node.follower.partial.verification.get(room_id, "not checked")})
            continue
        latest = node.store.latest(room_id)
        out.append({"room_id": room_id, "role": role, "events": (latest[0] + 1) if latest else 0})
    return out


def status(node: ServerNode) -> Dict[str, Any]:
    queues = {d: node.store.queue_length(d) for d in node.store.destinations_with_pending()}
    partial = node.follower.partial
    return {"server_name": node.server_name, "port": node.port, "rooms": rooms(node), "queues": queues,
            "key_id": node.keys.signing_key.key_id, "delivery": delivery_stats(node),
            "pending_invites": len(node.follower.invites),
            "follower": {"history": node.follower.history, "keep_recent": partial.keep_recent,
                         "pruned": partial.pruned, "fetched_on_demand": partial.fetched}}


def delivery_stats(node: ServerNode) -> Dict[str, Any]:
    """Fan-out counters since this process started: events delivered, events a destination
    refused with a verdict (dropped from its queue), acks written (one per batch of
    delivered events), batch requests answered, consecutive failed attempts by
    destination (the destination down, or answering rate_limited/internal), the peers that
    get single requests for now (they refused a batch: deliveries, and submits to a hub), and
    whether this server batches at all (``http.batches``)."""
    d = node.delivery
    batching = node.config.http.batches
    if d is None:
        return {"delivered": 0, "rejected": 0, "acks": 0, "batches": 0, "failing": {}, "singles": [],
                "batching": batching}
    return {"delivered": d.delivered, "rejected": d.rejected, "acks": d.acks, "batches": d.batches,
            "failing": {k: v for k, v in d.failures.items() if v}, "singles": sorted(d.singles_until),
            "batching": batching}


def destinations(node: ServerNode) -> List[Dict[str, Any]]:
    from dataclasses import asdict

    from ..ops.status import destination_rows

    return [asdict(row) for row in destination_rows(node, time.time())]


def destinations_reset(node: ServerNode, name: str) -> Dict[str, Any]:
    """End ``name``'s delivery backoff now: its queue is retried at once."""
    if node.delivery is None:
        raise InternalError("the fan-out worker is not running")
    return {"destination": name, "was_backing_off": node.delivery.reset_backoff(name)}


def sync(node: ServerNode, room_id: str) -> Dict[str, Any]:
    return {"fetched": node.sync_room(room_id)}


def rotate_key(node: ServerNode) -> Dict[str, Any]:
    """Start signing with a fresh key; the old one stays published as expired
    (``node/keyfile.py``: the crash-safe order)."""
    old_key_id, new_key_id = rotate_signing_key(node.keys, node.store, Path(node.config.signing_key))
    return {"old_key_id": old_key_id, "new_key_id": new_key_id}



#: The local API: request name -> handler (``mimi.local.NAME``).
LOCAL_API: Dict[str, Callable[..., Any]] = {
    "create_room": create_room,
    "send": send,
    "send_many": send_many,
    "membership": membership,
    "state": state,
    "history": history,
    "rooms": rooms,
    "status": status,
    "rotate_key": rotate_key,
    "sync": sync,
    "destinations": destinations,
    "destinations_reset": destinations_reset,
}
LOCAL_TYPES = [LOCAL_PREFIX + name for name in LOCAL_API]


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
