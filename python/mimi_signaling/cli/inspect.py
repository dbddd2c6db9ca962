"""``mimi inspect FILE``: list a room file's keys and events in readable form.

Nothing is verified here (``mimi verify`` does that); events are decoded one by one, so a bad
event is shown as such and the listing goes on.  Exit status: 0 when every listed record
decodes, 1 when one does not, 2 when the file cannot be read or is not a room file.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

from .. import (
    ROOM_FILE_MAGIC,
    CreateContent,
    Event,
    HistoryVisibilityContent,
    JoinRulesContent,
    MimiError,
    RoleContent,
    RoleMapContent,
    RoomFileReader,
    TextContent,
    UserContent,
)
from ..content import JoinRule, Participation, PermissionKind, Visibility, decode_content

PREVIEW_BYTES = 24


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="list the keys and events of a room file")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--limit", type=int, metavar="N", help="list at most N events (with --html: chart the first N, default 400)")
    p.add_argument("--start", type=int, default=0, metavar="I", help="skip the events before index I")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--html", metavar="OUT", help="write one self-contained HTML page of the room to OUT "
                   "(chain with auth edges, membership timeline, senders, policy changes)")
    p.set_defaults(handler=run)


# --- content rendering -------------------------------------------------------------------------


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def opaque_preview(data: bytes) -> str:
    """Length, a short hex prefix and its printable ASCII (others as ".")."""
    head = data[:PREVIEW_BYTES]
    more = "..." if len(data) > PREVIEW_BYTES else ""
    ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in head)
    return f"opaque, {len(data)} bytes: {head.hex()}{more} |{ascii_}|"


def _enum_name(enum: Any, value: int) -> str:
    try:
        return enum(value).name.lower()
    except ValueError:
        return str(value)


def content_json(decoded: Any) -> Any:
    """The decoded content as plain JSON values (opaque bytes: length, hex, UTF-8 text)."""
    if isinstance(decoded, (bytes, bytearray)):
        data = bytes(decoded)
        out: Dict[str, Any] = {"opaque": True, "length": len(data), "hex": data.hex()}
        try:
            out["utf8"] = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        return out
    if isinstance(decoded, CreateContent):
        return {"policy_id": decoded.policy_id, "encryption_algorithm": decoded.encryption_algorithm}
    if isinstance(decoded, UserContent):
        return {"participation": _enum_name(Participation, decoded.participation), "reason": _text(decoded.reason)}
    if isinstance(decoded, TextContent):
        return {"value": None if decoded.value is None else _text(decoded.value)}
    if isinstance(decoded, JoinRulesContent):
        return {"rule": _enum_name(JoinRule, decoded.rule)}
    if isinstance(decoded, HistoryVisibilityContent):
        return {"visibility": _enum_name(Visibility, decoded.visibility)}
    if isinstance(decoded, RoleContent):
        permissions = []
        for p in decoded.permissions:
            entry: Dict[str, Any] = {"kind": _enum_name(PermissionKind, p.kind)}
            if p.granted is not None:
                entry["granted"] = p.granted
            if p.event_types is not None:
                entry["event_types"] = [[t, g] for t, g in p.event_types]
            if p.role_ids is not None:
                entry["role_ids"] = list(p.role_ids)
            permissions.append(entry)
        return {"permissions": permissions}
    if isinstance(decoded, RoleMapContent):
        return {"roles": [{"role_id": r.role_id, "user_ids": list(r.user_ids), "order": r.order} for r in decoded.roles]}
    return repr(decoded)


def _role_text(decoded: RoleContent) -> str:
    parts = []
    for p in decoded.permissions:
        name = _enum_name(PermissionKind, p.kind)
        if p.granted is not None:
            parts.append(f"{name}={'yes' if p.granted else 'no'}")
        elif p.event_types is not None:
            parts.append(f"{name}=[" + ", ".join(f"{t}:{'yes' if g else 'no'}" for t, g in p.event_types) + "]")
        elif p.role_ids is not None:
            parts.append(f"{name}=[" + ", ".join(p.role_ids) + "]")
    return "RoleContent(" + "; ".join(parts) + ")"


def _role_map_text(decoded: RoleMapContent) -> str:
    roles = [f"{r.role_id} order={r.order} users=[{', '.join(r.user_ids)}]" for r in decoded.roles]
    return "RoleMapContent(" + "; ".join(roles) + ")"


def content_text(decoded: Any) -> str:
    """One line: the content class's repr (enum names added); role contents spelt out."""
    if isinstance(decoded, (bytes, bytearray)):
        return opaque_preview(bytes(decoded))
    if isinstance(decoded, RoleContent):
        return _role_text(decoded)
    if isinstance(decoded, RoleMapContent):
        return _role_map_text(decoded)
    text = repr(decoded)
    # The reprs show enum fields as numbers: add their names.
    if isinstance(decoded, UserContent):
        text += f"  # {_enum_name(Participation, decoded.participation)}"
    elif isinstance(decoded, JoinRulesContent):
        text += f"  # {_enum_name(JoinRule, decoded.rule)}"
    elif isinstance(decoded, HistoryVisibilityContent):
        text += f"  # {_enum_name(Visibility, decoded.visibility)}"
    return text


