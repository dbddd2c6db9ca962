"""Headless Chromium (Debian's ``chromium`` package) for the page tests: the DOM after
rendering, its visible text, and screenshots kept as artifacts.

Without Chromium the tests are skipped, except under ``CI=true`` where they fail
(``.ci/run`` and ``scripts/test.sh`` install it as they install PostgreSQL)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Where screenshots go (kept after the run): $MIMI_ARTIFACTS_DIR, default tmp/artifacts.
ARTIFACTS = Path(os.environ.get("MIMI_ARTIFACTS_DIR", ROOT / "tmp" / "artifacts"))
TIMEOUT = 60


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "headless Chromium not installed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " [CI=true: not skipping]", pytrace=False)
        pytest.skip(message)
    return path


def _run(url: str, *args: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="mimi-chromium-") as profile:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        out = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
             "--hide-scrollbars", *args, url],
            capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
        )
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    return out.stdout


def dump_dom(url: str) -> str:
    """The document as Chromium rendered it (after parsing, styles and any script)."""
    return _run(url, "--dump-dom").decode()


def screenshot(url: str, name: str, *, width: int = 1200, height: int = 900) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    _run(url, f"--screenshot={path}", f"--window-size={width},{height}")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, f"{path} is not a rendered page"
    return path


class _Text(HTMLParser):
    SKIP = {"style", "script", "head", "title"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: List[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        elif tag in ("tr", "p", "div", "h1", "h2", "h3", "li", "br", "table", "section"):
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    parser = _Text()
    parser.feed(dom)
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def rows_of(dom: str, table_id: str) -> List[str]:
    """The text of each row of the table with that id (one line per row)."""
    start = dom.index(f'id="{table_id}"')
    end = dom.index("</table>", start)
    return visible_text(dom[start - 7 : end + 8]).splitlines()


def artifact(name: str) -> Optional[Path]:
    path = ARTIFACTS / name
    return path if path.exists() else None
