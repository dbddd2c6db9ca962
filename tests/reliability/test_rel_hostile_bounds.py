"""Answers read whole (issue 11, finding 3): a peer answers the hub's keys request with 40 MB,
announced by Content-Length or streamed without one.  The hub refuses the answer at its
transaction's bound (1 MiB for keys) before reading it or as soon as the stream passes the
bound, its memory does not grow with what the peer sends, nothing is stored, and another peer
is served meanwhile.  Requests too are bounded by their transaction, not by the largest one."""

from __future__ import annotations

import threading

import pytest

import mimi_signaling as ms
from mimi_signaling.transport.bounds import BOUNDS
from mimi_signaling.server.federation import KEYS, SUBMIT

from support.e2ekit import ALPHA, BETA, BOB, HUB, MESSAGE, Sender, envelope
from support.peerkit import FakePeer, stored_keys
from support.relkit import nothing_stored, peak_rss_kb, record

pytestmark = pytest.mark.timeout(120)

EVERYONE = [HUB, ALPHA, BETA]
ANSWER = 40 * 1024 * 1024
#: Growth of the hub's resident-set high-water mark that still counts as "did not read it".
MEMORY_MARGIN_KB = 16 * 1024


def submit_while_bob_sends(cluster, room: str, fake: FakePeer, text: str) -> ms.MimiError:
    """The fake peer's submit (which makes the hub fetch its keys) with bob sending meanwhile;
    the refusal, after checking bob's sends were all acknowledged."""
    bob = Sender(cluster[ALPHA], room, BOB, limit=3, tag=f"bob during {text}")
    outcome: list = []
    limited = ms.LimitedEvent.create(room, MESSAGE, None, f"@big:{fake.name}", text.encode(), fake.signing_key)

    def attack() -> None:
        outcome.append(fake.client.refused(HUB, envelope(SUBMIT, limited.encode())))

    attacker = threading.Thread(target=attack)
    attacker.start()
    bob.start()
    bob.stop_when_done(timeout=60)
    attacker.join(60)
    assert bob.acked and len(bob.acked) == 3, bob.errors
    return outcome[0]


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "streamed"])
def test_a_huge_keys_answer_is_refused_unread(peered: tuple, peered_room: str, announced: bool) -> None:
    cluster, fakes = peered
    big: FakePeer = fakes["big" if announced else "streamer"]  # one each: a failed fetch is backed off
    chunk = b"\x00" * 65536
    if announced:
        async def huge(payload: bytes, peer: str) -> bytes:
            return chunk * (ANSWER // len(chunk))

        big.answers[KEYS] = huge
        big.streamed.pop(KEYS, None)
    else:
        big.streamed[KEYS] = (chunk, ANSWER // len(chunk))
    big.streamed_bytes = 0
    pid = cluster[HUB].proc.pid
    peak_before = peak_rss_kb(pid)
    bob_sent = Sender(cluster[ALPHA], peered_room, BOB, limit=1, tag="settle")
    bob_sent.start().stop_when_done()
    got = submit_while_bob_sends(cluster, peered_room, big, f"huge keys {announced}")
    assert (got.code, got.status) == (ms.TooLargeError.code, 413), got
    grew = peak_rss_kb(pid) - peak_before
    assert grew < MEMORY_MARGIN_KB, f"the hub's peak memory grew by {grew} kB reading a refused answer"
    assert stored_keys(cluster, HUB, big.name) is None
    record("hostile: huge keys answer", announced=announced, answer_bytes=ANSWER,
           bound_bytes=BOUNDS[KEYS].response, hub_peak_growth_kb=grew,
           streamed_bytes_written=big.streamed_bytes if not announced else None, keys_stored=0)


def test_requests_are_bounded_by_their_transaction(peered: tuple, peered_room: str) -> None:
    """A get_event request of 30,000 bytes is refused (its bound is a few kB) although a
    submit of that size would be read; nothing is stored."""
    cluster, fakes = peered
    fake: FakePeer = fakes["big"]
    padded = b"\x00" * 30_000
    assert len(envelope("mimi.signaling.get_event", padded)) > BOUNDS["mimi.signaling.get_event"].request
    assert len(envelope(SUBMIT, padded)) < BOUNDS[SUBMIT].request
    with nothing_stored(cluster, EVERYONE, peered_room):
        got = fake.client.refused(HUB, envelope("mimi.signaling.get_event", padded))
        assert (got.code, got.status) == (ms.TooLargeError.code, 413), got
        read = fake.client.refused(HUB, envelope(SUBMIT, padded))
        assert read.code == ms.MalformedError.code, read  # read whole, then refused as not an event
