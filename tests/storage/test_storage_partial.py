"""Partial histories of followers joined from a snapshot (node/store.py): kept events beside a
run of chain rows at local positions, pruning from the bottom, older pages inserted below; on
SQLite and PostgreSQL.  No fork, no gap taken for a link, nothing changed by a refused write."""

from __future__ import annotations

import pytest

from mimi_signaling.node.store import ChainConflictError, EventStore, KeptEvent

from support.storage_helpers import ROOM, eid, row, snapshot

BASE = 1000  # local position of the snapshot's latest event in these tests


def kept(index: int, *, in_state: bool = True, key: str = "") -> KeptEvent:
    r = row(ROOM, index)
    type_ = "m.room.create" if index == 0 else "m.room.topic"
    return KeptEvent(r.event_id, type_, key, in_state, r.event_bytes)


def run_rows(first: int, last: int):
    """Chain events ``first..last`` (true indices) stored at local positions ending at BASE."""
    return [row(ROOM, i)._replace(index=BASE - (last - i)) for i in range(first, last + 1)]


def state_of(store: EventStore) -> list:
    return [snapshot(store, ROOM), store.kept_events(ROOM), store.room_role(ROOM)]


def test_start_partial_keeps_the_create_event_outside_the_run(store: EventStore) -> None:
    store.start_partial(ROOM, [kept(0), kept(5, key="t")], run_rows(40, 42))
    assert store.is_partial(ROOM) and store.room_role(ROOM) == "follower"
    assert [k.event_id for k in store.kept_events(ROOM)] == [eid(ROOM, 0), eid(ROOM, 5)]
    assert store.oldest(ROOM) == (BASE - 2, eid(ROOM, 40)) and store.latest(ROOM) == (BASE, eid(ROOM, 42))
    assert store.get_event(ROOM, eid(ROOM, 0)) == row(ROOM, 0).event_bytes  # a kept event
    assert store.holds(ROOM, eid(ROOM, 5)) and not store.holds(ROOM, eid(ROOM, 6))
    assert store.index_of(ROOM, eid(ROOM, 0)) is None  # no position: not a chain row
    # Deliveries append above the run as on any follower.
    store.append(*row(ROOM, 43)._replace(index=BASE + 1)[:8])
    assert store.latest(ROOM) == (BASE + 1, eid(ROOM, 43))


@pytest.mark.parametrize(
    "kept_events, rows",
    [
        pytest.param([kept(5, key="t")], run_rows(40, 42), id="no-create"),
        pytest.param([kept(0)], [row(ROOM, 0)], id="run-at-index-0"),
        pytest.param([kept(0)], [r for i, r in enumerate(run_rows(40, 43)) if i != 1], id="run-with-a-gap-link"),
        pytest.param([kept(0)], run_rows(40, 41) + [row(ROOM, 50)._replace(index=BASE + 1)], id="run-forks"),
        pytest.param([kept(0), kept(5, key="t"), kept(6, key="t")], run_rows(40, 41), id="two-checkpoint-events-per-key"),
    ],
)
def test_start_partial_refuses_and_stores_nothing(store: EventStore, kept_events, rows) -> None:
    before = state_of(store)
    with pytest.raises(ChainConflictError):
        store.start_partial(ROOM, kept_events, rows)
    assert state_of(store) == before and not store.is_partial(ROOM)


def test_start_partial_refuses_a_room_that_holds_events(store: EventStore) -> None:
    store.append(*row(ROOM, 0))
    with pytest.raises(ChainConflictError):
        store.start_partial(ROOM, [kept(0)], run_rows(40, 42))
    assert not store.is_partial(ROOM) and store.count(ROOM) == 1


def test_older_pages_go_below_the_run_and_must_link(store: EventStore) -> None:
    store.start_partial(ROOM, [kept(0)], run_rows(40, 42))
    page = [row(ROOM, i)._replace(index=BASE - (42 - i)) for i in range(35, 40)]
    store.insert_known_many(page)
    assert store.oldest(ROOM) == (BASE - 7, eid(ROOM, 35))
    # A page whose newest event is not the prev of the lowest row held: refused, nothing kept.
    before = state_of(store)
    wrong = [row(ROOM, i, event_id=f"$other{i}")._replace(index=BASE - (42 - i)) for i in range(30, 35)]
    with pytest.raises(ChainConflictError):
        store.insert_known_many(wrong)
    assert state_of(store) == before
    # The event right after the create event links to it only through the kept create: it is
    # stored detached, never attached to index 0 across the unknown gap.
    first = row(ROOM, 1)._replace(index=5)
    store.insert_known_many([first])
    assert store.index_of(ROOM, eid(ROOM, 1)) == 5


def test_prune_below_moves_state_to_the_checkpoint(store: EventStore) -> None:
    store.start_partial(ROOM, [kept(0), kept(5, key="t")], run_rows(40, 49))
    topic = row(ROOM, 44)
    moved = KeptEvent(topic.event_id, "m.room.topic", "t", True, topic.event_bytes)
    assert store.prune_below(ROOM, BASE - 4, [moved]) == 5
    assert store.oldest(ROOM) == (BASE - 4, eid(ROOM, 45))
    assert [(k.event_id, k.in_state) for k in store.kept_events(ROOM)] == [
        (eid(ROOM, 0), True), (eid(ROOM, 44), True), (eid(ROOM, 5), False)]
    assert [k.event_id for k in store.kept_events(ROOM, checkpoint_only=True)] == [eid(ROOM, 0), eid(ROOM, 44)]
    # The new lowest row is detached: older pages still go below it, and must link to it.
    store.insert_known_many([row(ROOM, 44)._replace(index=BASE - 5)])
    assert store.count(ROOM) == 6
    before = state_of(store)
    with pytest.raises(ChainConflictError):
        store.prune_below(ROOM, BASE + 7, [])  # the cut must be a stored row
    assert state_of(store) == before


def test_prune_below_is_only_for_partial_histories(store: EventStore) -> None:
    for i in range(5):
        store.append(*row(ROOM, i))
    with pytest.raises(ChainConflictError):
        store.prune_below(ROOM, 3, [])
    assert store.count(ROOM) == 5


def test_a_reopened_store_has_the_partial_history(store_url: str) -> None:
    from mimi_signaling.storage import open_store

    with open_store(store_url) as first:
        first.start_partial(ROOM, [kept(0), kept(5, key="t")], run_rows(40, 42))
        first.prune_below(ROOM, BASE - 1, [])
    with open_store(store_url) as again:
        assert again.is_partial(ROOM)
        assert again.oldest(ROOM) == (BASE - 1, eid(ROOM, 41))
        assert len(again.kept_events(ROOM)) == 2
