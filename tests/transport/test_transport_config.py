"""Config (TOML) round trip and validation; signing key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import mimi_signaling as ms
from mimi_signaling.config import (
    Config,
    ConfigError,
    HTTPConfig,
    RateLimitConfig,
    TLSConfig,
    load_signing_key,
    parse_listen,
    save_signing_key,
)

MINIMAL = """
server_name = "hub.test"
listen = "127.0.0.1:8448"
data_dir = "data"
signing_key = "signing.key"

[tls]
cert = "tls/hub.pem"
key = "tls/hub.key"
ca = "tls/ca.pem"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mimi.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_config_defaults_and_relative_paths(tmp_path):
    cfg = Config.load(write(tmp_path, MINIMAL))
    base = tmp_path.resolve()
    assert cfg.server_name == "hub.test"
    assert (cfg.listen_host, cfg.listen_port) == ("127.0.0.1", 8448)
    assert cfg.data_dir == base / "data"
    assert cfg.signing_key == base / "signing.key"
    assert cfg.tls == TLSConfig(base / "tls/hub.pem", base / "tls/hub.key", base / "tls/ca.pem")
    assert cfg.storage == f"sqlite://{base / 'data'}/mimi.db"  # sqlite:/// + the absolute path without its leading /
    assert cfg.ds_domain == "hub.test"
    assert cfg.peers == {}
    assert cfg.rate_limit == RateLimitConfig()
    assert cfg.http == HTTPConfig()


def test_round_trip(tmp_path):
    cfg = Config(
        server_name="hub.test:8448",
        listen="[::1]:8448",
        signing_key=tmp_path / "keys" / "signing.key",
        tls=TLSConfig(tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"),
        data_dir=tmp_path / "dätä dir",
        storage="postgresql://mimi@localhost/mimi",
        ds_domain="ds.hub.test",
        peers={"follower.test": "https://127.0.0.1:9001", "[::1]:9002": "https://[::1]:9002"},
        rate_limit=RateLimitConfig(rate=2.5, burst=7),
        http=HTTPConfig(max_body_size=100_000, body_timeout=3.0, keepalive_timeout=20.0,
                        request_timeout=9.5, max_retries=0, batches=False),
    ).validate()
    path = tmp_path / "out.toml"
    cfg.dump(path)
    again = Config.load(path)
    assert again == cfg
    again.dump(tmp_path / "out2.toml")
    assert (tmp_path / "out2.toml").read_text() == path.read_text()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace('server_name = "hub.test"\n', ""), "server_name: missing"),
        (lambda t: t.replace('"hub.test"', '"hub_test!"'), "server_name"),
        (lambda t: t.replace('"127.0.0.1:8448"', '"127.0.0.1"'), "listen"),
        (lambda t: t.replace('"127.0.0.1:8448"', '"127.0.0.1:99999"'), "listen"),
        (lambda t: t.replace('"127.0.0.1:8448"', "8448"), "listen: must be a string"),
        (lambda t: t + "\n[peers]\n\"f.test\" = \"http://127.0.0.1:1\"\n", "https"),
        (lambda t: t + "\n[peers]\n\"not a name\" = \"https://127.0.0.1:1\"\n", "peers"),
        (lambda t: t + "\n[rate_limit]\nrate = 0\n", "rate_limit.rate"),
        (lambda t: t + "\n[rate_limit]\nburst = 0\n", "rate_limit.burst"),
        (lambda t: t + "\n[rate_limit]\nburst = 1.5\n", "rate_limit.burst: must be an integer"),
        (lambda t: t + "\n[http]\nbody_timeout = -1\n", "http.body_timeout"),
        (lambda t: t + "\n[http]\nmax_retries = 100\n", "http.max_retries"),
        (lambda t: t + "\n[http]\nmax_body_size = true\n", "http.max_body_size"),
        (lambda t: t + "\n[http]\nbatches = 1\n", "http.batches"),
        (lambda t: t.replace('ca = "tls/ca.pem"\n', ""), "tls.ca: missing"),
        (lambda t: t.replace("[tls]", "[tsl]"), "tls: missing"),
        (lambda t: "colour = 1\n" + t, "colour: unknown setting"),
        (lambda t: t.replace('ca = "tls/ca.pem"', 'ca = "tls/ca.pem"\ncrl = "x"'), "tls.crl: unknown setting"),
        (lambda t: t + '\nstorage = "mysql://x"\n', "storage"),
        (lambda t: t + "\n[[oops", "not valid TOML"),
        (lambda t: t.replace('data_dir = "data"', 'data_dir = ""'), "data_dir: must not be empty"),
    ],
)
def test_validation_errors(tmp_path, edit, message):
    path = write(tmp_path, edit(MINIMAL))
    with pytest.raises(ConfigError) as info:
        Config.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        Config.load(tmp_path / "nope.toml")


