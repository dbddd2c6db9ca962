"""A hub that holds back its backfill answers stalls no other room (issue 11, finding 2),
benchmark-style: bounded in count and time, asserting a wide ratio.

hub.test runs in this test process (``peerkit.HubThread``: a genuine ``ServerNode`` with the
cluster's certificate and key for hub.test, over real mutual TLS) and alpha.test and beta.test
are ``mimi serve`` processes; bob (alpha) is in a room of hub.test and in a room of beta.test.
hub.test accepts 30 messages that it never delivers, then delivers only the last one, twelve
times at once, and holds each backfill answer for HOLD seconds: alpha must fill the gap and
waits.  Before issue 11 those deliveries held every thread alpha's accepts and API ran on;
now they hold at most 4 threads of a pool of their own.  Meanwhile bob sends into beta's room
through alpha: every send takes well under the hold; afterwards the gap is filled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterator, List

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster
from mimi_signaling.config import Config
from mimi_signaling.content import JoinRule, Participation
from mimi_signaling.server.federation import BACKFILL, DELIVER

from support.e2ekit import ALICE, ALPHA, BETA, BOB, CAROL, HUB, MESSAGE, envelope, event_ids, wait_for, wait_same_history
from support.peerkit import HubThread, sends_meanwhile
from support.relkit import HostileClient, reap, record

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

HOLD = 8.0
BOUND = 2.0
SENDS = 6
GAP = 30
DELIVERIES = 12
#: More than one backfill page (1,000 events), less than two.
LONG_GAP = 1_200


@pytest.fixture(scope="module")
def slow_hub_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """``(cluster, hub thread)``: alpha and beta as processes, hub.test in this process."""
    cluster = Cluster(tmp_path_factory.mktemp("slowhub"), [HUB, ALPHA, BETA])
    hub = None
    try:
        cluster[ALPHA].start()
        cluster[BETA].start()
        hub = HubThread(Config.load(cluster[HUB].config_path))
        yield cluster, hub
    finally:
        if hub is not None:
            hub.stop()
        reap([cluster[ALPHA], cluster[BETA]])


def invite_only(name: str) -> list:
    return [("m.room.join_rules", "", ms.JoinRulesContent(JoinRule.INVITE).encode()),
            ("m.room.name", "", ms.TextContent(name.encode()).encode())]


def test_a_held_backfill_stalls_no_other_room(slow_hub_cluster: tuple, tmp_path: Path) -> None:
    cluster, hub = slow_hub_cluster
    node = hub.node
    held_room = hub.call(lambda: node.hub.create_room(ALICE, initial_state=invite_only("held"))[0].room_id)
    hub.send(held_room, ALICE, "m.room.user", BOB, ms.UserContent(Participation.INVITE).encode())
    cluster[ALPHA].call("membership", room_id=held_room, sender=BOB, target=BOB, participation="join")
    other_room = cluster[BETA].call("create_room", creator=CAROL, join_rule="invite", name="other")["room_id"]
    cluster[BETA].call("membership", room_id=other_room, sender=CAROL, target=BOB, participation="invite")
    cluster[ALPHA].call("membership", room_id=other_room, sender=BOB, target=BOB, participation="join")
    wait_for(lambda: not hub.call(node.store.queue_length, ALPHA), what="hub.test's queue for alpha to drain")

    # hub.test stops delivering, accepts GAP messages, and delivers only the last one.
    asyncio.run_coroutine_threadsafe(node.delivery.stop(), hub.loop).result(30)
    node.delivery = None
    sent = [hub.send(held_room, ALICE, MESSAGE, None, f"missed {i}".encode()) for i in range(GAP)]
    node.hold[BACKFILL] = HOLD
    as_hub = HostileClient(cluster, HUB, tmp_path)
    figures = sends_meanwhile(
        cluster[ALPHA], other_room, BOB,
        lambda: as_hub.request_many(ALPHA, DELIVER, [sent[-1].encode()] * DELIVERIES, concurrency=DELIVERIES),
        "bob meanwhile", sends=SENDS)
    node.hold.clear()
    wait_same_history(cluster, other_room, [ALPHA])
    assert event_ids(cluster[ALPHA], held_room)[-1] == sent[-1].event_id, "the gap was not filled after the hold"
    assert all(a == b"" for a in figures["outcome"]), figures["outcome"]  # every delivery applied, after the hold
    assert figures["slow_peer_seconds"] >= HOLD - 0.5, figures  # alpha did wait for the held backfill
    assert figures["bob_max"] < BOUND, figures
    record("hostile: held backfill vs another room", hold_seconds=HOLD, bound_seconds=BOUND, gap=GAP,
           deliveries=DELIVERIES, **{k: v for k, v in figures.items() if k != "outcome"})


def test_a_long_gap_is_checked_page_by_page(slow_hub_cluster: tuple, tmp_path: Path) -> None:
    """A gap of more than one backfill page (1,000 events): a page whose content was changed
    is refused before the next page is asked for, and nothing is stored; answered honestly,
    the gap is walked down and then applied page by page, oldest first."""
    cluster, hub = slow_hub_cluster
    node = hub.node
    room = hub.call(lambda: node.hub.create_room(ALICE, initial_state=invite_only("long gap"))[0].room_id)
    hub.send(room, ALICE, "m.room.user", BOB, ms.UserContent(Participation.INVITE).encode())
    cluster[ALPHA].call("membership", room_id=room, sender=BOB, target=BOB, participation="join")
    before = event_ids(cluster[ALPHA], room)
    if node.delivery is not None:  # hub.test delivers nothing by itself from here on
        asyncio.run_coroutine_threadsafe(node.delivery.stop(), hub.loop).result(30)
        node.delivery = None
    key = node.keys.signing_key
    limited = [ms.LimitedEvent.create(room, MESSAGE, None, ALICE, f"long gap {i}".encode(), key) for i in range(LONG_GAP)]
    accepted = hub.call(node.hub.accept_many, [(lim, None) for lim in limited])
    last = accepted[-1]
    pages: List[int] = []

    def changed_second_page(body: bytes) -> bytes:
        pages.append(len(pages) + 1)
        page = ms.wire.decode_backfill_response(body)
        if len(pages) == 2:
            page = [page[0].with_content(b"not what alice sent"), *page[1:]]
        return ms.wire.encode_backfill_response(page)

    node.tamper = {BACKFILL: changed_second_page}
    as_hub = HostileClient(cluster, HUB, tmp_path)
    try:
        refused = as_hub.refused(ALPHA, envelope(DELIVER, last.encode()))
    finally:
        node.tamper = {}
    assert refused.code == ms.BadContentHashError.code, refused
    assert pages == [1, 2], "pages after the bad one were fetched"
    assert event_ids(cluster[ALPHA], room) == before, "a refused gap stored something"

    def counted(body: bytes) -> bytes:
        pages.append(len(pages) + 1)
        return body

    pages.clear()
    node.tamper = {BACKFILL: counted}
    try:
        assert as_hub.request(ALPHA, DELIVER, last.encode()) == b""
    finally:
        node.tamper = {}
    assert len(pages) == 4, pages  # two pages down, the same two again oldest first
    assert event_ids(cluster[ALPHA], room) == event_ids_of_hub(hub, room)
    record("hostile: long gap checked page by page", gap=LONG_GAP, bad_page_refused_after_requests=2,
           honest_requests=len(pages), stored_after_refusal=0)


def event_ids_of_hub(hub: HubThread, room: str) -> List[str]:
    return [ms.Event.decode(raw).event_id for _, raw in hub.call(lambda: list(hub.node.store.iter_events(room)))]
