"""``mimi destinations``: where each fan-out destination stands, and ending a backoff.

``mimi destinations --config FILE`` lists every destination of the running server (its
peers, and any other server it has queued events for) with the backlog, the age of the
oldest queued event, the last successful delivery and the current backoff;
``mimi destinations reset NAME --config FILE`` ends NAME's backoff now, so its queue is
retried at once (after fixing the peer, say).  Both go through the server's local API.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, List

from ..config import Config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("destinations", help="fan-out destinations: backlog, last success, backoff; reset a backoff")
    p.add_argument("action", nargs="?", choices=["list", "reset"], default="list")
    p.add_argument("name", nargs="?", help="the destination server to reset")
    p.add_argument("--config", "-c", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..server import LocalClient

    client = LocalClient(Config.load(args.config))
    if args.action == "reset":
        if not args.name:
            raise SystemExit("mimi destinations reset: name the destination (mimi destinations reset NAME)")
        result = client.call("destinations_reset", name=args.name)
        if args.json:
            print(json.dumps(result))
        elif result["was_backing_off"]:
            print(f"{args.name}: backoff ended, retrying now")
        else:
            print(f"{args.name}: was not backing off")
        return 0
    rows = client.call("destinations")
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows, time.time()))
    return 0


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def format_table(rows: List[Dict[str, Any]], now: float) -> str:
    header = ("DESTINATION", "BACKLOG", "OLDEST", "LAST SUCCESS", "BACKOFF", "LAST ERROR")
    lines = [header]
    for r in rows:
        last = "never" if r["last_success"] is None else _age(now - r["last_success"]) + " ago"
        if r["failures"]:
            backoff = f"{r['failures']} failed, next in {_age(r['backoff_remaining'])}"
        else:
            backoff = "-"
        lines.append((r["name"], str(r["backlog"]), _age(r["oldest_age"]) if r["backlog"] else "-", last, backoff,
                      (r["last_error"] or "-")[:60]))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
