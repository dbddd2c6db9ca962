"""A follower with ``history = "recent"`` (a real ``mimi serve`` process) joining rooms of a hub
that runs in this test process over real mutual TLS: the hub is a genuine ``ServerNode`` with
the cluster's certificate and signing key for hub.test, whose answers the test may tamper
with.  Honest, the follower joins from the snapshot, fetches older history on demand and
resumes after a restart; hostile (a state event whose signature fails, an auth chain missing
an event, a ``latest`` whose hub signature fails, a backfill page that does not link), it
refuses the join or the page with a typed error and stores nothing of it."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Iterator, List

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import Cluster
from mimi_signaling.config import Config
from mimi_signaling.content import JoinRule, Participation
from mimi_signaling.server.federation import BACKFILL, GET_EVENT, SNAPSHOT

from support.e2ekit import ALICE, ALPHA, BOB, HUB, MESSAGE, history, open_read_only, stored_rows, wait_for
from support.peerkit import HubThread, Tamper
from support.relkit import reap

pytestmark = pytest.mark.timeout(180)

@pytest.fixture(scope="module")
def partial_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """alpha.test as a ``mimi serve`` process following with ``history = "recent"``; hub.test's
    configuration (certificate, key, port) is served by ``HubThread``."""

    def recent(config: Config) -> None:
        config.follower.history = "recent"
        config.follower.keep_recent = 50
        config.follower.verify_history = True

    cluster = Cluster(tmp_path_factory.mktemp("partial"), [HUB, ALPHA], configure=recent)
    try:
        cluster[ALPHA].start()
        yield cluster
    finally:
        reap([cluster[ALPHA]])


@pytest.fixture(scope="module")
def hub(partial_cluster: Cluster) -> Iterator[HubThread]:
    running = HubThread(Config.load(partial_cluster[HUB].config_path))
    try:
        yield running
    finally:
        running.stop()


def new_room(hub: HubThread, messages: int) -> str:
    node = hub.node
    room = hub.call(lambda: node.hub.create_room(ALICE, initial_state=[
        ("m.room.join_rules", "", ms.JoinRulesContent(JoinRule.INVITE).encode()),
        ("m.room.name", "", ms.TextContent(b"partial").encode())])[0].room_id)
    for i in range(messages):
        hub.send(room, ALICE, MESSAGE, None, f"old {i}".encode())
    hub.send(room, ALICE, "m.room.user", BOB, ms.UserContent(Participation.INVITE).encode())
    return room


def join(cluster: Cluster, room: str) -> Dict[str, Any]:
    return cluster[ALPHA].call("membership", room_id=room, sender=BOB, target=BOB, participation="join")


def kept_rows(config: Config, room: str) -> List[str]:
    conn = open_read_only(config)
    try:
        return [r[0] for r in conn.execute("SELECT event_id FROM kept_events WHERE room_id = ?", (room,))]
    finally:
        conn.close()


def assert_nothing_stored(cluster: Cluster, room: str) -> None:
    config = cluster[ALPHA].config
    assert stored_rows(config, room) == [] and kept_rows(config, room) == []
    assert room not in {r["room_id"] for r in cluster[ALPHA].call("rooms")}


def hub_events(hub: HubThread, room: str) -> List[ms.Event]:
    return ms.decode_events([raw for _, raw in hub.node.store.iter_events(room)])


def impostor(event: ms.Event, key_id: str) -> ms.Event:
    """The same event (same ID) with a hub signature by another key under the hub's key ID."""
    return event.limited().to_event(list(event.auth_events), event.prev_event, ms.SigningKey.generate(key_id))


