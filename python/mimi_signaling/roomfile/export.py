"""``export_room``: stream a room from an ``EventStore`` into a room file (a temporary file,
then an atomic rename)."""

from __future__ import annotations

import logging
import os
from typing import (
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from .._core import (
    InternalError,
    NotFoundError,
    ServerKeys,
    decode_events,
    parse_room_id,
    parse_user_id,
)
from ..node.keys import KeyStore
from ..node.store import EventStore
from .writer import RoomFileWriter

log = logging.getLogger(__name__)

EXPORT_BATCH = 4096

KeySource = Union[KeyStore, Iterable[ServerKeys], Mapping[str, ServerKeys], None]


def _keys_for_servers(store: EventStore, servers: Sequence[str], keys: KeySource) -> List[ServerKeys]:
    """One ``ServerKeys`` per server: from ``keys`` (a KeyStore: its own keys with the expired
    ones, its ring and cache; or given ServerKeys), else the store's server-key cache."""
    given: Dict[str, ServerKeys] = {}
    key_store: Optional[KeyStore] = None
    if isinstance(keys, KeyStore):
        key_store = keys
    elif isinstance(keys, Mapping):
        given = dict(keys)
    elif keys is not None:
        for sk in keys:
            if sk.server_name in given:  # several records of one server: merge their keys
                merged = {k.key_id: k for k in given[sk.server_name].keys}
                merged.update({k.key_id: k for k in sk.keys})
                given[sk.server_name] = ServerKeys(sk.server_name, list(merged.values()))
            else:
                given[sk.server_name] = sk
    out: List[ServerKeys] = []
    for server in servers:
        found: Optional[ServerKeys] = given.get(server)
        if found is None and key_store is not None:
            if server == key_store.server_name:
                found = key_store.own_keys()
            elif key_store.ring.has_server(server):
                found = ServerKeys(server, key_store.ring.get(server))
            elif key_store.fetch is not None:
                key_store.ensure([server])
                found = ServerKeys(server, key_store.ring.get(server))
        if found is None:
            cached = store.get_server_keys(server)
            if cached is not None:
                found = ServerKeys.decode(cached)
        if found is None:
            raise NotFoundError(
                f"no keys known for server {server}: the room file could not be verified without them"
            )
        out.append(found)
    return out


def export_room(
    store: EventStore,
    room_id: str,
    path: Union[str, "os.PathLike[str]"],
    keys: KeySource = None,
    *,
    batch: int = EXPORT_BATCH,
) -> int:
    """Write room ``room_id`` from ``store`` to the room file ``path``; return the event count.

    ``keys``: a ``KeyStore`` (the server's own keys, expired ones included, and its peers'),
    ``ServerKeys`` records (a sequence or a mapping by server name), or None; servers it
    does not cover come from the store's server-key cache.  Records: the keys of the hub and
    of every origin server in the room, then the events from the create event.  The events
    stored when the export starts are exported (a consistent prefix of a live room); a room
    with gaps (a follower's partial history) is refused with ``NotFoundError``.
    """
    latest = store.latest(room_id)
    if latest is None:
        raise NotFoundError(f"room {room_id} has no events in this store")
    end = latest[0] + 1
    gaps = store.gaps(room_id)
    if gaps:
        g = gaps[0]
        raise NotFoundError(
            f"room {room_id} has gaps (first: indices {g.start}..{g.end}); backfill it before exporting"
        )
    hub = parse_room_id(room_id)[1]

    # Pass 1: every origin server (the file must list their keys before the first event).
    servers: Dict[str, None] = {hub: None}
    expected = 0
    for chunk in _chunks(store, room_id, end, batch):
        for index, _ in chunk:
            if index != expected:
                raise NotFoundError(f"room {room_id}: event {expected} is missing from the store")
            expected += 1
        for event in decode_events([raw for _, raw in chunk]):
            servers.setdefault(parse_user_id(event.sender)[1], None)
    if expected != end:
        raise NotFoundError(f"room {room_id}: the store holds {expected} of {end} events")
    server_keys = _keys_for_servers(store, list(servers), keys)

    # Pass 2: write, then rename into place.
    with RoomFileWriter(path) as writer:
        for sk in server_keys:
            writer.write_server_keys(sk)
        for chunk in _chunks(store, room_id, end, batch):
            for _, raw in chunk:
                writer.write_event(raw)
        count = writer.events_written
    if count != end:  # the store changed under us in a way linearity forbids
        raise InternalError(f"room {room_id}: exported {count} events, expected {end}")
    log.info("exported room %s: %d events, keys of %s", room_id, count, ", ".join(servers))
    return count


def _chunks(store: EventStore, room_id: str, end: int, batch: int) -> Iterable[List[Tuple[int, bytes]]]:
    chunk: List[Tuple[int, bytes]] = []
    for row in store.iter_events(room_id, 0, end, batch=batch):
        chunk.append(row)
        if len(chunk) >= batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


