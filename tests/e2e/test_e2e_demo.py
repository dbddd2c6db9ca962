"""``mimi demo`` end to end: three real server processes; beta follows with history = "recent",
joins from the snapshot, fetches older events on demand and resumes after a restart."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from support.e2ekit import MIMI

pytestmark = pytest.mark.timeout(180)


def test_demo_shows_a_recent_follower(tmp_path: Path) -> None:
    done = subprocess.run([*MIMI, "demo", "--dir", str(tmp_path / "demo"), "--messages", "3"],
                          capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    held = re.search(r'history = "recent"\): .* holds (\d+) event\(s\) of the chain and keeps (\d+) state', out)
    assert held is not None and int(held.group(1)) == 1 and int(held.group(2)) > 0, out
    assert "fetched the 4 events before her join" in out
    assert len(re.findall(r"^     \$\S+\.\.\. m\.room\.encrypted from ", out, re.M)) == 4
    latest = {m.group(1): m.group(2) for m in re.finditer(r"^  (\S+)\s.*latest (\$\S+)$", out, re.M)}
    assert set(latest) == {"hub.test", "alpha.test", "beta.test"} and len(set(latest.values())) == 1, out
    assert re.search(r"beta\.test\s+follower\s+\d+ events \(recent history", out)
