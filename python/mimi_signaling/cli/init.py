"""``mimi init``: the command line of ``mimi_signaling.provisioning.init_server``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..provisioning import init_server


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="write config.toml, a signing key and TLS files for one server")
    p.add_argument("--server-name", required=True)
    p.add_argument("--dir", required=True, help="the server's directory (created)")
    p.add_argument("--listen", default="127.0.0.1:8448")
    p.add_argument("--ca-dir", help="private CA to use or create (default: <dir>/ca)")
    p.add_argument("--storage", default="", help="storage URL (default: SQLite in <dir>/data)")
    p.add_argument("--peer", action="append", default=[], metavar="NAME=URL", help="peer map entry (repeatable)")
    p.set_defaults(handler=run)


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