# --- listing -------------------------------------------------------------------------------------


def _event_entry(index: int, blob: bytes) -> Dict[str, Any]:
    try:
        event = Event.decode(blob)
    except MimiError as exc:
        return {"index": index, "error": f"{exc.name}: {exc}", "length": len(blob)}
    entry: Dict[str, Any] = {
        "index": index,
        "event_id": event.event_id,
        "type": event.type,
        "state_key": event.state_key,
        "sender": event.sender,
        "auth_events": list(event.auth_events),
        "prev_event": event.prev_event,
    }
    try:
        decoded = decode_content(event.type, event.content)
    except MimiError as exc:
        entry["content_error"] = f"{exc.name}: {exc}"
        entry["content"] = content_json(bytes(event.content))
        entry["content_text"] = opaque_preview(bytes(event.content))
        return entry
    if event.is_redacted():
        entry["redacted"] = True
    entry["content"] = content_json(decoded)
    entry["content_text"] = content_text(decoded)
    return entry


def _print_entry(entry: Dict[str, Any]) -> None:
    if "error" in entry:
        print(f"{entry['index']:>8}  (does not decode, {entry['length']} bytes): {entry['error']}")
        return
    state_key = "" if entry["state_key"] is None else f" [{entry['state_key']!r}]"
    print(f"{entry['index']:>8}  {entry['event_id']}  {entry['type']}{state_key}  from {entry['sender']}")
    note = " (redacted)" if entry.get("redacted") else ""
    if "content_error" in entry:
        note = f" (content does not decode: {entry['content_error']})"
    print(f"{'':>10}{entry['content_text']}{note}")


def _write_html(args: argparse.Namespace) -> int:
    from .inspect_html import DEFAULT_CHART_EVENTS, read_picture, render_room_html

    try:
        picture = read_picture(args.file, args.limit if args.limit is not None else DEFAULT_CHART_EVENTS)
    except MimiError as exc:
        print(f"mimi inspect: {args.file}: {exc.name}: {exc}", file=sys.stderr)
        return 1
    page = render_room_html(picture)
    try:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(page)
    except OSError as exc:
        print(f"mimi inspect: {args.html}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.html}: {picture.events} events, {len(picture.membership)} users")
    return 1 if picture.undecodable or picture.read_error else 0


def run(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0 or args.start < 0:
        print("mimi inspect: --limit and --start must not be negative", file=sys.stderr)
        return 2
    try:
        with open(args.file, "rb") as f:
            head = f.read(len(ROOM_FILE_MAGIC))
    except OSError as exc:
        print(f"mimi inspect: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if head != ROOM_FILE_MAGIC:
        print(f"mimi inspect: {args.file}: not a room file (no MIMIROOM header)", file=sys.stderr)
        return 2
    if args.html:
        return _write_html(args)
    try:
        reader = RoomFileReader(args.file)
    except MimiError as exc:
        print(f"mimi inspect: {args.file}: {exc.name}: {exc}", file=sys.stderr)
        return 1

    keys: List[Dict[str, Any]] = [
        {
            "server_name": sk.server_name,
            "keys": [{"key_id": k.key_id, "public_key": k.public_key.hex(), "expired_ts": k.expired_ts} for k in sk.keys],
        }
        for sk in reader.server_keys
    ]
    if not args.json:
        print(f"room file {args.file}")
        for sk in keys:
            key_list = ", ".join(
                f"{k['key_id']} ({'current' if not k['expired_ts'] else 'expired ' + str(k['expired_ts'])})"
                for k in sk["keys"]
            )
            print(f"keys of {sk['server_name']}: {key_list}")

    events: List[Dict[str, Any]] = []
    bad = False
    error: Optional[str] = None
    index = 0
    listed = 0
    while args.limit is None or listed < args.limit:
        want = 4096 if args.limit is None else min(4096, args.limit - listed + max(0, args.start - index))
        try:
            blobs = reader.read_events(max(1, want))
        except MimiError as exc:
            error = f"record {exc.index if exc.index is not None else index}: {exc.name}: {exc}"
            bad = True
            break
        if not blobs:
            break
        for blob in blobs:
            if index >= args.start and (args.limit is None or listed < args.limit):
                entry = _event_entry(index, blob)
                bad = bad or "error" in entry
                listed += 1
                if args.json:
                    events.append(entry)
                else:
                    _print_entry(entry)
            index += 1
    if args.json:
        doc: Dict[str, Any] = {"file": args.file, "server_keys": keys, "events": events}
        if error is not None:
            doc["error"] = error
        print(json.dumps(doc, indent=2))
    else:
        if error is not None:
            print(f"cannot read further: {error}")
        print(f"{listed} events listed")
    return 1 if bad else 0
