"""``mimi inspect --html``: the page of a generated room file, rendered by headless Chromium,
shows what ``mimi inspect --json`` lists (every event, every auth edge, each user's
membership changes, each sender's events, the policy changes) and needs nothing outside it."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter

import pytest

from support.browser import dump_dom, rows_of, screenshot, visible_text
from support.e2ekit import MIMI


@pytest.fixture(scope="module")
def room(tmp_path_factory):
    path = tmp_path_factory.mktemp("html") / "room.mimiroom"
    subprocess.run([*MIMI, "generate-room", str(path), "--events", "150", "--seed", "7", "--state-every", "40"],
                   check=True, capture_output=True, timeout=120)
    listing = json.loads(subprocess.run([*MIMI, "inspect", "--json", str(path)], check=True, capture_output=True,
                                        timeout=120).stdout)
    return path, listing["events"]


def test_the_page_shows_the_room(room, tmp_path):
    path, events = room
    out = tmp_path / "room.html"
    done = subprocess.run([*MIMI, "inspect", str(path), "--html", str(out)], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    # Self-contained: no script, no link, no URL fetched by the page.
    assert not re.search(r"<script|<link|<img|<iframe|\bsrc=|\bhref=|url\(|@import", page, re.I)

    dom = dump_dom(out.as_uri())
    text = visible_text(dom)
    from mimi_signaling import Event, RoomFileReader

    room_id = Event.decode(RoomFileReader(str(path)).read_events(1)[0]).room_id
    assert f"Room {room_id}" in text and f"{len(events)} events" in text

    # The chain: a dot per event, an arc per auth edge.
    assert dom.count('class="event"') == len(events)
    assert dom.count('class="auth-edge"') == sum(len(e["auth_events"]) for e in events)
    # The membership timeline: a bar per m.room.user event, a row per user.
    users = [e for e in events if e["type"] == "m.room.user"]
    assert dom.count('class="span ') == len(users)
    assert dom.count('class="user"') == len({e["state_key"] for e in users})
    assert dom.count('class="span leave"') == sum(1 for e in users if e["content"]["participation"] == "leave")
    # Who sent what: each sender's total.
    totals = Counter(e["sender"] for e in events)
    rows = rows_of(dom, "senders")[1:]
    assert {r.split()[0]: int(r.split()[-1]) for r in rows} == dict(totals)
    # The policy state changes: every state event that is not a membership, in order.
    policy = [e for e in events if e["state_key"] is not None and e["type"] != "m.room.user"]
    listed = rows_of(dom, "policy")[1:]
    assert [int(r.split()[0]) for r in listed] == [e["index"] for e in policy]
    screenshot(out.as_uri(), "inspect-html.png", width=1200, height=900)


def test_the_chart_can_be_bounded(room, tmp_path):
    path, events = room
    out = tmp_path / "first50.html"
    subprocess.run([*MIMI, "inspect", str(path), "--html", str(out), "--limit", "50"], check=True,
                   capture_output=True, timeout=120)
    page = out.read_text()
    assert page.count('class="event"') == 50
    assert f"the first 50 of {len(events)} events" in page


def test_a_file_that_is_not_a_room(tmp_path):
    bad = tmp_path / "bad.mimiroom"
    bad.write_bytes(b"not a room file at all")
    done = subprocess.run([*MIMI, "inspect", str(bad), "--html", str(tmp_path / "x.html")], capture_output=True,
                          timeout=60)
    assert done.returncode == 2 and b"not a room file" in done.stderr
    assert not (tmp_path / "x.html").exists()
