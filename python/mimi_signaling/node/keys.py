"""Server keys (PROFILE.md section 8): this server's own keys and the cached keys of peers.

A ``KeyStore`` owns the ``KeyRing`` every signature check uses.  Peers' ``ServerKeys`` are
persisted in the event store so that old events still verify after a restart, and missing
servers are fetched through an optional ``fetch`` callable (the transport's keys
transaction).  Expired keys stay listed: events carry no timestamp, so an event signed with a
key that has since been rotated out must still verify.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable, List, Optional

from .._core import BadSignatureError, InternalError, KeyRing, MimiError, ServerKeys, SigningKey, VerifyKey
from .store import EventStore

log = logging.getLogger(__name__)

#: Fetch a peer's ``ServerKeys`` (e.g. over the network); raise ``MimiError`` on failure.
KeyFetcher = Callable[[str], ServerKeys]


class KeyStore:
    def __init__(
        self,
        server_name: str,
        signing_key: SigningKey,
        store: EventStore,
        *,
        expired: Iterable[VerifyKey] = (),
        fetch: Optional[KeyFetcher] = None,
    ) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.store = store
        self.fetch = fetch
        self._expired: List[VerifyKey] = list(expired)
        self._lock = threading.Lock()
        #: Replaced, never mutated, when keys are added: other threads may be verifying with
        #: the current ring (with the GIL released) while a key arrives.
        self.ring = KeyRing()
        self._install_own()

    def _install_own(self) -> None:
        ring = self.ring.copy()
        for key in self.own_keys().keys:
            ring.add(self.server_name, key)
        self.ring = ring

    def _install(self, keys: ServerKeys) -> None:
        """Copy-on-write: a new ring with ``keys`` added replaces the current one."""
        ring = self.ring.copy()
        ring.add_server_keys(keys)
        self.ring = ring

    def own_keys(self) -> ServerKeys:
        """What the keys transaction serves: the current key and every expired one."""
        current = self.signing_key.verify_key()
        expired = [k for k in self._expired if k.key_id != current.key_id]
        return ServerKeys(self.server_name, [current, *expired])

    def rotate(self, new_key: SigningKey) -> None:
        """Start signing with ``new_key``; the old key stays published as expired."""
        with self._lock:
            old = self.signing_key.verify_key(expired_ts=int(time.time() * 1000))
            self._expired = [k for k in self._expired if k.key_id != old.key_id] + [old]
            self.signing_key = new_key
            self._install_own()
        log.info("rotated signing key of %s: %s -> %s", self.server_name, old.key_id, new_key.key_id)

    @property
    def expired_keys(self) -> List[VerifyKey]:
        return list(self._expired)

    def add_server_keys(self, keys: ServerKeys) -> None:
        """Install (and persist) a peer's keys, e.g. from a room file or the keys transaction."""
        if keys.server_name == self.server_name:
            return
        with self._lock:
            self._install(keys)
            self.store.put_server_keys(keys.server_name, keys.encode())

    def ensure(self, servers: Iterable[str]) -> KeyRing:
        """The key ring, with every server in ``servers`` present (loaded or fetched)."""
        for server in set(servers):
            if self.ring.has_server(server):
                continue
            cached = self.store.get_server_keys(server)
            if cached is not None:
                with self._lock:
                    self._install(ServerKeys.decode(cached))
                continue
            if self.fetch is None:
                raise BadSignatureError(f"no keys known for server {server}")
            try:
                keys = self.fetch(server)
            except MimiError:
                raise
            except Exception as exc:
                # The peer is unreachable: no verdict yet. `internal` is retried by the sender
                # (a fan-out queue keeps the event), where bad_signature would be final.
                raise InternalError(f"could not fetch the keys of {server}: {exc}") from exc
            if keys.server_name != server:
                raise BadSignatureError(f"{server} answered with the keys of {keys.server_name}")
            self.add_server_keys(keys)
            log.info("fetched %d keys of %s", len(keys.keys), server)
        return self.ring

    def verify_all(self, events: Iterable, servers_of) -> None:
        """``event.verify`` for each event; when one fails under the keys we hold, re-fetch the
        keys of the servers that signed it (once each) and check again: the hub or an origin
        may have rotated its key since we cached its keys."""
        events = list(events)
        ring = self.ensure({s for e in events for s in servers_of(e)})
        refreshed: set = set()
        for event in events:
            try:
                event.verify(ring)
            except BadSignatureError:
                stale = set(servers_of(event)) - refreshed - {self.server_name}
                if not stale:
                    raise
                refreshed |= stale
                for server in sorted(stale):
                    self.refresh(server)
                # Check again whatever refresh() found: another thread may have installed the
                # new key between our failed check and our own fetch.
                ring = self.ring
                event.verify(ring)

    def refresh(self, server: str) -> bool:
        """Re-fetch a peer's keys (after a signature by an unknown key ID); True if it changed."""
        if self.fetch is None or server == self.server_name:
            return False
        try:
            keys = self.fetch(server)
        except Exception as exc:
            log.warning("refreshing the keys of %s failed: %s", server, exc)
            return False
        before = {k.key_id for k in self.ring.get(server)}
        self.add_server_keys(keys)
        return {k.key_id for k in keys.keys} - before != set()
