"""Server keys (PROFILE.md section 8): this server's own keys and the cached keys of peers.

A ``KeyStore`` owns the ``KeyRing`` every signature check uses.  Peers' ``ServerKeys`` are
persisted in the event store so that old events still verify after a restart, and missing
servers are fetched through an optional ``fetch`` callable (the transport's keys
transaction).  Expired keys stay listed: events carry no timestamp, so an event signed with a
key that has since been rotated out must still verify.

Keys are learned only from the server they belong to (``learn``): a fetched ``ServerKeys``
must name the server asked for and have come over a TLS connection whose verified peer
certificate names that server.  Anything else is refused with ``UnauthorizedError``, logged
as a warning, and changes nothing: otherwise a peer asked for its own keys could answer with
keys it made for another server and forge that server's events from then on.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable, List, NamedTuple, Optional, Sequence, Set

from .._core import (
    BadSignatureError,
    Event,
    InternalError,
    KeyRing,
    MimiError,
    ServerKeys,
    SigningKey,
    UnauthorizedError,
    VerifyKey,
)
from ..transport.tls import peer_matches_server
from .store import EventStore

log = logging.getLogger(__name__)


class FetchedKeys(NamedTuple):
    """A keys answer and who sent it: the server names of the TLS peer's verified certificate."""

    keys: ServerKeys
    peer_names: Sequence[str]


#: Fetch a peer's keys (e.g. over the network); raise ``MimiError`` on failure.
KeyFetcher = Callable[[str], FetchedKeys]


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
        #: Replaced when keys are added (a ``KeyRing`` is immutable): other threads may be
        #: verifying with the current ring (with the GIL released) while a key arrives.
        self.ring = KeyRing()
        self._install_own()

    def _install_own(self) -> None:
        self.ring = self.ring.with_server_keys(self.own_keys())

    def _install(self, keys: ServerKeys) -> None:
        """A new ring with ``keys`` added replaces the current one."""
        self.ring = self.ring.with_server_keys(keys)

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

    def load_cached(self, server: str) -> bool:
        """Install ``server``'s keys from the store if they are not in the ring; True when the
        ring has them now."""
        if self.ring.has_server(server):
            return True
        cached = self.store.get_server_keys(server)
        if cached is None:
            return False
        with self._lock:
            self._install(ServerKeys.decode(cached))
        return True

    def ensure(self, servers: Iterable[str], *, fetch: bool = True) -> KeyRing:
        """The key ring, with every server in ``servers`` present (loaded or fetched).
        ``fetch=False``: from the ring and the store only, never the network (a hub's accept
        group, whose keys were resolved before it started)."""
        for server in set(servers):
            if self.load_cached(server):
                continue
            if not fetch:
                raise InternalError(f"the keys of {server} are not available yet")
            if self.fetch is None:
                raise BadSignatureError(f"no keys known for server {server}")
            try:
                fetched = self.fetch(server)
            except MimiError:
                raise
            except Exception as exc:
                # The peer is unreachable (or its certificate does not name it): no verdict
                # yet. `internal` is retried by the sender (a fan-out queue keeps the event),
                # where bad_signature would be final.
                log.warning("could not fetch the keys of %s: %s", server, exc)
                raise InternalError(f"could not fetch the keys of {server}: {exc}") from exc
            self.learn(server, fetched)
        return self.ring

    def learn(self, server: str, fetched: FetchedKeys) -> bool:
        """Install keys fetched from ``server``; True if they added a key ID.

        Raises ``UnauthorizedError`` (logged, nothing installed) unless the answer names
        ``server`` and came from a TLS peer whose verified certificate names ``server``."""
        keys, peers = fetched.keys, list(fetched.peer_names)
        if server == self.server_name:
            raise UnauthorizedError(f"{self.server_name} does not learn its own keys from the network")
        if not any(peer_matches_server(peer, server) for peer in peers):
            log.warning("refused keys for %s: the TLS peer that answered is %s, not %s", server, peers, server)
            raise UnauthorizedError(f"the keys of {server} came from {peers}, not from {server}")
        if keys.server_name != server:
            log.warning("refused keys named %s that the TLS peer %s sent when asked for those of %s",
                        keys.server_name, peers, server)
            raise UnauthorizedError(f"{server} answered with keys named {keys.server_name}")
        before = {k.key_id for k in self.ring.get(server)}
        self.add_server_keys(keys)
        added = {k.key_id for k in keys.keys} - before
        log.info("fetched %d keys of %s (%d new)", len(keys.keys), server, len(added))
        return bool(added)

    def verify_all(self, events: Iterable[Event], servers_of: Callable[[Event], Iterable[str]]) -> None:
        """``event.verify`` for each event; when one fails under the keys we hold, re-fetch the
        keys of the servers that signed it (once each) and check again: the hub or an origin
        may have rotated its key since we cached its keys."""
        events = list(events)
        ring = self.ensure({s for e in events for s in servers_of(e)})
        refreshed: Set[str] = set()
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
            return self.learn(server, self.fetch(server))
        except Exception as exc:  # noqa: BLE001 - the check fails under the keys we hold
            log.warning("refreshing the keys of %s failed: %s", server, exc)
            return False