def test_check_files(tmp_path):
    cfg = Config.load(write(tmp_path, MINIMAL))
    with pytest.raises(ConfigError, match="tls.cert"):
        cfg.check_files()


def test_parse_listen():
    assert parse_listen("0.0.0.0:8448") == ("0.0.0.0", 8448)
    assert parse_listen("[::]:0") == ("::", 0)
    assert parse_listen("localhost:1") == ("localhost", 1)
    for bad in ("8448", ":8448", "::1:8448", "[::1]8448", "host:port", "h:-1"):
        with pytest.raises(ValueError):
            parse_listen(bad)


# --- signing key files ---------------------------------------------------------------------


def test_signing_key_round_trip_and_mode(tmp_path):
    key = ms.SigningKey.generate()
    path = tmp_path / "signing.key"
    save_signing_key(path, key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = load_signing_key(path)
    assert loaded.key_id == key.key_id
    assert loaded.seed == key.seed
    assert loaded.public_key == key.public_key
    assert loaded.sign(b"m") == key.sign(b"m")


def test_signing_key_is_not_overwritten(tmp_path):
    path = tmp_path / "signing.key"
    first = ms.SigningKey.generate()
    save_signing_key(path, first)
    with pytest.raises(ConfigError, match="exists"):
        save_signing_key(path, ms.SigningKey.generate())
    assert load_signing_key(path).seed == first.seed
    os.chmod(path, 0o644)
    second = ms.SigningKey.generate()
    save_signing_key(path, second, overwrite=True)
    assert load_signing_key(path).seed == second.seed
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not a JSON key file"),
        ("[]", "not a mimi-signing-key-v1"),
        ('{"format": "mimi-signing-key-v1", "algorithm": "rsa", "key_id": "a", "seed": "AA"}', "algorithm"),
        ('{"format": "mimi-signing-key-v1", "algorithm": "ed25519", "key_id": "ed25519:a", "seed": "AAAA"}',
         "32 bytes"),
        ('{"format": "mimi-signing-key-v1", "algorithm": "ed25519", "key_id": "ed25519:a"}', "strings"),
    ],
)
def test_bad_signing_key_files(tmp_path, content, message):
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_signing_key(path)


def test_signing_key_public_key_mismatch(tmp_path):
    import json

    path = tmp_path / "signing.key"
    save_signing_key(path, ms.SigningKey.generate())
    doc = json.loads(path.read_text())
    other = json.loads(json.dumps(doc))
    path2 = tmp_path / "other.key"
    save_signing_key(path2, ms.SigningKey.generate())
    other["public_key"] = json.loads(path2.read_text())["public_key"]
    path.write_text(json.dumps(other))
    with pytest.raises(ConfigError, match="does not match"):
        load_signing_key(path)


def test_missing_signing_key_file(tmp_path):
    with pytest.raises(ConfigError, match="no such key file"):
        load_signing_key(tmp_path / "none.key")
