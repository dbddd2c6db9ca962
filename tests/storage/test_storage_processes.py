"""Stores shared with other processes: durability across SIGKILL, concurrent writers."""

from __future__ import annotations

import json
import subprocess
from typing import List

from mimi_signaling.storage import open_store
from support.storage_helpers import start_worker

ROOM = "!race:hub.example"
_WAIT_S = 180


def _read_line(process: subprocess.Popen) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:  # the worker died: show why
        process.wait(timeout=_WAIT_S)
        raise AssertionError(f"worker exited {process.returncode}: {process.stderr.read()}")  # type: ignore[union-attr]
    return line.strip()


def test_append_is_durable_when_it_returns(store_url: str, workers: List[subprocess.Popen]) -> None:
    """A worker appends, says so, and is killed with SIGKILL at once: no clean close, no
    buffered writes left to flush.  Reopened, the store has the events and the queue entry."""
    worker = start_worker("append-and-wait", store_url, ROOM)
    workers.append(worker)
    assert _read_line(worker) == "appended"
    worker.kill()
    worker.wait(timeout=_WAIT_S)
    with open_store(store_url) as store:
        assert store.latest(ROOM) == (1, "$join")
        assert store.get_event(ROOM, "$create") == b"create-bytes"
        assert store.get_by_index(ROOM, 1) == b"\x00join\xff"
        assert [q.event_id for q in store.pending("peer.example")] == ["$join"]


def test_two_processes_appending_to_one_room_never_fork(
    store_url: str, workers: List[subprocess.Popen]
) -> None:
    """Two processes race to extend one room (200 appends in all), each taking the next index
    from latest() and retrying when it loses.  The room ends as one linear chain holding every
    acknowledged append at the index it was acknowledged with."""
    per_process = 100
    with open_store(store_url) as store:
        store.append(ROOM, 0, "$create", "", b"create", "m.room.create", "", "@a:hub.example")
    for name in ("p1", "p2"):
        workers.append(start_worker("race", store_url, ROOM, name, str(per_process)))
    for worker in workers:
        assert _read_line(worker) == "ready"
    for worker in workers:  # release both as close together as possible
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    reports = [json.loads(_read_line(worker)) for worker in workers]
    for worker in workers:
        assert worker.wait(timeout=_WAIT_S) == 0
    acked = {event_id: index for report in reports for index, event_id in report["acked"]}
    assert all(len(report["acked"]) == per_process for report in reports)

    with open_store(store_url) as store:
        chain = list(store.iter_events(ROOM, batch=37))
        assert store.count(ROOM) == 2 * per_process + 1
    assert [index for index, _ in chain] == list(range(2 * per_process + 1))
    # Walk the chain: each event names the one before it, so there is one branch only.
    previous = "$create"
    for index, data in chain[1:]:
        event = json.loads(data)
        assert event["prev"] == previous, f"broken link at {index}"
        assert acked.pop(event["id"]) == index  # acknowledged, at this very index
        previous = event["id"]
    assert acked == {}  # no acknowledged append is missing from the chain
