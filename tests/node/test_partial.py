"""Followers with ``history = "recent"``: joining from the hub's snapshot, following with every
check, pruning to the last ``keep_recent`` events, restarting from a partial history, fetching
older events on demand, and refusing a hostile hub's snapshot or pages (in process; the same
over mutual TLS is in tests/reliability/test_rel_partial_hub.py)."""

from __future__ import annotations

from typing import List

import pytest

import mimi_signaling as m
from mimi_signaling.content import JoinRule, Participation
from mimi_signaling.node.partial import JOIN_POSITION, PRUNE_BATCH

from support.nodekit import Network

ANA, BOB = "@ana:hub.test", "@bob:f1.test"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def net(request, tmp_path):
    """The follower's store on each backend (the hub's on SQLite)."""
    urls = {"f1.test": request.getfixturevalue("fresh_pg_url")} if request.param == "postgres" else None
    network = Network(tmp_path, "hub.test", ["f1.test"], history="recent", keep_recent=20, store_urls=urls)
    yield network
    for f in network.followers.values():
        f.close()
    network.close()


def big_room(net: Network, messages: int) -> str:
    """ana's invite-only room with a name and ``messages`` messages; bob invited."""
    room = net.hub.create_room(ANA, initial_state=[
        ("m.room.join_rules", "", m.JoinRulesContent(JoinRule.INVITE).encode()),
        ("m.room.name", "", m.TextContent(b"big").encode())])[0].room_id
    for i in range(messages):
        net.message(room, ANA, f"before {i}")
    net.submit(room, ANA, "m.room.user", BOB, m.UserContent(Participation.INVITE).encode())
    return room


def hub_chain(net: Network, room: str) -> List[m.Event]:
    return m.decode_events([raw for _, raw in net.stores["hub.test"].iter_events(room)])


def assert_same_state(net: Network, follower, room: str) -> None:
    theirs, ours = net.hub.state(room), follower.state(room)
    assert ours.state_ids() == theirs.state_ids()
    assert ours.last_event_id == theirs.last_event_id
    assert ours.joined_users() == theirs.joined_users()


def test_join_from_the_snapshot_then_follow(net: Network) -> None:
    room = big_room(net, 300)
    f1 = net.followers["f1.test"]
    join = net.join(room, BOB)
    store = net.stores["f1.test"]
    # Only the latest event (our join) is a chain row; the state and auth chain are kept.
    assert store.count(room) == 1 and store.latest(room) == (JOIN_POSITION, join.event_id)
    kept = {k.event_id for k in store.kept_events(room)}
    assert set(net.hub.state(room).state_ids().values()) <= kept
    assert_same_state(net, f1, room)
    for i in range(10):
        net.message(room, BOB if i % 2 else ANA, f"after {i}")
    net.deliver_all()  # the invite (pending before), our join (held) and the new events
    assert_same_state(net, f1, room)
    assert store.count(room) == 11
    # Every later event gets every check: one the policy forbids is refused, nothing stored.
    state = net.hub.state(room)
    forged = m.LimitedEvent.create(room, "m.room.encrypted", None, "@eve:f1.test", b"x", net.keys["f1.test"]).to_event(
        [state.create_event_id], state.last_event_id, net.keys["hub.test"])
    with pytest.raises(m.PolicyRejectedError):
        f1.receive(forged, peer="hub.test")
    assert store.count(room) == 11


def test_deliveries_around_the_join_are_applied_once(net: Network) -> None:
    room = big_room(net, 30)
    f1 = net.followers["f1.test"]
    join = net.submit(room, BOB, "m.room.user", BOB, m.UserContent(Participation.JOIN).encode())
    racing = [net.message(room, ANA, f"racing {i}") for i in range(3)]
    # Our join was accepted, three events followed before the snapshot was taken: the run
    # holds them from our join up (so their deliveries are duplicates), and the events the
    # hub had queued for us (invite, join, the three) change nothing when they arrive.
    f1.join_recent(room, join)
    store = net.stores["f1.test"]
    assert [e.event_id for _, e in f1.history_before(room, racing[-1].event_id, 3)] == [
        join.event_id, *[e.event_id for e in racing[:-1]]]
    net.deliver_all()
    net.deliver_all()
    assert store.count(room) == 4
    later = net.message(room, ANA, "later")
    net.deliver_all()
    assert store.count(room) == 5 and f1.state(room).last_event_id == later.event_id


