"""Key substitution (issue 11, finding 1): a peer asked for its own keys answers with keys of
its making named for another server, or the answer comes from a TLS peer that is not the
server asked.  Fake peers (``peerkit.FakePeer``) over real mutual TLS against real ``mimi
serve`` processes: the hub refuses the answer with a typed error, logs a warning naming the
peer and the servers, stores no key, and the room still verifies; the others are served."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster
from mimi_signaling.server.federation import KEYS, SUBMIT

from support.e2ekit import ALPHA, BETA, BOB, HUB, MESSAGE, envelope, export_and_verify, wait_same_history
from support.peerkit import FakePeer, log_lines, stored_keys
from support.relkit import nothing_stored, record

pytestmark = pytest.mark.timeout(120)

EVERYONE = [HUB, ALPHA, BETA]


def message(room: str, server: str, text: str, key: ms.SigningKey) -> ms.LimitedEvent:
    return ms.LimitedEvent.create(room, MESSAGE, None, f"@user:{server}", text.encode(), key)


def keys_named(name: str, key: ms.SigningKey):
    async def answer(payload: bytes, peer: str) -> bytes:
        return ms.ServerKeys(name, [key.verify_key()]).encode()

    return answer


def honest_still_served(cluster: Cluster, room: str, tmp_path: Path, text: str) -> None:
    """Bob (alpha) sends through the hub; every server gets it; the hub's export verifies."""
    cluster[ALPHA].call("send", room_id=room, sender=BOB, type=MESSAGE, text=text)
    wait_same_history(cluster, room, [ALPHA, BETA])
    export_and_verify(cluster[HUB], room, tmp_path / "room.mimiroom")


def test_a_key_planted_through_a_refresh_is_refused(peered: tuple, peered_room: str, tmp_path: Path) -> None:
    cluster, fakes = peered
    room = peered_room
    mallory: FakePeer = fakes["planter"]
    # Honest first: the hub fetches and keeps mallory's keys (the submit itself is refused by
    # the policy: mallory's user is not in the room).
    primed = mallory.client.refused(HUB, envelope(SUBMIT, message(room, mallory.name, "hello", mallory.signing_key).encode()))
    assert primed.code == ms.PolicyRejectedError.code, primed
    before: Dict[str, bytes] = {s: stored_keys(cluster, HUB, s) for s in (ALPHA, mallory.name)}
    assert before[mallory.name] is not None and before[ALPHA] is not None

    # Then a submit under a key ID the hub has not seen: the hub refreshes mallory's keys, and
    # mallory answers with a key of its own named for alpha.test.
    planted = ms.SigningKey.generate("ed25519:planted")
    mallory.answers[KEYS] = keys_named(ALPHA, planted)
    asked = mallory.asked(KEYS)
    with nothing_stored(cluster, EVERYONE, room):
        got = mallory.client.refused(HUB, envelope(SUBMIT, message(room, mallory.name, "rotated?", planted).encode()))
        assert (got.code, got.status) == (ms.BadSignatureError.code, 400), got
        assert mallory.asked(KEYS) == asked + 1, "the hub did not try the refresh this test is about"
        # Bob's words signed with the planted key, delivered by mallory as if it were the hub
        # of a room of its own: still no key of alpha's but alpha's own.
        forged = ms.LimitedEvent.create(f"!forged:{mallory.name}", MESSAGE, None, BOB, b"never said", planted)
        event = forged.to_event([], "", mallory.signing_key)
        refused = mallory.client.refused(HUB, envelope("mimi.signaling.deliver", event.encode()))
        assert refused.status in (400, 401, 404), refused
    assert {s: stored_keys(cluster, HUB, s) for s in before} == before, "a planted key was stored"
    assert log_lines(cluster, HUB, "WARNING", "refused keys named alpha.test", mallory.name)
    honest_still_served(cluster, room, tmp_path, "after the planting attempt")
    record("hostile: key planted through a refresh", refused="bad_signature (2), HTTP 400", keys_stored=0,
           logged="warning naming the peer and both server names")


def test_keys_named_for_another_server_are_refused(peered: tuple, peered_room: str, tmp_path: Path) -> None:
    cluster, fakes = peered
    room = peered_room
    eve: FakePeer = fakes["namer"]
    eve.answers[KEYS] = keys_named(BETA, eve.signing_key)
    beta_keys = stored_keys(cluster, HUB, BETA)
    with nothing_stored(cluster, EVERYONE, room):
        got = eve.client.refused(HUB, envelope(SUBMIT, message(room, eve.name, "i am eve", eve.signing_key).encode()))
        assert (got.code, got.status) == (ms.UnauthorizedError.code, 401), got
    assert eve.asked(KEYS) >= 1
    assert stored_keys(cluster, HUB, eve.name) is None
    assert stored_keys(cluster, HUB, BETA) == beta_keys
    assert log_lines(cluster, HUB, "WARNING", "refused keys named beta.test", eve.name)
    honest_still_served(cluster, room, tmp_path, "after eve's keys")
    record("hostile: keys named for another server", refused="unauthorized (10), HTTP 401", keys_stored=0)


def test_keys_from_a_tls_peer_that_is_not_the_server_are_refused(peered: tuple, peered_room: str,
                                                                  tmp_path: Path) -> None:
    """trent.test's address answers with a certificate of eve.test: the TLS layer refuses it
    (the certificate must name the server asked), the keys are never read."""
    cluster, fakes = peered
    room = peered_room
    trent: FakePeer = fakes["impostor"]
    with nothing_stored(cluster, EVERYONE, room):
        got = trent.client.refused(HUB, envelope(SUBMIT, message(room, trent.name, "i am trent", trent.signing_key).encode()))
        assert (got.code, got.status) == (ms.InternalError.code, 500), got
    assert trent.asked(KEYS) == 0, "the keys request was answered over a connection to the wrong server"
    assert stored_keys(cluster, HUB, trent.name) is None
    assert log_lines(cluster, HUB, "WARNING", trent.name, "does not verify")
    honest_still_served(cluster, room, tmp_path, "after trent's impostor")
    record("hostile: keys from a TLS peer that is not the server", refused="internal (12), HTTP 500, retried later",
           keys_stored=0)
