"""``mimi verify`` on room files whose origin signatures have a small-order component in R
(valid under ZIP 215, PROFILE.md section 2: exit 0) or S + L (the first such event is named,
``bad_signature``, exit 1). Before ZIP 215 the project accepted a room with one torsioned
signature about one time in eight, and refused it otherwise."""

from __future__ import annotations

import json
from typing import List

from support import ed25519_edge as edge
import mimi_signaling as m
from mimi_signaling.roomfile import RoomFileWriter
from support.roomfile_helpers import run_mimi


def _golden_room_file(golden, path, kinds) -> List[str]:
    """The golden room re-written with the origin signature of event i remade as ``kinds[i]``
    (IDs, links and hub signatures stay valid); returns the event IDs."""
    seeds = {s["server_name"]: bytes.fromhex(s["seed"]) for s in golden["servers"]}
    writer = RoomFileWriter(str(path))
    for s in golden["servers"]:
        key = m.SigningKey(bytes.fromhex(s["seed"]), s["key_id"])
        writer.write_server_keys(m.ServerKeys(s["server_name"], [key.verify_key()]))
    ids = []
    for i, v in enumerate(golden["events"]):
        event = m.Event.decode(bytes.fromhex(v["event"]))
        kind = kinds[i]
        if kind != "valid":
            message = m.wire.sign_content(m.ORIGIN_LABEL, event.origin_signed_form())
            signature = edge.sign(seeds[event.origin_server], message, torsion=1 + i % 7 if kind == "torsion" else 0)
            if kind == "s_plus_l":
                signature = edge.s_plus_l(signature)
            event = m.Event.decode(edge.with_origin_signature(event.encode(), signature, m.Event.decode))
        writer.write_event(event.encode())
        ids.append(event.event_id)
    writer.commit()
    return ids


def test_mimi_verify_accepts_torsion_in_r_and_refuses_s_plus_l(golden, tmp_path) -> None:
    n = len(golden["events"])
    torsion = tmp_path / "torsion.room"
    _golden_room_file(golden, torsion, ["torsion"] * n)
    done = run_mimi("verify", str(torsion), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["events_checked"] == n

    for bad in (1, n - 1):
        kinds = ["torsion"] * n
        kinds[bad] = "s_plus_l"
        path = tmp_path / f"s_plus_l_{bad}.room"
        ids = _golden_room_file(golden, path, kinds)
        done = run_mimi("verify", str(path), "--json")
        assert done.returncode == 1, done.stdout + done.stderr
        failure = json.loads(done.stdout)["failure"]
        assert (failure["index"], failure["event_id"], failure["code"]) == (bad, ids[bad], m.BadSignatureError.code)
