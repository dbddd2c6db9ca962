#!/usr/bin/env python3
"""The long crash-safety run: kill the hub with SIGKILL at random moments under load, many
times, and check after every restart that no acknowledged event is lost, no message is stored
twice and the chain passes ``mimi verify``; at the end the followers must hold the hub's chain.

    python3 scripts/kill-loop.py --kills 100 --storage sqlite
    python3 scripts/kill-loop.py --kills 100 --storage postgresql [--pg-url postgresql://...]

PostgreSQL: ``--pg-url`` or ``$MIMI_TEST_PG_URL`` names a server (superuser, to create the
run's database); otherwise a throwaway server is started on 127.0.0.1 (needs the Debian
``postgresql`` package; as root it runs as the ``postgres`` user) and removed afterwards.
Prints one progress line per kill and the figures as JSON at the end (also appended to
``--report``); exits 0 only when nothing was lost, duplicated or refused by ``mimi verify``.
Needs the package importable (``pip install .`` from the repository root).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # a script outside pytest: the test support package

from support.killloop import run_kill_loop  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100, help="SIGKILL/restart cycles (default 100)")
    parser.add_argument("--storage", choices=("sqlite", "postgresql"), default="sqlite", help="the hub's storage")
    parser.add_argument("--pg-url", default=os.environ.get("MIMI_TEST_PG_URL", ""),
                        help="PostgreSQL server URL (default: $MIMI_TEST_PG_URL, else a throwaway server)")
    parser.add_argument("--seed", type=int, help="seed of the kill moments (default: random, printed)")
    parser.add_argument("--max-delay", type=float, default=1.5, help="longest wait before a kill, seconds")
    parser.add_argument("--dir", help="working directory (default: a temporary one, removed)")
    parser.add_argument("--report", help="append the JSON figures to this file")
    args = parser.parse_args()
    if not 1 <= args.kills <= 100_000:
        parser.error("--kills must be between 1 and 100000")

    with tempfile.TemporaryDirectory(prefix="mimi-kill-loop-") as scratch:
        workdir = Path(args.dir) if args.dir else Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.storage == "sqlite":
            report = _run(args, workdir, "")
        else:
            report = _with_database(args, lambda url: _run(args, workdir, url))
    line = json.dumps({"test": f"kill loop ({report.storage})", **report.as_dict()}, sort_keys=True)
    print(line)
    if args.report:
        with open(args.report, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    return 0 if report.ok else 1


def _run(args: argparse.Namespace, workdir: Path, storage: str):
    def progress(message: str) -> None:
        print(message, flush=True)

    return run_kill_loop(workdir / "cluster", kills=args.kills, storage=storage, seed=args.seed,
                         delay=(0.05, args.max_delay), progress=progress)


def _with_database(args: argparse.Namespace, run):
    """Run with a fresh database on the given server, or on a throwaway server."""
    import psycopg

    from tests.pg import start_postgres, with_dbname

    server = None
    url = args.pg_url
    if not url:
        server = start_postgres()
        url = server.url
    dbname = f"mimi_kill_loop_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{dbname}"')
        try:
            return run(with_dbname(url, dbname))
        finally:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
