"""Helpers for the room file tests (kept out of conftest.py so test modules can import them)."""

from __future__ import annotations

import subprocess
import sys
from typing import List

CLI_TIMEOUT = 120


def run_mimi(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    """``python -m mimi_signaling.cli ARGS`` in a fresh process; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "mimi_signaling.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def event_types(lines: List[str]) -> List[str]:
    """The type column of ``mimi inspect`` event lines."""
    rows = [line.split() for line in lines]
    return [r[2] for r in rows if len(r) > 2 and r[0].isdigit() and r[1].startswith("$")]
