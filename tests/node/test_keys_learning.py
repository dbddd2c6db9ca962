"""``KeyStore`` learns a server's keys only from that server: every way a fetched answer can
be wrong is refused with ``UnauthorizedError``, logged, and installs and stores nothing —
through ``ensure`` (first fetch), ``refresh`` (re-fetch after an unknown key ID) and
``verify_all`` (the follower's check, which refreshes)."""

from __future__ import annotations

import logging
from typing import Callable, List

import pytest

import mimi_signaling as ms
from mimi_signaling.node.keys import FetchedKeys, KeyStore

OWN, ALPHA, MALLORY = "hub.test", "alpha.test", "mallory.test"

alpha_key = ms.SigningKey.generate("ed25519:alpha")
mallory_key = ms.SigningKey.generate("ed25519:mallory")
planted = ms.SigningKey.generate("ed25519:planted")


def keys(name: str, *signing: ms.SigningKey) -> ms.ServerKeys:
    return ms.ServerKeys(name, [k.verify_key() for k in signing])


def store_with(sqlite_store, fetch: Callable[[str], FetchedKeys]) -> KeyStore:
    store = KeyStore(OWN, ms.SigningKey.generate("ed25519:own"), sqlite_store, fetch=fetch)
    store.add_server_keys(keys(ALPHA, alpha_key))
    return store


WRONG: List[tuple] = [
    ("keys named for another server", lambda asked: FetchedKeys(keys(ALPHA, planted), [asked])),
    ("the right name, from a TLS peer that is another server", lambda asked: FetchedKeys(keys(asked, planted), [ALPHA])),
    ("the right name, from a TLS peer without a certificate name", lambda asked: FetchedKeys(keys(asked, planted), [])),
    ("keys named for the asking server itself", lambda asked: FetchedKeys(keys(OWN, planted), [asked])),
]


def snapshot(store: KeyStore) -> tuple:
    return tuple(tuple(k.key_id for k in store.ring.get(s)) for s in (ALPHA, MALLORY, OWN)), \
        tuple(store.store.get_server_keys(s) for s in (ALPHA, MALLORY, OWN))


@pytest.mark.parametrize("what,answer", WRONG, ids=[w for w, _ in WRONG])
def test_first_fetch_refuses_a_wrong_answer(sqlite_store, caplog, what, answer) -> None:
    store = store_with(sqlite_store, answer)
    before = snapshot(store)
    with caplog.at_level(logging.WARNING, logger="mimi_signaling.node.keys"):
        with pytest.raises(ms.UnauthorizedError):
            store.ensure([MALLORY])
    assert snapshot(store) == before, what
    assert any(MALLORY in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("what,answer", WRONG, ids=[w for w, _ in WRONG])
def test_refresh_plants_nothing(sqlite_store, caplog, what, answer) -> None:
    honest = True

    def fetch(asked: str) -> FetchedKeys:
        if asked == ALPHA:  # alpha itself answers honestly
            return FetchedKeys(keys(ALPHA, alpha_key), [ALPHA])
        return FetchedKeys(keys(asked, mallory_key), [asked]) if honest else answer(asked)

    store = store_with(sqlite_store, fetch)
    store.ensure([MALLORY])
    assert [k.key_id for k in store.ring.get(MALLORY)] == ["ed25519:mallory"]
    before = snapshot(store)
    honest = False
    with caplog.at_level(logging.WARNING, logger="mimi_signaling.node.keys"):
        assert store.refresh(MALLORY) is False
    assert snapshot(store) == before, what
    assert any(r.levelno == logging.WARNING for r in caplog.records)

    # verify_all refreshes on a bad signature: an event signed with the planted key still fails.
    event = ms.LimitedEvent.create(f"!r:{MALLORY}", "m.room.encrypted", None, f"@bob:{ALPHA}", b"forged", planted) \
        .to_event([], "", mallory_key)
    with pytest.raises(ms.BadSignatureError):
        store.verify_all([event], lambda e: (e.hub_server, e.origin_server))
    assert snapshot(store) == before, what


def test_an_honest_rotation_is_learned(sqlite_store) -> None:
    rotated = ms.SigningKey.generate("ed25519:rotated")
    answer = [mallory_key]
    store = store_with(sqlite_store, lambda asked: FetchedKeys(keys(asked, *answer), [asked]))
    store.ensure([MALLORY])
    answer.append(rotated)
    assert store.refresh(MALLORY) is True
    assert {k.key_id for k in store.ring.get(MALLORY)} == {"ed25519:mallory", "ed25519:rotated"}
    assert ms.ServerKeys.decode(sqlite_store.get_server_keys(MALLORY)).server_name == MALLORY
