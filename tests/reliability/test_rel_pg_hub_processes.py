"""Three hub processes for one server name on one PostgreSQL database, all accepting for the
same two rooms at once (``tests/e2e/test_e2e_pg_hubs.py`` has two processes and one room):
each room keeps one linear chain, every acknowledged event is in it exactly once, each
process's sends keep their order, and every room's export passes ``mimi verify``."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import List

import pytest

import mimi_signaling as ms
from mimi_signaling.testing.cluster import ServerProcess
from mimi_signaling.storage import open_store
from mimi_signaling.server.federation import SUBMIT

from support.e2ekit import ALICE, HUB, MESSAGE, Sender, WireClient, event_ids, export_and_verify, hub_process_configs
from support.relkit import DAVE, assert_linear, record

PROCESSES = 3
ROOMS = 2
PER_SENDER = int(os.environ.get("MIMI_CI_PG_HUB_SENDS", "40"))

pytestmark = pytest.mark.postgres


@pytest.mark.timeout(240)
def test_three_hub_processes_two_rooms(fresh_pg_url: str, tmp_path: Path, extra_processes: List[ServerProcess]) -> None:
    paths = hub_process_configs(tmp_path, fresh_pg_url, PROCESSES)
    hubs = [ServerProcess(f"hub.test#{i}", p, p.parent / "server.log") for i, p in enumerate(paths)]
    extra_processes.extend(hubs)
    for hub in hubs:
        hub.start()

    rooms = []
    for r in range(ROOMS):
        room = hubs[r % PROCESSES].call("create_room", creator=ALICE, name=f"shared room {r}")["room_id"]
        hubs[r % PROCESSES].call("membership", room_id=room, sender=ALICE, target=DAVE, participation="invite")
        hubs[(r + 1) % PROCESSES].call("membership", room_id=room, sender=DAVE, target=DAVE, participation="join")
        rooms.append(room)
    # Every process sends into every room, as alice and as dave: 12 senders at once.
    senders = [
        Sender(hub, room, user, limit=PER_SENDER, tag=f"{hub.name} {user} room {r}", stop_on_error=False)
        for hub in hubs for r, room in enumerate(rooms) for user in (ALICE, DAVE)
    ]
    for s in senders:
        s.start()
    for s in senders:
        s.stop_when_done(timeout=200)
    errors = [e for s in senders for e in s.errors]

    acked_total = 0
    for room in rooms:
        chain = event_ids(hubs[0], room)
        for hub in hubs[1:]:
            assert event_ids(hub, room) == chain, f"{hub.name} lists another chain of {room}"
        with open_store(fresh_pg_url) as store:
            rows = list(store.iter_events(room))
        assert [i for i, _ in rows] == list(range(len(rows)))
        events = ms.decode_events([raw for _, raw in rows])
        assert [e.event_id for e in events] == chain
        assert_linear(events)
        counted = Counter(chain)
        ours = [s for s in senders if s.room_id == room]
        acked = [e for s in ours for e in s.acked]
        acked_total += len(acked)
        assert all(counted[e] == 1 for e in acked), "an acknowledged event is missing or stored twice"
        texts = Counter(e.content for e in events if e.type == MESSAGE)
        assert all(n == 1 for n in texts.values()), "a message was stored twice"
        assert len(texts) == len(acked), "a message was stored that no sender had acknowledged"
        for s in ours:
            positions = [chain.index(e) for e in s.acked]
            assert positions == sorted(positions), f"{s.tag}: acknowledged out of order"
        assert export_and_verify(hubs[0], room, tmp_path / f"{room[1:8]}.mimiroom") == len(chain)

    record("concurrency: 3 hub processes, 1 PostgreSQL database, 2 rooms", processes=PROCESSES, rooms=ROOMS,
           senders=len(senders), sends=len(senders) * PER_SENDER, acked=acked_total, failed_sends=len(errors),
           lost=0, duplicates=0, forks=0)
    assert not errors, f"{len(errors)} of {len(senders) * PER_SENDER} sends failed, e.g. {errors[:2]}"
    assert acked_total == len(senders) * PER_SENDER


@pytest.mark.timeout(120)
def test_replay_to_another_hub_process_stores_nothing(fresh_pg_url: str, tmp_path: Path,
                                                       extra_processes: List[ServerProcess]) -> None:
    """A submit accepted by one process and replayed to another is answered with the accepted
    event: the processes share the chain, so they must share what counts as a replay."""
    paths = hub_process_configs(tmp_path, fresh_pg_url, 2)
    hubs = [ServerProcess(f"hub.test#{i}", p, p.parent / "server.log") for i, p in enumerate(paths)]
    extra_processes.extend(hubs)
    for hub in hubs:
        hub.start()
    room = hubs[0].call("create_room", creator=ALICE, name="replayed across processes")["room_id"]
    hubs[1].call("send", room_id=room, sender=ALICE, type=MESSAGE, text="process 1 has loaded the room")
    # The hub's own server name over the wire, to each process in turn (TLS peer = origin).
    clients = [WireClient(SimpleNamespace(directory=tmp_path, servers={HUB: hub}), HUB, tmp_path / f"c{i}")
               for i, hub in enumerate(hubs)]
    limited = ms.LimitedEvent.create(room, MESSAGE, None, ALICE, b"sent once, replayed twice",
                                     hubs[0].config.load_signing_key())
    first = ms.Event.decode(clients[0].request(HUB, SUBMIT, limited.encode()))
    before = event_ids(hubs[0], room)
    again = ms.Event.decode(clients[0].request(HUB, SUBMIT, limited.encode()))
    assert again.event_id == first.event_id
    elsewhere = ms.Event.decode(clients[1].request(HUB, SUBMIT, limited.encode()))
    assert event_ids(hubs[0], room) == before, "the replay to the other process was stored again"
    assert elsewhere.event_id == first.event_id
