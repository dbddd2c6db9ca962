"""The CLI as operators use it: in a pipe that closes early, ``mimi destinations`` against a
running server, JSON log lines, and secrets kept out of the configuration file."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from mimi_signaling.config import Config, ConfigError

from support.e2ekit import ALICE, ALPHA, BOB, HUB, MESSAGE, MIMI, room_with_members
from support.opskit import ops_cluster


@pytest.fixture(scope="module")
def room_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pipe") / "room.mimiroom"
    subprocess.run([*MIMI, "generate-room", str(path), "--events", "3000", "--seed", "1"], check=True,
                   capture_output=True, timeout=120)
    return path


@pytest.mark.parametrize("command", [["inspect"], ["inspect", "--json"]])
def test_a_reader_that_closes_early_ends_the_command_quietly(room_file, command):
    # A real pipe: `mimi ... | head -n 2`, the reader gone after two lines (the listing of
    # 3,000 events is far more than a pipe buffers, so the writer does meet the closed end).
    producer = subprocess.Popen([*MIMI, *command, str(room_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-n", "2"], stdin=producer.stdout, capture_output=True, timeout=60)
    producer.stdout.close()
    err = producer.stderr.read().decode()
    producer.wait(60)
    assert len(head.stdout.decode().splitlines()) == 2
    assert err == ""
    assert producer.returncode == 141  # as a process stopped by SIGPIPE


@pytest.mark.parametrize("command", [["verify", "ROOM"], ["--help"], ["destinations", "--help"]])
def test_a_reader_that_never_reads(room_file, command):
    # `mimi verify FILE | true`: the reader may be gone before the output is written.
    command = [str(room_file) if arg == "ROOM" else arg for arg in command]
    for _ in range(3):
        producer = subprocess.Popen([*MIMI, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        subprocess.run(["true"], stdin=producer.stdout, timeout=60)
        producer.stdout.close()
        err = producer.stderr.read().decode()
        producer.wait(60)
        assert err == ""
        assert producer.returncode in (0, 141)


def test_destinations_list_and_reset(tmp_path):
    cluster, _ = ops_cluster(tmp_path, [HUB, ALPHA])
    cluster.start()
    try:
        cfg = str(cluster[HUB].config_path)
        room = room_with_members(cluster, [(ALPHA, BOB)], name=None)
        cluster[ALPHA].stop()
        for i in range(2):
            cluster[HUB].call("send", room_id=room, sender=ALICE, type=MESSAGE, text=f"m{i}")

        def listing():  # the local API the command uses, in-process: polled often
            return {d["name"]: d for d in cluster[HUB].call("destinations")}

        deadline = time.monotonic() + 40
        while not (listing()[ALPHA]["failures"] >= 4 and listing()[ALPHA]["backoff_remaining"] > 0):
            assert time.monotonic() < deadline, listing()
            time.sleep(0.1)
        out = subprocess.run([*MIMI, "destinations", "--config", cfg, "--json"], check=True, capture_output=True,
                             timeout=60).stdout
        before = {d["name"]: d for d in json.loads(out)}[ALPHA]
        # The two messages, and whatever alpha had not received before it stopped.
        assert before["backlog"] >= 2 and before["last_error"] and before["oldest_event_id"].startswith("$")

        text = subprocess.run([*MIMI, "destinations", "--config", cfg], check=True, capture_output=True,
                              timeout=60).stdout.decode()
        header, *rows = text.splitlines()
        assert header.split()[:3] == ["DESTINATION", "BACKLOG", "OLDEST"]
        row = next(r for r in rows if r.startswith(ALPHA))
        assert int(row.split()[1]) >= 2 and "failed, next in" in row

        reset = subprocess.run([*MIMI, "destinations", "reset", ALPHA, "--config", cfg, "--json"], check=True,
                               capture_output=True, timeout=60).stdout
        assert json.loads(reset) == {"destination": ALPHA, "was_backing_off": True}
        # The backoff was ended: the count of failures in a row starts again (alpha is still
        # down, so the immediate retry fails once more) instead of growing.
        assert listing()[ALPHA]["failures"] < before["failures"]
        cluster[ALPHA].start()
        deadline = time.monotonic() + 40
        while listing()[ALPHA]["backlog"]:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        after = listing()[ALPHA]
        assert after["failures"] == 0 and after["last_success"] is not None
    finally:
        cluster.stop()


def test_json_logs_carry_the_context_and_no_secret(tmp_path):
    cluster, _ = ops_cluster(tmp_path, [HUB, ALPHA])
    hub = cluster[HUB]
    seed = json.loads(Path(hub.config.signing_key).read_text())["seed"]
    log_path = tmp_path / "hub-json.log"
    with open(log_path, "wb") as log_file:  # the child keeps its own descriptor
        proc = subprocess.Popen([*MIMI, "-vv", "--log-format", "json", "serve", "--config", str(hub.config_path)],
                                stdout=subprocess.PIPE, stderr=log_file)
    try:
        assert b"ready on" in proc.stdout.readline()
        cluster[ALPHA].start()
        room = hub.call("create_room", creator=ALICE, join_rule="invite")["room_id"]
        hub.call("membership", room_id=room, sender=ALICE, target=BOB, participation="invite")
        cluster[ALPHA].call("membership", room_id=room, sender=BOB, target=BOB, participation="join")
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stdout.close()
        cluster[ALPHA].stop()
    lines = log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    # The submit of bob's join: its request's records name the peer and the room.
    assert any(r.get("peer") == ALPHA and r.get("room") == room for r in records), "no record names peer and room"
    assert seed not in log_path.read_text()


def test_text_logs_by_default(tmp_path):
    out = subprocess.run([*MIMI, "-v", "keygen", str(tmp_path / "k.key")], capture_output=True, timeout=60)
    assert out.returncode == 0
    for line in out.stderr.decode().splitlines():
        assert not line.startswith("{")


def _config_without_secrets(tmp_path: Path) -> dict:
    from mimi_signaling.provisioning import init_server

    path = init_server(HUB, tmp_path / "s", listen="127.0.0.1:0", ca_dir=tmp_path / "ca")
    data = Config.load(path).to_dict()
    del data["signing_key"]
    del data["tls"]["key"]
    return data


def test_secret_files_from_the_environment(tmp_path, monkeypatch):
    data = _config_without_secrets(tmp_path)
    with pytest.raises(ConfigError, match="signing_key: missing \\(or set MIMI_SIGNING_KEY_FILE\\)"):
        Config.from_dict(data)
    monkeypatch.setenv("MIMI_SIGNING_KEY_FILE", str(tmp_path / "s" / "signing.key"))
    with pytest.raises(ConfigError, match="tls.key: missing \\(or set MIMI_TLS_KEY_FILE\\)"):
        Config.from_dict(data)
    monkeypatch.setenv("MIMI_TLS_KEY_FILE", str(tmp_path / "s" / "tls" / f"{HUB}.key"))
    config = Config.from_dict(data)
    config.check_files()
    assert config.load_signing_key().key_id.startswith("ed25519:")
    assert config.tls.key == tmp_path / "s" / "tls" / f"{HUB}.key"
    # With the settings in the file too, the environment wins.
    data["signing_key"] = str(tmp_path / "elsewhere.key")
    data["tls"]["key"] = str(tmp_path / "elsewhere-tls.key")
    config = Config.from_dict(data)
    assert config.signing_key == tmp_path / "s" / "signing.key"
    assert config.tls.key == tmp_path / "s" / "tls" / f"{HUB}.key"


def test_storage_password_from_a_file(tmp_path, monkeypatch):
    data = _config_without_secrets(tmp_path)
    data["signing_key"] = str(tmp_path / "s" / "signing.key")
    data["tls"]["key"] = str(tmp_path / "s" / "tls" / f"{HUB}.key")
    data["storage"] = "postgresql://mimi@db.internal:5432/mimi?sslmode=require"
    secret = tmp_path / "pg-password"
    secret.write_text("p@ss:w/rd é\n")
    data["storage_password_file"] = str(secret)
    config = Config.from_dict(data)
    assert config.storage_password_file == secret
    assert config.storage == "postgresql://mimi@db.internal:5432/mimi?sslmode=require"  # no password
    url = config.storage_url()
    assert url == "postgresql://mimi:p%40ss%3Aw%2Frd%20%C3%A9@db.internal:5432/mimi?sslmode=require"
    import psycopg.conninfo

    assert psycopg.conninfo.conninfo_to_dict(url)["password"] == "p@ss:w/rd é"
    secret.write_text("")
    with pytest.raises(ConfigError, match="storage_password_file: .* is empty"):
        config.storage_url()
    other = tmp_path / "from-environment"
    other.write_text("from-env\n")
    monkeypatch.setenv("MIMI_STORAGE_PASSWORD_FILE", str(other))
    assert Config.from_dict(data).storage_url() == "postgresql://mimi:from-env@db.internal:5432/mimi?sslmode=require"
    data["storage"] = "sqlite:///tmp/x.db"
    with pytest.raises(ConfigError, match="only a postgresql:// store takes a password"):
        Config.from_dict(data)


def test_a_password_that_reaches_a_log_record_is_redacted():
    import io
    import logging

    from mimi_signaling.ops.logs import register_secret, setup_logging

    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        setup_logging(logging.INFO, "json", stream)
        register_secret("hunter2-very-secret")
        logging.getLogger("psycopg").warning("connection failed: password=%s", "hunter2-very-secret")
        record = json.loads(stream.getvalue())
        assert record["message"] == "connection failed: password=[redacted]"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