def test_pruning_keeps_state_and_recent_events_and_survives_a_restart(net: Network, tmp_path) -> None:
    room = big_room(net, 5)
    f1 = net.followers["f1.test"]
    net.join(room, BOB)
    store = net.stores["f1.test"]
    total = 3 * (net.keep_recent + f1.partial.prune_slack)
    for i in range(total):
        if i == 7:  # a state change that pruning must keep
            net.submit(room, ANA, "m.room.topic", "", m.TextContent(b"kept topic").encode())
        elif i == total // 2:
            net.submit(room, ANA, "m.room.user", "@cat:f1.test", m.UserContent(Participation.INVITE).encode())
        else:
            net.message(room, ANA, f"m{i}")
    net.deliver_all()
    held = store.count(room)
    assert net.keep_recent <= held <= net.keep_recent + f1.partial.prune_slack
    assert f1.partial.pruned == total + 1 - held
    # The rows held are the last ones of the hub's chain, contiguous.
    tail = hub_chain(net, room)[-held:]
    assert [m.Event.decode(raw).event_id for _, raw in store.iter_events(room)] == [e.event_id for e in tail]
    topic = net.hub.state(room).get_event_id("m.room.topic")
    assert store.holds(room, topic) and store.index_of(room, topic) is None  # kept, not a row
    assert_same_state(net, f1, room)
    # A follower restarted on the same store resumes from the partial history.
    f1.close()
    again = net.followers["f1.test"] = net.make_follower("f1.test")
    assert_same_state(net, again, room)
    net.message(room, BOB, "after the restart")
    net.deliver_all()
    assert_same_state(net, again, room)


def test_older_events_are_fetched_on_demand(net: Network) -> None:
    room = big_room(net, 2500)
    f1 = net.followers["f1.test"]
    net.join(room, BOB)
    store = net.stores["f1.test"]
    chain = hub_chain(net, room)
    # The page before our join: fetched from the hub, linked down from our join, stored.
    page = f1.history_before(room, chain[-1].event_id, 50)
    assert [e.event_id for _, e in page] == [e.event_id for e in chain[-51:-1]]
    assert store.count(room) == 51
    # An event far back (over a backfill page below what is held): walked to and linked.
    old = chain[40]
    assert f1.get_event(room, old.event_id).event_id == old.event_id
    assert store.index_of(room, old.event_id) is not None
    assert len(chain) - 1 - 40 <= f1.partial.fetched <= len(chain) - 2  # whole pages, the create kept
    # An event the hub does not have: not_found, nothing fetched.
    with pytest.raises(m.NotFoundError):
        f1.get_event(room, "$" + "A" * 43)
    # The whole history back to the create event, which the follower keeps.
    f1.history_before(room, old.event_id, 100)
    assert store.count(room) == len(chain) - 1
    # Pruning drops the fetched events again once deliveries continue.
    for i in range(net.keep_recent + f1.partial.prune_slack + 1):
        net.message(room, ANA, f"new {i}")
    net.deliver_all()
    assert store.count(room) <= net.keep_recent + f1.partial.prune_slack
    assert_same_state(net, f1, room)


# --- a hostile hub (in process) ------------------------------------------------------------------


def impostor_signed(event: m.Event, key_id: str) -> m.Event:
    """The same event (same ID) with a hub signature by another key under the hub's key ID."""
    return event.limited().to_event(list(event.auth_events), event.prev_event, m.SigningKey.generate(key_id))


def assert_nothing_stored(net: Network, room: str) -> None:
    store = net.stores["f1.test"]
    assert store.count(room) == 0 and not store.is_partial(room) and store.room_role(room) is None
    assert not net.followers["f1.test"].follows(room)


def test_hostile_snapshots_are_refused_and_store_nothing(net: Network) -> None:
    room = big_room(net, 3)
    hub_key_id = net.keys["hub.test"].key_id
    join = net.submit(room, BOB, "m.room.user", BOB, m.UserContent(Participation.JOIN).encode())
    state, auth_chain, latest = net.hub.snapshot(room)
    name = next(i for i, e in enumerate(state) if e.type == "m.room.name")
    in_auth_only = [e for e in auth_chain if e.event_id not in {s.event_id for s in state}]
    assert in_auth_only  # the invite bob's join superseded

    def snapshot_with(new_state, new_chain):
        return lambda room_id: (new_state, new_chain, latest)

    cases = [
        ("a state event whose hub signature fails",
         snapshot_with(state[:name] + [impostor_signed(state[name], hub_key_id)] + state[name + 1:], auth_chain), None,
         m.BadSignatureError),
        ("an auth chain missing an event",
         snapshot_with(state, [e for e in auth_chain if e.event_id != in_auth_only[0].event_id]), None,
         m.MalformedError),
        ("a state without its create event", snapshot_with(state[1:], auth_chain), None, m.MalformedError),
        ("a message in the state", snapshot_with(state + [net.message(room, ANA, "x")], auth_chain), None,
         m.MalformedError),
        ("a latest whose hub signature fails", snapshot_with(state, auth_chain),
         lambda room_id, event_id: impostor_signed(join, hub_key_id), m.BadSignatureError),
        ("a latest that is another event", snapshot_with(state, auth_chain),
         lambda room_id, event_id: hub_chain(net, room)[2], m.MalformedError),
    ]
    for what, snapshot, fetch, error in cases:
        f1 = net.make_follower("f1.test", snapshot=snapshot,
                               fetch_event=fetch or (lambda room_id, event_id: net.hub.get_event(room_id, event_id)))
        with pytest.raises(m.MimiError) as refused:
            f1.join_recent(room)  # not handing it our join: the follower fetches latest
        assert refused.type is error, f"{what}: {refused.value!r}"
        assert_nothing_stored(net, room)
    # The genuine snapshot joins.
    net.followers["f1.test"].join_recent(room, join)
    assert net.stores["f1.test"].is_partial(room)


