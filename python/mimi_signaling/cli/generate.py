"""``mimi generate-room FILE --events N``: write a synthetic, valid room file (for tests and
benchmarks), optionally with faults at chosen indices."""

from __future__ import annotations

import argparse
import sys
from typing import List

from ..testing.rooms import FAULT_KINDS, Fault, generate_room


def _fault(text: str) -> Fault:
    kind, sep, index = text.rpartition(":")
    if not sep or not index.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not KIND:INDEX")
    try:
        return Fault(kind, int(index))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate-room",
        help="write a synthetic room file (testing and benchmarks)",
        description="Write a valid m.0 room of N events with real Ed25519 keys: setup (create, joins, "
        "roles, role map), then m.room.encrypted messages and periodic state changes. "
        f"Fault kinds for --fault: {', '.join(FAULT_KINDS)}.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--events", "-n", type=int, required=True, metavar="N", help="number of events")
    p.add_argument("--seed", type=int, help="make the file reproducible byte for byte")
    p.add_argument("--servers", type=int, default=2, help="servers in the room, the hub included (default 2)")
    p.add_argument("--users-per-server", type=int, default=3, help="users per server (default 3)")
    p.add_argument("--message-size", type=int, default=64, help="ciphertext bytes per message (default 64)")
    p.add_argument("--state-every", type=int, default=500, help="a state change every N events (default 500)")
    p.add_argument("--fault", type=_fault, action="append", default=[], metavar="KIND:INDEX",
                   help="break the event at INDEX (repeatable)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    faults: List[Fault] = args.fault
    try:
        room = generate_room(
            args.file, args.events, seed=args.seed, servers=args.servers, users_per_server=args.users_per_server,
            message_size=args.message_size, state_every=args.state_every, faults=faults,
        )
    except ValueError as exc:
        print(f"mimi generate-room: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mimi generate-room: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    rate = room.events / room.elapsed if room.elapsed else 0.0
    print(f"wrote {room.path}: room {room.room_id}, {room.events:,} events in {room.elapsed:.1f} s ({rate:,.0f} events/s)")
    for fault, event_id in room.faults:
        print(f"fault {fault.kind} at index {fault.index}: {event_id or '(does not decode)'}")
    return 0
