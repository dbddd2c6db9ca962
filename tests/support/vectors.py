"""Read the public test vectors from ../shared/vectors (never copied into the repo)."""

from __future__ import annotations

import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def vectors_dir() -> Path:
    env = os.environ.get("MIMI_VECTORS_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "vectors"
    if not path.is_dir():
        raise RuntimeError(f"test vectors not found at {path} (set MIMI_VECTORS_DIR)")
    return path


def load_vectors(name: str):
    return json.loads((vectors_dir() / name).read_text())
