"""Hostile servers submitting to a real hub process over mutual TLS: acting for users of
another server, replaying accepted events, and presenting certificates the hub must not
trust.  Each attempt gets its code and changes nothing stored (events per room, fan-out
queues and event IDs on every server).  What ``tests/e2e/test_e2e_refusals.py`` covers
(malformed envelopes, bad signatures, tampered content, a follower submitting another
follower's genuinely signed event, the local API from outside) is not repeated here."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import List

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster
from mimi_signaling.transport.tls import client_ssl_context, issue_server_cert, make_ca, ssl_hostname
from mimi_signaling.server.federation import SUBMIT

from support.e2ekit import ALICE, ALPHA, BETA, BOB, CAROL, HUB, MESSAGE, envelope, event_ids, key_of, wait_same_history
from support.relkit import HostileClient, nothing_stored, record

pytestmark = pytest.mark.timeout(120)

EVERYONE = [HUB, ALPHA, BETA]


def message(room: str, sender: str, text: str, key: ms.SigningKey) -> ms.LimitedEvent:
    return ms.LimitedEvent.create(room, MESSAGE, None, sender, text.encode(), key)


def leave(room: str, user: str, key: ms.SigningKey) -> ms.LimitedEvent:
    return ms.LimitedEvent.create(room, "m.room.user", user, user, ms.UserContent(2, b"").encode(), key)


def test_submits_for_users_of_other_servers(hostile: Cluster, hostile_room: str, tmp_path: Path) -> None:
    room = hostile_room
    as_alpha = HostileClient(hostile, ALPHA, tmp_path)
    # A server of the federation (its certificate is from the same CA) with no user in the room.
    as_evil = HostileClient(hostile, "evil.test", tmp_path)
    alpha_key, beta_key, hub_key = (key_of(hostile, s) for s in (ALPHA, BETA, HUB))
    attempts = [
        ("alpha sends as the hub's own user, signed by alpha", as_alpha, message(room, ALICE, "i am alice", alpha_key)),
        ("alpha relays a message of the hub's user the hub itself signed", as_alpha,
         message(room, ALICE, "stolen from alice", hub_key)),
        ("alpha makes carol (beta) leave, signed by alpha", as_alpha, leave(room, CAROL, alpha_key)),
        ("alpha relays carol's own signed leave", as_alpha, leave(room, CAROL, beta_key)),
        ("evil.test relays bob's signed message", as_evil, message(room, BOB, "bob's words", alpha_key)),
        ("evil.test relays the hub user's signed message", as_evil, message(room, ALICE, "alice's words", hub_key)),
    ]
    with nothing_stored(hostile, EVERYONE, room):
        for what, client, limited in attempts:
            got = client.refused(HUB, envelope(SUBMIT, limited.encode()))
            assert (got.code, got.status) == (ms.UnauthorizedError.code, 401), f"{what}: {got}"
        # A server's own API will not send for a user of another server either.
        with pytest.raises(ms.UnauthorizedError):
            hostile[ALPHA].call("send", room_id=room, sender=CAROL, type=MESSAGE, text="alpha for carol")
    record("hostile: submits for another server's user", attempts=len(attempts) + 1, refused=len(attempts) + 1,
           code="unauthorized (10), HTTP 401", stored=0)


def test_certificates_the_hub_does_not_trust(hostile: Cluster, hostile_room: str, tmp_path: Path) -> None:
    """A certificate naming alpha.test from another CA, and no certificate at all: the TLS
    handshake fails, no request reaches the server."""
    ca_dir = hostile.directory / "ca"
    rogue_ca = make_ca(tmp_path / "rogue-ca")
    cert, key = issue_server_cert(rogue_ca, ALPHA, tmp_path / "rogue-alpha")
    impostor = client_ssl_context(cert, key, ca_dir / "ca.pem")
    anonymous = ssl.create_default_context(cafile=str(ca_dir / "ca.pem"))
    body = envelope(SUBMIT, message(hostile_room, BOB, "from a rogue alpha", key_of(hostile, ALPHA)).encode())
    port = hostile[HUB].config.listen_port

    async def attempt(context: ssl.SSLContext) -> bytes:
        """POST the submit; return whatever HTTP answer comes back (b"" when none)."""
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                           server_hostname=ssl_hostname(HUB))
        except (ssl.SSLError, ConnectionError):
            return b""
        try:
            head = HostileClient.request_head(HUB, {"Content-Type": "application/octet-stream",
                                                    "Content-Length": str(len(body))})
            writer.write(head + body)
            await writer.drain()
            return await reader.read()
        except (ssl.SSLError, ConnectionError):
            return b""
        finally:
            writer.close()

    with nothing_stored(hostile, EVERYONE, hostile_room):
        for context in (impostor, anonymous):
            answer = asyncio.run(asyncio.wait_for(attempt(context), 30))
            assert not answer.startswith(b"HTTP/"), answer[:200]
    record("hostile: untrusted certificates", attempts=2, refused=2, code="TLS handshake refused", stored=0)


def _submit(client: HostileClient, limited: ms.LimitedEvent) -> ms.Event:
    return ms.Event.decode(client.request(HUB, SUBMIT, limited.encode()))


def test_replayed_submits_store_nothing(hostile: Cluster, hostile_room: str, tmp_path: Path) -> None:
    room = hostile_room
    as_alpha = HostileClient(hostile, ALPHA, tmp_path)
    alpha_key = key_of(hostile, ALPHA)

    # One new message, submitted 8 times at once: one event, every answer that event.
    fresh = message(room, BOB, "sent eight times at once", alpha_key)
    before = len(event_ids(hostile[HUB], room))
    answers = as_alpha.request_many(HUB, SUBMIT, [fresh.encode()] * 8, concurrency=8)
    assert all(isinstance(a, bytes) for a in answers), answers
    accepted = {ms.Event.decode(a).event_id for a in answers}  # type: ignore[arg-type]
    assert len(accepted) == 1
    assert len(event_ids(hostile[HUB], room)) == before + 1
    first = ms.Event.decode(answers[0])  # type: ignore[arg-type]

    # More history after it, then replays of it and of bob's join (a state event).
    later = [_submit(as_alpha, message(room, BOB, f"later {i}", alpha_key)) for i in range(3)]
    join = ms.Event.decode(as_alpha.request(
        HUB, "mimi.signaling.get_state", ms.wire.encode_get_state_request(room, "m.room.user", BOB)))
    wait_same_history(hostile, room, [ALPHA, BETA])
    replays: List[ms.LimitedEvent] = [fresh, later[0].limited(), join.limited()]
    with nothing_stored(hostile, EVERYONE, room):
        for limited, original in zip(replays, [first, later[0], join]):
            for answer in as_alpha.request_many(HUB, SUBMIT, [limited.encode()] * 4, concurrency=4):
                assert answer == original.encode(), answer
    record("hostile: replayed submits", attempts=8 + 3 * 4, stored_once=True, duplicates=0,
           answer="the accepted event, byte for byte")


def test_replay_after_a_hub_restart_stores_nothing(hostile: Cluster, hostile_room: str, tmp_path: Path) -> None:
    """The hub forgets nothing it acknowledged across a crash: a submit replayed after the
    hub restarts is answered with the accepted event, not sequenced a second time."""
    room = hostile_room
    as_alpha = HostileClient(hostile, ALPHA, tmp_path)
    limited = message(room, BOB, "replayed after a crash", key_of(hostile, ALPHA))
    accepted = _submit(as_alpha, limited)
    wait_same_history(hostile, room, [ALPHA, BETA])
    hostile[HUB].kill()
    hostile[HUB].start()
    with nothing_stored(hostile, EVERYONE, room):
        answer = as_alpha.request(HUB, SUBMIT, limited.encode())
        assert ms.Event.decode(answer).event_id == accepted.event_id, "the replay was sequenced again"
