"""``mimi init``: a configuration, a signing key and (for local use) a private CA and
certificates, in one directory per server."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import SigningKey, validate_server_name
from ..config import Config, HTTPConfig, RateLimitConfig, TLSConfig, save_signing_key


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write config.toml, a signing key and TLS files for one server")
    p.add_argument("--server-name", required=True)
    p.add_argument("--dir", required=True, help="the server's directory (created)")
    p.add_argument("--listen", default="127.0.0.1:8448")
    p.add_argument("--ca-dir", help="private CA to use or create (default: <dir>/ca)")
    p.add_argument("--storage", default="", help="storage URL (default: SQLite in <dir>/data)")
    p.add_argument("--peer", action="append", default=[], metavar="NAME=URL", help="peer map entry (repeatable)")
    p.set_defaults(handler=run)


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
    from ..transport.tls import issue_server_cert, make_ca  # cryptography: only when needed

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


def run(args: argparse.Namespace) -> int:
    peers = {}
    for item in args.peer:
        name, sep, url = item.partition("=")
        if not sep:
            raise SystemExit(f"--peer wants NAME=URL, got {item!r}")
        peers[name] = url
    path = init_server(
        args.server_name, Path(args.dir), listen=args.listen, ca_dir=args.ca_dir, storage=args.storage, peers=peers
    )
    print(path)
    return 0