def test_recent_join_over_mutual_tls_backfill_on_demand_and_restart(partial_cluster: Cluster, hub: HubThread) -> None:
    cluster = partial_cluster
    room = new_room(hub, 120)
    joined = join(cluster, room)
    rooms = {r["room_id"]: r for r in cluster[ALPHA].call("rooms")}
    assert rooms[room]["history"] == "recent" and rooms[room]["events"] == 1  # our join; the state is kept
    ours = {e["event_id"] for e in cluster[ALPHA].call("state", room_id=room)}
    assert ours == set(hub.node.hub.state(room).state_ids().values())
    # The background replay of the history before the snapshot (verify_history) reports.
    wait_for(lambda: {r["room_id"]: r for r in cluster[ALPHA].call("rooms")}[room]["verified"]
             == f"verified ({len(hub_events(hub, room))} events)", what="the background check of the history")
    # Older history on demand (`mimi room history --before`): fetched, checked, served.
    chain = hub_events(hub, room)
    page = cluster[ALPHA].call("history", room_id=room, limit=30, before=joined["event_id"])
    assert [r["event_id"] for r in page] == [e.event_id for e in chain[-31:-1]]
    # A peer's get_event of an event alpha does not hold (the hub asking, as any peer may):
    # fetched, linked down from what alpha holds, served (redacted: a partial history keeps
    # no visibility history).
    old = chain[5]
    body = asyncio.run_coroutine_threadsafe(
        hub.node.request(ALPHA, GET_EVENT, ms.wire.encode_get_event_request(room, old.event_id)), hub.loop).result(60)
    assert ms.Event.decode(body).event_id == old.event_id
    assert old.event_id in {e for _, e, _ in stored_rows(cluster[ALPHA].config, room)}
    # New events arrive with every check, pruning keeps keep_recent (50) of them and more.
    for i in range(130):
        hub.send(room, ALICE, MESSAGE, None, f"new {i}".encode())
    latest = hub_events(hub, room)[-1].event_id
    wait_for(lambda: history(cluster[ALPHA], room)[-1]["event_id"] == latest, what="the new events at alpha")
    # Pruning runs in the background after the delivery that took the run past 150 events.
    wait_for(lambda: 50 <= {r["room_id"]: r for r in cluster[ALPHA].call("rooms")}[room]["events"] <= 150,
             what="alpha to prune the room to at most keep_recent + slack events")
    status = cluster[ALPHA].call("status")["follower"]  # counters since the process started
    assert status["history"] == "recent" and status["fetched_on_demand"] >= 30 and status["pruned"] > 0
    # A restart resumes from the partial history and catches up.
    cluster[ALPHA].stop()
    hub.send(room, ALICE, MESSAGE, None, b"while alpha was down")
    cluster[ALPHA].start()
    latest = hub_events(hub, room)[-1].event_id
    wait_for(lambda: history(cluster[ALPHA], room)[-1]["event_id"] == latest, what="alpha to catch up")
    ours = {e["event_id"] for e in cluster[ALPHA].call("state", room_id=room)}
    assert ours == set(hub.node.hub.state(room).state_ids().values())


def _snapshot_rewrite(change: Callable[[List[ms.Event], List[ms.Event], str], tuple]) -> Tamper:
    def rewrite(body: bytes) -> bytes:
        return ms.wire.encode_snapshot_response(*change(*ms.wire.decode_snapshot_response(body)))

    return rewrite


def test_hostile_snapshots_refuse_the_join_and_store_nothing(partial_cluster: Cluster, hub: HubThread) -> None:
    cluster = partial_cluster
    key_id = hub.node.keys.signing_key.key_id

    def bad_state_signature(state, chain, latest):
        i = next(i for i, e in enumerate(state) if e.type == "m.room.name")
        return state[:i] + [impostor(state[i], key_id)] + state[i + 1:], chain, latest

    def auth_chain_missing(state, chain, latest):
        in_state = {e.event_id for e in state}
        dropped = next(e for e in chain if e.event_id not in in_state)  # bob's invite
        return state, [e for e in chain if e.event_id != dropped.event_id], latest

    cases = [
        ("a state event whose signature fails", {SNAPSHOT: _snapshot_rewrite(bad_state_signature)}, ms.BadSignatureError),
        ("an auth chain missing an event", {SNAPSHOT: _snapshot_rewrite(auth_chain_missing)}, ms.MalformedError),
        ("a latest whose hub signature fails",
         {GET_EVENT: lambda body: impostor(ms.Event.decode(body), key_id).encode()}, ms.BadSignatureError),
    ]
    for what, tamper, error in cases:
        room = new_room(hub, 5)
        if GET_EVENT in tamper:
            # latest must be fetched: another event follows our join before the snapshot.
            def snapshot_after_a_message(body: bytes, room: str = room) -> bytes:
                hub.node.hub.send(room, ALICE, MESSAGE, None, b"after the join")
                return ms.wire.encode_snapshot_response(*hub.node.hub.snapshot(room, for_server=ALPHA))

            tamper = {**tamper, SNAPSHOT: snapshot_after_a_message}
        hub.node.tamper = tamper
        try:
            with pytest.raises(ms.MimiError) as refused:
                join(cluster, room)
            assert refused.type is error, f"{what}: {refused.value!r}"
            # Still hostile: the hub's redelivery of our join (which would make alpha follow
            # the room, as after a cut-short join) meets the same answers.
            assert_nothing_stored(cluster, room)
        finally:
            hub.node.tamper = {}
    # The same follower joins honestly afterwards.
    room = new_room(hub, 5)
    join(cluster, room)
    assert len(kept_rows(cluster[ALPHA].config, room)) > 0


def test_a_backfill_page_that_does_not_link_is_refused(partial_cluster: Cluster, hub: HubThread) -> None:
    cluster = partial_cluster
    room = new_room(hub, 40)
    joined = join(cluster, room)
    before = stored_rows(cluster[ALPHA].config, room)

    def skip_one(body: bytes) -> bytes:
        page = ms.wire.decode_backfill_response(body)
        return ms.wire.encode_backfill_response(page[:2] + page[3:])

    hub.node.tamper = {BACKFILL: skip_one}
    try:
        with pytest.raises(ms.MalformedError, match="does not link"):
            cluster[ALPHA].call("history", room_id=room, limit=20, before=joined["event_id"])
    finally:
        hub.node.tamper = {}
    assert stored_rows(cluster[ALPHA].config, room) == before
    assert len(cluster[ALPHA].call("history", room_id=room, limit=20, before=joined["event_id"])) == 20
