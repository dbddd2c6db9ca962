"""``generate_room`` / ``mimi generate-room``: valid rooms, reproducible with a seed."""

from __future__ import annotations

from support.roomfile_helpers import run_mimi

import mimi_signaling as m
from mimi_signaling.content import M_ROOM_ROLE_MAP, M_ROOM_USER, Participation
from mimi_signaling.roomfile import verify_room_file
from mimi_signaling.testing.rooms import generate_room


def _events(path):
    reader = m.RoomFileReader(str(path))
    out = []
    while True:
        chunk = reader.read_events(512)
        if not chunk:
            return reader.server_keys, out
        out.extend(m.decode_events(chunk))


def test_same_seed_same_bytes(tmp_path):
    a = generate_room(tmp_path / "a.room", 300, seed=42)
    b = generate_room(tmp_path / "b.room", 300, seed=42)
    generate_room(tmp_path / "c.room", 300, seed=43)
    assert (tmp_path / "a.room").read_bytes() == (tmp_path / "b.room").read_bytes()
    assert (tmp_path / "a.room").read_bytes() != (tmp_path / "c.room").read_bytes()
    assert a.room_id == b.room_id and a.events == 300


def test_generated_room_shape_with_full_checks(tmp_path):
    """Three servers, the policy checked on every event while generating, and verified."""
    path = tmp_path / "three.room"
    room = generate_room(path, 1200, seed=7, servers=3, users_per_server=2, state_every=50, check=True)
    keys, events = _events(path)
    assert [k.server_name for k in keys] == room.servers and len(room.servers) == 3
    assert len(events) == room.events == 1200
    assert events[0].type == "m.room.create" and events[1].sender == events[1].state_key
    types = [e.type for e in events]
    assert M_ROOM_ROLE_MAP in types[:40]  # the creator phase ends during setup
    assert types.count("m.room.encrypted") > 1000
    origins = {e.origin_server for e in events}
    assert origins == set(room.servers)
    # Members leave and come back over time.
    leaves = [e for e in events if e.type == M_ROOM_USER and m.UserContent.decode(e.content).participation == Participation.LEAVE]
    assert leaves
    assert verify_room_file(path, chunk=300).ok


def test_generate_room_cli(tmp_path):
    path = tmp_path / "cli.room"
    result = run_mimi("generate-room", str(path), "--events", "500", "--seed", "1", "--fault", "not_joined:321")
    assert result.returncode == 0, result.stderr
    assert "500 events" in result.stdout and "fault not_joined at index 321: $" in result.stdout
    verified = run_mimi("verify", str(path))
    assert verified.returncode == 1 and "index 321," in verified.stdout
    bad = run_mimi("generate-room", str(path), "--events", "10", "--fault", "nonsense")
    assert bad.returncode == 2
