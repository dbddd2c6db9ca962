"""Rooms built by a real hub (in-process, SQLite stores), exported with ``export_room`` and
``mimi export``, checked by ``mimi verify`` in a separate process."""

from __future__ import annotations

import json
import os

import pytest
from support.nodekit import Network
from support.roomfile_helpers import run_mimi

import mimi_signaling as m
from mimi_signaling.config import save_signing_key
from mimi_signaling.content import JoinRule, Participation, join_rules_content, text_content
from mimi_signaling.roomfile import export_room, verify_room_file

HUB = "hub.test"
MESSAGES = 120


@pytest.fixture
def network(tmp_path):
    net = Network(tmp_path, HUB, ["f1.test", "f2.test"])
    yield net
    net.close()


def build_room(net: Network, messages: int = MESSAGES) -> str:
    """Create, two remote users join, messages from all three, a kick and a leave."""
    events = net.hub.create_room(
        "@alice:hub.test",
        initial_state=[
            ("m.room.join_rules", "", join_rules_content(JoinRule.PUBLIC)),
            ("m.room.name", "", text_content(b"exported")),
        ],
    )
    room_id = events[0].room_id
    users = ["@alice:hub.test", "@bob:f1.test", "@carol:f2.test"]
    net.join(room_id, users[1])
    net.join(room_id, users[2])
    for i in range(messages):
        sender = users[i % 3]
        net.submit(room_id, sender, "m.room.encrypted", None, os.urandom(32 + i % 50))
    net.submit(room_id, users[0], "m.room.user", users[2], m.UserContent(Participation.LEAVE, b"bye").encode())
    net.submit(room_id, users[1], "m.room.user", users[1], m.UserContent(Participation.LEAVE).encode())
    net.deliver_all()
    return room_id


def read_file(path):
    reader = m.RoomFileReader(str(path))
    events = []
    while True:
        chunk = reader.read_events(1000)
        if not chunk:
            break
        events.extend(chunk)
    return reader.server_keys, events


def test_hub_room_exported_and_verified(network, tmp_path):
    room_id = build_room(network)
    hub_store = network.stores[HUB]
    path = tmp_path / "hub-room.room"
    count = export_room(hub_store, room_id, path, network.keystores[HUB])
    total = hub_store.latest(room_id)[0] + 1
    assert count == total == 2 + 2 + 2 + MESSAGES + 2

    keys, blobs = read_file(path)
    assert [sk.server_name for sk in keys] == [HUB, "f1.test", "f2.test"]
    assert blobs == [raw for _, raw in hub_store.iter_events(room_id)]
    assert oct(os.stat(path).st_mode & 0o777) != "0o600"  # a normal file, not mkstemp's mode
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    result = run_mimi("verify", str(path), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["events_checked"] == total and report["room_id"] == room_id


def test_export_includes_the_hubs_expired_keys(network, tmp_path):
    """Events signed before a key rotation still verify: the old key is exported as expired."""
    room_id = build_room(network, messages=30)
    before = network.stores[HUB].latest(room_id)[0] + 1
    network.keystores[HUB].rotate(m.SigningKey.generate("ed25519:rotated"))
    network.keys[HUB] = network.keystores[HUB].signing_key
    for i in range(10):
        network.submit(room_id, "@alice:hub.test", "m.room.encrypted", None, b"after rotation %d" % i)
    path = tmp_path / "rotated.room"
    count = export_room(network.stores[HUB], room_id, path, network.keystores[HUB])
    assert count == before + 10
    keys, _ = read_file(path)
    hub_keys = {k.key_id: k.expired_ts for k in keys[0].keys}
    assert hub_keys["ed25519:rotated"] == 0 and len(hub_keys) == 2
    assert any(ts > 0 for ts in hub_keys.values())
    result = run_mimi("verify", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_follower_store_export_verifies(network, tmp_path):
    room_id = build_room(network, messages=40)
    store = network.stores["f1.test"]
    assert store.latest(room_id) == network.stores[HUB].latest(room_id)
    path = tmp_path / "follower.room"
    export_room(store, room_id, path, network.keystores["f1.test"])
    report = verify_room_file(path)
    assert report.ok, report.failure


def test_mimi_export_cli_with_config(network, tmp_path):
    room_id = build_room(network, messages=60)
    key_file = tmp_path / "signing.key"
    save_signing_key(key_file, network.keys[HUB])
    db = tmp_path / f"{HUB}.db"
    config = tmp_path / "config.toml"
    config.write_text(
        f'server_name = "{HUB}"\nlisten = "127.0.0.1:8448"\ndata_dir = "{tmp_path}"\n'
        f'signing_key = "{key_file}"\nstorage = "sqlite:///{db}"\n\n'
        '[tls]\ncert = "tls.pem"\nkey = "tls.key"\nca = "ca.pem"\n'
    )
    out = tmp_path / "cli.room"

    # The hub does not cache its own keys: without --config they are missing.
    no_keys = run_mimi("export", "--store", f"sqlite:///{db}", "--room", room_id, "-o", str(out))
    assert no_keys.returncode == 1 and "no keys known for server hub.test" in no_keys.stderr
    assert not out.exists()

    result = run_mimi("export", "--config", str(config), "--room", room_id, "-o", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exported" in result.stdout
    verified = run_mimi("verify", str(out))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{network.stores[HUB].latest(room_id)[0] + 1:,} events" in verified.stdout


def test_export_errors(network, tmp_path):
    build_room(network, messages=3)
    store = network.stores[HUB]
    with pytest.raises(m.NotFoundError):
        export_room(store, "!nosuchroom:hub.test", tmp_path / "x.room", network.keystores[HUB])
    missing_db = run_mimi("export", "--store", f"sqlite:///{tmp_path}/nope.db", "--room", "!r:hub.test",
                          "-o", str(tmp_path / "y.room"))
    assert missing_db.returncode == 2 and not (tmp_path / "nope.db").exists()
    assert run_mimi("export", "--room", "!r:hub.test", "-o", str(tmp_path / "y.room")).returncode == 2
    assert not (tmp_path / "x.room").exists() and not (tmp_path / "y.room").exists()
