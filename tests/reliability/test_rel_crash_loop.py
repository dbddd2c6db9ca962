"""Crash safety: the hub is killed with SIGKILL at random moments while five senders submit
(through the hub's own API and through two followers), on SQLite and on PostgreSQL.  After
each restart every acknowledged event is in the hub's chain, no message is stored twice and
the exported chain passes ``mimi verify``; at the end the followers converge.

The CI version kills a few times; ``scripts/kill-loop.py --kills 100`` is the long run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.killloop import run_kill_loop
from support.relkit import record

KILLS = int(os.environ.get("MIMI_CI_KILLS", "5"))


def _run(tmp_path: Path, storage: str) -> None:
    report = run_kill_loop(tmp_path / "run", kills=KILLS, storage=storage)
    record(f"crash loop ({report.storage})", **report.as_dict())
    assert report.kills == KILLS
    assert report.lost == 0, report.examples
    assert report.duplicates == 0, report.examples
    assert report.verify_failures == 0, report.examples
    assert report.follower_events == {"alpha.test": report.events, "beta.test": report.events}
    assert report.acked <= report.events


@pytest.mark.timeout(300)
def test_hub_killed_under_load_on_sqlite(tmp_path: Path) -> None:
    _run(tmp_path, "")


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_hub_killed_under_load_on_postgresql(tmp_path: Path, fresh_pg_url: str) -> None:
    _run(tmp_path, fresh_pg_url)
