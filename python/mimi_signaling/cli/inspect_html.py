"""``mimi inspect --html OUT FILE``: one self-contained HTML page of a room file, for people
who would rather look than read: the chain with its auth edges, a membership timeline per
user, who sent what, and when the policy state changed.

Inline SVG and CSS only: no script, no external asset, so the page opens anywhere (and in
a mail attachment).  Nothing is verified (``mimi verify`` does that); events that do not
decode are shown as such.  The chart covers the first ``limit`` events (default 400, the
readable width of a chain); the tables count every event read.
"""

from __future__ import annotations

import html
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .. import Event, MimiError, RoomFileReader

DEFAULT_CHART_EVENTS = 400
#: Colours of the participation states (timeline bars and legend).
PARTICIPATION_COLOURS = {
    "invite": "#f2b84b",
    "join": "#2f9e44",
    "leave": "#adb5bd",
    "ban": "#c92a2a",
    "knock": "#4dabf7",
}
STATE_COLOUR, MESSAGE_COLOUR, BAD_COLOUR = "#5f3dc4", "#1c7ed6", "#e03131"
STEP = 16  # pixels between two events of the chain


@dataclass
class RoomPicture:
    """What the page shows, gathered in one pass over the file."""

    path: str
    server_keys: List[Tuple[str, List[Tuple[str, int]]]] = field(default_factory=list)
    room_id: str = ""
    events: int = 0
    chart: List[Dict[str, Any]] = field(default_factory=list)  # entries of the first events
    sent: Counter = field(default_factory=Counter)  # (sender, type) -> count
    # user -> [(index, participation, sender)]
    membership: Dict[str, List[Tuple[int, str, str]]] = field(default_factory=lambda: defaultdict(list))
    policy_changes: List[Dict[str, Any]] = field(default_factory=list)  # state events other than m.room.user
    undecodable: List[int] = field(default_factory=list)
    read_error: Optional[str] = None


def read_picture(path: str, chart_events: int = DEFAULT_CHART_EVENTS) -> RoomPicture:
    from .inspect import _event_entry

    reader = RoomFileReader(path)
    pic = RoomPicture(path, [(sk.server_name, [(k.key_id, k.expired_ts) for k in sk.keys]) for sk in reader.server_keys])
    index = 0
    while True:
        try:
            blobs = reader.read_events(4096)
        except MimiError as exc:
            pic.read_error = f"record {exc.index if exc.index is not None else index}: {exc.name}: {exc}"
            break
        if not blobs:
            break
        for blob in blobs:
            entry = _event_entry(index, blob)
            if not pic.room_id and "error" not in entry:
                pic.room_id = Event.decode(blob).room_id
            if index < chart_events:
                pic.chart.append(entry)
            if "error" in entry:
                pic.undecodable.append(index)
            else:
                _take(pic, entry)
            index += 1
    pic.events = index
    return pic


def _take(pic: RoomPicture, entry: Dict[str, Any]) -> None:
    pic.sent[(entry["sender"], entry["type"])] += 1
    if entry["state_key"] is None:
        return
    content = entry.get("content")
    if entry["type"] == "m.room.user" and isinstance(content, dict) and "participation" in content:
        pic.membership[entry["state_key"]].append((entry["index"], content["participation"], entry["sender"]))
    elif entry["type"] != "m.room.user":
        pic.policy_changes.append(entry)


