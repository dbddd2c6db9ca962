"""``mimi.signaling.batch`` between real ``mimi serve`` processes over mutual TLS (PROFILE.md
section 7): batches of submits from the users of two followers, a batch mixing good entries
with every kind of refusal, the batches of the hub's fan-out, and the batches refused whole."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple, Union

import pytest

import mimi_signaling as ms
from mimi_signaling.config import Config
from mimi_signaling.server.federation import BATCH, KEYS, SUBMIT
from mimi_signaling.testing.cluster import Cluster
from mimi_signaling.transport.client import SignalingClient
from mimi_signaling.transport.errors import TransportError

from support.e2ekit import (
    ALICE,
    ALPHA,
    BETA,
    BOB,
    CAROL,
    HUB,
    MESSAGE,
    REQUEST_DEADLINE,
    WireClient,
    counts,
    envelope,
    event_ids,
    key_of,
    limited_message,
    replace_content,
    room_with_members,
    stored_rows,
    wait_for,
    wait_same_history,
)

pytestmark = pytest.mark.timeout(120)

Answer = Union[bytes, ms.MimiError]


def messages(cluster: Cluster, room: str, sender: str, n: int, tag: str) -> List[ms.LimitedEvent]:
    key = key_of(cluster, sender.split(":", 1)[1])
    return [limited_message(cluster, room, sender, f"{tag} {i}", key=key) for i in range(n)]


def send_batch(client: WireClient, to: str, entries: Sequence[Tuple[str, bytes]]) -> List[Answer]:
    """One batch through ``SignalingClient.request_batch``: per entry the body or the error."""

    async def go() -> List[Answer]:
        c = SignalingClient(client.ssl_context, peers=client.peers, max_retries=0, timeout=REQUEST_DEADLINE)
        async with c:
            return await c.request_batch(to, entries)

    return asyncio.run(asyncio.wait_for(go(), REQUEST_DEADLINE))


def accepted_ids(answers: Sequence[Answer]) -> List[str]:
    assert all(isinstance(a, bytes) for a in answers), [a for a in answers if not isinstance(a, bytes)][:3]
    return [ms.Event.decode(a).event_id for a in answers]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def room(trio: Cluster) -> str:
    room_id = room_with_members(trio, [(ALPHA, BOB), (BETA, CAROL)], name="batches")
    wait_same_history(trio, room_id, [ALPHA, BETA])
    return room_id


def test_batches_from_two_followers_are_accepted_as_groups_and_every_follower_converges(
    trio: Cluster, room: str, as_alpha: WireClient, as_beta: WireClient
) -> None:
    bobs, carols = messages(trio, room, BOB, 200, "bob"), messages(trio, room, CAROL, 200, "carol")
    answers: Dict[str, List[Answer]] = {}
    start = threading.Barrier(2)

    def run(name: str, client: WireClient, events: List[ms.LimitedEvent]) -> None:
        start.wait()
        answers[name] = send_batch(client, HUB, [(SUBMIT, e.encode()) for e in events])

    threads = [threading.Thread(target=run, args=("bob", as_alpha, bobs)),
               threading.Thread(target=run, args=("carol", as_beta, carols))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(REQUEST_DEADLINE)
    # Every entry answered with its own accepted event, in the order of the batch.
    for name, events in (("bob", bobs), ("carol", carols)):
        got = [ms.Event.decode(a) for a in answers[name]]  # type: ignore[arg-type]
        assert [e.limited() for e in got] == events
    chain = wait_same_history(trio, room, [ALPHA, BETA])
    # A batch's submits join one group commit as one chunk: consecutive in the room, in order.
    for name in ("bob", "carol"):
        ids = accepted_ids(answers[name])
        first = chain.index(ids[0])
        assert chain[first:first + len(ids)] == ids
    # The followers store the delivered bytes as the hub stored them.
    hub_rows = {event_id: raw for _, event_id, raw in stored_rows(trio[HUB].config, room)}
    for follower in (ALPHA, BETA):
        for _, event_id, raw in stored_rows(trio[follower].config, room):
            assert hub_rows[event_id] == raw


def test_each_entry_gets_its_own_verdict_and_only_good_ones_are_stored(
    trio: Cluster, room: str, as_alpha: WireClient
) -> None:
    wait_for(lambda: not counts(trio[HUB])["queues"], what="the hub's queues to drain")
    before = event_ids(trio[HUB], room)
    good = messages(trio, room, BOB, 2, "good")
    impersonation = messages(trio, room, CAROL, 1, "alpha speaking for beta")[0]  # TLS peer is alpha
    impostor = ms.SigningKey(os.urandom(32), key_of(trio, ALPHA).key_id)
    forged = ms.LimitedEvent.create(room, MESSAGE, None, BOB, b"forged", impostor)
    genuine = messages(trio, room, BOB, 1, "pay alice 10")[0].encode()
    tampered = replace_content(genuine, b"pay alice 10 0", b"pay alice 99 0")
    outsider = messages(trio, room, f"@mallory:{ALPHA}", 1, "let me in")[0]  # never joined
    entries = [
        (SUBMIT, good[0].encode()),
        (SUBMIT, impersonation.encode()),
        (SUBMIT, forged.encode()),
        (SUBMIT, tampered),
        (SUBMIT, outsider.encode()),
        (SUBMIT, b"\x00not an event"),
        (KEYS, b""),
        ("org.example.unknown", b""),
        (SUBMIT, good[1].encode()),
    ]
    answers = send_batch(as_alpha, HUB, entries)
    kinds = [type(a) if isinstance(a, ms.MimiError) else bytes for a in answers]
    assert kinds == [bytes, ms.UnauthorizedError, ms.BadSignatureError, ms.BadContentHashError,
                     ms.PolicyRejectedError, ms.MalformedError, bytes, ms.MalformedError, bytes]
    assert ms.ServerKeys.decode(answers[6]).server_name == HUB  # type: ignore[arg-type]
    stored = [ms.Event.decode(answers[i]) for i in (0, 8)]  # type: ignore[arg-type]
    assert [e.limited() for e in stored] == good
    after = event_ids(trio[HUB], room)
    assert after == before + [e.event_id for e in stored]  # nothing refused is stored
    wait_same_history(trio, room, [ALPHA, BETA])


def test_batches_refused_whole(trio: Cluster, as_alpha: WireClient) -> None:
    wait_for(lambda: not counts(trio[HUB])["queues"], what="the hub's queues to drain")
    before = {name: counts(trio[name]) for name in (HUB, ALPHA, BETA)}

    def raw_batch(envelopes: List[bytes]) -> bytes:
        body = b"".join(envelopes)
        return ms.wire.encode_varint(len(body)) + body

    keys_entry = envelope(KEYS, b"")
    nested = raw_batch([keys_entry, envelope(BATCH, ms.wire.encode_batch_request([(KEYS, b"")]))])
    refusal = as_alpha.refused(HUB, envelope(BATCH, nested))
    assert (refusal.code, refusal.status) == (ms.MalformedError.code, 400) and "nest" in refusal.message
    too_many = raw_batch([keys_entry] * (ms.MAX_BATCH_ENTRIES + 1))
    assert as_alpha.refused(HUB, envelope(BATCH, too_many)).code == ms.MalformedError.code
    assert as_alpha.refused(HUB, envelope(BATCH, b"")).code == ms.MalformedError.code
    assert as_alpha.refused(HUB, envelope(BATCH, raw_batch([keys_entry])[:-1])).code == ms.MalformedError.code
    oversize = envelope(BATCH, raw_batch([envelope(KEYS, b"\x00" * ms.MAX_BATCH_BODY)]))
    refusal = as_alpha.refused(HUB, oversize)
    assert (refusal.code, refusal.status) == (ms.TooLargeError.code, 413)
    # An entry past the single-transaction limit is refused alone; its neighbour is answered.
    answers = send_batch(as_alpha, HUB, [(SUBMIT, b"\x00" * (ms.MAX_EVENT_SIZE + 8192)), (KEYS, b"")])
    assert isinstance(answers[0], ms.TooLargeError) and isinstance(answers[1], bytes)
    assert {name: counts(trio[name]) for name in (HUB, ALPHA, BETA)} == before


def test_local_send_of_many_events_goes_as_batches(trio: Cluster, room: str) -> None:
    """``mimi send --count``: the follower sends its user's events to the hub as batches and
    applies the accepted ones in one go."""
    result = trio[ALPHA].call("send_many", room_id=room, sender=BOB, texts=[f"many {i}" for i in range(300)])
    assert len(result["accepted"]) == 300 and result["refused"] == []
    chain = wait_same_history(trio, room, [ALPHA, BETA])
    first = chain.index(result["accepted"][0])
    assert chain[first:first + 300] == result["accepted"]


@pytest.mark.timeout(150)
def test_servers_that_do_not_batch_use_single_transactions_both_ways(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    """``http.batches = false`` everywhere (peers that do not batch): a batch request is
    refused ``malformed``, as by a server that does not know the type; ``mimi send --count``
    goes as single submits and the fan-out as single deliveries; every follower converges."""

    def no_batches(config: Config) -> None:
        config.http.batches = False

    c = make_cluster([HUB, ALPHA, BETA], configure=no_batches)
    room = room_with_members(c, [(ALPHA, BOB), (BETA, CAROL)])
    wait_same_history(c, room, [ALPHA, BETA])
    with pytest.raises(ms.MalformedError, match="unknown transaction type"):
        send_batch(WireClient(c, ALPHA, tmp_path / "wire"), HUB, [(KEYS, b"")])
    hub_before = c[HUB].call("status")["delivery"]
    sent = c[ALPHA].call("send_many", room_id=room, sender=BOB, texts=[f"single {i}" for i in range(20)])
    assert len(sent["accepted"]) == 20 and sent["refused"] == []
    assert wait_same_history(c, room, [ALPHA, BETA])[-20:] == sent["accepted"]
    wait_for(lambda: not counts(c[HUB])["queues"], what="the hub's fan-out queues to drain")
    hub_after = c[HUB].call("status")["delivery"]
    assert hub_after["delivered"] - hub_before["delivered"] >= 20  # beta's, one request each
    assert hub_after["batches"] == hub_before["batches"] == 0
    assert hub_after["singles"] == []  # no destination refused a batch: none was sent
    assert [c[name].call("status")["delivery"]["batching"] for name in (HUB, ALPHA, BETA)] == [False] * 3


@pytest.mark.timeout(150)
def test_a_follower_sends_single_submits_to_a_hub_that_does_not_batch(make_cluster: Callable[..., Cluster]) -> None:
    """Only the hub has ``http.batches = false``: a follower's ``send_many`` has its batch
    refused ``malformed`` (nothing of it handled), sends the submits one by one instead and
    keeps doing so for that hub (``delivery.singles``); the hub's fan-out is single."""

    def hub_without_batches(config: Config) -> None:
        config.http.batches = config.server_name != HUB

    c = make_cluster([HUB, ALPHA, BETA], configure=hub_without_batches)
    room = room_with_members(c, [(ALPHA, BOB), (BETA, CAROL)])
    wait_same_history(c, room, [ALPHA, BETA])
    for round_ in range(2):
        sent = c[ALPHA].call("send_many", room_id=room, sender=BOB, texts=[f"to a single hub {round_} {i}" for i in range(5)])
        assert len(sent["accepted"]) == 5 and sent["refused"] == []
        assert wait_same_history(c, room, [ALPHA, BETA])[-5:] == sent["accepted"]
        assert c[ALPHA].call("status")["delivery"]["singles"] == [HUB]
    assert c[HUB].call("status")["delivery"]["batches"] == 0
    assert [c[name].call("status")["delivery"]["batching"] for name in (HUB, ALPHA, BETA)] == [False, True, True]


