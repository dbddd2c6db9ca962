"""``mimi verify`` and ``mimi inspect`` as separate processes, on the golden room file and a
generated 100,000-event room."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import mimi_signaling as m
from support.roomfile_helpers import event_types, run_mimi


def test_golden_room_file_verifies(golden_room_file, golden):
    result = run_mimi("verify", str(golden_room_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 events" in result.stdout and "events/s" in result.stdout
    assert result.stderr == ""  # no progress bar when stderr is not a terminal


def test_golden_room_file_verify_json(golden_room_file, golden):
    result = run_mimi("verify", str(golden_room_file), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["events_checked"] == 10
    assert report["failure"] is None
    assert report["room_id"] == golden["events"][0]["room_id"]
    assert report["servers"] == [s["server_name"] for s in golden["servers"]]
    assert report["events_per_second"] > 0


def test_generated_100k_room_verifies(room_100k):
    assert room_100k.events == 100_000
    result = run_mimi("verify", room_100k.path, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["events_checked"] == 100_000
    assert report["room_id"] == room_100k.room_id


def test_inspect_golden_lists_ten_events(golden_room_file, golden):
    result = run_mimi("inspect", str(golden_room_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert event_types(lines) == [e["type"] for e in golden["events"]]
    assert "10 events listed" in lines[-1]
    assert "keys of hub.test: ed25519:hubkey (current)" in result.stdout
    assert 'CreateContent(policy_id="m.0"' in result.stdout
    assert "opaque, 19 bytes: 01026f70617175652d63697068657274657874" in result.stdout
    assert "# invite" in result.stdout  # enum names next to the reprs


def test_inspect_json_and_limit(golden_room_file, golden):
    result = run_mimi("inspect", str(golden_room_file), "--json", "--start", "3", "--limit", "2")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [e["index"] for e in doc["events"]] == [3, 4]
    expected = golden["events"][3]
    first = doc["events"][0]
    assert first["type"] == expected["type"] and first["sender"] == expected["sender"]
    assert first["content"] == {"participation": "invite", "reason": "welcome"}
    assert first["auth_events"] == expected["auth_events"]


def test_unreadable_files_exit_2(tmp_path):
    missing = run_mimi("verify", str(tmp_path / "missing.room"))
    assert missing.returncode == 2 and "No such file" in missing.stderr
    other = tmp_path / "notes.txt"
    other.write_text("hello, not a room file")
    not_room = run_mimi("verify", str(other))
    assert not_room.returncode == 2 and "not a room file" in not_room.stderr
    assert run_mimi("verify").returncode == 2  # usage error: no FILE
    assert run_mimi("verify", str(other), "--chunk", "0").returncode == 2
    assert run_mimi("inspect", str(tmp_path / "missing.room")).returncode == 2


def test_room_file_content_errors_exit_1(tmp_path):
    bad_version = tmp_path / "v2.room"
    bad_version.write_bytes(m.ROOM_FILE_MAGIC + b"\x00\x02")
    result = run_mimi("verify", str(bad_version))
    assert result.returncode == 1 and "unsupported_version" in result.stdout
    empty = tmp_path / "empty.room"
    empty.write_bytes(m.wire.encode_room_file_header())
    result = run_mimi("verify", str(empty), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["failure"]["index"] == 0


def test_progress_bar_only_on_a_terminal(golden_room_file):
    """With stderr on a pseudo-terminal the bar is drawn there; stdout stays clean."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mimi_signaling.cli", "verify", str(golden_room_file)],
            stdout=subprocess.PIPE, stderr=slave, timeout=60,
        )
    finally:
        os.close(slave)
    drawn = b""
    for _ in range(1000):  # bounded read of what the child wrote to the terminal
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO once the other side is closed and drained
            break
        if not data:
            break
        drawn += data
    os.close(master)
    assert proc.returncode == 0
    assert b"\r[" in drawn and b"100.0%" in drawn
    assert b"\r" not in proc.stdout and proc.stdout.startswith(b"OK ")
