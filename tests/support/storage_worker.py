"""Subprocess side of the storage tests (run as a script; talks over stdin/stdout).

    _worker.py append-and-wait URL ROOM   append two events (the second queued for
                                          "peer.example"), print "appended", then block
                                          until killed
    _worker.py race URL ROOM NAME COUNT   print "ready", wait for "go" on stdin, then append
                                          COUNT events to ROOM at latest()+1, retrying on
                                          ChainConflictError; print a JSON report
"""

from __future__ import annotations

import json
import sys
import time

from mimi_signaling.storage import ChainConflictError, open_store

_RACE_DEADLINE_S = 120.0


def append_and_wait(url: str, room: str) -> None:
    store = open_store(url)
    store.append(room, 0, "$create", "", b"create-bytes", "m.room.create", "", "@a:hub.example")
    store.append(room, 1, "$join", "$create", b"\x00join\xff", "m.room.user", "@a:hub.example",
                 "@a:hub.example", destinations=["peer.example"])
    print("appended", flush=True)
    sys.stdin.readline()  # the parent kills us with SIGKILL before this returns


def race(url: str, room: str, name: str, count: int) -> None:
    store = open_store(url)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected 'go'")
    acked: list[tuple[int, str]] = []
    conflicts = 0
    deadline = time.monotonic() + _RACE_DEADLINE_S
    for attempt in range(count * 50):  # bounded: every attempt either succeeds or loses a race
        if len(acked) == count or time.monotonic() > deadline:
            break
        index, prev = store.latest(room) or (-1, "")
        event_id = f"${name}-{len(acked)}"
        try:
            # The bytes repeat the links so the test can walk the chain from the bytes alone.
            data = json.dumps({"id": event_id, "prev": prev, "attempt": attempt}).encode()
            store.append(room, index + 1, event_id, prev, data, "org.example.msg", None,
                         f"@{name}:hub.example")
        except ChainConflictError:
            conflicts += 1
            continue
        acked.append((index + 1, event_id))
    store.close()
    print(json.dumps({"acked": acked, "conflicts": conflicts}), flush=True)


def main(argv: list[str]) -> None:
    command, url, room, *rest = argv
    if command == "append-and-wait":
        append_and_wait(url, room)
    elif command == "race":
        race(url, room, rest[0], int(rest[1]))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