def test_a_backfill_page_that_does_not_link_is_refused(net: Network) -> None:
    room = big_room(net, 30)
    chain = hub_chain(net, room)
    honest = net.followers["f1.test"]
    honest.join_recent(room)
    store = net.stores["f1.test"]
    before = list(store.iter_events(room))

    def skipping(room_id, before_id, limit):
        page = net.hub.backfill(room_id, before_id, limit)
        return page[:3] + page[4:]  # one event left out: the page no longer links

    def forged(room_id, before_id, limit):
        page = net.hub.backfill(room_id, before_id, limit)
        return [impostor_signed(page[0], net.keys["hub.test"].key_id)] + page[1:]

    for backfill, error in ((skipping, m.MalformedError), (forged, m.BadSignatureError)):
        f1 = net.make_follower("f1.test", backfill=backfill)
        with pytest.raises(error):
            f1.history_before(room, chain[-1].event_id, 10)
        assert list(store.iter_events(room)) == before
    assert len(honest.history_before(room, chain[-1].event_id, 10)) == 10


def test_full_mode_still_replays(tmp_path) -> None:
    net = Network(tmp_path, "hub.test", ["f1.test"], history="full")
    try:
        room = big_room(net, PRUNE_BATCH // 100)
        net.join(room, BOB)
        store = net.stores["f1.test"]
        assert not store.is_partial(room) and store.count(room) == net.stores["hub.test"].count(room)
    finally:
        net.close()


def test_the_history_before_the_snapshot_is_verified_in_the_background(net: Network) -> None:
    room = big_room(net, 1500)
    join = net.submit(room, BOB, "m.room.user", BOB, m.UserContent(Participation.JOIN).encode())
    f1 = net.make_follower("f1.test", background_prune=True, verify_history=True)
    try:
        f1.join_recent(room, join)
        assert f1.partial.wait_verified(room, timeout=60)
    finally:
        f1.close()
    assert f1.partial.verification[room] == f"verified ({len(hub_chain(net, room))} events)"
    assert net.stores["f1.test"].count(room) == 1  # verifying stores nothing


def test_a_history_the_policy_forbids_fails_the_background_check(net: Network) -> None:
    """The hub signed a message of a user who never joined into the history: a recent
    follower joins on the hub's word, its background replay finds the event and says so."""
    from mimi_signaling.node.hub import Hub

    room = big_room(net, 10)
    state = net.hub.state(room)
    forged = m.LimitedEvent.create(room, "m.room.encrypted", None, "@eve:f1.test", b"never joined",
                                   net.keys["f1.test"]).to_event([state.create_event_id], state.last_event_id,
                                                                 net.keys["hub.test"])
    hub_store = net.stores["hub.test"]
    index = hub_store.latest(room)[0] + 1
    hub_store.append(room, index, forged.event_id, forged.prev_event, forged.encode(), forged.type, None, forged.sender)
    net.hub = Hub("hub.test", net.keystores["hub.test"], hub_store)  # reloads the room without checks
    for i in range(1200):
        net.message(room, ANA, f"later {i}")
    join = net.submit(room, BOB, "m.room.user", BOB, m.UserContent(Participation.JOIN).encode())
    f1 = net.make_follower("f1.test", background_prune=True, verify_history=True)
    try:
        f1.join_recent(room, join)
        assert not f1.partial.wait_verified(room, timeout=60)
    finally:
        f1.close()
    verdict = f1.partial.verification[room]
    assert verdict.startswith("failed: PolicyRejectedError"), verdict
    assert f1.follows(room)  # the join stands: the verdict is a report for the operator
