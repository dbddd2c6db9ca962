"""Provisioning one server: a configuration, a signing key and (for local use) a private CA and
a certificate naming the server, in one directory. ``mimi init``, ``mimi demo``, the test
clusters and the benchmarks all call ``init_server``."""

from __future__ import annotations

from pathlib import Path

from ._core import SigningKey, validate_server_name
from .config import Config, HTTPConfig, RateLimitConfig, TLSConfig, save_signing_key

__all__ = ["init_server"]


def init_server(
    server_name: str,
    directory: Path,
    *,
    listen: str = "127.0.0.1:8448",
    ca_dir: Path | None = None,
    storage: str = "",
    peers: dict[str, str] | None = None,
    rate: float = 200.0,
    burst: int = 1000,
) -> Path:
    """Create a server directory; returns the path of its config.toml."""
    from .transport.tls import issue_server_cert, make_ca  # cryptography: only when needed

    validate_server_name(server_name)
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    ca_dir = Path(ca_dir).resolve() if ca_dir else directory / "ca"
    if (ca_dir / "ca.pem").exists():
        ca = (ca_dir / "ca.pem", ca_dir / "ca.key")
    else:
        ca = make_ca(ca_dir)
    cert, key = issue_server_cert(ca, server_name, directory / "tls")
    key_path = directory / "signing.key"
    if not key_path.exists():
        save_signing_key(key_path, SigningKey.generate())
    data = directory / "data"
    data.mkdir(exist_ok=True)
    config = Config(
        server_name=server_name,
        listen=listen,
        signing_key=key_path,
        tls=TLSConfig(cert=cert, key=key, ca=ca[0]),
        data_dir=data,
        storage=storage,
        peers=dict(peers or {}),
        rate_limit=RateLimitConfig(rate=rate, burst=burst),
        http=HTTPConfig(),
    ).validate()
    path = directory / "config.toml"
    config.dump(path)
    return path
