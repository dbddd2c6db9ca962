"""``mimi serve``: run one server (hub of its rooms, follower in the others) until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from ..config import Config

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the server of a config file")
    p.add_argument("--config", "-c", required=True)
    p.set_defaults(handler=run)


async def serve(config: Config) -> None:
    from ..server import ServerNode

    config.check_files()
    node = ServerNode(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = await node.start()
    # One line for scripts that wait for readiness.
    print(f"mimi serve: {config.server_name} ready on {config.listen_host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("%s stopping", config.server_name)
        await node.stop()


def run(args: argparse.Namespace) -> int:
    asyncio.run(serve(Config.load(args.config)))
    return 0
