"""Python -> Rust crossings per event on the hot paths (``benches/crossings.py``; issue 14).

Each crossing makes Python objects and costs more than reading a Python attribute, so the
per-event paths read an event's fields in one call (its header).  The guard below fails when
a change adds calls into the core per event, or per batch, on one of the three paths; if the
new call is worth it, raise the figure here with the reason."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import mimi_signaling as m

TOOL = Path(__file__).resolve().parents[2] / "benches" / "crossings.py"
EVENTS = 32
#: (per event, per batch of ``EVENTS``) as reached in issue 14; before it, per event: hub 38,
#: follower 24, verify 15.  What is left per event: the content decode on every path (section
#: 4 rule 4, the core's), and on the hub the unsigned event and its header.
LIMITS = {
    "hub": (3, 7),  # limited_event_headers, keys, verify_limited_events, digests, key ID, sign_events, encode_events
    "follower": (1, 4),  # checked_events, event_headers, the room's hub, the store's event keys (stop 19)
    "verify": (1, 1),  # event_headers
}


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crossings_tool", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_counter_sees_every_kind_of_crossing_and_puts_the_classes_back() -> None:
    tool = _tool()
    key = m.SigningKey.generate("ed25519:k")
    content = m.CreateContent("m.0", "org.example.plain").encode()
    event = m.LimitedEvent.create("!r:h.test", "m.room.create", "", "@a:h.test", content, key).to_event([], "", key)
    raw = event.encode()
    before = {cls: dict(vars(cls)) for cls in tool._core_classes()}
    with tool.counting() as counts:
        read = [event.type, event.type]  # a getter
        header = event.header()  # a method
        m.Event.decode(raw)  # a static method
        m.sha256(raw)  # a function
        m.CreateContent("m.0", "org.example.plain")  # a constructor
        assert event == event  # a special method
        read += [header.type, event.header().sender]  # a header's fields: plain Python, no crossing
    assert read == ["m.room.create", "m.room.create", "m.room.create", "@a:h.test"]
    assert dict(counts) == {
        "Event.type": 2, "Event.header()": 2, "Event.decode()": 1, "sha256()": 1, "CreateContent()": 1, "Event.__eq__": 1,
    }
    assert {cls: dict(vars(cls)) for cls in tool._core_classes()} == before
    with tool.counting() as counts:
        pass
    assert not counts


@pytest.mark.timeout(120)
def test_crossings_per_event_stay_at_the_figures_reached() -> None:
    """The tool in a process of its own (it patches the core's classes while it counts)."""
    result = subprocess.run(
        [sys.executable, str(TOOL), "--events", str(EVENTS), "--json"], capture_output=True, text=True, timeout=110,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    paths = json.loads(result.stdout)["paths"]
    for path, (per_event, per_batch) in LIMITS.items():
        figures = paths[path]
        # At least the content decode of every event: the counter is counting.
        assert figures["counts"].get("decode_registered_content()") == EVENTS, (path, figures["counts"])
        assert figures["total"] <= per_event * EVENTS + per_batch, (path, figures["counts"])
