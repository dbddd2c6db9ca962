"""The reduced form of a failure seen with real server processes: a server verifies events
in its worker threads (deliveries, submits) while another worker installs keys it has just
fetched (a peer's first event, a rotated key).  Both use the one ``KeyRing`` of the server's
``KeyStore``; installing keys while a verification holds the ring must neither fail nor
make the verification fail.  (In a server process the failure surfaces as an ``internal``
error answer to a request that should have succeeded: ``RuntimeError: Already borrowed``
from ``KeyStore.add_server_keys``.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import List

import pytest

import mimi_signaling as ms
from mimi_signaling.node.keys import KeyStore
from mimi_signaling.storage import open_store

DURATION = 2.0  # seconds each thread keeps going (it stops at its first error)


@pytest.mark.timeout(60)
def test_keys_installed_while_other_threads_verify(tmp_path: Path) -> None:
    own = ms.SigningKey.generate()
    peer = ms.SigningKey.generate()
    with open_store(f"sqlite:///{tmp_path}/keys.db") as store:
        keys = KeyStore("hub.test", own, store)
        keys.add_server_keys(ms.ServerKeys("alpha.test", [peer.verify_key()]))
        limited = [
            ms.LimitedEvent.create("!room:hub.test", "m.room.encrypted", None, "@bob:alpha.test", b"%d" % i, peer)
            for i in range(64)
        ]
        event = limited[0].to_event([], "$" + "A" * 43, own)
        errors: List[BaseException] = []
        stop = time.monotonic() + DURATION

        def verify_one_by_one() -> None:
            while time.monotonic() < stop and not errors:
                try:
                    event.verify(keys.ring)
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

        def verify_in_batches() -> None:
            while time.monotonic() < stop and not errors:
                try:
                    verdicts = ms.verify_limited_events(limited, keys.ring)
                    assert all(v is None for v in verdicts), verdicts[:1]
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

        def install_keys() -> None:
            n = 0
            while time.monotonic() < stop and not errors:
                try:
                    keys.add_server_keys(ms.ServerKeys(f"peer{n % 50}.test", [ms.SigningKey.generate().verify_key()]))
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                n += 1

        threads = [threading.Thread(target=f, daemon=True) for f in (verify_one_by_one, verify_in_batches, install_keys)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DURATION + 30)
        assert not any(t.is_alive() for t in threads)
        assert not errors, f"{type(errors[0]).__name__}: {errors[0]}"
