"""``mimi keygen`` and ``mimi keys rotate``."""

from __future__ import annotations

import argparse
import json

from .. import SigningKey
from ..config import Config, save_signing_key


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keygen", help="write a new Ed25519 signing key file (mode 0600)")
    p.add_argument("path")
    p.add_argument("--key-id", default=None, help='e.g. "ed25519:a1" (default: from the public key)')
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(handler=keygen)

    keys = sub.add_parser("keys", help="server key management")
    ksub = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    r = ksub.add_parser("rotate", help="a running server starts signing with a new key; the old one stays published as expired")
    r.add_argument("--config", "-c", required=True)
    r.set_defaults(handler=rotate)


def keygen(args: argparse.Namespace) -> int:
    key = SigningKey.generate(args.key_id)
    save_signing_key(args.path, key, overwrite=args.force)
    print(f"{key.key_id} -> {args.path}")
    return 0


def rotate(args: argparse.Namespace) -> int:
    from ..server import LocalClient

    result = LocalClient(Config.load(args.config)).call("rotate_key")
    print(json.dumps(result))
    return 0
