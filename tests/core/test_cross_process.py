"""An event built and signed in one process decodes in another to the same ID and verifies."""

from __future__ import annotations

import json
import subprocess
import sys

import mimi_signaling as m

BUILD = r"""
import json, sys
import mimi_signaling as m
key = m.SigningKey.generate("ed25519:proc")
limited = m.LimitedEvent.create("!x:hub.test", "m.room.name", "", "@ana:hub.test", m.TextContent(b"other process").encode(), key)
ev = limited.to_event(["$" + "A" * 43], "$" + "B" * 42 + "A", key)
json.dump({"event": ev.encode().hex(), "id": ev.event_id, "public_key": key.public_key.hex()}, sys.stdout)
"""


def test_event_from_another_process():
    out = subprocess.run([sys.executable, "-c", BUILD], check=True, capture_output=True, text=True, timeout=60).stdout
    data = json.loads(out)
    ev = m.Event.decode(bytes.fromhex(data["event"]))
    assert ev.event_id == data["id"]
    ring = m.KeyRing()
    ring = ring.with_key("hub.test", m.VerifyKey("ed25519:proc", bytes.fromhex(data["public_key"])))
    ev.verify(ring)
    assert m.TextContent.decode(ev.content).value == b"other process"
