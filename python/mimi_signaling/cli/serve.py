"""``mimi serve``: run one server (hub of its rooms, follower in the others) until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal

from ..config import Config

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the server of a config file")
    p.add_argument("--config", "-c", required=True)
    p.set_defaults(handler=run)


#: Allocations between young-generation collections while serving (CPython's default: 700).
#: A batch of 256 events allocates tens of thousands of short-lived objects, which reference
#: counting frees; with the default, each batch triggered dozens of collections that mostly
#: walked long-lived objects (benches/README.md: ~2% of a hub's CPU).
SERVING_GC_THRESHOLD = 50_000


def tune_gc_for_serving() -> None:
    """Collect cyclic garbage less often, and keep what exists once the server is up (its
    code, configuration, rooms) out of every later collection.  For the ``mimi serve``
    process only: a program that embeds the library keeps its own settings."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(SERVING_GC_THRESHOLD, older, oldest)


#: How long freed memory stays with a serving process before mimalloc returns it to the OS
#: (the extension's own default is 0, for ``mimi verify``'s peak memory).
SERVING_PURGE_DELAY_MS = 1000


def tune_allocator_for_serving() -> None:
    """Keep freed memory for a second: a server frees and allocates a batch's worth many
    times a second, and returning it at once made every batch fault its pages in again
    (docs/DECISIONS.md, "Libraries").  ``MIMALLOC_PURGE_DELAY`` still wins."""
    from .._core import _set_allocator_purge_delay

    if "MIMALLOC_PURGE_DELAY" not in os.environ:
        _set_allocator_purge_delay(SERVING_PURGE_DELAY_MS)


async def serve(config: Config) -> None:
    from ..server import ServerNode

    config.check_files()
    node = ServerNode(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = await node.start()
    tune_gc_for_serving()
    tune_allocator_for_serving()
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