# --- rendering -----------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #fafbfc; }
h1 { font-size: 1.35em; margin: 0 0 .2em; } h2 { font-size: 1.1em; margin: 1.6em 0 .5em; }
.meta, .note { color: #5b6475; } code { font-size: 12px; }
table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px #0002; }
th, td { padding: .25em .7em; border-bottom: 1px solid #e3e6eb; text-align: left; vertical-align: top; }
th { background: #eef1f5; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; background: #fff; box-shadow: 0 1px 2px #0002; padding: .5em; }
.legend span { display: inline-block; margin-right: 1.2em; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: .3em; vertical-align: -1px; }
svg text { font: 11px system-ui, sans-serif; fill: #1d2330; }
"""


def _chain_svg(pic: RoomPicture) -> str:
    """Events left to right; prev links on the axis, auth edges as arcs above it (longer
    reach, higher arc), each event a dot: state (violet), message (blue), bad (red)."""
    entries = pic.chart
    if not entries:
        return "<p>no events</p>"
    ids = {e["event_id"]: e["index"] for e in entries if "event_id" in e}
    axis = 190
    width = STEP * len(entries) + 40
    parts = [f'<svg id="chain" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{axis + 60}" '
             f'viewBox="0 0 {width} {axis + 60}" role="img" aria-label="event chain with auth edges">']
    x = lambda i: 20 + STEP * i  # noqa: E731
    for e in entries:
        # A state event's auth edges are the policy's structure: drawn strong; the many
        # edges of messages (each cites the create event, its sender's membership, ...) faint.
        state = "error" not in e and e["state_key"] is not None
        stroke = f'stroke="{STATE_COLOUR}" stroke-opacity=".55"' if state else 'stroke="#868e96" stroke-opacity=".14"'
        for auth in e.get("auth_events", []):
            if auth not in ids:
                continue
            a, b = x(ids[auth]), x(e["index"])
            lift = min(axis - 12, 6 + 26 * math.log2(1 + (b - a) / STEP))  # longer reach, higher arc
            parts.append(f'<path class="auth-edge" d="M{a},{axis} Q{(a + b) / 2},{axis - 2 * lift:.0f} {b},{axis}" '
                         f'fill="none" {stroke} stroke-width="1"/>')
    parts.append(f'<line x1="{x(0)}" y1="{axis}" x2="{x(len(entries) - 1)}" y2="{axis}" stroke="#343a40" stroke-width="2"/>')
    for e in entries:
        i = e["index"]
        if "error" in e:
            colour, title = BAD_COLOUR, f"#{i}: does not decode: {e['error']}"
        else:
            colour = STATE_COLOUR if e["state_key"] is not None else MESSAGE_COLOUR
            key = "" if e["state_key"] is None else f" [{e['state_key']}]"
            title = f"#{i} {e['type']}{key} from {e['sender']}\n{e['event_id']}\nauth: {len(e['auth_events'])} events"
        parts.append(f'<circle class="event" cx="{x(i)}" cy="{axis}" r="5" fill="{colour}">'
                     f"<title>{html.escape(title)}</title></circle>")
        if i % 10 == 0:
            parts.append(f'<text x="{x(i)}" y="{axis + 22}" text-anchor="middle">{i}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _timeline_svg(pic: RoomPicture) -> str:
    """One row per user: a bar per participation state, from the event that set it to the
    next change (or the end of the file)."""
    users = sorted(pic.membership, key=lambda u: pic.membership[u][0][0])
    if not users:
        return "<p>no membership events</p>"
    label_w, width, row = 190, 760, 22
    end = max(pic.events, 1)
    scale = (width - label_w - 20) / end
    parts = [f'<svg id="membership" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{row * len(users) + 30}" role="img" aria-label="membership timeline per user">']
    for n, user in enumerate(users):
        y = 6 + n * row
        parts.append(f'<text class="user" x="0" y="{y + 12}">{html.escape(user)}</text>')
        changes = pic.membership[user]
        for k, (index, participation, sender) in enumerate(changes):
            stop = changes[k + 1][0] if k + 1 < len(changes) else end
            colour = PARTICIPATION_COLOURS.get(participation, "#868e96")
            x0, w = label_w + index * scale, max(2.0, (stop - index) * scale)
            title = f"{user}: {participation} at #{index} by {sender}"
            parts.append(f'<rect class="span {html.escape(participation)}" x="{x0:.1f}" y="{y}" width="{w:.1f}" '
                         f'height="14" rx="2" fill="{colour}"><title>{html.escape(title)}</title></rect>')
    axis_y = 6 + len(users) * row + 12
    parts.append(f'<text x="{label_w}" y="{axis_y}">#0</text>'
                 f'<text x="{width - 20}" y="{axis_y}" text-anchor="end">#{end - 1}</text></svg>')
    return "".join(parts)


def render_room_html(pic: RoomPicture) -> str:
    e = html.escape
    keys = "".join(
        f"<tr><td>{e(server)}</td><td>" + ", ".join(
            f"<code>{e(kid)}</code> ({'current' if not ts else 'expired ' + str(ts)})" for kid, ts in klist
        ) + "</td></tr>"
        for server, klist in pic.server_keys
    )
    senders = sorted({s for s, _ in pic.sent})
    types = sorted({t for _, t in pic.sent})
    sent_rows = "".join(
        f"<tr><td>{e(s)}</td>" + "".join(f"<td class=n>{pic.sent.get((s, t), 0) or ''}</td>" for t in types)
        + f"<td class=n>{sum(pic.sent.get((s, t), 0) for t in types)}</td></tr>"
        for s in senders
    )
    sent_head = "".join(f"<th>{e(t)}</th>" for t in types)
    changes = "".join(
        f"<tr><td class=n>{c['index']}</td><td>{e(c['type'])}</td><td><code>{e(c['state_key'])}</code></td>"
        f"<td>{e(c['sender'])}</td><td><code>{e(c.get('content_text', ''))}</code></td></tr>"
        for c in pic.policy_changes
    ) or '<tr><td colspan=5>none</td></tr>'
    legend = "".join(f'<span><i style="background:{c}"></i>{p}</span>' for p, c in PARTICIPATION_COLOURS.items())
    chart_note = (f"the first {len(pic.chart)} of {pic.events} events" if len(pic.chart) < pic.events
                  else f"all {pic.events} events")
    problems = ""
    if pic.undecodable:
        problems += f"<p class=note>events that do not decode: {', '.join(map(str, pic.undecodable[:50]))}</p>"
    if pic.read_error:
        problems += f"<p class=note>cannot read further: {e(pic.read_error)}</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Room file {e(pic.path)}</title><style>{_STYLE}</style></head>
<body>
<h1>Room {e(pic.room_id)}</h1>
<div class="meta">from {e(pic.path)}</div>
<div class="meta" id="summary">{pic.events} events, {len(pic.membership)} users, {len(senders)} senders,
{len(pic.policy_changes)} policy state changes</div>
{problems}
<h2>Server keys</h2>
<table id="keys"><tr><th>server</th><th>keys</th></tr>{keys}</table>
<h2>Chain and auth edges ({chart_note})</h2>
<div class="legend"><span><i style="background:{STATE_COLOUR}"></i>state event</span>
<span><i style="background:{MESSAGE_COLOUR}"></i>other event</span>
<span><i style="background:{BAD_COLOUR}"></i>does not decode</span>
<span><i style="background:{STATE_COLOUR};opacity:.55"></i>auth edge of a state event</span>
<span><i style="background:#868e96;opacity:.4"></i>auth edge of another event (arc back to the event it cites)</span></div>
<div class="scroll">{_chain_svg(pic)}</div>
<h2>Membership timeline</h2>
<div class="legend">{legend}</div>
<div class="scroll">{_timeline_svg(pic)}</div>
<h2>Who sent what</h2>
<table id="senders"><tr><th>sender</th>{sent_head}<th>total</th></tr>{sent_rows}</table>
<h2>Policy state changes</h2>
<table id="policy"><tr><th>#</th><th>type</th><th>state key</th><th>sender</th><th>content</th></tr>{changes}</table>
</body></html>
"""
