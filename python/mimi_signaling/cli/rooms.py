"""Room commands that drive a running server through its local API:
``room create``, ``send``, ``invite``, ``join``, ``leave``, ``kick``, ``ban``, ``unban``,
``knock``, ``state``, ``history``, ``rooms``, ``status``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Iterator, List

from ..config import Config


def _client(args: argparse.Namespace):
    from ..server import LocalClient

    return LocalClient(Config.load(args.config))


def _print(result: Any, args: argparse.Namespace) -> None:
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2))
        return
    rows = result if isinstance(result, list) else [result]
    for r in rows:
        if isinstance(r, dict) and "event_id" in r:
            sk = "" if r.get("state_key") is None else f" [{r['state_key']}]"
            idx = f"{r['index']:>6} " if "index" in r else ""
            print(f"{idx}{r['event_id']} {r['type']}{sk} from {r['sender']}: {r['content']}")
        else:
            print(json.dumps(r))


#: Bytes of texts per local ``send_many`` call: each call stays far below the server's request
#: body limit; the server sends each call's events to the room's hub as batches.
LOCAL_CHUNK_BYTES = 32 * 1024


def _chunks(texts: List[str]) -> Iterator[List[str]]:
    chunk: List[str] = []
    size = 0
    for text in texts:
        if chunk and size + len(text.encode()) + 8 > LOCAL_CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(text)
        size += len(text.encode()) + 8
    if chunk:
        yield chunk


def _send(a: argparse.Namespace) -> int:
    """``send TEXT``: one event.  ``send --count N TEXT`` / ``send --file PATH``: many messages,
    sent by the server as batches; prints the counts and every refusal, exit 1 on any."""
    client = _client(a)
    if a.file is None and a.count == 1:
        if a.text is None:
            raise SystemExit("mimi send: TEXT is required (or --file)")
        _print(client.call("send", room_id=a.room, sender=a.sender, type=a.type, state_key=a.state_key, text=a.text), a)
        return 0
    if a.state_key is not None:
        raise SystemExit("mimi send: --count and --file send messages, not state events")
    if a.file is not None:
        if a.text is not None:
            raise SystemExit("mimi send: give TEXT or --file, not both")
        texts = a.file.read_text(encoding="utf-8").splitlines()
    elif a.text is None or a.count < 1:
        raise SystemExit("mimi send: --count needs a positive count and TEXT")
    else:
        texts = [f"{a.text} {i}" for i in range(1, a.count + 1)]
    accepted: List[str] = []
    refused: List[Any] = []
    for chunk in _chunks(texts):
        result = client.call("send_many", room_id=a.room, sender=a.sender, type=a.type, texts=chunk)
        refused += [{**r, "index": r["index"] + len(accepted) + len(refused)} for r in result["refused"]]
        accepted += result["accepted"]
    _print({"sent": len(texts), "accepted": len(accepted), "refused": refused, "last_event_id": accepted[-1] if accepted else None}, a)
    return 1 if refused else 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", required=True)
    p.add_argument("--json", action="store_true")


def register(sub: argparse._SubParsersAction) -> None:
    room = sub.add_parser("room", help="room commands")
    rsub = room.add_subparsers(dest="room_command", metavar="ACTION")
    c = rsub.add_parser("create", help="create a room on this server (its hub)")
    _common(c)
    c.add_argument("--creator", required=True)
    c.add_argument("--room-id")
    c.add_argument("--join-rule", choices=["invite", "knock", "public"])
    c.add_argument("--name")
    c.set_defaults(handler=lambda a: _print(_client(a).call("create_room", creator=a.creator, room_id=a.room_id,
                                                                join_rule=a.join_rule, name=a.name), a))

    s = sub.add_parser("send", help="send an event as a local user")
    _common(s)
    s.add_argument("--room", required=True)
    s.add_argument("--sender", required=True)
    s.add_argument("--type", default="m.room.encrypted")
    s.add_argument("--state-key")
    s.add_argument("--count", type=int, default=1,
                   help="send TEXT this many times, numbered (\"TEXT 1\", ...): as batches, not one by one")
    s.add_argument("--file", type=Path, help="send each line of this file as one event (as batches); no TEXT")
    s.add_argument("text", nargs="?", help="content (UTF-8 text, sent as the raw content bytes)")
    s.set_defaults(handler=_send)

    for name, participation, who in [
        ("invite", "invite", "target"),
        ("kick", "leave", "target"),
        ("ban", "ban", "target"),
        ("unban", "leave", "target"),
        ("join", "join", "self"),
        ("leave", "leave", "self"),
        ("knock", "knock", "self"),
    ]:
        p = sub.add_parser(name, help=f"{name} ({participation} participation)")
        _common(p)
        p.add_argument("--room", required=True)
        p.add_argument("--reason", default="")
        if who == "target":
            p.add_argument("--sender", required=True)
            p.add_argument("target")
        else:
            p.add_argument("user")
        p.set_defaults(handler=_membership(participation, who))

    st = sub.add_parser("state", help="the room's current state events")
    _common(st)
    st.add_argument("--room", required=True)
    st.set_defaults(handler=lambda a: _print(_client(a).call("state", room_id=a.room), a))

    h = sub.add_parser("history", help="the room's latest events (or those before an event)")
    _common(h)
    h.add_argument("--room", required=True)
    h.add_argument("--limit", type=int, default=50)
    h.add_argument("--before", metavar="EVENT_ID",
                   help="the events preceding this one (a partial history fetches them from the hub)")
    h.set_defaults(handler=lambda a: _print(_client(a).call("history", room_id=a.room, limit=a.limit,
                                                            **({"before": a.before} if a.before else {})), a))

    r = sub.add_parser("rooms", help="rooms on this server")
    _common(r)
    r.set_defaults(handler=lambda a: _print(_client(a).call("rooms"), a))

    stat = sub.add_parser("status", help="server status: rooms and fan-out queues")
    _common(stat)
    stat.set_defaults(handler=lambda a: _print(_client(a).call("status"), a))


def _membership(participation: str, who: str):
    def handler(a: argparse.Namespace) -> int:
        sender = a.sender if who == "target" else a.user
        target = a.target if who == "target" else a.user
        _print(_client(a).call("membership", room_id=a.room, sender=sender, target=target,
                               participation=participation, reason=a.reason), a)
        return 0

    return handler
