"""Refusals over the wire, against real server processes: each bad request gets its error
code and HTTP status, and the server stores nothing (events per room and fan-out queues
unchanged).  The requests come from a client whose certificate is issued from the cluster's
CA for a server name of the test's choosing, so TLS succeeds and only the server's own checks
refuse."""

from __future__ import annotations

import json
import os
from typing import Iterator

import pytest

import mimi_signaling as ms
from mimi_signaling.server.federation import DELIVER, SUBMIT
from mimi_signaling.testing.cluster import Cluster

from support.e2ekit import (
    ALICE,
    ALPHA,
    BETA,
    BOB,
    CAROL,
    HUB,
    MESSAGE,
    Refusal,
    WireClient,
    counts,
    envelope,
    event_ids,
    key_of,
    limited_message,
    replace_content,
    room_with_members,
    wait_for,
    wait_same_history,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def room(trio: Cluster) -> str:
    room_id = room_with_members(trio, [(ALPHA, BOB), (BETA, CAROL)], name="refusals")
    trio[HUB].call("send", room_id=room_id, sender=ALICE, type=MESSAGE, text="before the refusals")
    wait_same_history(trio, room_id, [ALPHA, BETA])
    return room_id


@pytest.fixture
def unchanged(trio: Cluster, room: str) -> Iterator[None]:
    """Every server's event counts and queues are the same after the test as before it."""
    # Queues drain asynchronously after a delivery: start from a quiet cluster.
    wait_for(lambda: all(not counts(trio[n])["queues"] for n in (HUB, ALPHA, BETA)), what="empty queues")
    before = {name: counts(trio[name]) for name in (HUB, ALPHA, BETA)}
    ids_before = event_ids(trio[HUB], room)
    yield
    after = {name: counts(trio[name]) for name in (HUB, ALPHA, BETA)}
    assert after == before, "a refused request changed what a server stores"
    assert event_ids(trio[HUB], room) == ids_before


def assert_refusal(got: Refusal, error: type, status: int) -> None:
    assert (got.code, got.status) == (error.code, status), f"got {got}, want {error.__name__} ({error.code}) {status}"


# --- the envelope ---------------------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
def test_malformed_envelope(as_alpha: WireClient) -> None:
    for body in (b"", b"\x00", b"\x00\x01\xff\xff\xff", envelope("mimi.signaling.keys", b"") + b"trailing"):
        assert_refusal(as_alpha.refused(HUB, body), ms.MalformedError, 400)


@pytest.mark.usefixtures("unchanged")
def test_unknown_transaction_type(as_alpha: WireClient) -> None:
    assert_refusal(as_alpha.refused(HUB, envelope("mimi.signaling.nonsense", b"")), ms.MalformedError, 400)
    with pytest.raises(ms.MalformedError):
        as_alpha.request(HUB, "org.example.whatever", b"")


@pytest.mark.usefixtures("unchanged")
def test_wrong_version(trio: Cluster, room: str, as_alpha: WireClient) -> None:
    payload = limited_message(trio, room, BOB, "version 2").encode()
    for version in (0, 2, 0xFFFF):
        body = ms.TransactionEnvelope(SUBMIT, payload, version=version).encode()
        assert_refusal(as_alpha.refused(HUB, body), ms.UnsupportedVersionError, 400)


@pytest.mark.usefixtures("unchanged")
def test_oversized_body(trio: Cluster, as_alpha: WireClient) -> None:
    limit = trio[HUB].config.http.max_body_size
    body = envelope(SUBMIT, b"\x00" * (limit + 1))
    assert_refusal(as_alpha.refused(HUB, body), ms.TooLargeError, 413)


@pytest.mark.usefixtures("unchanged")
def test_oversized_event_inside_the_body_limit(trio: Cluster, room: str, as_alpha: WireClient) -> None:
    # The body fits the HTTP limit; the event in it is past the 65,536 bytes of section 2.
    small = limited_message(trio, room, BOB, "to be inflated").encode()
    big = replace_content(small, b"to be inflated", b"x" * ms.MAX_EVENT_SIZE)
    body = envelope(SUBMIT, big)
    assert len(body) <= trio[HUB].config.http.max_body_size
    assert_refusal(as_alpha.refused(HUB, body), ms.TooLargeError, 413)


# --- the submitted event ----------------------------------------------------------------------


@pytest.mark.usefixtures("unchanged")
def test_bad_origin_signature(trio: Cluster, room: str, as_alpha: WireClient) -> None:
    # Signed under alpha's published key ID by another key.
    impostor = ms.SigningKey(os.urandom(32), key_of(trio, ALPHA).key_id)
    forged = limited_message(trio, room, BOB, "forged", key=impostor).encode()
    assert_refusal(as_alpha.refused(HUB, envelope(SUBMIT, forged)), ms.BadSignatureError, 400)
    # Signed under a key ID alpha never published (the hub re-fetches alpha's keys, in vain).
    unknown = ms.SigningKey.generate("ed25519:never_published")
    forged = limited_message(trio, room, BOB, "forged too", key=unknown).encode()
    assert_refusal(as_alpha.refused(HUB, envelope(SUBMIT, forged)), ms.BadSignatureError, 400)
    with pytest.raises(ms.BadSignatureError):
        as_alpha.request(HUB, SUBMIT, forged)


@pytest.mark.usefixtures("unchanged")
def test_tampered_content(trio: Cluster, room: str, as_alpha: WireClient) -> None:
    # The origin signature covers the redacted content (empty for m.room.encrypted), so it
    # still verifies: only the content hash catches the change.
    genuine = limited_message(trio, room, BOB, "pay alice 10").encode()
    tampered = replace_content(genuine, b"pay alice 10", b"pay alice 99")
    assert_refusal(as_alpha.refused(HUB, envelope(SUBMIT, tampered)), ms.BadContentHashError, 400)
    # A limited event may not arrive in its redacted form either.
    redacted = replace_content(genuine, b"pay alice 10", b"")
    assert_refusal(as_alpha.refused(HUB, envelope(SUBMIT, redacted)), ms.BadContentHashError, 400)


@pytest.mark.usefixtures("unchanged")
def test_policy_violation(trio: Cluster, room: str, as_alpha: WireClient) -> None:
    # A well-signed message from a user of alpha who never joined.
    outsider = limited_message(trio, room, f"@mallory:{ALPHA}", "let me in").encode()
    assert_refusal(as_alpha.refused(HUB, envelope(SUBMIT, outsider)), ms.PolicyRejectedError, 403)
    # bob (joined, no role) bans carol: the creator alone holds ban until a role map exists.
    ban = ms.LimitedEvent.create(
        room, "m.room.user", CAROL, BOB, ms.UserContent(3, b"").encode(), key_of(trio, ALPHA)
    ).encode()
    assert_refusal(as_alpha.refused(HUB, envelope(SUBMIT, ban)), ms.PolicyRejectedError, 403)


@pytest.mark.usefixtures("unchanged")
def test_wrong_tls_peer_for_the_origin(trio: Cluster, room: str, as_alpha: WireClient) -> None:
    # Well-formed and correctly signed by beta.test, but the TLS peer is alpha.test.
    carols = limited_message(trio, room, CAROL, "alpha speaking for beta").encode()
    assert_refusal(as_alpha.refused(HUB, envelope(SUBMIT, carols)), ms.UnauthorizedError, 401)


@pytest.mark.usefixtures("unchanged")
def test_wrong_room_hub(trio: Cluster, room: str, as_alpha: WireClient) -> None:
    # A submit for the room sent to a follower: only the hub sequences.
    bobs = limited_message(trio, room, BOB, "to the wrong server").encode()
    assert_refusal(as_alpha.refused(BETA, envelope(SUBMIT, bobs)), ms.NotHubError, 421)


# --- deliveries and the local API -----------------------------------------------------------


def next_event_signed_by_the_hub(trio: Cluster, room: str, as_beta: WireClient) -> ms.Event:
    """A valid next event of the room, hub-signed, that the hub never sequenced (so a
    follower accepting it would fork from the hub)."""
    latest = ms.Event.decode(
        as_beta.request(HUB, "mimi.signaling.get_event", ms.wire.encode_get_event_request(room, event_ids(trio[HUB], room)[-1]))
    )
    hub_key = key_of(trio, HUB)
    # alice's last message has the auth events a message of alice needs now.
    alices = [
        e for e in trio[HUB].call("history", room_id=room, limit=1000) if e["sender"] == ALICE and e["type"] == MESSAGE
    ]
    model = ms.Event.decode(
        as_beta.request(HUB, "mimi.signaling.get_event", ms.wire.encode_get_event_request(room, alices[-1]["event_id"]))
    )
    lim = ms.LimitedEvent.create(room, MESSAGE, None, ALICE, b"never sequenced", hub_key)
    return lim.to_event(model.auth_events, latest.event_id, hub_key)


@pytest.mark.usefixtures("unchanged")
def test_delivery_not_from_the_hub(trio: Cluster, room: str, as_beta: WireClient) -> None:
    event = next_event_signed_by_the_hub(trio, room, as_beta)
    event.verify(as_beta.key_ring(trio.servers))  # genuinely valid: only the sender of the delivery is wrong
    assert_refusal(as_beta.refused(ALPHA, envelope(DELIVER, event.encode())), ms.UnauthorizedError, 401)
    with pytest.raises(ms.UnauthorizedError):
        as_beta.request(ALPHA, DELIVER, event.encode())


@pytest.mark.usefixtures("unchanged")
def test_local_api_only_for_the_server_itself(trio: Cluster, room: str, as_alpha: WireClient) -> None:
    args = json.dumps({"room_id": room, "sender": ALICE, "type": MESSAGE, "text": "from outside"}).encode()
    assert_refusal(as_alpha.refused(HUB, envelope("mimi.local.send", args)), ms.UnauthorizedError, 401)
    assert_refusal(as_alpha.refused(HUB, envelope("mimi.local.rotate_key", b"{}")), ms.UnauthorizedError, 401)


def test_the_room_still_works_after_the_refusals(trio: Cluster, room: str) -> None:
    trio[ALPHA].call("send", room_id=room, sender=BOB, type=MESSAGE, text="still fine")
    wait_same_history(trio, room, [ALPHA, BETA])
