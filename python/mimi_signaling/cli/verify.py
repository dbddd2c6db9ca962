"""``mimi verify FILE``: check a whole room file (PROFILE.md section 9).

Exit status: 0 when every event is valid; 1 when an event (or the file's content) is not,
with a message naming the first bad event's index, ID and reason; 2 for usage errors and
files that cannot be read or are not room files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Optional, TextIO

from ..roomfile import DEFAULT_CHUNK, RoomFileNotReadable, VerifyReport, verify_room_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="check a room file: every event, its hashes, signatures, links and the policy",
        description="Check a room file (PROFILE.md sections 2-6). Exits 0 only when every event is valid; "
        "otherwise names the first bad event (index, ID, reason) and exits 1. Exit 2: the file cannot be "
        "read or is not a room file.",
    )
    p.add_argument("file", metavar="FILE", help="the room file (as written by mimi export)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--threads", type=int, metavar="N", help="worker threads for signature checks (default: all cores)")
    p.add_argument("--chunk", type=int, metavar="N", default=DEFAULT_CHUNK,
                   help=f"events validated per batch (default {DEFAULT_CHUNK})")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary when the room is valid")
    p.set_defaults(handler=run)


class ProgressBar:
    """A plain carriage-return progress bar (by bytes of the file) for a terminal."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.perf_counter()
        self.shown = False
        self.last = 0.0

    def __call__(self, events: int, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        fraction = min(1.0, done / total) if total else 1.0
        filled = int(self.WIDTH * fraction)
        rate = events / (now - self.started) if now > self.started else 0.0
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {fraction * 100:5.1f}%  {events:,} events  {rate:,.0f} events/s ")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * (self.WIDTH + 60) + "\r")
            self.stream.flush()


def summary(report: VerifyReport) -> str:
    return f"{report.elapsed:.2f} s, {report.events_per_second:,.0f} events/s"


def run(args: argparse.Namespace) -> int:
    if args.chunk < 1:
        print("mimi verify: --chunk must be at least 1", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print("mimi verify: --threads must be at least 1", file=sys.stderr)
        return 2
    bar: Optional[ProgressBar] = None
    if not args.quiet and sys.stderr.isatty():
        bar = ProgressBar(sys.stderr)
    try:
        report = verify_room_file(args.file, chunk=args.chunk, threads=args.threads, progress=bar)
    except RoomFileNotReadable as exc:
        print(f"mimi verify: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.clear()

    if args.json:
        out = {"file": report.path, **report.to_dict()}
        del out["path"]
        print(json.dumps(out, indent=2))
        return 0 if report.ok else 1
    if report.ok:
        if not args.quiet:
            print(f"OK {args.file}: room {report.room_id}: {report.events_checked:,} events, all valid ({summary(report)})")
        return 0
    failure = report.failure
    assert failure is not None
    if failure.index is None:
        print(f"INVALID {args.file}: {failure.code_name} ({failure.error}): {failure.reason}")
    else:
        print(
            f"INVALID {args.file}: first bad event: index {failure.index}, "
            f"ID {failure.event_id or '(does not decode)'}: {failure.code_name} ({failure.error}): {failure.reason}"
        )
        if not args.quiet:
            print(f"{report.events_checked:,} valid events before it ({summary(report)})")
    return 1
