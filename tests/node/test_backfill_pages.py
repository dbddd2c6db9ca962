"""A follower fills a gap page by page (issue 11, finding 3): each backfill page is checked
(links, content hashes, signatures) as it arrives, before the next is asked for; a gap longer
than one page is walked down keeping only each page's first and last event ID, then fetched
again oldest first, each page checked again, applied and stored before the next one.  A hub
that answers differently the second time stores nothing past the last good page."""

from __future__ import annotations

from typing import List, Tuple

import pytest

import mimi_signaling as m
from mimi_signaling.content import JoinRule
from mimi_signaling.node import follower as follower_module

ENC = "m.room.encrypted"
PAGE = 50
GAP = 230  # more than four pages


@pytest.fixture
def gap(network, monkeypatch):
    """``(net, room, last event)``: f1 follows the room and then misses GAP events."""
    monkeypatch.setattr(follower_module, "BACKFILL_LIMIT", PAGE)
    net = network
    public = [("m.room.join_rules", "", m.JoinRulesContent(JoinRule.PUBLIC).encode())]
    room = net.hub.create_room("@ana:hub.test", initial_state=public)[0].room_id
    net.join(room, "@bob:f1.test")
    net.deliver_all()
    sent = [net.submit(room, "@ana:hub.test", ENC, None, f"missed {i}".encode()) for i in range(GAP)]
    return net, room, sent[-1]


def recording(net, follower, tamper=None):
    """Wrap the follower's backfill: log ``(before, limit, events f1 stores when asked)``."""
    calls: List[Tuple[str, int, int]] = []
    honest = follower.backfill

    def backfill(room_id: str, before: str, limit: int) -> List[m.Event]:
        calls.append((before, limit, net.stores["f1.test"].count(room_id)))
        page = honest(room_id, before, limit)
        return tamper(len(calls), page) if tamper is not None else page

    follower.backfill = backfill
    return calls


def test_a_long_gap_is_applied_page_by_page(gap) -> None:
    net, room, last = gap
    f1 = net.followers["f1.test"]
    before = f1.store.count(room)
    calls = recording(net, f1)
    f1.receive(last, peer="hub.test")
    assert f1.state(room).last_event_id == last.event_id
    assert f1.store.count(room) == net.stores["hub.test"].count(room)
    pages = -(-(GAP - 1) // PAGE)
    assert len(calls) == 2 * pages, calls  # walked down once, fetched again oldest first
    down, up = calls[:pages], calls[pages:]
    assert all(stored == before for _, _, stored in down), "nothing is stored while walking down"
    stored_when_asked = [stored for _, _, stored in up]
    assert stored_when_asked == sorted(stored_when_asked) and len(set(stored_when_asked)) == pages, \
        "each page is stored before the next one is fetched"


def test_a_short_gap_is_fetched_once(network) -> None:
    net = network
    public = [("m.room.join_rules", "", m.JoinRulesContent(JoinRule.PUBLIC).encode())]
    room = net.hub.create_room("@ana:hub.test", initial_state=public)[0].room_id
    net.join(room, "@bob:f1.test")
    net.deliver_all()
    sent = [net.submit(room, "@ana:hub.test", ENC, None, f"missed {i}".encode()) for i in range(20)]
    f1 = net.followers["f1.test"]
    calls = recording(net, f1)
    f1.receive(sent[-1], peer="hub.test")
    assert len(calls) == 1 and f1.state(room).last_event_id == sent[-1].event_id


def tampered(event: m.Event) -> m.Event:
    return event.with_content(b"not what was signed")


def test_a_bad_page_is_refused_before_the_next_is_fetched(gap) -> None:
    net, room, last = gap
    f1 = net.followers["f1.test"]
    before = f1.store.count(room)
    calls = recording(net, f1, tamper=lambda n, page: [tampered(page[0]), *page[1:]] if n == 2 else page)
    with pytest.raises((m.BadContentHashError, m.BadSignatureError, m.MalformedError)):
        f1.receive(last, peer="hub.test")
    assert len(calls) == 2, "pages after the bad one were fetched"
    assert f1.store.count(room) == before


def test_a_page_that_changes_between_fetches_stores_only_the_good_pages(gap) -> None:
    net, room, last = gap
    f1 = net.followers["f1.test"]
    before = f1.store.count(room)
    pages = -(-(GAP - 1) // PAGE)
    # The second page fetched on the way up (oldest first) comes back different.
    recording(net, f1, tamper=lambda n, page: page[1:] if n == pages + 2 else page)
    with pytest.raises(m.MalformedError, match="changed between two fetches"):
        f1.receive(last, peer="hub.test")
    first_page = GAP - 1 - (pages - 1) * PAGE
    assert f1.store.count(room) == before + first_page, "only the first, checked page is stored"
    hub_rows = [raw for _, raw in net.stores["hub.test"].iter_events(room)]
    ours = [raw for _, raw in net.stores["f1.test"].iter_events(room)]
    assert ours == hub_rows[: len(ours)], "what is stored is a prefix of the hub's room"
    # An honest delivery later catches up from there.
    f1.backfill = net._backfill_for("f1.test")
    f1.receive(last, peer="hub.test")
    assert f1.store.count(room) == net.stores["hub.test"].count(room)
