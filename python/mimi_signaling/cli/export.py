"""``mimi export --store URL --room ROOM_ID -o FILE [--config CONFIG]``: write one room from a
store to a room file (PROFILE.md section 9).

Keys: the store's cache of peers' server keys, plus this server's signing key when
``--config`` names the server's configuration (a hub does not cache its own keys).  With
``--config`` the store defaults to the configuration's ``storage``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

from .. import ServerKeys
from ..config import Config, ConfigError
from ..roomfile import export_room
from ..storage import open_store
from ..storage.urls import sqlite_path_from_url


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a room from a store to a room file")
    p.add_argument("--store", metavar="URL", help="sqlite:///path.db or postgresql://... (default: the config's)")
    p.add_argument("--room", required=True, metavar="ROOM_ID")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("--config", "-c", metavar="CONFIG", help="the server's configuration: adds its own keys")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    keys: List[ServerKeys] = []
    url = args.store
    if args.config:
        try:
            config = Config.load(args.config)
            signing_key = config.load_signing_key()
        except ConfigError as exc:
            print(f"mimi export: {exc}", file=sys.stderr)
            return 2
        keys.append(ServerKeys(config.server_name, [signing_key.verify_key()]))
        url = url or config.storage
    if not url:
        print("mimi export: give --store URL (or --config CONFIG)", file=sys.stderr)
        return 2
    try:
        if url.partition(":")[0].lower() == "sqlite":
            path = sqlite_path_from_url(url)
            # Opening a missing SQLite file would create an empty store.
            if path != ":memory:" and not os.path.isfile(path):
                print(f"mimi export: no SQLite store at {path}", file=sys.stderr)
                return 2
        store = open_store(url)
    except Exception as exc:  # noqa: BLE001 - bad URL, missing directory, database unreachable
        print(f"mimi export: cannot open the store: {exc}", file=sys.stderr)
        return 2
    try:
        count = export_room(store, args.room, args.output, keys)
    except OSError as exc:
        print(f"mimi export: {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"exported {count:,} events of {args.room} to {args.output}")
    return 0