@pytest.mark.timeout(150)
def test_killed_follower_catches_up_in_batches(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster([HUB, ALPHA, BETA])
    room = room_with_members(c, [(ALPHA, BOB), (BETA, CAROL)])
    wait_same_history(c, room, [ALPHA, BETA])
    c[ALPHA].kill()
    before = c[HUB].call("status")["delivery"]
    sent = c[HUB].call("send_many", room_id=room, sender=ALICE, texts=[f"while alpha is down {i}" for i in range(700)])
    assert len(sent["accepted"]) == 700
    wait_same_history(c, room, [BETA])
    c[ALPHA].start()
    final = wait_same_history(c, room, [ALPHA, BETA])
    assert final[-700:] == sent["accepted"]
    wait_for(lambda: not counts(c[HUB])["queues"], what="the hub's fan-out queues to drain")
    after = c[HUB].call("status")["delivery"]
    delivered = after["delivered"] - before["delivered"]
    requests = after["batches"] - before["batches"]
    # 700 events to each follower went out in batches of up to 256, not one request each.
    # (alpha may also have fetched them itself with backfill on restart: the deliveries are
    # then known to it, and still answered 200 entry by entry.)
    assert delivered >= 1400 and requests <= 12, (delivered, requests)
    assert after["singles"] == []


@pytest.mark.timeout(150)
def test_hub_killed_mid_batch_keeps_every_acknowledged_event_and_no_half_batch(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    c = make_cluster([HUB, ALPHA, BETA])
    room = room_with_members(c, [(ALPHA, BOB), (BETA, CAROL)])
    as_alpha = WireClient(c, ALPHA, tmp_path)
    batches = [messages(c, room, BOB, 200, f"batch {b}") for b in range(40)]
    acked: List[List[str]] = []
    failed: List[BaseException] = []

    def sender() -> None:
        for batch in batches:
            try:
                acked.append(accepted_ids(send_batch(as_alpha, HUB, [(SUBMIT, e.encode()) for e in batch])))
            except (TransportError, ms.MimiError, asyncio.TimeoutError) as exc:  # the hub died under it
                failed.append(exc)
                return

    thread = threading.Thread(target=sender)
    thread.start()
    wait_for(lambda: len(acked) >= 3 or bool(failed), timeout=60, what="three acknowledged batches")
    c[HUB].kill()
    thread.join(REQUEST_DEADLINE + 5)
    assert failed, "the hub was killed after every batch was answered: no batch was cut"
    c[HUB].start()
    stored = set(event_ids(c[HUB], room))
    for ids in acked:
        assert set(ids) <= stored, "an acknowledged batch lost events"
    # Each batch is stored whole or not at all, acknowledged or not (the one cut included).
    hub_events = [ms.Event.decode(raw) for _, _, raw in stored_rows(c[HUB].config, room)]
    by_batch: Dict[int, int] = {}
    for event in hub_events:
        text = event.content.decode(errors="replace")
        if text.startswith("batch "):
            number = int(text.split()[1])
            by_batch[number] = by_batch.get(number, 0) + 1
    assert all(count == 200 for count in by_batch.values()), by_batch
    assert len(by_batch) >= len(acked)
    c[ALPHA].call("send", room_id=room, sender=BOB, type=MESSAGE, text="after the crash")
    wait_same_history(c, room, [ALPHA, BETA])
