#!/usr/bin/env bash
# CI's benchmark step (about two minutes): the pytest-benchmark suite at small sizes, then
# `benches/compare.py --quick`, which prints the side-by-side table and fails only when a
# ratio measured in this same run falls below a floor far under its target (--floor: a
# fraction of the target; ratios, not absolute times, so a slow or busy machine does not
# fail it); its room has 50,000 events so that the whole-process `mimi verify` figure is not
# dominated by the interpreter starting.  JSON: benches/results/ci.json (compare) and
# benches/results/ci-suite.json (the suite).
set -euo pipefail
cd "$(dirname "$0")/.."
FLOOR="${MIMI_BENCH_FLOOR:-0.35}"
PY=.venv/bin/python

# The bench extra's packages, read from pyproject.toml (one list), into the test venv: not
# `pip install '.[bench]'`, which would build the package again.
"$PY" - > /tmp/mimi-bench-requirements.txt <<'PY'
import sys
try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["optional-dependencies"]["bench"]))
PY
.venv/bin/pip install --quiet -r /tmp/mimi-bench-requirements.txt

mkdir -p benches/results
echo "--- pytest-benchmark suite (small sizes)"
MIMI_BENCH_EVENTS=2000 MIMI_BENCH_SUBMITS=50 timeout 300 "$PY" -m pytest benches -q -p no:cacheprovider \
    --benchmark-only --benchmark-max-time=0.05 --benchmark-min-rounds=1 --benchmark-warmup=off \
    --benchmark-columns=min,mean,ops --benchmark-sort=name --benchmark-json=benches/results/ci-suite.json
echo "--- compare.py --quick (floors at $FLOOR of each target)"
timeout 300 "$PY" benches/compare.py --quick --events 50000 --floor "$FLOOR" --json benches/results/ci.json \
    --workdir "${TMPDIR:-/tmp}/mimi-bench-ci"
