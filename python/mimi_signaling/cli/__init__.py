"""The ``mimi`` command line.

Each module of this package adds its subcommands through ``register(subparsers)``; a
subcommand's handler takes the parsed arguments and returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import List, Optional

from .. import MimiError, __version__

#: Modules that contribute subcommands, in help order.
COMMAND_MODULES = ["verify", "inspect", "export", "keys", "init", "serve", "rooms", "destinations", "demo", "generate"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mimi", description="MIMI signaling hub and follower tools.")
    parser.add_argument("--version", action="version", version=f"mimi-signaling {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    parser.add_argument("--log-format", choices=["text", "json"], default="text",
                        help="log lines as text (default) or one JSON object per line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # a command module not present in this build
            raise
        module.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    try:
        try:
            return _main(argv)
        finally:
            sys.stdout.flush()  # a reader that went away shows here at the latest (also after --help)
    except BrokenPipeError:
        return _reader_went_away()


def _main(argv: Optional[List[str]]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    from ..ops.logs import setup_logging

    setup_logging(level, args.log_format)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except MimiError as exc:
        print(f"mimi {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


#: What a process killed by SIGPIPE reports (128 + 13), as ``yes | head`` does.
EXIT_BROKEN_PIPE = 141


def _reader_went_away() -> int:
    """The reader of our output closed its end (``mimi inspect FILE | head``): stop quietly.
    stdout is pointed at /dev/null so the interpreter's final flush of what is still
    buffered does not fail again (Python's documented recipe for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
